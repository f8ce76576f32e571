"""The numbers behind each picture of the report, on small frames whose answers are known."""

from __future__ import annotations

import math

import polars as pl
import pytest

from bggscore.report import numbers
from bggscore.report.numbers import REASONS


def test_a_row_gets_its_first_reason_in_detections_order() -> None:
    flags = pl.DataFrame(
        {
            "is_new": [True, False, False, False, False, None],
            "features": [True, True, False, False, False, False],
            "model": [True, True, True, False, False, False],
            "upstream": [True, True, True, True, False, None],
        }
    )
    assert numbers.reason_of(flags).to_list() == [
        "new",
        "features",
        "model",
        "upstream",
        "other",
        "other",
    ]


def test_stage_reasons_and_the_run_section_count_each_stage_of_the_job() -> None:
    lineage = {
        "complexity": pl.DataFrame(
            {
                "job_id": ["j2", "j2", "j1"],
                "is_new": [True, False, True],
                "features": [True, True, True],
                "model": [True, False, True],
                "upstream": [False, False, False],
                "games": [3, 5, 10],
            }
        ),
        "main": pl.DataFrame(
            {
                "job_id": ["j2", "j2"],
                "is_new": [False, False],
                "features": [False, False],
                "model": [False, False],
                "upstream": [True, False],
                "games": [4, 1],
            }
        ),
    }
    reasons = numbers.stage_reasons(lineage)
    job = {
        "job_id": "j2",
        "command": "score",
        "status": "success",
        "games": 8,
        "stage": "complexity,main",
        "started_at": None,
        "finished_at": None,
    }
    section = numbers.run_section(job, reasons, {"rating": "rating:1"})
    assert [s["stage"] for s in section["stages"]] == ["complexity", "main"]
    complexity, main = section["stages"]
    assert complexity["by_reason"] == {
        "new": 3,
        "features": 5,
        "model": 0,
        "upstream": 0,
        "other": 0,
    }
    assert complexity["games"] == 8
    assert main["by_reason"]["upstream"] == 4 and main["by_reason"]["other"] == 1
    assert list(main["by_reason"]) == list(REASONS)
    assert section["models"] == {"rating": "rating:1"}
    assert numbers.run_section(None, reasons, {}) == {"job": None, "stages": [], "models": {}}


def _moves(**columns: list) -> pl.DataFrame:
    n = len(columns["game_id"])
    base = {
        "name": [f"game {i}" for i in columns["game_id"]],
        "feature_hash": [1] * n,
        "model_fingerprint": ["m"] * n,
        "previous_job_id": ["j0"] * n,
        "previous_feature_hash": [1] * n,
        "previous_model_fingerprint": ["m"] * n,
    }
    for outcome in ("complexity", "rating", "users_rated", "geek_rating"):
        base[f"predicted_{outcome}"] = [2.0] * n
        base[f"previous_predicted_{outcome}"] = [2.0] * n
    base.update(columns)
    return pl.DataFrame(base)


def test_what_moved_ranks_by_the_size_of_the_change_and_names_the_reason() -> None:
    moves = _moves(
        game_id=[1, 2, 3, 4],
        feature_hash=[9, 1, 1, 1],  # game 1: other features
        model_fingerprint=["m", "n", "m", "m"],  # game 2: another model
        predicted_complexity=[2.0, 2.0, 2.5, 2.0],  # game 3: another complexity (upstream)
        predicted_rating=[6.0, 7.5, 5.0, 6.0],
        previous_predicted_rating=[5.0, 7.0, 5.0, 6.0],
    )
    section = numbers.moved_section(moves, top=2)
    assert section["rescored"] == 4
    assert section["by_reason"] == {"new": 0, "features": 1, "model": 1, "upstream": 1, "other": 1}
    rating = section["outcomes"]["rating"]
    assert rating["changed"] == 2  # games 3 and 4 did not move
    assert [
        (g["game_id"], g["reason"], g["old"], g["new"], g["change"]) for g in rating["top"]
    ] == [
        (1, "features", 5.0, 6.0, 1.0),
        (2, "model", 7.0, 7.5, 0.5),
    ]
    assert rating["mean_abs_change"] == pytest.approx(0.75)
    assert section["outcomes"]["complexity"]["top"][0]["reason"] == "upstream"


def test_users_rated_moves_are_ranked_on_the_log_scale() -> None:
    moves = _moves(
        game_id=[1, 2],
        predicted_users_rated=[1100.0, 30.0],
        previous_predicted_users_rated=[1000.0, 10.0],  # +100 is less than 3x
    )
    top = numbers.moved_section(moves)["outcomes"]["users_rated"]["top"]
    assert [g["game_id"] for g in top] == [2, 1]
    assert numbers.moved_section(moves)["outcomes"]["users_rated"]["scale"] == "log1p"


def test_a_job_without_predictions_moves_nothing() -> None:
    section = numbers.moved_section(None)
    assert section["rescored"] == 0
    assert all(not item["top"] for item in section["outcomes"].values())


def test_metrics_beside_the_mean_predictor() -> None:
    actual = pl.Series([1.0, 2.0, 3.0, 4.0])
    predicted = pl.Series([1.5, 2.0, 2.5, 4.0])
    found = numbers.metrics(predicted, actual)
    assert found["games"] == 4
    assert found["rmse"] == pytest.approx(math.sqrt(0.125), rel=1e-3)
    assert found["mae"] == pytest.approx(0.25)
    assert found["mean_rmse"] == pytest.approx(math.sqrt(1.25), rel=1e-3)
    assert found["mean_mae"] == pytest.approx(1.0)
    assert found["r2"] == pytest.approx(1 - 0.5 / 5.0)
    # the mean predictor itself scores R² 0 and its own RMSE
    mean = numbers.metrics(pl.Series([2.5] * 4), actual)
    assert mean["r2"] == pytest.approx(0.0) and mean["rmse"] == mean["mean_rmse"]
    assert (
        numbers.metrics(pl.Series([], dtype=pl.Float64), pl.Series([], dtype=pl.Float64))["rmse"]
        is None
    )


def test_binned_counts_every_pair_once_on_a_shared_grid() -> None:
    x = pl.Series([float(i % 10) for i in range(1000)])
    y = pl.Series([float((i * 7) % 10) for i in range(1000)])
    cells = numbers.binned(x, y, bins=5)
    assert sum(c["games"] for c in cells) == 1000
    edges = {c["x"] for c in cells} | {c["y"] for c in cells}
    assert len(edges) <= 5  # x and y share one set of bin starts
    assert all(c["x2"] > c["x"] and c["y2"] > c["y"] for c in cells)
    assert numbers.binned(pl.Series([], dtype=pl.Float64), pl.Series([], dtype=pl.Float64)) == []


def _predictions(n: int, with_intervals: bool = True) -> pl.DataFrame:
    """n games from 2000 and 2001 with every outcome's actual 5.0 and 100 ratings, predicted
    5.0 + (i % 4 - 1.5) / 10, and (every other game) an interval that holds the actual."""
    ids = list(range(1, n + 1))
    predicted = [5.0 + (i % 4 - 1.5) / 10 for i in ids]
    frame = {
        "game_id": ids,
        "name": [f"game {i}" for i in ids],
        "year_published": [2000.0 + i % 2 for i in ids],
        "actual_average_weight": [5.0] * n,
        "actual_num_weights": [10] * n,
        "actual_average_rating": [5.0] * n,
        "actual_users_rated": [100] * n,
        "actual_bayes_average": [5.0] * n,
    }
    for outcome in ("complexity", "rating", "users_rated", "geek_rating"):
        frame[f"predicted_{outcome}"] = predicted
        holds = [with_intervals and i % 2 == 0 for i in ids]
        scale = 100.0 if outcome == "users_rated" else 5.0
        frame[f"{outcome}_lower_90"] = [
            (scale - 1 if h else scale + 1) if with_intervals else None for h in holds
        ]
        frame[f"{outcome}_upper_90"] = [scale + 2 if with_intervals else None for _ in holds]
    return pl.DataFrame(frame)


def test_how_good_judges_each_outcome_on_its_games_and_covers_by_year() -> None:
    good = numbers.good_section(_predictions(40))
    assert good["intervals"] is True
    rating = next(o for o in good["outcomes"] if o["outcome"] == "rating")
    assert rating["target"] == "average_rating"
    assert rating["games"] == 40
    assert rating["rmse"] == pytest.approx(math.sqrt((0.15**2 + 0.05**2) / 2), rel=1e-3)
    assert rating["coverage"] == pytest.approx(0.5)  # every other interval holds 5.0
    years = [y for y in good["coverage_by_year"] if y["outcome"] == "rating"]
    # even ids (inside) are all in 2000, odd ids (outside) in 2001
    assert [(y["year"], y["games"], y["coverage"]) for y in years] == [
        (2000, 20, 1.0),
        (2001, 20, 0.0),
    ]
    users = next(o for o in good["outcomes"] if o["outcome"] == "users_rated")
    assert users["scale"] == "log1p"
    assert sum(c["games"] for c in good["cells"] if c["outcome"] == "complexity") == 40


def test_how_good_leaves_out_games_the_outcome_does_not_train_on() -> None:
    frame = _predictions(10).with_columns(
        pl.Series("actual_num_weights", [1] * 5 + [10] * 5),  # complexity: 5+ weight votes
        pl.Series("actual_users_rated", [3] * 5 + [100] * 5),  # rating: 25+ ratings
    )
    good = {o["outcome"]: o for o in numbers.good_section(frame)["outcomes"]}
    assert good["complexity"]["games"] == 5
    assert good["rating"]["games"] == 5


def test_coverage_needs_a_few_games_a_year_and_intervals() -> None:
    few = numbers.good_section(_predictions(6))
    assert few["coverage_by_year"] == []  # 3 games a year: fewer than MIN_YEAR_GAMES
    none = numbers.good_section(_predictions(40, with_intervals=False))
    assert none["intervals"] is False and none["coverage_by_year"] == []
    assert all(o["coverage"] is None for o in none["outcomes"])


def test_how_sure_bins_widths_by_ratings_and_lists_the_widest() -> None:
    frame = _predictions(40).with_columns(
        pl.Series("actual_users_rated", [0] * 20 + [1000] * 20),
        pl.Series("rating_lower_90", [4.0] * 40),
        pl.Series("rating_upper_90", [6.0 + i / 100 for i in range(40)]),
    )
    sure = numbers.sure_section(frame, top=3)
    assert sure["intervals"] is True and sure["games_with_intervals"] == 40
    rating = [b for b in sure["by_ratings"] if b["outcome"] == "rating"]
    assert [(b["ratings_from"], b["ratings_to"], b["games"]) for b in rating] == [
        (0, 1, 20),
        (1000, 2500, 20),
    ]
    assert all(b["q25"] <= b["median"] <= b["q75"] for b in rating)
    widest = sure["least_sure"]["rating"]
    assert [g["game_id"] for g in widest] == [40, 39, 38]
    assert widest[0]["width"] == pytest.approx(2.39)
    assert numbers.sure_section(_predictions(10, with_intervals=False))["intervals"] is False


def test_the_map_keeps_the_asked_games_the_most_rated_and_a_fixed_sample() -> None:
    n = 5000
    points = pl.DataFrame(
        {
            "game_id": list(range(1, n + 1)),
            "name": [f"game {i}" for i in range(1, n + 1)],
            "coordinates_2d": [[i / n, (i % 7) / 7] for i in range(1, n + 1)],
        }
    )
    predictions = _predictions(n).with_columns(
        pl.Series("actual_users_rated", list(range(1, n + 1)))  # game n is the most rated
    )
    sample = numbers.map_sample(points, predictions, keep=[3, 17], limit=800)
    ids = [p["game_id"] for p in sample["points"]]
    assert sample["games"] == n and sample["shown"] == 800 == len(set(ids))
    assert {3, 17} <= set(ids)
    assert set(range(n - 499, n + 1)) <= set(ids)  # the 500 most rated
    again = numbers.map_sample(points, predictions, keep=[3, 17], limit=800)
    assert again == sample  # the same on every run
    point = next(p for p in sample["points"] if p["game_id"] == 17)
    assert (point["x"], point["y"]) == (pytest.approx(17 / n), pytest.approx(3 / 7, rel=1e-3))
    assert numbers.map_sample(points.head(0), predictions)["points"] == []
