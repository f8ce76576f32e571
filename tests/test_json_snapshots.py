"""Each command's ``--json`` document, kept as a file: a change of shape shows as a diff.

The documents come from real runs on a copy of the demo home; values that change from run to
run (job ids, timings) are replaced by placeholders before comparing. A document whose shape
changes needs a ``schema_version`` bump (bggscore.results) and a changelog line; then rerun
with ``BGGSCORE_UPDATE_SNAPSHOTS=1`` to rewrite the files.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from tests.support.output import parse_json
from tests.support.state import game_ids, sql

from bggscore.results import SCHEMA_VERSION

SNAPSHOTS = Path(__file__).parent / "snapshots" / "json"
JOB_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")
VOLATILE = {"seconds": "<seconds>", "games_per_second": "<rate>"}
# read at import: the `home` fixture clears BGGSCORE_* variables for each test
UPDATE = os.environ.get("BGGSCORE_UPDATE_SNAPSHOTS") == "1"


def normalise(value: Any, key: str | None = None) -> Any:
    if key in VOLATILE and value is not None:
        return VOLATILE[key]
    if isinstance(value, dict):
        return {k: normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str):
        return JOB_ID.sub("<job_id>", value)
    return value


def check(name: str, document: dict[str, Any]) -> None:
    text = json.dumps(normalise(document), indent=2) + "\n"
    path = SNAPSHOTS / f"{name}.json"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"no snapshot {path}; rerun with BGGSCORE_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(), (
        f"`{name}` --json changed shape or values; if on purpose, bump "
        "bggscore.results.SCHEMA_VERSION, say so in CHANGELOG.md and rerun with "
        "BGGSCORE_UPDATE_SNAPSHOTS=1"
    )


@pytest.fixture
def one_game(embedded_home: Path) -> str:
    return str(min(game_ids(embedded_home)))


COMMANDS = {
    "detect-changes": ("detect-changes", "--all-years", "--json"),
    "detect-changes-one-stage": ("detect-changes", "--all-years", "--stage", "main", "--json"),
    "score": ("score", "--game-id", "{game}", "--json"),
    "embed": ("embed", "--game-id", "{game}", "--json"),
    "run": ("run", "--game-id", "{game}", "--full", "--json"),
    "compare": ("compare", "{job}", "{job}", "--top", "3", "--json"),
}


def landing_job(home: Path) -> str:
    """The demo's scoring job (the first, should there be several)."""
    return sql(home, "SELECT MIN(job_id) AS job FROM raw.ml_predictions_landing")["job"][0]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_json_document(cli, embedded_home: Path, one_game: str, name: str) -> None:
    args = [a.replace("{game}", one_game) for a in COMMANDS[name]]
    if "{job}" in args:
        job = landing_job(embedded_home)
        args = [a.replace("{job}", job) for a in args]
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    document = parse_json(result.stdout)
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["command"] == args[0]
    check(name, document)


def test_detect_changes_has_one_shape_whatever_the_stages(cli, embedded_home: Path) -> None:
    every = parse_json(cli("detect-changes", "--all-years", "--json").stdout)
    one = parse_json(cli("detect-changes", "--all-years", "--stage", "main", "--json").stdout)
    assert set(every) == set(one)
    assert [s["stage"] for s in one["stages"]] == ["main"]
