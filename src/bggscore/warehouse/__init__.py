"""The warehouse repository layer: one interface, an engine per backend.

``open_warehouse(settings)`` is the one factory; engines are imported lazily so
``bggscore --help`` never loads the BigQuery client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bggscore.settings import Settings
    from bggscore.warehouse.base import Warehouse


def open_warehouse(settings: Settings) -> Warehouse:
    if settings.warehouse.engine == "bigquery":
        from bggscore.warehouse.bigquery_engine import BigQueryWarehouse

        return BigQueryWarehouse(settings)
    from bggscore.warehouse.duckdb_engine import DuckDBWarehouse

    return DuckDBWarehouse(settings)
