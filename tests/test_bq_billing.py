"""The cost benchmark's billing model (benchmarks/bq_billing.py): BigQuery's on-demand
rules applied to SQL, on tables of known sizes."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pyarrow as pa
import pytest
from benchmarks.bq_billing import (
    MIB,
    MINIMUM,
    Biller,
    ColumnValues,
    TableSize,
    arrow_column_bytes,
    arrow_column_values,
)

TODAY = date(2026, 6, 30)
GAMES = "p.d.games"
LANDING = "p.d.landing"
STATE = "p.d.state"
STAGE = "p.d._stage_0"


@pytest.fixture
def biller() -> Biller:
    sizes = {
        # 1M rows: every 1-byte-per-row column is 1 MB
        GAMES: TableSize({"game_id": 8.0, "name": 20.0, "description": 1500.0}, rows=1_000_000),
        # a partition a day: 100 days ago 1M rows, then 10k a day up to today
        LANDING: TableSize(
            {"job_id": 27.0, "game_id": 8.0, "score_ts": 8.0, "predicted": 8.0},
            partition_column="score_ts",
            days={100: 1_000_000, **{ago: 10_000 for ago in range(100)}},
        ),
        STATE: TableSize({"stage": 12.0, "game_id": 8.0, "job_id": 27.0}, rows=2_000_000),
        STAGE: TableSize({"stage": 12.0, "game_id": 8.0, "job_id": 27.0}, rows=100),
    }
    return Biller(sizes, TODAY)


def billed(biller: Biller, sql: str, **params: object) -> float:
    return sum(s.bytes for s in biller.job(sql, dict(params)))


def test_referenced_columns_over_the_whole_table(biller: Biller) -> None:
    sql = "SELECT f.game_id, CHAR_LENGTH(f.description) AS n FROM `p.d.games` AS f"
    assert billed(biller, sql) == 1_508 * 1_000_000
    # a filter on a column bills that column too; LIMIT bills nothing less
    sql = "SELECT f.game_id FROM `p.d.games` AS f WHERE f.name = @name LIMIT 1"
    assert billed(biller, sql, name="x") == 28 * 1_000_000


def test_star_bills_every_column_and_count_star_none(biller: Biller) -> None:
    assert billed(biller, "SELECT * FROM `p.d.games`") == 1_528 * 1_000_000
    assert billed(biller, "SELECT g.* FROM `p.d.games` AS g") == 1_528 * 1_000_000
    assert billed(biller, "SELECT COUNT(*) AS n FROM `p.d.games`") == 0


def test_a_table_read_twice_is_billed_once_with_the_union_of_columns(biller: Biller) -> None:
    sql = (
        "WITH a AS (SELECT game_id FROM `p.d.games`) "
        "SELECT a.game_id, g.name FROM a JOIN `p.d.games` AS g ON g.game_id = a.game_id"
    )
    assert billed(biller, sql) == 28 * 1_000_000


def test_ten_mib_minimum_per_table_read(biller: Biller) -> None:
    sql = "SELECT s.game_id, g.name FROM `p.d._stage_0` AS s JOIN `p.d.games` AS g USING (game_id)"
    assert billed(biller, sql) == MINIMUM + 28 * 1_000_000  # 100 staged rows bill 10 MiB
    assert billed(biller, "SELECT game_id FROM `p.d.games`") == MINIMUM  # 8 MB bills 10 MiB
    assert MINIMUM == 10 * MIB


def test_a_constant_partition_filter_prunes_and_a_subquery_does_not(biller: Biller) -> None:
    since = datetime(2026, 6, 28, 12, tzinfo=timezone.utc)  # 2 days ago: 3 partitions
    pruned = "SELECT t.game_id FROM `p.d.landing` AS t WHERE t.score_ts >= @since"
    assert billed(biller, pruned, since=since) == max(MINIMUM, 16 * 30_000)
    literal = "SELECT t.game_id FROM `p.d.landing` AS t WHERE t.score_ts < '2026-03-23'"
    assert billed(biller, literal) == 16 * 1_000_000  # the 100-day-old partition only
    subquery = (
        "SELECT t.game_id FROM `p.d.landing` AS t "
        "WHERE t.score_ts >= (SELECT MIN(s.score_ts) FROM `p.d.landing` AS s)"
    )
    assert billed(biller, subquery) == 16 * 2_000_000  # whole table
    either = "SELECT t.game_id FROM `p.d.landing` AS t WHERE t.score_ts >= @since OR TRUE"
    assert billed(biller, either, since=since) == 16 * 2_000_000


def test_merge_bills_the_whole_target_and_insert_only_what_it_reads(biller: Biller) -> None:
    merge = (
        "MERGE INTO `p.d.state` AS t USING `p.d._stage_0` AS b "
        "ON t.stage = b.stage AND t.game_id = b.game_id "
        "WHEN MATCHED THEN UPDATE SET job_id = b.job_id "
        "WHEN NOT MATCHED THEN INSERT (stage, game_id, job_id) "
        "VALUES (b.stage, b.game_id, b.job_id)"
    )
    # the target columns it reads (the ON keys), plus every column of the target, plus the
    # staged rows (the columns it assigns or inserts are not read)
    assert billed(biller, merge) == MINIMUM + (20 + 47) * 2_000_000
    insert = (
        "INSERT INTO `p.d.landing` (job_id, game_id) SELECT b.job_id, b.game_id "
        "FROM `p.d._stage_0` AS b WHERE NOT EXISTS (SELECT 1 FROM `p.d.landing` AS t "
        "WHERE t.job_id = b.job_id AND t.game_id = b.game_id)"
    )
    assert billed(biller, insert) == MINIMUM + 35 * 2_000_000


def test_a_script_bills_each_statement(biller: Biller) -> None:
    script = (
        "BEGIN TRANSACTION;\nSELECT f.name FROM `p.d.games` AS f;\n"
        "SELECT f.name FROM `p.d.games` AS f;\nCOMMIT TRANSACTION;"
    )
    statements = biller.job(script, {})
    assert [s.bytes for s in statements] == [20_000_000, 20_000_000]


def test_arrow_sizes_follow_bigquery_data_sizes() -> None:
    table = pa.table(
        {
            "n": pa.array([1, None], pa.int64()),
            "s": pa.array(["abc", None]),
            "v": pa.array([[1.0, 2.0], []], pa.list_(pa.float64())),
            "b": pa.array([True, False]),
        }
    )
    assert arrow_column_bytes(table) == {"n": 4.0, "s": 2.5, "v": 8.0, "b": 1.0}


def test_columns_belong_to_their_own_select(biller: Biller) -> None:
    # the derived table's unqualified columns are the staged table's, not the landing's;
    # a correlated reference reads the outer table's column
    sql = (
        "SELECT b.game_id FROM (SELECT game_id, stage, job_id FROM `p.d._stage_0`) AS b "
        "WHERE NOT EXISTS (SELECT 1 FROM `p.d.landing` AS t WHERE t.game_id = b.game_id "
        "AND t.score_ts >= (SELECT MIN(s.score_ts) FROM (SELECT score_ts, predicted "
        "FROM `p.d.landing`) AS s))"
    )
    (statement,) = biller.job(sql, {})
    assert statement.tables[LANDING] == (8 + 8 + 8) * 2_000_000  # game_id, score_ts, predicted
    correlated = (
        "SELECT g.game_id FROM `p.d.games` AS g WHERE EXISTS "
        "(SELECT 1 FROM `p.d.state` AS s WHERE s.game_id = g.game_id AND g.name = s.stage)"
    )
    (statement,) = biller.job(correlated, {})
    assert statement.tables[GAMES] == 28 * 1_000_000


def test_a_staging_table_of_frames_bills_only_the_frame_read() -> None:
    big = TableSize({"game_id": 8.0, "x": 100.0}, rows=1_000_000)
    small = TableSize({"game_id": 8.0}, rows=10)
    names = {"game_id": 0.0, "x": 0.0, "_frame": 0.0}  # what the table has; parts: widths
    staged = TableSize(names, range_column="_frame", parts={0: small, 1: big})
    biller = Biller({"p.d.s": staged}, TODAY)
    assert billed(biller, "SELECT game_id FROM `p.d.s` WHERE _frame = 0") == MINIMUM
    assert billed(biller, "SELECT game_id, x FROM `p.d.s` WHERE _frame = 1") == 108_000_000
    assert billed(biller, "SELECT game_id FROM `p.d.s`") == max(MINIMUM, 8 * 1_000_010)


# -- partitions bounded by lists, script variables, the state table's stages --------------
STATE_PARTS = "p.d.state_by_stage"
STAGED = "p.d._stage_rows"
STAMP = datetime(2026, 6, 30, 7, 0, tzinfo=timezone.utc)  # today
STAGE_ROWS = 100_000_000  # a byte a row: 100 MB a column of a partition


def parted_biller() -> Biller:
    """The state table in 3 stage partitions of 100M rows (every column 1 byte a row), a
    landing table of a partition a day, and a staging table of 2 frames whose values a
    DECLARE reads."""
    state_columns = {"stage": 1.0, "game_id": 1.0, "stage_partition": 1.0}
    parts = {value: TableSize(state_columns, rows=STAGE_ROWS) for value in (10, 20, 30)}
    staged_rows = {"stage_partition": 8.0, "game_id": 8.0, "score_ts": 8.0}
    frames = {
        0: TableSize(
            staged_rows,
            rows=100,
            values={"stage_partition": ColumnValues(10, 20, frozenset({10, 20}))},
        ),
        1: TableSize(
            staged_rows,
            rows=100,
            values={"score_ts": ColumnValues(STAMP, STAMP + timedelta(hours=1))},
        ),
    }
    sizes = {
        STATE_PARTS: TableSize(state_columns, range_column="stage_partition", parts=parts),
        LANDING: TableSize(
            {"job_id": 27.0, "game_id": 8.0, "score_ts": 8.0, "predicted": 8.0},
            partition_column="score_ts",
            days={100: 1_000_000, **{ago: 10_000 for ago in range(100)}},
        ),
        STAGED: TableSize({**staged_rows, "_frame": 8.0}, range_column="_frame", parts=frames),
    }
    return Biller(sizes, TODAY)


STATE_READ = "SELECT s.game_id FROM `p.d.state_by_stage` AS s WHERE "


@pytest.mark.parametrize(
    ("where", "params", "partitions"),
    [
        ("s.stage_partition = @partition", {"partition": 20}, 1),
        ("s.stage_partition = 30", {}, 1),
        ("s.stage_partition IN UNNEST(@partitions)", {"partitions": [10, 30]}, 2),
        ("s.stage_partition IN (10, 20)", {}, 2),
        (
            "s.stage_partition IN UNNEST(@partitions) AND s.stage_partition = 10",
            {"partitions": [10, 30]},
            1,
        ),
        # not constants: every partition
        ("s.stage_partition IN (SELECT 10)", {}, 3),
        ("s.stage_partition IN UNNEST(@partitions) OR TRUE", {"partitions": [10]}, 3),
        ("s.stage = @stage", {"stage": "main"}, 3),
    ],
)
def test_range_partitions_kept_by_constants(
    where: str, params: dict[str, object], partitions: int
) -> None:
    # game_id and stage_partition (when the filter reads it): 1 byte a row each
    read = 2 if "stage_partition" in where else 1
    read += 1 if "s.stage =" in where else 0
    assert billed(parted_biller(), STATE_READ + where, **params) == read * partitions * STAGE_ROWS


def test_a_list_of_timestamps_keeps_the_days_they_fall_on() -> None:
    biller = parted_biller()
    stamps = [STAMP, STAMP - timedelta(days=3, hours=2), STAMP - timedelta(days=3)]
    sql = "SELECT t.game_id FROM `p.d.landing` AS t WHERE t.score_ts IN UNNEST(@stamps)"
    assert billed(biller, sql, stamps=stamps) == max(MINIMUM, 16 * 20_000)  # today, 3 days ago
    old = [datetime(2026, 3, 22, 23, 59, tzinfo=timezone.utc)]  # 100 days ago: 1M rows
    assert billed(biller, sql, stamps=old) == 16 * 1_000_000
    # a list of something else (or a subquery) bounds nothing
    assert billed(biller, sql, stamps=["x"]) == 16 * 2_000_000
    subquery = (
        "SELECT t.game_id FROM `p.d.landing` AS t "
        "WHERE t.score_ts IN (SELECT s.score_ts FROM `p.d.landing` AS s)"
    )
    assert billed(biller, subquery) == 16 * 2_000_000


def test_where_moments_fall_in_the_history_can_be_given() -> None:
    sizes = parted_biller().sizes
    biller = Biller(sizes, TODAY, days_ago=lambda moment: 100)  # every moment: the old day
    sql = "SELECT t.game_id FROM `p.d.landing` AS t WHERE t.score_ts IN UNNEST(@stamps)"
    assert billed(biller, sql, stamps=[STAMP]) == 16 * 1_000_000


# as Warehouse.write declares them: every append's bounds in one array, then each bound
DECLARES = (
    "DECLARE partitions_0 ARRAY<INT64> DEFAULT (SELECT ARRAY_AGG(DISTINCT b.stage_partition) "
    "FROM (SELECT stage_partition, game_id FROM `p.d._stage_rows` WHERE _frame = 0) AS b);\n"
    "DECLARE write_bounds ARRAY<TIMESTAMP> DEFAULT (SELECT [MIN(b.score_ts), MAX(b.score_ts)] "
    "FROM (SELECT game_id, score_ts FROM `p.d._stage_rows` WHERE _frame = 1) AS b);\n"
    "DECLARE since_1 TIMESTAMP DEFAULT write_bounds[OFFSET(0)];\n"
    "DECLARE until_1 TIMESTAMP DEFAULT write_bounds[OFFSET(1)];\n"
)
MERGE_STATE = (
    "MERGE INTO `p.d.state_by_stage` AS t USING (SELECT stage_partition, game_id "
    "FROM `p.d._stage_rows` WHERE _frame = 0) AS b "
    "ON t.stage_partition IN UNNEST(partitions_0) AND t.game_id = b.game_id "
    "WHEN MATCHED THEN UPDATE SET stage_partition = b.stage_partition "
    "WHEN NOT MATCHED THEN INSERT (stage_partition, game_id) "
    "VALUES (b.stage_partition, b.game_id);\n"
)
APPEND_LANDING = (
    "INSERT INTO `p.d.landing` (job_id, game_id, score_ts) SELECT b.game_id, b.game_id, b.score_ts "
    "FROM (SELECT game_id, score_ts FROM `p.d._stage_rows` WHERE _frame = 1) AS b "
    "WHERE NOT EXISTS (SELECT 1 FROM `p.d.landing` AS t WHERE t.score_ts >= since_1 "
    "AND t.score_ts <= until_1 AND t.job_id = b.job_id AND t.game_id = b.game_id);\n"
)


def test_a_script_declares_bounds_from_the_staged_rows_then_prunes_by_them() -> None:
    script = (
        DECLARES + "BEGIN TRANSACTION;\n" + MERGE_STATE + APPEND_LANDING + "COMMIT TRANSACTION;"
    )
    statements = parted_biller().job(script, {})
    assert [s.kind for s in statements] == ["declare"] * 4 + ["merge", "insert"]
    # a DECLARE reading the staged rows bills 10 MiB at least; one taking an element of
    # another's array reads nothing
    assert [s.tables for s in statements[:4]] == [{STAGED: MINIMUM}] * 2 + [{}] * 2
    merge, insert = statements[4:]
    # the MERGE touches the 2 partitions the staged rows fall in (10, 20): the keys it
    # reads, plus every column of the target, over those partitions
    assert merge.tables[STATE_PARTS] == (2 + 3) * 2 * STAGE_ROWS
    # the duplicate check reads today's landing partition alone (10k rows, 10 MiB)
    assert insert.tables[LANDING] == MINIMUM


def test_one_declare_bounds_several_frames_for_one_minimum() -> None:
    """ARRAY_CONCAT of each frame's [MIN, MAX]: the staging table read once, each bound
    the element it names."""
    script = (
        "DECLARE write_bounds ARRAY<TIMESTAMP> DEFAULT ARRAY_CONCAT("
        "(SELECT [MIN(b.score_ts), MAX(b.score_ts)] "
        "FROM (SELECT score_ts FROM `p.d._stage_rows` WHERE _frame = 1) AS b), "
        "(SELECT [MIN(b.score_ts), MAX(b.score_ts)] "
        "FROM (SELECT score_ts FROM `p.d._stage_rows` WHERE _frame = 1) AS b));\n"
        "DECLARE until_1 TIMESTAMP DEFAULT write_bounds[OFFSET(3)];\n"
        "DECLARE since_1 TIMESTAMP DEFAULT write_bounds[ORDINAL(1)];\n" + APPEND_LANDING
    )
    declare, *_, insert = parted_biller().job(script, {})
    assert declare.tables == {STAGED: MINIMUM}
    assert insert.tables[LANDING] == MINIMUM  # today's partition alone
    # an element past the end is no constant: the check reads every day
    unbounded = script.replace("OFFSET(3)", "OFFSET(4)").replace("ORDINAL(1)", "ORDINAL(5)")
    assert parted_biller().job(unbounded, {})[-1].tables[LANDING] == 43 * 2_000_000


def test_a_variable_nothing_is_known_of_prunes_nothing() -> None:
    biller = parted_biller()
    # the staged frame 1 holds no stage_partition values: the MERGE reads every partition
    script = DECLARES.replace("WHERE _frame = 0", "WHERE _frame = 1") + MERGE_STATE
    merge = biller.job(script, {})[-1]
    assert merge.tables[STATE_PARTS] == (2 + 3) * 3 * STAGE_ROWS
    # a variable no DECLARE named is no constant either
    (merge,) = biller.job(MERGE_STATE, {})
    assert merge.tables[STATE_PARTS] == (2 + 3) * 3 * STAGE_ROWS


def test_a_declare_of_a_literal_is_a_constant_too() -> None:
    script = (
        "DECLARE p INT64 DEFAULT 30;\n"
        "SELECT s.game_id FROM `p.d.state_by_stage` AS s WHERE s.stage_partition = p;"
    )
    declare, select = parted_biller().job(script, {})
    assert declare.bytes == 0
    assert select.bytes == 2 * STAGE_ROWS


def test_arrow_values_for_declares() -> None:
    moments = [STAMP, STAMP + timedelta(hours=2), None]
    table = pa.table(
        {
            "n": pa.array([3, 1, 3], pa.int64()),
            "ts": pa.array(moments, pa.timestamp("us", tz="UTC")),
            "s": pa.array(["a", "b", "c"]),
            "empty": pa.nulls(3, pa.int64()),
        }
    )
    found = arrow_column_values(table)
    assert found == {
        "n": ColumnValues(1, 3, frozenset({1, 3})),
        "ts": ColumnValues(STAMP, STAMP + timedelta(hours=2)),
    }


def test_the_benchmark_keeps_a_state_partition_per_stage_and_dates_the_set_up_run() -> None:
    from benchmarks.bigquery_cost import PRODUCTION, Measured, Scenario, production_sizes, timeline

    from bggscore.stages import STAGES
    from bggscore.warehouse.schemas import stage_partition

    columns = {"stage": 10.0, "game_id": 80.0, "stage_partition": 8.0}  # 13 MB a partition
    measured = Measured({"scoring_state": columns}, {}, {"scoring_state": "p.d.state"})
    state = production_sizes(measured, 365, False)["p.d.state"]
    assert state.range_column == "stage_partition"
    assert {v: part.total_rows for v, part in state.parts.items()} == {
        stage_partition(stage.name): PRODUCTION.in_range for stage in STAGES
    }
    sql = "SELECT s.game_id FROM `p.d.state` AS s WHERE s.stage_partition = @partition"
    one = billed(Biller({"p.d.state": state}, TODAY), sql, partition=stage_partition("main"))
    assert one == 88 * PRODUCTION.in_range  # one stage's partition of the four
    # what the set-up run wrote is the first, full run of a 365-day history; later, today
    scenario = Scenario("daily run", "run", [], {}, 1.0, 1, 0.0, STAMP)
    days_ago = timeline(scenario, 365)
    assert days_ago(STAMP - timedelta(seconds=1)) == 365
    assert days_ago(STAMP + timedelta(seconds=1)) == 0
