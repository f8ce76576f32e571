"""One batch of games through the scoring stages: the writes to commit together.

Each batch's landing rows and the matching per-stage state rows go into one
transaction (bggscore.tasks.job), so a crash loses at most the batch in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from bggscore.errors import UsageError
from bggscore.modelset import ModelSet
from bggscore.scoring.chain import RunInfo, score_complexity, score_main
from bggscore.scoring.picks import Picks
from bggscore.scoring.upstream import Produced, join_upstream
from bggscore.stages import COMPLEXITY, EMBEDDINGS_TABLE, GRAPH, MAIN, StageGraph
from bggscore.warehouse.base import Warehouse, Write

if TYPE_CHECKING:
    from bggscore.features import BaseCache  # imports scikit-learn
    from bggscore.scoring.frames import PandasFrames


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


INTERVAL_TYPES = ("complexity", "rating", "users_rated", "geek_rating")


def _intervals(
    frame: pl.DataFrame,
    complexity: np.ndarray,
    models: ModelSet,
    n_draws: int,
    run: RunInfo,
    rng: np.random.Generator | None,
    cache: BaseCache,
) -> dict[str, np.ndarray]:
    """Medians and 90% bounds: bggscore's own models draw from their posteriors
    (scoring.intervals); imported scikit-learn pipelines by production's simulation
    (scoring.simulate), seeded per game."""
    from bggscore.scoring.frames import chain_reads, game_seeds, is_own, shared_frame

    used = [t for t in INTERVAL_TYPES if t in models.models and t not in models.absent]
    if models.geek_formula is not None and "geek_rating" in used:
        used.remove("geek_rating")
    own = [t for t in used if is_own(models.models[t].model)]
    if len(own) == len(used):
        from bggscore.scoring.intervals import draw_chain

        return draw_chain(
            frame, complexity, models, n_draws, rng or np.random.default_rng(), cache=cache
        )
    if own:
        raise UsageError(
            f"--intervals cannot mix bggscore's own models ({', '.join(own)}) with imported "
            f"ones ({', '.join(t for t in used if t not in own)})",
            "name models of one kind for complexity, rating, users_rated and geek_rating",
        )
    from bggscore.scoring.simulate import simulate_chain

    loaded = [models.models[t] for t in used]
    formula = models.geek_formula
    return simulate_chain(
        shared_frame(frame, loaded),
        {t: models.models[t].model for t in used},
        {t: chain_reads(models.models[t]) for t in used},
        n_draws,
        game_seeds(frame["game_id"].to_numpy(), run.model_fingerprint),
        (formula.prior_rating, formula.prior_weight) if formula else None,
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
    """The writes for one batch (all stages), and its landing rows for a local copy:
    ``compute_batch(prepare_batch(...))``, in one process."""
    prepared = prepare_batch(wh, frame, models, run, stages, graph, held)
    return compute_batch(prepared, models, run, stages, intervals, rng)


@dataclass
class Prepared:
    """One batch joined with everything its stages read of the warehouse: all that
    ``compute_batch`` needs, so the models' part can run in another process
    (``scoring.pool``) while this one keeps every warehouse read and write."""

    rows: int  # games in the batch as read
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)  # stage -> games it scores
    keys: dict[str, pl.Series | None] = field(default_factory=dict)  # stage -> upstream_key
    waiting: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # stage -> upstream
    # stage -> the earlier stage whose frame its own is, rows maybe left out, columns as they
    # are (it read nothing more): shared, not copied, and sent to a worker once
    subset_of: dict[str, str] = field(default_factory=dict)
    # stage -> its frame converted for the models that read pandas (``convert``): made
    # where the batch is received, never sent
    pandas: dict[str, PandasFrames] = field(default_factory=dict)


def convert(prepared: Prepared, models: ModelSet) -> Prepared:
    """The pandas frames the stages' models (those that are not bggscore's own) will read,
    made ahead: ``compute_batch`` then only appends their chain columns."""
    from bggscore.scoring.frames import PandasFrames

    for stage, frame in prepared.frames.items():
        if frame.is_empty():
            continue
        loaded = [models.models[t] for t in GRAPH.get(stage).model_types if t in models.models]
        if stage == MAIN and _same_rows(prepared):
            shared = prepared.pandas.get(COMPLEXITY)
            if shared is not None:
                prepared.pandas[MAIN] = shared.warm(loaded)
                continue
        prepared.pandas[stage] = PandasFrames(frame).warm(loaded)
    return prepared


def _same_rows(prepared: Prepared) -> bool:
    """Whether main's frame is the complexity stage's, row for row."""
    return prepared.subset_of.get(MAIN) == COMPLEXITY and len(prepared.frames[MAIN]) == len(
        prepared.frames[COMPLEXITY]
    )


def prepare_batch(
    wh: Warehouse | None,
    frame: pl.DataFrame,
    models: ModelSet,
    run: RunInfo,
    stages: list[str],
    graph: StageGraph = GRAPH,
    held: dict[str, dict[str, set[int]]] | None = None,
    picks: Picks | None = None,
) -> Prepared:
    """Each stage's games joined with what it reads of earlier stages (``join_upstream``):
    stored outputs are read here; an output this pass computes (complexity before main)
    is only named here (its job id) and joined by ``compute_batch``. Games missing one
    are not scored by that stage (nor by later ones) and are reported as waiting; so are
    the games ``held`` names (stage -> upstream stage -> games it must redo first). With
    ``picks``, each stage scores only the games it picks."""
    held = held or {}
    picks = picks or Picks()
    prepared = Prepared(len(frame))
    produced: dict[str, Produced] = {}
    scored: set[int] = set()
    read: dict[str, pl.Series] = {}  # inputs the complexity stage read, for main to reuse
    if COMPLEXITY in stages:
        joined = join_upstream(
            wh,
            picks.rows(COMPLEXITY, frame, scored),
            graph.upstream(COMPLEXITY),
            held=held.get(COMPLEXITY),
            expand_embeddings=models.reads_embeddings(COMPLEXITY),
            stage=COMPLEXITY,
            inputs=graph.inputs_of(COMPLEXITY),  # e.g. features.embeddings_table
            embedding_width=models.embedding_width(COMPLEXITY),
        )
        if joined.waiting:
            prepared.waiting[COMPLEXITY] = joined.waiting
        prepared.frames[COMPLEXITY], prepared.keys[COMPLEXITY] = joined.frame, joined.upstream_key
        scored = set(joined.frame["game_id"].to_list())
        # computed from these very rows by compute_batch: only its job id is known yet
        # (with picks, for the games complexity scores; main reads the others' stored)
        produced[COMPLEXITY] = Produced({}, run.job_id, frozenset(scored) if picks.own else None)
        if COMPLEXITY not in picks.own:
            # without picks main scores the games complexity scores, as complexity read them
            frame = joined.frame
            if MAIN not in picks.own:  # and the inputs it read, rows aligned
                read = joined.read
            if frame.is_empty():  # every game of the batch waits on an upstream stage
                return prepared
    if MAIN in stages:
        inputs = graph.inputs_of(MAIN)  # e.g. features.embeddings_table
        reuse = {name: key for name, key in read.items() if _same_input(models, name)}
        joined = join_upstream(
            wh,
            picks.rows(MAIN, frame, scored),
            graph.upstream(MAIN),
            produced=produced,
            held=held.get(MAIN),
            expand_embeddings=models.reads_embeddings(MAIN),
            stage="--stage main",
            inputs=inputs,
            embedding_width=models.embedding_width(MAIN),
            reuse=reuse,
        )
        if joined.waiting:
            prepared.waiting[MAIN] = joined.waiting
        prepared.frames[MAIN], prepared.keys[MAIN] = joined.frame, joined.upstream_key
        if (
            COMPLEXITY in stages
            and not picks.own
            and all(name in produced or name in reuse for name in (*graph.upstream(MAIN), *inputs))
        ):
            prepared.subset_of[MAIN] = COMPLEXITY
    return prepared


def _same_input(models: ModelSet, name: str) -> bool:
    """Whether main reads input ``name`` as the complexity stage's frame already holds it:
    the embeddings table's vectors as the same emb_* columns, or not as columns at all."""
    if name != EMBEDDINGS_TABLE or not models.reads_embeddings(MAIN):
        return True
    return models.reads_embeddings(COMPLEXITY) and (
        models.embedding_width(COMPLEXITY) == models.embedding_width(MAIN)
    )


def compute_batch(
    prepared: Prepared,
    models: ModelSet,
    run: RunInfo,
    stages: list[str],
    intervals: int = 0,
    rng: np.random.Generator | None = None,
) -> Batch:
    """The models' part of a batch: each stage's rows and state rows (no warehouse)."""
    from bggscore.features import BaseCache
    from bggscore.scoring.frames import PandasFrames

    writes: list[Write] = []
    rows, waiting = prepared.rows, prepared.waiting
    landing = None
    done: dict[str, list[int]] = {}
    complexity_rows = None
    cache = BaseCache()  # models sharing a feature base build it once for this batch
    frames = None  # pandas frames (models that are not bggscore's own), shared by the stages
    if COMPLEXITY in stages:
        frame = prepared.frames[COMPLEXITY]
        done[COMPLEXITY] = []
        if frame.is_empty() and MAIN not in prepared.frames:
            return Batch([], {stage: [] for stage in stages}, rows, None, waiting)
        if not frame.is_empty():
            frames = prepared.pandas.get(COMPLEXITY) or PandasFrames(frame)
            complexity_rows = score_complexity(frame, models, run, cache, frames)
            key = models.stage_key(COMPLEXITY)
            writes += [
                Write("complexity_predictions", complexity_rows),
                Write(
                    "scoring_state",
                    _state_rows(frame, COMPLEXITY, key, prepared.keys[COMPLEXITY], run),
                    "upsert",
                ),
            ]
            done[COMPLEXITY] = frame["game_id"].to_list()
    if MAIN in stages:
        frame = prepared.frames[MAIN]
        if not _same_rows(prepared):  # the complexity stage's pandas frames are not these
            frames = prepared.pandas.get(MAIN)
        if complexity_rows is not None:  # what this batch just computed, by game
            frame = _with_computed(frame, complexity_rows)
            if not frame["game_id"].equals(prepared.frames[COMPLEXITY]["game_id"]):
                cache = BaseCache()  # a cache's blocks are of one frame's rows
        if frame.is_empty():
            return Batch(writes, {**done, MAIN: []}, rows, None, waiting)
        # the complexity model's own value, as production chains it (clipped only in its table)
        complexity = frame["predicted_complexity_raw"].to_numpy()
        extra = None
        if intervals:
            extra = _intervals(frame, complexity, models, intervals, run, rng, cache)
        landing = score_main(frame, complexity, models, run, extra, cache, frames)
        writes += [
            Write("ml_predictions_landing", landing),
            Write(
                "scoring_state",
                _state_rows(frame, MAIN, models.stage_key(MAIN), prepared.keys[MAIN], run),
                "upsert",
            ),
        ]
        done[MAIN] = frame["game_id"].to_list()
    return Batch(writes, done, rows, landing, waiting)


COMPLEXITY_OUTPUTS = ("predicted_complexity", "predicted_complexity_raw")


def _with_computed(frame: pl.DataFrame, complexity_rows: pl.DataFrame) -> pl.DataFrame:
    """Main's rows with the complexity this batch computed, where it did; the others keep
    the stored complexity their batch read (a pass that picks games per stage)."""
    computed = complexity_rows.select("game_id", *COMPLEXITY_OUTPUTS)
    stored = [c for c in COMPLEXITY_OUTPUTS if c in frame.columns]
    if not stored:
        return frame.join(computed, on="game_id", how="left", maintain_order="left")
    joined = frame.join(computed, on="game_id", how="left", maintain_order="left", suffix="_now")
    return joined.with_columns(pl.coalesce(f"{c}_now", c).alias(c) for c in stored).drop(
        [f"{c}_now" for c in stored]
    )
