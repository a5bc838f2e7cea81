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
from collections.abc import Callable

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.endpoints import UNIXServerEndpoint
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.internet.posixbase import PosixReactorBase
from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEventAsClassicLogText,
    globalLogPublisher,
)
from zope.interface import implementer

from ctdb.daemon.core import Daemon, DaemonConfig
from ctdb.errors import ConfigError
from ctdb.interfaces import ICTDBReactor, INodeTransport
from ctdb.nodes import NodeMap, readNodesFile
from ctdb.protocols.client import ClientServerFactory, ClientSocketPort
from ctdb.protocols.controls import DEBUG_LEVELS, Tunables
from ctdb.protocols.node import TCPNodeTransport
from ctdb.protocols.packet import CTDB_PORT

DEFAULT_SOCKET = "/run/ctdb/ctdbd.socket"


def twistedLevel(level: int) -> LogLevel:
    """The lowest Twisted log level shown at Samba debug level C{level}:
    ERR -> error, WARNING -> warn, NOTICE/INFO -> info, DEBUG -> debug."""
    if level <= 0:
        return LogLevel.error
    if level < 3:
        return LogLevel.warn
    if level < 10:
        return LogLevel.info
    return LogLevel.debug


def parseDebugLevel(text: str) -> int:
    """A ctdb debug level by name (NOTICE) or number (2)."""
    upper = text.strip().upper()
    if upper in DEBUG_LEVELS:
        return DEBUG_LEVELS[upper]
    try:
        value = int(upper)
    except ValueError:
        raise ConfigError(
            f"invalid log level {text!r} (one of {', '.join(DEBUG_LEVELS)})"
        ) from None
    return value


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


class _LevelFilter:
    """A changeable level filter, so SET_DEBUG takes effect at once."""

    def __init__(self, level: int) -> None:
        self.predicate = LogLevelFilterPredicate(defaultLogLevel=twistedLevel(level))

    def set(self, level: int) -> None:
        self.predicate.setLogLevelForNamespace("", twistedLevel(level))


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


def buildCTDBService(
    *,
    reactor: ICTDBReactor,
    nodesFile: str,
    socketPath: str = DEFAULT_SOCKET,
    address: str | None = None,
    port: int = CTDB_PORT,
    dbDirVolatile: str = "/var/lib/ctdb/volatile",
    dbDirPersistent: str = "/var/lib/ctdb/persistent",
    dbDirState: str = "/var/lib/ctdb/state",
    logFile: str | None = None,
    logLevel: int | str = "NOTICE",
    tunables: dict[str, int] | None = None,
    recoveryLock: str = "",
    transport: INodeTransport | None = None,
    shutdownCallback: Callable[[], object] | None = None,
) -> MultiService:
    """
    A L{MultiService} running one CTDB node: the daemon core (named
    C{"daemon"}) with its node transport, and the client socket (named
    C{"clients"}).  Raises L{ConfigError} for a bad nodes file, a non-local
    address, an unknown tunable or a socket in use.
    """
    nodeMap = readNodesFile(nodesFile)
    pnn, myAddress = chooseNode(nodeMap, address)
    level = parseDebugLevel(logLevel) if isinstance(logLevel, str) else logLevel
    known = Tunables()
    for name in tunables or {}:
        if known.canonical(name) is None:
            raise ConfigError(f"unknown tunable {name}")
    config = DaemonConfig(
        nodeMap=nodeMap,
        pnn=pnn,
        nodesFile=os.path.abspath(nodesFile),
        socketPath=socketPath,
        dbDirVolatile=dbDirVolatile,
        dbDirPersistent=dbDirPersistent,
        dbDirState=dbDirState,
        port=port,
        logLevel=level,
        recoveryLock=recoveryLock,
        tunables=dict(tunables or {}),
    )
    if transport is None:
        transport = TCPNodeTransport(reactor=reactor, address=myAddress, port=port)
    top = MultiService()
    daemon = Daemon(
        reactor=reactor,
        config=config,
        transport=transport,
        shutdownCallback=shutdownCallback,
    )
    from ctdb.daemon.databases import DatabaseManager
    from ctdb.daemon.memdump import installMemoryDump
    from ctdb.daemon.recover import RecoveryControls
    from ctdb.recovery.service import RecoveryService

    DatabaseManager(daemon)
    installMemoryDump(daemon)
    RecoveryControls(daemon)
    recovery = RecoveryService(daemon)
    levelFilter = _LevelFilter(level)
    daemon.setLogLevel = levelFilter.set  # type: ignore[attr-defined]
    if logFile:
        os.makedirs(os.path.dirname(os.path.abspath(logFile)), exist_ok=True)
        # The log stream is open for the whole life of the process.
        stream = open(logFile, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        observer: ILogObserver = FilteringLogObserver(
            FileLogObserver(stream, formatEventAsClassicLogText),
            [levelFilter.predicate],
        )
        globalLogPublisher.addObserver(observer)
    daemon.setName("daemon")
    daemon.setServiceParent(top)
    recovery.setServiceParent(top)
    _checkSocketPath(socketPath)
    clients = StreamServerEndpointService(
        _ClientSocketEndpoint(reactor, socketPath),
        ClientServerFactory(daemon),
    )
    clients._raiseSynchronously = True
    clients.setName("clients")
    clients.setServiceParent(top)
    return top
