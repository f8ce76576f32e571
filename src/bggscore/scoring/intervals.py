"""Posterior predictive intervals for ``bggscore score --intervals N``.

Each Bayesian linear model (``SparseBayesianRegressor``) gives N coefficient draws
from its Gaussian posterior; a game's draw d is ``x @ beta_d + intercept_d + noise``
with noise ~ N(0, 1/alpha_). The chain is kept draw by draw: complexity draw d is
the ``predicted_complexity`` of rating and users_rated draw d, and geek rating draw
d comes from rating draw d and the users_rated count of draw d (bayesian formula)
or from the direct geek model fed with draw d of every chain input. Landing keeps
the median of the draws and their 5th/95th percentiles (domain.md). The hurdle is
a logistic model without a posterior and keeps its point prediction.

How it stays fast (50,000 games x 500 draws: ~2 CPU-seconds, ~1 s on 2 cores):

* Coefficients are drawn once per batch, with the pipeline's MaxAbsScaler folded
  into them (``beta_d / scale_``), so one unscaled design matrix per model serves
  every draw; models sharing a feature base build that base once
  (``features.BaseCache``).
* Chain inputs never enter the design matrix (their columns are built as 0): a
  chain column j contributes ``value_d / scale_j * beta_d[j]`` per draw, added
  analytically, so no design matrix is rebuilt per draw.
* Draws live in float32: values are ratings, weights and log counts of order 1-15
  whose Monte Carlo error (~ sd/sqrt(N), around 1e-2) dwarfs float32 rounding
  (~1e-6); float32 halves memory traffic, and the quantiles come from a row sort,
  which numpy vectorises (SIMD) for float32 — several times faster than
  ``np.percentile``/``np.partition``. Reported values are float64.
* Games go through in sub-chunks of about ``CHUNK_ELEMENTS`` draws (4,000 games at
  500 draws, ~8 MB per array), on a small thread pool: sparse products, normal
  draws and sorts release the GIL. Each sub-chunk has its own generator spawned
  from ``rng``, so results depend only on ``rng`` and never on thread timing.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bggscore.errors import UsageError
from bggscore.machine import usable_cpus
from bggscore.scoring.chain import bayesian_geek_rating, users_rated_count
from bggscore.scoring.outcomes import OUTCOMES
from bggscore.warehouse.schemas import INTERVAL_OUTCOMES, interval_columns

if TYPE_CHECKING:
    from scipy import sparse

    from bggscore.features import BaseCache
    from bggscore.modelset import GeekFormula, ModelSet

DTYPE = np.float32
QUANTILES = (0.05, 0.5, 0.95)
# draws held per array and sub-chunk: games per sub-chunk = CHUNK_ELEMENTS // n_draws
CHUNK_ELEMENTS = 2_000_000
MAX_WORKERS = 2
# the landing column that keeps each outcome's median
POINT_COLUMNS = {
    "complexity": "predicted_complexity",
    "rating": "predicted_rating",
    "users_rated": "predicted_users_rated",
    "geek_rating": "predicted_geek_rating",
}
# the chain inputs each model may read, as the point chain feeds them (score_main)
CHAIN_INPUTS = {
    "complexity": (),
    "rating": ("predicted_complexity",),
    "users_rated": ("predicted_complexity",),
    "geek_rating": ("predicted_complexity", "predicted_rating", "predicted_log_users_rated"),
}


@dataclass
class LinearDraws:
    """One model's posterior draws for a batch, ready to apply to any rows of it.

    ``weights`` (design columns x N) are the coefficient draws divided by the
    scaler's ``scale_``, with chain columns zeroed; ``chain`` holds each chain
    input's per-draw weight ``beta_d[j] / scale_j``.
    """

    label: str
    pipeline: Any
    weights: np.ndarray
    chain: dict[str, np.ndarray]
    intercept: np.ndarray
    noise_sd: float
    clip: tuple[float, float] | None

    @classmethod
    def from_pipeline(
        cls,
        pipeline: Any,
        label: str,
        n_draws: int,
        rng: np.random.Generator,
        clip: tuple[float, float] | None = None,
    ) -> LinearDraws:
        steps = _steps(pipeline)
        final = _bayesian_final(pipeline, label)
        builder = steps[0]
        if len(steps) < 2 or not hasattr(builder, "feature_names_out_"):
            raise UsageError(
                f"--intervals needs a FeatureBuilder pipeline; {label} starts with a "
                f"{type(builder).__name__}"
            )
        coef = np.asarray(final.coef_, dtype=np.float64)
        scale = np.ones(len(coef))
        for step in steps[1:-1]:
            scale = scale * _diagonal_scale(step, label, len(coef))
        draws = np.asarray(final.posterior_draws(n_draws, rng), dtype=np.float64)
        if draws.shape != (n_draws, len(coef)):
            raise UsageError(
                f"--intervals: {label}'s posterior_draws gave shape {draws.shape}, "
                f"expected {(n_draws, len(coef))}"
            )
        offset = getattr(final, "X_offset_", None)
        if offset is not None:
            # sklearn's Bayesian linear models fit centred data: the intercept moves with
            # the coefficients, intercept_d = mean(y) - X_offset @ beta_d
            intercept = final.intercept_ - (draws - coef) @ np.asarray(offset, dtype=np.float64)
        else:
            intercept = np.full(n_draws, float(final.intercept_))
        weights = draws / scale
        names = [str(name) for name in builder.feature_names_out_]
        chain: dict[str, np.ndarray] = {}
        for name in getattr(builder, "chain_inputs", ()):
            j = names.index(name)
            chain[name] = weights[:, j].astype(DTYPE)
            weights[:, j] = 0.0
        return cls(
            label=label,
            pipeline=pipeline,
            weights=np.ascontiguousarray(weights.T, dtype=DTYPE),
            chain=chain,
            intercept=intercept.astype(DTYPE),
            noise_sd=float(final.alpha_) ** -0.5,
            clip=clip,
        )

    @property
    def builder(self) -> Any:
        return self.pipeline.steps[0][1]

    def design(self, frame: pl.DataFrame, cache: BaseCache | None = None) -> sparse.csr_matrix:
        """The unscaled design matrix of ``frame``, chain columns built as 0."""
        builder = self.builder
        zeros = frame.with_columns(pl.lit(0.0, pl.Float64).alias(c) for c in self.chain)
        if cache is not None and hasattr(builder, "base_fingerprint_"):
            X = cache.features(builder, zeros)
        else:
            X = builder.transform(zeros)
        return X.astype(DTYPE).tocsr()

    def mean(self, X: sparse.csr_matrix, chain: dict[str, np.ndarray]) -> np.ndarray:
        """Noise-free draws (rows x N): X @ beta_d / scale + chain terms + intercept_d."""
        out = np.asarray(X @ self.weights, dtype=DTYPE)
        term = np.empty_like(out)
        for name, weight in self.chain.items():
            np.multiply(chain[name], weight, out=term)
            out += term
        out += self.intercept
        return out

    def draw(
        self, X: sparse.csr_matrix, chain: dict[str, np.ndarray], rng: np.random.Generator
    ) -> np.ndarray:
        """Posterior predictive draws (rows x N), clipped like the point prediction."""
        out = self.mean(X, chain)
        noise = rng.standard_normal(out.shape, dtype=DTYPE)
        noise *= self.noise_sd
        out += noise
        if self.clip is not None:
            np.clip(out, *self.clip, out=out)
        return out


def _steps(pipeline: Any) -> list[Any]:
    return [step for _, step in pipeline.steps] if hasattr(pipeline, "steps") else [pipeline]


def _bayesian_final(pipeline: Any, label: str) -> Any:
    final = _steps(pipeline)[-1]
    if not hasattr(final, "posterior_draws"):
        raise UsageError(
            f"--intervals needs Bayesian linear models; {label} is a {type(final).__name__}"
        )
    return final


def _diagonal_scale(step: Any, label: str, n_features: int) -> np.ndarray:
    """Per-column divisor of a scaling step that keeps sparsity (no centring)."""
    if step is None or step == "passthrough":
        return np.ones(n_features)
    from sklearn.preprocessing import MaxAbsScaler, StandardScaler

    if isinstance(step, MaxAbsScaler):
        return np.asarray(step.scale_, dtype=np.float64)
    if isinstance(step, StandardScaler) and not step.with_mean:
        scale = step.scale_
        return np.ones(n_features) if scale is None else np.asarray(scale, dtype=np.float64)
    raise UsageError(
        f"--intervals cannot carry the chain through {label}'s {type(step).__name__} step; "
        "it supports FeatureBuilder -> MaxAbsScaler -> Bayesian linear model"
    )


def quantiles(
    sorted_draws: np.ndarray,
    qs: tuple[float, ...] = QUANTILES,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Quantiles (len(qs) x rows, float64) of rows already sorted along axis 1.

    Same as ``np.percentile(..., method="linear", axis=1)``, numpy's interpolation
    formula included, without re-selecting order statistics. ``transform``, a
    non-decreasing function, gives the quantiles of ``transform(draws)`` from the order
    statistics it needs only (a monotone map keeps the order).
    """
    n = sorted_draws.shape[1]
    out = np.empty((len(qs), sorted_draws.shape[0]))
    for i, q in enumerate(qs):
        h = (n - 1) * q
        lo = int(np.floor(h))
        hi = min(lo + 1, n - 1)
        t = h - lo
        a = sorted_draws[:, lo].astype(np.float64)
        b = sorted_draws[:, hi].astype(np.float64)
        if transform is not None:
            a, b = transform(a), transform(b)
        diff = b - a
        out[i] = b - diff * (1 - t) if t >= 0.5 else a + diff * t
    return out


@dataclass
class ChainPlan:
    """One batch's posterior draws and design matrices; ``draws`` runs any rows of it."""

    complexity: LinearDraws | None
    point_complexity: np.ndarray
    rating: LinearDraws
    users: LinearDraws
    geek: LinearDraws | None
    formula: GeekFormula | None
    designs: dict[str, sparse.csr_matrix]

    @property
    def n_draws(self) -> int:
        return len(self.rating.intercept)

    def draws(self, start: int, stop: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draws (games x N, float32) of games ``start:stop``, chained draw by draw.

        Keys: complexity, rating, log_users_rated (model space), users_rated (the
        reported count) and geek_rating.
        """
        rows = slice(start, stop)
        if self.complexity is not None:
            complexity = self.complexity.draw(self.designs["complexity"][rows], {}, rng)
        else:
            fixed = self.point_complexity[rows].astype(DTYPE)[:, None]
            complexity = np.repeat(fixed, self.n_draws, axis=1)
        chain = {"predicted_complexity": complexity}
        rating = self.rating.draw(self.designs["rating"][rows], chain, rng)
        log_users = self.users.draw(self.designs["users_rated"][rows], chain, rng)
        users, _ = users_rated_count(log_users)
        if self.geek is not None:
            chain = {**chain, "predicted_rating": rating, "predicted_log_users_rated": log_users}
            geek = self.geek.draw(self.designs["geek_rating"][rows], chain, rng)
        else:
            assert self.formula is not None
            f = self.formula
            geek = bayesian_geek_rating(rating, users, f.prior_rating, f.prior_weight)
        return {
            "complexity": complexity,
            "rating": rating,
            "log_users_rated": log_users,
            "users_rated": users.astype(DTYPE, copy=False),
            "geek_rating": geek.astype(DTYPE, copy=False),
        }


def draw_chain(
    frame: pl.DataFrame,
    complexity: np.ndarray,
    models: ModelSet,
    n_draws: int,
    rng: np.random.Generator,
    *,
    cache: BaseCache | None = None,
    workers: int | None = None,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> dict[str, np.ndarray]:
    """Medians and 90% bounds of the chain's posterior predictive draws, per game.

    Returns ``predicted_<x>`` (the median) and ``<x>_lower_90`` / ``<x>_upper_90``
    (5th/95th percentiles, production's landing names) for complexity, rating, users_rated (the
    reported count, per draw) and geek_rating, as float64 arrays of ``len(frame)``.
    ``complexity`` (the point predictions the batch is scored with) is used as
    fixed when the model set has no complexity model. ``cache`` is the batch's
    ``BaseCache`` (shared feature base); ``workers`` threads (default: up to 2)
    process sub-chunks of ``chunk_elements // n_draws`` games.
    """
    plan = plan_chain(frame, complexity, models, n_draws, rng, cache)
    n = len(frame)
    step = max(1, chunk_elements // plan.n_draws)
    starts = list(range(0, n, step))
    generators = rng.spawn(len(starts))
    out = np.empty((len(INTERVAL_OUTCOMES), len(QUANTILES), n))

    def run(i: int) -> None:
        start = starts[i]
        stop = min(start + step, n)
        draws = plan.draws(start, stop, generators[i])
        for k, outcome in enumerate(INTERVAL_OUTCOMES):
            values = draws.pop(outcome)
            values.sort(axis=1)
            out[k, :, start:stop] = quantiles(values)

    threads = min(workers or min(MAX_WORKERS, usable_cpus()), len(starts))
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, range(len(starts))))
    else:
        for i in range(len(starts)):
            run(i)
    result: dict[str, np.ndarray] = {}
    for k, outcome in enumerate(INTERVAL_OUTCOMES):
        lower, upper = interval_columns(outcome)
        result[POINT_COLUMNS[outcome]] = out[k, 1]
        result[lower] = out[k, 0]
        result[upper] = out[k, 2]
    return result


def plan_chain(
    frame: pl.DataFrame,
    complexity: np.ndarray,
    models: ModelSet,
    n_draws: int,
    rng: np.random.Generator,
    cache: BaseCache | None = None,
) -> ChainPlan:
    """Check the models, draw their coefficients (in chain order) and build designs."""
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 1:
        raise UsageError(f"--intervals must be a positive number of draws, got {n_draws!r}")
    point = np.asarray(complexity, dtype=np.float64)
    if point.shape != (len(frame),):
        raise ValueError(f"complexity has shape {point.shape}, expected ({len(frame)},)")
    needed = ["rating", "users_rated"]
    if "complexity" in models.models:
        needed.insert(0, "complexity")
    if models.geek_formula is None:
        needed.append("geek_rating")
    # check every model before drawing anything, so a bad one fails fast
    for model_type in needed:
        if model_type not in models.models:
            raise UsageError(f"--intervals needs a {model_type} model")
        label = models.label(model_type)
        pipeline = models.models[model_type].model
        _bayesian_final(pipeline, label)
        reads = getattr(_steps(pipeline)[0], "chain_inputs", ())
        unknown = [c for c in reads if c not in CHAIN_INPUTS[model_type]]
        if unknown:
            raise UsageError(
                f"--intervals cannot feed {', '.join(unknown)} to {label}: "
                "no earlier model of the chain produces it"
            )
    draws = {
        model_type: LinearDraws.from_pipeline(
            models.models[model_type].model,
            models.label(model_type),
            int(n_draws),
            rng,
            OUTCOMES[model_type].clip,
        )
        for model_type in needed
    }
    if cache is None:
        from bggscore.features import BaseCache

        cache = BaseCache()
    return ChainPlan(
        complexity=draws.get("complexity"),
        point_complexity=point,
        rating=draws["rating"],
        users=draws["users_rated"],
        geek=draws.get("geek_rating"),
        formula=models.geek_formula,
        designs={t: d.design(frame, cache) for t, d in draws.items()},
    )
