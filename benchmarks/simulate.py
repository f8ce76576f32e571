"""Intervals for imported production pipelines (scoring.simulate), side by side.

    python benchmarks/simulate.py              # 1,000 draws, the real 1,000-game sample
    python benchmarks/simulate.py --draws 200 --loop-games 50

On production-shaped pipelines (tests/support/production.py, fitted on the real sample):
simulate_chain's games/s; simulate_chain as it was before it was made faster
(tests/support/simulate_before.py: same numbers, probes per chunk, five sorts); the same
rows through Python loops over draws as production runs them (per-draw column replacement
in the scaled matrix, its fast path; and a full transform per draw, its slow path and the
tests' reference); and point prediction (production's /predict_games chain) for scale,
with the ratio `score --intervals` would see (point, then intervals, per game). Figures
only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

SAMPLE = ROOT.parent / "shared" / "data" / "sample_games.parquet"
CHAIN = {
    "rating": ["predicted_complexity"],
    "users_rated": ["predicted_complexity"],
    "geek_rating": ["predicted_complexity", "predicted_rating", "predicted_users_rated_log"],
}


def column_loop(frame, models, n_draws: int, seed: int = 42) -> None:
    """Production's fast path: transform once, then per draw overwrite the chain columns'
    scaled values and multiply by that draw's weights."""
    from tests.support.simulation import weight_draws

    rng = np.random.default_rng(seed)
    drawn: dict[str, np.ndarray] = {}
    sources = {"predicted_complexity": "complexity", "predicted_rating": "rating"}
    sources["predicted_users_rated_log"] = "users_rated"
    for model_type in ("complexity", "rating", "users_rated", "geek_rating"):
        pipeline, chain = models[model_type], CHAIN.get(model_type, [])
        pre, model = pipeline[:-1], pipeline[-1]
        X = np.asarray(pre.transform(frame.assign(**{c: 3.0 for c in chain})), dtype=float)
        names = list(pipeline.named_steps["preprocessor"].get_feature_names_out())
        scaler = pipeline.named_steps["preprocessor"].named_steps["scaler"]
        where = [
            (names.index(c), scaler.mean_[names.index(c)], scaler.scale_[names.index(c)])
            for c in chain
        ]
        weights = weight_draws(model, n_draws, rng)
        out = np.empty((len(frame), n_draws))
        for d in range(n_draws):
            sample = X.copy()
            for (j, mean, scale), c in zip(where, chain, strict=True):
                sample[:, j] = (drawn[sources[c]][:, d] - mean) / scale
            out[:, d] = sample @ weights[d] + model.intercept_
        out += rng.normal(0, model.alpha_**-0.5, out.shape)
        drawn[model_type] = np.clip(out, 1, 5 if model_type == "complexity" else 10)
        if model_type == "users_rated":
            drawn[model_type] = out
    for values in drawn.values():
        np.percentile(values, [5, 50, 95], axis=1)


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--loop-games", type=int, default=100, help="rows for the slow loop")
    args = parser.parse_args(argv)

    from tests.support.production import (
        production_frame,
        production_predict_games,
        sample_production,
    )
    from tests.support.simulate_before import simulate_before
    from tests.support.simulation import production_simulate_reference
    from threadpoolctl import threadpool_limits

    from bggscore.scoring.simulate import simulate_chain

    features, embeddings, models, _ = sample_production(SAMPLE)
    frame = production_frame(features, embeddings)
    n, small = len(frame), frame.head(args.loop_games)
    seeds = np.arange(n, dtype=np.uint64)
    with threadpool_limits(1):
        fast = timed(simulate_chain, frame, models, CHAIN, args.draws, seeds, None)
        fast_small = timed(
            simulate_chain, small, models, CHAIN, args.draws, seeds[: len(small)], None
        )
        before = timed(simulate_before, frame, models, CHAIN, args.draws, seeds, None)
        columns = timed(column_loop, frame, models, args.draws)
        slow = timed(
            production_simulate_reference,
            small,
            models,
            CHAIN,
            args.draws,
            None,
            standardise=False,
        )
        point = timed(production_predict_games, frame, models)
    figures = {
        "games": n,
        "draws": args.draws,
        "simulate_games_per_second": round(n / fast),
        "before_games_per_second": round(n / before),
        "column_loop_games_per_second": round(n / columns),
        "transform_loop_games_per_second": round(len(small) / slow, 1),
        "point_games_per_second": round(n / point),
        "vs_before": round(before / fast, 1),
        "vs_column_loop": round(columns / fast, 1),
        "vs_transform_loop": round((slow / len(small)) / (fast_small / len(small)), 1),
        "point_over_simulate": round(fast / point, 1),
        # score --intervals runs the point chain, then the simulation: its throughput over
        # the point path's, counting the five predict calls only (no reading, no writing)
        "intervals_over_point": round(point / (point + fast), 3),
        "intervals_over_point_before": round(point / (point + before), 3),
    }
    for key, value in figures.items():
        print(f"{key:>32}: {value:,}")
    return figures


if __name__ == "__main__":
    main()
