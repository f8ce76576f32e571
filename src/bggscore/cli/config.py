"""`bggscore config show`: each effective setting and where it came from."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from bggscore.cli.common import JsonOption, state
from bggscore.console import Console

if TYPE_CHECKING:
    from bggscore.results import ConfigResult

app = typer.Typer(help="Show the effective settings.", no_args_is_help=True)


@app.command()
def show(ctx: typer.Context, json: JsonOption = False) -> None:
    """Each effective setting, its value and where it came from: flag, env, file or default.

    Secrets are shown as ***. Settings that cannot work are refused here as by every
    command (one error line, exit 2).
    """
    from bggscore.results import ConfigResult
    from bggscore.settings import explain_settings, unknown_variables

    app_state = state(ctx)
    settings = app_state.settings()  # validates, and warns about unknown variables
    path, effective = explain_settings(settings, app_state.config, app_state.overrides)
    result = ConfigResult(
        config_file=None if path is None else str(path),
        settings=[(e.key, e.value, e.origin.source, e.origin.name) for e in effective],
        ignored_variables=unknown_variables(dict(os.environ)),
    )
    Console(json_mode=json).result(result.as_dict(), lambda out: _render(out, result))


def _render(out: Any, result: ConfigResult) -> None:
    """One line per setting, ``key = value  (source)``, never cut: easy to grep."""
    out.print(f"config file: {escape(result.config_file or 'none')}", soft_wrap=True)
    width = max(len(key) for key, *_ in result.settings)
    for key, value, source, origin in result.settings:
        shown = "(not set)" if value is None else str(value)
        where = source if origin is None else f"{source} {origin}"
        out.print(escape(f"{key:<{width}} = {shown}  ({where})"), soft_wrap=True)
