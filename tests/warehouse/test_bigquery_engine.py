"""The BigQuery engine against a mocked client: the exact SQL, parameters, load jobs
and table definitions it sends, and how failures surface.

The behaviour suite (test_behaviour.py) runs the same engine against an emulator;
here we pin down what production BigQuery receives, including the Parquet load
path and error translation that an emulator cannot show.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.api_core import exceptions as api_exceptions
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import bigquery
from tests.factories import T0, make_game_embeddings, make_scoring_state

from bggscore.errors import WarehouseError
from bggscore.settings import Settings, WarehouseSettings
from bggscore.warehouse import bigquery_engine
from bggscore.warehouse.base import Write
from bggscore.warehouse.bigquery_engine import (
    BigQueryWarehouse,
    query_parameter,
    query_parameters,
)
from bggscore.warehouse.queries import Selection
from bggscore.warehouse.schemas import TABLES
from bggscore.warehouse.sql import Typed

ML = "bgg-predictive-models"
FEATURES = "bgg-data-warehouse"

COUNT_SQL = (
    "SELECT COUNT(*) AS n FROM `bgg-data-warehouse`.`analytics`.`games_features` AS f "
    "WHERE (@all_years OR (f.year_published >= @start_year AND f.year_published < @end_year) "
    "OR (@include_null_year AND f.year_published IS NULL)) "
    "AND (@include_null_year OR NOT f.year_published IS NULL) "
    "AND (@all_ids OR f.game_id IN UNNEST(@game_ids)) "
    "AND (@any_users_rated OR (NOT f.users_rated IS NULL AND f.users_rated >= @min_users_rated))"
)
STATE_COLUMNS = (
    "`stage`, `game_id`, `feature_hash`, `model_key`, `upstream_key`, `job_id`, `score_ts`, "
    "`input_hash`, `stage_partition`"
)
EMBEDDING_COLUMNS = (
    "`game_id`, `name`, `year_published`, `embedding`, `embedding_8`, `embedding_16`, "
    "`embedding_32`, `embedding_model`, `embedding_version`, `embedding_dim`, `algorithm`, "
    "`created_ts`, `job_id`, `coordinates_2d`, `feature_hash`"
)
STAGED = "`bgg-predictive-models`.`raw`.`_bggscore_stage_cccc_rows`"
WRITE_SCRIPT = (
    # the partitions the staged rows fall in, as script variables: constants that bound
    # the MERGE to the stages written and the duplicate check to the days written
    # (every append's bounds in one statement: each one reading the staged rows bills 10 MiB)
    "DECLARE write_bounds ARRAY<TIMESTAMP> DEFAULT (SELECT [MIN(b.`created_ts`), "
    "MAX(b.`created_ts`)] "
    f"FROM (SELECT {EMBEDDING_COLUMNS} FROM {STAGED} WHERE `_bggscore_frame` = 1) AS b);\n"
    "DECLARE since_1 TIMESTAMP DEFAULT write_bounds[OFFSET(0)];\n"
    "DECLARE until_1 TIMESTAMP DEFAULT write_bounds[OFFSET(1)];\n"
    "DECLARE partitions_0 ARRAY<INT64> DEFAULT (SELECT ARRAY_AGG(DISTINCT b.`stage_partition`) "
    f"FROM (SELECT {STATE_COLUMNS} FROM {STAGED} WHERE `_bggscore_frame` = 0) AS b);\n"
    "BEGIN TRANSACTION;\n"
    "MERGE INTO `bgg-predictive-models`.`raw`.`bggscore_scoring_state` AS t "
    f"USING (SELECT {STATE_COLUMNS} FROM {STAGED} WHERE `_bggscore_frame` = 0) AS b "
    "ON t.`stage_partition` IN UNNEST(partitions_0) "
    "AND t.`stage` = b.`stage` AND t.`game_id` = b.`game_id` "
    "WHEN MATCHED THEN UPDATE SET `feature_hash` = b.`feature_hash`, "
    "`model_key` = b.`model_key`, `upstream_key` = b.`upstream_key`, "
    "`job_id` = b.`job_id`, `score_ts` = b.`score_ts`, `input_hash` = b.`input_hash`, "
    "`stage_partition` = b.`stage_partition` "
    "WHEN NOT MATCHED THEN INSERT "
    "(`stage`, `game_id`, `feature_hash`, `model_key`, `upstream_key`, `job_id`, `score_ts`, "
    "`input_hash`, `stage_partition`) "
    "VALUES (`b`.`stage`, `b`.`game_id`, `b`.`feature_hash`, `b`.`model_key`, "
    "`b`.`upstream_key`, `b`.`job_id`, `b`.`score_ts`, `b`.`input_hash`, "
    "`b`.`stage_partition`);\n"
    "INSERT INTO `bgg-predictive-models`.`raw`.`game_embeddings` "
    "(`game_id`, `name`, `year_published`, `embedding`, `embedding_8`, `embedding_16`, "
    "`embedding_32`, `embedding_model`, `embedding_version`, `embedding_dim`, `algorithm`, "
    "`created_ts`, `job_id`, `coordinates_2d`, `feature_hash`) "
    "SELECT `b`.`game_id`, `b`.`name`, `b`.`year_published`, `b`.`embedding`, "
    "`b`.`embedding_8`, `b`.`embedding_16`, `b`.`embedding_32`, `b`.`embedding_model`, "
    "`b`.`embedding_version`, `b`.`embedding_dim`, `b`.`algorithm`, `b`.`created_ts`, "
    "`b`.`job_id`, `b`.`coordinates_2d`, `b`.`feature_hash` "
    f"FROM (SELECT {EMBEDDING_COLUMNS} FROM {STAGED} WHERE `_bggscore_frame` = 1) AS b "
    "WHERE NOT EXISTS(SELECT 1 FROM `bgg-predictive-models`.`raw`.`game_embeddings` AS t "
    "WHERE t.`created_ts` >= since_1 AND t.`created_ts` <= until_1 "
    "AND t.`job_id` = b.`job_id` AND t.`game_id` = b.`game_id`);\n"
    "COMMIT TRANSACTION;"
)
STAGING = f"{ML}.raw._bggscore_stage_cccc_rows"
CAP_FLOOR = 2**30


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path,
        warehouse=WarehouseSettings(
            engine="bigquery", features_project=FEATURES, ml_project=ML, location="EU"
        ),
    )


@pytest.fixture
def client(mocker: Any) -> Any:
    return mocker.MagicMock(spec=bigquery.Client)


@pytest.fixture
def warehouse(settings: Settings, client: Any) -> BigQueryWarehouse:
    return BigQueryWarehouse(settings, client_factory=lambda: client)


@pytest.fixture
def fixed_ids(mocker: Any) -> None:
    """Staging tables get predictable names: aaaa, bbbb, ..."""
    fake = mocker.patch.object(bigquery_engine, "uuid")
    fake.uuid4.side_effect = [SimpleNamespace(hex=c * 4) for c in "abcdef"]


def sent(client: Any, index: int = -1) -> tuple[str, bigquery.QueryJobConfig]:
    call = client.query.call_args_list[index]
    return call.args[0], call.kwargs["job_config"]


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    return text


# -- reads -----------------------------------------------------------------------------
def test_read_sends_rendered_sql_with_typed_parameters(warehouse, client) -> None:
    result = client.query.return_value.result.return_value
    result.to_arrow.return_value = pa.table({"n": pa.array([3], pa.int64())})

    count = warehouse.count_features(Selection(start_year=2020, end_year=2022))

    assert count == 3
    sql, config = sent(client)
    assert sql == COUNT_SQL
    assert config.query_parameters == [
        bigquery.ScalarQueryParameter("all_years", "BOOL", False),
        bigquery.ScalarQueryParameter("start_year", "FLOAT64", 2020.0),
        bigquery.ScalarQueryParameter("end_year", "FLOAT64", 2022.0),
        bigquery.ScalarQueryParameter("include_null_year", "BOOL", False),
        bigquery.ScalarQueryParameter("all_ids", "BOOL", True),
        bigquery.ArrayQueryParameter("game_ids", "INT64", []),
        bigquery.ScalarQueryParameter("any_users_rated", "BOOL", True),
        bigquery.ScalarQueryParameter("min_users_rated", "INT64", 0),
    ]
    assert config.labels == {
        "tool": "bggscore",
        "command": "none",
        "stage": "none",
        "job_id": warehouse.job_labels["job_id"].lower(),
    }
    assert config.maximum_bytes_billed == CAP_FLOOR
    assert client.query.call_args.kwargs["location"] == "EU"
    result.to_arrow.assert_called_once_with(create_bqstorage_client=False)


def test_ids_travel_as_an_int64_array(warehouse, client) -> None:
    result = client.query.return_value.result.return_value
    result.to_arrow.return_value = pa.table(
        {
            "game_id": pa.array([], pa.int64()),
            "feature_hash": pa.array([], pa.int64()),
            "last_updated": pa.array([], pa.timestamp("us", tz="UTC")),
        }
    )

    assert warehouse.read_hashes([7, 3]).is_empty()

    sql, config = sent(client)
    assert sql == (
        "SELECT h.game_id, h.feature_hash, h.last_updated "
        "FROM `bgg-data-warehouse`.`staging`.`game_features_hash` AS h "
        "WHERE h.game_id IN UNNEST(@game_ids)"
    )
    assert config.query_parameters == [bigquery.ArrayQueryParameter("game_ids", "INT64", [7, 3])]


def test_a_job_id_travels_as_a_string_parameter(warehouse, client) -> None:
    result = client.query.return_value.result.return_value
    result.to_arrow.return_value = pa.table({"game_id": pa.array([], pa.int64())})
    hostile = "x' OR '1'='1"

    assert warehouse.landing_rows(hostile).is_empty()

    sql, config = sent(client)
    assert sql.startswith("SELECT p.`game_id`, p.`name`, p.`predicted_hurdle_prob`, ")
    assert sql.endswith(
        "FROM `bgg-predictive-models`.`raw`.`ml_predictions_landing` AS p WHERE p.job_id = @job_id"
    )
    assert hostile not in sql
    assert config.query_parameters == [bigquery.ScalarQueryParameter("job_id", "STRING", hostile)]
    # first the job's runs row (its start bounds the landing read), the id a parameter too
    assert client.query.call_count == 2
    runs = client.query.call_args_list[0]
    assert "bggscore_runs" in runs.args[0] and hostile not in runs.args[0]
    assert runs.kwargs["job_config"].query_parameters == config.query_parameters


def test_read_features_is_one_query_streamed_in_batches(warehouse, client) -> None:
    pages = [
        pa.record_batch({"game_id": pa.array(ids, pa.int64())}) for ids in ([1, 2], [3, 4], [5], [])
    ]
    rows = client.query.return_value.result.return_value
    rows.to_arrow_iterable.return_value = iter(pages)

    frames = list(warehouse.read_features(Selection(all_years=True), ["game_id"], batch_size=3))

    assert [f["game_id"].to_list() for f in frames] == [[1, 2, 3, 4], [5]]
    client.query.assert_called_once()
    client.query.return_value.result.assert_called_once_with(page_size=3)
    rows.to_arrow_iterable.assert_called_once_with(bqstorage_client=None)


# -- parameters ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, bigquery.ScalarQueryParameter("p", "BOOL", True)),
        (3, bigquery.ScalarQueryParameter("p", "INT64", 3)),
        (2.5, bigquery.ScalarQueryParameter("p", "FLOAT64", 2.5)),
        ("x", bigquery.ScalarQueryParameter("p", "STRING", "x")),
        (T0, bigquery.ScalarQueryParameter("p", "TIMESTAMP", T0)),
        (Typed(None, "INT64"), bigquery.ScalarQueryParameter("p", "INT64", None)),
        (Typed([], "ARRAY<INT64>"), bigquery.ArrayQueryParameter("p", "INT64", [])),
        (Typed([1.0], "ARRAY<FLOAT64>"), bigquery.ArrayQueryParameter("p", "FLOAT64", [1.0])),
        (["a", "b"], bigquery.ArrayQueryParameter("p", "STRING", ["a", "b"])),
        ([1, 2], bigquery.ArrayQueryParameter("p", "INT64", [1, 2])),
    ],
)
def test_parameter_types(value: Any, expected: Any) -> None:
    assert query_parameter("p", value) == expected


@pytest.mark.parametrize("value", [None, [], [None], object(), ["a", 1]])
def test_untypeable_parameters_are_programming_errors(value: Any) -> None:
    with pytest.raises(ValueError, match="@p"):
        query_parameter("p", value)


def test_only_used_parameters_are_sent() -> None:
    params = query_parameters("SELECT @a, @@error.message, 'x' AS b", {"a": 1, "b": 2, "error": 3})
    assert params == [bigquery.ScalarQueryParameter("a", "INT64", 1)]
    with pytest.raises(ValueError, match="@missing"):
        query_parameters("SELECT @missing", {})


# -- writes ----------------------------------------------------------------------------
def two_frames() -> list[Write]:
    return [
        Write("scoring_state", make_scoring_state([1, 2]), "upsert"),
        Write("game_embeddings", make_game_embeddings([1, 2]), "append"),
    ]


def test_a_write_loads_its_frames_in_one_parquet_load_then_runs_one_transaction(
    warehouse, client, fixed_ids
) -> None:
    loaded: dict[str, pa.Table] = {}

    def load(buffer: io.BytesIO, destination: str, **kwargs: Any) -> Any:
        loaded[destination] = pq.read_table(buffer)
        return client.load_table_from_file.return_value

    client.load_table_from_file.side_effect = load
    writes = two_frames()
    state, embeddings = writes[0].frame, writes[1].frame

    warehouse.write(writes)

    # one staging table, created with an expiry, loaded from Parquet with an exact schema:
    # every frame's columns and the frame each row belongs to
    created = [call.args[0] for call in client.create_table.call_args_list]
    assert [t.table_id for t in created] == ["_bggscore_stage_cccc_rows"]
    assert created[0].expires > datetime.now(timezone.utc)
    assert [call.args[1] for call in client.load_table_from_file.call_args_list] == [STAGING]
    config = client.load_table_from_file.call_args.kwargs["job_config"]
    assert config.source_format == bigquery.SourceFormat.PARQUET
    assert config.write_disposition == bigquery.WriteDisposition.WRITE_TRUNCATE
    assert config.parquet_options.enable_list_inference is True
    assert set(config.labels) == {"tool", "command", "stage", "job_id"}
    embedding = next(f for f in config.schema if f.name == "embedding")
    assert (embedding.field_type, embedding.mode) == ("FLOAT64", "REPEATED")
    names = [f.name for f in config.schema]
    assert set(names) == {
        *TABLES["scoring_state"].names,
        *TABLES["game_embeddings"].names,
        "_bggscore_frame",
    }
    rows = pl.from_arrow(loaded[STAGING])
    assert rows["_bggscore_frame"].to_list() == [0, 0, 1, 1]
    assert (
        rows.filter(pl.col("_bggscore_frame") == 0)["stage"].to_list() == state["stage"].to_list()
    )
    assert (
        rows.filter(pl.col("_bggscore_frame") == 1)["embedding"].to_list()
        == embeddings["embedding"].to_list()
    )
    client.load_table_from_file.return_value.result.assert_called()

    # one script reading each frame's rows, then the staging table goes
    assert client.query.call_count == 1
    script, config = sent(client)
    assert script == WRITE_SCRIPT
    assert config.query_parameters == []
    assert config.maximum_bytes_billed == CAP_FLOOR
    assert [call.args for call in client.delete_table.call_args_list] == [(STAGING,)]
    assert all(call.kwargs == {"not_found_ok": True} for call in client.delete_table.call_args_list)


def test_a_small_frame_travels_as_one_parameterised_statement(warehouse, client) -> None:
    started = datetime(2026, 1, 2, tzinfo=timezone.utc)
    warehouse.write([warehouse.run_row("job-1", "score", "complexity", "running", 0, started)])

    client.create_table.assert_not_called()  # no staging table, no load job
    client.load_table_from_file.assert_not_called()
    client.query.assert_called_once()
    sql, config = sent(client)
    assert not sql.startswith("BEGIN")  # one statement is atomic by itself
    assert sql.startswith(
        "MERGE INTO `bgg-predictive-models`.`raw`.`bggscore_runs` AS t USING "
        "(SELECT r.`job_id`, r.`command`, r.`stage`, r.`status`, r.`games`, r.`started_at`, "
        "r.`finished_at`, r.`message`, r.`source_environment` "
        "FROM UNNEST(@bggscore_rows) AS r) AS b ON t.`job_id` = b.`job_id`"
    )
    (rows,) = config.query_parameters
    assert (rows.name, rows.array_type) == ("bggscore_rows", "STRUCT")
    (row,) = rows.values
    assert row.struct_types == dict(TABLES["runs"].columns)
    assert row.struct_values["job_id"] == "job-1"
    assert row.struct_values["games"] == 0
    assert row.struct_values["started_at"] == started
    assert config.maximum_bytes_billed == CAP_FLOOR


def test_a_large_or_array_frame_is_staged(warehouse, client, fixed_ids) -> None:
    warehouse.write([Write("scoring_state", make_scoring_state(list(range(1, 1_200))), "upsert")])
    assert client.load_table_from_file.call_count == 1
    script = sent(client)[0]
    assert script.startswith("DECLARE partitions_0 ")  # the stages written, then the MERGE
    assert "\nBEGIN TRANSACTION;\nMERGE INTO" in script

    client.reset_mock()
    warehouse.write([Write("game_embeddings", make_game_embeddings([1]), "append")])
    assert client.load_table_from_file.call_count == 1  # arrays never travel as parameters


def test_failing_script_raises_one_line_and_still_drops_staging(
    warehouse, client, fixed_ids
) -> None:
    client.query.return_value.result.side_effect = api_exceptions.BadRequest(
        "Query error: UPDATE/MERGE must match at most one source row\n at [2:1]",
        errors=[{"message": "UPDATE/MERGE must match at most one source row for each target row"}],
    )

    with pytest.raises(WarehouseError) as caught:
        warehouse.write(two_frames())

    text = one_line(caught.value)
    assert "committing the write transaction" in text
    assert "must match at most one source row" in text
    client.delete_table.assert_called_once_with(STAGING, not_found_ok=True)


def test_failing_load_never_runs_the_script(warehouse, client, fixed_ids) -> None:
    client.load_table_from_file.return_value.result.side_effect = api_exceptions.Forbidden(
        "Access Denied: Table raw._bggscore_stage_cccc_rows: Permission bigquery.tables.updateData"
    )

    with pytest.raises(WarehouseError) as caught:
        warehouse.write(two_frames())

    assert "refused access" in one_line(caught.value)
    assert "roles" in str(caught.value)
    client.query.assert_not_called()  # the targets were never touched
    client.delete_table.assert_called_once_with(STAGING, not_found_ok=True)


def test_staging_cleanup_failure_does_not_hide_the_result(warehouse, client, fixed_ids) -> None:
    client.delete_table.side_effect = api_exceptions.ServiceUnavailable("try later")
    warehouse.write(two_frames())
    client.query.assert_called_once()


# -- schema ----------------------------------------------------------------------------
def test_init_creates_only_owned_tables_with_partitioning_and_clustering(warehouse, client) -> None:
    client.get_table.side_effect = api_exceptions.NotFound("no table")
    client.get_dataset.side_effect = api_exceptions.NotFound("no dataset")

    changed = warehouse.ensure_schema()

    created = {call.args[0].table_id: call for call in client.create_table.call_args_list}
    assert set(created) == {
        "ml_predictions_landing",
        "complexity_predictions",
        "game_embeddings",
        "description_embeddings",
        "bggscore_scoring_state",
        "bggscore_runs",
        "bggscore_leases",
    }
    assert len(changed) == 7
    landing_call = created["ml_predictions_landing"]
    landing = landing_call.args[0]
    assert landing.project == ML and landing.dataset_id == "raw"
    assert landing.time_partitioning.type_ == bigquery.TimePartitioningType.DAY
    assert landing.time_partitioning.field == "score_ts"
    assert landing.clustering_fields == ["game_id"]
    assert landing_call.kwargs == {"exists_ok": True}
    score_ts = next(f for f in landing.schema if f.name == "score_ts")
    assert (score_ts.field_type, score_ts.mode) == ("TIMESTAMP", "NULLABLE")
    embedding = next(f for f in created["game_embeddings"].args[0].schema if f.name == "embedding")
    assert (embedding.field_type, embedding.mode) == ("FLOAT64", "REPEATED")
    runs = created["bggscore_runs"].args[0]
    assert runs.time_partitioning is None and runs.clustering_fields is None
    # the state table: one integer partition per stage, so a stage's MERGE bills its own
    state = created["bggscore_scoring_state"].args[0]
    assert state.range_partitioning.field == "stage_partition"
    assert (state.range_partitioning.range_.start, state.range_partitioning.range_.end) == (
        0,
        4000,
    )
    assert state.clustering_fields == ["stage", "game_id"] and state.time_partitioning is None
    dataset = client.create_dataset.call_args.args[0]
    assert (dataset.project, dataset.dataset_id, dataset.location) == (ML, "raw", "EU")


def test_table_columns_use_the_schema_type_names(warehouse, client) -> None:
    table = bigquery.Table(f"{ML}.raw.t")
    table.schema = [
        bigquery.SchemaField("game_id", "INTEGER"),
        bigquery.SchemaField("score", "FLOAT"),
        bigquery.SchemaField("tags", "STRING", mode="REPEATED"),
        bigquery.SchemaField("at", "TIMESTAMP"),
    ]
    client.get_table.return_value = table

    columns = warehouse.feature_columns()

    assert columns == {
        "game_id": "INT64",
        "score": "FLOAT64",
        "tags": "ARRAY<STRING>",
        "at": "TIMESTAMP",
    }
    client.get_table.assert_called_once_with(f"{FEATURES}.analytics.games_features")


def test_missing_table_is_none_and_init_is_suggested(warehouse, client) -> None:
    client.get_table.side_effect = api_exceptions.NotFound("Not found: Table")
    assert warehouse.count_rows("runs") is None
    with pytest.raises(WarehouseError, match="bggscore warehouse init"):
        warehouse.require_tables(["runs"])


def test_add_columns_appends_to_the_schema(warehouse, client) -> None:
    table = bigquery.Table(f"{ML}.raw.ml_predictions_landing")
    table.schema = [bigquery.SchemaField("job_id", "STRING")]
    client.get_table.return_value = table

    warehouse._add_columns(
        warehouse.tables["game_embeddings"], TABLES["game_embeddings"], ["coordinates_2d", "name"]
    )

    updated, fields = client.update_table.call_args.args
    assert fields == ["schema"]
    assert [(f.name, f.field_type, f.mode) for f in updated.schema] == [
        ("job_id", "STRING", "NULLABLE"),
        ("coordinates_2d", "FLOAT64", "REPEATED"),
        ("name", "STRING", "NULLABLE"),
    ]


def test_managed_tables_and_location(warehouse) -> None:
    owned = {schema.logical for schema in warehouse.managed_tables()}
    assert "games_features" not in owned and "game_features_hash" not in owned
    assert warehouse.location == f"bigquery://{ML}"


# -- errors ----------------------------------------------------------------------------
def test_missing_credentials_say_how_to_log_in(settings: Settings) -> None:
    def factory() -> bigquery.Client:
        raise DefaultCredentialsError("Your default credentials were not found. See https://...")

    with pytest.raises(WarehouseError) as caught:
        BigQueryWarehouse(settings, client_factory=factory)

    text = one_line(caught.value)
    assert "credentials not found" in text
    assert "gcloud auth application-default login" in text
    assert "GOOGLE_APPLICATION_CREDENTIALS" in text


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (
            api_exceptions.Forbidden("Access Denied: Table x: User does not have permission"),
            "refused access",
        ),
        (api_exceptions.ServiceUnavailable("backend error\nretry"), "could not be reached"),
        (ConnectionError("Connection refused"), "could not be reached"),
        (api_exceptions.BadRequest("Syntax error: Unexpected keyword"), "rejected"),
        (api_exceptions.NotFound("Not found: Dataset bgg-predictive-models:raw"), "could not find"),
    ],
)
def test_google_errors_become_one_line_warehouse_errors(
    warehouse, client, exc: Exception, words: str
) -> None:
    client.query.return_value.result.side_effect = exc

    with pytest.raises(WarehouseError) as caught:
        warehouse.execute("SELECT 1")

    assert words in one_line(caught.value)
    assert caught.value.__cause__ is exc


# -- guard rails -----------------------------------------------------------------------
def test_every_query_job_carries_the_cap_derived_from_the_catalogue(settings, client) -> None:
    features = bigquery.Table(f"{FEATURES}.analytics.games_features")
    features._properties["numBytes"] = str(3 * 2**30)  # a 3 GiB catalogue
    client.get_table.return_value = features
    warehouse = BigQueryWarehouse(settings, client_factory=lambda: client)

    warehouse.execute("SELECT 1")
    warehouse.write([Write("runs", make_runs_row(), "upsert")])

    caps = [call.kwargs["job_config"].maximum_bytes_billed for call in client.query.call_args_list]
    assert caps == [12 * 2**30, 12 * 2**30]  # 4x the catalogue
    client.get_table.assert_called_once_with(f"{FEATURES}.analytics.games_features")


def test_a_small_catalogue_gets_the_floor_and_the_setting_wins(tmp_path: Path, client) -> None:
    def cap(**warehouse: Any) -> int:
        settings = Settings(
            home=tmp_path,
            warehouse=WarehouseSettings(
                engine="bigquery", features_project=FEATURES, ml_project=ML, **warehouse
            ),
        )
        return BigQueryWarehouse(settings, client_factory=lambda: client).maximum_bytes_billed()

    client.get_table.side_effect = api_exceptions.NotFound("no catalogue yet")
    assert cap() == 2**30
    assert cap(maximum_bytes_billed=50 * 2**20) == 50 * 2**20


def test_a_cap_below_bigquerys_minimum_is_refused(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="greater than or equal to 10485760"):
        WarehouseSettings(maximum_bytes_billed=1000)


def test_a_job_over_the_cap_is_one_line_naming_the_setting(warehouse, client) -> None:
    message = "Query exceeded limit for bytes billed: 1073741824. 5368709120 or higher required."
    client.query.return_value.result.side_effect = api_exceptions.BadRequest(
        message, errors=[{"reason": "bytesBilledLimitExceeded", "message": message}]
    )

    with pytest.raises(WarehouseError) as caught:
        warehouse.count_features(Selection(all_years=True))

    text = one_line(caught.value)
    assert "warehouse.maximum_bytes_billed" in text
    assert "BGGSCORE_WAREHOUSE__MAXIMUM_BYTES_BILLED" in text
    assert "5368709120 or higher required" in text
    assert "nothing was written" in text
    assert caught.value.exit_code == 1


@pytest.mark.parametrize(
    ("given", "label"),
    [
        ("20261202T042518Z-ab12cd34", "20261202t042518z-ab12cd34"),
        ("text-embeddings,game-embeddings", "text-embeddings_game-embeddings"),
        ("Warehouse Load!", "warehouse_load_"),
        ("é" * 70, "_" * 63),
        ("", "none"),
    ],
)
def test_labels_follow_bigquerys_rules(given: str, label: str) -> None:
    labels = bigquery_engine.job_labels({"command": given, "stage": given, "job_id": given})
    assert labels == {"tool": "bggscore", "command": label, "stage": label, "job_id": label}


def test_labels_follow_the_stage_being_worked_on(warehouse, client) -> None:
    with warehouse.labelled(stage="main", command="score"):
        warehouse.execute("SELECT 1")
    warehouse.execute("SELECT 2")
    first, second = (call.kwargs["job_config"].labels for call in client.query.call_args_list)
    assert (first["stage"], first["command"]) == ("main", "score")
    assert (second["stage"], second["command"]) == ("none", "none")
    assert first["job_id"] == second["job_id"] == warehouse.job_labels["job_id"].lower()


def test_table_metadata_is_fetched_once_per_command(settings, client) -> None:
    from bggscore.warehouse.command import begin_command, end_command

    def table(table_id: str) -> bigquery.Table:
        logical = "scoring_state" if table_id.endswith("state") else "games_features"
        return bigquery.Table(table_id, schema=bigquery_engine.bigquery_schema(TABLES[logical]))

    client.get_table.side_effect = table
    begin_command("run")
    try:
        for _ in range(2):  # `run` opens a warehouse per step
            with BigQueryWarehouse(settings, client_factory=lambda: client) as wh:
                wh.require_tables(["games_features", "scoring_state"])
                wh.feature_columns()
                assert wh.job_labels["command"] == "run"
    finally:
        end_command()
    fetched = [call.args[0] for call in client.get_table.call_args_list]
    assert sorted(fetched) == [
        f"{FEATURES}.analytics.games_features",
        f"{ML}.raw.bggscore_scoring_state",
    ]


def test_a_dry_run_prices_reads_and_counts_writes(warehouse, client) -> None:
    from bggscore.warehouse.command import dry_run

    client.query.return_value.total_bytes_processed = 123_456
    result = client.query.return_value.result.return_value
    result.to_arrow.return_value = pa.table({"n": pa.array([3], pa.int64())})

    with dry_run(True) as ledger:
        assert warehouse.count_features(Selection(all_years=True)) == 3
        warehouse.write([Write("scoring_state", make_scoring_state([1, 2]), "upsert")])

    priced, ran = (call.kwargs["job_config"] for call in client.query.call_args_list)
    assert (priced.dry_run, priced.use_query_cache) == (True, False)
    assert not ran.dry_run
    assert ledger is not None
    assert ledger.reads == [("", 123_456)]
    assert ledger.writes == {f"{ML}.raw.bggscore_scoring_state": 2}
    client.load_table_from_file.assert_not_called()
    client.create_table.assert_not_called()


def make_runs_row() -> pl.DataFrame:
    now = datetime(2026, 1, 2, tzinfo=timezone.utc)
    return TABLES["runs"].conform(
        pl.DataFrame({"job_id": ["j"], "stage": ["main"], "started_at": [now]})
    )
