"""`bggscore --help` start-up time (target < 0.3 s), median of several runs."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import BGGSCORE, save


def main(argv: list[str] | None = None) -> dict:
    times = []
    for _ in range(7):
        started = time.perf_counter()
        subprocess.run([*BGGSCORE, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    summary = {
        "help_seconds_median": round(statistics.median(times), 3),
        "help_seconds_min": round(min(times), 3),
    }
    print(
        f"bggscore --help: median {summary['help_seconds_median']} s, "
        f"min {summary['help_seconds_min']} s (target < 0.3 s)"
    )
    save("startup", summary)
    return summary


if __name__ == "__main__":
    main()
