"""A seeded generator of realistic HTTP/1.1 request traffic, for benchmarks.

Real requests behind a reverse proxy differ from each other: every session has its own Cookie
and User-Agent, every request its own ``X-Request-Id``, ``traceparent`` and (from the proxy)
``X-Forwarded-For``, paths and query strings vary, some requests are POSTs with JSON bodies and
a few are chunked. A benchmark that repeats one request's bytes measures caches, not parsing;
this module makes thousands of distinct requests instead, the same ones for the same seed.

Run ``python bench/traffic.py --count 5 --seed 1`` to see a few, or ``--wrk-lua FILE`` to write a
wrk script that cycles through distinct request heads (for the server benchmarks).

Use:
    >>> from traffic import requests
    >>> corpus = requests(20_000, seed=1)   # list[bytes], each one whole request
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator

_HOSTS = (b"www.example.com", b"api.example.com", b"shop.example.com")
_BROWSERS = (
    b"Mozilla/5.0 (X11; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0",
    b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/%d.0.0.0 Safari/537.36 Edg/%d.0.0.0",
    b"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_%d) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    b"Version/17.%d Safari/605.1.15",
    b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_%d like Mac OS X) AppleWebKit/605.1.15 "
    b"(KHTML, like Gecko) Mobile/15E148 Version/17.%d",
    b"python-httpx/0.%d.%d",
    b"okhttp/4.%d.%d",
)
_LANGS = (b"en-GB,en;q=0.7,de;q=0.3", b"en-US,en;q=0.9", b"fr-FR,fr;q=0.9,en;q=0.5", b"de-DE")
_SECTIONS = (b"articles", b"products", b"users", b"search", b"static", b"api/v1/items", b"orders")
_WORDS = (b"alpha", b"beta", b"gamma", b"delta", b"news", b"sale", b"red", b"blue", b"shoes")
_ACCEPT_PAGE = b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
_ACCEPT_API = b"application/json"


def _hex(rng: random.Random, n: int) -> bytes:
    return rng.getrandbits(4 * n).to_bytes((4 * n + 7) // 8, "big").hex()[-n:].encode().zfill(n)


class _Session:
    """What one browser or API client keeps across its requests."""

    def __init__(self, rng: random.Random, index: int) -> None:
        form = rng.choice(_BROWSERS)
        self.agent = form % (rng.randint(100, 140), rng.randint(1, 30))
        self.lang = rng.choice(_LANGS)
        self.host = rng.choice(_HOSTS)
        self.api = self.agent.startswith((b"python", b"okhttp"))
        cookie = [b"session=" + _hex(rng, 32), b"theme=" + rng.choice((b"dark", b"light"))]
        if rng.random() < 0.6:
            cookie.append(b"_ga=GA1.2.%d.%d" % (rng.getrandbits(31), 1_700_000_000 + index))
        if rng.random() < 0.3:
            cookie.append(b"cart=" + _hex(rng, rng.randint(20, 120)))
        self.cookie = b"; ".join(cookie)
        self.token = b"Bearer " + _hex(rng, 48) if self.api else None
        self.client_ip = b"%d.%d.%d.%d" % (
            rng.randint(1, 223),
            rng.randint(0, 255),
            rng.randint(0, 255),
            rng.randint(1, 254),
        )


def _target(rng: random.Random) -> bytes:
    section = rng.choice(_SECTIONS)
    path = b"/%s/%d" % (section, rng.randint(1, 99_999))
    if rng.random() < 0.3:
        path += b"/" + rng.choice(_WORDS)
    if rng.random() < 0.5:
        query = [b"q=" + rng.choice(_WORDS), b"page=%d" % rng.randint(1, 40)]
        if rng.random() < 0.3:
            query.append(b"utm_source=" + rng.choice((b"feed", b"mail", b"ad")))
        path += b"?" + b"&".join(query)
    return path


def _body(rng: random.Random) -> bytes:
    doc = {
        "id": rng.randint(1, 10**9),
        "name": rng.choice(_WORDS).decode(),
        "tags": [rng.choice(_WORDS).decode() for _ in range(rng.randint(0, 6))],
        "qty": rng.randint(1, 9),
        "note": "x" * rng.randint(0, 600),
    }
    return json.dumps(doc).encode()


def _chunked(rng: random.Random, body: bytes) -> bytes:
    out = []
    pos = 0
    while pos < len(body):
        size = rng.randint(50, 400)
        piece = body[pos : pos + size]
        out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        pos += size
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def _request(rng: random.Random, session: _Session) -> bytes:
    post = rng.random() < 0.25
    method = b"POST" if post else b"GET"
    lines = [b"%s %s HTTP/1.1" % (method, _target(rng)), b"Host: " + session.host]
    lines.append(b"User-Agent: " + session.agent)
    lines.append(b"Accept: " + (_ACCEPT_API if session.api or post else _ACCEPT_PAGE))
    if not session.api:
        lines.append(b"Accept-Language: " + session.lang)
        lines.append(b"Accept-Encoding: gzip, deflate, br, zstd")
        if rng.random() < 0.7:
            lines.append(b"Referer: https://%s%s" % (session.host, _target(rng)))
        lines.append(b"Cookie: " + session.cookie)
    if session.token is not None:
        lines.append(b"Authorization: " + session.token)
    # What the reverse proxy adds to every request.
    lines.append(b"X-Request-Id: " + _hex(rng, 32))
    lines.append(b"traceparent: 00-%s-%s-01" % (_hex(rng, 32), _hex(rng, 16)))
    lines.append(b"X-Forwarded-For: " + session.client_ip)
    lines.append(b"X-Forwarded-Proto: https")
    body = b""
    if post:
        body = _body(rng)
        lines.append(b"Content-Type: application/json")
        if rng.random() < 0.1:
            lines.append(b"Transfer-Encoding: chunked")
            body = _chunked(rng, body)
        else:
            lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def iter_requests(count: int, seed: int = 1, sessions: int = 300) -> Iterator[bytes]:
    """Yield ``count`` whole requests from ``sessions`` simulated clients, seeded."""
    rng = random.Random(seed)
    pool = [_Session(rng, i) for i in range(sessions)]
    for _ in range(count):
        yield _request(rng, rng.choice(pool))


def requests(count: int, seed: int = 1, sessions: int = 300) -> list[bytes]:
    """``count`` whole requests (head and body), all distinct, the same ones for the same seed."""
    return list(iter_requests(count, seed, sessions))


def wrk_lua(heads: list[bytes]) -> str:
    """A wrk script that sends the given GET heads in turn, one per request (no body)."""
    quoted = ",\n".join("  " + json.dumps(h.decode("latin-1")) for h in heads)
    return (
        "-- Generated by bench/traffic.py: distinct request heads, sent in turn.\n"
        f"local heads = {{\n{quoted}\n}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #heads + 1\n"
        "  return heads[i]\n"
        "end\n"
    )


def get_heads(count: int, seed: int = 1, host: bytes | None = None) -> list[bytes]:
    """``count`` distinct GET request heads (POSTs skipped), for load generators."""
    out: list[bytes] = []
    for raw in iter_requests(count * 2, seed):
        if raw.startswith(b"GET "):
            head = raw
            if host is not None:
                lines = head.split(b"\r\n")
                lines[1] = b"Host: " + host
                head = b"\r\n".join(lines)
            out.append(head)
            if len(out) == count:
                break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wrk-lua", default=None, help="write a wrk script of GET heads here")
    args = parser.parse_args()
    if args.wrk_lua:
        with open(args.wrk_lua, "w") as f:
            f.write(wrk_lua(get_heads(args.count, args.seed)))
        return
    for raw in requests(args.count, args.seed):
        print(raw.decode("latin-1"))
        print("-" * 40)


if __name__ == "__main__":
    main()
