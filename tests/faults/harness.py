"""Real `bggscore` processes for the fault tests: spawn one, watch it, SIGKILL it on cue.

No test hook exists in bggscore, so a kill point is a moment in real time, anchored on
what the process shows from outside:

- ``spawn+S``: S seconds after the process was started (interpreter start, imports);
- ``lock+P%``: P% of the calibrated lock -> first-commit time after the process wrote its
  pid into the home's ``pipeline.lock`` (registry, detection, models loading);
- ``wal+P%``: P% of the calibrated WAL -> first-commit time after ``warehouse.duckdb.wal``
  appeared, which the run's first write (its 'running' row) creates: reading the features,
  scoring batch 1, committing it;
- ``line N+P%``: P% of a batch interval after the N-th progress line, which the writer
  thread prints right after batch N committed (batch N+1 committing, N+2 being scored);
  after the last line, P% of the calibrated tail (the 'success' row, the checkpoint on
  close, the exit).

A seeded jitter is added to every delay; the real delay and what each kill found are
recorded for the terminal summary.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

PROGRESS_RE = re.compile(r": (\d+)/(\d+) \([\d,]+/s\)\s*$")
BGGSCORE = Path(sys.executable).with_name("bggscore")
# kill point id -> one line on what it found (the terminal summary prints them)
FINDINGS: dict[str, str] = {}


def command(*args: str) -> list[str]:
    """The installed console script (the real entry point), else ``python -m bggscore``."""
    if BGGSCORE.is_file():
        return [str(BGGSCORE), *args]
    return [sys.executable, "-m", "bggscore", *args]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The test's environment without BGGSCORE_* / GITHUB_*, pointed at ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BGGSCORE_", "GITHUB_"))}
    env["BGGSCORE_HOME"] = str(home)
    env.update(extra)
    return env


@dataclass(frozen=True)
class KillPoint:
    """When to SIGKILL: ``anchor`` spawn (``amount`` in seconds), lock, wal or line
    (``amount`` a fraction of the reference interval; ``line``: the progress line number)."""

    anchor: str
    amount: float
    line: int = 0

    @property
    def id(self) -> str:
        if self.anchor == "spawn":
            return f"kill-at-spawn+{self.amount:.2f}s"
        if self.anchor in ("lock", "wal"):
            return f"kill-at-{self.anchor}+{self.amount:.0%}"
        return f"kill-at-line{self.line:02d}+{self.amount:.0%}"


@dataclass
class Calibration:
    """One uninterrupted run, timed from outside (seconds since spawn)."""

    lock_at: float
    wal_at: float
    lines: list[float]
    ended_at: float

    @property
    def first_batch(self) -> float:
        return self.lines[0] - self.lock_at

    @property
    def first_read(self) -> float:
        return self.lines[0] - self.wal_at

    @property
    def interval(self) -> float:
        gaps = [b - a for a, b in zip(self.lines, self.lines[1:], strict=False)]
        return sum(gaps) / len(gaps) if gaps else self.first_batch

    @property
    def tail(self) -> float:
        return self.ended_at - self.lines[-1]

    def describe(self) -> str:
        return (
            f"lock at {self.lock_at:.2f}s, 'running' row (WAL) at {self.wal_at:.2f}s, "
            f"{len(self.lines)} commits from {self.lines[0]:.2f}s "
            f"to {self.lines[-1]:.2f}s (every {self.interval * 1000:.0f} ms), "
            f"exit at {self.ended_at:.2f}s"
        )


@dataclass
class Watched:
    """What a watched process did: its output, when its lock and progress lines appeared."""

    returncode: int
    stdout: str
    stderr: str
    lock_at: float | None
    wal_at: float | None
    lines: list[float]
    ended_at: float
    killed_at: float | None = None
    pid: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


class Watch:
    """A `bggscore` subprocess with its stderr progress lines and lock time recorded."""

    def __init__(
        self, home: Path, cwd: Path, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.home = home
        self.t0 = time.monotonic()
        self.process = subprocess.Popen(
            command(*args),
            env=clean_env(home, **(env or {})),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[float] = []
        self.lock_at: float | None = None
        self.wal_at: float | None = None
        self.killed_at: float | None = None
        self._err: list[str] = []
        self._out: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_err, daemon=True),
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._watch_lock, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _read_err(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self._err.append(line)
                if PROGRESS_RE.search(line):
                    self.lines.append(self.now())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_out(self) -> None:
        assert self.process.stdout is not None
        self._out.append(self.process.stdout.read())

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_line(self, n: int, timeout: float = 120) -> float | None:
        """Seconds since spawn when progress line ``n`` appeared (None: the run ended first)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.lines) < n:
                if not self.alive() and not self._readers[0].is_alive():
                    return None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no progress line {n} within {timeout}s")
                self._changed.wait(0.05)
            return self.lines[n - 1]

    def _watch_lock(self) -> None:
        """Record when this process holds the home's lock, then when the WAL appears."""
        lock, wal = self.home / "pipeline.lock", self.home / "warehouse.duckdb.wal"
        while self.alive() and self.wal_at is None:
            if self.lock_at is None:
                try:
                    holder = json.loads(lock.read_text(encoding="utf-8") or "{}").get("pid")
                except (OSError, ValueError):
                    holder = None
                if holder == self.process.pid:
                    with self._changed:
                        self.lock_at = self.now()
                        self._changed.notify_all()
            elif wal.exists():
                with self._changed:
                    self.wal_at = self.now()
                    self._changed.notify_all()
            time.sleep(0.002)
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, what: str, timeout: float = 120) -> float | None:
        """Seconds since spawn when ``what`` (lock, wal) was seen (None: the process
        ended first)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (seen := getattr(self, f"{what}_at")) is None:
                if not self._readers[2].is_alive():
                    return getattr(self, f"{what}_at")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no {what} within {timeout}s")
                self._changed.wait(0.05)
            return seen

    def kill_at(self, at: float) -> None:
        """SIGKILL at ``at`` seconds since spawn, unless the process has ended by then."""
        while (left := at - self.now()) > 0 and self.alive():
            time.sleep(min(left, 0.01))
        if self.alive():
            self.killed_at = self.now()
            self.process.kill()  # SIGKILL; a no-op once the process has been reaped

    def finish(self, timeout: float = 300) -> Watched:
        self.process.wait(timeout)
        ended = self.now()
        for reader in self._readers:
            reader.join(timeout)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        return Watched(
            self.process.returncode,
            "".join(self._out),
            "".join(self._err),
            self.lock_at,
            self.wal_at,
            list(self.lines),
            ended,
            self.killed_at,
            self.process.pid,
        )


def calibrate(home: Path, cwd: Path, *args: str) -> tuple[Calibration, Watched]:
    """Run ``bggscore ARGS`` to completion once, timing its lock and every commit."""
    done = Watch(home, cwd, *args).finish()
    assert done.returncode == 0, done.stderr
    assert done.lock_at is not None and done.wal_at is not None and done.lines, done.stderr
    return Calibration(done.lock_at, done.wal_at, done.lines, done.ended_at), done


def run_killed(
    home: Path,
    cwd: Path,
    point: KillPoint,
    calibration: Calibration | None,
    jitter: float,
    *args: str,
) -> Watched:
    """Start ``bggscore ARGS``, SIGKILL it at ``point`` (+ jitter), return what happened.

    Without a calibration, line anchors use the run's own last batch interval (line >= 2)."""
    watch = Watch(home, cwd, *args)
    if point.anchor == "spawn":
        at: float | None = point.amount + jitter
    elif point.anchor in ("lock", "wal"):
        assert calibration is not None, f"{point.anchor} anchors need a calibration"
        start = watch.wait_for(point.anchor)
        span = calibration.first_batch if point.anchor == "lock" else calibration.first_read
        at = None if start is None else start + max(point.amount + jitter, 0.0) * span
    else:
        seen = watch.wait_line(point.line)
        if seen is None:
            at = None
        else:
            if calibration is not None and point.line >= len(calibration.lines):
                reference = calibration.tail
            elif point.line >= 2:  # this run's own pace (other runs may share the CPU)
                reference = seen - watch.lines[point.line - 2]
            else:
                assert calibration is not None, "line 1 needs a calibration"
                reference = calibration.interval
            at = seen + max(point.amount + jitter, 0.0) * reference
    if at is not None:
        watch.kill_at(at)
    done = watch.finish()
    done.notes["planned_at"] = at
    return done


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


def run_in_process(home: Path, *args: str) -> Outcome:
    """`bggscore ARGS` in this process (the CLI app itself), against ``home``."""
    from bggscore.cli.main import app

    env: dict[str, str | None] = {
        key: None for key in os.environ if key.startswith(("BGGSCORE_", "GITHUB_"))
    }
    env["BGGSCORE_HOME"] = str(home)
    result = CliRunner(env=env).invoke(app, list(args), catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)
