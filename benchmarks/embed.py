"""Embedding throughput and `similar` latency (issue 6), measured in one run.

    python benchmarks/embed.py            # 500k demo games
    python benchmarks/embed.py --quick    # 50k games

Text and game embeddings of the whole catalogue (each a separate `bggscore embed`
process: read, embed, write, commit), then `bggscore similar` wall time including
start-up, cold (index built from the warehouse) and warm (cached index).
Targets: >= 5,000 games/s text, >= 20,000 games/s game, similar < 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import copy_home, demo_home, run, save, table


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--games", type=int)
    args = parser.parse_args(argv)
    games = args.games or (50_000 if args.quick else 500_000)
    home = copy_home(demo_home(games), f"embed-{games}")
    rows = []
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
    cache = home / "cache"
    for path in cache.glob("similar-*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    cold = run(["similar", "--name", "a", "--top", "10", "--json"], home)
    warm = run(["similar", "--name", "a", "--top", "10", "--json"], home)
    summary = {
        "games": games,
        "embed": rows,
        "similar_cold_seconds": round(cold.seconds, 3),
        "similar_warm_seconds": round(warm.seconds, 3),
    }
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
    print(
        f"\nsimilar (wall, start-up included): cold {summary['similar_cold_seconds']} s, "
        f"warm {summary['similar_warm_seconds']} s (target < 0.5 s)"
    )
    print(f"saved {save('embed', summary)}")
    return summary


if __name__ == "__main__":
    main()
