"""Registered linear models: compiled from the training pipelines, loaded without sklearn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from tests.support.chain import (
    CHAIN_TYPES,
    make_catalogue,
    make_model_set,
    make_pipelines,
    make_point_complexity,
)

from bggscore.features import DESCRIPTION_CHARS, BaseCache
from bggscore.linear import LinearModel, Logistic
from bggscore.registry import open_registry
from bggscore.scoring.intervals import draw_chain
from bggscore.scoring.outcomes import OUTCOMES
from bggscore.scoring.predict import add_chain_inputs, predict
from bggscore.training.compile import compile_pipeline
from bggscore.training.train import signature


@pytest.fixture(scope="module")
def pipelines() -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return make_pipelines(make_catalogue(1500))


@pytest.fixture(scope="module")
def compiled(pipelines: dict[str, Any]) -> dict[str, Any]:
    return {name: compile_pipeline(p) for name, p in pipelines.items()}


@pytest.fixture(scope="module")
def games(pipelines: dict[str, Any]) -> pl.DataFrame:
    """Fresh games with every chain input the five models read."""
    frame = make_catalogue(300, seed=7)
    upstream = ("complexity", "rating", "users_rated")
    return add_chain_inputs(frame, {t: pipelines[t] for t in upstream})


def test_each_chain_model_compiles_to_plain_arrays(compiled: dict[str, Any]) -> None:
    for name in CHAIN_TYPES:
        model = compiled[name]
        assert isinstance(model, LinearModel), name
        assert [step for step, _ in model.steps] == ["features", "model"]
        assert type(model.features).__name__ == "Features"  # not the sklearn flavour
    assert isinstance(compiled["hurdle"].head, Logistic)
    assert compiled["rating"].named_steps["model"].kind == "ridge"


def test_only_a_classifier_has_predict_proba(
    compiled: dict[str, Any], pipelines: dict[str, Any], games: pl.DataFrame
) -> None:
    # as on a scikit-learn pipeline, so the registry can refuse a regressor as the hurdle
    assert not hasattr(compiled["rating"], "predict_proba")
    assert not hasattr(pipelines["rating"], "predict_proba")
    probabilities = compiled["hurdle"].predict_proba(games)
    assert probabilities.shape == (len(games), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


@pytest.mark.parametrize("name", CHAIN_TYPES)
def test_compiled_predictions_equal_the_pipelines(
    name: str, pipelines: dict[str, Any], compiled: dict[str, Any], games: pl.DataFrame
) -> None:
    outcome = OUTCOMES[name]
    expected = predict(pipelines[name], games, outcome)
    np.testing.assert_allclose(predict(compiled[name], games, outcome), expected, rtol=1e-10)
    # the batch cache path (one feature base for every model) gives the same
    shared = predict(compiled[name], games, outcome, BaseCache())
    np.testing.assert_allclose(shared, expected, rtol=1e-10)


def test_compiled_intervals_equal_the_pipelines(
    pipelines: dict[str, Any], compiled: dict[str, Any], games: pl.DataFrame
) -> None:
    point = make_point_complexity(pipelines, games)

    def draws(models: dict[str, Any]) -> dict[str, Any]:
        chosen = make_model_set(models)
        return draw_chain(games, point, chosen, 300, np.random.default_rng(11))

    expected, got = draws(pipelines), draws(compiled)
    assert expected.keys() == got.keys()
    for column in expected:
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-4, atol=1e-4)


def test_a_pipeline_of_another_shape_is_kept_as_it_is(pipelines: dict[str, Any]) -> None:
    ridge = Pipeline([*pipelines["rating"].steps[:-1], ("model", Ridge())])
    assert compile_pipeline(ridge) is ridge
    bare = Ridge()
    assert compile_pipeline(bare) is bare


def test_the_description_length_alone_builds_the_same_features(
    compiled: dict[str, Any], games: pl.DataFrame
) -> None:
    features = compiled["complexity"].features
    assert DESCRIPTION_CHARS in features.read_columns()
    assert "description" not in features.read_columns()
    chars = games.with_columns(pl.col("description").str.len_chars().alias(DESCRIPTION_CHARS)).drop(
        "description"
    )
    with_text, with_length = features.transform(games), features.transform(chars)
    assert (with_text != with_length).nnz == 0


def test_a_registered_model_scores_in_a_process_that_never_imports_sklearn(
    tmp_path: Path, compiled: dict[str, Any], games: pl.DataFrame
) -> None:
    registry = open_registry(str(tmp_path / "registry"), tmp_path)
    registry.register(
        "rating", "rating", compiled["rating"], signature=signature(compiled["rating"]), output={}
    )
    games.write_parquet(tmp_path / "games.parquet")
    script = f"""
import sys
import polars as pl
from bggscore.registry import open_registry
model = open_registry({str(tmp_path / "registry")!r}, {str(tmp_path)!r}).load("rating").model
values = model.predict(pl.read_parquet({str(tmp_path / "games.parquet")!r}))
assert len(values) == {len(games)}
print(sorted(m for m in sys.modules if m.split(".")[0] == "sklearn"))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_a_game_scores_the_same_bit_for_bit_in_any_batch(
    compiled: dict[str, Any], games: pl.DataFrame
) -> None:
    model, outcome = compiled["users_rated"], OUTCOMES["users_rated"]
    whole = predict(model, games, outcome, BaseCache())
    shuffled = games.with_row_index("position").sample(fraction=1.0, shuffle=True, seed=5)
    again = predict(model, shuffled.drop("position"), outcome)
    order = shuffled["position"].to_numpy()
    np.testing.assert_array_equal(again, whole[order])
    alone = [predict(model, games[i : i + 1], outcome)[0] for i in (0, 17, 299)]
    assert alone == [whole[0], whole[17], whole[299]]
