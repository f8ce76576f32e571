"""One full `bggscore demo` (with its day of changes and its report), built once."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import EMBED_DEMO_GAMES, run_cli_in


@dataclass
class ReportDemo:
    home: Path
    data: dict[str, Any]  # what `bggscore demo --json` printed
    stderr: str

    @property
    def page(self) -> Path:
        return Path(self.data["report"]["path"])


@pytest.fixture(scope="session")
def report_demo(tmp_path_factory: pytest.TempPathFactory) -> ReportDemo:
    """`bggscore demo --games 2000 --json` as a person runs it: the full score with
    intervals, a day of changes scored and embedded incrementally, and the report."""
    root = tmp_path_factory.mktemp("report-demo")
    path = root / "home"
    done = run_cli_in(path, root, "demo", "--games", str(EMBED_DEMO_GAMES), "--json")
    return ReportDemo(path, json.loads(done.stdout), done.stderr)


@pytest.fixture
def report_home(home: Path, report_demo: ReportDemo) -> Path:
    """This test's own copy of the report demo's home."""
    shutil.copytree(report_demo.home, home)
    return home
