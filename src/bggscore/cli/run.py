"""`bggscore run`: score and embed what changed, in order, under the home's lock."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bggscore.cli.common import JsonOption, state
from bggscore.cli.selection import (
    DEFAULT_MAX_GAMES,
    AllYearsOption,
    EndYearOption,
    GameIdOption,
    GameIdsFileOption,
    MaxGamesOption,
    StartYearOption,
    build_selection,
)
from bggscore.console import Console


def run(
    ctx: typer.Context,
    stage: Annotated[
        list[str] | None,
        typer.Option(
            help="Stages to run (repeat or comma-separate): complexity, main, text-embeddings, "
            "game-embeddings [default: all, always in that order]."
        ),
    ] = None,
    start_year: StartYearOption = 2024,
    end_year: EndYearOption = 2029,
    all_years: AllYearsOption = False,
    game_id: GameIdOption = None,
    game_ids_file: GameIdsFileOption = None,
    full: Annotated[
        bool, typer.Option("--full", help="Rescore the whole selection, not only what changed.")
    ] = False,
    max_games: MaxGamesOption = DEFAULT_MAX_GAMES,
    wait: Annotated[
        bool, typer.Option("--wait", help="Queue behind a running bggscore instead of exiting.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Run the chain in one process: complexity, main, text and game embeddings.

    Each stage scores only what changed (unless --full). A lock in the home folder
    makes an overlapping run exit at once with a clear message (or queue with --wait).
    Exit codes: 0 success (also when nothing changed), 1 failure, 2 usage.
    """
    from bggscore.locking import pipeline_lock
    from bggscore.pipeline import RunOptions, parse_stages, run_pipeline

    settings = state(ctx).settings()
    options = RunOptions(
        selection=build_selection(start_year, end_year, all_years, game_id, game_ids_file),
        stages=parse_stages(stage or []),
        changed_only=not full,
        max_games=max_games,
        batch_size=settings.scoring.batch_size,
    )
    console = Console(json_mode=json)
    with pipeline_lock(settings.home, "run", wait=wait):
        summary = run_pipeline(settings, options, console)

    def render(out: Any) -> None:
        if summary["skipped_reason"]:
            out.print(f"nothing to do ({summary['skipped_reason']})")
            return
        out.print(
            f"scored {summary['games_scored']:,} games, embedded {summary['games_embedded']:,} "
            f"in {summary['seconds']:.1f}s"
        )

    console.result(summary, render)
    console.github_outputs(
        {"games_scored": summary["games_scored"], "games_embedded": summary["games_embedded"]}
    )
