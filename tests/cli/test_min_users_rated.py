"""`--min-users-rated N` on score, detect-changes and run: production's rated-game backfill.

Every test runs the real CLI on its own copy of the demo registry beside a catalogue that was
never scored (`unscored_home`). The demo's users_rated counts are skewed (half the games
have 4 or fewer), so a minimum of 100 keeps a small, known part of the catalogue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import QUALIFIED, execute, game_ids, read, written_counts

MINIMUM = 100
RATED = f"year_published IS NOT NULL AND users_rated >= {MINIMUM}"


def run_json(cli, *args: str) -> dict[str, Any]:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return parse_json(result.stdout)


@pytest.fixture
def rated_home(unscored_home: Path) -> Path:
    """The unscored demo home with one rated game's count made unknown (NULL)."""
    rated = sorted(game_ids(unscored_home, RATED))
    assert 20 < len(rated) < len(game_ids(unscored_home)) / 2  # the filter keeps a part
    table = QUALIFIED["games_features"]
    execute(unscored_home, f"UPDATE {table} SET users_rated = NULL WHERE game_id = {rated[0]}")
    return unscored_home


def test_score_scores_only_games_rated_by_enough_users(cli, rated_home: Path) -> None:
    expected = game_ids(rated_home, RATED)  # the NULL count is not >= 100

    data = run_json(cli, "score", "--all-years", "--min-users-rated", str(MINIMUM))

    assert data["games_scored"] == len(expected)
    assert data["selection"] == f"all years, users_rated >= {MINIMUM}"
    landing = read(rated_home, "ml_predictions_landing")
    assert set(landing["game_id"].to_list()) == expected
    assert set(read(rated_home, "complexity_predictions")["game_id"].to_list()) == expected


def test_minimum_zero_still_leaves_out_unknown_counts(cli, rated_home: Path) -> None:
    known = game_ids(rated_home, "year_published IS NOT NULL AND users_rated IS NOT NULL")
    data = run_json(
        cli, "detect-changes", "--all-years", "--stage", "main", "--min-users-rated", "0"
    )
    assert set(data["stages"][0]["game_ids"]) == known
    assert len(known) == len(game_ids(rated_home)) - 1


def test_detection_finds_only_rated_games_and_then_the_rest(cli, rated_home: Path) -> None:
    expected = game_ids(rated_home, RATED)
    found = run_json(cli, "detect-changes", "--all-years", "--min-users-rated", str(MINIMUM))
    assert found["selection"] == f"all years, users_rated >= {MINIMUM}"
    for stage in found["stages"]:
        assert set(stage["game_ids"]) == expected, stage["stage"]

    run_json(cli, "score", "--all-years", "--min-users-rated", str(MINIMUM))

    after = run_json(cli, "detect-changes", "--all-years", "--min-users-rated", str(MINIMUM))
    scoring = [s for s in after["stages"] if s["stage"] in ("complexity", "main")]
    assert [s["count"] for s in scoring] == [0, 0]
    # without the minimum, the other games are still to score
    rest = run_json(cli, "detect-changes", "--all-years", "--stage", "main")
    assert set(rest["stages"][0]["game_ids"]) == game_ids(rated_home) - expected


def test_run_scores_and_embeds_only_rated_games(cli, rated_home: Path) -> None:
    expected = game_ids(rated_home, RATED)

    data = run_json(cli, "run", "--all-years", "--min-users-rated", str(MINIMUM))

    assert data["games_scored"] == len(expected)
    for item in data["steps"]:
        assert item["selection"].startswith(f"all years, users_rated >= {MINIMUM}"), item
    state = read(rated_home, "scoring_state")
    for stage, rows in state.group_by("stage"):
        assert set(rows["game_id"].to_list()) == expected, stage


@pytest.mark.parametrize("command", ["score", "detect-changes", "run"])
def test_a_negative_minimum_is_a_usage_error(cli, rated_home: Path, command: str) -> None:
    before = written_counts(rated_home)
    result = cli(command, "--min-users-rated", "-5")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "--min-users-rated -5 must be a whole number from 0")
    assert written_counts(rated_home) == before


@pytest.mark.parametrize("ids", [("--game-id", "3"), ("--game-ids-file", "ids.txt")])
def test_ids_and_a_minimum_are_refused(cli, rated_home: Path, ids: tuple[str, str]) -> None:
    Path("ids.txt").write_text("3\n")
    result = cli("score", *ids, "--min-users-rated", "25")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "games whatever their ratings: drop --min-users-rated")


def test_help_says_what_the_minimum_is_for(cli) -> None:
    for command in ("score", "detect-changes", "run"):
        text = " ".join(cli(command, "--help").stdout.split())
        assert "--min-users-rated N" in text, command
        assert "backfill the rated games" in text, command
