"""Problems of the user's files or machine are reported as such, never as bggscore's bugs:
a truncated or damaged warehouse file, a file that cannot be read, memory or disk exhausted.
One line saying what is wrong and what to do, exit 1, and never "unexpected ... report it".

And `bggscore warehouse check`, which finds them: the warehouse file read whole (DuckDB checks
every block), bggscore's tables and columns, state against outputs, and the registry.
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from tests.support.output import assert_one_line_error, parse_json
from tests.support.permissions import run_unprivileged, shared_folder
from tests.support.state import files, table_counts

BLOCK = 262_144  # DuckDB's block size; blocks start after three 4 KiB headers
HEADERS = 3 * 4096


def assert_environment_error(stderr: str, *needles: str) -> str:
    line = assert_one_line_error(stderr, *needles)
    assert "unexpected" not in line and "report it" not in line, line
    return line


def data_block(home: Path, table: str) -> int:
    """Where a block holding only this table's data starts in the file (from DuckDB's
    storage info), so that damaging it damages this table alone."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        tables = con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables()"
        ).fetchall()
        users: dict[int, set[str]] = {}
        for (name,) in tables:
            blocks = con.execute(
                f"SELECT block_id FROM pragma_storage_info('{name}') "
                "WHERE persistent AND block_id >= 0"
            ).fetchall()
            for (block,) in blocks:
                users.setdefault(int(block), set()).add(name)
    finally:
        con.close()
    own = sorted(block for block, names in users.items() if names == {table})
    assert own, f"no block of {table} alone"
    return HEADERS + own[0] * BLOCK


def damage(path: Path, offset: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset + 64)
        handle.write(b"\xff" * 4096)


# -- a damaged warehouse file ---------------------------------------------------------------------
@pytest.mark.parametrize("command", [("detect-changes",), ("warehouse", "status"), ("score",)])
def test_a_truncated_warehouse_says_what_to_do(cli, embedded_home: Path, command) -> None:  # type: ignore[no-untyped-def]
    path = embedded_home / "warehouse.duckdb"
    with open(path, "r+b") as handle:
        handle.truncate(100_000)
    result = cli(*command)
    assert result.exit_code == 1
    assert_environment_error(
        result.stderr, f"the warehouse file {path} is damaged", "restore it from a backup"
    )
    assert path.stat().st_size == 100_000  # nothing written


def test_a_damaged_block_says_what_to_do_and_check_names_the_table(
    cli, embedded_home: Path
) -> None:
    path = embedded_home / "warehouse.duckdb"
    damage(path, data_block(embedded_home, "raw.bggscore_scoring_state"))
    before = path.read_bytes()
    detect = cli("detect-changes")
    assert detect.exit_code == 1
    assert_environment_error(
        detect.stderr,
        f"the warehouse file {path} is damaged (Corrupt database file",
        "restore it from a backup",
        "`bggscore warehouse check` lists the damaged tables",
    )
    check = cli("warehouse", "check", "--json")
    assert check.exit_code == 1
    findings = parse_json(check.stdout)["findings"]
    damaged = [f for f in findings if f["area"] == "file"]
    assert [f["subject"] for f in damaged] == ["raw.bggscore_scoring_state"]
    assert damaged[0]["problem"].startswith("is damaged: Corrupt database file")
    assert_one_line_error(check.stderr, "problem(s) found")
    assert path.read_bytes() == before  # the check only reads


def test_check_on_a_file_that_is_no_database(cli, embedded_home: Path) -> None:
    path = embedded_home / "warehouse.duckdb"
    path.write_bytes(b"not a database" * 100)
    result = cli("warehouse", "check")
    assert result.exit_code == 1
    (finding,) = result.stdout.strip().splitlines()
    assert finding.startswith(f"file: {path} cannot be opened: the warehouse file {path} is ")
    assert "not a valid DuckDB database file" in finding


# -- files that cannot be read, memory and disk -------------------------------------------------
def test_an_unreadable_registry_file_is_one_line(demo_run) -> None:  # type: ignore[no-untyped-def]
    with shared_folder() as root:
        home = root / "home"
        shutil.copytree(demo_run.home, home)
        for path in [home, *home.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)
        registration = home / "registry" / "rating" / "rating" / "v1" / "registration.json"
        registration.chmod(0o000)
        result = run_unprivileged(home, "models", "list")
    assert result.returncode == 1
    assert_environment_error(
        result.stderr,
        f"cannot read or write {registration}: permission denied",
        "check the permissions of the file and its folder",
    )


def test_running_out_of_memory_says_what_to_lower(
    cli, embedded_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bggscore.tasks import detect

    def exhausted(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(detect, "detect_stages", exhausted)
    result = cli("detect-changes")
    assert result.exit_code == 1
    assert_environment_error(result.stderr, "ran out of memory", "lower --batch-size")


def test_a_full_disk_is_one_line_and_leaves_no_file(
    cli, embedded_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bggscore.tasks import score

    out = tmp_path / "landing.parquet"

    def full(self: object, frame: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(out))

    monkeypatch.setattr(score.ParquetCopy, "add", full)
    before = table_counts(embedded_home)
    result = cli("score", "--all-years", "--output", str(out), "--no-upload")
    assert result.exit_code == 1
    assert_environment_error(result.stderr, f"cannot read or write {out}: the disk is full")
    assert not out.exists() and table_counts(embedded_home) == before


# -- warehouse check ------------------------------------------------------------------------------
def test_check_passes_on_a_whole_home_and_writes_nothing(cli, embedded_home: Path) -> None:
    before = (table_counts(embedded_home), files(embedded_home))
    result = cli("warehouse", "check", "--json")
    assert result.exit_code == 0, result.stderr
    data = parse_json(result.stdout)
    assert data["command"] == "warehouse check" and data["ok"] is True
    assert data["findings"] == []
    assert data["checked"] == {"tables": 9, "consistency checks": 7, "model versions": 6}
    human = cli("warehouse", "check")
    assert human.exit_code == 0
    assert human.stdout.startswith(f"ok: {embedded_home / 'warehouse.duckdb'} and ")
    assert (table_counts(embedded_home), files(embedded_home)) == before


def test_check_lists_each_problem_on_its_own_line(cli, embedded_home: Path) -> None:
    con = duckdb.connect(str(embedded_home / "warehouse.duckdb"))
    try:
        con.execute("DROP TABLE raw.game_embeddings")
        con.execute("ALTER TABLE raw.complexity_predictions DROP COLUMN predicted_complexity_raw")
        con.execute("ALTER TABLE raw.bggscore_runs ALTER COLUMN games TYPE VARCHAR")
        # main's state says scored, its landing rows are gone
        lost = con.execute(
            "SELECT MIN(game_id) FROM raw.bggscore_scoring_state WHERE stage = 'main'"
        ).fetchone()[0]  # type: ignore[index]
        con.execute("DELETE FROM raw.ml_predictions_landing WHERE game_id = ?", [lost])
        # a game twice in the hash table
        hashes = "staging.game_features_hash"
        con.execute(f"INSERT INTO {hashes} SELECT * FROM {hashes} LIMIT 1")
    finally:
        con.close()
    registry = embedded_home / "registry"
    assert cli("models", "alias", "rating:1", "gold").exit_code == 0
    (registry / "rating" / "rating" / "v1" / "registration.json").unlink()  # gold dangles
    artifact = registry / "complexity" / "complexity" / "v1" / "artifact.joblib"
    artifact.write_bytes(artifact.read_bytes()[:-1] + b"\0")  # its sha256 no longer matches

    result = cli("warehouse", "check")
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    expected = [
        "tables: raw.game_embeddings is missing (run `bggscore warehouse init`)",
        "tables: raw.complexity_predictions lacks column(s) predicted_complexity_raw",
        "tables: raw.bggscore_runs column games is VARCHAR, not BIGINT",
        f"state: main has 1 game recorded as scored with no row in raw.ml_predictions_landing "
        f"for the job recorded (e.g. game {lost})",
        "state: staging.game_features_hash holds 1 key more than once",
        "registry: complexity:1 ",
        "registry: rating:1 has artifact.joblib but no registration.json",
        "registry: rating@gold points to rating:1, which has no registration.json",
    ]
    for start in expected:
        assert sum(line.startswith(start) for line in lines) == 1, (start, lines)
    assert len(lines) == len(expected), lines
    line = assert_one_line_error(result.stderr, f"{len(expected)} problem(s) found")
    assert "unexpected" not in line
    data = parse_json(cli("warehouse", "check", "--json").stdout)
    assert data["ok"] is False and len(data["findings"]) == len(expected)
    assert {f["area"] for f in data["findings"]} == {"tables", "state", "registry"}
    sha = next(f for f in data["findings"] if f["subject"] == "complexity:1")
    assert "sha256" in sha["problem"]
    json.dumps(data)  # plain JSON
