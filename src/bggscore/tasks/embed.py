"""`bggscore embed`: description (text) embeddings, then game embeddings, incrementally.

Text comes first because game embeddings read each game's stored description
embedding and predicted complexity. Each stage streams its games in batches and
commits the embedding rows with the stage's state rows in one transaction, like
`score`. A game embedding model records the text model it was trained on, so
vector spaces are never mixed: a new text model version means retraining the
game model first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bggscore.detection import (
    check_inputs,
    check_max_games,
    detect_stage,
    input_hash,
    missing_inputs,
)
from bggscore.errors import RegistryError, UsageError
from bggscore.locking import pipeline_lock
from bggscore.modelset import ModelSet, model_graph, open_settings_registry, resolve_models
from bggscore.results import EmbedResult, MissingInputs
from bggscore.runstatus import tracking
from bggscore.scoring.batch import Batch
from bggscore.scoring.upstream import join_upstream
from bggscore.stages import (
    DEFAULT_EMBED_BATCH_SIZE,
    DEFAULT_MAX_GAMES,
    EMBED_STAGES,
    GAME_EMBEDDINGS,
    GRAPH,
    TEXT_EMBEDDINGS,
)
from bggscore.tasks.job import Job, held_upstream, split_waiting, warn_missing, warn_waiting
from bggscore.warehouse import open_warehouse, require_warehouse
from bggscore.warehouse.base import Warehouse, Write
from bggscore.warehouse.lease import stage_lease
from bggscore.warehouse.queries import Selection
from bggscore.wording import counted

if TYPE_CHECKING:
    from bggscore.console import Console
    from bggscore.settings import Settings

KINDS = {GRAPH.get(stage).short: stage for stage in EMBED_STAGES}  # --kind text -> stage
MODEL_TYPE = {stage: GRAPH.get(stage).model_types[0] for stage in EMBED_STAGES}
TRUNCATIONS = (8, 16, 32)
TABLES = GRAPH.tables(EMBED_STAGES)


def parse_kind(value: str) -> list[str]:
    if value == "all":
        return list(KINDS.values())
    if value not in KINDS:
        raise UsageError(f"unknown --kind {value!r}; choose {', '.join(KINDS)} or all")
    return [KINDS[value]]


@dataclass
class EmbedOptions:
    selection: Selection
    stages: list[str] = field(default_factory=lambda: list(KINDS.values()))
    changed_only: bool = False
    max_games: int = DEFAULT_MAX_GAMES
    batch_size: int = DEFAULT_EMBED_BATCH_SIZE
    fresh: tuple[str, ...] = ()  # stages the caller just ran (`run`): their outputs are current


def _as_list_column(name: str, vectors: np.ndarray) -> pl.Series:
    return pl.Series(name, vectors.astype(np.float64)).cast(pl.List(pl.Float64))


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, so a truncation's dot products are cosines too."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _state(
    frame: pl.DataFrame, stage: str, key: str, job_id: str, ts: datetime, **columns: Any
) -> pl.DataFrame:
    return frame.select(
        pl.lit(stage).alias("stage"),
        "game_id",
        "feature_hash",
        pl.lit(key).alias("model_key"),
        pl.lit(job_id).alias("job_id"),
        pl.lit(ts, dtype=pl.Datetime("us", "UTC")).alias("score_ts"),
    ).with_columns(**columns)


class _EmbedJob:
    def __init__(
        self, settings: Settings, options: EmbedOptions, console: Console, wh: Warehouse
    ) -> None:
        self.settings, self.options, self.console, self.wh = settings, options, console, wh
        self.registry = open_settings_registry(settings)
        self.graph = model_graph(settings, self.registry, {})
        self.stages = self.graph.order(options.stages)
        self.job = Job(wh, console, "embed", self.stages, upload=True)
        self.empty = 0
        self.holding: dict[str, set[int]] = {}
        self.capped: list[str] = []  # stages whose detection hit --max-games
        self.missing = MissingInputs()  # games without an input a stage needs

    def models(self, stage: str, load: bool = True) -> ModelSet:
        return resolve_models(self.settings, self.registry, [stage], {}, load)

    def run_stage(
        self,
        stage: str,
        selection: Selection,
        label: str,
        total: int,
        held: dict[str, set[int]] | None = None,
    ) -> None:
        """Embed the selection with the stage's model (the caller marks the run failed);
        ``held`` games wait for an upstream stage (upstream -> ids)."""
        self.holding = held or {}
        models = self.models(stage)
        loaded = models.models[MODEL_TYPE[stage]]
        key = models.stage_key(stage)
        job_id, ts = self.job.start()
        columns = ["game_id", "name", "year_published", *_warehouse_columns(loaded)]
        frames = self.wh.read_features(
            selection, sorted(set(columns)), self.options.batch_size, with_hash=True
        )
        build = self._text_batch if stage == TEXT_EMBEDDINGS else self._game_batch

        def batch(frame: pl.DataFrame) -> Batch:
            return build(frame, loaded, key, job_id, ts)

        self.job.run_pass([stage], frames, total, label, batch)

    def check_text_model(self) -> None:
        """Refuse (before any work) a game model trained on another text model version."""
        game = self.models(GAME_EMBEDDINGS, load=False)
        registration = game.models[MODEL_TYPE[GAME_EMBEDDINGS]].registration
        trained_on = registration.training.get("text_model")
        current = self.models(TEXT_EMBEDDINGS, load=False).label(MODEL_TYPE[TEXT_EMBEDDINGS])
        if trained_on and trained_on != current:
            raise RegistryError(
                f"{registration.label} was trained on text embeddings from {trained_on}, "
                f"but text embeddings now come from {current}; mixing them would mix vector spaces",
                "retrain it: `bggscore models train --outcome game_embeddings`",
            )

    def _text_batch(
        self, frame: pl.DataFrame, loaded: Any, key: str, job_id: str, ts: datetime
    ) -> Batch:
        vectors, empty = loaded.model.embed(frame)  # one pass: vectors and empty mask
        self.empty += int(empty.sum())
        reg = loaded.registration
        rows = frame.select("game_id", "name", "feature_hash").with_columns(
            _as_list_column("embedding", vectors),
            pl.lit(reg.name).alias("embedding_model"),
            pl.lit(reg.version, dtype=pl.Int64).alias("embedding_version"),
            pl.lit(vectors.shape[1], dtype=pl.Int64).alias("embedding_dim"),
            pl.lit("ppmi-svd").alias("algorithm"),
            pl.lit("sif").alias("document_method"),
            pl.lit(ts, dtype=pl.Datetime("us", "UTC")).alias("created_ts"),
            pl.lit(job_id).alias("job_id"),
        )
        hashes = pl.Series("input_hash", [input_hash(d) for d in frame["description"]])
        state = _state(
            frame,
            TEXT_EMBEDDINGS,
            key,
            job_id,
            ts,
            upstream_key=pl.lit(None, pl.String),
            input_hash=hashes,
        )
        writes = [Write("description_embeddings", rows), Write("scoring_state", state, "upsert")]
        return Batch(writes, {TEXT_EMBEDDINGS: frame["game_id"].to_list()}, len(frame))

    def _game_batch(
        self, frame: pl.DataFrame, loaded: Any, key: str, job_id: str, ts: datetime
    ) -> Batch:
        rows_read = len(frame)
        joined = join_upstream(
            self.wh,
            frame,
            self.graph.upstream(GAME_EMBEDDINGS),
            held=self.holding,
            inputs=self.graph.inputs_of(GAME_EMBEDDINGS),
        )
        frame = inputs = joined.frame
        waiting = {GAME_EMBEDDINGS: joined.waiting} if joined.waiting else {}
        if frame.is_empty():  # every game of the batch waits on an upstream stage
            return Batch([], {GAME_EMBEDDINGS: []}, rows_read, waiting=waiting)
        embedder = loaded.model
        vectors = embedder.transform(inputs)
        coords = embedder.pca_.transform(vectors)  # = coordinates(inputs), without a 2nd pass
        reg = loaded.registration
        rows = frame.select("game_id", "name", "year_published", "feature_hash").with_columns(
            _as_list_column("embedding", vectors),
            *(_as_list_column(f"embedding_{k}", _unit(vectors[:, :k])) for k in TRUNCATIONS),
            _as_list_column("coordinates_2d", coords),
            pl.lit(reg.name).alias("embedding_model"),
            pl.lit(reg.version, dtype=pl.Int64).alias("embedding_version"),
            pl.lit(vectors.shape[1], dtype=pl.Int64).alias("embedding_dim"),
            pl.lit("truncated-svd").alias("algorithm"),
            pl.lit(ts, dtype=pl.Datetime("us", "UTC")).alias("created_ts"),
            pl.lit(job_id).alias("job_id"),
        )
        state = _state(frame, GAME_EMBEDDINGS, key, job_id, ts, upstream_key=joined.upstream_key)
        writes = [Write("game_embeddings", rows), Write("scoring_state", state, "upsert")]
        done = {GAME_EMBEDDINGS: frame["game_id"].to_list()}
        return Batch(writes, done, rows_read, waiting=waiting)

    def held(self, stage: str, selection: Selection) -> dict[str, set[int]]:
        """Games an upstream stage `embed` does not run (e.g. complexity) must redo first."""
        running = [*self.stages, *self.options.fresh]
        return held_upstream(
            self.settings, self.registry, self.wh, self.graph, stage, running, {}, selection
        )

    def held_or_missing(self, stage: str, selection: Selection) -> dict[str, set[int]]:
        """``held``, and the games lacking an input the stage needs (a full pass)."""
        lacking = self.missing.found.get(stage, {})
        return {**self.held(stage, selection), **{n: set(ids) for n, ids in lacking.items()}}

    def ready(self, stage: str, ids: list[int]) -> list[int]:
        """Of a stage's detected games, those whose upstream outputs are current; the
        others wait (reported)."""
        held = self.held(stage, Selection(game_ids=tuple(ids)))
        for upstream, waiting in held.items():
            self.job.waiting.setdefault((stage, upstream), []).extend(sorted(waiting))
        skip = {i for waiting in held.values() for i in waiting}
        return [i for i in ids if i not in skip]

    def stage_count(self, stage: str) -> int:
        return self.job.stage_counts.get(stage, 0)


def _warehouse_columns(loaded: Any) -> list[str]:
    return [
        c.name
        for c in loaded.registration.signature
        if (c.model_extra or {}).get("source", "warehouse") == "warehouse"
    ]


def _embed_stage(
    job: _EmbedJob, wh: Warehouse, stage: str, key: str, options: EmbedOptions, console: Console
) -> None:
    if options.changed_only:
        found = detect_stage(wh, stage, key, options.selection, options.max_games, graph=job.graph)
        if found.capped:
            job.capped.append(stage)
            console.warn(
                f"{stage}: more than {options.max_games:,} games need embedding; "
                "embedding the first ones (new, then oldest); rerun to continue"
            )
        ids = job.ready(stage, sorted(found.game_ids))
        if ids:
            label = f"{stage}: {counted(len(ids), 'changed game')}"
            job.run_stage(stage, Selection(game_ids=tuple(ids)), label, len(ids))
    else:
        total = wh.count_features(options.selection)
        if total:
            label = f"{stage}: {options.selection.describe()}"
            job.run_stage(
                stage,
                options.selection,
                label,
                total,
                job.held_or_missing(stage, options.selection),
            )


def run_embed(
    settings: Settings, options: EmbedOptions, console: Console, *, lock: bool = True
) -> EmbedResult:
    """Embed the selection (or what changed), stage by stage in graph order, under the
    home's lock (``lock=False``: the caller holds it)."""
    check_max_games(options.max_games)
    if lock:
        require_warehouse(settings)  # a mistyped home: no folder, no lock file left
        with (
            pipeline_lock(settings.home, "embed"),
            stage_lease(settings, "embed", options.stages),
            tracking(settings.home, "embed"),
        ):
            return run_embed(settings, options, console, lock=False)
    started = time.monotonic()
    described = options.selection.describe()
    with open_warehouse(settings) as wh:
        wh.require_tables(TABLES)
        job = _EmbedJob(settings, options, console, wh)
        # game embeddings read complexity, which may read the embeddings table
        check_inputs(wh, job.graph, job.stages)
        job.missing = missing_inputs(wh, job.graph, job.stages, options.selection)
        # registrations first (cheap, nothing unpickled): unknown models fail before work
        keys = {stage: job.models(stage, load=False).stage_key(stage) for stage in job.stages}
        labels = {MODEL_TYPE[s]: job.models(s, load=False).label(MODEL_TYPE[s]) for s in job.stages}
        if GAME_EMBEDDINGS in job.stages:
            job.check_text_model()
        try:
            for stage in job.stages:
                _embed_stage(job, wh, stage, keys[stage], options, console)
        except BaseException as exc:
            # whatever fails (a model failing its sha256 check after the text stage committed,
            # detection between stages), the run started by an earlier stage ends 'failed'
            job.job.fail(exc)
            raise
        job.job.finish()
    done = job.job.done_ids
    reason = None if done else ("no_changes" if options.changed_only else "no_games")
    if job.empty:
        console.warn(
            f"{counted(job.empty, 'game')} had no usable description: embedded as zero vectors"
        )
    waiting = split_waiting(job.job.waiting, job.graph, job.missing)
    if waiting and not job.job.done_ids:
        reason = "waiting_on_upstream"  # nothing done: every game waits on another stage
    warn_waiting(console, waiting)
    warn_missing(console, job.missing)
    return EmbedResult(
        job.job.job_id,
        {stage: job.stage_count(stage) for stage in job.stages},
        labels,
        reason,
        job.empty,
        time.monotonic() - started,
        described + (" (changed only)" if options.changed_only else ""),
        waiting_on=waiting,
        capped=job.capped,
        missing_inputs=job.missing,
    )
