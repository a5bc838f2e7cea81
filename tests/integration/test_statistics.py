# -*- test-case-name: tests.integration.test_statistics -*-
"""
The statistics of our daemons as Samba's own C{ctdb} tool reads them:
C{ctdb statistics}, C{ctdb stats} (GET_STAT_HISTORY), C{ctdb dbstatistics}
and C{ctdb dumpmemory}, on one 2-node cluster of ours, after driving
traffic whose counts we know.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import time

from ctdb.cluster import LocalCluster
from tests.integration._cases import IntegrationCase
from tests.integration._clusters import waitFor

_SCRIPT = os.path.join(os.path.dirname(sys.executable), "txctdb")

#: debug.003.dumpmemory's pattern
TALLOC = re.compile(
    r"^(\s.+\s+contains\s+\d+ bytes in\s+\d+ blocks \(ref \d+\)\s+0x[0-9a-f]+"
    r"|\s+reference to: .+"
    r"|full talloc report on .+ \(total\s+\d+ bytes in \d+ blocks\))$"
)


def vmRss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class StatisticsTests(IntegrationCase):
    """One 2-node cluster for the class; each test uses databases of its
    own, so that the counts it checks are its own."""

    def cluster(self) -> LocalCluster:
        return self.sharedCluster(2)

    def tool(self, pnn: int, *args: str) -> str:
        result = self.ctdbTool(self.cluster(), pnn, *args)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def machine(self, pnn: int, *args: str) -> list[dict[str, str]]:
        """C{ctdb -X ...}: one dict per row, by the header's names."""
        lines = self.tool(pnn, "-X", *args).splitlines()
        names = lines[0].split("|")
        return [dict(zip(names, line.split("|"))) for line in lines[1:]]

    def statistics(self, pnn: int) -> dict[str, str]:
        (row,) = self.machine(pnn, "statistics")
        return row

    def dbBuckets(self, pnn: int, db: str, which: str) -> list[int]:
        text = self.tool(pnn, "dbstatistics", db)
        m = re.search(rf"^ {which}:((?: \d+)+)$", text, re.MULTILINE)
        assert m is not None, text
        return [int(v) for v in m.group(1).split()]

    def test_calls(self) -> None:
        """Eight writekeys of new records on node 0: eight client calls,
        each counted in total_calls with a call latency sample, none left
        pending; node 1 counts one hop (bucket 0) for each REQ_CALL it
        answered as dmaster, in its totals and for the database."""
        self.tool(0, "attach", "stat_calls.tdb")
        before = [self.statistics(p) for p in (0, 1)]
        for i in range(8):
            self.tool(0, "writekey", "stat_calls.tdb", f"key{i}", f"value{i}")
        after = [self.statistics(p) for p in (0, 1)]

        def delta(pnn: int, name: str) -> int:
            return int(after[pnn][name]) - int(before[pnn][name])

        self.assertEqual(delta(0, "client.req_call"), 8)
        self.assertEqual(delta(0, "total_calls"), 8)
        self.assertEqual(delta(0, "num_call_latency"), 8)
        self.assertEqual(after[0]["pending_calls"], "0")
        self.assertGreaterEqual(float(after[0]["max_call_latency"]), 0.0)
        calls = delta(1, "node.req_call")
        self.assertGreaterEqual(calls, 1)
        self.assertEqual(
            self.dbBuckets(1, "stat_calls.tdb", "hop_count_buckets")[0], calls
        )
        self.assertEqual(
            sum(self.dbBuckets(0, "stat_calls.tdb", "hop_count_buckets")), 0
        )

    def test_memory(self) -> None:
        """memory_used and dumpmemory's process report are the daemon's
        resident size; every dumpmemory and rddumpmemory line has the shape
        debug.003.dumpmemory checks."""
        pid = int(self.tool(0, "getpid").split()[-1])
        used = int(self.statistics(0)["memory_used"])
        rss = vmRss(pid)
        self.assertLess(abs(used - rss), rss // 5)
        for command in ("dumpmemory", "rddumpmemory"):
            lines = self.tool(0, command).splitlines()
            self.assertGreaterEqual(len(lines), 10)
            self.assertEqual([x for x in lines if not TALLOC.match(x)], [])
        text = self.tool(0, "dumpmemory")
        m = re.search(
            rf"^full talloc report on 'process {pid}' \(total\s+(\d+) bytes",
            text,
            re.MULTILINE,
        )
        assert m is not None, text
        self.assertLess(abs(int(m.group(1)) - vmRss(pid)), rss // 5)
        self.assertIn("struct ctdb_db_context", text)

    def test_stats(self) -> None:
        """ctdb stats: one snapshot a second (StatHistoryInterval), newest
        first, each starting where the one before it ended; once an interval
        has passed after the traffic, the snapshots add up to the totals.
        statisticsreset starts the totals again, not the history.  Our
        txctdb stats reads the same history."""
        self.tool(0, "attach", "stat_history.tdb")
        for i in range(3):
            self.tool(0, "writekey", "stat_history.tdb", f"k{i}", "v")
        done = int(time.time())
        waitFor(
            lambda: (
                int(self.machine(0, "stats")[0]["Statistics collected since"]) > done
            ),
            10,
            "a snapshot of an interval after the traffic",
        )
        totals = self.statistics(0)
        rows = self.machine(0, "stats")
        self.assertLessEqual(len(rows), 100)
        for newer, older in itertools.pairwise(rows):
            self.assertEqual(
                newer["Statistics collected since"], older["Current time of statistics"]
            )
        for row in rows:
            spent = int(row["Current time of statistics"]) - int(
                row["Statistics collected since"]
            )
            self.assertIn(spent, (0, 1, 2))
        # the daemon is younger than 100 s: the history has every interval
        self.assertEqual(
            sum(int(r["client.req_call"]) for r in rows), int(totals["client.req_call"])
        )
        self.assertGreaterEqual(sum(int(r["total_calls"]) for r in rows), 3)
        self.assertIn("CTDB version 1", self.tool(0, "stats", "1"))

        self.assertEqual(self.tool(0, "statisticsreset"), "")
        self.assertEqual(self.statistics(0)["client.req_call"], "0")
        rows = self.machine(0, "stats")
        self.assertGreaterEqual(sum(int(r["client.req_call"]) for r in rows), 3)

        env = dict(os.environ)
        env.update(self.cluster().env(0))
        ours = subprocess.run(
            [_SCRIPT, "stats", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        self.assertEqual(ours.returncode, 0, ours.stderr)
        self.assertIn("CTDB version 1", ours.stdout)
        self.assertIn("call_latency       MIN/AVG/MAX", ours.stdout)
