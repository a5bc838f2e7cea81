# -*- test-case-name: tests.client.test_glock, tests.integration.test_client_api -*-
"""
Samba's global locks (C{g_lock}) on the volatile database C{g_lock.tdb}:
their holders (C{struct ctdb_server_id}, C{struct ctdb_g_lock}), and
taking and releasing one (C{ctdb_g_lock_lock}, C{ctdb_g_lock_unlock}).
Transactions take one, so they exclude Samba's tools and smbd too.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ctdb.client.concurrency import sleep
from ctdb.errors import TransactionError
from ctdb.protocols import controls as C
from ctdb.protocols.controls import Control

if TYPE_CHECKING:
    from ctdb.client.database import Database


#: The database holding Samba's global locks.
G_LOCK_DB = "g_lock.tdb"

G_LOCK_READ = 0
G_LOCK_WRITE = 1
_G_LOCK = struct.Struct(
    "<I4xQIIQ"
)  # type, pad, server_id {pid, task_id, vnn, unique_id}


@dataclass(frozen=True, slots=True)
class ServerId:
    """C{struct ctdb_server_id}: who holds a g_lock."""

    pid: int
    task_id: int
    vnn: int
    unique_id: int


@dataclass(frozen=True, slots=True)
class GLock:
    """C{struct ctdb_g_lock}: one holder of a global lock (32 bytes)."""

    type: int
    sid: ServerId

    def encode(self) -> bytes:
        s = self.sid
        return _G_LOCK.pack(self.type, s.pid, s.task_id, s.vnn, s.unique_id)

    @staticmethod
    def decodeList(data: bytes) -> list[GLock]:
        """C{ctdb_g_lock_list_pull}: as many whole entries as fit."""
        locks = []
        for off in range(0, len(data) - _G_LOCK.size + 1, _G_LOCK.size):
            kind, pid, taskId, vnn, unique = _G_LOCK.unpack_from(data, off)
            if kind not in (G_LOCK_READ, G_LOCK_WRITE):
                raise TransactionError(f"invalid g_lock type {kind}")
            locks.append(GLock(kind, ServerId(pid, taskId, vnn, unique)))
        return locks

    @staticmethod
    def encodeList(locks: list[GLock]) -> bytes:
        return b"".join(lock.encode() for lock in locks)


@dataclass(frozen=True, slots=True)
class _Taken:
    """A g_lock this process holds: when it took it, and the g_lock
    record's rsn then."""

    at: float
    rsn: int


#: the g_locks this process holds now, by (lock name, holder): an entry of
#: our own holder that is not here is stale (see L{gLockLock})
_held: dict[tuple[str, ServerId], _Taken] = {}

#: lock name -> the time (the client's reactor) before which this process
#: does not try to take that lock again (see L{gLockUnlock})
_yieldUntil: dict[str, float] = {}

#: the shortest and the longest time a process stays away from a lock it
#: held while another node waited for it.  The shortest must cover a
#: waiter's poll on a loaded machine (a migration of the record, a
#: PROCESS_EXISTS round trip, the retry's sleep); two waiters on other nodes
#: race for the same gap.  20 ms left a waiter starved for 30 s once in a
#: soak beside a CI run.
YIELD_MIN = 0.1
YIELD_MAX = 1.0


def _conflicts(a: int, b: int) -> bool:
    return not (a == G_LOCK_READ and b == G_LOCK_READ)


async def gLockLock(db: Database, name: str, sid: ServerId, lockType: int) -> None:
    """
    C{ctdb_g_lock_lock}: add C{sid} to the holders of lock C{name} (key =
    name + NUL) once no live holder conflicts.  A conflicting holder is
    checked with PROCESS_EXISTS on its node; a dead one is removed; a live
    one means unlock, wait (bounded back-off) and try again.

    An entry of C{sid} itself while this process does not hold the lock is
    stale and is dropped (Samba's client fails with EDEADLK on it, for
    ever): the record can come back older than its last unlock, when a
    recovery discards the copy of a node that left (banned, stopped or
    dead; its volatile records are not pulled) and takes an older copy
    from a node that had the record while we held the lock; or our unlock
    failed with its connection.  Every other waiter would find us alive and
    wait for an unlock that never comes.

    @raise TransactionError: C{sid} already holds the lock (EDEADLK), or
        it was not obtained within the client's C{lockTimeout}.
    """
    client = db.client
    key = name.encode() + b"\0"
    wait = _yieldUntil.pop(name, 0.0) - client.reactor.seconds()
    if wait > 0:
        # this process held the lock while another node waited for it
        await sleep(client.reactor, wait)
    deadline = client.reactor.seconds() + client.lockTimeout
    delay = 0.001
    while True:
        async with db.fetchLock(key) as record:
            locks = GLock.decodeList(record.data)
            busy = False
            i = 0
            while i < len(locks):
                lock = locks[i]
                if lock.sid == sid:
                    if (name, sid) in _held:
                        raise TransactionError(
                            f"g_lock_lock: {name} deadlock",
                        ) from OSError(errno.EDEADLK, os.strerror(errno.EDEADLK))
                    locks[i] = locks[-1]
                    locks.pop()
                    record.store(GLock.encodeList(locks))
                    continue
                if not _conflicts(lock.type, lockType):
                    i += 1
                    continue
                reply = await client.control(
                    Control.PROCESS_EXISTS,
                    C.encodeI32(lock.sid.pid & 0x7FFFFFFF),
                    destnode=lock.sid.vnn,
                )
                if reply.status == 0:
                    busy = True
                    break
                # the holder is gone: drop its entry
                locks[i] = locks[-1]
                locks.pop()
                record.store(GLock.encodeList(locks))
            if not busy:
                locks.append(GLock(lockType, sid))
                record.store(GLock.encodeList(locks))
                _held[name, sid] = _Taken(client.reactor.seconds(), record.header.rsn)
                return
        if client.reactor.seconds() > deadline:
            raise TransactionError(
                f"g_lock_lock: {name} still held after {client.lockTimeout} s"
            )
        await sleep(client.reactor, delay)
        # Samba retries every millisecond (ctdb_g_lock_lock_checked); a growing
        # back-off lets a busy holder on another node starve this waiter.
        delay = 0.001


async def gLockUnlock(db: Database, name: str, sid: ServerId) -> None:
    """
    C{ctdb_g_lock_unlock}: remove C{sid}; delete the record when empty.
    The lock counts as released also if this fails (an entry left behind
    is stale, and L{gLockLock} drops it).

    Fairness (not in Samba's client): waiters poll, so a process that
    takes the same lock again right after its unlock (a loop of
    transactions) wins every time and starves the waiters of other nodes,
    Samba's tools and smbd included.  A waiter's poll migrates the g_lock
    record to its node, and each migration raises the record's rsn; so if
    the rsn moved while we held the lock, another node waited, and this
    process stays away from the lock for as long as it held it (between
    L{YIELD_MIN} and L{YIELD_MAX} seconds) before taking it again.
    """
    key = name.encode() + b"\0"
    client = db.client
    try:
        async with db.fetchLock(key) as record:
            taken = _held.get((name, sid))
            if taken is not None and record.header.rsn != taken.rsn:
                now = client.reactor.seconds()
                held = min(max(now - taken.at, YIELD_MIN), YIELD_MAX)
                _yieldUntil[name] = now + held
            locks = [lock for lock in GLock.decodeList(record.data) if lock.sid != sid]
            if locks:
                record.store(GLock.encodeList(locks))
            else:
                await record.delete()
    finally:
        _held.pop((name, sid), None)
