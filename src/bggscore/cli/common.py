"""What every command shares: the app state, the one error handler, option types."""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from bggscore.console import Console
from bggscore.console import configure as configure_console
from bggscore.errors import BggscoreError, EnvironmentProblem, UsageError
from bggscore.stages import MAX_WORKERS

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


def _usage_exit(exc: Any, where: str = "bggscore") -> NoReturn:
    """A parse error as one line, like every other error, with where to find the usage
    (the context's command, else ``where``).

    Click prints its usage line, a hint and the error on three lines; scripts and logs
    (cron, CI) are easier to read with the error alone."""
    if isinstance(exc, SHOW_HELP):
        raise exc
    message = _one_line(exc.format_message())
    if message[:2].istitle():  # Click's "No such option" reads "no such option" here
        message = message[0].lower() + message[1:]
    where = exc.ctx.command_path if exc.ctx is not None else where
    message = message.rstrip(".")
    stop = "" if message.endswith("?") else "."  # "Did you mean 'score'?" ends a sentence
    Console().error(f"{message}{stop} See '{where} --help'.")
    sys.exit(exc.exit_code)


# the global options that may also follow the command name, and whether each takes a value
GLOBAL_OPTIONS = {
    "--config": True,
    "--home": True,
    "--engine": True,
    "--debug": False,
    "--no-debug": False,
    "--allow-version-mismatch": False,
    "-q": False,
    "--quiet": False,
    "--no-color": False,
}


def _option_names(command: Any) -> dict[str, bool]:
    """A command's own options (names -> takes a value); Typer may vendor its own Click."""
    names: dict[str, bool] = {}
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", None) != "option":
            continue
        takes_value = not (getattr(param, "is_flag", False) or getattr(param, "count", False))
        for name in (*param.opts, *param.secondary_opts):
            names[name] = takes_value
    return names


def hoist_global_options(root: Any, args: list[str]) -> list[str]:
    """``bggscore score --debug`` as ``bggscore --debug score``: the global options given
    after the command name move in front of it, in the order given (so, as anywhere in
    Click, the last of a repeated option wins).

    The walk follows the command tree and each command's options, so a value (``--name
    --home``), anything after ``--`` and a command's own option of the same name stay put."""
    command = root
    head: list[str] = []  # what comes before the command name (the root's own options)
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            rest += args[i:]
            break
        name, equals, _ = token.partition("=")
        own = _option_names(command)
        if command is not root and name in GLOBAL_OPTIONS and name not in own:
            takes = GLOBAL_OPTIONS[name] and not equals
            if takes and i + 1 == len(args):  # in front, it would take the command's name
                raise USAGE_ERRORS[0](f"Option '{name}' requires an argument.")
            hoisted += args[i : i + 1 + takes]
            i += 1 + takes
            continue
        sub = None if token.startswith("-") else getattr(command, "commands", {}).get(token)
        if sub is not None:  # a command or subcommand name; any other word is an argument
            command = sub
        (head if command is root else rest).append(token)
        if token.startswith("-") and not equals and own.get(name) and i + 1 < len(args):
            (head if command is root else rest).append(args[i + 1])  # its value, as given
            i += 1
        i += 1
    return head + hoisted + rest


class ErrorHandlingGroup(TyperGroup):
    """Turns every BggscoreError into one red line and its exit code.

    Unexpected exceptions are bugs: one line too, and the traceback with --debug.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        try:
            # the root: global options may follow the command name (not while completing a
            # shell word: Click's completion reads the words as typed)
            if parent is None and not extra.get("resilient_parsing"):
                configure_console()  # this invocation's -q/--no-color, once parsed (cli.main)
                args = hoist_global_options(self, list(args))
            return super().make_context(info_name, args, parent=parent, **extra)
        except USAGE_ERRORS as exc:  # the global options
            _usage_exit(exc)

    def invoke(self, ctx: Any) -> Any:
        path = command_path(self, ctx)  # before Click takes the names off the context
        try:
            with registry_warnings_to_console():
                return super().invoke(ctx)
        except USAGE_ERRORS as exc:  # a command's options and arguments, unknown commands
            # an option missing its value comes without a context: the command named it
            _usage_exit(exc, " ".join(p for p in (ctx.info_name or "bggscore", path) if p))
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
            Console().error(interrupted(path))
            sys.exit(130)
        except Exception as exc:
            debug = _debug(ctx)
            if debug:
                traceback.print_exc()
            problem = environment_problem(exc, ctx.find_root().obj)
            if problem is not None:  # the user's files or machine: what to do, not a bug
                Console().error(_one_line(str(problem)))
                sys.exit(problem.exit_code)
            hint = (  # with --debug the traceback is already there: no "rerun with --debug"
                "the traceback is above: report it"
                if debug
                else "rerun with --debug for the traceback and report it"
            )
            Console().error(_one_line(f"unexpected {type(exc).__name__}: {exc}") + f" ({hint})")
            sys.exit(1)


MEMORY_HINT = (
    "lower --batch-size (scoring.batch_size), --workers or --intervals, or run where more "
    "memory is free"
)
# errno -> what it means for the user's file
FILE_ERRORS = {
    errno.EACCES: ("permission denied", "check the permissions of the file and its folder"),
    errno.EPERM: ("permission denied", "check the permissions of the file and its folder"),
    errno.EROFS: ("the file system is read-only", "point --home or the setting at a writable one"),
    errno.ENOSPC: ("the disk is full", "free some space, then rerun"),
    getattr(errno, "EDQUOT", errno.ENOSPC): (
        "the disk quota is used up",
        "free some space, then rerun",
    ),
    errno.EIO: (
        "an I/O error (the disk or the file may be damaged)",
        "check the disk, or restore the file from a backup",
    ),
}


def environment_problem(exc: BaseException, app_state: Any = None) -> EnvironmentProblem | None:
    """An exception no bggscore code turned into an error, when it is the user's files or
    machine at fault (memory exhausted, a file that cannot be read or written, a damaged
    warehouse file): one line saying what to do. None: a bug."""
    if isinstance(exc, MemoryError):
        return EnvironmentProblem("ran out of memory", MEMORY_HINT)
    if isinstance(exc, OSError) and exc.errno in FILE_ERRORS:
        what, fix = FILE_ERRORS[exc.errno]
        where = f" {exc.filename}" if exc.filename else ""
        return EnvironmentProblem(f"cannot read or write{where}: {what}", fix)
    if type(exc).__module__.lstrip("_") == "duckdb":  # escaped the engine's own wrapping
        from bggscore.warehouse.duckdb_engine import DAMAGE, damaged, disk_full

        settings = getattr(app_state, "_settings", None)
        path = getattr(settings, "warehouse_path", None) or Path("warehouse.duckdb")
        if DAMAGE.search(str(exc)):
            return damaged(path, exc)
        if "no space left" in str(exc).lower():
            return disk_full(path, exc)
    return None


# what Ctrl-C leaves behind, by command; the rest commit batch by batch
INTERRUPTED = {
    "models train": "interrupted; the models trained before it are registered, the one in "
    "training is not: rerun `bggscore models train` for it",
    "models import": "interrupted; the versions imported before it are kept: rerun the import "
    "for the rest (what is already there is skipped)",
    "models register": "interrupted; nothing was registered",
    "warehouse load": "interrupted; nothing was loaded (a load commits in one transaction): "
    "rerun it",
}
READ_ONLY = (
    "detect-changes",
    "similar",
    "compare",
    "warehouse status",
    "warehouse check",
    "models list",
    "models show",
    "models verify",
    "config show",
    "report",  # its page is written whole or not at all
)
BATCHES = "interrupted; committed batches are kept, rerun to finish"


def interrupted(command: str) -> str:
    """The line Ctrl-C prints: what was interrupted and what is kept."""
    if command in READ_ONLY:
        return "interrupted; nothing was changed"
    return INTERRUPTED.get(command, BATCHES)


def command_path(root: Any, ctx: Any) -> str:
    """The command the root context runs (``models train``), from the names it was given."""
    names: list[str] = []
    command = root
    # Click >= 8.2 keeps the command's name in _protected_args (protected_args warns)
    given = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
    for token in [*given, *ctx.args]:
        sub = getattr(command, "commands", {}).get(token)
        if sub is None:
            break
        names.append(token)
        command = sub
    return " ".join(names)


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
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="While a run writes the embedded warehouse (which nothing can read then), wait "
        "for it to end instead of exiting 1.",
    ),
]


def reader_waiting(console: Console, wait: bool) -> Callable[[str], None] | None:
    """``--wait`` of a command that reads: one line saying whom it waits for."""
    if not wait:
        return None
    return lambda writer: console.info(f"waiting for {writer} to finish writing the warehouse")


WorkersOption = Annotated[
    int | None,
    typer.Option(
        help="Processes that run the models, each loading them once from the registry "
        "(sha256 checked), while this one reads, joins and writes every batch; about one "
        "per core. More than 1 makes the default batch smaller, so each gets several "
        "[default: 1, in this process; setting scoring.workers].",
        show_default=False,
    ),
]


def check_workers(value: int | None) -> int | None:
    """``--workers N``: a count of processes, refused before anything runs."""
    if value is not None and not 1 <= value <= MAX_WORKERS:
        raise UsageError(
            f"--workers {value}: give a number of processes from 1 to {MAX_WORKERS} "
            "(1 runs the models in this process)"
        )
    return value


DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Read and compute as usual, write nothing: print what each read bills "
        "(BigQuery's own dry run; the read then runs, and is billed) and the rows each "
        "table would get.",
    ),
]


@contextlib.contextmanager
def dry_run_ledger(enabled: bool) -> Iterator[Any]:
    """``--dry-run``: warehouses count their writes instead of making them (the ledger)."""
    from bggscore.warehouse.command import dry_run

    with dry_run(enabled) as ledger:
        yield ledger


def report_dry_run(console: Console, data: dict[str, Any], ledger: Any, render: Any) -> None:
    """A dry run's result: the command's document with what it read and would write."""
    from bggscore.wording import counted

    found = ledger.as_dict()

    def rendered(out: Any) -> None:
        render(out)
        out.print("dry run: nothing was written")
        for read in found["reads"]:
            size = read["bytes"]
            billed = "n/a (not BigQuery)" if size is None else f"{size:,} bytes"
            out.print(f"  read ({read['stage'] or 'checks'}): {billed}")
        if found["bytes"] is not None:
            out.print(f"  reads bill {found['bytes']:,} bytes in all")
        for table, rows in found["writes"].items():
            out.print(f"  would write {counted(rows, 'row')} to {table}")

    console.result({**data, "dry_run": found}, rendered)
