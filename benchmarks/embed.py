"""Embedding throughput and `similar` latency (issue 6), measured in one run.

    python benchmarks/embed.py                  # 500k demo games
    python benchmarks/embed.py --quick          # 50k games
    python benchmarks/embed.py --similar-only   # reuse the embedded home of an earlier run

Text and game embeddings of the whole catalogue (each a separate `bggscore embed`
process: read, embed, write, commit), then `bggscore similar` wall time including
start-up, cold (index built from the warehouse) and warm (cached index; the median of
--runs calls, for a name, an id and the table output), and what the warm call imports.
Targets: >= 5,000 games/s text, >= 20,000 games/s game, similar < 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import CACHE, copy_home, demo_home, run, save, table

# what the warm path must not need (it reads the cache with numpy and the standard library)
HEAVY = ("polars", "duckdb", "pyarrow", "sqlglot", "sklearn", "scipy", "pydantic_settings")


def similar_latency(home: Path, runs: int) -> dict:
    """Cold, then warm wall times of `bggscore similar` in processes of their own."""
    for path in (home / "cache").glob("similar-*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    by_name = ["similar", "--name", "a", "--top", "10", "--json"]
    cold = run(by_name, home)
    game = str(json.loads(cold.stdout)["game_id"])
    cases = {
        "name": by_name,
        "id": ["similar", game, "--top", "10", "--json"],
        "table": ["similar", game],
    }
    warm = {case: [run(args, home).seconds for _ in range(runs)] for case, args in cases.items()}
    profiled = run(by_name, home, env={"PYTHONPROFILEIMPORTTIME": "1"})
    imported = {
        line.split("|")[-1].strip()
        for line in profiled.stderr.splitlines()
        if line.startswith("import time:")
    }
    return {
        "similar_cold_seconds": round(cold.seconds, 3),
        "similar_warm_seconds": round(statistics.median(warm["name"]), 3),
        "similar_warm_runs": {k: [round(s, 3) for s in v] for k, v in warm.items()},
        "similar_warm_median": {k: round(statistics.median(v), 3) for k, v in warm.items()},
        "similar_warm_imports_heavy": sorted(
            m for m in imported if m.split(".")[0] in HEAVY or m == "bggscore.settings"
        ),
        "similar_warm_modules": len(imported),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--games", type=int)
    parser.add_argument(
        "--similar-only",
        action="store_true",
        help="Measure only `similar`, on the embed-N home an earlier run left.",
    )
    parser.add_argument("--runs", type=int, default=5, help="Warm calls per case (median).")
    args = parser.parse_args(argv)
    games = args.games or (50_000 if args.quick else 500_000)
    rows = []
    if args.similar_only:
        home = CACHE / f"embed-{games}" / ".bggscore"
        if not (home / "warehouse.duckdb").exists():
            parser.error(f"no embedded home at {home}: run without --similar-only first")
    else:
        home = copy_home(demo_home(games), f"embed-{games}")
        for kind in ("text", "game"):
            measured = run(["embed", "--kind", kind, "--all-years", "--json"], home)
            done = json.loads(measured.stdout)["games_embedded"][kind]
            rows.append(
                {
                    "kind": kind,
                    "games": done,
                    "seconds": round(measured.seconds, 2),
                    "games_per_second": round(done / measured.seconds),
                    "peak_rss_mib": round(measured.peak_rss_mib),
                }
            )
    summary = {"games": games, "embed": rows, **similar_latency(home, args.runs)}
    if rows:
        print(
            table(
                f"bggscore embed --all-years, {games:,} demo games (one process each)",
                ["kind", "games", "wall s", "games/s", "peak RSS MiB"],
                [
                    [
                        r["kind"],
                        f"{r['games']:,}",
                        r["seconds"],
                        f"{r['games_per_second']:,}",
                        r["peak_rss_mib"],
                    ]
                    for r in rows
                ],
            )
        )
    warm = ", ".join(f"{k} {v} s" for k, v in summary["similar_warm_median"].items())
    heavy = ", ".join(summary["similar_warm_imports_heavy"]) or "none"
    print(
        f"\nsimilar on {games:,} games (wall, start-up included): "
        f"cold {summary['similar_cold_seconds']} s, warm median of {args.runs}: {warm} "
        f"(target < 0.5 s); heavy imports when warm: {heavy}"
    )
    # a similar-only run must not replace the embed figures
    print(f"saved {save('embed-similar' if args.similar_only else 'embed', summary)}")
    return summary


if __name__ == "__main__":
    main()
