# -*- test-case-name: tests.daemon.test_statistics -*-
"""
Tests for L{ctdb.daemon.statistics} and the counters it and the daemon keep:
traffic is driven through fake clusters (L{ctdb.testing}) and the counters
that STATISTICS, GET_DB_STATISTICS and GET_STAT_HISTORY answer are checked
to move by exactly the right amounts.
"""

from __future__ import annotations

import struct

from twisted.internet.task import Clock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from ctdb.daemon.core import Daemon
from ctdb.daemon.statistics import MAX_STAT_HISTORY, memoryUsed, processMemory
from ctdb.database.ltdb import LtdbHeader
from ctdb.protocols import packet as P
from ctdb.protocols import records as R
from ctdb.protocols.buckets import lockBucket
from ctdb.protocols.controls import Control
from ctdb.protocols.statistics import Statistics, decodeStatisticsList
from ctdb.testing import FakeClient, FakeCluster, connectedNodes
from tests.daemon.test_rejoin import keyWithLmaster

DB = "stats.tdb"


class _Cluster(SynchronousTestCase):
    """Three daemons with a volatile and a persistent database."""

    nodes = 3

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster: FakeCluster = connectedNodes(self.nodes, self.clock)
        self.addCleanup(self.cluster.stop)
        self.managers = [self.cluster.databases(d.pnn) for d in self.cluster]
        for m in self.managers:
            db = m.attach(DB, 0)
            pdb = m.attach("p.tdb", R.DB_FLAGS_PERSISTENT)
        self.db_id = db.db_id
        self.pdb_id = pdb.db_id

    def control(self, pnn: int, opcode: int, data: bytes = b"") -> P.ReplyControl:
        client = FakeClient(self.cluster[pnn])
        reqid = client.control(opcode, data)
        self.cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None, f"no reply to {opcode}"
        client.disconnect()
        return reply

    def statistics(self, pnn: int) -> Statistics:
        """STATISTICS, as ctdb statistics asks."""
        reply = self.control(pnn, Control.STATISTICS)
        self.assertEqual(reply.status, 0)
        return Statistics.decode(reply.data)

    def history(self, pnn: int) -> list[Statistics]:
        """GET_STAT_HISTORY, as ctdb stats asks."""
        reply = self.control(pnn, Control.GET_STAT_HISTORY)
        self.assertEqual(reply.status, 0)
        return decodeStatisticsList(reply.data)

    def dbStats(self, pnn: int, db_id: int | None = None) -> R.DbStatistics:
        return self.managers[pnn].byId[self.db_id if db_id is None else db_id].stats

    def call(self, pnn: int, key: bytes, reqid: int = 77) -> FakeClient:
        """A client's fetch-lock REQ_CALL on node C{pnn}."""
        client = self.cluster.client(pnn)
        hdr = P.Header(P.Operation.REQ_CALL, pnn, pnn, reqid)
        client.send(
            P.ReqCall(
                hdr,
                P.CTDB_IMMEDIATE_MIGRATION,
                self.db_id,
                P.CTDB_NULL_FUNC,
                0,
                key,
                b"",
            )
        )
        return client

    def replied(self, client: FakeClient, reqid: int = 77) -> bool:
        return any(
            isinstance(p, P.ReplyCall) and p.header.reqid == reqid
            for p in client.packets()
        )


class CallTests(_Cluster):
    """total_calls, pending_calls, call_latency and hop counts."""

    def test_remoteCall(self) -> None:
        """A client's call for a record whose dmaster is another node: one
        call, pending until answered, one latency sample; the dmaster counts
        the REQ_CALL's hops (0) globally and for the database."""
        key = keyWithLmaster(1)
        before = self.statistics(0)
        client = self.call(0, key)
        self.assertEqual(self.cluster[0].stats.calls["pending_calls"], 1)
        self.cluster.flush()
        self.assertTrue(self.replied(client))
        after = self.statistics(0)
        self.assertEqual(after.calls["total_calls"] - before.calls["total_calls"], 1)
        self.assertEqual(after.calls["pending_calls"], 0)
        self.assertEqual(after.call_latency.num - before.call_latency.num, 1)
        remote = self.statistics(1)
        self.assertEqual(remote.hop_count_bucket[0], 1)
        self.assertEqual(remote.calls["max_hop_count"], 0)
        self.assertEqual(self.dbStats(1).hop_count_bucket[0], 1)
        self.assertEqual(remote.calls["total_calls"], 0)

    def test_callLatency(self) -> None:
        """The latency runs from the call's start with its record locked to
        the answer: a dmaster whose record lock is held for the first 20 ms
        answers at its next retry, 1 ms later."""
        key = keyWithLmaster(1)
        store = self.managers[1].byId[self.db_id].store
        self.assertTrue(store.lockNonblock(key))
        client = self.call(0, key)
        self.cluster.flush()
        self.clock.advance(0.02)
        self.assertFalse(self.replied(client))
        store.unlock(key)
        self.cluster.advance(0.1, step=0.0005)
        self.assertTrue(self.replied(client))
        latency = self.cluster[0].stats.call_latency
        self.assertEqual(latency.num, 1)
        self.assertAlmostEqual(latency.max, 0.021, places=9)

    def test_localCalls(self) -> None:
        """N calls of records this node is dmaster of: N calls, N samples,
        none pending; no hop counted (no REQ_CALL went between nodes)."""
        key = keyWithLmaster(0)
        for i in range(5):
            self.call(0, key, reqid=i + 1)
        self.cluster.flush()
        stats = self.statistics(0)
        self.assertEqual(stats.calls["total_calls"], 5)
        self.assertEqual(stats.calls["pending_calls"], 0)
        self.assertEqual(stats.call_latency.num, 5)
        self.assertEqual(stats.counters["client.req_call"], 5)
        self.assertEqual(sum(stats.hop_count_bucket), 0)

    def test_unknownDatabase(self) -> None:
        """A call for an unknown database counts, and is not left pending
        (daemon_request_call_from_client)."""
        client = self.cluster.client(0)
        hdr = P.Header(P.Operation.REQ_CALL, 0, 0, 5)
        client.send(P.ReqCall(hdr, 0, 0xDEAD, P.CTDB_NULL_FUNC, 0, b"k", b""))
        self.cluster.flush()
        calls = self.cluster[0].stats.calls
        self.assertEqual((calls["total_calls"], calls["pending_calls"]), (1, 0))
        self.assertEqual(self.cluster[0].stats.call_latency.num, 0)

    def test_hopCount(self) -> None:
        """A REQ_CALL that took 5 hops to the dmaster: bucket 3 (4-7), and
        the largest hop count is 5, in the totals and the interval."""
        key = keyWithLmaster(1)
        manager = self.managers[1]
        db = manager.byId[self.db_id]
        manager.fetch(db, key)  # node 1, the lmaster, is dmaster
        d = self.cluster[1]
        hdr = P.Header(P.Operation.REQ_CALL, 1, 1, 9, d.vnnMap.generation)
        manager.requestCall(
            P.ReqCall(hdr, 0, self.db_id, P.CTDB_NULL_FUNC, 5, key, b"")
        )
        self.cluster.flush()
        stats = self.statistics(1)
        self.assertEqual(stats.hop_count_bucket[3], 1)
        self.assertEqual(stats.calls["max_hop_count"], 5)
        self.assertEqual(self.dbStats(1).hop_count_bucket[3], 1)
        self.assertEqual(d.statsKeeper.current().calls["max_hop_count"], 5)


class LockTests(_Cluster):
    """locks.* and the per-database lock counters."""

    def test_uncontendedNotCounted(self) -> None:
        """A record lock taken at once is not a lock wait (ctdbd only counts
        the locks its lock helper had to wait for)."""
        self.call(0, keyWithLmaster(0))
        self.cluster.flush()
        locks = self.statistics(0).locks
        self.assertEqual(locks["num_calls"], 0)
        self.assertEqual(self.dbStats(0).locks_num_calls, 0)

    def test_lockWait(self) -> None:
        """A call whose record a client holds locked: pending while it
        waits, then one lock call with its latency in bucket 2 (10-100
        ms), globally and for the database.  The lock is held for the first
        20 ms; the retry after that comes 1 ms later."""
        key = keyWithLmaster(0)
        store = self.managers[0].byId[self.db_id].store
        self.assertTrue(store.lockNonblock(key))
        client = self.call(0, key)
        self.clock.advance(0.02)
        waiting = self.statistics(0)
        self.assertEqual(waiting.locks["num_pending"], 1)
        self.assertEqual(self.dbStats(0).locks_num_pending, 1)
        self.assertEqual(waiting.locks["num_calls"], 0)
        # ctdbd's call "will retry later": counted, but not pending
        self.assertEqual(waiting.calls["total_calls"], 1)
        self.assertEqual(waiting.calls["pending_calls"], 0)
        store.unlock(key)
        self.cluster.advance(0.1, step=0.0005)
        self.assertTrue(self.replied(client))
        stats = self.statistics(0)
        self.assertEqual(stats.locks["num_pending"], 0)
        self.assertEqual(stats.locks["num_calls"], 1)
        self.assertEqual(stats.locks["num_failed"], 0)
        self.assertEqual(stats.locks_latency.num, 1)
        self.assertAlmostEqual(stats.locks_latency.total, 0.021, places=9)
        self.assertEqual(lockBucket(0.021), 2)
        self.assertEqual(stats.locks_buckets[2], 1)
        self.assertEqual(sum(stats.locks_buckets), 1)
        db = self.dbStats(0)
        self.assertEqual(
            (db.locks_num_calls, db.locks_num_pending, db.locks_num_failed), (1, 0, 0)
        )
        self.assertEqual(db.locks_latency[0], 1)
        self.assertAlmostEqual(db.locks_latency[3], 0.021, places=9)
        self.assertEqual(db.locks_buckets[2], 1)
        # run again from the start once locked, and counted again
        self.assertEqual(stats.calls["total_calls"], 2)
        self.assertEqual(stats.calls["pending_calls"], 0)
        self.assertEqual(stats.call_latency.num, 1)

    def test_resetDuringWait(self) -> None:
        """STATISTICS_RESET while a lock wait is under way: the wait stays
        pending, and its end counts one call after the reset."""
        key = keyWithLmaster(0)
        store = self.managers[0].byId[self.db_id].store
        self.assertTrue(store.lockNonblock(key))
        self.call(0, key)
        self.clock.advance(0.01)
        self.assertEqual(self.control(0, Control.STATISTICS_RESET).status, 0)
        self.assertEqual(self.statistics(0).locks["num_pending"], 1)
        self.assertEqual(self.dbStats(0).locks_num_pending, 1)
        store.unlock(key)
        self.cluster.advance(0.1, step=0.0005)
        locks = self.statistics(0).locks
        self.assertEqual((locks["num_pending"], locks["num_calls"]), (0, 1))
        self.assertEqual(self.dbStats(0).locks_num_calls, 1)

    def test_detachedDuringWait(self) -> None:
        """A lock wait whose database is detached meanwhile is abandoned:
        no longer pending, and not a lock call."""
        key = keyWithLmaster(0)
        manager = self.managers[0]
        db = manager.byId[self.db_id]
        self.assertTrue(db.store.lockNonblock(key))
        self.call(0, key)
        self.clock.advance(0.001)
        self.assertEqual(self.statistics(0).locks["num_pending"], 1)
        manager.detach(db)
        self.cluster.advance(0.1, step=0.0005)
        stats = self.statistics(0)
        self.assertEqual((stats.locks["num_pending"], stats.locks["num_calls"]), (0, 0))
        self.assertEqual(stats.calls["pending_calls"], 0)

    def test_lockWaitFailed(self) -> None:
        """A whole-file lock step still refused at ControlTimeout fails:
        one lock call, one failure, no latency sample; the write it was for
        (UPDATE_RECORD, our childwrite) is no longer pending and gives no
        sample either."""
        store = self.managers[0].byId[self.pdb_id].store
        self.assertTrue(store.lockNonblock(b"held"))
        payload = R.RecBuffer(
            self.pdb_id,
            (R.RecData(0, b"k", LtdbHeader(1, 0).encode() + b"v"),),
        ).encode()
        client = FakeClient(self.cluster[0])
        reqid = client.control(Control.UPDATE_RECORD, payload)
        self.cluster.flush()
        calls = self.cluster[0].stats.calls
        self.assertEqual(
            (calls["childwrite_calls"], calls["pending_childwrite_calls"]), (1, 1)
        )
        timeout = self.cluster[0].tunables.ControlTimeout
        self.cluster.advance(timeout + 1, step=0.05)
        reply = client.reply(reqid)
        assert reply is not None
        self.assertNotEqual(reply.status, 0)
        self.assertEqual(len(self.flushLoggedErrors(TimeoutError)), 1)
        stats = self.statistics(0)
        self.assertEqual(stats.locks["num_calls"], 1)
        self.assertEqual(stats.locks["num_failed"], 1)
        self.assertEqual(stats.locks["num_pending"], 0)
        self.assertEqual(stats.locks_latency.num, 0)
        self.assertEqual(self.dbStats(0, self.pdb_id).locks_num_failed, 1)
        self.assertEqual(stats.calls["pending_childwrite_calls"], 0)
        self.assertEqual(stats.childwrite_latency.num, 0)

    def test_recoveryTransactionHeld(self) -> None:
        """A database in a recovery transaction is held locked whole:
        locks.num_current is 1 until the commit."""
        reply = self.control(0, Control.DB_FREEZE, struct.pack("<I", self.db_id))
        self.assertEqual(reply.status, 0)
        reply = self.control(
            0, Control.DB_TRANSACTION_START, R.encodeTransDb(self.db_id, 7)
        )
        self.assertEqual(reply.status, 0)
        self.assertEqual(self.statistics(0).locks["num_current"], 1)
        self.assertEqual(self.dbStats(0).locks_num_current, 1)
        reply = self.control(
            0, Control.DB_TRANSACTION_COMMIT, R.encodeTransDb(self.db_id, 7)
        )
        self.assertEqual(reply.status, 0)
        self.assertEqual(self.statistics(0).locks["num_current"], 0)
        self.assertEqual(self.dbStats(0).locks_num_current, 0)


class ChildwriteTests(_Cluster):
    """childwrite_*: UPDATE_RECORD's write of a persistent database."""

    def test_updateRecord(self) -> None:
        """Each UPDATE_RECORD is one childwrite with one latency sample."""
        for rsn in (1, 2, 3):
            payload = R.RecBuffer(
                self.pdb_id,
                (R.RecData(0, b"k", LtdbHeader(rsn, 0).encode() + b"v%d" % rsn),),
            ).encode()
            self.assertEqual(self.control(0, Control.UPDATE_RECORD, payload).status, 0)
        stats = self.statistics(0)
        self.assertEqual(stats.calls["childwrite_calls"], 3)
        self.assertEqual(stats.calls["pending_childwrite_calls"], 0)
        self.assertEqual(stats.childwrite_latency.num, 3)


class StateTests(_Cluster):
    """frozen, memory_used, vacuum latency, reclock.recd, packets to self."""

    def test_frozen(self) -> None:
        """frozen is 1 while the node has frozen all its databases as
        inactive, 0 after the thaw; STATISTICS_RESET does not hide it."""
        self.assertEqual(self.statistics(0).counters["frozen"], 0)
        self.managers[0].becameInactive()
        self.assertEqual(self.statistics(0).counters["frozen"], 1)
        self.assertEqual(self.control(0, Control.STATISTICS_RESET).status, 0)
        self.assertEqual(self.statistics(0).counters["frozen"], 1)
        self.managers[0].recoveryModeNormal()
        self.assertEqual(self.statistics(0).counters["frozen"], 0)

    def test_memoryUsed(self) -> None:
        """memory_used is the process's resident size (within what moves
        between two reads)."""
        used = self.statistics(0).calls["memory_used"]
        rss = processMemory()["rss"]
        self.assertGreater(used, 1 << 20)
        self.assertLess(abs(used - rss), 64 << 20)
        self.assertGreater(memoryUsed(), 0)

    def test_vacuumLatency(self) -> None:
        """Each vacuum run is one sample of the database's vacuum latency."""
        for _ in range(2):
            reply = self.control(
                0, Control.DB_VACUUM, struct.pack("<IB", self.db_id, False)
            )
            self.assertEqual(reply.status, 0)
        self.assertEqual(self.dbStats(0).vacuum_latency[0], 2)
        reply = self.control(
            0, Control.GET_DB_STATISTICS, struct.pack("<I", self.db_id)
        )
        # after the lock counters (16 bytes), locks.latency (32), buckets (64)
        self.assertEqual(struct.unpack_from("<i", reply.data, 112)[0], 2)

    def test_reclockRecd(self) -> None:
        """RECD_RECLOCK_LATENCY adds its sample to reclock.recd."""
        self.control(0, Control.RECD_RECLOCK_LATENCY, struct.pack("<d", 0.25))
        self.control(0, Control.RECD_RECLOCK_LATENCY, struct.pack("<d", 0.75))
        recd = self.statistics(0).reclock_recd
        self.assertEqual(recd.fields(), (2, 0.25, 0.75, 1.0))

    def test_highLatencyLogged(self) -> None:
        """A latency sample above LogLatencyMs is logged (0: never), a
        cluster lock's above RecLockLatencyMs, as CTDB_UPDATE_LATENCY."""
        d = self.cluster[0]
        keeper = d.statsKeeper
        with capturedLogs() as events:
            keeper.callEnded(self.clock.seconds() - 5.0)
            keeper.reclockLatency("recd", 0.5)
        self.assertEqual(events, [])
        d.tunables.set("LogLatencyMs", 100)
        with capturedLogs() as events:
            keeper.callEnded(self.clock.seconds() - 0.05)
            keeper.callEnded(self.clock.seconds() - 0.25)
            keeper.reclockLatency("recd", 1.5)
        self.assertEqual(
            [formatEvent(e) for e in events],
            [
                "High latency 0.250000s for operation call",
                "High RECLOCK latency 1.500000s for operation recd reclock",
            ],
        )

    def test_packetToSelf(self) -> None:
        """A packet queued to this node counts as sent (ctdb_queue_packet),
        and in its node.* counter when it arrives, but not as received from
        a node."""
        d: Daemon = self.cluster[0]
        before = d.stats.copy()
        hdr = P.Header(P.Operation.REQ_MESSAGE, 0, 0, 0, d.vnnMap.generation)
        d.queuePacket(P.ReqMessage(hdr, 0x1234, b""))
        self.cluster.flush()
        counters = d.stats.counters
        self.assertEqual(
            counters["node_packets_sent"] - before.counters["node_packets_sent"], 1
        )
        self.assertEqual(
            counters["node.req_message"] - before.counters["node.req_message"], 1
        )
        self.assertEqual(
            counters["node_packets_recv"], before.counters["node_packets_recv"]
        )


class HistoryTests(_Cluster):
    """GET_STAT_HISTORY: ctdbd's rolling history of StatHistoryInterval
    snapshots."""

    nodes = 1

    def test_emptyAtStart(self) -> None:
        """Before the first interval ends, the history is 100 entries of
        zeros (which ctdb stats skips)."""
        history = self.history(0)
        self.assertEqual(len(history), MAX_STAT_HISTORY)
        self.assertEqual({h.statistics_start_time for h in history}, {0.0})

    def test_intervals(self) -> None:
        """Every interval (1 s) becomes a snapshot, newest first, each
        starting where the one before ended, with the counts of its own
        interval: 3 controls in the first second, 2 in the next."""
        keeper = self.cluster[0].statsKeeper
        start = self.clock.seconds()
        client = FakeClient(self.cluster[0])
        for _ in range(3):
            client.control(Control.PING)
        self.cluster.advance(1.0)
        for _ in range(2):
            client.control(Control.PING)
        self.cluster.advance(1.0)
        self.assertEqual(len(keeper.history), 2)
        newest, oldest = keeper.history
        self.assertEqual(oldest.counters["client.req_control"], 3)
        self.assertEqual(newest.counters["client.req_control"], 2)
        self.assertEqual(oldest.counters["client_packets_sent"], 3)
        self.assertEqual(oldest.statistics_start_time, start)
        self.assertEqual(oldest.statistics_current_time, start + 1)
        self.assertEqual(newest.statistics_start_time, start + 1)
        self.assertEqual(newest.statistics_current_time, start + 2)
        self.assertEqual(oldest.counters["num_clients"], 1)
        history = self.history(0)
        self.assertEqual(history[0].counters["client.req_control"], 2)
        self.assertEqual(history[1].counters["client.req_control"], 3)
        self.assertEqual(history[2].statistics_start_time, 0.0)
        totals = self.statistics(0)
        self.assertEqual(totals.counters["client.req_control"], 5 + 2)

    def test_latencyOfInterval(self) -> None:
        """An interval's latency counters are its own samples only."""
        keeper = self.cluster[0].statsKeeper
        keeper.reclockLatency("recd", 2.0)
        self.cluster.advance(1.0)
        keeper.reclockLatency("recd", 0.5)
        self.cluster.advance(1.0)
        newest, oldest = keeper.history
        self.assertEqual(oldest.reclock_recd.fields(), (1, 2.0, 2.0, 2.0))
        self.assertEqual(newest.reclock_recd.fields(), (1, 0.5, 0.5, 0.5))
        self.assertEqual(
            self.cluster[0].stats.reclock_recd.fields(), (2, 0.5, 2.0, 2.5)
        )

    def test_interval(self) -> None:
        """StatHistoryInterval is read for each interval."""
        self.cluster[0].tunables.set("StatHistoryInterval", 5)
        self.cluster.advance(1.0)  # the interval under way was 1 s
        keeper = self.cluster[0].statsKeeper
        self.assertEqual(len(keeper.history), 1)
        self.cluster.advance(4.0)
        self.assertEqual(len(keeper.history), 1)
        self.cluster.advance(1.0)
        self.assertEqual(len(keeper.history), 2)

    def test_atMostMaxHistory(self) -> None:
        """Only the newest 100 snapshots are kept."""
        self.cluster.advance(MAX_STAT_HISTORY + 20)
        history = self.history(0)
        self.assertEqual(len(history), MAX_STAT_HISTORY)
        now = self.clock.seconds()
        self.assertEqual(history[0].statistics_current_time, now)
        self.assertEqual(history[-1].statistics_start_time, now - MAX_STAT_HISTORY)

    def test_resetKeepsInterval(self) -> None:
        """STATISTICS_RESET starts the totals again but not the interval
        under way: its snapshot still has what came before the reset."""
        client = FakeClient(self.cluster[0])
        for _ in range(4):
            client.control(Control.PING)
        client.control(Control.STATISTICS_RESET)
        client.control(Control.PING)
        self.cluster.advance(1.0)
        snapshot = self.cluster[0].statsKeeper.history[0]
        self.assertEqual(snapshot.counters["client.req_control"], 6)
        totals = self.cluster[0].stats
        self.assertEqual(totals.counters["client.req_control"], 1)

    def test_stopped(self) -> None:
        """A stopped daemon takes no more snapshots."""
        keeper = self.cluster[0].statsKeeper
        self.cluster.stop()
        self.cluster.advance(3.0)
        self.assertEqual(len(keeper.history), 0)
