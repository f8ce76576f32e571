"""`bggscore similar`: the games nearest one game by its latest game embedding.

A cache in the home folder answers with numpy alone while nothing it depends on has
changed (settings, registry, warehouse file); otherwise the full check rebuilds it
(bggscore.embeddings.similar). The CLI's start-up fast path uses the same cache.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bggscore.embeddings.similar import (
    Inputs,
    NotEmbedded,
    answer,
    check_query,
    explain_miss,
    recall,
)

if TYPE_CHECKING:
    from bggscore.settings import Settings


def find_similar(
    config: Path | None,
    overrides: dict[str, Any],
    settings: Callable[[], Settings],
    game_id: int | None,
    name: str | None,
    top: int,
    on_warnings: Callable[[list[str]], None] = lambda names: None,
    waiting: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The ``top`` neighbours of a game given by id or name. ``settings`` is called only
    when the cache cannot answer (building settings imports pydantic); ``waiting``: wait
    for a run writing the warehouse (see ``open_warehouse``)."""
    check_query(game_id, name, top)
    inputs = Inputs.capture(config, overrides)
    cached = recall(inputs)
    try:
        if cached is not None:
            on_warnings(cached.warnings)
            return answer(cached.index, cached.model, game_id, name, top)
        from bggscore.embeddings.similar import similar

        return similar(settings(), game_id, name, top, inputs, waiting)
    except NotEmbedded as miss:  # the warehouse says whether it exists, and how to embed it
        raise explain_miss(settings(), miss, waiting) from None
