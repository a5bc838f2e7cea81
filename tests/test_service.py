# -*- test-case-name: tests.test_service -*-
"""
ctdb.service.buildCTDBService refuses bad configuration with ConfigError
before anything is started.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

from twisted.application.service import MultiService
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.config.publicaddresses import PublicAddress
from ctdb.errors import ConfigError, CTDBError
from ctdb.service import CTDBNode, buildCTDBService
from ctdb.takeover.fake import FakeAddressSystem
from ctdb.takeover.system import LinuxAddressSystem
from ctdb.takeover.testmode import TestModeAddressSystem


def _tempDirectory(case: SynchronousTestCase) -> Path:
    """A fresh directory removed after the test (outside the checkout:
    trial's mktemp would litter it under pytest; short enough for a unix
    socket's path)."""
    directory = tempfile.mkdtemp(prefix="txctdb-test-")
    case.addCleanup(shutil.rmtree, directory, True)
    return Path(directory)


def build(tmp_path: Path, nodes: str = "127.0.0.1\n", **kwargs: object) -> MultiService:
    (tmp_path / "nodes").write_text(nodes)
    kwargs.setdefault("socketPath", str(tmp_path / "ctdbd.socket"))
    return buildCTDBService(
        reactor=MemoryReactorClock(),  # type: ignore[arg-type]  # no IReactorProcess
        nodesFile=str(tmp_path / "nodes"),
        **kwargs,  # type: ignore[arg-type]
    )


class BuildTests(SynchronousTestCase):
    """L{buildCTDBService} builds a good configuration and refuses a bad one."""

    def setUp(self) -> None:
        self.tmp = _tempDirectory(self)

    def assertConfigError(self, pattern: str, *args: object, **kwargs: object) -> None:
        """build(self.tmp, *args, **kwargs) raises a ConfigError whose
        message matches the regular expression C{pattern}."""
        error = self.assertRaises(ConfigError, build, self.tmp, *args, **kwargs)
        self.assertRegex(str(error), pattern)

    def test_builds(self) -> None:
        """A good configuration builds a MultiService with tunables applied."""
        service = build(self.tmp, tunables={"KeepaliveInterval": 7})
        daemon = service.getServiceNamed("daemon")
        self.assertEqual(daemon.tunables.KeepaliveInterval, 7)
        self.assertIsNotNone(service.getServiceNamed("clients"))

    def test_unknownTunable(self) -> None:
        """An unknown tunable is a ConfigError naming it."""
        self.assertConfigError(
            "unknown tunable NoSuchTunable", tunables={"NoSuchTunable": 1}
        )

    def test_nonLocalAddress(self) -> None:
        """A nodes file whose only address is not local is a ConfigError."""
        self.assertConfigError(
            "no address of the nodes file is local", "10.254.254.254\n"
        )

    def test_explicitNonLocalAddress(self) -> None:
        """An explicit address that is listed but not local is a ConfigError."""
        self.assertConfigError(
            "10.254.254.254 is not a local address",
            "127.0.0.1\n10.254.254.254\n",
            address="10.254.254.254",
        )

    def test_addressNotInNodes(self) -> None:
        """An explicit address missing from the nodes file is a ConfigError."""
        self.assertConfigError(
            "127.0.0.9 is not in the nodes file", address="127.0.0.9"
        )

    def test_missingNodesFile(self) -> None:
        """A missing nodes file is a ConfigError (also a CTDBError and ValueError)."""
        error = self.assertRaises(
            ConfigError,
            buildCTDBService,
            reactor=MemoryReactorClock(),  # no IReactorProcess
            nodesFile=str(self.tmp / "absent"),
            socketPath=str(self.tmp / "s"),
        )
        self.assertRegex(str(error), "cannot read nodes file")
        self.assertIsInstance(error, CTDBError)
        self.assertIsInstance(error, ValueError)

    def test_badLogLevel(self) -> None:
        """An unknown log level name is a ConfigError."""
        self.assertConfigError("invalid log level", logLevel="LOUD")

    def test_socketInUse(self) -> None:
        """A socket another process is serving is a ConfigError, and is left alone."""
        path = str(self.tmp / "ctdbd.socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            server.listen(1)
            self.assertConfigError("is in use by a running daemon", socketPath=path)
            self.assertTrue(os.path.exists(path))

    def test_staleSocketRemoved(self) -> None:
        """A socket file nobody serves (left by a crash) is removed, not an error."""
        path = str(self.tmp / "ctdbd.socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
            dead.bind(path)
        self.assertTrue(os.path.exists(path))
        build(self.tmp, socketPath=path)
        self.assertFalse(os.path.exists(path))


class TakeoverBuildTests(SynchronousTestCase):
    """buildNode always builds the node side of public-IP takeover and the
    leader's takeover runs, as its configuration says."""

    def setUp(self) -> None:
        self.tmp = _tempDirectory(self)

    def test_noAddresses(self) -> None:
        """Without public addresses: an empty list, the Linux system, daemon
        mode, the takeover runner plugged in."""
        node = build(self.tmp)
        assert isinstance(node, CTDBNode)
        self.assertEqual(len(node.takeover.table), 0)
        self.assertIsInstance(node.takeover.system, LinuxAddressSystem)
        self.assertFalse(node.takeover.byScripts)
        self.assertIs(node.daemon.takeoverRunner, node.takeoverRunner)
        self.assertIs(node.getServiceNamed("takeover"), node.takeover)

    def test_fromFile(self) -> None:
        """The public addresses file is read, and kept for reloadips."""
        path = self.tmp / "public_addresses"
        path.write_text("10.0.0.1/24 eth0\n10.0.0.2/24 eth0\n")
        system = FakeAddressSystem()
        node = build(
            self.tmp,
            publicAddressesFile=str(path),
            addressSystem=system,
            addressesByScripts=True,
            failoverDisabled=True,
        )
        assert isinstance(node, CTDBNode)
        self.assertEqual(
            [ip.address for ip in node.takeover.publicIPs()], ["10.0.0.2", "10.0.0.1"]
        )
        self.assertIs(node.takeover.system, system)
        self.assertTrue(node.takeover.byScripts)
        self.assertTrue(node.takeover.failoverDisabled)
        self.assertTrue(node.takeoverRunner.failoverDisabled)
        self.assertEqual(node.takeover.addressesFile, str(path))

    def test_testMode(self) -> None:
        """ctdbd's test mode: nothing on the host changes, no checks."""
        node = build(
            self.tmp,
            publicAddresses=[PublicAddress("192.168.100.1", 24, ("lo",))],
            addressTestMode=True,
        )
        assert isinstance(node, CTDBNode)
        self.assertIsInstance(node.takeover.system, TestModeAddressSystem)
        self.assertTrue(node.takeover.byScripts)
        self.assertFalse(node.takeover.checkAddresses)

    def test_badAddresses(self) -> None:
        """An unknown interface or a bad file is a ConfigError with ctdbd's
        words."""
        error = self.assertRaises(
            ConfigError,
            build,
            self.tmp,
            publicAddresses=[PublicAddress("10.0.0.1", 24, ("eth7",))],
            addressSystem=FakeAddressSystem(),
        )
        self.assertIn("Unknown interface eth7 for public address 10.0.0.1", str(error))
        path = self.tmp / "public_addresses"
        path.write_text("10.0.0.1/24\n")
        error = self.assertRaises(
            ConfigError, build, self.tmp, publicAddressesFile=str(path)
        )
        self.assertIn("No interface specified at line 1", str(error))
