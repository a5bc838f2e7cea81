# -*- test-case-name: tests.tool.test_formats -*-
"""
Tests for L{ctdb.tool.formats}: what the tool prints, against text Samba
4.17.12's C{ctdb} printed for the same data (a 3-node real ctdbd cluster
on loopback; only addresses, counters and times differ from run to run).
"""

from __future__ import annotations

import time
from typing import ClassVar

from twisted.trial.unittest import SynchronousTestCase

from ctdb.database.ltdb import LtdbHeader
from ctdb.protocols import nodestate as N
from ctdb.protocols import records as R
from ctdb.protocols.packet import CTDB_UNKNOWN_PNN
from ctdb.protocols.publicips import Interface, PublicIP, PublicIPInfo
from ctdb.protocols.statistics import LatencyCounter, Statistics, Uptime
from ctdb.tool import formats as F

NODES = [
    F.NodeLine(0, "127.31.7.1", 0),
    F.NodeLine(1, "127.31.7.2", 0),
    F.NodeLine(2, "127.31.7.3", 0),
]


class NodeTests(SynchronousTestCase):
    """Node maps, status, flags."""

    def test_prettyFlags(self) -> None:
        """OK, or the names in the tool's order joined by |."""
        self.assertEqual(F.prettyFlags(0), "OK")
        self.assertEqual(F.prettyFlags(N.NODE_FLAGS_BANNED), "BANNED|INACTIVE")
        self.assertEqual(
            F.prettyFlags(N.NODE_FLAGS_DISCONNECTED), "DISCONNECTED|INACTIVE"
        )
        self.assertEqual(
            F.prettyFlags(N.NODE_FLAGS_PERMANENTLY_DISABLED | N.NODE_FLAGS_UNHEALTHY),
            "DISABLED|UNHEALTHY",
        )
        self.assertEqual(F.prettyFlags(F.NODE_FLAGS_UNKNOWN), "UNKNOWN")

    def test_status(self) -> None:
        """ctdb status."""
        text = F.statusText(NODES, 0, N.VnnMap(1861810339, (0, 1, 2)), 0, 0)
        self.assertEqual(
            text,
            "Number of nodes:3\n"
            "pnn:0 127.31.7.1       OK (THIS NODE)\n"
            "pnn:1 127.31.7.2       OK\n"
            "pnn:2 127.31.7.3       OK\n"
            "Generation:1861810339\n"
            "Size:3\n"
            "hash:0 lmaster:0\n"
            "hash:1 lmaster:1\n"
            "hash:2 lmaster:2\n"
            "Recovery mode:NORMAL (0)\n"
            "Leader:0\n",
        )

    def test_statusInRecovery(self) -> None:
        """An invalid generation, recovery mode and an unknown leader."""
        text = F.statusText(
            NODES[:1], 0, N.VnnMap(F.INVALID_GENERATION, ()), 1, CTDB_UNKNOWN_PNN
        )
        self.assertTrue(
            text.endswith(
                "Generation:INVALID\nSize:0\nRecovery mode:RECOVERY (1)\n"
                "Leader:UNKNOWN\n"
            )
        )

    def test_deletedAndPartial(self) -> None:
        """Deleted nodes are counted but not shown; a node with a link down
        is PARTIALLYONLINE."""
        nodes = [
            F.NodeLine(0, "10.0.0.1", 0, partiallyOnline=True),
            F.NodeLine(1, "0.0.0.0", N.NODE_FLAGS_DELETED | N.NODE_FLAGS_DISCONNECTED),
        ]
        self.assertEqual(
            F.nodemapText(nodes, 1, True),
            "Number of nodes:2 (including 1 deleted nodes)\n"
            "pnn:0 10.0.0.1         PARTIALLYONLINE\n",
        )

    def test_machine(self) -> None:
        """ctdb -X status (and nodestatus)."""
        nodes = [*NODES[:2], F.NodeLine(2, "127.31.7.3", N.NODE_FLAGS_BANNED)]
        self.assertEqual(
            F.nodemapMachine(nodes, 0, "|"),
            "|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped"
            "|Inactive|PartiallyOnline|ThisNode|\n"
            "|0|127.31.7.1|0|0|0|0|0|0|0|0|Y|\n"
            "|1|127.31.7.2|0|0|0|0|0|0|0|0|N|\n"
            "|2|127.31.7.3|0|0|1|0|0|0|1|0|N|\n",
        )

    def test_listnodes(self) -> None:
        """ctdb listnodes and -X listnodes (with -x ab)."""
        nodes = [
            (0, "127.31.7.1", False),
            (1, "0.0.0.0", True),
            (2, "127.31.7.3", False),
        ]
        self.assertEqual(F.listnodesText(nodes, False, "|"), "127.31.7.1\n127.31.7.3\n")
        self.assertEqual(
            F.listnodesText(nodes, True, "ab"),
            "ab0ab127.31.7.1ab\nab2ab127.31.7.3ab\n",
        )


class TimeTests(SynchronousTestCase):
    """uptime and statistics, whose times are local (ctime)."""

    def test_uptime(self) -> None:
        """ctdb uptime: spans as (ddd hh:mm:ss), the last recovery's length."""
        start, recovered, now = 1796529244, 1796529249, 1796529263
        raw = Uptime(now, start, recovered - 0.001142, recovered).encode()
        text = F.uptimeText(0, F.RawUptime.decode(raw))
        self.assertEqual(
            text,
            f"Current time of node 0        :                {time.ctime(now)}\n"
            f"Ctdbd start time              : (000 00:00:19) {time.ctime(start)}\n"
            "Time of last recovery/failover: (000 00:00:14) "
            f"{time.ctime(recovered)}\n"
            "Duration of last recovery/failover: 0.001142 seconds\n",
        )

    def test_longSpan(self) -> None:
        """Days, hours and minutes."""
        raw = Uptime(200000, 0, 0, 100000).encode()
        text = F.uptimeText(12, F.RawUptime.decode(raw))
        self.assertIn("node 12       :", text)
        self.assertIn("(002 07:33:20)", text)
        self.assertIn("(001 03:46:40)", text)

    def _stats(self) -> F.ToolStatistics:
        s = Statistics()
        s.counters["num_clients"] = 2
        s.num_recoveries = 1
        s.counters["client_packets_sent"] = 3613
        s.counters["node.req_message"] = 161
        s.calls["total_calls"] = 2
        s.calls["childwrite_calls"] = 1
        s.calls["memory_used"] = 88548
        s.call_latency = LatencyCounter(2, 0.000039, 0.002380, 0.002418)
        s.childwrite_latency = LatencyCounter(1, 0.006526, 0.006526, 0.006526)
        s.statistics_start_time = 1796529244
        s.statistics_current_time = 1796529399
        return F.ToolStatistics.decode(s.encode())

    def test_statistics(self) -> None:
        """ctdb statistics: sections for dotted counters, the 22-wide names
        (a longer one pushes its value out), buckets and latencies."""
        text = F.statisticsText(self._stats())
        lines = text.splitlines()
        self.assertEqual(lines[0], "CTDB version 1")
        self.assertEqual(
            lines[2],
            f"Statistics collected since  : (000 00:02:35) {time.ctime(1796529244)}",
        )
        self.assertEqual(lines[3], " num_clients                        2")
        self.assertEqual(lines[6], " num_recoveries                     1")
        self.assertEqual(lines[7], " client_packets_sent             3613")
        self.assertEqual(lines[13], " node")
        self.assertEqual(lines[19], "     req_message                  161")
        self.assertIn(" pending_childwrite_calls             0", lines)
        self.assertIn(" memory_used                    88548", lines)
        self.assertIn(" hop_count_buckets: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0", lines)
        self.assertEqual(
            lines[-2:],
            [
                (
                    " call_latency       MIN/AVG/MAX     0.000039/0.001209/0.002380"
                    " sec out of 2"
                ),
                (
                    " childwrite_latency MIN/AVG/MAX     0.006526/0.006526/0.006526"
                    " sec out of 1"
                ),
            ],
        )
        self.assertEqual(len(lines), 3 + 38 + 4 + 2 + 5)

    def test_statisticsMachine(self) -> None:
        """ctdb -X statistics: a header row and a value row."""
        header, values = F.statisticsMachine(self._stats(), True, "|").splitlines()
        self.assertTrue(
            header.startswith(
                "CTDB version|Current time of statistics|Statistics collected since"
                "|num_clients|frozen|recovering|num_recoveries|"
            )
        )
        self.assertTrue(header.endswith("|max_childwrite_latency|"))
        self.assertTrue(values.startswith("1|1796529399|1796529244|2|0|0|1|3613|"))
        self.assertTrue(
            values.endswith(
                "|2|0.000039|0.001209|0.002380|0|0.000000|0.000000|0.000000"
                "|1|0.006526|0.006526|0.006526|"
            )
        )
        self.assertEqual(len(header.split("|")), len(values.split("|")))
        self.assertEqual(F.statisticsMachine(self._stats(), False, "|").count("\n"), 1)


class DatabaseTests(SynchronousTestCase):
    """getdbmap, getdbstatus, dbstatistics, records."""

    DBS: ClassVar[list[F.DbLine]] = [
        F.DbLine(0x4D2A432B, "g_lock.tdb", "/d/volatile/g_lock.tdb.0", 0, None),
        F.DbLine(
            0x47023BF1, "p.tdb", "/d/persistent/p.tdb.0", R.DB_FLAGS_PERSISTENT, None
        ),
        F.DbLine(
            0x36FB8CDB,
            "st.tdb",
            "/d/volatile/st.tdb.0",
            R.DB_FLAGS_STICKY | R.DB_FLAGS_READONLY,
            "bad",
        ),
    ]

    def test_getdbmap(self) -> None:
        """ctdb getdbmap."""
        self.assertEqual(
            F.getdbmapText(self.DBS, False, "|"),
            "Number of databases:3\n"
            "dbid:0x4d2a432b name:g_lock.tdb path:/d/volatile/g_lock.tdb.0\n"
            "dbid:0x47023bf1 name:p.tdb path:/d/persistent/p.tdb.0 PERSISTENT\n"
            "dbid:0x36fb8cdb name:st.tdb path:/d/volatile/st.tdb.0 STICKY READONLY"
            " UNHEALTHY\n",
        )

    def test_getdbmapMachine(self) -> None:
        """ctdb -X getdbmap: upper-case ids."""
        self.assertEqual(
            F.getdbmapText(self.DBS, True, "|"),
            "|ID|Name|Path|Persistent|Sticky|Unhealthy|Readonly|Replicated|\n"
            "|0x4D2A432B|g_lock.tdb|/d/volatile/g_lock.tdb.0|0|0|0|0|0|\n"
            "|0x47023BF1|p.tdb|/d/persistent/p.tdb.0|1|0|0|0|0|\n"
            "|0x36FB8CDB|st.tdb|/d/volatile/st.tdb.0|0|1|1|1|0|\n",
        )

    def test_getdbstatus(self) -> None:
        """ctdb getdbstatus."""
        self.assertEqual(
            F.getdbstatusText(self.DBS[1]),
            "dbid: 0x47023bf1\nname: p.tdb\npath: /d/persistent/p.tdb.0\n"
            "PERSISTENT: yes\nREPLICATED: no\nSTICKY: no\nREADONLY: no\n"
            "HEALTH: OK\n",
        )
        self.assertTrue(F.getdbstatusText(self.DBS[2]).endswith("HEALTH: bad\n"))

    def test_record(self) -> None:
        """catdb's records: quotes, backslashes and unprintables as \\XX."""
        header = LtdbHeader(rsn=2, dmaster=0)
        self.assertEqual(
            F.recordText(b"key1", header, b'va"l\\ue'),
            'key(4) = "key1"\ndmaster: 0\nrsn: 2\nflags: 0x00000000\n'
            'data(7) = "va\\22l\\5Cue"\n\n',
        )
        self.assertEqual(
            F.tdbDataText("key", b"__db_sequence_number__\0"),
            'key(23) = "__db_sequence_number__\\00"\n',
        )

    def test_recordFlags(self) -> None:
        """The header's flags by name, in the tool's order."""
        header = LtdbHeader(rsn=7, dmaster=1, flags=0x00010000 | 0x02000000)
        self.assertEqual(
            F.ltdbHeaderText(header),
            "dmaster: 1\nrsn: 7\nflags: 0x02010000 MIGRATED_WITH_DATA"
            " RO_HAVE_READONLY\n",
        )

    def test_dbstatistics(self) -> None:
        """ctdb dbstatistics of a fresh database: ctdbd always reports
        ten hot keys."""
        stats = R.DbStatistics()
        stats.hot_keys = [(3, b"\x01ab")]
        text = F.dbStatisticsText("test.tdb", F.ToolDbStatistics.decode(stats.encode()))
        self.assertEqual(
            text,
            "DB Statistics test.tdb\n"
            " db_ro_delegations                  0\n"
            " db_ro_revokes                      0\n"
            " locks\n"
            "     num_calls                      0\n"
            "     num_current                    0\n"
            "     num_pending                    0\n"
            "     num_failed                     0\n"
            " hop_count_buckets: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
            " lock_buckets: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
            " locks_latency      MIN/AVG/MAX     0.000000/0.000000/0.000000 sec out of 0\n"
            " vacuum_latency     MIN/AVG/MAX     0.000000/0.000000/0.000000 sec out of 0\n"
            " Num Hot Keys:     10\n"
            "     Count:3 Key:016162\n" + "     Count:0 Key:\n" * 9,
        )


class AddressTests(SynchronousTestCase):
    """ip, ipinfo, ifaces, getcapabilities."""

    LO: ClassVar[list[Interface]] = [Interface("lo", 1, 2)]

    def infos(self) -> list[PublicIPInfo | None]:
        return [
            PublicIPInfo(PublicIP(0, "198.51.100.1"), 0, self.LO),
            None,
        ]

    def test_ip(self) -> None:
        """ctdb ip: an unknown owner is -1."""
        ips = [PublicIP(0, "198.51.100.1"), PublicIP(CTDB_UNKNOWN_PNN, "203.0.113.1")]
        self.assertEqual(
            F.ipText(ips, self.infos(), False, 0, False, False, "|"),
            "Public IPs on node 0\n198.51.100.1 0\n203.0.113.1 -1\n",
        )
        self.assertEqual(
            F.ipText(ips, self.infos(), True, 0, False, True, "|"),
            "Public IPs on ALL nodes\n"
            "198.51.100.1 node[0] active[lo] available[lo] configured[lo]\n"
            "203.0.113.1 node[-1] active[] available[] configured[]\n",
        )

    def test_ipMachine(self) -> None:
        """ctdb -X ip [-v]."""
        ips = [PublicIP(0, "198.51.100.1"), PublicIP(CTDB_UNKNOWN_PNN, "203.0.113.1")]
        self.assertEqual(
            F.ipText(ips, self.infos(), True, 0, True, True, "|"),
            "|Public IP|Node|ActiveInterfaces|AvailableInterfaces"
            "|ConfiguredInterfaces|\n"
            "|198.51.100.1|0|lo|lo|lo|\n"
            "|203.0.113.1|-1||||\n",
        )
        self.assertEqual(
            F.ipText(ips, self.infos(), True, 0, True, False, "|"),
            "|Public IP|Node|\n|198.51.100.1|0|\n|203.0.113.1|-1|\n",
        )

    def test_ipinfo(self) -> None:
        """ctdb ipinfo."""
        info = PublicIPInfo(
            PublicIP(0, "198.51.100.1"),
            0,
            [Interface("lo", 1, 2), Interface("e1", 0, 0)],
        )
        self.assertEqual(
            F.ipinfoText(0, info),
            "Public IP[198.51.100.1] info on node 0\n"
            "IP:198.51.100.1\nCurrentNode:0\nNumInterfaces:2\n"
            "Interface[1]: Name:lo Link:up References:2 (active)\n"
            "Interface[2]: Name:e1 Link:down References:0\n",
        )

    def test_ifaces(self) -> None:
        """ctdb ifaces, -X ifaces, and a node without interfaces."""
        self.assertEqual(
            F.ifacesText(0, self.LO, False, "|"),
            "Interfaces on node 0\nname:lo link:up references:2\n",
        )
        self.assertEqual(
            F.ifacesText(0, self.LO, True, "|"),
            "|Name|LinkStatus|References|\n|lo|1|2|\n",
        )
        self.assertEqual(
            F.ifacesText(2, [], True, "|"), "No interfaces configured on node 2\n"
        )

    def test_capabilities(self) -> None:
        """ctdb getcapabilities and -X getcapabilities."""
        caps = N.CTDB_CAP_DEFAULT
        self.assertEqual(
            F.capabilitiesText(caps, False, "|"), "LEADER: YES\nLMASTER: YES\n"
        )
        self.assertEqual(
            F.capabilitiesText(N.CTDB_CAP_LMASTER, True, "|"),
            "|LEADER|LMASTER|\n|0|1|\n",
        )
