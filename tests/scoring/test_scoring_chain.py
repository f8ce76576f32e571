"""The scoring chain: formulas, chain order and missing features, on the real demo models."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bggscore.modelset import ModelSet, resolve_models
from bggscore.scoring.chain import (
    RunInfo,
    bayesian_geek_rating,
    score_complexity,
    score_main,
    users_rated_count,
)
from bggscore.scoring.outcomes import OUTCOMES
from bggscore.scoring.predict import predict
from bggscore.warehouse.queries import Selection

RUN = RunInfo("job-test", datetime(2026, 1, 2, tzinfo=timezone.utc), "test", "fp", 2024)


@pytest.fixture
def scoring(demo_home: Path) -> tuple[ModelSet, pl.DataFrame]:
    """The demo models (bayesian geek rating) and 200 games in the default year range."""
    from bggscore.modelset import open_settings_registry
    from bggscore.settings import load_settings
    from bggscore.warehouse import open_warehouse

    settings = load_settings()
    models = resolve_models(settings, open_settings_registry(settings), ["complexity", "main"], {})
    columns = sorted({"game_id", "name", "year_published", *models.read_columns()})
    with open_warehouse(settings) as wh:
        frame = next(wh.read_features(Selection(), columns, batch_size=200, with_hash=True))
    return models, frame


# -- formulas ------------------------------------------------------------------------------


def test_users_rated_count_rounds_to_fifty_with_a_floor_of_25() -> None:
    counts = np.array([0.0, 10.0, 30.0, 80.0, 130.0, 1010.0, 123_456.0])
    rounded, raw = users_rated_count(np.log1p(counts))
    np.testing.assert_allclose(raw, counts)
    assert rounded.tolist() == [25, 25, 50, 100, 150, 1000, 123_450]


def test_bayesian_geek_rating_formula_and_clip() -> None:
    rating = np.array([8.0, 8.0, 8.0, 12.0, 0.0])
    users = np.array([0.0, 2000.0, 1e9, 1e9, 1e9])
    geek = bayesian_geek_rating(rating, users, 5.5, 2000.0)
    np.testing.assert_allclose(geek[:3], [5.5, 6.75, 8.0], atol=1e-5)
    assert geek[3] == 10.0  # clipped
    assert geek[4] == 1.0


# -- the chain ------------------------------------------------------------------------------


def test_complexity_comes_from_the_complexity_model(scoring) -> None:
    models, frame = scoring
    rows = score_complexity(frame, models, RUN)
    expected = predict(models.models["complexity"].model, frame, OUTCOMES["complexity"])
    np.testing.assert_array_equal(rows["predicted_complexity"].to_numpy(), expected)
    assert rows["predicted_complexity"].is_between(1, 5).all()
    assert rows["job_id"].unique().to_list() == ["job-test"]
    assert rows["feature_hash"].to_list() == frame["feature_hash"].to_list()


def test_rating_and_users_rated_read_the_complexity_they_are_given(scoring) -> None:
    models, frame = scoring
    complexity = predict(models.models["complexity"].model, frame, OUTCOMES["complexity"])
    landing = score_main(frame, complexity, models, RUN)
    inputs = frame.with_columns(pl.Series("predicted_complexity", complexity))
    rating = predict(models.models["rating"].model, inputs, OUTCOMES["rating"])
    np.testing.assert_array_equal(landing["predicted_rating"].to_numpy(), rating)
    np.testing.assert_array_equal(landing["predicted_complexity"].to_numpy(), complexity)

    heavier = score_main(frame, np.clip(complexity + 1.5, 1, 5), models, RUN)
    assert not np.allclose(heavier["predicted_rating"], landing["predicted_rating"])
    assert not np.allclose(
        heavier["predicted_users_rated_raw"], landing["predicted_users_rated_raw"]
    )
    # the hurdle model has no chain input
    np.testing.assert_array_equal(
        heavier["predicted_hurdle_prob"].to_numpy(), landing["predicted_hurdle_prob"].to_numpy()
    )


def test_geek_rating_uses_the_reported_users_rated_count(scoring) -> None:
    models, frame = scoring
    complexity = predict(models.models["complexity"].model, frame, OUTCOMES["complexity"])
    landing = score_main(frame, complexity, models, RUN)
    rating = landing["predicted_rating"].to_numpy()
    users = landing["predicted_users_rated"].to_numpy()  # rounded, as written
    expected = np.clip((rating * users + 5.5 * 2000) / (users + 2000), 1, 10)
    np.testing.assert_allclose(landing["predicted_geek_rating"].to_numpy(), expected, atol=1e-9)
    assert landing["geek_rating_model_name"].unique().to_list() == ["bayesian"]
    assert landing["geek_rating_experiment"].unique().to_list() == [models.geek_formula.key]


def test_direct_geek_model_reads_the_chain(demo_home: Path, scoring) -> None:
    from bggscore.modelset import open_settings_registry
    from bggscore.settings import load_settings

    _, frame = scoring
    settings = load_settings(overrides={"models": {"geek_rating": "geek_rating"}})
    models = resolve_models(settings, open_settings_registry(settings), ["main"], {})
    assert models.geek_formula is None
    assert set(models.models) == {"complexity", "hurdle", "rating", "users_rated", "geek_rating"}
    complexity = predict(models.models["complexity"].model, frame, OUTCOMES["complexity"])
    landing = score_main(frame, complexity, models, RUN)
    chained = frame.with_columns(
        pl.Series("predicted_complexity", complexity),
        pl.Series("predicted_rating", landing["predicted_rating"].to_numpy()),
        pl.Series(
            "predicted_log_users_rated",
            predict(
                models.models["users_rated"].model,
                frame.with_columns(pl.Series("predicted_complexity", complexity)),
                OUTCOMES["users_rated"],
            ),
        ),
    )
    expected = predict(models.models["geek_rating"].model, chained, OUTCOMES["geek_rating"])
    np.testing.assert_array_equal(landing["predicted_geek_rating"].to_numpy(), expected)
    assert landing["predicted_geek_rating"].is_between(1, 10).all()
    assert landing["geek_rating_model_name"].unique().to_list() == ["geek_rating"]


def test_sample_status_follows_the_cutoff(scoring) -> None:
    models, frame = scoring
    complexity = np.full(len(frame), 2.5)
    frame = frame.with_columns(
        pl.Series("year_published", [2023.0, 2024.0, 2025.0, None] * (len(frame) // 4))
    )
    landing = score_main(frame, complexity, models, RUN)
    assert landing["sample_status"].head(4).to_list() == [
        "in_sample",
        "in_sample",
        "out_of_sample",
        "out_of_sample",  # unknown year: never claimed to be in the training sample
    ]
    no_cutoff = RunInfo("job-x", RUN.score_ts, "test", "fp", None)
    landing = score_main(frame, complexity, models, no_cutoff)
    assert landing["sample_status"].null_count() == len(frame)
    assert landing["training_cutoff_year"].null_count() == len(frame)


def test_zeros_mean_missing_and_nulls_are_scored(scoring) -> None:
    models, frame = scoring
    columns = ("min_age", "min_playtime", "max_playtime", "min_players", "max_players")
    zeros = frame.with_columns(pl.lit(0, pl.Int64).alias(c) for c in columns)
    nulls = frame.with_columns(pl.lit(None, pl.Int64).alias(c) for c in columns)
    empty = nulls.with_columns(
        pl.lit(None, pl.List(pl.String)).alias("categories"),
        pl.lit(None, pl.String).alias("description"),
        pl.lit(float("nan")).alias("year_published"),
    )
    results = []
    for variant in (zeros, nulls, empty):
        rows = score_complexity(variant, models, RUN)
        complexity = rows["predicted_complexity"].to_numpy()
        landing = score_main(variant, complexity, models, RUN)
        for column in ("predicted_complexity", "predicted_rating", "predicted_geek_rating"):
            assert landing[column].is_finite().all(), column
        results.append(landing)
    for column in ("predicted_hurdle_prob", "predicted_complexity", "predicted_rating"):
        np.testing.assert_array_equal(results[0][column].to_numpy(), results[1][column].to_numpy())
