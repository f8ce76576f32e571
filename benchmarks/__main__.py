"""Every benchmark at one scale, and a table of the headline figures.

    python -m benchmarks --quick     # small scales, a few minutes
    python -m benchmarks             # the issue scales (1M scoring, 500k for the others)
    benchmarks/run --quick           # the same, as a script

Figures are measured side by side in one run (the machine is shared and noisy),
printed as a table and written to benchmarks/results/summary.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import adopt, bigquery_cost, detect, embed, score, startup
from benchmarks.common import save, table


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="run every bggscore benchmark")
    parser.add_argument("--quick", action="store_true", help="small scales")
    parser.add_argument("--games", type=int, help="one catalogue size for every benchmark")
    args = parser.parse_args(argv)
    quick = ["--quick"] if args.quick else []
    sized = ["--games", str(args.games)] if args.games else []
    results = {
        "startup": startup.main([]),
        "score": score.main(quick + (["--games", str(args.games)] if args.games else [])),
        "detect": detect.main(quick + sized),
        "embed": embed.main(quick + sized),
        "adopt": adopt.main(quick + sized),
    }
    if importlib.util.find_spec("bqemulator") is not None:  # the dev extra's emulator
        results["bigquery_cost"] = bigquery_cost.main(quick)
    s, d, e, a = results["score"], results["detect"], results["embed"], results["adopt"]
    intervals = [r for r in s["rows"] if r["draws"]]
    rows = [
        ["score, point predictions (games/s)", f"{s['point_games_per_second']:,}"],
        [
            "score with intervals (games/s)",
            f"{intervals[-1]['games_per_second']:,}" if intervals else "n/a",
        ],
        ["peak RSS, largest score (MiB)", s["rows"][-1]["peak_rss_mib"]],
        ["peak RSS largest/smallest catalogue", s["rss_ratio_largest_to_smallest"]],
        ["peak RSS, two largest catalogues", s["rss_ratio_two_largest"]],
        ["detection flatness (longest/shortest history)", d["bggscore_flatness"]],
        ["seed query / bggscore detection (longest history)", d["seed_over_bggscore_at_longest"]],
        ["no-op score --changed-only (s)", d["noop_score_changed_only_seconds"]],
        ["daily incremental / full score (wall)", d["incremental_over_full"]],
        ["text embeddings (games/s)", f"{e['embed'][0]['games_per_second']:,}"],
        ["game embeddings (games/s)", f"{e['embed'][1]['games_per_second']:,}"],
        ["similar, warm (s)", e["similar_warm_seconds"]],
        ["bggscore --help (s)", results["startup"]["help_seconds_median"]],
        ["production's pipelines: 1 worker wall / predict calls", a["wall_over_predict"]],
        ["production's pipelines: 2 workers / 1 worker", a["two_over_one_workers"]],
        ["production's pipelines: peak RSS, process tree (MiB)", a["peak_rss_mib"]],
    ]
    if "bigquery_cost" in results:
        runs = {r["name"]: r for r in results["bigquery_cost"]["scenarios"]}
        daily, noop = runs["daily run"], runs["no-op run"]
        rows += [
            ["BigQuery daily run: jobs", daily["jobs"]],
            ["BigQuery daily run: GB billed at 1 year", daily["gb_billed"]["1 year"]],
            ["BigQuery no-op run: GB billed at 1 year", noop["gb_billed"]["1 year"]],
        ]
    print(table("headline figures", ["figure", "value"], rows))
    print(f"saved {save('summary', results)}")
    return results


if __name__ == "__main__":
    main()
