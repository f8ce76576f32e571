"""`bggscore dispatch` through the real CLI: exit codes, one-line errors, what reached GitHub.

GitHub is a real HTTP server on 127.0.0.1 (tests/support/github.py); retries never
really sleep (the module's default sleep is replaced by a recorder).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from tests.support.github import EVENTS, FakeGitHub, closed_port_url
from tests.support.output import assert_one_line_error

CANARY = "ghp_CANARY0cafe1234dead5678beef9012face34"
REPO = "phenrickson/bgg-predictive-models"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr("bggscore.dispatch.default_sleep", recorded.append)
    return recorded


@pytest.fixture
def gh_env(
    home: Path, github: FakeGitHub, waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A token, the fake API, and a GitHub output file; returns the output file."""
    monkeypatch.setenv("BGGSCORE_GITHUB_TOKEN", CANARY)
    monkeypatch.setenv("BGGSCORE_GITHUB_API_URL", github.url)
    outputs = home.parent / "github_output"
    outputs.touch()
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(home.parent / "summary.md"))
    return outputs


def in_actions(monkeypatch: pytest.MonkeyPatch, event: str, name: str) -> None:
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(EVENTS / event))
    monkeypatch.setenv("GITHUB_EVENT_NAME", name)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)


# -- sent -----------------------------------------------------------------------------------
def test_repository_dispatch_sends_and_reports(cli, gh_env: Path, github: FakeGitHub) -> None:
    result = cli("dispatch", "dataform_complete", "--repo", REPO, "--payload", "run_id=42")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == (
        f"dispatched repository_dispatch dataform_complete to {REPO} (204, hop 1 from local)"
    )
    [request] = github.requests
    assert request.path == f"/repos/{REPO}/dispatches"
    assert request.headers["authorization"] == f"Bearer {CANARY}"
    assert request.body == {
        "event_type": "dataform_complete",
        "client_payload": {"run_id": "42", "bggscore_hops": 1, "bggscore_origin": "local"},
    }
    assert gh_env.read_text() == "dispatched=true\n"


def test_workflow_dispatch_json(cli, gh_env: Path, github: FakeGitHub) -> None:
    result = cli(
        "dispatch", "--workflow", "score.yml", "--ref", "main", "--repo", REPO,
        "--input", "stage=main", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sent"] is True
    assert {k: data[k] for k in ("kind", "repo", "workflow", "ref", "status", "hops")} == {
        "kind": "workflow_dispatch",
        "repo": REPO,
        "workflow": "score.yml",
        "ref": "main",
        "status": 204,
        "hops": 1,
    }
    assert data["reason"] is None
    [request] = github.requests
    assert request.path == f"/repos/{REPO}/actions/workflows/score.yml/dispatches"
    assert request.body == {"ref": "main", "inputs": {"stage": "main"}}


def test_a_retried_5xx_then_success(cli, gh_env: Path, github: FakeGitHub, waits) -> None:
    github.answer(502)
    github.answer(503, Retry_After="3")
    result = cli("dispatch", "e", "--repo", REPO, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["attempts"] == 3
    assert waits == [1.0, 3.0]
    assert len(github.requests) == 3


# -- GitHub says no -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "body", "needles"),
    [
        (401, {"message": "Bad credentials"}, ["GitHub rejected the token (401)"]),
        (403, {"message": "Resource not accessible"}, ["(403)", "'Contents: read and write'"]),
        (404, {"message": "Not Found"}, [f"repository {REPO} not found or the token cannot"]),
        (422, {"message": "Invalid event_type"}, ["(422): Invalid event_type"]),
    ],
)
def test_github_refusals_exit_1_with_one_line(
    cli, gh_env: Path, github: FakeGitHub, status: int, body: dict, needles: list[str]
) -> None:
    github.answer(status, body)
    result = cli("dispatch", "e", "--repo", REPO)
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, *needles)
    assert result.stdout == ""
    assert len(github.requests) == 1
    assert gh_env.read_text() == ""  # no output claims anything


def test_5xx_for_ever_gives_up(cli, gh_env: Path, github: FakeGitHub, waits) -> None:
    for _ in range(6):
        github.answer(500)
    result = cli("dispatch", "e", "--repo", REPO, "--max-wait", "10")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "GitHub answered 500", "after 5 attempts")
    # 10 s for the whole call: the last wait leaves the fifth attempt its second
    assert waits[:3] == [1.0, 2.0, 4.0] and 1.5 < waits[3] <= 2.0
    assert len(github.requests) == 5


def test_unreachable_api(cli, gh_env: Path, monkeypatch: pytest.MonkeyPatch, waits) -> None:
    url = closed_port_url()
    monkeypatch.setenv("BGGSCORE_GITHUB_API_URL", url)
    result = cli("dispatch", "e", "--repo", REPO, "--max-wait", "0")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, f"could not reach {url}: ", "BGGSCORE_GITHUB_API_URL")
    assert waits == []


def test_missing_token(cli, gh_env: Path, github: FakeGitHub, monkeypatch) -> None:
    monkeypatch.delenv("BGGSCORE_GITHUB_TOKEN")
    result = cli("dispatch", "e", "--repo", REPO)
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "no GitHub token", "BGGSCORE_GITHUB_TOKEN", "GITHUB_TOKEN")
    assert github.requests == []


# -- bad input: exit 2, nothing sent --------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["e", "--repo", "not-a-repo"], "is not OWNER/NAME"),
        (["--repo", REPO], "give EVENT_TYPE for a repository_dispatch or --workflow"),
        (["x" * 101, "--repo", REPO], "EVENT_TYPE must be 1 to 100 characters"),
        (["e", "--repo", REPO, "--payload", "oops"], "is not KEY=VALUE"),
        (["e", "--repo", REPO, "--payload-json", "[1]"], "must be a JSON object"),
        (["e", "--repo", REPO, *[f"--payload=k{i}=v" for i in range(9)]], "at most 8 fit"),
        (["--workflow", "score.yml", "--repo", REPO], "--workflow needs --ref"),
        (["e", "--workflow", "score.yml", "--ref", "main", "--repo", REPO], "not both"),
        (["e", "--repo", REPO, "--input", "a=1"], "--input only go with --workflow"),
        (["e", "--repo", REPO, "--if-changed", "missing.json"], "cannot read missing.json"),
    ],
)
def test_bad_input_exits_2_and_sends_nothing(
    cli, gh_env: Path, github: FakeGitHub, args: list[str], needle: str
) -> None:
    result = cli("dispatch", *args)
    assert result.exit_code == 2, result.stderr
    assert_one_line_error(result.stderr, needle)
    assert github.requests == []


def test_click_usage_errors_exit_2(cli, gh_env: Path) -> None:
    for args in (["e"], ["e", "--repo", REPO, "--max-hops", "-1"], ["e", "--bogus"]):
        result = cli("dispatch", *args)
        assert result.exit_code == 2
        assert "Traceback" not in result.stderr


# -- the loop guard -------------------------------------------------------------------------
def test_next_hop_in_actions(cli, gh_env: Path, github: FakeGitHub, monkeypatch) -> None:
    in_actions(
        monkeypatch, "repository_dispatch_dataform_complete_hops.json", "repository_dispatch"
    )
    result = cli("dispatch", "dataform_scored", "--repo", "phenrickson/bgg-data-warehouse")
    assert result.exit_code == 0, result.stderr
    [request] = github.requests
    assert request.body["client_payload"] == {"bggscore_hops": 3, "bggscore_origin": REPO}


@pytest.mark.parametrize(
    ("event", "name", "extra", "reason"),
    [
        (
            "repository_dispatch_dataform_complete_max_hops.json",
            "repository_dispatch",
            [],
            "loop guard: this would be hop 5 of a chain from phenrickson/bgg-data-warehouse "
            "allowed 4 (--max-hops)",
        ),
        (
            "repository_dispatch_predictions_complete.json",
            "repository_dispatch",
            ["--unless-event", "predictions_complete"],
            "loop guard: this run was triggered by predictions_complete (--unless-event)",
        ),
        (
            "schedule.json",
            "schedule",
            ["--unless-event", "push", "--unless-event", "schedule"],
            "loop guard: this run was triggered by schedule (--unless-event)",
        ),
    ],
)
def test_refusals_exit_0_and_say_why(
    cli, gh_env: Path, github: FakeGitHub, monkeypatch, event, name, extra, reason
) -> None:
    in_actions(monkeypatch, event, name)
    human = cli("dispatch", "dataform_ready", "--repo", REPO, *extra)
    assert human.exit_code == 0, human.stderr
    assert human.stdout == ""
    assert f"not dispatched: {reason}" in human.stderr
    machine = cli("dispatch", "dataform_ready", "--repo", REPO, *extra, "--json")
    data = json.loads(machine.stdout)
    assert (data["sent"], data["reason"]) == (False, reason)
    assert github.requests == []
    assert gh_env.read_text() == "dispatched=false\n" * 2


def test_workflow_run_and_unless_event_that_does_not_match(
    cli, gh_env: Path, github: FakeGitHub, monkeypatch
) -> None:
    in_actions(monkeypatch, "workflow_run_completed.json", "workflow_run")
    result = cli("dispatch", "complexity_complete", "--repo", REPO, "--unless-event", "schedule")
    assert result.exit_code == 0, result.stderr
    assert github.requests[0].body["client_payload"]["bggscore_hops"] == 1


def test_bad_event_file_is_an_input_error(cli, gh_env: Path, monkeypatch, tmp_path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"client_payload": {"bggscore_hops": "many"}}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    result = cli("dispatch", "e", "--repo", REPO)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "bggscore_hops is 'many', not a hop count")


# -- no-op does not cascade -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("doc", "sent"),
    [
        ({"job_id": None, "games_scored": 0, "skipped_reason": "no_changes"}, False),
        ({"job_id": "j1", "games_scored": 2500, "skipped_reason": None}, True),
        ({"games_embedded": {"text_embeddings": 0, "game_embeddings": 0}}, False),
        ({"games_embedded": {"text_embeddings": 0, "game_embeddings": 12}}, True),
        ({"games_total": 0, "stages": []}, False),
        ({"score": {"games_scored": 1}, "embed": {"games_embedded": {}}}, True),
    ],
)
def test_if_changed_file(
    cli, gh_env: Path, github: FakeGitHub, tmp_path: Path, doc: dict, sent: bool
) -> None:
    path = tmp_path / "result.json"
    path.write_text(json.dumps(doc))
    result = cli("dispatch", "predictions_complete", "--repo", REPO, "--if-changed", str(path))
    assert result.exit_code == 0, result.stderr
    assert len(github.requests) == int(sent)
    if not sent:
        assert "not dispatched: nothing changed" in result.stderr
    assert gh_env.read_text() == f"dispatched={str(sent).lower()}\n"


@pytest.mark.parametrize(("games", "sent"), [(0, False), (7, True)])
def test_if_changed_stdin(cli, gh_env: Path, github: FakeGitHub, games: int, sent: bool) -> None:
    score_json = json.dumps({"games_scored": games})
    result = cli("dispatch", "e", "--repo", REPO, "--if-changed", "-", "--json", input=score_json)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["sent"], data["games"]) == (sent, games)
    assert len(github.requests) == int(sent)


def test_if_changed_rejects_what_is_not_a_result(cli, gh_env: Path, github: FakeGitHub) -> None:
    result = cli("dispatch", "e", "--repo", REPO, "--if-changed", "-", input="scored 5 games")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "--if-changed: standard input is not JSON")
    result = cli("dispatch", "e", "--repo", REPO, "--if-changed", "-", input='{"rows": 5}')
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "is not a bggscore score/embed/run --json result")
    assert github.requests == []


# -- dry run and the token canary -----------------------------------------------------------
def test_dry_run_prints_the_request_redacted(cli, gh_env: Path, github: FakeGitHub) -> None:
    result = cli("dispatch", "e", "--repo", REPO, "--payload", "a=1", "--dry-run")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"POST {github.url}/repos/{REPO}/dispatches"
    assert "Authorization: Bearer ***" in lines
    assert "X-GitHub-Api-Version: 2022-11-28" in lines
    assert "Accept: application/vnd.github+json" in lines
    body = json.loads("\n".join(lines[lines.index("") + 1 :]))
    assert body["client_payload"] == {"a": "1", "bggscore_hops": 1, "bggscore_origin": "local"}
    assert CANARY not in result.stdout + result.stderr
    assert github.requests == []
    assert gh_env.read_text() == "dispatched=false\n"


@pytest.mark.parametrize(
    "source", ["GITHUB_TOKEN", "BGGSCORE_GITHUB_TOKEN", "BGGSCORE_GITHUB__TOKEN", "file"]
)
def test_every_token_source_is_sent_and_never_shown(
    cli, gh_env: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    monkeypatch.delenv("BGGSCORE_GITHUB_TOKEN")
    monkeypatch.delenv("BGGSCORE_GITHUB_API_URL")
    if source == "file":  # the URL from the file too
        Path("bggscore.toml").write_text(
            f'[github]\ntoken = "{CANARY}"\napi_url = "{github.url}"\n'
        )
    else:
        monkeypatch.setenv(source, CANARY)
        monkeypatch.setenv("BGGSCORE_GITHUB__API_URL", github.url)
    dry = cli("dispatch", "e", "--repo", REPO, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "Authorization: Bearer ***" in dry.stdout.splitlines()
    assert dry.stdout.splitlines()[0] == f"POST {github.url}/repos/{REPO}/dispatches"
    assert "not a bggscore setting" not in dry.stderr  # the aliases are settings
    sent = cli("dispatch", "e", "--repo", REPO, "--json")
    assert sent.exit_code == 0, sent.stderr
    for stream in (dry.stdout, dry.stderr, sent.stdout, sent.stderr):
        assert CANARY not in stream
    assert [r.headers["authorization"] for r in github.requests] == [f"Bearer {CANARY}"]


def test_a_variable_beats_the_config_file(cli, gh_env: Path, github: FakeGitHub) -> None:
    # before, the file's github.token won over BGGSCORE_GITHUB_TOKEN and GITHUB_TOKEN
    Path("bggscore.toml").write_text(
        '[github]\ntoken = "ghp_fromfile"\napi_url = "https://x.test"\n'
    )
    result = cli("dispatch", "e", "--repo", REPO, "--json")
    assert result.exit_code == 0, result.stderr
    assert [r.headers["authorization"] for r in github.requests] == [f"Bearer {CANARY}"]


def _scenarios(github_url: str) -> list[tuple[str, list[str], list[tuple[int, dict]], str]]:
    """(name, args, answers, API url) covering every path the token can travel."""
    rd = ["e", "--repo", REPO]
    wd = ["--workflow", "score.yml", "--ref", "main", "--repo", REPO]
    return [
        ("success", rd, [], github_url),
        ("workflow", wd, [], github_url),
        ("dry-run", [*rd, "--dry-run"], [], github_url),
        ("dry-run-json", [*wd, "--dry-run", "--json"], [], github_url),
        ("401", rd, [(401, {"message": "Bad credentials"})], github_url),
        ("403", wd, [(403, {"message": "Resource not accessible"})], github_url),
        ("404", rd, [(404, {"message": "Not Found"})], github_url),
        ("422", wd, [(422, {"message": "Unexpected inputs provided"})], github_url),
        ("422-echo", rd, [(422, {"message": f"got Bearer {CANARY}"})], github_url),
        ("5xx", [*rd, "--max-wait", "3"], [(500, {})] * 6, github_url),
        ("429", [*rd, "--max-wait", "0"], [(429, {})], github_url),
        ("network", rd, [], closed_port_url()),
        ("bad-input", [*rd, "--payload", "nope"], [], github_url),
        ("json-success", [*rd, "--json"], [], github_url),
    ]


@pytest.mark.parametrize("debug", [False, True])
def test_the_token_never_appears(
    cli,
    gh_env: Path,
    github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    debug: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen = []
    for name, args, answers, url in _scenarios(github.url):
        monkeypatch.setenv("BGGSCORE_GITHUB_API_URL", url)
        github.answers.clear()
        for status, body in answers:
            github.answer(status, body)
        result = cli(*(["--debug"] if debug else []), "dispatch", *args)
        seen.append((name, result.exit_code))
        for stream in (result.stdout, result.stderr):
            assert CANARY not in stream, (name, stream)
        if debug and result.exit_code == 1:
            assert "Traceback" in result.stderr  # --debug really ran its traceback path
    assert "HTTP Request: POST" in caplog.text  # httpx's own logging was captured
    assert CANARY not in caplog.text
    assert CANARY not in gh_env.read_text()
    assert CANARY not in (gh_env.parent / "summary.md").read_text()
    assert [code for _, code in seen] == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0], seen
    assert any(
        request.headers["authorization"] == f"Bearer {CANARY}" for request in github.requests
    )


# -- event values from a manual run or an attacker ------------------------------------------
def write_event(tmp_path: Path, event: dict) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    return path


def test_blank_guard_inputs_of_a_manual_run_mean_hop_zero(
    cli, gh_env: Path, github: FakeGitHub, monkeypatch, tmp_path: Path
) -> None:
    """A manual workflow_dispatch leaves bggscore_hops / bggscore_origin blank ("")."""
    event = {"inputs": {"bggscore_hops": "", "bggscore_origin": "", "start_year": "2024"}}
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(write_event(tmp_path, event)))
    monkeypatch.setenv("GITHUB_EVENT_NAME", "workflow_dispatch")
    result = cli("dispatch", "predictions_complete", "--repo", REPO)
    assert result.exit_code == 0, result.stderr
    [request] = github.requests
    assert request.body["client_payload"]["bggscore_hops"] == 1


def test_an_injected_origin_is_echoed_as_one_escaped_line(
    cli, gh_env: Path, github: FakeGitHub, monkeypatch, tmp_path: Path
) -> None:
    origin = "x\n::add-mask::secret\n::error title=owned::boom\n[click](https://evil.test) `c`"
    event = {"action": "dataform_complete", "client_payload": {
        "bggscore_hops": 4, "bggscore_origin": origin}}  # fmt: skip
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(write_event(tmp_path, event)))
    monkeypatch.setenv("GITHUB_EVENT_NAME", "repository_dispatch")
    monkeypatch.setenv("COLUMNS", "40")  # narrow: a wrapped line must not start a command
    result = cli("dispatch", "dataform_complete", "--repo", REPO)
    assert result.exit_code == 0, result.stderr
    assert github.requests == []
    summary = Path(gh_env.parent / "summary.md").read_text(encoding="utf-8")
    for text in (result.stderr, result.stdout, summary):
        for line in text.splitlines():
            assert not line.lstrip().startswith("::"), line
        assert "add-mask" not in text or "::add-mask" not in text
        assert "[click](" not in text and "`c`" not in text
    assert 'hop 5 of a chain from "x\\n' in result.stderr.replace("\n", "")
