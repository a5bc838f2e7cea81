# -*- test-case-name: tests.integration.test_db_suite_regressions -*-
"""
Regressions found by Samba 4.17's INTEGRATION "database" suite
(scripts/run_samba_integration.py), each reproduced here with Samba's
``ctdb`` tool and our ``ctdb-db-test`` against a local cluster of our
daemons, so that CI (which has no Samba source tree) keeps them fixed:

 - basics.003.detach: C{ctdb detach} detaches on every node;
 - traverse.001.one: a traverse reads the records of nodes that are not
   lmasters (SET_LMASTERROLE off);
 - recovery.003.no_resurrect: a record deleted while a node was stopped
   does not come back from that node's copy;
 - fetch.002.ring-hotkeys: STATISTICS_RESET clears the hot keys;
 - vacuum.001.fast: a record deleted on a node that is not its lmaster is
   vacuumed away on every node.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable

from twisted.trial.unittest import SynchronousTestCase

from ctdb.cluster import LocalCluster

from ._clusters import ctdbTool, helperBin, makeCluster

Tool = Callable[..., str]


def waitUntil(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll C{check} (as the suite's wait_until) for up to C{timeout} s."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def numRecords(tool: Tool, pnn: int, db: str, command: str = "catdb") -> int:
    out = tool(pnn, command, db)
    m = re.search(r"^Dumped (\d+) record(?:s|\(s\))$", out, re.MULTILINE)
    assert m is not None, out
    return int(m.group(1))


class DatabaseSuiteRegressionTests(SynchronousTestCase):
    """Each test on a fresh 3-node cluster of our daemons."""

    cluster: LocalCluster

    def setUp(self) -> None:
        self.cluster = makeCluster(self, 3)

    def tool(self, pnn: int, *args: str) -> str:
        """Stdout of Samba's ctdb tool on node C{pnn}, which must succeed."""
        p = ctdbTool(self.cluster, pnn, *args)
        self.assertEqual(p.returncode, 0, (args, p.returncode, p.stdout, p.stderr))
        return str(p.stdout)

    def dbTest(self, pnn: int, *args: str) -> str:
        """Stdout of our ctdb-db-test on node C{pnn}, which must succeed."""
        env = dict(os.environ)
        env.update(self.cluster.env(pnn))
        p = subprocess.run(
            [os.path.join(helperBin(), "ctdb-db-test"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        self.assertEqual(p.returncode, 0, (args, p.returncode, p.stdout, p.stderr))
        return p.stdout

    def test_detachOnAllNodes(self) -> None:
        """basics.003.detach: with AllowClientDBAttach=0 everywhere, C{ctdb
        detach} on node 0 detaches the database on all nodes."""
        tool = self.tool
        db = "detach_test1.tdb"
        tool(0, "attach", db)
        waitUntil(
            lambda: all(f"name:{db}" in tool(p, "getdbmap") for p in range(3)),
            10,
            "the database attached everywhere",
        )
        for pnn in range(3):
            tool(pnn, "setvar", "AllowClientDBAttach", "0")
        tool(0, "detach", db)
        waitUntil(
            lambda: not any(f"name:{db}" in tool(p, "getdbmap") for p in range(3)),
            10,
            "the database detached everywhere",
        )

    def test_traverseWithoutLmasterRole(self) -> None:
        """traverse.001.one: node 1 has no lmaster role yet holds the record
        (it wrote it last): catdb on node 0 shows it."""
        tool = self.tool
        db = "traverse_db.tdb"
        tool(0, "attach", db)
        tool(1, "setlmasterrole", "off")
        waitUntil(
            lambda: (
                not re.search(r"^hash:.* lmaster:1$", tool(0, "status"), re.MULTILINE)
            ),
            20,
            "node 1 out of the vnn map",
        )
        tool(0, "writekey", db, "foo", "bar0")
        tool(1, "writekey", db, "foo", "bar1")
        out = tool(0, "catdb", db)
        self.assertIn("Dumped 1 records", out)
        self.assertIn('data(4) = "bar1"', out)

    def test_noResurrectAfterStop(self) -> None:
        """recovery.003.no_resurrect: a record deleted while node 0 was stopped
        stays deleted after node 0 continues."""
        tool = self.tool
        db = "rec_test.tdb"
        tool(0, "attach", db)
        tool(0, "writekey", db, "test1", "value1")
        for pnn in range(3):
            tool(pnn, "readkey", db, "test1")
        tool(0, "stop")
        waitUntil(lambda: "STOPPED" in tool(1, "status"), 30, "node 0 stopped")
        tool(1, "deletekey", db, "test1")
        tool(1, "recover")
        waitUntil(
            lambda: all(numRecords(tool, p, db, "cattdb") == 0 for p in (1, 2)),
            30,
            "the record gone on nodes 1 and 2",
        )
        tool(0, "continue")
        waitUntil(lambda: "STOPPED" not in tool(1, "status"), 30, "node 0 continued")
        waitUntil(
            lambda: "Recovery mode:NORMAL" in tool(0, "status"),
            30,
            "the recovery done",
        )
        out = tool(0, "catdb", db)
        self.assertNotIn("key(", out)

    def test_statisticsResetClearsHotKeys(self) -> None:
        """fetch.002.ring-hotkeys: STATISTICS_RESET on node 0 clears the hot
        keys of node 0's databases, not those of other nodes."""
        tool = self.tool
        db = "fetch_ring.tdb"
        tool(0, "attach", db)
        for _ in range(2):
            for pnn in (1, 0):
                tool(pnn, "writekey", db, "testkey1", "v")
        hot = re.compile(r"^\s+Count:\d+ Key:[0-9a-f]+$", re.MULTILINE)
        self.assertTrue(hot.search(tool(0, "dbstatistics", db)))
        self.assertTrue(hot.search(tool(1, "dbstatistics", db)))
        tool(0, "statisticsreset")
        self.assertFalse(hot.search(tool(0, "dbstatistics", db)))
        self.assertTrue(hot.search(tool(1, "dbstatistics", db)))

    def test_vacuumDeletesEverywhere(self) -> None:
        """vacuum.001.fast: a record deleted on a node that is not its lmaster
        goes from every node after vacuuming there, then twice on the lmaster;
        the other records stay."""
        tool, dbTest = self.tool, self.dbTest
        db = "vacuum_test.tdb"
        for pnn in range(3):
            tool(pnn, "setvar", "VacuumInterval", "99999")
        tool(0, "attach", db)
        for i in (1, 2):
            tool(0, "writekey", db, f"test{i}", f"value{i}")
            for pnn in range(3):
                tool(pnn, "readkey", db, f"test{i}")
        self.assertEqual([numRecords(tool, p, db, "cattdb") for p in range(3)], [2] * 3)
        lmaster = int(dbTest(0, "get-lmaster", "test1"))
        dnode = next(p for p in range(3) if p != lmaster)
        tool(dnode, "deletekey", db, "test1")
        self.assertIn(f"dmaster: {dnode}\n", dbTest(dnode, "local-read", db, "test1"))
        dbTest(dnode, "vacuum", db)
        dbTest(lmaster, "vacuum", db)
        local = dbTest(lmaster, "local-read", db, "test1")
        self.assertTrue(
            f"dmaster: {lmaster}\n" in local and 'data(0) = ""' in local, local
        )
        self.assertEqual([numRecords(tool, p, db, "cattdb") for p in range(3)], [2] * 3)
        dbTest(lmaster, "vacuum", db)
        self.assertEqual([numRecords(tool, p, db, "cattdb") for p in range(3)], [1] * 3)
        self.assertIn("value2", tool(0, "readkey", db, "test2"))
