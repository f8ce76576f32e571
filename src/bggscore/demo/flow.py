"""The demo flow: seed the embedded warehouse and run the pipeline on it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import polars as pl

from bggscore.errors import ConfigError
from bggscore.loading import load_games
from bggscore.warehouse import open_warehouse
from bggscore.warehouse.queries import Selection

if TYPE_CHECKING:
    from bggscore.console import Console
    from bggscore.settings import Settings


def _embedded_only(settings: Settings) -> None:
    if settings.warehouse.engine != "duckdb":
        raise ConfigError(
            "the demo writes a synthetic catalogue and runs only on the embedded duckdb warehouse",
            "unset BGGSCORE_WAREHOUSE__ENGINE or pass --engine duckdb",
        )


def run_demo(settings: Settings, *, games: int, seed: int, console: Console) -> dict[str, Any]:
    from bggscore.demo.catalogue import generate_catalogue

    _embedded_only(settings)
    started = time.monotonic()
    console.info(f"generating a synthetic catalogue of {games:,} games (seed {seed})")
    catalogue = generate_catalogue(games, seed)
    with open_warehouse(settings) as wh:
        wh.ensure_schema()
        console.info(f"loading it into {wh.location}")
        loaded = load_games(wh, catalogue)
        location = wh.location
    elapsed = time.monotonic() - started
    return {
        "warehouse": location,
        "games": loaded.games,
        "new": loaded.new,
        "changed": loaded.changed,
        "seconds": round(elapsed, 2),
        "summary": (
            f"demo warehouse {location}: {loaded.games:,} games loaded "
            f"({loaded.new:,} new, {loaded.changed:,} changed) in {elapsed:.1f}s"
        ),
    }


def refresh_demo(
    settings: Settings, *, fraction: float, seed: int, console: Console
) -> dict[str, Any]:
    from bggscore.demo.catalogue import refresh_catalogue

    _embedded_only(settings)
    with open_warehouse(settings) as wh:
        wh.require_tables(["games_features", "game_features_hash"])
        everything = Selection(all_years=True, include_null_year=True)
        current = pl.concat(list(wh.read_features(everything, batch_size=1_000_000)))
        if current.is_empty():
            raise ConfigError("the demo warehouse is empty", "run `bggscore demo` first")
        current = current.drop("load_timestamp")
        console.info(f"refreshing {fraction:.1%} of {len(current):,} games")
        loaded = load_games(wh, refresh_catalogue(current, fraction, seed))
    return {
        "games": loaded.games,
        "new": loaded.new,
        "changed": loaded.changed,
        "unchanged": loaded.unchanged,
        "summary": (
            f"refreshed: {loaded.new:,} new games, {loaded.changed:,} with changed features, "
            f"{loaded.unchanged:,} unchanged features"
        ),
    }
