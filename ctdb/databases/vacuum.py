# -*- test-case-name: tests.databases.test_vacuum -*-
"""
Vacuuming of volatile databases (ctdb_vacuum.c, and TRY_DELETE_RECORDS from
ctdb_recover.c).

A deleted record of a volatile database stays in the database as an empty
record (a bare ltdb header) on every node that ever held a copy.  Vacuuming
removes such records cluster-wide without resurrecting them:

 - Records are I{scheduled for deletion}: by a client (SCHEDULE_FOR_DELETION,
   as Samba's C{ctdb deletekey} sends), and by the daemon itself whenever it
   stores an empty record it is dmaster of (L{DatabaseManager.storeRecord}).
   A record filled again leaves the queue.

 - A I{fast} run (every VacuumInterval seconds, or on the DB_VACUUM
   control) first migrates to us the records other nodes asked us, their
   lmaster, to fetch (VACUUM_FETCH, with CTDB_CALL_FLAG_VACUUM_MIGRATION);
   then walks the delete queue:

   - a record another node is now dmaster of, or one written since it was
     queued (other rsn), or one with data again, is skipped;
   - a record whose lmaster is another node is sent to that lmaster in one
     VACUUM_FETCH control per lmaster;
   - on its lmaster, a record never migrated with data is deleted at once;
     one migrated with data is offered to every other active node with
     TRY_DELETE_RECORDS, and deleted here only when no node refused.

 - A I{full} run (every VacuumFastPathCount'th run, or DB_VACUUM with the
   full flag) first adds every empty record we are dmaster of to the queue.

ctdbd vacuums in a child process; we run in the reactor and never wait on a
record lock: a record a client holds locked is skipped (ctdbd's child also
uses tdb_chainlock_nonblock), and the final local delete waits without
blocking (L{DatabaseManager.whenUnlocked}).  Only one run is active per
daemon (ctdb->vacuumer), runs stop when a recovery starts, and the tdb
file is not repacked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ctdb.database.ltdb import (
    CTDB_REC_FLAG_MIGRATED_WITH_DATA,
    CTDB_REC_RO_FLAGS,
    LTDB_HEADER_SIZE,
    LtdbHeader,
    splitValue,
)
from ctdb.errors import MalformedPacket, VacuumRefused
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control

if TYPE_CHECKING:
    from ctdb.daemon.core import ControlResult
    from ctdb.databases.manager import DatabaseManager
    from ctdb.databases.model import Database


@dataclass
class _Handle:
    """struct ctdb_vacuum_handle: the periodic vacuuming of one database."""

    db: Database
    interval: int
    fastPathCount: int = 0
    timer: IDelayedCall | None = None


@dataclass
class _DeleteRecord:
    """struct delete_record_data: a record on the delete list."""

    key: bytes
    header: LtdbHeader
    remoteFailCount: int = 0


@dataclass
class VacuumCounts:
    """The statistics of one run (struct vacuum_data's counters)."""

    queued: int = 0
    deletedLocally: int = 0
    skipped: int = 0
    errors: int = 0
    sentToLmaster: int = 0
    deleteList: int = 0
    deleted: int = 0
    remoteFailed: int = 0
    traversed: int = 0
    migrated: int = 0


@dataclass
class _Run:
    """One vacuuming run (ctdb_vacuum_child_context)."""

    db: Database
    full: bool
    scheduled: bool
    deleteQueue: dict[bytes, LtdbHeader]
    fetchQueue: list[bytes]
    counts: VacuumCounts = field(default_factory=VacuumCounts)
    fetchLists: dict[int, list[bytes]] = field(default_factory=dict)
    deleteList: dict[bytes, _DeleteRecord] = field(default_factory=dict)
    aborted: str = ""
    timer: IDelayedCall | None = None
    #: fires when the run ends, or at once when it is stopped (the coroutine
    #: may still be waiting for a migration; it stops at its next step)
    done: defer.Deferred[object] = field(default_factory=defer.Deferred)


class Vacuumer:
    """The vacuuming of a L{DatabaseManager}'s volatile databases, and the
    controls behind it."""

    log = Logger()

    def __init__(self, manager: DatabaseManager) -> None:
        self.manager = manager
        self.daemon = manager.daemon
        self.handles: dict[int, _Handle] = {}
        #: the active run (ctdb->vacuumer)
        self.running: _Run | None = None
        #: the counts of the last finished run, for tests and debugging
        self.lastCounts: VacuumCounts | None = None
        controls = self.daemon.controls
        controls.register(
            Control.SCHEDULE_FOR_DELETION, self.control_SCHEDULE_FOR_DELETION
        )
        controls.register(Control.VACUUM_FETCH, self.control_VACUUM_FETCH)
        controls.register(Control.TRY_DELETE_RECORDS, self.control_TRY_DELETE_RECORDS)
        controls.register(Control.DB_VACUUM, self.control_DB_VACUUM)

    @property
    def pnn(self) -> int:
        return self.daemon.pnn

    def _interval(self) -> int:
        # get_vacuum_interval; a zero interval would spin the reactor
        return max(int(self.daemon.tunables.VacuumInterval), 1)

    # -- the periodic event (ctdb_vacuum_init, ctdb_vacuum_event) -----------------------

    def attached(self, db: Database) -> None:
        """ctdb_vacuum_init: a volatile database is vacuumed periodically."""
        if not db.volatile or db.db_id in self.handles:
            return
        handle = _Handle(db, self._interval())
        self.handles[db.db_id] = handle
        self._schedule(handle, handle.interval)

    def detached(self, db: Database) -> None:
        """Stop vacuuming a database and drop its queues."""
        handle = self.handles.pop(db.db_id, None)
        if handle is not None and handle.timer is not None and handle.timer.active():
            handle.timer.cancel()
        if self.running is not None and self.running.db is db:
            self._abort(self.running, "database detached")
        db.deleteQueue.clear()
        db.fetchQueue.clear()

    def _schedule(self, handle: _Handle, delay: float) -> None:
        if handle.timer is not None and handle.timer.active():
            handle.timer.cancel()
        handle.timer = self.daemon.reactor.callLater(delay, self._event, handle)

    def _event(self, handle: _Handle) -> None:
        handle.timer = None
        if self.handles.get(handle.db.db_id) is not handle:
            return
        interval = self._interval()
        if interval > handle.interval:
            self.log.info(
                "Vacuum interval increased from {old} to {new}, rescheduling",
                old=handle.interval,
                new=interval,
            )
            delay = interval - handle.interval
            handle.interval = interval
            self._schedule(handle, delay)
            return
        handle.interval = interval
        fastPathMax = self.daemon.tunables.VacuumFastPathCount
        full = False
        if handle.fastPathCount >= fastPathMax:
            full = fastPathMax > 0
            handle.fastPathCount = 0
        try:
            d = self.vacuum(handle.db, full=full, scheduled=True)
        except VacuumRefused as e:
            # stagger behind the active run, else try again next interval
            self._schedule(handle, 0.5 if e.busy else handle.interval)
            return
        d.addErrback(
            lambda f: self.log.failure("vacuuming {db} failed", f, db=handle.db.name)
        )

    # -- a run --------------------------------------------------------------------------

    def vacuum(
        self, db: Database, *, full: bool = False, scheduled: bool = False
    ) -> defer.Deferred[bool]:
        """vacuum_db_child: start a run; fires True when it completed, False
        when it was stopped (recovery, detach, VacuumMaxRunTime).  Raises
        L{VacuumRefused} when it cannot start."""
        if self.daemon.recmode == C.CTDB_RECOVERY_ACTIVE or db.frozen:
            self.log.info(
                "Not vacuuming {db} ({why})",
                db=db.name,
                why="frozen" if db.frozen else "in recovery",
            )
            raise VacuumRefused("in recovery or frozen")
        if self.running is not None:
            raise VacuumRefused("another vacuuming run is active", busy=True)
        # The run works on the queues as they are now; records scheduled
        # meanwhile wait for the next run.
        run = _Run(db, full, scheduled, db.deleteQueue, list(db.fetchQueue))
        db.deleteQueue = {}
        db.fetchQueue = {}
        self.running = run
        reactor = self.daemon.reactor
        run.timer = reactor.callLater(
            self.daemon.tunables.VacuumMaxRunTime, self._abort, run, "timed out"
        )
        started = reactor.seconds()
        self.log.info(
            "Entering {kind} vacuum run for db {db} db_id[0x{db_id:08x}]",
            kind="full" if full else "fast",
            db=db.name,
            db_id=db.db_id,
        )

        def finished(result: object) -> bool:
            if run.timer is not None and run.timer.active():
                run.timer.cancel()
            if self.running is run:
                self.running = None
            self.lastCounts = run.counts
            handle = self.handles.get(db.db_id)
            ok = not run.aborted
            if run.aborted:
                self.log.error(
                    "Vacuuming of {db} stopped: {why}", db=db.name, why=run.aborted
                )
            elif handle is not None:
                handle.fastPathCount += 1
            if isinstance(result, Failure):
                self.log.failure("vacuuming {db} failed", result, db=db.name)
                ok = False
            # vacuum_child_destructor: every run, completed or stopped
            secs = max(0.0, reactor.seconds() - started)
            self.daemon.statsKeeper.vacuumLatency(db.stats, secs)
            self.log.info(
                "Vacuuming took {secs:.3f} seconds for database {db}",
                secs=secs,
                db=db.name,
            )
            if run.scheduled and handle is not None:
                handle.interval = self._interval()
                self._schedule(handle, handle.interval)
            return ok

        def ended(result: object) -> None:
            if not run.done.called:
                run.done.callback(result)

        defer.Deferred.fromCoroutine(self._run(run)).addBoth(ended)
        return run.done.addBoth(finished)

    def _abort(self, run: _Run, why: str) -> None:
        """ctdb_stop_vacuuming, vacuum_child_timeout."""
        if not run.aborted:
            run.aborted = why
        if not run.done.called:
            run.done.callback(None)

    def _stopped(self, run: _Run) -> bool:
        if not run.aborted and (
            self.daemon.recmode == C.CTDB_RECOVERY_ACTIVE
            or run.db.frozen
            or self.manager.byId.get(run.db.db_id) is not run.db
        ):
            run.aborted = "recovery or detach"
        return bool(run.aborted)

    async def _run(self, run: _Run) -> None:
        """ctdb_vacuum_db."""
        if run.full:
            await self._traverseDb(run)
            if self._stopped(run):
                return
        await self._processFetchQueue(run)
        if self._stopped(run):
            return
        self._processDeleteQueue(run)
        await self._processVacuumFetchLists(run)
        if self._stopped(run):
            return
        await self._processDeleteList(run)

    async def _traverseDb(self, run: _Run) -> None:
        """ctdb_vacuum_traverse_db: every empty record we are dmaster of
        joins this run's delete queue."""
        items = self.manager.readAll(run.db)
        if isinstance(items, defer.Deferred):
            items = await items
        for key, value in items:
            run.counts.traversed += 1
            if len(value) != LTDB_HEADER_SIZE:
                continue
            header = LtdbHeader.decode(value)[0]
            if header.dmaster != self.pnn:
                continue
            run.deleteQueue[key] = header

    async def _processFetchQueue(self, run: _Run) -> None:
        """ctdb_process_fetch_queue: migrate here the records other nodes
        asked us (their lmaster) to vacuum; each that arrives empty is
        scheduled for deletion (in the live queue, for the next run)."""
        db = run.db
        waits: list[defer.Deferred[Any]] = []
        for key in run.fetchQueue:
            if not db.store.lockNonblock(key):
                continue
            try:
                value = db.store.fetch(key)
            finally:
                db.store.unlock(key)
            header, _ = splitValue(value)
            if header is None:
                continue
            if header.dmaster == self.pnn:
                continue  # already migrated
            d = self.manager.migrateRecord(
                db, key, P.CTDB_IMMEDIATE_MIGRATION | P.CTDB_CALL_FLAG_VACUUM_MIGRATION
            )
            waits.append(
                d.addCallback(self._migrated, run, key).addErrback(self._migrateFailed)
            )
        if waits:
            await defer.DeferredList(waits)

    def _migrateFailed(self, f: Failure) -> None:
        self.log.error(
            "Failed to migrate record for vacuuming: {err}", err=f.getErrorMessage()
        )

    def _migrated(self, status: int, run: _Run, key: bytes) -> None:
        """fetch_record_migrate_callback."""
        db = run.db
        if status != 0:
            self.log.error("Failed to migrate record for vacuuming")
            return
        run.counts.migrated += 1
        if self.manager.byId.get(db.db_id) is not db or not db.store.lockNonblock(key):
            return
        try:
            value = db.store.fetch(key)
        finally:
            db.store.unlock(key)
        if value is None or len(value) != LTDB_HEADER_SIZE:
            return
        self.schedule(db, key, LtdbHeader.decode(value)[0])

    def _processDeleteQueue(self, run: _Run) -> None:
        """ctdb_process_delete_queue, delete_queue_traverse."""
        db = run.db
        counts = run.counts
        for key, queued in run.deleteQueue.items():
            counts.queued += 1
            if not db.store.lockNonblock(key):
                counts.errors += 1
                continue
            try:
                value = db.store.fetch(key)
                if value is None or len(value) != LTDB_HEADER_SIZE:
                    counts.skipped += 1  # gone, or filled again
                    continue
                header = LtdbHeader.decode(value)[0]
                if header.dmaster != self.pnn or header.rsn != queued.rsn:
                    # migrated off (and maybe back) since it was queued
                    counts.skipped += 1
                    continue
                lmaster = self.manager.lmaster(key)
                if lmaster != self.pnn:
                    run.fetchLists.setdefault(lmaster, []).append(key)
                    counts.sentToLmaster += 1
                elif queued.flags & CTDB_REC_FLAG_MIGRATED_WITH_DATA:
                    run.deleteList[key] = _DeleteRecord(key, queued)
                    counts.deleteList += 1
                else:
                    # never migrated with data: no copy exists elsewhere
                    db.store.delete(key)
                    counts.deletedLocally += 1
            finally:
                db.store.unlock(key)
        if counts.queued:
            self.log.info(
                "fast vacuuming delete_queue traverse statistics: db[{db}] total[{total}] "
                "del[{deleted}] skp[{skipped}] err[{errors}] adl[{adl}] avf[{avf}]",
                db=db.name,
                total=counts.queued,
                deleted=counts.deletedLocally,
                skipped=counts.skipped,
                errors=counts.errors,
                adl=counts.deleteList,
                avf=counts.sentToLmaster,
            )

    async def _processVacuumFetchLists(self, run: _Run) -> None:
        """ctdb_process_vacuum_fetch_lists: ask each lmaster to fetch the
        records it should vacuum."""
        db = run.db
        for lmaster, keys in sorted(run.fetchLists.items()):
            if lmaster == self.pnn or not keys:
                continue
            self.log.info(
                "Found {n} records for lmaster {pnn} in '{db}'",
                n=len(keys),
                pnn=lmaster,
                db=db.name,
            )
            payload = R.RecBuffer(
                db.db_id, tuple(R.RecData(self.pnn, key, b"") for key in keys)
            ).encode()
            reply = await self.daemon.sendControl(
                lmaster, Control.VACUUM_FETCH, payload
            )
            if reply.status != 0:
                self.log.error(
                    "Failed to send vacuum fetch control to node {pnn}", pnn=lmaster
                )

    async def _processDeleteList(self, run: _Run) -> None:
        """ctdb_process_delete_list: every other active node deletes its
        copies (TRY_DELETE_RECORDS); the records no node refused are then
        deleted here."""
        db = run.db
        if not run.deleteList:
            return
        counts = run.counts
        payload = R.RecBuffer(
            db.db_id,
            tuple(
                R.RecData(db.db_id, dd.key, dd.header.encode())
                for dd in run.deleteList.values()
            ),
        ).encode()
        others = [pnn for pnn in self.daemon.activeLmasters() if pnn != self.pnn]
        for pnn in others:
            reply = await self.daemon.sendControl(
                pnn, Control.TRY_DELETE_RECORDS, payload
            )
            if self._stopped(run):
                return
            if reply.status != 0:
                self.log.error(
                    "Failed to delete records on node {pnn}: {err}",
                    pnn=pnn,
                    err=reply.errmsg.decode(errors="replace"),
                )
                return
            try:
                refused = R.RecBuffer.decode(reply.data).records if reply.data else ()
            except MalformedPacket:
                self.log.error("bad TRY_DELETE_RECORDS reply from node {pnn}", pnn=pnn)
                return
            for rec in refused:
                dd = run.deleteList.get(rec.key)
                if dd is None:
                    self.log.error(
                        "Failed to find a record coming back from "
                        "TRY_DELETE_RECORDS in the delete list"
                    )
                    continue
                dd.remoteFailCount += 1

        def failed(f: Failure) -> None:
            counts.errors += 1
            self.log.error(
                "vacuum delete in {db}: {err}", db=db.name, err=f.getErrorMessage()
            )

        waits = []
        for dd in run.deleteList.values():
            if dd.remoteFailCount:
                counts.remoteFailed += 1
                continue
            result = self.manager.whenUnlocked(
                db,
                partial(db.store.lockNonblock, dd.key),
                partial(self._deleteLocked, run, dd),
                "vacuum delete",
            )
            if isinstance(result, defer.Deferred):
                waits.append(result.addErrback(failed))
        if waits:
            await defer.DeferredList(waits)
        self.log.info(
            "vacuum delete list statistics: db[{db}] total[{total}] del[{deleted}] "
            "rem.err[{remote}]",
            db=db.name,
            total=len(run.deleteList),
            deleted=counts.deleted,
            remote=counts.remoteFailed,
        )

    def _deleteLocked(self, run: _Run, dd: _DeleteRecord) -> None:
        """delete_record_traverse (we hold the record's lock): delete it if it
        is still empty, ours, unchanged and we are its lmaster."""
        db = run.db
        try:
            if self.manager.byId.get(db.db_id) is not db:
                return
            value = db.store.fetch(dd.key)
            if value is None or len(value) != LTDB_HEADER_SIZE:
                return
            header = LtdbHeader.decode(value)[0]
            if (
                header.flags & CTDB_REC_RO_FLAGS
                or header.dmaster != self.pnn
                or header.rsn != dd.header.rsn
                or self.manager.lmaster(dd.key) != self.pnn
            ):
                run.counts.skipped += 1
                return
            db.store.delete(dd.key)
            run.counts.deleted += 1
        finally:
            db.store.unlock(dd.key)

    # -- the delete queue ---------------------------------------------------------------

    def schedule(self, db: Database, key: bytes, header: LtdbHeader) -> None:
        """insert_record_into_delete_queue (an entry for the key is
        replaced)."""
        db.deleteQueue[key] = header

    # -- controls -----------------------------------------------------------------------

    def control_SCHEDULE_FOR_DELETION(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        """ctdb_control_schedule_for_deletion."""
        db_id, header, key = R.decodeKeyData(req.data)
        db = self.manager.byId.get(db_id)
        if db is None:
            return (-1, b"", b"Unknown database")
        self.schedule(db, key, LtdbHeader.decode(header)[0])
        return (0, b"", b"")

    def control_VACUUM_FETCH(self, req: P.ReqControl, client: object) -> ControlResult:
        """ctdb_control_vacuum_fetch: records to migrate here and vacuum in
        our next run."""
        buf = R.RecBuffer.decode(req.data)
        db = self.manager.byId.get(buf.db_id)
        if db is None:
            return (-1, b"", b"Unknown database")
        for rec in buf.records:
            db.fetchQueue[rec.key] = None
        return (0, b"", b"")

    def control_TRY_DELETE_RECORDS(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        """ctdb_control_try_delete_records: delete our copies of the lmaster's
        records; answer the ones we could not delete."""
        buf = R.RecBuffer.decode(req.data)
        db = self.manager.byId.get(buf.db_id)
        if db is None:
            return (-1, b"", b"Unknown database")
        refused = []
        for rec in buf.records:
            if len(rec.data) < LTDB_HEADER_SIZE:
                return (-1, b"", b"bad ltdb record in indata")
            if not self._deleteCopy(db, rec.key, rec.data):
                refused.append(rec)
        return (0, R.RecBuffer(db.db_id, tuple(refused)).encode(), b"")

    def _deleteCopy(self, db: Database, key: bytes, data: bytes) -> bool:
        """delete_tdb_record: True when our copy is gone."""
        if self.manager.lmaster(key) == self.pnn:
            return False  # called on the lmaster
        if len(data) != LTDB_HEADER_SIZE:
            return False
        theirs = LtdbHeader.decode(data)[0]
        if not db.store.lockNonblock(key):
            return False
        try:
            value = db.store.fetch(key)
            if value is None:
                return True
            ours, _ = splitValue(value)
            if ours is None:
                db.store.delete(key)  # corrupt
                return True
            if ours.rsn > theirs.rsn:
                return False
            if theirs.flags & CTDB_REC_RO_FLAGS or ours.flags & CTDB_REC_RO_FLAGS:
                return False
            if ours.dmaster == self.pnn:
                return False
            db.store.delete(key)
            return True
        finally:
            db.store.unlock(key)

    def control_DB_VACUUM(self, req: P.ReqControl, client: object) -> Any:
        """ctdb_control_db_vacuum: a run now; the reply waits for its end."""
        db_id = C.decodeU32(req.data, "db_id")
        full = len(req.data) > 4 and req.data[4] != 0
        db = self.manager.byId.get(db_id)
        if db is None:
            return (-1, b"", f"Unknown db id 0x{db_id:08x}".encode())
        if not db.volatile:
            return (-1, b"", b"Vacuuming is disabled for non-volatile databases")
        try:
            d = self.vacuum(db, full=full)
        except VacuumRefused as e:
            if e.busy:
                self.log.warn("Vacuuming collision")
            else:
                self.log.error("Temporary vacuuming failure: {why}", why=str(e))
            return (-1, b"", str(e).encode())
        return d.addCallback(
            lambda ok: (0, b"", b"") if ok else (-1, b"", b"vacuuming failed")
        )
