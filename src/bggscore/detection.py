"""Change detection: which games each stage must (re)score, and why.

A game needs a stage when it was never scored by it (``new``), its feature hash
differs from the one the stage recorded (``features``; rows without a recorded
hash fall back to ``last_updated > score_ts``), the model the stage would use
now differs in name or version (``model``), or an input produced by an earlier
stage changed since (``upstream``).

Detection joins the per-stage latest state (one row per game and stage, written
in the same transaction as the landing rows), never the landing history, so it
costs the same on day 1000 as on day 1. Capped runs take new games first, then
the oldest scores, then game_id, so repeated capped runs converge.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import polars as pl

from bggscore.errors import InputError, UsageError
from bggscore.results import MissingInputs
from bggscore.stages import (
    CARRY_LIMIT,
    DEFAULT_MAX_GAMES,
    EMBEDDINGS_TABLE,
    GRAPH,
    MAX_COUNT,
    OWN_EMBEDDINGS,
    StageGraph,
)
from bggscore.warehouse.detection_sql import (
    CARRIED,
    HASH_COLUMNS,
    INPUT_CHECK_COLUMNS,
    detection_sql,
    detection_union_sql,
    stage_param,
)
from bggscore.warehouse.queries import INPUT_VECTOR, Selection
from bggscore.warehouse.schemas import stage_partition
from bggscore.warehouse.sql import Typed

if TYPE_CHECKING:
    from bggscore.warehouse.base import EmbeddingWidths, Warehouse

REASONS = ("new", "features", "model", "upstream")
LIMIT_CEILING = 2**62


def check_max_games(max_games: int) -> None:
    """The one check of ``--max-games`` (every command calls it before any work)."""
    if max_games <= 0:
        raise UsageError(f"--max-games must be positive, got {max_games}")
    if max_games > MAX_COUNT:  # counts are int64 in SQL: the largest one means no cap
        raise UsageError(
            f"--max-games must be at most {MAX_COUNT} (which means no cap), got {max_games}"
        )


def input_hash(description: str | None) -> str:
    """What the text stage records: the same md5 the detection SQL computes."""
    return hashlib.md5((description or "").encode("utf-8")).hexdigest()


@dataclass
class StageChanges:
    """The games one stage must score, with their reasons."""

    stage: str
    model_key: str
    frame: pl.DataFrame  # one row per game, reason_* booleans, old/new values
    capped: bool
    max_games: int

    @property
    def game_ids(self) -> list[int]:
        return self.frame["game_id"].to_list()

    @property
    def count(self) -> int:
        return len(self.frame)

    def primary_reasons(self) -> pl.Series:
        """The first reason of each game, in the order new, features, model, upstream."""
        expr = pl.lit(None, pl.String)
        for reason in reversed(REASONS):
            expr = pl.when(pl.col(f"reason_{reason}")).then(pl.lit(reason)).otherwise(expr)
        return self.frame.select(expr.alias("reason"))["reason"]

    def reasons(self) -> pl.Series:
        """All reasons of each game, as a list."""
        return self.frame.select(
            pl.concat_list(
                pl.when(pl.col(f"reason_{r}")).then(pl.lit(r)).otherwise(None) for r in REASONS
            )
            .list.drop_nulls()
            .alias("reasons")
        )["reasons"]

    def by_reason(self) -> dict[str, int]:
        counts = dict.fromkeys(REASONS, 0)
        for reason, n in self.primary_reasons().value_counts().iter_rows():
            counts[reason] = int(n)
        return counts

    def as_dict(self, with_ids: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "stage": self.stage,
            "count": self.count,
            "by_reason": self.by_reason(),
            "capped": self.capped,
            "max_games": self.max_games,
        }
        if with_ids:
            data["game_ids"] = self.game_ids
        return data


def detect_stage(
    wh: Warehouse,
    stage: str,
    model_key: str,
    selection: Selection,
    max_games: int = DEFAULT_MAX_GAMES,
    every_row: bool = False,
    graph: StageGraph = GRAPH,
    confirm: bool = True,
) -> StageChanges:
    """Games of the selection the stage must score (``every_row``: all, with reasons).

    A stage keyed on one column (the text stage, on the description) is detected by the
    feature hash, which covers that column; a game whose hash moved is confirmed by the
    md5 of the column (``confirm_inputs``), unless ``confirm`` is False: then such games
    come with ``confirm_input`` set, for a caller that reads the text anyway."""
    check_max_games(max_games)
    params: dict[str, Any] = {
        **selection.params(),
        **_stage_params(stage, model_key, graph),
        # one more than allowed tells us whether the cap bit (a cap past any catalogue is
        # clamped: the SQL LIMIT is a signed 64-bit integer)
        "limit": min(max_games, LIMIT_CEILING) + 1,
        "every_row": every_row,
    }
    with wh.labelled(stage=stage):
        frame = wh.query(detection_sql(stage, graph), params)
    capped = len(frame) > max_games
    changes = StageChanges(stage, model_key, frame.head(max_games), capped, max_games)
    keyed = graph.get(stage).input_column is not None
    return confirm_inputs(wh, changes, every_row) if confirm and keyed else changes


@dataclass
class Detection:
    """``detect_stages``'s one statement: each stage's changes; each input's check
    (``check_inputs``'s ``checked``); and the embeddings table's vectors of the games
    the stages picked (game_id, INPUT_VECTOR, INPUT_VECTOR_HASH), or None where a stage
    picked more than CARRY_LIMIT (the pass then reads them with the features)."""

    stages: dict[str, StageChanges]
    inputs: dict[str, EmbeddingWidths] = field(default_factory=dict)
    vectors: pl.DataFrame | None = None


def detect_stages(
    wh: Warehouse,
    keys: dict[str, str],
    selection: Selection,
    max_games: int = DEFAULT_MAX_GAMES,
    graph: StageGraph = GRAPH,
    inputs: tuple[str, ...] = (),
    carry: bool = False,
) -> Detection:
    """Several stages' changes (stage -> its model key in ``keys``) in one query, each as
    ``detect_stage(..., confirm=False)`` finds it alone: right for stages none of which
    has written since (each is detected as if it ran first).

    In the same statement, the check of each of ``inputs`` and (``carry``: for a pass
    that scores them) the vectors of the games picked: one read of the embeddings table
    for the stages' upstream keys, its widths and missing games, and the scores. The
    inputs' tables must be there (``needed_inputs``)."""
    from bggscore.warehouse.base import EmbeddingWidths

    check_max_games(max_games)
    stages = list(keys)
    params: dict[str, Any] = {
        **selection.params(),
        "limit": min(max_games, LIMIT_CEILING) + 1,
        "every_row": False,
        "carry_limit": CARRY_LIMIT,
    }
    for index, stage in enumerate(stages):
        own = _stage_params(stage, keys[stage], graph)
        params.update({stage_param(name, index): value for name, value in own.items()})
    with wh.labelled(stage="all"):
        frame = wh.query(detection_union_sql(stages, graph, inputs, carry), params)
    found = {}
    carried = [c for c in CARRIED if c in frame.columns]
    for stage in stages:
        rows = frame.filter(pl.col("detected_stage") == stage).drop(
            "detected_stage", *INPUT_CHECK_COLUMNS, *carried
        )
        if graph.get(stage).input_column is None:  # the feature hash, carried as text
            rows = rows.with_columns(pl.col(c).cast(pl.Int64) for c in HASH_COLUMNS)
        # detect_stage's order: never-scored games first, then the oldest score, then id
        rows = rows.sort(
            [pl.col("last_job_id").is_not_null(), "last_score_ts", "game_id"], nulls_last=False
        )
        capped = len(rows) > max_games
        found[stage] = StageChanges(stage, keys[stage], rows.head(max_games), capped, max_games)
    checked = {}
    for name in inputs:
        rows = frame.filter(pl.col("detected_stage") == name)
        n, lo, hi = (rows[c][0] for c in INPUT_CHECK_COLUMNS)
        missing = sorted(rows["game_id"].drop_nulls().to_list())
        checked[name] = EmbeddingWidths(int(n), lo, hi, missing)
    return Detection(found, checked, _carried_vectors(frame, graph, stages) if carried else None)


def _stage_params(stage: str, model_key: str, graph: StageGraph) -> dict[str, Any]:
    """A stage's own parameters of its detection: its state partition, the model key it
    would record, and each upstream stage's."""
    params: dict[str, Any] = {
        "stage": stage,
        "stage_partition": stage_partition(stage),
        "model_key": Typed(model_key, "STRING"),
    }
    for i, upstream in enumerate(graph.upstream(stage)):
        params[f"up_{i}"] = upstream
        params[f"up_partition_{i}"] = stage_partition(upstream)
    return params


def _carried_vectors(
    frame: pl.DataFrame, graph: StageGraph, stages: list[str]
) -> pl.DataFrame | None:
    """One row per picked game of the stages reading the embeddings table, or None when
    one of them carried none (it picked more than CARRY_LIMIT games)."""
    readers = [s for s in stages if EMBEDDINGS_TABLE in graph.inputs_of(s)]
    rows = frame.filter(pl.col("detected_stage").is_in(readers))
    if rows[INPUT_VECTOR].null_count():  # a stage past the limit (picked games have one)
        return None
    return rows.select("game_id", *CARRIED).unique("game_id", keep="first").sort("game_id")


def confirm_inputs(wh: Warehouse, changes: StageChanges, every_row: bool = False) -> StageChanges:
    """Games detection found by their feature hash alone, kept only when the md5 of the
    stage's input column differs from the one it recorded (``new_hash`` filled in); with
    ``every_row`` (--explain) every row gets its current md5 and stays."""
    frame = changes.frame
    if "confirm_input" not in frame.columns:
        return changes
    asked = frame if every_row else frame.filter(pl.col("confirm_input"))
    if asked.is_empty():
        return changes
    current = wh.description_md5(asked["game_id"].to_list()).rename({"input_hash": "_md5"})
    frame = frame.join(current, on="game_id", how="left", maintain_order="left")
    moved = pl.col("_md5").is_null() | (pl.col("_md5") != pl.col("old_hash")).fill_null(True)
    frame = frame.with_columns(
        pl.when(pl.col("confirm_input"))
        .then(pl.col("reason_features") & moved)
        .otherwise(pl.col("reason_features"))
        .alias("reason_features"),
        pl.coalesce("_md5", "new_hash").alias("new_hash"),
        pl.lit(False).alias("confirm_input"),
    ).drop("_md5")
    if not every_row:
        frame = frame.filter(pl.any_horizontal(f"reason_{r}" for r in REASONS))
    return replace(changes, frame=frame)


def pending_upstream(changes: StageChanges, upstream: StageChanges) -> StageChanges:
    """Preview: games an earlier stage is about to rescore also need this stage (upstream).

    Used when several stages are detected before any runs; when scoring, each stage
    is detected after the previous one committed, which finds the same games.
    """
    extra = upstream.frame.select("game_id", "name", "year_published").join(
        changes.frame.select("game_id"), on="game_id", how="anti"
    )
    if extra.is_empty():
        return changes
    extra = extra.with_columns(
        pl.lit(False).alias("reason_new"),
        pl.lit(False).alias("reason_features"),
        pl.lit(False).alias("reason_model"),
        pl.lit(True).alias("reason_upstream"),
    )
    frame = pl.concat([changes.frame, extra], how="diagonal_relaxed")
    limit = changes.max_games
    return StageChanges(
        changes.stage,
        changes.model_key,
        frame.head(limit),
        changes.capped or len(frame) > limit,
        limit,
    )


def behind(
    wh: Warehouse,
    selection: Selection,
    keys: dict[str, str],
    graph: StageGraph = GRAPH,
) -> dict[str, set[int]]:
    """Of the selection, the games an upstream stage must rescore first: stage -> ids.

    ``keys`` holds the model key of each upstream stage the command does not run itself
    (those it runs are brought up to date before the stage that reads them)."""
    if selection.game_ids is not None and not selection.game_ids:
        return {}
    found = {}
    for stage, key in keys.items():
        changes = detect_stage(wh, stage, key, selection, LIMIT_CEILING, graph=graph)
        if changes.count:
            found[stage] = set(changes.game_ids)
    return found


def missing_ids(wh: Warehouse, selection: Selection) -> list[int]:
    """Requested ids the warehouse does not have: reported, never silently dropped."""
    if selection.game_ids is None:
        return []
    present = wh.existing_game_ids(list(selection.game_ids))
    return [i for i in selection.game_ids if i not in present]


# -- inputs (features.embeddings_table): present, of the right width, or reported -----------
def input_fix(wh: Warehouse, graph: StageGraph, name: str) -> str:
    """What to do about an input the warehouse lacks: load it (embedded warehouse), or
    check the setting (BigQuery: the warehouse's own jobs fill the table)."""
    source = graph.input(name)
    if wh.engine == "duckdb":
        fix = f"load them with `{source.load}`"
    else:
        fix = f"the data warehouse fills that table: check {source.setting}"
    return (
        f'{fix}, or set {source.setting} = "{OWN_EMBEDDINGS}" to read bggscore\'s own '
        "description embeddings"
    )


def needed_inputs(
    wh: Warehouse, graph: StageGraph, stages: list[str] | tuple[str, ...]
) -> tuple[str, ...]:
    """The inputs these stages need, each table checked to be there (table metadata, no
    read): what ``detect_stages`` may check in detection's statement."""
    names = tuple(dict.fromkeys(n for stage in stages for n in graph.inputs_needed(stage)))
    for name in names:
        if not wh.input_table_exists(graph.input(name)):
            check_input(wh, graph, stages, name, None, None)  # refuses: not there
    return names


def check_inputs(
    wh: Warehouse,
    graph: StageGraph,
    stages: list[str] | tuple[str, ...],
    selection: Selection,
    widths: dict[str, int | None] | None = None,
    checked: dict[str, EmbeddingWidths] | None = None,
) -> MissingInputs:
    """Refuse, before any work, stages needing an input whose table is missing or empty
    (naming the setting and what fills it); with ``widths`` (the ``emb_*`` columns each
    stage's models read: scoring), also vectors of another width than the models'.

    Returns the selection's games each stage cannot score for want of an input it (or a
    stage it reads) needs, found by the same read: detection leaves them out; they are
    reported, never counted as changes, and scored once the input exists. ``checked``:
    inputs detection already checked for this selection (``detect_stages``), not read
    again."""
    lacking: dict[str, list[int]] = {}
    missing = MissingInputs()
    for stage in stages:
        for name in graph.inputs_needed(stage):
            if name not in lacking:  # one read per input, whatever the stages
                found = (checked or {}).get(name)
                if found is None:
                    found = wh.input_embedding_check(selection)
                lacking[name] = check_input(wh, graph, stages, name, found, widths)
                missing.notes[name] = input_note(wh, graph, name)
            missing.add(stage, name, lacking[name])
    return missing


def _readers(wh: Warehouse, graph: StageGraph, name: str) -> str:
    source = graph.input(name)
    models = ", ".join(m for found in graph.input_readers(name).values() for m in found)
    return f"{models} read(s) emb_* from {wh.tables[source.table]} ({source.setting})"


def check_input(
    wh: Warehouse,
    graph: StageGraph,
    stages: list[str] | tuple[str, ...],
    name: str,
    found: EmbeddingWidths | None,
    widths: dict[str, int | None] | None,
) -> list[int]:
    """One input's check (``found``: what a read of its table found, None when it is not
    there): refused when missing, empty, or (``widths``) of another width than the
    stages' models read; else the games without a value."""
    source = graph.input(name)
    table = wh.tables[source.table]
    if found is None or not found.vectors:
        where = f"which is not in {wh.location}" if found is None else "which is empty"
        raise InputError(f"{_readers(wh, graph, name)}, {where}", input_fix(wh, graph, name))
    for stage in stages:
        width = (widths or {}).get(stage)
        if width is None or name not in graph.inputs_of(stage):
            continue
        if found.narrowest != width or found.widest != width:
            dims = (
                f"{found.narrowest}"
                if found.narrowest == found.widest
                else f"{found.narrowest} to {found.widest}"
            )
            raise InputError(
                f"{stage}'s models read {width} embedding columns (emb_0..emb_{width - 1}) "
                f"but the embeddings in {table} ({source.setting}) have {dims} dimensions",
                "load embeddings of the width the models were trained on, or score with "
                "models trained on these",
            )
    return found.missing


def input_note(wh: Warehouse, graph: StageGraph, name: str) -> tuple[str, str]:
    """What a game lacks when it has no value of the input, and what to do (warnings)."""
    source = graph.input(name)
    return f"embedding in {wh.tables[source.table]} ({source.setting})", input_fix(wh, graph, name)
