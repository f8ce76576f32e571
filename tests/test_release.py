"""Release readiness: the wheel and sdist build, pass `twine check`, hold what they should,
and the wheel installs into a fresh virtualenv where `bggscore demo` runs.

Slow (a build, and a `pip install` of every dependency) and needs `build` and `twine`
(the dev extras). The fresh-venv test needs PyPI, or a pip cache, for the dependencies.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13")
URLS = ("Homepage", "Documentation", "Changelog", "Issues")
# never in an sdist: local state, virtualenvs, benchmark output, caches
FORBIDDEN_PARTS = {
    ".venv",
    ".bggscore",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".git",
}


@dataclass
class Dists:
    wheel: Path
    sdist: Path
    version: str


def _run(args: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None):
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
    return result


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything that points back at this repository."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BGGSCORE_", "GITHUB_", "PYTHON", "VIRTUAL_ENV", "PIP_REQUIRE"))
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """`python -m build`: the sdist first, then the wheel built from that sdist."""
    pytest.importorskip("build", reason="needs `build` (dev extras)")
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], REPO, 600)
    wheels = sorted(out.glob("*.whl"))
    sdists = sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    version = wheels[0].name.split("-")[1]
    return Dists(wheels[0], sdists[0], version)


def test_twine_check_passes(dists: Dists) -> None:
    pytest.importorskip("twine", reason="needs `twine` (dev extras)")
    result = _run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists.wheel), str(dists.sdist)],
        REPO,
        120,
    )
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_wheel_holds_the_package_typed_without_tests(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as wheel:
        names = wheel.namelist()
        info = f"bggscore-{dists.version}.dist-info"
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        metadata = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
    assert "bggscore/py.typed" in names
    assert "bggscore/cli/main.py" in names
    assert f"{info}/licenses/LICENSE" in names
    tops = {name.split("/")[0] for name in names}
    assert tops == {"bggscore", info}, tops  # no tests/, docs/, benchmarks/ ...
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert re.search(
        r"^\[console_scripts\]\s*^bggscore = bggscore\.cli\.main:run$", entry_points, re.M
    )

    assert metadata["Name"] == "bggscore"
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.10"
    assert len(metadata["Summary"]) > 40
    assert metadata["Keywords"]
    assert metadata.get_payload().startswith("# bggscore")  # the README, as Markdown
    assert metadata["Description-Content-Type"] == "text/markdown"
    classifiers = metadata.get_all("Classifier")
    for version in PYTHON_VERSIONS:
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "Typing :: Typed" in classifiers
    urls = dict(value.split(", ", 1) for value in metadata.get_all("Project-URL"))
    assert set(URLS) <= set(urls), urls
    assert all(url.startswith("https://github.com/bggscore/bggscore") for url in urls.values())


def test_sdist_holds_the_sources_and_no_local_state(dists: Dists) -> None:
    root = f"bggscore-{dists.version}"
    with tarfile.open(dists.sdist) as sdist:
        names = [name.removeprefix(f"{root}/") for name in sdist.getnames()]
    for wanted in (
        "pyproject.toml",
        "README.md",
        "CHANGELOG.md",
        "LICENSE",
        "PKG-INFO",
        "src/bggscore/py.typed",
        "src/bggscore/cli/main.py",
        "tests/conftest.py",
        "docs/ci.md",
        "scripts/gen-command-reference",
        "workflows/README.md",
    ):
        assert wanted in names, wanted
    leaked = [n for n in names if FORBIDDEN_PARTS & set(n.split("/"))]
    leaked += [n for n in names if n.startswith("benchmarks/results") or n.endswith(".pyc")]
    leaked += [n for n in names if n.endswith((".duckdb", ".whl"))]
    assert not leaked, leaked[:20]


def test_wheel_installs_and_runs_the_demo_in_a_fresh_venv(
    dists: Dists, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No repository on sys.path: a new venv, the wheel from PyPI-style install, an empty
    working directory."""
    venv = tmp_path / "venv"
    work = tmp_path / "work"
    work.mkdir()
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = _clean_env()
    timings: dict[str, float] = {}

    started = time.monotonic()
    _run([sys.executable, "-m", "venv", str(venv)], work, 300, env)
    timings["venv"] = time.monotonic() - started

    started = time.monotonic()
    pip = [str(bindir / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    _run([*pip, str(dists.wheel)], work, 1200, env)
    timings["pip install"] = time.monotonic() - started

    where = _run(
        [str(bindir / "python"), "-c", "import bggscore; print(bggscore.__file__)"], work, 60, env
    )
    assert Path(where.stdout.strip()).resolve().is_relative_to(venv.resolve()), where.stdout

    bggscore = str(bindir / "bggscore")
    version = _run([bggscore, "--version"], work, 60, env)
    assert version.stdout.strip() == f"bggscore {dists.version}"

    started = time.monotonic()
    demo = _run([bggscore, "demo", "--games", "2000"], work, 600, env)
    timings["demo --games 2000"] = time.monotonic() - started

    neighbours = re.findall(r"^\s+0\.\d{3}\s+.+\(\d+\)$", demo.stdout, re.M)
    assert "games most like" in demo.stdout, demo.stdout
    assert len(neighbours) >= 3, demo.stdout
    assert (work / ".bggscore" / "warehouse.duckdb").is_file()
    # it ends with the report of its runs, drawn with the installed wheel's altair/vl-convert
    page = work / ".bggscore" / "report.html"
    assert f"report: {page}" in demo.stdout or "report: .bggscore/report.html" in demo.stdout
    assert page.is_file() and page.stat().st_size > 500_000
    with capsys.disabled():
        shown = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in timings.items())
        print(f"\nfresh venv: {shown}")
