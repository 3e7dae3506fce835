"""``wsgi.file_wrapper`` (PEP 3333 "Optional Platform-Specific File Handling").

An application that returns ``environ["wsgi.file_wrapper"](file)``
(:class:`tether.serving_wsgi.FileWrapper`) has its file sent with
``os.sendfile`` on a plain socket (the head first, through the core, then the file's bytes
straight from the page cache), without the connection's lock held during the call: it may wait
on the disk, and the loop takes that lock for every event of the connection.
"""

from __future__ import annotations

import io
import os
import stat

from tether.serving_cycle import ResponseCycle
from tether.serving_wsgi import FileWrapper, Write
from tether_threaded._connection import Connection
from tether_threaded._input import ClientDisconnected

#: Most bytes one ``os.sendfile`` call is asked to move.
_SENDFILE_BLOCK = 1 << 20


def send_file(conn: Connection, cycle: ResponseCycle, wrapper: FileWrapper, write: Write) -> None:
    """Send ``wrapper``'s file as the body of ``cycle`` (a worker thread, the head not sent yet):
    a regular file with ``os.sendfile``; other file-likes in blocks through ``write``."""
    filelike = wrapper.filelike
    try:
        fileno = filelike.fileno()
        info = os.fstat(fileno)
        offset = filelike.tell()
    except (AttributeError, OSError, io.UnsupportedOperation):
        info = None
    if info is None or not stat.S_ISREG(info.st_mode):
        for block in wrapper:
            write(block)
        return
    available = max(0, info.st_size - offset)
    with conn.lock:
        if conn.closing:
            raise ClientDisconnected("the connection is closing")
        conn.write(cycle.file_head(available))
    room = cycle.file_room
    count = available if room is None else min(available, room)
    if cycle.head or cycle.status < 200 or cycle.status in (204, 304):
        return
    framing = conn.core.frame_body(count)
    if framing is None:
        return
    before, after = framing
    if before:
        with conn.lock:
            conn.write(before)
    fd = conn.sock.fileno()
    done = 0
    while done < count:
        with conn.lock:
            if conn.closing:
                raise ClientDisconnected("the connection is closing")
            if conn.outbuf:
                conn.wait_writable()
            conn.sending = True
        # Without the lock: the call may wait on the disk, and the loop thread takes this
        # lock for every event of the connection. ``sending`` keeps the descriptor open.
        failure: OSError | None = None
        try:
            moved = os.sendfile(fd, fileno, offset + done, min(count - done, _SENDFILE_BLOCK))
        except (BlockingIOError, InterruptedError):
            moved = -1
        except OSError as exc:
            failure = exc
        with conn.lock:
            conn.release_socket()
            if conn.closed:
                raise ClientDisconnected("the connection closed while sending")
            if failure is not None:
                conn.break_()
                raise ClientDisconnected(f"sendfile failed: {failure}") from failure
            if moved < 0:
                conn.wait_writable()
                continue
        if moved == 0:
            raise RuntimeError("the file ended before its announced length")
        done += moved
        cycle.file_sent(moved)
        if conn.loop.metrics is not None:
            conn.loop.metrics.sent(moved)
    if after:
        with conn.lock:
            conn.write(after)


__all__ = ["send_file"]
