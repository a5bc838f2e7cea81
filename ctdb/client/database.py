# -*- test-case-name: tests.integration.test_client_api -*-
"""
An attached database (C{ctdb_db_context}): reads of the local TDB file,
fetch-locks of volatile records (migrating them here), transactions of
persistent ones, and cluster-wide traverses.
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet import defer

from ctdb.client.concurrency import AwaitableContext, KeyLocks, sleep
from ctdb.client.recordlock import RecordLock
from ctdb.client.transaction import Transaction
from ctdb.database.ltdb import CTDB_REC_RO_HAVE_DELEGATIONS, LtdbHeader, splitValue
from ctdb.database.tdb import TDB
from ctdb.errors import CTDBError, FetchLockError, TransactionError
from ctdb.protocols import controls as C
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control
from ctdb.protocols.packet import (
    CTDB_CURRENT_NODE,
    CTDB_IMMEDIATE_MIGRATION,
    CTDB_NULL_FUNC,
    CTDB_UNKNOWN_PNN,
    ReplyCall,
)

if TYPE_CHECKING:
    from ctdb.client.connection import CTDBClient


#: Back-off between non-blocking chain lock attempts (seconds).
_LOCK_RETRY_FIRST = 0.0002
_LOCK_RETRY_MAX = 0.02


class Database(R.DbKind):
    """
    An attached database (C{ctdb_db_context}).  Get one from
    L{CTDBClient.attach}.

    @ivar name: the database name.
    @ivar db_id: its id (hash of the name with its NUL).
    @ivar flags: C{CTDB_DB_FLAGS_*} it was attached with.
    @ivar path: the local TDB file.
    @ivar tdbFlags: the open flags from DB_OPEN_FLAGS.
    @ivar tdb: the local L{TDB}.
    """

    def __init__(
        self,
        client: CTDBClient,
        name: str,
        db_id: int,
        flags: int,
        path: str,
        tdbFlags: int,
    ) -> None:
        self.client = client
        self.name = name
        self.db_id = db_id
        self.flags = flags
        self.path = path
        self.tdbFlags = tdbFlags
        self.tdb = TDB(path, 0, tdbFlags, os.O_RDWR, 0)
        self._keyLocks = KeyLocks()
        self._transactionLock = defer.DeferredLock()

    def __repr__(self) -> str:
        return f"<Database {self.name} 0x{self.db_id:08x} flags 0x{self.flags:x}>"

    # -- local reads ---------------------------------------------------------------

    def _readLocal(self, key: bytes) -> tuple[LtdbHeader, bytes]:
        """
        C{ctdb_ltdb_fetch}: the local record, or an empty one with dmaster
        CTDB_UNKNOWN_PNN.  (tdb_fetch takes the chain read lock briefly.)
        """
        header, data = splitValue(self.tdb.fetch(key))
        if header is None:
            return LtdbHeader(0, CTDB_UNKNOWN_PNN), b""
        return header, data

    async def _readLocalNonblocking(self, key: bytes) -> tuple[LtdbHeader, bytes]:
        """L{_readLocal} under a chain read lock taken without blocking."""
        await self._chainLock(key, self.tdb.chainLockReadNonblock)
        try:
            return self._readLocal(key)
        finally:
            self.tdb.chainUnlockRead(key)

    @staticmethod
    def _readSeqnum(header: LtdbHeader, data: bytes) -> int:
        if not data:
            return 0
        if len(data) != 8:
            raise TransactionError(f"bad sequence number record of {len(data)} bytes")
        return int(struct.unpack("<Q", data)[0])

    async def _chainLock(self, key: bytes, tryLock: Callable[[bytes], bool]) -> None:
        delay = _LOCK_RETRY_FIRST
        deadline = self.client.reactor.seconds() + self.client.lockTimeout
        while not tryLock(key):
            if self.client.reactor.seconds() > deadline:
                raise FetchLockError(
                    f"chain lock of {key!r} in {self.name}: timed out after "
                    f"{self.client.lockTimeout} s"
                )
            await sleep(self.client.reactor, delay)
            delay = min(delay * 2, _LOCK_RETRY_MAX)

    # -- volatile records -------------------------------------------------------------

    def fetchLock(self, key: bytes) -> AwaitableContext[RecordLock]:
        """
        Lock a record of a volatile database, migrating it to this node
        (C{ctdb_fetch_lock}): take the chain lock without blocking; if this
        node is not the record's dmaster (or it has read-only delegations),
        unlock and send REQ_CALL {IMMEDIATE_MIGRATION, CTDB_NULL_FUNC}, then
        try again.

        Use as C{async with db.fetchLock(key) as record:} or
        C{record = await db.fetchLock(key)} (then C{record.release()}).

        @raise FetchLockError: the database is not volatile, a migration
            failed or the lock was not obtained within the client's
            C{lockTimeout}.
        """

        async def exit(lock: RecordLock, exc: BaseException | None) -> None:
            lock.release()

        return AwaitableContext(lambda: self._fetchLock(bytes(key)), exit)

    async def _fetchLock(self, key: bytes) -> RecordLock:
        if not self.volatile:
            raise FetchLockError(f"fetch_lock: {self.name} database not volatile")
        if not key:
            raise FetchLockError("fetch_lock: empty key")
        client = self.client
        await self._keyLocks.acquire(key)
        try:
            deadline = client.reactor.seconds() + client.lockTimeout
            for migrations in itertools.count():
                await self._chainLock(key, self.tdb.chainLockNonblock)
                try:
                    header, data = splitValue(self.tdb.fetch(key))
                except BaseException:
                    self.tdb.chainUnlock(key)
                    raise
                if (
                    header is not None
                    and header.dmaster == client.pnn
                    and not header.flags & CTDB_REC_RO_HAVE_DELEGATIONS
                ):
                    return RecordLock(self, key, header, data)
                self.tdb.chainUnlock(key)
                if client.reactor.seconds() > deadline:
                    raise FetchLockError(
                        f"fetch_lock: {key!r} of {self.name} not migrated to node "
                        f"{client.pnn} after {migrations} calls"
                    )
                reply = await client.connection.call(
                    self.db_id,
                    key,
                    callid=CTDB_NULL_FUNC,
                    flags=CTDB_IMMEDIATE_MIGRATION,
                    destnode=CTDB_CURRENT_NODE,
                )
                if not isinstance(reply, ReplyCall) or reply.status != 0:
                    raise FetchLockError(
                        f"fetch_lock: {self.name} CALL failed: {reply!r}"
                    )
        except BaseException:
            self._keyLocks.release(key)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def fetch(self, key: bytes) -> bytes | None:
        """
        Read a record.  Volatile: fetch-lock it here, read, release.
        Persistent/replicated: read the local copy.

        @return: the value, or C{None} if the record is absent or empty.
        """
        if self.volatile:
            async with self.fetchLock(key) as record:
                return record.data or None
        _, data = await self._readLocalNonblocking(bytes(key))
        return data or None

    async def store(self, key: bytes, value: bytes) -> None:
        """
        Write one record: under a fetch-lock (volatile) or in a transaction
        of its own (persistent/replicated).
        """
        if self.volatile:
            async with self.fetchLock(key) as record:
                record.store(value)
            return
        async with self.transaction() as txn:
            await txn.store(key, value)

    async def delete(self, key: bytes) -> None:
        """Delete one record (fetch-lock and delete, or a transaction)."""
        if self.volatile:
            async with self.fetchLock(key) as record:
                await record.delete()
            return
        async with self.transaction() as txn:
            await txn.delete(key)

    # -- persistent transactions ----------------------------------------------------

    def transaction(self, readonly: bool = False) -> AwaitableContext[Transaction]:
        """
        Start a transaction on a persistent or replicated database
        (C{ctdb_transaction_start}: g_lock on C{transaction_db_0x<db_id>} in
        g_lock.tdb).  Transactions of one process on one database run one
        after another.

        @raise TransactionError: the database is volatile.
        """
        if self.volatile:
            raise TransactionError(f"transaction on volatile database {self.name}")

        async def exit(txn: Transaction, exc: BaseException | None) -> None:
            await txn._exit(exc)

        return AwaitableContext(lambda: Transaction(self, readonly)._start(), exit)

    async def seqnum(self) -> int:
        """The database sequence number (GET_DB_SEQNUM on the local node)."""
        data = await self.client.controlOk(
            Control.GET_DB_SEQNUM, struct.pack("<I4x", self.db_id)
        )
        return C.decodeU64(data)

    # -- traverse --------------------------------------------------------------------

    async def traverse(
        self,
        callback: Callable[[bytes, LtdbHeader, bytes], object] | None = None,
        *,
        withEmpty: bool = False,
        timeout: float = 120.0,
    ) -> list[tuple[bytes, LtdbHeader, bytes]]:
        """
        Every record of the database on every node (C{ctdb_db_traverse}:
        REGISTER_SRVID on a 0xBE client-range srvid, TRAVERSE_START_EXT to
        the local node, one rec_data message per record until an empty one).
        Records with no data are skipped, as in Samba.

        @param callback: called as C{callback(key, header, data)} for each
            record; a true return value stops collecting.
        @return: the C{(key, header, data)} tuples seen (empty when a
            callback is given).
        """
        client = self.client
        srvid = client._newTraverseSrvid()
        records: list[tuple[bytes, LtdbHeader, bytes]] = []
        done: defer.Deferred[None] = defer.Deferred()
        failure: list[BaseException] = []

        def onMessage(sid: int, payload: bytes) -> None:
            if done.called:
                return
            try:
                rec, _ = R.RecData.decode(payload)
            except CTDBError:
                return
            if not rec.key and not rec.data:
                done.callback(None)
                return
            header, data = splitValue(rec.data)
            if header is None:
                return
            if not data and not withEmpty:
                return
            if callback is None:
                records.append((rec.key, header, data))
                return
            try:
                stop = callback(rec.key, header, data)
            except Exception as e:  # noqa: BLE001 - re-raised by traverse()
                failure.append(e)
                stop = True
            if stop:
                done.callback(None)

        await client.registerSrvid(srvid, onMessage)
        try:
            start = R.TraverseStartExt(self.db_id, 0, srvid, withEmpty)
            await client.controlOk(
                Control.TRAVERSE_START_EXT, start.encode(), destnode=client.pnn
            )
            done.addTimeout(timeout, client.reactor)
            await done
        finally:
            await client.deregisterSrvid(srvid, onMessage)
        if failure:
            raise failure[0]
        return records

    def localRecords(self) -> list[tuple[bytes, LtdbHeader, bytes]]:
        """The records of the local TDB file (C{ctdb_db_traverse_local})."""
        out = []
        for key, value in self.tdb.traverse():
            header, data = splitValue(value)
            if header is not None:
                out.append((key, header, data))
        return out

    def close(self) -> None:
        """Close the local TDB (the client forgets this database)."""
        self.client._dbs.pop(self.name, None)
        self.tdb.close()
