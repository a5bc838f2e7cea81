# -*- test-case-name: tests.transports.test_tcp -*-
"""
Write a packet now, with its own send() call, as ctdbd's queue does.

Twisted's transports collect everything written during one reactor turn and
send it with a single call, so several CTDB packets share one TCP segment.
Wireshark's CTDB dissector decodes only the first packet of a segment, and
the wait for the next turn adds latency to every control.  When nothing is
queued, we hand the packet to the socket at once; anything the kernel does
not take goes through the transport's normal buffered path, so ordering and
flow control stay Twisted's.
"""

from __future__ import annotations

import errno
import socket

_RETRY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ENOBUFS)


def writeNow(transport: object, data: bytes) -> None:
    """Send C{data} on a Twisted stream transport, immediately if possible."""
    sock = getattr(transport, "socket", None)
    if (
        not isinstance(sock, socket.socket)
        or getattr(transport, "disconnecting", False)
        or getattr(transport, "dataBuffer", b"")
        or getattr(transport, "_tempDataBuffer", None)
        or getattr(transport, "producerPaused", False)
    ):
        transport.write(data)  # type: ignore[attr-defined]
        return
    try:
        sent = sock.send(data)
    except OSError as e:
        if e.errno not in _RETRY:
            # Let the transport meet the error on its own write path.
            transport.write(data)  # type: ignore[attr-defined]
            return
        sent = 0
    if sent < len(data):
        transport.write(data[sent:])  # type: ignore[attr-defined]
