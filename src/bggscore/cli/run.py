"""`bggscore run`: score and embed what changed, in order, under the home's lock."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bggscore.cli.common import JsonOption, state
from bggscore.cli.selection import (
    DEFAULT_END_YEAR,
    DEFAULT_MAX_GAMES,
    DEFAULT_START_YEAR,
    AllYearsOption,
    EndYearOption,
    GameIdOption,
    GameIdsFileOption,
    IncludeNullYearOption,
    MaxGamesOption,
    StartYearOption,
    build_selection,
)
from bggscore.console import Console
from bggscore.stages import STAGE_NAMES
from bggscore.wording import counted


def run(
    ctx: typer.Context,
    stage: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Stages to run (repeat or comma-separate): {', '.join(STAGE_NAMES)} "
            "[default: all, always in the order the models' inputs give]."
        ),
    ] = None,
    start_year: StartYearOption = DEFAULT_START_YEAR,
    end_year: EndYearOption = DEFAULT_END_YEAR,
    all_years: AllYearsOption = False,
    include_null_year: IncludeNullYearOption = False,
    game_id: GameIdOption = None,
    game_ids_file: GameIdsFileOption = None,
    full: Annotated[
        bool, typer.Option("--full", help="Rescore the whole selection, not only what changed.")
    ] = False,
    max_games: MaxGamesOption = DEFAULT_MAX_GAMES,
    wait: Annotated[
        bool, typer.Option("--wait", help="Queue behind a running bggscore instead of exiting.")
    ] = False,
    dispatch_event: Annotated[
        str | None,
        typer.Option(
            "--dispatch",
            metavar="EVENT_TYPE",
            help="Afterwards, send this repository_dispatch when anything was scored or embedded.",
        ),
    ] = None,
    dispatch_repo: Annotated[
        str | None,
        typer.Option(metavar="OWNER/NAME", help="The repository --dispatch sends to."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Run the chain in one process: complexity, main, text and game embeddings.

    Each stage scores only what changed (unless --full). A lock in the home folder
    makes an overlapping run exit at once with a clear message (or queue with --wait).
    Exit codes: 0 success (also when nothing changed), 1 failure, 2 usage.
    """
    from bggscore.errors import UsageError
    from bggscore.locking import pipeline_lock
    from bggscore.tasks.run import RunOptions, parse_stages, run_pipeline, stages_named

    if (dispatch_event is None) != (dispatch_repo is None):
        raise UsageError("--dispatch and --dispatch-repo go together")
    settings = state(ctx).settings()
    if dispatch_event:  # fail before the work, not after it
        import os

        from bggscore.dispatch import (
            check_event_type,
            check_repo,
            read_trigger,
            require_token,
            resolve_api_url,
            resolve_token,
        )

        check_event_type(dispatch_event)
        check_repo(dispatch_repo or "")
        require_token(resolve_token(settings))
        resolve_api_url(settings)
        read_trigger(os.environ)  # an unreadable triggering event
    options = RunOptions(
        selection=build_selection(
            start_year, end_year, all_years, game_id, game_ids_file, include_null_year
        ),
        stages=parse_stages(stage or []),
        stages_named=stages_named(stage or []),
        changed_only=not full,
        max_games=max_games,
        batch_size=settings.scoring.batch_size,
        embed_batch_size=settings.scoring.embed_batch_size,
    )
    console = Console(json_mode=json)
    with pipeline_lock(settings.home, "run", wait=wait):
        summary = run_pipeline(settings, options, console)
    if dispatch_event and dispatch_repo:
        summary["dispatch"] = _notify(settings, dispatch_event, dispatch_repo, summary, console)

    def render(out: Any) -> None:
        if summary["skipped_reason"]:
            out.print(f"nothing to do ({summary['skipped_reason']})")
            return
        out.print(
            f"scored {counted(summary['games_scored'], 'game')}, embedded "
            f"{counted(summary['games_embedded'], 'game')} in {summary['seconds']:.1f}s"
        )

    console.result(summary, render)
    console.github_outputs(
        {"games_scored": summary["games_scored"], "games_embedded": summary["games_embedded"]}
    )


def _notify(
    settings: Any, event_type: str, repo: str, summary: dict[str, Any], console: Console
) -> dict[str, Any]:
    """Tell the next repository, unless nothing changed (a no-op must not cascade)."""
    from bggscore.dispatch import DispatchOptions, run_dispatch

    if not summary["games_total"]:
        console.info(f"not dispatching {event_type}: nothing was scored or embedded")
        return {"sent": False, "reason": "nothing changed"}
    options = DispatchOptions(
        repo=repo,
        event_type=event_type,
        payload=(
            f"games_scored={summary['games_scored']}",
            f"games_embedded={summary['games_embedded']}",
        ),
    )
    result = run_dispatch(options, settings)
    console.info(result.summary())
    return result.as_dict()
