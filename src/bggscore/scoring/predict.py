"""A registered model's output for a frame of games, and the chain columns later
outcomes read (serving code: training uses it too, never the other way round)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from bggscore.linear import LinearModel
from bggscore.scoring.outcomes import OUTCOMES, Outcome


def predict(pipeline: Any, frame: pl.DataFrame, outcome: Outcome, cache: Any = None) -> np.ndarray:
    """Model output in model space (log1p for users_rated), clipped where the outcome says.

    With a ``features.BaseCache``, models sharing a feature base build it once per batch.
    """
    from bggscore.features import Features

    classifier = outcome.kind == "classification"
    if isinstance(pipeline, LinearModel):  # no design matrix: see LinearModel.score
        values = pipeline.score(frame, cache)
    else:
        first = pipeline.steps[0][1] if hasattr(pipeline, "steps") else None
        if cache is not None and isinstance(first, Features):
            X, rest = cache.features(first, frame), pipeline[1:]
        else:
            X, rest = frame, pipeline
        values = rest.predict_proba(X)[:, 1] if classifier else rest.predict(X)
    if classifier or not outcome.clip:
        return values
    return np.clip(values, *outcome.clip)


def add_chain_inputs(frame: pl.DataFrame, models: dict[str, Any]) -> pl.DataFrame:
    """Columns later outcomes read: predicted complexity, rating and log users_rated."""
    out = frame
    if "complexity" in models:
        values = predict(models["complexity"], out, OUTCOMES["complexity"])
        out = out.with_columns(pl.Series("predicted_complexity", values))
    if "rating" in models:
        values = predict(models["rating"], out, OUTCOMES["rating"])
        out = out.with_columns(pl.Series("predicted_rating", values))
    if "users_rated" in models:
        values = predict(models["users_rated"], out, OUTCOMES["users_rated"])
        out = out.with_columns(pl.Series("predicted_log_users_rated", values))
    return out
