"""A backtracking model of ``re`` that counts its steps: how the parser audits tell a pattern
that works in linear time from one that backtracks quadratically, without a timed assertion."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

try:  # Python 3.11+
    from re import _constants as sre_c  # type: ignore[attr-defined]
    from re import _parser as sre_p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants as sre_c
    import sre_parse as sre_p

_ONE_CHAR = {sre_c.LITERAL, sre_c.NOT_LITERAL, sre_c.IN, sre_c.ANY}
_SPACE = frozenset(b" \t\n\r\f\v")


class Backtracker:
    """A backtracking matcher over ``re``'s parse tree that counts its steps.

    Alternatives are tried in ``re``'s order (greedy repeats longest first, a one-character
    repeat taken at once and given back one by one), so the count grows as the engine's work
    does. Patterns are modelled over bytes: a str pattern's text is read as latin-1.
    """

    def __init__(self, pattern: re.Pattern[Any]) -> None:
        source = pattern.pattern
        if isinstance(source, str):
            source = source.encode("latin-1")
        self.tree: list[Any] = list(sre_p.parse(source, pattern.flags & ~re.UNICODE))
        self.text = b""
        self.count = 0

    def attempt(self, text: bytes, pos: int, *, full: bool = False) -> int:
        """Steps to match at ``pos`` (to the end of ``text`` when ``full``), or to fail."""
        self.text, self.count = text, 0
        self._seq(self.tree, 0, pos, (lambda i: i == len(text)) if full else (lambda i: True))
        return self.count

    def steps(self, text: bytes) -> int:
        """Steps to ``match`` the pattern at the start of ``text`` (or fail to)."""
        return self.attempt(text, 0)

    def _char(self, node: tuple[Any, Any], ch: int) -> bool:
        op, av = node
        if op is sre_c.ANY:
            return ch != 0x0A
        if op is sre_c.LITERAL:
            return bool(ch == av)
        if op is sre_c.NOT_LITERAL:
            return bool(ch != av)
        negate, hit = False, False
        for item, arg in av:
            if item is sre_c.NEGATE:
                negate = True
            elif item is sre_c.LITERAL:
                hit = hit or ch == arg
            elif item is sre_c.RANGE:
                hit = hit or arg[0] <= ch <= arg[1]
            elif item is sre_c.CATEGORY and arg is sre_c.CATEGORY_SPACE:
                hit = hit or ch in _SPACE
            else:
                raise NotImplementedError(item)
        return hit != negate

    def _seq(self, seq: list[Any], idx: int, i: int, k: Callable[[int], bool]) -> bool:
        self.count += 1
        if idx == len(seq):
            return k(i)
        op, av = seq[idx]
        text = self.text

        def nxt(j: int) -> bool:
            return self._seq(seq, idx + 1, j, k)

        if op in _ONE_CHAR:
            return i < len(text) and self._char(seq[idx], text[i]) and nxt(i + 1)
        if op is sre_c.SUBPATTERN:
            return self._seq(list(av[-1]), 0, i, nxt)
        if op is sre_c.BRANCH:
            return any(self._seq(list(alt), 0, i, nxt) for alt in av[1])
        if op is sre_c.AT and av in (sre_c.AT_END_STRING, sre_c.AT_END):
            return i == len(text) and nxt(i)
        if op is sre_c.MAX_REPEAT:
            low, high, body = av[0], av[1], list(av[2])
            if len(body) == 1 and body[0][0] in _ONE_CHAR:
                n = 0
                while n < high and i + n < len(text) and self._char(body[0], text[i + n]):
                    n += 1
                    self.count += 1
                return any(nxt(i + t) for t in range(n, low - 1, -1))

            def rep(count: int, j: int) -> bool:
                if count < high and self._seq(body, 0, j, lambda e: e != j and rep(count + 1, e)):
                    return True
                return count >= low and nxt(j)

            return rep(0, i)
        raise NotImplementedError(op)
