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
WRITE_SCRIPT = (
    "BEGIN TRANSACTION;\n"
    "MERGE INTO `bgg-predictive-models`.`raw`.`bggscore_scoring_state` AS t "
    "USING `bgg-predictive-models`.`raw`.`_bggscore_stage_aaaa_0` AS b "
    "ON t.`stage` = b.`stage` AND t.`game_id` = b.`game_id` "
    "WHEN MATCHED THEN UPDATE SET `feature_hash` = b.`feature_hash`, "
    "`model_key` = b.`model_key`, `upstream_key` = b.`upstream_key`, "
    "`job_id` = b.`job_id`, `score_ts` = b.`score_ts`, `input_hash` = b.`input_hash` "
    "WHEN NOT MATCHED THEN INSERT "
    "(`stage`, `game_id`, `feature_hash`, `model_key`, `upstream_key`, `job_id`, `score_ts`, "
    "`input_hash`) "
    "VALUES (`b`.`stage`, `b`.`game_id`, `b`.`feature_hash`, `b`.`model_key`, "
    "`b`.`upstream_key`, `b`.`job_id`, `b`.`score_ts`, `b`.`input_hash`);\n"
    "INSERT INTO `bgg-predictive-models`.`raw`.`game_embeddings` "
    "(`game_id`, `name`, `year_published`, `embedding`, `embedding_8`, `embedding_16`, "
    "`embedding_32`, `embedding_model`, `embedding_version`, `embedding_dim`, `algorithm`, "
    "`created_ts`, `job_id`, `coordinates_2d`, `feature_hash`) "
    "SELECT `b`.`game_id`, `b`.`name`, `b`.`year_published`, `b`.`embedding`, "
    "`b`.`embedding_8`, `b`.`embedding_16`, `b`.`embedding_32`, `b`.`embedding_model`, "
    "`b`.`embedding_version`, `b`.`embedding_dim`, `b`.`algorithm`, `b`.`created_ts`, "
    "`b`.`job_id`, `b`.`coordinates_2d`, `b`.`feature_hash` "
    "FROM `bgg-predictive-models`.`raw`.`_bggscore_stage_bbbb_1` AS b "
    "WHERE NOT EXISTS(SELECT 1 FROM `bgg-predictive-models`.`raw`.`game_embeddings` AS t "
    "WHERE t.`job_id` = b.`job_id` AND t.`game_id` = b.`game_id`);\n"
    "COMMIT TRANSACTION;"
)
STAGE_0 = f"{ML}.raw._bggscore_stage_aaaa_0"
STAGE_1 = f"{ML}.raw._bggscore_stage_bbbb_1"


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
    assert config.labels == {"tool": "bggscore"}
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
    client.query.assert_called_once()  # one query


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
def test_write_loads_parquet_then_runs_one_transaction(warehouse, client, fixed_ids) -> None:
    loaded: dict[str, pa.Table] = {}

    def load(buffer: io.BytesIO, destination: str, **kwargs: Any) -> Any:
        loaded[destination] = pq.read_table(buffer)
        return client.load_table_from_file.return_value

    client.load_table_from_file.side_effect = load
    state = make_scoring_state([1, 2])
    embeddings = make_game_embeddings([1, 2])

    warehouse.write(
        [Write("scoring_state", state, "upsert"), Write("game_embeddings", embeddings, "append")]
    )

    # staging tables: created with an expiry, then loaded from Parquet with an exact schema
    created = [call.args[0] for call in client.create_table.call_args_list]
    assert [t.table_id for t in created] == ["_bggscore_stage_aaaa_0", "_bggscore_stage_bbbb_1"]
    assert all(t.expires > datetime.now(timezone.utc) for t in created)
    assert [call.args[1] for call in client.load_table_from_file.call_args_list] == [
        STAGE_0,
        STAGE_1,
    ]
    config = client.load_table_from_file.call_args.kwargs["job_config"]
    assert config.source_format == bigquery.SourceFormat.PARQUET
    assert config.write_disposition == bigquery.WriteDisposition.WRITE_TRUNCATE
    assert config.parquet_options.enable_list_inference is True
    assert config.labels == {"tool": "bggscore"}
    embedding = next(f for f in config.schema if f.name == "embedding")
    assert (embedding.field_type, embedding.mode) == ("FLOAT64", "REPEATED")
    assert [f.name for f in config.schema] == TABLES["game_embeddings"].names
    assert (
        pl.from_arrow(loaded[STAGE_1])["embedding"].to_list() == embeddings["embedding"].to_list()
    )
    client.load_table_from_file.return_value.result.assert_called()

    # one script over the staging tables, then the staging tables go
    assert client.query.call_count == 1
    script, config = sent(client)
    assert script == WRITE_SCRIPT
    assert config.query_parameters == []
    assert [call.args for call in client.delete_table.call_args_list] == [(STAGE_0,), (STAGE_1,)]
    assert all(call.kwargs == {"not_found_ok": True} for call in client.delete_table.call_args_list)


def test_failing_script_raises_one_line_and_still_drops_staging(
    warehouse, client, fixed_ids
) -> None:
    client.query.return_value.result.side_effect = api_exceptions.BadRequest(
        "Query error: UPDATE/MERGE must match at most one source row\n at [2:1]",
        errors=[{"message": "UPDATE/MERGE must match at most one source row for each target row"}],
    )

    with pytest.raises(WarehouseError) as caught:
        warehouse.write([Write("scoring_state", make_scoring_state([1]), "upsert")])

    text = one_line(caught.value)
    assert "committing the write transaction" in text
    assert "must match at most one source row" in text
    client.delete_table.assert_called_once_with(STAGE_0, not_found_ok=True)


def test_failing_load_never_runs_the_script(warehouse, client, fixed_ids) -> None:
    client.load_table_from_file.return_value.result.side_effect = api_exceptions.Forbidden(
        "Access Denied: Table raw._bggscore_stage_aaaa_0: Permission bigquery.tables.updateData"
    )

    with pytest.raises(WarehouseError) as caught:
        warehouse.write([Write("scoring_state", make_scoring_state([1]), "upsert")])

    assert "refused access" in one_line(caught.value)
    assert "roles" in str(caught.value)
    client.query.assert_not_called()  # the targets were never touched
    client.delete_table.assert_called_once_with(STAGE_0, not_found_ok=True)


def test_staging_cleanup_failure_does_not_hide_the_result(warehouse, client, fixed_ids) -> None:
    client.delete_table.side_effect = api_exceptions.ServiceUnavailable("try later")
    warehouse.write([Write("scoring_state", make_scoring_state([1]), "upsert")])
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
