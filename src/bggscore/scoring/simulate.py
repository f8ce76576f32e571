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
mean and variance are quadratics in t_d. Per batch and distinct preprocessor, one stacked
call (a preprocessor's fixed cost per call is large) transforms every row at reference
values, PROBE_ROWS rows once per chain column moved by its step (the slopes: linear, the
same for each row), and one row in CHECK_EVERY at a joint probe (additive, and the same
slopes there). Where that fails, the rows are transformed once per draw (stacked too), as
production's slow path does. Draws are float64 and go through in chunks of about
``CHUNK_ELEMENTS``; per chunk and model only (games x draws) arrays exist, never a
(games x draws x features) one; the counts' quantiles come from the sorted log draws
(max(expm1(x), 25) keeps the order), so four sorts per game, not five.
"""

from __future__ import annotations

import hashlib
import itertools
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from bggscore.errors import InputError, UsageError
from bggscore.scoring.chain import bayesian_geek_rating
from bggscore.scoring.intervals import QUANTILES, quantiles
from bggscore.warehouse.schemas import INTERVAL_OUTCOMES, interval_columns

if TYPE_CHECKING:
    import pandas as pd

# draws per array (1 MB); games per chunk = this // n_draws. About 16 such arrays are
# alive at once (the normals, each outcome's draws, a model's terms): small enough to stay
# in cache, which makes the elementwise passes about twice as fast as 8 MB arrays
CHUNK_ELEMENTS = 131_072
# Slopes are probed on PROBE_ROWS rows; one row in CHECK_EVERY (at least PROBE_ROWS) is
# checked against them at the joint probe. A path that bends for every row shows on any
# row; one that bends for rare rows only can slip between checked rows. Checking every
# row (CHECK_EVERY = 1) costs one more transform of the batch per chained preprocessor,
# about a sixth more CPU time for the whole simulation.
PROBE_ROWS = 64
CHECK_EVERY = 8
# rows per preprocessor call when a frame is stacked (its fixed cost per call is large)
STACK_ROWS = 20_000
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
    key: bytes  # the same for byte-identical preprocessors reading the same chain columns

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
            key=_preprocessor_key(pipeline[:-1], chain),
        )

    def transform(
        self, frame: pd.DataFrame, values: Mapping[str, Any], games: np.ndarray | None = None
    ) -> np.ndarray:
        """The model's input rows: ``frame`` with the chain columns appended, in order.
        ``games``: which game each row is (rows repeat in a stacked frame), for errors."""
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
            bad = np.isnan(X).any(axis=1)
            if games is None:
                count, total = int(bad.sum()), len(X)
            else:
                count, total = len(np.unique(games[bad])), len(np.unique(games))
            raise InputError(
                f"the {self.model_type} model's preprocessor left NaN in {count} of "
                f"{total} games: its pipeline cannot score them"
            )
        return X

    def stacked(
        self, frame: pd.DataFrame, parts: Sequence[tuple[np.ndarray, Mapping[str, Any]]]
    ) -> list[np.ndarray]:
        """The transforms of several copies of rows of ``frame``, each part (positions,
        chain values: scalars or one per position), in calls of at most STACK_ROWS rows:
        a preprocessor's fixed cost per call is paid once, not once per part."""
        positions = np.concatenate([rows for rows, _ in parts]).astype(np.intp, copy=False)
        values = {
            c: np.concatenate([np.broadcast_to(np.asarray(v[c], float), len(r)) for r, v in parts])
            for c in self.chain
        }
        blocks = []
        for start in range(0, len(positions), STACK_ROWS):
            at = slice(start, start + STACK_ROWS)
            rows = frame.iloc[positions[at]].reset_index(drop=True)
            chunk = {c: v[at] for c, v in values.items()}
            blocks.append(self.transform(rows, chunk, positions[at]))
        X = np.concatenate(blocks) if len(blocks) != 1 else blocks[0]
        return np.split(X, np.cumsum([len(rows) for rows, _ in parts])[:-1])

    def moments(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: mean ``X @ coef_ + intercept_`` and weight variance ``x sigma x'``."""
        Xa = X[:, self.active]
        return X @ self.coef + self.intercept, np.einsum("ij,ij->i", Xa @ self.sigma, Xa)

    def probe(self, frame: pd.DataFrame) -> Probed | None:
        """The batch's rows at the reference values and the chain columns' slopes, or None
        where a chain column's path through the preprocessor is not affine: not linear,
        not additive, or with a slope that differs between rows.

        One stacked transform: every row at the reference values; PROBE_ROWS rows once
        per chain column moved by its step (the slopes, the same on each of those rows);
        and one row in CHECK_EVERY at the joint probe, checked against the slopes."""
        n, k, p = len(frame), len(self.chain), len(self.coef)
        if not n:
            return None  # nothing to probe; the per-draw path has nothing to do either
        probes = [PROBES[SOURCES[c]] for c in self.chain]
        refs = {c: ref for c, (ref, _) in zip(self.chain, probes, strict=True)}
        every = np.arange(n)
        if not k:
            return Probed(self.stacked(frame, [(every, refs)])[0], np.empty((0, p)))
        sample = _spread(n, PROBE_ROWS)
        checked = _spread(n, max(PROBE_ROWS, -(-n // CHECK_EVERY)))
        joint = {c: ref + JOINT * step for c, (ref, step) in zip(self.chain, probes, strict=True)}
        moved = [
            (sample, refs | {c: ref + step})
            for c, (ref, step) in zip(self.chain, probes, strict=True)
        ]
        X0, XJ, *probed = self.stacked(frame, [(every, refs), (checked, joint), *moved])
        S = np.empty((k, p))
        for i, ((_, step), Xi) in enumerate(zip(probes, probed, strict=True)):
            slope = (Xi - X0[sample]) / step
            if not _close(slope, np.broadcast_to(slope[:1], slope.shape)):
                return None
            S[i] = slope[0]
        if not _close(XJ - X0[checked], (JOINT * np.array([step for _, step in probes])) @ S):
            return None
        return Probed(X0, S)

    def affine(self, frame: pd.DataFrame) -> Affine | None:
        """The batch's means and variances as quadratics in the chain columns, or None
        where their path through the preprocessor is not affine."""
        return self.terms(self.probe(frame))

    def terms(self, probed: Probed | None) -> Affine | None:
        """``affine`` from a probe by this preprocessor (or an identical one)."""
        if probed is None:
            return None
        X0, S = probed
        mean0, q00 = self.moments(X0)
        Xa, Sa = X0[:, self.active], S[:, self.active]
        q0 = (Xa @ self.sigma) @ Sa.T  # rows x chain: x0 sigma s_k'
        return Affine(mean0, q00, q0, Sa @ self.sigma @ Sa.T, S @ self.coef)

    def per_draw(
        self, frame: pd.DataFrame, rows: slice, inputs: Mapping[str, np.ndarray], n_draws: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and weight variance per draw of ``rows`` of ``frame``, transforming them
        once per draw (slow), several draws per stacked transform."""
        positions = np.arange(*rows.indices(len(frame)))
        mean = np.empty((len(positions), n_draws))
        var = np.empty_like(mean)
        per_call = max(1, STACK_ROWS // max(1, len(positions)))
        for first in range(0, n_draws, per_call):
            draws = range(first, min(first + per_call, n_draws))
            parts = [(positions, {c: inputs[c][:, d] for c in self.chain}) for d in draws]
            for d, X in zip(draws, self.stacked(frame, parts), strict=True):
                mean[:, d], var[:, d] = self.moments(X)
        return mean, var


class Probed(NamedTuple):
    """A preprocessor's probe of a batch: every row at the reference values (rows x
    features) and each chain column's slope (chain x features)."""

    X0: np.ndarray
    S: np.ndarray


def _spread(n: int, k: int) -> np.ndarray:
    """At most k row positions of n, spread evenly, first and last included."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(np.intp))


@dataclass(frozen=True)
class Affine:
    """One model over a batch: per row, mean ``mean0 + gain . t`` and weight variance
    ``q00 + 2 q0 . t + t' Q t``, t being the chain columns' offsets from their references."""

    mean0: np.ndarray  # rows
    q00: np.ndarray  # rows
    q0: np.ndarray  # rows x chain: x0 sigma s_k'
    Q: np.ndarray  # chain x chain: s_k sigma s_l'
    gain: np.ndarray  # chain: the mean's slope in each chain column

    def draws(
        self, rows: slice, t: list[np.ndarray], noise_var: float, normals: np.ndarray
    ) -> np.ndarray:
        """Draws (rows x draws) of ``rows`` given the offsets t (rows x draws each)."""
        mean0, q00 = self.mean0[rows], self.q00[rows]
        if not t:
            sd = np.sqrt(np.maximum(q00, 0.0) + noise_var)
            out = normals * sd[:, None]
            out += mean0[:, None]
            return out
        q0, Q, scratch = self.q0[rows], self.Q, np.empty_like(t[0])
        # var = sum_k t_k (2 q0_k + Q_kk t_k + sum_{m>k} 2 Q_km t_m): one pass per term
        var = np.empty_like(t[0])
        for k, tk in enumerate(t):
            inner = np.multiply(tk, Q[k, k], out=scratch if k else var)
            inner += 2.0 * q0[:, k : k + 1]
            for m in range(k + 1, len(t)):
                inner += 2.0 * Q[k, m] * t[m]
            inner *= tk
            if k:
                var += inner
        var += (q00 + noise_var)[:, None]
        np.maximum(var, noise_var, out=var)  # rounding in the quadratic form
        np.sqrt(var, out=var)
        var *= normals
        out = np.multiply(t[0], self.gain[0], out=scratch)
        for k in range(1, len(t)):
            out += self.gain[k] * t[k]
        out += mean0[:, None]
        out += var
        return out


_UNSHARED = itertools.count()


def _preprocessor_key(preprocessor: Any, chain: tuple[str, ...]) -> bytes:
    try:
        state = pickle.dumps((chain, preprocessor), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # e.g. its code's module is no longer importable: shared with nothing
        return next(_UNSHARED).to_bytes(8, "little")
    return hashlib.sha256(state).digest()


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

    def prepare(self, frame: pd.DataFrame) -> BatchDraws:
        """The batch's per-row terms: each distinct preprocessor probes the rows once
        (models fitted on the same frame often have byte-identical preprocessors)."""
        probed: dict[bytes, Probed | None] = {}
        affine = {}
        for model_type, posterior in self.posteriors.items():
            if posterior.key not in probed:
                probed[posterior.key] = posterior.probe(frame)
            affine[model_type] = posterior.terms(probed[posterior.key])
        return BatchDraws(self, frame, affine)

    def draws(self, frame: pd.DataFrame, normals: np.ndarray) -> dict[str, np.ndarray]:
        """Chained draws (rows x draws) of complexity, rating, log users_rated
        (``users_rated_log``), the count (``users_rated``) and geek_rating."""
        return self.prepare(frame).draws(slice(0, len(frame)), normals)


@dataclass(frozen=True)
class BatchDraws:
    """One batch, prepared: ``draws`` and ``summarise`` simulate any slice of its rows.
    A model whose chain columns are not affine (``affine`` None) is transformed per draw."""

    chain: ChainPosteriors
    frame: pd.DataFrame
    affine: dict[str, Affine | None]

    def draws(self, rows: slice, normals: np.ndarray) -> dict[str, np.ndarray]:
        """As ChainPosteriors.draws, for ``rows`` of the batch."""
        drawn = self._chained(rows, normals)
        drawn["users_rated_log"] = drawn.pop("users_rated")
        counts = drawn.pop("counts", None)
        drawn["users_rated"] = _counts(drawn["users_rated_log"]) if counts is None else counts
        return drawn

    def summarise(self, rows: slice, normals: np.ndarray) -> np.ndarray:
        """Quantiles (INTERVAL_OUTCOMES x QUANTILES x rows) of the rows' draws."""
        drawn = self._chained(rows, normals)
        drawn.pop("counts", None)
        out = np.empty((len(INTERVAL_OUTCOMES), len(QUANTILES), normals.shape[0]))
        for k, outcome in enumerate(INTERVAL_OUTCOMES):
            values = drawn.pop(outcome)
            values.sort(axis=1)
            # max(expm1(x), 25) keeps the order: the sorted counts, without sorting them
            out[k] = quantiles(values, transform=_counts if outcome == "users_rated" else None)
        return out

    def _chained(self, rows: slice, normals: np.ndarray) -> dict[str, np.ndarray]:
        """complexity, rating, users_rated (log), geek_rating draws; with the formula also
        ``counts``."""
        n = len(range(*rows.indices(len(self.frame))))
        if normals.shape[:2] != (n, len(STREAMS)):
            raise ValueError(f"normals have shape {normals.shape} for {n} rows")
        drawn: dict[str, np.ndarray] = {}
        offsets: dict[str, np.ndarray] = {}  # source -> its draws minus the probe reference

        def draw(model_type: str) -> np.ndarray:
            posterior, affine = self.chain.posteriors[model_type], self.affine[model_type]
            u = normals[:, STREAMS.index(model_type), :]
            sources = [SOURCES[c] for c in posterior.chain]
            if affine is not None:
                for s in sources:
                    if s not in offsets:
                        offsets[s] = drawn[s] - PROBES[s][0]
                t = [offsets[s] for s in sources]
                return affine.draws(rows, t, posterior.noise_var, u)
            inputs = {c: drawn[s] for c, s in zip(posterior.chain, sources, strict=True)}
            mean, var = posterior.per_draw(self.frame, rows, inputs, u.shape[1])
            np.maximum(var, 0.0, out=var)  # rounding in the quadratic form
            var += posterior.noise_var
            np.sqrt(var, out=var)
            var *= u
            mean += var
            return mean

        drawn["complexity"] = _clip(draw("complexity"), "complexity")
        drawn["rating"] = _clip(draw("rating"), "rating")
        drawn["users_rated"] = draw("users_rated")
        if self.chain.geek_formula is None:
            drawn["geek_rating"] = _clip(draw("geek_rating"), "geek_rating")
        else:
            counts = _counts(drawn["users_rated"])
            drawn["geek_rating"] = bayesian_geek_rating(
                drawn["rating"], counts, *self.chain.geek_formula
            )
            drawn["counts"] = counts
        return drawn


def _counts(log_draws: np.ndarray) -> np.ndarray:
    return np.maximum(np.expm1(log_draws), USERS_FLOOR)


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
    batch = chain.prepare(frame) if n else None
    step = max(1, chunk_elements // int(n_draws))
    for start in range(0, n, step):
        stop = min(start + step, n)
        rows = slice(start, stop)
        assert batch is not None
        out[:, :, rows] = batch.summarise(rows, normals(seeds[rows], int(n_draws)))
    result: dict[str, np.ndarray] = {}
    for k, outcome in enumerate(INTERVAL_OUTCOMES):
        lower, upper = interval_columns(outcome)
        result[LANDING[outcome]] = out[k, 1]
        result[lower] = out[k, 0]
        result[upper] = out[k, 2]
    return result
