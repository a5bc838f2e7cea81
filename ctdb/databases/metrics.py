# -*- test-case-name: tests.metrics.test_collector -*-
"""
The databases' figures for the metrics endpoint (an L{IMetricsSource}):
the attached databases by kind, and for each its records in this node's
copy and its C{struct ctdb_db_statistics} (locks, lock waits, hop counts,
read-only delegations, vacuuming).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zope.interface import implementer

from ctdb.interfaces import IMetricsSource, MetricSample
from ctdb.protocols.buckets import (
    HOP_COUNT_BUCKET_BOUNDS,
    LOCK_BUCKET_BOUNDS,
    cumulativeBuckets,
)

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon
    from ctdb.databases.manager import DatabaseManager
    from ctdb.databases.model import Database

#: the kinds of database, as C{ctdb getdbmap} names them
KINDS = ("volatile", "persistent", "replicated")


def databaseKind(db: Database) -> str:
    if db.persistent:
        return "persistent"
    if db.replicated:
        return "replicated"
    return "volatile"


@implementer(IMetricsSource)
class DatabaseMetrics:
    """The metrics of a L{DatabaseManager}'s databases."""

    def __init__(self, databases: DatabaseManager) -> None:
        self.databases = databases

    def plugInto(self, daemon: Daemon) -> None:
        """Show these figures on the daemon's metrics endpoint."""
        daemon.addMetricsSource(self)

    def metricSamples(self) -> list[MetricSample]:
        dbs = sorted(self.databases.byId.values(), key=lambda db: db.name)
        samples = [
            MetricSample(
                "ctdb_databases",
                "gauge",
                "Databases attached on this node, by kind.",
                float(sum(1 for db in dbs if databaseKind(db) == kind)),
                (("kind", kind),),
            )
            for kind in KINDS
        ]
        for db in dbs:
            samples += self._database(db)
        return samples

    def _database(self, db: Database) -> list[MetricSample]:
        labels = (("db", db.name),)
        st = db.stats
        samples = []
        # Counting takes a snapshot of the file; a record a client holds
        # locked now makes us skip the figure rather than wait.
        items = db.store.itemsNonblock()
        if items is not None:
            samples.append(
                MetricSample(
                    "ctdb_database_records",
                    "gauge",
                    "Records in this node's copy of each database (for a"
                    " volatile one, the records that live or once lived here,"
                    " empty ones awaiting vacuuming included).",
                    float(len(items)),
                    (*labels, ("kind", databaseKind(db))),
                )
            )
        lockTotal = st.locks_latency[3]
        vacuumCount, _, _, vacuumTotal = st.vacuum_latency
        samples += [
            MetricSample(
                "ctdb_database_frozen",
                "gauge",
                "1 while a database is frozen for recovery.",
                float(db.frozen),
                labels,
            ),
            MetricSample(
                "ctdb_database_locks_calls_total",
                "counter",
                "Lock requests on each database.",
                float(st.locks_num_calls),
                labels,
            ),
            MetricSample(
                "ctdb_database_locks_current",
                "gauge",
                "Lock requests in progress on each database.",
                float(st.locks_num_current),
                labels,
            ),
            MetricSample(
                "ctdb_database_locks_pending",
                "gauge",
                "Lock requests waiting for their lock on each database.",
                float(st.locks_num_pending),
                labels,
            ),
            MetricSample(
                "ctdb_database_locks_failed_total",
                "counter",
                "Lock requests on each database that failed.",
                float(st.locks_num_failed),
                labels,
            ),
            MetricSample(
                "ctdb_database_lock_latency_seconds",
                "histogram",
                "Time lock requests on each database waited for their lock.",
                float(lockTotal),
                labels,
                cumulativeBuckets(LOCK_BUCKET_BOUNDS, st.locks_buckets),
            ),
            MetricSample(
                "ctdb_database_hop_count",
                "histogram",
                "Hops record calls on each database needed to find the"
                " record's data master (no sum: ctdbd keeps none).",
                float("nan"),
                labels,
                cumulativeBuckets(HOP_COUNT_BUCKET_BOUNDS, st.hop_count_bucket),
            ),
            MetricSample(
                "ctdb_database_ro_delegations_total",
                "counter",
                "Read-only delegations granted on each database.",
                float(st.db_ro_delegations),
                labels,
            ),
            MetricSample(
                "ctdb_database_ro_revokes_total",
                "counter",
                "Read-only delegations revoked on each database.",
                float(st.db_ro_revokes),
                labels,
            ),
            MetricSample(
                "ctdb_database_vacuum_runs_total",
                "counter",
                "Vacuuming runs on each database.",
                float(vacuumCount),
                labels,
            ),
            MetricSample(
                "ctdb_database_vacuum_seconds_total",
                "counter",
                "Time spent vacuuming each database.",
                float(vacuumTotal),
                labels,
            ),
        ]
        return samples
