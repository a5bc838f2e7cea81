# -*- test-case-name: tests.integration.test_client_api -*-
"""
The high-level Python client API of ctdbd, on Twisted: attach clustered
databases, lock, read and write records, run transactions on persistent
databases, traverse a database cluster-wide, and exchange messages.

It works against our daemon and against Samba's ctdbd 4.17 alike, because
it does what Samba's own client library does (``ctdb/client/client_db.c``):
the record data lives in the node's local TDB file, which the client opens
itself; the daemon only migrates records and commits transactions.

Example (run it with C{python example.py /path/to/ctdbd.socket})::

    import sys
    from twisted.internet import defer, task
    from ctdb.client import connect

    async def main(reactor, socketPath):
        client = await connect(reactor, socketPath)
        print("connected to node", client.pnn)

        # A volatile database: lock a record (migrating it to this node),
        # then read and change it while holding the lock.
        db = await client.attach("example.tdb")
        async with db.fetchLock(b"counter") as record:
            count = int(record.data or b"0")
            record.store(b"%d" % (count + 1))
        print("counter is now", (await db.fetch(b"counter")).decode())

        # A persistent database: an atomic cluster-wide transaction.
        pdb = await client.attach("example_persistent.tdb", persistent=True)
        async with pdb.transaction() as txn:
            await txn.store(b"greeting", b"hello")
        print("greeting:", await pdb.fetch(b"greeting"))

        # Every record of the database, from every node.
        for key, header, data in await db.traverse():
            print(key, "dmaster", header.dmaster, data)
        await client.close()

    task.react(lambda reactor: defer.ensureDeferred(main(reactor, sys.argv[1])))

Locking rules, as in Samba's client:

 - L{Database.fetchLock} holds the record's TDB chain lock until the
   L{RecordLock} is released; nothing else (another client, the daemon) can
   touch records of that hash chain meanwhile, so hold it briefly.  The lock
   is never waited for in the reactor thread: it is tried without blocking
   and retried with a bounded back-off.
 - fcntl locks belong to the process, so this module also serialises
   fetch-locks of the same key (and transactions on the same database)
   between coroutines of one process.
 - L{Database.transaction} takes Samba's C{g_lock} on the key
   C{"transaction_db_0x%08x"} in the volatile C{g_lock.tdb} database, so it
   excludes Samba tools (C{ctdb ptrans}/C{pstore}) and smbd too.
"""

from __future__ import annotations

import errno
import itertools
import os
import struct
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from twisted.internet import defer, task
from twisted.logger import Logger

from ctdb.database.ltdb import CTDB_REC_RO_HAVE_DELEGATIONS, LtdbHeader, splitValue
from ctdb.database.tdb import TDB, TDB_REPLACE
from ctdb.errors import (
    ClientError,
    ControlFailed,
    CTDBError,
    FetchLockError,
    TransactionError,
)
from ctdb.interfaces import ICTDBReactor
from ctdb.protocols import controls as C
from ctdb.protocols import records as R
from ctdb.protocols.client import ClientConnection, MessageHandler, connectClient
from ctdb.protocols.controls import Control
from ctdb.protocols.packet import (
    CTDB_CURRENT_NODE,
    CTDB_IMMEDIATE_MIGRATION,
    CTDB_NULL_FUNC,
    CTDB_UNKNOWN_PNN,
    ReplyCall,
    ReplyControl,
)
from ctdb.protocols.srvids import CTDB_SRVID_CLIENT_RANGE

__all__ = [
    "CTDB_SRVID_CLIENT_RANGE",
    "DB_SEQNUM_KEY",
    "CTDBClient",
    "ClientError",
    "ControlFailed",
    "Database",
    "FetchLockError",
    "RecordLock",
    "ServerId",
    "Transaction",
    "TransactionError",
    "connect",
]

_log = Logger()

#: The key of a persistent database's sequence number record; the key
#: includes the trailing NUL (C{strlen(CTDB_DB_SEQNUM_KEY) + 1}).
DB_SEQNUM_KEY = b"__db_sequence_number__\0"
#: The database holding Samba's global locks.
G_LOCK_DB = "g_lock.tdb"

G_LOCK_READ = 0
G_LOCK_WRITE = 1
_G_LOCK = struct.Struct(
    "<I4xQIIQ"
)  # type, pad, server_id {pid, task_id, vnn, unique_id}

#: Back-off between non-blocking chain lock attempts (seconds).
_LOCK_RETRY_FIRST = 0.0002
_LOCK_RETRY_MAX = 0.02

T = TypeVar("T")


def _sleep(reactor: ICTDBReactor, seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


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


class _KeyLocks:
    """In-process mutual exclusion per key (fcntl locks are per process)."""

    def __init__(self) -> None:
        self._waiting: dict[bytes, list[defer.Deferred[None]]] = {}

    def acquire(self, key: bytes) -> defer.Deferred[None]:
        queue = self._waiting.get(key)
        if queue is None:
            self._waiting[key] = []
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred(lambda d: queue.remove(d))
        queue.append(d)
        return d

    def release(self, key: bytes) -> None:
        queue = self._waiting.get(key)
        if queue is None:
            return
        if queue:
            queue.pop(0).callback(None)
        else:
            del self._waiting[key]


class _AwaitableContext(Generic[T]):
    """
    The result of L{Database.fetchLock} and L{Database.transaction}: await
    it for the object, or use it directly as an async context manager.
    """

    def __init__(
        self,
        make: Callable[[], Awaitable[T]],
        exit: Callable[[T, BaseException | None], Awaitable[None]],
    ) -> None:
        self._make = make
        self._exit = exit
        self._value: T | None = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._make().__await__()

    async def __aenter__(self) -> T:
        self._value = await self._make()
        return self._value

    async def __aexit__(
        self,
        excType: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        value, self._value = self._value, None
        if value is not None:
            await self._exit(value, exc)


class RecordLock:
    """
    A locked record of a volatile database, of which this node is the
    data master (C{ctdb_record_handle}).  Release it with L{release}, or use
    C{async with db.fetchLock(key) as record:}.

    @ivar key: the record's key.
    @ivar header: its L{LtdbHeader} (dmaster is this node).
    @ivar data: its value (C{b""} for a new or deleted record).
    """

    def __init__(
        self, db: Database, key: bytes, header: LtdbHeader, data: bytes
    ) -> None:
        self.db = db
        self.key = key
        self.header = header
        self.data = data
        self._held = True

    def __repr__(self) -> str:
        state = "held" if self._held else "released"
        return f"<RecordLock {self.db.name} {self.key!r} {state}>"

    @property
    def held(self) -> bool:
        """Whether the lock is still held."""
        return self._held

    def _check(self) -> None:
        if not self._held:
            raise ClientError(f"record {self.key!r} of {self.db.name} is not locked")

    def store(self, value: bytes) -> None:
        """
        Replace the record's value in the local TDB, header unchanged
        (C{ctdb_store_record}); a value equal to the current one is not
        written.
        """
        self._check()
        value = bytes(value)
        if value == self.data:
            return
        self.db.tdb.storev(self.key, [self.header.encode(), value], TDB_REPLACE)
        self.data = value

    async def delete(self) -> None:
        """
        Delete the record (C{ctdb_delete_record}): store a header-only
        record, then ask the daemon to SCHEDULE_FOR_DELETION (vacuuming).
        """
        self._check()
        self.db.tdb.store(self.key, self.header.encode(), TDB_REPLACE)
        self.data = b""
        payload = R.encodeKeyData(self.db.db_id, self.header.encode(), self.key)
        client = self.db.client
        await client.controlOk(
            Control.SCHEDULE_FOR_DELETION, payload, destnode=client.pnn
        )

    def release(self) -> None:
        """Unlock the record.  Releasing twice is harmless."""
        if not self._held:
            return
        self._held = False
        try:
            if not self.db.tdb.closed:
                self.db.tdb.chainUnlock(self.key)
        finally:
            self.db._keyLocks.release(self.key)

    async def __aenter__(self) -> RecordLock:  # noqa: PYI034
        return self

    async def __aexit__(
        self,
        excType: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class Transaction:
    """
    A transaction on a persistent or replicated database
    (C{ctdb_transaction_handle}).  Reads see the local copy plus this
    transaction's own changes; L{commit} sends every change to all nodes
    in one TRANS3_COMMIT and bumps the database's sequence number.

    Use C{async with db.transaction() as txn:} (committed when the block
    ends, cancelled if it raises), or C{txn = await db.transaction()} and
    then L{commit} or L{cancel}.
    """

    def __init__(self, db: Database, readonly: bool) -> None:
        self.db = db
        self.readonly = readonly
        self.updated = False
        self.sid = db.client.serverId(db.db_id)
        self.lockName = f"transaction_db_0x{db.db_id:08x}"
        # key -> (header, data), in insertion order: the rec_buffer
        self._records: dict[bytes, tuple[LtdbHeader, bytes]] = {}
        self._open = False
        self._gLockDb: Database | None = None

    def _check(self) -> None:
        if not self._open:
            raise TransactionError(f"transaction on {self.db.name} is not open")

    async def _start(self) -> Transaction:
        db = self.db
        await db._transactionLock.acquire()
        try:
            self._gLockDb = await db.client.attach(G_LOCK_DB)
            await gLockLock(
                self._gLockDb,
                self.lockName,
                self.sid,
                G_LOCK_READ if self.readonly else G_LOCK_WRITE,
            )
        except BaseException:
            db._transactionLock.release()
            raise
        self._open = True
        return self

    async def fetch(self, key: bytes) -> bytes | None:
        """
        @return: the value of C{key} as this transaction sees it, or
            C{None} if there is no such record (or it is empty).
        """
        self._check()
        key = bytes(key)
        entry = self._records.get(key)
        if entry is None:
            entry = await self.db._readLocalNonblocking(key)
            # As ctdb_transaction_fetch_record: reads join the rec_buffer.
            self._records[key] = entry
        return entry[1] or None

    async def store(self, key: bytes, value: bytes) -> None:
        """
        Set C{key} to C{value} in this transaction (C{rsn} + 1, dmaster =
        this node).  Storing the value a record already has changes nothing.
        """
        self._check()
        if self.readonly:
            raise TransactionError("store in a read-only transaction")
        key, value = bytes(key), bytes(value)
        entry = self._records.get(key)
        if entry is None:
            entry = await self.db._readLocalNonblocking(key)
        header, old = entry
        if old == value:
            return
        new = LtdbHeader(
            header.rsn + 1, self.db.client.pnn, header.reserved1, header.flags
        )
        self._records.pop(key, None)
        self._records[key] = (new, value)
        self.updated = True

    async def delete(self, key: bytes) -> None:
        """Delete C{key} in this transaction (an empty value, as Samba)."""
        await self.store(key, b"")

    async def commit(self) -> None:
        """
        Commit (C{ctdb_transaction_commit}): add the sequence number
        record (old + 1), send TRANS3_COMMIT to the local node, and on
        failure re-read the sequence number: unchanged means retry, old + 1
        means it was committed after all, anything else is an error.  Then
        release the g_lock.  A read-only or unchanged transaction just
        cancels.

        @raise TransactionError: the commit failed.
        """
        self._check()
        if self.readonly or not self.updated:
            await self.cancel()
            return
        db = self.db
        client = db.client
        try:
            seqnum = db._readSeqnum(*(await db._readLocalNonblocking(DB_SEQNUM_KEY)))
            await self.store(DB_SEQNUM_KEY, struct.pack("<Q", seqnum + 1))
            payload = R.RecBuffer(
                db.db_id,
                tuple(
                    R.RecData(0, k, h.encode() + v)
                    for k, (h, v) in self._records.items()
                ),
            ).encode()
            for attempt in itertools.count():
                reply = await client.control(
                    Control.TRANS3_COMMIT, payload, destnode=client.pnn
                )
                now = db._readSeqnum(*(await db._readLocalNonblocking(DB_SEQNUM_KEY)))
                if reply.status == 0 and now == seqnum + 1:
                    break
                if reply.status == 0:
                    raise TransactionError(
                        f"{db.name}: seqnum {now} after commit, expected {seqnum + 1}"
                    )
                if now == seqnum + 1:
                    break  # committed, the reply notwithstanding (recovery)
                if now != seqnum:
                    raise TransactionError(
                        f"{db.name}: seqnum mismatch 0x{now:x} != 0x{seqnum:x} + 1"
                    )
                if attempt >= client.commitRetries:
                    raise TransactionError(
                        f"{db.name}: TRANS3_COMMIT failed {attempt + 1} times: "
                        f"{reply.errmsg.decode(errors='replace')}"
                    )
                await _sleep(client.reactor, min(0.01 * (attempt + 1), 0.5))
        except BaseException:
            await self.cancel()
            raise
        await self._finish()

    async def cancel(self) -> None:
        """Discard the changes and release the g_lock."""
        if not self._open:
            return
        self._records.clear()
        await self._finish()

    async def _finish(self) -> None:
        self._open = False
        try:
            assert self._gLockDb is not None
            await gLockUnlock(self._gLockDb, self.lockName, self.sid)
        finally:
            self.db._transactionLock.release()

    async def _exit(self, exc: BaseException | None) -> None:
        if exc is None:
            await self.commit()
        else:
            await self.cancel()


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
        self._keyLocks = _KeyLocks()
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
            await _sleep(self.client.reactor, delay)
            delay = min(delay * 2, _LOCK_RETRY_MAX)

    # -- volatile records -------------------------------------------------------------

    def fetchLock(self, key: bytes) -> _AwaitableContext[RecordLock]:
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

        return _AwaitableContext(lambda: self._fetchLock(bytes(key)), exit)

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

    def transaction(self, readonly: bool = False) -> _AwaitableContext[Transaction]:
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

        return _AwaitableContext(lambda: Transaction(self, readonly)._start(), exit)

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


class CTDBClient:
    """
    A connection to one ctdbd (ours or Samba's) and the databases attached
    through it.  Get one with L{connect}.

    @ivar connection: the underlying L{ClientConnection}.
    @ivar lockTimeout: bound (seconds) on one fetch-lock or g_lock.
    @ivar commitRetries: TRANS3_COMMIT retries while recovery refuses it.
    """

    def __init__(self, connection: ClientConnection, *, reactor: ICTDBReactor) -> None:
        self.connection = connection
        self.reactor = reactor
        self.lockTimeout = 60.0
        self.commitRetries = 100
        self._dbs: dict[str, Database] = {}
        self._srvids = itertools.count(1)

    @property
    def pnn(self) -> int:
        """This node's PNN (from the GET_PNN handshake)."""
        return self.connection.pnn

    def serverId(self, taskId: int) -> ServerId:
        """C{ctdb_client_get_server_id}: {pid, task_id, vnn, task_id << 32 | pid}."""
        pid = os.getpid()
        return ServerId(pid, taskId, self.pnn, ((taskId << 32) | pid) & (2**64 - 1))

    # -- controls and messages ---------------------------------------------------------

    def control(
        self,
        opcode: int,
        data: bytes = b"",
        *,
        destnode: int = CTDB_CURRENT_NODE,
        srvid: int = 0,
        flags: int = 0,
        timeout: float | None = None,
    ) -> defer.Deferred[ReplyControl]:
        """
        Send any control; fires with the L{ReplyControl} (C{status},
        C{data}, C{errmsg}) whatever its status.
        """
        return self.connection.control(
            opcode, data, destnode=destnode, srvid=srvid, flags=flags, timeout=timeout
        )

    async def controlOk(
        self,
        opcode: int,
        data: bytes = b"",
        *,
        destnode: int = CTDB_CURRENT_NODE,
        srvid: int = 0,
        flags: int = 0,
        timeout: float | None = None,
    ) -> bytes:
        """Send a control; return its data, or raise L{ControlFailed}."""
        return await self.connection.controlOk(
            opcode, data, destnode=destnode, srvid=srvid, flags=flags, timeout=timeout
        )

    async def registerSrvid(self, srvid: int, handler: MessageHandler) -> None:
        """Call C{handler(srvid, data)} for each message sent to C{srvid} here."""
        await self.connection.registerSrvid(srvid, handler)

    async def deregisterSrvid(
        self, srvid: int, handler: MessageHandler | None = None
    ) -> None:
        """Remove C{handler} (or all handlers) of C{srvid}."""
        await self.connection.deregisterSrvid(srvid, handler)

    def sendMessage(self, pnn: int, srvid: int, data: bytes = b"") -> None:
        """Send a message to the clients registered for C{srvid} on node C{pnn}."""
        self.connection.sendMessage(pnn, srvid, data)

    def _newTraverseSrvid(self) -> int:
        seq = next(self._srvids) & 0xFFFFFF
        return CTDB_SRVID_CLIENT_RANGE | (seq << 32) | (os.getpid() & 0xFFFFFFFF)

    # -- databases ----------------------------------------------------------------------

    async def attach(
        self, name: str, persistent: bool = False, replicated: bool = False
    ) -> Database:
        """
        Attach a database (C{ctdb_attach}): DB_ATTACH / _PERSISTENT /
        _REPLICATED, GETDBPATH, DB_GET_HEALTH (an unhealthy database is
        refused), DB_OPEN_FLAGS, then open the local TDB with those flags.
        Attaching a name again returns the same L{Database}.

        @raise ControlFailed: the daemon refused.
        @raise ClientError: the database is unhealthy.
        """
        if persistent and replicated:
            raise ValueError("a database is persistent or replicated, not both")
        db = self._dbs.get(name)
        if db is not None:
            return db
        if persistent:
            opcode, flags = Control.DB_ATTACH_PERSISTENT, R.DB_FLAGS_PERSISTENT
        elif replicated:
            opcode, flags = Control.DB_ATTACH_REPLICATED, R.DB_FLAGS_REPLICATED
        else:
            opcode, flags = Control.DB_ATTACH, 0
        local = self.pnn
        db_id = C.decodeU32(
            await self.controlOk(opcode, C.encodeString(name), destnode=local)
        )
        path = C.decodeString(
            await self.controlOk(Control.GETDBPATH, C.encodeU32(db_id), destnode=local)
        )
        health = await self.controlOk(
            Control.DB_GET_HEALTH, C.encodeU32(db_id), destnode=local
        )
        reason = health.rstrip(b"\0").decode(errors="replace")
        if reason:
            raise ClientError(f"attach: {name} database unhealthy ({reason})")
        tdbFlags = C.decodeI32(
            await self.controlOk(
                Control.DB_OPEN_FLAGS, C.encodeU32(db_id), destnode=local
            )
        )
        db = self._dbs.get(name)  # a concurrent attach may have finished first
        if db is None:
            db = self._dbs[name] = Database(self, name, db_id, flags, path, tdbFlags)
        return db

    def databases(self) -> list[Database]:
        """The databases attached through this client."""
        return list(self._dbs.values())

    async def close(self) -> None:
        """Close every database file and the connection."""
        for db in list(self._dbs.values()):
            db.close()
        conn = self.connection
        if not conn.closed.called:
            conn.close()
            await conn.closed


async def connect(
    reactor: ICTDBReactor, socketPath: str, *, timeout: float = 60.0
) -> CTDBClient:
    """
    Connect to the ctdbd listening on the unix socket C{socketPath}.

    @param timeout: per-request timeout of the connection (seconds).
    """
    conn = await connectClient(reactor, socketPath, timeout=timeout)
    return CTDBClient(conn, reactor=reactor)


# -- g_lock (Samba's global locks on g_lock.tdb) ----------------------------------


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
        await _sleep(client.reactor, delay)
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
