# -*- test-case-name: tests.recovery.test_partitions -*-
"""
Tests for L{ctdb.recovery.partitions} and the rules built on it in
L{ctdb.recovery.monitoring}: a partial partition (two nodes cut from each
other, both linked to the leader) is found in the node maps and one node
of the pair is banned until the pair is linked again; a node that sees a
peer it declared dead come back asks the leader for a recovery.

The clusters run txctdb's heartbeat (C{connectedNodes(heartbeat=...)}) on
one L{Clock}; with every node started at once the highest pnn leads.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.daemon.core import Daemon
from ctdb.protocols import controls as C
from ctdb.recovery.partitions import (
    PARTITION_BAN_PERIOD,
    PARTITION_GRACE,
    CutTracker,
    cutPairs,
    excludedNodes,
)
from ctdb.recovery.service import RecoveryService
from ctdb.testing import FakeCluster, connectedNodes

D = C.NODE_FLAGS_DISCONNECTED | C.NODE_FLAGS_UNHEALTHY


class CutPairsTests(SynchronousTestCase):
    """L{cutPairs}: the pairs one of which flags the other DISCONNECTED."""

    def test_bridge(self) -> None:
        """0 and 1 flag each other; both see 2; 2 sees both."""
        views = {0: {0: 0, 1: D, 2: 0}, 1: {0: D, 1: 0, 2: 0}, 2: {0: 0, 1: 0, 2: 0}}
        self.assertEqual(cutPairs(views, [0, 1, 2]), {(0, 1)})

    def test_oneSided(self) -> None:
        """One side's view is enough, and a missing view says nothing."""
        views = {0: {1: 0}, 1: {0: 0, 2: D}}
        self.assertEqual(cutPairs(views, [2, 1, 0]), {(1, 2)})

    def test_unwatchedNodesIgnored(self) -> None:
        """Only pairs of the nodes given count."""
        views = {0: {1: D, 3: D}, 1: {0: D}}
        self.assertEqual(cutPairs(views, [0, 3]), {(0, 3)})

    def test_healthFlagsIgnored(self) -> None:
        """Flags other than DISCONNECTED (unhealthy, banned) are no cut."""
        views = {0: {1: C.NODE_FLAGS_UNHEALTHY | C.NODE_FLAGS_BANNED}}
        self.assertEqual(cutPairs(views, [0, 1]), set())


class ExcludedNodesTests(SynchronousTestCase):
    """L{excludedNodes}: the leader stays, then lower pnns first."""

    def test_bridgeKeepsLowerPnn(self) -> None:
        self.assertEqual(excludedNodes([0, 1, 2], [(0, 1)], keep=2), [1])

    def test_leaderSideKept(self) -> None:
        """A node cut from the leader goes, whatever its pnn."""
        self.assertEqual(excludedNodes([0, 1, 2], [(0, 2)], keep=2), [0])

    def test_everyRemainingPairLinked(self) -> None:
        """Four nodes, leader 3: 0 cut from 1 and 2, 1 cut from 2.  0 stays
        (linked to 3); 1 and 2 go (each cut from 0)."""
        cut = [(0, 1), (0, 2), (1, 2)]
        self.assertEqual(excludedNodes([0, 1, 2, 3], cut, keep=3), [1, 2])

    def test_aNodeLeftOutFreesOthers(self) -> None:
        """A chain 0-1-2 cut (0/1 and 1/2): only 1 goes."""
        self.assertEqual(excludedNodes([0, 1, 2, 3], [(1, 0), (2, 1)], keep=3), [1])

    def test_noCut(self) -> None:
        self.assertEqual(excludedNodes([0, 1, 2], [], keep=0), [])


class CutTrackerTests(SynchronousTestCase):
    """L{CutTracker}: a pair settles once cut for the whole grace."""

    def test_settlesAfterGrace(self) -> None:
        tracker = CutTracker(grace=2.0)
        self.assertEqual(tracker.observe(10.0, {(0, 1)}), set())
        self.assertEqual(tracker.observe(11.9, {(0, 1)}), set())
        self.assertEqual(tracker.observe(12.0, {(0, 1)}), {(0, 1)})

    def test_linkedOnceStartsOver(self) -> None:
        tracker = CutTracker(grace=2.0)
        tracker.observe(10.0, {(0, 1)})
        tracker.observe(11.0, set())
        self.assertEqual(tracker.observe(12.5, {(0, 1)}), set())
        self.assertEqual(tracker.observe(14.5, {(0, 1)}), {(0, 1)})

    def test_gapStartsOver(self) -> None:
        """Observations more than the grace apart prove nothing about the
        time between them."""
        tracker = CutTracker(grace=2.0)
        tracker.observe(10.0, {(0, 1)})
        self.assertEqual(tracker.observe(15.0, {(0, 1)}), set())
        self.assertEqual(tracker.observe(16.0, {(0, 1)}), set())
        self.assertEqual(tracker.observe(17.0, {(0, 1)}), {(0, 1)})


class _HeartbeatCluster:
    """Three started txctdb nodes with heartbeats and recovery, settled
    (node 2 leads)."""

    heartbeat: tuple[float, float] | None = (0.25, 1.5)

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster: FakeCluster = connectedNodes(
            3, self.clock, recovery=True, heartbeat=self.heartbeat
        )
        self.addCleanup(self.cluster.stop)  # type: ignore[attr-defined]
        self.settle(6.0)

    def settle(self, seconds: float) -> None:
        self.cluster.advance(seconds, step=0.05)

    def service(self, pnn: int) -> RecoveryService:
        return self.cluster.recovery(pnn)

    def flags(self, viewer: int, pnn: int) -> int:
        return self.cluster[viewer].nodes[pnn].flags

    def assertConverged(self, vnnmap: tuple[int, ...]) -> None:
        live: list[Daemon] = list(self.cluster)
        self.assertEqual(  # type: ignore[attr-defined]
            {self.service(d.pnn).leader for d in live}, {2}
        )
        self.assertEqual(  # type: ignore[attr-defined]
            len({self.cluster[p].vnnMap.generation for p in vnnmap}), 1
        )
        for p in vnnmap:
            d = self.cluster[p]
            self.assertEqual(d.vnnMap.map, vnnmap)  # type: ignore[attr-defined]
            self.assertEqual(d.recmode, C.CTDB_RECOVERY_NORMAL)  # type: ignore[attr-defined]


class PartialPartitionTests(_HeartbeatCluster, SynchronousTestCase):
    """The leader finds a bridge in the node maps and resolves it."""

    def test_bridgeBansHigherPnnUntilHealed(self) -> None:
        """0 and 1 cut from each other: after the grace the leader bans 1
        (keeps the lower pnn), recovers with 0 and 2, keeps 1 banned while
        the cut lasts (longer than one ban period), and lets it back in
        once the pair is linked: one generation, every node OK."""
        self.assertConverged((0, 1, 2))
        self.cluster.network.partition(0, 1)
        self.settle(0.5)
        self.assertTrue(self.flags(0, 1) & C.NODE_FLAGS_DISCONNECTED)
        self.assertEqual(self.flags(2, 1), 0)
        self.settle(PARTITION_GRACE + 1.5)
        self.assertTrue(self.flags(2, 1) & C.NODE_FLAGS_BANNED)
        self.assertEqual(self.flags(2, 0), 0)
        self.assertConverged((0, 2))
        self.assertEqual(self.cluster[1].recmode, C.CTDB_RECOVERY_ACTIVE)
        # the ban is renewed: still out after twice its period
        self.settle(2 * PARTITION_BAN_PERIOD)
        self.assertTrue(self.flags(2, 1) & C.NODE_FLAGS_BANNED)
        self.assertTrue(self.flags(1, 1) & C.NODE_FLAGS_BANNED)
        self.assertConverged((0, 2))
        self.cluster.network.heal(0, 1)
        self.settle(3.0)
        for viewer in range(3):
            for pnn in range(3):
                self.assertEqual(self.flags(viewer, pnn), 0, (viewer, pnn))
        self.assertConverged((0, 1, 2))
        self.assertEqual(self.service(2).partitionState().banned, {})

    def test_shortCutBansNobody(self) -> None:
        """A cut shorter than the grace bans nobody."""
        self.cluster.network.partition(0, 1)
        self.settle(PARTITION_GRACE - 0.5)
        self.cluster.network.heal(0, 1)
        self.settle(PARTITION_GRACE + 2.0)
        for viewer in range(3):
            for pnn in range(3):
                self.assertEqual(self.flags(viewer, pnn), 0, (viewer, pnn))
        self.assertConverged((0, 1, 2))

    def test_peerBackForcesRecovery(self) -> None:
        """The leader never saw 0 and 1 apart; when they link again, the
        node that declared the other dead sets its recovery mode ACTIVE
        and the leader recovers: a new generation everywhere."""
        before = self.cluster[2].vnnMap.generation
        self.cluster.network.partition(0, 1)
        self.settle(1.0)
        self.assertEqual(self.cluster[2].vnnMap.generation, before)
        self.cluster.network.heal(0, 1)
        self.settle(2.0)
        self.assertNotEqual(self.cluster[2].vnnMap.generation, before)
        self.assertConverged((0, 1, 2))


class CtdbdPeersTests(_HeartbeatCluster, SynchronousTestCase):
    """Without heartbeats (4.17's keepalives alone, as with ctdbd peers)
    the partial-partition rules stay out of the way."""

    heartbeat = None

    def test_noBanNoForcedRecovery(self) -> None:
        before = self.cluster[2].vnnMap.generation
        self.cluster.network.partition(0, 1)
        self.settle(PARTITION_GRACE + 3.0)
        self.assertEqual(self.flags(2, 1), 0)
        self.cluster.network.heal(0, 1)
        self.settle(3.0)
        self.assertEqual(self.cluster[2].vnnMap.generation, before)
        self.assertConverged((0, 1, 2))
