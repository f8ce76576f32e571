"""The cost benchmark's billing model (benchmarks/bq_billing.py): BigQuery's on-demand
rules applied to SQL, on tables of known sizes."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pyarrow as pa
import pytest
from benchmarks.bq_billing import MIB, MINIMUM, Biller, TableSize, arrow_column_bytes

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
