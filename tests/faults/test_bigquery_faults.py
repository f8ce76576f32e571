"""BigQuery faults in the middle of `bggscore score`: a staging load that fails, and a
transaction script whose third statement fails, both in the second of four batches.

The real BigQuery engine talks to bqemulator (the ``emulator`` of tests/support/warehouses.py):
the production Parquet load path runs, and the emulator rolls back a failed
``BEGIN TRANSACTION; ...; COMMIT TRANSACTION;`` script as BigQuery does. Each fault must
leave batch 1 whole, nothing of batch 2 or later, no staging table, a 'failed' run and a
one-line error; a `--changed-only` rerun then completes with every invariant true.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.conftest import Outcome
from tests.faults.harness import PROGRESS_RE
from tests.support.output import assert_one_line_error
from tests.support.warehouses import create_foreign_tables

from bggscore.warehouse import base
from bggscore.warehouse.bigquery_engine import STAGING_PREFIX, BigQueryWarehouse
from bggscore.warehouse.schemas import TABLES

pytestmark = [
    pytest.mark.faults,
    pytest.mark.bigquery,
    # bqemulator's own DuckDB calls (in its server thread) warn about an Arrow copy
    pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning"),
]

GAMES = 500  # 484 with a year: batches of 150, 150, 150 and 34
BATCH = 150
SCORE = ("score", "--all-years", "--batch-size", str(BATCH), "--json")
STAGES = {"complexity": "complexity_predictions", "main": "ml_predictions_landing"}


@dataclass
class BigQueryHome:
    home: Path
    cli: Any

    def warehouse(self) -> BigQueryWarehouse:
        from bggscore.settings import load_settings

        return BigQueryWarehouse(load_settings())

    def query(self, canonical: str) -> pl.DataFrame:
        with self.warehouse() as wh:
            return wh.query(canonical)

    def in_range(self) -> list[int]:
        frame = self.query("SELECT game_id FROM games_features WHERE year_published IS NOT NULL")
        return sorted(frame["game_id"].to_list())

    def games(self, logical: str, job_id: str) -> set[int]:
        frame = self.query(f"SELECT game_id, job_id FROM {logical}")
        return set(frame.filter(pl.col("job_id") == job_id)["game_id"].to_list())

    def state(self, stage: str) -> pl.DataFrame:
        frame = self.query("SELECT stage, game_id, job_id FROM scoring_state")
        return frame.filter(pl.col("stage") == stage)

    def runs(self) -> pl.DataFrame:
        return self.query("SELECT job_id, status, games, message FROM runs")

    def staging_tables(self) -> list[str]:
        with self.warehouse() as wh:
            ml = wh.tables["runs"]
            listed = wh.client.list_tables(f"{ml.project}.{ml.dataset}")
            return [t.table_id for t in listed if t.table_id.startswith(STAGING_PREFIX)]


@pytest.fixture
def bq(
    emulator: Any, home: Path, demo_run: Any, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> BigQueryHome:
    """A home whose warehouse is BigQuery (datasets of its own in the emulator), holding
    500 demo games and the demo's registry; every BigQueryWarehouse talks to the emulator."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from bggscore.demo.catalogue import generate_catalogue
    from bggscore.warehouse.load import load_games

    def client() -> bigquery.Client:
        return bigquery.Client(
            project=emulator.project_id,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=emulator.rest_url),
        )

    real_init = BigQueryWarehouse.__init__

    def init(self: BigQueryWarehouse, settings: Any, client_factory: Any = None) -> None:
        real_init(self, settings, client_factory=client)

    monkeypatch.setattr(BigQueryWarehouse, "__init__", init)
    suffix = uuid.uuid4().hex[:10]  # the emulator lives for the session: isolate each test
    for key, value in {
        "ENGINE": "bigquery",
        "FEATURES_PROJECT": "bgg-data-warehouse",
        "ML_PROJECT": "bgg-predictive-models",
        "FEATURES_DATASET": f"analytics_{suffix}",
        "HASH_DATASET": f"staging_{suffix}",
        "ML_DATASET": f"raw_{suffix}",
    }.items():
        monkeypatch.setenv(f"BGGSCORE_WAREHOUSE__{key}", value)
    home.mkdir()
    shutil.copytree(demo_run.home / "registry", home / "registry")
    found = BigQueryHome(home, cli)
    with found.warehouse() as wh:
        create_foreign_tables(wh)
        wh.ensure_schema()
        load_games(wh, generate_catalogue(GAMES, 0))
    return found


def _one_line_error(stderr: str, *needles: str) -> str:
    """Besides the progress lines of the batches that committed, one `error:` line."""
    rest = "\n".join(line for line in stderr.splitlines() if not PROGRESS_RE.search(line))
    return assert_one_line_error(rest, *needles)


def _assert_only_first_batch(bq: BigQueryHome, failed: Outcome) -> str:
    """Batch 1 whole in all four tables, nothing else; no staging table; run 'failed'."""
    assert failed.exit_code == 1, failed.stderr
    assert failed.stdout == ""
    ordered = bq.in_range()
    runs = bq.runs()
    assert len(runs) == 1
    run = runs.row(0, named=True)
    assert run["status"] == "failed"
    assert run["message"] and "\n" not in run["message"]
    first = set(ordered[:BATCH])
    for stage, logical in STAGES.items():
        assert bq.games(logical, run["job_id"]) == first, logical
        assert len(bq.query(f"SELECT game_id FROM {logical}")) == BATCH, logical
        state = bq.state(stage)
        assert set(state["game_id"].to_list()) == first, stage
        assert state["job_id"].unique().to_list() == [run["job_id"]]
    assert run["games"] == BATCH
    assert bq.staging_tables() == []
    return run["job_id"]


def _assert_rerun_completes(bq: BigQueryHome, killed_job: str) -> None:
    rerun = bq.cli("score", "--changed-only", "--all-years", "--batch-size", str(BATCH), "--json")
    assert rerun.exit_code == 0, rerun.stderr
    ordered = bq.in_range()
    result = json.loads(rerun.stdout)
    assert result["games_scored"] == len(ordered) - BATCH
    for stage, logical in STAGES.items():
        landing = bq.query(f"SELECT game_id, job_id FROM {logical}")
        assert not landing.is_duplicated().any(), logical
        state = bq.state(stage)
        assert sorted(state["game_id"].to_list()) == ordered, stage
        joined = state.join(landing, on=["game_id", "job_id"], how="inner")
        assert len(joined) == len(ordered)  # one landing row per state row, none missing
        assert bq.games(logical, killed_job) == set(ordered[:BATCH])
        assert bq.games(logical, result["job_id"]) == set(ordered[BATCH:])
    statuses = dict(bq.runs().select("job_id", "status").rows())
    assert statuses == {killed_job: "failed", result["job_id"]: "success"}
    assert bq.staging_tables() == []


def test_failed_staging_load_in_batch_two_lands_nothing_of_it(
    bq: BigQueryHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.api_core import exceptions as api_exceptions

    real_load = BigQueryWarehouse._load_staging
    landing_loads = []

    def load(self: BigQueryWarehouse, ref: Any, table: Any, schema: Any) -> None:
        # a batch stages complexity rows, their state, landing rows, their state: fail the
        # third load of batch 2 (two staging tables already exist, one never will)
        if table.column_names == TABLES["ml_predictions_landing"].names:
            landing_loads.append(ref.table)
            if len(landing_loads) == 2:
                raise api_exceptions.ServiceUnavailable("injected: load job backend error")
        real_load(self, ref, table, schema)

    monkeypatch.setattr(BigQueryWarehouse, "_load_staging", load)
    failed = bq.cli(*SCORE)
    monkeypatch.setattr(BigQueryWarehouse, "_load_staging", real_load)

    _one_line_error(failed.stderr, "could not be reached", "staging rows", "injected")
    assert len(landing_loads) == 2  # batch 3 and 4 were never staged
    job = _assert_only_first_batch(bq, failed)
    _assert_rerun_completes(bq, job)


def test_failed_statement_in_batch_two_script_rolls_the_whole_batch_back(
    bq: BigQueryHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_append = base.append_new_sql
    landing_statements = []

    def append(schema: Any, staged: str, *args: Any) -> str:
        if schema.logical == "ml_predictions_landing":
            landing_statements.append(staged)
            if len(landing_statements) == 2:
                # the last statement of batch 2's script: complexity rows and both stages'
                # state were already written by the statements before it in the same
                # transaction
                return "SELECT ERROR('injected: statement 3 of 3 failed')"
        return real_append(schema, staged, *args)

    monkeypatch.setattr(base, "append_new_sql", append)
    failed = bq.cli(*SCORE)
    monkeypatch.setattr(base, "append_new_sql", real_append)

    _one_line_error(failed.stderr, "committing the write transaction", "injected")
    assert len(landing_statements) == 2  # batches 3 and 4 were never written
    job = _assert_only_first_batch(bq, failed)
    _assert_rerun_completes(bq, job)
