"""The ASGI TLS extension (``scope["extensions"]["tls"]``) of https and wss connections, built
once per connection over what is looked up once per server; and the byte counts under TLS."""

from __future__ import annotations

import re
import ssl
from typing import Any

from anyio.streams.tls import TLSAttribute, TLSStream

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_PEM_CERT = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)
#: RFC 4514 names of the attribute types Python's ``getpeercert()`` spells out.
_RDN_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


class CountedStream:
    """A TLS stream whose decrypted bytes are counted in a metrics cell (``--metrics-port``),
    as on every server: the HTTP bytes, before encryption."""

    __slots__ = ("_cell", "_stream")

    def __init__(self, stream: TLSStream, cell: Any) -> None:
        self._stream = stream
        self._cell = cell

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """The next decrypted bytes; raises ``EndOfStream`` at EOF."""
        data = await self._stream.receive(max_bytes)
        self._cell.received += len(data)
        return data

    async def send(self, item: bytes) -> None:
        """Encrypt and write ``item``."""
        await self._stream.send(item)
        self._cell.sent += len(item)

    async def send_eof(self) -> None:
        """Half-close (as the TLS stream allows)."""
        await self._stream.send_eof()

    async def aclose(self) -> None:
        """Close the TLS stream and the connection under it."""
        await self._stream.aclose()


class TLSInfo:
    """Builds the TLS extension of each connection of one server."""

    def __init__(self, context: ssl.SSLContext, certfile: str) -> None:
        #: The server's certificate (the first in the cert file), PEM, as ASGI asks.
        self.server_cert = _first_certificate(certfile)
        #: OpenSSL cipher name -> the 16-bit IANA number ASGI's ``cipher_suite`` is.
        self.cipher_ids = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}

    def extension(self, stream: TLSStream) -> dict[str, Any]:
        """The ``tls`` scope extension of the connection over ``stream``."""
        version = stream.extra(TLSAttribute.tls_version, None)
        cipher = stream.extra(TLSAttribute.cipher, None)
        chain: list[str] = []
        name: str | None = None
        der = stream.extra(TLSAttribute.peer_certificate_binary, None)
        if der:
            chain.append(ssl.DER_cert_to_PEM_cert(der))
            # getpeercert() is empty unless the certificate was verified (--ssl-cert-reqs 1/2).
            name = _rfc4514(stream.extra(TLSAttribute.peer_certificate, None))
        return {
            "server_cert": self.server_cert,
            "client_cert_chain": chain,
            "client_cert_name": name,
            # A certificate that fails verification fails the handshake: no connection gets here.
            "client_cert_error": None,
            "tls_version": _TLS_VERSIONS.get(version or ""),
            "cipher_suite": self.cipher_ids.get(cipher[0]) if cipher else None,
        }


def _first_certificate(certfile: str) -> str | None:
    try:
        with open(certfile, encoding="ascii", errors="replace") as file:
            match = _PEM_CERT.search(file.read())
    except OSError:
        return None
    return match.group(0) + "\n" if match else None


def _rfc4514(certificate: Any) -> str | None:
    """The subject of a ``getpeercert()`` dict as an RFC 4514 string (last RDN first)."""
    if not certificate or "subject" not in certificate:
        return None
    rdns = reversed(certificate["subject"])
    text = ",".join("+".join(f"{_RDN_NAMES.get(k, k)}={_escape(v)}" for k, v in r) for r in rdns)
    return text or None


def _escape(value: str) -> str:
    out = re.sub(r'([,+"\\<>;])', r"\\\1", value)
    if out[:1] in ("#", " "):
        out = "\\" + out
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return out
