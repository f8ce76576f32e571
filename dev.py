#!/usr/bin/env python3
"""Set up a virtual environment and run bggscore's two everyday jobs.

    python3 dev.py demo    # install bggscore into .venv, run the demo on the embedded warehouse
    python3 dev.py test    # install with test extras, lint, type-check, run the test suite

Needs only Python >= 3.10. Extra arguments go to the command (e.g. `dev.py demo --games 5000`,
`dev.py test -k registry`). Re-installs when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
LINTED = [
    "src",
    "tests",
    "benchmarks",
    "dev.py",
    "scripts/gen-command-reference",
    "scripts/lock-requirements",
    "scripts/check-action-pins",
    "scripts/check-dist",
]
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def ensure_env(extras: str) -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - dev.py may be run by an older python
        sys.exit(f"bggscore needs Python >= 3.10, this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / ".bggscore-installed"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"installing bggscore{extras} into {VENV}", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}{extras}"], check=True)
    stamp.write_text(digest)


def run(args: list[str], env: dict[str, str] | None = None) -> int:
    return subprocess.run(args, cwd=ROOT, env={**os.environ, **(env or {})}).returncode


def main(argv: list[str]) -> int:
    job, rest = (argv[0], argv[1:]) if argv else ("", [])
    if job == "demo":
        ensure_env("")
        return run([str(BIN / "bggscore"), "demo", *rest])
    if job == "test":
        ensure_env("[dev]")
        # one BLAS thread per process: on 2 cores, threaded BLAS in the tests' small fits
        # fights the other process for the CPU (measured 3.5x the CPU time)
        env = {"OPENBLAS_NUM_THREADS": "1"}
        for step in (
            [str(BIN / "ruff"), "check", *LINTED],
            [str(BIN / "ruff"), "format", "--check", *LINTED],
            [str(BIN / "mypy")],
            ["bash", "scripts/lint-workflows"],
            [str(BIN / "python"), "scripts/gen-command-reference", "--check"],
            # the sdist and wheel release.yml would publish: built and checked, never uploaded
            [str(BIN / "python"), "scripts/check-dist"],
            [str(BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *rest],
        ):
            code = run(step, env)
            if code:
                return code
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
