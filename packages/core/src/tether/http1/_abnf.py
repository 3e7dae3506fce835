"""The HTTP/1.1 grammar as compiled regular expressions (RFC 9110, RFC 9112).

The parser validates a whole request head with one ``fullmatch`` and extracts
its fields with one ``findall``, both running in C. These patterns are the
single statement of what we accept; where they are stricter than the RFC
allows a recipient to be, the comment names the sentence.
"""

from __future__ import annotations

import re

# RFC 9110 5.6.2: token = 1*tchar
_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
TOKEN = _TCHAR + rb"+"

# RFC 9110 5.5: field-value = *field-content; field-vchar = VCHAR / obs-text. Values begin
# and end with a visible byte; SP and HTAB may sit inside. Every other control byte,
# including a bare CR or LF, is refused (RFC 9110 5.5: "a recipient ... MUST either reject
# the message or replace each of those characters with SP": we reject).
_VCHAR = rb"[\x21-\x7e\x80-\xff]"
_VALUE = _VCHAR + rb"(?:[\t\x20-\x7e\x80-\xff]*" + _VCHAR + rb")?"  # a non-empty field-value
# ":" OWS field-value OWS CRLF, written so that a run of SP/HTAB is read one way only: the
# second OWS follows a non-empty value. With an optional value between two OWS, a line that
# fails after a run of spaces made the matcher try every split of the run between them
# (quadratic: a fifth of a second for one 8 KiB line).
_COLON_VALUE_CRLF = rb":[ \t]*(?:" + _VALUE + rb"[ \t]*)?\r\n"

# RFC 9112 5.1: field-line = field-name ":" OWS field-value OWS. No whitespace is allowed
# between the name and the colon ("A server MUST reject, with a response status code of 400
# (Bad Request), any received request message that contains whitespace between a header
# field name and colon"); an obs-fold line starts with SP/HTAB, which no name can, so it is
# refused too (RFC 9112 5.2: we choose to reject rather than unfold).
FIELD_LINE = re.compile(rb"(" + TOKEN + rb"):[ \t]*(?:(" + _VALUE + rb")[ \t]*)?\r\n")

# RFC 9112 3.2: no form of request-target has a fragment (origin-form = absolute-path
# [ "?" query ]; absolute-form = absolute-URI, which has none), and RFC 9110 4.2.5 says a
# fragment is not sent. Where the RFC leaves a raw "#" to the recipient we refuse it: a proxy
# that cuts the target at "#" routes a different path than the server behind it would see
# (an access rule on "/public" passing "/public#/../admin").
TARGET = rb"[\x21\x22\x24-\x7e]+"

# RFC 9112 3: request-line = method SP request-target SP HTTP-version, exactly one SP each
# (we do not take the MAY of section 3 that allows other whitespace as separators).
# request-target is any run of visible US-ASCII but "#" (TARGET); its form is checked
# separately.
REQUEST_HEAD = re.compile(
    rb"(" + TOKEN + rb") (" + TARGET + rb") HTTP/([0-9])\.([0-9])\r\n"
    rb"((?:" + TOKEN + _COLON_VALUE_CRLF + rb")*)"
)
# The same shape, loosely, to tell "malformed" (400) from "another version" (505).
REQUEST_LINE_ANY_VERSION = re.compile(rb"(" + TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")

# A header or trailer block alone (used for trailers and for validating what we send).
FIELD_BLOCK = re.compile(rb"(?:" + TOKEN + _COLON_VALUE_CRLF + rb")*")

# RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
# chunk-ext-val = token / quoted-string. Nothing may follow the extensions on the line.
_QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
CHUNK_EXT = re.compile(
    rb"(?:[ \t]*;[ \t]*"
    + TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + TOKEN
    + rb"|"
    + _QUOTED_STRING
    + rb"))?)*"
)

# RFC 3986 3.2.2 and 3.2.3, for Host and authority-form: IP-literal / IPv4address / reg-name,
# then an optional port. reg-name is unreserved / pct-encoded / sub-delims.
_IP_LITERAL = rb"\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]"
_REG_NAME = rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*"
HOST = re.compile(rb"(?:" + _IP_LITERAL + rb"|" + _REG_NAME + rb")(?::[0-9]*)?")
# RFC 9112 3.2.3: authority-form = uri-host ":" port (the port is required).
AUTHORITY_FORM = re.compile(rb"(?:" + _IP_LITERAL + rb"|" + _REG_NAME + rb"):[0-9]+")
# RFC 9112 3.2.2: absolute-form = absolute-URI. We require "scheme://" so that a bare
# authority such as "example.com:80" is never taken for a URI with scheme "example.com".
ABSOLUTE_FORM = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://[\x21-\x7e]*")

# For the send side: a reason phrase (RFC 9112 4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )).
REASON = re.compile(rb"[\t \x21-\x7e\x80-\xff]*")
