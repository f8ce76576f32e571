"""Storage backends for the model registry: a local folder or a GCS bucket prefix.

Both expose the same small key/value interface over `/`-separated keys. The registry's
race safety rests on one primitive, `create_exclusive` (atomic create-if-absent): a local
`O_CREAT | O_EXCL` open, or a GCS upload with `if_generation_match=0`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bggscore.errors import RegistryError, UsageError

# Files a LocalStore writes before renaming them into place; never listed as keys.
TEMP_PREFIX = ".tmp-"
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST}
# os.link errors of filesystems without hard links (FAT, some network and FUSE mounts).
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


@runtime_checkable
class Store(Protocol):
    """A flat key space of bytes. Missing keys raise FileNotFoundError on read."""

    uri: str

    def read_bytes(self, key: str) -> bytes: ...

    def write_bytes(self, key: str, data: bytes) -> None: ...

    def create_exclusive(self, key: str, data: bytes) -> bool: ...

    def exists(self, key: str) -> bool: ...

    def list_prefix(self, prefix: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...

    def uri_of(self, key: str) -> str: ...


def check_key(key: str) -> str:
    """Keys are relative, `/`-separated and free of `.`/`..` segments (no escaping the root)."""
    parts = key.split("/")
    if not key or "\\" in key or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid store key {key!r}")
    return key


class LocalStore:
    """A registry folder on the local disk (or a mounted share)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def uri_of(self, key: str) -> str:
        return str(self._path(key))

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        # Permission problems are the user's to fix, so they get a RegistryError, not a traceback.
        try:
            yield
        except OSError as exc:
            if exc.errno not in _NOT_WRITABLE:
                raise
            raise RegistryError(
                f"registry folder {self.root} is not writable ({exc.strerror}); "
                "fix its permissions or choose another registry location"
            ) from exc

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def _write_temp(self, path: Path, data: bytes) -> str:
        """A fully written, fsynced temp file next to `path` (same filesystem)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
        try:
            if hasattr(os, "fchmod"):  # mkstemp makes 0600; others sharing the folder must read
                os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:  # e.g. a full disk: leave no temp file behind
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write atomically: a temp file in the same folder, then os.replace."""
        path = self._path(key)
        with self._writing():
            tmp = self._write_temp(path, data)
            try:
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Create `key` only if absent; False when it already exists.

        A hard link of a complete temp file is atomic create-if-absent that never shows a
        half-written file (a bare O_EXCL open is visible empty until written). Where hard
        links are unsupported, fall back to O_CREAT | O_EXCL.
        """
        path = self._path(key)
        with self._writing():
            tmp = self._write_temp(path, data)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINKS:
                    raise
                return self._create_excl_open(path, data)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return True

    @staticmethod
    def _create_excl_open(path: Path, data: bytes) -> bool:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_prefix(self, prefix: str) -> list[str]:
        """All keys starting with `prefix` (a plain string prefix, like GCS), sorted."""
        folder = prefix.rpartition("/")[0]
        base = self.root.joinpath(*folder.split("/")) if folder else self.root
        if not base.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for file in files:
                if file.startswith(TEMP_PREFIX):
                    continue
                key = file if rel == "." else f"{rel}/{file}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        with self._writing(), contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


CREDENTIALS_HINT = (
    "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
)


def _default_gcs_client() -> Any:
    try:
        # google-cloud-storage ships no py.typed; mypy then misses it in the google.cloud namespace
        from google.cloud import storage  # type: ignore[attr-defined]
    except ImportError as exc:
        raise RegistryError(
            "google-cloud-storage is not installed; install bggscore[gcs] to use a gs:// registry"
        ) from exc
    # no credentials (DefaultCredentialsError) is raised here, and GCSStore._errors, which
    # every client creation runs under, says so naming the gs:// URI
    return storage.Client()


class GCSStore:
    """A registry under `gs://bucket/prefix`. The client is created on first use."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"gs://{bucket}/{self.prefix}" if self.prefix else f"gs://{bucket}"
        self._client_factory = client_factory or _default_gcs_client
        self._client: Any = None

    def uri_of(self, key: str) -> str:
        return f"gs://{self.bucket_name}/{self._blob_name(key)}"

    def _blob_name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _blob(self, key: str) -> Any:
        return self._get_client().bucket(self.bucket_name).blob(self._blob_name(key))

    @contextlib.contextmanager
    def _errors(self, where: str) -> Iterator[None]:
        """Map google.api_core errors: NotFound -> FileNotFoundError, others -> RegistryError;
        credentials that are missing or no longer refresh -> RegistryError saying how to log
        in (a client factory may find out only here, when the client is first used)."""
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as auth

        try:
            yield
        except auth.DefaultCredentialsError as exc:
            raise RegistryError(
                f"no Google credentials found for {where}", CREDENTIALS_HINT
            ) from exc
        except auth.RefreshError as exc:
            raise RegistryError(
                f"the Google credentials were refused or have expired for {where}",
                CREDENTIALS_HINT,
            ) from exc
        except gexc.NotFound as exc:
            raise FileNotFoundError(where) from exc
        except gexc.Forbidden as exc:
            raise RegistryError(
                f"access to {where} was refused ({exc.message}); "
                "check the credentials' permissions on the bucket"
            ) from exc
        except gexc.GoogleAPICallError as exc:
            raise RegistryError(f"GCS request for {where} failed ({exc}); try again") from exc

    def read_bytes(self, key: str) -> bytes:
        with self._errors(self.uri_of(key)):
            return bytes(self._blob(key).download_as_bytes())

    def write_bytes(self, key: str, data: bytes) -> None:
        # A GCS upload is atomic: readers see the old object or the new one, never a mix.
        with self._errors(self.uri_of(key)):
            self._blob(key).upload_from_string(data, content_type="application/octet-stream")

    def create_exclusive(self, key: str, data: bytes) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        with self._errors(self.uri_of(key)):
            try:
                self._blob(key).upload_from_string(
                    data, content_type="application/octet-stream", if_generation_match=0
                )
            except PreconditionFailed:
                return False
        return True

    def exists(self, key: str) -> bool:
        with self._errors(self.uri_of(key)):
            return bool(self._blob(key).exists())

    def list_prefix(self, prefix: str) -> list[str]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        with self._errors(f"gs://{self.bucket_name}/{full}"):
            blobs = self._get_client().list_blobs(self.bucket_name, prefix=full)
            names = [blob.name for blob in blobs]
        start = len(self.prefix) + 1 if self.prefix else 0
        return sorted(name[start:] for name in names)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError), self._errors(self.uri_of(key)):
            self._blob(key).delete()


def open_store(uri: str | None, home: Path) -> Store:
    """`gs://bucket/prefix` -> GCSStore; a path -> LocalStore; None -> `home / "registry"`."""
    if not uri:
        return LocalStore(Path(home) / "registry")
    if uri.startswith("gs://"):
        bucket, _, prefix = uri[len("gs://") :].partition("/")
        if not bucket:
            raise UsageError(f"registry URI {uri!r} has no bucket; use gs://bucket/prefix")
        return GCSStore(bucket, prefix)
    if uri.startswith("file://"):
        return LocalStore(Path(uri[len("file://") :]))
    if "://" in uri:
        raise UsageError(
            f"unsupported registry URI {uri!r}; use a local folder or gs://bucket/prefix"
        )
    return LocalStore(Path(uri))
