"""Header field parameters: ``type; name=value; name="quoted"`` (RFC 9110 section 5.6.6).

Shared by the body toolkit for Content-Type and Content-Disposition values,
plus RFC 8187 extended values (``filename*=UTF-8''na%C3%AFve.txt``).
Every function returns ``None`` for malformed input; callers raise their own
typed errors, so each concern names its own failure.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# A disposition type is a token; a media type is token "/" token.
_TYPE_RE = re.compile(rf"{_TOKEN}(?:/{_TOKEN})?")
# qdtext is HTAB, SP, visible ASCII but '"' and '\', and obs-text (any non-ASCII once decoded).
_QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\U0010ffff])*"'
_PARAM_RE = re.compile(rf"[ \t]*;[ \t]*(?:({_TOKEN})=({_TOKEN}|{_QUOTED}))?")
_OWS_END_RE = re.compile(r"[ \t]*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# RFC 8187 section 3.2.1: ext-value = charset "'" [ language ] "'" value-chars
_EXT_VALUE_RE = re.compile(
    r"(?i:(UTF-8|ISO-8859-1))'(?:[A-Za-z0-9-]*)'((?:%[0-9A-Fa-f]{2}|[!#$&+.^_`|~0-9A-Za-z-])*)"
)


def unquote(value: str, *, lenient_backslash: bool = False) -> str:
    """The content of a token or quoted-string.

    With ``lenient_backslash`` only ``\\"`` and ``\\\\`` are quoted-pairs and any
    other backslash is literal: browsers follow the WHATWG form encoding, which
    never escapes backslashes (Windows paths arrive as ``C:\\dir\\f.txt``).
    """
    if not value.startswith('"'):
        return value
    inner = value[1:-1]
    if "\\" not in inner:
        return inner
    if lenient_backslash:
        return re.sub(r'\\([\\"])', r"\1", inner)
    return re.sub(r"\\(.)", r"\1", inner, flags=re.DOTALL)


def parse_parameters(
    value: str, *, lenient_backslash: bool = False
) -> tuple[str, dict[str, str]] | None:
    """Split ``type *( OWS ";" OWS [ name "=" value ] )`` into the lowercased type and params.

    ``type`` is a token or a media type (``token "/" token``).

    Parameter names are lowercased; values are unquoted. A repeated parameter
    name is malformed (it makes the value ambiguous). ``None`` if malformed.
    """
    match = _TYPE_RE.match(value)
    if match is None:
        return None
    kind = match.group().lower()
    params: dict[str, str] = {}
    pos = match.end()
    end = len(value)
    while pos < end:
        param = _PARAM_RE.match(value, pos)
        if param is None:
            if _OWS_END_RE.match(value, pos):
                break
            return None
        pos = param.end()
        name = param.group(1)
        if name is None:
            continue
        key = name.lower()
        if key in params:
            return None
        params[key] = unquote(param.group(2), lenient_backslash=lenient_backslash)
    return kind, params


def decode_ext_value(value: str) -> str | None:
    """Decode an RFC 8187 ext-value (UTF-8 or ISO-8859-1); ``None`` if malformed."""
    match = _EXT_VALUE_RE.fullmatch(value)
    if match is None:
        return None
    raw = unquote_to_bytes(match.group(2))
    charset = match.group(1).lower()
    try:
        text = raw.decode("utf-8" if charset == "utf-8" else "latin-1")
    except UnicodeDecodeError:
        return None
    # Percent-decoding must not let through what a quoted-string refuses (RFC 9110 5.6.4:
    # qdtext has no control but HTAB): "%0A", "%1B" or "%00" in filename* came back as a line
    # break, an ESC sequence or a NUL in the file name an application logs or saves under.
    # RFC 8187 section 3.2.1 leaves the decoded characters to the charset; we refuse every
    # control (C0 with HTAB, DEL, and C1 such as U+009B CSI), as RFC 6266 section 4.3 asks
    # recipients to guard against names that cause confusion in user interfaces and file names.
    return None if _CONTROL.search(text) else text
