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

import errno
from typing import TYPE_CHECKING

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from zope.interface import implementer

from ctdb.errors import RecoveryFailed
from ctdb.interfaces import INodeStateObserver, ISrvidObserver
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.protocols.srvids import (
    CTDB_SRVID_BANNING,
    CTDB_SRVID_DISABLE_RECOVERIES,
    CTDB_SRVID_ELECTION,
    CTDB_SRVID_LEADER,
    CTDB_SRVID_RECONFIGURE,
    CTDB_SRVID_TAKEOVER_RUN,
)
from ctdb.recovery.clusterlock import ClusterLock
from ctdb.recovery.controls import RecoveryControls, newGeneration
from ctdb.recovery.election import (
    ElectionMessage,
    decodeDisableMessage,
    decodeSrvidMessage,
    electionWin,
    encodeFlagChange,
)
from ctdb.recovery.procedure import recover

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon

ELECTION_WAIT = 0.5
MONITOR_INTERVAL = 0.25
#: A leader broadcasts every second; a node that has just connected to a
#: peer waits this long for the peer's broadcast before it calls its first
#: election ...
BROADCAST_GRACE = 1.2
#: ... but no longer than this after it started (ctdbd waits its whole
#: "leader timeout", 5 s).
JOIN_WAIT_LIMIT = 2.5


@implementer(INodeStateObserver, ISrvidObserver)
class RecoveryService(Service):
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
        self._startedAt = self.reactor.seconds()
        self._lastConnect: float | None = None
        self._joinChecking = False
        #: TAKEOVER_RUN requests (pnn, srvid) waiting for a leader
        self._takeoverRequests: list[tuple[int, int]] = []
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
            self.log.info(
                "Leader broadcast from node {other} while this node leads", other=leader
            )
            self.forceElection()
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
        self.log.info("Leader broadcast timeout: starting an election")
        self.forceElection()

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
                self.log.info("No leader broadcast: starting an election")
                self.forceElection()
        finally:
            self._joinChecking = False

    # -- elections ---------------------------------------------------------------------

    def forceElection(self) -> None:
        if not self.running:
            return
        self._joining = False
        self.log.info("Start election")
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
            if await lock.take():
                self.leader = self.pnn
        self.electionInProgress = False
        if self.leader == self.pnn:
            self.log.info(
                "This node ({pnn}) holds the cluster lock and leads", pnn=self.pnn
            )
            self._leaderBroadcast()
            self.needRecovery = True
            self.scheduleCheck(0)
        else:
            self._restartLeaderTimeout()

    def _clusterLockLost(self) -> None:
        if self.leader == self.pnn:
            self.log.error("Cluster lock lost: leaving the leader role")
            self.leader = P.CTDB_UNKNOWN_PNN
            self.forceElection()

    def _armElectionTimer(self) -> None:
        if self._electionTimer is not None and self._electionTimer.active():
            self._electionTimer.cancel()
        self._electionTimer = self.reactor.callLater(ELECTION_WAIT, self._electionDone)

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
            self.log.info("This node ({pnn}) is the leader", pnn=self.pnn)
            self._leaderBroadcast()
            self.needRecovery = True
            self.scheduleCheck(0)
        else:
            self._takeoverRequests.clear()
            self._restartLeaderTimeout()

    # -- monitoring ----------------------------------------------------------------------

    def nodeStateChanged(self, pnn: int) -> None:
        if not self.running:
            return
        node = self.daemon.nodes[pnn]
        if (
            self._joining
            and pnn != self.pnn
            and not node.flags & (C.NODE_FLAGS_DISCONNECTED | C.NODE_FLAGS_DELETED)
        ):
            self._lastConnect = now = self.reactor.seconds()
            if now - self._startedAt >= ELECTION_WAIT and not self._joinChecking:
                self._restartLeaderTimeout(0)
        if (
            pnn == self.leader
            and pnn != self.pnn
            and node.flags & (C.NODE_FLAGS_DISCONNECTED | C.NODE_FLAGS_INACTIVE)
        ):
            self.log.info("Leader node {pnn} is gone: election", pnn=pnn)
            self.leader = P.CTDB_UNKNOWN_PNN
            self.forceElection()
            return
        if pnn == self.pnn and not self.canBeLeader() and self.leader == self.pnn:
            self.leader = P.CTDB_UNKNOWN_PNN
            self.forceElection()
            return
        if self.isLeader():
            self.needRecovery = True
            self.scheduleCheck(0)

    def scheduleCheck(self, delay: float) -> None:
        if self._checkPending is None or not self._checkPending.active():
            self._checkPending = self.reactor.callLater(delay, self._monitorTick)

    def _monitorTick(self) -> None:
        if self.daemon.nodes[self.pnn].flags & C.NODE_FLAGS_INACTIVE:
            # main_loop: a stopped or banned node is made the youngest, so
            # that it does not take the leader role back when it returns.
            self.priorityTime = self.reactor.seconds()
        if not self.isLeader() or self._checking or self.recovering:
            return
        self._checking = True
        d = defer.Deferred.fromCoroutine(self._check())

        def done(_: object) -> None:
            self._checking = False

        d.addErrback(lambda f: self.log.failure("cluster check failed", f))
        d.addBoth(done)

    async def _check(self) -> None:
        d = self.daemon
        if not await self._updateFlags():
            return
        active = [n.pnn for n in d.nodes if not n.flags & C.NODE_FLAGS_INACTIVE]
        if self.needRecovery:
            await self.doRecovery("requested")
            return
        # update_capabilities, then: the vnn map holds exactly the active
        # nodes with the lmaster capability (the leader alone if none has it,
        # as the procedure builds it).
        lmasters = []
        for pnn in active:
            caps = await d.sendControl(pnn, Control.GET_CAPABILITIES, timeout=5)
            if caps.status != 0:
                await self.doRecovery(f"node {pnn} did not answer GET_CAPABILITIES")
                return
            if C.decodeU32(caps.data) & C.CTDB_CAP_LMASTER:
                lmasters.append(pnn)
        if sorted(d.vnnMap.map) != (lmasters or [self.pnn]):
            await self.doRecovery("vnn map does not match the active lmaster nodes")
            return
        for pnn in active:
            reply = await d.sendControl(pnn, Control.GETVNNMAP, timeout=5)
            if reply.status != 0:
                await self.doRecovery(f"node {pnn} did not answer GETVNNMAP")
                return
            vnn = C.VnnMap.decode(reply.data)
            if (
                vnn.generation != d.vnnMap.generation
                or vnn.generation == P.INVALID_GENERATION
            ):
                await self.doRecovery(
                    f"node {pnn} has generation 0x{vnn.generation:08x}"
                )
                return
            if vnn.map != d.vnnMap.map:
                await self.doRecovery(f"node {pnn} has a different vnn map")
                return
            mode = await d.sendControl(pnn, Control.GET_RECMODE, timeout=5)
            if mode.status != C.CTDB_RECOVERY_NORMAL:
                await self.doRecovery(f"node {pnn} is in recovery mode")
                return
            nodemap = await d.sendControl(pnn, Control.GET_NODEMAP, timeout=5)
            if nodemap.status == 0:
                for entry in C.decodeNodeMap(nodemap.data):
                    if entry.pnn == pnn and entry.pnn != self.pnn:
                        mine = d.nodes[pnn].flags & ~C.NODE_FLAGS_DISCONNECTED
                        theirs = entry.flags & ~C.NODE_FLAGS_DISCONNECTED
                        if mine != theirs:
                            self.recoveryControls.applyFlags(pnn, entry.flags)
                            await self.doRecovery(f"node {pnn} flags changed")
                            return

    async def _updateFlags(self) -> bool:
        """
        update_flags: take every connected node's own flags from its node
        map, and push (MODIFY_FLAGS to every connected node) the flags of
        any node that some connected node sees differently.  A 4.17 ctdbd
        starts with every other node UNHEALTHY and relies on the leader to
        tell it otherwise.  A view that differs only in DISCONNECTED is not
        pushed (no push can change a node's own link view).  False if a
        node map could not be read.
        """
        d = self.daemon
        connected = [
            n.pnn
            for n in d.nodes
            if not n.flags & (C.NODE_FLAGS_DISCONNECTED | C.NODE_FLAGS_DELETED)
        ]
        views: dict[int, dict[int, int]] = {}
        for pnn in connected:
            if pnn == self.pnn:
                continue
            reply = await d.sendControl(pnn, Control.GET_NODEMAP, timeout=5)
            if reply.status != 0:
                self.log.error("Failed to read the node map of node {pnn}", pnn=pnn)
                return False
            views[pnn] = {e.pnn: e.flags for e in C.decodeNodeMap(reply.data)}
        rc = self.recoveryControls
        for j in connected:
            local = d.nodes[j].flags
            push = False
            own = views.get(j, {}).get(j)
            if j != self.pnn and own is not None and own != local:
                self.log.info(
                    "Remote node {pnn} had flags 0x{theirs:x}, local had 0x{ours:x}"
                    " - updating local",
                    pnn=j,
                    theirs=own,
                    ours=local,
                )
                if rc is not None:
                    rc.applyFlags(j, own)
                local = d.nodes[j].flags
                push = True
            for i, view in views.items():
                if push:
                    break
                theirs = view.get(j)
                if (
                    i != j
                    and theirs is not None
                    and (
                        (theirs & ~C.NODE_FLAGS_DISCONNECTED)
                        != (local & ~C.NODE_FLAGS_DISCONNECTED)
                    )
                ):
                    push = True
            if push:
                self.log.info(
                    "Pushing updated flags for node {pnn} (0x{flags:x})",
                    pnn=j,
                    flags=local,
                )
                data = encodeFlagChange(j, local, local)
                await defer.gatherResults(
                    [
                        d.sendControl(p, Control.MODIFY_FLAGS, data, timeout=5)
                        for p in connected
                        if p != self.pnn
                    ]
                )
        return True

    async def doRecovery(self, reason: str) -> None:

        if self.recovering:
            return
        if self.recoveriesDisabled():
            # ctdb_op_begin: try again once they are enabled.
            self.log.debug("Unable to begin - recoveries are disabled")
            self.needRecovery = True
            return
        self.recovering = True
        self.needRecovery = False
        d = self.daemon
        self.log.info("Starting recovery: {reason}", reason=reason)
        generation = newGeneration()
        try:
            await recover(d, generation)
        except RecoveryFailed as e:
            self.log.error("Recovery failed: {err}", err=str(e))
            if e.culprit is not None and e.culprit != self.pnn:
                self.addCulprit(e.culprit, 1)
            self.needRecovery = True
            self.reactor.callLater(1.0, self.scheduleCheck, 0)
        except Exception:  # noqa: BLE001 - any failure means: recover again
            self.log.failure("Recovery failed")
            self.needRecovery = True
            self.reactor.callLater(1.0, self.scheduleCheck, 0)
        else:
            self.culprits.clear()
            d.sendMessage(P.CTDB_BROADCAST_CONNECTED, CTDB_SRVID_RECONFIGURE, b"")
            self._leaderBroadcast()
            self._answerTakeoverRequests()
        finally:
            self.recovering = False

    # -- banning -------------------------------------------------------------------------

    def addCulprit(self, pnn: int, credits: int) -> None:
        """ctdb_set_culprit_count: a node that causes recoveries earns credits;
        2 x nodes credits within RecoveryGracePeriod get it banned."""
        now = self.reactor.seconds()
        grace = self.daemon.tunables.RecoveryGracePeriod
        entries = [t for t in self.culprits.get(pnn, []) if now - t < grace]
        entries += [now] * credits
        self.culprits[pnn] = entries
        limit = 2 * len(self.daemon.nodes)
        if len(entries) >= limit and self.daemon.tunables.EnableBans:
            self.culprits[pnn] = []
            period = self.daemon.tunables.RecoveryBanPeriod
            self.log.error(
                "Banning node {pnn} for {secs} seconds", pnn=pnn, secs=period
            )
            self.daemon.sendControl(
                pnn, Control.SET_BAN_STATE, C.encodeBanState(pnn, period)
            )

    def _banningMessage(self, srvid: int, data: bytes) -> None:
        if not self.isLeader():
            return
        try:
            pnn = C.decodeU32(data)
        except ValueError:
            return
        if self.daemon.validPnn(pnn):
            self.addCulprit(pnn, len(self.daemon.nodes))

    # -- disabling recoveries (ctdb reloadnodes) ---------------------------------------------

    def recoveriesDisabled(self) -> bool:
        return (
            self._recoveriesDisabled is not None and self._recoveriesDisabled.active()
        )

    def disableRecoveries(self, timeout: int) -> int:
        """ctdb_op_disable: no recovery starts for C{timeout} seconds (0
        enables them again).  Returns 0, or -EAGAIN while one is running."""
        if timeout == 0:
            self._cancelDisable()
            self.log.info("Reenabling recoveries")
            self._recoveriesEnabled()
            return 0
        if self.recovering:
            self.log.error("Unable to disable recoveries - in progress")
            return -errno.EAGAIN
        self._cancelDisable()
        self.log.info("Disabling recoveries for {secs} seconds", secs=timeout)
        self._recoveriesDisabled = self.reactor.callLater(
            timeout, self._disableTimedOut
        )
        return 0

    def _cancelDisable(self) -> None:
        if self._recoveriesDisabled is not None and self._recoveriesDisabled.active():
            self._recoveriesDisabled.cancel()
        self._recoveriesDisabled = None

    def _disableTimedOut(self) -> None:
        self._recoveriesDisabled = None
        self.log.info("Reenabling recoveries after timeout")
        self._recoveriesEnabled()

    def _recoveriesEnabled(self) -> None:
        if self.running and self.isLeader() and self.needRecovery:
            self.scheduleCheck(0)

    def _disableRecoveriesMessage(self, srvid: int, data: bytes) -> None:
        """srvid_disable_and_reply: every node's recovery daemon answers the
        requester with its own pnn (or a negative errno)."""
        if len(data) != 24:
            self.log.error("Wrong size for disable message: {n} bytes", n=len(data))
            return
        pnn, replySrvid, timeout = decodeDisableMessage(data)
        ret = self.disableRecoveries(timeout)
        if ret == 0:
            ret = self.pnn
        if replySrvid != 0:
            self.daemon.sendMessage(pnn, replySrvid, C.encodeI32(ret))

    # -- takeover runs (no public addresses yet: answer at once) ----------------------------

    def _takeoverRunMessage(self, srvid: int, data: bytes) -> None:
        """ip_reallocate_handler: every node queues the request; the leader
        answers after its (next) takeover run.  Others drop theirs once they
        know a settled leader (verify_local_ip_allocation), so a request sent
        while the leader changes (``ctdb ban`` of the leader) is answered by
        the new one instead of waiting for the tool to resend it."""
        try:
            pnn, replySrvid = decodeSrvidMessage(data)
        except ValueError:
            return
        if replySrvid == 0:
            return
        if self.isLeader() and not self.recovering:
            self.daemon.sendMessage(pnn, replySrvid, C.encodeI32(self.pnn))
            return
        leader = self.leader
        unsettled = (
            self.electionInProgress
            or leader == P.CTDB_UNKNOWN_PNN
            or leader == self.pnn
            or not self.daemon.validPnn(leader)
            or self.daemon.nodes[leader].flags & C.NODE_FLAGS_INACTIVE
        )
        if unsettled:
            self._takeoverRequests.append((pnn, replySrvid))

    def _answerTakeoverRequests(self) -> None:
        requests, self._takeoverRequests = self._takeoverRequests, []
        for pnn, replySrvid in requests:
            self.daemon.sendMessage(pnn, replySrvid, C.encodeI32(self.pnn))
