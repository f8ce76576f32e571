"""Change detection cost and the daily incremental run (issue 5), side by side.

    python benchmarks/detect.py             # 500k demo games, 1 / 100 / 1000 days of history
    python benchmarks/detect.py --quick     # 50k games, 1 / 30 / 100 days

Detection time of bggscore (a join against the per-stage latest state; the `main`
stage, as the seed's query is for the main predictions, and all four stages) and of
the seed plan's query (re-ranking the whole landing history with ROW_NUMBER) on the
same engine and data, for all years and for the default range (2024-2028, the
seed's own filter); the no-op wall time of `detect-changes` (default range and all
years, all four stages; the first process of a fresh SQL render cache and the
median of the next ones) and `score --changed-only`, start-up included; and a daily
run (`demo refresh --fraction 0.02`, then `score --changed-only`) against a full
`score` of the catalogue, and beside the no-op `score --changed-only` (turns of one then
the other). Targets: flat (<= 1.2x day-last/day-1), >= 10x faster than the seed's query
at the longest history, no-op <= 1.5 s, daily run <= 5% of the full run's wall time;
issue 15: daily `score --changed-only` <= 1.4x the no-op one, no-op `score
--changed-only --all-years` <= 0.9 s, and a daily `run` imports no scikit-learn. The
summary's single figures (flatness, seed/bggscore) are the default range's; both
selections are reported beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Measured, copy_home, demo_home, run, save, score_json, table
from bggscore.warehouse.queries import SELECTION_WHERE

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

# A floor, not a detector: the cheapest exact question detection asks (games of the
# selection the stage never scored), one join against the latest state. The issue's
# reference figure; every further reason (features, model, upstream) needs its own join.
ONE_JOIN_QUERY = (
    "SELECT f.game_id FROM games_features AS f "  # noqa: S608 (constant fragments only)
    "LEFT JOIN scoring_state AS s ON s.game_id = f.game_id AND s.stage = @stage "
    f"WHERE {SELECTION_WHERE} AND s.game_id IS NULL "
    "LIMIT @max_games"
)


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


STAGES = ("complexity", "main", "text-embeddings", "game-embeddings")
# label -> (bggscore's selection, the seed query's year range)
SELECTIONS = {
    "all years": ({"all_years": True}, (0.0, 3000.0)),
    "2024-2028": ({}, (2024.0, 2029.0)),  # the default range, the seed's own filter
}


def time_queries(homes: dict[int, Path], repeats: int) -> dict[int, dict[str, dict[str, float]]]:
    """Median milliseconds per history length and selection: bggscore's `main` detection,
    all four stages together, the seed's query and the one-join floor. One process; every
    round measures every history length in turn, starting at a different one each round, so
    drift on a shared machine hits them alike (the first round only warms up)."""
    from bggscore.detection import detect_stage
    from bggscore.modelset import stage_keys
    from bggscore.settings import load_settings
    from bggscore.warehouse import open_warehouse
    from bggscore.warehouse.queries import Selection

    names = ("main", "stages", "seed", "one_join")
    times = {(day, label): {name: [] for name in names} for day in homes for label in SELECTIONS}
    with contextlib.ExitStack() as stack:
        opened = {}
        for day, home in homes.items():
            settings = load_settings(overrides={"home": str(home)})
            keys = stage_keys(settings, list(STAGES), {}, explicit=False)
            opened[day] = (stack.enter_context(open_warehouse(settings)), keys)
        days = list(opened)
        for attempt in range(repeats + 1):
            # each round starts at another history length: no length always goes first
            shift = attempt % len(days)
            for day in days[shift:] + days[:shift]:
                wh, keys = opened[day]
                for label, (selection_args, (start, end)) in SELECTIONS.items():
                    selection = Selection(**selection_args)
                    seed_params = {"start_year": start, "end_year": end, "max_games": 50_000}
                    one_join_params = {**selection.params(), "stage": "main", "max_games": 50_000}
                    measured: dict[str, float] = {"stages": 0.0}
                    for stage, key in keys.items():
                        started = time.perf_counter()
                        detect_stage(wh, stage, key, selection, 50_000)
                        elapsed = time.perf_counter() - started
                        measured["stages"] += elapsed
                        if stage == "main":
                            measured["main"] = elapsed
                    started = time.perf_counter()
                    wh.query(SEED_QUERY, seed_params)
                    measured["seed"] = time.perf_counter() - started
                    started = time.perf_counter()
                    wh.query(ONE_JOIN_QUERY, one_join_params)
                    measured["one_join"] = time.perf_counter() - started
                    if attempt:
                        for name in names:
                            times[day, label][name].append(measured[name])
    out: dict[int, dict[str, dict[str, float]]] = {day: {} for day in homes}
    for (day, label), values in times.items():
        out[day][label] = {name: statistics.median(v) * 1000 for name, v in values.items()}
    return out


def noop_detect(home: Path, args: list[str], repeats: int) -> tuple[float, float]:
    """Wall seconds of `detect-changes ARGS` with nothing to do, start-up included: the
    first process of an empty SQL render cache, and the median of the next ones."""
    cache = Path(tempfile.mkdtemp(prefix="bggscore-render-cache-"))
    try:
        env = {"XDG_CACHE_HOME": str(cache)}
        first = run(["detect-changes", *args, "--json"], home, env)
        assert all(s["count"] == 0 for s in json.loads(first.stdout)["stages"]), first.stdout
        warm = [run(["detect-changes", *args, "--json"], home, env).seconds for _ in range(repeats)]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return first.seconds, statistics.median(warm)


SCORE_CHANGED = ["score", "--changed-only", "--all-years", "--json"]


def daily_beside_noop(daily: Path, quiet: Path, games: int, turns: int) -> dict[str, Measured]:
    """``turns`` rounds of a no-op and a daily `score --changed-only --all-years`, one after
    the other (the machine is shared: drift hits both alike); the median run of each."""
    measured: dict[str, list[Measured]] = {"noop": [], "daily": []}
    for turn in range(turns):
        copy = copy_home(daily, f"detect-daily-{games}-turn")
        noop = run(SCORE_CHANGED, quiet)
        assert score_json(noop)["skipped_reason"] == "no_changes", noop.stdout
        measured["noop"].append(noop)
        measured["daily"].append(run(SCORE_CHANGED, copy))
        print(
            f"  turn {turn + 1}: no-op {noop.seconds:.2f} s, daily "
            f"{measured['daily'][-1].seconds:.2f} s",
            flush=True,
        )
        shutil.rmtree(copy.parent, ignore_errors=True)
    return {
        name: sorted(runs, key=lambda m: m.seconds)[len(runs) // 2]
        for name, runs in measured.items()
    }


IMPORTS = """
import atexit, sys
package = sys.argv[-1]
def report():
    found = any(name.split(".")[0] == package for name in sys.modules)
    print(f"IMPORTED={found}", file=sys.stderr)
atexit.register(report)
sys.argv = ["bggscore", "run", "--all-years", "--json"]
from bggscore.cli.main import run
run()
"""


def daily_run_imports(daily: Path, package: str) -> bool:
    """Whether a daily `run` (2% refreshed) imports ``package`` (e.g. scikit-learn)."""
    import os
    import subprocess

    copy = copy_home(daily, f"detect-daily-run-{package}")
    try:
        env = {**os.environ, "BGGSCORE_HOME": str(copy)}
        done = subprocess.run(
            [sys.executable, "-c", IMPORTS, package],
            env=env,
            cwd=copy.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"bggscore run failed:\n{done.stderr[-2000:]}")
        return "IMPORTED=True" in done.stderr
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--games", type=int)
    parser.add_argument("--repeats", type=int, default=6)  # a multiple of 3 history lengths
    args = parser.parse_args(argv)
    games = args.games or (50_000 if args.quick else 500_000)
    days = [1, 30, 100] if args.quick else [1, 100, 1000]
    base = demo_home(games)

    print(f"detection vs the seed's query, {games:,} games", flush=True)
    homes: dict[int, Path] = {}
    previous_day, previous_home = 1, base
    for day in days:  # a home per history length, each grown from the one before
        home = copy_home(previous_home, f"detect-history-{games}-{day}")
        if day > previous_day:
            add_history(home, previous_day + 1, day)
        homes[day] = home
        previous_day, previous_home = day, home
    measured_by_day = time_queries(homes, args.repeats)
    rows = []
    for day in days:
        landing = landing_rows(homes[day])
        for label, ms in measured_by_day[day].items():
            rows.append(
                {
                    "days": day,
                    "selection": label,
                    "landing_rows": landing,
                    "bggscore_main_ms": round(ms["main"], 1),
                    "bggscore_all_stages_ms": round(ms["stages"], 1),
                    "seed_query_ms": round(ms["seed"], 1),
                    "seed_over_bggscore": round(ms["seed"] / ms["main"], 2),
                    "one_join_floor_ms": round(ms["one_join"], 1),
                    "seed_over_one_join": round(ms["seed"] / ms["one_join"], 2),
                }
            )
            print(
                f"  day {day}, {label}: bggscore main {ms['main']:.1f} ms "
                f"(all stages {ms['stages']:.1f} ms), seed {ms['seed']:.1f} ms, "
                f"one-join floor {ms['one_join']:.1f} ms",
                flush=True,
            )
    for home in homes.values():  # copies of a cached home: gigabytes at 500k games
        shutil.rmtree(home.parent, ignore_errors=True)

    print("no-op runs (nothing changed), wall time including start-up", flush=True)
    quiet = copy_home(base, f"detect-noop-{games}")
    repeats = max(3, args.repeats)
    noop_default_first, noop_default = noop_detect(quiet, [], repeats)
    noop_all_first, noop_all = noop_detect(quiet, ["--all-years"], repeats)

    print("daily run vs full run", flush=True)
    daily = copy_home(base, f"detect-daily-{games}")
    full = run(["score", "--all-years", "--json"], daily)
    refresh = run(["demo", "refresh", "--fraction", "0.02", "--json"], daily)
    # the daily `score --changed-only` (2% refreshed) beside the no-op one, in turns: each
    # daily run on its own copy of the refreshed home, each no-op on the quiet home
    side = daily_beside_noop(daily, quiet, games, max(5, args.repeats))
    incremental, noop_score = side["daily"], side["noop"]
    scored = score_json(incremental)["games_scored"]
    run_sklearn = daily_run_imports(daily, "sklearn")

    by_selection = {}
    for label in SELECTIONS:
        mine = [r for r in rows if r["selection"] == label]
        by_selection[label] = {
            "flatness": round(mine[-1]["bggscore_main_ms"] / mine[0]["bggscore_main_ms"], 2),
            "seed_over_bggscore_at_longest": mine[-1]["seed_over_bggscore"],
            "seed_over_one_join_at_longest": mine[-1]["seed_over_one_join"],
        }
    default = by_selection["2024-2028"]
    summary = {
        "games": games,
        "history": rows,
        "by_selection": by_selection,
        "bggscore_flatness": default["flatness"],
        "seed_over_bggscore_at_longest": default["seed_over_bggscore_at_longest"],
        "noop_detect_changes_seconds": round(noop_default, 2),
        "noop_detect_changes_first_seconds": round(noop_default_first, 2),
        "noop_detect_changes_all_years_seconds": round(noop_all, 2),
        "noop_detect_changes_all_years_first_seconds": round(noop_all_first, 2),
        "noop_score_changed_only_seconds": round(noop_score.seconds, 2),
        # side by side (medians of the turns): targets <= 1.4x and <= 0.9 s
        "daily_over_noop_score_changed_only": round(incremental.seconds / noop_score.seconds, 2),
        "noop_score_changed_only_all_years_seconds": round(noop_score.seconds, 2),
        "daily_run_imports_sklearn": run_sklearn,
        "full_score_seconds": round(full.seconds, 2),
        "refresh_seconds": round(refresh.seconds, 2),
        "incremental_score_seconds": round(incremental.seconds, 2),
        "incremental_games_scored": scored,
        "incremental_over_full": round(incremental.seconds / full.seconds, 3),
        # the same ratio without what every run pays, changed games or not (start-up,
        # opening the warehouse, detecting both stages): the no-op run's wall time
        "incremental_over_full_net_of_noop": round(
            (incremental.seconds - noop_score.seconds) / (full.seconds - noop_score.seconds), 3
        ),
    }
    print(
        table(
            f"detection, {games:,} games (median of {args.repeats}; `main` is the stage the "
            "seed's query stands for)",
            [
                "days",
                "landing rows",
                "selection",
                "seed query ms",
                "bggscore main ms",
                "seed/bggscore",
                "all 4 stages ms",
                "one-join floor ms",
            ],
            [
                [
                    r["days"],
                    f"{r['landing_rows']:,}",
                    r["selection"],
                    r["seed_query_ms"],
                    r["bggscore_main_ms"],
                    f"{r['seed_over_bggscore']}x",
                    r["bggscore_all_stages_ms"],
                    r["one_join_floor_ms"],
                ]
                for r in rows
            ],
        )
    )
    for label, figures in by_selection.items():
        print(
            f"\n{label}: bggscore day {days[-1]}/day {days[0]} {figures['flatness']}x "
            f"(target <= 1.2x), seed/bggscore at day {days[-1]} "
            f"{figures['seed_over_bggscore_at_longest']}x (target >= 10x; a single join "
            f"against the latest state: {figures['seed_over_one_join_at_longest']}x)",
            end="",
        )
    print(
        f"\nno-op detect-changes (4 stages): {summary['noop_detect_changes_seconds']} s "
        f"(first process {summary['noop_detect_changes_first_seconds']} s), --all-years "
        f"{summary['noop_detect_changes_all_years_seconds']} s (first "
        f"{summary['noop_detect_changes_all_years_first_seconds']} s); no-op score "
        f"--changed-only: {summary['noop_score_changed_only_seconds']} s (target <= 1.5 s)"
        f"\ndaily run: {scored:,} games in {summary['incremental_score_seconds']} s vs full "
        f"{summary['full_score_seconds']} s = {summary['incremental_over_full']:.1%} "
        f"(target <= 5%); net of the no-op run's {summary['noop_score_changed_only_seconds']} s: "
        f"{summary['incremental_over_full_net_of_noop']:.1%}"
    )
    print(
        f"daily score --changed-only (2% refreshed) / no-op score --changed-only: "
        f"{summary['daily_over_noop_score_changed_only']}x (target <= 1.4x); no-op score "
        f"--changed-only --all-years {summary['noop_score_changed_only_all_years_seconds']} s "
        f"(target <= 0.9 s); a daily `run` imports scikit-learn: {run_sklearn} (target: no)"
    )
    print(f"saved {save('detect', summary)}")
    return summary


if __name__ == "__main__":
    main()
