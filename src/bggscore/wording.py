"""Small helpers for messages people read."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 game``, ``2 games``, ``12,000 games``."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
