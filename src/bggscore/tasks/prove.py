"""The check `models import` runs before it registers anything: the imported models predict,
through the very entry points `score` runs (``scoring.chain.score_complexity`` and
``score_main``), on up to 100 games of the warehouse or of an export (``--check-with``).

Chain inputs come from the models imported together, else from the registry's current
models (the settings' references): a rating model is checked on the complexity its
importer would score it with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bggscore.errors import (
    BggscoreError,
    ConfigError,
    InputError,
    RegistryError,
    UnknownModelError,
)
from bggscore.modelset import GeekFormula, ModelSet, base_graph
from bggscore.registry.pickles import missing_module_message
from bggscore.registry.registry import CHAMPION, NATIVE
from bggscore.scoring.chain import RunInfo, score_complexity, score_main
from bggscore.scoring.upstream import TEXT_COLUMN, expand_embedding, join_upstream
from bggscore.stages import COMPLEXITY, GRAPH, MAIN, TEXT_EMBEDDINGS, StageGraph
from bggscore.warehouse import open_warehouse
from bggscore.warehouse.load import read_export
from bggscore.warehouse.load_embeddings import VECTOR, check_vector_type
from bggscore.warehouse.queries import Selection
from bggscore.warehouse.schemas import GAMES_FEATURES

if TYPE_CHECKING:
    from bggscore.registry import LoadedModel, Registry
    from bggscore.settings import Settings
    from bggscore.warehouse.base import Warehouse

PROOF_GAMES = 100
NOT_CHECKED = "or pass --no-check to import without this check"


@dataclass
class Rows:
    """The games the check predicts on; ``wh`` is None for an export (its embeddings, if
    it has an ``embedding`` column, are in ``description_embedding``)."""

    wh: Warehouse | None
    frame: pl.DataFrame
    where: str  # "warehouse games" or the export's path, for messages
    embedding_dim: int | None  # the description embeddings' width, when the rows have them


def _file_rows(path: Path) -> Rows:
    games = read_export(path)
    schema = pl.read_parquet_schema(path)
    if "embedding" in schema:
        # a fixed-size Array (or Float32) as `warehouse load --embeddings` accepts it
        check_vector_type(schema["embedding"], str(path))
        embeddings = pl.read_parquet(path, columns=["game_id", "embedding"])
        games = games.join(
            embeddings.select(
                pl.col("game_id").cast(games.schema["game_id"]),
                pl.col("embedding").cast(VECTOR).alias(TEXT_COLUMN),
            ),
            on="game_id",
            how="left",
        )
    games = games.filter(pl.col("year_published").is_not_null()).sort("game_id")
    frame = games.head(PROOF_GAMES)
    return Rows(None, frame, str(path), _width(frame))


def _width(frame: pl.DataFrame) -> int | None:
    if TEXT_COLUMN not in frame.columns or frame.is_empty():
        return None
    return int(frame.select(pl.col(TEXT_COLUMN).list.len().max()).item() or 0) or None


@contextlib.contextmanager
def proof_rows(settings: Settings, check_with: Path | None) -> Iterator[Rows]:
    """Up to 100 games with a known year: the export's first, or the warehouse's."""
    if check_with is not None:
        yield _file_rows(check_with)
        return
    with open_warehouse(settings) as wh:
        wh.require_tables(["games_features"])
        batches = wh.read_features(Selection(all_years=True), GAMES_FEATURES.names, PROOF_GAMES)
        frame = next(iter(batches), None)
        del batches  # the rest of the catalogue is not read
        if frame is None:
            raise InputError(
                "the warehouse has no games with a known year to check the imported models "
                "on: load some (`bggscore warehouse load FILE`), check against an export "
                f"with --check-with FILE, {NOT_CHECKED}"
            )
        frame = frame.head(PROOF_GAMES)
        yield Rows(wh, frame, "warehouse games", _stored_width(settings, wh, frame))


def _stored_width(settings: Settings, wh: Warehouse, frame: pl.DataFrame) -> int | None:
    """The width of the description embeddings the models would be scored with."""
    if base_graph(settings).inputs:  # features.embeddings_table: production's table
        found = wh.input_embedding_widths()
        return found.widest if found and found.vectors else None
    if wh.missing_tables(["scoring_state", "description_embeddings"]):
        return None
    return _width(wh.latest_text_embeddings(frame["game_id"].to_list()))


def _graph(settings: Settings, models: ModelSet) -> StageGraph:
    return base_graph(settings).with_model_inputs(
        {
            f"{t} {m.registration.label}": [c.name for c in m.registration.signature]
            for t, m in models.models.items()
        }
    )


def _no_embeddings(rows: Rows, graph: StageGraph, stage: str) -> str:
    """Where the stage's embeddings were looked for, and how to get them there."""
    if rows.wh is None:
        return f"{rows.where} has no embedding column; add one"
    inputs = graph.inputs_of(stage)
    if inputs:
        source = graph.input(inputs[0])
        table = rows.wh.tables[source.table]
        return f"none has an embedding in {table} ({source.setting}); load them (`{source.load}`)"
    return "none has a description embedding; compute them (`bggscore embed --kind text`)"


def _inputs(
    rows: Rows,
    frame: pl.DataFrame,
    models: ModelSet,
    stage: str,
    label: str,
    settings: Settings,
) -> pl.DataFrame:
    """``frame`` with what the stage's models read besides games_features: description
    embeddings, joined as `score` joins them (``predicted_complexity``, when the stage
    reads it, is already a column); an export's own ``embedding`` column stands in."""
    graph = _graph(settings, models)
    reads, width = models.reads_embeddings(stage), models.embedding_width(stage)
    upstream = tuple(u for u in graph.upstream(stage) if u != COMPLEXITY)
    inputs = graph.inputs_of(stage)
    if rows.wh is None:
        upstream, inputs = tuple(u for u in upstream if u != TEXT_EMBEDDINGS), ()
        if reads and TEXT_COLUMN not in frame.columns:
            raise InputError(
                f"cannot check {label}: it reads description embeddings (emb_*) and "
                f"{_no_embeddings(rows, graph, stage)}, check against the warehouse, "
                f"{NOT_CHECKED}"
            )
        if reads:
            frame = frame.filter(pl.col(TEXT_COLUMN).is_not_null())
            found = sorted(set(frame[TEXT_COLUMN].list.len().to_list()))
            if found and found != [width]:
                raise InputError(
                    f"cannot check {label}: it reads {width} embedding columns (emb_*) but "
                    f"the embeddings in {rows.where} have {', '.join(map(str, found))} "
                    f"dimensions; give the export its models' embeddings, {NOT_CHECKED}"
                )
            frame = expand_embedding(frame, TEXT_COLUMN, width)
    try:
        joined = join_upstream(
            rows.wh,
            frame,
            upstream,
            expand_embeddings=reads,
            stage=stage,
            inputs=inputs,
            embedding_width=width,
        ).frame
    except InputError as exc:  # e.g. the embeddings table's width is not the models'
        raise InputError(f"cannot check {label}: {exc.message}", exc.hint) from None
    if joined.is_empty():
        raise InputError(
            f"cannot check {label}: it reads description embeddings (emb_0..emb_"
            f"{(width or 1) - 1}) and of the {len(frame) or len(rows.frame)} {rows.where} "
            f"sampled {_no_embeddings(rows, graph, stage)}, check against an export with an "
            f"embedding column (--check-with FILE), {NOT_CHECKED}"
        )
    for loaded in models.models.values():
        for column in loaded.registration.signature:
            chain = (column.model_extra or {}).get("source") == "chain"
            if not chain and column.name not in joined.columns:
                raise InputError(
                    f"cannot check {loaded.registration.label}: {rows.where} lack its input "
                    f"column {column.name}; missing input: {column.name}; "
                    f"nothing was imported ({NOT_CHECKED})"
                )
    return joined


def _failure(label: str, exc: Exception, frame: pl.DataFrame, models: ModelSet) -> BggscoreError:
    """What a failed prediction becomes: the model that failed (scoring names it), the cause
    and, when the cause names one of the models' input columns the rows lack, that input."""
    cause: BaseException = exc
    if isinstance(exc, BggscoreError):
        for loaded in models.models.values():
            if exc.message.startswith(loaded.registration.label + " "):
                label = loaded.registration.label
        if isinstance(exc.__cause__, Exception):
            cause = exc.__cause__
    if isinstance(cause, ModuleNotFoundError):
        return RegistryError(missing_module_message(label, cause.name, (), with_flag=True))
    text = " ".join(str(cause).split())
    names = [
        c.name
        for m in models.models.values()
        for c in m.registration.signature
        if c.name not in frame.columns
    ]
    missing = [name for name in dict.fromkeys(names) if name in text]
    said = f"; missing input: {', '.join(missing)}" if missing else ""
    cause_text = text if len(text) <= 240 else text[:237] + "..."
    return InputError(
        f"cannot import {label}: it fails to predict on {len(frame)} {_rows_word(frame)} "
        f"({type(cause).__name__}: {cause_text}){said}; nothing was imported (fix the model "
        f"or its inputs, {NOT_CHECKED})"
    )


def _predict(label: str, frame: pl.DataFrame, models: ModelSet, call: Any) -> pl.DataFrame:
    """``call()`` (a scoring entry point); its failure explained by ``_failure``. Missing
    pandas stays scoring's own ConfigError: the fix is the same for scoring."""
    try:
        out: pl.DataFrame = call()
    except ConfigError:
        raise
    except Exception as exc:
        raise _failure(label, exc, frame, models) from exc
    return out


def _rows_word(frame: pl.DataFrame) -> str:
    return "game" if len(frame) == 1 else "games"


def _run(models: ModelSet, settings: Settings) -> RunInfo:
    return RunInfo(
        "models-import-check",
        datetime.now(timezone.utc),
        settings.source_environment,
        models.fingerprint(),
        models.training_cutoff_year(),
    )


def _finite(label: str, out: pl.DataFrame, columns: list[str]) -> None:
    for column in columns:
        values = out[column].to_numpy().astype(np.float64)
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise InputError(
                f"cannot import {label}: it predicts {column} as NaN or infinite for {bad} of "
                f"{len(values)} games; nothing was imported (fix the model or its inputs, "
                f"{NOT_CHECKED})"
            )


def _complexity(
    rows: Rows, settings: Settings, model: LoadedModel, label: str
) -> tuple[pl.DataFrame, np.ndarray]:
    """The rows the complexity model scored (those with its inputs) and their predictions."""
    models = ModelSet({COMPLEXITY: model}, None)
    frame = _inputs(rows, rows.frame, models, COMPLEXITY, label, settings)
    run = _run(models, settings)
    out = _predict(label, frame, models, lambda: score_complexity(frame, models, run))
    _finite(label, out, ["predicted_complexity"])
    kept = frame.select(rows.frame.columns)  # in the order `out` has them
    # the main stage chains from the model's own value, as `score` does
    return kept, out["predicted_complexity_raw"].to_numpy()


@dataclass
class Feeders:
    """The model of each type the check feeds the chain with: the imported one that will be
    the champion, else the registry's current one (settings), else none."""

    settings: Settings
    registry: Registry
    imported: Mapping[str, LoadedModel]

    def get(self, model_type: str) -> LoadedModel | None:
        if model_type in self.imported:
            return self.imported[model_type]
        ref = getattr(self.settings.models, model_type)
        if ref is None:  # models.geek_rating unset: `score` uses the bayesian formula
            return None
        with contextlib.suppress(UnknownModelError):
            return self.registry.load(ref, model_type)
        # settings still name bggscore's defaults right after an earlier import: its models
        for name in sorted(self.registry.names(model_type)):
            if CHAMPION in self.registry.aliases(name):
                registration = self.registry.resolve(f"{name}@{CHAMPION}", model_type)
                if registration.source != NATIVE:
                    return self.registry.load(registration)
        return None

    def describe(self, model_type: str) -> str:
        ref = getattr(self.settings.models, model_type)
        said = f"models.{model_type} = {ref!r}" if ref else f"models.{model_type} unset"
        return f"{said}, and no imported {model_type} model has a {CHAMPION} alias"


def prove(
    rows: Rows,
    settings: Settings,
    feeders: Feeders,
    candidates: list[tuple[str, LoadedModel]],
) -> None:
    """Each (model type, loaded model) candidate predicts on ``rows`` through its stage, or
    an InputError (RegistryError for a missing module) names it, the cause and, where it can
    tell, the missing input."""
    for model_type, candidate in candidates:
        label = candidate.registration.label
        if model_type == COMPLEXITY:
            _complexity(rows, settings, candidate, label)
            continue
        _prove_main(rows, settings, feeders, model_type, candidate, label)


def _prove_main(
    rows: Rows,
    settings: Settings,
    feeders: Feeders,
    model_type: str,
    candidate: LoadedModel,
    label: str,
) -> None:
    complexity = feeders.get(COMPLEXITY)
    if complexity is None:
        raise InputError(
            f"cannot check {label}: its stage reads predicted_complexity and no complexity "
            f"model is imported with it or registered ({feeders.describe(COMPLEXITY)}); "
            f"import the complexity model too, {NOT_CHECKED}"
        )
    # the complexity model is part of the main stage's lineage (its landing columns)
    models: dict[str, LoadedModel] = {model_type: candidate, COMPLEXITY: complexity}
    absent = []
    for other in GRAPH.get(MAIN).model_types:
        if other == model_type:
            continue
        found = feeders.get(other)
        if found is not None:
            models[other] = found
        elif other in GRAPH.get(MAIN).optional:
            absent.append(other)
        elif other != "geek_rating":
            raise InputError(
                f"cannot check {label}: scoring it also needs a {other} model and none is "
                f"imported with it or registered ({feeders.describe(other)}); import that "
                f"model too, {NOT_CHECKED}"
            )
    formula = None
    if "geek_rating" not in models:
        formula = GeekFormula(settings.scoring.prior_rating, settings.scoring.prior_weight)
    base, values = _complexity(rows, settings, complexity, complexity.registration.label)
    base = base.with_columns(pl.Series("predicted_complexity", values))
    chain = ModelSet(models, formula, tuple(absent))
    frame = _inputs(rows, base, chain, MAIN, label, settings)
    run = _run(chain, settings)
    out = _predict(
        label,
        frame,
        chain,
        lambda: score_main(frame, frame["predicted_complexity"].to_numpy(), chain, run),
    )
    column = {"hurdle": "predicted_hurdle_prob"}.get(model_type, f"predicted_{model_type}")
    _finite(label, out, [column])
