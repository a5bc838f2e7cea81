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
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from zope.interface import implementer

from ctdb.database.ltdb import (
    CTDB_REC_FLAG_AUTOMATIC,
    CTDB_REC_FLAG_MIGRATED_WITH_DATA,
    CTDB_REC_FLAG_VACUUM_MIGRATED,
    CTDB_REC_RO_FLAGS,
    CTDB_REC_RO_HAVE_DELEGATIONS,
    CTDB_REC_RO_HAVE_READONLY,
    CTDB_REC_RO_REVOKE_COMPLETE,
    CTDB_REC_RO_REVOKING_READONLY,
    LtdbHeader,
    ctdbHash,
)
from ctdb.database.store import MemoryRecordStore, TdbRecordStore
from ctdb.databases.vacuum import Vacuumer
from ctdb.errors import MalformedPacket
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

HEADER_SIZE = 24
DB_SEQNUM_KEY = b"__db_sequence_number__\0"
MAX_DB_NAME = 255  # ctdbd refuses names that do not fit a path component

# tdb open flags (lib/tdb/include/tdb.h)
TDB_DEFAULT = 0
TDB_CLEAR_IF_FIRST = 1
TDB_NOLOCK = 4
TDB_NOSYNC = 64
TDB_DISALLOW_NESTING = 1024
TDB_INCOMPATIBLE_HASH = 2048


def dbTdbFlags(dbFlags: int) -> int:
    """ctdb_db_tdb_flags (common/ctdb_ltdb.c), without mutexes."""
    if dbFlags & R.DB_FLAGS_PERSISTENT:
        flags = TDB_DEFAULT
    else:
        flags = TDB_NOSYNC | TDB_CLEAR_IF_FIRST | TDB_INCOMPATIBLE_HASH
    return flags | TDB_DISALLOW_NESTING


def trackingAdd(tracking: bytes, pnn: int) -> bytes:
    """ctdb_trackingdb_add_pnn: the tracking record is a bitmap of pnns."""
    buf = bytearray(tracking)
    byte = pnn // 8
    if len(buf) < byte + 1:
        buf.extend(b"\0" * (byte + 1 - len(buf)))
    buf[byte] |= 1 << (pnn % 8)
    return bytes(buf)


def trackedPnns(tracking: bytes) -> list[int]:
    """ctdb_trackingdb_traverse: the pnns set in a tracking record."""
    return [i * 8 + j for i, b in enumerate(tracking) for j in range(8) if b & (1 << j)]


def updateHotKeys(hotKeys: list[tuple[int, bytes]], key: bytes, count: int) -> None:
    """ctdb_update_db_stat_hot_keys: keep the MAX_HOT_KEYS (count, key)
    pairs with the highest counts, in ascending order of count."""
    if len(hotKeys) >= R.MAX_HOT_KEYS and count <= hotKeys[0][0]:
        return
    for i, (known, k) in enumerate(hotKeys):
        if k == key:
            if count <= known:
                return
            hotKeys[i] = (count, key)
            break
    else:
        if len(hotKeys) < R.MAX_HOT_KEYS:
            hotKeys.append((count, key))
        else:
            hotKeys[0] = (count, key)
    hotKeys.sort(key=lambda ck: ck[0])


#: the record protocol's operations as plain ints, for nodeCallPacket
_OP_REQ_CALL = int(P.Operation.REQ_CALL)
_OP_REQ_DMASTER = int(P.Operation.REQ_DMASTER)
_OP_REPLY_DMASTER = int(P.Operation.REPLY_DMASTER)
_OP_REPLY_CALL = int(P.Operation.REPLY_CALL)
_OP_REPLY_ERROR = int(P.Operation.REPLY_ERROR)

#: keys whose ctdbHash L{DatabaseManager.lmaster} remembers (then it forgets all)
_HASH_CACHE_SIZE = 4096


def splitValue(value: bytes | None) -> tuple[LtdbHeader | None, bytes]:
    if value is None or len(value) < HEADER_SIZE:
        return None, b""
    return LtdbHeader.decode(value[:HEADER_SIZE])[0], value[HEADER_SIZE:]


@dataclass
class Database(R.DbKind):
    db_id: int
    name: str
    flags: int
    path: str
    store: IRecordStore
    health: str = ""
    stats: R.DbStatistics = field(default_factory=R.DbStatistics)
    frozen: bool = False
    transactionId: int | None = None
    commitActive: bool = False
    pushRecords: int = 0
    pushSrvid: int | None = None
    #: the sequence number last seen by the seqnum check, and the check
    #: itself once a client sent ENABLE_SEQNUM (ctdb_db->seqnum_update)
    seqnum: int = 0
    seqnumCheck: IDelayedCall | None = None
    #: the read-only delegation tracking db (``<path>.RO``) once
    #: SET_DB_READONLY made this database READONLY: key -> bitmap of pnns
    rotdb: IRecordStore | None = None
    #: records whose delegations are being revoked (ctdb_start_revoke_ro_record)
    revokes: dict[bytes, _Revoke] = field(default_factory=dict)
    #: sticky records (ctdb_make_record_sticky), once SET_DB_STICKY
    sticky: dict[bytes, _StickyRecord] = field(default_factory=dict)
    #: migrations of each key to us in the current 1 s window (migratedb)
    migrations: dict[bytes, tuple[int, float]] = field(default_factory=dict)
    #: set when the node became inactive (ctdb_start_freeze, db_invalidate):
    #: our volatile records are stale, a recovery pulls none of them
    invalidRecords: bool = False
    #: records scheduled for deletion (ctdb_db->delete_queue): key -> the
    #: header they had then; the next vacuuming run processes them
    deleteQueue: dict[bytes, LtdbHeader] = field(default_factory=dict)
    #: records other nodes asked us (their lmaster) to migrate here for
    #: deletion by VACUUM_FETCH (ctdb_db->fetch_queue)
    fetchQueue: dict[bytes, None] = field(default_factory=dict)

    @property
    def readonly(self) -> bool:
        return bool(self.flags & R.DB_FLAGS_READONLY)

    @property
    def isSticky(self) -> bool:
        return bool(self.flags & R.DB_FLAGS_STICKY)


@dataclass
class _Revoke:
    """A revoke of a record's read-only delegations in progress, with the
    requests deferred until it is over (revokechild_handle)."""

    key: bytes
    deferred: list[tuple[bool, Callable[[], object]]] = field(default_factory=list)


@dataclass
class _StickyRecord:
    """struct ctdb_sticky_record: a hot record that stays for
    StickyDuration seconds; after each migration to us it is pinned down
    for StickyPindown ms, and requests for it wait (pinned_down_deferred_call)."""

    expiry: IDelayedCall | None = None
    pindown: IDelayedCall | None = None
    deferred: list[Callable[[], object]] = field(default_factory=list)


@dataclass
class _PendingCall:
    """A REQ_CALL this node sent on behalf of a local client."""

    db: Database
    key: bytes
    callid: int
    flags: int
    calldata: bytes
    client: IClientConnection | None
    clientReqid: int
    clientSrcnode: int
    timer: IDelayedCall | None = None
    #: the callid sent to the dmaster (FETCH_WITH_HEADER for a read-only
    #: request, whatever the client asked: daemon_request_call_from_client)
    sentCallid: int | None = None
    #: for a call the daemon makes itself (a vacuum migration): called with
    #: the status once the call is over
    onDone: Callable[[int], object] | None = None

    @property
    def wireCallid(self) -> int:
        return self.callid if self.sentCallid is None else self.sentCallid


@dataclass
class _DeferredAttach:
    """A local client's attach waiting for the end of a recovery
    (struct ctdb_deferred_attach_context)."""

    req: P.ReqControl
    client: object
    flags: int
    done: defer.Deferred[ControlResult]
    timer: IDelayedCall | None = None


@dataclass
class _Trans3Commit:
    """struct ctdb_persistent_state: a TRANS3_COMMIT waiting for the
    UPDATE_RECORD replies of C{pending} nodes."""

    db: Database
    done: defer.Deferred[ControlResult]
    pending: int
    timer: IDelayedCall | None = None


@dataclass
class _Traverse:
    db: Database
    client: IClientConnection | None
    clientReqid: int
    srvid: int
    expected: int
    ends: int = 0
    timer: IDelayedCall | None = None
    records: int = 0
    onRecord: Callable[[R.RecData], None] | None = None
    done: defer.Deferred[int] | None = None


@implementer(IRecordProtocol, IClientObserver, IRecoveryParticipant, IStatisticsSource)
class DatabaseManager:
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

    @property
    def pnn(self) -> int:
        return self.daemon.pnn

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

    def _db(self, req: P.ReqControl) -> Database:
        db_id = C.decodeU32(req.data, "db_id")
        db = self.byId.get(db_id)
        if db is None:
            raise KeyError(f"Unknown database 0x{db_id:08x}")
        return db

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
            pending = db.stats.locks_num_pending
            db.stats = R.DbStatistics()
            db.stats.locks_num_pending = pending

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

    def control_GET_DB_SEQNUM(self, req: P.ReqControl, client: object) -> ControlResult:
        db = self._db(req)
        _, data = splitValue(db.store.fetch(DB_SEQNUM_KEY))
        seqnum = struct.unpack("<Q", data)[0] if len(data) == 8 else 0
        return (0, C.encodeU64(seqnum), b"")

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
        del self.byName[db.name]
        self.log.info("Detached from database '{name}'", name=db.name)

    # -- freeze, transactions, wipe, push (restoredb / wipedb / recovery) --------

    def control_DB_FREEZE(self, req: P.ReqControl, client: object) -> ControlResult:
        self._db(req).frozen = True
        return (0, b"", b"")

    # -- IRecoveryParticipant and IStatisticsSource ---------------------------------

    def becameInactive(self) -> None:
        self.invalidateRecords()

    def recoveryModeNormal(self) -> None:
        """Recovery is over on this node: leftover recovery transactions are
        cancelled, databases thawed, held calls and attaches run again."""
        for db in self.byId.values():
            if db.transactionId is not None:
                db.store.transactionCancel()
                db.transactionId = None
            db.frozen = False
            db.invalidRecords = False
        self.recoveryFinished()

    def recoveryEnded(self, first: bool) -> None:
        # ctdb_persistent_finish_trans3_commits
        self.finishTrans3Commits()
        if first:
            # attaches that waited for the end of the first recovery
            self.processDeferredAttaches()

    def memoryObjects(self) -> list[tuple[str, object]]:
        return [("struct ctdb_db_context", db) for db in self.byId.values()]

    def invalidateRecords(self) -> None:
        """db_invalidate, as the node becomes inactive (stopped or banned):
        until the next thaw a recovery pulls none of its volatile records,
        which may be stale (a record deleted meanwhile must not come back)."""
        for db in self.byId.values():
            db.frozen = True
            if db.volatile:
                db.invalidRecords = True

    def control_DB_THAW(self, req: P.ReqControl, client: object) -> ControlResult:
        db = self._db(req)
        if db.transactionId is not None:
            db.store.transactionCancel()
            db.transactionId = None
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

        def started() -> ControlResult:
            db.transactionId = tid
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
        return (0, b"", b"")

    def control_DB_TRANSACTION_CANCEL(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        db = self._db(req)
        if db.transactionId is not None:
            db.store.transactionCancel()
            db.transactionId = None
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
                buf = R.RecBuffer.decode(data)
            except MalformedPacket as e:
                self.log.warn("bad push buffer: {err}", err=str(e))
                return
            # As db_push_msg_handler, the buffer's own db_id is not
            # checked: Samba's restoredb sends the buffers of a backup
            # file as they are.
            for rec in buf.records:
                self._storeRecovered(db, rec.key, rec.data)
            db.pushRecords += len(buf.records)

        self.daemon.internalHandlers[srvid] = [onBuffer]
        return (0, b"", b"")

    def _storeRecovered(self, db: Database, key: bytes, value: bytes) -> None:
        if len(value) < HEADER_SIZE:
            return
        # Strip the read-only flags: a recovery (or a restore) revokes
        # every delegation implicitly (db_push_msg_handler).
        header = LtdbHeader.decode(value[:HEADER_SIZE])[0].withFlags(
            clear=CTDB_REC_RO_FLAGS
        )
        if db.volatile:
            # db_push_msg_handler stores through ctdb_ltdb_store_server: the
            # node the record now names as dmaster (the leader) bumps its
            # rsn, so its copy beats the other nodes' equal-rsn copies at the
            # next recovery even after its clients changed it in place.
            self.storeRecord(db, key, header, value[HEADER_SIZE:])
            return
        db.store.store(key, header.encode() + value[HEADER_SIZE:])

    def control_DB_PUSH_CONFIRM(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        db = self._db(req)
        if db.pushSrvid is None:
            return (-1, b"", b"no push in progress")
        self.daemon.internalHandlers.pop(db.pushSrvid, None)
        db.pushSrvid = None
        return (0, C.encodeU32(db.pushRecords), b"")

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
        db.stats.locks_num_pending += 1

        def retry(delay: float) -> None:
            try:
                ok = attempt()
            except Exception as e:  # noqa: BLE001 - a record operation must never crash the daemon
                db.stats.locks_num_pending -= 1
                d.errback(e)
                return
            if ok:
                db.stats.locks_num_pending -= 1
                try:
                    d.callback(then())
                except Exception as e:  # noqa: BLE001 - a record operation must never crash the daemon
                    d.errback(e)
                return
            if reactor.seconds() > deadline:
                db.stats.locks_num_pending -= 1
                db.stats.locks_num_failed += 1
                d.errback(
                    TimeoutError(f"{what} of {db.name}: record locks held too long")
                )
                return
            reactor.callLater(delay, retry, min(delay * 2, 0.05))

        reactor.callLater(0.001, retry, 0.002)
        return d

    def control_DB_PULL(self, req: P.ReqControl, client: object) -> Any:
        db_id, _lmaster, srvid = R.decodePulldbExt(req.data)
        db = self.byId[db_id]
        if db.invalidRecords:
            return self._pulled(db, req, srvid, [])
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
    ) -> ControlResult:
        records = [R.RecData(0, k, v) for k, v in items if len(v) >= HEADER_SIZE]
        limit = self.daemon.tunables.RecBufferSizeLimit
        batch: list[R.RecData] = []
        size = 0
        for rec in records:
            batch.append(rec)
            size += 16 + len(rec.key) + len(rec.data)
            if size >= limit:
                self.daemon.sendMessage(
                    req.header.srcnode,
                    srvid,
                    R.RecBuffer(db.db_id, tuple(batch)).encode(),
                )
                batch, size = [], 0
        if batch:
            self.daemon.sendMessage(
                req.header.srcnode, srvid, R.RecBuffer(db.db_id, tuple(batch)).encode()
            )
        return (0, C.encodeU32(len(records)), b"")

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

    def fetch(self, db: Database, key: bytes) -> tuple[LtdbHeader, bytes]:
        """ctdb_ltdb_fetch: the record, or an initial header (stored if we
        are its lmaster or the db is persistent)."""
        header, data = splitValue(db.store.fetch(key))
        if header is not None:
            return header, data
        header = LtdbHeader(0, self.lmaster(key), 0, CTDB_REC_FLAG_AUTOMATIC)
        if not db.volatile or header.dmaster == self.pnn:
            header = self.storeRecord(db, key, header, b"")
        return header, b""

    def storeRecord(
        self, db: Database, key: bytes, header: LtdbHeader, data: bytes
    ) -> LtdbHeader:
        """ctdb_ltdb_store_server: the keep/delete and rsn rules."""
        lmaster = self.lmaster(key)
        flags = header.flags
        rsn = header.rsn
        keep = False
        schedule = False
        if data or flags & CTDB_REC_RO_FLAGS:
            keep = True
        elif flags & CTDB_REC_FLAG_AUTOMATIC:
            keep = True
            schedule = True
        elif flags & CTDB_REC_FLAG_MIGRATED_WITH_DATA:
            keep = True
        elif self.pnn == lmaster:
            keep = (
                not flags & CTDB_REC_FLAG_VACUUM_MIGRATED or self.pnn != header.dmaster
            )
        elif self.pnn == header.dmaster:
            keep = True
        if (
            keep
            and db.volatile
            and self.pnn == header.dmaster
            and not flags & CTDB_REC_RO_FLAGS
        ):
            rsn += 1
            if not data:
                schedule = True
        flags &= ~(CTDB_REC_FLAG_VACUUM_MIGRATED | CTDB_REC_FLAG_AUTOMATIC)
        stored = LtdbHeader(rsn, header.dmaster, 0, flags)
        if keep:
            db.store.store(key, stored.encode() + data)
        else:
            db.store.delete(key)
        if db.volatile:
            # ctdb_local_schedule_for_deletion / remove_from_delete_queue
            if schedule:
                db.deleteQueue[key] = stored
            elif keep and db.deleteQueue:
                db.deleteQueue.pop(key, None)
        return stored

    # -- locking ----------------------------------------------------------------------

    def withLock(
        self, db: Database, key: bytes, fn: Callable[[], object], attempt: int = 0
    ) -> None:
        """Run C{fn} holding the record's chain lock; if a client holds it,
        try again shortly (the reactor never blocks on a record lock)."""
        if db.frozen and attempt < 1_000_000:
            self.daemon.reactor.callLater(0.01, self.withLock, db, key, fn, attempt + 1)
            return
        if not db.store.lockNonblock(key):
            db.stats.locks_num_pending += 1
            delay = min(0.0005 * (2 ** min(attempt, 6)), 0.05)
            self.daemon.reactor.callLater(delay, self._relock, db, key, fn, attempt + 1)
            return
        if attempt:
            # ctdbd counts only the locks that had to wait for its lock helper.
            db.stats.locks_num_calls += 1
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
        self, db: Database, key: bytes, fn: Callable[[], object], attempt: int
    ) -> None:
        db.stats.locks_num_pending = max(0, db.stats.locks_num_pending - 1)
        if db.db_id not in self.byId:
            return
        self.withLock(db, key, fn, attempt)

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

    def clientCall(self, client: IClientConnection, pkt: P.ReqCall) -> None:
        """daemon_request_call_from_client."""
        db = self.byId.get(pkt.db_id)
        if db is None:
            header = P.Header(
                P.Operation.REPLY_CALL, pkt.header.srcnode, self.pnn, pkt.header.reqid
            )
            self.log.error(
                "Unknown database in request. db_id==0x{db_id:08x}", db_id=pkt.db_id
            )
            self.daemon.sendToClient(client, P.ReplyCall(header, -1, b""))
            return
        if not pkt.key:
            header = P.Header(
                P.Operation.REPLY_CALL, pkt.header.srcnode, self.pnn, pkt.header.reqid
            )
            self.daemon.sendToClient(client, P.ReplyCall(header, -1, b""))
            return
        calls = self.daemon.stats.calls
        calls["total_calls"] += 1
        calls["pending_calls"] += 1
        self.withLock(db, pkt.key, lambda: self._clientCallLocked(db, client, pkt))

    def _clientCallLocked(
        self, db: Database, client: IClientConnection, pkt: P.ReqCall
    ) -> None:
        key = pkt.key
        calls = self.daemon.stats.calls
        header, data = self.fetch(db, key)
        flags = pkt.flags
        # Don't do READONLY if we don't have a tracking database.
        if flags & P.CTDB_WANT_READONLY and not db.readonly:
            flags &= ~P.CTDB_WANT_READONLY
        header = self._revokeComplete(db, key, header, data)

        def again() -> None:
            if self.daemon.clients.get(client.client_id) is client:
                self.clientCall(client, pkt)

        if header.flags & CTDB_REC_RO_REVOKING_READONLY:
            # A revoke is under way: wait for it.
            calls["pending_calls"] = max(0, calls["pending_calls"] - 1)
            self._deferForRevoke(db, key, bool(flags & P.CTDB_WANT_READONLY), again)
            return
        if (
            header.dmaster == self.pnn
            and not flags & P.CTDB_WANT_READONLY
            and header.flags
            & (CTDB_REC_RO_HAVE_DELEGATIONS | CTDB_REC_RO_HAVE_READONLY)
        ):
            # A write to a record with read-only copies out: revoke them first.
            calls["pending_calls"] = max(0, calls["pending_calls"] - 1)
            self._revoke(db, key, header, data)
            self._deferForRevoke(db, key, False, again)
            return
        callid = pkt.callid
        if flags & P.CTDB_WANT_READONLY:
            # Ask for the record with its header, to store the read-only
            # copy; the reply is cut back to what the client asked for.
            callid = P.CTDB_FETCH_WITH_HEADER_FUNC
        pending = _PendingCall(
            db,
            key,
            pkt.callid,
            flags,
            pkt.calldata,
            client,
            pkt.header.reqid,
            pkt.header.srcnode,
            sentCallid=callid,
        )
        if header.dmaster == self.pnn:
            status, reply = self.callLocal(db, key, callid, header, data)
            self._finish(pending, status, reply)
            return
        reqid = self.daemon.nextReqid()
        self._calls[reqid] = pending
        hdr = P.Header(
            P.Operation.REQ_CALL,
            header.dmaster,
            self.pnn,
            reqid,
            self.daemon.vnnMap.generation,
        )
        self.daemon.queuePacket(
            P.ReqCall(hdr, flags, db.db_id, callid, 0, key, pkt.calldata)
        )

    def migrateRecord(
        self, db: Database, key: bytes, flags: int
    ) -> defer.Deferred[int]:
        """Migrate a record here with a NULL_FUNC call, as a client's
        ctdb_call_send would (the vacuum fetch: fetch_queue_traverse);
        fires with the call's status."""
        done: defer.Deferred[int] = defer.Deferred()

        def run() -> None:
            header, data = self.fetch(db, key)
            pending = _PendingCall(
                db,
                key,
                P.CTDB_NULL_FUNC,
                flags,
                b"",
                None,
                0,
                self.pnn,
                onDone=done.callback,
            )
            self.daemon.stats.calls["pending_calls"] += 1
            if header.dmaster == self.pnn:
                status, _ = self.callLocal(db, key, P.CTDB_NULL_FUNC, header, data)
                self._finish(pending, status, b"")
                return
            reqid = self.daemon.nextReqid()
            self._calls[reqid] = pending
            hdr = P.Header(
                P.Operation.REQ_CALL,
                header.dmaster,
                self.pnn,
                reqid,
                self.daemon.vnnMap.generation,
            )
            self.daemon.queuePacket(
                P.ReqCall(hdr, flags, db.db_id, P.CTDB_NULL_FUNC, 0, key, b"")
            )

        self.withLock(db, key, run)
        return done

    def callLocal(
        self, db: Database, key: bytes, callid: int, header: LtdbHeader, data: bytes
    ) -> tuple[int, bytes]:
        """ctdb_call_local with updatetdb: run a built-in function, then
        write the record back (the caller holds the lock), which as
        ctdb_ltdb_store_server bumps the rsn of a record we are dmaster of."""
        if callid == P.CTDB_NULL_FUNC:
            reply = b""
        elif callid == P.CTDB_FETCH_FUNC:
            reply = data
        elif callid == P.CTDB_FETCH_WITH_HEADER_FUNC:
            reply = header.encode() + data
        else:
            return -1, b""
        self.storeRecord(db, key, header, data)
        return 0, reply

    def _finish(self, pending: _PendingCall, status: int, data: bytes) -> None:
        stats = self.daemon.stats
        stats.calls["pending_calls"] = max(0, stats.calls["pending_calls"] - 1)
        if pending.onDone is not None:
            # after the record's lock is released
            self.daemon.reactor.callLater(0, pending.onDone, status)
        if pending.client is None:
            return
        if (
            pending.wireCallid == P.CTDB_FETCH_WITH_HEADER_FUNC
            and pending.callid == P.CTDB_FETCH_FUNC
        ):
            # daemon_call_from_client_callback: the client asked for a
            # plain FETCH that we turned into FETCH_WITH_HEADER.
            data = data[HEADER_SIZE:]
        header = P.Header(
            P.Operation.REPLY_CALL,
            pending.clientSrcnode,
            self.pnn,
            pending.clientReqid,
            self.daemon.vnnMap.generation,
        )
        reply = P.ReplyCall(header, status, data)
        if self._afterUnlock is not None:
            self._afterUnlock.append((pending.client, reply))
        else:
            self.daemon.sendToClient(pending.client, reply)

    def _replyCall(self, pkt: P.ReplyCall) -> None:
        """ctdb_reply_call: a read-only copy that comes back with its header
        is stored locally (if newer than ours) before the client hears."""
        pending = self._calls.pop(pkt.header.reqid, None)
        if pending is None:
            return
        if (
            pending.wireCallid != P.CTDB_FETCH_WITH_HEADER_FUNC
            or len(pkt.data) < HEADER_SIZE
        ):
            self._finish(pending, pkt.status, pkt.data)
            return
        roHeader = LtdbHeader.decode(pkt.data[:HEADER_SIZE])[0]
        if (
            not roHeader.flags & CTDB_REC_RO_HAVE_READONLY
            or pending.db.db_id not in self.byId
        ):
            self._finish(pending, pkt.status, pkt.data)
            return
        db = pending.db

        def run() -> None:
            old, _ = self.fetch(db, pending.key)
            if roHeader.rsn > old.rsn:
                self.storeRecord(db, pending.key, roHeader, pkt.data[HEADER_SIZE:])
            self._finish(pending, pkt.status, pkt.data)

        self.withLock(db, pending.key, run)

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

    def nodeCallPacket(self, pnn: int, pkt: P.Packet) -> None:
        op = pkt.header.operation
        if op == _OP_REQ_CALL:
            assert isinstance(pkt, P.ReqCall)
            self.requestCall(pkt)
        elif op == _OP_REQ_DMASTER:
            assert isinstance(pkt, P.ReqDmaster)
            self.requestDmaster(pkt)
        elif op == _OP_REPLY_DMASTER:
            assert isinstance(pkt, P.ReplyDmaster)
            self.replyDmaster(pkt)
        elif op == _OP_REPLY_CALL:
            assert isinstance(pkt, P.ReplyCall)
            self._replyCall(pkt)
        elif op == _OP_REPLY_ERROR:
            assert isinstance(pkt, P.ReplyError)
            pending = self._calls.pop(pkt.header.reqid, None)
            self.log.error(
                "REPLY_ERROR from node {pnn}: {msg}",
                pnn=pnn,
                msg=pkt.msg.decode(errors="replace"),
            )
            if pending is not None:
                self._finish(pending, -1, b"")

    def _unknownDatabase(self, hdr: P.Header, db_id: int) -> None:
        """A call packet for a database this node has not attached."""
        if self.daemon.recmode == C.CTDB_RECOVERY_ACTIVE:
            # A node that (re)joins attaches the database during the
            # recovery, after the new vnn map: the sender is in the same
            # recovery and resends its calls when it ends.
            self.log.debug(
                "dropping a call for db 0x{db_id:08x} during recovery", db_id=db_id
            )
            return
        self._error(hdr, f"Unknown database in request. db_id==0x{db_id:08x}")

    def requestCall(self, c: P.ReqCall) -> None:
        """ctdb_request_call."""
        db = self.byId.get(c.db_id)
        if db is None:
            self._unknownDatabase(c.header, c.db_id)
            return
        if not c.key:
            self._error(c.header, "empty key in request")
            return
        # A pinned-down sticky record waits until the pindown is over.
        if db.isSticky and self._deferPinnedDown(
            db, c.key, lambda: self.requestCall(c)
        ):
            self.log.warn("Defer request for pinned down record in {db}", db=db.name)
            return

        def run() -> None:
            if self._current(c, "REQ_CALL"):
                self._requestCallLocked(db, c)

        self.withLock(db, c.key, run)

    def _current(self, pkt: P.Packet, what: str) -> bool:
        """lock_fetch_callback: a node's packet that waited for a record
        lock (a client held it, or a recovery froze the database) while the
        generation changed is discarded.  The recovery rebuilt the record
        from every node's copy meanwhile, and a stale REPLY_DMASTER applied
        now would make this node dmaster next to the one the recovery chose
        (or bring back old data); a stale REQ_CALL's sender resends it."""
        if pkt.header.generation == self.daemon.vnnMap.generation:
            return True
        self.log.info(
            "Discarding previous generation lockwait packet ({what} from node {src})",
            what=what,
            src=pkt.header.srcnode,
        )
        return False

    def _requestCallLocked(self, db: Database, c: P.ReqCall) -> None:
        key = c.key
        header, data = self.fetch(db, key)
        flags = c.flags
        # Don't do READONLY if we don't have a tracking database.
        if flags & P.CTDB_WANT_READONLY and not db.readonly:
            flags &= ~P.CTDB_WANT_READONLY
        header = self._revokeComplete(db, key, header, data)
        if header.flags & CTDB_REC_RO_REVOKING_READONLY:
            self._deferForRevoke(
                db, key, bool(flags & P.CTDB_WANT_READONLY), lambda: self.requestCall(c)
            )
            return
        if (
            header.dmaster != self.pnn
            and not header.flags & CTDB_REC_RO_HAVE_DELEGATIONS
        ):
            self._redirect(db, c, header)
            return
        if not flags & P.CTDB_WANT_READONLY and header.flags & (
            CTDB_REC_RO_HAVE_DELEGATIONS | CTDB_REC_RO_HAVE_READONLY
        ):
            self._revoke(db, key, header, data)
            self._deferForRevoke(db, key, False, lambda: self.requestCall(c))
            return
        if flags & P.CTDB_WANT_READONLY and c.callid == P.CTDB_FETCH_WITH_HEADER_FUNC:
            self._delegate(db, c, header, data)
            return
        stats = self.daemon.stats
        stats.calls["max_hop_count"] = max(stats.calls["max_hop_count"], c.hopcount)
        bucket = min(c.hopcount.bit_length(), C.MAX_COUNT_BUCKETS - 1)
        stats.hop_count_bucket[bucket] += 1
        db.stats.noteHopcount(c.hopcount)
        # A record that needed many hops is hot: make it sticky.
        if db.isSticky and c.hopcount >= self.daemon.tunables.HopcountMakeSticky:
            self._makeSticky(db, key)
        if c.header.srcnode != self.pnn:
            if db.commitActive:
                self.log.info(
                    "refusing migration of a record of {db} during commit", db=db.name
                )
                return
            self.sendDmaster(db, c, header, data)
            return
        status, reply = self.callLocal(db, key, c.callid, header, data)
        hdr = P.Header(
            P.Operation.REPLY_CALL,
            c.header.srcnode,
            self.pnn,
            c.header.reqid,
            self.daemon.vnnMap.generation,
        )
        self.daemon.queuePacket(P.ReplyCall(hdr, status, reply))

    def _redirect(self, db: Database, c: P.ReqCall, header: LtdbHeader) -> None:
        """ctdb_call_send_redirect: to the lmaster, or from the lmaster to
        the dmaster it knows."""
        lmaster = self.lmaster(c.key)
        dest = header.dmaster if lmaster == self.pnn else lmaster
        if dest == self.pnn:
            # We are lmaster and think we are not dmaster but the record
            # says so: protocol confusion; answer an error rather than loop.
            self._error(c.header, "record has no reachable dmaster")
            return
        hop = c.hopcount + 1
        if hop % 100 > 95:
            self.log.warn("High hopcount {hop} dbid:{db}", hop=hop, db=db.name)
        self.daemon.queuePacket(
            P.ReqCall(
                c.header.__class__(
                    c.header.operation,
                    dest,
                    c.header.srcnode,
                    c.header.reqid,
                    c.header.generation,
                ),
                c.flags,
                c.db_id,
                c.callid,
                hop,
                c.key,
                c.calldata,
            )
        )

    def _delegate(
        self, db: Database, c: P.ReqCall, header: LtdbHeader, data: bytes
    ) -> None:
        """Grant a read-only delegation: the first one bumps our rsn by 3 and
        sets HAVE_DELEGATIONS; the requester is remembered in the tracking
        db and gets a copy with rsn-2 flagged HAVE_READONLY."""
        key = c.key
        if not header.flags & CTDB_REC_RO_HAVE_DELEGATIONS:
            header = LtdbHeader(
                header.rsn + 3,
                header.dmaster,
                0,
                header.flags | CTDB_REC_RO_HAVE_DELEGATIONS,
            )
            header = self.storeRecord(db, key, header, data)
        if db.rotdb is not None:
            db.rotdb.store(
                key, trackingAdd(db.rotdb.fetch(key) or b"", c.header.srcnode)
            )
        roHeader = LtdbHeader(
            header.rsn - 2,
            header.dmaster,
            0,
            (header.flags | CTDB_REC_RO_HAVE_READONLY) & ~CTDB_REC_RO_HAVE_DELEGATIONS,
        )
        hdr = P.Header(
            P.Operation.REPLY_CALL,
            c.header.srcnode,
            self.pnn,
            c.header.reqid,
            self.daemon.vnnMap.generation,
        )
        self.daemon.queuePacket(P.ReplyCall(hdr, 0, roHeader.encode() + data))
        self.daemon.stats.total_ro_delegations += 1
        db.stats.db_ro_delegations += 1

    def sendDmaster(
        self, db: Database, c: P.ReqCall, header: LtdbHeader, data: bytes
    ) -> None:
        """ctdb_call_send_dmaster: hand the record to the requester."""
        flags = header.flags
        if data:
            flags |= CTDB_REC_FLAG_MIGRATED_WITH_DATA
        lmaster = self.lmaster(c.key)
        newDmaster = c.header.srcnode
        if lmaster == self.pnn:
            self.sendDmasterReply(
                db,
                LtdbHeader(header.rsn, header.dmaster, 0, flags),
                c.key,
                data,
                newDmaster,
                c.header.reqid,
            )
            return
        hdr = P.Header(
            P.Operation.REQ_DMASTER,
            lmaster,
            self.pnn,
            c.header.reqid,
            self.daemon.vnnMap.generation,
        )
        self.daemon.queuePacket(
            P.ReqDmaster(hdr, db.db_id, header.rsn, newDmaster, c.key, data, flags)
        )
        self.storeRecord(db, c.key, LtdbHeader(header.rsn, newDmaster, 0, flags), data)

    def sendDmasterReply(
        self,
        db: Database,
        header: LtdbHeader,
        key: bytes,
        data: bytes,
        newDmaster: int,
        reqid: int,
    ) -> None:
        """ctdb_send_dmaster_reply (we are the lmaster)."""
        stored = self.storeRecord(
            db, key, LtdbHeader(header.rsn, newDmaster, 0, header.flags), data
        )
        hdr = P.Header(
            P.Operation.REPLY_DMASTER,
            newDmaster,
            self.pnn,
            reqid,
            self.daemon.vnnMap.generation,
        )
        self.daemon.queuePacket(
            P.ReplyDmaster(hdr, db.db_id, stored.rsn, key, data, stored.flags)
        )

    def requestDmaster(self, c: P.ReqDmaster) -> None:
        """ctdb_request_dmaster (we are the lmaster)."""
        db = self.byId.get(c.db_id)
        if db is None:
            self._unknownDatabase(c.header, c.db_id)
            return

        def run() -> None:
            if not self._current(c, "REQ_DMASTER"):
                return
            header, _ = self.fetch(db, c.key)
            if self.lmaster(c.key) != self.pnn:
                self.log.error("REQ_DMASTER to non-lmaster for db {db}", db=db.name)
                return
            if header.dmaster != c.header.srcnode:
                self.log.warn(
                    "dmaster request from non-master: node {src}, dmaster {dm}, db {db}",
                    src=c.header.srcnode,
                    dm=header.dmaster,
                    db=db.name,
                )
                if header.rsn != 0 or header.dmaster != self.pnn:
                    self.daemon.recmode = C.CTDB_RECOVERY_ACTIVE
                    return
            newHeader = LtdbHeader(c.rsn, header.dmaster, 0, c.record_flags)
            if c.dmaster == self.pnn:
                self.becomeDmaster(
                    db, c.header.reqid, c.key, c.data, c.rsn, c.record_flags
                )
            else:
                self.sendDmasterReply(
                    db, newHeader, c.key, c.data, c.dmaster, c.header.reqid
                )

        self.withLock(db, c.key, run)

    def replyDmaster(self, c: P.ReplyDmaster) -> None:
        db = self.byId.get(c.db_id)
        if db is None:
            self.log.error("REPLY_DMASTER for unknown db 0x{db_id:08x}", db_id=c.db_id)
            return

        def run() -> None:
            if self._current(c, "REPLY_DMASTER"):
                self.becomeDmaster(
                    db, c.header.reqid, c.key, c.data, c.rsn, c.record_flags
                )

        self.withLock(db, c.key, run)

    def becomeDmaster(
        self, db: Database, reqid: int, key: bytes, data: bytes, rsn: int, flags: int
    ) -> None:
        """ctdb_become_dmaster: store the record as ours, finish the call."""
        pending = self._calls.get(reqid)
        if pending is not None and pending.flags & P.CTDB_CALL_FLAG_VACUUM_MIGRATION:
            # Only for the store rules: an empty record never migrated
            # with data that a vacuum fetch brings to its lmaster is deleted.
            flags |= CTDB_REC_FLAG_VACUUM_MIGRATED
        header = self.storeRecord(db, key, LtdbHeader(rsn, self.pnn, 0, flags), data)
        # A sticky record that just arrived stays here for a while.
        if db.isSticky:
            self._setPindown(db, key)
        pending = self._calls.get(reqid)
        if pending is None or pending.key != key or pending.db is not db:
            return
        del self._calls[reqid]
        self._noteMigration(db, key)
        status, reply = self.callLocal(db, key, pending.wireCallid, header, data)
        self._finish(pending, status, reply)

    def _noteMigration(self, db: Database, key: bytes) -> None:
        """hash_count_increment(migratedb): count the migrations of a key to
        us within one second; the counts feed the db's hot keys."""
        now = self.daemon.reactor.seconds()
        previous = db.migrations.get(key)
        if previous is not None and now < previous[1] + 1.0:
            count, since = previous[0] + 1, previous[1]
        else:
            count, since = 1, now
        if len(db.migrations) > 10000:
            # ctdb_migration_cleandb_event: forget the expired counters
            db.migrations = {k: v for k, v in db.migrations.items() if now < v[1] + 1.0}
        db.migrations[key] = (count, since)
        updateHotKeys(db.stats.hot_keys, key, count)

    def recoveryFinished(self) -> None:
        """ctdb_call_resend_all: calls in flight when the cluster changed are
        sent again under the new generation, so none is lost; and attaches
        that waited for the recovery run."""
        self.processDeferredAttaches()
        pending, self._calls = self._calls, {}
        for pending_call in pending.values():
            self._resend(pending_call)

    def _resend(self, pending: _PendingCall) -> None:
        db = pending.db
        if db.db_id not in self.byId:
            self._finish(pending, -1, b"")
            return

        def run() -> None:
            header, data = self.fetch(db, pending.key)
            if header.dmaster == self.pnn and not header.flags & CTDB_REC_RO_FLAGS:
                status, reply = self.callLocal(
                    db, pending.key, pending.wireCallid, header, data
                )
                self._finish(pending, status, reply)
                return
            reqid = self.daemon.nextReqid()
            self._calls[reqid] = pending
            hdr = P.Header(
                P.Operation.REQ_CALL,
                header.dmaster,
                self.pnn,
                reqid,
                self.daemon.vnnMap.generation,
            )
            self.daemon.queuePacket(
                P.ReqCall(
                    hdr,
                    pending.flags,
                    db.db_id,
                    pending.wireCallid,
                    0,
                    pending.key,
                    pending.calldata,
                )
            )

        self.withLock(db, pending.key, run)

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

    # -- traverse -----------------------------------------------------------------------

    def control_TRAVERSE_START_EXT(
        self, req: P.ReqControl, client: IClientConnection | None
    ) -> ControlResult:
        start = R.TraverseStartExt.decode(req.data)
        return self._startTraverse(
            start.db_id, start.reqid, start.srvid, start.withemptyrecords, client
        )

    def control_TRAVERSE_START(
        self, req: P.ReqControl, client: IClientConnection | None
    ) -> ControlResult:
        start = R.TraverseStart.decode(req.data)
        return self._startTraverse(start.db_id, start.reqid, start.srvid, False, client)

    def _startTraverse(
        self,
        db_id: int,
        clientReqid: int,
        srvid: int,
        withEmpty: bool,
        client: IClientConnection | None,
    ) -> ControlResult:
        db = self.byId.get(db_id)
        if db is None:
            return (-1, b"", b"Unknown database")
        self.traverseAll(db, clientReqid, srvid, withEmpty, client=client)
        return (0, b"", b"")

    def traverseAll(
        self,
        db: Database,
        clientReqid: int,
        srvid: int,
        withEmpty: bool,
        *,
        client: IClientConnection | None = None,
        onRecord: Callable[[R.RecData], None] | None = None,
    ) -> defer.Deferred[int]:
        """ctdb_daemon_traverse_all: every active node (volatile) or one node
        (persistent) sends us its records; each goes to the client's srvid."""
        reqid = self.daemon.nextReqid()
        if db.volatile:
            # CTDB_BROADCAST_ACTIVE in ctdbd: every node that is not
            # inactive, in the vnn map (lmaster) or not.
            dests = self.daemon.activeLmasters() or [self.pnn]
            dest = -1
        else:
            dest = (
                self.pnn
                if self.pnn in self.daemon.vnnMap.map or not self.daemon.vnnMap.map
                else self.daemon.vnnMap.map[0]
            )
            dests = [dest]
        expected = len(
            [d for d in dests if d == self.pnn or self.daemon.isConnected(d)]
        )
        done: defer.Deferred[int] = defer.Deferred()
        trav = _Traverse(
            db, client, clientReqid, srvid, expected, onRecord=onRecord, done=done
        )
        self._traverses[reqid] = trav
        trav.timer = self.daemon.reactor.callLater(
            self.daemon.tunables.TraverseTimeout, self._traverseTimeout, reqid
        )
        payload = R.TraverseAll(
            db.db_id, reqid, self.pnn, clientReqid, srvid, withEmpty
        ).encode(ext=True)
        for pnn in dests if dest == -1 else [dest]:
            if pnn == self.pnn or self.daemon.isConnected(pnn):
                self.daemon.sendControl(
                    pnn,
                    Control.TRAVERSE_ALL_EXT,
                    payload,
                    flags=P.CTDB_CTRL_FLAG_NOREPLY,
                )
        return done

    def _traverseTimeout(self, reqid: int) -> None:
        trav = self._traverses.pop(reqid, None)
        if trav is not None:
            self.daemon.stats.bump("timeouts.traverse")
            self.log.error("traverse of {db} timed out", db=trav.db.name)
            self._traverseEnd(trav)

    def _traverseEnd(self, trav: _Traverse) -> None:
        if trav.timer is not None and trav.timer.active():
            trav.timer.cancel()
        if trav.client is not None:
            self._toClient(trav, R.RecData(trav.clientReqid, b"", b""))
        if trav.done is not None and not trav.done.called:
            trav.done.callback(trav.records)

    def _toClient(self, trav: _Traverse, rec: R.RecData) -> None:
        if trav.client is None:
            return
        header = P.Header(
            P.Operation.REQ_MESSAGE,
            trav.client.client_id,
            self.pnn,
            0,
            self.daemon.vnnMap.generation,
        )
        self.daemon.sendToClient(
            trav.client, P.ReqMessage(header, trav.srvid, rec.encode())
        )

    def _traverseAllControl(self, req: P.ReqControl) -> Any:
        t = R.TraverseAll.decode(req.data)
        db = self.byId.get(t.db_id)
        if db is None:
            return (-1, b"", b"Unknown database")
        items = self.readAll(db)
        if isinstance(items, defer.Deferred):
            return items.addCallback(lambda got: self._traversed(db, t, got))
        return self._traversed(db, t, items)

    def _traversed(
        self, db: Database, t: R.TraverseAll, items: list[tuple[bytes, bytes]]
    ) -> ControlResult:
        sent = 0
        for key, value in items:
            header, data = splitValue(value)
            if header is None:
                continue
            if db.volatile:
                if not t.withemptyrecords and not data:
                    continue
                if header.dmaster != self.pnn:
                    continue
            rec = R.RecData(t.reqid, key, value)
            self.daemon.sendControl(
                t.pnn,
                Control.TRAVERSE_DATA,
                rec.encode(),
                flags=P.CTDB_CTRL_FLAG_NOREPLY,
            )
            sent += 1
        self.daemon.sendControl(
            t.pnn,
            Control.TRAVERSE_DATA,
            R.RecData(t.reqid, b"", b"").encode(),
            flags=P.CTDB_CTRL_FLAG_NOREPLY,
        )
        return (0, b"", b"")

    def control_TRAVERSE_ALL_EXT(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        return self._traverseAllControl(req)

    def control_TRAVERSE_ALL(self, req: P.ReqControl, client: object) -> ControlResult:
        return self._traverseAllControl(req)

    def control_TRAVERSE_DATA(self, req: P.ReqControl, client: object) -> ControlResult:
        rec, _ = R.RecData.decode(req.data)
        trav = self._traverses.get(rec.reqid)
        if trav is None:
            return (-1, b"", b"Unknown traverse")
        if not rec.key and not rec.data:
            trav.ends += 1
            if trav.ends >= trav.expected:
                del self._traverses[rec.reqid]
                self._traverseEnd(trav)
            return (0, b"", b"")
        trav.records += 1
        if trav.onRecord is not None:
            trav.onRecord(rec)
        self._toClient(trav, R.RecData(trav.clientReqid, rec.key, rec.data))
        return (0, b"", b"")

    def control_TRAVERSE_KILL(self, req: P.ReqControl, client: object) -> ControlResult:
        start = R.TraverseStart.decode(req.data)
        for reqid, trav in list(self._traverses.items()):
            if trav.clientReqid == start.reqid and trav.srvid == start.srvid:
                del self._traverses[reqid]
                if trav.timer is not None and trav.timer.active():
                    trav.timer.cancel()
        return (0, b"", b"")

    # -- persistent and replicated commits -------------------------------------------

    def control_TRANS3_COMMIT(
        self, req: P.ReqControl, client: IClientConnection | None
    ) -> ControlResult | defer.Deferred[ControlResult]:
        """ctdb_control_trans3_commit: UPDATE_RECORD to every active node of
        the vnn map; answered 0 once all of them applied it.  If one fails,
        recovery mode becomes active and the answer waits for the end of
        the recovery (L{finishTrans3Commits}, status 2): only then does the
        client's seqnum check see what the recovery kept, and only then does
        it release the transaction's g_lock.  (Answering at once let the
        next holder read its node's copy before the recovery brought the
        commit there, and its commit, resent after the recovery, passed the
        rsn check with equal data: one increment lost, nothing reported.)"""
        if self.daemon.recmode != C.CTDB_RECOVERY_NORMAL:
            return (-1, b"", b"recovery active")
        buf = R.RecBuffer.decode(req.data)
        db = self.byId.get(buf.db_id)
        if db is None:
            return (-1, b"", b"Unknown database")
        if db.volatile:
            return (-1, b"", b"TRANS3_COMMIT on a volatile database")
        if db.commitActive:
            return (-1, b"", b"a transaction commit is already active")
        targets = [
            p
            for p in self.daemon.vnnMap.map
            if not self.daemon.nodes[p].flags & C.NODE_FLAGS_INACTIVE
        ] or [self.pnn]
        state = _Trans3Commit(db, defer.Deferred(), len(targets))
        db.commitActive = True
        self._trans3[db.db_id] = state
        state.timer = self.daemon.reactor.callLater(
            self.daemon.tunables.ControlTimeout, self._trans3Timeout, state
        )
        for p in targets:
            self.daemon.sendControl(p, Control.UPDATE_RECORD, req.data).addCallback(
                self._trans3ReplyFor(state)
            )
        return state.done

    def _trans3ReplyFor(self, state: _Trans3Commit) -> Callable[[P.ReplyControl], None]:
        return lambda reply: self._trans3Reply(state, reply)

    def _trans3Reply(self, state: _Trans3Commit, reply: P.ReplyControl) -> None:
        """ctdb_persistent_callback."""
        if self._trans3.get(state.db.db_id) is not state:
            return
        if self.daemon.recmode != C.CTDB_RECOVERY_NORMAL:
            # the end of the recovery answers
            return
        if reply.status != 0:
            self.log.error(
                "UPDATE_RECORD of {db} failed: {err}; recovery needed",
                db=state.db.name,
                err=reply.errmsg.decode(errors="replace"),
            )
            self.daemon.recmode = C.CTDB_RECOVERY_ACTIVE
            return
        state.pending -= 1
        if state.pending == 0:
            self._trans3Finish(state, 0, b"")

    def _trans3Timeout(self, state: _Trans3Commit) -> None:
        """ctdb_persistent_store_timeout: ignored during a recovery."""
        state.timer = None
        if self.daemon.recmode != C.CTDB_RECOVERY_NORMAL:
            return
        self._trans3Finish(state, 1, b"timeout in ctdb_persistent_state")

    def _trans3Finish(self, state: _Trans3Commit, status: int, errmsg: bytes) -> None:
        if self._trans3.get(state.db.db_id) is state:
            del self._trans3[state.db.db_id]
        state.db.commitActive = False
        if state.timer is not None and state.timer.active():
            state.timer.cancel()
        state.timer = None
        if not state.done.called:
            state.done.callback((status, b"", errmsg))

    def finishTrans3Commits(self) -> None:
        """ctdb_persistent_finish_trans3_commits, at END_RECOVERY: every
        commit still waiting is answered 2; the client then reads the
        sequence number the recovery left."""
        if self.daemon.recmode != C.CTDB_RECOVERY_NORMAL:
            return
        for state in list(self._trans3.values()):
            self._trans3Finish(state, 2, b"trans3 commit ended by recovery")

    def control_UPDATE_RECORD(self, req: P.ReqControl, client: object) -> Any:
        if self.daemon.recmode != C.CTDB_RECOVERY_NORMAL:
            return (-1, b"", b"recovery active")
        buf = R.RecBuffer.decode(req.data)
        db = self.byId.get(buf.db_id)
        if db is None:
            return (-1, b"", b"Unknown database")
        if db.health:
            return (-1, b"", f"db unhealthy: {db.health}".encode())
        store = db.store
        if db.transactionId is not None:
            return (-1, b"", b"database is being recovered")
        generation = self.daemon.vnnMap.generation
        return self.whenUnlocked(
            db,
            store.transactionStartNonblock,
            lambda: self._updateRecords(db, buf, generation),
            "update record",
        )

    def _updateRecords(
        self, db: Database, buf: R.RecBuffer, generation: int | None = None
    ) -> ControlResult:
        """Apply a commit's records inside the transaction just started.
        An update that waited for a client's record lock while a recovery
        started (or ran) is refused: applied after the recovery's pull it
        would exist on this node only."""
        store = db.store
        if generation is not None and (
            self.daemon.recmode != C.CTDB_RECOVERY_NORMAL
            or self.daemon.vnnMap.generation != generation
        ):
            store.transactionCancel()
            return (-1, b"", b"recovery started during update record")
        try:
            for rec in buf.records:
                header, data = splitValue(rec.data)
                if header is None:
                    raise MalformedPacket("record without ltdb header")
                old, olddata = splitValue(store.fetch(rec.key))
                if old is not None and old.rsn >= header.rsn and olddata != data:
                    raise ValueError(
                        f"rsn regression for a record of {db.name}: {old.rsn} >= {header.rsn}"
                    )
                self.storeRecord(db, rec.key, header, data)
        except Exception as e:  # noqa: BLE001 - a record operation must never crash the daemon
            store.transactionCancel()
            self.log.error(
                "UPDATE_RECORD on {db} failed: {err}", db=db.name, err=str(e)
            )
            return (-1, b"", str(e).encode())
        store.transactionCommit()
        return (0, b"", b"")
