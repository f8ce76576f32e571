"""`bggscore models`: exit codes first, then the registry (and warehouse) left on disk.

Most tests run the real CLI on their own copy of the session's trained demo home
(`demo_home`: ~3,000 synthetic games and the seven models `models train --all` registered).
Training tests use small warehouses of their own: the real 1,000-game sample, or a few
hundred factory games.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import joblib
import polars as pl
import pytest
from tests.factories import make_games
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import sql, written_counts

OUTCOMES = ("complexity", "hurdle", "rating", "users_rated", "geek_rating")
EMBEDDINGS = ("text_embeddings", "game_embeddings")
TRAINABLE = (*OUTCOMES, *EMBEDDINGS)
NOTHING_SCORED = dict.fromkeys(
    ("ml_predictions_landing", "complexity_predictions", "scoring_state", "runs"), 0
)


# -- helpers ----------------------------------------------------------------------------------


def models_json(cli, *args: str) -> Any:
    """`models ARGS --json`: a versioned document of its subcommand; its body is returned."""
    result = cli("models", *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    data = parse_json(result.stdout)
    assert data.pop("schema_version") == 1
    assert data.pop("command") == f"models {args[0]}"
    return data


def registry_files(home: Path) -> list[str]:
    """Every file in the home's registry (relative paths): equal before/after = nothing written."""
    root = home / "registry"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def version_folder(home: Path, model_type: str, name: str | None = None, version: int = 1) -> Path:
    return home / "registry" / model_type / (name or model_type) / f"v{version}"


def registration_on_disk(home: Path, model_type: str, name: str | None = None, version: int = 1):
    return json.loads(
        (version_folder(home, model_type, name, version) / "registration.json").read_text()
    )


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def error_line(stderr: str, *needles: str) -> str:
    """Progress lines may come first; the error is one `error: ...` line, the last one."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def load_frame(frame: pl.DataFrame) -> None:
    """Load games into the warehouse of the current home (BGGSCORE_HOME)."""
    from bggscore.settings import load_settings
    from bggscore.warehouse import open_warehouse
    from bggscore.warehouse.load import load_games

    with open_warehouse(load_settings(), create=True) as wh:
        wh.ensure_schema()
        load_games(wh, frame)


def beats_mean(metrics: dict[str, Any]) -> bool:
    if "rmse" in metrics:
        return metrics["rmse"] < metrics["baseline_rmse"]
    return metrics["log_loss"] < metrics["baseline_log_loss"]


# -- train: the demo catalogue (the session's `models train --all`) --------------------------


def test_train_all_on_the_demo_registers_every_model_beating_the_mean(cli, demo_home: Path) -> None:
    data = models_json(cli, "list")
    rows = {row["type"]: row for row in data["models"]}
    assert len(data["models"]) == len(TRAINABLE)
    assert set(rows) == set(TRAINABLE)
    for model_type, row in rows.items():
        assert (row["name"], row["version"], row["status"]) == (model_type, 1, "active")
        # the registration on disk is what list reports, and its hash is the artifact's
        stored = registration_on_disk(demo_home, model_type)
        artifact = (version_folder(demo_home, model_type) / "artifact.joblib").read_bytes()
        assert stored["sha256"] == row["sha256"] == hashlib.sha256(artifact).hexdigest()
        assert stored["training"]["train_through"] == 2022
        assert stored["training"]["tune_year"] == 2023
        assert stored["training"]["test_year"] == stored["training"]["test_through"] == 2024
    for outcome in OUTCOMES:
        metrics = rows[outcome]["metrics"]
        assert beats_mean(metrics), (outcome, metrics)
        assert metrics["n_test"] >= 10 and metrics["n_train"] >= 50
    assert rows["hurdle"]["metrics"]["baseline_log_loss"] > 0
    assert {"vocabulary", "dim"} <= set(rows["text_embeddings"]["metrics"])
    assert rows["game_embeddings"]["metrics"]["dim"] == 64

    verified = models_json(cli, "verify")["verified"]
    assert sorted(row["model"] for row in verified) == sorted(f"{t}:1" for t in TRAINABLE)
    assert all(row["ok"] for row in verified)


def test_show_reports_signature_window_and_metrics(cli, demo_home: Path) -> None:
    shown = models_json(cli, "show", "geek_rating")
    assert shown["name"] == "geek_rating" and shown["version"] == 1
    assert shown == registration_on_disk(demo_home, "geek_rating")
    sources = {column["name"]: column["source"] for column in shown["signature"]}
    chain = [name for name, source in sources.items() if source == "chain"]
    assert chain == ["predicted_complexity", "predicted_rating", "predicted_log_users_rated"]
    assert sources["year_published"] == sources["families"] == "warehouse"
    assert shown["output"]["target"] == "bayes_average"
    assert shown["metrics"]["rmse"] < shown["metrics"]["baseline_rmse"]
    assert models_json(cli, "show", "rating:1")["signature"][-1]["name"] == "predicted_complexity"


def test_human_list_and_show(cli, demo_home: Path) -> None:
    listed = cli("models", "list")
    assert listed.exit_code == 0, listed.stderr
    assert "rating" in listed.stdout and "active" in listed.stdout
    shown = cli("models", "show", "complexity")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["model_type"] == "complexity"


def test_list_on_an_empty_registry_says_how_to_start(cli, home: Path) -> None:
    assert models_json(cli, "list")["models"] == []
    result = cli("models", "list")
    assert result.exit_code == 0
    assert "models train --all" in result.stdout


# -- train: the real sample --------------------------------------------------------------------


def test_train_on_the_real_sample_beats_the_mean_and_hurdle_fails_clearly(
    cli, home: Path, sample_path: Path
) -> None:
    loaded = cli("warehouse", "load", str(sample_path))
    assert loaded.exit_code == 0, loaded.stderr
    args = [arg for outcome in OUTCOMES for arg in ("--outcome", outcome)]
    result = cli("models", "train", *args, "--json")
    assert result.exit_code == 1
    # every sample game has 100+ ratings: hurdle cannot learn, the others still register
    error_line(result.stderr, "1 of 5 outcome(s) failed", "hurdle", "same side of the users_rated")
    report = parse_json(result.stdout)
    assert [f["outcome"] for f in report["failed"]] == ["hurdle"]
    trained = {item["outcome"]: item for item in report["trained"]}
    assert list(trained) == ["complexity", "rating", "users_rated", "geek_rating"]
    for outcome, item in trained.items():
        assert item["beats_baseline"] is True, (outcome, item["metrics"])
        assert beats_mean(item["metrics"])

    listed = models_json(cli, "list")["models"]
    assert sorted(row["type"] for row in listed) == sorted(trained)
    assert not (home / "registry" / "hurdle").exists()
    stored = registration_on_disk(home, "complexity")
    assert stored["metrics"] == trained["complexity"]["metrics"]
    assert stored["training"]["games"] == 1000
    assert all(row["ok"] for row in models_json(cli, "verify")["verified"])


def test_train_all_fails_only_when_nothing_trained(cli, home: Path) -> None:
    load_frame(make_games(5))  # too few games for any model
    result = cli("models", "train", "--all", "--json")
    assert result.exit_code == 1
    error_line(result.stderr, "7 of 7 outcome(s) failed", "too few games")
    report = parse_json(result.stdout)
    assert report["trained"] == [] and len(report["failed"]) == len(TRAINABLE)
    assert not (home / "registry").exists() or registry_files(home) == []


# -- train: options ------------------------------------------------------------------------------


def test_name_estimator_years_and_max_games(cli, home: Path) -> None:
    load_frame(make_games(240))
    report = models_json(
        cli,
        "train",
        "--outcome", "complexity",
        "--name", "complexity-ard",
        "--estimator", "ard",
        "--train-through", "2021",
        "--tune-year", "2022",
        "--test-year", "2023",
        "--max-games", "200",
    )  # fmt: skip
    assert report["failed"] == []
    [item] = report["trained"]
    assert item["model"] == "complexity-ard:1"
    stored = registration_on_disk(home, "complexity", "complexity-ard")
    assert stored["training"] == {
        "train_through": 2021,
        "tune_year": 2022,
        "test_year": 2023,
        "test_through": 2023,
        "refit_through": 2023,
        "estimator": "ard",
        "games": 200,
    }
    assert stored["metrics"] == item["metrics"]
    assert stored["description"].startswith("baseline ard")
    assert registry_files(home) == [
        "_names/complexity-ard.json",
        "complexity/complexity-ard/v1/.claim",
        "complexity/complexity-ard/v1/artifact.joblib",
        "complexity/complexity-ard/v1/registration.json",
    ]
    from bggscore.modelset import open_settings_registry
    from bggscore.settings import load_settings

    model = open_settings_registry(load_settings()).load("complexity-ard").model
    assert model.named_steps["model"].kind == "ard"


def test_embedding_options_and_order(cli, home: Path) -> None:
    from bggscore.demo.catalogue import generate_catalogue

    load_frame(generate_catalogue(300, 5))
    # game embeddings read the description embedding and predicted complexity: without
    # those models they fail, naming the one missing
    result = cli("models", "train", "--outcome", "game_embeddings", "--dim", "4")
    assert result.exit_code == 1
    error_line(result.stderr, "game_embeddings: unknown text_embeddings model")
    assert registry_files(home) == []

    text = ("--dim", "8", "--window", "3", "--min-count", "2")
    result = cli("models", "train", "--outcome", "text_embeddings", *text)
    assert result.exit_code == 0, result.stderr
    assert "trained models" in result.stdout  # the human table
    stored = registration_on_disk(home, "text_embeddings")
    assert {k: stored["training"][k] for k in ("dim", "window", "min_count", "games")} == {
        "dim": 8,
        "window": 3,
        "min_count": 2,
        "games": stored["training"]["games"],
    }
    assert stored["output"]["dim"] == stored["metrics"]["dim"] == 8
    assert 0 < stored["training"]["games"] <= 300

    before = registry_files(home)
    result = cli("models", "train", "--outcome", "game_embeddings", "--dim", "4")
    assert result.exit_code == 1
    error_line(result.stderr, "game_embeddings: unknown complexity model")
    assert registry_files(home) == before


@pytest.mark.parametrize("outcome", ["complexity", "text_embeddings"])
def test_too_few_games_says_how_many_are_needed(cli, home: Path, outcome: str) -> None:
    load_frame(make_games(40))
    result = cli("models", "train", "--outcome", outcome)
    assert result.exit_code == 1
    error_line(result.stderr, f"too few games to train {outcome}", "needs at least 50")
    assert registry_files(home) == []


def test_training_with_no_games_says_how_to_load_some(cli, home: Path) -> None:
    load_frame(make_games(0))
    result = cli("models", "train", "--outcome", "complexity")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "no games to train on", "warehouse load")
    assert not (home / "registry").exists()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ((), ("--outcome", "--all")),
        (("--all", "--outcome", "rating"), ("--outcome", "--all")),
        (("--outcome", "colour"), ("unknown outcome(s) colour", "complexity", "game_embeddings")),
        (("--outcome", "rating", "--outcome", "hurdle", "--name", "x"), ("--name", "one")),
        (("--all", "--name", "x"), ("--name", "one")),
        (("--outcome", "rating", "--train-through", "2023"), ("train-through < tune-year",)),
        (("--outcome", "rating", "--tune-year", "2024"), ("2022, 2024, 2024",)),
        (("--outcome", "rating", "--test-year", "2020"), ("test-year",)),
        (("--outcome", "rating", "--estimator", "lasso"), ("'lasso'", "bayesian_ridge", "ard")),
        (("--outcome", "rating", "--name", "Rating V2!"), ("invalid model name 'Rating V2!'",)),
    ],
)
def test_bad_train_options_are_usage_errors(
    cli, home: Path, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    result = cli("models", "train", *args)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, *needles)
    assert not (home / "registry").exists()


def test_train_refuses_a_tampered_upstream_model(cli, demo_home: Path) -> None:
    flip_byte(version_folder(demo_home, "complexity") / "artifact.joblib")
    before = registry_files(demo_home)
    result = cli("models", "train", "--outcome", "rating")
    assert result.exit_code == 1
    error_line(result.stderr, "rating", "complexity:1", "sha256")
    assert registry_files(demo_home) == before


# -- alias, archive, unknown references --------------------------------------------------------


def test_alias_then_archive(cli, demo_home: Path) -> None:
    assert models_json(cli, "alias", "rating:1", "champion") == {
        "alias": "champion",
        "model": "rating:1",
    }
    alias_file = demo_home / "registry" / "rating" / "rating" / "aliases" / "champion.json"
    assert json.loads(alias_file.read_text())["version"] == 1
    listed = {r["name"]: r for r in models_json(cli, "list", "--type", "rating")["models"]}
    assert listed["rating"]["aliases"] == ["champion"]
    assert models_json(cli, "show", "rating@champion")["version"] == 1

    archived = models_json(cli, "archive", "rating@champion")
    assert archived == {"model": "rating:1", "status": "archived"}
    assert registration_on_disk(demo_home, "rating")["status"] == "archived"
    assert not alias_file.exists()
    # plain names skip archived versions; the number still resolves
    result = cli("models", "show", "rating")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "every version of rating is archived", "rating:1")
    assert models_json(cli, "show", "rating:1")["status"] == "archived"
    [row] = models_json(cli, "list", "--type", "rating")["models"]
    assert (row["status"], row["aliases"]) == ("archived", [])


def test_alias_remove(cli, demo_home: Path) -> None:
    models_json(cli, "alias", "rating:1", "champion")
    alias_file = demo_home / "registry" / "rating" / "rating" / "aliases" / "champion.json"
    assert alias_file.exists()
    removed = models_json(cli, "alias", "--remove", "rating@champion")
    assert removed == {"alias": "champion", "model": "rating:1", "removed": True}
    assert not alias_file.exists()
    [row] = models_json(cli, "list", "--type", "rating")["models"]
    assert (row["version"], row["status"], row["aliases"]) == (1, "active", [])
    # the flag may come anywhere; a human line says what it pointed to
    models_json(cli, "alias", "rating:1", "challenger")
    result = cli("models", "alias", "rating@challenger", "--remove")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "removed rating@challenger (it pointed to rating:1)"
    before = registry_files(demo_home)
    again = cli("models", "alias", "--remove", "rating@challenger")
    assert again.exit_code == 2
    assert_one_line_error(again.stderr, "rating has no alias 'challenger'; aliases: none")
    assert registry_files(demo_home) == before


def test_unarchive_undoes_archive(cli, demo_home: Path) -> None:
    models_json(cli, "alias", "rating:1", "champion")
    models_json(cli, "archive", "rating:1")
    # the message that refuses an alias names the command that helps
    before = registry_files(demo_home)
    refused = cli("models", "alias", "rating:1", "champion")
    assert refused.exit_code == 1
    assert_one_line_error(refused.stderr, "is archived", "`bggscore models unarchive rating:1`")
    assert registry_files(demo_home) == before

    assert models_json(cli, "unarchive", "rating:1") == {"model": "rating:1", "status": "active"}
    assert registration_on_disk(demo_home, "rating")["status"] == "active"
    assert models_json(cli, "show", "rating")["version"] == 1  # a plain name resolves again
    [row] = models_json(cli, "list", "--type", "rating")["models"]
    assert row["aliases"] == []  # archiving removed them; unarchiving does not bring them back
    human = cli("models", "unarchive", "rating:1")  # already active: nothing to do
    assert (human.exit_code, human.stdout.strip()) == (0, "rating:1 is active")
    assert models_json(cli, "alias", "rating:1", "champion")["model"] == "rating:1"


def test_archive_help_says_what_it_takes(cli, home: Path) -> None:
    result = cli("models", "archive", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "name:VERSION or name@alias (a plain name is refused" in text
    assert "models unarchive" in text


def test_verify_reports_a_lost_registration_and_the_alias_to_it(cli, demo_home: Path) -> None:
    """The issue's case: a version whose registration.json is gone and a champion alias
    pointing at it; verify said ok to everything and exited 0."""
    models_json(cli, "alias", "rating:1", "champion")
    registration = version_folder(demo_home, "rating") / "registration.json"
    saved = registration.read_bytes()
    registration.unlink()

    result = cli("models", "verify")
    assert result.exit_code == 1
    error_line(result.stderr, "2 problem(s) found: rating:1, rating@champion")
    failed = [line for line in result.stdout.splitlines() if "FAILED" in line]
    assert len(failed) == 2
    assert failed[0].startswith("rating:1 ") and "no registration.json" in failed[0]
    assert failed[1].startswith("rating@champion ") and "points to rating:1" in failed[1]
    assert "models alias --remove rating@champion" in failed[1]
    as_json = cli("models", "verify", "--json")
    assert as_json.exit_code == 1
    rows = {row["model"]: row["ok"] for row in parse_json(as_json.stdout)["verified"]}
    expected = {f"{t}:1": True for t in TRAINABLE if t != "rating"}
    assert rows == {**expected, "rating:1": False, "rating@champion": False}

    # each fix it names clears its line
    models_json(cli, "alias", "--remove", "rating@champion")
    result = cli("models", "verify")
    assert result.exit_code == 1
    error_line(result.stderr, "1 problem(s) found: rating:1")
    registration.write_bytes(saved)
    assert all(row["ok"] for row in models_json(cli, "verify")["verified"])


@pytest.mark.parametrize("alias", ["Champion", "champ!on", "1st", "a b", "../x", "x" * 33])
def test_alias_with_odd_characters_is_refused(cli, demo_home: Path, alias: str) -> None:
    before = registry_files(demo_home)
    result = cli("models", "alias", "rating:1", alias)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "invalid alias")
    assert registry_files(demo_home) == before


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (("show", "ratng"), 2, ("unknown model 'ratng'", "rating (rating)", "hurdle (hurdle)")),
        (("show", "rating:9"), 2, ("rating has no version 9", "versions: 1")),
        (("show", "rating@gold"), 2, ("rating has no alias 'gold'",)),
        (("verify", "ratng"), 2, ("unknown model 'ratng'", "complexity (complexity)")),
        (("alias", "ratng:1", "champion"), 2, ("unknown model 'ratng'",)),
        (("alias", "rating:1"), 2, ("give the alias to set",)),
        (("alias", "--remove", "rating@gold"), 2, ("rating has no alias 'gold'; aliases: none",)),
        (("alias", "--remove", "rating"), 2, ("--remove takes one argument", "NAME@ALIAS")),
        (("alias", "--remove", "rating", "champion"), 2, ("--remove takes one argument",)),
        (("archive", "rating:9"), 2, ("no version 9",)),
        (("archive", "rating"), 2, ("archive needs a version", "rating:N")),
        (("unarchive", "rating"), 2, ("unarchive needs a version", "rating:N")),
        (("unarchive", "rating@champion"), 2, ("unarchive needs a version",)),
        (("unarchive", "ratng:1"), 2, ("unknown model 'ratng'",)),
        (("show", "Rating!"), 2, ("invalid model name",)),
        (("list", "--type", "colour"), 2, ("unknown model type 'colour'",)),
    ],
)
def test_unknown_or_malformed_references(
    cli, demo_home: Path, args: tuple[str, ...], code: int, needles: tuple[str, ...]
) -> None:
    before = registry_files(demo_home)
    result = cli("models", *args)
    assert result.exit_code == code
    assert_one_line_error(result.stderr, *needles)
    assert registry_files(demo_home) == before


# -- register: bring your own pipeline ---------------------------------------------------------


def make_user_pipeline() -> Any:
    """A fitted scikit-learn pipeline over two named warehouse columns."""
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pl.DataFrame({"min_age": [8.0, 10.0, 12.0, 14.0], "max_players": [2.0, 4.0, 4.0, 6.0]})
    return make_pipeline(StandardScaler(), LinearRegression()).fit(frame, [6.0, 6.5, 7.0, 7.5])


def test_register_a_users_joblib_pipeline(cli, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "mine.joblib"
    pipeline = make_user_pipeline()
    joblib.dump(pipeline, path)
    registered = models_json(
        cli,
        "register",
        str(path),
        "--type",
        "rating",
        "--name",
        "my-rating",
        "--description",
        "mine",
    )
    assert (registered["name"], registered["version"]) == ("my-rating", 1)
    assert [c["name"] for c in registered["signature"]] == ["min_age", "max_players"]
    assert registered["description"] == "mine"
    assert registration_on_disk(home, "rating", "my-rating") == registered
    artifact = (version_folder(home, "rating", "my-rating") / "artifact.joblib").read_bytes()
    assert hashlib.sha256(artifact).hexdigest() == registered["sha256"]

    from bggscore.modelset import open_settings_registry
    from bggscore.settings import load_settings

    loaded = open_settings_registry(load_settings()).load("my-rating", "rating").model
    probe = pl.DataFrame({"min_age": [9.0], "max_players": [3.0]})
    assert loaded.predict(probe).tolist() == pipeline.predict(probe).tolist()

    again = models_json(cli, "register", str(path), "--type", "rating", "--name", "my-rating")
    assert again["version"] == 2
    assert [row["model"] for row in models_json(cli, "verify")["verified"]] == [
        "my-rating:1",
        "my-rating:2",
    ]


def test_register_refuses_what_is_not_a_usable_model(cli, home: Path, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    not_joblib = tmp_path / "notes.joblib"
    not_joblib.write_text("these are not the weights you are looking for\n")
    no_predict = tmp_path / "dict.joblib"
    joblib.dump({"coef": [1.0, 2.0]}, no_predict)
    unnamed = tmp_path / "unnamed.joblib"
    joblib.dump(LinearRegression().fit([[1.0], [2.0]], [1.0, 2.0]), unnamed)
    good = tmp_path / "good.joblib"
    joblib.dump(make_user_pipeline(), good)
    rating_a = ("--type", "rating", "--name", "a")
    cases = [
        ((not_joblib, *rating_a), 2, ("is not a joblib file",)),
        ((no_predict, *rating_a), 2, ("neither predict nor transform",)),
        ((unnamed, *rating_a), 2, ("no feature_names_in_",)),
        ((tmp_path / "missing.joblib", *rating_a), 2, ("does not exist",)),
        ((good, "--type", "colour", "--name", "a"), 2, ("unknown model type 'colour'",)),
        ((good, "--type", "rating", "--name", "A B"), 2, ("invalid model name",)),
    ]
    for (path, *args), code, needles in cases:
        result = cli("models", "register", str(path), *args)
        assert result.exit_code == code, (path, args, result.stderr)
        assert_one_line_error(result.stderr, *needles)
        assert registry_files(home) == []


def test_register_with_a_signature_file(cli, home: Path, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    unnamed = tmp_path / "unnamed.joblib"
    joblib.dump(LinearRegression().fit([[8.0, 2.0], [12.0, 4.0], [14.0, 5.0]], [6, 7, 8]), unnamed)
    columns = [
        {"name": "min_age", "dtype": "INT64", "source": "warehouse"},
        {"name": "predicted_complexity", "dtype": "FLOAT64", "source": "chain"},
    ]
    signature = tmp_path / "signature.json"
    signature.write_text(json.dumps(columns))
    args = ("register", str(unnamed), "--type", "rating", "--name", "mine")

    # without one, the error names the option that gives it
    refused = cli("models", *args)
    assert refused.exit_code == 2
    assert_one_line_error(refused.stderr, "no feature_names_in_", "--signature FILE")
    assert registry_files(home) == []

    registered = models_json(cli, *args, "--signature", str(signature))
    assert registered["signature"] == columns
    assert registration_on_disk(home, "rating", "mine")["signature"] == columns


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (None, ("signature file", "does not exist")),
        ("[{", ("is not valid JSON (line 1",)),
        ('{"name": "min_age"}', ("must hold a JSON list",)),
        ('[{"name": "min_age", "dtpye": "INT64"}]', ("entry 1 has unknown key(s) dtpye",)),
        ('[{"name": "min_age", "source": "model"}]', ("source 'model' is not one of",)),
        ('[{"name": "min_age"}, {"name": "min_age"}]', ("repeats a column",)),
    ],
)
def test_a_bad_signature_file_is_refused_before_anything_is_written(
    cli, home: Path, tmp_path: Path, content: str | None, needles: tuple[str, ...]
) -> None:
    path = tmp_path / "mine.joblib"
    joblib.dump(make_user_pipeline(), path)
    signature = tmp_path / "signature.json"
    if content is not None:
        signature.write_text(content)
    result = cli(
        "models", "register", str(path), "--type", "rating", "--name", "mine",
        "--signature", str(signature),
    )  # fmt: skip
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, *needles)
    assert registry_files(home) == []


def test_register_checks_the_model_can_be_its_type(cli, demo_home: Path, tmp_path: Path) -> None:
    """A regressor registered as hurdle failed only at score time (AttributeError)."""
    regressor = tmp_path / "regressor.joblib"
    joblib.dump(make_user_pipeline(), regressor)
    rating_artifact = version_folder(demo_home, "rating") / "artifact.joblib"  # a LinearModel
    hurdle_artifact = version_folder(demo_home, "hurdle") / "artifact.joblib"
    before = registry_files(demo_home)
    for path, kind in ((regressor, "Pipeline"), (rating_artifact, "LinearModel")):
        result = cli("models", "register", str(path), "--type", "hurdle", "--name", "hurdle-2")
        assert result.exit_code == 2, result.stderr
        assert_one_line_error(
            result.stderr, f"is a {kind} without predict_proba", "cannot be a hurdle model"
        )
        assert registry_files(demo_home) == before
    # the hurdle's own artifact is a classifier: it registers as hurdle, with the
    # signature `models show --json` prints
    signature = tmp_path / "signature.json"
    signature.write_text(json.dumps(models_json(cli, "show", "hurdle")["signature"]))
    args = ("--type", "hurdle", "--name", "h2", "--signature", str(signature))
    ok = models_json(cli, "register", str(hurdle_artifact), *args)
    assert (ok["name"], ok["model_type"]) == ("h2", "hurdle")
    assert ok["signature"] == registration_on_disk(demo_home, "hurdle")["signature"]


# -- integrity: a flipped byte in any artifact ------------------------------------------------


def refusing_command(model_type: str) -> tuple[str, ...]:
    """The command that loads `model_type` (geek_rating: only as a direct model)."""
    if model_type == "text_embeddings":
        return ("embed", "--kind", "text", "--all-years")
    if model_type == "game_embeddings":
        return ("embed", "--kind", "game", "--all-years")
    if model_type == "geek_rating":
        return ("score", "--all-years", "--model", "geek_rating=geek_rating")
    return ("score", "--all-years")


def embedding_rows(home: Path) -> int:
    return sum(
        int(sql(home, f"SELECT COUNT(*) AS n FROM raw.{table}")["n"][0])
        for table in ("description_embeddings", "game_embeddings")
    )


@pytest.mark.parametrize("model_type", TRAINABLE)
def test_a_flipped_byte_is_refused_by_every_loading_command(
    cli, demo_home: Path, model_type: str
) -> None:
    label = f"{model_type}:1"
    before = registration_on_disk(demo_home, model_type)
    flip_byte(version_folder(demo_home, model_type) / "artifact.joblib")

    everything = cli("models", "verify", "--json")
    assert everything.exit_code == 1
    assert_one_line_error(everything.stderr, f"1 problem(s) found: {label}")
    rows = {row["model"]: row for row in parse_json(everything.stdout)["verified"]}
    assert [m for m, row in rows.items() if not row["ok"]] == [label]
    assert "sha256" in rows[label]["problem"]

    one = cli("models", "verify", model_type)
    assert one.exit_code == 1
    assert_one_line_error(one.stderr, label)

    # show reads only registration.json: it still works, and says what was registered
    assert models_json(cli, "show", model_type) == before

    loading = cli(*refusing_command(model_type))
    assert loading.exit_code == 1
    error_line(loading.stderr, label, "sha256")
    assert written_counts(demo_home) == NOTHING_SCORED
    assert embedding_rows(demo_home) == 0
    assert registration_on_disk(demo_home, model_type) == before  # nothing rewritten
