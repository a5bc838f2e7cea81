# -*- test-case-name: tests.metrics.test_collector -*-
"""
Public-IP takeover's figures for the metrics endpoint (each an
L{IMetricsSource}): the takeover runs this node ran as leader, with their
durations (L{TakeoverRunMetrics}, part of the L{TakeoverRunner}), and the
public addresses this node serves (L{PublicAddressMetrics}, part of
L{PublicAddresses}).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ctdb.interfaces import MetricSample, TimedOutcomes
from ctdb.protocols.packet import CTDB_UNKNOWN_PNN

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon
    from ctdb.takeover.state import VnnTable

#: the upper bounds (seconds) of the takeover-run-duration histogram
TAKEOVER_DURATION_BOUNDS: tuple[float, ...] = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    math.inf,
)


class TakeoverRunMetrics:
    """Counts a takeover runner's runs; answers L{IMetricsSource}."""

    if TYPE_CHECKING:

        def takeoverRunsDisabled(self) -> bool: ...
        def takeoverRunInProgress(self) -> bool: ...

    def initRunMetrics(self) -> None:
        self._runs = TimedOutcomes(TAKEOVER_DURATION_BOUNDS)

    def noteTakeoverRun(self, ok: bool, seconds: float) -> None:
        """A takeover run ended after C{seconds}."""
        self._runs.note(ok, seconds)

    def metricSamples(self) -> list[MetricSample]:
        """This node's takeover runs, and whether runs are held off."""
        samples = self._runs.resultSamples(
            "ctdb_takeover_runs_total",
            "Takeover runs (public address allocations) this node ran as"
            " leader, by result.",
        )
        samples += [
            self._runs.durationSample(
                "ctdb_takeover_run_duration_seconds",
                "How long the takeover runs this node ran took.",
            ),
            MetricSample(
                "ctdb_takeover_run_in_progress",
                "gauge",
                "1 while this node runs a takeover run.",
                float(self.takeoverRunInProgress()),
            ),
            MetricSample(
                "ctdb_takeover_runs_disabled",
                "gauge",
                "1 while takeover runs are held off (DISABLE_TAKEOVER_RUNS).",
                float(self.takeoverRunsDisabled()),
            ),
        ]
        return samples


class PublicAddressMetrics:
    """The public addresses of a node, for L{IMetricsSource}."""

    if TYPE_CHECKING:
        daemon: Daemon
        table: VnnTable

    def metricSamples(self) -> list[MetricSample]:
        """How many public addresses this node has and serves, and who
        serves each as far as it knows."""
        me = self.daemon.pnn
        vnns = list(self.table)
        samples = [
            MetricSample(
                "ctdb_public_addresses",
                "gauge",
                "Public addresses configured on this node.",
                float(len(vnns)),
            ),
            MetricSample(
                "ctdb_public_addresses_held",
                "gauge",
                "Public addresses this node serves now.",
                float(sum(1 for v in vnns if v.pnn == me)),
            ),
        ]
        for vnn in vnns:
            labels = (("address", vnn.address),)
            samples.append(
                MetricSample(
                    "ctdb_public_address_node",
                    "gauge",
                    "The node serving each public address of this node, as this"
                    " node knows it; -1 for none.",
                    float(vnn.pnn if vnn.pnn != CTDB_UNKNOWN_PNN else -1),
                    labels,
                )
            )
            samples.append(
                MetricSample(
                    "ctdb_public_address_held",
                    "gauge",
                    "1 for each public address this node serves now.",
                    float(vnn.pnn == me),
                    labels,
                )
            )
        return samples
