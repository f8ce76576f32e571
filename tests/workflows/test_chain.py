"""The templates played end to end with the real `bggscore dispatch` and a fake GitHub.

Each workflow runs in tests/support/actions.py's small runner: its gates, its `run:` scripts
under bash, the real CLI against the fake GitHub on 127.0.0.1. What a dispatch delivers
becomes the next workflow's event, exactly as GitHub records it (a repository_dispatch's
`client_payload`, a workflow_dispatch's `inputs`), so the hop count is carried, or lost, by
the templates themselves. Scoring (BigQuery) is stubbed: those steps' outputs are given.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.support.actions import Run, bggscore_bin, run_workflow
from tests.support.github import EVENTS, FakeGitHub, Recorded

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to parse the workflow templates")
pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("jq") is None,
    reason="needs bash and jq (on every GitHub runner)",
)

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"
ML = "phenrickson/bgg-predictive-models"
DW = "phenrickson/bgg-data-warehouse"
TOKEN = "ghp_ChainTest0123456789abcdefABCDEF0123"
VARIABLES = {
    "BGGSCORE_FEATURES_PROJECT": "bgg-data-warehouse",
    "BGGSCORE_ML_PROJECT": "bgg-predictive-models",
    "BGGSCORE_REGISTRY_URI": "gs://bgg-models/prod",
    "BGGSCORE_WAREHOUSE_REPO": DW,
    "BGGSCORE_ML_REPO": ML,
    "BGGSCORE_GCP_WORKLOAD_IDENTITY_PROVIDER": "projects/1/locations/global/"
    "workloadIdentityPools/github/providers/bggscore",
    "BGGSCORE_GCP_SERVICE_ACCOUNT": "bggscore@bgg-predictive-models.iam.gserviceaccount.com",
}
SECRETS = {"BGGSCORE_DISPATCH_TOKEN": TOKEN, "GITHUB_TOKEN": TOKEN}
# what detect-changes and `bggscore run` would write to $GITHUB_OUTPUT on a busy day
# the report reads BigQuery too: stubbed like the scoring (tests/report draws real ones)
REPORT = {"report": "bggscore-report.html", "job_id": "job-1"}
BUSY = {
    "detect": {"changed": "true", "count": "7"},
    "run": {"games_scored": "5", "games_embedded": "2", "job_ids": "job-1"},
    "report": REPORT,
}
QUIET = {
    "detect": {"changed": "false", "count": "0"},
    "run": {"games_scored": "0", "games_embedded": "0", "job_ids": ""},
    "report": REPORT,
}
DATAFORM_CALL = {"ml_repo": ML}  # the `with:` of the notify-ml job in dataform.yml


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


@dataclass
class Delivered:
    """A dispatch as the receiving repository sees it: which template, which event."""

    template: str
    event_name: str
    event: dict[str, Any]
    repository: str
    hops: int


def delivered(request: Recorded, root: str) -> Delivered:
    """The event GitHub would start the next workflow with, from what reached it."""
    body = request.body
    match = re.fullmatch(r"/repos/([^/]+/[^/]+)/dispatches", request.path)
    if match:
        repository = match.group(1)
        template = {
            (ML, "dataform_complete"): root,
            (DW, "predictions_complete"): "warehouse-notify.yml",
            (DW, "dataform_complete"): "warehouse-notify.yml",
        }[(repository, body["event_type"])]
        event = {
            "action": body["event_type"],
            "branch": "main",
            "client_payload": body["client_payload"],
            "repository": {"full_name": repository},
        }
        hops = body["client_payload"]["bggscore_hops"]
        return Delivered(template, "repository_dispatch", event, repository, hops)
    match = re.fullmatch(r"/repos/([^/]+/[^/]+)/actions/workflows/([^/]+)/dispatches", request.path)
    assert match, request.path
    event = {
        "inputs": body["inputs"],
        "ref": f"refs/heads/{body['ref']}",
        "repository": {"full_name": match.group(1)},
        "workflow": f".github/workflows/{match.group(2)}",
    }
    hops = int(body["inputs"]["bggscore_hops"])
    return Delivered(match.group(2), "workflow_dispatch", event, match.group(1), hops)


@pytest.fixture
def play(github: FakeGitHub, tmp_path: Path) -> Callable[..., tuple[Run, list[Recorded]]]:
    """Run one template for one event; returns the run and the requests it sent."""
    runner_env = {
        "PATH": f"{bggscore_bin(tmp_path / 'bin')}:{os.environ.get('PATH', '')}",
        "BGGSCORE_GITHUB_API_URL": github.url,
        "BGGSCORE_HOME": str(tmp_path / "home"),
    }
    counter = iter(range(1, 1000))

    def run(
        template: str,
        event_name: str,
        event: dict[str, Any],
        repository: str,
        *,
        stubs: dict[str, dict[str, str]] = BUSY,
        edit: Callable[[dict[str, Any]], None] | None = None,
    ) -> tuple[Run, list[Recorded]]:
        doc = copy.deepcopy(load(template))
        if edit is not None:
            edit(doc)
        before = len(github.requests)
        played = run_workflow(
            doc,
            event,
            event_name,
            tmp_path / "runs",
            repository=repository,
            stubs=stubs,
            variables=VARIABLES,
            secrets=SECRETS,
            runner_env=runner_env,
            called_with=DATAFORM_CALL if template == "warehouse-notify.yml" else None,
            run_id=next(counter),
        )
        failed = [(s.job, s.name, s.code, s.stderr[-2000:]) for s in played.failed()]
        assert not failed, failed
        return played, github.requests[before:]

    return run


def without_unless_event(doc: dict[str, Any]) -> None:
    """The warehouse template as someone might copy it: no --unless-event."""
    if doc["name"] != load("warehouse-notify.yml")["name"]:
        return
    for step in doc["jobs"]["notify"]["steps"]:
        if "run" in step:
            step["run"] = step["run"].replace("--unless-event predictions_complete ", "")


def recorded(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def refusal(run: Run) -> str:
    return "\n".join(s.stderr for s in run.steps)


# -- the split form, edge by edge ------------------------------------------------------------
@pytest.mark.parametrize("guarded", [True, False], ids=["as shipped", "no --unless-event"])
def test_the_split_chain_carries_the_hop_count_and_stops_at_hop_5(play, guarded: bool) -> None:
    """warehouse -> complexity -> main -> embed -> warehouse: hops 1, 2, 3, 4 on the four
    edges; the fifth is refused, by --unless-event as shipped and by --max-hops without it.
    Before, the count started again at the workflow_run edge (1, 1, 2, 3, 1, ...)."""
    edit = None if guarded else without_unless_event
    # the Dataform run after the nightly fetch: a workflow_run event, no hop count
    run, sent = play(
        "warehouse-notify.yml", "workflow_run", recorded("workflow_run_completed.json"), DW,
        edit=edit,
    )  # fmt: skip
    hops, templates = [], []
    for _ in range(4):
        (request,) = sent
        nxt = delivered(request, root="score-complexity.yml")
        hops.append(nxt.hops)
        templates.append(nxt.template)
        origin = request.body.get("client_payload", request.body.get("inputs", {}))
        assert origin["bggscore_origin"] in (ML, DW)
        run, sent = play(nxt.template, nxt.event_name, nxt.event, nxt.repository, edit=edit)
    assert hops == [1, 2, 3, 4]
    assert templates == [
        "score-complexity.yml", "score-main.yml", "embed.yml", "warehouse-notify.yml",
    ]  # fmt: skip
    assert sent == [], "the fifth dispatch went out"
    reason = refusal(run)
    if guarded:
        assert "triggered by predictions_complete (--unless-event)" in reason
    else:
        assert f"this would be hop 5 of a chain from {ML} allowed 4 (--max-hops)" in reason


def test_the_pipeline_form_stops_at_the_warehouse(play) -> None:
    run, sent = play(
        "warehouse-notify.yml", "workflow_run", recorded("workflow_run_completed.json"), DW,
        edit=without_unless_event,
    )  # fmt: skip
    hops = []
    while sent:
        (request,) = sent
        nxt = delivered(request, root="bggscore-pipeline.yml")
        hops.append(nxt.hops)
        run, sent = play(
            nxt.template, nxt.event_name, nxt.event, nxt.repository, edit=without_unless_event
        )
        assert len(hops) < 10, "the chain never ends"
    # warehouse -> pipeline (1) -> warehouse (2) -> pipeline (3) -> warehouse (4) -> refused
    assert hops == [1, 2, 3, 4]
    assert "this would be hop 5" in refusal(run)


def test_a_no_op_runs_one_job_in_either_form(play) -> None:
    event = recorded("repository_dispatch_dataform_complete.json")
    for root in ("bggscore-pipeline.yml", "score-complexity.yml"):
        run, sent = play(root, "repository_dispatch", event, ML, stubs=QUIET)
        ran = [job for job, result in run.results.items() if result != "skipped"]
        assert ran == ["detect"], (root, run.results)
        assert sent == []


def test_a_stage_that_processed_nothing_still_hands_on_but_the_warehouse_stays_asleep(
    play,
) -> None:
    """detect found changes the stages then skipped (e.g. games waiting for an input):
    the chain goes on to its end, and --if-changed keeps predictions_complete back."""
    nothing = {**BUSY, "run": QUIET["run"]}
    event = recorded("repository_dispatch_dataform_complete.json")
    _, sent = play("score-complexity.yml", "repository_dispatch", event, ML, stubs=nothing)
    for _ in range(2):
        (request,) = sent
        assert request.body["inputs"]["upstream_games"] == "0"
        nxt = delivered(request, root="score-complexity.yml")
        run, sent = play(nxt.template, nxt.event_name, nxt.event, nxt.repository, stubs=nothing)
    assert sent == []
    assert "nothing changed" in refusal(run)


def test_games_counted_upstream_reach_the_last_stage(play) -> None:
    event = recorded("repository_dispatch_dataform_complete.json")
    _, sent = play("score-complexity.yml", "repository_dispatch", event, ML)
    counts = []
    for _ in range(2):
        (request,) = sent
        counts.append(request.body["inputs"]["upstream_games"])
        nxt = delivered(request, root="score-complexity.yml")
        _, sent = play(nxt.template, nxt.event_name, nxt.event, nxt.repository)
    # complexity 5 scored + 2 embedded; main 5 more
    assert counts == ["7", "12"]
    (request,) = sent
    assert request.body["event_type"] == "predictions_complete"


# -- a manual run with default inputs --------------------------------------------------------
MANUAL = [
    ("bggscore-pipeline.yml", "workflow_dispatch_manual_bggscore-pipeline.json", ML),
    ("score-complexity.yml", "workflow_dispatch_manual_score-complexity.json", ML),
    ("score-main.yml", "workflow_dispatch_manual_score-main.json", ML),
    ("embed.yml", "workflow_dispatch_manual_embed.json", ML),
    ("warehouse-notify.yml", "workflow_dispatch_manual_dataform.json", DW),
]


@pytest.mark.parametrize(("template", "fixture", "repository"), MANUAL)
def test_a_manual_run_with_default_inputs_gets_through_its_dispatch(
    play, template: str, fixture: str, repository: str
) -> None:
    """The event *Run workflow* produces with every input left as it is (blank optional
    inputs included: `bggscore_hops: ""` made embed.yml's notify exit 2)."""
    event = recorded(fixture)
    defaults = load(template)["on" if "on" in load(template) else True]
    declared = (defaults.get("workflow_dispatch") or {}).get("inputs") or {}
    for name, spec in declared.items():  # the fixture is what GitHub sends for the defaults
        expected = spec.get("default", "")
        expected = str(expected).lower() if isinstance(expected, bool) else str(expected)
        assert event["inputs"][name] == expected, name
    run, sent = play(template, "workflow_dispatch", event, repository)
    assert any(s.name.startswith("Validate") for s in run.steps) or template.startswith("ware")
    (request,) = sent
    hops = request.body.get("client_payload", request.body.get("inputs", {}))["bggscore_hops"]
    assert int(hops) == 1  # a manual run starts a chain
