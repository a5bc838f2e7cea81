# -*- test-case-name: tests.transports.ib.test_cluster -*-
"""
Three whole nodes (L{ctdb.service.buildNode}, with recovery) in one
process on the real reactor, talking over the InfiniBand transport on the
fake fabric (C{[cluster] transport = ib}, the fake verbs given to
L{NodeConfig}); and the same checks over the TCP transport on loopback
addresses, so that the two are held to one standard: the cluster elects
one leader and recovers to one generation and vnn map; a record migrates
with ctdbd 4.17's rsn values (as tests/databases/test_manager.py); a node
that dies is recovered without and rejoins when it comes back.  The
InfiniBand runs are made twice: on the fake verbs directly, and through
our ctypes binding with the fake fabric behind its C calls.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from ctdb.database.ltdb import CTDB_REC_FLAG_MIGRATED_WITH_DATA, LtdbHeader, ctdbHash
from ctdb.nodes import parseNodes
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.service import CTDBNode, NodeConfig, buildNode
from ctdb.takeover.fake import FakeAddressSystem
from ctdb.testing import FakeClient
from ctdb.transports.ib.binding import RealVerbs
from ctdb.transports.ib.transport import IBNodeTransport
from ctdb.transports.tcp import TCPNodeTransport
from tests.support.fakelibverbs import FakeLibraries
from tests.support.fakeverbs import FakeFabric
from tests.transports.ib._harness import ADDRESSES, reactor, until

if TYPE_CHECKING:
    _Mixin = TestCase
else:
    _Mixin = object


def keyWithLmaster(lmaster: int, nodes: int = 3) -> bytes:
    for i in range(1000):
        key = b"key" + str(i).encode()
        if ctdbHash(key) % nodes == lmaster:
            return key
    raise AssertionError("no key found")


def freePort() -> int:
    """A TCP port free on the loopback addresses we use."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class _ClusterChecks(_Mixin):
    """The checks; subclasses say which transport carries them."""

    transportName = ""
    timeout = 60

    def configFor(self, pnn: int) -> dict[str, Any]:
        raise NotImplementedError

    def crashHost(self, pnn: int) -> None:
        """What the transport's peers see when node C{pnn}'s process dies."""

    def setUp(self) -> None:
        self.port = freePort()
        self.nodeMap = parseNodes("".join(f"{a}\n" for a in ADDRESSES))
        self.nodes: dict[int, CTDBNode] = {}
        for pnn in range(3):
            self.startNode(pnn)

    def startNode(self, pnn: int) -> CTDBNode:
        node = buildNode(
            NodeConfig(
                nodeMap=self.nodeMap,
                pnn=pnn,
                port=self.port,
                memoryStores=True,
                withRecovery=True,
                withClientSocket=False,
                addressSystem=FakeAddressSystem(("eth0",)),
                **self.configFor(pnn),
            ),
            reactor=reactor,
        )
        node.startService()
        self.nodes[pnn] = node
        self.addCleanup(self.stopNode, pnn, node)
        return node

    def stopNode(self, pnn: int, node: CTDBNode | None = None) -> Any:
        node = node or self.nodes[pnn]
        if not node.running:
            return None
        d = defer.maybeDeferred(node.stopService)
        d.addCallback(lambda _: self.reapTimers(node))
        return d

    def reapTimers(self, node: CTDBNode) -> None:
        """Cancel the timers a stopped node leaves in the reactor: the
        timeouts of controls still awaiting replies (C{Daemon._pending})
        and its databases' vacuuming.  A daemon process exits after its
        stop, so they never matter there; a test's reactor must be clean."""
        owners: list[object] = [node.daemon, node.databases.vacuum]
        for call in reactor.getDelayedCalls():
            func = getattr(call, "func", None)
            owner = getattr(func, "__self__", None)
            if any(owner is o for o in owners) and call.active():
                call.cancel()

    def live(self) -> list[CTDBNode]:
        return [n for n in self.nodes.values() if n.running]

    def converged(self, vnnmap: tuple[int, ...]) -> bool:
        live = [n for n in self.live() if n.daemon.pnn in vnnmap]
        if len(live) != len(vnnmap):
            return False
        leaders = {n.recovery.leader for n in live if n.recovery is not None}
        generations = {n.daemon.vnnMap.generation for n in live}
        return (
            len(leaders) == 1
            and leaders != {P.CTDB_UNKNOWN_PNN}
            and len(generations) == 1
            and P.INVALID_GENERATION not in generations
            and all(n.daemon.vnnMap.map == vnnmap for n in live)
            and all(n.daemon.recmode == C.CTDB_RECOVERY_NORMAL for n in live)
            and all(
                n.recovery is not None and not n.recovery.electionInProgress
                for n in live
            )
        )

    def waitConverged(self, vnnmap: tuple[int, ...]) -> defer.Deferred[None]:
        return until(
            lambda: self.converged(vnnmap),
            timeout=self.timeout,
            what=f"recovery to {vnnmap} over {self.transportName}",
        )

    # -- the record protocol ----------------------------------------------

    def attach(self, name: str) -> int:
        for node in self.nodes.values():
            db = node.databases.attach(name, 0)
        return db.db_id

    def header(self, pnn: int, name: str, key: bytes) -> tuple[LtdbHeader, bytes]:
        value = self.nodes[pnn].databases.byName[name].store.fetch(key)
        assert value is not None
        return LtdbHeader.decode(value[:24])[0], value[24:]

    @defer.inlineCallbacks
    def writekey(self, pnn: int, name: str, key: bytes, value: bytes) -> Any:
        """ctdb writekey: migrate the record here (REQ_CALL), then write."""
        databases = self.nodes[pnn].databases
        db_id = databases.byName[name].db_id
        client = FakeClient(self.nodes[pnn].daemon)
        hdr = P.Header(P.Operation.REQ_CALL, pnn, pnn, 77)
        client.send(
            P.ReqCall(
                hdr, P.CTDB_IMMEDIATE_MIGRATION, db_id, P.CTDB_NULL_FUNC, 0, key, b""
            )
        )

        def reply() -> P.ReplyCall | None:
            for p in client.packets():
                if isinstance(p, P.ReplyCall) and p.header.reqid == 77:
                    return p
            return None

        yield until(lambda: reply() is not None, timeout=self.timeout)
        answer = reply()
        assert answer is not None
        self.assertEqual(answer.status, 0)
        store = databases.byName[name].store
        old = store.fetch(key)
        assert old is not None
        store.store(key, old[:24] + value)
        client.disconnect()

    # -- the checks -----------------------------------------------------------

    @defer.inlineCallbacks
    def test_recovers(self) -> Any:
        """One leader, one generation, the full vnn map, every node out of
        recovery and RUNNING."""
        yield self.waitConverged((0, 1, 2))
        yield until(
            lambda: all(
                n.daemon.runstate == C.RunState.RUNNING for n in self.nodes.values()
            ),
            timeout=self.timeout,
            what="runstate RUNNING after the first recovery",
        )
        self.assertTrue(self.converged((0, 1, 2)))
        for node in self.nodes.values():
            self.assertGreaterEqual(node.daemon.stats.num_recoveries, 1)

    @defer.inlineCallbacks
    def test_migration(self) -> Any:
        """A record written on node 0 (lmaster 2), then on node 1: the
        headers ctdbd 4.17 leaves (dmaster, rsn, flags)."""
        yield self.waitConverged((0, 1, 2))
        self.attach("vol")
        key = keyWithLmaster(2)
        yield self.writekey(0, "vol", key, b"hello")
        h0, d0 = self.header(0, "vol", key)
        self.assertEqual((h0.dmaster, h0.rsn, h0.flags, d0), (0, 3, 0, b"hello"))
        h2, d2 = self.header(2, "vol", key)
        self.assertEqual((h2.dmaster, h2.rsn, d2), (0, 1, b""))
        yield self.writekey(1, "vol", key, b"hello")
        h0, _ = self.header(0, "vol", key)
        h1, d1 = self.header(1, "vol", key)
        h2, _ = self.header(2, "vol", key)
        self.assertEqual(
            (h0.dmaster, h0.rsn, h0.flags), (1, 3, CTDB_REC_FLAG_MIGRATED_WITH_DATA)
        )
        self.assertEqual((h1.dmaster, h1.rsn, d1), (1, 5, b"hello"))
        self.assertEqual((h2.dmaster, h2.rsn), (1, 3))

    @defer.inlineCallbacks
    def test_nodeDiesAndReturns(self) -> Any:
        """Node 1 dies: the others see it dead and recover without it; a new
        node 1 rejoins and the cluster recovers with all three."""
        yield self.waitConverged((0, 1, 2))
        self.crashHost(1)
        yield self.stopNode(1)
        yield self.waitConverged((0, 2))
        for pnn in (0, 2):
            flags = self.nodes[pnn].daemon.nodes[1].flags
            self.assertTrue(flags & C.NODE_FLAGS_DISCONNECTED)
        self.startNode(1)
        yield self.waitConverged((0, 1, 2))


class FakeVerbsClusterTests(_ClusterChecks, TestCase):
    """The checks over the InfiniBand transport on the fake fabric."""

    transportName = "ib (fake verbs)"

    #: the fabric hands completions back shuffled and in bursts
    shuffled = False

    def setUp(self) -> None:
        self.fabric = FakeFabric(reactor=reactor)
        self.fabric.reorder = self.fabric.burst = self.shuffled
        self.addCleanup(self.checkFabric)
        super().setUp()
        for node in self.nodes.values():
            self.assertIsInstance(node.daemon.transport, IBNodeTransport)

    def checkFabric(self) -> None:
        self.fabric.close()
        self.assertEqual(self.fabric.violations, [])
        self.assertEqual(self.fabric.rnrWaits, 0)

    def configFor(self, pnn: int) -> dict[str, Any]:
        return {"transport": "ib", "verbs": self.fabric.verbs(ADDRESSES[pnn])}

    def crashHost(self, pnn: int) -> None:
        self.fabric.crash(ADDRESSES[pnn])


class ShuffledClusterTests(FakeVerbsClusterTests):
    """The checks with completions out of order and in bursts."""

    transportName = "ib (fake verbs, shuffled completions)"
    shuffled = True


class BindingClusterTests(FakeVerbsClusterTests):
    """The checks over the InfiniBand transport through our ctypes binding,
    its C calls answered by the fake fabric (L{tests.support.fakelibverbs})."""

    transportName = "ib (binding over fake verbs)"

    def configFor(self, pnn: int) -> dict[str, Any]:
        libs = FakeLibraries(self.fabric.verbs(ADDRESSES[pnn]))
        return {"transport": "ib", "verbs": RealVerbs(libs)}


class TCPClusterTests(_ClusterChecks, TestCase):
    """The same checks over the TCP transport on 127.0.0.1-3."""

    transportName = "tcp"

    def setUp(self) -> None:
        super().setUp()
        for node in self.nodes.values():
            self.assertIsInstance(node.daemon.transport, TCPNodeTransport)

    def configFor(self, pnn: int) -> dict[str, Any]:
        return {"transport": "tcp"}
