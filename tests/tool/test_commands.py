# -*- test-case-name: tests.tool.test_commands -*-
"""
Tests for L{ctdb.tool.commands} and L{ctdb.tool.session}: the tool's
commands against an in-memory cluster of real daemons
(L{ctdb.testing.connectedNodes}) on one fake reactor, checking output,
messages and exit status as Samba 4.17's C{ctdb} gives them.  (Commands
that open a database's TDB file are left to tests/integration: these
daemons keep their databases in memory.)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from ctdb.database.ltdb import LtdbHeader
from ctdb.database.tdb import TDB
from ctdb.protocols import controls as C
from ctdb.protocols import records as R
from ctdb.testing import FakeClient
from ctdb.tool.commands import DB_HEADER, DB_VERSION, readConnectionList, recBufferFile
from ctdb.tool.options import commandUsage
from tests.tool._harness import runTool, startCluster

ADDRESSES = "127.1.0.1/24 eth0\n127.1.0.2/24 eth1\n"


class _ClusterCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor, self.cluster = startCluster(3, publicAddresses=ADDRESSES)
        self.addCleanup(self.cluster.stop)

    def tool(self, *args: str, pnn: int = 0, **kw: object) -> tuple[int, str, str]:
        return runTool(self.reactor, list(args), pnn, **kw)  # type: ignore[arg-type]

    def assertTool(
        self, args: list[str], status: int, out: str = "", err: str = "", pnn: int = 0
    ) -> None:
        self.assertEqual(self.tool(*args, pnn=pnn), (status, out, err))


def _nodes(*states: str, this: int = 0) -> str:
    return "".join(
        f"pnn:{pnn} {f'127.0.0.{pnn + 1}':<16} {state}"
        f"{' (THIS NODE)' if pnn == this else ''}\n"
        for pnn, state in enumerate(states)
    )


class NodeCommandTests(_ClusterCase):
    """pnn, status, nodestatus, -n, leader, uptime, ping."""

    def test_pnn(self) -> None:
        """pnn prints the local node; -n another node is refused."""
        self.assertTool(["pnn"], 0, "1\n", pnn=1)
        self.assertTool(
            ["-n", "2", "pnn"], 1, err="Node cannot be specified for command pnn\n"
        )
        self.assertTool(["-n", "-1", "pnn"], 0, "0\n")

    def test_status(self) -> None:
        """status: nodes, VNN map, recovery mode and the leader."""
        status, out, err = self.tool("status")
        self.assertEqual((status, err), (0, ""))
        lines = out.splitlines(keepends=True)
        self.assertEqual(
            "".join(lines[:4]), "Number of nodes:3\n" + _nodes("OK", "OK", "OK")
        )
        self.assertRegex(lines[4], r"^Generation:\d+\n$")
        self.assertEqual(
            "".join(lines[5:]),
            "Size:3\nhash:0 lmaster:0\nhash:1 lmaster:1\nhash:2 lmaster:2\n"
            "Recovery mode:NORMAL (0)\nLeader:2\n",
        )

    def test_statusMachine(self) -> None:
        """-X status (and -Y, and -x): the node table only."""
        table = (
            "|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped"
            "|Inactive|PartiallyOnline|ThisNode|\n"
            "|0|127.0.0.1|0|0|0|0|0|0|0|0|N|\n"
            "|1|127.0.0.2|0|0|0|0|0|0|0|0|Y|\n"
            "|2|127.0.0.3|0|0|0|0|0|0|0|0|N|\n"
        )
        self.assertTool(["-X", "status"], 0, table, pnn=1)
        self.assertTool(["status", "-Y"], 0, table, pnn=1)
        self.assertTool(
            ["-n", "1", "-X", "-x", ";", "status"], 0, table.replace("|", ";")
        )

    def test_nodestatus(self) -> None:
        """nodestatus: this node, a list, all (with the header); the exit
        status is the nodes' flags ORed."""
        self.assertTool(["nodestatus"], 0, "pnn:0 127.0.0.1        OK (THIS NODE)\n")
        self.assertTool(
            ["nodestatus", "all"], 0, "Number of nodes:3\n" + _nodes("OK", "OK", "OK")
        )
        self.assertTool(
            ["-n", "1", "nodestatus", "0,2"],
            0,
            "pnn:0 127.0.0.1        OK\npnn:2 127.0.0.3        OK\n",
        )
        self.assertTool(["nodestatus", "7"], 1, err="Node 7 does not exist\n")
        self.assertTool(["nodestatus", "x"], 1, err="Invalid node x\n")
        self.assertTool(["-n", "2", "ban", "100"], 0)
        status, out, _ = self.tool("nodestatus", "all")
        self.assertEqual(status, 8)
        self.assertIn("pnn:2 127.0.0.3        BANNED|INACTIVE\n", out)

    def test_verifyPnn(self) -> None:
        """-n: a node that does not exist, or is disconnected."""
        self.assertTool(["-n", "5", "ping"], 1, err="Node 5 does not exist\n")
        self.cluster.crash(2)
        self.cluster.advance(1)
        status, out, err = self.tool("-n", "2", "ping")
        self.assertEqual((status, out), (1, ""))
        self.assertRegex(err, r"^Node 2 has status DISCONNECTED\|(.*\|)?INACTIVE\n$")

    def test_leader(self) -> None:
        """leader waits for the LEADER message."""
        self.assertTool(["leader"], 0, "2\n")

    def test_ping(self) -> None:
        """ping: the node, the round trip, the number of clients."""
        status, out, err = self.tool("-n", "1", "ping")
        self.assertEqual((status, err), (0, ""))
        self.assertRegex(out, r"^response from 1 time=\d+\.\d{6} sec  \(0 clients\)\n$")

    def test_uptime(self) -> None:
        """uptime: the four lines."""
        status, out, _ = self.tool("uptime")
        self.assertEqual(status, 0)
        self.assertEqual(
            [line[:30] for line in out.splitlines()],
            [
                "Current time of node 0        ",
                "Ctdbd start time              ",
                "Time of last recovery/failover",
                "Duration of last recovery/fail",
            ],
        )

    def test_runstate(self) -> None:
        """runstate: print it, or check it against the arguments."""
        self.assertTool(["runstate"], 0, "RUNNING\n")
        self.assertTool(["runstate", "setup", "running"], 0, "RUNNING\n")
        self.assertTool(
            ["runstate", "startup"], 1, "CTDB not in required run state (got RUNNING)\n"
        )
        self.assertTool(["runstate", "bogus"], 1, "Invalid run state (bogus)\n")

    def test_getcapabilities(self) -> None:
        """getcapabilities, plain and -X."""
        self.assertTool(["getcapabilities"], 0, "LEADER: YES\nLMASTER: YES\n")
        self.assertTool(["-X", "getcapabilities"], 0, "|LEADER|LMASTER|\n|1|1|\n")


class StateCommandTests(_ClusterCase):
    """ban, unban, stop, continue, disable, enable, recover, debug levels."""

    def flags(self, pnn: int) -> str:
        _, out, _ = self.tool("-n", str(pnn), "nodestatus")
        return out.split()[2]

    def test_banUnban(self) -> None:
        """ban waits for the flag (and a takeover run); twice says so."""
        self.assertTool(["-n", "1", "ban", "60"], 0)
        self.assertEqual(self.flags(1), "BANNED|INACTIVE")
        self.assertTool(["-n", "1", "ban", "60"], 0, err="Node 1 is already banned\n")
        self.assertTool(["-n", "1", "unban"], 0)
        self.assertEqual(self.flags(1), "OK")
        self.assertTool(["-n", "1", "unban"], 0, err="Node 1 is not banned\n")

    def test_banTimes(self) -> None:
        """A zero or unreadable ban time is EINVAL (22), the latter silently."""
        self.assertTool(["ban", "0"], 22, err="Ban time cannot be zero\n")
        self.assertTool(["ban", "soon"], 22)
        self.assertTool(["ban"], 1, commandUsage("ban"))

    def test_stopContinue(self) -> None:
        """stop and continue."""
        self.assertTool(["-n", "2", "stop"], 0)
        self.assertEqual(self.flags(2), "STOPPED|INACTIVE")
        self.assertTool(["-n", "2", "stop"], 0, err="Node 2 is already stopped\n")
        self.assertTool(["-n", "2", "continue"], 0)
        self.assertEqual(self.flags(2), "OK")

    def test_disableEnable(self) -> None:
        """disable and enable."""
        self.assertTool(["-n", "0", "disable"], 0)
        self.assertEqual(self.flags(0), "DISABLED")
        self.assertTool(["enable"], 0)
        self.assertTool(["enable"], 0, err="Node 0 is not disabled\n")

    def test_recover(self) -> None:
        """recover returns once the generation changed."""
        before = self.tool("status")[1].splitlines()[4]
        self.assertTool(["recover"], 0)
        after = self.tool("status")[1].splitlines()[4]
        self.assertNotEqual(before, after)

    def test_debug(self) -> None:
        """setdebug, getdebug, and a bad level."""
        self.assertTool(["-n", "1", "setdebug", "INFO"], 0)
        self.assertTool(["-n", "1", "getdebug"], 0, "INFO\n")
        self.assertTool(
            ["setdebug", "LOUD"],
            1,
            err="Invalid debug level 'LOUD'. Valid levels are:\n"
            "\tERROR | WARNING | NOTICE | INFO | DEBUG\n",
        )


class TunableCommandTests(_ClusterCase):
    """getvar, setvar, listvars."""

    def test_getSet(self) -> None:
        """The name is matched without case and printed as given."""
        self.assertTool(["setvar", "recovertimeout", "0x20"], 0)
        self.assertTool(
            ["getvar", "RECOVERTIMEOUT"], 0, "RECOVERTIMEOUT             = 32\n"
        )
        self.assertTool(
            ["-n", "1", "getvar", "RecoverTimeout"],
            0,
            "RecoverTimeout             = 30\n",
        )

    def test_unknown(self) -> None:
        """An unknown name, a bad value (EINVAL, silently), a bad count."""
        self.assertTool(["getvar", "Nope"], 1, "No such tunable Nope\n")
        self.assertTool(["setvar", "Nope", "1"], 1, "No such tunable Nope\n")
        self.assertTool(["setvar", "RecoverTimeout", "x"], 22)
        self.assertTool(["setvar", "RecoverTimeout"], 1, commandUsage("setvar"))

    def test_listvars(self) -> None:
        """listvars: every tunable, as getvar prints it."""
        status, out, _ = self.tool("listvars")
        self.assertEqual(status, 0)
        self.assertEqual(out.splitlines()[0], "SeqnumInterval             = 1000")
        self.assertEqual(len(out.splitlines()), 49)


class AddressCommandTests(_ClusterCase):
    """ip, ipinfo, ifaces."""

    def test_ip(self) -> None:
        """ip: this node's view; ip all: each address's own host."""
        status, out, _ = self.tool("ip", "all")
        self.assertEqual(status, 0)
        lines = out.splitlines()
        self.assertEqual(lines[0], "Public IPs on ALL nodes")
        self.assertEqual(
            [line.split()[0] for line in lines[1:]], ["127.1.0.1", "127.1.0.2"]
        )
        self.assertTool(["ip", "bogus"], 1, commandUsage("ip"))

    def test_ipVerbose(self) -> None:
        """-X -v ip: interfaces."""
        status, out, _ = self.tool("-X", "-v", "ip")
        self.assertEqual(status, 0)
        self.assertEqual(
            out.splitlines()[0],
            "|Public IP|Node|ActiveInterfaces|AvailableInterfaces"
            "|ConfiguredInterfaces|",
        )

    def test_ipinfoUnknown(self) -> None:
        """ipinfo of an address the node does not have."""
        self.assertTool(
            ["ipinfo", "10.9.9.9"],
            1,
            "Node 0 does not know about IP 10.9.9.9\n",
            "Control GET_PUBLIC_IP_INFO failed, ret=-1\n",
        )
        self.assertTool(["ipinfo", "nonsense"], 1, err="Invalid IP address nonsense\n")

    def test_ifaces(self) -> None:
        """ifaces: the interfaces of the node's addresses."""
        status, out, _ = self.tool("ifaces")
        self.assertEqual(status, 0)
        self.assertTrue(out.startswith("Interfaces on node 0\nname:eth"))


class DatabaseCommandTests(_ClusterCase):
    """The database commands that need no TDB file of their own."""

    def setUp(self) -> None:
        super().setUp()
        for name, opcode in (
            ("test.tdb", C.Control.DB_ATTACH),
            ("p.tdb", C.Control.DB_ATTACH_PERSISTENT),
        ):
            FakeClient(self.cluster[0]).control(opcode, C.encodeString(name))
        self.cluster.advance(2, step=0.05)

    def test_getdbmap(self) -> None:
        """getdbmap lists both."""
        status, out, _ = self.tool("getdbmap")
        self.assertEqual(status, 0)
        self.assertEqual(out.splitlines()[0], "Number of databases:2")
        self.assertIn(" PERSISTENT", out)

    def test_getdbstatus(self) -> None:
        """getdbstatus by name or by id; an unknown one."""
        status, out, _ = self.tool("getdbstatus", "p.tdb")
        self.assertEqual(status, 0)
        dbid = out.splitlines()[0].split()[1]
        self.assertEqual(self.tool("getdbstatus", dbid), (0, out, ""))
        self.assertIn("PERSISTENT: yes\n", out)
        self.assertTool(
            ["getdbstatus", "x.tdb"], 1, err="No database matching 'x.tdb' found\n"
        )
        self.assertTool(
            ["getdbstatus", "0x1"], 1, err="No database matching '0x1' found\n"
        )

    def test_getdbseqnum(self) -> None:
        """getdbseqnum of a fresh database is 0."""
        self.assertTool(["getdbseqnum", "p.tdb"], 0, "0x0\n")

    def test_dbstatistics(self) -> None:
        """dbstatistics."""
        status, out, _ = self.tool("dbstatistics", "test.tdb")
        self.assertEqual(status, 0)
        self.assertEqual(out.splitlines()[0], "DB Statistics test.tdb")

    def test_notVolatile(self) -> None:
        """readkey of a persistent database, pstore of a volatile one."""
        self.assertTool(
            ["readkey", "p.tdb", "k"], 1, err="DB p.tdb is not a volatile database\n"
        )
        self.assertTool(
            ["pstore", "test.tdb", "k", "v"],
            1,
            err="Transactions not supported on DB test.tdb\n",
        )


class ProgramTests(_ClusterCase):
    """What main() and process_command() do around the commands."""

    def test_usage(self) -> None:
        """A command with the wrong arguments prints its usage (stdout)."""
        self.assertTool(["status", "extra"], 1, commandUsage("status"))

    def test_connectFailed(self) -> None:
        """No daemon: the client library's and the tool's messages."""
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        env = {"CTDB_SOCKET": "/fake/none.socket", "CTDB_BASE": directory}
        self.assertEqual(
            self.tool("pnn", environ=env),
            (
                1,
                "",
                (
                    "connect() failed, errno=2\n"
                    "Failed to connect to CTDB daemon (/fake/none.socket)\n"
                    f'Failed to read nodes file "{directory}/nodes"\n'
                    "Is this node part of CTDB cluster?\n"
                ),
            ),
        )
        with open(os.path.join(directory, "nodes"), "w") as f:
            f.write("192.0.2.1\n")
        self.assertEqual(
            self.tool("pnn", environ=env)[2].splitlines()[2:],
            [
                "Failed to detect PNN of the current node.",
                "Is this node part of CTDB cluster?",
            ],
        )

    def test_listnodes(self) -> None:
        """listnodes reads $CTDB_BASE/nodes; no node may be named."""
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        with open(os.path.join(directory, "nodes"), "w") as f:
            f.write("  10.0.0.1 \n#10.0.0.2\n\nfd00::0001\n\n")
        env = {"CTDB_BASE": directory}
        self.assertEqual(
            self.tool("listnodes", environ=env), (0, "10.0.0.1\nfd00::1\n", "")
        )
        self.assertEqual(
            self.tool("-X", "listnodes", environ=env),
            (0, "|0|10.0.0.1|\n|2|fd00::1|\n", ""),
        )
        self.assertEqual(
            self.tool("-n", "0", "listnodes", environ=env),
            (1, "", "Cannot specify node for command listnodes\n"),
        )
        with open(os.path.join(directory, "nodes"), "a") as f:
            f.write("10.0.0.x\n")
        self.assertEqual(
            self.tool("listnodes", environ=env),
            (
                1,
                "",
                (
                    "Invalid IP address 10.0.0.x\n"
                    f'Failed to read nodes file "{directory}/nodes"\n'
                ),
            ),
        )

    def test_timelimit(self) -> None:
        """-t: a control without an answer fails with ETIMEDOUT (110)."""
        self.cluster.network.blackholes.add((0, 1))
        self.assertTool(
            ["-t", "2", "-n", "1", "ping"],
            110,
            err="Control PING failed to node 1, ret=110\n",
        )

    def test_maxruntime(self) -> None:
        """-T: the whole run is cut short."""
        self.cluster.network.blackholes.add((0, 1))
        self.assertTool(
            ["-T", "3", "-n", "1", "ping"],
            1,
            err="Maximum runtime exceeded - exiting\n",
        )

    def test_json(self) -> None:
        """--json: one document; a failure's document has its messages."""
        status, out, _ = self.tool("--json", "status")
        doc = json.loads(out)
        self.assertEqual(status, 0)
        self.assertEqual(
            (doc["leader"], doc["recovery_mode"], [n["state"] for n in doc["nodes"]]),
            (2, "NORMAL", ["OK", "OK", "OK"]),
        )
        status, out, err = self.tool("--json", "getvar", "Nope")
        self.assertEqual(
            (status, json.loads(out), err),
            (1, {"error": {"status": 1, "messages": ["No such tunable Nope"]}}, ""),
        )
        status, out, _ = self.tool("--json", "-n", "2", "ban", "60")
        self.assertEqual(json.loads(out), {"pnn": 2, "changed": True, "seconds": 60})
        status, out, _ = self.tool("--json", "nodestatus", "all")
        self.assertEqual((status, json.loads(out)["status"]), (8, 8))

    def test_shutdownRemote(self) -> None:
        """shutdown -n 2: the node goes; the tool does not wait for it."""
        self.assertTool(["-n", "2", "shutdown"], 0)
        self.cluster.advance(1)
        self.assertEqual(self.cluster.shutdowns, [2])


class FileCommandTests(_ClusterCase):
    """Commands on files: backups and raw TDB files."""

    def setUp(self) -> None:
        super().setUp()
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory)

    def backupFile(self, records: list[tuple[bytes, LtdbHeader, bytes]]) -> str:
        """A backup of C{p.tdb} as backupdb writes it (one buffer)."""
        body = [R.RecData(0, k, h.encode() + d) for k, h, d in records]
        path = os.path.join(self.directory, "backup")
        with open(path, "wb") as f:
            f.write(
                DB_HEADER.pack(
                    DB_VERSION, 0, R.DB_FLAGS_PERSISTENT, 1, len(body), b"p.tdb"
                )
            )
            f.write(recBufferFile(0x1234, body))
        return path

    def test_dumpdbbackup(self) -> None:
        """dumpdbbackup prints the saved records, with the backup's time."""
        path = self.backupFile([(b"k1", LtdbHeader(rsn=3, dmaster=1), b"v1")])
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(0))
        self.assertTool(
            ["dumpdbbackup", path],
            0,
            f"Dumping database p.tdb from backup @ {stamp}\n"
            'key(2) = "k1"\ndmaster: 1\nrsn: 3\nflags: 0x00000000\n'
            'data(2) = "v1"\n\nDumped 1 record(s)\n',
        )

    def test_badBackup(self) -> None:
        """A file that is no backup, or none at all."""
        path = os.path.join(self.directory, "junk")
        with open(path, "wb") as f:
            f.write(b"vm\n")
        self.assertTool(
            ["dumpdbbackup", path],
            22,
            err="Wrong version of backup file, expected 3, got 683382\n",
        )
        self.assertTool(
            ["dumpdbbackup", path + "x"],
            2,
            err=f"Failed to open file {path}x for reading\n",
        )

    def test_tstoreTfetch(self) -> None:
        """tstore writes a record with a header of its own; tfetch reads
        it back (and copies the whole record to a file)."""
        path = os.path.join(self.directory, "raw.tdb")
        TDB(path).close()
        self.assertTool(["tstore", path, "0x6b31", "value", "7", "2"], 0)
        copy = os.path.join(self.directory, "copy")
        self.assertTool(
            ["tfetch", path, "k1", copy],
            0,
            'dmaster: 2\nrsn: 7\nflags: 0x00000000\ndata(5) = "value"\n',
        )
        with open(copy, "rb") as f:
            self.assertEqual(f.read(), LtdbHeader(rsn=7, dmaster=2).encode() + b"value")
        self.assertTool(["tfetch", path, "k2"], 1, err="No record for key k2\n")
        self.assertTool(
            ["tfetch", path + "x", "k2"], 1, err=f"Failed to open TDB file {path}x\n"
        )


class ConnectionListTests(SynchronousTestCase):
    """The connection lists addtickle, deltickle and tickle read."""

    def test_lines(self) -> None:
        """Two endpoints a line; more words ignored; empty and # lines
        skipped; IPv6 in brackets."""
        self.assertEqual(
            readConnectionList(
                "10.0.0.1:445 10.0.0.2:1234 extra\n\n#10.0.0.9:1 10.0.0.9:2\n"
                "[fd00::1]:445\t[fd00::2]:99\n"
            ),
            [
                (("10.0.0.1", 445), ("10.0.0.2", 1234)),
                (("fd00::1", 445), ("fd00::2", 99)),
            ],
        )

    def test_bad(self) -> None:
        """One endpoint, no port, mixed families: EINVAL (None)."""
        for text in (
            "10.0.0.1:445\n",
            "10.0.0.1 10.0.0.2:1\n",
            "10.0.0.1:1 [fd00::1]:2\n",
            " \n",
        ):
            self.assertIsNone(readConnectionList(text), text)
