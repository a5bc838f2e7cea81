# -*- test-case-name: tests.databases.test_manager -*-
"""
The data of the databases subsystem: an attached database and the
in-flight operations on it, and the pure helpers they use.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall

from ctdb.database.ltdb import (
    LtdbHeader,
)
from ctdb.interfaces import (
    IClientConnection,
    IRecordStore,
)
from ctdb.protocols import packet as P
from ctdb.protocols import records as R

if TYPE_CHECKING:
    from ctdb.daemon.core import ControlResult

DB_SEQNUM_KEY = b"__db_sequence_number__\0"


def seqnumValue(data: bytes) -> int:
    """The value of a persistent database's sequence number record (its
    data: a little-endian uint64), 0 for an absent or malformed one."""
    return int.from_bytes(data, "little") if len(data) == 8 else 0


MAX_DB_NAME = 255  # ctdbd refuses names that do not fit a path component


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
    #: the generation this node's copy belongs to (ctdb_db->generation):
    #: the vnn map's at attach, the recovery's once a recovery committed
    #: it, INVALID_GENERATION once the node became inactive.  The node
    #: leaves recovery mode only while every database's is the vnn map's.
    generation: int = P.INVALID_GENERATION
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
    #: migrations of each key to us in the current 1 s window (migratedb):
    #: key -> (count, window start), oldest window first (see
    #: RecordMigration._noteMigration)
    migrations: OrderedDict[bytes, tuple[int, float]] = field(
        default_factory=OrderedDict
    )
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
    #: when a client's call was set going with its record locked (ctdbd's
    #: daemon_call_state start_time, for call_latency); None for the
    #: daemon's own calls, which ctdbd does not count either
    started: float | None = None

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
