# -*- test-case-name: tests.integration.test_samba_tool -*-
"""
Samba's own C{ctdb} tool (Debian 4.17.12) as the judge of our daemon.

Every expected output here was taken from the same tool talking to a real
3-node Samba ctdbd 4.17.12 cluster on loopback (run by hand as described in
REAL_CTDBD.md); only node addresses, pids, times and counter values vary.
Known differences from real ctdbd, which the tests allow for, are noted where
they matter:

  - ctdbd's recovery daemon is one of its clients, so real C{ping} counts
    one more client; the tests check the count against C{ping} on the node
    itself instead of a constant.
  - On local C{shutdown} real ctdbd leaves its socket file behind (connect
    fails with ECONNREFUSED); ours removes it (ENOENT).  The tool prints
    "Failed to connect to CTDB daemon" either way.

Read-only checks share one cluster (starting one costs ~1.5 s); anything
that changes state restores it or uses a cluster of its own.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from typing import Any

from ctdb.cluster import LocalCluster
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from tests.integration._cases import IntegrationCase

#: C{ctdb listvars} of a real ctdbd 4.17.12 with default tunables.
REAL_LISTVARS = """\
SeqnumInterval             = 1000
ControlTimeout             = 60
TraverseTimeout            = 20
KeepaliveInterval          = 5
KeepaliveLimit             = 5
RecoverTimeout             = 30
RecoverInterval            = 1
ElectionTimeout            = 3
TakeoverTimeout            = 9
MonitorInterval            = 15
TickleUpdateInterval       = 20
EventScriptTimeout         = 30
MonitorTimeoutCount        = 20
RecoveryGracePeriod        = 120
RecoveryBanPeriod          = 300
DatabaseHashSize           = 100001
DatabaseMaxDead            = 5
RerecoveryTimeout          = 10
EnableBans                 = 1
NoIPFailback               = 0
VerboseMemoryNames         = 0
RecdPingTimeout            = 60
RecdFailCount              = 10
LogLatencyMs               = 0
RecLockLatencyMs           = 1000
RecoveryDropAllIPs         = 120
VacuumInterval             = 10
VacuumMaxRunTime           = 120
RepackLimit                = 10000
VacuumFastPathCount        = 60
MaxQueueDropMsg            = 1000000
AllowUnhealthyDBRead       = 0
StatHistoryInterval        = 1
DeferredAttachTO           = 120
AllowClientDBAttach        = 1
FetchCollapse              = 1
HopcountMakeSticky         = 50
StickyDuration             = 600
StickyPindown              = 200
NoIPTakeover               = 0
DBRecordCountWarn          = 100000
DBRecordSizeWarn           = 10000000
DBSizeWarn                 = 100000000
PullDBPreallocation        = 10485760
LockProcessesPerDB         = 200
RecBufferSizeLimit         = 1000000
QueueBufferSize            = 1024
IPAllocAlgorithm           = 2
AllowMixedVersions         = 0
"""

#: The labels of C{ctdb statistics}, in the order the real tool prints them
#: (nested counters as "section.name").
REAL_STATISTICS_LABELS = [
    "num_clients",
    "frozen",
    "recovering",
    "num_recoveries",
    "client_packets_sent",
    "client_packets_recv",
    "node_packets_sent",
    "node_packets_recv",
    "keepalive_packets_sent",
    "keepalive_packets_recv",
    "node.req_call",
    "node.reply_call",
    "node.req_dmaster",
    "node.reply_dmaster",
    "node.reply_error",
    "node.req_message",
    "node.req_control",
    "node.reply_control",
    "node.req_tunnel",
    "client.req_call",
    "client.req_message",
    "client.req_control",
    "client.req_tunnel",
    "timeouts.call",
    "timeouts.control",
    "timeouts.traverse",
    "locks.num_calls",
    "locks.num_current",
    "locks.num_pending",
    "locks.num_failed",
    "total_calls",
    "pending_calls",
    "childwrite_calls",
    "pending_childwrite_calls",
    "memory_used",
    "max_hop_count",
    "total_ro_delegations",
    "total_ro_revokes",
    "hop_count_buckets",
    "lock_buckets",
    "locks_latency",
    "reclock_ctdbd",
    "reclock_recd",
    "call_latency",
    "childwrite_latency",
]

CTIME = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}"
PING = re.compile(r"^response from (\d+) time=\d+\.\d{6} sec  \((\d+) clients\)$")


def nodeLine(cluster: LocalCluster, pnn: int, text: str) -> str:
    """One line of C{nodestatus}, formatted as the tool does ("%-16s")."""
    return f"pnn:{pnn} {cluster.address(pnn):<16} {text}"


def waitFor(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class RawClient:
    """
    A bare client on a node's unix socket.  The daemon sees this test
    process's pid (SO_PEERCRED) as the client's pid.
    """

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self._reqid = 100

    def control(
        self, opcode: int, *, srvid: int = 0, data: bytes = b""
    ) -> P.ReplyControl:
        self._reqid += 1
        header = P.Header(
            P.Operation.REQ_CONTROL,
            P.CTDB_CURRENT_NODE,
            P.CTDB_UNKNOWN_PNN,
            self._reqid,
        )
        self.sock.sendall(P.ReqControl(header, opcode, srvid, 0, 0, data).encode())
        return self.readReply(self._reqid)

    def readPacket(self) -> P.Packet:
        buf = b""
        while len(buf) < 4 or len(buf) < struct.unpack_from("<I", buf)[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("daemon closed the connection")
            buf += chunk
        (length,) = struct.unpack_from("<I", buf)
        assert len(buf) == length, "one packet at a time expected"
        return P.decodePacket(buf)

    def readReply(self, reqid: int) -> P.ReplyControl:
        while True:
            pkt = self.readPacket()
            if isinstance(pkt, P.ReplyControl) and pkt.header.reqid == reqid:
                return pkt

    def close(self) -> None:
        self.sock.close()


class SambaToolCase(IntegrationCase):
    """Checks of what Samba's tool prints."""

    def ok(self, result: subprocess.CompletedProcess[str]) -> str:
        """The stdout of a tool run that must have succeeded silently on stderr."""
        self.assertEqual(
            result.returncode, 0, (result.returncode, result.stdout, result.stderr)
        )
        self.assertEqual(result.stderr, "", result.stderr)
        return result.stdout

    def failed(self, result: subprocess.CompletedProcess[str], rc: int = 1) -> str:
        """The stderr of a tool run that must have failed with C{rc}."""
        self.assertEqual(
            result.returncode, rc, (result.returncode, result.stdout, result.stderr)
        )
        return result.stderr

    def parseStatistics(self, text: str) -> tuple[list[str], dict[str, Any]]:
        """C{ctdb statistics} output -> (labels in order, label -> value)."""
        lines = text.splitlines()
        self.assertEqual(lines[0], "CTDB version 1")
        self.assertTrue(
            re.fullmatch(
                rf"Current time of statistics  :                {CTIME}", lines[1]
            ),
            lines[1],
        )
        self.assertTrue(
            re.fullmatch(
                rf"Statistics collected since  : \(\d{{3}} \d\d:\d\d:\d\d\) {CTIME}",
                lines[2],
            ),
            lines[2],
        )
        labels: list[str] = []
        values: dict[str, Any] = {}
        section = ""
        for line in lines[3:]:
            nested = re.fullmatch(r"     (\w+) +(\d+)", line)
            plain = re.fullmatch(r" (\w+) +(\d+)", line)
            buckets = re.fullmatch(r" (\w+): ((?:\d+ ?)+)", line)
            latency = re.fullmatch(
                r" (\w+) +MIN/AVG/MAX +(\d+\.\d{6})/(\d+\.\d{6})/(\d+\.\d{6}) sec out of (\d+)",
                line,
            )
            header = re.fullmatch(r" (\w+)", line)
            value: int | list[int]
            if nested:
                label, value = f"{section}.{nested.group(1)}", int(nested.group(2))
            elif plain:
                label, value = plain.group(1), int(plain.group(2))
            elif buckets:
                label, value = (
                    buckets.group(1),
                    [int(v) for v in buckets.group(2).split()],
                )
            elif latency:
                label, value = latency.group(1), int(latency.group(5))
            elif header:
                section = header.group(1)
                continue
            else:
                self.fail(f"unexpected statistics line {line!r}")
            labels.append(label)
            values[label] = value
        return labels, values

    def pingClients(
        self, cluster: LocalCluster, via: int, *args: str
    ) -> tuple[int, int]:
        """(pnn, clients) from C{ping} through node C{via}."""
        out = self.ok(self.ctdbTool(cluster, via, "ping", *args))
        match = PING.match(out.rstrip("\n"))
        if match is None:
            self.fail(f"not a ping reply: {out!r}")
        self.assertTrue(out.endswith("\n"), out)
        self.assertEqual(out.count("\n"), 1, out)
        return int(match.group(1)), int(match.group(2))


class SharedClusterTests(SambaToolCase):
    """
    Read-only checks (and checks that put back what they change) on one
    cluster (default tunables) that the tests of this class share.
    """

    def setUp(self) -> None:
        super().setUp()
        self.shared, self.startedAt = self.classResource("shared", self._startShared)

    def _startShared(self) -> tuple[LocalCluster, float]:
        """A started 3-node cluster, and when it was started."""
        cluster = self.makeClassCluster(3, start=False)
        startedAt = time.time()
        cluster.start()
        return cluster, startedAt

    def tool(
        self, pnn: int, *args: str, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Samba's tool against node C{pnn} of the shared cluster."""
        return self.ctdbTool(self.shared, pnn, *args, timeout=timeout)

    # -- identity and membership -----------------------------------------------

    def test_version(self) -> None:
        """C{ctdb version} prints the tool's version, as with real ctdbd."""
        self.assertEqual(self.ok(self.tool(0, "version")), "4.17.12-Debian\n")

    def test_pnn(self) -> None:
        """C{ctdb pnn} on each node prints that node's pnn (from the GET_PNN handshake)."""
        for k in range(3):
            self.assertEqual(self.ok(self.tool(k, "pnn")), f"{k}\n")

    def test_listnodes(self) -> None:
        """C{ctdb listnodes} lists the node addresses from D/nodeK/nodes."""
        expected = "".join(f"{self.shared.address(k)}\n" for k in range(3))
        for k in range(3):
            self.assertEqual(self.ok(self.tool(k, "listnodes")), expected)

    def test_nodestatus(self) -> None:
        """C{nodestatus} (this node) and C{nodestatus all}: OK lines, exit code 0."""
        for k in range(3):
            out = self.ok(self.tool(k, "nodestatus"))
            self.assertEqual(out, nodeLine(self.shared, k, "OK (THIS NODE)") + "\n")
        out = self.ok(self.tool(1, "nodestatus", "all"))
        self.assertEqual(
            out.splitlines(),
            [
                "Number of nodes:3",
                nodeLine(self.shared, 0, "OK"),
                nodeLine(self.shared, 1, "OK (THIS NODE)"),
                nodeLine(self.shared, 2, "OK"),
            ],
        )
        out = self.ok(self.tool(0, "nodestatus", "2"))
        self.assertEqual(out, nodeLine(self.shared, 2, "OK") + "\n")

    # -- ping, uptime, runstate, getpid ----------------------------------------

    def test_ping(self) -> None:
        """
        C{ping} and C{ping -n K}: "response from K time=... sec  (N clients)",
        where N is the clients of node K (the local tool itself counts).
        """
        for k in range(3):
            pnn, local = self.pingClients(self.shared, k)
            self.assertEqual(pnn, k)
            self.assertGreaterEqual(local, 1)
            for via in range(3):
                if via == k:
                    continue
                pnn, remote = self.pingClients(self.shared, via, "-n", str(k))
                self.assertEqual((pnn, remote), (k, local - 1))
        client = RawClient(self.shared.socketPath(2))
        try:
            client.control(C.Control.GET_PNN)
            self.assertEqual(self.pingClients(self.shared, 0, "-n", "2")[1], local)
        finally:
            client.close()

    def test_uptime(self) -> None:
        """C{uptime} (and C{-n 1}) prints the four lines with a sane start time."""
        for args, pnn in (((), 0), (("-n", "1"), 1)):
            lines = self.ok(self.tool(0, "uptime", *args)).splitlines()
            self.assertEqual(len(lines), 4, lines)
            now = re.fullmatch(
                rf"Current time of node {pnn:<4}     :                ({CTIME})",
                lines[0],
            )
            start = re.fullmatch(
                rf"Ctdbd start time              : \((\d{{3}}) (\d\d):(\d\d):(\d\d)\) ({CTIME})",
                lines[1],
            )
            if not (now and start):
                self.fail(f"unexpected uptime lines {lines!r}")
            self.assertTrue(
                re.fullmatch(
                    rf"Time of last recovery/failover: \(\d+ \d\d:\d\d:\d\d\) {CTIME}",
                    lines[2],
                ),
                lines[2],
            )
            self.assertTrue(
                re.fullmatch(
                    r"Duration of last recovery/failover: \d+\.\d{6} seconds", lines[3]
                ),
                lines[3],
            )
            started = time.mktime(time.strptime(start.group(5), "%a %b %d %H:%M:%S %Y"))
            current = time.mktime(time.strptime(now.group(1), "%a %b %d %H:%M:%S %Y"))
            self.assertTrue(
                self.startedAt - 2 <= started <= current <= time.time() + 1,
                (self.startedAt, started, current),
            )
            d, h, m, s = (int(start.group(i)) for i in range(1, 5))
            self.assertEqual(d * 86400 + h * 3600 + m * 60 + s, current - started)

    def test_runstate(self) -> None:
        """C{runstate} is RUNNING everywhere; asking for another state fails."""
        for k in range(3):
            self.assertEqual(self.ok(self.tool(k, "runstate")), "RUNNING\n")
            self.assertEqual(
                self.ok(self.tool(0, "runstate", "-n", str(k))),
                "RUNNING\n",
            )
        self.assertEqual(self.ok(self.tool(0, "runstate", "RUNNING")), "RUNNING\n")
        result = self.tool(0, "runstate", "STARTUP")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stdout, "CTDB not in required run state (got RUNNING)\n"
        )

    def test_getpid(self) -> None:
        """C{getpid} (local and C{-n K}) prints the pid ctdb-cluster recorded."""
        for k in range(3):
            pid = self.shared.pid(k)
            assert pid is not None
            self.assertEqual(self.ok(self.tool(k, "getpid")), f"{pid}\n")
            self.assertEqual(
                self.ok(self.tool((k + 1) % 3, "getpid", "-n", str(k))),
                f"{pid}\n",
            )

    def test_nonexistentNode(self) -> None:
        """C{-n 99}: "Node 99 does not exist", exit 1, for any command."""
        for cmd in (["ping"], ["getpid"], ["getvar", "KeepaliveLimit"], ["statistics"]):
            result = self.tool(0, *cmd, "-n", "99")
            self.assertEqual(self.failed(result), "Node 99 does not exist\n")
            self.assertEqual(result.stdout, "")

    # -- tunables --------------------------------------------------------------

    def test_listvars(self) -> None:
        """C{listvars} prints exactly real ctdbd's tunable names, order and defaults."""
        self.assertEqual(self.ok(self.tool(0, "listvars")), REAL_LISTVARS)
        self.assertEqual(self.ok(self.tool(2, "listvars", "-n", "1")), REAL_LISTVARS)

    def test_getvar(self) -> None:
        """
        C{getvar} is case-insensitive and echoes the name as given; an unknown
        tunable fails with the tool's message.
        """
        self.assertEqual(
            self.ok(self.tool(0, "getvar", "KeepaliveInterval")),
            "KeepaliveInterval          = 5\n",
        )
        self.assertEqual(
            self.ok(self.tool(0, "getvar", "keepaliveinterval", "-n", "2")),
            "keepaliveinterval          = 5\n",
        )
        result = self.tool(0, "getvar", "NoSuch")
        self.assertEqual(self.failed(result), "")
        self.assertEqual(result.stdout, "No such tunable NoSuch\n")

    # -- debug level and capabilities ------------------------------------------

    def test_debug(self) -> None:
        """
        C{getdebug} is NOTICE by default; C{setdebug} takes names and numbers,
        reaches other nodes with C{-n}, and rejects unknown levels with the
        tool's message.
        """
        try:
            for k in range(3):
                self.assertEqual(
                    self.ok(self.tool(0, "getdebug", "-n", str(k))),
                    "NOTICE\n",
                )
            self.assertEqual(self.ok(self.tool(0, "setdebug", "INFO")), "")
            self.assertEqual(self.ok(self.tool(0, "getdebug")), "INFO\n")
            self.assertEqual(self.ok(self.tool(1, "getdebug")), "NOTICE\n")
            self.assertEqual(
                self.ok(self.tool(0, "setdebug", "DEBUG", "-n", "1")),
                "",
            )
            self.assertEqual(self.ok(self.tool(1, "getdebug")), "DEBUG\n")
            self.assertEqual(self.ok(self.tool(0, "setdebug", "1")), "")
            self.assertEqual(self.ok(self.tool(0, "getdebug")), "WARNING\n")
            result = self.tool(0, "setdebug", "bogus")
            self.assertEqual(
                self.failed(result),
                "Invalid debug level 'bogus'. Valid levels are:\n"
                "\tERROR | WARNING | NOTICE | INFO | DEBUG\n",
            )
        finally:
            for k in range(3):
                self.tool(k, "setdebug", "NOTICE")
        self.assertEqual(self.ok(self.tool(0, "getdebug")), "NOTICE\n")

    def test_getcapabilities(self) -> None:
        """C{getcapabilities}: the default LEADER and LMASTER capabilities."""
        for k in range(3):
            self.assertEqual(
                self.ok(self.tool(0, "getcapabilities", "-n", str(k))),
                "LEADER: YES\nLMASTER: YES\n",
            )

    # -- statistics ------------------------------------------------------------

    def test_statistics(self) -> None:
        """
        C{statistics} prints real ctdbd's fields in real ctdbd's order, and the
        counters count: client traffic on the local node, forwarded controls on
        a remote one.
        """
        labels, before = self.parseStatistics(self.ok(self.tool(0, "statistics")))
        self.assertEqual(labels, REAL_STATISTICS_LABELS)
        self.assertEqual(len(before["hop_count_buckets"]), 16)
        # the clients ping reports, the asking tool included
        clients = self.pingClients(self.shared, 0)[1]
        self.assertEqual(before["num_clients"], clients)
        self.assertGreaterEqual(clients, 1)
        for _ in range(3):
            self.ok(self.tool(0, "ping"))
        _, after = self.parseStatistics(self.ok(self.tool(0, "statistics")))
        # each tool run: GET_PNN, REGISTER_SRVID(leader), then the command
        for name in (
            "client_packets_recv",
            "client_packets_sent",
            "client.req_control",
        ):
            self.assertGreaterEqual(after[name], before[name] + 9, name)

        remoteLabels, remoteBefore = self.parseStatistics(
            self.ok(self.tool(0, "statistics", "-n", "1"))
        )
        self.assertEqual(remoteLabels, REAL_STATISTICS_LABELS)
        for _i in range(2):
            self.ok(self.tool(0, "ping", "-n", "1"))
        _, remoteAfter = self.parseStatistics(
            self.ok(self.tool(2, "statistics", "-n", "1"))
        )
        self.assertGreaterEqual(
            remoteAfter["node.req_control"], remoteBefore["node.req_control"] + 3
        )
        self.assertGreaterEqual(
            remoteAfter["node_packets_recv"], remoteBefore["node_packets_recv"] + 3
        )
        self.assertGreaterEqual(
            remoteAfter["node_packets_sent"], remoteBefore["node_packets_sent"] + 3
        )

    def test_statisticsreset(self) -> None:
        """C{statisticsreset} (local and C{-n 2}) sets the counters back near zero."""
        for k, args in ((0, ()), (2, ("-n", "2"))):
            for _ in range(3):
                self.ok(self.tool(k, "ping"))
            _, before = self.parseStatistics(self.ok(self.tool(k, "statistics")))
            self.assertGreaterEqual(before["client_packets_recv"], 9)
            self.assertEqual(self.ok(self.tool(0, "statisticsreset", *args)), "")
            out = self.ok(self.tool(k, "statistics"))
            self.assertTrue(
                re.search(r"collected since  : \(000 00:00:0[01]\)", out), out
            )
            _, after = self.parseStatistics(out)
            # only this tool run's own packets since the reset
            self.assertLess(after["client_packets_recv"], before["client_packets_recv"])
            self.assertLessEqual(after["client_packets_recv"], 3)
            self.assertLessEqual(after["client.req_control"], 3)

    # -- process-exists --------------------------------------------------------

    def test_processExists(self) -> None:
        """
        C{process-exists} is true only for the pid of a client connected to that
        node (as in ctdbd, a live process that is not a client "does not
        exist"), and C{process-exists PID SRVID} checks a registered srvid.
        """
        me = os.getpid()
        deadPid = subprocess.Popen(["true"])
        deadPid.wait()
        srvid = 0xAE00000000001234
        client = RawClient(self.shared.socketPath(1))
        try:
            self.assertEqual(
                client.control(C.Control.REGISTER_SRVID, srvid=srvid).status, 0
            )
            self.assertEqual(
                self.ok(self.tool(1, "process-exists", str(me))),
                f"PID {me} exists\n",
            )
            self.assertEqual(
                self.ok(self.tool(0, "process-exists", str(me), "-n", "1")),
                f"PID {me} exists\n",
            )
            self.assertEqual(
                self.ok(self.tool(1, "process-exists", str(me), hex(srvid))),
                f"PID {me} with SRVID {srvid:#x} exists\n",
            )
            result = self.ctdbTool(
                self.shared, 1, "process-exists", str(me), "0xae00000000009999"
            )
            self.assertEqual(result.returncode, 1)
            self.assertEqual(
                result.stdout,
                f"PID {me} with SRVID 0xae00000000009999 does not exist\n",
            )
            for args in (
                (0, str(me)),
                (1, str(deadPid.pid)),
                (1, str(self.shared.pid(1))),
            ):
                result = self.tool(args[0], "process-exists", args[1])
                self.assertEqual(result.returncode, 1, result)
                self.assertEqual(result.stdout, f"PID {args[1]} does not exist\n")
        finally:
            client.close()

        def notClient() -> bool:
            return self.tool(1, "process-exists", str(me)).returncode == 1

        waitFor(notClient, 5, "the closed client to be forgotten")


class OwnClusterTests(SambaToolCase):
    """Checks that change a cluster for good, each on a cluster of its own."""

    def test_setvar(self) -> None:
        """
        C{setvar} changes only the node it is sent to, the value sticks, C{-n K}
        reaches the other node, and an unknown tunable fails.
        """
        cluster = self.makeCluster(3)
        self.assertEqual(
            self.ok(self.ctdbTool(cluster, 0, "setvar", "KeepaliveLimit", "7")), ""
        )
        self.assertEqual(
            self.ok(self.ctdbTool(cluster, 0, "getvar", "KeepaliveLimit")),
            "KeepaliveLimit             = 7\n",
        )
        self.assertEqual(
            self.ok(self.ctdbTool(cluster, 1, "getvar", "KeepaliveLimit")),
            "KeepaliveLimit             = 5\n",
        )
        self.assertEqual(
            self.ok(
                self.ctdbTool(cluster, 0, "setvar", "controltimeout", "33", "-n", "2")
            ),
            "",
        )
        self.assertEqual(
            self.ok(self.ctdbTool(cluster, 2, "getvar", "ControlTimeout")),
            "ControlTimeout             = 33\n",
        )
        self.assertEqual(
            self.ok(self.ctdbTool(cluster, 1, "getvar", "ControlTimeout", "-n", "2")),
            "ControlTimeout             = 33\n",
        )
        self.assertEqual(
            self.ok(self.ctdbTool(cluster, 0, "getvar", "ControlTimeout")),
            "ControlTimeout             = 60\n",
        )
        result = self.ctdbTool(cluster, 0, "setvar", "NoSuch", "3")
        self.assertEqual(self.failed(result), "")
        self.assertEqual(result.stdout, "No such tunable NoSuch\n")
        listed = self.ok(self.ctdbTool(cluster, 0, "listvars"))
        self.assertIn("KeepaliveLimit             = 7\n", listed)
        self.assertEqual(len(listed.splitlines()), len(REAL_LISTVARS.splitlines()))

    def test_shutdown(self) -> None:
        """
        C{shutdown -n 2} (remote) and C{shutdown} (local) print nothing, exit 0,
        and the node exits; the others then see it DISCONNECTED|UNHEALTHY.
        Real ctdbd behaves the same (its tool sends SHUTDOWN with NOREPLY, and
        waits for the local daemon to close the connection).
        """
        cluster = self.makeCluster(3)
        pids = {k: cluster.pid(k) for k in range(3)}
        self.assertEqual(self.ok(self.ctdbTool(cluster, 0, "shutdown", "-n", "2")), "")
        waitFor(lambda: cluster.pid(2) is None, 10, "node 2 to exit")
        waitFor(
            lambda: self.ctdbTool(cluster, 0, "nodestatus", "2").returncode == 3,
            10,
            "node 0 to see node 2 disconnected",
        )
        result = self.ctdbTool(cluster, 0, "nodestatus", "2")
        self.assertEqual(
            result.stdout,
            nodeLine(cluster, 2, "DISCONNECTED|UNHEALTHY|INACTIVE") + "\n",
        )

        start = time.monotonic()
        self.assertEqual(self.ok(self.ctdbTool(cluster, 1, "shutdown", timeout=15)), "")
        self.assertLess(time.monotonic() - start, 10)
        waitFor(lambda: cluster.pid(1) is None, 10, "node 1 to exit")
        with self.assertRaises(OSError):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(cluster.socketPath(1))
            finally:
                s.close()
        result = self.ctdbTool(cluster, 1, "ping")
        self.assertEqual(result.returncode, 1)
        self.assertIn(
            f"Failed to connect to CTDB daemon ({cluster.socketPath(1)})", result.stderr
        )
        self.assertEqual(cluster.pid(0), pids[0])
        self.assertEqual(
            self.ok(self.ctdbTool(cluster, 0, "nodestatus")),
            nodeLine(cluster, 0, "OK (THIS NODE)") + "\n",
        )

    def test_killedNode(self) -> None:
        """
        Controls to a SIGKILLed node fail promptly with the tool's message (no
        hang), and C{nodestatus} shows it as real ctdbd does: exit code 3
        (DISCONNECTED|UNHEALTHY), "DISCONNECTED|UNHEALTHY|INACTIVE".
        """
        cluster = self.makeCluster(3)
        cluster.kill(2)
        start = time.monotonic()
        result = self.ctdbTool(cluster, 0, "ping", "-n", "2", timeout=20)
        self.assertLess(time.monotonic() - start, 5)
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(result.stdout, "")
        self.assertNotEqual(result.stderr, "")

        waitFor(
            lambda: self.ctdbTool(cluster, 0, "nodestatus", "all").returncode == 3,
            10,
            "node 0 to see node 2 disconnected",
        )
        for k in (0, 1):
            result = self.ctdbTool(cluster, k, "nodestatus", "all")
            self.assertEqual(result.returncode, 3)
            self.assertEqual(
                result.stdout.splitlines(),
                [
                    "Number of nodes:3",
                    nodeLine(cluster, 0, "OK (THIS NODE)" if k == 0 else "OK"),
                    nodeLine(cluster, 1, "OK (THIS NODE)" if k == 1 else "OK"),
                    nodeLine(cluster, 2, "DISCONNECTED|UNHEALTHY|INACTIVE"),
                ],
            )
        for cmd in (["ping"], ["getpid"], ["getvar", "KeepaliveLimit"]):
            start = time.monotonic()
            result = self.ctdbTool(cluster, 1, *cmd, "-n", "2")
            self.assertLess(time.monotonic() - start, 5)
            self.assertEqual(
                self.failed(result),
                "Node 2 has status DISCONNECTED|UNHEALTHY|INACTIVE\n",
            )
            self.assertEqual(result.stdout, "")
        # the survivors still talk to each other
        self.assertEqual(self.pingClients(cluster, 0, "-n", "1")[0], 1)
