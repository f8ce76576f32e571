"""The production engine: Google BigQuery through the official client.

Reads come back as Arrow over the REST API (no Storage API dependency). Writes
are atomic: the frames of one write are loaded from Parquet, together, into one
short-lived staging table (one load job), then one multi-statement query runs
``BEGIN TRANSACTION; ...; COMMIT TRANSACTION;`` over it. A failing statement makes
BigQuery roll the whole transaction back, so a failed load or script leaves the
target tables as they were; the staging table is deleted afterwards whatever
happened (and expires on its own if the process dies first). A write of one small
frame (a runs row) needs no staging: its rows travel as a query parameter of one
statement, which BigQuery applies atomically on its own.

Every query job carries ``maximum_bytes_billed`` (``warehouse.maximum_bytes_billed``,
else 4x the catalogue's size and at least 1 GiB) and labels naming the command, the
stage and the run's job id. Table metadata is fetched once per command.

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
from bggscore.settings import MINIMUM_BYTES_BILLED
from bggscore.warehouse.base import Warehouse
from bggscore.warehouse.command import COMMAND
from bggscore.warehouse.schemas import (
    EMBEDDINGS_INPUT,
    GAMES_FEATURES,
    STAGE_PARTITIONS,
    TABLES,
    TableSchema,
)
from bggscore.warehouse.sql import TableRef, Typed

if TYPE_CHECKING:
    from bggscore.settings import Settings

ClientFactory = Callable[[], bigquery.Client]

LABELS = {"tool": "bggscore"}
STAGING_PREFIX = "_bggscore_stage_"
STAGING_TTL = timedelta(hours=1)
FRAME_COLUMN = "_bggscore_frame"  # which frame of a write a staged row belongs to
ROWS_PARAMETER = "bggscore_rows"
# a single frame at most this big travels as a parameter instead of a staging table (a
# jobs.insert request may be 10 MB)
PARAMETER_ROWS = 1_000
PARAMETER_BYTES = 1_000_000
# the default cap: this many times the catalogue (what any one statement may need to read
# of it, with room to spare), never below a floor that small catalogues pay anyway
CAP_PER_CATALOGUE = 4
CAP_FLOOR = 2**30
LABEL_VALUE_RE = re.compile(r"[^a-z0-9_-]")
CAP_SETTING = "warehouse.maximum_bytes_billed"
CAP_ENV = "BGGSCORE_WAREHOUSE__MAXIMUM_BYTES_BILLED"
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


def label_value(value: str) -> str:
    """A label value BigQuery accepts: lowercase letters, digits, `_` and `-`, at most 63
    characters (anything else becomes `_`)."""
    return LABEL_VALUE_RE.sub("_", value.lower())[:63]


def job_labels(values: dict[str, str]) -> dict[str, str]:
    """The labels of a job: the tool, then command, stage and job_id (``none`` when unset)."""
    out = dict(LABELS)
    for key in ("command", "stage", "job_id"):
        out[key] = label_value(values.get(key) or "none") or "none"
    return out


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
    if _over_cap(exc):
        return WarehouseError(
            f"a BigQuery job would bill more than {CAP_SETTING} allows while {action} "
            f"({_reason(exc)}); it was not run and nothing was written by it",
            f"raise {CAP_SETTING} ({CAP_ENV}) if that much is expected",
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


def _over_cap(exc: BaseException) -> bool:
    """BigQuery's refusal of a job that would bill more than its maximum_bytes_billed."""
    errors = getattr(exc, "errors", None) or []
    reasons = {str(e.get("reason", "")) for e in errors if isinstance(e, dict)}
    return "bytesBilledLimitExceeded" in reasons or "limit for bytes billed" in str(exc)


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
    bounds_as_variables = True
    uses_lease = True

    def __init__(self, settings: Settings, client_factory: ClientFactory | None = None) -> None:
        super().__init__(settings)
        ws = settings.warehouse
        self._stage_refs: dict[str, TableRef] = {}
        # table id -> bigquery.Table (None: absent); the command's, shared by its warehouses
        self._meta: dict[str, Any] = COMMAND.tables if COMMAND.tables is not None else {}
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

    # -- the byte cap ---------------------------------------------------------------------
    def maximum_bytes_billed(self) -> int:
        """The cap every query job carries: the setting, else CAP_PER_CATALOGUE times the
        catalogue (the features table, and the embeddings table once the command has
        looked at it), at least CAP_FLOOR."""
        given = self.settings.warehouse.maximum_bytes_billed
        if given is not None:
            return given
        try:
            features = self._table(self.tables[GAMES_FEATURES.logical])
        except WarehouseError:  # no right to its metadata: the query will say what it needs
            features = None
        embeddings = self._meta.get(_table_id(self.tables[EMBEDDINGS_INPUT.logical]))
        catalogue = sum(int(t.num_bytes or 0) for t in (features, embeddings) if t is not None)
        return max(CAP_FLOOR, MINIMUM_BYTES_BILLED, CAP_PER_CATALOGUE * catalogue)

    # -- queries --------------------------------------------------------------------------
    def _config(self, sql: str, params: dict[str, Any], **extra: Any) -> bigquery.QueryJobConfig:
        return bigquery.QueryJobConfig(
            query_parameters=query_parameters(sql, params),
            labels=job_labels(self.job_labels),
            maximum_bytes_billed=self.maximum_bytes_billed(),
            **extra,
        )

    def _query(self, sql: str, params: dict[str, Any], read: bool = False) -> bigquery.QueryJob:
        location = self.settings.warehouse.location
        if read and COMMAND.dry_run is not None:
            # BigQuery's own estimate, free: what the read bills (it then runs, as the
            # writes a dry run counts come from what it reads)
            config = self._config(sql, params, dry_run=True, use_query_cache=False)
            priced = self.client.query(sql, job_config=config, location=location)
            self.note_read(int(priced.total_bytes_processed or 0))
        config = self._config(sql, params)
        return self.client.query(sql, job_config=config, location=location)

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
            rows = self._query(sql, params, read=True).result()
            table = rows.to_arrow(create_bqstorage_client=False)
        return pl.from_arrow(table)  # type: ignore[return-value]

    def _fetch_batches(
        self, sql: str, params: dict[str, Any], batch_size: int
    ) -> Iterator[pa.Table]:
        with translated("reading query results"):
            rows = self._query(sql, params, read=True).result(page_size=batch_size)
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
        ref = self._new_staging(name.removeprefix("bggscore_stage_"))
        self._stage_refs[name] = ref
        return ref

    def _new_staging(self, suffix: str) -> TableRef:
        ws = self.settings.warehouse
        return TableRef(
            f"{STAGING_PREFIX}{uuid.uuid4().hex}_{suffix}", ws.ml_dataset, ws.ml_project
        )

    def _commit(
        self, staged: dict[str, pa.Table], statements: list[tuple[str, dict[str, Any]]]
    ) -> None:
        refs, self._stage_refs = self._stage_refs, {}
        unknown = sorted(set(staged) - set(refs))
        if unknown:
            raise ValueError(f"no staging table for {unknown}: stage frames through write()")
        params: dict[str, Any] = {}
        for _, statement_params in statements:
            for key, value in statement_params.items():
                if key in params and params[key] != value:
                    raise ValueError(f"statements disagree on the value of parameter @{key}")
                params[key] = value
        if len(statements) == 1 and len(staged) == 1:
            (name, table), (sql, _) = next(iter(staged.items())), statements[0]
            rows = _rows_parameter(table)
            reference = _quoted(refs[name])
            if rows is not None and reference in sql:
                # one statement is atomic on its own: no transaction, no staging table
                source = _rows_source(table.column_names, ROWS_PARAMETER)
                config = self._config(sql, params)
                config.query_parameters = [*config.query_parameters, rows]
                with translated("committing the write"):
                    self.client.query(
                        sql.replace(reference, source),
                        job_config=config,
                        location=self.settings.warehouse.location,
                    ).result()
                return
        rendered = [sql for sql, _ in statements]
        single = self._one_staging_table(staged, refs, rendered)
        if single is not None:
            ref, table, rendered = single
            frames = len(staged)
            self._stage_and_run({"all": ref}, {"all": table}, rendered, params, frames)
        else:
            self._stage_and_run(refs, staged, rendered, params)

    def _one_statement(self, staged: dict[str, Any]) -> bool:
        return len(staged) == 1 and _rows_parameter(next(iter(staged.values()))) is not None

    def _one_staging_table(
        self, staged: dict[str, pa.Table], refs: dict[str, TableRef], statements: list[str]
    ) -> tuple[TableRef, pa.Table, list[str]] | None:
        """Every frame of the write in one staging table (one load job): each row tagged
        with its frame, each statement reading its frame's rows. None when the frames'
        columns disagree on a type (then a table per frame)."""
        fields: dict[str, bigquery.SchemaField] = {}
        for table in staged.values():
            for f in stage_schema(table):
                known = fields.setdefault(f.name, f)
                if (known.field_type, known.mode) != (f.field_type, f.mode):
                    return None
        if FRAME_COLUMN in fields or any(
            _quoted(refs[n]) not in "".join(statements) for n in staged
        ):
            return None
        union = [*fields.values(), bigquery.SchemaField(FRAME_COLUMN, "INT64", mode="NULLABLE")]
        ref = self._new_staging("rows")
        parts = []
        rewritten = list(statements)
        for index, (name, table) in enumerate(staged.items()):
            parts.append(_padded(table, union, index))
            source = _frame_source(table.column_names, _quoted(ref), index)
            rewritten = [sql.replace(_quoted(refs[name]), source) for sql in rewritten]
        return ref, pa.concat_tables(parts), rewritten

    def _stage_and_run(
        self,
        refs: dict[str, TableRef],
        staged: dict[str, pa.Table],
        statements: list[str],
        params: dict[str, Any],
        frames: int = 0,
    ) -> None:
        """Load each staged table, then run the statements in one transaction. ``frames``:
        the tables hold that many frames, one partition each."""
        # No EXCEPTION handler: when a statement fails and there is none, BigQuery fails
        # the query and rolls the transaction back itself, and the error reaches us as is.
        # a script's DECLAREs (the write's partition bounds) come before anything else
        declared = [f"{sql};" for sql in statements if sql.startswith("DECLARE ")]
        rest = [f"{sql};" for sql in statements if not sql.startswith("DECLARE ")]
        script = "\n".join([*declared, "BEGIN TRANSACTION;", *rest, "COMMIT TRANSACTION;"])
        try:
            for name, table in staged.items():
                schema = stage_schema(table)
                with translated(f"staging rows for {refs[name]}"):
                    self._create_staging(refs[name], schema, frames)
                    self._load_staging(refs[name], table, schema)
            with translated("committing the write transaction"):
                self._query(script, params).result()
        finally:
            for ref in refs.values():
                # best effort: a staging table expires within STAGING_TTL anyway
                with suppress(*GOOGLE_ERRORS):
                    self.client.delete_table(_table_id(ref), not_found_ok=True)

    def _create_staging(
        self, ref: TableRef, schema: list[bigquery.SchemaField], frames: int = 0
    ) -> None:
        table = bigquery.Table(_table_id(ref), schema=schema)
        table.expires = datetime.now(timezone.utc) + STAGING_TTL
        if frames:
            # a partition per frame: each statement reads (and is billed for) its own rows
            table.range_partitioning = bigquery.RangePartitioning(
                field=FRAME_COLUMN, range_=bigquery.PartitionRange(start=0, end=frames, interval=1)
            )
        table.labels = dict(LABELS)
        self.client.create_table(table)

    def _load_staging(
        self, ref: TableRef, table: pa.Table, schema: list[bigquery.SchemaField]
    ) -> None:
        """Load rows into a staging table with a Parquet load job.

        The one place rows enter BigQuery through a table (a test double for a backend
        without load jobs would replace only this method)."""
        buffer = io.BytesIO()
        pq.write_table(_without_null_lists(table), buffer)
        buffer.seek(0)
        parquet = bigquery.ParquetOptions()
        parquet.enable_list_inference = True
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=schema,
            labels=job_labels(self.job_labels),
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
    def _table(self, ref: TableRef) -> bigquery.Table | None:
        """The table's metadata, fetched once per command (None: it does not exist)."""
        table_id = _table_id(ref)
        if table_id not in self._meta:
            with translated(f"reading the schema of {ref}"):
                try:
                    self._meta[table_id] = self.client.get_table(table_id)
                except api_exceptions.NotFound:
                    self._meta[table_id] = None
        return self._meta[table_id]

    def _table_columns(self, ref: TableRef) -> dict[str, str] | None:
        table = self._table(ref)
        if table is None:
            return None
        return {field.name: _column_type(field) for field in table.schema}

    def _create_table(self, ref: TableRef, schema: TableSchema) -> None:
        ws = self.settings.warehouse
        self._meta.pop(_table_id(ref), None)
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
            if schema.partition_by_range:  # the state table: one partition per stage
                table.range_partitioning = bigquery.RangePartitioning(
                    field=schema.partition_by_range,
                    range_=bigquery.PartitionRange(start=0, end=STAGE_PARTITIONS, interval=1),
                )
            if schema.cluster_by:
                table.clustering_fields = list(schema.cluster_by)
            table.labels = dict(LABELS)
            self.client.create_table(table, exists_ok=True)

    # -- migration (warehouse/migrate.py) -------------------------------------------------
    def _copy_table(self, source: TableRef, target: TableRef) -> None:
        """A copy job (no bytes billed): ``target`` replaced by ``source``, layout and all."""
        config = bigquery.CopyJobConfig(
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            labels=job_labels(self.job_labels),
        )
        self._meta.pop(_table_id(target), None)
        with translated(f"copying {source} to {target}"):
            job = self.client.copy_table(
                _table_id(source),
                _table_id(target),
                job_config=config,
                location=self.settings.warehouse.location,
            )
            job.result()

    def _drop_table(self, ref: TableRef) -> None:
        self._meta.pop(_table_id(ref), None)
        with translated(f"deleting {ref}"):
            self.client.delete_table(_table_id(ref), not_found_ok=True)

    def _add_columns(self, ref: TableRef, schema: TableSchema, names: list[str]) -> None:
        kinds = dict(schema.columns)
        table_id = _table_id(ref)
        self._meta.pop(table_id, None)
        with translated(f"adding columns to {ref}"):
            table = self.client.get_table(table_id)
            table.schema = [*table.schema, *(_field(name, kinds[name]) for name in names)]
            self.client.update_table(table, ["schema"])


# -- writes without a staging table per frame --------------------------------------------
def _quoted(ref: TableRef) -> str:
    """A table reference as Warehouse.render writes it in BigQuery SQL."""
    return ".".join(f"`{part}`" for part in (ref.project, ref.dataset, ref.table) if part)


def _rows_source(columns: list[str], parameter: str) -> str:
    """A derived table of a write's rows, from an ARRAY<STRUCT> parameter."""
    select = ", ".join(f"r.`{name}`" for name in columns)
    return f"(SELECT {select} FROM UNNEST(@{parameter}) AS r)"  # noqa: S608 - our names


def _frame_source(columns: list[str], staging: str, index: int) -> str:
    """A derived table of one frame's rows in a write's one staging table."""
    select = ", ".join(f"`{name}`" for name in columns)
    where = f"`{FRAME_COLUMN}` = {int(index)}"  # our own frame number, not a value
    return f"(SELECT {select} FROM {staging} WHERE {where})"  # noqa: S608 - our names


def _rows_parameter(table: pa.Table) -> bigquery.ArrayQueryParameter | None:
    """A small frame without arrays as one ARRAY<STRUCT> parameter; None otherwise."""
    fields = stage_schema(table)
    if not 0 < table.num_rows <= PARAMETER_ROWS or any(f.mode == "REPEATED" for f in fields):
        return None
    rows = table.to_pylist()
    size = sum(len(str(value)) + 40 for row in rows for value in row.values())
    if size > PARAMETER_BYTES:
        return None
    structs = [
        bigquery.StructQueryParameter(
            None,
            *(bigquery.ScalarQueryParameter(f.name, f.field_type, row[f.name]) for f in fields),
        )
        for row in rows
    ]
    return bigquery.ArrayQueryParameter(ROWS_PARAMETER, "STRUCT", structs)


ARROW_OF = {
    "INT64": pa.int64(),
    "FLOAT64": pa.float64(),
    "STRING": pa.string(),
    "BOOL": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
}


def _arrow_of(field: bigquery.SchemaField) -> pa.DataType:
    kind = ARROW_OF[STANDARD_TYPES.get(field.field_type, field.field_type)]
    return pa.list_(kind) if field.mode == "REPEATED" else kind


def _padded(table: pa.Table, union: list[bigquery.SchemaField], index: int) -> pa.Table:
    """A frame in the union's columns (others NULL), tagged with its index."""
    columns = []
    for field in union:
        kind = _arrow_of(field)
        if field.name == FRAME_COLUMN:
            columns.append(pa.array([index] * table.num_rows, kind))
        elif field.name in table.column_names:
            columns.append(table.column(field.name).cast(kind))
        else:
            columns.append(pa.nulls(table.num_rows, kind))
    return pa.table(columns, names=[f.name for f in union])


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
