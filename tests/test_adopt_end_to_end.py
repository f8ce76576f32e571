"""#14's "done when", as a new user from the production system would go: on the real sample,
with a registry in production's layout (five pipelines of production's shape reading emb_*),
load the description embeddings, import the registry with its code path, name the -v2026
models, and score. Landing must equal production's /predict_games logic computed directly
with pandas on the same rows."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from tests.support.production import (
    MODEL_TYPES,
    PROD_CODE,
    production_frame,
    production_predict_games,
)
from tests.support.state import read

POINT_COLUMNS = (
    "predicted_hurdle_prob",
    "predicted_complexity",
    "predicted_rating",
    "predicted_users_rated",
    "predicted_geek_rating",
)
INTERVAL_COLUMNS = tuple(
    f"{outcome}_{bound}_90"
    for outcome in ("complexity", "rating", "users_rated", "geek_rating")
    for bound in ("lower", "upper")
)


def as_json(outcome: Any) -> dict[str, Any]:
    assert outcome.exit_code == 0, outcome.stderr + outcome.stdout
    return json.loads(outcome.stdout)


@pytest.fixture
def adopted(
    cli: Any,
    home: Path,
    sample_path: Path,
    production_registry: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, Any]]:
    embeddings = tmp_path / "emb.parquet"
    production_registry.embeddings.write_parquet(embeddings)
    source = tmp_path / "registered"
    shutil.copytree(production_registry.root, source)
    as_json(cli("warehouse", "load", str(sample_path), "--json"))
    as_json(cli("warehouse", "load", "--embeddings", str(embeddings), "--json"))
    imported = as_json(
        cli("models", "import", str(source), "--code-path", str(PROD_CODE), "--json")
    )
    for model_type in MODEL_TYPES:
        monkeypatch.setenv(f"BGGSCORE_MODELS__{model_type.upper()}", f"{model_type}-v2026")
    yield {
        "source": source,
        "imported": imported,
        "embeddings": embeddings,
        "production": production_registry,
    }
    for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
        del sys.modules[name]  # the user's package, loaded through --code-path


def test_score_equals_production_then_stays_quiet(cli: Any, home: Path, adopted: Any) -> None:
    production = adopted["production"]
    scored = as_json(cli("score", "--all-years", "--json"))
    assert scored["geek_rating_mode"] == "model"
    landing = read(home, "ml_predictions_landing").sort("game_id")
    expected = pl.from_pandas(
        production_predict_games(
            production_frame(production.features, production.embeddings), production.models
        )
    ).sort("game_id")
    assert landing["game_id"].to_list() == expected["game_id"].to_list()
    for column in POINT_COLUMNS:
        diff = np.abs(landing[column].to_numpy() - expected[column].to_numpy())
        assert diff.max() <= 1e-9, column
    assert set(landing["complexity_model_name"]) == {"complexity-v2026"}

    quiet = as_json(cli("score", "--changed-only", "--json"))
    assert quiet["skipped_reason"] == "no_changes"

    # one changed description embedding: exactly that game, upstream, for complexity and main
    changed_id = int(production.embeddings["game_id"][0])
    vectors = production.embeddings.with_columns(
        pl.when(pl.col("game_id") == changed_id)
        .then(pl.col("embedding").list.eval(pl.element() + 0.5))
        .otherwise(pl.col("embedding"))
        .alias("embedding")
    )
    vectors.write_parquet(adopted["embeddings"])
    as_json(cli("warehouse", "load", "--embeddings", str(adopted["embeddings"]), "--json"))
    detected = as_json(cli("detect-changes", "--all-years", "--json"))
    by_stage = {s["stage"]: s for s in detected["stages"]}
    for stage in ("complexity", "main"):
        assert by_stage[stage]["game_ids"] == [changed_id]
        assert by_stage[stage]["by_reason"]["upstream"] == 1
    rescored = as_json(cli("score", "--changed-only", "--all-years", "--json"))
    assert rescored["stages"] == {"complexity": 1, "main": 1}

    # two identical jobs compare equal
    first = as_json(cli("score", "--all-years", "--json"))["job_id"]
    second = as_json(cli("score", "--all-years", "--json"))["job_id"]
    compared = as_json(cli("compare", first, second, "--json"))
    assert all(c["differing"] == 0 for c in compared["columns"])


def test_intervals_fill_production_columns(cli: Any, home: Path, adopted: Any) -> None:
    as_json(cli("score", "--all-years", "--intervals", "1000", "--json"))
    landing = read(home, "ml_predictions_landing")
    for column in INTERVAL_COLUMNS:
        assert landing[column].null_count() == 0, column
    for outcome in ("complexity", "rating", "geek_rating"):
        lower, upper = landing[f"{outcome}_lower_90"], landing[f"{outcome}_upper_90"]
        assert (lower <= upper).all()


def test_import_again_is_a_no_op_and_a_flipped_byte_is_refused(
    cli: Any, home: Path, adopted: Any
) -> None:
    again = as_json(
        cli("models", "import", str(adopted["source"]), "--code-path", str(PROD_CODE), "--json")
    )
    assert not again["imported"]
    verified = cli("models", "verify", "--json")
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    [pickle] = (home / "registry" / "complexity" / "complexity-v2026" / "v1").glob("*.pkl")
    data = bytearray(pickle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pickle.write_bytes(bytes(data))
    refused = cli("score", "--all-years", "--stage", "complexity")
    assert refused.exit_code == 1
    assert "sha256" in refused.stderr


def test_the_embeddings_table_is_read_once_a_command_on_the_daily_path(
    cli: Any, home: Path, adopted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On BigQuery each statement naming the table bills its whole vector column. The
    detection of every stage checks the table (widths, games without a vector) and
    carries the vectors of the games it picks to the pass that scores them."""
    from bggscore.warehouse.base import Warehouse

    reads: list[str] = []
    render = Warehouse.render

    def spy(wh: Warehouse, canonical: str, staged: Any = None) -> str:
        if "embeddings_input" in canonical:
            reads.append(canonical)
        return render(wh, canonical, staged)

    monkeypatch.setattr(Warehouse, "render", spy)

    def count(*args: str) -> tuple[int, dict[str, Any]]:
        reads.clear()
        document = as_json(cli(*args, "--json"))
        return len(reads), document

    production = adopted["production"]

    def change(game_id: int) -> None:  # one game's description embedding moves
        vectors = production.embeddings.filter(pl.col("game_id") == game_id).with_columns(
            pl.col("embedding").list.eval(pl.element() + 0.5)
        )
        vectors.write_parquet(adopted["embeddings"])
        as_json(cli("warehouse", "load", "--embeddings", str(adopted["embeddings"]), "--json"))

    assert count("score", "--all-years")[0] == 1  # the features read checks the table too
    assert count("score", "--changed-only", "--all-years")[0] == 1  # a no-op: detection
    assert count("detect-changes", "--all-years")[0] == 1
    run = ("run", "--all-years", "--stage", "complexity,main")
    assert count(*run)[0] == 1
    first, second = (int(i) for i in production.embeddings["game_id"][:2])
    change(first)
    reads_, scored = count("score", "--changed-only", "--all-years")
    assert (reads_, scored["stages"]) == (1, {"complexity": 1, "main": 1})
    # with the vectors carried, the numbers a pass reading them itself gives
    again = as_json(cli("score", "--game-id", str(first), "--json"))["job_id"]
    landing = read(home, "ml_predictions_landing").filter(pl.col("game_id") == first)
    carried, read_again = (landing.filter(pl.col("job_id") == j) for j in (scored["job_id"], again))
    assert len(carried) == len(read_again) == 1
    for column in POINT_COLUMNS:
        assert carried[column].to_list() == read_again[column].to_list(), column
    change(second)
    reads_, ran = count(*run)
    assert reads_ == 1 and ran["games_scored"] == 1
    # the vectors detection carried are the table's: scoring them all again changes nothing
    assert count("score", "--changed-only", "--all-years")[1]["skipped_reason"] == "no_changes"
