# -*- test-case-name: tests.takeover.test_tickles -*-
"""
Tickle lists (Samba 4.17 C{server/ctdb_takeover.c}): the client connections
of each public address, as local clients (smbd) register them with
TCP_CLIENT and every node learns them through TCP_ADD and the periodic
SET_TCP_TICKLE_LIST of the node hosting the address, so that whoever takes
the address over can tickle the clients with bare ACKs and make them
reconnect at once.  Also the announcement of a taken address (gratuitous
ARPs and those tickles, three times 1.1 s apart: C{ctdb_announce_vnn_iface}
and C{ctdb_control_send_arp}) and SEND_GRATUITOUS_ARP.

A connection is kept with IPv4-mapped ends as IPv4 (smbd on an IPv6 socket
sends them so), in every list, as ctdbd keeps what TCP_CLIENT passes on.
The node that registers a connection adds it to its own list at once:
ctdbd sends the TCP_ADD to itself as well, which comes too late when the
client has already gone.

A part of L{ctdb.takeover.node.PublicAddresses}.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import TYPE_CHECKING

from twisted.internet.interfaces import IDelayedCall

from ctdb.errors import MalformedPacket
from ctdb.interfaces import IClientConnection
from ctdb.protocols import packet as P
from ctdb.protocols.basictypes import (
    CONNECTION_SIZE,
    SOCK_ADDR_SIZE,
    decodeConnection,
    decodeSockAddr,
    encodeConnection,
)
from ctdb.protocols.controls import Control
from ctdb.protocols.publicips import AddrInfo, Connection, TickleList
from ctdb.takeover.packets import endpointString
from ctdb.takeover.replies import OK
from ctdb.takeover.state import Vnn, cancelCall, canonicalIp

if TYPE_CHECKING:
    from twisted.logger import Logger

    from ctdb.daemon.controls import Handler
    from ctdb.daemon.core import ControlResult, Daemon
    from ctdb.interfaces import IAddressSystem
    from ctdb.takeover.state import VnnTable

#: ctdbd's announcement: this many ARPs (with tickles) ...
CTDB_ARP_REPEAT = 3
#: ... this far apart after a takeover (CTDB_ARP_INTERVAL and 100 ms) ...
TAKEOVER_ARP_INTERVAL = 1.1
#: ... and this far apart for SEND_GRATUITOUS_ARP
GRATUITOUS_ARP_INTERVAL = 1.0


def connectionString(conn: Connection) -> str:
    """ctdb_connection_to_buf: client -> server."""
    return f"{endpointString(conn[0])} -> {endpointString(conn[1])}"


class TickleLists:
    """The tickle-list half of the node's public addresses."""

    if TYPE_CHECKING:
        # what this part uses of the rest of PublicAddresses
        log: Logger
        daemon: Daemon
        pnn: int
        table: VnnTable
        system: IAddressSystem

        def _addrInfo(self, req: P.ReqControl) -> AddrInfo: ...

    def initTickles(self) -> None:
        """The client registrations and timers (none yet)."""
        #: the connections each local client registered (ctdb_client tcp_list)
        self.clientTickles: dict[int, list[Connection]] = {}
        self._tickleTimer: IDelayedCall | None = None
        self._gratuitous: list[IDelayedCall] = []

    def tickleControls(self) -> dict[int, Handler]:
        """The controls this part answers, for L{PublicAddresses.plugInto}."""
        return {
            Control.TCP_CLIENT: self.control_TCP_CLIENT,
            Control.TCP_ADD: self.control_TCP_ADD,
            Control.TCP_ADD_DELAYED_UPDATE: self.control_TCP_ADD_DELAYED_UPDATE,
            Control.TCP_REMOVE: self.control_TCP_REMOVE,
            Control.GET_TCP_TICKLE_LIST: self.control_GET_TCP_TICKLE_LIST,
            Control.SET_TCP_TICKLE_LIST: self.control_SET_TCP_TICKLE_LIST,
            Control.STARTUP: self.control_STARTUP,
            Control.SEND_GRATUITOUS_ARP: self.control_SEND_GRATUITOUS_ARP,
        }

    # -- the periodic push (ctdb_update_tcp_tickles) -------------------------------

    def startTickleUpdates(self) -> None:
        """ctdb_start_tcp_tickle_update: push the changed lists every
        TickleUpdateInterval seconds."""
        self._scheduleTickleUpdate()

    def stopTickleUpdates(self) -> None:
        """Cancel the push and any SEND_GRATUITOUS_ARP still to come."""
        cancelCall(self._tickleTimer)
        self._tickleTimer = None
        for call in self._gratuitous:
            cancelCall(call)
        self._gratuitous = []

    def _scheduleTickleUpdate(self) -> None:
        interval = max(int(self.daemon.tunables.TickleUpdateInterval), 1)
        self._tickleTimer = self.daemon.reactor.callLater(interval, self._tickleUpdate)

    def _tickleUpdate(self) -> None:
        """ctdb_update_tcp_tickles."""
        try:
            self.sendTickleLists(force=False)
        finally:
            self._scheduleTickleUpdate()

    def sendTickleLists(self, force: bool) -> None:
        """ctdb_send_set_tcp_tickles_for_all: the tickle list of every
        address this node hosts whose list changed (or all, C{force}), to
        every node."""
        for vnn in self.table:
            if vnn.pnn != self.pnn:
                continue
            if not force and not vnn.tickleUpdateNeeded:
                continue
            data = TickleList((vnn.address, 0), list(vnn.tickles)).encode()
            self.daemon.sendControl(
                P.CTDB_BROADCAST_ALL,
                Control.SET_TCP_TICKLE_LIST,
                data,
                flags=P.CTDB_CTRL_FLAG_NOREPLY,
            )
            self.log.info("Sent tickle update for ip {addr}", addr=vnn.address)
            vnn.tickleUpdateNeeded = False

    def control_STARTUP(self, req: P.ReqControl, client: object) -> ControlResult:
        """ctdb_control_startup: a node (re)started; send it our lists now."""
        if req.data:
            raise MalformedPacket(f"STARTUP: data size {len(req.data)} != 0")
        self.log.info(
            "Received startup control from node {pnn}", pnn=req.header.srcnode
        )
        self.sendTickleLists(force=True)
        return OK

    # -- registering connections ----------------------------------------------------

    def _connection(self, req: P.ReqControl) -> Connection:
        """The ctdb_connection of TCP_CLIENT, TCP_ADD and TCP_REMOVE, both
        ends IPv4 where they are IPv4-mapped (smbd on an IPv6 socket), so
        that one connection has one spelling in every list: ctdbd compares
        with ctdb_same_sockaddr, and TCP_CLIENT passes the mapped ends on
        as IPv4 (ctdb_canonicalize_ip)."""
        if len(req.data) != CONNECTION_SIZE:
            raise MalformedPacket(
                f"{Control(req.opcode).name}: data size {len(req.data)} "
                f"!= {CONNECTION_SIZE}"
            )
        (srcIp, srcPort), (dstIp, dstPort) = decodeConnection(req.data)
        return (canonicalIp(srcIp), srcPort), (canonicalIp(dstIp), dstPort)

    def control_TCP_CLIENT(
        self, req: P.ReqControl, client: IClientConnection | None
    ) -> ControlResult:
        """ctdb_control_tcp_client: smbd registers one of its connections to
        a public address this node hosts; every connected node learns it."""
        conn = self._connection(req)
        if len(self.table) == 0:
            # without public addresses there is nobody to tickle
            return OK
        if client is None:
            return (-1, b"", b"TCP_CLIENT from a remote node")
        if self.daemon.clients.get(client.client_id) is not client:
            # gone already: nothing would ever drop what it registers
            return (-1, b"", b"TCP_CLIENT from a client that is gone")
        src, dst = conn
        dstAddress = dst[0]
        vnn = self.table.find(dstAddress)
        if vnn is None:
            if dstAddress == "127.0.0.1":
                return OK
            self.log.error(
                "Could not register TCP connection from {src} to {dst} (not a "
                "public address) (port {port}) (client_id {cid} pid {pid}).",
                src=src[0],
                dst=dstAddress,
                port=dst[1],
                cid=client.client_id,
                pid=client.pid,
            )
            return OK
        if vnn.pnn != self.pnn:
            self.log.error(
                "Attempt to register tcp client for IP {addr} we don't hold - "
                "failing (client_id {cid} pid {pid})",
                addr=dstAddress,
                cid=client.client_id,
                pid=client.pid,
            )
            # smbd ends the client's session when this fails
            return (-1, b"", f"{dstAddress} is not hosted by this node".encode())
        self.clientTickles.setdefault(client.client_id, []).insert(0, conn)
        self.log.info(
            "registered tcp client for {dport}->{src}:{sport} (client_id {cid} "
            "pid {pid})",
            dport=dst[1],
            src=src[0],
            sport=src[1],
            cid=client.client_id,
            pid=client.pid,
        )
        # Every connected node learns it, as ctdbd's TCP_ADD broadcast; this
        # node at once rather than through a TCP_ADD to itself, which would
        # come after the client had gone if it goes at once (smbd wants no
        # reply) and leave its connection in the list for good.
        self._addTickle(vnn, conn, False)
        data = encodeConnection(src, dst)
        for pnn in self.daemon.targets(P.CTDB_BROADCAST_CONNECTED):
            if pnn != self.pnn:
                self.daemon.sendControl(
                    pnn, Control.TCP_ADD, data, flags=P.CTDB_CTRL_FLAG_NOREPLY
                )
        return OK

    def control_TCP_ADD(self, req: P.ReqControl, client: object) -> ControlResult:
        """ctdb_control_tcp_add: a connection a client of another node
        registered (that node's TCP_CLIENT passes it on)."""
        return self._tcpAdd(req, False)

    def control_TCP_ADD_DELAYED_UPDATE(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        """ctdb_control_tcp_add with tcp_update_needed (ctdb addtickle): the
        hosting node pushes the list at its next update."""
        return self._tcpAdd(req, True)

    def _tcpAdd(self, req: P.ReqControl, updateNeeded: bool) -> ControlResult:
        """ctdb_control_tcp_add: a connection to one of the addresses."""
        conn = self._connection(req)
        if len(self.table) == 0:
            return OK
        vnn = self.table.find(conn[1][0])
        if vnn is None:
            self.log.info(
                "got TCP_ADD control for an address which is not a public "
                "address '{addr}'",
                addr=conn[1][0],
            )
            return (-1, b"", f"{conn[1][0]} is not a public address".encode())
        self._addTickle(vnn, conn, updateNeeded)
        return OK

    def _addTickle(self, vnn: Vnn, conn: Connection, updateNeeded: bool) -> None:
        """The adding half of ctdb_control_tcp_add: C{conn} joins the
        address's list, once."""
        if conn in vnn.tickles:
            self.log.debug(
                "Already had tickle info for {addr}:{port} for vnn:{pnn}",
                addr=conn[1][0],
                port=conn[1][1],
                pnn=vnn.pnn,
            )
            return
        vnn.tickles.append(conn)
        self.log.info(
            "Added tickle info for {addr}:{port} from vnn {pnn}",
            addr=conn[1][0],
            port=conn[1][1],
            pnn=vnn.pnn,
        )
        if updateNeeded:
            vnn.tickleUpdateNeeded = True

    def removeConnection(self, vnn: Vnn, conn: Connection) -> None:
        """ctdb_remove_connection: the last entry takes the removed one's
        place, as ctdbd's array does."""
        if not vnn.tickles:
            self.log.info(
                "Trying to remove tickle that doesn't exist (array is empty) "
                "{addr}:{port}",
                addr=conn[1][0],
                port=conn[1][1],
            )
            return
        try:
            index = vnn.tickles.index(conn)
        except ValueError:
            self.log.info(
                "Trying to remove tickle that doesn't exist {addr}:{port}",
                addr=conn[1][0],
                port=conn[1][1],
            )
            return
        last = vnn.tickles.pop()
        if index < len(vnn.tickles):
            vnn.tickles[index] = last
        vnn.tickleUpdateNeeded = True
        self.log.info(
            "Removed tickle info for {addr}:{port}", addr=conn[0][0], port=conn[0][1]
        )

    def control_TCP_REMOVE(self, req: P.ReqControl, client: object) -> ControlResult:
        """ctdb_control_tcp_remove."""
        conn = self._connection(req)
        if len(self.table) == 0:
            return OK
        vnn = self.table.find(conn[1][0])
        if vnn is None:
            self.log.error("unable to find public address {addr}", addr=conn[1][0])
            return OK
        self.removeConnection(vnn, conn)
        return OK

    def dropClientTickles(self, client: IClientConnection) -> None:
        """ctdb_takeover_client_destructor_hook: a client went; its
        connections to addresses still hosted here are gone too (those of an
        address that moved stay, for the new host to tickle)."""
        for conn in self.clientTickles.pop(client.client_id, []):
            vnn = self.table.find(conn[1][0])
            if vnn is None:
                self.log.error("unable to find public address {addr}", addr=conn[1][0])
                continue
            if vnn.pnn == self.pnn:
                self.removeConnection(vnn, conn)

    # -- whole lists ---------------------------------------------------------------------

    def control_GET_TCP_TICKLE_LIST(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        """ctdb_control_get_tcp_tickle_list: the connections to an address
        (to one port of it, if the request names a port)."""
        if len(req.data) != SOCK_ADDR_SIZE:
            raise MalformedPacket(
                f"GET_TCP_TICKLE_LIST: data size {len(req.data)} != {SOCK_ADDR_SIZE}"
            )
        address, port = decodeSockAddr(req.data)
        vnn = self.table.find(address)
        if vnn is None:
            self.log.error(
                "Could not get tcp tickle list, '{addr}' is not a public address",
                addr=address,
            )
            return (1, b"", b"")
        conns = [c for c in vnn.tickles if port == 0 or c[1][1] == port]
        out = (
            req.data
            + struct.pack("<I", len(conns))
            + b"".join(encodeConnection(src, dst) for src, dst in conns)
        )
        return (0, out, b"")

    def control_SET_TCP_TICKLE_LIST(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        """ctdb_control_set_tcp_tickle_list: the hosting node's whole list
        for one address."""
        data = req.data
        if len(data) < SOCK_ADDR_SIZE + 4:
            self.log.error(
                "Bad indata in ctdb_tickle_list. Not enough data for the "
                "tickle.num field"
            )
            return (-1, b"", b"tickle list too short")
        (num,) = struct.unpack_from("<I", data, SOCK_ADDR_SIZE)
        if len(data) < SOCK_ADDR_SIZE + 4 + CONNECTION_SIZE * num:
            self.log.error("Bad indata in ctdb_tickle_list")
            return (-1, b"", b"tickle list too short")
        tickles = TickleList.decode(data)
        address = tickles.address[0]
        self.log.info("Received tickle update for public address {addr}", addr=address)
        vnn = self.table.find(address)
        if vnn is None:
            self.log.info(
                "Could not set tcp tickle list, '{addr}' is not a public address",
                addr=address,
            )
            return (1, b"", b"")
        if vnn.pnn == self.pnn:
            self.log.info(
                "Ignoring redundant set tcp tickle list, this node hosts '{addr}'",
                addr=address,
            )
            return OK
        vnn.tickles = list(tickles.connections)
        return OK

    # -- announcements ---------------------------------------------------------------------

    def _sendArp(self, address: str, iface: str, what: str) -> None:
        """ctdb_sys_send_arp, a failure only logged."""
        try:
            self.system.sendGratuitousArp(address, iface)
        except Exception as e:  # noqa: BLE001 - AddressError or any host failure
            self.log.error(
                "Failed to send {what} on interface {iface}: {err}",
                what=what,
                iface=iface,
                err=e,
            )

    def announce(
        self, vnn: Vnn, *, keepTickles: bool = False, tickle: bool = True
    ) -> None:
        """ctdb_announce_vnn_iface: gratuitous ARPs for a taken address and
        tickle ACKs to its known clients, three times; the list is then
        forgotten (the clients register again as they reconnect) and the
        other nodes get the empty one.  With C{tickle=False} only the ARPs
        go out and the list stays."""
        vnn.cancelAnnouncement()
        tickles = list(vnn.tickles) if tickle else []
        if tickles and not keepTickles:
            vnn.tickles = []
            vnn.tickleUpdateNeeded = True
        sent = [0]

        def send() -> None:
            vnn.announcement = None
            if vnn.iface is None:
                self.log.info(
                    "Cancelling ARP send for released IP {addr}", addr=vnn.address
                )
                return
            self._sendArp(vnn.address, vnn.iface.name, "ARP")
            for conn in tickles:
                text = connectionString(conn)
                self.log.info("Send TCP tickle ACK: {conn}", conn=text)
                try:
                    # from the server's end to the client's
                    self.system.sendTickle(conn[1], conn[0], 0, 0, False)
                except Exception:  # noqa: BLE001
                    self.log.error("Failed to send TCP tickle ACK: {conn}", conn=text)
            sent[0] += 1
            if sent[0] < CTDB_ARP_REPEAT:
                vnn.announcement = self.daemon.reactor.callLater(
                    TAKEOVER_ARP_INTERVAL, send
                )

        vnn.announcement = self.daemon.reactor.callLater(0, send)

    def control_SEND_GRATUITOUS_ARP(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        """ctdb_control_send_gratious_arp: three ARPs a second apart, for
        any address on any interface (10.interface's updateip asks)."""
        info = self._addrInfo(req)
        try:
            ipaddress.ip_address(info.address)
        except ValueError:
            return (-1, b"", b"bad address")
        iface = info.iface or ""

        def send(count: int) -> None:
            self._sendArp(info.address, iface, "gratuitous ARP")
            if count + 1 < CTDB_ARP_REPEAT:
                self._gratuitous.append(
                    self.daemon.reactor.callLater(
                        GRATUITOUS_ARP_INTERVAL, send, count + 1
                    )
                )

        first = self.daemon.reactor.callLater(0, send, 0)
        self._gratuitous = [c for c in self._gratuitous if c.active()] + [first]
        return OK
