"""A bggscore home scoring production's pipelines as they are, for the tests and for
benchmarks/adopt.py: the fixture pipelines (tests/support/production.py) fitted on the
home's own games and stored description embeddings (the text-embeddings stage's output,
which production's models read as emb_0..emb_{d-1}), registered in the home's registry
with the signature `models import` infers.

The home needs games and description embeddings: a `bggscore demo` home has both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import polars as pl
from tests.support.production import (
    MODEL_TYPES,
    PROD_CODE,
    TEST_THROUGH,
    fit_production_models,
    prod_code_on_path,
    signature,
)
from tests.support.state import warehouse_file

SUFFIX = "v2026"
TRAIN_GAMES = 1000
# The games `score --all-years` scores (a known year), with the latest stored description
# embedding of each, as production's loader joins them (an INNER JOIN), in game_id order.
ROWS_SQL = """
SELECT f.*, e.embedding
FROM analytics.games_features AS f
JOIN raw.bggscore_scoring_state AS s ON s.game_id = f.game_id AND s.stage = 'text-embeddings'
JOIN raw.description_embeddings AS e ON e.game_id = s.game_id AND e.job_id = s.job_id
WHERE f.year_published IS NOT NULL
ORDER BY f.game_id
"""


class Adopted(NamedTuple):
    models: dict[str, Any]  # model type -> the fitted pipeline
    env: dict[str, str]  # the settings naming them (BGGSCORE_MODELS__*) and PYTHONPATH
    columns: list[str]  # the games_features columns of their signatures
    dim: int  # embedding columns emb_0..emb_{dim-1}


def production_rows(home: Path, batch_size: int = 20_000) -> Iterator[pl.DataFrame]:
    """Games with their ``embedding`` list column, as record batches of the warehouse."""
    con = duckdb.connect(str(warehouse_file(home)), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        relation = con.sql(ROWS_SQL)
        to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
        for batch in to_reader(batch_size):
            yield pl.from_arrow(batch)  # type: ignore[misc]
    finally:
        con.close()


def split(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(features, embeddings) as production.py's helpers take them."""
    return rows.drop("embedding"), rows.select("game_id", "embedding")


def adopt(home: Path, train_games: int = TRAIN_GAMES) -> Adopted:
    """Fit the five pipelines on the first ``train_games`` games with >= 25 ratings (like the
    real sample) and register them as ``<type>-v2026`` in the home's registry."""
    from bggscore.registry import open_registry

    rows = pl.concat(
        [r.filter(pl.col("users_rated") >= 25) for r in production_rows(home)], how="vertical"
    ).head(train_games)
    features, embeddings = split(rows)
    dim = int(embeddings["embedding"].list.len().max() or 0)
    models = fit_production_models(features, embeddings)
    registry = open_registry(str(home / "registry"), home)
    env = {}
    with prod_code_on_path():  # the pickles name the user's classes, `src.features...`
        for model_type in MODEL_TYPES:
            name = f"{model_type}-{SUFFIX}"
            registry.register(
                model_type,
                name,
                models[model_type],
                signature=signature(features.columns, dim, model_type),
                training={"test_through": TEST_THROUGH},
                experiment=f"{model_type}-ard-2026",
            )
            env[f"BGGSCORE_MODELS__{model_type.upper()}"] = name
    path = os.environ.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([str(PROD_CODE), *([path] if path else [])])
    return Adopted(models, env, features.columns, dim)
