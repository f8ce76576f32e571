"""The five chain models (complexity, hurdle, rating, users_rated, geek_rating) fitted on a
small demo catalogue, and a ModelSet of them, for the scoring tests that need real pipelines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from bggscore.demo.catalogue import generate_catalogue
from bggscore.features import FeatureBuilder
from bggscore.modelset import GeekFormula, ModelSet
from bggscore.scoring.outcomes import OUTCOMES
from bggscore.scoring.predict import add_chain_inputs, predict
from bggscore.training.train import fit_pipeline

FORMULA = GeekFormula(5.5, 2000.0)
CHAIN_TYPES = ("complexity", "hurdle", "rating", "users_rated", "geek_rating")


@dataclass
class FakeRegistration:
    name: str
    version: int = 1
    experiment: str | None = "test"
    training: dict[str, Any] = field(default_factory=dict)
    signature: list[Any] = field(default_factory=list)
    sha256: str = "0" * 64

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}"


@dataclass
class FakeLoadedModel:
    registration: FakeRegistration
    model: Any


def make_catalogue(n: int = 2000, seed: int = 0) -> pl.DataFrame:
    return generate_catalogue(n, seed)


def make_pipelines(frame: pl.DataFrame) -> dict[str, Any]:
    """The five chain models on one shared, deliberately small feature base."""
    base = FeatureBuilder(max_categories=60, max_mechanics=60, max_people=30, max_families=30)
    base.fit(frame)
    sources = {
        "predicted_complexity": "complexity",
        "predicted_rating": "rating",
        "predicted_log_users_rated": "users_rated",
    }
    fitted: dict[str, Any] = {}
    for name in CHAIN_TYPES:
        outcome = OUTCOMES[name]
        inputs = add_chain_inputs(
            frame, {sources[c]: fitted[sources[c]] for c in outcome.chain_inputs}
        )
        if outcome.train_filter is not None:
            inputs = inputs.filter(outcome.train_filter)
        rows = inputs.filter(pl.col(outcome.target).is_not_null())
        y = outcome.target_values(rows).to_numpy()
        fitted[name] = fit_pipeline(outcome, base, rows, y, "bayesian_ridge")
    return fitted


def make_model_set(
    pipelines: dict[str, Any], formula: GeekFormula | None = FORMULA, **replace: Any
) -> ModelSet:
    chosen = {**pipelines, **replace}
    types = [t for t in CHAIN_TYPES if formula is None or t != "geek_rating"]
    models = {t: FakeLoadedModel(FakeRegistration(t), chosen[t]) for t in types if t in chosen}
    return ModelSet(models, formula)  # type: ignore[arg-type]


def make_point_complexity(pipelines: dict[str, Any], frame: pl.DataFrame) -> np.ndarray:
    return predict(pipelines["complexity"], frame, OUTCOMES["complexity"])
