"""MkDocs hook: the docstrings use Sphinx roles (:class:`X`), which Markdown leaves as text.

Markdown renders ``:class:`X``` as ``:class:<code>X</code>``; drop the role name and keep the
code, and drop a leading ``~`` (Sphinx's "show only the last part") inside it.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|data|attr|mod|exc|obj|const):<code>~?")


def on_page_content(html: str, **kwargs: Any) -> str:
    """Strip Sphinx role names from a rendered page."""
    return _ROLE.sub("<code>", html)
