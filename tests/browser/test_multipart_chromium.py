"""A real Chromium posts a real form, and tether.multipart reads exactly what it meant.

The form is tests/browser/_form.py's. ``python -m tests.browser.test_multipart_chromium``
records the body into tests/bodies/data/ as a capture (replacing the browser's earlier one), so
the capture tests replay what this Chromium really sent.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.browser import _form
from tests.browser._browser import chromium
from tests.browser._recorder import FormServer


def record(tmp: Path) -> tuple[str, bytes, str]:
    """Post the form from Chromium; (Content-Type, body, browser version)."""
    files = _form.files(tmp)
    server = FormServer(_form.PAGE)
    try:
        with chromium() as browser:
            page = browser.new_page()
            page.goto(server.url)
            page.fill("input[name=title]", _form.TITLE)
            page.fill("textarea[name=comment]", _form.COMMENT)
            page.check("input[name=agree]")
            for name, path in files.items():
                page.set_input_files(f"input[name={name}]", str(path))
            page.click("#send")
            page.wait_for_selector("#done")
            version = browser.version
        assert server.recorded.done.wait(10)
        return server.recorded.content_type.decode(), server.recorded.body, version
    finally:
        server.close()


def test_chromium_form_post_reads_as_sent(tmp_path: Path) -> None:
    content_type, body, _ = record(tmp_path)
    assert content_type.startswith("multipart/form-data; boundary=----WebKitFormBoundary")
    _form.check(content_type, body)


def main() -> None:
    """Record this Chromium's body as tests/bodies/data/chromium-<major>.multipart."""
    with tempfile.TemporaryDirectory() as tmp:
        content_type, body, version = record(Path(tmp))
    name = f"chromium-{version.split('.')[0]}.multipart"
    recorded = f"Chromium {version} (Debian), driven by Playwright, over 127.0.0.1"
    _form.save(name, content_type, body, recorded, ("chrome-", "chromium-"))
    print(f"recorded {name}: {len(body)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
