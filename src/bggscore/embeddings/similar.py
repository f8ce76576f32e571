"""Nearest games by cosine similarity over the latest game embeddings.

Embeddings are L2-normalised, so similarity is a dot product. The index of one model version
(ids, years, unit vectors, names and a name-search text) is cached in the home folder, in a
build folder that is written once and never changed, and rebuilt only when the stage has
written since or the games' names may have changed.

A warm `similar` answers in well under half a second on 500k games, Python start-up included,
because it needs only the standard library and numpy. After a full check (settings, registry,
warehouse), `load_index` records in a small manifest what that check depended on: the
settings' inputs (flags, BGGSCORE_* variables, the config file, the working folder), every
file of the local registry and the DuckDB file (and its WAL). `recall` answers from the cache
while all of them are unchanged; anything it cannot vouch for (BigQuery, a GCS registry, a
file written since) goes through the full check again.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import mmap
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bggscore.errors import InputError, UsageError
from bggscore.stages import GAME_EMBEDDINGS

if TYPE_CHECKING:
    from bggscore.settings import Settings

STAGE = GAME_EMBEDDINGS
FORMAT = 2  # of the cache and the manifest; bump when either changes
SEP = b"\0"
CURRENT = "current.json"
COMPLETE = "complete"  # written last in a build folder
# what the settings, the registry and the stage key are computed by: an upgrade invalidates
CODE = (
    "settings.py",
    "embeddings/similar.py",
    "registry/registry.py",
    "modelset.py",
    "stages.py",
    "warehouse/base.py",
    "warehouse/queries.py",
)


# -- the index ---------------------------------------------------------------------------------
class Names:
    """Names of the index rows, read from the cache only as far as they are needed.

    ``names.bin`` holds the UTF-8 names in row order (``name_offsets.npy``: n + 1 offsets);
    ``search.bin`` holds the lowercased names sorted by (length, row), each between NUL
    bytes (``search_starts.npy``: where each begins; ``search_rows.npy``: its row), so the
    shortest name containing a text is its first occurrence, found by one ``bytes.find``.
    """

    def __init__(self, folder: Path) -> None:
        # every file is opened now: a newer build may remove this one while we answer
        self.offsets = np.load(folder / "name_offsets.npy", mmap_mode="r")
        self.blob = _map(folder / "names.bin")
        self.search = _map(folder / "search.bin")
        self.starts = np.load(folder / "search_starts.npy", mmap_mode="r")
        self.rows = np.load(folder / "search_rows.npy", mmap_mode="r")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, row: int) -> str:
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        return self.blob[start:end].decode("utf-8")

    def all(self) -> list[str]:
        blob, bounds = self.blob[:], self.offsets.tolist()
        return [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(bounds)]

    def find(self, name: str) -> int | None:
        """Row of the first name equal to ``name`` ignoring case, else of the shortest name
        containing it (the first row among equally short ones), else None."""
        text, starts, rows = self.search, self.starts, self.rows
        if not len(rows):
            return None
        needle = name.casefold().encode("utf-8")

        def slot(pos: int) -> int:  # the name a byte position falls in
            return int(np.searchsorted(starts, pos, side="right")) - 1

        exact, pattern = None, SEP + needle + SEP
        pos = text.find(pattern)
        while pos >= 0:  # equal names share a length, so every one of them is checked
            k = slot(pos + 1)
            if int(starts[k]) == pos + 1 and int(starts[k + 1]) - 1 == pos + 1 + len(needle):
                exact = int(rows[k]) if exact is None else min(exact, int(rows[k]))
            pos = text.find(pattern, pos + 1)
        if exact is not None:
            return exact
        if not needle:
            return int(rows[0])
        pos = text.find(needle)
        while pos >= 0:  # a match spanning two names needs a NUL in the text asked for
            k = slot(pos)
            if k >= 0 and pos + len(needle) <= int(starts[k + 1]) - 1:
                return int(rows[k])
            pos = text.find(needle, pos + 1)
        return None


def _map(path: Path) -> mmap.mmap | bytes:
    """The file's bytes, memory-mapped (read lazily, kept alive if the file is removed)."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return b""  # an empty file cannot be mapped
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


@dataclass
class Index:
    ids: np.ndarray
    years: np.ndarray
    vectors: np.ndarray  # float32, unit rows (memory-mapped from the cache)
    names: Names


def _open_build(build: Path) -> Index:
    return Index(
        np.load(build / "ids.npy", mmap_mode="r"),
        np.load(build / "years.npy", mmap_mode="r"),
        np.load(build / "vectors.npy", mmap_mode="r"),
        Names(build),
    )


# -- answering ---------------------------------------------------------------------------------
def check_query(game_id: int | None, name: str | None, top: int) -> None:
    """Usage errors, before anything is read."""
    if game_id is not None and name is not None:
        raise UsageError("give a GAME_ID or --name, not both")
    if game_id is None and name is None:
        raise UsageError('give a GAME_ID or --name "part of a name"')
    if name is not None and not name.strip():  # "" is part of every name: it would match one
        raise UsageError('--name is empty: give part of a game\'s name, e.g. --name "catan"')
    if top <= 0:
        raise UsageError(f"--top must be positive, got {top}")


class NotEmbedded(InputError):
    """The game asked for is not in the index; the warehouse says why (`explain_miss`)."""

    def __init__(self, message: str, hint: str | None, game_id: int | None, name: str | None):
        super().__init__(message, hint)
        self.game_id = game_id
        self.name = name


def find_game(index: Index, game_id: int | None, name: str | None) -> int:
    """Row of the game asked for: by id, or the best name match."""
    check_query(game_id, name, 1)
    if game_id is not None:
        rows = np.flatnonzero(index.ids == game_id)
        if not len(rows):
            raise NotEmbedded(f"game {game_id} has no game embedding", None, game_id, None)
        return int(rows[0])
    assert name is not None
    row = index.names.find(name)
    if row is not None:
        return row
    import difflib

    unique = list(dict.fromkeys(index.names.all()))
    close = difflib.get_close_matches(name, unique, n=5, cutoff=0.6)
    hint = f"did you mean: {', '.join(close)}?" if close else "try part of the name"
    raise NotEmbedded(f"no game named {name!r}", hint, None, name)


def explain_miss(
    settings: Settings, miss: NotEmbedded, waiting: Callable[[str], None] | None = None
) -> InputError:
    """Why the game is not in the index: not in the warehouse, or not embedded yet (and
    the commands that would embed it, whatever years `embed` defaults to)."""
    from bggscore.stages import COMPLEXITY
    from bggscore.warehouse import open_warehouse
    from bggscore.warehouse.queries import GAME_BY_ID, GAME_BY_NAME, STAGE_STATE_OF_GAME
    from bggscore.warehouse.schemas import stage_partition

    with open_warehouse(settings, read_only=True, waiting=waiting) as wh:
        if miss.game_id is not None:
            found = wh.query(GAME_BY_ID, {"game_id": miss.game_id})
        else:
            found = wh.query(GAME_BY_NAME, {"name": miss.name, "limit": 1})
        if found.is_empty():
            if miss.game_id is None:
                return miss  # no such name anywhere: the index's close matches stand
            return InputError(
                f"game {miss.game_id} is not in the warehouse",
                "check the id, or load the game with `bggscore warehouse load FILE`",
            )
        game_id, name = int(found["game_id"][0]), str(found["name"][0])
        state = {"partition": stage_partition(COMPLEXITY), "stage": COMPLEXITY, "game_id": game_id}
        scored = not wh.query(STAGE_STATE_OF_GAME, state).is_empty()
    embed = f"`bggscore embed --game-id {game_id}`"
    steps = f"run {embed}" if scored else f"run `bggscore score --game-id {game_id}`, then {embed}"
    return InputError(
        f"game {game_id} ({name}) is in the warehouse but has no game embedding yet", steps
    )


def neighbours(index: Index, row: int, top: int) -> list[dict[str, Any]]:
    if top <= 0:
        raise UsageError(f"--top must be positive, got {top}")
    scores = np.asarray(index.vectors @ index.vectors[row])
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


def answer(index: Index, key: str, game_id: int | None, name: str | None, top: int) -> dict:
    row = find_game(index, game_id, name)
    return {
        "game_id": int(index.ids[row]),
        "name": index.names[row],
        "model": key,
        "neighbours": neighbours(index, row, top),
    }


def render_table(data: dict[str, Any], out: Any) -> None:
    """The human answer: a table on a rich console."""
    from rich.markup import escape
    from rich.table import Table

    from bggscore.console import print_whole

    # game names are data, not markup: "[redacted]" must show, "[/x]" must not crash
    table = Table(title=f"games like {escape(data['name'])} ({data['game_id']})")
    for column in ("game_id", "name", "year", "similarity"):
        table.add_column(column, justify="right" if column != "name" else "left")
    for item in data["neighbours"]:
        year = "" if item["year_published"] is None else str(item["year_published"])
        row = (str(item["game_id"]), escape(item["name"]), year, f"{item['similarity']:.3f}")
        table.add_row(*row)
    print_whole(out, table)


def similar(
    settings: Settings,
    game_id: int | None,
    name: str | None,
    top: int,
    inputs: Inputs | None = None,
    waiting: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The full check, then the answer; with ``inputs``, `recall` can skip the check next
    time."""
    check_query(game_id, name, top)
    index, key = load_index(settings, inputs, waiting)
    return answer(index, key, game_id, name, top)


# -- the cache, checked against the warehouse -------------------------------------------------
def _cache_dir(settings: Settings, key: str) -> Path:
    digest = hashlib.sha256(f"{settings.warehouse_path}|{key}".encode()).hexdigest()[:16]
    return settings.home / "cache" / f"similar-{digest}"


def load_index(
    settings: Settings,
    inputs: Inputs | None = None,
    waiting: Callable[[str], None] | None = None,
) -> tuple[Index, str]:
    from bggscore.modelset import stage_keys
    from bggscore.warehouse import open_warehouse
    from bggscore.warehouse.queries import FEATURES_VERSION

    registry_root = _local_registry(settings)
    registry_seen = time.time()
    registry = _tree_stamp(registry_root) if registry_root else None
    key = stage_keys(settings, [STAGE], {}, explicit=True)[STAGE]
    folder = _cache_dir(settings, key)
    with open_warehouse(settings, read_only=True, waiting=waiting) as wh:
        opened = time.monotonic()
        wh.require_tables(["scoring_state", "game_embeddings", "games_features"])
        count, embedded = wh.stage_version(STAGE, key)
        if count == 0:
            raise InputError(
                "no game embeddings yet for the current model", "run `bggscore embed` first"
            )
        features = wh.query(FEATURES_VERSION).row(0, named=True)
        token = f"{embedded}|{features['n']}|{features['last_load']}"
        build = _current_build(folder, token)
        if build is None:
            try:
                build = _save(folder, wh.latest_game_embeddings(key), token)
            except OSError:  # a read-only home: a build of this process's own, not kept
                folder = _scratch_folder()
                build = _save(folder, wh.latest_game_embeddings(key), token)
                inputs = None  # nothing to remember
        warehouse = _warehouse_stamp(settings) if wh.engine == "duckdb" else None
        # a writer can only follow our close; holding the file a few ticks longer than the
        # clock's resolution guarantees its write a later mtime than the one stamped here
        time.sleep(max(0.0, 0.05 - (time.monotonic() - opened)))
    # a registry file written within 50 ms of its stamp could change again, same mtime;
    # and a clock of whole seconds (FAT, some network mounts) cannot tell writes apart
    fine = warehouse is not None and _fine_clock(warehouse[1])
    if inputs and fine and registry and registry["newest"] < registry_seen - 0.05:
        assert warehouse is not None  # fine implies it
        _remember(settings, inputs, folder / build, token, key, warehouse, registry)
    return _open_build(folder / build), key


def _scratch_folder() -> Path:
    """A temporary cache folder, removed when the process exits (its files stay readable
    while mapped)."""
    import atexit
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="bggscore-similar-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _fine_clock(stamp: list[int] | None) -> bool:
    """Whether a file's times have sub-second precision (stamps can tell writes apart)."""
    return stamp is not None and stamp[3] % 1_000_000_000 != 0


def _current_build(folder: Path, token: str) -> str | None:
    """The build made from the current embeddings and names, when it is complete."""
    try:
        current = json.loads((folder / CURRENT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if current.get("format") != FORMAT or current.get("token") != token:
        return None
    build = str(current.get("build", ""))
    return build if build and (folder / build / COMPLETE).exists() else None


def _save(folder: Path, frame: Any, token: str) -> str:
    """Write a new build, point ``current.json`` at it, then remove older ones (readers that
    mapped their files keep them until they exit)."""
    import shutil
    import uuid

    import polars as pl

    build = f"build-{uuid.uuid4().hex[:12]}"
    path = folder / build
    path.mkdir(parents=True)
    names = frame["name"].fill_null("")
    np.save(path / "ids.npy", frame["game_id"].to_numpy())
    np.save(path / "years.npy", frame["year_published"].cast(pl.Float64).to_numpy())
    np.save(path / "vectors.npy", np.vstack(frame["embedding"].to_numpy()).astype(np.float32))
    sizes = names.str.len_bytes().cast(pl.Int64).to_numpy()
    np.save(path / "name_offsets.npy", np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))
    (path / "names.bin").write_bytes("".join(names.to_list()).encode("utf-8"))
    # the search text: lowercased like the query is casefolded, shortest names first
    rows = np.argsort(names.str.len_chars().to_numpy(), kind="stable")
    lowered = names.str.to_lowercase().gather(rows)
    lengths = lowered.str.len_bytes().cast(pl.Int64).to_numpy()
    starts = np.concatenate([[1], 1 + np.cumsum(lengths + 1)]).astype(np.int64)
    text = SEP + SEP.join(s.encode("utf-8") for s in lowered.to_list()) + SEP
    (path / "search.bin").write_bytes(text)
    np.save(path / "search_starts.npy", starts)
    np.save(path / "search_rows.npy", rows.astype(np.int64))
    (path / COMPLETE).write_bytes(b"")
    _write_atomic(folder / CURRENT, {"format": FORMAT, "token": token, "build": build})
    for old in folder.iterdir():  # older builds and the files of older cache formats
        if old.name == build or old.name.startswith(CURRENT):
            continue
        # another process may be writing a build: only finished or abandoned ones go
        building = old.name.startswith("build-") and not (old / COMPLETE).exists()
        if building and old.stat().st_mtime > time.time() - 3600:
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    return build


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)


# -- the fast path: what the full check depended on, and whether it is unchanged ----------------
@dataclass(frozen=True)
class Inputs:
    """Everything the settings are computed from, hashed; and where they put the home."""

    digest: str
    home: Path | None

    @classmethod
    def capture(cls, config: Path | None, overrides: dict[str, Any]) -> Inputs:
        cwd = os.getcwd()
        env = sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("BGGSCORE_"))
        toml_path = Path(cwd, config) if config is not None else Path(cwd, "bggscore.toml")
        try:
            toml: bytes | None = toml_path.read_bytes()
        except OSError:
            toml = None
        parts = {
            "format": FORMAT,
            "code": _code_stamp(),
            "cwd": cwd,
            "env": env,
            "config": None if config is None else str(config),
            "toml": None if toml is None else hashlib.sha256(toml).hexdigest(),
            "overrides": overrides,
        }
        text = json.dumps(parts, sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()
        return cls(digest, _guess_home(cwd, env, toml, overrides))


def _code_stamp() -> list[Any]:
    package = Path(__file__).resolve().parents[1]
    return [_stat(package / name) for name in CODE]


def _guess_home(
    cwd: str, env: list[tuple[str, str]], toml: bytes | None, overrides: dict[str, Any]
) -> Path | None:
    """Where the settings put the home (flag, variable, config file, default). A wrong guess
    only means the manifest is not found: the inputs' digest, not this, vouches for it."""
    home: Any = overrides.get("home")
    if home is None:
        named = dict(env)
        home = named.get("BGGSCORE_HOME") or next(
            (v for k, v in env if k.upper() == "BGGSCORE_HOME"), None
        )
    if home is None and toml is not None:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            return None
        try:
            home = tomllib.loads(toml.decode("utf-8")).get("home")
        except (ValueError, UnicodeDecodeError):
            return None
    if home is None:
        home = ".bggscore"
    return Path(cwd, home) if isinstance(home, (str, Path)) else None


def _stat(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _local_registry(settings: Settings) -> Path | None:
    from bggscore.registry import LocalStore, open_store

    store = open_store(settings.registry.uri, settings.home)
    return store.root if isinstance(store, LocalStore) else None


def _tree_stamp(root: Path) -> dict[str, Any]:
    """A digest of every file and folder under ``root`` (name and stat), and the newest
    change time in it."""
    digest, newest = hashlib.sha256(), 0
    for folder, dirs, files in os.walk(root):
        dirs.sort()  # a linked folder is not walked, but its own stat is part of the digest
        for name in [".", *sorted(files), *dirs]:
            path = os.path.join(folder, name)
            stamp = _stat(Path(path))
            digest.update(f"{os.path.relpath(path, root)}\0{stamp}\n".encode())
            if stamp:
                newest = max(newest, stamp[3], stamp[4])
    return {"root": str(root), "digest": digest.hexdigest(), "newest": newest / 1e9}


def _warehouse_stamp(settings: Settings) -> list[Any]:
    path = Path(os.path.abspath(settings.warehouse_path))
    wal = path.with_name(path.name + ".wal")
    return [str(path), _stat(path), str(wal), _stat(wal)]


def _manifest_path(home: Path, inputs: Inputs) -> Path:
    return home / "cache" / f"similar-fast-{inputs.digest[:16]}.json"


def _remember(
    settings: Settings,
    inputs: Inputs,
    build: Path,
    token: str,
    key: str,
    warehouse: list[Any],
    registry: dict[str, Any],
) -> None:
    from bggscore.settings import unknown_variables

    manifest = {
        "format": FORMAT,
        "inputs": inputs.digest,
        "build": str(build.resolve()),
        "token": token,
        "model": key,
        "warehouse": warehouse,
        "registry": [registry["root"], registry["digest"]],
        "warnings": unknown_variables(dict(os.environ)),
    }
    with contextlib.suppress(OSError):  # a read-only home only costs the fast path
        _write_atomic(_manifest_path(settings.home.resolve(), inputs), manifest)


@dataclass
class Recalled:
    index: Index
    model: str
    warnings: list[str]  # the BGGSCORE_* variables the settings warned about


def recall(inputs: Inputs) -> Recalled | None:
    """The cached index when nothing the last full check depended on has changed."""
    if inputs.home is None:
        return None
    try:
        manifest = json.loads(_manifest_path(inputs.home, inputs).read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT or manifest.get("inputs") != inputs.digest:
            return None
        path, stamp, wal, wal_stamp = manifest["warehouse"]
        if _stat(Path(path)) != stamp or _stat(Path(wal)) != wal_stamp:
            return None
        root, digest = manifest["registry"]
        if _tree_stamp(Path(root))["digest"] != digest:
            return None
        return Recalled(
            _open_build(Path(manifest["build"])), manifest["model"], list(manifest["warnings"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, partly removed or unreadable: the full check decides
