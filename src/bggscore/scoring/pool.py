"""`score --workers N`: batches' model predictions in N worker processes.

The parent keeps every warehouse read and write: it reads a batch, joins what its stages
read (``batch.prepare_batch``), and hands the joined frames to a worker as Arrow IPC
bytes; the worker runs the models (``batch.compute_batch``) and hands back the rows to
write, as Arrow IPC too. The parent yields the batches in the order it read them, so
commits, progress and the waiting report are those of one process.

Workers are started with "spawn", not "fork": the parent has DuckDB's threads, the batch
reader and writer threads running, and a forked child would inherit their locks mid-use.
"forkserver" would spare each worker its imports (~1.5 CPU-seconds: scikit-learn, pandas)
but exists only on Unix and keeps a server process, with a process-wide preload list, for
the parent's lifetime; "spawn" starts clean interpreters on every platform. Each worker
loads its models once, through the registry, so every artifact is sha256-checked in the
process that unpickles it: the parent sends references (name:version and the sha256 their
registrations record), never pickled models. The parent unpickles none (it checks their
sha256 only): the first worker to load them says what they read (``Reads``), and the
parent reads the warehouse with that.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import queue
import signal
import threading
import traceback
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bggscore.errors import BggscoreError, IntegrityError, WorkerError
from bggscore.machine import usable_cpus
from bggscore.scoring.batch import Batch, Prepared, compute_batch, convert

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from bggscore.modelset import GeekFormula, ModelSet
    from bggscore.scoring.chain import RunInfo

START_METHOD = "spawn"
IN_FLIGHT_PER_WORKER = 2  # one computing, one waiting: a worker never idles on the parent
KEY_COLUMN = "__upstream_key"  # a stage's upstream key, carried as a column of its frame
STOP_SECONDS = 5.0  # how long a worker may take to exit after its last batch


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to compute any batch of one pass (pickled once, at start)."""

    registry_uri: str | None
    home: Path
    refs: dict[str, tuple[str, str]]  # model type -> ("name:version", sha256 checked here)
    geek_formula: GeekFormula | None
    absent: tuple[str, ...]
    stages: tuple[str, ...]
    intervals: int
    blas_threads: int
    code_paths: tuple[str, ...] = ()  # the registry's, for the user's own model code
    allow_version_mismatch: bool = False

    @classmethod
    def of(
        cls,
        registry_uri: str | None,
        home: Path,
        models: ModelSet,
        stages: list[str],
        intervals: int,
        workers: int,
        code_paths: Iterable[str] = (),
        allow_version_mismatch: bool = False,
    ) -> WorkerSpec:
        """``models`` may be registrations only (not loaded): references are enough; the
        rest is how the registry was opened (``open_settings_registry``)."""
        refs = _refs(models)
        cpus = usable_cpus()
        return cls(
            registry_uri,
            home,
            refs,
            models.geek_formula,
            models.absent,
            tuple(stages),
            intervals,
            max(1, cpus // workers),
            tuple(code_paths),
            allow_version_mismatch,
        )

    def load(self) -> ModelSet:
        """The pass's models, loaded through the registry (sha256 before unpickling), each
        the very artifact the parent checked."""
        from bggscore.modelset import ModelSet
        from bggscore.registry import open_registry

        registry = open_registry(
            self.registry_uri,
            self.home,
            code_paths=self.code_paths,
            allow_version_mismatch=self.allow_version_mismatch,
        )
        models = {}
        for model_type, (label, sha256) in self.refs.items():
            loaded = registry.load(label, model_type)
            if loaded.registration.sha256 != sha256:
                raise IntegrityError(
                    f"{label} changed in the registry while this run was starting "
                    f"(sha256 {loaded.registration.sha256[:12]}, expected {sha256[:12]})",
                    "rerun: the run scores with the models it started with, or not at all",
                )
            models[model_type] = loaded
        return ModelSet(models, self.geek_formula, self.absent)


def _refs(models: ModelSet) -> dict[str, tuple[str, str]]:
    return {t: (m.registration.label, m.registration.sha256) for t, m in models.models.items()}


# -- the wire format: Arrow IPC for frames, small picklable headers for the rest ---------------
# A message is a pickled tuple whose last item counts the Arrow IPC buffers that follow it,
# each sent as raw bytes (no pickling of the frames, no copy to pickle them).
def _send(conn: Connection, message: tuple[Any, ...], buffers: list[memoryview]) -> None:
    conn.send((*message, len(buffers)))
    for buffer in buffers:
        conn.send_bytes(buffer)


def _recv(conn: Connection) -> tuple[tuple[Any, ...] | None, list[bytes]]:
    message = conn.recv()
    if message is None:
        return None, []
    *fields, count = message
    return tuple(fields), [conn.recv_bytes() for _ in range(count)]


PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size


def _widen(conn: Connection) -> None:
    """A 1 MiB pipe buffer instead of 64 KiB (Linux): a batch of ~20 MB then crosses in
    ~20 reads, not ~300, each a wait for the GIL while the receiving process computes."""
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (ImportError, OSError):  # another platform, or a lower pipe-max-size: as it is
        pass


def _ipc(frame: pl.DataFrame) -> memoryview:
    out = io.BytesIO()
    frame.write_ipc(out, compression="uncompressed")
    return out.getbuffer()  # keeps ``out`` alive, without a copy


def _frame(data: bytes) -> pl.DataFrame:
    return pl.read_ipc(io.BytesIO(data))


def encode_prepared(
    prepared: Prepared, unread: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], list[memoryview]]:
    """``unread``: columns of the joined frames no model reads (the description embedding
    as one list, beside its emb_* columns), left behind. A stage's frame that is an earlier
    one's rows (``Prepared.subset_of``) travels as its game ids only."""
    header: dict[str, Any] = {
        "rows": prepared.rows,
        "waiting": prepared.waiting,
        "stages": list(prepared.frames),
        "keyed": [],
        "subset_of": {},
    }
    buffers = []
    for stage, frame in prepared.frames.items():
        key = prepared.keys.get(stage)
        source = prepared.frames.get(prepared.subset_of.get(stage, ""))
        if source is not None and source.columns == frame.columns:
            header["subset_of"][stage] = prepared.subset_of[stage]
            frame = frame.select("game_id")
        frame = frame.drop([c for c in frame.columns if c in unread])
        if key is not None:
            header["keyed"].append(stage)
            frame = frame.with_columns(key.alias(KEY_COLUMN))
        buffers.append(_ipc(frame))
    return header, buffers


def decode_prepared(header: dict[str, Any], buffers: list[bytes]) -> Prepared:
    prepared = Prepared(header["rows"], waiting=header["waiting"])
    for stage, data in zip(header["stages"], buffers, strict=True):
        frame = _frame(data)
        key = None
        if stage in header["keyed"]:
            key = frame[KEY_COLUMN].alias("upstream_key")
            frame = frame.drop(KEY_COLUMN)
        if stage in header["subset_of"]:
            source = header["subset_of"][stage]
            prepared.subset_of[stage] = source
            rows = prepared.frames[source]
            frame = (
                rows
                if len(rows) == len(frame)
                else rows.filter(pl.col("game_id").is_in(frame["game_id"]))
            )
        prepared.frames[stage], prepared.keys[stage] = frame, key
    return prepared


def encode_batch(batch: Batch) -> tuple[dict[str, Any], list[memoryview]]:
    landing = next((i for i, w in enumerate(batch.writes) if w.frame is batch.landing), None)
    header = {
        # each Write without its rows (they travel as Arrow buffers): every Write is still
        # made where its table is named (tests/warehouse/test_sql_snapshots.py scans for that)
        "writes": [replace(w, frame=pl.DataFrame()) for w in batch.writes],
        "stage_ids": batch.stage_ids,
        "rows": batch.rows,
        "landing": landing,
        "waiting": batch.waiting,
    }
    return header, [_ipc(w.frame) for w in batch.writes]


def decode_batch(header: dict[str, Any], buffers: list[bytes]) -> Batch:
    writes = [
        replace(write, frame=_frame(data))
        for write, data in zip(header["writes"], buffers, strict=True)
    ]
    landing = writes[header["landing"]].frame if header["landing"] is not None else None
    return Batch(writes, header["stage_ids"], header["rows"], landing, header["waiting"])


@dataclass(frozen=True)
class Reads:
    """What the pass's models read, as a worker that loaded them tells the parent (which
    loads none: it reads the warehouse with this)."""

    columns: tuple[str, ...]  # the warehouse columns (``ModelSet.read_columns``)
    names: frozenset[str]  # every column some model reads, by name

    @classmethod
    def of(cls, models: ModelSet) -> Reads:
        names: set[str] = set()
        for loaded in models.models.values():
            names.update(c.name for c in loaded.registration.signature)
            steps = getattr(loaded.model, "steps", None)
            builder: Any = steps[0][1] if steps else None
            names.update(getattr(builder, "chain_inputs", ()))
            if hasattr(builder, "read_columns"):
                names.update(builder.read_columns())
        return cls(tuple(models.read_columns()), frozenset(names))

    def unread(self, columns: Iterable[str]) -> frozenset[str]:
        """Of a joined frame's ``columns``, the description embedding's list columns (as
        joined, maybe more than once) when every model reads the embedding as emb_*
        columns, if at all; and always the embeddings table's vector and hash as the
        features read brought them (a stage that reads them has expanded and dropped them;
        a stage that does not must not send them)."""
        from bggscore.scoring.upstream import TEXT_COLUMN
        from bggscore.warehouse.queries import INPUT_VECTOR, INPUT_VECTOR_HASH

        pseudo = frozenset(c for c in columns if c in (INPUT_VECTOR, INPUT_VECTOR_HASH))
        if any(c.startswith(TEXT_COLUMN) for c in self.names):
            return pseudo
        return pseudo | {c for c in columns if c.startswith(TEXT_COLUMN)}


def unread_columns(models: ModelSet, columns: Iterable[str]) -> frozenset[str]:
    """``Reads.unread`` of these models."""
    return Reads.of(models).unread(columns)


# -- the worker process ------------------------------------------------------------------------
def _failure(exc: BaseException) -> tuple[Any, ...]:
    """An error as plain values: BggscoreError subclasses take (message, hint) but pickle
    with their message only, and a bug's traceback is text for --debug."""
    if isinstance(exc, BggscoreError):
        return (type(exc), exc.message, exc.hint, None)
    text = " ".join(str(exc).split())[:300]
    return (None, f"{type(exc).__name__}: {text}", None, traceback.format_exc())


def _work(spec: WorkerSpec, tasks: Connection, results: Connection) -> None:
    """A worker's life: load the models, then compute batches until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if hasattr(signal, "pthread_sigmask"):  # blocked since the process started (_start)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    inbox: queue.Queue[Any] = queue.Queue()
    loaded: queue.Queue[ModelSet] = queue.Queue(maxsize=1)
    # the next batch is read (and decoded and converted, once the models are loaded) while
    # this one computes, so the parent's send never waits on this process's own send of a
    # result (which would deadlock the two)
    threading.Thread(target=_receive_tasks, args=(tasks, inbox, loaded), daemon=True).start()
    try:
        from threadpoolctl import threadpool_limits

        # N workers share the machine's cores: BLAS threads per worker, not per process
        threadpool_limits(limits=spec.blas_threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the parent checked the same models and warned
            models = spec.load()
        loaded.put(models)
        _send(results, ("ready", None, Reads.of(models)), [])
    except BaseException as exc:
        _send(results, ("failed", None, _failure(exc)), [])
        return
    while True:
        task, prepared = inbox.get()
        if task is None:
            return
        seq, run, rng = task
        try:
            if isinstance(prepared, BaseException):  # decoding it failed
                raise prepared
            batch = compute_batch(prepared, models, run, list(spec.stages), spec.intervals, rng)
            del prepared
            header, out = encode_batch(batch)
            del batch
            _send(results, ("done", seq, header), out)
        except BaseException as exc:
            _send(results, ("failed", seq, _failure(exc)), [])
            return  # the parent stops the run at its first failure


def _receive_tasks(tasks: Connection, inbox: queue.Queue[Any], loaded: queue.Queue[Any]) -> None:
    """Receive each task, and decode it into the frames its models read."""
    models = None
    try:
        while True:
            task, buffers = _recv(tasks)
            if task is None:
                inbox.put((None, None))
                return
            seq, header, run, rng = task
            try:
                if models is None:  # a worker that fails to load exits meanwhile
                    models = loaded.get()
                prepared: Any = convert(decode_prepared(header, buffers), models)
            except Exception as exc:
                prepared = exc
            del buffers
            inbox.put(((seq, run, rng), prepared))
    except (EOFError, OSError):  # the parent is gone
        inbox.put((None, None))


def _start(process: BaseProcess) -> None:
    """Start a worker from a thread that blocks Ctrl-C: the new process inherits that mask,
    so it ignores Ctrl-C from its first instruction (no traceback while it imports). This
    thread never blocks it, so the kernel always hands a Ctrl-C to it, not to a library's
    thread (polars installs a SIGINT handler of its own)."""
    failed: list[BaseException] = []

    def start() -> None:
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process.start()
        except BaseException as exc:  # raised in the calling thread
            failed.append(exc)

    thread = threading.Thread(target=start, name="bggscore-worker-start")
    thread.start()
    try:
        thread.join()
    finally:  # a Ctrl-C meanwhile: the process is started (and then stopped) all the same
        thread.join()
    if failed:
        raise failed[0]


class RemoteTraceback(Exception):
    """A worker's traceback, chained to the error the parent raises (shown by --debug)."""


# -- the parent's side -------------------------------------------------------------------------
@dataclass
class _Worker:
    process: BaseProcess
    tasks: Connection  # the parent's end: batches to compute
    results: Connection  # the parent's end: what came of them
    busy: deque[int]  # batches sent, in the order it computes them
    ready: bool = False  # its models are loaded (it said so)


class ScoringPool:
    """N workers computing batches; ``batches`` yields them in order. As a context manager
    it stops every worker on the way out, at once when leaving on an error or Ctrl-C."""

    def __init__(self, spec: WorkerSpec, workers: int) -> None:
        context: Any = multiprocessing.get_context(START_METHOD)
        self.spec = spec
        self._reads: Reads | None = None  # what the models read, from the first worker ready
        self._workers: list[_Worker] = []
        self._spans: dict[int, str] = {}  # batch -> its games, for messages
        if os.name == "posix":
            from multiprocessing import resource_tracker

            # started with the first worker otherwise, and starting it unblocks Ctrl-C in
            # the thread that starts it
            resource_tracker.ensure_running()
        try:
            for number in range(1, workers + 1):
                their_tasks, tasks = context.Pipe(duplex=False)
                results, their_results = context.Pipe(duplex=False)
                _widen(tasks)
                _widen(results)
                process = context.Process(
                    target=_work,
                    args=(spec, their_tasks, their_results),
                    name=f"bggscore-worker-{number}",
                    daemon=True,
                )
                self._workers.append(_Worker(process, tasks, results, deque()))
                _start(process)
                # the worker holds the only other ends: its exit is EOF (or a broken pipe) here
                their_tasks.close()
                their_results.close()
        except BaseException:
            self.terminate()
            raise

    def __enter__(self) -> ScoringPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.close()
        else:
            self.terminate()

    def expect(self, models: ModelSet) -> None:
        """The models this process resolved (registrations are enough) are those the
        workers load (else an alias or a version moved while the run started)."""
        if _refs(models) != self.spec.refs:
            raise IntegrityError(
                "the registry changed while the run was starting",
                "rerun: a run scores with the models it started with, or not at all",
            )

    def reads(self) -> Reads:
        """What the models read, once a worker has loaded them (its error, if it fails)."""
        while self._reads is None:
            self._receive()
        return self._reads

    def _unread(self, prepared: Prepared) -> frozenset[str]:
        columns = {c for frame in prepared.frames.values() for c in frame.columns}
        return self._reads.unread(columns) if self._reads else frozenset()

    def batches(
        self, prepared: Iterable[Prepared], run: RunInfo, rng: np.random.Generator
    ) -> Iterator[Batch]:
        """Each prepared batch computed by a worker, in the order of ``prepared`` (each
        draws with its own generator, spawned from ``rng`` in that order)."""
        limit = IN_FLIGHT_PER_WORKER * len(self._workers)
        done: dict[int, Batch] = {}
        source = iter(prepared)
        sent = returned = 0
        exhausted = False
        while True:
            while not exhausted and sent - returned < limit:
                batch = next(source, None)
                if batch is None:
                    exhausted = True
                    break
                self._spans[sent] = _span(batch)
                header, buffers = encode_prepared(batch, self._unread(batch))
                del batch
                worker = min(self._workers, key=lambda w: len(w.busy))
                worker.busy.append(sent)
                try:
                    _send(worker.tasks, (sent, header, run, rng.spawn(1)[0]), buffers)
                except OSError:  # a broken pipe: the worker is gone, its last word says why
                    raise self._gone(worker) from None
                del buffers
                sent += 1
            if returned in done:
                yield done.pop(returned)
                self._spans.pop(returned, None)
                returned += 1
            elif exhausted and returned == sent:
                return
            else:
                done.update(self._receive())

    def _receive(self) -> dict[int, Batch]:
        """Wait for the next message of any busy or loading worker: finished batches, that
        its models are loaded, or the error that stops the run."""
        busy = [w for w in self._workers if w.busy or not w.ready]
        ready = wait([w.results for w in busy] + [w.process.sentinel for w in busy])
        out = {}
        failures = []
        for worker in busy:
            if worker.results not in ready and worker.process.sentinel not in ready:
                continue
            try:  # ready: a message, or the end of a worker that has exited
                message, buffers = _recv(worker.results)
            except (EOFError, OSError):
                raise self._gone(worker) from None
            if message is None:  # never sent by a worker
                raise self._gone(worker)
            status, seq, body = message
            if status == "failed":
                failures.append((-1 if seq is None else seq, body))
                continue
            if status == "ready":
                worker.ready = True
                self._reads = self._reads or body
                continue
            if seq != worker.busy[0]:
                raise WorkerError(f"{worker.process.name} returned batch {seq + 1} out of turn")
            worker.busy.popleft()
            out[seq] = decode_batch(body, buffers)
        if failures:  # the first batch's error, as one process would have met it
            seq, body = min(failures, key=lambda failure: failure[0])
            raise self._failed(None if seq < 0 else seq, body)
        return out

    def _where(self, seq: int | None) -> str:
        if seq is None:
            return "while loading the models"
        return f"on batch {seq + 1} ({self._spans.get(seq, 'its games')})"

    def _failed(self, seq: int | None, failure: tuple[Any, ...]) -> BggscoreError:
        kind, message, hint, remote = failure
        if kind is not None:  # bggscore's own error: the same one line as without workers
            try:
                return kind(message, hint)
            except Exception:
                return BggscoreError(message, hint)
        error = WorkerError(
            f"a scoring worker failed {self._where(seq)}: {message}",
            "nothing of that batch was written; rerun with --workers 1 --debug "
            "for the traceback and report it",
        )
        error.__cause__ = RemoteTraceback(remote)
        return error

    def _gone(self, worker: _Worker) -> BggscoreError:
        """The error of a worker that exited: the failure it reported, if it did."""
        worker.process.join(STOP_SECONDS)
        try:
            while True:  # what it sent before exiting is still in the pipe
                message, _ = _recv(worker.results)
                if message is not None and message[0] == "failed":
                    return self._failed(message[1], message[2])
        except (EOFError, OSError):
            return self._died(worker)

    def _died(self, worker: _Worker) -> WorkerError:
        code = worker.process.exitcode
        if code is not None and code < 0:
            how = f"killed by {signal.Signals(-code).name}"
            if -code == signal.SIGKILL:
                how += ", perhaps out of memory"
        else:
            how = f"exit code {code}"
        return WorkerError(
            f"{worker.process.name} stopped ({how}) "
            f"{self._where(worker.busy[0] if worker.busy else None)}; "
            "nothing of that batch was written",
            "rerun to continue; if it happens again, use fewer --workers or a smaller --batch-size",
        )

    def close(self) -> None:
        """Let every worker finish and exit (after the last batch)."""
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.tasks.send(None)
        for worker in self._workers:
            worker.process.join(STOP_SECONDS)
        self.terminate()

    def terminate(self) -> None:
        """Stop every worker now (an error, Ctrl-C): batches in flight are dropped."""
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in self._workers:
            if worker.process.pid is not None:  # started
                worker.process.join(STOP_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.tasks.close()
            worker.results.close()
        self._workers = []


def _span(prepared: Prepared) -> str:
    """A batch for messages: how many games, and the range of their ids."""
    games = f"{prepared.rows:,} games"
    ids = [frame["game_id"] for frame in prepared.frames.values() if len(frame)]
    if not ids:
        return games
    every = pl.concat(ids)
    return f"{games}, ids {every.min()!s}..{every.max()!s}"
