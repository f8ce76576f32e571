"""Models reading ``emb_*`` take them from the table ``features.embeddings_table`` names.

The stage graph gets an input (``embeddings-table``) that provides ``emb_*`` before the text
stage does, unless the setting is ``"bggscore"`` (tests/test_stages.py covers that path). End
to end on a copy of the demo home: a complexity model and a rating model reading emb_0..emb_7
score from vectors loaded with ``warehouse load --embeddings``; each game's upstream key holds
a hash of its vector, so reloading the same file changes nothing and one changed vector is an
``upstream`` change for that game alone; a game without a vector is reported under
``missing_inputs`` (never a change, never scored) until it has one. Then the refusals: no
table, an empty one, another width, bad files, BigQuery.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import execute, read, sql

from bggscore.stages import (
    COMPLEXITY,
    EMBEDDINGS_INPUT,
    EMBEDDINGS_TABLE,
    GAME_EMBEDDINGS,
    GRAPH,
    MAIN,
    TEXT_EMBEDDINGS,
)
from bggscore.warehouse.detection_sql import detection_sql

WIDTH = 8
TABLE = "predictions.bgg_description_embeddings"  # the default, as DuckDB schema.table
EMB = tuple(f"emb_{i}" for i in range(WIDTH))


# -- the graph ---------------------------------------------------------------------------------
def test_the_input_provides_emb_before_the_text_stage() -> None:
    graph = GRAPH.with_input(EMBEDDINGS_INPUT)
    assert graph.provider("emb_3") == EMBEDDINGS_TABLE
    assert graph.provider("description_embedding") == TEXT_EMBEDDINGS
    assert GRAPH.provider("emb_3") == TEXT_EMBEDDINGS  # the opt-in graph
    derived = graph.with_model_inputs(
        {"complexity c:1": ["emb_0", "emb_7"], "rating r:1": ["emb_0", "predicted_complexity"]}
    )
    # an input is no stage: the order, the commands and the stage lists do not change
    assert derived.names == GRAPH.names
    assert derived.upstream(COMPLEXITY) == ()
    assert derived.inputs_of(COMPLEXITY) == (EMBEDDINGS_TABLE,)
    assert derived.upstream(MAIN) == (COMPLEXITY,)
    assert derived.inputs_of(MAIN) == (EMBEDDINGS_TABLE,)
    # game embeddings read complexity: they need what complexity needs, without reading it
    assert derived.inputs_of(GAME_EMBEDDINGS) == ()
    assert derived.inputs_needed(GAME_EMBEDDINGS) == (EMBEDDINGS_TABLE,)
    assert derived.input_readers(EMBEDDINGS_TABLE) == {
        COMPLEXITY: ("complexity c:1",),
        MAIN: ("rating r:1",),
    }
    # detection compares the vector's hash; without an emb_* model nothing changes
    assert "'embeddings-table:'" in detection_sql(COMPLEXITY, derived)
    assert detection_sql(COMPLEXITY, graph) == detection_sql(COMPLEXITY, GRAPH)


# -- end to end ----------------------------------------------------------------------------------
def vectors(home: Path, seed: int = 0, width: int = WIDTH) -> pl.DataFrame:
    """A vector for every game of the home, reproducible from the seed."""
    ids = sorted(read(home, "games_features")["game_id"].to_list())
    values = np.random.default_rng(seed).normal(size=(len(ids), width))
    return pl.DataFrame({"game_id": ids, "embedding": values.tolist()})


def load(cli, frame: pl.DataFrame, path: Path) -> dict:
    frame.write_parquet(path)
    result = cli("warehouse", "load", "--embeddings", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    return parse_json(result.stdout)["embeddings"]


def register_models(home: Path, frame: pl.DataFrame) -> dict[str, str]:
    """A complexity model and a rating model reading emb_0..emb_7 (and the rating model the
    predicted complexity), trained on ``frame``'s vectors, registered under their own names."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MaxAbsScaler

    from bggscore.feature_builder import FeatureBuilder
    from bggscore.registry import open_registry
    from bggscore.scoring.outcomes import OUTCOMES
    from bggscore.scoring.upstream import expand_embedding
    from bggscore.training.compile import compile_pipeline
    from bggscore.training.estimators import SparseBayesianRegressor
    from bggscore.training.train import signature

    games = read(home, "games_features").filter(pl.col("num_weights") >= 5)
    rows = expand_embedding(
        games.join(frame.rename({"embedding": "description_embedding"}), on="game_id")
    ).with_columns(pl.col("average_weight").alias("predicted_complexity"))
    registry = open_registry(str(home / "registry"), home)
    names = {}
    for outcome, chain in (
        ("complexity", EMB),
        ("rating", ("predicted_complexity", *EMB)),
    ):
        target = OUTCOMES[outcome]
        fit = rows.filter(target.train_filter) if target.train_filter is not None else rows
        pipeline = Pipeline(
            [
                ("features", FeatureBuilder(chain_inputs=chain)),
                ("scale", MaxAbsScaler()),
                ("model", SparseBayesianRegressor(kind="ridge")),
            ]
        ).fit(fit, target.target_values(fit).to_numpy())
        registration = registry.register(
            outcome,
            f"{outcome}-emb",
            compile_pipeline(pipeline),
            signature=signature(pipeline),
            output=target.output(),
            training={"test_through": 2024},
        )
        assert {c.name for c in registration.signature} >= set(EMB)
        names[outcome] = registration.name
    return names


@pytest.fixture
def emb_home(cli, embedded_home: Path, tmp_path: Path, monkeypatch) -> Path:
    """The demo home with vectors for every game but one (`absent`) loaded, and the two
    emb_* models as the configured complexity and rating models."""
    frame = vectors(embedded_home)
    names = register_models(embedded_home, frame)
    monkeypatch.setenv("BGGSCORE_MODELS__COMPLEXITY", names["complexity"])
    monkeypatch.setenv("BGGSCORE_MODELS__RATING", names["rating"])
    loaded = load(cli, frame.slice(1), tmp_path / "vectors.parquet")
    assert (loaded["inserted"], loaded["updated"], loaded["dim"]) == (len(frame) - 1, 0, WIDTH)
    assert loaded["table"] == TABLE
    return embedded_home


def absent_game(home: Path) -> int:
    return int(vectors(home)["game_id"][0])


def hashes(home: Path) -> dict[int, str]:
    """game -> the md5 of its stored vector, as DuckDB computes it."""
    frame = sql(home, f"SELECT game_id, md5(CAST(to_json(embedding) AS VARCHAR)) AS h FROM {TABLE}")
    return dict(frame.iter_rows())


def missing_of(document: dict) -> dict:
    return {
        stage: {name: item["game_ids"] for name, item in inputs.items()}
        for stage, inputs in document["missing_inputs"].items()
    }


def test_emb_models_read_the_table_and_a_reload_changes_nothing(
    cli, emb_home: Path, tmp_path: Path
) -> None:
    absent = absent_game(emb_home)
    run = cli("run", "--all-years", "--json")
    assert run.exit_code == 0, run.stderr
    data = parse_json(run.stdout)
    # the input is no stage: no text embeddings before complexity
    assert data["stages"] == [COMPLEXITY, MAIN, TEXT_EMBEDDINGS, GAME_EMBEDDINGS]
    # the game without a vector: reported for every stage that needs it, never scored
    lacking = {name: [absent] for name in (EMBEDDINGS_TABLE,)}
    assert missing_of(data) == {COMPLEXITY: lacking, MAIN: lacking, GAME_EMBEDDINGS: lacking}
    assert data["missing_inputs"][COMPLEXITY][EMBEDDINGS_TABLE]["count"] == 1
    assert "1 game has no embedding in predictions.bgg_description_embeddings" in run.stderr
    assert "bggscore warehouse load --embeddings FILE.parquet" in run.stderr
    state = read(emb_home, "scoring_state")
    stored = hashes(emb_home)
    dated = set(
        read(emb_home, "games_features").filter(pl.col("year_published").is_not_null())["game_id"]
    )
    complexity = state.filter(pl.col("stage") == COMPLEXITY)
    fresh = complexity.filter(pl.col("job_id") == data["steps"][0]["job_id"])
    assert set(fresh["game_id"]) == dated & set(stored) and absent in dated
    for game, key in fresh.select("game_id", "upstream_key").iter_rows():
        assert key == f"{EMBEDDINGS_TABLE}:{stored[game]}"
    main = state.filter((pl.col("stage") == MAIN) & pl.col("game_id").is_in(list(stored)))
    jobs = dict(complexity.select("game_id", "job_id").iter_rows())
    for game, key in main.select("game_id", "upstream_key").iter_rows():
        assert key == f"{COMPLEXITY}:{jobs[game]}|{EMBEDDINGS_TABLE}:{stored[game]}"
    landing = read(emb_home, "ml_predictions_landing").filter(
        pl.col("job_id") == data["steps"][0]["job_id"]
    )
    assert absent not in landing["game_id"].to_list()
    assert np.isfinite(landing["predicted_rating"].to_numpy()).all()

    # the same file again: nothing loaded, nothing detected, nothing run
    again = load(cli, vectors(emb_home).slice(1), tmp_path / "same.parquet")
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, len(stored))
    assert hashes(emb_home) == stored
    detected = parse_json(cli("detect-changes", "--all-years", "--json").stdout)
    assert detected["changed"] is False and detected["count"] == 0
    assert missing_of(detected)[COMPLEXITY] == lacking  # still reported, not a change
    assert cli("detect-changes", "--all-years", "--exit-code").exit_code == 1
    quiet = parse_json(cli("run", "--all-years", "--json").stdout)
    assert quiet["games_total"] == 0 and quiet["skipped_reason"] == "no_changes"


def test_one_changed_vector_rescores_that_game_alone(cli, emb_home: Path, tmp_path: Path) -> None:
    assert cli("run", "--all-years").exit_code == 0
    frame = vectors(emb_home).slice(1)
    game = int(frame["game_id"][5])
    edited = frame.with_columns(
        pl.when(pl.col("game_id") == game)
        .then(pl.col("embedding").list.eval(pl.element() + 0.5))
        .otherwise(pl.col("embedding"))
    )
    loaded = load(cli, edited, tmp_path / "edited.parquet")
    assert (loaded["updated"], loaded["inserted"]) == (1, 0)
    detected = parse_json(cli("detect-changes", "--all-years", "--json").stdout)
    by_stage = {s["stage"]: s for s in detected["stages"]}
    for stage in (COMPLEXITY, MAIN):
        assert by_stage[stage]["game_ids"] == [game], stage
        assert by_stage[stage]["by_reason"]["upstream"] == 1, stage
    explained = parse_json(
        cli("detect-changes", "--explain", str(game), "--stage", COMPLEXITY, "--json").stdout
    )
    [row] = explained["stages"]
    assert row["reasons"] == ["upstream"] and row["missing_inputs"] == []
    assert row["upstream"]["current"] == f"{EMBEDDINGS_TABLE}:{hashes(emb_home)[game]}"
    assert row["upstream"]["recorded"] != row["upstream"]["current"]
    score = parse_json(cli("score", "--all-years", "--changed-only", "--json").stdout)
    assert score["stages"] == {COMPLEXITY: 1, MAIN: 1}


def test_a_game_without_a_vector_is_scored_once_it_has_one(
    cli, emb_home: Path, tmp_path: Path
) -> None:
    absent = absent_game(emb_home)
    first = parse_json(cli("score", "--all-years", "--json").stdout)
    assert missing_of(first)[COMPLEXITY] == {EMBEDDINGS_TABLE: [absent]}
    assert first["games_scored"] == first["stages"][COMPLEXITY] > 0
    assert first["waiting_on"] == []  # missing, not waiting for a stage
    explained = parse_json(cli("detect-changes", "--explain", str(absent), "--json").stdout)
    for row in explained["stages"][:2]:
        assert row["reasons"] == [] and row["missing_inputs"] == [EMBEDDINGS_TABLE], row

    load(cli, vectors(emb_home).head(1), tmp_path / "one.parquet")
    detected = parse_json(cli("detect-changes", "--all-years", "--json").stdout)
    assert detected["missing_inputs"] == {}
    by_stage = {s["stage"]: s for s in detected["stages"]}
    assert by_stage[COMPLEXITY]["game_ids"] == [absent]
    # the demo's own model scored it once; the emb_* model never could
    assert by_stage[COMPLEXITY]["by_reason"]["model"] == 1
    score = parse_json(cli("score", "--all-years", "--changed-only", "--json").stdout)
    assert score["stages"] == {COMPLEXITY: 1, MAIN: 1} and score["missing_inputs"] == {}
    rows = read(emb_home, "complexity_predictions").filter(pl.col("job_id") == score["job_id"])
    assert rows["game_id"].to_list() == [absent]


# -- refusals ------------------------------------------------------------------------------------
def test_an_emb_model_without_a_table_or_with_an_empty_one_is_refused(
    cli, embedded_home: Path, monkeypatch
) -> None:
    names = register_models(embedded_home, vectors(embedded_home))
    monkeypatch.setenv("BGGSCORE_MODELS__COMPLEXITY", names["complexity"])
    before = read(embedded_home, "complexity_predictions").height
    runs = read(embedded_home, "runs").height
    for setup in ("empty", "no table"):
        if setup == "no table":
            execute(embedded_home, f"DROP TABLE {TABLE}")
        for args in (("score", "--all-years"), ("detect-changes",), ("embed", "--kind", "game")):
            result = cli(*args)
            assert result.exit_code == 2, (setup, args, result.stderr)
            line = assert_one_line_error(
                result.stderr,
                "complexity-emb:1",
                "features.embeddings_table",
                "bggscore warehouse load --embeddings FILE.parquet",
            )
            assert ("which is empty" if setup == "empty" else "which is not in") in line
    assert read(embedded_home, "complexity_predictions").height == before
    assert read(embedded_home, "runs").height == runs


def test_vectors_of_another_width_are_refused_naming_both(
    cli, embedded_home: Path, tmp_path: Path, monkeypatch
) -> None:
    names = register_models(embedded_home, vectors(embedded_home))
    monkeypatch.setenv("BGGSCORE_MODELS__COMPLEXITY", names["complexity"])
    load(cli, vectors(embedded_home, width=WIDTH * 2), tmp_path / "wide.parquet")
    before = read(embedded_home, "complexity_predictions").height
    runs = read(embedded_home, "runs").height
    result = cli("score", "--all-years")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, f"read {WIDTH} embedding columns", f"{WIDTH * 2} dim")
    assert read(embedded_home, "complexity_predictions").height == before
    assert read(embedded_home, "runs").height == runs  # refused before the run started
    # the preview refuses them too: it would list games scoring cannot score
    preview = cli("detect-changes", "--all-years")
    assert preview.exit_code == 2
    assert_one_line_error(preview.stderr, f"read {WIDTH} embedding columns", f"{WIDTH * 2} dim")


def test_without_an_emb_model_the_table_is_never_needed(cli, embedded_home: Path) -> None:
    """The demo's own models read no emb_*: no table is checked, nothing is missing."""
    execute(embedded_home, f"DROP TABLE {TABLE}")
    result = cli("score", "--all-years", "--changed-only", "--json")
    assert result.exit_code == 0, result.stderr
    assert parse_json(result.stdout)["missing_inputs"] == {}


def _frame(**columns) -> pl.DataFrame:
    return pl.DataFrame(columns)


BAD_FILES = {
    "no embedding column": (_frame(game_id=[1, 2], vector=[[1.0], [2.0]]), "missing column"),
    "ragged": (_frame(game_id=[1, 2], embedding=[[1.0, 2.0], [3.0]]), "same number of dim"),
    "nan": (_frame(game_id=[1, 2], embedding=[[1.0, math.nan], [3.0, 4.0]]), "NaN or infinite"),
    "inf": (_frame(game_id=[1, 2], embedding=[[1.0, math.inf], [3.0, 4.0]]), "NaN or infinite"),
    "null value": (_frame(game_id=[1, 2], embedding=[[1.0, None], [3.0, 4.0]]), "a null"),
    "null vector": (_frame(game_id=[1, 2], embedding=[[1.0], None]), "have no embedding"),
    "empty vectors": (
        pl.DataFrame(
            {"game_id": [1, 2], "embedding": [[], []]},
            schema={"game_id": pl.Int64, "embedding": pl.List(pl.Float64)},
        ),
        "at least one",
    ),
    "repeated id": (_frame(game_id=[1, 1], embedding=[[1.0], [2.0]]), "more than once"),
    "null id": (_frame(game_id=[1, None], embedding=[[1.0], [2.0]]), "have no game_id"),
    "float ids": (_frame(game_id=[1.0, 2.5], embedding=[[1.0], [2.0]]), "expected integers"),
    "text ids": (_frame(game_id=["1", "2"], embedding=[[1.0], [2.0]]), "expected integers"),
    "text vectors": (_frame(game_id=[1, 2], embedding=["a", "b"]), "a list of numbers"),
    "no rows": (
        pl.DataFrame(schema={"game_id": pl.Int64, "embedding": pl.List(pl.Float64)}),
        "holds no rows",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_embeddings_files_write_nothing(cli, home: Path, tmp_path: Path, case: str) -> None:
    assert cli("warehouse", "init").exit_code == 0
    frame, needle = BAD_FILES[case]
    path = tmp_path / "bad.parquet"
    frame.write_parquet(path)
    result = cli("warehouse", "load", "--embeddings", str(path))
    assert result.exit_code == 2, result.stderr
    assert_one_line_error(result.stderr, needle)
    assert sql(home, f"SELECT COUNT(*) AS n FROM {TABLE}")["n"][0] == 0


def test_not_parquet_and_nothing_to_load(cli, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_text("not parquet")
    result = cli("warehouse", "load", "--embeddings", str(path))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "not a readable parquet file")
    nothing = cli("warehouse", "load")
    assert nothing.exit_code == 2
    assert_one_line_error(nothing.stderr, "--embeddings FILE.parquet, or both")


def test_games_and_embeddings_load_together(cli, home: Path, tmp_path: Path) -> None:
    from tests.factories import make_game_rows

    games = tmp_path / "games.parquet"
    make_game_rows(3).write_parquet(games)
    ids = pl.read_parquet(games)["game_id"].to_list()
    path = tmp_path / "v.parquet"
    pl.DataFrame({"game_id": ids, "embedding": [[1.0, 2.0]] * 3}).write_parquet(path)
    result = cli("warehouse", "load", str(games), "--embeddings", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    data = parse_json(result.stdout)
    assert data["new"] == 3 and data["embeddings"]["inserted"] == 3
    status = parse_json(cli("warehouse", "status", "--json").stdout)
    assert status["tables"]["embeddings_input"] == {"table": TABLE, "rows": 3}


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        (
            {
                "BGGSCORE_WAREHOUSE__ENGINE": "bigquery",
                "BGGSCORE_WAREHOUSE__FEATURES_PROJECT": "bgg-data-warehouse",
                "BGGSCORE_WAREHOUSE__ML_PROJECT": "bgg-predictive-models",
            },
            "the data warehouse owns the embeddings table",
        ),
        ({"BGGSCORE_FEATURES__EMBEDDINGS_TABLE": "bggscore"}, "no table to load"),
    ],
)
def test_load_embeddings_refuses_where_bggscore_owns_no_table(
    cli, home: Path, tmp_path: Path, monkeypatch, env: dict[str, str], needle: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "v.parquet"
    pl.DataFrame({"game_id": [1], "embedding": [[1.0]]}).write_parquet(path)
    result = cli("warehouse", "load", "--embeddings", str(path))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, needle, "features.embeddings_table")
    assert not (home / "warehouse.duckdb").exists()  # refused before opening anything


# -- the setting ---------------------------------------------------------------------------------
def test_the_setting_is_shown_and_validated(cli, home: Path, monkeypatch) -> None:
    shown = parse_json(cli("config", "show", "--json").stdout)["settings"]
    assert shown["features.embeddings_table"] == {"value": TABLE, "source": "default", "from": None}
    monkeypatch.setenv("BGGSCORE_FEATURES__EMBEDDINGS_TABLE", "my-project.emb.vectors")
    shown = parse_json(cli("config", "show", "--json").stdout)["settings"]
    assert shown["features.embeddings_table"]["value"] == "my-project.emb.vectors"
    assert shown["features.embeddings_table"]["source"] == "env"
    for bad in ("vectors", "a.b.c.d", "emb.vectors; DROP TABLE x", "emb.`x`", "Bad.emb.x"):
        monkeypatch.setenv("BGGSCORE_FEATURES__EMBEDDINGS_TABLE", bad)
        result = cli("warehouse", "init")
        assert result.exit_code == 2, bad
        assert_one_line_error(result.stderr, "invalid setting features.embeddings_table")


# -- the table keeps one width ---------------------------------------------------------------
def _vectors(ids: list[int], width: int, value: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame({"game_id": ids, "embedding": [[value] * width for _ in ids]})


def widths(home: Path) -> dict[int, int]:
    frame = sql(home, f"SELECT len(embedding) AS w, COUNT(*) AS n FROM {TABLE} GROUP BY w")
    return dict(frame.iter_rows())


def test_a_file_of_another_width_than_the_table_keeps_is_refused(
    cli, home: Path, tmp_path: Path
) -> None:
    load(cli, _vectors(list(range(1, 11)), 100), tmp_path / "wide.parquet")
    before = sql(home, f"SELECT * FROM {TABLE} ORDER BY game_id")
    path = tmp_path / "narrow.parquet"
    _vectors(list(range(1, 6)), 64).write_parquet(path)

    result = cli("warehouse", "load", "--embeddings", str(path))

    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert_one_line_error(
        result.stderr,
        "embeddings of 64 dimensions",
        f"{TABLE} keeps 5 vectors of 100 dimensions for the 5 games not in the file",
        "nothing was written",
        "load vectors of 100 dimensions",
        "point features.embeddings_table at a new table",
    )
    assert sql(home, f"SELECT * FROM {TABLE} ORDER BY game_id").equals(before)
    # together with a games export: neither is written
    from tests.factories import make_game_rows

    make_game_rows(3).write_parquet(tmp_path / "games.parquet")
    both = cli("warehouse", "load", str(tmp_path / "games.parquet"), "--embeddings", str(path))
    assert both.exit_code == 2
    assert read(home, "games_features").height == 0
    # vectors of the table's width are fine; a file replacing every vector may change it
    assert load(cli, _vectors([3], 100, 2.0), tmp_path / "one.parquet")["updated"] == 1
    replaced = load(cli, _vectors(list(range(1, 11)), 64), tmp_path / "all.parquet")
    assert (replaced["updated"], replaced["dim"]) == (10, 64)
    assert widths(home) == {64: 10}
    # a table left mixed by an earlier build: a file replacing the odd vectors mends it
    execute(home, f"INSERT INTO {TABLE} (game_id, embedding) VALUES (11, [1.0, 2.0])")
    assert load(cli, _vectors([11], 64), tmp_path / "mend.parquet")["updated"] == 1
    assert widths(home) == {64: 11}


def test_vectors_for_games_not_in_the_warehouse_are_loaded_with_a_warning(
    cli, home: Path, tmp_path: Path
) -> None:
    from tests.factories import make_game_rows

    games = tmp_path / "games.parquet"
    make_game_rows(3).write_parquet(games)
    assert cli("warehouse", "load", str(games)).exit_code == 0
    ids = pl.read_parquet(games)["game_id"].to_list()
    path = tmp_path / "v.parquet"
    _vectors([*ids, 990001, 990002], 4).write_parquet(path)

    result = cli("warehouse", "load", "--embeddings", str(path), "--json")

    assert result.exit_code == 0, result.stderr
    data = parse_json(result.stdout)["embeddings"]
    assert (data["inserted"], data["not_in_games_features"]) == (5, 2)
    [warning] = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert "2 of the 5 embeddings" in warning and "not in games_features" in warning
    # all known: no warning, a count of 0
    _vectors(ids, 4, 3.0).write_parquet(path)
    quiet = cli("warehouse", "load", "--embeddings", str(path), "--json")
    assert "warning" not in quiet.stderr
    assert parse_json(quiet.stdout)["embeddings"]["not_in_games_features"] == 0


def test_a_score_reads_the_embeddings_table_once_whatever_its_batches(
    cli, emb_home: Path, tmp_path: Path, monkeypatch
) -> None:
    """One read of the table per score, whatever its batches: the features read the
    vectors come with carries the table's check (its widths, on every row) and finds the
    games without a vector. Counted where every read runs."""
    from bggscore.warehouse.duckdb_engine import DuckDBWarehouse

    seen: list[str] = []
    fetch, batches = DuckDBWarehouse._fetch, DuckDBWarehouse._fetch_batches

    def spy_fetch(wh, sql_text, params):
        seen.append(sql_text)
        return fetch(wh, sql_text, params)

    def spy_batches(wh, sql_text, params, size):
        seen.append(sql_text)
        return batches(wh, sql_text, params, size)

    monkeypatch.setattr(DuckDBWarehouse, "_fetch", spy_fetch)
    monkeypatch.setattr(DuckDBWarehouse, "_fetch_batches", spy_batches)
    scored = cli("score", "--all-years", "--batch-size", "100", "--json")
    assert scored.exit_code == 0, scored.stderr
    data = parse_json(scored.stdout)
    assert data["games_scored"] > 300  # several batches
    reading = [s for s in seen if "bgg_description_embeddings" in s]
    assert len(reading) == 1, reading
    assert "_input_embedding" in reading[0]  # the features, with their vectors
    assert "_input_widest" in reading[0]  # and the table's widths
    assert missing_of(data)[COMPLEXITY] == {EMBEDDINGS_TABLE: [absent_game(emb_home)]}
