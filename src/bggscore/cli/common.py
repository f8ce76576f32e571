"""What every command shares: the app state, the one error handler, option types."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from bggscore.console import Console
from bggscore.errors import BggscoreError

if TYPE_CHECKING:
    from bggscore.settings import Settings


@dataclass
class AppState:
    """Global flags, and settings built once on first use."""

    config: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    debug: bool = False
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            # imported here: pydantic-settings is the slowest import on the --help path
            from bggscore.settings import load_settings, unknown_variables

            self._settings = load_settings(self.config, self.overrides)
            warn_unknown_variables(unknown_variables(dict(os.environ)))
        return self._settings


def warn_unknown_variables(names: list[str]) -> None:
    for name in names:
        Console().warn(f"{name} is not a bggscore setting (nesting uses '__'); ignored")


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _passthrough() -> tuple[type[BaseException], ...]:
    """Typer's own control-flow exceptions (Typer >= 0.2x vendors Click; older ones use it)."""
    found: list[type[BaseException]] = [typer.Exit, typer.Abort]
    base = (
        getattr(typer.exceptions, "TyperException", None) if hasattr(typer, "exceptions") else None
    )
    if base is not None:
        found.append(base)
    try:
        import click

        found += [click.exceptions.Exit, click.ClickException, click.Abort]
    except ImportError:
        pass
    return tuple(found)


PASSTHROUGH = _passthrough()


def _click_errors(name: str) -> tuple[type[BaseException], ...]:
    """One of Click's exception classes, from Typer's vendored Click and from Click."""
    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


# parse errors: bad or missing options and arguments, unknown commands
USAGE_ERRORS = _click_errors("UsageError")
# a group called without a command: Click shows its help (not an error to shorten)
SHOW_HELP = _click_errors("NoArgsIsHelpError")


def _usage_exit(exc: Any) -> NoReturn:
    """A parse error as one line, like every other error, with where to find the usage.

    Click prints its usage line, a hint and the error on three lines; scripts and logs
    (cron, CI) are easier to read with the error alone."""
    if isinstance(exc, SHOW_HELP):
        raise exc
    message = _one_line(exc.format_message())
    if message[:2].istitle():  # Click's "No such option" reads "no such option" here
        message = message[0].lower() + message[1:]
    where = exc.ctx.command_path if exc.ctx is not None else "bggscore"
    message = message.rstrip(".")
    stop = "" if message.endswith("?") else "."  # "Did you mean 'score'?" ends a sentence
    Console().error(f"{message}{stop} See '{where} --help'.")
    sys.exit(exc.exit_code)


class ErrorHandlingGroup(TyperGroup):
    """Turns every BggscoreError into one red line and its exit code.

    Unexpected exceptions are bugs: one line too, and the traceback with --debug.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except USAGE_ERRORS as exc:  # the global options
            _usage_exit(exc)

    def invoke(self, ctx: Any) -> Any:
        try:
            with registry_warnings_to_console():
                return super().invoke(ctx)
        except USAGE_ERRORS as exc:  # a command's options and arguments, unknown commands
            _usage_exit(exc)
        except BggscoreError as exc:
            if _debug(ctx):
                traceback.print_exc()
            Console().error(_one_line(str(exc)))
            sys.exit(exc.exit_code)
        except PASSTHROUGH:  # exits and aborts: Typer handles those itself
            raise
        except BrokenPipeError:
            # the reader (e.g. `| head`) stopped early: the work is done, stay quiet
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except KeyboardInterrupt:
            Console().error("interrupted; committed batches are kept, rerun to finish")
            sys.exit(130)
        except Exception as exc:
            if _debug(ctx):
                traceback.print_exc()
            Console().error(
                _one_line(f"unexpected {type(exc).__name__}: {exc}")
                + " (rerun with --debug for the traceback and report it)"
            )
            sys.exit(1)


def _is_registry_warning(category: type[Warning]) -> bool:
    # only a loaded registry can warn, so its module is imported by then (and not before:
    # importing it here would slow every command's start-up)
    integrity = sys.modules.get("bggscore.registry.integrity")
    return integrity is not None and issubclass(category, integrity.RegistryWarning)


@contextlib.contextmanager
def registry_warnings_to_console() -> Iterator[None]:
    """A RegistryWarning (e.g. a model registered under another scikit-learn) as one
    ``warning:`` line on stderr, when it is raised, instead of Python's warning with its
    file, line and source; other warnings keep Python's format."""
    with warnings.catch_warnings():  # restores showwarning on the way out
        shown = warnings.showwarning

        def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if _is_registry_warning(category):
                Console().warn(_one_line(str(message)))
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


def _debug(ctx: Any) -> bool:
    obj = ctx.find_root().obj
    return bool(getattr(obj, "debug", False))


def flag_overrides(**flags: Any) -> dict[str, Any]:
    """Turn dotted flag names (``warehouse.engine``) into nested overrides, dropping None."""
    out: dict[str, Any] = {}
    for dotted, value in flags.items():
        if value is None:
            continue
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
