# -*- test-case-name: tests.integration.test_client_api -*-
"""
Transactions on persistent and replicated databases
(C{ctdb_transaction_handle}): a g_lock, a record buffer of the changes,
and TRANS3_COMMIT with the sequence number record.
"""

from __future__ import annotations

import itertools
import secrets
import struct
from typing import TYPE_CHECKING

from ctdb.client.concurrency import sleep
from ctdb.client.glock import (
    G_LOCK_DB,
    G_LOCK_READ,
    G_LOCK_WRITE,
    gLockLock,
    gLockUnlock,
)
from ctdb.database.ltdb import LtdbHeader
from ctdb.errors import TransactionError
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control

if TYPE_CHECKING:
    from ctdb.client.database import Database


#: The key of a persistent database's sequence number record; the key
#: includes the trailing NUL (C{strlen(CTDB_DB_SEQNUM_KEY) + 1}).
DB_SEQNUM_KEY = b"__db_sequence_number__\0"


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
        record (old + 1, with a token of this commit in its header's
        reserved field), send TRANS3_COMMIT to the local node, and re-read
        the sequence number record: old + 1 with our token means committed
        (whatever the reply said), unchanged means retry, old + 1 with
        another token means another transaction committed instead (an
        error: this one is not committed), and more than old + 1 is an
        error too, though this commit may have landed before the others.
        Samba's client takes old + 1 for its own commit, which an
        overlapping transaction can fake.  Then release the g_lock.  A
        read-only or unchanged transaction just cancels.

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
            # This commit's token, in the reserved field of the sequence
            # number record's header: the daemon refuses a record that
            # does not raise the rsn unless it is the very same record,
            # so of two transactions that read the same sequence number
            # (they overlapped: the g_lock record lost its holder in a
            # recovery) one commits; and after a failed commit the token
            # tells ours from the other's.
            token = secrets.randbits(32) or 1
            header, value = self._records[DB_SEQNUM_KEY]
            self._records[DB_SEQNUM_KEY] = (
                LtdbHeader(header.rsn, header.dmaster, token, header.flags),
                value,
            )
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
                nowHeader, nowData = await db._readLocalNonblocking(DB_SEQNUM_KEY)
                now = db._readSeqnum(nowHeader, nowData)
                if now == seqnum + 1 and nowHeader.reserved1 == token:
                    break  # ours landed (a failed reply notwithstanding)
                if now == seqnum + 1:
                    raise TransactionError(
                        f"{db.name}: not committed: another transaction "
                        f"committed seqnum {now} (this one read {seqnum})"
                    )
                if now != seqnum:
                    # ours may have landed with others after it: only the
                    # records it wrote can tell
                    raise TransactionError(
                        f"{db.name}: not known whether committed: seqnum "
                        f"{now} (this one read {seqnum})"
                    )
                if reply.status == 0:
                    raise TransactionError(
                        f"{db.name}: seqnum {now} after commit, expected {seqnum + 1}"
                    )
                if attempt >= client.commitRetries:
                    raise TransactionError(
                        f"{db.name}: TRANS3_COMMIT failed {attempt + 1} times: "
                        f"{reply.errmsg.decode(errors='replace')}"
                    )
                await sleep(client.reactor, min(0.01 * (attempt + 1), 0.5))
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
