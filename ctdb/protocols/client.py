# -*- test-case-name: tests.protocols.test_client -*-
"""
The client's end of ctdbd's unix-socket client protocol:
L{ClientConnection} (for our Python client API and tools) sends requests
and matches replies to them by reqid; L{connectClient} connects one.  It
works against any ctdbd, ours or Samba's.  The daemon's end is
L{ctdb.transports.clientsocket}.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from twisted.internet import defer
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from ctdb.errors import ConnectionClosed, ControlFailed, ControlTimeout, MalformedPacket
from ctdb.interfaces import ICTDBReactor
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
from ctdb.protocols.srvids import CTDB_SRVID_ALL

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
            CTDB_SRVID_ALL, []
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
