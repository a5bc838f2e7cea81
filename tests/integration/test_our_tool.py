# -*- test-case-name: tests.integration.test_our_tool -*-
"""
Our C{ctdb} command (L{ctdb.tool}, installed as C{txctdb}) beside Samba's
own C{/usr/bin/ctdb} 4.17.12: the same commands through both, against a
3-node cluster of our daemons (L{LocalCluster}) and against a 3-node
cluster of Samba's real ctdbd 4.17 (L{RealCtdbdCluster}, with public
addresses), and the two must print the same stdout and stderr and exit
with the same status.  Only what varies from one run to the next is
masked: a ping's round trip, times and counters of C{uptime} and
C{statistics}, and, where each tool writes a database of its own, the
database's name and id.

Commands that change state run once through each tool, in both orders
(one does it, the other finds it done), and the state is read back
through both.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import time
import unittest
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.integration._cases import IntegrationCase
from tests.integration._clusters import randomBase, sambaTool, trialSuite
from tests.support.realctdbd import CTDBD as REAL_CTDBD
from tests.support.realctdbd import RealCtdbdCluster

#: the console script, or the module when it is not installed
_SCRIPT = os.path.join(os.path.dirname(sys.executable), "txctdb")
OUR_TOOL = (
    [_SCRIPT]
    if os.access(_SCRIPT, os.X_OK)
    else [sys.executable, "-m", "ctdb.tool.main"]
)

#: node K's public addresses on the real cluster (TEST-NET, never local)
ADDRESSES = {
    0: "198.51.100.1/24 lo\n203.0.113.1/24 lo\n",
    1: "198.51.100.2/24 lo\n203.0.113.2/24 lo\n",
    2: "",
}

Result = tuple[int, str, str]


def runTool(
    argv: list[str], cluster: Any, pnn: int, args: list[str], stdin: str = ""
) -> Result:
    env = dict(os.environ)
    env.update(cluster.env(pnn))
    done = subprocess.run(
        [*argv, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def maskPing(text: str) -> str:
    return re.sub(r"time=\d+\.\d{6} sec", "time=T sec", text)


def maskTimes(text: str) -> str:
    """Dates, spans and durations (uptime, statistics, backups)."""
    text = re.sub(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d", "DATE_TIME", text)
    text = re.sub(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}", "DATE", text)
    text = re.sub(r"\(\d{3} \d\d:\d\d:\d\d\)", "(SPAN)", text)
    return re.sub(r"\d+\.\d{6}", "F", text)


def maskNumbers(text: str) -> str:
    """
    Every number (statistics move between two runs), with the spaces that
    right-align it: a counter that gained a digit between the two runs
    shifts its padding by one.
    """
    return re.sub(r" *\d+(\.\d+)?", " N", maskTimes(text))


def maskDb(text: str, prefix: str) -> str:
    """A tool's own database: its name prefix and its id."""
    text = text.replace(prefix, "X_")
    return re.sub(r"0x[0-9a-fA-F]{8}", "0xID", text)


def maskHistory(text: str) -> str:
    """What a record's history sets in C{catdb}: its rsn and the names of
    its header flags (a migration away and back, or a recovery, under load
    raises the rsn and sets MIGRATED_WITH_DATA on one database and not on
    another written the same way)."""
    text = re.sub(r"rsn: \d+", "rsn: N", text)
    return re.sub(r"(flags: 0xID)[^\n]*", r"\1", text)


Case = tuple[int, list[str], Callable[[str], str]]


def _plain(text: str) -> str:
    return text


class _ToolComparison(IntegrationCase):
    """The comparisons, against whichever cluster L{cluster} gives."""

    def cluster(self) -> Any:
        raise NotImplementedError

    def samba(self, args: list[str], pnn: int = 0, stdin: str = "") -> Result:
        return runTool([sambaTool()], self.cluster(), pnn, args, stdin)

    def ours(self, args: list[str], pnn: int = 0, stdin: str = "") -> Result:
        return runTool(OUR_TOOL, self.cluster(), pnn, args, stdin)

    def compare(self, cases: list[Case]) -> list[Result]:
        """
        Each (pnn, args, mask) through both tools, three at a time (the
        cases must not change what the others read): the same status and,
        after C{mask}, the same stdout and stderr.

        @return: Samba's results, in order.
        """
        cluster = self.cluster()
        with ThreadPoolExecutor(3) as pool:
            runs = [
                (
                    case,
                    pool.submit(runTool, [sambaTool()], cluster, case[0], case[1]),
                    pool.submit(runTool, OUR_TOOL, cluster, case[0], case[1]),
                )
                for case in cases
            ]
            out = []
            for (pnn, args, mask), theirs, mine in runs:
                t, m = theirs.result(), mine.result()
                self.assertEqual(
                    (m[0], mask(m[1]), mask(m[2])),
                    (t[0], mask(t[1]), mask(t[2])),
                    f"ctdb -n {pnn} {' '.join(args)}",
                )
                out.append(t)
        return out

    def same(
        self, args: list[str], pnn: int = 0, mask: Callable[[str], str] = _plain
    ) -> Result:
        """One case, through Samba's tool and then ours (so that it may
        change state): the same result.

        @return: Samba's result.
        """
        theirs = self.samba(args, pnn)
        mine = self.ours(args, pnn)
        self.assertEqual(
            (mine[0], mask(mine[1]), mask(mine[2])),
            (theirs[0], mask(theirs[1]), mask(theirs[2])),
            f"ctdb -n {pnn} {' '.join(args)}",
        )
        return theirs

    # -- the comparisons --------------------------------------------------------

    def checkReading(self, extra: list[Case] = []) -> None:  # noqa: B006
        self.compare(
            [
                (pnn, args, _plain)
                for pnn, args in (
                    (1, ["pnn"]),
                    (0, ["version"]),
                    (0, ["status"]),
                    (1, ["-X", "status"]),
                    (0, ["-n", "2", "-Y", "-x", ":", "status"]),
                    (0, ["nodestatus"]),
                    (2, ["nodestatus", "all"]),
                    (0, ["-X", "nodestatus", "0,2"]),
                    (0, ["-n", "1", "nodestatus"]),
                    (0, ["listnodes"]),
                    (1, ["-X", "listnodes"]),
                    (0, ["leader"]),
                    (0, ["getcapabilities"]),
                    (0, ["-n", "1", "-X", "getcapabilities"]),
                    (0, ["getdebug"]),
                    (0, ["-n", "2", "getvar", "recovertimeout"]),
                    (0, ["listvars"]),
                    (0, ["runstate", "first_recovery", "RUNNING"]),
                    (0, ["getreclock"]),
                    (0, ["ip", "all"]),
                    (0, ["-X", "-v", "ip", "all"]),
                    (1, ["ifaces"]),
                    (0, ["-n", "1", "-X", "ifaces"]),
                    (0, ["getdbmap"]),
                )
            ]
            + [
                (0, ["uptime"], maskTimes),
                (0, ["-n", "1", "statistics"], maskNumbers),
                (2, ["-X", "statistics"], maskNumbers),
            ]
            + extra
        )
        # alone: a ping counts the clients connected
        self.same(["ping"], 0, maskPing)
        self.same(["-n", "2", "ping"], 1, maskPing)

    def checkErrors(self, daemonOnly: bool = False) -> None:
        """Bad arguments and failing commands (C{daemonOnly}: only those
        whose messages come from what the daemon answers)."""
        cases: list[Case] = [
            (0, args, _plain)
            for args in (
                ["getvar", "NoSuchTunable"],
                ["-n", "9", "ping"],
                ["-t", "0", "ping"],
                ["getdbstatus", "nosuch.tdb"],
                ["ipinfo", "10.9.9.9"],
                ["-n", "2", "delip", "10.9.9.9"],
                ["setifacelink", "nosuch", "up"],
                ["moveip", "10.9.9.9", "bogus"],
            )
        ]
        if daemonOnly:
            self.compare(cases)
            return
        self.compare(
            cases
            + [
                (0, args, _plain)
                for args in (
                    [],
                    ["recmaster"],
                    ["--usage"],
                    ["-n", "x", "pnn"],
                    ["-Xq", "pnn"],
                    ["pnn", "--node"],
                    ["status", "extra"],
                    ["setvar", "RecoverTimeout", "soon"],
                    ["-n", "1", "pnn"],
                    ["-n", "0", "listnodes"],
                    ["ban", "0"],
                    ["setdebug", "LOUD"],
                    ["runstate", "bogus"],
                    ["nodestatus", "x"],
                    ["getdbstatus", "0x12"],
                    ["ipinfo", "bogus"],
                    ["attach", "a.tdb", "bogus"],
                    ["addip", "10.9.9.9", "lo"],
                )
            ]
        )

    def checkDatabases(self, full: bool = True) -> None:
        """Each tool writes databases of its own the same way; both read
        both the same (C{full}: then deletes, wipes and reads again)."""
        script = '"k2" "v2"\n"k3" "0x4142"\nnot quoted\n"k4" ""\n'
        for name, run in (("sam_", self.samba), ("our_", self.ours)):
            for args in (
                ["attach", f"{name}v.tdb"],
                ["attach", f"{name}p.tdb", "persistent"],
                ["attach", f"{name}r.tdb", "replicated"],
                ["writekey", f"{name}v.tdb", "k1", 'va"l\\ue'],
                ["writekey", f"{name}v.tdb", "0x6b32", "0x00ff"],
                ["pstore", f"{name}p.tdb", "k1", "v1"],
                ["pstore", f"{name}r.tdb", "a", "b"],
            ):
                self.assertEqual(run(args), (0, "", ""), f"{name}: {args}")
            self.assertEqual(
                run(["ptrans", f"{name}p.tdb"], stdin=script),
                (0, "", "Unsupported input format in not quoted\n\n"),
            )
        self.same(["writekey", "our_v.tdb", "0x6b3", "v"])
        self.compareDatabases(
            [
                ["readkey", "X_v.tdb", "k1"],
                ["readkey", "X_v.tdb", "0x6b32"],
                ["readkey", "X_v.tdb", "nokey", "readonly"],
                ["catdb", "X_v.tdb"],
                ["cattdb", "X_v.tdb"],
                ["pfetch", "X_p.tdb", "k1"],
                ["pfetch", "X_p.tdb", "k3"],
                ["catdb", "X_p.tdb"],
                ["catdb", "X_r.tdb"],
                ["getdbseqnum", "X_p.tdb"],
                ["getdbstatus", "X_p.tdb"],
            ]
            if full
            else [
                ["readkey", "X_v.tdb", "0x6b32"],
                ["catdb", "X_v.tdb"],
                ["pfetch", "X_p.tdb", "k3"],
                ["catdb", "X_p.tdb"],
                ["getdbseqnum", "X_p.tdb"],
            ]
        )
        if not full:
            return
        for name, run in (("sam_", self.samba), ("our_", self.ours)):
            for args in (
                ["deletekey", f"{name}v.tdb", "k1"],
                ["pdelete", f"{name}p.tdb", "k1"],
                ["setdbsticky", f"{name}v.tdb"],
            ):
                self.assertEqual(run(args), (0, "", ""), f"{name}: {args}")
        self.compareDatabases(
            [
                ["readkey", "X_v.tdb", "k1"],
                ["catdb", "X_v.tdb"],
                ["catdb", "X_p.tdb"],
                ["getdbstatus", "X_v.tdb"],
            ]
        )
        for name in ("sam_", "our_"):
            self.same(
                ["wipedb", f"{name}v.tdb"], mask=functools.partial(maskDb, prefix=name)
            )
        self.compareDatabases([["catdb", "X_v.tdb"]])
        self.compare([(0, ["getdbmap"], _plain), (0, ["-X", "getdbmap"], _plain)])

    def compareDatabases(self, reads: list[list[str]]) -> None:
        """Each read of the X_ databases, sam_ and our_, through both
        tools: the same; and the two databases read the same (their names
        and ids masked, and what their records' histories set: a
        fresh-clone run beside two soaks once found sam_v.tdb's two records
        migrated away and back, rsn 6 and MIGRATED_WITH_DATA against rsn
        3)."""
        cases: list[Case] = []
        for args in reads:
            for name in ("sam_", "our_"):
                cases.append(
                    (
                        0,
                        [a.replace("X_", name) for a in args],
                        functools.partial(maskDb, prefix=name),
                    )
                )
        results = self.compare(cases)
        for i, args in enumerate(reads):
            sam, our = results[2 * i], results[2 * i + 1]
            self.assertEqual(
                (our[0], maskHistory(maskDb(our[1], "our_")), maskDb(our[2], "our_")),
                (sam[0], maskHistory(maskDb(sam[1], "sam_")), maskDb(sam[2], "sam_")),
                f"what the tools wrote, read back: {args}",
            )

    def checkBackups(self, directory: str) -> None:
        """backupdb through each tool, dumpdbbackup of both files through
        both, restoredb of Samba's backup through ours (and the other way)."""
        for name, run in (("sam_", self.samba), ("our_", self.ours)):
            path = os.path.join(directory, f"{name}p.backup")
            self.assertEqual(
                run(["backupdb", f"{name}p.tdb", path]),
                (0, f"Database backed up to {path}\n", ""),
            )
        dumped = {}
        for name in ("sam_", "our_"):
            path = os.path.join(directory, f"{name}p.backup")
            dumped[name] = maskDb(maskTimes(self.same(["dumpdbbackup", path])[1]), name)
        self.assertEqual(dumped["our_"], dumped["sam_"])
        for name, run in (("our_", self.samba), ("sam_", self.ours)):
            path = os.path.join(directory, f"{name}p.backup")
            restored = f"{name}restored.tdb"
            result = run(["restoredb", path, restored])
            self.assertEqual(
                (result[0], maskTimes(result[1]), result[2]),
                (
                    0,
                    (
                        f"Restoring database {restored} from backup @ DATE_TIME\n"
                        f"Database {restored} restored\n"
                    ),
                    "",
                ),
            )
        self.compareDatabases([["catdb", "X_restored.tdb"]])

    def checkNodeStates(
        self, changes: list[tuple[list[str], list[str], str, bool]]
    ) -> None:
        """Each (set, clear, flag text, ours first) of node 1: one tool sets
        it, the other finds it set; both show it; the other clears it, the
        first finds it clear."""
        for setArgs, clearArgs, shown, oursFirst in changes:
            first, second = (
                (self.ours, self.samba) if oursFirst else (self.samba, self.ours)
            )
            self.assertEqual(first(["-n", "1", *setArgs]), (0, "", ""))
            again = second(["-n", "1", *setArgs])
            self.assertEqual(again[:2], (0, ""))
            self.assertRegex(again[2], r"^Node 1 is already \w+\n$")
            theirs = self.same(["nodestatus", "1"])
            self.assertIn(shown, theirs[1])
            self.assertEqual(second(["-n", "1", *clearArgs]), (0, "", ""))
            self.assertEqual(first(["-n", "1", *clearArgs])[2][:13], "Node 1 is not")
            self.assertEqual(self.same(["nodestatus", "all"])[0], 0)

    def checkTunables(self) -> None:
        self.assertEqual(
            self.ours(["-n", "1", "setvar", "RecoverTimeout", "37"]), (0, "", "")
        )
        theirs = self.same(["-n", "1", "getvar", "RecoverTimeout"])
        self.assertEqual(theirs[1].split()[-1], "37")
        self.assertEqual(
            self.samba(["-n", "1", "setvar", "RecoverTimeout", "30"]), (0, "", "")
        )
        self.assertEqual(self.ours(["-n", "2", "setdebug", "INFO"]), (0, "", ""))
        self.assertEqual(self.same(["-n", "2", "getdebug"])[1], "INFO\n")
        self.assertEqual(self.ours(["-n", "2", "setdebug", "NOTICE"]), (0, "", ""))

    def checkRecover(self) -> None:
        """recover (ours) ends with a new generation, as Samba's sees it."""
        before = self.samba(["status"])[1]
        self.assertEqual(self.ours(["recover"]), (0, "", ""))
        after = self.same(["status"])[1]
        generation = re.compile(r"^Generation:(\d+)$", re.MULTILINE)
        self.assertNotEqual(generation.findall(before), generation.findall(after))


class OurClusterTests(_ToolComparison):
    """Both tools against a cluster of our daemons."""

    def cluster(self) -> Any:
        return self.sharedCluster(3)

    def test_reading(self) -> None:
        """Commands that only read: the same output."""
        self.checkReading()

    def test_errors(self) -> None:
        """Bad arguments and failing commands: the same messages, usage
        and exit status (and never a traceback)."""
        self.checkErrors()

    def test_databases(self) -> None:
        """attach, writekey, pstore, ptrans, deletekey, pdelete, setdbsticky
        and wipedb through each tool; readkey, catdb, cattdb, pfetch,
        getdbseqnum, getdbstatus and getdbmap through both; backups."""
        self.checkDatabases()
        self.checkBackups(self.mktempDirectory("txctdb-bk-"))

    def test_nodeStates(self) -> None:
        """ban/unban, stop/continue and disable/enable, across the tools."""
        self.checkNodeStates(
            [
                (["ban", "60"], ["unban"], "BANNED|INACTIVE", True),
                (["stop"], ["continue"], "STOPPED|INACTIVE", False),
                (["disable"], ["enable"], "DISABLED", True),
            ]
        )

    def test_tunablesAndRecovery(self) -> None:
        """setvar/setdebug through ours, read through Samba's; recover."""
        self.checkTunables()
        self.checkRecover()

    def test_shutdown(self) -> None:
        """shutdown of the local node returns once the daemon is gone."""
        cluster = self.makeCluster(2)
        for pnn, argv in ((0, OUR_TOOL), (1, [sambaTool()])):
            self.assertEqual(runTool(argv, cluster, pnn, ["shutdown"]), (0, "", ""))
        deadline = time.monotonic() + 15
        while any(cluster.pid(pnn) is not None for pnn in (0, 1)):
            self.assertLess(time.monotonic(), deadline, "a node did not shut down")
            time.sleep(0.05)


def _realSkip() -> str | None:
    if not os.access(REAL_CTDBD, os.X_OK):
        return "Samba's ctdbd is not installed"
    return None


@unittest.skipIf(_realSkip() is not None, _realSkip() or "")
class RealCtdbdTests(_ToolComparison):
    """Both tools against Samba's real ctdbd 4.17, with public addresses."""

    def cluster(self) -> Any:
        return self.classResource("real", self._start)

    def _start(self) -> RealCtdbdCluster:
        cluster = RealCtdbdCluster(
            self.classDirectory("txctdb-rt-"), base=randomBase("real"), nodes=3
        )
        cluster.setup()
        for pnn, text in ADDRESSES.items():
            with open(os.path.join(cluster.nodeDir(pnn), "public_addresses"), "w") as f:
                f.write(text)
        type(self).addClassCleanup(cluster.stop)
        cluster.start(timeout=60)
        return cluster

    def test_reading(self) -> None:
        """Commands that only read: the same output."""
        self.checkReading(
            [
                (pnn, args, _plain)
                for pnn, args in (
                    (0, ["ip", "-v"]),
                    (0, ["-n", "1", "ipinfo", "198.51.100.2"]),
                    (1, ["ip"]),
                    (2, ["ifaces"]),
                )
            ]
        )

    def test_errors(self) -> None:
        """Failing commands: the same messages and status (the command
        line's checks are the tool's own, tested against our daemons)."""
        self.checkErrors(daemonOnly=True)

    def test_databases(self) -> None:
        """The database commands that write, and reading back."""
        self.checkDatabases(full=False)

    def test_nodeStates(self) -> None:
        """ban/unban across the tools."""
        self.checkNodeStates([(["ban", "60"], ["unban"], "BANNED|INACTIVE", True)])

    def test_tunablesAndRecovery(self) -> None:
        """setvar/setdebug through ours, read through Samba's; recover."""
        self.checkTunables()
        self.checkRecover()


testSuite = trialSuite(__name__)
