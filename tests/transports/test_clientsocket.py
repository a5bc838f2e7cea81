# -*- test-case-name: tests.transports.test_clientsocket -*-
"""
Tests for L{ctdb.transports.clientsocket}: the daemon's end of a client
connection, its write batch, its factory and its listening port.  The
client's end, and both together against a real daemon, are tested in
L{tests.protocols.test_client}.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from ctdb.interfaces import IClientConnection
from ctdb.protocols import packet as P
from ctdb.transports._twistedprivate import PlainRecvServer
from ctdb.transports.clientsocket import (
    ClientProtocol,
    ClientServerFactory,
    ClientSocketPort,
    ClientWriteBatch,
)
from tests.transports._helpers import (
    FakeDaemon,
    drain,
    recordingClient,
    unixConnection,
    written,
)


def _pings(*reqids: int) -> bytes:
    return b"".join(
        P.ReqControl(P.Header(P.Operation.REQ_CONTROL, 0, 0, reqid), 0).encode()
        for reqid in reqids
    )


class ClientProtocolTests(SynchronousTestCase):
    """One client connection, on a transport that records its writes."""

    def test_provides(self) -> None:
        """ClientProtocol provides IClientConnection; it told the daemon."""
        daemon = FakeDaemon()
        client = recordingClient(ClientWriteBatch(), daemon)
        self.assertTrue(verifyObject(IClientConnection, client))
        self.assertEqual(daemon.clients, [client])
        self.assertEqual(client.pid, 0)  # no socket, no SO_PEERCRED

    def test_oneWritePerRead(self) -> None:
        """The replies to the requests of one read go out in one write."""
        client = recordingClient(ClientWriteBatch())
        requests = _pings(1, 2, 3)
        client.dataReceived(requests)
        self.assertEqual(written(client), [requests])

    def test_otherClientsHeldDuringARead(self) -> None:
        """
        A packet for another client of the same node, made while one
        client's read is handled, goes out when that read is done.
        """
        seen: list[list[bytes]] = []

        class ToOther(FakeDaemon):
            """Every packet from a client sends one to the last client."""

            def clientPacketReceived(self, c: ClientProtocol, packet: bytes) -> None:
                self.clients[-1].sendPacket(b"o")
                seen.append(list(written(self.clients[-1])))

        batch = ClientWriteBatch()
        daemon = ToOther()
        client, other = recordingClient(batch, daemon), recordingClient(batch, daemon)
        client.dataReceived(_pings(1, 2))
        self.assertEqual(seen, [[], []])
        self.assertEqual(written(other), [b"oo"])

    def test_directOutsideARead(self) -> None:
        """Outside a read each packet is written at once."""
        client = recordingClient(ClientWriteBatch())
        client.sendPacket(b"a")
        client.sendPacket(b"b")
        self.assertEqual(written(client), [b"a", b"b"])

    def test_goneClientForgotten(self) -> None:
        """A lost connection is reported to the daemon."""
        daemon = FakeDaemon()
        client = recordingClient(ClientWriteBatch(), daemon)
        client.connectionLost()
        self.assertEqual(daemon.clients, [])


class ClientWriteBatchTests(SynchronousTestCase):
    """L{ClientWriteBatch} on its own."""

    def test_nested(self) -> None:
        """Only the outermost hold's release sends, in order, per client."""
        batch = ClientWriteBatch()
        a, b = recordingClient(batch), recordingClient(batch)
        outer = batch.hold()
        a.sendPacket(b"1")
        inner = batch.hold()
        b.sendPacket(b"2")
        a.sendPacket(b"3")
        batch.release(inner)
        self.assertEqual((written(a), written(b)), ([], []))
        batch.release(outer)
        self.assertEqual((written(a), written(b)), ([b"13"], [b"2"]))

    def test_notHolding(self) -> None:
        """add() refuses a packet when nothing is held."""
        batch = ClientWriteBatch()
        self.assertFalse(batch.add(recordingClient(batch), b"x"))


class FactoryTests(SynchronousTestCase):
    """L{ClientServerFactory}."""

    def test_clientsShareTheBatch(self) -> None:
        """Every client of a factory uses the factory's batch, the given
        one or its own."""
        batch = ClientWriteBatch()
        factory = ClientServerFactory(FakeDaemon(), batch)
        self.assertIs(factory.writes, batch)
        self.assertIs(factory.buildProtocol(None).writes, batch)
        own = ClientServerFactory(FakeDaemon())
        self.assertIs(own.buildProtocol(None).writes, own.writes)
        self.assertIsNot(own.writes, batch)


class ClientSocketPortTests(SynchronousTestCase):
    """L{ClientSocketPort} on a real UNIX socket, driven by hand."""

    def test_plainRecvAndPeerCredentials(self) -> None:
        """
        An accepted client is a L{PlainRecvServer}; the daemon's end learns
        the client's pid from SO_PEERCRED, and answers go back through the
        socket at once.
        """
        daemon = FakeDaemon()
        client = ClientProtocol(daemon)
        _, reactor, peer = unixConnection(self, client, ClientSocketPort)
        self.assertIsInstance(client.transport, PlainRecvServer)
        self.assertEqual(daemon.clients, [client])
        self.assertEqual(client.pid, os.getpid())  # the peer is this process
        requests = _pings(1, 2)
        peer.sendall(requests)
        assert client.transport is not None
        client.transport.doRead()  # type: ignore[attr-defined]
        self.assertEqual(drain(peer), requests)
        self.assertNotIn(client.transport, reactor.getWriters())
