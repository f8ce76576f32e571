"""The warehouse repository layer: one interface, an engine per backend.

``open_warehouse(settings)`` is the one factory; engines are imported lazily so
``bggscore --help`` never loads the BigQuery client.

``command.COMMAND`` is what the CLI tells the warehouses about the command it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bggscore.warehouse.exists import missing_warehouse, require_warehouse

if TYPE_CHECKING:
    from bggscore.settings import Settings
    from bggscore.warehouse.base import Warehouse

__all__ = ["missing_warehouse", "open_warehouse", "require_warehouse"]

# how often a reader waiting for a writer (`--wait`) tries again
WAIT_POLL_SECONDS = 0.5


def open_warehouse(
    settings: Settings,
    create: bool = False,
    *,
    read_only: bool = False,
    waiting: Callable[[str], None] | None = None,
) -> Warehouse:
    """The configured warehouse. ``create``: an embedded warehouse file may be made (for the
    commands that create tables); otherwise a missing file is an error, so a mistyped home
    is reported rather than given an empty warehouse.

    ``read_only``: for commands that only read (they then work on a read-only home). While
    another process writes the embedded file, which DuckDB lets no one read, this says so
    at once (exit 1); with ``waiting``, it is called once with who writes, and the open
    waits for the writer to finish."""
    if settings.warehouse.engine == "bigquery":
        from bggscore.warehouse.bigquery_engine import BigQueryWarehouse

        return BigQueryWarehouse(settings)
    from bggscore.errors import WarehouseBusy
    from bggscore.runstatus import describe_writer
    from bggscore.warehouse.duckdb_engine import DuckDBWarehouse

    if not read_only:
        return DuckDBWarehouse(settings, create=create)
    told = False
    while True:
        try:
            return DuckDBWarehouse(settings, read_only=True)
        except WarehouseBusy as busy:
            writer = describe_writer(settings.home, busy.pid)
            if waiting is None:
                raise WarehouseBusy(
                    f"{writer} is writing the warehouse {settings.warehouse_path}, which "
                    "cannot be read until it ends",
                    "rerun then, or add --wait to wait for it; `bggscore warehouse status` "
                    "shows its progress",
                    busy.pid,
                ) from None
            if not told:
                waiting(writer)
                told = True
            time.sleep(WAIT_POLL_SECONDS)
