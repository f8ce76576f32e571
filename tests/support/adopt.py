"""A bggscore home adopting production's pipelines as a user would, for the tests and for
benchmarks/adopt.py: the fixture pipelines (tests/support/production.py) fitted on the
home's own games with fake description embeddings, written as production's registry,
then (the caller runs them, they are bggscore commands) ``warehouse load --embeddings``
and ``models import --code-path``; the settings name the -v2026 models.

The home needs games_features (a `bggscore demo` home, or a trained demo home).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import polars as pl
from tests.support.production import (
    MODEL_TYPES,
    PROD_CODE,
    fake_embeddings,
    fit_production_models,
    write_production_registry,
)
from tests.support.state import warehouse_file

TRAIN_GAMES = 1000
CHUNK = 20_000
FEATURES_SQL = "SELECT * FROM analytics.games_features ORDER BY game_id"
# The games `score --all-years` scores (a known year) with their embedding, as production's
# loader joins them (an INNER JOIN), in game_id order.
ROWS_SQL = """
SELECT f.*, e.embedding
FROM analytics.games_features AS f
JOIN read_parquet($path) AS e USING (game_id)
WHERE f.year_published IS NOT NULL
ORDER BY f.game_id
"""


class Adopted(NamedTuple):
    models: dict[str, Any]  # model type -> the fitted pipeline
    embeddings: Path  # parquet (game_id, embedding), for `warehouse load --embeddings`
    registry: Path  # production's models/registered folder, for `models import`
    env: dict[str, str]  # the settings naming the -v2026 models

    @property
    def commands(self) -> list[list[str]]:
        """What a user runs before scoring (each with --json)."""
        return [
            ["warehouse", "load", "--embeddings", str(self.embeddings), "--json"],
            ["models", "import", str(self.registry), "--code-path", str(PROD_CODE), "--json"],
        ]


def _batches(home: Path, sql: str, params: dict[str, Any], size: int) -> Iterator[pl.DataFrame]:
    con = duckdb.connect(str(warehouse_file(home)), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        relation = con.sql(sql, params=params)
        to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
        for batch in to_reader(size):
            yield pl.from_arrow(batch)  # type: ignore[misc]
    finally:
        con.close()


def production_rows(home: Path, embeddings: Path, size: int = CHUNK) -> Iterator[pl.DataFrame]:
    """Games with their ``embedding`` list column, in batches of the warehouse's reader."""
    yield from _batches(home, ROWS_SQL, {"path": str(embeddings)}, size)


def split(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(features, embeddings) as production.py's helpers take them."""
    return rows.drop("embedding"), rows.select("game_id", "embedding")


def write_embeddings(home: Path, path: Path) -> None:
    """fake_embeddings for every game of the home, written chunk by chunk."""
    import pyarrow.parquet as pq

    writer = None
    try:
        for features in _batches(home, FEATURES_SQL, {}, CHUNK):
            table = fake_embeddings(features).to_arrow()
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def adopt(home: Path, workdir: Path, train_games: int = TRAIN_GAMES) -> Adopted:
    """Fake embeddings for every game, the five pipelines fitted on the first ``train_games``
    games with >= 25 ratings (like the real sample), production's registry folder."""
    workdir.mkdir(parents=True, exist_ok=True)
    embeddings = workdir / "embeddings.parquet"
    write_embeddings(home, embeddings)
    rated, found = [], 0
    for rows in production_rows(home, embeddings):
        rated.append(rows.filter(pl.col("users_rated") >= 25))
        found += len(rated[-1])
        if found >= train_games:
            break
    models = fit_production_models(*split(pl.concat(rated).head(train_games)))
    registry = write_production_registry(workdir / "registered", models)
    env = {f"BGGSCORE_MODELS__{t.upper()}": f"{t}-v2026" for t in MODEL_TYPES}
    return Adopted(models, embeddings, registry, env)
