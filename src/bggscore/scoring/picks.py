"""Which games of a pass each stage scores (polars only: a run that finds nothing to do
decides that without importing the scoring code)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl


@dataclass(frozen=True)
class Picks:
    """Which games of a pass each stage scores, when one pass reads the features once for
    several stages that changed on different games (``score --changed-only``): each
    stage's own detected games (``own``), and those of ``follow`` that an earlier stage of
    the pass scores in the same batch (their upstream output moves with it). A stage
    missing from ``own`` scores every game of the batch."""

    own: Mapping[str, frozenset[int]] = field(default_factory=dict)
    follow: Mapping[str, frozenset[int]] = field(default_factory=dict)

    def rows(self, stage: str, frame: pl.DataFrame, scored: set[int]) -> pl.DataFrame:
        if stage not in self.own:
            return frame
        wanted = set(self.own[stage]) | (set(self.follow.get(stage, ())) & scored)
        return frame.filter(pl.col("game_id").is_in(list(wanted)))
