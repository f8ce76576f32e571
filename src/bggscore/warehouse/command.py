"""What the CLI tells every warehouse a process opens about the command it runs.

``COMMAND``: its name (for BigQuery's job labels), whether it is a ``--dry-run`` (the
ledger), and the table metadata already fetched (so a command asks for each table once).
Outside a command (a task called directly) it is empty and each warehouse keeps its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DryRun:
    """What a ``--dry-run`` read and would have written."""

    # (stage label, bytes BigQuery's dry run says the read bills, or None on DuckDB)
    reads: list[tuple[str, int | None]] = field(default_factory=list)
    writes: dict[str, int] = field(default_factory=dict)  # table -> rows

    def write(self, table: str, rows: int) -> None:
        self.writes[table] = self.writes.get(table, 0) + rows

    @property
    def bytes(self) -> int | None:
        known = [b for _, b in self.reads if b is not None]
        return sum(known) if known or not self.reads else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "reads": [{"stage": stage, "bytes": size} for stage, size in self.reads],
            "bytes": self.bytes,
            "writes": dict(self.writes),
            "written": False,
        }


@dataclass
class Command:
    name: str | None = None
    dry_run: DryRun | None = None
    tables: dict[str, Any] | None = None  # table id -> the engine's metadata (or None: absent)


COMMAND = Command()


def begin_command(name: str | None) -> None:
    """A CLI command starts: its name labels its jobs; metadata is shared until it ends."""
    COMMAND.name, COMMAND.dry_run, COMMAND.tables = name, None, {}


def end_command() -> None:
    COMMAND.name, COMMAND.dry_run, COMMAND.tables = None, None, None


@contextmanager
def dry_run(enabled: bool) -> Iterator[DryRun | None]:
    """While inside, every warehouse reads as usual (BigQuery: after pricing the read with
    a dry run) and counts its writes instead of making them."""
    if not enabled:
        yield None
        return
    ledger = DryRun()
    COMMAND.dry_run = ledger
    try:
        yield ledger
    finally:
        COMMAND.dry_run = None
