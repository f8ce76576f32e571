"""Nearest games by cosine similarity over the latest game embeddings.

Embeddings are L2-normalised, so similarity is a dot product. The matrix of one
model version is cached in the home folder and rebuilt only when the stage has
written since, so `similar` answers interactively on 500k games.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bggscore.errors import InputError, UsageError
from bggscore.warehouse import open_warehouse

if TYPE_CHECKING:
    from bggscore.settings import Settings

STAGE = "game-embeddings"


@dataclass
class Index:
    ids: np.ndarray
    names: list[str]
    years: np.ndarray
    vectors: np.ndarray  # float32, unit rows


def _cache_path(settings: Settings, key: str) -> Path:
    digest = hashlib.sha256(f"{settings.warehouse_path}|{key}".encode()).hexdigest()[:16]
    return settings.home / "cache" / f"similar-{digest}.npz"


def load_index(settings: Settings) -> tuple[Index, str]:
    from bggscore.detection import stage_keys

    key = stage_keys(settings, [STAGE], {}, explicit=True)[STAGE]
    path = _cache_path(settings, key)
    with open_warehouse(settings) as wh:
        wh.require_tables(["scoring_state", "game_embeddings", "games_features"])
        count, token = wh.stage_version(STAGE, key)
        if count == 0:
            raise InputError(
                "no game embeddings yet for the current model", "run `bggscore embed` first"
            )
        if path.exists():
            with np.load(path, allow_pickle=False) as cached:
                if str(cached["token"]) == token:
                    return _index(cached), key
        frame = wh.latest_game_embeddings(key)
    index = Index(
        frame["game_id"].to_numpy(),
        frame["name"].fill_null("").to_list(),
        frame["year_published"].to_numpy(),
        np.vstack(frame["embedding"].to_numpy()).astype(np.float32),
    )
    _save(path, index, token)
    return index, key


def _index(cached: Any) -> Index:
    return Index(cached["ids"], list(cached["names"]), cached["years"], cached["vectors"])


def _save(path: Path, index: Index, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        ids=index.ids,
        names=np.array(index.names, dtype=str),
        years=index.years,
        vectors=index.vectors,
        token=np.array(token),
    )
    tmp.replace(path)


def find_game(index: Index, game_id: int | None, name: str | None) -> int:
    """Row of the game asked for: by id, or the best name match."""
    if (game_id is None) == (name is None):
        raise UsageError("give a GAME_ID or --name, not both")
    if game_id is not None:
        rows = np.flatnonzero(index.ids == game_id)
        if not len(rows):
            raise InputError(
                f"game {game_id} has no embedding", "check the id, or run `bggscore embed`"
            )
        return int(rows[0])
    assert name is not None
    names = pl.Series(index.names)
    wanted = name.casefold()
    exact = np.flatnonzero((names.str.to_lowercase() == wanted).to_numpy())
    if len(exact):
        return int(exact[0])
    contains = np.flatnonzero(names.str.to_lowercase().str.contains(wanted, literal=True))
    if len(contains):  # the shortest name containing the text is the best match
        return int(min(contains, key=lambda i: len(index.names[i])))
    close = difflib.get_close_matches(name, list(set(index.names)), n=5, cutoff=0.6)
    hint = f"did you mean: {', '.join(close)}?" if close else "try part of the name"
    raise InputError(f"no game named {name!r}", hint)


def neighbours(index: Index, row: int, top: int) -> list[dict[str, Any]]:
    if top <= 0:
        raise UsageError(f"--top must be positive, got {top}")
    scores = index.vectors @ index.vectors[row]
    scores[row] = -np.inf
    top = min(top, len(scores) - 1)
    best = np.argpartition(-scores, top)[:top] if top < len(scores) else np.arange(len(scores))
    best = best[np.argsort(-scores[best])]
    return [
        {
            "game_id": int(index.ids[i]),
            "name": index.names[i],
            "year_published": None if np.isnan(index.years[i]) else int(index.years[i]),
            "similarity": round(float(scores[i]), 4),
        }
        for i in best
    ]


def similar(settings: Settings, game_id: int | None, name: str | None, top: int) -> dict[str, Any]:
    index, key = load_index(settings)
    row = find_game(index, game_id, name)
    return {
        "game_id": int(index.ids[row]),
        "name": index.names[row],
        "model": key,
        "neighbours": neighbours(index, row, top),
    }
