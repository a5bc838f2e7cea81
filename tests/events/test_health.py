# -*- test-case-name: tests.events.test_health -*-
"""
Tests for L{ctdb.events.health}: the health a node takes from its monitor
event, in whole in-memory clusters (L{ctdb.testing.connectedNodes}) whose
nodes run their events through a fake event runner.
"""

from __future__ import annotations

import errno

from ctdb.protocols import controls as C
from ctdb.protocols.controls import Control
from ctdb.protocols.srvids import CTDB_SRVID_TAKEOVER_RUN, decodeSrvidMessage
from ctdb.testing import FakeClient
from tests.events._fakes import EventClusterTestCase

ADDRESSES = [f"127.1.0.{i}" for i in range(1, 7)]


class HealthTests(EventClusterTestCase):
    """A node's health follows its monitor event, and the cluster sees it."""

    def hosts(self) -> dict[str, list[int]]:
        """The nodes each public address is up on."""
        return {
            a: sorted(
                pnn
                for pnn, system in self.cluster.addressSystems.items()
                if a in system.addresses
            )
            for a in ADDRESSES
        }

    def test_startsUnhealthy(self) -> None:
        """A node is UNHEALTHY until its first monitor event passes, 2 s
        after its startup event; then it is healthy in every node's view
        and the notification script was told init, setup, startup and
        healthy."""
        self.makeCluster()
        runner = self.runners[0]
        self.until(lambda: "startup" in runner.events())
        self.assertTrue(self.cluster[0].nodes[0].flags & C.NODE_FLAGS_UNHEALTHY)
        self.until(lambda: bool(runner.times("monitor")))
        self.assertApproximates(
            runner.times("monitor")[0] - runner.times("startup")[0], 2.0, 0.15
        )
        self.settle()
        for pnn in range(3):
            self.assertEqual(
                self.health(pnn).notifier.sent,  # type: ignore[union-attr]
                ["init", "setup", "startup", "healthy"],
            )

    def test_failingMonitor(self) -> None:
        """A failing monitor event makes the node UNHEALTHY in every node's
        view, its public addresses move to the others and the notification
        script is told; a passing one makes it healthy again everywhere and
        it hosts addresses again."""
        text = "".join(f"{a}/24 eth0\n" for a in ADDRESSES)
        self.makeCluster(publicAddresses=text)
        self.settle()
        self.until(lambda: all(len(v) == 1 for v in self.hosts().values()))
        self.assertTrue(any(v == [1] for v in self.hosts().values()))

        self.runners[1].results["monitor"] = 1
        self.until(lambda: self.unhealthyEverywhere(1))
        self.assertEqual(self.health(1).notifier.sent[-1], "unhealthy")  # type: ignore[union-attr]
        self.until(lambda: all(v and v != [1] for v in self.hosts().values()))
        self.assertEqual(self.cluster.addressSystems[1].addresses, {})
        for owners in self.hosts().values():
            self.assertEqual(len(owners), 1)

        self.runners[1].results["monitor"] = 0
        self.until(lambda: self.healthyEverywhere(1))
        self.assertEqual(self.health(1).notifier.sent[-1], "healthy")  # type: ignore[union-attr]
        self.until(lambda: any(v == [1] for v in self.hosts().values()))
        for owners in self.hosts().values():
            self.assertEqual(len(owners), 1)

    def test_takeoverRunRequested(self) -> None:
        """A change of health asks every connected node for a takeover run
        (CTDB_SRVID_TAKEOVER_RUN from the node, reply srvid 0)."""
        self.makeCluster()
        self.settle()
        seen: list[tuple[int, int]] = []
        self.cluster[2].addMessageHandler(
            CTDB_SRVID_TAKEOVER_RUN,
            lambda srvid, data: seen.append(decodeSrvidMessage(data)),
        )
        self.runners[1].results["monitor"] = 2
        self.until(lambda: bool(seen))
        self.assertEqual(seen, [(1, 0)])

    def test_timeoutsCounted(self) -> None:
        """Timed-out monitor events change nothing until MonitorTimeoutCount
        of them came in a row; the last one makes the node UNHEALTHY.  A
        cancelled one neither counts nor starts the count again; any other
        result does start it again."""
        self.makeCluster(tunables={"MonitorTimeoutCount": 3})
        self.settle()
        runner, health = self.runners[1], self.health(1)
        done = len(runner.times("monitor"))
        runner.results["monitor"] = errno.ETIMEDOUT
        self.monitors(1, done + 2)
        self.assertTrue(self.healthyEverywhere(1))
        self.assertEqual(health.timeouts, 2)
        runner.results["monitor"] = errno.ECANCELED
        self.monitors(1, done + 3)
        self.assertEqual(health.timeouts, 2)
        self.assertTrue(self.healthyEverywhere(1))
        runner.results["monitor"] = 0
        self.monitors(1, done + 4)
        self.assertEqual(health.timeouts, 0)
        runner.results["monitor"] = errno.ETIMEDOUT
        self.monitors(1, done + 6)
        self.assertTrue(self.healthyEverywhere(1))
        self.monitors(1, done + 7)
        self.until(lambda: self.unhealthyEverywhere(1))
        self.assertEqual(health.timeouts, 3)

    def test_negativeErrnos(self) -> None:
        """-ETIMEDOUT counts as a timeout and -ECANCELED as a cancel."""
        self.makeCluster(tunables={"MonitorTimeoutCount": 2})
        self.settle()
        runner, health = self.runners[0], self.health(0)
        done = len(runner.times("monitor"))
        runner.results["monitor"] = -errno.ECANCELED
        self.monitors(0, done + 1)
        self.assertEqual(health.results[-1], -errno.ECANCELED)
        self.assertTrue(self.healthyEverywhere(0))
        runner.results["monitor"] = -errno.ETIMEDOUT
        self.monitors(0, done + 2)
        self.assertTrue(self.healthyEverywhere(0))
        self.monitors(0, done + 3)
        self.until(lambda: self.unhealthyEverywhere(0))

    def test_intervals(self) -> None:
        """The first monitor event comes 2 s after startup; each interval
        then doubles up to MonitorInterval: a node whose monitor always
        fails (UNHEALTHY from the start, so it never changes) is checked
        after 2, 2, 4, 8, 15 and 15 s."""
        self.makeCluster(n=1, tunables={"MonitorInterval": 15})
        runner = self.runners[0]
        runner.results["monitor"] = 1
        self.until(lambda: len(runner.times("monitor")) >= 6)
        times = [runner.times("startup")[0]] + runner.times("monitor")[:6]
        self.assertGaps(times, [2, 2, 4, 8, 15, 15])
        self.assertEqual(self.health(0).notifier.sent, ["init", "setup", "startup"])  # type: ignore[union-attr]

    def test_intervalAfterChange(self) -> None:
        """A change of health sets the interval back to 5 s."""
        self.makeCluster(n=1, tunables={"MonitorInterval": 20})
        runner = self.runners[0]
        self.until(lambda: len(runner.times("monitor")) >= 4)
        # the first one made the node healthy: 5, 10, 20
        self.assertGaps(runner.times("monitor")[:4], [5, 10, 20])

    def test_launchFailure(self) -> None:
        """A monitor event the runner cannot run is tried again every 5 s
        and changes nothing."""
        self.makeCluster(n=1)
        self.settle()
        runner = self.runners[0]
        runner.broken.add("monitor")
        start = len(runner.times("monitor"))
        self.until(lambda: len(runner.times("monitor")) >= start + 4)
        self.assertGaps(runner.times("monitor")[start + 1 : start + 4], [5, 5])
        self.assertTrue(self.healthyEverywhere(0))
        self.flushLoggedErrors()

    def test_inactiveNotMonitored(self) -> None:
        """No monitor event runs while the node is stopped; after it
        continues, they run again."""
        self.makeCluster()
        self.settle()
        runner = self.runners[1]
        client = FakeClient(self.cluster[1])
        client.control(Control.STOP_NODE, destnode=1)
        self.cluster.advance(2, step=0.1)
        before = len(runner.times("monitor"))
        self.cluster.advance(60, step=0.5)
        self.assertEqual(len(runner.times("monitor")), before)
        client.control(Control.CONTINUE_NODE, destnode=1)
        self.until(lambda: len(runner.times("monitor")) > before)
        client.disconnect()

    def test_stoppedWithTheNode(self) -> None:
        """Stopping the node stops its monitoring: the shutdown event runs
        and no monitor event after it."""
        self.makeCluster(n=1)
        self.settle()
        runner = self.runners[0]
        self.cluster.node(0).stopService()
        self.assertEqual(runner.events()[-1], "shutdown")
        self.assertFalse(self.health(0).active)
        before = len(runner.calls)
        self.clock.advance(100)
        self.assertEqual(len(runner.calls), before)


class HealthRobustnessTests(EventClusterTestCase):
    """What the event runner does wrong, or late, never stops monitoring
    nor gives a wrong health."""

    def test_errbackLater(self) -> None:
        """A monitor event whose Deferred fails after a while counts as one
        that could not be started: tried again 5 s later, health kept."""
        self.makeCluster(n=1)
        self.settle()
        runner = self.runners[0]
        runner.held.add("monitor")
        self.until(lambda: bool(runner.pending))
        _, d = runner.pending.pop()
        start = self.clock.seconds()
        d.errback(RuntimeError("the event daemon went away"))
        runner.held.discard("monitor")
        self.assertFalse(self.cluster[0].nodes[0].flags & C.NODE_FLAGS_UNHEALTHY)
        before = len(runner.times("monitor"))
        self.until(lambda: len(runner.times("monitor")) > before)
        self.assertApproximates(runner.times("monitor")[-1] - start, 5.0, 0.15)

    def test_notANumber(self) -> None:
        """A runner that answers something other than a status is treated
        as one that could not run the event: monitoring goes on."""
        self.makeCluster(n=1)
        self.settle()
        runner = self.runners[0]
        runner.held.add("monitor")
        self.until(lambda: bool(runner.pending))
        _, d = runner.pending.pop()
        runner.held.discard("monitor")
        d.callback(None)  # type: ignore[arg-type]
        before = len(runner.times("monitor"))
        self.until(lambda: len(runner.times("monitor")) > before)
        self.assertFalse(self.cluster[0].nodes[0].flags & C.NODE_FLAGS_UNHEALTHY)

    def test_lateAnswerAfterStop(self) -> None:
        """A monitor event that ends after monitoring stopped (and started
        again) changes nothing and starts no second chain of checks."""
        self.makeCluster(n=1)
        self.settle()
        runner = self.runners[0]
        health = self.health(0)
        runner.held.add("monitor")
        self.until(lambda: bool(runner.pending))
        _, late = runner.pending.pop()
        health.stop()
        health.start()
        runner.held.discard("monitor")
        late.callback(1)
        self.assertFalse(self.cluster[0].nodes[0].flags & C.NODE_FLAGS_UNHEALTHY)
        self.assertNotIn(1, health.results)
        # one chain of checks: 2, 4, 8 s apart, not two interleaved
        start = len(runner.times("monitor"))
        self.until(lambda: len(runner.times("monitor")) >= start + 4)
        self.assertGaps(runner.times("monitor")[start : start + 4], [2, 4, 8])

    def test_monitorOverlapsRecovery(self) -> None:
        """A monitor event still running when recovery starts is cancelled
        (ECANCELED): health and the timeout count are kept; no monitor event
        runs during the recovery, and checks resume after it."""
        self.makeCluster(n=1)
        self.settle()
        runner = self.runners[0]
        health = self.health(0)
        runner.held.add("monitor")
        self.until(lambda: bool(runner.pending))
        _, d = runner.pending.pop()
        runner.held.discard("monitor")
        health.timeouts = 1
        daemon = self.cluster[0]
        daemon.recmode = C.CTDB_RECOVERY_ACTIVE
        d.callback(errno.ECANCELED)
        self.assertEqual(health.timeouts, 1)
        self.assertFalse(daemon.nodes[0].flags & C.NODE_FLAGS_UNHEALTHY)
        before = len(runner.times("monitor"))
        self.clock.advance(60)
        self.assertEqual(len(runner.times("monitor")), before)
        daemon.recmode = C.CTDB_RECOVERY_NORMAL
        self.until(lambda: len(runner.times("monitor")) > before)
