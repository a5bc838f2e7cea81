# -*- test-case-name: tests.integration.test_client_api -*-
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


def _conflicts(a: int, b: int) -> bool:
    return not (a == G_LOCK_READ and b == G_LOCK_READ)


async def gLockLock(db: Database, name: str, sid: ServerId, lockType: int) -> None:
    """
    C{ctdb_g_lock_lock}: add C{sid} to the holders of lock C{name} (key =
    name + NUL) once no live holder conflicts.  A conflicting holder is
    checked with PROCESS_EXISTS on its node; a dead one is removed; a live
    one means unlock, wait (bounded back-off) and try again.

    @raise TransactionError: C{sid} already holds the lock (EDEADLK), or
        it was not obtained within the client's C{lockTimeout}.
    """
    client = db.client
    key = name.encode() + b"\0"
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
                    raise TransactionError(
                        f"g_lock_lock: {name} deadlock",
                    ) from OSError(errno.EDEADLK, os.strerror(errno.EDEADLK))
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
    """C{ctdb_g_lock_unlock}: remove C{sid}; delete the record when empty."""
    key = name.encode() + b"\0"
    async with db.fetchLock(key) as record:
        locks = [lock for lock in GLock.decodeList(record.data) if lock.sid != sid]
        if locks:
            record.store(GLock.encodeList(locks))
        else:
            await record.delete()
