"""One behaviour suite, run on every engine (the way ibis tests its backends).

``warehouse`` is parametrized: ``duckdb`` is a real file under tmp_path;
``bigquery`` is the real google-cloud-bigquery client talking to bqemulator, an
in-process BigQuery emulator. Each test asserts the same state on both.

The fixture and the emulator's needs are in tests/support/warehouses.py. The production
Parquet load path (``_load_staging``) runs unchanged: the emulator accepts
``load_table_from_file`` with Parquet.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from tests.factories import (
    T0,
    make_complexity_predictions,
    make_game_embeddings,
    make_games,
    make_landing_rows,
    make_scoring_state,
)
from tests.support.warehouses import (
    bigquery_warehouse,
    duckdb_warehouse,
    engine_fixture,
    warehouse_settings,
)

from bggscore.errors import WarehouseError
from bggscore.hashing import feature_hashes
from bggscore.warehouse import base
from bggscore.warehouse.base import Warehouse, Write
from bggscore.warehouse.load import load_games, read_export
from bggscore.warehouse.queries import Selection
from bggscore.warehouse.schemas import GAMES_FEATURES, LANDING_PREDICTIONS, TABLES

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared/data/sample_games.parquet"
EVERYTHING = Selection(all_years=True, include_null_year=True)

pytestmark = [
    # bqemulator's own DuckDB calls (in its server thread) warn about an Arrow copy
    pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning"),
]


# -- engines ---------------------------------------------------------------------------
warehouse = engine_fixture()


@pytest.fixture
def ready(warehouse: Warehouse) -> Warehouse:
    warehouse.ensure_schema()
    return warehouse


def _features(warehouse: Warehouse, selection: Selection = EVERYTHING, **kw: Any) -> pl.DataFrame:
    frames = list(warehouse.read_features(selection, **kw))
    return pl.concat(frames) if frames else pl.DataFrame(schema=GAMES_FEATURES.polars_schema())


# -- schema ----------------------------------------------------------------------------
def test_ensure_schema_creates_tables_and_is_idempotent(warehouse: Warehouse) -> None:
    owned = [schema.logical for schema in TABLES.values() if schema.owned]
    assert warehouse.missing_tables(owned) == [str(warehouse.tables[t]) for t in owned]

    changed = warehouse.ensure_schema()

    assert changed and all(line.startswith("created ") for line in changed)
    assert warehouse.missing_tables() == []
    assert warehouse.ensure_schema() == []
    assert warehouse.count_rows("ml_predictions_landing") == 0


def test_missing_tables_point_to_init(warehouse: Warehouse) -> None:
    assert warehouse.missing_tables(["runs"]) == [str(warehouse.tables["runs"])]
    assert warehouse.count_rows("runs") is None
    assert warehouse.last_runs().is_empty()

    with pytest.raises(WarehouseError) as caught:
        warehouse.require_tables(["runs", "scoring_state"])

    assert "bggscore warehouse init" in str(caught.value)
    assert str(warehouse.tables["runs"]) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_feature_columns_are_the_schema(ready: Warehouse) -> None:
    columns = ready.feature_columns()
    assert list(columns) == GAMES_FEATURES.names


# -- games and hashes ------------------------------------------------------------------
def test_loaded_games_read_back_once_each_in_sorted_batches_with_types(ready: Warehouse) -> None:
    games = make_games(12)
    load_games(ready, games.sample(fraction=1.0, shuffle=True, seed=3), now=T0)

    frames = list(ready.read_features(EVERYTHING, batch_size=5))

    assert len(frames) >= 2  # streamed in batches
    for frame in frames:
        assert frame["game_id"].is_sorted()
    back = pl.concat(frames).sort("game_id")
    assert back["game_id"].to_list() == list(range(1, 13))  # every game exactly once
    assert back.schema == pl.Schema(GAMES_FEATURES.polars_schema())
    assert_frame_equal(back, games)
    assert back["last_updated"].dtype == pl.Datetime("us", "UTC")
    assert back.filter(pl.col("game_id") == 2)["categories"].to_list() == [["Card Game", "Fantasy"]]


def test_selection_filters_years_ids_and_unknown_years(ready: Warehouse) -> None:
    games = make_games(16)  # years 2019..2026 twice; games 7 and 14 have no year
    load_games(ready, games, now=T0)

    in_range = _features(ready, Selection(start_year=2020, end_year=2022))
    expected = games.filter(pl.col("year_published").is_between(2020, 2021))["game_id"]
    assert in_range["game_id"].to_list() == expected.to_list() == [2, 3, 10, 11]

    with_years = _features(ready, Selection(all_years=True))
    assert 7 not in with_years["game_id"] and len(with_years) == 14
    assert len(_features(ready)) == 16
    # --include-null-year adds the games with no year to a range, too
    range_and_unknown = Selection(start_year=2020, end_year=2022, include_null_year=True)
    assert _features(ready, range_and_unknown)["game_id"].to_list() == [2, 3, 7, 10, 11, 14]
    assert range_and_unknown.describe() == "years 2020-2021 (with unknown years)"

    by_id = _features(ready, Selection(game_ids=(14, 3, 99)))  # ids bypass the year filter
    assert by_id["game_id"].to_list() == [3, 14]

    assert ready.count_features(Selection(start_year=2020, end_year=2022)) == 4
    assert ready.count_features(Selection(all_years=True)) == 14
    assert ready.count_features(EVERYTHING) == 16
    assert ready.count_features(Selection(game_ids=())) == 0
    assert ready.existing_game_ids([1, 5, 99]) == {1, 5}
    assert ready.existing_game_ids([]) == set()


def test_landing_rows_are_one_jobs_predictions(ready: Warehouse) -> None:
    first = make_landing_rows([3, 1, 2], job_id="job-a")
    ready.write([Write("ml_predictions_landing", first)])
    later = make_landing_rows([2, 4], job_id="job-b", score_ts=T0 + timedelta(days=1))
    ready.write([Write("ml_predictions_landing", later)])

    rows = ready.landing_rows("job-a").sort("game_id")

    assert rows.columns == ["game_id", "name", *LANDING_PREDICTIONS]
    assert rows["game_id"].to_list() == [1, 2, 3]
    expected = first.select(rows.columns).sort("game_id")
    assert_frame_equal(rows, expected)
    assert ready.landing_rows("job-b")["game_id"].sort().to_list() == [2, 4]
    assert ready.landing_rows("no-such-job").is_empty()


def test_selection_min_users_rated_keeps_rated_games_only(ready: Warehouse) -> None:
    # users_rated 20, 33, 46, ... (20 + 13 * i); game 5 (72) has no count at all
    games = make_games(10, null_year_every=0).with_columns(
        pl.when(pl.col("game_id") == 5)
        .then(None)
        .otherwise(pl.col("users_rated"))
        .alias("users_rated")
    )
    load_games(ready, games, now=T0)

    rated = Selection(all_years=True, min_users_rated=46)
    assert _features(ready, rated)["game_id"].to_list() == [3, 4, 6, 7, 8, 9, 10]
    assert ready.count_features(rated) == 7
    exact = Selection(all_years=True, min_users_rated=98)  # game 7 has exactly 98
    assert _features(ready, exact)["game_id"].to_list() == [7, 8, 9, 10]
    # a minimum of 0 still leaves out the game with no count; no minimum keeps it
    assert 5 not in _features(ready, Selection(all_years=True, min_users_rated=0))["game_id"]
    assert ready.count_features(Selection(all_years=True, min_users_rated=0)) == 9
    assert ready.count_features(Selection(all_years=True)) == 10
    # with the year range too: 2019 + i % 8, so games 3..6 are 2021..2024
    both = Selection(start_year=2021, end_year=2025, min_users_rated=46)
    assert _features(ready, both)["game_id"].to_list() == [3, 4, 6]
    assert rated.describe() == "all years, users_rated >= 46"
    assert both.describe() == "years 2021-2024, users_rated >= 46"


def test_read_hashes(ready: Warehouse) -> None:
    games = make_games(6)
    load_games(ready, games, now=T0)

    everything = ready.read_hashes().sort("game_id")
    some = ready.read_hashes([2, 5, 42]).sort("game_id")

    assert everything.columns == ["game_id", "feature_hash", "last_updated"]
    assert everything["feature_hash"].to_list() == feature_hashes(games).to_list()
    assert everything["last_updated"].to_list() == [T0] * 6
    assert some["game_id"].to_list() == [2, 5]
    assert ready.read_hashes([]).is_empty()


def test_reload_moves_last_updated_only_for_changed_games(ready: Warehouse) -> None:
    games = make_games(4)
    load_games(ready, games, now=T0)
    later = T0 + timedelta(days=1)
    edited = games.with_columns(
        pl.when(pl.col("game_id") == 2)
        .then(pl.lit("A brand new description."))
        .otherwise(pl.col("description"))
        .alias("description")
    )

    result = load_games(ready, edited, now=later)

    assert (result.new, result.changed, result.unchanged) == (0, 1, 3)
    hashes = ready.read_hashes().sort("game_id")
    assert hashes["last_updated"].to_list() == [T0, later, T0, T0]
    assert _features(ready).filter(pl.col("game_id") == 2)["description"].item() == (
        "A brand new description."
    )


# -- writes ----------------------------------------------------------------------------
def test_append_is_idempotent(ready: Warehouse) -> None:
    batch = [
        Write("complexity_predictions", make_complexity_predictions([1, 2, 3])),
        Write("game_embeddings", make_game_embeddings([1, 2, 3])),
    ]
    ready.write(batch)
    ready.write(batch)  # a retried batch adds nothing
    ready.write([Write("complexity_predictions", make_complexity_predictions([3, 4]))])

    assert ready.count_rows("complexity_predictions") == 4
    assert ready.count_rows("game_embeddings") == 3
    embeddings = ready.query(
        "SELECT game_id, embedding, created_ts FROM game_embeddings ORDER BY game_id"
    )
    assert (
        embeddings["embedding"].to_list() == make_game_embeddings([1, 2, 3])["embedding"].to_list()
    )
    assert embeddings["created_ts"].dtype == pl.Datetime("us", "UTC")


def test_upsert_updates_existing_rows(ready: Warehouse) -> None:
    ready.write([Write("scoring_state", make_scoring_state([1, 2, 3], feature_hash=10), "upsert")])
    ready.write(
        [
            Write(
                "scoring_state",
                make_scoring_state([3, 4], feature_hash=20, job_id="job-2"),
                "upsert",
            )
        ]
    )

    state = ready.query("SELECT game_id, feature_hash, job_id FROM scoring_state ORDER BY game_id")
    assert state.rows() == [
        (1, 10, "job-1"),
        (2, 10, "job-1"),
        (3, 20, "job-2"),
        (4, 20, "job-2"),
    ]


def test_failed_write_changes_no_table(ready: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    games = make_games(5)
    load_games(ready, games, now=T0)
    before_games = _features(ready)
    before_hashes = ready.read_hashes().sort("game_id")
    real_upsert = ready.upsert_statements

    def upsert_then_fail(schema: Any, staged: str) -> list[str]:
        if schema.logical == "game_features_hash":  # the second table of the write
            return ["SELECT ERROR('injected failure')"]
        return real_upsert(schema, staged)

    monkeypatch.setattr(ready, "upsert_statements", upsert_then_fail)
    renamed = games.with_columns(pl.lit("Renamed").alias("name"))
    with pytest.raises(Exception, match="injected failure"):
        load_games(ready, pl.concat([renamed, make_games(2, start_id=50)]), now=T0)

    assert_frame_equal(_features(ready), before_games)
    assert_frame_equal(ready.read_hashes().sort("game_id"), before_hashes)


def test_duckdb_out_of_memory_says_what_to_raise(tmp_path: Path) -> None:
    import duckdb

    warehouse = duckdb_warehouse(tmp_path)
    warehouse.ensure_schema()
    real = warehouse.con

    class Starved:  # the connection, except that inserting runs out of buffer pool
        def execute(self, sql: str, *args: Any) -> Any:
            if sql.startswith("INSERT"):
                raise duckdb.OutOfMemoryException("could not allocate block of size 256.0 KiB")
            return real.execute(sql, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    warehouse.con = Starved()  # type: ignore[assignment]
    with pytest.raises(WarehouseError) as raised:
        load_games(warehouse, make_games(3), now=T0)
    assert "rolled back: could not allocate" in raised.value.message
    assert "BGGSCORE_WAREHOUSE__MEMORY_LIMIT_MB" in (raised.value.hint or "")
    warehouse.con = real
    assert warehouse.count_rows("games_features") == 0  # nothing half-written
    warehouse.close()


def test_run_rows_and_last_runs(ready: Warehouse) -> None:
    for index, job in enumerate(["job-a", "job-b", "job-c"]):
        started = datetime(2026, 1, 1 + index, tzinfo=timezone.utc)
        ready.write([ready.run_row(job, "score", "complexity", "running", 0, started)])
    ready.write(
        [
            ready.run_row(
                "job-c",
                "score",
                "complexity",
                "ok",
                12,
                datetime(2026, 1, 3, tzinfo=timezone.utc),
                "done",
            )
        ]
    )

    runs = ready.last_runs(limit=2)

    assert runs["job_id"].to_list() == ["job-c", "job-b"]
    assert runs.row(0, named=True)["status"] == "ok"
    assert runs.row(0, named=True)["games"] == 12
    assert runs["started_at"].dtype == pl.Datetime("us", "UTC")
    assert ready.count_rows("runs") == 3


# -- real data -------------------------------------------------------------------------
def test_real_sample_loads(ready: Warehouse) -> None:
    if not SAMPLE.is_file():
        pytest.skip(f"real sample not found at {SAMPLE} (only present beside the repository)")
    games = read_export(SAMPLE)

    result = load_games(ready, games, now=T0)

    assert result.new == 1_000
    assert ready.count_features(EVERYTHING) == 1_000
    assert len(ready.read_hashes()) == 1_000
    back = _features(ready, columns=["game_id", "mechanics", "year_published"])
    expected = games.sort("game_id").select("game_id", "mechanics", "year_published")
    assert_frame_equal(back, expected)


# -- BigQuery only: what the emulator can show about staging ----------------------------
@pytest.mark.bigquery
def test_bigquery_staging_tables_do_not_outlive_a_write(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with bigquery_warehouse(request, tmp_path) as warehouse:
        warehouse.ensure_schema()
        ml = warehouse.tables["runs"]
        client = warehouse.client  # type: ignore[attr-defined]

        def staging_tables() -> list[str]:
            tables = client.list_tables(f"{ml.project}.{ml.dataset}")
            return [t.table_id for t in tables if t.table_id.startswith("_bggscore_stage_")]

        warehouse.write([Write("scoring_state", make_scoring_state([1, 2]), "upsert")])
        assert staging_tables() == []

        monkeypatch.setattr(base, "append_new_sql", lambda *_: "SELECT ERROR('x')")
        with pytest.raises(WarehouseError):
            warehouse.write([Write("scoring_state", make_scoring_state([3]))])
        assert staging_tables() == []
        assert warehouse.count_rows("scoring_state") == 2


def test_an_upsert_repeating_a_key_is_refused_and_writes_nothing(ready: Warehouse) -> None:
    state = make_scoring_state([1, 2])
    twice = pl.concat([state, state.head(1)])
    with pytest.raises(WarehouseError, match=r"repeats a key \(stage=\w+, game_id=1\)"):
        ready.write([Write("scoring_state", twice, "upsert")])
    assert ready.count_rows("scoring_state") == 0


def test_a_warehouse_file_that_cannot_be_opened_for_writing_says_so(tmp_path: Path) -> None:
    import duckdb

    from bggscore.warehouse.duckdb_engine import open_duckdb

    def refuse(path: str) -> None:  # what DuckDB raises for a read-only file or folder
        raise duckdb.IOException(f'IO Error: Cannot open file "{path}": Permission denied')

    with pytest.raises(WarehouseError) as caught:
        open_duckdb(tmp_path / "warehouse.duckdb", 0.0, refuse)
    assert "permission denied" in str(caught.value)
    assert "opens it for writing" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_only_creating_commands_make_the_warehouse_file(tmp_path: Path) -> None:
    from bggscore.warehouse.duckdb_engine import DuckDBWarehouse

    settings = warehouse_settings(tmp_path, path=tmp_path / "typo" / "warehouse.duckdb")
    with pytest.raises(WarehouseError, match=r"no warehouse at .*bggscore warehouse init"):
        DuckDBWarehouse(settings)
    assert not (tmp_path / "typo").exists()
    DuckDBWarehouse(settings, create=True).close()
    assert (tmp_path / "typo" / "warehouse.duckdb").is_file()


def test_a_scoring_pass_leaves_the_models_their_cores_and_restores_the_engine(
    ready: Warehouse,
) -> None:
    from bggscore.machine import usable_cpus

    def threads() -> int | None:
        con = getattr(ready, "con", None)
        if con is None or not hasattr(con, "execute"):
            return None
        ((value,),) = con.execute("SELECT current_setting('threads')").fetchall()
        return int(value)

    if ready.engine != "duckdb":
        with ready.leaving_cores(1):  # nothing to leave: the warehouse computes elsewhere
            pass
        return
    before = threads()
    with ready.leaving_cores(1):
        assert threads() == max(1, usable_cpus() - 1)
        assert ready.count_features(EVERYTHING) == 0  # queries still run on what is left
    assert threads() == before
