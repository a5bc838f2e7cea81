# -*- test-case-name: tests.test_tap -*-
"""
ctdb.tap.makeService builds, from parsed options, a MultiService of named
children that listens only when started, on the reactor it is given.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from twisted.application.service import IService, MultiService
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from ctdb import tap
from ctdb.daemon.core import Daemon


def makeOptions(tmp_path: Path, *extra: str) -> tap.Options:
    nodes = tmp_path / "nodes"
    nodes.write_text("127.0.0.1\n127.0.0.2\n")
    options = tap.Options()
    options.parseOptions(
        [
            "--nodes",
            str(nodes),
            "--socket",
            str(tmp_path / "run" / "ctdbd.socket"),
            "--port",
            "4999",
            *extra,
        ]
    )
    return options


class MakeServiceTests(SynchronousTestCase):
    """L{tap.makeService}."""

    def setUp(self) -> None:
        # Outside the checkout (trial's mktemp would litter it under pytest).
        directory = tempfile.mkdtemp(prefix="txctdb-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.tmp = Path(directory)

    def test_namedChildren(self) -> None:
        """The service is a MultiService with children "daemon", "recovery",
        "clients" and "takeover"."""
        service = tap.makeService(makeOptions(self.tmp), MemoryReactorClock())
        assert isinstance(service, MultiService)  # narrows the type for mypy too
        self.assertTrue(IService.providedBy(service))
        self.assertEqual(
            {child.name for child in service},
            {"daemon", "recovery", "clients", "takeover"},
        )
        daemon = service.getServiceNamed("daemon")
        self.assertIsInstance(daemon, Daemon)
        self.assertEqual(daemon.pnn, 0)

    def test_buildDoesNotListen(self) -> None:
        """Building the service opens nothing: no TCP port, no unix socket."""
        reactor = MemoryReactorClock()
        tap.makeService(makeOptions(self.tmp), reactor)
        self.assertEqual(reactor.tcpServers, [])
        self.assertEqual(reactor.unixServers, [])
        self.assertEqual(reactor.tcpClients, [])
        self.assertFalse((self.tmp / "run" / "ctdbd.socket").exists())
        # ... but the socket's directory is made ready.
        self.assertTrue((self.tmp / "run").is_dir())

    def test_startListens(self) -> None:
        """Started, the node listens on its address and port, connects to its
        peer from its own address, and serves the client socket; it stops
        cleanly."""
        reactor = MemoryReactorClock()
        service = tap.makeService(
            makeOptions(self.tmp, "--address", "127.0.0.1"), reactor
        )
        service.startService()
        try:
            [(port, _factory, _backlog, interface)] = reactor.tcpServers
            self.assertEqual((port, interface), (4999, "127.0.0.1"))
            [(host, peerPort, _f, _timeout, bindAddress)] = reactor.tcpClients
            self.assertEqual(
                (host, peerPort, bindAddress), ("127.0.0.2", 4999, ("127.0.0.1", 0))
            )
            [unix] = reactor.unixServers
            self.assertEqual(unix[0], str(self.tmp / "run" / "ctdbd.socket"))
        finally:
            stopped = service.stopService()
        self.assertIsNotNone(stopped)
        self.assertFalse(service.running)

    def test_chosenAddress(self) -> None:
        """--address picks the node: 127.0.0.2 is pnn 1 of the nodes file."""
        options = makeOptions(self.tmp, "--address", "127.0.0.2")
        service = tap.makeService(options, MemoryReactorClock())
        assert isinstance(service, MultiService)  # narrows the type for mypy too
        daemon = service.getServiceNamed("daemon")
        self.assertIsInstance(daemon, Daemon)
        self.assertEqual(daemon.pnn, 1)


class PublicAddressOptionTests(SynchronousTestCase):
    """C{--public-addresses FILE} and C{--addresses-by-scripts}."""

    def setUp(self) -> None:
        directory = tempfile.mkdtemp(prefix="txctdb-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.tmp = Path(directory)

    def test_addressesServed(self) -> None:
        """The file's addresses are the node's; script mode when asked."""
        path = self.tmp / "public_addresses"
        path.write_text("10.0.0.1/24 lo\n")
        options = makeOptions(
            self.tmp, "--public-addresses", str(path), "--addresses-by-scripts"
        )
        service = tap.makeService(options, MemoryReactorClock())
        takeover = service.getServiceNamed("takeover")  # type: ignore[attr-defined]
        self.assertEqual([ip.address for ip in takeover.publicIPs()], ["10.0.0.1"])
        self.assertTrue(takeover.byScripts)
        self.assertEqual(takeover.addressesFile, str(path))

    def test_defaults(self) -> None:
        """Without the options: no addresses, the daemon adds them itself."""
        service = tap.makeService(makeOptions(self.tmp), MemoryReactorClock())
        takeover = service.getServiceNamed("takeover")  # type: ignore[attr-defined]
        self.assertEqual(takeover.publicIPs(), [])
        self.assertFalse(takeover.byScripts)

    def test_badFile(self) -> None:
        """A missing or malformed file is a usage error with ctdbd's words."""
        path = self.tmp / "public_addresses"
        error = self.assertRaises(
            usage.UsageError, makeOptions, self.tmp, "--public-addresses", str(path)
        )
        self.assertIn("does not exist", str(error))
        path.write_text("10.0.0.1/24\n")
        error = self.assertRaises(
            usage.UsageError, makeOptions, self.tmp, "--public-addresses", str(path)
        )
        self.assertIn("No interface specified at line 1", str(error))
