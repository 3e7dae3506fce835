"""Errors of the WebSocket layer, each with the close code to send.

The peer's faults subclass :class:`tether.errors.RemoteProtocolError`, the
caller's misuse subclasses :class:`tether.errors.LocalProtocolError`. When a
connection raises one of the remote errors it has already queued the close
frame carrying ``close_code`` (when one may still be sent): the caller sends
``bytes_to_send()`` and closes the TCP connection.
"""

from __future__ import annotations

from tether.errors import LocalProtocolError, RemoteProtocolError


class HandshakeError(RemoteProtocolError):
    """The opening handshake is malformed (400), or the response to ours is unacceptable."""

    status_hint = 400


class UpgradeRequired(HandshakeError):
    """426: the request is not a WebSocket upgrade, or not of version 13 (RFC 6455 4.2.2)."""

    status_hint = 426


class FrameError(RemoteProtocolError):
    """1002: a frame breaks RFC 6455 section 5 (opcode, RSV bits, masking, lengths, order)."""

    close_code = 1002


class InvalidCloseFrame(FrameError):
    """1002: a close frame with a 1-byte payload or a close code that may not be sent."""


class InvalidPayload(RemoteProtocolError):
    """1007: a text message or close reason that is not UTF-8, or corrupt compressed data."""

    close_code = 1007


class MessageTooBig(RemoteProtocolError):
    """1009: a frame or a message (after decompression) exceeds its configured limit."""

    close_code = 1009


class InvalidSend(LocalProtocolError):
    """The caller asked to send something the protocol or the connection's state forbids.

    For example data after a close frame, a control payload over 125 bytes, a
    close code that may not be sent, or a message started inside another.
    """


__all__ = [
    "FrameError",
    "HandshakeError",
    "InvalidCloseFrame",
    "InvalidPayload",
    "InvalidSend",
    "MessageTooBig",
    "UpgradeRequired",
]
