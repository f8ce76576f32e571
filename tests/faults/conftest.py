"""Homes for the fault tests, and a terminal summary of what each kill point found."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import isolated
from tests.faults.harness import FINDINGS

SCORE_GAMES = 3000  # 2,940 with a year: 20 batches of 150


@pytest.fixture(scope="session")
def unscored_3k_home(demo_run: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's registry (six trained models) beside a fresh warehouse of 3,000 demo
    games, never scored. Built ONCE; tests copy it."""
    from bggscore.demo.catalogue import generate_catalogue
    from bggscore.settings import load_settings
    from bggscore.warehouse import open_warehouse
    from bggscore.warehouse.load import load_games

    path = tmp_path_factory.mktemp("unscored-3k") / "home"
    path.mkdir()
    shutil.copytree(demo_run.home / "registry", path / "registry")
    with isolated(path), open_warehouse(load_settings(), create=True) as wh:
        wh.ensure_schema()
        load_games(wh, generate_catalogue(SCORE_GAMES, 0))
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FINDINGS:
        return
    terminalreporter.section("fault injection: what each fault found")
    for point, finding in FINDINGS.items():
        terminalreporter.write_line(f"{point}: {finding}")
