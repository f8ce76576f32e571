"""Shared fixtures: an isolated bggscore home, the CLI runner, the real sample."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "sample_games.parquet"


@pytest.fixture
def sample_path() -> Path:
    """The 1,000 real games; they stay in ../shared and are never copied here."""
    if not SAMPLE.is_file():
        pytest.skip(f"real sample not found at {SAMPLE} (only present beside the repository)")
    return SAMPLE


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh bggscore home; no BGGSCORE_* variables or config file leak in."""
    for key in list(os.environ):
        if key.startswith(("BGGSCORE_", "GITHUB_")):
            monkeypatch.delenv(key)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    path = tmp_path / "home"
    monkeypatch.setenv("BGGSCORE_HOME", str(path))
    yield path


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(home: Path):
    """Run `bggscore ARGS...` in-process and return exit code, stdout and stderr."""
    from bggscore.cli.main import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Outcome:
        result = runner.invoke(app, list(args), input=input, catch_exceptions=False)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    return invoke


# -- a trained demo home for the scoring tests ---------------------------------------------
DEMO_GAMES = 3000  # enough for every outcome to train; small enough to build in seconds


@pytest.fixture(scope="session")
def trained_demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bggscore home with ~3,000 demo games and the five trained models, built ONCE.

    The catalogue comes from the demo generator, loaded with the warehouse loader; the
    models are trained with the real CLI (`models train --all`). Nothing is scored. Tests
    never use this home directly: `demo_home` gives each test its own copy.
    """
    from bggscore.cli.main import app
    from bggscore.demo.catalogue import generate_catalogue
    from bggscore.loading import load_games
    from bggscore.settings import load_settings
    from bggscore.warehouse import open_warehouse

    root = tmp_path_factory.mktemp("trained-demo")
    path = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("BGGSCORE_", "GITHUB_")):
                mp.delenv(key)
        mp.chdir(root)
        mp.setenv("BGGSCORE_HOME", str(path))
        with open_warehouse(load_settings()) as wh:
            wh.ensure_schema()
            load_games(wh, generate_catalogue(DEMO_GAMES, 0))
        result = CliRunner().invoke(app, ["models", "train", "--all"], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
    return path


@pytest.fixture
def demo_home(home: Path, trained_demo_home: Path) -> Path:
    """This test's own copy of the trained demo home, at the `home` fixture's path."""
    import shutil

    shutil.copytree(trained_demo_home, home)
    return home
