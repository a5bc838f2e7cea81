# -*- test-case-name: tests.events.test_lifecycle -*-
"""
Tests for L{ctdb.events.lifecycle}: the events a node runs from its start
to its end and the run states they take it through, in whole in-memory
clusters whose nodes run their events through a fake event runner; and
the recovery controls that wait for the C{startrecovery} and C{recovered}
events (L{ctdb.recovery.controls}).
"""

from __future__ import annotations

import errno

from twisted.internet import defer

from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.testing import FakeClient
from tests.events._fakes import EventClusterTestCase, startNode

RS = C.RunState


class StartTests(EventClusterTestCase):
    """init, setup, the first recovery, startup, then monitoring."""

    def test_orderAndRunstates(self) -> None:
        """A node runs init in runstate INIT, setup in SETUP, the first
        recovery's startrecovery in FIRST_RECOVERY, startup in STARTUP,
        and then monitor events in RUNNING; the notification script is
        told init, setup and startup in that order."""
        self.makeCluster()
        self.settle()
        for pnn, runner in self.runners.items():
            seen = [(e, rs) for e, rs in runner.runstates if e != "ipreallocated"]
            first = seen[:5]
            self.assertEqual(
                first,
                [
                    ("init", RS.INIT),
                    ("setup", RS.SETUP),
                    ("startrecovery", RS.FIRST_RECOVERY),
                    ("recovered", RS.STARTUP),
                    ("startup", RS.STARTUP),
                ],
                pnn,
            )
            self.assertIn(("monitor", RS.RUNNING), seen)
            self.assertNotIn("monitor", [e for e, rs in seen if rs != RS.RUNNING], pnn)
            self.assertTrue(self.lifecycle(pnn).started)
            self.assertEqual(
                self.health(pnn).notifier.sent[:3],  # type: ignore[union-attr]
                ["init", "setup", "startup"],
            )

    def test_noRunningBeforeStartup(self) -> None:
        """The node stays in STARTUP after its first recovery until its
        startup event succeeded; a failing startup event is tried again
        every 5 s, and the node is RUNNING (and notifies startup) once it
        passes."""
        self.makeCluster(n=2)
        runner = self.runners[1]
        runner.results["startup"] = 1
        self.until(lambda: len(runner.times("startup")) >= 3)
        self.assertEqual(self.cluster[1].runstate, RS.STARTUP)
        self.assertEqual(self.cluster[0].runstate, RS.RUNNING)
        self.assertNotIn("startup", self.health(1).notifier.sent)  # type: ignore[union-attr]
        self.assertEqual(runner.times("monitor"), [])
        self.assertGaps(runner.times("startup")[:3], [5, 5])
        runner.results["startup"] = 0
        self.until(lambda: self.cluster[1].runstate == RS.RUNNING)
        self.assertIn("startup", self.health(1).notifier.sent)  # type: ignore[union-attr]
        self.settle()

    def test_startupWaitsAfterRecovery(self) -> None:
        """Without a fast start, startup waits until RerecoveryTimeout + 3
        seconds passed since the last recovery ended."""
        self.makeCluster(n=2, tunables={"RerecoveryTimeout": 10})
        runner = self.runners[0]
        self.until(lambda: bool(runner.times("startup")))
        startup = runner.times("startup")[0]
        recovered = [t for t in runner.times("recovered") if t <= startup][-1]
        self.assertGreaterEqual(startup - recovered, 13)
        self.assertLess(startup - recovered, 14.5)

    def test_fastStart(self) -> None:
        """With a fast start (ctdbd's test mode) startup follows the first
        recovery at the next once-a-second check."""
        self.makeCluster(n=2, tunables={"RerecoveryTimeout": 10}, start=False)
        for pnn in (0, 1):
            self.lifecycle(pnn).fastStart = True
            startNode(self.cluster, pnn)
        runner = self.runners[0]
        self.until(lambda: bool(runner.times("startup")))
        startup = runner.times("startup")[0]
        recovered = [t for t in runner.times("recovered") if t <= startup][-1]
        self.assertLess(startup - recovered, 1.5)

    def test_withoutRecovery(self) -> None:
        """A node built without a recovery service runs startup right after
        setup (no recovery will come) and is RUNNING."""
        self.makeCluster(n=1, recovery=False)
        self.until(lambda: self.cluster[0].runstate == RS.RUNNING)
        self.assertEqual(
            self.runners[0].runstates[:3],
            [("init", RS.INIT), ("setup", RS.SETUP), ("startup", RS.STARTUP)],
        )

    def test_initFails(self) -> None:
        """A failed init event ends the daemon (ctdb_die): no setup, and no
        shutdown event when it stops."""
        self.makeCluster(n=1, prepare=lambda r: r.results.update(init=1))
        self.assertEqual(self.cluster.shutdowns, [0])
        self.assertEqual(self.runners[0].events(), ["init"])
        self.cluster.node(0).stopService()
        self.assertEqual(self.runners[0].events(), ["init"])
        self.assertEqual(self.health(0).notifier.sent, [])  # type: ignore[union-attr]

    def test_setupFails(self) -> None:
        """A failed (or unrunnable) setup event ends the daemon."""
        self.makeCluster(n=1, prepare=lambda r: r.broken.add("setup"))
        self.assertEqual(self.cluster.shutdowns, [0])
        self.assertEqual(self.runners[0].events(), ["init", "setup"])
        self.assertEqual(self.health(0).notifier.sent, ["init"])  # type: ignore[union-attr]

    def test_startupBroadcast(self) -> None:
        """Once its startup event passed, a node sends the STARTUP control
        to every connected node, once."""
        self.makeCluster(n=3)
        self.settle()
        sent = [
            p.header.destnode
            for p in self.cluster.network.transports[0].sentPackets()
            if isinstance(p, P.ReqControl) and p.opcode == Control.STARTUP
        ]
        self.assertEqual(sorted(sent), [1, 2])


class RecoveryTests(EventClusterTestCase):
    """startrecovery and recovered around each recovery."""

    def control(self, pnn: int, opcode: int) -> tuple[FakeClient, int]:
        client = FakeClient(self.cluster[pnn])
        self.addCleanup(client.disconnect)
        return client, client.control(opcode, destnode=pnn)

    def forceRecovery(self) -> None:
        """The leader recovers (as after a node joins or goes)."""
        for pnn in range(len(self.runners)):
            service = self.cluster.recovery(pnn)
            if service is not None and service.isLeader():
                service.needRecovery = True
                service.scheduleCheck(0)

    def test_eachRecovery(self) -> None:
        """Every recovery runs startrecovery then recovered on every node."""
        self.makeCluster()
        self.settle()
        before = {pnn: r.events().count("recovered") for pnn, r in self.runners.items()}
        self.forceRecovery()
        self.until(
            lambda: all(
                r.events().count("recovered") > before[pnn]
                for pnn, r in self.runners.items()
            )
        )
        for runner in self.runners.values():
            events = [e for e in runner.events() if e in ("startrecovery", "recovered")]
            self.assertEqual(
                events, ["startrecovery", "recovered"] * (len(events) // 2)
            )

    def heldControl(self, opcode: int, event: str, status: int) -> int:
        """Send node 0 the control C{opcode}, check it is not answered
        while C{event} (held) runs, end the event with C{status}; the
        control's reply status."""
        client, reqid = self.control(0, opcode)
        self.cluster.flush()
        self.assertIsNone(client.reply(reqid))
        self.runners[0].answer(event, status)
        self.cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None
        return reply.status

    def test_startRecoveryWaitsForEvent(self) -> None:
        """START_RECOVERY is answered once the startrecovery event ended,
        with its status."""
        self.makeCluster(n=1)
        self.settle()
        self.runners[0].held.add("startrecovery")
        self.assertEqual(
            self.heldControl(Control.START_RECOVERY, "startrecovery", 1), 1
        )

    def test_endRecoveryWaitsForEvent(self) -> None:
        """END_RECOVERY is answered once the recovered event ended, with
        its status; a hung one counts as success."""
        self.makeCluster(n=1)
        self.settle()
        self.runners[0].held.add("recovered")
        self.assertEqual(self.heldControl(Control.END_RECOVERY, "recovered", 2), 2)
        self.assertEqual(
            self.heldControl(Control.END_RECOVERY, "recovered", errno.ETIMEDOUT), 0
        )

    def test_failingStartRecovery(self) -> None:
        """A node whose startrecovery event fails fails the recoveries that
        include it, as in ctdbd: the leader tries again."""
        self.makeCluster()
        self.settle()
        runner = self.runners[2]
        runner.results["startrecovery"] = 1
        before = len(runner.times("startrecovery"))
        self.forceRecovery()
        self.until(lambda: len(runner.times("startrecovery")) >= before + 2)
        self.flushLoggedErrors()

    def test_refusedInRecovery(self) -> None:
        """While the node is in recovery only init, setup, startrecovery,
        shutdown, releaseip and ipreallocated may run: another event is
        refused (-1) without reaching the runner."""
        self.makeCluster(n=1)
        self.settle()
        lifecycle, runner = self.lifecycle(0), self.runners[0]
        self.cluster[0].recmode = C.CTDB_RECOVERY_ACTIVE
        calls = len(runner.calls)
        result = self.successResultOf(lifecycle.runEvent("recovered"))
        self.assertEqual(result, -1)
        self.assertEqual(len(runner.calls), calls)
        self.assertEqual(self.successResultOf(lifecycle.runEvent("startrecovery")), 0)
        self.assertEqual(len(runner.calls), calls + 1)
        self.cluster[0].recmode = C.CTDB_RECOVERY_NORMAL

    def test_unrunnable(self) -> None:
        """An event the runner cannot run counts as -1."""
        self.makeCluster(n=1)
        self.settle()
        self.runners[0].broken.add("startrecovery")
        self.assertEqual(
            self.successResultOf(self.lifecycle(0).runEvent("startrecovery")), -1
        )

    def test_noStatus(self) -> None:
        """A runner that answers no status: the event counts as -1 and
        the Deferred does not fail."""
        self.makeCluster(n=1)
        self.settle()
        runner = self.runners[0]
        runner.held.add("startrecovery")
        running = self.lifecycle(0).runEvent("startrecovery")
        _, d = runner.pending.pop()
        d.callback(None)  # type: ignore[arg-type]
        self.assertEqual(self.successResultOf(running), -1)
        self.assertEqual(self.lifecycle(0).events[-1], ("startrecovery", -1))


class ShutdownTests(EventClusterTestCase):
    """The shutdown event when the node stops."""

    def test_shutdownFirst(self) -> None:
        """Stopping the node runs the shutdown event in runstate SHUTDOWN
        while every part of the node still runs, and stops them once it
        ended."""
        self.makeCluster(n=2)
        self.settle()
        runner = self.runners[0]
        runner.held.add("shutdown")
        node = self.cluster.node(0)
        stopping = node.stopService()
        self.assertEqual(runner.runstates[-1], ("shutdown", RS.SHUTDOWN))
        self.assertTrue(self.cluster[0].running)
        self.assertNoResult(stopping)
        runner.answer("shutdown", 0)
        self.successResultOf(stopping)
        self.assertFalse(self.cluster[0].running)
        self.assertEqual(runner.events().count("shutdown"), 1)

    def test_shutdownBounded(self) -> None:
        """A shutdown event that never ends holds the stop for
        EventScriptTimeout + 5 s at most."""
        self.makeCluster(n=1, tunables={"EventScriptTimeout": 10})
        self.settle()
        self.runners[0].held.add("shutdown")
        stopping: defer.Deferred[object] = self.cluster.node(0).stopService()
        self.clock.advance(14.9)
        self.assertNoResult(stopping)
        self.clock.advance(0.2)
        self.successResultOf(stopping)
        self.assertFalse(self.cluster[0].running)
