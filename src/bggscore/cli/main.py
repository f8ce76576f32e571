"""The `bggscore` command: global options and the command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bggscore.cli import demo, detect, dispatch, embed, models, score, warehouse
from bggscore.cli import run as run_cmd
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
app.add_typer(warehouse.app, name="warehouse")
app.add_typer(models.app, name="models")
app.command("detect-changes")(detect.detect_changes)
app.command()(score.score)
app.command()(embed.embed)
app.command()(embed.similar)
app.command()(dispatch.dispatch)
app.command("run")(run_cmd.run)
app.add_typer(demo.app, name="demo")


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
        typer.Option(help="Config file (default: ./bggscore.toml when present).", dir_okay=False),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(help="Folder for local state [env: BGGSCORE_HOME; default ./.bggscore]."),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            help="Warehouse engine: duckdb or bigquery [env: BGGSCORE_WAREHOUSE__ENGINE]."
        ),
    ] = None,
    debug: Annotated[bool, typer.Option(help="Show tracebacks.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Incremental scoring of BoardGameGeek prediction models, in-process.

    Settings come from flags, then BGGSCORE_* environment variables (use __ for
    nesting, e.g. BGGSCORE_WAREHOUSE__ENGINE), then bggscore.toml, then defaults.
    """
    ctx.obj = AppState(
        config=config,
        overrides=flag_overrides(**{"home": home, "warehouse.engine": engine}),
        debug=debug,
    )


def run() -> None:
    app(prog_name="bggscore")
