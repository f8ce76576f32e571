"""A small stand-in for the GitHub Actions runner, enough to play the workflow templates.

It reads a workflow as data and runs its jobs in `needs:` order: `if:` gates evaluated
(paths, strings, ==, !=, &&, ||, !), `${{ }}` in `env:` and `outputs:` expanded from the
contexts (github, inputs, vars, secrets, steps, needs), and every `run:` step executed under
`bash --noprofile --norc -eo pipefail` as GitHub does, with $GITHUB_OUTPUT read back into
the step's outputs. `bggscore` on PATH is the real CLI of this checkout. What needs Google or
the network is not run: `uses:` steps, the install step, and the steps the caller stubs by
id (it gives their outputs). Exact enough to find the bugs these tests look for: a hop count
lost on an edge, a blank input a script refuses, a gate that lets a no-op through.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.S)
TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\))"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*))"
)


def evaluate(expression: str, context: Mapping[str, Any]) -> bool:
    """A GitHub `if:` expression made of paths, strings, ==, !=, &&, || and !.

    GitHub adds `success() &&` to an `if:` without a status function; callers check the
    explicit part. Missing paths read as '' (GitHub's null compares equal to '')."""
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    python: list[str] = []
    position = 0
    while position < len(text.rstrip()):
        match = TOKEN.match(text, position)
        assert match, f"cannot read {text[position:]!r} in {expression!r}"
        position = match.end()
        if match["str"] is not None:
            python.append(repr(match["str"][1:-1].replace("''", "'")))
        elif match["op"] is not None:
            python.append({"&&": " and ", "||": " or ", "!": " not "}.get(match["op"], match["op"]))
        else:
            name = match["name"]
            assert "(" not in text[position : position + 1], f"function call in {expression!r}"
            literals = {"true": "True", "false": "False", "null": "None"}
            python.append(literals.get(name, repr(context.get(name, ""))))
    # Only repr() literals, and/or/not, ==, != and parentheses reach eval (built above).
    return bool(eval("".join(python), {"__builtins__": {}}, {}))


def value_of(expression: str, context: Mapping[str, Any]) -> str:
    """`a || b || 'literal'`: the first operand that is not empty, as a string."""
    for part in expression.split("||"):
        part = part.strip()
        if part.startswith("'") and part.endswith("'"):
            value: Any = part[1:-1].replace("''", "'")
        else:
            assert re.fullmatch(r"[A-Za-z_][\w.-]*", part), f"cannot expand {expression!r}"
            value = context.get(part, "")
        if isinstance(value, bool):
            value = "true" if value else "false"
        if value not in ("", None):
            return str(value)
    return ""


def expand(text: Any, context: Mapping[str, Any]) -> str:
    return EXPRESSION.sub(lambda m: value_of(m.group(1), context), str(text))


def bggscore_bin(folder: Path) -> Path:
    """A folder holding `bggscore`: the real CLI of this checkout, run by this Python."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "bggscore"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bggscore "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    return folder


@dataclass
class StepRun:
    job: str
    name: str
    code: int
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    """What one workflow run did: each job's result and outputs, each step executed."""

    results: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    steps: list[StepRun] = field(default_factory=list)

    def failed(self) -> list[StepRun]:
        return [s for s in self.steps if s.code != 0]


def needs_of(job: Mapping[str, Any]) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


def is_install(step: Mapping[str, Any]) -> bool:
    return str(step.get("name", "")).startswith("Install bggscore")


def run_workflow(
    doc: Mapping[str, Any],
    event: Mapping[str, Any],
    event_name: str,
    work: Path,
    *,
    repository: str,
    stubs: Mapping[str, Mapping[str, str]],
    variables: Mapping[str, str],
    secrets: Mapping[str, str],
    runner_env: Mapping[str, str],
    called_with: Mapping[str, str] | None = None,
    run_id: int = 1,
) -> Run:
    """Run ``doc`` for ``event``; ``stubs`` maps a step id to the outputs it would write.
    A reusable workflow runs in its caller's event, with the caller's ``with:`` as inputs
    (``called_with``)."""
    work.mkdir(parents=True, exist_ok=True)
    event_path = work / f"event-{run_id}.json"
    event_path.write_text(json.dumps(event), encoding="utf-8")
    # the inputs context: a workflow_dispatch's inputs, or for a called workflow its caller's
    # `with:` (never the caller's own inputs)
    inputs = event.get("inputs") if event_name == "workflow_dispatch" else {}
    if called_with is not None:
        inputs = called_with
    base: dict[str, Any] = {
        "github.event_name": event_name,
        "github.repository": repository,
        "github.ref": "refs/heads/main",
        "github.ref_name": "main",
        "github.token": secrets.get("GITHUB_TOKEN", ""),
        **{f"inputs.{k}": v for k, v in (inputs or {}).items()},
        **{f"vars.{k}": v for k, v in variables.items()},
        **{f"secrets.{k}": v for k, v in secrets.items()},
    }
    workflow_env = {k: expand(v, base) for k, v in (doc.get("env") or {}).items()}
    jobs = doc["jobs"]
    order = TopologicalSorter({j: set(needs_of(jobs[j])) for j in jobs}).static_order()
    run = Run()
    for job_id in order:
        job = jobs[job_id]
        context = dict(base)
        for need in needs_of(job):
            context[f"needs.{need}.result"] = run.results[need]
            for key, value in run.outputs.get(need, {}).items():
                context[f"needs.{need}.outputs.{key}"] = value
        upstream_ok = all(run.results[n] == "success" for n in needs_of(job))
        gate = job.get("if")
        if not upstream_ok or (gate is not None and not evaluate(str(gate), context)):
            run.results[job_id] = "skipped"
            continue
        context.update({f"env.{k}": v for k, v in workflow_env.items()})
        result = "success"
        for index, step in enumerate(job.get("steps", [])):
            step_id = step.get("id", f"step{index}")
            if step_id in stubs:
                for key, value in stubs[step_id].items():
                    context[f"steps.{step_id}.outputs.{key}"] = value
                continue
            if "run" not in step or is_install(step):
                continue  # actions and the install need the network: not played here
            env = {k: expand(v, context) for k, v in (step.get("env") or {}).items()}
            done = run_step(
                str(step["run"]),
                work / f"{run_id}-{job_id}-{index}",
                {
                    **runner_env,
                    **workflow_env,
                    **env,
                    "GITHUB_EVENT_PATH": str(event_path),
                    "GITHUB_EVENT_NAME": event_name,
                    "GITHUB_REPOSITORY": repository,
                    "GITHUB_REF_NAME": "main",
                    "GITHUB_RUN_ID": str(run_id),
                },
            )
            done.job, done.name = job_id, str(step.get("name", step_id))
            run.steps.append(done)
            if done.code != 0:
                result = "failure"
                break
            for key, value in done.outputs.items():
                context[f"steps.{step_id}.outputs.{key}"] = value
        run.results[job_id] = result
        run.outputs[job_id] = {
            key: expand(value, context) for key, value in (job.get("outputs") or {}).items()
        }
    return run


def run_step(script: str, folder: Path, env: Mapping[str, str]) -> StepRun:
    """One `run:` script as GitHub runs `shell: bash`, in its own folder."""
    folder.mkdir(parents=True, exist_ok=True)
    output, summary = folder / "github_output", folder / "step_summary"
    output.touch()
    summary.touch()
    path = folder / "step.sh"
    path.write_text(script, encoding="utf-8")
    full = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(folder),
        "PYTHONPATH": str(REPO / "src"),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "RUNNER_TEMP": str(folder),
        **env,
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
        cwd=folder,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return StepRun("", "", done.returncode, done.stdout, done.stderr, read_outputs(output))


def read_outputs(path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT: key=value lines and key<<DELIMITER blocks."""
    outputs: dict[str, str] = {}
    lines = iter(path.read_text(encoding="utf-8").splitlines())
    for line in lines:
        if "<<" in line and "=" not in line.split("<<", 1)[0]:
            key, marker = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == marker:
                    break
                body.append(inner)
            outputs[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            outputs[key] = value
    return outputs
