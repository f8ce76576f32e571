"""Trigger the next pipeline stage on GitHub: the client, the checks and the loop guard.

Two kinds of dispatch are sent, both with one POST and a 204 in return:

* ``repository_dispatch`` (``POST /repos/{owner}/{repo}/dispatches``): an ``event_type`` and a
  ``client_payload`` of at most 10 top-level keys; how the two repositories talk today.
* ``workflow_dispatch`` (``POST /repos/{owner}/{repo}/actions/workflows/{file}/dispatches``): one
  workflow file, a ``ref`` and at most 25 string ``inputs``.

What went wrong with the curl loops this replaces shapes the rest: the body is built as data,
never by string concatenation; every limit GitHub enforces is checked before anything is sent;
every payload carries a hop count and an origin so two repositories cannot ping-pong for ever
(:func:`loop_guard`); a stage that changed nothing does not wake the next one
(:func:`games_in_result`); and the token never appears in any output, message or exception:
errors are built outside ``except`` blocks (no ``__context__`` holding an httpx request with its
headers) and every text that came from the network is passed through :func:`redact`.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO
from urllib.parse import quote, urlsplit

from bggscore.errors import ConfigError, DispatchError, InputError, UsageError
from bggscore.results import games_processed

if TYPE_CHECKING:
    import httpx

    from bggscore.settings import Settings

Kind = Literal["repository_dispatch", "workflow_dispatch"]

API_VERSION = "2022-11-28"
MAX_EVENT_TYPE = 100  # characters, GitHub's limit for event_type
MAX_PAYLOAD_KEYS = 10  # top-level client_payload keys, the loop-guard keys included
MAX_WORKFLOW_INPUTS = 25  # GitHub raised it from 10 to 25 (REST docs: "maximum ... is 25")
MAX_BODY_CHARS = 65_535  # client_payload / inputs: "cannot be more than 65,535 characters"
HOPS_KEY = "bggscore_hops"
ORIGIN_KEY = "bggscore_origin"
GUARD_KEYS = (HOPS_KEY, ORIGIN_KEY)
DEFAULT_MAX_HOPS = 4
DEFAULT_MAX_WAIT = 60.0
DEFAULT_RETRIES = 5
ATTEMPT_BUDGET = 1.0  # seconds kept for each attempt: no wait eats the time of the next POST
RATE_LIMIT_WAIT = 60.0  # GitHub: without a header, wait at least a minute after a rate limit
# as in bggscore.settings.GITHUB_VARIABLES (the one that wins first); named in messages
TOKEN_VARIABLES = ("BGGSCORE_GITHUB__TOKEN", "BGGSCORE_GITHUB_TOKEN", "GITHUB_TOKEN")
API_URL_VARIABLES = ("BGGSCORE_GITHUB__API_URL", "BGGSCORE_GITHUB_API_URL")
API_URL_VARIABLE = API_URL_VARIABLES[1]
REDACTED = "***"

# owner: a user or organisation login (letters, digits, hyphens; `_` for managed users);
# name: letters, digits, `.`, `-`, `_`, up to 100 characters.
OWNER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}")
NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,100}")
KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,99}")  # also GitHub's rule for input names
WORKFLOW_RE = re.compile(r"[A-Za-z0-9._-]+\.ya?ml|[0-9]+")
WORKFLOW_DIR = ".github/workflows/"
TOTAL_KEYS = ("games_total", "total_games")  # a `run` summary's grand total
COUNT_KEYS = ("games_scored", "games_embedded")


def default_sleep(seconds: float) -> None:
    """The real sleep; tests hand the client their own."""
    time.sleep(seconds)


def redact(text: str, token: str | None) -> str:
    """``text`` with every occurrence of the token replaced by ``***``."""
    return text.replace(token, REDACTED) if token else text


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


PLAIN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
# what markdown (the step summary) or HTML would read as markup, and `:` so that no wrapped
# line can start a workflow command (`::add-mask::`); escaped as JSON escapes characters
MARKUP = str.maketrans({ch: f"\\u{ord(ch):04x}" for ch in "`<>[]()!*_|#&:"})


def shown(value: Any, limit: int = 100) -> str:
    """A value from the triggering event as it may be echoed: itself when it is a plain name
    (``owner/repo``), else one escaped line (JSON escapes, markup escaped, cut at ``limit``):
    never a line break, a control character or markup that a log or a summary would obey."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if PLAIN_RE.fullmatch(text):
        return text
    cut = text[:limit] + ("…" if len(text) > limit else "")
    return json.dumps(cut, ensure_ascii=True).translate(MARKUP)


# -- arguments ------------------------------------------------------------------------------
def check_repo(repo: str) -> str:
    owner, slash, name = repo.partition("/")
    if (
        not slash
        or not OWNER_RE.fullmatch(owner)
        or not NAME_RE.fullmatch(name)
        or name in (".", "..")
    ):
        raise UsageError(
            f"--repo {repo!r} is not OWNER/NAME",
            "letters, digits and - in the owner; letters, digits, ., - and _ in the name, "
            "e.g. --repo phenrickson/bgg-data-warehouse",
        )
    return repo


def check_event_type(event_type: str) -> str:
    if not 1 <= len(event_type) <= MAX_EVENT_TYPE:
        raise UsageError(
            f"EVENT_TYPE must be 1 to {MAX_EVENT_TYPE} characters (got {len(event_type)})"
        )
    if any(not ch.isprintable() for ch in event_type):
        raise UsageError("EVENT_TYPE must not contain control characters or line breaks")
    return event_type


def check_workflow(workflow: str) -> str:
    """A workflow file name (``score.yml``) or id; a ``.github/workflows/`` prefix is dropped."""
    name = workflow.removeprefix("./").removeprefix(WORKFLOW_DIR)
    if not WORKFLOW_RE.fullmatch(name):
        raise UsageError(
            f"--workflow {workflow!r} is not a workflow file name or id",
            "give the file name in .github/workflows, e.g. --workflow score.yml",
        )
    return name


def check_ref(ref: str) -> str:
    if not ref or len(ref) > 255 or any(ch.isspace() or not ch.isprintable() for ch in ref):
        raise UsageError(f"--ref {ref!r} is not a branch or tag name")
    return ref


def parse_pairs(values: Iterable[str], option: str) -> dict[str, str]:
    """``KEY=VALUE`` strings into a dict (later keys win); values stay strings."""
    out: dict[str, str] = {}
    for item in values:
        key, equals, value = item.partition("=")
        if not equals or not KEY_RE.fullmatch(key):
            raise UsageError(
                f"{option} {item!r} is not KEY=VALUE",
                "KEY starts with a letter or _ and has only letters, digits, - and _",
            )
        out[key] = value
    return out


def parse_payload_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer of over 4300 digits
        problem = (
            f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else _one_line(str(exc))
        )
        raise UsageError(f"--payload-json is not valid JSON: {problem}") from None
    if not isinstance(value, dict):
        raise UsageError(f"--payload-json must be a JSON object, not {type(value).__name__}")
    return value


def _reject_guard_keys(keys: Iterable[str], option: str) -> None:
    taken = sorted(set(keys) & set(GUARD_KEYS))
    if taken:
        raise UsageError(
            f"{option} sets {', '.join(taken)}, which the loop guard sets itself",
            "use --max-hops to change how far a chain may go",
        )


def _check_size(body: Mapping[str, Any], what: str) -> None:
    size = len(json.dumps(body, separators=(",", ":"), ensure_ascii=False))
    if size > MAX_BODY_CHARS:
        raise InputError(
            f"{what} is {size:,} characters of JSON; GitHub accepts at most {MAX_BODY_CHARS:,}",
            "send a pointer (a job id or a URL) instead of the data",
        )


# -- the request ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DispatchRequest:
    """One dispatch, checked against GitHub's limits, ready to send."""

    kind: Kind
    repo: str
    path: str
    body: dict[str, Any]
    event_type: str | None = None
    workflow: str | None = None
    ref: str | None = None

    def describe(self, api_url: str, *, has_token: bool) -> dict[str, Any]:
        """Method, URL, headers (token shown as ``***``) and body, for --dry-run."""
        return {
            "method": "POST",
            "url": api_url + self.path,
            "headers": request_headers(REDACTED if has_token else None),
            "body": self.body,
        }


def repository_dispatch(
    repo: str, event_type: str, payload: Mapping[str, Any], guard: Guard
) -> DispatchRequest:
    """A checked ``repository_dispatch``; ``payload`` gets the loop-guard keys added."""
    check_repo(repo)
    check_event_type(event_type)
    _reject_guard_keys(payload, "--payload")
    added = guard.payload()
    client_payload = {**payload, **added}
    if len(client_payload) > MAX_PAYLOAD_KEYS:
        fit = MAX_PAYLOAD_KEYS - len(added)
        raise UsageError(
            f"the payload has {len(payload)} top-level keys and at most {fit} fit: GitHub "
            f"accepts {MAX_PAYLOAD_KEYS} in client_payload and bggscore adds "
            f"{' and '.join(added)} (client_payload would have {len(client_payload)})",
            "nest related values in one key with --payload-json",
        )
    _check_size(client_payload, "client_payload")
    owner, name = repo.split("/")
    return DispatchRequest(
        kind="repository_dispatch",
        repo=repo,
        path=f"/repos/{owner}/{name}/dispatches",
        body={"event_type": event_type, "client_payload": client_payload},
        event_type=event_type,
    )


def workflow_dispatch(
    repo: str,
    workflow: str,
    ref: str | None,
    inputs: Mapping[str, str],
    guard: Guard,
    *,
    guard_inputs: bool = False,
) -> DispatchRequest:
    """A checked ``workflow_dispatch``; the loop-guard keys become inputs only when asked,
    because GitHub refuses inputs the workflow does not declare."""
    check_repo(repo)
    workflow = check_workflow(workflow)
    if ref is None:
        raise UsageError("--workflow needs --ref BRANCH_OR_TAG (e.g. --ref main)")
    check_ref(ref)
    if guard_inputs:
        _reject_guard_keys(inputs, "--input")
        inputs = {**inputs, **{k: str(v) for k, v in guard.payload().items()}}
    if len(inputs) > MAX_WORKFLOW_INPUTS:
        raise UsageError(
            f"{len(inputs)} workflow inputs; GitHub accepts at most {MAX_WORKFLOW_INPUTS}"
            + (" (the 2 loop-guard inputs included)" if guard_inputs else "")
        )
    _check_size(inputs, "inputs")
    owner, name = repo.split("/")
    return DispatchRequest(
        kind="workflow_dispatch",
        repo=repo,
        path=f"/repos/{owner}/{name}/actions/workflows/{quote(workflow, safe='')}/dispatches",
        body={"ref": ref, "inputs": dict(inputs)},
        workflow=workflow,
        ref=ref,
    )


def request_headers(token: str | None) -> dict[str, str]:
    from bggscore import __version__

    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
        "User-Agent": f"bggscore/{__version__}",
        "Content-Type": "application/json",
    }
    if token is not None:
        headers = {"Authorization": f"Bearer {token}", **headers}
    return headers


# -- token and API URL ----------------------------------------------------------------------
# Both are settings (bggscore.settings.GITHUB_VARIABLES): flag > environment > config file >
# default, like every other setting; these functions only check what Settings holds.
def resolve_token(settings: Settings) -> str | None:
    """settings.github.token, from BGGSCORE_GITHUB__TOKEN, else BGGSCORE_GITHUB_TOKEN, else
    GITHUB_TOKEN, else github.token in the config file; blank counts as unset."""
    configured = settings.github.token
    token = configured.get_secret_value().strip() if configured is not None else ""
    if not token:
        return None
    if not all(33 <= ord(ch) <= 126 for ch in token):
        # never echo it: h11 would put the whole header value in its error message
        raise DispatchError(
            "the GitHub token contains spaces, quotes or other characters that cannot "
            "be sent in a header",
            f"check the value of {' / '.join(TOKEN_VARIABLES)} or github.token",
        )
    return token


def require_token(token: str | None) -> str:
    if token is None:
        raise DispatchError(
            "no GitHub token",
            f"set {TOKEN_VARIABLES[1]} (or {TOKEN_VARIABLES[0]}, {TOKEN_VARIABLES[2]}, or "
            "github.token in bggscore.toml)",
        )
    return token


def resolve_api_url(settings: Settings) -> str:
    """settings.github.api_url (BGGSCORE_GITHUB__API_URL, else BGGSCORE_GITHUB_API_URL, else
    github.api_url in the config file); https, or http on loopback."""
    url = settings.github.api_url.strip().rstrip("/")
    parts = urlsplit(url)
    where = f"check {API_URL_VARIABLE} (or {API_URL_VARIABLES[0]}) or github.api_url"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"GitHub API URL {url!r} is not an http(s) URL", where)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("GitHub API URL must not carry credentials, a query or a fragment", where)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme == "http" and not loopback:
        raise ConfigError(
            f"refusing to send the token over plain http to {parts.hostname}",
            "use https (GitHub Enterprise: https://HOST/api/v3)",
        )
    return url


# -- the loop guard -------------------------------------------------------------------------
@dataclass(frozen=True)
class Trigger:
    """What started this run: GitHub's event name, a repository_dispatch's event_type, and
    the hop count it carried (0 outside Actions or when absent)."""

    event_name: str | None = None
    event_type: str | None = None
    incoming_hops: int = 0
    incoming_origin: str | None = None

    @property
    def names(self) -> set[str]:
        return {name for name in (self.event_name, self.event_type) if name}


def read_trigger(env: Mapping[str, str]) -> Trigger:
    """Read the triggering event from ``GITHUB_EVENT_PATH`` (set inside Actions only)."""
    event_name = env.get("GITHUB_EVENT_NAME") or None
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return Trigger(event_name=event_name)
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad UTF-8, bad JSON, a huge integer
        reason = _one_line(str(exc))
        raise InputError(
            f"cannot read the triggering event GITHUB_EVENT_PATH={path}: {reason}"
        ) from None
    if not isinstance(event, dict):
        raise InputError(f"the triggering event in {path} is not a JSON object")
    client_payload = event.get("client_payload")
    is_repository_dispatch = event_name == "repository_dispatch" or (
        event_name is None and isinstance(client_payload, dict)
    )
    carried = client_payload if isinstance(client_payload, dict) else event.get("inputs")
    carried = carried if isinstance(carried, dict) else {}
    action = event.get("action")
    origin = carried.get(ORIGIN_KEY)
    return Trigger(
        event_name=event_name,
        event_type=action if is_repository_dispatch and isinstance(action, str) else None,
        incoming_hops=_hops(carried.get(HOPS_KEY), path),
        incoming_origin=origin if isinstance(origin, str) and origin.strip() else None,
    )


def _hops(value: Any, path: str) -> int:
    # a workflow_dispatch input left blank (a manual run) is "" : no chain yet
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    text = shown(value)
    text = f"'{text}'" if text == value else text  # a plain word, quoted as repr would
    raise InputError(
        f"the triggering event's {HOPS_KEY} is {text}, not a hop count",
        f"refusing to guess how deep this chain is; see {path}",
    )


@dataclass(frozen=True)
class Guard:
    """The hop count and origin this dispatch carries, and why it must not be sent (if so)."""

    hops: int
    origin: str
    refused: str | None = None

    def payload(self) -> dict[str, Any]:
        return {HOPS_KEY: self.hops, ORIGIN_KEY: self.origin}


def loop_guard(
    trigger: Trigger,
    env: Mapping[str, str],
    *,
    max_hops: int = DEFAULT_MAX_HOPS,
    unless_events: Iterable[str] = (),
) -> Guard:
    hops = trigger.incoming_hops + 1
    origin = env.get("GITHUB_REPOSITORY") or "local"
    matched = sorted(trigger.names & set(unless_events))
    if matched:
        return Guard(
            hops,
            origin,
            f"loop guard: this run was triggered by {matched[0]} (--unless-event)",
        )
    if hops > max_hops:
        # the origin came with the event: echoed only as one escaped line
        came_from = f" from {shown(trigger.incoming_origin)}" if trigger.incoming_origin else ""
        return Guard(
            hops,
            origin,
            f"loop guard: this would be hop {hops} of a chain{came_from} allowed "
            f"{max_hops} (--max-hops)",
        )
    return Guard(hops, origin)


# -- no-op does not cascade -----------------------------------------------------------------
def _count(value: Any, where: str, source: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, dict):
        return sum(_count(v, f"{where}.{k}", source) for k, v in value.items())
    raise InputError(f"{source}: {where} is {value!r}, not a count of games")


def games_in_result(doc: Any, source: str = "result") -> int:
    """Games a ``score`` / ``embed`` / ``run`` ``--json`` result processed.

    ``games_scored``; the sum of ``games_embedded``; a run summary's ``games_total`` (or
    ``total_games``); else the sum over nested stage results (``{"score": {...}, "embed":
    {...}}`` or a ``stages`` list of them).
    """
    if not isinstance(doc, dict):
        raise InputError(f"{source} is not a bggscore --json result (not a JSON object)")
    typed = games_processed(doc)  # a versioned result (bggscore.results) says it itself
    if typed is not None:
        return typed
    # a document built by hand (e.g. with jq in a workflow) or by an older bggscore
    for key in TOTAL_KEYS:
        if key in doc:
            return _count(doc[key], key, source)
    if any(key in doc for key in COUNT_KEYS):
        return sum(_count(doc[key], key, source) for key in COUNT_KEYS if key in doc)
    stages = doc.get("stages")
    nested: Any = stages if isinstance(stages, (list, dict)) else doc
    parts = list(nested.values()) if isinstance(nested, dict) else list(nested)
    found = [
        part
        for part in parts
        if isinstance(part, dict) and any(k in part for k in (*TOTAL_KEYS, *COUNT_KEYS))
    ]
    if not found:
        raise InputError(
            f"{source} is not a bggscore score/embed/run --json result",
            "expected games_scored, games_embedded or games_total",
        )
    return sum(games_in_result(part, source) for part in found)


def read_result(location: str, stdin: TextIO | None) -> int:
    """``games_in_result`` of a file, or of standard input when ``location`` is ``-``."""
    source = "standard input" if location == "-" else location
    try:
        if location == "-":
            if stdin is None:
                raise InputError("--if-changed - needs a result on standard input")
            text = stdin.read()
        else:
            text = Path(location).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise InputError(f"--if-changed: cannot read {source}: {reason}") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer of over 4300 digits
        detail = (
            f"{exc.msg} at line {exc.lineno}"
            if isinstance(exc, json.JSONDecodeError)
            else _one_line(str(exc))
        )
        raise InputError(
            f"--if-changed: {source} is not JSON ({detail})",
            "pass the output of `bggscore score --json`, `embed --json` or `run --json`",
        ) from None
    return games_in_result(doc, f"--if-changed: {source}")


# -- the client -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Sent:
    status: int
    attempts: int
    waited: float


@dataclass
class Attempt:
    """One POST: GitHub's answer, or why there is none and whether the request may have
    reached GitHub anyway (``unsure``: it was sent, or may have been, and no answer came)."""

    response: httpx.Response | None = None
    problem: str | None = None
    unsure: bool = False
    retryable: bool = True
    seconds: float = 0.0


class GitHubClient:
    """POSTs dispatches with retries; the only place the token is used.

    ``max_wait`` bounds the whole call: every request (connecting, sending, reading the
    answer, however slowly it trickles in) and every wait between attempts. A POST is sent
    again only when it surely did not reach GitHub: the connection could not be made, or
    GitHub answered 5xx, 429 or a secondary rate limit (403 with ``Retry-After`` or
    ``x-ratelimit-remaining: 0``). After a request went out and no answer came (a read
    timeout, a dropped connection, the deadline), it is never resent: a dispatch that arrived
    twice starts the next stage twice. Waits honour ``Retry-After`` / ``x-ratelimit-reset``;
    one GitHub asks for that does not fit in what is left is not started.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        max_wait: float = DEFAULT_MAX_WAIT,
        max_retries: int = DEFAULT_RETRIES,
        timeout: float = 15.0,
    ) -> None:
        import httpx

        self.api_url = api_url.rstrip("/")
        self._token = token
        self._owns_client = client is None
        self._http = client or httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,  # never resend the token to another host
        )
        self._sleep = sleep or default_sleep
        self._clock = clock or time.time
        self.max_wait = max_wait
        self.max_retries = max_retries
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"GitHubClient({self.api_url!r})"

    def close(self) -> None:
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, request: DispatchRequest) -> Sent:
        """Send ``request`` within ``max_wait`` seconds in all; a 2xx answer is success,
        anything else a DispatchError."""
        spent = 0.0  # requests and waits: what max_wait bounds
        waited = 0.0  # the waits alone, for messages
        attempt = 0
        while True:
            attempt += 1
            # a first attempt always gets its moment, even with --max-wait 0
            budget = max(self.max_wait - spent, ATTEMPT_BUDGET if attempt == 1 else 0.0)
            tried = self._post(request, budget)
            spent += tried.seconds
            response = tried.response
            # errors are raised here, outside any except block, so they carry no __context__
            if response is not None and response.is_success:
                return Sent(response.status_code, attempt, waited)
            if tried.unsure:
                raise self._unsure(request, tried.problem or "no answer", attempt)
            wait, asked = self._wait_for(response, attempt) if tried.retryable else (None, False)
            # what is left for waiting once the next attempt has its moment
            left = self.max_wait - spent - ATTEMPT_BUDGET
            if wait is None or attempt > self.max_retries or left <= 0 or (asked and wait > left):
                raise self._failure(request, response, tried.problem, attempt, waited, wait, left)
            wait = min(wait, left)
            self._sleep(wait)
            waited += wait
            spent += wait

    def _post(self, request: DispatchRequest, budget: float) -> Attempt:
        """One POST that returns within ``budget`` seconds, answer or not. It runs in a
        daemon thread: httpx's timeouts bound each read, not the request, so a server that
        trickles its answer could otherwise hold it for ever. A thread still waiting at the
        deadline is abandoned (its own timeouts end it; it never keeps the process alive)."""
        import httpx

        tried = Attempt()
        limit = max(budget, 0.001)
        timeout = httpx.Timeout(min(self.timeout, limit), connect=min(self.timeout, 5.0, limit))

        def post() -> None:
            try:
                tried.response = self._http.post(
                    self.api_url + request.path,
                    json=request.body,
                    headers=request_headers(self._token),
                    timeout=timeout,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # no connection, so nothing was sent: safe to try again
                tried.problem = _one_line(str(exc)) or type(exc).__name__
            except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
                # refused before sending; trying again would fail the same way
                tried.problem = _one_line(f"{type(exc).__name__}: {exc}")
                tried.retryable = False
            except httpx.TransportError as exc:  # read/write timeouts, resets, a cut answer
                tried.problem = _one_line(str(exc)) or type(exc).__name__
                tried.unsure = True
            except Exception as exc:  # anything else: the request may be out
                tried.problem = type(exc).__name__
                tried.unsure = True

        started = time.monotonic()
        worker = threading.Thread(target=post, name="bggscore-dispatch", daemon=True)
        worker.start()
        worker.join(limit)
        tried.seconds = time.monotonic() - started
        if worker.is_alive():
            return Attempt(
                problem=f"no answer within --max-wait {self.max_wait:g} s",
                unsure=True,
                seconds=tried.seconds,
            )
        return tried

    # -- retry policy --
    def _wait_for(self, response: httpx.Response | None, attempt: int) -> tuple[float | None, bool]:
        """(seconds to wait before the next attempt or None when not retryable, whether the
        server asked for that wait itself)."""
        backoff = float(2 ** (attempt - 1))
        if response is None:
            return backoff, False
        status = response.status_code
        if status >= 500:
            asked = self._asked_wait(response)
            return (asked, True) if asked is not None else (backoff, False)
        if status == 429 or (status == 403 and _rate_limited(response)):
            asked = self._asked_wait(response)
            if asked is not None:
                return asked, True
            return max(RATE_LIMIT_WAIT, backoff), True
        return None, False

    def _asked_wait(self, response: httpx.Response) -> float | None:
        retry_after = response.headers.get("retry-after")
        if retry_after:
            if retry_after.strip().isdigit():
                return float(retry_after.strip())
            try:
                when = parsedate_to_datetime(retry_after)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                return max(0.0, when.timestamp() - self._clock())
        if response.headers.get("x-ratelimit-remaining") == "0":
            reset = response.headers.get("x-ratelimit-reset", "")
            if reset.strip().isdigit():
                return max(0.0, float(reset) - self._clock()) + 1.0
        return None

    # -- messages --
    def _unsure(self, request: DispatchRequest, problem: str, attempts: int) -> DispatchError:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        error = DispatchError(
            f"no answer from {self.api_url} to the {request.kind} for {request.repo} "
            f"({problem}; {tries}): it may have reached GitHub, so it was not sent again",
            f"check the Actions runs of {request.repo} before dispatching by hand",
        )
        error.message = redact(error.message, self._token)
        error.hint = redact(error.hint, self._token) if error.hint else None
        error.args = (error.message,)
        return error

    def _failure(
        self,
        request: DispatchRequest,
        response: httpx.Response | None,
        network: str | None,
        attempts: int,
        waited: float,
        wait: float | None,
        left: float,
    ) -> DispatchError:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if response is None:
            error = DispatchError(
                f"could not reach {self.api_url}: {network} ({tries}); "
                f"check the network or {API_URL_VARIABLE}"
            )
        else:
            error = _status_error(request, response, tries, waited, wait, left, self.max_wait)
        error.message = redact(error.message, self._token)
        error.hint = redact(error.hint, self._token) if error.hint else None
        error.args = (error.message,)
        return error


def _rate_limited(response: httpx.Response) -> bool:
    if "retry-after" in response.headers or response.headers.get("x-ratelimit-remaining") == "0":
        return True
    return "rate limit" in _github_message(response).lower()


def _github_message(response: httpx.Response) -> str:
    """GitHub's own ``message`` (and ``errors``) from a JSON error body, on one line."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return _one_line(response.text[:300])
    if not isinstance(body, dict):
        return ""
    text = str(body.get("message") or "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        details = [
            str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e)
            for e in errors[:3]
        ]
        text = f"{text}: {'; '.join(details)}" if text else "; ".join(details)
    return _one_line(text)


def _status_error(
    request: DispatchRequest,
    response: httpx.Response,
    tries: str,
    waited: float,
    wait: float | None,
    left: float,
    max_wait: float,
) -> DispatchError:
    status = response.status_code
    said = _github_message(response)
    github = f" (GitHub: {said})" if said else ""
    workflow = request.kind == "workflow_dispatch"
    if status == 401:
        return DispatchError(
            "GitHub rejected the token (401): it is invalid or expired; "
            "create a new one and set BGGSCORE_GITHUB_TOKEN"
        )
    if status == 429 or (status == 403 and _rate_limited(response)):
        if waited == 0 and wait is not None and wait > left:
            detail = (
                f"the next try is allowed in {math.ceil(wait)} s, more than --max-wait "
                f"{max_wait:g} s ({tries})"
            )
        else:
            detail = (
                f"still limited after {tries} and {waited:.0f} s of waiting "
                f"(--max-wait {max_wait:g} s)"
            )
        return DispatchError(
            f"GitHub rate limit ({status}) on {request.repo}: {detail}",
            "rerun later or raise --max-wait",
        )
    if status == 403:
        scope = (
            "a fine-grained token needs 'Actions: read and write' on it, a classic token the "
            "repo scope"
            if workflow
            else "a fine-grained token needs 'Contents: read and write' on it, a classic token "
            "the repo scope; the Actions GITHUB_TOKEN cannot dispatch to another repository"
        )
        return DispatchError(
            f"GitHub refused the {request.kind} to {request.repo} (403): {scope}{github}"
        )
    if status == 404:
        if workflow:
            return DispatchError(
                f"workflow {request.workflow} not found in {request.repo}, or the token cannot "
                "see the repository",
                "give the file name in .github/workflows on the default branch",
            )
        return DispatchError(f"repository {request.repo} not found or the token cannot see it")
    if status == 422:
        return DispatchError(
            f"GitHub rejected the {request.kind} (422): {said or 'unprocessable request'}"
        )
    if status >= 500:
        return DispatchError(
            f"GitHub answered {status} {response.reason_phrase} after {tries} and {waited:.0f} s "
            "of waiting",
            "GitHub may be having trouble (https://www.githubstatus.com); rerun later",
        )
    return DispatchError(f"GitHub answered {status} {response.reason_phrase}{github}")


# -- one command: check, guard, send --------------------------------------------------------
@dataclass(frozen=True)
class DispatchOptions:
    """What `bggscore dispatch` was asked to do, as given on the command line."""

    repo: str
    event_type: str | None = None
    payload: tuple[str, ...] = ()
    payload_json: str | None = None
    workflow: str | None = None
    ref: str | None = None
    inputs: tuple[str, ...] = ()
    guard_inputs: bool = False
    max_hops: int = DEFAULT_MAX_HOPS
    unless_events: tuple[str, ...] = ()
    if_changed: str | None = None
    min_games: int = 1
    max_wait: float = DEFAULT_MAX_WAIT
    dry_run: bool = False

    @property
    def kind(self) -> Kind:
        return "workflow_dispatch" if self.workflow is not None else "repository_dispatch"


@dataclass
class DispatchResult:
    sent: bool
    kind: Kind
    repo: str
    hops: int
    origin: str
    event_type: str | None = None
    workflow: str | None = None
    ref: str | None = None
    status: int | None = None
    reason: str | None = None
    dry_run: bool = False
    attempts: int = 0
    games: int | None = None
    request: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "sent": self.sent,
            "kind": self.kind,
            "repo": self.repo,
            "event_type": self.event_type,
            "workflow": self.workflow,
            "ref": self.ref,
            "status": self.status,
            "hops": self.hops,
            "origin": self.origin,
            "reason": self.reason,
            "dry_run": self.dry_run,
            "attempts": self.attempts,
            "games": self.games,
        }
        if self.request is not None:
            data["request"] = self.request
        return data

    @property
    def target(self) -> str:
        return self.event_type or f"{self.workflow}@{self.ref}"

    def summary(self) -> str:
        if self.sent:
            return (
                f"dispatched {self.kind} {self.target} to {self.repo} "
                f"({self.status}, hop {self.hops} from {self.origin})"
            )
        if self.dry_run and self.request is not None:
            return f"dry run: nothing sent to {self.repo}"
        return f"not dispatched: {self.reason}"


def _check_combination(options: DispatchOptions) -> None:
    both = "give EVENT_TYPE for a repository_dispatch or --workflow FILE --ref REF for a "
    if options.workflow is None:
        if options.event_type is None:
            raise UsageError(both + "workflow_dispatch")
        extra = [
            flag
            for flag, given in (
                ("--ref", options.ref is not None),
                ("--input", bool(options.inputs)),
                ("--guard-inputs", options.guard_inputs),
            )
            if given
        ]
        if extra:
            raise UsageError(f"{', '.join(extra)} only go with --workflow (a workflow_dispatch)")
        return
    if options.event_type is not None:
        raise UsageError(both + "workflow_dispatch, not both")
    if options.payload or options.payload_json is not None:
        raise UsageError(
            "--payload and --payload-json go with a repository_dispatch EVENT_TYPE",
            "a workflow_dispatch takes --input KEY=VALUE",
        )


def build_request(options: DispatchOptions, guard: Guard) -> DispatchRequest:
    """The checked request ``options`` describe (UsageError / InputError when it cannot be)."""
    _check_combination(options)
    if options.workflow is not None:
        inputs = parse_pairs(options.inputs, "--input")
        return workflow_dispatch(
            options.repo,
            options.workflow,
            options.ref,
            inputs,
            guard,
            guard_inputs=options.guard_inputs,
        )
    assert options.event_type is not None  # _check_combination
    from_json = parse_payload_json(options.payload_json) if options.payload_json else {}
    _reject_guard_keys(from_json, "--payload-json")
    payload = {**from_json, **parse_pairs(options.payload, "--payload")}
    return repository_dispatch(options.repo, options.event_type, payload, guard)


def run_dispatch(
    options: DispatchOptions,
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    client: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> DispatchResult:
    """Check everything, apply the loop guard and --if-changed, then send (or describe)."""
    env = os.environ if env is None else env
    _check_combination(options)  # the usage errors first, before any file is read
    games = read_result(options.if_changed, stdin) if options.if_changed else None
    guard = loop_guard(
        read_trigger(env), env, max_hops=options.max_hops, unless_events=options.unless_events
    )
    request = build_request(options, guard)
    api_url = resolve_api_url(settings)
    token = resolve_token(settings)
    result = DispatchResult(
        sent=False,
        kind=request.kind,
        repo=request.repo,
        hops=guard.hops,
        origin=guard.origin,
        event_type=request.event_type,
        workflow=request.workflow,
        ref=request.ref,
        games=games,
        dry_run=options.dry_run,
    )
    if guard.refused:
        result.reason = guard.refused
        return result
    if games is not None and games < options.min_games:
        source = "standard input" if options.if_changed == "-" else options.if_changed
        result.reason = (
            f"nothing changed: {source} reports {games} games processed "
            f"(--min-games {options.min_games})"
        )
        return result
    if options.dry_run:
        result.reason = "dry run"
        result.request = request.describe(api_url, has_token=token is not None)
        if token is None:
            result.warnings.append(
                "no GitHub token is set, so a real run would fail; set BGGSCORE_GITHUB_TOKEN"
            )
        return result
    with GitHubClient(
        api_url,
        require_token(token),
        client=client,
        transport=transport,
        sleep=sleep,
        clock=clock,
        max_wait=options.max_wait,
    ) as github:
        sent = github.send(request)
    result.sent = True
    result.status = sent.status
    result.attempts = sent.attempts
    return result
