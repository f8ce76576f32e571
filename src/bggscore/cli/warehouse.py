"""`bggscore warehouse`: create tables, load a features export, show status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from bggscore.cli.common import JsonOption, WaitOption, reader_waiting, state
from bggscore.console import Console, print_whole

app = typer.Typer(
    help="Create the warehouse tables, migrate them, load features, show status.",
    no_args_is_help=True,
)


@app.command()
def init(ctx: typer.Context, json: JsonOption = False) -> None:
    """Create missing tables (and columns); safe to repeat."""
    from bggscore.warehouse import open_warehouse
    from bggscore.warehouse.schemas import WAREHOUSE_SCHEMA_VERSION

    console = Console(json_mode=json, command="warehouse init")
    with open_warehouse(state(ctx).settings(), create=True) as wh:
        changed = wh.ensure_schema()
        location = wh.location
        version = wh.schema_version()
    if version is not None and version < WAREHOUSE_SCHEMA_VERSION:
        console.warn(
            f"the warehouse's tables are at schema version {version}; run "
            f"`bggscore warehouse migrate` to carry them to version {WAREHOUSE_SCHEMA_VERSION}"
        )
    console.result(
        {"location": location, "changed": changed},
        lambda out: out.print(
            "\n".join(changed) + f"\nwarehouse ready: {location}"
            if changed
            else f"warehouse already up to date: {location}"
        ),
    )


@app.command()
def migrate(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be done; change nothing.")
    ] = False,
    drop_old: Annotated[
        bool,
        typer.Option(
            "--drop-old",
            help="Delete the table an earlier BigQuery migration kept (`..._v1`).",
        ),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Carry the warehouse's tables to this version's layout; safe to repeat.

    Version 2 partitions the state table by stage. DuckDB changes it in place, in one
    transaction. BigQuery cannot re-partition a table: its rows are copied into a new
    table laid out by stage, which takes the old one's place; the old table is kept
    beside it (`..._v1`) until `--drop-old`. A run that stopped half-way is finished by
    the next.
    """
    from bggscore.warehouse import open_warehouse
    from bggscore.warehouse.migrate import migrate as run_migration

    console = Console(json_mode=json, command="warehouse migrate")
    with open_warehouse(state(ctx).settings()) as wh:
        result = run_migration(wh, dry_run=dry_run, drop_old=drop_old)

    def render(out: Any) -> None:
        found = "no version" if result.found is None else f"version {result.found}"
        if not result.steps:
            out.print(f"warehouse already at schema version {result.target}: {result.location}")
        else:
            verb = "would" if result.dry_run else "did"
            out.print(
                f"warehouse {result.location}: {found} -> version {result.target} "
                f"({verb}, in order):"
            )
            for step in result.steps:
                out.print(f"  - {step.action}" + (f"\n      {step.sql}" if step.sql else ""))
        if result.kept:
            out.print(f"the old table is kept as {result.kept}: delete it with `--drop-old`")

    console.result(result.as_dict(), render)


@app.command()
def load(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="A games_features parquet export (optional).")
    ] = None,
    embeddings: Annotated[
        Path | None,
        typer.Option(
            help="A parquet file of description embeddings (game_id, embedding): upserted "
            "into the table features.embeddings_table names (embedded warehouse only).",
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Upsert a games_features export (updating feature hashes) and/or embeddings.

    Extra columns are ignored; missing required columns are an error. A game's
    last_updated moves only when it is new or its feature hash changed. Embeddings are
    upserted by game_id (one width, finite numbers, the width of the vectors the table
    keeps for the games not in the file); an unchanged vector is not rewritten, and
    vectors for games not in games_features are loaded with a warning. Everything is
    checked first and written in one transaction.
    """
    from bggscore.tasks.load import load_export, load_steps

    console = Console(json_mode=json, command="warehouse load")
    settings = state(ctx).settings()
    with console.steps(load_steps(path, embeddings), lines=False) as step:
        result = load_export(settings, path, embeddings, step)
    unknown = result.embeddings.not_in_games_features if result.embeddings else 0
    if unknown:
        assert result.embeddings is not None
        console.warn(
            f"{unknown:,} of the {result.embeddings.rows:,} embeddings in {embeddings} are for "
            "games not in games_features (loaded anyway): is it the right file? Load those "
            "games' features (`bggscore warehouse load GAMES.parquet`) to score them"
        )

    def render(out: Any) -> None:
        games = result.games
        if result.path is not None:
            out.print(
                f"loaded {games.games:,} games from {path}: {games.new:,} new, "
                f"{games.changed:,} changed, {games.unchanged:,} unchanged"
            )
        if result.embeddings is not None:
            vectors = result.embeddings
            out.print(
                f"loaded {vectors.rows:,} embeddings ({vectors.dim} dimensions) from "
                f"{embeddings} into {vectors.table}: {vectors.inserted:,} new, "
                f"{vectors.updated:,} changed, {vectors.unchanged:,} unchanged"
            )

    console.result(result.as_dict(), render)


def collect_status(wh: Any) -> dict[str, Any]:
    from bggscore.warehouse.schemas import LEASES, TABLES

    tables = {
        logical: {"table": str(wh.tables[logical]), "rows": wh.count_rows(logical)}
        for logical in TABLES
        if wh.uses_lease or logical != LEASES.logical  # an embedded warehouse has none
    }
    runs = wh.last_runs(10).to_dicts()
    return {
        "engine": wh.engine,
        "location": wh.location,
        "busy": False,
        "writer": None,
        "games": tables["games_features"]["rows"] or 0,
        "hashes": tables["game_features_hash"]["rows"] or 0,
        "tables": tables,
        "last_runs": runs,
    }


def busy_status(settings: Any, busy: Any) -> dict[str, Any]:
    """While another process writes the embedded warehouse (DuckDB lets no one read it
    then): who it is; the tables wait for it to end."""
    from bggscore.runstatus import describe_writer

    return {
        "engine": "duckdb",
        "location": str(settings.warehouse_path),
        "busy": True,
        "writer": describe_writer(settings.home, busy.pid),
        "games": None,
        "hashes": None,
        "tables": None,
        "last_runs": [],
    }


@app.command()
def status(ctx: typer.Context, json: JsonOption = False) -> None:
    """Row counts of every table and the last runs, or a running job's progress.

    Opens the warehouse for reading only, so it works on a read-only home. While another
    process writes the embedded warehouse (nothing else can read it then), it says who, and
    the progress a `score`, `embed` or `run` keeps in <home>/run-status.json (replaced after
    every committed batch, marked finished at the end; the `run` key of --json).
    """
    from bggscore.errors import WarehouseBusy
    from bggscore.runstatus import read_status
    from bggscore.warehouse import open_warehouse

    settings = state(ctx).settings()
    console = Console(json_mode=json, command="warehouse status")
    try:
        with open_warehouse(settings, read_only=True) as wh:
            data = collect_status(wh)
    except WarehouseBusy as busy:
        data = busy_status(settings, busy)
    data["run"] = read_status(settings.home) if data["engine"] == "duckdb" else None
    console.result(data, lambda out: _render_status(out, data))


def _render_status(out: Any, data: dict[str, Any]) -> None:
    from bggscore.runstatus import progress_line

    title = f"{data['engine']} warehouse: {escape(data['location'])}"
    run = data["run"]
    if data["busy"]:
        out.print(f"{title}\nbeing written by {escape(data['writer'])}: row counts when it ends")
    if run is not None and (data["busy"] or run["status"] == "running"):
        out.print(escape(progress_line(run)))
    if data["busy"]:
        return
    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for info in data["tables"].values():
        rows = "missing" if info["rows"] is None else f"{info['rows']:,}"
        table.add_row(info["table"], rows)
    print_whole(out, table)
    if data["last_runs"]:
        runs = Table(title="last runs")
        for column in RUN_COLUMNS:
            runs.add_column(column)
        for row in data["last_runs"]:
            runs.add_row(*(str(row[c]) for c in RUN_COLUMNS))
        print_whole(out, runs)
    if any(info["rows"] is None for info in data["tables"].values()):
        out.print("some tables are missing: run `bggscore warehouse init`")


@app.command()
def check(ctx: typer.Context, wait: WaitOption = False, json: JsonOption = False) -> None:
    """Check the warehouse file and the registry: one line per problem, exit 1 if any.

    Reads only. The warehouse: every table read whole (DuckDB verifies each block's
    checksum), bggscore's tables present with the columns and types it writes, each stage's
    state pointing at output rows that exist, one row per game where there must be. The
    registry: as `models verify` (each artifact's sha256, aliases that point at registered
    versions, version folders with their registration.json). On BigQuery the tables and
    their consistency are checked (a scan of the landing table's job_id and game_id).
    """
    from bggscore.errors import WarehouseError
    from bggscore.tasks.check import run_check

    console = Console(json_mode=json, command="warehouse check")
    result = run_check(state(ctx).settings(), reader_waiting(console, wait))

    def render(out: Any) -> None:
        for finding in result.findings:
            out.print(escape(finding.line()), soft_wrap=True)
        if not result.findings:
            looked = ", ".join(f"{n:,} {what}" for what, n in result.checked.items())
            out.print(f"ok: {escape(result.location)} and {escape(result.registry)} ({looked})")

    console.result(result.as_dict(), render)
    if result.findings:
        raise WarehouseError(
            f"{len(result.findings)} problem(s) found in {result.location} or {result.registry}",
            "each line above says what is wrong and what to do",
        )


RUN_COLUMNS = ("job_id", "command", "stage", "status", "games", "finished_at")
