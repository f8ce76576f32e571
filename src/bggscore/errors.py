"""The one error family of bggscore.

Every failure a user can cause or fix is a ``BggscoreError``: the CLI prints its
message (and hint) on one line in red and exits with ``exit_code``. Anything else
is a bug and shows a traceback only with ``--debug``.
"""

from __future__ import annotations


class BggscoreError(Exception):
    """A failure with a message meant for the user."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(BggscoreError):
    """Bad flags or arguments: nothing was done."""

    exit_code = 2


class ConfigError(BggscoreError):
    """Settings that cannot work (unknown engine, missing project, bad file)."""

    exit_code = 2


class InputError(BggscoreError):
    """A file or value given by the user cannot be used (bad parquet, bad ids)."""

    exit_code = 2


class WarehouseError(BggscoreError):
    """The warehouse is missing tables, locked, unreachable or a write failed."""

    exit_code = 1


class WarehouseBusy(WarehouseError):
    """Another process is writing the embedded warehouse, which DuckDB lets no other
    process open meanwhile, not even to read (``pid``: the writer, when DuckDB says)."""

    def __init__(self, message: str, hint: str | None = None, pid: int | None = None) -> None:
        super().__init__(message, hint)
        self.pid = pid


class EnvironmentProblem(BggscoreError):
    """The user's files or machine, not bggscore: a damaged warehouse file, a file that
    cannot be read or written, memory exhausted. The message says what to do."""

    exit_code = 1


class ConcurrentUpdateError(WarehouseError):
    """BigQuery aborted a statement because another one changed the table meanwhile."""


class RegistryError(BggscoreError):
    """Unknown model, bad reference, or an artifact that fails its checks."""

    exit_code = 1


class UnknownModelError(RegistryError):
    """A model, version or alias someone named (a flag, an argument, a setting) is not in
    the registry: nothing was done, and the reference is theirs to fix."""

    exit_code = 2


class IntegrityError(RegistryError):
    """An artifact's sha256 does not match its registration: never unpickled."""

    exit_code = 1


class WorkerError(BggscoreError):
    """A scoring worker process (`score --workers N`) failed or died: the run stopped."""

    exit_code = 1


class DispatchError(BggscoreError):
    """GitHub refused or could not be reached."""

    exit_code = 1


class LockedError(BggscoreError):
    """Another bggscore process holds the lock."""

    exit_code = 1
