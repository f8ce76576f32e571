"""`bggscore report`: one self-contained HTML page of a job and the runs around it.

Reads only. The job is the one given (``--job``), else the newest successful `score` job
(of the window ``--since`` opens, else of all time); the window is ``--since`` to now, else
the 30 days up to the job (``--job``) or up to now. Sections 3 and 4 describe each game's
newest prediction at the job (the landing row scored at or before it), section 5 the
current game embeddings. The page is written whole to a temporary file, then moved into
place: an error leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bggscore.errors import BggscoreError, InputError, UsageError
from bggscore.report import numbers
from bggscore.results import ReportResult
from bggscore.stages import GRAPH, MAIN, RUNS_TABLE, STATE_TABLE
from bggscore.warehouse import open_warehouse
from bggscore.warehouse.queries import JOB_MODEL_COLUMNS, LINEAGE

if TYPE_CHECKING:
    from bggscore.settings import Settings
    from bggscore.warehouse.base import Warehouse

WINDOW = timedelta(days=30)
NEIGHBOURS = 10  # per --game-id
COMMANDS = ["score", "embed"]  # the runs a report shows (not the demo's catalogue mark)
SUFFIXES = (".html", ".htm")
DEFAULT_OUTPUT = Path("bggscore-report.html")


@dataclass(frozen=True)
class ReportOptions:
    output: Path = DEFAULT_OUTPUT
    job_id: str | None = None
    since: datetime | None = None
    game_ids: tuple[int, ...] = ()
    neighbours: int = NEIGHBOURS


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: a date (midnight UTC) or an ISO date and time (UTC unless it says)."""
    now = now or datetime.now(timezone.utc)
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            found = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        else:
            found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {text!r} is not a date: give YYYY-MM-DD or an ISO date and time "
            "(e.g. 2026-11-01 or 2026-11-01T06:00:00Z)"
        ) from None
    if found.tzinfo is None:
        found = found.replace(tzinfo=timezone.utc)
    if found > now:
        raise UsageError(f"--since {text} is in the future: give a day up to today")
    return found


def check_output(path: Path) -> None:
    """Before anything is read: a page where one can be written."""
    if path.is_dir():
        raise UsageError(f"--output {path} is a folder: give a file name ending in .html")
    if path.suffix.lower() not in SUFFIXES:
        raise UsageError(f"--output {path} must end in .html")
    if not path.parent.is_dir():
        raise UsageError(f"--output folder {path.parent} does not exist")


def check_options(options: ReportOptions) -> None:
    if options.job_id is not None and options.since is not None:
        raise UsageError("give --job or --since, not both (--job shows the 30 days up to that job)")
    check_output(options.output)


def _tables() -> list[str]:
    found = [RUNS_TABLE, STATE_TABLE, "games_features"]
    for stage in GRAPH.names:
        found += [t for t in GRAPH.get(stage).writes if t in LINEAGE and t not in found]
    return found


def _pick_job(wh: Warehouse, options: ReportOptions, now: datetime) -> dict[str, Any] | None:
    if options.job_id is not None:
        job = wh.report_job(options.job_id)
        if job is None:
            raise InputError(
                f"job {options.job_id!r} is not in {wh.tables[RUNS_TABLE]}",
                "`bggscore warehouse status` lists the last runs and their job ids",
            )
        return job
    since = options.since or datetime(1970, 1, 1, tzinfo=timezone.utc)
    job_id = wh.latest_job("score", since)
    return wh.report_job(job_id) if job_id else None


def _when(job: dict[str, Any] | None, fallback: datetime) -> datetime:
    """The moment a job's outputs were complete (its rows carry its start time)."""
    if job is None:
        return fallback
    return job.get("finished_at") or job.get("started_at") or fallback


def _neighbours(settings: Settings, options: ReportOptions) -> list[dict[str, Any]]:
    """Each --game-id's nearest games by game embedding (as `bggscore similar` finds them)."""
    if not options.game_ids:
        return []
    from bggscore.embeddings.similar import NotEmbedded, answer, explain_miss, load_index

    index, key = load_index(settings)
    found = []
    for game_id in dict.fromkeys(options.game_ids):
        try:
            found.append(answer(index, key, game_id, None, options.neighbours))
        except NotEmbedded as miss:
            raise explain_miss(settings, miss) from None
    return found


def gather(
    settings: Settings, options: ReportOptions, now: datetime | None = None
) -> dict[str, Any]:
    """Every number the page shows, read from the warehouse (the ``--json`` document's body)."""
    now = now or datetime.now(timezone.utc)
    near = _neighbours(settings, options)  # its own warehouse handle, before ours
    with open_warehouse(settings, read_only=True) as wh:  # reads only: a read-only home too
        wh.require_tables(_tables())
        job = _pick_job(wh, options, now)
        if job is None and options.since is None:
            raise BggscoreError(
                f"nothing to report: {wh.location} has no finished `score` job",
                "run `bggscore score` (or `bggscore demo`) first",
            )
        until = _when(job, now) if options.job_id else now
        since = options.since or until - WINDOW
        lineage = {}
        for stage in GRAPH.names:
            for table in GRAPH.get(stage).writes:
                if table in LINEAGE:
                    lineage[stage] = wh.lineage(table, since, until)
        reasons = numbers.stage_reasons(lineage)
        models: dict[str, str] = {}
        moves = None
        if job is not None:
            for stage in numbers.job_stages(job):
                for table in GRAPH.get(stage).writes:
                    if table in JOB_MODEL_COLUMNS:
                        models.update(wh.job_models(table, job["job_id"]))
            if MAIN in numbers.job_stages(job):
                moves = wh.moves(job["job_id"])
        runs = wh.report_runs(since, until, COMMANDS)
        predictions = wh.predictions_as_of(_when(job, now))
        points = wh.map_points()
        location = wh.location
    keep = [g["game_id"] for g in near] + [n["game_id"] for g in near for n in g["neighbours"]]
    return {
        "warehouse": location,
        "generated_at": now.isoformat(timespec="seconds"),
        "window": {"since": since.isoformat(), "until": until.isoformat()},
        "run": numbers.run_section(job, reasons, models),
        "runs": numbers.runs_section(runs, reasons),
        "moved": numbers.moved_section(moves),
        "good": numbers.good_section(predictions),
        "sure": numbers.sure_section(predictions),
        "map": numbers.map_sample(points, predictions, keep),
        "neighbours": near,
    }


def write_atomic(path: Path, text: str) -> int:
    """Write ``text`` to a temporary file beside ``path``, then move it into place."""
    data = text.encode("utf-8")
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".partial"
    )
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return len(data)


def run_report(settings: Settings, options: ReportOptions) -> ReportResult:
    check_options(options)  # before anything is read
    doc = gather(settings, options)
    from bggscore.report import charts, page  # altair and vl-convert: this command only

    specs = charts.specs(doc)
    text = page.html(doc, specs, page.bundle(page.vega_lite_version()))
    size = write_atomic(options.output, text)
    return ReportResult(str(options.output), size, list(specs), doc)
