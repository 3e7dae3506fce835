"""Pure helpers shared by every Tether server (the anyio ASGI server and the threaded WSGI one).

A server moves bytes, time and application messages; everything it would otherwise decide on its
own about HTTP lives here, once, so both servers answer the same way:

- :func:`split_target` and :func:`unquote_path` / :func:`decode_path` turn a request target into
  the path and query an application sees (ASGI ``path``/``raw_path``/``query_string``, WSGI
  ``PATH_INFO``/``QUERY_STRING``).
- :func:`with_server_headers` adds ``Date`` and ``Server`` unless the application set them.
- :func:`overload_response` and :func:`internal_error_response` are the canned 503 and 500.
- :func:`server_limits` maps a server's timeout and size options onto :class:`~tether.limits.Limits`.
- :class:`ConnectionGate` is the accept/stop-accepting hysteresis behind ``--limit-connections``.
- :func:`access_log_line` formats one access-log line.
- :class:`TrustedProxies` decides, for ``--proxy-headers``, which client address and scheme an
  application sees when a trusted reverse proxy sends ``X-Forwarded-For``/``X-Forwarded-Proto``.

Nothing here touches a socket or reads a clock.
"""

from __future__ import annotations

import enum
import ipaddress
import operator
import re
from collections.abc import Iterable

from tether.errors import BadRequest
from tether.http1._events import Headers, Request, Response
from tether.limits import Limits

#: The ``Server`` header Tether servers send unless told otherwise.
SERVER_HEADER: tuple[bytes, bytes] = (b"server", b"tether")


class _Unset(enum.Enum):
    UNSET = "UNSET"


#: Marks an option of :func:`server_limits` that accepts ``None`` as not given.
UNSET = _Unset.UNSET

_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """Split a request target into ``(raw_path, query)``, both still percent-encoded.

    Handles the four forms of RFC 9112 section 3.2: origin-form (``/a?b``), absolute-form
    (``http://host/a?b``; the path defaults to ``/``), asterisk-form (``*``) and authority-form
    (``host:port``, returned whole as the path with an empty query).
    """
    if target[:1] == b"/":
        path, _, query = target.partition(b"?")
        return path, query
    if target == b"*":
        return b"*", b""
    scheme_end = target.find(b"://")
    if scheme_end > 0 and target[:scheme_end].lower() in (b"http", b"https"):
        rest = target[scheme_end + 3 :]
        # The authority ends at the first "/" or "?" (RFC 3986 section 3.2).
        cut = len(rest)
        for stop in (b"/", b"?"):
            where = rest.find(stop)
            if where != -1 and where < cut:
                cut = where
        path, _, query = rest[cut:].partition(b"?")
        return path or b"/", query
    return target, b""


def unquote_path(raw_path: bytes) -> bytes:
    """Percent-decode a path into bytes.

    Strict: RFC 3986 section 2.1 allows ``%`` only as ``"%" HEXDIG HEXDIG``; a stray ``%`` is
    refused with :class:`~tether.errors.BadRequest` (400) rather than passed through as peers do.
    """
    # An int needle: on CPython 3.11 ``b"%" in raw_path`` costs ten times ``0x25 in raw_path``
    # (bytes.__contains__ first tries the needle as an integer and clears the TypeError).
    if 0x25 not in raw_path:  # "%"
        return raw_path
    pieces = raw_path.split(b"%")
    out = [pieces[0]]
    for piece in pieces[1:]:
        if len(piece) < 2 or piece[0] not in _HEXDIGITS or piece[1] not in _HEXDIGITS:
            raise BadRequest("malformed percent-encoding in the request path")
        out.append(bytes((int(piece[:2], 16),)))
        out.append(piece[2:])
    return b"".join(out)


def decode_path(raw_path: bytes) -> str:
    """Percent-decode a path and decode it as UTF-8 (the ASGI ``path``).

    Bytes that are not UTF-8 after decoding are refused with :class:`~tether.errors.BadRequest`:
    ASGI defines ``path`` as text, and guessing an encoding would let two servers route the same
    request differently.
    """
    try:
        return unquote_path(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the request path is not UTF-8 after percent-decoding") from None


def with_server_headers(
    headers: Iterable[tuple[bytes, bytes]],
    date: tuple[bytes, bytes] | None,
    server: tuple[bytes, bytes] | None = SERVER_HEADER,
) -> list[tuple[bytes, bytes]]:
    """Return the application's response headers with ``Date`` and ``Server`` added.

    ``date`` is the pair from :func:`tether.http1.date_header`. A header the application set
    itself is kept and not duplicated; ``date=None`` / ``server=None`` leave that header out.
    """
    out = list(headers)
    need_date = date is not None
    need_server = server is not None
    for name, _ in out:
        if len(name) == 4 and name.lower() == b"date":
            need_date = False
        elif len(name) == 6 and name.lower() == b"server":
            need_server = False
    if need_date and date is not None:
        out.append(date)
    if need_server and server is not None:
        out.append(server)
    return out


def _plain_response(status: int, text: bytes, extra: Headers = ()) -> tuple[Response, bytes]:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(text)).encode("ascii")),
        *extra,
    ]
    return Response(status, headers), text


def overload_response(retry_after: int = 1) -> tuple[Response, bytes]:
    """The 503 a server sends instead of calling the application when it is over its limit.

    ``Retry-After`` (RFC 9110 section 10.2.3) tells the client when to try again, in seconds.
    The connection closes after it (``Connection: close``), as uvicorn's does: an overloaded
    server gets its connection slot back, and a client or balancer retries on a new connection,
    which a balancer may send to another server.
    """
    retry = (b"retry-after", str(int(retry_after)).encode("ascii"))
    return _plain_response(503, b"Service Unavailable\n", [retry, (b"connection", b"close")])


def no_tunnel_response() -> tuple[Response, bytes]:
    """The 501 a server sends to ``CONNECT`` instead of calling the application.

    A 2xx to CONNECT turns the connection into a tunnel (RFC 9110 section 9.3.6), which neither
    an ASGI nor a WSGI application can run; any other answer leaves it HTTP, so it stays open.
    """
    return _plain_response(501, b"Not Implemented: this server opens no tunnels\n")


def internal_error_response() -> tuple[Response, bytes]:
    """The 500 a server sends when the application failed before starting its response."""
    return _plain_response(500, b"Internal Server Error\n", [(b"connection", b"close")])


def server_limits(
    base: Limits | None = None,
    *,
    timeout_keep_alive: float | None = None,
    timeout_request_head: float | None = None,
    timeout_body: float | None = None,
    min_body_rate: float | None = None,
    ws_ping_interval: float | _Unset | None = UNSET,
    ws_ping_timeout: float | None = None,
    ws_close_timeout: float | None = None,
    ws_max_size: int | None = None,
    max_body_size: int | _Unset | None = UNSET,
    max_requests: int | _Unset | None = UNSET,
) -> Limits:
    """Map a server's command-line style options onto a :class:`~tether.limits.Limits`.

    Options left at their default keep the value from ``base`` (or the core's defaults).
    ``ws_ping_interval``, ``max_body_size`` and ``max_requests`` accept ``None`` ("no limit"), so
    :data:`UNSET` marks them as not given.
    """
    limits = base if base is not None else Limits()
    changes: dict[str, object] = {}
    if timeout_keep_alive is not None:
        changes["keep_alive_timeout"] = timeout_keep_alive
    if timeout_request_head is not None:
        changes["head_timeout"] = timeout_request_head
    if timeout_body is not None:
        changes["body_timeout"] = timeout_body
    if min_body_rate is not None:
        changes["min_body_rate"] = min_body_rate
    if ws_ping_interval is not UNSET:
        changes["ws_ping_interval"] = ws_ping_interval
    if ws_ping_timeout is not None:
        changes["ws_ping_timeout"] = ws_ping_timeout
    if ws_close_timeout is not None:
        changes["ws_close_timeout"] = ws_close_timeout
    if ws_max_size is not None:
        changes["ws_max_message_size"] = ws_max_size
        changes["ws_max_frame_size"] = ws_max_size
    if max_body_size is not UNSET:
        changes["max_body_size"] = max_body_size
    if max_requests is not UNSET:
        changes["max_requests"] = max_requests
    return limits.replace(**changes) if changes else limits


class ConnectionGate:
    """Accept/stop-accepting hysteresis for a connection limit.

    The server stops accepting when the number of open connections reaches ``high`` and resumes
    only when it has fallen to ``low``, so it does not flap around one value under load.
    ``high=None`` means no limit.
    """

    __slots__ = ("_accepting", "high", "low", "open")

    def __init__(self, high: int | None, low: int | None = None) -> None:
        if high is not None and high < 1:
            raise ValueError("the connection limit must be at least 1")
        if low is None and high is not None:
            low = max(high - max(high // 10, 1), 0)
        if high is not None and low is not None and low >= high:
            raise ValueError("the low mark must be below the connection limit")
        self.high = high
        self.low = low
        #: Connections currently open.
        self.open = 0
        self._accepting = True

    @property
    def accepting(self) -> bool:
        """Whether the server should accept new connections now."""
        return self._accepting

    def opened(self) -> bool:
        """Count a new connection; return True when the server must stop accepting now."""
        self.open += 1
        if self._accepting and self.high is not None and self.open >= self.high:
            self._accepting = False
            return True
        return False

    def closed(self) -> bool:
        """Count a closed connection; return True when the server may resume accepting now."""
        self.open -= 1
        if not self._accepting and self.low is not None and self.open <= self.low:
            self._accepting = True
            return True
        return False


def access_log_line(client: str, request: Request, status: int, sent: int, note: str = "") -> str:
    """One access-log line: ``client - "METHOD target HTTP/version" status bytes [note]``.

    Non-ASCII bytes in the target are escaped so a log line is always one printable line, and
    ``"`` and ``\\`` get a backslash so a crafted target cannot close the quoted field early
    and forge the fields after it (as Apache escapes them).
    ``note`` follows for exchanges that need more (a WebSocket session's close code and
    duration: ``ws 1000 2.513s``).
    """
    # One decode of the joined request line (ASCII decodes byte by byte, so this is the same
    # text as three decodes, at a third of the calls: this runs for every request).
    head = b"%s %s HTTP/%s" % (request.method, request.target, request.http_version)
    if 0x22 in head or 0x5C in head:  # '"', "\\" (int needles: see unquote_path)
        head = head.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    line = f'{client} - "{head.decode("ascii", "backslashreplace")}" {status} {sent}'
    return f"{line} {note}" if note else line


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_FORWARDED = frozenset((b"x-forwarded-for", b"x-forwarded-proto"))
_RFC7239 = frozenset((b"forwarded",))
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# RFC 7239 section 4: pairs of token "=" (token / quoted-string) joined by ";". OWS (SP, HTAB)
# around them is all the leniency taken: "\s" would also take 0x85 and 0xa0 (obs-text).
_PAIR = rf"[ \t]*({_TOKEN})=({_TOKEN}|\"(?:[^\"\\]|\\.)*\")[ \t]*"
_ELEMENT = re.compile(rf"(?:{_PAIR})?(?:;(?:{_PAIR})?)*")
_PAIRS = re.compile(_PAIR)
_name = operator.itemgetter(0)


class TrustedProxies:
    """The peers whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` a server believes.

    ``spec`` is what ``--forwarded-allow-ips`` takes: a comma-separated list of IP addresses,
    networks in CIDR form (``10.0.0.0/8``), ``unix`` for a peer on a Unix domain socket, or ``*``
    for any peer. Headers from any other peer are ignored, so a client cannot claim another
    address by sending them itself. A bad entry raises ``ValueError``.
    """

    __slots__ = ("_any", "_exact", "_networks", "_unix_peers", "rfc7239")

    def __init__(self, spec: str | Iterable[str] = "127.0.0.1", *, rfc7239: bool = False) -> None:
        entries = spec.split(",") if isinstance(spec, str) else list(spec)
        #: Read RFC 7239 ``Forwarded`` instead of ``X-Forwarded-For``/``-Proto`` (a proxy in
        #: front must then set or append ``Forwarded``; the other fields are not read).
        self.rfc7239 = rfc7239
        self._any = False
        self._unix_peers = False
        self._networks: list[_Network] = []
        # Single addresses, as the strings a peer address or a hop arrives as: the usual
        # answer is one set look-up. (No memo of past answers: that would be a table filled
        # from what clients send.)
        self._exact: frozenset[str] = frozenset()
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            if entry == "*":
                self._any = True
            elif entry == "unix":
                self._unix_peers = True
            else:
                try:
                    network = ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(
                        f"not an IP address, a network, 'unix' or '*': {entry!r}"
                    ) from None
                if network.num_addresses == 1:
                    self._exact |= {str(network.network_address)}
                else:
                    self._networks.append(network)

    def trusts(self, host: str | None) -> bool:
        """Whether a peer at ``host`` may speak for the client (None: a Unix socket peer)."""
        if self._any:
            return True
        if host is None:
            return self._unix_peers
        if host in self._exact:
            return True
        if not self._networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return str(address) in self._exact or any(address in net for net in self._networks)

    def resolve(
        self, headers: Headers, client: tuple[str, int] | None, scheme: str
    ) -> tuple[tuple[str, int] | None, str]:
        """The ``(client, scheme)`` the application sees for a request from ``client``.

        From a trusted peer: the client is the rightmost ``X-Forwarded-For`` hop that is
        not itself a trusted proxy (the leftmost address when all are), with port 0 as the
        port is not forwarded. Hops are read from the right and reading stops at one that is
        not an IP address (only a client writes such a thing), so the hops the proxies
        appended still count; when the rightmost hop is not an address the peer stays the
        client. The scheme is ``X-Forwarded-Proto`` when it is ``http`` or ``https`` (with one
        value per hop, the value of the chosen hop). From any other peer both stay as they are.
        """
        if not self.trusts(client[0] if client is not None else None):
            return client, scheme
        if self.rfc7239:
            return self._resolve_rfc7239(headers, client, scheme)
        # Most requests carry neither field: find that out in C, with no list built; where
        # they are is then found in C too, not by a loop per field.
        if _FORWARDED.isdisjoint(map(_name, headers)):
            return client, scheme
        names = list(map(_name, headers))
        hops = _joined(headers, names, b"x-forwarded-for")
        return self._walk(hops, _joined(headers, names, b"x-forwarded-proto"), client, scheme)

    def resolve_text(
        self,
        forwarded_for: str,
        forwarded_proto: str,
        client: tuple[str, int] | None,
        scheme: str,
    ) -> tuple[tuple[str, int] | None, str]:
        """:meth:`resolve` with the ``X-Forwarded-For`` and ``X-Forwarded-Proto`` values given
        as text, a repeated field's values joined by commas, "" for an absent one: what a WSGI
        environ holds. The same walk and the same answers; with ``rfc7239`` set (those fields
        are then not read) the client and scheme stay as they are."""
        if self.rfc7239 or not self.trusts(client[0] if client is not None else None):
            return client, scheme
        return self._walk(_items(forwarded_for), _items(forwarded_proto), client, scheme)

    def _walk(
        self, hops: list[str], protos: list[str], client: tuple[str, int] | None, scheme: str
    ) -> tuple[tuple[str, int] | None, str]:
        # From the right: each hop was written by the proxy to its right, so the first one
        # that is not itself a trusted proxy is the client. A hop that is not an address was
        # not written by a trusted proxy; walking stops there, so a client that sends
        # "X-Forwarded-For: junk" through an appending proxy is still seen by its address.
        chosen = None
        for index in range(len(hops) - 1, -1, -1):
            if hops[index] not in self._exact and not _is_ip(hops[index]):
                break
            chosen = index
            if not self.trusts(hops[index]):
                break
        if chosen is not None:
            client = (hops[chosen], 0)
        if len(protos) == 1:
            proto = protos[0].lower()
        elif chosen is not None and len(protos) == len(hops):
            proto = protos[chosen].lower()
        else:
            proto = ""
        if proto in ("http", "https"):
            scheme = proto
        return client, scheme

    def _resolve_rfc7239(
        self, headers: Headers, client: tuple[str, int] | None, scheme: str
    ) -> tuple[tuple[str, int] | None, str]:
        """:meth:`resolve` for RFC 7239 ``Forwarded``: the same right-to-left walk over its
        elements' ``for=`` nodes; ``proto=`` of the chosen element. An element that does not
        parse, or a node that is not an address (``unknown``, ``_hidden``), ends the walk."""
        if _RFC7239.isdisjoint(map(_name, headers)):
            return client, scheme
        elements: list[str] = []
        for name, value in headers:
            if name == b"forwarded":
                elements = _elements_from_the_right(value.decode("latin-1")) + elements
        chosen: tuple[str, str] | None = None
        for element in elements:
            if _ELEMENT.fullmatch(element) is None:
                break
            pairs = _PAIRS.findall(element)
            params = {k.lower(): v.strip('"') for k, v in pairs}
            if len(params) != len(pairs):
                break  # RFC 7239 4: "Each parameter MUST NOT occur more than once per element"
            address = _node_address(params.get("for", ""))
            if address is None:
                break
            chosen = (address, params.get("proto", "").lower())
            if not self.trusts(address):
                break
        if chosen is None:
            return client, scheme
        address, proto = chosen
        return (address, 0), proto if proto in ("http", "https") else scheme


def _joined(headers: Headers, names: list[bytes], name: bytes) -> list[str]:
    """The comma-separated items of every ``name`` field, in order, stripped of OWS."""
    count = names.count(name)
    if count == 0:
        return []
    if count == 1:
        return _items(headers[names.index(name)][1].decode("latin-1"))
    items: list[str] = []
    for field, value in headers:
        if field == name:
            items += value.decode("latin-1").split(",")
    return [item.strip(_OWS) for item in items]


# RFC 9110 5.6.1: OWS is SP and HTAB only; str.strip() would also drop 0x85 and 0xa0 (obs-text
# bytes, decoded as latin-1), so "\xa0203.0.113.9" would read as an address.
_OWS = " \t"


def _items(text: str) -> list[str]:
    """The comma-separated items of one field value (or of several joined by commas), stripped
    of OWS; none for ""."""
    if "," not in text:
        return [text.strip(_OWS)] if text else []
    return [item.strip(_OWS) for item in text.split(",")]


def _elements_from_the_right(value: str) -> list[str]:
    """The comma-separated elements of a ``Forwarded`` value, rightmost first. Split from the
    right, so an unbalanced quote a client wrote on the left cannot swallow the elements the
    proxies appended on the right."""
    out: list[str] = []
    quoted = False
    end = len(value)
    for i in range(len(value) - 1, -1, -1):
        char = value[i]
        if char == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif char == "," and not quoted:
            out.append(value[i + 1 : end])
            end = i
    out.append(value[:end])
    return out


def _node_address(node: str) -> str | None:
    """The IP address in a ``for=`` node (RFC 7239 6), without its port; None for ``unknown``,
    an obfuscated name or anything else."""
    if node.startswith("["):
        address, bracket, _ = node[1:].partition("]")
        return address if bracket and _is_ip(address) and ":" in address else None
    address = node.partition(":")[0]
    return address if _is_ip(address) else None


# ASCII digits only ("\d" would also take other scripts' digits in a str).
_IPV4 = re.compile(
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    r"(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
)


def _is_ip(text: str) -> bool:
    # Dotted IPv4 is what nearly every hop is: one regex match instead of ipaddress's
    # per-octet parse (a tenth of a proxied request's cost in tether serve).
    if _IPV4.fullmatch(text) is not None:
        return True
    if ":" not in text or "%" in text:
        # No zone ("fe80::1%eth0"): RFC 7239 section 6 spells a node's address as RFC 3986's
        # IPv6address, which has none, and a zone names an interface of the host that wrote
        # it, meaningless to us. ipaddress takes any text after "%" as the zone (spaces,
        # quotes, C1 controls such as 0x9b CSI), which became the client address the
        # application saw and the access log wrote as it was.
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


__all__ = [
    "SERVER_HEADER",
    "UNSET",
    "ConnectionGate",
    "TrustedProxies",
    "access_log_line",
    "decode_path",
    "internal_error_response",
    "no_tunnel_response",
    "overload_response",
    "server_limits",
    "split_target",
    "unquote_path",
    "with_server_headers",
]
