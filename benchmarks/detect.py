"""Change detection cost and the daily incremental run (issue 5), side by side.

    python benchmarks/detect.py             # 500k demo games, 1 / 100 / 1000 days of history
    python benchmarks/detect.py --quick     # 50k games, 1 / 30 / 100 days

Detection time of bggscore (a join against the per-stage latest state) and of the
seed plan's query (re-ranking the whole landing history with ROW_NUMBER) on the
same engine and data; the no-op wall time of `detect-changes` and `score
--changed-only` including start-up; and a daily run (`demo refresh --fraction
0.02`, then `score --changed-only`) against a full `score` of the catalogue.
Targets: flat (<= 1.2x day-last/day-1), >= 10x faster than the seed's query at the
longest history, no-op <= 1.5 s, daily run <= 5% of the full run's wall time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import copy_home, demo_home, run, save, score_json, table

# The seed plan's query shape (never-scored or last_updated > latest score_ts), as
# canonical SQL over the same tables, with parameters for its values.
SEED_QUERY = """
SELECT gf.game_id
FROM games_features AS gf
LEFT JOIN game_features_hash AS fh ON gf.game_id = fh.game_id
LEFT JOIN (
  SELECT game_id, score_ts,
    ROW_NUMBER() OVER (PARTITION BY game_id ORDER BY score_ts DESC) AS rn
  FROM ml_predictions_landing
) AS lp ON gf.game_id = lp.game_id AND lp.rn = 1
WHERE gf.year_published IS NOT NULL
  AND gf.year_published >= @start_year AND gf.year_published < @end_year
  AND (lp.game_id IS NULL OR fh.last_updated > lp.score_ts)
LIMIT @max_games
"""


def landing_rows(home: Path) -> int:
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM raw.ml_predictions_landing").fetchone()[0]
    finally:
        con.close()


def add_history(home: Path, first_day: int, last_day: int) -> None:
    """Append simulated daily runs (about 1% of games a day) straight into the landing
    table. Only the columns the seed's query reads are filled."""
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        con.execute(
            """
            INSERT INTO raw.ml_predictions_landing (job_id, game_id, score_ts)
            SELECT 'history-' || d.range, f.game_id,
                   TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_days(CAST(d.range AS INTEGER))
            FROM range($first, $last) AS d, analytics.games_features AS f
            WHERE f.game_id % 100 = d.range % 100
            """,
            {"first": first_day, "last": last_day + 1},
        )
    finally:
        con.close()


def time_queries(home: Path, repeats: int) -> tuple[float, float]:
    """Median seconds of bggscore's detection and of the seed's query, same process."""
    import os

    os.environ["BGGSCORE_HOME"] = str(home)
    from bggscore.changes import detect_stage
    from bggscore.detection import stage_keys
    from bggscore.settings import load_settings
    from bggscore.warehouse import open_warehouse
    from bggscore.warehouse.queries import Selection

    settings = load_settings()
    key = stage_keys(settings, ["main"], {}, explicit=True)["main"]
    selection = Selection(all_years=True)
    ours, seed = [], []
    with open_warehouse(settings) as wh:
        for _ in range(repeats):
            started = time.perf_counter()
            detect_stage(wh, "main", key, selection, 50_000)
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            wh.query(SEED_QUERY, {"start_year": 0.0, "end_year": 3000.0, "max_games": 50_000})
            seed.append(time.perf_counter() - started)
    return statistics.median(ours), statistics.median(seed)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--games", type=int)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    games = args.games or (50_000 if args.quick else 500_000)
    days = [1, 30, 100] if args.quick else [1, 100, 1000]
    base = demo_home(games)

    print(f"detection vs the seed's query, {games:,} games", flush=True)
    history = copy_home(base, f"detect-history-{games}")
    rows = []
    previous = 1
    for day in days:
        if day > previous:
            add_history(history, previous + 1, day)
            previous = day
        landing = landing_rows(history)
        ours, seed = time_queries(history, args.repeats)
        rows.append(
            {
                "days": day,
                "landing_rows": landing,
                "bggscore_ms": round(ours * 1000, 1),
                "seed_query_ms": round(seed * 1000, 1),
                "seed_over_bggscore": round(seed / ours, 1),
            }
        )
        print(f"  day {day}: bggscore {ours * 1000:.1f} ms, seed {seed * 1000:.1f} ms", flush=True)

    print("no-op runs (nothing changed), wall time including start-up", flush=True)
    quiet = copy_home(base, f"detect-noop-{games}")
    noop_detect = run(["detect-changes", "--all-years", "--json"], quiet).seconds
    noop_score = run(["score", "--changed-only", "--all-years", "--json"], quiet)
    assert score_json(noop_score)["skipped_reason"] == "no_changes"

    print("daily run vs full run", flush=True)
    daily = copy_home(base, f"detect-daily-{games}")
    full = run(["score", "--all-years", "--json"], daily)
    refresh = run(["demo", "refresh", "--fraction", "0.02", "--json"], daily)
    incremental = run(["score", "--changed-only", "--all-years", "--json"], daily)
    scored = score_json(incremental)["games_scored"]

    flat = rows[-1]["bggscore_ms"] / rows[0]["bggscore_ms"]
    summary = {
        "games": games,
        "history": rows,
        "bggscore_flatness": round(flat, 2),
        "seed_over_bggscore_at_longest": rows[-1]["seed_over_bggscore"],
        "noop_detect_changes_seconds": round(noop_detect, 2),
        "noop_score_changed_only_seconds": round(noop_score.seconds, 2),
        "full_score_seconds": round(full.seconds, 2),
        "refresh_seconds": round(refresh.seconds, 2),
        "incremental_score_seconds": round(incremental.seconds, 2),
        "incremental_games_scored": scored,
        "incremental_over_full": round(incremental.seconds / full.seconds, 3),
    }
    print(
        table(
            f"detection, {games:,} games (median of {args.repeats})",
            ["days of history", "landing rows", "bggscore ms", "seed query ms", "seed/bggscore"],
            [
                [
                    r["days"],
                    f"{r['landing_rows']:,}",
                    r["bggscore_ms"],
                    r["seed_query_ms"],
                    f"{r['seed_over_bggscore']}x",
                ]
                for r in rows
            ],
        )
    )
    print(
        f"\nbggscore day {days[-1]}/day {days[0]}: {summary['bggscore_flatness']}x (target <= 1.2x)"
        f"\nno-op detect-changes: {summary['noop_detect_changes_seconds']} s, "
        f"no-op score --changed-only: {summary['noop_score_changed_only_seconds']} s "
        "(target <= 1.5 s)"
        f"\ndaily run: {scored:,} games in {summary['incremental_score_seconds']} s vs full "
        f"{summary['full_score_seconds']} s = {summary['incremental_over_full']:.1%} "
        "(target <= 5%)"
    )
    print(f"saved {save('detect', summary)}")
    return summary


if __name__ == "__main__":
    main()
