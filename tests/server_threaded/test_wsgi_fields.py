"""The application's response fields: the table of common names gives what the rules give."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.serving_wsgi import _HOP_BY_HOP, _RAW_NAMES, encode_header

_CONTENT_LENGTH = encode_header(("content-length", "0"))[0]


def _by_the_rules(name: str, value: str) -> tuple[bytes, bytes]:
    """PEP 3333's checks one pair at a time, without the table."""
    lname = name.lower()
    if lname in _HOP_BY_HOP and (lname != "connection" or value.strip().lower() != "close"):
        raise ValueError("hop-by-hop")
    raw_name = _CONTENT_LENGTH if lname == "content-length" else name.encode("latin-1")
    return raw_name, value.encode("latin-1")


_SPELLINGS = [
    *sorted(_RAW_NAMES),
    "CONTENT-LENGTH",
    "Content-length",
    "X-Custom",
    "Connection",
    "connection",
    "Transfer-Encoding",
    "Upgrade",
    "Keep-Alive",
    "caf\xe9",
]
_NAMES = st.sampled_from(_SPELLINGS).flatmap(
    lambda name: st.sampled_from([name, name.lower(), name.upper(), name.swapcase()])
)


class TestResponseFieldNames:
    @given(_NAMES, st.sampled_from(["close", " Close ", "x", "", "\xe9"]))
    def test_every_name_is_encoded_as_the_rules_say(self, name: str, value: str) -> None:
        try:
            expected = _by_the_rules(name, value)
        except ValueError:
            with pytest.raises(ValueError, match="hop-by-hop"):
                encode_header((name, value))
            return
        got = encode_header((name, value))
        assert got == expected
        if name.lower() == "content-length":
            assert got[0] is _CONTENT_LENGTH  # the one spelling the core recognises

    def test_a_str_subclass_spelled_like_a_common_name_is_refused(self) -> None:
        class Text(str):
            pass

        with pytest.raises(TypeError):
            encode_header((Text("Content-Type"), "text/plain"))
