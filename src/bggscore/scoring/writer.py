"""Write-behind: commit batch k on a second thread while batch k+1 is scored.

Each batch still commits atomically and in order; at most one batch waits in the
queue, so memory stays flat. The first failure stops the run: later batches are
never written, and the error surfaces in the scoring thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from bggscore.warehouse.base import Warehouse, Write

_DONE = object()


class BatchWriter:
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
