# -*- test-case-name: tests.daemon.test_statistics -*-
"""
Keeping the node's statistics (ctdb/server/ctdb_statistics.c and the
CTDB_*_STAT macros of ctdb_private.h).

L{Daemon.stats} holds the running totals that STATISTICS answers and
STATISTICS_RESET starts again; most counters there are bumped in place by
the code that sees the event.  L{StatisticsKeeper} adds what needs more than
one bump: a lock wait, a client call, a persistent write (ctdbd's
childwrite) or a hop count moves several counters at once, globally and for
the database, and the latencies also feed the current interval of the
rolling history.  Each place that times something calls one method here.

The history is ctdbd's: every C{StatHistoryInterval} seconds the counts of
the interval just ended become the newest of L{MAX_STAT_HISTORY} snapshots
(GET_STAT_HISTORY, C{ctdb stats}).  ctdbd counts every event twice (in the
totals and in C{statistics_current}); we count once and take the interval's
counts as the difference of the totals (L{intervalStatistics}), keeping
only the interval's latencies and largest hop count on the side, so that
the hot paths bump one counter.

docs/STATISTICS.md has the table of every counter, what it means in ctdbd
and what moves it here.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from typing import TYPE_CHECKING

from twisted.logger import Logger
from zope.interface import implementer

from ctdb.interfaces import ICTDBReactor, IStatisticsSource
from ctdb.protocols.buckets import hopCountBucket, lockBucket
from ctdb.protocols.statistics import (
    MAX_STAT_HISTORY,
    LatencyCounter,
    Statistics,
    addStatistics,
    encodeStatisticsList,
    intervalStatistics,
    latencyAdded,
)

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from ctdb.daemon.core import Daemon
    from ctdb.protocols.records import DbStatistics

__all__ = ["MAX_STAT_HISTORY", "StatisticsKeeper", "processMemory"]


def processMemory() -> dict[str, int]:
    """
    What the kernel says of this process's memory, in bytes: C{rss} (VmRSS,
    resident), C{hwm} (VmHWM, the largest resident size so far), C{data}
    (VmData, heap and anonymous mappings) and C{size} (VmSize), read from
    /proc/self/status; plus C{pagesize}.  An empty dict where there is no
    /proc.
    """
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                name, _, rest = line.partition(b":")
                key = {
                    b"VmRSS": "rss",
                    b"VmHWM": "hwm",
                    b"VmData": "data",
                    b"VmSize": "size",
                }.get(name)
                if key is not None:
                    # "  123456 kB"
                    out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return {}
    out["pagesize"] = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    return out


def memoryUsed() -> int:
    """STATISTICS' C{memory_used}: ctdbd's is talloc_total_size(NULL), the
    bytes its allocator hands out; ours is the resident set size of the
    process (VmRSS), or the blocks Python's allocator has out when /proc
    is missing.  It is a u32 on the wire: capped at 4 GiB - 1."""
    rss = processMemory().get("rss")
    if rss is None:
        rss = sys.getallocatedblocks()
    return min(rss, 0xFFFFFFFF)


@implementer(IStatisticsSource)
class StatisticsKeeper:
    """
    The counters of a daemon that move together, and its rolling history.

    C{daemon.stats} may be replaced (STATISTICS_RESET does); the keeper
    always updates the one the daemon holds now.
    """

    log = Logger()

    def __init__(self, daemon: Daemon, *, reactor: ICTDBReactor) -> None:
        self.daemon = daemon
        self.reactor = reactor
        #: the snapshots, newest first
        self.history: deque[Statistics] = deque(maxlen=MAX_STAT_HISTORY)
        self._tracked = daemon.stats
        self._base = daemon.stats.copy()
        #: counts of this interval from totals a STATISTICS_RESET dropped
        self._carried: Statistics | None = None
        self._latencies: dict[str, LatencyCounter] = {}
        self._maxHopCount = 0
        self._intervalStart = reactor.seconds()
        self._timer: IDelayedCall | None = None

    # -- the history --------------------------------------------------------

    def start(self) -> None:
        """ctdb_statistics_init: the first snapshot is due in
        C{StatHistoryInterval} seconds."""
        self._intervalStart = self.reactor.seconds()
        self._schedule()

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _schedule(self) -> None:
        # ctdbd re-reads the tunable for every interval; 0 would spin.
        interval = max(1, self.daemon.tunables.StatHistoryInterval)
        self._timer = self.reactor.callLater(interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.snapshot()
        self._schedule()

    def current(self) -> Statistics:
        """The statistics of the interval under way (ctdbd's
        C{statistics_current}), with its start time and now."""
        stats = self._follow()
        entry = intervalStatistics(
            stats, self._base, self._latencies, self._maxHopCount
        )
        if self._carried is not None:
            entry = addStatistics(self._carried, entry)
        entry.statistics_start_time = self._intervalStart
        entry.statistics_current_time = self.reactor.seconds()
        return entry

    def snapshot(self) -> Statistics:
        """ctdb_statistics_update: the interval under way becomes the newest
        snapshot and a new interval begins."""
        entry = self.current()
        self.history.appendleft(entry)
        self._base = self.daemon.stats.copy()
        self._carried = None
        self._latencies = {}
        self._maxHopCount = 0
        self._intervalStart = entry.statistics_current_time
        return entry

    def encodeHistory(self) -> bytes:
        """GET_STAT_HISTORY's answer (ctdb_control_get_stat_history): always
        L{MAX_STAT_HISTORY} entries, newest first, the slots not filled yet
        all zeros (C{ctdb stats} skips those by their zero start time)."""
        entries = list(self.history)
        entries += [Statistics()] * (MAX_STAT_HISTORY - len(entries))
        return encodeStatisticsList(entries)

    def _follow(self) -> Statistics:
        """The daemon's running totals; if STATISTICS_RESET replaced them
        since we last looked, what the old ones counted in this interval is
        carried over."""
        stats = self.daemon.stats
        if stats is not self._tracked:
            done = intervalStatistics(
                self._tracked, self._base, self._latencies, self._maxHopCount
            )
            self._carried = (
                done if self._carried is None else addStatistics(self._carried, done)
            )
            self._base = Statistics()
            self._tracked = stats
        return stats

    # -- IStatisticsSource ----------------------------------------------------

    def statisticsReset(self) -> None:
        """STATISTICS_RESET zeroed the totals: this interval keeps what was
        counted so far (ctdbd resets only the totals, not its
        C{statistics_current}).  The gauges say how things are, not how
        many times something happened, so they keep their values."""
        old = self._tracked
        stats = self._follow()
        stats.counters["frozen"] = old.counters["frozen"]
        for name in ("num_current", "num_pending"):
            stats.locks[name] = old.locks[name]
        for name in ("pending_calls", "pending_childwrite_calls"):
            stats.calls[name] = old.calls[name]

    def memoryObjects(self) -> list[tuple[str, object]]:
        return [("struct ctdb_statistics_history", self.history)]

    # -- counters that move together --------------------------------------------

    def _latency(self, name: str, seconds: float, operation: str) -> None:
        """CTDB_UPDATE_LATENCY: a sample for the totals and the interval,
        logged when it is above C{LogLatencyMs} (0: never), or for the
        cluster lock above C{RecLockLatencyMs}."""
        counter: LatencyCounter = getattr(self.daemon.stats, name)
        counter.add(seconds)
        interval = self._latencies.get(name)
        if interval is None:
            interval = self._latencies[name] = LatencyCounter()
        interval.add(seconds)
        tunables = self.daemon.tunables
        if name.startswith("reclock_"):
            limit = tunables.RecLockLatencyMs
            if limit and seconds * 1000 > limit:
                self.log.error(
                    "High RECLOCK latency {secs:.6f}s for operation {op}",
                    secs=seconds,
                    op=operation,
                )
            return
        limit = tunables.LogLatencyMs
        if limit and seconds * 1000 > limit:
            self.log.warn(
                "High latency {secs:.6f}s for operation {op}",
                secs=seconds,
                op=operation,
            )

    def lockWaitStarted(self, db: DbStatistics | None) -> float:
        """ctdb_lock_internal: a request for a lock that is held elsewhere
        starts waiting (C{locks.num_pending}); returns its start time."""
        self.daemon.stats.locks["num_pending"] += 1
        if db is not None:
            db.locks_num_pending += 1
        return self.reactor.seconds()

    def lockWaitEnded(
        self, db: DbStatistics | None, started: float, locked: bool
    ) -> None:
        """ctdb_lock_handler and the lock context's destructor: the wait
        begun at C{started} is over; it got the lock (a latency sample and
        its bucket) or gave up (C{num_failed})."""
        stats = self.daemon.stats
        locks = stats.locks
        locks["num_pending"] = max(0, locks["num_pending"] - 1)
        locks["num_calls"] += 1
        if db is not None:
            db.locks_num_pending = max(0, db.locks_num_pending - 1)
            db.locks_num_calls += 1
        if not locked:
            locks["num_failed"] += 1
            if db is not None:
                db.locks_num_failed += 1
            return
        seconds = max(0.0, self.reactor.seconds() - started)
        bucket = lockBucket(seconds)
        stats.locks_buckets[bucket] += 1
        self._latency("locks_latency", seconds, "lock wait")
        if db is not None:
            db.locks_buckets[bucket] += 1
            db.locks_latency = latencyAdded(db.locks_latency, seconds)

    def lockWaitAbandoned(self, db: DbStatistics | None) -> None:
        """A waiting lock request whose requester went away (a database
        detached, a call cancelled): no longer pending, and not a call
        (as ctdbd's lock_context destructor for a context never run)."""
        locks = self.daemon.stats.locks
        locks["num_pending"] = max(0, locks["num_pending"] - 1)
        if db is not None:
            db.locks_num_pending = max(0, db.locks_num_pending - 1)

    def callStarted(self) -> None:
        """daemon_request_call_from_client: a client's REQ_CALL
        (C{total_calls}, C{pending_calls})."""
        calls = self.daemon.stats.calls
        calls["total_calls"] += 1
        calls["pending_calls"] += 1

    def callEnded(self, started: float | None) -> None:
        """The call is answered, or dropped; C{started} is when it was set
        going with its record locked (ctdbd's dstate->start_time), None if
        it never was (then there is no latency sample)."""
        calls = self.daemon.stats.calls
        calls["pending_calls"] = max(0, calls["pending_calls"] - 1)
        if started is not None:
            self._latency(
                "call_latency", max(0.0, self.reactor.seconds() - started), "call"
            )

    def childwriteStarted(self) -> float:
        """ctdb_control_update_record: a write of records of a persistent
        database (ctdbd forks a child to write them; we write in a
        transaction of our own, see docs/STATISTICS.md)."""
        calls = self.daemon.stats.calls
        calls["childwrite_calls"] += 1
        calls["pending_childwrite_calls"] += 1
        return self.reactor.seconds()

    def childwriteEnded(self, started: float, done: bool) -> None:
        """The write begun at C{started} is over: written (a latency sample,
        as ctdb_update_record's child returning) or refused."""
        calls = self.daemon.stats.calls
        calls["pending_childwrite_calls"] = max(
            0, calls["pending_childwrite_calls"] - 1
        )
        if done:
            self._latency(
                "childwrite_latency",
                max(0.0, self.reactor.seconds() - started),
                "persistent",
            )

    def hopCount(self, db: DbStatistics | None, hopcount: int) -> None:
        """ctdb_request_call at the dmaster: the hops a REQ_CALL took to get
        here (C{max_hop_count}, C{hop_count_bucket}, globally and for the
        database)."""
        stats = self.daemon.stats
        calls = stats.calls
        calls["max_hop_count"] = max(calls["max_hop_count"], hopcount)
        self._maxHopCount = max(self._maxHopCount, hopcount)
        bucket = hopCountBucket(hopcount)
        stats.hop_count_bucket[bucket] += 1
        if db is not None:
            db.hop_count_bucket[bucket] += 1

    def reclockLatency(self, which: str, seconds: float) -> None:
        """CTDB_UPDATE_RECLOCK_LATENCY: C{which} is C{"ctdbd"} (the daemon
        checking the cluster lock) or C{"recd"} (the recovery daemon's
        RECD_RECLOCK_LATENCY control)."""
        self._latency(f"reclock_{which}", seconds, f"{which} reclock")

    def vacuumLatency(self, db: DbStatistics, seconds: float) -> None:
        """ctdb_vacuum_event's CTDB_UPDATE_DB_LATENCY: one vacuum run of the
        database took C{seconds} (per database only, as ctdbd)."""
        db.vacuum_latency = latencyAdded(db.vacuum_latency, seconds)
