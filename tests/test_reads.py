"""What a command reads: the features once for all its stages, the description once a run
(and never on a no-op), and no scikit-learn in a daily run.

The statements are counted where every engine runs them (``Warehouse._fetch`` for whole
results, ``_fetch_batches`` for the streamed features read), on a copy of the demo home.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.support.output import parse_json
from tests.support.state import EMBEDDING_TABLES, QUALIFIED, execute, game_ids, read, sql

from bggscore.warehouse.base import Warehouse

TEXT_STAGE_DETECTION = "has_input_hash"  # only the text stage's detection records an md5
DESCRIPTION = re.compile(r"\bdescription\b")  # the column, not description_embedding(s)


class Spy:
    """The SQL every warehouse read of the test ran (whole results and streamed ones)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fetched: list[str] = []
        self.streamed: list[str] = []
        self.features: list[Any] = []  # the selection of each features read
        from bggscore.warehouse.duckdb_engine import DuckDBWarehouse

        fetch, batches = DuckDBWarehouse._fetch, DuckDBWarehouse._fetch_batches
        features = Warehouse.read_features

        def spy_features(wh: Warehouse, selection: Any, *args: Any, **kwargs: Any) -> Any:
            self.features.append(selection)
            return features(wh, selection, *args, **kwargs)

        monkeypatch.setattr(Warehouse, "read_features", spy_features)

        def spy_fetch(wh: Warehouse, sql: str, params: dict[str, Any]) -> pl.DataFrame:
            self.fetched.append(sql)
            return fetch(wh, sql, params)  # type: ignore[arg-type]

        def spy_batches(wh: Warehouse, sql: str, params: dict[str, Any], size: int) -> Any:
            self.streamed.append(sql)
            return batches(wh, sql, params, size)  # type: ignore[arg-type]

        monkeypatch.setattr(DuckDBWarehouse, "_fetch", spy_fetch)
        monkeypatch.setattr(DuckDBWarehouse, "_fetch_batches", spy_batches)

    def detections(self) -> list[str]:
        """The detection queries (one statement may hold several stages')."""
        return [sql for sql in self.fetched if "reason_upstream" in sql]

    def reading_description(self) -> list[str]:
        return [sql for sql in [*self.fetched, *self.streamed] if DESCRIPTION.search(sql)]

    def clear(self) -> None:
        self.fetched.clear()
        self.streamed.clear()
        self.features.clear()


def ok(cli, *args: str) -> dict[str, Any]:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return parse_json(result.stdout)


def reload(cli, home: Path, edits: dict[int, dict[str, Any]]) -> None:
    """Re-load some games through `warehouse load`, with columns replaced."""
    ids = ", ".join(str(i) for i in edits)
    rows = sql(home, f"SELECT * FROM {QUALIFIED['games_features']} WHERE game_id IN ({ids})")
    edited = pl.concat(
        [rows.filter(pl.col("game_id") == i).with_columns(**cols) for i, cols in edits.items()]
    )
    path = home.parent / "edited.parquet"
    edited.write_parquet(path)
    assert ok(cli, "warehouse", "load", str(path))["changed"] == len(edits)


def mechanics_changed(game: int) -> dict[int, dict[str, Any]]:
    return {game: {"mechanics": pl.lit(["Bribery"], dtype=pl.List(pl.String))}}


def test_a_daily_run_reads_the_features_once_and_the_description_once(
    cli, embedded_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, third = sorted(game_ids(embedded_home))[:3]
    edits = {
        **mechanics_changed(first),
        **mechanics_changed(second),
        third: {"description": pl.lit("A brand new description of trading and bluffing.")},
    }
    reload(cli, embedded_home, edits)
    spy = Spy(monkeypatch)
    result = ok(cli, "run", "--all-years")
    scored = {step["command"]: step for step in result["steps"]}
    assert scored["score"]["stages"] == {"complexity": 3, "main": 3}
    # only the game whose description changed is embedded again; all three get game embeddings
    assert scored["embed"]["stages"] == {"text-embeddings": 1, "game-embeddings": 3}
    assert len(spy.features) == 1  # one features read for the four stages
    # one query detects the four stages: game embeddings, which read the complexity the
    # score step just wrote, take the games it wrote from it, not from a second detection
    assert len(spy.detections()) == 1
    # and only it reads the description
    [reading] = spy.reading_description()
    assert "feature_hash" in reading and "games_features" in reading

    spy.clear()
    again = ok(cli, "run", "--all-years")
    assert all(step["skipped_reason"] == "no_changes" for step in again["steps"])
    assert spy.features == [] and spy.reading_description() == []  # a no-op reads neither
    assert len(spy.detections()) == 1  # and detects its four stages in one query


@pytest.mark.parametrize(
    "stages",
    [[], ["--stage", "complexity,game-embeddings"]],  # game embeddings alone in their step
    ids=["all", "two"],
)
def test_games_only_the_score_step_moved_get_game_embeddings_without_a_second_detection(
    cli, embedded_home: Path, monkeypatch: pytest.MonkeyPatch, stages: list[str]
) -> None:
    """A game whose complexity alone is rescored (its state row lost): before the run
    nothing marks its game embedding, after the score step its upstream moved."""
    game = sorted(game_ids(embedded_home))[5]
    execute(
        embedded_home,
        f"DELETE FROM {QUALIFIED['scoring_state']} WHERE stage = 'complexity' AND game_id = {game}",
    )
    before = ok(cli, "detect-changes", "--stage", "game-embeddings", "--all-years")
    assert before["stages"][0]["count"] == 0
    spy = Spy(monkeypatch)
    result = ok(cli, "run", "--all-years", *stages)
    steps = {step["command"]: step for step in result["steps"]}
    assert steps["score"]["stages"]["complexity"] == 1
    assert steps["embed"]["stages"]["game-embeddings"] == 1
    assert steps["embed"]["stages"].get("text-embeddings", 0) == 0
    # one detection of the run's stages; with text embeddings not run, one more asks which
    # games they would redo first (``held_upstream``), as before
    union, *held = spy.detections()
    assert "'game-embeddings' AS detected_stage" in union
    assert [TEXT_STAGE_DETECTION in sql for sql in held] == [True] * (len(stages) // 2)
    # what a second detection would have found is done: nothing is left for the stages run
    after = ok(cli, "detect-changes", "--stage", "all", "--all-years")
    left = {stage["stage"]: stage["count"] for stage in after["stages"]}
    assert all(left[name] == 0 for name in result["stages"]), left
    table = EMBEDDING_TABLES["game_embeddings"]
    jobs = sql(embedded_home, f"SELECT DISTINCT job_id FROM {table} WHERE game_id = {game}")
    assert steps["embed"]["job_id"] in jobs["job_id"].to_list()


def test_score_reads_the_features_once_for_both_stages(
    cli, scored_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edited, follows = sorted(game_ids(scored_home))[:2]
    # a new complexity prediction for one game: main must follow it (upstream), not redo it
    assert ok(cli, "score", "--stage", "complexity", "--game-id", str(follows))["job_id"]
    reload(cli, scored_home, mechanics_changed(edited))
    spy = Spy(monkeypatch)
    result = ok(cli, "score", "--changed-only", "--all-years")
    assert len(spy.features) == 1
    job = result["job_id"]
    landing = sql(
        scored_home,
        f"SELECT game_id FROM {QUALIFIED['ml_predictions_landing']} WHERE job_id = $job",
        {"job": job},
    )
    complexity = sql(
        scored_home,
        f"SELECT game_id FROM {QUALIFIED['complexity_predictions']} WHERE job_id = $job",
        {"job": job},
    )
    assert sorted(complexity["game_id"].to_list()) == [edited]
    assert sorted(landing["game_id"].to_list()) == sorted([edited, follows])
    state = read(scored_home, "scoring_state").filter(pl.col("stage") == "main")
    keys = dict(state.select("game_id", "upstream_key").iter_rows())
    complexity_jobs = dict(
        read(scored_home, "scoring_state")
        .filter(pl.col("stage") == "complexity")
        .select("game_id", "job_id")
        .iter_rows()
    )
    # each main row records the complexity it chained from: this job's, or the stored one
    assert keys[edited] == f"complexity:{job}"
    assert keys[follows] == f"complexity:{complexity_jobs[follows]}" != f"complexity:{job}"


def test_text_stage_confirms_a_moved_feature_hash_by_the_md5_it_reads_anyway(
    cli, embedded_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bggscore.detection import detect_stage
    from bggscore.modelset import stage_keys
    from bggscore.settings import load_settings
    from bggscore.warehouse import open_warehouse
    from bggscore.warehouse.queries import Selection

    game = min(game_ids(embedded_home))
    before = read(embedded_home, "scoring_state").filter(
        (pl.col("stage") == "text-embeddings") & (pl.col("game_id") == game)
    )
    reload(cli, embedded_home, mechanics_changed(game))
    settings = load_settings()
    keys = stage_keys(settings, ["text-embeddings"], {}, explicit=True)
    selection = Selection(game_ids=(game,))

    with open_warehouse(settings) as wh:
        spy = Spy(monkeypatch)
        found = detect_stage(
            wh, "text-embeddings", keys["text-embeddings"], selection, 10, confirm=False
        )
        # a candidate by its feature hash, found without reading the description
        assert found.game_ids == [game] and found.frame["confirm_input"].to_list() == [True]
        assert spy.reading_description() == []
        confirmed = detect_stage(wh, "text-embeddings", keys["text-embeddings"], selection, 10)
        assert confirmed.count == 0  # the md5 of the same text: no change
        assert len(spy.reading_description()) == 1  # one md5 of that game's description

    ok(cli, "score", "--changed-only", "--all-years")  # game embeddings read complexity
    result = ok(cli, "embed", "--changed-only", "--all-years")
    assert result["stages"] == {"text-embeddings": 0, "game-embeddings": 1}
    after = read(embedded_home, "scoring_state").filter(
        (pl.col("stage") == "text-embeddings") & (pl.col("game_id") == game)
    )
    # the embedding stands (same job, time and md5); the state records the new feature hash
    same = ["job_id", "score_ts", "input_hash", "model_key"]
    assert after.select(same).equals(before.select(same))
    assert after["feature_hash"].to_list() != before["feature_hash"].to_list()
    with open_warehouse(settings) as wh:
        again = detect_stage(
            wh, "text-embeddings", keys["text-embeddings"], selection, 10, confirm=False
        )
    assert again.count == 0  # no longer a candidate


NO_SKLEARN = """
import atexit, sys
def report():
    found = sorted(m for m in sys.modules if m.split(".")[0] == "sklearn")
    sys.stderr.write("SKLEARN=" + ",".join(found) + "\\n")
atexit.register(report)
sys.argv = ["bggscore", "run", "--all-years", "--json"]
from bggscore.cli.main import run
run()
"""


def test_a_daily_run_never_imports_scikit_learn(cli, embedded_home: Path) -> None:
    first, second = sorted(game_ids(embedded_home))[:2]
    edits = {
        **mechanics_changed(first),
        second: {"description": pl.lit("A new description: engine building with cards.")},
    }
    reload(cli, embedded_home, edits)
    import os

    env = {**os.environ, "BGGSCORE_HOME": str(embedded_home)}
    out = subprocess.run(
        [sys.executable, "-c", NO_SKLEARN], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    steps = {step["command"]: step for step in json.loads(out.stdout)["steps"]}
    assert steps["embed"]["stages"] == {"text-embeddings": 1, "game-embeddings": 2}
    assert "SKLEARN=\n" in out.stderr, out.stderr[-2000:]
