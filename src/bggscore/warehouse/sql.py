"""One source of truth for SQL: BigQuery SQL over logical table names.

Every query bggscore runs is written once, in BigQuery's dialect, against
logical names (``games_features``, ``scoring_state``, ...). ``render`` swaps in
the physical, validated table references and transpiles with sqlglot, so the
DuckDB engine (and therefore the tests) executes the meaning of the very SQL
that BigQuery runs. Values always travel as ``@name`` query parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import sqlglot
from sqlglot import exp

from bggscore.warehouse.schemas import TableSchema


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
    trees = [tree for tree in sqlglot.parse(sql, read="bigquery") if tree is not None]
    if len(trees) != 1:  # parse_one would keep a stacked `; DROP TABLE ...` as well
        raise ValueError(f"canonical SQL must be exactly one statement, got {len(trees)}")
    return cast(exp.Expression, trees[0])


@lru_cache(maxsize=1024)
def _render(sql: str, tables: tuple[tuple[str, TableRef], ...], dialect: str) -> str:
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


def render(sql: str, tables: Mapping[str, TableRef], dialect: str) -> str:
    """Canonical SQL -> the engine's SQL, with physical table names."""
    return _render(sql, tuple(sorted(tables.items())), dialect)


def column_list(names: list[str], alias: str | None = None) -> str:
    """Quote known column names for a canonical statement."""
    return ", ".join(
        exp.column(name, table=alias, quoted=True).sql("bigquery") if alias else f"`{name}`"
        for name in names
    )


def append_new_sql(schema: TableSchema, staged: str) -> str:
    """Insert staged rows whose key is not already present: retrying never duplicates."""
    cols = column_list(schema.names)
    match = " AND ".join(f"t.`{k}` = b.`{k}`" for k in schema.key)
    if "score_ts" in schema.names:
        # rows of one job share its score_ts: look for them only from there on, so the
        # check reads the newest row groups (partitions), not the whole history
        since = f"(SELECT MIN(s.`score_ts`) FROM {staged} AS s)"  # noqa: S608 - our staging name
        match = f"t.`score_ts` >= {since} AND {match}"
    return (
        f"INSERT INTO {schema.logical} ({cols}) "  # noqa: S608 - identifiers from our schema
        f"SELECT {column_list(schema.names, 'b')} FROM {staged} AS b "
        f"WHERE NOT EXISTS (SELECT 1 FROM {schema.logical} AS t WHERE {match})"
    )


def upsert_sql(schema: TableSchema, staged: str) -> str:
    """Merge staged rows on the table's key: update what exists, insert the rest."""
    on = " AND ".join(f"t.`{k}` = b.`{k}`" for k in schema.key)
    updates = ", ".join(f"`{c}` = b.`{c}`" for c in schema.names if c not in schema.key)
    return (
        f"MERGE INTO {schema.logical} AS t USING {staged} AS b ON {on} "  # noqa: S608
        f"WHEN MATCHED THEN UPDATE SET {updates} "
        f"WHEN NOT MATCHED THEN INSERT ({column_list(schema.names)}) "
        f"VALUES ({column_list(schema.names, 'b')})"
    )
