"""Fitted linear models as plain arrays: what scoring loads, without scikit-learn.

Training fits scikit-learn pipelines (features -> MaxAbsScaler -> a Bayesian
linear regressor or a logistic regression); ``training.compile`` turns such a
pipeline into a ``LinearModel`` before it is registered. The scaler is folded
into the weights (``x / s @ w == x @ (w / s)``), so a prediction is the dense
columns and the one-hot pairs of ``Features.base_block`` times the weights, and
loading an artifact imports numpy only: about a second less per scoring run than
unpickling scikit-learn objects.

A ``LinearModel`` looks enough like a pipeline for the rest of bggscore:
``steps``, ``named_steps``, ``model[1:]`` (the head), ``predict`` and
``predict_proba`` on a polars frame. Pipelines of any other shape (e.g. registered
with ``models register``) are kept as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    from bggscore.features import BaseCache, Features


def _linear(X: Any, coef: np.ndarray, intercept: float) -> np.ndarray:
    return np.asarray(X @ coef, dtype=np.float64).ravel() + intercept


def _probability(z: np.ndarray) -> np.ndarray:
    """The logistic function; exp of non-positive numbers only, so it never overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def draw_coefficients(
    mean: np.ndarray, sigma: np.ndarray, active: np.ndarray, n_draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Draws (n_draws x features) from a Gaussian posterior over the ``active`` features;
    the others (pruned by ARD) stay 0."""
    draws = np.zeros((n_draws, len(mean)))
    chosen = np.flatnonzero(active)
    draws[:, chosen] = rng.multivariate_normal(mean[chosen], sigma, size=n_draws, method="cholesky")
    return draws


class BayesianLinear:
    """A Bayesian linear regressor over unscaled features, with its Gaussian posterior.

    ``coef_`` and ``X_offset_`` are in unscaled feature space; the posterior
    (``sigma_`` over the ``active_`` features) stays in the space it was fitted in,
    and ``posterior_draws`` returns draws divided by ``scale_`` like ``coef_``.
    """

    def __init__(
        self,
        kind: str,
        coef: np.ndarray,
        intercept: float,
        scale: np.ndarray,
        offset: np.ndarray,
        sigma: np.ndarray,
        active: np.ndarray,
        alpha: float,
    ) -> None:
        self.kind = kind
        self.scale_ = scale
        self.coef_ = coef / scale
        self.intercept_ = intercept
        self.X_offset_ = offset * scale
        self.sigma_ = sigma
        self.active_ = active
        self.alpha_ = alpha
        self._fitted_coef = coef  # the posterior mean, in the fitted space

    def predict(self, X: Any) -> np.ndarray:
        return _linear(X, self.coef_, self.intercept_)

    def posterior_draws(self, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """Coefficient draws (n_draws x n_features) for unscaled features."""
        draws = draw_coefficients(self._fitted_coef, self.sigma_, self.active_, n_draws, rng)
        return draws / self.scale_


class Logistic:
    """A binary logistic regression over unscaled features."""

    kind = "logistic"

    def __init__(self, coef: np.ndarray, intercept: float) -> None:
        self.coef_ = coef
        self.intercept_ = intercept

    def predict_proba(self, X: Any) -> np.ndarray:
        p = _probability(_linear(X, self.coef_, self.intercept_))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] > 0.5).astype(np.int64)


class LinearModel:
    """Features, then a linear head: a registered model scoring can load without sklearn."""

    def __init__(self, features: Features, head: BayesianLinear | Logistic) -> None:
        self.features = features
        self.head = head

    @property
    def steps(self) -> list[tuple[str, Any]]:
        return [("features", self.features), ("model", self.head)]

    @property
    def named_steps(self) -> dict[str, Any]:
        return dict(self.steps)

    def __getitem__(self, index: slice) -> Any:
        """``model[1:]`` is the head, as slicing a two-step pipeline would give."""
        chosen = self.steps[index]
        if len(chosen) != 1:
            raise IndexError(f"a LinearModel slice must pick one step, got {len(chosen)}")
        return chosen[0][1]

    def score(self, X: Any, cache: BaseCache | None = None) -> np.ndarray:
        """The prediction (a regressor) or the probability of class 1 (a classifier).

        Straight from the base block: dense columns times their weights plus one
        ``bincount`` over the one-hot pairs, so no sparse matrix is built; with a
        ``cache``, models sharing a feature base build that block once per batch.
        """
        features = self.features
        frame = features._check(X)
        block = cache.block(features, frame) if cache else features.base_block(frame)
        weights = self.head.coef_
        z = block.dot(weights) + self.head.intercept_
        if features.chain_inputs:
            z += features.chain_values(frame) @ weights[block.width :]
        return _probability(z) if isinstance(self.head, Logistic) else z

    def predict(self, X: Any) -> np.ndarray:
        if isinstance(self.head, Logistic):
            return (self.score(X) > 0.5).astype(np.int64)
        return self.score(X)

    @property
    def predict_proba(self) -> Callable[[Any], np.ndarray]:
        """Class probabilities, on a classifier only: on a regressor the attribute is
        absent (``hasattr`` is False), as on a scikit-learn pipeline ending in one, so
        registering a regressor as the hurdle model is refused."""
        if not isinstance(self.head, Logistic):
            raise AttributeError("predict_proba: this model is a regressor")
        return self._probabilities

    def _probabilities(self, X: Any) -> np.ndarray:
        p = self.score(X)
        return np.column_stack([1.0 - p, p])
