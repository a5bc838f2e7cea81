# -*- test-case-name: tests.recovery.test_service -*-
"""
The leader's monitoring and the recoveries it drives (ctdb_recoverd.c's
main loop): node-state changes, the cluster check, the node flags pushed
to every node, and the requests that wait on recoveries: disabling them
(C{ctdb reloadnodes}) and takeover runs.  A part of
L{ctdb.recovery.service.RecoveryService}.

Takeover runs are done by the daemon's L{ctdb.interfaces.ITakeoverRunner}
(none: TAKEOVER_RUN requests are answered at once); this part decides
when: after every recovery, when a node's flags or link change, for
TAKEOVER_RUN requests (answered with the run's status: our pnn, or -1),
and again, RecoverInterval later, after a failed run (need_takeover_run),
unless runs are held off.

Differences from ctdbd 4.17, on purpose and documented in the README:
 - a dead node is noticed from the transport at once;
 - the leader checks the cluster four times a second and at once when a
   node's state changes, instead of every RecoverInterval;
 - the run that follows a recovery also answers the TAKEOVER_RUN requests
   that came before it began (ctdbd answers them after one more run).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from twisted.internet import defer

from ctdb.errors import RecoveryFailed
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.protocols.srvids import (
    CTDB_SRVID_RECONFIGURE,
    decodeDisableMessage,
    decodeSrvidMessage,
)
from ctdb.recovery.controls import newGeneration
from ctdb.recovery.election import encodeFlagChange
from ctdb.recovery.leadership import ELECTION_WAIT
from ctdb.recovery.partitions import (
    PARTITION_BAN_PERIOD,
    PartitionState,
    cutPairs,
    describePairs,
    excludedNodes,
)
from ctdb.recovery.procedure import recover

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall
    from twisted.logger import Logger

    from ctdb.daemon.core import Daemon
    from ctdb.interfaces import ICTDBReactor
    from ctdb.recovery.controls import RecoveryControls

MONITOR_INTERVAL = 0.25


class Monitoring:
    """The cluster checks and recoveries of a recovery service."""

    #: why the next recovery is needed, for its first log line (the node
    #: change that asked for it), or None
    _recoveryReason: str | None = None
    #: partial partitions (L{partitionState}), made when first needed
    _partitionState: PartitionState | None = None
    #: each connected node's node map ({pnn: flags}) as the leader's last
    #: flag update read it
    _nodeViews: dict[int, dict[int, int]] | None = None

    if TYPE_CHECKING:
        # what this part uses of the rest of the RecoveryService
        log: Logger
        daemon: Daemon
        recoveryControls: RecoveryControls
        reactor: ICTDBReactor
        running: int
        leader: int
        priorityTime: float
        electionInProgress: bool
        recovering: bool
        needRecovery: bool
        culprits: dict[int, list[float]]
        _checkPending: IDelayedCall | None
        _checking: bool
        _joining: bool
        _seenFlags: dict[int, int]
        _startedAt: float
        _lastConnect: float | None
        _joinChecking: bool
        _takeoverRequests: list[tuple[int, int]]
        _recoveriesDisabled: IDelayedCall | None
        needTakeoverRun: bool
        _takeoverRetryAt: float

        @property
        def pnn(self) -> int: ...
        def isLeader(self) -> bool: ...
        def canBeLeader(self) -> bool: ...
        def forceElection(
            self, reason: str = ..., formerLeader: int | None = ...
        ) -> None: ...
        def _leaderBroadcast(self) -> None: ...
        def _restartLeaderTimeout(self, delay: float | None = None) -> None: ...
        def addCulprit(self, pnn: int, credits: int) -> None: ...
        def noteRecovery(self, ok: bool, seconds: float) -> None: ...

    # -- monitoring ----------------------------------------------------------------------

    def nodeStateChanged(self, pnn: int) -> None:
        if not self.running:
            return
        node = self.daemon.nodes[pnn]
        self._watchPeerLink(pnn, node.flags)
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
            self.leader = P.CTDB_UNKNOWN_PNN
            self.forceElection(f"leader node {pnn} is gone", formerLeader=pnn)
            return
        if pnn == self.pnn and not self.canBeLeader() and self.leader == self.pnn:
            self.leader = P.CTDB_UNKNOWN_PNN
            self.forceElection("this node can no longer lead", formerLeader=self.pnn)
            return
        old = self._seenFlags.get(pnn)
        self._seenFlags[pnn] = node.flags
        healthOnly = old is not None and not (
            (old ^ node.flags)
            & ~(C.NODE_FLAGS_UNHEALTHY | C.NODE_FLAGS_PERMANENTLY_DISABLED)
        )
        if self.isLeader():
            if not healthOnly:
                # a node joined, went, was banned or stopped: the databases
                # need a recovery.  A node that only became (un)healthy or
                # was disabled keeps its databases: as ctdbd, only its
                # addresses move (a takeover run).
                self.needRecovery = True
                self._recoveryReason = _changeText(pnn, old, node.flags)
            if self.daemon.takeoverRunner is not None:
                # main_loop: a node's flags or link changed, so the
                # addresses move (after the recovery this asks for, or
                # alone while recoveries are disabled).
                self.needTakeoverRun = True
            self.scheduleCheck(0)

    def scheduleCheck(self, delay: float) -> None:
        if self._checkPending is None or not self._checkPending.active():
            self._checkPending = self.reactor.callLater(delay, self._monitorTick)

    def _monitorTick(self) -> None:
        if self.daemon.nodes[self.pnn].flags & C.NODE_FLAGS_INACTIVE:
            # main_loop: a stopped or banned node is made the youngest, so
            # that it does not take the leader role back when it returns.
            self.priorityTime = self.reactor.seconds()
        heartbeats = self.daemon.heartbeats
        if heartbeats is not None:
            peers = self.partitionState().txctdbPeers
            for n in self.daemon.nodes:
                if n.pnn != self.pnn and heartbeats.isOurs(n.pnn):
                    peers.add(n.pnn)
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
        await self._partialPartitions()
        active = [n.pnn for n in d.nodes if not n.flags & C.NODE_FLAGS_INACTIVE]
        if self.needRecovery:
            await self.doRecovery(self._recoveryReason or "requested")
            return
        if self.recoveriesDisabled():
            # main_loop: with recoveries disabled (reloadnodes) the node
            # checks could only start needless ones; takeover runs go on.
            await self._takeoverRunChecks()
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
        await self._takeoverRunChecks()

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
        self._nodeViews = views
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

    # -- partial partitions (docs/FAILURE_DETECTION.md) -----------------------------

    def partitionState(self) -> PartitionState:
        if self._partitionState is None:
            self._partitionState = PartitionState()
        return self._partitionState

    async def _partialPartitions(self) -> None:
        """
        The leader's rule for partial partitions (L{ctdb.recovery.partitions}):
        from the node maps L{_updateFlags} just read, the pairs of txctdb
        nodes that are cut; once a pair stayed cut for PARTITION_GRACE, one
        node of it is banned for PARTITION_BAN_PERIOD (the leader's side
        and the lower pnns are kept), the ban is renewed while the cut
        lasts and lifted as soon as the node maps show it linked to every
        active node.  A ban changes the node's flags, so a recovery
        follows.  Nodes whose link views come from 4.17 keepalives alone
        (ctdbd, or a txctdb node without heartbeats) are left out.
        """
        d = self.daemon
        state = self.partitionState()
        heartbeats = d.heartbeats
        views = self._nodeViews
        if heartbeats is None or views is None:
            state.tracker.clear()
            return
        views = dict(views)
        views[self.pnn] = {n.pnn: n.flags for n in d.nodes}
        now = self.reactor.seconds()
        for pnn in list(state.banned):
            if pnn not in views:
                continue
            if not views[pnn].get(pnn, 0) & C.NODE_FLAGS_BANNED:
                # the ban ran out (or the node restarted): the rule starts
                # over for it
                del state.banned[pnn]
        watched = [
            pnn
            for pnn in views
            if (pnn == self.pnn or heartbeats.isOurs(pnn))
            and (not d.nodes[pnn].flags & C.NODE_FLAGS_INACTIVE or pnn in state.banned)
        ]
        cut = cutPairs(views, watched)
        settled = state.tracker.observe(now, cut)
        active = [p for p in watched if p not in state.banned]
        # lift the bans of nodes linked again to every active node (one
        # after the other: a node let back in counts for the next)
        for pnn in sorted(state.banned):
            if pnn not in watched:
                continue
            blocking = [p for p in active if (min(p, pnn), max(p, pnn)) in cut]
            if not blocking:
                self.log.info(
                    "Node {pnn} reaches every active node again: lifting its"
                    " partial-partition ban",
                    pnn=pnn,
                    step="partition-healed",
                    node=self.pnn,
                )
                del state.banned[pnn]
                await self._setBan(pnn, 0)
                active.append(pnn)
            elif now - state.banned[pnn] >= PARTITION_BAN_PERIOD / 2:
                state.banned[pnn] = now
                await self._setBan(pnn, PARTITION_BAN_PERIOD)
        pairs = [p for p in settled if p[0] in active and p[1] in active]
        if not pairs:
            return
        for pnn in excludedNodes(active, pairs, keep=self.pnn):
            mates = sorted({a if b == pnn else b for a, b in pairs if pnn in (a, b)})
            self.log.error(
                "Partial partition: node {pnn} cannot reach node(s) {mates}"
                " ({pairs}): banning node {pnn} for {secs} seconds",
                pnn=pnn,
                mates=", ".join(str(m) for m in mates),
                pairs=describePairs(pairs),
                secs=PARTITION_BAN_PERIOD,
                step="partition-ban",
                node=self.pnn,
                generation=d.vnnMap.generation,
            )
            if await self._setBan(pnn, PARTITION_BAN_PERIOD):
                state.banned[pnn] = now
                self.needRecovery = True
                self._recoveryReason = f"node {pnn} banned for a partial partition"

    async def _setBan(self, pnn: int, seconds: int) -> bool:
        """SET_BAN_STATE on node C{pnn}, and its flags in our view at once
        (its own push of them may come later); True if it was done."""
        d = self.daemon
        reply = await d.sendControl(
            pnn,
            Control.SET_BAN_STATE,
            C.encodeBanState(pnn, seconds),
            timeout=5,
        )
        if reply.status != 0:
            self.log.error(
                "Unable to set the ban state of node {pnn}: {err}",
                pnn=pnn,
                err=reply.errmsg.decode(errors="replace"),
            )
            return False
        flags = d.nodes[pnn].flags
        if seconds:
            flags |= C.NODE_FLAGS_BANNED
        else:
            flags &= ~C.NODE_FLAGS_BANNED
        if self.recoveryControls is not None:
            self.recoveryControls.applyFlags(pnn, flags)
        return True

    def _watchPeerLink(self, pnn: int, flags: int) -> None:
        """
        Any node: a txctdb peer that this node declared dead (heartbeat or
        transport) and now sees linked again may hold records whose
        dmaster view differs from ours (each of us went on without the
        other); the leader, which may never have seen the two apart, must
        recover.  A node that is not the leader sets its own recovery mode
        ACTIVE, which the leader's cluster check answers with a recovery
        (4.17's way for a node to ask for one); the leader's own
        L{nodeStateChanged} asks for one already.
        """
        if pnn == self.pnn:
            return
        state = self.partitionState()
        down = bool(flags & C.NODE_FLAGS_DISCONNECTED)
        was = state.linkDown.get(pnn)
        state.linkDown[pnn] = down
        if down and was is False:
            if pnn in state.txctdbPeers:
                state.lost.add(pnn)
            return
        if down or not was or pnn not in state.lost:
            return
        state.lost.discard(pnn)
        d = self.daemon
        if (
            self.isLeader()
            or d.recmode != C.CTDB_RECOVERY_NORMAL
            or d.nodes[self.pnn].flags & C.NODE_FLAGS_INACTIVE
        ):
            return
        self.log.warn(
            "Node {pnn} is back after this node declared it dead: recovery"
            " mode ACTIVE so that the leader recovers",
            pnn=pnn,
            step="peer-back",
            node=self.pnn,
            generation=d.vnnMap.generation,
        )
        d.sendControl(
            self.pnn, Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_ACTIVE)
        )

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
        self._recoveryReason = None
        d = self.daemon
        generation = newGeneration()
        self.log.info(
            "Starting recovery: {reason} (generation 0x{old:08x})",
            reason=reason,
            old=d.vnnMap.generation,
            step="recovery-started",
            node=self.pnn,
            generation=d.vnnMap.generation,
            newGeneration=generation,
        )
        started = self.reactor.seconds()
        try:
            await recover(d, generation)
        except RecoveryFailed as e:
            self.noteRecovery(False, self.reactor.seconds() - started)
            self.log.error(
                "Recovery failed: {err}",
                err=str(e),
                step="recovery-failed",
                node=self.pnn,
                generation=generation,
                duration=round(self.reactor.seconds() - started, 3),
            )
            if e.culprit is not None and e.culprit != self.pnn:
                self.addCulprit(e.culprit, 1)
            self.needRecovery = True
            self.reactor.callLater(1.0, self.scheduleCheck, 0)
        except Exception:  # noqa: BLE001 - any failure means: recover again
            self.noteRecovery(False, self.reactor.seconds() - started)
            self.log.failure("Recovery failed")
            self.needRecovery = True
            self.reactor.callLater(1.0, self.scheduleCheck, 0)
        else:
            self.noteRecovery(True, self.reactor.seconds() - started)
            runner = d.takeoverRunner
            if runner is not None:
                # do_recovery: a takeover run after every recovery; a
                # failed one is retried from the monitor checks.  It also
                # answers the TAKEOVER_RUN requests that came before it,
                # unless runs are held off: those wait for a real run.
                if runner.takeoverRunsDisabled():
                    await self.doTakeoverRun()
                else:
                    await self.processTakeoverRequests()
            d.sendMessage(P.CTDB_BROADCAST_CONNECTED, CTDB_SRVID_RECONFIGURE, b"")
            # ban_counts_reset, after the run as in ctdbd: a run that fails
            # here earns its culprit nothing until it fails again.
            self.culprits.clear()
            self._leaderBroadcast()
            if d.takeoverRunner is None:
                self._answerTakeoverRequests()
        finally:
            self.recovering = False

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

    # -- takeover runs -------------------------------------------------------------------

    def _takeoverRunMessage(self, srvid: int, data: bytes) -> None:
        """ip_reallocate_handler: every node queues the request; the leader
        answers after its next takeover run (at once, with its pnn, when
        the node has no takeover runner).  Others drop theirs once they
        know a settled leader (verify_local_ip_allocation), so a request
        sent while the leader changes (``ctdb ban`` of the leader) is
        answered by the new one instead of waiting for the tool to resend
        it.  A request with srvid 0 wants a run and no answer."""
        try:
            pnn, replySrvid = decodeSrvidMessage(data)
        except ValueError:
            return
        runner = self.daemon.takeoverRunner
        if runner is None:
            if replySrvid == 0:
                return
            if self.isLeader() and not self.recovering:
                self.daemon.sendMessage(pnn, replySrvid, C.encodeI32(self.pnn))
                return
        elif self.isLeader():
            self._takeoverRequests.append((pnn, replySrvid))
            self.scheduleCheck(0)
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
            if replySrvid != 0:
                self.daemon.sendMessage(pnn, replySrvid, C.encodeI32(self.pnn))

    async def _takeoverRunChecks(self) -> None:
        """main_loop's last step: a run when one was asked for or the last
        one failed, unless runs are held off.  A failed run is tried again
        after RecoverInterval (the period of ctdbd's main loop), not at
        every one of our quicker checks."""
        runner = self.daemon.takeoverRunner
        if runner is None or runner.takeoverRunsDisabled():
            return
        retry = self.needTakeoverRun and self.reactor.seconds() >= self._takeoverRetryAt
        if self._takeoverRequests or retry:
            await self.processTakeoverRequests()

    async def processTakeoverRequests(self) -> bool:
        """process_ipreallocate_requests: one takeover run, then the
        requests that were waiting when it began are answered with its
        status (our pnn, or -1); later ones wait for the next run."""
        current, self._takeoverRequests = self._takeoverRequests, []
        ok = await self.doTakeoverRun()
        status = self.pnn if ok else -1
        for pnn, replySrvid in current:
            if replySrvid != 0:
                self.daemon.sendMessage(pnn, replySrvid, C.encodeI32(status))
        return ok

    async def doTakeoverRun(self) -> bool:
        """do_takeover_run, through the daemon's takeover runner: True when
        it succeeded; otherwise one is needed again."""
        runner = self.daemon.takeoverRunner
        if runner is None:
            self.needTakeoverRun = False
            return True
        try:
            ok = bool(await defer.maybeDeferred(runner.takeoverRun))
        except Exception:  # noqa: BLE001 - a broken run is a failed run
            self.log.failure("Takeover run failed")
            ok = False
        self.needTakeoverRun = not ok
        if not ok:
            self._takeoverRetryAt = self.reactor.seconds() + float(
                self.daemon.tunables.RecoverInterval
            )
        return ok


def _changeText(pnn: int, old: int | None, new: int) -> str:
    """Why a node's change needs a recovery, as the recovery's first line
    says it."""
    lost = C.NODE_FLAGS_DISCONNECTED
    if new & lost and (old is None or not old & lost):
        return f"node {pnn} is disconnected"
    if old is not None and old & lost and not new & lost:
        return f"node {pnn} is connected"
    if old is None:
        return f"node {pnn} flags 0x{new:x}"
    return f"node {pnn} flags 0x{old:x} -> 0x{new:x}"
