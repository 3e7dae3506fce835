"""Fixtures for the threaded server tests (helpers live in threaded_helpers.py)."""

from threaded_helpers import certificate, serve

__all__ = ["certificate", "serve"]
