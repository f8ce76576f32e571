"""Outcome trainers: targets, filters, splits, metrics beside a mean predictor, registration.

Fits run on small synthetic catalogues (``generate_catalogue``) so the module stays fast;
the CLI tests train on the real sample and on the demo catalogue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy import sparse

from bggscore.errors import InputError, RegistryError, UsageError
from bggscore.registry import LocalStore, Registry, clear_cache
from bggscore.scoring.outcomes import HURDLE_USERS, OUTCOMES, TRAIN_ORDER
from bggscore.scoring.predict import add_chain_inputs, predict
from bggscore.training.estimators import SparseBayesianRegressor
from bggscore.training.train import (
    MIN_TEST_ROWS,
    MIN_TRAIN_ROWS,
    Splits,
    beats_baseline,
    build_head,
    fit_bases,
    fit_outcome,
    signature,
    train_outcomes,
)

NAMES = {name: name for name in OUTCOMES}


def make_training_games(n: int = 1000, seed: int = 1) -> pl.DataFrame:
    """A synthetic catalogue where every game has enough weight votes to train complexity."""
    from bggscore.demo.catalogue import generate_catalogue

    return generate_catalogue(n, seed).with_columns(num_weights=pl.lit(10, dtype=pl.Int64))


@pytest.fixture(scope="module")
def games() -> pl.DataFrame:
    return make_training_games()


@pytest.fixture(scope="module")
def complexity_fit(games: pl.DataFrame) -> tuple[Any, dict[str, Any]]:
    return fit_outcome(OUTCOMES["complexity"], games, Splits())


@pytest.fixture
def registry(tmp_path: Path) -> Any:
    clear_cache()
    yield Registry(LocalStore(tmp_path / "registry"))
    clear_cache()


class Constant:
    """A stand-in model: predicts one value (or one probability) for every row."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.value)

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.column_stack([np.full(len(X), 1 - self.value), np.full(len(X), self.value)])


# -- splits and outcomes ----------------------------------------------------------------------


def test_default_splits_and_what_registrations_record() -> None:
    assert Splits().as_dict() == {
        "train_through": 2022,
        "tune_year": 2023,
        "test_year": 2024,
        "test_through": 2024,
        "refit_through": 2024,
    }


@pytest.mark.parametrize(
    "years", [(2023, 2023, 2024), (2024, 2023, 2025), (2022, 2024, 2024), (2022, 2025, 2024)]
)
def test_years_out_of_order_are_a_usage_error(years: tuple[int, int, int]) -> None:
    with pytest.raises(UsageError, match="train-through < tune-year < test-year"):
        Splits(*years)


def test_outcomes_follow_the_domain_table() -> None:
    table = {
        name: (o.target, o.kind, o.transform, o.clip, o.chain_inputs)
        for name, o in OUTCOMES.items()
    }
    assert table == {
        "complexity": ("average_weight", "regression", None, (1.0, 5.0), ()),
        "hurdle": ("users_rated", "classification", None, None, ()),
        "rating": ("average_rating", "regression", None, (1.0, 10.0), ("predicted_complexity",)),
        "users_rated": ("users_rated", "regression", "log1p", None, ("predicted_complexity",)),
        "geek_rating": (
            "bayes_average",
            "regression",
            None,
            (1.0, 10.0),
            ("predicted_complexity", "predicted_rating", "predicted_log_users_rated"),
        ),
    }
    assert TRAIN_ORDER[0] == "complexity" and TRAIN_ORDER[-1] == "geek_rating"
    assert HURDLE_USERS == 25


def test_targets_and_training_filters() -> None:
    frame = pl.DataFrame(
        {
            "users_rated": [0, 24, 25, 1000],
            "average_weight": [0.0, 2.0, 3.0, 4.0],
            "num_weights": [0, 4, 5, 50],
            "average_rating": [0.0, 6.0, 7.0, 8.0],
            "bayes_average": [0.0, 0.0, 5.6, 7.0],
        }
    )
    assert OUTCOMES["hurdle"].target_values(frame).to_list() == [0, 0, 1, 1]
    np.testing.assert_allclose(
        OUTCOMES["users_rated"].target_values(frame).to_numpy(), np.log1p([0, 24, 25, 1000])
    )
    kept = {
        name: frame.filter(o.train_filter)["users_rated"].to_list()
        for name, o in OUTCOMES.items()
        if o.train_filter is not None
    }
    assert kept == {
        "complexity": [25, 1000],  # at least 5 weight votes
        "rating": [25, 1000],  # past the hurdle
        "users_rated": [25, 1000],
        "geek_rating": [25, 1000],  # has a geek rating
    }
    assert OUTCOMES["hurdle"].train_filter is None  # every game: both sides of the hurdle


# -- fitting and metrics ----------------------------------------------------------------------


def test_complexity_beats_the_mean_predictor_on_the_test_year(
    games: pl.DataFrame, complexity_fit: tuple[Any, dict[str, Any]]
) -> None:
    pipeline, metrics = complexity_fit
    assert [name for name, _ in pipeline.steps] == ["features", "scale", "model"]
    assert metrics["rmse"] < metrics["baseline_rmse"]
    assert metrics["mae"] < metrics["baseline_mae"]
    assert beats_baseline(metrics)
    rows = games.filter(OUTCOMES["complexity"].train_filter)
    year = pl.col("year_published")
    assert metrics["n_train"] == rows.filter(year <= 2022).height
    assert metrics["n_test"] == rows.filter(year == 2024).height >= MIN_TEST_ROWS
    assert metrics["n_refit"] == rows.filter(year <= 2024).height


def test_predictions_are_clipped_to_the_outcome_range(
    games: pl.DataFrame, complexity_fit: tuple[Any, dict[str, Any]]
) -> None:
    pipeline, _ = complexity_fit
    values = predict(pipeline, games, OUTCOMES["complexity"])
    assert values.shape == (len(games),)
    assert np.isfinite(values).all() and values.min() >= 1.0 and values.max() <= 5.0
    assert predict(Constant(12.0), games.head(3), OUTCOMES["rating"]).tolist() == [10.0] * 3
    assert predict(Constant(-1.0), games.head(3), OUTCOMES["complexity"]).tolist() == [1.0] * 3
    # users_rated stays in model space (log1p), unclipped
    assert predict(Constant(12.0), games.head(1), OUTCOMES["users_rated"]).tolist() == [12.0]
    assert predict(Constant(0.3), games.head(2), OUTCOMES["hurdle"]).tolist() == [0.3, 0.3]


def test_hurdle_reports_log_loss_beside_the_base_rate(games: pl.DataFrame) -> None:
    pipeline, metrics = fit_outcome(OUTCOMES["hurdle"], games, Splits())
    assert {"log_loss", "baseline_log_loss", "auc", "n_test", "n_train"} <= set(metrics)
    assert 0.0 <= metrics["auc"] <= 1.0
    probabilities = predict(pipeline, games, OUTCOMES["hurdle"])
    assert ((probabilities > 0) & (probabilities < 1)).all()
    assert beats_baseline({"log_loss": 0.4, "baseline_log_loss": 0.5})
    assert not beats_baseline({"log_loss": 0.5, "baseline_log_loss": 0.5})
    assert not beats_baseline({"rmse": 1.1, "baseline_rmse": 1.0})


def test_the_metrics_fit_never_sees_the_test_year(games: pl.DataFrame) -> None:
    """A value that only games after train-through carry is not in the train-years base."""
    late = pl.col("year_published") > 2022
    marked = games.with_columns(
        categories=pl.when(late)
        .then(pl.col("categories").list.concat(pl.lit(["Only Late"])))
        .otherwise(pl.col("categories"))
    )
    train_base, final_base = fit_bases(marked, Splits())
    assert "Only Late" not in train_base.vocabularies_["categories"]
    assert "Only Late" in final_base.vocabularies_["categories"]


def test_too_few_training_rows_says_how_many_are_needed(games: pl.DataFrame) -> None:
    few = games.filter(pl.col("year_published") >= 2021)
    n = few.filter(pl.col("year_published") <= 2022, OUTCOMES["complexity"].train_filter).height
    assert n < MIN_TRAIN_ROWS
    with pytest.raises(InputError) as caught:
        fit_outcome(OUTCOMES["complexity"], few, Splits())
    message = str(caught.value)
    assert f"{n} games through 2022" in message
    assert f"needs at least {MIN_TRAIN_ROWS}" in message
    assert "\n" not in message


def test_too_few_test_year_rows_names_the_year(games: pl.DataFrame) -> None:
    no_test_year = games.filter(pl.col("year_published") != 2024)
    with pytest.raises(InputError, match=rf"0 games in 2024 \(needs at least {MIN_TEST_ROWS}\)"):
        fit_outcome(OUTCOMES["complexity"], no_test_year, Splits())


def test_hurdle_with_every_game_past_it_fails_clearly(games: pl.DataFrame) -> None:
    popular = games.with_columns(users_rated=pl.col("users_rated") + 100)
    with pytest.raises(InputError, match="same side of the users_rated hurdle"):
        fit_outcome(OUTCOMES["hurdle"], popular, Splits())


def test_add_chain_inputs_appends_the_predicted_columns(games: pl.DataFrame) -> None:
    frame = games.head(4)
    models = {"complexity": Constant(9.0), "rating": Constant(7.0), "users_rated": Constant(4.0)}
    out = add_chain_inputs(frame, models)
    assert out.columns == [
        *frame.columns,
        "predicted_complexity",
        "predicted_rating",
        "predicted_log_users_rated",
    ]
    assert out["predicted_complexity"].to_list() == [5.0] * 4  # clipped like the outcome
    assert out["predicted_log_users_rated"].to_list() == [4.0] * 4
    assert add_chain_inputs(frame, {}).columns == frame.columns


# -- estimators -------------------------------------------------------------------------------


def test_sparse_and_dense_input_predict_the_same() -> None:
    rng = np.random.default_rng(0)
    X = sparse.random(120, 15, density=0.3, random_state=1, format="csr")
    y = X @ rng.normal(size=15) + rng.normal(scale=0.1, size=120)
    for kind in ("ridge", "ard"):
        model = SparseBayesianRegressor(kind=kind).fit(X, y)
        np.testing.assert_allclose(model.predict(X), model.predict(X.toarray()))
        assert np.corrcoef(model.predict(X), y)[0, 1] > 0.9


def test_ard_keeps_the_posterior_of_the_features_it_did_not_prune() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 12))
    y = 3 * X[:, 0] - 2 * X[:, 1] + rng.normal(scale=0.1, size=200)
    ard = SparseBayesianRegressor(kind="ard").fit(X, y)
    assert ard.active_[:2].all() and ard.active_.sum() < 12
    assert ard.sigma_.shape == (ard.active_.sum(), ard.active_.sum())
    draws = ard.posterior_draws(50, np.random.default_rng(0))
    assert draws.shape == (50, 12)
    assert (draws[:, ~ard.active_] == 0).all()
    ridge = SparseBayesianRegressor(kind="ridge").fit(X, y)
    assert ridge.active_.all() and ridge.sigma_.shape == (12, 12)


def test_build_head_picks_the_estimator() -> None:
    from sklearn.linear_model import LogisticRegression

    assert isinstance(build_head(OUTCOMES["hurdle"])[-1], LogisticRegression)
    assert build_head(OUTCOMES["rating"], "ard")[-1].kind == "ard"
    assert build_head(OUTCOMES["rating"], "bayesian_ridge")[-1].kind == "ridge"


# -- train_outcomes: chain order, shared base, registration -----------------------------------


def test_train_outcomes_registers_the_chain_with_a_shared_base(
    games: pl.DataFrame, registry: Registry
) -> None:
    # rating's complexity input comes from the model fitted in the same call, not the registry
    refs = {**NAMES, "complexity": "not-registered"}
    results = train_outcomes(games, registry, ["rating", "complexity"], NAMES, refs, Splits())
    assert [r.outcome for r in results] == ["complexity", "rating"]  # chain order
    complexity, rating = (registry.load(r.registration.label).model for r in results)
    rating_features = rating.named_steps["features"]
    assert rating_features.chain_inputs == ("predicted_complexity",)
    assert complexity.named_steps["features"].chain_inputs == ()
    assert rating_features.base_fingerprint_ == complexity.named_steps["features"].base_fingerprint_

    registration = registry.resolve("rating")
    assert registration.metrics == results[1].metrics
    assert registration.training["estimator"] == "bayesian_ridge"
    assert registration.training["test_through"] == 2024
    assert registration.output["clip"] == [1.0, 10.0]
    assert registration.experiment == "rating-baseline"
    columns = {c.name: (c.dtype, c.model_extra["source"]) for c in registration.signature}
    assert columns["predicted_complexity"] == ("FLOAT64", "chain")
    assert columns["min_age"] == ("INT64", "warehouse")
    assert columns["categories"] == ("ARRAY<STRING>", "warehouse")
    assert [c["name"] for c in signature(rating)] == [c.name for c in registration.signature]


def test_an_upstream_model_not_trained_now_loads_from_the_registry(
    games: pl.DataFrame, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_outcomes(games, registry, ["complexity"], NAMES, NAMES, Splits())
    loads: list[tuple[Any, ...]] = []
    original = Registry.load

    def spy(self: Registry, ref: Any, model_type: str | None = None) -> Any:
        loads.append((str(ref), model_type))
        return original(self, ref, model_type)

    monkeypatch.setattr(Registry, "load", spy)
    [result] = train_outcomes(games, registry, ["users_rated"], NAMES, NAMES, Splits())
    assert loads == [("complexity", "complexity")]
    assert result.registration.label == "users_rated:1"


def test_a_missing_upstream_model_is_named(games: pl.DataFrame, registry: Registry) -> None:
    with pytest.raises(RegistryError, match="unknown complexity model 'complexity'"):
        train_outcomes(games, registry, ["geek_rating"], NAMES, NAMES, Splits())
    assert registry.list() == []
