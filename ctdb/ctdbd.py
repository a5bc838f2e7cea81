# -*- test-case-name: tests.integration.test_ctdbd_dropin -*-
"""
``ctdbd``: a drop-in for Samba 4.17's ctdbd command.

    CTDB_BASE=/etc/ctdb ctdbd        # fork into the background
    ctdbd -i                         # stay in the foreground, log to stderr

Like ctdbd it takes its configuration from ``<etcdir>/ctdb.conf`` (Samba's
sections and keys, checked as ctdbd checks them; see L{ctdb.config}),
``$CTDB_BASE/nodes`` and ``<etcdir>/ctdb.tunables``, finds its directories by
Samba's path rules (``CTDB_TEST_MODE`` puts run/, var/ and share/ under
``CTDB_BASE``), creates ``<rundir>/ctdbd.socket`` and ``<rundir>/ctdbd.pid``,
runs the event scripts of ``<etcdir>/events`` with txctdb's own event daemon
(L{ctdb.events}; it serves ``<rundir>/eventd.socket`` as ctdb-eventd does,
and ``$CTDB_EVENTD`` is ignored with a notice in the log), serves
the public addresses of ``$CTDB_BASE/public_addresses`` (moved by the event
scripts, Samba's ``10.interface``, as ctdbd; in test mode nothing on the
host changes), and exits after a ``ctdb shutdown``.  The node itself is
L{ctdb.service.buildCTDBService}, as for ``twistd ctdb`` and
``ctdb-cluster``.

Start-up: the parent checks the configuration (refusing with ctdbd's
messages on stderr), forks, and returns 0 once the child is listening on its
socket, or 1 with the child's error.  The child keeps stdin, as ctdbd does
in test mode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from twisted.logger import Logger, globalLogBeginner, textFileLogObserver

from ctdb.config import (
    ERR,
    CTDBConfig,
    CTDBPaths,
    Message,
    checkDatabaseDirectories,
    loadConfig,
    loadPublicAddresses,
    loadTunables,
)
from ctdb.errors import ConfigError, ConfigLoadError
from ctdb.logfilter import jsonLogObserver, twistedLevel
from ctdb.protocols.debuglevels import DEBUG_ERR, debugLevelName
from ctdb.service import NodeConfig, buildNode
from ctdb.transports.reactor import installUnlessChosen

USAGE = """\
Usage: ctdbd [OPTION...]
  -i, --interactive     don't fork, log to stderr

Help options:
  -?, --help            Show this help message
      --usage           Display brief usage message
"""


def _emit(messages: Sequence[Message], stream: Any, minimum: int = DEBUG_ERR) -> None:
    """Write the messages at debug level C{minimum} or more severe."""
    for m in messages:
        if m.debugLevel <= minimum:
            stream.write(m.text + "\n")
    stream.flush()


def prepare(
    environ: dict[str, str],
) -> tuple[CTDBPaths, CTDBConfig, dict[str, int], list[Message]]:
    """Everything ctdbd checks before it forks.  Raises L{ConfigLoadError}.
    The messages returned are those of ctdb.tunables, which ctdbd logs (to
    its log, not stderr) and otherwise ignores."""
    paths = CTDBPaths.fromEnvironment(environ)
    config = loadConfig(paths)
    checkDatabaseDirectories(config)
    if not os.path.exists(paths.nodesFile):
        raise ConfigLoadError(
            [Message(ERR, f'Failed to read nodes file "{paths.nodesFile}"')]
        )
    tunables, msgs = loadTunables(paths)
    publicAddresses, pmsgs = loadPublicAddresses(paths)
    if any(m.level == ERR for m in pmsgs):
        raise ConfigLoadError(pmsgs)
    config.publicAddresses = publicAddresses
    return paths, config, tunables, msgs + pmsgs


def _logMessages(messages: Sequence[Message]) -> None:
    log = Logger(namespace="ctdbd")
    for m in messages:
        log.emit(twistedLevel(m.debugLevel), "{text}", text=m.text)


def runDaemon(
    paths: CTDBPaths,
    config: CTDBConfig,
    tunables: dict[str, int],
    *,
    interactive: bool,
    ready: Any = None,
) -> int:
    """
    The daemon process: build the node (its event daemon with it), run the
    reactor.  C{ready(error)} is called once: with None when the socket is
    listening, or with the reason we could not start.
    """
    # The global reactor is installed here, in the daemon process, never by
    # importing this module: the ctdbd command's parent process, which only
    # starts this one and waits, needs none.
    installUnlessChosen()
    from twisted.internet import reactor

    log = Logger(namespace="ctdbd")
    if interactive:
        globalLogBeginner.beginLoggingTo(
            [
                jsonLogObserver(sys.stderr)
                if config.logFormat == "json"
                else textFileLogObserver(sys.stderr)
            ]
        )
    else:
        globalLogBeginner.beginLoggingTo(
            [], discardBuffer=True, redirectStandardIO=False
        )

    def fail(text: str) -> int:
        if ready is not None:
            ready(text)
        else:
            sys.stderr.write(text + "\n")
        return 1

    os.makedirs(paths.rundir, exist_ok=True)
    socketPath = paths.socket("ctdbd")
    pidFile = paths.pidFile("ctdbd")
    os.environ["CTDB_LOGGING"] = config.logLocation
    os.environ["CTDB_DEBUGLEVEL"] = debugLevelName(config.logLevel)
    stopping: list[bool] = []
    top: Any = None

    def shutdownSequence() -> None:
        """ctdb_shutdown_sequence: stop; the node runs its shutdown event
        first (L{ctdb.service.CTDBNode.stopService}), then the services
        stopping remove the pid file and stop the event daemon before the
        daemon closes its clients (whose tool waits for that)."""
        if stopping:
            return
        stopping.append(True)
        reactor.stop()

    try:
        top = buildNode(
            NodeConfig(
                nodesFile=paths.nodesFile,
                socketPath=socketPath,
                address=config.nodeAddress,
                transport=str(config.get("cluster", "transport")),
                heartbeat=config.heartbeat,
                dbDirVolatile=config.dbDirVolatile,
                dbDirPersistent=config.dbDirPersistent,
                dbDirState=config.dbDirState,
                logFile=None if interactive else config.logFile,
                logLevel=config.logLevel,
                logFormat=config.logFormat,
                tunables=tunables,
                recoveryLock=config.clusterLock or "",
                leaderCapability=bool(config.get("cluster", "leader capability")),
                lmasterCapability=bool(config.get("legacy", "lmaster capability")),
                startStopped=bool(config.get("legacy", "start as stopped")),
                startDisabled=bool(config.get("legacy", "start as disabled")),
                publicAddressesFile=paths.publicAddressesFile,
                failoverDisabled=config.failoverDisabled,
                # as ctdbd: the event scripts (10.interface) move addresses
                addressesByScripts=True,
                addressTestMode=paths.testMode,
                # our event daemon, where ctdb-eventd looks (event_context.c)
                eventsDir=os.path.join(paths.etcdir, "events"),
                eventSocket=paths.socket("eventd"),
                debugScript=_debugScript(paths, config),
                notifyScript=os.path.join(paths.etcdir, "notify.sh"),
                pidFile=pidFile,
                metricsEndpoint=config.metricsEndpoint,
            ),
            reactor=reactor,  # type: ignore[arg-type]
            shutdownCallback=shutdownSequence,
        )
    except (ConfigError, OSError) as e:
        return fail(f"ctdbd: {e}")
    _logMessages(config.messages)
    if "CTDB_EVENTD" in os.environ:
        log.info(
            "CTDB_EVENTD={path} is ignored: txctdb runs event scripts itself",
            path=os.environ["CTDB_EVENTD"],
        )
    if config.clusterLock is None:
        log.warn("Cluster lock not set")

    def start() -> None:
        try:
            top.startService()
        except Exception as e:  # noqa: BLE001 - reported to the waiting parent
            fail(f"ctdbd: {e}")
            reactor.stop()
            return
        if ready is not None:
            ready(None)

    def stop() -> Any:
        return top.stopService() if top.running else None

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", stop)
    reactor.run()
    return 0


def _debugScript(paths: CTDBPaths, config: CTDBConfig) -> str | None:
    """C{[event] debug script}, a path under etcdir (event_context.c)."""
    script = config.eventDebugScript
    if not script:
        return None
    return os.path.join(paths.etcdir, script)


def daemonExecutable() -> str:
    """
    The interpreter the daemon runs as.  Samba's tests check that
    C{/proc/<ctdb getpid>/exe} is called C{ctdbd}, so in a virtualenv we
    keep a copy (or hard link) of the interpreter named C{ctdbd} in
    C{<venv>/libexec/}; Python finds the venv through the C{pyvenv.cfg} one
    level up.  Elsewhere, or if that cannot be made, the plain interpreter.
    """
    real = os.path.realpath(sys.executable)
    if sys.prefix == sys.base_prefix:
        return real
    target = os.path.join(sys.prefix, "libexec", "ctdbd")
    try:
        st, rt = os.stat(target), os.stat(real)
        if st.st_size == rt.st_size and st.st_mtime >= rt.st_mtime:
            return target
    except OSError:
        pass
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.{os.getpid()}"
        try:
            os.link(real, tmp)
        except OSError:
            shutil.copy2(real, tmp)
        os.replace(tmp, target)
        return target
    except OSError:
        return real


READY_FD = "TXCTDB_READY_FD"


def _daemonise() -> int:
    """
    Start the daemon process (stdin kept, as ctdbd in test mode; its own
    session) and return once it is listening (0) or has failed (1, with
    its reason on stderr).
    """
    rfd, wfd = os.pipe()
    exe = daemonExecutable()
    env = dict(os.environ)
    env[READY_FD] = str(wfd)
    try:
        subprocess.Popen(
            [exe, "-m", "ctdb.ctdbd"],
            executable=exe,
            env=env,
            pass_fds=(wfd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as e:
        sys.stderr.write(f"ctdbd: cannot start the daemon: {e}\n")
        return 1
    finally:
        os.close(wfd)
    chunks = []
    while True:
        chunk = os.read(rfd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    answer = b"".join(chunks)
    if answer.startswith(b"\0"):
        return 0
    sys.stderr.write(
        (answer.decode(errors="replace") or "ctdbd: daemon exited during start-up")
        + "\n"
    )
    return 1


def _child(
    paths: CTDBPaths, config: CTDBConfig, tunables: dict[str, int], wfd: int
) -> int:
    """The daemon process started by L{_daemonise}."""
    sent: list[bool] = []

    def ready(error: str | None) -> None:
        if sent:
            return
        sent.append(True)
        try:
            os.write(wfd, b"\0" if error is None else error.encode())
        finally:
            os.close(wfd)

    code = 1
    try:
        code = runDaemon(paths, config, tunables, interactive=False, ready=ready)
    except BaseException as e:  # noqa: BLE001 - report anything to the waiting parent
        ready(f"ctdbd: {e!r}")
    finally:
        ready("ctdbd: daemon exited during start-up")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    interactive = False
    for arg in args:
        if arg in ("-i", "--interactive"):
            interactive = True
        elif arg in ("-?", "--help", "--usage"):
            sys.stdout.write(USAGE)
            return 0
        elif arg.startswith("-"):
            sys.stderr.write(f"Invalid option {arg}: unknown option\n")
            return 1
        else:
            sys.stdout.write(USAGE)
            return 1
    environ = dict(os.environ)
    environ.setdefault("CTDB_BASE", "/etc/ctdb")
    os.environ["CTDB_BASE"] = environ["CTDB_BASE"]
    try:
        paths, config, tunables, tunableMessages = prepare(environ)
    except ConfigLoadError as e:
        _emit(e.messages, sys.stderr, DEBUG_ERR)
        return 1
    # Before its logging is set up, ctdbd prints only errors (to stderr);
    # the rest goes to its log once that is open.
    config.messages.extend(tunableMessages)
    if interactive:
        os.environ["CTDB_INTERACTIVE"] = "true"
        return runDaemon(paths, config, tunables, interactive=True)
    readyFd = os.environ.pop(READY_FD, None)
    if readyFd is not None:
        return _child(paths, config, tunables, int(readyFd))
    return _daemonise()


if __name__ == "__main__":
    sys.exit(main())
