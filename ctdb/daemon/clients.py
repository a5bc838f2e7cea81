# -*- test-case-name: tests.daemon.test_core -*-
"""
The daemon's side of its local clients (ctdb_daemon.c): their packets and
controls, srvid registrations, messages between clients and nodes, and
tunnels.  A part of L{ctdb.daemon.core.Daemon}.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ctdb.daemon.state import (
    _OP_REQ_CALL,
    _OP_REQ_CONTROL,
    _OP_REQ_MESSAGE,
    _OP_REQ_TUNNEL,
    ControlResult,
)
from ctdb.errors import MalformedPacket
from ctdb.interfaces import IClientConnection
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.protocols.srvids import CTDB_SRVID_ALL

if TYPE_CHECKING:
    from twisted.internet import defer
    from twisted.logger import Logger

    from ctdb.daemon.controls import ControlHandlers
    from ctdb.interfaces import IClientObserver, IRecordProtocol, ISrvidObserver
    from ctdb.protocols.nodestate import VnnMap
    from ctdb.protocols.statistics import Statistics


class LocalClients:
    """Local clients, messages and tunnels of a daemon."""

    if TYPE_CHECKING:
        # what this part uses of the rest of the Daemon
        log: Logger
        pnn: int
        vnnMap: VnnMap
        stats: Statistics
        clients: dict[int, IClientConnection]
        srvids: dict[int, list[IClientConnection]]
        internalHandlers: dict[int, list[Callable[[int, bytes], object]]]
        tunnels: dict[int, IClientConnection]
        controls: ControlHandlers
        recordProtocol: IRecordProtocol
        clientObservers: list[IClientObserver]
        srvidObservers: list[ISrvidObserver]
        _clientIds: Iterator[int]

        def validPnn(self, pnn: int) -> bool: ...
        def isConnected(self, pnn: int) -> bool: ...
        def targets(self, destnode: int) -> list[int]: ...
        def queuePacket(self, pkt: P.Packet) -> None: ...
        def sendControl(
            self,
            destnode: int,
            opcode: int,
            data: bytes = b"",
            *,
            srvid: int = 0,
            flags: int = 0,
            client_id: int = 0,
            timeout: float | None = None,
        ) -> defer.Deferred[P.ReplyControl]: ...
        def forwardControl(
            self,
            destnode: int,
            req: P.ReqControl,
            onReply: Callable[[P.ReplyControl], None],
            client_id: int,
        ) -> None: ...
        def forwardRawControl(
            self,
            destnode: int,
            data: bytes,
            flags: int,
            onReply: Callable[[P.ReplyControl], None],
            onRawReply: Callable[[bytes], None],
            client_id: int,
        ) -> bool: ...

    # -- clients ------------------------------------------------------------

    def clientConnected(self, client: IClientConnection) -> None:
        client.client_id = next(self._clientIds)
        self.clients[client.client_id] = client
        self.stats.counters["num_clients"] = len(self.clients)

    def clientDisconnected(self, client: IClientConnection) -> None:
        self.clients.pop(client.client_id, None)
        self.stats.counters["num_clients"] = len(self.clients)
        for srvid in [s for s, cs in self.srvids.items() if client in cs]:
            self.deregisterSrvid(srvid, client)
        for tid in [t for t, c in self.tunnels.items() if c is client]:
            del self.tunnels[tid]
        for observer in self.clientObservers:
            observer.clientGone(client)

    def sendToClient(self, client: IClientConnection, pkt: P.Packet) -> None:
        self.stats.bump("client_packets_sent")
        client.sendPacket(pkt.encode())

    def clientPacketReceived(self, client: IClientConnection, data: bytes) -> None:
        counters = self.stats.counters
        counters["client_packets_recv"] += 1
        if data[16:20] == _REQ_CONTROL_OP and data[20:24] != _CURRENT_NODE:
            # for another node?  (most controls are for CURRENT_NODE)
            route = P.routeReqControl(data)
            if route is not None and self._forwardRaw(client, data, route):
                counters["client.req_control"] += 1
                return
        try:
            pkt = P.decodePacket(data)
        except MalformedPacket as e:
            self.log.warn(
                "malformed packet from client {cid} (pid {pid}): {err}",
                cid=client.client_id,
                pid=client.pid,
                err=str(e),
            )
            transport = getattr(client, "transport", None)
            if transport is not None:
                transport.loseConnection()
            return
        op = pkt.header.operation
        if op == _OP_REQ_CONTROL:
            counters["client.req_control"] += 1
            self._clientControl(client, pkt)  # type: ignore[arg-type]
        elif op == _OP_REQ_MESSAGE:
            assert isinstance(pkt, P.ReqMessage)
            counters["client.req_message"] += 1
            dest = (
                self.pnn
                if pkt.header.destnode == P.CTDB_CURRENT_NODE
                else pkt.header.destnode
            )
            self.sendMessage(dest, pkt.srvid, pkt.data)
        elif op == _OP_REQ_CALL:
            counters["client.req_call"] += 1
            # the operation says it is a ReqCall; no isinstance on the hot path
            self.recordProtocol.clientCall(client, pkt)  # type: ignore[arg-type]
        elif op == _OP_REQ_TUNNEL:
            assert isinstance(pkt, P.ReqTunnel)
            counters["client.req_tunnel"] += 1
            self._clientTunnel(client, pkt)
        else:
            self.log.warn(
                "client {cid} sent operation {op}; closing", cid=client.client_id, op=op
            )
            transport = getattr(client, "transport", None)
            if transport is not None:
                transport.loseConnection()

    def _forwardRaw(
        self,
        client: IClientConnection,
        data: bytes,
        route: tuple[int, int, int, int, int],
    ) -> bool:
        """
        A control for another node, forwarded as it came and its reply
        relayed as it comes (L{forwardRawControl}), if it is one; False for
        any other control (local, broadcast, PROCESS_EXISTS, to a node
        that is not connected), which the caller decodes and runs.
        """
        dest, clientSrc, clientReqid, opcode, flags = route
        if dest == self.pnn or dest >= P.CTDB_CURRENT_NODE or opcode == _PROCESS_EXISTS:
            return False
        stats = self.stats

        def onRawReply(raw: bytes) -> None:
            stats.counters["client_packets_sent"] += 1
            client.sendPacket(
                P.readdressReplyControl(
                    raw, clientSrc, dest, clientReqid, self.vnnMap.generation
                )
            )

        def onReply(r: P.ReplyControl) -> None:
            stats.counters["client_packets_sent"] += 1
            client.sendPacket(
                P.encodeReplyControl(
                    clientSrc,
                    dest,
                    clientReqid,
                    self.vnnMap.generation,
                    r.status,
                    r.data if r.status == 0 else b"",
                    r.errmsg,
                )
            )

        return self.forwardRawControl(
            dest, data, flags, onReply, onRawReply, client.client_id
        )

    def _clientControl(self, client: IClientConnection, req: P.ReqControl) -> None:
        hdr = req.header
        dest = hdr.destnode
        if dest == P.CTDB_CURRENT_NODE or dest == self.pnn:
            result = self.controls.dispatchFast(req, client)
            if isinstance(result, tuple):
                # answered at once (most controls): no closure, no Deferred
                if not req.flags & P.CTDB_CTRL_FLAG_NOREPLY:
                    status, data, errmsg = result
                    self.stats.counters["client_packets_sent"] += 1
                    client.sendPacket(
                        P.encodeReplyControl(
                            hdr.srcnode,
                            self.pnn,
                            hdr.reqid,
                            self.vnnMap.generation,
                            status,
                            data if status == 0 else b"",
                            errmsg,
                        )
                    )
                return
            self._clientControlLater(client, req, self.pnn, result)
            return
        self._clientControlLater(client, req, dest, None)

    def _clientControlLater(
        self,
        client: IClientConnection,
        req: P.ReqControl,
        dest: int,
        local: defer.Deferred[ControlResult] | None,
    ) -> None:
        """A client's control not answered at once: a local one whose
        handler gave the Deferred C{local}, a broadcast, or one for
        another node."""
        noreply = req.flags & P.CTDB_CTRL_FLAG_NOREPLY
        srcnode = self.pnn if dest in P.BROADCASTS else dest
        hdr = req.header

        def reply(result: ControlResult) -> None:
            if noreply:
                return
            status, data, errmsg = result
            self.stats.counters["client_packets_sent"] += 1
            client.sendPacket(
                P.encodeReplyControl(
                    hdr.srcnode,
                    srcnode,
                    hdr.reqid,
                    self.vnnMap.generation,
                    status,
                    data if status == 0 else b"",
                    errmsg,
                )
            )

        if local is not None:
            d = local
        elif dest in P.BROADCASTS:
            d = self.sendControl(
                dest,
                req.opcode,
                req.data,
                srvid=req.srvid,
                flags=req.flags,
                client_id=client.client_id,
            ).addCallback(lambda r: (r.status, r.data, r.errmsg))
        else:
            self.forwardControl(
                dest,
                req,
                lambda r: reply((r.status, r.data, r.errmsg)),
                client.client_id,
            )
            return
        d.addCallback(reply)
        d.addErrback(lambda f: self.log.failure("client control failed", f))

    # -- messages -----------------------------------------------------------

    def registerSrvid(self, srvid: int, client: IClientConnection) -> None:
        clients = self.srvids.setdefault(srvid, [])
        if client not in clients:
            clients.append(client)
        for observer in self.srvidObservers:
            observer.srvidRegistered(srvid, client)

    def deregisterSrvid(self, srvid: int, client: IClientConnection) -> bool:
        clients = self.srvids.get(srvid)
        if not clients or client not in clients:
            return False
        clients.remove(client)
        if not clients:
            del self.srvids[srvid]
        return True

    def addMessageHandler(
        self, srvid: int, handler: Callable[[int, bytes], object]
    ) -> None:
        self.internalHandlers.setdefault(srvid, []).append(handler)

    def sendMessage(self, destnode: int, srvid: int, data: bytes) -> None:
        """ctdb_daemon_send_message: deliver locally and/or to other nodes."""
        header = P.Header(
            P.Operation.REQ_MESSAGE, destnode, self.pnn, 0, self.vnnMap.generation
        )
        msg = P.ReqMessage(header, srvid, data)
        if destnode in P.BROADCASTS:
            for pnn in self.targets(destnode):
                if pnn == self.pnn:
                    self.deliverMessage(srvid, data)
                elif self.isConnected(pnn):
                    self.queuePacket(msg.withHeader(destnode=pnn))
        elif destnode == self.pnn:
            self.deliverMessage(srvid, data)
        elif self.isConnected(destnode):
            self.queuePacket(msg)
        else:
            self.log.debug("message for disconnected node {pnn} dropped", pnn=destnode)

    def deliverMessage(self, srvid: int, data: bytes) -> None:
        """Hand a message to every local client and handler registered for it."""
        clients = list(self.srvids.get(srvid, ()))
        clients += [c for c in self.srvids.get(CTDB_SRVID_ALL, ()) if c not in clients]
        if clients:
            header = P.Header(
                P.Operation.REQ_MESSAGE, self.pnn, self.pnn, 0, self.vnnMap.generation
            )
            encoded = P.ReqMessage(header, srvid, data).encode()
            for client in clients:
                self.stats.bump("client_packets_sent")
                client.sendPacket(encoded)
        for handler in list(self.internalHandlers.get(srvid, ())):
            try:
                handler(srvid, data)
            except Exception:  # noqa: BLE001 - one bad handler must not stop the rest
                self.log.failure("message handler for {srvid:#x} failed", srvid=srvid)

    # -- tunnels ------------------------------------------------------------

    def _clientTunnel(self, client: IClientConnection, pkt: P.ReqTunnel) -> None:
        # As daemon_request_tunnel_from_client: a real pnn only (no
        # CURRENT_NODE, no broadcast) and a tunnel id registered here.
        dest = pkt.header.destnode
        if not self.validPnn(dest):
            self.log.error("Invalid destination {dest:#x}", dest=dest)
            return
        if pkt.tunnel_id not in self.tunnels:
            self.log.error(
                "tunnel id {tid:#x} not registered, dropping pkt", tid=pkt.tunnel_id
            )
            return
        header = P.Header(
            P.Operation.REQ_TUNNEL,
            dest,
            self.pnn,
            pkt.header.reqid,
            self.vnnMap.generation,
        )
        self.queuePacket(P.ReqTunnel(header, pkt.tunnel_id, pkt.flags, pkt.data))

    def _deliverTunnel(self, pkt: P.ReqTunnel) -> None:
        client = self.tunnels.get(pkt.tunnel_id)
        if client is None:
            self.log.debug("no client for tunnel {tid:#x}", tid=pkt.tunnel_id)
            return
        self.sendToClient(client, pkt)


_REQ_CONTROL_OP = _OP_REQ_CONTROL.to_bytes(4, "little")
_CURRENT_NODE = P.CTDB_CURRENT_NODE.to_bytes(4, "little")
_PROCESS_EXISTS = int(Control.PROCESS_EXISTS)
