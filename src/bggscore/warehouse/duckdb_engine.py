"""The embedded default: one DuckDB file under the bggscore home.

BigQuery datasets become schemas with the same table names; types mirror
BigQuery (see ``schemas.DUCKDB_TYPES``). DuckDB lets one process write a file at
a time, so a second process waits up to ``warehouse.lock_timeout`` seconds and
then says who holds the lock instead of hanging.
"""

from __future__ import annotations

import contextlib
import copy
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from bggscore.errors import WarehouseError
from bggscore.warehouse.base import Warehouse
from bggscore.warehouse.schemas import DUCKDB_TYPES, TableSchema
from bggscore.warehouse.sql import TableRef, Typed, delete_keys_sql, insert_all_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from bggscore.settings import Settings

CHECKPOINT_THRESHOLD = "256MB"
PARAM_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
Connect = Callable[[str], duckdb.DuckDBPyConnection]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qualified(ref: TableRef) -> str:
    return ".".join(_quote(part) for part in (ref.dataset, ref.table) if part)


def _params(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters the statement uses (DuckDB rejects extras), unwrapped."""
    used = set(PARAM_RE.findall(sql))
    return {k: (v.value if isinstance(v, Typed) else v) for k, v in params.items() if k in used}


MEMORY_HINT = "raise BGGSCORE_WAREHOUSE__MEMORY_LIMIT_MB (e.g. to 1024) or lower --batch-size"


@contextlib.contextmanager
def _enough_memory() -> Iterator[None]:
    """DuckDB running out of its buffer pool, in any statement: what to raise."""
    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        what = " ".join(str(exc).split()).split(" Possible solutions")[0]
        raise WarehouseError(
            f"the embedded warehouse ran out of memory ({what})", f"{MEMORY_HINT}, then rerun"
        ) from exc


def open_duckdb(path: Path, timeout: float, connect: Connect = duckdb.connect) -> Any:
    """Open the file, waiting for another process's lock up to ``timeout`` seconds."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WarehouseError(
            f"cannot create the bggscore home {path.parent}: {exc.strerror}",
            "set BGGSCORE_HOME to a writable folder",
        ) from None
    deadline = time.monotonic() + timeout
    while True:
        try:
            return connect(str(path))
        except duckdb.IOException as exc:
            text = str(exc)
            if "permission denied" in text.lower():
                raise WarehouseError(
                    f"cannot open warehouse {path}: permission denied",
                    "bggscore opens it for writing: check the permissions of the file and "
                    "its folder",
                ) from None
            if "lock" not in text.lower():
                raise WarehouseError(
                    f"cannot open warehouse {path}: {text.splitlines()[0]}"
                ) from None
            if time.monotonic() >= deadline:
                holder = re.search(r"PID (\d+)", text)
                who = f"process {holder.group(1)}" if holder else "another process"
                raise WarehouseError(
                    f"warehouse {path} is locked by {who} (waited {timeout:g}s)",
                    "wait for it to finish or raise BGGSCORE_WAREHOUSE__LOCK_TIMEOUT",
                ) from None
            time.sleep(0.2)
        except (duckdb.PermissionException, PermissionError) as exc:
            raise WarehouseError(
                f"cannot open warehouse {path}: {exc}", "check the file's permissions"
            ) from None


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    engine = "duckdb"

    def __init__(
        self, settings: Settings, connect: Connect = duckdb.connect, create: bool = False
    ) -> None:
        super().__init__(settings)
        self.path = settings.warehouse_path
        if not create and not self.path.exists():
            raise WarehouseError(
                f"no warehouse at {self.path}",
                "run `bggscore warehouse init` or `bggscore demo`, or point --home or "
                "BGGSCORE_HOME at the folder that has one",
            )
        self.con = open_duckdb(self.path, settings.warehouse.lock_timeout, connect)
        self.con.execute("SET TimeZone = 'UTC'")
        # DuckDB caches up to 80% of RAM by default; a bounded buffer pool keeps a
        # scoring run's memory flat as the catalogue grows (it evicts, then spills)
        self.con.execute(f"SET memory_limit = '{settings.warehouse.memory_limit_mb}MB'")
        # DuckDB checkpoints whenever the WAL passes 16 MB, i.e. after every scoring batch,
        # rewriting the row groups each batch touched; a larger threshold checkpoints a
        # few times per run (a crash only means a longer WAL replay at the next open)
        self.con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")

    @property
    def location(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self.con.close()

    def upsert_statements(self, schema: TableSchema, staged: str) -> list[str]:
        # DuckDB keeps rows updated in place in memory until the next checkpoint, so a
        # MERGE of a whole catalogue's state grows memory with the catalogue; deleting
        # the old rows and appending the new ones streams (appends of a row group or
        # more go straight to the file) and checkpoints compact the deleted rows away
        return [delete_keys_sql(schema, staged), insert_all_sql(schema, staged)]

    def concurrent_writer(self) -> DuckDBWarehouse:
        # a DuckDB connection is not for two threads at once: the writer gets its own
        # cursor on the same database (same process, so no file lock in the way)
        other = copy.copy(self)
        other.con = self.con.cursor()
        other.con.execute("SET TimeZone = 'UTC'")
        return other

    def close_writer(self) -> None:
        self.con.close()

    def _run(self, sql: str, params: dict[str, Any]) -> None:
        with _enough_memory():
            self.con.execute(sql, _params(sql, params))

    def _fetch(self, sql: str, params: dict[str, Any]) -> pl.DataFrame:
        self.note_read(None)
        with _enough_memory():
            relation = self.con.sql(sql, params=_params(sql, params))
            # through the Arrow C stream: the same frame as via pyarrow, without importing
            # pyarrow (20 ms warm, hundreds with cold file caches) in read-only commands
            return pl.DataFrame(relation)

    def _fetch_batches(
        self, sql: str, params: dict[str, Any], batch_size: int
    ) -> Iterator[pa.Table]:
        import pyarrow as pa

        self.note_read(None)
        # a cursor of its own, so writes between batches don't end the stream
        cursor = self.con.cursor()
        with contextlib.closing(cursor), _enough_memory():
            cursor.execute("SET TimeZone = 'UTC'")  # session settings are not inherited
            relation = cursor.sql(sql, params=_params(sql, params))
            to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
            reader = to_reader(batch_size)
            pending: list[pa.RecordBatch] = []
            rows = 0
            for batch in reader:
                pending.append(batch)
                rows += batch.num_rows
                if rows >= batch_size:
                    # hand the rows over before yielding: a suspended generator keeps its
                    # locals, and the consumer should hold the only copy of a batch
                    ready, pending, rows = [pa.Table.from_batches(pending)], [], 0
                    yield ready.pop()
            if pending:
                yield pa.Table.from_batches(pending)

    def _commit(
        self, staged: dict[str, pa.Table], statements: list[tuple[str, dict[str, Any]]]
    ) -> None:
        for name, table in staged.items():
            self.con.register(name, table)
        try:
            self.con.execute("BEGIN TRANSACTION")
            try:
                for sql, params in statements:
                    self.con.execute(sql, _params(sql, params))
                self.con.execute("COMMIT")
            except duckdb.Error as exc:
                self.con.execute("ROLLBACK")
                first = str(exc).splitlines()[0]
                hint = "rerun: committed batches are kept and nothing is duplicated"
                if isinstance(exc, duckdb.OutOfMemoryException):
                    hint = f"{MEMORY_HINT}, then {hint}"
                raise WarehouseError(
                    f"write to {self.path} failed and was rolled back: {first}", hint
                ) from exc
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
        finally:
            for name in staged:
                self.con.unregister(name)

    def _table_columns(self, ref: TableRef) -> dict[str, str] | None:
        rows = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = $schema AND table_name = $table ORDER BY ordinal_position",
            {"schema": ref.dataset or "main", "table": ref.table},
        ).fetchall()
        return {name: kind for name, kind in rows} or None

    def _create_table(self, ref: TableRef, schema: TableSchema) -> None:
        columns = ", ".join(f"{_quote(n)} {DUCKDB_TYPES[k]}" for n, k in schema.columns)
        if ref.dataset:
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(ref.dataset)}")
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {_qualified(ref)} ({columns})")

    def _add_columns(self, ref: TableRef, schema: TableSchema, names: list[str]) -> None:
        kinds = dict(schema.columns)
        table = _qualified(ref)
        for name in names:
            self.con.execute(
                f"ALTER TABLE {table} ADD COLUMN {_quote(name)} {DUCKDB_TYPES[kinds[name]]}"
            )
