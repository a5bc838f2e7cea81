# -*- test-case-name: tests.test_plugin -*-
"""
The twistd plugin: discoverable as C{ctdb}, and its options refuse bad
configuration with a usage message rather than a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from ctdb import tap
from ctdb.protocols.packet import CTDB_PORT

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def _tempDirectory(case: SynchronousTestCase) -> Path:
    """A fresh directory removed after the test (outside the checkout:
    trial's mktemp would litter it under pytest)."""
    directory = tempfile.mkdtemp(prefix="txctdb-test-")
    case.addCleanup(shutil.rmtree, directory, True)
    return Path(directory)


def _setEnvironment(case: SynchronousTestCase, name: str, value: str) -> None:
    """Set the environment variable C{name} to C{value} until C{case} ends."""
    old = os.environ.get(name)
    os.environ[name] = value
    if old is None:
        case.addCleanup(os.environ.pop, name, None)
    else:
        case.addCleanup(os.environ.__setitem__, name, old)


def nodesFile(tmp_path: Path, text: str) -> str:
    path = tmp_path / "nodes"
    path.write_text(text)
    return str(path)


def parse(*args: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(args))
    return options


class PluginTests(SynchronousTestCase):
    """The plugin is found, and its Options parse good command lines."""

    def test_pluginFound(self) -> None:
        """getPlugins(IServiceMaker) yields a ctdb plugin whose options are
        ctdb.tap.Options."""
        makers = {p.tapname: p for p in getPlugins(IServiceMaker)}
        self.assertIn("ctdb", makers)
        maker = makers["ctdb"]
        self.assertIs(maker.options, tap.Options)
        self.assertEqual(maker.makeService.__module__, "ctdb.tap")
        self.assertIn("TDB", maker.description)

    def test_parseOptions(self) -> None:
        """A valid command line parses, with every option carried through."""
        tmp = _tempDirectory(self)
        nodes = nodesFile(tmp, "127.0.0.1\n")
        options = parse(
            "--nodes",
            nodes,
            "--socket",
            str(tmp / "s"),
            "--port",
            "5000",
            "--log-level",
            "DEBUG",
            "--tunable",
            "KeepaliveInterval=2",
            "--tunable",
            "KeepaliveLimit=0x3",
            "--dbdir",
            str(tmp / "v"),
        )
        self.assertEqual(options["nodes"], nodes)
        self.assertEqual(options["socket"], str(tmp / "s"))
        self.assertEqual(options["port"], 5000)
        self.assertEqual(options["log-level"], "DEBUG")
        self.assertEqual(
            options["tunables"], {"KeepaliveInterval": 2, "KeepaliveLimit": 3}
        )
        self.assertEqual(options["dbdir"], str(tmp / "v"))

    def test_defaults(self) -> None:
        """Without options the port is 4379, the socket comes from $CTDB_SOCKET
        and there are no tunables."""
        tmp = _tempDirectory(self)
        _setEnvironment(self, "CTDB_SOCKET", str(tmp / "env.socket"))
        options = parse("--nodes", nodesFile(tmp, "127.0.0.1\n"))
        self.assertEqual(options["port"], CTDB_PORT)
        self.assertEqual(CTDB_PORT, 4379)
        self.assertEqual(options["socket"], str(tmp / "env.socket"))
        self.assertIsNone(options["address"])
        self.assertEqual(options["tunables"], {})
        self.assertEqual(options["log-level"], "NOTICE")

    def test_tunablesNotShared(self) -> None:
        """Tunables given to one Options instance do not leak into the next."""
        nodes = nodesFile(_tempDirectory(self), "127.0.0.1\n")
        parse("--nodes", nodes, "--tunable", "KeepaliveInterval=9")
        self.assertEqual(parse("--nodes", nodes)["tunables"], {})


class UsageErrorTests(SynchronousTestCase):
    """Each bad configuration is a UsageError whose message names the problem."""

    def assertUsageError(
        self, text: str | None, args: list[str] | None, message: str
    ) -> None:
        """
        Parsing C{args}, after C{--nodes} and a nodes file holding C{text}
        unless C{text} is None or C{args} names its own nodes file, is a
        UsageError whose message contains C{message}.
        """
        argv: list[str] = []
        if text is not None and (args is None or "--nodes" not in args):
            argv += ["--nodes", nodesFile(_tempDirectory(self), text)]
        argv += args or []
        error = self.assertRaises(usage.UsageError, parse, *argv)
        self.assertIn(message, str(error))

    def test_nodesRequired(self) -> None:
        """Without --nodes the command line is refused."""
        self.assertUsageError(None, [], "--nodes is required")

    def test_nodesFileMissing(self) -> None:
        """A nodes file that does not exist is named as such."""
        self.assertUsageError(
            "127.0.0.1\n", ["--nodes", "/nonexistent/nodes"], "does not exist"
        )

    def test_invalidNode(self) -> None:
        """A line that is not an address is reported with its line number."""
        self.assertUsageError("not an address\n", None, "nodes:1: invalid node")

    def test_invalidNodeAddress(self) -> None:
        """An IPv4 address with an octet out of range is refused."""
        self.assertUsageError("300.1.1.1\n", None, "invalid node address '300.1.1.1'")

    def test_duplicateNode(self) -> None:
        """An address listed twice is refused."""
        self.assertUsageError(
            "127.0.0.1\n127.0.0.1\n", None, "duplicate node address 127.0.0.1"
        )

    def test_noNodes(self) -> None:
        """A nodes file of deleted nodes and blank lines has no nodes."""
        self.assertUsageError("\n# only deleted\n", None, "no nodes")

    def test_noLocalNode(self) -> None:
        """A nodes file without a local address is refused."""
        self.assertUsageError(
            "10.254.254.254\n", None, "no address of the nodes file is local"
        )

    def test_addressNotInNodes(self) -> None:
        """--address must be one of the nodes file's addresses."""
        self.assertUsageError(
            "127.0.0.1\n", ["--address", "127.0.0.2"], "is not in the nodes file"
        )

    def test_addressNotLocal(self) -> None:
        """--address must be an address of this machine."""
        self.assertUsageError(
            "127.0.0.1\n10.254.254.254\n",
            ["--address", "10.254.254.254"],
            "10.254.254.254 is not a local address",
        )

    def test_unknownTunable(self) -> None:
        """--tunable with a name ctdbd does not know is refused."""
        self.assertUsageError(
            "127.0.0.1\n", ["--tunable", "NoSuchTunable=1"], "unknown tunable"
        )

    def test_tunableWithoutValue(self) -> None:
        """--tunable wants NAME=VALUE."""
        self.assertUsageError(
            "127.0.0.1\n", ["--tunable", "KeepaliveInterval"], "wants NAME=VALUE"
        )

    def test_tunableNotInteger(self) -> None:
        """A tunable's value must be an integer."""
        self.assertUsageError(
            "127.0.0.1\n",
            ["--tunable", "KeepaliveInterval=x"],
            "needs an integer value",
        )

    def test_invalidLogLevel(self) -> None:
        """--log-level must name a debug level."""
        self.assertUsageError(
            "127.0.0.1\n", ["--log-level", "LOUD"], "invalid log level 'LOUD'"
        )


class TwistdTests(SynchronousTestCase):
    """twistd itself, run as a child process, sees the plugin."""

    def test_twistdListsPlugin(self) -> None:
        """`twistd --help` lists the ctdb command, so the editable install
        exposes twisted/plugins to twistd."""
        result = subprocess.run(
            [*TWISTD, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(
            any(line.split()[:1] == ["ctdb"] for line in result.stdout.splitlines()),
            result.stdout,
        )

    def test_twistdUsageMessage(self) -> None:
        """twistd given a nodes file with no local address exits 1 with a
        one-line usage message, not a traceback."""
        tmp = _tempDirectory(self)
        nodes = nodesFile(tmp, "10.254.254.254\n")
        result = subprocess.run(
            [
                *TWISTD,
                "-n",
                "--pidfile=",
                "ctdb",
                "--nodes",
                nodes,
                "--socket",
                str(tmp / "ctdbd.socket"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
            cwd=tmp,
        )
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 1)
        self.assertIn("no address of the nodes file is local to this machine", output)
        self.assertNotIn("Traceback", output)
        self.assertFalse((tmp / "ctdbd.socket").exists())
