"""`bggscore run`: the whole chain in one process, for cron on a VM.

complexity -> main -> text embeddings -> game embeddings, each `--changed-only`
(or full), always in dependency order, under the home's lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bggscore.errors import UsageError
from bggscore.stages import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EMBED_BATCH_SIZE,
    DEFAULT_MAX_GAMES,
    EMBED_STAGES,
    SCORE_STAGES,
    STAGE_NAMES,
)
from bggscore.warehouse.queries import Selection

if TYPE_CHECKING:
    from bggscore.console import Console
    from bggscore.settings import Settings


def parse_stages(values: list[str]) -> list[str]:
    """Chosen stages (comma or repeat), returned in dependency order."""
    chosen = {part.strip() for value in values for part in value.split(",") if part.strip()}
    if not chosen or "all" in chosen:
        return list(STAGE_NAMES)
    unknown = sorted(chosen - set(STAGE_NAMES))
    if unknown:
        raise UsageError(
            f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGE_NAMES)}"
        )
    return [stage for stage in STAGE_NAMES if stage in chosen]


def stages_named(values: list[str]) -> bool:
    """Whether the user named stages (not the default, not ``all``)."""
    chosen = {part.strip() for value in values for part in value.split(",") if part.strip()}
    return bool(chosen) and "all" not in chosen


@dataclass
class RunOptions:
    selection: Selection
    stages: list[str] = field(default_factory=lambda: list(STAGE_NAMES))
    stages_named: bool = False  # named stages must all run; default ones may be left out
    changed_only: bool = True
    max_games: int = DEFAULT_MAX_GAMES
    batch_size: int = DEFAULT_BATCH_SIZE
    embed_batch_size: int = DEFAULT_EMBED_BATCH_SIZE


def run_pipeline(settings: Settings, options: RunOptions, console: Console) -> dict[str, Any]:
    from bggscore.tasks.embed import EmbedOptions, run_embed
    from bggscore.tasks.score import ScoreOptions, run_score

    started = time.monotonic()
    if options.max_games <= 0:  # before the first stage says anything
        raise UsageError(f"--max-games must be positive, got {options.max_games}")
    stages = _runnable_stages(settings, options, console)
    summary: dict[str, Any] = {"stages": stages}
    score_stages = [s for s in stages if s in SCORE_STAGES]
    embed_stages = [s for s in stages if s in EMBED_STAGES]
    if score_stages:
        console.info(f"score: {', '.join(score_stages)}")
        summary["score"] = run_score(
            settings,
            ScoreOptions(
                selection=options.selection,
                stages=score_stages,
                batch_size=options.batch_size,
                changed_only=options.changed_only,
                max_games=options.max_games,
            ),
            console,
        ).as_dict()
    if embed_stages:
        console.info(f"embed: {', '.join(embed_stages)}")
        summary["embed"] = run_embed(
            settings,
            EmbedOptions(
                selection=options.selection,
                stages=embed_stages,
                changed_only=options.changed_only,
                max_games=options.max_games,
                batch_size=options.embed_batch_size,
            ),
            console,
        ).as_dict()
    scored = summary.get("score", {}).get("games_scored", 0)
    embedded = sum(summary.get("embed", {}).get("games_embedded", {}).values())
    summary.update(
        {
            "games_scored": scored,
            "games_embedded": embedded,
            "games_total": scored + embedded,  # what `dispatch --if-changed` reads
            "skipped_reason": None
            if scored or embedded
            else ("no_changes" if options.changed_only else "no_games"),
            "seconds": round(time.monotonic() - started, 3),
        }
    )
    return summary


def _runnable_stages(settings: Settings, options: RunOptions, console: Console) -> list[str]:
    """The stages to run, checked before anything is scored (registrations only).

    Like ``detect-changes --stage all``, a default run leaves out an embedding stage with
    no registered model (with a warning) instead of failing after scoring; a stage named
    with ``--stage`` must have its model, or nothing runs.
    """
    from bggscore.modelset import stage_keys, warn_left_out

    wanted = [s for s in options.stages if s in EMBED_STAGES]
    if not wanted:
        return list(options.stages)
    keys = stage_keys(settings, wanted, {}, explicit=options.stages_named)
    warn_left_out(console, wanted, keys)
    return [s for s in options.stages if s in keys or s not in EMBED_STAGES]
