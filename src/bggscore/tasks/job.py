"""One job across the passes of a command: run bookkeeping and batch commits.

`score` and `embed` both stream batches of games through a function that returns
the writes for that batch. A Job gives the run one job_id, records it in the runs
table (running, then success or failed), commits each batch atomically on a
second thread while the next batch is computed, and counts what committed.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import polars as pl

from bggscore.detection import behind
from bggscore.modelset import outside_keys
from bggscore.results import MissingInputs, Waiting
from bggscore.runstatus import current as current_run
from bggscore.stages import GRAPH, StageGraph
from bggscore.warehouse.base import Warehouse, Write
from bggscore.warehouse.lease import current as current_lease
from bggscore.warehouse.queries import DESCRIPTION_CHARS, Selection
from bggscore.wording import counted

if TYPE_CHECKING:
    from bggscore.console import Console
    from bggscore.detection import Detection, StageChanges
    from bggscore.registry import Registry
    from bggscore.scoring.batch import Batch
    from bggscore.scoring.picks import Picks
    from bggscore.settings import Settings


_DONE = object()
T = TypeVar("T")


class BatchWriter:
    """Write-behind: commit batch k on a second thread while batch k+1 is computed.

    Each batch still commits atomically and in order; at most one batch waits in the
    queue, so memory stays flat. The first failure stops the run: later batches are
    never written, and the error surfaces in the computing thread.
    """

    def __init__(self, warehouse: Warehouse, on_commit: Callable[[Any], None]) -> None:
        self._target = warehouse.concurrent_writer()
        self._on_commit = on_commit
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="bggscore-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is not None:
                continue  # drain: nothing after a failure is written
            writes, token = item
            try:
                if writes:  # a batch whose games all wait writes nothing
                    self._target.write(writes)
                self._on_commit(token)
            except BaseException as exc:  # handed to the scoring thread
                self._error = exc

    def submit(self, writes: list[Write], token: Any) -> None:
        """Queue a batch (blocks while one is already waiting); raises an earlier failure."""
        self._raise()
        self._queue.put((writes, token))

    def close(self) -> None:
        """Wait for every queued batch; raise the first failure."""
        self._queue.put(_DONE)
        self._thread.join()
        self._target.close_writer()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


class FirstBatch:
    """A read's first batch, fetched on a thread while the caller does something else
    (loads the models); ``join()``, then ``frames()``: the whole read, in order."""

    def __init__(self, frames: Iterator[pl.DataFrame]) -> None:
        self._frames = frames
        self._head: list[pl.DataFrame] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._fetch, name="bggscore-first", daemon=True)
        self._thread.start()

    def _fetch(self) -> None:
        try:
            self._head = [next(self._frames)]
        except StopIteration:
            pass
        except BaseException as exc:  # raised where the caller takes the frames
            self._error = exc

    def join(self) -> None:
        self._thread.join()

    def frames(self) -> Iterator[pl.DataFrame]:
        self.join()
        if self._error is not None:
            raise self._error
        return itertools.chain(self._head, self._frames)

    def discard(self) -> None:
        """Drop the read (its cursor closed), for one with other columns instead."""
        self.join()
        self._head = []
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()


class ReadAhead(Generic[T]):
    """Read-ahead, the mirror of BatchWriter: read and join batch k+1 on a second thread
    while batch k is computed.

    Exactly one batch is read ahead (memory stays flat); batches come in order, and an error
    reading one is raised where that batch would have come. Leaving the block stops the
    thread (after the step it is in) before the caller touches the warehouse again.
    """

    def __init__(self, frames: Iterable[pl.DataFrame], prepare: Callable[[pl.DataFrame], T]):
        self._ready: queue.Queue[Any] = queue.Queue()
        self._slot = threading.Semaphore(1)  # taken while a batch is read and not yet used
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(frames, prepare), name="bggscore-reader", daemon=True
        )
        self._thread.start()

    def _loop(self, frames: Iterable[pl.DataFrame], prepare: Callable[[pl.DataFrame], T]) -> None:
        source = iter(frames)
        try:
            while True:
                while not self._slot.acquire(timeout=0.1):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                frame = next(source, None)
                if frame is None:
                    return
                self._ready.put((prepare(frame), None))
                del frame
        except BaseException as exc:  # handed to the computing thread, in order
            self._ready.put((None, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # a streaming read ends here, on its own thread
            self._ready.put(_DONE)

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._ready.get()
            if item is _DONE:
                return
            prepared, error = item
            if error is not None:
                raise error
            self._slot.release()  # the next batch may be read while this one computes
            yield prepared
            del prepared, item

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _computed(
    frames: Iterable[pl.DataFrame], batch: Callable[[pl.DataFrame], Batch]
) -> Iterator[Batch]:
    for frame in frames:
        done = batch(frame)
        del frame  # done with the features: not held while the writer catches up
        yield done


_NONE = object()  # _marking_last: no item held yet


def _marking_last(items: Iterable[T], last: bool) -> Iterator[tuple[T, bool]]:
    """Each item and whether ``last`` holds and it is the final one (then each waits for
    the next to be known: one item of look-ahead)."""
    if not last:
        yield from ((item, False) for item in items)
        return
    it = iter(items)
    held = next(it, _NONE)
    for item in it:
        yield cast(T, held), False
        held = item
    if held is not _NONE:
        yield cast(T, held), True


class SharedFeatures:
    """The features `run --changed-only` reads once for all its steps.

    The first pass that reads features asks ``plan`` (given the warehouse) for every game
    and column the run's stages may read: what each stage detected before any ran (a
    stage detected after an earlier one wrote finds a subset of those and the games the
    earlier one scored, which are among them). Those rows are read in one query and kept;
    every pass then takes its games from them, so description, read once, serves the
    text stage (the text) and every other (its length). A game or column not kept is read
    as before; past ``limit`` games nothing is kept (each pass streams its own)."""

    def __init__(
        self,
        plan: Callable[[Warehouse], tuple[set[int], set[str]]],
        limit: int,
        detect_all: Callable[[Warehouse], Detection] | None = None,
        graph: StageGraph = GRAPH,
    ) -> None:
        self._plan = plan
        self._limit = limit
        self._planned = False
        self._rows: pl.DataFrame | None = None
        self.reads = 0  # feature queries run (what a test counts)
        # every stage of the run detected in one query, at the first ask, before any wrote
        self._detect_all, self._graph = detect_all, graph
        self._detected: Detection | None = None
        self._written: dict[str, set[int]] = {}  # stage -> games an earlier step wrote
        self.detections = 0  # union detections run (what a test counts)

    def wrote(self, written: dict[str, set[int]]) -> None:
        """The games a step wrote rows for, by stage: what was detected of the stages
        reading them is stale (found again, or followed: ``detected(follow=True)``)."""
        for stage, ids in written.items():
            if ids:
                self._written.setdefault(stage, set()).update(ids)

    def detected(
        self,
        wh: Warehouse,
        stage: str,
        key: str,
        graph: StageGraph,
        detect: Callable[[], StageChanges],
        follow: bool = False,
    ) -> tuple[StageChanges, set[int]]:
        """A stage's changes from the run's one detection, while that is still what
        ``detect()`` would find: same model key, same inputs, and neither the stage nor
        any stage it reads (however far up) has written since; else ``detect()``.

        With ``follow``, a write by the stage's direct upstream stages alone leaves the
        detection standing, and the games they wrote come with it: detection after them
        finds exactly those more (their upstream key moved), so a caller that scores them
        too (``plan_picks``'s ``prior``) needs no second detection. Else no games."""
        if self._detect_all is None:
            return detect(), set()
        found = self.detection(wh).stages.get(stage)
        stale = (_reads(graph, stage) | {stage}) & self._written.keys()
        direct = stale & set(graph.upstream(stage)) if follow else set()
        if (
            found is None
            or found.model_key != key
            or _edges(graph, stage) != _edges(self._graph, stage)
            or stale - direct
        ):
            return detect(), set()
        return found, {i for up in direct for i in self._written[up]}

    def detection(self, wh: Warehouse) -> Detection:
        """The run's one detection (made at the first ask). Its inputs' checks and the
        vectors it carried serve every step: no step writes the tables the warehouse
        fills."""
        assert self._detect_all is not None
        if self._detected is None:
            self.detections += 1
            self._detected = self._detect_all(wh)
        return self._detected

    def read(
        self, wh: Warehouse, selection: Selection, columns: list[str], batch_size: int
    ) -> Iterator[pl.DataFrame]:
        """The selected games with these columns (and their feature hash), in batches
        each sorted by game_id. Lazy: nothing is read before the first batch is asked
        for, so a pass may ask on another thread while its models load (FirstBatch)."""
        wanted = selection.game_ids
        if wanted is not None and not self._planned:
            self._planned = True
            ids, more = self._plan(wh)
            ids |= set(wanted)
            if len(ids) <= self._limit:
                everything = sorted({*columns, *more})
                chosen = Selection(game_ids=tuple(sorted(ids)))
                self.reads += 1
                frames = list(wh.read_features(chosen, everything, max(len(ids), 1), True))
                self._rows = pl.concat(frames) if frames else None
        kept = None
        if wanted is not None and self._rows is not None and _covers(self._rows, columns):
            kept = self._rows.filter(pl.col("game_id").is_in(list(wanted)))
            if len(kept) < len(set(wanted)):  # a game no preview found: read as before
                kept = None
        if kept is None:
            self.reads += 1
            yield from wh.read_features(selection, columns, batch_size, with_hash=True)
            return
        yield from _batches(kept.select(_readable(kept, columns)).sort("game_id"), batch_size)


def _edges(graph: StageGraph, stage: str) -> tuple[tuple[str, ...], ...]:
    """What a stage's detection depends on in a graph: its upstream stages and inputs."""
    return graph.upstream(stage), graph.inputs_of(stage), tuple(graph.inputs_needed(stage))


def _reads(graph: StageGraph, stage: str) -> set[str]:
    """Every stage ``stage`` reads the output of, however far up."""
    seen: set[str] = set()
    todo = list(graph.upstream(stage))
    while todo:
        up = todo.pop()
        if up not in seen:
            seen.add(up)
            todo += graph.upstream(up)
    return seen


def _batches(frame: pl.DataFrame, batch_size: int) -> Iterator[pl.DataFrame]:
    for start in range(0, len(frame), max(batch_size, 1)):
        yield frame.slice(start, batch_size)


def _readable(frame: pl.DataFrame, columns: list[str]) -> list[str]:
    """The kept columns a pass asked for (the description stands in for its length)."""
    present = set(frame.columns)
    wanted = set(columns) | {"game_id", "feature_hash"}
    if DESCRIPTION_CHARS in wanted and DESCRIPTION_CHARS not in present:
        wanted.add("description")
    return [c for c in frame.columns if c in wanted]


def _covers(frame: pl.DataFrame, columns: list[str]) -> bool:
    present = set(frame.columns)
    if "description" in present:
        present.add(DESCRIPTION_CHARS)  # the length comes with the text
    return set(columns) <= present


def read_features(
    wh: Warehouse,
    shared: SharedFeatures | None,
    selection: Selection,
    columns: list[str],
    batch_size: int,
) -> Iterator[pl.DataFrame]:
    """A pass's features (with their hash): from what `run` keeps for all its steps, or
    from the warehouse."""
    if shared is None:
        return wh.read_features(selection, columns, batch_size, with_hash=True)
    return shared.read(wh, selection, columns, batch_size)


def with_vectors(frames: Iterator[pl.DataFrame], vectors: pl.DataFrame) -> Iterator[pl.DataFrame]:
    """A pass's features with the embeddings table's vectors detection carried, as the
    features read joins them (a game without one gets nulls), each batch in its order."""
    for frame in frames:
        yield frame.join(vectors, on="game_id", how="left", maintain_order="left")


def new_job_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


class Job:
    def __init__(
        self, wh: Warehouse, console: Console, command: str, stages: list[str], upload: bool
    ) -> None:
        self.wh, self.console, self.command, self.upload = wh, console, command, upload
        self.stages = stages
        # the id the run gets when it starts; every job sent meanwhile (detection, even
        # on a no-op) is labelled with it
        self.planned_id = wh.new_run_id()
        wh.label_jobs(stage=",".join(stages), command=wh.job_labels["command"] or command)
        self.job_id: str | None = None
        self.started_at: datetime | None = None
        self.done_ids: set[int] = set()
        self.sent_ids: set[int] = set()  # of the batches handed to the writer
        # the `running` row is not written yet: it goes in the first batch's transaction
        # (on BigQuery one job fewer per command, and a run row always has rows behind it)
        self.unrecorded = False
        # the `success` row went with the job's last batch: finish() has nothing to write
        self.succeeded = False
        # stage -> the games committed batches wrote rows for
        self.written: dict[str, set[int]] = {stage: set() for stage in stages}
        # (stage, the upstream stage it waits on) -> games it left out for that
        self.waiting: dict[tuple[str, str], list[int]] = {}
        # the run's status document (<home>/run-status.json), when this job is part of one:
        # captured here, as the writer thread that commits batches has a context of its own
        self.tracker = current_run()

    def start(self) -> tuple[str, datetime]:
        """The job id and timestamp, recording the run on first call."""
        if self.job_id is None or self.started_at is None:
            started_at = datetime.now(timezone.utc)
            job_id = self.planned_id
            lease = current_lease()
            if self.upload and lease is not None and self.wh.uses_lease:
                # before the first write: another machine may be writing these stages
                lease.take(self.wh, job_id, on_wait=self.console.info)
            self.started_at, self.job_id = started_at, job_id
            self.unrecorded = self.upload
            if self.tracker is not None:
                self.tracker.job(self.job_id)
        return self.job_id, self.started_at

    def run_pass(
        self,
        stages: list[str],
        frames: Iterable[pl.DataFrame],
        total: int,
        label: str,
        batch: Callable[[pl.DataFrame], Batch],
        last: bool = False,
    ) -> None:
        """Compute each frame's writes and commit them, in order, one batch at a time."""
        self.commit_batches(stages, _computed(frames, batch), total, label, last)

    def commit_batches(
        self,
        stages: list[str],
        batches: Iterable[Batch],
        total: int,
        label: str,
        last: bool = False,
    ) -> None:
        """Commit each batch as it comes, in order (``score --workers``: computed
        elsewhere), one transaction each. ``last``: the job's last pass, whose last batch
        also writes the job's `success` row (on BigQuery one job fewer per command)."""
        tracker = self.tracker
        if tracker is not None:
            tracker.start_pass(label, total)
        lease = current_lease()  # here: `committed` runs on the writer's thread
        with (
            self.wh.labelled(stage=",".join(stages)),
            self.console.progress(label, total) as advance,
        ):

            def committed(done: Batch) -> None:
                ids = {i for stage_ids in done.stage_ids.values() for i in stage_ids}
                self.done_ids.update(ids)
                for stage, stage_ids in done.stage_ids.items():
                    self.written.setdefault(stage, set()).update(stage_ids)
                for stage, upstream in done.waiting.items():
                    for name, waiting in upstream.items():
                        self.waiting.setdefault((stage, name), []).extend(waiting)
                advance(done.rows)
                if tracker is not None:
                    tracker.advance(done.rows, len(self.done_ids))
                if lease is not None and self.wh.uses_lease:
                    lease.renew_if_due(self.wh)

            writer = BatchWriter(self.wh, committed) if self.upload else None
            try:
                for done, final in _marking_last(batches, last):
                    if writer is not None:
                        # commits while the next computes
                        writer.submit(self._with_run_row(done, final), done)
                    else:
                        committed(done)
            except BaseException:
                if writer is not None:
                    with contextlib.suppress(BaseException):  # keep the first error
                        writer.close()
                raise
            if writer is not None:
                writer.close()

    def _with_run_row(self, done: Batch, final: bool) -> list[Write]:
        """The first batch that writes anything also writes the job's `running` row; the
        job's last batch its `success` row instead (it commits with the batch, or not)."""
        self.sent_ids.update(i for ids in done.stage_ids.values() for i in ids)
        if final:
            self.unrecorded, self.succeeded = False, True
            return [self._run_row("success", games=len(self.sent_ids)), *done.writes]
        if not (self.unrecorded and done.writes):
            return done.writes
        self.unrecorded = False
        return [self._run_row("running"), *done.writes]

    @property
    def stage_counts(self) -> dict[str, int]:
        return {stage: len(ids) for stage, ids in self.written.items()}

    def fail(self, exc: BaseException) -> None:
        if self.upload and self.job_id is not None:
            message = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
            # the original error matters more than the bookkeeping
            with contextlib.suppress(Exception):
                self._record("failed", message)

    def finish(self) -> None:
        if self.upload and self.job_id is not None and not self.succeeded:
            self._record("success")

    def _record(self, status: str, message: str = "") -> None:
        self.wh.write([self._run_row(status, message)])

    def _run_row(self, status: str, message: str = "", games: int | None = None) -> Write:
        assert self.job_id is not None and self.started_at is not None
        stages = ",".join(self.stages)
        games = len(self.done_ids) if games is None else games
        return self.wh.run_row(
            self.job_id, self.command, stages, status, games, self.started_at, message
        )


def command_for(stage: str) -> str:
    """The command that runs one stage, as a person would type it (only what changed)."""
    found = GRAPH.get(stage)
    if found.command == "embed":
        return f"`bggscore embed --kind {found.short} --changed-only`"
    return f"`bggscore {found.command} --stage {stage} --changed-only`"


def warn_waiting(console: Console, waiting: list[Waiting]) -> None:
    """One warning per stage that left games out: how many wait for which stage, and what
    to run first (with the same game selection)."""
    by_stage: dict[str, list[Waiting]] = {}
    for item in waiting:
        by_stage.setdefault(item.stage, []).append(item)
    for stage, items in by_stage.items():
        games = len({i for item in items for i in item.game_ids})
        parts = ", ".join(f"{len(w.game_ids):,} for {w.waits_for}" for w in items)
        run = " then ".join(command_for(w.waits_for) for w in items)
        console.warn(
            f"{stage}: {counted(games, 'game')} left out, waiting ({parts}): their upstream "
            f"output is missing or out of date; run {run} with the same selection first"
        )


def split_waiting(
    found: dict[tuple[str, str], list[int]], graph: StageGraph, missing: MissingInputs
) -> list[Waiting]:
    """The games stages left out for an upstream stage; those left out for want of an
    input (the batch joins report them alike) go to ``missing`` instead."""
    inputs = {source.name for source in graph.inputs}
    rest = {}
    for (stage, name), ids in found.items():
        if name in inputs:
            missing.add(stage, name, ids)
        else:
            rest[(stage, name)] = ids
    return Waiting.collect(rest)


def warn_missing(console: Console, missing: MissingInputs) -> None:
    """One warning per input some games lack: how many, for which stages, what to do."""
    for line in missing.warnings():
        console.warn(line)


def plan_picks(
    graph: StageGraph,
    stages: list[str],
    found: dict[str, StageChanges],
    missing: MissingInputs,
    max_games: int,
    ready: Callable[[str, list[int], list[str]], list[int]],
    prior: dict[str, set[int]] | None = None,
) -> Picks | None:
    """What each stage scores in one pass over the union of what they detected, all
    detected before any was scored: its own games, and the games an earlier stage of the
    pass rescores in the same batch (their upstream output moves, which detection after
    that stage would find). ``ready(stage, ids, stages)`` keeps the games whose other
    upstream outputs are current (recording the others as waiting). ``prior``: games a
    stage scores besides what it detected, because an earlier step rewrote their upstream
    output (``SharedFeatures.detected(follow=True)``). None when a stage was capped, or
    following would take one past ``max_games``: then each stage is detected after the
    last one wrote, and scored in a pass of its own, as before."""
    from bggscore.scoring.picks import Picks

    prior = {stage: ids for stage, ids in (prior or {}).items() if ids}
    if (len(stages) < 2 and not prior) or any(changes.capped for changes in found.values()):
        return None
    lacking = {
        stage: {i for ids in missing.found.get(stage, {}).values() for i in ids} for stage in stages
    }
    own: dict[str, set[int]] = {
        stage: set(found[stage].game_ids) | (prior.get(stage, set()) - lacking[stage])
        for stage in stages
    }
    extra: dict[str, set[int]] = {}
    for stage in stages:
        earlier = [u for u in graph.upstream(stage) if u in own]
        extra[stage] = {i for u in earlier for i in own[u]} - own[stage] - lacking[stage]
        if len(own[stage]) + len(extra[stage]) > max_games:
            return None
    picked, follow = {}, {}
    for stage in stages:
        kept = set(ready(stage, sorted(own[stage] | extra[stage]), stages))
        picked[stage] = frozenset(own[stage] & kept)
        follow[stage] = frozenset(extra[stage] & kept)
    return Picks(picked, follow)


def held_upstream(
    settings: Settings,
    registry: Registry,
    wh: Warehouse,
    graph: StageGraph,
    stage: str,
    running: list[str],
    overrides: dict[str, str],
    selection: Selection,
) -> dict[str, set[int]]:
    """Games of the selection that must wait for an upstream stage this command does not
    run (``running``), because that stage would rescore them first: upstream -> ids."""
    outside = outside_keys(settings, registry, graph, stage, running, overrides)
    return behind(wh, selection, outside, graph) if outside else {}
