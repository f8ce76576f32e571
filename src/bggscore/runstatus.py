"""What a running `score`, `embed` or `run` is doing, readable while it holds the warehouse.

DuckDB lets no other process open a file while one writes it, not even to read; so the
writer keeps ``<home>/run-status.json``: replaced whole (a temporary file, then a rename)
when a job starts, after every committed batch and when the run ends, marked finished
then. `warehouse status` reads it when it cannot open the warehouse.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STATUS_NAME = "run-status.json"
FORMAT = 1

_current: ContextVar[Tracker | None] = ContextVar("bggscore_run_status", default=None)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Tracker:
    """The status document of one run, written on every change (from any thread)."""

    def __init__(self, home: Path, command: str) -> None:
        self.path = home / STATUS_NAME
        self._lock = threading.Lock()
        self.doc: dict[str, Any] = {
            "format": FORMAT,
            "command": command,
            "pid": os.getpid(),
            "status": "running",
            "started_at": _now(),
            "updated_at": _now(),
            "finished_at": None,
            "message": None,
            "step": None,
            "job_id": None,
            "job_ids": [],
            "pass": None,
            "games": 0,
        }
        self._write()

    def step(self, name: str) -> None:
        """`run`: the step that starts (``score: complexity, main``)."""
        self.update(step=name)

    def job(self, job_id: str) -> None:
        with self._lock:
            if job_id not in self.doc["job_ids"]:
                self.doc["job_ids"].append(job_id)
            self.doc["job_id"] = job_id
        self.update()

    def start_pass(self, label: str, total: int | None) -> None:
        self.update(**{"pass": {"label": label, "done": 0, "total": total}})

    def advance(self, rows: int, games: int) -> None:
        """A batch committed: ``rows`` more of the pass, ``games`` in the job so far."""
        with self._lock:
            current = self.doc["pass"]
            if current is not None:
                current["done"] += rows
            self.doc["games"] = games
        self.update()

    def finish(self, status: str, message: str | None = None) -> None:
        self.update(status=status, finished_at=_now(), message=message)

    def update(self, **fields: Any) -> None:
        with self._lock:
            self.doc.update(fields)
            self.doc["updated_at"] = _now()
            self._write()

    def _write(self) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        # advisory: a status that cannot be written must not stop the run
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(self.doc, indent=2), encoding="utf-8")
            os.replace(tmp, self.path)


def current() -> Tracker | None:
    """The tracker of the run this thread is part of (None outside one)."""
    return _current.get()


@contextlib.contextmanager
def tracking(home: Path, command: str) -> Iterator[Tracker]:
    """Keep the home's status document for the block (the caller holds the home's lock),
    marked finished with how it ended."""
    tracker = Tracker(home, command)
    token = _current.set(tracker)
    try:
        yield tracker
    except KeyboardInterrupt:
        tracker.finish("interrupted", "stopped by Ctrl-C; committed batches are kept")
        raise
    except BaseException as exc:
        text = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
        tracker.finish("failed", text)
        raise
    else:
        tracker.finish("success")
    finally:
        _current.reset(token)


def read_status(home: Path) -> dict[str, Any] | None:
    """The last run's status document, with ``alive`` (its process still runs); None when
    there is none or it cannot be read."""
    try:
        doc = json.loads((home / STATUS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None
    doc["alive"] = doc.get("status") == "running" and _alive(doc.get("pid"))
    return doc


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    return True


def describe_writer(home: Path, pid: int | None) -> str:
    """Who holds the warehouse, for messages: the bggscore run when its status or lock
    names that process, else the process id DuckDB gave."""
    status = read_status(home)
    if status is not None and status["alive"] and (pid is None or status.get("pid") == pid):
        job = f", job {status['job_id']}" if status.get("job_id") else ""
        return (
            f"bggscore {status.get('command')} (pid {status.get('pid')}{job}, since "
            f"{status.get('started_at')})"
        )
    from bggscore.locking import LOCK_NAME

    with contextlib.suppress(OSError, ValueError):
        info = json.loads((home / LOCK_NAME).read_text(encoding="utf-8") or "{}")
        if info and (pid is None or info.get("pid") == pid) and _alive(info.get("pid")):
            return (
                f"bggscore {info.get('command')} (pid {info.get('pid')}, since {info.get('since')})"
            )
    return f"process {pid}" if pid is not None else "another process"


def progress_line(status: dict[str, Any]) -> str:
    """One line for people: what the run is doing and how far it got."""
    command = status.get("command")
    job = status.get("job_id")
    head = f"bggscore {command}" + (f" job {job}" if job else "")
    state = status.get("status")
    if state == "running" and not status.get("alive"):
        state = "stopped without finishing (its process is gone)"
    parts = [f"{head}: {state}, started {status.get('started_at')}"]
    if status.get("step"):
        parts.append(f"step {status['step']}")
    current = status.get("pass")
    if current:
        total = current.get("total")
        of = f" of {total:,}" if isinstance(total, int) else ""
        parts.append(f"{current.get('label')}: {current.get('done', 0):,}{of} games")
    if status.get("finished_at"):
        parts.append(f"finished {status['finished_at']}")
    else:
        parts.append(f"updated {status.get('updated_at')}")
    if status.get("message"):
        parts.append(str(status["message"]))
    return "; ".join(parts)
