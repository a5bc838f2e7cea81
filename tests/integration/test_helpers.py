# -*- test-case-name: tests.integration.test_helpers -*-
"""
Samba's CTDB test helper programs as we wrote them (L{ctdb.helpers}), run
as the programs Samba's INTEGRATION tests call (written into a directory
off C{PATH} by L{ctdb.helpers.writePrograms}), against a 3-node
cluster of our daemons and against a 3-node cluster of Samba's real ctdbd
4.17: the same command lines, the output lines the shell tests match, the
exit codes, and the records they leave behind.

Each kind of cluster is started once, by the first test of its class (on
its own random 127.X.Y.1 range), and stopped by the PIDs it recorded after
the class's last test (C{tearDownClass}, which trial calls through
L{testSuite}), or at exit.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import unittest
from typing import Any, ClassVar

from twisted.trial.unittest import SynchronousTestCase

from ctdb.database.ltdb import LTDB_HEADER_SIZE
from ctdb.database.tdb import TDB, TDB_MUTEX_LOCKING, TDBError
from ctdb.database.tdb import available as tdbAvailable
from ctdb.helpers import PROGRAMS, programText
from ctdb.helpers.common import socketPath
from ctdb.helpers.db_test import dump
from ctdb.helpers.fetch_ring import updated
from tests.support.realctdbd import CTDBD

from ._clusters import SharedClusters, helperBin, tempDir, trialSuite

NODES = 3
CTDB_TOOL = shutil.which("ctdb")

needsSamba = unittest.skipIf(
    CTDB_TOOL is None or not tdbAvailable(),
    "needs Samba's ctdb tool and libtdb (make install)",
)


def helper(bindir: str, name: str) -> str:
    """Program C{name} in C{bindir} (L{helperBin})."""
    path = os.path.join(bindir, name)
    assert os.access(path, os.X_OK), f"{name} is not in {bindir}"
    return path


# -- clusters ------------------------------------------------------------------------


class Cluster:
    """One running cluster (ours or Samba's) and how to run things on its nodes."""

    def __init__(self, kind: str, impl: Any, bindir: str) -> None:
        self.kind = kind
        self.impl = impl
        self.bindir = bindir

    def env(self, pnn: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CTDB_")}
        env.update(self.impl.env(pnn))
        return env

    def run(
        self, pnn: int, *argv: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run C{argv} (a helper name or the ctdb tool) on node C{pnn}."""
        exe = CTDB_TOOL if argv[0] == "ctdb" else helper(self.bindir, argv[0])
        assert exe is not None
        return subprocess.run(
            [exe, *argv[1:]],
            env=self.env(pnn),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, pnn: int, *argv: str, timeout: float = 60) -> str:
        """Run C{argv} on node C{pnn}; it must succeed with nothing on stderr."""
        proc = self.run(pnn, *argv, timeout=timeout)
        assert proc.returncode == 0, (argv, proc.returncode, proc.stdout, proc.stderr)
        assert proc.stderr == "", (argv, proc.stderr)
        return proc.stdout

    def onAll(self, *argv: str, timeout: float = 90) -> list[tuple[int, str, str]]:
        """
        Run C{argv} on every node at once (as C{onnode -p all}); return
        (exit status, stdout, stderr) per node.
        """
        procs = [
            subprocess.Popen(
                [helper(self.bindir, argv[0]), *argv[1:]],
                env=self.env(pnn),
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            for pnn in range(NODES)
        ]
        results = []
        try:
            for proc in procs:
                out, err = proc.communicate(timeout=timeout)
                results.append((proc.returncode, out, err))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return results


def localRead(cluster: Cluster, pnn: int, db: str, key: str) -> dict[str, str]:
    """C{ctdb-db-test local-read} on node C{pnn}, as {field: value}."""
    text = cluster.ok(pnn, "ctdb-db-test", "local-read", db, key)
    lines = text.splitlines()
    assert len(lines) == 4, text
    fields = dict(line.split(": ", 1) for line in lines[:3])
    m = re.fullmatch(r'data\((\d+)\) = "(.*)"', lines[3])
    assert m is not None, text
    fields["size"], fields["data"] = m.group(1), m.group(2)
    return fields


def dbPath(cluster: Cluster, pnn: int, db: str) -> str:
    """The local TDB file of C{db} on node C{pnn} (from C{ctdb getdbmap})."""
    return cluster.ok(pnn, "ctdb", "getdbmap").split(f"name:{db} path:")[1].split()[0]


def openLocal(cluster: Cluster, pnn: int, db: str) -> TDB:
    """
    Node C{pnn}'s TDB file of C{db}; Samba's ctdbd uses mutexes on
    volatile databases, and libtdb wants the opener to say so.
    """
    path = dbPath(cluster, pnn, db)
    try:
        return TDB(path, 0, 0, os.O_RDWR, 0)
    except TDBError:
        return TDB(path, 0, TDB_MUTEX_LOCKING, os.O_RDWR, 0)


def localValue(cluster: Cluster, pnn: int, db: str, key: bytes) -> bytes | None:
    """The raw value (ltdb header + data) of C{key} in node C{pnn}'s copy of C{db}."""
    with openLocal(cluster, pnn, db) as tdb:
        return tdb.fetch(key)


# -- pure parts ------------------------------------------------------------------------


@needsSamba
class ProgramTests(SynchronousTestCase):
    """The programs as written, and their parts that need no cluster."""

    def test_programsWritten(self) -> None:
        """Every program is an executable named as Samba's binary, running its
        module with this Python; none is installed next to it (on C{PATH})."""
        for name in PROGRAMS:
            path = os.path.join(helperBin(), name)
            self.assertTrue(os.access(path, os.X_OK), name)
            with open(path) as f:
                self.assertEqual(f.read(), programText(name, sys.executable), name)
            self.assertFalse(
                os.path.exists(os.path.join(os.path.dirname(sys.executable), name))
            )

    def test_writeProgramsCommand(self) -> None:
        """C{python -m ctdb.helpers DIR} writes the programs into DIR, and
        each one runs (C{-h}: usage, exit 0); without DIR it says how to use it."""
        directory = os.path.join(tempDir(self), "libexec", "ctdb", "tests")
        subprocess.run(
            [sys.executable, "-m", "ctdb.helpers", directory],
            check=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        self.assertEqual(sorted(os.listdir(directory)), sorted(PROGRAMS))
        for name in ("dummy_client", "ctdb-db-test"):
            proc = subprocess.run(
                [os.path.join(directory, name), "--help"],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
                stdin=subprocess.DEVNULL,
            )
            self.assertEqual(proc.returncode, 0, (name, proc.stdout, proc.stderr))
        proc = subprocess.run(
            [sys.executable, "-m", "ctdb.helpers"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("usage: python -m ctdb.helpers DIR", proc.stderr)

    def test_runAsModule(self) -> None:
        """Each program also runs as C{python -m ctdb.helpers.<module>}."""
        proc = subprocess.run(
            [sys.executable, "-m", "ctdb.helpers.update_record", "-D", "x.tdb"],
            env={**os.environ, "CTDB_SOCKET": "/nonexistent/ctdbd.socket"},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("Please specify key name", proc.stderr)

    def test_socketPath(self) -> None:
        """path_socket: CTDB_SOCKET wins; test mode uses CTDB_BASE/run; else /run/ctdb."""
        self.assertEqual(
            socketPath({"CTDB_SOCKET": "/x.sock", "CTDB_TEST_MODE": "yes"}), "/x.sock"
        )
        self.assertEqual(
            socketPath({"CTDB_TEST_MODE": "yes", "CTDB_BASE": "/b"}),
            "/b/run/ctdbd.socket",
        )
        self.assertEqual(socketPath({"CTDB_BASE": "/b"}), "/run/ctdb/ctdbd.socket")
        self.assertRaises(SystemExit, socketPath, {"CTDB_TEST_MODE": "yes"})

    def test_dumpAndRingData(self) -> None:
        """local-read's data dump escapes as db_test_tool.c; fetch_ring's record grows a line."""
        self.assertEqual(dump("data", b'a"b\\c\0\n'), 'data(7) = "a\\22b\\5Cc\\00\\0A"')
        self.assertEqual(updated(b"", 3, 1), b"Test data\nmsg_count=3 on node 1\n\0")
        self.assertEqual(
            updated(b"Test data\n\0", 4, 2), b"Test data\nmsg_count=4 on node 2\n\0"
        )
        self.assertEqual(
            updated(b"x" * 1001, 1, 0), b"Test data\nmsg_count=1 on node 0\n\0"
        )

    def test_usageErrors(self) -> None:
        """A missing -D, -k or -v, or an unknown ctdb-db-test command: exit 1."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CTDB_")}
        env["CTDB_SOCKET"] = "/nonexistent/ctdbd.socket"
        cases = [
            (["fetch_ring", "-k", "k"], "Please specify database"),
            (["update_record", "-D", "x.tdb"], "Please specify key name"),
            (
                ["update_record_persistent", "-D", "x.tdb", "-k", "k"],
                "specify key value",
            ),
            (
                ["transaction_loop", "-D", "x.tdb", "-k", "k", "-T", "bad"],
                "Invalid database type",
            ),
            (["ctdb-db-test", "frobnicate"], "Unknown command"),
            (["message_ring", "-d", "LOUD"], "Invalid debug string"),
            (["message_ring"], "Failed to initialize client, ret=2"),
        ]
        for argv, message in cases:
            proc = subprocess.run(
                [helper(helperBin(), argv[0]), *argv[1:]],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
                stdin=subprocess.DEVNULL,
            )
            self.assertEqual(proc.returncode, 1, (argv, proc.stderr))
            self.assertIn(message, proc.stderr, argv)


# -- against each cluster -------------------------------------------------------------

RING = re.compile(r"^Ring\[(\d)\]: (\d+\.\d\d) msgs/sec \(\+ve=(\d+) -ve=(\d+)\)$")
TUNNEL = re.compile(r"^pnn\[(\d)\] (\d+\.\d) msgs/sec$")
FETCH = re.compile(r"^Fetch\[(\d)\]: (\d+\.\d\d) msgs/sec$")
TRANSACTION = re.compile(r"^Transaction\[(\d)\]: ((?:\s*\d+ ){3})$")


def _ringOutputs(
    results: list[tuple[int, str, str]], pattern: re.Pattern[str]
) -> list[re.Match[str]]:
    """Every node exits 0 with only the lines the shell test accepts; node 0
    says "Waiting for cluster" first."""
    matches = []
    for pnn, (code, out, err) in enumerate(results):
        assert code == 0 and err == "", (pnn, code, out, err)
        lines = out.splitlines()
        if pnn == 0:
            assert lines[0] == "Waiting for cluster", out
            lines = lines[1:]
        assert len(lines) == 1, out
        m = pattern.match(lines[0])
        assert m is not None and int(m.group(1)) == pnn, out
        matches.append(m)
    return matches


class _ClusterChecks:
    """The helper programs on a running cluster; each concrete class runs
    them against one kind of cluster (L{kind}), started by its first test."""

    kind: str
    #: the class's cluster
    shared: ClassVar[SharedClusters]
    cluster: Cluster
    assertEqual: Any
    assertIn: Any
    assertNotIn: Any
    assertTrue: Any
    assertGreaterEqual: Any
    assertIsNotNone: Any
    assertFalse: Any
    fail: Any

    @classmethod
    def tearDownClass(cls) -> None:
        cls.shared.stopAll()

    def setUp(self) -> None:
        if self.kind == "real":
            # An interop test, not an optional extra: `make install` installs ctdb.
            assert shutil.which(CTDBD) is not None or os.access(CTDBD, os.X_OK), (
                "Samba's ctdbd is not installed (make install)"
            )
        self.cluster = Cluster(self.kind, self.shared.get(self.kind), helperBin())

    def test_messageRing(self) -> None:
        """cluster.020: message_ring on all nodes; >= 10 msgs/sec each way.
        (Node 0 first injects the messages after one second.)"""
        results = self.cluster.onAll("message_ring", "-n", str(NODES), "-t", "3")
        for m in _ringOutputs(results, RING):
            self.assertTrue(
                float(m.group(2)) >= 10
                and int(m.group(3)) >= 10
                and int(m.group(4)) >= 10,
                m.group(0),
            )

    def test_tunnelRing(self) -> None:
        """cluster.021: tunnel_test on all nodes; >= 10 msgs/sec."""
        results = self.cluster.onAll("tunnel_test", "-t", "1", "-n", str(NODES))
        for m in _ringOutputs(results, TUNNEL):
            self.assertGreaterEqual(float(m.group(2)), 10, m.group(0))

    def test_fetchRing(self) -> None:
        """fetch.001: fetch_ring on all nodes migrates the record round the ring,
        each node appending a line to it."""
        cluster = self.cluster
        results = cluster.onAll(
            "fetch_ring",
            "-n",
            str(NODES),
            "-D",
            "fetch_ring.tdb",
            "-k",
            "testkey",
            "-t",
            "2",
        )
        for m in _ringOutputs(results, FETCH):
            self.assertGreaterEqual(float(m.group(2)), 10, m.group(0))
        records = [
            localRead(cluster, pnn, "fetch_ring.tdb", "testkey") for pnn in range(NODES)
        ]
        masters = [f for pnn, f in enumerate(records) if f["dmaster"] == str(pnn)]
        self.assertEqual(len(masters), 1, records)
        text = masters[0]["data"]
        # (the value starts again once it is over 1000 bytes)
        self.assertTrue(
            re.fullmatch(r"Test data\\0A(msg_count=\d+ on node [0-2]\\0A)+\\00", text),
            text,
        )

    def test_processExists(self) -> None:
        """basics.005: dummy_client's PID and its srvid are known to its node;
        a message to the srvid ends it with 0; no message within -t means 1."""
        cluster = self.cluster
        srvid = "0xAE00000012345678"
        proc = subprocess.Popen(
            [
                helper(cluster.bindir, "dummy_client"),
                *("-n", "10", "-S", srvid, "-t", "30"),
            ],
            env=cluster.env(1),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while cluster.run(1, "ctdb", "process-exists", str(proc.pid)).returncode:
                if time.monotonic() >= deadline or proc.poll() is not None:
                    self.fail(f"dummy_client never known: {proc.communicate()}")
                time.sleep(0.2)
            self.assertEqual(
                cluster.run(
                    1, "ctdb", "process-exists", str(proc.pid), srvid
                ).returncode,
                0,
            )
            self.assertEqual(
                cluster.run(
                    1, "ctdb", "process-exists", str(proc.pid), str(proc.pid)
                ).returncode,
                1,
            )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)
        proc2 = cluster.run(1, "dummy_client", "-S", "0xAE00000012345679", "-t", "1")
        self.assertEqual(proc2.returncode, 1)
        self.assertEqual(
            cluster.run(1, "dummy_client", "-n", "2", "-t", "1").returncode, 0
        )

    def test_readonly(self) -> None:
        """readonly.001 in short: update_record and fetch_readonly make no
        delegations until the database is read-only-enabled (a read-only fetch
        is then a full migration); then a read-only fetch on node 0 leaves node
        1 with delegations and node 0 with a copy, and update_record on node 1
        revokes them."""
        cluster = self.cluster
        db = "helpers_ro.tdb"
        cluster.ok(0, "ctdb", "attach", db)
        cluster.ok(0, "update_record", "-D", db, "-k", "testkey")
        cluster.ok(1, "fetch_readonly", "-D", db, "-k", "testkey")
        moved = localRead(cluster, 1, db, "testkey")
        self.assertEqual(moved["dmaster"], "1", moved)
        self.assertNotIn("RO_HAVE", moved["flags"])
        for pnn in range(NODES):
            cluster.ok(pnn, "ctdb", "setdbreadonly", db)
        cluster.ok(1, "update_record", "-D", db, "-k", "testkey")
        one = localRead(cluster, 1, db, "testkey")
        self.assertEqual(one["dmaster"], "1")
        # update_record stores its new rsn (+ 10) as the value; the daemon may
        # bump the rsn further when it stores the update (ctdbd does)
        self.assertTrue(
            one["data"].isdigit() and int(one["data"]) <= int(one["rsn"]), one
        )
        cluster.ok(0, "fetch_readonly", "-D", db, "-k", "testkey")
        self.assertIn(
            "RO_HAVE_DELEGATIONS", localRead(cluster, 1, db, "testkey")["flags"]
        )
        zero = localRead(cluster, 0, db, "testkey")
        self.assertIn("RO_HAVE_READONLY", zero["flags"])
        self.assertEqual(zero["dmaster"], "1")
        cluster.ok(1, "update_record", "-D", db, "-k", "testkey")
        for pnn in (0, 1):
            self.assertNotIn("RO_HAVE", cluster.ok(pnn, "ctdb", "cattdb", db))

    def test_updateRecordPersistent(self) -> None:
        """transaction.004: update_record_persistent creates, then replaces, a
        record of a persistent database on node 0, rsn + 1 each time."""
        cluster = self.cluster
        db = "helpers_persistent.tdb"
        cluster.ok(0, "ctdb", "attach", db, "persistent")
        cluster.ok(0, "ctdb", "wipedb", db)
        key = "Update_Record_Persistent"
        cluster.ok(
            0, "update_record_persistent", "-D", db, "-k", key, "-v", "FirstValue"
        )
        out = cluster.ok(0, "ctdb", "cattdb", db)
        self.assertEqual(out.count("FirstValue"), 1, out)
        self.assertIn("rsn: 1\n", out)
        cluster.ok(
            0, "update_record_persistent", "-D", db, "-k", key, "-v", "SecondValue"
        )
        out = cluster.ok(0, "ctdb", "cattdb", db)
        self.assertNotIn("FirstValue", out)
        self.assertEqual(out.count("SecondValue"), 1, out)
        self.assertIn("rsn: 2\n", out)
        cluster.ok(0, "ctdb", "wipedb", db)

    def checkTransactionLoop(self, dbtype: str) -> None:
        """transaction_loop on all nodes with a C{dbtype} database."""
        cluster = self.cluster
        db = f"helpers_{dbtype}_trans.tdb"
        cluster.ok(0, "ctdb", "attach", db, dbtype)
        cluster.ok(0, "ctdb", "wipedb", db)
        results = cluster.onAll(
            "transaction_loop",
            "-n",
            str(NODES),
            "-t",
            "2",
            "-D",
            db,
            "-T",
            dbtype,
            "-k",
            "testkey",
        )
        printed = []
        for m in _ringOutputs(results, TRANSACTION):
            counters = [int(c) for c in m.group(2).split()]
            self.assertGreaterEqual(counters[int(m.group(1))], 1, m.group(0))
            printed.append(counters)
        value = localValue(cluster, 0, db, b"testkey")
        self.assertIsNotNone(value)
        assert value is not None
        final = struct.unpack(
            f"<{NODES}I", value[LTDB_HEADER_SIZE : LTDB_HEADER_SIZE + 4 * NODES]
        )
        for counters in printed:
            self.assertTrue(
                all(f >= c for f, c in zip(final, counters)), (final, printed)
            )

    def test_transactionLoopPersistent(self) -> None:
        """transaction.002: transaction_loop on all nodes, persistent
        database; every node ends with its own counter committed at least
        once, and the record holds counters no smaller than any node
        printed."""
        self.checkTransactionLoop("persistent")

    def test_transactionLoopReplicated(self) -> None:
        """transaction.010: the same with a replicated database."""
        self.checkTransactionLoop("replicated")

    def test_dbTestTool(self) -> None:
        """vacuum.*: ctdb-db-test get-lmaster, local-read, local-lock (a child
        holding the chain lock until killed), fetch-local-delete and vacuum."""
        cluster = self.cluster
        db = "helpers_vacuum.tdb"
        cluster.ok(0, "ctdb", "attach", db)
        cluster.ok(0, "ctdb", "wipedb", db)
        lmasters = {
            cluster.ok(pnn, "ctdb-db-test", "get-lmaster", "key").strip()
            for pnn in (0, 2)
        }
        self.assertEqual(len(lmasters), 1, lmasters)
        self.assertTrue(lmasters <= {"0", "1", "2"}, lmasters)
        cluster.ok(0, "ctdb", "writekey", db, "key", "value1")
        fields = localRead(cluster, 0, db, "key")
        self.assertEqual((fields["dmaster"], fields["data"]), ("0", "value1"), fields)

        nodb = cluster.run(0, "ctdb-db-test", "local-read", "nosuch.tdb", "key")
        self.assertEqual(nodb.returncode, 2, nodb.stderr)
        self.assertIn("No database matching 'nosuch.tdb' found", nodb.stderr)
        self.assertEqual(
            cluster.run(0, "ctdb-db-test", "local-read", db, "nokey").returncode, 1
        )
        self.assertEqual(
            cluster.run(0, "ctdb-db-test", "vacuum", db, "bogus").returncode, 1
        )

        # local-lock: "OK <pid>", and the child holds the chain lock
        out = cluster.ok(0, "ctdb-db-test", "local-lock", db, "key")
        m = re.fullmatch(r"OK (\d+)\n", out)
        self.assertIsNotNone(m, out)
        assert m is not None
        child = int(m.group(1))
        try:
            tdb = openLocal(cluster, 0, db)
            try:
                self.assertFalse(tdb.chainLockNonblock(b"key"))
                os.kill(child, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while not tdb.chainLockNonblock(b"key"):
                    if time.monotonic() >= deadline:
                        self.fail("local-lock child still holds the lock")
                    time.sleep(0.05)
                tdb.chainUnlock(b"key")
            finally:
                tdb.close()
        finally:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass

        cluster.ok(1, "ctdb-db-test", "fetch-local-delete", db, "key")
        fields = localRead(cluster, 1, db, "key")
        self.assertEqual((fields["dmaster"], fields["size"]), ("1", "0"), fields)
        cluster.ok(1, "ctdb-db-test", "vacuum", db)
        cluster.ok(0, "ctdb-db-test", "-n", "1", "vacuum", db, "full")


@needsSamba
class OurDaemonHelperTests(_ClusterChecks, SynchronousTestCase):
    """The helper programs against a 3-node cluster of our daemons."""

    kind = "ours"
    shared = SharedClusters("txctdb-hpo-", NODES)


@needsSamba
class RealCtdbdHelperTests(_ClusterChecks, SynchronousTestCase):
    """The same command lines against a 3-node cluster of Samba's ctdbd."""

    kind = "real"
    shared = SharedClusters("txctdb-hpr-", NODES)


testSuite = trialSuite(__name__)
