"""One batch of games through the scoring stages: the writes to commit together.

Each batch's landing rows and the matching per-stage state rows go into one
transaction (bggscore.tasks.job), so a crash loses at most the batch in flight.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from bggscore.errors import InputError, UsageError
from bggscore.modelset import ModelSet
from bggscore.scoring.chain import RunInfo, score_complexity, score_main
from bggscore.stages import COMPLEXITY, MAIN
from bggscore.warehouse.base import Warehouse, Write


def _state_rows(
    frame: pl.DataFrame,
    stage: str,
    model_key: str,
    upstream: pl.Series | str | None,
    run: RunInfo,
) -> pl.DataFrame:
    upstream_expr = (
        pl.Series("upstream_key", upstream)
        if isinstance(upstream, pl.Series)
        else pl.lit(upstream, pl.String).alias("upstream_key")
    )
    return frame.select(
        pl.lit(stage).alias("stage"),
        "game_id",
        "feature_hash",
        pl.lit(model_key).alias("model_key"),
        upstream_expr,
        pl.lit(run.job_id).alias("job_id"),
        pl.lit(run.score_ts, dtype=pl.Datetime("us", "UTC")).alias("score_ts"),
    )


def score_batch(
    wh: Warehouse | None,
    frame: pl.DataFrame,
    models: ModelSet,
    run: RunInfo,
    stages: list[str],
    intervals: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[list[Write], pl.DataFrame | None]:
    """The writes for one batch (all stages), and its landing rows for a local copy."""
    writes: list[Write] = []
    landing = None
    from bggscore.features import BaseCache

    cache = BaseCache()  # models sharing a feature base build it once for this batch
    if COMPLEXITY in stages:
        complexity_rows = score_complexity(frame, models, run, cache)
        complexity = complexity_rows["predicted_complexity"].to_numpy()
        upstream: pl.Series | str | None = f"complexity:{run.job_id}"
        writes += [
            Write("complexity_predictions", complexity_rows),
            Write(
                "scoring_state",
                _state_rows(frame, COMPLEXITY, models.stage_key(COMPLEXITY), None, run),
                "upsert",
            ),
        ]
    else:
        complexity, upstream = _stored_complexity(wh, frame)
    if MAIN in stages:
        extra = None
        if intervals:
            from bggscore.scoring.intervals import draw_chain

            extra = draw_chain(
                frame, complexity, models, intervals, rng or np.random.default_rng(), cache=cache
            )
        landing = score_main(frame, complexity, models, run, extra, cache)
        writes += [
            Write("ml_predictions_landing", landing),
            Write(
                "scoring_state",
                _state_rows(frame, MAIN, models.stage_key(MAIN), upstream, run),
                "upsert",
            ),
        ]
    return writes, landing


def _stored_complexity(wh: Warehouse | None, frame: pl.DataFrame) -> tuple[np.ndarray, pl.Series]:
    """`--stage main` scores with the complexity each game was last scored with."""
    if wh is None:
        raise UsageError("--stage main reads stored complexity and cannot run with --no-upload")
    ids = frame["game_id"].to_list()
    stored = wh.latest_complexity(ids)
    joined = frame.select("game_id").join(stored, on="game_id", how="left")
    missing = joined.filter(pl.col("predicted_complexity").is_null())["game_id"]
    if len(missing):
        shown = ", ".join(str(v) for v in missing.head(5))
        raise InputError(
            f"{len(missing)} game(s) have no complexity prediction yet (e.g. {shown})",
            "run `bggscore score --stage complexity` (or --stage all) first",
        )
    upstream = ("complexity:" + joined["complexity_job_id"]).alias("upstream_key")
    return joined["predicted_complexity"].to_numpy(), upstream
