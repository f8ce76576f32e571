"""BigQuery faults in the middle of `bggscore score`: a staging load that fails, and a
transaction script whose third statement fails, both in the second of four batches.

The real BigQuery engine talks to bqemulator (the ``emulator`` of tests/support/warehouses.py):
the production Parquet load path runs, and the emulator rolls back a failed
``BEGIN TRANSACTION; ...; COMMIT TRANSACTION;`` script as BigQuery does. Each fault must
leave batch 1 whole, nothing of batch 2 or later, no staging table, a 'failed' run and a
one-line error; a `--changed-only` rerun then completes with every invariant true.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.conftest import Outcome
from tests.faults.harness import PROGRESS_RE
from tests.support.output import assert_one_line_error
from tests.support.warehouses import create_foreign_tables

from bggscore.warehouse import base
from bggscore.warehouse.bigquery_engine import STAGING_PREFIX, BigQueryWarehouse
from bggscore.warehouse.schemas import TABLES

pytestmark = [
    pytest.mark.faults,
    pytest.mark.bigquery,
    # bqemulator's own DuckDB calls (in its server thread) warn about an Arrow copy
    pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning"),
]

GAMES = 500  # 484 with a year: batches of 150, 150, 150 and 34
BATCH = 150
SCORE = ("score", "--all-years", "--batch-size", str(BATCH), "--json")
STAGES = {"complexity": "complexity_predictions", "main": "ml_predictions_landing"}


@dataclass
class BigQueryHome:
    home: Path
    cli: Any

    def warehouse(self) -> BigQueryWarehouse:
        from bggscore.settings import load_settings

        return BigQueryWarehouse(load_settings())

    def query(self, canonical: str) -> pl.DataFrame:
        with self.warehouse() as wh:
            return wh.query(canonical)

    def in_range(self) -> list[int]:
        frame = self.query("SELECT game_id FROM games_features WHERE year_published IS NOT NULL")
        return sorted(frame["game_id"].to_list())

    def games(self, logical: str, job_id: str) -> set[int]:
        frame = self.query(f"SELECT game_id, job_id FROM {logical}")
        return set(frame.filter(pl.col("job_id") == job_id)["game_id"].to_list())

    def state(self, stage: str) -> pl.DataFrame:
        frame = self.query("SELECT stage, game_id, job_id FROM scoring_state")
        return frame.filter(pl.col("stage") == stage)

    def runs(self) -> pl.DataFrame:
        return self.query("SELECT job_id, status, games, message FROM runs")

    def staging_tables(self) -> list[str]:
        with self.warehouse() as wh:
            ml = wh.tables["runs"]
            listed = wh.client.list_tables(f"{ml.project}.{ml.dataset}")
            return [t.table_id for t in listed if t.table_id.startswith(STAGING_PREFIX)]


@pytest.fixture
def bq(
    emulator: Any, home: Path, demo_run: Any, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> BigQueryHome:
    """A home whose warehouse is BigQuery (datasets of its own in the emulator), holding
    500 demo games and the demo's registry; every BigQueryWarehouse talks to the emulator."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from bggscore.demo.catalogue import generate_catalogue
    from bggscore.warehouse.load import load_games

    def client() -> bigquery.Client:
        return bigquery.Client(
            project=emulator.project_id,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=emulator.rest_url),
        )

    real_init = BigQueryWarehouse.__init__

    def init(self: BigQueryWarehouse, settings: Any, client_factory: Any = None) -> None:
        real_init(self, settings, client_factory=client)

    monkeypatch.setattr(BigQueryWarehouse, "__init__", init)
    suffix = uuid.uuid4().hex[:10]  # the emulator lives for the session: isolate each test
    for key, value in {
        "ENGINE": "bigquery",
        "FEATURES_PROJECT": "bgg-data-warehouse",
        "ML_PROJECT": "bgg-predictive-models",
        "FEATURES_DATASET": f"analytics_{suffix}",
        "HASH_DATASET": f"staging_{suffix}",
        "ML_DATASET": f"raw_{suffix}",
    }.items():
        monkeypatch.setenv(f"BGGSCORE_WAREHOUSE__{key}", value)
    home.mkdir()
    shutil.copytree(demo_run.home / "registry", home / "registry")
    found = BigQueryHome(home, cli)
    with found.warehouse() as wh:
        create_foreign_tables(wh)
        wh.ensure_schema()
        load_games(wh, generate_catalogue(GAMES, 0))
    return found


def _one_line_error(stderr: str, *needles: str) -> str:
    """Besides the progress lines of the batches that committed, one `error:` line."""
    rest = "\n".join(line for line in stderr.splitlines() if not PROGRESS_RE.search(line))
    return assert_one_line_error(rest, *needles)


def _assert_only_first_batch(bq: BigQueryHome, failed: Outcome) -> str:
    """Batch 1 whole in all four tables, nothing else; no staging table; run 'failed'."""
    assert failed.exit_code == 1, failed.stderr
    assert failed.stdout == ""
    ordered = bq.in_range()
    runs = bq.runs()
    assert len(runs) == 1
    run = runs.row(0, named=True)
    assert run["status"] == "failed"
    assert run["message"] and "\n" not in run["message"]
    first = set(ordered[:BATCH])
    for stage, logical in STAGES.items():
        assert bq.games(logical, run["job_id"]) == first, logical
        assert len(bq.query(f"SELECT game_id FROM {logical}")) == BATCH, logical
        state = bq.state(stage)
        assert set(state["game_id"].to_list()) == first, stage
        assert state["job_id"].unique().to_list() == [run["job_id"]]
    assert run["games"] == BATCH
    assert bq.staging_tables() == []
    return run["job_id"]


def _assert_rerun_completes(bq: BigQueryHome, killed_job: str) -> None:
    rerun = bq.cli("score", "--changed-only", "--all-years", "--batch-size", str(BATCH), "--json")
    assert rerun.exit_code == 0, rerun.stderr
    ordered = bq.in_range()
    result = json.loads(rerun.stdout)
    assert result["games_scored"] == len(ordered) - BATCH
    for stage, logical in STAGES.items():
        landing = bq.query(f"SELECT game_id, job_id FROM {logical}")
        assert not landing.is_duplicated().any(), logical
        state = bq.state(stage)
        assert sorted(state["game_id"].to_list()) == ordered, stage
        joined = state.join(landing, on=["game_id", "job_id"], how="inner")
        assert len(joined) == len(ordered)  # one landing row per state row, none missing
        assert bq.games(logical, killed_job) == set(ordered[:BATCH])
        assert bq.games(logical, result["job_id"]) == set(ordered[BATCH:])
    statuses = dict(bq.runs().select("job_id", "status").rows())
    assert statuses == {killed_job: "failed", result["job_id"]: "success"}
    assert bq.staging_tables() == []


def test_failed_staging_load_in_batch_two_lands_nothing_of_it(
    bq: BigQueryHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.api_core import exceptions as api_exceptions

    real_load = BigQueryWarehouse._load_staging
    landing_loads = []

    def load(self: BigQueryWarehouse, ref: Any, table: Any, schema: Any) -> None:
        # a batch stages complexity rows, their state, landing rows and their state in one
        # staging table, with one load: fail batch 2's (its staging table already exists)
        if set(TABLES["ml_predictions_landing"].names) <= set(table.column_names):
            landing_loads.append(ref.table)
            if len(landing_loads) == 2:
                raise api_exceptions.ServiceUnavailable("injected: load job backend error")
        real_load(self, ref, table, schema)

    monkeypatch.setattr(BigQueryWarehouse, "_load_staging", load)
    failed = bq.cli(*SCORE)
    monkeypatch.setattr(BigQueryWarehouse, "_load_staging", real_load)

    _one_line_error(failed.stderr, "could not be reached", "staging rows", "injected")
    assert len(landing_loads) == 2  # batch 3 and 4 were never staged
    job = _assert_only_first_batch(bq, failed)
    _assert_rerun_completes(bq, job)


def test_failed_statement_in_batch_two_script_rolls_the_whole_batch_back(
    bq: BigQueryHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_append = base.append_new_sql
    landing_statements = []

    def append(schema: Any, staged: str, *args: Any) -> str:
        if schema.logical == "ml_predictions_landing":
            landing_statements.append(staged)
            if len(landing_statements) == 2:
                # the last statement of batch 2's script: complexity rows and both stages'
                # state were already written by the statements before it in the same
                # transaction
                return "SELECT ERROR('injected: statement 3 of 3 failed')"
        return real_append(schema, staged, *args)

    monkeypatch.setattr(base, "append_new_sql", append)
    failed = bq.cli(*SCORE)
    monkeypatch.setattr(base, "append_new_sql", real_append)

    _one_line_error(failed.stderr, "committing the write transaction", "injected")
    assert len(landing_statements) == 2  # batches 3 and 4 were never written
    job = _assert_only_first_batch(bq, failed)
    _assert_rerun_completes(bq, job)


# -- guard rails: the byte cap and job labels -------------------------------------------------
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{1,63}$")
TABLE_REF = re.compile(r"`[^`]+`\.`[^`]+`\.`[^`]+`")


@dataclass
class Sent:
    kind: str  # query | dry_run | load
    sql: str
    config: Any


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Sent]:
    """Every job config the real client is given (the emulator ignores caps and labels)."""
    from google.cloud import bigquery

    found: list[Sent] = []
    real_query, real_load = bigquery.Client.query, bigquery.Client.load_table_from_file

    def query(self: Any, sql: str, job_config: Any = None, **kwargs: Any) -> Any:
        kind = "dry_run" if job_config is not None and job_config.dry_run else "query"
        found.append(Sent(kind, sql, job_config))
        return real_query(self, sql, job_config=job_config, **kwargs)

    def load(self: Any, file: Any, destination: Any, *args: Any, **kwargs: Any) -> Any:
        found.append(Sent("load", str(destination), kwargs.get("job_config")))
        return real_load(self, file, destination, *args, **kwargs)

    monkeypatch.setattr(bigquery.Client, "query", query)
    monkeypatch.setattr(bigquery.Client, "load_table_from_file", load)
    return found


def test_every_job_carries_the_byte_cap_and_labels_naming_command_stage_and_run(
    bq: BigQueryHome, sent: list[Sent]
) -> None:
    first = bq.cli("score", "--all-years", "--json")
    assert first.exit_code == 0, first.stderr
    scored = list(sent)
    embedded = bq.cli("run", "--all-years", "--json")  # the embeddings, then nothing left
    assert embedded.exit_code == 0, embedded.stderr
    both = list(sent)
    sent.clear()
    noop = bq.cli("run", "--all-years", "--json")
    assert noop.exit_code == 0, noop.stderr
    assert json.loads(noop.stdout)["skipped_reason"] == "no_changes"

    for job in [*both, *sent]:  # score, then run: scripts, loads, runs rows, reads
        labels = job.config.labels
        assert set(labels) == {"tool", "command", "stage", "job_id"}, job.sql[:80]
        assert all(LABEL_VALUE.match(value) for value in labels.values()), labels
        if job.kind != "load":
            assert job.config.maximum_bytes_billed >= 2**30, job.sql[:80]  # the floor
    # the score run: every job labelled with its command and its job id, writes too
    job_id = json.loads(first.stdout)["job_id"]
    assert {j.config.labels["command"] for j in scored} == {"score"}
    assert {j.config.labels["job_id"] for j in scored} == {job_id.lower()}
    stages = {j.config.labels["stage"] for j in scored if j.kind == "load"}
    assert stages == {"complexity_main"}  # the one pass of both stages
    # a no-op sends only detection: one query for every stage, labelled "all" and a run id
    assert all(j.kind == "query" for j in sent)
    assert {j.config.labels["command"] for j in sent} == {"run"}
    assert [j.config.labels["stage"] for j in sent] == ["all"]
    assert "none" not in {j.config.labels["job_id"] for j in sent}


def test_a_job_over_the_byte_cap_fails_in_one_line_and_writes_nothing(
    bq: BigQueryHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.api_core import exceptions as api_exceptions
    from google.cloud import bigquery

    real_query = bigquery.Client.query

    def query(self: Any, sql: str, job_config: Any = None, **kwargs: Any) -> Any:
        # as BigQuery refuses: every table a query reads bills at least 10 MiB
        needed = 10 * 2**20 * len(set(TABLE_REF.findall(sql)))
        cap = job_config.maximum_bytes_billed if job_config is not None else None
        if cap is not None and needed > cap:
            message = f"Query exceeded limit for bytes billed: {cap}. {needed} or higher required."
            raise api_exceptions.BadRequest(
                message, errors=[{"reason": "bytesBilledLimitExceeded", "message": message}]
            )
        return real_query(self, sql, job_config=job_config, **kwargs)

    monkeypatch.setattr(bigquery.Client, "query", query)
    monkeypatch.setenv("BGGSCORE_WAREHOUSE__MAXIMUM_BYTES_BILLED", str(10 * 2**20))

    failed = bq.cli("score", "--changed-only", "--all-years", "--json")

    assert failed.exit_code == 1
    assert failed.stdout == ""
    line = assert_one_line_error(
        failed.stderr, "warehouse.maximum_bytes_billed", "BGGSCORE_WAREHOUSE__MAXIMUM_BYTES_BILLED"
    )
    assert "nothing was written" in line
    monkeypatch.setattr(bigquery.Client, "query", real_query)
    for logical in ("ml_predictions_landing", "complexity_predictions", "scoring_state", "runs"):
        assert bq.query(f"SELECT COUNT(*) AS n FROM {logical}")["n"][0] == 0, logical


def test_dry_run_prices_each_read_counts_the_writes_and_writes_nothing(
    bq: BigQueryHome, sent: list[Sent]
) -> None:
    result = bq.cli("score", "--all-years", "--dry-run", "--json")
    jobs = list(sent)  # what the command sent (not the checks below)

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    dry = document["dry_run"]
    assert dry["written"] is False
    in_range = len(bq.in_range())
    assert dry["writes"][f"{bq_table(bq, 'ml_predictions_landing')}"] == in_range
    assert dry["writes"][f"{bq_table(bq, 'scoring_state')}"] == 2 * in_range  # two stages
    reads = [j for j in jobs if j.kind == "query" and not j.sql.startswith("BEGIN")]
    priced = [j for j in jobs if j.kind == "dry_run"]
    assert len(priced) == len(dry["reads"]) == len(reads)  # every read priced first
    assert [j.sql for j in priced] == [j.sql for j in reads]
    assert not [j for j in jobs if j.kind == "load" or j.sql.startswith(("BEGIN", "MERGE"))]
    for logical in ("ml_predictions_landing", "complexity_predictions", "scoring_state", "runs"):
        assert bq.query(f"SELECT COUNT(*) AS n FROM {logical}")["n"][0] == 0, logical


def bq_table(bq: BigQueryHome, logical: str) -> str:
    with bq.warehouse() as wh:
        return str(wh.tables[logical])
