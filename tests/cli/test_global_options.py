"""--home, --config, --engine and --debug mean the same before or after the command name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from tests.support.output import assert_one_line_error, parse_json

from bggscore.cli.common import hoist_global_options
from bggscore.cli.main import app

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            ("--home", "{other}", "warehouse", "init", "--json"),
            ("warehouse", "init", "--json", "--home", "{other}"),
        ),
        (
            ("--home={other}", "config", "show", "--json"),
            ("config", "show", "--home={other}", "--json"),
        ),
        (
            ("--engine", "duckdb", "config", "show", "--json"),
            ("config", "show", "--json", "--engine", "duckdb"),
        ),
        (
            ("--config", "{config}", "config", "show", "--json"),
            ("config", "show", "--config", "{config}", "--json"),
        ),
    ],
    ids=["home", "home-equals", "engine", "config"],
)
def test_a_global_option_after_the_command_means_the_same(
    cli, home: Path, tmp_path: Path, before: tuple[str, ...], after: tuple[str, ...]
) -> None:
    names = {"other": str(tmp_path / "other"), "config": str(tmp_path / "c.toml")}
    (tmp_path / "c.toml").write_text('source_environment = "prod"\n')
    first = cli(*(arg.format(**names) for arg in before))
    assert first.exit_code == 0, first.stderr
    if "init" in before:  # it made the warehouse in the other home; again, nothing to create
        assert (tmp_path / "other" / "warehouse.duckdb").is_file() and not home.exists()
        assert parse_json(first.stdout)["changed"]
    second = cli(*(arg.format(**names) for arg in after))
    assert second.exit_code == 0, second.stderr
    if "init" in before:
        assert parse_json(second.stdout)["changed"] == []
        assert not home.exists()
    else:
        assert second.stdout == first.stdout


def test_debug_after_the_command_shows_the_traceback(cli, home: Path) -> None:
    plain = cli("detect-changes")
    assert plain.exit_code == 1
    assert_one_line_error(plain.stderr, "no warehouse at")
    for args in (("--debug", "detect-changes"), ("detect-changes", "--debug")):
        result = cli(*args)
        assert result.exit_code == 1
        assert "Traceback" in result.stderr and "no warehouse at" in result.stderr
    quiet = cli("detect-changes", "--debug", "--no-debug")  # the last one wins, as anywhere
    assert_one_line_error(quiet.stderr, "no warehouse at")


def test_after_a_subcommand_and_a_group_option(cli, home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    result = cli("models", "list", "--json", "--home", str(other))
    assert result.exit_code == 0, result.stderr
    assert not home.exists()
    bad = cli("demo", "refresh", "--engine", "oracle")
    assert bad.exit_code == 2
    assert_one_line_error(bad.stderr, "invalid setting warehouse.engine", "from --engine")


ROOT = typer.main.get_command(app)


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        ("score --debug", "--debug score"),
        ("--home a score --home=b --json", "--home a --home=b score --json"),
        ("models list --engine duckdb", "--engine duckdb models list"),
        ("demo --games 5 --home h refresh", "--home h demo --games 5 refresh"),
        # an option's value stays with it, whatever it looks like
        ("similar --name --home", "similar --name --home"),
        ("--home score score --debug", "--home score --debug score"),
        ("dispatch e --repo --config", "dispatch e --repo --config"),
        # after `--` everything is an argument
        ("score -- --debug", "score -- --debug"),
        # before the command: as given
        ("--debug --config c.toml warehouse status", "--debug --config c.toml warehouse status"),
    ],
)
def test_the_global_options_move_in_front_of_the_command(given: str, parsed: str) -> None:
    assert hoist_global_options(ROOT, given.split()) == parsed.split()


def test_a_global_option_missing_its_value_is_one_line(cli, home: Path) -> None:
    result = cli("score", "--home")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "option '--home' requires an argument")


def test_the_installed_command_reads_them_too(home: Path, tmp_path: Path) -> None:
    """Through `bggscore`'s own entry point (run(), with the `similar` fast path first)."""
    other = tmp_path / "other"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    for args in (
        ["warehouse", "init", "--home", str(other)],
        ["similar", "1", "--home", str(other)],
    ):
        result = subprocess.run(
            [sys.executable, "-c", "from bggscore.cli.main import run; run()", *args],
            capture_output=True,
            text=True,
            env=env,
        )
        if args[0] == "warehouse":
            assert result.returncode == 0, result.stderr
        else:  # the fast path declines; the app reads --home: no embeddings there yet
            assert result.returncode == 2, result.stderr  # no such model: exit 2
            assert_one_line_error(result.stderr, "unknown game_embeddings model")
            assert str(other) in result.stderr
    assert (other / "warehouse.duckdb").is_file() and not home.exists()


def test_an_unexpected_error_asks_for_debug_only_without_it(
    cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("bggscore.settings.explain_settings", broken)
    plain = cli("config", "show")
    assert plain.exit_code == 1
    assert_one_line_error(plain.stderr, "unexpected RuntimeError: a bug", "rerun with --debug")
    assert "Traceback" not in plain.stderr
    debug = cli("config", "show", "--debug")
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr
    last = debug.stderr.strip().splitlines()[-1]
    assert last.startswith("error: unexpected RuntimeError: a bug")
    assert "report it" in last and "--debug" not in last
