"""The demo flow: seed the embedded warehouse and run the pipeline on it."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import polars as pl

from bggscore.errors import ConfigError, InputError, UsageError
from bggscore.locking import pipeline_lock
from bggscore.stages import MAX_COUNT, MODEL_TYPES, RUNS_TABLE
from bggscore.tasks.embed import EmbedOptions, run_embed
from bggscore.tasks.score import ScoreOptions, run_score
from bggscore.warehouse import open_warehouse
from bggscore.warehouse.load import load_games
from bggscore.warehouse.queries import DEMO_MARKER, MOST_RATED_GAME, Selection
from bggscore.warehouse.schemas import TABLES
from bggscore.wording import counted

# every model but a direct geek rating: the demo uses the bayesian formula
DEMO_MODELS = tuple(t for t in MODEL_TYPES if t != "geek_rating")
TRAINING_SAMPLE = 30_000  # linear baselines gain little from more rows
# The demo's mark on a warehouse whose catalogue it created: one row of the runs table.
# `demo` and `demo refresh` write only into a new home or one with this mark (or --force).
MARKER = {"job_id": "demo-catalogue", "command": "demo"}
MARKER_STAGE = "catalogue"
# the report tour: the full score's posterior draws (a few suffice for 90% intervals to
# show), and the share of games a simulated day changes before the incremental run
DEMO_INTERVALS = 100
DEMO_REFRESH = 0.02
REPORT_NAME = "report.html"  # in the home folder

if TYPE_CHECKING:
    from bggscore.console import Console
    from bggscore.settings import Settings
    from bggscore.warehouse.base import Warehouse


def _embedded_only(settings: Settings) -> None:
    if settings.warehouse.engine != "duckdb":
        raise ConfigError(
            "the demo writes a synthetic catalogue and runs only on the embedded duckdb warehouse",
            "unset BGGSCORE_WAREHOUSE__ENGINE or pass --engine duckdb",
        )


def is_demo_warehouse(wh: Warehouse) -> bool:
    """Whether `bggscore demo` created this warehouse's catalogue (its mark is there)."""
    if wh.missing_tables([RUNS_TABLE]):
        return False
    return bool(wh.query(DEMO_MARKER, MARKER)["n"][0])


def _mark(wh: Warehouse, games: int, seed: int) -> None:
    now = datetime.now(timezone.utc)
    message = f"synthetic catalogue of {games:,} games (seed {seed})"
    mark = wh.run_row(
        MARKER["job_id"], MARKER["command"], MARKER_STAGE, "success", games, now, message
    )
    wh.write([mark])


def _warehouse_rows(wh: Warehouse) -> str | None:
    """What a warehouse holds, for a refusal: its games, else its rows; None when empty."""
    games = wh.count_rows("games_features") or 0
    if games:
        return counted(games, "game")
    rows = sum(wh.count_rows(logical) or 0 for logical in TABLES)
    return counted(rows, "row") if rows else None


def _foreign_contents(settings: Settings) -> dict[str, str]:
    """What the home holds that the demo did not make, by place (warehouse, registry):
    nothing for a new (empty) home or one whose warehouse has the demo's mark."""
    from bggscore.modelset import open_settings_registry

    held = {}
    if settings.warehouse_path.exists():
        with open_warehouse(settings) as wh:
            if is_demo_warehouse(wh):
                return {}
            rows = _warehouse_rows(wh)
            if rows:
                held["warehouse"] = f"the warehouse {wh.location} holds {rows}"
    registry = open_settings_registry(settings)
    models = len(registry.list())
    if models:
        held["registry"] = f"the registry {registry.uri} holds {counted(models, 'model')}"
    return held


def run_demo(
    settings: Settings,
    *,
    games: int,
    seed: int,
    console: Console,
    force: bool = False,
    report: bool = True,
) -> dict[str, Any]:
    """Seed the embedded warehouse, train, score and embed everything, under the lock;
    with ``report``, the full score has intervals, then a simulated day of changes is
    scored and embedded incrementally and a report of the runs is written.

    Only into a new home or one the demo made, unless ``force``: nothing is written
    into a home holding data or models the demo did not make."""
    _embedded_only(settings)
    with pipeline_lock(settings.home, "demo"):
        held = _foreign_contents(settings)
        said = " and ".join(held.values())
        if held and not force:
            raise UsageError(
                f"{said} that `bggscore demo` did not make; the demo would add synthetic "
                "games and models beside them",
                "pass --force to do so anyway, or point --home at a new folder",
            )
        if held:
            console.warn(f"--force: adding the demo to a home where {said}")
        # the catalogue is the demo's when the warehouse held nothing else
        mark = "warehouse" not in held
        result = _run_demo(
            settings,
            games=games,
            seed=seed,
            console=console,
            mark=mark,
            intervals=DEMO_INTERVALS if report else 0,
        )
        if report and mark:
            result.update(_a_day_later(settings, seed, console, result))
        elif report:
            console.warn(
                "--force: no day of changes and no report: the warehouse holds games the "
                "demo did not make, and `demo refresh` would change them"
            )
        return result


def _run_demo(
    settings: Settings, *, games: int, seed: int, console: Console, mark: bool, intervals: int
) -> dict[str, Any]:
    from bggscore.demo.catalogue import generate_catalogue

    started = time.monotonic()
    console.info(f"generating a synthetic catalogue of {games:,} games (seed {seed})")
    catalogue = generate_catalogue(games, seed)
    with open_warehouse(settings, create=True) as wh:
        wh.ensure_schema()
        if mark and not is_demo_warehouse(wh):
            _mark(wh, games, seed)  # before the games: a crash still leaves the demo's home
        console.info(f"loading it into {wh.location}")
        loaded = load_games(wh, catalogue)
        location = wh.location
    del catalogue
    trained = _train(settings, console)
    everything = Selection(all_years=True)
    console.info("scoring every game (complexity, then hurdle, rating, users_rated, geek rating)")
    options = ScoreOptions(selection=everything, intervals=intervals)
    scored = run_score(settings, options, console, lock=False).as_dict()
    console.info("embedding descriptions, then games")
    embedded = run_embed(
        settings, EmbedOptions(selection=everything), console, lock=False
    ).as_dict()
    neighbours = _neighbours_of_a_known_game(settings)
    elapsed = time.monotonic() - started
    return {
        "warehouse": location,
        "games": loaded.games,
        "new": loaded.new,
        "changed": loaded.changed,
        "models": trained,
        "score": scored,
        "embed": embedded,
        "similar": neighbours,
        "seconds": round(elapsed, 2),
        "summary": (
            f"demo warehouse {location}: {loaded.games:,} games loaded, "
            f"{len(trained)} models trained, {scored['games_scored']:,} games scored, "
            f"{sum(embedded['games_embedded'].values()):,} embeddings written "
            f"in {elapsed:.1f}s\n\n"
            + _describe_neighbours(neighbours)
            + "\n\nnext: `bggscore demo refresh`, then `bggscore detect-changes --all-years` "
            "and `bggscore score --changed-only --all-years`"
        ),
    }


def _a_day_later(
    settings: Settings, seed: int, console: Console, first: dict[str, Any]
) -> dict[str, Any]:
    """A simulated day: `demo refresh`, an incremental score (with intervals) and embed,
    then the report of the runs (with the neighbours of the game the demo showed)."""
    from bggscore.tasks.report import ReportOptions, run_report

    started = time.monotonic()
    console.info(f"a day later: {DEMO_REFRESH:.0%} of the games change")
    refreshed = _refresh_demo(
        settings, fraction=DEMO_REFRESH, seed=seed + 1, console=console, force=True
    )
    changed = Selection(all_years=True)
    console.info("scoring and embedding only what changed")
    score = ScoreOptions(
        selection=changed, changed_only=True, intervals=DEMO_INTERVALS, max_games=MAX_COUNT
    )
    scored = run_score(settings, score, console, lock=False).as_dict()
    embed = EmbedOptions(selection=changed, changed_only=True, max_games=MAX_COUNT)
    embedded = run_embed(settings, embed, console, lock=False).as_dict()
    path = settings.home / REPORT_NAME
    console.info(f"writing the report of these runs to {path}")
    game_ids = (first["similar"]["game_id"],)
    report = run_report(settings, ReportOptions(output=path, game_ids=game_ids))
    elapsed = time.monotonic() - started
    return {
        "refresh": {key: refreshed[key] for key in ("games", "new", "changed", "unchanged")},
        "incremental": {"score": scored, "embed": embedded},
        "report": {"path": str(path), "size_bytes": report.size_bytes, "charts": report.charts},
        "seconds": round(first["seconds"] + elapsed, 2),
        "summary": first["summary"].split("\n\nnext:")[0]
        + (
            f"\n\na day later: {refreshed['new']:,} new games and {refreshed['changed']:,} "
            f"with changed features; {scored['games_scored']:,} games scored again and "
            f"{sum(embedded['games_embedded'].values()):,} embeddings, only what changed\n\n"
            f"report: {path}\n  open it in a browser (it needs no network)\n\n"
            "next: `bggscore report --help`, `bggscore demo refresh`, then "
            "`bggscore run --all-years`"
        ),
    }


def _neighbours_of_a_known_game(settings: Settings) -> dict[str, Any]:
    """Neighbours of the most rated game: the demo's closing picture."""
    from bggscore.embeddings.similar import similar

    with open_warehouse(settings) as wh:
        top = wh.query(MOST_RATED_GAME)
    return similar(settings, int(top["game_id"][0]), None, 5)


def _describe_neighbours(data: dict[str, Any]) -> str:
    lines = [f"games most like {data['name']} ({data['game_id']}), by game embedding:"]
    lines += [f"  {n['similarity']:.3f}  {n['name']} ({n['game_id']})" for n in data["neighbours"]]
    return "\n".join(lines)


def _train(settings: Settings, console: Console) -> list[str]:
    """Baseline models for every type the demo uses that has none yet (so the demo is
    safe to repeat); a sample keeps big benchmark catalogues quick."""
    from bggscore.errors import BggscoreError, RegistryError
    from bggscore.modelset import configured_ref, open_settings_registry
    from bggscore.tasks.train import train_models
    from bggscore.training.train import Splits

    registry = open_settings_registry(settings)
    missing = []
    for model_type in DEMO_MODELS:
        try:
            registry.resolve(configured_ref(settings, model_type) or model_type, model_type)
        except RegistryError:
            missing.append(model_type)
    if not missing:
        console.info("models already registered: reusing them")
        return []
    report = train_models(
        settings,
        missing,
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
    settings: Settings, *, fraction: float, seed: int, console: Console, force: bool = False
) -> dict[str, Any]:
    """Change some games of the demo's catalogue and add a few; only in a warehouse the
    demo made, unless ``force``."""
    if not 0 < fraction <= 1:  # NaN too; before reading the whole catalogue
        raise InputError(f"--fraction must be in (0, 1], got {fraction}")
    _embedded_only(settings)
    with pipeline_lock(settings.home, "demo refresh"):
        return _refresh_demo(settings, fraction=fraction, seed=seed, console=console, force=force)


def _refresh_demo(
    settings: Settings, *, fraction: float, seed: int, console: Console, force: bool
) -> dict[str, Any]:
    from bggscore.demo.catalogue import refresh_catalogue

    with open_warehouse(settings) as wh:
        wh.require_tables(["games_features", "game_features_hash"])
        games = wh.count_rows("games_features") or 0
        if not games:
            raise ConfigError(
                f"the warehouse {wh.location} has no games to refresh", "run `bggscore demo` first"
            )
        if not is_demo_warehouse(wh):
            if not force:
                raise UsageError(
                    f"the warehouse {wh.location} holds {counted(games, 'game')} that "
                    "`bggscore demo` did not make; `demo refresh` would change some of them "
                    "and add synthetic ones",
                    "pass --force to do so anyway, or refresh a home `bggscore demo` made",
                )
            console.warn(f"--force: refreshing {games:,} games `bggscore demo` did not make")
        everything = Selection(all_years=True, include_null_year=True)
        frames = list(wh.read_features(everything, batch_size=1_000_000))
        current = pl.concat(frames).sort("game_id")  # the same seed picks the same games
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
