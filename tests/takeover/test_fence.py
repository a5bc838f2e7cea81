# -*- test-case-name: tests.takeover.test_fence -*-
"""
Tests for L{ctdb.takeover.fence} and the leader's wait
(L{ctdb.takeover.leader.TakeoverRunner._waitForFences}): a node cut off
from the cluster gives its public addresses up before the rest of the
cluster moves them, on whole nodes of a L{connectedNodes} cluster with
txctdb's heartbeat on and one L{Clock}.
"""

from __future__ import annotations

from typing import ClassVar

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.daemon.heartbeat import DEFAULT_INTERVAL, DEFAULT_TIMEOUT
from ctdb.protocols import controls as C
from ctdb.protocols.controls import Control
from ctdb.protocols.srvids import CTDB_SRVID_TAKEOVER_RUN
from ctdb.testing import FakeClient, connectedNodes
from tests.takeover._helpers import connection, publicIp

HEARTBEAT = (DEFAULT_INTERVAL, DEFAULT_TIMEOUT)
STEP = 0.01


class _PartitionCase(SynchronousTestCase):
    """Three whole nodes with six public addresses, the heartbeat and the
    recovery service on; every step checks that no address is up on two
    running nodes, and records when each node gained and lost each one."""

    addresses: ClassVar[list[str]] = [f"127.1.0.{i}" for i in range(1, 7)]
    heartbeat: tuple[float, float] | None = HEARTBEAT

    def setUp(self) -> None:
        self.clock = Clock()
        text = "".join(f"{a}/24 eth0\n" for a in self.addresses)
        self.cluster = connectedNodes(
            3,
            self.clock,
            recovery=True,
            publicAddresses=text,
            heartbeat=self.heartbeat,
        )
        self.addCleanup(self.cluster.stop)
        #: (time, pnn, address, "+" or "-") in the order they happened
        self.changes: list[tuple[float, int, str, str]] = []
        self._seen = self.hosts()
        self.step(6)
        self.assertHosted()

    def hosts(self) -> dict[str, list[int]]:
        return {
            a: sorted(
                pnn
                for pnn, system in self.cluster.addressSystems.items()
                if a in system.addresses and self.cluster[pnn].running
            )
            for a in self.addresses
        }

    def step(self, seconds: float) -> None:
        for _ in range(round(seconds / STEP)):
            self.clock.advance(STEP)
            now = self.hosts()
            for a, owners in now.items():
                self.assertLessEqual(len(owners), 1, f"{a} on {owners}")
                for pnn in set(owners) - set(self._seen[a]):
                    self.changes.append((self.clock.seconds(), pnn, a, "+"))
                for pnn in set(self._seen[a]) - set(owners):
                    self.changes.append((self.clock.seconds(), pnn, a, "-"))
            self._seen = now

    def assertHosted(self, excluded: tuple[int, ...] = ()) -> None:
        for a, owners in self.hosts().items():
            self.assertEqual(len(owners), 1, f"{a} on {owners}")
            self.assertNotIn(owners[0], excluded)

    def leader(self) -> int:
        return self.cluster.recovery(0).leader

    def isolate(self, pnn: int, *, outgoingOnly: bool = False) -> None:
        for other in range(3):
            if other != pnn:
                self.cluster.network.blackholes.add((pnn, other))
                if not outgoingOnly:
                    self.cluster.network.blackholes.add((other, pnn))

    def heal(self) -> None:
        self.cluster.network.blackholes.clear()

    def held(self, pnn: int) -> list[str]:
        return [a for a, owners in self.hosts().items() if owners == [pnn]]

    def assertGaveUpFirst(self, victim: int, its: list[str]) -> None:
        """Each of the victim's addresses left it before any other node
        took it (the step checks already refused an overlap)."""
        self.assertTrue(its)
        for a in its:
            lost = [t for t, p, addr, how in self.changes if addr == a and p == victim]
            taken = [
                t
                for t, p, addr, how in self.changes
                if addr == a and p != victim and how == "+"
            ]
            self.assertTrue(lost, f"{a} never left node {victim}")
            self.assertTrue(taken, f"{a} never moved")
            self.assertLess(min(lost), min(taken))


class PartitionTests(_PartitionCase):
    def test_isolatedNodeGivesUp(self) -> None:
        """A non-leader cut off in both directions gives its addresses up
        (no quorum) before the majority moves them; after the heal every
        address is hosted once again, and the node gets addresses back."""
        victim = next(p for p in range(3) if p != self.leader())
        its = self.held(victim)
        fence = self.cluster.takeover(victim).fence
        assert fence is not None
        self.isolate(victim)
        self.step(6)
        self.assertTrue(fence.fenced)
        self.assertIn("confirmed", fence.reason or "")
        self.assertHosted(excluded=(victim,))
        self.assertGaveUpFirst(victim, its)
        runner = self.cluster.node(self.leader()).takeoverRunner
        self.assertGreaterEqual(runner.fenceWaits, 1)
        self.heal()
        self.step(10)
        self.assertFalse(fence.fenced)
        self.assertHosted()
        self.assertTrue(self.held(victim))

    def test_isolatedLeaderGivesUp(self) -> None:
        """The leader cut off: it takes no address for itself (it has no
        quorum, so none is available to it) and gives its own up; the
        majority elects a leader of its own and moves them after the
        fence."""
        victim = self.leader()
        its = self.held(victim)
        others = [p for p in range(3) if p != victim]
        kept = {p: self.held(p) for p in others}
        self.isolate(victim)
        cutAt = self.clock.seconds()
        self.step(8)
        self.assertEqual(self.held(victim), [])
        self.assertHosted(excluded=(victim,))
        self.assertGaveUpFirst(victim, its)
        # the majority kept its own addresses all along: the news that the
        # leader went quiet is no newer than their leases (rule 4 is quiet)
        for p in others:
            lost = [
                a
                for t, q, a, how in self.changes
                if q == p and how == "-" and t > cutAt
            ]
            self.assertEqual(lost, [], f"node {p} gave up {lost}")
            self.assertTrue(set(kept[p]) <= set(self.held(p)))
        self.heal()
        self.step(10)
        self.assertHosted()

    def test_oneWay(self) -> None:
        """What the node sends is lost, it still hears the others: their
        echoes stop, so its lease runs out although it hears everything."""
        victim = next(p for p in range(3) if p != self.leader())
        its = self.held(victim)
        self.isolate(victim, outgoingOnly=True)
        self.step(6)
        self.assertHosted(excluded=(victim,))
        self.assertGaveUpFirst(victim, its)
        self.heal()
        self.step(10)
        self.assertHosted()

    def test_cutFromLeaderOnly(self) -> None:
        """A partial partition between the leader and another node, both
        still reaching the third: that node keeps a majority through the
        third, but the third reports hearing the leader, so it gives its
        addresses up (rule 4) before the leader moves them."""
        leader = self.leader()
        self.assertCutFromLeaderGivesUp(
            leader, next(p for p in range(3) if p != leader)
        )

    def assertCutFromLeaderGivesUp(self, leader: int, victim: int) -> None:
        """Cut C{victim} from C{leader} only: the victim gives its addresses
        up by rule 4 before any moves, and all is hosted after the heal."""
        its = self.held(victim)
        self.changes = []
        fence = self.cluster.takeover(victim).fence
        assert fence is not None
        reasons: list[str] = []
        self.cluster.network.blackholes.update({(leader, victim), (victim, leader)})
        for _ in range(300):
            self.step(STEP * 2)
            if fence.reason is not None and fence.reason not in reasons:
                reasons.append(fence.reason)
        self.assertTrue(any("no longer hears" in r for r in reasons), reasons)
        self.assertGaveUpFirst(victim, its)
        self.heal()
        self.step(20)
        self.assertHosted()

    def test_formerLeaderCutFromNewLeader(self) -> None:
        """The leader is banned, another node takes over; after the ban the
        two are cut from each other, both still reaching the third.  The
        former leader's election after losing the new one broadcasts "no
        leader": rule 4 must go on watching the new leader all the same,
        and the former leader gives its addresses up before they move (a
        soak found both hosting one address for four seconds)."""
        old = self.leader()
        FakeClient(self.cluster[old]).control(
            Control.SET_BAN_STATE, C.encodeBanState(old, 5), destnode=old
        )
        self.step(3)
        new = self.leader()
        self.assertNotEqual(new, old)
        self.step(10)
        self.assertEqual(self.leader(), new)
        self.assertHosted()
        self.assertCutFromLeaderGivesUp(new, old)

    def test_fenceBeforeOwnSuspicions(self) -> None:
        """The cut-off node's lease runs out before it declares any peer
        dead: the release cannot come after its own links are restarted."""
        victim = next(p for p in range(3) if p != self.leader())
        fence = self.cluster.takeover(victim).fence
        monitor = self.cluster[victim].heartbeats
        assert fence is not None and monitor is not None
        self.isolate(victim)
        fencedAt = None
        while monitor.suspicions == 0:
            self.step(STEP)
            if fencedAt is None and fence.fenced:
                fencedAt = self.clock.seconds()
        self.assertIsNotNone(fencedAt)

    def test_killedNodeNoWaitNoFence(self) -> None:
        """A killed node closes its links: the survivors keep their
        addresses (quorum of two of three), and its addresses move without
        the fence wait."""
        victim = next(p for p in range(3) if p != self.leader())
        survivors = [p for p in range(3) if p != victim]
        before = {p: self.cluster.takeover(p).fence.fences for p in survivors}  # type: ignore[union-attr]
        kept = {p: self.held(p) for p in survivors}
        self.cluster.crash(victim)
        killedAt = self.clock.seconds()
        self.step(4)
        self.assertHosted(excluded=(victim,))
        for p in survivors:
            fence = self.cluster.takeover(p).fence
            assert fence is not None
            self.assertEqual(fence.fences, before[p])
            for a in kept[p]:
                self.assertEqual(self.hosts()[a], [p])
        runner = self.cluster.node(self.leader()).takeoverRunner
        self.assertEqual(runner.fenceWaits, 0)
        moved = [t for t, p, a, how in self.changes if how == "+" and t > killedAt]
        self.assertLess(max(moved) - killedAt, 1.5)


class TwoNodeTests(_PartitionCase):
    """Two nodes: a strict majority is both of them."""

    def setUp(self) -> None:
        self.clock = Clock()
        text = "".join(f"{a}/24 eth0\n" for a in self.addresses)
        self.cluster = connectedNodes(
            2, self.clock, recovery=True, publicAddresses=text, heartbeat=HEARTBEAT
        )
        self.addCleanup(self.cluster.stop)
        self.changes = []
        self._seen = self.hosts()
        self.step(6)
        self.assertHosted()

    def isolate(self, pnn: int, *, outgoingOnly: bool = False) -> None:
        self.cluster.network.blackholes.update({(0, 1), (1, 0)})

    def test_killedPeerDeparted(self) -> None:
        """The survivor of a killed peer keeps its addresses (the peer left
        by a closed link while it still echoed: it is not counted) and
        takes the peer's at once."""
        survivor = self.leader()
        victim = 1 - survivor
        kept = self.held(survivor)
        fence = self.cluster.takeover(survivor).fence
        assert fence is not None
        before = fence.fences
        self.cluster.crash(victim)
        self.step(4)
        self.assertEqual(fence.fences, before)
        for a in kept:
            self.assertEqual(self.hosts()[a], [survivor])
        self.assertHosted(excluded=(victim,))
        monitor = self.cluster[survivor].heartbeats
        assert monitor is not None
        self.assertTrue(monitor.departed(victim))

    def test_splitWithoutLockNobodyHosts(self) -> None:
        """Cut in two halves without a cluster lock: neither half has a
        majority, both give everything up, no address is on two nodes."""
        self.isolate(0)
        self.step(8)
        self.assertEqual(self.held(0) + self.held(1), [])
        self.heal()
        self.step(12)
        self.assertHosted()


class LeaderWaitTests(_PartitionCase):
    def test_movesWaitForTheFenceDeadline(self) -> None:
        """By construction: the leader moves no address of a node lost by
        silence before fenceDelay after it last heard that node, whatever
        that node does (here it is stuck: it keeps its addresses and
        restarts no link)."""
        victim = next(p for p in range(3) if p != self.leader())
        its = self.held(victim)
        stuck = self.cluster.takeover(victim).fence
        stuckMonitor = self.cluster[victim].heartbeats
        assert stuck is not None and stuckMonitor is not None
        stuck.stop()
        stuckMonitor.stop()
        self.isolate(victim)
        cutAt = self.clock.seconds()
        monitor = self.cluster[self.leader()].heartbeats
        assert monitor is not None
        # the stuck node keeps its addresses on its host: step() must not
        # count it
        self.cluster.addressSystems.pop(victim)
        self.step(8)
        taken = [
            t
            for t, p, a, how in self.changes
            if a in its and how == "+" and p != victim
        ]
        self.assertEqual(len(taken), len(its))
        # its last packet came at most one interval before the cut
        earliest = cutAt - DEFAULT_INTERVAL + monitor.fenceDelay
        self.assertGreaterEqual(min(taken), earliest)
        self.assertLess(min(taken), cutAt + monitor.fenceDelay + 0.5)


class RuleTests(SynchronousTestCase):
    """The rules one by one, on a whole node."""

    def cluster(self, **kw: object):  # type: ignore[no-untyped-def]
        clock = Clock()
        cluster = connectedNodes(
            3,
            clock,
            publicAddresses="10.0.0.31/24 eth0\n10.0.0.32/24 eth0\n",
            **kw,  # type: ignore[arg-type]
        )
        self.addCleanup(cluster.stop)
        cluster.advance(1, step=0.05)
        return clock, cluster

    def take(self, cluster, pnn: int, address: str) -> None:  # type: ignore[no-untyped-def]
        client = FakeClient(cluster[pnn])
        reqid = client.control(
            Control.TAKEOVER_IP, publicIp(pnn, address), destnode=pnn
        )
        cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 0)

    def test_pauseGivesUp(self) -> None:
        """A check that comes later than the heartbeat timeout after the
        previous one gives every address up; once the rules hold again the
        fence is lifted and a takeover run is asked for."""
        _, cluster = self.cluster(heartbeat=HEARTBEAT)
        cluster[0].recmode = C.CTDB_RECOVERY_NORMAL
        self.take(cluster, 0, "10.0.0.31")
        fence = cluster.takeover(0).fence
        assert fence is not None
        fence.check(elapsed=DEFAULT_TIMEOUT + 0.1)
        self.assertIn("paused", fence.reason or "")
        cluster.flush()
        self.assertEqual(cluster.addressSystems[0].addresses, {})
        client = FakeClient(cluster[1])
        client.control(
            Control.REGISTER_SRVID, destnode=1, srvid=CTDB_SRVID_TAKEOVER_RUN
        )
        cluster.flush()
        fence.check(elapsed=DEFAULT_INTERVAL)
        cluster.flush()
        self.assertFalse(fence.fenced)
        self.assertEqual(
            [srvid for srvid, _ in client.messages()], [CTDB_SRVID_TAKEOVER_RUN]
        )

    def test_giveUpHoldsNoAddress(self) -> None:
        """
        The fence's release does not kill the connections of an address it
        took off the host (no reset can be sent from it; a kill would hold
        the address for its whole timeout): the address is not held, so a
        RELEASE_IP of the leader's next takeover run succeeds instead of
        being refused as in flight (which earned the node banning credits
        and a ban after a pause, in the fault soak).  The server sockets
        the address left are closed instead (a new connection from the
        same client port would meet one if the address came back).
        """
        _, cluster = self.cluster(heartbeat=HEARTBEAT)
        cluster[0].recmode = C.CTDB_RECOVERY_NORMAL
        self.take(cluster, 0, "10.0.0.31")
        host = cluster.addressSystems[0]
        host.deferKills = True  # a kill would never end
        client = FakeClient(cluster[0])
        reqid = client.control(
            Control.TCP_ADD,
            connection(("10.0.0.99", 40000), ("10.0.0.31", 4445)),
            destnode=0,
        )
        cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 0)
        fence = cluster.takeover(0).fence
        assert fence is not None
        fence.fence("test")
        cluster.flush()
        self.assertEqual(host.addresses, {})
        self.assertEqual([c for c in host.calls if c[0] == "kill"], [])
        self.assertIn(("close", "10.0.0.31"), host.calls)
        reqid = client.control(Control.RELEASE_IP, publicIp(1, "10.0.0.31"), destnode=0)
        cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 0)

    def test_fencedRefusesTakes(self) -> None:
        """While fenced the node says no address is available to it and
        refuses TAKEOVER_IP."""
        _, cluster = self.cluster(heartbeat=HEARTBEAT)
        cluster[0].recmode = C.CTDB_RECOVERY_NORMAL
        takeover = cluster.takeover(0)
        assert takeover.fence is not None
        takeover.fence.fence("test")
        self.assertEqual(takeover.publicIPs(onlyAvailable=True), [])
        client = FakeClient(cluster[0])
        reqid = client.control(
            Control.TAKEOVER_IP, publicIp(0, "10.0.0.31"), destnode=0
        )
        cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None
        self.assertNotEqual(reply.status, 0)
        self.assertEqual(cluster.addressSystems[0].addresses, {})

    def test_noQuorum(self) -> None:
        """Both peers silent: their echoes stop and the lease runs out
        (before the heartbeat timeout declares them dead)."""
        clock, cluster = self.cluster(heartbeat=HEARTBEAT)
        cluster[0].recmode = C.CTDB_RECOVERY_NORMAL
        self.take(cluster, 0, "10.0.0.31")
        fence = cluster.takeover(0).fence
        assert fence is not None
        self.assertFalse(fence.fenced)
        cluster.network.blackholes.update({(1, 0), (2, 0)})
        cut = clock.seconds()
        while not fence.fenced:
            cluster.advance(STEP, step=STEP)
            self.assertLess(clock.seconds() - cut, DEFAULT_TIMEOUT)
        self.assertEqual(cluster.addressSystems[0].addresses, {})

    def test_oneSilentPeerKeepsQuorum(self) -> None:
        """One peer of two silent: two of three still confirm, nothing is
        given up."""
        _, cluster = self.cluster(heartbeat=HEARTBEAT)
        cluster[0].recmode = C.CTDB_RECOVERY_NORMAL
        self.take(cluster, 0, "10.0.0.31")
        cluster.network.blackholes.update({(1, 0), (0, 1)})
        cluster.advance(5, step=0.05)
        fence = cluster.takeover(0).fence
        assert fence is not None
        self.assertFalse(fence.fenced)
        self.assertIn("10.0.0.31", cluster.addressSystems[0].addresses)

    def test_recoveryDropAllIPs(self) -> None:
        """Without txctdb's heartbeat (4.17's rules), a node that stays in
        recovery for RecoveryDropAllIPs seconds drops its addresses."""
        _, cluster = self.cluster(tunables={"RecoveryDropAllIPs": 10})
        d = cluster[0]
        d.recmode = C.CTDB_RECOVERY_NORMAL
        self.take(cluster, 0, "10.0.0.31")
        d.recmode = C.CTDB_RECOVERY_ACTIVE
        cluster.advance(9, step=0.5)
        self.assertIn("10.0.0.31", cluster.addressSystems[0].addresses)
        cluster.advance(2, step=0.5)
        self.assertEqual(cluster.addressSystems[0].addresses, {})
        fence = cluster.takeover(0).fence
        assert fence is not None
        self.assertIn("in recovery", fence.reason or "")
        d.recmode = C.CTDB_RECOVERY_NORMAL
        cluster.advance(1, step=0.5)
        self.assertFalse(fence.fenced)

    def test_noHeartbeatNoQuorumRule(self) -> None:
        """With the heartbeat off (the drop-in's default) dead peers do
        not make a node give its addresses up: 4.17's behaviour."""
        _, cluster = self.cluster()
        cluster[0].recmode = C.CTDB_RECOVERY_NORMAL
        self.take(cluster, 0, "10.0.0.31")
        cluster.crash(1)
        cluster.crash(2)
        cluster.advance(5, step=0.5)
        self.assertIn("10.0.0.31", cluster.addressSystems[0].addresses)
