"""The warehouse repository layer: one interface, an engine per backend.

``open_warehouse(settings)`` is the one factory; engines are imported lazily so
``bggscore --help`` never loads the BigQuery client.

``command.COMMAND`` is what the CLI tells the warehouses about the command it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bggscore.settings import Settings
    from bggscore.warehouse.base import Warehouse


def open_warehouse(settings: Settings, create: bool = False) -> Warehouse:
    """The configured warehouse. ``create``: an embedded warehouse file may be made (for the
    commands that create tables); otherwise a missing file is an error, so a mistyped home
    is reported rather than given an empty warehouse."""
    if settings.warehouse.engine == "bigquery":
        from bggscore.warehouse.bigquery_engine import BigQueryWarehouse

        return BigQueryWarehouse(settings)
    from bggscore.warehouse.duckdb_engine import DuckDBWarehouse

    return DuckDBWarehouse(settings, create=create)
