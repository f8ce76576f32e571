"""`bggscore score`: stream features in batches, score the chain, commit atomically.

Each batch commits its landing rows and the matching per-stage state rows in one
transaction, so a crash loses at most the batch in flight and a rerun neither
duplicates nor skips anything. A local parquet copy is moved into place only
after the last warehouse commit.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from bggscore.detection import (
    Detection,
    StageChanges,
    check_input,
    check_inputs,
    check_max_games,
    detect_stage,
    detect_stages,
    input_note,
    missing_ids,
    needed_inputs,
)
from bggscore.errors import InputError, UsageError
from bggscore.locking import pipeline_lock
from bggscore.modelset import model_graph, open_settings_registry, resolve_models
from bggscore.results import MissingInputs, ScoreResult
from bggscore.runstatus import tracking
from bggscore.stages import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_GAMES,
    EMBED_STAGES,
    EMBEDDINGS_TABLE,
    GRAPH,
    MAIN,
    PANDAS_BATCH_SIZE,
    SCORE_STAGES,
    WORKER_BATCH_SIZE,
    StageGraph,
    chosen_stages,
    stage_choices,
)
from bggscore.tasks.job import (
    FirstBatch,
    Job,
    ReadAhead,
    SharedFeatures,
    held_upstream,
    plan_picks,
    read_features,
    split_waiting,
    warn_missing,
    warn_waiting,
    with_vectors,
)
from bggscore.warehouse import open_warehouse, require_warehouse
from bggscore.warehouse.base import EmbeddingWidths, Warehouse, Write
from bggscore.warehouse.lease import stage_lease
from bggscore.warehouse.queries import INPUT_VECTOR, INPUT_VECTOR_HASH, INPUT_WIDTHS, Selection
from bggscore.wording import counted

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import numpy as np

    from bggscore.console import Console
    from bggscore.modelset import ModelSet
    from bggscore.registry import LoadedModel
    from bggscore.scoring.batch import Batch, Prepared
    from bggscore.scoring.chain import RunInfo
    from bggscore.scoring.picks import Picks
    from bggscore.scoring.pool import ScoringPool
    from bggscore.settings import Settings

WAREHOUSE_TABLES = GRAPH.tables(SCORE_STAGES)


def parse_stage(value: str) -> list[str]:
    """``--stage``: one stage, several with commas (as `run --stage` takes them) or all;
    the stages in the order they run."""
    for part in value.split(","):
        if part.strip() in EMBED_STAGES:
            raise UsageError(
                f"`score` has no {part.strip()} stage; `bggscore embed` computes embeddings"
            )
    return chosen_stages(value, SCORE_STAGES, stage_choices("score"))


@dataclass
class ScoreOptions:
    selection: Selection
    stages: list[str] = field(default_factory=lambda: list(SCORE_STAGES))
    model_overrides: dict[str, str] = field(default_factory=dict)
    batch_size: int = DEFAULT_BATCH_SIZE
    intervals: int = 0
    output: Path | None = None
    upload: bool = True
    changed_only: bool = False
    max_games: int = DEFAULT_MAX_GAMES
    fresh: tuple[str, ...] = ()  # stages the caller just ran (`run`): their outputs are current
    workers: int = 1  # > 1: predictions in that many processes (scoring.pool)
    features: SharedFeatures | None = None  # what `run` reads once for all its steps


def batch_size(given: int, explicit: bool, models: ModelSet, total: int, workers: int) -> int:
    """Games per batch: as the user gave it; else the default, at most PANDAS_BATCH_SIZE
    for a model that is not bggscore's own, and with workers at most WORKER_BATCH_SIZE and
    small enough that each worker gets several batches of the selection."""
    if explicit:
        return given
    from bggscore.scoring.frames import is_own

    def own(loaded: LoadedModel) -> bool:  # unloaded: what its registration declares
        if loaded.model is not None:
            return is_own(loaded.model)
        return loaded.registration.imported is None and loaded.registration.reads is not None

    if not all(own(m) for m in models.models.values()):
        given = min(given, PANDAS_BATCH_SIZE)
    if workers > 1:
        given = min(given, WORKER_BATCH_SIZE, math.ceil(max(total, 1) / (workers * 4)))
    return max(1, given)


class ParquetCopy:
    """Landing rows written to a temporary file, moved into place only on success."""

    def __init__(self, path: Path) -> None:
        if path.suffix != ".parquet":
            raise UsageError(f"--output {path} must end in .parquet")
        if not path.parent.exists():
            raise UsageError(f"--output folder {path.parent} does not exist")
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
        self.writer: Any = None

    def add(self, frame: pl.DataFrame) -> None:
        import pyarrow.parquet as pq

        table = frame.to_arrow()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        self.writer.write_table(table)

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.tmp.replace(self.path)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.tmp.unlink(missing_ok=True)


def run_score(
    settings: Settings, options: ScoreOptions, console: Console, *, lock: bool = True
) -> ScoreResult:
    """Score the selection (or, with ``changed_only``, what detection finds), stage by
    stage in graph order, under the home's lock (``lock=False``: the caller holds it)."""
    check_max_games(options.max_games)
    if lock and options.upload:
        require_warehouse(settings)  # a mistyped home: no folder, no lock file left
        with (
            pipeline_lock(settings.home, "score"),
            stage_lease(settings, "score", options.stages),
            tracking(settings.home, "score"),
        ):
            return run_score(settings, options, console, lock=False)
    started = time.monotonic()
    registry = open_settings_registry(settings)
    described = options.selection.describe()
    with open_warehouse(settings) as wh:
        wh.require_tables(WAREHOUSE_TABLES)
        # registrations only: a run with nothing to do never unpickles a model
        plan = resolve_models(settings, registry, options.stages, options.model_overrides, False)
        for model_type in plan.absent:
            console.warn(
                f"no {model_type} model registered: {GRAPH.stage_of(model_type)} is scored "
                f"without it, leaving predicted_{model_type}_prob and {model_type}_model_* "
                f"NULL (train one with `bggscore models train --outcome {model_type}` "
                "or register your own with `bggscore models register`)"
            )
        graph = model_graph(settings, registry, options.model_overrides)
        stages = graph.order(options.stages)
        widths = {stage: plan.embedding_width(stage) for stage in stages}
        # games without an input a stage needs: reported, left out by detection and joins.
        # With --changed-only every stage is detected before any is scored, in one
        # statement that checks the inputs too: one read of the embeddings table
        inputs = needed_inputs(wh, graph, stages)
        detection: Detection | None = None
        if options.changed_only and options.features is not None:
            detection = options.features.detection(wh) if inputs else None
        elif options.changed_only:
            keys = {stage: plan.stage_key(stage) for stage in stages}
            detection = detect_stages(
                wh, keys, options.selection, options.max_games, graph, inputs, carry=True
            )
        checked = detection.inputs if detection is not None else None
        # a full score's features read brings the vectors of every game it scores: it
        # checks the table too, the first batch before anything is written
        in_read = (
            checked is None
            and not options.changed_only
            and options.features is None
            and inputs == (EMBEDDINGS_TABLE,)
            and any(EMBEDDINGS_TABLE in graph.inputs_of(stage) for stage in stages)
        )
        if in_read:
            missing_input = MissingInputs(notes={n: input_note(wh, graph, n) for n in inputs})
        else:
            missing_input = check_inputs(wh, graph, stages, options.selection, widths, checked)
        plan.check_columns(wh.feature_columns())
        missing = missing_ids(wh, options.selection)
        if missing and len(missing) == len(options.selection.game_ids or ()):
            raise _none_there(missing)  # as `detect-changes --explain` says of one id
        if missing:
            shown = ", ".join(str(i) for i in missing[:10])
            console.warn(
                f"{counted(len(missing), 'requested game id')} not in the warehouse: {shown}"
            )
        labels = plan.labels()
        job = _Job(settings, options, console, wh, registry, graph)
        if detection is not None:  # what the pass scoring the picked games reads with them
            job.carry(detection.vectors, missing_input)
        if in_read:
            job.check_in_read(widths, missing_input)
        if options.changed_only:
            own = detection.stages if detection and options.features is None else None
            _score_changed(wh, job, plan, stages, missing_input, console, own)
            reason = None if job.scored_ids else "no_changes"
        else:
            total = wh.count_features(options.selection)
            if total:
                held = {
                    s: {
                        **job.held(s, options.selection, stages),
                        **{n: set(ids) for n, ids in missing_input.found.get(s, {}).items()},
                    }
                    for s in stages
                }
                label = f"scoring {described}"
                job.run_pass(stages, options.selection, label, total, held, last=True)
            reason = None if total else "no_games"
        job.finish()
    if options.features is not None:  # `run`: what the next steps' detection must know
        options.features.wrote(job.job.written)
    waiting = split_waiting(job.job.waiting, graph, missing_input)
    if waiting and not job.job.done_ids:
        reason = "waiting_on_upstream"  # nothing done: every game waits on another stage
    elif reason is None and missing_input and not job.job.done_ids:
        reason = "missing_inputs"  # nothing done: no game has the input it needs
    warn_waiting(console, waiting)
    warn_missing(console, missing_input)
    if reason == "no_games":
        console.info(f"no games in {described}: nothing to score")
    elif reason == "no_changes":
        console.info(f"nothing changed in {described}: nothing to score")
    return ScoreResult(
        job.run.job_id if job.run else None,
        len(job.scored_ids),
        {stage: job.stage_counts.get(stage, 0) for stage in stages},
        labels,
        reason,
        output_location=str(options.output) if options.output and job.run else None,
        seconds=time.monotonic() - started,
        selection=described + (" (changed only)" if options.changed_only else ""),
        missing_game_ids=missing,
        waiting_on=waiting,
        capped=job.capped,
        geek_rating_mode=(
            None if MAIN not in options.stages else "formula" if plan.geek_formula else "model"
        ),
        missing_inputs=missing_input,
    )


def _score_changed(
    wh: Warehouse,
    job: _Job,
    plan: ModelSet,
    stages: list[str],
    missing_input: MissingInputs,
    console: Console,
    detected: dict[str, StageChanges] | None = None,
) -> None:
    """Score what changed. Every stage is detected before any is scored (``detected``,
    or the run's detection): when none is capped, one pass reads the features once for
    all of them, each stage scoring the games it picks (``_Job.picks``); else each is
    detected after the last one wrote and scored in a pass of its own."""
    options = job.options

    def detect(stage: str) -> StageChanges:
        key = plan.stage_key(stage)
        return detect_stage(wh, stage, key, options.selection, options.max_games, graph=job.graph)

    def first(stage: str) -> StageChanges:  # before this command wrote anything
        if detected is not None:
            return detected[stage]
        if options.features is None:
            return detect(stage)
        key = plan.stage_key(stage)
        return options.features.detected(wh, stage, key, job.graph, lambda: detect(stage))[0]

    found: dict[str, StageChanges] = {}
    for stage in stages:
        found[stage] = first(stage)
        if found[stage].count:
            job.preload()  # the models load while the warehouse detects the next stage
    picks = job.picks(stages, found, missing_input)
    if picks is not None:
        chosen = [*picks.own.values(), *picks.follow.values()]
        ids = sorted({i for games in chosen for i in games})
        if ids:
            label = f"scoring {counted(len(ids), 'changed game')}"
            job.run_pass(stages, Selection(game_ids=tuple(ids)), label, picks=picks, last=True)
        return
    for index, stage in enumerate(stages):
        # the first stage's detection stands; later ones see what earlier passes wrote
        changes = found[stage] if index == 0 else detect(stage)
        if changes.capped:
            job.capped.append(stage)
            console.warn(
                f"{stage}: more than {counted(options.max_games, 'game')} "
                f"need{'s' if options.max_games == 1 else ''} scoring; "
                "scoring the first ones (new, then oldest); rerun to continue"
            )
        ids = job.ready(stage, sorted(changes.game_ids), stages)
        if ids:
            label = f"{stage}: {counted(len(ids), 'changed game')}"
            final = index == len(stages) - 1
            job.run_pass([stage], Selection(game_ids=tuple(ids)), label, last=final)


class _Job:
    """A score run's job: models verified up front, passes, the local copy."""

    def __init__(
        self,
        settings: Settings,
        options: ScoreOptions,
        console: Console,
        wh: Warehouse,
        registry: Any,
        graph: StageGraph,
    ) -> None:
        self.settings, self.options, self.wh, self.registry = settings, options, wh, registry
        self.graph = graph
        self.capped: list[str] = []  # stages whose detection hit --max-games
        self.job = Job(wh, console, "score", graph.order(options.stages), options.upload)
        self.run: RunInfo | None = None
        self.copy = ParquetCopy(options.output) if options.output else None
        self._rng: np.random.Generator | None = None
        self._preloading: threading.Thread | None = None
        self._vectors: pl.DataFrame | None = None  # see carry()
        self._in_read: tuple[dict[str, int | None], MissingInputs] | None = None
        self._vectorless: set[int] = set()

    @property
    def rng(self) -> np.random.Generator:
        """The run's random numbers (interval draws), made on first use: a run with
        nothing to score never imports numpy or the scoring code. Seeded by the models'
        fingerprint: the same games scored again by the same models, in the same batches,
        draw the same numbers (each batch spawns its generator in turn)."""
        if self._rng is None:
            import numpy as np

            assert self.run is not None, "draws come after the run started (_start)"
            self._rng = np.random.default_rng(int(self.run.model_fingerprint, 16))
        return self._rng

    @property
    def scored_ids(self) -> set[int]:
        return self.job.done_ids

    @property
    def stage_counts(self) -> dict[str, int]:
        return self.job.stage_counts

    def carry(self, vectors: pl.DataFrame | None, missing: MissingInputs) -> None:
        """The vectors detection carried (``Detection.vectors``), and the games no vector
        exists for (left out of every pass)."""
        self._vectors = vectors
        self._vectorless = {
            i for inputs in missing.found.values() for ids in inputs.values() for i in ids
        }

    def _carried(self, selection: Selection) -> pl.DataFrame | None:
        """The carried vectors of a pass's games, when they are all there."""
        if self._vectors is None or selection.game_ids is None:
            return None
        wanted = set(selection.game_ids)
        have = self._vectors.filter(pl.col("game_id").is_in(list(wanted)))
        if wanted - set(have["game_id"]) - self._vectorless:
            return None  # a game detection did not pick (a follower): read them all
        return have

    def check_in_read(self, widths: dict[str, int | None], missing: MissingInputs) -> None:
        """A full score: its features read checks the embeddings table (``_checked_read``),
        the games without a vector go to ``missing``."""
        self._in_read = (widths, missing)

    def _checked_read(
        self,
        frames: Iterator[pl.DataFrame],
        stages: list[str],
        held: dict[str, dict[str, set[int]]],
    ) -> Iterator[pl.DataFrame]:
        """The features of a full score, the embeddings table checked on its first batch
        (read here, before the run starts: a missing, empty or too narrow table refuses
        with nothing written) as ``check_inputs`` would; each batch's games without a
        vector left out (``held``) and reported."""
        assert self._in_read is not None
        widths, missing = self._in_read
        frames = iter(frames)
        head = next(frames, None)
        if head is None:
            return iter(())
        n, lo, hi = (head[c][0] for c in INPUT_WIDTHS)
        found = EmbeddingWidths(int(n or 0), lo, hi)
        check_input(self.wh, self.graph, stages, EMBEDDINGS_TABLE, found, widths)
        needing = [s for s in stages if EMBEDDINGS_TABLE in self.graph.inputs_needed(s)]

        def lacking(frames: Iterator[pl.DataFrame]) -> Iterator[pl.DataFrame]:
            for frame in frames:
                ids = frame.filter(pl.col(INPUT_VECTOR).is_null())["game_id"].to_list()
                for stage in needing if ids else ():
                    held.setdefault(stage, {}).setdefault(EMBEDDINGS_TABLE, set()).update(ids)
                    missing.add(stage, EMBEDDINGS_TABLE, ids)
                yield frame.drop(INPUT_WIDTHS)

        return lacking(itertools.chain([head], frames))

    def held(self, stage: str, selection: Selection, stages: list[str]) -> dict[str, set[int]]:
        """Games an upstream stage this command does not run must rescore first."""
        return held_upstream(
            self.settings,
            self.registry,
            self.wh,
            self.graph,
            stage,
            [*stages, *self.options.fresh],
            self.options.model_overrides,
            selection,
        )

    def ready(self, stage: str, ids: list[int], stages: list[str]) -> list[int]:
        """Of a stage's detected games, those whose upstream outputs are current; the
        others wait (reported)."""
        held = self.held(stage, Selection(game_ids=tuple(ids)), stages)
        for upstream, waiting in held.items():
            self.job.waiting.setdefault((stage, upstream), []).extend(sorted(waiting))
        skip = {i for waiting in held.values() for i in waiting}
        return [i for i in ids if i not in skip]

    def picks(
        self, stages: list[str], found: dict[str, StageChanges], missing: MissingInputs
    ) -> Picks | None:
        """What each stage scores in one pass over what they all detected (plan_picks)."""
        limit = self.options.max_games
        return plan_picks(self.graph, stages, found, missing, limit, self.ready)

    def preload(self) -> None:
        """Import the scoring code and load (sha256 first) the run's models on a second
        thread, once detection has found something to score: the next stage's detection
        runs in the warehouse meanwhile. Whatever fails here fails again, with its own
        message, where the models are loaded for the pass."""
        if self._preloading is not None:
            return
        settings, options, registry = self.settings, self.options, self.registry

        def load() -> None:
            import bggscore.scoring.batch  # noqa: F401 - numpy and the chain, imported once

            with contextlib.suppress(Exception):
                resolve_models(settings, registry, options.stages, options.model_overrides)

        self._preloading = threading.Thread(target=load, name="bggscore-preload", daemon=True)
        self._preloading.start()

    def _preloaded(self) -> None:
        if self._preloading is not None:
            self._preloading.join()

    def _start(self) -> RunInfo:
        from bggscore.scoring.chain import RunInfo

        self._preloaded()
        if self.run is None:
            # every model of the run is checked (sha256) before the first write, and loaded
            # here unless workers load them; one fingerprint covers them all
            options = self.options
            load = options.workers == 1
            models = resolve_models(
                self.settings, self.registry, options.stages, options.model_overrides, load
            )
            if not load:
                for loaded in models.models.values():
                    self.registry.check(loaded.registration)
            job_id, now = self.job.start()
            self.run = RunInfo(
                job_id,
                now,
                self.settings.source_environment,
                models.fingerprint(),
                models.training_cutoff_year(),
                self.settings.scoring.clip_outputs,
            )
        return self.run

    def run_pass(
        self,
        stages: list[str],
        selection: Selection,
        label: str,
        total: int | None = None,
        held: dict[str, dict[str, set[int]]] | None = None,
        picks: Picks | None = None,
        last: bool = False,
    ) -> None:
        """Score the selection in one read of the features. ``last``: the job's last
        pass (its last batch writes the run's `success` row; not with a local copy to
        finish first)."""
        from bggscore.scoring.batch import compute_batch, convert, prepare_batch

        options = self.options
        held = held if held is not None else {}
        try:
            with contextlib.ExitStack() as stack:
                # with --workers the processes start first and load the models; this
                # process only reads their registrations (and checks their sha256)
                pool = stack.enter_context(self._pool(stages)) if options.workers > 1 else None
                # the pass's jobs (its reads too, on the reader thread) name its stages
                stack.enter_context(self.wh.labelled(stage=",".join(stages)))
                overrides = options.model_overrides
                # where the registrations say what the models read (imports, bggscore's
                # own training), the first batch is read while this process loads them
                plan = resolve_models(self.settings, self.registry, stages, overrides, False)
                declared = plan.declared_reads() if pool is None else None
                models = plan if pool is not None or declared is not None else None
                if models is None:
                    self._preloaded()
                    models = resolve_models(self.settings, self.registry, stages, overrides)
                if pool is not None:
                    pool.expect(models)
                    reads = list(pool.reads().columns)
                else:
                    reads = declared if declared is not None else models.read_columns()
                columns = sorted({"game_id", "name", "year_published", *reads})
                carried = None
                if any(EMBEDDINGS_TABLE in self.graph.inputs_of(stage) for stage in stages):
                    # the embeddings table's vectors: those detection carried, else with
                    # the features (one read)
                    carried = self._carried(selection)
                    if carried is None:
                        columns += [INPUT_VECTOR, INPUT_VECTOR_HASH]
                        if self._in_read is not None:
                            columns += list(INPUT_WIDTHS)
                total = total if total is not None else len(selection.game_ids or ())
                explicit = "batch_size" in self.settings.scoring.model_fields_set
                size = batch_size(options.batch_size, explicit, models, total, options.workers)
                if total > size:
                    # the models' processes (this one, or its workers) keep their cores
                    # while batches are read and committed beside them; a pass of one
                    # batch reads, computes and commits in turn, each with every core
                    stack.enter_context(self.wh.leaving_cores(options.workers))
                frames = read_features(self.wh, options.features, selection, columns, size)
                if declared is not None:
                    first = FirstBatch(frames)
                    try:
                        self._preloaded()
                        models = resolve_models(self.settings, self.registry, stages, overrides)
                    finally:
                        first.join()  # the warehouse is this thread's again
                    more = [c for c in models.read_columns() if c not in columns]
                    if more:  # a registration listing less than its model reads: read again
                        first.discard()
                        columns += more
                        frames = read_features(self.wh, options.features, selection, columns, size)
                    else:
                        frames = first.frames()
                if carried is not None:
                    frames = with_vectors(frames, carried)
                if INPUT_WIDTHS[0] in columns:
                    frames = self._checked_read(frames, stages, held)  # its first batch now
                # inside the try: a later pass whose model fails to load (e.g. its sha256
                # check) must still mark the run started by an earlier pass as failed
                run = self._start()

                def prepare(frame: pl.DataFrame) -> Prepared:
                    joined = prepare_batch(
                        self.wh, frame, models, run, stages, self.graph, held, picks
                    )
                    # workers convert what they receive; here the reader does
                    return joined if pool is not None else convert(joined, models)

                # this thread computes batch k (or workers do) while one reads and joins k+1
                # (every warehouse read) and another commits k-1
                prepared = stack.enter_context(ReadAhead(frames, prepare))
                if pool is not None:
                    batches = pool.batches(prepared, run, self.rng)
                else:
                    batches = (
                        compute_batch(
                            batch, models, run, stages, options.intervals, self.rng.spawn(1)[0]
                        )
                        for batch in prepared
                    )
                last = last and self.copy is None
                self.job.commit_batches(stages, self._copied(batches), total, label, last)
        except BaseException as exc:
            if self.copy is not None:
                self.copy.abort()
            self.job.fail(exc)
            raise

    def _pool(self, stages: list[str]) -> ScoringPool:
        """``--workers N``: processes that load the pass's models (from the registry, by
        reference: registrations are enough to name them) and compute its batches."""
        from bggscore.scoring.pool import ScoringPool, WorkerSpec

        settings, options = self.settings, self.options
        plan = resolve_models(settings, self.registry, stages, options.model_overrides, False)
        spec = WorkerSpec.of(
            settings.registry.uri,
            settings.home,
            plan,
            stages,
            options.intervals,
            options.workers,
            self.registry.code_paths,
            self.registry.allow_version_mismatch,
        )
        return ScoringPool(spec, options.workers)

    def _copied(self, batches: Iterable[Batch]) -> Iterator[Batch]:
        for done in batches:
            if self.copy is not None:
                self._copy(done.writes, done.landing)
            yield done

    def _copy(self, writes: list[Write], landing: pl.DataFrame | None) -> None:
        """The local copy holds landing rows, or complexity rows for a complexity-only run."""
        from bggscore.warehouse.schemas import COMPLEXITY_PREDICTIONS, ML_PREDICTIONS_LANDING

        assert self.copy is not None
        if MAIN in self.options.stages:
            if landing is not None:
                self.copy.add(ML_PREDICTIONS_LANDING.conform(landing))
            return
        for write in writes:
            if write.logical == "complexity_predictions":
                self.copy.add(COMPLEXITY_PREDICTIONS.conform(write.frame))

    def finish(self) -> None:
        if self.run is None:
            return
        if self.copy is not None:
            self.copy.finish()
        self.job.finish()


def _none_there(missing: list[int]) -> InputError:
    """Every requested id is missing: nothing to score is the user's input, not a result."""
    load = "check the ids, or load the games with `bggscore warehouse load FILE`"
    if len(missing) == 1:
        return InputError(f"game {missing[0]} is not in the warehouse", load)
    shown = ", ".join(str(i) for i in missing[:10]) + (", ..." if len(missing) > 10 else "")
    return InputError(
        f"none of the {len(missing)} requested game ids is in the warehouse: {shown}", load
    )
