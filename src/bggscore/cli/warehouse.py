"""`bggscore warehouse`: create tables, load a features export, show status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bggscore.cli.common import JsonOption, state
from bggscore.console import Console, print_whole

app = typer.Typer(
    help="Create the warehouse tables, load features, show status.", no_args_is_help=True
)


@app.command()
def init(ctx: typer.Context, json: JsonOption = False) -> None:
    """Create missing tables (and columns); safe to repeat."""
    from bggscore.warehouse import open_warehouse

    console = Console(json_mode=json, command="warehouse init")
    with open_warehouse(state(ctx).settings(), create=True) as wh:
        changed = wh.ensure_schema()
        location = wh.location
    console.result(
        {"location": location, "changed": changed},
        lambda out: out.print(
            "\n".join(changed) + f"\nwarehouse ready: {location}"
            if changed
            else f"warehouse already up to date: {location}"
        ),
    )


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
    from bggscore.tasks.load import load_export

    console = Console(json_mode=json, command="warehouse load")
    result = load_export(state(ctx).settings(), path, embeddings)
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
        "games": tables["games_features"]["rows"] or 0,
        "hashes": tables["game_features_hash"]["rows"] or 0,
        "tables": tables,
        "last_runs": runs,
    }


@app.command()
def status(ctx: typer.Context, json: JsonOption = False) -> None:
    """Row counts of every table and the last runs."""
    from bggscore.warehouse import open_warehouse

    console = Console(json_mode=json, command="warehouse status")
    with open_warehouse(state(ctx).settings()) as wh:
        data = collect_status(wh)

    def render(out: Any) -> None:
        table = Table(title=f"{data['engine']} warehouse: {data['location']}")
        table.add_column("table")
        table.add_column("rows", justify="right")
        for info in data["tables"].values():
            rows = "missing" if info["rows"] is None else f"{info['rows']:,}"
            table.add_row(info["table"], rows)
        print_whole(out, table)
        if data["last_runs"]:
            runs = Table(title="last runs")
            for column in ("job_id", "command", "stage", "status", "games", "finished_at"):
                runs.add_column(column)
            for run in data["last_runs"]:
                runs.add_row(
                    *(
                        str(run[c])
                        for c in ("job_id", "command", "stage", "status", "games", "finished_at")
                    )
                )
            print_whole(out, runs)
        if any(info["rows"] is None for info in data["tables"].values()):
            out.print("some tables are missing: run `bggscore warehouse init`")

    console.result(data, render)
