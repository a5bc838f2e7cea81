# -*- test-case-name: tests.databases.test_traverse_steps -*-
"""
Tests for L{ctdb.databases.traverse}: a cluster-wide traverse of a large
database is sent in steps, the sending node's event loop getting turns in
between (a million records sent at once would hold it for seconds and its
peers would declare it dead), and every record still arrives once.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.database.ltdb import LtdbHeader
from ctdb.databases.base import STEP_RECORDS
from ctdb.protocols import records as R
from ctdb.testing import FakeCluster, connectedNodes


class TraverseStepsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster: FakeCluster = connectedNodes(3, self.clock)
        self.addCleanup(self.cluster.stop)
        self.managers = [self.cluster.databases(d.pnn) for d in self.cluster]

    def test_largeTraverseInSteps(self) -> None:
        """Node 1 holds more than two steps' worth of records: all arrive
        at node 0, each once, and a zero-delay call scheduled meanwhile
        runs while node 1 is still sending."""
        count = 2 * STEP_RECORDS + 500
        for m in self.managers:
            m.attach("big.tdb", 0)
        store = self.managers[1].byName["big.tdb"].store
        for i in range(count):
            store.store(b"k%06d" % i, LtdbHeader(1, 1).encode() + b"v%d" % i)
        got: list[R.RecData] = []
        d: defer.Deferred[int] = self.managers[0].traverseAll(
            self.managers[0].byName["big.tdb"], 1, 0x1234, False, onRecord=got.append
        )
        seen: list[int] = []

        def probe() -> None:
            seen.append(len(got))
            if not d.called and len(seen) < 100000:
                self.clock.callLater(0, probe)

        self.clock.callLater(0, probe)
        for _ in range(100):
            self.clock.advance(0.01)
        self.assertEqual(self.successResultOf(d), count)
        self.assertEqual(len(got), count)
        self.assertEqual(len({r.key for r in got}), count)
        self.assertEqual({r.key: r.data[24:] for r in got}[b"k000007"], b"v7")
        self.assertTrue([n for n in seen if 0 < n < count], seen[:20])
