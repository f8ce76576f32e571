"""`bggscore models import`: production's registry adopted as it is.

The source is the production registry reproduced by tests/support/production.py (five
production-shaped pipelines whose pickles need the fixture package `src`, plus production's
embedding folders), or small hand-made folders for the layout errors. Each test checks the
exit code, then the registry left on disk.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.support.output import parse_json
from tests.support.production import (
    MODEL_TYPES,
    PROD_CODE,
    ProductionRegistry,
    prod_code_on_path,
    registration,
)

from bggscore.errors import IntegrityError, RegistryError
from bggscore.registry import RegistryWarning, clear_cache, open_registry
from bggscore.registry.pickles import pickled_sklearn_versions, sklearn_version_of

NAMES = {t: f"{t}-v2026" for t in MODEL_TYPES}


# -- helpers ----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def clean_imports() -> Iterator[None]:
    """An import puts the model code on sys.path for the process: undo that between tests,
    so that each test starts where a fresh process would (no `src` importable)."""
    path = list(sys.path)
    before = {n: m for n, m in sys.modules.items() if n == "src" or n.startswith("src.")}
    clear_cache()
    yield
    clear_cache()
    sys.path[:] = path
    for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
        del sys.modules[name]
    sys.modules.update(before)


def imported(cli, *args: str) -> dict[str, Any]:
    result = cli("models", "import", *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    document = parse_json(result.stdout)
    assert (document.pop("schema_version"), document.pop("command")) == (1, "models import")
    return document


def failed(cli, code: int, *args: str) -> str:
    result = cli("models", "import", *args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


def registry_files(home: Path) -> dict[str, bytes]:
    root = home / "registry"
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def on_disk(home: Path, model_type: str, version: int = 1) -> dict[str, Any]:
    folder = home / "registry" / model_type / NAMES[model_type] / f"v{version}"
    return json.loads((folder / "registration.json").read_text())


@pytest.fixture
def source(production_registry: ProductionRegistry, tmp_path: Path) -> Path:
    """A copy of production's registry this test may change."""
    root = tmp_path / "prod" / "models" / "registered"
    shutil.copytree(production_registry.root, root)
    return root


@pytest.fixture
def export(production_registry: ProductionRegistry, tmp_path: Path) -> Path:
    """A games_features export with production's description embeddings (`embedding`)."""
    path = tmp_path / "export.parquet"
    features, embeddings = production_registry.features, production_registry.embeddings
    features.join(embeddings, on="game_id").head(150).write_parquet(path)
    return path


def make_version(
    root: Path, model_type: str, name: str, version: int, doc: Any, blob: bytes | None = b"x"
) -> Path:
    folder = root / model_type / name / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registration.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    if blob is not None:
        (folder / "pipeline.pkl").write_bytes(blob)
    return folder


# -- the import itself ------------------------------------------------------------------------
def test_import_all_copies_bytes_and_maps_the_registration(cli, home: Path, source: Path) -> None:
    data = imported(cli, str(source), "--code-path", str(PROD_CODE), "--no-check")
    assert sorted((r["type"], r["name"], r["version"]) for r in data["imported"]) == sorted(
        (t, NAMES[t], 1) for t in MODEL_TYPES
    )
    assert [r["path"].rsplit("/", 1)[-1] for r in data["skipped"]] == [
        "embeddings",
        "text-embeddings",
    ]
    assert data["unchanged"] == [] and data["checked"] is False
    assert {row["created_at"] for row in data["imported"]} == {"2026-01-15T09:30:00+00:00"}
    assert {r["name"]: r["version"] for r in data["champion"]} == {n: 1 for n in NAMES.values()}
    assert data["settings"]["models.rating"] == "rating-v2026"

    for model_type in MODEL_TYPES:
        folder = source / model_type / NAMES[model_type] / "v1"
        original = json.loads((folder / "registration.json").read_text())
        copied = home / "registry" / model_type / NAMES[model_type] / "v1" / "pipeline.pkl"
        assert copied.read_bytes() == (folder / "pipeline.pkl").read_bytes()
        stored = on_disk(home, model_type)
        assert stored["sha256"] == hashlib.sha256(copied.read_bytes()).hexdigest()
        assert stored["size_bytes"] == copied.stat().st_size
        assert (stored["artifact"], stored["format"]) == ("pipeline.pkl", "pickle")
        assert stored["imported"] == original
        assert stored["source"] == str(folder)
        assert stored["status"] == "active"
        assert stored["description"] == original["description"]
        # registered_at has no time zone in production: read as UTC
        assert stored["created_at"] == original["registered_at"] + "Z"
        assert stored["experiment"] == original["original_experiment"]["name"]
        assert stored["training"]["test_through"] == 2024
        assert stored["training"]["use_embeddings"] is True
        assert stored["versions"] == {"sklearn": sklearn_version_of(copied.read_bytes())}
        assert stored["code_paths"] == [str(PROD_CODE)]
        assert stored["proved"] is False
        names = [c["name"] for c in stored["signature"]]
        assert names[:3] == ["game_id", "name", "year_published"]
        assert [n for n in names if n.startswith("emb_")] == [f"emb_{i}" for i in range(100)]
    chain = [c["name"] for c in on_disk(home, "geek_rating")["signature"] if c["source"] == "chain"]
    assert chain == ["predicted_complexity", "predicted_rating", "predicted_users_rated_log"]
    assert [c for c in on_disk(home, "hurdle")["signature"] if c["source"] == "chain"] == []

    listed = parse_json(cli("models", "list", "--json").stdout)["models"]
    assert {row["source"] for row in listed} == {
        str(source / t / NAMES[t] / "v1") for t in MODEL_TYPES
    }
    assert all(row["aliases"] == ["champion"] for row in listed)
    assert cli("models", "verify").exit_code == 0


@pytest.mark.parametrize("depth", ["type", "name", "version"])
def test_import_one_type_name_or_version_folder(cli, home: Path, source: Path, depth: str) -> None:
    folder = {
        "type": source / "complexity",
        "name": source / "complexity" / NAMES["complexity"],
        "version": source / "complexity" / NAMES["complexity"] / "v1",
    }[depth]
    data = imported(cli, str(folder), "--code-path", str(PROD_CODE), "--no-check")
    assert [(r["type"], r["name"], r["version"]) for r in data["imported"]] == [
        ("complexity", "complexity-v2026", 1)
    ]
    assert sorted(registry_files(home)) == [
        "_names/complexity-v2026.json",
        "complexity/complexity-v2026/aliases/champion.json",
        "complexity/complexity-v2026/v1/.claim",
        "complexity/complexity-v2026/v1/pipeline.pkl",
        "complexity/complexity-v2026/v1/registration.json",
    ]


def test_versions_keep_their_numbers_and_champion_is_the_newest_active(
    cli, home: Path, source: Path
) -> None:
    folder = source / "rating" / NAMES["rating"]
    blob = (folder / "v1" / "pipeline.pkl").read_bytes()
    for version, archived in ((3, False), (4, True)):
        doc = registration("rating", None, version, archived=archived)
        make_version(source, "rating", NAMES["rating"], version, doc, blob)
    data = imported(cli, str(folder), "--code-path", str(PROD_CODE), "--no-check")
    assert [(r["version"], r["status"]) for r in data["imported"]] == [
        (1, "active"),
        (3, "active"),
        (4, "archived"),
    ]
    assert data["champion"] == [{"name": "rating-v2026", "version": 3, "changed": True}]
    assert on_disk(home, "rating", 4)["status"] == "archived"
    registry = open_registry(None, home)
    assert registry.aliases("rating-v2026") == {"champion": 3}
    assert registry.resolve("rating-v2026").version == 3  # the newest active, like production
    # a version bggscore registers next follows production's numbers
    assert not (home / "registry" / "rating" / NAMES["rating"] / "v2").exists()


def test_dry_run_writes_nothing(cli, home: Path, source: Path) -> None:
    data = imported(cli, str(source), "--code-path", str(PROD_CODE), "--no-check", "--dry-run")
    assert data["dry_run"] is True
    assert len(data["imported"]) == len(MODEL_TYPES)
    assert registry_files(home) == {}
    human = cli(
        "models", "import", str(source), "--code-path", str(PROD_CODE), "--no-check", "--dry-run"
    )
    assert human.exit_code == 0 and "would import rating-v2026:1" in human.stdout
    assert registry_files(home) == {}


def test_importing_twice_is_a_no_op(cli, home: Path, source: Path) -> None:
    imported(cli, str(source), "--code-path", str(PROD_CODE), "--no-check")
    before = registry_files(home)
    again = imported(cli, str(source), "--code-path", str(PROD_CODE), "--no-check")
    assert again["imported"] == []
    assert len(again["unchanged"]) == len(MODEL_TYPES)
    assert all(not row["changed"] for row in again["champion"])
    assert registry_files(home) == before


def test_the_same_version_with_other_bytes_is_refused(cli, home: Path, source: Path) -> None:
    imported(cli, str(source / "rating"), "--code-path", str(PROD_CODE), "--no-check")
    before = registry_files(home)
    pkl = source / "rating" / NAMES["rating"] / "v1" / "pipeline.pkl"
    pkl.write_bytes(pkl.read_bytes() + b"\n")
    line = failed(cli, 2, str(source), "--code-path", str(PROD_CODE), "--no-check")
    stored = on_disk(home, "rating")["sha256"]
    now = hashlib.sha256(pkl.read_bytes()).hexdigest()
    assert f"rating-v2026:1 is in {home / 'registry'} with sha256 {stored[:12]}" in line
    assert f"{pkl.parent} has other bytes (sha256 {now[:12]}" in line
    assert "the source changed since it was imported" in line
    assert "nothing was imported" in line and "bggscore models verify rating-v2026:1" in line
    assert "archive" not in line and "remove that version" not in line
    assert registry_files(home) == before  # the other four were not imported either


def _damage(home: Path, model_type: str, how: str) -> Path:
    pkl = home / "registry" / model_type / NAMES[model_type] / "v1" / "pipeline.pkl"
    if how == "flipped":
        data = bytearray(pkl.read_bytes())
        data[len(data) // 2] ^= 0x01
        pkl.write_bytes(bytes(data))
    else:
        pkl.unlink()
    return pkl


@pytest.mark.parametrize("how", ["flipped", "missing"])
def test_importing_again_restores_a_damaged_stored_copy(
    cli, home: Path, source: Path, how: str
) -> None:
    code = ("--code-path", str(PROD_CODE), "--no-check")
    imported(cli, str(source / "rating"), *code)
    before = registry_files(home)
    pkl = _damage(home, "rating", how)
    assert cli("models", "verify").exit_code == 1
    damaged = registry_files(home)

    dry = imported(cli, str(source / "rating"), *code, "--dry-run")
    assert [r["name"] for r in dry["restored"]] == ["rating-v2026"]
    assert registry_files(home) == damaged  # a dry run restores nothing
    human = cli("models", "import", str(source / "rating"), *code)
    assert human.exit_code == 0, human.stderr
    assert "restored rating-v2026:1" in human.stdout
    assert "unchanged rating-v2026:1" not in human.stdout

    assert registry_files(home) == before
    original = source / "rating" / NAMES["rating"] / "v1" / "pipeline.pkl"
    assert pkl.read_bytes() == original.read_bytes()
    verified = parse_json(cli("models", "verify", "--json").stdout)["verified"]
    assert [(row["model"], row["ok"]) for row in verified] == [("rating-v2026:1", True)]
    again = imported(cli, str(source / "rating"), *code)  # intact now: unchanged
    assert again["restored"] == [] and [r["name"] for r in again["unchanged"]] == ["rating-v2026"]


def test_a_write_failing_after_a_restore_puts_the_old_copy_back(
    cli, home: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bggscore.registry import LocalStore

    code = ("--code-path", str(PROD_CODE), "--no-check")
    imported(cli, str(source / "rating"), *code)
    _damage(home, "rating", "flipped")
    damaged = registry_files(home)
    original = LocalStore.write_bytes
    writes = []

    def flaky(self: LocalStore, key: str, data: bytes) -> None:
        writes.append(key)
        if "/aliases/" in key:  # after the versions and the restored artifact
            raise RegistryError("registry folder is not writable (test)")
        original(self, key, data)

    monkeypatch.setattr(LocalStore, "write_bytes", flaky)
    assert "not writable" in failed(cli, 1, str(source), *code)
    assert "rating/rating-v2026/v1/pipeline.pkl" in writes
    assert registry_files(home) == damaged


def test_a_restored_model_feeds_the_check_with_the_sources_bytes(
    cli, home: Path, source: Path, export: Path
) -> None:
    code = ("--code-path", str(PROD_CODE), "--check-with", str(export))
    imported(cli, str(source / "complexity"), *code)
    _damage(home, "complexity", "flipped")
    data = imported(cli, str(source), *code)  # the rating models are checked on its output
    assert [r["name"] for r in data["restored"]] == ["complexity-v2026"]
    assert len(data["imported"]) == len(MODEL_TYPES) - 1 and data["unchanged"] == []
    assert cli("models", "verify").exit_code == 0


# -- the check: predicting through the scoring chain before anything is written ---------------
def test_a_checked_import_predicts_through_the_chain(
    cli, home: Path, source: Path, export: Path
) -> None:
    data = imported(cli, str(source), "--code-path", str(PROD_CODE), "--check-with", str(export))
    assert data["checked"] is True
    assert all(row["proved"] for row in data["imported"])
    assert all(on_disk(home, t)["proved"] is True for t in MODEL_TYPES)


def test_an_export_with_fixed_size_float32_embeddings_is_checked(
    cli, home: Path, source: Path, export: Path, tmp_path: Path
) -> None:
    """An export whose `embedding` is an Array column (as pyarrow writes fixed-size lists),
    of Float32: read as the List(Float64) `warehouse load --embeddings` makes of it."""
    frame = pl.read_parquet(export)
    width = frame["embedding"].list.len().max()
    path = tmp_path / "array.parquet"
    frame.with_columns(pl.col("embedding").cast(pl.Array(pl.Float32, width))).write_parquet(path)
    assert isinstance(pl.read_parquet_schema(path)["embedding"], pl.Array)
    data = imported(cli, str(source), "--code-path", str(PROD_CODE), "--check-with", str(path))
    assert data["checked"] is True and all(row["proved"] for row in data["imported"])


def test_an_export_whose_embedding_is_no_list_of_numbers_is_refused(
    cli, home: Path, source: Path, export: Path, tmp_path: Path
) -> None:
    path = tmp_path / "text.parquet"
    pl.read_parquet(export).with_columns(pl.lit("x").alias("embedding")).write_parquet(path)
    code = ("--code-path", str(PROD_CODE), "--check-with", str(path))
    line = failed(cli, 2, str(source / "complexity"), *code)
    assert "column embedding has type String, expected a list of numbers" in line
    assert registry_files(home) == {}


def test_a_rating_model_is_checked_on_the_registrys_complexity(
    cli, home: Path, source: Path, export: Path
) -> None:
    code = ("--code-path", str(PROD_CODE), "--check-with", str(export))
    line = failed(cli, 2, str(source / "rating"), *code)
    assert "rating-v2026:1" in line and "predicted_complexity" in line
    assert "import the complexity model too" in line
    assert registry_files(home) == {}
    imported(cli, str(source / "complexity"), *code)
    # the main stage's other required models are missing too: named
    line = failed(cli, 2, str(source / "rating"), *code)
    assert "also needs a users_rated model" in line
    data = imported(cli, str(source), *code)  # the rest, checked on the registry's complexity
    assert [r["name"] for r in data["unchanged"]] == ["complexity-v2026"]
    assert len(data["imported"]) == len(MODEL_TYPES) - 1
    assert len(open_registry(None, home).list()) == len(MODEL_TYPES)


def test_a_model_failing_on_the_rows_imports_nothing(
    cli, home: Path, source: Path, export: Path
) -> None:
    pkl = source / "rating" / NAMES["rating"] / "v1" / "pipeline.pkl"
    with prod_code_on_path():
        broken = pickle.loads(pkl.read_bytes())
        year = broken.steps[0][1].steps[3]
        broken.steps[0][1].steps[3] = (year[0], _Raising(year[1]))
        pkl.write_bytes(pickle.dumps(broken))
    line = failed(cli, 2, str(source), "--code-path", str(PROD_CODE), "--check-with", str(export))
    assert line.startswith("error: cannot import rating-v2026:1: it fails to predict on ")
    assert "RuntimeError: refuses these rows" in line and "nothing was imported" in line
    assert registry_files(home) == {}


class _Raising:
    """A pipeline step that fails on every row (pickled by reference to this module)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def fit(self, X: Any, y: Any = None) -> _Raising:
        return self

    def transform(self, X: Any) -> Any:
        raise RuntimeError("refuses these rows")


def test_a_missing_input_column_is_named(
    cli, home: Path, source: Path, tmp_path: Path, sample_path: Path
) -> None:
    path = tmp_path / "no-embeddings.parquet"
    pl.read_parquet(sample_path).head(50).write_parquet(path)
    code = ("--code-path", str(PROD_CODE), "--check-with", str(path))
    line = failed(cli, 2, str(source / "complexity"), *code)
    assert "complexity-v2026:1" in line and "emb_" in line and "no embedding column" in line
    assert registry_files(home) == {}


def test_a_write_failing_midway_leaves_nothing(
    cli, home: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bggscore.registry import LocalStore

    writes = []
    original = LocalStore.write_bytes

    def flaky(self: LocalStore, key: str, data: bytes) -> None:
        writes.append(key)
        if len(writes) == 7:  # the fourth model's artifact
            raise RegistryError("registry folder is not writable (test)")
        original(self, key, data)

    monkeypatch.setattr(LocalStore, "write_bytes", flaky)
    line = failed(cli, 1, str(source), "--code-path", str(PROD_CODE), "--no-check")
    assert "not writable" in line
    assert len(writes) == 7
    assert [k for k in registry_files(home) if not k.startswith("_names/")] == []
    assert registry_files(home) == {}


# -- code and environment -------------------------------------------------------------------
def test_without_the_model_code_the_module_is_named(cli, home: Path, source: Path) -> None:
    line = failed(cli, 1, str(source / "complexity"), "--no-check")
    assert "complexity-v2026:1 needs the module 'src" in line
    assert "--code-path DIR" in line and "registry.code_paths" in line
    assert registry_files(home) == {}


def test_the_code_path_wins_over_the_repositorys_src_namespace(
    cli, home: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = Path(__file__).resolve().parents[2]
    monkeypatch.syspath_prepend(str(repository))
    import src  # the repository's own src/ folder: a namespace package

    assert getattr(src, "__file__", None) is None
    imported(cli, str(source / "complexity"), "--code-path", str(PROD_CODE), "--no-check")


def test_the_recorded_code_path_loads_the_model_later(cli, home: Path, source: Path) -> None:
    imported(cli, str(source / "complexity"), "--code-path", str(PROD_CODE), "--no-check")
    sys.path[:] = [p for p in sys.path if p != str(PROD_CODE)]
    for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
        del sys.modules[name]
    clear_cache()
    loaded = open_registry(None, home).load("complexity-v2026")
    assert type(loaded.model.steps[0][1].steps[0][1]).__module__ == "src.features.preprocessor"


def test_a_recorded_code_folder_gone_names_the_setting_not_the_flag(
    cli, home: Path, source: Path, tmp_path: Path
) -> None:
    """score, run and embed load models with no --code-path flag: the setting is the fix."""
    import importlib

    code = tmp_path / "model-code"
    shutil.copytree(PROD_CODE, code)
    imported(cli, str(source / "complexity"), "--code-path", str(code), "--no-check")
    shutil.rmtree(code)
    sys.path[:] = [p for p in sys.path if p not in (str(code), str(PROD_CODE))]
    for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    clear_cache()
    with pytest.raises(RegistryError) as caught:
        open_registry(None, home).load("complexity-v2026")
    text = str(caught.value)
    assert "complexity-v2026:1 needs the module 'src" in text
    assert f"looked in {code} (no such folder) too" in text
    assert "registry.code_paths (env BGGSCORE_REGISTRY__CODE_PATHS)" in text
    assert "--code-path" not in text


def test_code_paths_from_the_environment(
    cli, home: Path, source: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import os

    from bggscore.settings import load_settings

    monkeypatch.setenv("BGGSCORE_REGISTRY__CODE_PATHS", f"{tmp_path}{os.pathsep}{PROD_CODE}")
    assert load_settings().registry.code_paths == [str(tmp_path), str(PROD_CODE)]
    monkeypatch.setenv("BGGSCORE_REGISTRY__CODE_PATHS", json.dumps([str(PROD_CODE)]))
    assert load_settings().registry.code_paths == [str(PROD_CODE)]
    imported(cli, str(source / "complexity"), "--no-check")
    assert on_disk(home, "complexity")["code_paths"] == []  # the setting applies at load time
    monkeypatch.setenv("BGGSCORE_REGISTRY__CODE_PATHS", "[not json")
    result = cli("models", "list")
    assert result.exit_code == 2 and "registry.code_paths" in result.stderr


def _old_sklearn_pickle(model: Any, monkeypatch: pytest.MonkeyPatch, version: str) -> bytes:
    """The model as scikit-learn `version` would have pickled it (the version it writes
    into each estimator's state)."""
    import sklearn.base

    with prod_code_on_path(), monkeypatch.context() as patch:
        patch.setattr(sklearn.base, "__version__", version)
        return pickle.dumps(model)


@pytest.mark.filterwarnings("default::bggscore.registry.RegistryWarning")
def test_another_sklearn_is_refused_unless_allowed(
    cli,
    home: Path,
    production_registry: ProductionRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blob = _old_sklearn_pickle(production_registry.models["complexity"], monkeypatch, "1.7.0")
    assert pickled_sklearn_versions(blob) == ["1.7.0"]
    doc = registration("complexity", production_registry.models["complexity"], 1)
    folder = make_version(tmp_path / "old", "complexity", NAMES["complexity"], 1, doc, blob)
    line = failed(cli, 1, str(folder), "--code-path", str(PROD_CODE), "--no-check")
    assert "made with scikit-learn 1.7.0" in line
    assert "`pip install scikit-learn==1.7.0`" in line and "--allow-version-mismatch" in line
    assert registry_files(home) == {}

    result = cli(
        "models",
        "import",
        str(folder),
        "--code-path",
        str(PROD_CODE),
        "--no-check",
        "--allow-version-mismatch",
    )
    assert result.exit_code == 0, result.stderr
    assert "scikit-learn 1.7.0" in result.stderr  # one warning line
    assert on_disk(home, "complexity")["versions"] == {"sklearn": "1.7.0"}

    clear_cache()
    with pytest.raises(RegistryError, match=r"pip install scikit-learn==1\.7\.0"):
        open_registry(None, home).load("complexity-v2026")
    # checked without loading (the parent of `score --workers`): the same refusal
    stored = open_registry(None, home).resolve("complexity-v2026")
    with pytest.raises(RegistryError, match=r"pip install scikit-learn==1\.7\.0"):
        open_registry(None, home).check(stored)
    clear_cache()
    with pytest.warns(RegistryWarning, match="scikit-learn 1.7.0"):
        open_registry(None, home, allow_version_mismatch=True).load("complexity-v2026")


def test_a_flipped_byte_is_refused_before_unpickling(
    cli, home: Path, source: Path, mocker: Any
) -> None:
    imported(cli, str(source / "rating"), "--code-path", str(PROD_CODE), "--no-check")
    verified = parse_json(cli("models", "verify", "--json").stdout)["verified"]
    assert [(row["model"], row["ok"]) for row in verified] == [("rating-v2026:1", True)]
    pkl = home / "registry" / "rating" / NAMES["rating"] / "v1" / "pipeline.pkl"
    data = bytearray(pkl.read_bytes())
    data[len(data) // 2] ^= 0x01
    pkl.write_bytes(bytes(data))

    result = cli("models", "verify")
    assert result.exit_code == 1 and "rating-v2026:1" in result.stderr
    loads = mocker.patch("pickle.loads")
    with pytest.raises(IntegrityError, match="failed its sha256 check"):
        open_registry(None, home).load("rating-v2026")
    loads.assert_not_called()


# -- sources and formats --------------------------------------------------------------------
def test_a_gcs_source_is_read_through_the_gcs_store(
    cli, home: Path, source: Path, fake_gcs: Any, mocker: Any
) -> None:
    bucket = fake_gcs.bucket("bgg-models").objects
    for path in source.rglob("*"):
        if path.is_file():
            bucket[f"prod/models/registered/{path.relative_to(source).as_posix()}"] = (
                path.read_bytes()
            )
    mocker.patch("bggscore.registry.stores._default_gcs_client", return_value=fake_gcs)
    before = dict(bucket)
    data = imported(
        cli,
        "gs://bgg-models/prod/models/registered/rating",
        "--code-path",
        str(PROD_CODE),
        "--no-check",
    )
    assert [r["source"] for r in data["imported"]] == [
        "gs://bgg-models/prod/models/registered/rating/rating-v2026/v1"
    ]
    assert bucket == before  # read only
    stored = on_disk(home, "rating")
    assert stored["source"] == "gs://bgg-models/prod/models/registered/rating/rating-v2026/v1"
    assert (
        stored["sha256"]
        == hashlib.sha256(
            before["prod/models/registered/rating/rating-v2026/v1/pipeline.pkl"]
        ).hexdigest()
    )


def test_an_unreachable_gcs_source_is_an_environment_error(cli, home: Path, mocker: Any) -> None:
    from google.api_core.exceptions import Forbidden

    client = mocker.Mock()
    client.list_blobs.side_effect = Forbidden("no access")
    mocker.patch("bggscore.registry.stores._default_gcs_client", return_value=client)
    line = failed(cli, 1, "gs://bgg-models/prod/models/registered", "--no-check")
    assert "refused" in line and "gs://bgg-models/prod/models/registered" in line


def test_no_google_credentials_is_one_line_for_every_gs_registry_use(
    cli, home: Path, mocker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.auth.exceptions import DefaultCredentialsError

    mocker.patch(
        "google.cloud.storage.Client",
        side_effect=DefaultCredentialsError("Your default credentials were not found."),
    )
    line = failed(cli, 1, "gs://bgg-models/prod/models/registered", "--no-check")
    hint = "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
    assert "no Google credentials found" in line and hint in line
    assert "unexpected" not in line and "report it" not in line
    monkeypatch.setenv("BGGSCORE_REGISTRY__URI", "gs://bgg-models/bggscore")
    listed = cli("models", "list")
    assert listed.exit_code == 1
    assert listed.stderr.count("\n") == 1 and "no Google credentials found" in listed.stderr
    assert hint in listed.stderr


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            lambda d: d["original_experiment"].pop("name"),
            "original_experiment.name: Field required",
        ),
        (lambda d: d.pop("registered_at"), "registered_at: Field required"),
        (
            lambda d: d.update(status="retired"),
            "status: Input should be 'registered' or 'archived'",
        ),
        (
            lambda d: d.update(version=2),
            "describes rating-v2026:2 but sits in the folder of rating-v2026:1",
        ),
        (lambda d: d.update(name="other"), "describes other:1"),
        (
            lambda d: d["original_experiment"]["metadata"].update(model_type="complexity"),
            "model_type 'complexity' but sits in the 'rating' folder",
        ),
    ],
)
def test_a_bad_registration_names_the_field(
    cli, home: Path, tmp_path: Path, change: Any, needle: str
) -> None:
    doc = registration("rating", None, 1)
    change(doc)
    make_version(tmp_path / "bad", "rating", NAMES["rating"], 1, doc)
    line = failed(cli, 2, str(tmp_path / "bad"), "--no-check")
    assert needle in line, line
    assert registry_files(home) == {}


@pytest.mark.parametrize(
    ("layout", "needle"),
    [
        ("no-pickle", "has registration.json but no pipeline.pkl"),
        ("bggscore", "is a bggscore registration already"),
        ("neither", "neither production's registration format nor bggscore's"),
        ("not-json", "is not valid JSON"),
        ("unknown-type", "model type 'ratings'"),
        ("empty", "holds no production models"),
        ("missing", "is not a folder"),
    ],
)
def test_a_bad_folder_is_refused(cli, home: Path, tmp_path: Path, layout: str, needle: str) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    doc = registration("rating", None, 1)
    if layout == "no-pickle":
        make_version(root, "rating", NAMES["rating"], 1, doc, None)
    elif layout == "bggscore":
        make_version(root, "rating", "rating", 1, {"sha256": "0" * 64, "model_type": "rating"})
    elif layout == "neither":
        make_version(root, "rating", NAMES["rating"], 1, {"name": "rating-v2026"})
    elif layout == "not-json":
        make_version(root, "rating", NAMES["rating"], 1, "{not json")
    elif layout == "unknown-type":
        make_version(root, "ratings", NAMES["rating"], 1, doc)
    elif layout == "missing":
        root = tmp_path / "nowhere"
    line = failed(cli, 2, str(root), "--no-check")
    assert needle in line, line
    assert registry_files(home) == {}


def test_a_folder_with_only_a_pickle_is_skipped(
    cli, home: Path, tmp_path: Path, source: Path
) -> None:
    folder = source / "rating" / NAMES["rating"] / "v2"
    folder.mkdir()
    shutil.copy(source / "rating" / NAMES["rating"] / "v1" / "pipeline.pkl", folder)
    data = imported(cli, str(source / "rating"), "--code-path", str(PROD_CODE), "--no-check")
    assert [r["version"] for r in data["imported"]] == [1]
    assert data["skipped"] == [
        {"path": str(folder), "reason": "no registration.json (an unfinished registration)"}
    ]


def test_registry_uri_at_productions_folder_says_to_import_it(
    cli, home: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BGGSCORE_REGISTRY__URI", str(source))
    result = cli("models", "list")
    assert result.exit_code == 1
    assert "in production's registration format" in result.stderr
    assert f"bggscore models import {source}" in result.stderr
    assert "restore it from a backup" not in result.stderr


def test_any_other_invalid_registration_names_the_missing_field(home: Path, tmp_path: Path) -> None:
    registry = open_registry(str(tmp_path / "reg"), home)
    folder = tmp_path / "reg" / "rating" / "rating" / "v1"
    folder.mkdir(parents=True)
    (folder / "registration.json").write_text(json.dumps({"name": "rating", "version": 1}))
    with pytest.raises(
        RegistryError, match=r"not a valid registration \(model_type: Field required\)"
    ):
        registry.list()


# -- what the pickle says about itself --------------------------------------------------------
def test_the_sklearn_version_is_read_from_the_pickle_without_unpickling(
    production_registry: ProductionRegistry, monkeypatch: pytest.MonkeyPatch, mocker: Any
) -> None:
    import sklearn

    blob = _old_sklearn_pickle(production_registry.models["rating"], monkeypatch, "1.6.1")
    native = (
        production_registry.root / "rating" / NAMES["rating"] / "v1" / "pipeline.pkl"
    ).read_bytes()
    loads = mocker.patch("pickle.loads")
    assert pickled_sklearn_versions(blob) == ["1.6.1"]
    assert pickled_sklearn_versions(native) == [sklearn.__version__]
    assert pickled_sklearn_versions(pickle.dumps({"plain": [1, 2]})) == []
    assert pickled_sklearn_versions(b"not a pickle") == []
    loads.assert_not_called()


def test_a_missing_module_is_named_and_pandas_has_its_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bggscore.registry.pickles import unpickle

    with pytest.raises(RegistryError, match="needs the module 'no_such_package_here'"):
        unpickle(b"cno_such_package_here\nThing\n.", "rating-v2026:1")
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(RegistryError, match=r"needs pandas.*pip install 'bggscore\[adopt\]'"):
        unpickle(b"cpandas\nDataFrame\n.", "rating-v2026:1")


def test_allow_version_mismatch_is_one_global_flag_for_every_command(cli, home: Path) -> None:
    for args in (
        ("config", "show", "--json"),
        ("config", "show", "--allow-version-mismatch", "--json"),
    ):
        shown = parse_json(cli(*args).stdout)["settings"]["registry.allow_version_mismatch"]
        assert shown["value"] is ("--allow-version-mismatch" in args)
    flagged = parse_json(cli("--allow-version-mismatch", "config", "show", "--json").stdout)
    assert (
        flagged["settings"]["registry.allow_version_mismatch"]["from"] == "--allow-version-mismatch"
    )


# -- end to end on a warehouse: import, checked on its games, then `score` ------------------
@pytest.fixture(scope="module")
def plain_registry(production_models: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Production's layout with five pipelines that read no description embeddings
    (production's shape, quicker estimators), written once."""
    import numpy as np
    from sklearn.linear_model import BayesianRidge, LogisticRegression
    from tests.support.production import make_pipeline, production_frame, write_production_registry

    features, embeddings = production_models.features, production_models.embeddings
    train = production_frame(features, embeddings)
    models = {}
    with prod_code_on_path():
        for model_type in MODEL_TYPES:
            pipeline = make_pipeline(model_type, use_embeddings=False)
            hurdle = model_type == "hurdle"
            pipeline.steps[-1] = ("model", LogisticRegression() if hurdle else BayesianRidge())
            models[model_type] = pipeline
        chained = train.assign(predicted_complexity=train["average_weight"])
        geek = chained.assign(
            predicted_rating=train["average_rating"],
            predicted_users_rated_log=np.log1p(train["users_rated"]),
        )
        models["complexity"].fit(train, train["average_weight"])
        models["hurdle"].fit(train, train["users_rated"] >= train["users_rated"].median())
        models["rating"].fit(chained, chained["average_rating"])
        models["users_rated"].fit(chained, np.log1p(chained["users_rated"]))
        models["geek_rating"].fit(geek, geek["bayes_average"])
    root = write_production_registry(tmp_path_factory.mktemp("plain") / "registered", models)
    for path in root.rglob("registration.json"):
        doc = json.loads(path.read_text())
        doc["original_experiment"]["metadata"]["use_embeddings"] = False
        path.write_text(json.dumps(doc, indent=2))
    return root


def test_import_checked_on_the_warehouse_then_score_with_it(
    cli, home: Path, plain_registry: Path, sample_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("warehouse", "init").exit_code == 0
    assert cli("warehouse", "load", str(sample_path)).exit_code == 0
    data = imported(cli, str(plain_registry), "--code-path", str(PROD_CODE))
    assert data["checked"] is True and len(data["imported"]) == len(MODEL_TYPES)
    assert not any(c["name"].startswith("emb_") for c in on_disk(home, "rating")["signature"])
    # a fresh process: the model code only through what the import recorded
    sys.path[:] = [p for p in sys.path if p != str(PROD_CODE)]
    for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
        del sys.modules[name]
    clear_cache()
    for setting, ref in data["settings"].items():
        monkeypatch.setenv(f"BGGSCORE_{setting.replace('.', '__').upper()}", ref)
    scored = cli("score", "--all-years", "--json")
    assert scored.exit_code == 0, scored.stderr
    document = parse_json(scored.stdout)
    assert document["games_scored"] == 1000
    assert document["models"] == {t: f"{NAMES[t]}:1" for t in MODEL_TYPES}
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT rating_model_name, rating_experiment, training_cutoff_year, "
            "count(*) FROM raw.ml_predictions_landing GROUP BY ALL"
        ).fetchall()
    source = plain_registry / "rating" / NAMES["rating"] / "v1" / "registration.json"
    experiment = json.loads(source.read_text())["original_experiment"]["name"]
    assert rows == [("rating-v2026", experiment, 2024, 1000)]


def test_native_registrations_say_bggscore_as_their_source(
    cli, home: Path, make_model: Any
) -> None:
    registration = open_registry(None, home).register(
        "rating", "rating", make_model(), signature=["a", "b"]
    )
    assert (registration.source, registration.format, registration.imported) == (
        "bggscore",
        "joblib",
        None,
    )
    [row] = parse_json(cli("models", "list", "--json").stdout)["models"]
    assert row["source"] == "bggscore"
    assert "bggscore" in cli("models", "list").stdout


def test_the_check_reads_the_embeddings_table_as_score_does(
    cli, home: Path, source: Path, sample_path: Path, production_registry: ProductionRegistry
) -> None:
    assert cli("warehouse", "load", str(sample_path)).exit_code == 0
    code = ("--code-path", str(PROD_CODE))
    line = failed(cli, 2, str(source / "complexity"), *code)
    assert "complexity-v2026:1" in line and "emb_0..emb_99" in line
    assert "features.embeddings_table" in line and "warehouse load --embeddings" in line
    assert registry_files(home) == {}

    vectors = home.parent / "embeddings.parquet"
    production_registry.embeddings.write_parquet(vectors)
    assert cli("warehouse", "load", "--embeddings", str(vectors)).exit_code == 0
    data = imported(cli, str(source), *code)
    assert data["checked"] is True and len(data["imported"]) == len(MODEL_TYPES)


def test_one_name_in_two_type_folders_is_refused_before_writing(
    cli, home: Path, source: Path
) -> None:
    twin = source / "complexity" / NAMES["rating"]
    shutil.copytree(source / "rating" / NAMES["rating"], twin)
    doc = json.loads((twin / "v1" / "registration.json").read_text())
    doc["original_experiment"]["metadata"]["model_type"] = "complexity"
    (twin / "v1" / "registration.json").write_text(json.dumps(doc))
    line = failed(cli, 2, str(source), "--code-path", str(PROD_CODE), "--no-check")
    assert "the name rating-v2026 is also a complexity model in this source" in line
    assert registry_files(home) == {}
