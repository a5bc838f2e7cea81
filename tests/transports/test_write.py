# -*- test-case-name: tests.transports.test_write -*-
"""
Tests for L{ctdb.transports._write.PacketWriter} on a real Twisted UNIX
connection (a port in a temporary directory on a L{MemoryReactorClock};
the tests call C{doWrite} by hand where the reactor would), and on a
transport without a socket.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import ISystemHandle
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from ctdb.transports._write import PacketWriter
from tests.transports._helpers import drain, unixConnection

BIG = bytes(range(256)) * 4096  # 1 MiB, more than both socket buffers hold


class SocketTests(SynchronousTestCase):
    """A writer on an accepted UNIX connection."""

    def setUp(self) -> None:
        self.protocol = Protocol()
        _, self.reactor, self.peer = unixConnection(self, self.protocol)
        assert self.protocol.transport is not None
        self.transport = self.protocol.transport
        self.writer = PacketWriter(self.transport)

    def _pending(self) -> bool:
        """Whether the transport waits to write (holds bytes)."""
        reactor: MemoryReactorClock = self.reactor
        return self.transport in reactor.getWriters()

    def test_sentAtOnce(self) -> None:
        """
        Each packet goes to the socket during write(), not on the reactor's
        next turn: the transport never asks to write.
        """
        self.writer.write(b"one")
        self.assertEqual(drain(self.peer), b"one")
        self.writer.write(b"two")
        self.writer.write(b"three")
        self.assertEqual(drain(self.peer), b"twothree")
        self.assertFalse(self._pending())

    def test_fullSocket(self) -> None:
        """
        What the socket does not take waits in the transport; packets
        written meanwhile queue behind it, in order; once the transport has
        written all it held, packets go to the socket at once again.
        """
        self.writer.write(BIG)
        self.assertTrue(self._pending())
        self.writer.write(b"tail")
        got = [drain(self.peer)]
        while self._pending():
            self.transport.doWrite()  # type: ignore[attr-defined]
            got.append(drain(self.peer))
        self.writer.write(b"after")
        self.assertFalse(self._pending())
        got.append(drain(self.peer))
        self.assertEqual(b"".join(got), BIG + b"tail" + b"after")

    def test_lostWhileBuffered(self) -> None:
        """
        A connection lost while the transport holds our bytes stops the
        writer's sends on the socket: what follows is handed to the
        transport, which drops it.
        """
        self.writer.write(BIG)
        self.transport.connectionLost(Failure(ConnectionLost()))  # type: ignore[attr-defined]
        self.writer.write(b"late")
        self.writer.detach()
        self.writer.write(b"later")
        got = drain(self.peer)
        self.assertTrue(got and BIG.startswith(got))

    def test_sendError(self) -> None:
        """
        A send() error other than a full buffer hands the packet to the
        transport, whose own write meets the error and loses the connection.
        """
        self.peer.close()
        self.writer.write(b"x" * 100)
        self.writer.write(b"y" * 100)
        self.assertTrue(self._pending())
        self.assertIsNotNone(self.transport.doWrite())  # type: ignore[attr-defined]


class NoSocketTests(SynchronousTestCase):
    """A writer on a transport without a socket."""

    def test_writesThrough(self) -> None:
        """Every packet is simply written to the transport."""
        transport = StringTransport()
        writer = PacketWriter(transport)
        writer.write(b"a")
        writer.write(b"b")
        self.assertEqual(transport.value(), b"ab")

    def test_realSocketNeeded(self) -> None:
        """A system handle that is not a socket is not sent on."""

        @implementer(ISystemHandle)
        class Handle(StringTransport):
            def getHandle(self) -> object:
                return 7  # a file descriptor number, not a socket object

        transport = Handle()
        PacketWriter(transport).write(b"a")
        self.assertEqual(transport.value(), b"a")
