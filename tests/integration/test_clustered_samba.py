# -*- test-case-name: tests.integration.test_clustered_samba -*-
"""
Clustered Samba on txctdb: Debian's smbd with C{clustering = yes} on every
node of a real 3-node cluster of our daemons, one shared directory, and
the kernel's own coordination (posix locking, kernel share modes, kernel
oplocks, kernel change notify) switched off, so that CTDB alone keeps the
nodes coherent.  An SMB2 client (smbprotocol) checks, across nodes, what a
file server's clients rely on: data, share modes, byte-range locks and
their effect on READ/WRITE, oplock and lease breaks, durable handle
reconnects and change notify; then again after a node's daemon is
SIGKILLed.  The same checks against smbds with C{clustering = no} show
each conflict disappearing, so none of this can pass without CTDB.

Every check is a function of two node addresses, so the same code runs on
a healthy cluster, on the survivors of a kill, and (inverted) without
clustering.

L{ClusteredSambaTests} share one cluster, started by their first test and
stopped by its recorded PIDs after their last (C{tearDownClass}, which
trial calls through L{testSuite}), or at exit.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
import time
import uuid
from typing import Any, ClassVar

from twisted.trial.unittest import SynchronousTestCase

from ctdb.cluster import LocalCluster
from ctdb.errors import SambaError
from ctdb.processes import liveProcesses
from ctdb.samba import ClusteredSamba

from ._clusters import Shared, randomBase, tempDir, trialSuite
from ._smb import (
    STATUS_FILE_LOCK_CONFLICT,
    STATUS_LOCK_NOT_GRANTED,
    STATUS_SHARING_VIOLATION,
    CreateDisposition,
    RequestedOplockLevel,
    SmbClient,
    lockElement,
    ntStatus,
    unlockElement,
)

#: how long a condition may take to become true (notify, cleanup)
CONDITION_TIMEOUT = 30.0


def waitFor(condition: Any, what: str, timeout: float = CONDITION_TIMEOUT) -> Any:
    """Poll C{condition} until it returns something true; fail after C{timeout}."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def uniqueName(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}.txt"


class Nodes:
    """A started cluster with an smbd per node, and the clients the test
    opened (all disconnected at the end)."""

    def __init__(self, cluster: LocalCluster, samba: ClusteredSamba) -> None:
        self.cluster = cluster
        self.samba = samba
        self._clients: list[SmbClient] = []

    def client(self, pnn: int) -> SmbClient:
        c = SmbClient(self.samba.address(pnn))
        self._clients.append(c)
        return c

    def closeClients(self) -> None:
        clients, self._clients = self._clients, []
        for c in clients:
            c.disconnect()


def startNodes(directory: str, nodes: int, *, clustering: bool = True) -> Nodes:
    """A cluster of C{nodes} in C{directory} with an smbd on each node; if
    a start fails, whatever did start is stopped."""
    cluster = LocalCluster(directory)
    cluster.setup(nodes, base=randomBase("ours"))
    samba = ClusteredSamba(cluster, clustering=clustering)
    result = Nodes(cluster, samba)
    try:
        if clustering:
            cluster.start()
        samba.start()
    except BaseException:
        stopNodes(result)
        raise
    return result


def stopNodes(nodes: Nodes) -> None:
    """Disconnect the clients, stop the smbds and the daemons (by their
    recorded PIDs), each even if the one before failed."""
    try:
        nodes.closeClients()
    finally:
        try:
            nodes.samba.stop()
        finally:
            nodes.cluster.stop()


def startShared() -> tuple[Nodes, str]:
    """The 3-node cluster that L{ClusteredSambaTests} share, and its directory."""
    directory = tempfile.mkdtemp(prefix="cs", dir="/tmp")
    try:
        return startNodes(directory, 3), directory
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def stopShared(shared: tuple[Nodes, str]) -> None:
    nodes, directory = shared
    try:
        stopNodes(nodes)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# -- the checks: each takes the nodes and the two pnns it crosses ----------------------


def checkData(nodes: Nodes, first: int, second: int) -> None:
    """A file written through C{first} reads back through C{second}, and a
    rewrite through C{second} reads back through C{first}."""
    name = uniqueName("data")
    a, b = nodes.client(first), nodes.client(second)
    ha = a.open(name)
    ha.write(b"written through node %d" % first, 0)
    ha.close()
    hb = b.open(name)
    assert hb.read(0, 100) == b"written through node %d" % first
    hb.write(b"REWRITTEN", 0)
    hb.close()
    ha = a.open(name)
    assert ha.read(0, 9) == b"REWRITTEN"


def checkShareModes(
    nodes: Nodes, first: int, second: int, *, coherent: bool = True
) -> None:
    """An open that shares nothing on C{first} refuses any open on
    C{second} (STATUS_SHARING_VIOLATION) until it is closed."""
    name = uniqueName("share")
    a, b = nodes.client(first), nodes.client(second)
    ha = a.open(name, share=0, disposition=CreateDisposition.FILE_CREATE)
    status = ntStatus(
        lambda: b.open(name, disposition=CreateDisposition.FILE_OPEN).close()
    )
    if not coherent:
        assert status == 0, (
            "without CTDB the share mode should not reach the other node"
        )
        return
    assert status == STATUS_SHARING_VIOLATION, hex(status)
    ha.close()
    b.open(name, disposition=CreateDisposition.FILE_OPEN).close()


def checkByteRangeLocks(
    nodes: Nodes, first: int, second: int, *, coherent: bool = True
) -> None:
    """An exclusive lock on C{first} refuses an overlapping lock on
    C{second}, allows a disjoint one, and frees the range when unlocked."""
    name = uniqueName("brl")
    a, b = nodes.client(first), nodes.client(second)
    ha = a.open(name)
    ha.write(b"x" * 200, 0)
    hb = b.open(name)
    ha.lock([lockElement(0, 10)])
    status = ntStatus(lambda: hb.lock([lockElement(5, 10)]))
    if not coherent:
        assert status == 0, "without CTDB the lock should not reach the other node"
        return
    assert status == STATUS_LOCK_NOT_GRANTED, hex(status)
    hb.lock([lockElement(100, 10)])
    # a shared lock under an exclusive one is refused too
    assert ntStatus(lambda: hb.lock([lockElement(0, 1, exclusive=False)])) == (
        STATUS_LOCK_NOT_GRANTED
    )
    ha.lock([unlockElement(0, 10)])
    hb.lock([lockElement(5, 10)])


def checkLockedReadWrite(
    nodes: Nodes, first: int, second: int, *, coherent: bool = True
) -> None:
    """READ and WRITE through C{second} inside a range locked exclusively
    through C{first} fail at once with STATUS_FILE_LOCK_CONFLICT; outside
    it they work."""
    name = uniqueName("rw")
    a, b = nodes.client(first), nodes.client(second)
    ha = a.open(name)
    ha.write(b"y" * 100, 0)
    hb = b.open(name)
    ha.lock([lockElement(0, 10)])
    write = ntStatus(lambda: hb.write(b"X", 2))
    read = ntStatus(lambda: hb.read(2, 1))
    if not coherent:
        assert (write, read) == (0, 0), (
            "without CTDB the lock should not reach the other node"
        )
        return
    assert (hex(write), hex(read)) == (hex(STATUS_FILE_LOCK_CONFLICT),) * 2
    assert hb.read(50, 5) == b"yyyyy"
    hb.write(b"Z", 60)
    ha.lock([unlockElement(0, 10)])
    assert hb.read(0, 3) == b"yyy"


def _openInBackground(
    client: SmbClient, name: str
) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["handle"] = client.open(name)
        except Exception as e:  # noqa: BLE001 - handed to the caller, which reports it
            result["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def checkOplockBreak(nodes: Nodes, first: int, second: int) -> None:
    """A batch oplock held through C{first} is broken when a client of
    C{second} opens the file; that open completes once the holder closes."""
    name = uniqueName("oplock")
    a, b = nodes.client(first), nodes.client(second)
    ha = a.open(name, oplock=RequestedOplockLevel.SMB2_OPLOCK_LEVEL_BATCH)
    assert ha.oplock_level == RequestedOplockLevel.SMB2_OPLOCK_LEVEL_BATCH
    thread, result = _openInBackground(b, name)
    brk = a.waitBreak()
    assert not brk.isLease
    assert brk.oplockLevel in (
        RequestedOplockLevel.SMB2_OPLOCK_LEVEL_II,
        RequestedOplockLevel.SMB2_OPLOCK_LEVEL_NONE,
    )
    ha.close()
    thread.join(CONDITION_TIMEOUT)
    assert "handle" in result, result.get("error")


def checkLeaseBreak(nodes: Nodes, first: int, second: int) -> None:
    """An RWH lease held through C{first} loses its write caching when a
    client of C{second} opens the file."""
    name = uniqueName("lease")
    a, b = nodes.client(first), nodes.client(second)
    rwh = 0x07  # READ | HANDLE | WRITE caching
    ha = a.open(name, leaseKey=uuid.uuid4().bytes, leaseState=rwh)
    assert ha.oplock_level == RequestedOplockLevel.SMB2_OPLOCK_LEVEL_LEASE
    thread, result = _openInBackground(b, name)
    brk = a.waitBreak()
    assert brk.isLease
    assert brk.current == rwh and not brk.new & 0x04, brk
    ha.close()
    thread.join(CONDITION_TIMEOUT)
    assert "handle" in result, result.get("error")


def checkDurableReconnect(nodes: Nodes, first: int, second: int) -> None:
    """A durable handle opened through C{first} survives its client's
    connection dropping, and is reconnected through C{second} with its
    data (the open's global record and its share-mode entry, written on
    C{first}, are found on C{second})."""
    name = uniqueName("durable")
    a = nodes.client(first)
    handle = a.open(
        name, oplock=RequestedOplockLevel.SMB2_OPLOCK_LEVEL_BATCH, durable=uuid.uuid4()
    )
    handle.write(b"durable payload", 0)
    a.drop()
    b = SmbClient(nodes.samba.address(second), clientGuid=a.clientGuid)
    nodes._clients.append(b)
    again = b.open(
        name, reconnect=handle, oplock=RequestedOplockLevel.SMB2_OPLOCK_LEVEL_BATCH
    )
    assert again.read(0, 15) == b"durable payload"


def checkChangeNotify(nodes: Nodes, first: int, second: int) -> None:
    """A CHANGE_NOTIFY on the share's root through C{first} completes when
    a client of C{second} creates a file.  The watch reaches the other
    nodes' notifyd a little after it is set up, so files are created until
    one is reported (bounded)."""
    a, b = nodes.client(first), nodes.client(second)
    watcher = a.watch(a.openDirectory(""))
    created: list[str] = []

    def createOne() -> bool:
        name = uniqueName("notify")
        b.open(name, disposition=CreateDisposition.FILE_CREATE).close()
        created.append(name)
        return watcher.response_event.wait(0.5)

    waitFor(createOne, "a change notification from another node")
    reported = {info["file_name"].get_value() for info in watcher.result or []}
    assert reported and reported <= set(created), (reported, created)


CHECKS = [
    checkData,
    checkShareModes,
    checkByteRangeLocks,
    checkLockedReadWrite,
    checkOplockBreak,
    checkLeaseBreak,
    checkDurableReconnect,
    checkChangeNotify,
]


# -- tests ----------------------------------------------------------------------------


class ClusteredSambaTests(SynchronousTestCase):
    """
    Coherence across the nodes of one 3-node cluster with an smbd per node,
    shared by these tests; the clients a test opened are disconnected when
    it ends.
    """

    shared: ClassVar[Shared[tuple[Nodes, str]]] = Shared(startShared, stopShared)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.shared.stop()

    def setUp(self) -> None:
        self.nodes = self.shared.get()[0]
        self.addCleanup(self.nodes.closeClients)

    def test_acrossNodesData(self) -> None:
        """Data written through node 0 reads back through node 1 (L{checkData})."""
        checkData(self.nodes, 0, 1)

    def test_acrossNodesShareModes(self) -> None:
        """Share modes hold between node 0 and node 1 (L{checkShareModes})."""
        checkShareModes(self.nodes, 0, 1)

    def test_acrossNodesByteRangeLocks(self) -> None:
        """Byte-range locks hold between node 0 and node 1
        (L{checkByteRangeLocks})."""
        checkByteRangeLocks(self.nodes, 0, 1)

    def test_acrossNodesLockedReadWrite(self) -> None:
        """READ and WRITE through node 1 respect a lock of node 0
        (L{checkLockedReadWrite})."""
        checkLockedReadWrite(self.nodes, 0, 1)

    def test_acrossNodesOplockBreak(self) -> None:
        """An oplock of node 0 breaks for an open on node 1
        (L{checkOplockBreak})."""
        checkOplockBreak(self.nodes, 0, 1)

    def test_acrossNodesLeaseBreak(self) -> None:
        """A lease of node 0 breaks for an open on node 1 (L{checkLeaseBreak})."""
        checkLeaseBreak(self.nodes, 0, 1)

    def test_acrossNodesDurableReconnect(self) -> None:
        """A durable handle of node 0 reconnects through node 1
        (L{checkDurableReconnect})."""
        checkDurableReconnect(self.nodes, 0, 1)

    def test_acrossNodesChangeNotify(self) -> None:
        """A watch on node 0 sees a file created through node 1
        (L{checkChangeNotify})."""
        checkChangeNotify(self.nodes, 0, 1)

    def test_acrossOtherPair(self) -> None:
        """Locks and share modes hold the other way round, from node 2 to 0."""
        checkByteRangeLocks(self.nodes, 2, 0)
        checkLockedReadWrite(self.nodes, 2, 0)
        checkShareModes(self.nodes, 2, 0)

    def test_killedSmbdHoldingLock(self) -> None:
        """The smbd serving a client that holds a lock is SIGKILLed: the lock
        does not outlive it, a client of another node gets the range."""
        nodes = self.nodes
        main = nodes.samba.pid(0)
        self.assertIsNotNone(main)
        assert main is not None
        before = set(liveProcesses(ppid=main))
        a = nodes.client(0)
        (server,) = (
            set(liveProcesses(ppid=main)) - before
        )  # the smbd serving this connection
        name = uniqueName("dead")
        ha = a.open(name)
        ha.write(b"z" * 50, 0)
        ha.lock([lockElement(0, 10)])
        hb = nodes.client(1).open(name)
        self.assertEqual(
            ntStatus(lambda: hb.lock([lockElement(0, 10)])), STATUS_LOCK_NOT_GRANTED
        )
        os.kill(server, signal.SIGKILL)
        waitFor(
            lambda: ntStatus(lambda: hb.lock([lockElement(0, 10)])) == 0,
            "the dead smbd's lock to be cleaned up",
        )

    def test_clientVanishesHoldingLock(self) -> None:
        """A client whose connection drops while it holds a lock loses it."""
        nodes = self.nodes
        name = uniqueName("vanish")
        a = nodes.client(0)
        ha = a.open(name)
        ha.write(b"z" * 50, 0)
        ha.lock([lockElement(20, 10)])
        hb = nodes.client(2).open(name)
        self.assertEqual(
            ntStatus(lambda: hb.lock([lockElement(20, 10)])), STATUS_LOCK_NOT_GRANTED
        )
        a.drop()
        waitFor(
            lambda: ntStatus(lambda: hb.lock([lockElement(20, 10)])) == 0,
            "the vanished client's lock to be released",
        )

    def test_noErrorsLogged(self) -> None:
        """Nothing smbd sends in normal work makes our daemon log at error
        level.  This runs after the checks above, on the same cluster: trial
        and pytest both run a class's tests in the order of their names, and
        this name sorts after every other of this class."""
        nodes = self.nodes
        checkData(nodes, 1, 2)
        bad = re.compile(r"#(error|critical)\]")
        for k in range(nodes.cluster.size):
            with open(nodes.cluster.logFile(k), errors="replace") as f:
                errors = [line for line in f if bad.search(line)]
            self.assertEqual(errors, [], f"node {k} logged errors:\n" + "".join(errors))


class ClusteredSambaLifecycleTests(SynchronousTestCase):
    """Clusters of their own: start order, a killed node, no clustering."""

    def test_smbdNeedsItsDaemon(self) -> None:
        """smbd started before its node's daemon refuses to run (smbd's own
        rule); started once the node is up it serves, and a node whose
        daemon starts later joins a cluster already serving files."""
        cluster = LocalCluster(tempDir(self, "cs"))
        cluster.setup(2, base=randomBase("ours"))
        samba = ClusteredSamba(cluster)
        nodes = Nodes(cluster, samba)
        self.addCleanup(stopNodes, nodes)
        error = self.assertRaises(SambaError, samba.start, [0])
        self.assertIn("exited", str(error))
        cluster.start([0])
        samba.start([0])
        checkData(nodes, 0, 0)
        cluster.start([1])
        samba.start([1])
        checkByteRangeLocks(nodes, 0, 1)
        checkData(nodes, 1, 0)

    def test_survivorsAfterKill(self) -> None:
        """SIGKILL node 0's daemon (the node whose smbd served the first
        client): its smbd exits by itself, and nodes 1 and 2 go on serving with
        every property still true, including for files touched before."""
        nodes = startNodes(tempDir(self, "cs"), 3)
        self.addCleanup(stopNodes, nodes)
        # records of every database are spread over all nodes first
        checkData(nodes, 0, 1)
        checkByteRangeLocks(nodes, 0, 2)
        checkShareModes(nodes, 1, 0)
        nodes.closeClients()
        nodes.cluster.kill(0)
        self.assertTrue(nodes.samba.waitExited(0), "node 0's smbd outlived its daemon")
        for check in CHECKS:
            check(nodes, 1, 2)
            check(nodes, 2, 1)
            nodes.closeClients()

    def test_withoutClusteringNoCoherence(self) -> None:
        """The same checks against smbds with clustering = no: every conflict
        disappears, so the tests above cannot pass without CTDB."""
        nodes = startNodes(tempDir(self, "cs"), 2, clustering=False)
        self.addCleanup(stopNodes, nodes)
        checkShareModes(nodes, 0, 1, coherent=False)
        checkByteRangeLocks(nodes, 0, 1, coherent=False)
        checkLockedReadWrite(nodes, 0, 1, coherent=False)


testSuite = trialSuite(__name__)
