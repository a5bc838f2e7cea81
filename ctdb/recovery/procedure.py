# -*- test-case-name: tests.recovery.test_procedure -*-
"""
The database recovery procedure, as ctdb_recovery_helper.c runs it, over
the daemon's control channel: recovery mode active, new vnn map and
generation, then for every database freeze, transaction start, pull and
merge by RSN (volatile) or take the highest sequence number (persistent and
replicated), wipe, push, commit and thaw; then recovery mode normal.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from ctdb.database.ltdb import (
    CTDB_REC_FLAG_MIGRATED_WITH_DATA,
    LTDB_HEADER_SIZE,
    LtdbHeader,
    splitValue,
)
from ctdb.errors import RecoveryFailed
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control
from ctdb.protocols.srvids import CTDB_SRVID_RECOVERY

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon

_log = Logger(namespace="ctdb.recovery.procedure")
_srvids = itertools.count(1)


@dataclass
class _Merged:
    header: LtdbHeader
    value: bytes  # header + data as pulled


async def _control(
    daemon: Daemon,
    pnn: int,
    opcode: int,
    data: bytes = b"",
    flags: int = 0,
    timeout: float | None = None,
) -> P.ReplyControl:
    reply = await daemon.sendControl(pnn, opcode, data, flags=flags, timeout=timeout)
    if reply.status != 0 and opcode not in (Control.GET_RECMODE, Control.GET_PNN):
        raise RecoveryFailed(
            f"control {C.controlName(opcode)} failed on node {pnn}: "
            f"{reply.errmsg.decode(errors='replace')}",
            culprit=pnn,
        )
    return reply


async def _all(
    daemon: Daemon,
    nodes: list[int],
    opcode: int,
    data: bytes = b"",
    flags: int = 0,
    timeout: float | None = None,
) -> dict[int, P.ReplyControl]:
    replies = await defer.gatherResults(
        [
            defer.Deferred.fromCoroutine(
                _control(daemon, p, opcode, data, flags, timeout)
            )
            for p in nodes
        ],
        consumeErrors=True,
    )
    return dict(zip(nodes, replies))


def _firstError(f: Failure) -> Failure:
    if isinstance(f.value, defer.FirstError):
        return f.value.subFailure
    return f


async def recover(daemon: Daemon, generation: int) -> None:
    """Run one recovery from this (leader) node.  Raises L{RecoveryFailed}."""
    try:
        await _recover(daemon, generation)
    except defer.FirstError as e:
        # gatherResults nests: databases in parallel, each over all nodes.
        error: BaseException = e
        while isinstance(error, defer.FirstError):
            error = error.subFailure.value
        raise error from None


async def _recover(daemon: Daemon, generation: int) -> None:
    pnn = daemon.pnn
    clock = daemon.reactor
    started = clock.seconds()
    oldGeneration = daemon.vnnMap.generation
    timeout = float(daemon.tunables.RecoverTimeout)
    nodemap = daemon.nodeMap()
    active = [n.pnn for n in nodemap if not n.flags & C.NODE_FLAGS_INACTIVE]
    if pnn not in active:
        raise RecoveryFailed("the leader is not active")
    caps = await _all(daemon, active, Control.GET_CAPABILITIES, timeout=timeout)
    dbmaps = await _all(daemon, active, Control.GET_DBMAP, timeout=timeout)
    await _all(
        daemon,
        active,
        Control.SET_RECMODE,
        C.encodeU32(C.CTDB_RECOVERY_ACTIVE),
        timeout=timeout,
    )
    await _all(daemon, active, Control.START_RECOVERY, timeout=timeout)
    lmasters = [
        p for p in active if C.decodeU32(caps[p].data) & C.CTDB_CAP_LMASTER
    ] or [pnn]
    vnn = C.VnnMap(generation, tuple(lmasters))
    await _all(daemon, active, Control.SETVNNMAP, vnn.encode(), timeout=timeout)
    _log.info(
        "Recovery of {n} active nodes, generation 0x{gen:08x}: in recovery mode "
        "with the new vnn map after {elapsed:.3f} s",
        n=len(active),
        gen=generation,
        elapsed=round(clock.seconds() - started, 3),
        step="recovery-phase",
        phase="vnnmap",
        node=pnn,
        nodes=active,
        lmasters=list(lmasters),
        generation=generation,
    )

    # every database any node has, with its flags
    dbs: dict[int, int] = {}
    present: dict[int, set[int]] = {}
    for node, reply in dbmaps.items():
        for entry in R.decodeDbMap(reply.data):
            dbs[entry.db_id] = dbs.get(entry.db_id, 0) | entry.flags
            present.setdefault(entry.db_id, set()).add(node)
    waits = [
        defer.Deferred.fromCoroutine(
            _recoverDb(
                daemon, db_id, flags, present[db_id], active, generation, timeout
            )
        )
        for db_id, flags in dbs.items()
    ]
    counts: list[int] = []
    if waits:
        counts = await defer.gatherResults(waits, consumeErrors=True)
    await _all(
        daemon,
        active,
        Control.SET_RECMODE,
        C.encodeU32(C.CTDB_RECOVERY_NORMAL),
        timeout=timeout,
    )
    await _all(daemon, active, Control.END_RECOVERY, timeout=timeout)
    duration = clock.seconds() - started
    _log.info(
        "Recovery complete, generation 0x{gen:08x}: {databases} databases, "
        "{records} records, {n} active nodes in {duration:.3f} s",
        gen=generation,
        databases=len(counts),
        records=sum(counts),
        n=len(active),
        duration=round(duration, 3),
        step="recovery-finished",
        node=pnn,
        generation=generation,
        oldGeneration=oldGeneration,
        nodes=active,
    )


async def _recoverDb(
    daemon: Daemon,
    db_id: int,
    flags: int,
    present: set[int],
    active: list[int],
    generation: int,
    timeout: float,
) -> int:
    """Recover one database on the active nodes; returns how many records
    it holds now."""
    started = daemon.reactor.seconds()
    owner = next(iter(sorted(present)))
    name = C.decodeString(
        (
            await _control(
                daemon, owner, Control.GET_DBNAME, C.encodeU32(db_id), timeout=timeout
            )
        ).data
    )
    if flags & R.DB_FLAGS_PERSISTENT:
        attach = Control.DB_ATTACH_PERSISTENT
    elif flags & R.DB_FLAGS_REPLICATED:
        attach = Control.DB_ATTACH_REPLICATED
    else:
        attach = Control.DB_ATTACH
    missing = [p for p in active if p not in present]
    if missing:
        await _all(
            daemon,
            missing,
            attach,
            C.encodeString(name),
            flags=P.CTDB_CTRL_FLAG_ATTACH_RECOVERY,
            timeout=timeout,
        )
    dbid = C.encodeU32(db_id)
    transdb = R.encodeTransDb(db_id, generation)
    await _all(daemon, active, Control.DB_FREEZE, dbid, timeout=timeout)
    await _all(daemon, active, Control.DB_TRANSACTION_START, transdb, timeout=timeout)
    volatile = not flags & (R.DB_FLAGS_PERSISTENT | R.DB_FLAGS_REPLICATED)
    if volatile:
        merged = await _pullVolatile(daemon, db_id, active, timeout)
        leader = daemon.pnn
        records: list[tuple[bytes, bytes]] = []
        for n, (key, m) in enumerate(merged.items()):
            if n and not n % _TURN_RECORDS:
                await _turn(daemon)
            data = m.value[LTDB_HEADER_SIZE:]
            if not data:
                continue
            header = LtdbHeader(
                m.header.rsn,
                leader,
                0,
                m.header.flags | CTDB_REC_FLAG_MIGRATED_WITH_DATA,
            )
            records.append((key, header.encode() + data))
    else:
        seqnums = await _all(
            daemon,
            active,
            Control.GET_DB_SEQNUM,
            struct.pack("<II", db_id, 0),
            timeout=timeout,
        )
        best = max(active, key=lambda p: (C.decodeU64(seqnums[p].data), -p))
        pulled = await _pull(daemon, best, db_id, timeout)
        records = [(k, v) for k, v in pulled if len(v) > LTDB_HEADER_SIZE]
    await _all(daemon, active, Control.WIPE_DATABASE, transdb, timeout=timeout)
    srvid = CTDB_SRVID_RECOVERY | (next(_srvids) & 0xFFFFFFFF)
    await _all(
        daemon,
        active,
        Control.DB_PUSH_START,
        R.encodePulldbExt(db_id, P.CTDB_UNKNOWN_PNN, srvid),
        timeout=timeout,
    )
    packer = R.RecBufferPacker(db_id, daemon.tunables.RecBufferSizeLimit)
    for key, value in records:
        payload = packer.add(key, value)
        if payload is not None:
            _sendBuffer(daemon, active, srvid, payload)
            # This node stores its own copy of the buffer as it sends it:
            # let heartbeats and other packets through before the next one.
            await _turn(daemon)
    payload = packer.flush()
    if payload is not None:
        _sendBuffer(daemon, active, srvid, payload)
    confirms = await _all(
        daemon, active, Control.DB_PUSH_CONFIRM, dbid, timeout=timeout
    )
    for node, reply in confirms.items():
        count = C.decodeU32(reply.data)
        if count != len(records):
            raise RecoveryFailed(
                f"db {name}: node {node} confirmed {count} of {len(records)} records",
                culprit=node,
            )
    await _all(daemon, active, Control.DB_TRANSACTION_COMMIT, transdb, timeout=timeout)
    await _all(daemon, active, Control.DB_THAW, dbid, timeout=timeout)
    _log.info(
        "Recovered database {name} with {n} records in {duration:.3f} s",
        name=name,
        n=len(records),
        duration=round(daemon.reactor.seconds() - started, 3),
        step="recovery-phase",
        phase="database",
        node=daemon.pnn,
        db_id=db_id,
        generation=generation,
    )
    return len(records)


#: records merged between two turns of the event loop (tens of milliseconds)
_TURN_RECORDS = 20000


def _turn(daemon: Daemon) -> defer.Deferred[None]:
    """A turn of the event loop for everything else: a recovery of a large
    database must not hold the node's reactor for seconds (its heartbeats
    would stop and its peers declare it dead)."""
    return task.deferLater(daemon.reactor, 0, lambda: None)


def _sendBuffer(daemon: Daemon, nodes: list[int], srvid: int, payload: bytes) -> None:
    for node in nodes:
        daemon.sendMessage(node, srvid, payload)


async def _pull(
    daemon: Daemon, node: int, db_id: int, timeout: float
) -> list[tuple[bytes, bytes]]:
    """DB_PULL from one node: its rec_buffers arrive as messages first;
    its records as (key, header + data) pairs."""
    srvid = CTDB_SRVID_RECOVERY | (next(_srvids) & 0xFFFFFFFF)
    got: list[tuple[bytes, bytes]] = []

    def onBuffer(srvid: int, data: bytes) -> None:
        buf_db_id, items = R.decodeRecBufferItems(data)
        if buf_db_id == db_id:
            got.extend((key, value) for _reqid, key, value in items)

    daemon.addMessageHandler(srvid, onBuffer)
    try:
        reply = await _control(
            daemon,
            node,
            Control.DB_PULL,
            R.encodePulldbExt(db_id, P.CTDB_UNKNOWN_PNN, srvid),
            timeout=timeout,
        )
    finally:
        daemon.internalHandlers.pop(srvid, None)
    count = C.decodeU32(reply.data)
    if count != len(got):
        raise RecoveryFailed(
            f"pull from node {node}: {len(got)} of {count} records", culprit=node
        )
    return got


async def _pullVolatile(
    daemon: Daemon, db_id: int, nodes: list[int], timeout: float
) -> dict[bytes, _Merged]:
    pulls = await defer.gatherResults(
        [defer.Deferred.fromCoroutine(_pull(daemon, n, db_id, timeout)) for n in nodes],
        consumeErrors=True,
    )
    merged: dict[bytes, _Merged] = {}
    leader = daemon.pnn
    for records in pulls:
        for n, (key, value) in enumerate(records):
            if n and not n % _TURN_RECORDS:
                await _turn(daemon)
            header, _ = splitValue(value)
            if header is None:
                continue
            old = merged.get(key)
            # recdb_add_traverse (4.17, unchanged since the helper appeared in
            # 2015): the incoming copy is skipped if its rsn is lower, or if
            # the rsns are equal and the stored copy's dmaster is NOT this
            # (leader) node.  So on a tie the first copy pulled stays, unless
            # it names the leader as dmaster; then the next one replaces it.
            # (ctdbd before 4.3 did the opposite: it kept the leader's copy.)
            if old is not None and (
                header.rsn < old.header.rsn
                or (header.rsn == old.header.rsn and old.header.dmaster != leader)
            ):
                continue
            merged[key] = _Merged(header, value)
    return merged
