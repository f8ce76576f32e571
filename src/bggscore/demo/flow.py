"""The demo flow: seed the embedded warehouse and run the pipeline on it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import polars as pl

from bggscore.errors import ConfigError
from bggscore.loading import load_games
from bggscore.scoring.run import ScoreOptions, run_score
from bggscore.warehouse import open_warehouse
from bggscore.warehouse.queries import Selection

TRAINING_SAMPLE = 30_000  # linear baselines gain little from more rows

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
    del catalogue
    trained = _train(settings, console)
    console.info("scoring every game (complexity, then hurdle, rating, users_rated, geek rating)")
    scored = run_score(
        settings, ScoreOptions(selection=Selection(all_years=True)), console
    ).as_dict()
    elapsed = time.monotonic() - started
    return {
        "warehouse": location,
        "games": loaded.games,
        "new": loaded.new,
        "changed": loaded.changed,
        "models": trained,
        "score": scored,
        "seconds": round(elapsed, 2),
        "summary": (
            f"demo warehouse {location}: {loaded.games:,} games loaded, "
            f"{len(trained)} models trained, {scored['games_scored']:,} games scored "
            f"(job {scored['job_id']}) in {elapsed:.1f}s\n"
            "next: `bggscore demo refresh` then `bggscore score --changed-only --all-years`"
        ),
    }


def _train(settings: Settings, console: Console) -> list[str]:
    """Baseline models for every outcome; a sample keeps big benchmark catalogues quick."""
    from bggscore.errors import BggscoreError
    from bggscore.modeling import OUTCOME_TYPES, train_models
    from bggscore.training.train import Splits

    report = train_models(
        settings,
        [t for t in OUTCOME_TYPES if t != "geek_rating"],  # scoring uses the formula
        name=None,
        splits=Splits(),
        estimator="bayesian_ridge",
        max_games=TRAINING_SAMPLE,
        on_step=console.info,
    )
    if report.failed:
        detail = "; ".join(f"{f['outcome']}: {f['error']}" for f in report.failed)
        raise BggscoreError(f"demo training failed: {detail}")
    return [item["model"] for item in report.trained]


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
