# -*- test-case-name: tests.protocols.test_controls,tests.daemon.test_statistics_codec -*-
"""
The counters and times a node reports (Samba 4.17 ctdb/protocol/
protocol.h, protocol_types.c): C{struct ctdb_statistics} (STATISTICS),
C{struct ctdb_statistics_list} (GET_STAT_HISTORY) and C{struct ctdb_uptime}
(UPTIME); and the arithmetic of ctdbd's counters (lock_bucket_id, the hop
count buckets of ctdb_call.c, CTDB_UPDATE_LATENCY) and of the rolling
history (the counts of one interval, L{intervalStatistics}).

Pure: no I/O, no Twisted import.  docs/STATISTICS.md says what each counter
means.
"""

from __future__ import annotations

import copy
import struct
from dataclasses import dataclass, field
from typing import Any

from ctdb.protocols.basictypes import need
from ctdb.protocols.buckets import MAX_COUNT_BUCKETS

# --- uptime -------------------------------------------------------------------


def _timeval(t: float) -> bytes:
    sec = int(t)
    return struct.pack("<qq", sec, round((t - sec) * 1e6))


def _untimeval(buf: bytes, off: int) -> float:
    sec, usec = struct.unpack_from("<qq", buf, off)
    return sec + usec / 1e6


@dataclass(frozen=True, slots=True)
class Uptime:
    current_time: float
    ctdbd_start_time: float
    last_recovery_started: float
    last_recovery_finished: float

    def encode(self) -> bytes:
        return b"".join(
            _timeval(t)
            for t in (
                self.current_time,
                self.ctdbd_start_time,
                self.last_recovery_started,
                self.last_recovery_finished,
            )
        )

    @classmethod
    def decode(cls, buf: bytes) -> Uptime:
        need(buf, 64, "uptime")
        return cls(*(_untimeval(buf, i * 16) for i in range(4)))


# --- statistics (struct ctdb_statistics, 488 bytes) -------------------------

#: how many snapshots ctdbd keeps (ctdb_private.h)
MAX_STAT_HISTORY = 100
_LAT = "i4xddd"
_STATISTICS = struct.Struct(
    "<"
    + "9I"
    + "9I"
    + "4I"
    + "3I"
    + "4x"
    + _LAT
    + _LAT
    + "4I"
    + _LAT
    + f"{MAX_COUNT_BUCKETS}I"
    + "7I"
    + f"{MAX_COUNT_BUCKETS}I"
    + "4x"
    + _LAT
    + _LAT
    + "I4x"
    + "qq"
    + "qq"
    + "II"
)
assert _STATISTICS.size == 488

STAT_COUNTERS = (
    "num_clients",
    "frozen",
    "recovering",
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
)


@dataclass
class LatencyCounter:
    num: int = 0
    min: float = 0.0
    max: float = 0.0
    total: float = 0.0

    def add(self, seconds: float) -> None:
        if self.num == 0 or seconds < self.min:
            self.min = seconds
        self.max = max(self.max, seconds)
        self.num += 1
        self.total += seconds

    def fields(self) -> tuple[int, float, float, float]:
        return (self.num, self.min, self.max, self.total)


def latencyAdded(
    counter: tuple[int, float, float, float], seconds: float
) -> tuple[int, float, float, float]:
    """CTDB_UPDATE_DB_LATENCY for a latency kept as a C{(num, min, max,
    total)} tuple (the per-database statistics): the counter with one
    more sample of C{seconds}."""
    num, lo, hi, total = counter
    if num == 0 or seconds < lo:
        lo = seconds
    return (num + 1, lo, max(hi, seconds), total + seconds)


@dataclass
class Statistics:
    """``struct ctdb_statistics``: flat counters by Samba's (dotted) names."""

    counters: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(STAT_COUNTERS, 0)
    )
    reclock_ctdbd: LatencyCounter = field(default_factory=LatencyCounter)
    reclock_recd: LatencyCounter = field(default_factory=LatencyCounter)
    locks: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("num_calls", "num_current", "num_pending", "num_failed"), 0
        )
    )
    locks_latency: LatencyCounter = field(default_factory=LatencyCounter)
    locks_buckets: list[int] = field(default_factory=lambda: [0] * MAX_COUNT_BUCKETS)
    calls: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "total_calls",
                "pending_calls",
                "childwrite_calls",
                "pending_childwrite_calls",
                "memory_used",
                "__last_counter",
                "max_hop_count",
            ),
            0,
        )
    )
    hop_count_bucket: list[int] = field(default_factory=lambda: [0] * MAX_COUNT_BUCKETS)
    call_latency: LatencyCounter = field(default_factory=LatencyCounter)
    childwrite_latency: LatencyCounter = field(default_factory=LatencyCounter)
    num_recoveries: int = 0
    statistics_start_time: float = 0.0
    statistics_current_time: float = 0.0
    total_ro_delegations: int = 0
    total_ro_revokes: int = 0

    def bump(self, name: str, by: int = 1) -> None:
        self.counters[name] += by

    def copy(self) -> Statistics:
        """A deep copy: a snapshot later changes do not touch."""
        return copy.deepcopy(self)

    def encode(self) -> bytes:
        def tv(t: float) -> tuple[int, int]:
            sec = int(t)
            return sec, round((t - sec) * 1e6)

        values: list[int | float] = [self.counters[n] for n in STAT_COUNTERS]
        values += [*self.reclock_ctdbd.fields(), *self.reclock_recd.fields()]
        values += list(self.locks.values())
        values += [*self.locks_latency.fields(), *self.locks_buckets]
        values += list(self.calls.values())
        values += self.hop_count_bucket
        values += [*self.call_latency.fields(), *self.childwrite_latency.fields()]
        values += [self.num_recoveries]
        values += [*tv(self.statistics_start_time), *tv(self.statistics_current_time)]
        values += [self.total_ro_delegations, self.total_ro_revokes]
        return _STATISTICS.pack(*values)

    @classmethod
    def decode(cls, buf: bytes) -> Statistics:
        need(buf, _STATISTICS.size, "statistics")
        v = list(_STATISTICS.unpack_from(buf))
        s = cls()

        def take(n: int) -> list[Any]:
            nonlocal v
            out, v = v[:n], v[n:]
            return out

        s.counters = dict(zip(STAT_COUNTERS, take(len(STAT_COUNTERS))))
        s.reclock_ctdbd = LatencyCounter(*take(4))
        s.reclock_recd = LatencyCounter(*take(4))
        s.locks = dict(zip(s.locks, take(4)))
        s.locks_latency = LatencyCounter(*take(4))
        s.locks_buckets = take(MAX_COUNT_BUCKETS)
        s.calls = dict(zip(s.calls, take(7)))
        s.hop_count_bucket = take(MAX_COUNT_BUCKETS)
        s.call_latency = LatencyCounter(*take(4))
        s.childwrite_latency = LatencyCounter(*take(4))
        (s.num_recoveries,) = take(1)
        sec, usec, sec2, usec2 = take(4)
        s.statistics_start_time = sec + usec / 1e6
        s.statistics_current_time = sec2 + usec2 / 1e6
        s.total_ro_delegations, s.total_ro_revokes = take(2)
        return s


# --- the rolling history (GET_STAT_HISTORY) -----------------------------------

#: counters that say how things are now rather than how many times
#: something happened: an interval's snapshot takes their value at its end
GAUGE_COUNTERS = frozenset(("num_clients", "frozen", "recovering"))
GAUGE_LOCKS = frozenset(("num_current", "num_pending"))
GAUGE_CALLS = frozenset(("pending_calls", "pending_childwrite_calls", "memory_used"))
#: the latency counters, by their attribute names
LATENCIES = (
    "reclock_ctdbd",
    "reclock_recd",
    "locks_latency",
    "call_latency",
    "childwrite_latency",
)


def intervalStatistics(
    now: Statistics,
    base: Statistics,
    latencies: dict[str, LatencyCounter],
    maxHopCount: int,
) -> Statistics:
    """
    The statistics of one interval, as ctdbd's C{statistics_current}: the
    counts of C{now} (the running totals) less those of C{base} (the totals
    when the interval began), the gauges (L{GAUGE_COUNTERS}, L{GAUGE_LOCKS},
    L{GAUGE_CALLS}) as they are in C{now}, and the interval's own latency
    counters and largest hop count, which totals cannot give (a minimum or
    maximum of an interval is not a difference).  The times are left to the
    caller.
    """
    out = Statistics()
    for name in STAT_COUNTERS:
        value = now.counters[name]
        if name not in GAUGE_COUNTERS:
            value = max(0, value - base.counters[name])
        out.counters[name] = value
    for name in out.locks:
        value = now.locks[name]
        if name not in GAUGE_LOCKS:
            value = max(0, value - base.locks[name])
        out.locks[name] = value
    for name in out.calls:
        value = now.calls[name]
        if name == "max_hop_count":
            value = maxHopCount
        elif name == "__last_counter":
            value = 0
        elif name not in GAUGE_CALLS:
            value = max(0, value - base.calls[name])
        out.calls[name] = value
    out.locks_buckets = [
        max(0, a - b) for a, b in zip(now.locks_buckets, base.locks_buckets)
    ]
    out.hop_count_bucket = [
        max(0, a - b) for a, b in zip(now.hop_count_bucket, base.hop_count_bucket)
    ]
    for name in LATENCIES:
        counter = latencies.get(name)
        setattr(out, name, copy.copy(counter) if counter else LatencyCounter())
    out.num_recoveries = max(0, now.num_recoveries - base.num_recoveries)
    out.total_ro_delegations = max(
        0, now.total_ro_delegations - base.total_ro_delegations
    )
    out.total_ro_revokes = max(0, now.total_ro_revokes - base.total_ro_revokes)
    return out


def addStatistics(a: Statistics, b: Statistics) -> Statistics:
    """The counts of C{a} and C{b} together (every field but the gauges and
    latencies, which come from C{b}): the totals of an interval in which
    STATISTICS_RESET started the running totals again."""
    out = b.copy()
    for name in STAT_COUNTERS:
        if name not in GAUGE_COUNTERS:
            out.counters[name] += a.counters[name]
    for name in out.locks:
        if name not in GAUGE_LOCKS:
            out.locks[name] += a.locks[name]
    for name in ("total_calls", "childwrite_calls"):
        out.calls[name] += a.calls[name]
    out.locks_buckets = [x + y for x, y in zip(a.locks_buckets, b.locks_buckets)]
    out.hop_count_bucket = [
        x + y for x, y in zip(a.hop_count_bucket, b.hop_count_bucket)
    ]
    out.num_recoveries += a.num_recoveries
    out.total_ro_delegations += a.total_ro_delegations
    out.total_ro_revokes += a.total_ro_revokes
    return out


def encodeStatisticsList(entries: list[Statistics]) -> bytes:
    """C{struct ctdb_statistics_list}: an int32 count, 4 bytes of padding,
    then the entries."""
    return struct.pack("<i4x", len(entries)) + b"".join(e.encode() for e in entries)


def decodeStatisticsList(buf: bytes) -> list[Statistics]:
    need(buf, 8, "statistics list")
    (num,) = struct.unpack_from("<i", buf)
    num = max(num, 0)
    need(buf, 8 + num * _STATISTICS.size, "statistics list")
    return [
        Statistics.decode(
            buf[8 + i * _STATISTICS.size : 8 + (i + 1) * _STATISTICS.size]
        )
        for i in range(num)
    ]
