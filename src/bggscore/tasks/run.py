"""`bggscore run`: every stage in one process, for cron on a VM.

The stages run in the order the stage graph gives once the models are known (by
default complexity, main, text embeddings, game embeddings; text embeddings first when
a model reads ``emb_*``), each `--changed-only` (or full), under the home's lock.
Consecutive stages of one command run as one step of that command (one job id).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bggscore.detection import check_max_games
from bggscore.errors import UsageError
from bggscore.locking import pipeline_lock
from bggscore.modelset import stage_plan, warn_left_out
from bggscore.results import EmbedResult, RunResult, ScoreResult
from bggscore.runstatus import tracking
from bggscore.stages import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EMBED_BATCH_SIZE,
    DEFAULT_MAX_GAMES,
    EMBED_STAGES,
    STAGE_NAMES,
    StageGraph,
)
from bggscore.tasks.embed import EmbedOptions, run_embed
from bggscore.tasks.job import SharedFeatures
from bggscore.tasks.score import ScoreOptions, run_score
from bggscore.warehouse import require_warehouse
from bggscore.warehouse.lease import stage_lease
from bggscore.warehouse.queries import Selection

if TYPE_CHECKING:
    from bggscore.console import Console
    from bggscore.detection import Detection, StageChanges
    from bggscore.settings import Settings
    from bggscore.warehouse.base import Warehouse


def parse_stages(values: list[str]) -> list[str]:
    """Chosen stages (comma or repeat), returned in dependency order; none given is all."""
    parts = [part.strip() for value in values for part in value.split(",")]
    if "" in parts:  # `--stage ""` or a stray comma: not a silent "all"
        shown = ", ".join(repr(value) for value in values)
        raise UsageError(
            f"--stage {shown} names an empty stage; choose from {', '.join(STAGE_NAMES)} or all"
        )
    chosen = set(parts)
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
    workers: int = 1  # score's worker processes
    wait: bool = False  # queue behind a running bggscore instead of failing
    dispatch_event: str | None = None  # afterwards, when anything changed
    dispatch_repo: str | None = None


def _step(
    command: str,
    settings: Settings,
    options: RunOptions,
    stages: list[str],
    fresh: list[str],
    console: Console,
    shared: SharedFeatures | None = None,
) -> ScoreResult | EmbedResult:
    """One step: the command's own task on its stages, under the run's lock."""
    common: dict[str, Any] = {
        "selection": options.selection,
        "stages": stages,
        "changed_only": options.changed_only,
        "max_games": options.max_games,
        "fresh": tuple(fresh),
        "features": shared,
    }
    if command == "score":
        score = ScoreOptions(**common, batch_size=options.batch_size, workers=options.workers)
        return run_score(settings, score, console, lock=False)
    embed = EmbedOptions(**common, batch_size=options.embed_batch_size)
    return run_embed(settings, embed, console, lock=False)


# the commands a stage's Stage.command may name: a new one needs a branch in _step
STEPS = ("score", "embed")


def steps(graph: StageGraph, stages: list[str]) -> list[tuple[str, list[str]]]:
    """The stages in graph order, consecutive ones of one command grouped into a step."""
    out: list[tuple[str, list[str]]] = []
    for stage in graph.order(stages):
        command = graph.get(stage).command
        if out and out[-1][0] == command:
            out[-1][1].append(stage)
        else:
            out.append((command, [stage]))
    return out


def run_pipeline(settings: Settings, options: RunOptions, console: Console) -> RunResult:
    check_max_games(options.max_games)  # before the first stage says anything
    if (options.dispatch_event is None) != (options.dispatch_repo is None):
        raise UsageError("--dispatch and --dispatch-repo go together")
    if options.dispatch_event:  # fail before the work, not after it
        _check_dispatch(settings, options)
    started = time.monotonic()
    require_warehouse(settings)  # a mistyped home: no folder, no lock file left

    def queued(holder: str) -> None:
        console.info(f"waiting for {holder} to finish (--wait)")

    with contextlib.ExitStack() as stack:
        stack.enter_context(pipeline_lock(settings.home, "run", wait=options.wait, on_wait=queued))
        tracker = stack.enter_context(tracking(settings.home, "run"))
        graph, stages, keys = _runnable_stages(settings, options, console)
        done: list[ScoreResult | EmbedResult] = []
        stack.enter_context(stage_lease(settings, "run", stages, wait=options.wait))
        # the earlier steps' stages, left current: no need to check them again (a capped
        # stage may have left games behind, so it is checked like any other)
        ran: list[str] = []
        plan = steps(graph, stages)
        later: list[str] = []  # the stages of the steps after the one running
        shared = None
        if options.changed_only:
            wanted = {stage: keys[stage] for stage in stages}
            shared = _shared_features(settings, options, graph, wanted, later)
        for index, (command, group) in enumerate(plan):
            later[:] = [stage for _, rest in plan[index + 1 :] for stage in rest]
            console.info(f"{command}: {', '.join(group)}")
            tracker.step(f"{command}: {', '.join(group)}")
            step = _step(command, settings, options, group, list(ran), console, shared)
            done.append(step)  # the step told `shared` what it wrote
            ran += [stage for stage in group if stage not in step.capped]
    result = RunResult(stages, done, options.changed_only, time.monotonic() - started)
    if options.dispatch_event and options.dispatch_repo:
        result.dispatch = _notify(settings, options, result, console)
    return result


def _shared_features(
    settings: Settings,
    options: RunOptions,
    graph: StageGraph,
    keys: dict[str, str],
    later: list[str],
) -> SharedFeatures:
    """What a changed-only run reads once, for every step: every stage's changes in one
    detection query (``keys``: the run's stages), and at the first features read, the
    games the stages of the later steps (``later``, as it is then) detect now and the
    columns their models name are read with the reading step's own."""
    from bggscore.detection import detect_stage, detect_stages, needed_inputs
    from bggscore.modelset import open_settings_registry, resolve_models

    def detect_all(wh: Warehouse) -> Detection:
        inputs = needed_inputs(wh, graph, list(keys))  # checked in the same statement
        return detect_stages(
            wh, keys, options.selection, options.max_games, graph, inputs, carry=True
        )

    def plan(wh: Warehouse) -> tuple[set[int], set[str]]:
        registry = open_settings_registry(settings)
        ids: set[int] = set()
        columns: set[str] = set()
        for stage in later:

            def alone(stage: str = stage) -> StageChanges:
                return detect_stage(
                    wh,
                    stage,
                    keys[stage],
                    options.selection,
                    options.max_games,
                    graph=graph,
                    confirm=False,  # the text is read anyway: the text stage confirms it
                )

            found, _ = shared.detected(wh, stage, keys[stage], graph, alone)
            ids.update(found.game_ids)
            models = resolve_models(settings, registry, [stage], {}, load=False)
            columns.update(models.signature_columns())
        return ids, columns

    shared = SharedFeatures(plan, DEFAULT_BATCH_SIZE, detect_all, graph)
    return shared


def _runnable_stages(
    settings: Settings, options: RunOptions, console: Console
) -> tuple[StageGraph, list[str], dict[str, str]]:
    """The graph and the stages to run in its order, checked before anything is scored
    (registrations only).

    Like ``detect-changes --stage all``, a default run leaves out an embedding stage with
    no registered model (with a warning) instead of failing after scoring; a stage named
    with ``--stage`` must have its model, or nothing runs.
    """
    graph, keys = stage_plan(settings, options.stages, {}, explicit=options.stages_named)
    wanted = [s for s in options.stages if s in EMBED_STAGES]
    warn_left_out(console, wanted, keys)
    return graph, [s for s in graph.order(options.stages) if s in keys], dict(keys)


def _check_dispatch(settings: Settings, options: RunOptions) -> None:
    from bggscore.dispatch import (
        check_event_type,
        check_repo,
        read_trigger,
        require_token,
        resolve_api_url,
        resolve_token,
    )

    check_event_type(options.dispatch_event or "")
    check_repo(options.dispatch_repo or "")
    require_token(resolve_token(settings))
    resolve_api_url(settings)
    read_trigger(os.environ)  # an unreadable triggering event


def _notify(
    settings: Settings, options: RunOptions, result: RunResult, console: Console
) -> dict[str, Any]:
    """Tell the next repository, unless nothing changed (a no-op must not cascade)."""
    from bggscore.dispatch import DispatchOptions, run_dispatch

    event_type, repo = options.dispatch_event or "", options.dispatch_repo or ""
    if not result.games_processed():
        console.info(f"not dispatching {event_type}: nothing was scored or embedded")
        return {"sent": False, "reason": "nothing changed"}
    dispatch = DispatchOptions(
        repo=repo,
        event_type=event_type,
        payload=(
            f"games_scored={result.games_scored}",
            f"games_embedded={result.games_embedded}",
        ),
    )
    sent = run_dispatch(dispatch, settings)
    console.info(sent.summary())
    return sent.as_dict()
