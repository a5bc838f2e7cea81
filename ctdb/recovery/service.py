# -*- test-case-name: tests.recovery.test_service -*-
"""
The recovery service: leader election, the leader broadcast, cluster
monitoring, recovery and banning (ctdb_recoverd.c), running inside the
daemon process and talking to every node through the control channel.

Differences from ctdbd 4.17, on purpose and documented in the README:
 - a dead node is noticed from the transport at once, and a dead leader
   starts an election at once instead of after the leader broadcast timeout;
 - elections wait 0.5 s (ctdbd's "fast start" value) instead of
   ElectionTimeout;
 - the leader checks the cluster four times a second and at once when a
   node's state changes, instead of every RecoverInterval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from zope.interface import implementer

from ctdb.interfaces import IMetricsSource, INodeStateObserver, ISrvidObserver
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.srvids import (
    CTDB_SRVID_BANNING,
    CTDB_SRVID_DISABLE_RECOVERIES,
    CTDB_SRVID_ELECTION,
    CTDB_SRVID_LEADER,
    CTDB_SRVID_TAKEOVER_RUN,
)
from ctdb.recovery.banning import Banning
from ctdb.recovery.clusterlock import ClusterLock
from ctdb.recovery.controls import RecoveryControls
from ctdb.recovery.leadership import ELECTION_WAIT, Leadership
from ctdb.recovery.metrics import RecoveryMetrics
from ctdb.recovery.monitoring import MONITOR_INTERVAL, Monitoring

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon


@implementer(INodeStateObserver, ISrvidObserver, IMetricsSource)
class RecoveryService(Service, Leadership, Monitoring, Banning, RecoveryMetrics):
    log = Logger()
    name = "recovery"  # type: ignore[assignment]  # Service.name is untyped None

    def __init__(self, daemon: Daemon, controls: RecoveryControls) -> None:
        self.daemon = daemon
        #: the daemon-side recovery controls: our own flags and bans
        self.recoveryControls = controls
        self.reactor = daemon.reactor
        self.leader = P.CTDB_UNKNOWN_PNN
        self.priorityTime = self.reactor.seconds()
        self.electionInProgress = False
        self.recovering = False
        self.needRecovery = False
        self.initRecoveryMetrics()
        self.culprits: dict[int, list[float]] = {}
        self._electionTimer: IDelayedCall | None = None
        self._sendElection: IDelayedCall | None = None
        self._leaderTimeout: IDelayedCall | None = None
        self._checkPending: IDelayedCall | None = None
        self._broadcast: task.LoopingCall | None = None
        self._monitor: task.LoopingCall | None = None
        self._checking = False
        #: until a leader or an election is heard of: this node is joining
        self._joining = True
        #: each node's flags when this node last looked (nodeStateChanged)
        self._seenFlags: dict[int, int] = {}
        self._startedAt = self.reactor.seconds()
        self._lastConnect: float | None = None
        self._joinChecking = False
        #: TAKEOVER_RUN requests (pnn, srvid) waiting for a leader, or for
        #: this leader's next takeover run
        self._takeoverRequests: list[tuple[int, int]] = []
        #: need_takeover_run: the last takeover run failed, or node states
        #: changed since it ran
        self.needTakeoverRun = False
        #: when a failed takeover run may be tried again
        self._takeoverRetryAt = 0.0
        #: the timer of a DISABLE_RECOVERIES request (ctdb_op_disable)
        self._recoveriesDisabled: IDelayedCall | None = None
        self.clusterLock = None
        if daemon.config.recoveryLock:
            self.clusterLock = ClusterLock(
                reactor=self.reactor, spec=daemon.config.recoveryLock
            )
            self.clusterLock.onLost.append(self._clusterLockLost)

    # -- service -------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        # ctdbd's recoverd takes its priority time when it starts: the
        # longest-running node wins elections.
        self.priorityTime = self.reactor.seconds()
        self._startedAt = self.priorityTime
        self.daemon.recmode = C.CTDB_RECOVERY_ACTIVE
        self.daemon.setRunstate(C.RunState.FIRST_RECOVERY)
        self._broadcast = task.LoopingCall(self._leaderBroadcast)
        self._broadcast.clock = self.reactor
        self._broadcast.start(1.0, now=False)
        self._monitor = task.LoopingCall(self._monitorTick)
        self._monitor.clock = self.reactor
        self._monitor.start(MONITOR_INTERVAL, now=False)
        # Wait a moment for a leader broadcast before calling an election.
        self._restartLeaderTimeout(ELECTION_WAIT)

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        waitLock = None
        if self.clusterLock is not None:
            waitLock = defer.Deferred.fromCoroutine(self.clusterLock.release())
        for loop in (self._broadcast, self._monitor):
            if loop is not None and loop.running:
                loop.stop()
        for timer in (
            self._electionTimer,
            self._sendElection,
            self._leaderTimeout,
            self._checkPending,
            self._recoveriesDisabled,
        ):
            if timer is not None and timer.active():
                timer.cancel()
        return waitLock

    # -- properties --------------------------------------------------------------

    @property
    def pnn(self) -> int:
        return self.daemon.pnn

    # -- the seams of the daemon -------------------------------------------------------

    def plugInto(self, daemon: Daemon) -> None:
        """Register the recovery messages and the node-state and srvid seams
        (ctdb.interfaces)."""
        daemon.addMessageHandler(CTDB_SRVID_LEADER, self._leaderMessage)
        daemon.addMessageHandler(CTDB_SRVID_ELECTION, self._electionMessage)
        daemon.addMessageHandler(CTDB_SRVID_BANNING, self._banningMessage)
        daemon.addMessageHandler(CTDB_SRVID_TAKEOVER_RUN, self._takeoverRunMessage)
        daemon.addMessageHandler(
            CTDB_SRVID_DISABLE_RECOVERIES, self._disableRecoveriesMessage
        )
        daemon.addNodeStateObserver(self)
        daemon.addSrvidObserver(self)
        daemon.addMetricsSource(self)
