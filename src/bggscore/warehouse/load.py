"""Load a ``games_features`` export into the warehouse and keep its hashes.

``last_updated`` moves only for new games or a changed hash, as the warehouse's
own job does; games and hashes commit in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from bggscore.errors import InputError
from bggscore.hashing import feature_hashes
from bggscore.warehouse.base import Warehouse, Write
from bggscore.warehouse.schemas import (
    ARRAY_STRING,
    FLOAT64,
    GAMES_FEATURES,
    INT64,
    STRING,
    TIMESTAMP,
)

_ACCEPTS = {
    INT64: lambda t: t.is_integer(),
    FLOAT64: lambda t: t.is_numeric(),
    STRING: lambda t: t == pl.String,
    TIMESTAMP: lambda t: isinstance(t, pl.Datetime),
    ARRAY_STRING: lambda t: t == pl.List(pl.String) or t == pl.List(pl.Null),
}


@dataclass(frozen=True)
class LoadResult:
    games: int
    new: int
    changed: int
    unchanged: int


def read_export(path: Path) -> pl.DataFrame:
    """Read and check a games_features parquet export; extra columns are ignored."""
    if path.is_dir():
        raise InputError(f"{path} is a folder", "pass the path of a games_features parquet file")
    if not path.is_file():
        raise InputError(f"{path} not found", "pass the path of a games_features parquet export")
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:
        detail = str(exc).splitlines()[0][:120]
        raise InputError(f"{path} is not a readable parquet file ({detail})") from None
    if frame.is_empty():  # loading nothing would look like success (an export that failed)
        raise InputError(f"{path} holds no games", "pass a games_features export with its rows")
    return check_export(frame, str(path))


def check_export(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    kinds = dict(GAMES_FEATURES.columns)
    missing = [name for name in GAMES_FEATURES.required if name not in frame.columns]
    if missing:
        raise InputError(
            f"{label} is missing required column(s): {', '.join(missing)}",
            "export all analytics.games_features columns",
        )
    for name in GAMES_FEATURES.names:
        if name in frame.columns and not _ACCEPTS[kinds[name]](frame.schema[name]):
            raise InputError(
                f"{label}: column {name} has type {frame.schema[name]}, expected {kinds[name]}"
            )
    if frame["game_id"].null_count():
        raise InputError(f"{label}: {frame['game_id'].null_count()} row(s) have no game_id")
    below = frame.filter(pl.col("game_id") < 1)["game_id"]
    if len(below):  # `--game-id` refuses them, so such a game could never be addressed
        raise InputError(
            f"{label}: {len(below):,} row(s) have a game_id below 1 (e.g. {below.min()!s}); "
            "BoardGameGeek ids are positive",
            "fix or drop those rows, then load again",
        )
    duplicated = frame.filter(pl.col("game_id").is_duplicated())["game_id"].unique().sort()
    if len(duplicated):
        shown = ", ".join(str(v) for v in duplicated.head(5))
        raise InputError(
            f"{label}: {len(duplicated)} game_id(s) appear more than once (e.g. {shown})",
            "deduplicate the export",
        )
    return GAMES_FEATURES.conform(frame)


def load_games(
    warehouse: Warehouse, frame: pl.DataFrame, now: datetime | None = None
) -> LoadResult:
    """Upsert games and their hashes atomically; only new or changed games get a new
    ``last_updated``."""
    writes, result = games_writes(warehouse, frame, now)
    warehouse.write(writes)
    return result


def games_writes(
    warehouse: Warehouse, frame: pl.DataFrame, now: datetime | None = None
) -> tuple[list[Write], LoadResult]:
    """The writes of a features load (games and hashes, committed together) and its counts."""
    now = now or datetime.now(timezone.utc)
    warehouse.require_tables(["games_features", "game_features_hash"])
    frame = GAMES_FEATURES.conform(frame).with_columns(feature_hashes(frame))
    old = warehouse.read_hashes(frame["game_id"].to_list()).rename(
        {"feature_hash": "old_hash", "last_updated": "old_updated"}
    )
    merged = frame.join(old, on="game_id", how="left")
    is_new = pl.col("old_hash").is_null()
    is_changed = ~is_new & (pl.col("old_hash") != pl.col("feature_hash"))
    merged = merged.with_columns(
        pl.when(is_new | is_changed)
        .then(pl.lit(now, dtype=pl.Datetime("us", "UTC")))
        .otherwise(pl.col("old_updated"))
        .alias("last_updated"),
        pl.lit(now, dtype=pl.Datetime("us", "UTC")).alias("load_timestamp"),
    )
    new = int(merged.select(is_new.sum()).item())
    changed = int(merged.select(is_changed.sum()).item())
    hashes = merged.select("game_id", "name", "feature_hash", "last_updated")
    writes = [
        Write("games_features", merged, "upsert"),
        Write("game_features_hash", hashes, "upsert"),
    ]
    return writes, LoadResult(len(merged), new, changed, len(merged) - new - changed)
