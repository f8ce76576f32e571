"""One source of truth for SQL: BigQuery SQL over logical table names.

Every query bggscore runs is written once, in BigQuery's dialect, against
logical names (``games_features``, ``scoring_state``, ...). ``render`` swaps in
the physical, validated table references and transpiles with sqlglot, so the
DuckDB engine (and therefore the tests) executes the meaning of the very SQL
that BigQuery runs. Values always travel as ``@name`` query parameters.

Parsing and transpiling costs tens of milliseconds per statement (and importing
sqlglot more), paid again by every CLI process, so renders of our own tables are
also kept on disk, in the user's cache folder: one file per statement, named by
the sha256 of everything the output depends on (the canonical SQL, the physical
tables, the dialect, the sqlglot and bggscore versions and this module's own
source). A file is written whole to a temporary name, then moved into place; any
problem reading or writing it means rendering as if there were no cache. Renders are
executed as they are, so a file or folder another user could have written is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bggscore.warehouse.schemas import TABLES, TableSchema

if TYPE_CHECKING:
    from sqlglot import exp

CACHE_FORMAT = "bggscore-rendered-sql 1"


@dataclass(frozen=True)
class TableRef:
    """A physical table: project (BigQuery only), dataset/schema, table."""

    table: str
    dataset: str | None = None
    project: str | None = None

    def __str__(self) -> str:
        return ".".join(part for part in (self.project, self.dataset, self.table) if part)


@dataclass(frozen=True)
class Typed:
    """A parameter value with an explicit BigQuery type (for NULLs and empty arrays)."""

    value: Any
    bq_type: str


@lru_cache(maxsize=512)
def _parse(sql: str) -> exp.Expression:
    import sqlglot

    trees = [tree for tree in sqlglot.parse(sql, read="bigquery") if tree is not None]
    if len(trees) != 1:  # parse_one would keep a stacked `; DROP TABLE ...` as well
        raise ValueError(f"canonical SQL must be exactly one statement, got {len(trees)}")
    return cast("exp.Expression", trees[0])


def _transpile(sql: str, tables: tuple[tuple[str, TableRef], ...], dialect: str) -> str:
    from sqlglot import exp

    mapping = dict(tables)
    tree = _parse(sql).copy()
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for node in tree.find_all(exp.Table):
        if node.name in ctes and not node.args.get("db"):
            continue
        if node.args.get("db") or node.args.get("catalog"):
            raise ValueError(f"canonical SQL must use logical table names, got {node.sql()}")
        ref = mapping.get(node.name)
        if ref is None:
            raise KeyError(f"unknown logical table {node.name!r}")
        node.set("this", exp.to_identifier(ref.table, quoted=True))
        if ref.dataset:
            node.set("db", exp.to_identifier(ref.dataset, quoted=True))
        if ref.project and dialect == "bigquery":
            node.set("catalog", exp.to_identifier(ref.project, quoted=True))
    return tree.sql(dialect=dialect)


@lru_cache(maxsize=1024)
def _render(sql: str, tables: tuple[tuple[str, TableRef], ...], dialect: str) -> str:
    path = _cache_file(sql, tables, dialect) if _stable(tables) else None
    if path is not None:
        cached = _read_cached(path)
        if cached is not None:
            return cached
    rendered = _transpile(sql, tables, dialect)
    if path is not None:
        _write_cached(path, rendered)
    return rendered


def _stable(tables: tuple[tuple[str, TableRef], ...]) -> bool:
    """Whether the same statement will name the same tables next time: ours, or a staged
    frame visible under its own name (DuckDB). BigQuery's staging tables have a new name
    for every write; keeping those renders would only fill the folder."""
    return all(name in TABLES or ref == TableRef(name) for name, ref in tables)


def render(sql: str, tables: Mapping[str, TableRef], dialect: str) -> str:
    """Canonical SQL -> the engine's SQL, with physical table names."""
    return _render(sql, tuple(sorted(tables.items())), dialect)


# -- the on-disk cache of renders ---------------------------------------------------------------
def cache_folder() -> Path | None:
    """Where renders are kept: the user's cache folder (XDG_CACHE_HOME, ~/.cache, or
    LOCALAPPDATA on Windows), under bggscore/sql."""
    try:
        if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
            base = Path(os.environ["LOCALAPPDATA"])
        elif os.environ.get("XDG_CACHE_HOME"):
            base = Path(os.environ["XDG_CACHE_HOME"])
        else:
            base = Path.home() / ".cache"
    except (OSError, RuntimeError):  # no home directory to be found
        return None
    return base / "bggscore" / "sql"


@lru_cache(maxsize=1)
def _versions() -> str:
    """What a render depends on besides its inputs: sqlglot, bggscore and this module."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("sqlglot", "bggscore"):
        try:
            found.append(f"{package}={version(package)}")
        except PackageNotFoundError:
            found.append(f"{package}=?")
    # a source checkout keeps its version while this file changes
    found.append(hashlib.sha256(Path(__file__).read_bytes()).hexdigest())
    return "|".join(found)


def _cache_file(sql: str, tables: tuple[tuple[str, TableRef], ...], dialect: str) -> Path | None:
    try:
        folder = cache_folder()
        if folder is None:
            return None
        digest = hashlib.sha256()
        for part in (CACHE_FORMAT, _versions(), dialect, repr(tables), sql):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
        return folder / f"{digest.hexdigest()}.sql"
    except Exception:  # any failure only means no cache
        return None


def _private(path: Path) -> bool:
    """Whether only this user could have written ``path`` (POSIX): owned by us and not
    writable by group or others. A render is executed as is, so a file someone else
    could have written (a shared or world-writable cache folder) is never used."""
    if not hasattr(os, "getuid"):
        return True  # Windows: the per-user LOCALAPPDATA folder
    info = os.stat(path)
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def _read_cached(path: Path) -> str | None:
    """The render kept in ``path``, or None (missing, unreadable, not ours)."""
    try:
        if not (_private(path.parent) and _private(path)):
            return None
        header, _, body = path.read_text(encoding="utf-8").partition("\n")
    except (OSError, UnicodeError, ValueError):
        return None
    # the header names the file's own key: a stray, renamed or truncated file is a miss
    if header != f"-- {CACHE_FORMAT} {path.stem}" or not body.endswith("\n"):
        return None
    return body[:-1]


def _write_cached(path: Path, rendered: str) -> None:
    """Keep a render: written whole under a temporary name, then moved into place."""
    tmp = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(path.parent):
            return  # a folder others can write to: never trusted when reading either
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".sql", dir=path.parent)  # 0600
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(f"-- {CACHE_FORMAT} {path.stem}\n{rendered}\n")
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass  # a read-only or full disk: render next time too
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quoted(name: str) -> str:
    """A column or alias name, backquoted; anything but a plain identifier is refused (so
    building a statement never needs sqlglot, which costs ~0.1 s to import)."""
    if not IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return f"`{name}`"


def column_list(names: list[str], alias: str | None = None) -> str:
    """Quote known column names for a canonical statement."""
    prefix = f"{quoted(alias)}." if alias else ""
    return ", ".join(f"{prefix}{quoted(name)}" for name in names)


def bound_params(schema: TableSchema, index: int) -> tuple[str, str] | None:
    """The names bounding an append's duplicate check to the partitions the staged rows
    fall in (their lowest and highest partition value), for a time-partitioned table."""
    if schema.partition_by_day is None:
        return None
    return f"since_{index}", f"until_{index}"


def _value(name: str, variable: bool) -> str:
    """A bound as the statement names it: a query parameter (``@name``), or a script
    variable (``name``, DECLAREd earlier in the same script: BigQuery)."""
    if not IDENTIFIER.match(name):
        raise ValueError(f"not a parameter or variable name: {name!r}")
    return name if variable else f"@{name}"


def append_new_sql(
    schema: TableSchema,
    staged: str,
    bounds: tuple[str, str] | None = None,
    variables: bool = False,
) -> str:
    """Insert staged rows whose key is not already present: retrying never duplicates.

    With ``bounds`` (the names of the staged rows' lowest and highest value of the
    partitioning column: parameters, or script ``variables``), the check reads only those
    partitions: constants, so BigQuery prunes the rest of the history (a subquery over
    the staged rows would not)."""
    cols = column_list(schema.names)
    match = " AND ".join(f"t.`{k}` = b.`{k}`" for k in schema.key)
    if bounds is not None and schema.partition_by_day is not None:
        column = quoted(schema.partition_by_day)
        since, until = (_value(name, variables) for name in bounds)
        match = f"t.{column} >= {since} AND t.{column} <= {until} AND {match}"
    return (
        f"INSERT INTO {schema.logical} ({cols}) "  # noqa: S608 - identifiers from our schema
        f"SELECT {column_list(schema.names, 'b')} FROM {staged} AS b "
        f"WHERE NOT EXISTS (SELECT 1 FROM {schema.logical} AS t WHERE {match})"
    )


WRITE_BOUNDS = "write_bounds"  # the script variable holding every bound of one write


def declare_bounds_sql(bounded: list[tuple[TableSchema, str, tuple[str, str]]]) -> list[str]:
    """Script variables holding each append's lowest and highest partition value of its
    staged rows (``bounded``: the table, the staging name, the bounds' names): constants
    for the statements after them. Every bound is computed in one statement, an array
    the variables then take their element of: each statement of a script that reads the
    staging table bills BigQuery's 10 MiB minimum."""
    pairs, names = [], []
    for schema, staged, bounds in bounded:
        column = quoted(schema.partition_by_day or "")
        pairs.append(f"(SELECT [MIN(b.{column}), MAX(b.{column})] FROM {staged} AS b)")  # noqa: S608
        names += [_value(name, True) for name in bounds]
    if not pairs:
        return []
    every = pairs[0] if len(pairs) == 1 else f"ARRAY_CONCAT({', '.join(pairs)})"
    script = [f"DECLARE {WRITE_BOUNDS} ARRAY<TIMESTAMP> DEFAULT {every}"]
    script += [
        f"DECLARE {name} TIMESTAMP DEFAULT {WRITE_BOUNDS}[OFFSET({index})]"
        for index, name in enumerate(names)
    ]
    return script


def partition_param(schema: TableSchema, index: int) -> str | None:
    """The name for the integer partitions an upsert's staged rows fall in (the state
    table's stages), so the statement touches only those."""
    return f"partitions_{index}" if schema.partition_by_range else None


def declare_partitions_sql(schema: TableSchema, staged: str, name: str) -> str:
    """A script variable holding the integer partitions the staged rows fall in."""
    column = quoted(schema.partition_by_range or "")
    return (
        f"DECLARE {_value(name, True)} ARRAY<INT64> DEFAULT "  # noqa: S608
        f"(SELECT ARRAY_AGG(DISTINCT b.{column}) FROM {staged} AS b)"
    )


def _partition_filter(schema: TableSchema, name: str | None, variable: bool) -> str:
    if name is None or schema.partition_by_range is None:
        return ""
    return f"t.{quoted(schema.partition_by_range)} IN UNNEST({_value(name, variable)}) AND "


def upsert_sql(
    schema: TableSchema, staged: str, partitions: str | None = None, variables: bool = False
) -> str:
    """Merge staged rows on the table's key: update what exists, insert the rest. With
    ``partitions`` (a parameter, or a script variable), only those partitions are read."""
    on = _partition_filter(schema, partitions, variables) + " AND ".join(
        f"t.`{k}` = b.`{k}`" for k in schema.key
    )
    updates = ", ".join(f"`{c}` = b.`{c}`" for c in schema.names if c not in schema.key)
    return (
        f"MERGE INTO {schema.logical} AS t USING {staged} AS b ON {on} "  # noqa: S608
        f"WHEN MATCHED THEN UPDATE SET {updates} "
        f"WHEN NOT MATCHED THEN INSERT ({column_list(schema.names)}) "
        f"VALUES ({column_list(schema.names, 'b')})"
    )


def delete_keys_sql(
    schema: TableSchema, staged: str, partitions: str | None = None, variables: bool = False
) -> str:
    """Delete the rows whose key a staged row has (canonical SQL)."""
    match = " AND ".join(f"t.`{k}` = b.`{k}`" for k in schema.key)
    where = _partition_filter(schema, partitions, variables)
    return (
        f"DELETE FROM {schema.logical} AS t "  # noqa: S608 - identifiers from our schema
        f"WHERE {where}EXISTS (SELECT 1 FROM {staged} AS b WHERE {match})"
    )


def insert_all_sql(schema: TableSchema, staged: str) -> str:
    """Insert every staged row (canonical SQL)."""
    return (
        f"INSERT INTO {schema.logical} ({column_list(schema.names)}) "  # noqa: S608
        f"SELECT {column_list(schema.names, 'b')} FROM {staged} AS b"
    )


def copy_with_partition_sql(schema: TableSchema, target: str) -> str:
    """Copy one stage's rows of an older state table into ``target`` (the same table laid
    out by stage), filling the partition column: ``@partition`` for ``@stage``'s rows."""
    column = schema.partition_by_range
    if column is None:
        raise ValueError(f"{schema.logical} has no integer partition column")
    older = [name for name in schema.names if name != column]
    return (
        f"INSERT INTO {target} ({column_list([*older, column])}) "  # noqa: S608
        f"SELECT {column_list(older, 's')}, @partition FROM {schema.logical} AS s "
        "WHERE s.`stage` = @stage"
    )


def set_partition_sql(schema: TableSchema) -> str:
    """Fill the partition column of one stage's rows (``@stage``) where it is missing."""
    column = schema.partition_by_range
    if column is None:
        raise ValueError(f"{schema.logical} has no integer partition column")
    return (
        f"UPDATE {schema.logical} AS s SET {quoted(column)} = @partition "  # noqa: S608
        f"WHERE s.`stage` = @stage AND s.{quoted(column)} IS NULL"
    )
