"""``--access-log-format``: the access line in gunicorn's atoms, compiled once at start-up.

Without the option a server writes the core's line (:func:`tether.serving.access_log_line`)
and nothing here runs. With it, :func:`compile_access_format` turns the format into a
template and one small function per atom; an unknown atom or a stray ``%`` is a
``ValueError`` then, so a typo stops the server at start-up instead of failing every request.
Per request, :meth:`AccessFormat.line` only calls the atoms the format names.

The atoms are gunicorn's (``%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s`` is its Common Log
Format), two of hypercorn's (``%(Uq)s``, ``%(st)s``) and tether's own (:data:`ATOMS`, plus
``%({NAME}i)s`` request fields, ``%({NAME}o)s`` response fields and ``%({NAME}e)s`` the WSGI
environ's entry (tether-threaded, as gunicorn) or else the process environment variable (as
hypercorn), names in any case; a missing value is ``-``).

Everything taken from the request or the response is escaped as Apache does it: bytes outside
printable ASCII become ``\\xNN`` (``\\t``, ``\\n``, ``\\r`` by name), ``"`` and ``\\`` get a
backslash; so a client cannot start a new log line or close a quoted field early (log
injection).
"""

from __future__ import annotations

import base64
import binascii
import http
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tether.serving_cycle import ResponseCycle

__all__ = [
    "ATOMS",
    "AccessFormat",
    "Exchange",
    "Tagged",
    "apache_time",
    "compile_access_format",
    "escape",
    "peer_text",
]

#: Bytes written as they are; every other byte is escaped (:func:`escape`).
_PLAIN = re.compile(rb"[\x20\x21\x23-\x5b\x5d-\x7e]*")
_ESCAPES = {i: f"\\x{i:02x}" for i in range(256) if _PLAIN.fullmatch(bytes((i,))) is None}
_ESCAPES.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"})
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# One ``%`` directive: ``%%``, ``%(NAME)s``, or anything else (refused).
_DIRECTIVE = re.compile(r"%(?:(%)|\(([^()]*)\)(s?)|)")
_HEADER_ATOM = re.compile(r"\{([^{}]+)\}([ioe])")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class Tagged(Protocol):
    """What the request id and trace atoms read: a :class:`tether_server.tagging.Tag` (which
    itself carries the format, so this module cannot import it)."""

    def log_fields(self) -> dict[str, str]:
        """The request id and trace id, by name, when the request has them."""
        ...


def peer_text(host: str, port: object) -> str:
    """A peer as log lines name it: ``host:port``, ``[host]:port`` for IPv6 (so the port
    cannot be read as part of the address)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def escape(value: bytes) -> str:
    """``value`` as printable ASCII, escaped as Apache's log items are."""
    if _PLAIN.fullmatch(value) is not None:
        return value.decode("ascii")
    return value.decode("latin-1").translate(_ESCAPES)


class _ApacheClock:
    """Now, local time, as Apache's ``%t``: ``[10/Oct/2000:13:55:36 -0700]`` (English month
    names whatever the locale), made once a second: threads may race to remake it, and each
    reads one consistent (second, text) pair."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = (0, "")

    def __call__(self) -> str:
        now = int(time.time())
        second, text = self._last
        if second != now:
            lt = time.localtime(now)
            offset = (lt.tm_gmtoff or 0) // 60
            sign = "-" if offset < 0 else "+"
            hours, minutes = divmod(abs(offset), 60)
            text = (
                f"[{lt.tm_mday:02d}/{_MONTHS[lt.tm_mon - 1]}/{lt.tm_year}:{lt.tm_hour:02d}:"
                f"{lt.tm_min:02d}:{lt.tm_sec:02d} {sign}{hours:02d}{minutes:02d}]"
            )
            self._last = (now, text)
        return text


apache_time = _ApacheClock()


class Exchange:
    """What one access line is made from (built only when a format is in use)."""

    __slots__ = ("close_code", "cycle", "elapsed", "environ", "request", "tag")

    def __init__(
        self,
        cycle: ResponseCycle,
        tag: Tagged | None,
        elapsed: float,
        environ: Mapping[str, Any] | None,
        close_code: int | None,
    ) -> None:
        self.cycle = cycle
        self.request = cycle.request
        #: What the server attached (read by the request id and trace atoms).
        self.tag = tag
        #: Seconds since the request head arrived (0 when the format has no duration atom).
        self.elapsed = elapsed
        self.environ = environ
        self.close_code = close_code

    @property
    def status(self) -> int:
        """The status the client got (0 when none), as on the default line."""
        cycle = self.cycle
        return cycle.status if cycle.committed else 0


Atom = Callable[[Exchange], str]


def _request_field(name: bytes) -> Atom:
    def atom(x: Exchange) -> str:
        values = [value for key, value in x.request.headers if key == name]
        return escape(b", ".join(values)) if values else "-"

    return atom


def _response_field(name: bytes) -> Atom:
    def atom(x: Exchange) -> str:
        values = [value for key, value in x.cycle.response_headers if key.lower() == name]
        return escape(b", ".join(values)) if values else "-"

    return atom


def _environ_entry(name: str) -> Atom:
    lowered = name.lower()

    def atom(x: Exchange) -> str:
        environ = x.environ
        if environ is not None:
            for key, value in environ.items():
                if key.lower() == lowered:
                    return escape(str(value).encode("utf-8", "backslashreplace"))
        value = os.environ.get(name, os.environ.get(name.upper()))
        return "-" if value is None else escape(value.encode("utf-8", "surrogateescape"))

    return atom


def _address(x: Exchange) -> str:
    """The client's address without its port (``-`` for a Unix socket peer)."""
    client = x.cycle.client
    if client.startswith("["):
        return escape(client[1 : client.find("]")].encode())
    host, colon, _ = client.rpartition(":")
    return escape(host.encode()) if colon else "-"


def _user(x: Exchange) -> str:
    """The user name of HTTP Basic credentials (RFC 7617), else ``-``."""
    for name, value in x.request.headers:
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() != b"basic":
                return "-"
            try:
                user, colon, _ = base64.b64decode(token.strip(), validate=True).partition(b":")
            except binascii.Error:
                return "-"
            return escape(user) if colon and user else "-"
    return "-"


def _path(x: Exchange) -> str:
    return escape(x.request.target.partition(b"?")[0])


def _query(x: Exchange) -> str:
    return escape(x.request.target.partition(b"?")[2])


def _protocol(x: Exchange) -> str:
    return "HTTP/" + escape(x.request.http_version)


def _request_line(x: Exchange) -> str:
    request = x.request
    return escape(b"%s %s HTTP/%s" % (request.method, request.target, request.http_version))


def _micros(x: Exchange) -> int:
    # Every duration atom is this one count, truncated as gunicorn truncates: rounding L on
    # its own could make it read 0.001235 beside D=1234.
    return int(x.elapsed * 1e6)


def _seconds(micros: int) -> str:
    whole, fraction = divmod(micros, 1_000_000)
    return f"{whole}.{fraction:06d}"


def _phrase(x: Exchange) -> str:
    try:
        return http.HTTPStatus(x.status).phrase
    except ValueError:
        return "-"


def _tag_value(key: str) -> Atom:
    def atom(x: Exchange) -> str:
        fields = x.tag.log_fields() if x.tag is not None else {}
        return fields.get(key, "-")

    return atom


_referer = _request_field(b"referer")
_agent = _request_field(b"user-agent")

#: The atoms with a fixed name, and what each writes. Gunicorn's, then hypercorn's, then
#: tether's own.
ATOMS: dict[str, tuple[Atom, str]] = {
    "h": (_address, "the client's address (the forwarded one behind a trusted proxy)"),
    "l": (lambda x: "-", "'-' (the ident of the Common Log Format)"),
    "u": (_user, "the user name of Basic credentials, or '-'"),
    "t": (lambda x: apache_time(), "the time, as [10/Oct/2000:13:55:36 -0700]"),
    "r": (_request_line, "the request line: METHOD TARGET HTTP/1.1"),
    "m": (lambda x: escape(x.request.method), "the method"),
    "U": (_path, "the path, as sent (not decoded)"),
    "q": (_query, "the query string (without '?'), as sent"),
    "H": (_protocol, "the protocol: HTTP/1.1 or HTTP/1.0"),
    "s": (lambda x: str(x.status), "the status (0 when no response was sent)"),
    "B": (lambda x: str(x.cycle.sent), "body bytes sent"),
    "b": (lambda x: str(x.cycle.sent) if x.cycle.sent else "-", "body bytes sent, or '-'"),
    "f": (_referer, "the Referer field, or '-'"),
    "a": (_agent, "the User-Agent field, or '-'"),
    "T": (lambda x: str(_micros(x) // 1_000_000), "the request's duration in whole seconds"),
    "D": (lambda x: str(_micros(x)), "... in microseconds"),
    "M": (lambda x: str(_micros(x) // 1000), "... in milliseconds"),
    "L": (lambda x: _seconds(_micros(x)), "... in seconds, with six decimals"),
    "p": (lambda x: f"<{os.getpid()}>", "the process id, as <1234>"),
    "Uq": (lambda x: escape(x.request.target), "the target: path and query (hypercorn's)"),
    "st": (_phrase, "the status phrase: OK, Not Found (hypercorn's)"),
    "client": (
        lambda x: escape(x.cycle.client.encode()),
        "the client as the default line names it",
    ),
    "request_id": (_tag_value("request_id"), "the request id (--request-id-header), or '-'"),
    "trace_id": (_tag_value("trace_id"), "the trace id (--trace-context), or '-'"),
    "ws_close": (
        lambda x: "-" if x.close_code is None else str(x.close_code),
        "a WebSocket session's close code, or '-'",
    ),
}
#: The atoms that need the request's duration (the server then notes when each request came).
_TIMED = frozenset("TDML")


class AccessFormat:
    """A compiled ``--access-log-format``: a ``%s`` template and the atoms that fill it."""

    __slots__ = ("_atoms", "_template", "text", "timed")

    def __init__(self, text: str, template: str, atoms: tuple[Atom, ...], timed: bool) -> None:
        #: The format as the user wrote it.
        self.text = text
        self._template = template
        self._atoms = atoms
        #: Whether an atom needs the request's duration.
        self.timed = timed

    def line(
        self,
        cycle: ResponseCycle,
        tag: Tagged | None,
        elapsed: float = 0.0,
        environ: Mapping[str, Any] | None = None,
        close_code: int | None = None,
    ) -> str:
        """The access line of ``cycle`` in this format."""
        x = Exchange(cycle, tag, elapsed, environ, close_code)
        return self._template % tuple([atom(x) for atom in self._atoms])


def compile_access_format(text: str) -> AccessFormat:
    """Compile ``text``; ``ValueError`` names the first unknown atom or stray ``%``."""
    template: list[str] = []
    atoms: list[Atom] = []
    timed = False
    at = 0
    for match in _DIRECTIVE.finditer(text):
        template.append(text[at : match.start()])
        at = match.end()
        percent, name, conversion = match.groups()
        if percent:
            template.append("%%")
            continue
        if name is None or not conversion:
            raise ValueError(
                "a '%' must begin an atom like %(h)s (write %% for a literal '%'), "
                f"not {text[match.start() : match.start() + 8]!r}"
            )
        atoms.append(_atom(name))
        timed = timed or name in _TIMED
        template.append("%s")
    template.append(text[at:])
    # Every '%' began a directive, so the literal pieces need no escaping.
    return AccessFormat(text, "".join(template), tuple(atoms), timed)


def _atom(name: str) -> Atom:
    known = ATOMS.get(name)
    if known is not None:
        return known[0]
    field = _HEADER_ATOM.fullmatch(name)
    if field is None:
        raise ValueError(
            f"unknown atom %({name})s (known: {' '.join(ATOMS)}, {{NAME}}i, {{NAME}}o, {{NAME}}e)"
        )
    key, kind = field.groups()
    if kind == "e":
        return _environ_entry(key)
    if _TOKEN.fullmatch(key) is None:
        raise ValueError(f"not a valid field name in %({name})s: {key!r}")
    lowered = key.lower().encode("ascii")
    return _request_field(lowered) if kind == "i" else _response_field(lowered)
