"""The model registry: versioned, checksummed models in a local folder or a GCS bucket.

registry = open_registry("gs://bucket/prod/models", home)
registration = registry.register("rating", "rating-v2026", pipeline, training={...})
registry.set_alias("rating-v2026:1", "champion")
loaded = registry.load("rating-v2026")  # sha256 checked before unpickling
"""

from __future__ import annotations

from bggscore.registry.integrity import RegistryWarning, VerifyResult
from bggscore.registry.refs import ModelRef, check_alias, check_name, parse_ref
from bggscore.registry.registry import (
    MODEL_TYPES,
    Column,
    LoadedModel,
    Registration,
    Registry,
    clear_cache,
    open_registry,
    read_signature_file,
)
from bggscore.registry.stores import GCSStore, LocalStore, Store, open_store

__all__ = [
    "MODEL_TYPES",
    "Column",
    "GCSStore",
    "LoadedModel",
    "LocalStore",
    "ModelRef",
    "Registration",
    "Registry",
    "RegistryWarning",
    "Store",
    "VerifyResult",
    "check_alias",
    "check_name",
    "clear_cache",
    "open_registry",
    "open_store",
    "parse_ref",
    "read_signature_file",
]
