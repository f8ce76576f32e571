"""The numbers behind each picture of the report, from frames the warehouse returned.

Plain polars and dicts: every function here takes frames and returns JSON-ready data (the
``--json`` document is these dicts, and the charts are drawn from them alone). Points a
reader could not tell apart are aggregated (predicted vs actual as binned counts, widths
by rating bins) or sampled (the map), so the page stays small at 500k games.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import polars as pl

from bggscore.detection import REASONS as DETECTED
from bggscore.scoring.outcomes import OUTCOMES
from bggscore.warehouse.queries import REPORT_OUTCOMES

# why a game was scored again, as its history rows show it: detection's reasons, and
# "other" for a row whose recorded inputs all equal the previous row's (a full rerun, or an
# upstream output the table does not record, e.g. a game embedding's complexity)
REASONS = (*DETECTED, "other")
FLAGS = ("is_new", "features", "model", "upstream")  # the lineage query's columns, in order

TOP_MOVES = 10  # games per outcome in "what moved"
LEAST_SURE = 10  # games per outcome in "how sure"
BINS = 30  # per axis, predicted vs actual
MIN_YEAR_GAMES = 5  # a year's coverage is shown from this many games with intervals
MAP_POINTS = 3000  # points drawn on the map at most
MAP_TOP_RATED = 500  # of which always the most rated games
RATING_EDGES = (0, 1, 3, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 100_000)
# Knuth's multiplicative hash: a sample that is the same on every run and every machine
SAMPLE_MULTIPLIER = 2_654_435_761


def _round(value: Any, digits: int = 4) -> Any:
    """A float rounded to ``digits`` significant digits (None for NaN, inf and None)."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    if number == 0:
        return 0.0
    return round(number, digits - 1 - math.floor(math.log10(abs(number))))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def reason_of(flags: pl.DataFrame) -> pl.Series:
    """Each row's first reason, in detection's order (new, features, model, upstream),
    "other" when none holds."""
    expr = pl.lit("other")
    for flag, reason in reversed(list(zip(FLAGS, DETECTED, strict=True))):
        expr = pl.when(pl.col(flag).fill_null(False)).then(pl.lit(reason)).otherwise(expr)
    return flags.select(expr.alias("reason"))["reason"]


def by_reason(frame: pl.DataFrame) -> dict[str, int]:
    """Reason -> games (every reason present, in order) of a frame with reason and games."""
    counts = dict.fromkeys(REASONS, 0)
    for reason, games in frame.group_by("reason").agg(pl.col("games").sum()).iter_rows():
        counts[reason] += int(games)
    return counts


def stage_reasons(lineage: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """stage -> the lineage query's rows, as one frame: job_id, stage, reason, games."""
    parts = [
        frame.select(
            pl.col("job_id"),
            pl.lit(stage).alias("stage"),
            reason_of(frame),
            pl.col("games").cast(pl.Int64),
        )
        for stage, frame in lineage.items()
        if len(frame)
    ]
    if not parts:
        return pl.DataFrame(
            schema={"job_id": pl.String, "stage": pl.String, "reason": pl.String, "games": pl.Int64}
        )
    return pl.concat(parts)


def _seconds(row: dict[str, Any]) -> float | None:
    started, finished = row.get("started_at"), row.get("finished_at")
    if started is None or finished is None:
        return None
    return round((finished - started).total_seconds(), 3)


def job_stages(job: dict[str, Any]) -> list[str]:
    return [s for s in (job.get("stage") or "").split(",") if s]


def run_section(
    job: dict[str, Any] | None, reasons: pl.DataFrame, models: dict[str, str]
) -> dict[str, Any]:
    """Section 1, the job: what it scored by stage and reason, how long, which models."""
    if job is None:
        return {"job": None, "stages": [], "models": {}}
    mine = reasons.filter(pl.col("job_id") == job["job_id"])
    stages = [
        {
            "stage": stage,
            "games": int(mine.filter(pl.col("stage") == stage)["games"].sum()),
            "by_reason": by_reason(mine.filter(pl.col("stage") == stage)),
        }
        for stage in job_stages(job)
    ]
    return {
        "job": {
            "job_id": job["job_id"],
            "command": job["command"],
            "status": job["status"],
            "games": int(job["games"] or 0),
            "started_at": _iso(job.get("started_at")),
            "finished_at": _iso(job.get("finished_at")),
            "seconds": _seconds(job),
        },
        "stages": stages,
        "models": models,
    }


def runs_section(runs: pl.DataFrame, reasons: pl.DataFrame) -> list[dict[str, Any]]:
    """Section 1, over time: each run of the window, its games by stage and reason."""
    out = []
    for row in runs.iter_rows(named=True):
        mine = reasons.filter(pl.col("job_id") == row["job_id"])
        out.append(
            {
                "job_id": row["job_id"],
                "command": row["command"],
                "status": row["status"],
                "games": int(row["games"] or 0),
                "started_at": _iso(row["started_at"]),
                "seconds": _seconds(row),
                "stages": {
                    stage: by_reason(mine.filter(pl.col("stage") == stage))
                    for stage in job_stages(row)
                },
            }
        )
    return out


def _scale(outcome: str) -> str | None:
    """users_rated is judged on the log scale its model predicts (log1p); others as they are."""
    return OUTCOMES[outcome].transform


def _on_scale(expr: pl.Expr, outcome: str) -> pl.Expr:
    return expr.cast(pl.Float64).log1p() if _scale(outcome) == "log1p" else expr.cast(pl.Float64)


def moved_section(moves: pl.DataFrame | None, top: int = TOP_MOVES) -> dict[str, Any]:
    """Section 2: of the job's games scored before, why each was rescored, and per outcome
    the games whose prediction changed most (old and new values; users_rated ranked on its
    log scale). None: a job that wrote no predictions."""
    if moves is None or moves.is_empty():
        empty: dict[str, Any] = {"changed": 0, "mean_abs_change": None, "top": []}
        return {
            "rescored": 0,
            "by_reason": dict.fromkeys(REASONS, 0),
            "outcomes": {o: {**empty, "scale": _scale(o)} for o in REPORT_OUTCOMES},
        }
    reasons = reason_of(
        moves.select(
            pl.lit(False).alias("is_new"),
            pl.col("feature_hash").ne_missing(pl.col("previous_feature_hash")).alias("features"),
            pl.col("model_fingerprint")
            .ne_missing(pl.col("previous_model_fingerprint"))
            .alias("model"),
            pl.col("predicted_complexity")
            .ne_missing(pl.col("previous_predicted_complexity"))
            .alias("upstream"),
        )
    )
    moves = moves.with_columns(reasons)
    counts = by_reason(moves.select("reason", pl.lit(1).alias("games")))
    outcomes = {}
    for outcome in REPORT_OUTCOMES:
        new, old = pl.col(f"predicted_{outcome}"), pl.col(f"previous_predicted_{outcome}")
        change = (_on_scale(new, outcome) - _on_scale(old, outcome)).abs()
        ranked = (
            moves.with_columns(change.alias("rank"))
            .filter(pl.col("rank").is_not_null() & pl.col("rank").is_finite())
            .sort(["rank", "game_id"], descending=[True, False])
        )
        changed = ranked.filter(pl.col("rank") > 0)
        outcomes[outcome] = {
            "changed": len(changed),
            "mean_abs_change": _round(changed["rank"].mean()) if len(changed) else None,
            "scale": _scale(outcome),
            "top": [
                {
                    "game_id": row["game_id"],
                    "name": row["name"],
                    "reason": row["reason"],
                    "old": _round(row[f"previous_predicted_{outcome}"]),
                    "new": _round(row[f"predicted_{outcome}"]),
                    "change": _round(
                        row[f"predicted_{outcome}"] - row[f"previous_predicted_{outcome}"]
                    ),
                }
                for row in changed.head(top).iter_rows(named=True)
            ],
        }
    return {"rescored": len(moves), "by_reason": counts, "outcomes": outcomes}


def actuals(predictions: pl.DataFrame) -> pl.DataFrame:
    """The as-of predictions with the actual_* columns under games_features' own names (the
    outcomes' filters name those)."""
    return predictions.rename(
        {c: c.removeprefix("actual_") for c in predictions.columns if c.startswith("actual_")}
    )


def judged(frame: pl.DataFrame, outcome: str) -> pl.DataFrame:
    """The games an outcome is judged on: an actual its model would train on, and a
    prediction. Columns: game_id, year, predicted, actual, lower, upper (original units)."""
    spec = OUTCOMES[outcome]
    rows = frame.filter(pl.col(spec.target).is_not_null())
    if spec.train_filter is not None:
        rows = rows.filter(spec.train_filter)
    return rows.select(
        pl.col("game_id"),
        pl.col("year_published").alias("year"),
        pl.col(f"predicted_{outcome}").cast(pl.Float64).alias("predicted"),
        pl.col(spec.target).cast(pl.Float64).alias("actual"),
        pl.col(f"{outcome}_lower_90").cast(pl.Float64).alias("lower"),
        pl.col(f"{outcome}_upper_90").cast(pl.Float64).alias("upper"),
    ).filter(pl.col("predicted").is_not_null() & pl.col("predicted").is_finite())


def metrics(predicted: pl.Series, actual: pl.Series) -> dict[str, Any]:
    """RMSE, MAE and R² of the predictions, beside the mean predictor's RMSE and MAE (the
    mean of these actuals for every game)."""
    n = len(actual)
    if n == 0:
        return {
            "games": 0,
            "rmse": None,
            "mae": None,
            "r2": None,
            "mean_rmse": None,
            "mean_mae": None,
        }
    errors = predicted - actual
    baseline = actual - actual.mean()
    total = float((baseline**2).sum())
    return {
        "games": n,
        "rmse": _round(math.sqrt(float((errors**2).mean()))),
        "mae": _round(float(errors.abs().mean())),
        "r2": _round(1.0 - float((errors**2).sum()) / total) if total > 0 else None,
        "mean_rmse": _round(math.sqrt(float((baseline**2).mean()))),
        "mean_mae": _round(float(baseline.abs().mean())),
    }


def _edges(low: float, high: float, bins: int) -> list[float]:
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        high = low + 1.0
    step = (high - low) / bins
    return [low + i * step for i in range(bins + 1)]


def binned(x: pl.Series, y: pl.Series, bins: int = BINS) -> list[dict[str, Any]]:
    """Counts of (x, y) pairs on a shared bins x bins grid over both ranges (the 0.5th to
    99.5th percentile, so one outlier does not squeeze the rest into a corner)."""
    if len(x) == 0:
        return []
    both = pl.concat([x, y])
    low, high = both.quantile(0.005), both.quantile(0.995)
    edges = _edges(float(low or 0.0), float(high or 0.0), bins)
    step = edges[1] - edges[0]
    frame = pl.DataFrame({"x": x, "y": y}).select(
        ((pl.col(c) - edges[0]) / step).floor().clip(0, bins - 1).cast(pl.Int64).alias(c)
        for c in ("x", "y")
    )
    counts = frame.group_by("x", "y").len().sort("x", "y")
    return [
        {
            "x": _round(edges[i]),
            "x2": _round(edges[i + 1]),
            "y": _round(edges[j]),
            "y2": _round(edges[j + 1]),
            "games": int(n),
        }
        for i, j, n in counts.iter_rows()
    ]


def good_section(predictions: pl.DataFrame) -> dict[str, Any]:
    """Section 3: predicted vs actual per outcome (binned), metrics beside the mean
    predictor, and with intervals the share of actuals inside them, overall and by year."""
    frame = actuals(predictions)
    outcomes, cells, coverage = [], [], []
    for outcome in REPORT_OUTCOMES:
        rows = judged(frame, outcome)
        scale = _scale(outcome)
        x = _on_scale(pl.col("predicted"), outcome)
        y = _on_scale(pl.col("actual"), outcome)
        scaled = rows.select(x.alias("x"), y.alias("y"))
        outcomes.append(
            {
                "outcome": outcome,
                "target": OUTCOMES[outcome].target,
                "scale": scale,
                **metrics(scaled["x"], scaled["y"]),
                **_coverage(rows),
            }
        )
        cells += [{"outcome": outcome, **cell} for cell in binned(scaled["x"], scaled["y"])]
        coverage += [{"outcome": outcome, **year} for year in _coverage_by_year(rows)]
    return {
        "intervals": any(item["coverage"] is not None for item in outcomes),
        "outcomes": outcomes,
        "cells": cells,
        "coverage_by_year": coverage,
    }


def _with_intervals(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.filter(pl.col("lower").is_not_null() & pl.col("upper").is_not_null())


def _inside() -> pl.Expr:
    return (pl.col("actual") >= pl.col("lower")) & (pl.col("actual") <= pl.col("upper"))


def _coverage(rows: pl.DataFrame) -> dict[str, Any]:
    bounded = _with_intervals(rows)
    if not len(bounded):
        return {"interval_games": 0, "coverage": None}
    share = bounded.select(_inside().mean()).item()
    return {"interval_games": len(bounded), "coverage": _round(share)}


def _coverage_by_year(rows: pl.DataFrame) -> list[dict[str, Any]]:
    bounded = _with_intervals(rows).filter(pl.col("year").is_not_null())
    if not len(bounded):
        return []
    years = (
        bounded.group_by(pl.col("year").cast(pl.Int64))
        .agg(pl.len().alias("games"), _inside().mean().alias("coverage"))
        .filter(pl.col("games") >= MIN_YEAR_GAMES)
        .sort("year")
    )
    return [
        {"year": int(year), "games": int(games), "coverage": _round(share)}
        for year, games, share in years.iter_rows()
    ]


def _width(outcome: str) -> pl.Expr:
    """An interval's width, on the outcome's own scale (users_rated: log1p)."""
    return _on_scale(pl.col(f"{outcome}_upper_90"), outcome) - _on_scale(
        pl.col(f"{outcome}_lower_90"), outcome
    )


def sure_section(predictions: pl.DataFrame, top: int = LEAST_SURE) -> dict[str, Any]:
    """Section 4: interval widths against the number of ratings (median and quartiles per
    bin of users_rated), and per outcome the games with the widest intervals."""
    frame = actuals(predictions)
    edges = list(RATING_EDGES)
    by_ratings: list[dict[str, Any]] = []
    least: dict[str, list[dict[str, Any]]] = {}
    bounded_games = 0
    for outcome in REPORT_OUTCOMES:
        rows = frame.select(
            "game_id",
            "name",
            pl.col("users_rated").cast(pl.Float64).fill_null(0).alias("ratings"),
            pl.col(f"predicted_{outcome}").alias("predicted"),
            pl.col(f"{outcome}_lower_90").alias("lower"),
            pl.col(f"{outcome}_upper_90").alias("upper"),
            _width(outcome).alias("width"),
        ).filter(pl.col("width").is_not_null() & pl.col("width").is_finite())
        bounded_games = max(bounded_games, len(rows))
        if not len(rows):
            least[outcome] = []
            continue
        # bin k holds [edges[k], edges[k + 1]); the last one everything from edges[-1] on
        index = pl.sum_horizontal((pl.col("ratings") >= e).cast(pl.Int32) for e in edges[1:])
        stats = (
            rows.group_by(index.alias("bin"))
            .agg(
                pl.len().alias("games"),
                pl.col("width").median().alias("median"),
                pl.col("width").quantile(0.25).alias("q25"),
                pl.col("width").quantile(0.75).alias("q75"),
            )
            .sort("bin")
        )
        for k, games, median, q25, q75 in stats.iter_rows():
            start = edges[k]
            end = edges[k + 1] if k + 1 < len(edges) else None
            by_ratings.append(
                {
                    "outcome": outcome,
                    "ratings_from": start,
                    "ratings_to": end,
                    # where a log axis puts the bin: its geometric middle (0 counts as 0.5)
                    "ratings_mid": _round(math.sqrt(max(start, 0.5) * (end or start * 2))),
                    "games": int(games),
                    "median": _round(median),
                    "q25": _round(q25),
                    "q75": _round(q75),
                }
            )
        widest = rows.sort(["width", "game_id"], descending=[True, False]).head(top)
        least[outcome] = [
            {
                "game_id": row["game_id"],
                "name": row["name"],
                "ratings": int(row["ratings"]),
                "predicted": _round(row["predicted"]),
                "lower": _round(row["lower"]),
                "upper": _round(row["upper"]),
                "width": _round(row["width"]),
            }
            for row in widest.iter_rows(named=True)
        ]
    return {
        "intervals": bounded_games > 0,
        "games_with_intervals": bounded_games,
        "width_scale": {o: _scale(o) for o in REPORT_OUTCOMES},
        "by_ratings": by_ratings,
        "least_sure": least,
    }


def map_sample(
    points: pl.DataFrame,
    predictions: pl.DataFrame,
    keep: Iterable[int] = (),
    limit: int = MAP_POINTS,
) -> dict[str, Any]:
    """Section 5: at most ``limit`` games of the 2-D map: ``keep`` (the --game-id games and
    their neighbours), the most rated, then a fixed pseudo-random rest; each with its name
    and predicted complexity and rating for the colour."""
    total = len(points)
    if not total:
        return {"games": 0, "shown": 0, "points": []}
    colours = actuals(predictions).select(
        "game_id",
        pl.col("users_rated").alias("ratings"),
        "predicted_complexity",
        "predicted_rating",
    )
    frame = (
        points.filter(pl.col("coordinates_2d").list.len() >= 2)
        .select(
            "game_id",
            "name",
            pl.col("coordinates_2d").list.get(0).alias("x"),
            pl.col("coordinates_2d").list.get(1).alias("y"),
        )
        .join(colours, on="game_id", how="left")
        .with_columns(
            pl.col("game_id").is_in(list(keep)).alias("kept"),
            ((pl.col("game_id").cast(pl.UInt64) * SAMPLE_MULTIPLIER) % (2**32)).alias("draw"),
        )
    )
    top = frame.sort(["ratings", "game_id"], descending=[True, False], nulls_last=True)
    top_ids = top.head(min(MAP_TOP_RATED, limit))["game_id"]
    picked = (
        frame.with_columns(
            pl.when(pl.col("kept"))
            .then(0)
            .when(pl.col("game_id").is_in(top_ids))
            .then(1)
            .otherwise(2)
            .alias("tier")
        )
        .sort(["tier", "draw", "game_id"])
        .head(limit)
    )
    return {
        "games": total,
        "shown": len(picked),
        "points": [
            {
                "game_id": row["game_id"],
                "name": row["name"],
                "x": _round(row["x"]),
                "y": _round(row["y"]),
                "complexity": _round(row["predicted_complexity"], 3),
                "rating": _round(row["predicted_rating"], 3),
            }
            for row in picked.sort("game_id").iter_rows(named=True)
        ],
    }
