"""`bggscore embed` and `bggscore similar`."""

from __future__ import annotations

import functools
from typing import Annotated, Any

import typer

from bggscore.cli.common import (
    JsonOption,
    WaitOption,
    reader_waiting,
    state,
    warn_unknown_variables,
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
    StartYearOption,
    build_selection,
    refuse_ignored_max_games,
)
from bggscore.console import Console
from bggscore.stages import DEFAULT_EMBED_BATCH_SIZE, EMBED_STAGES, GRAPH, MAX_COUNT

KIND_CHOICES = ", ".join(GRAPH.get(s).short for s in EMBED_STAGES)


def embed(
    ctx: typer.Context,
    kind: Annotated[
        str, typer.Option(help=f"{KIND_CHOICES} or all (in graph order: text first).")
    ] = "all",
    start_year: StartYearOption = DEFAULT_START_YEAR,
    end_year: EndYearOption = DEFAULT_END_YEAR,
    all_years: AllYearsOption = False,
    include_null_year: IncludeNullYearOption = False,
    game_id: GameIdOption = None,
    game_ids_file: GameIdsFileOption = None,
    changed_only: Annotated[
        bool,
        typer.Option(
            "--changed-only",
            help=f"Embed only what detect-changes finds for the {' and '.join(EMBED_STAGES)} "
            "stages.",
        ),
    ] = False,
    max_games: MaxGamesOption = DEFAULT_MAX_GAMES,
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1, max=MAX_COUNT, help=f"Games per batch [default: {DEFAULT_EMBED_BATCH_SIZE}]."
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Embed game descriptions (text) and games, incrementally with --changed-only.

    Game embeddings read each game's stored predicted complexity and description
    embedding, so run `score` and the text kind first (`--kind all` does text first).
    """
    from bggscore.tasks.embed import EmbedOptions, parse_kind, run_embed

    refuse_ignored_max_games(ctx, changed_only, "add --changed-only, or drop --max-games")
    settings = state(ctx).settings()
    options = EmbedOptions(
        selection=build_selection(
            start_year, end_year, all_years, game_id, game_ids_file, include_null_year, ctx=ctx
        ),
        stages=parse_kind(kind),
        changed_only=changed_only,
        max_games=max_games,
        batch_size=batch_size or settings.scoring.embed_batch_size,
    )
    console = Console(json_mode=json)
    result = run_embed(settings, options, console)  # under the home's lock

    def render(out: Any) -> None:
        if result.skipped_reason:
            out.print(f"0 games embedded ({result.skipped_reason}: {result.selection})")
            return
        done = ", ".join(f"{n:,} {k}" for k, n in result.games_embedded.items())
        out.print(
            f"embedded {done} ({result.selection}) in {result.seconds:.1f}s, job {result.job_id}"
        )

    console.report(result, render)


def similar(
    ctx: typer.Context,
    game_id: Annotated[int | None, typer.Argument(help="The game to find neighbours of.")] = None,
    name: Annotated[str | None, typer.Option(help="Find the game by name instead.")] = None,
    top: Annotated[int, typer.Option(min=1, help="How many neighbours.")] = 10,
    wait: WaitOption = False,
    json: JsonOption = False,
) -> None:
    """Games most similar to one game (cosine similarity of the latest game embeddings)."""
    from bggscore.embeddings.similar import render_table
    from bggscore.tasks.similar import find_similar

    app_state = state(ctx)
    console = Console(json_mode=json, command="similar")
    data = find_similar(
        app_state.config,
        app_state.overrides,
        app_state.settings,
        game_id,
        name,
        top,
        on_warnings=warn_unknown_variables,
        waiting=reader_waiting(console, wait),
    )
    console.result(data, functools.partial(render_table, data))
