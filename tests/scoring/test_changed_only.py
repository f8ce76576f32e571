"""`bggscore score --changed-only`: score exactly what detect-changes finds, and no more.

The "done when" of change detection is checked literally on the REAL sample (1,000
games, scored with the demo-trained models as in test_scoring_sample.py); convergence,
the legacy fallback and the no-op path run on the ~3,000-game demo catalogue.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import QUALIFIED, count, execute, game_ids, read, sql, written_counts

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "sample_games.parquet"
IN_RANGE = "year_published >= 2024 AND year_published < 2029"
SCORING = ("complexity", "main")
RATINGS = (
    "users_rated",
    "average_rating",
    "bayes_average",
    "geek_rating",
    "rating",
    "log_users_rated",
    "num_weights",
    "average_weight",
    "complexity",
)
ARRAYS = ("categories", "mechanics", "publishers", "designers", "artists", "families")


# -- helpers ----------------------------------------------------------------------------


def run(cli, *args: str) -> dict[str, Any]:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return parse_json(result.stdout)


def detected(cli, *args: str) -> dict[str, list[int]]:
    """detect-changes per scoring stage: stage -> game ids, in priority order."""
    out = {}
    for stage in SCORING:
        [found] = run(cli, "detect-changes", "--stage", stage, *args)["stages"]
        out[stage] = found["game_ids"]
    return out


def stage_of(data: dict[str, Any]) -> dict[str, Any]:
    """The one stage of a `detect-changes --stage STAGE --json` document."""
    [found] = data["stages"]
    return found


def scored_by(home: Path, job_id: str | None) -> dict[str, list[int]]:
    """What one job wrote, per stage (from the landing tables, not from its report)."""
    if job_id is None:
        return {stage: [] for stage in SCORING}
    out = {}
    for stage, logical in (
        ("complexity", "complexity_predictions"),
        ("main", "ml_predictions_landing"),
    ):
        frame = sql(
            home,
            f"SELECT game_id FROM {QUALIFIED[logical]} WHERE job_id = $job ORDER BY game_id",
            {"job": job_id},
        )
        out[stage] = frame["game_id"].to_list()
    return out


def reload_with(cli, source: pl.DataFrame, path: Path) -> dict[str, Any]:
    """Write an edited export and load it with `bggscore warehouse load`."""
    source.write_parquet(path)
    return run(cli, "warehouse", "load", str(path))


def register_same_pipeline(model_type: str) -> str:
    from bggscore.modelset import open_settings_registry
    from bggscore.settings import load_settings

    registry = open_settings_registry(load_settings())
    original = registry.load(model_type, model_type)
    reg = original.registration
    return registry.register(
        model_type,
        model_type,
        original.model,
        signature=[c.model_dump() for c in reg.signature],
        output=reg.output,
        training=reg.training,
        metrics=reg.metrics,
    ).label


# -- the real sample ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def scored_sample(trained_demo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real sample loaded into its own DuckDB file and fully scored, ONCE."""
    import os

    from typer.testing import CliRunner

    from bggscore.cli.main import app

    if not SAMPLE.is_file():
        pytest.skip(f"real sample not found at {SAMPLE}")
    root = tmp_path_factory.mktemp("scored-sample")
    db = root / "sample.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("BGGSCORE_", "GITHUB_")):
                mp.delenv(key)
        mp.chdir(root)
        mp.setenv("BGGSCORE_HOME", str(root / "home"))
        shutil.copytree(trained_demo_home / "registry", root / "home" / "registry")
        mp.setenv("BGGSCORE_WAREHOUSE__PATH", str(db))
        runner = CliRunner()
        for args in (["warehouse", "load", str(SAMPLE)], ["score", "--all-years"]):
            result = runner.invoke(app, args, catch_exceptions=False)
            assert result.exit_code == 0, result.stderr
    return db


@pytest.fixture
def sample_db(demo_home: Path, scored_sample: Path, tmp_path: Path, monkeypatch) -> Path:
    """This test's copy of the scored sample; the registry is the demo home's (same models)."""
    db = tmp_path / "sample.duckdb"
    shutil.copyfile(scored_sample, db)
    monkeypatch.setenv("BGGSCORE_WAREHOUSE__PATH", str(db))
    return db


def test_second_changed_only_run_on_the_real_sample_does_nothing(
    cli, demo_home: Path, sample_path: Path, tmp_path: Path, monkeypatch
) -> None:
    db = tmp_path / "sample.duckdb"
    monkeypatch.setenv("BGGSCORE_WAREHOUSE__PATH", str(db))
    assert run(cli, "warehouse", "load", str(sample_path))["new"] == 1000
    full = run(cli, "score", "--all-years")
    assert full["games_scored"] == 1000
    before = written_counts(db)

    again = run(cli, "score", "--changed-only", "--all-years")

    assert again["games_scored"] == 0
    assert again["skipped_reason"] == "no_changes"
    assert again["job_id"] is None
    assert again["stages"] == {"complexity": 0, "main": 0}
    assert written_counts(db) == before  # not even a run row
    human = cli("score", "--changed-only", "--all-years")
    assert human.exit_code == 0
    assert "0 games scored (no_changes" in human.stdout
    assert written_counts(db) == before


def test_one_changed_mechanic_is_exactly_one_game_for_both_stages(
    cli, sample_db: Path, sample_path: Path, tmp_path: Path
) -> None:
    games = pl.read_parquet(sample_path)
    target = (
        games.filter(pl.col("year_published").is_between(2024, 2028))
        .filter(~pl.col("mechanics").list.contains("Bribery"))["game_id"]
        .min()
    )
    edited = games.with_columns(
        pl.when(pl.col("game_id") == target)
        .then(pl.col("mechanics").list.concat(pl.lit(["Bribery"])))
        .otherwise(pl.col("mechanics"))
        .alias("mechanics")
    )
    loaded = reload_with(cli, edited, tmp_path / "edited.parquet")
    assert (loaded["changed"], loaded["unchanged"]) == (1, 999)

    for args in ((), ("--all-years",)):
        assert detected(cli, *args) == {"complexity": [target], "main": [target]}
        for stage in SCORING:
            data = stage_of(run(cli, "detect-changes", "--stage", stage, *args))
            assert data["by_reason"] == {"new": 0, "features": 1, "model": 0, "upstream": 0}
    explained = run(cli, "detect-changes", "--explain", str(target), "--stage", "all")
    reasons = {item["stage"]: item["reasons"] for item in explained["stages"]}
    assert reasons["complexity"] == reasons["main"] == ["features"]

    result = run(cli, "score", "--changed-only", "--all-years")
    assert (result["games_scored"], result["stages"]) == (1, {"complexity": 1, "main": 1})
    assert scored_by(sample_db, result["job_id"]) == {"complexity": [target], "main": [target]}
    assert run(cli, "score", "--changed-only", "--all-years")["skipped_reason"] == "no_changes"


def test_ratings_and_array_order_change_nothing(
    cli, sample_db: Path, sample_path: Path, tmp_path: Path
) -> None:
    games = pl.read_parquet(sample_path)
    rated, shuffled = games.filter(
        (pl.col("mechanics").list.len() > 1) & (pl.col("categories").list.len() > 1)
    )["game_id"].head(2)
    edited = games.with_columns(
        *[
            pl.when(pl.col("game_id") == rated)
            .then(pl.col(name) * 2 + 1)
            .otherwise(pl.col(name))
            .alias(name)
            for name in RATINGS
        ],
        *[
            pl.when(pl.col("game_id") == shuffled)
            .then(pl.col(name).list.reverse())
            .otherwise(pl.col(name))
            .alias(name)
            for name in ARRAYS
        ],
    )
    loaded = reload_with(cli, edited, tmp_path / "edited.parquet")
    assert (loaded["changed"], loaded["unchanged"]) == (0, 1000)
    # the load did happen: the warehouse has the new ratings and the new array order
    stored = sql(
        sample_db,
        f"SELECT game_id, users_rated, mechanics FROM {QUALIFIED['games_features']} "
        f"WHERE game_id IN ({rated}, {shuffled}) ORDER BY game_id",
    )
    by_id = {row["game_id"]: row for row in stored.iter_rows(named=True)}
    original = {row["game_id"]: row for row in games.iter_rows(named=True)}
    assert by_id[rated]["users_rated"] == original[rated]["users_rated"] * 2 + 1
    assert by_id[shuffled]["mechanics"] == original[shuffled]["mechanics"][::-1]

    assert detected(cli, "--all-years") == {"complexity": [], "main": []}
    result = run(cli, "score", "--changed-only", "--all-years")
    assert (result["games_scored"], result["skipped_reason"]) == (0, "no_changes")


def test_a_new_rating_model_flags_main_only(cli, sample_db: Path, sample_path: Path) -> None:
    assert register_same_pipeline("rating") == "rating:2"  # what `models train` registers
    in_range = sorted(game_ids(sample_db, IN_RANGE))
    assert in_range  # the sample has recent games

    main = stage_of(run(cli, "detect-changes", "--stage", "main"))
    assert main["game_ids"] == in_range
    assert main["by_reason"] == {"new": 0, "features": 0, "model": len(in_range), "upstream": 0}
    assert stage_of(run(cli, "detect-changes", "--stage", "complexity"))["count"] == 0
    assert stage_of(run(cli, "detect-changes", "--stage", "main", "--all-years"))["count"] == 1000

    result = run(cli, "score", "--changed-only")
    assert result["stages"] == {"complexity": 0, "main": len(in_range)}
    landing = read(sample_db, "ml_predictions_landing").filter(pl.col("job_id") == result["job_id"])
    assert sorted(landing["game_id"]) == in_range
    assert landing["rating_model_version"].unique().to_list() == [2]


def test_a_new_complexity_prediction_makes_main_upstream(cli, sample_db: Path) -> None:
    game = sorted(game_ids(sample_db, IN_RANGE))[0]
    old_main = read(sample_db, "scoring_state").filter(
        (pl.col("stage") == "main") & (pl.col("game_id") == game)
    )
    rescored = run(cli, "score", "--stage", "complexity", "--game-id", str(game))
    assert rescored["stages"] == {"complexity": 1}

    assert detected(cli, "--all-years") == {"complexity": [], "main": [game]}
    main = stage_of(run(cli, "detect-changes", "--stage", "main", "--all-years"))
    assert main["by_reason"] == {"new": 0, "features": 0, "model": 0, "upstream": 1}
    (item,) = run(cli, "detect-changes", "--stage", "main", "--explain", str(game))["stages"]
    assert item["reasons"] == ["upstream"]
    assert item["upstream"] == {
        "recorded": old_main["upstream_key"][0],
        "current": f"complexity:{rescored['job_id']}",
        "pending": [],  # complexity already ran: a real change, not a preview
    }

    result = run(cli, "score", "--changed-only", "--all-years")
    assert result["stages"] == {"complexity": 0, "main": 1}
    landing = read(sample_db, "ml_predictions_landing").filter(pl.col("job_id") == result["job_id"])
    new_complexity = read(sample_db, "complexity_predictions").filter(
        pl.col("job_id") == rescored["job_id"]
    )
    assert landing["game_id"].to_list() == [game]
    assert landing["predicted_complexity"][0] == new_complexity["predicted_complexity"][0]
    state = read(sample_db, "scoring_state").filter(
        (pl.col("stage") == "main") & (pl.col("game_id") == game)
    )
    assert state["upstream_key"][0] == f"complexity:{rescored['job_id']}"


# -- convergence of capped runs ----------------------------------------------------------


def run_until_done(cli, home: Path, *args: str, limit: int = 20) -> list[dict[str, list[int]]]:
    """`score --changed-only ARGS` until it says no_changes; what each run scored."""
    passes = []
    for _ in range(limit):
        result = run(cli, "score", "--changed-only", *args)
        if result["skipped_reason"] == "no_changes":
            assert result["games_scored"] == 0 and result["job_id"] is None
            return passes
        scored = scored_by(home, result["job_id"])
        assert result["stages"] == {stage: len(ids) for stage, ids in scored.items()}
        passes.append(scored)
    raise AssertionError(f"no convergence after {limit} runs")


def slices(order: list[int], size: int) -> list[list[int]]:
    return [sorted(order[i : i + size]) for i in range(0, len(order), size)]


def test_capped_runs_converge_in_priority_order(cli, demo_home: Path, tmp_path: Path) -> None:
    cap = 700
    known = sorted(game_ids(demo_home))
    # the five highest ids are scored first, so their scores are the oldest of all
    early = known[-5:]
    first = run(cli, "score", *[a for g in early for a in ("--game-id", str(g))])
    assert first["games_scored"] == 5

    # generation 1: every other game is new; new games go in game_id order
    rest = known[:-5]
    passes = run_until_done(cli, demo_home, "--all-years", "--max-games", str(cap))
    assert len(passes) == math.ceil(len(rest) / cap) == 5
    for scored, expected in zip(passes, slices(rest, cap), strict=True):
        assert scored == {"complexity": expected, "main": expected}
    for logical in ("complexity_predictions", "ml_predictions_landing"):
        rows = read(demo_home, logical)
        assert sorted(rows["game_id"]) == known  # every game exactly once per stage

    # generation 2: five brand-new games, and a new rating model for everyone else
    template = sql(
        demo_home, f"SELECT * FROM {QUALIFIED['games_features']} WHERE game_id IN ({known[0]})"
    )
    fresh = [known[-1] + k for k in range(1, 6)]
    new_rows = pl.concat(
        [
            template.with_columns(
                pl.lit(g).alias("game_id"), pl.lit(2025.0).alias("year_published")
            )
            for g in fresh
        ]
    )
    assert reload_with(cli, new_rows, tmp_path / "new.parquet")["new"] == 5
    assert register_same_pipeline("rating") == "rating:2"
    jobs_before = set(read(demo_home, "runs")["job_id"])

    # new first; then the oldest scores (the early five); then score_ts, then game_id
    main_order = fresh + early + rest
    assert (
        stage_of(run(cli, "detect-changes", "--stage", "main", "--all-years"))["game_ids"]
        == main_order
    )
    passes = run_until_done(cli, demo_home, "--all-years", "--max-games", str(cap))
    assert len(passes) == math.ceil(len(main_order) / cap) == 5
    assert [p["main"] for p in passes] == slices(main_order, cap)
    assert [p["complexity"] for p in passes] == [fresh, [], [], [], []]

    landing = read(demo_home, "ml_predictions_landing").filter(
        ~pl.col("job_id").is_in(list(jobs_before))
    )
    assert sorted(landing["game_id"]) == sorted(main_order)  # each game once this generation
    assert landing["rating_model_version"].unique().to_list() == [2]


# -- the legacy fallback ------------------------------------------------------------------


def test_rows_without_a_recorded_hash_fall_back_to_last_updated(cli, scored_home: Path) -> None:
    ids = sorted(game_ids(scored_home, IN_RANGE))
    legacy, untouched = ids[:3], ids[3:5]
    in_list = ", ".join(str(i) for i in legacy + untouched)
    execute(
        scored_home,
        f"UPDATE {QUALIFIED['scoring_state']} SET feature_hash = NULL WHERE game_id IN ({in_list})",
    )
    # without a recorded hash, and not updated since it was scored: nothing to do
    assert detected(cli) == {"complexity": [], "main": []}

    latest = sql(scored_home, f"SELECT max(score_ts) AS ts FROM {QUALIFIED['scoring_state']}")
    moved = latest["ts"][0].isoformat()
    execute(
        scored_home,
        f"UPDATE {QUALIFIED['game_features_hash']} SET last_updated = "
        f"TIMESTAMPTZ '{moved}' + INTERVAL 1 SECOND "
        f"WHERE game_id IN ({', '.join(str(i) for i in legacy)})",
    )
    assert detected(cli) == {"complexity": legacy, "main": legacy}
    for stage in SCORING:
        reasons = stage_of(run(cli, "detect-changes", "--stage", stage))["by_reason"]
        assert reasons == {"new": 0, "features": 3, "model": 0, "upstream": 0}

    result = run(cli, "score", "--changed-only")
    assert scored_by(scored_home, result["job_id"]) == {"complexity": legacy, "main": legacy}
    state = read(scored_home, "scoring_state").filter(pl.col("stage").is_in(SCORING))
    hashes = read(scored_home, "game_features_hash").select("game_id", "feature_hash")
    now = state.join(hashes, on="game_id", suffix="_now")
    rescored = now.filter(pl.col("game_id").is_in(legacy))
    assert (rescored["feature_hash"] == rescored["feature_hash_now"]).all()  # recorded now
    assert now.filter(pl.col("game_id").is_in(untouched))["feature_hash"].null_count() == 4
    assert run(cli, "score", "--changed-only")["skipped_reason"] == "no_changes"


# -- a no-op loads nothing ----------------------------------------------------------------


class Spy:
    def __init__(self, original: Any) -> None:
        self.original, self.calls = original, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.original(*args, **kwargs)


@pytest.fixture
def spies(monkeypatch) -> Iterator[dict[str, Spy]]:
    import joblib

    from bggscore.registry import Registry
    from bggscore.warehouse.base import Warehouse

    found = {
        "Registry.load": Spy(Registry.load),
        "joblib.load": Spy(joblib.load),
        "Warehouse.read_features": Spy(Warehouse.read_features),
    }

    def method(spy: Spy) -> Any:
        def bound(self: Any, *args: Any, **kwargs: Any) -> Any:
            return spy(self, *args, **kwargs)

        return bound

    monkeypatch.setattr(Registry, "load", method(found["Registry.load"]))
    monkeypatch.setattr(joblib, "load", found["joblib.load"])
    monkeypatch.setattr(Warehouse, "read_features", method(found["Warehouse.read_features"]))
    yield found


def test_nothing_to_do_unpickles_no_model_and_reads_no_features(
    cli, scored_home: Path, spies: dict[str, Spy]
) -> None:
    before = written_counts(scored_home)
    for args in ((), ("--all-years",), ("--stage", "main"), ("--stage", "complexity")):
        result = run(cli, "score", "--changed-only", *args)
        assert (result["games_scored"], result["skipped_reason"]) == (0, "no_changes")
    assert {name: spy.calls for name, spy in spies.items()} == dict.fromkeys(spies, 0)
    assert written_counts(scored_home) == before

    # the same spies do see a run with work: they watch the right doors
    game = sorted(game_ids(scored_home, IN_RANGE))[0]
    assert run(cli, "score", "--stage", "complexity", "--game-id", str(game))["games_scored"] == 1
    result = run(cli, "score", "--changed-only")
    assert result["stages"] == {"complexity": 0, "main": 1}
    assert all(spy.calls > 0 for spy in spies.values()), {n: s.calls for n, s in spies.items()}


# -- exactly what detect-changes returns, with the same filters --------------------------


def change_mechanics(cli, home: Path, ids: list[int], path: Path) -> None:
    rows = sql(
        home,
        f"SELECT * FROM {QUALIFIED['games_features']} "
        f"WHERE game_id IN ({', '.join(str(i) for i in ids)})",
    )
    edited = rows.with_columns(pl.col("mechanics").list.concat(pl.lit(["Bribery"])))
    assert reload_with(cli, edited, path)["changed"] == len(ids)


def test_score_changed_only_scores_what_detect_changes_lists(
    cli, scored_home: Path, tmp_path: Path
) -> None:
    recent = sorted(game_ids(scored_home, IN_RANGE))
    old = sorted(game_ids(scored_home, "year_published < 2000"))
    a, b, c = recent[:3]
    d, e = old[:2]
    assert d < e < a < b < c  # so the expected lists below are sorted
    change_mechanics(cli, scored_home, [a, b, d], tmp_path / "edited.parquet")
    for game in (c, e):  # a new complexity prediction: main must follow
        assert run(cli, "score", "--stage", "complexity", "--game-id", str(game))["job_id"]

    rounds = [
        (("--game-id", str(a), "--game-id", str(d), "--game-id", "9999999"), [d, a], [d, a]),
        ((), [b], [b, c]),
        (("--all-years",), [], [e]),
    ]
    for filters, complexity, main in rounds:
        preview = {
            item["stage"]: item["game_ids"]
            for item in run(cli, "detect-changes", "--stage", "all", *filters)["stages"]
        }
        assert sorted(preview["complexity"]) == complexity, filters
        assert sorted(preview["main"]) == main, filters
        result = run(cli, "score", "--changed-only", *filters)
        assert scored_by(scored_home, result["job_id"]) == {
            "complexity": complexity,
            "main": main,
        }, filters
    assert run(cli, "score", "--changed-only", "--all-years")["skipped_reason"] == "no_changes"


def test_one_stage_at_a_time(cli, scored_home: Path, tmp_path: Path) -> None:
    game = sorted(game_ids(scored_home, IN_RANGE))[0]
    change_mechanics(cli, scored_home, [game], tmp_path / "edited.parquet")
    landing = count(scored_home, "ml_predictions_landing")

    first = run(cli, "score", "--changed-only", "--stage", "complexity")
    assert first["stages"] == {"complexity": 1}
    assert count(scored_home, "ml_predictions_landing") == landing  # main not run

    main = stage_of(run(cli, "detect-changes", "--stage", "main"))
    assert main["game_ids"] == [game]
    (item,) = run(cli, "detect-changes", "--stage", "main", "--explain", str(game))["stages"]
    assert item["reasons"] == ["features", "upstream"]
    second = run(cli, "score", "--changed-only", "--stage", "main")
    assert second["stages"] == {"main": 1}
    assert scored_by(scored_home, second["job_id"])["main"] == [game]
    assert run(cli, "score", "--changed-only", "--stage", "main")["skipped_reason"] == "no_changes"


# -- errors: exit code, one line, nothing written ----------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (("--max-games", "0"), 2, ("--max-games", "positive")),
        (("--max-games", "-3"), 2, ("--max-games", "positive")),
        (("--start-year", "2026", "--end-year", "2026"), 2, ("--start-year 2026",)),
        (("--stage", "mian"), 2, ("'mian'",)),
    ],
)
def test_bad_input_writes_nothing(
    cli, demo_home: Path, args: tuple[str, ...], code: int, needles: tuple[str, ...]
) -> None:
    result = cli("score", "--changed-only", *args)
    assert result.exit_code == code
    assert_one_line_error(result.stderr, *needles)
    assert set(written_counts(demo_home).values()) == {0}


def test_non_numeric_id_in_the_file(cli, demo_home: Path, tmp_path: Path) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("12\n\n# a comment\n12a\n")
    result = cli("score", "--changed-only", "--game-ids-file", str(ids_file))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, f"{ids_file}:4", "'12a'")
    assert set(written_counts(demo_home).values()) == {0}


def test_missing_tables_say_to_run_init(cli, demo_home: Path, tmp_path: Path, monkeypatch) -> None:
    empty = tmp_path / "elsewhere.duckdb"
    monkeypatch.setenv("BGGSCORE_WAREHOUSE__PATH", str(empty))
    result = cli("score", "--changed-only")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, f"no warehouse at {empty}", "bggscore warehouse init")
    assert not empty.exists()  # nothing created behind the user's back
    duckdb.connect(str(empty)).close()  # a warehouse file without the tables
    result = cli("score", "--changed-only")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "missing table", "bggscore warehouse init")
    assert sql(empty, "SELECT table_name FROM information_schema.tables").is_empty()
