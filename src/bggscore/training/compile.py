"""Fitted training pipelines -> ``bggscore.linear.LinearModel``: what gets registered.

A features -> MaxAbsScaler -> Bayesian linear (or logistic) pipeline becomes plain
arrays with the scaler folded into the weights, so scoring loads it without
scikit-learn. Pipelines of any other shape are registered as they are. The embedders
become ``embeddings.plain``'s classes alike (``compile_embedder``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bggscore.linear import BayesianLinear, LinearModel, Logistic


def compile_pipeline(pipeline: Any) -> Any:
    """A features -> MaxAbsScaler -> linear pipeline as a ``LinearModel``; else unchanged."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import MaxAbsScaler

    from bggscore.features import Features
    from bggscore.training.estimators import SparseBayesianRegressor

    steps = [step for _, step in getattr(pipeline, "steps", [])]
    if len(steps) != 3:
        return pipeline
    features, scaler, model = steps
    if not isinstance(features, Features) or not isinstance(scaler, MaxAbsScaler):
        return pipeline
    scale = np.asarray(scaler.scale_, dtype=np.float64)
    head: BayesianLinear | Logistic
    if isinstance(model, SparseBayesianRegressor):
        head = BayesianLinear(
            model.kind,
            np.asarray(model.coef_, dtype=np.float64),
            float(model.intercept_),
            scale,
            np.asarray(model.X_offset_, dtype=np.float64),
            np.asarray(model.sigma_, dtype=np.float64),
            np.asarray(model.active_, dtype=bool),
            float(model.alpha_),
        )
    elif isinstance(model, LogisticRegression) and list(model.classes_) == [0, 1]:
        coef = np.asarray(model.coef_, dtype=np.float64).ravel() / scale
        head = Logistic(coef, float(np.asarray(model.intercept_).ravel()[0]))
    else:
        return pipeline
    return LinearModel(features.plain(), head)


def compile_embedder(embedder: Any) -> Any:
    """A fitted TextEmbedder or GameEmbedder as plain arrays (``embeddings.plain``);
    anything else unchanged (a 2-D projection that whitens has no plain form)."""
    from bggscore.embeddings.game import GameEmbedder
    from bggscore.embeddings.plain import PlainGameEmbedder, PlainTextEmbedder
    from bggscore.embeddings.text import TextEmbedder

    if isinstance(embedder, TextEmbedder):
        return PlainTextEmbedder(embedder)
    if isinstance(embedder, GameEmbedder) and not getattr(embedder.pca_, "whiten", False):
        return PlainGameEmbedder(embedder)
    return embedder
