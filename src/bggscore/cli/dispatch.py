"""`bggscore dispatch`: wake the next pipeline stage with a repository or workflow dispatch."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any

import typer

from bggscore.cli.common import JsonOption, state
from bggscore.console import Console


def dispatch(
    ctx: typer.Context,
    repo: Annotated[str, typer.Option(metavar="OWNER/NAME", help="The repository to dispatch to.")],
    event_type: Annotated[
        str | None,
        typer.Argument(
            metavar="EVENT_TYPE",
            help="repository_dispatch event type, 1-100 characters (omit with --workflow).",
            show_default=False,
        ),
    ] = None,
    payload: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY=VALUE",
            help="repository_dispatch: a client_payload string value (repeat).",
        ),
    ] = None,
    payload_json: Annotated[
        str | None,
        typer.Option(
            metavar="JSON",
            help="repository_dispatch: a JSON object merged into client_payload "
            "(--payload wins on a clash).",
        ),
    ] = None,
    workflow: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Send a workflow_dispatch to this workflow file (e.g. score.yml) instead.",
        ),
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option(metavar="REF", help="workflow_dispatch: the branch or tag to run on."),
    ] = None,
    input_: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            metavar="KEY=VALUE",
            help="workflow_dispatch: a workflow input (repeat; at most 25).",
        ),
    ] = None,
    guard_inputs: Annotated[
        bool,
        typer.Option(
            "--guard-inputs",
            help="workflow_dispatch: also send bggscore_hops and bggscore_origin as inputs "
            "(the workflow must declare both).",
        ),
    ] = False,
    max_hops: Annotated[
        int,
        typer.Option(
            min=0, metavar="N", help="Loop guard: refuse to send past this many chained hops."
        ),
    ] = 4,
    unless_event: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="Loop guard: send nothing when this run was triggered by NAME (an event "
            "name or a repository_dispatch event type; repeat).",
        ),
    ] = None,
    if_changed: Annotated[
        str | None,
        typer.Option(
            metavar="FILE|-",
            help="A score/embed/run --json result (- = stdin): send nothing when it "
            "processed fewer than --min-games games.",
        ),
    ] = None,
    min_games: Annotated[
        int, typer.Option(min=0, metavar="N", help="With --if-changed: games needed to send.")
    ] = 1,
    max_wait: Annotated[
        float,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="Seconds the whole dispatch may take: every attempt, slow answers and the "
            "waits between retries included.",
        ),
    ] = 60.0,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the request (token as ***) and send nothing."),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Send a repository_dispatch EVENT_TYPE, or a workflow_dispatch with --workflow.

    \b
      bggscore dispatch EVENT_TYPE --repo OWNER/NAME [--payload KEY=VALUE]... [--payload-json JSON]
      bggscore dispatch --workflow FILE --ref REF --repo OWNER/NAME [--input KEY=VALUE]...

    The token comes from BGGSCORE_GITHUB__TOKEN, else BGGSCORE_GITHUB_TOKEN, else
    GITHUB_TOKEN, else github.token in bggscore.toml; the API from BGGSCORE_GITHUB__API_URL,
    else BGGSCORE_GITHUB_API_URL, else github.api_url. Every payload carries bggscore_hops
    and bggscore_origin: a run started by a dispatch sends hops + 1 and stops past
    --max-hops. Nothing sent is not a failure: it exits 0 and says why (GitHub output
    dispatched=false).
    """
    import sys

    from rich.markup import escape

    from bggscore.dispatch import DispatchOptions, run_dispatch

    options = DispatchOptions(
        repo=repo,
        event_type=event_type,
        payload=tuple(payload or ()),
        payload_json=payload_json,
        workflow=workflow,
        ref=ref,
        inputs=tuple(input_ or ()),
        guard_inputs=guard_inputs,
        max_hops=max_hops,
        unless_events=tuple(unless_event or ()),
        if_changed=if_changed,
        min_games=min_games,
        max_wait=max_wait,
        dry_run=dry_run,
    )
    result = run_dispatch(options, state(ctx).settings(), stdin=sys.stdin)
    console = Console(json_mode=json, command="dispatch")
    for warning in result.warnings:
        console.warn(warning)
    if not result.sent:
        console.info(escape(result.summary()))

    def render(out: Any) -> None:
        if result.request is not None:
            out.print(_describe(result.request), markup=False)
        elif result.sent:
            out.print(result.summary(), markup=False)

    console.result(result.as_dict(), render)
    console.github_outputs({"dispatched": result.sent})
    console.step_summary(f"### bggscore dispatch\n\n{result.summary()}")


def _describe(request: dict[str, Any]) -> str:
    lines = [f"{request['method']} {request['url']}"]
    lines += [f"{name}: {value}" for name, value in request["headers"].items()]
    return "\n".join([*lines, "", jsonlib.dumps(request["body"], indent=2)])
