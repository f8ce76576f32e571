"""Production's registry as it is (bgg-predictive-models): reading its folders and mapping
its registration.json onto bggscore's Registration.

Layout: ``<model_type>/<name>/v<N>/registration.json`` and ``pipeline.pkl`` (plain
``pickle.dumps`` of a scikit-learn Pipeline), under ``gs://<bucket>/<env>/models/registered``.
A source may be any level of it: the root, one type folder, one name folder or one version
folder. Production keeps no checksum, so an import trusts the bytes it copies on first use
and every load after that checks them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bggscore.errors import InputError
from bggscore.registry.refs import NAME_PATTERN
from bggscore.registry.registry import REGISTRATION, Column, Registration
from bggscore.registry.stores import LocalStore, Store
from bggscore.stages import GRAPH, SCORE_STAGES, TEXT_EMBEDDINGS

PIPELINE = "pipeline.pkl"
# what production registers that bggscore imports: the five outcome models
IMPORTED_TYPES = GRAPH.model_types(SCORE_STAGES)
# production's game and text embedding models: bggscore has embedding models of its own
EMBEDDING_FOLDERS = ("embeddings", TEXT_EMBEDDINGS)
STATUSES = {"registered": "active", "archived": "archived"}
_VERSION = re.compile(r"^v([1-9][0-9]*)$")
LAYOUT = "<model_type>/<name>/v<N>/{registration.json,pipeline.pkl}"


class ExperimentMetadata(BaseModel):
    """``original_experiment.metadata``: the keys bggscore reads; the rest is kept as is."""

    model_config = ConfigDict(extra="allow")

    model_type: str | None = None
    train_through: int | None = None
    tune_through: int | None = None
    test_through: int | None = None
    use_embeddings: bool = False


class Experiment(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    metadata: ExperimentMetadata = Field(default_factory=ExperimentMetadata)


class ProductionRegistration(BaseModel):
    """production's registration.json (written by json.dumps, times without a zone)."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: int
    status: Literal["registered", "archived"]
    description: str | None = None
    registered_at: datetime
    registered_by: str | None = None
    original_experiment: Experiment


@dataclass
class SourceVersion:
    """One version folder of the source, read and checked against its folder names."""

    model_type: str
    name: str
    version: int
    uri: str  # the version folder's URI: the `source` of the registration
    folder: str  # its key prefix in the source store ("" when the source is the folder)
    raw: dict[str, Any]  # the registration.json, whole
    parsed: ProductionRegistration
    data: bytes = b""  # pipeline.pkl's bytes, once read

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def status(self) -> str:
        return STATUSES[self.parsed.status]


@dataclass
class SourceListing:
    versions: list[SourceVersion] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}


def _base_parts(store: Store) -> list[str]:
    if isinstance(store, LocalStore):
        return list(Path(store.root).parts)
    return [part for part in store.uri.removeprefix("gs://").split("/") if part]


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _read_json(store: Store, key: str) -> Any:
    where = store.uri_of(key)
    try:
        return json.loads(store.read_bytes(key))
    except ValueError:
        raise InputError(
            f"{where} is not valid JSON; it is not a production registration"
        ) from None


def parse_registration(raw: Any, where: str) -> ProductionRegistration:
    """production's registration.json, or an InputError naming the field that is wrong."""
    if isinstance(raw, dict) and "sha256" in raw and "model_type" in raw:
        raise InputError(
            f"{where} is a bggscore registration already, not production's: use its "
            "registry as registry.uri instead of importing it"
        )
    if not isinstance(raw, dict) or not ({"registered_at", "original_experiment"} & set(raw)):
        raise InputError(
            f"{where} is neither production's registration format nor bggscore's "
            "(no registered_at, original_experiment or sha256 field)"
        )
    try:
        return ProductionRegistration.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        at = ".".join(str(part) for part in error["loc"])
        raise InputError(
            f"{where} is not a valid production registration: {at}: {error['msg']}"
        ) from None


def _check_folder(found: SourceVersion, where: str) -> None:
    """The registration must describe the folder it sits in."""
    parsed = found.parsed
    folder_type = parsed.original_experiment.metadata.model_type
    if parsed.name != found.name or parsed.version != found.version:
        raise InputError(
            f"{where} describes {parsed.name}:{parsed.version} but sits in the folder of "
            f"{found.name}:{found.version}; fix the file or the folder"
        )
    if folder_type is not None and folder_type != found.model_type:
        raise InputError(
            f"{where} says original_experiment.metadata.model_type {folder_type!r} but sits "
            f"in the {found.model_type!r} folder; fix the file or the folder"
        )
    if not NAME_PATTERN.fullmatch(found.name):
        raise InputError(
            f"{where}: the name {found.name!r} is not a valid bggscore model name "
            "(1-63 lower-case letters, digits, '_', '.' or '-')"
        )


def list_source(store: Store) -> SourceListing:
    """Every version folder under the source, read and checked (pipeline.pkl not yet read).

    InputError (exit 2) for what is not production's layout or registration format; what
    the store cannot reach raises its own RegistryError."""
    if isinstance(store, LocalStore) and not Path(store.root).is_dir():
        raise InputError(f"import source {store.uri} is not a folder; check the path")
    base = _base_parts(store)
    folders: dict[str, set[str]] = {}
    for key in store.list_prefix(""):
        folder, _, file = key.rpartition("/")
        if file in (REGISTRATION, PIPELINE):
            folders.setdefault(folder, set()).add(file)
    listing = SourceListing()
    skipped_types: set[str] = set()
    for folder, files in sorted(folders.items()):
        parts = base + (folder.split("/") if folder else [])
        where = store.uri_of(_join(folder, REGISTRATION))
        if len(parts) < 3 or not _VERSION.match(parts[-1]):
            if REGISTRATION in files:
                raise InputError(
                    f"{where} is not in a version folder of production's layout {LAYOUT}"
                )
            continue
        model_type, name, version = parts[-3], parts[-2], int(parts[-1][1:])
        if model_type in EMBEDDING_FOLDERS:
            if model_type not in skipped_types:
                skipped_types.add(model_type)
                type_folder = "/".join(folder.split("/")[:-2]) if folder else ""
                listing.skipped.append(
                    {
                        "path": store.uri_of(type_folder) if type_folder else store.uri,
                        "reason": "production's embedding models are not imported; "
                        "bggscore trains its own (`bggscore models train`)",
                    }
                )
            continue
        if REGISTRATION not in files:
            listing.skipped.append(
                {
                    "path": store.uri_of(folder) if folder else store.uri,
                    "reason": f"no {REGISTRATION} (an unfinished registration)",
                }
            )
            continue
        raw = _read_json(store, _join(folder, REGISTRATION))
        parsed = parse_registration(raw, where)
        if model_type not in IMPORTED_TYPES:
            raise InputError(
                f"{where} sits in a folder of model type {model_type!r}; production's are "
                f"{', '.join(IMPORTED_TYPES)} (and {', '.join(EMBEDDING_FOLDERS)}, skipped)"
            )
        found = SourceVersion(
            model_type,
            name,
            version,
            store.uri_of(folder) if folder else store.uri,
            folder,
            raw,
            parsed,
        )
        _check_folder(found, where)
        if PIPELINE not in files:
            raise InputError(
                f"{found.uri} has {REGISTRATION} but no {PIPELINE}; restore the file in "
                "production or import another folder"
            )
        listing.versions.append(found)
    if not listing.versions and not listing.skipped:
        raise InputError(
            f"import source {store.uri} holds no production models; give production's "
            f"models/registered folder or a folder inside it ({LAYOUT})"
        )
    return listing


def read_pipeline(store: Store, found: SourceVersion) -> bytes:
    found.data = store.read_bytes(_join(found.folder, PIPELINE))
    return found.data


def created_at(parsed: ProductionRegistration) -> datetime:
    """registered_at has no time zone in production: it is read as UTC."""
    value = parsed.registered_at
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def training_window(parsed: ProductionRegistration) -> dict[str, Any]:
    """What bggscore reads of the experiment: the years (``test_through`` sets the
    landing's training_cutoff_year) and whether the model reads description embeddings."""
    metadata = parsed.original_experiment.metadata
    window: dict[str, Any] = {
        key: getattr(metadata, key)
        for key in ("train_through", "tune_through", "test_through")
        if getattr(metadata, key) is not None
    }
    window["use_embeddings"] = metadata.use_embeddings
    for key in ("algorithm", "model_task", "target_column"):
        if isinstance(extra := (metadata.model_extra or {}).get(key), str):
            window[key] = extra
    return window


def to_registration(
    found: SourceVersion,
    *,
    signature: list[Column],
    sklearn_version: str | None,
    code_paths: list[str],
    proved: bool,
    sha256: str,
) -> Registration:
    """bggscore's registration of one imported version: production's name, version and
    status; its bytes as they were, with their sha256; the original registration kept
    whole under ``imported``."""
    parsed = found.parsed
    return Registration(
        name=found.name,
        version=found.version,
        model_type=found.model_type,
        description=parsed.description or "",
        status="active" if found.status == "active" else "archived",
        created_at=created_at(parsed),
        created_by=parsed.registered_by or "unknown",
        sha256=sha256,
        artifact=PIPELINE,
        size_bytes=len(found.data),
        versions={"sklearn": sklearn_version},
        training=training_window(parsed),
        signature=signature,
        experiment=parsed.original_experiment.name,
        format="pickle",
        source=found.uri,
        imported=found.raw,
        code_paths=code_paths,
        proved=proved,
    )
