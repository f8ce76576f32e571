"""One output object for every command.

People get rich tables and progress bars on a terminal; cron gets plain,
timestamped lines; machines get one JSON document on stdout (``--json``);
GitHub Actions also gets step outputs and a Markdown step summary.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console as RichConsole
from rich.markup import escape


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# the global options `-q/--quiet` and `--no-color`, set once per invocation (cli.main)
_GLOBAL = {"quiet": False, "no_color": False}


def configure(*, quiet: bool = False, no_color: bool = False) -> None:
    """What every Console of this invocation does: ``quiet`` drops progress and info lines
    (warnings, errors and the result stay); ``no_color`` (also NO_COLOR) prints no styles."""
    _GLOBAL.update(quiet=quiet, no_color=no_color)


def _no_color() -> bool:
    # https://no-color.org: NO_COLOR set and not empty
    return _GLOBAL["no_color"] or bool(os.environ.get("NO_COLOR"))


class Console:
    """Renders results, messages and progress in the mode the caller is in."""

    def __init__(
        self, *, json_mode: bool = False, quiet: bool | None = None, command: str | None = None
    ) -> None:
        self.json_mode = json_mode
        self.command = command  # versions the documents `result` prints (bggscore.results)
        self.quiet = _GLOBAL["quiet"] if quiet is None else quiet
        plain: dict[str, Any] = {"color_system": None} if _no_color() else {}
        self.err = RichConsole(stderr=True, highlight=False, soft_wrap=True, **plain)
        self.out = RichConsole(highlight=False, soft_wrap=True, **plain)
        self.interactive = self.err.is_terminal and not json_mode

    # messages (stderr, so stdout stays clean for --json and --format ids)
    def info(self, message: str) -> None:
        if self.quiet:
            return
        if self.interactive:
            self.err.print(message)
        else:
            self._plain(message)

    def warn(self, message: str) -> None:
        if self.interactive:
            self.err.print(f"[yellow]warning:[/] {escape(message)}")
        else:
            self._plain(f"warning: {message}")

    def error(self, message: str) -> None:
        """The one line a failure prints (and, in GitHub Actions, its annotation)."""
        if self.err.is_terminal:
            self.err.print(f"[bold red]error:[/] {escape(message)}")
        else:
            print(f"error: {message}", file=sys.stderr, flush=True)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            # the runner reads workflow commands on stderr as on stdout; stdout may be --json
            print(
                f"::error title=bggscore::{annotation_text(message)}", file=sys.stderr, flush=True
            )

    def _plain(self, message: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = self.err.render_str(message).plain
        print(f"{stamp} {text}", file=sys.stderr, flush=True)

    # results
    def result(self, data: dict[str, Any], render: Callable[[RichConsole], None] | None) -> None:
        """Print the command's result: JSON on stdout, or the human rendering."""
        if self.json_mode:
            if self.command is not None and "schema_version" not in data:
                from bggscore.results import versioned

                data = versioned(self.command, data)
            print(json.dumps(data, default=_default, indent=2, sort_keys=False), flush=True)
        elif render is not None:
            render(self.out)

    def report(self, result: Any, render: Callable[[RichConsole], None] | None) -> None:
        """A command's typed result (bggscore.results): the document or the rendering,
        then its GitHub step outputs and step summary (when running in Actions)."""
        self.result(result.as_dict(), render)
        outputs, summary = result.outputs(), result.summary()
        if outputs:
            self.github_outputs(outputs)
        if summary:
            self.step_summary(summary)

    def lines(self, values: list[Any]) -> None:
        for value in values:
            print(value)

    # progress
    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """Yield ``advance(n)``: a bar on a terminal, a line per step otherwise."""
        if self.interactive and not self.quiet:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=self.err, transient=False) as bar:
                task = bar.add_task(description, total=total)
                yield lambda n: bar.advance(task, n)
            return
        done = 0
        started = time.monotonic()

        def advance(n: int) -> None:
            nonlocal done
            done += n
            rate = done / max(time.monotonic() - started, 1e-9)
            of = f"/{total}" if total is not None else ""
            self.info(f"{description}: {done}{of} ({rate:,.0f}/s)")

        yield advance

    @contextmanager
    def steps(
        self, total: int, lines: bool = True, first: str = ""
    ) -> Iterator[Callable[[str], None]]:
        """Yield ``step(label)`` for work of ``total`` steps, each call starting the next:
        a bar naming the step on a terminal (``first`` until the first step), otherwise a
        line per step (none: ``lines``)."""
        if not (self.interactive and not self.quiet):
            yield self.info if lines else (lambda label: None)
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.err, transient=False) as bar:
            task = bar.add_task(escape(first), total=total)
            begun = False

            def step(label: str) -> None:
                nonlocal begun
                if begun:
                    bar.advance(task, 1)
                begun = True
                bar.update(task, description=escape(label))

            yield step
            if begun:  # the last step is done too (not reached when it failed)
                bar.advance(task, 1)

    # GitHub Actions
    def github_outputs(self, values: dict[str, Any]) -> None:
        """Append ``key=value`` lines to $GITHUB_OUTPUT when running in Actions."""
        lines = []
        for key, value in values.items():
            text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
            if isinstance(value, bool):
                text = str(value).lower()
            if "\n" in text:  # multi-line values need a heredoc delimiter
                marker = f"ghadelim_{uuid.uuid4().hex}"
                lines.append(f"{key}<<{marker}\n{text}\n{marker}\n")
            else:
                lines.append(f"{key}={text}\n")
        _append_to("GITHUB_OUTPUT", "".join(lines))

    def step_summary(self, markdown: str) -> None:
        _append_to("GITHUB_STEP_SUMMARY", markdown.rstrip() + "\n\n")


def annotation_text(message: str) -> str:
    """A workflow command's message, escaped as GitHub's runner unescapes it."""
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def print_whole(out: RichConsole, renderable: Any) -> None:
    """Print a table whole, never a cell cut with "…": on a terminal at its width with long
    cells folded onto more lines, elsewhere (a pipe, a log, cron) at the table's natural
    width, where rich would squeeze it into 80 columns. Every table bggscore prints comes
    through here (tests/cli/test_tables.py checks)."""
    from rich.table import Table

    if isinstance(renderable, Table):
        for column in renderable.columns:
            column.overflow = "fold"  # job ids and names are copied from here: fold, never cut
    if out.is_terminal:
        out.print(renderable)
        return
    from rich.measure import Measurement

    width = out.width
    needed = Measurement.get(out, out.options.update_width(10_000), renderable).maximum
    out.width = max(needed, width)  # print(width=...) would still cap it at out.width
    try:
        out.print(renderable)
    finally:
        out.width = width


def _append_to(variable: str, text: str) -> None:
    """Append to the file an Actions variable names (if set); a bad path is one error line."""
    path = os.environ.get(variable)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        from bggscore.errors import BggscoreError

        raise BggscoreError(
            f"cannot write ${variable} ({path}): {exc.strerror}",
            "the work is done; check the variable, which GitHub Actions sets for each step",
        ) from None


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(out)
