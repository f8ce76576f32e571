"""`bggscore embed` and `bggscore similar`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

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
from bggscore.console import Console, markdown_table


def embed(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option(help="text, game or all (text first, then game).")] = "all",
    start_year: StartYearOption = 2024,
    end_year: EndYearOption = 2029,
    all_years: AllYearsOption = False,
    game_id: GameIdOption = None,
    game_ids_file: GameIdsFileOption = None,
    changed_only: Annotated[
        bool,
        typer.Option(
            "--changed-only",
            help="Embed only what detect-changes finds for the text-embeddings and "
            "game-embeddings stages.",
        ),
    ] = False,
    max_games: MaxGamesOption = DEFAULT_MAX_GAMES,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Games per batch [default: 50000].")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Embed game descriptions (text) and games, incrementally with --changed-only.

    Game embeddings read each game's stored predicted complexity and description
    embedding, so run `score` and the text kind first (`--kind all` does text first).
    """
    from bggscore.embeddings.run import EmbedOptions, parse_kind, run_embed
    from bggscore.locking import pipeline_lock

    settings = state(ctx).settings()
    options = EmbedOptions(
        selection=build_selection(start_year, end_year, all_years, game_id, game_ids_file),
        stages=parse_kind(kind),
        changed_only=changed_only,
        max_games=max_games,
        batch_size=batch_size or settings.scoring.batch_size,
    )
    console = Console(json_mode=json)
    with pipeline_lock(settings.home, "embed"):
        result = run_embed(settings, options, console)
    data = result.as_dict()

    def render(out: Any) -> None:
        if result.skipped_reason:
            out.print(f"0 games embedded ({result.skipped_reason}: {result.selection})")
            return
        done = ", ".join(f"{n:,} {k}" for k, n in result.games_embedded.items())
        out.print(
            f"embedded {done} ({result.selection}) in {result.seconds:.1f}s, job {result.job_id}"
        )

    console.result(data, render)
    embedded = sum(result.games_embedded.values())
    console.github_outputs({"games_embedded": embedded, "job_id": result.job_id or ""})
    console.step_summary(
        "### bggscore embed\n\n"
        + markdown_table(["kind", "games"], [[k, n] for k, n in result.games_embedded.items()])
    )


def similar(
    ctx: typer.Context,
    game_id: Annotated[int | None, typer.Argument(help="The game to find neighbours of.")] = None,
    name: Annotated[str | None, typer.Option(help="Find the game by name instead.")] = None,
    top: Annotated[int, typer.Option(min=1, help="How many neighbours.")] = 10,
    json: JsonOption = False,
) -> None:
    """Games most similar to one game (cosine similarity of the latest game embeddings)."""
    from bggscore.embeddings.similar import similar as find_similar

    data = find_similar(state(ctx).settings(), game_id, name, top)

    def render(out: Any) -> None:
        # game names are data, not markup: "[redacted]" must show, "[/x]" must not crash
        table = Table(title=f"games like {escape(data['name'])} ({data['game_id']})")
        for column in ("game_id", "name", "year", "similarity"):
            table.add_column(column, justify="right" if column != "name" else "left")
        for item in data["neighbours"]:
            year = "" if item["year_published"] is None else str(item["year_published"])
            row = (str(item["game_id"]), escape(item["name"]), year, f"{item['similarity']:.3f}")
            table.add_row(*row)
        out.print(table)

    Console(json_mode=json).result(data, render)
