"""`bggscore compare A B`: two sets of predictions (jobs of the landing table or parquet
exports), game by game.

Most tests write landing rows straight into a fresh embedded warehouse (`landing`), so
each knows exactly which value differs; one compares a real `score` job with the
`--output` copy it wrote, on a copy of the session's demo home.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.factories import make_landing_rows
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import QUALIFIED, execute, read, sql, table_counts

from bggscore.settings import load_settings
from bggscore.warehouse import open_warehouse
from bggscore.warehouse.base import Write

GAMES = list(range(1, 11))
POINTS = [
    "predicted_hurdle_prob",
    "predicted_complexity",
    "predicted_rating",
    "predicted_users_rated",
    "predicted_geek_rating",
]
INTERVALS = [
    f"{outcome}_{bound}_90"
    for outcome in ("complexity", "rating", "users_rated", "geek_rating")
    for bound in ("lower", "upper")
]


@pytest.fixture
def landing(home: Path) -> Path:
    """A fresh embedded warehouse, its tables created, no rows."""
    with open_warehouse(load_settings(), create=True) as wh:
        wh.ensure_schema()
    return home


def write_job(frame: pl.DataFrame) -> None:
    with open_warehouse(load_settings()) as wh:
        wh.write([Write("ml_predictions_landing", frame)])


def changed(frame: pl.DataFrame, game_id: int, column: str, value: float | None) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.col("game_id") == game_id)
        .then(pl.lit(value, pl.Float64))
        .otherwise(pl.col(column))
        .alias(column)
    )


def as_production(frame: pl.DataFrame) -> pl.DataFrame:
    """A landing export as production writes it: intervals without the predicted_ prefix."""
    return frame.rename(
        {f"predicted_{name}": name for name in INTERVALS if f"predicted_{name}" in frame.columns}
    )


def compare_json(cli, *args: str, code: int = 0) -> dict[str, Any]:
    result = cli("compare", *args, "--json")
    assert result.exit_code == code, result.stderr
    return parse_json(result.stdout)


def columns(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["column"]: item for item in data["columns"]}


# -- nothing differs ----------------------------------------------------------------------
def test_two_identical_jobs_do_not_differ(cli, landing: Path) -> None:
    write_job(make_landing_rows(GAMES, job_id="job-a"))
    write_job(make_landing_rows(GAMES, job_id="job-b"))

    data = compare_json(cli, "job-a", "job-b", "--exit-code")

    assert data["schema_version"] == 1 and data["command"] == "compare"
    # bggscore's predicted_complexity_lower_90 is production's complexity_lower_90
    columns_a = POINTS + INTERVALS
    assert data["a"] == {"kind": "job", "job_id": "job-a", "games": 10, "columns": columns_a}
    assert data["games"] == {
        "in_both": 10,
        "only_in_a": 0,
        "only_in_b": 0,
        "only_in_a_ids": [],
        "only_in_b_ids": [],
    }
    assert set(columns(data)) == set(POINTS + INTERVALS)  # both interval namings are one
    for item in data["columns"]:
        assert item["max_abs_diff"] == item["mean_abs_diff"] == 0.0, item
        assert item["differing"] == item["one_side_null"] == 0, item
    assert not data["differs"] and data["differing_columns"] == [] and data["top"] == []
    # a column no job filled (predicted_users_rated_raw) is not a prediction either made
    assert data["columns_only_in_a"] == data["columns_only_in_b"] == []


def test_a_job_and_a_parquet_export_of_itself_do_not_differ(cli, landing: Path) -> None:
    rows = make_landing_rows(GAMES, job_id="job-a")
    write_job(rows)
    ours, production = Path("ours.parquet"), Path("production.parquet")
    read(landing, "ml_predictions_landing").write_parquet(ours)
    as_production(read(landing, "ml_predictions_landing")).write_parquet(production)

    for other in (ours, production):
        data = compare_json(cli, "job-a", str(other), "--exit-code")
        assert data["b"]["kind"] == "file" and data["b"]["path"] == str(other)
        assert data["games"]["in_both"] == 10 and not data["differs"], other
        assert set(columns(data)) == set(POINTS + INTERVALS), other
    both_files = compare_json(cli, str(production), str(ours), "--exit-code")
    assert not both_files["differs"] and both_files["games"]["in_both"] == 10


def test_a_real_score_job_and_its_output_copy_do_not_differ(cli, embedded_home: Path) -> None:
    landing = QUALIFIED["ml_predictions_landing"]
    query = f"SELECT DISTINCT game_id FROM {landing} ORDER BY game_id LIMIT 25"
    ids = sql(embedded_home, query)["game_id"].to_list()
    args = [arg for game in ids for arg in ("--game-id", str(game))]
    result = cli("score", *args, "--intervals", "50", "--output", "copy.parquet", "--json")
    assert result.exit_code == 0, result.stderr
    job = parse_json(result.stdout)["job_id"]

    data = compare_json(cli, job, "copy.parquet", "--exit-code")

    assert data["games"] == {**data["games"], "in_both": 25, "only_in_a": 0, "only_in_b": 0}
    assert {"predicted_rating", "rating_lower_90", "geek_rating_upper_90"} <= set(columns(data))
    assert not data["differs"], data["differing_columns"]
    # against the same games' previous job (the demo's): the intervals are new
    earlier = sql(
        embedded_home,
        f"SELECT job_id FROM {landing} WHERE job_id <> $job AND game_id = $game",
        {"job": job, "game": ids[0]},
    )["job_id"][0]
    before = compare_json(cli, earlier, job)
    assert before["games"]["in_both"] == 25
    assert "rating_lower_90" in before["columns_only_in_b"]


# -- what differs ---------------------------------------------------------------------------
def test_one_changed_value_is_that_game_that_column(cli, landing: Path) -> None:
    rows = make_landing_rows(GAMES, job_id="job-a")
    write_job(rows)
    write_job(
        changed(rows, 7, "predicted_rating", rows["predicted_rating"][6] + 0.25).with_columns(
            pl.lit("job-b").alias("job_id")
        )
    )

    data = compare_json(cli, "job-a", "job-b")

    rating = columns(data)["predicted_rating"]
    assert rating["differing"] == 1 and rating["one_side_null"] == 0
    assert rating["max_abs_diff"] == pytest.approx(0.25)
    assert rating["mean_abs_diff"] == pytest.approx(0.025)
    others = [item for item in data["columns"] if item["column"] != "predicted_rating"]
    assert all(item["differing"] == 0 and item["max_abs_diff"] == 0 for item in others)
    assert data["differs"] and data["differing_columns"] == ["predicted_rating"]
    [worst] = data["top"]
    a = rows["predicted_rating"][6]
    assert worst == {
        "game_id": 7,
        "name": "Game 7",
        "column": "predicted_rating",
        "a": a,
        "b": a + 0.25,
        "diff": pytest.approx(0.25),
    }
    assert cli("compare", "job-a", "job-b", "--exit-code").exit_code == 1
    assert cli("compare", "job-a", "job-b").exit_code == 0  # without --exit-code


def test_games_on_one_side_only_are_counted_and_differ(cli, landing: Path) -> None:
    write_job(make_landing_rows(list(range(1, 11)), job_id="job-a"))
    write_job(make_landing_rows(list(range(4, 15)), job_id="job-b"))

    data = compare_json(cli, "job-a", "job-b", "--top", "2", "--exit-code", code=1)

    assert data["games"] == {
        "in_both": 7,
        "only_in_a": 3,
        "only_in_b": 4,
        "only_in_a_ids": [1, 2],  # the first --top of them
        "only_in_b_ids": [11, 12],
    }
    assert data["a"]["games"] == 10 and data["b"]["games"] == 11
    # the games both have agree, but a run that drops (or adds) games is no match
    assert data["differs"] and data["differing_columns"] == [] and not data["shared_only"]
    human = cli("compare", "job-a", "job-b", "--exit-code")
    assert human.exit_code == 1
    assert "differs: 3 games only in A and 4 games only in B" in human.stdout
    assert "no differences" not in human.stdout


def test_a_job_that_dropped_most_games_fails_the_check(cli, landing: Path) -> None:
    """The trial's case: a 10-game export against a 1,000-game job."""
    write_job(make_landing_rows(list(range(1, 1001)), job_id="job-a"))
    make_landing_rows(GAMES).write_parquet("ten.parquet")

    result = cli("compare", "job-a", "ten.parquet", "--exit-code")

    assert result.exit_code == 1, result.stdout
    assert "games: 10 in both, 990 only in A, 0 only in B" in result.stdout
    assert "differs: 990 games only in A" in result.stdout
    assert "no differences" not in result.stdout


def test_shared_only_compares_the_games_both_have(cli, landing: Path) -> None:
    rows = make_landing_rows(list(range(1, 11)), job_id="job-a")
    write_job(rows)
    write_job(make_landing_rows(list(range(4, 15)), job_id="job-b"))

    data = compare_json(cli, "job-a", "job-b", "--shared-only", "--exit-code")

    assert data["shared_only"] and not data["differs"]
    assert (data["games"]["only_in_a"], data["games"]["only_in_b"]) == (3, 4)  # still counted
    human = cli("compare", "job-a", "job-b", "--shared-only", "--exit-code")
    assert human.exit_code == 0
    assert "no differences beyond the tolerance in the 7 games in both" in human.stdout
    assert "3 games only in A and 4 games only in B not compared" in human.stdout
    # a shared game that differs still fails
    write_job(
        changed(rows, 5, "predicted_rating", 1.0).with_columns(pl.lit("job-c").alias("job_id"))
    )
    assert cli("compare", "job-c", "job-b", "--shared-only", "--exit-code").exit_code == 1


def test_the_tolerance_decides_what_differs(cli, landing: Path) -> None:
    rows = make_landing_rows(GAMES, job_id="job-a")
    write_job(rows)
    value = rows["predicted_geek_rating"][2]  # game 3
    write_job(
        changed(rows, 3, "predicted_geek_rating", value + 1e-6).with_columns(
            pl.lit("job-b").alias("job_id")
        )
    )

    assert compare_json(cli, "job-a", "job-b")["differing_columns"] == ["predicted_geek_rating"]
    loose = compare_json(cli, "job-a", "job-b", "--tolerance", "1e-5", "--exit-code")
    assert not loose["differs"] and loose["tolerance"] == 1e-5
    assert columns(loose)["predicted_geek_rating"]["max_abs_diff"] == pytest.approx(1e-6)
    assert cli("compare", "job-a", "job-b", "--tolerance", "1e-7", "--exit-code").exit_code == 1
    # the same value on both sides with a tolerance of 0 is still equal
    assert not compare_json(cli, "job-a", "job-a", "--tolerance", "0", "--exit-code")["differs"]


def test_a_value_against_none_differs_and_none_against_none_does_not(cli, landing: Path) -> None:
    rows = changed(make_landing_rows(GAMES, job_id="job-a"), 2, "predicted_hurdle_prob", None)
    write_job(rows)
    other = changed(rows, 5, "predicted_hurdle_prob", None)  # game 2 NULL on both sides
    write_job(other.with_columns(pl.lit("job-b").alias("job_id")))

    data = compare_json(cli, "job-a", "job-b", "--tolerance", "100")

    hurdle = columns(data)["predicted_hurdle_prob"]
    assert hurdle["differing"] == hurdle["one_side_null"] == 1
    assert hurdle["max_abs_diff"] == 0.0  # over the games with a value on both sides
    assert data["differing_columns"] == ["predicted_hurdle_prob"]
    [worst] = data["top"]
    assert (worst["game_id"], worst["b"], worst["diff"]) == (5, None, None)
    assert worst["a"] == rows["predicted_hurdle_prob"][4]


def test_the_worst_games_come_first_each_once(cli, landing: Path) -> None:
    rows = make_landing_rows(GAMES, job_id="job-a")
    write_job(rows)
    other = rows
    for game, delta in ((2, 0.5), (4, 3.0), (9, 1.0)):
        other = changed(other, game, "predicted_rating", rows["predicted_rating"][game - 1] + delta)
    # game 4 differs in a second column too, by less: it is listed once, at its largest
    other = changed(other, 4, "predicted_complexity", rows["predicted_complexity"][3] + 0.1)
    write_job(other.with_columns(pl.lit("job-b").alias("job_id")))

    data = compare_json(cli, "job-a", "job-b", "--top", "2")
    assert [(row["game_id"], row["column"]) for row in data["top"]] == [
        (4, "predicted_rating"),
        (9, "predicted_rating"),
    ]
    assert compare_json(cli, "job-a", "job-b", "--top", "0")["top"] == []
    everything = compare_json(cli, "job-a", "job-b")
    assert [row["game_id"] for row in everything["top"]] == [4, 9, 2]


def test_two_files_need_no_warehouse(cli, home: Path) -> None:
    rows = make_landing_rows(GAMES).drop("name")  # no names: none shown
    rows.write_parquet("a.parquet")
    changed(rows, 1, "predicted_complexity", 9.0).write_parquet("b.parquet")

    data = compare_json(cli, "a.parquet", "b.parquet")

    assert data["differing_columns"] == ["predicted_complexity"]
    assert data["top"][0]["name"] is None
    assert not (home / "warehouse.duckdb").exists()  # nothing opened or created


def test_columns_on_one_side_only_are_listed_not_compared(cli, home: Path) -> None:
    rows = make_landing_rows(GAMES)
    rows.write_parquet("a.parquet")
    rows.select("game_id", "predicted_rating", pl.lit(1.0).alias("predicted_extra")).write_parquet(
        "b.parquet"
    )

    data = compare_json(cli, "a.parquet", "b.parquet")

    assert list(columns(data)) == ["predicted_rating"]
    assert data["columns_only_in_b"] == ["predicted_extra"]
    assert "predicted_complexity" in data["columns_only_in_a"]
    assert data["b"]["columns"] == ["predicted_rating", "predicted_extra"]


# -- for people -----------------------------------------------------------------------------
def test_the_table_keeps_every_column_whole_without_a_terminal(cli, landing: Path) -> None:
    rows = make_landing_rows(GAMES, job_id="job-a").with_columns(
        pl.lit("A Rather Long Game Name: The Expansion of the Expansion").alias("name")
    )
    write_job(rows)
    write_job(
        changed(rows, 6, "users_rated_upper_90", 123456.789).with_columns(
            pl.lit("job-b").alias("job_id")
        )
    )

    result = cli("compare", "job-a", "job-b")

    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "…" not in out
    assert "A: job job-a (10 games)" in out and "B: job job-b (10 games)" in out
    assert "games: 10 in both, 0 only in A, 0 only in B" in out
    assert "users_rated_upper_90" in out and "predicted_geek_rating" in out
    assert "A Rather Long Game Name: The Expansion of the Expansion" in out
    assert "123457" in out  # b, to 6 significant digits
    assert "differs beyond the tolerance: users_rated_upper_90" in out
    assert max(len(line) for line in out.splitlines()) > 80  # not squeezed into 80


def test_no_difference_says_so(cli, landing: Path) -> None:
    write_job(make_landing_rows(GAMES, job_id="job-a"))
    result = cli("compare", "job-a", "job-a", "--exit-code")
    assert result.exit_code == 0
    assert "no differences beyond the tolerance" in result.stdout


# -- bad inputs ---------------------------------------------------------------------------
def bad(cli, code: int, *args: str) -> str:
    result = cli("compare", *args)
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert result.stdout == ""
    return assert_one_line_error(result.stderr)


def test_a_job_not_in_the_landing_table(cli, landing: Path) -> None:
    write_job(make_landing_rows(GAMES, job_id="job-a"))
    before = table_counts(landing)
    line = bad(cli, 2, "job-a", "20991231T000000Z-deadbeef")
    assert "job '20991231T000000Z-deadbeef' has no rows in raw.ml_predictions_landing" in line
    assert "bggscore warehouse status" in line
    assert table_counts(landing) == before


def test_bad_files(cli, landing: Path) -> None:
    write_job(make_landing_rows(GAMES, job_id="job-a"))
    Path("text.parquet").write_text("game_id,predicted_rating\n1,6.5\n")
    make_landing_rows(GAMES).drop("game_id").write_parquet("no-id.parquet")
    make_landing_rows([1, 2, 3, 2]).write_parquet("twice.parquet")
    make_landing_rows(GAMES).select("game_id", "name").write_parquet("no-predictions.parquet")
    make_landing_rows(GAMES).with_columns(pl.lit("x").alias("predicted_rating")).write_parquet(
        "text-column.parquet"
    )
    Path("folder").mkdir()

    assert "missing.parquet not found" in bad(cli, 2, "job-a", "missing.parquet")
    assert "folder is a folder" in bad(cli, 2, "folder", "job-a")
    assert "text.parquet is not a readable parquet file" in bad(cli, 2, "text.parquet", "job-a")
    assert "no-id.parquet has no game_id column" in bad(cli, 2, "job-a", "no-id.parquet")
    assert "twice.parquet has game 2 more than once" in bad(cli, 2, "job-a", "twice.parquet")
    assert "has no predictions" in bad(cli, 2, "job-a", "no-predictions.parquet")
    assert "predicted_rating has type String" in bad(cli, 2, "job-a", "text-column.parquet")


def test_a_job_with_a_game_twice_is_bad_data(cli, landing: Path) -> None:
    write_job(make_landing_rows(GAMES, job_id="job-a"))
    table = QUALIFIED["ml_predictions_landing"]
    execute(landing, f"INSERT INTO {table} SELECT * FROM {table} WHERE game_id = 4")
    line = bad(cli, 1, "job-a", "job-a")
    assert "job 'job-a' has game 4 more than once in raw.ml_predictions_landing" in line


@pytest.mark.parametrize("value", ["-1e-9", "nan"])
def test_the_tolerance_must_be_zero_or_more(cli, home: Path, value: str) -> None:
    make_landing_rows(GAMES).write_parquet("a.parquet")
    assert "must be 0 or more" in bad(cli, 2, "a.parquet", "a.parquet", "--tolerance", value)


def test_no_warehouse_for_a_job(cli, home: Path) -> None:
    make_landing_rows(GAMES).write_parquet("a.parquet")
    assert "no warehouse at" in bad(cli, 1, "a.parquet", "job-a")
