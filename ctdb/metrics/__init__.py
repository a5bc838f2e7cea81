# -*- test-case-name: tests.metrics -*-
"""
Metrics: an optional HTTP endpoint per node serving Prometheus' text
format (docs/METRICS.md lists every metric).

L{collector.NodeCollector} reads the daemon core and the samples of the
subsystems' L{ctdb.interfaces.IMetricsSource}s; L{web.MetricsService}
serves them at C{/metrics} on a Twisted endpoint string.  Each node has a
registry of its own (L{nodeRegistry}), never prometheus_client's global
one, since several nodes run in one process in tests.  Only this package
uses prometheus_client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.registry import CollectorRegistry

from ctdb.metrics.collector import NodeCollector
from ctdb.metrics.web import MetricsService, checkEndpoint

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon
    from ctdb.interfaces import ICTDBReactor

__all__ = ["MetricsService", "checkEndpoint", "metricsService", "nodeRegistry"]


def nodeRegistry(daemon: Daemon) -> CollectorRegistry:
    """A registry of C{daemon}'s own with its collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(daemon))
    return registry


def metricsService(
    daemon: Daemon, *, reactor: ICTDBReactor, endpoint: str
) -> MetricsService:
    """The service (C{"metrics"}) serving C{daemon}'s metrics on the
    endpoint string C{endpoint}; L{ctdb.errors.ConfigError} if the string
    names no endpoint."""
    return MetricsService(
        reactor=reactor, description=endpoint, registry=nodeRegistry(daemon)
    )
