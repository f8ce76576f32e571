"""Fixtures for the registry tests: a fake GCS client, both stores, and model factories."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

# Until the package is installed in the venv, import it from the source tree.
if importlib.util.find_spec("bggscore") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from bggscore.registry import GCSStore, LocalStore, Registry, Store, clear_cache


class FakeBlob:
    """Enough of google.cloud.storage.Blob for GCSStore, with real google.api_core errors."""

    def __init__(self, objects: dict[str, bytes], name: str) -> None:
        self.objects = objects
        self.name = name

    def download_as_bytes(self) -> bytes:
        from google.api_core.exceptions import NotFound

        if self.name not in self.objects:
            raise NotFound(f"No such object: {self.name}")
        return self.objects[self.name]

    def upload_from_string(
        self, data: bytes, content_type: str | None = None, if_generation_match: int | None = None
    ) -> None:
        from google.api_core.exceptions import PreconditionFailed

        if if_generation_match == 0 and self.name in self.objects:
            raise PreconditionFailed(f"At least one of the pre-conditions failed: {self.name}")
        self.objects[self.name] = bytes(data)

    def exists(self) -> bool:
        return self.name in self.objects

    def delete(self) -> None:
        from google.api_core.exceptions import NotFound

        if self.name not in self.objects:
            raise NotFound(f"No such object: {self.name}")
        del self.objects[self.name]


class FakeBucket:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def blob(self, name: str) -> FakeBlob:
        return FakeBlob(self.objects, name)


class FakeGCSClient:
    """An in-memory bucket store; `objects[bucket][blob name] = bytes`."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, bytes]] = {}

    def bucket(self, name: str) -> FakeBucket:
        return FakeBucket(self.objects.setdefault(name, {}))

    def list_blobs(self, bucket: str, prefix: str = "") -> list[Any]:
        names = sorted(self.objects.get(bucket, {}))
        return [SimpleNamespace(name=name) for name in names if name.startswith(prefix)]


@pytest.fixture
def fake_gcs() -> FakeGCSClient:
    return FakeGCSClient()


@pytest.fixture(params=["local", "gcs"])
def store(request: pytest.FixtureRequest, tmp_path: Path, fake_gcs: FakeGCSClient) -> Store:
    """The same behaviour suite runs on a local folder and on a (fake) GCS bucket."""
    if request.param == "local":
        return LocalStore(tmp_path / "registry")
    return GCSStore("models-bucket", "prod/models", client_factory=lambda: fake_gcs)


@pytest.fixture
def registry(store: Store) -> Iterator[Registry]:
    clear_cache()
    yield Registry(store)
    clear_cache()


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[Registry]:
    clear_cache()
    yield Registry(LocalStore(tmp_path / "registry"))
    clear_cache()


def _make_model(slope: float = 2.0) -> Any:
    """A LinearRegression fitted on three rows with named columns `a` and `b`."""
    import polars as pl
    from sklearn.linear_model import LinearRegression

    frame = pl.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 0.0]})
    return LinearRegression().fit(frame, [slope * a for a in frame["a"]])


def _make_frame() -> Any:
    import polars as pl

    return pl.DataFrame({"a": [4.0, 5.0], "b": [1.0, 0.0]})


def _make_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "description": "ARD rating model",
        "training": {"train_through": 2022, "tune_year": 2023, "test_year": 2024},
        "metrics": {"rmse": 0.71},
        "output": {"column": "predicted_rating", "clip": [1, 10]},
        "experiment": "rating-ard",
    }
    fields.update(overrides)
    return fields


# Factories are handed out as fixtures so test modules need not import this conftest.
@pytest.fixture
def make_model() -> Callable[..., Any]:
    return _make_model


@pytest.fixture
def make_frame() -> Callable[[], Any]:
    return _make_frame


@pytest.fixture
def make_fields() -> Callable[..., dict[str, Any]]:
    """Keyword fields for Registry.register with realistic training metadata."""
    return _make_fields
