"""Posterior predictive intervals (`score --intervals N`): draws, chain, quantiles, limits."""

from __future__ import annotations

import copy
import tracemalloc
from datetime import datetime, timezone
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from tests.support.chain import (
    FORMULA,
    make_catalogue,
    make_model_set,
    make_pipelines,
    make_point_complexity,
)

from bggscore.errors import UsageError
from bggscore.modelset import GeekFormula
from bggscore.scoring.chain import RunInfo, bayesian_geek_rating, score_main, users_rated_count
from bggscore.scoring.intervals import LinearDraws, draw_chain, plan_chain, quantiles
from bggscore.scoring.predict import add_chain_inputs
from bggscore.warehouse.schemas import INTERVAL_OUTCOMES, ML_PREDICTIONS_LANDING

RUN = RunInfo("job-test", datetime(2026, 1, 2, tzinfo=timezone.utc), "test", "fp", 2024)
# production's landing names, written out here so a rename in schemas fails this file
INTERVAL_COLUMNS = [f"{x}_{bound}_90" for x in INTERVAL_OUTCOMES for bound in ("lower", "upper")]
MEDIAN_COLUMNS = {
    "complexity": "predicted_complexity",
    "rating": "predicted_rating",
    "users_rated": "predicted_users_rated",
    "geek_rating": "predicted_geek_rating",
}


@pytest.fixture(scope="module")
def catalogue() -> pl.DataFrame:
    return make_catalogue()


@pytest.fixture(scope="module")
def pipelines(catalogue: pl.DataFrame) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small fits: BLAS threads only add contention
        return make_pipelines(catalogue)


@pytest.fixture(scope="module")
def games() -> pl.DataFrame:
    """Games to score: a fresh catalogue the models never saw."""
    return make_catalogue(400, seed=1)


def _draw(pipelines, games, n_draws=200, seed=0, formula=FORMULA, **kwargs) -> dict:
    models = make_model_set(pipelines, formula)
    point = make_point_complexity(pipelines, games)
    return draw_chain(games, point, models, n_draws, np.random.default_rng(seed), **kwargs)


# -- what draw_chain returns ---------------------------------------------------------------


@pytest.mark.parametrize("formula", [FORMULA, None], ids=["bayesian", "direct"])
def test_bounds_bracket_the_median_and_respect_the_clips(pipelines, games, formula) -> None:
    result = _draw(pipelines, games, formula=formula)
    assert set(result) == set(MEDIAN_COLUMNS.values()) | set(INTERVAL_COLUMNS)
    for values in result.values():
        assert values.dtype == np.float64
        assert values.shape == (len(games),)
        assert np.isfinite(values).all()
    clips = {"complexity": (1, 5), "rating": (1, 10), "users_rated": (25, np.inf)}
    clips["geek_rating"] = (1, 10)
    for outcome, (low, high) in clips.items():
        lower = result[f"{outcome}_lower_90"]
        median = result[MEDIAN_COLUMNS[outcome]]
        upper = result[f"{outcome}_upper_90"]
        assert (lower <= median).all()
        assert (median <= upper).all()
        assert (lower >= low).all()
        assert (upper <= high).all()
    # the intervals are real intervals, not points
    assert (result["rating_upper_90"] > result["rating_lower_90"]).all()
    assert (result["users_rated_upper_90"] > result["users_rated_lower_90"]).mean() > 0.5


def test_landing_keeps_the_medians_and_the_bounds(pipelines, games) -> None:
    models = make_model_set(pipelines)
    point = make_point_complexity(pipelines, games)
    intervals = draw_chain(games, point, models, 100, np.random.default_rng(0))
    landing = ML_PREDICTIONS_LANDING.conform(score_main(games, point, models, RUN, intervals))
    for column, values in intervals.items():
        np.testing.assert_array_equal(landing[column].to_numpy(), values)
    assert landing.select(INTERVAL_COLUMNS).null_count().sum_horizontal().item() == 0


def test_same_rng_same_result_whatever_the_threads(pipelines, games) -> None:
    one = _draw(pipelines, games, seed=5, workers=1, chunk_elements=20_000)
    two = _draw(pipelines, games, seed=5, workers=2, chunk_elements=20_000)
    again = _draw(pipelines, games, seed=5, workers=2, chunk_elements=20_000)
    other = _draw(pipelines, games, seed=6, workers=2, chunk_elements=20_000)
    for key in one:
        np.testing.assert_array_equal(one[key], two[key])
        np.testing.assert_array_equal(two[key], again[key])
    assert not np.array_equal(one["predicted_rating"], other["predicted_rating"])


def test_empty_batch(pipelines, games) -> None:
    models = make_model_set(pipelines)
    result = draw_chain(games.head(0), np.empty(0), models, 50, np.random.default_rng(0))
    assert all(len(v) == 0 for v in result.values())


# -- the draws -----------------------------------------------------------------------------


def _brute_force(pipeline, frame, chain: dict[str, np.ndarray], n_draws: int, seed: int, d: int):
    """Draw d rebuilt the slow way: the full pipeline transform with the chain values of
    draw d written into the frame, times the raw coefficient draw d, plus the intercept."""
    final = pipeline[-1]
    coefs = final.posterior_draws(n_draws, np.random.default_rng(seed))
    frame_d = frame.with_columns(pl.Series(name, values[:, d]) for name, values in chain.items())
    X = pipeline[:-1].transform(frame_d)
    intercept = final.intercept_
    if getattr(final, "X_offset_", None) is not None:
        intercept = intercept - (coefs[d] - final.coef_) @ final.X_offset_
    return np.asarray(X @ coefs[d]).ravel() + intercept


@pytest.mark.parametrize("model_type", ["rating", "users_rated", "geek_rating"])
def test_analytic_chain_terms_equal_brute_force(pipelines, games, model_type) -> None:
    pipeline = pipelines[model_type]
    rng = np.random.default_rng(11)
    n_draws, frame = 6, games.head(120)
    chain = {
        "predicted_complexity": rng.uniform(1, 5, (len(frame), n_draws)),
        "predicted_rating": rng.uniform(1, 10, (len(frame), n_draws)),
        "predicted_log_users_rated": rng.uniform(2, 10, (len(frame), n_draws)),
    }
    chain = {k: v.astype(np.float32) for k, v in chain.items() if k in pipeline[0].chain_inputs}
    draws = LinearDraws.from_pipeline(pipeline, model_type, n_draws, np.random.default_rng(3))
    fast = draws.mean(draws.design(frame), chain)
    for d in range(n_draws):
        slow = _brute_force(pipeline, frame, chain, n_draws, 3, d)
        # float32 draws: the gap is rounding, far below the posterior spread
        np.testing.assert_allclose(fast[:, d], slow, rtol=0, atol=2e-4)


def test_centred_intercept_moves_with_the_coefficients(pipelines, games) -> None:
    """With sklearn's X_offset_ kept, intercept_d = mean(y) - X_offset @ beta_d."""
    pipeline = copy.deepcopy(pipelines["rating"])
    final = pipeline[-1]
    final.X_offset_ = np.random.default_rng(0).uniform(0, 1, len(final.coef_))
    frame = games.head(50)
    chain = {"predicted_complexity": np.full((50, 4), 2.5, dtype=np.float32)}
    draws = LinearDraws.from_pipeline(pipeline, "rating", 4, np.random.default_rng(9))
    fast = draws.mean(draws.design(frame), chain)
    for d in range(4):
        slow = _brute_force(pipeline, frame, chain, 4, 9, d)
        np.testing.assert_allclose(fast[:, d], slow, rtol=0, atol=2e-4)


def test_rating_and_users_read_complexity_draw_d_and_geek_follows_the_formula(
    pipelines, games
) -> None:
    models = make_model_set(pipelines)
    frame = games.head(80)
    point = make_point_complexity(pipelines, frame)
    plan = plan_chain(frame, point, models, 50, np.random.default_rng(2))
    draws = plan.draws(0, len(frame), np.random.default_rng(4))
    # users_rated: the reported count of each log draw
    np.testing.assert_array_equal(
        draws["users_rated"], users_rated_count(draws["log_users_rated"])[0]
    )
    counts = draws["users_rated"]
    assert ((counts % 50 == 0) | (counts == 25)).all()
    # geek rating: the bayesian formula on rating draw d and users_rated count draw d
    expected = bayesian_geek_rating(draws["rating"], draws["users_rated"], 5.5, 2000.0)
    np.testing.assert_allclose(draws["geek_rating"], expected, rtol=1e-6)
    # rating draw d moved by complexity draw d: the analytic term, per draw
    weight = plan.rating.chain["predicted_complexity"]
    shifted = plan.rating.mean(
        plan.designs["rating"], {"predicted_complexity": draws["complexity"] + 1}
    )
    base = plan.rating.mean(plan.designs["rating"], {"predicted_complexity": draws["complexity"]})
    np.testing.assert_allclose(shifted - base, np.broadcast_to(weight, base.shape), atol=1e-4)
    assert draws["complexity"].min() >= 1 and draws["complexity"].max() <= 5
    assert draws["rating"].min() >= 1 and draws["rating"].max() <= 10


def test_no_prior_weight_makes_geek_rating_the_rating(pipelines, games) -> None:
    plain = _draw(pipelines, games, formula=GeekFormula(5.5, 0.0))
    for bound in ("lower_90", "upper_90"):
        np.testing.assert_allclose(
            plain[f"geek_rating_{bound}"], plain[f"rating_{bound}"], atol=1e-5
        )
    heavy = _draw(pipelines, games, formula=GeekFormula(5.5, 1e12))
    np.testing.assert_allclose(heavy["predicted_geek_rating"], 5.5, atol=1e-4)


def test_many_draws_put_the_complexity_median_on_the_point_prediction(pipelines, games) -> None:
    frame = games.head(150)
    point = make_point_complexity(pipelines, frame)
    result = _draw(pipelines, frame, n_draws=4000)
    assert np.abs(result["predicted_complexity"] - point).max() < 0.05


def test_smaller_noise_precision_widens_the_intervals(pipelines, games) -> None:
    noisy = {t: copy.deepcopy(p) for t, p in pipelines.items()}
    noisy["complexity"][-1].alpha_ /= 9  # 3x the noise sd
    noisy["rating"][-1].alpha_ /= 9
    base = _draw(pipelines, games, seed=1)
    wide = _draw(noisy, games, seed=1)

    def width(result: dict, outcome: str) -> np.ndarray:
        return result[f"{outcome}_upper_90"] - result[f"{outcome}_lower_90"]

    # parameter uncertainty and the clips keep the ratio under 3
    assert np.median(width(wide, "complexity") / width(base, "complexity")) > 1.5
    assert np.median(width(wide, "rating") / width(base, "rating")) > 1.5
    assert (width(wide, "rating") > width(base, "rating")).mean() > 0.95


def test_without_a_complexity_model_the_given_complexity_is_fixed(pipelines, games) -> None:
    models = make_model_set(pipelines)
    del models.models["complexity"]
    point = np.linspace(1.5, 4.5, len(games))
    result = draw_chain(games, point, models, 100, np.random.default_rng(0))
    for column in ("predicted_complexity", *INTERVAL_COLUMNS[:2]):
        np.testing.assert_allclose(result[column], point, rtol=1e-6)


# -- quantiles -----------------------------------------------------------------------------


@pytest.mark.parametrize("n_draws", [1, 2, 7, 500])
def test_quantiles_match_numpy_linear_percentiles(n_draws: int) -> None:
    values = np.random.default_rng(0).normal(5, 2, (300, n_draws)).astype(np.float32)
    expected = np.percentile(values.astype(np.float64), [5, 50, 95], axis=1, method="linear")
    np.testing.assert_allclose(quantiles(np.sort(values, axis=1)), expected, rtol=1e-12)


# -- refusals ------------------------------------------------------------------------------


def test_a_non_bayesian_model_is_refused(pipelines, catalogue) -> None:
    rating = pipelines["rating"]
    ridge = Pipeline([*copy.deepcopy(rating.steps[:-1]), ("model", Ridge())])
    inputs = add_chain_inputs(catalogue, {"complexity": pipelines["complexity"]}).head(200)
    ridge.fit(inputs, np.full(len(inputs), 6.0))
    models = make_model_set(pipelines, rating=ridge)
    with pytest.raises(UsageError) as raised:
        draw_chain(catalogue.head(10), np.full(10, 2.0), models, 10, np.random.default_rng(0))
    assert raised.value.message == "--intervals needs Bayesian linear models; rating@v1 is a Ridge"


@pytest.mark.parametrize("n_draws", [0, -5, 2.5, True])
def test_the_number_of_draws_must_be_positive(pipelines, games, n_draws) -> None:
    with pytest.raises(UsageError, match="positive number of draws"):
        _draw(pipelines, games.head(5), n_draws=n_draws)


# -- memory --------------------------------------------------------------------------------


def test_memory_stays_bounded_for_a_large_batch(pipelines) -> None:
    """20,000 games x 500 draws: float64 draws of the whole batch would need 80 MB per
    array and ~400 MB in all; sub-chunks keep the extra memory far below that."""
    frame = make_catalogue(20_000, seed=2)
    point = make_point_complexity(pipelines, frame)
    models = make_model_set(pipelines)
    tracemalloc.start()
    try:
        result = draw_chain(frame, point, models, 500, np.random.default_rng(0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result["predicted_rating"]) == 20_000
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MB"
