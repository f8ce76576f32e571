"""An export of popular games: the hurdle cannot be trained, and the pipeline works without it.

Every game of the real 1,000-game sample has 25+ ratings, so the hurdle (will a game reach
25 ratings?) has one class and cannot be trained on it. `models train --all` trains the
rest and says why not the hurdle; with the hurdle reference left at its default, `score`,
`detect-changes` and `run` score the main stage with the other models, leave the hurdle
columns NULL, and a hurdle registered later is a `model` change for main.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import SAMPLE, DemoRun, Outcome, run_cli_in
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import game_ids, read, written_counts

NO_HURDLE = "warning: no hurdle model registered"
HURDLE_COLUMNS = (
    "predicted_hurdle_prob",
    "hurdle_model_name",
    "hurdle_model_version",
    "hurdle_experiment",
)
PREDICTIONS = (
    "predicted_complexity",
    "predicted_rating",
    "predicted_users_rated",
    "predicted_geek_rating",
)


@dataclass
class Trained:
    home: Path
    train: Outcome  # what `models train --all --json` printed


@pytest.fixture(scope="module")
def popular_trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The real sample loaded and `models train --all` run on it, ONCE for this module."""
    if not SAMPLE.is_file():
        pytest.skip(f"real sample not found at {SAMPLE} (only present beside the repository)")
    root = tmp_path_factory.mktemp("popular")
    path = root / "home"
    run_cli_in(path, root, "warehouse", "load", str(SAMPLE))
    train = run_cli_in(path, root, "models", "train", "--all", "--json")
    return Trained(path, train)


@pytest.fixture
def popular_home(home: Path, popular_trained: Trained) -> Path:
    """This test's own copy of the trained sample home (nothing scored)."""
    shutil.copytree(popular_trained.home, home)
    return home


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if NO_HURDLE in line]


def register_a_hurdle(home: Path, demo_run: DemoRun) -> str:
    """Register a hurdle model under the default name: the demo's, trained on a catalogue
    with games on both sides of 25 ratings."""
    from bggscore.registry import open_registry

    source = open_registry(str(demo_run.home / "registry"), demo_run.home).load("hurdle", "hurdle")
    reg = source.registration
    target = open_registry(str(home / "registry"), home)
    registered = target.register(
        "hurdle",
        "hurdle",
        source.model,
        signature=reg.signature,
        output=reg.output,
        training=reg.training,
    )
    return registered.label


def test_train_all_trains_the_rest_and_says_why_not_the_hurdle(popular_trained: Trained) -> None:
    train = popular_trained.train
    assert train.exit_code == 0
    report = parse_json(train.stdout)
    assert [f["outcome"] for f in report["failed"]] == ["hurdle"]
    assert "same side of the users_rated hurdle" in report["failed"][0]["error"]
    assert [item["outcome"] for item in report["trained"]] == [
        "complexity",
        "rating",
        "users_rated",
        "geek_rating",
        "text_embeddings",
        "game_embeddings",
    ]
    lines = [line for line in train.stderr.splitlines() if "warning:" in line]
    [hurdle] = [line for line in lines if "hurdle" in line]
    assert "same side of the users_rated hurdle" in hurdle
    assert "scores main without it" in hurdle
    assert "error:" not in train.stderr and "Traceback" not in train.stderr
    assert not (popular_trained.home / "registry" / "hurdle").exists()


def test_score_detect_and_run_work_without_a_hurdle(cli, popular_home: Path) -> None:
    scored = cli("score", "--all-years", "--json")
    assert scored.exit_code == 0, scored.stderr
    assert len(warnings_in(scored.stderr)) == 1, scored.stderr
    data = parse_json(scored.stdout)
    with_year = game_ids(popular_home)
    assert data["games_scored"] == len(with_year) > 900
    assert "hurdle" not in data["models"]

    landing = read(popular_home, "ml_predictions_landing")
    assert set(landing["game_id"]) == with_year
    for column in HURDLE_COLUMNS:
        assert landing[column].is_null().all(), column
    for column in PREDICTIONS:
        assert landing[column].is_not_null().all() and landing[column].is_finite().all(), column
    assert landing["rating_model_name"].unique().to_list() == ["rating"]

    # nothing changed since: detection agrees with what score recorded
    detected = cli("detect-changes", "--all-years", "--stage", "main", "--json")
    assert detected.exit_code == 0, detected.stderr
    assert parse_json(detected.stdout)["count"] == 0
    again = cli("score", "--changed-only", "--all-years", "--json")
    assert again.exit_code == 0, again.stderr
    assert parse_json(again.stdout)["skipped_reason"] == "no_changes"
    assert len(warnings_in(again.stderr)) == 1

    run = cli("run", "--all-years", "--json")
    assert run.exit_code == 0, run.stderr
    assert len(warnings_in(run.stderr)) == 1, run.stderr
    assert parse_json(run.stdout)["games_embedded"] == 2 * len(with_year)  # text and game
    assert len(read(popular_home, "ml_predictions_landing")) == len(landing)
    everything = cli("detect-changes", "--all-years", "--json")
    assert everything.exit_code == 0 and parse_json(everything.stdout)["count"] == 0


def test_intervals_without_a_hurdle(cli, popular_home: Path) -> None:
    result = cli("score", "--all-years", "--intervals", "20", "--json")
    assert result.exit_code == 0, result.stderr
    landing = read(popular_home, "ml_predictions_landing")
    assert landing["predicted_hurdle_prob"].is_null().all()
    for outcome in ("complexity", "rating", "users_rated", "geek_rating"):
        lower, upper = (
            landing[f"{outcome}_lower_90"],
            landing[f"{outcome}_upper_90"],
        )
        assert lower.is_finite().all() and (lower <= upper).all(), outcome


def test_a_hurdle_registered_later_is_a_model_change(
    cli, popular_home: Path, demo_run: DemoRun
) -> None:
    assert cli("score", "--all-years").exit_code == 0
    scored = game_ids(popular_home)
    label = register_a_hurdle(popular_home, demo_run)

    detected = cli("detect-changes", "--all-years", "--json")
    assert detected.exit_code == 0, detected.stderr
    stages = {s["stage"]: s for s in parse_json(detected.stdout)["stages"]}
    assert stages["main"]["count"] == len(scored)
    assert stages["main"]["by_reason"]["model"] == len(scored)
    assert stages["main"]["by_reason"]["new"] == 0
    assert stages["complexity"]["count"] == 0  # its model did not change

    rescored = cli("score", "--changed-only", "--all-years", "--json")
    assert rescored.exit_code == 0, rescored.stderr
    assert warnings_in(rescored.stderr) == []
    data = parse_json(rescored.stdout)
    assert data["stages"] == {"complexity": 0, "main": len(scored)}
    assert data["models"]["hurdle"] == label
    landing = read(popular_home, "ml_predictions_landing").filter(
        pl.col("job_id") == data["job_id"]
    )
    assert landing["predicted_hurdle_prob"].is_between(0, 1).all()
    assert landing["hurdle_model_name"].unique().to_list() == ["hurdle"]
    after = cli("detect-changes", "--all-years", "--stage", "main", "--json")
    assert parse_json(after.stdout)["count"] == 0


@pytest.mark.parametrize(
    ("env", "args"),
    [
        ({"BGGSCORE_MODELS__HURDLE": "hurdle"}, ()),  # the default name, but set
        ({}, ("--model", "hurdle=hurdle@champion")),
    ],
    ids=["setting", "flag"],
)
def test_a_hurdle_reference_the_user_gave_must_resolve(
    cli, popular_home: Path, monkeypatch, env: dict[str, str], args: tuple[str, ...]
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = cli("score", "--all-years", *args)
    assert result.exit_code != 0
    assert_one_line_error(result.stderr, "hurdle")
    assert set(written_counts(popular_home).values()) == {0}
