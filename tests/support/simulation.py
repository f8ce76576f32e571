"""Production's ``/simulate_games``, as a plain slow loop over draws, written from the facts
in domain.md (never from production's code), for the tests of bggscore.scoring.simulate.

Per model: weight vectors w_d ~ N(coef_, sigma_) (ARD's pruned weights fixed at coef_ = 0),
one per draw and shared by every game of the batch, as production draws them; per draw the
frame gets the upstream draws written into its chain columns and is transformed again (the
slow path, which assumes nothing about the preprocessor); prediction
``X_d @ w_d + intercept_`` plus N(0, 1/alpha_) noise. Complexity draws are clipped to
[1, 5] before they feed rating and users_rated, rating draws to [1, 10]; users_rated stays
on the log scale (counts max(expm1(draw), 25)); the direct geek model reads the clipped
complexity and rating draws and the raw log users_rated draw, and is clipped to [1, 10];
the formula takes the rating draws and the counts. Summaries: np.percentile 5/50/95.

Besides the draws it returns, per model, the standard normal each draw amounts to for each
game: u = (X_d @ (w_d - coef_) + noise) / sqrt(diag(X_d sigma X_d') + 1/alpha_), the
variance taken from the full covariance and the transformed rows directly. Fed to
``ChainPosteriors.draws``, those reproduce this loop's draws when (and only when) the fast
code's means and variances are right.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

STREAMS = ("complexity", "rating", "users_rated", "geek_rating")
SOURCES = {
    "predicted_complexity": "complexity",
    "predicted_rating": "rating",
    "predicted_users_rated_log": "users_rated",
    "predicted_log_users_rated": "users_rated",
}
LANDING = {
    "complexity": "predicted_complexity",
    "rating": "predicted_rating",
    "users_rated": "predicted_users_rated",
    "geek_rating": "predicted_geek_rating",
}


@dataclass
class Reference:
    draws: dict[str, np.ndarray]  # rows x draws: complexity, rating, users_rated_log, ...
    normals: np.ndarray  # rows x STREAMS x draws: what each draw amounts to, standardised
    summary: dict[str, np.ndarray]  # the landing columns, as simulate_chain names them


def full_covariance(model: Any) -> np.ndarray:
    """sigma_ over every weight: ARD's covers only lambda_ < threshold_lambda."""
    p = len(model.coef_)
    sigma = np.asarray(model.sigma_)
    if sigma.shape == (p, p):
        return sigma
    kept = np.flatnonzero(model.lambda_ < model.threshold_lambda)
    full = np.zeros((p, p))
    full[np.ix_(kept, kept)] = sigma
    return full


def weight_draws(model: Any, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """n_draws x p weight vectors from N(coef_, sigma_)."""
    sigma = full_covariance(model)
    kept = np.flatnonzero(np.diag(sigma) > 0)
    block = sigma[np.ix_(kept, kept)]
    try:
        root = np.linalg.cholesky(block)
    except np.linalg.LinAlgError:  # production adds 1e-10 to the diagonal
        root = np.linalg.cholesky(block + 1e-10 * np.eye(len(kept)))
    weights = np.tile(np.asarray(model.coef_, dtype=float), (n_draws, 1))
    weights[:, kept] += rng.standard_normal((n_draws, len(kept))) @ root.T
    return weights


def _dense(X: Any) -> np.ndarray:
    return X.toarray() if hasattr(X, "toarray") else np.asarray(X, dtype=float)


def _simulate(
    pipeline: Any,
    frame: pd.DataFrame,
    chain: list[str],
    upstream: Mapping[str, np.ndarray],
    n_draws: int,
    rng: np.random.Generator,
    standardise: bool,
) -> tuple[np.ndarray, np.ndarray]:
    model, preprocessor = pipeline.steps[-1][1], pipeline[:-1]
    weights = weight_draws(model, n_draws, rng)
    sigma = full_covariance(model)
    noise_sd = 1.0 / np.sqrt(model.alpha_)
    noise = rng.normal(0.0, noise_sd, (len(frame), n_draws))
    draws = np.empty((len(frame), n_draws))
    normals = np.empty_like(draws)
    X = _dense(preprocessor.transform(frame)) if not chain else None
    for d in range(n_draws):
        if chain:
            frame_d = frame.copy()
            for column in chain:
                frame_d[column] = upstream[SOURCES[column]][:, d]
            X = _dense(preprocessor.transform(frame_d))
        assert X is not None
        draws[:, d] = X @ weights[d] + model.intercept_ + noise[:, d]
        if not standardise:
            continue
        spread = X @ (weights[d] - model.coef_) + noise[:, d]
        sd = np.sqrt(np.einsum("ij,jk,ik->i", X, sigma, X) + noise_sd**2)
        normals[:, d] = spread / sd
    return draws, normals


def production_simulate_reference(
    frame: pd.DataFrame,
    models: Mapping[str, Any],
    chain_inputs: Mapping[str, list[str]],
    n_draws: int,
    geek_formula: tuple[float, float] | None,
    seed: int = 42,
    standardise: bool = True,
) -> Reference:
    """Production's simulation of ``frame`` (rows x n_draws), seeded like production (42);
    ``standardise=False`` skips the normals (for timing the loop alone)."""
    rng = np.random.default_rng(seed)
    drawn: dict[str, np.ndarray] = {}
    normals = np.zeros((len(frame), len(STREAMS), n_draws))
    for i, model_type in enumerate(STREAMS):
        if model_type == "geek_rating" and geek_formula is not None:
            break
        chain = list(chain_inputs.get(model_type, []))
        values, normals[:, i] = _simulate(
            models[model_type], frame, chain, drawn, n_draws, rng, standardise
        )
        if model_type in ("complexity", "rating", "geek_rating"):
            values = np.clip(values, 1.0, 5.0 if model_type == "complexity" else 10.0)
        drawn[model_type] = values
    counts = np.maximum(np.expm1(drawn["users_rated"]), 25.0)
    if geek_formula is not None:
        prior_rating, prior_weight = geek_formula
        rating = np.clip(drawn["rating"], 1.0, 10.0)
        drawn["geek_rating"] = (rating * counts + prior_rating * prior_weight) / (
            counts + prior_weight
        )
    summary: dict[str, np.ndarray] = {}
    for outcome, values in ({**drawn, "users_rated": counts}).items():
        low, median, high = np.percentile(values, [5, 50, 95], axis=1)
        summary[LANDING[outcome]] = median
        summary[f"{outcome}_lower_90"] = low
        summary[f"{outcome}_upper_90"] = high
    return Reference(
        draws={
            "complexity": drawn["complexity"],
            "rating": drawn["rating"],
            "users_rated_log": drawn["users_rated"],
            "users_rated": counts,
            "geek_rating": drawn["geek_rating"],
        },
        normals=normals,
        summary=summary,
    )
