# -*- test-case-name: tests.databases.test_manager -*-
"""
Tests for L{ctdb.databases.manager}: the volatile record protocol with
ctdbd's rsn rules, read-only delegations and sticky records, on daemons
connected by L{ctdb.testing} fakes with in-memory record stores.

The expected headers were taken from Samba's ctdbd 4.17 running the same
sequence (``ctdb writekey``/``readkey [readonly]``/``cattdb``) on three
nodes; see tests/integration/test_tool_db.py for the tool-level version.
"""

from __future__ import annotations

from typing import ClassVar

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.database.ltdb import (
    CTDB_REC_FLAG_MIGRATED_WITH_DATA,
    CTDB_REC_RO_HAVE_DELEGATIONS,
    CTDB_REC_RO_HAVE_READONLY,
    CTDB_REC_RO_REVOKING_READONLY,
    LtdbHeader,
    ctdbHash,
)
from ctdb.database.tdb import TDB_SEQNUM
from ctdb.databases.model import trackedPnns, trackingAdd, updateHotKeys
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control
from ctdb.testing import FakeClient, FakeCluster, connectedNodes

NULL = P.CTDB_NULL_FUNC
FETCH = P.CTDB_FETCH_FUNC


def keyWithLmaster(lmaster: int, nodes: int = 3, prefix: bytes = b"key") -> bytes:
    """A key whose lmaster (hash % nodes) is C{lmaster}."""
    for i in range(1000):
        key = prefix + str(i).encode()
        if ctdbHash(key) % nodes == lmaster:
            return key
    raise AssertionError("no key found")


class _ClusterMixin:
    """Three daemons with database managers on memory stores."""

    tunables: ClassVar[dict[str, int]] = {}

    def buildCluster(self, n: int = 3) -> FakeCluster:
        self.clock = Clock()
        self.cluster = connectedNodes(n, self.clock, tunables=dict(self.tunables))
        self.managers = [self.cluster.databases(d.pnn) for d in self.cluster]
        self.addCleanup(self.cluster.stop)  # type: ignore[attr-defined]
        return self.cluster

    def attach(self, name: str, flags: int = 0) -> int:
        for m in self.managers:
            db = m.attach(name, flags)
        return db.db_id

    def header(
        self, pnn: int, name: str, key: bytes
    ) -> tuple[LtdbHeader, bytes] | None:
        value = self.managers[pnn].byName[name].store.fetch(key)
        if value is None:
            return None
        return LtdbHeader.decode(value[:24])[0], value[24:]

    def call(
        self,
        pnn: int,
        db_id: int,
        key: bytes,
        callid: int = NULL,
        flags: int = P.CTDB_IMMEDIATE_MIGRATION,
        client: FakeClient | None = None,
        reqid: int = 77,
    ) -> FakeClient:
        """Send a REQ_CALL as a client of node C{pnn} (as Samba's fetch-lock does)."""
        if client is None:
            client = self.cluster.client(pnn)
        hdr = P.Header(P.Operation.REQ_CALL, pnn, pnn, reqid)
        client.send(P.ReqCall(hdr, flags, db_id, callid, 0, key, b""))
        return client

    def replyOf(self, client: FakeClient, reqid: int = 77) -> P.ReplyCall | None:
        for p in client.packets():
            if isinstance(p, P.ReplyCall) and p.header.reqid == reqid:
                return p
        return None

    def clientWrite(self, pnn: int, name: str, key: bytes, value: bytes) -> None:
        """What the tool's ctdb_store_record does once it is dmaster: rewrite
        the local record with the same header and new data."""
        store = self.managers[pnn].byName[name].store
        old = store.fetch(key)
        assert old is not None
        store.store(key, old[:24] + value)

    def writekey(self, pnn: int, name: str, key: bytes, value: bytes) -> None:
        """ctdb writekey: migrate the record here, then write it."""
        db_id = self.managers[pnn].byName[name].db_id
        client = self.call(pnn, db_id, key)
        self.cluster.flush()
        reply = self.replyOf(client)
        assert reply is not None and reply.status == 0, reply
        self.clientWrite(pnn, name, key, value)


class MigrationTests(_ClusterMixin, SynchronousTestCase):
    """REQ_CALL/REQ_DMASTER/REPLY_DMASTER with ctdb_ltdb_store_server's rsn rules."""

    def setUp(self) -> None:
        self.buildCluster()
        self.db_id = self.attach("vol")
        self.key = keyWithLmaster(2)

    def test_migrateFromLmaster(self) -> None:
        """
        A record first fetched on node 0 (lmaster 2) ends up there with rsn
        2: the lmaster creates it (rsn 1) and hands it over; node 0 stores
        it as dmaster (rsn 2) and ctdb_call_local writes it again (rsn 3).
        This is what ctdbd 4.17 shows after C{ctdb writekey} on node 0.
        """
        self.writekey(0, "vol", self.key, b"hello")
        h0, d0 = self.header(0, "vol", self.key)  # type: ignore[misc]
        self.assertEqual((h0.dmaster, h0.rsn, h0.flags, d0), (0, 3, 0, b"hello"))
        h2, d2 = self.header(2, "vol", self.key)  # type: ignore[misc]
        self.assertEqual((h2.dmaster, h2.rsn, d2), (0, 1, b""))

    def test_migrateWithData(self) -> None:
        """
        Read on node 1 after the write on node 0: node 0 keeps a copy
        pointing to node 1 (rsn 3, MIGRATED_WITH_DATA), the lmaster learns
        the new dmaster, and node 1 has rsn 5 (as ctdbd).
        """
        self.writekey(0, "vol", self.key, b"hello")
        self.writekey(1, "vol", self.key, b"hello")
        h0, _ = self.header(0, "vol", self.key)  # type: ignore[misc]
        h1, d1 = self.header(1, "vol", self.key)  # type: ignore[misc]
        h2, _ = self.header(2, "vol", self.key)  # type: ignore[misc]
        self.assertEqual(
            (h0.dmaster, h0.rsn, h0.flags), (1, 3, CTDB_REC_FLAG_MIGRATED_WITH_DATA)
        )
        self.assertEqual((h1.dmaster, h1.rsn, d1), (1, 5, b"hello"))
        self.assertEqual((h2.dmaster, h2.rsn), (1, 3))

    def test_fetchReturnsData(self) -> None:
        """A FETCH call from another node returns the data and migrates the record."""
        self.writekey(0, "vol", self.key, b"payload")
        client = self.call(2, self.db_id, self.key, callid=FETCH)
        self.cluster.flush()
        reply = self.replyOf(client)
        assert reply is not None
        self.assertEqual((reply.status, reply.data), (0, b"payload"))
        self.assertEqual(self.header(2, "vol", self.key)[0].dmaster, 2)  # type: ignore[index]

    def test_hotKeysCountMigrations(self) -> None:
        """The db's hot keys count migrations of a key to us within a second
        (ctdb_migration_count_handler), not hop counts."""
        self.writekey(0, "vol", self.key, b"x")
        self.writekey(1, "vol", self.key, b"x")
        self.writekey(0, "vol", self.key, b"x")
        stats = self.managers[0].byName["vol"].stats
        self.assertEqual(stats.hot_keys, [(2, self.key)])
        self.clock.advance(2)
        self.writekey(1, "vol", self.key, b"x")
        self.writekey(0, "vol", self.key, b"x")
        self.assertEqual(stats.hot_keys, [(2, self.key)])

    def test_unknownDatabase(self) -> None:
        """A client call for an unknown db gets status -1; the daemon goes on."""
        client = self.call(0, 0x12345678, self.key)
        self.cluster.flush()
        reply = self.replyOf(client)
        assert reply is not None
        self.assertEqual(reply.status, -1)
        self.writekey(0, "vol", self.key, b"still works")

    def test_unknownDatabaseFromNode(self) -> None:
        """A REQ_CALL from another node for an unknown db gets REPLY_ERROR."""
        daemon = self.cluster[1]
        sent: list[P.Packet] = []
        original = daemon.queuePacket

        def spy(pkt: P.Packet) -> None:
            sent.append(pkt)
            original(pkt)

        daemon.queuePacket = spy  # type: ignore[method-assign]
        hdr = P.Header(P.Operation.REQ_CALL, 1, 0, 5)
        self.managers[1].requestCall(P.ReqCall(hdr, 0, 0xDEAD, NULL, 0, b"k", b""))
        self.assertEqual([type(p) for p in sent], [P.ReplyError])

    def test_dbmapNewestFirst(self) -> None:
        """GET_DBMAP lists the most recently attached database first, as ctdbd."""
        self.attach("second", R.DB_FLAGS_PERSISTENT)
        client = self.cluster.client(0)
        reqid = client.control(Control.GET_DBMAP)
        self.cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None
        dbmap = R.decodeDbMap(reply.data)
        self.assertEqual(
            [d.db_id for d in dbmap],
            [self.managers[0].byName["second"].db_id, self.db_id],
        )


class ReadonlyTests(_ClusterMixin, SynchronousTestCase):
    """Read-only delegations (SET_DB_READONLY, WANT_READONLY, revoke)."""

    def setUp(self) -> None:
        self.buildCluster()
        self.db_id = self.attach("vol")
        self.key = keyWithLmaster(0)
        for m in self.managers:
            m.setReadonly(m.byName["vol"])
        self.writekey(0, "vol", self.key, b"value4")

    def readonly(self, pnn: int, callid: int = FETCH) -> P.ReplyCall:
        client = self.call(
            pnn,
            self.db_id,
            self.key,
            callid=callid,
            flags=P.CTDB_IMMEDIATE_MIGRATION | P.CTDB_WANT_READONLY,
        )
        self.cluster.flush()
        reply = self.replyOf(client)
        assert reply is not None
        return reply

    def test_setReadonlyControl(self) -> None:
        """SET_DB_READONLY sets the flag (idempotently) and opens the
        tracking db; it fails on a persistent database."""
        pers = self.managers[0].attach("pers", R.DB_FLAGS_PERSISTENT)
        client = self.cluster.client(0)
        ok = client.control(Control.SET_DB_READONLY, C.encodeU32(self.db_id))
        again = client.control(Control.SET_DB_READONLY, C.encodeU32(self.db_id))
        bad = client.control(Control.SET_DB_READONLY, C.encodeU32(pers.db_id))
        self.cluster.flush()
        self.assertEqual(
            [client.reply(r).status for r in (ok, again, bad)],  # type: ignore[union-attr]
            [0, 0, -1],
        )
        db = self.managers[0].byName["vol"]
        self.assertTrue(db.flags & R.DB_FLAGS_READONLY)
        self.assertIsNotNone(db.rotdb)
        self.assertFalse(pers.flags & R.DB_FLAGS_READONLY)

    def test_delegation(self) -> None:
        """
        A read-only fetch from node 1: the dmaster bumps its rsn by 3 and
        sets HAVE_DELEGATIONS, tracks node 1, and node 1 stores a copy with
        rsn-2 and HAVE_READONLY; the client gets the plain value.
        """
        reply = self.readonly(1)
        self.assertEqual((reply.status, reply.data), (0, b"value4"))
        h0, d0 = self.header(0, "vol", self.key)  # type: ignore[misc]
        self.assertEqual(
            (h0.dmaster, h0.rsn, h0.flags, d0),
            (0, 5, CTDB_REC_RO_HAVE_DELEGATIONS, b"value4"),
        )
        h1, d1 = self.header(1, "vol", self.key)  # type: ignore[misc]
        self.assertEqual(
            (h1.dmaster, h1.rsn, h1.flags, d1),
            (0, 3, CTDB_REC_RO_HAVE_READONLY, b"value4"),
        )
        db0 = self.managers[0].byName["vol"]
        self.assertEqual(trackedPnns(db0.rotdb.fetch(self.key) or b""), [1])  # type: ignore[union-attr]
        self.assertEqual(db0.stats.db_ro_delegations, 1)
        self.assertEqual(self.cluster[0].stats.total_ro_delegations, 1)

    def test_fetchWithHeader(self) -> None:
        """A client asking FETCH_WITH_HEADER read-only gets the RO header too."""
        reply = self.readonly(1, callid=P.CTDB_FETCH_WITH_HEADER_FUNC)
        header = LtdbHeader.decode(reply.data[:24])[0]
        self.assertEqual((header.rsn, header.flags), (3, CTDB_REC_RO_HAVE_READONLY))
        self.assertEqual(reply.data[24:], b"value4")

    def test_secondDelegation(self) -> None:
        """A second delegate is tracked too, without bumping the rsn again."""
        self.readonly(1)
        self.readonly(2)
        h0, _ = self.header(0, "vol", self.key)  # type: ignore[misc]
        self.assertEqual(h0.rsn, 5)
        db0 = self.managers[0].byName["vol"]
        self.assertEqual(trackedPnns(db0.rotdb.fetch(self.key) or b""), [1, 2])  # type: ignore[union-attr]

    def test_revokeByRemoteWrite(self) -> None:
        """
        A write request from node 2 revokes the delegations: node 1 gets the
        record by UPDATE_RECORD (rsn 4, MIGRATED_WITH_DATA), the dmaster
        marks REVOKE_COMPLETE, and the deferred request then migrates the
        record to node 2 (rsn 9), as ctdbd.
        """
        self.readonly(1)
        client = self.call(2, self.db_id, self.key)
        self.cluster.flush()
        self.assertIsNotNone(self.replyOf(client))
        h1, d1 = self.header(1, "vol", self.key)  # type: ignore[misc]
        self.assertEqual(
            (h1.dmaster, h1.rsn, h1.flags, d1),
            (0, 4, CTDB_REC_FLAG_MIGRATED_WITH_DATA, b"value4"),
        )
        h0, _ = self.header(0, "vol", self.key)  # type: ignore[misc]
        self.assertEqual(
            (h0.dmaster, h0.rsn, h0.flags), (2, 7, CTDB_REC_FLAG_MIGRATED_WITH_DATA)
        )
        h2, _ = self.header(2, "vol", self.key)  # type: ignore[misc]
        self.assertEqual((h2.dmaster, h2.rsn), (2, 9))
        db0 = self.managers[0].byName["vol"]
        self.assertIsNone(db0.rotdb.fetch(self.key))  # type: ignore[union-attr]
        self.assertEqual(db0.stats.db_ro_revokes, 1)
        self.assertEqual(db0.revokes, {})

    def test_revokeByLocalWrite(self) -> None:
        """A local client's write on the dmaster revokes too, then runs."""
        self.readonly(1)
        self.readonly(2)
        client = self.call(0, self.db_id, self.key)
        self.cluster.flush()
        reply = self.replyOf(client)
        assert reply is not None
        self.assertEqual(reply.status, 0)
        h0, _ = self.header(0, "vol", self.key)  # type: ignore[misc]
        self.assertEqual((h0.dmaster, h0.flags), (0, 0))
        for pnn in (1, 2):
            h, _ = self.header(pnn, "vol", self.key)  # type: ignore[misc]
            self.assertFalse(
                h.flags & (CTDB_REC_RO_HAVE_READONLY | CTDB_REC_RO_HAVE_DELEGATIONS)
            )

    def test_readonlyWaitsForRevoke(self) -> None:
        """A read-only request that arrives while a revoke runs is requeued
        one second after the revoke (write requests go first)."""
        self.readonly(1)
        writer = self.call(2, self.db_id, self.key)
        reader = self.call(
            1,
            self.db_id,
            self.key,
            callid=FETCH,
            reqid=78,
            flags=P.CTDB_IMMEDIATE_MIGRATION | P.CTDB_WANT_READONLY,
        )
        # node 1 still has its read-only copy, but the tool would ask the
        # daemon only without one; drop it so the request goes to node 0
        self.managers[1].byName["vol"].store.delete(self.key)
        self.cluster.flush()
        self.assertIsNotNone(self.replyOf(writer))
        self.clock.advance(1.0)
        self.cluster.flush()
        reply = self.replyOf(reader, 78)
        assert reply is not None
        self.assertEqual((reply.status, reply.data), (0, b"value4"))

    def test_revokeFailureRetries(self) -> None:
        """If a delegate does not answer UPDATE_RECORD the revoke fails: the
        record is not left REVOKING and the write is retried later."""
        self.readonly(1)
        self.cluster.network.killNode(1)
        self.cluster.flush()
        client = self.call(2, self.db_id, self.key)
        self.cluster.flush()
        h0, _ = self.header(0, "vol", self.key)  # type: ignore[misc]
        self.assertFalse(h0.flags & CTDB_REC_RO_REVOKING_READONLY)
        self.assertEqual(self.managers[0].byName["vol"].revokes, {})
        self.assertIsNone(self.replyOf(client))

    def test_notReadonlyDb(self) -> None:
        """WANT_READONLY on a database without READONLY is a normal migration."""
        self.attach("plain")
        db_id = self.managers[0].byName["plain"].db_id
        self.writekey(0, "plain", self.key, b"v")
        client = self.call(
            1,
            db_id,
            self.key,
            callid=FETCH,
            flags=P.CTDB_IMMEDIATE_MIGRATION | P.CTDB_WANT_READONLY,
        )
        self.cluster.flush()
        self.assertEqual(self.replyOf(client).data, b"v")  # type: ignore[union-attr]
        h1, _ = self.header(1, "plain", self.key)  # type: ignore[misc]
        self.assertEqual((h1.dmaster, h1.flags & CTDB_REC_RO_HAVE_READONLY), (1, 0))


class StickyTests(_ClusterMixin, SynchronousTestCase):
    """Sticky records: hot records are pinned down after migrating."""

    tunables: ClassVar[dict[str, int]] = {
        "HopcountMakeSticky": 1,
        "StickyDuration": 10,
        "StickyPindown": 200,
    }

    def setUp(self) -> None:
        self.buildCluster()
        self.db_id = self.attach("vol")
        client = self.cluster.client(0)
        for pnn in range(3):
            client.control(Control.SET_DB_STICKY, C.encodeU32(self.db_id), destnode=pnn)
        self.cluster.flush()
        # lmaster 2, record at node 0: a request from node 1 goes 1 -> 2 -> 0
        # and arrives at node 0 with hopcount 1.
        self.key = keyWithLmaster(2)
        self.writekey(0, "vol", self.key, b"hot")

    def test_setSticky(self) -> None:
        """SET_DB_STICKY sets the STICKY flag on volatile databases only."""
        self.assertTrue(self.managers[0].byName["vol"].flags & R.DB_FLAGS_STICKY)
        pers = self.managers[0].attach("pers", R.DB_FLAGS_PERSISTENT)
        client = self.cluster.client(0)
        reqid = client.control(Control.SET_DB_STICKY, C.encodeU32(pers.db_id))
        self.cluster.flush()
        self.assertEqual(client.reply(reqid).status, -1)  # type: ignore[union-attr]

    def test_becomesSticky(self) -> None:
        """A request that needed HopcountMakeSticky hops makes the record
        sticky on the node that answered it, for StickyDuration seconds."""
        self.writekey(1, "vol", self.key, b"hot")
        db0 = self.managers[0].byName["vol"]
        self.assertIn(self.key, db0.sticky)
        self.clock.advance(10)
        self.assertNotIn(self.key, db0.sticky)

    def test_pindown(self) -> None:
        """
        Once node 0 gets the sticky record back it keeps it for
        StickyPindown ms: a request from node 1 waits until then.
        """
        self.writekey(1, "vol", self.key, b"hot")  # sticky on node 0
        self.writekey(0, "vol", self.key, b"hot")  # back to 0: pinned down
        db0 = self.managers[0].byName["vol"]
        self.assertIsNotNone(db0.sticky[self.key].pindown)
        client = self.call(1, self.db_id, self.key)
        self.cluster.flush()
        self.assertIsNone(self.replyOf(client))
        self.assertEqual(self.header(0, "vol", self.key)[0].dmaster, 0)  # type: ignore[index]
        self.clock.advance(0.2)
        self.cluster.flush()
        self.assertIsNotNone(self.replyOf(client))
        self.assertEqual(self.header(1, "vol", self.key)[0].dmaster, 1)  # type: ignore[index]
        self.assertIsNone(db0.sticky[self.key].pindown)

    def test_notStickyBelowHopcount(self) -> None:
        """Requests answered without enough hops leave the record alone."""
        self.cluster[0].tunables.set("HopcountMakeSticky", 5)
        self.writekey(1, "vol", self.key, b"hot")
        self.assertEqual(self.managers[0].byName["vol"].sticky, {})

    def test_expiryReleasesPinnedRequests(self) -> None:
        """When the sticky record expires during a pindown, waiting
        requests go on at once."""
        self.cluster[0].tunables.set("StickyPindown", 60000)
        self.writekey(1, "vol", self.key, b"hot")
        self.writekey(0, "vol", self.key, b"hot")
        client = self.call(1, self.db_id, self.key)
        self.cluster.flush()
        self.assertIsNone(self.replyOf(client))
        self.clock.advance(10)
        self.cluster.flush()
        self.assertIsNotNone(self.replyOf(client))


class HelperTests(SynchronousTestCase):
    """The pure helpers."""

    def test_tracking(self) -> None:
        """Tracking records are pnn bitmaps (ctdb_trackingdb_add_pnn)."""
        t = trackingAdd(b"", 1)
        self.assertEqual(t, b"\x02")
        t = trackingAdd(t, 9)
        self.assertEqual(t, b"\x02\x02")
        self.assertEqual(trackedPnns(trackingAdd(t, 1)), [1, 9])

    def test_hotKeys(self) -> None:
        """Hot keys stay sorted by ascending count, at most ten, keeping the
        highest counts."""
        hot: list[tuple[int, bytes]] = []
        for i in range(12):
            updateHotKeys(hot, b"k%d" % i, i + 1)
        self.assertEqual(len(hot), R.MAX_HOT_KEYS)
        self.assertEqual([c for c, _ in hot], list(range(3, 13)))
        updateHotKeys(hot, b"k2", 1)  # lower than the smallest: ignored
        self.assertNotIn((1, b"k2"), hot)
        updateHotKeys(hot, b"k11", 20)
        self.assertEqual(hot[-1], (20, b"k11"))


class SeqnumTests(_ClusterMixin, SynchronousTestCase):
    """
    The tdb sequence numbers smbd validates its caches by (brlock.tdb,
    locking.tdb, leases.tdb): ENABLE_SEQNUM, the SeqnumInterval check,
    UPDATE_SEQNUM to the other nodes, and DB_OPEN_FLAGS
    (ctdb_ltdb_server.c, ctdb_control.c).
    """

    def setUp(self) -> None:
        self.buildCluster()
        self.db_id = self.attach("brlock.tdb")

    def control(self, pnn: int, opcode: int, data: bytes) -> P.ReplyControl:
        client = self.cluster.client(pnn)
        reqid = client.control(opcode, data)
        self.cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None
        return reply

    def openFlags(self, pnn: int) -> int:
        reply = self.control(pnn, Control.DB_OPEN_FLAGS, C.encodeU32(self.db_id))
        self.assertEqual(reply.status, 0)
        return C.decodeI32(reply.data, "flags")

    def seqnum(self, pnn: int) -> int:
        return self.managers[pnn].byName["brlock.tdb"].store.seqnum()

    def test_openFlagsFollowEnableSeqnum(self) -> None:
        """DB_OPEN_FLAGS answers our handle's live flags: TDB_SEQNUM is among
        them once a client enabled sequence numbers, so smbd's own handle
        bumps the number on its writes too."""
        self.assertEqual(self.openFlags(0) & TDB_SEQNUM, 0)
        reply = self.control(0, Control.ENABLE_SEQNUM, C.encodeU32(self.db_id))
        self.assertEqual(reply.status, 0)
        self.assertEqual(self.openFlags(0) & TDB_SEQNUM, TDB_SEQNUM)
        self.assertEqual(self.openFlags(1) & TDB_SEQNUM, 0)

    def test_changePropagates(self) -> None:
        """A change on node 0 is seen by the check within SeqnumInterval and
        announced with UPDATE_SEQNUM: every other node's file gets a new
        sequence number; node 0's own is not bumped a second time."""
        for pnn in range(3):
            self.control(pnn, Control.ENABLE_SEQNUM, C.encodeU32(self.db_id))
        before = [self.seqnum(k) for k in range(3)]
        self.managers[0].byName["brlock.tdb"].store.store(b"k", b"\0" * 24 + b"v")
        self.assertEqual(self.seqnum(0), before[0] + 1)
        self.clock.advance(self.cluster[0].tunables.SeqnumInterval / 1000.0)
        self.cluster.flush()
        self.assertEqual(
            [self.seqnum(k) for k in range(3)],
            [before[0] + 1, before[1] + 1, before[2] + 1],
        )
        # nothing changed since: the next check announces nothing
        self.clock.advance(self.cluster[0].tunables.SeqnumInterval / 1000.0)
        self.cluster.flush()
        self.assertEqual(
            [self.seqnum(k) for k in range(3)],
            [before[0] + 1, before[1] + 1, before[2] + 1],
        )

    def test_noCheckWithoutEnable(self) -> None:
        """Without ENABLE_SEQNUM nothing is checked or announced."""
        self.managers[0].byName["brlock.tdb"].store.store(b"k", b"\0" * 24 + b"v")
        self.clock.advance(5)
        self.cluster.flush()
        self.assertEqual([self.seqnum(k) for k in range(3)], [0, 0, 0])

    def test_updateFromSelfIgnored(self) -> None:
        """UPDATE_SEQNUM from our own pnn changes nothing (ctdb_ltdb_update_seqnum)."""
        client = self.cluster.client(1)
        header = P.Header(P.Operation.REQ_CONTROL, 1, 1, 99)
        client.send(
            P.ReqControl(
                header, Control.UPDATE_SEQNUM, 0, 0, 0, C.encodeU32(self.db_id)
            )
        )
        self.cluster.flush()
        self.assertEqual(self.seqnum(1), 0)

    def test_unknownDatabase(self) -> None:
        """Seqnum controls for a database we do not have fail with -1."""
        for opcode in (
            Control.ENABLE_SEQNUM,
            Control.UPDATE_SEQNUM,
            Control.DB_OPEN_FLAGS,
        ):
            self.assertEqual(self.control(0, opcode, C.encodeU32(0xDEAD)).status, -1)

    def test_detachStopsCheck(self) -> None:
        """Detaching a database stops its seqnum check."""
        self.control(0, Control.ENABLE_SEQNUM, C.encodeU32(self.db_id))
        db = self.managers[0].byName["brlock.tdb"]
        self.managers[0].detach(db)
        self.assertFalse(db.seqnumCheck.active())  # type: ignore[union-attr]
        self.assertEqual(
            self.clock.getDelayedCalls(),
            [c for c in self.clock.getDelayedCalls() if c is not db.seqnumCheck],
        )

    def test_intervalReadEachTime(self) -> None:
        """A new SeqnumInterval applies from the next check on."""
        self.control(0, Control.ENABLE_SEQNUM, C.encodeU32(self.db_id))
        self.control(1, Control.ENABLE_SEQNUM, C.encodeU32(self.db_id))
        tunables = self.cluster[0].tunables
        self.clock.advance(tunables.SeqnumInterval / 1000.0)
        tunables.set("SeqnumInterval", 5000)
        self.clock.advance(1.0)  # the check scheduled with the old interval
        self.managers[0].byName["brlock.tdb"].store.store(b"k", b"\0" * 24 + b"v")
        self.clock.advance(4.9)
        self.cluster.flush()
        self.assertEqual(self.seqnum(1), 0)
        self.clock.advance(0.1)
        self.cluster.flush()
        self.assertEqual(self.seqnum(1), 1)

    def test_reachesNodesOutsideVnnMap(self) -> None:
        """UPDATE_SEQNUM goes to every active node, lmaster or not
        (CTDB_BROADCAST_ACTIVE): node 2 without the lmaster role still
        learns of node 0's change."""
        for d in self.cluster:
            d.vnnMap = C.VnnMap(d.vnnMap.generation, (0, 1))
        for pnn in range(3):
            self.control(pnn, Control.ENABLE_SEQNUM, C.encodeU32(self.db_id))
        self.managers[0].byName["brlock.tdb"].store.store(b"k", b"\0" * 24 + b"v")
        self.clock.advance(self.cluster[0].tunables.SeqnumInterval / 1000.0)
        self.cluster.flush()
        self.assertEqual(self.seqnum(2), 1)


class DeferredAttachTests(_ClusterMixin, SynchronousTestCase):
    """A local client's attach during a recovery waits for its end
    (ctdb_control_db_attach, ctdb_process_deferred_attach): smbd started
    while the cluster is coming up does not fail."""

    def setUp(self) -> None:
        self.buildCluster()
        self.daemon = self.cluster[0]
        self.client = self.cluster.client(0)

    def attachRequest(self, name: str = "locking.tdb") -> int:
        reqid = self.client.control(Control.DB_ATTACH, C.encodeString(name))
        self.cluster.flush()
        return reqid

    def test_waitsForRecovery(self) -> None:
        """The attach is answered once the recovery mode goes back to NORMAL."""
        self.daemon.recmode = C.CTDB_RECOVERY_ACTIVE
        reqid = self.attachRequest()
        self.assertIsNone(self.client.reply(reqid))
        self.assertNotIn("locking.tdb", self.managers[0].byName)
        setNormal = self.client.control(
            Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_NORMAL)
        )
        self.cluster.flush()
        self.assertEqual(self.client.reply(setNormal).status, 0)  # type: ignore[union-attr]
        reply = self.client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 0)
        self.assertEqual(
            C.decodeU32(reply.data, "db_id"),
            self.managers[0].byName["locking.tdb"].db_id,
        )

    def test_waitsForFirstRecovery(self) -> None:
        """Before the first recovery ended (runstate < STARTUP) it waits
        too, until END_RECOVERY."""
        self.daemon.runstate = C.RunState.FIRST_RECOVERY
        reqid = self.attachRequest()
        self.assertIsNone(self.client.reply(reqid))
        self.client.control(Control.END_RECOVERY)
        self.cluster.flush()
        self.assertEqual(self.client.reply(reqid).status, 0)  # type: ignore[union-attr]

    def test_timeout(self) -> None:
        """After DeferredAttachTO seconds it fails."""
        self.daemon.recmode = C.CTDB_RECOVERY_ACTIVE
        reqid = self.attachRequest()
        self.clock.advance(self.daemon.tunables.DeferredAttachTO)
        self.cluster.flush()
        self.assertEqual(self.client.reply(reqid).status, -1)  # type: ignore[union-attr]
        self.assertEqual(self.managers[0]._deferredAttaches, [])

    def test_clientGone(self) -> None:
        """A client that goes while waiting leaves nothing behind."""
        self.daemon.recmode = C.CTDB_RECOVERY_ACTIVE
        self.attachRequest()
        self.client.transport.loseConnection()
        self.assertEqual(self.managers[0]._deferredAttaches, [])

    def test_inactiveNodeRefuses(self) -> None:
        """On a stopped or banned node a client may not attach."""
        self.daemon.nodes[0].flags |= C.NODE_FLAGS_STOPPED
        reqid = self.attachRequest()
        self.assertEqual(self.client.reply(reqid).status, -1)  # type: ignore[union-attr]
