"""What a stage reads from earlier stages: their outputs, joined to a batch of games.

A stage's upstream stages come from the stage graph (its static edges and those its
models' signatures add). Their outputs are taken from the same pass when it just
computed them (complexity before main in one `score`), else read for the batch from the
state table and the upstream stage's table. A game missing an upstream output is left
out of the batch and reported as waiting on that stage; the stage records which
upstream outputs it read (``<stage>:<job>|<stage>:<job>``), which is what
detection's ``upstream`` reason compares.

An input (``features.embeddings_table``) is read the same way, after the stages: its key
part is ``<input>:<md5 of the vector>``, computed by the warehouse with the very
expression detection uses. A game without a vector is left out and reported under the
input's name (the tasks report those as ``missing_inputs``, not as waiting).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import polars as pl

from bggscore.errors import InputError, UsageError
from bggscore.stages import COMPLEXITY, EMBEDDINGS_INPUT, EMBEDDINGS_TABLE, TEXT_EMBEDDINGS
from bggscore.warehouse.base import Warehouse
from bggscore.warehouse.queries import INPUT_VECTOR, INPUT_VECTOR_HASH

EMBEDDING_PREFIX = "emb_"  # emb_0 .. emb_{d-1}: a description embedding, one column each
TEXT_COLUMN = "description_embedding"  # the same embedding as one list column
INPUT_COLUMN = INPUT_VECTOR  # the embeddings table's vector, until expanded


def _complexity(wh: Warehouse, ids: list[int], refs: pl.DataFrame | None) -> pl.DataFrame:
    return wh.latest_complexity(ids, refs).rename({"complexity_job_id": "job"})


def _text(wh: Warehouse, ids: list[int], refs: pl.DataFrame | None) -> pl.DataFrame:
    return wh.latest_text_embeddings(ids, refs).rename({"text_job_id": "job"})


def _embeddings_table(wh: Warehouse, ids: list[int], refs: pl.DataFrame | None) -> pl.DataFrame:
    rows = _one_per_game(wh, wh.input_embeddings(ids))
    return rows.rename({"embedding": INPUT_COLUMN, "input_hash": "job"})


def _vectors_read(wh: Warehouse, frame: pl.DataFrame, ids: list[int]) -> pl.DataFrame:
    """The embeddings table's vectors the features read brought (``INPUT_VECTOR``): the
    table read once per command, not once per batch."""
    rows = frame.select("game_id", INPUT_COLUMN, pl.col(INPUT_VECTOR_HASH).alias("job"))
    rows = rows.filter(pl.col(INPUT_COLUMN).is_not_null() & pl.col("game_id").is_in(ids))
    return _one_per_game(wh, rows)


def _one_per_game(wh: Warehouse, rows: pl.DataFrame) -> pl.DataFrame:
    repeated = rows.filter(pl.col("game_id").is_duplicated())["game_id"]
    if len(repeated):  # a table the warehouse fills: one row per game is its contract
        table = wh.tables[EMBEDDINGS_INPUT.table]
        raise InputError(
            f"the embeddings table {table} ({EMBEDDINGS_INPUT.setting}) has more than one "
            f"row for game {repeated[0]}",
            "keep one embedding per game in it, then rerun",
        )
    return rows


# stage or input -> reads (game_id, its output columns, job) for a list of games (given
# the state of those games when the stage has some); an input's "job" is the hash of its
# value, so its key part moves only when the value does
READERS: dict[str, Callable[[Warehouse, list[int], pl.DataFrame | None], pl.DataFrame]] = {
    COMPLEXITY: _complexity,
    TEXT_EMBEDDINGS: _text,
    EMBEDDINGS_TABLE: _embeddings_table,
}


STATEFUL = (COMPLEXITY, TEXT_EMBEDDINGS)  # read in the partitions their state names


@dataclass
class Produced:
    """Outputs the current pass computed for the very rows of the batch (``ids``: for
    those games only; the others' stored outputs are read)."""

    columns: dict[str, pl.Series]
    job_id: str
    ids: frozenset[int] | None = None


@dataclass
class Joined:
    frame: pl.DataFrame  # the games that have every upstream output, with those columns
    upstream_key: pl.Series | None  # what each game's state row records (None: no upstream)
    # upstream stage (or input: reported as missing_inputs, not waiting) -> game ids
    waiting: dict[str, list[int]] = field(default_factory=dict)
    # input -> each row's key part (its vector's hash), for a later stage of the batch that
    # reads the same input (``reuse``): read, hashed and expanded once per batch
    read: dict[str, pl.Series] = field(default_factory=dict)


def expand_embedding(
    frame: pl.DataFrame, column: str = TEXT_COLUMN, width: int | None = None
) -> pl.DataFrame:
    """``description_embedding`` (or another list column) as columns ``emb_0 ..
    emb_{d-1}`` (as production's models read it); ``d`` is the longest list unless given."""
    if frame.is_empty():
        return frame
    if width is None:
        width = int(frame.select(pl.col(column).list.len().max()).item() or 0)
    frame = frame.drop([c for c in frame.columns if c.startswith(EMBEDDING_PREFIX)])
    return frame.with_columns(
        pl.col(column)
        .list.to_struct(fields=[f"{EMBEDDING_PREFIX}{i}" for i in range(width)])
        .struct.unnest()
    )


def check_width(wh: Warehouse, frame: pl.DataFrame, width: int | None, stage: str) -> None:
    """Every vector of the embeddings table has the width the stage's models read: a
    100-dimensional table read by a model of 64 columns would score with wrong numbers."""
    lengths = frame[INPUT_COLUMN].list.len()
    wrong = frame.filter(lengths != (width or 0))
    if not len(wrong):
        return
    table = wh.tables[EMBEDDINGS_INPUT.table]
    found = int(wrong[INPUT_COLUMN].list.len()[0])
    raise InputError(
        f"{stage}'s models read {width or 0} embedding columns (emb_*) but the embeddings in "
        f"{table} ({EMBEDDINGS_INPUT.setting}) have {found} dimensions "
        f"(game {wrong['game_id'][0]})",
        "load embeddings of the width the models were trained on, or score with models "
        "trained on these",
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
    inputs: tuple[str, ...] = (),
    embedding_width: int | None = None,
    reuse: Mapping[str, pl.Series] | None = None,
) -> Joined:
    """``frame`` with each upstream stage's outputs, then each input's (``inputs``); games
    missing one are left out, and so are those ``held`` names (upstream stage -> games
    whose output it must redo first; input -> games without it, needed by an upstream
    stage). ``embedding_width``: the ``emb_*`` columns the models read, which the
    embeddings table's vectors must match. ``reuse``: inputs ``frame`` already holds as
    this stage reads them (an earlier stage's ``Joined.read``, rows aligned), not read again."""
    parts = (*upstream, *inputs)
    held = held or {}
    # held names the stage reads nothing of: inputs an upstream stage needs
    apart = {name: ids for name, ids in held.items() if name not in parts and ids}
    if not parts and not apart:
        return Joined(frame, None)
    produced = produced or {}
    joined = frame
    jobs: list[pl.Expr] = []
    # outputs of this pass first: they are aligned with the batch's rows as they are
    whole = {u for u in upstream if u in produced and produced[u].ids is None}
    for name in [u for u in upstream if u in whole]:
        joined = joined.with_columns(**produced[name].columns)
    reuse = {name: part for name, part in (reuse or {}).items() if name in inputs}
    for name, part in reuse.items():
        joined = joined.with_columns(part.alias(f"_job_{name}"))
    stored = [u for u in parts if u not in whole]
    to_read = [u for u in stored if u not in reuse]
    if to_read and wh is None:  # `score --no-upload` has no warehouse handle to read
        raise UsageError(
            f"{stage} reads the stored output of {' and '.join(to_read)} and cannot run "
            "with --no-upload"
        )
    ids = frame["game_id"].to_list()
    # the games of each name this pass computed (None: none, read them all)
    partly = {name: produced[name].ids if name in produced else None for name in to_read}
    wanted = {
        name: ids if done is None else [i for i in ids if i not in done]
        for name, done in partly.items()
    }
    stated = {name: wanted[name] for name in to_read if name in STATEFUL}
    # the state of every stage read: one query (game embeddings read two stages)
    refs = wh.state_refs_of(stated) if wh is not None and len(stated) > 1 else {}
    for name in to_read:
        assert wh is not None
        if name == EMBEDDINGS_TABLE and INPUT_VECTOR_HASH in frame.columns:
            rows = _vectors_read(wh, frame, wanted[name])
        else:
            rows = READERS[name](wh, wanted[name], refs.get(name))
        rows = rows.rename({"job": f"_job_{name}"})
        same = [c for c in rows.columns if c != "game_id" and c in joined.columns]
        done = partly[name]
        if done is None:
            # a column the batch already has (main re-reading what complexity read) is replaced
            joined = joined.drop(same).join(rows, on="game_id", how="left")
            continue
        # computed by this pass for some games (``done``): their values (if the batch
        # has them already) and this pass's job; the stored ones for the others
        joined = joined.join(rows, on="game_id", how="left", suffix="_stored")
        joined = joined.with_columns(pl.coalesce(c, f"{c}_stored").alias(c) for c in same).drop(
            [f"{c}_stored" for c in same]
        )
        job = pl.lit(produced[name].job_id, pl.String)
        in_pass = pl.col("game_id").is_in(list(done))
        joined = joined.with_columns(
            pl.when(in_pass).then(job).otherwise(pl.col(f"_job_{name}")).alias(f"_job_{name}")
        )
    waiting: dict[str, list[int]] = {}
    keep = []
    for name in stored:
        ready = pl.col(f"_job_{name}").is_not_null()
        if held.get(name):
            ready = ready & ~pl.col("game_id").is_in(list(held[name]))
        keep.append(ready)
    for ids_apart in apart.values():
        keep.append(~pl.col("game_id").is_in(list(ids_apart)))
    for name, ready in zip([*stored, *apart], keep, strict=True):
        missing = joined.filter(~ready)["game_id"]
        if len(missing):
            waiting[name] = missing.to_list()
    if waiting:
        joined = joined.filter(pl.all_horizontal(keep))
    for name in parts:
        job = pl.lit(produced[name].job_id) if name in whole else pl.col(f"_job_{name}")
        jobs.append(pl.concat_str(pl.lit(f"{name}:"), job))
    key = None
    if jobs:
        # with_columns, not select: a key of literals alone must still cover every row
        joined = joined.with_columns(pl.concat_str(jobs, separator="|").alias("_upstream_key"))
        key = joined["_upstream_key"].alias("upstream_key")
        joined = joined.drop("_upstream_key")
    read = {name: joined[f"_job_{name}"] for name in inputs if name in stored}
    joined = joined.drop([f"_job_{name}" for name in stored])
    if EMBEDDINGS_TABLE in inputs:
        joined = joined.drop(INPUT_VECTOR_HASH, strict=False)
    if EMBEDDINGS_TABLE in inputs:
        if EMBEDDINGS_TABLE not in reuse:  # else the frame holds them as this stage reads them
            if expand_embeddings:
                assert wh is not None
                check_width(wh, joined, embedding_width, stage)
                joined = expand_embedding(joined, INPUT_COLUMN, embedding_width)
            joined = joined.drop(INPUT_COLUMN)
    elif expand_embeddings and TEXT_EMBEDDINGS in upstream:
        joined = expand_embedding(joined)
    return Joined(joined, key, waiting, read)
