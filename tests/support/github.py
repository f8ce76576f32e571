"""A real GitHub stand-in: an HTTP server on 127.0.0.1 that records what reaches it.

The ``github`` fixture (loaded by tests/conftest.py) gives each test its own server;
``closed_port_url`` is an address where nothing listens. ``EVENTS`` holds the GitHub
Actions event payloads the dispatch tests read.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "events"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGitHub:
    """A ThreadingHTTPServer on 127.0.0.1: records requests, answers from a queue (then 204)."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)

    def answer(self, status: int, body: Any = None, **headers: str) -> None:
        raw = b"" if body is None else json.dumps(body).encode()
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        self.answers.append((status, {k.replace("_", "-"): v for k, v in headers.items()}, raw))


def start_fake_github() -> tuple[FakeGitHub, Callable[[], None]]:
    fake = FakeGitHub(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            fake.requests.append(
                Recorded(
                    "POST",
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
            )
            status, headers, body = fake.answers.pop(0) if fake.answers else (204, {}, b"")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return fake, stop


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake, stop = start_fake_github()
    yield fake
    stop()


def closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
