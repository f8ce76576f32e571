"""detect-changes as a whole: model keys per stage, previews across stages, explanations."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bggscore.detection import (
    Detection,
    StageChanges,
    check_inputs,
    check_max_games,
    confirm_inputs,
    detect_stage,
    detect_stages,
    missing_ids,
    needed_inputs,
    pending_upstream,
)
from bggscore.modelset import stage_plan
from bggscore.results import DetectResult, ExplainResult, StageDetection
from bggscore.stages import INPUT_TABLES, STAGE_NAMES, STATE_TABLE, StageGraph, chosen_stages
from bggscore.warehouse import open_warehouse
from bggscore.warehouse.queries import GAME_NAME_YEAR, Selection

if TYPE_CHECKING:
    from bggscore.settings import Settings

DETECTION_TABLES = [*INPUT_TABLES, STATE_TABLE]


def parse_detect_stage(value: str) -> list[str]:
    """``--stage``: one stage, several with commas or all; in the order they run."""
    return chosen_stages(value, STAGE_NAMES, f"from {', '.join(STAGE_NAMES)} or all")


SAMPLE_ROWS = 10  # games per stage shown to people (JSON has every id)


def _as_result(changes: StageChanges) -> StageDetection:
    sample = changes.frame.head(SAMPLE_ROWS).with_columns(changes.reasons().head(SAMPLE_ROWS))
    return StageDetection(
        stage=changes.stage,
        count=changes.count,
        by_reason=changes.by_reason(),
        capped=changes.capped,
        max_games=changes.max_games,
        game_ids=changes.game_ids,
        sample=sample.select("game_id", "name", "year_published", "reasons").to_dicts(),
    )


def detect_for_stages(
    settings: Settings,
    stages: list[str],
    selection: Selection,
    max_games: int,
    overrides: dict[str, str],
    waiting: Callable[[str], None] | None = None,
) -> DetectResult:
    """What each stage must (re)score and why, in graph order; with several stages, a
    preview: games an earlier stage rescores, the stages that read it follow. Reads only
    (``waiting``: wait for a run writing the warehouse, see ``open_warehouse``)."""
    check_max_games(max_games)
    with open_warehouse(settings, read_only=True, waiting=waiting) as wh:
        # the warehouse first: on a new or mistyped home, `warehouse init` is the first step
        wh.require_tables(DETECTION_TABLES)
        graph, keys = stage_plan(settings, stages, overrides, explicit=len(stages) == 1)
        # every stage in one statement, which checks the inputs too (one read of the
        # embeddings table); games without an input a stage needs are left out, reported
        detected = (
            detect_stages(
                wh, keys, selection, max_games, graph, needed_inputs(wh, graph, list(keys))
            )
            if keys
            else Detection({})
        )
        # vectors the models cannot read are refused here as `score` refuses them
        widths = _widths(settings, list(keys), overrides)
        lacking = check_inputs(wh, graph, list(keys), selection, widths, detected.inputs)
        missing = missing_ids(wh, selection)
        found: dict[str, StageChanges] = {}
        for stage in keys:
            changes = detected.stages[stage]
            if graph.get(stage).input_column is not None:  # the text stage: by its md5
                changes = confirm_inputs(wh, changes)
            for upstream in graph.upstream(stage):
                if upstream in found:
                    changes = pending_upstream(changes, found[upstream])
            found[stage] = changes
    return DetectResult(
        selection=selection.describe(),
        stages=[_as_result(changes) for changes in found.values()],
        missing_game_ids=missing,
        left_out=[s for s in graph.order(stages) if s not in keys],
        missing_inputs=lacking,
    )


def _widths(
    settings: Settings, stages: list[str], overrides: dict[str, str]
) -> dict[str, int | None]:
    """The ``emb_*`` columns each stage's models read (registrations only)."""
    from bggscore.modelset import open_settings_registry, resolve_models

    if not stages:
        return {}
    plan = resolve_models(settings, open_settings_registry(settings), stages, overrides, False)
    return {stage: plan.embedding_width(stage) for stage in stages}


def explain_game(
    settings: Settings,
    game_id: int,
    stages: list[str],
    overrides: dict[str, str],
    waiting: Callable[[str], None] | None = None,
) -> ExplainResult:
    """Recorded vs current hash, model and upstream for one game, per stage."""
    from bggscore.errors import InputError

    selection = Selection(game_ids=(game_id,))
    with open_warehouse(settings, read_only=True, waiting=waiting) as wh:
        wh.require_tables(DETECTION_TABLES)
        graph, keys = stage_plan(settings, stages, overrides, explicit=len(stages) == 1)
        lacking = check_inputs(wh, graph, list(keys), selection).found
        if not wh.existing_game_ids([game_id]):
            raise InputError(f"game {game_id} is not in the warehouse")
        info = wh.query(GAME_NAME_YEAR, {"id": game_id}).row(0, named=True)
        stages_out: list[dict[str, Any]] = []
        reasons: dict[str, list[str]] = {}
        for stage, key in keys.items():
            row = _state_row(wh, stage, key, game_id, selection, graph)
            # as in the preview (detect_for_stages): an upstream stage about to rescore the
            # game makes this one follow, so the explanation agrees with the list it explains
            pending = [up for up in graph.upstream(stage) if reasons.get(up)]
            if pending and not row["reasons"]:
                row["reasons"] = ["upstream"]
            row["upstream"]["pending"] = pending
            row["missing_inputs"] = list(lacking.get(stage, {}))  # not scored until present
            if row["missing_inputs"]:
                row["reasons"] = []
            reasons[stage] = row["reasons"]
            stages_out.append(row)
    return ExplainResult(game_id, info["name"], info["year_published"], stages_out)


def _state_row(
    wh: Any, stage: str, key: str, game_id: int, selection: Selection, graph: StageGraph
) -> dict:
    row = detect_stage(wh, stage, key, selection, 1, every_row=True, graph=graph)
    values = row.frame.row(0, named=True)
    reasons = row.reasons().to_list()[0]
    return {
        "stage": stage,
        "reasons": reasons,
        "input_hash" if graph.get(stage).input_column else "feature_hash": {
            "recorded": values["old_hash"],
            "current": values["new_hash"],
        },
        "model": {"recorded": values["old_model"], "current": key},
        "upstream": {"recorded": values["old_upstream"], "current": values["new_upstream"]},
        "last_scored": values["last_score_ts"],
        "last_job_id": values["last_job_id"],
    }
