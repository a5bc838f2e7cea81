# -*- test-case-name: tests.metrics.test_buckets -*-
"""
What each of the 16 count buckets of C{struct ctdb_statistics} and
C{struct ctdb_db_statistics} counts (Samba 4.17): C{locks.buckets} by how
long a lock request waited (C{lock_bucket_id} of C{server/ctdb_lock.c}),
C{hop_count_bucket} by how many hops a record call needed
(C{ctdb_call.c}: the number of significant bits of the hop count), as
upper bounds for histograms.

Pure: no I/O, no Twisted import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate

#: buckets per histogram of both structs (MAX_COUNT_BUCKETS)
MAX_COUNT_BUCKETS = 16

#: the upper bound (seconds, exclusive in ctdbd) of each lock-wait bucket:
#: below 1 ms, 10 ms, 100 ms, 1 s, 2, 4, 8, 16, 32, 64 s, and longer;
#: buckets 11-15 are never used
LOCK_BUCKET_BOUNDS: tuple[float, ...] = (
    0.001,
    0.01,
    0.1,
    1.0,
    2.0,
    4.0,
    8.0,
    16.0,
    32.0,
    64.0,
    math.inf,
)

#: the largest hop count of each hop-count bucket: bucket 0 holds calls of
#: no hop, bucket b (1-14) those of 2**(b-1) to 2**b - 1 hops, bucket 15
#: every call of 2**14 hops or more
HOP_COUNT_BUCKET_BOUNDS: tuple[float, ...] = (
    *(float(2**b - 1) for b in range(MAX_COUNT_BUCKETS - 1)),
    math.inf,
)


def lockBucket(seconds: float) -> int:
    """lock_bucket_id: the bucket of a lock request that waited C{seconds}."""
    for i, bound in enumerate(LOCK_BUCKET_BOUNDS):
        if seconds < bound:
            return i
    return len(LOCK_BUCKET_BOUNDS) - 1


def hopCountBucket(hops: int) -> int:
    """The bucket of a record call that needed C{hops} hops."""
    return min(hops.bit_length(), MAX_COUNT_BUCKETS - 1)


def cumulativeBuckets(
    bounds: Sequence[float], counts: Sequence[int]
) -> tuple[tuple[float, float], ...]:
    """Per-bucket C{counts} (as ctdbd keeps them) as (upper bound,
    cumulative count) pairs, a histogram's buckets; counts past the last
    bound go into it."""
    merged = list(counts[: len(bounds)])
    merged += [0] * (len(bounds) - len(merged))
    merged[-1] += sum(counts[len(bounds) :])
    return tuple((b, float(c)) for b, c in zip(bounds, accumulate(merged), strict=True))
