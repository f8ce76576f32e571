"""Feature hashes: the embedded stand-in for the warehouse's Dataform hash job.

The hash covers exactly the 13 fields of ``staging.game_features_hash`` (domain
docs). Arrays are sorted first, so the order the warehouse happens to aggregate
them in never changes a hash (the flaw of today's job). Ratings and counts are
not hashed: a stats-only refresh changes nothing. blake2b, not polars' own
hash, because a hash must not change when a library is upgraded.
"""

from __future__ import annotations

import hashlib

import polars as pl

from bggscore.warehouse.schemas import ARRAY_FIELDS, GAMES_FEATURES, HASHED_FIELDS


def canonical_text(frame: pl.DataFrame) -> pl.Series:
    """One JSON document per game over the hashed fields, arrays sorted."""
    types = GAMES_FEATURES.polars_schema()
    fields = [
        pl.col(name).cast(types[name]).list.sort()
        if name in ARRAY_FIELDS
        else pl.col(name).cast(types[name])
        for name in HASHED_FIELDS
    ]
    return frame.select(pl.struct(fields).struct.json_encode().alias("text"))["text"]


def feature_hashes(frame: pl.DataFrame) -> pl.Series:
    """Signed 64-bit hashes (BigQuery INT64, like FARM_FINGERPRINT) per game."""
    values = [
        int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)
        for text in canonical_text(frame)
    ]
    return pl.Series("feature_hash", values, dtype=pl.Int64)
