"""The production engine: Google BigQuery through the official client.

Reads come back as Arrow over the REST API (no Storage API dependency). Writes
are atomic: every staged frame is loaded from Parquet into a short-lived staging
table, then one multi-statement query runs ``BEGIN TRANSACTION; ...; COMMIT
TRANSACTION;`` over them. A failing statement makes BigQuery roll the whole
transaction back, so a failed load or script leaves the target tables as they
were; staging tables are deleted afterwards whatever happened (and expire on
their own if the process dies first).

Only bggscore's own tables are created here: ``games_features`` and
``game_features_hash`` belong to the data warehouse's jobs. This module is
imported lazily by ``open_warehouse`` so the BigQuery client never slows the CLI.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import bigquery

from bggscore.errors import ConcurrentUpdateError, WarehouseError
from bggscore.warehouse.base import Warehouse
from bggscore.warehouse.schemas import TABLES, TableSchema
from bggscore.warehouse.sql import TableRef, Typed

if TYPE_CHECKING:
    from bggscore.settings import Settings

ClientFactory = Callable[[], bigquery.Client]

LABELS = {"tool": "bggscore"}
STAGING_PREFIX = "_bggscore_stage_"
STAGING_TTL = timedelta(hours=1)
# ``@name`` but not ``@@system_variable``
PARAM_RE = re.compile(r"(?<![@\w])@([A-Za-z_][A-Za-z0-9_]*)")
ARRAY_RE = re.compile(r"^ARRAY<\s*([A-Z0-9_]+)\s*>$")
# legacy names the API may report -> the standard SQL names of schemas.py
STANDARD_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}
CREDENTIALS_HINT = (
    "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
)
UNREACHABLE = (
    api_exceptions.ServiceUnavailable,
    api_exceptions.InternalServerError,
    api_exceptions.TooManyRequests,
    api_exceptions.GatewayTimeout,
    api_exceptions.RetryError,
    auth_exceptions.TransportError,
    ConnectionError,
    TimeoutError,
)


def _table_id(ref: TableRef) -> str:
    return ".".join(part for part in (ref.project, ref.dataset, ref.table) if part)


def _field(name: str, kind: str) -> bigquery.SchemaField:
    inner = ARRAY_RE.match(kind)
    if inner:
        return bigquery.SchemaField(name, inner.group(1), mode="REPEATED")
    return bigquery.SchemaField(name, kind, mode="NULLABLE")


def bigquery_schema(schema: TableSchema) -> list[bigquery.SchemaField]:
    """A TableSchema in BigQuery's terms: ARRAY<T> columns are REPEATED T."""
    return [_field(name, kind) for name, kind in schema.columns]


def _column_type(field: bigquery.SchemaField) -> str:
    kind = STANDARD_TYPES.get(field.field_type, field.field_type)
    return f"ARRAY<{kind}>" if field.mode == "REPEATED" else kind


# -- query parameters ------------------------------------------------------------------
def _scalar_type(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, datetime):
        return "TIMESTAMP"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, bytes):
        return "BYTES"
    raise ValueError(f"no BigQuery type for parameter @{name} ({type(value).__name__})")


def query_parameter(
    name: str, value: Any
) -> bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter:
    """One value -> one typed BigQuery parameter (``Typed`` for NULLs and empty arrays)."""
    if isinstance(value, Typed):
        inner = ARRAY_RE.match(value.bq_type.upper())
        if inner:
            return bigquery.ArrayQueryParameter(name, inner.group(1), list(value.value or []))
        return bigquery.ScalarQueryParameter(name, value.bq_type.upper(), value.value)
    if value is None:
        raise ValueError(f"parameter @{name} is None; wrap it in Typed(None, '<type>')")
    if isinstance(value, (list, tuple)):
        present = [item for item in value if item is not None]
        if not present:
            raise ValueError(
                f"parameter @{name} is an empty list; wrap it in Typed([], 'ARRAY<...>')"
            )
        kinds = {_scalar_type(name, item) for item in present}
        if kinds == {"INT64", "FLOAT64"}:
            kinds = {"FLOAT64"}
        if len(kinds) != 1:
            raise ValueError(f"parameter @{name} mixes types {sorted(kinds)}")
        return bigquery.ArrayQueryParameter(name, kinds.pop(), list(value))
    return bigquery.ScalarQueryParameter(name, _scalar_type(name, value), value)


def query_parameters(sql: str, params: dict[str, Any]) -> list[Any]:
    """Only the parameters the statement uses, in the order of ``params``."""
    used = set(PARAM_RE.findall(sql))
    missing = sorted(used - set(params))
    if missing:
        raise ValueError(f"SQL uses parameter(s) {', '.join('@' + m for m in missing)} not given")
    return [query_parameter(name, value) for name, value in params.items() if name in used]


# -- errors ----------------------------------------------------------------------------
def _reason(exc: BaseException) -> str:
    """The server's own explanation, on one line, without URLs or job ids."""
    text = ""
    errors = getattr(exc, "errors", None)
    if errors and isinstance(errors[0], dict):
        text = str(errors[0].get("message") or "")
    text = text or str(getattr(exc, "message", "") or "") or str(exc) or type(exc).__name__
    line = " ".join(text.split())
    return line if len(line) <= 300 else line[:297] + "..."


def warehouse_error(exc: BaseException, action: str) -> WarehouseError:
    """A google/transport exception -> one line saying what failed and what to do."""
    if isinstance(exc, auth_exceptions.DefaultCredentialsError):
        return WarehouseError("BigQuery credentials not found", CREDENTIALS_HINT)
    if isinstance(exc, auth_exceptions.RefreshError):
        return WarehouseError("BigQuery credentials were refused or have expired", CREDENTIALS_HINT)
    if isinstance(exc, api_exceptions.Forbidden):
        return WarehouseError(
            f"BigQuery refused access while {action}: {_reason(exc)}",
            "check the service account's roles (BigQuery Job User on the project, "
            "Data Editor on the datasets)",
        )
    if isinstance(exc, api_exceptions.Unauthorized):
        return WarehouseError(f"BigQuery rejected the credentials while {action}", CREDENTIALS_HINT)
    if isinstance(exc, api_exceptions.NotFound):
        return WarehouseError(
            f"BigQuery could not find what it needed while {action}: {_reason(exc)}",
            "check warehouse.features_project, warehouse.ml_project and the dataset settings, "
            "or run `bggscore warehouse init`",
        )
    if isinstance(exc, api_exceptions.BadRequest) and "concurrent update" in _reason(exc):
        # another job changed the table meanwhile; BigQuery rolled this one back
        return ConcurrentUpdateError(
            f"BigQuery aborted a statement while {action}: {_reason(exc)}", "retry"
        )
    if isinstance(exc, api_exceptions.BadRequest):
        return WarehouseError(f"BigQuery rejected the request while {action}: {_reason(exc)}")
    if isinstance(exc, UNREACHABLE):
        return WarehouseError(
            f"BigQuery could not be reached while {action}: {_reason(exc)}",
            "check the network and retry",
        )
    return WarehouseError(f"BigQuery failed while {action}: {_reason(exc)}")


GOOGLE_ERRORS = (
    api_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    ConnectionError,
    TimeoutError,
)


@contextmanager
def translated(action: str) -> Iterator[None]:
    try:
        yield
    except GOOGLE_ERRORS as exc:
        raise warehouse_error(exc, action) from exc


# -- the engine ------------------------------------------------------------------------
class BigQueryWarehouse(Warehouse):
    dialect = "bigquery"
    engine = "bigquery"
    uses_lease = True

    def __init__(self, settings: Settings, client_factory: ClientFactory | None = None) -> None:
        super().__init__(settings)
        ws = settings.warehouse
        self._stage_refs: dict[str, TableRef] = {}
        factory = client_factory or (
            lambda: bigquery.Client(project=ws.ml_project, location=ws.location)
        )
        with translated("connecting"):
            self.client = factory()

    @property
    def location(self) -> str:
        return f"bigquery://{self.settings.warehouse.ml_project}"

    def close(self) -> None:
        self.client.close()

    def managed_tables(self) -> list[TableSchema]:
        return [schema for schema in TABLES.values() if schema.owned]

    # -- queries --------------------------------------------------------------------------
    def _query(self, sql: str, params: dict[str, Any]) -> bigquery.QueryJob:
        config = bigquery.QueryJobConfig(
            query_parameters=query_parameters(sql, params), labels=dict(LABELS)
        )
        return self.client.query(sql, job_config=config, location=self.settings.warehouse.location)

    def _run(self, sql: str, params: dict[str, Any]) -> None:
        with translated("running a query"):
            self._query(sql, params).result()

    def _run_count(self, sql: str, params: dict[str, Any]) -> int:
        with translated("running a query"):
            job = self._query(sql, params)
            job.result()
        return int(job.num_dml_affected_rows or 0)

    def _fetch(self, sql: str, params: dict[str, Any]) -> pl.DataFrame:
        with translated("running a query"):
            table = self._query(sql, params).result().to_arrow(create_bqstorage_client=False)
        return pl.from_arrow(table)  # type: ignore[return-value]

    def _fetch_batches(
        self, sql: str, params: dict[str, Any], batch_size: int
    ) -> Iterator[pa.Table]:
        with translated("reading query results"):
            rows = self._query(sql, params).result(page_size=batch_size)
            pending: list[pa.RecordBatch] = []
            count = 0
            for batch in rows.to_arrow_iterable(bqstorage_client=None):
                if not batch.num_rows:
                    continue
                pending.append(batch)
                count += batch.num_rows
                if count >= batch_size:  # see DuckDBWarehouse._fetch_batches
                    ready, pending, count = [pa.Table.from_batches(pending)], [], 0
                    yield ready.pop()
            if pending:
                yield pa.Table.from_batches(pending)

    # -- atomic writes --------------------------------------------------------------------
    def _stage_ref(self, name: str) -> TableRef:
        """A staging table unique to this write, in the ML dataset."""
        ws = self.settings.warehouse
        unique = f"{STAGING_PREFIX}{uuid.uuid4().hex}_{name.removeprefix('bggscore_stage_')}"
        ref = TableRef(unique, ws.ml_dataset, ws.ml_project)
        self._stage_refs[name] = ref
        return ref

    def _commit(
        self, staged: dict[str, pa.Table], statements: list[tuple[str, dict[str, Any]]]
    ) -> None:
        refs, self._stage_refs = self._stage_refs, {}
        unknown = sorted(set(staged) - set(refs))
        if unknown:
            raise ValueError(f"no staging table for {unknown}: stage frames through write()")
        # No EXCEPTION handler: when a statement fails and there is none, BigQuery fails
        # the query and rolls the transaction back itself, and the error reaches us as is.
        script = "\n".join(
            ["BEGIN TRANSACTION;", *(f"{sql};" for sql, _ in statements), "COMMIT TRANSACTION;"]
        )
        params: dict[str, Any] = {}
        for _, statement_params in statements:
            for key, value in statement_params.items():
                if key in params and params[key] != value:
                    raise ValueError(f"statements disagree on the value of parameter @{key}")
                params[key] = value
        try:
            for name, table in staged.items():
                schema = stage_schema(table)
                with translated(f"staging rows for {refs[name]}"):
                    self._create_staging(refs[name], schema)
                    self._load_staging(refs[name], table, schema)
            with translated("committing the write transaction"):
                self._query(script, params).result()
        finally:
            for ref in refs.values():
                # best effort: a staging table expires within STAGING_TTL anyway
                with suppress(*GOOGLE_ERRORS):
                    self.client.delete_table(_table_id(ref), not_found_ok=True)

    def _create_staging(self, ref: TableRef, schema: list[bigquery.SchemaField]) -> None:
        table = bigquery.Table(_table_id(ref), schema=schema)
        table.expires = datetime.now(timezone.utc) + STAGING_TTL
        table.labels = dict(LABELS)
        self.client.create_table(table)

    def _load_staging(
        self, ref: TableRef, table: pa.Table, schema: list[bigquery.SchemaField]
    ) -> None:
        """Load rows into a staging table with a Parquet load job.

        The one place rows enter BigQuery (a test double for a backend without load
        jobs would replace only this method)."""
        buffer = io.BytesIO()
        pq.write_table(_without_null_lists(table), buffer)
        buffer.seek(0)
        parquet = bigquery.ParquetOptions()
        parquet.enable_list_inference = True
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=schema,
            labels=dict(LABELS),
        )
        config.parquet_options = parquet
        job = self.client.load_table_from_file(
            buffer,
            _table_id(ref),
            job_config=config,
            location=self.settings.warehouse.location,
            rewind=True,
        )
        job.result()

    # -- schema ---------------------------------------------------------------------------
    def _table_columns(self, ref: TableRef) -> dict[str, str] | None:
        with translated(f"reading the schema of {ref}"):
            try:
                table = self.client.get_table(_table_id(ref))
            except api_exceptions.NotFound:
                return None
        return {field.name: _column_type(field) for field in table.schema}

    def _create_table(self, ref: TableRef, schema: TableSchema) -> None:
        ws = self.settings.warehouse
        with translated(f"creating {ref}"):
            dataset_id = f"{ref.project}.{ref.dataset}"
            try:
                self.client.get_dataset(dataset_id)
            except api_exceptions.NotFound:
                dataset = bigquery.Dataset(dataset_id)
                if ws.location:
                    dataset.location = ws.location
                self.client.create_dataset(dataset, exists_ok=True)
            table = bigquery.Table(_table_id(ref), schema=bigquery_schema(schema))
            if schema.partition_by_day:
                table.time_partitioning = bigquery.TimePartitioning(
                    type_=bigquery.TimePartitioningType.DAY, field=schema.partition_by_day
                )
            if schema.cluster_by:
                table.clustering_fields = list(schema.cluster_by)
            table.labels = dict(LABELS)
            self.client.create_table(table, exists_ok=True)

    def _add_columns(self, ref: TableRef, schema: TableSchema, names: list[str]) -> None:
        kinds = dict(schema.columns)
        with translated(f"adding columns to {ref}"):
            table = self.client.get_table(_table_id(ref))
            table.schema = [*table.schema, *(_field(name, kinds[name]) for name in names)]
            self.client.update_table(table, ["schema"])


# -- staging helpers -------------------------------------------------------------------
ARROW_TYPES = {
    pa.int64(): "INT64",
    pa.float64(): "FLOAT64",
    pa.string(): "STRING",
    pa.large_string(): "STRING",
    pa.string_view(): "STRING",
    pa.bool_(): "BOOL",
    pa.timestamp("us", tz="UTC"): "TIMESTAMP",
}


def _arrow_kind(kind: pa.DataType) -> str:
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return f"ARRAY<{_arrow_kind(kind.value_type)}>"
    if kind in ARROW_TYPES:
        return ARROW_TYPES[kind]
    raise ValueError(f"no BigQuery type for staged Arrow type {kind}")


def stage_schema(table: pa.Table) -> list[bigquery.SchemaField]:
    """The explicit load schema: the target's TableSchema (frames are conformed to it
    before a write), else the exact translation of the Arrow types."""
    for schema in TABLES.values():
        if schema.names == table.column_names:
            return bigquery_schema(schema)
    return [_field(field.name, _arrow_kind(field.type)) for field in table.schema]


def _without_null_lists(table: pa.Table) -> pa.Table:
    """BigQuery arrays are never NULL: a NULL list is loaded as an empty array."""
    for index, field in enumerate(table.schema):
        column = table.column(index)
        if (
            pa.types.is_list(field.type) or pa.types.is_large_list(field.type)
        ) and column.null_count:
            empty = pa.array([[]], type=field.type)[0]
            table = table.set_column(index, field, column.fill_null(empty))
    return table
