# -*- test-case-name: tests.metrics.test_collector -*-
"""
What a node's metrics endpoint shows, read afresh at every scrape: the
daemon core's own state (its C{struct ctdb_statistics} counters and
latencies, node map and flags, run state, recovery mode, vnn map and
generation, clients, uptime) and the samples of every L{IMetricsSource}
the subsystems registered with it (leader and recoveries, takeover runs,
public addresses, databases).

Latencies that Samba keeps in buckets become Prometheus histograms: the
lock wait (C{locks.buckets}, C{lock_bucket_id} of Samba's
C{server/ctdb_lock.c}: below 1 ms, 10 ms, 100 ms, 1 s, 2, 4, 8, 16, 32,
64 s, and longer) and the hops of a record call (C{hop_count_bucket},
C{ctdb_call.c}: bucket I{b} counts calls whose hop count has I{b}
significant bits).  Those kept as count, minimum, maximum and total
become a summary (count and sum) with gauges for the minimum and maximum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from twisted.logger import Logger

from ctdb.interfaces import MetricSample
from ctdb.protocols.buckets import (
    HOP_COUNT_BUCKET_BOUNDS,
    LOCK_BUCKET_BOUNDS,
    cumulativeBuckets,
)
from ctdb.protocols.nodestate import (
    CTDB_CAP_LMASTER,
    CTDB_CAP_RECMASTER,
    CTDB_RECOVERY_NORMAL,
    NODE_FLAGS_BANNED,
    NODE_FLAGS_DELETED,
    NODE_FLAGS_DISCONNECTED,
    NODE_FLAGS_PERMANENTLY_DISABLED,
    NODE_FLAGS_STOPPED,
    NODE_FLAGS_UNHEALTHY,
    RunState,
)
from ctdb.protocols.statistics import STAT_COUNTERS, LatencyCounter

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon

#: every metric's name starts with this
PREFIX = "ctdb_"

#: the flags of the node map, each its own 0/1 series
NODE_FLAG_NAMES: tuple[tuple[str, int], ...] = (
    ("disconnected", NODE_FLAGS_DISCONNECTED),
    ("unhealthy", NODE_FLAGS_UNHEALTHY),
    ("disabled", NODE_FLAGS_PERMANENTLY_DISABLED),
    ("banned", NODE_FLAGS_BANNED),
    ("deleted", NODE_FLAGS_DELETED),
    ("stopped", NODE_FLAGS_STOPPED),
)

#: struct ctdb_statistics counters that are levels, not running counts
_GAUGE_COUNTERS = ("num_clients", "frozen", "recovering")

#: help for the running counts of struct ctdb_statistics, by Samba's name
_COUNTER_HELP = {
    "client_packets_sent": "Packets sent to local clients.",
    "client_packets_recv": "Packets received from local clients.",
    "node_packets_sent": "Packets sent to other nodes.",
    "node_packets_recv": "Packets received from other nodes.",
    "keepalive_packets_sent": "Keepalive packets sent to other nodes.",
    "keepalive_packets_recv": "Keepalive packets received from other nodes.",
    "timeouts.call": "Record calls that timed out.",
    "timeouts.control": "Controls to other nodes that timed out.",
    "timeouts.traverse": "Database traverses that timed out.",
}

#: the latencies kept as num/min/max/total, by Samba's name
_LATENCIES: tuple[tuple[str, str, str], ...] = (
    (
        "reclock_ctdbd",
        "reclock_ctdbd_latency",
        "Time the daemon took to check the cluster lock.",
    ),
    (
        "reclock_recd",
        "reclock_recd_latency",
        "Time the recovery daemon took to take the cluster lock.",
    ),
    ("call_latency", "call_latency", "Time from a record call to its reply."),
    (
        "childwrite_latency",
        "childwrite_latency",
        "Time of a record write done by a child process.",
    ),
)


#: the figures of C{locks} (kind, metric name without C{ctdb_}, Samba's
#: field, help)
_LOCK_FIGURES: tuple[tuple[str, str, str, str], ...] = (
    ("counter", "locks_calls", "num_calls", "Record and database lock requests."),
    ("gauge", "locks_current", "num_current", "Lock requests in progress."),
    ("gauge", "locks_pending", "num_pending", "Lock requests waiting for the lock."),
    ("counter", "locks_failed", "num_failed", "Lock requests that failed."),
)

#: the record-call figures of struct ctdb_statistics, as L{_LOCK_FIGURES}
_CALL_FIGURES: tuple[tuple[str, str, str, str], ...] = (
    ("counter", "calls", "total_calls", "Record calls made by local clients."),
    (
        "gauge",
        "pending_calls",
        "pending_calls",
        "Record calls waiting for their reply.",
    ),
    (
        "counter",
        "childwrite_calls",
        "childwrite_calls",
        "Record writes done by a child process.",
    ),
    (
        "gauge",
        "pending_childwrite_calls",
        "pending_childwrite_calls",
        "Record writes by a child process in progress.",
    ),
    ("gauge", "memory_used_bytes", "memory_used", "Memory the daemon reports in use."),
    (
        "gauge",
        "max_hop_count",
        "max_hop_count",
        "The largest hop count a record call needed.",
    ),
)


def _figures(
    table: tuple[tuple[str, str, str, str], ...], values: Mapping[str, int]
) -> Iterator[Metric]:
    """One counter or gauge a row of C{table}, its value from C{values}."""
    for kind, name, field, help in table:
        family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        yield family(PREFIX + name, help, value=values.get(field, 0))


def metricName(samba: str) -> str:
    """A statistics field's metric name: Samba's name with C{ctdb_} in
    front and dots as underscores (C{node.req_call} is
    C{ctdb_node_req_call})."""
    return PREFIX + samba.replace(".", "_")


def _counterHelp(samba: str) -> str:
    help = _COUNTER_HELP.get(samba)
    if help is not None:
        return help
    side, _, op = samba.partition(".")
    source = "other nodes" if side == "node" else "local clients"
    return f"{op.upper()} packets received from {source}."


def _bound(value: float) -> str:
    """A bucket bound as Prometheus writes one."""
    if value == math.inf:
        return "+Inf"
    return repr(float(value))


def _histogramBuckets(
    bounds: Sequence[float], counts: Sequence[int]
) -> list[tuple[str, float]]:
    return [(_bound(b), c) for b, c in cumulativeBuckets(bounds, counts)]


class NodeCollector(Collector):
    """
    The metrics of one node: C{collect} reads the daemon core and asks the
    daemon's metrics sources for theirs.  Register it with a registry of the
    node's own (several nodes run in one process in tests).
    """

    log = Logger()

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Metric]:
        yield from self.coreMetrics()
        samples: list[MetricSample] = []
        for source in self.daemon.metricsSources:
            try:
                samples.extend(source.metricSamples())
            except Exception:  # noqa: BLE001 - one broken source must not end the scrape
                self.log.failure("metrics source {source!r} failed", source=source)
        yield from familiesOf(samples)

    # -- the core's own figures -------------------------------------------

    def coreMetrics(self) -> Iterator[Metric]:
        d = self.daemon
        yield GaugeMetricFamily(PREFIX + "pnn", "This node's PNN.", value=d.pnn)
        yield from self._statistics()
        yield from self._nodes()
        runstate = GaugeMetricFamily(
            PREFIX + "runstate",
            "This node's run state: 1 for the state it is in, 0 for the others.",
            labels=["state"],
        )
        for state in RunState:
            runstate.add_metric([state.name], float(d.runstate == state))
        yield runstate
        yield GaugeMetricFamily(
            PREFIX + "recovery_mode",
            "This node's recovery mode: 0 normal, 1 active (recovering).",
            value=float(d.recmode != CTDB_RECOVERY_NORMAL),
        )
        yield GaugeMetricFamily(
            PREFIX + "generation",
            "The generation of this node's vnn map (changes with every recovery).",
            value=d.vnnMap.generation,
        )
        yield GaugeMetricFamily(
            PREFIX + "vnnmap_size",
            "Nodes in this node's vnn map (the lmasters).",
            value=len(d.vnnMap.map),
        )
        caps = GaugeMetricFamily(
            PREFIX + "capability",
            "This node's capabilities: 1 when it has it.",
            labels=["capability"],
        )
        caps.add_metric(["leader"], float(bool(d.capabilities & CTDB_CAP_RECMASTER)))
        caps.add_metric(["lmaster"], float(bool(d.capabilities & CTDB_CAP_LMASTER)))
        yield caps
        yield GaugeMetricFamily(
            PREFIX + "start_time_seconds",
            "When the daemon started (Unix time).",
            value=d.startTime,
        )
        yield GaugeMetricFamily(
            PREFIX + "last_recovery_started_seconds",
            "When this node's last recovery started (Unix time; 0 before the first).",
            value=d.lastRecoveryStarted,
        )
        yield GaugeMetricFamily(
            PREFIX + "last_recovery_finished_seconds",
            "When this node's last recovery finished (Unix time; 0 before the first).",
            value=d.lastRecoveryFinished,
        )
        duration = d.lastRecoveryFinished - d.lastRecoveryStarted
        yield GaugeMetricFamily(
            PREFIX + "last_recovery_duration_seconds",
            "How long this node's last finished recovery took (ctdb uptime's"
            " 'Duration of last recovery').",
            value=max(duration, 0.0),
        )

    def _statistics(self) -> Iterator[Metric]:
        d = self.daemon
        s = d.stats
        counters = s.counters
        levels = {
            "num_clients": float(len(d.clients)),
            "frozen": float(counters.get("frozen", 0)),
            "recovering": float(d.recmode != CTDB_RECOVERY_NORMAL),
        }
        helps = {
            "num_clients": "Local clients connected to the daemon.",
            "frozen": "1 while the node's databases are frozen.",
            "recovering": "1 while the node is in recovery.",
        }
        for name in _GAUGE_COUNTERS:
            yield GaugeMetricFamily(metricName(name), helps[name], value=levels[name])
        for name in STAT_COUNTERS:
            if name in _GAUGE_COUNTERS:
                continue
            yield CounterMetricFamily(
                metricName(name), _counterHelp(name), value=counters.get(name, 0)
            )
        yield CounterMetricFamily(
            PREFIX + "num_recoveries",
            "Recoveries this node took part in (START_RECOVERY received).",
            value=s.num_recoveries,
        )
        yield CounterMetricFamily(
            PREFIX + "ro_delegations",
            "Read-only delegations of records this node granted.",
            value=s.total_ro_delegations,
        )
        yield CounterMetricFamily(
            PREFIX + "ro_revokes",
            "Read-only delegations this node revoked.",
            value=s.total_ro_revokes,
        )
        yield GaugeMetricFamily(
            PREFIX + "statistics_start_time_seconds",
            "When the statistics counters started counting (daemon start or the"
            " last STATISTICS_RESET; Unix time).",
            value=s.statistics_start_time,
        )
        # -- record locks
        yield from _figures(_LOCK_FIGURES, s.locks)
        lockLatency = HistogramMetricFamily(
            PREFIX + "lock_latency_seconds",
            "Time lock requests waited for their lock (ctdbd's lock buckets).",
        )
        lockLatency.add_metric(
            [],
            _histogramBuckets(LOCK_BUCKET_BOUNDS, s.locks_buckets),
            s.locks_latency.total,
        )
        yield lockLatency
        yield from _extremes(
            "lock_latency", "lock request wait", s.locks_latency, labels=[]
        )
        # -- record calls
        yield from _figures(_CALL_FIGURES, s.calls)
        hops = HistogramMetricFamily(
            PREFIX + "hop_count",
            "Hops (redirections between nodes) record calls needed to find"
            " the record's data master.",
        )
        hops.add_metric(
            [], _histogramBuckets(HOP_COUNT_BUCKET_BOUNDS, s.hop_count_bucket), None
        )
        yield hops
        # -- latencies kept as num/min/max/total
        for field, name, help in _LATENCIES:
            latency: LatencyCounter = getattr(s, field)
            yield SummaryMetricFamily(
                f"{PREFIX}{name}_seconds",
                help,
                count_value=latency.num,
                sum_value=latency.total,
            )
            yield from _extremes(name, help[:1].lower() + help[1:-1], latency, [])

    def _nodes(self) -> Iterator[Metric]:
        d = self.daemon
        flags = GaugeMetricFamily(
            PREFIX + "node_flags",
            "Each node's flags as this node sees them (NODE_FLAGS_* bits).",
            labels=["node", "address"],
        )
        perFlag = GaugeMetricFamily(
            PREFIX + "node_flag",
            "Each node's flags, one series a flag: 1 when set.",
            labels=["node", "address", "flag"],
        )
        ok = GaugeMetricFamily(
            PREFIX + "node_ok",
            "1 for a node with no flag set (OK in ctdb status).",
            labels=["node", "address"],
        )
        for node in d.nodes:
            labels = [str(node.pnn), node.address]
            flags.add_metric(labels, node.flags)
            for flagName, bit in NODE_FLAG_NAMES:
                perFlag.add_metric([*labels, flagName], float(bool(node.flags & bit)))
            ok.add_metric(labels, float(node.flags == 0))
        yield flags
        yield perFlag
        yield ok
        yield GaugeMetricFamily(
            PREFIX + "nodes",
            "Nodes in the nodes file, deleted ones left out.",
            value=sum(1 for n in d.nodes if not n.flags & NODE_FLAGS_DELETED),
        )


def _extremes(
    name: str, what: str, latency: LatencyCounter, labels: list[str]
) -> Iterator[Metric]:
    """The minimum and maximum of a num/min/max/total latency."""
    for end, value in (("min", latency.min), ("max", latency.max)):
        family = GaugeMetricFamily(
            f"{PREFIX}{name}_{end}_seconds",
            f"The {'shortest' if end == 'min' else 'longest'} {what} since"
            " the statistics were reset.",
            labels=labels,
        )
        family.add_metric([], value)
        yield family


def familiesOf(samples: Iterable[MetricSample]) -> Iterator[Metric]:
    """The subsystems' plain samples as metric families, one a name (the
    first sample of a name gives its kind and help).  Samples whose name
    does not start with C{ctdb_}, or whose kind or labels do not fit their
    family, are left out and logged."""
    families: dict[str, tuple[Metric, str, tuple[str, ...]]] = {}
    for sample in samples:
        labelNames = tuple(k for k, _ in sample.labels)
        labelValues = [v for _, v in sample.labels]
        entry = families.get(sample.name)
        if entry is None:
            family = _newFamily(sample, labelNames)
            if family is None:
                continue
            entry = families[sample.name] = (family, sample.kind, labelNames)
        family, kind, names = entry
        if kind != sample.kind or names != labelNames:
            NodeCollector.log.warn(
                "metric sample {name} does not fit its family", name=sample.name
            )
            continue
        if kind == "histogram":
            assert isinstance(family, HistogramMetricFamily)
            family.add_metric(
                labelValues,
                [(_bound(b), float(c)) for b, c in sample.buckets],
                # NaN: no sum is kept (hop counts)
                None if math.isnan(sample.value) else sample.value,
            )
        else:
            family.add_metric(labelValues, sample.value)  # type: ignore[attr-defined]
    for family, _, _ in families.values():
        yield family


def _newFamily(sample: MetricSample, labelNames: tuple[str, ...]) -> Metric | None:
    name = sample.name
    if not name.startswith(PREFIX):
        NodeCollector.log.warn("metric {name} lacks the ctdb_ prefix", name=name)
        return None
    labels = list(labelNames)
    if sample.kind == "counter":
        return CounterMetricFamily(name, sample.help, labels=labels)
    if sample.kind == "gauge":
        return GaugeMetricFamily(name, sample.help, labels=labels)
    if sample.kind == "histogram":
        return HistogramMetricFamily(name, sample.help, labels=labels)
    NodeCollector.log.warn(
        "metric {name} has an unknown kind {kind}", name=name, kind=sample.kind
    )
    return None
