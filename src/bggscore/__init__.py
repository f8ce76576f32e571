"""bggscore: incremental, in-process scoring of BoardGameGeek prediction models."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # resolved on first use: importlib.metadata is slow on the `bggscore --help` path
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("bggscore")
        except PackageNotFoundError:  # running from a source tree without an install
            return "0+unknown"
    raise AttributeError(f"module 'bggscore' has no attribute {name!r}")
