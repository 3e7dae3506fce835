"""The ASGI lifespan protocol: startup before serving, shutdown after, with shared ``state``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from tether_asyncio._state import error_log
from tether_asyncio._types import Message

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from tether_asyncio._state import ServerState


class LifespanFailure(Exception):
    """Startup failed (the app sent ``lifespan.startup.failed`` or raised); the message says why."""


class Lifespan:
    """Drive the application's lifespan task."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.mode = state.config.lifespan
        #: Calls of the app's ``receive`` so far (the first gets startup, the second shutdown).
        self._received = 0
        self._shutdown_asked = anyio.Event()
        self._startup_done = anyio.Event()
        self._shutdown_done = anyio.Event()
        self._failure: str | None = None
        self._unsupported = False

    async def startup(self, task_group: TaskGroup) -> None:
        """Run startup; raise :class:`LifespanFailure` if the app reports or raises a failure."""
        if self.mode == "off":
            return
        task_group.start_soon(self._main)
        await self._startup_done.wait()
        if self._failure is not None:
            raise LifespanFailure(self._failure)

    async def shutdown(self) -> None:
        """Run shutdown, if startup ran; failures are logged."""
        if self.mode == "off" or self._unsupported or self._shutdown_done.is_set():
            return  # an app that returned has set _shutdown_done
        self._shutdown_asked.set()
        await self._shutdown_done.wait()

    async def _main(self) -> None:
        scope: dict[str, Any] = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state.app_state,
        }
        try:
            await self.state.app(scope, self._receive, self._send)
        except Exception as exc:
            if not self._startup_done.is_set() and self.mode == "auto":
                # Many apps raise on an unknown scope type: that means "no lifespan support".
                self._unsupported = True
                error_log.info("ASGI lifespan protocol appears unsupported (%s)", exc)
            elif not self._startup_done.is_set():
                self._failure = f"exception in lifespan startup: {exc!r}"
                error_log.error("exception in lifespan startup", exc_info=exc)
            elif self._failure is not None:
                # Raised after lifespan.startup.failed (Starlette re-raises what failed): the
                # server reports the startup failure once; this is its detail.
                error_log.debug("lifespan startup failed with an exception", exc_info=exc)
            else:
                error_log.error("exception in lifespan shutdown", exc_info=exc)
        else:
            if not self._startup_done.is_set():
                self._unsupported = True
        finally:
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> Message:
        """The app's ``receive``: ``lifespan.startup`` at once, ``lifespan.shutdown`` when the
        server stops, and nothing after it."""
        self._received += 1
        if self._received == 1:
            return {"type": "lifespan.startup"}
        await self._shutdown_asked.wait()
        if self._received > 2:
            await anyio.sleep_forever()
        return {"type": "lifespan.shutdown"}

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._startup_done.set()
        elif kind == "lifespan.startup.failed":
            self._failure = message.get("message", "") or "the application refused to start"
            self._startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            error_log.error("lifespan shutdown failed: %s", message.get("message", ""))
            self._shutdown_done.set()
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r} in lifespan")
