"""What a command printed: its JSON document, and the one-line error a failure must be."""

from __future__ import annotations

import json
from typing import Any


def parse_json(stdout: str) -> dict[str, Any]:
    return json.loads(stdout)


def assert_one_line_error(stderr: str, *needles: str) -> str:
    """The whole of stderr is one `error: ...` line containing every needle; no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line
