# -*- test-case-name: tests.transports.test_tcp -*-
"""
Tests for L{ctdb.transports.tcp}: the TCP node transport on a
L{MemoryReactorClock}, with connections completed by hand through
L{twisted.test.iosim} pumps, so that every step (connect, refuse, drop,
retry after 1 s) is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from ctdb.interfaces import INodeTransport, INodeTransportListener
from ctdb.protocols import packet as P
from ctdb.testing import FakeNodeTransport
from ctdb.transports.clientsocket import ClientProtocol, ClientWriteBatch
from ctdb.transports.tcp import NodeInProtocol, NodeServerFactory, TCPNodeTransport
from tests.transports._helpers import RecordingTransport, recordingClient, written

PORT = 4379
ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


@implementer(INodeTransportListener)
@dataclass
class RecordingListener:
    """Records the upcalls a transport makes."""

    events: list[tuple[str, int]] = field(default_factory=list)
    packets: list[tuple[int, bytes]] = field(default_factory=list)

    def packetReceived(self, pnn: int, data: bytes) -> None:
        self.packets.append((pnn, data))

    def nodeConnected(self, pnn: int) -> None:
        self.events.append(("connected", pnn))

    def nodeDead(self, pnn: int) -> None:
        self.events.append(("dead", pnn))


def _bindHost(bindAddress: object) -> str:
    """The host of a connectTCP bindAddress.  MemoryReactor.tcpClients
    annotates it as str | None, but it holds the (host, port) tuple that
    connectTCP was given."""
    assert isinstance(bindAddress, tuple)
    host: str = bindAddress[0]
    return host


class _Net:
    """Some TCPNodeTransports on one MemoryReactorClock, wired by hand."""

    def __init__(self, n: int = 2) -> None:
        self.reactor = MemoryReactorClock()
        self.transports: list[TCPNodeTransport] = []
        self.listeners: list[RecordingListener] = []
        self.pumps: list[iosim.IOPump] = []
        self._ephemeral = 40000
        for pnn in range(n):
            listener = RecordingListener()
            t = TCPNodeTransport(
                reactor=self.reactor,  # type: ignore[arg-type]
                address=ADDRESSES[pnn],
                port=PORT,
                listener=listener,
            )
            self.transports.append(t)
            self.listeners.append(listener)

    def startAll(self) -> None:
        for t in self.transports:
            t.start()
        for pnn, t in enumerate(self.transports):
            for peer in range(len(self.transports)):
                if peer != pnn:
                    t.connectNode(peer, ADDRESSES[peer])

    def _serverFactory(self, host: str) -> NodeServerFactory | None:
        for port, factory, _, interface in self.reactor.tcpServers:
            if port == PORT and interface == host:
                assert isinstance(factory, NodeServerFactory)
                return factory
        return None

    def pending(self) -> list[tuple[str, str]]:
        """(source, destination) of every connection attempt in progress."""
        return [(_bindHost(info[4]), info[0]) for info in self.reactor.tcpClients]

    def complete(self, source: str | None = None, dest: str | None = None) -> int:
        """
        Complete the pending connection attempts (those from C{source} to
        C{dest}, if given): accepted, refused by the peer's factory, or
        failed when nothing listens.  Returns how many were handled.
        """
        done = 0
        for info in list(self.reactor.tcpClients):
            host, port, factory, _, bindAddress = info
            bindHost = _bindHost(bindAddress)
            if (source is not None and bindHost != source) or (
                dest is not None and host != dest
            ):
                continue
            index = self.reactor.tcpClients.index(info)
            self.reactor.tcpClients.pop(index)
            connector = self.reactor.connectors.pop(index)
            done += 1
            server = self._serverFactory(host)
            if server is None:
                factory.clientConnectionFailed(
                    connector, Failure(ConnectionRefusedError())
                )
                continue
            self._ephemeral += 1
            peer = IPv4Address("TCP", bindHost, self._ephemeral)
            local = IPv4Address("TCP", host, port)
            serverProto = server.buildProtocol(peer)
            clientProto = factory.buildProtocol(local)
            assert clientProto is not None
            if serverProto is None:
                # accepted by the kernel, closed at once by the factory
                clientProto.makeConnection(
                    iosim.FakeTransport(clientProto, False, peer, local)
                )
                clientProto.connectionLost(Failure(ConnectionRefusedError()))
                continue
            self.pumps.append(
                iosim.connect(
                    serverProto,
                    iosim.FakeTransport(serverProto, True, local, peer),
                    clientProto,
                    iosim.FakeTransport(clientProto, False, peer, local),
                    greet=False,
                    clock=self.reactor,
                )
            )
        self.flush()
        return done

    def flush(self) -> None:
        for _ in range(20):
            moved = False
            for pump in list(self.pumps):
                if pump.flush(advanceClock=False):
                    moved = True
            if not moved:
                return
        raise AssertionError("pumps never settled")

    def connectAll(self) -> None:
        self.startAll()
        self.complete()


class InterfaceTests(SynchronousTestCase):
    """Both node transports provide INodeTransport."""

    def test_tcpProvides(self) -> None:
        """TCPNodeTransport provides INodeTransport."""
        t = TCPNodeTransport(reactor=MemoryReactorClock(), address="127.0.0.1")  # type: ignore[arg-type]
        self.assertTrue(verifyObject(INodeTransport, t))

    def test_fakeProvides(self) -> None:
        """FakeNodeTransport provides INodeTransport."""
        self.assertTrue(verifyObject(INodeTransport, FakeNodeTransport(0)))

    def test_listenerProvides(self) -> None:
        """The test listener is a faithful INodeTransportListener."""
        self.assertTrue(verifyObject(INodeTransportListener, RecordingListener()))


class ListenAndConnectTests(SynchronousTestCase):
    """Listening, outgoing connections, refusing strangers."""

    def test_listensOnOwnAddress(self) -> None:
        """start() listens on the node's own address and port."""
        net = _Net(1)
        net.transports[0].start()
        [(port, factory, _, interface)] = net.reactor.tcpServers
        self.assertEqual((port, interface), (PORT, "127.0.0.1"))
        self.assertIsInstance(factory, NodeServerFactory)

    def test_connectBindsOwnAddress(self) -> None:
        """
        connectNode connects to the peer's address and port from our own
        address, so the peer can tell who we are.
        """
        net = _Net(2)
        net.transports[0].start()
        net.transports[0].connectNode(1, "127.0.0.2")
        net.transports[0].connectNode(1, "127.0.0.2")  # idempotent
        [(host, port, _, _, bind)] = net.reactor.tcpClients
        self.assertEqual((host, port, bind), ("127.0.0.2", PORT, ("127.0.0.1", 0)))

    def test_unknownAddressRefused(self) -> None:
        """
        The server factory builds no protocol for an address outside the
        nodes file, and a NodeInProtocol for a known one.
        """
        net = _Net(2)
        net.startAll()
        factory = net._serverFactory("127.0.0.1")
        assert factory is not None
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "127.0.0.99", 5000)))
        proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.2", 5000))
        assert isinstance(proto, NodeInProtocol)
        self.assertEqual(proto.pnn, 1)

    def test_nodeLinkStrict(self) -> None:
        """The receiver of a node link is strict about alignment."""
        self.assertTrue(NodeInProtocol.strictAlignment)

    def test_connectedNeedsBothDirections(self) -> None:
        """
        nodeConnected fires on each side only once both its outgoing and
        its incoming connection are up.
        """
        net = _Net(2)
        net.startAll()
        net.complete(source="127.0.0.1")
        self.assertEqual(net.listeners[0].events, [])
        self.assertEqual(net.listeners[1].events, [])
        net.complete(source="127.0.0.2")
        self.assertEqual(net.listeners[0].events, [("connected", 1)])
        self.assertEqual(net.listeners[1].events, [("connected", 0)])

    def test_packetsFlow(self) -> None:
        """
        queuePacket writes on the outgoing link and the peer's listener gets
        the whole packet with our pnn; to an unconnected node it is False.
        """
        net = _Net(3)
        net.startAll()
        net.complete(dest="127.0.0.1")
        net.complete(dest="127.0.0.2")
        pkt = P.ReqMessage(P.Header(P.Operation.REQ_MESSAGE, 1, 0), 7, b"hi").encode()
        self.assertTrue(net.transports[0].queuePacket(1, pkt))
        net.flush()
        self.assertEqual(net.listeners[1].packets, [(0, pkt)])
        self.assertFalse(net.transports[0].queuePacket(2, pkt))
        self.assertFalse(net.transports[0].queuePacket(9, pkt))

    def test_connectionRefusedRetried(self) -> None:
        """A refused connection is retried after one second."""
        net = _Net(2)
        net.transports[0].start()
        net.transports[0].connectNode(1, "127.0.0.2")
        self.assertEqual(net.complete(), 1)  # nobody listens on .2
        self.assertEqual(net.pending(), [])
        net.reactor.advance(0.9)
        self.assertEqual(net.pending(), [])
        net.reactor.advance(0.1)
        self.assertEqual(net.pending(), [("127.0.0.1", "127.0.0.2")])

    def test_strangerRefusedDoesNotConnect(self) -> None:
        """A node not in our nodes file never becomes connected."""
        net = _Net(2)
        net.transports[0].start()
        # Node 1 knows node 0, but node 0 does not know node 1.
        net.transports[1].start()
        net.transports[1].connectNode(0, "127.0.0.1")
        net.complete()
        self.assertEqual(net.listeners[0].events, [])
        self.assertEqual(net.listeners[1].events, [])


class DeadLinkTests(SynchronousTestCase):
    """Losing links: nodeDead, then reconnection after the 1 s retry."""

    def setUp(self) -> None:
        self.net = _Net(2)
        self.net.connectAll()
        for listener in self.net.listeners:
            del listener.events[:]

    def _reconnect(self) -> None:
        self.net.reactor.advance(1)
        self.net.complete()

    def test_dropOutgoing(self) -> None:
        """
        When node 0's outgoing link drops, both sides see the node dead
        (node 1's incoming loss also restarts its outgoing link), and both
        reconnect after a second.
        """
        peer = self.net.transports[0].peers[1]
        assert peer.out is not None
        peer.out.transport.loseConnection()
        self.net.flush()
        self.assertEqual(self.net.listeners[0].events, [("dead", 1)])
        self.assertEqual(self.net.listeners[1].events, [("dead", 0)])
        self.assertFalse(self.net.transports[0].queuePacket(1, b"x" * 32))
        self._reconnect()
        self.assertEqual(self.net.listeners[0].events[-1], ("connected", 1))
        self.assertEqual(self.net.listeners[1].events[-1], ("connected", 0))

    def test_restartNode(self) -> None:
        """restartNode drops both links to the peer; they come back."""
        self.net.transports[0].restartNode(1)
        self.net.flush()
        self.assertIn(("dead", 1), self.net.listeners[0].events)
        self.assertIn(("dead", 0), self.net.listeners[1].events)
        self._reconnect()
        self.assertEqual(self.net.listeners[0].events[-1], ("connected", 1))
        self.assertEqual(self.net.listeners[1].events[-1], ("connected", 0))

    def test_misalignedPacketDropsLink(self) -> None:
        """
        A packet whose length is not a multiple of 8 is a broken peer: the
        receiver drops the link and the node is dead.
        """
        pkt = P.Header(P.Operation.REQ_MESSAGE, 1, 0).encode(36) + b"\0" * 4
        peer = self.net.transports[0].peers[1]
        assert peer.out is not None
        peer.out.transport.write(pkt)
        self.net.flush()
        self.assertEqual(self.net.listeners[1].packets, [])
        self.assertIn(("dead", 0), self.net.listeners[1].events)
        self.assertIn(("dead", 1), self.net.listeners[0].events)

    def test_dataOnOutgoingLinkDropsIt(self) -> None:
        """Bytes arriving on an outgoing (send-only) link close it."""
        peer = self.net.transports[1].peers[0]
        assert peer.incoming is not None
        peer.incoming.transport.write(b"\0" * 8)
        self.net.flush()
        self.assertIn(("dead", 1), self.net.listeners[0].events)

    def test_shutdownReportsNothing(self) -> None:
        """shutdown() closes everything without nodeDead upcalls to itself."""
        d = self.net.transports[0].shutdown()
        self.net.flush()
        self.successResultOf(d)
        self.assertEqual(self.net.listeners[0].events, [])
        self.assertIn(("dead", 0), self.net.listeners[1].events)
        self.net.reactor.advance(5)
        self.assertNotIn("127.0.0.1", [src for src, _ in self.net.pending()])

    def test_removeNode(self) -> None:
        """removeNode forgets the peer: no reconnection, packets refused."""
        self.net.transports[0].removeNode(1)
        self.net.flush()
        self.assertFalse(self.net.transports[0].queuePacket(1, b"\0" * 32))
        self.net.reactor.advance(2)
        self.assertNotIn(("127.0.0.1", "127.0.0.2"), self.net.pending())


class _AnswerBoth(RecordingListener):
    """A daemon whose every packet from a node answers each of C{clients},
    tagged by the packet's reqid."""

    def __init__(self, clients: list[ClientProtocol]) -> None:
        super().__init__()
        self.clients = clients

    def packetReceived(self, pnn: int, data: bytes) -> None:
        reqid = P.decodePacket(data).header.reqid
        for c in self.clients:
            c.sendPacket(reqid.to_bytes(4, "little"))


def _keepalives(*reqids: int) -> bytes:
    return b"".join(
        P.ReqKeepalive(P.Header(P.Operation.REQ_KEEPALIVE, 0, 1, reqid)).encode()
        for reqid in reqids
    )


class ClientWriteBatchTests(SynchronousTestCase):
    """Client replies produced by one read of a node link go out together."""

    def _setup(
        self, writes: ClientWriteBatch | None
    ) -> tuple[NodeInProtocol, list[ClientProtocol]]:
        clients = [recordingClient(writes or ClientWriteBatch()) for _ in range(2)]
        owner = TCPNodeTransport(
            reactor=MemoryReactorClock(),  # type: ignore[arg-type]  # no IReactorProcess
            address=ADDRESSES[0],
            clientWrites=writes,
        )
        owner.listener = _AnswerBoth(clients)
        proto = NodeInProtocol(owner, 1)
        proto.transport = RecordingTransport()  # type: ignore[assignment]
        return proto, clients

    def test_oneWritePerClientPerRead(self) -> None:
        """Three packets in one read give each client one write of its three
        replies, in order, when the transport has the node's batch."""
        proto, clients = self._setup(ClientWriteBatch())
        proto.dataReceived(_keepalives(1, 2, 3))
        for c in clients:
            self.assertEqual(written(c), [b"\1\0\0\0\2\0\0\0\3\0\0\0"])

    def test_directOutsideARead(self) -> None:
        """Outside a node link's read a client packet is written at once."""
        _, clients = self._setup(ClientWriteBatch())
        clients[0].sendPacket(b"x")
        self.assertEqual(written(clients[0]), [b"x"])

    def test_withoutBatch(self) -> None:
        """A transport built without the node's batch leaves the clients'
        packets alone: each goes out with its own write."""
        proto, clients = self._setup(None)
        proto.dataReceived(_keepalives(1, 2))
        for c in clients:
            self.assertEqual(written(c), [b"\1\0\0\0", b"\2\0\0\0"])

    def test_nodesDoNotShare(self) -> None:
        """
        Two nodes in one process have a batch each: a read on one node's
        link holds only that node's client packets, and a packet to the
        other node's client goes out at once.
        """
        proto, clients = self._setup(ClientWriteBatch())
        other = recordingClient(ClientWriteBatch())
        seen: list[list[bytes]] = []

        class Listener(_AnswerBoth):
            def packetReceived(self, pnn: int, data: bytes) -> None:
                super().packetReceived(pnn, data)
                other.sendPacket(b"o")
                seen.append(list(written(other)))

        assert isinstance(proto.owner.listener, _AnswerBoth)
        proto.owner.listener = Listener(proto.owner.listener.clients)
        proto.dataReceived(_keepalives(1, 2))
        self.assertEqual(seen, [[b"o"], [b"o", b"o"]])
        for c in clients:
            self.assertEqual(written(c), [b"\1\0\0\0\2\0\0\0"])
