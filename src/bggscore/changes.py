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
from bggscore.warehouse.queries import SELECTION_WHERE, Selection
from bggscore.warehouse.sql import Typed

if TYPE_CHECKING:
    from bggscore.warehouse.base import Warehouse

REASONS = ("new", "features", "model", "upstream")
# stage -> the stages whose outputs it reads, in the order their keys are recorded
UPSTREAM: dict[str, tuple[str, ...]] = {
    "complexity": (),
    "main": ("complexity",),
    "text-embeddings": (),
    "game-embeddings": ("complexity", "text-embeddings"),
}
DEFAULT_MAX_GAMES = 50_000
# stage -> (what its input is now, what it recorded); default: the warehouse feature hash.
# An input here must be one of the hashed fields (detection relies on it).
INPUT_HASHES: dict[str, tuple[str, str]] = {
    "text-embeddings": ("TO_HEX(MD5(COALESCE(f.description, '')))", "input_hash"),
}
FEATURE_HASH = ("h.feature_hash", "feature_hash")


def input_hash(description: str | None) -> str:
    """What the text stage records: the same md5 the detection SQL computes."""
    return hashlib.md5((description or "").encode("utf-8")).hexdigest()


def upstream_key(jobs: dict[str, str]) -> str:
    """The record of which upstream outputs a stage read: ``complexity:<job>|...``."""
    return "|".join(f"{stage}:{job}" for stage, job in jobs.items())


def _expected_upstream_sql(stage: str) -> str:
    """SQL for the upstream key a stage would record if it ran now (NULL if any is missing)."""
    parts = [f"CONCAT('{up}:', u{i}.job_id)" for i, up in enumerate(UPSTREAM[stage])]
    if not parts:
        return "CAST(NULL AS STRING)"
    return parts[0] if len(parts) == 1 else "CONCAT(" + ", '|', ".join(parts) + ")"


def detection_sql(stage: str) -> str:
    """One canonical query per stage; every value is a parameter.

    Each reason is found by its own narrow query (integer joins, no wide columns), the
    few games found are then joined back for names and old/new values: carrying names
    and model keys through full-table joins made detection several times slower.
    """
    if stage not in UPSTREAM:
        raise UsageError(f"unknown stage {stage!r}; choose from {', '.join(UPSTREAM)}")
    upstream = UPSTREAM[stage]
    new_hash, old_column = INPUT_HASHES.get(stage, FEATURE_HASH)
    old_hash = f"s.{old_column}"
    joins = "".join(
        f" LEFT JOIN scoring_state AS u{i} ON u{i}.game_id = f.game_id AND u{i}.stage = @up_{i}"
        for i in range(len(upstream))
    )
    features_from = (
        "s JOIN games_features AS f ON f.game_id = s.game_id"
        " LEFT JOIN game_features_hash AS h ON h.game_id = s.game_id"
        if stage in INPUT_HASHES
        else "s LEFT JOIN game_features_hash AS h ON h.game_id = s.game_id"
    )

    def flags(reason: str | None) -> str:
        return ", ".join(f"{str(r == reason).upper()} AS reason_{r}" for r in REASONS)

    changed_input = (
        f"(({old_hash} IS NOT NULL AND {old_hash} IS DISTINCT FROM {new_hash}) "
        f"OR ({old_hash} IS NULL AND h.last_updated > s.score_ts))"
    )
    if stage in INPUT_HASHES:
        # the stage's input is one of the hashed fields: where the feature hash recorded
        # with the stage still matches, the input cannot have changed, so the (costly)
        # input hash is computed only for games whose features moved
        changed_input = f"s.feature_hash IS DISTINCT FROM h.feature_hash AND {changed_input}"

    # every fragment below is one of our constants; values are parameters
    branches = [
        f"SELECT f.game_id, {flags('new')} FROM games_features AS f "
        "LEFT JOIN s ON s.game_id = f.game_id WHERE s.game_id IS NULL",
        f"SELECT s.game_id, {flags('features')} FROM {features_from} WHERE {changed_input}",
        f"SELECT s.game_id, {flags('model')} FROM s WHERE s.model_key IS DISTINCT FROM @model_key",
    ]
    if upstream:
        branch_joins = " ".join(
            f"JOIN scoring_state AS u{i} ON u{i}.game_id = s.game_id AND u{i}.stage = @up_{i}"
            for i in range(len(upstream))
        )
        branches.append(
            f"SELECT s.game_id, {flags('upstream')} FROM s {branch_joins} "
            f"WHERE s.upstream_key IS DISTINCT FROM {_expected_upstream_sql(stage)}"
        )
    branches.append(  # --explain: the game whatever its state
        f"SELECT f.game_id, {flags(None)} FROM games_features AS f WHERE @every_row"
    )
    combined = ", ".join(f"LOGICAL_OR(c.reason_{r}) AS reason_{r}" for r in REASONS)
    union = "\n  UNION ALL ".join(branches)
    return f"""
WITH s AS (
  SELECT game_id, feature_hash, input_hash, model_key, upstream_key, score_ts
  FROM scoring_state WHERE stage = @stage
),
found AS (
  {union}
),
changed AS (SELECT c.game_id, {combined} FROM found AS c GROUP BY c.game_id)
SELECT f.game_id, f.name, f.year_published,
  {new_hash} AS new_hash, st.{old_column} AS old_hash, h.last_updated,
  st.score_ts AS last_score_ts, st.job_id AS last_job_id, st.model_key AS old_model,
  st.upstream_key AS old_upstream,
  {_expected_upstream_sql(stage)} AS new_upstream,
  c.reason_new, c.reason_features, c.reason_model, c.reason_upstream
FROM changed AS c
JOIN games_features AS f ON f.game_id = c.game_id
LEFT JOIN game_features_hash AS h ON h.game_id = c.game_id
LEFT JOIN scoring_state AS st ON st.game_id = c.game_id AND st.stage = @stage{joins}
WHERE {SELECTION_WHERE}
ORDER BY st.game_id IS NOT NULL, st.score_ts, f.game_id
LIMIT @limit
"""


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
) -> StageChanges:
    """Games of the selection the stage must score (``every_row``: all, with reasons)."""
    if max_games <= 0:
        raise UsageError(f"--max-games must be positive, got {max_games}")
    params: dict[str, Any] = {
        **selection.params(),
        "stage": stage,
        "model_key": Typed(model_key, "STRING"),
        "limit": max_games + 1,  # one more than allowed tells us whether the cap bit
        "every_row": every_row,
    }
    for i, upstream in enumerate(UPSTREAM[stage]):
        params[f"up_{i}"] = upstream
    frame = wh.query(detection_sql(stage), params)
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
