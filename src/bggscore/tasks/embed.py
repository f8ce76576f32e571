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
    Detection,
    StageChanges,
    check_inputs,
    check_max_games,
    detect_stage,
    detect_stages,
    input_hash,
    needed_inputs,
)
from bggscore.errors import RegistryError, UsageError
from bggscore.locking import pipeline_lock
from bggscore.modelset import ModelSet, model_graph, open_settings_registry, resolve_models
from bggscore.results import EmbedResult, MissingInputs
from bggscore.runstatus import tracking
from bggscore.scoring.batch import Batch
from bggscore.scoring.picks import Picks
from bggscore.scoring.upstream import TEXT_COLUMN, Produced, join_upstream
from bggscore.stages import (
    DEFAULT_EMBED_BATCH_SIZE,
    DEFAULT_MAX_GAMES,
    EMBED_STAGES,
    GAME_EMBEDDINGS,
    GRAPH,
    TEXT_EMBEDDINGS,
)
from bggscore.tasks.job import (
    Job,
    SharedFeatures,
    held_upstream,
    plan_picks,
    read_features,
    split_waiting,
    warn_missing,
    warn_waiting,
)
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
    features: SharedFeatures | None = None  # what `run` reads once for all its steps


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

    def run_pass(
        self,
        stages: list[str],
        selection: Selection,
        label: str,
        total: int,
        held: dict[str, set[int]] | None = None,
        picks: Picks | None = None,
        confirm: pl.DataFrame | None = None,
        last: bool = False,
    ) -> None:
        """Embed the selection with each stage's model in one read of the features (the
        caller marks the run failed; ``last``: the job's last pass): per batch, text
        first, then game embeddings reading the vectors the batch just made (stored ones
        for the games it did not embed).
        ``held`` games wait for an upstream stage (upstream -> ids); ``picks`` says which
        games each stage embeds; ``confirm`` holds the text stage's state of the games
        detection found by their feature hash alone (embedded only if the md5 of their
        description moved)."""
        self.holding = held or {}
        loaded = {}
        keys = {}
        for stage in stages:
            models = self.models(stage)
            loaded[stage] = models.models[MODEL_TYPE[stage]]
            keys[stage] = models.stage_key(stage)
        job_id, ts = self.job.start()
        columns = {"game_id", "name", "year_published"}
        for stage in stages:
            columns.update(_warehouse_columns(loaded[stage]))
        frames = read_features(
            self.wh, self.options.features, selection, sorted(columns), self.options.batch_size
        )

        def batch(frame: pl.DataFrame) -> Batch:
            return self._batch(frame, stages, loaded, keys, (job_id, ts), picks, confirm)

        self.job.run_pass(stages, frames, total, label, batch, last)

    def _batch(
        self,
        frame: pl.DataFrame,
        stages: list[str],
        loaded: dict[str, Any],
        keys: dict[str, str],
        run: tuple[str, datetime],
        picks: Picks | None,
        confirm: pl.DataFrame | None,
    ) -> Batch:
        """One batch through the pass's stages: one Batch of every stage's writes."""
        job_id, ts = run
        picks = picks or Picks()
        writes: list[Write] = []
        done: dict[str, list[int]] = {}
        waiting: dict[str, dict[str, list[int]]] = {}
        produced = None
        if TEXT_EMBEDDINGS in stages:
            rows, kept = _unchanged_text(picks.rows(TEXT_EMBEDDINGS, frame, set()), confirm)
            if kept is not None:  # the same text: the state records the new feature hash
                writes.append(Write("scoring_state", kept, "upsert"))
            text = self._text_batch(rows, loaded[TEXT_EMBEDDINGS], keys[TEXT_EMBEDDINGS], *run)
            writes += text.writes
            done[TEXT_EMBEDDINGS] = text.stage_ids[TEXT_EMBEDDINGS]
            if text.writes:
                vectors = text.writes[0].frame.select("game_id", "embedding")
                produced = vectors.rename({"embedding": TEXT_COLUMN})
        if GAME_EMBEDDINGS in stages:
            embedded = set(done.get(TEXT_EMBEDDINGS, ()))
            rows = picks.rows(GAME_EMBEDDINGS, frame, embedded)
            game = self._game_batch(
                rows, loaded[GAME_EMBEDDINGS], keys[GAME_EMBEDDINGS], job_id, ts, produced
            )
            writes += game.writes
            done[GAME_EMBEDDINGS] = game.stage_ids[GAME_EMBEDDINGS]
            waiting.update(game.waiting)
        return Batch(writes, done, len(frame), waiting=waiting)

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
        if frame.is_empty():
            return Batch([], {TEXT_EMBEDDINGS: []}, 0)
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
        self,
        frame: pl.DataFrame,
        loaded: Any,
        key: str,
        job_id: str,
        ts: datetime,
        produced: pl.DataFrame | None = None,
    ) -> Batch:
        """``produced``: the description embeddings this batch just made, read instead of
        the stored ones (which are read for the other games)."""
        rows_read = len(frame)
        if frame.is_empty():
            return Batch([], {GAME_EMBEDDINGS: []}, 0)
        upstream = self.graph.upstream(GAME_EMBEDDINGS)
        made: dict[str, Produced] = {}
        if produced is not None and TEXT_EMBEDDINGS in upstream:
            ids = frozenset(produced["game_id"].to_list())
            frame = frame.join(produced, on="game_id", how="left", maintain_order="left")
            made[TEXT_EMBEDDINGS] = Produced({}, job_id, ids)
        joined = join_upstream(
            self.wh,
            frame,
            upstream,
            produced=made,
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
    """What a model reads of games_features: its builder's read columns (a description's
    length, not its text), else the warehouse columns of its signature."""
    model = loaded.model
    builder: Any = getattr(model, "builder_", None)
    if builder is not None and hasattr(builder, "read_columns"):
        chain = set(getattr(builder, "chain_inputs", ()))
        return [c for c in builder.read_columns() if c not in chain]
    return [
        c.name
        for c in loaded.registration.signature
        if (c.model_extra or {}).get("source", "warehouse") == "warehouse"
    ]


def _unchanged_text(
    frame: pl.DataFrame, confirm: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Split off the games detection found by their feature hash alone whose description
    has the md5 the text stage recorded: their embedding stands (not embedded again, nor
    is anything that reads it); their state row records the new feature hash, so they
    are not candidates again. Returns the games to embed and those state rows."""
    if confirm is None or confirm.is_empty() or frame.is_empty():
        return frame, None
    candidates = frame.select("game_id", "feature_hash", "description").join(
        confirm, on="game_id", how="inner"
    )
    if candidates.is_empty():
        return frame, None
    md5 = pl.Series([input_hash(text) for text in candidates["description"]])
    same = candidates.filter(md5 == candidates["old_hash"])
    if same.is_empty():
        return frame, None
    state = same.select(
        pl.lit(TEXT_EMBEDDINGS).alias("stage"),
        "game_id",
        "feature_hash",
        pl.col("old_model").alias("model_key"),
        pl.col("old_upstream").alias("upstream_key"),
        pl.col("last_job_id").alias("job_id"),
        pl.col("last_score_ts").alias("score_ts"),
        pl.col("old_hash").alias("input_hash"),
    )
    return frame.filter(~pl.col("game_id").is_in(same["game_id"].to_list())), state


def _unsure(pending: pl.DataFrame | None, ids: list[int]) -> str:
    """What a progress label adds for the games of ``ids`` embedded only if their text
    changed: the count of games read is more than the count embedded (the result says
    that one)."""
    unsure = 0 if pending is None else pending["game_id"].is_in(ids).sum()
    return f", {unsure:,} of them only if the description changed" if unsure else ""


def _to_confirm(changes: StageChanges) -> pl.DataFrame | None:
    """The state of the games whose only reason is a moved feature hash still to confirm
    by their description's md5 (what ``_unchanged_text`` needs), or None."""
    frame = changes.frame
    if "confirm_input" not in frame.columns:
        return None
    only = ~(pl.col("reason_new") | pl.col("reason_model") | pl.col("reason_upstream"))
    rows = frame.filter(pl.col("confirm_input") & pl.col("reason_features") & only)
    if rows.is_empty():
        return None
    return rows.select(
        "game_id", "old_hash", "last_job_id", "last_score_ts", "old_model", "old_upstream"
    )


def _embed_changed(
    job: _EmbedJob,
    wh: Warehouse,
    keys: dict[str, str],
    options: EmbedOptions,
    console: Console,
    detected: dict[str, StageChanges] | None = None,
) -> None:
    """Embed what changed. Every stage is detected before any runs (the text stage by
    feature hash alone: its pass confirms by the md5 of the text it reads anyway); when
    none is capped, one pass reads the features once for all of them, each stage
    embedding the games it picks; else each is detected after the last one wrote and
    embedded in a pass of its own."""

    def detect(stage: str) -> StageChanges:
        return detect_stage(
            wh,
            stage,
            keys[stage],
            options.selection,
            options.max_games,
            graph=job.graph,
            confirm=False,
        )

    # before this command wrote anything; with the games an earlier step of `run` rewrote
    # the upstream output of (scored too, instead of a second detection)
    def first(stage: str) -> tuple[StageChanges, set[int]]:
        if detected is not None:  # every stage in one statement (``detected``)
            return detected[stage], set()
        if options.features is None:
            return detect(stage), set()
        shared = options.features
        return shared.detected(wh, stage, keys[stage], job.graph, lambda: detect(stage), True)

    firsts = {stage: first(stage) for stage in job.stages}
    found = {stage: changes for stage, (changes, _) in firsts.items()}
    prior = {stage: ids for stage, (_, ids) in firsts.items() if ids}
    confirm = found.get(TEXT_EMBEDDINGS)
    pending = _to_confirm(confirm) if confirm is not None else None
    picks = plan_picks(
        job.graph,
        job.stages,
        found,
        job.missing,
        options.max_games,
        lambda stage, ids, _stages: job.ready(stage, ids),
        prior,
    )
    if picks is not None:
        chosen = [*picks.own.values(), *picks.follow.values()]
        ids = sorted({i for games in chosen for i in games})
        if ids:
            label = f"embedding {counted(len(ids), 'changed game')}{_unsure(pending, ids)}"
            job.run_pass(
                job.stages,
                Selection(game_ids=tuple(ids)),
                label,
                len(ids),
                picks=picks,
                confirm=pending,
                last=True,
            )
        return
    for index, stage in enumerate(job.stages):
        # the first stage's detection stands unless an earlier step moved its upstream
        changes = found[stage] if index == 0 and stage not in prior else detect(stage)
        if changes.capped:
            job.capped.append(stage)
            console.warn(
                f"{stage}: more than {counted(options.max_games, 'game')} "
                f"need{'s' if options.max_games == 1 else ''} embedding; "
                "embedding the first ones (new, then oldest); rerun to continue"
            )
        ids = job.ready(stage, sorted(changes.game_ids))
        if ids:
            checked = _to_confirm(changes) if stage == TEXT_EMBEDDINGS else None
            label = f"{stage}: {counted(len(ids), 'changed game')}{_unsure(checked, ids)}"
            final = index == len(job.stages) - 1
            selected = Selection(game_ids=tuple(ids))
            job.run_pass([stage], selected, label, len(ids), confirm=checked, last=final)


def _embed_all(job: _EmbedJob, wh: Warehouse, options: EmbedOptions) -> None:
    """Embed the whole selection: one pass, every stage on every game it can."""
    total = wh.count_features(options.selection)
    if not total:
        return
    held = {}
    if GAME_EMBEDDINGS in job.stages:
        held = job.held_or_missing(GAME_EMBEDDINGS, options.selection)
    label = f"{', '.join(job.stages)}: {options.selection.describe()}"
    job.run_pass(job.stages, options.selection, label, total, held, last=True)


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
        inputs = needed_inputs(wh, job.graph, job.stages)
        # registrations first (cheap, nothing unpickled): unknown models fail before work
        keys = {stage: job.models(stage, load=False).stage_key(stage) for stage in job.stages}
        # with --changed-only every stage is detected at once, checking the inputs too
        detection: Detection | None = None
        if options.changed_only and options.features is not None:
            detection = options.features.detection(wh) if inputs else None
        elif options.changed_only:
            detection = detect_stages(
                wh, keys, options.selection, options.max_games, job.graph, inputs
            )
        checked = detection.inputs if detection is not None else None
        job.missing = check_inputs(wh, job.graph, job.stages, options.selection, checked=checked)
        labels = {MODEL_TYPE[s]: job.models(s, load=False).label(MODEL_TYPE[s]) for s in job.stages}
        if GAME_EMBEDDINGS in job.stages:
            job.check_text_model()
        try:
            if options.changed_only:
                own = detection.stages if detection and options.features is None else None
                _embed_changed(job, wh, keys, options, console, own)
            else:
                _embed_all(job, wh, options)
        except BaseException as exc:
            # whatever fails (a model failing its sha256 check after the text stage committed,
            # detection between stages), the run started by an earlier stage ends 'failed'
            job.job.fail(exc)
            raise
        job.job.finish()
    if options.features is not None:  # `run`: what the next steps' detection must know
        options.features.wrote(job.job.written)
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
