# -*- test-case-name: tests.test_service -*-
"""
Build the CTDB service tree, for ``twistd ctdb`` and for users who embed a
CTDB node in their own Twisted application::

    from twisted.application.service import Application
    from twisted.internet import reactor
    from ctdb.service import buildCTDBService

    application = Application("my app")
    node = buildCTDBService(reactor=reactor, nodesFile="/etc/ctdb/nodes",
                            socketPath="/run/ctdb/ctdbd.socket")
    node.setServiceParent(application)
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.endpoints import UNIXServerEndpoint
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.internet.posixbase import PosixReactorBase
from twisted.logger import ILogObserver, globalLogPublisher
from zope.interface import implementer

from ctdb.config.publicaddresses import PublicAddress, addressesFromFile
from ctdb.daemon.core import Daemon, DaemonConfig
from ctdb.daemon.heartbeat import DEFAULT_INTERVAL, DEFAULT_TIMEOUT
from ctdb.daemon.memdump import installMemoryDump
from ctdb.databases.manager import DatabaseManager
from ctdb.databases.metrics import DatabaseMetrics
from ctdb.errors import ConfigError
from ctdb.events.health import HealthMonitor
from ctdb.events.lifecycle import EventLifecycle
from ctdb.events.metrics import EventMetrics
from ctdb.events.notify import Notifier
from ctdb.events.service import EventService
from ctdb.interfaces import (
    IAddressSystem,
    ICTDBReactor,
    IEventRunner,
    INodeTransport,
)
from ctdb.logfilter import LOG_FORMATS, DebugLevelFilter, nodeLogObserver
from ctdb.metrics import MetricsService, metricsService
from ctdb.nodes import NodeMap, readNodesFile
from ctdb.protocols.debuglevels import DEBUG_LEVELS, parseDebugLevel
from ctdb.protocols.nodestate import (
    CTDB_CAP_LMASTER,
    CTDB_CAP_RECMASTER,
    NODE_FLAGS_PERMANENTLY_DISABLED,
    NODE_FLAGS_STOPPED,
)
from ctdb.protocols.packet import CTDB_PORT
from ctdb.protocols.tunables import Tunables
from ctdb.recovery.controls import RecoveryControls
from ctdb.recovery.service import RecoveryService
from ctdb.takeover.leader import TakeoverRunner
from ctdb.takeover.node import PublicAddresses
from ctdb.takeover.system import LinuxAddressSystem
from ctdb.takeover.testmode import TestModeAddressSystem
from ctdb.transports.clientsocket import (
    ClientServerFactory,
    ClientSocketPort,
    ClientWriteBatch,
)
from ctdb.transports.ib.binding import loadVerbs
from ctdb.transports.ib.transport import IBNodeTransport
from ctdb.transports.ib.verbs import IVerbs
from ctdb.transports.listening import ListeningService
from ctdb.transports.tcp import TCPNodeTransport

DEFAULT_SOCKET = "/run/ctdb/ctdbd.socket"


def toDebugLevel(text: str) -> int:
    """The debug level C{text} names: a number 0-10 or (a prefix of) a
    name, as ctdbd reads one (L{parseDebugLevel}).

    @raise ConfigError: C{text} names no level.
    """
    level = parseDebugLevel(text)
    if level is None:
        raise ConfigError(
            f"invalid log level {text!r} (one of {', '.join(DEBUG_LEVELS)})"
        )
    return level


def isLocalAddress(address: str) -> bool:
    """Can we bind to C{address}?  (ctdbd's own test for its node address.)"""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((address, 0))
        except OSError as e:
            if e.errno in (errno.EADDRNOTAVAIL, errno.EINVAL):
                return False
            raise
    return True


def chooseNode(nodeMap: NodeMap, address: str | None) -> tuple[int, str]:
    """The pnn and address this daemon runs as."""
    if address:
        entry = nodeMap.byAddress(address)
        if entry is None:
            raise ConfigError(f"node address {address} is not in the nodes file")
        if not isLocalAddress(entry.address):
            raise ConfigError(f"node address {address} is not a local address")
        return entry.pnn, entry.address
    for entry in nodeMap.active():
        if isLocalAddress(entry.address):
            return entry.pnn, entry.address
    raise ConfigError("no address of the nodes file is local to this machine")


def _checkSocketPath(path: str) -> None:
    """Refuse a socket another daemon is serving; remove a stale one."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except OSError:
            os.unlink(path)
            return
    raise ConfigError(f"socket {path} is in use by a running daemon")


@implementer(IStreamServerEndpoint)
class _ClientSocketEndpoint:
    """The client socket (mode 0700): a L{ClientSocketPort} on a real
    reactor, Twisted's own UNIX endpoint on anything else (test reactors)."""

    def __init__(self, reactor: ICTDBReactor, path: str) -> None:
        self.reactor = reactor
        self.path = path

    def listen(self, factory: IProtocolFactory) -> defer.Deferred[IListeningPort]:
        if isinstance(self.reactor, PosixReactorBase):
            # unix.Port takes a str path at run time; its annotation says bytes
            port = ClientSocketPort(
                self.path,  # type: ignore[arg-type]
                factory,
                mode=0o700,
                reactor=self.reactor,
            )
            return defer.maybeDeferred(port.startListening).addCallback(lambda _: port)
        return UNIXServerEndpoint(
            self.reactor, self.path, mode=0o700, wantPID=False
        ).listen(factory)


class ClientSocketService(ListeningService):
    """
    The client socket as a service (C{"clients"}): listens when started and
    stops listening when stopped.  A socket that cannot be listened on
    fails the node's start at once (the drop-in ctdbd reports it to the
    process that waits for it).
    """

    name = "clients"  # type: ignore[assignment]


@dataclass
class NodeConfig:
    """
    Everything that decides what a node is: its nodes file (or node map),
    address, sockets, directories, logging, tunables, cluster lock, flags
    and capabilities at start, and the optional parts (event daemon, pid
    file).  L{buildNode} turns one into a running node.
    """

    #: the nodes file; or give C{nodeMap} (and C{pnn}) directly
    nodesFile: str = ""
    socketPath: str = DEFAULT_SOCKET
    #: this node's address (first local address of the nodes file if None)
    address: str | None = None
    port: int = CTDB_PORT
    dbDirVolatile: str = "/var/lib/ctdb/volatile"
    dbDirPersistent: str = "/var/lib/ctdb/persistent"
    dbDirState: str = "/var/lib/ctdb/state"
    logFile: str | None = None
    logLevel: int | str = "NOTICE"
    #: how C{logFile} is written: C{"text"} (Twisted's classic lines) or
    #: C{"json"} (one object per line; docs/LOGGING.md)
    logFormat: str = "text"
    tunables: dict[str, int] = field(default_factory=dict)
    recoveryLock: str = ""
    #: [cluster] leader capability and [legacy] lmaster capability
    leaderCapability: bool = True
    lmasterCapability: bool = True
    #: [legacy] start as stopped / start as disabled
    startStopped: bool = False
    startDisabled: bool = False
    #: this node's public addresses (public_addresses entries, in file
    #: order); or C{publicAddressesFile}, read at start and again by
    #: RELOAD_PUBLIC_IPS (C{ctdb reloadips})
    publicAddresses: list[PublicAddress] = field(default_factory=list)
    publicAddressesFile: str | None = None
    #: the node transport: C{"tcp"} or C{"ib"} (ctdb.conf C{[cluster]
    #: transport}; InfiniBand verbs, L{ctdb.transports.ib}), and for
    #: C{"ib"} the RDMA stack (the libraries, loaded at build, if None)
    transport: str = "tcp"
    verbs: IVerbs | None = None
    #: ctdb.conf C{[failover] disabled}: addresses are never moved
    failoverDisabled: bool = False
    #: only the takeip/releaseip/updateip event scripts add and remove
    #: addresses (Samba's 10.interface, as ctdbd); by default the daemon
    #: does it itself through C{addressSystem}
    addressesByScripts: bool = False
    #: ctdbd's test mode (C{CTDB_TEST_MODE}): the host is never changed and
    #: never asked whether it holds an address
    addressTestMode: bool = False
    #: what changes the host's addresses (L{LinuxAddressSystem} if None)
    addressSystem: IAddressSystem | None = None
    #: our event daemon (L{ctdb.events}): the C{events} directory of
    #: C{CTDB_BASE} whose components' scripts it runs (no event scripts if
    #: None); the socket it serves the event protocol on (C{eventd.socket}
    #: beside the client socket if empty), for Samba's C{ctdb event} and
    #: C{ctdb scriptstatus}; ctdb.conf's C{[event] debug script} (a path);
    #: timeouts (seconds) of events of their own, over EventScriptTimeout;
    #: variables added to the scripts' environment (this process's)
    eventsDir: str | None = None
    eventSocket: str = ""
    debugScript: str | None = None
    eventTimeouts: dict[str, int] = field(default_factory=dict)
    eventEnvironment: dict[str, str] = field(default_factory=dict)
    #: ctdbd's notification script (C{$CTDB_BASE/notify.sh}), run with
    #: init, setup, startup, unhealthy or healthy when the node runs events
    notifyScript: str | None = None
    #: ctdbd's fast start (on in its test mode): the startup event follows
    #: the first recovery at once, not RerecoveryTimeout + 3 s after the
    #: last one
    fastStart: bool = False
    #: an event runner of one's own instead (tests, embedding)
    eventRunner: IEventRunner | None = None
    #: a pid file written while the node runs
    pidFile: str | None = None
    #: serve the node's metrics (Prometheus' text format, C{/metrics}) on
    #: this Twisted server endpoint string, e.g. C{tcp:9100:interface=127.0.0.1}
    #: (no metrics endpoint if None; docs/METRICS.md)
    metricsEndpoint: str | None = None
    #: txctdb's heartbeat between txctdb nodes (interval, timeout) in
    #: seconds, or None for 4.17's keepalives alone
    #: (docs/FAILURE_DETECTION.md)
    heartbeat: tuple[float, float] | None = (DEFAULT_INTERVAL, DEFAULT_TIMEOUT)
    #: a node map instead of a nodes file (tests), with our pnn in it
    nodeMap: NodeMap | None = None
    pnn: int | None = None
    #: keep records in memory instead of TDB files (tests)
    memoryStores: bool = False
    #: parts of a node; a test may build one without them (without the
    #: recovery service a node still answers the recovery controls)
    withRecovery: bool = True
    withClientSocket: bool = True


class CTDBNode(MultiService):
    """
    One node's service tree, as L{buildNode} assembled it, with its parts
    named for those that look at them (tests, the drop-in ctdbd): the
    daemon core, the databases subsystem and, when built with recovery,
    the recovery service, the node side of public-IP takeover
    (C{takeover}, service C{"takeover"}) and the leader's takeover runs
    (C{takeoverRunner}).
    """

    def __init__(
        self,
        daemon: Daemon,
        databases: DatabaseManager,
        recoveryControls: RecoveryControls,
        recovery: RecoveryService | None,
        takeover: PublicAddresses,
        takeoverRunner: TakeoverRunner,
    ) -> None:
        super().__init__()
        self.daemon = daemon
        self.databases = databases
        self.recoveryControls = recoveryControls
        self.recovery = recovery
        self.takeover = takeover
        self.takeoverRunner = takeoverRunner
        #: the events ctdbd drives and the node's health from its monitor
        #: event, when the node runs event scripts (L{ctdb.events})
        self.lifecycle: EventLifecycle | None = None
        self.health: HealthMonitor | None = None
        #: the observer that writes the node's log file (NodeConfig.logFile)
        #: on the global log publisher, or None
        self.logObserver: ILogObserver | None = None
        #: the metrics endpoint, when configured (L{ctdb.metrics})
        self.metrics: MetricsService | None = None

    def startService(self) -> None:
        """ctdb_start_daemon: the persistent databases on disk are attached
        before any part starts (L{DatabaseManager.attachExisting})."""
        self.databases.attachExisting()
        super().startService()

    def stopService(self) -> defer.Deferred[object]:
        """ctdb_shutdown_sequence: a node that runs event scripts runs its
        C{shutdown} event before any of its parts stops."""
        lifecycle = self.lifecycle
        if lifecycle is None:
            return super().stopService()
        d = lifecycle.shutdown()
        return d.addCallback(lambda _: MultiService.stopService(self))


def _buildTransport(
    config: NodeConfig,
    address: str,
    reactor: ICTDBReactor,
    clientWrites: ClientWriteBatch,
) -> INodeTransport:
    """The transport C{config.transport} names.  For InfiniBand the verbs
    libraries are loaded now, so that a node without them or without an
    RDMA device fails at once, saying which (L{VerbsUnavailable})."""
    if config.transport == "tcp":
        return TCPNodeTransport(
            reactor=reactor,
            address=address,
            port=config.port,
            clientWrites=clientWrites,
        )
    if config.transport == "ib":
        verbs = config.verbs if config.verbs is not None else loadVerbs()
        return IBNodeTransport(
            reactor=reactor,
            address=address,
            verbs=verbs,
            port=config.port,
            clientWrites=clientWrites,
        )
    raise ConfigError(f"unknown transport {config.transport!r} (tcp or ib)")


def buildNode(
    config: NodeConfig,
    *,
    reactor: ICTDBReactor,
    transport: INodeTransport | None = None,
    shutdownCallback: Callable[[], object] | None = None,
) -> CTDBNode:
    """
    The one place a node is assembled: the daemon core (service
    C{"daemon"}), the databases, the recovery controls and service
    (C{"recovery"}), the event daemon (C{"eventd"}) and pid file
    (C{"pidfile"}) when configured, the client socket (C{"clients"}) and
    the node transport (C{config.transport} unless C{transport} is
    given).  Each subsystem plugs into the core through the seams of
    L{ctdb.interfaces}.  Raises L{ConfigError} for a bad nodes file, a
    non-local address, an unknown tunable or transport, a socket in use,
    or InfiniBand without its libraries or an RDMA device.
    """
    if config.nodeMap is not None:
        nodeMap = config.nodeMap
        if config.pnn is None:
            raise ConfigError("a node map needs the pnn of this node")
        pnn, myAddress = config.pnn, nodeMap.nodes[config.pnn].address
    else:
        nodeMap = readNodesFile(config.nodesFile)
        pnn, myAddress = chooseNode(nodeMap, config.address)
    level = (
        toDebugLevel(config.logLevel)
        if isinstance(config.logLevel, str)
        else config.logLevel
    )
    if config.logFormat not in LOG_FORMATS:
        raise ConfigError(
            f"invalid log format {config.logFormat!r} (one of {', '.join(LOG_FORMATS)})"
        )
    known = Tunables()
    for name in config.tunables:
        if known.canonical(name) is None:
            raise ConfigError(f"unknown tunable {name}")
    daemonConfig = DaemonConfig(
        nodeMap=nodeMap,
        pnn=pnn,
        nodesFile=os.path.abspath(config.nodesFile) if config.nodesFile else "",
        socketPath=config.socketPath,
        dbDirVolatile=config.dbDirVolatile,
        dbDirPersistent=config.dbDirPersistent,
        dbDirState=config.dbDirState,
        port=config.port,
        logLevel=level,
        recoveryLock=config.recoveryLock,
        tunables=dict(config.tunables),
    )
    clientWrites = ClientWriteBatch()
    if transport is None:
        transport = _buildTransport(config, myAddress, reactor, clientWrites)
    daemon = Daemon(
        reactor=reactor,
        config=daemonConfig,
        transport=transport,
        shutdownCallback=shutdownCallback,
    )
    if config.heartbeat is not None:
        daemon.enableHeartbeats(*config.heartbeat)
    if not config.leaderCapability:
        daemon.capabilities &= ~CTDB_CAP_RECMASTER
    if not config.lmasterCapability:
        daemon.capabilities &= ~CTDB_CAP_LMASTER
    me = daemon.nodes[daemon.pnn]
    if config.startStopped:
        me.flags |= NODE_FLAGS_STOPPED
    if config.startDisabled:
        me.flags |= NODE_FLAGS_PERMANENTLY_DISABLED

    databases = DatabaseManager(daemon, memory=config.memoryStores)
    databases.plugInto(daemon)
    DatabaseMetrics(databases).plugInto(daemon)
    installMemoryDump(daemon)
    controls = RecoveryControls(daemon)
    controls.plugInto(daemon)
    takeover = _buildTakeover(config, daemon, reactor)
    takeover.plugInto(daemon)
    takeoverRunner = TakeoverRunner(daemon, failoverDisabled=config.failoverDisabled)
    takeoverRunner.plugInto(daemon)
    recovery = None
    if config.withRecovery:
        recovery = RecoveryService(daemon, controls)
        recovery.plugInto(daemon)
    top = CTDBNode(daemon, databases, controls, recovery, takeover, takeoverRunner)
    daemon.setName("daemon")
    daemon.setServiceParent(top)
    if recovery is not None:
        recovery.setServiceParent(top)
    levelFilter = DebugLevelFilter(level)
    daemon.addLogLevelObserver(levelFilter)
    if config.logFile:
        os.makedirs(os.path.dirname(os.path.abspath(config.logFile)), exist_ok=True)
        # The log stream is open for the whole life of the process.
        stream = open(  # noqa: SIM115
            config.logFile,
            "a",
            buffering=1,
            encoding="utf-8",
            errors="backslashreplace",
        )
        top.logObserver = nodeLogObserver(stream, config.logFormat, levelFilter, pnn)
        globalLogPublisher.addObserver(top.logObserver)
    if config.withClientSocket:
        _checkSocketPath(config.socketPath)
        ClientSocketService(
            _ClientSocketEndpoint(reactor, config.socketPath),
            ClientServerFactory(daemon, clientWrites),
        ).setServiceParent(top)
    # Stopped before the client socket (services stop in reverse order):
    # the shutdown event runs and the pid file goes while clients still
    # wait for the daemon to close them, as ctdb_shutdown_sequence.
    if config.eventsDir is not None:
        eventd = _buildEventService(config, daemon, reactor)
        daemon.setEventRunner(eventd)
        eventd.setServiceParent(top)
    if config.eventRunner is not None:
        daemon.setEventRunner(config.eventRunner)
    # Stopped before the event daemon: daemon-added addresses go while the
    # shutdown event can still run.
    takeover.setServiceParent(top)
    if daemon.eventRunner is not None:
        _buildLifecycle(config, top, controls, reactor)
    if config.pidFile is not None:
        PidFileService(config.pidFile).setServiceParent(top)
    if config.metricsEndpoint is not None:
        top.metrics = metricsService(
            daemon, reactor=reactor, endpoint=config.metricsEndpoint
        )
        top.metrics.setServiceParent(top)
    return top


def eventSocketPath(config: NodeConfig) -> str:
    """The event socket of a node: configured, or C{eventd.socket} beside
    its client socket (ctdbd's rundir)."""
    if config.eventSocket:
        return config.eventSocket
    return os.path.join(os.path.dirname(config.socketPath) or ".", "eventd.socket")


def _buildEventService(
    config: NodeConfig, daemon: Daemon, reactor: ICTDBReactor
) -> EventService:
    """Our event daemon on C{config.eventsDir}, serving its socket."""
    assert config.eventsDir is not None
    for event, seconds in config.eventTimeouts.items():
        if not isinstance(seconds, int) or seconds < 0:
            raise ConfigError(f"bad timeout {seconds!r} for event {event}")
    socketPath = eventSocketPath(config)
    _checkSocketPath(socketPath)
    environment = dict(os.environ)
    # the interpreter txctdb's own scripts run under (docs/EVENTS.md)
    environment.setdefault("CTDB_PYTHON", sys.executable)
    environment.update(config.eventEnvironment)
    return EventService(
        reactor=reactor,
        daemon=daemon,
        eventsDir=config.eventsDir,
        socketPath=socketPath,
        debugScript=config.debugScript,
        environment=environment,
        timeouts=config.eventTimeouts,
    )


def _buildLifecycle(
    config: NodeConfig,
    top: CTDBNode,
    controls: RecoveryControls,
    reactor: ICTDBReactor,
) -> None:
    """For a node that runs event scripts: the events ctdbd drives (init,
    setup, startup, startrecovery, recovered, shutdown), its health from
    the monitor event (the node starts UNHEALTHY, as ctdbd's) and the
    notification script."""
    daemon = top.daemon
    notifier = Notifier(config.notifyScript, reactor=reactor)
    health = HealthMonitor(daemon, reactor=reactor, flags=controls, notifier=notifier)
    health.markUnhealthy()
    lifecycle = EventLifecycle(
        daemon,
        reactor=reactor,
        health=health,
        notifier=notifier,
        waitForRecovery=config.withRecovery,
        # ctdbd's fast_start comes with its test mode
        fastStart=config.fastStart or config.addressTestMode,
    )
    daemon.addRecoveryParticipant(lifecycle)
    EventMetrics(lifecycle).plugInto(daemon)
    lifecycle.setServiceParent(top)
    top.lifecycle = lifecycle
    top.health = health


def _buildTakeover(
    config: NodeConfig, daemon: Daemon, reactor: ICTDBReactor
) -> PublicAddresses:
    """The node side of public-IP takeover, with an empty address list when
    the node has none."""
    system = config.addressSystem
    if system is None:
        if config.addressTestMode:
            system = TestModeAddressSystem()
        else:
            system = LinuxAddressSystem(reactor=reactor)
    addresses = list(config.publicAddresses)
    if config.publicAddressesFile is not None:
        addresses = addressesFromFile(config.publicAddressesFile)
    return PublicAddresses(
        daemon,
        addresses,
        system,
        failoverDisabled=config.failoverDisabled,
        byScripts=config.addressesByScripts or config.addressTestMode,
        checkAddresses=not config.addressTestMode,
        addressesFile=config.publicAddressesFile,
    )


def buildCTDBService(
    *,
    reactor: ICTDBReactor,
    transport: INodeTransport | None = None,
    shutdownCallback: Callable[[], object] | None = None,
    **options: Any,
) -> CTDBNode:
    """
    L{buildNode} with the fields of L{NodeConfig} as keyword arguments, for
    users who embed a node (see the module docstring).
    """
    return buildNode(
        NodeConfig(**options),
        reactor=reactor,
        transport=transport,
        shutdownCallback=shutdownCallback,
    )


class PidFileService(Service):
    """Writes this process's pid to a file while the node runs."""

    name = "pidfile"  # type: ignore[assignment]

    def __init__(self, path: str) -> None:
        self.path = path

    def startService(self) -> None:
        super().startService()
        with open(self.path, "w") as f:
            f.write(f"{os.getpid()}\n")

    def stopService(self) -> None:
        super().stopService()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
