"""`bggscore warehouse migrate`: carry an older layout to ``WAREHOUSE_SCHEMA_VERSION``.

Version 2 partitions the state table by stage (``stage_partition``, an INT64 BigQuery
range-partitions by), so a detection read or a MERGE of one stage's rows bills that
stage's partition, not the whole table. Existing rows need the column filled:

* DuckDB adds the column and fills it, stage by stage, in one transaction.
* BigQuery cannot re-partition a table in place: the rows are copied, stage by stage,
  into a new table laid out by stage; the old table is kept under another name, the new
  one takes its place (copy jobs, no bytes billed), and the old one stays until
  ``--drop-old``. Each step is decided from which of the three tables exist, so a run
  that stopped half-way is finished by the next one, and a finished migration is a no-op.

``--dry-run`` prints every statement and step without running any.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bggscore.errors import WarehouseError
from bggscore.warehouse import queries
from bggscore.warehouse.base import Warehouse
from bggscore.warehouse.schemas import (
    SCORING_STATE,
    STAGE_PARTITION,
    WAREHOUSE_SCHEMA_VERSION,
    stage_partition,
)
from bggscore.warehouse.sql import TableRef, copy_with_partition_sql, set_partition_sql

COPY_SUFFIX = "__v2"  # the new table while it is filled
KEPT_SUFFIX = "__v1"  # the old table, kept until --drop-old
COPY = "state_copy"  # the copy's logical name in the canonical statements


@dataclass
class Step:
    """One thing a migration does: what, the SQL it runs (if any), and how to run it."""

    action: str
    sql: str | None = None
    run: Callable[[], None] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "sql": self.sql}


@dataclass
class MigrateResult:
    location: str
    engine: str
    found: int | None  # the version before (None: no bggscore tables yet)
    target: int
    dry_run: bool
    steps: list[Step]
    kept: str | None = None  # the old table, kept until --drop-old

    def as_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "engine": self.engine,
            "from_version": self.found,
            "to_version": self.target,
            "dry_run": self.dry_run,
            "migrated": bool(self.steps) and not self.dry_run,
            "steps": [step.as_dict() for step in self.steps],
            "kept_table": self.kept,
        }


def migrate(wh: Warehouse, dry_run: bool = False, drop_old: bool = False) -> MigrateResult:
    """Plan the migration of ``wh`` to the current layout and, unless ``dry_run``, run it."""
    found = wh.schema_version()
    if found is None and wh.engine == "bigquery" and _kept_table(wh) is not None:
        found = 1  # a migration stopped after the old table was moved aside
    if found is None:
        raise WarehouseError(
            f"warehouse {wh.location} has no bggscore tables to migrate",
            "run `bggscore warehouse init` (it creates them at the current version)",
        )
    plan = _bigquery_steps if wh.engine == "bigquery" else _duckdb_steps
    steps, kept = plan(wh, found, drop_old)
    if not dry_run:
        for step in steps:
            if step.run is not None:
                step.run()
    return MigrateResult(
        wh.location, wh.engine, found, WAREHOUSE_SCHEMA_VERSION, dry_run, steps, kept
    )


def _kept_table(wh: Warehouse) -> dict[str, str] | None:
    state = wh.tables["scoring_state"]
    return wh._table_columns(_ref(wh, state.table + KEPT_SUFFIX))


def _stages(wh: Warehouse, table: str | None = None) -> list[str]:
    """The stages the state table (or the table ``table`` names, beside it) has rows of."""
    staged = {"scoring_state": _ref(wh, table)} if table else None
    frame = wh._fetch(wh.render(queries.STATE_STAGES, staged), {})
    return [str(stage) for stage in frame["stage"].to_list()]


def _ref(wh: Warehouse, table: str | None) -> TableRef:
    state = wh.tables["scoring_state"]
    return state if table is None else TableRef(table, state.dataset, state.project)


# -- DuckDB: add the column and fill it, in one transaction ---------------------------------
def _duckdb_steps(wh: Warehouse, found: int, drop_old: bool) -> tuple[list[Step], str | None]:
    if found >= WAREHOUSE_SCHEMA_VERSION:
        return [], None
    from bggscore.warehouse.duckdb_engine import add_column_sql

    state = wh.tables["scoring_state"]
    alter = add_column_sql(state, SCORING_STATE, STAGE_PARTITION)
    update = wh.render(set_partition_sql(SCORING_STATE))
    statements: list[tuple[str, dict[str, Any]]] = [(alter, {})]
    steps = [Step(f"add {STAGE_PARTITION} to {state}", alter)]
    for stage in _stages(wh):
        params = {"stage": stage, "partition": stage_partition(stage)}
        statements.append((update, params))
        steps.append(Step(f"fill {STAGE_PARTITION} of {stage}'s rows", update))

    def run() -> None:
        wh._commit({}, statements)  # all of it or none

    steps[-1].run = run
    return steps, None


# -- BigQuery: copy, swap, keep the old table ------------------------------------------------
def _bigquery_steps(wh: Warehouse, found: int, drop_old: bool) -> tuple[list[Step], str | None]:
    engine: Any = wh  # a BigQueryWarehouse: _copy_table, _drop_table
    state = wh.tables["scoring_state"]
    copy = _ref(wh, state.table + COPY_SUFFIX)
    kept = _ref(wh, state.table + KEPT_SUFFIX)
    live, copied, old = (wh._table_columns(ref) for ref in (state, copy, kept))
    steps: list[Step] = []

    def step(action: str, run: Callable[[], None], sql: str | None = None) -> None:
        steps.append(Step(action, sql, run))

    def swap_in() -> None:
        step(f"move {copy} into place as {state}", lambda: engine._copy_table(copy, state))
        step(f"delete {copy}", lambda: engine._drop_table(copy))

    if live is not None and STAGE_PARTITION in live:
        pass  # at the current version
    elif live is None and copied is not None and old is not None:
        swap_in()  # stopped after the old table was kept aside: the copy is complete
    else:
        source = state
        if live is None:
            if old is None:
                raise WarehouseError(
                    f"warehouse {wh.location} has no {state} to migrate",
                    "run `bggscore warehouse init`",
                )
            step(f"copy {kept} back to {state}", lambda: engine._copy_table(kept, state))
            source = kept
        step(f"delete any unfinished copy {copy}", lambda: engine._drop_table(copy))
        step(
            f"create {copy} partitioned by RANGE_BUCKET({STAGE_PARTITION}), "
            "clustered by stage, game_id",
            lambda: wh._create_table(copy, SCORING_STATE),
        )
        insert = wh.render(copy_with_partition_sql(SCORING_STATE, COPY), {COPY: copy})
        for stage in _stages(wh, source.table):
            params = {"stage": stage, "partition": stage_partition(stage)}
            step(f"copy {stage}'s rows into {copy}", _runner(wh, insert, params), insert)
        step(f"keep the old table as {kept}", lambda: engine._copy_table(state, kept))
        step(f"delete {state}", lambda: engine._drop_table(state))
        swap_in()
    has_kept = bool(steps) or old is not None
    if drop_old and has_kept:
        step(f"delete the old table {kept}", lambda: engine._drop_table(kept))
        has_kept = False
    return steps, str(kept) if has_kept else None


def _runner(wh: Warehouse, sql: str, params: dict[str, Any]) -> Callable[[], None]:
    return lambda: wh._run(sql, params)
