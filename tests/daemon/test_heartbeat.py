# -*- test-case-name: tests.daemon.test_heartbeat -*-
"""
Tests for L{ctdb.daemon.heartbeat}: the detector on a L{Clock} by itself,
then whole nodes of a L{ctdb.testing.connectedNodes} cluster with the
heartbeat on, and the election wait it decides.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.daemon.heartbeat import (
    DEFAULT_INTERVAL,
    DEFAULT_TIMEOUT,
    TXCTDB_SRVID_HEARTBEAT,
    Heartbeat,
    HeartbeatMonitor,
)
from ctdb.protocols import controls as C
from ctdb.protocols import srvids
from ctdb.recovery.leadership import CTDBD_ELECTION_WAIT, ELECTION_WAIT
from ctdb.testing import connectedNodes

DISCONNECTED = C.NODE_FLAGS_DISCONNECTED
HEARTBEAT = (DEFAULT_INTERVAL, DEFAULT_TIMEOUT)


class HeartbeatCodecTests(SynchronousTestCase):
    def test_roundTrip(self) -> None:
        beat = Heartbeat(3, 0xFFFFFFFF, ack=7)
        self.assertEqual(Heartbeat.decode(beat.encode()), beat)
        self.assertEqual(len(beat.encode()), 20)

    def test_heardReports(self) -> None:
        """Version 2 carries (pnn, ms since heard) pairs after the echo."""
        beat = Heartbeat(1, 2, ack=3, heard=((0, 100), (2, 5)))
        self.assertEqual(len(beat.encode()), 20 + 2 * 8)
        self.assertEqual(Heartbeat.decode(beat.encode()), beat)

    def test_versionOneHasNoEcho(self) -> None:
        """A 16-byte version 1 heartbeat still decodes, echoing nothing."""
        old = Heartbeat(3, 9, version=1)
        self.assertEqual(len(old.encode()), 16)
        self.assertEqual(Heartbeat.decode(old.encode()), Heartbeat(3, 9, 1, 0))

    def test_notAHeartbeat(self) -> None:
        self.assertIsNone(Heartbeat.decode(b""))
        self.assertIsNone(Heartbeat.decode(b"XXXX" + b"\0" * 12))

    def test_srvidIsNoSambaOne(self) -> None:
        """The srvid is in Samba's test range and is none of its named ones."""
        self.assertEqual(
            TXCTDB_SRVID_HEARTBEAT & 0xFF00000000000000, srvids.CTDB_SRVID_TEST_RANGE
        )
        named = {v for k, v in vars(srvids).items() if k.startswith("CTDB_SRVID_")}
        self.assertNotIn(TXCTDB_SRVID_HEARTBEAT, named)


class _Harness:
    """A monitor for node 0 on a Clock, recording what it sends and kills."""

    def __init__(self, interval: float = 0.25, timeout: float = 1.5) -> None:
        self.clock = Clock()
        self.sent: list[tuple[int, Heartbeat]] = []
        self.dead: list[tuple[int, float, float]] = []
        self.monitor = HeartbeatMonitor(
            reactor=self.clock,
            pnn=0,
            send=self._send,
            declareDead=lambda pnn, silence: self.dead.append(
                (pnn, silence, self.clock.seconds())
            ),
            interval=interval,
            timeout=timeout,
        )
        self.monitor.start()

    def _send(self, pnn: int, data: bytes) -> None:
        beat = Heartbeat.decode(data)
        assert beat is not None
        self.sent.append((pnn, beat))

    def beatFrom(self, pnn: int) -> None:
        self.monitor.heartbeatReceived(pnn, Heartbeat(pnn, 1).encode())

    def run(self, seconds: float, step: float = 0.01) -> None:
        for _ in range(round(seconds / step)):
            self.clock.advance(step)


class HeartbeatMonitorTests(SynchronousTestCase):
    def test_badSettings(self) -> None:
        for interval, timeout in [(0, 1), (1, 1), (2, 1)]:
            with self.assertRaises(ValueError):
                HeartbeatMonitor(
                    reactor=Clock(),
                    pnn=0,
                    send=lambda p, d: None,
                    declareDead=lambda p, s: None,
                    interval=interval,
                    timeout=timeout,
                )

    def test_helloOnLinkUp(self) -> None:
        """A link coming up gets one heartbeat at once."""
        h = _Harness()
        h.monitor.linkUp(1)
        self.assertEqual([p for p, _ in h.sent], [1])
        self.assertFalse(h.monitor.isOurs(1))

    def test_unrecognisedPeerNeverSuspected(self) -> None:
        """A peer that never sends a heartbeat (Samba's ctdbd) is greeted
        every HELLO_INTERVAL and never declared dead: keepalives decide."""
        h = _Harness()
        h.monitor.linkUp(1)
        h.run(61, step=0.05)
        self.assertEqual(h.dead, [])
        # the hello at link up, then one every 5 s
        self.assertEqual(len(h.sent), 1 + 12)

    def test_recognisedAndAnswered(self) -> None:
        """The first heartbeat from a peer makes it ours and is answered at
        once; then it gets one every interval."""
        h = _Harness()
        h.monitor.linkUp(1)
        h.sent.clear()
        h.beatFrom(1)
        self.assertTrue(h.monitor.isOurs(1))
        self.assertEqual(len(h.sent), 1)
        for _ in range(8):
            h.run(0.25)
            h.beatFrom(1)
        self.assertEqual(h.dead, [])
        self.assertEqual(len(h.sent), 1 + 8)

    def test_heartbeatOfAnotherPnnIgnored(self) -> None:
        h = _Harness()
        h.monitor.linkUp(1)
        h.monitor.heartbeatReceived(1, Heartbeat(2, 1).encode())
        self.assertFalse(h.monitor.isOurs(1))

    def test_silentPeerDeclaredDead(self) -> None:
        """A recognised peer silent for the timeout is declared dead once,
        between timeout and timeout + interval after it was last heard."""
        h = _Harness()
        h.monitor.linkUp(1)
        h.beatFrom(1)
        h.run(5)
        self.assertEqual(len(h.dead), 1)
        pnn, silence, at = h.dead[0]
        self.assertEqual(pnn, 1)
        self.assertGreaterEqual(silence, 1.5)
        self.assertGreaterEqual(at, 1.5)
        self.assertLessEqual(at, 1.75 + 1e-6)
        self.assertFalse(h.monitor.isOurs(1))
        self.assertEqual(h.monitor.suspicions, 1)

    def test_anyPacketKeepsPeerAlive(self) -> None:
        h = _Harness()
        h.monitor.linkUp(1)
        h.beatFrom(1)
        for _ in range(40):
            h.run(1.0)
            h.monitor.heard(1)
        self.assertEqual(h.dead, [])

    def test_linkDownForgetsPeer(self) -> None:
        h = _Harness()
        h.monitor.linkUp(1)
        h.beatFrom(1)
        h.monitor.linkDown(1)
        h.run(5)
        self.assertEqual(h.dead, [])
        self.assertFalse(h.monitor.isOurs(1))

    def test_ownPauseNotCounted(self) -> None:
        """
        When this node's reactor was paused (its check runs late), the
        pause counts one interval only: pauses of 3 s each, between which
        the peer is heard as soon as this node runs again, raise no
        suspicion.
        """
        h = _Harness()
        h.monitor.linkUp(1)
        h.beatFrom(1)
        for _ in range(10):
            h.clock.advance(3.0)  # asleep: one late check
            h.monitor.heard(1)  # the waiting packets are read
            h.run(0.25)
        self.assertEqual(h.dead, [])
        self.assertEqual(h.monitor.lateChecks, 10)
        self.assertGreaterEqual(h.monitor.maxLateness, 2.7)

    def test_pausesDoNotHideARealSilence(self) -> None:
        """A peer that stays silent is still declared dead when this node
        is often late: each late check counts one interval."""
        h = _Harness()
        h.monitor.linkUp(1)
        h.beatFrom(1)
        for _ in range(6):
            h.clock.advance(3.0)
        self.assertEqual([pnn for pnn, _, _ in h.dead], [1])

    def test_stop(self) -> None:
        h = _Harness()
        h.monitor.linkUp(1)
        h.beatFrom(1)
        h.monitor.stop()
        h.run(5)
        self.assertEqual(h.dead, [])
        self.assertEqual(h.clock.getDelayedCalls(), [])


class LeaseTests(SynchronousTestCase):
    """The echoes, the lease and the fences (ctdb.takeover.fence)."""

    def echo(self, h: _Harness, pnn: int = 1) -> None:
        """Node C{pnn} answers with the latest heartbeat we sent it."""
        ours = [beat for p, beat in h.sent if p == pnn][-1]
        h.monitor.heartbeatReceived(pnn, Heartbeat(pnn, 1, ack=ours.seq).encode())

    def test_badLease(self) -> None:
        for lease, fence in [(1.4, None), (0.5, 0.7), (0, None)]:
            with self.assertRaises(ValueError):
                HeartbeatMonitor(
                    reactor=Clock(),
                    pnn=0,
                    send=lambda p, d: None,
                    declareDead=lambda p, s: None,
                    lease=lease,
                    fenceDelay=fence,
                )

    def test_defaults(self) -> None:
        h = _Harness()
        self.assertEqual(h.monitor.lease, 1.25)
        self.assertEqual(h.monitor.fenceDelay, 3.0)

    def test_echoConfirmsSendTime(self) -> None:
        """An echo confirms the send time of the heartbeat it names, not
        the time it arrives."""
        h = _Harness()
        h.clock.advance(10)
        h.monitor.linkUp(1)
        sentAt = h.clock.seconds()
        h.beatFrom(1)
        h.clock.advance(0.2)
        self.assertIsNone(h.monitor.confirmedAt(1))
        self.echo(h)
        # the answer to its first heartbeat went out at sentAt too
        self.assertEqual(h.monitor.confirmedAt(1), sentAt)
        self.assertTrue(h.monitor.confirmedWithin(1))

    def test_echoAfterOwnPauseIsStale(self) -> None:
        """An echo read after this node slept for 2 s confirms only what
        was sent before the pause: the lease has run out."""
        h = _Harness()
        h.monitor.linkUp(1)
        h.beatFrom(1)
        before = [beat for p, beat in h.sent if p == 1][-1]
        h.clock.advance(2.0)
        h.monitor.heartbeatReceived(1, Heartbeat(1, 2, ack=before.seq).encode())
        self.assertEqual(h.monitor.confirmedAt(1), 0.0)
        self.assertFalse(h.monitor.confirmedWithin(1))

    def test_echoesStopLeaseEnds(self) -> None:
        """A peer that hears nothing from us (its echoes stop) ends the
        lease before the timeout would declare it dead, though it is
        still heard."""
        h = _Harness()
        h.monitor.linkUp(1)
        h.beatFrom(1)
        self.echo(h)
        start = h.clock.seconds()
        while h.monitor.confirmedWithin(1):
            h.run(0.01)
            h.monitor.heard(1)
        self.assertAlmostEqual(h.clock.seconds() - start, 1.25, delta=0.02)

    def test_fenceDeadlineAfterSilence(self) -> None:
        """A peer declared dead by silence: its addresses stay until
        fenceDelay after it was last heard; its link coming up again ends
        the fence."""
        h = _Harness()
        h.monitor.linkUp(1)
        h.clock.advance(0.1)
        h.beatFrom(1)
        heardAt = h.clock.seconds()
        h.run(2)
        self.assertEqual([p for p, _, _ in h.dead], [1])
        self.assertAlmostEqual(h.monitor.fenceDeadline(1) or 0, heardAt + 3.0)
        self.assertFalse(h.monitor.departed(1))
        h.monitor.linkUp(1)
        self.assertIsNone(h.monitor.fenceDeadline(1))

    def test_neverLinkedPeerFencedAfterStart(self) -> None:
        h = _Harness()
        self.assertEqual(h.monitor.fenceDeadline(2), 3.0)

    def test_closedWhileEchoingDeparted(self) -> None:
        """A link that closes while the peer still echoes us: a killed
        process, no fence."""
        h = _Harness()
        h.monitor.linkUp(1)
        h.beatFrom(1)
        self.echo(h)
        h.run(0.3)
        h.monitor.linkDown(1)
        self.assertTrue(h.monitor.departed(1))
        self.assertIsNone(h.monitor.fenceDeadline(1))
        h.monitor.linkUp(1)
        self.assertFalse(h.monitor.departed(1))

    def test_closedAfterEchoesStoppedNotDeparted(self) -> None:
        """A link that closes after the peer stopped echoing (it declared
        us dead: it heard nothing from us for the timeout) is no
        departure."""
        h = _Harness()
        h.monitor.linkUp(1)
        h.beatFrom(1)
        self.echo(h)
        for _ in range(150):
            h.run(0.01)
            h.monitor.heard(1)
        h.monitor.linkDown(1)
        self.assertFalse(h.monitor.departed(1))

    def test_reportsOfOtherPeers(self) -> None:
        """A heartbeat says how long ago its sender heard each other txctdb
        peer; what a confirming peer reports is kept (reportedHeard)."""
        h = _Harness()
        for pnn in (1, 2):
            h.monitor.linkUp(pnn)
            h.beatFrom(pnn)
        h.clock.advance(0.1)
        h.monitor.heard(2)
        h.sent.clear()
        h.run(0.25)
        toOne = [beat for p, beat in h.sent if p == 1][-1]
        self.assertEqual([q for q, _ in toOne.heard], [2])
        # heard at 0.1 s, the check at 0.25 s
        self.assertEqual(toOne.heard[0][1], 150)
        self.assertIsNone(h.monitor.reportedHeard(2))
        self.echo(h, 1)
        h.monitor.heartbeatReceived(
            1, Heartbeat(1, 9, ack=toOne.seq, heard=((2, 400),)).encode()
        )
        witness, at = h.monitor.reportedHeard(2) or (None, 0.0)
        self.assertEqual(witness, 1)
        self.assertAlmostEqual(at, h.clock.seconds() - 0.4)

    def test_checkHooksRunFirst(self) -> None:
        """The hooks run at the start of every check, with the time since
        the previous one, before any peer is declared dead."""
        h = _Harness()
        h.monitor.linkUp(1)
        h.beatFrom(1)
        seen: list[tuple[float, float, bool]] = []
        h.monitor.checkHooks.append(
            lambda elapsed: seen.append(
                (h.clock.seconds(), elapsed, h.monitor.isOurs(1))
            )
        )
        h.run(2)
        self.assertEqual(len(h.dead), 1)
        declared = h.dead[0][2]
        atDeclaration = [(e, ours) for t, e, ours in seen if t == declared]
        self.assertEqual(len(atDeclaration), 1)
        elapsed, stillOurs = atDeclaration[0]
        self.assertAlmostEqual(elapsed, 0.25)
        self.assertTrue(stillOurs)
        self.assertFalse(h.monitor.isOurs(1))


class ClusterHeartbeatTests(SynchronousTestCase):
    """Whole nodes (L{ctdb.service.buildNode}) with the heartbeat on."""

    def cluster(self, n: int = 2, **kw: object):  # type: ignore[no-untyped-def]
        clock = Clock()
        cluster = connectedNodes(n, clock, heartbeat=HEARTBEAT, **kw)  # type: ignore[arg-type]
        self.addCleanup(cluster.stop)
        cluster.advance(0.5, step=0.05)
        return clock, cluster

    def test_nodesRecogniseEachOther(self) -> None:
        _, cluster = self.cluster(3)
        for d in cluster:
            assert d.heartbeats is not None
            others = [p for p in range(3) if p != d.pnn]
            self.assertEqual([d.heartbeats.isOurs(p) for p in others], [True, True])

    def test_silentLinkDetectedWithinTwoSeconds(self) -> None:
        """
        A link that silently drops everything from node 1 to node 0 is
        declared dead by node 0 within 2 s (the keepalives need 25 s);
        when the link works again the nodes reconnect.
        """
        clock, cluster = self.cluster()
        cluster.network.blackholes.add((1, 0))
        start = clock.seconds()
        while not cluster[0].nodes[1].flags & DISCONNECTED:
            cluster.advance(0.05, step=0.05)
            self.assertLess(clock.seconds() - start, 2.0)
        cluster.network.blackholes.clear()
        cluster.advance(2, step=0.05)
        self.assertEqual(cluster[0].nodes[1].flags & DISCONNECTED, 0)
        self.assertEqual(cluster[1].nodes[0].flags & DISCONNECTED, 0)

    def test_quietClusterNoSuspicion(self) -> None:
        """Nodes that only exchange heartbeats for a minute stay linked."""
        _, cluster = self.cluster(3)
        cluster.advance(60, step=0.05)
        for d in cluster:
            assert d.heartbeats is not None
            self.assertEqual(d.heartbeats.suspicions, 0)
            self.assertEqual([n.flags & DISCONNECTED for n in d.nodes], [0, 0, 0])

    def test_heartbeatsNotInStatistics(self) -> None:
        """Heartbeats are not ctdbd traffic: a cluster with them counts the
        same packets as one without."""
        _, cluster = self.cluster()
        plain = connectedNodes(2, Clock())
        self.addCleanup(plain.stop)
        plain.advance(0.5, step=0.05)
        cluster.advance(3, step=0.05)
        plain.advance(3, step=0.05)
        for name in ("node_packets_recv", "node_packets_sent", "node.req_message"):
            self.assertEqual(
                cluster[0].stats.counters[name], plain[0].stats.counters[name], name
            )
        assert cluster[0].heartbeats is not None
        self.assertGreater(cluster[0].heartbeats.received, 10)


class ElectionWaitTests(SynchronousTestCase):
    """The election lasts longer when a peer may be Samba's ctdbd."""

    def test_allOurs(self) -> None:
        clock = Clock()
        cluster = connectedNodes(3, clock, heartbeat=HEARTBEAT, recovery=True)
        self.addCleanup(cluster.stop)
        cluster.advance(0.5, step=0.05)
        self.assertEqual(cluster.recovery(0).electionWait(), ELECTION_WAIT)

    def test_unrecognisedPeer(self) -> None:
        """Without heartbeats, a peer may be a ctdbd: it answers an
        election message after 0.5 s, so the wait is longer than that."""
        clock = Clock()
        cluster = connectedNodes(3, clock, recovery=True)
        self.addCleanup(cluster.stop)
        cluster.advance(0.5, step=0.05)
        self.assertEqual(cluster.recovery(0).electionWait(), CTDBD_ELECTION_WAIT)
        self.assertGreater(CTDBD_ELECTION_WAIT, 0.5 + 0.25)


class HeartbeatOptionTests(SynchronousTestCase):
    """C{twistd ctdb --heartbeat}: not a tunable (4.17's list is kept)."""

    def test_parse(self) -> None:
        from twisted.python import usage

        from ctdb.tap import parseHeartbeat

        self.assertEqual(parseHeartbeat("0.25:1.5"), (0.25, 1.5))
        self.assertIsNone(parseHeartbeat("off"))
        for bad in ("1.5", "2:1", "0:1", "x:y"):
            with self.assertRaises(usage.UsageError):
                parseHeartbeat(bad)

    def test_notATunable(self) -> None:
        from ctdb.protocols.tunables import Tunables

        self.assertIsNone(Tunables().canonical("Heartbeat"))
