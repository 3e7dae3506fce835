"""WebSockets from Flask and Django on tether-threaded, written the way the README shows.

Flask (Werkzeug) routes a WebSocket handshake only to a rule declared with ``websocket=True``;
any other rule answers 400 (``WebsocketMismatch``). Django needs nothing special: the view reads
``request.META["tether.websocket"]``.
"""

from __future__ import annotations

from typing import Any

import pytest
from threaded_helpers import running
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect as ws_connect


def _flask_app() -> Any:
    flask = pytest.importorskip("flask")
    app = flask.Flask(__name__)

    @app.route("/ws", websocket=True)
    def echo() -> Any:
        ws = flask.request.environ["tether.websocket"].accept()
        while (message := ws.receive()) != "bye":
            ws.send(message)
        ws.close(1000, "done")
        return ""

    @app.route("/plain-rule")  # no websocket=True: Werkzeug refuses the handshake
    def plain() -> str:
        return "not a socket"

    return app


def _django_app() -> Any:
    pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["127.0.0.1"],
            ROOT_URLCONF=__name__,
            SECRET_KEY="test-only",
            MIDDLEWARE=[],
        )
    import django
    from django.core.wsgi import get_wsgi_application

    django.setup()
    return get_wsgi_application()


def _django_echo(request: Any) -> Any:
    from django.http import HttpResponse

    upgrade = request.META.get("tether.websocket")
    if upgrade is None:
        return HttpResponse("WebSocket only", status=426)
    ws = upgrade.accept()
    while (message := ws.receive()) != "bye":
        ws.send(message)
    ws.close(1000, "done")
    return HttpResponse()


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("ws", _django_echo)]


def __getattr__(name: str) -> Any:
    # Django reads ROOT_URLCONF's ``urlpatterns`` lazily; build it only when Django asks.
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


@pytest.mark.parametrize("framework", ["flask", "django"])
def test_framework_websocket_echo(framework: str) -> None:
    app = _flask_app() if framework == "flask" else _django_app()
    with running(app) as server:
        url = server.url().replace("http://", "ws://").rstrip("/") + "/ws"
        with ws_connect(url, open_timeout=10) as ws:
            ws.send("hello")
            assert ws.recv(timeout=10) == "hello"
            ws.send(b"\x00\x01")
            assert ws.recv(timeout=10) == b"\x00\x01"
            ws.send("bye")
            with pytest.raises(ConnectionClosedOK):  # the view closed with 1000
                ws.recv(timeout=10)
            assert ws.close_code == 1000 and ws.close_reason == "done"


def test_flask_rule_without_websocket_true_refuses_the_handshake() -> None:
    with running(_flask_app()) as server:
        url = server.url().replace("http://", "ws://").rstrip("/") + "/plain-rule"
        with pytest.raises(InvalidStatus) as caught:
            ws_connect(url, open_timeout=10)
        assert caught.value.response.status_code == 400
