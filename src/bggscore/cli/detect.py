"""`bggscore detect-changes`: which games need (re)scoring per stage, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from bggscore.cli.common import JsonOption, WaitOption, reader_waiting, state
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
)
from bggscore.console import Console, print_whole
from bggscore.stages import stage_choices

if TYPE_CHECKING:
    from bggscore.results import DetectResult
from bggscore.wording import counted


def detect_changes(
    ctx: typer.Context,
    start_year: StartYearOption = DEFAULT_START_YEAR,
    end_year: EndYearOption = DEFAULT_END_YEAR,
    all_years: AllYearsOption = False,
    include_null_year: IncludeNullYearOption = False,
    min_users_rated: MinUsersRatedOption = None,
    game_id: GameIdOption = None,
    game_ids_file: GameIdsFileOption = None,
    stage: Annotated[str, typer.Option(help=f"{stage_choices()}, or several with commas.")] = "all",
    max_games: MaxGamesOption = DEFAULT_MAX_GAMES,
    model: Annotated[
        list[str] | None, typer.Option(help="Detect as if scoring with TYPE=REF (repeat).")
    ] = None,
    format_: Annotated[
        str, typer.Option("--format", help="table (default) or ids (one game id per line).")
    ] = "table",
    explain: Annotated[
        int | None, typer.Option(help="Explain what changed for this game, stage by stage.")
    ] = None,
    exit_code: Annotated[
        bool,
        typer.Option(
            "--exit-code",
            help="Exit 1 when nothing changed, so `detect-changes --exit-code && ...` goes on "
            "only when something did.",
        ),
    ] = False,
    wait: WaitOption = False,
    json: JsonOption = False,
) -> None:
    """List the games each stage must (re)score: new, features, model or upstream.

    Reads only the per-stage scoring state, never the landing history; opens the
    warehouse for reading only.
    """
    from bggscore.errors import UsageError
    from bggscore.modelset import parse_model_overrides, warn_left_out
    from bggscore.tasks.detect import detect_for_stages, explain_game, parse_detect_stage

    if format_ not in ("table", "ids"):
        raise UsageError(f"unknown --format {format_!r}; choose table or ids")
    if format_ == "ids" and json:
        raise UsageError(
            "--format ids prints bare ids and --json one document (each stage's game_ids "
            "included): choose one"
        )
    settings = state(ctx).settings()
    console = Console(json_mode=json)
    selection = build_selection(
        start_year,
        end_year,
        all_years,
        game_id,
        game_ids_file,
        include_null_year,
        min_users_rated,
        ctx=ctx,
    )
    stages = parse_detect_stage(stage)
    overrides = parse_model_overrides(model or [])
    waiting = reader_waiting(console, wait)
    if explain is not None:
        if format_ == "ids":
            raise UsageError("--explain shows one game's values; drop --format ids")
        explained = explain_game(settings, explain, stages, overrides, waiting)
        data = explained.as_dict()
        console.report(explained, lambda out: _render_explain(out, data))
        if exit_code and not explained.changed:
            raise typer.Exit(1)  # as for a list: nothing to rescore for this game
        return
    detection = detect_for_stages(settings, stages, selection, max_games, overrides, waiting)
    if format_ == "ids" and not json:
        console.lines(detection.game_ids)
        console.github_outputs(detection.outputs())
        console.step_summary(detection.summary())
    else:
        console.report(detection, lambda out: _render(out, detection))
    warn_left_out(console, detection.left_out, ())
    for line in detection.missing_inputs.warnings():
        console.warn(line)
    if detection.missing_game_ids:
        shown = ", ".join(str(i) for i in detection.missing_game_ids[:10])
        console.warn(
            f"{counted(len(detection.missing_game_ids), 'requested game id')} not in the "
            f"warehouse: {shown}"
        )
    if exit_code and not detection.changed:
        raise typer.Exit(1)


def _render(out: Any, detection: DetectResult) -> None:
    table = Table(title=f"games to score ({detection.selection})")
    for column in ("stage", "games", "new", "features", "model", "upstream"):
        table.add_column(column, justify="right" if column != "stage" else "left")
    for changes in detection.stages:
        counts = changes.by_reason
        games = f"{changes.count:,}" + (" (capped)" if changes.capped else "")
        table.add_row(changes.stage, games, *(f"{counts[r]:,}" for r in counts))
    print_whole(out, table)
    for changes in detection.stages:
        if not changes.count:
            continue
        detail = Table(title=f"{changes.stage}: first {len(changes.sample)} of {changes.count:,}")
        for column in ("game_id", "name", "year", "reasons"):
            detail.add_column(column)
        for row in changes.sample:
            name = escape(row["name"] or "")  # game names are data, not markup
            year = _year(row["year_published"])
            detail.add_row(str(row["game_id"]), name, year, ", ".join(row["reasons"]))
        print_whole(out, detail)
    if not detection.changed:
        out.print("nothing to score")


def _year(value: float | None) -> str:
    """Years are FLOAT64 in the warehouse; people read them as whole numbers."""
    return "" if value is None else f"{value:.0f}"


def _render_explain(out: Any, data: dict[str, Any]) -> None:
    year = _year(data["year_published"]) or "year unknown"
    out.print(f"game {data['game_id']}: {escape(str(data['name']))} ({year})")
    for item in data["stages"]:
        verdict = ", ".join(item["reasons"]) if item["reasons"] else "up to date"
        out.print(f"\n[bold]{item['stage']}[/]: {verdict}")
        for key in [k for k in ("feature_hash", "input_hash", "model", "upstream") if k in item]:
            old, new = item[key]["recorded"], item[key]["current"]
            mark = "" if old == new else "  [yellow]changed[/]"
            out.print(f"  {key:<13} recorded {escape(str(old))}  current {escape(str(new))}{mark}")
        if item.get("missing_inputs"):
            lacking = " and ".join(item["missing_inputs"])
            out.print(f"  missing       {lacking}: not scored until it has one")
        if item["upstream"].get("pending"):
            pending = item["upstream"]["pending"]
            out.print(f"  pending       {' and '.join(pending)} will rescore it first")
        if item["last_scored"]:
            out.print(f"  last scored   {item['last_scored']} (job {item['last_job_id']})")
