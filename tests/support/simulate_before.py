"""bggscore.scoring.simulate's arithmetic as it was before it was made faster (a0c78a8), to
pin the faster code's numbers to it: rows in chunks, each chunk transformed at the
reference, once per chain column moved by its step and at the joint probe; per row a
broadcast mean and variance updated term by term; every outcome's draws sorted, the
counts included. Same posteriors (simulate.Posterior), same normals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from bggscore.scoring.chain import bayesian_geek_rating
from bggscore.scoring.intervals import QUANTILES, quantiles
from bggscore.scoring.simulate import (
    CLIPS,
    JOINT,
    LANDING,
    PROBES,
    SOURCES,
    STREAMS,
    ChainPosteriors,
    Posterior,
    _close,
    standard_normals,
)
from bggscore.warehouse.schemas import INTERVAL_OUTCOMES, interval_columns


def _linearised(
    p: Posterior, frame: pd.DataFrame, inputs: Mapping[str, np.ndarray], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray] | None:
    probes = {c: PROBES[SOURCES[c]] for c in p.chain}
    X0 = p.transform(frame, {c: ref for c, (ref, _) in probes.items()})
    slopes = []
    for c, (ref, step) in probes.items():
        moved = {other: r for other, (r, _) in probes.items()} | {c: ref + step}
        slope = (p.transform(frame, moved) - X0) / step
        if not _close(slope, np.broadcast_to(slope[:1], slope.shape)):
            return None
        slopes.append(slope[0])
    S = np.array(slopes).reshape(len(p.chain), len(p.coef))
    if p.chain:
        joint = {c: ref + JOINT * step for c, (ref, step) in probes.items()}
        expected = X0 + (JOINT * np.array([s for _, s in probes.values()])) @ S
        if not _close(p.transform(frame, joint), expected):
            return None
    mean0, q00 = p.moments(X0)
    Xa, Sa = X0[:, p.active], S[:, p.active]
    q0 = (Xa @ p.sigma) @ Sa.T
    Q = Sa @ p.sigma @ Sa.T
    gain = S @ p.coef
    mean = np.broadcast_to(mean0[:, None], shape).copy()
    var = np.broadcast_to(q00[:, None], shape).copy()
    t = [inputs[c] - ref for c, (ref, _) in probes.items()]
    for k in range(len(t)):
        mean += gain[k] * t[k]
        var += (2.0 * q0[:, k : k + 1] + Q[k, k] * t[k]) * t[k]
        for m in range(k + 1, len(t)):
            var += 2.0 * Q[k, m] * t[k] * t[m]
    return mean, var


def _draws(
    p: Posterior, frame: pd.DataFrame, inputs: Mapping[str, np.ndarray], normals: np.ndarray
) -> np.ndarray:
    shape = (len(frame), normals.shape[1])
    linear = _linearised(p, frame, inputs, shape)
    if linear is None:
        mean, var = np.empty(shape), np.empty(shape)
        for d in range(shape[1]):
            X = p.transform(frame, {c: inputs[c][:, d] for c in p.chain})
            mean[:, d], var[:, d] = p.moments(X)
    else:
        mean, var = linear
    np.maximum(var, 0.0, out=var)
    var += p.noise_var
    np.sqrt(var, out=var)
    var *= normals
    mean += var
    return mean


def _summarise(chain: ChainPosteriors, frame: pd.DataFrame, normals: np.ndarray) -> np.ndarray:
    u = {name: normals[:, i, :] for i, name in enumerate(STREAMS)}
    p = chain.posteriors
    drawn: dict[str, np.ndarray] = {}

    def clip(values: np.ndarray, outcome: str) -> np.ndarray:
        return np.clip(values, *CLIPS[outcome], out=values)

    def fed(model_type: str) -> dict[str, np.ndarray]:
        return {c: drawn[SOURCES[c]] for c in p[model_type].chain}

    drawn["complexity"] = clip(_draws(p["complexity"], frame, {}, u["complexity"]), "complexity")
    drawn["rating"] = clip(_draws(p["rating"], frame, fed("rating"), u["rating"]), "rating")
    drawn["users_rated"] = _draws(p["users_rated"], frame, fed("users_rated"), u["users_rated"])
    counts = np.maximum(np.expm1(drawn["users_rated"]), 25.0)
    if chain.geek_formula is None:
        geek = _draws(p["geek_rating"], frame, fed("geek_rating"), u["geek_rating"])
        geek = clip(geek, "geek_rating")
    else:
        geek = bayesian_geek_rating(drawn["rating"], counts, *chain.geek_formula)
    draws = {
        "complexity": drawn["complexity"],
        "rating": drawn["rating"],
        "users_rated": counts,
        "geek_rating": geek,
    }
    out = np.empty((len(INTERVAL_OUTCOMES), len(QUANTILES), len(frame)))
    for k, outcome in enumerate(INTERVAL_OUTCOMES):
        values = draws.pop(outcome)
        values.sort(axis=1)
        out[k] = quantiles(values)
    return out


def simulate_before(
    frame: pd.DataFrame,
    models: Mapping[str, Any],
    chain_inputs: Mapping[str, list[str]],
    n_draws: int,
    seeds: np.ndarray,
    geek_formula: tuple[float, float] | None,
    chunk_elements: int = 1_000_000,
) -> dict[str, np.ndarray]:
    """What simulate_chain returned before, for the same arguments."""
    chain = ChainPosteriors.from_models(models, chain_inputs, geek_formula)
    out = np.empty((len(INTERVAL_OUTCOMES), len(QUANTILES), len(frame)))
    step = max(1, chunk_elements // n_draws)
    for start in range(0, len(frame), step):
        stop = min(start + step, len(frame))
        normals = standard_normals(seeds[start:stop], n_draws)
        out[:, :, start:stop] = _summarise(chain, frame.iloc[start:stop], normals)
    result = {}
    for k, outcome in enumerate(INTERVAL_OUTCOMES):
        lower, upper = interval_columns(outcome)
        result[LANDING[outcome]], result[lower], result[upper] = out[k, 1], out[k, 0], out[k, 2]
    return result
