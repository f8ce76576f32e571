"""Pickles made outside bggscore (production's pipeline.pkl): which scikit-learn made them,
their own code on the import path, and unpickling with errors that say what to do.

Only ever called on bytes whose sha256 was just checked (Registry.load), or on the user's own
files while importing them (which is no more trusted than the user running Python on them).
"""

from __future__ import annotations

import pickletools
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bggscore.errors import RegistryError
from bggscore.registry.integrity import package_version

SKLEARN_KEY = "_sklearn_version"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STRINGS = {
    "UNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_NO_PUSH = {"FRAME", "PROTO", "MEMOIZE", *_PUTS}


def pickled_sklearn_versions(data: bytes) -> list[str]:
    """The scikit-learn versions the pickle's estimators were pickled under, in the order
    they appear, read from its opcodes: nothing is unpickled.

    scikit-learn writes ``_sklearn_version`` into each of its estimators' pickled state and
    pops it again when unpickling, so the loaded objects no longer carry it: the pickle is
    where it is."""
    found: list[str] = []
    memo: dict[Any, Any] = {}
    top: Any = None  # the value of the last push, when it was a string
    previous: Any = None  # the push before it
    try:
        for opcode, arg, _ in pickletools.genops(data):
            name = opcode.name
            if name == "MEMOIZE":
                memo[len(memo)] = top
            elif name in _PUTS:
                memo[arg] = top
            if name in _NO_PUSH:
                continue
            value = arg if name in _STRINGS else memo.get(arg) if name in _GETS else None
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            if previous == SKLEARN_KEY and isinstance(value, str) and value not in found:
                found.append(value)
            previous, top = value, value
    except (ValueError, TypeError):  # not a pickle (or a truncated one): nothing to read
        return found
    return found


def estimators(model: Any) -> Iterator[Any]:
    """``model`` and every estimator inside it: pipeline steps, column transformers, unions."""
    seen: set[int] = set()
    pending = [model]
    while pending:
        item = pending.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        for attr, position in (("steps", 1), ("transformers_", 1), ("transformer_list", 1)):
            for entry in getattr(item, attr, None) or ():
                if isinstance(entry, tuple) and len(entry) > position:
                    pending.append(entry[position])
        for attr in ("estimator", "estimator_", "regressor_", "classifier_"):
            inner = getattr(item, attr, None)
            if inner is not None and not isinstance(inner, (str, type)):
                pending.append(inner)


def sklearn_version_of(data: bytes, model: Any = None) -> str | None:
    """The scikit-learn version a pickle was made with: from its bytes, else from a
    ``_sklearn_version`` attribute one of its (unpickled) estimators kept."""
    versions = pickled_sklearn_versions(data)
    if versions:
        return versions[0]
    for item in estimators(model) if model is not None else ():
        value = getattr(item, SKLEARN_KEY, None)
        if isinstance(value, str):
            return value
    return None


def _top_level_names(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    names = set()
    for entry in folder.iterdir():
        name = entry.stem if entry.suffix == ".py" and entry.is_file() else entry.name
        if (entry.is_dir() or entry.suffix == ".py") and _IDENTIFIER.fullmatch(name):
            names.add(name)
    return names


def _purge_namespace(name: str, folder: Path) -> None:
    """Forget a cached namespace package ``name`` that does not come from ``folder``: a
    repository's own ``src/`` (no __init__.py) imports as a namespace package ``src`` and
    would shadow the model code's real package ``src``."""
    module = sys.modules.get(name)
    if module is None or getattr(module, "__file__", None) is not None:
        return  # not imported, or a regular module: never unloaded under running code
    paths = [str(p) for p in getattr(module, "__path__", ())]
    if str(folder / name) in paths:
        return
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def add_code_paths(paths: Sequence[str | Path]) -> None:
    """Put the model code's folders first on the import path, for this process (a model may
    import more of its package while it predicts, so they stay there)."""
    for path in reversed(list(paths)):
        folder = Path(path).expanduser().resolve()
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        for name in _top_level_names(folder):
            _purge_namespace(name, folder)


CODE_PATHS_SETTING = "registry.code_paths (env BGGSCORE_REGISTRY__CODE_PATHS)"


def missing_module_message(
    label: str, module: str | None, code_paths: Sequence[Any], with_flag: bool = False
) -> str:
    """``with_flag``: the command has --code-path (`models import`); other commands load
    the recorded folders and the setting's, so the setting is what to change."""
    top = (module or "?").split(".")[0]
    if top == "pandas":
        return (
            f"{label} needs pandas, which is not installed; install it with "
            "`pip install 'bggscore[adopt]'`"
        )
    looked = ""
    if code_paths:
        folders = [f"{p}{'' if Path(p).is_dir() else ' (no such folder)'}" for p in code_paths]
        looked = f" (looked in {', '.join(folders)} too)"
    where = (
        f"with --code-path DIR (setting {CODE_PATHS_SETTING})"
        if with_flag
        else f"to the setting {CODE_PATHS_SETTING}"
    )
    return (
        f"{label} needs the module {module!r}, which is not installed{looked}; install what "
        f"provides it (the model code's own requirements), or add the folder holding {top!r} "
        f"{where}"
    )


def unpickle(
    data: bytes, label: str, code_paths: Sequence[str | Path] = (), with_flag: bool = False
) -> Any:
    """``pickle.loads(data)`` with the model's code folders on the import path; a missing
    module or a pickle this environment cannot rebuild is a RegistryError saying what to do
    (``with_flag``: the command has --code-path).

    scikit-learn's own warning about another version is not repeated here: the caller has
    already refused or warned (``check_sklearn_version``)."""
    import pickle

    add_code_paths(code_paths)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = pickle.loads(data)
        except ModuleNotFoundError as exc:
            raise RegistryError(
                missing_module_message(label, exc.name, code_paths, with_flag)
            ) from exc
        except Exception as exc:
            made_with = sklearn_version_of(data)
            hint = (
                f"; it was made with scikit-learn {made_with}: "
                f"`pip install scikit-learn=={made_with}`"
                if made_with and made_with != package_version("scikit-learn")
                else "; install the package versions it was made with"
            )
            raise RegistryError(
                f"{label} could not be unpickled ({type(exc).__name__}: {exc}){hint}"
            ) from exc
    for warning in caught:
        if type(warning.message).__name__ != "InconsistentVersionWarning":
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return model
