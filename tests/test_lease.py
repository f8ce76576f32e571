"""The stage lease: one writer per stage across machines (issue 15, item 5).

The logic is checked on both engines (the SQL is the same), the race with a client that
raises BigQuery's concurrent-update abort, and the commands against the emulator: a held
lease refuses a second machine's run before it writes, a no-op takes none, a killed
holder's lease is taken over after it expires and its run row closed as failed, and two
processes with different homes never score one stage at once.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from tests.faults import test_bigquery_faults as faults
from tests.faults.test_bigquery_faults import BigQueryHome
from tests.support.warehouses import engine_fixture

from bggscore.errors import ConcurrentUpdateError, LockedError
from bggscore.settings import Settings, WarehouseSettings
from bggscore.warehouse import lease as lease_module
from bggscore.warehouse import queries
from bggscore.warehouse.lease import Lease
from bggscore.warehouse.schemas import LEASES

# the emulator (in this process) reads DuckDB results in a way DuckDB 2 warns about
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")
REPO = Path(__file__).resolve().parents[1]
engine = engine_fixture(ensure_schema=True)


@pytest.fixture
def warehouse(engine: Any) -> Any:
    """Either engine, with the lease table (the embedded warehouse never makes one: its
    writers share a file lock) so the one SQL is checked on both."""
    if not engine.uses_lease:
        engine._create_table(engine.tables["leases"], LEASES)
    return engine


bq = faults.bq  # a BigQuery home in the emulator, 500 demo games
START = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The holders' clock (a list so a test can move it)."""
    now = [START]
    monkeypatch.setattr(lease_module, "_now", lambda: now[0])
    return now


def lease(stages: list[str], command: str = "score", **warehouse: Any) -> Lease:
    return Lease(Settings(warehouse=WarehouseSettings(**warehouse)), command, stages)


def holders(wh: Any) -> dict[str, str]:
    rows = wh.query(queries.LEASE_HOLDERS, {"lease_stages": ["complexity", "main", "x"]})
    return {row["stage"]: row["job_id"] for row in rows.to_dicts()}


def test_a_held_stage_is_refused_naming_its_holder(warehouse: Any, clock: Any) -> None:
    first = lease(["complexity", "main"])
    first.take(warehouse, "job-a")
    first.take(warehouse, "job-a")  # taken already: nothing more
    with pytest.raises(LockedError, match=r"main is already running on .*since 2026-12-01T06"):
        lease(["main"]).take(warehouse, "job-b")
    assert holders(warehouse) == {"complexity": "job-a", "main": "job-a"}
    first.release(warehouse)
    assert holders(warehouse) == {}
    lease(["main"]).take(warehouse, "job-b")
    assert holders(warehouse) == {"main": "job-b"}


def test_every_stage_or_none(warehouse: Any, clock: Any) -> None:
    lease(["main"]).take(warehouse, "job-a")
    with pytest.raises(LockedError):
        lease(["complexity", "main"]).take(warehouse, "job-b")
    assert holders(warehouse) == {"main": "job-a"}  # complexity was not taken either
    lease(["complexity"]).take(warehouse, "job-c")  # another stage is free
    assert holders(warehouse) == {"main": "job-a", "complexity": "job-c"}


def test_an_expired_lease_is_taken_over_and_its_run_closed(warehouse: Any, clock: Any) -> None:
    lease(["main"]).take(warehouse, "job-a")
    warehouse.write([warehouse.run_row("job-a", "score", "main", "running", 0, START)])
    clock[0] = START + timedelta(minutes=29)
    with pytest.raises(LockedError, match="expires at 2026-12-01T06:30"):
        lease(["main"]).take(warehouse, "job-b")
    clock[0] = START + timedelta(minutes=31)
    lease(["main"]).take(warehouse, "job-b")
    assert holders(warehouse) == {"main": "job-b"}
    runs = warehouse.query("SELECT job_id, status, message FROM runs").to_dicts()
    assert [(r["job_id"], r["status"]) for r in runs] == [("job-a", "failed")]
    assert "lease expired" in runs[0]["message"]


def test_renewal_extends_and_a_lost_lease_stops_the_run(
    warehouse: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = [0.0]
    monkeypatch.setattr(lease_module.time, "monotonic", lambda: ticks[0])
    held = lease(["main"], lease_minutes=30)
    held.take(warehouse, "job-a")
    ticks[0], clock[0] = 5 * 60, START + timedelta(minutes=5)
    held.renew_if_due(warehouse)  # not due: no statement
    ticks[0], clock[0] = 11 * 60, START + timedelta(minutes=11)
    held.renew_if_due(warehouse)
    clock[0] = START + timedelta(minutes=35)  # past the first expiry, inside the renewed one
    with pytest.raises(LockedError):
        lease(["main"]).take(warehouse, "job-b")
    held.release(warehouse)
    lease(["main"]).take(warehouse, "job-b")
    held.job_id, ticks[0] = "job-a", 30 * 60  # as if it still thought it held main
    with pytest.raises(LockedError, match="expired and was taken over"):
        held.renew_if_due(warehouse)


def test_losing_the_race_is_held_by_another(warehouse: Any, clock: Any) -> None:
    """BigQuery aborts one of two conflicting MERGEs; the loser reads who won."""
    winner = lease(["main"])

    class Racing:
        uses_lease = True

        def __init__(self, wh: Any) -> None:
            self.wh = wh

        def query(self, sql: str, params: Any) -> Any:
            return self.wh.query(sql, params)

        def execute_count(self, sql: str, params: Any) -> int:
            winner.take(self.wh, "job-winner")  # the other machine's MERGE commits first
            raise ConcurrentUpdateError("Could not serialize access due to concurrent update")

    with pytest.raises(LockedError, match="job-winner"):
        lease(["main"]).take(Racing(warehouse), "job-loser")
    assert holders(warehouse) == {"main": "job-winner"}


def test_concurrent_update_is_its_own_error() -> None:
    from google.api_core import exceptions

    from bggscore.warehouse.bigquery_engine import warehouse_error

    abort = exceptions.BadRequest(
        "Could not serialize access to table p.raw.bggscore_leases due to concurrent update"
    )
    assert isinstance(warehouse_error(abort, "taking the lease"), ConcurrentUpdateError)
    other = exceptions.BadRequest("Syntax error")
    assert not isinstance(warehouse_error(other, "x"), ConcurrentUpdateError)


def test_waiting_looks_again_until_free(
    warehouse: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease(["main"]).take(warehouse, "job-a")
    said: list[str] = []

    def sleep(seconds: float) -> None:  # the holder finishes while we wait
        clock[0] += timedelta(minutes=40)

    monkeypatch.setattr(lease_module.time, "sleep", sleep)
    waiting = lease(["main"])
    waiting.wait = True
    waiting.take(warehouse, "job-b", on_wait=said.append)
    assert holders(warehouse) == {"main": "job-b"}
    assert len(said) == 1 and "already running" in said[0]


# -- the commands, against the emulator -----------------------------------------------------
def _other_machine_holds(bq: BigQueryHome, stages: list[str], job_id: str) -> Lease:
    from bggscore.settings import load_settings

    other = Lease(load_settings(), "score", stages)
    with bq.warehouse() as wh:
        other.take(wh, job_id)
    return other


@pytest.mark.bigquery
def test_score_is_refused_while_another_machine_holds_its_stage(bq: BigQueryHome) -> None:
    _other_machine_holds(bq, ["main"], "job-elsewhere")
    out = bq.cli("score", "--all-years")
    assert out.exit_code == 1
    assert "main is already running on" in out.stderr and "job-elsewhere" in out.stderr
    assert "Traceback" not in out.stderr
    assert bq.query("SELECT COUNT(*) AS n FROM ml_predictions_landing")["n"][0] == 0
    assert bq.query("SELECT COUNT(*) AS n FROM runs")["n"][0] == 0  # nothing recorded


@pytest.mark.bigquery
def test_a_scoring_run_holds_then_releases_and_a_no_op_takes_none(
    bq: BigQueryHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []
    real_take = Lease.take

    def take(self: Lease, wh: Any, job_id: str, on_wait: Any = None) -> None:
        seen.append(self.stages)
        real_take(self, wh, job_id, on_wait)

    monkeypatch.setattr(Lease, "take", take)
    assert bq.cli("score", "--all-years").exit_code == 0
    assert seen == [["complexity", "main"]]
    assert bq.query("SELECT COUNT(*) AS n FROM leases")["n"][0] == 0  # released
    out = bq.cli("score", "--changed-only", "--all-years", "--json")
    assert out.exit_code == 0 and '"no_changes"' in out.stdout
    assert seen == [["complexity", "main"]]  # the no-op took none


def _spawn(bq: BigQueryHome, emulator: Any, home: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "BGGSCORE_HOME": str(home), "PYTHONPATH": str(REPO / "src")}
    env["PYTHONPATH"] += os.pathsep + str(REPO)
    return subprocess.Popen(
        [sys.executable, str(REPO / "tests/support/bq_cli.py"), emulator.rest_url,
         emulator.project_id, *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _second_home(bq: BigQueryHome, tmp_path: Path) -> Path:
    import shutil

    other = tmp_path / "second-machine"
    shutil.copytree(bq.home / "registry", other / "registry")
    return other


@pytest.mark.bigquery
def test_two_machines_never_score_one_stage_at_once(
    bq: BigQueryHome, emulator: Any, tmp_path: Path
) -> None:
    homes = [bq.home, _second_home(bq, tmp_path)]
    procs = [_spawn(bq, emulator, home, "score", "--all-years", "--json") for home in homes]
    outs = [proc.communicate(timeout=300) for proc in procs]
    codes = [proc.returncode for proc in procs]
    assert 0 in codes, outs
    for code, (_, err) in zip(codes, outs, strict=True):
        assert code == 0 or (code == 1 and "already running on" in err), err
    runs = bq.query(
        "SELECT started_at, finished_at FROM runs WHERE status = @s ORDER BY started_at".replace(
            "@s", "'success'"
        )  # test-side SQL; the product passes values as params
    ).to_dicts()
    assert len(runs) == codes.count(0)
    for earlier, later in itertools.pairwise(runs):
        assert earlier["finished_at"] <= later["started_at"]  # one after the other
    assert bq.query("SELECT COUNT(*) AS n FROM leases")["n"][0] == 0


@pytest.mark.bigquery
def test_a_killed_holder_is_taken_over_after_its_lease_expires(
    bq: BigQueryHome, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = _second_home(bq, tmp_path)
    # the other machine starts a real score and is killed once it holds the lease
    proc = _spawn(
        bq, emulator, other, "score", "--all-years", "--intervals", "200", "--batch-size", "20"
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # its run row goes with its first batch; a second batch's rows (the emulator shows
        # a script's rows before it commits) mean the first, with that row, committed
        if bq.query("SELECT COUNT(*) AS n FROM ml_predictions_landing")["n"][0] > 20:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"the other machine never took the lease: {proc.communicate()}")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert bq.query("SELECT COUNT(*) AS n FROM leases")["n"][0] == 2  # left behind
    out = bq.cli("score", "--all-years")
    assert out.exit_code == 1 and "already running on" in out.stderr
    later = datetime.now(timezone.utc) + timedelta(minutes=31)
    monkeypatch.setattr(lease_module, "_now", lambda: later)
    out = bq.cli("score", "--all-years", "--json")
    assert out.exit_code == 0, out.stderr
    runs = {r["status"] for r in bq.query("SELECT status FROM runs").to_dicts()}
    assert "running" not in runs and "failed" in runs
    landing = bq.query(
        "SELECT job_id, COUNT(*) AS n, COUNT(DISTINCT game_id) AS games "
        "FROM ml_predictions_landing GROUP BY job_id"
    ).to_dicts()
    assert all(row["n"] == row["games"] for row in landing)  # nothing duplicated in a job
