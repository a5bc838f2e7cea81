# -*- test-case-name: tests.recovery.test_procedure -*-
"""
Tests for L{ctdb.recovery.procedure}: one recovery run from node 0 over
daemons with memory record stores and the recovery controls, connected by
L{ctdb.testing} fakes (no recovery service, so nothing else recovers).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import ClassVar

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.database.ltdb import (
    CTDB_REC_FLAG_MIGRATED_WITH_DATA,
    CTDB_REC_RO_FLAGS,
    CTDB_REC_RO_HAVE_DELEGATIONS,
    CTDB_REC_RO_HAVE_READONLY,
    LtdbHeader,
)
from ctdb.databases.model import DB_SEQNUM_KEY
from ctdb.errors import RecoveryFailed
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control
from ctdb.recovery.procedure import recover
from ctdb.testing import FakeCluster, connectedNodes

GEN = 0x12345678


class _RecoveryMixin:
    """Three daemons with databases and recovery controls; node 0 recovers."""

    tunables: ClassVar[dict[str, int]] = {}

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster: FakeCluster = connectedNodes(
            3, self.clock, tunables=dict(self.tunables)
        )
        self.managers = [self.cluster.databases(d.pnn) for d in self.cluster]
        self.addCleanup(self.cluster.stop)  # type: ignore[attr-defined]

    def attach(self, name: str, flags: int = 0, on: tuple[int, ...] = (0, 1, 2)) -> int:
        db_id = 0
        for pnn in on:
            db_id = self.managers[pnn].attach(name, flags).db_id
        return db_id

    def put(
        self,
        pnn: int,
        name: str,
        key: bytes,
        rsn: int,
        dmaster: int,
        data: bytes,
        flags: int = 0,
    ) -> None:
        store = self.managers[pnn].byName[name].store
        store.store(key, LtdbHeader(rsn, dmaster, 0, flags).encode() + data)

    def get(self, pnn: int, name: str, key: bytes) -> tuple[LtdbHeader, bytes] | None:
        value = self.managers[pnn].byName[name].store.fetch(key)
        if value is None:
            return None
        return LtdbHeader.decode(value[:24])[0], value[24:]

    def recover(self, leader: int = 0, generation: int = GEN) -> defer.Deferred[None]:
        d = defer.Deferred.fromCoroutine(recover(self.cluster[leader], generation))
        self.cluster.advance(0.1, step=0.01)
        return d


class RecoveryRunTests(_RecoveryMixin, SynchronousTestCase):
    """The cluster state a recovery leaves behind."""

    def test_vnnMapAndMode(self) -> None:
        """Every node ends with the new generation, the vnn map of the active
        lmasters, recovery mode NORMAL and runstate RUNNING."""
        for d in self.cluster:
            d.recmode = C.CTDB_RECOVERY_ACTIVE
            d.runstate = C.RunState.FIRST_RECOVERY
        self.successResultOf(self.recover())
        for d in self.cluster:
            self.assertEqual(d.vnnMap, C.VnnMap(GEN, (0, 1, 2)))
            self.assertEqual(d.recmode, C.CTDB_RECOVERY_NORMAL)
            self.assertEqual(d.runstate, C.RunState.RUNNING)
            self.assertEqual(d.stats.num_recoveries, 1)

    def test_noLmasterCapability(self) -> None:
        """A node without the LMASTER capability is left out of the vnn map
        but still gets it."""
        self.cluster[2].capabilities &= ~C.CTDB_CAP_LMASTER
        self.successResultOf(self.recover())
        for d in self.cluster:
            self.assertEqual(d.vnnMap, C.VnnMap(GEN, (0, 1)))

    def test_inactiveNodeLeftOut(self) -> None:
        """A stopped node is neither pulled from, pushed to nor in the map."""
        for d in self.cluster:
            d.nodes[2].flags |= C.NODE_FLAGS_STOPPED
        self.attach("vol")
        self.put(2, "vol", b"k", 9, 2, b"stopped")
        self.put(1, "vol", b"k", 1, 1, b"live")
        before = self.cluster[2].vnnMap
        self.successResultOf(self.recover())
        self.assertEqual(self.cluster[0].vnnMap, C.VnnMap(GEN, (0, 1)))
        self.assertEqual(self.cluster[2].vnnMap, before)
        self.assertEqual(self.get(0, "vol", b"k")[1], b"live")  # type: ignore[index]
        self.assertEqual(self.get(2, "vol", b"k")[1], b"stopped")  # type: ignore[index]

    def test_leaderInactive(self) -> None:
        """A banned leader does not recover."""
        self.cluster[0].nodes[0].flags |= C.NODE_FLAGS_BANNED
        f = self.failureResultOf(self.recover(), RecoveryFailed)
        self.assertIn("not active", str(f.value))

    def test_databasesThawed(self) -> None:
        """After the run no database is frozen or in a transaction."""
        self.attach("vol")
        self.attach("pers.tdb", R.DB_FLAGS_PERSISTENT)
        self.successResultOf(self.recover())
        for m in self.managers:
            for db in m.byId.values():
                self.assertFalse(db.frozen)
                self.assertIsNone(db.transactionId)

    def test_missingDatabaseCreated(self) -> None:
        """A database only one node has is attached everywhere, with its
        records (DB_ATTACH with ATTACH_RECOVERY)."""
        self.attach("only1", on=(1,))
        self.put(1, "only1", b"k", 4, 1, b"v")
        self.successResultOf(self.recover())
        for pnn in range(3):
            self.assertIn("only1", self.managers[pnn].byName)
            self.assertEqual(self.get(pnn, "only1", b"k")[1], b"v")  # type: ignore[index]

    def test_missingPersistentCreated(self) -> None:
        """A missing persistent database is created persistent."""
        self.attach("p.tdb", R.DB_FLAGS_PERSISTENT, on=(2,))
        self.successResultOf(self.recover())
        for m in self.managers:
            self.assertTrue(m.byName["p.tdb"].persistent)


class VolatileMergeTests(_RecoveryMixin, SynchronousTestCase):
    """recdb_add_traverse and recbuf_filter_add for volatile databases."""

    def setUp(self) -> None:
        super().setUp()
        self.attach("vol")

    def test_highestRsnWins(self) -> None:
        """The copy with the highest rsn is pushed to every node, with the
        leader as dmaster and MIGRATED_WITH_DATA set; the leader stores it
        through the ltdb store rules, so its own copy's rsn is one higher."""
        self.put(0, "vol", b"k", 5, 0, b"five")
        self.put(1, "vol", b"k", 7, 1, b"seven")
        self.put(2, "vol", b"k", 6, 2, b"six")
        self.successResultOf(self.recover())
        for pnn in range(3):
            header, data = self.get(pnn, "vol", b"k")  # type: ignore[misc]
            self.assertEqual(data, b"seven")
            self.assertEqual(header.rsn, 8 if pnn == 0 else 7)
            self.assertEqual(header.dmaster, 0)
            self.assertTrue(header.flags & CTDB_REC_FLAG_MIGRATED_WITH_DATA)

    def test_tieKeepsFirstCopy(self) -> None:
        """Equal rsns, no copy naming the leader: the first pulled (lowest
        pnn) stays."""
        self.put(1, "vol", b"k", 3, 1, b"one")
        self.put(2, "vol", b"k", 3, 2, b"two")
        self.successResultOf(self.recover())
        for pnn in range(3):
            self.assertEqual(self.get(pnn, "vol", b"k")[1], b"one")  # type: ignore[index]

    def test_tieReplacesLeaderCopy(self) -> None:
        """Equal rsns: a stored copy whose dmaster is the leader is replaced
        by the next one pulled (4.17's rule, prev_hdr.dmaster != mypnn)."""
        self.put(0, "vol", b"k", 3, 0, b"leader")
        self.put(1, "vol", b"k", 3, 1, b"one")
        self.put(2, "vol", b"k", 3, 1, b"two")
        self.successResultOf(self.recover())
        for pnn in range(3):
            self.assertEqual(self.get(pnn, "vol", b"k")[1], b"one")  # type: ignore[index]

    def test_emptyRecordsDropped(self) -> None:
        """A header-only record (a deletion) with the highest rsn wins and is
        then dropped: the key is gone everywhere."""
        self.put(0, "vol", b"gone", 2, 0, b"old")
        self.put(1, "vol", b"gone", 4, 1, b"")
        self.put(2, "vol", b"kept", 1, 2, b"x")
        self.successResultOf(self.recover())
        for pnn in range(3):
            self.assertIsNone(self.get(pnn, "vol", b"gone"))
            self.assertEqual(self.get(pnn, "vol", b"kept")[1], b"x")  # type: ignore[index]

    def test_readonlyFlagsCleared(self) -> None:
        """Read-only delegation flags do not survive a recovery."""
        self.put(
            1,
            "vol",
            b"k",
            2,
            1,
            b"v",
            flags=CTDB_REC_RO_HAVE_DELEGATIONS | CTDB_REC_RO_HAVE_READONLY,
        )
        self.successResultOf(self.recover())
        for pnn in range(3):
            header = self.get(pnn, "vol", b"k")[0]  # type: ignore[index]
            self.assertEqual(header.flags & CTDB_REC_RO_FLAGS, 0)

    def test_noRecordLost(self) -> None:
        """Hundreds of records spread over the nodes, pushed in many small
        buffers (RecBufferSizeLimit), all arrive on every node."""
        for d in self.cluster:
            d.tunables.set("RecBufferSizeLimit", 500)
        expected = {}
        for i in range(300):
            key = b"key%d" % i
            value = b"value%d" % i * 3
            self.put(i % 3, "vol", key, i, i % 3, value)
            expected[key] = value
        self.successResultOf(self.recover())
        for m in self.managers:
            got = {k: v[24:] for k, v in m.byName["vol"].store.items()}
            self.assertEqual(got, expected)


class PersistentTests(_RecoveryMixin, SynchronousTestCase):
    """Persistent and replicated databases come from the highest seqnum."""

    def seqnum(self, pnn: int, name: str, value: int) -> None:
        self.put(pnn, name, DB_SEQNUM_KEY, value, pnn, struct.pack("<Q", value))

    def test_highestSeqnumWins(self) -> None:
        """Every node ends with exactly the content of the node with the
        highest sequence number, headers unchanged."""
        self.attach("p.tdb", R.DB_FLAGS_PERSISTENT)
        self.seqnum(0, "p.tdb", 3)
        self.put(0, "p.tdb", b"a", 9, 0, b"zero")
        self.seqnum(1, "p.tdb", 5)
        self.put(1, "p.tdb", b"a", 2, 1, b"one")
        self.put(1, "p.tdb", b"b", 1, 1, b"bee")
        self.seqnum(2, "p.tdb", 4)
        self.put(2, "p.tdb", b"c", 1, 2, b"sea")
        self.successResultOf(self.recover())
        for pnn in range(3):
            db = self.managers[pnn].byName["p.tdb"]
            self.assertEqual(
                sorted(k for k, _ in db.store.items()),
                sorted([DB_SEQNUM_KEY, b"a", b"b"]),
            )
            header, data = self.get(pnn, "p.tdb", b"a")  # type: ignore[misc]
            self.assertEqual((header.rsn, header.dmaster, data), (2, 1, b"one"))
            reply = self.successResultOf(self.control(pnn, db.db_id))
            self.assertEqual(C.decodeU64(reply.data), 5)

    def control(self, pnn: int, db_id: int) -> defer.Deferred[P.ReplyControl]:
        """GET_DB_SEQNUM of node C{pnn}, asked by node 0."""
        d = self.cluster[0].sendControl(
            pnn, Control.GET_DB_SEQNUM, struct.pack("<II", db_id, 0)
        )
        self.cluster.flush()
        return d

    def test_replicated(self) -> None:
        """A replicated database is recovered the same way."""
        self.attach("r.tdb", R.DB_FLAGS_REPLICATED)
        self.seqnum(2, "r.tdb", 1)
        self.put(2, "r.tdb", b"k", 1, 2, b"v")
        self.successResultOf(self.recover())
        self.assertEqual(self.get(0, "r.tdb", b"k")[1], b"v")  # type: ignore[index]


class LargeDatabaseTests(_RecoveryMixin, SynchronousTestCase):
    """
    A large database is pulled, merged and pushed in steps, the event loop
    getting turns in between: a node that held its reactor for the seconds
    a million records take would stop sending heartbeats and be declared
    dead by its peers, and the recovery would start again for ever.
    """

    RECORDS = 12000

    def probeDuring(
        self, d: defer.Deferred[None], watch: Callable[[], int]
    ) -> list[int]:
        """Sizes of C{watch}() seen by a zero-delay call that keeps asking
        for another turn until C{d} fires."""
        seen: list[int] = []

        def probe() -> None:
            seen.append(watch())
            if not d.called and len(seen) < 100000:
                self.clock.callLater(0, probe)

        self.clock.callLater(0, probe)
        return seen

    def test_persistentInSteps(self) -> None:
        """Every record of the best node reaches every node, and the
        leader's own copy fills in steps that other work interleaves."""
        self.attach("p.tdb", R.DB_FLAGS_PERSISTENT)
        for daemon in self.cluster:
            daemon.tunables.set("RecBufferSizeLimit", 50000)
        self.put(1, "p.tdb", DB_SEQNUM_KEY, 5, 1, struct.pack("<Q", 5))
        expected = {}
        for i in range(self.RECORDS):
            key = b"key-%06d" % i
            self.put(1, "p.tdb", key, 1, 1, b"value %d" % i)
            expected[key] = b"value %d" % i
        self.put(0, "p.tdb", b"stale", 1, 0, b"gone after the recovery")
        store = self.managers[0].byName["p.tdb"].store
        d = defer.Deferred.fromCoroutine(recover(self.cluster[0], GEN))
        seen = self.probeDuring(d, lambda: len(store.items()))
        self.cluster.advance(0.1, step=0.01)
        self.successResultOf(d)
        for pnn in range(3):
            got = self.managers[pnn].byName["p.tdb"].store.items()
            records = {k: v[24:] for k, v in got if k != DB_SEQNUM_KEY}
            self.assertEqual(records, expected)
        partial = [n for n in seen if 0 < n < self.RECORDS]
        self.assertGreater(len(set(partial)), 2, seen[:50])

    def test_volatileInSteps(self) -> None:
        """The same for a volatile database merged from every node."""
        self.attach("vol")
        for daemon in self.cluster:
            daemon.tunables.set("RecBufferSizeLimit", 50000)
        expected = {}
        for i in range(self.RECORDS):
            key = b"key-%06d" % i
            self.put(i % 3, "vol", key, 1 + i % 7, i % 3, b"v%d" % i)
            expected[key] = b"v%d" % i
        store = self.managers[0].byName["vol"].store
        d = defer.Deferred.fromCoroutine(recover(self.cluster[0], GEN))
        seen = self.probeDuring(d, lambda: len(store.items()))
        self.cluster.advance(0.1, step=0.01)
        self.successResultOf(d)
        for pnn in range(3):
            got = {k: v[24:] for k, v in self.managers[pnn].byName["vol"].store.items()}
            self.assertEqual(got, expected)
        partial = [n for n in seen if 0 < n < self.RECORDS]
        self.assertGreater(len(set(partial)), 2, seen[:50])


class FailureTests(_RecoveryMixin, SynchronousTestCase):
    """A node that fails the procedure is named as the culprit."""

    tunables: ClassVar[dict[str, int]] = {"RecoverTimeout": 5}

    def test_controlTimeout(self) -> None:
        """A node that never answers: RecoveryFailed with it as culprit,
        after RecoverTimeout."""
        self.cluster.network.blackholes.add((0, 2))
        d = self.recover()
        self.assertNoResult(d)
        self.cluster.advance(6)
        f = self.failureResultOf(d, RecoveryFailed)
        self.assertEqual(f.value.culprit, 2)

    def test_controlFails(self) -> None:
        """A node whose control fails is the culprit."""
        self.attach("vol")
        self.cluster[1].controls.register(
            Control.WIPE_DATABASE, lambda req, client: (-1, b"", b"disk on fire")
        )
        f = self.failureResultOf(self.recover(), RecoveryFailed)
        self.assertEqual(f.value.culprit, 1)
        self.assertIn("disk on fire", str(f.value))

    def test_pushCountMismatch(self) -> None:
        """A node that confirms fewer records than were pushed is the culprit."""
        self.attach("vol")
        self.put(0, "vol", b"k", 1, 0, b"v")
        self.cluster[2].controls.register(
            Control.DB_PUSH_CONFIRM, lambda req, client: (0, C.encodeU32(0), b"")
        )
        f = self.failureResultOf(self.recover(), RecoveryFailed)
        self.assertEqual(f.value.culprit, 2)
