"""Dotfiles under ``--static``: a path with a segment starting with ``.`` (``/.env``,
``/.git/config``, ``/%2eenv``) is 404 by default, as Express's serve-static ignores dotfiles,
except ``/.well-known/`` (RFC 8615); ``--static-dotfiles`` serves them. Checked through the real
``tether serve`` and ``tether-threaded`` command lines over sockets, and on the shared class."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tests.processes import RUNNING, free_port, read_until, reaped
from tests.static.test_adapters import raw_get, start_server
from tether_server.static import StaticFiles, StaticMount, add_static_option

SECRET = b"DATABASE_PASSWORD=hunter2\n"

#: Request targets exactly as sent (percent-encoded dots included), and what each names.
HIDDEN = {
    "/assets/.env": SECRET,
    "/assets/%2eenv": SECRET,
    "/assets/%2Eenv": SECRET,
    "/assets/.git/config": b"[core]\n",
    "/assets/%2egit/config": b"[core]\n",
    "/assets/sub/.htpasswd": b"admin:$apr1$x\n",
    "/assets/./.env": SECRET,
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory served whole, secrets and all."""
    folder = tmp_path / "project"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "config").write_bytes(b"[core]\n")
    (folder / ".env").write_bytes(SECRET)
    (folder / "sub").mkdir()
    (folder / "sub" / ".htpasswd").write_bytes(b"admin:$apr1$x\n")
    (folder / ".well-known").mkdir()
    (folder / ".well-known" / "security.txt").write_bytes(b"Contact: x\n")
    (folder / "index.txt").write_bytes(b"public\n")
    return folder


@pytest.mark.parametrize("server", ["tether serve", "tether-threaded"])
def test_dotfiles_are_404_by_default(project: Path, tmp_path: Path, server: str) -> None:
    port = free_port()
    proc = start_server(server, tmp_path, port, "--static", f"/assets={project}")
    with reaped(proc):
        read_until(proc, RUNNING)
        for target, body in HIDDEN.items():
            response = raw_get(port, target)
            assert response.startswith(b"HTTP/1.1 404 "), (target, response[:80])
            assert body not in response, target
        known = raw_get(port, "/assets/.well-known/security.txt")
        assert known.startswith(b"HTTP/1.1 200 ") and known.endswith(b"Contact: x\n")
        assert raw_get(port, "/assets/index.txt").endswith(b"\r\n\r\npublic\n")


@pytest.mark.parametrize("server", ["tether serve", "tether-threaded"])
def test_static_dotfiles_serves_them(project: Path, tmp_path: Path, server: str) -> None:
    # Given before the mount it applies to: the order of the options does not matter.
    port = free_port()
    proc = start_server(
        server, tmp_path, port, "--static-dotfiles", "--static", f"/assets={project}"
    )
    with reaped(proc):
        read_until(proc, RUNNING)
        for target, body in HIDDEN.items():
            response = raw_get(port, target)
            assert response.startswith(b"HTTP/1.1 200 "), (target, response[:80])
            assert response.endswith(b"\r\n\r\n" + body), target


@pytest.mark.parametrize(
    "argv",
    [
        ["--static", "/a=DIR", "--static-dotfiles", "--static", "/b=DIR"],
        ["--static-dotfiles", "--static", "/a=DIR", "--static", "/b=DIR"],
        ["--static", "/a=DIR", "--static", "/b=DIR", "--static-dotfiles"],
    ],
)
def test_the_option_applies_to_every_mount(tmp_path: Path, argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    add_static_option(parser)
    args = parser.parse_args([arg.replace("DIR", str(tmp_path)) for arg in argv])
    assert args.static == [
        StaticMount("/a", str(tmp_path), dotfiles=True),
        StaticMount("/b", str(tmp_path), dotfiles=True),
    ]
    plain = parser.parse_args(["--static", f"/a={tmp_path}"])
    assert plain.static == [StaticMount("/a", str(tmp_path))] and not plain.static[0].dotfiles
    assert parser.parse_args(["--static-dotfiles"]).static is None


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/.env", 404),
        ("/.git/config", 404),
        ("/.git/", 404),
        ("/sub/.htpasswd", 404),
        ("/.well-known/security.txt", 200),
        ("/.well-known/../.env", 404),
        ("/.WELL-KNOWN/security.txt", 404),
        ("/index.txt", 200),
    ],
)
def test_shared_class_hides_dot_segments(project: Path, path: str, status: int) -> None:
    for html in (False, True):
        response = StaticFiles(project, html=html).respond(b"GET", path, [])
        response.close()
        assert response.status == status, (path, html)
    shown = StaticFiles(project, dotfiles=True).respond(b"GET", "/.env", [])
    shown.close()
    assert shown.status == 200
