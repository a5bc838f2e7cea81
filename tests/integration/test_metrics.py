# -*- test-case-name: tests.integration.test_metrics -*-
"""
The metrics endpoint of real nodes: a 3-node cluster of our daemons
(C{ctdb-cluster setup --metrics-port}), each serving C{/metrics} on its
own address, scraped over HTTP with treq while the cluster works: pings
and remote controls from Samba's C{ctdb} tool, a record migrating between
nodes (C{ctdb writekey} on one node, then another), a forced recovery
(C{ctdb recover}) and a node going away.  Each scrape is parsed with
prometheus_client's parser, and the figures must move as they should.
The drop-in C{ctdbd} serves its metrics where ctdb.conf's C{[metrics]}
section says, and refuses a bad endpoint there as ctdbd refuses a bad
value.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import treq
from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from ctdb.cluster import LocalCluster
from tests.metrics._scrape import Scrape, assertRecoveredSince

from ._clusters import ctdbTool, makeCluster, randomBase, tempDir
from .test_ctdbd_dropin import killRecorded, runCtdbd, tool, writeNode
from .test_exactness import waitSettled

NODES = 3


class MetricsEndpointTests(TestCase):
    """Scraping a working cluster."""

    timeout = 180

    def setUp(self) -> None:
        self.port = random.randint(20000, 60000)
        self.cluster: LocalCluster = makeCluster(self, NODES, metricsPort=self.port)
        waitSettled(self.cluster, NODES)

    @defer.inlineCallbacks
    def scrape(self, pnn: int) -> Any:
        """Node C{pnn}'s metrics, over HTTP."""
        url = self.cluster.metricsURL(pnn)
        assert url is not None
        response = yield treq.get(url, persistent=False, timeout=10)
        self.assertEqual(response.code, 200)
        [contentType] = response.headers.getRawHeaders("content-type")
        self.assertTrue(contentType.startswith("text/plain; version=0.0.4"))
        text = yield treq.text_content(response, encoding="utf-8")
        return Scrape(text)

    @defer.inlineCallbacks
    def scrapeAll(self) -> Any:
        scrapes = {}
        for pnn in range(NODES):
            scrapes[pnn] = yield self.scrape(pnn)
        return scrapes

    @defer.inlineCallbacks
    def waitFor(self, pnn: int, check: Any, timeout: float = 30) -> Any:
        """Scrape node C{pnn} until C{check(scrape)} holds; the last scrape."""
        deadline = time.monotonic() + timeout
        while True:
            s = yield self.scrape(pnn)
            if check(s):
                return s
            if time.monotonic() > deadline:
                self.fail(f"node {pnn}: condition not met in {timeout} s")
            yield task.deferLater(reactor, 0.2, lambda: None)

    def tool(self, pnn: int, *args: str) -> str:
        proc = ctdbTool(self.cluster, pnn, *args)
        self.assertEqual(proc.returncode, 0, (args, proc.stdout, proc.stderr))
        return proc.stdout

    @defer.inlineCallbacks
    def test_endpoint(self) -> Any:
        """Every node serves its own figures, all named ctdb_: its pnn, all
        nodes OK, its events run, one leader everyone agrees on, one
        generation."""
        scrapes = yield self.scrapeAll()
        leaders = set()
        generations = set()
        for pnn, s in scrapes.items():
            for name in s.families:
                self.assertTrue(name.startswith("ctdb_"), name)
            self.assertEqual(s.value("ctdb_pnn"), pnn)
            self.assertEqual(s.value("ctdb_runstate", {"state": "RUNNING"}), 1)
            self.assertEqual(s.value("ctdb_recovery_mode"), 0)
            self.assertEqual(s.value("ctdb_nodes"), NODES)
            for k in range(NODES):
                labels = {"node": str(k), "address": self.cluster.address(k)}
                self.assertEqual(s.value("ctdb_node_ok", labels), 1)
            # ctdb-cluster start waited for every node's first monitor event
            self.assertGreaterEqual(
                s.value("ctdb_monitor_events_total", {"result": "success"}), 1
            )
            self.assertEqual(
                s.value("ctdb_events_total", {"event": "setup", "result": "success"}),
                1,
            )
            leaders.add(s.value("ctdb_leader"))
            generations.add(s.value("ctdb_generation"))
        self.assertEqual(len(leaders), 1)
        [leader] = leaders
        self.assertIn(leader, range(NODES))
        self.assertEqual(scrapes[int(leader)].value("ctdb_is_leader"), 1)
        self.assertEqual(len(generations), 1)

    @defer.inlineCallbacks
    def test_pings(self) -> Any:
        """Pings from a local client count as its controls; a ping of
        another node counts on that node as a control from a node."""
        before = yield self.scrapeAll()
        for _ in range(5):
            self.tool(0, "ping")
        for _ in range(3):
            self.tool(0, "-n", "2", "ping")
        after = yield self.scrapeAll()

        def up(pnn: int, name: str) -> float:
            return after[pnn].since(before[pnn], name)

        self.assertGreaterEqual(up(0, "ctdb_client_req_control_total"), 8)
        self.assertGreaterEqual(up(0, "ctdb_client_packets_recv_total"), 8)
        self.assertGreaterEqual(up(2, "ctdb_node_req_control_total"), 3)
        self.assertGreaterEqual(up(0, "ctdb_node_reply_control_total"), 3)
        self.assertGreaterEqual(up(2, "ctdb_node_packets_recv_total"), 3)

    @defer.inlineCallbacks
    def test_migration(self) -> Any:
        """A record written on node 1 and then on node 2 migrates: node 2's
        client made a record call, a REPLY_DMASTER came to it, and both
        nodes count the record in their copy of the database."""
        db = f"metrics_{random.randint(0, 2**32):08x}.tdb"
        self.tool(0, "attach", db)
        before = yield self.scrapeAll()
        self.tool(1, "writekey", db, "key", "one")
        self.tool(2, "writekey", db, "key", "two")
        self.assertIn("two", self.tool(0, "readkey", db, "key"))
        after = yield self.scrapeAll()

        def up(pnn: int, name: str) -> float:
            return after[pnn].since(before[pnn], name)

        self.assertGreaterEqual(up(2, "ctdb_client_req_call_total"), 1)
        self.assertGreaterEqual(up(2, "ctdb_node_reply_dmaster_total"), 1)
        self.assertGreaterEqual(
            sum(up(k, "ctdb_node_req_dmaster_total") for k in range(NODES)), 1
        )
        for pnn in (1, 2):
            s = after[pnn]
            self.assertGreaterEqual(s.value("ctdb_databases", {"kind": "volatile"}), 1)
            self.assertGreaterEqual(
                s.value("ctdb_database_records", {"db": db, "kind": "volatile"}), 1
            )

    @defer.inlineCallbacks
    def test_recovery(self) -> Any:
        """ctdb recover: every node took part in one more recovery and has
        a new generation, the same everywhere; the leader counted the
        recovery it ran, with its duration, and a takeover run after it."""
        before = yield self.scrapeAll()
        leader = int(before[0].value("ctdb_leader"))
        self.tool(0, "recover")
        waitSettled(self.cluster, NODES)
        after = yield self.scrapeAll()
        generations = set()
        for pnn in range(NODES):
            s = after[pnn]
            assertRecoveredSince(self, s, before[pnn])
            self.assertEqual(s.value("ctdb_recovery_mode"), 0)
            generations.add(s.value("ctdb_generation"))
        self.assertEqual(len(generations), 1)
        s, old = after[leader], before[leader]
        ok = {"result": "success"}
        self.assertGreaterEqual(s.since(old, "ctdb_leader_recoveries_total", ok), 1)
        self.assertGreater(
            s.value("ctdb_leader_recovery_duration_seconds_count"),
            old.value("ctdb_leader_recovery_duration_seconds_count"),
        )
        self.assertGreater(s.value("ctdb_leader_recovery_duration_seconds_sum"), 0)
        self.assertGreaterEqual(s.since(old, "ctdb_takeover_runs_total", ok), 1)

    @defer.inlineCallbacks
    def test_nodeGone(self) -> Any:
        """A stopped node shows as disconnected on the others, which leave
        it out of their vnn map."""
        self.cluster.stop([2])
        gone = {"node": "2", "address": self.cluster.address(2)}
        s = yield self.waitFor(
            0,
            lambda s: (
                s.value("ctdb_node_flag", {**gone, "flag": "disconnected"}) == 1
                and s.value("ctdb_vnnmap_size") == NODES - 1
                and s.value("ctdb_recovery_mode") == 0
            ),
        )
        self.assertEqual(s.value("ctdb_node_ok", gone), 0)
        self.assertEqual(
            s.value("ctdb_node_ok", {"node": "1", "address": self.cluster.address(1)}),
            1,
        )


class DropInTests(TestCase):
    """The drop-in ctdbd with a [metrics] section in its ctdb.conf."""

    timeout = 120

    def node(self, endpoint: str) -> Path:
        d = Path(tempDir(self, "txctdb-dm-")) / "node.0"
        writeNode(d, [self.address], 0, f"[metrics]\n\tendpoint = {endpoint}\n")
        self.addCleanup(killRecorded, d)
        return d

    def setUp(self) -> None:
        self.address = randomBase("ours")
        self.port = random.randint(20000, 60000)

    @defer.inlineCallbacks
    def test_served(self) -> Any:
        """ctdbd serves /metrics on the endpoint of its ctdb.conf."""
        d = self.node(f"tcp:{self.port}:interface={self.address}")
        proc = runCtdbd(d)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.addCleanup(tool, d, "shutdown")
        url = f"http://{self.address}:{self.port}/metrics"
        response = yield treq.get(url, persistent=False, timeout=10)
        self.assertEqual(response.code, 200)
        s = Scrape((yield treq.text_content(response, encoding="utf-8")))
        self.assertEqual(s.value("ctdb_pnn"), 0)
        self.assertEqual(s.value("ctdb_nodes"), 1)

    def test_badEndpoint(self) -> None:
        """A bad endpoint refuses the configuration: exit 1, ctdbd-style
        messages, nothing started."""
        d = self.node("tcp:nine")
        proc = runCtdbd(d)
        self.assertEqual(proc.returncode, 1)
        lines = proc.stderr.splitlines()
        self.assertTrue(
            lines[0].startswith("Invalid value for [metrics] -> endpoint = tcp:nine"),
            lines,
        )
        self.assertEqual(
            lines[1:],
            [
                'conf: validation for option "endpoint" failed',
                f"Failed to load configuration file {d}/ctdb.conf",
            ],
        )
        self.assertFalse((d / "run" / "ctdbd.pid").exists())
