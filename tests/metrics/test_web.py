# -*- test-case-name: tests.metrics.test_web -*-
"""
Tests for L{ctdb.metrics.web} and how a node gets its metrics endpoint:
the C{/metrics} resource (through treq's in-memory client), the service
listening on its endpoint string (a memory reactor), bad endpoint strings
refused by L{ctdb.service.buildNode}, C{twistd ctdb --metrics},
ctdb.conf's C{[metrics]} section and C{ctdb-cluster setup --metrics-port}.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from treq.testing import StubTreq
from twisted.application.service import MultiService
from twisted.internet.error import CannotListenError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site

from ctdb import tap
from ctdb.cluster import LocalCluster
from ctdb.cluster import main as clusterMain
from ctdb.config.ctdbconf import parseConfig
from ctdb.config.paths import CTDBPaths
from ctdb.errors import ConfigError, ConfigLoadError
from ctdb.metrics import checkEndpoint, metricsService, nodeRegistry
from ctdb.metrics.web import MetricsService, metricsSite, parseEndpoint
from ctdb.nodes import parseNodes
from ctdb.service import NodeConfig, buildNode
from ctdb.testing import FakeNodeTransport, connectedNodes


def _tmp(case: SynchronousTestCase) -> Path:
    # Outside the checkout (trial's mktemp would litter it under pytest).
    directory = tempfile.mkdtemp(prefix="txctdb-metrics-")
    case.addCleanup(shutil.rmtree, directory, True)
    return Path(directory)


class ResourceTests(SynchronousTestCase):
    """C{/metrics} over HTTP, in memory."""

    def setUp(self) -> None:
        self.cluster = connectedNodes(2, Clock())
        self.addCleanup(self.cluster.stop)
        site = metricsSite(nodeRegistry(self.cluster[1]))
        self.treq: Any = StubTreq(site.resource)

    def get(self, url: str) -> tuple[Any, bytes]:
        response = self.successResultOf(self.treq.get(url))
        body = self.successResultOf(self.treq.content(response))
        return response, body

    def test_metrics(self) -> None:
        """GET /metrics answers 200 in Prometheus' text format with this
        node's figures."""
        response, body = self.get("http://127.0.0.1:9100/metrics")
        self.assertEqual(response.code, 200)
        self.assertEqual(
            response.headers.getRawHeaders("content-type"),
            [CONTENT_TYPE_PLAIN_0_0_4],
        )
        self.assertIn(b"\nctdb_pnn 1.0\n", body)
        self.assertIn(b"# TYPE ctdb_node_req_control_total counter", body)

    def test_freshEachTime(self) -> None:
        """Each scrape reads the node anew."""
        _, before = self.get("http://127.0.0.1:9100/metrics")
        self.cluster[1].stats.num_recoveries = 41
        _, after = self.get("http://127.0.0.1:9100/metrics")
        self.assertNotIn(b"ctdb_num_recoveries_total 41.0", before)
        self.assertIn(b"ctdb_num_recoveries_total 41.0", after)

    def test_root(self) -> None:
        """/ points at /metrics; other paths are not found."""
        response, body = self.get("http://127.0.0.1:9100/")
        self.assertEqual(response.code, 200)
        self.assertIn(b"/metrics", body)
        response, _ = self.get("http://127.0.0.1:9100/nothing")
        self.assertEqual(response.code, 404)


class _RefusingReactor(MemoryReactorClock):
    def listenTCP(
        self, port: int, factory: Any, backlog: int = 50, interface: str = ""
    ) -> Any:
        raise CannotListenError(interface, port, OSError(98, "Address in use"))


class ServiceTests(SynchronousTestCase):
    """L{MetricsService}: listening on its endpoint while it runs."""

    def setUp(self) -> None:
        self.cluster = connectedNodes(1, Clock())
        self.addCleanup(self.cluster.stop)

    def test_listens(self) -> None:
        """Started, it listens where the endpoint string says, with the
        metrics site; stopped, it stops listening."""
        reactor = MemoryReactorClock()
        service = metricsService(
            self.cluster[0],
            reactor=reactor,  # type: ignore[arg-type]
            endpoint="tcp:9123:interface=127.0.0.7",
        )
        self.assertEqual(service.name, "metrics")
        service.startService()
        [(port, factory, _backlog, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (9123, "127.0.0.7"))
        self.assertIsInstance(factory, Site)
        self.assertIsNotNone(service.port)
        service.stopService()
        self.assertIsNone(service.port)

    def test_cannotListen(self) -> None:
        """An endpoint that cannot be listened on fails the start with a
        ConfigError naming it."""
        service = metricsService(
            self.cluster[0],
            reactor=_RefusingReactor(),  # type: ignore[arg-type]
            endpoint="tcp:9100",
        )
        e = self.assertRaises(ConfigError, service.startService)
        self.assertIn("tcp:9100", str(e))
        self.assertIn("Address in use", str(e))

    def test_badEndpoint(self) -> None:
        """A string that names no endpoint is a ConfigError at once, with
        an example of a good one."""
        for bad in ("", "9100", "bogus:1", "tcp:abc", "tcp:9100:colour=red"):
            e = self.assertRaises(ConfigError, checkEndpoint, bad)
            self.assertIn("tcp:9100:interface=127.0.0.1", str(e))
            self.assertRaises(ConfigError, parseEndpoint, object(), bad)
        checkEndpoint("tcp:9100:interface=127.0.0.1")
        checkEndpoint("unix:/run/ctdb/metrics.socket")


class BuildTests(SynchronousTestCase):
    """L{buildNode} with C{NodeConfig.metricsEndpoint}."""

    def build(self, endpoint: str | None, reactor: Any = None) -> Any:
        return buildNode(
            NodeConfig(
                nodeMap=parseNodes("127.0.0.1\n127.0.0.2\n"),
                pnn=0,
                memoryStores=True,
                withClientSocket=False,
                withRecovery=False,
                metricsEndpoint=endpoint,
            ),
            reactor=reactor or MemoryReactorClock(),  # type: ignore[arg-type]
            transport=FakeNodeTransport(0),
        )

    def test_withEndpoint(self) -> None:
        """The node gets a "metrics" service that listens when the node
        starts."""
        reactor = MemoryReactorClock()
        node = self.build("tcp:9100:interface=127.0.0.1", reactor)
        self.assertIsInstance(node.metrics, MetricsService)
        self.assertIs(node.getServiceNamed("metrics"), node.metrics)
        self.assertEqual(reactor.tcpServers, [])
        node.startService()
        self.addCleanup(node.stopService)
        self.assertEqual([s[0] for s in reactor.tcpServers], [9100])

    def test_without(self) -> None:
        """No endpoint, no metrics service."""
        node = self.build(None)
        self.assertIsNone(node.metrics)
        self.assertNotIn("metrics", {s.name for s in node})

    def test_bad(self) -> None:
        """A bad endpoint string fails the build."""
        self.assertRaises(ConfigError, self.build, "nonsense")

    def test_sourcesRegistered(self) -> None:
        """Databases, takeover (runner and addresses) register their
        metrics sources with the core."""
        node = self.build(None)
        kinds = {type(s).__name__ for s in node.daemon.metricsSources}
        self.assertLessEqual(
            {"DatabaseMetrics", "PublicAddresses", "TakeoverRunner"}, kinds
        )


class TapTests(SynchronousTestCase):
    """C{twistd ctdb --metrics ENDPOINT}."""

    def parse(self, *extra: str) -> tap.Options:
        tmp = _tmp(self)
        nodes = tmp / "nodes"
        nodes.write_text("127.0.0.1\n127.0.0.2\n")
        options = tap.Options()
        options.parseOptions(
            ["--nodes", str(nodes), "--socket", str(tmp / "ctdbd.socket"), *extra]
        )
        return options

    def test_option(self) -> None:
        """--metrics reaches the node; off by default."""
        self.assertIsNone(self.parse()["metrics"])
        options = self.parse("--metrics", "tcp:9100:interface=127.0.0.1")
        self.assertEqual(options["metrics"], "tcp:9100:interface=127.0.0.1")
        node = tap.makeService(options, MemoryReactorClock())
        assert isinstance(node, MultiService)
        self.assertEqual(node.getServiceNamed("metrics").name, "metrics")

    def test_bad(self) -> None:
        """A bad endpoint string is a usage error."""
        e = self.assertRaises(usage.UsageError, self.parse, "--metrics", "nope:1")
        self.assertIn("bad metrics endpoint", str(e))


class ConfigTests(SynchronousTestCase):
    """ctdb.conf's C{[metrics]} section (the drop-in ctdbd)."""

    def setUp(self) -> None:
        self.paths = CTDBPaths.fromEnvironment(
            {"CTDB_BASE": str(_tmp(self)), "CTDB_TEST_MODE": "yes"}
        )

    def test_endpoint(self) -> None:
        """[metrics] endpoint is read; unset, there is none."""
        config = parseConfig("[metrics]\nendpoint = tcp:9100\n", self.paths)
        self.assertEqual(config.metricsEndpoint, "tcp:9100")
        self.assertIsNone(parseConfig("", self.paths).metricsEndpoint)

    def test_bad(self) -> None:
        """A bad endpoint refuses the file with ctdbd's style of message."""
        e = self.assertRaises(
            ConfigLoadError,
            parseConfig,
            "[metrics]\nendpoint = tcp:port\n",
            self.paths,
        )
        texts = [m.text for m in e.messages]
        self.assertTrue(texts[0].startswith("Invalid value for [metrics] -> endpoint"))
        self.assertEqual(texts[-1], 'conf: validation for option "endpoint" failed')

    def test_unknownKey(self) -> None:
        """An unknown key of [metrics] is ignored, as ctdbd ignores those
        of its own sections."""
        config = parseConfig("[metrics]\nport = 9100\n", self.paths)
        self.assertIsNone(config.metricsEndpoint)
        self.assertIn(
            'conf: unknown option [metrics] -> "port"',
            [m.text for m in config.messages],
        )


class ClusterTests(SynchronousTestCase):
    """C{ctdb-cluster setup --metrics-port}: each node on its own address."""

    def test_metricsPort(self) -> None:
        """Node K serves at its address and the given port."""
        directory = _tmp(self)
        self.assertEqual(
            clusterMain(
                [
                    "--dir",
                    str(directory),
                    "setup",
                    "--nodes",
                    "2",
                    "--base",
                    "127.0.3.1",
                    "--metrics-port",
                    "9100",
                ]
            ),
            0,
        )
        cluster = LocalCluster(str(directory))
        self.assertEqual(cluster.metricsEndpoint(1), "tcp:9100:interface=127.0.3.2")
        self.assertEqual(cluster.metricsURL(0), "http://127.0.3.1:9100/metrics")

    def test_off(self) -> None:
        """Without a port no node serves metrics."""
        cluster = LocalCluster(str(_tmp(self)))
        cluster.setup(1)
        self.assertIsNone(cluster.metricsEndpoint(0))
        self.assertIsNone(cluster.metricsURL(0))
