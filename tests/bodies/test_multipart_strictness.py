"""Where tether.multipart refuses what a peer accepts: each test quotes the RFC that decides.

Every case is a vector of spec/bodies/multipart.json; the test records that the
peer accepts it (so the disagreement is real) and that we raise the typed error.
"""

from __future__ import annotations

from typing import Any

import multipart as defnull
import pytest
import python_multipart

from tests.bodies._support import load_spec
from tether import multipart as mp

CASES = {c["id"]: c for c in load_spec("multipart.json")}


def _ours(case: dict[str, Any]) -> None:
    parser = mp.MultipartParser(case["boundary"].encode("latin-1"))
    parser.feed(case["body"].encode("latin-1"))
    parser.close()


def _python_multipart_accepts(case: dict[str, Any]) -> bool:
    parser = python_multipart.MultipartParser(case["boundary"].encode("latin-1"), {})
    try:
        parser.write(case["body"].encode("latin-1"))
        parser.finalize()
    except python_multipart.exceptions.MultipartParseError:
        return False
    return True


def _defnull_accepts(case: dict[str, Any]) -> bool:
    try:
        with defnull.PushMultipartParser(case["boundary"].encode("latin-1")) as parser:
            for _ in parser.parse(case["body"].encode("latin-1")):
                pass
    except defnull.MultipartError:
        return False
    return True


def _check(case_id: str, error: type[mp.MultipartError], *, pm: bool, dn: bool) -> None:
    case = CASES[case_id]
    assert _python_multipart_accepts(case) is pm
    assert _defnull_accepts(case) is dn
    with pytest.raises(error):
        _ours(case)


def test_missing_close_delimiter() -> None:
    """RFC 2046 section 5.1.1: "The boundary delimiter line following the last body part is
    a distinguished delimiter that indicates that no further body parts will follow." A body
    without it is cut short; python-multipart accepts it."""
    _check("missing-close-delimiter", mp.IncompleteMultipart, pm=True, dn=False)
    _check("empty-body", mp.IncompleteMultipart, pm=True, dn=False)


@pytest.mark.parametrize(
    ("case_id", "dn"),
    [
        ("missing-content-disposition", False),
        ("wrong-disposition-type", False),
        ("missing-name", True),
        ("no-headers", False),
    ],
)
def test_content_disposition_form_data_with_name(case_id: str, dn: bool) -> None:
    """RFC 7578 section 4.2: "Each part MUST contain a Content-Disposition header field where
    the disposition type is "form-data". The Content-Disposition header field MUST also
    contain an additional parameter of "name"." """
    _check(case_id, mp.MalformedPartHeaders, pm=True, dn=dn)


def test_bytes_after_the_close_delimiter() -> None:
    """RFC 2046 section 5.1.1: multipart-body := ... close-delimiter transport-padding
    [CRLF epilogue]: only linear white space may follow the close delimiter on its line."""
    _check("close-then-junk", mp.MalformedMultipart, pm=True, dn=True)


def test_bytes_after_a_delimiter() -> None:
    """RFC 2046 section 5.1.1: "The boundary delimiter MUST occur at the beginning of a line
    ... and ... is followed by optional linear whitespace and a CRLF"; the boundary "must
    not appear inside any of the encapsulated parts"."""
    _check("delimiter-then-junk", mp.MalformedMultipart, pm=True, dn=False)


def test_content_transfer_encoding() -> None:
    """RFC 7578 section 4.7: "Senders MUST NOT generate any parts with a
    Content-Transfer-Encoding header field." We do not decode one, so a body that uses
    quoted-printable is refused rather than handed over still encoded."""
    _check("rfc7578-example", mp.MalformedPartHeaders, pm=True, dn=True)


def test_repeated_parameters_and_fields() -> None:
    """RFC 6266 section 4.1: "Content-Disposition header field values with multiple instances
    of the same parameter name are invalid." Two Content-Disposition fields are as ambiguous."""
    _check("duplicate-parameter", mp.MalformedPartHeaders, pm=True, dn=True)
    _check("duplicate-content-disposition", mp.MalformedPartHeaders, pm=True, dn=True)


def test_obsolete_line_folding() -> None:
    """RFC 9112 section 5.2: "A sender MUST NOT generate a message that includes line folding
    ... except within the "message/http" media type." Part headers travel in HTTP
    messages; we refuse folding rather than guess (defnull unfolds it)."""
    _check("obs-fold-header", mp.MalformedPartHeaders, pm=False, dn=True)


def test_filename_star_charset() -> None:
    """RFC 8187 section 3.2.1: "Producers MUST use the "UTF-8" character encoding. Extension
    character encodings (mime-charset) are reserved for future use." (ISO-8859-1 is in the
    grammar and is accepted.)"""
    _check("filename-star-bad-charset", mp.MalformedPartHeaders, pm=True, dn=True)


def test_transport_padding_is_accepted() -> None:
    """The other way round: RFC 2046 section 5.1.1 says receivers "MUST be able to handle
    padding added by message transports"; defnull refuses it, we accept it."""
    case = CASES["transport-padding"]
    assert not _defnull_accepts(case)
    _ours(case)


def test_a_preamble_without_a_body_part() -> None:
    """RFC 2046 section 5.1.1: ``multipart-body := [preamble CRLF] dash-boundary
    transport-padding CRLF body-part *encapsulation close-delimiter ...``: a body part follows
    the first delimiter. When the first boundary line is damaged, a lenient reader takes it for
    a preamble and the close delimiter then ends the body with zero parts, so the field is lost
    without an error; multipart (defnull) accepts that. The close delimiter alone (an empty
    form, as browsers send it) stays valid."""
    _check("damaged-first-boundary", mp.MalformedMultipart, pm=False, dn=True)
    _check("preamble-then-close", mp.MalformedMultipart, pm=False, dn=True)
    _ours(CASES["no-parts-only-close"])
