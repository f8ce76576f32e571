"""Model references: the `name`, `name@alias` and `name:3` strings users type.

A reference names one model and optionally pins it, by an alias (`champion`) or by a
version number. Parsing is strict so a typo fails here with a clear message instead of
silently resolving to another model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bggscore.errors import UsageError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
VERSION_PATTERN = re.compile(r"^[1-9][0-9]{0,8}$")


def check_name(name: str) -> str:
    """Return `name` if it is a valid model name, else raise UsageError."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise UsageError(
            f"invalid model name {name!r}: use 1-63 lower-case letters, digits, '_', '.' or '-',"
            " starting with a letter or digit"
        )
    return name


def check_alias(alias: str) -> str:
    """Return `alias` if it is a valid alias, else raise UsageError."""
    if not isinstance(alias, str) or not ALIAS_PATTERN.fullmatch(alias):
        raise UsageError(
            f"invalid alias {alias!r}: use 1-32 lower-case letters, digits, '_' or '-',"
            " starting with a letter"
        )
    return alias


def check_version(version: int) -> int:
    """Return `version` if it is a positive int, else raise UsageError."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UsageError(f"invalid model version {version!r}: use a whole number from 1 up")
    return version


@dataclass(frozen=True)
class ModelRef:
    """A model name, optionally pinned to a version or to an alias (never both)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.version is not None and self.alias is not None:
            raise UsageError(
                f"reference {self.name!r} has both a version and an alias; give one of them"
            )
        if self.version is not None:
            check_version(self.version)
        if self.alias is not None:
            check_alias(self.alias)

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def parse_ref(text: str) -> ModelRef:
    """Parse `name`, `name@alias` or `name:3` into a ModelRef (UsageError when malformed)."""
    if not isinstance(text, str) or not text:
        raise UsageError("empty model reference: use name, name@alias or name:version")
    if "@" in text and ":" in text:
        raise UsageError(
            f"invalid model reference {text!r}: use name, name@alias or name:version, not both"
        )
    if "@" in text:
        name, _, alias = text.partition("@")
        return ModelRef(check_name(name), alias=check_alias(alias))
    if ":" in text:
        name, _, version = text.partition(":")
        if not VERSION_PATTERN.fullmatch(version):  # `$` alone lets "\n" through
            raise UsageError(
                f"invalid model version {version!r} in {text!r}: use a whole number from 1 up,"
                " e.g. rating:3"
            )
        return ModelRef(check_name(name), version=int(version))
    return ModelRef(check_name(text))
