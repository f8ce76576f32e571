"""`bggscore compare A B`: two sets of predictions, side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from bggscore.cli.common import JsonOption, WaitOption, reader_waiting, state
from bggscore.console import Console, print_whole
from bggscore.stages import MAX_COUNT

if TYPE_CHECKING:
    from bggscore.results import CompareResult

SIDE_HELP = "A job id of ml_predictions_landing, or a .parquet landing export"


def compare(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(metavar="A", help=f"{SIDE_HELP} (the reference).")],
    b: Annotated[str, typer.Argument(metavar="B", help=f"{SIDE_HELP} (compared with A).")],
    tolerance: Annotated[
        float,
        typer.Option(
            help="A game differs in a column when |B - A| is larger than this (or one side "
            "has no value)."
        ),
    ] = 1e-9,
    top: Annotated[
        int,
        typer.Option(
            min=0, max=MAX_COUNT, help="Show this many of the games that differ most (0: none)."
        ),
    ] = 10,
    exit_code: Annotated[
        bool,
        typer.Option(
            "--exit-code",
            help="Exit 1 when any column differs beyond the tolerance or any game is on one "
            "side only (like `git diff --exit-code`).",
        ),
    ] = False,
    shared_only: Annotated[
        bool,
        typer.Option(
            "--shared-only",
            help="Compare only the games both sides have: games on one side only are "
            "counted but do not make --exit-code exit 1.",
        ),
    ] = False,
    wait: WaitOption = False,
    json: JsonOption = False,
) -> None:
    """Compare two sets of predictions game by game: a shadow run beside production, or a
    model version against the one before.

    Counts the games only in A, only in B and in both (a game on one side only is a
    difference, unless --shared-only); for every prediction column both
    have (predicted_* and the 90% intervals, *_lower_90 and *_upper_90), the largest and
    mean |B - A| and the games differing by more than --tolerance; then the games that
    differ most. Intervals named predicted_<outcome>_<bound>_90 (bggscore) and
    <outcome>_<bound>_90 (production) are the same column; a column with no value on a
    side (a run without intervals) is listed, not compared. Reads only; with two files, no
    warehouse is needed.
    """
    from bggscore.tasks.compare import CompareOptions, run_compare

    options = CompareOptions(a=a, b=b, tolerance=tolerance, top=top, shared_only=shared_only)
    console = Console(json_mode=json)
    result = run_compare(state(ctx).settings, options, reader_waiting(console, wait))
    console.report(result, lambda out: _render(out, result))
    if exit_code and result.differs:
        raise typer.Exit(1)


def _side(side: dict[str, Any]) -> str:
    what = f"job {side['job_id']}" if side["kind"] == "job" else f"file {side['path']}"
    return escape(f"{what} ({side['games']:,} games)")


def _number(value: float | None) -> str:
    return "null" if value is None else f"{value:.6g}"


def _render(out: Any, result: CompareResult) -> None:
    data = result.as_dict()
    games = data["games"]
    out.print(f"A: {_side(data['a'])}\nB: {_side(data['b'])}")
    out.print(
        f"games: {games['in_both']:,} in both, {games['only_in_a']:,} only in A, "
        f"{games['only_in_b']:,} only in B"
    )
    columns = Table(title=f"predictions (tolerance {result.tolerance:g})")
    for name in ("column", "max |diff|", "mean |diff|", "differing", "one side null"):
        columns.add_column(name, justify="left" if name == "column" else "right")
    for item in result.columns:
        columns.add_row(
            item.column,
            _number(item.max_abs_diff),
            _number(item.mean_abs_diff),
            f"{item.differing:,}",
            f"{item.one_side_null:,}",
        )
    print_whole(out, columns)
    if result.top:
        n = len(result.top)
        which = "the game that differs" if n == 1 else f"the {n} games that differ"
        worst = Table(title=f"{which} most (diff = B - A)")
        for name in ("game_id", "name", "column", "a", "b", "diff"):
            left = name in ("name", "column")
            worst.add_column(name, justify="left" if left else "right")
        for row in result.top:
            worst.add_row(
                str(row["game_id"]),
                escape(row["name"] or ""),  # game names are data, not markup
                row["column"],
                *(_number(row[key]) for key in ("a", "b", "diff")),
            )
        print_whole(out, worst)
    for side in ("a", "b"):
        only = data[f"columns_only_in_{side}"]
        if only:
            out.print(f"only in {side.upper()}, not compared: {', '.join(only)}")
    if result.differing_columns:
        out.print(f"differs beyond the tolerance: {', '.join(result.differing_columns)}")
    if result.games_differ:
        out.print(f"differs: {_one_side(games)}")
    if result.differs:
        return
    if not result.columns:
        out.print("no prediction column in both: nothing compared")
    elif result.shared_only and (games["only_in_a"] or games["only_in_b"]):
        out.print(
            f"no differences beyond the tolerance in the {games['in_both']:,} games in both "
            f"(--shared-only: {_one_side(games)} not compared)"
        )
    else:
        out.print("no differences beyond the tolerance")


def _one_side(games: dict[str, Any]) -> str:
    """'990 games only in A', '3 games only in B' or both, joined by 'and'."""
    parts = [
        f"{games[f'only_in_{side}']:,} {'game' if games[f'only_in_{side}'] == 1 else 'games'} "
        f"only in {side.upper()}"
        for side in ("a", "b")
        if games[f"only_in_{side}"]
    ]
    return " and ".join(parts)
