# -*- test-case-name: tests.daemon.test_core -*-
"""
The daemon core: node and client state, packet dispatch, control forwarding,
messages, tunnels and keepalives (ctdb/server/ctdb_daemon.c, ctdb_server.c,
ctdb_control.c, ctdb_keepalive.c).

It implements L{INodeTransportListener}; the node transport and the client
socket are separate services that feed it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from ctdb.daemon.clients import LocalClients
from ctdb.daemon.controls import ControlHandlers
from ctdb.daemon.heartbeat import TXCTDB_SRVID_HEARTBEAT, HeartbeatMonitor
from ctdb.daemon.state import (
    _CALL_OPERATIONS,
    _NODE_STAT,
    _OP_REPLY_CONTROL,
    _OP_REQ_CONTROL,
    _OP_REQ_KEEPALIVE,
    _OP_REQ_MESSAGE,
    _OP_REQ_TUNNEL,
    _UNREACHABLE,
    MAX_HELD_PACKETS,
    SAMBA_VERSION,
    ControlResult,
    DaemonConfig,
    Node,
    _PendingControl,
    keepaliveVersion,
)
from ctdb.daemon.statistics import StatisticsKeeper
from ctdb.errors import MalformedPacket
from ctdb.interfaces import (
    IClientConnection,
    IClientObserver,
    ICTDBReactor,
    IEventRunner,
    ILogLevelObserver,
    IMetricsSource,
    INodeStateObserver,
    INodeTransport,
    INodeTransportListener,
    IRecordProtocol,
    IRecoveryParticipant,
    ISrvidObserver,
    IStatisticsSource,
    ITakeoverRunner,
    ITunableObserver,
)
from ctdb.nodes import readNodesFile
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.protocols.nodestate import (
    CTDB_CAP_DEFAULT,
    CTDB_RECOVERY_NORMAL,
    NODE_FLAGS_DELETED,
    NODE_FLAGS_DISCONNECTED,
    NODE_FLAGS_INACTIVE,
    NODE_FLAGS_UNHEALTHY,
    NodeAndFlags,
    RunState,
    VnnMap,
)
from ctdb.protocols.statistics import Statistics
from ctdb.protocols.tunables import Tunables

__all__ = [
    "SAMBA_VERSION",
    "ControlResult",
    "Daemon",
    "DaemonConfig",
    "Node",
    "keepaliveVersion",
]


@implementer(INodeTransportListener)
class Daemon(Service, LocalClients):
    """
    One CTDB node.  C{transport} is any L{INodeTransport}; the daemon sets
    itself as its listener.
    """

    log = Logger()
    name = "daemon"  # type: ignore[assignment]  # Service.name is untyped None

    def __init__(
        self,
        *,
        reactor: ICTDBReactor,
        config: DaemonConfig,
        transport: INodeTransport,
        shutdownCallback: Callable[[], object] | None = None,
    ) -> None:
        self.reactor = reactor
        self.config = config
        self.pnn = config.pnn
        self.transport = transport
        transport.listener = self
        self.shutdownCallback = shutdownCallback
        self.tunables = Tunables()
        for name, value in config.tunables.items():
            self.tunables.set(name, value)
        self.nodes: list[Node] = []
        for entry in config.nodeMap.nodes:
            flags = NODE_FLAGS_DELETED if entry.deleted else NODE_FLAGS_DISCONNECTED
            if entry.pnn == self.pnn:
                flags = 0
            self.nodes.append(Node(entry.pnn, entry.address, flags))
        self.debugLevel = config.logLevel
        self.capabilities = CTDB_CAP_DEFAULT
        self.recmode = CTDB_RECOVERY_NORMAL
        self.runstate = RunState.INIT
        # Until recovery builds it from the active nodes, the vnn map holds
        # every node of the nodes file, so that all nodes agree on lmasters.
        self.vnnMap = VnnMap(
            P.INVALID_GENERATION,
            tuple(n.pnn for n in self.nodes if not n.flags & NODE_FLAGS_DELETED),
        )
        self.stats = Statistics()
        self.startTime = reactor.seconds()
        self.lastRecoveryStarted = 0.0
        self.lastRecoveryFinished = 0.0
        #: when each node was last heard from (any packet), and when each
        #: node was found dead: the durations of the failover log lines
        self._lastHeard: dict[int, float] = {}
        self._deadSince: dict[int, float] = {}
        #: the generation when each node was last found dead (a recovery
        #: after its death has a new one)
        self._deathGeneration: dict[int, int] = {}
        self.stats.statistics_start_time = self.startTime
        self.clients: dict[int, IClientConnection] = {}
        self._clientIds = itertools.count(1)
        self._reqids = itertools.count(1)
        #: record-protocol packets for nodes whose link is not up (see
        #: L{_CALL_OPERATIONS}), in the order they were queued
        self._heldPackets: dict[int, list[P.Packet]] = {}
        self._pending: dict[int, _PendingControl] = {}
        # srvid -> registered local clients; internal handlers separately
        self.srvids: dict[int, list[IClientConnection]] = {}
        self.internalHandlers: dict[int, list[Callable[[int, bytes], object]]] = {}
        self.tunnels: dict[int, IClientConnection] = {}
        self._keepalive: task.LoopingCall | None = None
        #: the txctdb-to-txctdb failure detector (L{enableHeartbeats})
        self.heartbeats: HeartbeatMonitor | None = None
        self._shuttingDown = False
        self.controls = ControlHandlers(self)
        #: the subsystems plugged in at build time (see ctdb.interfaces)
        self.recordProtocol: IRecordProtocol = _NoDatabases(self)
        self.clientObservers: list[IClientObserver] = []
        self.nodeStateObservers: list[INodeStateObserver] = []
        self.srvidObservers: list[ISrvidObserver] = []
        self.tunableObservers: list[ITunableObserver] = []
        self.logLevelObservers: list[ILogLevelObserver] = []
        self.recoveryParticipants: list[IRecoveryParticipant] = []
        self.statisticsSources: list[IStatisticsSource] = []
        #: counters that move together, and the rolling history
        self.statsKeeper = StatisticsKeeper(self, reactor=reactor)
        self.addStatisticsSource(self.statsKeeper)
        self.metricsSources: list[IMetricsSource] = []
        #: the node's event scripts, and the leader's takeover runs (None
        #: when the node is built without them)
        self.eventRunner: IEventRunner | None = None
        self.takeoverRunner: ITakeoverRunner | None = None

    # -- service ----------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.setRunstate(RunState.SETUP)
        self.transport.start()
        for node in self.nodes:
            if node.pnn != self.pnn and not node.flags & NODE_FLAGS_DELETED:
                self.transport.connectNode(node.pnn, node.address)
        self._keepalive = task.LoopingCall(self.checkForDeadNodes)
        self._keepalive.clock = self.reactor
        self._keepalive.start(max(self.tunables.KeepaliveInterval, 1), now=False)
        if self.heartbeats is not None:
            self.heartbeats.start()
        self._sweeper = task.LoopingCall(self._sweepControls)
        self._sweeper.clock = self.reactor
        self._sweeper.start(1.0, now=False)
        self.statsKeeper.start()
        self.log.info(
            "CTDB starting on node {pnn} ({address})",
            pnn=self.pnn,
            address=self.nodes[self.pnn].address,
        )
        # Until the recovery service of a later stage owns membership, the
        # daemon is usable as soon as it is up.
        self.setRunstate(RunState.RUNNING)

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        self._shuttingDown = True
        self.setRunstate(RunState.SHUTDOWN)
        if self._keepalive is not None and self._keepalive.running:
            self._keepalive.stop()
        if self.heartbeats is not None:
            self.heartbeats.stop()
        sweeper = getattr(self, "_sweeper", None)
        if sweeper is not None and sweeper.running:
            sweeper.stop()
        self.statsKeeper.stop()
        for client in list(self.clients.values()):
            transport = getattr(client, "transport", None)
            if transport is not None:
                transport.loseConnection()
        return self.transport.shutdown()  # type: ignore[return-value]

    def setRunstate(self, runstate: RunState) -> None:
        if runstate != self.runstate:
            self.log.info(
                "Set runstate to {name} ({value})",
                name=runstate.name,
                value=int(runstate),
            )
            self.runstate = runstate

    def shutdown(self) -> None:
        """The SHUTDOWN control: stop the whole process, as ctdbd exits."""
        if self._shuttingDown:
            return
        self.log.error("Shutdown sequence commencing.")
        self._shuttingDown = True
        if self.shutdownCallback is not None:
            self.reactor.callLater(0, self.shutdownCallback)

    # -- node bookkeeping -------------------------------------------------

    def validPnn(self, pnn: int) -> bool:
        return (
            0 <= pnn < len(self.nodes)
            and not self.nodes[pnn].flags & NODE_FLAGS_DELETED
        )

    def isConnected(self, pnn: int) -> bool:
        return (
            self.validPnn(pnn) and not self.nodes[pnn].flags & NODE_FLAGS_DISCONNECTED
        )

    def activeLmasters(self) -> list[int]:
        return [n.pnn for n in self.nodes if not n.flags & NODE_FLAGS_INACTIVE]

    def nodeMap(self) -> list[NodeAndFlags]:
        return [n.asNodeAndFlags(self.config.port) for n in self.nodes]

    def targets(self, destnode: int) -> list[int]:
        """The pnns a (possibly broadcast) destination stands for."""
        if destnode == P.CTDB_BROADCAST_ALL:
            return [n.pnn for n in self.nodes if not n.flags & NODE_FLAGS_DELETED]
        if destnode == P.CTDB_BROADCAST_ACTIVE:
            # ctdb_broadcast_packet_active: every node that is not inactive,
            # whether it is in the vnn map (an lmaster) or not
            return self.activeLmasters()
        if destnode == P.CTDB_BROADCAST_CONNECTED:
            return [
                n.pnn
                for n in self.nodes
                if not n.flags & (NODE_FLAGS_DELETED | NODE_FLAGS_DISCONNECTED)
            ]
        return [destnode]

    # -- INodeTransportListener ---------------------------------------------

    def nodeConnected(self, pnn: int) -> None:
        node = self.nodes[pnn]
        node.dead_count = 0
        if node.flags & NODE_FLAGS_DISCONNECTED:
            # ctdbd keeps UNHEALTHY until the node's own monitoring clears
            # it; with no health monitoring yet, a reconnected node is healthy.
            node.flags &= ~(NODE_FLAGS_DISCONNECTED | NODE_FLAGS_UNHEALTHY)
            now = self.reactor.seconds()
            since = self._deadSince.pop(pnn, None)
            self.log.info(
                "{our}: connected to {peer} - {connected} connected{again}",
                our=self.pnn,
                peer=node.address,
                connected=self._connectedCount(),
                again=""
                if since is None
                else f" (node {pnn} was down {now - since:.1f} s)",
                step="node-connected",
                node=self.pnn,
                pnn=pnn,
                down=None if since is None else round(now - since, 3),
                generation=self.vnnMap.generation,
            )
            self._sendHeld(pnn)
            if self.heartbeats is not None:
                self.heartbeats.linkUp(pnn)
            self.nodeStateChanged(pnn)

    def nodeDead(self, pnn: int) -> None:
        node = self.nodes[pnn]
        if node.flags & NODE_FLAGS_DISCONNECTED:
            return
        # As ctdb_node_dead: a dead node is also UNHEALTHY (the tool shows
        # "DISCONNECTED|UNHEALTHY|INACTIVE", nodestatus exits 3).
        node.flags |= NODE_FLAGS_DISCONNECTED | NODE_FLAGS_UNHEALTHY
        node.dead_count = 0
        node.rx_cnt = 0
        node.tx_cnt = 0
        now = self.reactor.seconds()
        self._deadSince[pnn] = now
        self._deathGeneration[pnn] = self.vnnMap.generation
        heard = self._lastHeard.get(pnn)
        self.log.info(
            "{our}: node {peer} is dead - {connected} connected (node {pnn}, {heard})",
            our=self.pnn,
            peer=node.address,
            connected=self._connectedCount(),
            heard="never heard from"
            if heard is None
            else f"last heard {now - heard:.1f} s ago",
            step="node-dead",
            node=self.pnn,
            pnn=pnn,
            silence=None if heard is None else round(now - heard, 3),
            generation=self.vnnMap.generation,
        )
        if self.heartbeats is not None:
            self.heartbeats.linkDown(pnn)
        self.transport.restartNode(pnn)
        self._cancelControlsTo(pnn)
        self.nodeStateChanged(pnn)

    def _connectedCount(self) -> int:
        """ctdbd's count in its connected/dead lines (num_connected): the
        other nodes whose link is up."""
        return sum(
            1
            for n in self.nodes
            if n.pnn != self.pnn
            and not n.flags & (NODE_FLAGS_DISCONNECTED | NODE_FLAGS_DELETED)
        )

    def nodeStateChanged(self, pnn: int) -> None:
        """Tell the node-state observers (the recovery service) that node
        C{pnn} changed."""
        for observer in self.nodeStateObservers:
            observer.nodeStateChanged(pnn)

    # -- plugging subsystems in ---------------------------------------------

    def setRecordProtocol(self, protocol: IRecordProtocol) -> None:
        """The subsystem that answers the record protocol (databases)."""
        self.recordProtocol = protocol

    def addClientObserver(self, observer: IClientObserver) -> None:
        self.clientObservers.append(observer)

    def addNodeStateObserver(self, observer: INodeStateObserver) -> None:
        self.nodeStateObservers.append(observer)

    def addSrvidObserver(self, observer: ISrvidObserver) -> None:
        self.srvidObservers.append(observer)

    def addTunableObserver(self, observer: ITunableObserver) -> None:
        self.tunableObservers.append(observer)

    def addLogLevelObserver(self, observer: ILogLevelObserver) -> None:
        self.logLevelObservers.append(observer)

    def addRecoveryParticipant(self, participant: IRecoveryParticipant) -> None:
        self.recoveryParticipants.append(participant)

    def addStatisticsSource(self, source: IStatisticsSource) -> None:
        self.statisticsSources.append(source)

    def addMetricsSource(self, source: IMetricsSource) -> None:
        """A subsystem whose figures the metrics endpoint shows."""
        self.metricsSources.append(source)

    def setEventRunner(self, runner: IEventRunner) -> None:
        """The subsystem that runs the node's event scripts."""
        self.eventRunner = runner

    def setTakeoverRunner(self, runner: ITakeoverRunner) -> None:
        """The subsystem that moves public addresses when the leader asks."""
        self.takeoverRunner = runner

    def packetReceived(self, pnn: int, data: bytes) -> None:
        # Traffic from a node we thought dead needs nothing here: the
        # transport says the link is up, so it is alive again
        # (ctdb_check_for_dead_nodes).
        self.nodes[pnn].rx_cnt += 1
        self._lastHeard[pnn] = self.reactor.seconds()
        operation = data[16:20]
        heartbeats = self.heartbeats
        if heartbeats is not None:
            if operation == _REQ_MESSAGE_OP and data[32:40] == _HEARTBEAT_SRVID:
                # txctdb's own heartbeat: not in ctdbd's statistics
                heartbeats.heartbeatReceived(pnn, data[44:])
                return
            heartbeats.heard(pnn)
        counters = self.stats.counters
        counters["node_packets_recv"] += 1
        if operation == _REPLY_CONTROL_OP:
            # the reply to a forwarded client control goes to the client as
            # it came, with its header readdressed (no decode, no encode)
            reqid = P.routeReplyControl(data)
            if reqid is not None:
                pending = self._pending.get(reqid)
                if pending is not None and pending.onRawReply is not None:
                    del self._pending[reqid]
                    counters[_REPLY_CONTROL_STAT] += 1
                    pending.onRawReply(data)
                    return
        try:
            pkt = P.decodePacket(data)
        except MalformedPacket as e:
            self.log.warn(
                "malformed packet from node {pnn}: {err}", pnn=pnn, err=str(e)
            )
            self.transport.restartNode(pnn)
            return
        if type(pkt) is P.ReqKeepalive:
            # A pre-4.8 keepalive is a bare header; only the raw length shows
            # it (ctdb_request_keepalive), the decoded packet cannot.
            counters["keepalive_packets_recv"] += 1
            self._keepaliveReceived(pkt, len(data) == P.HEADER_SIZE)
            return
        self.nodePacket(pnn, pkt)

    def nodePacket(self, pnn: int, pkt: P.Packet) -> None:
        op = pkt.header.operation
        if op == _OP_REQ_KEEPALIVE:
            self.stats.bump("keepalive_packets_recv")
            assert isinstance(pkt, P.ReqKeepalive)
            self._keepaliveReceived(pkt, False)
            return
        name = _NODE_STAT.get(op)
        if name is not None:
            self.stats.counters[name] += 1
        if op == _OP_REQ_CONTROL:
            self._remoteControl(pkt)  # type: ignore[arg-type]
        elif op == _OP_REPLY_CONTROL:
            self._controlReply(pkt)  # type: ignore[arg-type]
        elif op == _OP_REQ_MESSAGE:
            assert isinstance(pkt, P.ReqMessage)
            self.deliverMessage(pkt.srvid, pkt.data)
        elif op == _OP_REQ_TUNNEL:
            assert isinstance(pkt, P.ReqTunnel)
            self._deliverTunnel(pkt)
        else:
            if pkt.header.generation != self.vnnMap.generation:
                self.log.debug(
                    "dropping {op} from {pnn}: generation {gen} != {ours}",
                    op=op,
                    pnn=pnn,
                    gen=pkt.header.generation,
                    ours=self.vnnMap.generation,
                )
                return
            if self.nodes[self.pnn].flags & NODE_FLAGS_INACTIVE:
                self.log.debug(
                    "dropping {op} from {pnn}: this node is inactive", op=op, pnn=pnn
                )
                return
            self.recordProtocol.nodeCallPacket(pnn, pkt)

    def reloadNodes(self) -> None:
        """RELOAD_NODES_FILE: nodes may be added or deleted, never renumbered."""

        if not self.config.nodesFile:
            return
        nodemap = readNodesFile(self.config.nodesFile)
        for entry in nodemap.nodes:
            if entry.pnn < len(self.nodes):
                node = self.nodes[entry.pnn]
                if entry.deleted and not node.flags & NODE_FLAGS_DELETED:
                    if entry.pnn == self.pnn:
                        self.log.error("This node is deleted in the nodes file")
                        continue
                    # convert_node_map_to_list: a deleted node is
                    # DELETED|DISCONNECTED with the address 0.0.0.0.
                    node.flags = NODE_FLAGS_DELETED | NODE_FLAGS_DISCONNECTED
                    node.address = entry.address
                    self.transport.removeNode(entry.pnn)
                    self.nodeStateChanged(entry.pnn)
                elif not entry.deleted and node.flags & NODE_FLAGS_DELETED:
                    node.address = entry.address
                    node.flags = NODE_FLAGS_DISCONNECTED | NODE_FLAGS_UNHEALTHY
                    self.transport.connectNode(entry.pnn, entry.address)
                    self.nodeStateChanged(entry.pnn)
            else:
                # A new node is DISCONNECTED|UNHEALTHY until it connects.
                flags = NODE_FLAGS_DISCONNECTED | (
                    NODE_FLAGS_DELETED if entry.deleted else NODE_FLAGS_UNHEALTHY
                )
                self.nodes.append(Node(entry.pnn, entry.address, flags))
                if not entry.deleted:
                    self.transport.connectNode(entry.pnn, entry.address)
                self.nodeStateChanged(entry.pnn)
        self.config.nodeMap = nodemap

    # -- sending ----------------------------------------------------------

    def nextReqid(self) -> int:
        return next(self._reqids) & 0xFFFFFFFF

    def queuePacket(self, pkt: P.Packet) -> None:
        """Send a packet to its destnode (another node, or ourselves)."""
        dest = pkt.header.destnode
        nodes = self.nodes
        if (
            dest != self.pnn
            and 0 <= dest < len(nodes)
            and not nodes[dest].flags & _UNREACHABLE
        ):
            # a connected peer (isConnected, inlined): the usual case
            nodes[dest].tx_cnt += 1
            self.stats.counters["node_packets_sent"] += 1
            self.transport.queuePacket(dest, pkt.encode())
            return
        if dest == self.pnn:
            # ctdb_queue_packet counts a packet to ourselves as sent too
            self.stats.counters["node_packets_sent"] += 1
            self.reactor.callLater(0, self.nodePacket, self.pnn, pkt)
            return
        # not connected
        if (
            pkt.header.operation in _CALL_OPERATIONS
            and self.validPnn(dest)
            and not self.nodes[dest].flags & NODE_FLAGS_DELETED
        ):
            self._holdPacket(dest, pkt)
            return
        self.log.debug("not sending to disconnected node {pnn}", pnn=dest)

    def _holdPacket(self, dest: int, pkt: P.Packet) -> None:
        """Keep a record-protocol packet for node C{dest} until its link is
        up.  Packets of an older generation are useless (the receiver drops
        them) and are forgotten."""
        generation = self.vnnMap.generation
        held = [
            p
            for p in self._heldPackets.get(dest, ())
            if p.header.generation == generation
        ]
        if len(held) >= MAX_HELD_PACKETS:
            self.log.warn(
                "dropping a held packet for node {pnn}: {n} held", pnn=dest, n=len(held)
            )
            del held[0]
        held.append(pkt)
        self._heldPackets[dest] = held

    def _sendHeld(self, pnn: int) -> None:
        """The link to C{pnn} is up: send what was held for it, in order,
        unless a recovery changed the generation meanwhile."""
        for pkt in self._heldPackets.pop(pnn, ()):
            if pkt.header.generation == self.vnnMap.generation:
                self.queuePacket(pkt)

    def broadcastPacket(self, pkt: P.Packet, destnode: int) -> None:
        for pnn in self.targets(destnode):
            if pnn == self.pnn or self.isConnected(pnn):
                self.queuePacket(pkt.withHeader(destnode=pnn))

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
    ) -> defer.Deferred[P.ReplyControl]:
        """
        Send a control to a node (ctdb_daemon_send_control); fires with the
        reply.  Broadcasts must be NOREPLY, as in ctdbd.
        """
        noreply = bool(flags & P.CTDB_CTRL_FLAG_NOREPLY)
        failed = lambda msg: defer.succeed(
            P.ReplyControl(P.Header(P.Operation.REPLY_CONTROL), -1, b"", msg)
        )
        if destnode in P.BROADCASTS:
            if not noreply:
                self.log.error("Attempt to broadcast control without NOREPLY")
                return failed(b"broadcast control without NOREPLY")
            header = P.Header(
                P.Operation.REQ_CONTROL, destnode, self.pnn, 0, self.vnnMap.generation
            )
            self.broadcastPacket(
                P.ReqControl(header, opcode, srvid, client_id, flags, data), destnode
            )
            return defer.succeed(P.ReplyControl(P.Header(P.Operation.REPLY_CONTROL), 0))
        if destnode != self.pnn and not self.isConnected(destnode):
            return failed(b"ctdb_control to disconnected node")
        reqid = self.nextReqid()
        header = P.Header(
            P.Operation.REQ_CONTROL, destnode, self.pnn, reqid, self.vnnMap.generation
        )
        req = P.ReqControl(header, opcode, srvid, client_id, flags, data)
        if noreply:
            self.queuePacket(req)
            return defer.succeed(P.ReplyControl(P.Header(P.Operation.REPLY_CONTROL), 0))
        d: defer.Deferred[P.ReplyControl] = defer.Deferred()
        t = self.tunables.ControlTimeout if timeout is None else timeout
        timer = self.reactor.callLater(t, self._controlTimedOut, reqid) if t else None
        self._pending[reqid] = _PendingControl(destnode, d, timer)
        self.queuePacket(req)
        return d

    def forwardControl(
        self,
        destnode: int,
        req: P.ReqControl,
        onReply: Callable[[P.ReplyControl], None],
        client_id: int,
    ) -> None:
        """A client's control for another node, on the hot path: no Deferred
        and no timer per control (expiry is swept once a second)."""
        nodes = self.nodes
        # isConnected, inlined
        if not 0 <= destnode < len(nodes) or nodes[destnode].flags & _UNREACHABLE:
            if req.opcode == _PROCESS_EXISTS and self._holdProcessExists(
                destnode, req, onReply, client_id
            ):
                return
            onReply(
                P.ReplyControl(
                    P.Header(P.Operation.REPLY_CONTROL),
                    -1,
                    b"",
                    b"ctdb_control to disconnected node",
                )
            )
            return
        if req.opcode == _PROCESS_EXISTS:
            # the node may die before it answers: then wait as above
            onReply = self._processExistsReply(destnode, req, onReply, client_id)
        reqid = self._forwarding(destnode, req.flags, onReply, None)
        self.transport.queuePacket(
            destnode,
            P.encodeReqControl(
                destnode,
                self.pnn,
                reqid,
                self.vnnMap.generation,
                req.opcode,
                req.srvid,
                client_id,
                req.flags,
                req.data,
            ),
        )

    def forwardRawControl(
        self,
        destnode: int,
        data: bytes,
        flags: int,
        onReply: Callable[[P.ReplyControl], None],
        onRawReply: Callable[[bytes], None],
        client_id: int,
    ) -> bool:
        """
        L{forwardControl} of a client's REQ_CONTROL as it came (C{data},
        which L{P.routeReqControl} accepted; not PROCESS_EXISTS), readdressed
        instead of decoded and encoded again.  A reply that can be relayed
        as it is goes to C{onRawReply}, any other (or a failure) to
        C{onReply}.  False, and nothing sent, if C{destnode} is not
        connected: then use L{forwardControl}, which knows what to answer.
        """
        nodes = self.nodes
        if not 0 <= destnode < len(nodes) or nodes[destnode].flags & _UNREACHABLE:
            return False
        reqid = self._forwarding(destnode, flags, onReply, onRawReply)
        self.transport.queuePacket(
            destnode,
            P.readdressReqControl(
                data, destnode, self.pnn, reqid, self.vnnMap.generation, client_id
            ),
        )
        return True

    def _forwarding(
        self,
        destnode: int,
        flags: int,
        onReply: Callable[[P.ReplyControl], None],
        onRawReply: Callable[[bytes], None] | None,
    ) -> int:
        """A reqid for a control forwarded to C{destnode}, its reply awaited
        unless it is NOREPLY, and the packet counted as sent."""
        reqid = self.nextReqid()
        if not flags & P.CTDB_CTRL_FLAG_NOREPLY:
            deadline = self.reactor.seconds() + self.tunables.ControlTimeout
            self._pending[reqid] = _PendingControl(
                destnode, None, None, onReply, deadline, onRawReply
            )
        self.nodes[destnode].tx_cnt += 1
        self.stats.counters["node_packets_sent"] += 1
        return reqid

    def _holdProcessExists(
        self,
        destnode: int,
        req: P.ReqControl,
        onReply: Callable[[P.ReplyControl], None],
        client_id: int,
        waited: float = 0.0,
    ) -> bool:
        """
        PROCESS_EXISTS for a process on a node that died: the answer (no
        such process) waits until the recovery that follows the death is
        over, at most PROCESS_EXISTS_HOLD.  A g_lock waiter (Samba's client or
        ours) drops the entry of a holder whose process is gone and takes
        the lock; answered before that recovery, it would read its node's
        copy of a persistent database without the dead holder's commit
        that reached other nodes, and commit the same increment again
        (issue 13 item 5, docs/FAILURE_DETECTION.md).  False when there is
        nothing to wait for (the reply is then given at once).
        """
        if not 0 <= destnode < len(self.nodes) or self.nodes[destnode].flags & (
            NODE_FLAGS_DELETED
        ):
            return False
        died = self._deathGeneration.get(destnode)
        recovered = (
            self.recmode == CTDB_RECOVERY_NORMAL
            and self.vnnMap.generation != P.INVALID_GENERATION
            and (died is None or self.vnnMap.generation != died)
        )
        if recovered or waited >= min(
            self.tunables.ControlTimeout, PROCESS_EXISTS_HOLD
        ):
            return False
        if self.isConnected(destnode):
            # it came back meanwhile: ask it
            self.forwardControl(destnode, req, onReply, client_id)
            return True
        self.reactor.callLater(
            0.05, self._retryProcessExists, destnode, req, onReply, client_id, waited
        )
        return True

    def _processExistsReply(
        self,
        destnode: int,
        req: P.ReqControl,
        onReply: Callable[[P.ReplyControl], None],
        client_id: int,
    ) -> Callable[[P.ReplyControl], None]:
        """C{onReply}, except that a failure because node C{destnode} died
        meanwhile waits for the recovery (L{_holdProcessExists})."""

        def replied(reply: P.ReplyControl) -> None:
            if (
                reply.status != 0
                and not self.isConnected(destnode)
                and self._holdProcessExists(destnode, req, onReply, client_id)
            ):
                return
            onReply(reply)

        return replied

    def _retryProcessExists(
        self,
        destnode: int,
        req: P.ReqControl,
        onReply: Callable[[P.ReplyControl], None],
        client_id: int,
        waited: float,
    ) -> None:
        if not self._holdProcessExists(
            destnode, req, onReply, client_id, waited + 0.05
        ):
            onReply(
                P.ReplyControl(
                    P.Header(P.Operation.REPLY_CONTROL),
                    -1,
                    b"",
                    b"ctdb_control to disconnected node",
                )
            )

    def _sweepControls(self) -> None:
        now = self.reactor.seconds()
        for reqid, pending in list(self._pending.items()):
            if (
                pending.onReply is not None
                and pending.deadline
                and pending.deadline <= now
            ):
                self._controlTimedOut(reqid)

    def _controlTimedOut(self, reqid: int) -> None:
        pending = self._pending.pop(reqid, None)
        if pending is not None:
            self.stats.bump("timeouts.control")
            pending.fire(
                P.ReplyControl(
                    P.Header(P.Operation.REPLY_CONTROL),
                    -1,
                    b"",
                    b"ctdb_control timed out",
                )
            )

    def _cancelControlsTo(self, pnn: int) -> None:
        for reqid, pending in list(self._pending.items()):
            if pending.destnode == pnn:
                del self._pending[reqid]
                pending.fire(
                    P.ReplyControl(
                        P.Header(P.Operation.REPLY_CONTROL),
                        -1,
                        b"",
                        b"node is disconnected",
                    )
                )

    def _controlReply(self, pkt: P.ReplyControl) -> None:
        pending = self._pending.pop(pkt.header.reqid, None)
        if pending is None:
            self.log.debug(
                "reply to unknown control reqid {reqid}", reqid=pkt.header.reqid
            )
            return
        pending.fire(pkt)

    def _remoteControl(self, req: P.ReqControl) -> None:
        """A control from another node (or ourselves): run it, reply."""
        result = self.controls.dispatchFast(req, None)
        if isinstance(result, tuple):
            # answered at once (most controls): no closure, no Deferred
            self._replyToNode(req, result)
            return
        result.addCallback(lambda r: self._replyToNode(req, r))
        result.addErrback(lambda f: self.log.failure("control reply failed", f))

    def _replyToNode(self, req: P.ReqControl, result: ControlResult) -> None:
        """Send the node that sent C{req} its reply, unless it wants none."""
        if req.flags & P.CTDB_CTRL_FLAG_NOREPLY:
            return
        hdr = req.header
        status, data, errmsg = result
        dest = hdr.srcnode
        encoded = P.encodeReplyControl(
            dest,
            self.pnn,
            hdr.reqid,
            self.vnnMap.generation,
            status,
            data if status == 0 else b"",
            errmsg,
        )
        nodes = self.nodes
        if dest == self.pnn:
            self.queuePacket(P.decodePacket(encoded))
        elif 0 <= dest < len(nodes) and not nodes[dest].flags & _UNREACHABLE:
            nodes[dest].tx_cnt += 1
            self.stats.counters["node_packets_sent"] += 1
            self.transport.queuePacket(dest, encoded)

    # -- keepalives -------------------------------------------------------

    def enableHeartbeats(self, interval: float, timeout: float) -> None:
        """Fast failure detection between txctdb nodes (L{HeartbeatMonitor},
        docs/FAILURE_DETECTION.md); ctdbd peers keep the keepalive rules."""
        self.heartbeats = HeartbeatMonitor(
            reactor=self.reactor,
            pnn=self.pnn,
            send=self._sendHeartbeat,
            declareDead=lambda pnn, silence: self.nodeDead(pnn),
            interval=interval,
            timeout=timeout,
        )

    def _sendHeartbeat(self, pnn: int, payload: bytes) -> None:
        # Straight to the transport: heartbeats are not ctdbd traffic and
        # stay out of the statistics.
        if not self.isConnected(pnn):
            return
        header = P.Header(P.Operation.REQ_MESSAGE, pnn, self.pnn, 0, 0)
        self.transport.queuePacket(
            pnn, P.ReqMessage(header, TXCTDB_SRVID_HEARTBEAT, payload).encode()
        )

    def checkForDeadNodes(self) -> None:
        """ctdb_check_for_dead_nodes, every KeepaliveInterval."""
        for node in self.nodes:
            if node.flags & NODE_FLAGS_DELETED or node.pnn == self.pnn:
                continue
            if node.flags & NODE_FLAGS_DISCONNECTED:
                continue
            if node.rx_cnt == 0:
                node.dead_count += 1
            else:
                node.dead_count = 0
            node.rx_cnt = 0
            if node.dead_count >= self.tunables.KeepaliveLimit:
                self.log.info("dead count reached for node {pnn}", pnn=node.pnn)
                self.nodeDead(node.pnn)
                continue
            self.sendKeepalive(node.pnn)
            node.tx_cnt = 0

    def sendKeepalive(self, pnn: int) -> None:
        header = P.Header(
            P.Operation.REQ_KEEPALIVE, pnn, self.pnn, 0, self.vnnMap.generation
        )
        uptime = int(self.reactor.seconds() - self.startTime)
        self.stats.bump("keepalive_packets_sent")
        self.queuePacket(P.ReqKeepalive(header, keepaliveVersion(), uptime))

    def _keepaliveReceived(self, pkt: P.ReqKeepalive, old: bool) -> None:
        if self.tunables.AllowMixedVersions == 1:
            return
        mine = keepaliveVersion()
        myUptime = int(self.reactor.seconds() - self.startTime)
        if old:
            self.log.error(
                "Keepalive version missing from node {pnn}", pnn=pkt.header.srcnode
            )
        elif pkt.version != mine and (
            pkt.uptime > myUptime or (pkt.uptime == myUptime and pkt.version > mine)
        ):
            self.log.error(
                "Keepalive version mismatch 0x{mine:08x} != 0x{theirs:08x} from node {pnn}",
                mine=mine,
                theirs=pkt.version,
                pnn=pkt.header.srcnode,
            )
        else:
            return
        self.log.error("CTDB Cluster with mixed versions, cannot continue")
        self.shutdown()


_PROCESS_EXISTS = int(Control.PROCESS_EXISTS)
#: the longest a PROCESS_EXISTS for a dead node waits for the recovery
PROCESS_EXISTS_HOLD = 10.0
_HEARTBEAT_SRVID = TXCTDB_SRVID_HEARTBEAT.to_bytes(8, "little")
_REQ_MESSAGE_OP = int(P.Operation.REQ_MESSAGE).to_bytes(4, "little")
_REPLY_CONTROL_OP = _OP_REPLY_CONTROL.to_bytes(4, "little")
_REPLY_CONTROL_STAT = _NODE_STAT[_OP_REPLY_CONTROL]


@implementer(IRecordProtocol)
class _NoDatabases:
    """The record protocol of a node with no databases subsystem plugged in:
    node packets are dropped, clients told the database is unknown."""

    log = Logger()

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def nodeCallPacket(self, pnn: int, pkt: P.Packet) -> None:
        self.log.debug(
            "dropping {op} from node {pnn}", op=pkt.header.operation, pnn=pnn
        )

    def clientCall(self, client: IClientConnection, pkt: P.ReqCall) -> None:
        header = P.Header(
            P.Operation.REPLY_ERROR,
            pkt.header.srcnode,
            self.daemon.pnn,
            pkt.header.reqid,
        )
        self.daemon.sendToClient(
            client, P.ReplyError(header, -1, b"Unknown database in request")
        )
