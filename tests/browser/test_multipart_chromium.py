"""A real Chromium posts a real form, and tether.multipart reads exactly what it meant.

The form has what browsers treat specially: non-ASCII text, a multi-line textarea (sent with
CRLF), a file, an empty file input (an empty filename and application/octet-stream), a checkbox,
a file name with double quotes (percent-encoded as %22 by the HTML standard) and a non-ASCII
file name (sent as raw UTF-8). ``python -m tests.browser.test_multipart_chromium`` records the
body into tests/bodies/data/ as a capture (replacing the browser's earlier one), so the capture
tests replay what this Chromium really sent.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from tests.bodies._support import DATA
from tests.browser._browser import chromium
from tests.browser._recorder import FormServer
from tether.multipart import MultipartParser, PartData, PartEnd, PartStart, parse_boundary

PAGE = b"""<!doctype html><meta charset=utf-8><title>form</title>
<form method=post enctype=multipart/form-data action=/upload>
<input name=title><textarea name=comment></textarea>
<input type=file name=photo><input type=file name=attachment>
<input type=checkbox name=agree><input type=file name=notes>
<input type=file name=resume><button id=send>send</button></form>"""

def _expected() -> list[dict[str, Any]]:
    text = {"filename": None, "content_type": None}
    return [
        {"name": "title", **text, "text": "Caf\u00e9 \u2615"},
        {"name": "comment", **text, "text": "first line\r\nsecond line"},
        {"name": "photo", "filename": "pixel.png", "content_type": "image/png", "file": "pixel.png"},
        {"name": "attachment", "filename": "", "content_type": "application/octet-stream", "text": ""},
        {"name": "agree", **text, "text": "on"},
        {"name": "notes", "filename": "my %22best%22 notes.txt", "content_type": "text/plain", "file": "notes.txt"},
        {"name": "resume", "filename": "r\u00e9sum\u00e9.txt", "content_type": "text/plain", "file": "notes.txt"},
    ]  # fmt: skip


def record(tmp: Path) -> tuple[str, bytes, str]:
    """Post the form from Chromium; (Content-Type, body, browser version)."""
    shutil.copy(DATA / "pixel.png", tmp / "pixel.png")
    notes = (DATA / "notes.txt").read_bytes()
    (tmp / 'my "best" notes.txt').write_bytes(notes)
    (tmp / "r\u00e9sum\u00e9.txt").write_bytes(notes)
    server = FormServer(PAGE)
    try:
        with chromium() as browser:
            page = browser.new_page()
            page.goto(server.url)
            page.fill("input[name=title]", "Caf\u00e9 \u2615")
            page.fill("textarea[name=comment]", "first line\nsecond line")
            page.set_input_files("input[name=photo]", str(tmp / "pixel.png"))
            page.check("input[name=agree]")
            page.set_input_files("input[name=notes]", str(tmp / 'my "best" notes.txt'))
            page.set_input_files("input[name=resume]", str(tmp / "r\u00e9sum\u00e9.txt"))
            page.click("#send")
            page.wait_for_selector("#done")
            version = browser.version
        assert server.recorded.done.wait(10)
        return server.recorded.content_type.decode(), server.recorded.body, version
    finally:
        server.close()


def _parts(content_type: str, body: bytes, size: int) -> list[dict[str, Any]]:
    parser = MultipartParser(parse_boundary(content_type))
    parts: list[dict[str, Any]] = []
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    for event in [e for piece in pieces for e in parser.feed(piece)] + parser.close():
        if isinstance(event, PartStart):
            parts.append(
                {"name": event.name, "filename": event.filename,
                 "content_type": event.content_type, "data": b""}
            )  # fmt: skip
        elif isinstance(event, PartData):
            parts[-1]["data"] += event.data
        elif isinstance(event, PartEnd):
            pass
    return parts


def test_chromium_form_post_reads_as_sent(tmp_path: Path) -> None:
    content_type, body, _ = record(tmp_path)
    assert content_type.startswith("multipart/form-data; boundary=----WebKitFormBoundary")
    expected = _expected()
    for size in (len(body), 1, 7):
        got = _parts(content_type, body, size)
        assert [(p["name"], p["filename"], p["content_type"]) for p in got] == [
            (e["name"], e["filename"], e["content_type"]) for e in expected
        ]
        for part, want in zip(got, expected, strict=True):
            data = (DATA / want["file"]).read_bytes() if "file" in want else want["text"].encode()
            assert part["data"] == data, part["name"]


def main() -> None:
    """Record this Chromium's body as tests/bodies/data/chromium-<major>.multipart."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        content_type, body, version = record(Path(tmp))
    name = f"chromium-{version.split('.')[0]}.multipart"
    (DATA / name).write_bytes(body)
    index = json.loads((DATA / "captures.json").read_text("utf-8"))
    captures = [c for c in index["captures"] if not c["file"].startswith(("chrome-", "chromium-"))]
    captures.insert(
        0,
        {
            "file": name,
            "content_type": content_type,
            "recorded": f"Chromium {version} (Debian), driven by Playwright, over 127.0.0.1",
            "parts": _expected(),
        },
    )
    index["captures"] = captures
    (DATA / "captures.json").write_text(json.dumps(index, indent=1, ensure_ascii=True) + "\n")
    print(f"recorded {name}: {len(body)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
