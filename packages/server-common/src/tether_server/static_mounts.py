"""``--static PREFIX=DIR`` and ``--static-dotfiles``: the options, and which mounted directory a
request path falls under.

The files themselves are served by :class:`tether_server.static.StaticFiles`, which re-exports
these names.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

_App = TypeVar("_App")


@dataclass(frozen=True, slots=True)
class StaticMount:
    """One ``--static PREFIX=DIR``: requests under ``prefix`` are served from ``directory``;
    ``dotfiles`` (``--static-dotfiles``) serves the paths with a segment starting with ``.``."""

    prefix: str
    directory: str
    dotfiles: bool = False


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


class _AppendMount(argparse.Action):
    """``--static``: append the mount, serving dotfiles if ``--static-dotfiles`` came first."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        mounts = list(getattr(namespace, self.dest, None) or [])
        mounts.append(dataclasses.replace(values, dotfiles=namespace.static_dotfiles))
        setattr(namespace, self.dest, mounts)


class _Dotfiles(argparse.Action):
    """``--static-dotfiles``: every mount serves dotfiles, those given before it too."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        namespace.static_dotfiles = True
        mounts = getattr(namespace, "static", None) or []
        namespace.static = [dataclasses.replace(mount, dotfiles=True) for mount in mounts] or None


def add_static_option(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """Add ``--static PREFIX=DIR`` (repeatable) and ``--static-dotfiles`` to a server's command
    line; the parsed ``static`` is a list of :class:`StaticMount` (each with ``dotfiles`` set
    when ``--static-dotfiles`` is given, wherever it stands), or None when no mount is given."""
    group.add_argument(
        "--static",
        type=parse_static_mount,
        action=_AppendMount,
        default=None,
        metavar="PREFIX=DIR",
        help="serve the files in DIR under the URL path PREFIX, in front of the app "
        "(repeatable; e.g. /assets=./public). Paths with a segment starting with '.' "
        "(.env, .git/config) are 404, except /.well-known/",
    )
    group.add_argument(
        "--static-dotfiles",
        action=_Dotfiles,
        nargs=0,
        default=False,
        help="serve the --static paths with a segment starting with '.' too",
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
    mounts: Sequence[StaticMount | tuple[str, _App]], make: Callable[..., _App]
) -> list[tuple[str, _App]]:
    """``(prefix, app)`` pairs for an adapter's ``with_static``: a :class:`StaticMount` (what
    ``--static`` gives) becomes ``make(directory, dotfiles=...)``; a ``(prefix, app)`` pair is
    kept, its prefix without a trailing slash (as :func:`mount_rest` wants it)."""
    return [
        (mount.prefix, make(mount.directory, dotfiles=mount.dotfiles))
        if isinstance(mount, StaticMount)
        else (mount[0].rstrip("/"), mount[1])
        for mount in mounts
    ]
