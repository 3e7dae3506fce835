"""A small WSGI application for the command-line tests."""

from __future__ import annotations

import threading
from typing import Any

#: Set by a test-controlled request to hold a response in flight.
release = threading.Event()


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Echo SCRIPT_NAME and PATH_INFO; ``/slow`` waits up to 2 s before answering."""
    if environ["PATH_INFO"] == "/slow":
        # Tell the test (reading our stderr) that the request is in flight.
        environ["wsgi.errors"].write("slow request started\n")
        environ["wsgi.errors"].flush()
        release.wait(2.0)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{environ['SCRIPT_NAME']}|{environ['PATH_INFO']}".encode()]


def create_app() -> Any:
    """An app factory (``--factory cli_app:create_app``)."""
    return app
