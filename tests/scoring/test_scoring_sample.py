"""The real 1,000-game sample, scored with models trained on the demo catalogue.

The sample cannot train every model itself (all its games have 100+ ratings, so the hurdle
has one class), so the registry comes from the demo home and the sample goes into a second
DuckDB file.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from tests.support.state import MIRRORED_TYPES, column_types, read, written_counts

from bggscore.warehouse.schemas import ML_PREDICTIONS_LANDING


def test_score_the_real_sample(
    cli, demo_home: Path, sample_path: Path, tmp_path: Path, monkeypatch
) -> None:
    sample_db = tmp_path / "sample.duckdb"
    monkeypatch.setenv("BGGSCORE_WAREHOUSE__PATH", str(sample_db))
    loaded = cli("warehouse", "load", str(sample_path), "--json")
    assert loaded.exit_code == 0, loaded.stderr
    assert json.loads(loaded.stdout)["new"] == 1000

    result = cli("score", "--all-years", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    sample_ids = set(pl.read_parquet(sample_path, columns=["game_id"])["game_id"])
    assert data["games_scored"] == len(sample_ids) == 1000

    landing = read(sample_db, "ml_predictions_landing")
    assert len(landing) == 1000
    assert set(landing["game_id"]) == sample_ids
    assert column_types(sample_db, "ml_predictions_landing") == [
        (name, MIRRORED_TYPES[kind]) for name, kind in ML_PREDICTIONS_LANDING.columns
    ]
    assert landing["job_id"].unique().to_list() == [data["job_id"]]
    for column in ("predicted_complexity", "predicted_rating", "predicted_geek_rating"):
        assert landing[column].is_finite().all(), column
    assert landing["predicted_complexity"].is_between(1, 5).all()
    assert landing["predicted_geek_rating"].is_between(1, 10).all()
    assert landing["predicted_hurdle_prob"].is_between(0, 1).all()
    # real games span centuries: old ones are in sample, the newest are not
    assert set(landing["sample_status"]) == {"in_sample", "out_of_sample"}
    assert len(read(sample_db, "complexity_predictions")) == 1000
    assert len(read(sample_db, "scoring_state")) == 2000

    # the demo warehouse beside the registry is untouched
    assert set(written_counts(demo_home).values()) == {0}
