"""Warehouses on every engine, for suites that must hold on DuckDB and BigQuery alike.

``duckdb`` is a real file under tmp_path; ``bigquery`` is the real google-cloud-bigquery
client talking to bqemulator, an in-process BigQuery emulator. The ``emulator`` fixture
(loaded by tests/conftest.py) starts it; ``engine_fixture()`` makes a module's fixture
parametrized over ``ENGINES``.

Emulator notes (what the fixtures have to provide, not what the engine does):
- bqemulator insists on DuckDB's spatial extension, which cannot be downloaded
  here; nothing in bggscore uses GEOGRAPHY, so the loader is patched out.
- games_features, game_features_hash and the embeddings table belong to the data
  warehouse's own jobs: the BigQuery engine never creates them, so
  ``create_foreign_tables`` does (as production has).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bggscore.settings import FeaturesSettings, Settings, WarehouseSettings
from bggscore.warehouse.base import Warehouse
from bggscore.warehouse.schemas import TABLES

ENGINES = ["duckdb", pytest.param("bigquery", marks=pytest.mark.bigquery)]


@pytest.fixture(scope="session")
def emulator(request: pytest.FixtureRequest) -> Any:
    """The bqemulator session server, started without the spatial extension."""
    pytest.importorskip("bqemulator", reason="bqemulator is not installed")
    from bqemulator.storage.engine import DuckDBEngine

    with pytest.MonkeyPatch.context() as patch:
        # GEOGRAPHY support needs an extension download; bggscore uses no GEOGRAPHY
        patch.setattr(DuckDBEngine, "_load_spatial", lambda self: None)
        try:
            return request.getfixturevalue("bqemu_endpoint")
        except pytest.FixtureLookupError:
            pytest.skip("the bqemulator pytest plugin is not loaded (-p no:bqemulator?)")


def create_foreign_tables(warehouse: Any) -> None:
    """The tables a BigQuery warehouse reads but never creates (games_features, ...)."""
    for schema in TABLES.values():
        if not schema.owned:  # produced by the data warehouse's own jobs in production
            warehouse._create_table(warehouse.tables[schema.logical], schema)


def warehouse_settings(
    tmp_path: Path, features: FeaturesSettings | None = None, **warehouse: Any
) -> Settings:
    """Settings with a home under tmp_path and these warehouse (and features) settings."""
    return Settings(
        home=tmp_path / "home",
        warehouse=WarehouseSettings(**warehouse),
        features=features or FeaturesSettings(),
    )


def duckdb_warehouse(tmp_path: Path) -> Warehouse:
    from bggscore.warehouse.duckdb_engine import DuckDBWarehouse

    return DuckDBWarehouse(
        warehouse_settings(tmp_path, path=tmp_path / "warehouse.duckdb"), create=True
    )


def bigquery_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    """A BigQuery warehouse in the emulator, in datasets of its own."""
    from bggscore.warehouse.bigquery_engine import BigQueryWarehouse

    request.getfixturevalue("emulator")
    client = request.getfixturevalue("bqemu_client")
    suffix = uuid.uuid4().hex[:10]  # the emulator lives for the session: isolate each test
    settings = warehouse_settings(
        tmp_path,
        engine="bigquery",
        features_project="bgg-data-warehouse",
        ml_project="bgg-predictive-models",
        features_dataset=f"analytics_{suffix}",
        hash_dataset=f"staging_{suffix}",
        ml_dataset=f"raw_{suffix}",
        features=FeaturesSettings(embeddings_table=f"predictions_{suffix}.embeddings"),
    )
    warehouse = BigQueryWarehouse(settings, client_factory=lambda: client)
    create_foreign_tables(warehouse)
    return warehouse


def engine_fixture(*, ensure_schema: bool = False) -> Callable[..., Iterator[Warehouse]]:
    """A fixture parametrized over ``ENGINES`` yielding an open warehouse (its tables
    created first when ``ensure_schema``). In a module: ``warehouse = engine_fixture()``."""

    @pytest.fixture(params=ENGINES)
    def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
        if request.param == "duckdb":
            opened = duckdb_warehouse(tmp_path)
        else:
            opened = bigquery_warehouse(request, tmp_path)
        with opened:
            if ensure_schema:
                opened.ensure_schema()
            yield opened

    return engine
