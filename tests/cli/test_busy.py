"""Reading while a run writes, and on a read-only home.

DuckDB lets no other process open a file one process writes, not even to read. So a `score`
keeps `<home>/run-status.json` (replaced whole per committed batch, marked finished at the
end), `warehouse status` answers from it at once, and the commands that need the tables
(`detect-changes`, `similar`, `compare`, `warehouse check`) say a run is in progress and exit 1
at once, or wait for it with `--wait`. Commands that only read open the file read-only, so
they also work on a home nobody may write.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.support.output import assert_one_line_error, parse_json
from tests.support.permissions import run_unprivileged, shared_folder
from tests.support.state import files, table_counts

SRC = Path(__file__).resolve().parents[2] / "src"
HOLD_WAREHOUSE = (  # a writer that holds the DuckDB file until its stdin closes
    "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
    "sys.stdin.read()"
)
HOLD_LOCK = (  # a bggscore run holding the home's lock until its stdin closes
    "import sys; from pathlib import Path; from bggscore.locking import pipeline_lock\n"
    "with pipeline_lock(Path(sys.argv[1]), 'score'):\n"
    "    print('held', flush=True); sys.stdin.read()"
)


# small batches with many interval draws: a score of several seconds, batch by batch
SLOW_SCORE = ("score", "--all-years", "--batch-size", "100", "--intervals", "3000", "--json")


def bggscore_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BGGSCORE_", "GITHUB_"))}
    env.update(BGGSCORE_HOME=str(home), PYTHONPATH=str(SRC), OPENBLAS_NUM_THREADS="1")
    return env


def hold(code: str, target: Path, home: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=bggscore_env(home),
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)
    if holder.stdout is not None:
        holder.stdout.close()


def read(home: Path, query: str) -> str:
    """One value (read-only: the home may be read-only)."""
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return str(con.execute(query).fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def a_game(home: Path) -> str:
    return read(home, "SELECT MIN(game_id) FROM raw.game_embeddings")


def a_landing_job(home: Path) -> str:
    return read(home, "SELECT MIN(job_id) FROM raw.ml_predictions_landing")


# -- a real `score` running in another process ---------------------------------------------------
def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def status_file(home: Path) -> dict | None:
    try:
        return json.loads((home / "run-status.json").read_text())
    except (OSError, ValueError):
        return None


def test_status_answers_within_2s_while_a_score_runs(cli, embedded_home: Path) -> None:
    score = subprocess.Popen(
        [sys.executable, "-m", "bggscore", *SLOW_SCORE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=bggscore_env(embedded_home),
    )
    try:

        def committed_a_batch() -> bool:
            found = status_file(embedded_home)
            running = found is not None and found["status"] == "running"
            return running and bool(found["pass"]) and found["pass"]["done"] > 0  # type: ignore[index]

        wait_for(committed_a_batch, 120, "the score's first committed batch")
        started = time.monotonic()
        result = cli("warehouse", "status", "--json")
        took = time.monotonic() - started
        assert score.poll() is None, "the score ended before status was asked"
        assert result.exit_code == 0, result.stderr
        assert took < 2, f"warehouse status took {took:.1f}s during a run"
        data = parse_json(result.stdout)
        assert data["busy"] is True and data["tables"] is None
        assert f"bggscore score (pid {score.pid}" in data["writer"]
        run = data["run"]
        assert run["command"] == "score" and run["pid"] == score.pid and run["alive"] is True
        assert run["status"] == "running" and run["finished_at"] is None
        assert 0 < run["pass"]["done"] < run["pass"]["total"] == 1951
        assert run["job_id"] and run["games"] == run["pass"]["done"]

        human = cli("warehouse", "status")
        assert human.exit_code == 0
        assert f"being written by bggscore score (pid {score.pid}" in human.stdout
        assert f"job {run['job_id']}: running" in human.stdout and "of 1,951 games" in human.stdout

        # what needs the tables says so at once, exit 1, and names the run
        started = time.monotonic()
        detect = cli("detect-changes")
        assert time.monotonic() - started < 2
        assert detect.exit_code == 1
        line = assert_one_line_error(detect.stderr, f"bggscore score (pid {score.pid}")
        assert "is writing the warehouse" in line and "--wait" in line

        # --wait: one line saying whom it waits for, then the answer once the run ended
        waited = cli("detect-changes", "--wait", "--json")
        assert waited.exit_code == 0, waited.stderr
        # it read the warehouse once the score had let go of it: every batch committed
        committed = status_file(embedded_home)
        assert committed is not None and committed["pass"]["done"] == 1951
        (waiting,) = waited.stderr.strip().splitlines()
        assert f"waiting for bggscore score (pid {score.pid}" in waiting
        assert parse_json(waited.stdout)["command"] == "detect-changes"
    finally:
        out, err = score.communicate(timeout=300)
    assert score.returncode == 0, err
    job = json.loads(out)["job_id"]

    # marked finished at the end; status reads the tables again
    done = status_file(embedded_home)
    assert done is not None
    assert done["status"] == "success" and done["finished_at"] and done["job_id"] == job
    assert done["pass"]["done"] == done["pass"]["total"] == 1951
    after = parse_json(cli("warehouse", "status", "--json").stdout)
    assert after["busy"] is False and after["tables"]["ml_predictions_landing"]["rows"]
    assert after["run"]["status"] == "success" and after["run"]["alive"] is False
    assert after["last_runs"][0]["job_id"] == job


def test_the_status_file_is_replaced_per_batch_and_says_how_a_run_failed(
    cli, embedded_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bggscore import runstatus

    seen: list[dict] = []
    write = runstatus.Tracker._write

    def recording(self: runstatus.Tracker) -> None:
        write(self)
        seen.append(json.loads(self.path.read_text()))
        assert not list(self.path.parent.glob("run-status.json.*.tmp"))  # renamed into place

    monkeypatch.setattr(runstatus.Tracker, "_write", recording)
    result = cli("score", "--all-years", "--batch-size", "500", "--json")
    assert result.exit_code == 0, result.stderr
    done = [doc["pass"]["done"] for doc in seen if doc["pass"] and doc["status"] == "running"]
    assert done[0] == 0 and done[-1] == 1951 and done == sorted(done)
    assert len([d for d in done if d]) == 4  # one write per committed batch (1951 / 500)
    assert seen[-1]["status"] == "success"

    # a run that fails is marked so, with its error
    from bggscore.tasks import job

    def broken(self: job.Job, *args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(job.Job, "commit_batches", broken)
    failed = cli("score", "--all-years")
    assert failed.exit_code == 1
    last = status_file(embedded_home)
    assert last is not None and last["status"] == "failed" and last["message"] == "disk on fire"


def test_a_held_warehouse_is_reported_at_once_by_every_reader(cli, embedded_home: Path) -> None:
    game = a_game(embedded_home)
    shutil.rmtree(embedded_home / "cache", ignore_errors=True)  # similar must ask the warehouse
    holder = hold(HOLD_WAREHOUSE, embedded_home / "warehouse.duckdb", embedded_home)
    job = "20990101T000000Z-00000000"
    try:
        for args in (
            ("detect-changes",),
            ("detect-changes", "--explain", game),
            ("similar", game),
            ("compare", job, job),
            ("warehouse", "check"),
        ):
            started = time.monotonic()
            result = cli(*args)
            assert time.monotonic() - started < 2, args
            assert result.exit_code == 1, (args, result.stderr)
            assert_one_line_error(result.stderr, f"process {holder.pid} is writing the warehouse")
        status = cli("warehouse", "status", "--json")
        assert status.exit_code == 0
        data = parse_json(status.stdout)
        assert data["busy"] is True and data["writer"] == f"process {holder.pid}"
    finally:
        release(holder)


def test_similar_wait_answers_once_the_writer_ends(embedded_home: Path) -> None:
    game = a_game(embedded_home)
    holder = hold(HOLD_WAREHOUSE, embedded_home / "warehouse.duckdb", embedded_home)
    shutil.rmtree(embedded_home / "cache", ignore_errors=True)  # the warehouse must answer
    similar = subprocess.Popen(
        [sys.executable, "-m", "bggscore", "similar", game, "--wait", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=bggscore_env(embedded_home),
    )
    try:
        assert similar.stderr is not None
        line = similar.stderr.readline()
        assert f"waiting for process {holder.pid} to finish writing the warehouse" in line
        time.sleep(1)
        assert similar.poll() is None, "similar --wait did not wait"
    finally:
        release(holder)
    out, err = similar.communicate(timeout=120)
    assert similar.returncode == 0, err
    assert err.strip() == ""  # the one waiting line was all
    assert len(json.loads(out)["neighbours"]) == 10


def test_run_wait_says_once_whom_it_queues_behind(embedded_home: Path) -> None:
    holder = hold(HOLD_LOCK, embedded_home, embedded_home)
    run = subprocess.Popen(
        [sys.executable, "-m", "bggscore", "run", "--wait", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=bggscore_env(embedded_home),
    )
    try:
        assert run.stderr is not None
        line = run.stderr.readline()
        assert "waiting for bggscore score (pid" in line and "to finish (--wait)" in line
        time.sleep(1.5)
        assert run.poll() is None
    finally:
        release(holder)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert "waiting for" not in err  # said once
    assert json.loads(out)["command"] == "run"
    assert status_file(embedded_home)["command"] == "run"  # type: ignore[index]


@pytest.mark.parametrize("command", ["score", "embed", "run"])
def test_a_mistyped_home_is_left_as_it_was(cli, tmp_path: Path, command: str) -> None:
    typo = tmp_path / "typo" / "home"
    result = cli("--home", str(typo), command)
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, f"no warehouse at {typo / 'warehouse.duckdb'}")
    assert not (tmp_path / "typo").exists()  # no folder, no lock file


# -- a read-only home ------------------------------------------------------------------------------
def test_reading_commands_work_on_a_read_only_home(demo_run) -> None:  # type: ignore[no-untyped-def]
    with shared_folder() as root:
        home = root / "home"
        shutil.copytree(demo_run.home, home)
        shutil.rmtree(home / "cache", ignore_errors=True)  # similar must build its index
        for path in [home, *home.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        before = (table_counts(home), files(home))
        stamp = (home / "warehouse.duckdb").stat().st_mtime_ns
        game = a_game(home)
        job = a_landing_job(home)

        status = run_unprivileged(home, "warehouse", "status", "--json")
        assert status.returncode == 0, status.stderr
        assert parse_json(status.stdout)["games"] == 2000
        for args in (
            ("detect-changes", "--json"),
            ("detect-changes", "--explain", game),
            ("warehouse", "check"),
            ("models", "list"),
            ("models", "show", "rating"),
            ("compare", job, job, "--json"),
            ("config", "show"),
        ):
            result = run_unprivileged(home, *args)
            assert result.returncode == 0, (args, result.stderr)
        similar = run_unprivileged(home, "similar", game, "--json")
        assert similar.returncode == 0, similar.stderr
        assert len(parse_json(similar.stdout)["neighbours"]) == 10
        # a writer says what stops it, in one line
        score = run_unprivileged(home, "score")
        assert score.returncode == 1
        assert_one_line_error(score.stderr, "cannot create the lock in", "Permission denied")
        assert (table_counts(home), files(home)) == before
        assert (home / "warehouse.duckdb").stat().st_mtime_ns == stamp
