"""One batch of games through the scoring stages: the writes to commit together.

Each batch's landing rows and the matching per-stage state rows go into one
transaction (bggscore.tasks.job), so a crash loses at most the batch in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from bggscore.modelset import ModelSet
from bggscore.scoring.chain import RunInfo, score_complexity, score_main
from bggscore.scoring.upstream import Produced, join_upstream
from bggscore.stages import COMPLEXITY, GRAPH, MAIN, StageGraph
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


@dataclass
class Batch:
    """What one batch commits, which games it covered, and which had to wait."""

    writes: list[Write]
    stage_ids: dict[str, list[int]]  # stage -> the games whose rows the writes hold
    rows: int  # games in the batch as read (progress counts these)
    landing: pl.DataFrame | None = None  # for a local copy
    waiting: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # stage -> upstream


def score_batch(
    wh: Warehouse | None,
    frame: pl.DataFrame,
    models: ModelSet,
    run: RunInfo,
    stages: list[str],
    intervals: int = 0,
    rng: np.random.Generator | None = None,
    graph: StageGraph = GRAPH,
    held: dict[str, dict[str, set[int]]] | None = None,
) -> Batch:
    """The writes for one batch (all stages), and its landing rows for a local copy.

    Each stage first joins what it reads of earlier stages (``join_upstream``): the
    complexity just computed in this batch, or stored outputs. Games missing one are
    not scored by that stage (nor by later ones) and are reported as waiting; so are the
    games ``held`` names (stage -> upstream stage -> games it must redo first)."""
    held = held or {}
    from bggscore.features import BaseCache

    writes: list[Write] = []
    rows = len(frame)
    landing = None
    done: dict[str, list[int]] = {}
    waiting: dict[str, dict[str, list[int]]] = {}
    produced: dict[str, Produced] = {}
    cache = BaseCache()  # models sharing a feature base build it once for this batch
    if COMPLEXITY in stages:
        joined = join_upstream(
            wh,
            frame,
            graph.upstream(COMPLEXITY),
            held=held.get(COMPLEXITY),
            expand_embeddings=models.reads_embeddings(COMPLEXITY),
            stage=COMPLEXITY,
        )
        frame = joined.frame
        if joined.waiting:
            waiting[COMPLEXITY] = joined.waiting
        if frame.is_empty():  # every game of the batch waits on an upstream stage
            return Batch([], {stage: [] for stage in stages}, rows, None, waiting)
        complexity_rows = score_complexity(frame, models, run, cache)
        writes += [
            Write("complexity_predictions", complexity_rows),
            Write(
                "scoring_state",
                _state_rows(
                    frame, COMPLEXITY, models.stage_key(COMPLEXITY), joined.upstream_key, run
                ),
                "upsert",
            ),
        ]
        done[COMPLEXITY] = frame["game_id"].to_list()
        produced[COMPLEXITY] = Produced(
            {
                "predicted_complexity": complexity_rows["predicted_complexity"],
                "predicted_complexity_raw": complexity_rows["predicted_complexity_raw"],
            },
            run.job_id,
        )
    if MAIN in stages:
        joined = join_upstream(
            wh,
            frame,
            graph.upstream(MAIN),
            produced=produced,
            held=held.get(MAIN),
            expand_embeddings=models.reads_embeddings(MAIN),
            stage="--stage main",
        )
        frame = joined.frame
        if joined.waiting:
            waiting[MAIN] = joined.waiting
        if frame.is_empty():
            return Batch(writes, {**done, MAIN: []}, rows, None, waiting)
        # the complexity model's own value, as production chains it (clipped only in its table)
        complexity = frame["predicted_complexity_raw"].to_numpy()
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
                _state_rows(frame, MAIN, models.stage_key(MAIN), joined.upstream_key, run),
                "upsert",
            ),
        ]
        done[MAIN] = frame["game_id"].to_list()
    return Batch(writes, done, rows, landing, waiting)
