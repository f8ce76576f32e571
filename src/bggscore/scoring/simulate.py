"""Posterior predictive intervals for imported Bayesian pipelines (production's models).

Production's ``/simulate_games`` (domain.md) draws weights w_d ~ N(coef_, sigma_) per
model, predicts ``X_transformed @ w_d + intercept_`` plus noise of variance 1/alpha_, and
chains the draws: complexity draw d (clipped to [1, 5]) is the ``predicted_complexity``
of rating and users_rated draw d; rating draws are clipped to [1, 10]; users_rated draws
stay on the log scale (counts max(expm1(draw), 25)); the direct geek model reads draw d
of all three (its ``predicted_users_rated_log`` gets the raw log draw, not log1p of a
rounded count as on the point path), or the bayesian formula takes the rating and count
draws. Landing keeps the medians and the 5th/95th percentiles of the draws.

For one game, ``a @ w_d`` with a fixed row ``a`` is normal with mean ``a @ coef_`` and
variance ``a sigma_ a'``, so draw d is taken directly as
``mean_d + sqrt(a_d sigma_ a_d' + 1/alpha_) * u_d`` with one standard normal u_d per model:
the same distribution per game as drawing whole weight vectors, at a cost per draw that
does not grow with the number of features. Each row's normals come from its own seed
(``standard_normals``), so a game's numbers depend on its seed, the models and the number
of draws only, never on the rest of the batch (up to float rounding).

A chain column's path through a preprocessor is usually affine (passthrough, impute,
StandardScaler): the row is then ``a_d = x0 + t_d * s`` with s the column's slope, and
mean and variance are quadratics in t_d, computed from a few transforms of the batch.
Affinity is checked on every chunk by transforming it at a few probe values (linear,
additive, the same slope for every row); where it fails, the chunk is transformed once
per draw, as production's slow path does. Values are float64; games go through in chunks
of about ``CHUNK_ELEMENTS`` draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bggscore.errors import InputError, UsageError
from bggscore.scoring.chain import bayesian_geek_rating
from bggscore.scoring.intervals import QUANTILES, quantiles
from bggscore.warehouse.schemas import INTERVAL_OUTCOMES, interval_columns

if TYPE_CHECKING:
    import pandas as pd

# draws per array (8 MB); games per chunk = this // n_draws. About 16 such arrays are
# alive at once (the normals, each outcome's draws, a model's mean/variance terms)
CHUNK_ELEMENTS = 1_000_000
SUPPORTED = "ARDRegression or BayesianRidge"
USERS_FLOOR = 25.0
CLIPS = {"complexity": (1.0, 5.0), "rating": (1.0, 10.0), "geek_rating": (1.0, 10.0)}
# the normals of a row: one stream per model, always all four, so a row's complexity,
# rating and users_rated draws are the same whichever geek rating is used
STREAMS = ("complexity", "rating", "users_rated", "geek_rating")
# chain column -> the draws it is fed, and (reference, step) probe values inside the range
# those draws take, for the affinity check
SOURCES = {
    "predicted_complexity": "complexity",
    "predicted_rating": "rating",
    "predicted_users_rated_log": "users_rated",
    "predicted_log_users_rated": "users_rated",  # bggscore's own name for it
}
PROBES = {"complexity": (3.0, 1.5), "rating": (6.5, 2.5), "users_rated": (6.0, 4.0)}
JOINT = -0.75  # the joint probe moves every column by JOINT * its step at once
LANDING = {
    "complexity": "predicted_complexity",
    "rating": "predicted_rating",
    "users_rated": "predicted_users_rated",
    "geek_rating": "predicted_geek_rating",
}


@dataclass(frozen=True)
class Posterior:
    """One fitted Bayesian linear pipeline: its preprocessor and Gaussian weight posterior
    (``sigma`` over the ``active`` weights; ARD's pruned weights stay at coef_, i.e. 0)."""

    model_type: str
    preprocessor: Any
    coef: np.ndarray
    intercept: float
    active: np.ndarray
    sigma: np.ndarray
    noise_var: float
    chain: tuple[str, ...]

    @classmethod
    def from_pipeline(cls, model_type: str, pipeline: Any, chain: tuple[str, ...]) -> Posterior:
        from sklearn.linear_model import ARDRegression, BayesianRidge
        from sklearn.pipeline import Pipeline

        in_pipeline = isinstance(pipeline, Pipeline)
        final = pipeline.steps[-1][1] if in_pipeline else pipeline
        if not in_pipeline or not isinstance(final, (ARDRegression, BayesianRidge)):
            kind = type(final).__name__ + ("" if in_pipeline else " outside a Pipeline")
            raise UsageError(
                f"--intervals cannot draw from the {model_type} model ({kind}): it needs "
                f"a scikit-learn Pipeline ending in {SUPPORTED}"
            )
        coef = np.asarray(final.coef_, dtype=np.float64).ravel()
        sigma = np.asarray(final.sigma_, dtype=np.float64)
        if isinstance(final, ARDRegression):
            active = np.flatnonzero(np.asarray(final.lambda_) < final.threshold_lambda)
        else:
            active = np.arange(len(coef))
        if sigma.shape != (len(active), len(active)):
            raise UsageError(
                f"--intervals cannot read the {model_type} model's posterior: sigma_ has "
                f"shape {sigma.shape} for {len(active)} kept of {len(coef)} weights"
            )
        return cls(
            model_type=model_type,
            preprocessor=pipeline[:-1],
            coef=coef,
            intercept=float(np.ravel(final.intercept_)[0]),
            active=active,
            sigma=sigma,
            noise_var=1.0 / float(final.alpha_),
            chain=chain,
        )

    def transform(self, frame: pd.DataFrame, values: Mapping[str, Any]) -> np.ndarray:
        """The model's input rows: ``frame`` with the chain columns appended, in order."""
        try:
            X = self.preprocessor.transform(frame.assign(**{c: values[c] for c in self.chain}))
        except (KeyError, ValueError) as error:  # e.g. a column it was fitted with is missing
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise InputError(
                f"the {self.model_type} model's preprocessor cannot transform these games: {reason}"
            ) from error
        X = X.toarray() if hasattr(X, "toarray") else np.asarray(X, dtype=np.float64)
        if X.shape != (len(frame), len(self.coef)):
            raise InputError(
                f"the {self.model_type} model's preprocessor gave {X.shape[1]} columns for "
                f"{len(self.coef)} weights: the pipeline does not fit these games' columns"
            )
        if np.isnan(X).any():
            bad = int(np.isnan(X).any(axis=1).sum())
            raise InputError(
                f"the {self.model_type} model's preprocessor left NaN in {bad} of "
                f"{len(X)} games: its pipeline cannot score them"
            )
        return X

    def moments(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: mean ``X @ coef_ + intercept_`` and weight variance ``x sigma x'``."""
        Xa = X[:, self.active]
        return X @ self.coef + self.intercept, np.einsum("ij,ij->i", Xa @ self.sigma, Xa)

    def draws(
        self, frame: pd.DataFrame, inputs: Mapping[str, np.ndarray], normals: np.ndarray
    ) -> np.ndarray:
        """Posterior predictive draws (rows x draws) given the chain inputs' draws."""
        shape = (len(frame), normals.shape[1])
        mean, var = self._linearised(frame, inputs, shape) or self._per_draw(frame, inputs, shape)
        np.maximum(var, 0.0, out=var)  # rounding in the quadratic form
        var += self.noise_var
        np.sqrt(var, out=var)
        var *= normals
        mean += var
        return mean

    def _linearised(
        self, frame: pd.DataFrame, inputs: Mapping[str, np.ndarray], shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Mean and variance per draw from len(chain) + 2 transforms of the rows (the
        reference, one probe per chain column, one joint probe), or None where the chain
        columns' path through the preprocessor is not affine: not linear, not additive, or
        with a slope that differs between rows."""
        probes = {c: PROBES[SOURCES[c]] for c in self.chain}
        X0 = self.transform(frame, {c: ref for c, (ref, _) in probes.items()})
        slopes = []
        for c, (ref, step) in probes.items():
            moved = {other: r for other, (r, _) in probes.items()} | {c: ref + step}
            slope = (self.transform(frame, moved) - X0) / step
            if not _close(slope, np.broadcast_to(slope[:1], slope.shape)):
                return None
            slopes.append(slope[0])
        S = np.array(slopes).reshape(len(self.chain), len(self.coef))
        if self.chain:
            joint = {c: ref + JOINT * step for c, (ref, step) in probes.items()}
            expected = X0 + (JOINT * np.array([s for _, s in probes.values()])) @ S
            if not _close(self.transform(frame, joint), expected):
                return None
        mean0, q00 = self.moments(X0)
        Xa, Sa = X0[:, self.active], S[:, self.active]
        q0 = (Xa @ self.sigma) @ Sa.T  # rows x chain: x0 sigma s_k'
        Q = Sa @ self.sigma @ Sa.T  # chain x chain: s_k sigma s_l'
        gain = S @ self.coef  # the mean's slope in each chain column
        mean = np.broadcast_to(mean0[:, None], shape).copy()
        var = np.broadcast_to(q00[:, None], shape).copy()
        t = [inputs[c] - ref for c, (ref, _) in probes.items()]
        for k in range(len(t)):
            mean += gain[k] * t[k]
            var += (2.0 * q0[:, k : k + 1] + Q[k, k] * t[k]) * t[k]
            for m in range(k + 1, len(t)):
                var += 2.0 * Q[k, m] * t[k] * t[m]
        return mean, var

    def _per_draw(
        self, frame: pd.DataFrame, inputs: Mapping[str, np.ndarray], shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance per draw, transforming the rows once per draw (slow)."""
        mean, var = np.empty(shape), np.empty(shape)
        for d in range(shape[1]):
            X = self.transform(frame, {c: inputs[c][:, d] for c in self.chain})
            mean[:, d], var[:, d] = self.moments(X)
        return mean, var


def _clip(values: np.ndarray, outcome: str) -> np.ndarray:
    return np.clip(values, *CLIPS[outcome], out=values)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    return bool(np.allclose(a, b, rtol=1e-7, atol=1e-9 * scale))


@dataclass(frozen=True)
class ChainPosteriors:
    """The chain's posteriors, checked once; ``draws`` simulates any rows with given
    standard normals (rows x STREAMS x draws), so tests can inject them."""

    posteriors: dict[str, Posterior]
    geek_formula: tuple[float, float] | None

    @classmethod
    def from_models(
        cls,
        models: Mapping[str, Any],
        chain_inputs: Mapping[str, list[str]],
        geek_formula: tuple[float, float] | None,
    ) -> ChainPosteriors:
        needed = ["complexity", "rating", "users_rated"]
        if geek_formula is None:
            needed.append("geek_rating")
        unknown = set(models) - set(STREAMS) - {"hurdle"}  # the hurdle keeps its point
        if unknown:
            raise UsageError(f"--intervals got models it has no place for: {sorted(unknown)}")
        upstream: dict[str, set[str]] = {
            "complexity": set(),
            "rating": {"complexity"},
            "users_rated": {"complexity"},
            "geek_rating": {"complexity", "rating", "users_rated"},
        }
        posteriors = {}
        for model_type in needed:
            if model_type not in models:
                raise UsageError(f"--intervals needs a {model_type} model")
            chain = tuple(chain_inputs.get(model_type, ()))
            bad = [c for c in chain if SOURCES.get(c) not in upstream[model_type]]
            if bad:
                raise UsageError(
                    f"--intervals cannot feed {', '.join(bad)} to the {model_type} model: "
                    "no earlier model of the chain produces it"
                )
            posteriors[model_type] = Posterior.from_pipeline(model_type, models[model_type], chain)
        return cls(posteriors, geek_formula)

    def draws(self, frame: pd.DataFrame, normals: np.ndarray) -> dict[str, np.ndarray]:
        """Chained draws (rows x draws) of complexity, rating, log users_rated
        (``users_rated_log``), the count (``users_rated``) and geek_rating."""
        if normals.shape[:2] != (len(frame), len(STREAMS)):
            raise ValueError(f"normals have shape {normals.shape} for {len(frame)} rows")
        u = {name: normals[:, i, :] for i, name in enumerate(STREAMS)}
        p = self.posteriors
        drawn: dict[str, np.ndarray] = {}
        drawn["complexity"] = _clip(p["complexity"].draws(frame, {}, u["complexity"]), "complexity")

        def fed(model_type: str) -> dict[str, np.ndarray]:
            return {c: drawn[SOURCES[c]] for c in p[model_type].chain}

        drawn["rating"] = _clip(p["rating"].draws(frame, fed("rating"), u["rating"]), "rating")
        drawn["users_rated"] = p["users_rated"].draws(frame, fed("users_rated"), u["users_rated"])
        counts = np.maximum(np.expm1(drawn["users_rated"]), USERS_FLOOR)
        if self.geek_formula is None:
            geek = p["geek_rating"].draws(frame, fed("geek_rating"), u["geek_rating"])
            geek = _clip(geek, "geek_rating")
        else:
            geek = bayesian_geek_rating(drawn["rating"], counts, *self.geek_formula)
        return {
            "complexity": drawn["complexity"],
            "rating": drawn["rating"],
            "users_rated_log": drawn["users_rated"],
            "users_rated": counts,
            "geek_rating": geek,
        }

    def summarise(self, frame: pd.DataFrame, normals: np.ndarray) -> np.ndarray:
        """Quantiles (INTERVAL_OUTCOMES x QUANTILES x rows) of the rows' draws."""
        draws = self.draws(frame, normals)
        out = np.empty((len(INTERVAL_OUTCOMES), len(QUANTILES), len(frame)))
        for k, outcome in enumerate(INTERVAL_OUTCOMES):
            values = draws.pop(outcome)
            values.sort(axis=1)
            out[k] = quantiles(values)
        return out


def standard_normals(seeds: np.ndarray, n_draws: int) -> np.ndarray:
    """Each row's standard normals (rows x STREAMS x draws), from its seed alone."""
    out = np.empty((len(seeds), len(STREAMS), n_draws))
    for i, seed in enumerate(np.asarray(seeds, dtype=np.uint64).tolist()):
        np.random.default_rng(seed).standard_normal((len(STREAMS), n_draws), out=out[i])
    return out


def simulate_chain(
    frame: pd.DataFrame,
    models: Mapping[str, Any],
    chain_inputs: Mapping[str, list[str]],
    n_draws: int,
    seeds: np.ndarray,
    geek_formula: tuple[float, float] | None,
    *,
    chunk_elements: int = CHUNK_ELEMENTS,
    normals: Callable[[np.ndarray, int], np.ndarray] = standard_normals,
) -> dict[str, np.ndarray]:
    """Medians and 90% bounds of the chain's posterior predictive draws, per row.

    ``frame``: production's input frame (games_features columns, then emb_*; no chain
    columns); ``models``: model type -> fitted Pipeline ending in ARDRegression or
    BayesianRidge (a ``hurdle`` is ignored: it keeps its point prediction; no geek_rating
    when ``geek_formula`` = (prior_rating, prior_weight) is given); ``chain_inputs``: the
    chain columns each model reads, in the order they are appended to its frame;
    ``seeds``: one per row, the only source of that row's randomness. Rows go through in
    chunks of ``chunk_elements // n_draws``; ``normals(seeds_of_chunk, n_draws)`` gives a
    chunk's standard normals (tests inject known ones).

    Returns float64 arrays of ``len(frame)``: ``predicted_complexity``,
    ``predicted_rating``, ``predicted_users_rated`` (median of the counts
    max(expm1(draw), 25), unrounded, as production's simulation lands it),
    ``predicted_geek_rating`` and the eight ``<outcome>_lower_90`` / ``_upper_90`` columns.
    """
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 1:
        raise UsageError(f"--intervals must be a positive number of draws, got {n_draws!r}")
    seeds = np.asarray(seeds)
    if seeds.shape != (len(frame),):
        raise ValueError(f"seeds have shape {seeds.shape}, expected ({len(frame)},)")
    chain = ChainPosteriors.from_models(models, chain_inputs, geek_formula)
    n = len(frame)
    out = np.empty((len(INTERVAL_OUTCOMES), len(QUANTILES), n))
    step = max(1, chunk_elements // int(n_draws))
    for start in range(0, n, step):
        stop = min(start + step, n)
        rows = frame.iloc[start:stop]
        out[:, :, start:stop] = chain.summarise(rows, normals(seeds[start:stop], int(n_draws)))
    result: dict[str, np.ndarray] = {}
    for k, outcome in enumerate(INTERVAL_OUTCOMES):
        lower, upper = interval_columns(outcome)
        result[LANDING[outcome]] = out[k, 1]
        result[lower] = out[k, 0]
        result[upper] = out[k, 2]
    return result
