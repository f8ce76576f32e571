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

from bggscore.errors import EnvironmentProblem, WarehouseBusy, WarehouseError
from bggscore.machine import usable_cpus
from bggscore.warehouse.base import Warehouse
from bggscore.warehouse.exists import require_warehouse
from bggscore.warehouse.schemas import DUCKDB_TYPES, TableSchema
from bggscore.warehouse.sql import TableRef, Typed, delete_keys_sql, insert_all_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from bggscore.settings import Settings

CHECKPOINT_THRESHOLD = "256MB"
PARAM_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
Connect = Callable[..., duckdb.DuckDBPyConnection]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qualified(ref: TableRef) -> str:
    return ".".join(_quote(part) for part in (ref.dataset, ref.table) if part)


def _params(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters the statement uses (DuckDB rejects extras), unwrapped."""
    used = set(PARAM_RE.findall(sql))
    return {k: (v.value if isinstance(v, Typed) else v) for k, v in params.items() if k in used}


MEMORY_HINT = "raise BGGSCORE_WAREHOUSE__MEMORY_LIMIT_MB (e.g. to 1024) or lower --batch-size"
# what DuckDB says of a file that is truncated, overwritten or has a bad block
DAMAGE = re.compile(
    r"corrupt|not a valid duckdb database|could not read enough bytes|checksum", re.IGNORECASE
)
RESTORE_HINT = (
    "restore it from a backup, or move it aside and rebuild it: `bggscore warehouse init`, "
    "`bggscore warehouse load` your export, then score again"
)


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split("\n")[0].split())


def damaged(path: Path, exc: BaseException, opened: bool = True) -> EnvironmentProblem:
    """A damaged warehouse file: what DuckDB found and what to do (never "report it")."""
    check = "; `bggscore warehouse check` lists the damaged tables" if opened else ""
    return EnvironmentProblem(
        f"the warehouse file {path} is damaged ({_first_line(exc)})", RESTORE_HINT + check
    )


def disk_full(path: Path, exc: BaseException) -> EnvironmentProblem:
    return EnvironmentProblem(
        f"cannot write the warehouse {path}: the disk is full ({_first_line(exc)})",
        "free some space on that disk, then rerun: committed batches are kept",
    )


def _environment(path: Path, exc: BaseException) -> EnvironmentProblem | None:
    """What DuckDB raised, when it is the file's or the machine's fault."""
    if DAMAGE.search(str(exc)):
        return damaged(path, exc)
    if "no space left" in str(exc).lower():
        return disk_full(path, exc)
    return None


@contextlib.contextmanager
def _guarded(path: Path) -> Iterator[None]:
    """DuckDB running out of its buffer pool (what to raise) or reading a damaged file
    (what to do), in any statement."""
    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        what = " ".join(str(exc).split()).split(" Possible solutions")[0]
        raise WarehouseError(
            f"the embedded warehouse ran out of memory ({what})", f"{MEMORY_HINT}, then rerun"
        ) from exc
    except duckdb.Error as exc:
        problem = _environment(path, exc)
        if problem is None:
            raise
        raise problem from exc


def _read_whole_sql(schema: str, table: str) -> str:
    """A statement that reads every value of a table (names from DuckDB's catalogue)."""
    return f"SELECT COUNT(*), MAX(HASH(COLUMNS(*))) FROM {_quote(schema)}.{_quote(table)}"  # noqa: S608


def _unreadable(schema: str, table: str, exc: duckdb.Error) -> tuple[str, str]:
    if isinstance(exc, duckdb.OutOfMemoryException):
        return f"{schema}.{table}", f"could not be read whole: {_first_line(exc)}"
    return f"{schema}.{table}", f"is damaged: {_first_line(exc)}"


def _holder_pid(text: str) -> int | None:
    found = re.search(r"PID (\d+)", text)
    return int(found.group(1)) if found else None


def open_duckdb(
    path: Path, timeout: float, connect: Connect = duckdb.connect, read_only: bool = False
) -> Any:
    """Open the file, waiting for another process's lock up to ``timeout`` seconds.

    ``read_only``: for commands that only read, so they work on a read-only home; a
    writer holding the file is a WarehouseBusy at once (DuckDB lets no one read it then)."""
    if not read_only:
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
            return connect(str(path), read_only=True) if read_only else connect(str(path))
        except duckdb.IOException as exc:
            text = str(exc)
            if "permission denied" in text.lower():
                how = "reading" if read_only else "writing"
                raise WarehouseError(
                    f"cannot open warehouse {path}: permission denied",
                    f"bggscore opens it for {how}: check the permissions of the file and "
                    "its folder",
                ) from None
            if DAMAGE.search(text):
                raise damaged(path, exc, opened=False) from None
            if "lock" not in text.lower():
                raise WarehouseError(
                    f"cannot open warehouse {path}: {text.splitlines()[0]}"
                ) from None
            pid = _holder_pid(text)
            if read_only:
                raise WarehouseBusy(f"warehouse {path} is being written", pid=pid) from None
            if time.monotonic() >= deadline:
                who = f"process {pid}" if pid else "another process"
                raise WarehouseError(
                    f"warehouse {path} is locked by {who} (waited {timeout:g}s)",
                    "wait for it to finish or raise BGGSCORE_WAREHOUSE__LOCK_TIMEOUT",
                ) from None
            time.sleep(0.2)
        except (duckdb.PermissionException, PermissionError) as exc:
            raise WarehouseError(
                f"cannot open warehouse {path}: {exc}", "check the file's permissions"
            ) from None
        except duckdb.Error as exc:  # e.g. "Corrupt database file" in its first blocks
            if DAMAGE.search(str(exc)):
                raise damaged(path, exc, opened=False) from None
            problem = _environment(path, exc)
            if problem is None:
                raise
            raise problem from None


class _ArrowStream:
    """A polars frame as DuckDB registers it: through ``__arrow_c_stream__`` (a new stream
    each time DuckDB scans it), so staging a write needs no pyarrow."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    @property
    def column_names(self) -> list[str]:  # as a pyarrow Table names them
        return self.frame.columns

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self.frame.__arrow_c_stream__(requested_schema)


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    engine = "duckdb"

    def __init__(
        self,
        settings: Settings,
        connect: Connect = duckdb.connect,
        create: bool = False,
        read_only: bool = False,
    ) -> None:
        super().__init__(settings)
        self.path = settings.warehouse_path
        if not create:
            require_warehouse(settings)
        self.read_only = read_only
        self.con = open_duckdb(self.path, settings.warehouse.lock_timeout, connect, read_only)
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

    def upsert_statements(
        self,
        schema: TableSchema,
        staged: str,
        partitions: str | None = None,
        variables: bool = False,
    ) -> list[str]:
        # DuckDB keeps rows updated in place in memory until the next checkpoint, so a
        # MERGE of a whole catalogue's state grows memory with the catalogue; deleting
        # the old rows and appending the new ones streams (appends of a row group or
        # more go straight to the file) and checkpoints compact the deleted rows away
        return [
            delete_keys_sql(schema, staged, partitions, variables),
            insert_all_sql(schema, staged),
        ]

    @contextlib.contextmanager
    def leaving_cores(self, cores: int) -> Iterator[None]:
        # DuckDB runs a query on every core: a read or commit in flight beside the models
        # would take the core their (single-threaded, mostly Python) predict runs on
        # fetchall: a result left unfinished would refuse the connection's next query
        ((before,),) = self.con.execute("SELECT current_setting('threads')").fetchall()
        self.con.execute(f"SET threads = {max(1, usable_cpus() - cores):d}")
        try:
            yield
        finally:
            self.con.execute(f"SET threads = {int(before):d}")

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
        with _guarded(self.path):
            self.con.execute(sql, _params(sql, params))

    def _run_count(self, sql: str, params: dict[str, Any]) -> int:
        with _guarded(self.path):
            row = self.con.execute(sql, _params(sql, params)).fetchone()
        return int(row[0]) if row else 0

    def _fetch(self, sql: str, params: dict[str, Any]) -> pl.DataFrame:
        self.note_read(None)
        with _guarded(self.path):
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
        with contextlib.closing(cursor), _guarded(self.path):
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

    def _staged(self, frame: pl.DataFrame) -> Any:
        # registered through the Arrow C stream interface: no pyarrow import for a write
        return _ArrowStream(frame)

    def _commit(self, staged: dict[str, Any], statements: list[tuple[str, dict[str, Any]]]) -> None:
        for name, table in staged.items():
            self.con.register(name, table)
        try:
            self.con.execute("BEGIN TRANSACTION")
            try:
                for sql, params in statements:
                    self.con.execute(sql, _params(sql, params))
                self.con.execute("COMMIT")
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):  # a damaged file may refuse this too
                    self.con.execute("ROLLBACK")
                problem = _environment(self.path, exc)
                if problem is not None:
                    raise problem from exc
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

    def expected_type(self, kind: str) -> str | None:
        # information_schema spells TIMESTAMPTZ out
        return {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}.get(
            DUCKDB_TYPES[kind], DUCKDB_TYPES[kind]
        )

    def unreadable_tables(self) -> list[tuple[str, str]]:
        """Every table read whole: DuckDB checks each block's checksum as it reads it, so a
        damaged block fails here (a hash of every column, so no value is left unread)."""
        found = []
        tables = self.con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() AND NOT temporary "
            "ORDER BY schema_name, table_name"
        ).fetchall()
        for schema, table in tables:
            try:
                self.con.execute(_read_whole_sql(schema, table)).fetchall()
            except duckdb.Error as exc:
                found.append(_unreadable(schema, table, exc))
        return found

    def _table_columns(self, ref: TableRef) -> dict[str, str] | None:
        with _guarded(self.path):
            rows = self._columns(ref)
        return {name: kind for name, kind in rows} or None

    def _columns(self, ref: TableRef) -> list[tuple[str, str]]:
        return self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = $schema AND table_name = $table ORDER BY ordinal_position",
            {"schema": ref.dataset or "main", "table": ref.table},
        ).fetchall()

    def _create_table(self, ref: TableRef, schema: TableSchema) -> None:
        columns = ", ".join(f"{_quote(n)} {DUCKDB_TYPES[k]}" for n, k in schema.columns)
        if ref.dataset:
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(ref.dataset)}")
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {_qualified(ref)} ({columns})")

    def _add_columns(self, ref: TableRef, schema: TableSchema, names: list[str]) -> None:
        for name in names:
            self.con.execute(add_column_sql(ref, schema, name))


def add_column_sql(ref: TableRef, schema: TableSchema, name: str) -> str:
    """The statement adding one of the schema's columns to an existing table."""
    kind = DUCKDB_TYPES[dict(schema.columns)[name]]
    return f"ALTER TABLE {_qualified(ref)} ADD COLUMN {_quote(name)} {kind}"
