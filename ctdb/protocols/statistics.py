# -*- test-case-name: tests.protocols.test_controls -*-
"""
The counters and times a node reports (Samba 4.17 ctdb/protocol/
protocol.h, protocol_types.c): C{struct ctdb_statistics} (STATISTICS) and
C{struct ctdb_uptime} (UPTIME).

Pure: no I/O, no Twisted import.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from ctdb.protocols.basictypes import need

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

MAX_COUNT_BUCKETS = 16
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
