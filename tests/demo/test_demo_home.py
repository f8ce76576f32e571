"""Which homes `bggscore demo` and `demo refresh` write into: a new (empty) one, or one the
demo made (its mark is a row of the runs table); anything else only with --force.

A refusal is one line, exit 2, and writes nothing: every table's row count, the features
themselves and the registry's files are the same before and after.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.conftest import DemoRun
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import files, read, sql, table_counts


def snapshot(home: Path) -> dict[str, Any]:
    return {"tables": table_counts(home), "registry": files(home / "registry")}


def features(home: Path) -> pl.DataFrame:
    return read(home, "games_features").sort("game_id")


def demo_marks(home: Path) -> pl.DataFrame:
    return sql(home, "SELECT * FROM raw.bggscore_runs WHERE command = 'demo'")


@pytest.fixture
def export_home(cli, home: Path, sample_path: Path) -> Path:
    """A home holding a real export: the 1,000-game sample, loaded by the user."""
    loaded = cli("warehouse", "load", str(sample_path))
    assert loaded.exit_code == 0, loaded.stderr
    return home


@pytest.mark.parametrize(
    "args",
    [("demo", "--games", "200"), ("demo", "refresh", "--fraction", "0.1")],
    ids=["demo", "refresh"],
)
def test_demo_refuses_a_home_holding_a_real_export(
    cli, export_home: Path, args: tuple[str, ...]
) -> None:
    before, games = snapshot(export_home), features(export_home)

    result = cli(*args)

    assert result.exit_code == 2
    assert_one_line_error(
        result.stderr, "holds 1,000 games", "`bggscore demo` did not make", "--force"
    )
    assert snapshot(export_home) == before
    assert features(export_home).equals(games)


def test_demo_refuses_a_registry_of_models_it_did_not_make(
    cli, home: Path, demo_run: DemoRun
) -> None:
    home.mkdir()
    shutil.copytree(demo_run.home / "registry", home / "registry")
    before = snapshot(home)

    result = cli("demo", "--games", "200")

    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "registry", "6 models", "--force", "new folder")
    assert snapshot(home) == before
    assert not (home / "warehouse.duckdb").exists()


def test_forced_demo_adds_to_an_export_and_does_not_claim_it(cli, export_home: Path) -> None:
    real = features(export_home)

    forced = cli("demo", "--games", "300", "--force", "--json")
    # no day of changes in a catalogue the demo did not make: the real games stay as they are
    assert "no day of changes" in forced.stderr

    assert forced.exit_code == 0, forced.stderr
    assert "warning: --force: adding the demo" in forced.stderr
    data = parse_json(forced.stdout)
    assert (data["games"], data["new"]) == (300, 300)
    after = features(export_home)
    assert len(after) == 1300
    kept = after.filter(pl.col("game_id").is_in(real["game_id"].to_list()))
    assert kept.drop("load_timestamp").equals(real.drop("load_timestamp"))
    # still not the demo's home: a refresh asks again
    assert demo_marks(export_home).is_empty()
    refused = cli("demo", "refresh")
    assert refused.exit_code == 2
    assert_one_line_error(refused.stderr, "holds 1,300 games", "--force")

    refreshed = cli("demo", "refresh", "--fraction", "0.05", "--force", "--json")
    assert refreshed.exit_code == 0, refreshed.stderr
    assert parse_json(refreshed.stdout)["changed"] > 0


def test_the_demo_marks_its_home_and_refreshes_it_without_force(
    cli, embedded_home: Path, demo_run: DemoRun
) -> None:
    [mark] = demo_marks(embedded_home).to_dicts()
    assert (mark["job_id"], mark["stage"], mark["status"]) == (
        "demo-catalogue",
        "catalogue",
        "success",
    )
    assert mark["games"] == parse_json(demo_run.first.stdout)["games"]

    refreshed = cli("demo", "refresh", "--fraction", "0.05", "--json")

    assert refreshed.exit_code == 0, refreshed.stderr
    assert "warning" not in refreshed.stderr
    data = parse_json(refreshed.stdout)
    assert data["new"] > 0 and data["changed"] > 0
    assert len(demo_marks(embedded_home)) == 1


def test_refresh_of_an_initialised_but_empty_warehouse_says_run_the_demo(cli, home: Path) -> None:
    assert cli("warehouse", "init").exit_code == 0
    result = cli("demo", "refresh")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "has no games to refresh", "run `bggscore demo` first")
