"""What a model is given: bggscore's own models read polars frames; every other model (a
user's scikit-learn pipeline, production's imported ones) gets a pandas DataFrame built as
production's loader builds it.

Production's frame is the games_features columns in the table's order, then the
description embedding as ``emb_0 .. emb_{d-1}``, then the chain columns in the order the
chain appends them; its dtypes are what ``polars.DataFrame.to_pandas()`` gives. A model's
registration signature lists exactly those columns in that order (``models import`` infers
it so), so the frame is the signature's columns, in the signature's order, and nothing else.

The chain columns are named once here, with their meaning; each model records in its
signature (or, for bggscore's own models, in its feature builder) which ones it reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bggscore.errors import ConfigError, InputError
from bggscore.stages import CHAIN_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from bggscore.registry import LoadedModel


def is_own(model: Any) -> bool:
    """bggscore's own model classes (they read polars frames and bound their outputs)."""
    from bggscore.features import Features
    from bggscore.linear import LinearModel

    if isinstance(model, LinearModel):
        return True
    steps = getattr(model, "steps", None)
    return steps is not None and len(steps) > 0 and isinstance(steps[0][1], Features)


def chain_reads(loaded: LoadedModel) -> list[str]:
    """The chain columns a model reads, in the order its frame holds them."""
    steps = getattr(loaded.model, "steps", None)
    builder = steps[0][1] if steps else None
    if loaded.model is not None and is_own(loaded.model):
        return list(getattr(builder, "chain_inputs", ()))
    return [c.name for c in loaded.registration.signature if c.name in CHAIN_COLUMNS]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ConfigError(
            "scoring a model that is not bggscore's own needs pandas",
            "pip install 'bggscore[adopt]'",
        ) from None
    return pandas


class PandasFrames:
    """Production's input frames for one batch: converted from polars once per column set
    and shared by the models that read it (as production shares one frame between its
    models), with each model's chain columns appended to a shallow copy."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        self._bases: dict[tuple[str, ...], pd.DataFrame] = {}

    def for_model(self, loaded: LoadedModel, chain: dict[str, np.ndarray]) -> pd.DataFrame:
        columns = [c.name for c in loaded.registration.signature]
        base_columns = tuple(c for c in columns if c not in CHAIN_COLUMNS)
        missing = [c for c in base_columns if c not in self.frame.columns]
        if missing:
            raise InputError(
                f"{loaded.registration.label} reads column(s) {', '.join(missing[:5])} that "
                "this batch does not have",
                "check the model's signature (`bggscore models show`) against the warehouse",
            )
        base = self._base(base_columns)
        reads = [c for c in columns if c in CHAIN_COLUMNS]
        if not reads:
            return base
        absent = [c for c in reads if c not in chain]
        if absent:
            raise InputError(
                f"{loaded.registration.label} reads {', '.join(absent)}, which no earlier "
                "model of the chain provides here",
                "register it as the model type that follows the one providing it",
            )
        out = base.copy(deep=False)
        for name in reads:
            out[name] = np.asarray(chain[name], dtype=np.float64)
        return out

    def _base(self, columns: tuple[str, ...]) -> pd.DataFrame:
        base = self._bases.get(columns)
        if base is None:
            _pandas()
            base = self.frame.select(columns).to_pandas()
            self._bases[columns] = base
        return base

    def warm(self, models: list[LoadedModel]) -> PandasFrames:
        """Convert now what these models will read (on the thread that reads and joins
        the next batch, while this process's models compute the current one)."""
        for loaded in models:
            if loaded.model is None or is_own(loaded.model):
                continue
            columns = tuple(
                c.name for c in loaded.registration.signature if c.name not in CHAIN_COLUMNS
            )
            if all(c in self.frame.columns for c in columns):  # else for_model says so
                self._base(columns)
        return self


def shared_frame(frame: pl.DataFrame, models: list[LoadedModel]) -> pd.DataFrame:
    """One production frame for several models (the simulation transforms it through each):
    the warehouse and embedding columns of their signatures, in order of first appearance."""
    columns: list[str] = []
    for loaded in models:
        for column in loaded.registration.signature:
            if column.name not in CHAIN_COLUMNS and column.name not in columns:
                columns.append(column.name)
    _pandas()
    return frame.select(columns).to_pandas()


def game_seeds(game_ids: np.ndarray, fingerprint: str) -> np.ndarray:
    """One seed per game from its id and the models' fingerprint (splitmix64), so a rerun,
    or the same game in another batch, draws the same numbers."""
    import hashlib

    salt = np.uint64(int.from_bytes(hashlib.sha256(fingerprint.encode()).digest()[:8], "big"))
    with np.errstate(over="ignore"):
        z = game_ids.astype(np.uint64) ^ salt
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))
