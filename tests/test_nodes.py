# -*- test-case-name: tests.test_nodes -*-
"""
Tests for L{ctdb.nodes}: the nodes file read as Samba 4.17's
ctdb_read_nodes_file (common/ctdb_util.c) and ctdb_sock_addr_from_string
(protocol/protocol_util.c) read it.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from ctdb.errors import ConfigError
from ctdb.nodes import NodeEntry, parseAddress, parseNodes, readNodesFile


def _tempPath(case: SynchronousTestCase) -> str:
    """A path in a fresh temporary directory removed after the test."""
    directory = tempfile.mkdtemp(prefix="txctdb-test-")
    case.addCleanup(shutil.rmtree, directory, True)
    return os.path.join(directory, "nodes")


class ParseNodesTests(SynchronousTestCase):
    """L{parseNodes}."""

    def test_simple(self) -> None:
        """One address per line; pnns count from 0 in file order."""
        nodes = parseNodes("10.0.0.1\n10.0.0.2\n10.0.0.3\n")
        self.assertEqual(
            nodes.nodes,
            (
                NodeEntry(0, "10.0.0.1"),
                NodeEntry(1, "10.0.0.2"),
                NodeEntry(2, "10.0.0.3"),
            ),
        )
        self.assertEqual(len(nodes), 3)

    def test_noFinalNewline(self) -> None:
        """The last line needs no newline."""
        self.assertEqual(len(parseNodes("10.0.0.1\n10.0.0.2")), 2)

    def test_blankLinesSkipped(self) -> None:
        """Blank and whitespace-only lines are not nodes and take no pnn."""
        nodes = parseNodes("\n10.0.0.1\n   \n\t\n10.0.0.2\n\n\n")
        self.assertEqual(
            [(n.pnn, n.address) for n in nodes.nodes],
            [(0, "10.0.0.1"), (1, "10.0.0.2")],
        )

    def test_hashLinesAreDeletedNodes(self) -> None:
        """
        A line starting with '#' (after blanks) is a deleted node: it keeps
        its pnn, has address 0.0.0.0 and later nodes keep their pnns.
        """
        nodes = parseNodes("10.0.0.1\n#10.0.0.2\n  # gone for good\n10.0.0.4\n")
        self.assertEqual(
            nodes.nodes,
            (
                NodeEntry(0, "10.0.0.1"),
                NodeEntry(1, "0.0.0.0", True),
                NodeEntry(2, "0.0.0.0", True),
                NodeEntry(3, "10.0.0.4"),
            ),
        )
        self.assertEqual([n.pnn for n in nodes.active()], [0, 3])

    def test_surroundingBlanks(self) -> None:
        """Leading and trailing spaces and tabs are ignored."""
        nodes = parseNodes(" \t10.0.0.1 \t\n\t10.0.0.2\n")
        self.assertEqual([n.address for n in nodes.nodes], ["10.0.0.1", "10.0.0.2"])

    def test_crlf(self) -> None:
        """CR ends the line (file_lines_load), so CRLF files work."""
        nodes = parseNodes("10.0.0.1\r\n10.0.0.2\r\n")
        self.assertEqual([n.address for n in nodes.nodes], ["10.0.0.1", "10.0.0.2"])

    def test_ipv6(self) -> None:
        """
        IPv6 addresses are canonicalised; brackets are allowed and an
        IPv4-mapped address is its IPv4 address.
        """
        nodes = parseNodes("fd00:0:0::0001\n[fd00::2]\n::ffff:10.0.0.3\n")
        self.assertEqual(
            [n.address for n in nodes.nodes], ["fd00::1", "fd00::2", "10.0.0.3"]
        )

    def test_badAddressNamesLine(self) -> None:
        """An invalid address is a ConfigError naming the file and line."""
        err = self.assertRaises(
            ConfigError, parseNodes, "10.0.0.1\n\n10.0.0.300\n", "/etc/ctdb/nodes"
        )
        self.assertIn("/etc/ctdb/nodes:3", str(err))
        self.assertIn("10.0.0.300", str(err))

    def test_invalidLines(self) -> None:
        """
        As ctdbd, anything but a bare address is invalid: host names, ports,
        trailing text or comments, scope ids, leading zeros, two addresses.
        """
        for line in (
            "node1",
            "10.0.0.1:4379",
            "10.0.0.1 # first",
            "10.0.0.1 10.0.0.2",
            "fe80::1%eth0",
            "010.0.0.1",
            "10.0.0",
            "[10.0.0.1]",
            "fd00::1::2",
        ):
            err = self.assertRaises(ConfigError, parseNodes, f"10.0.0.9\n{line}\n")
            self.assertIn("nodes:2", str(err), line)

    def test_duplicates(self) -> None:
        """
        The same address twice (in any spelling) is refused, naming both
        lines.  (ctdbd does not check; it then misbehaves.)
        """
        err = self.assertRaises(
            ConfigError, parseNodes, "10.0.0.1\nfd00::1\n[fd00:0::1]\n"
        )
        self.assertIn("nodes:3", str(err))
        self.assertIn("line 2", str(err))
        self.assertRaises(ConfigError, parseNodes, "10.0.0.1\n::ffff:10.0.0.1\n")

    def test_deletedAddressesAreNotDuplicates(self) -> None:
        """Several deleted nodes (all 0.0.0.0) are fine."""
        self.assertEqual(len(parseNodes("#\n#\n10.0.0.1\n")), 3)

    def test_noNodes(self) -> None:
        """A file without a single live node is an error."""
        for text in ("", "\n\n", "#\n# x\n"):
            self.assertRaises(ConfigError, parseNodes, text)

    def test_byAddress(self) -> None:
        """byAddress finds live nodes only."""
        nodes = parseNodes("#\n10.0.0.2\n")
        entry = nodes.byAddress("10.0.0.2")
        assert entry is not None
        self.assertEqual(entry.pnn, 1)
        self.assertIsNone(nodes.byAddress("0.0.0.0"))
        self.assertIsNone(nodes.byAddress("10.9.9.9"))


class ParseAddressTests(SynchronousTestCase):
    """L{parseAddress}, ctdb_sock_addr_from_string without a port."""

    def test_valid(self) -> None:
        """IPv4, IPv6, bracketed and mapped addresses are canonicalised."""
        self.assertEqual(parseAddress("192.168.1.1"), "192.168.1.1")
        self.assertEqual(parseAddress("FD00::A"), "fd00::a")
        self.assertEqual(parseAddress("[::1]"), "::1")
        self.assertEqual(parseAddress("::ffff:127.0.0.1"), "127.0.0.1")

    def test_invalid(self) -> None:
        """Everything else is None."""
        for text in ("", "localhost", "1.2.3.4.5", "[]", "::g", "1.2.3.4/24"):
            self.assertIsNone(parseAddress(text), text)


class ReadNodesFileTests(SynchronousTestCase):
    """L{readNodesFile}."""

    def test_reads(self) -> None:
        """The file is parsed and errors name its path."""
        path = _tempPath(self)
        with open(path, "w") as f:
            f.write("10.0.0.1\n#\nbad\n")
        err = self.assertRaises(ConfigError, readNodesFile, path)
        self.assertIn(f"{path}:3", str(err))
        with open(path, "w") as f:
            f.write("10.0.0.1\n#\n10.0.0.3\n")
        self.assertEqual(len(readNodesFile(path)), 3)

    def test_missing(self) -> None:
        """A missing file is a ConfigError, not an OSError."""
        path = _tempPath(self)
        err = self.assertRaises(ConfigError, readNodesFile, path)
        self.assertIn(path, str(err))

    def test_notText(self) -> None:
        """A binary file is a ConfigError."""
        path = _tempPath(self)
        with open(path, "wb") as f:
            f.write(b"\xff\xfe\x00\x01")
        self.assertRaises(ConfigError, readNodesFile, path)
        os.unlink(path)
