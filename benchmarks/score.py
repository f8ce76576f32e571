"""Scoring throughput and memory (issue 4), measured side by side in one run.

    python benchmarks/score.py                 # 100k, 250k, 500k, 1M and 2M demo games
    python benchmarks/score.py --quick         # 20k and 50k games, in a minute or two

Each figure is one `bggscore score --all-years` process over a demo warehouse
(read, score, write, commit, end to end), with its wall time and peak RSS.
Targets: >= 100,000 games/s point predictions, >= 10,000 games/s with 500 draws,
peak RSS <= 1.5 GiB and flat in N. The web service it replaces: ~5.5 games/s.

Memory is bounded by the batch, not the catalogue: a run holds at most three batches
(one computing, one queued, one committing), so RSS rises over the first few batches
and then stays put; the ratio of the two largest catalogues shows the plateau.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import copy_home, demo_home, run, save, score_json, table

SERVICE_GAMES_PER_SECOND = 1 / 0.183  # 183 ms/game measured in production


def measure(games: int, draws: int) -> dict:
    home = copy_home(demo_home(games), f"score-{games}-{draws}")
    args = ["score", "--all-years", "--json"]
    if draws:
        args += ["--intervals", str(draws)]
    measured = run(args, home)
    result = score_json(measured)
    return {
        "games": result["games_scored"],
        "draws": draws,
        "wall_seconds": round(measured.seconds, 2),
        "games_per_second": round(result["games_scored"] / measured.seconds),
        "peak_rss_mib": round(measured.peak_rss_mib),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small scales, about a minute")
    parser.add_argument("--games", type=int, nargs="*", help="catalogue sizes to measure")
    parser.add_argument("--draws", type=int, default=500, help="posterior draws for intervals")
    args = parser.parse_args(argv)
    default = [20_000, 50_000] if args.quick else [100_000, 250_000, 500_000, 1_000_000, 2_000_000]
    sizes = args.games or default
    rows = []
    for games in sizes:
        for draws in (0, args.draws):
            if draws and games > 250_000 and args.games is None:
                continue  # intervals at 1M take long; the rate is flat in N
            print(f"scoring {games:,} games, {draws} draws", flush=True)
            rows.append(measure(games, draws))
    point = [r for r in rows if not r["draws"]]
    largest = point[-1]
    summary = {
        "rows": rows,
        "point_games_per_second": largest["games_per_second"],
        "vs_web_service": round(largest["games_per_second"] / SERVICE_GAMES_PER_SECOND),
        "rss_ratio_largest_to_smallest": round(
            point[-1]["peak_rss_mib"] / point[0]["peak_rss_mib"], 2
        ),
        "rss_ratio_two_largest": round(point[-1]["peak_rss_mib"] / point[-2]["peak_rss_mib"], 2)
        if len(point) > 1
        else None,
    }
    print(
        table(
            "bggscore score --all-years (end to end, one process each)",
            ["games", "draws", "wall s", "games/s", "peak RSS MiB"],
            [
                [
                    f"{r['games']:,}",
                    r["draws"],
                    r["wall_seconds"],
                    f"{r['games_per_second']:,}",
                    r["peak_rss_mib"],
                ]
                for r in rows
            ],
        )
    )
    print(
        f"\npoint predictions: {summary['point_games_per_second']:,} games/s "
        f"({summary['vs_web_service']:,}x the web service's 5.5 games/s); "
        f"peak RSS {point[-1]['games']:,} vs {point[0]['games']:,} games: "
        f"{summary['rss_ratio_largest_to_smallest']}x"
        + (
            f"; {point[-1]['games']:,} vs {point[-2]['games']:,} games: "
            f"{summary['rss_ratio_two_largest']}x (target: flat)"
            if len(point) > 1
            else ""
        )
    )
    print(f"saved {save('score', summary)}")
    return summary


if __name__ == "__main__":
    main()
