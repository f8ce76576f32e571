"""Production's pipelines adopted as they are (issue 14), measured side by side in one run.

    python benchmarks/adopt.py                 # 500k demo games
    python benchmarks/adopt.py --games 100000  # a smaller catalogue
    python benchmarks/adopt.py --quick         # 2,000 games, for the smoke test

A demo home gets what a user from the production system brings (tests/support/adopt.py):
fake description embeddings for every game, loaded with `bggscore warehouse load
--embeddings`, and the five production-shaped fixture pipelines (pandas scikit-learn
pipelines with the user's own `src` transformers, reading emb_0..emb_99), fitted on 1,000
of its games and written as production's registry, imported with `bggscore models import
--code-path`. Then, on the same rows:

* the pipelines' own predict calls, in batches, timed alone (pure model time: reading and
  building the pandas frames is left out);
* `bggscore score --all-years` end to end (read, join, frames, predict, write, commit),
  with 1 worker (in the process) and with 2 worker processes;
* `score --intervals DRAWS` with 2 workers on the first games, against the point `score`
  of the same games (the same start-up), and production's loop over draws
  (tests/support/simulation.py) on a few.

Targets: 1 worker's wall <= 1.15x the predict calls; 2 workers >= 1.5x 1 worker's
throughput on 2 cores; peak RSS (the process tree) <= 2 GiB; intervals at 1,000 draws >=
25% of the point throughput. The old web service: ~5.5 games/s. The machine is shared:
each run also says how many cores other processes kept busy meanwhile.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.adopt import Adopted, adopt, production_rows, split
from tests.support.production import (
    CHAIN_BY_TYPE,
    prod_code_on_path,
    production_frame,
    users_rated_count,
)

from benchmarks.common import busy_seconds, copy_home, demo_home, run, save, score_json, table
from benchmarks.score import SERVICE_GAMES_PER_SECOND

PREDICT_BATCH = 20_000  # rows per predict call (bggscore's batch for pandas models)
INTERVAL_GAMES = 20_000  # games scored with and without intervals, side by side
LOOP_GAMES = 20  # games through production's loop over draws (it re-transforms per draw)


def predict_seconds(home: Path, adopted: Adopted) -> dict[str, Any]:
    """The five pipelines' predict calls on the games `score --all-years` scores, chained
    as production chains them; only the calls are timed."""
    models = adopted.models
    timed = dict.fromkeys(models, 0.0)
    cpu_timed = [0.0]  # the calls' CPU time, every thread (BLAS/OpenMP ones too)
    games = 0

    def call(model_type: str, frame: Any) -> Any:
        started, cpu = time.perf_counter(), time.process_time()  # wall, as the runs below
        model = models[model_type]
        out = model.predict_proba(frame)[:, 1] if model_type == "hurdle" else model.predict(frame)
        timed[model_type] += time.perf_counter() - started
        cpu_timed[0] += time.process_time() - cpu
        return out

    started, cpu, busy = time.perf_counter(), time.process_time(), busy_seconds()
    with prod_code_on_path():
        for rows in production_rows(home, adopted.embeddings, PREDICT_BATCH):
            df = production_frame(*split(rows))
            games += len(df)
            call("hurdle", df)
            chained = df.assign(predicted_complexity=call("complexity", df))
            rating = call("rating", chained)
            count = users_rated_count(call("users_rated", chained))
            call(
                "geek_rating",
                chained.assign(predicted_rating=rating, predicted_users_rated_log=np.log1p(count)),
            )
            del df, chained
    wall = time.perf_counter() - started
    others = max(0.0, busy_seconds() - busy - (time.process_time() - cpu)) / wall
    seconds = sum(timed.values())
    return {
        "games": games,
        "seconds": seconds,
        "cpu_seconds": cpu_timed[0],
        "cores": round(cpu_timed[0] / seconds, 2),  # > 1: BLAS/OpenMP threads at work
        "by_model": timed,
        "others_cores": round(others, 2),
    }


def score(home: Path, adopted: Adopted, workers: int, extra: list[str] | None = None) -> dict:
    args = ["score", "--workers", str(workers), "--json", *(extra or ["--all-years"])]
    measured = run(args, home, adopted.env, tree=True)
    result = score_json(measured)
    return {
        "workers": workers,
        "games": result["games_scored"],
        "wall_seconds": round(measured.seconds, 2),
        "cpu_seconds": round(measured.cpu_seconds, 2),
        "others_cores": round(measured.others_cores, 2),  # what other processes kept busy
        "games_per_second": round(result["games_scored"] / measured.seconds, 1),
        "cores": round(measured.cpu_seconds / measured.seconds, 2),  # its CPU s per wall s
        "peak_rss_mib": round(measured.peak_rss_mib),
    }


def intervals(home: Path, adopted: Adopted, draws: int, workers: int) -> dict[str, Any]:
    """`score --intervals DRAWS` on the first INTERVAL_GAMES games (a --game-ids-file), and
    the point `score` of the very same games just before it: both pay the same start-up
    (imports, the workers' model loads), so their ratio is the intervals' cost alone."""
    ids = next(production_rows(home, adopted.embeddings, INTERVAL_GAMES))["game_id"]
    path = adopted.embeddings.with_name("interval-games.txt")
    path.write_text("\n".join(str(i) for i in ids) + "\n")
    chosen = ["--game-ids-file", str(path)]
    point = score(home, adopted, workers, chosen)
    try:
        measured = score(home, adopted, workers, [*chosen, "--intervals", str(draws)])
    except RuntimeError as exc:  # an interval path that refuses these pipelines
        lines = [line for line in str(exc).splitlines() if line.strip()]
        return {"available": False, "reason": lines[-1] if lines else str(exc)}
    return {"available": True, **measured, "draws": draws, "point": point}


def loop_over_draws(home: Path, adopted: Adopted, draws: int) -> dict[str, Any] | None:
    """Production's `/simulate_games`, a Python loop over draws (tests/support/simulation.py,
    when that reference exists), on a few games: its games/s at DRAWS draws."""
    try:
        from tests.support.simulation import production_simulate_reference
    except ImportError:
        return None
    rows = next(production_rows(home, adopted.embeddings, LOOP_GAMES)).head(LOOP_GAMES)
    with prod_code_on_path():
        frame = production_frame(*split(rows))
        chain = {t: list(c) for t, c in CHAIN_BY_TYPE.items()}
        started = time.perf_counter()
        production_simulate_reference(
            frame, adopted.models, chain, draws, None, seed=42, standardise=False
        )
        seconds = time.perf_counter() - started
    return {"games": len(frame), "draws": draws, "games_per_second": round(len(frame) / seconds, 2)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 games, in seconds")
    parser.add_argument("--games", type=int, help="demo catalogue size [500000]")
    parser.add_argument("--draws", type=int, default=1000, help="interval draws [1000]")
    args = parser.parse_args(argv)
    games = args.games or (2_000 if args.quick else 500_000)
    draws = min(args.draws, 50) if args.quick else args.draws
    home = copy_home(demo_home(games), f"adopt-{games}")
    print(f"fake embeddings and the five pipelines ({games:,} demo games)", flush=True)
    adopted = adopt(home, home.parent / "production")
    for command in adopted.commands:  # what the user runs: load embeddings, import
        print(f"bggscore {' '.join(command[:2])}", flush=True)
        run(command, home)
    print("timing the pipelines' own predict calls", flush=True)
    predicted = predict_seconds(home, adopted)
    runs = []
    for workers in (1, 2):
        print(f"bggscore score --all-years --workers {workers}", flush=True)
        runs.append(score(home, adopted, workers))
    one, two = runs
    print(
        f"bggscore score, then with --intervals {draws}, on the first {INTERVAL_GAMES:,} games",
        flush=True,
    )
    drawn = intervals(home, adopted, draws, workers=2)
    loop = loop_over_draws(home, adopted, draws) if drawn["available"] else None
    summary = {
        "games": games,
        "predict": {k: round(v, 2) if isinstance(v, float) else v for k, v in predicted.items()},
        "score": runs,
        "wall_over_predict": round(one["wall_seconds"] / predicted["seconds"], 3),
        "two_over_one_workers": round(one["wall_seconds"] / two["wall_seconds"], 3),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "vs_web_service": round(two["games_per_second"] / SERVICE_GAMES_PER_SECOND),
        "intervals": drawn,
        "loop_over_draws": loop,
    }
    predict_rate = predicted["games"] / predicted["seconds"]
    rows = [
        [
            "the five predict calls only",
            f"{predicted['games']:,}",
            round(predicted["seconds"], 2),
            round(predicted["cpu_seconds"], 2),
            f"{predict_rate:,.0f}",
            "",
            predicted["others_cores"],
        ],
        *(
            [
                f"score, {r['workers']} worker{'s' if r['workers'] > 1 else ''}",
                f"{r['games']:,}",
                r["wall_seconds"],
                r["cpu_seconds"],
                f"{r['games_per_second']:,.0f}",
                r["peak_rss_mib"],
                r["others_cores"],
            ]
            for r in runs
        ),
    ]
    print(
        table(
            f"production's five pipelines on {games:,} demo games",
            ["what", "games", "wall s", "CPU s", "games/s", "peak RSS MiB (tree)", "others' cores"],
            rows,
        )
    )
    by_model = ", ".join(f"{t} {s:.1f}s" for t, s in predicted["by_model"].items())
    print(
        f"\n1 worker's wall / the predict calls: {summary['wall_over_predict']}x (target <= 1.15)"
        f"; predict calls by model: {by_model}"
        f"\ncores kept busy (CPU s / wall s): the predict calls {predicted['cores']}, "
        f"1 worker {one['cores']}, 2 workers {two['cores']}"
        f"\n2 workers / 1 worker throughput: {summary['two_over_one_workers']}x (target >= 1.5)"
        f"\npeak RSS of the process tree: {summary['peak_rss_mib']:,} MiB (target <= 2,048)"
        f"\n{two['games_per_second']:,.0f} games/s is {summary['vs_web_service']:,}x the old "
        "service's 5.5 games/s"
        "\n(others' cores: how many cores other processes kept busy meanwhile, on average; "
        "the machine is shared)"
    )
    if drawn["available"]:
        point = drawn["point"]
        ratio = drawn["games_per_second"] / point["games_per_second"]
        summary["intervals_over_point"] = round(ratio, 3)
        summary["intervals_over_catalogue_point"] = round(
            drawn["games_per_second"] / two["games_per_second"], 3
        )
        line = (
            f"intervals ({draws} draws, 2 workers, {drawn['games']:,} games): "
            f"{drawn['games_per_second']:,.0f} games/s against {point['games_per_second']:,.0f} "
            f"for the point score of the same games, {ratio:.0%} (target >= 25%); "
            f"{summary['intervals_over_catalogue_point']:.0%} of the whole catalogue's point "
            "rate, whose start-up is spread over more games"
        )
        if loop is not None:
            line += f"; production's loop over draws: {loop['games_per_second']} games/s"
        print(line)
    else:
        print(f"intervals: not available yet ({drawn['reason']})")
    print(f"saved {save('adopt', summary)}")
    return summary


if __name__ == "__main__":
    main()
