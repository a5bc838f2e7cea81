# -*- test-case-name: tests.transports.test_tcp -*-
"""
The TCP node transport, as ctdb/tcp/: every node listens on its own address
(port 4379) and keeps one outgoing connection to each peer, bound to its own
address so that the peer can tell who it is from the source address.  The
outgoing connection only sends and the accepted one only receives; a peer is
connected when both are up.  A failed or lost outgoing connection is retried
every second (ClientService, as tcp_connect.c).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.application.internet import ClientService
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import (
    IAddress,
    IListeningPort,
    IStreamClientEndpoint,
    ITCPTransport,
)
from twisted.internet.protocol import Factory, Protocol, ServerFactory, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ctdb.interfaces import ICTDBReactor, INodeTransport, INodeTransportListener
from ctdb.protocols.framing import CTDBPacketReceiver
from ctdb.protocols.packet import CTDB_PORT
from ctdb.transports._write import PacketWriter
from ctdb.transports.clientsocket import ClientWriteBatch


class NodeInProtocol(CTDBPacketReceiver):
    """The accepted connection from a peer: receives its packets."""

    strictAlignment = True
    #: set by makeConnection before connectionMade; always a TCP connection
    transport: ITCPTransport

    def __init__(self, owner: TCPNodeTransport, pnn: int) -> None:
        self.owner = owner
        self.pnn = pnn

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)
        self.transport.setTcpKeepAlive(True)
        self.owner._incomingMade(self)

    # Replies to clients that the packets of one read produce go out
    # together at its end (one send() per client, not one per reply).  (A
    # read of one packet has its replies sent at once.)

    def severalStarted(self) -> bool:
        writes = self.owner.clientWrites
        return writes is not None and writes.hold()

    def severalDone(self, started: bool) -> None:
        writes = self.owner.clientWrites
        if writes is not None:
            writes.release(started)

    def packetReceived(self, packet: bytes) -> None:
        self.owner.listener.packetReceived(self.pnn, packet)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.owner._incomingLost(self)


class NodeOutProtocol(Protocol):
    """Our connection to a peer: only sends, each packet with its own
    send() (L{PacketWriter}).  Data from the peer here is a protocol
    violation (ctdb_tcp_tnode_cb) and restarts the link."""

    log = Logger()
    #: set by makeConnection before connectionMade; always a TCP connection
    transport: ITCPTransport
    #: set by connectionMade; the only writer of the connection
    writer: PacketWriter

    def __init__(self, owner: TCPNodeTransport, pnn: int) -> None:
        self.owner = owner
        self.pnn = pnn

    def connectionMade(self) -> None:
        self.writer = PacketWriter(self.transport)
        self.transport.setTcpNoDelay(True)
        self.transport.setTcpKeepAlive(True)
        self.owner._outgoingMade(self)

    def dataReceived(self, data: bytes) -> None:
        self.log.warn("unexpected data on outgoing link to node {pnn}", pnn=self.pnn)
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.writer.detach()
        self.owner._outgoingLost(self)


class _OutFactory(Factory):
    def __init__(self, owner: TCPNodeTransport, pnn: int) -> None:
        self.owner = owner
        self.pnn = pnn

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        return NodeOutProtocol(self.owner, self.pnn)


class NodeServerFactory(ServerFactory):
    """Accepts connections from nodes in the nodes file, refuses the rest."""

    log = Logger()

    def __init__(self, owner: TCPNodeTransport) -> None:
        self.owner = owner

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        host: str | None = getattr(addr, "host", None)
        pnn = None if host is None else self.owner.pnnByAddress.get(host)
        if pnn is None:
            self.log.warn("refused connection from unknown address {host}", host=host)
            return None
        return NodeInProtocol(self.owner, pnn)


@dataclass
class _Peer:
    pnn: int
    address: str
    service: ClientService | None = None
    out: NodeOutProtocol | None = None
    incoming: NodeInProtocol | None = None
    connected: bool = False
    extra: list[NodeInProtocol] = field(default_factory=list)


@implementer(INodeTransport)
class TCPNodeTransport:
    """
    The TCP transport.  C{listener} gets the upcalls; assign it before
    L{start}.  C{clientWrites}, the node's L{ClientWriteBatch} (the one its
    L{ctdb.transports.clientsocket.ClientServerFactory} uses), holds the
    packets for local clients that one read of a node link produces, so
    that each client gets them with one send(); without it they go out one
    by one.
    """

    log = Logger()

    def __init__(
        self,
        *,
        reactor: ICTDBReactor,
        address: str,
        port: int = CTDB_PORT,
        listener: INodeTransportListener | None = None,
        retryDelay: float = 1.0,
        clientWrites: ClientWriteBatch | None = None,
    ) -> None:
        self.reactor = reactor
        self.address = address
        self.port = port
        self.listener: INodeTransportListener = listener  # type: ignore[assignment]
        self.retryDelay = retryDelay
        self.clientWrites = clientWrites
        self.peers: dict[int, _Peer] = {}
        self.pnnByAddress: dict[str, int] = {}
        self._port: IListeningPort | None = None
        self._stopping = False

    # downcalls

    def start(self) -> defer.Deferred[None]:
        factory = NodeServerFactory(self)
        self._port = self.reactor.listenTCP(self.port, factory, interface=self.address)
        return defer.succeed(None)

    def connectNode(self, pnn: int, address: str) -> None:
        if pnn in self.peers:
            return
        peer = _Peer(pnn, address)
        self.peers[pnn] = peer
        self.pnnByAddress[address] = pnn
        endpoint: IStreamClientEndpoint
        if ":" in address:
            endpoint = TCP6ClientEndpoint(
                self.reactor,
                address,
                self.port,
                timeout=5,
                bindAddress=(self.address, 0),
            )
        else:
            endpoint = TCP4ClientEndpoint(
                self.reactor,
                address,
                self.port,
                timeout=5,
                bindAddress=(self.address, 0),
            )
        delay = self.retryDelay
        peer.service = ClientService(
            endpoint,
            _OutFactory(self, pnn),
            retryPolicy=lambda attempt: delay,
            clock=self.reactor,
        )
        peer.service.startService()

    def queuePacket(self, pnn: int, data: bytes) -> bool:
        peer = self.peers.get(pnn)
        if peer is None or peer.out is None:
            return False
        peer.out.writer.write(data)
        return True

    def restartNode(self, pnn: int) -> None:
        peer = self.peers.get(pnn)
        if peer is None:
            return
        self.log.info("restarting links to node {pnn}", pnn=pnn)
        if peer.out is not None:
            peer.out.transport.abortConnection()
        if peer.incoming is not None:
            peer.incoming.transport.abortConnection()

    def removeNode(self, pnn: int) -> None:
        peer = self.peers.pop(pnn, None)
        if peer is None:
            return
        self.pnnByAddress.pop(peer.address, None)
        if peer.service is not None:
            peer.service.stopService()
        if peer.incoming is not None:
            peer.incoming.transport.abortConnection()

    def shutdown(self) -> defer.Deferred[None]:
        self._stopping = True
        waits: list[defer.Deferred[Any]] = []
        if self._port is not None:
            waits.append(defer.maybeDeferred(self._port.stopListening))
        for peer in self.peers.values():
            if peer.service is not None:
                waits.append(peer.service.stopService())
            for conn in [peer.incoming, *peer.extra]:
                if conn is not None and conn.transport is not None:
                    conn.transport.abortConnection()
        return defer.DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)

    # connection bookkeeping

    def _outgoingMade(self, proto: NodeOutProtocol) -> None:
        peer = self.peers.get(proto.pnn)
        if peer is None:
            proto.transport.loseConnection()
            return
        peer.out = proto
        self.log.debug("outgoing link to node {pnn} up", pnn=proto.pnn)
        self._checkConnected(peer)

    def _outgoingLost(self, proto: NodeOutProtocol) -> None:
        peer = self.peers.get(proto.pnn)
        if peer is None or peer.out is not proto:
            return
        peer.out = None
        self._checkDead(peer)

    def _incomingMade(self, proto: NodeInProtocol) -> None:
        peer = self.peers.get(proto.pnn)
        if peer is None:
            proto.transport.loseConnection()
            return
        old = peer.incoming
        peer.incoming = proto
        if old is not None:
            # The peer reconnected (it restarted); the old socket is stale.
            peer.extra.append(old)
            old.transport.abortConnection()
        self._checkConnected(peer)

    def _incomingLost(self, proto: NodeInProtocol) -> None:
        peer = self.peers.get(proto.pnn)
        if peer is None:
            return
        if proto in peer.extra:
            peer.extra.remove(proto)
            return
        if peer.incoming is not proto:
            return
        peer.incoming = None
        if self._stopping:
            return
        # As ctdbd, a dead incoming link also restarts the outgoing one.
        if peer.out is not None:
            peer.out.transport.abortConnection()
        self._checkDead(peer)

    def _checkConnected(self, peer: _Peer) -> None:
        if not peer.connected and peer.out is not None and peer.incoming is not None:
            peer.connected = True
            self.listener.nodeConnected(peer.pnn)

    def _checkDead(self, peer: _Peer) -> None:
        if peer.connected:
            peer.connected = False
            if not self._stopping:
                self.listener.nodeDead(peer.pnn)
