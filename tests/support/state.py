"""Read back what the commands left in the embedded warehouse (the STATE checks).

Every helper opens the DuckDB file itself and closes it before returning, so a test can
re-open the database between CLI invocations without holding a connection (or a lock).
``home`` is a bggscore home (its ``warehouse.duckdb`` is read) or a ``.duckdb`` file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

# logical table -> where the embedded warehouse keeps it (BigQuery dataset = DuckDB schema)
QUALIFIED = {
    "games_features": "analytics.games_features",
    "game_features_hash": "staging.game_features_hash",
    "ml_predictions_landing": "raw.ml_predictions_landing",
    "complexity_predictions": "raw.complexity_predictions",
    "scoring_state": "raw.bggscore_scoring_state",
    "runs": "raw.bggscore_runs",
}
# the tables `embed` writes, beside QUALIFIED's
EMBEDDING_TABLES = {
    "description_embeddings": "raw.description_embeddings",
    "game_embeddings": "raw.game_embeddings",
}
WRITTEN_BY_SCORE = ("ml_predictions_landing", "complexity_predictions", "scoring_state", "runs")

# BigQuery type -> how DuckDB describes the column that mirrors it
MIRRORED_TYPES = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "TIMESTAMP": "TIMESTAMP WITH TIME ZONE",
}


def warehouse_file(home: Path) -> Path:
    """The home's default warehouse file, or ``home`` itself when it is a .duckdb file."""
    return home if home.suffix == ".duckdb" else home / "warehouse.duckdb"


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    return con


def sql(home: Path, query: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
    """Run ``query`` (use the QUALIFIED names) and return the result as polars."""
    con = _connect(warehouse_file(home))
    try:
        return con.sql(query, params=params or {}).pl()
    finally:
        con.close()


def execute(home: Path, statement: str) -> None:
    con = _connect(warehouse_file(home))
    try:
        con.execute(statement)
    finally:
        con.close()


def read(home: Path, logical: str) -> pl.DataFrame:
    return sql(home, f"SELECT * FROM {QUALIFIED[logical]}")


def count(home: Path, logical: str) -> int:
    return int(sql(home, f"SELECT COUNT(*) AS n FROM {QUALIFIED[logical]}")["n"][0])


def column_types(home: Path, logical: str) -> list[tuple[str, str]]:
    schema, table = QUALIFIED[logical].split(".")
    frame = sql(
        home,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = $schema AND table_name = $table ORDER BY ordinal_position",
        {"schema": schema, "table": table},
    )
    return list(frame.select("column_name", "data_type").iter_rows())


def written_counts(home: Path) -> dict[str, int]:
    """Rows in every table `score` writes: all zero means nothing was written."""
    return {logical: count(home, logical) for logical in WRITTEN_BY_SCORE}


def game_ids(home: Path, where: str = "year_published IS NOT NULL") -> set[int]:
    frame = sql(home, f"SELECT game_id FROM {QUALIFIED['games_features']} WHERE {where}")
    return set(frame["game_id"].to_list())


# -- nothing written: snapshots to compare before and after a refusal ---------------------
def table_counts(home: Path) -> dict[str, int]:
    """Rows of every table in the home's DuckDB file (read-only; {} when there is none)."""
    path = home / "warehouse.duckdb"
    if not path.is_file() or path.stat().st_size == 0:
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' ORDER BY 1, 2"
        ).fetchall()
        if not names:
            return {}
        counts = " UNION ALL ".join(
            f'SELECT \'{schema}.{table}\', COUNT(*) FROM "{schema}"."{table}"'
            for schema, table in names
        )
        return dict(con.execute(counts).fetchall())
    finally:
        con.close()


def files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: relative path -> (size, mtime_ns)."""
    if not folder.is_dir():
        return {}
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
