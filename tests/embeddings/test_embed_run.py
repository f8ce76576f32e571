"""Embeddings on the REAL 1,000-game sample: plausible neighbours, and exact incremental updates.

The home (`embedded_sample_home`) holds the sample, scored with the demo-trained outcome
models; its text and game embedding models were trained ON THE SAMPLE (`--min-count 2`, 32
dimensions: 1,000 games are few) and every game is embedded. Registry versions: the demo's
text and game models are version 1, the sample's version 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tests.conftest import SAMPLE_GAME_TRAINING, SAMPLE_TEXT_TRAINING
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import game_ids, read, sql

SCYTHE = 169786
FOR_SALE = 172
IN_RANGE = "year_published >= 2024 AND year_published < 2029"
TEXT_V2 = "text_embeddings=text_embeddings:2"
GAME_V2 = "game_embeddings=game_embeddings:2"


# -- helpers ----------------------------------------------------------------------------------
def ok_json(cli, *args: str) -> dict[str, Any]:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return parse_json(result.stdout)


def detect(cli, stage: str, *args: str) -> dict[str, Any]:
    """The one stage's part of `detect-changes --stage STAGE --json`."""
    [found] = ok_json(cli, "detect-changes", "--stage", stage, *args)["stages"]
    return found


def embedding_rows(home: Path, table: str) -> pl.DataFrame:
    return sql(home, f"SELECT * FROM raw.{table} ORDER BY game_id, created_ts")


def latest_state(home: Path, stage: str) -> pl.DataFrame:
    return read(home, "scoring_state").filter(pl.col("stage") == stage).sort("game_id")


def reload_game(cli, home: Path, game_id: int, **columns: Any) -> None:
    """Re-load one game through `bggscore warehouse load` with some columns replaced."""
    game = sql(home, f"SELECT * FROM analytics.games_features WHERE game_id = {game_id}")
    edited = game.with_columns(**columns)
    path = home.parent / f"edited-{game_id}.parquet"
    edited.write_parquet(path)
    loaded = ok_json(cli, "warehouse", "load", str(path))
    assert loaded["changed"] == 1


def tags(sample_path: Path) -> dict[int, set[str]]:
    """Each game's mechanics and categories."""
    frame = pl.read_parquet(sample_path, columns=["game_id", "mechanics", "categories"])
    return {
        row["game_id"]: {f"m:{m}" for m in row["mechanics"] or []}
        | {f"c:{c}" for c in row["categories"] or []}
        for row in frame.iter_rows(named=True)
    }


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


# -- plausibility -----------------------------------------------------------------------------
def test_neighbours_of_famous_games_share_mechanics_and_categories(
    cli, embedded_sample_home: Path, sample_path: Path
) -> None:
    by_game = tags(sample_path)

    def overlap_ratio(game_id: int) -> float:
        """Mean overlap with the 10 nearest games over the mean overlap with all others."""
        data = ok_json(cli, "similar", str(game_id))
        assert data["model"] == GAME_V2
        mine = by_game[game_id]
        near = np.mean([jaccard(mine, by_game[n["game_id"]]) for n in data["neighbours"]])
        rest = np.mean([jaccard(mine, other) for g, other in by_game.items() if g != game_id])
        return float(near / rest)

    scythe = ok_json(cli, "similar", "--name", "Scythe")
    assert scythe["game_id"] == SCYTHE and len(scythe["neighbours"]) == 10
    assert overlap_ratio(SCYTHE) > 2

    most_rated = (
        pl.read_parquet(sample_path, columns=["game_id", "users_rated"])
        .sort("users_rated", descending=True)["game_id"]
        .head(10)
        .to_list()
    )
    ratios = [overlap_ratio(game_id) for game_id in most_rated]
    assert np.mean(ratios) > 2, ratios
    assert sum(r > 1.5 for r in ratios) >= 8, ratios


# -- incremental updates ------------------------------------------------------------------------
def test_changed_description_reembeds_that_games_text_then_its_game_embedding(
    cli, embedded_sample_home: Path
) -> None:
    home = embedded_sample_home
    text_before = embedding_rows(home, "description_embeddings")
    game_before = embedding_rows(home, "game_embeddings")
    reload_game(
        cli,
        home,
        FOR_SALE,
        description=pl.col("description") + " Players bid coins for castles and space stations.",
    )

    text = detect(cli, "text-embeddings", "--all-years")
    assert text["game_ids"] == [FOR_SALE]
    assert text["by_reason"] == {"new": 0, "features": 1, "model": 0, "upstream": 0}
    game = detect(cli, "game-embeddings", "--all-years")
    assert game["game_ids"] == [FOR_SALE]
    assert game["by_reason"]["features"] == 1

    scored = ok_json(cli, "score", "--changed-only", "--all-years")
    assert scored["stages"] == {"complexity": 1, "main": 1}
    embedded = ok_json(cli, "embed", "--changed-only", "--all-years")
    assert embedded["games_embedded"] == {"text": 1, "game": 1}
    job = embedded["job_id"]

    # exactly one new row per table, for that game; its text vector moved
    for table, before in [
        ("description_embeddings", text_before),
        ("game_embeddings", game_before),
    ]:
        after = embedding_rows(home, table)
        assert len(after) == len(before) + 1
        new = after.filter(pl.col("job_id") == job)
        assert new["game_id"].to_list() == [FOR_SALE]
        old = before.filter(pl.col("game_id") == FOR_SALE)["embedding"].to_list()[0]
        assert not np.allclose(new["embedding"].to_list()[0], old)
    state = latest_state(home, "game-embeddings").filter(pl.col("game_id") == FOR_SALE)
    complexity_job = latest_state(home, "complexity").filter(pl.col("game_id") == FOR_SALE)[
        "job_id"
    ][0]
    assert complexity_job == scored["job_id"]
    assert state["upstream_key"][0] == f"complexity:{complexity_job}|text-embeddings:{job}"

    # everything is up to date again
    assert not ok_json(cli, "detect-changes", "--all-years")["changed"]
    again = ok_json(cli, "embed", "--changed-only", "--all-years")
    assert again["skipped_reason"] == "no_changes"


def test_changed_mechanic_reembeds_the_game_embedding_but_not_the_text(
    cli, embedded_sample_home: Path
) -> None:
    home = embedded_sample_home
    text_before = embedding_rows(home, "description_embeddings")
    reload_game(cli, home, SCYTHE, mechanics=pl.col("mechanics").list.concat(pl.lit(["Bribery"])))

    assert detect(cli, "text-embeddings", "--all-years")["count"] == 0
    game = detect(cli, "game-embeddings", "--all-years")
    assert game["game_ids"] == [SCYTHE]
    assert game["by_reason"]["features"] == 1

    assert ok_json(cli, "score", "--changed-only", "--all-years")["games_scored"] == 1
    embedded = ok_json(cli, "embed", "--changed-only", "--all-years")
    assert embedded["games_embedded"] == {"text": 0, "game": 1}
    assert embedding_rows(home, "description_embeddings").equals(text_before)
    new = embedding_rows(home, "game_embeddings").filter(pl.col("job_id") == embedded["job_id"])
    assert new["game_id"].to_list() == [SCYTHE]


def test_new_text_model_version_reembeds_every_game_and_the_game_model_must_be_retrained(
    cli, embedded_sample_home: Path
) -> None:
    home = embedded_sample_home
    in_range, everything = game_ids(home, IN_RANGE), game_ids(home)
    assert 0 < len(in_range) < len(everything) == 1000

    trained = ok_json(cli, "models", "train", "--outcome", "text_embeddings", *SAMPLE_TEXT_TRAINING)
    assert [t["model"] for t in trained["trained"]] == ["text_embeddings:3"]

    # every in-range game, for the model reason; then the rest of the catalogue
    text = detect(cli, "text-embeddings")
    assert set(text["game_ids"]) == in_range
    assert text["by_reason"] == {"new": 0, "features": 0, "model": len(in_range), "upstream": 0}
    first = ok_json(cli, "embed", "--kind", "text", "--changed-only")
    assert first["games_embedded"] == {"text": len(in_range)}
    rest = ok_json(cli, "embed", "--kind", "text", "--changed-only", "--all-years")
    assert rest["games_embedded"] == {"text": len(everything) - len(in_range)}
    text_state = latest_state(home, "text-embeddings")
    assert set(text_state["model_key"]) == {"text_embeddings=text_embeddings:3"}
    v3 = embedding_rows(home, "description_embeddings").filter(pl.col("embedding_version") == 3)
    assert sorted(v3["game_id"]) == sorted(everything)

    # the game model was trained on version 2's vector space: it refuses, writing nothing
    game_rows, runs = len(embedding_rows(home, "game_embeddings")), len(read(home, "runs"))
    for kind in ("game", "all"):
        refused = cli("embed", "--kind", kind, "--changed-only", "--all-years")
        assert refused.exit_code == 1
        assert_one_line_error(
            refused.stderr,
            "game_embeddings:2 was trained on text embeddings from text_embeddings:2",
            "text_embeddings:3",
            "bggscore models train --outcome game_embeddings",
        )
    assert len(embedding_rows(home, "game_embeddings")) == game_rows
    assert len(read(home, "runs")) == runs
    assert ok_json(cli, "similar", str(SCYTHE))["model"] == GAME_V2  # readers stay on v2

    retrained = ok_json(
        cli, "models", "train", "--outcome", "game_embeddings", *SAMPLE_GAME_TRAINING
    )
    assert [t["model"] for t in retrained["trained"]] == ["game_embeddings:3"]
    registration = home / "registry/game_embeddings/game_embeddings/v3/registration.json"
    assert json.loads(registration.read_text())["training"]["text_model"] == "text_embeddings:3"

    # readers never mix versions: nothing from the new game model yet
    missing = cli("similar", str(SCYTHE))
    assert missing.exit_code == 2  # like `score --stage main` before complexity
    assert_one_line_error(missing.stderr, "no game embeddings yet", "bggscore embed")

    game = detect(cli, "game-embeddings", "--all-years")
    assert set(game["game_ids"]) == everything
    assert game["by_reason"]["model"] == len(everything)
    embedded = ok_json(cli, "embed", "--changed-only", "--all-years")
    assert embedded["games_embedded"] == {"text": 0, "game": len(everything)}
    assert set(latest_state(home, "game-embeddings")["model_key"]) == {
        "game_embeddings=game_embeddings:3"
    }
    assert ok_json(cli, "similar", "--name", "Scythe")["model"] == (
        "game_embeddings=game_embeddings:3"
    )
    assert not ok_json(cli, "detect-changes", "--all-years")["changed"]
