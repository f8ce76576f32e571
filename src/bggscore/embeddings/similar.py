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
    names: pl.Series  # read lazily from the cache: only a few are ever shown
    years: np.ndarray
    vectors: np.ndarray  # float32, unit rows (memory-mapped from the cache)


def _cache_dir(settings: Settings, key: str) -> Path:
    digest = hashlib.sha256(f"{settings.warehouse_path}|{key}".encode()).hexdigest()[:16]
    return settings.home / "cache" / f"similar-{digest}"


def load_index(settings: Settings) -> tuple[Index, str]:
    from bggscore.detection import stage_keys

    key = stage_keys(settings, [STAGE], {}, explicit=True)[STAGE]
    folder = _cache_dir(settings, key)
    with open_warehouse(settings) as wh:
        wh.require_tables(["scoring_state", "game_embeddings", "games_features"])
        count, token = wh.stage_version(STAGE, key)
        if count == 0:
            raise InputError(
                "no game embeddings yet for the current model", "run `bggscore embed` first"
            )
        cached = _read(folder, token)
        if cached is not None:
            return cached, key
        frame = wh.latest_game_embeddings(key)
    index = Index(
        frame["game_id"].to_numpy(),
        frame["name"].fill_null(""),
        frame["year_published"].to_numpy(),
        np.vstack(frame["embedding"].to_numpy()).astype(np.float32),
    )
    _save(folder, index, token)
    return index, key


def _read(folder: Path, token: str) -> Index | None:
    """The cached index when it was built from the current embeddings, else None."""
    stamp = folder / "token.txt"
    if not stamp.exists() or stamp.read_text(encoding="utf-8") != token:
        return None
    return Index(
        np.load(folder / "ids.npy", mmap_mode="r"),
        pl.read_ipc(folder / "names.arrow")["name"],
        np.load(folder / "years.npy", mmap_mode="r"),
        np.load(folder / "vectors.npy", mmap_mode="r"),
    )


def _save(folder: Path, index: Index, token: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "token.txt").unlink(missing_ok=True)  # invalid while being rewritten
    np.save(folder / "ids.npy", index.ids)
    np.save(folder / "years.npy", index.years)
    np.save(folder / "vectors.npy", index.vectors)
    pl.DataFrame({"name": index.names}).write_ipc(folder / "names.arrow")
    tmp = folder / "token.tmp"
    tmp.write_text(token, encoding="utf-8")
    tmp.replace(folder / "token.txt")  # written last: a half-written cache is never used


def find_game(index: Index, game_id: int | None, name: str | None) -> int:
    """Row of the game asked for: by id, or the best name match."""
    if game_id is not None and name is not None:
        raise UsageError("give a GAME_ID or --name, not both")
    if game_id is None and name is None:
        raise UsageError('give a GAME_ID or --name "part of a name"')
    if game_id is not None:
        rows = np.flatnonzero(index.ids == game_id)
        if not len(rows):
            raise InputError(
                f"game {game_id} has no embedding", "check the id, or run `bggscore embed`"
            )
        return int(rows[0])
    assert name is not None
    lower = index.names.str.to_lowercase()
    wanted = name.casefold()
    exact = np.flatnonzero((lower == wanted).to_numpy())
    if len(exact):
        return int(exact[0])
    contains = np.flatnonzero(lower.str.contains(wanted, literal=True).to_numpy())
    if len(contains):  # the shortest name containing the text is the best match
        lengths = index.names.str.len_chars().to_numpy()[contains]
        return int(contains[np.argmin(lengths)])  # argmin keeps the first of ties
    close = difflib.get_close_matches(name, index.names.unique().to_list(), n=5, cutoff=0.6)
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
            "name": index.names[int(i)],
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
