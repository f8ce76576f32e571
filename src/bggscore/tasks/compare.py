"""`bggscore compare A B`: two sets of predictions, game by game and column by column.

A side is a job id of this warehouse's landing table, or a .parquet landing export (for
instance production's own landing rows). Both become one frame per side: game_id, name
when known, and the numeric prediction columns under one name each (production writes
the intervals as ``complexity_lower_90``, as bggscore does now; exports made by earlier
bggscore builds say ``predicted_complexity_lower_90``: both are ``complexity_lower_90`` here).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from bggscore.errors import InputError, UsageError, WarehouseError
from bggscore.results import ColumnDiff, CompareResult

if TYPE_CHECKING:
    from bggscore.settings import Settings
    from bggscore.warehouse.base import Warehouse

LANDING = "ml_predictions_landing"
PREDICTION = re.compile(r"^predicted_.+|.+_(lower|upper)_90$")
# exports of earlier bggscore builds name intervals predicted_<outcome>_<bound>_90
BGGSCORE_INTERVAL = re.compile(r"^predicted_(.+_(lower|upper)_90)$")


@dataclass(frozen=True)
class CompareOptions:
    a: str
    b: str
    tolerance: float = 1e-9
    top: int = 10
    shared_only: bool = False  # games on one side only are counted, not a difference


@dataclass(frozen=True)
class Side:
    """One side, read: ``frame`` has game_id, name (maybe NULL) and the prediction columns."""

    given: str
    kind: str  # "job" or "file"
    frame: pl.DataFrame
    columns: list[str]  # the prediction columns, in the side's own order

    def describe(self) -> dict[str, object]:
        where = {"job_id": self.given} if self.kind == "job" else {"path": self.given}
        return {"kind": self.kind, **where, "games": self.frame.height, "columns": self.columns}


def is_file(given: str) -> bool:
    """A path (a .parquet name, a folder in it, or anything that exists), else a job id."""
    return (
        given.lower().endswith(".parquet") or "/" in given or "\\" in given or Path(given).exists()
    )


def canonical(column: str) -> str:
    found = BGGSCORE_INTERVAL.match(column)
    return found.group(1) if found else column


def _predictions(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    """game_id, name and the prediction columns under their canonical names, as Float64
    (NaN read as NULL: both mean no value). A column with no value at all is left out:
    the side did not predict it (a landing row has every column; a run without intervals
    or without a hurdle model leaves those NULL)."""
    if frame.is_empty():
        raise InputError(f"{label} has no rows")
    renames: dict[str, str] = {}
    for column in frame.columns:
        if not PREDICTION.match(column):
            continue
        name = canonical(column)
        if name in renames.values():
            other = next(key for key, value in renames.items() if value == name)
            raise InputError(f"{label} has both {other} and {column}: one column, two names")
        if not frame.schema[column].is_numeric():
            raise InputError(
                f"{label}: column {column} has type {frame.schema[column]}, not a number"
            )
        renames[column] = name
    names = pl.col("name").cast(pl.String) if "name" in frame.columns else pl.lit(None, pl.String)
    out = frame.select(
        pl.col("game_id"),
        names.alias("name"),
        *(pl.col(c).cast(pl.Float64).fill_nan(None).alias(n) for c, n in renames.items()),
    )
    empty = [n for n in renames.values() if out[n].null_count() == out.height]
    if len(empty) == len(renames):
        raise InputError(
            f"{label} has no predictions (no predicted_*, *_lower_90 or *_upper_90 column "
            "with a value)",
            "give a landing export: game_id and the predicted_* columns",
        )
    return out.drop(empty)


def read_file(path_text: str) -> Side:
    path = Path(path_text)
    hint = "give a .parquet landing export or a job id of ml_predictions_landing"
    if path.is_dir():
        raise InputError(f"{path} is a folder", hint)
    if not path.is_file():
        raise InputError(f"{path} not found", hint)
    try:
        schema = pl.read_parquet_schema(path)
        if "game_id" not in schema:
            raise InputError(f"{path} has no game_id column", hint)
        wanted = [c for c in schema if c in ("game_id", "name") or PREDICTION.match(c)]
        frame = pl.read_parquet(path, columns=wanted)  # not a whole export's other columns
    except InputError:
        raise
    except Exception as exc:
        detail = " ".join(str(exc).split())[:120]
        raise InputError(f"{path} is not a readable parquet file ({detail})", hint) from None
    if not frame.schema["game_id"].is_integer():
        raise InputError(f"{path}: game_id has type {frame.schema['game_id']}, not a whole number")
    frame = frame.with_columns(pl.col("game_id").cast(pl.Int64, strict=False))
    if frame["game_id"].null_count():
        count = frame["game_id"].null_count()
        raise InputError(f"{path}: {count} row(s) have no game_id (or one past int64)")
    repeated = _repeated(frame)
    if repeated is not None:
        raise InputError(
            f"{path} has game {repeated} more than once",
            "compare one row per game: keep each game's latest row",
        )
    predictions = _predictions(frame, str(path))
    return Side(path_text, "file", predictions, predictions.columns[2:])


def read_job(wh: Warehouse, job_id: str) -> Side:
    frame = wh.landing_rows(job_id)
    table = wh.tables[LANDING]
    if frame.is_empty():
        raise InputError(
            f"job {job_id!r} has no rows in {table}",
            "`bggscore warehouse status` lists the last runs and their job ids; "
            "or give the path of a .parquet export",
        )
    repeated = _repeated(frame)
    if repeated is not None:  # (job_id, game_id) is the table's key: the data is bad
        raise WarehouseError(
            f"job {job_id!r} has game {repeated} more than once in {table}",
            "each job has one row per game: remove the repeated rows, then compare again",
        )
    predictions = _predictions(frame, f"job {job_id!r}")
    return Side(job_id, "job", predictions, predictions.columns[2:])


def _repeated(frame: pl.DataFrame) -> int | None:
    twice = frame.filter(pl.col("game_id").is_duplicated())["game_id"]
    return int(twice.min()) if len(twice) else None  # type: ignore[arg-type]


def read_sides(
    options: CompareOptions,
    settings: Callable[[], Settings],
    waiting: Callable[[str], None] | None = None,
) -> tuple[Side, Side]:
    """Both sides; the warehouse is opened (to read) only when a side is a job (once for
    both). ``waiting``: wait for a run writing it (see ``open_warehouse``)."""
    jobs = [given for given in (options.a, options.b) if not is_file(given)]
    read: dict[str, Side] = {}
    for given in (options.a, options.b):
        if given not in jobs and given not in read:
            read[given] = read_file(given)
    if jobs:
        from bggscore.warehouse import open_warehouse

        with open_warehouse(settings(), read_only=True, waiting=waiting) as wh:
            wh.require_tables([LANDING])
            for given in jobs:
                if given not in read:
                    read[given] = read_job(wh, given)
    return read[options.a], read[options.b]


def check_tolerance(tolerance: float) -> None:
    if not tolerance >= 0:  # NaN too: nothing would ever differ
        raise UsageError(f"--tolerance {tolerance} must be 0 or more (e.g. 1e-6)")


def compare(
    a: Side, b: Side, tolerance: float, top: int, shared_only: bool = False
) -> CompareResult:
    """Games on each side, and each prediction column both have, game by game."""
    check_tolerance(tolerance)
    ids_a, ids_b = a.frame.select("game_id"), b.frame.select("game_id")
    only_a = ids_a.join(ids_b, on="game_id", how="anti")["game_id"].sort()
    only_b = ids_b.join(ids_a, on="game_id", how="anti")["game_id"].sort()
    common = [c for c in a.columns if c in b.columns]
    both = a.frame.join(b.frame, on="game_id", how="inner", suffix="__b").sort("game_id")
    columns: list[ColumnDiff] = []
    worst: list[pl.DataFrame] = []
    for column in common:
        x, y = pl.col(column), pl.col(f"{column}__b")
        diff = pl.when(x == y).then(0.0).otherwise((x - y).abs())  # inf == inf: no diff
        one_null = x.is_null() != y.is_null()
        differs = (diff > tolerance) | one_null
        stats = both.select(
            diff.max().alias("max"),
            diff.mean().alias("mean"),
            differs.sum().alias("differing"),
            one_null.sum().alias("one_null"),
        ).row(0, named=True)
        columns.append(
            ColumnDiff(
                column,
                stats["max"],
                stats["mean"],
                int(stats["differing"] or 0),
                int(stats["one_null"] or 0),
            )
        )
        worst.append(
            both.filter(differs).select(
                "game_id",
                pl.coalesce("name", "name__b").alias("name"),
                pl.lit(column).alias("column"),
                x.alias("a"),
                y.alias("b"),
                (y - x).alias("diff"),
                diff.fill_null(math.inf).alias("rank"),  # a value against none: worst
            )
        )
    return CompareResult(
        a=a.describe(),
        b=b.describe(),
        tolerance=tolerance,
        in_both=both.height,
        only_in_a=only_a.to_list(),
        only_in_b=only_b.to_list(),
        columns=columns,
        columns_only_in_a=[c for c in a.columns if c not in b.columns],
        columns_only_in_b=[c for c in b.columns if c not in a.columns],
        top=_worst_games(worst, top),
        shown=top,
        shared_only=shared_only,
    )


def _worst_games(worst: list[pl.DataFrame], top: int) -> list[dict[str, object]]:
    """Each differing game once, at its largest difference, largest first."""
    if not worst or top == 0:
        return []
    rows = pl.concat(worst)
    picked = (
        rows.sort(["rank", "game_id"], descending=[True, False], maintain_order=True)
        .unique("game_id", keep="first", maintain_order=True)
        .head(top)
    )
    return picked.drop("rank").to_dicts()


def run_compare(
    settings: Callable[[], Settings],
    options: CompareOptions,
    waiting: Callable[[str], None] | None = None,
) -> CompareResult:
    check_tolerance(options.tolerance)  # before reading anything
    a, b = read_sides(options, settings, waiting)
    return compare(a, b, options.tolerance, options.top, options.shared_only)
