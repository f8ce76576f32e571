"""`bggscore similar`: cosine neighbours over the latest game embeddings of the current model.

Most tests use their own copy of the session's demo home (`embedded_home`: 2,000 synthetic
games, scored and embedded by `bggscore demo`); name look-ups use the real sample, whose
names are real (`embedded_sample_home`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from tests.scoring.tables import assert_one_line_error, game_ids, parse_json, read, sql

SCYTHE = 169786


def similar_json(cli, *args: str) -> dict[str, Any]:
    result = cli("similar", *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return parse_json(result.stdout)


def stored(home: Path) -> pl.DataFrame:
    """Each game's latest stored game embedding (what `similar` must search)."""
    return sql(
        home,
        "SELECT e.game_id, e.embedding FROM raw.game_embeddings AS e "
        "JOIN raw.bggscore_scoring_state AS s ON s.game_id = e.game_id AND s.job_id = e.job_id "
        "AND s.stage = 'game-embeddings' ORDER BY e.game_id",
    )


def brute_force(home: Path, game_id: int, top: int) -> list[tuple[int, float]]:
    frame = stored(home)
    ids = frame["game_id"].to_numpy()
    vectors = np.vstack(frame["embedding"].to_list())
    scores = vectors @ vectors[ids == game_id][0]
    order = [i for i in np.argsort(-scores, kind="stable") if ids[i] != game_id][:top]
    return [(int(ids[i]), float(scores[i])) for i in order]


def warehouse_state(home: Path) -> dict[str, int]:
    return {
        "state": len(read(home, "scoring_state")),
        "runs": len(read(home, "runs")),
        "game_embeddings": len(stored(home)),
    }


def most_rated(home: Path) -> int:
    return int(
        sql(
            home,
            "SELECT game_id FROM analytics.games_features WHERE year_published IS NOT NULL "
            "ORDER BY users_rated DESC, game_id LIMIT 1",
        )["game_id"][0]
    )


# -- answers ----------------------------------------------------------------------------------
def test_neighbours_are_the_nearest_stored_embeddings(cli, embedded_home: Path) -> None:
    game = most_rated(embedded_home)
    before = warehouse_state(embedded_home)
    data = similar_json(cli, str(game))
    assert data["game_id"] == game
    assert data["model"] == "game_embeddings=game_embeddings:1"
    assert len(data["neighbours"]) == 10  # the default --top
    expected = brute_force(embedded_home, game, 10)
    assert [n["game_id"] for n in data["neighbours"]] == [g for g, _ in expected]
    np.testing.assert_allclose(
        [n["similarity"] for n in data["neighbours"]], [s for _, s in expected], atol=1e-4
    )
    names = dict(
        sql(embedded_home, "SELECT game_id, name FROM analytics.games_features").iter_rows()
    )
    assert all(n["name"] == names[n["game_id"]] for n in data["neighbours"])
    assert all(isinstance(n["year_published"], int) for n in data["neighbours"])
    assert warehouse_state(embedded_home) == before  # a reader: nothing written

    three = similar_json(cli, str(game), "--top", "3")
    assert three["neighbours"] == data["neighbours"][:3]

    human = cli("similar", str(game), "--top", "3")
    assert human.exit_code == 0
    assert f"games like {data['name']} ({game})" in human.stdout
    assert all(n["name"] in human.stdout for n in data["neighbours"][:3])


def test_the_cached_matrix_follows_new_embeddings(cli, embedded_home: Path) -> None:
    game = most_rated(embedded_home)
    first = similar_json(cli, str(game), "--top", "5")
    assert list((embedded_home / "cache").glob("similar-*/vectors.npy"))
    assert similar_json(cli, str(game), "--top", "5") == first  # served from the cache

    # move one neighbour far away: new description and mechanics, then the changed-only chain
    moved = first["neighbours"][0]["game_id"]
    games = sql(embedded_home, f"SELECT * FROM analytics.games_features WHERE game_id = {moved}")
    edited = games.with_columns(
        description=pl.lit("A cooperative word game about trains, pirates and space bees."),
        mechanics=pl.lit(["Cooperative Game", "Pick-up and Deliver", "Bribery"]),
        categories=pl.lit(["Trains", "Pirates", "Word Game"]),
    )
    path = embedded_home.parent / "moved.parquet"
    edited.write_parquet(path)
    assert cli("warehouse", "load", str(path)).exit_code == 0
    run = cli("run", "--all-years", "--json")
    assert run.exit_code == 0, run.stderr

    after = similar_json(cli, str(game), "--top", "5")
    expected = brute_force(embedded_home, game, 5)
    assert [n["game_id"] for n in after["neighbours"]] == [g for g, _ in expected]
    assert after != first


def test_names_exact_case_insensitive_then_shortest_containing(
    cli, embedded_sample_home: Path
) -> None:
    assert similar_json(cli, "--name", "scythe")["game_id"] == SCYTHE
    assert similar_json(cli, "--name", "Scyth")["name"] == "Scythe"
    assert similar_json(cli, "--name", "camelot")["name"] == "Camelot"  # exact beats longer
    assert similar_json(cli, "--name", "catan")["name"] == "Catan: Big Box"  # the shortest


# -- errors: exit code, one line, nothing written ----------------------------------------------
@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (("999999999",), 2, ("game 999999999 has no embedding",)),
        (("--name", "Sxythe"), 2, ("no game named 'Sxythe'", "did you mean: Scythe")),
        (("--name", "zzqqxx"), 2, ("no game named 'zzqqxx'",)),
        ((str(SCYTHE), "--name", "Scythe"), 2, ("GAME_ID or --name",)),
        ((), 2, ("GAME_ID or --name",)),
    ],
)
def test_unknown_games_are_clear_errors(
    cli, embedded_sample_home: Path, args: tuple[str, ...], code: int, needles: tuple[str, ...]
) -> None:
    before = warehouse_state(embedded_sample_home)
    result = cli("similar", *args)
    assert result.exit_code == code
    assert_one_line_error(result.stderr, *needles)
    assert result.stdout == ""
    assert warehouse_state(embedded_sample_home) == before


def test_game_without_a_year_has_no_embedding(cli, embedded_home: Path) -> None:
    no_year = sorted(game_ids(embedded_home, "year_published IS NULL"))[0]
    result = cli("similar", str(no_year))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, f"game {no_year} has no embedding")


@pytest.mark.parametrize("top", ["0", "-2"])
def test_top_must_be_positive(cli, embedded_home: Path, top: str) -> None:
    result = cli("similar", str(most_rated(embedded_home)), "--top", top)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


def test_no_embeddings_yet_says_to_run_embed(cli, to_embed_home: Path) -> None:
    result = cli("similar", str(most_rated(to_embed_home)))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "no game embeddings yet", "run `bggscore embed` first")
    assert not (to_embed_home / "cache").exists() or not any((to_embed_home / "cache").iterdir())


def test_no_game_model_says_to_train_one(cli, home: Path, sample_path: Path) -> None:
    assert cli("warehouse", "load", str(sample_path)).exit_code == 0
    result = cli("similar", "--name", "Scythe")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "no game_embeddings models yet", "models train")


def test_names_are_shown_as_text_not_markup(cli, embedded_sample_home: Path) -> None:
    """Game names are data: brackets must show, and a closing tag must not crash rich."""
    games = sql(
        embedded_sample_home, f"SELECT * FROM analytics.games_features WHERE game_id = {SCYTHE}"
    )
    path = embedded_sample_home.parent / "renamed.parquet"
    games.with_columns(name=pl.lit("[redacted] Scythe [/b]")).write_parquet(path)
    assert cli("warehouse", "load", str(path)).exit_code == 0

    result = cli("similar", "--name", "[redacted]", "--top", "3")
    assert result.exit_code == 0, result.stderr
    assert "[redacted] Scythe [/b]" in " ".join(result.stdout.split())
