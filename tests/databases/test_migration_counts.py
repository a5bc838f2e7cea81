# -*- test-case-name: tests.databases.test_migration_counts -*-
"""
Tests for the cost of L{ctdb.databases.migration.RecordMigration}'s
bookkeeping, counted in operations rather than time: the per-key migration
counters (migratedb) are forgotten from the old end in amortised O(1), and
a client's fetch of a new key works out each key's lmaster once per packet.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from ctdb.databases.model import Database
from tests.databases.test_manager import _ClusterMixin, keyWithLmaster


class _CountingCounters(OrderedDict[bytes, tuple[int, float]]):
    """Migration counters that count the entries any whole-mapping
    operation (iteration, views, copies) may visit."""

    visited = 0

    def __iter__(self) -> Iterator[bytes]:
        for key in super().__iter__():
            self.visited += 1
            yield key

    def items(self) -> Any:
        self.visited += len(self)
        return super().items()

    def keys(self) -> Any:
        self.visited += len(self)
        return super().keys()

    def values(self) -> Any:
        self.visited += len(self)
        return super().values()

    def copy(self) -> _CountingCounters:
        self.visited += len(self)
        return _CountingCounters(super().copy())


class MigrationCounterTests(_ClusterMixin, SynchronousTestCase):
    """RecordMigration._noteMigration does bounded work per migration."""

    def setUp(self) -> None:
        self.buildCluster(1)
        self.attach("vol")
        self.manager = self.managers[0]
        self.db: Database = self.manager.byName["vol"]
        self.counters = _CountingCounters()
        self.db.migrations = self.counters

    def work(self) -> int:
        """Entries visited so far; a mapping the counters were moved to
        counts all its entries (building it visited them)."""
        if self.db.migrations is not self.counters:
            return self.counters.visited + len(self.db.migrations)
        return self.counters.visited

    def note(self, key: bytes) -> int:
        """Note a migration of C{key}; return the entries it visited."""
        before = self.work()
        self.manager._noteMigration(self.db, key)
        return self.work() - before

    def test_distinctKeysFrozenClock(self) -> None:
        """Above 10,000 migrations of distinct keys within one second (the
        clock does not move), each one visits at most one counter: it used
        to rebuild the whole mapping every time, quadratic."""
        worst = 0
        for i in range(12_000):
            worst = max(worst, self.note(b"k%d" % i))
            if worst > 1:
                self.fail(f"migration {i} visited {worst} counters")
        self.assertEqual(len(self.db.migrations), 12_000)
        self.assertEqual(self.db.migrations[b"k0"], (1, 0.0))

    def test_expiredForgottenAmortised(self) -> None:
        """With the clock moving, expired counters are forgotten as they
        age out, each at most once: the work over all migrations is linear
        and only the live window is kept."""
        calls = 0
        total = 0
        for _ in range(20):
            for i in range(1_000):
                total += self.note(b"k%d" % (calls + i))
            calls += 1_000
            self.clock.advance(0.5)
        # every counter visited when it is dropped, plus one look per call
        self.assertLessEqual(total, 2 * calls)
        # only the last two half-second rounds are in the window
        self.assertLessEqual(len(self.db.migrations), 2_000)
        self.clock.advance(1.0)
        self.note(b"last")
        self.assertEqual(list(self.db.migrations), [b"last"])

    def test_windowCountsAndRestarts(self) -> None:
        """A key's count grows within its one-second window, and starts
        again at 1 (moved behind younger windows) once it has expired."""
        self.note(b"a")
        self.clock.advance(0.4)
        self.note(b"b")
        self.note(b"a")
        self.assertEqual(self.db.migrations[b"a"], (2, 0.0))
        self.assertEqual(list(self.db.migrations), [b"a", b"b"])
        self.clock.advance(0.7)
        self.note(b"a")
        self.assertEqual(self.db.migrations[b"a"], (1, 1.1))
        self.assertEqual(list(self.db.migrations), [b"b", b"a"])
        self.clock.advance(0.35)
        self.note(b"a")
        self.assertEqual(list(self.db.migrations.items()), [(b"a", (2, 1.1))])
        self.assertEqual(self.db.stats.hot_keys, [(1, b"b"), (2, b"a")])


class LmasterPerPacketTests(_ClusterMixin, SynchronousTestCase):
    """The record path works out a key's lmaster once per packet and
    writes a record once per hop."""

    def counting(
        self, original: Callable[[bytes], int], counts: list[int], pnn: int
    ) -> Callable[[bytes], int]:
        def lmaster(key: bytes) -> int:
            counts[pnn] += 1
            return original(key)

        return lmaster

    def countingStore(
        self, original: Callable[[bytes, bytes], None], counts: list[int], pnn: int
    ) -> Callable[[bytes, bytes], None]:
        def store(key: bytes, value: bytes) -> None:
            counts[pnn] += 1
            original(key, value)

        return store

    def test_fetchOfNewKey(self) -> None:
        """A client's fetch of a new key whose lmaster is another node:
        one lmaster on that node (REQ_CALL), two on the client's node (its
        fetch, REPLY_DMASTER), and the record migrated as before."""
        self.buildCluster(2)
        db_id = self.attach("vol")
        key = keyWithLmaster(1, nodes=2)
        counts = [0, 0]
        for pnn, manager in enumerate(self.managers):
            manager.lmaster = self.counting(  # type: ignore[method-assign, assignment]
                manager.lmaster, counts, pnn
            )
        writes = [0, 0]
        for pnn, manager in enumerate(self.managers):
            store = manager.byName["vol"].store
            store.store = self.countingStore(  # type: ignore[method-assign, assignment]
                store.store, writes, pnn
            )
        client = self.call(0, db_id, key)
        self.cluster.flush()
        reply = self.replyOf(client)
        assert reply is not None
        self.assertEqual(reply.status, 0)
        self.assertEqual(counts, [2, 1])
        h0 = self.header(0, "vol", key)
        h1 = self.header(1, "vol", key)
        assert h0 is not None and h1 is not None
        self.assertEqual((h0[0].dmaster, h0[0].rsn), (0, 3))
        self.assertEqual((h1[0].dmaster, h1[0].rsn), (0, 1))
        # ctdbd stores twice on each node (the lmaster: its new record, then
        # the record handed on; the new dmaster: the record, then after the
        # call); each first store is replaced under the same lock, so one
        # write each, with the deletion queues as two stores leave them
        self.assertEqual(writes, [1, 1])
        queued = self.managers[0].byName["vol"].deleteQueue
        self.assertEqual(list(queued.items()), [(key, h0[0])])
        self.assertEqual(self.managers[1].byName["vol"].deleteQueue, {})
