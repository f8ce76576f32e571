"""`bggscore score`: stream features in batches, score the chain, commit atomically.

Each batch commits its landing rows and the matching per-stage state rows in one
transaction, so a crash loses at most the batch in flight and a rerun neither
duplicates nor skips anything. A local parquet copy is moved into place only
after the last warehouse commit.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bggscore.errors import InputError, UsageError
from bggscore.scoring.chain import RunInfo, score_complexity, score_main
from bggscore.scoring.models import ModelSet, resolve_models
from bggscore.warehouse import open_warehouse
from bggscore.warehouse.base import Warehouse, Write
from bggscore.warehouse.queries import Selection

if TYPE_CHECKING:
    from bggscore.console import Console
    from bggscore.settings import Settings

STAGES = ("complexity", "main")
WAREHOUSE_TABLES = [
    "games_features",
    "game_features_hash",
    "complexity_predictions",
    "ml_predictions_landing",
    "scoring_state",
    "runs",
]


def parse_stage(value: str) -> list[str]:
    if value == "all":
        return list(STAGES)
    if value not in STAGES:
        raise UsageError(f"unknown --stage {value!r}; choose complexity, main or all")
    return [value]


def new_job_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass
class ScoreOptions:
    selection: Selection
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    model_overrides: dict[str, str] = field(default_factory=dict)
    batch_size: int = 50_000
    intervals: int = 0
    output: Path | None = None
    upload: bool = True


@dataclass
class ScoreResult:
    job_id: str | None
    games_scored: int
    stages: dict[str, int]
    models: dict[str, str]
    skipped_reason: str | None = None
    output_location: str | None = None
    seconds: float = 0.0
    selection: str = ""

    def as_dict(self) -> dict[str, Any]:
        rate = self.games_scored / self.seconds if self.seconds > 0 else None
        return {
            "job_id": self.job_id,
            "games_scored": self.games_scored,
            "skipped_reason": self.skipped_reason,
            "stages": self.stages,
            "models": self.models,
            "output_location": self.output_location,
            "selection": self.selection,
            "seconds": round(self.seconds, 3),
            "games_per_second": round(rate, 1) if rate else None,
        }


def _state_rows(
    frame: pl.DataFrame,
    stage: str,
    model_key: str,
    upstream: pl.Series | str | None,
    run: RunInfo,
) -> pl.DataFrame:
    upstream_expr = (
        pl.Series("upstream_key", upstream)
        if isinstance(upstream, pl.Series)
        else pl.lit(upstream, pl.String).alias("upstream_key")
    )
    return frame.select(
        pl.lit(stage).alias("stage"),
        "game_id",
        "feature_hash",
        pl.lit(model_key).alias("model_key"),
        upstream_expr,
        pl.lit(run.job_id).alias("job_id"),
        pl.lit(run.score_ts, dtype=pl.Datetime("us", "UTC")).alias("score_ts"),
    )


def score_batch(
    wh: Warehouse | None,
    frame: pl.DataFrame,
    models: ModelSet,
    run: RunInfo,
    stages: list[str],
    intervals: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[list[Write], pl.DataFrame | None]:
    """The writes for one batch (all stages), and its landing rows for a local copy."""
    writes: list[Write] = []
    landing = None
    if "complexity" in stages:
        complexity_rows = score_complexity(frame, models, run)
        complexity = complexity_rows["predicted_complexity"].to_numpy()
        upstream: pl.Series | str | None = f"complexity:{run.job_id}"
        writes += [
            Write("complexity_predictions", complexity_rows),
            Write(
                "scoring_state",
                _state_rows(frame, "complexity", models.stage_key("complexity"), None, run),
                "upsert",
            ),
        ]
    else:
        complexity, upstream = _stored_complexity(wh, frame)
    if "main" in stages:
        extra = None
        if intervals:
            from bggscore.scoring.intervals import draw_chain

            extra = draw_chain(frame, complexity, models, intervals, rng or np.random.default_rng())
        landing = score_main(frame, complexity, models, run, extra)
        writes += [
            Write("ml_predictions_landing", landing),
            Write(
                "scoring_state",
                _state_rows(frame, "main", models.stage_key("main"), upstream, run),
                "upsert",
            ),
        ]
    return writes, landing


def _stored_complexity(wh: Warehouse | None, frame: pl.DataFrame) -> tuple[np.ndarray, pl.Series]:
    """`--stage main` scores with the complexity each game was last scored with."""
    if wh is None:
        raise UsageError("--stage main reads stored complexity and cannot run with --no-upload")
    ids = frame["game_id"].to_list()
    stored = wh.latest_complexity(ids)
    joined = frame.select("game_id").join(stored, on="game_id", how="left")
    missing = joined.filter(pl.col("predicted_complexity").is_null())["game_id"]
    if len(missing):
        shown = ", ".join(str(v) for v in missing.head(5))
        raise InputError(
            f"{len(missing)} game(s) have no complexity prediction yet (e.g. {shown})",
            "run `bggscore score --stage complexity` (or --stage all) first",
        )
    upstream = ("complexity:" + joined["complexity_job_id"]).alias("upstream_key")
    return joined["predicted_complexity"].to_numpy(), upstream


class ParquetCopy:
    """Landing rows written to a temporary file, moved into place only on success."""

    def __init__(self, path: Path) -> None:
        if path.suffix != ".parquet":
            raise UsageError(f"--output {path} must end in .parquet")
        if not path.parent.exists():
            raise UsageError(f"--output folder {path.parent} does not exist")
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
        self.writer: Any = None

    def add(self, frame: pl.DataFrame) -> None:
        import pyarrow.parquet as pq

        table = frame.to_arrow()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        self.writer.write_table(table)

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.tmp.replace(self.path)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.tmp.unlink(missing_ok=True)


def run_score(settings: Settings, options: ScoreOptions, console: Console) -> ScoreResult:
    from bggscore.modeling import open_settings_registry
    from bggscore.warehouse.schemas import ML_PREDICTIONS_LANDING

    started = time.monotonic()
    registry = open_settings_registry(settings)
    with open_warehouse(settings) as wh:
        wh.require_tables(WAREHOUSE_TABLES)
        models = resolve_models(settings, registry, options.stages, options.model_overrides)
        models.check_columns(wh.feature_columns())
        labels = {t: models.label(t) for t in models.models}
        if models.geek_formula is not None and "main" in options.stages:
            labels["geek_rating"] = models.geek_formula.key
        total = wh.count_features(options.selection)
        stage_counts = dict.fromkeys(options.stages, 0)
        if total == 0:
            console.info(f"no games in {options.selection.describe()}: nothing to score")
            return ScoreResult(
                None, 0, stage_counts, labels, "no_games", selection=options.selection.describe()
            )
        now = datetime.now(timezone.utc)
        run = RunInfo(
            new_job_id(now),
            now,
            settings.source_environment,
            models.fingerprint(),
            models.training_cutoff_year(),
        )
        copy = ParquetCopy(options.output) if options.output else None
        columns = sorted({"game_id", "name", "year_published", *models.warehouse_columns()})
        rng = np.random.default_rng()
        scored = 0
        if options.upload:
            wh.record_run(run.job_id, "score", ",".join(options.stages), "running", 0, now)
        try:
            with console.progress(f"scoring {options.selection.describe()}", total) as advance:
                for frame in wh.read_features(
                    options.selection, columns, options.batch_size, with_hash=True
                ):
                    writes, landing = score_batch(
                        wh, frame, models, run, options.stages, options.intervals, rng
                    )
                    if options.upload:
                        wh.write(writes)
                    if copy is not None:
                        copy.add(
                            ML_PREDICTIONS_LANDING.conform(landing)
                            if landing is not None
                            else writes[0].frame
                        )
                    scored += len(frame)
                    advance(len(frame))
        except BaseException as exc:
            if copy is not None:
                copy.abort()
            if options.upload:
                _record_failure(wh, run, options, now, scored, exc)
            raise
        if copy is not None:
            copy.finish()
        if options.upload:
            wh.record_run(run.job_id, "score", ",".join(options.stages), "success", scored, now)
    stage_counts = dict.fromkeys(options.stages, scored)
    return ScoreResult(
        run.job_id,
        scored,
        stage_counts,
        labels,
        output_location=str(options.output) if options.output else None,
        seconds=time.monotonic() - started,
        selection=options.selection.describe(),
    )


def _record_failure(
    wh: Warehouse,
    run: RunInfo,
    options: ScoreOptions,
    now: datetime,
    scored: int,
    exc: BaseException,
) -> None:
    message = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
    # the original error matters more than the bookkeeping
    with contextlib.suppress(Exception):
        wh.record_run(run.job_id, "score", ",".join(options.stages), "failed", scored, now, message)
