"""The demo page in a real Chromium, served by a real ``tether serve`` process: the page loads
with no failed request, an upload shows its parts, the Range button shows a 206, the WebSocket
says it is open and echoes a message sent with Enter, and the SSE clock ticks. Screenshots go
to reports/browser/ for a person to look at."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from tests.browser._browser import chromium
from tests.processes import free_port, read_until, reaped, spawn

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "reports" / "browser"


def test_the_demo_page_works_in_chromium(tmp_path: Path) -> None:
    port = free_port()
    proc = spawn("tether_asyncio", tmp_path, "serve", "--port", str(port))
    with reaped(proc):
        read_until(proc, f":{port}")
        with chromium() as browser:
            page: Any = browser.new_page()
            failed: list[str] = []
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
            page.goto(f"http://127.0.0.1:{port}/")

            # WebSocket: connected, then Enter in the field sends.
            page.wait_for_function("document.getElementById('ws-status').textContent === 'open'")
            page.fill("#ws-in", "hi from chromium")
            page.press("#ws-in", "Enter")
            page.wait_for_function(
                "document.getElementById('ws-out').textContent.includes('echo: hi from chromium')"
            )

            # The SSE clock shows the server's time, then the next second.
            page.wait_for_function("/UTC$/.test(document.getElementById('clock').textContent)")
            first = page.text_content("#clock")
            page.wait_for_function(
                f"document.getElementById('clock').textContent !== {first!r}", timeout=5000
            )

            # Range: a 206 with the right bytes (byte i of the file is i % 251).
            page.click("#range")
            page.wait_for_function("document.getElementById('range-out').textContent.length > 0")
            out = page.text_content("#range-out")
            assert out.startswith("206 bytes 100-199/67108864")
            assert out.splitlines()[1].split() == [str(i % 251) for i in range(100, 200)]
            # That long line wraps inside the page instead of running off to the right.
            assert page.evaluate(
                "(() => { const e = document.getElementById('range-out');"
                " return e.scrollWidth <= e.clientWidth && e.offsetHeight > 40; })()"
            )

            # Upload: nothing chosen gives a clear message; a file gives its parts.
            page.click("#upload button")
            assert page.text_content("#upload-out") == "Choose one or more files first."
            sample = tmp_path / "sample.txt"
            sample.write_bytes(b"tether\n" * 1000)
            page.set_input_files("#file", str(sample))
            page.click("#upload button")
            page.wait_for_function(
                "document.getElementById('upload-out').textContent.startsWith('200')"
            )
            assert '"filename": "sample.txt"' in page.text_content("#upload-out")
            assert '"size": 7000' in page.text_content("#upload-out")
            # The progress bar came out and shows the upload done.
            assert page.evaluate(
                "(() => { const b = document.getElementById('upload-progress');"
                " return !b.hidden && b.value === 100; })()"
            )

            # The curl hint names this server, not a placeholder.
            assert f"http://127.0.0.1:{port}/download" in page.text_content("#curl-hint")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "demo.png"), full_page=True)
            assert failed == []
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
