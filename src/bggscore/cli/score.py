"""`bggscore score`: run the scoring chain and append to the landing tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bggscore.cli.common import (
    DryRunOption,
    JsonOption,
    WorkersOption,
    check_workers,
    dry_run_ledger,
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
from bggscore.console import Console, print_whole
from bggscore.stages import (
    DEFAULT_BATCH_SIZE,
    GRAPH,
    MAIN,
    MAX_COUNT,
    MAX_INTERVAL_DRAWS,
    PANDAS_BATCH_SIZE,
    WORKER_BATCH_SIZE,
    stage_choices,
)
from bggscore.wording import counted


def score(
    ctx: typer.Context,
    start_year: StartYearOption = DEFAULT_START_YEAR,
    end_year: EndYearOption = DEFAULT_END_YEAR,
    all_years: AllYearsOption = False,
    include_null_year: IncludeNullYearOption = False,
    min_users_rated: MinUsersRatedOption = None,
    game_id: GameIdOption = None,
    game_ids_file: GameIdsFileOption = None,
    stage: Annotated[
        str,
        typer.Option(
            help=f"{stage_choices('score')}, or several with commas: {MAIN} is "
            f"{GRAPH.get(MAIN).help}."
        ),
    ] = "all",
    model: Annotated[
        list[str] | None,
        typer.Option(help="Override a model: TYPE=REF, e.g. rating=rating@challenger (repeat)."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_COUNT,
            help=f"Games per batch [default: {DEFAULT_BATCH_SIZE}, one DuckDB row group; "
            f"{PANDAS_BATCH_SIZE:,} for models that are not bggscore's own (pandas "
            f"pipelines), {WORKER_BATCH_SIZE:,} per worker with --workers].",
        ),
    ] = None,
    intervals: Annotated[
        int,
        typer.Option(
            min=0,
            max=MAX_INTERVAL_DRAWS,
            help=f"Posterior draws for 90% intervals (0 = off; e.g. 500; at most "
            f"{MAX_INTERVAL_DRAWS:,}).",
        ),
    ] = 0,
    prior_rating: Annotated[
        float | None, typer.Option(help="Geek rating prior mean [default: 5.5].")
    ] = None,
    prior_weight: Annotated[
        float | None, typer.Option(help="Geek rating prior votes [default: 2000].")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Also write the landing rows to this .parquet file (after the commit); "
            "rows come batch by batch, each batch sorted by game_id."
        ),
    ] = None,
    no_upload: Annotated[
        bool,
        typer.Option("--no-upload", help="Compute and write only --output; no warehouse writes."),
    ] = False,
    changed_only: Annotated[
        bool,
        typer.Option(
            "--changed-only",
            help="Score only what detect-changes finds (new, features, model, "
            "upstream); nothing to do exits 0 with skipped_reason no_changes.",
        ),
    ] = False,
    max_games: MaxGamesOption = DEFAULT_MAX_GAMES,
    workers: WorkersOption = None,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
) -> None:
    """Score games: complexity first, then hurdle, rating, users_rated and geek rating.

    Each batch's landing rows and scoring state commit together; a rerun after a
    crash neither duplicates nor loses rows.
    """
    from bggscore.cli.common import flag_overrides
    from bggscore.errors import UsageError
    from bggscore.modelset import parse_model_overrides
    from bggscore.tasks.score import ScoreOptions, parse_stage, run_score

    if no_upload and output is None:
        raise UsageError("--no-upload needs --output PATH.parquet (otherwise nothing is kept)")
    if dry_run and output is not None:
        raise UsageError("--dry-run writes nothing, --output too: drop one of them")
    refuse_ignored_max_games(ctx, changed_only, "add --changed-only, or drop --max-games")
    app_state = state(ctx)
    app_state.overrides.update(
        flag_overrides(
            **{
                "scoring.batch_size": batch_size,
                "scoring.prior_rating": prior_rating,
                "scoring.prior_weight": prior_weight,
                "scoring.workers": check_workers(workers),
            }
        )
    )
    settings = app_state.settings()
    options = ScoreOptions(
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
        stages=parse_stage(stage),
        model_overrides=parse_model_overrides(model or []),
        batch_size=settings.scoring.batch_size,
        intervals=intervals,
        output=output,
        upload=not no_upload,
        changed_only=changed_only,
        max_games=max_games,
        workers=settings.scoring.workers,
    )
    console = Console(json_mode=json)
    with dry_run_ledger(dry_run) as ledger:
        result = run_score(settings, options, console)  # locks the home unless --no-upload
    data = result.as_dict()
    if ledger is not None:
        report_dry_run(console, data, ledger, lambda out: _render(out, data))
        return
    console.report(result, lambda out: _render(out, data))


def _render(out: Any, data: dict[str, Any]) -> None:
    if data["skipped_reason"]:
        out.print(f"0 games scored ({data['skipped_reason']}: {data['selection']})")
        return
    rate = data["games_per_second"]
    out.print(
        f"scored {counted(data['games_scored'], 'game')} ({data['selection']}) "
        f"in {data['seconds']:.1f}s"
        + (f" ({rate:,.0f} games/s)" if rate else "")
        + f", job {data['job_id']}"
    )
    table = Table(show_header=True)
    table.add_column("model type")
    table.add_column("model")
    for model_type, label in data["models"].items():
        table.add_row(model_type, label)
    print_whole(out, table)
    if data["output_location"]:
        out.print(f"landing rows also written to {data['output_location']}")
