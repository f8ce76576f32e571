"""Helpers shared by the benchmarks: demo homes, timed subprocesses, tables."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
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
    cpu_seconds: float = 0.0  # user + system, of the process and the children it waited for
    busy_seconds: float = 0.0  # CPU time the whole machine spent meanwhile (0: no /proc/stat)

    @property
    def others_cores(self) -> float:
        """Cores other processes kept busy on average (the machine is shared)."""
        return max(0.0, self.busy_seconds - self.cpu_seconds) / self.seconds


def run(
    args: list[str], home: Path, env: dict[str, str] | None = None, tree: bool = False
) -> Measured:
    """Run `bggscore ARGS` in its own process; wall time and that process's peak RSS (with
    ``tree``: the peak of the summed RSS of it and its descendants, e.g. `--workers`)."""
    _bytecode()
    full_env = {**os.environ, "BGGSCORE_HOME": str(home), **(env or {})}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*BGGSCORE, *args], env=full_env, cwd=home.parent, stdout=out, stderr=err
        )
        sampler = TreeRss(proc.pid) if tree else None
        busy = busy_seconds()
        _, status, usage = os.wait4(proc.pid, 0)  # rusage of exactly this child
        elapsed = time.perf_counter() - started
        busy = busy_seconds() - busy
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        raise RuntimeError(f"bggscore {' '.join(args)} failed:\n{stderr[-2000:]}")
    # with ``tree`` the samples only: a child's ru_maxrss can hold this process's own RSS
    # (the copy of its memory the child had until exec), which adopt.py's is not small
    peak = sampler.stop() if sampler is not None else usage.ru_maxrss / 1024
    return Measured(elapsed, peak, stdout, stderr, usage.ru_utime + usage.ru_stime, busy)


@functools.cache
def _bytecode() -> None:
    """bggscore's modules compiled, as `pip install` leaves an installed package: an
    editable checkout under PYTHONDONTWRITEBYTECODE (set on some machines, this one too)
    would otherwise compile every module in every timed process (~0.1 s of a no-op)."""
    import compileall

    compileall.compile_dir(Path(__file__).resolve().parents[1] / "src" / "bggscore", quiet=1)


def busy_seconds() -> float:
    """CPU seconds the machine has spent busy since boot (every core), from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class TreeRss:
    """Samples (every 100 ms, on a thread) the summed RSS of a process and its descendants,
    from /proc; ``stop()`` returns the peak in MiB (0 where /proc is missing)."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid, self.every, self.peak = pid, every, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _tree_rss_kib(self.pid))
            self._done.wait(self.every)

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak / 1024


def _tree_rss_kib(root: int) -> int:
    total, frontier = 0, [root]
    while frontier:
        pid = frontier.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            total += next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:"))
            for task in Path(f"/proc/{pid}/task").iterdir():
                frontier += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, StopIteration):
            continue  # gone, or a zombie without memory
    return total


# bump when what `bggscore demo` builds changes (e.g. the model format), so cached homes
# are rebuilt rather than measured with stale artifacts (3: uncompressed model artifacts;
# 4: the demo's mark, without which `demo refresh` refuses the home; 5: warehouse schema
# version 2, the state table partitioned by stage, and embedders as plain arrays; 6: the
# registrations say what their models read)
HOME_FORMAT = 6


def demo_home(games: int, seed: int = 0) -> Path:
    """A demo home (warehouse, trained models, one full score) for N games, cached."""
    home = CACHE / f"demo-v{HOME_FORMAT}-{games}-{seed}" / ".bggscore"
    if (home / "ready").exists():
        return home
    if home.parent.exists():
        shutil.rmtree(home.parent)
    home.mkdir(parents=True)
    print(f"  building a demo home of {games:,} games (cached in {home.parent})", flush=True)
    run(["demo", "--games", str(games), "--seed", str(seed), "--no-report"], home)
    (home / "ready").write_text("ok")
    return home


def copy_home(home: Path, name: str) -> Path:
    target = home.parent.parent / name / ".bggscore"
    if target.parent.exists():
        shutil.rmtree(target.parent)
    shutil.copytree(home, target)
    # a fresh copy's pages wait in the page cache: the first command that writes to it would
    # otherwise pay for flushing the whole file (a second at 500k games), which no real run does
    os.sync()
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
