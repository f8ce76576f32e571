"""What each outcome model predicts, from which games, and how outputs are bounded."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from bggscore.stages import GRAPH, SCORE_STAGES

# users_rated >= 25 is the hurdle: below it BGG publishes no reliable ratings.
HURDLE_USERS = 25


@dataclass(frozen=True)
class Outcome:
    name: str
    target: str  # a games_features column
    kind: str  # "regression" | "classification"
    description: str
    train_filter: pl.Expr | None = None
    transform: str | None = None  # "log1p": the model predicts log1p(target)
    clip: tuple[float, float] | None = None
    chain_inputs: tuple[str, ...] = ()

    def target_values(self, frame: pl.DataFrame) -> pl.Series:
        if self.kind == "classification":
            return (frame[self.target] >= HURDLE_USERS).cast(pl.Int64)
        values = frame[self.target].cast(pl.Float64)
        return values.log1p() if self.transform == "log1p" else values

    def output(self) -> dict[str, object]:
        return {
            "outcome": self.name,
            "target": self.target,
            "kind": self.kind,
            "transform": self.transform,
            "clip": list(self.clip) if self.clip else None,
        }


OUTCOMES: dict[str, Outcome] = {
    outcome.name: outcome
    for outcome in (
        Outcome(
            "complexity",
            "average_weight",
            "regression",
            "average weight (1-5), from games with at least 5 weight votes",
            train_filter=(pl.col("num_weights") >= 5) & (pl.col("average_weight") > 0),
            clip=(1.0, 5.0),
        ),
        Outcome(
            "hurdle",
            "users_rated",
            "classification",
            f"probability that a game reaches {HURDLE_USERS} user ratings",
        ),
        Outcome(
            "rating",
            "average_rating",
            "regression",
            f"average rating (1-10), from games past the hurdle ({HURDLE_USERS}+ ratings)",
            train_filter=(pl.col("users_rated") >= HURDLE_USERS) & (pl.col("average_rating") > 0),
            clip=(1.0, 10.0),
            chain_inputs=("predicted_complexity",),
        ),
        Outcome(
            "users_rated",
            "users_rated",
            "regression",
            "log1p(users_rated), from games past the hurdle",
            train_filter=pl.col("users_rated") >= HURDLE_USERS,
            transform="log1p",
            chain_inputs=("predicted_complexity",),
        ),
        Outcome(
            "geek_rating",
            "bayes_average",
            "regression",
            "geek rating (bayes average) directly, from games that have one",
            train_filter=pl.col("bayes_average") > 0,
            clip=(1.0, 10.0),
            chain_inputs=("predicted_complexity", "predicted_rating", "predicted_log_users_rated"),
        ),
    )
}

# The order training (and scoring) must follow: later outcomes read earlier predictions.
TRAIN_ORDER = GRAPH.model_types(SCORE_STAGES)
