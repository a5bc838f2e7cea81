# -*- test-case-name: tests.events.test_health -*-
"""
Fakes the tests of L{ctdb.events} share: an event runner that answers as
the test says, a notifier that only records, and a cluster of nodes that
run events through them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from ctdb.errors import EventDaemonError
from ctdb.events.health import HealthMonitor
from ctdb.events.lifecycle import EventLifecycle
from ctdb.interfaces import IEventRunner
from ctdb.protocols import controls as C
from ctdb.testing import FakeCluster, connectedNodes

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon


@implementer(IEventRunner)
class FakeEventRunner:
    """
    Answers every event at once with C{results[event]} (0 if not given),
    or fails it when the event is in C{broken}; an event in C{held} waits
    for L{answer}.

    @ivar calls: (time, event, args) of every request, in order.
    @ivar runstates: (event, the daemon's runstate) of every request, once
        C{daemon} is set.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.daemon: Daemon | None = None
        self.calls: list[tuple[float, str, str | None]] = []
        self.runstates: list[tuple[str, C.RunState]] = []
        self.results: dict[str, int] = {}
        self.broken: set[str] = set()
        self.held: set[str] = set()
        self.pending: list[tuple[str, defer.Deferred[int]]] = []

    def runEvent(self, event: str, args: str | None = None) -> defer.Deferred[int]:
        self.calls.append((self.clock.seconds(), event, args))
        if self.daemon is not None:
            self.runstates.append((event, self.daemon.runstate))
        if event in self.broken:
            return defer.fail(EventDaemonError("no event daemon"))
        if event in self.held:
            d: defer.Deferred[int] = defer.Deferred()
            self.pending.append((event, d))
            return d
        return defer.succeed(self.results.get(event, 0))

    def events(self) -> list[str]:
        """The events asked for, in order."""
        return [event for _, event, _ in self.calls]

    def times(self, event: str) -> list[float]:
        """When each C{event} was asked for."""
        return [when for when, name, _ in self.calls if name == event]

    def answer(self, event: str, status: int) -> None:
        """Answer the oldest held C{event} with C{status}."""
        for i, (name, d) in enumerate(self.pending):
            if name == event:
                del self.pending[i]
                d.callback(status)
                return
        raise AssertionError(f"no {event} event is waiting")


def eventCluster(
    n: int,
    clock: Clock,
    *,
    tunables: dict[str, int] | None = None,
    publicAddresses: str | None = None,
    recovery: bool = True,
    prepare: Callable[[FakeEventRunner], object] | None = None,
    start: bool = True,
) -> tuple[FakeCluster, dict[int, FakeEventRunner]]:
    """C{n} nodes, each running its events through a L{FakeEventRunner}
    (by pnn; C{prepare} sees it first) that knows its daemon; started
    unless C{start} is false (then start each with L{startNode})."""
    runners: dict[int, FakeEventRunner] = {}

    def make(pnn: int) -> FakeEventRunner:
        runner = FakeEventRunner(clock)
        if prepare is not None:
            prepare(runner)
        runners[pnn] = runner
        return runner

    cluster = connectedNodes(
        n,
        clock,
        recovery=recovery,
        tunables=tunables,
        publicAddresses=publicAddresses,
        eventRunners=make,
        start=False,
    )
    for pnn, runner in runners.items():
        runner.daemon = cluster[pnn]
    if start:
        for pnn in runners:
            startNode(cluster, pnn)
    return cluster, runners


def startNode(cluster: FakeCluster, pnn: int) -> None:
    """Start node C{pnn} of an unstarted cluster, as connectedNodes does."""
    cluster.node(pnn).startService()
    cluster.flush()


class EventClusterTestCase(SynchronousTestCase):
    """Tests of a started cluster whose nodes run events through
    L{FakeEventRunner}s, with ways to wait in it."""

    clock: Clock
    cluster: FakeCluster
    runners: dict[int, FakeEventRunner]

    def makeCluster(
        self,
        n: int = 3,
        tunables: dict[str, int] | None = None,
        publicAddresses: str | None = None,
        prepare: Callable[[FakeEventRunner], object] | None = None,
        recovery: bool = True,
        start: bool = True,
    ) -> None:
        """The cluster, with RerecoveryTimeout 0 unless C{tunables} say."""
        self.clock = Clock()
        options = {"RerecoveryTimeout": 0}
        options.update(tunables or {})
        self.cluster, self.runners = eventCluster(
            n,
            self.clock,
            tunables=options,
            publicAddresses=publicAddresses,
            prepare=prepare,
            recovery=recovery,
            start=start,
        )
        self.addCleanup(self.cluster.stop)

    def lifecycle(self, pnn: int) -> EventLifecycle:
        lifecycle = self.cluster.node(pnn).lifecycle
        assert lifecycle is not None
        return lifecycle

    def health(self, pnn: int) -> HealthMonitor:
        health = self.cluster.node(pnn).health
        assert health is not None
        return health

    def until(self, condition: Callable[[], bool], limit: float = 120.0) -> None:
        """Let time pass in 0.1 s steps until C{condition} holds."""
        start = self.clock.seconds()
        while not condition():
            if self.clock.seconds() - start > limit:
                self.fail(f"not within {limit} s")
            self.cluster.advance(0.1, step=0.1)

    def monitors(self, pnn: int, count: int) -> None:
        """Until node C{pnn} has asked for C{count} monitor events (and the
        cluster has acted on the last one)."""
        self.until(lambda: len(self.runners[pnn].times("monitor")) >= count)
        self.cluster.advance(1, step=0.1)

    def settle(self) -> None:
        """Until every node is RUNNING and healthy in every node's view."""
        self.until(
            lambda: all(
                d.runstate == C.RunState.RUNNING
                and not any(n.flags & C.NODE_FLAGS_UNHEALTHY for n in d.nodes)
                for d in self.cluster
            )
        )

    def assertGaps(self, times: list[float], expected: list[float]) -> None:
        """The gaps between C{times} are C{expected}, within a time step."""
        gaps = [b - a for a, b in itertools.pairwise(times)]
        self.assertEqual(len(gaps), len(expected), gaps)
        for gap, want in zip(gaps, expected, strict=True):
            self.assertApproximates(gap, want, 0.15, str(gaps))

    def unhealthyEverywhere(self, pnn: int) -> bool:
        return all(d.nodes[pnn].flags & C.NODE_FLAGS_UNHEALTHY for d in self.cluster)

    def healthyEverywhere(self, pnn: int) -> bool:
        return not any(
            d.nodes[pnn].flags & C.NODE_FLAGS_UNHEALTHY for d in self.cluster
        )
