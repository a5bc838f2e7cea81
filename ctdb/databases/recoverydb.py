# -*- test-case-name: tests.recovery.test_procedure -*-
"""
The recovery side of databases (ctdb_recover.c, ctdb_freeze.c): freeze and
thaw, the recovery transaction, wipe, DB_PULL of a node's records and
DB_PUSH of the merged ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from ctdb.database.ltdb import (
    CTDB_REC_RO_FLAGS,
    LTDB_HEADER_SIZE,
    splitValue,
    withoutFlags,
)
from ctdb.databases.base import STEP_RECORDS, RecordStorage
from ctdb.databases.model import (
    Database,
)
from ctdb.errors import MalformedPacket
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols import records as R

if TYPE_CHECKING:
    from ctdb.daemon.core import ControlResult


class RecoveryDatabases(RecordStorage):
    """What a recovery does to this node's databases."""

    # -- freeze, transactions, wipe, push (restoredb / wipedb / recovery) --------

    def control_DB_FREEZE(self, req: P.ReqControl, client: object) -> ControlResult:
        self._db(req).frozen = True
        return (0, b"", b"")

    def invalidateRecords(self) -> None:
        """db_invalidate, as the node becomes inactive (stopped or banned):
        until the next thaw a recovery pulls none of its volatile records,
        which may be stale (a record deleted meanwhile must not come back)."""
        for db in self.byId.values():
            db.frozen = True
            db.generation = P.INVALID_GENERATION
            if db.volatile:
                db.invalidRecords = True

    def control_DB_THAW(self, req: P.ReqControl, client: object) -> ControlResult:
        db = self._db(req)
        if db.transactionId is not None:
            db.store.transactionCancel()
            db.transactionId = None
            self.noteDatabaseLocks()
        db.frozen = False
        db.invalidRecords = False
        return (0, b"", b"")

    def control_DB_TRANSACTION_START(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        db_id, tid = R.decodeTransDb(req.data)
        db = self.byId[db_id]
        if not db.frozen:
            return (-1, b"", b"transaction start on a database that is not frozen")
        if db.transactionId is not None:
            db.store.transactionCancel()
            db.transactionId = None
            self.noteDatabaseLocks()

        def started() -> ControlResult:
            db.transactionId = tid
            self.noteDatabaseLocks()
            return (0, b"", b"")

        return self.whenUnlocked(
            db, db.store.transactionStartNonblock, started, "transaction start"
        )

    def control_DB_TRANSACTION_COMMIT(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        db_id, tid = R.decodeTransDb(req.data)
        db = self.byId[db_id]
        if db.transactionId != tid:
            return (-1, b"", b"transaction id mismatch")
        db.store.transactionCommit()
        db.transactionId = None
        # db_transaction_commit: this copy now belongs to the recovery's
        # generation (its transaction id)
        db.generation = tid
        self.noteDatabaseLocks()
        return (0, b"", b"")

    def control_DB_TRANSACTION_CANCEL(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        db = self._db(req)
        if db.transactionId is not None:
            db.store.transactionCancel()
            db.transactionId = None
            self.noteDatabaseLocks()
        return (0, b"", b"")

    def control_WIPE_DATABASE(self, req: P.ReqControl, client: object) -> ControlResult:
        db_id, tid = R.decodeTransDb(req.data)
        db = self.byId[db_id]
        if not db.frozen or db.transactionId != tid:
            return (-1, b"", b"wipe needs a frozen database in a transaction")
        db.store.wipe()
        return (0, b"", b"")

    def control_DB_PUSH_START(self, req: P.ReqControl, client: object) -> ControlResult:
        db_id, _lmaster, srvid = R.decodePulldbExt(req.data)
        db = self.byId[db_id]
        if not db.frozen or db.transactionId is None:
            return (-1, b"", b"push needs a frozen database in a transaction")
        if db.pushSrvid is not None:
            self.daemon.internalHandlers.get(db.pushSrvid, []).clear()
        db.pushSrvid = srvid
        db.pushRecords = 0

        def onBuffer(srvid: int, data: bytes) -> None:
            try:
                _db_id, items = R.decodeRecBufferItems(data)
            except MalformedPacket as e:
                self.log.warn("bad push buffer: {err}", err=str(e))
                return
            # As db_push_msg_handler, the buffer's own db_id is not
            # checked: Samba's restoredb sends the buffers of a backup
            # file as they are.
            for _reqid, key, value in items:
                self._storeRecovered(db, key, value)
            db.pushRecords += len(items)

        self.daemon.internalHandlers[srvid] = [onBuffer]
        return (0, b"", b"")

    def _storeRecovered(self, db: Database, key: bytes, value: bytes) -> None:
        if len(value) < LTDB_HEADER_SIZE:
            return
        # Strip the read-only flags: a recovery (or a restore) revokes
        # every delegation implicitly (db_push_msg_handler).
        value = withoutFlags(value, CTDB_REC_RO_FLAGS)
        if db.volatile:
            # db_push_msg_handler stores through ctdb_ltdb_store_server: the
            # node the record now names as dmaster (the leader) bumps its
            # rsn, so its copy beats the other nodes' equal-rsn copies at the
            # next recovery even after its clients changed it in place.
            header, data = splitValue(value)
            assert header is not None  # long enough, checked above
            self.storeRecord(db, key, header, data)
            return
        db.store.store(key, value)

    def control_DB_PUSH_CONFIRM(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        db = self._db(req)
        if db.pushSrvid is None:
            return (-1, b"", b"no push in progress")
        self.daemon.internalHandlers.pop(db.pushSrvid, None)
        db.pushSrvid = None
        return (0, C.encodeU32(db.pushRecords), b"")

    def control_DB_PULL(self, req: P.ReqControl, client: object) -> Any:
        db_id, _lmaster, srvid = R.decodePulldbExt(req.data)
        db = self.byId[db_id]
        if db.invalidRecords:
            return self._pulled(db, req, srvid, [])
        if db.transactionId is not None:
            # A recovery's pull: nobody else can write inside its
            # transaction, so the file is read in steps, the event loop
            # getting a turn between two (heartbeats go on being sent
            # while a large database is read).
            return defer.Deferred.fromCoroutine(
                self._sendPulled(db, req, srvid, db.store.chunks(STEP_RECORDS))
            )
        items = self.readAll(db)
        if isinstance(items, defer.Deferred):
            return items.addCallback(lambda got: self._pulled(db, req, srvid, got))
        return self._pulled(db, req, srvid, items)

    def _pulled(
        self,
        db: Database,
        req: P.ReqControl,
        srvid: int,
        items: list[tuple[bytes, bytes]],
    ) -> Any:
        if len(items) <= STEP_RECORDS:
            chunks: Iterator[list[tuple[bytes, bytes]]] = iter([items])
        else:
            chunks = (
                items[i : i + STEP_RECORDS] for i in range(0, len(items), STEP_RECORDS)
            )
        sending = defer.Deferred.fromCoroutine(self._sendPulled(db, req, srvid, chunks))
        # A small pull finishes without waiting: answer at once then.
        done: list[ControlResult] = []
        sending.addCallback(done.append)
        return done[0] if done else sending

    async def _sendPulled(
        self,
        db: Database,
        req: P.ReqControl,
        srvid: int,
        chunks: Iterator[list[tuple[bytes, bytes]]],
    ) -> ControlResult:
        """Send the records of C{chunks} to the puller as rec_buffers of at
        most RecBufferSizeLimit bytes, ahead of the control's reply; the
        event loop gets a turn after every chunk but the last."""
        packer = R.RecBufferPacker(db.db_id, self.daemon.tunables.RecBufferSizeLimit)
        count = 0
        for n, chunk in enumerate(chunks):
            if n:
                await self.turn()
            for k, v in chunk:
                if len(v) < LTDB_HEADER_SIZE:
                    continue
                count += 1
                payload = packer.add(k, v)
                if payload is not None:
                    self.daemon.sendMessage(req.header.srcnode, srvid, payload)
        payload = packer.flush()
        if payload is not None:
            self.daemon.sendMessage(req.header.srcnode, srvid, payload)
        return (0, C.encodeU32(count), b"")
