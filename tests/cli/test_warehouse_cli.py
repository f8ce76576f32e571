"""`bggscore warehouse ...`: exit codes first, then the state left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.factories import make_game_rows


def status(cli) -> dict:
    result = cli("warehouse", "status", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_init_is_safe_to_repeat(cli, home: Path) -> None:
    first = cli("warehouse", "init", "--json")
    assert first.exit_code == 0, first.stderr
    assert len(json.loads(first.stdout)["changed"]) == 9  # the embeddings table too
    again = cli("warehouse", "init", "--json")
    assert json.loads(again.stdout)["changed"] == []
    assert (home / "warehouse.duckdb").is_file()


def test_load_sample_then_status(cli, sample_path: Path) -> None:
    result = cli("warehouse", "load", str(sample_path), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["new"] == 1000
    data = status(cli)
    assert (data["games"], data["hashes"]) == (1000, 1000)
    again = json.loads(cli("warehouse", "load", str(sample_path), "--json").stdout)
    assert (again["new"], again["changed"], again["unchanged"]) == (0, 0, 1000)


def test_changing_one_mechanic_moves_exactly_that_game(
    cli, tmp_path: Path, sample_path: Path
) -> None:
    assert cli("warehouse", "load", str(sample_path)).exit_code == 0
    games = pl.read_parquet(sample_path)
    target = games["game_id"][7]
    edited = games.with_columns(
        pl.when(pl.col("game_id") == target)
        .then(pl.col("mechanics").list.concat(pl.lit(["Bribery"])))
        .otherwise(pl.col("mechanics").list.reverse())
        .alias("mechanics")
    )
    path = tmp_path / "edited.parquet"
    edited.write_parquet(path)
    result = json.loads(cli("warehouse", "load", str(path), "--json").stdout)
    assert (result["changed"], result["unchanged"]) == (1, 999)


def write(frame: pl.DataFrame, path: Path) -> Path:
    frame.write_parquet(path)
    return path


@pytest.mark.parametrize(
    ("make_file", "message"),
    [
        (lambda p: write(make_game_rows(2).drop("game_id"), p), "missing required column"),
        (
            lambda p: write(make_game_rows(2).with_columns(pl.col("game_id").cast(pl.String)), p),
            "column game_id has type String",
        ),
        (lambda p: write(pl.concat([make_game_rows(2)] * 2), p), "more than once"),
        (lambda p: (p.write_text("not parquet"), p)[1], "not a readable parquet file"),
        (lambda p: p.with_name("absent.parquet"), "not found"),
    ],
)
def test_bad_exports_write_nothing(cli, tmp_path: Path, make_file, message: str) -> None:
    assert cli("warehouse", "init").exit_code == 0
    result = cli("warehouse", "load", str(make_file(tmp_path / "games.parquet")))
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert status(cli)["games"] == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BGGSCORE_WAREHOUSE__ENGINE": "postgres"}, "warehouse.engine"),
        ({"BGGSCORE_WAREHOUSE__ENGINE": "bigquery"}, "features_project is not set"),
    ],
)
def test_bad_engine_settings(cli, monkeypatch: pytest.MonkeyPatch, env: dict, message: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = cli("warehouse", "status")
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unwritable_home(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    monkeypatch.setenv("BGGSCORE_HOME", str(blocker / "home"))
    result = cli("warehouse", "init")
    assert result.exit_code == 1
    assert "set BGGSCORE_HOME to a writable folder" in result.stderr


def test_locked_file_says_who_holds_it(cli, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("warehouse", "init").exit_code == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "time.sleep(30)",
            str(home / "warehouse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        monkeypatch.setenv("BGGSCORE_WAREHOUSE__LOCK_TIMEOUT", "0.5")
        started = time.monotonic()
        result = cli("warehouse", "init")  # a writer waits for the lock, then says who has it
        assert time.monotonic() - started < 10
        assert result.exit_code == 1
        assert f"locked by process {holder.pid}" in result.stderr
        # `status` only reads: it answers at once with who writes (tests/cli/test_busy.py)
        result = cli("warehouse", "status")
        assert result.exit_code == 0, result.stderr
        assert f"being written by process {holder.pid}" in result.stdout
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from bggscore.cli.main import app; "
        "from typer.testing import CliRunner; CliRunner().invoke(app, ['--help']); "
        "heavy = [m for m in ('sklearn', 'google.cloud.bigquery', 'duckdb', 'polars', "
        "'altair', 'vl_convert') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_version(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("bggscore ")


def test_warehouse_out_of_memory_is_one_line_saying_what_to_raise(cli, monkeypatch) -> None:
    import duckdb

    from bggscore.warehouse import duckdb_engine

    assert cli("warehouse", "init").exit_code == 0
    real_open = duckdb_engine.open_duckdb

    class Starved:  # the connection, except that queries run out of buffer pool
        def __init__(self, con: Any) -> None:
            self.con = con

        def sql(self, *args: Any, **kwargs: Any) -> Any:
            raise duckdb.OutOfMemoryException(
                "Out of Memory Error: failed to pin block of size 256.0 KiB (366.4 MiB/366.2 "
                "MiB used) Possible solutions: * Reducing the number of threads (SET threads=X)"
            )

        def __getattr__(self, name: str) -> Any:
            return getattr(self.con, name)

    monkeypatch.setattr(duckdb_engine, "open_duckdb", lambda *a, **k: Starved(real_open(*a, **k)))
    result = cli("warehouse", "status")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("error: the embedded warehouse ran out of memory (Out of Memory")
    assert "BGGSCORE_WAREHOUSE__MEMORY_LIMIT_MB" in lines[0]
    assert "Possible solutions" not in lines[0]


# -- warehouse migrate ----------------------------------------------------------------------
def old_layout(home: Path) -> None:
    """Put the home's state table back to schema version 1 (no stage partitions)."""
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        con.execute("ALTER TABLE raw.bggscore_scoring_state DROP COLUMN stage_partition")
    finally:
        con.close()


def test_migrate_carries_an_old_home_forward_once(cli, home: Path, sample_path: Path) -> None:
    from tests.support.output import assert_one_line_error
    from tests.support.state import sql

    assert cli("warehouse", "load", str(sample_path)).exit_code == 0
    assert cli("warehouse", "init").exit_code == 0
    current = json.loads(cli("warehouse", "migrate", "--json").stdout)
    assert (current["from_version"], current["steps"], current["migrated"]) == (2, [], False)

    old_layout(home)
    refused = cli("score", "--changed-only")
    assert refused.exit_code == 1
    assert_one_line_error(refused.stderr, "schema version 1", "bggscore warehouse migrate")
    init = cli("warehouse", "init")
    assert init.exit_code == 0 and "warehouse migrate" in init.stderr  # init says what to do

    planned = cli("warehouse", "migrate", "--dry-run", "--json")
    assert planned.exit_code == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert (plan["from_version"], plan["dry_run"], plan["migrated"]) == (1, True, False)
    assert any("ALTER TABLE" in (step["sql"] or "") for step in plan["steps"])
    columns = sql(home, "DESCRIBE raw.bggscore_scoring_state")["column_name"].to_list()
    assert "stage_partition" not in columns  # the dry run changed nothing

    done = json.loads(cli("warehouse", "migrate", "--json").stdout)
    assert (done["from_version"], done["to_version"], done["migrated"]) == (1, 2, True)
    again = json.loads(cli("warehouse", "migrate", "--json").stdout)
    assert again["steps"] == [] and again["from_version"] == 2
    text = cli("warehouse", "migrate")
    assert "already at schema version 2" in text.stdout


def test_migrate_without_a_warehouse_says_what_to_run(cli) -> None:
    from tests.support.output import assert_one_line_error

    result = cli("warehouse", "migrate")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "warehouse")
