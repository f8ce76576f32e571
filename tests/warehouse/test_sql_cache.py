"""The on-disk cache of rendered SQL: the same text as rendering, and never in the way."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bggscore.warehouse import sql
from bggscore.warehouse.detection_sql import detection_sql
from bggscore.warehouse.sql import TableRef, render

TABLES = {
    "games_features": TableRef("games_features", "analytics", "bgg-data-warehouse"),
    "game_features_hash": TableRef("game_features_hash", "staging", "bgg-data-warehouse"),
    "scoring_state": TableRef("bggscore_scoring_state", "raw", "bgg-predictive-models"),
}
QUERY = detection_sql("main")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache folder, and no renders remembered in this process."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LOCALAPPDATA", raising=False)
    sql._render.cache_clear()
    yield tmp_path / "cache" / "bggscore" / "sql"
    sql._render.cache_clear()


def new_process() -> None:
    """What a second CLI process sees: nothing in memory, the files on disk."""
    sql._render.cache_clear()


def transpiled(dialect: str, tables: dict[str, TableRef] = TABLES) -> str:
    return sql._transpile(QUERY, tuple(sorted(tables.items())), dialect)


@pytest.mark.parametrize("dialect", ["duckdb", "bigquery"])
def test_a_second_process_reads_the_render_without_sqlglot(
    folder: Path, dialect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = render(QUERY, TABLES, dialect)
    assert first == transpiled(dialect)
    assert len(list(folder.glob("*.sql"))) == 1

    new_process()
    monkeypatch.setattr(sql, "_transpile", lambda *a: pytest.fail("rendered again"))
    assert render(QUERY, TABLES, dialect) == first


def test_each_input_has_its_own_file(folder: Path) -> None:
    other = {**TABLES, "scoring_state": TableRef("state", "ml", "other-project")}
    outputs = {
        render(QUERY, TABLES, "duckdb"),
        render(QUERY, TABLES, "bigquery"),
        render(QUERY, other, "bigquery"),
        render(detection_sql("complexity"), TABLES, "duckdb"),
    }
    assert len(outputs) == 4 and len(list(folder.glob("*.sql"))) == 4
    assert "`other-project`.`ml`.`state`" in render(QUERY, other, "bigquery")


def test_a_file_that_is_not_the_render_it_names_is_ignored_and_replaced(folder: Path) -> None:
    expected = render(QUERY, TABLES, "duckdb")
    (path,) = folder.glob("*.sql")
    for bad in (
        "SELECT 1\n",  # no header
        f"-- {sql.CACHE_FORMAT} {'0' * 64}\nSELECT 1\n",  # another key's header
        path.read_text(encoding="utf-8")[:-40],  # cut short
        b"\xff\xfe not text",
    ):
        if isinstance(bad, bytes):
            path.write_bytes(bad)
        else:
            path.write_text(bad, encoding="utf-8")
        new_process()
        assert render(QUERY, TABLES, "duckdb") == expected
        new_process()
        assert render(QUERY, TABLES, "duckdb") == expected  # and the file is whole again


def test_an_unusable_cache_folder_only_means_rendering(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert render(QUERY, TABLES, "duckdb") == transpiled("duckdb")
    assert blocker.is_file()

    new_process()
    monkeypatch.setattr(sql, "cache_folder", lambda: 1 / 0)  # any failure at all
    assert render(QUERY, TABLES, "duckdb") == transpiled("duckdb")


def test_no_temporary_files_are_left_behind(folder: Path) -> None:
    for stage in ("complexity", "main", "text-embeddings", "game-embeddings"):
        render(detection_sql(stage), TABLES, "duckdb")
    assert sorted(p.suffix for p in folder.iterdir()) == [".sql"] * 4
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]


def test_statements_over_one_off_staging_tables_are_not_kept(folder: Path) -> None:
    """BigQuery's staging tables have a new name for every write: keeping those renders
    would only fill the folder. DuckDB's are the same every time, and kept."""
    statement = "SELECT b.game_id FROM bggscore_stage_0 AS b"
    one_off = {**TABLES, "bggscore_stage_0": TableRef("_bggscore_stage_1234abcd_0", "raw", "p")}
    assert "_bggscore_stage_1234abcd_0" in render(statement, one_off, "bigquery")
    assert list(folder.glob("*.sql")) == []
    same = {**TABLES, "bggscore_stage_0": TableRef("bggscore_stage_0")}
    assert render(statement, same, "duckdb") == 'SELECT b.game_id FROM "bggscore_stage_0" AS b'
    assert len(list(folder.glob("*.sql"))) == 1


def test_invalid_sql_still_fails_and_is_not_kept(folder: Path) -> None:
    with pytest.raises(ValueError, match="exactly one statement"):
        render("SELECT 1 FROM games_features; DROP TABLE scoring_state", TABLES, "duckdb")
    with pytest.raises(KeyError, match="unknown logical table"):
        render("SELECT 1 FROM landing_history", TABLES, "duckdb")
    assert not folder.exists() or list(folder.glob("*.sql")) == []


def test_the_key_covers_the_versions_and_this_module(monkeypatch: pytest.MonkeyPatch) -> None:
    versions = sql._versions()
    assert "sqlglot=" in versions and "bggscore=" in versions
    before = sql._cache_file(QUERY, tuple(sorted(TABLES.items())), "duckdb")
    monkeypatch.setattr(sql, "_versions", lambda: versions + "|a newer sqlglot")
    after = sql._cache_file(QUERY, tuple(sorted(TABLES.items())), "duckdb")
    assert before is not None and after is not None and before != after


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_render_others_could_have_written_is_never_used(folder: Path) -> None:
    path = sql._cache_file(QUERY, tuple(sorted(TABLES.items())), "duckdb")
    assert path is not None and path.parent == folder
    render(QUERY, TABLES, "duckdb")
    assert path.exists() and folder.stat().st_mode & 0o777 == 0o700
    # a planted render, in a file group and others may write
    path.write_text(f"-- {sql.CACHE_FORMAT} {path.stem}\nSELECT 'planted'\n", encoding="utf-8")
    path.chmod(0o666)
    new_process()
    rendered = render(QUERY, TABLES, "duckdb")
    assert "planted" not in rendered
    assert path.stat().st_mode & 0o777 == 0o600  # replaced by a private render of our own
    assert path.read_text(encoding="utf-8").endswith(f"{rendered}\n")

    planted = f"-- {sql.CACHE_FORMAT} {path.stem}\nSELECT 'planted'\n"
    path.write_text(planted, encoding="utf-8")  # private this time: used as it is
    new_process()
    assert render(QUERY, TABLES, "duckdb") == "SELECT 'planted'"
    folder.chmod(0o777)  # but not from a folder others may write to
    new_process()
    assert "planted" not in render(QUERY, TABLES, "duckdb")
    assert path.read_text(encoding="utf-8") == planted  # nor written into it
