# -*- test-case-name: tests.integration.test_helpers -*-
"""
What Samba's test helper programs share (``tests/src/test_options.c``,
``cluster_wait.c``, ``common/path.c``, ``common/logging.c`` and the parts
of ``client/`` they use): the socket path rules, the popt options, logging
to stderr at a debug level, waiting for recovery, waiting for the same
program on every node, and a read-only fetch-lock.
"""

from __future__ import annotations

import errno
import os
import struct
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, TextIO, TypeVar

from twisted.internet import defer, task
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogEvent,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)
from twisted.python import usage
from twisted.python.failure import Failure
from zope.interface import implementer

from ctdb.client import CTDBClient, Database, connect
from ctdb.database.ltdb import (
    CTDB_REC_RO_HAVE_DELEGATIONS,
    CTDB_REC_RO_HAVE_READONLY,
    LtdbHeader,
    splitValue,
)
from ctdb.errors import ConnectionClosed, ControlTimeout, FetchLockError
from ctdb.interfaces import ICTDBReactor
from ctdb.logfilter import twistedLevel
from ctdb.protocols.controls import Control
from ctdb.protocols.debuglevels import DEBUG_DEBUG, parseDebugLevel
from ctdb.protocols.nodestate import CTDB_RECOVERY_NORMAL
from ctdb.protocols.packet import (
    CTDB_BROADCAST_CONNECTED,
    CTDB_IMMEDIATE_MIGRATION,
    CTDB_NULL_FUNC,
    CTDB_WANT_READONLY,
    ReplyCall,
)
from ctdb.protocols.srvids import CTDB_SRVID_TEST_RANGE

#: cluster_wait.c: node N says it is ready / node 0 says everyone is.
MSG_ID_JOIN = CTDB_SRVID_TEST_RANGE | 0x1
MSG_ID_SYNC = CTDB_SRVID_TEST_RANGE | 0x2
#: cluster_wait.c gives up after this long.
CLUSTER_WAIT_TIMEOUT = 30.0
#: ctdb_recovery_wait() polls the recovery mode this often ...
RECOVERY_POLL = 1.0
#: ... and we give up after this many polls (Samba's loops forever).
RECOVERY_POLLS = 600

#: Bound on any one request where Samba's programs set none.
REQUEST_TIMEOUT = 60.0

# -- paths ---------------------------------------------------------------------

#: The compiled-in run directory of Debian's ctdb (``ctdb-path rundir``).
RUNDIR = "/run/ctdb"


def socketPath(environ: Mapping[str, str] | None = None) -> str:
    """
    C{path_socket("ctdbd")}: C{$CTDB_SOCKET} if set; otherwise, in test
    mode (C{$CTDB_TEST_MODE} set), C{$CTDB_BASE/run/ctdbd.socket}; else the
    compiled-in run directory's C{ctdbd.socket}.

    @raise SystemExit: test mode without C{CTDB_BASE} (Samba aborts).
    """
    env = os.environ if environ is None else environ
    override = env.get("CTDB_SOCKET")
    if override is not None:
        return override
    if "CTDB_TEST_MODE" in env:
        base = env.get("CTDB_BASE")
        if base is None:
            sys.stderr.write("Broken CTDB setup, CTDB_BASE not set in test mode\n")
            raise SystemExit(134)
        return os.path.join(base, "run", "ctdbd.socket")
    return os.path.join(RUNDIR, "ctdbd.socket")


# -- logging (common/logging.c) -----------------------------------------------


@implementer(ILogObserver)
class _StderrObserver:
    """One line per event, as ctdb's DEBUG_STDERR logging: C{prog[pid]: text}."""

    def __init__(self, prog: str, stream: TextIO) -> None:
        self.prog = prog
        self.stream = stream

    def __call__(self, event: LogEvent) -> None:
        text = formatEvent(event)
        failure = event.get("log_failure")
        if failure is not None:
            text = f"{text}\n{failure.getTraceback()}"
        for line in text.rstrip("\n").split("\n"):
            self.stream.write(f"{self.prog}[{os.getpid()}]: {line}\n")
        self.stream.flush()


def startLogging(prog: str, level: int, stream: TextIO | None = None) -> None:
    """C{setup_logging(prog, DEBUG_STDERR)} + C{debuglevel_set(level)}."""
    predicate = LogLevelFilterPredicate(defaultLogLevel=twistedLevel(level))
    # Twisted's own chatter ("Starting factory ...") only from warnings up
    quiet = LogLevel.warn if level < DEBUG_DEBUG else LogLevel.debug
    for namespace in ("twisted", "log_legacy"):
        predicate.setLogLevelForNamespace(namespace, quiet)
    observer = FilteringLogObserver(
        _StderrObserver(prog, sys.stderr if stream is None else stream), [predicate]
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def err(text: str) -> None:
    """A message to stderr, as the C programs' C{fprintf(stderr, ...)}."""
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.flush()


def out(text: str) -> None:
    """A line to stdout, flushed (the tests read it through a pipe)."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


# -- options (tests/src/test_options.c) -----------------------------------------


class _PoptOptions(usage.Options):
    """popt-like: left-over arguments are ignored, as POPT_CONTEXT_KEEP_FIRST."""

    def parseArgs(self, *args: str) -> None:
        self["args"] = list(args)


class BasicOptions(_PoptOptions):
    """C{process_options_basic}: -s -t -n -d -i."""

    optParameters: ClassVar[list[list[Any]]] = [
        ["socket", "s", None, "CTDB socket path"],
        ["timelimit", "t", 10, "Time limit (in seconds)", int],
        ["num-nodes", "n", 1, "Number of cluster nodes", int],
        ["debug", "d", "ERR", "Debug level"],
    ]
    optFlags: ClassVar[list[list[str]]] = [["interactive", "i", "Interactive output"]]

    def postOptions(self) -> None:
        level = parseDebugLevel(self["debug"])
        if level is None:
            raise usage.UsageError(f"Error: Invalid debug string '{self['debug']}'")
        self["level"] = level
        if self["socket"] is None:
            self["socket"] = socketPath()


class DatabaseOptions(BasicOptions):
    """C{process_options_database}: the basic options and -D -k -v -T."""

    optParameters: ClassVar[list[list[Any]]] = [
        ["database", "D", None, "CTDB database name"],
        ["key", "k", None, "Name of database key"],
        ["value", "v", None, "Value of database key"],
        ["dbtype", "T", "volatile", "CTDB database type"],
    ]

    def postOptions(self) -> None:
        super().postOptions()
        if self["database"] is None:
            raise usage.UsageError("Error: Please specify database")
        if self["key"] is None:
            raise usage.UsageError("Error: Please specify key name")
        if self["dbtype"] not in ("volatile", "persistent", "replicated"):
            raise usage.UsageError(f"Error: Invalid database type '{self['dbtype']}'")


O = TypeVar("O", bound=usage.Options)


def parseOptions(options: O, argv: Sequence[str]) -> O:
    """
    Parse C{argv} (without the program name) into C{options}; on a usage
    error print the message and exit 1, as the C programs.
    """
    try:
        options.parseOptions(list(argv))
    except usage.UsageError as e:
        err(str(e))
        raise SystemExit(1) from None
    return options


# -- running --------------------------------------------------------------------


def runMain(
    main: Callable[[ICTDBReactor, list[str]], Awaitable[int | None]],
    argv: Sequence[str] | None = None,
) -> None:
    """
    Run C{main(reactor, argv)} under C{task.react}; its result (or a
    C{SystemExit}) is the exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)

    async def wrapper(reactor: ICTDBReactor) -> None:
        code = await main(reactor, args)
        if code:
            raise SystemExit(code)

    task.react(wrapper)


def errnoOf(exc: BaseException) -> int:
    """The errno a C client would have seen for C{exc}."""
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    inner = getattr(exc, "osError", None)  # ConnectError wraps it sometimes
    if isinstance(inner, OSError) and inner.errno:
        return inner.errno
    if isinstance(exc, (ControlTimeout, defer.TimeoutError, TimeoutError)):
        return errno.ETIMEDOUT
    if isinstance(exc, ConnectionClosed):
        return errno.EPIPE
    text = str(exc)
    for name in ("ENOENT", "ECONNREFUSED", "EACCES"):
        if os.strerror(getattr(errno, name)) in text:
            return int(getattr(errno, name))
    return errno.EIO


async def connectClient(
    reactor: ICTDBReactor,
    path: str,
    message: str = "Failed to initialize client, ret={ret}",
) -> CTDBClient:
    """
    C{ctdb_client_init}: connect and learn this node's PNN, or print
    C{message} (with C{{ret}}, C{{path}}, C{{error}}) and exit 1.
    """
    try:
        return await connect(reactor, path, timeout=REQUEST_TIMEOUT)
    except Exception as e:  # noqa: BLE001 - any failure to connect ends the program
        code = errnoOf(e)
        err(message.format(ret=code, path=path, error=os.strerror(code)))
        raise SystemExit(1) from None


def sleep(reactor: ICTDBReactor, seconds: float) -> defer.Deferred[None]:
    """A Deferred that fires after C{seconds} (C{tevent_wakeup_send})."""
    return task.deferLater(reactor, seconds, lambda: None)


async def recoveryWait(client: CTDBClient) -> None:
    """
    C{ctdb_recovery_wait}: poll GET_RECMODE on this node every second
    until it is NORMAL.

    @raise ControlTimeout: still in recovery after L{RECOVERY_POLLS} polls.
    """
    for _ in range(RECOVERY_POLLS):
        reply = await client.control(Control.GET_RECMODE, destnode=client.pnn)
        if reply.status == CTDB_RECOVERY_NORMAL:
            return
        await sleep(client.reactor, RECOVERY_POLL)
    raise ControlTimeout("recovery did not finish")


async def waitRecovered(client: CTDBClient) -> bool:
    """L{recoveryWait}, printing the C programs' "Failed to wait for
    recovery" and answering False when it does not succeed."""
    try:
        await recoveryWait(client)
    except Exception:  # noqa: BLE001 - any failure ends the program the same way
        err("Failed to wait for recovery")
        return False
    return True


async def clusterWait(client: CTDBClient, numNodes: int) -> None:
    """
    C{cluster_wait_send}: wait until the same program runs on nodes
    0..numNodes-1.  Node 0 registers L{MSG_ID_JOIN} and prints "Waiting for
    cluster"; every node registers L{MSG_ID_SYNC} and then sends its PNN to
    node 0 every second; once node 0 has heard from all, it deregisters
    JOIN and broadcasts SYNC to the connected nodes.

    @raise defer.TimeoutError: not synchronised within 30 s.
    """
    reactor = client.reactor
    pnn = client.pnn
    ready = [False] * numNodes
    joinDone = False
    synced: defer.Deferred[None] = defer.Deferred()

    def fail(reason: Failure) -> None:
        if not synced.called:
            synced.errback(reason)

    def onJoin(srvid: int, data: bytes) -> None:
        nonlocal joinDone
        if srvid != MSG_ID_JOIN or len(data) != 4:
            return
        (node,) = struct.unpack("<I", data)
        if node >= numNodes:
            return
        ready[node] = True
        if not all(ready) or joinDone:
            return
        joinDone = True
        d = defer.ensureDeferred(client.deregisterSrvid(MSG_ID_JOIN, onJoin))
        d.addCallback(
            lambda _: client.sendMessage(CTDB_BROADCAST_CONNECTED, MSG_ID_SYNC, b"")
        )
        d.addErrback(fail)

    def onSync(srvid: int, data: bytes) -> None:
        if srvid == MSG_ID_SYNC and not synced.called:
            synced.callback(None)

    def join() -> None:
        client.sendMessage(0, MSG_ID_JOIN, struct.pack("<I", pnn))

    synced.addTimeout(CLUSTER_WAIT_TIMEOUT, reactor)
    if pnn == 0:
        await client.registerSrvid(MSG_ID_JOIN, onJoin)
        out("Waiting for cluster")
    await client.registerSrvid(MSG_ID_SYNC, onSync)
    joiner = task.LoopingCall(join)
    joiner.clock = reactor
    joining = joiner.start(1.0, now=False)
    joining.addErrback(fail)
    try:
        await synced
    finally:
        if joiner.running:
            joiner.stop()
        if pnn == 0 and not joinDone:
            await client.deregisterSrvid(MSG_ID_JOIN, onJoin)
    await client.deregisterSrvid(MSG_ID_SYNC, onSync)


# -- records ----------------------------------------------------------------------


async def _chainLock(db: Database, key: bytes, timeout: float) -> None:
    reactor = db.client.reactor
    deadline = reactor.seconds() + timeout
    delay = 0.0002
    while not db.tdb.chainLockNonblock(key):
        if reactor.seconds() > deadline:
            raise FetchLockError(f"fetch_lock: {db.name} chain lock timed out")
        await sleep(reactor, delay)
        delay = min(delay * 2, 0.02)


async def fetchReadonly(
    db: Database, key: bytes, timeout: float = 60.0
) -> tuple[LtdbHeader, bytes]:
    """
    C{ctdb_fetch_lock(..., readonly=true)}, then release: lock the chain;
    if the record is missing, or this node is neither its dmaster nor holds
    a read-only copy or delegations, unlock and ask the daemon to migrate it
    (REQ_CALL {IMMEDIATE_MIGRATION | WANT_READONLY, NULL_FUNC}), and look
    again.

    @return: the header and data seen under the lock.
    @raise FetchLockError: the call failed or C{timeout} passed.
    """
    if not db.volatile:
        raise FetchLockError(f"fetch_lock: {db.name} database not volatile")
    client = db.client
    reactor = client.reactor
    deadline = reactor.seconds() + timeout
    while True:
        await _chainLock(db, key, timeout)
        try:
            header, data = splitValue(db.tdb.fetch(key))
        finally:
            db.tdb.chainUnlock(key)
        if header is not None and (
            header.dmaster == client.pnn
            or header.flags & (CTDB_REC_RO_HAVE_READONLY | CTDB_REC_RO_HAVE_DELEGATIONS)
        ):
            return header, data
        if reactor.seconds() > deadline:
            raise FetchLockError(f"fetch_lock: {db.name} record not fetched in time")
        reply = await client.connection.call(
            db.db_id,
            key,
            callid=CTDB_NULL_FUNC,
            flags=CTDB_IMMEDIATE_MIGRATION | CTDB_WANT_READONLY,
        )
        if not isinstance(reply, ReplyCall) or reply.status != 0:
            raise FetchLockError(f"fetch_lock: {db.name} CALL failed")
