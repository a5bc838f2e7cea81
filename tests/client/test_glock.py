# -*- test-case-name: tests.client.test_glock -*-
"""
Unit tests of L{ctdb.client.glock} on a fake database and client: a
g_lock entry of our own that this process does not hold (an older copy of
the record came back in a recovery) is dropped, one it holds is EDEADLK.
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
class FakeRecord:
    """The locked record: its data, stored and deleted in place."""

    records: dict[bytes, bytes]
    key: bytes

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

    @asynccontextmanager
    async def fetchLock(self, key: bytes) -> AsyncIterator[FakeRecord]:
        yield FakeRecord(self.records, key)


class GLockTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.client = FakeClient(alive={ME.pid, OTHER.pid})
        self.db = FakeDatabase(self.client)
        self.addCleanup(glock._held.clear)

    def holders(self) -> list[GLock]:
        return GLock.decodeList(self.db.records.get(KEY, b""))

    def lock(self, sid: ServerId = ME, kind: int = G_LOCK_WRITE) -> defer.Deferred:
        return defer.ensureDeferred(gLockLock(self.db, NAME, sid, kind))  # type: ignore[arg-type]

    def unlock(self, sid: ServerId = ME) -> defer.Deferred:
        return defer.ensureDeferred(gLockUnlock(self.db, NAME, sid))  # type: ignore[arg-type]

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
            yield FakeRecord(self.db.records, key)  # pragma: no cover

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
