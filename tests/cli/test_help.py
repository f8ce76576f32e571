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


def test_a_command_runs_in_an_app_of_its_own_as_in_the_whole_app(home) -> None:
    """`run` builds only the invoked command (Typer builds every registered command's
    parameters first): each command's help, and its usage errors, are the whole app's."""
    from typer.testing import CliRunner

    from bggscore.cli.main import _build_app, commands, invoked

    runner = CliRunner()
    registered = {name for name, _ in walk(typer.main.get_command(app)) if len(name) == 1}
    assert registered == {(name,) for name in commands()}
    for name in commands():
        for args in ([name, "--help"], [name, "--bogus"]):
            assert invoked(args) == name
            alone = runner.invoke(_build_app(name), args)
            whole = runner.invoke(app, args)
            assert (alone.exit_code, alone.output) == (whole.exit_code, whole.output), args


def test_the_invoked_command_is_found_past_the_global_options() -> None:
    from bggscore.cli.main import invoked

    assert invoked(["--home", "score", "-q", "score", "--json"]) == "score"
    assert invoked(["--engine=duckdb", "--debug", "models", "list"]) == "models"
    # the root's own help and version, an unknown command, nothing: the whole app
    for argv in (["--help"], ["-h", "score"], ["--version"], ["scroe"], [], ["--home"]):
        assert invoked(argv) is None, argv


def test_the_objects_start_up_made_are_left_to_the_process_exit(mocker) -> None:
    """`run` freezes the collector's objects last thing at exit: the interpreter's final
    collection would otherwise walk everything the imports made."""
    import gc
    import sys

    from bggscore.cli import main

    registered = mocker.patch("atexit.register")
    mocker.patch.object(sys, "argv", ["bggscore", "--version"])
    try:
        main.run()
    except SystemExit as exc:
        assert exc.code in (0, None)
    assert registered.call_args_list[0] == mocker.call(gc.freeze)


def test_an_option_missing_its_value_points_at_its_command_help(cli) -> None:
    """Click raises a missing option value without a context; the error still names the
    command whose help to read (a new-user trial got `bggscore --help`)."""
    for args, where in (
        (("detect-changes", "--explain"), "detect-changes --help"),
        (("warehouse", "load", "games.parquet", "--embeddings"), "warehouse load --help"),
        (("--quiet", "score", "--start-year"), "score --help"),
    ):
        result = cli(*args)
        assert result.exit_code == 2
        (error,) = result.stderr.splitlines()
        assert "requires an argument" in error and error.endswith(f"{where}'."), error
