"""A real Firefox for tests: Debian's ``firefox-esr`` driven over WebDriver BiDi.

Playwright drives only its own patched Firefox, which cannot be downloaded here, and Debian
ships no geckodriver. Firefox itself speaks WebDriver BiDi (W3C) on ``--remote-debugging-port``,
so a few commands over one WebSocket (the ``websockets`` client) are all a test needs: open a
page, run a script, hand files to an ``<input type=file>``. :func:`firefox` skips the calling
test cleanly when Firefox is missing. The profile's preferences keep a headless Firefox from
reaching for the network: every page these tests open is on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FIREFOX = os.environ.get("TETHER_FIREFOX", "firefox-esr")
_PREFS = {
    "app.update.enabled": False,
    "app.update.auto": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.startup.homepage": "about:blank",
    "datareporting.policy.dataSubmissionEnabled": False,
    "extensions.update.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "toolkit.telemetry.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/",
}
_LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")


class BiDiError(RuntimeError):
    """A BiDi command answered with an error."""


class Page:
    """One browsing context of a Firefox driven over BiDi (the commands these tests use)."""

    def __init__(self, socket: Any) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        session = self.command("session.new", {"capabilities": {}})
        self.version: str = session["capabilities"]["browserVersion"]
        tree = self.command("browsingContext.getTree", {})
        self.context: str = tree["contexts"][0]["context"]

    def command(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one command and return its result (events in between are ignored)."""
        ident = next(self._ids)
        self._socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=30))
            if message.get("id") != ident:
                continue
            if message.get("type") == "error":
                raise BiDiError(f"{method}: {message.get('error')}: {message.get('message')}")
            result: dict[str, Any] = message["result"]
            return result

    def goto(self, url: str) -> None:
        """Navigate and wait until the page has loaded."""
        self.command(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )

    def evaluate(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page (awaiting a promise); the result as BiDi's value."""
        result = self.command(
            "script.evaluate",
            {"expression": expression, "target": {"context": self.context}, "awaitPromise": True},
        )
        if result.get("type") == "exception":
            raise BiDiError(result["exceptionDetails"]["text"])
        return result["result"]

    def set_files(self, selector: str, paths: list[Path]) -> None:
        """Give the ``<input type=file>`` matching ``selector`` these files, as a user would."""
        node = self.evaluate(f"document.querySelector({json.dumps(selector)})")
        self.command(
            "input.setFiles",
            {"context": self.context, "element": {"sharedId": node["sharedId"]},
             "files": [str(path) for path in paths]},
        )  # fmt: skip


def _start(profile: str) -> tuple[subprocess.Popen[str], str]:
    Path(profile, "user.js").write_text(
        "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in _PREFS.items())
    )
    process = subprocess.Popen(
        [FIREFOX, "--headless", "--no-remote", "--profile", profile, "--remote-debugging-port=0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    for line in process.stderr:
        match = _LISTENING.search(line)
        if match:
            # Keep draining stderr so Firefox never blocks on a full pipe.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, match.group(1)
    process.wait(10)
    raise RuntimeError(f"{FIREFOX} exited with {process.returncode} before listening")


@contextlib.contextmanager
def firefox() -> Iterator[Page]:
    """A headless Firefox with one page, shut down afterwards."""
    if not shutil.which(FIREFOX):
        pytest.skip(f"no {FIREFOX} (apt-get install firefox-esr)")
    from websockets.sync.client import connect

    with tempfile.TemporaryDirectory() as profile:
        process, url = _start(profile)
        try:
            with connect(url + "/session", max_size=None, open_timeout=30) as socket:
                page = Page(socket)
                try:
                    yield page
                finally:
                    with contextlib.suppress(Exception):
                        page.command("session.end", {})
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
