# -*- test-case-name: tests.recovery.test_service -*-
"""
Who leads the cluster (ctdb_recoverd.c): the leader broadcast, a starting
node joining a cluster that already has a leader, and elections, by
election messages or by the cluster lock.  A part of
L{ctdb.recovery.service.RecoveryService}.

Differences from ctdbd 4.17, on purpose and documented in the README:
 - a dead leader starts an election at once instead of after the leader
   broadcast timeout;
 - elections wait 0.5 s (ctdbd's "fast start" value) instead of
   ElectionTimeout, or 1 s when a connected node may be Samba's ctdbd
   (it answers an election message only after 0.5 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet import defer

from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.protocols.srvids import CTDB_SRVID_ELECTION, CTDB_SRVID_LEADER
from ctdb.recovery.election import ElectionMessage, electionWin

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall
    from twisted.logger import Logger

    from ctdb.daemon.core import Daemon
    from ctdb.interfaces import ICTDBReactor
    from ctdb.recovery.clusterlock import ClusterLock

ELECTION_WAIT = 0.5
#: ctdbd 4.17 answers an election message that it would win only 0.5 s
#: later (election_handler's send_election_te).  An election that a 4.17
#: ctdbd may take part in lasts long enough to hear that answer; with
#: ELECTION_WAIT this node would call itself leader first, broadcast it and
#: recover, then lose to the ctdbd's answer, leaving the two nodes each
#: thinking the other leads until the ctdbd's leader broadcast timeout.
CTDBD_ELECTION_WAIT = 1.0
#: A leader broadcasts every second; a node that has just connected to a
#: peer waits this long for the peer's broadcast before it calls its first
#: election ...
BROADCAST_GRACE = 1.2
#: ... but no longer than this after it started (ctdbd waits its whole
#: "leader timeout", 5 s).
JOIN_WAIT_LIMIT = 2.5


class Leadership:
    """The leader broadcast and elections of a recovery service."""

    #: when this node last saw an election begin (its own or another's),
    #: for the duration in the line that ends it
    _electionStartedAt: float | None = None

    if TYPE_CHECKING:
        # what this part uses of the rest of the RecoveryService
        log: Logger
        daemon: Daemon
        reactor: ICTDBReactor
        running: int
        leader: int
        priorityTime: float
        electionInProgress: bool
        needRecovery: bool
        _recoveryReason: str | None
        clusterLock: ClusterLock | None
        _electionTimer: IDelayedCall | None
        _sendElection: IDelayedCall | None
        _leaderTimeout: IDelayedCall | None
        _joining: bool
        _startedAt: float
        _lastConnect: float | None
        _joinChecking: bool
        _takeoverRequests: list[tuple[int, int]]

        @property
        def pnn(self) -> int: ...
        def scheduleCheck(self, delay: float) -> None: ...

    # -- who may lead ----------------------------------------------------------------

    def isLeader(self) -> bool:
        return self.leader == self.pnn and not self.electionInProgress

    def canBeLeader(self) -> bool:
        d = self.daemon
        return bool(d.capabilities & C.CTDB_CAP_RECMASTER) and not (
            d.nodes[d.pnn].flags & C.NODE_FLAGS_INACTIVE
        )

    def electionData(self) -> ElectionMessage:
        d = self.daemon
        connected = sum(1 for n in d.nodes if not n.flags & C.NODE_FLAGS_DISCONNECTED)
        if not self.canBeLeader():
            # ctdb_election_data: "Try to lose..."
            return ElectionMessage(
                0, self.reactor.seconds(), d.pnn, d.nodes[d.pnn].flags
            )
        return ElectionMessage(
            connected, self.priorityTime, d.pnn, d.nodes[d.pnn].flags
        )

    # -- leader broadcast ------------------------------------------------------------

    def _leaderBroadcast(self) -> None:
        if self.isLeader():
            self.daemon.sendMessage(
                P.CTDB_BROADCAST_CONNECTED, CTDB_SRVID_LEADER, C.encodeU32(self.pnn)
            )

    def srvidRegistered(self, srvid: int, client: object) -> None:
        """Tell a client that registers for LEADER who leads, at once, when
        that is known (ctdbd makes it wait for the next broadcast)."""
        if (
            srvid == CTDB_SRVID_LEADER
            and self.leader != P.CTDB_UNKNOWN_PNN
            and not self.electionInProgress
        ):
            header = P.Header(
                P.Operation.REQ_MESSAGE,
                self.pnn,
                self.pnn,
                0,
                self.daemon.vnnMap.generation,
            )
            self.reactor.callLater(
                0,
                self.daemon.sendToClient,
                client,
                P.ReqMessage(header, CTDB_SRVID_LEADER, C.encodeU32(self.leader)),
            )

    def _leaderMessage(self, srvid: int, data: bytes) -> None:
        try:
            leader = C.decodeU32(data)
        except ValueError:
            return
        if leader == P.CTDB_UNKNOWN_PNN:
            return
        if leader == self.pnn:
            return
        self._joining = False
        if self.leader == self.pnn and not self.electionInProgress:
            self.forceElection(
                f"leader broadcast from node {leader} while this node leads"
            )
            return
        if self.leader != leader:
            self.log.info("Leader is now node {pnn}", pnn=leader)
        self.leader = leader
        self._restartLeaderTimeout()

    def _restartLeaderTimeout(self, delay: float | None = None) -> None:
        if self._leaderTimeout is not None and self._leaderTimeout.active():
            self._leaderTimeout.cancel()
        wait = (
            delay if delay is not None else float(self.daemon.tunables.ElectionTimeout)
        )
        self._leaderTimeout = self.reactor.callLater(wait, self._noLeader)

    def _noLeader(self) -> None:
        self._leaderTimeout = None
        if self.isLeader() or self.electionInProgress:
            return
        if self._joining:
            if not self._joinChecking:
                self._joinChecking = True
                d = defer.Deferred.fromCoroutine(self._joinCheck())
                d.addErrback(lambda f: self.log.failure("join check failed", f))
            return
        self.forceElection("leader broadcast timeout")

    async def _joinCheck(self) -> None:
        """
        A starting node calls its first election only when no cluster with
        a leader is around.  An established leader (a 4.17 ctdbd above all)
        broadcasts only once a second and accepts whatever leader
        broadcasts, so a node that elected itself before hearing it would
        take the leader role from a cluster that has one.  So: wait until
        every node is linked (at most JOIN_WAIT_LIMIT after the start); if
        a linked node has a valid generation (it has been recovered by a
        leader), wait BROADCAST_GRACE after the latest link for that
        leader's broadcast; otherwise elect now.  (ctdbd itself waits its
        whole "leader timeout", 5 s.)
        """
        try:
            d = self.daemon
            now = self.reactor.seconds()
            limit = self._startedAt + JOIN_WAIT_LIMIT
            others = [
                n
                for n in d.nodes
                if n.pnn != self.pnn and not n.flags & C.NODE_FLAGS_DELETED
            ]
            linked = [n.pnn for n in others if not n.flags & C.NODE_FLAGS_DISCONNECTED]
            if len(linked) < len(others) and now < limit:
                # nodeStateChanged checks again when a link comes up
                self._restartLeaderTimeout(limit - now)
                return
            established = False
            for pnn in linked:
                reply = await d.sendControl(pnn, Control.GETVNNMAP, timeout=1.0)
                if reply.status == 0:
                    vnn = C.VnnMap.decode(reply.data)
                    if vnn.generation != P.INVALID_GENERATION:
                        established = True
                        break
            if not self._joining:
                return
            now = self.reactor.seconds()
            if established and self._lastConnect is not None:
                wait = min(limit, self._lastConnect + BROADCAST_GRACE) - now
                if wait > 0:
                    self._restartLeaderTimeout(wait)
                    return
            self._joining = False
            if not (self.isLeader() or self.electionInProgress):
                self.forceElection("no leader broadcast")
        finally:
            self._joinChecking = False

    # -- elections ---------------------------------------------------------------------

    def forceElection(
        self, reason: str = "requested", formerLeader: int | None = None
    ) -> None:
        """Call an election: one line saying why (C{reason}), with the
        leader this node knew (C{formerLeader} if the caller has just
        forgotten it) and the generation."""
        if not self.running:
            return
        self._joining = False
        if formerLeader is None and self.leader != P.CTDB_UNKNOWN_PNN:
            formerLeader = self.leader
        self.log.info(
            "Start election: {reason}",
            reason=reason,
            step="election-started",
            node=self.pnn,
            leader=formerLeader,
            generation=self.daemon.vnnMap.generation,
        )
        self._electionStartedAt = self.reactor.seconds()
        self.electionInProgress = True
        self.daemon.recmode = C.CTDB_RECOVERY_ACTIVE
        self.daemon.sendMessage(
            P.CTDB_BROADCAST_CONNECTED,
            CTDB_SRVID_LEADER,
            C.encodeU32(P.CTDB_UNKNOWN_PNN),
        )
        if self.clusterLock is not None:
            defer.Deferred.fromCoroutine(self._clusterLockElection()).addErrback(
                lambda f: self.log.failure("cluster lock election failed", f)
            )
            return
        self._armElectionTimer()
        self._sendElectionRequest()

    async def _clusterLockElection(self) -> None:
        """cluster_lock_election: with a cluster lock, the leader is whoever
        holds it.  A node that cannot take it waits for the leader broadcast;
        in a split brain only the side with the lock recovers."""
        lock = self.clusterLock
        assert lock is not None
        if not self.canBeLeader():
            await lock.release()
            self.leader = P.CTDB_UNKNOWN_PNN
        elif lock.held:
            self.leader = self.pnn
        else:
            self.leader = P.CTDB_UNKNOWN_PNN
            started = self.reactor.seconds()
            if await lock.take():
                self.leader = self.pnn
                # _cluster_lock_lock's ctdb_ctrl_report_recd_lock_latency
                self.daemon.statsKeeper.reclockLatency(
                    "recd", self.reactor.seconds() - started
                )
        self.electionInProgress = False
        if self.leader == self.pnn:
            self.log.info(
                "This node ({pnn}) holds the cluster lock and leads{took}",
                pnn=self.pnn,
                **self._electionFields(self.pnn),
            )
            self._leaderBroadcast()
            self.needRecovery = True
            self._recoveryReason = "this node was elected leader"
            self.scheduleCheck(0)
        else:
            self._restartLeaderTimeout()

    def _clusterLockLost(self) -> None:
        if self.leader == self.pnn:
            self.log.error("Cluster lock lost: leaving the leader role")
            self.leader = P.CTDB_UNKNOWN_PNN
            self.forceElection("cluster lock lost", formerLeader=self.pnn)

    def electionWait(self) -> float:
        """How long an election lasts after the last election message:
        ELECTION_WAIT when every connected node is a txctdb node (it
        answers in 0.05 s), CTDBD_ELECTION_WAIT when one may be Samba's
        ctdbd (it answers after 0.5 s).  A node is known to be ours from its
        heartbeats (L{ctdb.daemon.heartbeat})."""
        d = self.daemon
        heartbeats = d.heartbeats
        for n in d.nodes:
            if n.pnn == d.pnn or n.flags & (
                C.NODE_FLAGS_DISCONNECTED | C.NODE_FLAGS_DELETED
            ):
                continue
            if heartbeats is None or not heartbeats.isOurs(n.pnn):
                return CTDBD_ELECTION_WAIT
        return ELECTION_WAIT

    def _armElectionTimer(self) -> None:
        if self._electionTimer is not None and self._electionTimer.active():
            self._electionTimer.cancel()
        self._electionTimer = self.reactor.callLater(
            self.electionWait(), self._electionDone
        )

    def _sendElectionRequest(self) -> None:
        self._sendElection = None
        if self.canBeLeader():
            self.leader = self.pnn
        self.daemon.sendMessage(
            P.CTDB_BROADCAST_ALL, CTDB_SRVID_ELECTION, self.electionData().encode()
        )

    def _electionMessage(self, srvid: int, data: bytes) -> None:
        if self.clusterLock is not None:
            # With a cluster lock, the lock decides; election messages only
            # tell us that someone is electing.
            return
        try:
            em = ElectionMessage.decode(data)
        except ValueError:
            return
        if em.pnn == self.pnn:
            return
        self._joining = False
        if not self.electionInProgress or self._electionStartedAt is None:
            self._electionStartedAt = self.reactor.seconds()
        self.electionInProgress = True
        self._armElectionTimer()
        if electionWin(self.electionData(), em, self.canBeLeader()):
            if self._sendElection is None or not self._sendElection.active():
                self._sendElection = self.reactor.callLater(
                    0.05, self._sendElectionRequest
                )
            return
        if self._sendElection is not None and self._sendElection.active():
            self._sendElection.cancel()
        self._sendElection = None
        self.leader = em.pnn

    def _electionDone(self) -> None:
        self._electionTimer = None
        self.electionInProgress = False
        if self.leader == self.pnn:
            if not self.canBeLeader():
                self.leader = P.CTDB_UNKNOWN_PNN
                self._restartLeaderTimeout()
                return
            self.log.info(
                "This node ({pnn}) is the leader{took}",
                pnn=self.pnn,
                **self._electionFields(self.pnn),
            )
            self._leaderBroadcast()
            self.needRecovery = True
            self._recoveryReason = "this node was elected leader"
            self.scheduleCheck(0)
        else:
            if self.leader != P.CTDB_UNKNOWN_PNN:
                self.log.info(
                    "Node {leader} won the election{took}",
                    **self._electionFields(self.leader),
                )
            self._takeoverRequests.clear()
            self._restartLeaderTimeout()

    def _electionFields(self, leader: int) -> dict[str, object]:
        """The fields of the line that ends an election: who leads, and how
        long since this node saw it begin (C{took}, its text)."""
        started, self._electionStartedAt = self._electionStartedAt, None
        duration = None if started is None else self.reactor.seconds() - started
        return {
            "step": "election-finished",
            "node": self.pnn,
            "leader": leader,
            "duration": None if duration is None else round(duration, 3),
            "generation": self.daemon.vnnMap.generation,
            "took": "" if duration is None else f" (election took {duration:.2f} s)",
        }
