"""Two real `bggscore` processes started together on one home: the home lock lets one
work; the other exits 1 at once saying who is running, or (``run --wait``, or a loser
that only got going after the winner finished) queues and then finds nothing to do.
Either way no game is scored twice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.faults.checks import (
    EMBED_STAGES,
    QUALIFIED_ALL,
    SCORE_STAGES,
    assert_game_embeddings_read_current_inputs,
    assert_main_read_its_complexity,
    assert_state_points_at_landing,
    runs,
)
from tests.faults.harness import FINDINGS, Watch, Watched
from tests.support.output import assert_one_line_error
from tests.support.state import game_ids, sql

pytestmark = pytest.mark.faults


def _together(home: Path, cwd: Path, *args: str) -> tuple[Watched, Watched]:
    env = {"BGGSCORE_SCORING__BATCH_SIZE": "150"}  # many commits, a long enough overlap
    first, second = Watch(home, cwd, *args, env=env), Watch(home, cwd, *args, env=env)
    return first.finish(), second.finish()


def _no_game_twice(home: Path, tables: list[str]) -> None:
    """No game has landing rows from two different jobs (or two rows from one)."""
    for table in tables:
        twice = sql(
            home,
            f"SELECT game_id FROM {QUALIFIED_ALL[table]} GROUP BY game_id HAVING COUNT(*) > 1",
        )
        assert twice.is_empty(), f"{len(twice)} game(s) written twice to {table}"


def _split(pair: tuple[Watched, Watched], worked: str) -> tuple[Watched, Watched]:
    """(winner, loser): the winner is the one whose JSON says it did the work."""
    done = [p for p in pair if p.returncode == 0 and json.loads(p.stdout)[worked]]
    assert len(done) == 1, [(p.returncode, p.stdout[-300:], p.stderr[-300:]) for p in pair]
    winner = done[0]
    return winner, pair[1] if winner is pair[0] else pair[0]


def _loser_outcome(winner: Watched, loser: Watched, command: str, home: Path) -> str:
    if loser.returncode == 1:
        line = assert_one_line_error(loser.stderr, "already running", str(home))
        if "(pid" in line:  # the holder had written its name into the lock file
            assert f"bggscore {command} (pid {winner.pid}," in line
        assert loser.stdout == ""
        return f"exit 1: {line}"
    assert loser.returncode == 0, loser.stderr
    data = json.loads(loser.stdout)
    assert data["skipped_reason"] == "no_changes", data
    return "exit 0 once the winner had released the lock: no_changes"


def test_two_scores_started_together_score_each_game_once(
    unscored_3k_home: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(unscored_3k_home, home)
    args = ("score", "--changed-only", "--all-years", "--json")

    pair = _together(home, tmp_path, *args)

    winner, loser = _split(pair, "games_scored")
    everything = game_ids(home)
    assert json.loads(winner.stdout)["games_scored"] == len(everything)
    outcome = _loser_outcome(winner, loser, "score", home)
    _no_game_twice(home, list(SCORE_STAGES.values()))
    assert_state_points_at_landing(home, SCORE_STAGES)
    assert_main_read_its_complexity(home)
    assert runs(home)["status"].to_list() == ["success"]  # a loser records no run
    FINDINGS["two scores together"] = outcome


@pytest.mark.parametrize("wait", [False, True], ids=["no-wait", "wait"])
def test_two_runs_started_together_score_and_embed_each_game_once(
    unscored_demo_home: Path, tmp_path: Path, wait: bool
) -> None:
    home = tmp_path / "home"
    shutil.copytree(unscored_demo_home, home)
    args = ("run", "--all-years", "--json", *(["--wait"] if wait else []))

    pair = _together(home, tmp_path, *args)

    winner, loser = _split(pair, "games_total")
    everything = game_ids(home)
    summary = json.loads(winner.stdout)
    assert summary["games_scored"] == len(everything)
    assert summary["games_embedded"] == 2 * len(everything)
    outcome = _loser_outcome(winner, loser, "run", home)
    if wait:  # the loser queued behind the lock, then found nothing to do
        assert loser.returncode == 0, loser.stderr
        assert json.loads(loser.stdout)["games_total"] == 0
        assert loser.lock_at is not None and winner.lock_at is not None
        outcome += f" (lock taken at {loser.lock_at:.1f}s; the winner's at {winner.lock_at:.1f}s)"
    tables = [*SCORE_STAGES.values(), *EMBED_STAGES.values()]
    _no_game_twice(home, tables)
    assert_state_points_at_landing(home, {**SCORE_STAGES, **EMBED_STAGES})
    assert_main_read_its_complexity(home)
    assert_game_embeddings_read_current_inputs(home)
    statuses = runs(home).select("command", "status").rows()
    assert statuses == [("score", "success"), ("embed", "success")]
    FINDINGS[f"two runs together ({'--wait' if wait else 'no --wait'})"] = outcome
