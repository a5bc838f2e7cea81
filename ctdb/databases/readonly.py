# -*- test-case-name: tests.databases.test_manager -*-
"""
Read-only delegations and sticky records (ctdb_call.c): SET_DB_READONLY
and the tracking database, handing out and revoking read-only copies of a
record, and hot records that stay on a node for StickyDuration.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet import defer

from ctdb.database.ltdb import (
    CTDB_REC_FLAG_MIGRATED_WITH_DATA,
    CTDB_REC_RO_FLAGS,
    CTDB_REC_RO_HAVE_DELEGATIONS,
    CTDB_REC_RO_HAVE_READONLY,
    CTDB_REC_RO_REVOKE_COMPLETE,
    CTDB_REC_RO_REVOKING_READONLY,
    LtdbHeader,
    ctdbHash,
    splitValue,
)
from ctdb.database.store import MemoryRecordStore, TdbRecordStore
from ctdb.database.tdb import (
    TDB_CLEAR_IF_FIRST,
    TDB_NOLOCK,
    TDB_NOSYNC,
)
from ctdb.databases.base import RecordStorage
from ctdb.databases.model import (
    Database,
    _Revoke,
    _StickyRecord,
    trackedPnns,
)
from ctdb.interfaces import (
    IRecordStore,
)
from ctdb.protocols import packet as P
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control

if TYPE_CHECKING:
    from ctdb.daemon.core import ControlResult


class ReadonlyRecords(RecordStorage):
    """Read-only delegations and sticky records of volatile databases."""

    def control_SET_DB_READONLY(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        self.setReadonly(self._db(req))
        return (0, b"", b"")

    def setReadonly(self, db: Database) -> None:
        """ctdb_set_db_readonly: open the tracking database C{<path>.RO}."""
        if db.readonly:
            return
        if not db.volatile:
            raise ValueError("Non-volatile databases do not support readonly flag")
        rotdb: IRecordStore
        if self.memory:
            rotdb = MemoryRecordStore()
        else:
            ropath = db.path + ".RO"
            if os.path.exists(ropath):
                os.unlink(ropath)
            rotdb = TdbRecordStore(
                ropath,
                hashSize=self.daemon.tunables.DatabaseHashSize,
                tdbFlags=TDB_NOLOCK | TDB_CLEAR_IF_FIRST | TDB_NOSYNC,
            )
            self.log.info("OPENED tracking database : '{path}'", path=ropath)
        db.rotdb = rotdb
        db.flags |= R.DB_FLAGS_READONLY
        self.log.info("Readonly property set on DB {db}", db=db.name)

    def control_SET_DB_STICKY(self, req: P.ReqControl, client: object) -> ControlResult:
        db = self._db(req)
        if db.isSticky:
            return (0, b"", b"")
        if not db.volatile:
            raise ValueError("Non-volatile databases do not support sticky flag")
        db.flags |= R.DB_FLAGS_STICKY
        self.log.info("set db sticky {db}", db=db.name)
        return (0, b"", b"")

    # -- read-only delegations (ctdb_call.c) ----------------------------------------

    def _revokeComplete(
        self, db: Database, key: bytes, header: LtdbHeader, data: bytes
    ) -> LtdbHeader:
        """A finished revoke leaves REVOKE_COMPLETE: the first request after
        it clears the read-only flags and the tracking record."""
        if not header.flags & CTDB_REC_RO_REVOKE_COMPLETE:
            return header
        self.daemon.stats.total_ro_revokes += 1
        db.stats.db_ro_revokes += 1
        header = self.storeRecord(
            db, key, header.withFlags(clear=CTDB_REC_RO_FLAGS), data
        )
        if db.rotdb is not None:
            db.rotdb.delete(key)
        return header

    def _deferForRevoke(
        self, db: Database, key: bytes, readonly: bool, again: Callable[[], object]
    ) -> None:
        """ctdb_add_revoke_deferred_call."""
        rev = db.revokes.get(key)
        if rev is None:
            # ctdbd dies here; we try again once the record has settled.
            self.log.error(
                "Failed to add deferred call to revoke list. revoke structure not found"
            )
            self.daemon.reactor.callLater(1.0, again)
            return
        rev.deferred.append((readonly, again))

    def _revoke(
        self, db: Database, key: bytes, header: LtdbHeader, data: bytes
    ) -> None:
        """Mark the record REVOKING_READONLY (we hold its lock) and start
        ctdb_start_revoke_ro_record once the lock is released."""
        self.storeRecord(
            db, key, header.withFlags(set=CTDB_REC_RO_REVOKING_READONLY), data
        )
        if key in db.revokes:
            return
        db.revokes[key] = _Revoke(key)
        self.daemon.reactor.callLater(0, self._startRevoke, db, key, header, data)

    def _startRevoke(
        self, db: Database, key: bytes, header: LtdbHeader, data: bytes
    ) -> None:
        """ctdb_start_revoke_ro_record + ctdb_revoke_all_delegations: every
        node holding a read-only copy gets the record (rsn one below ours,
        no read-only flags) by UPDATE_RECORD."""
        revHeader = LtdbHeader(
            header.rsn - 1,
            header.dmaster,
            0,
            (
                header.flags
                & ~(
                    CTDB_REC_RO_REVOKING_READONLY
                    | CTDB_REC_RO_HAVE_DELEGATIONS
                    | CTDB_REC_RO_HAVE_READONLY
                )
            )
            | CTDB_REC_FLAG_MIGRATED_WITH_DATA,
        )
        tracking = (db.rotdb.fetch(key) if db.rotdb is not None else None) or b""
        pnns = trackedPnns(tracking)
        payload = R.RecBuffer(
            db.db_id, (R.RecData(0, key, revHeader.encode() + data),)
        ).encode()
        waits = [
            self.daemon.sendControl(pnn, Control.UPDATE_RECORD, payload) for pnn in pnns
        ]

        def done(replies: list[P.ReplyControl]) -> None:
            status = 0
            for pnn, reply in zip(pnns, replies):
                if reply.status != 0:
                    self.log.error(
                        "Recv for revoke update record failed on node {pnn}: {msg}",
                        pnn=pnn,
                        msg=reply.errmsg.decode(errors="replace"),
                    )
                    status = -1
            if db.db_id not in self.byId:
                return
            self.withLock(
                db, key, lambda: self._finishRevoke(db, key, revHeader, status)
            )

        defer.gatherResults(waits).addCallback(done)

    def _finishRevoke(
        self, db: Database, key: bytes, revHeader: LtdbHeader, status: int
    ) -> None:
        """The end of ctdb_revoke_all_delegations, then revokechild_destructor:
        mark the record REVOKE_COMPLETE (or, on failure, no longer
        REVOKING) and requeue the deferred requests, writers first."""
        current, curdata = splitValue(db.store.fetch(key))
        want = CTDB_REC_RO_REVOKING_READONLY | CTDB_REC_RO_HAVE_DELEGATIONS
        if current is None:
            self.log.error("Failed for fetch tdb record in revokechild")
            status = -1
        elif current.rsn > revHeader.rsn + 1:
            self.log.error("RSN too high in tdb record in revokechild")
            status = -1
        elif current.flags & want != want:
            self.log.error("Flags are wrong in tdb record in revokechild")
            status = -1
        elif status == 0:
            self.storeRecord(
                db,
                key,
                LtdbHeader(
                    current.rsn + 1,
                    current.dmaster,
                    0,
                    current.flags | CTDB_REC_RO_REVOKE_COMPLETE,
                ),
                curdata,
            )
        else:
            self.log.info("Revoke all delegations failed, retrying.")
        if (
            status != 0
            and current is not None
            and current.flags & CTDB_REC_RO_REVOKING_READONLY
        ):
            # Never leave the record stuck in REVOKING: the next writer
            # starts a new revoke.
            self.storeRecord(
                db, key, current.withFlags(clear=CTDB_REC_RO_REVOKING_READONLY), curdata
            )
        rev = db.revokes.pop(key, None)
        if rev is None:
            return
        now = [fn for ro, fn in rev.deferred if status == 0 and not ro]
        later = [fn for ro, fn in rev.deferred if status != 0 or ro]
        reactor = self.daemon.reactor
        for fn in now:
            reactor.callLater(0, fn)
        for fn in later:
            reactor.callLater(1.0, fn)

    # -- sticky records (ctdb_call.c) ----------------------------------------------

    def _makeSticky(self, db: Database, key: bytes) -> None:
        """ctdb_make_record_sticky: a hot record stays for StickyDuration."""
        if key in db.sticky:
            return
        duration = self.daemon.tunables.StickyDuration
        self.log.info(
            "Make record sticky for {secs} seconds in db {db} key:0x{hash:08x}.",
            secs=duration,
            db=db.name,
            hash=ctdbHash(key),
        )
        sr = _StickyRecord()
        sr.expiry = self.daemon.reactor.callLater(duration, self._unstick, db, key, sr)
        db.sticky[key] = sr

    def _unstick(self, db: Database, key: bytes, sr: _StickyRecord) -> None:
        if db.sticky.get(key) is sr:
            del db.sticky[key]
        self._releasePindown(sr)

    def _setPindown(self, db: Database, key: bytes) -> None:
        """ctdb_set_sticky_pindown: we just became dmaster of a sticky
        record; keep it here for StickyPindown ms."""
        sr = db.sticky.get(key)
        if sr is None or sr.pindown is not None:
            return
        ms = self.daemon.tunables.StickyPindown
        self.log.info("Pinning down record in {db} for {ms} ms", db=db.name, ms=ms)
        sr.pindown = self.daemon.reactor.callLater(
            ms / 1000.0, self._releasePindown, sr
        )

    def _releasePindown(self, sr: _StickyRecord) -> None:
        """ctdb_sticky_pindown_timeout: requeue the deferred requests."""
        if sr.pindown is not None and sr.pindown.active():
            sr.pindown.cancel()
        sr.pindown = None
        deferred, sr.deferred = sr.deferred, []
        for fn in deferred:
            self.daemon.reactor.callLater(0, fn)

    def _deferPinnedDown(
        self, db: Database, key: bytes, again: Callable[[], object]
    ) -> bool:
        """ctdb_defer_pinned_down_request."""
        sr = db.sticky.get(key)
        if sr is None or sr.pindown is None:
            return False
        sr.deferred.append(again)
        return True

    def _dropSticky(self, db: Database) -> None:
        for sr in db.sticky.values():
            if sr.expiry is not None and sr.expiry.active():
                sr.expiry.cancel()
            if sr.pindown is not None and sr.pindown.active():
                sr.pindown.cancel()
        db.sticky.clear()
