# -*- test-case-name: tests.integration.test_nemesis -*-
"""
The nemesis's fixed-seed run: a 3-node cluster of our daemons in network
namespaces (with the cluster lock), the fault workload on every node, and
a short, seeded series of faults (L{tests.support.nemesis}), every
invariant of L{tests.support.invariants} checked after each heal and at
the end.  The long run is C{scripts/soak.py} (docs/FAULTS.md).

The run has every kind of fault (L{CI_KINDS} is L{KINDS}), partitions
and packet loss among them; its seed is one whose thirteen faults are each
kind at least once.

Needs root (network namespaces) and nftables' C{nft}; fails, does not
skip, without them.  Every wait is bounded; everything is removed by the
names and PIDs recorded, also when the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.integration._clusters import tempDir
from tests.support.faultworkload import Workload
from tests.support.invariants import (
    CHECKS,
    DELETED_STAY_DELETED,
    NO_FALSE_SUSPICION,
    PUBLIC_IP_CONNECTIONS,
    PUBLIC_IP_NEVER_TWO,
    VOLATILE_MONOTONIC,
    FaultRun,
    Invariants,
    InvariantTable,
    catdbBytes,
    connectionProblems,
    fileLocks,
    gLockHolders,
    localGLocks,
)
from tests.support.nemesis import KINDS, Fault, Nemesis, makeCluster, nftProblem
from tests.support.netns import NetworkLab
from tests.support.netnscluster import NetnsNetwork

#: the seed and the number of faults of the run: with every kind (L{KINDS},
#: whose order the seed's choices index), these thirteen faults are each
#: kind once and C{delay} twice (every partition kind and C{loss} among them)
SEED = 961
FAULTS = 13
#: the faults of the run: every kind
CI_KINDS = KINDS


class FakeCluster:
    """Just enough of a cluster for the nemesis to choose faults."""

    size = 3
    network = lab = None


class ChoiceTests(SynchronousTestCase):
    """The nemesis's choices come from its seed alone."""

    def choices(self, seed: int, count: int = 30) -> list[str]:
        nemesis = Nemesis(FakeCluster(), seed)
        return [nemesis.choose().describe() for _ in range(count)]

    def test_sameSeedSameFaults(self) -> None:
        """Two nemeses with one seed choose the same faults; another seed
        chooses others."""
        self.assertEqual(self.choices(5), self.choices(5))
        self.assertNotEqual(self.choices(5), self.choices(6))

    def test_everyKind(self) -> None:
        """Enough choices cover every kind; a split leaves a majority, a
        bridge names two nodes."""
        nemesis = Nemesis(FakeCluster(), 1)
        faults = [nemesis.choose() for _ in range(300)]
        self.assertEqual({f.kind for f in faults}, set(KINDS))
        for f in faults:
            if f.kind == "split":
                self.assertEqual(len(f.nodes), 1)
            if f.kind == "bridge":
                self.assertEqual(len(f.nodes), 2)

    def test_tableRender(self) -> None:
        """The table lists every check with its runs and violations, and
        the violations by the kind of the fault they followed."""
        table = InvariantTable(daemon="ours", faults=2, faultsInjected=2)
        table.record(PUBLIC_IP_NEVER_TWO, "fault 1", [], "kill")
        table.record(PUBLIC_IP_NEVER_TWO, "fault 2", ["10.77.1.1 on [0, 1]"], "oneway")
        text = table.render()
        for name in CHECKS:
            self.assertIn(name, text)
        self.assertIn(PUBLIC_IP_CONNECTIONS, CHECKS)
        line = [x for x in text.splitlines() if x.startswith(PUBLIC_IP_NEVER_TWO)]
        self.assertEqual(
            line[0].split(), [PUBLIC_IP_NEVER_TWO, "2", "1", "0", "(oneway", "1)"]
        )


class FixedSeedTests(SynchronousTestCase):
    """The fixed-seed run against our daemons."""

    def test_fixedSeedRun(self) -> None:
        """L{FAULTS} faults of L{CI_KINDS} from seed L{SEED}: every one is
        injected and healed, every check runs, and none is violated."""
        problem = nftProblem()
        if problem:
            self.fail(problem)
        lab = NetworkLab.forTest(self, prefix="txnem")
        network = NetnsNetwork(lab, nodes=3)
        if os.environ.get("TXNEMESIS_KEEP"):
            # keep the logs of every node and worker for a look afterwards
            directory = tempfile.mkdtemp(prefix="txnem-", dir="/tmp")
        else:
            directory = tempDir(self, "txnem-")
        cluster = makeCluster("ours", network, directory)
        self.addCleanup(cluster.stop)
        cluster.start(timeout=60)
        workload = Workload(cluster, directory, seconds=600)
        self.addCleanup(workload.stop, 5)
        workload.start()
        nemesis = Nemesis(cluster, SEED, kinds=CI_KINDS)
        self.addCleanup(nemesis.healAll)
        table = InvariantTable(daemon="ours")
        lines: list[str] = []
        invariants = Invariants(cluster, workload, table, log=lines.append)
        started = time.monotonic()
        invariants.afterHeal("the start")
        FaultRun(nemesis, invariants, log=lines.append).run(FAULTS)
        results = workload.stop()
        invariants.atEnd(results)
        report = (
            f"{table.render()}\n"
            + "\n".join(lines)
            + f"\n({time.monotonic() - started:.0f} s; {directory})"
        )
        self.assertEqual(table.faults, FAULTS, report)
        self.assertEqual(table.faultsInjected, FAULTS, report)
        for name in CHECKS:
            self.assertGreater(table.runs[name], 0, (name, report))
        self.assertEqual(table.violations, [], report)
        # the workers made progress through the faults
        for k, r in results.items():
            self.assertGreater(r["acked"], FAULTS, (k, report))
            self.assertGreater(r["side"]["deleted"], FAULTS, (k, report))


class FakeLab:
    """Records the commands a nemesis runs in the namespaces."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, list[str], str | None]] = []

    def run(
        self, namespace: str, argv: list[str], input: str | None = None, **kw: object
    ) -> object:
        self.runs.append((namespace, list(argv), input))
        return type("Done", (), {"returncode": 1})()


class FakeNetwork:
    def namespace(self, pnn: int) -> str:
        return f"ns{pnn}"


class RuleTests(SynchronousTestCase):
    """The rules and qdiscs the network faults put in the namespaces."""

    def setUp(self) -> None:
        cluster = FakeCluster()
        self.lab = FakeLab()
        cluster.lab = self.lab  # type: ignore[assignment]
        cluster.network = FakeNetwork()  # type: ignore[assignment]
        self.nemesis = Nemesis(cluster, 1)

    def scripts(self) -> dict[str, str]:
        return {ns: text or "" for ns, argv, text in self.lab.runs if argv[0] == "nft"}

    def test_isolate(self) -> None:
        """Isolating node 1: its namespace drops what comes from and goes to
        nodes 0 and 2; theirs drop node 1 both ways."""
        self.nemesis.inject(Fault("isolate", (1,), 1.0))
        scripts = self.scripts()
        self.assertEqual(sorted(scripts), ["ns0", "ns1", "ns2"])
        for address in ("10.77.0.1", "10.77.0.3"):
            self.assertIn(f"ip saddr {address} drop", scripts["ns1"])
            self.assertIn(f"ip daddr {address} drop", scripts["ns1"])
        self.assertIn("ip saddr 10.77.0.2 drop", scripts["ns0"])
        self.assertIn("ip daddr 10.77.0.2 drop", scripts["ns2"])
        self.assertNotIn("10.77.0.3", scripts["ns0"])

    def test_oneway(self) -> None:
        """One-way: only node 2's outgoing packets to the others drop."""
        self.nemesis.inject(Fault("oneway", (2,), 1.0))
        scripts = self.scripts()
        self.assertEqual(list(scripts), ["ns2"])
        self.assertIn("ip daddr 10.77.0.1 drop", scripts["ns2"])
        self.assertNotIn("saddr", scripts["ns2"])

    def test_lossAndHeal(self) -> None:
        """Loss: a random share dropped both ways; the heal deletes the
        nemesis's tables and qdisc in every node namespace."""
        self.nemesis.inject(Fault("loss", (0,), 1.0, percent=30))
        self.assertIn("numgen random mod 100 < 30 drop", self.scripts()["ns0"])
        self.lab.runs.clear()
        self.nemesis.heal(Fault("loss", (0,), 1.0, percent=30))
        deleted = {(ns, argv[-1]) for ns, argv, _ in self.lab.runs if "delete" in argv}
        self.assertEqual(
            deleted,
            {(f"ns{k}", t) for k in range(3) for t in ("nemesis", "nemesisdup")},
        )


class GLockDiagnosticTests(SynchronousTestCase):
    """The g_lock holders printed when C{ctdb pfetch} does not answer."""

    def test_catdbHolders(self) -> None:
        """C{ctdb catdb g_lock.tdb}'s escaped values decode to the holders."""
        catdb = (
            'key(26) = "transaction_db_0x4a68c727\\00"\n'
            "dmaster: 2\n"
            "rsn: 4547\n"
            "flags: 0x00010000 MIGRATED_WITH_DATA\n"
            'data(32) = "\\01\\00\\00\\00\\00\\00\\00\\00\\F7R\\00\\00\\00\\00'
            "\\00\\00'\\C7hJ\\00\\00\\00\\00\\F7R\\00\\00'\\C7hJ\"\n"
            "\n"
            'key(6) = "other\\00"\n'
            "dmaster: 0\n"
            "rsn: 1\n"
            'data(0) = ""\n'
            "\n"
            "Dumped 2 records\n"
        )
        self.assertEqual(
            gLockHolders(catdb),
            {"transaction_db_0x4a68c727": ["W pid 21239 node 0"], "other": []},
        )
        self.assertEqual(catdbBytes("a\\5Cb\\00"), b"a\\b\0")

    def test_fileLocks(self) -> None:
        """The fcntl locks of C{/proc/locks} on the files named, held and
        waited for, with each process's name; other files' are left out."""
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "g_lock.tdb.0")
        open(path, "w").close()
        ino = os.stat(path).st_ino
        procLocks = (
            f"1: POSIX  ADVISORY  WRITE {os.getpid()} fe:00:{ino} 4 4\n"
            f"1: -> POSIX  ADVISORY  WRITE 999999999 fe:00:{ino} 4 4\n"
            f"2: POSIX  ADVISORY  READ 1 fe:00:{ino + 1} 0 EOF\n"
        )
        found = fileLocks([path, os.path.join(directory, "gone.tdb")], procLocks)
        self.assertEqual(len(found), 2, found)
        self.assertTrue(
            found[0].startswith(f"g_lock.tdb.0 WRITE 4-4 held by pid {os.getpid()} ("),
            found,
        )
        self.assertNotIn("(?)", found[0])
        self.assertEqual(
            found[1], "g_lock.tdb.0 WRITE 4-4 waited for by pid 999999999 (?)"
        )

    def test_localGLocks(self) -> None:
        """Each node's own copy of every g_lock record, straight from its
        file: rsn, dmaster and holders, so that a node polling a stale copy
        of its own shows; a file that cannot be read says why."""
        from ctdb.client.glock import G_LOCK_WRITE, GLock, ServerId
        from ctdb.database.ltdb import LtdbHeader, joinRecord
        from ctdb.database.tdb import TDB

        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        holder = GLock(G_LOCK_WRITE, ServerId(4321, 1, 0, 99)).encode()
        paths = {}
        for pnn, (rsn, dmaster, data) in enumerate(
            [(7, 1, b""), (9, 1, holder), (3, 2, holder)]
        ):
            paths[pnn] = os.path.join(directory, f"g_lock.tdb.{pnn}")
            with TDB(paths[pnn]) as tdb:
                tdb.store(
                    b"transaction_db_0x1\0", joinRecord(LtdbHeader(rsn, dmaster), data)
                )
        paths[3] = os.path.join(directory, "missing", "g_lock.tdb.3")
        found = localGLocks(paths)
        self.assertEqual(
            found[:3],
            [
                "node 0: transaction_db_0x1 rsn 7 dmaster 1 []",
                "node 1: transaction_db_0x1 rsn 9 dmaster 1 [W pid 4321 node 0]",
                "node 2: transaction_db_0x1 rsn 3 dmaster 2 [W pid 4321 node 0]",
            ],
        )
        self.assertEqual(len(found), 4, found)
        self.assertTrue(found[3].startswith("node 3: TDBError"), found[3])


class LogCluster:
    """Three nodes whose daemons' logs are files in C{directory}."""

    size = 3
    network = None

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def address(self, pnn: int) -> str:
        return f"10.77.0.{pnn + 1}"

    def logFile(self, pnn: int) -> str:
        return os.path.join(self.directory, f"log{pnn}")


class FakeWorkload:
    """Hands out the problems the workers printed, once."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, int, str]] = []

    def newProblems(self) -> list[tuple[str, int, str]]:
        found, self.problems = self.problems, []
        return found

    def sideProgress(self) -> dict[int, dict[str, int]]:
        return {}


class LogCase(SynchronousTestCase):
    """L{Invariants} over a fake cluster whose daemons' logs the test
    writes."""

    def setUp(self) -> None:
        self.cluster = LogCluster(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.cluster.directory)
        self.workload = FakeWorkload()
        self.table = InvariantTable(daemon="ours")
        self.lines: list[str] = []
        self.invariants = Invariants(
            self.cluster,
            self.workload,  # type: ignore[arg-type]
            self.table,
            log=self.lines.append,
        )


class DepartureTests(LogCase):
    """Deleted records that come back after a node left are excused."""

    def logDead(self, pnn: int, dead: int) -> None:
        with open(self.cluster.logFile(pnn), "a") as f:
            f.write(
                f"2026-12-06T09:00:00+0000 [ctdb.daemon.core.Daemon#info] "
                f"10.77.0.{pnn + 1}: node {self.cluster.address(dead)} is dead - "
                f"1 connected (node {dead}, heard 1.5 s ago)\n"
            )

    def test_departureAfterTheChecks(self) -> None:
        """
        Node 2 is logged dead after the checks of a fault read the logs
        (late in the heal of loss(2 60%)); the deletion it brings back is
        reported during the next fault, in which no node leaves: excused.
        """
        deletedAt = time.time() - 1
        self.invariants.startFault("loss")
        self.invariants.checkWorkers("fault 1", flowing=False)
        self.logDead(0, 2)
        self.invariants.startFault("delay")
        self.assertEqual(self.invariants.left, set())
        self.workload.problems.append(
            (
                "side",
                0,
                f"deleted record d/0/7 (deleted at {deletedAt:.3f}) came back as "
                + "b'alive 8'",
            )
        )
        self.invariants.checkWorkers("fault 2", flowing=False)
        self.assertEqual(self.table.violations, [])
        self.assertEqual(self.table.excused, {DELETED_STAY_DELETED: 1})

    def test_volatileReadAfterTheChecks(self) -> None:
        """
        stop(2): worker 2 reads its volatile record only after the fault's
        checks (its node served nothing until then) and finds an older
        copy; it wrote the newer one before node 2 left: excused.  A
        regression of a value written after that departure is not.
        """
        writtenAt = time.time() - 1
        self.invariants.startFault("stop")
        self.invariants.left.add(2)
        self.invariants.checkWorkers("fault 1", flowing=False)
        self.invariants.departuresEnded()
        self.invariants.left = set()
        self.invariants.startFault("duplicate")
        late = f"v/2 is 47204, expected 47765 (rsn 434; written at {writtenAt:.3f})"
        self.workload.problems.append(("worker", 2, late))
        self.invariants.checkWorkers("fault 2", flowing=False)
        self.assertEqual(self.table.violations, [])
        self.assertEqual(self.table.excused, {VOLATILE_MONOTONIC: 1})
        after = f"v/2 is 5, expected 6 (rsn 9; written at {time.time() + 1:.3f})"
        self.workload.problems.append(("worker", 2, after))
        self.invariants.checkWorkers("fault 2", flowing=False)
        self.assertEqual(len(self.table.violations), 1)

    def test_deletionAfterTheDeparture(self) -> None:
        """A record deleted after the last departure must stay deleted."""
        self.logDead(1, 0)
        self.invariants.startFault("loss")
        deletedAt = time.time() + 1
        self.workload.problems.append(
            (
                "side",
                1,
                f"deleted record d/1/3 (deleted at {deletedAt:.3f}) came back as "
                + "b'alive 4'",
            )
        )
        self.invariants.checkWorkers("fault 1", flowing=False)
        self.assertEqual(len(self.table.violations), 1)


class SuspicionTests(LogCase):
    """C{no-false-suspicion}: a node declared dead for its silence is a
    violation unless a fault that can silence nodes is being checked."""

    def logSilent(self, pnn: int, silent: int, ours: bool = True) -> None:
        with open(self.cluster.logFile(pnn), "a") as f:
            if ours:
                f.write(
                    "2026-12-06T09:00:00+0000 [ctdb.daemon.heartbeat."
                    f"HeartbeatMonitor#info] node {silent} silent for 1.52 s "
                    "(heartbeat timeout 1.5 s): declaring it dead; its public "
                    "addresses stay until 1.48 s from now\n"
                )
            else:
                f.write(
                    "2026-12-06T09:00:00.123456+00:00 node0 ctdbd[42]: "
                    f"dead count reached for node {silent}\n"
                )

    def test_duringSilencingFault(self) -> None:
        """isolate(2): its peers rightly declare it dead."""
        self.invariants.startFault("isolate")
        self.logSilent(0, 2)
        self.logSilent(1, 2, ours=False)
        self.invariants.checkSuspicions("fault 1")
        self.assertEqual(self.table.violations, [])
        self.assertEqual(self.table.excused, {NO_FALSE_SUSPICION: 2})

    def test_duringOtherFault(self) -> None:
        """ban(1) silences nobody: a suspicion then is a violation, named
        by the node that declared and the node declared, ours or ctdbd's."""
        self.invariants.startFault("ban")
        self.logSilent(0, 1)
        self.logSilent(2, 0, ours=False)
        self.invariants.checkSuspicions("fault 1")
        self.assertEqual(
            [v.detail for v in self.table.violations],
            [
                "node 0 declared node 1 dead after 1.52 s of silence",
                "node 2 declared node 0 dead of silence",
            ],
        )

    def test_lateInHeal(self) -> None:
        """A suspicion logged after a pause's checks, before the next
        fault, belongs to the pause; one at the start to nothing."""
        self.logSilent(1, 0)
        self.invariants.checkSuspicions("the start")
        self.assertEqual(len(self.table.violations), 1)
        self.invariants.startFault("pause")
        self.invariants.checkSuspicions("fault 1")
        self.invariants.kind = ""  # as FaultRun, after the checks
        self.logSilent(1, 0)
        self.invariants.startFault("disable")
        self.invariants.checkSuspicions("fault 2")
        self.assertEqual(len(self.table.violations), 1)
        self.assertEqual(self.table.excused, {NO_FALSE_SUSPICION: 1})


class WhereIsTests(SynchronousTestCase):
    """What an unreachable public address's violation says about it."""

    def test_holdersAndNeighbour(self) -> None:
        calls: list[tuple[tuple[str, ...], str | None]] = []

        class Lab:
            def ip(self, *args: str, namespace: str | None = None) -> str:
                calls.append((args, namespace))
                return "10.77.1.3 dev eth0 lladdr 02:00:00:00:00:02 REACHABLE\n"

        class Network:
            lab = Lab()
            client = "txclient"

            def holders(self) -> dict[str, list[int]]:
                return {"10.77.1.3": [2]}

            def publicMac(self, pnn: int) -> str:
                return f"02:00:00:00:00:0{pnn + 4}"

        cluster = LogCluster("/nonexistent")
        cluster.network = Network()  # type: ignore[assignment]
        invariants = Invariants(
            cluster,
            FakeWorkload(),  # type: ignore[arg-type]
            InvariantTable(daemon="ours"),
            log=lambda line: None,
        )
        self.assertEqual(
            invariants.whereIs("10.77.1.3"),
            "on nodes [2 (02:00:00:00:00:06)]; client's neighbour entry: "
            "10.77.1.3 dev eth0 lladdr 02:00:00:00:00:02 REACHABLE",
        )
        self.assertEqual(calls, [(("neigh", "show", "10.77.1.3"), "txclient")])


def connectionState(**changes: Any) -> dict[str, Any]:
    """A connection client's state of one address, 10.77.1.1, at 100.0."""
    c: dict[str, Any] = {
        "generation": 1,
        "connected": True,
        "answered": 10,
        "answeredSentAt": 99.5,
        "pendingSince": None,
        "pending": 0,
        "resets": 0,
        "closes": 0,
        "errors": 0,
        "failedConnects": 0,
        "lastEvent": "connected at 90.000 (generation 1)",
        "bogus": [],
    }
    c.update(changes)
    return {"running": True, "now": 100.0, "addresses": {"10.77.1.1": c}}


class ConnectionProblemTests(SynchronousTestCase):
    """What keeps C{public-ip-connections} from holding."""

    def problems(self, state: dict[str, Any], since: float = 99.0) -> list[str]:
        return connectionProblems(state, ["10.77.1.1"], since, 100.0, 45.0)

    def test_answeredSince(self) -> None:
        """A line sent after the check began was answered: it holds."""
        self.assertEqual(self.problems(connectionState()), [])

    def test_answeredBefore(self) -> None:
        """The newest answered line was sent before the check began."""
        problems = self.problems(connectionState(), since=99.8)
        self.assertEqual(len(problems), 1)
        self.assertIn("no line answered since the check began", problems[0])

    def test_hung(self) -> None:
        """A line unanswered for the bound, no reset: a hang."""
        state = connectionState(answeredSentAt=50.0, pendingSince=54.0, pending=90)
        problems = self.problems(state)
        self.assertIn(
            "hung: a line sent 46.0 s ago unanswered and no reset", problems[0]
        )

    def test_resetNotBackYet(self) -> None:
        """Reset and not connected again: says so, with the last event."""
        state = connectionState(
            connected=False, resets=1, lastEvent="reset at 98.000 (generation 1)"
        )
        problems = self.problems(state, since=99.8)
        self.assertIn("not connected", problems[0])
        self.assertIn("1 resets", problems[0])
        self.assertIn("reset at 98.000", problems[0])

    def test_missingAndDead(self) -> None:
        """An address without a connection, a client that died."""
        state = connectionState()
        self.assertIn(
            "10.77.1.2: no connection state",
            connectionProblems(state, ["10.77.1.1", "10.77.1.2"], 99.0, 100.0, 45)[0],
        )
        state["running"] = False
        self.assertEqual(self.problems(state), ["the connection client is not running"])


class EchoServer:
    """A line echo service on 127.0.0.1 (as the nodes' service answers
    anything but put and get), whose connections can be reset."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.done = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while not self.done:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(conn)
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    conn.sendall(b"echo " + line + b"\n")
                except OSError:
                    return

    def resetAll(self) -> None:
        """Close every connection with an RST (SO_LINGER 0)."""
        with self.lock:
            conns, self.conns = self.conns, []
        for conn in conns:
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            conn.close()

    def stop(self) -> None:
        self.done = True
        self.listener.close()
        self.resetAll()


class ConnectionClientTests(SynchronousTestCase):
    """The connection client (L{connectionsMain}) on 127.0.0.1."""

    def waitFor(
        self, path: str, test: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                with open(path) as f:
                    state = json.load(f)["addresses"]["127.0.0.1"]
            except (FileNotFoundError, ValueError, KeyError):
                state = {}
            if state and test(state):
                return state
            time.sleep(0.05)
        self.fail(f"{what}: {state}")

    def test_resetAndReconnect(self) -> None:
        """The client's lines are echoed; when the service resets the
        connection the client counts the reset, connects again, and lines
        sent after the reset are answered on the new connection."""
        server = EchoServer()
        self.addCleanup(server.stop)
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        state = os.path.join(directory, "state.json")
        stop = os.path.join(directory, "stop")
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                (
                    "import sys; from tests.support.faultworkload import "
                    "connectionsMain; connectionsMain(sys.argv[1:])"
                ),
                state,
                stop,
                "60",
                str(server.port),
                "127.0.0.1",
            ],
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        )

        def end() -> None:
            with open(stop, "w"):
                pass
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

        self.addCleanup(end)
        first = self.waitFor(state, lambda s: s["answered"] >= 2, "no answers")
        self.assertEqual((first["generation"], first["resets"]), (1, 0))
        resetAt = time.monotonic()
        server.resetAll()
        after = self.waitFor(
            state,
            lambda s: s["resets"] == 1 and s["answeredSentAt"] > resetAt,
            "no answer after the reset",
        )
        self.assertEqual(after["generation"], 2)
        self.assertTrue(after["lastEvent"].startswith("connected"))
        self.assertEqual(after["bogus"], [])
        end()
        self.assertEqual(process.returncode, 0)
