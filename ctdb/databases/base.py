# -*- test-case-name: tests.databases.test_manager -*-
"""
The shared ground of the databases subsystem: the state every part reads
and the primitives they share (the record storage rules of
ctdb_ltdb_store_server, the lmaster of a key, and record locking that never
blocks the reactor: a chain lock is tried, and retried a moment later when
a client holds it).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, task
from twisted.logger import Logger

from ctdb.database.ltdb import (
    CTDB_REC_FLAG_AUTOMATIC,
    CTDB_REC_FLAG_MIGRATED_WITH_DATA,
    CTDB_REC_FLAG_VACUUM_MIGRATED,
    CTDB_REC_RO_FLAGS,
    LTDB_HEADER_SIZE,
    LTDB_HEADER_STRUCT,
    LtdbHeader,
    ctdbHash,
)
from ctdb.databases.model import (
    _HASH_CACHE_SIZE,
    Database,
    _DeferredAttach,
    _PendingCall,
    _Trans3Commit,
    _Traverse,
)
from ctdb.interfaces import (
    IClientConnection,
)
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon


_packHeader = LTDB_HEADER_STRUCT.pack
_unpackHeader = LTDB_HEADER_STRUCT.unpack_from


#: records handled between two turns of the event loop in a recovery's pull
#: and push and in a traverse (some tens of milliseconds of work)
STEP_RECORDS = 5000


class RecordStorage:
    """The databases subsystem's state and record primitives (see
    L{ctdb.databases.manager.DatabaseManager})."""

    log = Logger()
    daemon: Daemon
    memory: bool
    byId: dict[int, Database]
    byName: dict[str, Database]
    _calls: dict[int, _PendingCall]
    _traverses: dict[int, _Traverse]
    _trans3: dict[int, _Trans3Commit]
    _hashes: dict[bytes, int]
    _deferredAttaches: list[_DeferredAttach]
    _afterUnlock: list[tuple[IClientConnection, P.Packet]] | None

    @property
    def pnn(self) -> int:
        return self.daemon.pnn

    def turn(self) -> defer.Deferred[None]:
        """A turn of the event loop for everything else, between two steps
        of work on many records (a recovery's pull and push, a traverse):
        the node must not hold its reactor for seconds, or its heartbeats
        stop and its peers declare it dead."""
        return task.deferLater(self.daemon.reactor, 0, lambda: None)

    def _db(self, req: P.ReqControl) -> Database:
        db_id = C.decodeU32(req.data, "db_id")
        db = self.byId.get(db_id)
        if db is None:
            raise KeyError(f"Unknown database 0x{db_id:08x}")
        return db

    # -- record storage rules ---------------------------------------------------

    def lmaster(self, key: bytes) -> int:
        vnn = self.daemon.vnnMap.map
        if not vnn:
            return self.pnn
        # A migration asks for the lmaster of the same key several times
        # and ctdbHash is a ctypes call: remember the hashes of recent keys.
        if type(key) is not bytes:
            return vnn[ctdbHash(bytes(key)) % len(vnn)]
        h = self._hashes.get(key)
        if h is None:
            if len(self._hashes) >= _HASH_CACHE_SIZE:
                self._hashes.clear()
            h = self._hashes[key] = ctdbHash(key)
        return vnn[h % len(vnn)]

    def fetch(
        self,
        db: Database,
        key: bytes,
        lmaster: int | None = None,
        write: bool = True,
    ) -> tuple[LtdbHeader, bytes]:
        """ctdb_ltdb_fetch: the record, or an initial header (stored if we
        are its lmaster or the db is persistent).  C{lmaster} is the key's
        lmaster when the caller has it already.  With C{write} false a
        volatile initial record is not written, only returned as it would
        have been stored: for a caller that stores the record again before
        it lets go of the lock (see L{storeFields})."""
        value = db.store.fetch(key)
        if value is not None and len(value) >= LTDB_HEADER_SIZE:
            rsn, dmaster, reserved1, flags = _unpackHeader(value)
            return LtdbHeader(rsn, dmaster, reserved1, flags), value[LTDB_HEADER_SIZE:]
        if lmaster is None:
            lmaster = self.lmaster(key)
        volatile = db.volatile
        if not volatile or lmaster == self.daemon.pnn:
            return self.storeFields(
                db,
                key,
                0,
                lmaster,
                0,
                CTDB_REC_FLAG_AUTOMATIC,
                b"",
                lmaster,
                write or not volatile,
            ), b""
        return LtdbHeader(0, lmaster, 0, CTDB_REC_FLAG_AUTOMATIC), b""

    def storeRecord(
        self,
        db: Database,
        key: bytes,
        header: LtdbHeader,
        data: bytes,
        lmaster: int | None = None,
    ) -> LtdbHeader:
        """ctdb_ltdb_store_server: the keep/delete and rsn rules; returns
        the header as stored.  C{lmaster} is the key's lmaster when the
        caller has it already (it is worked out only when the rules need it)."""
        return self.storeFields(
            db,
            key,
            header.rsn,
            header.dmaster,
            header.reserved1,
            header.flags,
            data,
            lmaster,
        )

    def storeFields(
        self,
        db: Database,
        key: bytes,
        rsn: int,
        dmaster: int,
        reserved1: int,
        flags: int,
        data: bytes,
        lmaster: int | None = None,
        write: bool = True,
    ) -> LtdbHeader:
        """L{storeRecord} of a header given as its fields: the record path
        builds one L{LtdbHeader} per store, the one returned.

        With C{write} false nothing is stored (nor scheduled for deletion):
        the header is only worked out, for a caller that stores the record
        again under the same lock and with a header that the rules keep
        (so that its store replaces this one's record and its deletion-queue
        entry).  The record protocol does so where ctdbd stores twice in a
        row (an lmaster's new record handed on at once; a new dmaster's
        record and the call run on it)."""
        pnn = self.daemon.pnn
        keep = False
        schedule = False
        if data or flags & CTDB_REC_RO_FLAGS:
            keep = True
        elif flags & CTDB_REC_FLAG_AUTOMATIC:
            keep = True
            schedule = True
        elif flags & CTDB_REC_FLAG_MIGRATED_WITH_DATA:
            keep = True
        elif pnn == (self.lmaster(key) if lmaster is None else lmaster):
            keep = not flags & CTDB_REC_FLAG_VACUUM_MIGRATED or pnn != dmaster
        elif pnn == dmaster:
            keep = True
        volatile = db.volatile
        if keep and volatile and pnn == dmaster and not flags & CTDB_REC_RO_FLAGS:
            rsn += 1
            if not data:
                schedule = True
        flags &= ~(CTDB_REC_FLAG_VACUUM_MIGRATED | CTDB_REC_FLAG_AUTOMATIC)
        # as ctdb_ltdb_store_server, the header as given (reserved1 too)
        stored = LtdbHeader(rsn, dmaster, reserved1, flags)
        if not write:
            return stored
        if keep:
            try:
                packed = _packHeader(rsn, dmaster, reserved1, flags)
            except struct.error as e:
                raise ValueError(f"bad ltdb header field: {e}") from None
            db.store.store(key, packed + data)
        else:
            db.store.delete(key)
        if volatile:
            # ctdb_local_schedule_for_deletion / remove_from_delete_queue
            if schedule:
                db.deleteQueue[key] = stored
            elif keep and db.deleteQueue:
                db.deleteQueue.pop(key, None)
        return stored

    # -- locking ----------------------------------------------------------------------

    def withLock(
        self,
        db: Database,
        key: bytes,
        fn: Callable[[], object],
        attempt: int = 0,
        waiting: float | None = None,
        onWait: Callable[[], object] | None = None,
    ) -> None:
        """Run C{fn} holding the record's chain lock; if a client holds it,
        try again shortly (the reactor never blocks on a record lock).
        Waiting for it is ctdbd's lock wait (ctdb_lock_record through its
        lock helper): C{waiting} is when the wait began, and the statistics
        count it as one lock call with its latency.  C{onWait} is called
        when a wait begins."""
        frozen = db.frozen and attempt < 1_000_000
        if frozen or not db.store.lockNonblock(key):
            if waiting is None:
                if onWait is not None:
                    onWait()
                waiting = self.daemon.statsKeeper.lockWaitStarted(db.stats)
            if frozen:
                self.daemon.reactor.callLater(
                    0.01, self.withLock, db, key, fn, attempt + 1, waiting
                )
            else:
                delay = min(0.0005 * (2 ** min(attempt, 6)), 0.05)
                self.daemon.reactor.callLater(
                    delay, self._relock, db, key, fn, attempt + 1, waiting
                )
            return
        if waiting is not None:
            # ctdbd counts only the locks that had to wait for its lock helper.
            self.daemon.statsKeeper.lockWaitEnded(db.stats, waiting, True)
        # A client answered under the lock would try the chain lock at once,
        # find it still held and back off: answer it after the unlock.
        outer = self._afterUnlock
        replies: list[tuple[IClientConnection, P.Packet]] = (
            [] if outer is None else outer
        )
        self._afterUnlock = replies
        try:
            fn()
        except Exception:  # noqa: BLE001 - a record operation must never crash the daemon
            self.log.failure("record operation on {db} failed", db=db.name)
        finally:
            db.store.unlock(key)
            self._afterUnlock = outer
            if outer is None:
                for client, pkt in replies:
                    self.daemon.sendToClient(client, pkt)

    def _relock(
        self,
        db: Database,
        key: bytes,
        fn: Callable[[], object],
        attempt: int,
        waiting: float | None,
    ) -> None:
        if db.db_id not in self.byId:
            self.daemon.statsKeeper.lockWaitAbandoned(db.stats)
            return
        self.withLock(db, key, fn, attempt, waiting)

    def noteDatabaseLocks(self) -> None:
        """locks.num_current, globally and per database: the databases whose
        file we hold locked as a whole, i.e. in a recovery transaction
        (ctdbd counts the lock helpers holding a lock, which a freeze keeps
        for the whole recovery; a record lock of ours is held for one
        synchronous step only, so it never shows)."""
        held = 0
        for db in self.byId.values():
            current = int(db.transactionId is not None)
            db.stats.locks_num_current = current
            held += current
        self.daemon.stats.locks["num_current"] = held

    def readAll(
        self, db: Database
    ) -> list[tuple[bytes, bytes]] | defer.Deferred[list[tuple[bytes, bytes]]]:
        """Every record of the local file, without ever waiting on a client's
        record lock: inside a transaction (recovery) nobody can write; else
        a whole-file read lock is tried and retried."""
        if db.transactionId is not None:
            return db.store.items()
        got: list[list[tuple[bytes, bytes]]] = []

        def attempt() -> bool:
            items = db.store.itemsNonblock()
            if items is None:
                return False
            got.append(items)
            return True

        return self.whenUnlocked(db, attempt, lambda: got[0], "read")

    def whenUnlocked(
        self,
        db: Database,
        attempt: Callable[[], bool],
        then: Callable[[], object],
        what: str,
    ) -> Any:
        """Run C{attempt} (a non-blocking lock step) until it succeeds, then
        return C{then()}; at once when possible, else as a Deferred that
        fails after ControlTimeout."""
        if attempt():
            return then()
        d: defer.Deferred[Any] = defer.Deferred()
        reactor = self.daemon.reactor
        deadline = reactor.seconds() + self.daemon.tunables.ControlTimeout
        keeper = self.daemon.statsKeeper
        waiting = keeper.lockWaitStarted(db.stats)

        def retry(delay: float) -> None:
            try:
                ok = attempt()
            except Exception as e:  # noqa: BLE001 - a record operation must never crash the daemon
                keeper.lockWaitEnded(db.stats, waiting, False)
                d.errback(e)
                return
            if ok:
                keeper.lockWaitEnded(db.stats, waiting, True)
                try:
                    d.callback(then())
                except Exception as e:  # noqa: BLE001 - a record operation must never crash the daemon
                    d.errback(e)
                return
            if reactor.seconds() > deadline:
                keeper.lockWaitEnded(db.stats, waiting, False)
                d.errback(
                    TimeoutError(f"{what} of {db.name}: record locks held too long")
                )
                return
            reactor.callLater(delay, retry, min(delay * 2, 0.05))

        reactor.callLater(0.001, retry, 0.002)
        return d

    # -- the call protocol ------------------------------------------------------------

    def _error(self, hdr: P.Header, msg: str) -> None:
        header = P.Header(
            P.Operation.REPLY_ERROR,
            hdr.srcnode,
            self.pnn,
            hdr.reqid,
            self.daemon.vnnMap.generation,
        )
        self.daemon.queuePacket(P.ReplyError(header, -1, msg.encode()))
