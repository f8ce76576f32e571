"""The production system's model registry, reproduced with our own code, for the import,
parity and scoring tests.

Production keeps ``<model_type>/<model_type>-v2026/v<N>/registration.json`` + ``pipeline.pkl``
(a plain pickle of a scikit-learn Pipeline whose first step is a class from the user's own
package, literally named ``src``). Here that package is tests/fixtures/prodcode; the five
pipelines are fitted on the real 1,000-game sample with fake description embeddings, and
chained as production chains them. Facts: domain.md, "The production models as they are".
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import pickle
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import polars as pl
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ARDRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

PROD_CODE = Path(__file__).resolve().parents[1] / "fixtures" / "prodcode"
MODEL_TYPES = ("hurdle", "complexity", "rating", "users_rated", "geek_rating")
OTHER_TYPES = ("embeddings", "text-embeddings")  # also in production's registry; not scorers
CHAIN_COLUMNS = ("predicted_complexity", "predicted_rating", "predicted_users_rated_log")
TRAIN_THROUGH, TUNE_THROUGH, TEST_THROUGH = 2022, 2023, 2024
MIN_TRAIN_ROWS = 300  # below this, train on every year
ENVIRONMENT = "prod"
LOG_COLUMNS = (
    "min_playtime",
    "max_playtime",
    "time_per_player",
    "description_length",
    "num_publishers",
    "num_designers",
    "num_artists",
    "num_families",
)
# the column each production experiment names as its target (warehouse aliases)
TARGET_COLUMNS = {
    "hurdle": "hurdle",
    "complexity": "complexity",
    "rating": "rating",
    "users_rated": "log_users_rated",
    "geek_rating": "geek_rating",
}


# -- the user's code on sys.path ----------------------------------------------------------
_modules: dict[str, ModuleType] = {}  # the fixture's `src` modules, kept between activations
_depth = 0


def _purge_src() -> None:
    for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
        del sys.modules[name]


def _is_ours(module: ModuleType) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve().is_relative_to(PROD_CODE)


@contextmanager
def prod_code_on_path() -> Iterator[Path]:
    """``src`` is the fixture package inside the block, and importable nowhere else.

    Any ``src`` already imported (the repository root on sys.path makes its own src/ folder
    a namespace package ``src``) is purged first. The fixture's modules are kept between
    blocks and put back on entry, so a class keeps its identity: a pipeline fitted in one
    block pickles in another. Nested blocks are the outer one.
    """
    global _depth
    if _depth:
        _depth += 1
        try:
            yield PROD_CODE
        finally:
            _depth -= 1
        return
    _purge_src()
    sys.modules.update(_modules)
    sys.path.insert(0, str(PROD_CODE))
    importlib.invalidate_caches()
    _depth = 1
    try:
        yield PROD_CODE
    finally:
        _depth = 0
        for name, module in list(sys.modules.items()):
            if (name == "src" or name.startswith("src.")) and _is_ours(module):
                _modules[name] = module
        _purge_src()
        if str(PROD_CODE) in sys.path:
            sys.path.remove(str(PROD_CODE))


# -- pipelines --------------------------------------------------------------------------
def make_pipeline(model_type: str, use_embeddings: bool = True) -> Pipeline:
    """An unfitted pipeline of production's shape for one of MODEL_TYPES."""
    with prod_code_on_path():
        from src.features.preprocessor import BGGPreprocessor
        from src.features.transformers import LogTransformer, YearTransformer

        preprocessor = Pipeline(
            [
                ("bgg_preprocessor", BGGPreprocessor(include_embeddings=use_embeddings)),
                ("impute", SimpleImputer(strategy="median", add_indicator=True)),
                ("log", LogTransformer(list(LOG_COLUMNS))),
                ("year", YearTransformer()),
                ("variance_selector", VarianceThreshold()),
                ("scaler", StandardScaler()),
            ]
        ).set_output(transform="pandas")
    if model_type == "hurdle":
        model: Any = LogisticRegression(C=0.1, max_iter=1000)
    elif model_type in MODEL_TYPES:
        model = ARDRegression(max_iter=60, tol=1e-3)
    else:
        raise ValueError(f"unknown model type {model_type!r}; one of {MODEL_TYPES}")
    return Pipeline([("preprocessor", preprocessor), ("model", model)])


# -- the loader's frame -------------------------------------------------------------------
def fake_embeddings(features: pl.DataFrame, dim: int = 100, seed: int = 0) -> pl.DataFrame:
    """One ~N(0, 1)/10 vector per game, seeded by game_id and a hash of its description:
    deterministic, and unrelated to the text (similar descriptions need not be close)."""
    vectors = []
    for game_id, text in zip(features["game_id"], features["description"], strict=True):
        digest = hashlib.sha256(f"{seed}:{game_id}:{text or ''}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        vectors.append((rng.standard_normal(dim) / 10).tolist())
    return pl.DataFrame(
        {"game_id": features["game_id"], "embedding": vectors},
        schema={"game_id": pl.Int64, "embedding": pl.List(pl.Float64)},
    )


def production_frame(features: pl.DataFrame, embeddings: pl.DataFrame) -> pd.DataFrame:
    """What production's loader hands the models: games_features INNER JOIN the description
    embeddings (games without one are dropped), year_published not null, the embedding
    expanded to emb_0..emb_{d-1} after the games_features columns, as pandas."""
    joined = features.join(
        embeddings.select("game_id", "embedding"), on="game_id", how="inner", maintain_order="left"
    ).filter(pl.col("year_published").is_not_null())
    dim = max(joined["embedding"].list.len().to_list(), default=0)
    emb = [pl.col("embedding").list.get(i).alias(f"emb_{i}") for i in range(dim)]
    return joined.select(*features.columns, *emb).to_pandas()


# -- production's chain -------------------------------------------------------------------
def users_rated_count(log_prediction: np.ndarray) -> np.ndarray:
    """Production's reported count: max(round(expm1(p) / 50) * 50, 25)."""
    return np.maximum(np.round(np.expm1(log_prediction) / 50) * 50, 25)


def training_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Years <= TRAIN_THROUGH (891 of the sample's 1,000 games), else every row."""
    train = frame[frame["year_published"] <= TRAIN_THROUGH]
    return train if len(train) >= MIN_TRAIN_ROWS else frame


def fit_production_models(features: pl.DataFrame, embeddings: pl.DataFrame) -> dict[str, Pipeline]:
    """The five pipelines, fitted and chained as production chains them."""
    train = training_rows(production_frame(features, embeddings))
    models = {t: make_pipeline(t) for t in MODEL_TYPES}

    rated = train[train["num_weights"] >= 5]
    models["complexity"].fit(rated, rated["average_weight"])
    # every sample game has >= 25 ratings, so the real hurdle target is constant: this one is
    # SYNTHETIC (at least the median count), only so a LogisticRegression can be fitted
    models["hurdle"].fit(train, train["users_rated"] >= train["users_rated"].median())

    chained = train.copy()
    chained["predicted_complexity"] = models["complexity"].predict(train)  # unclipped
    models["rating"].fit(chained, chained["average_rating"])
    models["users_rated"].fit(chained, np.log1p(chained["users_rated"]))

    geek = chained.copy()
    geek["predicted_rating"] = models["rating"].predict(chained)
    count = users_rated_count(models["users_rated"].predict(chained))
    geek["predicted_users_rated_log"] = np.log1p(count)
    models["geek_rating"].fit(geek, geek["bayes_average"])
    return models


def production_predict_games(df: pd.DataFrame, models: Mapping[str, Pipeline]) -> pd.DataFrame:
    """A plain-pandas reference of production's ``/predict_games`` point path."""
    hurdle = models["hurdle"].predict_proba(df)[:, 1]
    complexity = models["complexity"].predict(df)  # not clipped on this path
    chained = df.copy()
    chained["predicted_complexity"] = complexity
    rating = models["rating"].predict(chained)
    count = users_rated_count(models["users_rated"].predict(chained))
    geek_input = df.copy()
    geek_input["predicted_complexity"] = complexity
    geek_input["predicted_rating"] = rating
    geek_input["predicted_users_rated_log"] = np.log1p(count)
    geek = np.clip(models["geek_rating"].predict(geek_input), 1, 10)
    return pd.DataFrame(
        {
            "game_id": df["game_id"].to_numpy(),
            "predicted_hurdle_prob": hurdle,
            "predicted_complexity": complexity,
            "predicted_rating": rating,
            "predicted_users_rated": count,
            "predicted_geek_rating": geek,
        }
    )


# -- the registry on disk -----------------------------------------------------------------
def _digest(value: object) -> str:
    """A short hex id like production's experiment hashes (deterministic here)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _plain(params: Mapping[str, Any]) -> dict[str, Any]:
    """get_params() made JSON-friendly (no nested estimators here, but be safe)."""
    return {
        k: v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
        for k, v in params.items()
    }


def registration(
    model_type: str,
    pipeline: Any,
    version: int,
    *,
    name_suffix: str = "v2026",
    archived: bool = False,
) -> dict[str, Any]:
    """A registration.json document with production's fields (and only those)."""
    name = f"{model_type}-{name_suffix}"
    registered_at = datetime(2026, 1, 15, 9, 30) + timedelta(days=7 * (version - 1))
    estimator = pipeline.steps[-1][1] if isinstance(pipeline, Pipeline) else None
    algorithm = {
        LogisticRegression: "logistic",
        ARDRegression: "ard",
    }.get(type(estimator), "svd")
    algorithm_params = _plain(estimator.get_params()) if estimator is not None else {}
    config = {
        "model_type": model_type,
        "algorithm": algorithm,
        "algorithm_params": algorithm_params,
        "train_through": TRAIN_THROUGH,
        "tune_through": TUNE_THROUGH,
        "test_through": TEST_THROUGH,
        "use_embeddings": True,
    }
    metadata: dict[str, Any] = {
        "model_type": model_type,
        "model_task": "classification" if model_type == "hurdle" else "regression",
        "algorithm": algorithm,
        "algorithm_params": algorithm_params,
        "target_column": TARGET_COLUMNS.get(model_type),
        "train_through": TRAIN_THROUGH,
        "tune_through": TUNE_THROUGH,
        "test_through": TEST_THROUGH,
        "use_embeddings": True,
    }
    if model_type == "hurdle":
        metadata["optimal_threshold"] = 0.42
    metadata |= {
        "sample_weights": None,
        "hash": _digest([model_type, version]),
        "config_hash": _digest(config),
        "config": config,
    }
    doc: dict[str, Any] = {
        "name": name,
        "version": version,
        "status": "archived" if archived else "registered",
    }
    if archived:
        doc["archived_at"] = (registered_at + timedelta(days=6)).isoformat()
        doc["archive_reason"] = "superseded by a newer version"
    doc |= {
        "description": f"Production {model_type} model ({name_suffix})",
        "registered_at": registered_at.isoformat(),
        "registered_by": None,
        "environment": ENVIRONMENT,
        "metadata": {"environment": ENVIRONMENT},
        "original_experiment": {"name": f"{model_type}-{algorithm}-2026", "metadata": metadata},
        "model_info": _model_info(pipeline),
    }
    return doc


def _model_info(pipeline: Any) -> dict[str, Any]:
    if not isinstance(pipeline, Pipeline):
        return {"n_features": None, "best_params": {}, "preprocessor_params": {}}
    estimator = pipeline.steps[-1][1]
    info: dict[str, Any] = {
        "n_features": int(np.size(estimator.coef_)),
        "best_params": {"model__C": estimator.C}
        if isinstance(estimator, LogisticRegression)
        else {"model__alpha_1": estimator.alpha_1, "model__lambda_1": estimator.lambda_1},
    }
    if hasattr(estimator, "intercept_"):
        info["intercept"] = float(np.ravel(estimator.intercept_)[0])
    first = pipeline.named_steps["preprocessor"].steps[0][1]
    info["preprocessor_params"] = _plain(first.get_params())
    return info


def write_production_registry(
    root: Path,
    models: Mapping[str, Pipeline],
    *,
    name_suffix: str = "v2026",
    versions: Sequence[int] = (1,),
    archived: Sequence[int] = (),
) -> Path:
    """Production's registry folder (the part below ``<env>/models/registered``) at root:
    the five scorers at each of ``versions`` (``archived`` ones marked so; the same model
    re-pickled for every version), plus one version of embeddings and text-embeddings."""
    root = Path(root)
    with prod_code_on_path():  # the pickles name classes as `src.features...`
        for model_type in MODEL_TYPES:
            blob = pickle.dumps(models[model_type])
            for version in versions:
                doc = registration(
                    model_type,
                    models[model_type],
                    version,
                    name_suffix=name_suffix,
                    archived=version in archived,
                )
                _write(root / model_type / doc["name"] / f"v{version}", doc, blob)
    for model_type in OTHER_TYPES:
        dummy = {"kind": model_type, "note": "not a scorer; an importer skips it"}
        doc = registration(model_type, dummy, 1, name_suffix=name_suffix)
        _write(root / model_type / doc["name"] / "v1", doc, pickle.dumps(dummy))
    return root


def _write(folder: Path, doc: Mapping[str, Any], blob: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registration.json").write_text(json.dumps(doc, indent=2))
    (folder / "pipeline.pkl").write_bytes(blob)


# -- the sample, fitted once ---------------------------------------------------------------
class ProductionModels(NamedTuple):
    features: pl.DataFrame  # the sample's games_features rows
    embeddings: pl.DataFrame  # fake_embeddings(features)
    models: dict[str, Pipeline]  # shared: never refit or mutate
    fit_seconds: float


class ProductionRegistry(NamedTuple):
    features: pl.DataFrame
    embeddings: pl.DataFrame
    models: dict[str, Pipeline]
    root: Path  # write_production_registry(root, models): read-only, copy to change it


@functools.cache
def sample_production(sample: Path) -> ProductionModels:
    """The five pipelines fitted on the sample, once per process."""
    features = pl.read_parquet(sample)
    embeddings = fake_embeddings(features)
    start = time.perf_counter()
    models = fit_production_models(features, embeddings)
    return ProductionModels(features, embeddings, models, time.perf_counter() - start)
