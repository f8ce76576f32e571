"""`bggscore warehouse load`: upsert a games_features export (keeping its feature hashes)
and/or a file of description embeddings, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bggscore.errors import UsageError
from bggscore.stages import EMBEDDINGS_INPUT, OWN_EMBEDDINGS
from bggscore.warehouse import open_warehouse
from bggscore.warehouse.load import LoadResult, games_writes, read_export

if TYPE_CHECKING:
    from bggscore.settings import Settings
    from bggscore.warehouse.base import Write
    from bggscore.warehouse.load_embeddings import EmbeddingsLoad


@dataclass(frozen=True)
class Loaded:
    path: Path | None
    games: LoadResult
    embeddings_path: Path | None = None
    embeddings: EmbeddingsLoad | None = None

    def as_dict(self) -> dict[str, Any]:
        embeddings = None
        if self.embeddings is not None:
            embeddings = {"path": str(self.embeddings_path), **self.embeddings.as_dict()}
        return {
            "path": None if self.path is None else str(self.path),
            **self.games.__dict__,
            "embeddings": embeddings,
        }


def check_embeddings_target(settings: Settings) -> None:
    """`--embeddings` fills the embedded warehouse's table, and only a table name."""
    setting = EMBEDDINGS_INPUT.setting
    if settings.warehouse.engine == "bigquery":
        raise UsageError(
            f"on BigQuery the data warehouse owns the embeddings table "
            f"({setting} = {settings.features.embeddings_table}): "
            "`warehouse load --embeddings` fills the embedded warehouse only",
            "let the warehouse's own jobs fill that table",
        )
    if settings.features.embeddings_table == OWN_EMBEDDINGS:
        raise UsageError(
            f'{setting} is "{OWN_EMBEDDINGS}": models read bggscore\'s own description '
            "embeddings, so there is no table to load",
            f"set {setting} to a dataset.table name (BGGSCORE_FEATURES__EMBEDDINGS_TABLE) "
            "to load one",
        )


def load_steps(path: Path | None, embeddings: Path | None) -> int:
    """How many ``on_step`` calls a load makes: each file read, the comparison, the write."""
    return (path is not None) + (embeddings is not None) + 2


def load_export(
    settings: Settings,
    path: Path | None,
    embeddings: Path | None = None,
    on_step: Callable[[str], None] = lambda label: None,
) -> Loaded:
    """Read and check every file first (nothing is written for a bad one), then upsert
    them into the warehouse in one transaction, creating the tables where they are missing.
    ``on_step`` is told each step as it starts (``load_steps`` of them)."""
    if path is None and embeddings is None:
        raise UsageError(
            "give a games_features export, --embeddings FILE.parquet, or both",
            "e.g. `bggscore warehouse load games.parquet`",
        )
    vectors = None
    if embeddings is not None:
        from bggscore.warehouse.load_embeddings import read_embeddings

        check_embeddings_target(settings)
        on_step(f"reading {embeddings}")
        vectors = read_embeddings(embeddings)
    frame = None
    if path is not None:
        on_step(f"reading {path}")
        frame = read_export(path)
    with open_warehouse(settings, create=True) as wh:
        on_step("comparing with the warehouse")
        wh.ensure_schema()
        writes: list[Write] = []
        games = LoadResult(0, 0, 0, 0)
        if frame is not None:
            writes, games = games_writes(wh, frame)
        loaded = None
        if vectors is not None:
            from bggscore.warehouse.load_embeddings import embeddings_writes

            games_ids = frame["game_id"].to_list() if frame is not None else []
            more, loaded = embeddings_writes(wh, vectors, str(embeddings), games_ids)
            writes += more
        on_step("writing")
        if writes:
            wh.write(writes)
    return Loaded(path, games, embeddings, loaded)
