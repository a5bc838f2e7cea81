# -*- test-case-name: tests.daemon.test_core -*-
"""
Public fakes for testing code built on txctdb, in the spirit of
C{treq.testing} and C{twisted.internet.testing}:

 - L{FakeNodeTransport}: an L{INodeTransport} that records what the daemon
   queues and lets a test connect, kill and feed peers by hand;
 - L{FakeNetwork} and L{connectedNodes}: a whole cluster of real
   L{Daemon} objects wired to each other in memory, driven by one
   L{twisted.internet.task.Clock}, so cluster behaviour is deterministic;
 - L{FakeClient}: an L{IClientConnection} that records the packets the daemon
   sends to a local client, and builds the packets a client would send;
 - each node of L{connectedNodes} changes its own L{FakeAddressSystem}
   (L{ctdb.takeover.fake}) when public addresses move.

Nothing here touches the network or the real reactor.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.internet.task import Clock
from zope.interface import implementer

from ctdb.config.publicaddresses import PublicAddress, parsePublicAddresses
from ctdb.daemon.core import Daemon, DaemonConfig
from ctdb.databases.manager import DatabaseManager
from ctdb.interfaces import (
    IClientConnection,
    IEventRunner,
    INodeTransport,
    INodeTransportListener,
)
from ctdb.nodes import NodeMap, parseNodes
from ctdb.protocols import packet as P
from ctdb.recovery.controls import RecoveryControls
from ctdb.recovery.service import RecoveryService
from ctdb.service import CTDBNode, NodeConfig, buildNode
from ctdb.takeover.fake import FakeAddressSystem
from ctdb.takeover.node import PublicAddresses

__all__ = [
    "FakeClient",
    "FakeCluster",
    "FakeNetwork",
    "FakeNodeTransport",
    "connectedNodes",
]


@implementer(INodeTransport)
class FakeNodeTransport:
    """
    An in-memory node transport.

    Used alone, it records every downcall (C{sent}, C{connectRequests},
    C{restarted}, C{removed}) and a test drives the upcalls with
    L{connect}, L{kill} and L{deliver}.  Joined to a L{FakeNetwork}, packets
    really travel to the peer's transport, one C{clock.callLater(0)} later.
    """

    def __init__(self, pnn: int, network: FakeNetwork | None = None) -> None:
        self.pnn = pnn
        self.network = network
        self.listener: INodeTransportListener = None  # type: ignore[assignment]
        self.started = False
        self.stopped = False
        #: pnn -> address of every connectNode call
        self.connectRequests: dict[int, str] = {}
        #: (destination pnn, encoded packet) of every packet queued on an up link
        self.sent: list[tuple[int, bytes]] = []
        self.restarted: list[int] = []
        self.removed: list[int] = []
        #: peers whose link is up, as far as this transport knows
        self.connected: set[int] = set()

    # -- INodeTransport -------------------------------------------------------

    def start(self) -> defer.Deferred[None]:
        self.started = True
        if self.network is not None:
            self.network._started(self)
        return defer.succeed(None)

    def connectNode(self, pnn: int, address: str) -> None:
        self.connectRequests[pnn] = address
        if self.network is not None:
            self.network._scheduleLink(self.pnn, pnn, 0)

    def queuePacket(self, pnn: int, data: bytes) -> bool:
        if pnn not in self.connected:
            return False
        self.sent.append((pnn, data))
        if self.network is not None:
            self.network._send(self.pnn, pnn, data)
        return True

    def restartNode(self, pnn: int) -> None:
        # Alone, only recorded: the test decides whether (and when) the
        # link dies, with kill().
        self.restarted.append(pnn)
        if self.network is not None:
            self.network._restart(self.pnn, pnn)

    def removeNode(self, pnn: int) -> None:
        self.removed.append(pnn)
        self.connectRequests.pop(pnn, None)
        if self.network is not None:
            self.network._dropLink(self.pnn, pnn)
        self.connected.discard(pnn)

    def shutdown(self) -> defer.Deferred[None]:
        self.stopped = True
        if self.network is not None:
            self.network._stopped(self)
        self.connected.clear()
        return defer.succeed(None)

    # -- test helpers: the upcalls --------------------------------------------

    def connect(self, pnn: int) -> None:
        """Bring the link to C{pnn} up and tell the listener."""
        self.connected.add(pnn)
        self.listener.nodeConnected(pnn)

    def kill(self, pnn: int) -> None:
        """Take the link to C{pnn} down and tell the listener."""
        self.connected.discard(pnn)
        self.listener.nodeDead(pnn)

    def deliver(self, pnn: int, packet: P.Packet | bytes) -> None:
        """Hand the listener a packet (object or raw bytes) from C{pnn}."""
        data = packet if isinstance(packet, bytes) else packet.encode()
        self.listener.packetReceived(pnn, data)

    def sentPackets(self, pnn: int | None = None) -> list[P.Packet]:
        """The decoded packets queued so far (to C{pnn}, or to anyone)."""
        return [P.decodePacket(d) for n, d in self.sent if pnn is None or n == pnn]

    def clearSent(self) -> None:
        del self.sent[:]


class FakeNetwork:
    """
    Links L{FakeNodeTransport}s to each other, like the TCP transport does:
    a link between two nodes is up once both transports are started, both
    asked to connect to the other, and neither side is down or partitioned.
    Packets are delivered in order, each by C{clock.callLater(0)}; packets in
    flight on a link that goes down are lost.  After a restart the link comes
    back after C{retryDelay} seconds (ClientService's 1 s retry).
    """

    def __init__(self, clock: Clock, retryDelay: float = 1.0) -> None:
        self.clock = clock
        self.retryDelay = retryDelay
        self.transports: dict[int, FakeNodeTransport] = {}
        self.down: set[int] = set()
        self.partitions: set[frozenset[int]] = set()
        #: packets lost on purpose: (src, dst) pairs that swallow everything
        self.blackholes: set[tuple[int, int]] = set()
        self._links: dict[frozenset[int], int] = {}  # pair -> epoch (up links)
        self._epochs = itertools.count(1)

    def transport(self, pnn: int) -> FakeNodeTransport:
        """A new transport for node C{pnn} on this network."""
        t = FakeNodeTransport(pnn, self)
        self.transports[pnn] = t
        return t

    # -- test controls ----------------------------------------------------------

    def flush(self) -> None:
        """Deliver everything due now (and whatever that causes)."""
        self.clock.advance(0)

    def killNode(self, pnn: int) -> None:
        """Node C{pnn} vanishes (a crash): every peer sees its link die."""
        self.down.add(pnn)
        for pair in [p for p in self._links if pnn in p]:
            self._dropLink(*pair)

    def reviveNode(self, pnn: int) -> None:
        """Node C{pnn} is reachable again; links come back at once."""
        self.down.discard(pnn)
        for other in self.transports:
            if other != pnn:
                self._scheduleLink(pnn, other, 0)

    def partition(self, a: int, b: int) -> None:
        """Cut the link between C{a} and C{b} (both see it die)."""
        self.partitions.add(frozenset((a, b)))
        self._dropLink(a, b)

    def heal(self, a: int, b: int) -> None:
        """Undo L{partition}; the link comes back at once."""
        self.partitions.discard(frozenset((a, b)))
        self._scheduleLink(a, b, 0)

    def isLinked(self, a: int, b: int) -> bool:
        return frozenset((a, b)) in self._links

    # -- transport side ----------------------------------------------------------

    def _wants(self, a: int, b: int) -> bool:
        ta, tb = self.transports.get(a), self.transports.get(b)
        return (
            ta is not None
            and tb is not None
            and ta.started
            and tb.started
            and not ta.stopped
            and not tb.stopped
            and b in ta.connectRequests
            and a in tb.connectRequests
            and a not in self.down
            and b not in self.down
            and frozenset((a, b)) not in self.partitions
        )

    def _scheduleLink(self, a: int, b: int, delay: float) -> None:
        self.clock.callLater(delay, self._tryLink, a, b)

    def _tryLink(self, a: int, b: int) -> None:
        pair = frozenset((a, b))
        if pair in self._links or not self._wants(a, b):
            return
        self._links[pair] = next(self._epochs)
        for x, y in ((a, b), (b, a)):
            self.transports[x].connect(y)

    def _dropLink(self, a: int, b: int) -> None:
        pair = frozenset((a, b))
        if self._links.pop(pair, None) is None:
            return
        for x, y in ((a, b), (b, a)):
            t = self.transports[x]
            if x in self.down or t.stopped:
                # A dead process notices nothing.
                t.connected.discard(y)
            elif y in t.connected:
                t.kill(y)

    def _started(self, t: FakeNodeTransport) -> None:
        for other in t.connectRequests:
            self._scheduleLink(t.pnn, other, 0)

    def _stopped(self, t: FakeNodeTransport) -> None:
        for pair in [p for p in self._links if t.pnn in p]:
            self._dropLink(*pair)

    def _restart(self, a: int, b: int) -> None:
        self._dropLink(a, b)
        self.transports[a].connected.discard(b)
        self._scheduleLink(a, b, self.retryDelay)

    def _send(self, src: int, dst: int, data: bytes) -> None:
        pair = frozenset((src, dst))
        epoch = self._links.get(pair)
        if epoch is None or (src, dst) in self.blackholes:
            return

        def deliver() -> None:
            if self._links.get(pair) != epoch:
                return  # the link went down while the packet was in flight
            self.transports[dst].deliver(src, data)

        self.clock.callLater(0, deliver)


@implementer(IClientConnection)
class FakeClient:
    """
    A local client of a L{Daemon}, without a socket.  Packets the daemon
    sends are kept in C{received}; L{control}, L{sendMessage} and L{send}
    feed the daemon as a client would.  C{transport.loseConnection()} (what
    the daemon does to a broken client) disconnects it.
    """

    def __init__(self, daemon: Daemon, pid: int = 0, *, connect: bool = True) -> None:
        self.daemon = daemon
        self.client_id = 0
        self.pid = pid
        self.received: list[bytes] = []
        self.connected = False
        self.transport = _FakeClientTransport(self)
        self._reqids = itertools.count(1)
        if connect:
            self.connect()

    # IClientConnection
    def sendPacket(self, data: bytes) -> None:
        self.received.append(data)

    # client side
    def connect(self) -> None:
        self.connected = True
        self.daemon.clientConnected(self)

    def disconnect(self) -> None:
        if self.connected:
            self.connected = False
            self.daemon.clientDisconnected(self)

    def send(self, packet: P.Packet | bytes) -> None:
        """Send a packet (object or raw bytes) to the daemon."""
        data = packet if isinstance(packet, bytes) else packet.encode()
        self.daemon.clientPacketReceived(self, data)

    def control(
        self,
        opcode: int,
        data: bytes = b"",
        *,
        destnode: int = P.CTDB_CURRENT_NODE,
        srvid: int = 0,
        flags: int = 0,
    ) -> int:
        """Send a REQ_CONTROL; returns its reqid (see L{reply})."""
        reqid = next(self._reqids)
        header = P.Header(P.Operation.REQ_CONTROL, destnode, P.CTDB_UNKNOWN_PNN, reqid)
        self.send(P.ReqControl(header, opcode, srvid, 0, flags, data))
        return reqid

    def sendMessage(self, destnode: int, srvid: int, data: bytes = b"") -> None:
        header = P.Header(P.Operation.REQ_MESSAGE, destnode, P.CTDB_UNKNOWN_PNN, 0)
        self.send(P.ReqMessage(header, srvid, data))

    def packets(self) -> list[P.Packet]:
        return [P.decodePacket(d) for d in self.received]

    def replies(self) -> list[P.ReplyControl]:
        return [p for p in self.packets() if isinstance(p, P.ReplyControl)]

    def reply(self, reqid: int) -> P.ReplyControl | None:
        """The REPLY_CONTROL for C{reqid}, or None if there is none (yet)."""
        for r in self.replies():
            if r.header.reqid == reqid:
                return r
        return None

    def messages(self) -> list[tuple[int, bytes]]:
        """(srvid, data) of every REQ_MESSAGE delivered to this client."""
        return [
            (p.srvid, p.data) for p in self.packets() if isinstance(p, P.ReqMessage)
        ]


class _FakeClientTransport:
    def __init__(self, client: FakeClient) -> None:
        self.client = client
        self.disconnecting = False

    def loseConnection(self) -> None:
        self.disconnecting = True
        self.client.disconnect()

    abortConnection = loseConnection


@dataclass
class FakeCluster:
    """N daemons on a L{FakeNetwork}: the result of L{connectedNodes}."""

    clock: Clock
    network: FakeNetwork
    nodeMap: NodeMap
    daemons: list[Daemon]
    #: pnns whose daemon asked to shut the process down, in order
    shutdowns: list[int] = field(default_factory=list)
    #: builds (unstarted) node C{pnn} again, for L{restart}
    builder: Callable[[int], Daemon] | None = None
    #: the whole node (L{ctdb.service.buildNode}) of each daemon, by pnn
    nodes: dict[int, CTDBNode] = field(default_factory=dict)
    #: the host each node changes when public addresses move, by pnn (kept
    #: across L{restart}, as a host keeps its addresses when a daemon dies)
    addressSystems: dict[int, FakeAddressSystem] = field(default_factory=dict)

    def node(self, pnn: int) -> CTDBNode:
        """Node C{pnn} as L{ctdb.service.buildNode} built it."""
        return self.nodes[pnn]

    def databases(self, pnn: int) -> DatabaseManager:
        return self.nodes[pnn].databases

    def recoveryControls(self, pnn: int) -> RecoveryControls:
        return self.nodes[pnn].recoveryControls

    def takeover(self, pnn: int) -> PublicAddresses:
        """The node side of public-IP takeover of node C{pnn}."""
        return self.nodes[pnn].takeover

    def recovery(self, pnn: int) -> RecoveryService:
        recovery = self.nodes[pnn].recovery
        assert recovery is not None
        return recovery

    def __getitem__(self, pnn: int) -> Daemon:
        """The daemon of node C{pnn} (deleted nodes have none)."""
        for d in self.daemons:
            if d.pnn == pnn:
                return d
        raise KeyError(pnn)

    def __len__(self) -> int:
        return len(self.daemons)

    def __iter__(self) -> Iterator[Daemon]:
        return iter(self.daemons)

    def flush(self) -> None:
        """Run everything due now: deliver packets, replies, their replies."""
        self.clock.advance(0)

    def advance(self, seconds: float, step: float = 1.0) -> None:
        """Let C{seconds} pass in steps of at most C{step}, flushing as we go."""
        remaining = seconds
        while remaining > 0:
            delta = min(step, remaining)
            self.clock.advance(delta)
            remaining -= delta
        self.flush()

    def client(self, pnn: int, pid: int = 0) -> FakeClient:
        """A new local client of node C{pnn}."""
        return FakeClient(self[pnn], pid)

    def stop(self) -> None:
        for d in self.daemons:
            self._stopNode(d)

    def crash(self, pnn: int) -> None:
        """Node C{pnn}'s process dies: its peers see the links go down, and
        the dead daemon (with its recovery service) does nothing more."""
        self.network.killNode(pnn)
        self._stopNode(self[pnn])

    def restart(self, pnn: int) -> Daemon:
        """Start a fresh daemon for node C{pnn} (after L{crash}), as a new
        process with empty volatile databases would; returns it."""
        assert self.builder is not None
        old = self[pnn]
        self._stopNode(old)
        daemon = self.builder(pnn)
        self.daemons[self.daemons.index(old)] = daemon
        self.network.reviveNode(pnn)
        self._startNode(daemon)
        self.flush()
        return daemon

    def _startNode(self, daemon: Daemon) -> None:
        node = self.nodes.get(daemon.pnn)
        if node is not None and node.daemon is daemon:
            node.startService()
        else:
            daemon.startService()

    def _stopNode(self, daemon: Daemon) -> None:
        node = self.nodes.get(daemon.pnn)
        if node is not None and node.daemon is daemon:
            if node.running:
                node.stopService()
        elif daemon.running:
            daemon.stopService()


def connectedNodes(
    n: int,
    clock: Clock,
    *,
    nodes: str | None = None,
    tunables: dict[str, int] | None = None,
    daemonFactory: Callable[..., Daemon] = Daemon,
    start: bool = True,
    recovery: bool = False,
    publicAddresses: str | dict[int, str] | None = None,
    interfaces: tuple[str, ...] = ("eth0", "eth1"),
    addressesByScripts: bool = False,
    failoverDisabled: bool = False,
    eventRunners: Callable[[int], IEventRunner] | None = None,
    heartbeat: tuple[float, float] | None = None,
) -> FakeCluster:
    """
    Build C{n} started L{Daemon}s (addresses 127.0.0.1..n, or the nodes-file
    text C{nodes}, whose deleted entries get no daemon) connected through a
    L{FakeNetwork} on C{clock}, and flush until every link is up.
    C{daemonFactory} is called like L{Daemon} (keyword arguments), so a test
    can build a bare subclass.  Otherwise every node is built by
    L{ctdb.service.buildNode} as a real node is (databases on memory
    stores, the recovery controls; no client socket), and with
    C{recovery=True} with its recovery service too: the cluster then still
    has to elect a leader and recover (advance the clock a few seconds).

    C{eventRunners(pnn)} gives each node built an event runner (each build,
    so a restarted node gets a new one); such a node also drives its events
    and health (L{ctdb.events}) as a node with event scripts does.

    C{publicAddresses} is public_addresses text for every node, or by pnn
    (a node left out has none); each node gets its own L{FakeAddressSystem}
    with C{interfaces} (and C{lo}), in C{cluster.addressSystems}.

    The nodes keep 4.17's keepalive rules alone unless C{heartbeat}
    (interval, timeout) turns txctdb's heartbeat on
    (L{ctdb.daemon.heartbeat}).
    """
    text = (
        nodes if nodes is not None else "".join(f"127.0.0.{i + 1}\n" for i in range(n))
    )
    nodeMap = parseNodes(text)
    network = FakeNetwork(clock)
    cluster = FakeCluster(clock, network, nodeMap, [])

    def build(pnn: int) -> Daemon:
        def onShutdown() -> None:
            cluster.shutdowns.append(pnn)

        if daemonFactory is not Daemon:
            # a test's own Daemon subclass, bare: no subsystems plugged in
            config = DaemonConfig(
                nodeMap=nodeMap, pnn=pnn, tunables=dict(tunables or {})
            )
            return daemonFactory(
                reactor=clock,
                config=config,
                transport=network.transport(pnn),
                shutdownCallback=onShutdown,
            )
        system = cluster.addressSystems.get(pnn)
        if system is None:
            system = cluster.addressSystems[pnn] = FakeAddressSystem(interfaces)
        node = buildNode(
            NodeConfig(
                nodeMap=nodeMap,
                pnn=pnn,
                tunables=dict(tunables or {}),
                memoryStores=True,
                withRecovery=recovery,
                withClientSocket=False,
                publicAddresses=_addressesOf(publicAddresses, pnn),
                addressesByScripts=addressesByScripts,
                failoverDisabled=failoverDisabled,
                addressSystem=system,
                eventRunner=None if eventRunners is None else eventRunners(pnn),
                heartbeat=heartbeat,
            ),
            reactor=clock,  # type: ignore[arg-type]
            transport=network.transport(pnn),
            shutdownCallback=onShutdown,
        )
        cluster.nodes[pnn] = node
        return node.daemon

    cluster.builder = build
    for entry in nodeMap.nodes:
        if not entry.deleted:
            cluster.daemons.append(build(entry.pnn))
    if start:
        for d in cluster.daemons:
            cluster._startNode(d)
        cluster.flush()
    return cluster


def _addressesOf(text: str | dict[int, str] | None, pnn: int) -> list[PublicAddress]:
    if isinstance(text, dict):
        text = text.get(pnn)
    if not text:
        return []
    addresses, messages = parsePublicAddresses(text)
    if messages:
        raise ValueError("; ".join(m.text for m in messages))
    return addresses
