# -*- test-case-name: tests.daemon.test_statistics_codec -*-
"""
Tests for the pure parts of the statistics (L{ctdb.protocols.statistics}):
lock_bucket_id, the hop count buckets, per-database latency tuples, the
statistics of one interval and C{struct ctdb_statistics_list}.
"""

from __future__ import annotations

import struct

from twisted.trial.unittest import SynchronousTestCase

from ctdb.errors import MalformedPacket
from ctdb.protocols import statistics as S


class BucketTests(SynchronousTestCase):
    """The buckets of ctdb_lock.c and ctdb_call.c."""

    def test_latencyAdded(self) -> None:
        """CTDB_UPDATE_DB_LATENCY on a (num, min, max, total) tuple: the
        first sample sets the minimum, later ones lower it or raise the
        maximum, and the total is the sum (so the average is total/num)."""
        t = (0, 0.0, 0.0, 0.0)
        t = S.latencyAdded(t, 0.5)
        self.assertEqual(t, (1, 0.5, 0.5, 0.5))
        t = S.latencyAdded(t, 0.25)
        t = S.latencyAdded(t, 2.0)
        self.assertEqual(t, (3, 0.25, 2.0, 2.75))

    def test_latencyCounter(self) -> None:
        """LatencyCounter.add keeps the same four figures."""
        c = S.LatencyCounter()
        for s in (0.5, 0.25, 2.0):
            c.add(s)
        self.assertEqual(c.fields(), (3, 0.25, 2.0, 2.75))


class IntervalTests(SynchronousTestCase):
    """intervalStatistics and addStatistics."""

    def test_countsAreDifferences(self) -> None:
        """Counts are the totals now less the totals at the start; gauges
        are as they are now; latencies and the largest hop count are the
        interval's own."""
        base = S.Statistics()
        base.counters["client_packets_recv"] = 10
        base.counters["num_clients"] = 7
        base.locks["num_calls"] = 3
        base.calls["total_calls"] = 5
        base.hop_count_bucket[1] = 2
        base.locks_buckets[0] = 4
        base.num_recoveries = 1
        now = base.copy()
        now.counters["client_packets_recv"] = 15
        now.counters["num_clients"] = 2
        now.locks["num_calls"] = 4
        now.locks["num_pending"] = 6
        now.calls["total_calls"] = 9
        now.calls["pending_calls"] = 1
        now.calls["max_hop_count"] = 99
        now.hop_count_bucket[1] = 5
        now.locks_buckets[0] = 4
        now.num_recoveries = 3
        lat = S.LatencyCounter(2, 0.1, 0.3, 0.4)
        out = S.intervalStatistics(now, base, {"call_latency": lat}, 4)
        self.assertEqual(out.counters["client_packets_recv"], 5)
        self.assertEqual(out.counters["num_clients"], 2)
        self.assertEqual(out.locks["num_calls"], 1)
        self.assertEqual(out.locks["num_pending"], 6)
        self.assertEqual(out.calls["total_calls"], 4)
        self.assertEqual(out.calls["pending_calls"], 1)
        self.assertEqual(out.calls["max_hop_count"], 4)
        self.assertEqual(out.hop_count_bucket[1], 3)
        self.assertEqual(out.locks_buckets[0], 0)
        self.assertEqual(out.num_recoveries, 2)
        self.assertEqual(out.call_latency.fields(), (2, 0.1, 0.3, 0.4))
        self.assertIsNot(out.call_latency, lat)
        self.assertEqual(out.locks_latency.fields(), (0, 0.0, 0.0, 0.0))

    def test_copyIsDeep(self) -> None:
        """A copy shares no counter with the original."""
        s = S.Statistics()
        c = s.copy()
        s.counters["frozen"] = 1
        s.locks_buckets[0] = 1
        s.call_latency.add(1.0)
        self.assertEqual(c.counters["frozen"], 0)
        self.assertEqual(c.locks_buckets[0], 0)
        self.assertEqual(c.call_latency.num, 0)

    def test_addStatistics(self) -> None:
        """Counts add up; gauges come from the second."""
        a = S.Statistics()
        a.counters["node_packets_sent"] = 2
        a.counters["num_clients"] = 9
        a.calls["total_calls"] = 1
        a.hop_count_bucket[0] = 1
        b = S.Statistics()
        b.counters["node_packets_sent"] = 3
        b.counters["num_clients"] = 1
        b.calls["total_calls"] = 2
        b.hop_count_bucket[0] = 2
        out = S.addStatistics(a, b)
        self.assertEqual(out.counters["node_packets_sent"], 5)
        self.assertEqual(out.counters["num_clients"], 1)
        self.assertEqual(out.calls["total_calls"], 3)
        self.assertEqual(out.hop_count_bucket[0], 3)


class StatisticsListTests(SynchronousTestCase):
    """struct ctdb_statistics_list."""

    def test_goldenHeader(self) -> None:
        """An int32 count and 4 bytes of padding, then 488 bytes each."""
        s = S.Statistics()
        s.counters["num_clients"] = 3
        raw = S.encodeStatisticsList([s, S.Statistics()])
        self.assertEqual(raw[:8], struct.pack("<i", 2) + b"\0\0\0\0")
        self.assertEqual(len(raw), 8 + 2 * 488)
        self.assertEqual(raw[8:12], struct.pack("<I", 3))

    def test_roundTrip(self) -> None:
        """Decoding gives the entries back."""
        s = S.Statistics()
        s.counters["node.req_call"] = 4
        s.call_latency.add(0.5)
        s.statistics_start_time = 100.25
        decoded = S.decodeStatisticsList(S.encodeStatisticsList([s]))
        self.assertEqual(len(decoded), 1)
        self.assertEqual(decoded[0].counters["node.req_call"], 4)
        self.assertEqual(decoded[0].call_latency.fields(), (1, 0.5, 0.5, 0.5))
        self.assertEqual(decoded[0].statistics_start_time, 100.25)

    def test_short(self) -> None:
        """A list shorter than its count says is malformed."""
        raw = S.encodeStatisticsList([S.Statistics()])
        self.assertRaises(MalformedPacket, S.decodeStatisticsList, raw[:-1])
        self.assertRaises(MalformedPacket, S.decodeStatisticsList, b"\1\0\0")
