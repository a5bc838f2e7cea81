# -*- test-case-name: tests.databases.test_vacuum -*-
"""
Tests for L{ctdb.databases.vacuum}: the delete queue, fast and full vacuuming
runs, VACUUM_FETCH and TRY_DELETE_RECORDS, on three daemons connected by
L{ctdb.testing} fakes with in-memory record stores.

The scenarios are those of Samba's INTEGRATION database/vacuum.*.sh tests
(delete a record on its lmaster or elsewhere, vacuum on the deleting node
and then on the lmaster, with a record locked by a client at some step).
"""

from __future__ import annotations

import struct

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from ctdb.database.ltdb import CTDB_REC_FLAG_MIGRATED_WITH_DATA, LtdbHeader
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control
from tests.databases.test_manager import _ClusterMixin, keyWithLmaster

DB = "vacuum_test.tdb"


class _VacuumMixin(_ClusterMixin):
    """Helpers that do what Samba's tool and ctdb-db-test do."""

    def setUp(self) -> None:
        self.buildCluster()
        self.db_id = self.attach(DB)

    def populate(self, key: bytes, value: bytes = b"value") -> None:
        """writekey on node 0, then readkey on every node (as the tests'
        "Migrate record(s) to all nodes")."""
        self.writekey(0, DB, key, value)
        for pnn in (1, 2, 0):
            self.writekey(pnn, DB, key, value)

    def deletekey(self, pnn: int, key: bytes) -> None:
        """ctdb deletekey: fetch-lock the record here, store it empty with
        the same header, then SCHEDULE_FOR_DELETION."""
        self.writekey(pnn, DB, key, b"")
        header = self.managers[pnn].byName[DB].store.fetch(key)
        assert header is not None
        client = self.cluster.client(pnn)
        reqid = client.control(
            Control.SCHEDULE_FOR_DELETION, R.encodeKeyData(self.db_id, header[:24], key)
        )
        self.cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None and reply.status == 0, reply

    def vacuum(self, pnn: int, full: bool = False) -> int:
        """ctdb-db-test vacuum DB [full]: DB_VACUUM; the reply's status."""
        client = self.cluster.client(pnn)
        reqid = client.control(Control.DB_VACUUM, struct.pack("<IB", self.db_id, full))
        self.cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None, "no reply to DB_VACUUM"
        return reply.status

    def holders(self, key: bytes) -> list[int]:
        """The nodes that have a copy of the record."""
        return [pnn for pnn in range(3) if self.header(pnn, DB, key) is not None]

    def assertEmptyDmaster(self, pnn: int, key: bytes, dmaster: int) -> None:
        """vacuum_confirm_key_empty_dmaster."""
        got = self.header(pnn, DB, key)
        assert got is not None, f"node {pnn} has no copy"
        assert (got[0].dmaster, got[1]) == (dmaster, b""), got


class DeleteQueueTests(_VacuumMixin, SynchronousTestCase):
    """vacuum.001.fast: a deleted record goes on every node."""

    def test_deleteOnLmaster(self) -> None:
        """
        A record deleted on its lmaster goes from every node in one run
        there: the other nodes delete their copies (TRY_DELETE_RECORDS),
        then the lmaster deletes its own.  Other records stay.
        """
        key, other = keyWithLmaster(2), keyWithLmaster(2, prefix=b"other")
        self.populate(key)
        self.populate(other, b"kept")
        self.deletekey(2, key)
        self.assertEmptyDmaster(2, key, 2)
        self.assertEqual(self.holders(key), [0, 1, 2])
        self.assertEqual(self.vacuum(2), 0)
        self.assertEqual(self.holders(key), [])
        self.assertEqual(self.holders(other), [0, 1, 2])
        got = self.header(0, DB, other)
        assert got is not None
        self.assertEqual(got[1], b"kept")

    def test_deleteElsewhere(self) -> None:
        """
        A record deleted on node 0 (lmaster 2): vacuuming node 0 sends it to
        the lmaster (VACUUM_FETCH) and keeps it; the lmaster's next run
        migrates it there (empty, dmaster 2) and schedules it; its run after
        that deletes it everywhere.
        """
        key = keyWithLmaster(2)
        self.populate(key)
        self.deletekey(0, key)
        self.assertEqual(self.vacuum(0), 0)
        self.assertEmptyDmaster(0, key, 0)
        self.assertIn(key, self.managers[2].byName[DB].fetchQueue)
        self.assertEqual(self.vacuum(2), 0)
        self.assertEqual(self.holders(key), [0, 1, 2])
        self.assertEmptyDmaster(2, key, 2)
        self.assertEqual(self.vacuum(2), 0)
        self.assertEqual(self.holders(key), [])

    def test_neverMigratedWithData(self) -> None:
        """
        An empty record created on its lmaster and never migrated with data
        is deleted there at once: no other node can have a copy.
        """
        key = keyWithLmaster(1)
        self.writekey(1, DB, key, b"")
        h, _ = self.header(1, DB, key)  # type: ignore[misc]
        self.assertFalse(h.flags & CTDB_REC_FLAG_MIGRATED_WITH_DATA)
        self.assertIn(key, self.managers[1].byName[DB].deleteQueue)
        self.assertEqual(self.vacuum(1), 0)
        self.assertIsNone(self.header(1, DB, key))
        counts = self.managers[1].vacuum.lastCounts
        assert counts is not None
        self.assertEqual(counts.deletedLocally, 1)

    def test_recreatedRecordStays(self) -> None:
        """
        vacuum.003.recreate: a record written again after it was deleted
        is left alone by every following run, with its new value.
        """
        key = keyWithLmaster(2)
        self.populate(key)
        self.deletekey(0, key)
        self.assertEqual(self.vacuum(0), 0)
        self.writekey(1, DB, key, b"again")
        self.assertEqual(self.vacuum(2), 0)
        self.assertEqual(self.vacuum(2), 0)
        self.assertEqual(self.holders(key), [0, 1, 2])
        got = self.header(1, DB, key)
        assert got is not None
        self.assertEqual(got[1], b"again")

    def test_filledRecordLeavesQueue(self) -> None:
        """A record the daemon stores with data again leaves the delete queue."""
        key = keyWithLmaster(1)
        self.writekey(1, DB, key, b"")
        db = self.managers[1].byName[DB]
        self.assertIn(key, db.deleteQueue)
        self.writekey(0, DB, key, b"data")
        self.writekey(1, DB, key, b"data")
        self.assertNotIn(key, db.deleteQueue)

    def test_fullRun(self) -> None:
        """
        vacuum.002.full: an empty record nobody scheduled survives fast runs;
        a full run finds it by traversing the database.
        """
        key = keyWithLmaster(2)
        self.populate(key)
        self.writekey(2, DB, key, b"")  # deleted by a client: not scheduled
        self.managers[2].byName[DB].deleteQueue.clear()
        self.assertEqual(self.vacuum(2), 0)
        self.assertEqual(self.holders(key), [0, 1, 2])
        self.assertEqual(self.vacuum(2, full=True), 0)
        self.assertEqual(self.holders(key), [])


class LockedRecordTests(_VacuumMixin, SynchronousTestCase):
    """vacuum.03x.locked: a record a client holds locked is skipped and
    dropped from the queue, never waited for."""

    def test_lockedOnDeletingNode(self) -> None:
        """vacuum.030: locked on node 0 during its run: nothing is sent to
        the lmaster, and the record stays everywhere."""
        key = keyWithLmaster(2)
        self.populate(key)
        self.deletekey(0, key)
        store = self.managers[0].byName[DB].store
        self.assertTrue(store.lockNonblock(key))
        self.assertEqual(self.vacuum(0), 0)
        store.unlock(key)
        self.assertNotIn(key, self.managers[2].byName[DB].fetchQueue)
        for pnn in (0, 2, 2):
            self.assertEqual(self.vacuum(pnn), 0)
        self.assertEqual(self.holders(key), [0, 1, 2])
        self.assertEmptyDmaster(0, key, 0)

    def test_lockedOnLmaster(self) -> None:
        """vacuum.032: locked on the lmaster during its final run: the record
        is dropped from the queue and stays everywhere."""
        key = keyWithLmaster(2)
        self.populate(key)
        self.deletekey(0, key)
        self.assertEqual(self.vacuum(0), 0)
        self.assertEqual(self.vacuum(2), 0)
        store = self.managers[2].byName[DB].store
        self.assertTrue(store.lockNonblock(key))
        self.assertEqual(self.vacuum(2), 0)
        store.unlock(key)
        self.assertEqual(self.vacuum(2), 0)
        self.assertEqual(self.holders(key), [0, 1, 2])
        self.assertEmptyDmaster(2, key, 2)

    def test_lockedOnAnotherNode(self) -> None:
        """vacuum.034: locked on node 1 while the lmaster deletes: node 1
        refuses (TRY_DELETE_RECORDS answers it back), so the lmaster keeps
        its copy too; node 0 deleted its own."""
        key = keyWithLmaster(2)
        self.populate(key)
        self.deletekey(0, key)
        self.assertEqual(self.vacuum(0), 0)
        self.assertEqual(self.vacuum(2), 0)
        store = self.managers[1].byName[DB].store
        self.assertTrue(store.lockNonblock(key))
        self.assertEqual(self.vacuum(2), 0)
        store.unlock(key)
        self.assertEqual(self.holders(key), [1, 2])
        self.assertEmptyDmaster(2, key, 2)
        self.assertEqual(self.vacuum(2), 0)
        self.assertEqual(self.holders(key), [1, 2])


class ControlTests(_VacuumMixin, SynchronousTestCase):
    """The vacuuming controls on their own."""

    def test_tryDeleteRefusedOnLmaster(self) -> None:
        """TRY_DELETE_RECORDS answers back a record we are lmaster of, one
        we are dmaster of, and one with a newer rsn than the lmaster's."""
        lm, mine, newer = keyWithLmaster(1), keyWithLmaster(0), keyWithLmaster(2)
        for key in (lm, mine, newer):
            self.populate(key)
        self.writekey(1, DB, newer, b"x")  # node 1 is dmaster, rsn moves on
        h, _ = self.header(1, DB, newer)  # type: ignore[misc]
        old = LtdbHeader(h.rsn - 10, 2, 0, 0).encode()
        payload = R.RecBuffer(
            self.db_id, tuple(R.RecData(self.db_id, k, old) for k in (lm, newer))
        ).encode()
        client = self.cluster.client(1)
        reqid = client.control(Control.TRY_DELETE_RECORDS, payload)
        self.cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 0)
        refused = [r.key for r in R.RecBuffer.decode(reply.data).records]
        self.assertEqual(refused, [lm, newer])

    def test_vacuumFetchQueues(self) -> None:
        """VACUUM_FETCH puts the records in the fetch queue."""
        client = self.cluster.client(2)
        payload = R.RecBuffer(
            self.db_id, (R.RecData(0, b"a", b""), R.RecData(0, b"b", b""))
        ).encode()
        reqid = client.control(Control.VACUUM_FETCH, payload)
        self.cluster.flush()
        self.assertEqual(client.reply(reqid).status, 0)  # type: ignore[union-attr]
        self.assertEqual(list(self.managers[2].byName[DB].fetchQueue), [b"a", b"b"])

    def test_unknownDatabase(self) -> None:
        """DB_VACUUM of an unknown database fails."""
        self.db_id ^= 1
        self.assertEqual(self.vacuum(0), -1)

    def test_refusedDuringRecovery(self) -> None:
        """No vacuuming while recovery is active (vacuum_db_child's EAGAIN)."""
        from ctdb.protocols import controls as C

        self.cluster[0].recmode = C.CTDB_RECOVERY_ACTIVE
        self.assertEqual(self.vacuum(0), -1)

    def test_collision(self) -> None:
        """A second run while one is active is refused (EBUSY)."""
        key = keyWithLmaster(2)
        self.populate(key)
        self.deletekey(0, key)
        vac = self.managers[0].vacuum
        db = self.managers[0].byName[DB]
        # The run stops at VACUUM_FETCH until the cluster is flushed.
        d = vac.vacuum(db)
        self.assertIsNotNone(vac.running)
        self.assertEqual(self.vacuum(0), -1)
        self.cluster.flush()
        self.assertTrue(self.successResultOf(d))
        self.assertIsNone(vac.running)

    def test_detach(self) -> None:
        """Detaching a database stops its vacuuming."""
        vac = self.managers[0].vacuum
        db = self.managers[0].byName[DB]
        self.assertIn(db.db_id, vac.handles)
        self.managers[0].detach(db)
        self.assertNotIn(db.db_id, vac.handles)


class PeriodicTests(_VacuumMixin, SynchronousTestCase):
    """Runs every VacuumInterval seconds (ctdb_vacuum_event)."""

    tunables = {"VacuumInterval": 10, "VacuumFastPathCount": 2}  # noqa: RUF012

    def test_periodic(self) -> None:
        """A record deleted on its lmaster is gone after one interval; every
        VacuumFastPathCount'th run is a full one."""
        key = keyWithLmaster(2)
        self.populate(key)
        self.deletekey(2, key)
        self.cluster.advance(11)
        self.assertEqual(self.holders(key), [])
        handle = self.managers[2].vacuum.handles[self.db_id]
        self.assertEqual(handle.fastPathCount, 1)
        self.cluster.advance(20)
        self.assertEqual(handle.fastPathCount, 1)  # reset by the full run

    def test_intervalIncreased(self) -> None:
        """setvar VacuumInterval 99999 stalls vacuuming: the pending event
        reschedules itself for the difference."""
        key = keyWithLmaster(2)
        self.populate(key)
        for d in self.cluster:
            d.tunables.set("VacuumInterval", 99999)
        self.deletekey(2, key)
        self.cluster.advance(60, step=5)
        self.assertEqual(self.holders(key), [0, 1, 2])
        self.assertEqual(self.managers[2].vacuum.handles[self.db_id].interval, 99999)


class WaitingMigrationTests(_VacuumMixin, SynchronousTestCase):
    """vacuum.031.locked: the lmaster's run waits for a migration while a
    client holds the record locked on its dmaster, as ctdbd's child does."""

    tunables = {"VacuumMaxRunTime": 30}  # noqa: RUF012

    def startLocked(self) -> tuple[defer.Deferred[bool], bytes]:
        key = keyWithLmaster(2)
        self.populate(key)
        self.deletekey(0, key)
        self.assertEqual(self.vacuum(0), 0)
        self.assertTrue(self.managers[0].byName[DB].store.lockNonblock(key))
        d = self.managers[2].vacuum.vacuum(self.managers[2].byName[DB])
        self.cluster.advance(5, step=0.01)
        self.assertNoResult(d)
        return d, key

    def test_waitsForLock(self) -> None:
        """The run ends once the lock is released and the record arrived;
        the next run deletes it everywhere."""
        d, key = self.startLocked()
        self.managers[0].byName[DB].store.unlock(key)
        self.cluster.advance(1, step=0.01)
        self.assertTrue(self.successResultOf(d))
        self.assertEmptyDmaster(2, key, 2)
        self.assertEqual(self.vacuum(2), 0)
        self.assertEqual(self.holders(key), [])

    def test_maxRunTime(self) -> None:
        """A run still waiting after VacuumMaxRunTime is stopped; the record
        is vacuumed once it has arrived after all."""
        d, key = self.startLocked()
        self.cluster.advance(30)
        self.assertFalse(self.successResultOf(d))
        self.assertIsNone(self.managers[2].vacuum.running)
        self.managers[0].byName[DB].store.unlock(key)
        self.cluster.advance(1, step=0.01)
        self.assertEmptyDmaster(2, key, 2)
        self.assertEqual(self.vacuum(2), 0)
        self.assertEqual(self.holders(key), [])
