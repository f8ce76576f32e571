"""`run`'s one detection: when it still stands for a later step (``SharedFeatures``)."""

from __future__ import annotations

import polars as pl

from bggscore.detection import Detection, StageChanges
from bggscore.stages import GRAPH
from bggscore.tasks.job import SharedFeatures

GAME = "game-embeddings"


def found(stage: str, ids: list[int]) -> StageChanges:
    return StageChanges(stage, f"{stage}-key", pl.DataFrame({"game_id": ids}), False, 100)


def shared() -> SharedFeatures:
    detected = {stage: found(stage, [1]) for stage in ("complexity", "main", GAME)}
    return SharedFeatures(lambda wh: (set(), set()), 10, lambda wh: Detection(detected), GRAPH)


def ask(features: SharedFeatures, follow: bool) -> tuple[list[int], set[int], int]:
    """The game ids the stage gets, the games to follow, and how often it detected again."""
    again: list[int] = []

    def detect() -> StageChanges:
        again.append(1)
        return found(GAME, [1, 2, 3])

    args = (None, GAME, f"{GAME}-key", GRAPH, detect)
    changes, ids = features.detected(*args, follow=follow)  # type: ignore[arg-type]
    return changes.game_ids, ids, len(again)


def test_a_write_upstream_is_followed_or_detected_again() -> None:
    features = shared()
    assert ask(features, follow=True) == ([1], set(), 0)  # nothing written yet
    features.wrote({"complexity": {2, 5}, "main": {2}})
    # what a second detection adds is what the direct upstream stage wrote
    assert ask(features, follow=True) == ([1], {2, 5}, 0)
    # a caller that does not follow detects again
    assert ask(features, follow=False) == ([1, 2, 3], set(), 1)


def test_a_write_of_the_stage_itself_is_always_detected_again() -> None:
    features = shared()
    features.wrote({"complexity": {2}, GAME: {1}})
    assert ask(features, follow=True) == ([1, 2, 3], set(), 1)


def test_an_empty_write_changes_nothing() -> None:
    features = shared()
    features.wrote({"complexity": set()})
    assert ask(features, follow=False) == ([1], set(), 0)


def test_plan_picks_scores_what_an_earlier_step_moved_but_games_lacking_an_input() -> None:
    from bggscore.results import MissingInputs
    from bggscore.tasks.job import plan_picks

    missing = MissingInputs({GAME: {"emb": [7]}})

    def ready(stage: str, ids: list[int], stages: list[str]) -> list[int]:
        return [i for i in ids if i != 9]  # game 9 waits on a stage not run

    picks = plan_picks(
        GRAPH, [GAME], {GAME: found(GAME, [1])}, missing, 100, ready, {GAME: {2, 7, 9}}
    )
    assert picks is not None and picks.own[GAME] == {1, 2}
    # without one, a lone stage needs no picks; past the cap, each stage alone, as before
    assert plan_picks(GRAPH, [GAME], {GAME: found(GAME, [1])}, missing, 100, ready) is None
    assert (
        plan_picks(GRAPH, [GAME], {GAME: found(GAME, [1])}, missing, 1, ready, {GAME: {2}}) is None
    )
