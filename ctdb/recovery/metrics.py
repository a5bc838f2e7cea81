# -*- test-case-name: tests.metrics.test_collector -*-
"""
The recovery service's figures for the metrics endpoint (an
L{IMetricsSource}): the leader as this node knows it, elections, and the
recoveries this node ran as leader, with their durations.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ctdb.interfaces import MetricSample, TimedOutcomes
from ctdb.protocols.packet import CTDB_UNKNOWN_PNN

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon

#: the upper bounds (seconds) of the recovery-duration histogram
RECOVERY_DURATION_BOUNDS: tuple[float, ...] = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    math.inf,
)


class RecoveryMetrics:
    """The part of a recovery service that counts its recoveries and
    answers L{IMetricsSource.metricSamples}."""

    if TYPE_CHECKING:
        daemon: Daemon
        leader: int
        electionInProgress: bool
        recovering: bool

    def initRecoveryMetrics(self) -> None:
        self._recoveries = TimedOutcomes(RECOVERY_DURATION_BOUNDS)

    def noteRecovery(self, ok: bool, seconds: float) -> None:
        """A recovery this node ran as leader ended after C{seconds}."""
        self._recoveries.note(ok, seconds)

    def metricSamples(self) -> list[MetricSample]:
        """The leader, elections and this leader's recoveries."""
        leader = self.leader
        known = leader != CTDB_UNKNOWN_PNN
        samples = [
            MetricSample(
                "ctdb_leader",
                "gauge",
                "The leader (recovery master) as this node knows it; -1 unknown.",
                float(leader if known else -1),
            ),
            MetricSample(
                "ctdb_is_leader",
                "gauge",
                "1 when this node is the leader.",
                float(known and leader == self.daemon.pnn),
            ),
            MetricSample(
                "ctdb_election_in_progress",
                "gauge",
                "1 while an election of a leader goes on.",
                float(self.electionInProgress),
            ),
            MetricSample(
                "ctdb_leader_recovery_in_progress",
                "gauge",
                "1 while this node, as leader, runs a recovery.",
                float(self.recovering),
            ),
        ]
        samples += self._recoveries.resultSamples(
            "ctdb_leader_recoveries_total",
            "Recoveries this node ran as leader, by result.",
        )
        samples.append(
            self._recoveries.durationSample(
                "ctdb_leader_recovery_duration_seconds",
                "How long the recoveries this node ran as leader took.",
            )
        )
        return samples
