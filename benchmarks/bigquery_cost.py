"""What bggscore's runs cost on BigQuery: jobs, API calls and bytes billed (issue 15).

    python benchmarks/bigquery_cost.py            # a 2,000-game catalogue in the emulator
    python benchmarks/bigquery_cost.py --quick    # 1,000 games, fewer history lengths

bggscore runs in this process against bqemulator with the real google-cloud-bigquery
client, wrapped to record every job it sends (queries, scripts, loads, dry runs), every
other API call and every HTTP request. The emulator bills nothing, so the bill is
computed (benchmarks/bq_billing.py) from each job's SQL with BigQuery's on-demand rules,
against the tables' sizes in production: 475,000 games (descriptions ~1.5 KB), 150,000 in
the scored range, 1,800 changed a day. A table's average bytes per row of each column are
measured from what bggscore wrote in the emulator (games_features: the demo catalogue,
its description set to production's 1.5 KB); its rows, and for partitioned tables their
days, follow the history: the first run scored the range, then 1,800 rows a day, and for
"+ old year" a year of production's old full rescores (150,000 rows a day) in landing.
The state table holds one partition per stage (its stage_partition), each of the range's
150,000 games. Staging tables are billed at their loaded width, their rows scaled to
production's; their columns' values (what a write script DECLAREs its bounds from) are
those bggscore loaded.

Timestamps bggscore sends or stages fall on production's days thus: whatever the set-up
run (every game in range is new) wrote is the first, full run, as many days ago as the
history is long; the scenarios run today.

The scenarios run once in the emulator (the SQL bggscore sends does not depend on the
history's length; only its parameters and the tables' sizes do), then each is billed at
every history length, beside the plan's query (`SELECT *` of games_features joined with
ROW_NUMBER() over the landing history) on the same sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bqemu
from benchmarks.bq_billing import (
    Biller,
    Statement,
    TableSize,
    arrow_column_bytes,
    arrow_column_values,
)
from benchmarks.common import demo_home, save, table


@dataclass(frozen=True)
class Production:
    games: int = 475_000
    in_range: int = 150_000
    changes: int = 1_800  # games rescored by each stage on a daily run
    description_bytes: int = 1_500


PRODUCTION = Production()
GB = 1e9
# (label, days of bggscore's own history, a year of old full-rescore rows in landing)
HISTORIES = [
    ("1 day", 1, False),
    ("100 days", 100, False),
    ("1 year", 365, False),
    ("1000 days", 1000, False),
    ("1000 days + old year", 1000, True),
]
QUICK_HISTORIES = [HISTORIES[0], HISTORIES[2], HISTORIES[4]]
OUTPUTS_BY_DAY = ("ml_predictions_landing", "complexity_predictions")
EMBEDDINGS_BY_DAY = ("description_embeddings", "game_embeddings")

# The measurement of bggscore before this work (jobs; GB billed at 1 year).
BASELINE = {
    "daily run": (31, 5.8),
    "no-op run": (4, 1.19),
    "daily score --changed-only": (15, 2.47),
    "full score --all-years": (16, 1.66),
}

# The plan's daily query: every feature of the games whose features moved since their
# latest landing row, found by ranking the whole landing history.
PLAN_QUERY = """
SELECT gf.*
FROM games_features AS gf
LEFT JOIN game_features_hash AS fh ON gf.game_id = fh.game_id
LEFT JOIN (
  SELECT game_id, score_ts,
    ROW_NUMBER() OVER (PARTITION BY game_id ORDER BY score_ts DESC) AS rn
  FROM ml_predictions_landing
) AS lp ON gf.game_id = lp.game_id AND lp.rn = 1
WHERE gf.year_published IS NOT NULL
  AND gf.year_published >= @start_year AND gf.year_published < @end_year
  AND (lp.game_id IS NULL OR fh.last_updated > lp.score_ts)
"""


# -- recording what bggscore sends --------------------------------------------------------
@dataclass
class Sent:
    kind: str  # query | script | dry_run | load
    sql: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    cap: int | None = None  # maximum_bytes_billed
    destination: str = ""
    rows: Any = None  # the Arrow table a load sent


class Recorder:
    """Everything the wrapped clients sent since the last ``reset``."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.api: Counter[str] = Counter()
        self.http = 0

    def reset(self) -> None:
        self.sent, self.api, self.http = [], Counter(), 0

    def jobs(self) -> list[Sent]:
        return [s for s in self.sent if s.kind != "dry_run"]

    def counts(self) -> dict[str, int]:
        kinds = Counter(s.kind for s in self.sent)
        return {
            "jobs": len(self.jobs()),
            "queries": kinds["query"],
            "scripts": kinds["script"],
            "loads": kinds["load"],
            "dry_runs": kinds["dry_run"],
            "http_calls": self.http,
            **{f"api_{name}": n for name, n in sorted(self.api.items())},
        }


def _params(config: Any) -> dict[str, Any]:
    out = {}
    for param in getattr(config, "query_parameters", None) or []:
        out[param.name] = getattr(param, "value", getattr(param, "values", None))
    return out


class CountingClient:
    """A google-cloud-bigquery client that records what goes through it."""

    def __init__(self, real: Any, recorder: Recorder) -> None:
        self._real, self._recorder = real, recorder
        http = real._http
        send = http.request

        def request(*args: Any, **kwargs: Any) -> Any:
            recorder.http += 1
            return send(*args, **kwargs)

        http.request = request

    def query(self, sql: str, job_config: Any = None, **kwargs: Any) -> Any:
        script = sql.lstrip().upper().startswith("BEGIN") or ";" in sql.rstrip().rstrip(";")
        kind = (
            "dry_run"
            if getattr(job_config, "dry_run", False)
            else ("script" if script else "query")
        )
        self._recorder.sent.append(
            Sent(
                kind,
                sql,
                _params(job_config),
                dict(getattr(job_config, "labels", None) or {}),
                getattr(job_config, "maximum_bytes_billed", None),
            )
        )
        return self._real.query(sql, job_config=job_config, **kwargs)

    def load_table_from_file(self, file: Any, destination: Any, *args: Any, **kwargs: Any) -> Any:
        import pyarrow.parquet as pq

        start = file.tell()
        rows = pq.read_table(io.BytesIO(file.read()))
        file.seek(start)
        self._load(destination, rows, kwargs.get("job_config"))
        return self._real.load_table_from_file(file, destination, *args, **kwargs)

    def load_table_from_json(self, rows: Any, destination: Any, *args: Any, **kwargs: Any) -> Any:
        import pyarrow as pa

        self._load(destination, pa.Table.from_pylist(list(rows)), kwargs.get("job_config"))
        return self._real.load_table_from_json(rows, destination, *args, **kwargs)

    def _load(self, destination: Any, rows: Any, config: Any) -> None:
        labels = dict(getattr(config, "labels", None) or {})
        self._recorder.sent.append(Sent("load", labels=labels, destination=str(destination)))
        self._recorder.sent[-1].rows = rows

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not callable(attr) or name == "close":
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._recorder.api[name] += 1
            return attr(*args, **kwargs)

        return call


# -- the emulated warehouse ------------------------------------------------------------------
class Emulated:
    """A bggscore home whose warehouse is BigQuery in the emulator, and its CLI."""

    def __init__(self, endpoint: Any, registry: Path, root: Path, recorder: Recorder) -> None:
        from bggscore.warehouse.bigquery_engine import BigQueryWarehouse

        self.endpoint, self.recorder = endpoint, recorder
        self.home = root / "home"
        self.home.mkdir(parents=True)
        shutil.copytree(registry, self.home / "registry")
        suffix = uuid.uuid4().hex[:8]
        self.env = {
            "BGGSCORE_HOME": str(self.home),
            "BGGSCORE_WAREHOUSE__ENGINE": "bigquery",
            "BGGSCORE_WAREHOUSE__FEATURES_PROJECT": "bgg-data-warehouse",
            "BGGSCORE_WAREHOUSE__ML_PROJECT": "bgg-predictive-models",
            "BGGSCORE_WAREHOUSE__FEATURES_DATASET": f"analytics_{suffix}",
            "BGGSCORE_WAREHOUSE__HASH_DATASET": f"staging_{suffix}",
            "BGGSCORE_WAREHOUSE__ML_DATASET": f"raw_{suffix}",
            "XDG_CACHE_HOME": str(root / "cache"),
        }
        os.environ.update(self.env)
        real_init = BigQueryWarehouse.__init__
        self._real_init = real_init

        def init(wh: Any, settings: Any, client_factory: Any = None) -> None:
            real_init(wh, settings, client_factory=lambda: CountingClient(self.client(), recorder))

        BigQueryWarehouse.__init__ = init  # type: ignore[method-assign]

    def close(self) -> None:
        from bggscore.warehouse.bigquery_engine import BigQueryWarehouse

        BigQueryWarehouse.__init__ = self._real_init  # type: ignore[method-assign]

    def client(self) -> Any:
        return bqemu.client(self.endpoint)

    def direct(self) -> Any:
        """A warehouse whose calls are not recorded (set-up, refreshes, measurements)."""
        from bggscore.settings import load_settings
        from bggscore.warehouse.bigquery_engine import BigQueryWarehouse

        wh = BigQueryWarehouse.__new__(BigQueryWarehouse)
        self._real_init(wh, load_settings(), client_factory=self.client)
        return wh

    def cli(self, *args: str) -> dict[str, Any]:
        from typer.testing import CliRunner

        from bggscore.cli.main import app

        result = CliRunner().invoke(app, [*args, "--json"], catch_exceptions=False)
        if result.exit_code:
            raise RuntimeError(f"bggscore {' '.join(args)} failed: {result.stderr[-2000:]}")
        return json.loads(result.stdout)


def processed(document: dict[str, Any]) -> int:
    """The most games one stage of a command's result processed."""
    steps = document.get("steps") or [document]
    counts = [n for step in steps for n in (step.get("stages") or {}).values()]
    return max(counts, default=0)


@dataclass
class Scenario:
    name: str
    command: str
    sent: list[Sent]
    counts: dict[str, int]
    scale: float  # production games per emulated game processed
    games: int  # games processed in the emulator (largest stage)
    seconds: float
    history_end: datetime  # when the set-up run (production's first, full run) ended


def set_up(emu: Emulated, games: int, vectors: Callable[[Any], Any] | None = None) -> Any:
    """The data warehouse's tables and bggscore's, the demo catalogue loaded; with
    ``vectors`` (catalogue -> (game_id, embedding)), the embeddings table filled."""
    from bggscore.demo.catalogue import generate_catalogue
    from bggscore.warehouse.load import load_games
    from bggscore.warehouse.schemas import TABLES

    with contextlib.closing(emu.direct()) as wh:
        for schema in TABLES.values():
            if not schema.owned:  # the data warehouse's own tables, as in production
                wh._create_table(wh.tables[schema.logical], schema)
        wh.ensure_schema()
        catalogue = generate_catalogue(games, 0)
        load_games(wh, catalogue)
        if vectors is not None:
            _fill_embeddings(wh, vectors(catalogue))
    return catalogue


def _fill_embeddings(wh: Any, frame: Any) -> None:
    from bggscore.warehouse.base import Write

    wh.write([Write("embeddings_input", frame, "upsert")])


def run_scenarios(emu: Emulated, games: int, fraction: float) -> tuple[list[Scenario], Any]:
    from bggscore.demo.catalogue import refresh_catalogue
    from bggscore.stages import DEFAULT_BATCH_SIZE
    from bggscore.warehouse.load import load_games
    from bggscore.warehouse.queries import Selection

    catalogue = set_up(emu, games)
    emu.cli("run")  # the first run: every game in range is new
    history_end = datetime.now(timezone.utc)
    scenarios = []

    def measure(name: str, args: list[str], production: int) -> dict[str, Any]:
        emu.recorder.reset()
        started = time.perf_counter()
        document = emu.cli(*args)
        seconds = time.perf_counter() - started
        done = processed(document)
        scale = production / done if done else 1.0
        sent = list(emu.recorder.sent)
        counts = emu.recorder.counts()
        command = " ".join(args)
        scenarios.append(Scenario(name, command, sent, counts, scale, done, seconds, history_end))
        return document

    def refresh(seed: int) -> None:
        nonlocal catalogue
        catalogue = refresh_catalogue(catalogue, fraction, seed)
        with contextlib.closing(emu.direct()) as wh:
            load_games(wh, catalogue)

    measure("no-op run", ["run"], 0)
    refresh(1)
    measure("daily run", ["run"], PRODUCTION.changes)
    refresh(2)
    measure("daily score --changed-only", ["score", "--changed-only"], PRODUCTION.changes)
    with contextlib.closing(emu.direct()) as wh:
        count = wh.count_features(Selection(all_years=True))
    # as many batches as production's full score of its range
    batches = math.ceil(PRODUCTION.in_range / DEFAULT_BATCH_SIZE)
    size = str(max(1, math.ceil(count / batches)))
    measure(
        "full score --all-years",
        ["score", "--all-years", "--batch-size", size],
        PRODUCTION.in_range,
    )
    return scenarios, catalogue


# -- production's pipelines: models reading emb_* from the embeddings table ------------------
EMBEDDINGS = " (emb_*)"  # the suffix of these scenarios' names


def run_embedding_scenarios(
    emu: Emulated, games: int, fraction: float, workdir: Path
) -> list[Scenario]:
    """The daily commands with production's five pipelines imported (tests/support/
    adopt.py: fitted on the demo home, every one reading emb_*), the embeddings table
    filled in the emulator as the data warehouse fills it in production (a vector per
    game, moving with its description)."""
    from tests.support.adopt import adopt
    from tests.support.production import PROD_CODE, fake_embeddings

    from bggscore.demo.catalogue import refresh_catalogue
    from bggscore.warehouse.load import load_games

    adopted = adopt(demo_home(games), workdir, train_games=min(1_000, games // 2))
    catalogue = set_up(emu, games, fake_embeddings)
    emu.cli("models", "import", str(adopted.registry), "--code-path", str(PROD_CODE))
    os.environ.update(adopted.env)
    emu.cli("run")  # the first run: every game in range is new
    history_end = datetime.now(timezone.utc)
    scenarios = []

    def measure(name: str, args: list[str], production: int) -> None:
        emu.recorder.reset()
        started = time.perf_counter()
        done = processed(emu.cli(*args))
        seconds = time.perf_counter() - started
        scale = production / done if done else 1.0
        sent, counts = list(emu.recorder.sent), emu.recorder.counts()
        scenarios.append(
            Scenario(
                name + EMBEDDINGS, " ".join(args), sent, counts, scale, done, seconds, history_end
            )
        )

    def refresh(seed: int) -> None:  # the features and the vectors of the games that moved
        nonlocal catalogue
        moved = refresh_catalogue(catalogue, fraction, seed)
        changed = moved.join(catalogue, on=list(catalogue.columns), how="anti")
        catalogue = moved
        with contextlib.closing(emu.direct()) as wh:
            load_games(wh, catalogue)
            _fill_embeddings(wh, fake_embeddings(changed))

    measure("no-op run", ["run"], 0)
    refresh(1)
    measure("daily run", ["run"], PRODUCTION.changes)
    refresh(2)
    measure("daily score --changed-only", ["score", "--changed-only"], PRODUCTION.changes)
    measure("full score --all-years", ["score", "--all-years"], PRODUCTION.in_range)
    return scenarios


def embedding_reads(scenario: Scenario, physical: str) -> int:
    """The query statements of a scenario that read the embeddings table (each bills its
    vector column over the whole table)."""
    name = ".".join(f"`{part}`" for part in physical.split("."))
    return sum(
        1
        for s in scenario.sent
        if s.kind in ("query", "script") and (name in s.sql or physical in s.sql)
    )


# -- sizes -----------------------------------------------------------------------------------
@dataclass
class Measured:
    """Per logical table: average bytes per row of each column, the partition column."""

    columns: dict[str, dict[str, float]]
    partition: dict[str, str | None]
    physical: dict[str, str]


def measure_tables(emu: Emulated) -> Measured:
    from google.api_core import exceptions

    columns: dict[str, dict[str, float]] = {}
    partition: dict[str, str | None] = {}
    physical: dict[str, str] = {}
    with contextlib.closing(emu.direct()) as wh:
        for logical, ref in wh.tables.items():
            physical[logical] = str(ref)
            try:
                meta = wh.client.get_table(str(ref))
            except exceptions.NotFound:
                continue
            timed = meta.time_partitioning
            partition[logical] = timed.field if timed is not None else None
            rows = wh.client.query(f"SELECT * FROM `{ref}`").result()  # noqa: S608
            arrow = rows.to_arrow(create_bqstorage_client=False)
            widths = arrow_column_bytes(arrow) if arrow.num_rows else {}
            columns[logical] = {f.name: widths.get(f.name, 8.0) for f in meta.schema}
    games = columns.get("games_features")
    if games is not None:
        games["description"] = float(PRODUCTION.description_bytes)
    vectors = columns.get("embeddings_input", {})
    if vectors.get("embedding", 8.0) <= 8.0 and "description_embeddings" in columns:
        # empty in the emulator: production's vectors, as wide as bggscore's own
        vectors["embedding"] = columns["description_embeddings"].get("embedding", 8.0)
    return Measured(columns, partition, physical)


def production_sizes(measured: Measured, days: int, old_year: bool) -> dict[str, TableSize]:
    from bggscore.stages import STAGES
    from bggscore.warehouse.schemas import TABLES, stage_partition

    p = PRODUCTION
    sizes = {}
    for logical, columns in measured.columns.items():
        part = measured.partition.get(logical)
        name = measured.physical[logical]
        if logical in OUTPUTS_BY_DAY + EMBEDDINGS_BY_DAY:
            by_day = {ago: p.changes for ago in range(days)}  # today's run and the dailies
            by_day[days] = p.in_range  # the first, full run
            if old_year and logical == "ml_predictions_landing":
                by_day.update({days + k: p.in_range for k in range(1, 366)})
            if part:
                sizes[name] = TableSize(columns, partition_column=part, days=by_day)
            else:
                sizes[name] = TableSize(columns, rows=sum(by_day.values()))
        elif logical == "scoring_state":  # a partition per stage, each the range's games
            parts = {
                stage_partition(stage.name): TableSize(columns, rows=p.in_range) for stage in STAGES
            }
            column = TABLES[logical].partition_by_range
            sizes[name] = TableSize(columns, range_column=column, parts=parts)
        elif logical == "runs":
            sizes[name] = TableSize(columns, rows=2 * days)
        elif logical == "leases":  # a row per stage
            sizes[name] = TableSize(columns, rows=len(STAGES))
        else:  # the features, their hashes, the embeddings input
            sizes[name] = TableSize(columns, rows=p.games)
    return sizes


def staging_sizes(scenario: Scenario) -> dict[str, TableSize]:
    """The tables loaded in a scenario, at their measured width; rows scaled to
    production's, but a runs row is one row anywhere. A staging table of several frames
    (one partition each) is billed per partition."""
    import pyarrow.compute as pc

    from bggscore.warehouse.bigquery_engine import FRAME_COLUMN

    out = {}
    for sent in scenario.sent:
        if sent.kind != "load" or sent.rows is None:
            continue
        if FRAME_COLUMN not in sent.rows.column_names:
            out[sent.destination] = _staged(sent.rows, scenario.scale)
            continue
        frames = sent.rows.column(FRAME_COLUMN)
        parts = {
            int(value): _staged(sent.rows.filter(pc.equal(frames, value)), scenario.scale)
            for value in pc.unique(frames).to_pylist()
        }
        columns = {name: 0.0 for name in sent.rows.column_names}
        out[sent.destination] = TableSize(columns, range_column=FRAME_COLUMN, parts=parts)
    return out


def _staged(rows: Any, scale: float) -> TableSize:
    from bggscore.warehouse.schemas import RUNS

    present = {name for name in rows.column_names if rows.column(name).null_count < rows.num_rows}
    count = rows.num_rows if present <= set(RUNS.names) else round(rows.num_rows * scale)
    return TableSize(arrow_column_bytes(rows), rows=count, values=arrow_column_values(rows))


# -- billing ---------------------------------------------------------------------------------
@dataclass
class Bill:
    total: float
    statements: list[tuple[Sent, Statement]]  # (the job, one of its statements)
    largest_job: float = 0.0  # what the byte cap is checked against


def timeline(scenario: Scenario, days: int) -> Callable[[datetime], int]:
    """Days ago, in a history of ``days`` days, of a moment of the emulator's: what the
    set-up run wrote is the first full run, the rest is today's."""

    def days_ago(moment: datetime) -> int:
        return days if moment <= scenario.history_end else 0

    return days_ago


def bill(scenario: Scenario, sizes: dict[str, TableSize], today: Any, days: int) -> Bill:
    biller = Biller({**sizes, **staging_sizes(scenario)}, today, timeline(scenario, days))
    statements = []
    largest = 0.0
    for sent in scenario.sent:
        if sent.kind in ("query", "script"):
            job = [(sent, s) for s in biller.job(sent.sql, sent.params)]
            largest = max(largest, sum(s.bytes for _, s in job))
            statements += job
    return Bill(sum(s.bytes for _, s in statements), statements, largest)


def default_cap(measured: Measured, sizes: dict[str, TableSize]) -> float:
    """The engine's default maximum_bytes_billed for a catalogue of production's size."""
    from bggscore.warehouse.bigquery_engine import CAP_FLOOR, CAP_PER_CATALOGUE

    features = sizes[measured.physical["games_features"]]
    return max(CAP_FLOOR, CAP_PER_CATALOGUE * features.bytes(features.columns, None))


def plan_bill(measured: Measured, sizes: dict[str, TableSize], today: Any) -> float:
    from bggscore.warehouse.sql import TableRef, render

    refs = {}
    for logical, name in measured.physical.items():
        project, dataset, table_name = name.split(".")
        refs[logical] = TableRef(table_name, dataset, project)
    sql = render(PLAN_QUERY, refs, "bigquery")
    return sum(s.bytes for s in Biller(sizes, today).job(sql, {}))


def describe(sent: Sent, statement: Statement) -> str:
    """A short name for a statement: its kind, the stage it reads for (a parameter, else
    the job's label), the tables it bills, and the start of its own SQL (a script's
    statement, not the script's), tables without their datasets."""
    from bggscore.warehouse.bigquery_engine import STAGING_PREFIX

    short = [name.split(".")[-1] for name in statement.tables]
    tables = ", ".join(
        sorted("(staged rows)" if n.startswith(STAGING_PREFIX) else n for n in short)
    )
    text = re.sub(r"`[^`]+`\.`[^`]+`\.`([^`]+)`", r"\1", statement.sql or sent.sql)
    text = re.sub(STAGING_PREFIX + r"\w+", "(staged)", text)
    head = " ".join(text.split())[:48]
    stage = sent.params.get("stage") or sent.labels.get("stage", "")
    return f"{statement.kind} ({stage}): {tables} [{head}...]"


# -- the report ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller catalogue, 3 histories")
    parser.add_argument("--games", type=int, help="games in the emulator")
    args = parser.parse_args(argv)
    games = args.games or (1_000 if args.quick else 2_000)
    histories = QUICK_HISTORIES if args.quick else HISTORIES
    registry = demo_home(games) / "registry"
    recorder = Recorder()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bggscore-bqcost-") as tmp, bqemu.emulator() as ep:
        emu = Emulated(ep, registry, Path(tmp), recorder)
        try:
            scenarios, _ = run_scenarios(emu, games, fraction=0.05)
            measured = measure_tables(emu)
        finally:
            emu.close()
        # the same emulator, another home and datasets: production's pipelines imported
        emu = Emulated(ep, registry, Path(tmp) / "emb", recorder)
        try:
            embedded = run_embedding_scenarios(emu, games, 0.05, Path(tmp) / "adopt")
            measured_emb = measure_tables(emu)
        finally:
            emu.close()
    today = datetime.now(timezone.utc).date()
    results = report(scenarios, measured, histories, today, (embedded, measured_emb))
    results["games_in_emulator"] = games
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(f"saved {save('bigquery_cost', results)}")
    return results


def report(
    scenarios: list[Scenario],
    measured: Measured,
    histories: list[Any],
    today: Any,
    embedded: tuple[list[Scenario], Measured] | None = None,
) -> dict[str, Any]:
    billed: dict[str, dict[str, float]] = {s.name: {} for s in scenarios}
    plan: dict[str, float] = {}
    detail: dict[str, Bill] = {}
    caps = []
    for label, days, old_year in histories:
        sizes = production_sizes(measured, days, old_year)
        largest = (0.0, "")
        for scenario in scenarios:
            found = bill(scenario, sizes, today, days)
            billed[scenario.name][label] = found.total
            largest = max(largest, (found.largest_job, scenario.name))
            if label == "1 year":
                detail[scenario.name] = found
        plan[label] = plan_bill(measured, sizes, today)
        caps.append((label, default_cap(measured, sizes), *largest))

    rows = []
    for s in scenarios:
        c = s.counts
        base_jobs = BASELINE.get(s.name, (None, None))[0]
        rows.append(
            [
                s.name,
                f"{c['jobs']} ({c['queries']}q {c['scripts']}s {c['loads']}l)",
                c["http_calls"],
                ", ".join(f"{k[4:]} {v}" for k, v in c.items() if k.startswith("api_")),
                f"{s.games} x{s.scale:,.0f}" if s.games else "-",
                base_jobs if base_jobs is not None else "",
            ]
        )
    print(
        table(
            "jobs bggscore sends (emulator)",
            ["scenario", "jobs", "HTTP", "other API calls", "games", "issue's jobs"],
            rows,
        )
    )
    labels = [label for label, _, _ in histories]
    rows = [
        [name, *(f"{by[label] / GB:.2f}" for label in labels), _baseline_gb(name)]
        for name, by in billed.items()
    ]
    rows.append(["plan's query (1 job/day)", *(f"{plan[label] / GB:.2f}" for label in labels), ""])
    print(
        table(
            "GB billed (on-demand rules, production sizes) by history",
            ["scenario", *labels, "issue, 1 year"],
            rows,
        )
    )
    if "daily run" in detail:
        limit = int(os.environ.get("BQCOST_TOP", "12"))
        top = sorted(detail["daily run"].statements, key=lambda x: -x[1].bytes)[:limit]
        rows = [[describe(sent, s), f"{s.bytes / GB:.3f}"] for sent, s in top]
        print(table("daily run at 1 year: the statements billing most", ["statement", "GB"], rows))
    rows = [
        [label, f"{cap / GB:.2f}", f"{job / GB:.2f} ({name})", f"{cap / job:.1f}x"]
        for label, cap, job, name in caps
    ]
    print(
        table(
            "the default byte cap (4x the catalogue) against the largest job",
            ["history", "cap GB", "largest job GB", "headroom"],
            rows,
        )
    )
    targets = check_targets(scenarios, billed, histories, plan)
    reads: dict[str, Any] = {}
    if embedded is not None:
        reads = embedding_report(*embedded, today)
        targets.insert(6, reads.pop("target"))
    within = all(job <= cap for _, cap, job, _ in caps)
    targets.append(
        {
            "target": "no job of these runs reaches the default cap",
            "measured": f"{min(cap / job for _, cap, job, _ in caps):.1f}x headroom at least",
            "result": "pass" if within else "MISS",
        }
    )
    print(
        table(
            "targets (issue 15)",
            ["target", "measured", "result"],
            [[t["target"], t["measured"], t["result"]] for t in targets],
        )
    )
    return {
        "scenarios": [
            {
                "name": s.name,
                "command": s.command,
                **s.counts,
                "games_emulated": s.games,
                "scale": s.scale,
                "seconds": round(s.seconds, 2),
                "gb_billed": {k: round(v / GB, 4) for k, v in billed[s.name].items()},
                "jobs_with_cap": sum(1 for j in s.sent if j.kind != "load" and j.cap),
                "query_jobs": sum(1 for j in s.sent if j.kind in ("query", "script")),
            }
            for s in scenarios
        ],
        "embedding_scenarios": reads.get("scenarios", []),
        "plan_gb_billed": {k: round(v / GB, 4) for k, v in plan.items()},
        "default_cap_gb": {label: round(cap / GB, 3) for label, cap, _, _ in caps},
        "largest_job_gb": {label: round(job / GB, 3) for label, _, job, _ in caps},
        "targets": targets,
    }


def embedding_report(scenarios: list[Scenario], measured: Measured, today: Any) -> dict[str, Any]:
    """The scenarios with production's pipelines at 1 year of history: their jobs, the
    statements reading the embeddings table and what it bills (its vector column, over
    the whole table, per statement)."""
    days = 365
    sizes = production_sizes(measured, days, False)
    physical = measured.physical["embeddings_input"]
    rows: list[list[Any]] = []
    out: list[dict[str, Any]] = []
    for scenario in scenarios:
        found = bill(scenario, sizes, today, days)
        vectors = sum(s.tables.get(physical, 0.0) for _, s in found.statements)
        reads = embedding_reads(scenario, physical)
        c = scenario.counts
        rows.append(
            [
                scenario.name,
                f"{c['jobs']} ({c['queries']}q {c['scripts']}s {c['loads']}l)",
                reads,
                f"{vectors / GB:.2f}",
                f"{found.total / GB:.2f}",
            ]
        )
        out.append(
            {
                "name": scenario.name,
                "command": scenario.command,
                **c,
                "embedding_table_reads": reads,
                "embedding_table_gb": round(vectors / GB, 4),
                "gb_billed_1_year": round(found.total / GB, 4),
            }
        )
    per_vector = sizes[physical].bytes(["embedding"], None) / GB
    print(
        table(
            f"production's pipelines (emb_*), 1 year: the embeddings table "
            f"({PRODUCTION.games:,} vectors, {per_vector:.2f} GB a read)",
            ["scenario", "jobs", "table reads", "its GB", "GB billed"],
            rows,
        )
    )
    daily = [o for o in out if not o["name"].startswith("full")]
    most = max(o["embedding_table_reads"] for o in daily)
    full = next(o["embedding_table_reads"] for o in out if o["name"].startswith("full"))
    target = {
        "target": "with emb_* models, the embeddings table read once per command",
        "measured": f"{most} a daily or no-op command, {full} a full score",
        "result": "pass" if most <= 1 and full <= 1 else "MISS",
    }
    return {"scenarios": out, "target": target}


def _baseline_gb(name: str) -> str:
    found = BASELINE.get(name)
    return f"~{found[1]}" if found else ""


def check_targets(
    scenarios: list[Scenario],
    billed: dict[str, dict[str, float]],
    histories: list[Any],
    plan: dict[str, float],
) -> list[dict[str, Any]]:
    by_name = {s.name: s for s in scenarios}
    daily, noop = billed["daily run"], billed["no-op run"]
    labels = [label for label, _, _ in histories]
    out = []

    def add(target: str, measured: str, ok: bool | None) -> None:
        result = "n/a" if ok is None else "pass" if ok else "MISS"
        out.append({"target": target, "measured": measured, "result": result})

    def beside_plan(label: str) -> str:  # the daily run's bill, the plan's query beside it
        return f"{daily[label] / GB:.2f} GB (plan's query {plan[label] / GB:.2f} GB)"

    year = daily.get("1 year")
    add(
        "daily run <= 1.5 GB at 1 year",
        beside_plan("1 year") if year else "-",
        year <= 1.5 * GB if year else None,
    )
    last, first = labels[-1], labels[0]
    add(f"daily run <= 1.5 GB at {last}", beside_plan(last), daily[last] <= 1.5 * GB)
    ratio = daily[last] / daily[first]
    add(f"daily run flat: {last} <= 1.05x {first}", f"{ratio:.2f}x", ratio <= 1.05)
    add(
        "no-op run <= 0.25 GB (1 year)",
        f"{noop.get('1 year', noop[first]) / GB:.2f} GB",
        noop.get("1 year", noop[first]) <= 0.25 * GB,
    )
    jobs = by_name["no-op run"].counts["jobs"]
    add("no-op run <= 4 jobs", str(jobs), jobs <= 4)
    jobs = by_name["daily run"].counts["jobs"]
    add("daily run <= 12 jobs (lease included)", str(jobs), jobs <= 12)
    capped = [all(j.cap for j in s.sent if j.kind in ("query", "script")) for s in scenarios]
    add(
        "every query job carries maximum_bytes_billed",
        f"{sum(capped)}/{len(capped)} scenarios",
        all(capped),
    )
    labelled = [
        all({"command", "stage", "job_id"} <= set(j.labels) for j in s.sent if j.kind != "load")
        for s in scenarios
    ]
    add(
        "every query job labelled command, stage, job_id",
        f"{sum(labelled)}/{len(labelled)} scenarios",
        all(labelled),
    )
    return out


if __name__ == "__main__":
    main()
