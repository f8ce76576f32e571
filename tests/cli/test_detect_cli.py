"""`bggscore detect-changes`: exit codes first, then what it reports and what it leaves.

Every test runs the real CLI on its own copy of the trained demo home, either unscored
(`demo_home`) or after one full `score --all-years` (`scored_home`). Detection only reads:
every test that can checks the warehouse is as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import QUALIFIED, execute, game_ids, read, sql, written_counts

SCORING = ["complexity", "main"]
ALL_STAGES = [*SCORING, "text-embeddings", "game-embeddings"]
IN_RANGE = "year_published >= 2024 AND year_published < 2029"


def detect(cli, *args: str) -> dict[str, Any]:
    result = cli("detect-changes", *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return parse_json(result.stdout)


def by_stage(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["stage"]: item for item in data["stages"]}


def snapshot(home: Path) -> dict[str, Any]:
    """Everything detection could conceivably touch."""
    state = read(home, "scoring_state").sort("stage", "game_id")
    hashes = read(home, "game_features_hash").sort("game_id")
    return {"counts": written_counts(home), "state": state, "hashes": hashes}


def assert_unchanged(home: Path, before: dict[str, Any]) -> None:
    after = snapshot(home)
    assert after["counts"] == before["counts"]
    assert after["state"].equals(before["state"], null_equal=True)
    assert after["hashes"].equals(before["hashes"], null_equal=True)


def add_mechanic(cli, home: Path, ids: list[int], mechanic: str = "Bribery") -> None:
    """Re-load these games with one more mechanic, through `bggscore warehouse load`."""
    rows = sql(
        home,
        f"SELECT * FROM {QUALIFIED['games_features']} WHERE game_id IN "
        f"({', '.join(str(i) for i in ids)})",
    )
    edited = rows.with_columns(pl.col("mechanics").list.concat(pl.lit([mechanic])))
    path = home.parent / f"edited-{ids[0]}.parquet"
    edited.write_parquet(path)
    loaded = cli("warehouse", "load", str(path), "--json")
    assert loaded.exit_code == 0, loaded.stderr
    assert parse_json(loaded.stdout)["changed"] == len(ids)


def register_same_pipeline(model_type: str) -> str:
    """A new version of a registered model (same pipeline); returns its label."""
    from bggscore.modelset import open_settings_registry
    from bggscore.settings import load_settings

    registry = open_settings_registry(load_settings())
    original = registry.load(model_type, model_type)
    reg = original.registration
    new = registry.register(
        model_type,
        model_type,
        original.model,
        description="the same pipeline again",
        signature=[c.model_dump() for c in reg.signature],
        output=reg.output,
        training=reg.training,
        metrics=reg.metrics,
    )
    return new.label


def some_ids(home: Path, where: str, n: int) -> list[int]:
    return sorted(game_ids(home, where))[:n]


def drop_embedding_models(home: Path) -> None:
    """As if no embedding model had ever been trained."""
    import shutil

    for model_type in ("text_embeddings", "game_embeddings"):
        shutil.rmtree(home / "registry" / model_type)
        (home / "registry" / "_names" / f"{model_type}.json").unlink()


# -- a fresh home: everything is new ----------------------------------------------------


def test_everything_in_range_is_new_on_a_fresh_home(cli, demo_home: Path) -> None:
    data = detect(cli)
    expected = sorted(game_ids(demo_home, IN_RANGE))
    assert data["changed"] is True
    assert data["selection"] == "years 2024-2028"
    assert [s["stage"] for s in data["stages"]] == ALL_STAGES
    for item in data["stages"]:
        assert item["game_ids"] == expected  # new games in game_id order
        assert item["count"] == len(expected)
        assert item["by_reason"] == {"new": len(expected), "features": 0, "model": 0, "upstream": 0}
        assert (item["capped"], item["max_games"]) == (False, 50_000)  # the default cap
    assert "game_ids" not in data  # one shape: each stage's ids are under stages
    assert data["missing_game_ids"] == []
    assert set(written_counts(demo_home).values()) == {0}  # detection writes nothing


def test_one_stage_has_the_same_shape_as_several(cli, demo_home: Path) -> None:
    data = detect(cli, "--stage", "main", "--start-year", "2026", "--end-year", "2027")
    every = detect(cli, "--start-year", "2026", "--end-year", "2027")
    expected = sorted(game_ids(demo_home, "year_published = 2026"))
    assert set(data) == set(every)
    assert data["schema_version"] == 1 and data["command"] == "detect-changes"
    [main] = data["stages"]
    assert main["stage"] == "main"
    assert main["game_ids"] == expected
    assert data["count"] == len(expected)


def test_stages_with_commas_are_detected_in_their_order(cli, demo_home: Path) -> None:
    result = cli("detect-changes", "--stage", "main, complexity", "--json")
    assert result.exit_code == 0, result.stderr
    assert [s["stage"] for s in parse_json(result.stdout)["stages"]] == ["complexity", "main"]
    for bad in ("main,", "main,bogus"):
        result = cli("detect-changes", "--stage", bad)
        assert result.exit_code == 2
        assert_one_line_error(result.stderr, "stage")


def test_year_filters(cli, demo_home: Path) -> None:
    known = sorted(game_ids(demo_home))
    everything = by_stage(detect(cli, "--all-years"))
    assert everything["complexity"]["game_ids"] == known  # NULL years are left out
    assert len(known) < len(game_ids(demo_home, "TRUE"))  # (the demo has some)
    unknown = sorted(game_ids(demo_home, "year_published IS NULL"))
    with_unknown = detect(cli, "--all-years", "--include-null-year")
    assert by_stage(with_unknown)["complexity"]["game_ids"] == sorted(known + unknown)
    assert with_unknown["selection"] == "all years (with unknown years)"
    in_range = sorted(game_ids(demo_home, IN_RANGE))
    range_and_unknown = by_stage(detect(cli, "--include-null-year"))["complexity"]
    assert range_and_unknown["game_ids"] == sorted(in_range + unknown)
    window = by_stage(detect(cli, "--start-year", "2020", "--end-year", "2022"))
    expected = sorted(game_ids(demo_home, "year_published >= 2020 AND year_published < 2022"))
    assert window["main"]["game_ids"] == expected
    assert {2022.0} & set(
        sql(demo_home, f"SELECT year_published FROM {QUALIFIED['games_features']}")[
            "year_published"
        ]
    )  # 2022 exists, so its absence above is the exclusive end at work


def test_game_ids_from_flags_and_file(cli, demo_home: Path, tmp_path: Path) -> None:
    a, b, c, d = some_ids(demo_home, "year_published < 2000", 4)  # all outside the range
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"# games to check\n{c}\n\n{d}  # trailing comment\n{a}\n")
    data = detect(cli, "--game-id", str(a), "--game-id", str(b), "--game-ids-file", str(ids_file))
    assert data["selection"] == "4 requested game ids"
    for item in data["stages"]:
        assert item["game_ids"] == sorted([a, b, c, d])  # explicit ids ignore the years
    assert data["missing_game_ids"] == []


def test_unknown_ids_are_a_warning_not_an_error(cli, demo_home: Path) -> None:
    (known,) = some_ids(demo_home, IN_RANGE, 1)
    result = cli("detect-changes", "--game-id", str(known), "--game-id", "9999999", "--json")
    assert result.exit_code == 0
    data = parse_json(result.stdout)
    assert data["missing_game_ids"] == [9999999]
    assert by_stage(data)["main"]["game_ids"] == [known]
    assert "Traceback" not in result.stderr
    warning = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "9999999" in warning[0] and "not in the warehouse" in warning[0]


def test_max_games_caps_deterministically(cli, demo_home: Path) -> None:
    first = detect(cli, "--all-years", "--max-games", "100")
    again = detect(cli, "--all-years", "--max-games", "100")
    expected = sorted(game_ids(demo_home))[:100]
    for item in first["stages"]:
        assert item["game_ids"] == expected
        assert (item["count"], item["capped"], item["max_games"]) == (100, True, 100)
    assert first["stages"] == again["stages"]
    roomy = detect(cli, "--all-years", "--max-games", str(len(game_ids(demo_home))))
    assert not any(item["capped"] for item in roomy["stages"])


# -- a scored home: nothing, then exactly what changed ---------------------------------


def test_nothing_changed_after_a_full_score(cli, scored_home: Path) -> None:
    before = snapshot(scored_home)
    data = detect(cli, "--all-years")
    assert data["changed"] is False
    for item in data["stages"]:
        assert (item["count"], item["game_ids"]) == (0, [])
        assert set(item["by_reason"].values()) == {0}
    human = cli("detect-changes", "--all-years")
    assert human.exit_code == 0
    assert "nothing to score" in human.stdout
    assert_unchanged(scored_home, before)


def test_exit_code_flag(cli, scored_home: Path) -> None:
    quiet = cli("detect-changes", "--exit-code")
    assert quiet.exit_code == 1  # nothing changed, like `git diff --exit-code`
    assert "error" not in quiet.stderr and "Traceback" not in quiet.stderr
    assert cli("detect-changes").exit_code == 0  # without the flag, nothing changed is fine
    (game,) = some_ids(scored_home, IN_RANGE, 1)
    add_mechanic(cli, scored_home, [game])
    assert cli("detect-changes", "--exit-code").exit_code == 0
    assert cli("detect-changes", "--exit-code", "--format", "ids").exit_code == 0


def test_changed_features_show_for_both_stages(cli, scored_home: Path) -> None:
    changed = some_ids(scored_home, IN_RANGE, 3)
    outside = some_ids(scored_home, "year_published < 2000", 1)
    add_mechanic(cli, scored_home, changed + outside)
    data = by_stage(detect(cli))
    for stage in (*SCORING, "game-embeddings"):
        assert data[stage]["game_ids"] == changed  # the 1990s game is outside the range
        assert data[stage]["by_reason"] == {"new": 0, "features": 3, "model": 0, "upstream": 0}
    # text embeddings read the description only: a new mechanic is not their business
    assert data["text-embeddings"]["count"] == 0
    everywhere = by_stage(detect(cli, "--all-years"))
    for stage in SCORING:
        assert sorted(everywhere[stage]["game_ids"]) == sorted(changed + outside)


def test_format_ids_prints_exactly_the_ids(cli, scored_home: Path) -> None:
    changed = some_ids(scored_home, IN_RANGE, 4)
    add_mechanic(cli, scored_home, changed[2:])
    # a new complexity prediction for the first two: main must rescore them (upstream)
    ids = [arg for game in changed[:2] for arg in ("--game-id", str(game))]
    assert cli("score", "--stage", "complexity", *ids).exit_code == 0
    result = cli("detect-changes", "--format", "ids")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [str(game) for game in changed]  # every stage's
    assert "Traceback" not in result.stderr
    complexity = cli("detect-changes", "--format", "ids", "--stage", "complexity")
    assert complexity.stdout.splitlines() == [str(game) for game in changed[2:]]


def test_format_ids_prints_nothing_when_nothing_changed(cli, scored_home: Path) -> None:
    result = cli("detect-changes", "--format", "ids", "--all-years")
    assert (result.exit_code, result.stdout) == (0, "")


def test_explain_shows_recorded_and_current_values(cli, scored_home: Path) -> None:
    (game,) = some_ids(scored_home, IN_RANGE, 1)
    recorded = read(scored_home, "scoring_state").filter(pl.col("game_id") == game)
    add_mechanic(cli, scored_home, [game])
    current_hash = read(scored_home, "game_features_hash").filter(pl.col("game_id") == game)[
        "feature_hash"
    ][0]

    data = detect(cli, "--explain", str(game))
    assert data["game_id"] == game
    stages = {item["stage"]: item for item in data["stages"]}
    assert list(stages) == ALL_STAGES
    assert stages["text-embeddings"]["reasons"] == []
    for stage in SCORING:
        item = stages[stage]
        mine = recorded.filter(pl.col("stage") == stage).row(0, named=True)
        assert item["reasons"] == ["features"]
        assert item["feature_hash"] == {"recorded": mine["feature_hash"], "current": current_hash}
        assert mine["feature_hash"] != current_hash
        assert item["model"]["recorded"] == item["model"]["current"] == mine["model_key"]
        assert item["upstream"]["recorded"] == mine["upstream_key"]
        assert item["last_job_id"] == mine["job_id"]
    complexity_job = recorded.filter(pl.col("stage") == "complexity")["job_id"][0]
    assert stages["main"]["upstream"]["current"] == f"complexity:{complexity_job}"

    text = cli("detect-changes", "--explain", str(game), "--stage", "main")
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    year = int(data["year_published"])
    assert lines[0].endswith(f"({year})")  # a whole year, not the warehouse's FLOAT64
    hash_lines = [line for line in lines if line.strip().startswith("feature_hash")]
    assert len(hash_lines) == 1 and all("changed" in line for line in hash_lines)
    assert all(str(current_hash) in line for line in hash_lines)
    model_lines = [line for line in lines if line.strip().startswith("model")]
    assert model_lines and not any("changed" in line for line in model_lines)


def test_explain_an_up_to_date_game(cli, scored_home: Path) -> None:
    (game,) = some_ids(scored_home, IN_RANGE, 1)
    data = detect(cli, "--explain", str(game), "--stage", "main")
    (item,) = data["stages"]
    assert item["stage"] == "main" and item["reasons"] == []
    assert item["feature_hash"]["recorded"] == item["feature_hash"]["current"]
    text = cli("detect-changes", "--explain", str(game))
    assert "up to date" in text.stdout and "changed" not in text.stdout
    # --exit-code as for a list: exit 1 when the game needs nothing
    assert cli("detect-changes", "--explain", str(game), "--exit-code").exit_code == 1
    wrong = cli("detect-changes", "--explain", str(game), "--format", "ids")
    assert wrong.exit_code == 2 and "drop --format ids" in wrong.stderr


def test_a_new_model_version_flags_its_stage_only(cli, scored_home: Path) -> None:
    label = register_same_pipeline("rating")
    assert label == "rating:2"
    data = by_stage(detect(cli))
    in_range = sorted(game_ids(scored_home, IN_RANGE))
    assert data["main"]["game_ids"] == in_range
    assert data["main"]["by_reason"]["model"] == len(in_range)
    for stage in ("complexity", "text-embeddings", "game-embeddings"):
        assert data[stage]["count"] == 0, stage  # nobody else reads the rating model
    # the explanation names the versions
    game = in_range[0]
    (item,) = detect(cli, "--explain", str(game), "--stage", "main")["stages"]
    assert "rating=rating:1" in item["model"]["recorded"]
    assert "rating=rating:2" in item["model"]["current"]
    # --model detects as if scoring with another model: the old one is up to date
    pinned = detect(cli, "--stage", "main", "--model", "rating=rating:1")
    assert pinned["count"] == 0


def test_preview_across_stages_carries_upstream(cli, scored_home: Path) -> None:
    """A game complexity is about to rescore also needs main (upstream), before anything ran."""
    register_same_pipeline("complexity")
    (features_game,) = some_ids(scored_home, IN_RANGE, 1)
    add_mechanic(cli, scored_home, [features_game])
    in_range = sorted(game_ids(scored_home, IN_RANGE))

    data = by_stage(detect(cli, "--stage", "all"))
    assert sorted(data["complexity"]["game_ids"]) == in_range
    assert data["complexity"]["by_reason"] == {
        "new": 0,
        "features": 1,
        "model": len(in_range) - 1,
        "upstream": 0,
    }
    for stage in ("main", "game-embeddings"):  # both read predicted complexity
        assert sorted(data[stage]["game_ids"]) == in_range
        assert data[stage]["by_reason"] == {
            "new": 0,
            "features": 1,  # its own reason comes first; not listed twice
            "model": 0,
            "upstream": len(in_range) - 1,
        }
    assert data["text-embeddings"]["count"] == 0
    # main alone does not preview: its own state is current until complexity runs
    assert detect(cli, "--stage", "main")["stages"][0]["game_ids"] == [features_game]

    # --explain agrees with the list it explains
    other = next(game for game in in_range if game != features_game)
    explained = {s["stage"]: s for s in detect(cli, "--explain", str(other))["stages"]}
    assert {stage: item["reasons"] for stage, item in explained.items()} == {
        "complexity": ["model"],
        "main": ["upstream"],
        "text-embeddings": [],
        "game-embeddings": ["upstream"],
    }
    assert explained["main"]["upstream"]["pending"] == ["complexity"]
    (alone,) = detect(cli, "--explain", str(other), "--stage", "main")["stages"]
    assert alone["reasons"] == [] and alone["upstream"]["pending"] == []
    text = cli("detect-changes", "--explain", str(other))
    assert "complexity will rescore it first" in text.stdout


# -- GitHub Actions --------------------------------------------------------------------


def test_github_outputs_and_step_summary(cli, scored_home: Path, monkeypatch) -> None:
    outputs = scored_home.parent / "github_output"
    summary = scored_home.parent / "step_summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))

    assert cli("detect-changes", "--all-years").exit_code == 0
    assert outputs.read_text().splitlines() == ["changed=false", "count=0"]

    changed = some_ids(scored_home, IN_RANGE, 2)
    add_mechanic(cli, scored_home, changed)
    assert cli("detect-changes", "--stage", "main").exit_code == 0
    assert outputs.read_text().splitlines()[2:] == ["changed=true", "count=2"]

    tables = [block for block in summary.read_text().split("### ") if block.strip()]
    assert len(tables) == 2 and all(t.startswith("bggscore detect-changes") for t in tables)
    rows = [line for line in tables[1].splitlines() if line.startswith("|")]
    assert rows[0] == "| stage | games | new | features | model | upstream | capped |"
    assert rows[1] == "|---|---|---|---|---|---|---|"
    assert rows[2:] == ["| main | 2 | 0 | 2 | 0 | 0 | no |"]
    first = [line for line in tables[0].splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in first[1:]] == ALL_STAGES


# -- errors: exit code, one line, nothing written --------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (("--start-year", "2026", "--end-year", "2026"), 2, ("--start-year 2026", "--end-year")),
        (("--start-year", "2027", "--end-year", "2025"), 2, ("--start-year 2027",)),
        (("--max-games", "0"), 2, ("--max-games", "positive")),
        (("--max-games", "-5"), 2, ("--max-games", "positive")),
        (("--stage", "mian"), 2, ("'mian'", "complexity, main")),
        (("--format", "csv"), 2, ("--format", "'csv'")),
        (("--explain", "9999999"), 2, ("9999999", "not in the warehouse")),
        (("--model", "rating"), 2, ("TYPE=REF",)),
    ],
)
def test_bad_input(
    cli, scored_home: Path, monkeypatch, args: tuple[str, ...], code: int, needles: tuple[str, ...]
) -> None:
    outputs = scored_home.parent / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    before = snapshot(scored_home)
    result = cli("detect-changes", *args)
    assert result.exit_code == code
    assert_one_line_error(result.stderr, *needles)
    assert result.stdout == ""
    assert not outputs.exists()  # no `changed=...` for a workflow to act on
    assert_unchanged(scored_home, before)


def test_non_numeric_id_in_the_file_names_the_line(cli, scored_home: Path, tmp_path) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# header\n123\nabc\n456\n")
    before = snapshot(scored_home)
    result = cli("detect-changes", "--game-ids-file", str(ids_file))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, f"{ids_file}:3", "'abc'")
    assert_unchanged(scored_home, before)


def test_missing_tables_say_to_run_init(cli, demo_home: Path, monkeypatch, tmp_path) -> None:
    empty = tmp_path / "elsewhere.duckdb"
    monkeypatch.setenv("BGGSCORE_WAREHOUSE__PATH", str(empty))
    result = cli("detect-changes")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, f"no warehouse at {empty}", "bggscore warehouse init")
    assert not empty.exists()  # nothing created behind the user's back
    duckdb.connect(str(empty)).close()  # a warehouse file without the tables
    result = cli("detect-changes")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "missing table", "bggscore warehouse init")
    assert sql(empty, "SELECT table_name FROM information_schema.tables").is_empty()


def test_missing_model_says_which_and_how_to_train(cli, scored_home: Path) -> None:
    import shutil

    shutil.rmtree(scored_home / "registry" / "rating")
    (scored_home / "registry" / "_names" / "rating.json").unlink()
    before = snapshot(scored_home)
    for stage in ("main", "all"):
        result = cli("detect-changes", "--stage", stage)
        assert result.exit_code == 2
        assert_one_line_error(result.stderr, "rating", "bggscore models train --outcome rating")
    # a stage that does not need it still works
    assert detect(cli, "--stage", "complexity")["count"] == 0
    assert_unchanged(scored_home, before)


def test_state_rows_of_other_games_are_ignored(cli, scored_home: Path) -> None:
    """State for a game no longer in games_features is not reported (nothing to score)."""
    (game,) = some_ids(scored_home, IN_RANGE, 1)
    execute(scored_home, f"DELETE FROM {QUALIFIED['games_features']} WHERE game_id = {game}")
    assert detect(cli, "--all-years")["changed"] is False


def test_embedding_stages_need_a_model_only_when_asked_for(cli, scored_home: Path) -> None:
    drop_embedding_models(scored_home)
    before = snapshot(scored_home)
    data = detect(cli, "--all-years")
    assert [s["stage"] for s in data["stages"]] == SCORING  # left out of `all`, saying so:
    warned = cli("detect-changes", "--all-years").stderr
    for stage, model_type in (
        ("text-embeddings", "text_embeddings"),
        ("game-embeddings", "game_embeddings"),
    ):
        assert f"{stage}: no {model_type} model registered, stage skipped" in warned
        result = cli("detect-changes", "--stage", stage)
        assert result.exit_code == 2
        assert_one_line_error(
            result.stderr, model_type, f"bggscore models train --outcome {model_type}"
        )
        # embedding models have no --model flag; the hint names their setting
        assert f"BGGSCORE_MODELS__{model_type.upper()}=REF" in result.stderr
        assert "--model" not in result.stderr
    assert_unchanged(scored_home, before)


def test_game_names_are_printed_not_interpreted(cli, demo_home: Path) -> None:
    """Names are data: brackets in them are not rich markup (a stray closing tag crashed)."""
    (game,) = some_ids(demo_home, IN_RANGE, 1)
    name = "Brass [/Birmingham] [red]Deluxe[/red]"
    execute(
        demo_home,
        f"UPDATE {QUALIFIED['games_features']} SET name = '{name}' WHERE game_id = {game}",
    )
    listed = cli("detect-changes", "--game-id", str(game), "--stage", "main")
    assert listed.exit_code == 0, listed.stderr
    assert name in listed.stdout
    explained = cli("detect-changes", "--explain", str(game), "--stage", "main")
    assert explained.exit_code == 0, explained.stderr
    assert f"game {game}: {name}" in explained.stdout


def test_detection_reads_without_pyarrow(scored_home: Path) -> None:
    """A read-only command never imports pyarrow (its import is a large share of a no-op
    run's start-up); DuckDB hands results to polars through the Arrow C stream."""
    code = (
        "import sys; from typer.testing import CliRunner; from bggscore.cli.main import app; "
        "result = CliRunner().invoke(app, ['detect-changes', '--all-years', '--json']); "
        "print(result.exit_code, 'pyarrow' in sys.modules)"
    )
    env = {**os.environ, "BGGSCORE_HOME": str(scored_home)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["0", "False"], out.stdout + out.stderr
