# -*- test-case-name: tests.integration.test_realctdbd -*-
"""
One client API against two daemons: our Python client
(L{ctdb.protocols.client.connectClient}) talks to a real 3-node Samba
ctdbd 4.17 cluster (L{tests.support.realctdbd.RealCtdbdCluster}) and to a
3-node cluster of our own daemons (L{ctdb.cluster.LocalCluster}), and decodes the
replies with our L{ctdb.protocols.controls} codecs.

The same checks (L{_ClientChecks}) run against both.  Each cluster is
started once, by the first test of its class, on its own random 127.X.Y.Z
range (real ctdbd and our daemon both listen on port 4379), and stopped by
the PIDs it recorded after the last test of the class (C{tearDownClass},
which trial calls through L{testSuite}), or at exit.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Generator
from typing import Any, ClassVar

from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ctdb.errors import ControlFailed
from ctdb.protocols import controls as C
from ctdb.protocols.client import ClientConnection, connectClient
from tests.support.realctdbd import RealCtdbdCluster

from ._clusters import SharedClusters, randomBase, trialSuite

NODES = 3


class _ClientChecks:
    """Client API checks that must pass against any ctdbd, ours or Samba's."""

    kind: str
    #: the cluster has run its first recovery (one VNN map and generation,
    #: recovery times recorded).  Our daemon has no recovery service yet.
    recordsRecoveries: bool
    #: the class's cluster, started by its first test
    shared: ClassVar[SharedClusters]
    cluster: Any
    addCleanup: Callable[..., None]
    assertEqual: Callable[..., None]
    assertTrue: Callable[..., None]

    @classmethod
    def tearDownClass(cls) -> None:
        cls.shared.stopAll()

    def setUp(self) -> None:
        self.cluster = self.shared.get(self.kind)

    async def connect(self, pnn: int = 0) -> ClientConnection:
        # Twisted types the global reactor as _IReactorCommon (no IReactorUNIX)
        conn = await connectClient(
            reactor,  # type: ignore[arg-type]
            self.cluster.socketPath(pnn),
            timeout=10,
        )

        async def close() -> None:
            if not conn.closed.called:
                conn.close()
                await conn.closed

        self.addCleanup(lambda: defer.Deferred.fromCoroutine(close()))
        return conn

    @defer.inlineCallbacks
    def test_getPnnHandshake(self):  # type: ignore[no-untyped-def]
        """connectClient learns each node's PNN from GET_PNN."""
        for k in range(NODES):
            conn = yield defer.Deferred.fromCoroutine(self.connect(k))
            self.assertEqual(conn.pnn, k)

    @defer.inlineCallbacks
    def test_pingLocalAndRemote(self):  # type: ignore[no-untyped-def]
        """
        PING succeeds locally and via node 0 on node 1; its status is the
        number of clients of the node that answered (at least us locally).
        """
        conn = yield defer.Deferred.fromCoroutine(self.connect(0))
        local = yield conn.control(C.Control.PING)
        self.assertTrue(local.status >= 1, local)
        self.assertEqual(local.data, b"")
        remote = yield conn.control(C.Control.PING, destnode=1)
        self.assertTrue(remote.status >= 0, remote)
        self.assertEqual(remote.data, b"")
        # GET_PNN routed the same way proves which node answered.
        pnn = yield conn.control(C.Control.GET_PNN, destnode=1)
        self.assertEqual(pnn.status, 1)

    @defer.inlineCallbacks
    def test_nodeMap(self):  # type: ignore[no-untyped-def]
        """GET_NODEMAP decodes to every node, OK, at its configured address."""
        conn = yield defer.Deferred.fromCoroutine(self.connect(1))
        data = yield defer.Deferred.fromCoroutine(conn.controlOk(C.Control.GET_NODEMAP))
        nodes = C.decodeNodeMap(data)
        self.assertEqual(len(data), 4 + 36 * NODES)
        self.assertEqual(
            [(n.pnn, n.flags, n.address) for n in nodes],
            [(k, 0, self.cluster.address(k)) for k in range(NODES)],
        )

    @defer.inlineCallbacks
    def test_vnnMap(self):  # type: ignore[no-untyped-def]
        """
        GETVNNMAP decodes on every node to a map of valid PNNs holding that
        node; after a recovery, one valid generation and all nodes everywhere.
        """
        maps = []
        for k in range(NODES):
            conn = yield defer.Deferred.fromCoroutine(self.connect(k))
            data = yield defer.Deferred.fromCoroutine(
                conn.controlOk(C.Control.GETVNNMAP)
            )
            self.assertEqual(len(data), 8 + 4 * len(C.VnnMap.decode(data).map))
            maps.append(C.VnnMap.decode(data))
            self.assertTrue(set(maps[-1].map) <= set(range(NODES)), maps[-1])
            self.assertTrue(k in maps[-1].map, maps[-1])
        if not self.recordsRecoveries:
            return
        self.assertEqual(len({m.generation for m in maps}), 1, maps)
        self.assertTrue(maps[0].generation != 1, maps)  # INVALID_GENERATION
        self.assertEqual(sorted(maps[0].map), list(range(NODES)))

    @defer.inlineCallbacks
    def test_recoveryModeNormal(self):  # type: ignore[no-untyped-def]
        """GET_RECMODE returns NORMAL (0) in its status on a settled cluster."""
        conn = yield defer.Deferred.fromCoroutine(self.connect(0))
        reply = yield conn.control(C.Control.GET_RECMODE)
        self.assertEqual(reply.status, C.CTDB_RECOVERY_NORMAL)

    @defer.inlineCallbacks
    def test_tunables(self):  # type: ignore[no-untyped-def]
        """GET_ALL_TUNABLES decodes to Samba's defaults and agrees with GET_TUNABLE."""
        conn = yield defer.Deferred.fromCoroutine(self.connect(0))
        data = yield defer.Deferred.fromCoroutine(
            conn.controlOk(C.Control.GET_ALL_TUNABLES)
        )
        self.assertEqual(len(data), 4 * len(C.TUNABLES))
        values = C.Tunables.decodeAll(data)
        for name in (
            "ControlTimeout",
            "KeepaliveInterval",
            "KeepaliveLimit",
            "RecoverInterval",
            "DatabaseHashSize",
            "EnableBans",
        ):
            self.assertEqual(values[name], C.Tunables().get(name), name)
        for name in ("KeepaliveInterval", "MonitorInterval", "QueueBufferSize"):
            raw = yield defer.Deferred.fromCoroutine(
                conn.controlOk(C.Control.GET_TUNABLE, C.encodeGetTunable(name))
            )
            self.assertEqual(C.decodeU32(raw), values[name], name)

    @defer.inlineCallbacks
    def test_unknownTunable(self):  # type: ignore[no-untyped-def]
        """GET_TUNABLE of a name ctdbd does not know fails (ControlFailed)."""
        conn = yield defer.Deferred.fromCoroutine(self.connect(0))
        d = defer.Deferred.fromCoroutine(
            conn.controlOk(C.Control.GET_TUNABLE, C.encodeGetTunable("NoSuchTunable"))
        )
        yield self.assertFailure(d, ControlFailed)

    @defer.inlineCallbacks
    def test_statistics(self):  # type: ignore[no-untyped-def]
        """STATISTICS is 488 bytes and decodes to plausible counters and times."""
        conn = yield defer.Deferred.fromCoroutine(self.connect(0))
        for _ in range(5):
            reply = yield conn.control(C.Control.PING)
            self.assertTrue(reply.status >= 1)
        data = yield defer.Deferred.fromCoroutine(conn.controlOk(C.Control.STATISTICS))
        self.assertEqual(len(data), 488)
        stats = C.Statistics.decode(data)
        counters = stats.counters
        self.assertTrue(counters["num_clients"] >= 1, counters)
        self.assertEqual(counters["frozen"], 0)
        self.assertEqual(counters["recovering"], 0)
        # GET_PNN, 5 PINGs and this STATISTICS at least
        self.assertTrue(counters["client.req_control"] >= 7, counters)
        self.assertTrue(counters["client_packets_recv"] >= 7, counters)
        now = time.time()
        self.assertTrue(
            abs(stats.statistics_current_time - now) < 60, stats.statistics_current_time
        )
        self.assertTrue(
            now - 3600 < stats.statistics_start_time <= stats.statistics_current_time,
            (stats.statistics_start_time, stats.statistics_current_time),
        )
        self.assertTrue(stats.num_recoveries >= (1 if self.recordsRecoveries else 0))
        self.assertTrue(0 <= stats.call_latency.min <= stats.call_latency.max < 60)
        self.assertEqual(len(stats.hop_count_bucket), C.MAX_COUNT_BUCKETS)
        self.assertTrue(all(0 <= v < 2**32 for v in stats.hop_count_bucket))

    @defer.inlineCallbacks
    def test_uptime(self):  # type: ignore[no-untyped-def]
        """UPTIME decodes to times in order: start <= now, and close to our clock."""
        conn = yield defer.Deferred.fromCoroutine(self.connect(2))
        data = yield defer.Deferred.fromCoroutine(conn.controlOk(C.Control.UPTIME))
        self.assertEqual(len(data), 64)
        up = C.Uptime.decode(data)
        now = time.time()
        self.assertTrue(abs(up.current_time - now) < 60, up)
        self.assertTrue(now - 3600 < up.ctdbd_start_time <= up.current_time, up)
        if self.recordsRecoveries:
            self.assertTrue(
                up.ctdbd_start_time
                <= up.last_recovery_started
                <= up.last_recovery_finished
                <= up.current_time,
                up,
            )

    @defer.inlineCallbacks
    def test_messageToAnotherNode(self) -> Generator[defer.Deferred[Any], Any, None]:
        """
        A client on node 1 registers a srvid; a REQ_MESSAGE sent by a client
        on node 0 to node 1 reaches its handler with the data intact.
        """
        receiver = yield defer.Deferred.fromCoroutine(self.connect(1))
        sender = yield defer.Deferred.fromCoroutine(self.connect(0))
        srvid = 0xFE00_0000_0000_0000 | random.randint(1, 0xFFFF_FFFF)
        got: defer.Deferred[tuple[int, bytes]] = defer.Deferred()

        def handler(sid: int, data: bytes) -> None:
            if not got.called:
                got.callback((sid, data))

        yield defer.Deferred.fromCoroutine(receiver.registerSrvid(srvid, handler))
        # The registration is known once a control on that socket has returned.
        payload = os.urandom(37)
        sender.sendMessage(1, srvid, payload)
        got.addTimeout(10, reactor)
        sid, data = yield got
        self.assertEqual((sid, data), (srvid, payload))

    @defer.inlineCallbacks
    def test_unknownOpcode(self):  # type: ignore[no-untyped-def]
        """A control opcode ctdbd does not know gets a reply with a non-zero status."""
        conn = yield defer.Deferred.fromCoroutine(self.connect(0))
        reply = yield conn.control(9999, struct.pack("<I", 0))
        self.assertTrue(reply.status != 0, reply)
        self.assertEqual(reply.data, b"")
        d = defer.Deferred.fromCoroutine(conn.controlOk(9999))
        yield self.assertFailure(d, ControlFailed)


class RealCtdbdClientTests(_ClientChecks, TestCase):
    """Our client API against Samba's real ctdbd 4.17."""

    kind = "real"
    recordsRecoveries = True
    shared = SharedClusters("txctdb-rt-", NODES)

    def test_realClusterProcessesTracked(self) -> None:
        """
        The harness knows every process of the real cluster: per node the ctdbd
        of run/ctdbd.pid and its helpers (at least ctdb-eventd and the recovery
        daemon), all distinct and alive.
        """
        procs = self.cluster.processes()
        everything = [pid for pids in procs.values() for pid in pids]
        self.assertEqual(len(everything), len(set(everything)), procs)
        for k in range(NODES):
            pid = self.cluster.pid(k)
            self.assertIsNotNone(pid)
            self.assertIn(pid, procs[k])
            names = []
            for p in procs[k]:
                with open(f"/proc/{p}/comm") as f:
                    names.append(f.read().strip())
            self.assertIn("ctdb-eventd", names)
            self.assertGreaterEqual(len(procs[k]), 3, names)


class OurDaemonClientTests(_ClientChecks, TestCase):
    """The same client API checks against our own daemons."""

    kind = "ours"
    recordsRecoveries = True
    shared = SharedClusters("txctdb-ro-", NODES)


class RealCtdbdHarnessTests(SynchronousTestCase):
    """L{RealCtdbdCluster}'s own promises."""

    def test_killRestartStopLeavesNothing(self) -> None:
        """
        A one-node real cluster: after kill() its ctdb-eventd lingers for seconds
        (the REAL_CTDBD.md gotcha), yet an immediate restart succeeds (the
        harness ends the old helpers first), and stop() leaves no process of
        either incarnation.
        """
        d = tempfile.mkdtemp(prefix="txctdb-rk-", dir="/tmp")
        cluster = RealCtdbdCluster(d, base=randomBase("real"), nodes=1)
        try:
            cluster.setup()
            cluster.start(timeout=40)
            first = set(cluster.processes()[0])
            pid = cluster.pid(0)
            self.assertIn(pid, first)
            self.assertGreaterEqual(len(first), 2)
            cluster.kill(0)
            self.assertIsNone(cluster.pid(0))
            self.assertNotIn(pid, cluster.processes()[0])
            cluster.start(timeout=40)
            second = set(cluster.processes()[0])
            self.assertIn(cluster.pid(0), second)
            self.assertEqual(first & second, set(), (first, second))
            cluster.stop()
            self.assertEqual(cluster.processes(), {0: []})
            for p in first | second:
                try:
                    with open(f"/proc/{p}/stat") as f:
                        state = f.read().rsplit(")", 1)[1].split()[0]
                except OSError:
                    continue
                self.assertIn(state, ("Z", "X"), p)
        finally:
            cluster.stop()
            shutil.rmtree(d, ignore_errors=True)


testSuite = trialSuite(__name__)
