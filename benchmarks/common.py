"""Helpers shared by the benchmarks: demo homes, timed subprocesses, tables."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# where figures and cached demo homes go; the CI smoke run points it at a temporary folder
RESULTS = Path(os.environ.get("BGGSCORE_BENCH_RESULTS") or ROOT / "benchmarks" / "results")
CACHE = RESULTS / "homes"
BGGSCORE = [sys.executable, "-m", "bggscore"]


@dataclass
class Measured:
    seconds: float
    peak_rss_mib: float
    stdout: str
    stderr: str


def run(args: list[str], home: Path, env: dict[str, str] | None = None) -> Measured:
    """Run `bggscore ARGS` in its own process; wall time and that process's peak RSS."""
    full_env = {**os.environ, "BGGSCORE_HOME": str(home), **(env or {})}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*BGGSCORE, *args], env=full_env, cwd=home.parent, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)  # rusage of exactly this child
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        raise RuntimeError(f"bggscore {' '.join(args)} failed:\n{stderr[-2000:]}")
    return Measured(elapsed, usage.ru_maxrss / 1024, stdout, stderr)


# bump when what `bggscore demo` builds changes (e.g. the model format), so cached homes
# are rebuilt rather than measured with stale artifacts (3: uncompressed model artifacts;
# 4: the demo's mark, without which `demo refresh` refuses the home)
HOME_FORMAT = 4


def demo_home(games: int, seed: int = 0) -> Path:
    """A demo home (warehouse, trained models, one full score) for N games, cached."""
    home = CACHE / f"demo-v{HOME_FORMAT}-{games}-{seed}" / ".bggscore"
    if (home / "ready").exists():
        return home
    if home.parent.exists():
        shutil.rmtree(home.parent)
    home.mkdir(parents=True)
    print(f"  building a demo home of {games:,} games (cached in {home.parent})", flush=True)
    run(["demo", "--games", str(games), "--seed", str(seed)], home)
    (home / "ready").write_text("ok")
    return home


def copy_home(home: Path, name: str) -> Path:
    target = home.parent.parent / name / ".bggscore"
    if target.parent.exists():
        shutil.rmtree(target.parent)
    shutil.copytree(home, target)
    return target


def score_json(measured: Measured) -> dict[str, Any]:
    return json.loads(measured.stdout)


def table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(headers, widths, strict=False))
    out = [f"\n{title}", line, "-" * len(line)]
    out += ["  ".join(f"{c!s:<{w}}" for c, w in zip(row, widths, strict=False)) for row in rows]
    return "\n".join(out)


def save(name: str, data: dict[str, Any]) -> Path:
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path
