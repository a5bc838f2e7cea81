# -*- test-case-name: tests.monitor.test_collect -*-
"""
L{ctdb.monitor.collect}: snapshots of an in-memory cluster (the tool's
harness, L{tests.tool._harness}: the daemons of L{ctdb.testing} behind
fake client sockets on one memory reactor), through a node failure and
the connected daemon's death.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from ctdb.monitor.changes import EventLog
from ctdb.monitor.collect import Collector, describeStatus
from ctdb.monitor.snapshot import Snapshot
from ctdb.protocols import nodestate as N
from ctdb.tool import formats as F
from tests.tool._harness import socketOf, startCluster

ADDRESSES = "127.1.0.1/24 eth0\n127.1.0.2/24 eth1\n127.1.0.3/24 eth0\n"


class CollectorTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor, self.cluster = startCluster(3, publicAddresses=ADDRESSES)
        self.addCleanup(self.cluster.stop)
        self.collector = Collector(
            reactor=self.reactor,  # type: ignore[arg-type]
            socket=socketOf(0),
            timeout=3,
            environ={},
        )

    def drive(self, coroutine: Any) -> Any:
        d = defer.ensureDeferred(coroutine)
        self.reactor.drive(d)
        return self.successResultOf(d)

    def snapshot(self, waitForLeader: bool = False) -> Snapshot:
        snapshot = self.drive(self.collector.snapshot(waitForLeader=waitForLeader))
        assert isinstance(snapshot, Snapshot)
        return snapshot

    def settle(self, seconds: float = 10.0) -> None:
        self.cluster.advance(seconds, step=0.05)

    def test_settled(self) -> None:
        """A settled cluster: every node answers with the same generation
        and VNN map, NORMAL; the leader is heard; every address is held."""
        snapshot = self.snapshot(waitForLeader=True)
        self.assertIsNone(snapshot.error)
        self.assertEqual(snapshot.pnn, 0)
        self.assertEqual(snapshot.socket, socketOf(0))
        self.assertEqual(snapshot.leader, self.cluster.recovery(0).leader)
        self.assertIsNotNone(snapshot.leaderAge)
        self.assertEqual([n.pnn for n in snapshot.nodes], [0, 1, 2])
        generation = self.cluster[0].vnnMap.generation
        for node in snapshot.nodes:
            self.assertTrue(node.answered, node)
            self.assertEqual(node.flags, 0)
            self.assertEqual(node.generation, generation)
            self.assertEqual(node.vnnmap, (0, 1, 2))
            self.assertEqual(node.recmode, N.CTDB_RECOVERY_NORMAL)
            self.assertEqual(node.nodemap, ((0, 0), (1, 0), (2, 0)))
        self.assertEqual(snapshot.recoveryActive, False)
        self.assertEqual(
            sorted(a.address for a in snapshot.addresses),
            ["127.1.0.1", "127.1.0.2", "127.1.0.3"],
        )
        self.assertEqual(sorted(a.pnn for a in snapshot.addresses), [0, 1, 2])

    def test_nodeFails(self) -> None:
        """A node crashes: the next snapshots show it disconnected and not
        answering, a new generation without it, its address elsewhere;
        the events say so.  Restarted, it is back."""
        log = EventLog()
        before = self.snapshot(waitForLeader=True)
        log.observe(before)
        victim = 2 if before.leader != 2 else 1
        self.cluster.crash(victim)
        self.settle()
        after = self.snapshot()
        log.observe(after)
        node = after.node(victim)
        assert node is not None
        self.assertTrue(node.flags & N.NODE_FLAGS_DISCONNECTED)
        self.assertFalse(node.answered)
        self.assertNotEqual(after.generation, before.generation)
        self.assertNotIn(victim, after.reference.vnnmap or ())  # type: ignore[union-attr]
        self.assertNotIn(victim, [a.pnn for a in after.addresses])
        texts = [e.text for e in log.events]
        self.assertIn(
            f"node {victim} became {F.prettyFlags(node.flags)} (was OK)", texts
        )
        self.assertIn(
            f"generation changed {before.generation} -> {after.generation}", texts
        )
        self.assertTrue([t for t in texts if t.startswith("public address ")])

        self.cluster.restart(victim)
        self.settle(20)
        back = self.snapshot()
        log.observe(back)
        node = back.node(victim)
        assert node is not None
        self.assertEqual(node.flags, 0)
        self.assertTrue(node.answered)
        self.assertIn(f"node {victim} became OK", "\n".join(e.text for e in log.events))

    def test_daemonGone(self) -> None:
        """The connected daemon dies: the snapshot says the connection is
        lost, the next that it cannot connect; the daemon back, the
        snapshots see the cluster again."""
        self.assertIsNone(self.snapshot(waitForLeader=True).error)
        daemon = self.cluster[0]
        self.cluster.crash(0)
        # A dead process's sockets close; the fake's stay open by themselves.
        for pump in self.reactor.pumps:
            if getattr(pump.server, "daemon", None) is daemon:
                pump.serverIO.loseConnection()
                pump.flush()
        self.settle(1)
        self.assertEqual(self.snapshot().error, "lost the connection to ctdbd")
        self.assertEqual(
            self.snapshot().error, "cannot connect: No such file or directory"
        )
        self.cluster.restart(0)
        self.settle(20)
        snapshot = self.snapshot()
        self.assertIsNone(snapshot.error)
        self.assertEqual(len(snapshot.nodes), 3)

    def test_noDaemon(self) -> None:
        """No daemon at the socket: the snapshot says why."""
        collector = Collector(
            reactor=self.reactor,  # type: ignore[arg-type]
            socket="/fake/nowhere.socket",
            timeout=3,
            environ={},
        )
        snapshot = self.drive(collector.snapshot())
        self.assertEqual(snapshot.error, "cannot connect: No such file or directory")
        self.assertEqual(snapshot.nodes, ())

    def test_socketFromEnvironment(self) -> None:
        """Without --socket, the tool's rule: $CTDB_SOCKET, else the
        default path."""
        environ = {"CTDB_SOCKET": "/x/y.socket"}
        self.assertEqual(
            Collector(
                reactor=self.reactor,  # type: ignore[arg-type]
                socket=None,
                timeout=3,
                environ=environ,
            ).socketPath,
            "/x/y.socket",
        )
        self.assertEqual(
            Collector(
                reactor=self.reactor,  # type: ignore[arg-type]
                socket=None,
                timeout=3,
                environ={},
            ).socketPath,
            "/run/ctdb/ctdbd.socket",
        )


class DescribeStatusTests(SynchronousTestCase):
    def test_errno(self) -> None:
        """An errno by name and words; anything else as a status."""
        self.assertEqual(describeStatus(110), "ETIMEDOUT (Connection timed out)")
        self.assertEqual(describeStatus(-1), "status -1")
