"""The warehouse interface: every data operation bggscore needs, engine-neutral.

Engines (DuckDB, BigQuery) implement a handful of primitives: run a statement,
fetch Arrow, stream Arrow batches, commit staged frames plus statements in one
transaction, and create tables. Everything else is written once here, in terms
of the canonical SQL in ``queries.py``.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

import polars as pl

from bggscore.errors import WarehouseError
from bggscore.stages import COMPLEXITY, DEFAULT_BATCH_SIZE, GAME_EMBEDDINGS, TEXT_EMBEDDINGS
from bggscore.stages import EMBEDDINGS_INPUT as EMBEDDINGS_TABLE_INPUT
from bggscore.warehouse import queries
from bggscore.warehouse.command import COMMAND
from bggscore.warehouse.schemas import (
    EMBEDDINGS_INPUT,
    GAMES_FEATURES,
    LEASES,
    MIGRATED_COLUMNS,
    RUNS,
    TABLES,
    WAREHOUSE_SCHEMA_VERSION,
    TableSchema,
    stage_partition,
    with_stage_partition,
)
from bggscore.warehouse.sql import (
    TableRef,
    Typed,
    append_new_sql,
    bound_params,
    declare_bounds_sql,
    declare_partitions_sql,
    partition_param,
    render,
    upsert_sql,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from bggscore.settings import Settings
    from bggscore.stages import Input


@dataclass(frozen=True)
class EmbeddingWidths:
    """What the embeddings table holds: its vectors, their narrowest and widest width, and
    (checked against a selection) the selection's games without one."""

    vectors: int
    narrowest: int | None
    widest: int | None
    missing: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Write:
    """Rows for one table inside an atomic write.

    ``append``: insert rows whose key is absent (a retried batch adds nothing).
    ``upsert``: merge on the key (latest-state tables, the features load).
    """

    logical: str
    frame: pl.DataFrame
    mode: Literal["append", "upsert"] = "append"


class Warehouse(abc.ABC):
    """Data access for every command; use as a context manager."""

    dialect: ClassVar[str]
    engine: ClassVar[str]
    # write bounds as script variables DECLAREd from the staged rows (BigQuery), not
    # query parameters
    bounds_as_variables: ClassVar[bool] = False
    # a writer takes a stage lease in the warehouse (bggscore.lease): the home's file lock
    # cannot see another machine; an embedded warehouse is one machine's file
    uses_lease: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # selection -> its games without an input vector, found with the widths
        ws = settings.warehouse
        names = ws.tables
        self.tables: dict[str, TableRef] = {}
        for logical in TABLES:
            if logical == EMBEDDINGS_INPUT.logical:  # named whole by its own setting
                project, dataset, table = settings.features.embeddings_parts()
                self.tables[logical] = TableRef(table, dataset, project or ws.features_project)
                continue
            if logical == "games_features":
                dataset, project = ws.features_dataset, ws.features_project
            elif logical == "game_features_hash":
                dataset, project = ws.hash_dataset, ws.features_project
            else:
                dataset, project = ws.ml_dataset, ws.ml_project
            self.tables[logical] = TableRef(getattr(names, logical), dataset, project)
        # what the jobs this warehouse sends are labelled with (BigQuery's job labels):
        # the command, the stage(s) being worked on and the run's job id; until a run
        # names its own, an id of this session, so a command that writes nothing (a
        # no-op) is still one id
        now = datetime.now(timezone.utc)
        self.job_labels: dict[str, str] = {
            "command": COMMAND.name or "",
            "stage": "",
            "job_id": f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        }
        self._session_id_taken = False

    def note_read(self, billed: int | None) -> None:
        """In a ``--dry-run``, record a read (what it bills; None where unknown)."""
        if COMMAND.dry_run is not None:
            COMMAND.dry_run.reads.append((self.job_labels.get("stage") or "", billed))

    # -- job labels ----------------------------------------------------------------------
    def new_run_id(self) -> str:
        """A run's job id, labelling the jobs sent from now on: the session's own for the
        first run of this warehouse (so the jobs before it carry it too), then new ones."""
        if self._session_id_taken:
            now = datetime.now(timezone.utc)
            self.job_labels["job_id"] = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        self._session_id_taken = True
        return self.job_labels["job_id"]

    def label_jobs(self, **values: str) -> None:
        """Label the jobs sent from now on (``command``, ``stage``, ``job_id``)."""
        self.job_labels.update(values)

    @contextmanager
    def labelled(self, **values: str) -> Iterator[None]:
        """Label the jobs sent inside the block, then restore the labels."""
        before = dict(self.job_labels)
        self.job_labels.update(values)
        try:
            yield
        finally:
            self.job_labels.clear()
            self.job_labels.update(before)

    @contextmanager
    def leaving_cores(self, cores: int) -> Iterator[None]:
        """Inside the block the engine's own threads leave ``cores`` of this machine's
        cores to the models (computed meanwhile by this process or its workers). An
        engine that computes elsewhere (BigQuery) has nothing to leave."""
        yield

    # -- engine primitives -------------------------------------------------------------
    @abc.abstractmethod
    def _run(self, sql: str, params: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def _run_count(self, sql: str, params: dict[str, Any]) -> int:
        """Run one DML statement; how many rows it inserted, updated or deleted."""

    @abc.abstractmethod
    def _fetch(self, sql: str, params: dict[str, Any]) -> pl.DataFrame:
        """A query's whole result (small results: detection, lookups, status)."""

    @abc.abstractmethod
    def _fetch_batches(
        self, sql: str, params: dict[str, Any], batch_size: int
    ) -> Iterator[pa.Table]: ...

    @abc.abstractmethod
    def _commit(
        self, staged: dict[str, pa.Table], statements: list[tuple[str, dict[str, Any]]]
    ) -> None:
        """Stage the frames under the given logical names, then run all statements
        in one transaction: all of them take effect or none does."""

    @abc.abstractmethod
    def _table_columns(self, ref: TableRef) -> dict[str, str] | None:
        """Column name -> type of an existing table, or None when it does not exist."""

    @abc.abstractmethod
    def _create_table(self, ref: TableRef, schema: TableSchema) -> None: ...

    @abc.abstractmethod
    def _add_columns(self, ref: TableRef, schema: TableSchema, names: list[str]) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the data lives, for messages."""

    # -- helpers ------------------------------------------------------------------------
    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def render(self, canonical: str, staged: dict[str, TableRef] | None = None) -> str:
        tables = dict(self.tables)
        if staged:
            tables.update(staged)
        return render(canonical, tables, self.dialect)

    def query(self, canonical: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
        return self._fetch(self.render(canonical), params or {})

    def execute(self, canonical: str, params: dict[str, Any] | None = None) -> None:
        self._run(self.render(canonical), params or {})

    def execute_count(self, canonical: str, params: dict[str, Any] | None = None) -> int:
        return self._run_count(self.render(canonical), params or {})

    # -- schema -------------------------------------------------------------------------
    def managed_tables(self) -> list[TableSchema]:
        """Tables this engine creates on `init`: all on DuckDB (but the stage lease: one
        machine's file needs none); only bggscore's on BigQuery."""
        return [t for t in TABLES.values() if self.uses_lease or t.logical != LEASES.logical]

    def ensure_schema(self) -> list[str]:
        """Create missing tables and add missing columns; safe to repeat. Returns what changed."""
        changed = []
        for schema in self.managed_tables():
            ref = self.tables[schema.logical]
            existing = self._table_columns(ref)
            if existing is None:
                self._create_table(ref, schema)
                changed.append(f"created {ref}")
                continue
            later = MIGRATED_COLUMNS.get(schema.logical, ())  # `warehouse migrate` adds them
            missing = [name for name in schema.names if name not in existing and name not in later]
            if missing:
                self._add_columns(ref, schema, missing)
                changed.append(f"added {', '.join(missing)} to {ref}")
        return changed

    def missing_tables(self, logicals: list[str] | None = None) -> list[str]:
        wanted = logicals or [t for t in TABLES if self.uses_lease or t != LEASES.logical]
        return [str(self.tables[t]) for t in wanted if self._table_columns(self.tables[t]) is None]

    def require_tables(self, logicals: list[str]) -> None:
        """Tables exist, and bggscore's own have every column this version writes."""
        missing, outdated, older = [], [], []
        managed = {schema.logical for schema in self.managed_tables() if schema.owned}
        for logical in logicals:
            ref = self.tables[logical]
            columns = self._table_columns(ref)
            if columns is None:
                missing.append(str(ref))
            elif logical in managed:
                later = MIGRATED_COLUMNS.get(logical, ())
                if any(c not in columns for c in later):
                    older.append(str(ref))
                lacking = [c for c in TABLES[logical].names if c not in columns and c not in later]
                if lacking:
                    outdated.append(f"{ref} ({', '.join(lacking)})")
        if missing:
            raise WarehouseError(
                f"warehouse {self.location} is missing table(s) {', '.join(missing)}",
                "run `bggscore warehouse init` first",
            )
        if outdated:
            raise WarehouseError(
                f"warehouse {self.location} has tables from an older bggscore lacking columns: "
                + "; ".join(outdated),
                "run `bggscore warehouse init` to add them",
            )
        if older:
            raise WarehouseError(
                f"warehouse {self.location} is at schema version 1 ({', '.join(older)} is not "
                f"partitioned by stage); this bggscore needs version {WAREHOUSE_SCHEMA_VERSION}",
                "run `bggscore warehouse migrate` (`--dry-run` shows what it does first)",
            )

    def schema_version(self) -> int | None:
        """The layout of the warehouse's own tables: WAREHOUSE_SCHEMA_VERSION, 1 for a state
        table from before it was partitioned by stage, None before `warehouse init`."""
        columns = self._table_columns(self.tables["scoring_state"])
        if columns is None:
            return None
        later = MIGRATED_COLUMNS["scoring_state"]
        return WAREHOUSE_SCHEMA_VERSION if all(c in columns for c in later) else 1

    def feature_columns(self) -> dict[str, str]:
        """Columns the features table has now (for model signature checks)."""
        columns = self._table_columns(self.tables["games_features"])
        if columns is None:
            self.require_tables(["games_features"])
        return columns or {}

    # -- reads --------------------------------------------------------------------------
    def read_features(
        self,
        selection: queries.Selection,
        columns: list[str] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        with_hash: bool = False,
    ) -> Iterator[pl.DataFrame]:
        """Stream the selected games as polars frames, each sorted by game_id.

        Batches come in the engine's storage order (no catalogue-wide sort), so which
        games share a batch is an engine detail; every game comes exactly once.
        """
        wanted = list(columns or GAMES_FEATURES.names)
        if "description" in wanted:  # the text is read anyway: its length comes with it
            wanted = [c for c in wanted if c != queries.DESCRIPTION_CHARS]
        sql = self.render(queries.features_sql(wanted, with_hash))
        ids = selection.game_ids
        if ids is not None and len(ids) <= batch_size:
            # the games of a changed-only pass, at most one batch: one fetch, no stream
            # (which on DuckDB would import pyarrow, a tenth of a second)
            frame = self._fetch(sql, selection.params())
            if not frame.is_empty():
                yield frame.sort("game_id")
            return
        for table in self._fetch_batches(sql, selection.params(), batch_size):
            if table.num_rows:
                ready = [cast(pl.DataFrame, pl.from_arrow(table)).sort("game_id")]
                del table
                # popped, not named: the caller then holds the only copy of the batch and
                # can drop it while this generator is suspended
                yield ready.pop()

    def count_features(self, selection: queries.Selection) -> int:
        return int(self.query(queries.COUNT_SELECTION, selection.params())["n"][0])

    def existing_game_ids(self, game_ids: list[int]) -> set[int]:
        frame = self.query(queries.EXISTING_IDS, {"game_ids": Typed(game_ids, "ARRAY<INT64>")})
        return set(frame["game_id"].to_list())

    def read_hashes(self, game_ids: list[int] | None = None) -> pl.DataFrame:
        if game_ids is None:
            return self.query(queries.ALL_HASHES)
        return self.query(queries.HASHES_FOR_IDS, {"game_ids": Typed(game_ids, "ARRAY<INT64>")})

    def state_refs(self, stage: str, game_ids: list[int]) -> pl.DataFrame:
        """Of these games, the job and timestamp of the output the stage last wrote."""
        params = {
            "partition": stage_partition(stage),
            "stage": stage,
            "game_ids": Typed(game_ids, "ARRAY<INT64>"),
        }
        return self.query(queries.STATE_REFS, params)

    def state_refs_of(self, wanted: dict[str, list[int]]) -> dict[str, pl.DataFrame]:
        """``state_refs`` of several stages in one query (stage -> its games)."""
        stages = sorted(stage for stage, ids in wanted.items() if ids)
        if not stages:
            return {stage: self.state_refs(stage, []) for stage in wanted}
        ids = sorted({i for stage in stages for i in wanted[stage]})
        params = {
            "partitions": Typed(sorted({stage_partition(s) for s in stages}), "ARRAY<INT64>"),
            "stages": Typed(stages, "ARRAY<STRING>"),
            "game_ids": Typed(ids, "ARRAY<INT64>"),
        }
        rows = self.query(queries.STATE_REFS_OF, params)
        return {
            stage: rows.filter(
                (pl.col("stage") == stage) & pl.col("game_id").is_in(wanted[stage])
            ).drop("stage")
            for stage in wanted
        }

    def _latest(
        self,
        stage: str,
        game_ids: list[int],
        rows_sql: str,
        columns: dict[str, pl.DataType],
        refs: pl.DataFrame | None = None,
    ) -> pl.DataFrame:
        """The rows of the stage's table its state names for these games: the state says
        which job wrote each and when, and the table is read in those partitions only (a
        join against its whole history would bill all of it). ``columns``: what the rows
        hold besides game_id and job_id (the shape when no game has any). ``refs``: the
        state of these games, when already read (``state_refs_of``)."""
        if refs is None and game_ids:
            refs = self.state_refs(stage, game_ids)
        if refs is None or refs.is_empty():
            schema = {"game_id": pl.Int64(), **columns, "job_id": pl.String()}
            return pl.DataFrame(schema=schema)
        params = {
            "stamps": Typed(refs["score_ts"].unique().sort().to_list(), "ARRAY<TIMESTAMP>"),
            "game_ids": Typed(refs["game_id"].to_list(), "ARRAY<INT64>"),
        }
        rows = self.query(rows_sql, params)
        picked = refs.select("game_id", "job_id").join(rows, on=["game_id", "job_id"], how="inner")
        return picked.select("game_id", *columns, "job_id")

    def latest_complexity(
        self, game_ids: list[int], refs: pl.DataFrame | None = None
    ) -> pl.DataFrame:
        """The stored complexity prediction each game was last scored with."""
        columns: dict[str, pl.DataType] = {
            "predicted_complexity": pl.Float64(),
            "predicted_complexity_raw": pl.Float64(),
        }
        rows = self._latest(COMPLEXITY, game_ids, queries.COMPLEXITY_ROWS, columns, refs)
        return rows.rename({"job_id": "complexity_job_id"})

    def latest_text_embeddings(
        self, game_ids: list[int], refs: pl.DataFrame | None = None
    ) -> pl.DataFrame:
        """The stored description embedding each game last got."""
        columns: dict[str, pl.DataType] = {"description_embedding": pl.List(pl.Float64())}
        rows = self._latest(TEXT_EMBEDDINGS, game_ids, queries.TEXT_EMBEDDING_ROWS, columns, refs)
        return rows.rename({"job_id": "text_job_id"})

    def description_md5(self, game_ids: list[int]) -> pl.DataFrame:
        """(game_id, input_hash): the md5 the text stage records of each description."""
        params = {"game_ids": Typed(game_ids, "ARRAY<INT64>")}
        return self.query(queries.DESCRIPTION_MD5, params)

    def input_embeddings(self, game_ids: list[int]) -> pl.DataFrame:
        """The embeddings table's vectors for these games (game_id, embedding, input_hash),
        games without one left out."""
        params = {"game_ids": Typed(game_ids, "ARRAY<INT64>")}
        return self.query(queries.INPUT_EMBEDDINGS, params)

    def input_embedding_widths(self) -> EmbeddingWidths | None:
        """How many vectors the embeddings table holds and their widths; None when the
        table is missing."""
        if not self.input_table_exists(EMBEDDINGS_TABLE_INPUT):
            return None
        row = self.query(queries.INPUT_EMBEDDING_WIDTHS).row(0, named=True)
        return EmbeddingWidths(int(row["n"]), row["lo"], row["hi"])

    def input_table_exists(self, source: Input) -> bool:
        """Whether an input's table is there (its metadata: nothing billed)."""
        return self._table_columns(self.tables[source.table]) is not None

    def input_embedding_check(self, selection: queries.Selection) -> EmbeddingWidths | None:
        """The widths, and the games of the selection without a vector, in one read."""
        if not self.input_table_exists(EMBEDDINGS_TABLE_INPUT):
            return None
        frame = self.query(queries.INPUT_EMBEDDING_CHECK, selection.params())
        first = frame.row(0, named=True)
        missing = frame["game_id"].drop_nulls().to_list()
        return EmbeddingWidths(int(first["n"]), first["lo"], first["hi"], missing)

    def kept_embedding_widths(self, game_ids: list[int]) -> dict[int, int]:
        """width -> vectors of the embeddings table's games not in ``game_ids``: the rows
        a load of these games leaves as they are (most common width first)."""
        params = {"game_ids": Typed(game_ids, "ARRAY<INT64>")}
        frame = self.query(queries.KEPT_EMBEDDING_WIDTHS, params)
        return {int(width): int(n) for width, n in frame.select("width", "n").iter_rows()}

    def latest_game_embeddings(self, model_key: str) -> pl.DataFrame:
        state = {
            "partition": stage_partition(GAME_EMBEDDINGS),
            "stage": GAME_EMBEDDINGS,
            "model_key": model_key,
        }
        stamps = self.query(queries.STAGE_STAMPS, state)["score_ts"].sort().to_list()
        params = {**state, "stamps": Typed(stamps, "ARRAY<TIMESTAMP>")}
        return self.query(queries.LATEST_GAME_EMBEDDINGS, params).sort("game_id")

    def stage_version(self, stage: str, model_key: str) -> tuple[int, str]:
        """A token that changes whenever the stage writes rows for this model key."""
        params = {"partition": stage_partition(stage), "stage": stage, "model_key": model_key}
        values = self.query(queries.STAGE_VERSION, params).row(0, named=True)
        return int(values["n"]), f"{values['last_ts']}|{values['last_job']}"

    def landing_rows(self, job_id: str) -> pl.DataFrame:
        """One job's landing rows: game_id, name and the numeric predictions. A job's rows
        carry the moment its runs row says it started (``score_ts``), which bounds the read
        to that partition; a job the runs table does not know is looked for everywhere."""
        params: dict[str, Any] = {"job_id": Typed(job_id, "STRING")}
        started = None
        if self._table_columns(self.tables["runs"]) is not None:
            row = self.report_job(job_id)
            started = row.get("started_at") if row else None
        if started is not None:
            params["since"] = Typed(started, "TIMESTAMP")
            params["until"] = Typed(started + timedelta(seconds=1), "TIMESTAMP")
        return self.query(queries.landing_rows_sql(bounded=started is not None), params)

    def count_rows(self, logical: str) -> int | None:
        if self._table_columns(self.tables[logical]) is None:
            return None
        return int(self.query(queries.count_sql(logical))["n"][0])

    def last_runs(self, limit: int = 5) -> pl.DataFrame:
        if self._table_columns(self.tables["runs"]) is None:
            return pl.DataFrame(schema=RUNS.polars_schema())
        return self.query(queries.LAST_RUNS, {"limit": limit})

    # -- the report's reads (`bggscore report`) ------------------------------------------
    def report_runs(self, since: datetime, until: datetime, commands: list[str]) -> pl.DataFrame:
        """The runs of these commands that started in [since, until], oldest first."""
        params = {"since": since, "until": until, "commands": Typed(commands, "ARRAY<STRING>")}
        return self.query(queries.REPORT_RUNS, params)

    def report_job(self, job_id: str) -> dict[str, Any] | None:
        """One job's runs row, or None when the runs table has no such job."""
        frame = self.query(queries.REPORT_JOB, {"job_id": Typed(job_id, "STRING")})
        return frame.row(0, named=True) if len(frame) else None

    def latest_job(self, command: str, since: datetime) -> str | None:
        """The newest successful job of ``command`` since then that did something."""
        params = {
            "command": command,
            "status": "success",
            "min_games": 0,
            "since": since,
            "limit": 1,
        }
        frame = self.query(queries.LATEST_JOB, params)
        return str(frame["job_id"][0]) if len(frame) else None

    def lineage(self, logical: str, since: datetime, until: datetime) -> pl.DataFrame:
        """Per job of the window: games by what differs from their previous row (flags
        is_new, features, model, upstream; ``games``)."""
        return self.query(queries.lineage_sql(logical), {"since": since, "until": until})

    def moves(self, job_id: str) -> pl.DataFrame:
        """A job's landing rows of games scored before, with their previous row's values."""
        return self.query(queries.moves_sql(), {"job_id": Typed(job_id, "STRING")})

    def predictions_as_of(self, as_of: datetime) -> pl.DataFrame:
        """Each game's newest landing row at ``as_of``, with the actuals (``actual_*``)."""
        return self.query(queries.predictions_as_of_sql(), {"as_of": as_of})

    def job_models(self, logical: str, job_id: str) -> dict[str, str]:
        """Model type -> ``name:version`` of one job's rows in a history table."""
        frame = self.query(queries.job_models_sql(logical), {"job_id": Typed(job_id, "STRING")})
        found: dict[str, str] = {}
        for kind, (name, version) in queries.JOB_MODEL_COLUMNS[logical].items():
            pairs = frame.select(name, version).drop_nulls(name).unique().sort(name, version)
            if len(pairs):
                found[kind] = ", ".join(f"{n}:{v}" if v is not None else n for n, v in pairs.rows())
        return found

    def map_points(self) -> pl.DataFrame:
        """Every game's current 2-D embedding coordinates (game_id, name, coordinates_2d)."""
        state = {"partition": stage_partition(GAME_EMBEDDINGS), "stage": GAME_EMBEDDINGS}
        stamps = self.query(queries.MAP_STAMPS, state)["score_ts"].sort().to_list()
        params = {**state, "stamps": Typed(stamps, "ARRAY<TIMESTAMP>")}
        return self.query(queries.MAP_POINTS, params)

    # -- integrity (`warehouse check`) --------------------------------------------------
    def table_columns(self, logical: str) -> dict[str, str] | None:
        """A table's columns and their types as the engine names them; None if missing."""
        return self._table_columns(self.tables[logical])

    def expected_type(self, kind: str) -> str | None:
        """How the engine names a schema type in ``table_columns`` (None: not compared)."""
        return None

    def unreadable_tables(self) -> list[tuple[str, str]]:
        """Tables whose stored data cannot be read back whole (table, what the engine
        said); engines without a file of their own have none."""
        return []

    def state_without_output(self, stage: str, output: str) -> tuple[int, int | None]:
        """A stage's state rows whose output row (same job, same game) is missing: how
        many, and one of their games."""
        params = {"partition": stage_partition(stage), "stage": stage}
        row = self.query(queries.state_without_output_sql(output), params).row(0)
        return int(row[0]), row[1]

    def repeated_keys(self, logical: str) -> tuple[int, int | None]:
        """Keys held more than once in a one-row-per-key table: how many, one game's id."""
        row = self.query(queries.repeated_keys_sql(logical)).row(0)
        return int(row[0]), row[1]

    # -- writes -------------------------------------------------------------------------
    def write(self, writes: list[Write]) -> None:
        """Commit several tables' rows atomically (all or nothing); in a ``--dry-run``,
        count them instead.

        Writes to one table in one mode are staged and written together (one statement
        for every stage's state rows of a batch); each statement is bounded by constant
        parameters to the partitions its rows fall in."""
        if COMMAND.dry_run is not None:
            for item in writes:
                COMMAND.dry_run.write(str(self.tables[item.logical]), len(item.frame))
            return
        staged: dict[str, Any] = {}
        statements: list[tuple[str, dict[str, Any]]] = []
        refs: dict[str, TableRef] = {}
        planned: list[tuple[TableSchema, str, str, int, pl.DataFrame]] = []
        for index, (logical, mode, rows) in enumerate(_grouped(writes)):
            schema = TABLES[logical]
            name = f"bggscore_stage_{index}"
            frame = rows
            if schema.partition_by_range:
                frame = with_stage_partition(frame)
            frame = schema.conform(frame)
            staged[name] = self._staged(frame)
            refs[name] = self._stage_ref(name)
            if mode == "upsert":
                # MERGE refuses two rows for one key; delete-and-append would keep both
                keys = frame.select(schema.key)
                repeated = keys.filter(keys.is_duplicated())
                if len(repeated):
                    key = ", ".join(f"{k}={v}" for k, v in repeated.row(0, named=True).items())
                    raise WarehouseError(
                        f"upsert into {logical} repeats a key ({key}); nothing was written",
                        "each game must appear once in games_features and game_features_hash: "
                        "remove the repeated rows there, then rerun",
                    )
            planned.append((schema, mode, name, index, frame))
        variables = self.bounds_as_variables and not self._one_statement(staged)
        bounded: list[tuple[TableSchema, str, tuple[str, str]]] = []
        for schema, mode, name, index, frame in planned:
            statements += self.write_statements(
                schema, mode, name, index, frame, variables, bounded
            )
        # every append's bounds in one statement ahead of the rest (sql.declare_bounds_sql)
        statements[:0] = [(sql, {}) for sql in declare_bounds_sql(bounded)]
        rendered = [(self.render(sql, refs), params) for sql, params in statements]
        self._commit(staged, rendered)

    def write_statements(
        self,
        schema: TableSchema,
        mode: str,
        staged: str,
        index: int,
        frame: pl.DataFrame | None = None,
        variables: bool | None = None,
        bounded: list[tuple[TableSchema, str, tuple[str, str]]] | None = None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """The canonical statements (and their parameters) writing the ``index``-th staged
        frame: each bounded to the partitions its rows fall in, given as query parameters
        (from ``frame``), or on BigQuery as script variables the statements before it
        compute from the staged rows (a BigQuery script takes no query parameters in the
        emulator, and a variable prunes partitions as a constant does). With ``bounded``,
        the bounds an append's variables need are added to it instead of declared here
        (``write`` declares every frame's at once: sql.declare_bounds_sql)."""
        if variables is None:
            variables = self.bounds_as_variables
        if bounded is None:
            own: list[tuple[TableSchema, str, tuple[str, str]]] = []
            statements = self.write_statements(schema, mode, staged, index, frame, variables, own)
            return [(sql, {}) for sql in declare_bounds_sql(own)] + statements
        if mode == "append":
            bounds = bound_params(schema, index)
            column = schema.partition_by_day
            # a row without a value could match a row in any partition: then no bound
            unbounded = (
                frame is not None
                and column is not None
                and (frame.is_empty() or frame[column].null_count() > 0)
            )
            if bounds is None or column is None or unbounded:
                return [(append_new_sql(schema, staged), {})]
            if variables:
                bounded.append((schema, staged, bounds))
                return [(append_new_sql(schema, staged, bounds, True), {})]
            params: dict[str, Any] = {}
            if frame is not None:
                low, high = frame[column].min(), frame[column].max()
                params = {bounds[0]: Typed(low, "TIMESTAMP"), bounds[1]: Typed(high, "TIMESTAMP")}
            return [(append_new_sql(schema, staged, bounds), params)]
        name = partition_param(schema, index)
        if name is None or schema.partition_by_range is None:
            return [(sql, {}) for sql in self.upsert_statements(schema, staged)]
        if variables:
            merge = self.upsert_statements(schema, staged, name, True)
            return [(sql, {}) for sql in [declare_partitions_sql(schema, staged, name), *merge]]
        params = {}
        if frame is not None:
            values = frame[schema.partition_by_range].unique().sort().to_list()
            params[name] = Typed(values, "ARRAY<INT64>")
        return [(sql, params) for sql in self.upsert_statements(schema, staged, name)]

    def upsert_statements(
        self,
        schema: TableSchema,
        staged: str,
        partitions: str | None = None,
        variables: bool = False,
    ) -> list[str]:
        """Canonical statements that merge staged rows into the table on its key (with
        ``partitions``, the parameter or variable naming the partitions the rows fall in)."""
        return [upsert_sql(schema, staged, partitions, variables)]

    def concurrent_writer(self) -> Warehouse:
        """A handle whose ``write`` may run on another thread while this one reads."""
        return self

    def close_writer(self) -> None:  # noqa: B027 - an optional hook
        """Release what ``concurrent_writer`` opened (nothing by default)."""

    def _one_statement(self, staged: dict[str, Any]) -> bool:
        """Whether the engine sends a write of these staged frames as one statement (its
        rows inline): then its bounds go as query parameters, not script variables."""
        return False

    def _staged(self, frame: pl.DataFrame) -> Any:
        """A frame as ``_commit`` stages it (an Arrow table unless the engine says)."""
        return frame.to_arrow()

    def _stage_ref(self, name: str) -> TableRef:
        """Where a staged frame is visible to statements (engine-specific)."""
        return TableRef(name)

    def run_row(
        self,
        job_id: str,
        command: str,
        stage: str,
        status: str,
        games: int,
        started_at: datetime,
        message: str = "",
    ) -> Write:
        """A job's row of the runs table, as an upsert: written alone (``write([row])``) or
        with a batch, in its transaction."""
        row = pl.DataFrame(
            {
                "job_id": [job_id],
                "command": [command],
                "stage": [stage],
                "status": [status],
                "games": [games],
                "started_at": [started_at],
                "finished_at": [datetime.now(timezone.utc)],
                "message": [message],
                "source_environment": [self.settings.source_environment],
            }
        )
        return Write("runs", row, "upsert")


def _grouped(writes: list[Write]) -> list[tuple[str, str, pl.DataFrame]]:
    """(table, mode, rows) once per table and mode, in the order each first appears,
    with the rows of its writes concatenated."""
    groups: dict[tuple[str, str], list[pl.DataFrame]] = {}
    for item in writes:
        groups.setdefault((item.logical, item.mode), []).append(item.frame)
    return [
        (logical, mode, frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal"))
        for (logical, mode), frames in groups.items()
    ]
