# -*- test-case-name: tests.integration.test_exactness -*-
"""
Exactness under contention: several client processes on every node of a
3-node cluster increment the same few counters for a few seconds, in a
volatile database (fetch-lock, read, store) and in a persistent database
(transactions), while Samba's C{ctdb} tool reads them (C{catdb},
C{pfetch}).  Each worker counts the increments that were acknowledged
(the store returned under the lock / the commit returned); at the end every
counter equals the sum of its acknowledged increments, on every node, and
the persistent database's sequence number equals the number of commits.

The same run is made against our daemons and against Samba's real ctdbd
4.17, and Samba's C{tdbdump} and C{ltdbtool dump} must read the TDB files
the cluster wrote.

Each worker is this file run as a script (C{python test_exactness.py
worker SOCKET SECONDS}); it prints its counts as JSON.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

KEYS = [b"counter-%d" % i for i in range(5)]
VOLATILE = "exact_volatile.tdb"
PERSISTENT = "exact_persistent.tdb"
WORKERS_PER_NODE = 2
NODES = 3
SECONDS = 6.0


# -- the worker (runs in its own process) ------------------------------------------


async def _work(
    reactor: Any, socketPath: str, seconds: float, seed: int, goFile: str
) -> dict[str, Any]:
    from twisted.internet import task

    from ctdb.client import connect

    firsts: dict[str, float] = {}
    client = await connect(reactor, socketPath, timeout=30)
    vdb = await client.attach(VOLATILE)
    pdb = await client.attach(PERSISTENT, persistent=True)
    # Say we are ready, then wait (bounded) until every worker is.
    os.close(os.open(f"{goFile}.ready.{seed}", os.O_CREAT | os.O_WRONLY))
    for _ in range(600):
        if os.path.exists(goFile):
            break
        await task.deferLater(reactor, 0.05, lambda: None)
    started = reactor.seconds()
    rng = random.Random(seed)
    deadline = reactor.seconds() + seconds
    volatile: Counter[str] = Counter()
    persistent: Counter[str] = Counter()

    async def volatileLoop() -> None:
        while reactor.seconds() < deadline:
            key = rng.choice(KEYS)
            async with vdb.fetchLock(key) as record:
                value = int(record.data or b"0")
                record.store(b"%d" % (value + 1))
            volatile[key.decode()] += 1
            firsts.setdefault("volatile", reactor.seconds() - started)

    async def persistentLoop() -> None:
        while reactor.seconds() < deadline:
            key = rng.choice(KEYS)
            async with pdb.transaction() as txn:
                value = int(await txn.fetch(key) or b"0")
                await txn.store(key, b"%d" % (value + 1))
            persistent[key.decode()] += 1
            firsts.setdefault("persistent", reactor.seconds() - started)

    from twisted.internet import defer

    await defer.gatherResults(
        [
            defer.Deferred.fromCoroutine(volatileLoop()),
            defer.Deferred.fromCoroutine(persistentLoop()),
        ],
        consumeErrors=True,
    )
    result = {
        "pnn": client.pnn,
        "volatile": volatile,
        "persistent": persistent,
        "firsts": firsts,
    }
    await client.close()
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        from twisted.internet import defer, task

        args = sys.argv[2:]
        result: dict[str, Any] = {}

        async def _main(reactor: Any) -> None:
            result.update(
                await _work(reactor, args[0], float(args[1]), int(args[2]), args[3])
            )
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()

        task.react(lambda reactor: defer.Deferred.fromCoroutine(_main(reactor)))
    raise SystemExit(2)


# -- the tests ---------------------------------------------------------------------

import unittest

from twisted.trial.unittest import SynchronousTestCase

from ctdb.cluster import LocalCluster, syncControl
from ctdb.protocols import controls as C
from ctdb.protocols.packet import INVALID_GENERATION
from tests.support.realctdbd import RealCtdbdCluster


def waitSettled(cluster: Any, nodes: int, timeout: float = 40.0) -> None:
    """
    Until every node reports recovery mode NORMAL and the same valid
    generation with all C{nodes} nodes in its VNN map (the first recovery
    is over, so all nodes agree on every record's lmaster).
    """
    deadline = time.monotonic() + timeout
    problem = ""
    while time.monotonic() < deadline:
        problem = ""
        generations = set()
        for k in range(nodes):
            try:
                mode = syncControl(
                    cluster.socketPath(k), C.Control.GET_RECMODE, timeout=2
                )
                vnn = syncControl(cluster.socketPath(k), C.Control.GETVNNMAP, timeout=2)
            except OSError as e:
                problem = f"node {k}: {e}"
                break
            vnnMap = C.VnnMap.decode(vnn.data)
            if mode.status != C.CTDB_RECOVERY_NORMAL:
                problem = f"node {k} in recovery"
                break
            if vnnMap.generation == INVALID_GENERATION or len(vnnMap.map) != nodes:
                problem = f"node {k} vnn map {vnnMap}"
                break
            generations.add(vnnMap.generation)
        if not problem and len(generations) == 1:
            return
        problem = problem or f"generations differ: {generations}"
        time.sleep(0.1)
    raise AssertionError(f"cluster did not settle: {problem}")


def startCluster(kind: str) -> tuple[Any, str]:
    """A started, settled 3-node cluster of C{kind} ("ours"/"real")."""
    directory = tempfile.mkdtemp(prefix="txctdb-ex-", dir="/tmp")
    cluster: Any
    if kind == "real":
        base = f"127.{random.randint(20, 99)}.{random.randint(0, 255)}.1"
        cluster = RealCtdbdCluster(directory, base=base, nodes=NODES)
        cluster.setup()
    else:
        base = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.1"
        cluster = LocalCluster(directory)
        cluster.setup(NODES, base=base)
    try:
        # (a start that fails half-way is stopped too)
        cluster.start(timeout=40 if kind == "real" else 30)
        waitSettled(cluster, NODES)
    except BaseException:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return cluster, directory


def ctdbTool(cluster: Any, pnn: int, *args: str, timeout: float = 30) -> str:
    """Run Samba's ctdb tool against node C{pnn}; return stdout (must succeed)."""
    env = dict(os.environ)
    env.update(cluster.env(pnn))
    env["CTDB_TEST_MODE"] = "yes"
    proc = subprocess.run(
        ["ctdb", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


_CATDB = re.compile(r'key\(\d+\) = "([^"]*)"\n.*?data\(\d+\) = "([^"]*)"', re.DOTALL)


def parseCatdb(text: str) -> list[tuple[str, str]]:
    """(key, data) pairs of C{ctdb catdb} output."""
    return _CATDB.findall(text)


def parsePfetch(text: str) -> int:
    """The counter printed by C{ctdb pfetch} (empty output: 0)."""
    return int(text.strip() or "0")


def runExactness(kind: str) -> None:
    cluster, directory = startCluster(kind)
    goFile = os.path.join(directory, "go")
    workers: list[subprocess.Popen[str]] = []
    try:
        # attach once with Samba's tool so every node has both databases
        ctdbTool(cluster, 0, "attach", VOLATILE)
        ctdbTool(cluster, 0, "attach", PERSISTENT, "persistent")
        for k in range(NODES):
            for w in range(WORKERS_PER_NODE):
                workers.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            os.path.abspath(__file__),
                            "worker",
                            cluster.socketPath(k),
                            str(SECONDS),
                            str(k * 100 + w),
                            goFile,
                        ],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                        stdin=subprocess.DEVNULL,
                    )
                )
        # Start them together once all have attached (process start-up
        # takes seconds on a loaded 2-core machine).
        for _ in range(600):
            ready = [f for f in os.listdir(directory) if f.startswith("go.ready.")]
            if len(ready) == len(workers):
                break
            assert all(p.poll() is None for p in workers), "a worker exited early"
            time.sleep(0.05)
        assert len(ready) == len(workers), ready
        with open(goFile, "w"):
            pass
        # Samba's tool reads while the workers write.
        seen: dict[str, list[int]] = {key.decode(): [] for key in KEYS}
        catdbRecords = 0
        end = time.monotonic() + SECONDS
        reads = 0
        while time.monotonic() < end and reads < 200:
            reads += 1
            pnn = reads % NODES
            for key, value in parseCatdb(ctdbTool(cluster, pnn, "catdb", VOLATILE)):
                assert key in seen, key
                int(value)
                catdbRecords += 1
            key = KEYS[reads % len(KEYS)].decode()
            seen[key].append(
                parsePfetch(ctdbTool(cluster, pnn, "pfetch", PERSISTENT, key))
            )
        results = []
        for proc in workers:
            out, err = proc.communicate(timeout=SECONDS + 90)
            assert proc.returncode == 0, (proc.returncode, err[-3000:])
            results.append(json.loads(out.strip().splitlines()[-1]))
        workers = []

        volatileAcks: Counter[str] = Counter()
        persistentAcks: Counter[str] = Counter()
        for r in results:
            volatileAcks.update(r["volatile"])
            persistentAcks.update(r["persistent"])
        # everybody made progress, on both kinds of database
        assert all(sum(r["volatile"].values()) > 0 for r in results), results
        assert all(sum(r["persistent"].values()) > 0 for r in results), results
        if kind == "ours":
            # Real ctdbd's traverse child gives up on hash chains that a
            # client holds locked (with one record locked, catdb lists 2 of
            # 5), so under this load it often dumps nothing; ours waits.
            assert catdbRecords > 0, (reads, seen)
        # Samba's pfetch never saw more than was finally acknowledged
        for key, values in seen.items():
            assert all(v <= persistentAcks[key] for v in values), (key, values)

        # volatile: one copy of each counter cluster-wide, equal to its acks
        catdb = parseCatdb(ctdbTool(cluster, 1, "catdb", VOLATILE))
        final = {key: int(value) for key, value in catdb}
        assert len(catdb) == len(final), catdb
        assert final == {k: v for k, v in volatileAcks.items()}, (final, volatileAcks)
        # persistent: every node's copy equals the acks; seqnum = commits
        commits = sum(persistentAcks.values())
        print(
            f"{kind}: {sum(volatileAcks.values())} fetch-lock increments, "
            f"{commits} transactions, {reads} tool reads ({catdbRecords} catdb records)"
        )
        for k in range(NODES):
            for rawKey in KEYS:
                fetched = parsePfetch(
                    ctdbTool(cluster, k, "pfetch", PERSISTENT, rawKey.decode())
                )
                assert fetched == persistentAcks[rawKey.decode()], (k, rawKey, fetched)
            seqnum = ctdbTool(cluster, k, "getdbseqnum", PERSISTENT).strip()
            assert int(seqnum, 0) == commits, (k, seqnum, commits)

        # Samba's TDB tools read the files
        for k in range(NODES):
            node = cluster.nodeDir(k)
            ppath = os.path.join(node, "db", "persistent", f"{PERSISTENT}.{k}")
            dump = subprocess.run(
                ["tdbdump", ppath],
                check=False,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert dump.returncode == 0, dump.stderr
            for rawKey in KEYS:
                assert f'key({len(rawKey)}) = "{rawKey.decode()}"' in dump.stdout
            assert 'key(23) = "__db_sequence_number__\\00"' in dump.stdout
        # the whole set of dmaster copies on disk equals catdb's view
        onDisk: dict[str, int] = {}
        for k in range(NODES):
            vpath = os.path.join(
                cluster.nodeDir(k), "db", "volatile", f"{VOLATILE}.{k}"
            )
            for key, dmaster, value in ltdbRecords(vpath):
                if dmaster == k and value:
                    assert key not in onDisk, (key, k)
                    onDisk[key] = int(value)
        assert onDisk == final, (onDisk, final)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


_LTDB = re.compile(
    r'key\(\d+\) = "([^"]*)"\n\s*dmaster: (\d+)\n.*?data\(\d+\) = "([^"]*)"', re.DOTALL
)


def ltdbRecords(path: str) -> list[tuple[str, int, str]]:
    """(key, dmaster, data) of each record, as C{ltdbtool dump -p} prints them."""
    out = subprocess.run(
        ["ltdbtool", "dump", "-p", path],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return [(k, int(d), v) for k, d, v in _LTDB.findall(out.stdout)]


class ExactnessTests(SynchronousTestCase):
    """Acknowledged increments against the counters, on each kind of daemon."""

    def test_exactnessOurDaemon(self) -> None:
        """
        2 client processes per node on our 3-node cluster increment 5 shared
        counters (fetch-lock and transactions) for a few seconds while Samba's
        tool reads them; every counter equals its acknowledged increments.
        """
        runExactness("ours")

    @unittest.skipIf(shutil.which("ctdbd") is None, "Samba ctdbd not installed")
    def test_exactnessRealCtdbd(self) -> None:
        """The same run against Samba's real ctdbd 4.17: the client is exact there too."""
        runExactness("real")
