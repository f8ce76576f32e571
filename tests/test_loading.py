"""Loading an export into the embedded warehouse keeps hashes and last_updated right."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from tests.factories import make_game_rows

from bggscore.errors import InputError
from bggscore.settings import load_settings
from bggscore.warehouse import open_warehouse
from bggscore.warehouse.load import check_export, load_games, read_export

DAY1 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAY2 = datetime(2026, 1, 2, tzinfo=timezone.utc)


@pytest.fixture
def wh(home: Path):
    with open_warehouse(load_settings(), create=True) as warehouse:
        warehouse.ensure_schema()
        yield warehouse


def test_reload_moves_only_changed_games(wh) -> None:
    games = make_game_rows(5)
    first = load_games(wh, games, now=DAY1)
    assert (first.new, first.changed, first.unchanged) == (5, 0, 0)

    edited = games.with_columns(
        pl.when(pl.col("game_id") == 3)
        .then(pl.col("mechanics").list.concat(pl.lit(["Trading"])))
        .otherwise(pl.col("mechanics"))
        .alias("mechanics"),
        pl.col("families").list.reverse(),  # order only: no change
        pl.col("users_rated") + 100,  # stats only: no change
    )
    second = load_games(wh, edited, now=DAY2)
    assert (second.new, second.changed, second.unchanged) == (0, 1, 4)

    hashes = wh.read_hashes().sort("game_id")
    moved = hashes.filter(pl.col("last_updated") == DAY2)["game_id"].to_list()
    assert moved == [3]
    stats = wh.query("SELECT users_rated FROM games_features WHERE game_id = @id", {"id": 1})
    assert stats["users_rated"][0] == games["users_rated"][0] + 100


def test_export_checks() -> None:
    games = make_game_rows(3)
    with pytest.raises(InputError, match="missing required column"):
        check_export(games.drop("game_id"), "x.parquet")
    with pytest.raises(InputError, match="has type String, expected INT64"):
        check_export(games.with_columns(pl.col("game_id").cast(pl.String)), "x.parquet")
    with pytest.raises(InputError, match="more than once"):
        check_export(pl.concat([games, games.head(1)]), "x.parquet")
    extra = games.with_columns(pl.lit(1).alias("something_else"))
    assert "something_else" not in check_export(extra, "x.parquet").columns


def test_non_parquet_and_missing_files(tmp_path: Path) -> None:
    text = tmp_path / "games.parquet"
    text.write_text("game_id,name\n1,x\n")
    with pytest.raises(InputError, match="not a readable parquet"):
        read_export(text)
    with pytest.raises(InputError, match="not found"):
        read_export(tmp_path / "nope.parquet")


def test_real_sample_loads(wh, sample_path: Path) -> None:
    result = load_games(wh, read_export(sample_path), now=DAY1)
    assert (result.games, result.new) == (1000, 1000)
    assert wh.count_rows("games_features") == 1000
    assert wh.count_rows("game_features_hash") == 1000
    again = load_games(wh, read_export(sample_path), now=DAY2)
    assert again.unchanged == 1000
    assert wh.read_hashes()["last_updated"].unique().to_list() == [DAY1]
