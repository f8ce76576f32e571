"""`bggscore report`: one self-contained HTML page of a job and the runs around it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bggscore.cli.common import JsonOption, state
from bggscore.console import Console


def report(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Where to write the page (.html); it is replaced whole, or not at all.",
            dir_okay=True,
        ),
    ] = Path("bggscore-report.html"),
    job: Annotated[
        str | None,
        typer.Option(
            "--job",
            metavar="JOB_ID",
            help="The job to describe, and the 30 days of runs up to it [default: the newest "
            "successful score job].",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="DATE",
            help="Runs from this day (YYYY-MM-DD, UTC) or moment (ISO) to now; the job is the "
            "newest score job since then [default: the last 30 days].",
        ),
    ] = None,
    game_id: Annotated[
        list[int] | None,
        typer.Option(
            "--game-id",
            metavar="N",
            help="Also show this game's neighbours, and mark them on the map (repeat).",
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Write one self-contained HTML page about a scoring job and the runs around it.

    Five sections: what the job scored, by stage and reason, and the runs over time; what
    moved since each game's previous score; how good the predictions are against the
    warehouse's actuals (beside a mean predictor; with intervals, their coverage by year);
    how sure the intervals are; and where games sit on the game-embedding map (with each
    --game-id's neighbours).

    The page needs no network (the charts' scripts and data are inside it) and opens from
    a CI artifact, an email or a laptop offline. --json prints the numbers behind every
    picture. Reads only.
    """
    from bggscore.tasks.report import ReportOptions, parse_since, run_report

    options = ReportOptions(
        output=output,
        job_id=job,
        since=parse_since(since) if since is not None else None,
        game_ids=tuple(game_id or ()),
    )
    console = Console(json_mode=json)
    result = run_report(state(ctx).settings(), options)

    def render(out: Any) -> None:
        job_id = result.job_id
        about = f"job {job_id}" if job_id else "no job"
        out.print(f"report of {about}: {result.output} ({result.size_bytes / 1e6:.1f} MB)")

    console.report(result, render)
