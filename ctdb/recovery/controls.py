# -*- test-case-name: tests.recovery.test_controls -*-
"""
The daemon side of recovery and node states (ctdb_recover.c, ctdb_banning.c,
ctdb_control.c): recovery mode, vnn map, node flags, bans, stop/continue,
disable/enable, roles, and reloading the nodes file.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from zope.interface import implementer

from ctdb.interfaces import INodeFlags
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.protocols.srvids import CTDB_SRVID_PUSH_NODE_FLAGS
from ctdb.recovery.clusterlock import checkClusterLock
from ctdb.recovery.election import decodeFlagChange, encodeFlagChange

if TYPE_CHECKING:
    from ctdb.daemon.core import ControlResult, Daemon, Node

OK: ControlResult = (0, b"", b"")

#: set_recmode_handler's error when this node could take the cluster lock
_LOCK_INCOHERENT = (
    b"Took recovery lock from daemon during recovery"
    b" - probably a cluster filesystem lock coherence problem"
)


def newGeneration() -> int:
    """A random generation that is never INVALID_GENERATION (new_generation)."""
    while True:
        generation = random.getrandbits(32)
        if generation != P.INVALID_GENERATION:
            return generation


@implementer(INodeFlags)
class RecoveryControls:
    """Recovery-related controls and the node's own flags."""

    log = Logger()

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._unban: IDelayedCall | None = None
        self.banTime = 0
        #: SET_RECMODE ACTIVE requests so far (see _normalAfterLockCheck)
        self._activeRequests = 0

    def plugInto(self, daemon: Daemon) -> None:
        """Register the recovery controls and the flag-push message."""
        for name in dir(self):
            if name.startswith("control_"):
                daemon.controls.register(
                    Control[name[len("control_") :]], getattr(self, name)
                )
        daemon.addMessageHandler(CTDB_SRVID_PUSH_NODE_FLAGS, self._pushedFlags)

    # -- own flags --------------------------------------------------------------

    @property
    def myNode(self) -> Node:
        return self.daemon.nodes[self.daemon.pnn]

    def setMyFlags(self, flags: int) -> None:
        node = self.myNode
        old = node.flags
        if flags == old:
            return
        node.flags = flags
        changes = flagChanges(old, flags)
        self.log.info(
            "This node ({pnn}) flags 0x{old:x} -> 0x{new:x} ({text})",
            pnn=self.daemon.pnn,
            old=old,
            new=flags,
            text=", ".join(changes),
            changes=changes,
            step="node-flags",
            node=self.daemon.pnn,
            generation=self.daemon.vnnMap.generation,
        )
        if flags & C.NODE_FLAGS_INACTIVE and not old & C.NODE_FLAGS_INACTIVE:
            self.becomeInactive()
        self.daemon.sendMessage(
            P.CTDB_BROADCAST_CONNECTED,
            CTDB_SRVID_PUSH_NODE_FLAGS,
            encodeFlagChange(self.daemon.pnn, flags, old),
        )
        self.daemon.nodeStateChanged(self.daemon.pnn)

    def becomeInactive(self) -> None:
        """ctdb_node_become_inactive: recovery mode active, databases frozen."""
        d = self.daemon
        d.recmode = C.CTDB_RECOVERY_ACTIVE
        for participant in d.recoveryParticipants:
            participant.becameInactive()

    def _pushedFlags(self, srvid: int, data: bytes) -> None:
        try:
            pnn, new, _old = decodeFlagChange(data)
        except ValueError:
            return
        self.applyFlags(pnn, new)

    def applyFlags(self, pnn: int, new: int) -> None:
        """Another node's flags as it reports them; keep our own link view."""
        d = self.daemon
        if pnn == d.pnn or not d.validPnn(pnn):
            return
        node = d.nodes[pnn]
        old = node.flags
        node.flags = (new & ~C.NODE_FLAGS_DISCONNECTED) | (
            old & C.NODE_FLAGS_DISCONNECTED
        )
        if node.flags != old:
            changes = flagChanges(old, node.flags)
            self.log.info(
                "Node {pnn} flags 0x{old:x} -> 0x{new:x} ({text})",
                pnn=pnn,
                old=old,
                new=node.flags,
                text=", ".join(changes),
                changes=changes,
                step="node-flags",
                node=d.pnn,
                generation=d.vnnMap.generation,
            )
            d.nodeStateChanged(pnn)

    # -- controls --------------------------------------------------------------------

    def control_SET_RECMODE(
        self, req: P.ReqControl, client: object
    ) -> ControlResult | defer.Deferred[ControlResult]:
        mode = C.decodeU32(req.data, "recmode")
        if mode not in (C.CTDB_RECOVERY_NORMAL, C.CTDB_RECOVERY_ACTIVE):
            return (-1, b"", b"invalid recovery mode")
        d = self.daemon
        if mode == C.CTDB_RECOVERY_ACTIVE:
            # a recovery (re)starts: a cluster lock check under way is stale
            self._activeRequests += 1
        if mode == d.recmode:
            return OK
        self.log.info(
            "Recovery mode set to {mode}",
            mode="NORMAL" if mode == C.CTDB_RECOVERY_NORMAL else "ACTIVE",
        )
        if mode == C.CTDB_RECOVERY_ACTIVE:
            d.recmode = mode
            return OK
        if self.myNode.flags & C.NODE_FLAGS_INACTIVE:
            # A banned or stopped node stays out of the cluster.
            return (-1, b"", b"node is inactive")
        refused = self._stayInRecovery()
        if refused is not None:
            return refused
        if d.config.recoveryLock:
            return defer.Deferred.fromCoroutine(
                self._normalAfterLockCheck(d.config.recoveryLock)
            )
        self._recoveryModeNormal()
        return OK

    def _stayInRecovery(self) -> ControlResult | None:
        """ctdb_control_set_recmode's "Inconsistent DB generation": the
        answer refusing NORMAL while a participant has a reason (a database
        that the last recovery did not commit here); the leader then sees
        this node still in recovery mode and recovers it."""
        for participant in self.daemon.recoveryParticipants:
            why = participant.whyStayInRecovery()
            if why is not None:
                self.log.error("{why}", why=why)
                self.log.error("Recovery mode set to ACTIVE")
                return (-1, b"", why.encode())
        return None

    def _recoveryModeNormal(self) -> None:
        d = self.daemon
        d.recmode = C.CTDB_RECOVERY_NORMAL
        for participant in d.recoveryParticipants:
            participant.recoveryModeNormal()

    async def _normalAfterLockCheck(self, spec: str) -> ControlResult:
        """set_recmode_handler: with a cluster lock, a recovery ends only if
        this node cannot take the lock (the leader holds it); a check that
        times out lets it end too (a slow cluster file system), as ctdbd."""
        d = self.daemon
        started = d.reactor.seconds()
        requests = self._activeRequests
        outcome = await checkClusterLock(reactor=d.reactor, spec=spec)
        if requests != self._activeRequests:
            return (-1, b"", b"recovery restarted while checking the recovery lock")
        if outcome == "contended":
            d.statsKeeper.reclockLatency("ctdbd", d.reactor.seconds() - started)
        elif outcome == "timeout":
            self.log.warn("Time out getting recovery lock, allowing recmode set anyway")
        elif outcome == "locked":
            self.log.error(
                "Daemon able to take recovery lock on {spec} during recovery",
                spec=spec,
            )
            return (-1, b"", _LOCK_INCOHERENT)
        else:
            self.log.error("Unexpected error when testing recovery lock")
            return (-1, b"", b"Unexpected error when testing recovery lock")
        if self.myNode.flags & C.NODE_FLAGS_INACTIVE:
            return (-1, b"", b"node is inactive")
        refused = self._stayInRecovery()
        if refused is not None:
            return refused
        self._recoveryModeNormal()
        return OK

    def control_SETVNNMAP(self, req: P.ReqControl, client: object) -> ControlResult:
        vnn = C.VnnMap.decode(req.data)
        for pnn in vnn.map:
            if not self.daemon.validPnn(pnn):
                return (-1, b"", b"vnn map names an unknown node")
        self.daemon.vnnMap = vnn
        return OK

    def control_START_RECOVERY(
        self, req: P.ReqControl, client: object
    ) -> ControlResult | defer.Deferred[ControlResult]:
        """ctdb_control_start_recovery: answered once the participants
        (the C{startrecovery} event) are done, with their status."""
        d = self.daemon
        d.lastRecoveryStarted = d.reactor.seconds()
        return _answerWhenDone(
            [participant.recoveryStarted() for participant in d.recoveryParticipants]
        )

    def control_END_RECOVERY(
        self, req: P.ReqControl, client: object
    ) -> ControlResult | defer.Deferred[ControlResult]:
        """ctdb_control_end_recovery: the first recovery takes the node to
        STARTUP; a node that runs event scripts is RUNNING once its
        C{startup} event succeeded (ctdb_monitor.c), one that runs none at
        once.  Answered once the participants (the C{recovered} event) are
        done, with their status."""
        d = self.daemon
        d.lastRecoveryFinished = d.reactor.seconds()
        firstRecovery = d.runstate < C.RunState.STARTUP
        if firstRecovery:
            d.setRunstate(C.RunState.STARTUP)
            if d.eventRunner is None:
                d.setRunstate(C.RunState.RUNNING)
        result = _answerWhenDone(
            [
                participant.recoveryEnded(firstRecovery)
                for participant in d.recoveryParticipants
            ]
        )
        # ctdb_end_recovery_callback: a recovery counts once its recovered
        # event is over, whatever its status
        if isinstance(result, tuple):
            d.stats.num_recoveries += 1
            return result

        def counted(answer: ControlResult) -> ControlResult:
            d.stats.num_recoveries += 1
            return answer

        return result.addCallback(counted)

    def control_FREEZE(self, req: P.ReqControl, client: object) -> ControlResult:
        # ctdb_control_freeze: only sent as a node becomes inactive
        for participant in self.daemon.recoveryParticipants:
            participant.becameInactive()
        return OK

    def control_MODIFY_FLAGS(self, req: P.ReqControl, client: object) -> ControlResult:
        pnn, new, _old = decodeFlagChange(req.data)
        d = self.daemon
        if not d.validPnn(pnn):
            return (-1, b"", b"unknown node")
        if pnn == d.pnn:
            # ctdb_control_modflags: a node's own flags are its own (the
            # leader reads them from its node map); a push of them back,
            # made from a view read a moment earlier, would undo a change
            # made since (a monitor event that just made it healthy).
            self.log.debug("Ignoring flag changes for current node")
            return OK
        self.applyFlags(pnn, new)
        return OK

    def control_SET_BAN_STATE(self, req: P.ReqControl, client: object) -> ControlResult:
        pnn, seconds = C.decodeBanState(req.data)
        d = self.daemon
        if pnn != d.pnn:
            self.log.error("SET_BAN_STATE control for PNN {pnn} rejected", pnn=pnn)
            return (-1, b"", b"ban state for another node")
        if self._unban is not None and self._unban.active():
            self._unban.cancel()
        self._unban = None
        if seconds == 0:
            self.log.info("Unbanning this node")
            self.banTime = 0
            self.setMyFlags(self.myNode.flags & ~C.NODE_FLAGS_BANNED)
            return OK
        self.log.info("Banning this node for {secs} seconds", secs=seconds)
        self.banTime = seconds
        self._unban = d.reactor.callLater(seconds, self._banExpired)
        self.setMyFlags(self.myNode.flags | C.NODE_FLAGS_BANNED)
        return OK

    def _banExpired(self) -> None:
        self._unban = None
        self.banTime = 0
        self.log.info("Banning timed out")
        self.setMyFlags(self.myNode.flags & ~C.NODE_FLAGS_BANNED)

    def control_GET_BAN_STATE(self, req: P.ReqControl, client: object) -> ControlResult:
        seconds = 0
        if self._unban is not None and self._unban.active():
            seconds = max(0, int(self._unban.getTime() - self.daemon.reactor.seconds()))
        return (0, C.encodeBanState(self.daemon.pnn, seconds), b"")

    def control_STOP_NODE(self, req: P.ReqControl, client: object) -> ControlResult:
        self.log.info("Stopping node")
        self.setMyFlags(self.myNode.flags | C.NODE_FLAGS_STOPPED)
        return OK

    def control_CONTINUE_NODE(self, req: P.ReqControl, client: object) -> ControlResult:
        self.log.info("Continue node")
        self.setMyFlags(self.myNode.flags & ~C.NODE_FLAGS_STOPPED)
        return OK

    def control_DISABLE_NODE(self, req: P.ReqControl, client: object) -> ControlResult:
        self.setMyFlags(self.myNode.flags | C.NODE_FLAGS_PERMANENTLY_DISABLED)
        return OK

    def control_ENABLE_NODE(self, req: P.ReqControl, client: object) -> ControlResult:
        self.setMyFlags(self.myNode.flags & ~C.NODE_FLAGS_PERMANENTLY_DISABLED)
        return OK

    def control_SET_LMASTERROLE(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        return self._setCapability(req, C.CTDB_CAP_LMASTER)

    def control_SET_RECMASTERROLE(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        return self._setCapability(req, C.CTDB_CAP_RECMASTER)

    def _setCapability(self, req: P.ReqControl, capability: int) -> ControlResult:
        """Turn one of our capabilities on or off (a u32 flag)."""
        d = self.daemon
        if C.decodeU32(req.data):
            d.capabilities |= capability
        else:
            d.capabilities &= ~capability
        d.nodeStateChanged(d.pnn)
        return OK

    def control_RECD_PING(self, req: P.ReqControl, client: object) -> ControlResult:
        return OK

    def control_RELOAD_NODES_FILE(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        self.daemon.reloadNodes()
        return OK


def _answerWhenDone(
    results: list[object],
) -> ControlResult | defer.Deferred[ControlResult]:
    """The answer of a control whose participants may return Deferreds of
    a status: OK at once when none did, otherwise once all fired, with the
    first non-zero status (a failed Deferred counts as -1)."""
    waits: list[defer.Deferred[object]] = [
        r for r in results if isinstance(r, defer.Deferred)
    ]
    if not waits:
        return OK

    def status(result: object) -> int:
        return result if isinstance(result, int) else 0

    def failed(f: object) -> int:
        RecoveryControls.log.error("recovery participant failed: {f}", f=f)
        return -1

    def done(statuses: list[int]) -> ControlResult:
        return (next((s for s in statuses if s != 0), 0), b"", b"")

    return defer.gatherResults(
        [w.addCallbacks(status, failed) for w in waits]
    ).addCallback(done)


#: a node flag's name when it is set and when it is cleared, for the log
_FLAG_WORDS = (
    (C.NODE_FLAGS_DISCONNECTED, "DISCONNECTED", "CONNECTED"),
    (C.NODE_FLAGS_UNHEALTHY, "UNHEALTHY", "HEALTHY"),
    (C.NODE_FLAGS_PERMANENTLY_DISABLED, "DISABLED", "ENABLED"),
    (C.NODE_FLAGS_BANNED, "BANNED", "UNBANNED"),
    (C.NODE_FLAGS_DELETED, "DELETED", "UNDELETED"),
    (C.NODE_FLAGS_STOPPED, "STOPPED", "CONTINUED"),
)


def flagChanges(old: int, new: int) -> list[str]:
    """What a change of a node's flags means, in words: C{0x2 -> 0x0} is
    C{["HEALTHY"]}."""
    words = [
        setWord if new & flag else clearedWord
        for flag, setWord, clearedWord in _FLAG_WORDS
        if (old ^ new) & flag
    ]
    unknown = (old ^ new) & ~sum(flag for flag, _, _ in _FLAG_WORDS)
    if unknown:
        words.append(f"0x{unknown:x} changed")
    return words
