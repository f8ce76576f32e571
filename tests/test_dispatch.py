"""`bggscore.dispatch`: requests GitHub accepts, retries, messages, the loop guard, no-op.

A real HTTP server on 127.0.0.1 checks what goes over the wire; `httpx.MockTransport` plays
GitHub's error answers, and an injected sleep records the backoff instead of waiting.
"""

from __future__ import annotations

import io
import json
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.github import EVENTS, FakeGitHub, closed_port_url, raw_server

from bggscore import __version__
from bggscore.dispatch import (
    MAX_WORKFLOW_INPUTS,
    DispatchOptions,
    DispatchRequest,
    GitHubClient,
    Guard,
    Trigger,
    build_request,
    check_repo,
    games_in_result,
    loop_guard,
    read_result,
    read_trigger,
    repository_dispatch,
    resolve_api_url,
    resolve_token,
    run_dispatch,
    workflow_dispatch,
)
from bggscore.errors import ConfigError, DispatchError, InputError, UsageError
from bggscore.settings import GitHubSettings, Settings, load_settings

TOKEN = "ghp_TestToken0123456789abcdefABCDEF0123"
API = "https://api.github.test"
LOCAL = Guard(hops=1, origin="local")


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings()


def with_github(
    settings: Settings, token: str | None = TOKEN, api_url: str | None = None
) -> Settings:
    """``settings`` with this GitHub token and API URL (the default URL when None)."""
    github = GitHubSettings(token=token, **({"api_url": api_url} if api_url else {}))
    return settings.model_copy(update={"github": github})


# -- mocked GitHub answers ------------------------------------------------------------------
@dataclass
class Scripted:
    """A MockTransport answering from a list (the last answer repeats); counts calls."""

    answers: list[httpx.Response | Exception]
    calls: int = 0
    seen: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        self.seen.append(request)
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise type(answer)(str(answer), request=request)
        return answer


def make_client(
    *answers: httpx.Response | Exception, max_wait: float = 60.0, now: float = 1_000_000.0
) -> tuple[GitHubClient, Scripted, list[float]]:
    script = Scripted(list(answers))
    waits: list[float] = []
    client = GitHubClient(
        API,
        TOKEN,
        transport=httpx.MockTransport(script),
        sleep=waits.append,
        clock=lambda: now,
        max_wait=max_wait,
    )
    return client, script, waits


def make_request(kind: str = "repository_dispatch") -> DispatchRequest:
    if kind == "workflow_dispatch":
        return workflow_dispatch("octo/ml", "score.yml", "main", {"stage": "main"}, LOCAL)
    return repository_dispatch("octo/ml", "dataform_complete", {"run_id": "1"}, LOCAL)


def send_error(client: GitHubClient, kind: str = "repository_dispatch") -> DispatchError:
    with client, pytest.raises(DispatchError) as caught:
        client.send(make_request(kind))
    return caught.value


def assert_clean(error: DispatchError) -> None:
    """One line, no token, and no chained exception that could carry request headers."""
    text = str(error)
    assert "\n" not in text
    assert TOKEN not in text and TOKEN not in repr(error.args)
    assert error.__cause__ is None and error.__context__ is None
    assert TOKEN not in "".join(traceback.format_exception(error))


# -- over a real socket ---------------------------------------------------------------------
def test_repository_dispatch_over_http(github: FakeGitHub, settings: Settings) -> None:
    options = DispatchOptions(
        repo="phenrickson/bgg-predictive-models",
        event_type="dataform_complete",
        payload=("total_games=31412",),
        payload_json='{"tables": ["games_features"], "total_games": 1}',
    )
    result = run_dispatch(options, with_github(settings, api_url=github.url), env={})

    assert (result.sent, result.status, result.attempts, result.hops) == (True, 204, 1, 1)
    [request] = github.requests
    assert request.method == "POST"
    assert request.path == "/repos/phenrickson/bgg-predictive-models/dispatches"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert request.headers["user-agent"] == f"bggscore/{__version__}"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {
        "event_type": "dataform_complete",
        "client_payload": {
            "tables": ["games_features"],
            "total_games": "31412",  # --payload wins, and stays a string
            "bggscore_hops": 1,
            "bggscore_origin": "local",
        },
    }


def test_workflow_dispatch_over_http(github: FakeGitHub, settings: Settings) -> None:
    env = {"GITHUB_REPOSITORY": "phenrickson/bgg-data-warehouse"}
    options = DispatchOptions(
        repo="phenrickson/bgg-predictive-models",
        workflow=".github/workflows/score.yml",
        ref="main",
        inputs=("stage=main", "max_games=5000"),
    )
    result = run_dispatch(options, with_github(settings, api_url=github.url + "/"), env=env)

    assert (result.sent, result.kind, result.workflow, result.status) == (
        True,
        "workflow_dispatch",
        "score.yml",
        204,
    )
    [request] = github.requests
    assert (
        request.path
        == "/repos/phenrickson/bgg-predictive-models/actions/workflows/score.yml/dispatches"
    )
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    # no loop-guard inputs unless asked: GitHub refuses inputs a workflow does not declare
    assert request.body == {"ref": "main", "inputs": {"stage": "main", "max_games": "5000"}}


def test_workflow_dispatch_guard_inputs_over_http(github: FakeGitHub, settings: Settings) -> None:
    options = DispatchOptions(
        repo="o/r", workflow="12345", ref="v1.2", inputs=("a=1",), guard_inputs=True
    )
    run_dispatch(options, with_github(settings, api_url=github.url), env={})
    [request] = github.requests
    assert request.path == "/repos/o/r/actions/workflows/12345/dispatches"
    assert request.body["inputs"] == {"a": "1", "bggscore_hops": "1", "bggscore_origin": "local"}


def test_status_200_with_run_details_is_success(github: FakeGitHub) -> None:
    github.answer(200, {"workflow_run_id": 1, "html_url": "https://github.test/run/1"})
    with GitHubClient(github.url, TOKEN, sleep=pytest.fail) as client:
        assert client.send(make_request("workflow_dispatch")).status == 200


def test_unauthorised_over_http_is_one_line(github: FakeGitHub) -> None:
    github.answer(401, {"message": "Bad credentials"})
    error = send_error(GitHubClient(github.url, TOKEN, sleep=pytest.fail))
    assert str(error) == (
        "GitHub rejected the token (401): it is invalid or expired; "
        "create a new one and set BGGSCORE_GITHUB_TOKEN"
    )
    assert_clean(error)
    assert len(github.requests) == 1


def test_unreachable_api_is_retried_then_one_line() -> None:
    url = closed_port_url()
    waits: list[float] = []
    error = send_error(GitHubClient(url, TOKEN, sleep=waits.append, max_wait=3))
    assert str(error).startswith(f"could not reach {url}: ")
    assert str(error).endswith("(3 attempts); check the network or BGGSCORE_GITHUB_API_URL")
    # each attempt keeps a second of the 3 s for itself (less what the refusals took)
    assert waits[0] == 1.0 and 0.5 < waits[1] <= 1.0 and len(waits) == 2
    assert_clean(error)


@pytest.mark.parametrize("behaviour", ["silent", "trickle"])
def test_max_wait_bounds_the_wall_time_under_a_hanging_server(behaviour: str) -> None:
    """httpx's timeouts bound each read: a server trickling a byte at a time kept one request
    open far past them. --max-wait bounds the whole call."""
    with raw_server(behaviour) as server:
        client = GitHubClient(server.url, TOKEN, max_wait=2.0, timeout=15.0)
        started = time.monotonic()
        error = send_error(client)
        elapsed = time.monotonic() - started
    assert elapsed <= 2.0 + 1.0, elapsed
    assert server.posts == 1  # sent once, and never again
    assert "no answer within --max-wait 2 s" in str(error)
    assert "it may have reached GitHub" in str(error)
    assert_clean(error)


def test_a_server_that_accepts_slowly_receives_one_post() -> None:
    """The request is sent, the answer comes after the read timeout: the dispatch arrived,
    and a retry would have delivered it twice."""
    with raw_server("late", delay=1.5) as server:
        client = GitHubClient(server.url, TOKEN, max_wait=10.0, timeout=0.5)
        error = send_error(client)
        time.sleep(1.6)  # past the late answer: a retry would have come by now
        assert server.posts == 1
    assert "it may have reached GitHub, so it was not sent again" in str(error)


def test_the_deadline_leaves_no_thread_that_keeps_the_process_alive() -> None:
    import threading

    with raw_server("silent") as server:
        client = GitHubClient(server.url, TOKEN, max_wait=0.5)
        with pytest.raises(DispatchError):
            client.send(make_request())
        workers = [t for t in threading.enumerate() if t.name == "bggscore-dispatch"]
        assert workers and all(t.daemon for t in workers)  # still waiting, and abandoned
        client.close()


# -- GitHub's errors, mocked ----------------------------------------------------------------
def test_401_is_not_retried() -> None:
    client, script, waits = make_client(httpx.Response(401, json={"message": "Bad credentials"}))
    error = send_error(client)
    assert "GitHub rejected the token (401): it is invalid or expired" in str(error)
    assert (script.calls, waits) == (1, [])
    assert_clean(error)


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("repository_dispatch", "'Contents: read and write'"),
        ("workflow_dispatch", "'Actions: read and write'"),
    ],
)
def test_403_names_the_permission(kind: str, needle: str) -> None:
    forbidden = httpx.Response(403, json={"message": "Resource not accessible by integration"})
    client, script, waits = make_client(forbidden)
    error = send_error(client, kind)
    assert f"GitHub refused the {kind} to octo/ml (403)" in str(error)
    assert needle in str(error)
    assert "(GitHub: Resource not accessible by integration)" in str(error)
    assert (script.calls, waits) == (1, [])
    assert_clean(error)


def test_404_repository_and_workflow() -> None:
    client, _, _ = make_client(httpx.Response(404, json={"message": "Not Found"}))
    assert str(send_error(client)) == ("repository octo/ml not found or the token cannot see it")
    client, _, _ = make_client(httpx.Response(404, json={"message": "Not Found"}))
    error = send_error(client, "workflow_dispatch")
    assert str(error).startswith("workflow score.yml not found in octo/ml")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"message": "Workflow does not have 'workflow_dispatch' trigger"},
            "GitHub rejected the workflow_dispatch (422): "
            "Workflow does not have 'workflow_dispatch' trigger",
        ),
        (
            {"message": "No ref found for: nope"},
            "GitHub rejected the workflow_dispatch (422): No ref found for: nope",
        ),
        (
            {"message": "Invalid request", "errors": ['Unexpected inputs provided: ["x"]']},
            "GitHub rejected the workflow_dispatch (422): Invalid request: "
            'Unexpected inputs provided: ["x"]',
        ),
    ],
)
def test_422_passes_githubs_message(body: dict[str, Any], expected: str) -> None:
    client, script, _ = make_client(httpx.Response(422, json=body))
    error = send_error(client, "workflow_dispatch")
    assert str(error) == expected
    assert script.calls == 1


def test_5xx_backs_off_exponentially_then_succeeds() -> None:
    client, script, waits = make_client(
        httpx.Response(502), httpx.Response(500), httpx.Response(204)
    )
    with client:
        sent = client.send(make_request())
    assert (sent.status, sent.attempts, script.calls) == (204, 3, 3)
    assert waits == [1.0, 2.0]


def test_5xx_gives_up_after_the_retries() -> None:
    client, script, waits = make_client(httpx.Response(503))
    error = send_error(client)
    assert script.calls == 6
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert str(error).startswith("GitHub answered 503 Service Unavailable after 6 attempts")
    assert "githubstatus.com" in str(error)
    assert_clean(error)


def test_total_wait_is_capped() -> None:
    client, script, waits = make_client(httpx.Response(500), max_wait=5)
    send_error(client)
    # the third backoff (4 s) is cut to what is left once the next attempt has its second
    assert waits[:2] == [1.0, 2.0] and 0.5 < waits[2] <= 1.0
    assert sum(waits) <= 5 - 1
    assert script.calls == 4


def test_429_honours_retry_after_seconds() -> None:
    client, _, waits = make_client(
        httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(204)
    )
    with client:
        assert client.send(make_request()).attempts == 2
    assert waits == [7.0]


def test_retry_after_as_http_date() -> None:
    now = 1_000_000.0
    when = format_datetime(datetime.fromtimestamp(now + 12, tz=timezone.utc), usegmt=True)
    client, _, waits = make_client(
        httpx.Response(503, headers={"Retry-After": when}), httpx.Response(204), now=now
    )
    with client:
        client.send(make_request())
    assert waits == [12.0]


def test_secondary_rate_limit_403_with_retry_after() -> None:
    limited = httpx.Response(
        403,
        headers={"Retry-After": "3"},
        json={"message": "You have exceeded a secondary rate limit."},
    )
    client, script, waits = make_client(limited, httpx.Response(204))
    with client:
        assert client.send(make_request()).status == 204
    assert (script.calls, waits) == (2, [3.0])


def test_rate_limit_waits_until_reset() -> None:
    now = 1_000_000.0
    limited = httpx.Response(
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(now) + 10)},
        json={"message": "API rate limit exceeded"},
    )
    client, _, waits = make_client(limited, httpx.Response(204), now=now)
    with client:
        client.send(make_request())
    assert waits == [11.0]


def test_rate_limit_reset_beyond_max_wait_fails_without_waiting() -> None:
    now = 1_000_000.0
    limited = httpx.Response(
        403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(now) + 3600)}
    )
    client, script, waits = make_client(limited, now=now)
    error = send_error(client)
    assert (script.calls, waits) == (1, [])
    assert str(error) == (
        "GitHub rate limit (403) on octo/ml: the next try is allowed in 3601 s, more than "
        "--max-wait 60 s (1 attempt) (rerun later or raise --max-wait)"
    )


def test_secondary_limit_without_headers_waits_a_minute() -> None:
    limited = httpx.Response(403, json={"message": "You have exceeded a secondary rate limit."})
    client, script, waits = make_client(limited, max_wait=62)
    error = send_error(client)
    assert waits == [60.0]
    assert script.calls == 2
    assert "GitHub rate limit (403) on octo/ml: still limited after 2 attempts" in str(error)


def test_429_without_headers_and_no_budget() -> None:
    client, script, waits = make_client(httpx.Response(429), max_wait=0)
    error = send_error(client)
    assert (script.calls, waits) == (1, [])
    assert str(error).startswith("GitHub rate limit (429) on octo/ml")


def test_network_errors_are_retried_then_reported() -> None:
    client, script, waits = make_client(httpx.ConnectError("name or service not known"))
    error = send_error(client)
    assert script.calls == 6
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert str(error) == (
        f"could not reach {API}: name or service not known (6 attempts); "
        "check the network or BGGSCORE_GITHUB_API_URL"
    )
    assert_clean(error)


def test_a_connect_timeout_then_success() -> None:
    client, script, waits = make_client(httpx.ConnectTimeout(""), httpx.Response(204))
    with client:
        assert client.send(make_request()).attempts == 2
    assert (script.calls, waits) == (2, [1.0])


@pytest.mark.parametrize(
    "sent_then_lost",
    [
        httpx.ReadTimeout("timed out"),
        httpx.WriteTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset by peer"),
    ],
)
def test_a_post_that_may_have_arrived_is_never_sent_again(sent_then_lost: Exception) -> None:
    """A read timeout after the request went out: GitHub may have started the run, so a
    second POST could start it twice."""
    client, script, waits = make_client(sent_then_lost, httpx.Response(204))
    error = send_error(client)
    assert (script.calls, waits) == (1, [])
    assert "it may have reached GitHub, so it was not sent again" in str(error)
    assert "check the Actions runs of octo/ml" in str(error)
    assert_clean(error)


def test_other_statuses_and_redirects_are_not_followed() -> None:
    moved = httpx.Response(301, headers={"Location": "https://elsewhere.test/"})
    client, script, _ = make_client(moved)
    error = send_error(client)
    assert str(error) == "GitHub answered 301 Moved Permanently"
    assert script.calls == 1


def test_server_text_echoing_the_token_is_redacted() -> None:
    echo = httpx.Response(422, json={"message": f"bad header Bearer {TOKEN}"})
    client, _, _ = make_client(echo)
    error = send_error(client)
    assert "Bearer ***" in str(error)
    assert_clean(error)


def test_the_client_repr_hides_the_token() -> None:
    client, _, _ = make_client(httpx.Response(204))
    with client:
        assert TOKEN not in repr(client) and TOKEN not in str(vars(client).get("api_url"))


# -- checks before anything is sent ---------------------------------------------------------
@pytest.mark.parametrize(
    "repo", ["phenrickson/bgg-data-warehouse", "a/b", "Org-1/repo.name_x-y", "octo/.github"]
)
def test_good_repos(repo: str) -> None:
    assert check_repo(repo) == repo


@pytest.mark.parametrize(
    "repo", ["nope", "a/b/c", "-a/b", "a/..", "a b/c", "a/", "/b", "a/b c", "a/b?x=1", "a/b#c"]
)
def test_bad_repos(repo: str) -> None:
    with pytest.raises(UsageError, match="is not OWNER/NAME"):
        check_repo(repo)


@pytest.mark.parametrize("length", [1, 100])
def test_event_type_lengths_accepted(length: int) -> None:
    request = repository_dispatch("o/r", "e" * length, {}, LOCAL)
    assert request.body["event_type"] == "e" * length


@pytest.mark.parametrize("event_type", ["", "e" * 101, "two\nlines"])
def test_event_type_rejected(event_type: str) -> None:
    with pytest.raises(UsageError, match="EVENT_TYPE"):
        repository_dispatch("o/r", event_type, {}, LOCAL)


def test_ten_top_level_keys_count_the_loop_guard() -> None:
    eight = {f"k{i}": "v" for i in range(8)}
    assert len(repository_dispatch("o/r", "e", eight, LOCAL).body["client_payload"]) == 10
    with pytest.raises(
        UsageError, match="has 9 top-level keys and at most 8 fit: GitHub accepts 10"
    ):
        repository_dispatch("o/r", "e", {**eight, "k8": "v"}, LOCAL)


def test_payload_size_limit() -> None:
    assert repository_dispatch("o/r", "e", {"blob": "x" * 65_000}, LOCAL)
    with pytest.raises(InputError, match="at most 65,535"):
        repository_dispatch("o/r", "e", {"blob": "x" * 65_536}, LOCAL)
    with pytest.raises(InputError, match="inputs is"):
        workflow_dispatch("o/r", "w.yml", "main", {"blob": "x" * 65_536}, LOCAL)


def options(**kwargs: Any) -> DispatchOptions:
    return DispatchOptions(repo="o/r", **kwargs)


@pytest.mark.parametrize("item", ["novalue", "=v", "1x=v", "a b=v", "a.b=v"])
def test_malformed_key_value(item: str) -> None:
    with pytest.raises(UsageError, match="is not KEY=VALUE"):
        build_request(options(event_type="e", payload=(item,)), LOCAL)
    with pytest.raises(UsageError, match="is not KEY=VALUE"):
        build_request(options(workflow="w.yml", ref="main", inputs=(item,)), LOCAL)


def test_key_value_edge_cases() -> None:
    request = build_request(options(event_type="e", payload=("k=", "eq=a=b", "k2=x")), LOCAL)
    assert request.body["client_payload"]["k"] == ""
    assert request.body["client_payload"]["eq"] == "a=b"


@pytest.mark.parametrize(
    ("text", "match"),
    [("{nope", "not valid JSON"), ("[1, 2]", "must be a JSON object, not list")],
)
def test_payload_json_must_be_an_object(text: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        build_request(options(event_type="e", payload_json=text), LOCAL)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event_type": "e", "payload": ("bggscore_hops=0",)},
        {"event_type": "e", "payload_json": '{"bggscore_origin": "x"}'},
        {"workflow": "w.yml", "ref": "main", "inputs": ("bggscore_hops=0",), "guard_inputs": True},
    ],
)
def test_loop_guard_keys_are_reserved(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError, match="which the loop guard sets itself"):
        build_request(options(**kwargs), LOCAL)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "give EVENT_TYPE for a repository_dispatch or --workflow FILE --ref REF"),
        ({"event_type": "e", "workflow": "w.yml", "ref": "main"}, "not both"),
        ({"workflow": "w.yml"}, "--workflow needs --ref"),
        ({"event_type": "e", "ref": "main"}, "--ref only go with --workflow"),
        ({"event_type": "e", "inputs": ("a=1",)}, "--input only go with --workflow"),
        ({"workflow": "w.yml", "ref": "main", "payload": ("a=1",)}, "--payload and"),
        ({"workflow": "../w.yml", "ref": "main"}, "is not a workflow file name"),
        ({"workflow": "w.txt", "ref": "main"}, "is not a workflow file name"),
        ({"workflow": "w.yml", "ref": "has space"}, "is not a branch or tag"),
    ],
)
def test_argument_combinations(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        build_request(options(**kwargs), LOCAL)


def test_workflow_inputs_limit() -> None:
    inputs = tuple(f"i{n}=v" for n in range(MAX_WORKFLOW_INPUTS))
    assert (
        len(build_request(options(workflow="w.yml", ref="m", inputs=inputs), LOCAL).body["inputs"])
        == 25
    )
    with pytest.raises(UsageError, match="26 workflow inputs; GitHub accepts at most 25"):
        build_request(options(workflow="w.yml", ref="m", inputs=(*inputs, "x=1")), LOCAL)
    with pytest.raises(UsageError, match="the 2 loop-guard inputs included"):
        build_request(
            options(workflow="w.yml", ref="m", inputs=inputs[:24], guard_inputs=True), LOCAL
        )


# -- token and API URL: settings, with the precedence of every other setting -----------------
GITHUB_FILE = '[github]\ntoken = "from-file"\napi_url = "https://file.example.com/api/v3"\n'


def github_settings(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], file: str | None = None
) -> Settings:
    """load_settings() with ``env`` set and ``file`` as ./bggscore.toml (``home`` isolates)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if file is not None:
        Path("bggscore.toml").write_text(file)
    return load_settings()


@pytest.mark.parametrize(
    ("env", "file", "expected"),
    [
        ({}, None, None),  # the default: no token
        ({}, GITHUB_FILE, "from-file"),
        ({"GITHUB_TOKEN": "g"}, GITHUB_FILE, "g"),  # any variable beats the file
        ({"BGGSCORE_GITHUB_TOKEN": "b"}, GITHUB_FILE, "b"),  # (before: the file beat both)
        ({"BGGSCORE_GITHUB__TOKEN": "n"}, GITHUB_FILE, "n"),
        ({"BGGSCORE_GITHUB_TOKEN": "b", "GITHUB_TOKEN": "g"}, None, "b"),  # bggscore's own
        (
            {"BGGSCORE_GITHUB__TOKEN": "n", "BGGSCORE_GITHUB_TOKEN": "b", "GITHUB_TOKEN": "g"},
            None,
            "n",
        ),
        (
            {"BGGSCORE_GITHUB__TOKEN": "", "BGGSCORE_GITHUB_TOKEN": " ", "GITHUB_TOKEN": "g"},
            None,
            "g",
        ),
        ({"BGGSCORE_GITHUB__TOKEN": " ", "GITHUB_TOKEN": ""}, GITHUB_FILE, "from-file"),  # blank
        ({"GITHUB_TOKEN": " padded "}, None, "padded"),
    ],
)
def test_token_precedence(
    home: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], file: str | None, expected
) -> None:
    assert resolve_token(github_settings(monkeypatch, env, file)) == expected


@pytest.mark.parametrize(
    ("env", "file", "expected"),
    [
        ({}, None, "https://api.github.com"),
        ({}, GITHUB_FILE, "https://file.example.com/api/v3"),
        (
            {"BGGSCORE_GITHUB_API_URL": "https://alias.example.com/"},
            GITHUB_FILE,
            "https://alias.example.com",
        ),
        (
            {"BGGSCORE_GITHUB__API_URL": "https://nested.example.com"},
            GITHUB_FILE,
            "https://nested.example.com",
        ),
        (  # the nested form over the alias (before: the alias won)
            {
                "BGGSCORE_GITHUB__API_URL": "https://nested.example.com",
                "BGGSCORE_GITHUB_API_URL": "https://alias.example.com",
            },
            None,
            "https://nested.example.com",
        ),
        ({"BGGSCORE_GITHUB_API_URL": " "}, GITHUB_FILE, "https://file.example.com/api/v3"),
    ],
)
def test_api_url_precedence(
    home: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], file: str | None, expected
) -> None:
    assert resolve_api_url(github_settings(monkeypatch, env, file)) == expected


def test_a_flag_beats_every_variable(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # no command has a GitHub flag today; load_settings' overrides are where one would go
    monkeypatch.setenv("BGGSCORE_GITHUB__TOKEN", "n")
    monkeypatch.setenv("BGGSCORE_GITHUB_API_URL", "https://alias.example.com")
    settings = load_settings(overrides={"github": {"token": "flag", "api_url": "https://f.test"}})
    assert (resolve_token(settings), resolve_api_url(settings)) == ("flag", "https://f.test")


def test_the_token_stays_secret_in_settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = github_settings(monkeypatch, {"GITHUB_TOKEN": TOKEN})
    for text in (repr(settings), str(settings), repr(settings.github), settings.model_dump_json()):
        assert TOKEN not in text
    assert resolve_token(settings) == TOKEN


def test_a_misspelt_github_key_does_not_echo_its_value(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BGGSCORE_GITHUB__TOKN", TOKEN)
    with pytest.raises(ConfigError, match=r"invalid setting github\.tokn") as caught:
        load_settings()
    assert TOKEN not in str(caught.value)


def test_a_token_that_cannot_be_a_header_is_refused_without_echo(home: Path) -> None:
    with pytest.raises(DispatchError) as caught:
        resolve_token(Settings(github={"token": "ghp_abc def"}))
    assert "ghp_abc" not in str(caught.value)


def test_missing_token_names_the_variables(settings: Settings) -> None:
    with pytest.raises(DispatchError) as caught:
        run_dispatch(options(event_type="e"), settings, env={"GITHUB_TOKEN": TOKEN})
    for name in ("BGGSCORE_GITHUB_TOKEN", "BGGSCORE_GITHUB__TOKEN", "GITHUB_TOKEN", "github.token"):
        assert name in str(caught.value)


def test_the_env_argument_is_not_a_token_source(settings: Settings) -> None:
    # run_dispatch's env is the Actions context (the triggering event); the token is a setting
    never = httpx.MockTransport(lambda request: pytest.fail("nothing may be sent"))
    opts = options(event_type="e", dry_run=True)
    result = run_dispatch(opts, settings, env={"GITHUB_TOKEN": TOKEN}, transport=never)
    assert result.request is not None and "Authorization" not in result.request["headers"]


def test_api_url_checks(home: Path) -> None:
    custom = Settings(github={"api_url": "https://ghe.example.com/api/v3/"})
    assert resolve_api_url(custom) == "https://ghe.example.com/api/v3"
    local = Settings(github={"api_url": "http://localhost:8080"})
    assert resolve_api_url(local) == "http://localhost:8080"
    for bad in ("ftp://x", "http://ghe.example.com", "https://u:p@ghe.example.com", "nope"):
        with pytest.raises(ConfigError):
            resolve_api_url(Settings(github={"api_url": bad}))
    with pytest.raises(ConfigError, match=r"check BGGSCORE_GITHUB_API_URL .* or github\.api_url"):
        resolve_api_url(Settings(github={"api_url": "nope"}))


def test_the_variable_names_agree() -> None:
    from bggscore.dispatch import API_URL_VARIABLES, TOKEN_VARIABLES
    from bggscore.settings import GITHUB_VARIABLES

    assert GITHUB_VARIABLES == {"token": TOKEN_VARIABLES, "api_url": API_URL_VARIABLES}


# -- the loop guard, from recorded events ---------------------------------------------------
def actions_env(event: str, name: str, **extra: str) -> dict[str, str]:
    return {
        "GITHUB_EVENT_PATH": str(EVENTS / event),
        "GITHUB_EVENT_NAME": name,
        "GITHUB_REPOSITORY": "phenrickson/bgg-predictive-models",
        **extra,
    }


def test_outside_actions_is_hop_one_from_local() -> None:
    assert loop_guard(read_trigger({}), {}) == Guard(hops=1, origin="local")


@pytest.mark.parametrize(
    ("event", "name", "hops"),
    [
        ("repository_dispatch_dataform_complete.json", "repository_dispatch", 1),
        ("repository_dispatch_dataform_complete_hops.json", "repository_dispatch", 3),
        ("workflow_run_completed.json", "workflow_run", 1),
        ("schedule.json", "schedule", 1),
        ("workflow_dispatch_guarded.json", "workflow_dispatch", 4),
    ],
)
def test_hops_count_up_from_the_triggering_event(event: str, name: str, hops: int) -> None:
    env = actions_env(event, name)
    guard = loop_guard(read_trigger(env), env)
    assert guard == Guard(hops=hops, origin="phenrickson/bgg-predictive-models")


def test_a_chain_at_max_hops_stops() -> None:
    env = actions_env("repository_dispatch_dataform_complete_max_hops.json", "repository_dispatch")
    guard = loop_guard(read_trigger(env), env)
    assert guard.hops == 5
    assert guard.refused == (
        "loop guard: this would be hop 5 of a chain from phenrickson/bgg-data-warehouse "
        "allowed 4 (--max-hops)"
    )
    assert loop_guard(read_trigger(env), env, max_hops=5).refused is None


PREDICTIONS = "repository_dispatch_predictions_complete.json"
DATAFORM = "repository_dispatch_dataform_complete.json"
RD = "repository_dispatch"


@pytest.mark.parametrize(
    ("event", "name", "unless", "refused"),
    [
        (PREDICTIONS, RD, "predictions_complete", True),
        (PREDICTIONS, RD, "repository_dispatch", True),
        (PREDICTIONS, "", "predictions_complete", True),  # no GITHUB_EVENT_NAME: the payload
        (DATAFORM, RD, "predictions_complete", False),
        ("workflow_run_completed.json", "workflow_run", "workflow_run", True),
        ("workflow_run_completed.json", "workflow_run", "completed", False),  # not an event type
        ("schedule.json", "schedule", "schedule", True),
        ("schedule.json", "schedule", "predictions_complete", False),
    ],
)
def test_unless_event(event: str, name: str, unless: str, refused: bool) -> None:
    env = actions_env(event, name)
    guard = loop_guard(read_trigger(env), env, unless_events=[unless])
    assert (guard.refused is not None) == refused
    if refused:
        assert guard.refused == f"loop guard: this run was triggered by {unless} (--unless-event)"


@pytest.mark.parametrize("hops", ["lots", -1, True, 1.5, {"n": 1}])
def test_a_bad_incoming_hop_count_is_an_input_error(tmp_path: Path, hops: Any) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "x", "client_payload": {"bggscore_hops": hops}}))
    with pytest.raises(InputError, match="not a hop count"):
        read_trigger({"GITHUB_EVENT_PATH": str(event), "GITHUB_EVENT_NAME": "repository_dispatch"})


def test_an_unreadable_event_file_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    for path in (tmp_path / "missing.json", tmp_path / "bad.json"):
        with pytest.raises(InputError, match="cannot read the triggering event"):
            read_trigger({"GITHUB_EVENT_PATH": str(path)})


def test_trigger_names() -> None:
    env = actions_env("repository_dispatch_predictions_complete.json", "repository_dispatch")
    trigger = read_trigger(env)
    assert trigger == Trigger(
        "repository_dispatch", "predictions_complete", 1, "phenrickson/bgg-predictive-models"
    )


def test_a_refused_dispatch_sends_nothing(settings: Settings) -> None:
    env = actions_env("repository_dispatch_dataform_complete_max_hops.json", "repository_dispatch")
    never = httpx.MockTransport(lambda request: pytest.fail("nothing may be sent"))
    opts = options(event_type="dataform_ready")
    result = run_dispatch(opts, with_github(settings), env=env, transport=never)
    assert (result.sent, result.hops) == (False, 5)
    assert result.reason is not None and result.reason.startswith("loop guard:")


# -- no-op does not cascade -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("doc", "games"),
    [
        ({"job_id": None, "games_scored": 0, "skipped_reason": "no_changes"}, 0),
        ({"job_id": "j", "games_scored": 2500}, 2500),
        ({"games_embedded": {"text_embeddings": 0, "game_embeddings": 0}}, 0),
        ({"games_embedded": {"text_embeddings": 3, "game_embeddings": 4}}, 7),
        ({"games_total": 0, "score": {"games_scored": 9}}, 0),
        ({"total_games": 12}, 12),
        ({"score": {"games_scored": 2}, "embed": {"games_embedded": {"text": 1}}}, 3),
        ({"stages": [{"games_scored": 0}, {"games_embedded": {"game": 0}}]}, 0),
    ],
)
def test_games_in_result(doc: dict[str, Any], games: int) -> None:
    assert games_in_result(doc) == games


@pytest.mark.parametrize(
    "doc", [[], {"foo": 1}, {"games_scored": "12"}, {"games_scored": True}, {"games_scored": -1}]
)
def test_not_a_result(doc: Any) -> None:
    with pytest.raises(InputError):
        games_in_result(doc)


def test_read_result_from_file_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "score.json"
    path.write_text(json.dumps({"games_scored": 5}))
    assert read_result(str(path), None) == 5
    assert read_result("-", io.StringIO('{"games_embedded": {"text": 2}}')) == 2
    (tmp_path / "log.txt").write_text("scored 5 games\n")
    with pytest.raises(InputError, match="is not JSON"):
        read_result(str(tmp_path / "log.txt"), None)
    with pytest.raises(InputError, match="cannot read"):
        read_result(str(tmp_path / "missing.json"), None)


@pytest.mark.parametrize(("games", "sent"), [(0, False), (3, True)])
def test_if_changed_gates_the_send(
    github: FakeGitHub, settings: Settings, tmp_path: Path, games: int, sent: bool
) -> None:
    result_file = tmp_path / "score.json"
    result_file.write_text(json.dumps({"games_scored": games}))
    opts = options(event_type="predictions_complete", if_changed=str(result_file))
    result = run_dispatch(opts, with_github(settings, api_url=github.url), env={})
    assert result.sent is sent
    assert len(github.requests) == int(sent)
    assert result.games == games
    if not sent:
        assert result.reason == (
            f"nothing changed: {result_file} reports 0 games processed (--min-games 1)"
        )


def test_min_games(github: FakeGitHub, settings: Settings) -> None:
    stdin = io.StringIO(json.dumps({"games_scored": 40}))
    opts = options(event_type="e", if_changed="-", min_games=50)
    configured = with_github(settings, api_url=github.url)
    assert run_dispatch(opts, configured, env={}, stdin=stdin).sent is False
    assert github.requests == []


# -- dry run --------------------------------------------------------------------------------
def test_dry_run_describes_and_redacts(settings: Settings) -> None:
    never = httpx.MockTransport(lambda request: pytest.fail("nothing may be sent"))
    opts = options(event_type="e", dry_run=True)
    result = run_dispatch(opts, with_github(settings), env={}, transport=never)
    assert (result.sent, result.dry_run) == (False, True)
    assert result.request is not None
    assert result.request["headers"]["Authorization"] == "Bearer ***"
    assert result.request["url"] == "https://api.github.com/repos/o/r/dispatches"
    assert result.request["body"]["client_payload"] == {
        "bggscore_hops": 1,
        "bggscore_origin": "local",
    }
    assert TOKEN not in json.dumps(result.as_dict())


def test_dry_run_without_a_token_warns(settings: Settings) -> None:
    result = run_dispatch(options(event_type="e", dry_run=True), settings, env={})
    assert result.request is not None and "Authorization" not in result.request["headers"]
    assert result.warnings and "BGGSCORE_GITHUB_TOKEN" in result.warnings[0]
