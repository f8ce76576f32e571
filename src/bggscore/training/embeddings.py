"""Train and register the two embedding models: description text, then games.

Text embeddings learn from the descriptions of games published through the test
year. Game embeddings learn from the same games' features plus the predicted
complexity and description embedding the registered models give them, and record
which text and complexity models those came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bggscore.scoring.outcomes import OUTCOMES
from bggscore.scoring.predict import predict
from bggscore.stages import EMBED_STAGES, GRAPH
from bggscore.training.compile import compile_embedder
from bggscore.training.train import MIN_TRAIN_ROWS, Splits
from bggscore.warehouse.schemas import GAMES_FEATURES

if TYPE_CHECKING:
    from bggscore.registry import Registration, Registry

EMBEDDING_TYPES = GRAPH.model_types(EMBED_STAGES)


def _window(frame: pl.DataFrame, splits: Splits) -> pl.DataFrame:
    return frame.filter(
        pl.col("year_published").is_not_null(), pl.col("year_published") <= splits.test_year
    )


def _check_rows(what: str, rows: int) -> None:
    from bggscore.errors import InputError

    if rows < MIN_TRAIN_ROWS:
        raise InputError(
            f"too few games to train {what}: {rows} (needs at least {MIN_TRAIN_ROWS})",
            "load more games",
        )


def train_text(
    frame: pl.DataFrame,
    registry: Registry,
    name: str,
    splits: Splits,
    options: dict[str, int],
) -> Registration:
    from bggscore.embeddings.text import TextEmbedder

    rows = _window(frame, splits)
    _check_rows("text_embeddings", len(rows))
    embedder = TextEmbedder(
        window=options.get("window", 5),
        min_count=options.get("min_count", 5),
        dim=options.get("dim", 100),
    ).fit(rows)
    empty = embedder.count_empty(rows)
    return registry.register(
        "text_embeddings",
        name,
        compile_embedder(embedder),
        description="description embeddings: PPMI word vectors reduced by SVD, SIF documents",
        signature=[{"name": "description", "dtype": "STRING", "source": "warehouse"}],
        output={"kind": "embedding", "dim": int(embedder.dim_), "algorithm": "ppmi-svd-sif"},
        training={**splits.as_dict(), **options, "games": len(rows)},
        metrics={
            "vocabulary": len(embedder.vocabulary_),
            "dim": int(embedder.dim_),
            "empty_share": round(empty / max(len(rows), 1), 4),
        },
        experiment=f"{name}-ppmi-sif",
    )


def train_game(
    frame: pl.DataFrame,
    registry: Registry,
    name: str,
    splits: Splits,
    options: dict[str, int],
    text_ref: str,
    complexity_ref: str,
) -> Registration:
    from bggscore.embeddings.game import TEXT_COLUMN, GameEmbedder
    from bggscore.training.train import fit_base

    rows = _window(frame, splits)
    _check_rows("game_embeddings", len(rows))
    text = registry.load(text_ref, "text_embeddings")
    complexity = registry.load(complexity_ref, "complexity")
    inputs = rows.with_columns(
        pl.Series("predicted_complexity", predict(complexity.model, rows, OUTCOMES["complexity"])),
        pl.Series(TEXT_COLUMN, text.model.transform(rows)).cast(pl.List(pl.Float64)),
    )
    embedder = GameEmbedder(dim=options.get("dim", 64)).fit(inputs, base=fit_base(rows))
    explained = float(np.sum(embedder.svd_.explained_variance_ratio_))
    builder = embedder.builder_
    kinds = dict(GAMES_FEATURES.columns)
    signature: list[dict[str, Any]] = [
        {"name": c, "dtype": kinds[c], "source": "warehouse"}
        for c in builder.input_columns()
        if c in kinds
    ]
    signature += [
        {"name": "predicted_complexity", "dtype": "FLOAT64", "source": "chain"},
        {"name": TEXT_COLUMN, "dtype": "ARRAY<FLOAT64>", "source": "chain"},
    ]
    return registry.register(
        "game_embeddings",
        name,
        compile_embedder(embedder),
        description="game embeddings: truncated SVD over features, predicted complexity and "
        "the description embedding",
        signature=signature,
        output={"kind": "embedding", "dim": int(embedder.dim_), "algorithm": "truncated-svd"},
        training={
            **splits.as_dict(),
            **options,
            "games": len(rows),
            "text_model": text.registration.label,
            "complexity_model": complexity.registration.label,
        },
        metrics={"explained_variance": round(explained, 4), "dim": int(embedder.dim_)},
        experiment=f"{name}-svd",
    )
