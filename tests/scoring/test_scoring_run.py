"""`run_score` and its batches, through the library: idempotent writes, local copies, stages."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from tests.support.state import read, written_counts

from bggscore.console import Console
from bggscore.errors import UsageError
from bggscore.scoring.batch import score_batch
from bggscore.scoring.chain import RunInfo
from bggscore.tasks.job import new_job_id
from bggscore.tasks.score import ParquetCopy, ScoreOptions, parse_stage, run_score
from bggscore.warehouse.queries import Selection


def test_parse_stage() -> None:
    assert parse_stage("all") == ["complexity", "main"]
    assert parse_stage("complexity") == ["complexity"]
    assert parse_stage("main") == ["main"]
    # several with commas, as `run --stage` takes them: in the order they run
    assert parse_stage("main,complexity") == ["complexity", "main"]
    assert parse_stage("main, main") == ["main"]
    assert parse_stage("complexity,all") == ["complexity", "main"]
    for bad in ("main,", ",", "main,bogus", "complexity,text-embeddings"):
        with pytest.raises(UsageError):
            parse_stage(bad)
    with pytest.raises(UsageError):
        parse_stage("embeddings")


def test_job_ids_are_unique_and_sortable_by_time() -> None:
    early = datetime(2026, 1, 1, tzinfo=timezone.utc)
    late = datetime(2026, 1, 2, tzinfo=timezone.utc)
    ids = {new_job_id(early) for _ in range(50)}
    assert len(ids) == 50
    assert max(ids) < new_job_id(late)


def test_retrying_a_batch_adds_nothing(demo_home: Path) -> None:
    from bggscore.modelset import open_settings_registry, resolve_models
    from bggscore.settings import load_settings
    from bggscore.warehouse import open_warehouse

    settings = load_settings()
    models = resolve_models(settings, open_settings_registry(settings), ["complexity", "main"], {})
    columns = sorted({"game_id", "name", "year_published", *models.read_columns()})
    now = datetime.now(timezone.utc)
    run = RunInfo(new_job_id(now), now, "test", models.fingerprint(), 2024)
    with open_warehouse(settings) as wh:
        frame = next(wh.read_features(Selection(), columns, batch_size=100, with_hash=True))
        done = score_batch(wh, frame, models, run, ["complexity", "main"])
        writes, landing = done.writes, done.landing
        assert landing is not None and len(landing) == len(frame) == 100
        assert sorted(w.logical for w in writes) == [
            "complexity_predictions",
            "ml_predictions_landing",
            "scoring_state",
            "scoring_state",
        ]
        wh.write(writes)
        tables = ("ml_predictions_landing", "complexity_predictions", "scoring_state")
        first = [wh.count_rows(t) for t in tables]
        wh.write(writes)  # the retry of the same batch
        wh.write(writes)
        assert [wh.count_rows(t) for t in tables] == first == [100, 100, 200]
    counts = written_counts(demo_home)
    assert counts == {
        "ml_predictions_landing": 100,
        "complexity_predictions": 100,
        "scoring_state": 200,
        "runs": 0,
    }
    assert read(demo_home, "ml_predictions_landing")["job_id"].unique().to_list() == [run.job_id]


def test_run_score_with_no_games_writes_nothing(demo_home: Path) -> None:
    from bggscore.settings import load_settings

    options = ScoreOptions(selection=Selection(start_year=1700, end_year=1701))
    result = run_score(load_settings(), options, Console(quiet=True))
    assert (result.job_id, result.games_scored, result.skipped_reason) == (None, 0, "no_games")
    assert result.stages == {"complexity": 0, "main": 0}
    assert set(written_counts(demo_home).values()) == {0}


def test_run_score_counts_batches_and_records_the_run(demo_home: Path) -> None:
    from bggscore.settings import load_settings

    options = ScoreOptions(selection=Selection(start_year=2025, end_year=2027), batch_size=64)
    result = run_score(load_settings(), options, Console(quiet=True))
    landing = read(demo_home, "ml_predictions_landing")
    assert result.games_scored == len(landing) > 64
    assert result.stages == {"complexity": len(landing), "main": len(landing)}
    assert result.as_dict()["selection"] == "years 2025-2026"
    runs = read(demo_home, "runs")
    assert runs.select("job_id", "status", "games").rows() == [
        (result.job_id, "success", len(landing))
    ]


# -- the local parquet copy -----------------------------------------------------------------


def test_parquet_copy_appears_only_when_finished(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    copy = ParquetCopy(path)
    copy.add(pl.DataFrame({"game_id": [1, 2]}))
    copy.add(pl.DataFrame({"game_id": [3]}))
    assert not path.exists()
    copy.finish()
    assert pl.read_parquet(path)["game_id"].to_list() == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["rows.parquet"]


def test_parquet_copy_abort_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    copy = ParquetCopy(path)
    copy.add(pl.DataFrame({"game_id": [1]}))
    copy.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["rows.csv", "missing/rows.parquet"])
def test_parquet_copy_rejects_bad_paths(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError):
        ParquetCopy(tmp_path / name)
