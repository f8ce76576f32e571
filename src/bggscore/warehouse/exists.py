"""Whether the embedded warehouse file exists, checked before anything touches the home."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bggscore.errors import WarehouseError

if TYPE_CHECKING:
    from bggscore.settings import Settings


def missing_warehouse(settings: Settings) -> WarehouseError | None:
    """The error for an embedded warehouse whose file does not exist (a new or mistyped
    home), for commands that do not create it; None when it exists or is BigQuery."""
    path = settings.warehouse_path
    if settings.warehouse.engine == "bigquery" or path.exists():
        return None
    return WarehouseError(
        f"no warehouse at {path}",
        "run `bggscore warehouse init` or `bggscore demo`, or point --home or "
        "BGGSCORE_HOME at the folder that has one",
    )


def require_warehouse(settings: Settings) -> None:
    """Refuse a missing embedded warehouse before anything is made in the home (its lock,
    its folder)."""
    missing = missing_warehouse(settings)
    if missing is not None:
        raise missing
