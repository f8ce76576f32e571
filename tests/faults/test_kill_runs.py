"""SIGKILL a real `bggscore score` (and `embed`) process at many moments of a run over a
real DuckDB file; a `--changed-only` rerun must then complete and leave every invariant of
``checks.py`` true.

One uninterrupted run is timed first (the calibration). Each kill point then starts the
same command on its own copy of the same starting home and kills it on cue (see
``harness.py`` for the anchors). The killed processes run two at a time in the
background while the tests, in order, check each one and run its recovery in-process.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from tests.faults.checks import (
    EMBED_STAGES,
    SCORE_STAGES,
    KilledJob,
    assert_game_embeddings_read_current_inputs,
    assert_main_read_its_complexity,
    assert_state_points_at_landing,
    database_is_sound,
    games_of,
    is_whole_batches,
    killed_job,
    predictions,
    runs,
    state_games_of,
)
from tests.faults.harness import (
    FINDINGS,
    Calibration,
    KillPoint,
    Watched,
    calibrate,
    run_in_process,
    run_killed,
)
from tests.support.state import game_ids

from bggscore.locking import pipeline_lock

pytestmark = pytest.mark.faults

BATCH = 150
SCORE_ARGS = ("score", "--all-years", "--batch-size", str(BATCH), "--json")
EMBED_ARGS = ("embed", "--all-years", "--batch-size", str(BATCH), "--json")
SEED = 20260108

# 2,940 games in 20 batches: 20 progress lines
SCORE_POINTS = [
    KillPoint("spawn", 0.05),  # the interpreter starting
    KillPoint("spawn", 0.6),  # imports
    *(KillPoint("lock", f) for f in (0.0, 0.3, 0.6, 0.9)),  # registry, detection, models
    *(KillPoint("wal", f) for f in (0.0, 0.3, 0.6, 0.9)),  # reading, scoring, committing batch 1
    *(
        KillPoint("line", f, n)  # batch n+1 committing while n+2 is scored
        for n, f in (
            (1, 0.0),
            (2, 0.5),
            (5, 0.75),
            (7, 0.1),
            (9, 0.6),
            (12, 0.35),
            (15, 0.9),
            (18, 0.2),
        )
    ),
    # the last batch committed: the 'success' row, the checkpoint on close, the exit
    *(KillPoint("line", f, 20) for f in (0.0, 0.04, 0.08, 0.15)),
]
# 1,951 games: 14 batches, each embedding its games' text then their game embeddings
# (one pass for both stages), committed together
EMBED_POINTS = [
    KillPoint("line", 0.5, 3),
    KillPoint("line", 0.3, 7),
    KillPoint("line", 0.0, 10),
    KillPoint("line", 0.6, 12),
]


@dataclass
class Lab:
    calibration: Calibration
    expected: pl.DataFrame  # each game's prediction after the uninterrupted run
    homes: dict[str, Path]
    runs: dict[str, Future[Watched]]


def _selected(request: pytest.FixtureRequest) -> set[str]:
    """The kill points of this module that will run (``-k`` and friends deselect some)."""
    kinds = {
        "test_kill_score_then_changed_only_recovers": "score",
        "test_kill_embed_then_changed_only_recovers": "embed",
    }
    return {
        f"{kinds[item.originalname]}:{item.callspec.params['point'].id}"
        for item in request.session.items
        if item.module is not None
        and item.module.__name__ == __name__
        and getattr(item, "originalname", "") in kinds
    }


@pytest.fixture(scope="module")
def lab(
    request: pytest.FixtureRequest,
    unscored_3k_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("kills")
    reference = root / "uninterrupted" / "home"
    shutil.copytree(unscored_3k_home, reference)
    calibration, _ = calibrate(reference, reference.parent, *SCORE_ARGS)
    FINDINGS["uninterrupted score"] = calibration.describe()
    rng = random.Random(SEED)
    homes: dict[str, Path] = {}
    started: dict[str, Future[Watched]] = {}

    def killed(base: Path, home: Path, point: KillPoint, jitter: float, *args: str) -> Watched:
        shutil.copytree(base, home)
        known = calibration if args[0] == "score" else None
        return run_killed(home, home.parent, point, known, jitter, *args)

    wanted = _selected(request)
    plans = [("score", p, unscored_3k_home, SCORE_ARGS) for p in SCORE_POINTS]
    if any(key.startswith("embed:") for key in wanted):  # scored, not embedded: 2,000 games
        embed_base = request.getfixturevalue("scored_unembedded_demo_home")
        plans += [("embed", p, embed_base, EMBED_ARGS) for p in EMBED_POINTS]
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kill")
    for kind, point, base, args in plans:
        key = f"{kind}:{point.id}"
        # drawn for every point, so a point's jitter does not depend on what else runs
        jitter = rng.uniform(0.0, 0.05) if point.anchor == "spawn" else rng.uniform(-0.02, 0.02)
        if key not in wanted:
            continue
        homes[key] = root / key.replace(":", "-").replace("%", "pct") / "home"
        started[key] = pool.submit(killed, base, homes[key], point, jitter, *args)
    try:
        yield Lab(calibration, predictions(reference), homes, started)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _phase(run: Watched, total_lines: int) -> str:
    if run.killed_at is None:
        return f"finished (exit {run.returncode}) before the cue"
    at = f"killed at {run.killed_at:.2f}s"
    if run.lock_at is None or run.killed_at < run.lock_at:
        return f"{at}, before taking the lock (interpreter, imports)"
    if run.wal_at is not None and run.killed_at >= run.wal_at and not run.lines:
        return f"{at}, {run.killed_at - run.wal_at:.2f}s after the WAL appeared, before commit 1"
    if not run.lines:
        return f"{at}, {run.killed_at - run.lock_at:.2f}s after the lock, before any write"
    return f"{at}, after commit {len(run.lines)}/{total_lines}"


def _check_killed(run: Watched, home: Path, before: KilledJob, ordered: list[int]) -> None:
    """What the kill itself left: whole batches in game_id order, nothing the process
    reported committed lost, a run row never 'failed', and the lock free."""
    assert run.killed or run.returncode == 0, run.stderr
    for table, games in before.games.items():
        assert is_whole_batches(games, ordered, BATCH), (table, len(games))
    # a batch the process reported committed (its progress line) is durable
    assert before.committed >= min(len(run.lines) * BATCH, len(ordered))
    if run.returncode == 0:
        assert before.status == "success"
    elif before.status is not None:
        # SIGKILL leaves no chance to record 'failed': the run stays 'running', unless the
        # kill came after the 'success' row (while closing), when every batch is in
        assert before.status in ("running", "success")
        if before.status == "success":
            assert before.committed == len(ordered)
    with pipeline_lock(home, "probe"):  # the kernel released the dead process's lock
        pass


def _finding(run: Watched, before: KilledJob, wal: int, total_lines: int) -> str:
    planned = run.notes.get("planned_at")
    cue = f" (cue {planned:.2f}s)" if planned is not None else ""
    sizes = {table: len(games) for table, games in before.games.items()}
    if len(set(sizes.values())) == 1:
        committed = f"{before.committed} games in {-(-before.committed // BATCH)} whole batch(es)"
    else:
        committed = ", ".join(f"{table} {n}" for table, n in sizes.items())
    return (
        f"{_phase(run, total_lines)}{cue}; committed: {committed}; "
        f"run row {before.status or 'absent'}, WAL {_size(wal)}"
    )


def _size(wal: int) -> str:
    if wal < 0:
        return "absent"
    return f"{wal} B" if wal < 10_240 else f"{wal / 1024:,.0f} KiB"


def _wal_size(home: Path) -> int:
    wal = home / "warehouse.duckdb.wal"
    return wal.stat().st_size if wal.exists() else -1


@pytest.mark.parametrize("point", SCORE_POINTS, ids=lambda p: p.id)
def test_kill_score_then_changed_only_recovers(
    point: KillPoint, lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"score:{point.id}"
    run = lab.runs[key].result()
    home = lab.homes[key]
    wal = _wal_size(home)
    ordered = sorted(game_ids(home))
    tables = list(SCORE_STAGES.values())
    before = killed_job(home, "score", tables)
    _check_killed(run, home, before, ordered)
    assert len({frozenset(games) for games in before.games.values()}) == 1, "stages disagree"
    if before.job_id is not None:
        for stage, table in SCORE_STAGES.items():
            assert state_games_of(home, stage, before.job_id) == before.games[table]

    monkeypatch.chdir(tmp_path)
    recovery = run_in_process(home, "score", "--changed-only", "--all-years", "--json")

    assert recovery.exit_code == 0, recovery.stderr
    assert "already running" not in recovery.stderr
    result = json.loads(recovery.stdout)
    rest = set(ordered) - before.games[tables[0]]
    assert result["games_scored"] == len(rest)
    assert_state_points_at_landing(home, SCORE_STAGES)
    assert_main_read_its_complexity(home)
    for stage, table in SCORE_STAGES.items():
        if before.job_id is not None:  # the killed job's batches stand, and stay current
            assert games_of(home, table, before.job_id) == before.games[table]
            assert state_games_of(home, stage, before.job_id) == before.games[table]
        if rest:
            assert games_of(home, table, result["job_id"]) == rest
    recorded = runs(home)
    assert len(recorded) == (before.job_id is not None) + bool(rest)
    if rest:
        row = recorded.filter(recorded["job_id"] == result["job_id"]).row(0, named=True)
        assert (row["status"], row["games"]) == ("success", len(rest))
    # the same numbers an uninterrupted run produced, whichever job scored each game
    assert_frame_equal(predictions(home), lab.expected)
    detected = run_in_process(home, "detect-changes", "--all-years", "--json")
    counts = {s["stage"]: s["count"] for s in json.loads(detected.stdout)["stages"]}
    assert counts["complexity"] == counts["main"] == 0
    database_is_sound(home)

    FINDINGS[key] = _finding(run, before, wal, len(lab.calibration.lines)) + (
        f"; recovery scored {len(rest)}"
    )
    shutil.rmtree(home.parent)


@pytest.mark.parametrize("point", EMBED_POINTS, ids=lambda p: p.id)
def test_kill_embed_then_changed_only_recovers(
    point: KillPoint, lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"embed:{point.id}"
    run = lab.runs[key].result()
    home = lab.homes[key]
    wal = _wal_size(home)
    ordered = sorted(game_ids(home))
    text, game = EMBED_STAGES["text-embeddings"], EMBED_STAGES["game-embeddings"]
    before = killed_job(home, "embed", [text, game])
    _check_killed(run, home, before, ordered)
    # one pass: each committed batch holds the text and the game embeddings of its games
    assert before.games[game] <= before.games[text]
    if before.job_id is not None:
        for stage, table in EMBED_STAGES.items():
            assert state_games_of(home, stage, before.job_id) == before.games[table]

    monkeypatch.chdir(tmp_path)
    recovery = run_in_process(home, "embed", "--changed-only", "--all-years", "--json")

    assert recovery.exit_code == 0, recovery.stderr
    assert "already running" not in recovery.stderr
    result = json.loads(recovery.stdout)
    assert result["games_embedded"] == {
        "text": len(ordered) - len(before.games[text]),
        "game": len(ordered) - len(before.games[game]),
    }
    assert_state_points_at_landing(home, EMBED_STAGES)
    assert_state_points_at_landing(home, SCORE_STAGES)
    assert_game_embeddings_read_current_inputs(home)
    if before.job_id is not None:
        for table, games in before.games.items():
            assert games_of(home, table, before.job_id) == games
    detected = run_in_process(home, "detect-changes", "--all-years", "--json")
    assert not json.loads(detected.stdout)["changed"]
    database_is_sound(home)

    FINDINGS[key] = _finding(run, before, wal, 14) + (
        f"; recovery embedded {result['games_embedded']}"
    )
    shutil.rmtree(home.parent)
