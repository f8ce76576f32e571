"""`bggscore run`: the whole chain in dependency order, changed-only, under the home's lock.

Homes come from the session's `bggscore demo --games 2000` registry: `unscored_home` (models
registered, nothing scored) and `embedded_home` (every stage up to date). The lock tests
start real processes: a holder of `pipeline_lock` and `python -m bggscore run`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.conftest import LockHolder
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import game_ids, read, sql

IN_RANGE = "year_published >= 2024 AND year_published < 2029"
ALL_STAGES = ["complexity", "main", "text-embeddings", "game-embeddings"]


def step(data: dict, command: str) -> dict:
    """The one step of ``command`` in a `run --json` result (steps run in graph order)."""
    [found] = [item for item in data["steps"] if item["command"] == command]
    assert found["schema_version"] == data["schema_version"] == 1
    return found


BRIBERY = pl.col("mechanics").list.concat(pl.lit(["Bribery"]))  # a feature change, same text


def run_json(cli, *args: str) -> dict[str, Any]:
    result = cli("run", *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return parse_json(result.stdout)


def written(home: Path) -> dict[str, Any]:
    """Everything `run` writes: state rows by stage, landing rows, embedding rows, runs."""
    state = read(home, "scoring_state")
    return {
        "state": dict(state.group_by("stage").len().iter_rows()),
        "state_jobs": sorted(set(state["job_id"])),
        "landing": len(read(home, "ml_predictions_landing")),
        "text": len(sql(home, "SELECT game_id FROM raw.description_embeddings")),
        "game": len(sql(home, "SELECT game_id FROM raw.game_embeddings")),
        "runs": len(read(home, "runs")),
    }


def reload_games(cli, home: Path, ids: list[int], **columns: Any) -> None:
    games = sql(home, "SELECT * FROM analytics.games_features").filter(pl.col("game_id").is_in(ids))
    path = home.parent / f"edited-{ids[0]}.parquet"
    games.with_columns(**columns).write_parquet(path)
    assert cli("warehouse", "load", str(path)).exit_code == 0


def without_embedding_models(home: Path) -> None:
    registry = home / "registry"
    for model_type in ("text_embeddings", "game_embeddings"):
        shutil.rmtree(registry / model_type)
        (registry / "_names" / f"{model_type}.json").unlink()


def bggscore(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m bggscore ARGS...` in a real process (env and cwd from the test)."""
    return subprocess.run(
        [sys.executable, "-m", "bggscore", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- the chain --------------------------------------------------------------------------------
def test_run_scores_and_embeds_everything_then_nothing(
    cli, unscored_home: Path, monkeypatch
) -> None:
    outputs = unscored_home.parent / "github_output"
    summary = unscored_home.parent / "step_summary"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    ids = game_ids(unscored_home)
    data = run_json(cli, "--all-years")
    assert data["stages"] == ALL_STAGES
    assert data["games_scored"] == len(ids)
    assert data["games_embedded"] == 2 * len(ids)
    assert data["skipped_reason"] is None
    assert step(data, "score")["stages"] == {"complexity": len(ids), "main": len(ids)}
    assert step(data, "embed")["games_embedded"] == {"text": len(ids), "game": len(ids)}
    assert (
        step(data, "score")["selection"]
        == step(data, "embed")["selection"]
        == "all years (changed only)"
    )

    state = read(unscored_home, "scoring_state")
    assert dict(state.group_by("stage").len().iter_rows()) == dict.fromkeys(ALL_STAGES, len(ids))
    # game embeddings read the complexity and text this very run wrote
    score_job, embed_job = step(data, "score")["job_id"], step(data, "embed")["job_id"]
    game_state = state.filter(pl.col("stage") == "game-embeddings")
    assert set(game_state["upstream_key"]) == {
        f"complexity:{score_job}|text-embeddings:{embed_job}"
    }
    runs = read(unscored_home, "runs").sort("started_at")
    assert runs.select("command", "status").rows() == [("score", "success"), ("embed", "success")]
    assert outputs.read_text().splitlines() == [
        f"games_scored={len(ids)}",
        f"games_embedded={2 * len(ids)}",
        f"job_ids={score_job},{embed_job}",
    ]
    # a step summary like score's and embed's: one row per step, in the order they ran
    text = summary.read_text()
    assert text.startswith("### bggscore run\n")
    assert f"| score | complexity, main | {len(ids)} | `{score_job}` |" in text
    assert f"| embed | text-embeddings, game-embeddings | {2 * len(ids)} | `{embed_job}` |" in text

    before = written(unscored_home)
    again = cli("run", "--all-years")
    assert again.exit_code == 0, again.stderr
    assert "nothing to do (no_changes)" in again.stdout
    assert written(unscored_home) == before


def test_run_after_changes_touches_only_what_changed(cli, embedded_home: Path) -> None:
    mechanic, description = sorted(game_ids(embedded_home, IN_RANGE))[:2]
    reload_games(cli, embedded_home, [mechanic], mechanics=BRIBERY)
    reload_games(
        cli, embedded_home, [description], description=pl.lit("A new text about space trains.")
    )
    data = run_json(cli)  # the default range holds both games
    assert step(data, "score")["stages"] == {"complexity": 2, "main": 2}
    assert step(data, "embed")["games_embedded"] == {"text": 1, "game": 2}
    text = sql(
        embedded_home,
        "SELECT game_id FROM raw.description_embeddings WHERE job_id = $job",
        {"job": step(data, "embed")["job_id"]},
    )
    assert text["game_id"].to_list() == [description]
    assert not run_json(cli, "--all-years")["games_scored"]


def test_dry_run_counts_what_a_run_would_write_and_writes_nothing(cli, embedded_home: Path) -> None:
    mechanic = sorted(game_ids(embedded_home, IN_RANGE))[0]
    reload_games(cli, embedded_home, [mechanic], mechanics=BRIBERY)
    before = written(embedded_home)

    data = run_json(cli, "--dry-run")

    assert written(embedded_home) == before  # nothing, not even a runs row
    assert step(data, "score")["stages"] == {"complexity": 1, "main": 1}
    dry = data["dry_run"]
    assert dry["written"] is False
    assert dry["bytes"] is None  # DuckDB bills nothing: no estimate
    assert dry["writes"]["raw.ml_predictions_landing"] == 1
    assert dry["writes"]["raw.complexity_predictions"] == 1
    # complexity and main state in the score step, then both embedding stages (the game's
    # text did not change, but its features did: the game embedding waits on nothing)
    assert dry["writes"]["raw.bggscore_scoring_state"] >= 2
    # one step's one batch writes its `success` row with it (no `running` row first)
    assert dry["writes"]["raw.bggscore_runs"] == 2
    # the run's four stages detected in one read ("all"); game embeddings, which read the
    # complexity the score step wrote, take its games from it, not from a second detection
    stages = [read["stage"] for read in dry["reads"]]
    assert stages.count("all") == 1 and "game-embeddings" not in stages
    human = cli("run", "--dry-run")
    assert human.exit_code == 0, human.stderr
    assert "dry run: nothing was written" in human.stdout
    assert "would write 1 row to raw.ml_predictions_landing" in human.stdout
    assert written(embedded_home) == before
    assert cli("run", "--dry-run", "--dispatch", "x", "--dispatch-repo", "o/r").exit_code == 2


def test_stages_always_run_in_dependency_order(cli, unscored_home: Path) -> None:
    in_range = game_ids(unscored_home, IN_RANGE)
    data = run_json(cli, "--stage", "text-embeddings", "--stage", "complexity")
    assert data["stages"] == ["complexity", "text-embeddings"]
    assert step(data, "score")["stages"] == {"complexity": len(in_range)}
    assert step(data, "embed")["games_embedded"] == {"text": len(in_range)}
    assert written(unscored_home)["state"] == {
        "complexity": len(in_range),
        "text-embeddings": len(in_range),
    }
    rest = run_json(cli, "--stage", "game-embeddings,main")
    assert rest["stages"] == ["main", "game-embeddings"]
    assert rest["games_scored"] == len(in_range)
    assert step(rest, "embed")["games_embedded"] == {"game": len(in_range)}


def test_full_rescores_the_selection_without_changes(cli, embedded_home: Path) -> None:
    in_range = game_ids(embedded_home, IN_RANGE)
    data = run_json(cli, "--full", "--stage", "complexity", "--stage", "text-embeddings")
    assert step(data, "score")["stages"] == {"complexity": len(in_range)}
    assert step(data, "embed")["games_embedded"] == {"text": len(in_range)}
    assert step(data, "score")["selection"] == "years 2024-2028"


def test_default_run_leaves_out_embedding_stages_without_a_model(cli, unscored_home: Path) -> None:
    without_embedding_models(unscored_home)
    in_range = game_ids(unscored_home, IN_RANGE)
    result = cli("run", "--json")
    assert result.exit_code == 0, result.stderr
    data = parse_json(result.stdout)
    assert data["stages"] == ["complexity", "main"]
    assert data["games_scored"] == len(in_range)
    assert "text-embeddings: no text_embeddings model registered, stage skipped" in result.stderr
    assert "Traceback" not in result.stderr


# -- errors: exit code, one line, nothing written ----------------------------------------------
def test_named_embedding_stage_without_a_model_fails_before_scoring(
    cli, unscored_home: Path
) -> None:
    without_embedding_models(unscored_home)
    before = written(unscored_home)
    result = cli("run", "--stage", "complexity,text-embeddings")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "no text_embeddings models yet", "models train")
    assert written(unscored_home) == before


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--stage", "embeddings"), ("embeddings",)),
        (("--start-year", "2026", "--end-year", "2026"), ("--start-year 2026",)),
        (("--max-games", "0"), ("--max-games",)),
    ],
)
def test_bad_flags_are_usage_errors(
    cli, unscored_home: Path, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    before = written(unscored_home)
    result = cli("run", *args)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, *needles)
    assert written(unscored_home) == before


# -- the lock, with real processes -------------------------------------------------------------
def test_a_second_run_exits_at_once_while_one_runs(cli, embedded_home: Path) -> None:
    before = written(embedded_home)
    with LockHolder(embedded_home, 60, command="run") as holder:
        started = time.monotonic()
        second = bggscore("run", "--all-years")
        elapsed = time.monotonic() - started
        assert holder.process.poll() is None  # the first is still running
    assert second.returncode == 1
    assert elapsed < 10
    assert_one_line_error(
        second.stderr, f"bggscore run (pid {holder.process.pid}", "already running"
    )
    assert second.stdout == ""
    assert written(embedded_home) == before


def test_wait_queues_behind_the_running_one_then_succeeds(cli, embedded_home: Path) -> None:
    game = sorted(game_ids(embedded_home, IN_RANGE))[0]
    reload_games(cli, embedded_home, [game], mechanics=BRIBERY)
    with LockHolder(embedded_home, 3, command="run") as holder:
        queued = subprocess.Popen(
            [sys.executable, "-m", "bggscore", "run", "--wait", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = queued.communicate(timeout=120)
        finally:
            if queued.poll() is None:
                queued.kill()
                queued.communicate()
        holder_done = holder.process.wait(timeout=10)
    assert holder_done == 0  # the holder finished its sleep: nobody broke its lock
    assert queued.returncode == 0, err
    data = parse_json(out)
    assert step(data, "score")["stages"] == {"complexity": 1, "main": 1}
    assert step(data, "embed")["games_embedded"] == {"text": 0, "game": 1}


def test_a_killed_run_releases_the_lock(cli, embedded_home: Path) -> None:
    with LockHolder(embedded_home, 60, command="run") as holder:
        locked = cli("run", "--all-years")
        assert locked.exit_code == 1
        os.kill(holder.process.pid, signal.SIGKILL)
        holder.process.wait(timeout=10)
        data = run_json(cli, "--all-years")
    assert data["skipped_reason"] == "no_changes"


def test_a_cap_of_one_game_is_said_in_the_singular(cli, embedded_home: Path) -> None:
    two = sorted(game_ids(embedded_home, IN_RANGE))[:2]
    reload_games(cli, embedded_home, two, mechanics=BRIBERY)
    result = cli("run", "--max-games", "1")
    assert result.exit_code == 0, result.stderr
    assert "complexity: more than 1 game needs scoring;" in result.stderr
    assert "game-embeddings: more than 1 game needs embedding;" in result.stderr
