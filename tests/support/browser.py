"""A real headless Chromium for the report's tests, driven over the DevTools protocol.

Chromium talks CDP over two pipes (``--remote-debugging-pipe``: it reads commands on fd 3
and writes answers and events on fd 4, each message JSON ending in a NUL byte), so no
WebDriver, no port and no Python dependency is needed. The browser gets a new profile, no
network use of its own (the flags below) and the page's network is switched off; every
request the page makes is recorded, so a test can assert it fetched nothing.

`ensure_chromium()` finds Debian's `chromium`, installs it with apt-get where it is missing
and this process may (root), and otherwise says why not (the caller skips with that).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
INSTALL_TIMEOUT = 900  # seconds: apt-get update and the package, once per machine


def find_chromium() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def ensure_chromium() -> tuple[str | None, str]:
    """(path, "") when Chromium is there or could be installed; (None, why) otherwise."""
    found = find_chromium()
    if found:
        return found, ""
    if not shutil.which("apt-get"):
        return None, "no chromium and no apt-get to install Debian's chromium package"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return None, "no chromium, and installing it (apt-get install chromium) needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            done = subprocess.run(
                step, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"could not install chromium ({' '.join(step)}: {exc})"
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).split())[-300:]
            return None, f"could not install chromium ({' '.join(step)}: {tail})"
    found = find_chromium()
    return (found, "") if found else (None, "apt-get installed chromium but it is not on PATH")


@dataclass
class Page:
    """What the page did: console errors, uncaught exceptions, the URLs it requested."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class Browser:
    """One Chromium process and its first tab, driven by CDP commands over the pipes."""

    def __init__(self, executable: str, profile: Path) -> None:
        commands_r, self._commands = os.pipe()  # we write, Chromium reads on fd 3
        self._events, events_w = os.pipe()  # Chromium writes on fd 4, we read
        command = [
            executable,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]

        def map_fds() -> None:  # runs in the child between fork and exec
            # through fresh copies: dup2 onto the same number (a pipe that already is fd 3)
            # would leave it close-on-exec
            reading, writing = os.dup(commands_r), os.dup(events_w)
            os.dup2(reading, 3)
            os.dup2(writing, 4)

        self.process = subprocess.Popen(
            command,
            preexec_fn=map_fds,  # the protocol's fds are 3 and 4, exactly
            close_fds=False,  # (our own pipe ends are not inheritable: closed at exec)
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_r)
        os.close(events_w)
        self._buffer = b""
        self._next = 0
        self._pending: list[dict[str, Any]] = []
        self.page = Page()
        self.session = self._attach()

    # -- the protocol -----------------------------------------------------------------
    def _read(self, timeout: float) -> dict[str, Any]:
        import select

        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._events], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._events, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium exited ({self.process.poll()})")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def _note(self, message: dict[str, Any]) -> None:
        """Keep what a test asserts on from the page's events."""
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = [a.get("value", a.get("description", "")) for a in params.get("args", [])]
            self.page.errors.append("console: " + " ".join(str(a) for a in args))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.page.errors.append(f"exception: {text}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.page.errors.append("log: " + params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            self.page.requests.append(params.get("request", {}).get("url", ""))

    def send(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 30
    ) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if getattr(self, "session", None):
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read(timeout)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self._note(answer)

    def _attach(self) -> str:
        self.session = ""
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = self.send(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
        )
        self.session = session["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
            self.send(domain)
        # the page may use no network at all: file:// alone works offline
        self.send(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        return self.session

    # -- what the tests use -------------------------------------------------------------
    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, ready: str, width: int = 1200, timeout: float = 90) -> None:
        """Go to ``url`` and wait until the expression ``ready`` is true."""
        self.resize(width, 900)
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"Boolean({ready})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready ({ready}) after {timeout} s")
            time.sleep(0.2)

    def resize(self, width: int, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def screenshot(self, path: Path, max_height: int = 12_000) -> bytes:
        """The whole page as a PNG (written to ``path``), at most ``max_height`` tall."""
        width = int(self.evaluate("document.documentElement.scrollWidth"))
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.resize(width, min(height, max_height))
        shot = self.send("Page.captureScreenshot", {"format": "png"}, timeout=60)
        data = base64.b64decode(shot["data"])
        path.write_bytes(data)
        return data

    def close(self) -> None:
        try:
            self.session = ""
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._commands, self._events):
            with suppress(OSError):
                os.close(fd)


@contextmanager
def chromium(executable: str) -> Iterator[Browser]:
    """A browser with a new profile folder, closed (and the folder removed) afterwards."""
    profile = Path(tempfile.mkdtemp(prefix="bggscore-chromium-"))
    browser = Browser(executable, profile)
    try:
        yield browser
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)


# -- is a screenshot blank? ------------------------------------------------------------------
# The PNG is decoded by the browser itself (an <img> drawn on a canvas), so the test needs no
# image library: the share of pixels unlike the most common colour (the background).
DRAWN_SHARE = """
new Promise(function (resolve, reject) {
  var img = new Image();
  img.onload = function () {
    var canvas = document.createElement("canvas");
    canvas.width = img.width; canvas.height = img.height;
    var ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    var data = ctx.getImageData(0, 0, img.width, img.height).data;
    var counts = new Map();
    for (var i = 0; i < data.length; i += 4) {
      var key = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
      counts.set(key, (counts.get(key) || 0) + 1);
    }
    var most = 0;
    counts.forEach(function (n) { if (n > most) { most = n; } });
    resolve({share: 1 - most / (data.length / 4), colours: counts.size,
             width: img.width, height: img.height});
  };
  img.onerror = function () { reject(new Error("the screenshot is not an image")); };
  img.src = "data:image/png;base64,%s";
})
"""


def drawn_share(browser: Browser, png: bytes) -> dict[str, Any]:
    """How much of a screenshot is drawn: share of non-background pixels, colours, size."""
    expression = DRAWN_SHARE % base64.b64encode(png).decode("ascii")
    result = browser.send(
        "Runtime.evaluate",
        {"expression": expression, "awaitPromise": True, "returnByValue": True},
        timeout=60,
    )
    if "exceptionDetails" in result:
        raise RuntimeError(f"decoding the screenshot: {result['exceptionDetails']}")
    return result["result"]["value"]
