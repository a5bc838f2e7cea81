# -*- test-case-name: tests.takeover.test_leader -*-
"""
Tests for L{ctdb.takeover.leader}: the leader's takeover runs in a whole
in-memory cluster (C{connectedNodes(..., recovery=True)} on one L{Clock}),
with a fake node side on every node (L{_FakeNodeSide}: it answers
GET_PUBLIC_IPS, RELEASE_IP, TAKEOVER_IP and IPREALLOCATED from a table and
writes down what it was asked), so that the order of the steps, who gets
what, the allocator's inputs, failures, ban credits, queued runs, and the
recovery service's moments (after a recovery, a node-state change, a
TAKEOVER_RUN request, a failed run) can be checked exactly.

With a L{Clock} every node starts at the same time, so node 2 (the highest
pnn) leads.
"""

from __future__ import annotations

import errno
import random
from typing import Any, ClassVar

from twisted.internet import defer, task
from twisted.internet.task import Clock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from ctdb.daemon.core import Daemon
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.protocols.publicips import (
    CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE,
    PublicIP,
    encodePublicIPList,
)
from ctdb.protocols.srvids import (
    CTDB_SRVID_DISABLE_IP_CHECK,
    CTDB_SRVID_DISABLE_TAKEOVER_RUNS,
    CTDB_SRVID_LEADER,
    CTDB_SRVID_REBALANCE_NODE,
    CTDB_SRVID_RECONFIGURE,
    CTDB_SRVID_TAKEOVER_RUN,
    encodeDisableMessage,
    encodeSrvidMessage,
)
from ctdb.recovery.service import RecoveryService
from ctdb.takeover.leader import DISABLE_OTHERS_TIMEOUT, TakeoverRunner
from ctdb.testing import FakeClient, FakeCluster, connectedNodes

#: the public addresses every node knows (127.0.0.0/8 only, even in memory)
ADDRESSES = ["127.1.0.1", "127.1.0.2", "127.1.0.3"]
#: a srvid for the replies a test client waits for
SRVID = 0xF000000000000777

Result = tuple[int, bytes, bytes]


class _FakeNodeSide:
    """
    The node side of one node, as a table: the addresses it knows, whom it
    believes hosts each, what it hosts.  Writes ("release", pnn, address,
    new owner), ("take", pnn, address), ("ipreallocated", pnn) and
    ("getips", pnn, available-only) to the shared C{log}.  C{fail} holds
    opcodes answered with -1; C{hold} opcodes whose answer waits for
    L{releaseHeld}.
    """

    def __init__(self, daemon: Daemon, addresses: list[str], log: list[Any]) -> None:
        self.daemon = daemon
        self.owners = {a: P.CTDB_UNKNOWN_PNN for a in addresses}
        self.hosted: set[str] = set()
        self.log = log
        self.fail: set[int] = set()
        self.hold: set[int] = set()
        self.held: list[tuple[defer.Deferred[Result], Result]] = []

    def plugInto(self, daemon: Daemon) -> None:
        reg = daemon.controls.register
        reg(Control.GET_PUBLIC_IPS, self.getPublicIPs)
        reg(Control.RELEASE_IP, self.releaseIP)
        reg(Control.TAKEOVER_IP, self.takeoverIP)
        reg(Control.IPREALLOCATED, self.ipreallocated)

    @property
    def pnn(self) -> int:
        return self.daemon.pnn

    def available(self) -> bool:
        """ctdb_vnn_available: RUNNING, not inactive, not disabled."""
        flags = self.daemon.nodes[self.pnn].flags
        return self.daemon.runstate == C.RunState.RUNNING and not flags & (
            C.NODE_FLAGS_INACTIVE | C.NODE_FLAGS_DISABLED
        )

    def _answer(self, opcode: int, result: Result) -> Result | defer.Deferred[Result]:
        if opcode in self.fail:
            result = (-1, b"", b"failed on purpose")
        if opcode in self.hold:
            d: defer.Deferred[Result] = defer.Deferred()
            self.held.append((d, result))
            return d
        return result

    def releaseHeld(self) -> None:
        held, self.held = self.held, []
        for d, result in held:
            d.callback(result)

    def getPublicIPs(self, req: P.ReqControl, client: object) -> Any:
        onlyAvailable = bool(req.flags & CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE)
        self.log.append(("getips", self.pnn, onlyAvailable))
        ips = []
        if not onlyAvailable or self.available():
            ips = [PublicIP(owner, a) for a, owner in sorted(self.owners.items())]
        return self._answer(req.opcode, (0, encodePublicIPList(ips), b""))

    def releaseIP(self, req: P.ReqControl, client: object) -> Any:
        ip = PublicIP.decode(req.data)
        self.log.append(("release", self.pnn, ip.address, ip.pnn))
        if req.opcode not in self.fail:
            self.owners[ip.address] = ip.pnn
            self.hosted.discard(ip.address)
        return self._answer(req.opcode, (0, b"", b""))

    def takeoverIP(self, req: P.ReqControl, client: object) -> Any:
        ip = PublicIP.decode(req.data)
        self.log.append(("take", self.pnn, ip.address))
        if req.opcode not in self.fail:
            self.owners[ip.address] = self.pnn
            self.hosted.add(ip.address)
        return self._answer(req.opcode, (0, b"", b""))

    def ipreallocated(self, req: P.ReqControl, client: object) -> Any:
        self.log.append(("ipreallocated", self.pnn))
        return self._answer(req.opcode, (0, b"", b""))


class _LeaderMixin:
    """A started 3-node cluster with recovery, takeover runners and fake
    node sides; C{settle} lets it converge."""

    nodes = 3
    tunables: ClassVar[dict[str, int]] = {}
    addresses: ClassVar[list[str]] = ADDRESSES
    failoverDisabled = False

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster: FakeCluster = connectedNodes(
            self.nodes, self.clock, tunables=dict(self.tunables), recovery=True
        )
        self.addCleanup(self.cluster.stop)  # type: ignore[attr-defined]
        self.log: list[Any] = []
        self.sides: dict[int, _FakeNodeSide] = {}
        self.runners: dict[int, TakeoverRunner] = {}
        for d in self.cluster:
            self.plug(d)
        self.settle()

    def plug(self, d: Daemon) -> None:
        side = _FakeNodeSide(d, list(self.addresses), self.log)
        side.plugInto(d)
        self.sides[d.pnn] = side
        runner = d.takeoverRunner
        if not isinstance(runner, TakeoverRunner):
            runner = TakeoverRunner(d)
            runner.plugInto(d)
        runner.failoverDisabled = self.failoverDisabled
        self.runners[d.pnn] = runner

    def settle(self, seconds: float = 4.0) -> None:
        self.cluster.advance(seconds, step=0.05)

    def service(self, pnn: int) -> RecoveryService:
        return self.cluster.recovery(pnn)

    def control(self, pnn: int, opcode: int, data: bytes = b"") -> P.ReplyControl:
        client = FakeClient(self.cluster[pnn])
        reqid = client.control(opcode, data, destnode=pnn)
        self.cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None
        client.disconnect()
        return reply

    def hosts(self) -> dict[str, list[int]]:
        """Which nodes host each address now."""
        return {
            a: sorted(p for p, s in self.sides.items() if a in s.hosted)
            for a in self.addresses
        }

    def leaderRun(self) -> bool:
        """One run by the leader, to its end; its result."""
        d = self.runners[2].takeoverRun()
        self.cluster.flush()
        return self.successResultOf(d)  # type: ignore[attr-defined]

    def runs(self) -> int:
        return self.runners[2].allocations

    def steps(self) -> list[Any]:
        """The release/take/ipreallocated entries of the log so far."""
        return [e for e in self.log if e[0] != "getips"]

    def clearLog(self) -> None:
        del self.log[:]

    def requester(self, pnn: int) -> FakeClient:
        client = FakeClient(self.cluster[pnn], pid=77)
        client.control(Control.REGISTER_SRVID, srvid=SRVID)
        self.cluster.flush()
        return client

    def answers(self, client: FakeClient) -> list[int]:
        return [C.decodeI32(d) for s, d in client.messages() if s == SRVID]

    def askRun(self, client: FakeClient, pnn: int) -> None:
        """ctdb ipreallocate: TAKEOVER_RUN to every connected node."""
        client.sendMessage(
            P.CTDB_BROADCAST_CONNECTED,
            CTDB_SRVID_TAKEOVER_RUN,
            encodeSrvidMessage(pnn, SRVID),
        )
        self.cluster.flush()


class RunTests(_LeaderMixin, SynchronousTestCase):
    """One run: its steps, their order and who gets what."""

    def test_firstRecoveryHostsEverything(self) -> None:
        """After the first recovery every address is up on exactly one
        node, one per node, and every node knows the owners."""
        hosts = self.hosts()
        self.assertEqual(sorted(len(v) for v in hosts.values()), [1, 1, 1])
        self.assertEqual(sorted(v[0] for v in hosts.values()), [0, 1, 2])
        for side in self.sides.values():
            self.assertEqual(side.owners, {a: v[0] for a, v in hosts.items()})
        self.assertFalse(self.service(2).needTakeoverRun)

    def test_order(self) -> None:
        """Release on every node that knows an address and is not its new
        owner, then take on the new owners, then IPREALLOCATED on every
        connected node."""
        before = self.hosts()
        self.clearLog()
        self.assertTrue(self.leaderRun())
        steps = self.steps()
        kinds = [e[0] for e in steps]
        self.assertEqual(
            kinds, sorted(kinds, key=["release", "take", "ipreallocated"].index)
        )
        releases = {(e[1], e[2], e[3]) for e in steps if e[0] == "release"}
        expected = {
            (pnn, a, owners[0])
            for a, owners in before.items()
            for pnn in range(3)
            if pnn != owners[0]
        }
        self.assertEqual(releases, expected)
        takes = {(e[1], e[2]) for e in steps if e[0] == "take"}
        self.assertEqual(takes, {(v[0], a) for a, v in before.items()})
        self.assertEqual(
            sorted(e[1] for e in steps if e[0] == "ipreallocated"), [0, 1, 2]
        )
        self.assertEqual(self.hosts(), before)

    def test_knownAndAvailable(self) -> None:
        """Known addresses come from every connected node, available ones
        from the active nodes only; a stopped node is not asked for them, a
        disabled one answers none."""
        self.assertEqual(self.control(0, Control.STOP_NODE).status, 0)
        self.assertEqual(self.control(1, Control.DISABLE_NODE).status, 0)
        self.settle()
        self.clearLog()
        self.assertTrue(self.leaderRun())
        asked = sorted(e[1:] for e in self.log if e[0] == "getips")
        self.assertEqual(
            asked, [(0, False), (1, False), (1, True), (2, False), (2, True)]
        )
        call = self.runners[2].allocateCalls[-1]
        self.assertEqual(call["numNodes"], 3)
        self.assertEqual([len(k) for k in call["known"]], [3, 3, 3])
        self.assertEqual([len(a) for a in call["available"]], [0, 0, 3])
        self.assertEqual(self.hosts(), {a: [2] for a in ADDRESSES})
        # The pnn each node reports is passed on, unknown as -1.
        for pnn in range(3):
            self.assertEqual(sorted(call["known"][pnn]), [(a, 2) for a in ADDRESSES])

    def test_tunables(self) -> None:
        """The allocator gets IPAllocAlgorithm, NoIPTakeover and
        NoIPFailback from the leader's tunables."""
        d = self.cluster[2]
        d.tunables.set("IPAllocAlgorithm", 1)
        d.tunables.set("NoIPTakeover", 1)
        d.tunables.set("NoIPFailback", 1)
        self.leaderRun()
        call = self.runners[2].allocateCalls[-1]
        self.assertEqual(
            (call["algorithm"], call["noIPTakeover"], call["noIPFailback"]),
            (1, True, True),
        )

    def test_unknownOwner(self) -> None:
        """An address nobody hosts reaches the allocator with owner -1."""
        self.sides[0].owners[ADDRESSES[0]] = P.CTDB_UNKNOWN_PNN
        self.leaderRun()
        call = self.runners[2].allocateCalls[-1]
        self.assertIn((ADDRESSES[0], -1), call["known"][0])

    def test_nothingToHost(self) -> None:
        """When no node hosts an address and none may host one, the run
        goes straight to IPREALLOCATED."""
        for side in self.sides.values():
            side.owners = dict.fromkeys(side.owners, P.CTDB_UNKNOWN_PNN)
            side.hosted.clear()
        self.cluster[2].runstate = C.RunState.STARTUP
        self.cluster[1].runstate = C.RunState.STARTUP
        self.cluster[0].runstate = C.RunState.STARTUP
        self.clearLog()
        calls = self.runs()
        self.assertTrue(self.leaderRun())
        self.assertEqual(self.runs(), calls)
        self.assertEqual(
            sorted(self.steps()),
            [("ipreallocated", 0), ("ipreallocated", 1), ("ipreallocated", 2)],
        )

    def test_othersHeldOff(self) -> None:
        """During a run the other nodes' runs are held off (60 s), and let
        go at its end."""
        side = self.sides[0]
        side.hold.add(Control.IPREALLOCATED)
        d = self.runners[2].takeoverRun()
        self.cluster.flush()
        self.assertTrue(self.runners[0].takeoverRunsDisabled())
        self.assertTrue(self.runners[1].takeoverRunsDisabled())
        self.assertFalse(self.runners[2].takeoverRunsDisabled())
        side.hold.clear()
        side.releaseHeld()
        self.cluster.flush()
        self.assertTrue(self.successResultOf(d))
        self.assertFalse(self.runners[0].takeoverRunsDisabled())
        self.assertFalse(self.runners[1].takeoverRunsDisabled())
        self.assertEqual(DISABLE_OTHERS_TIMEOUT, 60)


class FailoverDisabledTests(_LeaderMixin, SynchronousTestCase):
    """C{[failover] disabled}: runs send IPREALLOCATED only."""

    failoverDisabled = True

    def test_onlyIpreallocated(self) -> None:
        self.assertEqual(self.hosts(), {a: [] for a in ADDRESSES})
        self.assertEqual(self.runs(), 0)
        self.clearLog()
        self.assertTrue(self.leaderRun())
        self.assertEqual(
            sorted(self.log),
            [("ipreallocated", 0), ("ipreallocated", 1), ("ipreallocated", 2)],
        )

    def test_noTriggerForUnhosted(self) -> None:
        """Nodes do not ask for runs for the addresses nobody hosts."""
        self.clearLog()
        self.settle(3)
        self.assertEqual([e for e in self.log if e[0] == "getips"], [])


class FailureTests(_LeaderMixin, SynchronousTestCase):
    """Failed controls: ban credits, the run's failure, the retry."""

    tunables: ClassVar[dict[str, int]] = {"TakeoverTimeout": 2}

    def test_failingTakeGetsCredits(self) -> None:
        """A node whose TAKEOVER_IP fails is named: it earns a node count
        of culprit credits at the leader, and the run reports failure."""
        self.sides[1].fail.add(Control.TAKEOVER_IP)
        self.assertFalse(self.leaderRun())
        self.assertEqual(len(self.service(2).culprits.get(1, [])), 3)
        self.assertNotIn(0, self.service(2).culprits)

    def test_worstNodeNamed(self) -> None:
        """Only the node with most credits is named (the lowest pnn of a
        tie): node 0 fails two releases, node 1 one take."""
        self.sides[0].fail.add(Control.RELEASE_IP)
        self.sides[1].fail.add(Control.RELEASE_IP)
        self.assertFalse(self.leaderRun())
        culprits = self.service(2).culprits
        self.assertEqual(len(culprits.get(0, [])), 3)
        self.assertNotIn(1, culprits)
        # The run stopped after the releases.
        self.assertNotIn("take", [e[0] for e in self.log[-8:]])

    def test_timeoutGetsCredits(self) -> None:
        """A node that does not answer GET_PUBLIC_IPS within
        TakeoverTimeout is named too."""
        self.sides[0].hold.add(Control.GET_PUBLIC_IPS)
        d = self.runners[2].takeoverRun()
        self.cluster.advance(1.9, step=0.1)
        self.assertNoResult(d)
        self.cluster.advance(0.2, step=0.1)
        self.assertFalse(self.successResultOf(d))
        self.assertEqual(len(self.service(2).culprits.get(0, [])), 3)

    def test_failedRunRetried(self) -> None:
        """A failed run is tried again by the monitor checks until one
        succeeds; then none is needed."""
        side = self.sides[0]
        side.fail.add(Control.IPREALLOCATED)
        side.owners[ADDRESSES[0]] = P.CTDB_UNKNOWN_PNN  # something to fix
        self.service(2).needTakeoverRun = True
        self.settle(0.5)
        self.assertTrue(self.service(2).needTakeoverRun)
        first = self.runs()
        self.assertGreaterEqual(first, 1)
        side.fail.clear()
        self.settle(2)
        self.assertFalse(self.service(2).needTakeoverRun)
        self.assertGreater(self.runs(), first)
        hosts = self.hosts()
        self.assertEqual(sorted(len(v) for v in hosts.values()), [1, 1, 1])

    def test_retriesSpaced(self) -> None:
        """A failing run is retried once per RecoverInterval, not at every
        check."""
        self.sides[0].fail.add(Control.IPREALLOCATED)
        self.cluster[2].tunables.set("EnableBans", 0)
        before = self.runs()
        self.service(2).needTakeoverRun = True
        self.settle(3.01)
        self.assertIn(self.runs() - before, (3, 4))

    def test_bannedAfterTwoFailures(self) -> None:
        """Two failed runs in a row get the culprit banned (2 x nodes
        credits), and the addresses move off it."""
        self.sides[1].fail.add(Control.TAKEOVER_IP)
        self.service(2).needTakeoverRun = True
        self.settle(3)
        self.assertTrue(self.cluster[1].nodes[1].flags & C.NODE_FLAGS_BANNED)
        self.sides[1].fail.clear()
        self.settle(3)
        hosts = self.hosts()
        self.assertTrue(all(len(v) == 1 and v != [1] for v in hosts.values()))

    def test_bansDisabled(self) -> None:
        """With EnableBans 0 nobody is named."""
        self.cluster[2].tunables.set("EnableBans", 0)
        self.sides[1].fail.add(Control.TAKEOVER_IP)
        self.assertFalse(self.leaderRun())
        self.assertEqual(self.service(2).culprits, {})


class SerialTests(_LeaderMixin, SynchronousTestCase):
    """One run at a time."""

    def test_queued(self) -> None:
        """A run asked for during a run starts when it ends, and both
        callers learn their own run's result."""
        runner = self.runners[2]
        side = self.sides[0]
        side.hold.add(Control.IPREALLOCATED)
        before = self.runs()
        first = runner.takeoverRun()
        self.cluster.flush()
        self.assertTrue(runner.inProgress())
        second = runner.takeoverRun()
        third = runner.takeoverRun()
        self.cluster.flush()
        self.assertEqual(self.runs(), before + 1)
        self.assertNoResult(second)
        side.hold.clear()
        side.releaseHeld()
        self.cluster.flush()
        self.assertTrue(self.successResultOf(first))
        self.assertTrue(self.successResultOf(second))
        self.assertTrue(self.successResultOf(third))
        # second and third share one run
        self.assertEqual(self.runs(), before + 2)
        self.assertFalse(runner.inProgress())

    def test_neverTwoAtOnce(self) -> None:
        """Runs asked for from everywhere while runs are slow never
        overlap: no run's steps interleave with another's."""
        side = self.sides[1]
        side.hold.add(Control.TAKEOVER_IP)
        client = self.requester(0)
        self.askRun(client, 0)
        self.settle(0.5)
        self.runners[2].takeoverRun()
        self.askRun(client, 0)
        for _ in range(3):
            side.releaseHeld()
            self.settle(0.5)
        side.hold.clear()
        side.releaseHeld()
        self.settle(2)
        # Each run ends with three IPREALLOCATEDs before the next starts.
        phases: list[str] = []
        for e in self.steps():
            if not phases or phases[-1] != e[0]:
                phases.append(e[0])
        for i, phase in enumerate(phases):
            if phase == "release" and i > 0:
                self.assertEqual(phases[i - 1], "ipreallocated")
        self.assertEqual(self.answers(client), [2, 2])


class RequestTests(_LeaderMixin, SynchronousTestCase):
    """TAKEOVER_RUN requests (ctdb ipreallocate) and the moments of runs."""

    def test_answeredAfterRun(self) -> None:
        """Only the leader answers, with its pnn, after its run."""
        side = self.sides[0]
        side.hold.add(Control.IPREALLOCATED)
        client = self.requester(1)
        before = self.runs()
        self.askRun(client, 1)
        self.settle(0.5)
        self.assertEqual(self.runs(), before + 1)
        self.assertEqual(self.answers(client), [])
        side.hold.clear()
        side.releaseHeld()
        self.cluster.flush()
        self.assertEqual(self.answers(client), [2])

    def test_failedRunAnswersMinusOne(self) -> None:
        self.sides[0].fail.add(Control.IPREALLOCATED)
        client = self.requester(1)
        self.askRun(client, 1)
        self.settle(0.5)
        self.assertEqual(self.answers(client), [-1])

    def test_noReplyWanted(self) -> None:
        """srvid 0 asks for a run and no answer."""
        client = FakeClient(self.cluster[0])
        before = self.runs()
        client.sendMessage(
            P.CTDB_BROADCAST_CONNECTED,
            CTDB_SRVID_TAKEOVER_RUN,
            encodeSrvidMessage(0, 0),
        )
        self.settle(0.5)
        self.assertEqual(self.runs(), before + 1)
        self.assertEqual(client.messages(), [])

    def test_recoveryThenRun(self) -> None:
        """A recovery is followed by a run: the dead node's address moves
        to a survivor."""
        dead = self.hosts()
        self.cluster.crash(0)
        del self.sides[0]
        self.settle()
        hosts = self.hosts()
        for a, owners in dead.items():
            self.assertEqual(len(hosts[a]), 1)
            self.assertNotEqual(hosts[a], [0])
            if owners != [0]:
                self.assertEqual(hosts[a], owners)
        self.assertFalse(self.service(2).needTakeoverRun)

    def test_runInRecovery(self) -> None:
        """The post-recovery run answers a request that came in during the
        recovery, and it comes before the RECONFIGURE broadcast."""
        d0 = self.cluster[0]
        getDBMap = d0.controls.table[Control.GET_DBMAP]

        def slowDBMap(req: P.ReqControl, client: object) -> Any:
            return task.deferLater(self.clock, 0.5, getDBMap, req, client)

        d0.controls.register(Control.GET_DBMAP, slowDBMap)
        reconfigured: list[int] = []
        d0.addMessageHandler(
            CTDB_SRVID_RECONFIGURE, lambda srvid, data: reconfigured.append(self.runs())
        )
        client = self.requester(0)
        before = self.runs()
        self.service(2).needRecovery = True
        self.service(2).scheduleCheck(0)
        self.cluster.flush()
        self.assertTrue(self.service(2).recovering)
        self.askRun(client, 0)
        self.assertEqual(self.answers(client), [])
        self.settle(1)
        self.assertFalse(self.service(2).recovering)
        self.assertEqual(self.answers(client), [2])
        self.assertEqual(self.runs(), before + 1)
        self.assertEqual(reconfigured, [before + 1])

    def test_flagsChangeRuns(self) -> None:
        """Disabling a node moves its address away; enabling brings one
        back (LCP2 rebalances onto the empty node)."""
        hosts = self.hosts()
        mine = [a for a, v in hosts.items() if v == [1]]
        self.assertEqual(self.control(1, Control.DISABLE_NODE).status, 0)
        self.settle()
        after = self.hosts()
        self.assertTrue(all(len(v) == 1 and v != [1] for v in after.values()))
        self.assertEqual(len(mine), 1)
        self.assertEqual(self.control(1, Control.ENABLE_NODE).status, 0)
        self.settle()
        self.assertEqual(sorted(v[0] for v in self.hosts().values()), [0, 1, 2])

    def test_stopContinue(self) -> None:
        self.assertEqual(self.control(0, Control.STOP_NODE).status, 0)
        self.settle()
        self.assertNotIn([0], self.hosts().values())
        self.assertEqual(self.control(0, Control.CONTINUE_NODE).status, 0)
        self.settle()
        self.assertEqual(sorted(v[0] for v in self.hosts().values()), [0, 1, 2])

    def test_runWhileRecoveriesDisabled(self) -> None:
        """A node-state change while recoveries are disabled still gets a
        run (main_loop skips to its takeover-run checks)."""
        service = self.service(2)
        service.disableRecoveries(30)
        service.needTakeoverRun = True
        before = self.runs()
        self.settle(0.5)
        self.assertEqual(self.runs(), before + 1)

    def test_unhostedAddressAsksForRun(self) -> None:
        """A node that may host an address nobody hosts asks the leader for
        a run at the next leader broadcast: the address is up again."""
        hosts = self.hosts()
        address = next(a for a, v in hosts.items() if v == [0])
        for side in self.sides.values():
            side.owners[address] = P.CTDB_UNKNOWN_PNN
        self.sides[0].hosted.discard(address)
        before = self.runs()
        self.settle(1.1)
        self.assertGreater(self.runs(), before)
        self.assertEqual(len(self.hosts()[address]), 1)

    def test_noRunnerKeepsOldBehaviour(self) -> None:
        """Without a takeover runner the leader answers at once."""
        for d in self.cluster:
            d.takeoverRunner = None
        client = self.requester(0)
        self.askRun(client, 0)
        self.assertEqual(self.answers(client), [2])


class DisableTests(_LeaderMixin, SynchronousTestCase):
    """DISABLE_TAKEOVER_RUNS (ctdb reloadips) and DISABLE_IP_CHECK."""

    def disable(self, client: FakeClient, timeout: int, dest: int = 2) -> None:
        client.sendMessage(
            dest,
            CTDB_SRVID_DISABLE_TAKEOVER_RUNS,
            encodeDisableMessage(client.daemon.pnn, SRVID, timeout),
        )
        self.cluster.flush()

    def test_disableForTimeout(self) -> None:
        """Runs are held off for the timeout; the reply is the pnn; a run
        asked for meanwhile fails, a request waits until the end."""
        client = self.requester(0)
        self.disable(client, 10)
        self.assertEqual(self.answers(client), [2])
        runner = self.runners[2]
        self.assertTrue(runner.takeoverRunsDisabled())
        self.assertFalse(self.leaderRun())
        asker = self.requester(1)
        self.askRun(asker, 1)
        self.settle(9)
        self.assertEqual(self.answers(asker), [])
        self.settle(1.5)
        self.assertFalse(runner.takeoverRunsDisabled())
        self.assertEqual(self.answers(asker), [2])

    def test_recoveryWhileDisabled(self) -> None:
        """A recovery while runs are held off does not answer the waiting
        requests with a failure: they are answered by the run after."""
        client = self.requester(0)
        self.disable(client, 10)
        asker = self.requester(1)
        self.askRun(asker, 1)
        self.service(2).needRecovery = True
        self.settle(2)
        self.assertFalse(self.service(2).recovering)
        self.assertTrue(self.service(2).needTakeoverRun)
        self.assertEqual(self.answers(asker), [])
        self.settle(9)
        self.assertEqual(self.answers(asker), [2])
        self.assertFalse(self.service(2).needTakeoverRun)

    def test_zeroEnables(self) -> None:
        client = self.requester(0)
        self.disable(client, 100)
        self.disable(client, 0)
        self.assertEqual(self.answers(client), [2, 2])
        self.assertFalse(self.runners[2].takeoverRunsDisabled())
        self.assertTrue(self.leaderRun())

    def test_eagainDuringRun(self) -> None:
        side = self.sides[0]
        side.hold.add(Control.IPREALLOCATED)
        d = self.runners[2].takeoverRun()
        self.cluster.flush()
        client = self.requester(0)
        self.disable(client, 10)
        self.assertEqual(self.answers(client), [-errno.EAGAIN])
        self.assertFalse(self.runners[2].takeoverRunsDisabled())
        side.hold.clear()
        side.releaseHeld()
        self.cluster.flush()
        self.assertTrue(self.successResultOf(d))

    def test_badSize(self) -> None:
        client = self.requester(0)
        client.sendMessage(
            2,
            CTDB_SRVID_DISABLE_TAKEOVER_RUNS,
            encodeDisableMessage(0, SRVID, 10)[:20],
        )
        self.cluster.flush()
        self.assertEqual(self.answers(client), [])
        self.assertFalse(self.runners[2].takeoverRunsDisabled())

    def test_noReplyForSrvidZero(self) -> None:
        client = self.requester(0)
        client.sendMessage(
            2, CTDB_SRVID_DISABLE_TAKEOVER_RUNS, encodeDisableMessage(0, 0, 10)
        )
        self.cluster.flush()
        self.assertEqual(self.answers(client), [])
        self.assertTrue(self.runners[2].takeoverRunsDisabled())

    def test_disableIPCheck(self) -> None:
        """ctdb moveip's DISABLE_IP_CHECK holds runs off on every node."""
        client = self.requester(0)
        client.sendMessage(
            P.CTDB_BROADCAST_CONNECTED, CTDB_SRVID_DISABLE_IP_CHECK, C.encodeU32(5)
        )
        self.cluster.flush()
        self.assertTrue(all(r.takeoverRunsDisabled() for r in self.runners.values()))
        self.settle(5.5)
        self.assertFalse(any(r.takeoverRunsDisabled() for r in self.runners.values()))


class RebalanceTests(_LeaderMixin, SynchronousTestCase):
    """REBALANCE_NODE (ctdb addip, reloadips)."""

    def rebalance(self, pnn: int) -> None:
        client = FakeClient(self.cluster[0])
        client.sendMessage(
            P.CTDB_BROADCAST_CONNECTED, CTDB_SRVID_REBALANCE_NODE, C.encodeU32(pnn)
        )
        self.cluster.flush()

    def test_reachesAllocator(self) -> None:
        """The targets reach the allocator at the next run and are
        forgotten after it succeeds."""
        self.rebalance(1)
        runner = self.runners[2]
        self.assertEqual(runner.forceRebalance, [1])
        self.assertTrue(self.leaderRun())
        self.assertEqual(runner.allocateCalls[-1]["forceRebalance"], (1,))
        self.assertEqual(runner.forceRebalance, [])
        self.leaderRun()
        self.assertEqual(runner.allocateCalls[-1]["forceRebalance"], ())

    def test_keptAfterFailure(self) -> None:
        self.rebalance(0)
        self.sides[1].fail.add(Control.IPREALLOCATED)
        self.assertFalse(self.leaderRun())
        self.assertEqual(self.runners[2].forceRebalance, [0])

    def test_nonLeadersForget(self) -> None:
        """A node that hears another node lead forgets its targets."""
        self.rebalance(1)
        self.assertEqual(self.runners[0].forceRebalance, [1])
        self.settle(1.1)
        self.assertEqual(self.runners[0].forceRebalance, [])
        self.assertEqual(self.runners[1].forceRebalance, [])

    def test_badSize(self) -> None:
        client = FakeClient(self.cluster[0])
        client.sendMessage(2, CTDB_SRVID_REBALANCE_NODE, b"\x01\x00")
        self.cluster.flush()
        self.assertEqual(self.runners[2].forceRebalance, [])

    def test_leaderMessageIgnoresGarbage(self) -> None:
        """A leader broadcast too short to name a node changes nothing."""
        self.rebalance(1)
        self.cluster[0].deliverMessage(CTDB_SRVID_LEADER, b"\x01")
        self.assertEqual(self.runners[0].forceRebalance, [1])


class MessageInputTests(_LeaderMixin, SynchronousTestCase):
    """What any node or client may send to the messages this module
    answers: nothing fails inside, and runs go on."""

    def test_rebalanceUnknownNode(self) -> None:
        """A target that is no node is logged by the allocator ("unknown
        node"), the run succeeds, and the target is forgotten."""
        client = FakeClient(self.cluster[0])
        for pnn in (99, 0xFFFFFFFF):
            client.sendMessage(2, CTDB_SRVID_REBALANCE_NODE, C.encodeU32(pnn))
        self.cluster.flush()
        runner = self.runners[2]
        self.assertEqual(runner.forceRebalance, [99, 0xFFFFFFFF])
        with capturedLogs() as events:
            self.assertTrue(self.leaderRun())
        self.assertEqual(runner.forceRebalance, [])
        texts = [formatEvent(e) for e in events]
        self.assertIn("../../ctdb/server/ipalloc_lcp2.c:183unknown node 99", texts)

    def test_disableReplyToNoNode(self) -> None:
        """A DISABLE_TAKEOVER_RUNS whose reply goes to a node that does not
        exist still holds runs off; the reply is dropped."""
        client = self.requester(0)
        for pnn in (7, 0xFFFFFFFF):
            client.sendMessage(
                2, CTDB_SRVID_DISABLE_TAKEOVER_RUNS, encodeDisableMessage(pnn, SRVID, 5)
            )
        self.cluster.flush()
        self.assertTrue(self.runners[2].takeoverRunsDisabled())
        self.assertEqual(self.answers(client), [])
        self.settle(5.5)
        self.assertFalse(self.runners[2].takeoverRunsDisabled())
        self.assertTrue(self.leaderRun())

    def test_disableLongestTimeout(self) -> None:
        """The largest timeout holds runs off (for 136 years); 0 lets them
        run again at once; a message one byte too long is refused."""
        client = self.requester(0)
        client.sendMessage(2, CTDB_SRVID_DISABLE_IP_CHECK, C.encodeU32(0xFFFFFFFF))
        self.cluster.flush()
        self.settle(100)
        self.assertTrue(self.runners[2].takeoverRunsDisabled())
        client.sendMessage(
            2,
            CTDB_SRVID_DISABLE_TAKEOVER_RUNS,
            encodeDisableMessage(0, SRVID, 0) + b"x",
        )
        client.sendMessage(2, CTDB_SRVID_DISABLE_IP_CHECK, C.encodeU32(0) + b"x")
        self.cluster.flush()
        self.assertTrue(self.runners[2].takeoverRunsDisabled())
        client.sendMessage(2, CTDB_SRVID_DISABLE_IP_CHECK, C.encodeU32(0))
        self.cluster.flush()
        self.assertFalse(self.runners[2].takeoverRunsDisabled())

    def test_garbage(self) -> None:
        """Random bytes of every length to every message of this module."""
        rnd = random.Random(4170)
        client = FakeClient(self.cluster[0])
        srvids = [
            CTDB_SRVID_DISABLE_TAKEOVER_RUNS,
            CTDB_SRVID_DISABLE_IP_CHECK,
            CTDB_SRVID_REBALANCE_NODE,
            CTDB_SRVID_LEADER,
        ]
        with capturedLogs() as events:
            for srvid in srvids:
                for size in (0, 1, 3, 4, 5, 16, 23, 24, 25, 100):
                    client.sendMessage(
                        P.CTDB_BROADCAST_CONNECTED, srvid, rnd.randbytes(size)
                    )
                    self.cluster.flush()
        self.assertEqual(
            [formatEvent(e) for e in events if e.get("log_failure") is not None], []
        )
        for runner in self.runners.values():
            runner.disableTakeoverRuns(0)
            runner.forceRebalance = []
        self.assertTrue(self.leaderRun())


class WholeNodeTests(SynchronousTestCase):
    """
    Runs against the real node side (L{ctdb.takeover.node}) of every node,
    each with its own L{ctdb.takeover.fake.FakeAddressSystem}: through crashes, restarts and
    flag changes an address is never up on two running nodes, and after
    each change every address is up on exactly one node that may host it.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        text = "".join(f"{a}/24 eth0\n" for a in self.addresses)
        self.cluster = connectedNodes(
            3, self.clock, recovery=True, publicAddresses=text
        )
        self.addCleanup(self.cluster.stop)
        self.step(5)

    addresses: ClassVar[list[str]] = [f"127.1.0.{i}" for i in range(1, 7)]

    def hosts(self) -> dict[str, list[int]]:
        """The running nodes each address is up on."""
        return {
            a: sorted(
                pnn
                for pnn, system in self.cluster.addressSystems.items()
                if a in system.addresses and self.cluster[pnn].running
            )
            for a in self.addresses
        }

    def step(self, seconds: float) -> None:
        """Let time pass in small steps, checking that no address is ever
        up on two running nodes."""
        for _ in range(round(seconds / 0.01)):
            self.clock.advance(0.01)
            for a, owners in self.hosts().items():
                self.assertLessEqual(len(owners), 1, f"{a} on {owners}")

    def assertHosted(self, excluded: tuple[int, ...] = ()) -> None:
        hosts = self.hosts()
        for a, owners in hosts.items():
            self.assertEqual(len(owners), 1, f"{a} on {owners}")
            self.assertNotIn(owners[0], excluded)
        load = [sum(1 for v in hosts.values() if v == [p]) for p in range(3)]
        hosting = [p for p in range(3) if p not in excluded]
        self.assertLessEqual(
            max(load[p] for p in hosting) - min(load[p] for p in hosting), 1
        )

    def control(self, pnn: int, opcode: int) -> None:
        client = FakeClient(self.cluster[pnn])
        reqid = client.control(opcode, destnode=pnn)
        self.cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 0)
        client.disconnect()

    def test_start(self) -> None:
        self.assertHosted()

    def test_crashAndRestart(self) -> None:
        for victim in (0, 2):
            self.cluster.crash(victim)
            self.step(2)
            self.assertHosted(excluded=(victim,))
            self.cluster.restart(victim)
            self.step(5)
            self.assertHosted()

    def test_flags(self) -> None:
        for off, on in (
            (Control.DISABLE_NODE, Control.ENABLE_NODE),
            (Control.STOP_NODE, Control.CONTINUE_NODE),
        ):
            for pnn in (1, 2):
                self.control(pnn, off)
                self.step(3)
                self.assertHosted(excluded=(pnn,))
                self.control(pnn, on)
                self.step(3)
                self.assertHosted()

    def test_ban(self) -> None:
        """A banned node's addresses move away, and come back to it after
        the ban."""
        client = FakeClient(self.cluster[1])
        client.control(Control.SET_BAN_STATE, C.encodeBanState(1, 3), destnode=1)
        self.step(2)
        self.assertTrue(self.cluster[1].nodes[1].flags & C.NODE_FLAGS_BANNED)
        self.assertHosted(excluded=(1,))
        self.step(4)
        self.assertFalse(self.cluster[1].nodes[1].flags & C.NODE_FLAGS_BANNED)
        self.assertHosted()
