"""The `bggscore` command: global options and the command groups.

The Typer app is built on first use (``app`` is a lazy attribute of this module), so that
`run` can answer a plain `bggscore similar ...` from its warm cache with numpy and the
standard library only: Typer, pydantic and rich alone take longer to import than the
0.5 s such a call may take. Anything else, and any `similar` call the cache cannot answer
as is, goes through the app.
"""

import atexit
import functools
import gc
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

if TYPE_CHECKING:
    import typer


@functools.cache
def commands() -> dict[str, tuple[Any, bool]]:
    """The commands and command groups, in --help's order: name -> (the command's function
    or the group's app, whether it is a group)."""
    from bggscore.cli import compare as compare_cmd
    from bggscore.cli import config as config_cmd
    from bggscore.cli import demo, detect, dispatch, embed, models, score, warehouse
    from bggscore.cli import report as report_cmd
    from bggscore.cli import run as run_cmd

    return {
        "warehouse": (warehouse.app, True),
        "models": (models.app, True),
        "detect-changes": (detect.detect_changes, False),
        "score": (score.score, False),
        "embed": (embed.embed, False),
        "similar": (embed.similar, False),
        "dispatch": (dispatch.dispatch, False),
        "run": (run_cmd.run, False),
        "compare": (compare_cmd.compare, False),
        "report": (report_cmd.report, False),
        "demo": (demo.app, True),
        "config": (config_cmd.app, True),
    }


def invoked(argv: list[str]) -> str | None:
    """The command ``argv`` runs, when the app needs no other to run it: the first word
    past the global options, if a command's name; None for the root's own --help or
    --version, shell completion, or anything else (then the whole app parses it)."""
    from bggscore.cli.common import GLOBAL_OPTIONS

    if any(key.endswith("_BGGSCORE_COMPLETE") for key in os.environ):
        return None
    i = 0
    while i < len(argv):
        token = argv[i]
        name, equals, _ = token.partition("=")
        if name in GLOBAL_OPTIONS:
            i += 1 + (GLOBAL_OPTIONS[name] and not equals)
            continue
        return token if token in commands() else None
    return None


@functools.cache
def _build_app(only: str | None = None) -> "typer.Typer":
    """The app; with ``only``, with that command alone (Typer builds every registered
    command's parameters before parsing: a tenth of a second for all of them)."""
    import typer

    from bggscore.cli.common import AppState, ErrorHandlingGroup, flag_overrides

    app = typer.Typer(
        cls=ErrorHandlingGroup,
        name="bggscore",
        help="Incremental scoring of BoardGameGeek prediction models, in-process.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    for name, (found, group) in commands().items():
        if only is not None and name != only:
            continue
        if group:
            app.add_typer(found, name=name)
        else:
            app.command(name)(found)

    def _version(value: bool) -> None:
        if value:
            from bggscore import __version__

            typer.echo(f"bggscore {__version__}")
            raise typer.Exit()

    @app.callback()
    def main(
        ctx: typer.Context,
        config: Annotated[
            Path | None,
            typer.Option(
                help="Config file (default: ./bggscore.toml when present).", dir_okay=False
            ),
        ] = None,
        home: Annotated[
            str | None,  # a string: Path("") would already be the current folder
            typer.Option(
                metavar="<path>",
                help="Folder for local state [env: BGGSCORE_HOME; default ./.bggscore].",
            ),
        ] = None,
        engine: Annotated[
            str | None,
            typer.Option(
                help="Warehouse engine: duckdb or bigquery [env: BGGSCORE_WAREHOUSE__ENGINE]."
            ),
        ] = None,
        debug: Annotated[bool, typer.Option(help="Show tracebacks.")] = False,
        quiet: Annotated[
            bool,
            typer.Option(
                "-q",
                "--quiet",
                help="No progress or info lines; warnings, errors and the result stay.",
            ),
        ] = False,
        no_color: Annotated[
            bool,
            typer.Option("--no-color", help="No colours or styles [env: NO_COLOR]."),
        ] = False,
        allow_version_mismatch: Annotated[
            bool,
            typer.Option(
                "--allow-version-mismatch",
                help="Load imported models made with another scikit-learn anyway, with a "
                "warning [env: BGGSCORE_REGISTRY__ALLOW_VERSION_MISMATCH].",
            ),
        ] = False,
        version: Annotated[
            bool,
            typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
        ] = False,
    ) -> None:
        """Incremental scoring of BoardGameGeek prediction models, in-process.

        Settings come from flags, then BGGSCORE_* environment variables (use __ for
        nesting, e.g. BGGSCORE_WAREHOUSE__ENGINE), then bggscore.toml, then defaults.
        """
        from bggscore.console import configure

        configure(quiet=quiet, no_color=no_color)

        from bggscore.warehouse.command import begin_command, end_command

        begin_command(ctx.invoked_subcommand)  # labels its BigQuery jobs; shares metadata
        ctx.call_on_close(end_command)
        ctx.obj = AppState(
            config=config,
            overrides=flag_overrides(
                **{
                    "home": home,
                    "warehouse.engine": engine,
                    "registry.allow_version_mismatch": allow_version_mismatch or None,
                }
            ),
            debug=debug,
        )

    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        return _build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run() -> None:
    # the interpreter's last collection, at exit, walks every object the imports made
    # (~0.08 s of a 0.7 s command): frozen, they are left to the process's end. Registered
    # first, so it runs after every other exit handler.
    atexit.register(gc.freeze)
    if not _similar_from_cache(sys.argv[1:]):
        _build_app(invoked(sys.argv[1:]))(prog_name="bggscore")


_ID = re.compile(r"(0|[1-9][0-9]{0,17})", re.ASCII)
_TOP = re.compile(r"[1-9][0-9]{0,8}", re.ASCII)


def _similar_args(argv: list[str]) -> dict[str, Any] | None:
    """`similar [GAME_ID] [--name TEXT] [--top N] [--json]` in any order, each at most once,
    with no global option; None for anything else (the app parses and reports it)."""
    if not argv or argv[0] != "similar":
        return None
    found: dict[str, Any] = {}
    rest = list(argv[1:])
    while rest:
        token = rest.pop(0)
        option, equals, value = token.partition("=")
        if option in ("--name", "--top") and not equals:
            if not rest:
                return None
            value = rest.pop(0)
        if token == "--json" and "json" not in found:
            found["json"] = True
        elif option == "--name" and "name" not in found and not value.startswith("-"):
            found["name"] = value
        elif option == "--top" and "top" not in found and _TOP.fullmatch(value):
            found["top"] = int(value)
        elif "game_id" not in found and _ID.fullmatch(token):
            found["game_id"] = int(token)
        else:
            return None
    if ("game_id" in found) == ("name" in found):
        return None
    return found


def _similar_from_cache(argv: list[str]) -> bool:
    """Answer `bggscore similar` as its command does, when the cached index is current;
    False when the app must (other commands, other flags, a cold or stale cache)."""
    args = _similar_args(argv)
    if args is None or any(key.endswith("_BGGSCORE_COMPLETE") for key in os.environ):
        return False
    from bggscore.embeddings.similar import Inputs, NotEmbedded, answer, recall, render_table
    from bggscore.errors import BggscoreError

    try:  # e.g. a working folder deleted under us: the app says what is wrong
        cached = recall(Inputs.capture(None, {}))  # no flags: the app's settings inputs too
    except Exception:
        return False
    if cached is None or cached.warnings:
        return False
    try:
        try:
            data = answer(
                cached.index,
                cached.model,
                args.get("game_id"),
                args.get("name"),
                args.get("top", 10),
            )
        except NotEmbedded:  # the app asks the warehouse whether the game exists at all
            return False
        except BggscoreError as exc:  # reported as the app's error handler does
            _error(" ".join(str(exc).split()))
            sys.exit(exc.exit_code)
        except Exception:  # a bug: the app reports it (one line, traceback with --debug)
            return False
        if args.get("json"):
            import json  # as Console.result prints it, without importing rich for that

            from bggscore.results import versioned

            print(json.dumps(versioned("similar", data), indent=2, sort_keys=False), flush=True)
        else:
            from bggscore.console import Console

            Console().result(data, functools.partial(render_table, data))
    except BrokenPipeError:  # the reader stopped early (`| head`): the work is done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except KeyboardInterrupt:
        _error("interrupted; nothing was changed")
        sys.exit(130)
    return True


def _error(message: str) -> None:
    from bggscore.console import Console

    Console().error(message)
