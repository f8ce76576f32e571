"""The model registry: register, resolve, alias, archive, load and verify models.

Layout under the store root (close to the registry in use today):

    <model_type>/<name>/v<N>/.claim             version N is taken; created exclusively, kept
    <model_type>/<name>/v<N>/artifact.joblib    the joblib bytes
    <model_type>/<name>/v<N>/registration.json  written last: version N exists once this does
    <model_type>/<name>/aliases/<alias>.json    {"alias", "version", "set_at", "set_by"}
    _names/<name>.json                          {"model_type"}: a name belongs to one type

Writers claim a version before writing anything else in it, so two registrations never share
a version and a claimed-but-crashed version is skipped, never reused. Readers only see
versions whose registration.json exists, and that file is written after the artifact, so a
registration never points to a missing artifact because of a crash.
"""

from __future__ import annotations

import builtins
import getpass
import json
import os
import re
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bggscore.errors import InputError, RegistryError, UnknownModelError, UsageError
from bggscore.registry.integrity import (
    VerifyResult,
    check_model_kind,
    check_model_object,
    check_sklearn_version,
    dump_artifact,
    environment_versions,
    load_verified,
    read_user_joblib,
    sha256_hex,
    verify_sha256,
    warn_on_version_drift,
)
from bggscore.registry.pickles import unpickle
from bggscore.registry.refs import ModelRef, check_alias, check_name, parse_ref
from bggscore.registry.stores import Store, open_store
from bggscore.stages import MODEL_TYPES

ARTIFACT = "artifact.joblib"
REGISTRATION = "registration.json"
NATIVE = "bggscore"  # the `source` of a model registered here (not imported)
CLAIM = ".claim"
CHAMPION = "champion"
# Each failed claim means another writer took that version; this only bounds a broken store.
MAX_CLAIM_ATTEMPTS = 100

_VERSION_KEY = re.compile(r"^v([1-9][0-9]*)/(.+)$")
_ALIAS_KEY = re.compile(r"^aliases/([^/]+)\.json$")
_REGISTRATION_KEY = re.compile(r"^([^/]+)/v([1-9][0-9]*)/registration\.json$")


class Column(BaseModel):
    """One input column a model needs."""

    model_config = ConfigDict(extra="allow")

    name: str
    dtype: str = "any"


def _plain_json(value: Any) -> Any:
    """numpy scalars/arrays and dates -> plain JSON values, so metrics serialise as given."""

    def convert(obj: Any) -> Any:
        if hasattr(obj, "tolist"):
            return obj.tolist()
        if isinstance(obj, datetime):
            return obj.isoformat()
        raise ValueError(f"{type(obj).__name__} values cannot be stored in JSON")

    return json.loads(json.dumps(value, default=convert))


class Registration(BaseModel):
    """The contents of registration.json. Unknown keys are kept (forward compatible)."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: int
    model_type: str
    description: str = ""
    status: Literal["active", "archived"] = "active"
    created_at: datetime
    created_by: str
    sha256: str
    artifact: str = ARTIFACT
    size_bytes: int
    versions: dict[str, str | None] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    signature: list[Column] = Field(default_factory=list)
    output: dict[str, Any] = Field(default_factory=dict)
    experiment: str | None = None
    # how the artifact is read: joblib.load (bggscore's own), or pickle.loads of the bytes
    # an import copied as they were (production's pipeline.pkl)
    format: Literal["joblib", "pickle"] = "joblib"
    source: str = NATIVE  # "bggscore", or the URI of the folder it was imported from
    imported: dict[str, Any] | None = None  # an imported model's original registration
    code_paths: list[str] = Field(default_factory=list)  # its code's folders, for loading
    proved: bool | None = None  # an import predicted on warehouse rows before registering
    # the warehouse columns a scoring pass reads for the model, recorded by bggscore's own
    # training (its feature builder reads a description's length, not its text), so a
    # pass can start reading before the model is loaded; None: known once loaded
    reads: list[str] | None = None

    @field_validator("training", "metrics", "output", mode="before")
    @classmethod
    def _to_plain_json(cls, value: Any) -> Any:
        return _plain_json(value)

    @field_validator("artifact")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        # The artifact must sit next to its registration; no path can escape the version folder.
        if "/" in value or "\\" in value or value.startswith("."):
            raise ValueError(f"artifact must be a file name, got {value!r}")
        return value

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.name, version=self.version)

    @property
    def label(self) -> str:
        return str(self.ref)

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode() + b"\n"


@dataclass(frozen=True)
class LoadedModel:
    """A verified, unpickled model and the registration it came from."""

    registration: Registration
    model: Any

    @property
    def ref(self) -> ModelRef:
        return self.registration.ref


# One run loads each model once, however many Registry objects point at the same store.
_CACHE: dict[tuple[str, str, int, str], Any] = {}
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget every model loaded in this process."""
    with _CACHE_LOCK:
        _CACHE.clear()


def default_user() -> str:
    """Who is registering: GITHUB_ACTOR in Actions, else the login name."""
    actor = os.environ.get("GITHUB_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def check_model_type(model_type: str) -> str:
    if model_type not in MODEL_TYPES:
        raise UsageError(f"unknown model type {model_type!r}; use one of: {', '.join(MODEL_TYPES)}")
    return model_type


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _json_bytes(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, indent=2, sort_keys=True).encode() + b"\n"


def _as_ref(ref: ModelRef | str) -> ModelRef:
    return ref if isinstance(ref, ModelRef) else parse_ref(ref)


def is_production_registration(raw: Any) -> bool:
    """A registration.json written by production (bgg-predictive-models): its own fields
    (registered_at, original_experiment) and none of bggscore's (sha256)."""
    return (
        isinstance(raw, dict)
        and "sha256" not in raw
        and ("registered_at" in raw or "original_experiment" in raw)
    )


def _claim_bytes() -> bytes:
    return _json_bytes(
        {
            "claimed_at": _now().isoformat(),
            "claimed_by": default_user(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
    )


SIGNATURE_FORM = 'a JSON list of {"name", "dtype", "source"} objects'
SIGNATURE_KEYS = ("name", "dtype", "source")
# where a column comes from: the warehouse's games_features, or an earlier model of the chain
SIGNATURE_SOURCES = ("warehouse", "chain")


def read_signature_file(path: Path) -> builtins.list[dict[str, Any]]:
    """The input columns a model reads, from a JSON file: a list of objects with a "name"
    and optionally a "dtype" (default "any") and a "source" ("warehouse", the default, or
    "chain" for a column an earlier model predicts). InputError, one line, otherwise."""
    where = f"signature file {path}"
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"{where} does not exist; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{where} is a folder; give a JSON file ({SIGNATURE_FORM})") from None
    except OSError as exc:
        raise InputError(f"cannot read {where} ({exc.strerror}); check its permissions") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{where} is not valid JSON (line {exc.lineno}: {exc.msg}); give {SIGNATURE_FORM}"
        ) from None
    except ValueError:  # not UTF-8 (or -16/-32) text
        raise InputError(f"{where} is not JSON text; give {SIGNATURE_FORM}") from None
    if not isinstance(data, builtins.list) or not data:
        raise InputError(f"{where} must hold {SIGNATURE_FORM}, one per input column")
    for number, item in enumerate(data, 1):
        entry = f"{where}: entry {number}"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InputError(f'{entry} is {item!r}; give an object with a "name" string')
        unknown = sorted(set(item) - set(SIGNATURE_KEYS))
        if unknown:
            raise InputError(
                f"{entry} has unknown key(s) {', '.join(unknown)}; use {', '.join(SIGNATURE_KEYS)}"
            )
        if not isinstance(item.get("dtype", ""), str):
            raise InputError(f'{entry}: dtype {item["dtype"]!r} is not a string, e.g. "FLOAT64"')
        if item.get("source", "warehouse") not in SIGNATURE_SOURCES:
            raise InputError(
                f"{entry}: source {item['source']!r} is not one of {', '.join(SIGNATURE_SOURCES)}"
            )
    return data


def _signature(model: object, signature: Iterable[Any] | None, label: str) -> list[Column]:
    """The given signature, or one from the model's `feature_names_in_` with dtype "any"."""
    if signature is None:
        names = getattr(model, "feature_names_in_", None)
        if names is None:
            raise InputError(
                f"{label} has no feature_names_in_ to take its input columns from; "
                f"give them with --signature FILE ({SIGNATURE_FORM})"
            )
        signature = [str(name) for name in names]
    columns = []
    for item in signature:
        if isinstance(item, Column):
            columns.append(item)
        elif isinstance(item, str):
            columns.append(Column(name=item))
        else:
            try:
                columns.append(Column.model_validate(dict(item)))
            except (TypeError, ValueError) as exc:
                raise InputError(
                    f"bad signature entry {item!r} for {label}; give {SIGNATURE_FORM}"
                ) from exc
    names = [column.name for column in columns]
    if not names or len(set(names)) != len(names):
        raise InputError(
            f"the signature for {label} is empty or repeats a column; list each input column once"
        )
    return columns


class Registry:
    """Models stored in one Store, addressed by ModelRef."""

    def __init__(
        self,
        store: Store,
        *,
        code_paths: Iterable[str | Path] = (),
        allow_version_mismatch: bool = False,
    ) -> None:
        self.store = store
        self.code_paths = [str(path) for path in code_paths]
        self.allow_version_mismatch = allow_version_mismatch

    @property
    def uri(self) -> str:
        return self.store.uri

    # -- reading -----------------------------------------------------------------------------

    def _read_json(self, key: str) -> Any:
        """Parsed JSON at `key`; FileNotFoundError passes through for the caller to explain."""
        data = self.store.read_bytes(key)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise RegistryError(
                f"{self.store.uri_of(key)} is not valid JSON; restore it from a backup"
            ) from exc

    def _marker_owner(self, name: str) -> str | None:
        """The model type recorded in `_names/<name>.json`, if that marker exists."""
        try:
            owner = self._read_json(f"_names/{name}.json").get("model_type")
        except FileNotFoundError:
            return None
        return str(owner) if owner in MODEL_TYPES else None

    def _name_owner(self, name: str) -> str | None:
        """The model type a name belongs to: its marker, else a scan of the type folders
        (for models copied in by hand, without a marker)."""
        owner = self._marker_owner(name)
        if owner is not None:
            return owner
        found = [t for t in MODEL_TYPES if self.store.list_prefix(f"{t}/{name}/")]
        if len(found) > 1:
            raise RegistryError(
                f"model name {name!r} is used by several model types ({', '.join(found)}); "
                "remove all but one from the registry"
            )
        return found[0] if found else None

    def _scan(self, model_type: str, name: str) -> tuple[set[int], set[int], builtins.list[str]]:
        """(registered versions, every version ever claimed, alias names) of one model."""
        prefix = f"{model_type}/{name}/"
        registered: set[int] = set()
        taken: set[int] = set()
        aliases = []
        for key in self.store.list_prefix(prefix):
            rest = key[len(prefix) :]
            if match := _VERSION_KEY.match(rest):
                taken.add(int(match[1]))
                if match[2] == REGISTRATION:
                    registered.add(int(match[1]))
            elif match := _ALIAS_KEY.match(rest):
                aliases.append(match[1])
        return registered, taken, sorted(aliases)

    def _read_registration(self, model_type: str, name: str, version: int) -> Registration:
        key = f"{model_type}/{name}/v{version}/{REGISTRATION}"
        raw = self._read_json(key)
        try:
            registration = Registration.model_validate(raw)
        except ValidationError as exc:
            if is_production_registration(raw):
                raise RegistryError(
                    f"{self.store.uri_of(key)} is in production's registration format "
                    "(bgg-predictive-models), not bggscore's: point registry.uri at a "
                    f"bggscore registry and import these with `bggscore models import "
                    f"{self.uri}`"
                ) from exc
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "registration"
            raise RegistryError(
                f"{self.store.uri_of(key)} is not a valid registration "
                f"({where}: {error['msg']}); restore it from a backup"
            ) from exc
        if (registration.model_type, registration.name, registration.version) != (
            model_type,
            name,
            version,
        ):
            raise RegistryError(
                f"{self.store.uri_of(key)} describes {registration.model_type} "
                f"{registration.label}, not {model_type} {name}:{version}; restore the right file"
            )
        return registration

    def _read_alias(self, model_type: str, name: str, alias: str) -> int | None:
        key = f"{model_type}/{name}/aliases/{alias}.json"
        try:
            return int(self._read_json(key)["version"])
        except FileNotFoundError:
            return None
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(
                f"{self.store.uri_of(key)} has no valid version; set the alias again"
            ) from exc

    def _registration_keys(self, model_type: str | None) -> builtins.list[tuple[str, str, int]]:
        types = (check_model_type(model_type),) if model_type else MODEL_TYPES
        found = []
        for mtype in types:
            for key in self.store.list_prefix(f"{mtype}/"):
                if match := _REGISTRATION_KEY.match(key[len(mtype) + 1 :]):
                    found.append((mtype, match[1], int(match[2])))
        return sorted(found)

    # -- lookups -----------------------------------------------------------------------------

    def names(self, model_type: str | None = None) -> dict[str, str]:
        """Registered model names and their types."""
        return {name: mtype for mtype, name, _ in self._registration_keys(model_type)}

    def _owner_or_raise(self, name: str, model_type: str | None) -> tuple[str, set[int]]:
        owner = self._name_owner(name)
        registered = self._scan(owner, name)[0] if owner else set()
        if not registered:
            kind = f"{model_type} " if model_type else ""
            known = self.names(model_type)
            listing = ", ".join(
                name if model_type else f"{name} ({mtype})" for name, mtype in known.items()
            )
            raise UnknownModelError(
                f"unknown {kind}model {name!r} in {self.uri}; "
                + (f"registered {kind}models: {listing}" if known else f"no {kind}models yet")
            )
        assert owner is not None
        if model_type is not None and owner != check_model_type(model_type):
            others = ", ".join(self.names(model_type)) or "none yet"
            raise UnknownModelError(
                f"model {name!r} is a {owner} model, not {model_type}; "
                f"{model_type} models: {others}"
            )
        return owner, registered

    def resolve(self, ref: ModelRef | str, model_type: str | None = None) -> Registration:
        """`name:3` -> that version (archived too); `name@alias`; `name` -> champion or newest
        active version."""
        ref = _as_ref(ref)
        owner, registered = self._owner_or_raise(ref.name, model_type)
        versions = ", ".join(str(v) for v in sorted(registered))
        if ref.version is not None:
            if ref.version not in registered:
                raise UnknownModelError(
                    f"{ref.name} has no version {ref.version}; versions: {versions}"
                )
            return self._read_registration(owner, ref.name, ref.version)
        alias = ref.alias or CHAMPION
        version = self._read_alias(owner, ref.name, alias)
        if version is not None:
            if version not in registered:
                raise RegistryError(
                    f"alias {ref.name}@{alias} points to missing version {version}; "
                    f"set it again to one of: {versions}"
                )
            return self._read_registration(owner, ref.name, version)
        if ref.alias is not None:
            aliases = self.aliases(ref.name)
            listing = ", ".join(f"{a} (v{v})" for a, v in aliases.items())
            raise UnknownModelError(
                f"{ref.name} has no alias {ref.alias!r}; "
                + (f"aliases: {listing}" if aliases else "it has no aliases yet")
            )
        for number in sorted(registered, reverse=True):
            registration = self._read_registration(owner, ref.name, number)
            if registration.status == "active":
                return registration
        raise UnknownModelError(
            f"every version of {ref.name} is archived ({versions}); "
            f"load one by number, e.g. {ref.name}:{max(registered)}"
        )

    def aliases(self, name: str) -> dict[str, int]:
        """Alias -> version for one model."""
        owner, _ = self._owner_or_raise(check_name(name), None)
        return self._alias_versions(owner, name)

    def _alias_versions(self, owner: str, name: str) -> dict[str, int]:
        found = {}
        for alias in self._scan(owner, name)[2]:
            version = self._read_alias(owner, name, alias)
            if version is not None:
                found[alias] = version
        return found

    def list(self, model_type: str | None = None) -> builtins.list[Registration]:
        """Every registration (archived too), sorted by model type, name and version."""
        return [self._read_registration(*key) for key in self._registration_keys(model_type)]

    # -- changing ----------------------------------------------------------------------------

    def _claim_name(self, name: str, model_type: str) -> None:
        """Bind `name` to `model_type`, atomically, so two types can never share a name."""
        owner = self._marker_owner(name)
        if owner is None:
            owner = self._name_owner(name)
            marker = _json_bytes({"model_type": model_type})
            if owner in (None, model_type) and not self.store.create_exclusive(
                f"_names/{name}.json", marker
            ):
                owner = self._marker_owner(name)  # another process bound it just now
        if owner not in (None, model_type):
            raise RegistryError(
                f"model name {name!r} is already a {owner} model; names are unique across "
                "model types, pick another name"
            )

    def _claim_version(self, model_type: str, name: str) -> int:
        """Take the next free version with an exclusive create; on a race try the next one."""
        taken = self._scan(model_type, name)[1]
        version = max(taken, default=0) + 1
        claim = _claim_bytes()
        for _ in range(MAX_CLAIM_ATTEMPTS):
            if self.store.create_exclusive(f"{model_type}/{name}/v{version}/{CLAIM}", claim):
                return version
            version += 1
        raise RegistryError(
            f"could not claim a version of {name} after {MAX_CLAIM_ATTEMPTS} tries; "
            f"check {self.uri} is writable and try again"
        )

    def register(
        self,
        model_type: str,
        name: str,
        model: object,
        *,
        description: str = "",
        signature: Iterable[Column | Mapping[str, Any] | str] | None = None,
        output: Mapping[str, Any] | None = None,
        training: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        experiment: str | None = None,
        created_by: str | None = None,
        reads: Iterable[str] | None = None,
    ) -> Registration:
        """Store `model` as the next version of `name` and return its registration;
        ``reads``: the warehouse columns a pass reads for it (``Registration.reads``)."""
        check_model_type(model_type)
        check_name(name)
        label = f"the model given for {name}"
        if isinstance(model, (str, bytes, os.PathLike)):
            raise UsageError(f"{label} is a path; use register_file to register a joblib file")
        check_model_kind(model, model_type, label)
        data = dump_artifact(model)
        try:  # validate everything before a version is claimed, so bad input burns none
            draft = Registration(
                name=name,
                version=1,
                model_type=model_type,
                description=description,
                created_at=_now(),
                created_by=created_by or default_user(),
                sha256=sha256_hex(data),
                size_bytes=len(data),
                versions=environment_versions(),
                training=dict(training or {}),
                metrics=dict(metrics or {}),
                signature=_signature(model, signature, label),
                output=dict(output or {}),
                experiment=experiment,
                reads=None if reads is None else list(reads),
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise InputError(f"cannot register {name}: {where}: {error['msg']}") from exc
        self._claim_name(name, model_type)
        version = self._claim_version(model_type, name)
        registration = draft.model_copy(update={"version": version})
        folder = f"{model_type}/{name}/v{version}"
        self.store.write_bytes(f"{folder}/{ARTIFACT}", data)
        self.store.write_bytes(f"{folder}/{REGISTRATION}", registration.to_json())
        return registration

    def register_file(
        self, path: Path | str, model_type: str, name: str, **fields: Any
    ) -> Registration:
        """Register a joblib file the user made; same keyword fields as `register`."""
        path = Path(path)
        check_model_type(model_type)  # bad flags fail before unpickling
        check_name(name)
        model = read_user_joblib(path)
        check_model_kind(model, model_type, f"the model in {path}")
        return self.register(model_type, name, model, **fields)

    def find(self, model_type: str, name: str, version: int) -> Registration | None:
        """The registration of exactly `model_type` `name`:`version`, or None."""
        if not self.store.exists(f"{model_type}/{name}/v{version}/{REGISTRATION}"):
            return None
        return self._read_registration(model_type, name, version)

    def owner(self, name: str) -> str | None:
        """The model type `name` belongs to, or None when nothing has that name."""
        return self._name_owner(check_name(name))

    def add_imported(
        self, registration: Registration, data: bytes, written: builtins.list[str]
    ) -> None:
        """Store a model made elsewhere at its own version number (an import keeps
        production's numbers), appending each key written to `written` as it goes, so
        that the caller can remove them if this or a later write of the import fails.
        A version someone claimed, even without finishing, is refused."""
        model_type, name = check_model_type(registration.model_type), registration.name
        marker = f"_names/{check_name(name)}.json"
        had_marker = self.store.exists(marker)
        self._claim_name(name, model_type)
        if not had_marker and self.store.exists(marker):
            written.append(marker)
        folder = f"{model_type}/{name}/v{registration.version}"
        if not self.store.create_exclusive(f"{folder}/{CLAIM}", _claim_bytes()):
            raise RegistryError(
                f"{registration.label} is already taken in {self.uri} (a registration of it "
                f"crashed or is running); `bggscore models verify` says what is there: if "
                f"{self.store.uri_of(folder)} holds no {REGISTRATION}, delete it and retry"
            )
        written.append(f"{folder}/{CLAIM}")
        for key, payload in (
            (f"{folder}/{registration.artifact}", data),
            (f"{folder}/{REGISTRATION}", registration.to_json()),
        ):
            written.append(key)  # first: a failed write may still leave a partial object
            self.store.write_bytes(key, payload)

    def artifact_file(self, registration: Registration) -> str:
        """The store key of a version's artifact (for an import that restores it)."""
        folder = f"{registration.model_type}/{registration.name}/v{registration.version}"
        return f"{folder}/{registration.artifact}"

    def artifact_intact(self, registration: Registration) -> bool:
        """Whether the stored artifact is there and holds the registered bytes (sha256 and
        size); nothing is unpickled. A store that cannot be read raises as usual."""
        try:
            data = self.store.read_bytes(self.artifact_file(registration))
        except FileNotFoundError:
            return False
        return len(data) == registration.size_bytes and sha256_hex(data) == registration.sha256

    def alias_file(self, model_type: str, name: str, alias: str) -> str:
        """The store key of `name@alias` (for a caller that must restore it)."""
        return f"{model_type}/{check_name(name)}/aliases/{check_alias(alias)}.json"

    def _write_status(self, registration: Registration, status: str) -> Registration:
        updated = registration.model_copy(update={"status": status})
        key = f"{registration.model_type}/{registration.name}/v{registration.version}"
        self.store.write_bytes(f"{key}/{REGISTRATION}", updated.to_json())
        return updated

    def set_alias(self, ref: ModelRef | str, alias: str) -> Registration:
        """Point `alias` at the version `ref` resolves to (moving it if it exists)."""
        check_alias(alias)
        registration = self.resolve(ref)
        if registration.status == "archived":
            raise RegistryError(
                f"{registration.label} is archived; point {alias} at an active version "
                f"or unarchive it first (`bggscore models unarchive {registration.label}`)"
            )
        payload = {
            "alias": alias,
            "version": registration.version,
            "set_at": _now().isoformat(),
            "set_by": default_user(),
        }
        key = f"{registration.model_type}/{registration.name}/aliases/{alias}.json"
        self.store.write_bytes(key, _json_bytes(payload))
        return registration

    def remove_alias(self, name: str, alias: str) -> int | None:
        """Delete `name@alias` and return the version it pointed at (None when its file
        was unreadable); the version is untouched. An alias whose version lost its
        registration can be removed too: `verify` says to."""
        check_alias(alias)
        owner = self._name_owner(check_name(name))
        if owner is None:
            self._owner_or_raise(name, None)  # raises: unknown model, naming the known ones
        assert owner is not None
        key = f"{owner}/{name}/aliases/{alias}.json"
        if alias not in self._scan(owner, name)[2]:
            existing = self._alias_versions(owner, name)
            listing = ", ".join(f"{a} (v{v})" for a, v in existing.items()) or "none"
            raise UnknownModelError(f"{name} has no alias {alias!r}; aliases: {listing}")
        try:
            version = self._read_alias(owner, name, alias)
        except RegistryError:  # unreadable: removing it is the fix
            version = None
        self.store.delete(key)
        return version

    def archive(self, ref: ModelRef | str) -> Registration:
        """Mark one version archived and drop the aliases pointing at it.

        A plain name (`rating`) is refused: archiving must name its version (`rating:3`) or
        alias (`rating@champion`). Archived versions still load by number.
        """
        ref = _as_ref(ref)
        if ref.version is None and ref.alias is None:
            raise UsageError(
                f"archive needs a version: use {ref.name}:N or {ref.name}@alias, not {ref.name}"
            )
        registration = self.resolve(ref)
        folder = f"{registration.model_type}/{registration.name}"
        # Aliases go first: a crash in between leaves an active version without aliases,
        # never an alias to an archived version.
        for alias, version in self.aliases(registration.name).items():
            if version == registration.version:
                self.store.delete(f"{folder}/aliases/{alias}.json")
        if registration.status == "archived":
            return registration
        return self._write_status(registration, "archived")

    def unarchive(self, ref: ModelRef | str) -> Registration:
        """Make an archived version active again (its aliases are not restored)."""
        ref = _as_ref(ref)
        if ref.version is None:
            raise UsageError(f"unarchive needs a version: use {ref.name}:N")
        registration = self.resolve(ref)
        if registration.status == "active":
            return registration
        return self._write_status(registration, "active")

    # -- loading and verifying ----------------------------------------------------------------

    def load(
        self, ref: ModelRef | str | Registration, model_type: str | None = None
    ) -> LoadedModel:
        """Verify the artifact's sha256, then unpickle it from the verified bytes (cached)."""
        registration = ref if isinstance(ref, Registration) else self.resolve(ref, model_type)
        cache_key = (self.uri, registration.name, registration.version, registration.sha256)
        with _CACHE_LOCK:
            if cache_key in _CACHE:
                return LoadedModel(registration, _CACHE[cache_key])
        data = self._read_artifact(registration)
        label = registration.label
        if registration.format == "pickle":
            verify_sha256(data, registration.sha256, label)
            # the version was read from the pickle itself: another one is refused up front
            made_with = registration.versions.get("sklearn")
            check_sklearn_version(label, made_with, self.allow_version_mismatch)
            model = unpickle(data, label, [*registration.code_paths, *self.code_paths])
        else:
            model = load_verified(data, registration.sha256, label)
            warn_on_version_drift(label, registration.versions)
        check_model_object(model, f"artifact for {label}")
        with _CACHE_LOCK:
            _CACHE[cache_key] = model
        return LoadedModel(registration, model)

    def check(self, registration: Registration) -> None:
        """What ``load`` checks before unpickling (the sha256; a pickle's scikit-learn
        version), and its warnings, without unpickling: for a process whose models other
        processes load (``score --workers``)."""
        data = self._read_artifact(registration)
        verify_sha256(data, registration.sha256, registration.label)
        if registration.format == "pickle":
            made_with = registration.versions.get("sklearn")
            check_sklearn_version(registration.label, made_with, self.allow_version_mismatch)
        else:
            warn_on_version_drift(registration.label, registration.versions)

    def _read_artifact(self, registration: Registration) -> bytes:
        folder = f"{registration.model_type}/{registration.name}/v{registration.version}"
        key = f"{folder}/{registration.artifact}"
        try:
            return self.store.read_bytes(key)
        except FileNotFoundError as exc:
            raise RegistryError(
                f"artifact for {registration.label} is missing at {self.store.uri_of(key)}; "
                "restore the file or archive the version"
            ) from exc

    def verify(self, ref: ModelRef | str | None = None) -> builtins.list[VerifyResult]:
        """Re-hash every artifact (or one), without unpickling anything.

        Without `ref` the whole registry is checked: every artifact, then every alias
        (each must point at a registered version) and every version folder (each holding
        more than a claim must hold its registration.json).
        """
        if ref is not None:
            registration = self.resolve(ref)
            keys = [(registration.model_type, registration.name, registration.version)]
            return [self._verify_one(*key) for key in keys]
        keys = self._registration_keys(None)
        return [self._verify_one(*key) for key in keys] + self._layout_problems()

    def _layout_problems(self) -> builtins.list[VerifyResult]:
        """Aliases to versions without a registration, and version folders with files but
        no registration.json: both are invisible to `list` and to references by name."""
        problems = []
        for mtype in MODEL_TYPES:
            files: dict[tuple[str, int], set[str]] = {}
            aliases: builtins.list[tuple[str, str]] = []
            for key in self.store.list_prefix(f"{mtype}/"):
                name, _, rest = key[len(mtype) + 1 :].partition("/")
                if match := _VERSION_KEY.match(rest):
                    files.setdefault((name, int(match[1])), set()).add(match[2])
                elif match := _ALIAS_KEY.match(rest):
                    aliases.append((name, match[1]))
            registered = {key for key, found in files.items() if REGISTRATION in found}
            for (name, version), found in sorted(files.items()):
                # a claim alone is a registration that crashed before writing anything:
                # skipped by design; more than a claim is one running now or one that lost
                # its registration.json
                if REGISTRATION not in found and found - {CLAIM}:
                    folder = self.store.uri_of(f"{mtype}/{name}/v{version}")
                    listing = ", ".join(sorted(found - {CLAIM}))
                    problem = (
                        f"has {listing} but no {REGISTRATION} (unless a registration is running"
                        f" now): restore it from a backup, or delete {folder}"
                    )
                    problems.append(VerifyResult(mtype, name, version, ok=False, problem=problem))
            for name, alias in sorted(aliases):
                try:
                    target = self._read_alias(mtype, name, alias)
                except RegistryError as exc:
                    problems.append(
                        VerifyResult(mtype, name, None, ok=False, problem=exc.message, alias=alias)
                    )
                    continue
                if target is not None and (name, target) not in registered:
                    problem = (
                        f"points to {name}:{target}, which has no {REGISTRATION}; move it "
                        f"(`bggscore models alias {name}:N {alias}`) or remove it "
                        f"(`bggscore models alias --remove {name}@{alias}`)"
                    )
                    problems.append(
                        VerifyResult(mtype, name, target, ok=False, problem=problem, alias=alias)
                    )
        return problems

    def _verify_one(self, model_type: str, name: str, version: int) -> VerifyResult:
        try:
            registration = self._read_registration(model_type, name, version)
            data = self._read_artifact(registration)
        except RegistryError as exc:
            return VerifyResult(model_type, name, version, ok=False, problem=exc.message)
        actual = sha256_hex(data)
        ok = actual == registration.sha256 and len(data) == registration.size_bytes
        return VerifyResult(
            model_type,
            name,
            version,
            ok=ok,
            expected_sha256=registration.sha256,
            actual_sha256=actual,
            problem=None if ok else "sha256 mismatch: the artifact changed after registration",
        )


def open_registry(
    uri: str | None,
    home: Path,
    *,
    code_paths: Iterable[str | Path] = (),
    allow_version_mismatch: bool = False,
) -> Registry:
    """The registry at `uri` (a folder or gs://bucket/prefix); default `home / "registry"`.

    `code_paths` and `allow_version_mismatch` apply to imported pickles (`Registry.load`)."""
    return Registry(
        open_store(uri, home),
        code_paths=code_paths,
        allow_version_mismatch=allow_version_mismatch,
    )
