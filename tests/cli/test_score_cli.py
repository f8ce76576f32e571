"""`bggscore score`: exit codes first, then the state left in the warehouse.

Every test runs the real CLI on its own copy of a trained demo home (`demo_home`): a real
DuckDB file with ~3,000 synthetic games and the five registered models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import (
    MIRRORED_TYPES,
    QUALIFIED,
    column_types,
    count,
    execute,
    game_ids,
    read,
    sql,
    written_counts,
)

from bggscore.errors import WarehouseError
from bggscore.warehouse.base import Warehouse
from bggscore.warehouse.schemas import (
    COMPLEXITY_PREDICTIONS,
    ML_PREDICTIONS_LANDING,
    SCORING_STATE,
)

NOTHING_WRITTEN = dict.fromkeys(
    ("ml_predictions_landing", "complexity_predictions", "scoring_state", "runs"), 0
)
MODEL_TYPES = ("hurdle", "complexity", "rating", "users_rated", "geek_rating")

# The landing contract, written out from the domain reference (not from our schema module),
# so a drift between the two fails here.
DOMAIN_LANDING = {
    "job_id": "STRING",
    "game_id": "INT64",
    "name": "STRING",
    "year_published": "FLOAT64",
    "predicted_hurdle_prob": "FLOAT64",
    "predicted_complexity": "FLOAT64",
    "predicted_rating": "FLOAT64",
    "predicted_users_rated": "FLOAT64",
    "predicted_geek_rating": "FLOAT64",
    **{
        column: kind
        for model in MODEL_TYPES
        for column, kind in (
            (f"{model}_model_name", "STRING"),
            (f"{model}_model_version", "INT64"),
            (f"{model}_experiment", "STRING"),
        )
    },
    **{
        f"{outcome}_{bound}_90": "FLOAT64"
        for outcome in ("complexity", "rating", "users_rated", "geek_rating")
        for bound in ("lower", "upper")
    },
    "sample_status": "STRING",
    "training_cutoff_year": "INT64",
    "score_ts": "TIMESTAMP",
    "source_environment": "STRING",
}
LANDING_LINEAGE = {
    "feature_hash": "INT64",
    "model_fingerprint": "STRING",
    "predicted_users_rated_raw": "FLOAT64",
}
DOMAIN_COMPLEXITY = {
    "game_id": "INT64",
    "name": "STRING",
    "year_published": "FLOAT64",
    "predicted_complexity": "FLOAT64",
    "complexity_model_name": "STRING",
    "complexity_model_version": "INT64",
    "complexity_experiment": "STRING",
    "score_ts": "TIMESTAMP",
    "job_id": "STRING",
}
COMPLEXITY_LINEAGE = {
    "source_environment": "STRING",
    "feature_hash": "INT64",
    "model_fingerprint": "STRING",
    "predicted_complexity_raw": "FLOAT64",
}


def score_json(cli, *args: str) -> dict:
    result = cli("score", *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return parse_json(result.stdout)


def default_range_ids(home: Path) -> set[int]:
    return game_ids(home, "year_published >= 2024 AND year_published < 2029")


def assert_current_hashes(frame: pl.DataFrame, hashes: pl.DataFrame) -> None:
    """Every row carries its game's feature_hash from staging.game_features_hash."""
    joined = frame.join(hashes, on="game_id", how="left", suffix="_staging")
    assert frame["feature_hash"].null_count() == 0
    assert joined["feature_hash"].eq_missing(joined["feature_hash_staging"]).all()


# -- end to end ---------------------------------------------------------------------------


def test_score_all_years_end_to_end(cli, demo_home: Path, monkeypatch) -> None:
    monkeypatch.setenv("BGGSCORE_SOURCE_ENVIRONMENT", "ci")
    data = score_json(cli, "--all-years")
    expected_ids = game_ids(demo_home)  # every game with a known year

    job = data["job_id"]
    assert job and data["skipped_reason"] is None
    assert data["games_scored"] == len(expected_ids)
    assert data["stages"] == {"complexity": len(expected_ids), "main": len(expected_ids)}
    assert data["output_location"] is None
    assert data["models"] == {
        "complexity": "complexity:1",
        "hurdle": "hurdle:1",
        "rating": "rating:1",
        "users_rated": "users_rated:1",
        "geek_rating": "bayesian(prior_rating=5.5,prior_weight=2000)",
    }

    # columns: the domain contract plus lineage, in types mirroring BigQuery
    landing_types = dict(column_types(demo_home, "ml_predictions_landing"))
    assert landing_types == {
        name: MIRRORED_TYPES[kind] for name, kind in {**DOMAIN_LANDING, **LANDING_LINEAGE}.items()
    }
    assert [name for name, _ in column_types(demo_home, "ml_predictions_landing")] == (
        ML_PREDICTIONS_LANDING.names
    )
    complexity_types = dict(column_types(demo_home, "complexity_predictions"))
    assert complexity_types == {
        name: MIRRORED_TYPES[kind]
        for name, kind in {**DOMAIN_COMPLEXITY, **COMPLEXITY_LINEAGE}.items()
    }

    landing = read(demo_home, "ml_predictions_landing")
    complexity = read(demo_home, "complexity_predictions")
    hashes = read(demo_home, "game_features_hash").select("game_id", "feature_hash")

    # one row per in-range game, one job, one score_ts, this environment
    for frame in (landing, complexity):
        assert len(frame) == len(expected_ids)
        assert set(frame["game_id"]) == expected_ids
        assert frame["job_id"].unique().to_list() == [job]
        assert frame["score_ts"].n_unique() == 1
        assert frame["source_environment"].unique().to_list() == ["ci"]
        assert frame["model_fingerprint"].n_unique() == 1
        assert_current_hashes(frame, hashes)
    # complexity is written once and read by the main stage
    both = landing.join(complexity, on="game_id", suffix="_c")
    assert (both["predicted_complexity"] == both["predicted_complexity_c"]).all()

    # formulas and clips
    rating = landing["predicted_rating"].to_numpy()
    users = landing["predicted_users_rated"].to_numpy()
    geek = landing["predicted_geek_rating"].to_numpy()
    expected_geek = np.clip((rating * users + 5.5 * 2000) / (users + 2000), 1, 10)
    np.testing.assert_allclose(geek, expected_geek, rtol=0, atol=1e-9)
    assert ((users == 25) | ((users % 50 == 0) & (users >= 50))).all()
    raw = landing["predicted_users_rated_raw"].to_numpy()
    np.testing.assert_array_equal(users, np.maximum(np.round(raw / 50) * 50, 25))
    assert landing["predicted_complexity"].is_between(1, 5).all()
    assert landing["predicted_rating"].is_between(1, 10).all()
    assert landing["predicted_geek_rating"].is_between(1, 10).all()
    assert landing["predicted_hurdle_prob"].is_between(0, 1).all()
    for column in ("predicted_rating", "predicted_users_rated", "predicted_geek_rating"):
        assert landing[column].is_finite().all(), column
    for column in [c for c in DOMAIN_LANDING if c.endswith("_90")]:
        assert landing[column].null_count() == len(landing), column  # no --intervals

    # lineage columns name the models
    for model in ("hurdle", "complexity", "rating", "users_rated"):
        assert landing[f"{model}_model_name"].unique().to_list() == [model]
        assert landing[f"{model}_model_version"].unique().to_list() == [1]
    assert landing["geek_rating_model_name"].unique().to_list() == ["bayesian"]
    assert landing["geek_rating_model_version"].null_count() == len(landing)

    # sample status follows the smallest test_through of the models (2024 for the demo)
    assert landing["training_cutoff_year"].unique().to_list() == [2024]
    in_sample = landing["year_published"] <= 2024
    expected_status = np.where(in_sample.to_numpy(), "in_sample", "out_of_sample")
    assert landing["sample_status"].to_list() == expected_status.tolist()
    assert set(landing["sample_status"]) == {"in_sample", "out_of_sample"}

    # scoring state: one row per game per stage, this job, the current feature hash
    state = read(demo_home, "scoring_state")
    assert state.columns == SCORING_STATE.names
    assert len(state) == 2 * len(expected_ids)
    assert state.group_by("stage").len().sort("stage").rows() == [
        ("complexity", len(expected_ids)),
        ("main", len(expected_ids)),
    ]
    assert state["job_id"].unique().to_list() == [job]
    assert_current_hashes(state, hashes)
    main = state.filter(pl.col("stage") == "main")
    assert main["upstream_key"].unique().to_list() == [f"complexity:{job}"]

    runs = read(demo_home, "runs")
    assert runs.select("job_id", "command", "stage", "status", "games").rows() == [
        (job, "score", "complexity,main", "success", len(expected_ids))
    ]


def test_default_range_and_prior_flags(cli, demo_home: Path) -> None:
    data = score_json(cli, "--prior-rating", "6", "--prior-weight", "100")
    ids = default_range_ids(demo_home)
    assert data["games_scored"] == len(ids) > 0
    assert data["selection"] == "years 2024-2028"
    assert data["models"]["geek_rating"] == "bayesian(prior_rating=6,prior_weight=100)"
    landing = read(demo_home, "ml_predictions_landing")
    assert set(landing["game_id"]) == ids
    assert landing["year_published"].is_between(2024, 2028).all()
    rating = landing["predicted_rating"].to_numpy()
    users = landing["predicted_users_rated"].to_numpy()
    expected = np.clip((rating * users + 6 * 100) / (users + 100), 1, 10)
    np.testing.assert_allclose(landing["predicted_geek_rating"].to_numpy(), expected, atol=1e-9)


def test_direct_geek_model_from_settings(cli, demo_home: Path, monkeypatch) -> None:
    monkeypatch.setenv("BGGSCORE_MODELS__GEEK_RATING", "geek_rating")
    data = score_json(cli, "--start-year", "2024", "--end-year", "2026")
    assert data["models"]["geek_rating"] == "geek_rating:1"
    landing = read(demo_home, "ml_predictions_landing")
    assert landing["geek_rating_model_name"].unique().to_list() == ["geek_rating"]
    assert landing["geek_rating_model_version"].unique().to_list() == [1]
    assert landing["predicted_geek_rating"].is_between(1, 10).all()
    rating = landing["predicted_rating"].to_numpy()
    users = landing["predicted_users_rated"].to_numpy()
    formula = (rating * users + 5.5 * 2000) / (users + 2000)
    assert not np.allclose(landing["predicted_geek_rating"].to_numpy(), formula)


# -- selection ------------------------------------------------------------------------------


def test_year_range_is_start_inclusive_end_exclusive(cli, demo_home: Path) -> None:
    data = score_json(cli, "--start-year", "2020", "--end-year", "2022")
    landing = read(demo_home, "ml_predictions_landing")
    ids = game_ids(demo_home, "year_published IN (2020, 2021)")
    assert data["games_scored"] == len(ids) > 0
    assert set(landing["game_id"]) == ids


def test_game_ids_bypass_the_year_range(cli, demo_home: Path, tmp_path: Path) -> None:
    old, new, other, unknown_year = (
        sorted(game_ids(demo_home, "year_published < 2000"))[0],
        sorted(default_range_ids(demo_home))[0],
        sorted(default_range_ids(demo_home))[1],
        sorted(game_ids(demo_home, "year_published IS NULL"))[0],
    )
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"# games to rescore\n{other}\n\n{unknown_year}  # no year\n{new}\n")
    data = score_json(
        cli, "--game-id", str(old), "--game-id", str(new), "--game-ids-file", str(ids_file)
    )
    assert data["games_scored"] == 4
    assert data["selection"] == "4 requested game ids"
    assert data["missing_game_ids"] == []
    landing = read(demo_home, "ml_predictions_landing")
    assert sorted(landing["game_id"]) == sorted([old, new, other, unknown_year])
    assert landing.filter(pl.col("game_id") == unknown_year)["sample_status"].to_list() == [
        "out_of_sample"
    ]
    absent = max(game_ids(demo_home, "TRUE")) + 1
    again = score_json(cli, "--game-id", str(new), "--game-id", str(absent))
    assert again["missing_game_ids"] == [absent]  # reported as detect-changes reports it


def test_game_ids_file_bad_line_names_the_line(cli, demo_home: Path, tmp_path: Path) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# header\n12\n13x\n")
    result = cli("score", "--game-ids-file", str(ids_file))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, f"{ids_file}:3", "13x")
    assert written_counts(demo_home) == NOTHING_WRITTEN


def test_game_ids_file_missing(cli, demo_home: Path, tmp_path: Path) -> None:
    result = cli("score", "--game-ids-file", str(tmp_path / "absent.txt"))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "absent.txt", "not found")
    assert written_counts(demo_home) == NOTHING_WRITTEN


def test_start_not_before_end_is_a_usage_error(cli, demo_home: Path) -> None:
    result = cli("score", "--start-year", "2026", "--end-year", "2026")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "--start-year 2026", "--end-year 2026")
    assert written_counts(demo_home) == NOTHING_WRITTEN


def test_empty_year_range_is_not_an_error(cli, demo_home: Path, monkeypatch) -> None:
    summary = demo_home.parent / "summary.md"
    outputs = demo_home.parent / "outputs.txt"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    out = demo_home.parent / "empty.parquet"
    data = score_json(cli, "--start-year", "1800", "--end-year", "1801", "--output", str(out))
    assert data["games_scored"] == 0
    assert data["skipped_reason"] == "no_games"
    assert data["job_id"] is None
    assert written_counts(demo_home) == NOTHING_WRITTEN
    assert not out.exists()
    assert outputs.read_text().splitlines() == ["games_scored=0", "job_id="]
    assert "None" not in summary.read_text()
    assert "no_games" in summary.read_text()


def test_unknown_stage_is_a_usage_error(cli, demo_home: Path) -> None:
    result = cli("score", "--stage", "embeddings")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "embeddings")
    assert written_counts(demo_home) == NOTHING_WRITTEN


# -- stages -----------------------------------------------------------------------------------


def test_stages_with_commas_score_both_in_order(cli, demo_home: Path) -> None:
    result = cli("score", "--stage", "main,complexity", "--all-years", "--json")
    assert result.exit_code == 0, result.stderr
    stages = parse_json(result.stdout)["stages"]
    assert list(stages) == ["complexity", "main"]
    assert stages["complexity"] == stages["main"] > 0


def test_stage_complexity_then_main_reads_stored_complexity(cli, demo_home: Path) -> None:
    ids = default_range_ids(demo_home)
    first = score_json(cli, "--stage", "complexity")
    assert first["stages"] == {"complexity": len(ids)}
    assert set(first["models"]) == {"complexity"}
    counts = written_counts(demo_home)
    assert counts["complexity_predictions"] == len(ids)
    assert counts["ml_predictions_landing"] == 0
    assert read(demo_home, "scoring_state")["stage"].unique().to_list() == ["complexity"]

    second = score_json(cli, "--stage", "main")
    assert second["stages"] == {"main": len(ids)}
    assert second["job_id"] != first["job_id"]
    assert count(demo_home, "complexity_predictions") == len(ids)  # not scored again
    landing = read(demo_home, "ml_predictions_landing")
    assert set(landing["game_id"]) == ids
    assert landing["job_id"].unique().to_list() == [second["job_id"]]
    stored = read(demo_home, "complexity_predictions").select("game_id", "predicted_complexity")
    joined = landing.join(stored, on="game_id", suffix="_stored")
    assert (joined["predicted_complexity"] == joined["predicted_complexity_stored"]).all()
    state = read(demo_home, "scoring_state")
    main = state.filter(pl.col("stage") == "main")
    assert len(main) == len(ids)
    assert main["job_id"].unique().to_list() == [second["job_id"]]
    assert main["upstream_key"].unique().to_list() == [f"complexity:{first['job_id']}"]
    complexity_state = state.filter(pl.col("stage") == "complexity")
    assert complexity_state["job_id"].unique().to_list() == [first["job_id"]]
    runs = read(demo_home, "runs").sort("started_at")
    assert runs.select("stage", "status").rows() == [
        ("complexity", "success"),
        ("main", "success"),
    ]


def test_stage_main_before_complexity_waits_and_says_what_to_run(cli, demo_home: Path) -> None:
    result = cli("score", "--stage", "main", "--json")
    assert result.exit_code == 0, result.stderr
    data = parse_json(result.stdout)
    [item] = data["waiting_on"]
    in_range = game_ids(demo_home, "year_published >= 2024 AND year_published < 2029")
    assert (item["stage"], item["waits_for"]) == ("main", "complexity")
    assert item["count"] == len(in_range) and set(item["game_ids"]) == in_range
    assert data["games_scored"] == 0 and data["skipped_reason"] == "waiting_on_upstream"
    assert (
        f"main: {len(in_range):,} games left out, waiting ({len(in_range):,} for complexity)"
        in (result.stderr)
    )
    assert "`bggscore score --stage complexity --changed-only` with the same selection" in (
        result.stderr
    )
    counts = written_counts(demo_home)
    assert counts["ml_predictions_landing"] == counts["complexity_predictions"] == 0
    assert counts["scoring_state"] == 0


# -- models -----------------------------------------------------------------------------------


def test_model_override_to_another_registered_model(cli, demo_home: Path) -> None:
    from bggscore.modelset import open_settings_registry
    from bggscore.settings import load_settings

    registry = open_settings_registry(load_settings())
    original = registry.load("rating", "rating")
    reg = original.registration
    registry.register(
        "rating",
        "rating_b",
        original.model,
        description="a copy, to test --model",
        signature=[c.model_dump() for c in reg.signature],
        output=reg.output,
        training=reg.training,
        metrics=reg.metrics,
        experiment="rating_b-experiment",
    )
    data = score_json(cli, "--model", "rating=rating_b", "--start-year", "2025")
    assert data["models"]["rating"] == "rating_b:1"
    landing = read(demo_home, "ml_predictions_landing")
    assert landing["rating_model_name"].unique().to_list() == ["rating_b"]
    assert landing["rating_experiment"].unique().to_list() == ["rating_b-experiment"]
    assert landing["complexity_model_name"].unique().to_list() == ["complexity"]
    main = read(demo_home, "scoring_state").filter(pl.col("stage") == "main")
    assert "rating=rating_b:1" in main["model_key"][0]


def test_unknown_model_reference_lists_what_exists(cli, demo_home: Path) -> None:
    result = cli("score", "--model", "rating=ratng")
    assert result.exit_code == 2
    line = assert_one_line_error(result.stderr, "--model rating=ratng: ", "rating models: rating")
    # the hint says where to look, not "pass --model rating=REF", which the user just did
    assert "pass --model" not in line and "models list --type rating" in line
    assert written_counts(demo_home) == NOTHING_WRITTEN


@pytest.mark.parametrize(
    ("flag", "needle"),
    [("rating", "TYPE=REF"), ("colour=rating", "unknown model type 'colour'")],
)
def test_malformed_model_flag(cli, demo_home: Path, flag: str, needle: str) -> None:
    result = cli("score", "--model", flag)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, needle)
    assert written_counts(demo_home) == NOTHING_WRITTEN


def test_tampered_artifact_is_refused(cli, demo_home: Path) -> None:
    artifact = demo_home / "registry" / "rating" / "rating" / "v1" / "artifact.joblib"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    result = cli("score", "--all-years")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "rating:1", "sha256")
    assert written_counts(demo_home) == NOTHING_WRITTEN


def test_missing_feature_column_is_listed_before_reading(cli, demo_home: Path) -> None:
    execute(demo_home, f"ALTER TABLE {QUALIFIED['games_features']} DROP COLUMN min_age")
    result = cli("score", "--all-years")
    assert result.exit_code == 2
    line = assert_one_line_error(result.stderr, "min_age", "complexity:1")
    assert "max_age" not in line
    assert written_counts(demo_home) == NOTHING_WRITTEN


def test_null_nan_and_zero_features_are_scored(cli, demo_home: Path) -> None:
    ids = sorted(default_range_ids(demo_home))[:4]
    games = QUALIFIED["games_features"]
    execute(
        demo_home,
        f"UPDATE {games} SET min_age = NULL, min_playtime = 0, max_playtime = NULL, "
        "min_players = 0, max_players = NULL, categories = NULL, mechanics = [], "
        f"description = NULL, designers = NULL WHERE game_id IN ({ids[0]}, {ids[1]})",
    )
    execute(demo_home, f"UPDATE {games} SET year_published = 'NaN' WHERE game_id = {ids[2]}")
    execute(demo_home, f"UPDATE {games} SET min_age = 0, max_players = 0 WHERE game_id = {ids[3]}")
    args = [arg for game in ids for arg in ("--game-id", str(game))]
    data = score_json(cli, *args)
    assert data["games_scored"] == 4
    landing = read(demo_home, "ml_predictions_landing")
    assert sorted(landing["game_id"]) == ids
    for column in (
        "predicted_hurdle_prob",
        "predicted_complexity",
        "predicted_rating",
        "predicted_users_rated",
        "predicted_geek_rating",
    ):
        assert landing[column].is_finite().all(), column
    assert landing["predicted_complexity"].is_between(1, 5).all()
    assert landing["predicted_geek_rating"].is_between(1, 10).all()


# -- output -----------------------------------------------------------------------------------


def test_output_parquet_equals_the_landing_rows(cli, demo_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "landing.parquet"
    data = score_json(cli, "--output", str(out), "--batch-size", "150")
    assert data["output_location"] == str(out)
    copy = pl.read_parquet(out).sort("game_id")
    landing = read(demo_home, "ml_predictions_landing").sort("game_id")
    assert copy.columns == ML_PREDICTIONS_LANDING.names
    assert copy.schema == pl.Schema(ML_PREDICTIONS_LANDING.polars_schema())
    assert len(copy) == data["games_scored"] > 150  # several batches in one file
    assert copy.equals(landing, null_equal=True)
    assert sorted(p.name for p in tmp_path.iterdir() if "landing" in p.name) == ["landing.parquet"]


def test_no_upload_writes_only_the_parquet(cli, demo_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "local.parquet"
    data = score_json(cli, "--no-upload", "--output", str(out))
    ids = default_range_ids(demo_home)
    assert data["games_scored"] == len(ids)
    copy = pl.read_parquet(out)
    assert set(copy["game_id"]) == ids
    assert copy.columns == ML_PREDICTIONS_LANDING.names
    assert copy["job_id"].unique().to_list() == [data["job_id"]]
    assert written_counts(demo_home) == NOTHING_WRITTEN


def test_no_upload_without_output_is_a_usage_error(cli, demo_home: Path) -> None:
    result = cli("score", "--no-upload")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "--no-upload", "--output")
    assert written_counts(demo_home) == NOTHING_WRITTEN


def test_output_must_be_parquet(cli, demo_home: Path, tmp_path: Path) -> None:
    result = cli("score", "--output", str(tmp_path / "landing.csv"))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, ".parquet")
    assert written_counts(demo_home) == NOTHING_WRITTEN
    assert list(tmp_path.glob("landing*")) == []


def test_github_outputs_and_step_summary(cli, demo_home: Path, monkeypatch) -> None:
    outputs = demo_home.parent / "github_output"
    summary = demo_home.parent / "step_summary.md"
    outputs.write_text("earlier=1\n")  # appended to, never truncated
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    data = score_json(cli)
    assert outputs.read_text().splitlines() == [
        "earlier=1",
        f"games_scored={data['games_scored']}",
        f"job_id={data['job_id']}",
    ]
    text = summary.read_text()
    assert text.startswith("### bggscore score")
    assert data["job_id"] in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0] == "| model type | model |"
    assert table[1] == "|---|---|"
    assert {line.split("|")[1].strip() for line in table[2:]} == set(data["models"])


# -- failures mid-run -------------------------------------------------------------------------


def test_write_failing_mid_run_keeps_committed_batches_and_reruns_cleanly(
    cli, demo_home: Path, tmp_path: Path, monkeypatch
) -> None:
    ids = default_range_ids(demo_home)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "landing.parquet"
    batch = 150
    assert len(ids) > 2 * batch
    original = Warehouse.write
    landing_writes: list[int] = []

    def flaky_write(self: Warehouse, writes) -> None:
        landing = [w for w in writes if w.logical == "ml_predictions_landing"]
        if landing:
            landing_writes.append(len(landing[0].frame))
            if len(landing_writes) == 2:
                raise WarehouseError("simulated: the connection dropped during the write")
        original(self, writes)

    monkeypatch.setattr(Warehouse, "write", flaky_write)
    args = ("score", "--batch-size", str(batch), "--output", str(out))
    failed = cli(*args)
    assert failed.exit_code == 1
    assert "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith("error: simulated")
    assert landing_writes == [batch, batch]

    # the first batch is committed (landing and state together); the parquet is not written
    assert list(out_dir.iterdir()) == []  # no parquet, no partial file
    runs = read(demo_home, "runs")
    assert runs.select("status", "games").rows() == [("failed", batch)]
    assert "simulated" in runs["message"][0]
    failed_job = runs["job_id"][0]
    landing = read(demo_home, "ml_predictions_landing")
    assert len(landing) == batch
    assert landing["job_id"].unique().to_list() == [failed_job]
    state = read(demo_home, "scoring_state")
    assert state.group_by("stage").len().sort("stage").rows() == [
        ("complexity", batch),
        ("main", batch),
    ]
    assert set(state["game_id"]) == set(landing["game_id"])

    # the same command again completes, under a new job, without duplicates
    monkeypatch.setattr(Warehouse, "write", original)
    again = cli(*args, "--json")
    assert again.exit_code == 0, again.stderr
    data = parse_json(again.stdout)
    assert data["job_id"] != failed_job
    assert data["games_scored"] == len(ids)
    landing = read(demo_home, "ml_predictions_landing")
    assert len(landing) == batch + len(ids)
    assert landing.select("job_id", "game_id").is_duplicated().sum() == 0
    assert set(landing.filter(pl.col("job_id") == data["job_id"])["game_id"]) == ids
    state = read(demo_home, "scoring_state")
    assert len(state) == 2 * len(ids)
    assert state["job_id"].unique().to_list() == [data["job_id"]]
    assert sql(demo_home, f"SELECT status FROM {QUALIFIED['runs']} ORDER BY started_at")[
        "status"
    ].to_list() == ["failed", "success"]
    assert len(pl.read_parquet(out)) == len(ids)


def test_failed_commit_rolls_back_landing_and_state_together(
    cli, demo_home: Path, monkeypatch
) -> None:
    """A statement failing inside the batch transaction leaves none of that batch's rows."""
    from bggscore.warehouse.duckdb_engine import DuckDBWarehouse

    original = DuckDBWarehouse._commit
    landing_commits: list[int] = []

    def failing_last_statement(self, staged, statements) -> None:
        if any("predicted_geek_rating" in table.column_names for table in staged.values()):
            landing_commits.append(1)
            if len(landing_commits) == 2:
                # after the landing insert and the state upsert, inside the same transaction
                statements = [*statements, ("SELECT error('disk quota exceeded')", {})]
        original(self, staged, statements)

    monkeypatch.setattr(DuckDBWarehouse, "_commit", failing_last_statement)
    result = cli("score", "--batch-size", "100")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: write to")
    assert "rolled back" in result.stderr
    counts = written_counts(demo_home)
    assert counts["ml_predictions_landing"] == 100
    assert counts["complexity_predictions"] == 100
    assert counts["scoring_state"] == 200
    assert read(demo_home, "runs")["status"].to_list() == ["failed"]


def test_complexity_only_output_holds_complexity_rows(cli, demo_home: Path, tmp_path) -> None:
    out = tmp_path / "complexity.parquet"
    data = score_json(cli, "--stage", "complexity", "--output", str(out))
    copy = pl.read_parquet(out)
    assert len(copy) == data["games_scored"]
    assert set(COMPLEXITY_PREDICTIONS.names) <= set(copy.columns)


@pytest.mark.parametrize(
    "args", [("--batch-size", "0"), ("--start-year", "soon"), ("--game-id", "-3")]
)
def test_bad_flag_values_are_usage_errors(cli, demo_home: Path, args: tuple[str, str]) -> None:
    result = cli("score", *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert written_counts(demo_home) == NOTHING_WRITTEN


def test_a_later_pass_failing_to_load_its_model_marks_the_run_failed(cli, demo_home: Path) -> None:
    """With --changed-only the complexity pass runs before the main models are loaded; a
    tampered main model must end the run as failed, never leave it 'running'."""
    artifact = demo_home / "registry" / "rating" / "rating" / "v1" / "artifact.joblib"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    result = cli("score", "--changed-only")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "rating:1" in last and "sha256" in last
    assert count(demo_home, "ml_predictions_landing") == 0
    assert "running" not in set(read(demo_home, "runs")["status"])


def test_intervals_of_bggscore_models_are_the_same_on_a_rerun(
    cli, demo_home: Path, tmp_path: Path
) -> None:
    """The draws are seeded by the models: the same games, scored again by the same models,
    get the same medians and bounds (a new-user trial found every rerun moved them)."""
    chosen = sorted(game_ids(demo_home))[:50]
    args = [a for g in chosen for a in ("--game-id", str(g))]
    frames = []
    for turn in range(2):
        out = tmp_path / f"run{turn}.parquet"
        result = cli("score", *args, "--intervals", "20", "--no-upload", "--output", str(out))
        assert result.exit_code == 0, result.stderr
        frames.append(pl.read_parquet(out).sort("game_id"))
    columns = ["game_id", "predicted_rating", "rating_lower_90", "rating_upper_90"]
    assert frames[0][columns].equals(frames[1][columns])
    assert (frames[0]["rating_upper_90"] > frames[0]["rating_lower_90"]).all()
