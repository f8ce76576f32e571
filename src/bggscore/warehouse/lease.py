"""One writer per stage across machines: a lease row per stage in the warehouse.

The home's file lock (``bggscore.locking``) cannot see a CI runner and a cron VM pointed at one
BigQuery warehouse, so a command that writes also takes a lease on the stages it writes,
in the warehouse itself, with one conditional MERGE: every stage or none. It is taken when
the command first has something to write (a no-op takes none), renewed as batches commit,
and released at the end; a holder that stopped leaves a row that expires, and the next
taker closes that holder's `running` runs row as failed. BigQuery aborts one of two
conflicting MERGEs; that abort means "held by another", like a row it can see.

The embedded warehouse keeps only the file lock (``Warehouse.uses_lease``): it is one
machine's file.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from bggscore.errors import ConcurrentUpdateError, LockedError
from bggscore.warehouse import queries

if TYPE_CHECKING:
    from bggscore.settings import Settings
    from bggscore.warehouse.base import Warehouse

POLL_SECONDS = 10.0  # --wait: how often a queued run looks again (each look is one query)
_current: ContextVar[Lease | None] = ContextVar("bggscore_lease", default=None)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def holder_name() -> str:
    return f"{socket.gethostname()} (pid {os.getpid()})"


class Lease:
    """The stages one command writes; taken lazily by its first job (``take``)."""

    def __init__(self, settings: Settings, command: str, stages: list[str], wait: bool = False):
        self.settings, self.command, self.wait = settings, command, wait
        self.stages = sorted(set(stages))
        self.job_id: str | None = None  # the job that took it: the key of its rows
        self.renewed = 0.0  # time.monotonic() of the last take or renewal
        self.ttl = timedelta(minutes=settings.warehouse.lease_minutes)

    @property
    def held(self) -> bool:
        return self.job_id is not None

    def _params(self, job_id: str, now: datetime) -> dict[str, Any]:
        return {
            "lease_stages": self.stages,
            "lease_job": job_id,
            "lease_holder": holder_name(),
            "lease_command": self.command,
            "lease_now": now,
            "lease_expires": now + self.ttl,
        }

    def take(self, wh: Warehouse, job_id: str, on_wait: Any = None) -> None:
        """Hold every stage for ``job_id``, or raise LockedError naming the holder (with
        ``wait``: look again every POLL_SECONDS until they are free)."""
        if self.held or not self.stages:
            return
        told = False
        while True:
            refusal = self._try(wh, job_id)
            if refusal is None:
                return
            if not self.wait:
                raise refusal
            if on_wait is not None and not told:
                on_wait(str(refusal.args[0]))
                told = True
            time.sleep(POLL_SECONDS)

    def _try(self, wh: Warehouse, job_id: str) -> LockedError | None:
        now = _now()
        rows = wh.query(queries.LEASE_HOLDERS, {"lease_stages": self.stages}).to_dicts()
        live = [r for r in rows if r["job_id"] != job_id and r["expires_at"] >= now]
        if live:
            return _held(live[0])
        stale = sorted({r["job_id"] for r in rows if r["job_id"] != job_id})
        try:
            taken = wh.execute_count(queries.TAKE_LEASE, self._params(job_id, now))
        except ConcurrentUpdateError:
            taken = 0  # another taker's MERGE won the race
        if taken < len(self.stages):
            rows = wh.query(queries.LEASE_HOLDERS, {"lease_stages": self.stages}).to_dicts()
            others = [r for r in rows if r["job_id"] != job_id]
            return (
                _held(others[0])
                if others
                else LockedError(
                    "another bggscore run took the stage lease at the same moment",
                    "retry; it will finish on its own",
                )
            )
        if stale:  # the holders that stopped without releasing: their runs failed
            wh.execute(
                queries.CLOSE_STALE_RUNS,
                {
                    "stale_jobs": stale,
                    "failed": "failed",
                    "running": "running",
                    "message": f"stopped without finishing; its lease expired and "
                    f"{holder_name()} took over",
                    "lease_now": now,
                },
            )
        self.job_id, self.renewed = job_id, time.monotonic()
        return None

    def renew_if_due(self, wh: Warehouse) -> None:
        """Extend the lease once a third of it has passed (called per committed batch)."""
        if not self.held or time.monotonic() - self.renewed < self.ttl.total_seconds() / 3:
            return
        assert self.job_id is not None
        now = _now()
        params = {"lease_job": self.job_id, "lease_expires": now + self.ttl}
        if wh.execute_count(queries.RENEW_LEASE, params) < len(self.stages):
            raise LockedError(
                f"this run's lease on {', '.join(self.stages)} expired and was taken over",
                "raise warehouse.lease_minutes above the longest gap between two batches",
            )
        self.renewed = time.monotonic()

    def release(self, wh: Warehouse) -> None:
        if self.held:
            assert self.job_id is not None
            # labelled as the run's own jobs, though it may be another connection's
            wh.label_jobs(job_id=self.job_id, stage=",".join(self.stages))
            wh.execute(queries.RELEASE_LEASE, {"lease_job": self.job_id})
            self.job_id = None


def _held(row: dict[str, Any]) -> LockedError:
    since = row["acquired_at"].astimezone(timezone.utc).isoformat(timespec="seconds")
    until = row["expires_at"].astimezone(timezone.utc).isoformat(timespec="seconds")
    return LockedError(
        f"{row['stage']} is already running on {row['holder']} since {since} "
        f"(bggscore {row['command']}, job {row['job_id']})",
        f"it will finish on its own; `bggscore run --wait` queues behind it; if that run "
        f"was stopped, its lease expires at {until}",
    )


def current() -> Lease | None:
    """The lease of the command running in this context, if it writes to a warehouse
    that uses leases."""
    return _current.get()


@contextlib.contextmanager
def stage_lease(
    settings: Settings, command: str, stages: list[str], wait: bool = False
) -> Iterator[Lease | None]:
    """The scope of one writing command: jobs inside take the lease when they first write
    (``Job.start``), and it is released on the way out, success or failure. A scope inside
    another (``run`` calling ``score``) is the outer one."""
    from bggscore.warehouse.command import COMMAND

    outer = _current.get()
    if outer is not None or settings.warehouse.engine != "bigquery" or COMMAND.dry_run:
        yield outer  # a --dry-run writes nothing, so it holds nothing
        return
    lease = Lease(settings, command, stages, wait)
    token = _current.set(lease)
    try:
        yield lease
    finally:
        _current.reset(token)
        if lease.held:
            from bggscore.warehouse import open_warehouse

            # best effort: a lease that cannot be released expires on its own
            with contextlib.suppress(Exception), open_warehouse(settings) as wh:
                lease.release(wh)
