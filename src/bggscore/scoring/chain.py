"""Score one batch of games through the chain, producing landing-table rows.

Order matters: complexity first, because hurdle-independent rating and
users_rated read ``predicted_complexity``; geek rating last, from the rating and
the users_rated count as written to the landing row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bggscore.modelset import ModelSet
from bggscore.scoring.outcomes import OUTCOMES
from bggscore.scoring.predict import predict

if TYPE_CHECKING:
    from bggscore.features import BaseCache  # imports scikit-learn

USERS_RATED_STEP = 50
USERS_RATED_FLOOR = 25


@dataclass(frozen=True)
class RunInfo:
    """What every row of one run shares."""

    job_id: str
    score_ts: datetime
    source_environment: str
    model_fingerprint: str
    training_cutoff_year: int | None


def users_rated_count(log_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reported count max(round(expm1(p)/50)*50, 25), and the unrounded expm1(p)."""
    raw = np.expm1(log_pred)
    rounded = np.maximum(np.round(raw / USERS_RATED_STEP) * USERS_RATED_STEP, USERS_RATED_FLOOR)
    return rounded, raw


def bayesian_geek_rating(
    rating: np.ndarray, users: np.ndarray, prior_rating: float, prior_weight: float
) -> np.ndarray:
    values = (rating * users + prior_rating * prior_weight) / (users + prior_weight)
    return np.clip(values, 1.0, 10.0)


def _model_columns(models: ModelSet, model_type: str, n: int) -> dict[str, pl.Series]:
    experiment: str | None
    name: str | None
    if model_type == "geek_rating" and models.geek_formula is not None:
        name, version, experiment = "bayesian", None, models.geek_formula.key
    elif model_type in models.absent:
        name, version, experiment = None, None, None
    else:
        reg = models.models[model_type].registration
        name, version, experiment = reg.name, reg.version, reg.experiment
    return {
        f"{model_type}_model_name": pl.repeat(name, n, dtype=pl.String, eager=True),
        f"{model_type}_model_version": pl.repeat(version, n, dtype=pl.Int64, eager=True),
        f"{model_type}_experiment": pl.repeat(experiment, n, dtype=pl.String, eager=True),
    }


def _common(frame: pl.DataFrame, run: RunInfo) -> pl.DataFrame:
    return frame.select(
        pl.lit(run.job_id).alias("job_id"),
        "game_id",
        "name",
        "year_published",
        pl.lit(run.score_ts, dtype=pl.Datetime("us", "UTC")).alias("score_ts"),
        pl.lit(run.source_environment).alias("source_environment"),
        pl.col("feature_hash") if "feature_hash" in frame.columns else pl.lit(None, pl.Int64),
        pl.lit(run.model_fingerprint).alias("model_fingerprint"),
    )


def score_complexity(
    frame: pl.DataFrame, models: ModelSet, run: RunInfo, cache: BaseCache | None = None
) -> pl.DataFrame:
    values = predict(models.models["complexity"].model, frame, OUTCOMES["complexity"], cache)
    out = _common(frame, run).with_columns(pl.Series("predicted_complexity", values))
    return out.with_columns(**_model_columns(models, "complexity", len(frame)))


def score_main(
    frame: pl.DataFrame,
    complexity: np.ndarray,
    models: ModelSet,
    run: RunInfo,
    intervals: dict[str, Any] | None = None,
    cache: BaseCache | None = None,
) -> pl.DataFrame:
    """Landing rows: hurdle, rating, users_rated and geek rating for a batch.

    ``complexity`` is the predicted complexity each game is scored with; ``intervals``
    (from ``intervals.draw_chain``) replaces point predictions with medians and adds
    the 90% bounds. Without a hurdle model (``models.absent``) the hurdle probability
    and its model columns are NULL.
    """
    n = len(frame)
    inputs = frame.with_columns(pl.Series("predicted_complexity", complexity))
    hurdle: np.ndarray | None = None
    if "hurdle" not in models.absent:
        hurdle = predict(models.models["hurdle"].model, inputs, OUTCOMES["hurdle"], cache)
    rating = predict(models.models["rating"].model, inputs, OUTCOMES["rating"], cache)
    log_users = predict(models.models["users_rated"].model, inputs, OUTCOMES["users_rated"], cache)
    users, users_raw = users_rated_count(log_users)
    if models.geek_formula is not None:
        f = models.geek_formula
        geek = bayesian_geek_rating(rating, users, f.prior_rating, f.prior_weight)
    else:
        chained = inputs.with_columns(
            pl.Series("predicted_rating", rating), pl.Series("predicted_log_users_rated", log_users)
        )
        geek = predict(models.models["geek_rating"].model, chained, OUTCOMES["geek_rating"], cache)
    columns: dict[str, Any] = {
        "predicted_hurdle_prob": hurdle,
        "predicted_complexity": complexity,
        "predicted_rating": rating,
        "predicted_users_rated": users,
        "predicted_geek_rating": geek,
        "predicted_users_rated_raw": users_raw,
    }
    if intervals:
        columns.update(intervals)
    cutoff = run.training_cutoff_year
    status = (
        pl.when(pl.col("year_published") <= cutoff)
        .then(pl.lit("in_sample"))
        .otherwise(pl.lit("out_of_sample"))
        if cutoff is not None
        else pl.lit(None, pl.String)
    )
    out = _common(frame, run).with_columns(
        *(
            pl.Series(name, np.asarray(values, dtype=np.float64))
            if values is not None
            else pl.lit(None, pl.Float64).alias(name)
            for name, values in columns.items()
        ),
        status.alias("sample_status"),
        pl.lit(cutoff, dtype=pl.Int64).alias("training_cutoff_year"),
    )
    for model_type in ("hurdle", "complexity", "rating", "users_rated", "geek_rating"):
        out = out.with_columns(**_model_columns(models, model_type, n))
    return out
