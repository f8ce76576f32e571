"""A RegistryWarning reaches the user as one `warning:` line on stderr, through the console.

The real CLI scores a copy of the trained demo home (`demo_home`) whose rating model claims to
have been registered under another scikit-learn: Registry.load warns (warnings.warn), and the
error-handling group shows it as one line, never as Python's `file:line: RegistryWarning`
block with its source line, and never on stdout (so --json stays one JSON document).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.output import parse_json
from tests.support.state import game_ids

# the test suite turns warnings into errors; a user's Python shows this one (action default)
pytestmark = pytest.mark.filterwarnings("default::bggscore.registry.RegistryWarning")


def claim_old_sklearn(home: Path, model_type: str = "rating") -> None:
    [path] = sorted((home / "registry" / model_type).glob("*/v*/registration.json"))[-1:]
    stored = json.loads(path.read_text())
    stored["versions"]["sklearn"] = "0.24.2"
    path.write_text(json.dumps(stored))


def assert_one_warning_line(stdout: str, stderr: str) -> None:
    warned = [line for line in stderr.splitlines() if "warning" in line.lower()]
    assert len(warned) == 1, stderr
    assert " warning: rating:" in f" {warned[0]}"  # plain (timestamped): not a terminal
    assert "registered with scikit-learn 0.24.2" in warned[0]
    assert "retrain it or install scikit-learn==0.24.2" in warned[0]
    for stream in (stderr, stdout):
        assert "RegistryWarning" not in stream and "Traceback" not in stream
        assert "registry.load(" not in stream and ".py:" not in stream  # no file:line, source
    assert "scikit-learn" not in stdout


def test_a_registry_warning_is_one_console_line(cli, demo_home: Path) -> None:
    claim_old_sklearn(demo_home)
    result = cli("score", "--game-id", str(min(game_ids(demo_home))))
    assert result.exit_code == 0, result.stderr
    assert_one_warning_line(result.stdout, result.stderr)


def test_in_a_real_process_with_json_it_stays_off_stdout(
    demo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a real interpreter: Python's own warning display, not pytest's recording of it
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    claim_old_sklearn(demo_home)
    game = str(min(game_ids(demo_home)))
    result = subprocess.run(
        [sys.executable, "-m", "bggscore", "score", "--game-id", game, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert_one_warning_line(result.stdout, result.stderr)
    assert parse_json(result.stdout)["games_scored"] == 1  # stdout is one JSON document
