"""Intervals for imported Bayesian pipelines (scoring.simulate): production's simulation,
reproduced draw for draw, calibrated on a known model, and independent of the batch."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ARDRegression, BayesianRidge, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from tests.support.production import ProductionModels, production_frame
from tests.support.simulation import production_simulate_reference

from bggscore.errors import InputError, UsageError
from bggscore.scoring import simulate
from bggscore.scoring.simulate import ChainPosteriors, Posterior, simulate_chain, standard_normals
from bggscore.warehouse.schemas import INTERVAL_COLUMNS, interval_columns

CHAIN = {
    "rating": ["predicted_complexity"],
    "users_rated": ["predicted_complexity"],
    "geek_rating": ["predicted_complexity", "predicted_rating", "predicted_users_rated_log"],
}
FORMULA = (5.5, 2000.0)
POINTS = [
    "predicted_complexity",
    "predicted_rating",
    "predicted_users_rated",
    "predicted_geek_rating",
]
FEATURES = [f"f{i}" for i in range(8)]


# -- a chain whose truth is known ----------------------------------------------------------
def make_truth(n: int, seed: int) -> pd.DataFrame:
    """Features and outcomes drawn from a known linear chain: complexity from the features;
    rating and log users_rated from the features and the actual complexity; geek rating
    from the features and all three. Every outcome stays well inside its clip range."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(FEATURES)))
    c = 3 + x @ [0.4, -0.3, 0.2, 0, 0, 0, 0, 0] + rng.normal(0, 0.3, n)
    r = 6.5 + x @ [0.3, 0, -0.2, 0.25, 0, 0, 0, 0] + 0.5 * (c - 3) + rng.normal(0, 0.4, n)
    u = 6 + x @ [0, 0.5, 0, -0.3, 0.2, 0, 0, 0] + 0.6 * (c - 3) + rng.normal(0, 0.7, n)
    g = 5.5 + 0.1 * x[:, 0] + 0.1 * (c - 3) + 0.3 * (r - 6.5) + 0.2 * (u - 6)
    g = g + rng.normal(0, 0.15, n)
    frame = pd.DataFrame(x, columns=FEATURES)
    return frame.assign(complexity=c, rating=r, log_users=u, geek=g)


def scaled(model: Any, first: Any = "passthrough") -> Pipeline:
    preprocessor = Pipeline(
        [("first", first), ("impute", SimpleImputer()), ("scaler", StandardScaler())]
    ).set_output(transform="pandas")
    return Pipeline([("preprocessor", preprocessor), ("model", model)])


def fit_chain(train: pd.DataFrame, rating_first: Any = "passthrough") -> dict[str, Pipeline]:
    """Fitted on the actual upstream outcomes, the way the truth uses them."""
    inputs = train[FEATURES].assign(
        predicted_complexity=train["complexity"],
        predicted_rating=train["rating"],
        predicted_users_rated_log=train["log_users"],
    )
    models = {
        "complexity": scaled(ARDRegression()),
        "rating": scaled(BayesianRidge(), rating_first),
        "users_rated": scaled(ARDRegression()),
        "geek_rating": scaled(ARDRegression()),
    }
    models["complexity"].fit(inputs[FEATURES], train["complexity"])
    one = [*FEATURES, "predicted_complexity"]
    models["rating"].fit(inputs[one], train["rating"])
    models["users_rated"].fit(inputs[one], train["log_users"])
    models["geek_rating"].fit(inputs, train["geek"])
    return models


def without_geek(models: dict[str, Pipeline]) -> dict[str, Pipeline]:
    return {k: v for k, v in models.items() if k != "geek_rating"}


def log_complexity(X: pd.DataFrame) -> pd.DataFrame:
    return X.assign(predicted_complexity=np.log(X["predicted_complexity"]))


@pytest.fixture(scope="module")
def synthetic() -> dict[str, Pipeline]:
    return fit_chain(make_truth(4000, seed=1))


@pytest.fixture(scope="module")
def held_out() -> pd.DataFrame:
    return make_truth(3000, seed=2)


@pytest.fixture(scope="module")
def prod(production_models: ProductionModels) -> tuple[pd.DataFrame, dict[str, Pipeline]]:
    features, embeddings, models, _ = production_models
    frame = production_frame(features, embeddings)
    return frame[frame["year_published"] > 2022].head(60).reset_index(drop=True), models


def _assert_draws_equal(fast: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> None:
    assert set(fast) == set(ref)
    for key, values in ref.items():
        np.testing.assert_allclose(fast[key], values, rtol=1e-9, atol=1e-9, err_msg=key)


# -- production's simulation, with the same draws -------------------------------------------
@pytest.mark.parametrize("formula", [None, FORMULA], ids=["direct", "bayesian"])
def test_production_pipelines_give_production_draws(prod, formula) -> None:
    frame, models = prod
    ref = production_simulate_reference(frame, models, CHAIN, 40, formula)
    chain = ChainPosteriors.from_models(models, CHAIN, formula)
    _assert_draws_equal(chain.draws(frame, ref.normals), ref.draws)


def test_medians_and_bounds_equal_production_reference(prod) -> None:
    """Through simulate_chain itself (chunks of 7 games), fed the reference's normals."""
    frame, models = prod
    ref = production_simulate_reference(frame, models, CHAIN, 60, None)
    result = simulate_chain(
        frame,
        models,
        CHAIN,
        60,
        np.arange(len(frame), dtype=np.uint64),
        None,
        chunk_elements=7 * 60,
        normals=lambda rows, n_draws: ref.normals[rows.astype(np.intp)],
    )
    assert set(result) == set(POINTS) | set(INTERVAL_COLUMNS)
    for column, expected in ref.summary.items():
        np.testing.assert_allclose(result[column], expected, rtol=1e-9, atol=1e-9, err_msg=column)


def test_production_pipelines_take_the_analytic_path(prod, monkeypatch) -> None:
    frame, models = prod

    def refuse(*args: Any) -> None:
        raise AssertionError("a per-draw transform on an affine preprocessor")

    monkeypatch.setattr(Posterior, "_per_draw", refuse)
    result = simulate_chain(frame, models, CHAIN, 30, np.arange(len(frame)), None)
    assert np.isfinite(result["rating_upper_90"]).all()


def test_the_per_draw_fallback_gives_the_same_draws(synthetic, held_out, monkeypatch) -> None:
    frame = held_out[FEATURES].head(50)
    normals = standard_normals(np.arange(50), 30)
    chain = ChainPosteriors.from_models(synthetic, CHAIN, None)
    fast = chain.draws(frame, normals)
    monkeypatch.setattr(Posterior, "_linearised", lambda *args: None)
    _assert_draws_equal(chain.draws(frame, normals), fast)


def test_a_non_affine_chain_column_falls_back_to_per_draw_transforms(held_out) -> None:
    """rating reads log(predicted_complexity): the probes see it, and the draws stay right."""
    train = make_truth(2000, seed=3)
    models = fit_chain(train, rating_first=FunctionTransformer(log_complexity))
    frame = held_out[FEATURES].head(40)
    values = {"predicted_complexity": np.full((40, 5), 2.0)}
    chain = ChainPosteriors.from_models(models, CHAIN, None)
    assert chain.posteriors["rating"]._linearised(frame, values, (40, 5)) is None
    assert chain.posteriors["users_rated"]._linearised(frame, values, (40, 5)) is not None
    ref = production_simulate_reference(frame, models, CHAIN, 25, None)
    _assert_draws_equal(chain.draws(frame, ref.normals), ref.draws)


def test_the_reference_normals_are_standard_normal(synthetic, held_out) -> None:
    """The check above is only as good as its normals: they must be N(0, 1) draws."""
    ref = production_simulate_reference(held_out[FEATURES].head(200), synthetic, CHAIN, 200, None)
    for i in range(4):
        values = ref.normals[:, i].ravel()
        assert abs(values.mean()) < 0.05 and abs(values.std() - 1) < 0.05, i


# -- calibration ---------------------------------------------------------------------------
@pytest.mark.parametrize("geek", ["direct", "bayesian"])
def test_ninety_percent_intervals_cover_ninety_percent(synthetic, held_out, geek) -> None:
    """3,000 held-out games drawn from the true chain: 88-92% inside each 90% interval."""
    formula = None if geek == "direct" else FORMULA
    models = without_geek(synthetic) if formula else synthetic
    seeds = np.arange(len(held_out), dtype=np.uint64) + 10_000
    result = simulate_chain(held_out[FEATURES], models, CHAIN, 1000, seeds, formula)
    actual = {
        "complexity": held_out["complexity"],
        "rating": held_out["rating"],
        "users_rated": np.expm1(held_out["log_users"]),
        "geek_rating": held_out["geek"],
    }
    if formula:  # the formula is not the true geek rating: nothing to cover
        del actual["geek_rating"]
    for outcome, values in actual.items():
        lower, upper = interval_columns(outcome)
        inside = (result[lower] <= values) & (values <= result[upper])
        assert 0.88 <= inside.mean() <= 0.92, (outcome, inside.mean())


# -- what simulate_chain returns -----------------------------------------------------------
def test_a_row_depends_only_on_its_seed(synthetic, held_out) -> None:
    frame = held_out[FEATURES].head(90)
    seeds = np.random.default_rng(0).integers(0, 2**63, 90, dtype=np.uint64)
    whole = simulate_chain(frame, synthetic, CHAIN, 200, seeds, None)
    order = np.random.default_rng(1).permutation(90)[:37]
    part = simulate_chain(
        frame.iloc[order], synthetic, CHAIN, 200, seeds[order], None, chunk_elements=2000
    )
    again = simulate_chain(frame, synthetic, CHAIN, 200, seeds, None)
    other = simulate_chain(frame, synthetic, CHAIN, 200, seeds + np.uint64(1), None)
    for column, values in whole.items():
        np.testing.assert_allclose(part[column], values[order], rtol=1e-12, err_msg=column)
        np.testing.assert_array_equal(again[column], values)
    assert not np.allclose(other["predicted_rating"], whole["predicted_rating"])


def test_bounds_clips_and_the_unrounded_count(synthetic, held_out) -> None:
    frame = held_out[FEATURES].head(300)
    result = simulate_chain(frame, synthetic, CHAIN, 400, np.arange(300), None)
    for values in result.values():
        assert values.dtype == np.float64 and values.shape == (300,)
    bounds = {"complexity": (1, 5), "rating": (1, 10), "users_rated": (25, np.inf)}
    for outcome, (low, high) in {**bounds, "geek_rating": (1, 10)}.items():
        lower, upper = result[f"{outcome}_lower_90"], result[f"{outcome}_upper_90"]
        median = result[simulate.LANDING[outcome]]
        assert ((low <= lower) & (lower < median) & (median < upper) & (upper <= high)).all()
    # production lands the median of max(expm1(draw), 25): not rounded to 50 like the point
    assert (result["predicted_users_rated"] % 50 != 0).mean() > 0.9


def test_the_formula_uses_the_rating_and_count_draws(synthetic, held_out) -> None:
    chain = ChainPosteriors.from_models(without_geek(synthetic), CHAIN, FORMULA)
    draws = chain.draws(held_out[FEATURES].head(50), standard_normals(np.arange(50), 100))
    counts = np.maximum(np.expm1(draws["users_rated_log"]), 25)
    np.testing.assert_array_equal(draws["users_rated"], counts)
    expected = (draws["rating"] * counts + 5.5 * 2000) / (counts + 2000)
    np.testing.assert_allclose(draws["geek_rating"], expected, rtol=1e-12)


def test_a_hurdle_is_left_to_the_point_path_and_an_empty_batch_is_empty(synthetic) -> None:
    models = {**synthetic, "hurdle": Pipeline([("model", LogisticRegression())])}
    empty = pd.DataFrame(columns=FEATURES, dtype=float)
    result = simulate_chain(empty, models, CHAIN, 50, np.empty(0, np.uint64), None)
    assert set(result) == set(POINTS) | set(INTERVAL_COLUMNS)
    assert all(len(v) == 0 for v in result.values())


# -- refusals ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (
            {"rating": scaled(Ridge())},
            "--intervals cannot draw from the rating model (Ridge): it needs a scikit-learn "
            "Pipeline ending in ARDRegression or BayesianRidge",
        ),
        (
            {"users_rated": ARDRegression()},
            "--intervals cannot draw from the users_rated model (ARDRegression outside a "
            "Pipeline): it needs a scikit-learn Pipeline ending in ARDRegression or "
            "BayesianRidge",
        ),
        ({"geek_rating": None}, "--intervals needs a geek_rating model"),
    ],
)
def test_unsupported_models_are_refused(synthetic, held_out, replace, message) -> None:
    models = {k: v for k, v in {**synthetic, **replace}.items() if v is not None}
    frame = held_out[FEATURES].head(5)
    with pytest.raises(UsageError) as raised:
        simulate_chain(frame, models, CHAIN, 10, np.arange(5), None)
    assert raised.value.message == message


def test_a_chain_input_no_earlier_model_makes_is_refused(synthetic, held_out) -> None:
    chain = {**CHAIN, "rating": ["predicted_complexity", "predicted_rating"]}
    with pytest.raises(UsageError, match="cannot feed predicted_rating to the rating model"):
        simulate_chain(held_out[FEATURES].head(5), synthetic, chain, 10, np.arange(5), None)


@pytest.mark.parametrize("n_draws", [0, -3, 2.5, True])
def test_the_number_of_draws_must_be_positive(synthetic, held_out, n_draws) -> None:
    with pytest.raises(UsageError, match="positive number of draws"):
        simulate_chain(held_out[FEATURES].head(5), synthetic, CHAIN, n_draws, np.arange(5), None)


def test_a_chain_column_the_model_needs_but_is_not_given(synthetic, held_out) -> None:
    chain = {**CHAIN, "rating": []}
    with pytest.raises(InputError, match="the rating model's preprocessor cannot transform"):
        simulate_chain(held_out[FEATURES].head(5), synthetic, chain, 10, np.arange(5), None)


def test_memory_stays_bounded_for_a_large_batch(synthetic) -> None:
    """20,000 games x 500 draws: float64 draws of the whole batch would need 80 MB per
    array and over 1 GB in all; chunks keep the extra memory far below that."""
    frame = make_truth(20_000, seed=4)[FEATURES]
    tracemalloc.start()
    try:
        result = simulate_chain(frame, synthetic, CHAIN, 500, np.arange(20_000), None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result["rating_lower_90"]) == 20_000
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MB"
