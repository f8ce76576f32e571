"""The GitHub Actions templates in workflows/ (and the project's release.yml): parsed, never
grepped.

Checks the chain (order, needs, if: gates evaluated over every outcome), triggers, concurrency
(no pending run of one workflow can be cancelled by another's), permissions, pinning, what is
installed and how, that no `${{ }}` reaches a `run:` script, the workflow_run depth, and runs
the `run:` scripts themselves under bash with stubs to see what they would call. The chain
played end to end with the real CLI is in test_chain.py.
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
from tests.support.actions import evaluate

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

RELEASE = REPO / ".github" / "workflows" / "release.yml"
SHA_USES = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
PINS = ("PIN_WHEEL_URL", "PIN_WHEEL_SHA256", "PIN_LOCK_URL", "PIN_LOCK_SHA256")
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


def concurrency(doc: dict[str, Any]) -> dict[str, Any] | None:
    value = doc.get("concurrency")
    return {"group": value} if isinstance(value, str) else value


def cancelled_pending(arrivals: list[tuple[str, dict[str, Any] | None]]) -> list[int]:
    """GitHub's rule for pending runs: ``arrivals`` are (workflow, its concurrency) in the
    order their runs start while one run of every group is busy; returns the indexes of the
    runs GitHub cancels. Without `queue: max` a group keeps one pending run and a newer run
    cancels it; with it every pending run waits its turn (up to 100)."""
    pending: dict[str, list[int]] = {}
    cancelled = []
    for index, (_, settings) in enumerate(arrivals):
        if settings is None:
            continue  # no group: the run starts at once, nothing to cancel
        group = pending.setdefault(settings["group"], [])
        if settings.get("queue") == "max":
            assert len(group) < 100
        elif group:
            cancelled.append(group.pop())
        group.append(index)
    return cancelled


def test_the_rule_sees_a_pending_run_cancelled_by_another_workflow() -> None:
    shared = {"group": "g", "cancel-in-progress": False}
    # before: the embed run carrying the scoring's games waits, a cron start of complexity
    # scoring arrives and cancels it
    assert cancelled_pending([("embed.yml", shared), ("score-complexity.yml", shared)]) == [0]
    queued = {**shared, "queue": "max"}
    assert cancelled_pending([("embed.yml", queued), ("score-complexity.yml", queued)]) == []


@pytest.mark.parametrize("name", TEMPLATES)
def test_concurrency_never_cancels_a_running_job(name: str, docs: dict[str, Any]) -> None:
    settings = concurrency(docs[name])
    if settings is not None:
        assert settings["cancel-in-progress"] is False
    for job_id, job in jobs(docs[name]).items():
        if "concurrency" in job:
            assert job["concurrency"].get("cancel-in-progress") is False, f"{name}:{job_id}"


def test_the_writers_share_one_group_that_keeps_every_pending_run(docs: dict[str, Any]) -> None:
    """One group across every ML workflow that writes (the only lock between workflows on
    runners that share nothing), with `queue: max`: any mix of starts cancels nothing."""
    groups = {concurrency(docs[name])["group"] for name in ML_SIDE}  # type: ignore[index]
    assert groups == {"bggscore-scoring"}
    assert all(concurrency(docs[name])["queue"] == "max" for name in ML_SIDE)  # type: ignore[index]
    # the warehouse side writes nothing: no group, so no notification can be dropped
    assert concurrency(docs[WAREHOUSE]) is None
    starts = [*ML_SIDE, EMBED, COMPLEXITY, MAIN, PIPELINE, WAREHOUSE, WAREHOUSE, EMBED]
    assert cancelled_pending([(name, concurrency(docs[name])) for name in starts]) == []


def test_release_runs_one_at_a_time_and_is_never_cancelled() -> None:
    settings = concurrency(yaml.safe_load(RELEASE.read_text(encoding="utf-8")))
    assert settings == {"group": "release", "cancel-in-progress": False, "queue": "max"}


ALL_WORKFLOWS = [WORKFLOWS / name for name in TEMPLATES] + [RELEASE]


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_sha(path: Path) -> None:
    """Every `uses:` a 40-hex commit with a `# vX.Y.Z` comment (scripts/check-action-pins
    resolves each comment's tag on GitHub and compares)."""
    name = path.name
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    lines = text.splitlines()
    for raw in lines:
        if re.match(r"\s*(-\s+)?uses:", raw):
            assert re.search(r"uses: [^@\s]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", raw) or (
                "uses: ./" in raw
            ), raw
    for job_id, index, step in steps(doc):
        if "uses" not in step:
            continue
        uses = step["uses"]
        assert SHA_USES.match(uses), f"{name}:{job_id}[{index}] {uses} is not pinned to a SHA"
        line = next(raw for raw in lines if raw.strip().endswith(uses) or f"{uses} #" in raw)
        assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), f"no version comment: {line}"
    for job_id, job in jobs(doc).items():
        assert "uses" not in job or job["uses"].startswith("./"), f"{name}:{job_id}"


def test_each_action_has_one_sha_everywhere(docs: dict[str, Any]) -> None:
    seen: dict[str, set[str]] = {}
    for doc in [*docs.values(), yaml.safe_load(RELEASE.read_text(encoding="utf-8"))]:
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
        if path[-1:] == ("run",) and isinstance(value, str):  # a script (`run` is also a job)
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


def install_steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (job_id, step)
        for job_id, _, step in steps(doc)
        if any(t[:4] == ["python", "-m", "pip", "install"] for t in commands(step.get("run", "")))
    ]


@pytest.mark.parametrize("name", TEMPLATES)
def test_nothing_is_installed_by_bare_name(name: str, docs: dict[str, Any]) -> None:
    """Every pip install takes requirement files (the wheel by URL and sha256, hashed locks)
    with --require-hashes; no package name is ever resolved from an index unchecked."""
    doc = docs[name]
    for job_id, job in jobs(doc).items():
        installs = [s for j, s in install_steps(doc) if j == job_id]
        if bggscore_calls(doc, job_id):
            assert len(installs) == 1, f"{name}:{job_id} runs bggscore without installing it"
        for step in installs:
            for tokens in commands(step["run"]):
                if tokens[:4] != ["python", "-m", "pip", "install"]:
                    continue
                assert "--require-hashes" in tokens and "--no-deps" in tokens, tokens
                rest = [t for t in tokens[4:] if not t.startswith("-")]
                assert rest == ['"${locks[@]}"'] or rest == ["${locks[@]}"], tokens
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False


def test_every_install_step_is_the_same(docs: dict[str, Any]) -> None:
    scripts = {step["run"] for doc in docs.values() for _, step in install_steps(doc)}
    assert len(scripts) == 1


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_pins_are_template_inputs_outside_the_settings_prefix(
    name: str, docs: dict[str, Any]
) -> None:
    from bggscore.settings import unknown_variables

    env = docs[name]["env"]
    assert set(PINS) | {"PIN_MODEL_REQUIREMENTS"} <= set(env)
    assert env["PIN_WHEEL_URL"].endswith("-py3-none-any.whl")
    assert "BGGSCORE_VERSION" not in env
    # every BGGSCORE_ variable a template sets is a setting: no command warns about it
    assert unknown_variables({k: "x" for k in env}) == []
    first = docs[PIPELINE]["env"]
    assert {k: env[k] for k in PINS} == {k: first[k] for k in PINS}


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
    assert job_order(docs[PIPELINE]) == ["detect", "run", "notify"]
    assert needs(pipeline["run"]) == ["detect"]
    assert "run" in needs(pipeline["notify"])


def outcomes(previous: str) -> Iterator[dict[str, Any]]:
    for result in ("success", "failure", "cancelled", "skipped"):
        for changed in ("true", "false", ""):
            for full in ("true", "false"):
                yield {
                    f"needs.{previous}.result": result,
                    "needs.detect.outputs.changed": changed,
                    "needs.detect.outputs.full": full,
                }


@pytest.mark.parametrize(("name", "job_id"), [(PIPELINE, "run"), (COMPLEXITY, "complexity")])
def test_one_detect_job_gates_everything(name: str, job_id: str, docs: dict[str, Any]) -> None:
    """In either form the work starts only when detect succeeded and found something (or a
    manual run asked for the whole range); every later job needs the one before."""
    condition = jobs(docs[name])[job_id]["if"]
    for context in outcomes("detect"):
        expected = context["needs.detect.result"] == "success" and (
            context["needs.detect.outputs.changed"] == "true"
            or context["needs.detect.outputs.full"] == "true"
        )
        assert evaluate(condition, context) is expected, (job_id, context)
    assert job_order(docs[name])[0] == "detect"


def test_pipeline_runs_the_stages_as_bggscore_run_orders_them(docs: dict[str, Any]) -> None:
    """One `bggscore run`: the stage graph decides the order (text embeddings first when the
    models read them), not the template."""
    call, report = bggscore_calls(docs[PIPELINE], "run")
    assert call[:2] == ["bggscore", "run"] and "--stage" not in call
    assert report[:2] == ["bggscore", "report"]


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


@pytest.mark.parametrize("name", [MAIN, EMBED])
def test_later_stages_start_only_by_workflow_dispatch(name: str, docs: dict[str, Any]) -> None:
    """No workflow_run: the hop count survives every edge, and nothing runs on another
    workflow's context (zizmor's dangerous-triggers exception is gone)."""
    on = triggers(docs[name])
    assert set(on) == {"workflow_dispatch"}
    inputs = on["workflow_dispatch"]["inputs"]
    assert {"bggscore_hops", "bggscore_origin", "upstream_games"} <= set(inputs)
    for key in ("bggscore_hops", "bggscore_origin", "upstream_games"):
        assert inputs[key]["default"] == "" and inputs[key]["required"] is False
    assert "zizmor: ignore" not in (WORKFLOWS / name).read_text(encoding="utf-8")


SPLIT_STAGES = {COMPLEXITY: ["text-embeddings", "complexity"], MAIN: ["main"],
                EMBED: ["game-embeddings"]}  # fmt: skip


def test_split_stages_follow_the_stage_graph(docs: dict[str, Any]) -> None:
    """text embeddings -> complexity -> main -> game embeddings: a valid order of the stage
    graph whatever the models read (text reads nothing, game embeddings read the rest)."""
    from bggscore.stages import GRAPH

    sequence = []
    for name in split_workflow_order(docs):
        for job_id in job_order(docs[name]):
            for step in jobs(docs[name])[job_id].get("steps", []):
                if step.get("id") == "run":  # `args=(--stage ... )`, then `bggscore run`
                    stages = re.findall(r"--stage ([a-z-]+)", step["run"])
                    assert stages == SPLIT_STAGES[name], name
                    sequence += stages
    assert sequence == ["text-embeddings", "complexity", "main", "game-embeddings"]
    assert sorted(sequence) == sorted(GRAPH.names)
    for index, stage in enumerate(sequence):
        assert set(GRAPH.upstream(stage)) <= set(sequence[:index]), stage


def test_split_jobs_gate_on_the_previous_job(docs: dict[str, Any]) -> None:
    for name, job_id, previous in [
        (COMPLEXITY, "handoff", "complexity"),
        (MAIN, "handoff", "main"),
        (EMBED, "notify", "games"),
    ]:
        job = jobs(docs[name])[job_id]
        assert previous in needs(job)
        for result in ("success", "failure", "cancelled", "skipped"):
            assert evaluate(job["if"], {f"needs.{previous}.result": result}) is (
                result == "success"
            )


@pytest.mark.parametrize(("name", "target"), [(COMPLEXITY, MAIN), (MAIN, EMBED)])
def test_split_handoff_matches_the_next_inputs(
    name: str, target: str, docs: dict[str, Any]
) -> None:
    (call,) = bggscore_calls(docs[name], "handoff")
    assert call[:2] == ["bggscore", "dispatch"]
    assert call[call.index("--workflow") + 1] == target
    declared = set(triggers(docs[target])["workflow_dispatch"]["inputs"])
    sent = {call[i + 1].split("=", 1)[0] for i, token in enumerate(call) if token == "--input"}
    assert sent | {"bggscore_hops", "bggscore_origin"} == declared
    assert "--guard-inputs" in call


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
    # no workflow_run at all: every hand-off is a dispatch, a new event
    assert depth == {PIPELINE: 0, COMPLEXITY: 0, MAIN: 0, EMBED: 0}


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
    "GAMES_EMBEDDED": "2",
    "UPSTREAM": "4",
    "PROCESSED": "3",
    "WAREHOUSE_REPO": "owner/warehouse",
    "ML_REPO": "owner/ml",
    "GITHUB_RUN_ID": "42",
    "GITHUB_REF_NAME": "main",
    "GITHUB_REPOSITORY": "owner/ml",
}

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def run_script(
    script: str, tmp: Path, env: dict[str, str], stubs: dict[str, str] | None = None
) -> tuple[int, list[list[str]], dict[str, str]]:
    """Run a `run:` script as GitHub does (bash -eo pipefail) with a stub bggscore (and any
    other ``stubs``, name -> script) on PATH."""
    stub_dir = tmp / "bin"
    stub_dir.mkdir(exist_ok=True)
    for name, text in {"bggscore": STUB, **(stubs or {})}.items():
        stub = stub_dir / name
        stub.write_text(text, encoding="utf-8")
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
    "IN_UPSTREAM_GAMES": "0",  # score-main / embed: `inputs.upstream_games || '0'`
}


@needs_bash
@pytest.mark.parametrize(
    ("name", "job_id"),
    [(PIPELINE, "detect"), (COMPLEXITY, "detect"), (MAIN, "main"), (EMBED, "games")],
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
    if name in (MAIN, EMBED):
        bad.append({"IN_UPSTREAM_GAMES": "1; touch pwned"})
    for override in bad:
        code, _, outputs = run_script(script, tmp_path, {**VALID, **override})
        assert code != 0, override
        assert outputs == {}, override
    assert not (tmp_path / "pwned").exists()


@needs_bash
@pytest.mark.parametrize(
    ("name", "job_id", "stages"),
    [
        (PIPELINE, "run", []),
        (COMPLEXITY, "complexity", ["text-embeddings", "complexity"]),
        (MAIN, "main", ["main"]),
        (EMBED, "games", ["game-embeddings"]),
    ],
)
def test_change_detection_switch(
    name: str, job_id: str, stages: list[str], docs: dict[str, Any], tmp_path: Path
) -> None:
    script = step_by_id(docs[name], job_id, "run")["run"]
    code, calls, _ = run_script(script, tmp_path, DEFAULT_ENV)
    assert code == 0
    (call,) = calls
    assert call[1] == "run" and "--json" in call
    assert [call[i + 1] for i, t in enumerate(call) if t == "--stage"] == stages
    assert "--full" not in call and call[call.index("--max-games") + 1] == "50000"
    assert call[call.index("--start-year") + 1] == "2024"
    code, calls, _ = run_script(script, tmp_path, {**DEFAULT_ENV, "FULL": "true"})
    assert code == 0
    (call,) = calls
    assert "--full" in call and "--max-games" not in call, "the whole range, no cap"
    code, calls, _ = run_script(script, tmp_path, {**DEFAULT_ENV, "MAX_GAMES": "5; rm -rf /"})
    assert code != 0 and calls == []


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
    assert result == {"games_scored": 3, "games_embedded": 2}
    bad = ({"GAMES_SCORED": '3,"x":1'}, {"GAMES_EMBEDDED": ""}, {"WAREHOUSE_REPO": "a b"})
    for override in bad:
        code, calls, _ = run_script(step["run"], tmp_path, {**env, **override})
        assert code != 0 and calls == [], override


@needs_bash
@pytest.mark.parametrize(("name", "target"), [(COMPLEXITY, MAIN), (MAIN, EMBED)])
def test_handoff_adds_up_the_games_and_checks_them(
    name: str, target: str, docs: dict[str, Any], tmp_path: Path
) -> None:
    step = next(s for s in jobs(docs[name])["handoff"]["steps"] if "dispatch" in s.get("run", ""))
    code, calls, _ = run_script(step["run"], tmp_path, DEFAULT_ENV)
    assert code == 0
    (call,) = calls
    assert call[call.index("--workflow") + 1] == target
    assert "--input" in call and "upstream_games=7" in call  # 4 upstream + 3 here
    code, calls, _ = run_script(step["run"], tmp_path, {**DEFAULT_ENV, "PROCESSED": "x"})
    assert code != 0 and calls == []


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


# -- the install step, executed with stub curl and python ------------------------------------
CURL = """#!/usr/bin/env bash
# the stub downloads from $CURL_FROM whatever URL is asked
while [ $# -gt 0 ]; do if [ "$1" = --output ]; then out=$2; fi; shift; done
cp "$CURL_FROM" "$out"
"""
PYTHON = """#!/usr/bin/env bash
{ printf '%s\n' "$@"; printf '%s\n' '--end--'; } >> "$STUB_LOG"
if [ "$3" = install ]; then
  for a in "$@"; do if [ "$prev" = -r ]; then cat "$a" >> "$STUB_LOCKS"; fi; prev=$a; done
fi
"""
WHEEL_SHA = "a" * 64
LOCK = (
    "scikit-learn==1.9.1 \\\n    --hash=sha256:"
    + "b" * 64
    + "\nnumpy==2.5.5 \\\n    --hash=sha256:"
    + "c" * 64
    + "\nhttpx==0.28.1 \\\n    --hash=sha256:"
    + "d" * 64
    + "\n"
)


def install_env(tmp: Path, **extra: str) -> dict[str, str]:
    import hashlib

    lock = tmp / "served-lock.txt"
    lock.write_text(LOCK, encoding="utf-8")
    return {
        "PIN_WHEEL_URL": "https://github.com/bggscore/bggscore/releases/download/v0.2.0/bggscore-0.2.0-py3-none-any.whl",
        "PIN_WHEEL_SHA256": WHEEL_SHA,
        "PIN_LOCK_URL": "https://github.com/bggscore/bggscore/releases/download/v0.2.0/requirements-ci.txt",
        "PIN_LOCK_SHA256": hashlib.sha256(lock.read_bytes()).hexdigest(),
        "PIN_MODEL_REQUIREMENTS": "",
        "RUNNER_TEMP": str(tmp),
        "CURL_FROM": str(lock),
        "STUB_LOCKS": str(tmp / "installed.txt"),
        **extra,
    }


def play_install(docs: dict[str, Any], tmp: Path, env: dict[str, str]) -> tuple[int, list]:
    (_, step), *_ = install_steps(docs[PIPELINE])
    stubs = {"curl": CURL, "python": PYTHON}
    code, calls, _ = run_script(step["run"], tmp, env, stubs)
    return code, calls


@needs_bash
def test_install_takes_the_wheel_and_the_lock_by_sha256(
    docs: dict[str, Any], tmp_path: Path
) -> None:
    code, calls = play_install(docs, tmp_path, install_env(tmp_path))
    assert code == 0
    pip, check, version = calls
    assert pip[1:5] == ["-m", "pip", "install", "--disable-pip-version-check"]
    assert "--require-hashes" in pip and "--no-deps" in pip
    assert check[1:4] == ["-m", "pip", "check"] and version == ["bggscore", "--version"]
    installed = (tmp_path / "installed.txt").read_text(encoding="utf-8")
    assert installed.startswith(
        "bggscore @ https://github.com/bggscore/bggscore/releases/download/v0.2.0/"
        f"bggscore-0.2.0-py3-none-any.whl --hash=sha256:{WHEEL_SHA}\n"
    )
    assert "scikit-learn==1.9.1" in installed


@needs_bash
@pytest.mark.parametrize(
    "override",
    [
        {"PIN_WHEEL_SHA256": "set-me-from-SHA256SUMS"},
        {"PIN_WHEEL_URL": "bggscore"},  # a bare name
        {"PIN_WHEEL_URL": "http://example.com/bggscore-0.2.0-py3-none-any.whl"},
        {"PIN_WHEEL_URL": "https://example.com/other-0.2.0-py3-none-any.whl"},
        {"PIN_LOCK_SHA256": "0" * 64},  # the lock served is not the lock pinned
        {"PIN_MODEL_REQUIREMENTS": "../outside.txt"},
        {"PIN_MODEL_REQUIREMENTS": "missing.txt"},
    ],
)
def test_install_refuses_what_is_not_pinned(
    override: dict[str, str], docs: dict[str, Any], tmp_path: Path
) -> None:
    code, calls = play_install(docs, tmp_path, {**install_env(tmp_path), **override})
    assert code != 0 and calls == [], override


@needs_bash
def test_your_model_lock_wins_over_bggscores(docs: dict[str, Any], tmp_path: Path) -> None:
    """Adopted models load only with the versions they were made with: a package the model
    lock pins comes from it alone; the rest of bggscore's lock stays."""
    model = tmp_path / "requirements" / "models.txt"
    model.parent.mkdir()
    model.write_text(
        "# production's pins\nScikit_Learn==1.7.0 \\\n    --hash=sha256:" + "e" * 64 + "\n"
        "numpy==2.2.6 --hash=sha256:" + "f" * 64 + "\n",
        encoding="utf-8",
    )
    env = install_env(tmp_path, PIN_MODEL_REQUIREMENTS="requirements/models.txt")
    code, _ = play_install(docs, tmp_path, env)
    assert code == 0
    installed = (tmp_path / "installed.txt").read_text(encoding="utf-8")
    assert "scikit-learn==1.9.1" not in installed and "numpy==2.5.5" not in installed
    assert "Scikit_Learn==1.7.0" in installed and "numpy==2.2.6" in installed
    assert "httpx==0.28.1 \\\n    --hash=sha256:" + "d" * 64 in installed


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
@pytest.mark.parametrize(("name", "job_id"), [(PIPELINE, "run"), ("embed.yml", "games")])
def test_the_report_is_uploaded_under_the_name_its_summary_gives(
    name: str, job_id: str, docs: dict[str, Any]
) -> None:
    """`bggscore report`'s step summary names the artifact after the page's file name (its
    name without .html): the upload must use that name, after the last stage ran."""
    calls = bggscore_calls(docs[name], job_id)
    (report,) = [call for call in calls if call[1] == "report"]
    assert calls[-1] == report and calls[-2][1] == "run"  # the page shows this run too
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
