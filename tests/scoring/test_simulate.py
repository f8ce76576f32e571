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
from tests.support.simulate_before import simulate_before
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

    monkeypatch.setattr(Posterior, "per_draw", refuse)
    result = simulate_chain(frame, models, CHAIN, 30, np.arange(len(frame)), None)
    assert np.isfinite(result["rating_upper_90"]).all()


def test_the_per_draw_fallback_gives_the_same_draws(synthetic, held_out, monkeypatch) -> None:
    frame = held_out[FEATURES].head(50)
    normals = standard_normals(np.arange(50), 30)
    chain = ChainPosteriors.from_models(synthetic, CHAIN, None)
    fast = chain.draws(frame, normals)
    monkeypatch.setattr(Posterior, "affine", lambda *args: None)
    _assert_draws_equal(chain.draws(frame, normals), fast)


def test_a_non_affine_chain_column_falls_back_to_per_draw_transforms(held_out) -> None:
    """rating reads log(predicted_complexity): the probes see it, and the draws stay right."""
    train = make_truth(2000, seed=3)
    models = fit_chain(train, rating_first=FunctionTransformer(log_complexity))
    frame = held_out[FEATURES].head(40)
    chain = ChainPosteriors.from_models(models, CHAIN, None)
    assert chain.posteriors["rating"].affine(frame) is None
    assert chain.posteriors["users_rated"].affine(frame) is not None
    ref = production_simulate_reference(frame, models, CHAIN, 25, None)
    _assert_draws_equal(chain.draws(frame, ref.normals), ref.draws)


def test_the_reference_normals_are_standard_normal(synthetic, held_out) -> None:
    """The check above is only as good as its normals: they must be N(0, 1) draws."""
    ref = production_simulate_reference(held_out[FEATURES].head(200), synthetic, CHAIN, 200, None)
    for i in range(4):
        values = ref.normals[:, i].ravel()
        assert abs(values.mean()) < 0.05 and abs(values.std() - 1) < 0.05, i


# -- the faster path keeps the previous numbers ---------------------------------------------
def _non_affine(train_seed: int = 3) -> dict[str, Pipeline]:
    return fit_chain(
        make_truth(2000, seed=train_seed), rating_first=FunctionTransformer(log_complexity)
    )


@pytest.mark.parametrize(
    ("case", "formula", "rows", "draws"),
    [
        ("production", None, 60, 200),
        ("production", FORMULA, 60, 200),
        ("synthetic", None, 300, 400),
        ("synthetic", FORMULA, 300, 400),
        ("non-affine", None, 30, 40),
    ],
)
def test_the_results_equal_the_previous_implementation(
    prod, synthetic, held_out, case, formula, rows, draws
) -> None:
    """Stacked transforms, shared offsets, four sorts and small chunks change no number:
    the same seeds give what simulate_chain gave before it was made faster (a0c78a8)."""
    if case == "production":
        frame, models = prod[0].head(rows), prod[1]
    else:
        frame = held_out[FEATURES].head(rows)
        models = synthetic if case == "synthetic" else _non_affine()
    if formula:
        models = without_geek(models)
    seeds = np.random.default_rng(7).integers(0, 2**63, rows, dtype=np.uint64)
    before = simulate_before(frame, models, CHAIN, draws, seeds, formula)
    for chunk in (13 * draws, simulate.CHUNK_ELEMENTS):
        now = simulate_chain(frame, models, CHAIN, draws, seeds, formula, chunk_elements=chunk)
        assert set(now) == set(before)
        for column, values in before.items():
            np.testing.assert_allclose(now[column], values, rtol=1e-12, atol=0, err_msg=column)


def _counting(calls: list[int]) -> FunctionTransformer:
    def count(X: pd.DataFrame) -> pd.DataFrame:
        calls.append(len(X))
        return X

    return FunctionTransformer(count)


def _wrapped(pipeline: Pipeline, step: Any) -> Pipeline:
    """The fitted pipeline with ``step`` after its preprocessor (nothing refitted)."""
    return Pipeline([("preprocessor", pipeline[0]), ("extra", step), ("model", pipeline[-1])])


def _spread(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


def test_each_model_transforms_a_batch_in_one_call(synthetic, held_out) -> None:
    """The preprocessors' fixed cost per call is paid once per model and batch, not once
    per chunk and probe: 800 games in chunks of 7 are 4 transform calls in all (every row,
    the slope probes, one row in CHECK_EVERY at the joint probe)."""
    calls: dict[str, list[int]] = {t: [] for t in synthetic}
    models = {t: _wrapped(m, _counting(calls[t])) for t, m in synthetic.items()}
    frame = held_out[FEATURES].head(800)
    simulate_chain(frame, models, CHAIN, 50, np.arange(800), None, chunk_elements=7 * 50)
    probes = simulate.PROBE_ROWS
    checked = max(probes, 800 // simulate.CHECK_EVERY)
    assert checked > probes  # both counts below are pinned
    assert calls == {
        "complexity": [800],
        "rating": [800 + checked + probes],
        "users_rated": [800 + checked + probes],
        "geek_rating": [800 + checked + 3 * probes],
    }


SHARED_CALLS: list[int] = []


def count_shared(X: pd.DataFrame) -> pd.DataFrame:
    SHARED_CALLS.append(len(X))
    return X


def test_byte_identical_preprocessors_probe_the_batch_once(synthetic, held_out) -> None:
    """rating and users_rated fitted on the same frame have the same preprocessor: the
    batch goes through it once for both, and the numbers stay those of the previous code."""
    step = FunctionTransformer(count_shared)  # picklable: both pipelines pickle alike
    models = {
        **synthetic,
        "rating": _wrapped(synthetic["rating"], step),
        "users_rated": _wrapped(synthetic["users_rated"], step),
    }
    frame = held_out[FEATURES].head(100)
    SHARED_CALLS.clear()
    result = simulate_chain(frame, models, CHAIN, 50, np.arange(100), None)
    assert SHARED_CALLS == [100 + 64 + 64]
    before = simulate_before(frame, models, CHAIN, 50, np.arange(100, dtype=np.uint64), None)
    for column, values in before.items():
        np.testing.assert_allclose(result[column], values, rtol=1e-12, err_msg=column)


def test_a_chain_column_bent_in_rare_rows_is_seen_in_checked_rows(
    synthetic, held_out, monkeypatch
) -> None:
    """Slopes come from PROBE_ROWS rows, but one row in CHECK_EVERY is checked at the joint
    probe (every row with CHECK_EVERY = 1): a chain column squared only where f0 is
    extreme, in one such row outside the slope probes, sends the model to per-draw
    transforms, whose draws match production's loop."""

    def squared_where_extreme(X: pd.DataFrame) -> pd.DataFrame:
        extreme = X["f0"] > 3.0  # scaled f0
        return X.assign(
            predicted_complexity=np.where(
                extreme, X["predicted_complexity"] ** 2, X["predicted_complexity"]
            )
        )

    models = {
        **synthetic,
        "rating": _wrapped(synthetic["rating"], FunctionTransformer(squared_where_extreme)),
    }
    clean = held_out[FEATURES].head(1000)
    n = len(clean)
    probes = _spread(n, simulate.PROBE_ROWS)
    checked = _spread(n, max(simulate.PROBE_ROWS, n // simulate.CHECK_EVERY))
    rating = ChainPosteriors.from_models(models, CHAIN, None).posteriors["rating"]
    assert rating.affine(clean) is not None  # no row of the held-out games is extreme
    for bent, check_every in [
        (set(checked) - set(probes), None),
        (set(range(n)) - set(checked), 1),
    ]:
        if check_every:
            monkeypatch.setattr(simulate, "CHECK_EVERY", check_every)
        frame = clean.copy()
        frame.iloc[min(bent), 0] = 8.0
        assert rating.affine(frame.iloc[probes]) is not None  # the slope probes alone
        assert rating.affine(frame) is None
    frame = frame.head(300)  # keeps the bent row
    chain = ChainPosteriors.from_models(models, CHAIN, None)
    ref = production_simulate_reference(frame, models, CHAIN, 20, None)
    _assert_draws_equal(chain.draws(frame, ref.normals), ref.draws)


def test_the_per_draw_path_stacks_draws_into_few_calls(held_out, monkeypatch) -> None:
    calls: list[int] = []
    base = _non_affine()
    models = {**base, "rating": _wrapped(base["rating"], _counting(calls))}
    monkeypatch.setattr(simulate, "STACK_ROWS", 100)
    simulate_chain(held_out[FEATURES].head(20), models, CHAIN, 30, np.arange(20), None)
    # the probe call (2 x 20 + 20 rows), then 30 draws of 20 rows, 5 draws per call
    assert calls == [60] + [100] * 6


def test_nan_from_a_preprocessor_counts_games_not_stacked_rows(synthetic, held_out) -> None:
    def nan_where_big(X: pd.DataFrame) -> pd.DataFrame:
        return X.assign(f1=np.where(X["f1"] > 1.0, np.nan, X["f1"]))

    models = {
        **synthetic,
        "rating": _wrapped(synthetic["rating"], FunctionTransformer(nan_where_big)),
    }
    frame = held_out[FEATURES].head(40)
    scaler = synthetic["rating"][0].named_steps["scaler"]
    column = list(scaler.feature_names_in_).index("f1")
    big = int(((frame["f1"] - scaler.mean_[column]) / scaler.scale_[column] > 1.0).sum())
    assert 0 < big < 40
    with pytest.raises(InputError) as raised:
        simulate_chain(frame, models, CHAIN, 10, np.arange(40), None)
    assert raised.value.message == (
        f"the rating model's preprocessor left NaN in {big} of 40 games: its pipeline "
        "cannot score them"
    )


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
