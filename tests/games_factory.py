"""Small, hand-made games_features rows for unit tests."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl

from bggscore.warehouse.schemas import GAMES_FEATURES

MECHANICS = ["Dice Rolling", "Hand Management", "Worker Placement", "Set Collection", "Trading"]


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
