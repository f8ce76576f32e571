"""Artifact bytes: serialising, hashing and verified loading.

Unpickling runs arbitrary code, so a registered artifact is only ever unpickled from bytes
whose sha256 has just been checked against its registration, and from those same bytes in
memory (never by re-opening the file, which could have changed in between).
"""

from __future__ import annotations

import hashlib
import io
import platform
import warnings
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bggscore.errors import InputError, IntegrityError, RegistryError
from bggscore.stages import GRAPH, SCORE_STAGES

# joblib's zlib level 3: a good size/speed trade-off for scikit-learn pipelines. An artifact
# is only stored compressed when that saves at least a fifth of its size: a trained linear
# model is mostly a float64 posterior covariance, which zlib barely shrinks (4%) but takes
# 40 ms to inflate on every load, in every scoring run.
COMPRESS = 3
MIN_SAVING = 0.2


class RegistryWarning(UserWarning):
    """A model loads but may not behave as when it was registered (e.g. other scikit-learn)."""


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of re-hashing one artifact (nothing is unpickled), or a problem with an
    alias (``alias`` set; ``version`` is where it points, None when unreadable) or with a
    version folder."""

    model_type: str
    name: str
    version: int | None
    ok: bool
    expected_sha256: str | None = None
    actual_sha256: str | None = None
    problem: str | None = None
    alias: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}@{self.alias}" if self.alias else f"{self.name}:{self.version}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def short_hash(digest: str) -> str:
    return f"{digest[:12]}…"


def package_version(package: str) -> str | None:
    """The installed version of `package` (from metadata, without importing it), or None."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def dump_artifact(model: object) -> bytes:
    """Serialise `model` with joblib into bytes, compressed only where that pays."""
    import joblib

    def dump(compress: int) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(model, buffer, compress=compress)
        return buffer.getvalue()

    plain, packed = dump(0), dump(COMPRESS)
    return packed if len(packed) <= (1 - MIN_SAVING) * len(plain) else plain


def verify_sha256(data: bytes, expected_sha256: str, label: str) -> None:
    """IntegrityError unless `data` hashes to `expected_sha256`: the check before unpickling."""
    actual = sha256_hex(data)
    if actual != expected_sha256:
        raise IntegrityError(
            f"artifact for {label} failed its sha256 check (expected "
            f"{short_hash(expected_sha256)}, got {short_hash(actual)}); "
            "re-register the model or restore the file"
        )


def load_verified(data: bytes, expected_sha256: str, label: str) -> Any:
    """Unpickle joblib `data` only if its sha256 is `expected_sha256` (IntegrityError
    otherwise)."""
    verify_sha256(data, expected_sha256, label)
    import joblib

    try:
        return joblib.load(io.BytesIO(data))
    except Exception as exc:  # a verified artifact that will not load: a version mismatch
        raise RegistryError(
            f"artifact for {label} could not be unpickled ({type(exc).__name__}: {exc}); "
            "install the package versions it was registered with"
        ) from exc


def check_model_object(model: object, label: str) -> None:
    """A registered model must have a callable `predict` or `transform`."""
    if not any(callable(getattr(model, attr, None)) for attr in ("predict", "transform")):
        raise RegistryError(
            f"{label} is a {type(model).__name__} with neither predict nor transform; "
            "register a fitted estimator or pipeline"
        )


# What scoring calls on each outcome's model (scoring/predict.py): the hurdle is a
# classification (its probability), every other outcome a regression. Embedding models are
# bggscore's own classes and only need to be models.
CLASSIFIERS = ("hurdle",)
REGRESSORS = tuple(t for t in GRAPH.model_types(SCORE_STAGES) if t not in CLASSIFIERS)


def check_model_kind(model: object, model_type: str, label: str) -> None:
    """Refuse (InputError) what scoring could not call as a `model_type` model: anything
    without predict or transform, a hurdle model without predict_proba, an outcome
    regressor without predict."""
    if not any(callable(getattr(model, attr, None)) for attr in ("predict", "transform")):
        raise InputError(
            f"{label} is a {type(model).__name__} with neither predict nor transform; "
            "register a fitted estimator or pipeline"
        )
    if model_type in CLASSIFIERS and not callable(getattr(model, "predict_proba", None)):
        raise InputError(
            f"{label} is a {type(model).__name__} without predict_proba, so it cannot be a "
            f"{model_type} model (scoring reads its probability); register a fitted classifier"
        )
    if model_type in REGRESSORS and not callable(getattr(model, "predict", None)):
        raise InputError(
            f"{label} is a {type(model).__name__} without predict, so it cannot be a "
            f"{model_type} model; register a fitted regressor"
        )


def read_user_joblib(path: Path) -> Any:
    """Load a joblib file the user brought to register.

    This unpickles the user's own file, which is no more trusted or untrusted than the user
    running Python on it themselves; artifacts already in the registry go through
    `load_verified` instead.
    """
    import joblib

    if not path.is_file():
        raise InputError(f"model file {path} does not exist; check the path")
    try:
        return joblib.load(path)
    except ImportError as exc:  # a real pickle whose classes are not importable here
        raise InputError(
            f"{path} needs code that is not installed ({exc}); install the package that "
            "defines the model's classes"
        ) from exc
    except Exception as exc:
        raise InputError(
            f"{path} is not a joblib file ({type(exc).__name__}); "
            "save the model with joblib.dump(model, path)"
        ) from exc


def environment_versions() -> dict[str, str | None]:
    """Versions that decide whether a pickle loads and predicts the same way later."""
    from bggscore import __version__

    return {
        "python": platform.python_version(),
        "sklearn": package_version("scikit-learn"),
        "joblib": package_version("joblib"),
        "numpy": package_version("numpy"),
        "bggscore": __version__,
    }


def warn_on_version_drift(label: str, registered_versions: dict[str, str | None]) -> None:
    """RegistryWarning when the model was registered under another scikit-learn."""
    registered = registered_versions.get("sklearn")
    installed = package_version("scikit-learn")
    if registered and installed and registered != installed:
        warnings.warn(
            f"{label} was registered with scikit-learn {registered} but {installed} is "
            f"installed; predictions may differ: retrain it or install scikit-learn=={registered}",
            RegistryWarning,
            stacklevel=3,  # the caller of Registry.load
        )


def check_sklearn_version(label: str, made_with: str | None, allow: bool) -> None:
    """Refuse (RegistryError) a pickle made with another scikit-learn than the installed one,
    before unpickling it; with ``allow``, warn as for any other version drift and go on."""
    installed = package_version("scikit-learn")
    if not made_with or not installed or made_with == installed:
        return
    if allow:
        warn_on_version_drift(label, {"sklearn": made_with})
        return
    raise RegistryError(
        f"{label} was made with scikit-learn {made_with} but {installed} is installed, "
        f"and a pickle may not load or predict the same under another version: install it "
        f"with `pip install scikit-learn=={made_with}`, or try anyway with "
        "--allow-version-mismatch (setting registry.allow_version_mismatch)"
    )
