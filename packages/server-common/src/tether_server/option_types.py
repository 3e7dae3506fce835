"""The argparse types of the shared options (:mod:`tether_server.options`): each converts one
value and refuses a bad one with a one-line message.

argparse names the type function in its message for a value it cannot convert
("argument --backlog: invalid _positive_int value: 'abc'"), so these keep the names both
command lines have always shown.
"""

from __future__ import annotations

import argparse

from tether_server.accesslog import compile_access_format
from tether_server.tagging import check_field_name, parse_header_option


def _positive_int(text: str) -> int:
    """An integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


#: Public name for servers' own options (argparse still shows "_positive_int" in its messages).
positive_int = _positive_int


def _octal(text: str) -> int:
    """File permissions in octal (``600``, ``0o660``)."""
    try:
        value = int(text.removeprefix("0o"), 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode: {text!r}") from None
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"not a file mode: {text!r}")
    return value


def _seconds(text: str) -> float:
    """A duration in seconds, not negative."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _rate(text: str) -> int:
    """A rate in bytes per second, not negative (0: no minimum)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _tls_version(text: str) -> str:
    """``--ssl-version``: TLSv1.2 or TLSv1.3; uvicorn's ``ssl.PROTOCOL_TLS`` (2) and
    ``PROTOCOL_TLS_SERVER`` (17) numbers read as the default. Older versions are refused."""
    if text in ("2", "17"):
        return "TLSv1.2"
    if text not in ("TLSv1.2", "TLSv1.3"):
        raise argparse.ArgumentTypeError(f"TLSv1.2 or TLSv1.3, got {text!r}")
    return text


def _optional_seconds(text: str) -> float | None:
    """A duration in seconds, or None for "none" or "off" (any case)."""
    if text.lower() in ("none", "off"):
        return None
    return _seconds(text)


def _interval(text: str) -> float | None:
    """An interval in seconds, or None ("never") for "none", "off" or 0: a zero interval
    would mean "all the time"."""
    value = _optional_seconds(text)
    return value if value else None


def _header(text: str) -> tuple[str, str]:
    """``--header NAME:VALUE``."""
    try:
        return parse_header_option(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _field_name(text: str) -> str:
    """A header field name (an RFC 9110 token)."""
    try:
        return check_field_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _access_format(text: str) -> str:
    """An ``--access-log-format`` that compiles (checked here, so a typo exits with status 2
    and one line, like any other bad option)."""
    try:
        compile_access_format(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
