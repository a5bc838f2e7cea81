# -*- test-case-name: tests.databases.test_manager -*-
"""
Clustered databases in the daemon: attach and the database controls
(ctdb_ltdb_server.c, ctdb_control.c), the volatile record protocol
(ctdb_call.c: REQ_CALL, REQ_DMASTER, REPLY_DMASTER, REPLY_CALL, REPLY_ERROR),
cluster-wide traverse (ctdb_traverse.c) and persistent commits
(ctdb_persistent.c, ctdb_update_record.c).

The daemon never blocks on a record lock: every record operation takes the
chain lock with a non-blocking attempt and is requeued a moment later when
a client (Samba's tool, or a fetch-lock holder) has it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, cast

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from ctdb.database.ltdb import (
    ctdbHash,
    dbTdbFlags,
    splitValue,
)
from ctdb.database.store import MemoryRecordStore, TdbRecordStore
from ctdb.databases.migration import RecordMigration
from ctdb.databases.model import (
    DB_SEQNUM_KEY,
    MAX_DB_NAME,
    Database,
    _DeferredAttach,
    _PendingCall,
    _Trans3Commit,
    _Traverse,
    seqnumValue,
)
from ctdb.databases.persistent import PersistentCommits
from ctdb.databases.recoverydb import RecoveryDatabases
from ctdb.databases.traverse import Traverses
from ctdb.databases.vacuum import Vacuumer
from ctdb.errors import TDBError
from ctdb.interfaces import (
    IClientConnection,
    IClientObserver,
    IRecordProtocol,
    IRecordStore,
    IRecoveryParticipant,
    IStatisticsSource,
)
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control

if TYPE_CHECKING:
    from ctdb.daemon.core import ControlResult, Daemon


@implementer(IRecordProtocol, IClientObserver, IRecoveryParticipant, IStatisticsSource)
class DatabaseManager(RecordMigration, Traverses, PersistentCommits, RecoveryDatabases):
    """Owns every attached database of one daemon (see L{plugInto})."""

    log = Logger()

    def __init__(self, daemon: Daemon, *, memory: bool = False) -> None:
        self.daemon = daemon
        self.memory = memory
        self.byId: dict[int, Database] = {}
        self.byName: dict[str, Database] = {}
        self._calls: dict[int, _PendingCall] = {}
        self._traverses: dict[int, _Traverse] = {}
        #: TRANS3_COMMITs in progress, by db id (ctdb_db->persistent_state)
        self._trans3: dict[int, _Trans3Commit] = {}
        self._hashes: dict[bytes, int] = {}
        #: local clients' attaches waiting for the end of a recovery
        self._deferredAttaches: list[_DeferredAttach] = []
        # Client replies produced while a chain lock is held, sent once it
        # is released (see withLock); None when no lock is held.
        self._afterUnlock: list[tuple[IClientConnection, P.Packet]] | None = None
        self.vacuum = Vacuumer(self)

    def plugInto(self, daemon: Daemon) -> None:
        """Register with the daemon core: its controls, the record protocol,
        and the client, recovery and statistics seams (ctdb.interfaces)."""
        for name in dir(self):
            if name.startswith("control_"):
                daemon.controls.register(
                    Control[name[len("control_") :]], getattr(self, name)
                )
        daemon.setRecordProtocol(self)
        daemon.addClientObserver(self)
        daemon.addRecoveryParticipant(self)
        daemon.addStatisticsSource(self)

    # -- attach -------------------------------------------------------------------

    def dbDirectory(self, flags: int) -> str:
        cfg = self.daemon.config
        if flags & R.DB_FLAGS_PERSISTENT:
            return cfg.dbDirPersistent
        return cfg.dbDirVolatile

    def attach(self, name: str, flags: int) -> Database:
        """ctdb_local_attach: open (creating) the database file."""
        db = self.byName.get(name)
        if db is not None:
            if (db.flags & flags) != flags:
                raise ValueError(
                    f"Failed to re-attach with 0x{flags:x} flags, database has "
                    f"0x{db.flags:x} flags"
                )
            return db
        if not name or len(name) > MAX_DB_NAME or "/" in name or "\0" in name:
            raise ValueError(f"invalid database name {name!r}")
        db_id = ctdbHash(name.encode() + b"\0")
        if db_id in self.byId:
            raise ValueError(f"database id 0x{db_id:08x} of {name} is in use")
        path = os.path.join(self.dbDirectory(flags), f"{name}.{self.pnn}")
        store: IRecordStore
        if self.memory:
            store = MemoryRecordStore(tdbFlags=dbTdbFlags(flags))
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if not flags & R.DB_FLAGS_PERSISTENT and os.path.exists(path):
                # Volatile databases start empty at daemon start, as ctdbd.
                os.unlink(path)
            store = TdbRecordStore(
                path,
                hashSize=self.daemon.tunables.DatabaseHashSize,
                tdbFlags=dbTdbFlags(flags),
            )
            # tdb_open may drop flags it does not need for a file; keep the
            # ones asked for, as ctdb_local_attach does (tdb_add_flags), so
            # that DB_OPEN_FLAGS hands smbd the full set.
            store.tdb.addFlags(dbTdbFlags(flags))
        db = Database(db_id, name, flags, path, store)
        db.generation = self.daemon.vnnMap.generation
        self.byId[db_id] = db
        self.byName[name] = db
        self.vacuum.attached(db)
        kind = (
            "persistent"
            if db.persistent
            else "replicated"
            if db.replicated
            else "volatile"
        )
        self.log.info(
            "Attached to database '{path}' with flags 0x{flags:x} ({kind})",
            path=path,
            flags=dbTdbFlags(flags),
            kind=kind,
        )
        return db

    def attachExisting(self) -> list[Database]:
        """ctdb_attach_persistent: at start, attach every persistent database
        this node has a file of in the persistent directory (C{<name>.<pnn>},
        the name ending in C{.tdb}), so that a restarted node offers its
        copies to the first recovery before any client attaches them.  A file
        of another node's number, or one that fails to open, is skipped with
        an error logged; the daemon starts anyway."""
        if self.memory:
            return []
        directory = self.daemon.config.dbDirPersistent
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            return []
        attached = []
        for entry in entries:
            name, dot, number = entry.rpartition(".")
            if not dot or not name.endswith(".tdb") or not number.isdigit():
                continue
            if int(number) != self.pnn:
                self.log.error("Ignoring persistent database '{entry}'", entry=entry)
                continue
            if not _looksLikeTdb(os.path.join(directory, entry)):
                # tdb_open would write a new, empty database over it.
                self.log.error(
                    "Not attaching persistent database '{entry}': not a TDB file",
                    entry=entry,
                )
                continue
            try:
                attached.append(self.attach(name, R.DB_FLAGS_PERSISTENT))
            except (OSError, ValueError, TDBError) as e:
                self.log.error(
                    "Failed to attach to persistent database '{entry}': {error}",
                    entry=entry,
                    error=e,
                )
        return attached

    def _attachControl(
        self, req: P.ReqControl, client: object, flags: int
    ) -> ControlResult | defer.Deferred[ControlResult]:
        """ctdb_control_db_attach.  A local client (smbd, the tool) may not
        attach on an inactive node, and while the node is in recovery or
        has not finished its first one the attach waits until it is over
        (at most DeferredAttachTO s): smbd started with a cluster that is
        still coming up blocks in the attach instead of failing."""
        name = C.decodeString(req.data, "db name")
        d = self.daemon
        if d.tunables.AllowClientDBAttach == 0:
            return (-1, b"", b"DB Attach denied by tunable AllowClientDBAttach")
        if client is not None:
            if d.nodes[d.pnn].flags & C.NODE_FLAGS_INACTIVE:
                self.log.warn(
                    "DB Attach to database {name} refused since node is inactive "
                    "(flags=0x{flags:x})",
                    name=name,
                    flags=d.nodes[d.pnn].flags,
                )
                return (-1, b"", b"")
            fromRecovery = bool(req.flags & P.CTDB_CTRL_FLAG_ATTACH_RECOVERY)
            if fromRecovery and d.recmode != C.CTDB_RECOVERY_ACTIVE:
                return (-1, b"", b"Attach from recovery refused: recovery not active")
            if not fromRecovery and (
                d.recmode == C.CTDB_RECOVERY_ACTIVE or d.runstate < C.RunState.STARTUP
            ):
                return self._deferAttach(req, client, flags, name)
        existed = name in self.byName
        db = self.attach(name, flags)
        if not existed:
            # tell all the other nodes about this database
            opcode = (
                Control.DB_ATTACH_PERSISTENT
                if db.persistent
                else Control.DB_ATTACH_REPLICATED
                if db.replicated
                else Control.DB_ATTACH
            )
            self.daemon.sendControl(
                P.CTDB_BROADCAST_CONNECTED,
                opcode,
                req.data,
                flags=P.CTDB_CTRL_FLAG_NOREPLY,
            )
        return (0, C.encodeU32(db.db_id), b"")

    def _deferAttach(
        self, req: P.ReqControl, client: object, flags: int, name: str
    ) -> defer.Deferred[ControlResult]:
        done: defer.Deferred[ControlResult] = defer.Deferred()
        waiting = _DeferredAttach(req, client, flags, done)

        def timedOut() -> None:
            self._deferredAttaches.remove(waiting)
            done.callback((-1, b"", b""))

        waiting.timer = self.daemon.reactor.callLater(
            self.daemon.tunables.DeferredAttachTO, timedOut
        )
        self._deferredAttaches.append(waiting)
        self.log.info(
            "DB Attach to database {name} deferred for client with pid:{pid} "
            "since node is in recovery mode.",
            name=name,
            pid=getattr(client, "pid", 0),
        )
        return done

    def processDeferredAttaches(self) -> None:
        """ctdb_process_deferred_attach: the recovery is over; run the
        attaches that waited for it (any that still cannot run wait again)."""
        waiting, self._deferredAttaches = self._deferredAttaches, []
        for item in waiting:
            if item.timer is not None and item.timer.active():
                item.timer.cancel()
            # maybeDeferred unwraps a returned Deferred, but its overloads
            # cannot say so for a function returning T | Deferred[T]
            result = cast(
                "defer.Deferred[ControlResult]",
                defer.maybeDeferred(
                    self._attachControl, item.req, item.client, item.flags
                ),
            )
            result.addErrback(lambda f: (-1, b"", str(f.value).encode()))
            result.chainDeferred(item.done)

    def control_DB_ATTACH(
        self, req: P.ReqControl, client: object
    ) -> ControlResult | defer.Deferred[ControlResult]:
        return self._attachControl(req, client, 0)

    def control_DB_ATTACH_PERSISTENT(
        self, req: P.ReqControl, client: object
    ) -> ControlResult | defer.Deferred[ControlResult]:
        return self._attachControl(req, client, R.DB_FLAGS_PERSISTENT)

    def control_DB_ATTACH_REPLICATED(
        self, req: P.ReqControl, client: object
    ) -> ControlResult | defer.Deferred[ControlResult]:
        return self._attachControl(req, client, R.DB_FLAGS_REPLICATED)

    def control_GET_DBMAP(self, req: P.ReqControl, client: object) -> ControlResult:
        # ctdbd adds each new database at the head of its list (DLIST_ADD),
        # so the map lists the most recently attached first.
        dbs = reversed(list(self.byId.values()))
        return (0, R.encodeDbMap([R.DbId(d.db_id, d.flags) for d in dbs]), b"")

    def control_GETDBPATH(self, req: P.ReqControl, client: object) -> ControlResult:
        return (0, C.encodeString(self._db(req).path), b"")

    def control_GET_DBNAME(self, req: P.ReqControl, client: object) -> ControlResult:
        return (0, C.encodeString(self._db(req).name), b"")

    def control_DB_GET_HEALTH(self, req: P.ReqControl, client: object) -> ControlResult:
        health = self._db(req).health
        return (0, C.encodeString(health) if health else b"", b"")

    def control_DB_SET_HEALTHY(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        self._db(req).health = ""
        return (0, b"", b"")

    def control_DB_OPEN_FLAGS(self, req: P.ReqControl, client: object) -> ControlResult:
        """The flags of our own handle (tdb_get_flags), C{TDB_SEQNUM}
        included once enabled: smbd opens its handle with exactly these."""
        return (0, C.encodeI32(self._db(req).store.tdbFlags()), b"")

    def control_GET_DB_STATISTICS(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        return (0, self._db(req).stats.encode(), b"")

    def statisticsReset(self) -> None:
        """ctdb_db_statistics_reset, for STATISTICS_RESET: every database's
        statistics and hot keys start again (the lock requests still
        pending stay counted, so that their completion never goes below 0)."""
        for db in self.byId.values():
            old = db.stats
            db.stats = R.DbStatistics()
            db.stats.locks_num_pending = old.locks_num_pending
            db.stats.locks_num_current = old.locks_num_current

    def control_GET_DB_SEQNUM(self, req: P.ReqControl, client: object) -> ControlResult:
        db = self._db(req)
        _, data = splitValue(db.store.fetch(DB_SEQNUM_KEY))
        return (0, C.encodeU64(seqnumValue(data)), b"")

    def control_ENABLE_SEQNUM(self, req: P.ReqControl, client: object) -> ControlResult:
        self.enableSeqnum(self._db(req))
        return (0, b"", b"")

    def enableSeqnum(self, db: Database) -> None:
        """ctdb_ltdb_enable_seqnum: our handle bumps the file's tdb sequence
        number on every change (so DB_OPEN_FLAGS reports C{TDB_SEQNUM} and
        smbd's handle does the same), and every SeqnumInterval ms a change
        is announced to the other active nodes with UPDATE_SEQNUM."""
        if db.seqnumCheck is None:
            self._scheduleSeqnumCheck(db)
        db.store.enableSeqnum()
        db.seqnum = db.store.seqnum()

    def _scheduleSeqnumCheck(self, db: Database) -> None:
        # SeqnumInterval is read again for every check, as ctdbd does.
        interval = max(self.daemon.tunables.SeqnumInterval, 1) / 1000.0
        db.seqnumCheck = self.daemon.reactor.callLater(interval, self._seqnumCheck, db)

    def _seqnumCheck(self, db: Database) -> None:
        """ctdb_ltdb_seqnum_check: a local writer (smbd, or our own stores)
        moved the sequence number since the last look."""
        if self.byId.get(db.db_id) is not db:
            return
        seqnum = db.store.seqnum()
        if seqnum != db.seqnum:
            self.daemon.sendControl(
                P.CTDB_BROADCAST_ACTIVE,
                Control.UPDATE_SEQNUM,
                C.encodeU32(db.db_id),
                flags=P.CTDB_CTRL_FLAG_NOREPLY,
            )
        db.seqnum = seqnum
        self._scheduleSeqnumCheck(db)

    def control_UPDATE_SEQNUM(self, req: P.ReqControl, client: object) -> ControlResult:
        """ctdb_ltdb_update_seqnum: another node's copy changed, so bump
        ours and the caches of our local clients are thrown away."""
        db = self._db(req)
        if req.header.srcnode == self.pnn:
            return (0, b"", b"")
        if db.health:
            self.log.warn(
                "db({db}) unhealthy in UPDATE_SEQNUM: {why}", db=db.name, why=db.health
            )
            return (-1, b"", b"")
        db.store.incrementSeqnumNonblock()
        db.seqnum = db.store.seqnum()
        return (0, b"", b"")

    def control_DB_DETACH(self, req: P.ReqControl, client: object) -> ControlResult:
        """ctdb_control_db_detach: a client's request is broadcast to every
        connected node (us included); the detach itself happens when the
        control comes from a daemon."""
        db = self._db(req)
        if self.daemon.tunables.AllowClientDBAttach == 1:
            return (-1, b"", b"DB detach denied while AllowClientDBAttach=1")
        if not db.volatile:
            return (-1, b"", b"Detaching non-volatile database denied")
        if self.daemon.recmode == C.CTDB_RECOVERY_ACTIVE:
            return (-1, b"", b"DB detach denied while in recovery")
        if client is not None:
            self.daemon.sendControl(
                P.CTDB_BROADCAST_CONNECTED,
                Control.DB_DETACH,
                req.data,
                flags=P.CTDB_CTRL_FLAG_NOREPLY,
            )
            return (0, b"", b"")
        self.detach(db)
        return (0, b"", b"")

    def detach(self, db: Database) -> None:
        """Drop an attached database: its vacuuming, traverses, sticky
        records and files."""
        self.vacuum.detached(db)
        if db.seqnumCheck is not None and db.seqnumCheck.active():
            db.seqnumCheck.cancel()
        for reqid, trav in list(self._traverses.items()):
            if trav.db is db:
                del self._traverses[reqid]
                if trav.timer is not None and trav.timer.active():
                    trav.timer.cancel()
        db.store.close()
        if db.rotdb is not None:
            db.rotdb.close()
        self._dropSticky(db)
        del self.byId[db.db_id]
        self.noteDatabaseLocks()
        del self.byName[db.name]
        self.log.info("Detached from database '{name}'", name=db.name)

    # -- IRecoveryParticipant and IStatisticsSource ---------------------------------

    def becameInactive(self) -> None:
        self.invalidateRecords()
        # ctdb_db_all_frozen: the node froze all its databases (ctdbd's
        # freeze of an inactive node), until they are thawed.
        self.daemon.stats.counters["frozen"] = 1

    def recoveryStarted(self) -> None:
        pass

    def whyStayInRecovery(self) -> str | None:
        """ctdb_control_set_recmode: a database whose copy the last
        recovery did not commit here (the node was inactive, or came back
        after that recovery's start) keeps the node in recovery mode, so
        that the leader recovers it before its clients see stale records."""
        generation = self.daemon.vnnMap.generation
        for db in self.byId.values():
            if db.generation != generation:
                return f"Inconsistent DB generation {db.generation} for {db.name}"
        return None

    def recoveryModeNormal(self) -> None:
        """Recovery is over on this node: leftover recovery transactions are
        cancelled, databases thawed, held calls and attaches run again."""
        for db in self.byId.values():
            if db.transactionId is not None:
                db.store.transactionCancel()
                db.transactionId = None
                self.noteDatabaseLocks()
            db.frozen = False
            db.invalidRecords = False
        self.daemon.stats.counters["frozen"] = 0
        self.processDeferredAttaches()
        self.resendCalls()

    def recoveryEnded(self, first: bool) -> None:
        # ctdb_persistent_finish_trans3_commits
        self.finishTrans3Commits()
        if first:
            # attaches that waited for the end of the first recovery
            self.processDeferredAttaches()

    def memoryObjects(self) -> list[tuple[str, object]]:
        return [("struct ctdb_db_context", db) for db in self.byId.values()]

    def clientGone(self, client: IClientConnection) -> None:
        for item in [a for a in self._deferredAttaches if a.client is client]:
            self._deferredAttaches.remove(item)
            if item.timer is not None and item.timer.active():
                item.timer.cancel()
        for pending in self._calls.values():
            if pending.client is client:
                pending.client = None
        for trav in self._traverses.values():
            if trav.client is client:
                trav.client = None


#: what every TDB file starts with (TDB_MAGIC_FOOD)
_TDB_MAGIC = b"TDB file\n"


def _looksLikeTdb(path: str) -> bool:
    """The file at C{path} starts with TDB's magic (an empty file is a new
    database tdb_open initialises, so it counts too)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_TDB_MAGIC))
    except OSError:
        return False
    return head in (b"", _TDB_MAGIC)
