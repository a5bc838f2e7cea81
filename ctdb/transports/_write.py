# -*- test-case-name: tests.transports.test_write -*-
"""
Write each packet with its own send() call, as ctdbd's queue does.

Twisted's transports collect everything written during one reactor turn and
send it with a single call on the next turn, so several CTDB packets share
one TCP segment.  Wireshark's CTDB dissector (tshark 4.0) decodes only the
first packet of a segment, and the wait for the next turn adds latency to
every control.  L{PacketWriter} hands each packet to the socket at once
while the transport holds nothing of ours; whatever the kernel does not take
goes through the transport's own buffered write, so ordering and flow
control stay Twisted's, until the transport says its buffer is empty again.

Only public Twisted API is used: L{ISystemHandle.getHandle} for the socket,
and L{IConsumer.registerProducer} with a pull producer, whose
C{resumeProducing} a Twisted socket transport calls when it has written out
everything it held (L{twisted.internet.abstract.FileDescriptor}'s
C{registerProducer} documents this).
"""

from __future__ import annotations

import errno
import socket

from twisted.internet.interfaces import (
    IConsumer,
    IPullProducer,
    ISystemHandle,
    ITransport,
)
from zope.interface import implementer

#: send() errors after which the transport's own write path takes over
_RETRY = frozenset((errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ENOBUFS))


@implementer(IPullProducer)
class PacketWriter:
    """
    Send each packet given to L{write} on C{transport}'s socket at once, if
    the transport has nothing of ours buffered; otherwise append it to the
    transport's buffer.  The writer must be the only thing that writes to
    its transport (anything written around it could be overtaken), and it
    registers itself as the transport's producer while the transport holds
    data for it.

    A transport without a socket (L{ISystemHandle}) or producer support
    (L{IConsumer}), such as the test doubles of L{twisted.internet.testing},
    simply gets C{write()} calls.
    """

    def __init__(self, transport: ITransport) -> None:
        self.transport = transport
        self._socket: socket.socket | None = None
        self._consumer: IConsumer | None = None
        if ISystemHandle.providedBy(transport) and IConsumer.providedBy(transport):
            handle = ISystemHandle(transport).getHandle()
            if isinstance(handle, socket.socket):
                self._socket = handle
                self._consumer = IConsumer(transport)
        #: the transport holds bytes of ours: write through it until it
        #: tells us (resumeProducing) that it has sent them all
        self._buffered = False
        self._registering = False

    def write(self, data: bytes) -> None:
        """Send C{data} now if possible, or queue it behind what is queued."""
        sock = self._socket
        if sock is None or self._buffered:
            self.transport.write(data)
            return
        try:
            sent = sock.send(data)
        except OSError as e:
            if e.errno not in _RETRY:
                # Let the transport meet the error on its own write path,
                # and leave the socket to it from now on.
                self._socket = None
                self.transport.write(data)
                return
            sent = 0
        if sent < len(data):
            self._buffered = True
            self.transport.write(data[sent:])
            assert self._consumer is not None  # set with the socket
            self._registering = True
            try:
                self._consumer.registerProducer(self, False)
            finally:
                self._registering = False

    def detach(self) -> None:
        """The connection is gone: send nothing more on its socket."""
        self._socket = None
        self._buffered = False

    # IPullProducer: called by the transport

    def resumeProducing(self) -> None:
        """
        The transport has written everything it held (or, during
        C{registerProducer}, asks for data at once, which we ignore): send
        directly again.
        """
        if self._registering or not self._buffered:
            return
        self._buffered = False
        if self._consumer is not None:
            self._consumer.unregisterProducer()

    def stopProducing(self) -> None:
        """The transport lost its connection."""
        self.detach()
