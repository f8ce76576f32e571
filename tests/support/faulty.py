"""A model that fails on purpose, for the `score --workers` failure tests.

It lives here, not in a test file, because a worker process unpickles it: its class must
be importable by module path there (the workers get the parent's sys.path).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import numpy as np

FAILURES = ("raise", "length", "die", "sleep")


class Faulty:
    """A complexity regressor predicting 3.0, except on a batch holding game ``game_id``:
    there it raises a ValueError ("raise"), returns one value too many ("length": what a
    bug in bggscore's own code would meet), or kills its own process ("die"). With
    "sleep" every batch takes ``seconds``, to interrupt a run while it works."""

    def __init__(self, game_id: int, how: str, seconds: float = 0.5) -> None:
        assert how in FAILURES, how
        self.game_id, self.how, self.seconds = game_id, how, seconds

    def predict(self, X: Any) -> np.ndarray:
        if self.how == "sleep":
            time.sleep(self.seconds)
        elif self.game_id in set(X["game_id"].tolist()):
            if self.how == "raise":
                raise ValueError(f"cannot score game {self.game_id}")
            if self.how == "length":
                return np.full(len(X) + 1, 3.0)
            if self.how == "die":
                os.kill(os.getpid(), signal.SIGKILL)
        return np.full(len(X), 3.0)


def register_faulty(home: Any, game_id: int, how: str, seconds: float = 0.5) -> str:
    """Register a Faulty complexity model in the home's registry; its reference."""
    from bggscore.registry import open_registry

    registry = open_registry(str(home / "registry"), home)
    registration = registry.register(
        "complexity",
        f"faulty-{how}",
        Faulty(game_id, how, seconds),
        signature=[{"name": "game_id"}, {"name": "year_published"}],
    )
    return registration.label
