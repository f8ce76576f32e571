"""Factories for test data: small, deterministic frames named ``make_*``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from bggscore.warehouse.schemas import (
    COMPLEXITY_PREDICTIONS,
    GAME_EMBEDDINGS,
    GAMES_FEATURES,
    ML_PREDICTIONS_LANDING,
    SCORING_STATE,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
CATEGORIES = ["Card Game", "Fantasy", "Economic", "Wargame"]
MECHANICS = ["Dice Rolling", "Hand Management", "Worker Placement", "Set Collection", "Trading"]


def make_games(n: int, *, start_id: int = 1, null_year_every: int = 7) -> pl.DataFrame:
    """``n`` games_features rows with ids ``start_id..``; years cycle 2019-2026 and every
    ``null_year_every``-th game has no year (0 = never)."""
    rows = []
    for i in range(n):
        game_id = start_id + i
        unknown_year = null_year_every and (i + 1) % null_year_every == 0
        rows.append(
            {
                "game_id": game_id,
                "name": f"Game {game_id}",
                "year_published": None if unknown_year else float(2019 + i % 8),
                "bayes_average": 5.5 + (i % 10) / 10,
                "average_rating": 6.0 + (i % 7) / 5,
                "average_weight": 1.5 + (i % 5) / 2,
                "users_rated": 20 + 13 * i,
                "hurdle": int(20 + 13 * i >= 25),
                "geek_rating": 5.5 + (i % 10) / 10,
                "complexity": 1.5 + (i % 5) / 2,
                "rating": 6.0 + (i % 7) / 5,
                "log_users_rated": 3.0 + i / 10,
                "num_weights": 5 + i,
                "min_players": 1 + i % 2,
                "max_players": 2 + i % 5,
                "min_playtime": 30,
                "max_playtime": 30 + 15 * (i % 6),
                "min_age": 0 if i % 4 == 0 else 10,
                "image": None if i % 3 == 0 else f"https://example.org/{game_id}.png",
                "thumbnail": None,
                "description": f"A game about things, number {game_id}.",
                "categories": CATEGORIES[: 1 + i % 3],
                "mechanics": [MECHANICS[i % 5], MECHANICS[(i + 2) % 5]],
                "publishers": [f"Publisher {i % 3}"],
                "designers": [f"Designer {i % 4}", f"Designer {(i + 1) % 4}"],
                "artists": [] if i % 2 else [f"Artist {i}"],
                "families": [f"Theme: T{i % 2}"],
                "load_timestamp": T0,
                "last_updated": T0,
            }
        )
    return pl.DataFrame(rows, schema=GAMES_FEATURES.polars_schema())


def make_complexity_predictions(
    game_ids: list[int], *, job_id: str = "job-1", score_ts: datetime = T0
) -> pl.DataFrame:
    return COMPLEXITY_PREDICTIONS.conform(
        pl.DataFrame(
            {
                "game_id": game_ids,
                "name": [f"Game {g}" for g in game_ids],
                "year_published": [2024.0] * len(game_ids),
                "predicted_complexity": [1.0 + (g % 40) / 10 for g in game_ids],
                "complexity_model_name": ["complexity"] * len(game_ids),
                "complexity_model_version": [1] * len(game_ids),
                "score_ts": [score_ts] * len(game_ids),
                "job_id": [job_id] * len(game_ids),
            }
        )
    )


def make_landing_rows(
    game_ids: list[int], *, job_id: str = "job-1", score_ts: datetime = T0
) -> pl.DataFrame:
    """Landing rows of one job: point predictions and 90% intervals around them (a
    deterministic function of the game id, so two jobs of the same games agree)."""
    points = {
        "complexity": [1.0 + (g % 40) / 10 for g in game_ids],
        "rating": [6.0 + (g % 7) / 5 for g in game_ids],
        "users_rated": [100.0 + 50 * g for g in game_ids],
        "geek_rating": [5.5 + (g % 10) / 10 for g in game_ids],
    }
    half = {"complexity": 0.5, "rating": 0.75, "users_rated": 50.0, "geek_rating": 0.25}
    columns: dict[str, list] = {
        "job_id": [job_id] * len(game_ids),
        "game_id": game_ids,
        "name": [f"Game {g}" for g in game_ids],
        "year_published": [2025.0] * len(game_ids),
        "predicted_hurdle_prob": [0.5 + (g % 5) / 10 for g in game_ids],
        "score_ts": [score_ts] * len(game_ids),
    }
    for outcome, values in points.items():
        columns[f"predicted_{outcome}"] = values
        columns[f"{outcome}_lower_90"] = [v - half[outcome] for v in values]
        columns[f"{outcome}_upper_90"] = [v + half[outcome] for v in values]
    return ML_PREDICTIONS_LANDING.conform(pl.DataFrame(columns))


def make_game_embeddings(
    game_ids: list[int], *, job_id: str = "job-1", dim: int = 4
) -> pl.DataFrame:
    vectors = [[float(g) + k / 10 for k in range(dim)] for g in game_ids]
    return GAME_EMBEDDINGS.conform(
        pl.DataFrame(
            {
                "game_id": game_ids,
                "name": [f"Game {g}" for g in game_ids],
                "embedding": vectors,
                "embedding_dim": [dim] * len(game_ids),
                "created_ts": [T0 + timedelta(minutes=g) for g in game_ids],
                "job_id": [job_id] * len(game_ids),
            }
        )
    )


def make_scoring_state(
    game_ids: list[int], *, stage: str = "complexity", feature_hash: int = 1, job_id: str = "job-1"
) -> pl.DataFrame:
    return SCORING_STATE.conform(
        pl.DataFrame(
            {
                "stage": [stage] * len(game_ids),
                "game_id": game_ids,
                "feature_hash": [feature_hash] * len(game_ids),
                "model_key": ["complexity:1"] * len(game_ids),
                "job_id": [job_id] * len(game_ids),
                "score_ts": [T0] * len(game_ids),
            }
        )
    )


def make_game_rows(n: int, *, start_id: int = 1, year: float | None = 2025.0) -> pl.DataFrame:
    rows = []
    for i in range(n):
        game_id = start_id + i
        rows.append(
            {
                "game_id": game_id,
                "name": f"Game {game_id}",
                "year_published": year if year is None else year - (i % 3),
                "bayes_average": 5.5 + (i % 10) / 10,
                "average_rating": 6.0 + (i % 7) / 5,
                "average_weight": 1.5 + (i % 5) / 2,
                "users_rated": 50 + 13 * i,
                "hurdle": 1,
                "geek_rating": 5.5 + (i % 10) / 10,
                "complexity": 1.5 + (i % 5) / 2,
                "rating": 6.0 + (i % 7) / 5,
                "log_users_rated": 4.0,
                "num_weights": 10 + i,
                "min_players": 1 + i % 2,
                "max_players": 2 + i % 5,
                "min_playtime": 30,
                "max_playtime": 30 + 15 * (i % 6),
                "min_age": 0 if i % 4 == 0 else 10,
                "image": None,
                "thumbnail": None,
                "description": f"A game about things number {i}.",
                "categories": ["Card Game", "Fantasy"][: 1 + i % 2],
                "mechanics": [MECHANICS[i % 5], MECHANICS[(i + 2) % 5]],
                "publishers": [f"Publisher {i % 3}"],
                "designers": [f"Designer {i % 4}"],
                "artists": [],
                "families": ["Players: Games with Solitaire Rules", f"Theme: T{i % 2}"],
                "load_timestamp": None,
                "last_updated": datetime(2026, 1, 1, tzinfo=timezone.utc),
            }
        )
    return pl.DataFrame(rows, schema=GAMES_FEATURES.polars_schema())
