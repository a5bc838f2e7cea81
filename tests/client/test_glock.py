# -*- test-case-name: tests.client.test_glock -*-
"""
Unit tests of L{ctdb.client.glock} on a fake database and client: a
g_lock entry of our own that this process does not hold (an older copy of
the record came back in a recovery) is dropped, one it holds is EDEADLK;
a holder that another node waited for stays away from the lock a while.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from ctdb.client import glock
from ctdb.client.glock import (
    G_LOCK_READ,
    G_LOCK_WRITE,
    GLock,
    ServerId,
    gLockLock,
    gLockUnlock,
)
from ctdb.errors import TransactionError

NAME = "transaction_db_0x12345678"
KEY = NAME.encode() + b"\0"
ME = ServerId(pid=100, task_id=0x12345678, vnn=0, unique_id=0x12345678 << 32 | 100)
OTHER = ServerId(pid=200, task_id=0x12345678, vnn=1, unique_id=0x12345678 << 32 | 200)


@dataclass
class Reply:
    status: int


@dataclass
class FakeHeader:
    rsn: int


@dataclass
class FakeRecord:
    """The locked record: its data, stored and deleted in place; its
    header's rsn (what each migration raises)."""

    records: dict[bytes, bytes]
    key: bytes
    header: FakeHeader

    @property
    def data(self) -> bytes:
        return self.records.get(self.key, b"")

    def store(self, value: bytes) -> None:
        self.records[self.key] = value

    async def delete(self) -> None:
        self.records.pop(self.key, None)


@dataclass
class FakeClient:
    """Answers PROCESS_EXISTS from C{alive} (the pids that exist)."""

    reactor: task.Clock = field(default_factory=task.Clock)
    lockTimeout: float = 10.0
    alive: set[int] = field(default_factory=set)
    asked: list[int] = field(default_factory=list)

    async def control(self, opcode: int, data: bytes, **kw: Any) -> Reply:
        pid = int.from_bytes(data, "little", signed=True)
        self.asked.append(pid)
        return Reply(status=0 if pid in self.alive else -1)


@dataclass
class FakeDatabase:
    client: FakeClient
    records: dict[bytes, bytes] = field(default_factory=dict)
    rsn: int = 1

    @asynccontextmanager
    async def fetchLock(self, key: bytes) -> AsyncIterator[FakeRecord]:
        yield FakeRecord(self.records, key, FakeHeader(self.rsn))


class GLockCase(SynchronousTestCase):
    """A fake g_lock database whose client's reactor is a clock."""

    def setUp(self) -> None:
        self.client = FakeClient(alive={ME.pid, OTHER.pid})
        self.db = FakeDatabase(self.client)
        self.addCleanup(glock._held.clear)
        self.addCleanup(glock._yieldUntil.clear)

    def holders(self) -> list[GLock]:
        return GLock.decodeList(self.db.records.get(KEY, b""))

    def lock(self, sid: ServerId = ME, kind: int = G_LOCK_WRITE) -> defer.Deferred:
        return defer.ensureDeferred(gLockLock(self.db, NAME, sid, kind))  # type: ignore[arg-type]

    def unlock(self, sid: ServerId = ME) -> defer.Deferred:
        return defer.ensureDeferred(gLockUnlock(self.db, NAME, sid))  # type: ignore[arg-type]


class GLockTests(GLockCase):
    """Taking and dropping entries: stale ones, our own, live others."""

    def test_staleOwnEntryDropped(self) -> None:
        """
        The record says we hold the lock but this process does not (the
        copy a recovery kept is older than our unlock): the entry is
        replaced by the new one, instead of EDEADLK for ever.
        """
        self.db.records[KEY] = GLock.encodeList(
            [GLock(G_LOCK_WRITE, ME), GLock(G_LOCK_READ, OTHER)]
        )
        self.successResultOf(self.lock(ME, G_LOCK_READ))
        self.assertEqual(
            self.holders(), [GLock(G_LOCK_READ, OTHER), GLock(G_LOCK_READ, ME)]
        )
        # our own entry needed no PROCESS_EXISTS; the reader does not conflict
        self.assertEqual(self.client.asked, [])

    def test_heldOwnEntryDeadlocks(self) -> None:
        """Taking a lock this process holds is EDEADLK, as in Samba."""
        self.successResultOf(self.lock())
        failure = self.failureResultOf(self.lock(), TransactionError)
        self.assertIn("deadlock", str(failure.value))
        self.assertEqual(self.holders(), [GLock(G_LOCK_WRITE, ME)])

    def test_unlockedThenRelocked(self) -> None:
        """After an unlock the lock can be taken again."""
        self.successResultOf(self.lock())
        self.successResultOf(self.unlock())
        self.assertNotIn(KEY, self.db.records)
        self.successResultOf(self.lock())
        self.assertEqual(self.holders(), [GLock(G_LOCK_WRITE, ME)])

    def test_failedUnlockLeavesStaleEntry(self) -> None:
        """
        An unlock that fails (its connection lost) still releases the lock
        in this process, so the entry it left is dropped at the next lock.
        """
        self.successResultOf(self.lock())

        @asynccontextmanager
        async def broken(key: bytes) -> AsyncIterator[FakeRecord]:
            raise ConnectionError("lost")
            yield FakeRecord(self.db.records, key, FakeHeader(0))  # pragma: no cover

        fetchLock = self.db.fetchLock
        self.db.fetchLock = broken  # type: ignore[method-assign]
        self.failureResultOf(self.unlock(), ConnectionError)
        self.db.fetchLock = fetchLock  # type: ignore[method-assign]
        self.assertEqual(self.holders(), [GLock(G_LOCK_WRITE, ME)])
        self.successResultOf(self.lock())
        self.assertEqual(self.holders(), [GLock(G_LOCK_WRITE, ME)])

    def test_liveOtherHolderWaits(self) -> None:
        """A live conflicting holder of another process still blocks."""
        self.db.records[KEY] = GLock.encodeList([GLock(G_LOCK_WRITE, OTHER)])
        d = self.lock()
        self.assertNoResult(d)
        self.assertEqual(self.client.asked, [OTHER.pid])
        self.client.alive.discard(OTHER.pid)
        self.client.reactor.advance(0.001)
        self.successResultOf(d)
        self.assertEqual(self.holders(), [GLock(G_LOCK_WRITE, ME)])


class FairnessTests(GLockCase):
    """A process that held a lock while another node polled for it (the
    record's rsn moved) does not take it again at once."""

    def relockAfter(self, held: float, migrations: int) -> defer.Deferred:
        """Lock, hold C{held} s while the record migrates C{migrations}
        times, unlock, and try to lock again (not yet awaited)."""
        self.successResultOf(self.lock())
        self.client.reactor.advance(held)
        self.db.rsn += migrations
        self.successResultOf(self.unlock())
        return self.lock()

    def test_uncontendedRelocksAtOnce(self) -> None:
        """Nobody else looked at the record: the next lock is immediate."""
        self.successResultOf(self.relockAfter(0.5, 0))

    def test_contendedYieldsAsLongAsHeld(self) -> None:
        """Another node migrated the record meanwhile: the next lock waits
        as long as the lock was held."""
        d = self.relockAfter(0.3, 2)
        self.client.reactor.advance(0.299)
        self.assertNoResult(d)
        self.client.reactor.advance(0.002)
        self.successResultOf(d)
        self.assertEqual(self.holders(), [GLock(G_LOCK_WRITE, ME)])

    def test_yieldBounded(self) -> None:
        """At least L{glock.YIELD_MIN}, at most L{glock.YIELD_MAX}."""
        for held, bound in ((0.0, glock.YIELD_MIN), (30.0, glock.YIELD_MAX)):
            d = self.relockAfter(held, 2)
            self.client.reactor.advance(bound - 0.001)
            self.assertNoResult(d)
            self.client.reactor.advance(0.002)
            self.successResultOf(d)
            self.successResultOf(self.unlock())

    def test_waiterTakesItMeanwhile(self) -> None:
        """While this process stays away, the waiter of the other node
        gets the lock; this process then waits for it as usual."""
        d = self.relockAfter(0.1, 2)
        self.db.records[KEY] = GLock.encodeList([GLock(G_LOCK_WRITE, OTHER)])
        self.client.reactor.advance(0.101)
        self.assertNoResult(d)
        self.assertEqual(self.client.asked, [OTHER.pid])
        self.db.records.pop(KEY)
        self.client.reactor.advance(0.001)
        self.successResultOf(d)
