# -*- test-case-name: tests.protocols.test_client -*-
"""
The unix-socket client protocol of ctdbd, both ends:

 - L{ClientProtocol}: the daemon's side of one local client connection;
 - L{ClientConnection}: a client's side (our Python client API and tools),
   matching replies to requests by reqid.
"""

from __future__ import annotations

import itertools
import socket
import struct
from collections.abc import Callable

from twisted.internet import defer, tcp, unix
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.internet.interfaces import IDelayedCall, ISystemHandle
from twisted.internet.protocol import ServerFactory, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ctdb.errors import ConnectionClosed, ControlFailed, ControlTimeout, MalformedPacket
from ctdb.interfaces import IClientConnection, ICTDBReactor
from ctdb.protocols.controls import Control
from ctdb.protocols.framing import CTDBPacketReceiver
from ctdb.protocols.packet import (
    CTDB_CURRENT_NODE,
    CTDB_UNKNOWN_PNN,
    Header,
    Operation,
    Packet,
    ReplyCall,
    ReplyControl,
    ReplyError,
    ReqCall,
    ReqControl,
    ReqMessage,
    ReqTunnel,
    decodePacket,
)
from ctdb.transports._write import writeNow

_PEERCRED = struct.Struct("3i")

#: Replies to clients made while a node link's read is handled, by client,
#: sent with one send() each when the read is done (see L{batchClientWrites});
#: None outside such a read.
_deferred: dict[ClientProtocol, list[bytes]] | None = None


def batchClientWrites() -> bool:
    """
    Start collecting the packets sent to clients, until L{flushClientWrites}.
    A node link that delivers many replies in one read (a pipelining client's
    forwarded controls) then costs one send() per client instead of one per
    reply.  Returns whether this call started the batch (nested calls leave
    it to the outermost one); pass that to L{flushClientWrites}.
    """
    global _deferred
    if _deferred is not None:
        return False
    _deferred = {}
    return True


def flushClientWrites(started: bool) -> None:
    """Send what L{batchClientWrites} collected, in order, per client."""
    global _deferred
    if not started:
        return
    pending, _deferred = _deferred, None
    if pending:
        for client, packets in pending.items():
            if client.transport is not None:
                writeNow(
                    client.transport,
                    packets[0] if len(packets) == 1 else b"".join(packets),
                )


@implementer(IClientConnection)
class ClientProtocol(CTDBPacketReceiver):
    """The daemon's end of a local client connection."""

    client_id = 0
    pid = 0
    #: replies made while handling one read, sent together at its end
    _batch: list[bytes] | None = None

    def __init__(self, daemon: object) -> None:
        self.daemon = daemon

    def dataReceived(self, data: bytes) -> None:
        # A pipelining client sends many requests in one read: answer them
        # with one send() at the end instead of one each.
        self._batch = batch = list[bytes]()
        try:
            super().dataReceived(data)
        finally:
            self._batch = None
            if batch and self.transport is not None:
                writeNow(
                    self.transport, batch[0] if len(batch) == 1 else b"".join(batch)
                )

    def connectionMade(self) -> None:
        self.pid = 0
        if ISystemHandle.providedBy(self.transport):
            sock = ISystemHandle(self.transport).getHandle()
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
        if self._batch is not None:
            self._batch.append(data)
        elif _deferred is not None:
            packets = _deferred.get(self)
            if packets is None:
                _deferred[self] = [data]
            else:
                packets.append(data)
        elif self.transport is not None:
            writeNow(self.transport, data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.daemon.clientDisconnected(self)  # type: ignore[attr-defined]


class _PlainReadServer(unix.Server):
    """A unix-socket server connection that reads with plain recv(): the
    client protocol passes no file descriptors, so Twisted's recvmsg() and
    ancillary-data parsing are wasted work on every read."""

    doRead = tcp.Connection.doRead


class ClientSocketPort(unix.Port):
    """The daemon's listening client socket (see L{_PlainReadServer})."""

    transport = _PlainReadServer


class ClientServerFactory(ServerFactory):
    def __init__(self, daemon: object) -> None:
        self.daemon = daemon

    def buildProtocol(self, addr: object) -> ClientProtocol:
        return ClientProtocol(self.daemon)


MessageHandler = Callable[[int, bytes], object]


class ClientConnection(CTDBPacketReceiver):
    """
    A client connection to a ctdbd (ours or Samba's).  Use L{connectClient}
    to get one that has done the GET_PNN handshake.
    """

    log = Logger()

    def __init__(self, *, reactor: ICTDBReactor, timeout: float = 60.0) -> None:
        self.reactor = reactor
        self.timeout = timeout
        self.pnn = CTDB_UNKNOWN_PNN
        self._reqids = itertools.count(1)
        self._pending: dict[
            int, tuple[defer.Deferred[Packet], IDelayedCall | None]
        ] = {}
        self._handlers: dict[int, list[MessageHandler]] = {}
        self._tunnelHandlers: dict[int, Callable[[ReqTunnel], object]] = {}
        self.closed: defer.Deferred[None] = defer.Deferred()
        self._isClosed = False

    # framing hooks

    def packetReceived(self, packet: bytes) -> None:
        try:
            pkt = decodePacket(packet)
        except MalformedPacket as e:
            self.malformed(str(e))
            return
        op = pkt.header.operation
        if op == Operation.REQ_MESSAGE:
            assert isinstance(pkt, ReqMessage)
            self._dispatchMessage(pkt.srvid, pkt.data)
            return
        if op == Operation.REQ_TUNNEL:
            assert isinstance(pkt, ReqTunnel)
            handler = self._tunnelHandlers.get(pkt.tunnel_id)
            if handler is not None:
                handler(pkt)
            return
        entry = self._pending.pop(pkt.header.reqid, None)
        if entry is None:
            self.log.debug("reply for unknown reqid {reqid}", reqid=pkt.header.reqid)
            return
        d, timer = entry
        if timer is not None and timer.active():
            timer.cancel()
        d.callback(pkt)

    def _dispatchMessage(self, srvid: int, data: bytes) -> None:
        handlers = self._handlers.get(srvid, []) + self._handlers.get(
            0xFFFFFFFFFFFFFFFF, []
        )
        for handler in list(handlers):
            try:
                handler(srvid, data)
            except Exception:  # noqa: BLE001 - one bad handler must not stop the rest
                self.log.failure(
                    "message handler for srvid {srvid:#x} failed", srvid=srvid
                )

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._isClosed = True
        pending, self._pending = self._pending, {}
        for d, timer in pending.values():
            if timer is not None and timer.active():
                timer.cancel()
            d.errback(ConnectionClosed("connection to ctdbd closed"))
        if not self.closed.called:
            self.closed.callback(None)

    # requests

    def _request(
        self, build: Callable[[int], Packet], timeout: float | None
    ) -> defer.Deferred[Packet]:
        if self._isClosed or self.transport is None:
            return defer.fail(ConnectionClosed("not connected"))
        reqid = next(self._reqids) & 0xFFFFFFFF
        packet = build(reqid)
        d: defer.Deferred[Packet] = defer.Deferred()
        t = self.timeout if timeout is None else timeout
        timer = None
        if t:
            timer = self.reactor.callLater(t, self._timedOut, reqid)
        self._pending[reqid] = (d, timer)
        self.transport.write(packet.encode())
        return d

    def _timedOut(self, reqid: int) -> None:
        entry = self._pending.pop(reqid, None)
        if entry is not None:
            entry[0].errback(ControlTimeout(f"request {reqid} timed out"))

    def _header(self, op: Operation, destnode: int, reqid: int) -> Header:
        return Header(op, destnode=destnode, srcnode=self.pnn, reqid=reqid)

    def control(
        self,
        opcode: int,
        data: bytes = b"",
        *,
        destnode: int = CTDB_CURRENT_NODE,
        srvid: int = 0,
        flags: int = 0,
        timeout: float | None = None,
    ) -> defer.Deferred[ReplyControl]:
        """Send a control; fires with the L{ReplyControl}, whatever its status."""

        def build(reqid: int) -> Packet:
            return ReqControl(
                self._header(Operation.REQ_CONTROL, destnode, reqid),
                opcode,
                srvid,
                0,
                flags,
                data,
            )

        return self._request(build, timeout)  # type: ignore[return-value]

    async def controlOk(
        self,
        opcode: int,
        data: bytes = b"",
        *,
        destnode: int = CTDB_CURRENT_NODE,
        srvid: int = 0,
        flags: int = 0,
        timeout: float | None = None,
    ) -> bytes:
        """Send a control; return its data, or raise L{ControlFailed}."""
        reply = await self.control(
            opcode, data, destnode=destnode, srvid=srvid, flags=flags, timeout=timeout
        )
        if reply.status != 0:
            raise ControlFailed(
                opcode, reply.status, reply.errmsg.decode(errors="replace")
            )
        return reply.data

    def call(
        self,
        db_id: int,
        key: bytes,
        *,
        callid: int,
        flags: int = 0,
        calldata: bytes = b"",
        destnode: int = CTDB_CURRENT_NODE,
        timeout: float | None = None,
    ) -> defer.Deferred[ReplyCall | ReplyError]:
        def build(reqid: int) -> Packet:
            return ReqCall(
                self._header(Operation.REQ_CALL, destnode, reqid),
                flags,
                db_id,
                callid,
                0,
                key,
                calldata,
            )

        return self._request(build, timeout)  # type: ignore[return-value]

    def sendMessage(self, destnode: int, srvid: int, data: bytes = b"") -> None:
        pkt = ReqMessage(self._header(Operation.REQ_MESSAGE, destnode, 0), srvid, data)
        if self.transport is not None:
            self.transport.write(pkt.encode())

    def sendTunnel(
        self, destnode: int, tunnel_id: int, flags: int, data: bytes
    ) -> None:
        pkt = ReqTunnel(
            self._header(Operation.REQ_TUNNEL, destnode, 0), tunnel_id, flags, data
        )
        if self.transport is not None:
            self.transport.write(pkt.encode())

    async def registerSrvid(self, srvid: int, handler: MessageHandler) -> None:
        first = srvid not in self._handlers
        self._handlers.setdefault(srvid, []).append(handler)
        if first:
            try:
                await self.controlOk(Control.REGISTER_SRVID, srvid=srvid)
            except Exception:
                self._handlers.pop(srvid, None)
                raise

    async def deregisterSrvid(
        self, srvid: int, handler: MessageHandler | None = None
    ) -> None:
        handlers = self._handlers.get(srvid)
        if not handlers:
            return
        if handler is not None and handler in handlers:
            handlers.remove(handler)
        else:
            handlers.clear()
        if not handlers:
            del self._handlers[srvid]
            await self.controlOk(Control.DEREGISTER_SRVID, srvid=srvid)

    async def registerTunnel(
        self, tunnel_id: int, handler: Callable[[ReqTunnel], object]
    ) -> None:
        self._tunnelHandlers[tunnel_id] = handler
        await self.controlOk(Control.TUNNEL_REGISTER, srvid=tunnel_id)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()


async def connectClient(
    reactor: ICTDBReactor, path: str, *, timeout: float = 60.0
) -> ClientConnection:
    """Connect to the daemon at socket C{path} and learn our pnn (GET_PNN)."""
    endpoint = UNIXClientEndpoint(reactor, path, timeout=timeout)
    conn = ClientConnection(reactor=reactor, timeout=timeout)
    await connectProtocol(endpoint, conn)
    reply = await conn.control(Control.GET_PNN)
    conn.pnn = reply.status & 0xFFFFFFFF
    return conn
