"""The form both browser capture tests post, what each part must read as, and the capture index.

The form has what browsers treat specially: non-ASCII text, a multi-line textarea (sent with
CRLF), a file, an empty file input (an empty filename and application/octet-stream), a checkbox,
a file name with double quotes (percent-encoded as %22 by the HTML standard) and a non-ASCII
file name (sent as raw UTF-8).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.bodies._support import DATA
from tether.multipart import MultipartParser, PartData, PartStart, parse_boundary

PAGE = b"""<!doctype html><meta charset=utf-8><title>form</title>
<form method=post enctype=multipart/form-data action=/upload>
<input name=title><textarea name=comment></textarea>
<input type=file name=photo><input type=file name=attachment>
<input type=checkbox name=agree><input type=file name=notes>
<input type=file name=resume><button id=send>send</button></form>"""
TITLE = "Caf\u00e9 \u2615"
COMMENT = "first line\nsecond line"


def expected() -> list[dict[str, Any]]:
    """The parts, in order, as a capture index entry lists them."""
    text = {"filename": None, "content_type": None}
    return [
        {"name": "title", **text, "text": TITLE},
        {"name": "comment", **text, "text": "first line\r\nsecond line"},
        {"name": "photo", "filename": "pixel.png", "content_type": "image/png", "file": "pixel.png"},
        {"name": "attachment", "filename": "", "content_type": "application/octet-stream", "text": ""},
        {"name": "agree", **text, "text": "on"},
        {"name": "notes", "filename": "my %22best%22 notes.txt", "content_type": "text/plain", "file": "notes.txt"},
        {"name": "resume", "filename": "r\u00e9sum\u00e9.txt", "content_type": "text/plain", "file": "notes.txt"},
    ]  # fmt: skip


def files(tmp: Path) -> dict[str, Path]:
    """The files to attach, by input name, written under ``tmp`` with their awkward names."""
    shutil.copy(DATA / "pixel.png", tmp / "pixel.png")
    notes = (DATA / "notes.txt").read_bytes()
    (tmp / 'my "best" notes.txt').write_bytes(notes)
    (tmp / "r\u00e9sum\u00e9.txt").write_bytes(notes)
    return {
        "photo": tmp / "pixel.png",
        "notes": tmp / 'my "best" notes.txt',
        "resume": tmp / "r\u00e9sum\u00e9.txt",
    }


def parts(content_type: str, body: bytes, size: int) -> list[dict[str, Any]]:
    """Parse ``body`` fed in pieces of ``size`` bytes; each part's fields and data."""
    parser = MultipartParser(parse_boundary(content_type))
    found: list[dict[str, Any]] = []
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    for event in [e for piece in pieces for e in parser.feed(piece)] + parser.close():
        if isinstance(event, PartStart):
            found.append(
                {"name": event.name, "filename": event.filename,
                 "content_type": event.content_type, "data": b""}
            )  # fmt: skip
        elif isinstance(event, PartData):
            found[-1]["data"] += event.data
    return found


def check(content_type: str, body: bytes) -> None:
    """Assert that ``body`` reads as the form meant, fed whole, byte by byte and in 7s."""
    want = expected()
    for size in (len(body), 1, 7):
        got = parts(content_type, body, size)
        assert [(p["name"], p["filename"], p["content_type"]) for p in got] == [
            (e["name"], e["filename"], e["content_type"]) for e in want
        ]
        for part, spec in zip(got, want, strict=True):
            data = (DATA / spec["file"]).read_bytes() if "file" in spec else spec["text"].encode()
            assert part["data"] == data, part["name"]


def save(
    name: str, content_type: str, body: bytes, recorded: str, replaces: tuple[str, ...]
) -> None:
    """Write ``body`` as tests/bodies/data/``name`` and put it first in the capture index,
    dropping the entries whose file names start with ``replaces``."""
    (DATA / name).write_bytes(body)
    index = json.loads((DATA / "captures.json").read_text("utf-8"))
    captures = [c for c in index["captures"] if not c["file"].startswith(replaces)]
    entry = {"file": name, "content_type": content_type, "recorded": recorded, "parts": expected()}
    captures.insert(0, entry)
    index["captures"] = captures
    (DATA / "captures.json").write_text(json.dumps(index, indent=1, ensure_ascii=True) + "\n")
