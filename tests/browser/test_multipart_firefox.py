"""A real Firefox posts a real form, and tether.multipart reads exactly what it meant.

Debian's firefox-esr, driven over WebDriver BiDi (tests/browser/_firefox.py); the form is
tests/browser/_form.py's: the text fields set by script, the files handed to
the inputs through BiDi's ``input.setFiles``, the button clicked.
``python -m tests.browser.test_multipart_firefox`` records the body into tests/bodies/data/ as
a capture, replacing the earlier recorded Firefox one.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from tests.browser import _form
from tests.browser._firefox import firefox
from tests.browser._recorder import FormServer


def record(tmp: Path) -> tuple[str, bytes, str]:
    """Post the form from Firefox; (Content-Type, body, browser version)."""
    files = _form.files(tmp)
    server = FormServer(_form.PAGE)
    try:
        with firefox() as page:
            page.goto(server.url)
            page.evaluate(
                f"document.querySelector('input[name=title]').value = {json.dumps(_form.TITLE)};"
                f"document.querySelector('textarea[name=comment]').value = {json.dumps(_form.COMMENT)};"
                "document.querySelector('input[name=agree]').checked = true"
            )
            for name, path in files.items():
                page.set_files(f"input[name={name}]", [path])
            page.evaluate("document.getElementById('send').click()")
            assert server.recorded.done.wait(30)
            version = page.version
        return server.recorded.content_type.decode(), server.recorded.body, version
    finally:
        server.close()


def test_firefox_form_post_reads_as_sent(tmp_path: Path) -> None:
    content_type, body, _ = record(tmp_path)
    assert content_type.startswith("multipart/form-data; boundary=----geckoformboundary")
    _form.check(content_type, body)


def main() -> None:
    """Record this Firefox's body as tests/bodies/data/firefox-<major>.multipart."""
    with tempfile.TemporaryDirectory() as tmp:
        content_type, body, version = record(Path(tmp))
    major = version.split(".")[0]
    name = f"firefox-{major}.multipart"
    recorded = f"Firefox {version} ESR (Debian), driven over WebDriver BiDi, over 127.0.0.1"
    _form.save(name, content_type, body, recorded, (f"firefox-{major}",))
    print(f"recorded {name}: {len(body)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
