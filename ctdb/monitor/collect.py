# -*- test-case-name: tests.monitor.test_collect -*-
"""
One look at the cluster through one daemon's client socket
(L{Collector.snapshot}), with our C{ctdb} tool's session
(L{ctdb.tool.session.ToolSession}: the connection, C{get_nodemap}, the
controls and their time limit, the LEADER handler) and its public-address
commands (L{ctdb.tool.commands.publicIPs}, L{mergePublicIPs}).

Every node of the connected daemon's node map is asked, through that
daemon, for its own node map, recovery mode, VNN map and public addresses
(controls addressed to its pnn, all nodes at once); a node that does not
answer within the time limit, or that the daemon cannot reach, is marked
with why.  The leader is the one the LEADER broadcasts name, as Samba's
tool learns it (4.17 has no control that asks a node for its leader).

A connection that is lost (the daemon died) is made again on the next
snapshot; until then each snapshot says why it saw nothing.
"""

from __future__ import annotations

import errno
import io
import os
import re
from collections.abc import Mapping

from twisted.internet import defer

from ctdb.errors import CommandFailed, MalformedPacket
from ctdb.interfaces import ICTDBReactor
from ctdb.monitor.snapshot import AddressView, NodeView, Snapshot
from ctdb.protocols import controls as C
from ctdb.protocols import nodestate as N
from ctdb.protocols import publicips as P
from ctdb.protocols.packet import CTDB_UNKNOWN_PNN
from ctdb.protocols.srvids import CTDB_SRVID_LEADER
from ctdb.tool.commands import addressKey, mergePublicIPs, publicIPs
from ctdb.tool.options import ToolOptions
from ctdb.tool.session import ToolSession, activeNodes

__all__ = ["Collector", "describeStatus"]


def describeStatus(code: int) -> str:
    """A failed control's C{ret} in words: an errno's name, or the status."""
    if code > 0 and code in errno.errorcode:
        return f"{errno.errorcode[code]} ({os.strerror(code)})"
    return f"status {code}"


class Collector:
    """
    Takes snapshots of the cluster through the daemon at one socket.

    @ivar socketPath: the daemon's client socket (C{--socket}, else the
        tool's rule: C{$CTDB_SOCKET}, else C{/run/ctdb/ctdbd.socket}).
    """

    def __init__(
        self,
        *,
        reactor: ICTDBReactor,
        socket: str | None,
        timeout: int,
        environ: Mapping[str, str],
    ) -> None:
        self.reactor = reactor
        self._options = ToolOptions(timelimit=timeout, socket=socket)
        self._environ = environ
        #: what the session prints (its messages are the reasons we show)
        self._messages = io.StringIO()
        self._session: ToolSession | None = None
        self._leaderHeard: float | None = None
        self.socketPath = self._newSession().socketPath()

    def _newSession(self) -> ToolSession:
        self._messages = io.StringIO()
        return ToolSession(
            self.reactor,
            self._options,
            stdout=self._messages,
            stderr=self._messages,
            environ=self._environ,
        )

    def _said(self) -> str:
        """The last thing the session printed, and forget it."""
        lines = [ln for ln in self._messages.getvalue().splitlines() if ln.strip()]
        self._messages.seek(0)
        self._messages.truncate()
        return lines[-1] if lines else ""

    @property
    def connected(self) -> bool:
        s = self._session
        return (
            s is not None
            and s.client is not None
            and not s.client.connection.closed.called
        )

    async def connect(self) -> str | None:
        """
        Connect (again) to the daemon and listen for LEADER broadcasts.

        @return: why it failed, or C{None}.
        """
        await self.close()
        session = self._newSession()
        try:
            await session.connect()
        except CommandFailed:
            said = self._messages.getvalue()
            found = re.search(r"errno=(\d+)", said)
            why = "cannot connect"
            if found:
                why += f": {os.strerror(int(found.group(1)))}"
            self._said()
            return why
        assert session.client is not None
        self._leaderHeard = None
        # Both handlers in place before the daemon can answer the
        # registration (ours says who leads at once).
        mine = defer.ensureDeferred(
            session.client.registerSrvid(CTDB_SRVID_LEADER, self._leaderMessage)
        )
        tools = defer.ensureDeferred(session.registerLeaderHandler())
        try:
            await mine
            await tools
        except CommandFailed:
            await session.close()
            return f"cannot listen for LEADER broadcasts: {self._said()}"
        self._session = session
        return None

    def _leaderMessage(self, srvid: int, data: bytes) -> None:
        if len(data) >= 4:
            self._leaderHeard = self.reactor.seconds()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def snapshot(self, *, waitForLeader: bool = False) -> Snapshot:
        """
        One look at the cluster (connecting first if need be).

        @param waitForLeader: with no LEADER broadcast heard since
            connecting, wait for one (at most the time limit) rather than
            say UNKNOWN.
        """
        if self._session is not None and not self.connected:
            await self.close()
            return Snapshot(
                self.reactor.seconds(),
                self.socketPath,
                error="lost the connection to ctdbd",
            )
        if not self.connected:
            why = await self.connect()
            if why is not None:
                return Snapshot(self.reactor.seconds(), self.socketPath, error=why)
        session = self._session
        assert session is not None
        nodemap = await session.getNodemap(force=True)
        if nodemap is None or not self.connected:
            return await self._failed(session)
        views = await defer.gatherResults(
            [defer.ensureDeferred(self._nodeView(session, n)) for n in nodemap]
        )
        if not self.connected:
            return await self._failed(session)
        active = set(activeNodes(nodemap))
        lists = [
            (v.pnn, ips) for v, ips in views if ips is not None and v.pnn in active
        ]
        if waitForLeader and self._leaderHeard is None:
            await session.getLeader()
        now = self.reactor.seconds()
        heard = self._leaderHeard
        self._said()
        return Snapshot(
            now,
            self.socketPath,
            pnn=session.pnn,
            leader=session.leaderPnn if heard is not None else CTDB_UNKNOWN_PNN,
            leaderAge=None if heard is None else max(0.0, now - heard),
            nodes=tuple(v for v, _ in views),
            addresses=tuple(
                AddressView(ip.address, ip.pnn)
                for ip in sorted(mergePublicIPs(lists), key=addressKey)
            ),
        )

    async def _failed(self, session: ToolSession) -> Snapshot:
        said = self._said()
        if self.connected:
            why = f"no node map from node {session.pnn}"
            if said:
                why += f" ({said})"
        else:
            why = "lost the connection to ctdbd"
            await self.close()
        return Snapshot(self.reactor.seconds(), self.socketPath, error=why)

    async def _nodeView(
        self, session: ToolSession, node: N.NodeAndFlags
    ) -> tuple[NodeView, list[P.PublicIP] | None]:
        """What node C{node} says about itself (and its public addresses)."""
        pnn = node.pnn
        view = NodeView(pnn, node.address, node.flags)
        if node.flags & N.NODE_FLAGS_DELETED:
            return view, None
        try:
            reply = await session.ctrl(
                "GET_NODEMAP", C.Control.GET_NODEMAP, destnode=pnn
            )
            theirs = C.decodeNodeMap(reply.data)
            reply = await session.ctrl(
                "GET_RECMODE",
                C.Control.GET_RECMODE,
                destnode=pnn,
                okStatus=lambda v: v >= 0,
            )
            recmode = reply.status
            reply = await session.ctrl("GETVNNMAP", C.Control.GETVNNMAP, destnode=pnn)
            vnnmap = N.VnnMap.decode(reply.data)
            ips = await publicIPs(session, pnn)
        except CommandFailed as e:
            return NodeView(
                pnn, node.address, node.flags, error=describeStatus(e.code)
            ), None
        except MalformedPacket as e:
            return NodeView(pnn, node.address, node.flags, error=str(e)), None
        return (
            NodeView(
                pnn,
                node.address,
                node.flags,
                nodemap=tuple((n.pnn, n.flags) for n in theirs),
                recmode=recmode,
                generation=vnnmap.generation,
                vnnmap=tuple(vnnmap.map),
                addresses=tuple(ip.address for ip in ips),
            ),
            ips,
        )
