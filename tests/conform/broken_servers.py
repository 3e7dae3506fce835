"""Small HTTP/1.1 servers, each with one deliberate flaw, for testing ``tether conform``.

The base server is strict enough to pass the probes (it refuses ambiguous framing with
400 and closes, times out slow heads and idle connections); each flag breaks one rule:

- ``bare_lf``: takes a bare LF as a line ending (a MAY of RFC 9112 2.2);
- ``cl_over_te``: with both, frames the body by Content-Length and keeps the connection;
- ``no_head_timeout``: waits for a slow head forever;
- ``framing_error_200``: answers an invalid Content-Length or Transfer-Encoding with 200
  and reads on;
- ``trailers_as_request``: ends a chunked body at its last chunk, so that trailer fields
  are read as the next request (it mis-frames chunked bodies that have trailers).

Three more flags make it lenient where the RFC lets it be, to show such a server is not
failed: ``http_1_2`` serves an HTTP/1.2 request as HTTP/1.1 (RFC 9110 6.2, a SHOULD),
``expect_417`` answers 417 to an expectation it does not know (RFC 9110 10.1.1, a MAY),
and ``ctl_values`` keeps control bytes other than CR, LF and NUL in field values (RFC
9110 5.5, a MAY).
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_T = _TOKEN.pattern
#: RFC 9112 7.1.1: chunk-size *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
_CHUNK_LINE = re.compile(
    rb"[0-9A-Fa-f]+(?:[ \t]*;[ \t]*%s(?:[ \t]*=[ \t]*(?:%s|\"(?:[^\"\\]|\\.)*\"))?)*" % (_T, _T)
)

#: Fields refused as trailers (RFC 9110 6.5.1: framing, routing, content format), and names
#: that differ from them only in "_" or ".".
_NOT_TRAILERS = frozenset((b"content-length", b"transfer-encoding", b"host", b"content-type"))


class _Refuse(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


@dataclass
class Flaws:
    bare_lf: bool = False
    cl_over_te: bool = False
    no_head_timeout: bool = False
    framing_error_200: bool = False
    trailers_as_request: bool = False
    http_1_2: bool = False
    expect_417: bool = False
    ctl_values: bool = False


class Threaded:
    """A listener on 127.0.0.1 serving each connection in a thread with ``serve(sock)``."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._serve = serve
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(sock,), daemon=True).start()

    def _run(self, sock: socket.socket) -> None:
        with sock:
            try:
                sock.settimeout(5)
                self._serve(sock)
            except OSError:
                pass


class BrokenServer(Threaded):
    """A threaded server on 127.0.0.1 with the given flaws; ``port`` once constructed."""

    def __init__(self, flaws: Flaws, timeout: float = 1.0) -> None:
        self.flaws = flaws
        self.timeout = timeout
        super().__init__(self.serve)

    def serve(self, sock: socket.socket) -> None:
        buf = bytearray()
        try:
            while self._one(sock, buf):
                pass
        except _Refuse:
            return

    def _recv(self, sock: socket.socket, buf: bytearray, in_head: bool, idle: bool) -> None:
        if in_head and self.flaws.no_head_timeout and not idle:
            sock.settimeout(None)
        else:
            sock.settimeout(self.timeout)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            if in_head and not idle:
                sock.sendall(
                    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
            raise _Refuse(408) from None
        if not data:
            raise _Refuse(0)
        buf += data

    def _one(self, sock: socket.socket, buf: bytearray) -> bool:
        flaws = self.flaws
        terminator = re.compile(rb"\r?\n\r?\n") if flaws.bare_lf else re.compile(rb"\r\n\r\n")
        while not (m := terminator.search(buf)):
            if len(buf) > 65536:
                return self._refuse(sock, 431)
            self._recv(sock, buf, True, idle=not buf)
        head = bytes(buf[: m.start()])
        del buf[: m.end()]
        try:
            body_reader, keep_alive = self._parse(head)
            head_only = head.startswith(b"HEAD ")
            size = body_reader(sock, buf)
        except _Refuse as exc:
            if exc.status == 200:  # framing_error_200: answer as if fine, read on
                self._answer(sock, 0, True)
                return True
            return self._refuse(sock, exc.status)
        self._answer(sock, size, keep_alive, head_only)
        return keep_alive

    def _refuse(self, sock: socket.socket, status: int) -> bool:
        sock.sendall(
            b"HTTP/1.1 %d Refused\r\ncontent-length: 0\r\nconnection: close\r\n\r\n" % status
        )
        return False

    def _answer(
        self, sock: socket.socket, size: int, keep_alive: bool, head_only: bool = False
    ) -> None:
        body = b"%d\n" % size
        close = b"" if keep_alive else b"connection: close\r\n"
        sock.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s"
            % (len(body), close, b"" if head_only else body)
        )

    def _bad_framing(self) -> _Refuse:
        return _Refuse(200 if self.flaws.framing_error_200 else 400)

    def _parse(self, head: bytes) -> tuple[Callable[[socket.socket, bytearray], int], bool]:
        flaws = self.flaws
        if flaws.bare_lf:
            lines = [line.removesuffix(b"\r") for line in head.split(b"\n")]
        else:
            if re.search(rb"(?<!\r)\n|\r(?!\n)", head):
                raise _Refuse(400)
            lines = head.split(b"\r\n")
        request_line, fields = lines[0], lines[1:]
        if len(request_line) > 8192:
            raise _Refuse(414)
        parts = request_line.split(b" ")
        versions = (
            (b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2")
            if flaws.http_1_2
            else (b"HTTP/1.1", b"HTTP/1.0")
        )
        if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or parts[2] not in versions:
            raise _Refuse(400)
        # CR, LF and NUL must go (RFC 9110 5.5); other controls only this flag lets through.
        controls = rb"[\x00\x0a\x0d]" if flaws.ctl_values else rb"[\x00-\x08\x0a-\x1f\x7f]"
        http10 = parts[2] == b"HTTP/1.0"
        headers: list[tuple[bytes, bytes]] = []
        for line in fields:
            if len(line) > 8192:
                raise _Refuse(431)
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name) or re.search(controls, value):
                raise _Refuse(400)
            headers.append((name.lower(), value.strip(b" \t")))
        hosts = [v for n, v in headers if n == b"host"]
        if len(hosts) > 1 or (not hosts and not http10):
            raise _Refuse(400)
        expectations = [v.lower() for n, v in headers if n == b"expect"]
        if flaws.expect_417 and any(v != b"100-continue" for v in expectations):
            raise _Refuse(417)
        lengths = [v for n, v in headers if n == b"content-length"]
        codings = [v.lower() for n, v in headers if n == b"transfer-encoding"]
        connection = b",".join(v.lower() for n, v in headers if n == b"connection")
        keep_alive = b"close" not in connection and (not http10 or b"keep-alive" in connection)
        if codings and lengths and not flaws.cl_over_te:
            raise self._bad_framing()
        if len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
            raise self._bad_framing()
        if lengths:
            n = int(lengths[0])
            return (lambda sock, buf: self._fixed(sock, buf, n)), keep_alive
        if codings:
            if codings != [b"chunked"] or http10:
                raise self._bad_framing()
            return self._chunked, keep_alive
        return (lambda sock, buf: 0), keep_alive

    def _fixed(self, sock: socket.socket, buf: bytearray, n: int) -> int:
        while len(buf) < n:
            self._recv(sock, buf, False, False)
        del buf[:n]
        return n

    def _chunked(self, sock: socket.socket, buf: bytearray) -> int:
        total = 0
        while True:
            line = self._line(sock, buf, 4096, 400)
            size_text = line.split(b";")[0].rstrip(b" \t")
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text) or not _CHUNK_LINE.fullmatch(
                line
            ):
                raise self._bad_framing()
            size = int(size_text, 16)
            if size == 0:
                while len(buf) < 2:
                    self._recv(sock, buf, False, False)
                if not (self.flaws.trailers_as_request and not buf.startswith(b"\r\n")):
                    self._trailers(sock, buf)
                return total
            while len(buf) < size + 2:
                self._recv(sock, buf, False, False)
            if buf[size : size + 2] != b"\r\n":
                raise self._bad_framing()
            del buf[: size + 2]
            total += size

    def _line(self, sock: socket.socket, buf: bytearray, limit: int, status: int) -> bytes:
        """The next CRLF-ended line of a body, refused with ``status`` past ``limit`` bytes."""
        while b"\r\n" not in buf:
            if len(buf) > limit:
                raise _Refuse(status)
            self._recv(sock, buf, False, False)
        line, _, _ = bytes(buf).partition(b"\r\n")
        del buf[: len(line) + 2]
        return line

    def _trailers(self, sock: socket.socket, buf: bytearray) -> None:
        """Skip the trailer section, up to its empty line."""
        while line := self._line(sock, buf, 8192, 431):
            name = line.partition(b":")[0].lower().replace(b"_", b"-").replace(b".", b"-")
            valid = re.fullmatch(_T + rb":[^\x00-\x08\x0a-\x1f\x7f]*", line)
            if not valid or name in _NOT_TRAILERS:
                raise _Refuse(400)
