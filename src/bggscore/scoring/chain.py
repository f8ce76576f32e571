"""Score one batch of games through the chain, producing landing-table rows.

Order matters: complexity first, because hurdle-independent rating and
users_rated read ``predicted_complexity``; geek rating last, from the rating and
the users_rated count as written to the landing row.

Bounds follow production's point path: bggscore's own models bound their outputs
themselves (``Outcome.clip``); any other model's outputs go on unclipped, into the chain
and into landing, except that the complexity stage's own table holds complexity clipped
to [1, 5] (its raw value is kept beside it for the main stage to chain from) and the geek
rating is clipped to [1, 10]. ``scoring.clip_outputs`` clips landing values too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bggscore.errors import RegistryError
from bggscore.modelset import ModelSet
from bggscore.scoring.frames import PandasFrames, is_own
from bggscore.scoring.outcomes import OUTCOMES
from bggscore.scoring.predict import predict

if TYPE_CHECKING:
    from bggscore.features import BaseCache  # imports scikit-learn
    from bggscore.registry import LoadedModel

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
    clip_outputs: bool = False  # clip landing complexity and rating (scoring.clip_outputs)


def users_rated_count(log_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reported count max(round(expm1(p)/50)*50, 25), and the unrounded expm1(p)."""
    raw = np.expm1(log_pred)
    rounded = np.maximum(np.round(raw / USERS_RATED_STEP) * USERS_RATED_STEP, USERS_RATED_FLOOR)
    return rounded, raw


def model_output(
    loaded: LoadedModel,
    model_type: str,
    inputs: pl.DataFrame,
    frames: PandasFrames,
    chain: dict[str, np.ndarray],
    cache: BaseCache | None = None,
) -> np.ndarray:
    """One model's output for the batch: bggscore's own models read ``inputs`` (polars,
    chain columns by name) and bound their outputs; any other model gets production's
    pandas frame (``frames``) and its output as it gives it."""
    outcome = OUTCOMES[model_type]
    if is_own(loaded.model):
        return predict(loaded.model, inputs, outcome, cache)
    X = frames.for_model(loaded, chain)
    model = loaded.model
    try:
        if outcome.kind == "classification":
            values = model.predict_proba(X)[:, 1]
        else:
            values = model.predict(X)
    except Exception as exc:  # the user's pipeline failing on warehouse rows
        detail = " ".join(str(exc).split())[:300]
        raise RegistryError(
            f"{loaded.registration.label} failed to predict ({type(exc).__name__}: {detail})",
            "check the model's inputs with `bggscore models show "
            f"{loaded.registration.label}` against the warehouse's games_features",
        ) from exc
    out = np.asarray(values, dtype=np.float64).reshape(len(X))
    bad = ~np.isfinite(out)
    if bad.any():  # NaN/inf never reach a table
        games = inputs["game_id"].filter(pl.Series(bad)).head(5).to_list()
        raise RegistryError(
            f"{loaded.registration.label} predicted {int(bad.sum())} non-finite value(s) "
            f"(games {', '.join(map(str, games))}); nothing of this batch was written",
            "check how the model's pipeline handles missing inputs for those games",
        )
    return out


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


COMPLEXITY_BOUNDS = OUTCOMES["complexity"].clip or (1.0, 5.0)
RATING_BOUNDS = OUTCOMES["rating"].clip or (1.0, 10.0)
GEEK_BOUNDS = OUTCOMES["geek_rating"].clip or (1.0, 10.0)


def score_complexity(
    frame: pl.DataFrame,
    models: ModelSet,
    run: RunInfo,
    cache: BaseCache | None = None,
    frames: PandasFrames | None = None,
) -> pl.DataFrame:
    """Complexity rows: clipped to [1, 5], with the model's own value beside it
    (``predicted_complexity_raw``: what the main stage chains from). ``frames``: the
    batch's pandas frames, when the main stage shares them."""
    frames = frames or PandasFrames(frame)
    raw = model_output(models.models["complexity"], "complexity", frame, frames, {}, cache)
    out = _common(frame, run).with_columns(
        pl.Series("predicted_complexity", np.clip(raw, *COMPLEXITY_BOUNDS)),
        pl.Series("predicted_complexity_raw", raw),
    )
    return out.with_columns(**_model_columns(models, "complexity", len(frame)))


def score_main(
    frame: pl.DataFrame,
    complexity: np.ndarray,
    models: ModelSet,
    run: RunInfo,
    intervals: dict[str, Any] | None = None,
    cache: BaseCache | None = None,
    frames: PandasFrames | None = None,
) -> pl.DataFrame:
    """Landing rows: hurdle, rating, users_rated and geek rating for a batch.

    ``complexity`` is the predicted complexity each game is scored with; ``intervals``
    (from ``intervals.draw_chain``) replaces point predictions with medians and adds
    the 90% bounds. Without a hurdle model (``models.absent``) the hurdle probability
    and its model columns are NULL. ``frames``: pandas frames of these very rows (the
    complexity stage's), else made here.
    """
    n = len(frame)
    frames = frames or PandasFrames(frame)
    chain: dict[str, np.ndarray] = {"predicted_complexity": complexity}
    inputs = frame.with_columns(pl.Series("predicted_complexity", complexity))

    def output(model_type: str) -> np.ndarray:
        loaded = models.models[model_type]
        return model_output(loaded, model_type, inputs, frames, chain, cache)

    hurdle: np.ndarray | None = None
    if "hurdle" not in models.absent:
        hurdle = output("hurdle")
    rating = output("rating")
    log_users = output("users_rated")
    users, users_raw = users_rated_count(log_users)
    chain.update(
        predicted_rating=rating,
        predicted_log_users_rated=log_users,
        predicted_users_rated_log=np.log1p(users),
    )
    if models.geek_formula is not None:
        f = models.geek_formula
        geek = bayesian_geek_rating(rating, users, f.prior_rating, f.prior_weight)
    else:
        inputs = inputs.with_columns(
            pl.Series("predicted_rating", rating), pl.Series("predicted_log_users_rated", log_users)
        )
        geek = np.clip(output("geek_rating"), *GEEK_BOUNDS)
    if run.clip_outputs:
        complexity = np.clip(complexity, *COMPLEXITY_BOUNDS)
        rating = np.clip(rating, *RATING_BOUNDS)
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
