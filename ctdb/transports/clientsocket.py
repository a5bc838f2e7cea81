# -*- test-case-name: tests.transports.test_clientsocket -*-
"""
The daemon's end of the unix client socket (ctdbd's server/ctdb_daemon.c):

 - L{ClientProtocol}: one local client connection; whole packets go to the
   daemon, packets for the client go out each with its own send()
   (L{ctdb.transports._write.PacketWriter});
 - L{ClientWriteBatch}: packets for clients made while one read is handled,
   sent with one send() per client when it is done;
 - L{ClientServerFactory} and L{ClientSocketPort}, the listening socket,
   whose connections read with plain recv()
   (L{ctdb.transports._twistedprivate.PlainRecvPort}).

The client's end is L{ctdb.protocols.client.ClientConnection}.
"""

from __future__ import annotations

import socket
import struct

from twisted.internet.interfaces import ISystemHandle
from twisted.internet.protocol import ServerFactory, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from ctdb.interfaces import IClientConnection
from ctdb.protocols.framing import CTDBPacketReceiver
from ctdb.transports._twistedprivate import PlainRecvPort
from ctdb.transports._write import PacketWriter

_PEERCRED = struct.Struct("3i")


class ClientWriteBatch:
    """
    Packets for local clients held while one input event is handled, and
    sent when it is done, with one send() per client.  A pipelining client
    sends many requests in one read, and a node link delivers the replies to
    many forwarded controls in one read; answering each with its own send()
    costs about 18% of the remote pipelined rate (bench/README.md).

    One batch serves one node: L{ClientServerFactory} gives its own to all
    its connections, and the node transport holds the same one during its
    reads when the node is built with it
    (L{ctdb.transports.tcp.TCPNodeTransport}'s C{clientWrites}), so two nodes
    in one process never hold each other's packets.
    """

    def __init__(self) -> None:
        #: packets by client while held, in order; None when not holding
        self._held: dict[ClientProtocol, list[bytes]] | None = None

    def hold(self) -> bool:
        """
        Hold the packets sent to clients until L{release}.  Returns whether
        this call started holding (a nested call leaves the release to the
        outermost one); pass it to L{release}.
        """
        if self._held is not None:
            return False
        self._held = {}
        return True

    def release(self, started: bool) -> None:
        """Send what was held since L{hold} returned C{started} True."""
        if not started:
            return
        held, self._held = self._held, None
        if held:
            for client, packets in held.items():
                client.writeNow(packets[0] if len(packets) == 1 else b"".join(packets))

    def add(self, client: ClientProtocol, data: bytes) -> bool:
        """Hold C{data} for C{client} if holding; False if not holding."""
        held = self._held
        if held is None:
            return False
        packets = held.get(client)
        if packets is None:
            held[client] = [data]
        else:
            packets.append(data)
        return True


@implementer(IClientConnection)
class ClientProtocol(CTDBPacketReceiver):
    """The daemon's end of a local client connection."""

    client_id = 0
    pid = 0
    _writer: PacketWriter | None = None

    def __init__(self, daemon: object, writes: ClientWriteBatch | None = None) -> None:
        self.daemon = daemon
        #: where packets for the client wait while a read is handled
        self.writes = ClientWriteBatch() if writes is None else writes

    # A pipelining client sends many requests in one read: answer them with
    # one send() at the end instead of one each.  (A read of one request
    # has its reply sent at once.)

    def severalStarted(self) -> bool:
        return self.writes.hold()

    def severalDone(self, started: bool) -> None:
        self.writes.release(started)

    def connectionMade(self) -> None:
        assert self.transport is not None  # set by makeConnection
        self._writer = PacketWriter(self.transport)
        self.pid = 0
        sock = None
        if ISystemHandle.providedBy(self.transport):
            sock = ISystemHandle(self.transport).getHandle()
        if isinstance(sock, socket.socket):
            try:
                creds = sock.getsockopt(
                    socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size
                )
            except OSError:
                pass
            else:
                self.pid = _PEERCRED.unpack(creds)[0]
        self.daemon.clientConnected(self)  # type: ignore[attr-defined]

    def packetReceived(self, packet: bytes) -> None:
        self.daemon.clientPacketReceived(self, packet)  # type: ignore[attr-defined]

    def sendPacket(self, data: bytes) -> None:
        if self.writes._held is None:
            # not holding (ClientWriteBatch.add would say so): send now
            writer = self._writer
            if writer is not None:
                writer.write(data)
        else:
            self.writes.add(self, data)

    def writeNow(self, data: bytes) -> None:
        """Send C{data} to the client now, past any batch."""
        if self._writer is not None:
            self._writer.write(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._writer is not None:
            self._writer.detach()
        self.daemon.clientDisconnected(self)  # type: ignore[attr-defined]


class ClientServerFactory(ServerFactory):
    """
    Builds a L{ClientProtocol} for each client of C{daemon}, all sharing
    one L{ClientWriteBatch}: C{writes}, or a new one.
    """

    def __init__(self, daemon: object, writes: ClientWriteBatch | None = None) -> None:
        self.daemon = daemon
        self.writes = ClientWriteBatch() if writes is None else writes

    def buildProtocol(self, addr: object) -> ClientProtocol:
        return ClientProtocol(self.daemon, self.writes)


class ClientSocketPort(PlainRecvPort):
    """The daemon's listening client socket: a L{twisted.internet.unix.Port}
    whose connections read with plain recv(), since the client protocol
    passes no file descriptors (see L{ctdb.transports._twistedprivate})."""
