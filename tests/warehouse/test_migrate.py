"""`warehouse migrate`: a version-1 state table (not partitioned by stage) carried to version
2 on both engines, with its rows; `--dry-run` changes nothing; a second run is a no-op; on
BigQuery the old table is kept until `--drop-old`, and a run stopped half-way is finished
by the next."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import polars as pl
import pytest
from tests.factories import make_scoring_state
from tests.support.warehouses import engine_fixture

from bggscore.errors import WarehouseError
from bggscore.warehouse.base import Warehouse
from bggscore.warehouse.migrate import migrate
from bggscore.warehouse.schemas import (
    SCORING_STATE,
    STAGE_PARTITION,
    WAREHOUSE_SCHEMA_VERSION,
    stage_partition,
)
from bggscore.warehouse.sql import append_new_sql

warehouse = engine_fixture()
# bqemulator's script runner asks DuckDB for Arrow output of the insert that builds the old
# table below, which DuckDB warns about (a warning the suite makes an error)
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API:UserWarning")

# the state table as bggscore before version 2 created it
V1 = replace(
    SCORING_STATE,
    columns=tuple(c for c in SCORING_STATE.columns if c[0] != STAGE_PARTITION),
    partition_by_range=None,
)
STAGES = {"complexity": [1, 2, 3], "main": [1, 2], "text-embeddings": [7]}


def old_warehouse(wh: Warehouse) -> pl.DataFrame:
    """Every table at the current version but the state table, a version-1 one holding
    rows of three stages; returns those rows."""
    for schema in wh.managed_tables():
        if schema.logical != "scoring_state":
            wh._create_table(wh.tables[schema.logical], schema)
    wh._create_table(wh.tables["scoring_state"], V1)
    rows = pl.concat(
        [make_scoring_state(ids, stage=stage) for stage, ids in STAGES.items()]
    ).select(V1.names)
    staged = "bggscore_stage_0"
    ref = wh._stage_ref(staged)
    statement = wh.render(append_new_sql(V1, staged), {staged: ref})
    wh._commit({staged: rows.to_arrow()}, [(statement, {})])
    return rows


def state_rows(wh: Warehouse) -> pl.DataFrame:
    return wh.query("SELECT * FROM scoring_state").sort("stage", "game_id")


def test_an_old_state_table_is_refused_until_migrated(warehouse: Warehouse) -> None:
    old_warehouse(warehouse)
    assert warehouse.schema_version() == 1
    with pytest.raises(WarehouseError, match=r"schema version 1.*warehouse migrate"):
        warehouse.require_tables(["scoring_state"])
    assert warehouse.ensure_schema() == []  # init never adds the column half-way


def test_a_dry_run_prints_the_statements_and_changes_nothing(warehouse: Warehouse) -> None:
    rows = old_warehouse(warehouse)
    planned = migrate(warehouse, dry_run=True)
    assert (planned.found, planned.target, planned.dry_run) == (1, WAREHOUSE_SCHEMA_VERSION, True)
    assert planned.steps and not planned.as_dict()["migrated"]
    statements = [step.sql for step in planned.steps if step.sql]
    assert statements and all("stage" in sql for sql in statements)
    assert warehouse.schema_version() == 1
    assert state_rows(warehouse).select(V1.names).equals(rows.sort("stage", "game_id"))


def test_migrating_keeps_every_row_and_fills_its_partition(warehouse: Warehouse) -> None:
    rows = old_warehouse(warehouse)
    done = migrate(warehouse)
    assert done.as_dict()["migrated"] and warehouse.schema_version() == WAREHOUSE_SCHEMA_VERSION
    warehouse.require_tables(["scoring_state"])
    after = state_rows(warehouse)
    assert after.select(V1.names).equals(rows.sort("stage", "game_id"))
    expected = [stage_partition(stage) for stage in after["stage"]]
    assert after[STAGE_PARTITION].to_list() == expected
    again = migrate(warehouse)  # idempotent
    assert again.steps == [] or all("old table" in step.action for step in again.steps)
    assert state_rows(warehouse).equals(after)


def test_after_migrating_writes_touch_only_their_stage(warehouse: Warehouse) -> None:
    from bggscore.warehouse.base import Write

    old_warehouse(warehouse)
    migrate(warehouse)
    newer = make_scoring_state([1, 9], stage="main", job_id="job-2")
    warehouse.write([Write("scoring_state", newer, "upsert")])
    after = state_rows(warehouse)
    main = after.filter(pl.col("stage") == "main")
    assert main.select("game_id", "job_id").rows() == [(1, "job-2"), (2, "job-1"), (9, "job-2")]
    others = after.filter(pl.col("stage") != "main")
    assert others["job_id"].unique().to_list() == ["job-1"] and len(others) == 4


@pytest.mark.bigquery
@pytest.mark.parametrize("warehouse", ["bigquery"], indirect=True)
def test_bigquery_keeps_the_old_table_until_told_to_drop_it(warehouse: Warehouse) -> None:
    rows = old_warehouse(warehouse)
    state = warehouse.tables["scoring_state"]
    client: Any = warehouse.client  # type: ignore[attr-defined]
    done = migrate(warehouse)
    # (the emulator keeps no range partitioning: test_bigquery_engine checks what is sent)
    live = client.get_table(f"{state.project}.{state.dataset}.{state.table}")
    assert STAGE_PARTITION in [field.name for field in live.schema]
    assert done.kept == f"{state.project}.{state.dataset}.{state.table}__v1"
    kept = client.get_table(done.kept)
    assert kept.num_rows == len(rows)
    dropped = migrate(warehouse, drop_old=True)
    assert [step.action for step in dropped.steps] == [f"delete the old table {done.kept}"]
    assert dropped.kept is None
    assert migrate(warehouse).steps == []


@pytest.mark.bigquery
@pytest.mark.parametrize("warehouse", ["bigquery"], indirect=True)
@pytest.mark.parametrize("stopped_after", ["keep the old table as", "delete"])
def test_bigquery_finishes_a_migration_stopped_half_way(
    warehouse: Warehouse, stopped_after: str
) -> None:
    rows = old_warehouse(warehouse)
    plan = migrate(warehouse, dry_run=True)
    state = warehouse.tables["scoring_state"]
    if stopped_after == "delete":
        [last] = [i for i, step in enumerate(plan.steps) if step.action == f"delete {state}"]
    else:
        [last] = [i for i, s in enumerate(plan.steps) if s.action.startswith(stopped_after)]
    for step in plan.steps[: last + 1]:  # the process dies after this step
        assert step.run is not None
        step.run()
    finished = migrate(warehouse)
    assert finished.steps
    assert warehouse.schema_version() == WAREHOUSE_SCHEMA_VERSION
    assert state_rows(warehouse).select(V1.names).equals(rows.sort("stage", "game_id"))
