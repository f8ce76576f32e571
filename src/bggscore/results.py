"""What each command returns: one typed, versioned result per command.

A result is plain data. ``as_dict()`` is the ``--json`` document (with ``schema_version``
and ``command``, in one fixed shape whatever the number of stages), ``outputs()`` the
GitHub step outputs and ``summary()`` the Markdown step summary. ``dispatch --if-changed``
reads a document back with ``games_processed``. Bump ``SCHEMA_VERSION`` (and say so in
the changelog) whenever a document's shape changes.

Standard library only: the CLI renders these, dispatch reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bggscore.stages import GRAPH

SCHEMA_VERSION = 1


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(out)


@dataclass
class Waiting:
    """Games a stage left out because an upstream output is missing or behind."""

    stage: str
    waits_for: str  # the stage to run first
    game_ids: list[int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "waits_for": self.waits_for,
            "count": len(self.game_ids),
            "game_ids": self.game_ids,
        }

    @classmethod
    def collect(cls, found: Mapping[tuple[str, str], list[int]]) -> list[Waiting]:
        return [cls(stage, upstream, sorted(set(ids))) for (stage, upstream), ids in found.items()]


@dataclass
class MissingInputs:
    """Games stages left out for want of an input no command computes (the embeddings
    table): never dropped silently, never a change, scored once the input exists."""

    found: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # stage -> input
    # input -> (what a game lacks, e.g. "embedding in <table> (<setting>)", what to do)
    notes: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(ids for inputs in self.found.values() for ids in inputs.values())

    def add(self, stage: str, name: str, ids: list[int]) -> None:
        if ids:
            known = self.found.setdefault(stage, {}).setdefault(name, [])
            known[:] = sorted(set(known) | set(ids))

    def merge(self, other: MissingInputs) -> MissingInputs:
        merged = MissingInputs({}, {**self.notes, **other.notes})
        for part in (self, other):
            for stage, inputs in part.found.items():
                for name, ids in inputs.items():
                    merged.add(stage, name, ids)
        return merged

    def as_dict(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {
            stage: {name: {"count": len(ids), "game_ids": ids} for name, ids in inputs.items()}
            for stage, inputs in self.found.items()
        }

    def warnings(self) -> list[str]:
        """One line per input: how many games lack it, for which stages, and the fix."""
        lines = []
        names = dict.fromkeys(name for inputs in self.found.values() for name in inputs)
        for name in names:
            stages = [stage for stage, inputs in self.found.items() if inputs.get(name)]
            games = len({i for stage in stages for i in self.found[stage][name]})
            noun = "game has" if games == 1 else "games have"
            what, fix = self.notes.get(name, (f"{name} value", ""))
            lines.append(
                f"{', '.join(stages)}: {games:,} {noun} no {what}: left out, not scored and "
                "not counted as changed, until they have one" + (f"; {fix}" if fix else "")
            )
        return lines

    def rows(self) -> str:
        if not self:
            return ""
        rows = [
            [stage, name, len(ids)]
            for stage, inputs in self.found.items()
            for name, ids in inputs.items()
        ]
        return "\n\n" + markdown_table(["stage", "missing input", "games"], rows)


class Result:
    """The shared shape: a command name, a versioned document, outputs and a summary."""

    command: ClassVar[str]

    def body(self) -> dict[str, Any]:
        raise NotImplementedError

    def as_dict(self) -> dict[str, Any]:
        return versioned(self.command, self.body())

    def outputs(self) -> dict[str, Any]:
        return {}

    def summary(self) -> str:
        return f"### bggscore {self.command}\n"

    def games_processed(self) -> int:
        return 0


@dataclass
class StageDetection:
    """One stage's detected games (``sample``: the first rows, for people, not JSON)."""

    stage: str
    count: int
    by_reason: dict[str, int]
    capped: bool
    max_games: int
    game_ids: list[int]
    sample: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "count": self.count,
            "by_reason": self.by_reason,
            "capped": self.capped,
            "max_games": self.max_games,
            "game_ids": self.game_ids,
        }


@dataclass
class ExplainResult(Result):
    """`detect-changes --explain GAME_ID`: recorded vs current inputs, stage by stage."""

    command: ClassVar[str] = "detect-changes"
    game_id: int
    name: str | None
    year_published: float | None
    stages: list[dict[str, Any]]

    @property
    def changed(self) -> bool:
        return any(item["reasons"] for item in self.stages)

    def body(self) -> dict[str, Any]:
        return {
            "game_id": self.game_id,
            "name": self.name,
            "year_published": self.year_published,
            "changed": self.changed,
            "stages": self.stages,
        }

    def outputs(self) -> dict[str, Any]:
        return {"changed": self.changed, "count": 1 if self.changed else 0}

    def summary(self) -> str:
        rows = [[s["stage"], ", ".join(s["reasons"]) or "up to date"] for s in self.stages]
        return f"### bggscore detect-changes --explain {self.game_id}\n\n" + markdown_table(
            ["stage", "reasons"], rows
        )


@dataclass
class DetectResult(Result):
    command: ClassVar[str] = "detect-changes"
    selection: str
    stages: list[StageDetection]
    missing_game_ids: list[int] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # stages with no model registered
    missing_inputs: MissingInputs = field(default_factory=MissingInputs)  # not changes

    @property
    def changed(self) -> bool:
        return any(s.count for s in self.stages)

    @property
    def game_ids(self) -> list[int]:
        return sorted({i for s in self.stages for i in s.game_ids})

    def body(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "count": len(self.game_ids),
            "selection": self.selection,
            "stages": [s.as_dict() for s in self.stages],
            "left_out": self.left_out,
            "missing_game_ids": self.missing_game_ids,
            "missing_inputs": self.missing_inputs.as_dict(),
        }

    def outputs(self) -> dict[str, Any]:
        return {"changed": self.changed, "count": len(self.game_ids)}

    def summary(self) -> str:
        return (
            "### bggscore detect-changes\n\n"
            + markdown_table(
                ["stage", "games", "new", "features", "model", "upstream", "capped"],
                [
                    [s.stage, s.count, *s.by_reason.values(), "yes" if s.capped else "no"]
                    for s in self.stages
                ],
            )
            + self.missing_inputs.rows()
        )


def _waiting_rows(waiting: list[Waiting]) -> str:
    if not waiting:
        return ""
    rows = [[w.stage, w.waits_for, len(w.game_ids)] for w in waiting]
    return "\n\n" + markdown_table(["stage", "waits for", "games"], rows)


@dataclass
class ScoreResult(Result):
    command: ClassVar[str] = "score"
    job_id: str | None
    games_scored: int
    stages: dict[str, int]  # stage -> games scored, in graph order
    models: dict[str, str]
    skipped_reason: str | None = None
    output_location: str | None = None
    seconds: float = 0.0
    selection: str = ""
    missing_game_ids: list[int] = field(default_factory=list)  # requested ids not there
    waiting_on: list[Waiting] = field(default_factory=list)
    capped: list[str] = field(default_factory=list)  # stages that hit --max-games
    # "model" (models.geek_rating names a direct model) or "formula"; None without main
    geek_rating_mode: str | None = None
    missing_inputs: MissingInputs = field(default_factory=MissingInputs)  # left out

    def body(self) -> dict[str, Any]:
        rate = self.games_scored / self.seconds if self.seconds > 0 else None
        return {
            "job_id": self.job_id,
            "games_scored": self.games_scored,
            "skipped_reason": self.skipped_reason,
            "stages": self.stages,
            "models": self.models,
            "geek_rating_mode": self.geek_rating_mode,
            "output_location": self.output_location,
            "selection": self.selection,
            "seconds": round(self.seconds, 3),
            "games_per_second": round(rate, 1) if rate else None,
            "missing_game_ids": self.missing_game_ids,
            "waiting_on": [w.as_dict() for w in self.waiting_on],
            "capped": self.capped,
            "missing_inputs": self.missing_inputs.as_dict(),
        }

    def outputs(self) -> dict[str, Any]:
        return {"games_scored": self.games_scored, "job_id": self.job_id or ""}

    def summary(self) -> str:
        job = f"job `{self.job_id}`" if self.job_id else f"skipped: {self.skipped_reason}"
        return (
            f"### bggscore score\n\n{self.games_scored:,} games scored "
            f"({self.selection}), {job}\n\n"
            + markdown_table(["model type", "model"], [[t, m] for t, m in self.models.items()])
            + _waiting_rows(self.waiting_on)
            + self.missing_inputs.rows()
        )

    def games_processed(self) -> int:
        return self.games_scored


@dataclass
class EmbedResult(Result):
    command: ClassVar[str] = "embed"
    job_id: str | None
    stages: dict[str, int]  # stage -> games embedded, in graph order
    models: dict[str, str]
    skipped_reason: str | None
    empty_descriptions: int
    seconds: float
    selection: str
    waiting_on: list[Waiting] = field(default_factory=list)
    capped: list[str] = field(default_factory=list)  # stages that hit --max-games
    missing_inputs: MissingInputs = field(default_factory=MissingInputs)  # left out

    @property
    def games_embedded(self) -> dict[str, int]:
        """Games per kind, as `embed --kind` names them (text, game)."""
        return {GRAPH.get(stage).short: n for stage, n in self.stages.items()}

    def body(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "games_embedded": self.games_embedded,
            "stages": self.stages,
            "skipped_reason": self.skipped_reason,
            "models": self.models,
            "empty_descriptions": self.empty_descriptions,
            "selection": self.selection,
            "seconds": round(self.seconds, 3),
            "waiting_on": [w.as_dict() for w in self.waiting_on],
            "capped": self.capped,
            "missing_inputs": self.missing_inputs.as_dict(),
        }

    def outputs(self) -> dict[str, Any]:
        return {"games_embedded": self.games_processed(), "job_id": self.job_id or ""}

    def summary(self) -> str:
        return (
            "### bggscore embed\n\n"
            + markdown_table(["kind", "games"], [[k, n] for k, n in self.games_embedded.items()])
            + _waiting_rows(self.waiting_on)
            + self.missing_inputs.rows()
        )

    def games_processed(self) -> int:
        return sum(self.stages.values())


@dataclass
class RunResult(Result):
    command: ClassVar[str] = "run"
    stages: list[str]  # in the order they ran
    steps: list[ScoreResult | EmbedResult]
    changed_only: bool
    seconds: float = 0.0
    dispatch: dict[str, Any] | None = None

    @property
    def games_scored(self) -> int:
        return sum(s.games_scored for s in self.steps if isinstance(s, ScoreResult))

    @property
    def games_embedded(self) -> int:
        return sum(s.games_processed() for s in self.steps if isinstance(s, EmbedResult))

    @property
    def skipped_reason(self) -> str | None:
        if self.games_scored or self.games_embedded:
            return None
        if self.waiting_on:
            return "waiting_on_upstream"  # nothing done: every game waits on another stage
        return "no_changes" if self.changed_only else "no_games"

    @property
    def waiting_on(self) -> list[Waiting]:
        return [w for step in self.steps for w in step.waiting_on]

    @property
    def missing_inputs(self) -> MissingInputs:
        merged = MissingInputs()
        for step in self.steps:
            merged = merged.merge(step.missing_inputs)
        return merged

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "stages": self.stages,
            "steps": [step.as_dict() for step in self.steps],
            "games_scored": self.games_scored,
            "games_embedded": self.games_embedded,
            "games_total": self.games_processed(),  # what `dispatch --if-changed` reads
            "skipped_reason": self.skipped_reason,
            "seconds": round(self.seconds, 3),
            "waiting_on": [w.as_dict() for w in self.waiting_on],
            "missing_inputs": self.missing_inputs.as_dict(),
        }
        if self.dispatch is not None:
            body["dispatch"] = self.dispatch
        return body

    def outputs(self) -> dict[str, Any]:
        return {
            "games_scored": self.games_scored,
            "games_embedded": self.games_embedded,
            "job_ids": ",".join(s.job_id for s in self.steps if s.job_id),
        }

    def summary(self) -> str:
        rows = [
            [
                step.command,
                ", ".join(step.stages),
                step.games_processed(),
                f"`{step.job_id}`" if step.job_id else (step.skipped_reason or ""),
            ]
            for step in self.steps
        ]
        head = (
            f"### bggscore run\n\n{self.games_scored:,} games scored, "
            f"{self.games_embedded:,} embedded in {self.seconds:.1f}s "
            f"(stages: {', '.join(self.stages)})\n\n"
        )
        return (
            head
            + markdown_table(["step", "stages", "games", "job"], rows)
            + _waiting_rows(self.waiting_on)
            + self.missing_inputs.rows()
        )

    def games_processed(self) -> int:
        return self.games_scored + self.games_embedded


@dataclass
class ColumnDiff:
    """One prediction column over the games both sides have."""

    column: str
    max_abs_diff: float | None  # over the games with a value on both sides; None: no such game
    mean_abs_diff: float | None
    differing: int  # games differing by more than the tolerance, or with a value on one side
    one_side_null: int  # of those, the games with a value on one side only

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "differing": self.differing,
            "one_side_null": self.one_side_null,
        }


@dataclass
class CompareResult(Result):
    """`compare A B`: which games each side has, and how each shared column differs."""

    command: ClassVar[str] = "compare"
    a: dict[str, Any]  # kind (job or file), job_id or path, games, columns
    b: dict[str, Any]
    tolerance: float
    in_both: int
    only_in_a: list[int]
    only_in_b: list[int]
    columns: list[ColumnDiff]
    columns_only_in_a: list[str]
    columns_only_in_b: list[str]
    top: list[dict[str, Any]]  # the worst games: game_id, name, column, a, b, diff (b - a)
    shown: int = 10  # how many ids of the games on one side only the document lists
    shared_only: bool = False  # --shared-only: games on one side only are no difference

    @property
    def differing_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.differing]

    @property
    def games_differ(self) -> bool:
        """Games on one side only count as a difference (a shadow run that drops games
        must not pass), unless --shared-only."""
        return not self.shared_only and bool(self.only_in_a or self.only_in_b)

    @property
    def differs(self) -> bool:
        """Any column beyond the tolerance, or any game on one side only (unless
        --shared-only): what `--exit-code` exits 1 for."""
        return bool(self.differing_columns) or self.games_differ

    def body(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "tolerance": self.tolerance,
            "shared_only": self.shared_only,
            "games": {
                "in_both": self.in_both,
                "only_in_a": len(self.only_in_a),
                "only_in_b": len(self.only_in_b),
                "only_in_a_ids": self.only_in_a[: self.shown],
                "only_in_b_ids": self.only_in_b[: self.shown],
            },
            "columns": [c.as_dict() for c in self.columns],
            "columns_only_in_a": self.columns_only_in_a,
            "columns_only_in_b": self.columns_only_in_b,
            "differs": self.differs,
            "differing_columns": self.differing_columns,
            "top": self.top,
        }

    def outputs(self) -> dict[str, Any]:
        return {
            "differs": self.differs,
            "differing_columns": ",".join(self.differing_columns),
            "games_in_both": self.in_both,
        }

    def summary(self) -> str:
        rows = [
            [c.column, _number(c.max_abs_diff), _number(c.mean_abs_diff), c.differing]
            for c in self.columns
        ]
        return (
            f"### bggscore compare\n\n{self.in_both:,} games in both, "
            f"{len(self.only_in_a):,} only in A, {len(self.only_in_b):,} only in B "
            f"(tolerance {self.tolerance:g})\n\n"
            + markdown_table(["column", "max abs diff", "mean abs diff", "differing"], rows)
        )


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def versioned(command: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as a versioned document of ``command``."""
    return {"schema_version": SCHEMA_VERSION, "command": command, **data}


@dataclass
class ConfigResult(Result):
    """`config show`: every effective setting, its value (secrets as ***) and where it came
    from: ``source`` is flag, env, file or default, ``from`` the flag, variable or file."""

    command: ClassVar[str] = "config show"
    config_file: str | None
    settings: list[tuple[str, Any, str, str | None]]  # key, value, source, from
    ignored_variables: list[str]  # BGGSCORE_* variables no setting reads (each warned about)

    def body(self) -> dict[str, Any]:
        return {
            "config_file": self.config_file,
            "settings": {
                key: {"value": value, "source": source, "from": origin}
                for key, value, source, origin in self.settings
            },
            "ignored_variables": self.ignored_variables,
        }


def games_processed(doc: Mapping[str, Any]) -> int | None:
    """How many games a versioned ``--json`` document says its command processed, or
    None when it is not one (a hand-built document: the caller reads its keys)."""
    command = doc.get("command")
    if doc.get("schema_version") != SCHEMA_VERSION or command not in ("score", "embed", "run"):
        return None
    if command == "score":
        value = doc.get("games_scored")
    elif command == "embed":
        embedded = doc.get("games_embedded")
        value = sum(embedded.values()) if isinstance(embedded, dict) else embedded
    else:
        value = doc.get("games_total")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class ReportResult(Result):
    """`report`: where the page went, and the numbers behind each of its pictures."""

    command: ClassVar[str] = "report"
    output: str
    size_bytes: int
    charts: list[str]  # the chart ids the page draws
    numbers: dict[str, Any]  # the page's data: window, run, runs, moved, good, sure, map, ...

    @property
    def job_id(self) -> str | None:
        job = self.numbers["run"]["job"]
        return job["job_id"] if job else None

    def body(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "size_bytes": self.size_bytes,
            "charts": self.charts,
            **self.numbers,
        }

    def outputs(self) -> dict[str, Any]:
        return {"report": self.output, "job_id": self.job_id or ""}

    def summary(self) -> str:
        """Names the file and the artifact the workflow templates upload it as (the file's
        name without its suffix), then the metrics."""
        name = self.output.replace("\\", "/").rsplit("/", 1)[-1]
        artifact = name.rsplit(".", 1)[0]
        job = f"job `{self.job_id}`" if self.job_id else "no job"
        rows = [
            [
                item["outcome"],
                item["games"],
                _number(item["rmse"]),
                _number(item["mean_rmse"]),
                "" if item["coverage"] is None else f"{item['coverage']:.1%}",
            ]
            for item in self.numbers["good"]["outcomes"]
        ]
        return (
            f"### bggscore report\n\n`{name}` ({self.size_bytes / 1e6:.1f} MB, {job}): in this "
            f"run's artifacts as `{artifact}`; it opens offline in any browser.\n\n"
            + markdown_table(["outcome", "games", "rmse", "mean's rmse", "coverage"], rows)
        )
