# -*- test-case-name: tests.daemon.test_statistics_memdump -*-
"""
Tests for L{ctdb.daemon.memdump}: DUMP_MEMORY's report has real figures
(what L{measure} finds, the kernel's sizes, the garbage collector's
generations) in the shape of talloc_report_full that Samba's
debug.003.dumpmemory reads.
"""

from __future__ import annotations

import gc
import os
import re
import struct
import sys

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.daemon.memdump import measure, memoryReport
from ctdb.protocols.controls import Control
from ctdb.protocols.srvids import CTDB_SRVID_MEM_DUMP
from ctdb.testing import FakeClient, connectedNodes

#: debug.003.dumpmemory's pattern, line by line
PATTERN = re.compile(
    r"^(\s.+\s+contains\s+\d+ bytes in\s+\d+ blocks \(ref \d+\)\s+0x[0-9a-f]+"
    r"|\s+reference to: .+"
    r"|full talloc report on .+ \(total\s+\d+ bytes in \d+ blocks\))$"
)
LINE = re.compile(
    r"^(\s+)(.+?)\s+contains\s+(\d+) bytes in\s+(\d+) blocks \(ref 0\) 0x([0-9a-f]+)$"
)


class _Thing:
    def __init__(self, payload: object) -> None:
        self.payload = payload

    def method(self) -> None:
        pass


class MeasureTests(SynchronousTestCase):
    """measure: the objects reachable from a root, each counted once."""

    def test_listOfBytes(self) -> None:
        """A list and its three items: four objects, their getsizeof."""
        items = [b"a" * 10, b"b" * 20, b"c" * 30]
        root = list(items)
        size, count = measure(root, set(), [1000])
        self.assertEqual(count, 4)
        self.assertEqual(size, sys.getsizeof(root) + sum(map(sys.getsizeof, items)))

    def test_sharedOnce(self) -> None:
        """An object reachable from two roots counts in the first only."""
        shared = b"x" * 1000
        seen: set[int] = set()
        first = measure([shared], seen, [1000])
        second = measure([shared], seen, [1000])
        self.assertEqual(first[1], 2)
        self.assertEqual(second[1], 1)

    def test_notFollowed(self) -> None:
        """Functions, classes, modules and bound methods are not followed:
        a list of them is one object."""
        thing = _Thing([1.5])
        root = [thing.method, os, _Thing, len, measure]
        size, count = measure(root, set(), [1000])
        self.assertEqual((size, count), (sys.getsizeof(root), 1))

    def test_budget(self) -> None:
        """No more objects than the budget allows are visited."""
        budget = [3]
        _, count = measure([[i] for i in range(100)], set(), budget)
        self.assertEqual(count, 3)
        self.assertEqual(budget, [0])


class ReportTests(SynchronousTestCase):
    """The report of a node of a fake cluster."""

    def setUp(self) -> None:
        self.cluster = connectedNodes(3, Clock())
        self.addCleanup(self.cluster.stop)
        self.cluster.databases(0).attach("locking.tdb", 0)
        self.client = self.cluster.client(0)
        self.daemon = self.cluster[0]

    def test_pattern(self) -> None:
        """Every line matches debug.003.dumpmemory's pattern, and there are
        at least 10 lines."""
        lines = memoryReport(self.daemon).decode().splitlines()
        self.assertGreaterEqual(len(lines), 10)
        self.assertEqual([line for line in lines if not PATTERN.match(line)], [])

    def test_parts(self) -> None:
        """One line per node, client and database, each with the address of
        the object it measures; the title's total is at least the sum of
        its lines."""
        text = memoryReport(self.daemon).decode()
        head, _, _ = text.partition("full talloc report on 'process")
        lines = head.splitlines()
        title = re.match(
            r"full talloc report on 'ctdb_context' \(total\s+(\d+)", lines[0]
        )
        assert title is not None
        parts = [LINE.match(line) for line in lines[1:]]
        self.assertNotIn(None, parts)
        names = [m.group(2) for m in parts if m]
        self.assertEqual(names.count("struct ctdb_node"), 3)
        self.assertEqual(names.count("struct ctdb_client"), 1)
        self.assertEqual(names.count("struct ctdb_db_context"), 1)
        addresses = {int(m.group(5), 16) for m in parts if m}
        self.assertIn(id(self.daemon.nodes[1]), addresses)
        self.assertIn(id(self.daemon.tunables), addresses)
        self.assertGreaterEqual(
            int(title.group(1)), sum(int(m.group(3)) for m in parts if m)
        )

    def test_growsWithData(self) -> None:
        """A part's figures are measured at the call: the database's line
        grows by at least the records stored in it."""

        def dbLine() -> tuple[int, int]:
            for line in memoryReport(self.daemon).decode().splitlines():
                m = LINE.match(line)
                if m and m.group(2) == "struct ctdb_db_context":
                    return int(m.group(3)), int(m.group(4))
            raise AssertionError("no database line")

        size, blocks = dbLine()
        store = self.cluster.databases(0).byName["locking.tdb"].store
        for i in range(100):
            store.store(b"key%d" % i, bytes(1000 + i))
        size2, blocks2 = dbLine()
        self.assertGreaterEqual(size2 - size, 100 * 1000)
        self.assertGreaterEqual(blocks2 - blocks, 200)

    def test_process(self) -> None:
        """The process report: its pid, the resident size as the kernel
        says (VmRSS) and a line per garbage collector generation with the
        number of objects it tracks."""
        text = memoryReport(self.daemon).decode()
        _, _, tail = text.partition(f"full talloc report on 'process {os.getpid()}'")
        self.assertTrue(tail)
        lines = tail.splitlines()[1:]
        names = [m.group(2) for m in map(LINE.match, lines) if m]
        self.assertIn("VmRSS resident", names)
        generations = [n for n in names if n.startswith("gc generation ")]
        self.assertEqual(len(generations), len(gc.get_stats()))
        gen2 = next(
            m for m in map(LINE.match, lines) if m and "generation 2" in m.group(2)
        )
        self.assertGreater(int(gen2.group(4)), 1000)

    def test_control(self) -> None:
        """DUMP_MEMORY answers the report."""
        client = FakeClient(self.daemon)
        reqid = client.control(Control.DUMP_MEMORY)
        self.cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 0)
        self.assertTrue(
            reply.data.startswith(b"full talloc report on 'ctdb_context' (total")
        )

    def test_message(self) -> None:
        """CTDB_SRVID_MEM_DUMP (ctdb rddumpmemory) answers the report as a
        message to the srvid it names."""
        client = FakeClient(self.daemon)
        client.control(Control.REGISTER_SRVID, srvid=0xABCD)
        client.sendMessage(0, CTDB_SRVID_MEM_DUMP, struct.pack("<IIQ", 0, 0, 0xABCD))
        self.cluster.flush()
        got = [data for srvid, data in client.messages() if srvid == 0xABCD]
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].startswith(b"full talloc report on 'ctdb_context'"))
