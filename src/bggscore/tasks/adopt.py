"""`bggscore models import`: adopt production's registered models as they are.

For every version folder of the source (production's ``models/registered``, or a folder in
it): read its registration.json and pipeline.pkl, refuse what is not production's layout,
unpickle it (its code on the import path with ``--code-path``) under the scikit-learn it was
made with, infer its input columns, check that it predicts through the scoring chain (the
``prove`` module), and only when every version passed, copy the bytes as they are into
bggscore's registry with their sha256 (trusted on first use, checked on every load after),
keeping production's name, version and the original registration. Each name's ``champion``
alias then points at the version production would load (its newest non-archived one).

A version imported before with the same bytes is unchanged; when its stored copy is missing
or no longer matches its sha256 (``models verify`` fails), it is rewritten from the source:
importing again is the way to restore it.

All or nothing: everything is read and checked before the first write, and if a write fails
midway what this import wrote is removed again (and what it replaced put back).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bggscore.errors import InputError, UsageError
from bggscore.modelset import open_settings_registry
from bggscore.registry import Column, LoadedModel, Registration, Registry, parse_ref
from bggscore.registry.integrity import check_model_kind, check_sklearn_version, sha256_hex
from bggscore.registry.pickles import estimators, sklearn_version_of, unpickle
from bggscore.registry.production import (
    SourceListing,
    SourceVersion,
    list_source,
    read_pipeline,
    to_registration,
)
from bggscore.registry.registry import CHAMPION, NATIVE
from bggscore.registry.stores import open_store
from bggscore.tasks.prove import Feeders, Rows, proof_rows, prove
from bggscore.warehouse.schemas import FLOAT64, GAMES_FEATURES

if TYPE_CHECKING:
    from bggscore.console import Console
    from bggscore.settings import Settings

# production's width of the description embeddings (emb_0 .. emb_99)
DEFAULT_EMBEDDING_DIM = 100
# what each model type reads of the chain, with production's column names, in its order
CHAIN_INPUTS = {
    "rating": ("predicted_complexity",),
    "users_rated": ("predicted_complexity",),
    "geek_rating": ("predicted_complexity", "predicted_rating", "predicted_users_rated_log"),
}
_EMBEDDING = re.compile(r"^emb_([0-9]+)$")


@dataclass
class ImportOptions:
    source: str
    code_paths: list[Path] = field(default_factory=list)
    check_with: Path | None = None
    check: bool = True
    dry_run: bool = False


@dataclass
class Candidate:
    """One version of the source, read, unpickled and mapped (``registration``)."""

    found: SourceVersion
    sha256: str
    registration: Registration | None = None  # the registry's own, when unchanged
    model: Any = None
    sklearn: str | None = None  # the scikit-learn version the pickle was made with
    unchanged: bool = False  # the registry holds these very bytes already
    restore: bool = False  # ... registered, but its stored copy is missing or damaged

    @property
    def mapped(self) -> Registration:
        assert self.registration is not None, "mapped after reading"
        return self.registration


def _code_folders(paths: list[Path]) -> list[str]:
    folders = []
    for path in paths:
        folder = path.expanduser().resolve()
        if not folder.is_dir():
            raise UsageError(
                f"--code-path {path} is not a folder; give the folder holding the model code"
            )
        folders.append(str(folder))
    return folders


def fitted_embedding_dim(model: Any) -> int | None:
    """The description-embedding width a fitted pipeline was trained on: the highest emb_<i>
    any of its steps saw (``feature_names_in_``), plus one."""
    found = []
    for item in estimators(model):
        names = getattr(item, "feature_names_in_", None)
        if names is None:
            continue
        found += [int(m[1]) for name in names if (m := _EMBEDDING.match(str(name)))]
    return max(found) + 1 if found else None


def infer_signature(
    model_type: str, use_embeddings: bool, model: Any, embedding_dim: int | None
) -> list[Column]:
    """production's input frame: every games_features column in table order, the
    description embeddings when the model reads them, then the chain columns it reads."""
    names = [(n, kind, "warehouse") for n, kind in GAMES_FEATURES.columns]
    fitted = fitted_embedding_dim(model)
    if use_embeddings or fitted:
        width = fitted or embedding_dim or DEFAULT_EMBEDDING_DIM
        names += [(f"emb_{i}", FLOAT64, "warehouse") for i in range(width)]
    names += [(n, FLOAT64, "chain") for n in CHAIN_INPUTS.get(model_type, ())]
    return [Column.model_validate({"name": n, "dtype": d, "source": s}) for n, d, s in names]


def _read(registry: Registry, listing: SourceListing, store: Any) -> list[Candidate]:
    """Every version's bytes, compared with the registry: the same bytes are unchanged
    (restored when the stored copy no longer holds them), other bytes at the same name and
    version are refused."""
    candidates = []
    types: dict[str, str] = {}
    for found in listing.versions:
        data = read_pipeline(store, found)
        digest = sha256_hex(data)
        if types.setdefault(found.name, found.model_type) != found.model_type:
            raise InputError(
                f"{found.uri}: the name {found.name} is also a {types[found.name]} model in "
                "this source; names are unique across model types, import one of them"
            )
        owner = registry.owner(found.name)
        if owner not in (None, found.model_type):
            raise InputError(
                f"{found.uri}: the name {found.name} is already a {owner} model in "
                f"{registry.uri}; names are unique across model types"
            )
        existing = registry.find(found.model_type, found.name, found.version) if owner else None
        if existing is not None and existing.sha256 != digest:
            raise InputError(_conflict(registry, found, existing, digest))
        restore = existing is not None and not registry.artifact_intact(existing)
        candidates.append(
            Candidate(found, digest, existing, unchanged=existing is not None, restore=restore)
        )
    return candidates


def _conflict(registry: Registry, found: SourceVersion, existing: Registration, digest: str) -> str:
    """A version the registry holds with other bytes than the source's: which sha256 each
    has, why, and what works (the registry never replaces a registered version)."""
    why = (
        "it was registered in bggscore, not imported from there"
        if existing.source == NATIVE
        else "the source changed since it was imported"
    )
    return (
        f"{found.label} is in {registry.uri} with sha256 {existing.sha256[:12]}… but "
        f"{found.uri} has other bytes (sha256 {digest[:12]}…): {why}; nothing was imported "
        f"(`bggscore models verify {found.label}` checks the stored copy; restore the "
        "source's pipeline.pkl to the bytes imported, or import the other folders alone)"
    )


def _load(candidate: Candidate, code_paths: list[str], allow: bool) -> None:
    """Unpickle one new version under the scikit-learn it was made with (checked first,
    from the pickle's own bytes), then check it is the kind of model its type needs."""
    found = candidate.found
    version = sklearn_version_of(found.data)
    check_sklearn_version(found.label, version, allow)
    candidate.model = unpickle(found.data, found.label, code_paths, with_flag=True)
    check_model_kind(candidate.model, found.model_type, f"{found.label} ({found.uri})")
    candidate.sklearn = version or sklearn_version_of(found.data, candidate.model)


def _champions(
    registry: Registry, candidates: list[Candidate]
) -> dict[str, tuple[str, int | None]]:
    """name -> (model type, the version production would load: its newest non-archived
    one, among this import and what earlier imports brought)."""
    out: dict[str, tuple[str, int | None]] = {}
    for candidate in candidates:
        found = candidate.found
        model_type, best = out.get(found.name, (found.model_type, None))
        if found.status == "active" and (best is None or found.version > best):
            best = found.version
        out[found.name] = (model_type, best)
    for name, (model_type, best) in list(out.items()):
        if registry.owner(name) is None:
            continue
        for registration in registry.list(model_type):
            if registration.name != name or registration.source == NATIVE:
                continue
            if registration.status == "active" and (best is None or registration.version > best):
                best = registration.version
        out[name] = (model_type, best)
    return out


def _feeders(
    settings: Settings,
    registry: Registry,
    candidates: list[Candidate],
    champions: dict[str, tuple[str, int | None]],
) -> Feeders:
    """For each imported model type, the model the chain is fed with: its champion-to-be
    (the name the settings use, else the first name)."""
    by_type: dict[str, list[str]] = {}
    for name, (model_type, version) in sorted(champions.items()):
        if version is not None:
            by_type.setdefault(model_type, []).append(name)
    chosen: dict[str, LoadedModel] = {}
    for model_type, names in by_type.items():
        ref = getattr(settings.models, model_type)
        preferred = parse_ref(ref).name if ref else None
        name = preferred if preferred in names else names[0]
        version = champions[name][1]
        match = [c for c in candidates if (c.found.name, c.found.version) == (name, version)]
        if match and match[0].model is not None:  # new, or restored: the source's model
            chosen[model_type] = LoadedModel(match[0].mapped, match[0].model)
        else:
            chosen[model_type] = registry.load(f"{name}:{version}", model_type)
    return Feeders(settings, registry, chosen)


@contextlib.contextmanager
def _rows(settings: Settings, options: ImportOptions) -> Iterator[Rows | None]:
    if not options.check:
        yield None
        return
    with proof_rows(settings, options.check_with) as rows:
        yield rows


def _write(
    registry: Registry,
    new: list[Candidate],
    restored: list[Candidate],
    aliases: list[tuple[str, str, int]],
) -> None:
    """Write every version, the restored artifacts, then the aliases; on any failure put
    back what was there and remove what was written."""
    written: list[str] = []
    replaced: list[tuple[str, bytes | None]] = []

    def keep(key: str) -> None:
        try:
            replaced.append((key, registry.store.read_bytes(key)))
        except FileNotFoundError:
            replaced.append((key, None))

    try:
        for candidate in new:
            registry.add_imported(candidate.mapped, candidate.found.data, written)
        for candidate in restored:  # the very bytes the registration's sha256 records
            key = registry.artifact_file(candidate.mapped)
            keep(key)
            registry.store.write_bytes(key, candidate.found.data)
        for model_type, name, version in aliases:
            key = registry.alias_file(model_type, name, CHAMPION)
            keep(key)
            registry.set_alias(f"{name}:{version}", CHAMPION)
    except BaseException:
        for key, before in reversed(replaced):
            with contextlib.suppress(Exception):
                if before is None:
                    registry.store.delete(key)
                else:
                    registry.store.write_bytes(key, before)
        for key in reversed(written):
            with contextlib.suppress(Exception):
                registry.store.delete(key)
        raise


def _mapped(
    candidate: Candidate, dim: int | None, code_paths: list[str], proved: bool
) -> Registration:
    found = candidate.found
    metadata = found.parsed.original_experiment.metadata
    try:
        return to_registration(
            found,
            signature=infer_signature(
                found.model_type, metadata.use_embeddings, candidate.model, dim
            ),
            sklearn_version=candidate.sklearn,
            code_paths=code_paths,
            proved=proved,
            sha256=candidate.sha256,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InputError(
            f"cannot import {found.label} ({found.uri}): {where}: {error['msg']}"
        ) from None


def run_import(settings: Settings, options: ImportOptions, console: Console) -> dict[str, Any]:
    """Import the source's models (see the module docstring); the --json body."""
    if not options.source.strip():
        raise UsageError("give the folder or gs:// prefix to import from")
    code_paths = _code_folders(options.code_paths)
    registry = open_settings_registry(settings)
    try:
        store = open_store(options.source, settings.home)
    except UsageError as exc:
        raise UsageError(f"import source: {exc.message}") from None
    listing = list_source(store)
    candidates = _read(registry, listing, store)
    allow = settings.registry.allow_version_mismatch
    load_paths = [*code_paths, *(str(p) for p in settings.registry.code_paths)]
    new = [c for c in candidates if not c.unchanged]
    restored = [c for c in candidates if c.restore]
    for candidate in new:
        _load(candidate, load_paths, allow)
    if options.check and new:  # a restored model may feed the check: not its damaged copy
        for candidate in restored:
            _load(candidate, load_paths, allow)
    with _rows(settings, options) as rows:
        dim = rows.embedding_dim if rows is not None else None
        for candidate in new:
            candidate.registration = _mapped(candidate, dim, code_paths, options.check)
        champions = _champions(registry, candidates)
        if rows is not None and new:
            console.info(f"checking {len(new)} model(s) on {len(rows.frame)} {rows.where}")
            feeders = _feeders(settings, registry, candidates, champions)
            prove(
                rows,
                settings,
                feeders,
                [(c.found.model_type, LoadedModel(c.mapped, c.model)) for c in new],
            )
    new_names = {c.found.name for c in new}
    aliases: list[tuple[str, str, int]] = []
    champion_rows: list[dict[str, Any]] = []
    for name, (model_type, version) in sorted(champions.items()):
        current = registry.aliases(name).get(CHAMPION) if registry.owner(name) else None
        move = version is not None and current != version and (name in new_names or current is None)
        if move:
            assert version is not None
            aliases.append((model_type, name, version))
        champion_rows.append(
            {"name": name, "version": version if move else current, "changed": move}
        )
    if not options.dry_run:
        _write(registry, new, restored, aliases)
    return {
        "source": store.uri,
        "registry": registry.uri,
        "dry_run": options.dry_run,
        "checked": options.check and bool(new),
        "imported": [_row(c) for c in new],
        "unchanged": [_row(c) for c in candidates if c.unchanged and not c.restore],
        "restored": [_row(c) for c in restored],
        "skipped": listing.skipped,
        "champion": champion_rows,
        "settings": _settings_hints(settings, champions),
    }


def _settings_hints(
    settings: Settings, champions: dict[str, tuple[str, int | None]]
) -> dict[str, str]:
    """The model references that would score with the imported champions, where the
    settings name something else (one name per type: the first): the plain name, as the
    docs give it, which reads the champion alias (else the newest version)."""
    hints: dict[str, str] = {}
    for name, (model_type, version) in sorted(champions.items()):
        ref = getattr(settings.models, model_type)
        if version is None or f"models.{model_type}" in hints:
            continue
        if ref is None or parse_ref(ref).name != name:
            hints[f"models.{model_type}"] = name
    return hints


def _row(candidate: Candidate) -> dict[str, Any]:
    found, registration = candidate.found, candidate.mapped
    return {
        "type": found.model_type,
        "name": found.name,
        "version": found.version,
        "status": found.status,
        "created_at": registration.created_at.isoformat(),  # registered_at, read as UTC
        "sha256": candidate.sha256,
        "size_bytes": len(found.data),
        "sklearn": registration.versions.get("sklearn"),
        "proved": registration.proved,
        "source": found.uri,
    }
