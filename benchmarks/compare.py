"""This tree against an earlier commit, side by side in one run: the everyday commands.

    python -m benchmarks.compare --base REV            # 100k demo games, 5 rounds
    python -m benchmarks.compare --base REV --quick    # 5k games, 3 rounds (a smoke run)

The earlier commit is checked out once into a git worktree under benchmarks/results; each
round runs every measurement with both trees, in alternating order (this machine is shared
and noisy, so figures taken minutes apart are not comparable), on copies of one demo home.
It prints the median wall time of each command per tree and their ratio (this / base).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, ROOT, copy_home, demo_home, run, save, table


def base_tree(rev: str) -> Path:
    """A worktree of ``rev`` (made once); its src/ is what the base runs import."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    path = RESULTS / f"base-{sha}"
    if not (path / "src" / "bggscore").is_dir():
        if path.exists():
            shutil.rmtree(path)
        subprocess.run(["git", "worktree", "add", "--detach", str(path), sha], cwd=ROOT, check=True)
    return path


def measurements(games: int) -> dict[str, tuple[list[str], str]]:
    """name -> (bggscore arguments, how the home is prepared: shared, copy, daily, warm)."""
    del games
    return {
        "--help": (["--help"], "shared"),
        "detect-changes, no-op (2024-2028)": (["detect-changes", "--json"], "shared"),
        "detect-changes, no-op (all years)": (
            ["detect-changes", "--all-years", "--json"],
            "shared",
        ),
        "score --changed-only, no-op": (
            ["score", "--changed-only", "--all-years", "--json"],
            "shared",
        ),
        "run, no-op": (["run", "--all-years", "--json"], "shared"),
        "daily score --changed-only (2% refreshed)": (
            ["score", "--changed-only", "--all-years", "--json"],
            "daily",
        ),
        "daily run (2% refreshed)": (["run", "--all-years", "--json"], "daily"),
        "full score --all-years": (["score", "--all-years", "--json"], "copy"),
        "similar, warm": (["similar", "--name", "a", "--top", "5", "--json"], "warm"),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="compare this tree with an earlier commit")
    parser.add_argument("--base", required=True, help="the commit to compare with")
    parser.add_argument("--games", type=int, help="demo catalogue size [100000]")
    parser.add_argument("--rounds", type=int, help="rounds per measurement [5]")
    parser.add_argument("--quick", action="store_true", help="5,000 games, 3 rounds")
    args = parser.parse_args(argv)
    games = args.games or (5_000 if args.quick else 100_000)
    rounds = args.rounds or (3 if args.quick else 5)
    trees = {"base": base_tree(args.base) / "src", "this": ROOT / "src"}
    home = demo_home(games)
    # a no-op needs every stage current: the cached demo home is scored and embedded
    times: dict[str, dict[str, list[float]]] = {}
    for name, (command, prepare) in measurements(games).items():
        times[name] = {tree: [] for tree in trees}
        print(f"  {name}", flush=True)
        warm_homes = {}
        if prepare == "warm":
            for tree, src in trees.items():
                warm_homes[tree] = copy_home(home, f"compare-warm-{tree}")
                run(command, warm_homes[tree], {"PYTHONPATH": str(src)})  # builds the cache
        for i in range(rounds):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))
            for tree in order:
                env = {"PYTHONPATH": str(trees[tree])}
                target = home
                if prepare in ("copy", "daily"):
                    target = copy_home(home, "compare-work")
                if prepare == "daily":  # the same refresh (seed) for both trees in a round
                    run(["demo", "refresh", "--fraction", "0.02", "--seed", str(100 + i)], target)
                if prepare == "warm":
                    target = warm_homes[tree]
                times[name][tree].append(run(command, target, env).seconds)
    rows = []
    summary = {}
    for name, by_tree in times.items():
        base, this = statistics.median(by_tree["base"]), statistics.median(by_tree["this"])
        ratio = this / base if base else float("nan")
        summary[name] = {
            "base_s": round(base, 3),
            "this_s": round(this, 3),
            "ratio": round(ratio, 3),
        }
        rows.append([name, f"{base:.3f}", f"{this:.3f}", f"{ratio:.2f}"])
    title = f"this tree vs {args.base} ({games:,} demo games, median of {rounds}, seconds)"
    print(table(title, ["command", "base", "this", "this / base"], rows))
    result = {"base": args.base, "games": games, "rounds": rounds, "figures": summary}
    print(f"saved {save('compare', result)}")
    return result


if __name__ == "__main__":
    main()
