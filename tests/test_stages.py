"""The stage graph: one definition of the stages drives order, detection and the CLI.

Unit tests of bggscore.stages (order, model-derived edges, cycles, a toy fifth stage),
an AST scan that the stage identifiers and shared defaults are written in one src module
only, and an end-to-end run where a complexity model reads description embeddings
(``emb_*``): text embeddings then run first, and a new description embedding makes
complexity and main rescore with reason ``upstream``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.support.output import parse_json
from tests.support.state import read, sql

from bggscore.detection import detect_stage
from bggscore.errors import ConfigError
from bggscore.stages import (
    COMPLEXITY,
    GAME_EMBEDDINGS,
    GRAPH,
    MAIN,
    STAGES,
    TEXT_EMBEDDINGS,
    Stage,
    StageCycleError,
    StageGraph,
)
from bggscore.tasks.run import STEPS, steps
from bggscore.warehouse.detection_sql import detection_sql

SRC = Path(__file__).resolve().parents[1] / "src" / "bggscore"
DEFAULTS_MODULE = SRC / "stages.py"


# -- the graph as data --------------------------------------------------------------------------
def test_default_order_and_commands() -> None:
    assert GRAPH.names == (COMPLEXITY, MAIN, TEXT_EMBEDDINGS, GAME_EMBEDDINGS)
    assert GRAPH.for_command("score") == (COMPLEXITY, MAIN)
    assert GRAPH.for_command("embed") == (TEXT_EMBEDDINGS, GAME_EMBEDDINGS)
    assert GRAPH.upstream(GAME_EMBEDDINGS) == (COMPLEXITY, TEXT_EMBEDDINGS)
    assert steps(GRAPH, list(GRAPH.names)) == [
        ("score", [COMPLEXITY, MAIN]),
        ("embed", [TEXT_EMBEDDINGS, GAME_EMBEDDINGS]),
    ]


def test_every_stage_names_a_command_run_knows() -> None:
    assert {stage.command for stage in STAGES} <= set(STEPS)


def test_tables_follow_from_the_stages() -> None:
    assert GRAPH.tables([MAIN]) == [
        "games_features",
        "game_features_hash",
        "complexity_predictions",  # main reads complexity
        "ml_predictions_landing",
        "scoring_state",
        "runs",
    ]


def test_a_model_reading_emb_columns_puts_text_embeddings_first() -> None:
    graph = GRAPH.with_model_inputs({"complexity complexity-v2026:3": ["emb_0", "emb_99"]})
    assert graph.upstream(COMPLEXITY) == (TEXT_EMBEDDINGS,)
    assert graph.names == (TEXT_EMBEDDINGS, COMPLEXITY, MAIN, GAME_EMBEDDINGS)
    assert steps(graph, list(graph.names)) == [
        ("embed", [TEXT_EMBEDDINGS]),
        ("score", [COMPLEXITY, MAIN]),
        ("embed", [GAME_EMBEDDINGS]),
    ]
    # the upstream is part of what complexity's detection compares
    assert "@up_0" in detection_sql(COMPLEXITY, graph)
    assert "@up_0" not in detection_sql(COMPLEXITY)


def test_columns_no_stage_provides_add_no_edge() -> None:
    # the geek model reads main's own chain columns: computed inside the stage, not an edge
    graph = GRAPH.with_model_inputs(
        {"geek_rating geek:1": ["predicted_rating", "predicted_log_users_rated", "min_age"]}
    )
    assert graph.upstream(MAIN) == (COMPLEXITY,)


def test_a_model_reading_its_own_stage_is_one_error_naming_it() -> None:
    with pytest.raises(StageCycleError) as caught:
        GRAPH.with_model_inputs({"complexity looped:2": ["predicted_complexity"]})
    assert "complexity looped:2" in caught.value.message
    # a choice of models that cannot run together: a settings problem, nothing is done
    assert isinstance(caught.value, ConfigError) and caught.value.exit_code == 2


def test_a_cycle_through_two_stages_names_both_models() -> None:
    with pytest.raises(StageCycleError) as caught:
        GRAPH.with_model_inputs(
            {
                "complexity reads-text:1": ["emb_3"],
                "text_embeddings reads-complexity:1": ["predicted_complexity"],
            }
        )
    message = caught.value.message
    assert "complexity reads-text:1" in message and "text_embeddings reads-complexity:1" in message
    # only the models on the cycle: main's and game-embeddings' static edges are not named
    assert "main" not in message and "game-embeddings" not in message


def test_a_toy_fifth_stage_is_one_entry(tmp_path: Path) -> None:
    """Adding a stage is one entry: order, steps and the detection SQL follow from it."""
    toy = Stage(
        "price",
        "score",
        ("price",),
        ("price_predictions",),
        provides=("predicted_price",),
        reads=(MAIN,),
        help="a toy stage",
    )
    graph = GRAPH.with_stage(toy)
    assert graph.names == (COMPLEXITY, MAIN, TEXT_EMBEDDINGS, GAME_EMBEDDINGS, "price")
    assert graph.upstream("price") == (MAIN,)
    # a game-embeddings model reading the toy's output moves the toy before it
    derived = graph.with_model_inputs({"game_embeddings g:1": ["predicted_price"]})
    assert derived.names == (COMPLEXITY, MAIN, TEXT_EMBEDDINGS, "price", GAME_EMBEDDINGS)
    assert steps(derived, list(derived.names)) == [
        ("score", [COMPLEXITY, MAIN]),
        ("embed", [TEXT_EMBEDDINGS]),
        ("score", ["price"]),
        ("embed", [GAME_EMBEDDINGS]),
    ]
    # and detection asks for the toy's state and its upstream by parameter
    sql_text = detection_sql("price", graph)
    assert "@up_0" in sql_text and "@stage" in sql_text


def test_the_toy_stage_is_detected_on_a_real_warehouse(tmp_path: Path, monkeypatch) -> None:
    from tests.factories import make_games

    from bggscore.settings import load_settings
    from bggscore.warehouse import open_warehouse
    from bggscore.warehouse.load import load_games
    from bggscore.warehouse.queries import Selection

    monkeypatch.setenv("BGGSCORE_HOME", str(tmp_path / "home"))
    toy = Stage("price", "score", ("price",), (), reads=(MAIN,))
    graph = GRAPH.with_stage(toy)
    with open_warehouse(load_settings(), create=True) as wh:
        wh.ensure_schema()
        load_games(wh, make_games(5))
        found = detect_stage(wh, "price", "price=p:1", Selection(all_years=True), graph=graph)
    assert found.count == 5 and found.by_reason()["new"] == 5


def test_unknown_upstream_and_repeated_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        StageGraph((*STAGES, Stage("x", "score", ("x",), (), reads=("nope",))))
    with pytest.raises(ValueError, match="repeat"):
        StageGraph((*STAGES, STAGES[0]))


# -- one place for the identifiers and the defaults --------------------------------------------
STAGE_IDS = {"text-embeddings", "game-embeddings", "embeddings-table"}  # and the input
STAGE_NAMES = {COMPLEXITY, MAIN, *STAGE_IDS}
DEFAULT_NUMBERS = {2024, 2029, 50_000}
# the same number, meaning something else, said where it is
ALLOWED_NUMBERS = {("embeddings/text.py", "max_vocab")}


def _allowed(tree: ast.AST, rel: str) -> set[int]:
    """ids of the constants that are defaults of an allowed parameter."""
    allowed = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = fn.args.args[len(fn.args.args) - len(fn.args.defaults) :]
            for arg, default in zip(args, fn.args.defaults, strict=True):
                if (rel, arg.arg) in ALLOWED_NUMBERS:
                    allowed.add(id(default))
    return allowed


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    rel = str(path.relative_to(SRC))
    allowed = _allowed(tree, rel)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if any(stage in node.value for stage in STAGE_IDS):
                found.append(f"{rel}:{node.lineno}: stage identifier in {node.value!r}")
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            if node.value in DEFAULT_NUMBERS and id(node) not in allowed:
                found.append(f"{rel}:{node.lineno}: default {node.value}")
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            names = {
                e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in STAGE_NAMES
            }
            if len(names) >= 2:
                found.append(f"{rel}:{node.lineno}: a stage list {sorted(names)}")
    return found


def test_stage_identifiers_and_defaults_live_in_one_module() -> None:
    offences = [
        line
        for path in sorted(SRC.rglob("*.py"))
        if path != DEFAULTS_MODULE
        for line in _offences(path)
    ]
    assert not offences, "\n".join(offences)
    # and the scan does see them where they are
    assert len(_offences(DEFAULTS_MODULE)) >= 5


# -- end to end: a complexity model that reads description embeddings -------------------------
def _register_embedding_complexity(home: Path) -> str:
    """A complexity model whose inputs include emb_0..emb_7, trained on this home's
    stored description embeddings, registered under its own name."""
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
    text = sql(
        home, "SELECT game_id, embedding AS description_embedding FROM raw.description_embeddings"
    )
    rows = expand_embedding(games.join(text, on="game_id"))
    chain = tuple(f"emb_{i}" for i in range(8))
    pipeline = Pipeline(
        [
            ("features", FeatureBuilder(chain_inputs=chain)),
            ("scale", MaxAbsScaler()),
            ("model", SparseBayesianRegressor(kind="ridge")),
        ]
    ).fit(rows, OUTCOMES["complexity"].target_values(rows).to_numpy())
    registry = open_registry(str(home / "registry"), home)
    registration = registry.register(
        "complexity",
        "complexity-emb",
        compile_pipeline(pipeline),
        signature=signature(pipeline),
        output=OUTCOMES["complexity"].output(),
        training={"test_through": 2024},
    )
    assert {c.name for c in registration.signature} >= set(chain)
    return registration.name


def test_a_model_reading_emb_runs_text_first_and_rescores_on_a_new_embedding(
    cli, embedded_home: Path, monkeypatch
) -> None:
    name = _register_embedding_complexity(embedded_home)
    monkeypatch.setenv("BGGSCORE_MODELS__COMPLEXITY", name)
    monkeypatch.setenv("BGGSCORE_FEATURES__EMBEDDINGS_TABLE", "bggscore")  # the text stage's

    run = cli("run", "--all-years", "--json")
    assert run.exit_code == 0, run.stderr
    data = parse_json(run.stdout)
    assert data["stages"] == [TEXT_EMBEDDINGS, COMPLEXITY, MAIN, GAME_EMBEDDINGS]
    assert [(s["command"], list(s["stages"])) for s in data["steps"]] == [
        ("embed", [TEXT_EMBEDDINGS]),
        ("score", [COMPLEXITY, MAIN]),
        ("embed", [GAME_EMBEDDINGS]),
    ]
    # the new model scored every game, recording which description embedding it read
    state = read(embedded_home, "scoring_state")
    complexity = state.filter(pl.col("stage") == COMPLEXITY)
    text = state.filter(pl.col("stage") == TEXT_EMBEDDINGS).select("game_id", "job_id")
    joined = complexity.join(text, on="game_id", suffix="_text")
    assert len(joined) == len(complexity) > 0
    assert (joined["upstream_key"] == "text-embeddings:" + joined["job_id_text"]).all()

    again = parse_json(cli("run", "--all-years", "--json").stdout)
    assert again["games_total"] == 0  # converged

    # a new description embedding for one game: complexity, then main, follow (upstream)
    game = int(complexity["game_id"][0])
    embed = cli("embed", "--kind", "text", "--game-id", str(game), "--json")
    assert embed.exit_code == 0, embed.stderr
    detected = parse_json(cli("detect-changes", "--all-years", "--json").stdout)
    by_stage = {s["stage"]: s for s in detected["stages"]}
    assert [s["stage"] for s in detected["stages"]][:3] == [TEXT_EMBEDDINGS, COMPLEXITY, MAIN]
    for stage in (COMPLEXITY, MAIN):
        assert by_stage[stage]["game_ids"] == [game], stage
        assert by_stage[stage]["by_reason"]["upstream"] == 1, stage
    explained = parse_json(
        cli("detect-changes", "--explain", str(game), "--stage", COMPLEXITY, "--json").stdout
    )
    assert explained["stages"][0]["reasons"] == ["upstream"]


def test_games_without_an_upstream_output_wait_and_are_reported(
    cli, embedded_home: Path, monkeypatch
) -> None:
    name = _register_embedding_complexity(embedded_home)
    monkeypatch.setenv("BGGSCORE_MODELS__COMPLEXITY", name)
    monkeypatch.setenv("BGGSCORE_FEATURES__EMBEDDINGS_TABLE", "bggscore")
    # two games lose their description embedding state: complexity cannot read them
    ids = sql(
        embedded_home,
        "SELECT game_id FROM raw.bggscore_scoring_state "
        "WHERE stage = 'text-embeddings' ORDER BY game_id LIMIT 2",
    )["game_id"].to_list()
    from tests.support.state import execute

    execute(
        embedded_home,
        "DELETE FROM raw.bggscore_scoring_state WHERE stage = 'text-embeddings' "
        f"AND game_id IN ({', '.join(str(i) for i in ids)})",
    )
    before = read(embedded_home, "complexity_predictions").height
    result = cli("score", "--all-years", "--json")
    assert result.exit_code == 0, result.stderr
    data = parse_json(result.stdout)
    waiting = {(w["stage"], w["waits_for"]): w for w in data["waiting_on"]}
    assert waiting[(COMPLEXITY, TEXT_EMBEDDINGS)]["game_ids"] == sorted(ids)
    assert waiting[(COMPLEXITY, TEXT_EMBEDDINGS)]["count"] == 2
    [line] = [x for x in result.stderr.splitlines() if "warning:" in x]
    assert "complexity: 2 games left out, waiting (2 for text-embeddings)" in line
    assert "bggscore embed --kind text --changed-only" in line
    written = read(embedded_home, "complexity_predictions").height - before
    assert written == data["stages"][COMPLEXITY] == data["games_scored"]
    scored = set(
        read(embedded_home, "complexity_predictions")
        .filter(pl.col("job_id") == data["job_id"])["game_id"]
        .to_list()
    )
    assert not scored & set(ids)
    assert np.isfinite(
        read(embedded_home, "complexity_predictions")["predicted_complexity"].to_numpy()
    ).all()


def test_a_cycle_stops_every_command_alike(cli, embedded_home: Path, monkeypatch) -> None:
    """The graph comes from every stage's models, so `score` refuses a cycle through the
    text stage as `run` and `detect-changes` do: one line, exit 2, nothing written."""
    from bggscore.registry import open_registry

    name = _register_embedding_complexity(embedded_home)
    registry = open_registry(str(embedded_home / "registry"), embedded_home)
    text = registry.load("text_embeddings", "text_embeddings")
    registry.register(
        "text_embeddings",
        "text-reads-complexity",
        text.model,
        signature=[{"name": "predicted_complexity", "dtype": "FLOAT64", "source": "chain"}],
    )
    monkeypatch.setenv("BGGSCORE_MODELS__COMPLEXITY", name)
    monkeypatch.setenv("BGGSCORE_MODELS__TEXT_EMBEDDINGS", "text-reads-complexity")
    monkeypatch.setenv("BGGSCORE_FEATURES__EMBEDDINGS_TABLE", "bggscore")  # through the text
    before = read(embedded_home, "complexity_predictions").height
    for args in (("score", "--all-years"), ("run",), ("detect-changes",), ("embed",)):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert "complexity-emb" in line and "text-reads-complexity" in line, line
    assert read(embedded_home, "complexity_predictions").height == before


def test_explain_is_a_versioned_document(cli, embedded_home: Path) -> None:
    game = str(min(read(embedded_home, "games_features")["game_id"].to_list()))
    data = parse_json(cli("detect-changes", "--explain", game, "--json").stdout)
    assert data["schema_version"] == 1 and data["command"] == "detect-changes"
    assert data["changed"] is False and data["game_id"] == int(game)


def test_run_with_every_game_waiting_says_so(cli, demo_home: Path) -> None:
    """`run --stage main` on a home never scored: main waits on complexity for every game."""
    result = cli("run", "--stage", "main", "--json")
    assert result.exit_code == 0, result.stderr
    data = parse_json(result.stdout)
    assert data["skipped_reason"] == "waiting_on_upstream"
    assert data["waiting_on"][0]["waits_for"] == COMPLEXITY


def test_a_full_rescore_leaves_out_games_an_upstream_stage_must_redo(
    cli, embedded_home: Path
) -> None:
    """`embed --kind game` (not --changed-only) on games whose complexity is out of date:
    they wait for complexity instead of being embedded from the stale prediction."""
    from tests.support.state import execute

    games = sorted(read(embedded_home, "games_features")["game_id"].to_list())[:3]
    # a moved feature hash: complexity (and the others) must rescore these three
    execute(
        embedded_home,
        "UPDATE staging.game_features_hash SET feature_hash = feature_hash + 1, "
        f"last_updated = now() WHERE game_id IN ({', '.join(str(g) for g in games)})",
    )
    before = sql(embedded_home, "SELECT * FROM raw.game_embeddings").height
    result = cli("embed", "--kind", "game", "--all-years", "--json")
    assert result.exit_code == 0, result.stderr
    data = parse_json(result.stdout)
    [item] = [w for w in data["waiting_on"] if w["waits_for"] == COMPLEXITY]
    assert item["stage"] == GAME_EMBEDDINGS and item["game_ids"] == games
    written = sql(embedded_home, "SELECT * FROM raw.game_embeddings").height - before
    assert written == data["games_embedded"]["game"] > 0
