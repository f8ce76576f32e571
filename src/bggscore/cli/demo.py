"""`bggscore demo`: seed the embedded warehouse with a synthetic catalogue."""

from __future__ import annotations

from typing import Annotated

import typer

from bggscore.cli.common import JsonOption, state
from bggscore.console import Console
from bggscore.stages import MAX_DEMO_GAMES

app = typer.Typer(
    help="Seed a demo warehouse, run the pipeline on it and write a report of the runs."
)


@app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    games: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_DEMO_GAMES,
            help=f"Games in the synthetic catalogue (at most {MAX_DEMO_GAMES:,}).",
        ),
    ] = 20_000,
    seed: Annotated[int, typer.Option(min=0, help="Random seed (0 or more).")] = 0,
    force: Annotated[
        bool,
        typer.Option(help="Also into a home holding data or models the demo did not make."),
    ] = False,
    report: Annotated[
        bool,
        typer.Option(
            help="Score with 90% intervals, then simulate a day (`demo refresh`), score and "
            "embed only what changed, and write a report of the runs (<home>/report.html); "
            "--no-report stops after the first full score and embed.",
        ),
    ] = True,
    json: JsonOption = False,
) -> None:
    """Seed the embedded warehouse with a realistic synthetic BGG catalogue, train the
    models, score and embed every game, then (unless --no-report) a day of changes and
    a report of the runs.

    Runs in a new (empty) home, or again in one the demo made; a home holding anything
    else (a real export, your models) is refused unless --force.
    """
    if ctx.invoked_subcommand is not None:
        return
    from bggscore.tasks.demo import run_demo

    console = Console(json_mode=json, command="demo")
    settings = state(ctx).settings()
    result = run_demo(settings, games=games, seed=seed, console=console, force=force, report=report)
    console.result(result, lambda out: out.print(result["summary"]))


@app.command()
def refresh(
    ctx: typer.Context,
    fraction: Annotated[float, typer.Option(help="Share of games that change.")] = 0.02,
    seed: Annotated[int, typer.Option(min=0, help="Random seed (0 or more).")] = 1,
    force: Annotated[
        bool, typer.Option(help="Also in a warehouse whose games the demo did not make.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Simulate a daily warehouse refresh: some feature changes, some stats-only changes.

    Only in a warehouse `bggscore demo` made, unless --force.
    """
    from bggscore.tasks.demo import refresh_demo

    console = Console(json_mode=json, command="demo refresh")
    settings = state(ctx).settings()
    result = refresh_demo(settings, fraction=fraction, seed=seed, console=console, force=force)
    console.result(result, lambda out: out.print(result["summary"]))
