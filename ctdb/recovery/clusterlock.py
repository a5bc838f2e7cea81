# -*- test-case-name: tests.recovery.test_service -*-
"""
The optional cluster lock (Samba 4.17 ctdb_cluster_mutex.c).  The lock is
held by a helper process: a file path means Samba's ctdb_mutex_fcntl_helper
(or $CTDB_CLUSTER_MUTEX_HELPER) on that file, ``!helper args`` runs that
command.  The helper writes one character: '0' locked, '1' contended,
'2' timeout, '3' error, and keeps running while it holds the lock; it exits
when the lock is lost or its parent dies.  Stopping it releases the lock.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal

from twisted.internet import defer, protocol
from twisted.internet.error import ProcessExitedAlready
from twisted.logger import Logger
from twisted.python.failure import Failure

from ctdb.interfaces import ICTDBReactor

DEFAULT_HELPER = "/usr/libexec/ctdb/ctdb_mutex_fcntl_helper"

RESULTS = {b"0": "locked", b"1": "contended", b"2": "timeout", b"3": "error"}


def helperArgv(spec: str) -> list[str]:
    """The command line that takes the lock described by C{spec}."""
    spec = spec.strip()
    if spec.startswith("!"):
        argv = shlex.split(spec[1:])
        if not argv:
            raise ValueError("empty cluster lock helper command")
        return argv
    helper = os.environ.get("CTDB_CLUSTER_MUTEX_HELPER", DEFAULT_HELPER)
    return [helper, spec]


class _HelperProtocol(protocol.ProcessProtocol):
    def __init__(self, lock: ClusterLock) -> None:
        self.lock = lock
        self.result: defer.Deferred[str] = defer.Deferred()
        self.exited: defer.Deferred[None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        if not self.result.called and data:
            self.result.callback(RESULTS.get(data[:1], "error"))

    def processEnded(self, reason: Failure) -> None:
        if not self.result.called:
            self.result.callback("error")
        self.exited.callback(None)
        self.lock._helperExited(self)


class ClusterLock:
    """Take, hold and release the cluster lock through its helper."""

    log = Logger()

    def __init__(
        self, *, reactor: ICTDBReactor, spec: str, timeout: float = 10.0
    ) -> None:
        self.reactor = reactor
        self.spec = spec
        self.timeout = timeout
        self._proto: _HelperProtocol | None = None
        self._transport: object = None
        self.held = False
        self.onLost: list = []  # callables, called when a held lock is lost

    async def take(self) -> bool:
        """Try once; True if we now hold the lock."""
        return await self.attempt() == "locked"

    async def attempt(self) -> str:
        """Try once: C{"locked"} (we now hold the lock), C{"contended"}
        (someone else holds it), C{"timeout"} or C{"error"}."""
        if self.held:
            return "locked"
        argv = helperArgv(self.spec)
        proto = _HelperProtocol(self)
        self._proto = proto
        try:
            self._transport = self.reactor.spawnProcess(
                proto,
                argv[0],
                argv,
                env=dict(os.environ),
                childFDs={0: "w", 1: "r", 2: 2},
            )
        except OSError as e:
            self.log.error(
                "Unable to run cluster lock helper {argv}: {err}", argv=argv, err=str(e)
            )
            return "error"
        result = proto.result
        result.addTimeout(
            self.timeout, self.reactor, onTimeoutCancel=lambda *a: "timeout"
        )
        outcome = await result
        if outcome == "locked":
            self.held = True
            self.log.info("Took cluster lock {spec}", spec=self.spec)
            return outcome
        self.log.info("Cluster lock {spec}: {outcome}", spec=self.spec, outcome=outcome)
        await self._stop(proto)
        return outcome

    async def release(self) -> None:
        proto = self._proto
        self.held = False
        if proto is not None:
            await self._stop(proto)

    async def _stop(self, proto: _HelperProtocol) -> None:
        if proto.exited.called:
            return
        transport = proto.transport
        if transport is not None:
            # It may have exited already (ProcessExitedAlready) or be gone
            # (OSError from kill); either way proto.exited fires.
            with contextlib.suppress(ProcessExitedAlready, OSError):
                transport.signalProcess(signal.SIGTERM)
        await proto.exited

    def _helperExited(self, proto: _HelperProtocol) -> None:
        if proto is not self._proto:
            return
        self._proto = None
        if self.held:
            self.held = False
            self.log.error("Cluster lock helper exited: cluster lock lost")
            for callback in list(self.onLost):
                callback()


#: how long the daemon's own check of the lock may take (set_recmode's 5 s)
CHECK_TIMEOUT = 5.0


async def checkClusterLock(
    *, reactor: ICTDBReactor, spec: str, timeout: float = CHECK_TIMEOUT
) -> str:
    """
    The daemon's check of the cluster lock when a recovery ends
    (ctdb_control_set_recmode's ctdb_cluster_mutex call): try to take the
    lock once, as a process of its own, and give it back at once if that
    worked.  While the leader holds the lock the answer is C{"contended"};
    C{"locked"} means nobody held it, so the leader recovered without it
    (a cluster file system whose locks are not coherent); C{"timeout"} and
    C{"error"} as for L{ClusterLock.attempt}.
    """
    probe = ClusterLock(reactor=reactor, spec=spec, timeout=timeout)
    outcome = await probe.attempt()
    if probe.held:
        await probe.release()
    return outcome
