"""Registered artifacts are a stored contract: they keep loading and scoring bit for bit.

The fixture under tests/fixtures/artifacts was written by bggscore's own code
(``make.py`` there says how; it is never regenerated to make this pass). Users' registries
hold pickles naming these classes, so a moved or renamed class, or a change in what a
model computes, fails here first.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from joblib.numpy_pickle import NumpyUnpickler

from bggscore.embeddings.game import TEXT_COLUMN
from bggscore.registry import open_registry
from bggscore.scoring.outcomes import OUTCOMES
from bggscore.scoring.predict import add_chain_inputs, predict

FIXTURE = Path(__file__).parent / "fixtures" / "artifacts"
OUTCOME_TYPES = ("complexity", "hurdle", "rating", "users_rated", "geek_rating")
# every bggscore class a registered artifact names (the pickled class paths)
CONTRACT = {
    ("bggscore.linear", "LinearModel"),
    ("bggscore.linear", "BayesianLinear"),
    ("bggscore.linear", "Logistic"),
    ("bggscore.features", "Features"),
    ("bggscore.features", "FeatureBuilder"),
    ("bggscore.training.estimators", "SparseBayesianRegressor"),
    ("bggscore.embeddings.text", "TextEmbedder"),
    ("bggscore.embeddings.game", "GameEmbedder"),
}
REFS = {
    **{t: (t, t) for t in OUTCOME_TYPES},
    "complexity_sklearn": ("complexity_sklearn", "complexity"),
    "text_embeddings": ("text_embeddings", "text_embeddings"),
    "game_embeddings": ("game_embeddings", "game_embeddings"),
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], set]:
    """Every fixture model, loaded through the registry (sha256 checked first), and the
    module/class pairs their pickles named."""
    home = tmp_path_factory.mktemp("contract")
    shutil.copytree(FIXTURE / "registry", home / "registry")
    registry = open_registry(str(home / "registry"), home)
    named: set[tuple[str, str]] = set()
    original = NumpyUnpickler.find_class

    def recording(self: NumpyUnpickler, module: str, name: str) -> object:
        named.add((module, name))
        return original(self, module, name)

    NumpyUnpickler.find_class = recording  # type: ignore[method-assign]
    try:
        models = {key: registry.load(ref, kind).model for key, (ref, kind) in REFS.items()}
    finally:
        NumpyUnpickler.find_class = original  # type: ignore[method-assign]
    return models, named


def test_artifacts_name_exactly_the_contracted_classes(loaded: tuple[dict, set]) -> None:
    _, named = loaded
    ours = {(module, name) for module, name in named if module.startswith("bggscore")}
    assert ours == CONTRACT


def test_artifacts_score_bit_for_bit(loaded: tuple[dict, set]) -> None:
    models, _ = loaded
    games = pl.read_parquet(FIXTURE / "games.parquet")
    expected = pl.read_parquet(FIXTURE / "expected.parquet")
    assert expected["game_id"].to_list() == games["game_id"].to_list()
    chain = ("complexity", "rating", "users_rated")
    chained = add_chain_inputs(games, {k: models[k] for k in chain})
    for name in OUTCOME_TYPES:
        got = predict(models[name], chained, OUTCOMES[name])
        assert np.array_equal(got, expected[name].to_numpy()), name
    got = predict(models["complexity_sklearn"], chained, OUTCOMES["complexity"])
    assert np.array_equal(got, expected["complexity_sklearn"].to_numpy())
    text = models["text_embeddings"].transform(games)  # type: ignore[attr-defined]
    assert np.array_equal(text, np.vstack(expected["text_embeddings"].to_list()))
    inputs = chained.with_columns(pl.Series(TEXT_COLUMN, text).cast(pl.List(pl.Float64)))
    vectors = models["game_embeddings"].transform(inputs)  # type: ignore[attr-defined]
    assert np.array_equal(vectors, np.vstack(expected["game_embeddings"].to_list()))
