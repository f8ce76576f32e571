"""Estimators that fit on dense data but predict straight from sparse features."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, RegressorMixin


class SparseBayesianRegressor(RegressorMixin, BaseEstimator):
    """ARD (or Bayesian ridge) regression that accepts sparse input.

    scikit-learn's ARD fits only dense arrays; training sets are small enough to
    densify, scoring batches are not, so predictions are a sparse dot product.
    The posterior (``coef_``, ``sigma_``, ``alpha_``) is kept for intervals.
    """

    def __init__(self, kind: str = "ard", max_iter: int = 300) -> None:
        self.kind = kind
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any) -> SparseBayesianRegressor:
        from sklearn.linear_model import ARDRegression, BayesianRidge

        dense = X.toarray() if sparse.issparse(X) else np.asarray(X)
        if self.kind == "ard":
            model: Any = ARDRegression(max_iter=self.max_iter, threshold_lambda=1e5)
        else:
            model = BayesianRidge(max_iter=self.max_iter)
        model.fit(dense, np.asarray(y, dtype=np.float64))
        self.coef_ = np.asarray(model.coef_, dtype=np.float64)
        self.intercept_ = float(model.intercept_)
        # the posterior is over centred features: intervals move the intercept per draw
        self.X_offset_ = np.asarray(getattr(model, "X_offset_", np.zeros(dense.shape[1])))
        self.alpha_ = float(model.alpha_)
        # ARD keeps sigma_ only over the features it did not prune
        self.sigma_ = np.asarray(model.sigma_, dtype=np.float64)
        kept = getattr(model, "lambda_", None)
        if self.kind == "ard" and kept is not None:
            self.active_ = np.asarray(kept < model.threshold_lambda)
        else:
            self.active_ = np.ones(len(self.coef_), dtype=bool)
        self.n_features_in_ = dense.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        out = X @ self.coef_ if sparse.issparse(X) else np.asarray(X) @ self.coef_
        return np.asarray(out, dtype=np.float64).ravel() + self.intercept_

    def posterior_draws(self, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """Coefficient draws (n_draws × n_features) from the Gaussian posterior."""
        from bggscore.linear import draw_coefficients

        return draw_coefficients(self.coef_, self.sigma_, self.active_, n_draws, rng)
