"""``--static PREFIX=DIR``: the option, and which mounted directory a request path falls under.

The files themselves are served by :class:`tether_server.static.StaticFiles`, which re-exports
these names.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

_App = TypeVar("_App")


@dataclass(frozen=True, slots=True)
class StaticMount:
    """One ``--static PREFIX=DIR``: requests under ``prefix`` are served from ``directory``."""

    prefix: str
    directory: str


def parse_static_mount(text: str) -> StaticMount:
    """Read ``PREFIX=DIR`` (``/assets=./public``); :class:`argparse.ArgumentTypeError` if wrong.

    The prefix must start with ``/``; a trailing ``/`` is dropped (``/`` alone mounts everything).
    """
    prefix, sep, directory = text.partition("=")
    if not sep or not prefix.startswith("/") or not directory:
        raise argparse.ArgumentTypeError(
            f"expected PREFIX=DIR with PREFIX starting with /: {text!r}"
        )
    if not os.path.isdir(directory):
        raise argparse.ArgumentTypeError(f"not a directory: {directory!r}")
    return StaticMount(prefix.rstrip("/"), directory)


def add_static_option(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """Add ``--static PREFIX=DIR`` (repeatable) to a server's command line; the parsed value is a
    list of :class:`StaticMount`, or None when the option is not given."""
    group.add_argument(
        "--static",
        type=parse_static_mount,
        action="append",
        default=None,
        metavar="PREFIX=DIR",
        help="serve the files in DIR under the URL path PREFIX, in front of the app "
        "(repeatable; e.g. /assets=./public)",
    )


def mount_rest(prefix: str, path: str) -> str | None:
    """The part of ``path`` under ``prefix`` (``""`` for the prefix itself), or None.

    The prefix matches whole segments: ``/assets`` takes ``/assets`` and ``/assets/x``, not
    ``/assetsx``. ``prefix`` has no trailing slash (``""`` takes every path).
    """
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix) :]
    if rest and rest[0] != "/":
        return None
    return rest


def mount_table(
    mounts: Sequence[StaticMount | tuple[str, _App]], make: Callable[[str], _App]
) -> list[tuple[str, _App]]:
    """``(prefix, app)`` pairs for an adapter's ``with_static``: a :class:`StaticMount` (what
    ``--static`` gives) becomes ``make(directory)``; a ``(prefix, app)`` pair is kept, its prefix
    without a trailing slash (as :func:`mount_rest` wants it)."""
    return [
        (mount.prefix, make(mount.directory))
        if isinstance(mount, StaticMount)
        else (mount[0].rstrip("/"), mount[1])
        for mount in mounts
    ]
