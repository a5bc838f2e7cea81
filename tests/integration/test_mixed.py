# -*- test-case-name: tests.integration.test_mixed -*-
"""
A mixed cluster: node 0 runs Samba's real ctdbd 4.17, nodes 1 and 2 run our
daemon (L{tests.support.mixed.MixedCluster}), all on one random 127.X.Y.Z
base.
Every check goes through Samba's own ``ctdb`` tool against each node.

Which node leads is decided by the start order: the nodes started first
elect a leader and the nodes that join later accept it; in a later
election the longest-running recovery daemon wins.  Both ways are tested:
the real ctdbd leading (its recovery daemon, ctdb_recovery_helper and
ctdb_takeover_helper drive our nodes with controls) and one of ours leading
(our recovery drives the real ctdbd), then the leader is killed and the
others must recover on their own.
"""

from __future__ import annotations

import errno
import os
import random
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass

from twisted.trial.unittest import SynchronousTestCase

from tests.support.mixed import MixedCluster


def _addressFree(address: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((address, 4379))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _freeBase(nodes: int = 3) -> str:
    """A random 127.X.Y.1 whose C{nodes} addresses nobody listens on."""
    for _ in range(50):
        x, y = random.randint(30, 250), random.randint(0, 255)
        if all(_addressFree(f"127.{x}.{y}.{k + 1}") for k in range(nodes)):
            return f"127.{x}.{y}.1"
    raise RuntimeError("no free loopback base found")


@dataclass
class Status:
    """``ctdb status`` as one node reports it."""

    flags: dict[int, str]
    generation: int
    recoveryMode: str
    leader: int


def status(cluster: MixedCluster, pnn: int) -> Status:
    rc, out = cluster.tool(pnn, "status")
    assert rc == 0, out
    flags = {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r"^pnn:(\d+) \S+\s+(\S+)", out, re.MULTILINE)
    }
    generation = re.search(r"^Generation:(\d+)$", out, re.MULTILINE)
    mode = re.search(r"^Recovery mode:(\S+)", out, re.MULTILINE)
    leader = re.search(r"^Leader:(\d+)$", out, re.MULTILINE)
    assert generation and mode and leader, out
    return Status(flags, int(generation.group(1)), mode.group(1), int(leader.group(1)))


def assertOneCluster(cluster: MixedCluster, pnns: list[int]) -> int:
    """Every node of C{pnns} says: all of them OK, recovery mode NORMAL,
    one generation, one leader (among them).  Returns the leader."""
    seen = [status(cluster, k) for k in pnns]
    for k, st in zip(pnns, seen):
        assert st.recoveryMode == "NORMAL", (k, st)
        for j in pnns:
            assert st.flags[j] == "OK", (k, st)
    assert len({st.generation for st in seen}) == 1, seen
    assert len({st.leader for st in seen}) == 1, seen
    assert seen[0].leader in pnns, seen
    return seen[0].leader


def ok(cluster: MixedCluster, pnn: int, *args: str) -> str:
    rc, out = cluster.tool(pnn, *args)
    assert rc == 0, (pnn, args, out)
    return out


def readkey(cluster: MixedCluster, pnn: int, db: str, key: str) -> str:
    out = ok(cluster, pnn, "readkey", db, key)
    m = re.match(r"Data: size:\d+ ptr:\[(.*)\]$", out.strip())
    assert m, out
    return m.group(1)


def catdb(cluster: MixedCluster, pnn: int, db: str) -> dict[str, tuple[int, str]]:
    """key -> (dmaster, data) as ``ctdb catdb`` prints them."""
    out = ok(cluster, pnn, "catdb", db)
    records = {}
    for block in out.split("\n\n"):
        key = re.search(r'^key\(\d+\) = "(.*)"$', block, re.MULTILINE)
        dmaster = re.search(r"^dmaster: (\d+)$", block, re.MULTILINE)
        data = re.search(r'^data\(\d+\) = "(.*)"$', block, re.MULTILINE)
        if key and dmaster and data:
            records[key.group(1)] = (int(dmaster.group(1)), data.group(1))
    return records


def migrateBothWays(cluster: MixedCluster, real: int, ours: int, other: int) -> None:
    """Volatile records written on one kind of node are read (migrated) on
    the other, both ways; persistent stores reach every node."""
    ok(cluster, real, "attach", "mixvol.tdb")
    ok(cluster, real, "writekey", "mixvol.tdb", "fromReal", "written-by-real")
    assert readkey(cluster, ours, "mixvol.tdb", "fromReal") == "written-by-real"
    # readkey takes the record's lock, so it migrated to our node.
    assert catdb(cluster, other, "mixvol.tdb")["fromReal"] == (ours, "written-by-real")
    ok(cluster, ours, "writekey", "mixvol.tdb", "fromOurs", "written-by-ours")
    assert readkey(cluster, real, "mixvol.tdb", "fromOurs") == "written-by-ours"
    assert catdb(cluster, ours, "mixvol.tdb")["fromOurs"] == (real, "written-by-ours")
    # and back again: our node changes the record the real node created
    ok(cluster, other, "writekey", "mixvol.tdb", "fromReal", "changed-by-ours")
    assert readkey(cluster, real, "mixvol.tdb", "fromReal") == "changed-by-ours"

    ok(cluster, ours, "attach", "mixper.tdb", "persistent")
    ok(cluster, ours, "pstore", "mixper.tdb", "pOurs", "stored-on-ours")
    ok(cluster, real, "pstore", "mixper.tdb", "pReal", "stored-on-real")
    for k in (real, ours, other):
        assert (
            ok(cluster, k, "pfetch", "mixper.tdb", "pOurs").strip() == "stored-on-ours"
        )
        assert (
            ok(cluster, k, "pfetch", "mixper.tdb", "pReal").strip() == "stored-on-real"
        )


def assertDataSurvived(cluster: MixedCluster, pnns: list[int]) -> None:
    for k in pnns:
        assert readkey(cluster, k, "mixvol.tdb", "fromOurs") == "written-by-ours"
        assert readkey(cluster, k, "mixvol.tdb", "fromReal") == "changed-by-ours"
        assert (
            ok(cluster, k, "pfetch", "mixper.tdb", "pReal").strip() == "stored-on-real"
        )


class MixedClusterTests(SynchronousTestCase):
    """Samba's ctdbd and ours in one cluster, each leading in turn."""

    def mixed(self) -> MixedCluster:
        """A set-up (not started) mixed cluster, stopped when the test ends
        by the PIDs it recorded; then nothing of it may be left running."""
        # Short directory: node sockets must fit in AF_UNIX's 108 bytes.
        directory = tempfile.mkdtemp(prefix="txctdb-mx-", dir="/tmp")
        if not os.environ.get("TXCTDB_KEEP_MIXED"):
            self.addCleanup(shutil.rmtree, directory, True)
        cluster = MixedCluster(
            directory,
            base=_freeBase(),
            real=[0],
            # Faster than ctdbd's defaults (10 s without recoveries after
            # each one; 5 s before a real node calls its first election).
            tunables={"RerecoveryTimeout": 1},
            leaderTimeout=2,
        )
        cluster.setup()
        self.addCleanup(self._stopped, cluster)
        return cluster

    def _stopped(self, cluster: MixedCluster) -> None:
        cluster.stop()
        self.assertEqual(cluster.processes(), {0: [], 1: [], 2: []})

    def test_realCtdbdLeads(self) -> None:
        """
        The real ctdbd starts first and leads; our two nodes join, are made
        healthy by its flag pushes and recovered by its recovery helper.
        Records migrate both ways, ``ctdb recover`` asked on our node is run by
        the real leader, and when the real leader is killed our nodes elect
        one of themselves and recover with the data intact.
        """
        cluster = self.mixed()
        cluster.start([[0], [1, 2]])
        self.assertEqual(assertOneCluster(cluster, [0, 1, 2]), 0)
        migrateBothWays(cluster, real=0, ours=1, other=2)

        ok(cluster, 2, "recover")
        cluster.waitHealthy(30)
        self.assertEqual(assertOneCluster(cluster, [0, 1, 2]), 0)
        assertDataSurvived(cluster, [0, 1, 2])

        cluster.kill(0)
        cluster.waitHealthy(30, pnns=[1, 2])
        self.assertIn(assertOneCluster(cluster, [1, 2]), (1, 2))
        for k in (1, 2):
            self.assertEqual(
                status(cluster, k).flags[0], "DISCONNECTED|UNHEALTHY|INACTIVE"
            )
        assertDataSurvived(cluster, [1, 2])

    def test_ourDaemonLeads(self) -> None:
        """
        Our two nodes start first and one of them leads; the real ctdbd joins,
        accepts that leader, is recovered by our recovery procedure and gets
        our nodes' flags pushed.  Records migrate both ways, ``ctdb recover``
        asked on the real node is run by our leader, and when our leader is
        killed the rest (one of ours, the real one) recover.
        """
        cluster = self.mixed()
        cluster.start([[1, 2], [0]])
        leader = assertOneCluster(cluster, [0, 1, 2])
        self.assertIn(leader, (1, 2))
        other = 3 - leader
        migrateBothWays(cluster, real=0, ours=leader, other=other)

        ok(cluster, 0, "recover")
        cluster.waitHealthy(30)
        self.assertEqual(assertOneCluster(cluster, [0, 1, 2]), leader)
        assertDataSurvived(cluster, [0, 1, 2])

        cluster.kill(leader)
        cluster.waitHealthy(30, pnns=[0, other])
        # our remaining node started before the real one: it is the older
        self.assertEqual(assertOneCluster(cluster, [0, other]), other)
        assertDataSurvived(cluster, [0, other])

    def test_realCtdbdWinsElectionAgainstOurs(self) -> None:
        """
        Our node 1 leads; the real ctdbd joins next and our node 2 last.  When
        node 1 is killed, the real ctdbd and our node 2 hold an election: the
        real one, whose recovery daemon is older, wins and leads our node 2.
        """
        cluster = self.mixed()
        cluster.start([[1], [0], [2]])
        self.assertEqual(assertOneCluster(cluster, [0, 1, 2]), 1)
        cluster.kill(1)
        cluster.waitHealthy(30, pnns=[0, 2])
        self.assertEqual(assertOneCluster(cluster, [0, 2]), 0)
        ok(cluster, 2, "attach", "mixvol.tdb")
        ok(cluster, 2, "writekey", "mixvol.tdb", "k", "v2")
        self.assertEqual(readkey(cluster, 0, "mixvol.tdb", "k"), "v2")
        self.assertEqual(catdb(cluster, 2, "mixvol.tdb")["k"], (0, "v2"))
