# -*- test-case-name: tests.tool.test_commands, tests.tool.test_main, tests.monitor.test_main -*-
"""
The tool against an in-memory cluster (L{ctdb.testing.connectedNodes}) on
one L{MemoryReactorClock}: node K's client socket is the path
C{/fake/nodeK.socket}; L{ToolReactor.connectUNIX} wires the tool's
connection to that node's daemon through L{twisted.test.iosim}.
"""

from __future__ import annotations

import errno
import io
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet import defer, error
from twisted.internet.interfaces import IConnector
from twisted.internet.protocol import ClientFactory
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.test import iosim

from ctdb.testing import FakeCluster, connectedNodes
from ctdb.tool.main import run
from ctdb.transports.clientsocket import ClientProtocol


def socketOf(pnn: int) -> str:
    return f"/fake/node{pnn}.socket"


class ToolReactor(MemoryReactorClock):
    """A memory reactor whose UNIX connections reach a cluster's daemons."""

    def __init__(self) -> None:
        super().__init__()
        self.cluster: FakeCluster | None = None
        self.pumps: list[iosim.IOPump] = []

    def connectUNIX(
        self,
        address: str,
        factory: ClientFactory,
        timeout: float = 30,
        checkPID: int = 0,
    ) -> IConnector:
        connector = super().connectUNIX(address, factory, timeout, checkPID)
        assert self.cluster is not None
        daemon = None
        for pnn in range(len(self.cluster.nodeMap.nodes)):
            if socketOf(pnn) == address:
                try:
                    daemon = self.cluster[pnn]
                except KeyError:
                    daemon = None
        if daemon is None or not daemon.running:
            reason = error.ConnectError(
                osError=OSError(errno.ENOENT, "No such file or directory")
            )
            self.callLater(
                0, factory.clientConnectionFailed, connector, Failure(reason)
            )
            return connector
        client = factory.buildProtocol(None)
        server = ClientProtocol(daemon)
        self.pumps.append(
            iosim.connect(
                server,
                iosim.FakeTransport(server, True),
                client,
                iosim.FakeTransport(client, False),
                clock=self,
            )
        )
        return connector

    def drive(self, d: defer.Deferred[Any], seconds: float = 600.0) -> None:
        """Move packets and time along until C{d} fires (or C{seconds} pass)."""
        end = self.seconds() + seconds
        while not d.called and self.seconds() < end:
            for pump in list(self.pumps):
                pump.flush()
            if d.called:
                break
            self.advance(0.05)


def startCluster(
    n: int = 3, publicAddresses: str | dict[int, str] | None = None, **kw: Any
) -> tuple[ToolReactor, FakeCluster]:
    """A settled cluster of C{n} nodes with recovery (a leader, NORMAL)."""
    reactor = ToolReactor()
    cluster = connectedNodes(
        n, reactor, recovery=True, publicAddresses=publicAddresses, **kw
    )
    reactor.cluster = cluster
    cluster.advance(6, step=0.05)
    return reactor, cluster


def runProgram(
    reactor: ToolReactor,
    program: Callable[[io.StringIO, io.StringIO], Coroutine[Any, Any, int]],
    what: str,
    seconds: float = 600.0,
) -> tuple[int, str, str]:
    """Run C{program(stdout, stderr)} (a command's C{run}) on C{reactor}
    to its end: (exit status, stdout, stderr).  An exception it raises is
    raised here; one that does not finish within C{seconds} fails, naming
    C{what}."""
    out, err = io.StringIO(), io.StringIO()
    d = defer.ensureDeferred(program(out, err))
    reactor.drive(d, seconds)
    results: list[int] = []
    failures: list[Failure] = []
    d.addCallbacks(results.append, failures.append)
    if failures:
        failures[0].raiseException()
    assert results, f"{what} did not finish"
    return results[0], out.getvalue(), err.getvalue()


def runTool(
    reactor: ToolReactor,
    args: list[str],
    pnn: int = 0,
    environ: dict[str, str] | None = None,
    stdin: str = "",
) -> tuple[int, str, str]:
    """Run the tool against node C{pnn}: (exit status, stdout, stderr)."""
    env = {"CTDB_SOCKET": socketOf(pnn)}
    env.update(environ or {})
    return runProgram(
        reactor,
        lambda out, err: run(
            reactor,  # type: ignore[arg-type]
            args,
            stdout=out,
            stderr=err,
            environ=env,
            stdin=io.StringIO(stdin),
        ),
        f"the tool: {args}",
    )
