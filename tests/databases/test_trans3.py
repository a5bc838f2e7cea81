# -*- test-case-name: tests.databases.test_trans3 -*-
"""
Tests for TRANS3_COMMIT and UPDATE_RECORD in L{ctdb.databases.manager}
(ctdb_persistent.c, ctdb_update_record.c): a commit is answered 0 only
when every active node applied it; when a node refuses, the answer waits
for the end of the recovery (status 2), as ctdbd 4.17 does; an update
that waited for a record lock while a recovery started is refused.
"""

from __future__ import annotations

import struct

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.database.ltdb import LtdbHeader
from ctdb.protocols import controls as C
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control
from ctdb.testing import FakeClient, FakeCluster, connectedNodes

SEQNUM_KEY = b"__db_sequence_number__\0"


def commitBuffer(db_id: int, pnn: int, rsn: int, records: dict[bytes, bytes]) -> bytes:
    """A client's TRANS3_COMMIT payload: every record at C{rsn}."""
    return R.RecBuffer(
        db_id,
        tuple(
            R.RecData(0, key, LtdbHeader(rsn, pnn).encode() + value)
            for key, value in records.items()
        ),
    ).encode()


class Trans3CommitTests(SynchronousTestCase):
    """Three daemons with memory stores and a persistent database."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster: FakeCluster = connectedNodes(3, self.clock)
        self.addCleanup(self.cluster.stop)
        self.managers = [self.cluster.databases(d.pnn) for d in self.cluster]
        for m in self.managers:
            db = m.attach("p.tdb", R.DB_FLAGS_PERSISTENT)
        self.db_id = db.db_id
        self.client = FakeClient(self.cluster[0], pid=4242)
        self.payload = commitBuffer(
            self.db_id, 0, 1, {b"shared": b"1", SEQNUM_KEY: struct.pack("<Q", 1)}
        )

    def value(self, pnn: int, key: bytes) -> bytes | None:
        raw = self.managers[pnn].byName["p.tdb"].store.fetch(key)
        return None if raw is None else raw[24:]

    def test_allApplied(self) -> None:
        """Every node applies the records; the commit is answered 0."""
        reqid = self.client.control(Control.TRANS3_COMMIT, self.payload)
        self.cluster.flush()
        reply = self.client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 0)
        self.assertEqual([self.value(p, b"shared") for p in range(3)], [b"1"] * 3)

    def test_failureWaitsForRecovery(self) -> None:
        """A node refusing UPDATE_RECORD puts the committing node in
        recovery mode and the commit stays unanswered (its g_lock held)
        until END_RECOVERY, which answers 2; an END_RECOVERY while the node
        is still in recovery mode answers nothing."""
        self.cluster[2].recmode = C.CTDB_RECOVERY_ACTIVE
        reqid = self.client.control(Control.TRANS3_COMMIT, self.payload)
        self.cluster.flush()
        self.assertIsNone(self.client.reply(reqid))
        self.assertEqual(self.cluster[0].recmode, C.CTDB_RECOVERY_ACTIVE)
        # the timeout does not answer either while the recovery runs
        self.clock.advance(self.cluster[0].tunables.ControlTimeout + 1)
        self.cluster.flush()
        self.assertIsNone(self.client.reply(reqid))
        tool = FakeClient(self.cluster[0])
        tool.control(Control.END_RECOVERY)
        self.cluster.flush()
        self.assertIsNone(self.client.reply(reqid))
        tool.control(Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_NORMAL))
        tool.control(Control.END_RECOVERY)
        self.cluster.flush()
        reply = self.client.reply(reqid)
        assert reply is not None
        self.assertEqual(
            (reply.status, reply.errmsg), (2, b"trans3 commit ended by recovery")
        )
        # and the database takes commits again
        again = self.client.control(
            Control.TRANS3_COMMIT, commitBuffer(self.db_id, 0, 2, {b"shared": b"2"})
        )
        self.cluster[2].recmode = C.CTDB_RECOVERY_NORMAL
        self.cluster.flush()
        reply = self.client.reply(again)
        assert reply is not None
        self.assertEqual(reply.status, 0)

    def test_timeout(self) -> None:
        """A node that never answers: after ControlTimeout the commit is
        answered 1 (ctdb_persistent_store_timeout)."""
        self.cluster[1].controls.register(
            Control.UPDATE_RECORD, lambda req, client: defer.Deferred()
        )
        reqid = self.client.control(Control.TRANS3_COMMIT, self.payload)
        self.cluster.flush()
        self.assertIsNone(self.client.reply(reqid))
        self.clock.advance(self.cluster[0].tunables.ControlTimeout + 1)
        self.cluster.flush()
        reply = self.client.reply(reqid)
        assert reply is not None
        self.assertNotEqual(reply.status, 0)

    def test_updateAcrossGenerationRefused(self) -> None:
        """UPDATE_RECORD waiting for a record lock (a client holds one) is
        refused if the generation changed meanwhile (a recovery started),
        instead of being applied after the recovery's pull."""
        manager = self.managers[1]
        store = manager.byName["p.tdb"].store
        self.assertTrue(store.lockNonblock(b"other"))
        tool = FakeClient(self.cluster[1])
        reqid = tool.control(Control.UPDATE_RECORD, self.payload)
        self.cluster.flush()
        self.assertIsNone(tool.reply(reqid))
        d = self.cluster[1]
        d.vnnMap = C.VnnMap(d.vnnMap.generation + 1, d.vnnMap.map)
        store.unlock(b"other")
        self.clock.advance(0.1)
        self.cluster.flush()
        reply = tool.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, -1)
        self.assertIsNone(self.value(1, b"shared"))

    def update(self, pnn: int, payload: bytes) -> int:
        """UPDATE_RECORD of C{payload} on node C{pnn} alone: its status."""
        tool = FakeClient(self.cluster[pnn])
        reqid = tool.control(Control.UPDATE_RECORD, payload)
        self.cluster.flush()
        reply = tool.reply(reqid)
        assert reply is not None
        return reply.status

    def commitOf(self, rsn: int, shared: bytes, seqnum: int) -> bytes:
        return commitBuffer(
            self.db_id,
            0,
            rsn,
            {b"shared": shared, SEQNUM_KEY: struct.pack("<Q", seqnum)},
        )

    def test_missedCommitRefused(self) -> None:
        """
        A node that missed a commit (its UPDATE_RECORD cut off by a
        recovery while the others applied it) refuses the next commit,
        whose sequence number skips the one it missed: applied, it would
        give this copy the newest sequence number without the missed
        commit's other records, and a recovery could keep that copy (a
        fault soak saw the shared counter one above the acknowledged
        increments so).  The same commit again, and the next one, pass.
        """
        self.assertEqual(self.update(1, self.commitOf(1, b"1", 1)), 0)
        # node 1 misses seqnum 2; seqnum 3 skips it
        self.assertEqual(self.update(1, self.commitOf(3, b"3", 3)), -1)
        self.assertEqual(self.value(1, b"shared"), b"1")
        self.assertEqual(self.update(1, self.commitOf(2, b"2", 2)), 0)
        self.assertEqual(self.update(1, self.commitOf(2, b"2", 2)), 0)
        self.assertEqual(self.update(1, self.commitOf(3, b"3", 3)), 0)
        self.assertEqual(self.value(1, b"shared"), b"3")

    def test_firstCommitAfterNone(self) -> None:
        """A database without a sequence number record takes seqnum 1, and
        refuses a first commit that says 2."""
        self.assertEqual(self.update(2, self.commitOf(1, b"2", 2)), -1)
        self.assertEqual(self.update(2, self.commitOf(1, b"1", 1)), 0)

    def test_replicatedNotChecked(self) -> None:
        """Only persistent databases: a replicated one's sequence number is
        not checked."""
        for m in self.managers:
            db = m.attach("r.tdb", R.DB_FLAGS_REPLICATED)
        payload = commitBuffer(
            db.db_id, 0, 1, {b"k": b"v", SEQNUM_KEY: struct.pack("<Q", 5)}
        )
        self.assertEqual(self.update(1, payload), 0)
