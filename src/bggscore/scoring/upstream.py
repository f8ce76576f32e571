"""What a stage reads from earlier stages: their outputs, joined to a batch of games.

A stage's upstream stages come from the stage graph (its static edges and those its
models' signatures add). Their outputs are taken from the same pass when it just
computed them (complexity before main in one `score`), else read for the batch from the
state table and the upstream stage's table. A game missing an upstream output is left
out of the batch and reported as waiting on that stage; the stage records which
upstream outputs it read (``<stage>:<job>|<stage>:<job>``), which is what
detection's ``upstream`` reason compares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import polars as pl

from bggscore.errors import UsageError
from bggscore.stages import COMPLEXITY, TEXT_EMBEDDINGS
from bggscore.warehouse.base import Warehouse

EMBEDDING_PREFIX = "emb_"  # emb_0 .. emb_{d-1}: a description embedding, one column each
TEXT_COLUMN = "description_embedding"  # the same embedding as one list column


def _complexity(wh: Warehouse, ids: list[int]) -> pl.DataFrame:
    return wh.latest_complexity(ids).rename({"complexity_job_id": "job"})


def _text(wh: Warehouse, ids: list[int]) -> pl.DataFrame:
    return wh.latest_text_embeddings(ids).rename({"text_job_id": "job"})


# stage -> reads (game_id, its output columns, job) for a list of games
READERS: dict[str, Callable[[Warehouse, list[int]], pl.DataFrame]] = {
    COMPLEXITY: _complexity,
    TEXT_EMBEDDINGS: _text,
}


@dataclass
class Produced:
    """Outputs the current pass computed for the very rows of the batch."""

    columns: dict[str, pl.Series]
    job_id: str


@dataclass
class Joined:
    frame: pl.DataFrame  # the games that have every upstream output, with those columns
    upstream_key: pl.Series | None  # what each game's state row records (None: no upstream)
    waiting: dict[str, list[int]] = field(default_factory=dict)  # upstream stage -> game ids


def expand_embedding(frame: pl.DataFrame) -> pl.DataFrame:
    """``description_embedding`` as columns ``emb_0 .. emb_{d-1}`` (as production's models
    read it)."""
    if frame.is_empty():
        return frame
    width = int(frame.select(pl.col(TEXT_COLUMN).list.len().max()).item() or 0)
    return frame.with_columns(
        pl.col(TEXT_COLUMN)
        .list.to_struct(fields=[f"{EMBEDDING_PREFIX}{i}" for i in range(width)])
        .struct.unnest()
    )


def join_upstream(
    wh: Warehouse | None,
    frame: pl.DataFrame,
    upstream: tuple[str, ...],
    *,
    produced: Mapping[str, Produced] | None = None,
    held: Mapping[str, set[int]] | None = None,
    expand_embeddings: bool = False,
    stage: str = "this stage",
) -> Joined:
    """``frame`` with each upstream stage's outputs; games missing one are left out, and
    so are those ``held`` names (upstream stage -> games whose output it must redo first)."""
    if not upstream:
        return Joined(frame, None)
    produced = produced or {}
    joined = frame
    jobs: list[pl.Expr] = []
    # outputs of this pass first: they are aligned with the batch's rows as they are
    for name in [u for u in upstream if u in produced]:
        joined = joined.with_columns(**produced[name].columns)
    stored = [u for u in upstream if u not in produced]
    if stored and wh is None:  # `score --no-upload` has no warehouse handle to read
        raise UsageError(
            f"{stage} reads the stored output of {' and '.join(stored)} and cannot run "
            "with --no-upload"
        )
    ids = frame["game_id"].to_list()
    for name in stored:
        assert wh is not None
        rows = READERS[name](wh, ids).rename({"job": f"_job_{name}"})
        joined = joined.join(rows, on="game_id", how="left")
    waiting: dict[str, list[int]] = {}
    keep = []
    for name in stored:
        ready = pl.col(f"_job_{name}").is_not_null()
        if held and held.get(name):
            ready = ready & ~pl.col("game_id").is_in(list(held[name]))
        missing = joined.filter(~ready)["game_id"]
        if len(missing):
            waiting[name] = missing.to_list()
        keep.append(ready)
    if waiting:
        joined = joined.filter(pl.all_horizontal(keep))
    for name in upstream:
        job = pl.lit(produced[name].job_id) if name in produced else pl.col(f"_job_{name}")
        jobs.append(pl.concat_str(pl.lit(f"{name}:"), job))
    # with_columns, not select: a key of literals alone must still cover every row
    joined = joined.with_columns(pl.concat_str(jobs, separator="|").alias("_upstream_key"))
    key = joined["_upstream_key"].alias("upstream_key")
    joined = joined.drop(["_upstream_key", *(f"_job_{name}" for name in stored)])
    if expand_embeddings and TEXT_EMBEDDINGS in upstream:
        joined = expand_embedding(joined)
    return Joined(joined, key, waiting)
