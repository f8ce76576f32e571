"""The GitHub Actions templates in workflows/: parsed, never grepped.

Checks the chain (order, needs, if: gates evaluated over every outcome), triggers, concurrency,
permissions, pinning, that no `${{ }}` reaches a `run:` script, the workflow_run depth, and runs
the `run:` scripts themselves under bash with a stub `bggscore` to see what they would call.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to parse the workflow templates")

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"
CRON = WORKFLOWS / "cron"

PIPELINE = "bggscore-pipeline.yml"
COMPLEXITY = "score-complexity.yml"
MAIN = "score-main.yml"
EMBED = "embed.yml"
WAREHOUSE = "warehouse-notify.yml"
ML_SIDE = (PIPELINE, COMPLEXITY, MAIN, EMBED)
TEMPLATES = (*ML_SIDE, WAREHOUSE)

SHA_USES = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
MAX_WORKFLOW_RUN_DEPTH = 3  # GitHub: A -> B -> C -> D runs; a fifth workflow never starts


# -- loading --------------------------------------------------------------------------------
def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(doc, dict), name
    return doc


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    return {name: load(name) for name in TEMPLATES}


def triggers(doc: dict[str, Any]) -> dict[str, Any]:
    """`on:` (YAML 1.1 reads the bare key `on` as True)."""
    value = doc["on"] if "on" in doc else doc[True]
    return {value: None} if isinstance(value, str) else dict(value)


def jobs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return doc["jobs"]


def needs(job: dict[str, Any]) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


def steps(doc: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for job_id, job in jobs(doc).items():
        for index, step in enumerate(job.get("steps", [])):
            yield job_id, index, step


def job_order(doc: dict[str, Any]) -> list[str]:
    graph = {job_id: set(needs(job)) for job_id, job in jobs(doc).items()}
    order = list(TopologicalSorter(graph).static_order())
    # static_order is one valid order; make it deterministic: file order among ready jobs
    position = {job_id: i for i, job_id in enumerate(jobs(doc))}
    return sorted(order, key=lambda j: (depth_of(graph, j), position[j]))


def depth_of(graph: dict[str, set[str]], node: str) -> int:
    return 0 if not graph[node] else 1 + max(depth_of(graph, n) for n in graph[node])


def walk(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))
    else:
        yield path, node


def commands(script: str) -> list[list[str]]:
    """Simple commands of a run script (continuations joined), as shlex tokens."""
    joined = re.sub(r"\\\n", " ", script)
    out = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            out.append(shlex.split(stripped, comments=True))
        except ValueError:
            continue
    return out


def bggscore_calls(doc: dict[str, Any], job_id: str) -> list[list[str]]:
    found = []
    for step in jobs(doc)[job_id].get("steps", []):
        for tokens in commands(step.get("run", "")):
            if tokens[:1] == ["bggscore"] and tokens[1:2] != ["--version"]:
                found.append(tokens)
    return found


# -- a tiny evaluator for the if: gates -----------------------------------------------------
TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\))"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*))"
)


def evaluate(expression: str, context: dict[str, Any]) -> bool:
    """Evaluate a GitHub `if:` expression made of paths, strings, ==, !=, &&, || and !.

    GitHub adds `success() &&` to an `if:` that has no status function; the callers check the
    explicit part. Missing paths read as '' (GitHub's null compares equal to '').
    """
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


def test_the_evaluator_reads_github_expressions() -> None:
    context = {"needs.a.result": "success", "needs.a.outputs.changed": "false"}
    assert evaluate("needs.a.result == 'success'", context)
    assert not evaluate(
        "${{ needs.a.result == 'success' && needs.a.outputs.changed == 'true' }}", context
    )
    assert evaluate("!(needs.a.outputs.changed == 'true')", context)
    assert evaluate("needs.b.result != 'success'", context)


# -- every template -------------------------------------------------------------------------
def test_the_templates_are_all_there() -> None:
    found = {p.name for p in WORKFLOWS.glob("*.yml")}
    assert found == set(TEMPLATES)
    for name in TEMPLATES:
        doc = load(name)
        assert doc.get("name"), name
        assert triggers(doc), name
        assert jobs(doc), name


@pytest.mark.parametrize("name", TEMPLATES)
def test_header_comment_says_what_and_how_to_install(name: str) -> None:
    head = (WORKFLOWS / name).read_text(encoding="utf-8").split("\nname:", 1)[0]
    assert head.startswith("# ")
    assert "What it does" in head
    assert "How to install" in head


@pytest.mark.parametrize("name", TEMPLATES)
def test_workflow_permissions_are_read_only(name: str, docs: dict[str, Any]) -> None:
    assert docs[name]["permissions"] == {"contents": "read"}


@pytest.mark.parametrize("name", TEMPLATES)
def test_job_permissions_are_least_privilege(name: str, docs: dict[str, Any]) -> None:
    for job_id, job in jobs(docs[name]).items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{name}:{job_id} has no job-level permissions"
        uses = [step.get("uses", "") for step in job.get("steps", [])]
        authenticates = any(u.startswith("google-github-actions/auth@") for u in uses)
        dispatches_workflow = any(
            "--workflow" in call and call[1] == "dispatch"
            for call in bggscore_calls(docs[name], job_id)
        )
        expected = {"contents": "read"}
        if authenticates:
            expected["id-token"] = "write"
        if dispatches_workflow:
            expected["actions"] = "write"
        assert permissions == expected, f"{name}:{job_id}"


@pytest.mark.parametrize("name", TEMPLATES)
def test_concurrency_never_cancels_a_running_job(name: str, docs: dict[str, Any]) -> None:
    concurrency = docs[name]["concurrency"]
    assert concurrency["group"]
    assert concurrency["cancel-in-progress"] is False
    for job_id, job in jobs(docs[name]).items():
        if "concurrency" in job:
            assert job["concurrency"].get("cancel-in-progress") is False, f"{name}:{job_id}"


def test_the_ml_side_shares_one_concurrency_group(docs: dict[str, Any]) -> None:
    """One scoring stage at a time across both forms: no double scoring, no stage races."""
    groups = {docs[name]["concurrency"]["group"] for name in ML_SIDE}
    assert groups == {"bggscore-scoring"}
    assert docs[WAREHOUSE]["concurrency"]["group"] not in groups


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_action_is_pinned_to_a_commit_sha(name: str, docs: dict[str, Any]) -> None:
    lines = (WORKFLOWS / name).read_text(encoding="utf-8").splitlines()
    for job_id, index, step in steps(docs[name]):
        if "uses" not in step:
            continue
        uses = step["uses"]
        assert SHA_USES.match(uses), f"{name}:{job_id}[{index}] {uses} is not pinned to a SHA"
        line = next(raw for raw in lines if raw.strip().endswith(uses) or f"{uses} #" in raw)
        assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), f"no version comment: {line}"
    for job_id, job in jobs(docs[name]).items():
        assert "uses" not in job or job["uses"].startswith("./"), f"{name}:{job_id}"


def test_each_action_has_one_sha_everywhere(docs: dict[str, Any]) -> None:
    seen: dict[str, set[str]] = {}
    for doc in docs.values():
        for _, _, step in steps(doc):
            if "uses" in step:
                action, sha = step["uses"].split("@")
                seen.setdefault(action, set()).add(sha)
    assert seen, "no actions found"
    assert all(len(shas) == 1 for shas in seen.values()), seen


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_expression_inside_any_run_script(name: str, docs: dict[str, Any]) -> None:
    for job_id, index, step in steps(docs[name]):
        if "run" in step:
            assert "${{" not in step["run"], f"{name}:{job_id}[{index}] expands ${{{{ }}}} in run"
    for path, value in walk(docs[name]):
        if "run" in path and isinstance(value, str):
            assert "${{" not in value, f"{name}:{'.'.join(map(str, path))}"


@pytest.mark.parametrize("name", TEMPLATES)
def test_event_values_reach_scripts_only_through_env(name: str, docs: dict[str, Any]) -> None:
    """inputs.*, github.event.*, secrets.* appear only in env: values or if: conditions."""
    risky = re.compile(r"(?<![\w.])(inputs\.|github\.event\.|secrets\.|github\.head_ref)")
    for path, value in walk(docs[name]):
        if path[-1:] == ("if",) or not isinstance(value, str) or "${{" not in value:
            continue
        if risky.search(value):
            where = ".".join(map(str, path))
            assert "env" in path, f"{name}:{where} uses an event value outside env:"


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_job_has_a_timeout(name: str, docs: dict[str, Any]) -> None:
    for job_id, job in jobs(docs[name]).items():
        timeout = job.get("timeout-minutes")
        assert isinstance(timeout, int) and 0 < timeout <= 360, f"{name}:{job_id}"


@pytest.mark.parametrize("name", TEMPLATES)
def test_google_auth_is_keyless_and_from_vars(name: str, docs: dict[str, Any]) -> None:
    for _, _, step in steps(docs[name]):
        if step.get("uses", "").startswith("google-github-actions/auth@"):
            given = step["with"]
            assert set(given) == {"workload_identity_provider", "service_account"}
            assert given["workload_identity_provider"].startswith("${{ vars.")
            assert given["service_account"].startswith("${{ vars.")


@pytest.mark.parametrize("name", TEMPLATES)
def test_bggscore_comes_from_pypi_at_a_pinned_version(name: str, docs: dict[str, Any]) -> None:
    doc = docs[name]
    assert re.fullmatch(r"\d+\.\d+\.\d+", doc["env"]["BGGSCORE_VERSION"])
    for job_id, job in jobs(doc).items():
        installs = [
            tokens
            for step in job.get("steps", [])
            for tokens in commands(step.get("run", ""))
            if tokens[:4] == ["python", "-m", "pip", "install"]
        ]
        if bggscore_calls(doc, job_id):
            assert installs, f"{name}:{job_id} runs bggscore without installing it"
        for tokens in installs:
            specs = [t for t in tokens if t.startswith("bggscore")]
            assert specs and all(
                re.fullmatch(r"bggscore(\[gcs\])?==\$\{BGGSCORE_VERSION\}", s) for s in specs
            ), tokens
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False


@pytest.mark.parametrize("name", TEMPLATES)
def test_scripts_run_under_bash_with_pipefail(name: str, docs: dict[str, Any]) -> None:
    assert docs[name]["defaults"]["run"]["shell"] == "bash"


# -- the one-workflow pipeline --------------------------------------------------------------
def test_pipeline_triggers(docs: dict[str, Any]) -> None:
    on = triggers(docs[PIPELINE])
    assert on["repository_dispatch"]["types"] == ["dataform_complete"]
    inputs = on["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"start_year", "end_year", "use_change_detection", "max_games"}
    detection = inputs["use_change_detection"]
    if detection["type"] == "boolean":
        assert detection["default"] is True
    else:
        assert detection["type"] == "choice"
        assert set(detection["options"]) == {"true", "false"} and detection["default"] == "true"
    assert [entry["cron"] for entry in on["schedule"]], "no cron fallback"


def test_pipeline_chain_order(docs: dict[str, Any]) -> None:
    pipeline = jobs(docs[PIPELINE])
    assert job_order(docs[PIPELINE]) == ["detect", "score", "embed", "notify"]
    assert needs(pipeline["score"]) == ["detect"]
    assert "score" in needs(pipeline["embed"])
    assert "embed" in needs(pipeline["notify"])


def outcomes(previous: str) -> Iterator[dict[str, Any]]:
    for result in ("success", "failure", "cancelled", "skipped"):
        for changed in ("true", "false", ""):
            for full in ("true", "false"):
                yield {
                    f"needs.{previous}.result": result,
                    "needs.detect.outputs.changed": changed,
                    "needs.detect.outputs.full": full,
                }


@pytest.mark.parametrize(
    ("job_id", "previous"), [("score", "detect"), ("embed", "score"), ("notify", "embed")]
)
def test_pipeline_gates_on_success_and_changed(
    job_id: str, previous: str, docs: dict[str, Any]
) -> None:
    condition = jobs(docs[PIPELINE])[job_id]["if"]
    for context in outcomes(previous):
        expected = context[f"needs.{previous}.result"] == "success" and (
            context["needs.detect.outputs.changed"] == "true"
            or context["needs.detect.outputs.full"] == "true"
        )
        assert evaluate(condition, context) is expected, (job_id, context)


def test_pipeline_embeds_text_before_games(docs: dict[str, Any]) -> None:
    calls = run_job(docs[PIPELINE], "embed", FULL="false")
    kinds = [call[call.index("--kind") + 1] for call in calls if call[1] == "embed"]
    assert kinds == ["text", "game"]
    assert [call[1] for call in calls] == ["embed", "embed", "report"]


def test_pipeline_detect_output_feeds_the_gates(docs: dict[str, Any]) -> None:
    detect = jobs(docs[PIPELINE])["detect"]
    assert detect["outputs"]["changed"] == "${{ steps.detect.outputs.changed }}"
    assert detect["outputs"]["full"] == "${{ steps.inputs.outputs.full }}"
    (call,) = bggscore_calls(docs[PIPELINE], "detect")
    assert call[:2] == ["bggscore", "detect-changes"]


# -- the split form -------------------------------------------------------------------------
def test_split_root_triggers(docs: dict[str, Any]) -> None:
    on = triggers(docs[COMPLEXITY])
    assert on["repository_dispatch"]["types"] == ["dataform_complete"]
    assert {"start_year", "end_year", "use_change_detection", "max_games"} <= set(
        on["workflow_dispatch"]["inputs"]
    )
    assert on["schedule"][0]["cron"]


def test_split_main_follows_complexity_by_workflow_run(docs: dict[str, Any]) -> None:
    run = triggers(docs[MAIN])["workflow_run"]
    assert run["workflows"] == [docs[COMPLEXITY]["name"]]
    assert run["types"] == ["completed"]
    assert run["branches"]


def test_split_main_runs_only_after_a_successful_upstream(docs: dict[str, Any]) -> None:
    condition = jobs(docs[MAIN])["main"]["if"]
    assert "github.event.workflow_run.conclusion == 'success'" in condition
    base = {
        "github.event_name": "workflow_run",
        "github.event.workflow_run.event": "repository_dispatch",
        "github.event.workflow_run.head_repository.full_name": "o/ml",
        "github.repository": "o/ml",
    }
    for conclusion in ("success", "failure", "cancelled", "skipped", "timed_out", "neutral"):
        context = {**base, "github.event.workflow_run.conclusion": conclusion}
        assert evaluate(condition, context) is (conclusion == "success"), conclusion
    fork = {**base, "github.event.workflow_run.conclusion": "success"}
    assert not evaluate(
        condition, {**fork, "github.event.workflow_run.head_repository.full_name": "x/y"}
    )
    assert not evaluate(condition, {**fork, "github.event.workflow_run.event": "pull_request"})
    assert evaluate(condition, {"github.event_name": "workflow_dispatch"})


def test_split_stages_run_in_dependency_order(docs: dict[str, Any]) -> None:
    """complexity -> main -> text embeddings -> game embeddings -> notify, across files."""
    sequence = []
    for name in split_workflow_order(docs):
        for job_id in job_order(docs[name]):
            for call in run_job(docs[name], job_id, FULL="false"):
                if call[1] == "score":
                    sequence.append(call[call.index("--stage") + 1])
                elif call[1] == "embed":
                    sequence.append(call[call.index("--kind") + 1])
                elif call[1] == "dispatch" and "--workflow" not in call:
                    sequence.append(f"dispatch {call[2]}")
    assert sequence == ["complexity", "main", "text", "game", "dispatch predictions_complete"]


def test_split_jobs_gate_on_the_previous_job(docs: dict[str, Any]) -> None:
    for name, job_id, previous in [
        (MAIN, "handoff", "main"),
        (EMBED, "games", "text"),
        (EMBED, "notify", "games"),
    ]:
        job = jobs(docs[name])[job_id]
        assert previous in needs(job)
        for result in ("success", "failure", "cancelled", "skipped"):
            assert evaluate(job["if"], {f"needs.{previous}.result": result}) is (
                result == "success"
            )


def test_split_handoff_matches_the_embed_inputs(docs: dict[str, Any]) -> None:
    (call,) = bggscore_calls(docs[MAIN], "handoff")
    assert call[:2] == ["bggscore", "dispatch"]
    target = call[call.index("--workflow") + 1]
    assert target == EMBED
    declared = set(triggers(docs[EMBED])["workflow_dispatch"]["inputs"])
    sent = {call[i + 1].split("=", 1)[0] for i, token in enumerate(call) if token == "--input"}
    assert sent <= declared
    assert "--guard-inputs" in call
    assert {"bggscore_hops", "bggscore_origin"} <= declared


def split_workflow_order(docs: dict[str, Any]) -> list[str]:
    """The split form's workflows in the order they run, from the edges between them."""
    edges = chain_edges(docs)
    order = [COMPLEXITY]
    while True:
        following = [child for parent, child, _ in edges if parent == order[-1]]
        if not following:
            return order
        assert len(following) == 1, following
        order.append(following[0])


# -- the workflow_run depth -----------------------------------------------------------------
def chain_edges(
    docs: dict[str, Any], names: tuple[str, ...] = ML_SIDE
) -> list[tuple[str, str, str]]:
    """(upstream file, downstream file, 'workflow_run' | 'dispatch') between ML templates."""
    by_name = {docs[name]["name"]: name for name in names}
    edges = []
    for name in names:
        run = triggers(docs[name]).get("workflow_run")
        if run:
            for upstream in run["workflows"]:
                assert upstream in by_name, f"{name} waits for an unknown workflow {upstream!r}"
                edges.append((by_name[upstream], name, "workflow_run"))
        for job_id in jobs(docs[name]):
            for call in bggscore_calls(docs[name], job_id):
                if call[1] == "dispatch" and "--workflow" in call:
                    edges.append((name, call[call.index("--workflow") + 1], "dispatch"))
    return edges


def workflow_run_depth(docs: dict[str, Any], names: tuple[str, ...] = ML_SIDE) -> dict[str, int]:
    """Levels of workflow_run above each workflow; a dispatch is a new event (depth 0)."""
    edges = chain_edges(docs, names)
    depth: dict[str, int] = {}

    def of(name: str, seen: tuple[str, ...] = ()) -> int:
        assert name not in seen, f"cycle: {(*seen, name)}"
        if name not in depth:
            parents = [(p, kind) for p, child, kind in edges if child == name]
            levels = [of(p, (*seen, name)) + 1 for p, kind in parents if kind == "workflow_run"]
            depth[name] = max(levels, default=0)
        return depth[name]

    for name in names:
        of(name)
    return depth


def test_workflow_run_chain_stays_within_githubs_limit(docs: dict[str, Any]) -> None:
    depth = workflow_run_depth(docs)
    assert max(depth.values()) <= MAX_WORKFLOW_RUN_DEPTH
    # and with room to spare: complexity -> main is the only workflow_run level
    assert depth == {PIPELINE: 0, COMPLEXITY: 0, MAIN: 1, EMBED: 0}


def test_depth_counter_sees_a_too_long_chain() -> None:
    fake = {}
    names = [f"w{i}.yml" for i in range(5)]
    for i, name in enumerate(names):
        on: dict[str, Any] = {"workflow_dispatch": None}
        if i:
            on = {"workflow_run": {"workflows": [f"w{i - 1}"], "types": ["completed"]}}
        fake[name] = {"name": f"w{i}", "on": on, "jobs": {"j": {"steps": []}}}
    depth = workflow_run_depth(fake, tuple(names))
    assert max(depth.values()) == 4 > MAX_WORKFLOW_RUN_DEPTH


# -- notification and loop guard ------------------------------------------------------------
@pytest.mark.parametrize(("name", "job_id"), [(PIPELINE, "notify"), (EMBED, "notify")])
def test_notify_dispatches_only_if_changed(name: str, job_id: str, docs: dict[str, Any]) -> None:
    calls = [c for c in bggscore_calls(docs[name], job_id) if c[1] == "dispatch"]
    (call,) = calls
    assert call[2] == "predictions_complete"
    assert call[call.index("--repo") + 1] == "$WAREHOUSE_REPO"
    assert "--if-changed" in call
    assert "--max-hops" in call
    job = jobs(docs[name])[job_id]
    token = next(
        s["env"]["BGGSCORE_GITHUB_TOKEN"]
        for s in job["steps"]
        if "env" in s and "BGGSCORE_GITHUB_TOKEN" in s["env"]
    )
    assert token == "${{ secrets.BGGSCORE_DISPATCH_TOKEN }}"


def test_warehouse_side_never_answers_predictions_complete(docs: dict[str, Any]) -> None:
    doc = docs[WAREHOUSE]
    on = triggers(doc)
    assert "workflow_call" in on
    assert "BGGSCORE_DISPATCH_TOKEN" in on["workflow_call"]["secrets"]
    calls = [c for job_id in jobs(doc) for c in bggscore_calls(doc, job_id)]
    (call,) = calls
    assert call[:3] == ["bggscore", "dispatch", "dataform_complete"]
    assert call[call.index("--unless-event") + 1] == "predictions_complete"


# -- the run: scripts, executed with a stub bggscore ----------------------------------------
STUB = """#!/usr/bin/env bash
{ printf '%s\\n' "$@"; printf '%s\\n' '--end--'; } >> "$STUB_LOG"
if [ "$1" = dispatch ] && [ -n "${STUB_COPY:-}" ]; then
  for a in "$@"; do if [ "$prev" = --if-changed ]; then cp "$a" "$STUB_COPY"; fi; prev=$a; done
fi
"""

DEFAULT_ENV = {
    "FULL": "false",
    "START_YEAR": "2024",
    "END_YEAR": "2029",
    "MAX_GAMES": "50000",
    "GAMES_SCORED": "3",
    "TEXT_EMBEDDED": "2",
    "GAME_EMBEDDED": "1",
    "SCORE_JOB_ID": "job-1",
    "WAREHOUSE_REPO": "owner/warehouse",
    "ML_REPO": "owner/ml",
    "GITHUB_RUN_ID": "42",
    "GITHUB_REF_NAME": "main",
    "GITHUB_REPOSITORY": "owner/ml",
}

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def run_script(
    script: str, tmp: Path, env: dict[str, str]
) -> tuple[int, list[list[str]], dict[str, str]]:
    """Run a `run:` script as GitHub does (bash -eo pipefail) with a stub bggscore on PATH."""
    stub_dir = tmp / "bin"
    stub_dir.mkdir(exist_ok=True)
    stub = stub_dir / "bggscore"
    stub.write_text(STUB, encoding="utf-8")
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    log = tmp / "calls.log"
    log.write_text("", encoding="utf-8")
    output = tmp / "github_output"
    output.write_text("", encoding="utf-8")
    script_file = tmp / "step.sh"
    script_file.write_text(script, encoding="utf-8")
    full_env = {
        "PATH": f"{stub_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp),
        "STUB_LOG": str(log),
        "GITHUB_OUTPUT": str(output),
        **env,
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
        cwd=tmp,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    calls, current = [], ["bggscore"]
    for line in log.read_text(encoding="utf-8").splitlines():
        if line == "--end--":
            calls.append(current)
            current = ["bggscore"]
        else:
            current.append(line)
    outputs = dict(
        line.split("=", 1)
        for line in output.read_text(encoding="utf-8").splitlines()
        if "=" in line
    )
    return done.returncode, calls, outputs


def run_job(doc: dict[str, Any], job_id: str, **env: str) -> list[list[str]]:
    """Every bggscore call the job's scoring/dispatch steps make, in order (stubbed)."""
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    calls: list[list[str]] = []
    for step in jobs(doc)[job_id].get("steps", []):
        script = step.get("run", "")
        if not script or "pip install" in script or "bggscore" not in script:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            code, made, _ = run_script(script, Path(tmp), {**DEFAULT_ENV, **env})
        assert code == 0, (job_id, step.get("name"), made)
        calls.extend(made)
    return calls


def step_by_id(doc: dict[str, Any], job_id: str, step_id: str) -> dict[str, Any]:
    return next(s for s in jobs(doc)[job_id]["steps"] if s.get("id") == step_id)


VALID = {
    "IN_START_YEAR": "2024",
    "IN_END_YEAR": "2029",
    "IN_MAX_GAMES": "50000",
    "IN_USE_CHANGE_DETECTION": "",
    "IN_UPSTREAM_GAMES_SCORED": "0",  # embed.yml only: `inputs.upstream_games_scored || '0'`
}


@needs_bash
@pytest.mark.parametrize(
    ("name", "job_id"),
    [(PIPELINE, "detect"), (COMPLEXITY, "complexity"), (MAIN, "main"), (EMBED, "text")],
)
def test_inputs_are_validated_in_shell(
    name: str, job_id: str, docs: dict[str, Any], tmp_path: Path
) -> None:
    script = step_by_id(docs[name], job_id, "inputs")["run"]
    code, _, outputs = run_script(script, tmp_path, VALID)
    assert code == 0
    assert outputs["start_year"] == "2024" and outputs["end_year"] == "2029"
    assert outputs["max_games"] == "50000" and outputs["full"] == "false"
    code, _, outputs = run_script(script, tmp_path, {**VALID, "IN_USE_CHANGE_DETECTION": "false"})
    assert code == 0 and outputs["full"] == "true"
    bad = [
        {"IN_START_YEAR": "2024; touch pwned"},
        {"IN_START_YEAR": "$(touch pwned)"},
        {"IN_END_YEAR": "2024"},  # not after start
        {"IN_END_YEAR": "20x9"},
        {"IN_MAX_GAMES": "0"},
        {"IN_MAX_GAMES": "1e9"},
        {"IN_MAX_GAMES": "50000\nfull=true"},
        {"IN_USE_CHANGE_DETECTION": "yes"},
    ]
    if name == EMBED:
        bad.append({"IN_UPSTREAM_GAMES_SCORED": "1; touch pwned"})
    for override in bad:
        code, _, outputs = run_script(script, tmp_path, {**VALID, **override})
        assert code != 0, override
        assert outputs == {}, override
    assert not (tmp_path / "pwned").exists()


@needs_bash
@pytest.mark.parametrize(
    ("name", "job_id", "step_id", "selection"),
    [
        (PIPELINE, "score", "score", ["--stage", "all"]),
        (PIPELINE, "embed", "text", ["--kind", "text"]),
        (PIPELINE, "embed", "game", ["--kind", "game"]),
        (COMPLEXITY, "complexity", "score", ["--stage", "complexity"]),
        (MAIN, "main", "score", ["--stage", "main"]),
        (EMBED, "text", "embed", ["--kind", "text"]),
        (EMBED, "games", "embed", ["--kind", "game"]),
    ],
)
def test_change_detection_switch(
    name: str, job_id: str, step_id: str, selection: list[str], docs: dict[str, Any], tmp_path: Path
) -> None:
    script = step_by_id(docs[name], job_id, step_id)["run"]
    code, calls, _ = run_script(script, tmp_path, DEFAULT_ENV)
    assert code == 0
    (call,) = calls
    assert call[2:4] == selection
    assert "--changed-only" in call and "--json" in call
    assert call[call.index("--start-year") + 1] == "2024"
    code, calls, _ = run_script(script, tmp_path, {**DEFAULT_ENV, "FULL": "true"})
    assert code == 0
    (call,) = calls
    assert "--changed-only" not in call, "use_change_detection=false scores the whole range"


@needs_bash
@pytest.mark.skipif(shutil.which("jq") is None, reason="needs jq (on every GitHub runner)")
@pytest.mark.parametrize("name", [PIPELINE, EMBED])
def test_notify_builds_the_result_as_data(name: str, docs: dict[str, Any], tmp_path: Path) -> None:
    step = next(
        s for s in jobs(docs[name])["notify"]["steps"] if "bggscore dispatch" in s.get("run", "")
    )
    env = {**DEFAULT_ENV, "STUB_COPY": str(tmp_path / "sent.json")}
    code, calls, _ = run_script(step["run"], tmp_path, env)
    assert code == 0
    (call,) = calls
    assert call[1:3] == ["dispatch", "predictions_complete"]
    assert call[call.index("--repo") + 1] == "owner/warehouse"
    result = json.loads((tmp_path / "sent.json").read_text(encoding="utf-8"))
    assert result == {"games_scored": 3, "games_embedded": {"text": 2, "game": 1}}
    for override in ({"GAMES_SCORED": '3,"x":1'}, {"TEXT_EMBEDDED": ""}, {"WAREHOUSE_REPO": "a b"}):
        code, calls, _ = run_script(step["run"], tmp_path, {**env, **override})
        assert code != 0 and calls == [], override


@needs_bash
def test_warehouse_side_validates_the_repository(docs: dict[str, Any], tmp_path: Path) -> None:
    (step,) = [
        s
        for s in jobs(docs[WAREHOUSE])["notify"]["steps"]
        if "bggscore dispatch" in s.get("run", "")
    ]
    code, calls, _ = run_script(step["run"], tmp_path, DEFAULT_ENV)
    assert code == 0 and calls[0][1:3] == ["dispatch", "dataform_complete"]
    code, calls, _ = run_script(step["run"], tmp_path, {**DEFAULT_ENV, "ML_REPO": ""})
    assert code != 0 and calls == []


# -- the VM: cron and systemd ---------------------------------------------------------------
def unit(path: Path) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


def test_systemd_service_runs_bggscore_run() -> None:
    service = unit(CRON / "bggscore.service")
    assert service["Type"] == ["oneshot"]
    assert service["EnvironmentFile"] == ["/etc/bggscore/bggscore.env"]
    (exec_start,) = service["ExecStart"]
    assert shlex.split(exec_start)[1:] == ["run", "--json"]
    assert "flock" not in (CRON / "bggscore.service").read_text(encoding="utf-8").split("[Unit]")[1]
    assert "journalctl -u bggscore.service" in (CRON / "bggscore.service").read_text(
        encoding="utf-8"
    )


def test_systemd_timer_catches_up_missed_runs() -> None:
    timer = unit(CRON / "bggscore.timer")
    assert timer["Persistent"] == ["true"]
    assert timer["OnCalendar"]
    assert timer["Unit"] == ["bggscore.service"]


def test_crontab_line_runs_bggscore_run_without_flock() -> None:
    lines = [
        line
        for line in (CRON / "crontab").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#") and "=" not in line.split()[0]
    ]
    (line,) = lines
    fields = line.split(None, 6)
    assert len(fields) == 7 and fields[5] == "bggscore"  # /etc/cron.d format: a user field
    assert "bggscore run --json" in fields[6]
    assert "flock" not in fields[6] and "%" not in fields[6]
    assert ". /etc/bggscore/bggscore.env" in fields[6]


def test_environment_file_is_plain_key_value() -> None:
    for raw in (CRON / "bggscore.env.example").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Z_][A-Z0-9_]*=[^\s'\"]*", line), line


# -- the README -----------------------------------------------------------------------------
def test_readme_explains_install_secrets_and_depth() -> None:
    text = (WORKFLOWS / "README.md").read_text(encoding="utf-8")
    for needle in (
        "BGGSCORE_DISPATCH_TOKEN",
        "Contents",
        "BGGSCORE_GCP_WORKLOAD_IDENTITY_PROVIDER",
        "BGGSCORE_GCP_SERVICE_ACCOUNT",
        "workflow_run",
        "three levels",
        "verify before use",
        "scripts/lint-workflows",
    ):
        assert needle in text, needle


# -- the report artifact ----------------------------------------------------------------------
@pytest.mark.parametrize(("name", "job_id"), [(PIPELINE, "embed"), ("embed.yml", "games")])
def test_the_report_is_uploaded_under_the_name_its_summary_gives(
    name: str, job_id: str, docs: dict[str, Any]
) -> None:
    """`bggscore report`'s step summary names the artifact after the page's file name (its
    name without .html): the upload must use that name, after the last embedding."""
    calls = bggscore_calls(docs[name], job_id)
    (report,) = [call for call in calls if call[1] == "report"]
    assert calls[-1] == report  # after the embeddings: the page shows their runs too
    page = report[report.index("--output") + 1]
    upload = next(
        step
        for step in jobs(docs[name])[job_id]["steps"]
        if step.get("uses", "").startswith("actions/upload-artifact@")
    )
    assert upload["with"]["path"] == page
    assert upload["with"]["name"] == Path(page).stem
    assert upload["with"]["if-no-files-found"] == "error"
    from bggscore.results import ReportResult

    summary = ReportResult(page, 1, [], {"run": {"job": None}, "good": {"outcomes": []}}).summary()
    assert f"artifacts as `{upload['with']['name']}`" in summary
