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
