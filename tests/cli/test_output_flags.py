"""How bggscore talks: `-q/--quiet`, `--no-color` and NO_COLOR, GitHub annotations, what
Ctrl-C says, and progress on a terminal for `models train` and `warehouse load`.

Terminal behaviour is tested in a real pseudo-terminal (a subprocess on a pty), since that is
what decides whether bggscore draws bars and colours.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.output import assert_one_line_error, parse_json

SRC = Path(__file__).resolve().parents[2] / "src"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", re.MULTILINE)  # an info line


def in_terminal(home: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """`bggscore ARGS` with stdout and stderr on a pseudo-terminal: (exit code, all it
    printed, escape codes included)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BGGSCORE_", "GITHUB_"))}
    base.pop("NO_COLOR", None)
    base.update(
        BGGSCORE_HOME=str(home),
        PYTHONPATH=str(SRC),
        OPENBLAS_NUM_THREADS="1",
        TERM="xterm-256color",
        COLUMNS="120",
        **(env or {}),
    )
    main, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "bggscore", *args],
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        env=base,
        cwd=home.parent,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    return process.wait(timeout=300), b"".join(chunks).decode("utf-8", "replace")


# -- -q/--quiet -----------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_keeps_the_result_warnings_and_errors(
    cli, embedded_home: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.setenv("BGGSCORE_FOO", "1")  # an unknown variable: a warning
    loud = cli("score", "--all-years", "--batch-size", "500")
    assert loud.exit_code == 0, loud.stderr
    assert STAMPED.search(loud.stderr), "score prints progress lines without -q"

    args = ["score", "--all-years", "--batch-size", "500"]
    quiet = cli("-q", *args) if where == "before" else cli(*args, "--quiet")
    assert quiet.exit_code == 0, quiet.stderr
    assert quiet.stdout.startswith("scored 1,951 games")  # the result stays
    (line,) = quiet.stderr.strip().splitlines()  # the warning, and no progress
    assert line.endswith(
        "warning: BGGSCORE_FOO is not a bggscore setting (nesting uses '__'); ignored"
    )

    monkeypatch.delenv("BGGSCORE_FOO")
    failed = cli("-q", "models", "show", "nope")
    assert failed.exit_code == 2
    assert_one_line_error(failed.stderr, "unknown model 'nope'")


# -- colours ---------------------------------------------------------------------------------------
def test_errors_are_coloured_on_a_terminal_unless_no_color(embedded_home: Path) -> None:
    code, coloured = in_terminal(embedded_home, "models", "show", "nope")
    assert code == 2 and ANSI.search(coloured), "an error on a terminal is red"
    for args, env in (
        (("--no-color", "models", "show", "nope"), {}),
        (("models", "show", "nope", "--no-color"), {}),
        (("models", "show", "nope"), {"NO_COLOR": "1"}),
    ):
        code, plain = in_terminal(embedded_home, *args, env=env)
        assert code == 2
        assert not ANSI.search(plain), (args, env, plain)
        assert plain.strip().startswith("error: unknown model 'nope'")


# -- GitHub Actions annotations ---------------------------------------------------------------
def test_a_failure_in_actions_is_also_an_error_annotation(
    cli, embedded_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = cli("models", "show", "10%", "--json")
    assert result.exit_code == 2
    assert result.stdout == ""  # stdout stays the document's (none, on failure)
    error, annotation = result.stderr.strip().splitlines()
    assert error.startswith("error: invalid model name '10%'")
    assert annotation == "::error title=bggscore::" + error.removeprefix("error: ").replace(
        "%", "%25"
    )
    ok = cli("models", "list", "--json")
    assert ok.exit_code == 0 and "::error" not in ok.stderr
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    assert "::error" not in cli("models", "show", "nope").stderr


def test_annotation_text_escapes_as_the_runner_unescapes() -> None:
    from bggscore.console import annotation_text

    assert annotation_text("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert annotation_text("a::b, c") == "a::b, c"  # the message part keeps : and ,


# -- Ctrl-C ---------------------------------------------------------------------------------------
def test_ctrl_c_in_models_train_speaks_of_models(
    cli, embedded_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bggscore.training import train

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_outcomes", interrupted)
    result = cli("-q", "models", "train", "--outcome", "rating")  # -q: no step lines
    assert result.exit_code == 130
    line = assert_one_line_error(result.stderr)
    assert "the models trained before it are registered" in line
    assert "batches" not in line


def test_ctrl_c_in_a_reading_command_says_nothing_changed(
    cli, embedded_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bggscore.tasks import detect

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(detect, "detect_stages", interrupted)
    result = cli("detect-changes")
    assert result.exit_code == 130
    assert_one_line_error(result.stderr, "interrupted; nothing was changed")


# -- progress on a terminal -------------------------------------------------------------------
def test_models_train_shows_progress_on_a_terminal(embedded_home: Path) -> None:
    code, shown = in_terminal(embedded_home, "models", "train", "--outcome", "complexity")
    assert code == 0, shown
    text = ANSI.sub("", shown)
    assert "reading the games" in text and "training complexity" in text
    assert "1/1" in text  # a bar over the models, finished
    assert not STAMPED.search(text)  # a bar, not log lines


def test_warehouse_load_shows_progress_on_a_terminal(embedded_home: Path) -> None:
    import duckdb

    export = embedded_home.parent / "games.parquet"
    con = duckdb.connect(str(embedded_home / "warehouse.duckdb"))
    try:
        con.execute(f"COPY analytics.games_features TO '{export}' (FORMAT parquet)")
    finally:
        con.close()
    code, shown = in_terminal(embedded_home, "warehouse", "load", str(export))
    assert code == 0, shown
    text = ANSI.sub("", shown)
    assert "3/3" in text  # reading, comparing, writing
    assert "loaded 2,000 games" in text


def test_off_a_terminal_load_prints_its_result_alone(cli, embedded_home: Path) -> None:
    import duckdb

    export = embedded_home.parent / "games.parquet"
    con = duckdb.connect(str(embedded_home / "warehouse.duckdb"))
    try:
        con.execute(f"COPY analytics.games_features TO '{export}' (FORMAT parquet)")
    finally:
        con.close()
    result = cli("warehouse", "load", str(export), "--json")
    assert result.exit_code == 0 and result.stderr == ""
    assert parse_json(result.stdout)["unchanged"] == 2000
