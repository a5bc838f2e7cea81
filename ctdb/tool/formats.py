# -*- test-case-name: tests.tool.test_formats -*-
"""
What Samba 4.17's C{ctdb} tool prints, byte for byte (C{ctdb/tools/ctdb.c}:
C{print_nodemap}, C{print_status}, C{print_statistics}, C{print_ip},
C{dump_record}, ...), as functions from the decoded control payloads to
text, with the machine-readable (C{-X}/C{-Y}) forms beside them, and the
same data as plain JSON-able values for C{--json}.

Pure: no I/O and no Twisted.  Times are printed in local time, as
C{ctime(3)} prints them.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ctdb.database.ltdb import (
    CTDB_REC_FLAG_AUTOMATIC,
    CTDB_REC_FLAG_MIGRATED_WITH_DATA,
    CTDB_REC_FLAG_VACUUM_MIGRATED,
    CTDB_REC_RO_HAVE_DELEGATIONS,
    CTDB_REC_RO_HAVE_READONLY,
    CTDB_REC_RO_REVOKE_COMPLETE,
    CTDB_REC_RO_REVOKING_READONLY,
    LtdbHeader,
)
from ctdb.errors import MalformedPacket
from ctdb.protocols import nodestate as N
from ctdb.protocols import records as R
from ctdb.protocols.basictypes import need
from ctdb.protocols.packet import CTDB_PROTOCOL, CTDB_UNKNOWN_PNN
from ctdb.protocols.publicips import Interface, PublicIP, PublicIPInfo
from ctdb.protocols.statistics import MAX_COUNT_BUCKETS, LatencyCounter, Statistics

#: the tool's own node flag: a node not yet known to be healthy
NODE_FLAGS_UNKNOWN = 0x40

_FLAG_NAMES = (
    (N.NODE_FLAGS_DISCONNECTED, "DISCONNECTED"),
    (NODE_FLAGS_UNKNOWN, "UNKNOWN"),
    (N.NODE_FLAGS_PERMANENTLY_DISABLED, "DISABLED"),
    (N.NODE_FLAGS_BANNED, "BANNED"),
    (N.NODE_FLAGS_UNHEALTHY, "UNHEALTHY"),
    (N.NODE_FLAGS_DELETED, "DELETED"),
    (N.NODE_FLAGS_STOPPED, "STOPPED"),
    (N.NODE_FLAGS_INACTIVE, "INACTIVE"),
)

#: INVALID_GENERATION
INVALID_GENERATION = 1


def prettyFlags(flags: int) -> str:
    """C{pretty_print_flags}: C{OK}, or the flags' names joined by C{|}."""
    names = [name for flag, name in _FLAG_NAMES if flags & flag]
    return "|".join(names) if names else "OK"


def flagNames(flags: int) -> list[str]:
    """The names of C{flags} (for JSON; C{[]} is OK)."""
    return [name for flag, name in _FLAG_NAMES if flags & flag]


def pnnText(pnn: int) -> str:
    """C{print_pnn}."""
    return "UNKNOWN\n" if pnn == CTDB_UNKNOWN_PNN else f"{pnn}\n"


def pnnJson(pnn: int) -> int | None:
    return None if pnn == CTDB_UNKNOWN_PNN else pnn


def ctime(seconds: int) -> str:
    """C{ctime(3)}: "Sun Dec  6 03:54:23 2026\\n" in local time."""
    return time.ctime(seconds) + "\n"


def _dhms(seconds: int) -> str:
    """C{(%03d %02d:%02d:%02d)} of a span in whole seconds (C's int
    arithmetic: truncation toward zero)."""

    def divmodC(a: int, b: int) -> tuple[int, int]:
        q = abs(a) // b * (1 if a >= 0 else -1)
        return q, a - q * b

    tmp, secs = divmodC(seconds, 60)
    tmp, mins = divmodC(tmp, 60)
    days, hours = divmodC(tmp, 24)
    return f"({days:03d} {hours:02d}:{mins:02d}:{secs:02d})"


# -- nodes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeLine:
    """One node as the tool shows it (after C{get_nodemap_unknown})."""

    pnn: int
    address: str
    flags: int
    #: healthy, but one of its interfaces is down (C{partially_online})
    partiallyOnline: bool = False


def nodemapText(nodes: Sequence[NodeLine], mypnn: int, header: bool) -> str:
    """C{print_nodemap}."""
    out = []
    if header:
        deleted = sum(1 for n in nodes if n.flags & N.NODE_FLAGS_DELETED)
        if deleted == 0:
            out.append(f"Number of nodes:{len(nodes)}\n")
        else:
            out.append(
                f"Number of nodes:{len(nodes)} (including {deleted} deleted nodes)\n"
            )
    for n in nodes:
        if n.flags & N.NODE_FLAGS_DELETED:
            continue
        state = "PARTIALLYONLINE" if n.partiallyOnline else prettyFlags(n.flags)
        this = " (THIS NODE)" if n.pnn == mypnn else ""
        out.append(f"pnn:{n.pnn} {n.address:<16} {state}{this}\n")
    return "".join(out)


def nodemapMachine(nodes: Sequence[NodeLine], mypnn: int, sep: str) -> str:
    """C{print_nodemap_machine}."""
    columns = (
        "Node",
        "IP",
        "Disconnected",
        "Unknown",
        "Banned",
        "Disabled",
        "Unhealthy",
        "Stopped",
        "Inactive",
        "PartiallyOnline",
        "ThisNode",
    )
    out = [sep + "".join(c + sep for c in columns) + "\n"]
    for n in nodes:
        if n.flags & N.NODE_FLAGS_DELETED:
            continue
        bits = [
            N.NODE_FLAGS_DISCONNECTED,
            NODE_FLAGS_UNKNOWN,
            N.NODE_FLAGS_BANNED,
            N.NODE_FLAGS_PERMANENTLY_DISABLED,
            N.NODE_FLAGS_UNHEALTHY,
            N.NODE_FLAGS_STOPPED,
            N.NODE_FLAGS_INACTIVE,
        ]
        values = [str(n.pnn), n.address]
        values += ["1" if n.flags & bit else "0" for bit in bits]
        values.append("1" if n.partiallyOnline else "0")
        values.append("Y" if n.pnn == mypnn else "N")
        out.append(sep + "".join(v + sep for v in values) + "\n")
    return "".join(out)


def nodesJson(nodes: Sequence[NodeLine], mypnn: int) -> list[dict[str, Any]]:
    return [
        {
            "pnn": n.pnn,
            "address": n.address,
            "flags": n.flags,
            "state": "PARTIALLYONLINE" if n.partiallyOnline else prettyFlags(n.flags),
            "flag_names": flagNames(n.flags),
            "partially_online": n.partiallyOnline,
            "this_node": n.pnn == mypnn,
        }
        for n in nodes
        if not n.flags & N.NODE_FLAGS_DELETED
    ]


def statusText(
    nodes: Sequence[NodeLine],
    mypnn: int,
    vnnmap: N.VnnMap,
    recmode: int,
    leader: int,
) -> str:
    """C{print_status}."""
    out = [nodemapText(nodes, mypnn, True)]
    if vnnmap.generation == INVALID_GENERATION:
        out.append("Generation:INVALID\n")
    else:
        out.append(f"Generation:{vnnmap.generation}\n")
    out.append(f"Size:{len(vnnmap.map)}\n")
    out.extend(f"hash:{i} lmaster:{pnn}\n" for i, pnn in enumerate(vnnmap.map))
    mode = "NORMAL" if recmode == N.CTDB_RECOVERY_NORMAL else "RECOVERY"
    out.append(f"Recovery mode:{mode} ({recmode})\n")
    out.append("Leader:" + pnnText(leader))
    return "".join(out)


def listnodesText(
    nodes: Sequence[tuple[int, str, bool]], machine: bool, sep: str
) -> str:
    """C{control_listnodes}: (pnn, address, deleted) of the nodes file."""
    out = []
    for pnn, address, deleted in nodes:
        if deleted:
            continue
        if machine:
            out.append(f"{sep}{pnn}{sep}{address}{sep}\n")
        else:
            out.append(f"{address}\n")
    return "".join(out)


# -- uptime ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawUptime:
    """C{struct ctdb_uptime} as four (seconds, microseconds) pairs."""

    current: tuple[int, int]
    start: tuple[int, int]
    recoveryStarted: tuple[int, int]
    recoveryFinished: tuple[int, int]

    @classmethod
    def decode(cls, buf: bytes) -> RawUptime:
        need(buf, 64, "uptime")
        v = struct.unpack_from("<8q", buf)
        return cls((v[0], v[1]), (v[2], v[3]), (v[4], v[5]), (v[6], v[7]))


def _delta(a: tuple[int, int], b: tuple[int, int]) -> float:
    """C{timeval_delta(a, b)}."""
    return (a[0] - b[0]) + (a[1] - b[1]) * 1.0e-6


def uptimeText(pnn: int, u: RawUptime) -> str:
    """C{control_uptime}."""
    return (
        f"Current time of node {pnn:<4}     :                {ctime(u.current[0])}"
        f"Ctdbd start time              : {_dhms(u.current[0] - u.start[0])} "
        f"{ctime(u.start[0])}"
        "Time of last recovery/failover: "
        f"{_dhms(u.current[0] - u.recoveryFinished[0])} "
        f"{ctime(u.recoveryFinished[0])}"
        "Duration of last recovery/failover: "
        f"{_delta(u.recoveryFinished, u.recoveryStarted):f} seconds\n"
    )


def uptimeJson(pnn: int, u: RawUptime) -> dict[str, Any]:
    def t(tv: tuple[int, int]) -> float:
        return tv[0] + tv[1] / 1e6

    return {
        "pnn": pnn,
        "current_time": t(u.current),
        "ctdbd_start_time": t(u.start),
        "last_recovery_started": t(u.recoveryStarted),
        "last_recovery_finished": t(u.recoveryFinished),
        "uptime_seconds": u.current[0] - u.start[0],
        "since_last_recovery_seconds": u.current[0] - u.recoveryFinished[0],
        "last_recovery_duration": _delta(u.recoveryFinished, u.recoveryStarted),
    }


# -- tunables ------------------------------------------------------------------------


def getvarText(name: str, value: int) -> str:
    """C{control_getvar}'s line (the name as given)."""
    return f"{name:<26} = {value}\n"


# -- statistics ----------------------------------------------------------------------

#: C{stats_fields}: the counters C{ctdb statistics} prints, in its order
STATS_FIELDS = (
    "num_clients",
    "frozen",
    "recovering",
    "num_recoveries",
    "client_packets_sent",
    "client_packets_recv",
    "node_packets_sent",
    "node_packets_recv",
    "keepalive_packets_sent",
    "keepalive_packets_recv",
    "node.req_call",
    "node.reply_call",
    "node.req_dmaster",
    "node.reply_dmaster",
    "node.reply_error",
    "node.req_message",
    "node.req_control",
    "node.reply_control",
    "node.req_tunnel",
    "client.req_call",
    "client.req_message",
    "client.req_control",
    "client.req_tunnel",
    "timeouts.call",
    "timeouts.control",
    "timeouts.traverse",
    "locks.num_calls",
    "locks.num_current",
    "locks.num_pending",
    "locks.num_failed",
    "total_calls",
    "pending_calls",
    "childwrite_calls",
    "pending_childwrite_calls",
    "memory_used",
    "max_hop_count",
    "total_ro_delegations",
    "total_ro_revokes",
)


@dataclass
class ToolStatistics:
    """C{struct ctdb_statistics} with its two times as whole seconds."""

    stats: Statistics
    startTime: int
    currentTime: int

    @classmethod
    def decode(cls, buf: bytes) -> ToolStatistics:
        stats = Statistics.decode(buf)
        # the two timevals sit before the last two counters
        start, _, current, _ = struct.unpack_from("<qqqq", buf, 488 - 8 - 32)
        return cls(stats, start, current)

    def field(self, name: str) -> int:
        s = self.stats
        if name in s.counters:
            return s.counters[name]
        if name.startswith("locks."):
            return s.locks[name[6:]]
        if name in s.calls:
            return s.calls[name]
        return int(getattr(s, name))


def _avg(lat: LatencyCounter) -> float:
    return lat.total / lat.num if lat.num else 0.0


def _latencyLine(label: str, lat: LatencyCounter) -> str:
    return (
        f" {label:<30}     {lat.min:.6f}/{_avg(lat):.6f}/{lat.max:.6f} sec out of "
        f"{lat.num}\n"
    )


def _countersText(fields: Iterable[tuple[str, int]]) -> str:
    """The counters of C{print_statistics}/C{print_dbstatistics}: a dotted
    name's section once, then its members indented."""
    out = []
    prefix: str | None = None
    for name, value in fields:
        if "." in name:
            preflen = name.index(".") + 1
            if prefix is None or prefix[:preflen] != name[:preflen]:
                prefix = name
                out.append(f" {name[: preflen - 1]}\n")
            out.append(f"     {name[preflen:]:<22}{value:>10}\n")
        else:
            out.append(f" {name:<22}    {value:>10}\n")
    return "".join(out)


def _buckets(label: str, values: Sequence[int]) -> str:
    return f" {label}:" + "".join(f" {v}" for v in values[:MAX_COUNT_BUCKETS]) + "\n"


def statisticsText(t: ToolStatistics) -> str:
    """C{print_statistics}."""
    s = t.stats
    out = [
        f"CTDB version {CTDB_PROTOCOL}\n",
        f"Current time of statistics  :                {ctime(t.currentTime)}",
        (
            f"Statistics collected since  : {_dhms(t.currentTime - t.startTime)} "
            f"{ctime(t.startTime)}"
        ),
        _countersText((name, t.field(name)) for name in STATS_FIELDS),
        _buckets("hop_count_buckets", s.hop_count_bucket),
        _buckets("lock_buckets", s.locks_buckets),
        _latencyLine("locks_latency      MIN/AVG/MAX", s.locks_latency),
        _latencyLine("reclock_ctdbd      MIN/AVG/MAX", s.reclock_ctdbd),
        _latencyLine("reclock_recd       MIN/AVG/MAX", s.reclock_recd),
        _latencyLine("call_latency       MIN/AVG/MAX", s.call_latency),
        _latencyLine("childwrite_latency MIN/AVG/MAX", s.childwrite_latency),
    ]
    return "".join(out)


_MACHINE_LATENCIES = (
    ("reclock_ctdbd", "reclock_ctdbd"),
    ("reclock_recd", "reclock_recd"),
    ("call", "call_latency"),
    ("lockwait", "locks_latency"),
    ("childwrite", "childwrite_latency"),
)


def statisticsMachine(t: ToolStatistics, header: bool, sep: str) -> str:
    """C{print_statistics_machine}."""
    out = []
    if header:
        names = [
            "CTDB version",
            "Current time of statistics",
            "Statistics collected since",
            *STATS_FIELDS,
        ]
        for label, _ in _MACHINE_LATENCIES:
            names += [
                f"{kind}_{label}_latency" for kind in ("num", "min", "avg", "max")
            ]
        out.append("".join(n + sep for n in names) + "\n")
    values = [
        str(CTDB_PROTOCOL),
        str(t.currentTime & 0xFFFFFFFF),
        str(t.startTime & 0xFFFFFFFF),
    ]
    values += [str(t.field(name)) for name in STATS_FIELDS]
    for _, attribute in _MACHINE_LATENCIES:
        lat: LatencyCounter = getattr(t.stats, attribute)
        values += [str(lat.num), f"{lat.min:.6f}", f"{_avg(lat):.6f}", f"{lat.max:.6f}"]
    out.append("".join(v + sep for v in values) + "\n")
    return "".join(out)


def _latencyJson(lat: LatencyCounter) -> dict[str, Any]:
    return {"num": lat.num, "min": lat.min, "avg": _avg(lat), "max": lat.max}


def statisticsJson(t: ToolStatistics) -> dict[str, Any]:
    s = t.stats
    return {
        "ctdb_version": CTDB_PROTOCOL,
        "current_time": t.currentTime,
        "statistics_start_time": t.startTime,
        "counters": {name: t.field(name) for name in STATS_FIELDS},
        "hop_count_buckets": list(s.hop_count_bucket),
        "lock_buckets": list(s.locks_buckets),
        "locks_latency": _latencyJson(s.locks_latency),
        "reclock_ctdbd": _latencyJson(s.reclock_ctdbd),
        "reclock_recd": _latencyJson(s.reclock_recd),
        "call_latency": _latencyJson(s.call_latency),
        "childwrite_latency": _latencyJson(s.childwrite_latency),
    }


# -- database statistics -------------------------------------------------------------


@dataclass
class ToolDbStatistics:
    """C{struct ctdb_db_statistics} and its hot keys, decoded."""

    locks: dict[str, int]
    locksLatency: LatencyCounter
    locksBuckets: list[int]
    vacuumLatency: LatencyCounter
    roDelegations: int
    roRevokes: int
    hopCountBuckets: list[int]
    hotKeys: list[tuple[int, bytes]] = field(default_factory=list)

    @classmethod
    def decode(cls, buf: bytes) -> ToolDbStatistics:
        need(buf, 464, "db_statistics")
        lat = struct.Struct("<i4xddd")
        off = 0
        locks = dict(
            zip(
                ("num_calls", "num_current", "num_pending", "num_failed"),
                struct.unpack_from("<4I", buf, off),
            )
        )
        off += 16
        locksLatency = LatencyCounter(*lat.unpack_from(buf, off))
        off += lat.size
        locksBuckets = list(struct.unpack_from("<16I", buf, off))
        off += 64
        vacuumLatency = LatencyCounter(*lat.unpack_from(buf, off))
        off += lat.size
        roDelegations, roRevokes = struct.unpack_from("<II", buf, off)
        off += 8
        hops = list(struct.unpack_from("<16I", buf, off))
        off += 64
        (numHotKeys,) = struct.unpack_from("<I4x", buf, off)
        off += 8
        if numHotKeys > R.MAX_HOT_KEYS:
            raise MalformedPacket(f"db_statistics: {numHotKeys} hot keys")
        entries = []
        for i in range(R.MAX_HOT_KEYS):
            count, _ptr, size = struct.unpack_from("<I4xQQ", buf, off + i * 24)
            entries.append((count, size))
        off = 464
        hotKeys = []
        for count, size in entries[:numHotKeys]:
            need(buf, off + size, "db_statistics hot key")
            hotKeys.append((count, bytes(buf[off : off + size])))
            off += size
        return cls(
            locks,
            locksLatency,
            locksBuckets,
            vacuumLatency,
            roDelegations,
            roRevokes,
            hops,
            hotKeys,
        )


def dbStatisticsText(name: str, s: ToolDbStatistics) -> str:
    """C{print_dbstatistics}."""
    fields = [
        ("db_ro_delegations", s.roDelegations),
        ("db_ro_revokes", s.roRevokes),
    ] + [(f"locks.{k}", v) for k, v in s.locks.items()]
    out = [
        f"DB Statistics {name}\n",
        _countersText(fields),
        _buckets("hop_count_buckets", s.hopCountBuckets),
        _buckets("lock_buckets", s.locksBuckets),
        _latencyLine("locks_latency      MIN/AVG/MAX", s.locksLatency),
        _latencyLine("vacuum_latency     MIN/AVG/MAX", s.vacuumLatency),
        f" Num Hot Keys:     {len(s.hotKeys)}\n",
    ]
    out += [f"     Count:{count} Key:{key.hex()}\n" for count, key in s.hotKeys]
    return "".join(out)


def dbStatisticsJson(name: str, s: ToolDbStatistics) -> dict[str, Any]:
    return {
        "name": name,
        "db_ro_delegations": s.roDelegations,
        "db_ro_revokes": s.roRevokes,
        "locks": dict(s.locks),
        "hop_count_buckets": list(s.hopCountBuckets),
        "lock_buckets": list(s.locksBuckets),
        "locks_latency": _latencyJson(s.locksLatency),
        "vacuum_latency": _latencyJson(s.vacuumLatency),
        "hot_keys": [{"count": c, "key": k.hex()} for c, k in s.hotKeys],
    }


# -- databases -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DbLine:
    """One database of C{getdbmap}."""

    db_id: int
    name: str
    path: str
    flags: int
    #: the health reason; C{None} is healthy
    health: str | None


def getdbmapText(dbs: Sequence[DbLine], machine: bool, sep: str) -> str:
    """C{control_getdbmap}."""
    out = []
    if machine:
        columns = (
            "ID",
            "Name",
            "Path",
            "Persistent",
            "Sticky",
            "Unhealthy",
            "Readonly",
            "Replicated",
        )
        out.append(sep + "".join(c + sep for c in columns) + "\n")
    else:
        out.append(f"Number of databases:{len(dbs)}\n")
    for db in dbs:
        persistent = bool(db.flags & R.DB_FLAGS_PERSISTENT)
        readonly = bool(db.flags & R.DB_FLAGS_READONLY)
        sticky = bool(db.flags & R.DB_FLAGS_STICKY)
        replicated = bool(db.flags & R.DB_FLAGS_REPLICATED)
        if machine:
            values = [
                f"0x{db.db_id:08X}",
                db.name,
                db.path,
                *(
                    "1" if b else "0"
                    for b in (
                        persistent,
                        sticky,
                        db.health is not None,
                        readonly,
                        replicated,
                    )
                ),
            ]
            out.append(sep + "".join(v + sep for v in values) + "\n")
        else:
            out.append(
                f"dbid:0x{db.db_id:08x} name:{db.name} path:{db.path}"
                + (" PERSISTENT" if persistent else "")
                + (" STICKY" if sticky else "")
                + (" READONLY" if readonly else "")
                + (" REPLICATED" if replicated else "")
                + (" UNHEALTHY" if db.health is not None else "")
                + "\n"
            )
    return "".join(out)


def dbJson(db: DbLine) -> dict[str, Any]:
    return {
        "db_id": db.db_id,
        "name": db.name,
        "path": db.path,
        "flags": db.flags,
        "persistent": bool(db.flags & R.DB_FLAGS_PERSISTENT),
        "sticky": bool(db.flags & R.DB_FLAGS_STICKY),
        "readonly": bool(db.flags & R.DB_FLAGS_READONLY),
        "replicated": bool(db.flags & R.DB_FLAGS_REPLICATED),
        "healthy": db.health is None,
        "health": db.health or "OK",
    }


def getdbstatusText(db: DbLine) -> str:
    """C{control_getdbstatus}."""

    def yn(flag: int) -> str:
        return "yes" if db.flags & flag else "no"

    return (
        f"dbid: 0x{db.db_id:08x}\nname: {db.name}\npath: {db.path}\n"
        f"PERSISTENT: {yn(R.DB_FLAGS_PERSISTENT)}\n"
        f"REPLICATED: {yn(R.DB_FLAGS_REPLICATED)}\n"
        f"STICKY: {yn(R.DB_FLAGS_STICKY)}\n"
        f"READONLY: {yn(R.DB_FLAGS_READONLY)}\n"
        f"HEALTH: {db.health if db.health is not None else 'OK'}\n"
    )


# -- records ------------------------------------------------------------------------


def _isPrintable(byte: int) -> bool:
    """C{ISASCII}: C{isprint} in the C locale, but for C{"} and C{\\}."""
    return 0x20 <= byte <= 0x7E and byte not in (0x22, 0x5C)


def escapeBytes(data: bytes) -> str:
    """The body of C{dump_tdb_data}: printable characters as they are,
    everything else as C{\\XX}."""
    return "".join(chr(b) if _isPrintable(b) else f"\\{b:02X}" for b in data)


def tdbDataText(name: str, data: bytes) -> str:
    """C{dump_tdb_data}."""
    return f'{name}({len(data)}) = "{escapeBytes(data)}"\n'


_RECORD_FLAGS = (
    (CTDB_REC_FLAG_MIGRATED_WITH_DATA, "MIGRATED_WITH_DATA"),
    (CTDB_REC_FLAG_VACUUM_MIGRATED, "VACUUM_MIGRATED"),
    (CTDB_REC_FLAG_AUTOMATIC, "AUTOMATIC"),
    (CTDB_REC_RO_HAVE_DELEGATIONS, "RO_HAVE_DELEGATIONS"),
    (CTDB_REC_RO_HAVE_READONLY, "RO_HAVE_READONLY"),
    (CTDB_REC_RO_REVOKING_READONLY, "RO_REVOKING_READONLY"),
    (CTDB_REC_RO_REVOKE_COMPLETE, "RO_REVOKE_COMPLETE"),
)


def ltdbHeaderText(header: LtdbHeader) -> str:
    """C{dump_ltdb_header}."""
    names = "".join(f" {name}" for flag, name in _RECORD_FLAGS if header.flags & flag)
    return (
        f"dmaster: {header.dmaster}\nrsn: {header.rsn}\n"
        f"flags: 0x{header.flags:08x}{names}\n"
    )


def recordText(key: bytes, header: LtdbHeader, data: bytes) -> str:
    """C{dump_record}: one record of C{catdb}/C{cattdb}."""
    return (
        tdbDataText("key", key)
        + ltdbHeaderText(header)
        + tdbDataText("data", data)
        + "\n"
    )


def recordJson(key: bytes, header: LtdbHeader, data: bytes) -> dict[str, Any]:
    return {
        "key": escapeBytes(key),
        "key_hex": key.hex(),
        "dmaster": header.dmaster,
        "rsn": header.rsn,
        "flags": header.flags,
        "flag_names": [name for flag, name in _RECORD_FLAGS if header.flags & flag],
        "data": escapeBytes(data),
        "data_hex": data.hex(),
    }


# -- public addresses and interfaces --------------------------------------------------


def ipText(
    ips: Sequence[PublicIP],
    infos: Sequence[PublicIPInfo | None],
    allNodes: bool,
    cmdPnn: int,
    machine: bool,
    verbose: bool,
    sep: str,
) -> str:
    """C{print_ip} (C{ips} sorted, C{infos} beside them)."""
    out = []
    if machine:
        line = f"{sep}Public IP{sep}Node{sep}"
        if verbose:
            line += f"ActiveInterfaces{sep}AvailableInterfaces{sep}ConfiguredInterfaces{sep}"
        out.append(line + "\n")
    elif allNodes:
        out.append("Public IPs on ALL nodes\n")
    else:
        out.append(f"Public IPs on node {cmdPnn}\n")
    for ip, info in zip(ips, infos):
        pnn = _signed(ip.pnn)
        if machine:
            line = f"{sep}{ip.address}{sep}{pnn}{sep}"
        else:
            line = ip.address
        if not verbose:
            out.append(line + "\n" if machine else f"{line} {pnn}\n")
            continue
        active, avail, conf = _ipInterfaces(info)
        if machine:
            out.append(f"{line}{active}{sep}{avail}{sep}{conf}{sep}\n")
        else:
            out.append(
                f"{line} node[{pnn}] active[{active}] available[{avail}]"
                f" configured[{conf}]\n"
            )
    return "".join(out)


def _signed(pnn: int) -> int:
    """A pnn printed with C{%d}."""
    return pnn - 2**32 if pnn >= 2**31 else pnn


def _ipInterfaces(info: PublicIPInfo | None) -> tuple[str, str, str]:
    """(active, available, configured) interface names of one address."""
    if info is None:
        return "", "", ""
    active = ""
    for i, iface in enumerate(info.ifaces):
        if info.active_idx == i:
            active = iface.name
    avail = ",".join(i.name for i in info.ifaces if i.link_state != 0)
    conf = ",".join(i.name for i in info.ifaces)
    return active, avail, conf


def ipJson(ip: PublicIP, info: PublicIPInfo | None) -> dict[str, Any]:
    active, avail, conf = _ipInterfaces(info)
    return {
        "address": ip.address,
        "pnn": pnnJson(ip.pnn),
        "active_interface": active or None,
        "available_interfaces": [a for a in avail.split(",") if a],
        "configured_interfaces": [c for c in conf.split(",") if c],
    }


def ipinfoText(pnn: int, info: PublicIPInfo) -> str:
    """C{control_ipinfo}."""
    out = [
        f"Public IP[{info.ip.address}] info on node {pnn}\n",
        f"IP:{info.ip.address}\nCurrentNode:{info.ip.pnn}\n",
        f"NumInterfaces:{len(info.ifaces)}\n",
    ]
    for i, iface in enumerate(info.ifaces):
        link = "down" if iface.link_state == 0 else "up"
        active = " (active)" if i == info.active_idx else ""
        out.append(
            f"Interface[{i + 1}]: Name:{iface.name} Link:{link} "
            f"References:{iface.references}{active}\n"
        )
    return "".join(out)


def ipinfoJson(pnn: int, info: PublicIPInfo) -> dict[str, Any]:
    return {
        "pnn": pnn,
        "address": info.ip.address,
        "current_node": pnnJson(info.ip.pnn),
        "interfaces": [
            {
                "name": iface.name,
                "link": "down" if iface.link_state == 0 else "up",
                "references": iface.references,
                "active": i == info.active_idx,
            }
            for i, iface in enumerate(info.ifaces)
        ],
    }


def ifacesText(pnn: int, ifaces: Sequence[Interface], machine: bool, sep: str) -> str:
    """C{control_ifaces}."""
    if not ifaces:
        return f"No interfaces configured on node {pnn}\n"
    if machine:
        out = [f"{sep}Name{sep}LinkStatus{sep}References{sep}\n"]
        out += [
            f"{sep}{i.name}{sep}{i.link_state}{sep}{i.references}{sep}\n"
            for i in ifaces
        ]
    else:
        out = [f"Interfaces on node {pnn}\n"]
        out += [
            f"name:{i.name} link:{'up' if i.link_state else 'down'} "
            f"references:{i.references}\n"
            for i in ifaces
        ]
    return "".join(out)


def ifaceJson(i: Interface) -> dict[str, Any]:
    return {
        "name": i.name,
        "link": "up" if i.link_state else "down",
        "link_state": i.link_state,
        "references": i.references,
    }


# -- capabilities ---------------------------------------------------------------------


def capabilitiesText(caps: int, machine: bool, sep: str) -> str:
    """C{control_getcapabilities}."""
    leader = bool(caps & N.CTDB_CAP_RECMASTER)
    lmaster = bool(caps & N.CTDB_CAP_LMASTER)
    if machine:
        return f"{sep}LEADER{sep}LMASTER{sep}\n{sep}{int(leader)}{sep}{int(lmaster)}{sep}\n"
    return (
        f"LEADER: {'YES' if leader else 'NO'}\nLMASTER: {'YES' if lmaster else 'NO'}\n"
    )
