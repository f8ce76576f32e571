"""`score --workers N`: the models run in worker processes, the parent reads and writes.

What the warehouse holds afterwards is what one process writes (modulo job_id and
score_ts), for bggscore's own models and for production's pipelines; a worker that raises
or dies stops the run with one line and no half-written batch; Ctrl-C stops the pool.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from tests.faults.checks import games_of, runs, state_games_of
from tests.support.adopt import adopt, production_rows, split
from tests.support.faulty import Faulty, register_faulty
from tests.support.production import prod_code_on_path, production_frame, production_predict_games
from tests.support.state import read

from bggscore.errors import IntegrityError
from bggscore.modelset import GeekFormula, ModelSet
from bggscore.scoring.batch import Batch, Prepared, compute_batch
from bggscore.scoring.chain import RunInfo
from bggscore.scoring.pool import (
    ScoringPool,
    WorkerSpec,
    decode_batch,
    decode_prepared,
    encode_batch,
    encode_prepared,
    unread_columns,
)
from bggscore.scoring.upstream import Produced
from bggscore.stages import PANDAS_BATCH_SIZE, WORKER_BATCH_SIZE
from bggscore.tasks.score import batch_size
from bggscore.warehouse.base import Write
from bggscore.warehouse.queries import INPUT_VECTOR, INPUT_VECTOR_HASH

REPO = Path(__file__).resolve().parents[2]
BGGSCORE = [sys.executable, "-m", "bggscore"]
RUN = RunInfo("job", datetime(2026, 1, 2, tzinfo=timezone.utc), "test", "fp", 2024)
# what differs between two runs of the same models on the same games
RUN_COLUMNS = ("job_id", "score_ts")


def scored_rows(home: Path, logical: str, job_id: str) -> pl.DataFrame:
    rows = read(home, logical).filter(pl.col("job_id") == job_id)
    return rows.drop(RUN_COLUMNS).sort("game_id")


def state_rows(home: Path, jobs: dict[str, str]) -> pl.DataFrame:
    """The state table with each run's job ids written as the run's name."""
    state = read(home, "scoring_state").drop(RUN_COLUMNS)
    for job, name in jobs.items():
        state = state.with_columns(pl.col("upstream_key").str.replace_all(job, name))
    return state.sort("stage", "game_id")


def score(cli, *args: str) -> dict:
    result = cli("score", "--all-years", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_same_rows(home: Path, one: str, two: str) -> None:
    for logical in ("ml_predictions_landing", "complexity_predictions"):
        first, second = scored_rows(home, logical, one), scored_rows(home, logical, two)
        assert len(first) > 0
        assert_frame_equal(first, second)


def test_two_workers_write_what_one_process_writes(demo_home: Path, cli) -> None:
    from bggscore.registry import registry as loaded

    one = score(cli)
    state_one = state_rows(demo_home, {one["job_id"]: "run"})
    loaded.clear_cache()
    two = score(cli, "--workers", "2")
    assert not loaded._CACHE  # the workers unpickled the models, this process none
    assert two["games_scored"] == one["games_scored"] == 2940
    assert two["stages"] == one["stages"]
    assert_same_rows(demo_home, one["job_id"], two["job_id"])
    assert_frame_equal(state_rows(demo_home, {two["job_id"]: "run"}), state_one)
    assert runs(demo_home)["status"].to_list() == ["success", "success"]


def test_the_setting_runs_workers_for_score_and_run(
    demo_home: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = score(cli, "--stage", "complexity")
    monkeypatch.setenv("BGGSCORE_SCORING__WORKERS", "2")
    two = score(cli, "--stage", "complexity")
    rows = scored_rows(demo_home, "complexity_predictions", two["job_id"])
    assert_frame_equal(rows, scored_rows(demo_home, "complexity_predictions", one["job_id"]))
    result = cli("run", "--full", "--all-years", "--stage", "complexity,main", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["games_scored"] == 2940


def test_production_pipelines_in_workers_score_as_production(
    demo_home: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adopted = adopt(demo_home, tmp_path / "production")
    for command in adopted.commands:  # load the embeddings, import the registry
        result = cli(*command)
        assert result.exit_code == 0, result.stderr
    for name, value in adopted.env.items():
        monkeypatch.setenv(name, value)
    try:
        one = score(cli)
        two = score(cli, "--workers", "2")  # the workers find `src` through the code path
    finally:
        for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
            del sys.modules[name]  # the user's package, loaded through --code-path
    assert one["geek_rating_mode"] == two["geek_rating_mode"] == "model"
    assert_same_rows(demo_home, one["job_id"], two["job_id"])
    rows = pl.concat(list(production_rows(demo_home, adopted.embeddings)))
    with prod_code_on_path():
        expected = production_predict_games(production_frame(*split(rows)), adopted.models)
    landing = scored_rows(demo_home, "ml_predictions_landing", two["job_id"])
    assert landing["game_id"].to_list() == expected["game_id"].tolist()
    for column in ("predicted_hurdle_prob", "predicted_rating", "predicted_geek_rating"):
        assert np.max(np.abs(landing[column].to_numpy() - expected[column].to_numpy())) <= 1e-9


def test_main_reads_the_embeddings_complexity_read_and_shares_its_frame(
    demo_home: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bggscore.modelset import model_graph, open_settings_registry, resolve_models
    from bggscore.scoring.batch import prepare_batch
    from bggscore.scoring.upstream import join_upstream
    from bggscore.settings import load_settings
    from bggscore.stages import COMPLEXITY, EMBEDDINGS_TABLE, MAIN, SCORE_STAGES
    from bggscore.warehouse import open_warehouse
    from bggscore.warehouse.queries import Selection

    adopted = adopt(demo_home, tmp_path / "production")
    for command in adopted.commands:
        assert cli(*command).exit_code == 0
    for name, value in adopted.env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    registry = open_settings_registry(settings)
    graph = model_graph(settings, registry, {})
    stages = graph.order(list(SCORE_STAGES))
    models = resolve_models(settings, registry, stages, {}, load=False)  # registrations
    with open_warehouse(settings) as wh:
        columns = sorted({"game_id", "name", "year_published", *models.read_columns()})
        frame = next(iter(wh.read_features(Selection(all_years=True), columns, 500, True)))
        reads = []
        vectors = wh.input_embeddings
        monkeypatch.setattr(wh, "input_embeddings", lambda ids: reads.append(ids) or vectors(ids))
        prepared = prepare_batch(wh, frame, models, RUN, stages, graph)
        assert len(reads) == 1  # once a batch, for both stages
        assert prepared.subset_of == {MAIN: COMPLEXITY}
        shared = prepared.frames[COMPLEXITY]
        assert_frame_equal(prepared.frames[MAIN], shared)
        assert len(shared) == 500 and "emb_99" in shared.columns
        # what main would get reading and expanding the vectors again
        again = join_upstream(
            wh,
            shared,
            graph.upstream(MAIN),
            produced={COMPLEXITY: Produced({}, RUN.job_id)},
            expand_embeddings=True,
            inputs=graph.inputs_of(MAIN),
            embedding_width=models.embedding_width(MAIN),
        )
    assert len(reads) == 2
    assert_frame_equal(again.frame, prepared.frames[MAIN])
    key = prepared.keys[MAIN]
    assert key is not None and again.upstream_key is not None
    assert key.to_list() == again.upstream_key.to_list()
    assert key.str.contains(f"{EMBEDDINGS_TABLE}:").all()
    # the stages share one pandas conversion of the batch, and score as with one each
    conversions = []
    to_pandas = pl.DataFrame.to_pandas

    def counted(self: pl.DataFrame, *args: object, **kwargs: object) -> object:
        conversions.append(self.width)
        return to_pandas(self, *args, **kwargs)

    try:
        loaded = resolve_models(settings, registry, stages, {})
        apart = Prepared(prepared.rows, dict(prepared.frames), dict(prepared.keys))
        expected = compute_batch(apart, loaded, RUN, stages)
        assert len(conversions) == 0  # counting starts below
        monkeypatch.setattr(pl.DataFrame, "to_pandas", counted)
        batch = compute_batch(prepared, loaded, RUN, stages)
    finally:
        for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
            del sys.modules[name]
    assert len(conversions) == 1
    assert batch.landing is not None and expected.landing is not None
    assert_frame_equal(batch.landing, expected.landing)


def test_intervals_in_workers_are_those_of_one_process(
    demo_home: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adopted = adopt(demo_home, tmp_path / "production")
    for command in adopted.commands:
        assert cli(*command).exit_code == 0
    for name, value in adopted.env.items():
        monkeypatch.setenv(name, value)
    try:
        one = score(cli, "--intervals", "50")
        two = score(cli, "--intervals", "50", "--workers", "2")
    finally:
        for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
            del sys.modules[name]
    landing = scored_rows(demo_home, "ml_predictions_landing", two["job_id"])
    assert landing["rating_upper_90"].is_not_null().all()
    assert_same_rows(demo_home, one["job_id"], two["job_id"])  # seeded per game


def test_a_model_error_in_a_worker_is_the_same_one_line(demo_home: Path, cli) -> None:
    game = int(read(demo_home, "games_features")["game_id"][1500])
    ref = register_faulty(demo_home, game, "raise")
    one = cli("score", "--all-years", "--model", f"complexity={ref}")
    two = cli("score", "--all-years", "--model", f"complexity={ref}", "--workers", "2")
    assert one.exit_code == two.exit_code == 1
    assert errors(two.stderr) == errors(one.stderr)
    [line] = errors(two.stderr)
    assert f"{ref} failed to predict (ValueError: cannot score game {game})" in line


@pytest.mark.parametrize(
    ("how", "message"),
    [
        (
            "length",
            r"error: a scoring worker failed on batch \d+ \(368 games, ids \d+\.\.\d+\): "
            r"ValueError: cannot reshape .* rerun with --workers 1 --debug",
        ),
        (
            "die",
            r"error: bggscore-worker-\d stopped \(killed by SIGKILL, perhaps out of memory\) "
            r"on batch \d+ \(368 games, ids \d+\.\.\d+\); nothing of that batch was written",
        ),
    ],
)
def test_a_failing_or_dying_worker_stops_the_run_with_whole_batches(
    demo_home: Path, cli, how: str, message: str
) -> None:
    game = int(read(demo_home, "games_features")["game_id"][1500])
    ref = register_faulty(demo_home, game, how)
    result = cli("score", "--all-years", "--model", f"complexity={ref}", "--workers", "2")
    assert result.exit_code == 1
    [line] = errors(result.stderr)
    assert re.search(message, line), line
    assert "Traceback" not in result.stderr
    [run] = runs(demo_home).to_dicts()
    assert run["status"] == "failed"
    job = run["job_id"]
    for stage, logical in (
        ("complexity", "complexity_predictions"),
        ("main", "ml_predictions_landing"),
    ):
        written = games_of(demo_home, logical, job)
        assert written == state_games_of(demo_home, stage, job)  # rows and state together
        assert game not in written
        assert len(written) % 368 == 0  # whole batches (2,940 games: 368 a batch)


@pytest.mark.parametrize("after", [0.0, 4.0], ids=["starting", "computing"])
def test_ctrl_c_stops_the_workers(demo_home: Path, after: float) -> None:
    ref = register_faulty(demo_home, 0, "sleep", seconds=5.0)  # outlives the checks below
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    proc = subprocess.Popen(
        [*BGGSCORE, "score", "--all-years", "--workers", "2", "--model", f"complexity={ref}"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        workers: list[int] = []
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = [p for p in children(proc.pid) if b"spawn_main" in cmdline(p)]
        assert len(workers) == 2, "the workers never started"
        time.sleep(after)  # 0: while they import and load the models
        everyone = children(proc.pid)  # the workers and multiprocessing's resource tracker
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    # 130 as the CLI exits; -SIGINT too while the process itself starts: Python then ends it
    # by SIGINT after the CLI's own exit (main does the same, without workers)
    assert proc.returncode in ((130, -signal.SIGINT) if after == 0 else (130,)), stderr
    [line] = errors(stderr)
    assert line == "error: interrupted; committed batches are kept, rerun to finish"
    assert "Traceback" not in stderr, stderr
    time.sleep(0.5)
    assert not [pid for pid in everyone if alive(pid)]


def test_leaving_the_pool_on_an_error_stops_its_workers_at_once(demo_home: Path) -> None:
    import multiprocessing

    from bggscore.registry import open_registry

    registry = open_registry(str(demo_home / "registry"), demo_home)
    models = ModelSet({"complexity": registry.load("complexity", "complexity")}, None)
    spec = WorkerSpec.of(None, demo_home, models, ["complexity"], 0, 2)
    with pytest.raises(KeyboardInterrupt), ScoringPool(spec, 2):
        assert len(multiprocessing.active_children()) == 2
        raise KeyboardInterrupt
    assert multiprocessing.active_children() == []


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3]
    except OSError:
        return False


@pytest.mark.parametrize("value", ["0", "-1", "65"])
def test_workers_out_of_range_is_a_usage_error(cli, value: str) -> None:
    for command in ("score", "run"):
        result = cli(command, "--workers", value)
        assert result.exit_code == 2
        assert f"--workers {value}: give a number of processes from 1 to 64" in result.stderr


def test_workers_setting_out_of_range_is_a_config_error(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BGGSCORE_SCORING__WORKERS", "0")
    result = cli("score", "--all-years")
    assert result.exit_code == 2
    assert "scoring.workers" in result.stderr


def test_batches_are_small_for_workers_and_pandas_models(demo_home: Path) -> None:
    from bggscore.registry import open_registry

    registry = open_registry(str(demo_home / "registry"), demo_home)
    own = ModelSet({"complexity": registry.load("complexity", "complexity")}, None)
    ref = register_faulty(demo_home, 1, "raise")
    pandas = ModelSet({"complexity": registry.load(ref, "complexity")}, None)
    assert batch_size(122_880, False, own, 500_000, 1) == 122_880
    assert batch_size(122_880, False, pandas, 500_000, 1) == PANDAS_BATCH_SIZE
    assert batch_size(122_880, False, own, 500_000, 2) == WORKER_BATCH_SIZE
    assert batch_size(122_880, False, pandas, 500_000, 2) == WORKER_BATCH_SIZE
    assert batch_size(122_880, False, own, 2_940, 2) == 368  # 8 batches: 4 per worker
    assert batch_size(100, False, own, 500_000, 2) == 100  # a smaller default is kept
    assert batch_size(122_880, False, own, 1, 4) == 1
    # what the user gave is what they get
    assert batch_size(122_880, True, pandas, 500_000, 2) == 122_880


def test_batches_cross_as_arrow_and_come_back_equal() -> None:
    frame = pl.DataFrame(
        {
            "game_id": [3, 1],
            "categories": [["a"], None],
            "score_ts": [RUN.score_ts, None],
            "emb_0": [0.1, None],
        }
    )
    key = pl.Series("upstream_key", ["complexity:job", "complexity:job"])
    prepared = Prepared(3, {"complexity": frame, "main": frame.head(1)}, {"complexity": key})
    prepared.keys["main"] = None
    prepared.waiting = {"main": {"complexity": [2]}}
    header, buffers = encode_prepared(prepared)
    back = decode_prepared(header, [bytes(b) for b in buffers])
    assert back.rows == 3 and back.waiting == prepared.waiting
    assert_frame_equal(back.frames["complexity"], frame)
    assert_frame_equal(back.frames["main"], frame.head(1))
    assert back.keys["main"] is None
    assert back.keys["complexity"] is not None
    assert back.keys["complexity"].to_list() == key.to_list()
    # a stage's frame that is an earlier one's rows travels as its game ids only
    subset = Prepared(3, {"complexity": frame, "main": frame.tail(1)}, {"main": key.tail(1)})
    subset.subset_of = {"main": "complexity"}
    header, buffers = encode_prepared(subset)
    assert header["subset_of"] == {"main": "complexity"}
    assert len(buffers[1]) < len(buffers[0])
    back = decode_prepared(header, [bytes(b) for b in buffers])
    assert back.subset_of == {"main": "complexity"}
    assert_frame_equal(back.frames["main"], frame.tail(1))
    assert back.keys["main"] is not None and back.keys["main"].to_list() == ["complexity:job"]
    subset.frames["main"], subset.keys["main"] = frame, key  # every row: the very frame
    header, buffers = encode_prepared(subset)
    back = decode_prepared(header, [bytes(b) for b in buffers])
    assert back.frames["main"] is back.frames["complexity"]
    # a column no model reads stays behind
    header, buffers = encode_prepared(prepared, frozenset({"categories"}))
    back = decode_prepared(header, [bytes(b) for b in buffers])
    assert back.frames["complexity"].columns == ["game_id", "score_ts", "emb_0"]
    landing = frame.select("game_id")
    batch = Batch([Write("x", frame), Write("ml_predictions_landing", landing)], {"main": [3]}, 3)
    batch.landing = landing
    header, buffers = encode_batch(batch)
    again = decode_batch(header, [bytes(b) for b in buffers])
    assert again.landing is again.writes[1].frame
    assert [w.logical for w in again.writes] == ["x", "ml_predictions_landing"]
    assert_frame_equal(again.writes[0].frame, frame)


def test_the_embedding_list_stays_behind_only_when_no_model_reads_it(demo_home: Path) -> None:
    from bggscore.registry import LoadedModel, open_registry

    registry = open_registry(str(demo_home / "registry"), demo_home)
    emb = registry.register(
        "rating", "emb", Faulty(1, "raise"), signature=["game_id", "emb_0", "emb_1"]
    )
    listed = registry.register(
        "rating", "listed", Faulty(1, "raise"), signature=["game_id", "description_embedding"]
    )
    columns = ["game_id", "emb_0", "description_embedding", "description_embedding_right"]
    by_columns = ModelSet({"rating": LoadedModel(emb, None)}, None)
    assert unread_columns(by_columns, columns) == {
        "description_embedding",
        "description_embedding_right",
    }
    by_list = ModelSet({"rating": LoadedModel(listed, None)}, None)
    assert unread_columns(by_list, columns) == frozenset()
    # the embeddings table's vector as the features read brought it: no model's input
    read = [*columns, INPUT_VECTOR, INPUT_VECTOR_HASH]
    assert unread_columns(by_list, read) == {INPUT_VECTOR, INPUT_VECTOR_HASH}


def test_a_worker_loads_only_the_artifact_the_parent_checked(demo_home: Path) -> None:
    from bggscore.registry import clear_cache, open_registry

    registry = open_registry(str(demo_home / "registry"), demo_home)
    loaded = registry.load("complexity", "complexity")
    models = ModelSet({"complexity": loaded}, GeekFormula(5.5, 2000.0))
    spec = WorkerSpec.of(None, demo_home, models, ["complexity"], 0, 2)
    assert spec.load().models["complexity"].registration == loaded.registration
    label, _ = spec.refs["complexity"]
    changed = WorkerSpec.of(None, demo_home, models, ["complexity"], 0, 2)
    changed.refs["complexity"] = (label, "0" * 64)
    with pytest.raises(IntegrityError, match="changed in the registry"):
        changed.load()
    folder = (
        demo_home / "registry" / "complexity" / "complexity" / f"v{loaded.registration.version}"
    )
    artifact = folder / loaded.registration.artifact
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    clear_cache()  # a worker is a fresh process: nothing loaded yet
    with pytest.raises(IntegrityError):
        spec.load()
