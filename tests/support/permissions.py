"""Running bggscore where file permissions apply: as ourselves, or, under root (which ignores
them), as nobody through setpriv. Homes such a run reads live under /tmp itself, since
pytest's own folders are private to their owner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
NOBODY = 65534


def unprivileged_python() -> list[str]:
    """The command that runs this Python with permissions enforced (pytest.skip if none)."""
    import pytest

    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return [sys.executable]
    if shutil.which("setpriv") is None:
        pytest.skip("root ignores permissions, and setpriv is not there to drop them")
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable]


@contextmanager
def shared_folder() -> Iterator[Path]:
    """A folder anyone may enter (its ``work`` subfolder anyone may write), removed after."""
    root = Path(tempfile.mkdtemp(prefix="bggscore-perm-"))
    (root / "work").mkdir()
    root.chmod(0o755)
    (root / "work").chmod(0o777)
    try:
        yield root
    finally:
        for path in [root, *root.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(root)


def run_unprivileged(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`bggscore ARGS` on ``home`` (inside a ``shared_folder``), permissions enforced."""
    work = home.parent / "work"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BGGSCORE_", "GITHUB_"))}
    env.update(
        BGGSCORE_HOME=str(home),
        PYTHONPATH=str(SRC),
        OPENBLAS_NUM_THREADS="1",
        HOME=str(work),
        XDG_CACHE_HOME=str(work),
    )
    return subprocess.run(
        [*unprivileged_python(), "-m", "bggscore", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        timeout=300,
    )
