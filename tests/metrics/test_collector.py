# -*- test-case-name: tests.metrics.test_collector -*-
"""
Tests for L{ctdb.metrics.collector}, on in-memory clusters built by
L{ctdb.testing.connectedNodes} (every node through
L{ctdb.service.buildNode}): what the core's figures and the subsystems'
samples look like in Prometheus' text format, and that they follow the
cluster (elections, recoveries, client traffic, databases, public
addresses).
"""

from __future__ import annotations

import errno
import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from ctdb.database.ltdb import LtdbHeader
from ctdb.events.metrics import monitorResult
from ctdb.interfaces import IMetricsSource, MetricSample, TimedOutcomes
from ctdb.metrics.collector import PREFIX, NodeCollector, familiesOf, metricName
from ctdb.protocols import controls as C
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control
from ctdb.protocols.nodestate import NODE_FLAGS_BANNED, RunState
from ctdb.protocols.statistics import STAT_COUNTERS
from ctdb.testing import FakeClient, FakeCluster, connectedNodes
from tests.events._fakes import eventCluster
from tests.metrics._scrape import Scrape, assertRecoveredSince, scrape

ADDRESSES = "10.0.0.41/24 eth0\n10.0.0.42/24 eth0\n10.0.0.43/24 eth0\n"


class _ClusterMixin:
    """A settled 3-node cluster with recovery and public addresses."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster: FakeCluster = connectedNodes(
            3, self.clock, recovery=True, publicAddresses=ADDRESSES
        )
        self.addCleanup(self.cluster.stop)  # type: ignore[attr-defined]
        self.settle()

    def settle(self, seconds: float = 5.0) -> None:
        self.cluster.advance(seconds, step=0.05)

    def leader(self) -> int:
        return self.cluster.recovery(0).leader

    def control(self, pnn: int, opcode: int, data: bytes = b"") -> None:
        client = FakeClient(self.cluster[pnn])
        client.control(opcode, data, destnode=pnn)
        self.cluster.flush()
        client.disconnect()


class CoreTests(_ClusterMixin, SynchronousTestCase):
    """The daemon core's own figures."""

    def test_prefix(self) -> None:
        """Every metric's name starts with ctdb_, and each has help text."""
        s = scrape(self.cluster[0])
        self.assertTrue(s.families)
        for name, family in s.families.items():
            self.assertTrue(name.startswith(PREFIX), name)
            self.assertTrue(family.documentation, name)

    def test_identity(self) -> None:
        """The pnn, run state, recovery mode, generation and vnn map."""
        d = self.cluster[1]
        s = scrape(d)
        self.assertEqual(s.value("ctdb_pnn"), 1)
        self.assertEqual(s.value("ctdb_runstate", {"state": "RUNNING"}), 1)
        self.assertEqual(s.value("ctdb_runstate", {"state": "STARTUP"}), 0)
        self.assertEqual(len(s.withName("ctdb_runstate")), len(RunState))
        self.assertEqual(s.value("ctdb_recovery_mode"), 0)
        self.assertEqual(s.value("ctdb_recovering"), 0)
        self.assertEqual(s.value("ctdb_generation"), d.vnnMap.generation)
        self.assertEqual(s.value("ctdb_vnnmap_size"), 3)
        self.assertEqual(s.value("ctdb_nodes"), 3)
        self.assertEqual(s.value("ctdb_capability", {"capability": "leader"}), 1)
        self.assertEqual(s.value("ctdb_capability", {"capability": "lmaster"}), 1)

    def test_statisticsCounters(self) -> None:
        """Every counter of struct ctdb_statistics is there under its
        Samba name; the running counts as counters (_total)."""
        s = scrape(self.cluster[0])
        for name in STAT_COUNTERS:
            base = metricName(name)
            self.assertIn(base, s.families, name)
            if name in ("num_clients", "frozen", "recovering"):
                self.assertEqual(s.families[base].type, "gauge")
            else:
                self.assertEqual(s.families[base].type, "counter")
                self.assertIn(base + "_total", s.sampleNames())
        self.assertEqual(metricName("node.req_call"), "ctdb_node_req_call")

    def test_countersFollowTraffic(self) -> None:
        """Controls from a client and keepalives between nodes move the
        counters; the client count follows connected clients."""
        before = scrape(self.cluster[0])
        client = FakeClient(self.cluster[0])
        for _ in range(5):
            client.control(Control.PING, destnode=0)
        self.cluster.flush()
        during = scrape(self.cluster[0])
        client.disconnect()
        # KeepaliveInterval is 5 s
        self.settle(6)
        after = scrape(self.cluster[0])
        name = "ctdb_client_req_control_total"
        self.assertEqual(during.value(name) - before.value(name), 5)
        self.assertGreaterEqual(
            during.value("ctdb_client_packets_recv_total")
            - before.value("ctdb_client_packets_recv_total"),
            5,
        )
        self.assertEqual(during.value("ctdb_num_clients"), 1)
        self.assertEqual(after.value("ctdb_num_clients"), 0)
        self.assertGreater(
            after.value("ctdb_keepalive_packets_recv_total"),
            before.value("ctdb_keepalive_packets_recv_total"),
        )

    def test_nodeFlags(self) -> None:
        """Each node's flags: the raw value, one series a flag, and OK."""
        self.cluster[0].nodes[2].flags |= NODE_FLAGS_BANNED
        s = scrape(self.cluster[0])
        two = {"node": "2", "address": "127.0.0.3"}
        one = {"node": "1", "address": "127.0.0.2"}
        self.assertEqual(s.value("ctdb_node_flags", two), NODE_FLAGS_BANNED)
        self.assertEqual(s.value("ctdb_node_flag", {**two, "flag": "banned"}), 1)
        self.assertEqual(s.value("ctdb_node_flag", {**two, "flag": "stopped"}), 0)
        self.assertEqual(s.value("ctdb_node_ok", two), 0)
        self.assertEqual(s.value("ctdb_node_flags", one), 0)
        self.assertEqual(s.value("ctdb_node_ok", one), 1)

    def test_deadNode(self) -> None:
        """A node that died shows disconnected on the others."""
        self.cluster.crash(1)
        self.settle()
        s = scrape(self.cluster[0])
        one = {"node": "1", "address": "127.0.0.2", "flag": "disconnected"}
        self.assertEqual(s.value("ctdb_node_flag", one), 1)
        self.assertEqual(s.value("ctdb_vnnmap_size"), 2)

    def test_lockHistogram(self) -> None:
        """Lock waits in ctdbd's buckets become a cumulative histogram with
        the bucket bounds of lock_bucket_id and the latency total as sum."""
        stats = self.cluster[0].stats
        stats.locks_buckets[0] = 3  # below 1 ms
        stats.locks_buckets[3] = 2  # 100 ms to 1 s
        stats.locks_buckets[10] = 1  # 64 s and more
        stats.locks_latency.total = 70.5
        s = scrape(self.cluster[0])
        name = "ctdb_lock_latency_seconds_bucket"
        self.assertEqual(s.value(name, {"le": "0.001"}), 3)
        self.assertEqual(s.value(name, {"le": "0.1"}), 3)
        self.assertEqual(s.value(name, {"le": "1.0"}), 5)
        self.assertEqual(s.value(name, {"le": "64.0"}), 5)
        self.assertEqual(s.value(name, {"le": "+Inf"}), 6)
        self.assertEqual(s.value("ctdb_lock_latency_seconds_count"), 6)
        self.assertEqual(s.value("ctdb_lock_latency_seconds_sum"), 70.5)

    def test_hopCountHistogram(self) -> None:
        """Hop counts: bucket b holds up to 2**b - 1 hops; no sum."""
        stats = self.cluster[0].stats
        stats.hop_count_bucket[0] = 4
        stats.hop_count_bucket[2] = 1
        s = scrape(self.cluster[0])
        name = "ctdb_hop_count_bucket"
        self.assertEqual(s.value(name, {"le": "0.0"}), 4)
        self.assertEqual(s.value(name, {"le": "1.0"}), 4)
        self.assertEqual(s.value(name, {"le": "3.0"}), 5)
        self.assertEqual(s.value(name, {"le": "+Inf"}), 5)
        self.assertIsNone(s.get("ctdb_hop_count_sum"))

    def test_latencySummary(self) -> None:
        """A num/min/max/total latency is a count and a sum, with its
        minimum and maximum as gauges."""
        latency = self.cluster[0].stats.call_latency
        latency.add(0.25)
        latency.add(0.75)
        s = scrape(self.cluster[0])
        self.assertEqual(s.value("ctdb_call_latency_seconds_count"), 2)
        self.assertEqual(s.value("ctdb_call_latency_seconds_sum"), 1.0)
        self.assertEqual(s.value("ctdb_call_latency_min_seconds"), 0.25)
        self.assertEqual(s.value("ctdb_call_latency_max_seconds"), 0.75)

    def test_statisticsReset(self) -> None:
        """STATISTICS_RESET starts the counters again and moves the
        statistics start time."""
        client = FakeClient(self.cluster[0])
        client.control(Control.PING, destnode=0)
        self.cluster.flush()
        self.clock.advance(10)
        self.control(0, Control.STATISTICS_RESET)
        s = scrape(self.cluster[0])
        self.assertEqual(
            s.value("ctdb_statistics_start_time_seconds"), self.clock.seconds()
        )
        self.assertLessEqual(s.value("ctdb_client_req_control_total"), 1)


class RecoveryTests(_ClusterMixin, SynchronousTestCase):
    """The leader, and recoveries, from the core and the recovery service."""

    def test_leader(self) -> None:
        """Every node names the same leader; only the leader says it is."""
        leader = self.leader()
        for d in self.cluster:
            s = scrape(d)
            self.assertEqual(s.value("ctdb_leader"), leader)
            self.assertEqual(s.value("ctdb_is_leader"), float(d.pnn == leader))
            self.assertEqual(s.value("ctdb_election_in_progress"), 0)

    def test_forcedRecovery(self) -> None:
        """A recovery (ctdb recover: SET_RECMODE ACTIVE) counts on every
        node, changes the generation, and is counted with its duration by
        the leader."""
        leader = self.leader()
        before = {d.pnn: scrape(d) for d in self.cluster}
        self.control(0, Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_ACTIVE))
        self.settle()
        for d in self.cluster:
            s = scrape(d)
            assertRecoveredSince(self, s, before[d.pnn])
            self.assertGreaterEqual(s.value("ctdb_last_recovery_duration_seconds"), 0)
        s, old = scrape(self.cluster[leader]), before[leader]
        ok = {"result": "success"}
        name = "ctdb_leader_recoveries_total"
        self.assertGreaterEqual(s.since(old, name, ok), 1)
        self.assertEqual(s.value(name, {"result": "failure"}), 0)
        self.assertEqual(
            s.value("ctdb_leader_recovery_duration_seconds_count"),
            s.value(name, ok),
        )
        for d in self.cluster:
            if d.pnn != leader:
                self.assertEqual(scrape(d).value(name, ok), 0)

    def test_recoveryMode(self) -> None:
        """While in recovery mode the node says so."""
        self.cluster[0].recmode = C.CTDB_RECOVERY_ACTIVE
        s = scrape(self.cluster[0])
        self.assertEqual(s.value("ctdb_recovery_mode"), 1)
        self.assertEqual(s.value("ctdb_recovering"), 1)
        self.cluster[0].recmode = C.CTDB_RECOVERY_NORMAL


class TakeoverTests(_ClusterMixin, SynchronousTestCase):
    """Takeover runs and public addresses."""

    def test_addressesHeld(self) -> None:
        """Each address is held by exactly one node, and every node knows
        which."""
        held = {}
        for d in self.cluster:
            s = scrape(d)
            self.assertEqual(s.value("ctdb_public_addresses"), 3)
            held[d.pnn] = s.value("ctdb_public_addresses_held")
            for address in ("10.0.0.41", "10.0.0.42", "10.0.0.43"):
                owner = s.value("ctdb_public_address_node", {"address": address})
                mine = s.value("ctdb_public_address_held", {"address": address})
                self.assertIn(owner, (0, 1, 2))
                self.assertEqual(mine, float(owner == d.pnn))
        self.assertEqual(sum(held.values()), 3)

    def test_addressesMoveOnDeath(self) -> None:
        """When a node dies, the survivors hold all the addresses."""
        self.cluster.crash(0)
        self.settle()
        held = sum(
            scrape(self.cluster[p]).value("ctdb_public_addresses_held") for p in (1, 2)
        )
        self.assertEqual(held, 3)

    def test_takeoverRuns(self) -> None:
        """The leader counts its takeover runs; a TAKEOVER_RUN adds one."""
        leader = self.cluster[self.leader()]
        name = "ctdb_takeover_runs_total"
        before = scrape(leader).value(name, {"result": "success"})
        self.assertGreaterEqual(before, 1)
        self.cluster.nodes[leader.pnn].takeoverRunner.takeoverRun()
        self.settle(2)
        s = scrape(leader)
        self.assertEqual(s.value(name, {"result": "success"}), before + 1)
        self.assertEqual(
            s.value("ctdb_takeover_run_duration_seconds_count"), before + 1
        )
        self.assertEqual(s.value("ctdb_takeover_run_in_progress"), 0)
        self.assertEqual(s.value("ctdb_takeover_runs_disabled"), 0)


class DatabaseTests(_ClusterMixin, SynchronousTestCase):
    """Databases and their records."""

    def test_databases(self) -> None:
        """Attached databases by kind, records in the local copy, and the
        per-database statistics."""
        manager = self.cluster.databases(0)
        manager.attach("vol.tdb", 0)
        db = manager.byName["vol.tdb"]
        for i in range(4):
            db.store.store(b"k%d" % i, LtdbHeader(1, 0).encode() + b"v")
        db.stats.locks_num_calls = 7
        db.stats.locks_buckets[1] = 2
        db.stats.locks_latency = (2, 0.002, 0.005, 0.007)
        db.stats.hop_count_bucket[1] = 3
        s = scrape(self.cluster[0])
        self.assertEqual(s.value("ctdb_databases", {"kind": "volatile"}), 1)
        self.assertEqual(s.value("ctdb_databases", {"kind": "persistent"}), 0)
        labels = {"db": "vol.tdb"}
        self.assertEqual(
            s.value("ctdb_database_records", {**labels, "kind": "volatile"}), 4
        )
        self.assertEqual(s.value("ctdb_database_locks_calls_total", labels), 7)
        self.assertEqual(s.value("ctdb_database_frozen", labels), 0)
        bucket = "ctdb_database_lock_latency_seconds_bucket"
        self.assertEqual(s.value(bucket, {**labels, "le": "0.001"}), 0)
        self.assertEqual(s.value(bucket, {**labels, "le": "0.01"}), 2)
        self.assertEqual(
            s.value("ctdb_database_lock_latency_seconds_sum", labels), 0.007
        )
        hops = "ctdb_database_hop_count_bucket"
        self.assertEqual(s.value(hops, {**labels, "le": "1.0"}), 3)
        self.assertIsNone(s.get("ctdb_database_hop_count_sum", labels))

    def test_persistent(self) -> None:
        """A persistent database counts under its kind."""
        self.cluster.databases(1).attach("p.tdb", R.DB_FLAGS_PERSISTENT)
        s = scrape(self.cluster[1])
        self.assertEqual(s.value("ctdb_databases", {"kind": "persistent"}), 1)
        self.assertEqual(
            s.value("ctdb_database_records", {"db": "p.tdb", "kind": "persistent"}),
            0,
        )


@implementer(IMetricsSource)
class _Source:
    def __init__(self, samples: list[MetricSample], fail: bool = False) -> None:
        self.samples = samples
        self.fail = fail

    def metricSamples(self) -> list[MetricSample]:
        if self.fail:
            raise RuntimeError("broken source")
        return self.samples


class SourceTests(SynchronousTestCase):
    """Subsystems' plain samples as metric families."""

    def families(self, samples: list[MetricSample]) -> Scrape:
        class _One(Collector):
            def collect(self) -> Iterator[Metric]:
                return familiesOf(samples)

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_One())
        return Scrape(generate_latest(registry).decode())

    def test_kinds(self) -> None:
        """Counters, gauges and histograms, with their labels."""
        s = self.families(
            [
                MetricSample("ctdb_x_total", "counter", "X.", 3, (("a", "1"),)),
                MetricSample("ctdb_x_total", "counter", "X.", 4, (("a", "2"),)),
                MetricSample("ctdb_y", "gauge", "Y.", -1),
                MetricSample(
                    "ctdb_z_seconds",
                    "histogram",
                    "Z.",
                    2.5,
                    buckets=((1.0, 1), (math.inf, 2)),
                ),
            ]
        )
        self.assertEqual(s.value("ctdb_x_total", {"a": "1"}), 3)
        self.assertEqual(s.value("ctdb_x_total", {"a": "2"}), 4)
        self.assertEqual(s.families["ctdb_x"].type, "counter")
        self.assertEqual(s.value("ctdb_y"), -1)
        self.assertEqual(s.value("ctdb_z_seconds_bucket", {"le": "1.0"}), 1)
        self.assertEqual(s.value("ctdb_z_seconds_count"), 2)
        self.assertEqual(s.value("ctdb_z_seconds_sum"), 2.5)

    def test_rejected(self) -> None:
        """A name without ctdb_, an unknown kind, or a sample whose kind or
        labels differ from the first of its name is left out and logged."""
        s = self.families(
            [
                MetricSample("other_metric", "gauge", "No.", 1),
                MetricSample("ctdb_odd", "summary", "No.", 1),
                MetricSample("ctdb_g", "gauge", "G.", 1, (("a", "1"),)),
                MetricSample("ctdb_g", "gauge", "G.", 2, (("b", "1"),)),
                MetricSample("ctdb_g", "counter", "G.", 2, (("a", "2"),)),
            ]
        )
        self.assertEqual(set(s.families), {"ctdb_g"})
        self.assertEqual(s.withName("ctdb_g"), {frozenset({("a", "1")}): 1})

    def test_brokenSource(self) -> None:
        """A source that raises is logged; the other figures still come."""
        clock = Clock()
        cluster = connectedNodes(1, clock)
        self.addCleanup(cluster.stop)
        d = cluster[0]
        d.addMetricsSource(_Source([], fail=True))
        d.addMetricsSource(_Source([MetricSample("ctdb_fine", "gauge", "F.", 1)]))
        s = scrape(d)
        self.assertEqual(s.value("ctdb_fine"), 1)
        self.assertEqual(s.value("ctdb_pnn"), 0)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_coreFamilies(self) -> None:
        """The collector's own families are prometheus_client families."""
        clock = Clock()
        cluster = connectedNodes(1, clock)
        self.addCleanup(cluster.stop)
        families = list(NodeCollector(cluster[0]).coreMetrics())
        self.assertIsInstance(families[0], GaugeMetricFamily)
        self.assertEqual(families[0].name, "ctdb_pnn")


class EventTests(SynchronousTestCase):
    """Events and monitor events, from the event lifecycle."""

    def test_events(self) -> None:
        """The events a node ran count by result; monitor events by how
        they ended, and a failing monitor shows in the node's flags."""
        clock = Clock()
        cluster, runners = eventCluster(2, clock)
        self.addCleanup(cluster.stop)
        cluster.advance(30, step=0.1)
        s = scrape(cluster[0])
        ok = {"result": "success"}
        for event in ("init", "setup", "startup"):
            self.assertEqual(s.value("ctdb_events_total", {"event": event, **ok}), 1)
        self.assertGreaterEqual(
            s.value("ctdb_events_total", {"event": "recovered", **ok}), 1
        )
        monitors = s.value("ctdb_monitor_events_total", ok)
        self.assertGreaterEqual(monitors, 1)
        self.assertEqual(s.value("ctdb_monitor_events_total", {"result": "failure"}), 0)
        self.assertEqual(s.value("ctdb_monitor_timeouts_in_row"), 0)
        runners[0].results["monitor"] = 1
        cluster.advance(30, step=0.1)
        s = scrape(cluster[0])
        self.assertGreaterEqual(
            s.value("ctdb_monitor_events_total", {"result": "failure"}), 1
        )
        me = {"node": "0", "address": "127.0.0.1"}
        self.assertEqual(s.value("ctdb_node_flag", {**me, "flag": "unhealthy"}), 1)

    def test_monitorResults(self) -> None:
        """A monitor event's status as the result label."""
        self.assertEqual(monitorResult(0), "success")
        self.assertEqual(monitorResult(1), "failure")
        self.assertEqual(monitorResult(-errno.ETIMEDOUT), "timeout")
        self.assertEqual(monitorResult(errno.ECANCELED), "cancelled")

    def test_withoutEvents(self) -> None:
        """A node without event scripts has no event metrics."""
        cluster = connectedNodes(1, Clock())
        self.addCleanup(cluster.stop)
        s = scrape(cluster[0])
        self.assertNotIn("ctdb_events", s.families)
        self.assertNotIn("ctdb_monitor_events", s.families)


class TimedOutcomesTests(SynchronousTestCase):
    """L{TimedOutcomes}: what the recovery and takeover sources keep of
    their runs."""

    def test_samples(self) -> None:
        """Runs count by result; a duration on a bound goes into that
        bucket, one past the last finite bound only into +Inf; the sum is
        the durations' total."""
        runs = TimedOutcomes((1.0, 2.0, math.inf))
        runs.note(True, 1.0)
        runs.note(True, 1.5)
        runs.note(False, 7.0)
        self.assertEqual(
            runs.resultSamples("ctdb_x_total", "X."),
            [
                MetricSample(
                    "ctdb_x_total", "counter", "X.", 2.0, (("result", "success"),)
                ),
                MetricSample(
                    "ctdb_x_total", "counter", "X.", 1.0, (("result", "failure"),)
                ),
            ],
        )
        self.assertEqual(
            runs.durationSample("ctdb_x_seconds", "X took."),
            MetricSample(
                "ctdb_x_seconds",
                "histogram",
                "X took.",
                9.5,
                buckets=((1.0, 1.0), (2.0, 2.0), (math.inf, 3.0)),
            ),
        )
