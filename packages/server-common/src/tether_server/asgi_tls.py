"""The ASGI TLS extension (``scope["extensions"]["tls"]``) of https and wss connections.

Built once per connection from its :class:`ssl.SSLObject` (or :class:`ssl.SSLSocket`), over
what is looked up once per server: any ASGI server with a TLS connection can call it.
"""

from __future__ import annotations

import re
import ssl
from typing import Any

__all__ = ["TLSInfo", "rfc4514_name"]

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


class TLSInfo:
    """Builds the TLS extension of each connection of one server."""

    def __init__(self, context: ssl.SSLContext, certfile: str) -> None:
        #: The server's certificate (the first in the cert file), PEM, as ASGI asks.
        self.server_cert = _first_certificate(certfile)
        #: OpenSSL cipher name -> the 16-bit IANA number ASGI's ``cipher_suite`` is.
        self.cipher_ids = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}

    def extension(self, tls: ssl.SSLObject | ssl.SSLSocket) -> dict[str, Any]:
        """The ``tls`` scope extension of the connection whose TLS side is ``tls``."""
        version = tls.version()
        cipher = tls.cipher()
        chain: list[str] = []
        name: str | None = None
        der = tls.getpeercert(binary_form=True)
        if der:
            chain.append(ssl.DER_cert_to_PEM_cert(der))
            # getpeercert() is empty unless the certificate was verified (--ssl-cert-reqs 1/2).
            name = rfc4514_name(tls.getpeercert())
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


def rfc4514_name(certificate: Any) -> str | None:
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
