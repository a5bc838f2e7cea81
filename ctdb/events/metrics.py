# -*- test-case-name: tests.metrics.test_collector -*-
"""
The event scripts' figures for the metrics endpoint (an
L{IMetricsSource}): the events ctdbd drives (init, setup, startup,
startrecovery, recovered, ...) by result, and the monitor events behind
the node's health.
"""

from __future__ import annotations

import errno
from collections import Counter
from typing import TYPE_CHECKING

from zope.interface import implementer

from ctdb.events.health import isErrno
from ctdb.interfaces import IMetricsSource, MetricSample

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon
    from ctdb.events.lifecycle import EventLifecycle

#: how a monitor event can end, as the metric's C{result} label says it
MONITOR_RESULTS = ("success", "failure", "timeout", "cancelled")


def monitorResult(status: int) -> str:
    """The C{result} label of a monitor event that ended with C{status}."""
    if status == 0:
        return "success"
    if isErrno(status, errno.ETIMEDOUT):
        return "timeout"
    if isErrno(status, errno.ECANCELED):
        return "cancelled"
    return "failure"


@implementer(IMetricsSource)
class EventMetrics:
    """The metrics of a node's event lifecycle and health monitoring."""

    def __init__(self, lifecycle: EventLifecycle) -> None:
        self.lifecycle = lifecycle

    def plugInto(self, daemon: Daemon) -> None:
        """Show these figures on the daemon's metrics endpoint."""
        daemon.addMetricsSource(self)

    def metricSamples(self) -> list[MetricSample]:
        counts = Counter(
            (event, "success" if status == 0 else "failure")
            for event, status in self.lifecycle.events
        )
        samples = [
            MetricSample(
                "ctdb_events_total",
                "counter",
                "Events the node ran through its event scripts (init, setup,"
                " startup, startrecovery, recovered, shutdown), by result.",
                float(count),
                (("event", event), ("result", result)),
            )
            for (event, result), count in sorted(counts.items())
        ]
        health = self.lifecycle.health
        if health is None:
            return samples
        monitors = Counter(monitorResult(status) for status in health.results)
        samples += [
            MetricSample(
                "ctdb_monitor_events_total",
                "counter",
                "Monitor events that ended, by result (success, failure,"
                " timeout, cancelled).",
                float(monitors[result]),
                (("result", result),),
            )
            for result in MONITOR_RESULTS
        ]
        samples.append(
            MetricSample(
                "ctdb_monitor_timeouts_in_row",
                "gauge",
                "Monitor events timed out in a row (MonitorTimeoutCount of them"
                " make the node unhealthy).",
                float(health.timeouts),
            )
        )
        return samples
