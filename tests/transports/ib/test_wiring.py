# -*- test-case-name: tests.transports.ib.test_wiring -*-
"""
Choosing the InfiniBand transport: C{NodeConfig.transport} in
L{ctdb.service.buildNode}, C{twistd ctdb --transport}, and ctdb.conf's
C{[cluster] transport} for the drop-in ctdbd.  TCP stays the default and
needs no RDMA library; asking for ib without a device fails at once,
saying what is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from ctdb import tap
from ctdb.config import CTDBPaths, parseConfig
from ctdb.errors import ConfigError, ConfigLoadError, VerbsUnavailable
from ctdb.nodes import parseNodes
from ctdb.service import NodeConfig, buildNode
from ctdb.transports.ib.binding import loadVerbs
from ctdb.transports.ib.transport import IBNodeTransport
from ctdb.transports.tcp import TCPNodeTransport
from tests.support.fakeverbs import FakeFabric


def hasDevice() -> bool:
    try:
        loadVerbs()
    except VerbsUnavailable:
        return False
    return True


def config(**kw: object) -> NodeConfig:
    return NodeConfig(
        nodeMap=parseNodes("127.0.0.1\n127.0.0.2\n"),
        pnn=0,
        memoryStores=True,
        withClientSocket=False,
        withRecovery=False,
        **kw,  # type: ignore[arg-type]
    )


class BuildNodeTests(SynchronousTestCase):
    """L{buildNode} picks the transport C{NodeConfig.transport} names."""

    def test_tcpDefault(self) -> None:
        """Without a choice the node runs on TCP."""
        node = buildNode(config(), reactor=MemoryReactorClock())  # type: ignore[arg-type]
        self.assertIsInstance(node.daemon.transport, TCPNodeTransport)
        self.assertEqual(NodeConfig().transport, "tcp")

    def test_ib(self) -> None:
        """C{transport="ib"} builds the InfiniBand transport on the verbs
        given (the libraries otherwise) and the node's address."""
        fabric = FakeFabric()
        self.addCleanup(fabric.close)
        verbs = fabric.verbs("127.0.0.1")
        node = buildNode(
            config(transport="ib", verbs=verbs),
            reactor=MemoryReactorClock(),  # type: ignore[arg-type]
        )
        transport = node.daemon.transport
        assert isinstance(transport, IBNodeTransport)
        self.assertIs(transport.verbs, verbs)
        self.assertEqual(transport.address, "127.0.0.1")

    def test_ibWithoutDevice(self) -> None:
        """Without an RDMA device, building an ib node fails at once with a
        L{ConfigError} naming what is missing (on a host with a device,
        it builds)."""
        if hasDevice():
            node = buildNode(config(transport="ib"), reactor=MemoryReactorClock())  # type: ignore[arg-type]
            self.assertIsInstance(node.daemon.transport, IBNodeTransport)
            return
        error = self.assertRaises(
            ConfigError,
            buildNode,
            config(transport="ib"),
            reactor=MemoryReactorClock(),
        )
        self.assertIsInstance(error, VerbsUnavailable)
        self.assertIn("no RDMA device", str(error))

    def test_unknown(self) -> None:
        """Any other transport is a configuration error."""
        error = self.assertRaises(
            ConfigError,
            buildNode,
            config(transport="udp"),
            reactor=MemoryReactorClock(),
        )
        self.assertIn("udp", str(error))

    def test_tcpLoadsNoRdma(self) -> None:
        """Importing the service and the plugin's module and building a TCP
        node load neither RDMA library (a host without them runs the
        daemon); checked in a fresh interpreter."""
        code = (
            "from twisted.internet.testing import MemoryReactorClock\n"
            "import ctdb.tap\n"
            "from ctdb.nodes import parseNodes\n"
            "from ctdb.service import NodeConfig, buildNode\n"
            "buildNode(NodeConfig(nodeMap=parseNodes('127.0.0.1\\n'), pnn=0,\n"
            "    memoryStores=True, withClientSocket=False, withRecovery=False),\n"
            "    reactor=MemoryReactorClock())\n"
            "maps = open('/proc/self/maps').read()\n"
            "assert 'libibverbs' not in maps and 'librdmacm' not in maps, maps\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


class TapTests(SynchronousTestCase):
    """C{twistd ctdb --transport}."""

    def setUp(self) -> None:
        directory = tempfile.mkdtemp(prefix="txctdb-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.tmp = Path(directory)
        self.nodes = self.tmp / "nodes"
        self.nodes.write_text("127.0.0.1\n127.0.0.2\n")

    def parse(self, *extra: str) -> tap.Options:
        options = tap.Options()
        options.parseOptions(
            ["--nodes", str(self.nodes), "--socket", str(self.tmp / "s"), *extra]
        )
        return options

    def test_default(self) -> None:
        """tcp unless told."""
        self.assertEqual(self.parse()["transport"], "tcp")

    def test_bad(self) -> None:
        """Only tcp and ib."""
        error = self.assertRaises(usage.UsageError, self.parse, "--transport", "udp")
        self.assertIn("tcp or ib", str(error))

    def test_ibWithoutDevice(self) -> None:
        """--transport ib without a device is a usage error naming the
        missing device (twistd prints it and exits 1)."""
        if hasDevice():
            self.assertEqual(self.parse("--transport", "ib")["transport"], "ib")
            return
        error = self.assertRaises(usage.UsageError, self.parse, "--transport", "ib")
        self.assertIn("no RDMA device", str(error))
        self.assertIn("ibv_get_device_list", str(error))


class CtdbConfTests(SynchronousTestCase):
    """ctdb.conf's C{[cluster] transport}."""

    def paths(self) -> CTDBPaths:
        base = tempfile.mkdtemp(prefix="txctdb-test-")
        self.addCleanup(shutil.rmtree, base, True)
        return CTDBPaths.fromEnvironment({"CTDB_BASE": base, "CTDB_TEST_MODE": "yes"})

    def test_values(self) -> None:
        """tcp (the default) and ib are accepted (4.17 refuses ib as
        broken); anything else is refused with ctdbd's message."""
        paths = self.paths()
        self.assertEqual(parseConfig("", paths).get("cluster", "transport"), "tcp")
        config = parseConfig("[cluster]\n\ttransport = ib\n", paths)
        self.assertEqual(config.get("cluster", "transport"), "ib")
        error = self.assertRaises(
            ConfigLoadError, parseConfig, "[cluster]\ntransport = udp\n", paths
        )
        self.assertIn(
            "Invalid value for [cluster] -> transport = udp",
            [m.text for m in error.messages],
        )
