"""`bggscore warehouse check`: is the warehouse whole, and does the registry hold together?

Nothing is written. The warehouse file is opened for reading and every table read whole
(DuckDB verifies each block's checksum as it reads it); bggscore's tables must be there with
the columns and types this version writes; each stage's state must point at output rows that
exist, and one-row-per-game tables must hold each game once. The registry is checked as
`models verify` checks it: every artifact against its sha256, every alias pointing at a
registered version, no version folder without its registration.json.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bggscore.errors import BggscoreError, EnvironmentProblem
from bggscore.stages import GRAPH, STATE_TABLE
from bggscore.warehouse import open_warehouse
from bggscore.warehouse.schemas import EMBEDDINGS_INPUT, LEASES, TABLES
from bggscore.wording import counted

if TYPE_CHECKING:
    from bggscore.settings import Settings
    from bggscore.warehouse.base import Warehouse

# one row per game: a repeated game makes every later write to the table fail
ONE_ROW_PER_GAME = ("games_features", "game_features_hash", STATE_TABLE)


@dataclass(frozen=True)
class Finding:
    area: str  # file, tables, state or registry
    subject: str  # a table, a stage, a model version or alias
    problem: str  # what is wrong and what to do

    def line(self) -> str:
        return f"{self.area}: {self.subject} {self.problem}"

    def as_dict(self) -> dict[str, str]:
        return {"area": self.area, "subject": self.subject, "problem": self.problem}


@dataclass
class CheckResult:
    engine: str
    location: str
    registry: str
    checked: dict[str, int] = field(default_factory=dict)  # what was looked at, how many
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "location": self.location,
            "registry": self.registry,
            "ok": not self.findings,
            "checked": self.checked,
            "findings": [finding.as_dict() for finding in self.findings],
        }


def run_check(settings: Settings, waiting: Callable[[str], None] | None = None) -> CheckResult:
    result = CheckResult(
        settings.warehouse.engine,
        str(settings.warehouse_path) if settings.warehouse.engine == "duckdb" else "bigquery",
        settings.registry_uri,
    )
    try:
        wh = open_warehouse(settings, read_only=True, waiting=waiting)
    except EnvironmentProblem as exc:  # a file DuckDB cannot open: nothing more to read
        problem = f"cannot be opened: {exc.message}" + (f"; {exc.hint}" if exc.hint else "")
        result.findings.append(Finding("file", result.location, problem))
    else:
        with wh:
            result.location = wh.location
            _check_warehouse(wh, result)
    _check_registry(settings, result)
    return result


def _check_warehouse(wh: Warehouse, result: CheckResult) -> None:
    unreadable = wh.unreadable_tables()
    result.findings += [
        Finding("file", table, f"{problem} (restore the warehouse file from a backup)")
        for table, problem in unreadable
    ]
    broken = {table for table, _ in unreadable}
    present = _check_tables(wh, result)
    result.checked["tables"] = len(present)
    readable = [t for t in present if str(wh.tables[t]) not in broken]
    _check_state(wh, result, readable)


def _check_tables(wh: Warehouse, result: CheckResult) -> list[str]:
    """bggscore's tables with their columns and types; the inputs with what bggscore reads.
    Returns the logical tables that exist."""
    present = []
    owned = {schema.logical for schema in wh.managed_tables() if schema.owned}
    for logical, schema in TABLES.items():
        if logical == LEASES.logical and not wh.uses_lease:  # an embedded warehouse has none
            continue
        ref = str(wh.tables[logical])
        columns = wh.table_columns(logical)
        if columns is None:
            if logical != EMBEDDINGS_INPUT.logical:  # optional: only emb_* models read it
                result.findings.append(
                    Finding("tables", ref, "is missing (run `bggscore warehouse init`)")
                )
            continue
        present.append(logical)
        wanted = schema.names if logical in owned else list(schema.required or schema.names)
        lacking = [name for name in wanted if name not in columns]
        if lacking:
            result.findings.append(
                Finding(
                    "tables",
                    ref,
                    f"lacks column(s) {', '.join(lacking)}"
                    + (" (run `bggscore warehouse init`)" if logical in owned else ""),
                )
            )
        for name, kind in schema.columns:
            expected = wh.expected_type(kind)
            found = columns.get(name)
            if expected is not None and found is not None and found != expected:
                result.findings.append(
                    Finding(
                        "tables",
                        ref,
                        f"column {name} is {found}, not {expected}: bggscore writes and "
                        "compares it as that type (recreate the table with the right type)",
                    )
                )
    return present


def _check_state(wh: Warehouse, result: CheckResult, readable: list[str]) -> None:
    """Each stage's state rows against its output table; one row per game where it must."""
    checked = 0
    if STATE_TABLE in readable:
        for stage in GRAPH.names:
            output = GRAPH.get(stage).writes[0]
            if output not in readable:
                continue
            checked += 1
            n, example = _guarded(wh.state_without_output, (stage, output), result, stage)
            if n:
                result.findings.append(
                    Finding(
                        "state",
                        stage,
                        f"has {counted(n, 'game')} recorded as scored with no row in "
                        f"{wh.tables[output]} for the job recorded (e.g. game {example}): "
                        "detection takes them for up to date; rescore them (e.g. "
                        f"`bggscore {GRAPH.get(stage).command} --game-id {example}`)",
                    )
                )
    for logical in ONE_ROW_PER_GAME:
        if logical not in readable:
            continue
        checked += 1
        n, example = _guarded(wh.repeated_keys, (logical,), result, logical)
        if n:
            result.findings.append(
                Finding(
                    "state",
                    str(wh.tables[logical]),
                    f"holds {counted(n, 'key')} more than once (e.g. game {example}): every "
                    "write to it fails until the repeated rows are removed",
                )
            )
    result.checked["consistency checks"] = checked


def _guarded(
    check: Callable[..., tuple[int, int | None]],
    args: tuple[str, ...],
    result: CheckResult,
    subject: str,
) -> tuple[int, int | None]:
    """A check's answer; a warehouse error reading it is a finding of its own."""
    try:
        return check(*args)
    except BggscoreError as exc:
        result.findings.append(Finding("state", subject, f"could not be checked: {exc}"))
        return 0, None


def _check_registry(settings: Settings, result: CheckResult) -> None:
    from bggscore.modelset import open_settings_registry

    try:
        results = open_settings_registry(settings).verify(None)
    except BggscoreError as exc:
        result.findings.append(Finding("registry", result.registry, f"cannot be read: {exc}"))
        return
    result.checked["model versions"] = sum(1 for r in results if r.alias is None and r.ok)
    result.findings += [
        Finding("registry", r.label, r.problem or "failed its check") for r in results if not r.ok
    ]
