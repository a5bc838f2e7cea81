# -*- test-case-name: tests.takeover.test_fence -*-
"""
Giving the public addresses up (docs/FAILURE_DETECTION.md, "Giving
addresses up"): a node that may have been cut off from the cluster takes
every public address it holds off the host at once, before the rest of the
cluster can move them, and refuses to host any until the rules below hold
again; it hosts addresses again only when a leader's takeover run gives it
some.

The rules, checked at every heartbeat check (L{ctdb.daemon.heartbeat}),
before that check declares any peer dead, and once a second:

 1. Quorum.  Fewer than a majority of the configured nodes, this node
    included, confirmed within the heartbeat lease (C{timeout - interval},
    1.25 s by default) that they hear it.  A txctdb peer confirms by
    echoing our heartbeats (a link that is up is not enough: once a node
    sent us heartbeats, only its echoes count); a peer that never sent one
    (Samba's ctdbd) counts while its link is up, as 4.17 counts it.  A
    txctdb peer whose link closed while it still echoed us (a killed
    process: L{ctdb.daemon.heartbeat.HeartbeatMonitor.departed}) is not
    counted at all, so the survivor of a two-node cluster keeps its
    addresses.  Of an even split
    (one node of two, two of four), with a cluster lock configured, the
    half whose leader holds the lock keeps its addresses; without one
    neither half does.
 2. Pause.  This node's own heartbeat check came later than the heartbeat
    timeout after the previous one: its reactor was paused long enough
    for the others to declare it dead.
 3. Recovery.  The node has been in recovery mode (elections included: a
    node without a leader is in recovery) for C{RecoveryDropAllIPs}
    seconds, as ctdbd 4.17 drops its addresses (ctdb_drop_all_ips_event).
    This rule alone applies when txctdb's heartbeat is off.
 4. Cut from the leader.  The leader stopped echoing this node (for
    longer than the lease) while a peer that still echoes this node
    reports having heard the leader more than a lease after the leader's
    last echo: a partial partition between this node and the leader, who
    will move this node's addresses although this node keeps a majority
    through that peer.  (When the leader itself is cut off, the peers'
    news of it is no newer than the lease, and the nodes keep theirs.)

The other half is in the leader's takeover run
(L{ctdb.takeover.leader.TakeoverRunner}): it moves no address while a node
lost by silence may still hold it, that is until
L{ctdb.daemon.heartbeat.HeartbeatMonitor.fenceDeadline}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet import task
from twisted.logger import Logger, LogLevel

from ctdb.protocols.nodestate import (
    CTDB_RECOVERY_NORMAL,
    NODE_FLAGS_DELETED,
    NODE_FLAGS_DISCONNECTED,
)
from ctdb.protocols.packet import CTDB_UNKNOWN_PNN
from ctdb.protocols.srvids import CTDB_SRVID_LEADER
from ctdb.takeover.ipcheck import askForTakeoverRun

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon
    from ctdb.daemon.heartbeat import HeartbeatMonitor
    from ctdb.takeover.node import PublicAddresses

#: how often the rules are checked apart from the heartbeat checks
CHECK_INTERVAL = 1.0


class AddressFence:
    """
    The rules above for one node's public addresses.

    @ivar reason: why the node is fenced now (None: it is not).
    @ivar fences: how many times it was fenced.
    @ivar released: how many addresses the fences took off the host.
    """

    log = Logger()

    def __init__(
        self,
        addresses: PublicAddresses,
        *,
        heartbeats: HeartbeatMonitor | None,
        checkInterval: float = CHECK_INTERVAL,
    ) -> None:
        self.addresses = addresses
        self.daemon = addresses.daemon
        self.reactor = addresses.daemon.reactor
        self.heartbeats = heartbeats
        self.checkInterval = checkInterval
        self.reason: str | None = None
        self.fences = 0
        self.released = 0
        self._releasedThisFence = 0
        self._recoverySince: float | None = None
        self._loop: task.LoopingCall | None = None
        #: the leader named by the latest leader broadcast (the leader's
        #: own included; an election's "unknown" clears it)
        self.leader = CTDB_UNKNOWN_PNN

    def plugInto(self, daemon: Daemon) -> None:
        """Follow the leader broadcasts (rule 1's tie-break, rule 4)."""
        daemon.addMessageHandler(CTDB_SRVID_LEADER, self._leaderMessage)

    def _leaderMessage(self, srvid: int, data: bytes) -> None:
        if len(data) < 4:
            return
        leader = int.from_bytes(data[:4], "little")
        # An election broadcasts "no leader" (this node's own included,
        # when it loses its leader by silence): rule 4 goes on watching the
        # leader the others may still follow, until one is named.
        if leader != CTDB_UNKNOWN_PNN:
            self.leader = leader

    @property
    def fenced(self) -> bool:
        return self.reason is not None

    # -- life --------------------------------------------------------------------

    def start(self) -> None:
        if self.heartbeats is not None:
            self.heartbeats.checkHooks.append(self._heartbeatCheck)
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = self.reactor
        self._loop.start(self.checkInterval, now=False)

    def stop(self) -> None:
        if self.heartbeats is not None and self._heartbeatCheck in (
            self.heartbeats.checkHooks
        ):
            self.heartbeats.checkHooks.remove(self._heartbeatCheck)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    # -- the rules -------------------------------------------------------------------

    def _heartbeatCheck(self, elapsed: float) -> None:
        self.check(elapsed)

    def problem(self, elapsed: float | None = None) -> str | None:
        """The first rule that says this node must not hold addresses now,
        as a sentence, or None."""
        d = self.daemon
        now = self.reactor.seconds()
        hb = self.heartbeats
        if hb is not None:
            if elapsed is not None and elapsed > hb.timeout:
                return (
                    f"this node was paused for {elapsed:.2f} s, longer than the"
                    f" heartbeat timeout ({hb.timeout} s)"
                )
            # the configured nodes, less the txctdb peers that left by a
            # closed link while they still heard us (killed processes)
            voters = [
                n
                for n in d.nodes
                if not n.flags & NODE_FLAGS_DELETED
                and (n.pnn == d.pnn or not hb.departed(n.pnn))
            ]
            need = len(voters) // 2 + 1
            alive = [d.pnn]
            for n in voters:
                if n.pnn == d.pnn:
                    continue
                if hb.wasOurs(n.pnn):
                    # a txctdb node: only its echoes count, not its link
                    if hb.confirmedWithin(n.pnn):
                        alive.append(n.pnn)
                elif not n.flags & NODE_FLAGS_DISCONNECTED:
                    # a ctdbd (or a node not heard yet): 4.17's view
                    alive.append(n.pnn)
            if (
                2 * len(alive) == len(voters)
                and d.config.recoveryLock
                and self.leader in alive
            ):
                # an even split: the half whose leader holds the cluster
                # lock keeps its addresses
                need = len(alive)
            if len(alive) < need:
                return (
                    f"only nodes {sorted(alive)} confirmed within {hb.lease:.2f} s"
                    f" that they hear this node, fewer than {need} of"
                    f" {len(voters)}"
                )
            cut = self._cutFromLeader(hb)
            if cut is not None:
                return cut
        if d.recmode == CTDB_RECOVERY_NORMAL:
            self._recoverySince = None
        else:
            if self._recoverySince is None:
                self._recoverySince = now
            limit = float(d.tunables.RecoveryDropAllIPs)
            if now - self._recoverySince >= limit:
                return f"in recovery for {now - self._recoverySince:.0f} s"
        return None

    def _cutFromLeader(self, hb: HeartbeatMonitor) -> str | None:
        """Rule 4: the leader stopped echoing us while a peer on our side
        still hears it (a partial partition): the leader will move our
        addresses, though we keep a majority through that peer."""
        d = self.daemon
        leader = self.leader
        if leader in (CTDB_UNKNOWN_PNN, d.pnn) or not hb.wasOurs(leader):
            return None
        if hb.confirmedWithin(leader):
            return None
        report = hb.reportedHeard(leader)
        if report is None:
            return None
        witness, heardAt = report
        confirmed = hb.lastConfirmedAt(leader)
        if confirmed is None or heardAt <= confirmed + hb.lease:
            # the leader went quiet for the peer as well (it is the one cut
            # off), or the peer's news is not newer than our lease
            return None
        return (
            f"leader {leader} no longer hears this node, while node {witness}"
            f" heard it {self.reactor.seconds() - heardAt:.2f} s ago"
        )

    def check(self, elapsed: float | None = None) -> None:
        """Apply the rules: fence, or lift the fence."""
        problem = self.problem(elapsed)
        if problem is not None:
            if self.reason is None:
                self.fence(problem)
            return
        if self.reason is not None:
            self.lift()

    # -- fencing ---------------------------------------------------------------------

    def fence(self, reason: str) -> None:
        """Take every public address off the host now, and host none until
        the fence is lifted."""
        self.reason = reason
        self.fences += 1
        held = self.addresses.heldAddresses()
        self.log.emit(
            LogLevel.warn if held else LogLevel.info,
            "Giving up all public addresses ({n} held): {reason}",
            n=len(held),
            reason=reason,
            step="ips-fenced",
            node=self.daemon.pnn,
            generation=self.daemon.vnnMap.generation,
        )
        self._releasedThisFence = len(held)
        self.released += len(held)
        if held:
            self.addresses.dropAllNow().addErrback(
                lambda f: self.log.failure("giving up the public addresses", f)
            )

    def lift(self) -> None:
        """The rules hold again: the node may host addresses, from the next
        takeover run on (one is asked for if the fence took any)."""
        self.log.info(
            "Public addresses may be hosted again (fenced: {reason})",
            reason=self.reason,
            step="ips-unfenced",
            node=self.daemon.pnn,
        )
        self.reason = None
        if self._releasedThisFence:
            self._releasedThisFence = 0
            askForTakeoverRun(self.daemon, self.log)
