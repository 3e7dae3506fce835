"""The server-side TLS context both servers build from the ``--ssl-*`` options."""

from __future__ import annotations

import os
import ssl
from typing import Protocol

from tether_server.options import ConfigError

# -- TLS -------------------------------------------------------------------------------------


class SSLOptions(Protocol):
    """The ``--ssl-*`` options, as both servers' ``Config`` classes carry them."""

    @property
    def ssl_certfile(self) -> str | None:
        """The certificate chain (PEM); without it the server speaks plain HTTP."""

    @property
    def ssl_keyfile(self) -> str | None:
        """The private key (PEM), if not in the certificate file."""

    @property
    def ssl_keyfile_password(self) -> str | None:
        """The password of an encrypted private key."""

    @property
    def ssl_ca_certs(self) -> str | None:
        """Certificate authorities to verify client certificates against."""

    @property
    def ssl_cert_reqs(self) -> int:
        """Whether to ask for a client certificate: an :class:`ssl.VerifyMode` value."""

    @property
    def ssl_ciphers(self) -> str:
        """The OpenSSL cipher list; empty keeps OpenSSL's default."""

    @property
    def ssl_version(self) -> str:
        """The oldest TLS version accepted: "TLSv1.2" or "TLSv1.3"."""


def create_ssl_context(options: SSLOptions) -> ssl.SSLContext | None:
    """Build the server-side TLS context from the ``ssl_*`` options (None without a cert).

    Missing files and unusable certificates or keys raise :class:`ConfigError` naming the
    option, before any socket is bound.
    """
    if options.ssl_certfile is None:
        if options.ssl_keyfile is not None:
            raise ConfigError("--ssl-keyfile needs --ssl-certfile")
        return None
    for option, path in (
        ("--ssl-certfile", options.ssl_certfile),
        ("--ssl-keyfile", options.ssl_keyfile),
        ("--ssl-ca-certs", options.ssl_ca_certs),
    ):
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{option}: no such file: {path}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if options.ssl_version == "TLSv1.3" else ssl.TLSVersion.TLSv1_2
    )
    try:
        context.load_cert_chain(
            options.ssl_certfile, options.ssl_keyfile, password=options.ssl_keyfile_password
        )
        if options.ssl_ca_certs is not None:
            context.load_verify_locations(options.ssl_ca_certs)
        context.verify_mode = ssl.VerifyMode(options.ssl_cert_reqs)
        if options.ssl_ciphers:
            context.set_ciphers(options.ssl_ciphers)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"could not load the TLS certificate or key: {exc}") from None
    context.set_alpn_protocols(["http/1.1"])
    return context


# -- plain HTTP on a TLS port ----------------------------------------------------------------

_PLAIN_HTTP_TEXT = b"This port speaks HTTPS: the request was sent as plain HTTP.\n"
#: What a client that sends plain HTTP to a TLS port is answered, in plain HTTP, before the
#: connection closes (nginx answers such a request 400 too): ``curl http://host:443/`` then
#: says why instead of "empty reply from server".
PLAIN_HTTP_RESPONSE = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_PLAIN_HTTP_TEXT), _PLAIN_HTTP_TEXT)
)


def plain_http(first: bytes) -> bool:
    """Whether the first bytes a client sent to a TLS port start plain HTTP: a method's
    uppercase letter, where a TLS handshake starts with 0x16 (a record) or 0x80 and up (an
    SSLv2-style hello)."""
    return bool(first) and 0x41 <= first[0] <= 0x5A
