# -*- test-case-name: tests.takeover.test_leader -*-
"""
The leader's takeover run: what Samba 4.17's ctdb_takeover_helper does in
a helper process, done here inside the daemon over its control channel,
together with the bookkeeping ctdb_recoverd.c keeps around it
(do_takeover_run: one run at a time, runs held off for a while, the nodes
to force addresses onto).  The recovery service decides I{when} a run
happens (L{ctdb.interfaces.ITakeoverRunner}); this module does it.

One run:

 1. the tunables TakeoverTimeout, IPAllocAlgorithm, NoIPTakeover,
    NoIPFailback and EnableBans and the node map, from the local daemon;
 2. with failover disabled (C{[failover] disabled} in the leader's
    ctdb.conf) straight to step 6;
 3. GET_PUBLIC_IPS from every connected node (what each knows), then
    GET_PUBLIC_IPS ONLY_AVAILABLE from the active ones that know an address
    (what each may host now: the node itself leaves out what it may not
    host, when it is disabled or not RUNNING or its links are down); each
    waits TakeoverTimeout;
 4. if no node hosts an address and none may host one, straight to 6;
 5. the allocation (L{ctdb.takeover.ipalloc.allocate}), then RELEASE_IP
    {new owner, address} to every connected node that knows an address and
    is not its new owner (all at once: the extra ones tell those nodes who
    hosts it now), then TAKEOVER_IP to each new owner (all at once);
 6. IPREALLOCATED to every connected node.

Steps 5 and 6 share one deadline, 3 x TakeoverTimeout (RELEASE_IP may take
long while connections are killed).  A node whose control fails or times
out earns a credit, and the run fails at the end of that step.  Of a failed
run, the node with most credits is named to the leader's recovery service
in a BANNING message (worth a node count of culprit credits there), unless
EnableBans is 0.

Around the run, as do_takeover_run: the other connected nodes are told to
hold their own runs off for 60 s (DISABLE_TAKEOVER_RUNS, no reply wanted)
and released afterwards; the force-rebalance nodes are forgotten after a
successful run unless more arrived meanwhile.

Messages this module answers on every node: DISABLE_TAKEOVER_RUNS
{pnn, srvid, timeout} (C{ctdb reloadips}: runs held off for C{timeout}
seconds, 0 lets them run again; the reply is our pnn, or -EAGAIN during a
run), the older DISABLE_IP_CHECK (a bare u32 timeout, no reply; C{ctdb
moveip}) and REBALANCE_NODE (u32 pnn; C{ctdb addip} and C{ctdb reloadips}:
the leader lets LCP2 move addresses onto that node at the next run).
At each leader broadcast (once a second) every node also makes the first
check of verify_local_ip_allocation: a healthy node that may host an
address nobody hosts asks the leader for a run.

Differences from ctdbd 4.17, on purpose:
 - a run asked for while one is going is queued (its Deferred fires with
   the result of the next run) instead of failing at once;
 - ctdbd's recovery daemon records force-rebalance nodes only while it
   leads, and forgets them at each pass of its main loop while another
   node leads; here every node records them and forgets them when it hears
   another node's leader broadcast (once a second), since only the
   recovery service knows who leads.
The tunable DeferredRebalanceOnNodeAdd is obsolete in 4.17 (no code reads
it), so a node that joins is not made a force-rebalance target.
"""

from __future__ import annotations

import errno
import ipaddress
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from ctdb.errors import MalformedPacket, TakeoverRunFailed
from ctdb.interfaces import IMetricsSource, ITakeoverRunner
from ctdb.logfilter import twistedLevel
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.protocols.publicips import (
    CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE,
    PublicIP,
    decodePublicIPList,
)
from ctdb.protocols.srvids import (
    CTDB_SRVID_BANNING,
    CTDB_SRVID_DISABLE_IP_CHECK,
    CTDB_SRVID_DISABLE_TAKEOVER_RUNS,
    CTDB_SRVID_LEADER,
    CTDB_SRVID_REBALANCE_NODE,
    decodeDisableMessage,
    encodeDisableMessage,
)
from ctdb.takeover import ipalloc
from ctdb.takeover.ipcheck import askForTakeoverRun
from ctdb.takeover.metrics import TakeoverRunMetrics

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon

__all__ = ["DISABLE_OTHERS_TIMEOUT", "TakeoverRunner"]

#: how long the leader holds the other nodes' runs off during its own
#: (do_takeover_run's 60 s)
DISABLE_OTHERS_TIMEOUT = 60

#: the size of a ctdb_disable_message
_DISABLE_MESSAGE_SIZE = 24

AddressList = list[tuple[str, int]]
#: a control of a step that was sent: what it is (for the log), the node,
#: the reply to come
_Sent = tuple[str, int, "defer.Deferred[P.ReplyControl]"]
Allocate = Callable[..., Sequence[ipalloc.AllocatedIP]]
CanHostIPs = Callable[..., bool]


@implementer(ITakeoverRunner, IMetricsSource)
class TakeoverRunner(TakeoverRunMetrics):
    """
    The takeover runs of one node (only the leader's recovery service asks
    for them) and the messages that hold them off or steer them.

    @ivar forceRebalance: the REBALANCE_NODE targets for the next run.
    @ivar allocations: how many allocations were made so far.
    @ivar allocateCalls: the keyword arguments of the latest allocations
        (numNodes, known, available and the tunables), newest last: what a
        test or C{ctdb_takeover_tests} would feed the allocator.
    """

    log = Logger()

    def __init__(
        self,
        daemon: Daemon,
        *,
        failoverDisabled: bool = False,
        allocate: Allocate = ipalloc.allocate,
        canHostIPs: CanHostIPs = ipalloc.canHostIPs,
    ) -> None:
        self.daemon = daemon
        self.reactor = daemon.reactor
        #: C{[failover] disabled}: runs only send IPREALLOCATED
        self.failoverDisabled = failoverDisabled
        self._allocate = allocate
        self._canHostIPs = canHostIPs
        self.forceRebalance: list[int] = []
        #: how many allocations were made, and the inputs of the latest
        self.allocations = 0
        self.allocateCalls: deque[dict[str, Any]] = deque(maxlen=8)
        self._inProgress = False
        #: callers waiting for the run after the current one
        self._queued: list[defer.Deferred[bool]] = []
        #: until when a DISABLE_TAKEOVER_RUNS holds runs off (ctdb_op_disable;
        #: a deadline rather than a timer, so that nothing is left pending
        #: when the node stops), or None
        self._disabledUntil: float | None = None
        self._verifying = False
        #: (addresses moved, addresses) of the current run, for its last line
        self._moves = (0, 0)
        #: runs that waited for a node lost by silence to give its
        #: addresses up (L{_waitForFences})
        self.fenceWaits = 0
        self.initRunMetrics()

    # -- the seams of the daemon ----------------------------------------------

    def plugInto(self, daemon: Daemon) -> None:
        """Become the daemon's takeover runner and answer the messages that
        hold runs off and steer them."""
        daemon.setTakeoverRunner(self)
        daemon.addMessageHandler(
            CTDB_SRVID_DISABLE_TAKEOVER_RUNS, self._disableTakeoverRunsMessage
        )
        daemon.addMessageHandler(CTDB_SRVID_DISABLE_IP_CHECK, self._disableIPCheck)
        daemon.addMessageHandler(CTDB_SRVID_REBALANCE_NODE, self._rebalanceMessage)
        daemon.addMessageHandler(CTDB_SRVID_LEADER, self._leaderMessage)
        daemon.addMetricsSource(self)

    # -- ITakeoverRunner ----------------------------------------------------------

    def takeoverRun(self) -> defer.Deferred[bool]:
        """Run (or queue) one takeover run; fires with True on success."""
        if self._inProgress:
            self.log.info("Takeover run in progress: queued behind it")
            waiter: defer.Deferred[bool] = defer.Deferred()
            self._queued.append(waiter)
            return waiter
        return self._start()

    def takeoverRunsDisabled(self) -> bool:
        """ctdb_op_is_disabled: runs are held off (the deadline of a
        DISABLE_TAKEOVER_RUNS has not passed)."""
        until = self._disabledUntil
        if until is not None and self.reactor.seconds() >= until:
            self._disabledUntil = until = None
            self.log.info("Reenabling takeover runs after timeout")
        return until is not None

    def inProgress(self) -> bool:
        """ctdb_op_is_in_progress: a run goes on."""
        return self._inProgress

    def takeoverRunInProgress(self) -> bool:
        """L{ITakeoverRunner}'s name for L{inProgress}."""
        return self._inProgress

    # -- holding runs off (ctdb_op_disable) ---------------------------------------

    def disableTakeoverRuns(self, timeout: int) -> int:
        """Hold runs off for C{timeout} seconds (0 lets them run again).
        Returns 0, or -EAGAIN while a run is going."""
        if timeout == 0:
            self._disabledUntil = None
            self.log.info("Reenabling takeover runs")
            return 0
        if self._inProgress:
            self.log.error("Unable to disable takeover runs - in progress")
            return -errno.EAGAIN
        self.log.info("Disabling takeover runs for {secs} seconds", secs=timeout)
        self._disabledUntil = self.reactor.seconds() + timeout
        return 0

    def _disableTakeoverRunsMessage(self, srvid: int, data: bytes) -> None:
        """srvid_disable_and_reply: answer the requester with our pnn, or a
        negative errno."""
        if len(data) != _DISABLE_MESSAGE_SIZE:
            self.log.error("Wrong size for a disable message: {n} bytes", n=len(data))
            return
        pnn, replySrvid, timeout = decodeDisableMessage(data)
        ret = self.disableTakeoverRuns(timeout)
        if ret == 0:
            ret = self.daemon.pnn
        if replySrvid != 0:
            self.daemon.sendMessage(pnn, replySrvid, C.encodeI32(ret))

    def _disableIPCheck(self, srvid: int, data: bytes) -> None:
        """disable_ip_check_handler: the older form, a u32 timeout alone."""
        if len(data) != 4:
            self.log.error("Wrong size for DISABLE_IP_CHECK: {n} bytes", n=len(data))
            return
        self.disableTakeoverRuns(C.decodeU32(data))

    # -- force-rebalance targets ----------------------------------------------------

    def _rebalanceMessage(self, srvid: int, data: bytes) -> None:
        """recd_node_rebalance_handler: LCP2 may move addresses onto this
        node at the next run (duplicates are harmless)."""
        if len(data) != 4:
            self.log.error(
                "Wrong size for a node rebalance message: {n} bytes", n=len(data)
            )
            return
        pnn = C.decodeU32(data)
        self.log.info("Setting up rebalance of IPs to node {pnn}", pnn=pnn)
        self.forceRebalance = [*self.forceRebalance, pnn]

    # -- every node's own check (verify_local_ip_allocation) ---------------------

    def _leaderMessage(self, srvid: int, data: bytes) -> None:
        """The leader's broadcast, once a second: the pass of ctdbd's main
        loop that looks after the addresses.  When another node leads, its
        runs, not ours, will use the force-rebalance targets."""
        try:
            leader = C.decodeU32(data)
        except MalformedPacket:
            return
        if leader == P.CTDB_UNKNOWN_PNN:
            return
        if leader != self.daemon.pnn:
            self.forceRebalance = []
        self.verifyLocalAllocation()

    def verifyLocalAllocation(self) -> defer.Deferred[bool]:
        """
        verify_local_ip_allocation's check of the addresses nobody hosts:
        when this node is healthy and may host one of them now, it asks the
        leader for a run (a TAKEOVER_RUN broadcast that wants no reply).
        Not while failover or runs are disabled, during our own run, out of
        normal recovery mode or while the node is inactive.  Fires with
        whether a run was asked for.
        """
        d = self.daemon
        if (
            self._verifying
            or self._inProgress
            or self.failoverDisabled
            or self.takeoverRunsDisabled()
            or d.recmode != C.CTDB_RECOVERY_NORMAL
            or d.nodes[d.pnn].flags & C.NODE_FLAGS_INACTIVE
        ):
            return defer.succeed(False)
        self._verifying = True
        check = defer.Deferred.fromCoroutine(self._verify())

        def done(result: object) -> object:
            self._verifying = False
            return result

        return check.addBoth(done)

    async def _verify(self) -> bool:
        """The check itself: this node's available addresses (a
        GET_PUBLIC_IPS ONLY_AVAILABLE to itself), and a run asked for if
        one of them is unhosted and this node's flags are all clear."""
        d = self.daemon
        reply = await d.sendControl(
            d.pnn,
            Control.GET_PUBLIC_IPS,
            flags=CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE,
            timeout=float(d.tunables.RecoverTimeout),
        )
        if reply.status != 0:
            self.log.error("Unable to retrieve available public IPs")
            return False
        try:
            ips = decodePublicIPList(reply.data)
        except MalformedPacket:
            self.log.error("Unable to retrieve available public IPs")
            return False
        unhosted = [ip.address for ip in ips if ip.pnn == P.CTDB_UNKNOWN_PNN]
        if not unhosted or d.nodes[d.pnn].flags != 0:
            return False
        for address in unhosted:
            self.log.warn(
                "Unassigned IP {address} can be served by this node",
                address=address,
            )
        askForTakeoverRun(d, self.log)
        return True

    # -- the run ----------------------------------------------------------------------

    def _start(self) -> defer.Deferred[bool]:
        """One run now; the queued callers get the run after it."""
        d = defer.Deferred.fromCoroutine(self._doTakeoverRun())
        d.addBoth(self._finished)
        return d

    def _finished(self, result: object) -> object:
        """A run ended: start the one the queued callers wait for, and
        answer them with its result."""
        queued, self._queued = self._queued, []
        if queued:
            nextRun = self._start()

            def fanOut(ok: object) -> object:
                for waiter in queued:
                    waiter.callback(bool(ok) if isinstance(ok, bool) else False)
                return ok

            nextRun.addBoth(fanOut)
        return result

    async def _doTakeoverRun(self) -> bool:
        """do_takeover_run around takeover_send."""
        self.log.info(
            "Takeover run starting",
            step="takeover-started",
            node=self.daemon.pnn,
            generation=self.daemon.vnnMap.generation,
        )
        self._moves = (0, 0)
        if self.takeoverRunsDisabled():
            self.log.info("Unable to begin - takeover runs are disabled")
            self.log.info(
                "Takeover run unsuccessful",
                ok=False,
                step="takeover-finished",
                node=self.daemon.pnn,
                generation=self.daemon.vnnMap.generation,
            )
            return False
        self._inProgress = True
        started = self.reactor.seconds()
        d = self.daemon
        others = [
            n.pnn for n in d.nodes if n.pnn != d.pnn and not n.flags & _UNCONNECTED
        ]
        targets = self.forceRebalance
        try:
            self._holdOthers(others, DISABLE_OTHERS_TIMEOUT)
            try:
                ok = await self._takeover(list(targets))
            except Exception:  # noqa: BLE001 - a broken run is a failed run
                self.log.failure("Takeover run failed")
                ok = False
            self._holdOthers(others, 0)
            if ok:
                if targets is self.forceRebalance:
                    self.forceRebalance = []
                else:
                    self.log.warn(
                        "Rebalance target nodes changed during takeover run"
                        " - not clearing"
                    )
        finally:
            self._inProgress = False
        duration = self.reactor.seconds() - started
        self.noteTakeoverRun(ok, duration)
        moved, addresses = self._moves
        self.log.info(
            "Takeover run {how}: {moved} of {addresses} public addresses moved "
            "in {duration:.3f} s",
            how="completed successfully" if ok else "unsuccessful",
            ok=ok,
            moved=moved,
            addresses=addresses,
            duration=round(duration, 3),
            step="takeover-finished",
            node=d.pnn,
            generation=d.vnnMap.generation,
        )
        return ok

    def _holdOthers(self, nodes: Iterable[int], timeout: int) -> None:
        """do_takeover_run's DISABLE_TAKEOVER_RUNS to the other nodes, no
        reply wanted (a timeout of 0 lets them run again)."""
        data = encodeDisableMessage(P.CTDB_UNKNOWN_PNN, 0, timeout)
        for pnn in nodes:
            self.daemon.sendMessage(pnn, CTDB_SRVID_DISABLE_TAKEOVER_RUNS, data)

    async def _takeover(self, forceRebalance: list[int]) -> bool:
        """takeover_send and its steps; False if a step failed (and the
        culprit was named)."""
        d = self.daemon
        tun = d.tunables
        takeoverTimeout = float(tun.TakeoverTimeout)
        numNodes = len(d.nodes)
        connected = [n.pnn for n in d.nodes if not n.flags & _UNCONNECTED]
        active = [n.pnn for n in d.nodes if not n.flags & C.NODE_FLAGS_INACTIVE]
        credits = [0] * numNodes
        if not self.failoverDisabled:
            await self._waitForFences()
        deadline = self.reactor.seconds() + 3 * takeoverTimeout
        try:
            if not self.failoverDisabled:
                known = await self._publicIPs(
                    connected, numNodes, credits, takeoverTimeout, False
                )
                asked = [pnn for pnn in active if known[pnn]]
                available = await self._publicIPs(
                    asked, numNodes, credits, takeoverTimeout, True
                )
                if not self._canHostIPs(numNodes, known, available):
                    self.log.info("No nodes available to host public IPs yet")
                else:
                    allocation = self._allocation(
                        numNodes, known, available, forceRebalance
                    )
                    self._moves = _countMoves(known, allocation)
                    # The three steps share one deadline, from here on.
                    deadline = self.reactor.seconds() + 3 * takeoverTimeout
                    await self._releaseIPs(allocation, connected, credits, deadline)
                    await self._takeIPs(allocation, credits, deadline)
            await self._ipreallocated(connected, credits, deadline)
        except TakeoverRunFailed:
            self._nameCulprit(credits)
            return False
        return True

    async def _waitForFences(self) -> None:
        """
        The leader's half of giving addresses up (L{ctdb.takeover.fence}):
        a node this node lost by silence may be alive on the other side of
        a partition, and it gives its addresses up only when its heartbeat
        lease runs out.  So no address moves before the fence deadline of
        every such node (L{ctdb.daemon.heartbeat.HeartbeatMonitor.
        fenceDeadline}): the run waits for the latest.  Nodes whose link
        closed (a killed process) and runs without txctdb's heartbeat wait
        for nothing, as in 4.17.
        """
        d = self.daemon
        monitor = d.heartbeats
        if monitor is None:
            return
        now = self.reactor.seconds()
        fences: dict[int, float] = {}
        for n in d.nodes:
            if n.pnn == d.pnn or n.flags & C.NODE_FLAGS_DELETED:
                continue
            if not n.flags & C.NODE_FLAGS_DISCONNECTED:
                continue
            deadline = monitor.fenceDeadline(n.pnn)
            if deadline is not None and deadline > now:
                fences[n.pnn] = deadline
        if not fences:
            return
        wait = max(fences.values()) - now
        self.log.info(
            "Holding the public addresses for {wait:.2f} s: nodes {nodes} were"
            " lost by silence and give theirs up first",
            wait=wait,
            nodes=sorted(fences),
            step="takeover-fence-wait",
            node=d.pnn,
        )
        self.fenceWaits += 1
        await task.deferLater(self.reactor, wait, lambda: None)

    def _allocation(
        self,
        numNodes: int,
        known: list[AddressList],
        available: list[AddressList],
        forceRebalance: list[int],
    ) -> Sequence[ipalloc.AllocatedIP]:
        """ipalloc() with the inputs takeover_send gathers: the lists, the
        tunables and the force-rebalance nodes (kept for tests)."""
        tun = self.daemon.tunables
        arguments: dict[str, Any] = {
            "numNodes": numNodes,
            "known": known,
            "available": available,
            "algorithm": int(tun.IPAllocAlgorithm),
            "noIPTakeover": bool(tun.NoIPTakeover),
            "noIPFailback": bool(tun.NoIPFailback),
            "forceRebalance": tuple(forceRebalance),
        }
        self.allocations += 1
        self.allocateCalls.append(arguments)
        # Trace lines above the node's debug level are never built: at DEBUG a
        # large cluster's run writes millions of them.
        return self._allocate(
            **arguments, log=self._allocLog, logLevel=self.daemon.debugLevel
        )

    def _allocLog(self, level: int, message: str) -> None:
        """One line of the allocator's trace, at its Samba level."""
        if level <= self.daemon.debugLevel:
            # ("message" is a key of the legacy log events: the bridge to
            # twisted.python.log observers overwrites it with ())
            self.log.emit(twistedLevel(level), "{text}", text=message)

    async def _publicIPs(
        self,
        nodes: list[int],
        numNodes: int,
        credits: list[int],
        timeout: float,
        availableOnly: bool,
    ) -> list[AddressList]:
        """get_public_ips_send: every node's list (C{[]} for nodes not
        asked); a node that fails earns a credit and fails the step."""
        flags = CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE if availableOnly else 0
        sends = [
            self._send(
                "GET_PUBLIC_IPS", pnn, Control.GET_PUBLIC_IPS, b"", timeout, flags
            )
            for pnn in nodes
        ]
        try:
            answers = await self._collect(sends, credits, decodePublicIPList)
        except TakeoverRunFailed:
            self.log.error(
                "Failed to fetch {which} public IPs",
                which="available" if availableOnly else "known",
            )
            raise
        lists: list[AddressList] = [[] for _ in range(numNodes)]
        for pnn, ips in zip(nodes, answers):
            lists[pnn] = [(ip.address, _signedPnn(ip.pnn)) for ip in ips]
        return lists

    async def _releaseIPs(
        self,
        allocation: Sequence[ipalloc.AllocatedIP],
        connected: list[int],
        credits: list[int],
        deadline: float,
    ) -> None:
        """release_ip_send: each address released on every connected node
        that knows it and is not its new owner, all at once."""
        timeout = self._remaining(deadline)
        sends = []
        for ip in allocation:
            owner = _wirePnn(ip.pnn)
            data = PublicIP(owner, ip.address).encode()
            sends += [
                self._send(
                    f"RELEASE_IP {ip.address}", pnn, Control.RELEASE_IP, data, timeout
                )
                for pnn in connected
                if pnn in ip.knownOn and pnn != owner
            ]
        await self._collect(sends, credits)

    async def _takeIPs(
        self,
        allocation: Sequence[ipalloc.AllocatedIP],
        credits: list[int],
        deadline: float,
    ) -> None:
        """take_ip_send: TAKEOVER_IP of each hosted address on its owner."""
        timeout = self._remaining(deadline)
        sends = [
            self._send(
                f"TAKEOVER_IP {ip.address}",
                owner,
                Control.TAKEOVER_IP,
                PublicIP(owner, ip.address).encode(),
                timeout,
            )
            for ip in allocation
            if (owner := _wirePnn(ip.pnn)) != P.CTDB_UNKNOWN_PNN
        ]
        await self._collect(sends, credits)

    async def _ipreallocated(
        self, connected: list[int], credits: list[int], deadline: float
    ) -> None:
        """ipreallocated_send: IPREALLOCATED to every connected node."""
        timeout = self._remaining(deadline)
        sends = [
            self._send("IPREALLOCATED", pnn, Control.IPREALLOCATED, b"", timeout)
            for pnn in connected
        ]
        await self._collect(sends, credits)

    def _send(
        self,
        what: str,
        pnn: int,
        opcode: int,
        data: bytes,
        timeout: float,
        flags: int = 0,
    ) -> _Sent:
        """One control of a step, sent now; C{what} names it in the log."""
        reply = self.daemon.sendControl(pnn, opcode, data, flags=flags, timeout=timeout)
        return what, pnn, reply

    async def _collect(
        self,
        sends: Sequence[_Sent],
        credits: list[int],
        decode: Callable[[bytes], Any] | None = None,
    ) -> list[Any]:
        """
        The answers of a step's controls, in order (each reply's data
        through C{decode}, if given).  A node whose control fails, times
        out or answers what C{decode} refuses earns a credit; once every
        answer is in, the step fails if any did (the C{*_fail} callbacks of
        ctdb_takeover_helper.c).
        """
        answers: list[Any] = []
        failed = False
        for what, pnn, pending in sends:
            reply = await pending
            answer: Any = reply.data
            ok = reply.status == 0
            if ok and decode is not None:
                try:
                    answer = decode(reply.data)
                except MalformedPacket:
                    ok = False
            if not ok:
                self.log.error(
                    "{what} failed on node {pnn}, ret={ret}",
                    what=what,
                    pnn=pnn,
                    ret=reply.status,
                )
                credits[pnn] += 1
                failed = True
            answers.append(answer)
        if failed:
            raise TakeoverRunFailed
        return answers

    def _remaining(self, deadline: float) -> float:
        """The timeout of a control sent now, for a step's deadline."""
        # sendControl takes 0 as "no timeout": a passed deadline is a
        # moment, so that the control fails as at once as tevent would.
        return max(deadline - self.reactor.seconds(), 0.001)

    def _nameCulprit(self, credits: list[int]) -> None:
        """takeover_failed: the node with most credits (the lowest pnn of a
        tie) is named to the leader's recovery service."""
        if not self.daemon.tunables.EnableBans:
            return
        most = max(credits, default=0)
        if most == 0:
            return
        pnn = credits.index(most)
        self.log.warn("Assigning banning credits to node {pnn}", pnn=pnn)
        self.daemon.sendMessage(self.daemon.pnn, CTDB_SRVID_BANNING, C.encodeU32(pnn))


_UNCONNECTED = C.NODE_FLAGS_DISCONNECTED | C.NODE_FLAGS_DELETED


def _countMoves(
    known: Sequence[AddressList], allocation: Sequence[ipalloc.AllocatedIP]
) -> tuple[int, int]:
    """(how many addresses change hands, how many there are): the nodes'
    lists say who hosts each address now, the allocation who will."""
    owners: dict[str, int] = {}
    for entries in known:
        for address, pnn in entries:
            spelt = _spelling(address)
            if pnn != ipalloc.UNASSIGNED or spelt not in owners:
                owners[spelt] = pnn
    moved = sum(
        1
        for ip in allocation
        if owners.get(_spelling(ip.address), ipalloc.UNASSIGNED) != ip.pnn
    )
    return moved, len(allocation)


def _spelling(address: str) -> str:
    """One spelling of an address, for comparing the nodes' lists with the
    allocation's."""
    try:
        return ipaddress.ip_address(address).compressed
    except ValueError:
        return address


def _signedPnn(pnn: int) -> int:
    """A pnn off the wire as the allocator takes it: unknown is -1."""
    return ipalloc.UNASSIGNED if pnn == P.CTDB_UNKNOWN_PNN else pnn


def _wirePnn(pnn: int) -> int:
    """An allocated owner as the wire carries it: none is CTDB_UNKNOWN_PNN."""
    return P.CTDB_UNKNOWN_PNN if pnn < 0 else pnn
