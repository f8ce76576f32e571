"""`bggscore demo`: seed, train, score, embed and show neighbours, end to end; safe to repeat.

The first run is the session's `demo_run` (`bggscore demo --games 2000 --no-report --json` in a
fresh home, shared with the embed tests); each test here works on its own copy of that home.
The demo's second half (a day of changes and the report) is tested in tests/report.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from tests.conftest import EMBED_DEMO_GAMES, DemoRun
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import EMBEDDING_TABLES, game_ids, read, sql

MODELS = {
    "complexity:1",
    "hurdle:1",
    "rating:1",
    "users_rated:1",
    "text_embeddings:1",
    "game_embeddings:1",
}


def registry_files(home: Path) -> list[Path]:
    return sorted(p.relative_to(home) for p in (home / "registry").rglob("*"))


def embedding_rows(home: Path, logical: str) -> pl.DataFrame:
    return sql(home, f"SELECT * FROM {EMBEDDING_TABLES[logical]}")


def test_first_demo_run_trains_scores_embeds_and_shows_neighbours(demo_run: DemoRun) -> None:
    data = json.loads(demo_run.first.stdout)
    home = demo_run.home
    with_year = game_ids(home)

    assert data["games"] == data["new"] == EMBED_DEMO_GAMES
    assert set(data["models"]) == MODELS  # the geek rating uses the bayesian formula
    assert data["score"]["games_scored"] == len(with_year)
    assert data["embed"]["games_embedded"] == {"text": len(with_year), "game": len(with_year)}
    assert data["embed"]["skipped_reason"] is None
    assert data["embed"]["models"] == {
        "text_embeddings": "text_embeddings:1",
        "game_embeddings": "game_embeddings:1",
    }
    assert "models already registered" not in demo_run.first.stderr
    assert "Traceback" not in demo_run.first.stderr

    # the neighbours shown are the most rated game's, from the stored game embeddings
    top = sql(
        home,
        "SELECT game_id FROM analytics.games_features WHERE year_published IS NOT NULL "
        "ORDER BY users_rated DESC, game_id LIMIT 1",
    )["game_id"][0]
    similar = data["similar"]
    assert similar["game_id"] == top
    assert similar["model"] == "game_embeddings=game_embeddings:1"
    neighbours = similar["neighbours"]
    assert len(neighbours) == 5
    assert top not in {n["game_id"] for n in neighbours}
    scores = [n["similarity"] for n in neighbours]
    assert scores == sorted(scores, reverse=True)
    assert all(-1 <= s <= 1 for s in scores)
    assert similar["name"] in data["summary"]
    assert all(n["name"] in data["summary"] for n in neighbours)

    # state: one row per game and stage; every table filled by one job per command
    state = read(home, "scoring_state")
    assert state.group_by("stage").len().sort("stage").rows() == [
        ("complexity", len(with_year)),
        ("game-embeddings", len(with_year)),
        ("main", len(with_year)),
        ("text-embeddings", len(with_year)),
    ]
    for logical in EMBEDDING_TABLES:
        rows = embedding_rows(home, logical)
        assert set(rows["game_id"]) == with_year
        assert rows["job_id"].unique().to_list() == [data["embed"]["job_id"]]
    assert read(home, "runs")["status"].unique().to_list() == ["success"]


def test_second_demo_run_reuses_the_models(cli, embedded_home: Path) -> None:
    registry = registry_files(embedded_home)
    before = {logical: len(embedding_rows(embedded_home, logical)) for logical in EMBEDDING_TABLES}

    again = cli("demo", "--games", str(EMBED_DEMO_GAMES), "--no-report", "--json")
    assert again.exit_code == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert "models already registered" in again.stderr
    data = parse_json(again.stdout)
    with_year = game_ids(embedded_home)
    assert data["models"] == []
    assert data["new"] == 0 and data["changed"] == 0  # the same catalogue, loaded again
    assert data["score"]["games_scored"] == len(with_year)
    assert data["embed"]["games_embedded"] == {"text": len(with_year), "game": len(with_year)}
    assert data["similar"]["model"] == "game_embeddings=game_embeddings:1"
    assert "0 models trained" in data["summary"]

    # no new model version; embeddings appended under a new job; state still one per game
    assert registry_files(embedded_home) == registry
    for logical in EMBEDDING_TABLES:
        rows = embedding_rows(embedded_home, logical)
        assert len(rows) == before[logical] + len(with_year)
        assert rows.select("job_id", "game_id").is_duplicated().sum() == 0
    state = read(embedded_home, "scoring_state")
    assert len(state) == 4 * len(with_year)
    assert set(state.filter(pl.col("stage").str.ends_with("embeddings"))["job_id"]) == {
        data["embed"]["job_id"]
    }
    assert read(embedded_home, "runs")["status"].unique().to_list() == ["success"]


def test_demo_refuses_a_warehouse_that_is_not_the_embedded_one(
    cli, home: Path, monkeypatch
) -> None:
    monkeypatch.setenv("BGGSCORE_WAREHOUSE__FEATURES_PROJECT", "bgg-data-warehouse")
    monkeypatch.setenv("BGGSCORE_WAREHOUSE__ML_PROJECT", "bgg-predictive-models")
    result = cli("--engine", "bigquery", "demo", "--games", "50")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "duckdb")
    assert not (home / "warehouse.duckdb").exists()
    assert not (home / "registry").exists()
