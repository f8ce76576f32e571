"""Stores: one behaviour suite for both backends, plus GCS calls against a mocked client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bggscore.errors import RegistryError, UsageError
from bggscore.registry import GCSStore, LocalStore, Store, open_store


def test_write_read_exists_delete(store: Store) -> None:
    assert not store.exists("rating/x/v1/artifact.joblib")
    store.write_bytes("rating/x/v1/artifact.joblib", b"first")
    store.write_bytes("rating/x/v1/artifact.joblib", b"second")
    assert store.exists("rating/x/v1/artifact.joblib")
    assert store.read_bytes("rating/x/v1/artifact.joblib") == b"second"
    store.delete("rating/x/v1/artifact.joblib")
    store.delete("rating/x/v1/artifact.joblib")  # deleting a missing key is not an error
    assert not store.exists("rating/x/v1/artifact.joblib")


def test_read_of_a_missing_key_raises_file_not_found(store: Store) -> None:
    with pytest.raises(FileNotFoundError):
        store.read_bytes("rating/missing/v1/registration.json")


def test_create_exclusive_creates_once(store: Store) -> None:
    assert store.create_exclusive("rating/x/v1/.claim", b"mine") is True
    assert store.create_exclusive("rating/x/v1/.claim", b"theirs") is False
    assert store.read_bytes("rating/x/v1/.claim") == b"mine"


def test_list_prefix_is_a_plain_prefix_and_sorted(store: Store) -> None:
    for key in ["rating/x2/v1/a", "rating/x/v2/a", "rating/x/v1/a", "hurdle/x/v1/a"]:
        store.write_bytes(key, b"")
    assert store.list_prefix("rating/x/") == ["rating/x/v1/a", "rating/x/v2/a"]
    assert store.list_prefix("rating/x") == ["rating/x/v1/a", "rating/x/v2/a", "rating/x2/v1/a"]
    assert store.list_prefix("rating/") == ["rating/x/v1/a", "rating/x/v2/a", "rating/x2/v1/a"]
    assert len(store.list_prefix("")) == 4
    assert store.list_prefix("users_rated/") == []


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "../x", "a/./b", "a\\b"])
def test_keys_cannot_escape_the_root(store: Store, key: str) -> None:
    with pytest.raises(ValueError):
        store.write_bytes(key, b"x")


def test_local_store_writes_atomically_and_lists_no_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("a/b.json", b"{}")
    (tmp_path / "a" / ".tmp-leftover").write_bytes(b"partial")
    assert store.list_prefix("a/") == ["a/b.json"]
    assert store.uri_of("a/b.json") == str(tmp_path / "a" / "b.json")
    store.create_exclusive("a/c.json", b"{}")
    for name in ("b.json", "c.json"):  # readable by others sharing the registry folder
        assert (tmp_path / "a" / name).stat().st_mode & 0o044 == 0o044


def test_local_store_on_an_unwritable_root_raises_registry_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the registry folder should be")
    store = LocalStore(blocker / "registry")
    with pytest.raises(RegistryError, match="is not writable"):
        store.write_bytes("rating/x/v1/.claim", b"")
    with pytest.raises(RegistryError, match="is not writable"):
        store.create_exclusive("rating/x/v1/.claim", b"")


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions"
)
def test_local_store_on_a_read_only_folder_raises_registry_error(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(RegistryError, match="is not writable"):
            LocalStore(root).write_bytes("rating/x/v1/.claim", b"")
    finally:
        root.chmod(0o755)


def test_local_store_reads_an_absent_root_as_empty(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "nowhere")
    assert store.list_prefix("rating/") == []
    assert not store.exists("rating/x/v1/registration.json")


# -- GCS against a mocked client: the exact calls matter --------------------------------------


def make_mock_client(mocker: Any) -> tuple[Any, Any]:
    client = mocker.Mock(name="client")
    blob = client.bucket.return_value.blob.return_value
    return client, blob


def test_gcs_client_is_created_lazily(mocker: Any) -> None:
    factory = mocker.Mock()
    store = GCSStore("bucket", "prod/models", client_factory=factory)
    assert store.uri == "gs://bucket/prod/models"
    factory.assert_not_called()
    store.exists("rating/x/v1/registration.json")
    store.exists("rating/x/v2/registration.json")
    factory.assert_called_once_with()


def test_gcs_create_exclusive_uses_generation_zero(mocker: Any) -> None:
    client, blob = make_mock_client(mocker)
    store = GCSStore("bucket", "prod/models/", client_factory=lambda: client)
    assert store.create_exclusive("rating/x/v1/.claim", b"claim") is True
    client.bucket.assert_called_with("bucket")
    client.bucket.return_value.blob.assert_called_with("prod/models/rating/x/v1/.claim")
    blob.upload_from_string.assert_called_once_with(
        b"claim", content_type="application/octet-stream", if_generation_match=0
    )


def test_gcs_create_exclusive_maps_precondition_failed_to_false(mocker: Any) -> None:
    from google.api_core.exceptions import PreconditionFailed

    client, blob = make_mock_client(mocker)
    blob.upload_from_string.side_effect = PreconditionFailed("exists")
    store = GCSStore("bucket", "", client_factory=lambda: client)
    assert store.create_exclusive("rating/x/v1/.claim", b"claim") is False
    client.bucket.return_value.blob.assert_called_with("rating/x/v1/.claim")


def test_gcs_list_prefix_strips_the_store_prefix(mocker: Any) -> None:
    client, _ = make_mock_client(mocker)
    client.list_blobs.return_value = [
        SimpleNamespace(name="p/rating/x/v2/a"),
        SimpleNamespace(name="p/rating/x/v1/a"),
    ]
    store = GCSStore("bucket", "p", client_factory=lambda: client)
    assert store.list_prefix("rating/x/") == ["rating/x/v1/a", "rating/x/v2/a"]
    client.list_blobs.assert_called_once_with("bucket", prefix="p/rating/x/")


def test_gcs_not_found_and_forbidden_are_mapped(mocker: Any) -> None:
    from google.api_core.exceptions import Forbidden, NotFound

    client, blob = make_mock_client(mocker)
    store = GCSStore("bucket", "p", client_factory=lambda: client)
    blob.download_as_bytes.side_effect = NotFound("gone")
    with pytest.raises(FileNotFoundError, match=r"gs://bucket/p/rating/x/v1/artifact\.joblib"):
        store.read_bytes("rating/x/v1/artifact.joblib")
    blob.upload_from_string.side_effect = Forbidden("no storage.objects.create")
    with pytest.raises(RegistryError, match="was refused"):
        store.write_bytes("rating/x/v1/artifact.joblib", b"x")
    blob.delete.side_effect = NotFound("gone")
    store.delete("rating/x/v1/artifact.joblib")


# -- open_store -------------------------------------------------------------------------------


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    default = open_store(None, tmp_path)
    assert isinstance(default, LocalStore)
    assert default.root == (tmp_path / "registry").resolve()
    gcs = open_store("gs://bucket/prod/models", tmp_path)
    assert isinstance(gcs, GCSStore)
    assert (gcs.bucket_name, gcs.prefix, gcs.uri) == ("bucket", "prod/models", gcs.uri)
    assert isinstance(open_store("gs://bucket", tmp_path), GCSStore)
    local = open_store(str(tmp_path / "reg"), tmp_path)
    assert isinstance(local, LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}/reg", tmp_path), LocalStore)


@pytest.mark.parametrize("uri", ["gs://", "gs:///prefix", "s3://bucket/models"])
def test_open_store_refuses_bad_uris(tmp_path: Path, uri: str) -> None:
    with pytest.raises(UsageError):
        open_store(uri, tmp_path)


def test_importing_the_registry_stays_cheap() -> None:
    import bggscore

    src = str(Path(bggscore.__file__).resolve().parents[1])
    code = (
        "import sys, bggscore.registry; "
        "print(sorted(m for m in ('sklearn', 'joblib', 'google.cloud.storage',"
        " 'google.api_core', 'numpy') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


# -- credentials ------------------------------------------------------------------------------
NO_CREDENTIALS = "Your default credentials were not found. To set up Application Default..."


def test_no_google_credentials_is_one_registry_error(mocker: Any) -> None:
    from google.auth.exceptions import DefaultCredentialsError

    mocker.patch("google.cloud.storage.Client", side_effect=DefaultCredentialsError(NO_CREDENTIALS))
    store = GCSStore("bucket", "p")  # the default client, created on first use
    for use in (lambda: store.read_bytes("a"), lambda: store.list_prefix("rating/")):
        with pytest.raises(RegistryError) as caught:
            use()
        text = str(caught.value)
        assert "no Google credentials found" in text and "\n" not in text
        assert "gcloud auth application-default login" in text
        assert "GOOGLE_APPLICATION_CREDENTIALS" in text


def test_credentials_a_factory_or_a_request_fails_on_are_registry_errors(mocker: Any) -> None:
    from google.auth.exceptions import DefaultCredentialsError, RefreshError

    def no_credentials() -> Any:
        raise DefaultCredentialsError(NO_CREDENTIALS)

    with pytest.raises(RegistryError, match="no Google credentials found for gs://b/p/a"):
        GCSStore("b", "p", client_factory=no_credentials).exists("a")
    client, blob = make_mock_client(mocker)
    blob.download_as_bytes.side_effect = RefreshError("Reauthentication is needed.")
    with pytest.raises(RegistryError, match="refused or have expired") as caught:
        GCSStore("b", "p", client_factory=lambda: client).read_bytes("a")
    assert "gcloud auth application-default login" in str(caught.value)
