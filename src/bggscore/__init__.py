"""bggscore: incremental, in-process scoring of BoardGameGeek prediction models."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bggscore")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"
