"""The home's lock: one writer at a time, across real processes; released when a holder dies.

Another process holds the lock through `bggscore.locking.pipeline_lock` itself
(`tests.conftest.LockHolder`, a real subprocess), so these tests exercise the OS lock,
not a mock of it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from tests.conftest import LockHolder
from tests.support.output import assert_one_line_error
from tests.support.state import read

from bggscore.errors import LockedError, WarehouseError
from bggscore.locking import LOCK_NAME, pipeline_lock


def holder_info(home: Path) -> dict:
    text = (home / LOCK_NAME).read_text(encoding="utf-8")
    return json.loads(text) if text else {}


def test_the_lock_is_exclusive_across_processes_and_names_its_holder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with LockHolder(home, 30, command="score") as holder:
        info = holder_info(home)
        assert info["pid"] == holder.process.pid and info["command"] == "score"
        started = time.monotonic()
        with pytest.raises(LockedError) as caught, pipeline_lock(home, "run"):
            pytest.fail("entered a lock another process holds")
        assert time.monotonic() - started < 2  # at once, no waiting
        message = str(caught.value)
        assert f"bggscore score (pid {holder.process.pid}, since {info['since']})" in message
        assert "already running" in message and "--wait" in message
        assert caught.value.exit_code == 1
        assert holder_info(home)["pid"] == holder.process.pid  # the refusal changed nothing


def test_wait_queues_until_the_holder_finishes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with LockHolder(home, 1.5):
        started = time.monotonic()
        with pipeline_lock(home, "run", wait=True):
            assert time.monotonic() - started >= 1.2  # only once the holder let go
            info = holder_info(home)
            assert (info["pid"], info["command"]) == (os.getpid(), "run")


def test_wait_with_a_timeout_gives_up(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with LockHolder(home, 30):
        started = time.monotonic()
        with (
            pytest.raises(LockedError, match="already running"),
            pipeline_lock(home, "run", wait=True, timeout=0.6),
        ):
            pytest.fail("entered a lock another process holds")
        assert 0.5 <= time.monotonic() - started < 5


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with LockHolder(home, 60) as holder:
        os.kill(holder.process.pid, signal.SIGKILL)
        holder.process.wait(timeout=10)
        assert holder_info(home)["pid"] == holder.process.pid  # stale info stays behind
        started = time.monotonic()
        with pipeline_lock(home, "run"):
            assert time.monotonic() - started < 2
            assert holder_info(home)["pid"] == os.getpid()


def test_released_after_the_block_even_on_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(RuntimeError), pipeline_lock(home, "score"):
        assert holder_info(home)["command"] == "score"
        raise RuntimeError("boom")
    assert holder_info(home) == {}  # cleared on release
    with pipeline_lock(home, "embed"):
        assert holder_info(home)["command"] == "embed"


def test_the_same_process_cannot_take_it_twice(tmp_path: Path) -> None:
    """Commands must take the lock once (`run` calls score and embed inside one lock)."""
    home = tmp_path / "home"
    with pipeline_lock(home, "run"):
        with pytest.raises(LockedError), pipeline_lock(home, "score"):
            pytest.fail("entered the lock twice")
        assert holder_info(home)["command"] == "run"


def test_a_home_that_cannot_hold_the_lock_is_a_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("a file, not a folder")
    with (
        pytest.raises(WarehouseError, match="cannot create the lock") as caught,
        pipeline_lock(home, "run"),
    ):
        pytest.fail("locked a home that is a file")
    assert "BGGSCORE_HOME" in str(caught.value)


# -- every writing command takes it ------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ("score", "--all-years"),
        ("embed", "--all-years"),
        ("run", "--all-years"),
        ("demo", "--games", "50"),
    ],
    ids=["score", "embed", "run", "demo"],
)
def test_writing_commands_exit_at_once_while_another_holds_the_lock(
    cli, to_embed_home: Path, args: tuple[str, ...]
) -> None:
    before = {t: len(read(to_embed_home, t)) for t in ("scoring_state", "runs", "games_features")}
    registry = sorted((to_embed_home / "registry").rglob("*"))
    with LockHolder(to_embed_home, 30, command="run") as holder:
        started = time.monotonic()
        result = cli(*args)
        assert time.monotonic() - started < 5
        assert holder.process.poll() is None
    assert result.exit_code == 1
    line = assert_one_line_error(result.stderr, "bggscore run (pid", "is already running")
    # only `run` can queue, so only `run` is told about --wait
    assert ("--wait" in line) == (args[0] == "run")
    assert {t: len(read(to_embed_home, t)) for t in before} == before
    assert sorted((to_embed_home / "registry").rglob("*")) == registry
