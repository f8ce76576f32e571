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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from bggscore.errors import UsageError
from bggscore.stages import DEFAULT_MAX_GAMES, GRAPH, MAX_COUNT, StageGraph
from bggscore.warehouse.detection_sql import detection_sql
from bggscore.warehouse.queries import Selection
from bggscore.warehouse.sql import Typed

if TYPE_CHECKING:
    from bggscore.warehouse.base import Warehouse

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


@dataclass
class Detection:
    stages: list[StageChanges] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(s.count for s in self.stages)

    @property
    def changed(self) -> bool:
        return self.total > 0


def detect_stage(
    wh: Warehouse,
    stage: str,
    model_key: str,
    selection: Selection,
    max_games: int = DEFAULT_MAX_GAMES,
    every_row: bool = False,
    graph: StageGraph = GRAPH,
) -> StageChanges:
    """Games of the selection the stage must score (``every_row``: all, with reasons)."""
    check_max_games(max_games)
    params: dict[str, Any] = {
        **selection.params(),
        "stage": stage,
        "model_key": Typed(model_key, "STRING"),
        # one more than allowed tells us whether the cap bit (a cap past any catalogue is
        # clamped: the SQL LIMIT is a signed 64-bit integer)
        "limit": min(max_games, LIMIT_CEILING) + 1,
        "every_row": every_row,
    }
    for i, upstream in enumerate(graph.upstream(stage)):
        params[f"up_{i}"] = upstream
    frame = wh.query(detection_sql(stage, graph), params)
    capped = len(frame) > max_games
    return StageChanges(stage, model_key, frame.head(max_games), capped, max_games)


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
