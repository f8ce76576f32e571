"""Every command answers --help, and every command and option is documented."""

from __future__ import annotations

import typer.main

from bggscore.cli.main import app


def walk(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, (*path, name))


def test_every_command_has_help_and_documented_options(cli) -> None:
    root = typer.main.get_command(app)
    seen = 0
    for path, command in walk(root):
        result = cli(*path, "--help")
        assert result.exit_code == 0, (path, result.stderr)
        assert "Usage:" in result.stdout
        if path:
            assert command.help, f"bggscore {' '.join(path)} has no help text"
        for param in command.params:
            if getattr(param, "param_type_name", "") == "option" and param.name not in (
                "install_completion",
                "show_completion",
                "help",
            ):
                assert param.help, f"bggscore {' '.join(path)} --{param.name} has no help text"
        seen += 1
    assert seen >= 10


def test_usage_errors_exit_2_without_traceback(cli) -> None:
    for args in (("score", "--bogus"), ("score", "--start-year", "x"), ("nope",)):
        result = cli(*args)
        assert result.exit_code == 2
        assert "Traceback" not in result.stderr
