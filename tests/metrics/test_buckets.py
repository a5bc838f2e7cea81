# -*- test-case-name: tests.metrics.test_buckets -*-
"""
Tests for L{ctdb.protocols.buckets}: which bucket ctdbd counts a lock wait
and a hop count in (Samba 4.17's lock_bucket_id and ctdb_call.c), and
per-bucket counts as a histogram's cumulative buckets.
"""

from __future__ import annotations

import math

from twisted.trial.unittest import SynchronousTestCase

from ctdb.protocols.buckets import (
    HOP_COUNT_BUCKET_BOUNDS,
    LOCK_BUCKET_BOUNDS,
    MAX_COUNT_BUCKETS,
    cumulativeBuckets,
    hopCountBucket,
    lockBucket,
)


class LockBucketTests(SynchronousTestCase):
    """lock_bucket_id: ten bounds, strictly below each, then the rest."""

    def test_bounds(self) -> None:
        """Each bound opens the next bucket; 64 s and more is bucket 10."""
        cases = [
            (0.0, 0),
            (0.0009, 0),
            (0.001, 1),
            (0.0099, 1),
            (0.01, 2),
            (0.5, 3),
            (1.0, 4),
            (3.9, 5),
            (4.0, 6),
            (15.0, 7),
            (16.0, 8),
            (63.9, 9),
            (64.0, 10),
            (10_000.0, 10),
        ]
        for seconds, bucket in cases:
            self.assertEqual(lockBucket(seconds), bucket, seconds)

    def test_boundsOfBuckets(self) -> None:
        """Every wait lies below the bound of its bucket and not below the
        bound of the one before."""
        for seconds in (0.0005, 0.005, 0.05, 0.5, 1.5, 3, 6, 12, 24, 48, 100):
            bucket = lockBucket(seconds)
            self.assertLess(seconds, LOCK_BUCKET_BOUNDS[bucket])
            if bucket:
                self.assertGreaterEqual(seconds, LOCK_BUCKET_BOUNDS[bucket - 1])
        self.assertEqual(LOCK_BUCKET_BOUNDS[-1], math.inf)
        self.assertLessEqual(len(LOCK_BUCKET_BOUNDS), MAX_COUNT_BUCKETS)


class HopCountBucketTests(SynchronousTestCase):
    """ctdb_call.c: the number of significant bits, at most 15."""

    def test_buckets(self) -> None:
        """0 hops is bucket 0, 1 is 1, 2-3 is 2, 4-7 is 3, huge is 15."""
        cases = [(0, 0), (1, 1), (2, 2), (3, 2), (4, 3), (7, 3), (8, 4)]
        cases += [(2**14 - 1, 14), (2**14, 15), (2**30, 15)]
        for hops, bucket in cases:
            self.assertEqual(hopCountBucket(hops), bucket, hops)

    def test_bounds(self) -> None:
        """Each hop count is at most its bucket's bound and above the bound
        of the one before; the last bound is infinite."""
        for hops in range(0, 70000, 37):
            bucket = hopCountBucket(hops)
            self.assertLessEqual(hops, HOP_COUNT_BUCKET_BOUNDS[bucket])
            if bucket:
                self.assertGreater(hops, HOP_COUNT_BUCKET_BOUNDS[bucket - 1])
        self.assertEqual(len(HOP_COUNT_BUCKET_BOUNDS), MAX_COUNT_BUCKETS)


class CumulativeTests(SynchronousTestCase):
    """Per-bucket counts as cumulative histogram buckets."""

    def test_cumulative(self) -> None:
        """Counts add up from the first bucket on."""
        self.assertEqual(
            cumulativeBuckets((1.0, 2.0, math.inf), [1, 2, 3]),
            ((1.0, 1.0), (2.0, 3.0), (math.inf, 6.0)),
        )

    def test_overflowIntoLast(self) -> None:
        """Counts beyond the last bound (ctdbd's unused lock buckets 11-15)
        go into the last bucket; fewer counts than bounds are zeros."""
        self.assertEqual(
            cumulativeBuckets((1.0, math.inf), [1, 2, 3, 4]),
            ((1.0, 1.0), (math.inf, 10.0)),
        )
        self.assertEqual(
            cumulativeBuckets((1.0, 2.0, math.inf), [5]),
            ((1.0, 5.0), (2.0, 5.0), (math.inf, 5.0)),
        )
