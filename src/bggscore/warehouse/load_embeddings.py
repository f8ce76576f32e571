"""Load a file of description embeddings (game_id, embedding) into the embedded warehouse.

The table is the one ``features.embeddings_table`` names, which models reading ``emb_*``
read. A file is checked whole before anything is written; rows are upserted by game_id,
and only new or changed vectors are written, so loading the same file again changes
nothing (and detection sees no change either: it hashes the vectors).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from bggscore.errors import InputError
from bggscore.stages import EMBEDDINGS_INPUT as TABLE_INPUT
from bggscore.warehouse.base import Warehouse, Write
from bggscore.warehouse.schemas import EMBEDDINGS_INPUT
from bggscore.wording import counted

VECTOR = pl.List(pl.Float64)


@dataclass(frozen=True)
class EmbeddingsLoad:
    table: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    dim: int
    not_in_games_features: int  # vectors for games the warehouse has no features of

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_embeddings(path: Path) -> pl.DataFrame:
    """Read and check an embeddings parquet file; extra columns are ignored."""
    if path.is_dir():
        raise InputError(f"{path} is a folder", "pass the path of an embeddings parquet file")
    if not path.is_file():
        raise InputError(
            f"{path} not found", "pass the path of a parquet file of (game_id, embedding)"
        )
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:
        detail = str(exc).splitlines()[0][:120]
        raise InputError(f"{path} is not a readable parquet file ({detail})") from None
    return check_embeddings(frame, str(path))


def check_embeddings(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    """(game_id Int64, embedding List(Float64)), or one InputError naming the problem."""
    missing = [c for c in ("game_id", "embedding") if c not in frame.columns]
    if missing:
        raise InputError(
            f"{label} is missing column(s) {', '.join(missing)}",
            "an embeddings file has one row per game: game_id (integer) and embedding "
            "(a list of numbers)",
        )
    ids, vectors = frame.schema["game_id"], frame.schema["embedding"]
    if not ids.is_integer():
        raise InputError(f"{label}: column game_id has type {ids}, expected integers")
    check_vector_type(vectors, label)
    if frame.is_empty():
        raise InputError(f"{label} holds no rows", "pass a file with one row per game")
    frame = frame.select(pl.col("game_id").cast(pl.Int64), pl.col("embedding").cast(VECTOR))
    _refuse(frame, pl.col("game_id").is_null(), label, "have no game_id")
    _refuse(frame, pl.col("game_id") < 1, label, "have a game_id below 1 (ids are positive)")
    repeated = frame.filter(pl.col("game_id").is_duplicated())["game_id"].unique().sort()
    if len(repeated):
        shown = ", ".join(str(v) for v in repeated.head(5))
        raise InputError(
            f"{label}: {len(repeated)} game_id(s) appear more than once (e.g. {shown})",
            "keep one embedding per game",
        )
    _refuse(frame, pl.col("embedding").is_null(), label, "have no embedding")
    lengths = frame["embedding"].list.len()
    if lengths.min() != lengths.max() or not lengths.min():
        widths = lengths.value_counts().sort("count", descending=True)
        shown = ", ".join(f"{w:,} ({counted(n, 'row')})" for w, n in widths.head(3).iter_rows())
        raise InputError(
            f"{label}: embeddings must all have the same number of dimensions (at least one); "
            f"found {shown}",
            "export one embedding of one width per game",
        )
    values = pl.col("embedding").list.eval(pl.element().is_null() | ~pl.element().is_finite())
    _refuse(frame, values.list.any(), label, "hold a null, NaN or infinite value")
    return frame


def check_vector_type(dtype: pl.DataType, label: str) -> None:
    """A list or fixed-size array of numbers (cast to List(Float64) where read)."""
    inner = getattr(dtype, "inner", None)
    if not isinstance(dtype, (pl.List, pl.Array)) or inner is None or not inner.is_numeric():
        raise InputError(f"{label}: column embedding has type {dtype}, expected a list of numbers")


def _refuse(frame: pl.DataFrame, bad: pl.Expr, label: str, what: str) -> None:
    found = frame.filter(bad)
    if len(found):
        example = found["game_id"][0]
        which = f" (e.g. game {example})" if example is not None else ""
        raise InputError(
            f"{label}: {len(found):,} row(s) {what}{which}", "fix the file, then rerun"
        )


def embeddings_writes(
    warehouse: Warehouse, frame: pl.DataFrame, label: str, games: Iterable[int] = ()
) -> tuple[list[Write], EmbeddingsLoad]:
    """The upsert of new and changed vectors (none for an unchanged one), and the counts.
    ``games`` are the ids loaded into games_features with these vectors."""
    ids = frame["game_id"].to_list()
    dim = int(frame["embedding"].list.len()[0])
    _check_width(warehouse, ids, dim, label)
    stored = warehouse.input_embeddings(ids)
    merged = frame.join(
        stored.select("game_id", pl.col("embedding").alias("stored")), on="game_id", how="left"
    )
    new = pl.col("stored").is_null()
    same = ~new & (pl.col("embedding") == pl.col("stored"))
    counts = merged.select(new.sum().alias("new"), same.sum().alias("same")).row(0)
    inserted, unchanged = int(counts[0]), int(counts[1])
    changed = merged.filter(~same).select("game_id", "embedding")
    writes = [Write("embeddings_input", changed, "upsert")] if len(changed) else []
    known = warehouse.existing_game_ids(ids) | set(games)
    result = EmbeddingsLoad(
        str(warehouse.tables[EMBEDDINGS_INPUT.logical]),
        len(frame),
        inserted,
        len(frame) - inserted - unchanged,
        unchanged,
        dim,
        sum(1 for game in ids if game not in known),
    )
    return writes, result


def _check_width(warehouse: Warehouse, ids: list[int], dim: int, label: str) -> None:
    """The vectors the table keeps after the load (every game not in the file) must have
    the file's width: a model reads one width, so a mixed table fails every score. A file
    with a vector for every game of the table replaces them all, whatever their width."""
    kept = warehouse.kept_embedding_widths(ids)
    other = {width: n for width, n in kept.items() if width != dim}
    if not other:
        return
    table = warehouse.tables[EMBEDDINGS_INPUT.logical]
    widths = " and ".join(f"{n:,} vectors of {width:,} dimensions" for width, n in kept.items())
    width = next(iter(kept))  # the table's most common width
    raise InputError(
        f"{label} has embeddings of {dim:,} dimensions but {table} keeps {widths} for the "
        f"{sum(kept.values()):,} games not in the file; nothing was written",
        f"load vectors of {width:,} dimensions, a file with a vector for every game of the "
        f"table, or point {TABLE_INPUT.setting} at a new table",
    )
