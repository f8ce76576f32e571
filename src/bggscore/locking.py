"""One writer at a time per bggscore home: an OS file lock, released if the process dies.

`score`, `embed` and `run` take it, so an overlapping cron run or a second manual
run exits at once with a clear message (or, with ``wait``, queues) instead of
scoring the same games twice.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from bggscore.errors import LockedError, WarehouseError

LOCK_NAME = "pipeline.lock"


def _try_lock(handle: IO[str]) -> bool:
    try:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False
    except OSError:
        return False


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another bggscore process"
    if not info:
        return "another bggscore process"
    return f"bggscore {info.get('command', '?')} (pid {info.get('pid')}, since {info.get('since')})"


@contextmanager
def pipeline_lock(
    home: Path,
    command: str,
    wait: bool = False,
    timeout: float | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the home's lock for the block; fail at once (or wait) when it is taken.
    ``on_wait`` is told once who holds it, when waiting begins."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        path = home / LOCK_NAME
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the block
    except OSError as exc:
        raise WarehouseError(
            f"cannot create the lock in {home}: {exc.strerror}",
            "set BGGSCORE_HOME to a writable folder",
        ) from None
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while not _try_lock(handle):
            if not wait or (deadline is not None and time.monotonic() >= deadline):
                queue = "; `bggscore run --wait` queues behind it" if command == "run" else ""
                raise LockedError(
                    f"{_holder(path)} is already running in {home}",
                    f"it will finish on its own{queue}",
                )
            if on_wait is not None and not told:
                on_wait(_holder(path))
                told = True
            time.sleep(0.5)
        handle.seek(0)
        handle.truncate()
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        handle.write(json.dumps({"pid": os.getpid(), "command": command, "since": stamp}))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
    finally:
        handle.close()  # closing releases the lock
