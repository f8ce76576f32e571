"""The reproduced production registry (tests/support/production.py) has production's shape:
pickles that need the user's `src` package, production's pipeline steps and estimators,
production's registration.json fields, and a chain whose outputs look like production's."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import sklearn
from sklearn.base import BaseEstimator
from sklearn.linear_model import ARDRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from tests.support.production import (
    MODEL_TYPES,
    PROD_CODE,
    ProductionModels,
    ProductionRegistry,
    fake_embeddings,
    make_pipeline,
    prod_code_on_path,
    production_frame,
    production_predict_games,
    write_production_registry,
)

PREPROCESSOR_STEPS = ["bgg_preprocessor", "impute", "log", "year", "variance_selector", "scaler"]
TOP_KEYS = [
    "name",
    "version",
    "status",
    "description",
    "registered_at",
    "registered_by",
    "environment",
    "metadata",
    "original_experiment",
    "model_info",
]
EXPERIMENT_KEYS = {
    "model_type",
    "model_task",
    "algorithm",
    "algorithm_params",
    "target_column",
    "train_through",
    "tune_through",
    "test_through",
    "use_embeddings",
    "sample_weights",
    "hash",
    "config_hash",
    "config",
}


def src_modules() -> list[str]:
    return [n for n in sys.modules if n == "src" or n.startswith("src.")]


def load(path: Path) -> Pipeline:
    with prod_code_on_path():
        return pickle.loads(path.read_bytes())


def test_fitting_the_five_is_fast(production_models: ProductionModels) -> None:
    print(f"fitted the five production pipelines in {production_models.fit_seconds:.1f} s")
    assert production_models.fit_seconds < 30
    assert set(production_models.models) == set(MODEL_TYPES)


def test_the_pickles_load_only_with_the_users_code(
    production_registry: ProductionRegistry,
) -> None:
    blob = (
        production_registry.root / "rating" / "rating-v2026" / "v1" / "pipeline.pkl"
    ).read_bytes()
    assert b"src.features.preprocessor" in blob and b"BGGPreprocessor" in blob
    assert b"src.features.transformers" in blob
    with pytest.raises(ModuleNotFoundError, match=r"No module named 'src(\.features)?'"):
        pickle.loads(blob)

    with prod_code_on_path():
        pipeline = pickle.loads(blob)
        module = sys.modules[type(pipeline[0][0]).__module__]
        assert module.__name__ == "src.features.preprocessor"
        assert Path(module.__file__ or "").resolve().is_relative_to(PROD_CODE)
    assert not src_modules()
    assert str(PROD_CODE) not in sys.path


def test_the_fixture_package_wins_over_the_repository_src_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # with the repository root on sys.path, `import src` is a namespace package over src/
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(repo))
    import src

    assert getattr(src, "__file__", None) is None  # the namespace package
    with prod_code_on_path():
        import src as fixture

        assert Path(fixture.__file__).resolve() == PROD_CODE / "src" / "__init__.py"
    assert not src_modules()


def test_pipelines_have_production_steps_and_estimators(
    production_registry: ProductionRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # unpickling pops `_sklearn_version` from each sklearn object's state: record it there
    versions: dict[str, object] = {}
    restore = BaseEstimator.__setstate__

    def record(self: BaseEstimator, state: dict[str, object]) -> None:
        versions[type(self).__name__] = state.get("_sklearn_version")
        restore(self, state)

    monkeypatch.setattr(BaseEstimator, "__setstate__", record)
    for model_type in MODEL_TYPES:
        versions.clear()
        pipeline = load(
            production_registry.root / model_type / f"{model_type}-v2026" / "v1" / "pipeline.pkl"
        )
        assert [name for name, _ in pipeline.steps] == ["preprocessor", "model"]
        preprocessor = pipeline.named_steps["preprocessor"]
        assert [name for name, _ in preprocessor.steps] == PREPROCESSOR_STEPS
        for _, step in preprocessor.steps:  # set_output(transform="pandas")
            assert step._sklearn_output_config["transform"] == "pandas"
        first = preprocessor.steps[0][1]
        assert not hasattr(first, "feature_names_in_")
        assert hasattr(preprocessor.named_steps["impute"], "feature_names_in_")
        estimator = pipeline.named_steps["model"]
        expected = LogisticRegression if model_type == "hurdle" else ARDRegression
        assert type(estimator) is expected
        assert versions[expected.__name__] == sklearn.__version__
        assert versions["SimpleImputer"] == sklearn.__version__
        assert versions["BGGPreprocessor"] is None  # not an sklearn class


def test_chain_columns_reach_the_models_that_use_them(
    production_models: ProductionModels,
) -> None:
    def names(model_type: str) -> set[str]:
        return set(production_models.models[model_type][:-1].get_feature_names_out())

    chain = {"predicted_complexity", "predicted_rating", "predicted_users_rated_log"}
    assert not chain & names("complexity") and not chain & names("hurdle")
    assert chain & names("rating") == {"predicted_complexity"}
    assert chain & names("users_rated") == {"predicted_complexity"}
    assert chain & names("geek_rating") == chain
    assert {"emb_0", "emb_99"} <= names("complexity")


def test_production_predict_games_gives_production_shaped_outputs(
    production_models: ProductionModels,
) -> None:
    frame = production_frame(production_models.features, production_models.embeddings)
    out = production_predict_games(frame, production_models.models)
    assert list(out.columns) == [
        "game_id",
        "predicted_hurdle_prob",
        "predicted_complexity",
        "predicted_rating",
        "predicted_users_rated",
        "predicted_geek_rating",
    ]
    assert out["game_id"].tolist() == frame["game_id"].tolist()
    assert np.isfinite(out.drop(columns="game_id").to_numpy()).all()
    assert out["predicted_hurdle_prob"].between(0, 1).all()
    assert out["predicted_geek_rating"].between(1, 10).all()
    users = out["predicted_users_rated"]
    assert (users >= 25).all() and ((users % 50 == 0) | (users == 25)).all()
    # in-sample, the models learned something: complexity tracks the real weights
    assert np.corrcoef(out["predicted_complexity"], frame["average_weight"])[0, 1] > 0.5


def test_the_preprocessor_ignores_extra_columns_and_needs_no_fixed_set(
    production_models: ProductionModels,
) -> None:
    model = production_models.models["complexity"]
    frame = production_frame(production_models.features, production_models.embeddings)
    frame = frame.head(20)
    reordered = frame[list(reversed(frame.columns))].assign(unrelated=1.0)
    np.testing.assert_allclose(model.predict(reordered), model.predict(frame))
    with pytest.raises(ValueError, match="emb_0"):
        model.predict(frame.drop(columns=["emb_0"]))


def test_the_preprocessor_takes_lists_or_none_for_array_columns() -> None:
    with prod_code_on_path():
        from src.features.preprocessor import BGGPreprocessor

    games = pd.DataFrame(
        {
            "year_published": [2001.0, 2015.0, None],
            "min_players": [2, 0, 1],
            "max_players": [4, 0, 1],
            "min_playtime": [30, 0, 10],
            "max_playtime": [60, 0, 10],
            "min_age": [10, 0, 8],
            "description": ["A game", None, "Another"],
            "categories": [np.array(["Dice", "War"]), None, ["Dice"]],
            "mechanics": [[], None, np.array(["Dice Rolling"])],
            "publishers": [None, None, None],
            "designers": [["X"], None, []],
            "artists": [None, None, None],
            "families": [None, None, None],
            "emb_0": [0.1, 0.2, 0.3],
            "predicted_complexity": [2.0, 3.0, 1.5],
        }
    )
    out = BGGPreprocessor(max_categories=1).fit(games).transform(games)
    assert out["category_dice"].tolist() == [1.0, 0.0, 1.0]
    assert "category_war" not in out.columns  # beyond the top 1
    assert out["num_categories"].tolist() == [2.0, 0.0, 1.0]
    assert out["players_3"].tolist() == [1.0, 0.0, 0.0]
    assert np.isnan(out["min_age"][1]) and np.isnan(out["max_players"][1])
    assert out["time_per_player"][0] == 15.0
    assert out["description_length"].tolist() == [6.0, 0.0, 7.0]
    assert out["emb_0"].tolist() == [0.1, 0.2, 0.3]
    assert out["predicted_complexity"].tolist() == [2.0, 3.0, 1.5]


def test_registrations_have_productions_fields(production_registry: ProductionRegistry) -> None:
    for model_type in MODEL_TYPES:
        folder = production_registry.root / model_type / f"{model_type}-v2026" / "v1"
        text = (folder / "registration.json").read_text()
        doc = json.loads(text)
        assert text == json.dumps(doc, indent=2)
        assert list(doc) == TOP_KEYS
        assert doc["name"] == f"{model_type}-v2026" and doc["version"] == 1
        assert doc["status"] == "registered" and doc["registered_by"] is None
        assert "T" in doc["registered_at"] and "+" not in doc["registered_at"]  # naive ISO
        assert doc["metadata"] == {"environment": doc["environment"]}
        metadata = doc["original_experiment"]["metadata"]
        optional = {"optimal_threshold"} if model_type == "hurdle" else set()
        assert set(metadata) == EXPERIMENT_KEYS | optional
        assert metadata["model_type"] == model_type and metadata["test_through"] == 2024
        assert set(doc["model_info"]) == {
            "n_features",
            "best_params",
            "intercept",
            "preprocessor_params",
        }
        assert "sha256" not in text and "signature" not in text
    for other in ("embeddings", "text-embeddings"):
        folder = production_registry.root / other / f"{other}-v2026" / "v1"
        assert json.loads((folder / "registration.json").read_text())["name"] == f"{other}-v2026"
        assert (folder / "pipeline.pkl").is_file()


def test_several_versions_and_archived_ones(
    production_models: ProductionModels, tmp_path: Path
) -> None:
    root = write_production_registry(
        tmp_path, production_models.models, versions=(1, 2), archived=(1,)
    )
    folder = root / "geek_rating" / "geek_rating-v2026"
    assert sorted(p.name for p in folder.iterdir()) == ["v1", "v2"]
    old = json.loads((folder / "v1" / "registration.json").read_text())
    new = json.loads((folder / "v2" / "registration.json").read_text())
    assert old["status"] == "archived" and old["archive_reason"] and old["archived_at"]
    assert new["status"] == "registered" and "archived_at" not in new
    assert new["registered_at"] > old["registered_at"]
    assert isinstance(load(folder / "v2" / "pipeline.pkl"), Pipeline)


def test_production_frame_is_the_loaders_inner_join(production_models: ProductionModels) -> None:
    features = production_models.features.head(10)
    embeddings = fake_embeddings(features, dim=4).filter(
        pl.col("game_id") != features["game_id"][3]
    )
    unknown_year = features.with_columns(
        pl.when(pl.col("game_id") == features["game_id"][5])
        .then(None)
        .otherwise(pl.col("year_published"))
        .alias("year_published")
    )
    frame = production_frame(unknown_year, embeddings)
    expected = [g for i, g in enumerate(features["game_id"]) if i not in (3, 5)]
    assert frame["game_id"].tolist() == expected
    assert list(frame.columns) == [*features.columns, "emb_0", "emb_1", "emb_2", "emb_3"]
    assert frame["emb_0"].dtype == np.float64


def test_fake_embeddings_are_deterministic(production_models: ProductionModels) -> None:
    features = production_models.features.head(5)
    first = fake_embeddings(features, dim=8)
    assert dict(first.schema) == {"game_id": pl.Int64, "embedding": pl.List(pl.Float64)}
    assert first.equals(fake_embeddings(features, dim=8))
    assert not first.equals(fake_embeddings(features, dim=8, seed=1))
    assert 0.02 < np.std(np.vstack(first["embedding"].to_list())) < 0.3


def test_make_pipeline_without_embeddings_drops_them(production_models: ProductionModels) -> None:
    frame = production_frame(production_models.features, production_models.embeddings)
    pipeline = make_pipeline("complexity", use_embeddings=False)
    pipeline.fit(frame.head(200), frame["average_weight"].head(200))
    assert not [c for c in pipeline[:-1].get_feature_names_out() if c.startswith("emb_")]
    with pytest.raises(ValueError, match="unknown model type"):
        make_pipeline("similarity")
