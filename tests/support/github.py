"""A real GitHub stand-in: an HTTP server on 127.0.0.1 that records what reaches it.

The ``github`` fixture (loaded by tests/conftest.py) gives each test its own server;
``closed_port_url`` is an address where nothing listens; ``raw_server`` answers late,
slowly or never. ``EVENTS`` holds the GitHub Actions event payloads the dispatch tests read.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@dataclass
class RawServer:
    """A bare socket server on 127.0.0.1 that reads each request whole, counts it, and then
    answers late, slowly or never (``behaviour``): what httpx's per-read timeouts miss."""

    url: str
    posts: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


def _read_request(conn: Any) -> bool:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            return False
        body += chunk
    return True


@contextmanager
def raw_server(behaviour: str, delay: float = 0.0) -> Iterator[RawServer]:
    """``silent``: never answers; ``trickle``: one byte of a 204 every 0.2 s, never ending;
    ``late``: a whole 204 after ``delay`` seconds."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    server = RawServer(url=f"http://127.0.0.1:{listener.getsockname()[1]}")

    def handle(conn: Any) -> None:
        with conn:
            if not _read_request(conn):
                return
            server.posts += 1
            if behaviour == "late":
                server.stop.wait(delay)
                conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                return
            status = b"HTTP/1.1 204 No Content\r\nX-Slow: " + b"a" * 10_000
            for byte in status:
                if behaviour != "trickle" or server.stop.wait(0.2):
                    break
                conn.sendall(bytes([byte]))
            server.stop.wait()

    def serve() -> None:
        while not server.stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:  # the accept timeout: look at stop again
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        thread.join()
        listener.close()
