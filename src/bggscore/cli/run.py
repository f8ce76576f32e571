"""`bggscore run`: score and embed what changed, in order, under the home's lock."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bggscore.cli.common import (
    DryRunOption,
    JsonOption,
    WorkersOption,
    check_workers,
    dry_run_ledger,
    flag_overrides,
    report_dry_run,
    state,
)
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
    MinUsersRatedOption,
    StartYearOption,
    build_selection,
    refuse_ignored_max_games,
)
from bggscore.console import Console
from bggscore.errors import UsageError
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
    min_users_rated: MinUsersRatedOption = None,
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
    workers: WorkersOption = None,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
) -> None:
    """Run the chain in one process: complexity, main, text and game embeddings.

    Each stage scores only what changed (unless --full). A lock in the home folder
    makes an overlapping run exit at once with a clear message (or queue with --wait).
    Exit codes: 0 success (also when nothing changed), 1 failure, 2 usage.
    """
    from bggscore.tasks.run import RunOptions, parse_stages, run_pipeline, stages_named

    refuse_ignored_max_games(ctx, not full, "--full rescores everything: drop one of them")
    if dry_run and dispatch_event:
        raise UsageError("--dry-run writes nothing, so there is nothing to --dispatch about")
    app_state = state(ctx)
    app_state.overrides.update(flag_overrides(**{"scoring.workers": check_workers(workers)}))
    settings = app_state.settings()
    options = RunOptions(
        selection=build_selection(
            start_year,
            end_year,
            all_years,
            game_id,
            game_ids_file,
            include_null_year,
            min_users_rated,
            ctx=ctx,
        ),
        stages=parse_stages(stage or []),
        stages_named=stages_named(stage or []),
        changed_only=not full,
        max_games=max_games,
        batch_size=settings.scoring.batch_size,
        embed_batch_size=settings.scoring.embed_batch_size,
        workers=settings.scoring.workers,
        wait=wait,
        dispatch_event=dispatch_event,
        dispatch_repo=dispatch_repo,
    )
    console = Console(json_mode=json)
    with dry_run_ledger(dry_run) as ledger:
        result = run_pipeline(settings, options, console)

    def render(out: Any) -> None:
        if result.skipped_reason:
            out.print(f"nothing to do ({result.skipped_reason})")
            return
        out.print(
            f"scored {counted(result.games_scored, 'game')}, embedded "
            f"{counted(result.games_embedded, 'game')} in {result.seconds:.1f}s "
            f"({', '.join(result.stages)})"
        )

    if ledger is not None:
        report_dry_run(console, result.as_dict(), ledger, render)
        return
    console.report(result, render)
