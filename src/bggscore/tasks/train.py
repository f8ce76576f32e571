"""Glue between settings, the warehouse and the registry for model commands."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from bggscore.errors import BggscoreError, UsageError
from bggscore.modelset import configured_ref, default_name, open_settings_registry
from bggscore.stages import EMBED_STAGES, GRAPH, SCORE_STAGES
from bggscore.warehouse import open_warehouse
from bggscore.warehouse.queries import Selection

if TYPE_CHECKING:
    from bggscore.registry import Registry
    from bggscore.settings import Settings

OUTCOME_TYPES = GRAPH.model_types(SCORE_STAGES)
EMBEDDING_TYPES = GRAPH.model_types(EMBED_STAGES)
TRAINABLE = (*OUTCOME_TYPES, *EMBEDDING_TYPES)


def read_training_frame(settings: Settings, max_games: int | None, seed: int = 0) -> pl.DataFrame:
    """Every game with a known year; a deterministic sample when capped."""
    with open_warehouse(settings) as wh:
        wh.require_tables(["games_features"])
        frames = list(wh.read_features(Selection(all_years=True), batch_size=200_000))
    # batches arrive in storage order: sort, so a fit never depends on how rows are stored
    frame = pl.concat(frames).sort("game_id") if frames else pl.DataFrame()
    if frame.is_empty():
        raise BggscoreError(
            "the warehouse has no games to train on",
            "load some with `bggscore warehouse load PATH` or run `bggscore demo`",
        )
    if max_games is not None and len(frame) > max_games:
        frame = frame.sample(max_games, seed=seed).sort("game_id")
    return frame


@dataclass
class TrainReport:
    trained: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)


def train_models(
    settings: Settings,
    outcomes: list[str],
    *,
    name: str | None,
    splits: Any,
    estimator: str,
    max_games: int | None,
    on_step: Any = None,
    embedding_options: dict[str, dict[str, int]] | None = None,
) -> TrainReport:
    """Train outcomes in chain order, then embeddings (text before game); one failing
    outcome does not stop the others."""
    from bggscore.training.train import beats_baseline, train_outcomes

    unknown = sorted(set(outcomes) - set(TRAINABLE))
    if unknown:
        raise UsageError(
            f"unknown outcome(s) {', '.join(unknown)}; choose from {', '.join(TRAINABLE)}"
        )
    if name is not None and len(outcomes) != 1:
        raise UsageError("--name needs exactly one --outcome")
    if name is not None:  # before any training: a bad name would only fail at register
        from bggscore.registry import check_name

        check_name(name)
    if name is not None:  # before reading and fitting, not at registration
        from bggscore.registry.refs import check_name

        check_name(name)
    registry = open_settings_registry(settings)
    frame = read_training_frame(settings, max_games)
    names = {t: default_name(settings, t) for t in TRAINABLE}
    if name is not None:
        names[outcomes[0]] = name
    chain_refs = {t: configured_ref(settings, t) or t for t in TRAINABLE}
    chain_refs.update({t: names[t] for t in outcomes})  # train on what this run just trained
    report = TrainReport()
    for outcome in [t for t in OUTCOME_TYPES if t in outcomes]:
        try:
            [result] = train_outcomes(
                frame, registry, [outcome], names, chain_refs, splits, estimator, on_step
            )
        except BggscoreError as exc:
            report.failed.append({"outcome": outcome, "error": str(exc)})
            continue
        report.trained.append(
            {
                "outcome": outcome,
                "model": result.registration.label,
                "metrics": result.metrics,
                "beats_baseline": beats_baseline(result.metrics),
            }
        )
    for kind in [t for t in EMBEDDING_TYPES if t in outcomes]:
        if on_step:
            on_step(f"training {kind}")
        try:
            registration = _train_embedding(
                kind, frame, registry, names, chain_refs, splits, embedding_options or {}
            )
        except BggscoreError as exc:
            report.failed.append({"outcome": kind, "error": str(exc)})
            continue
        report.trained.append(
            {
                "outcome": kind,
                "model": registration.label,
                "metrics": registration.metrics,
                "beats_baseline": None,
            }
        )
    return report


def _train_embedding(
    kind: str,
    frame: pl.DataFrame,
    registry: Registry,
    names: dict[str, str],
    refs: dict[str, str],
    splits: Any,
    options: dict[str, dict[str, int]],
) -> Any:
    from bggscore.training.embeddings import train_game, train_text

    if kind == "text_embeddings":
        return train_text(frame, registry, names[kind], splits, options.get(kind, {}))
    return train_game(
        frame,
        registry,
        names[kind],
        splits,
        options.get(kind, {}),
        refs["text_embeddings"],
        refs["complexity"],
    )
