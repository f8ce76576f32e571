"""`bggscore warehouse load`: upsert a games_features export and keep its feature hashes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bggscore.warehouse import open_warehouse
from bggscore.warehouse.load import LoadResult, load_games, read_export

if TYPE_CHECKING:
    from bggscore.settings import Settings


def load_export(settings: Settings, path: Path) -> LoadResult:
    """Read and check the export first (nothing is written for a bad one), then upsert it
    into the warehouse, creating the tables where they are missing."""
    frame = read_export(path)
    with open_warehouse(settings, create=True) as wh:
        wh.ensure_schema()
        return load_games(wh, frame)
