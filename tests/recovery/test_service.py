# -*- test-case-name: tests.recovery.test_service -*-
"""
Tests for L{ctdb.recovery.service}: whole clusters of daemons with their
databases, recovery controls and recovery services
(C{connectedNodes(..., recovery=True)}) on one L{Clock}: elections, the
leader broadcast, monitoring and recovery, node states, culprits and bans,
disabled recoveries, and calls held while databases are frozen.

With a L{Clock} every node starts at the same time, so elections are decided
by 4.17's tie rule: the highest pnn leads.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.daemon.core import Daemon
from ctdb.database.ltdb import LtdbHeader
from ctdb.databases.manager import DatabaseManager
from ctdb.databases.model import DB_SEQNUM_KEY
from ctdb.interfaces import IClientConnection
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control
from ctdb.protocols.srvids import (
    CTDB_SRVID_BANNING,
    CTDB_SRVID_DISABLE_RECOVERIES,
    CTDB_SRVID_LEADER,
    CTDB_SRVID_TAKEOVER_RUN,
    encodeDisableMessage,
    encodeSrvidMessage,
)
from ctdb.recovery.service import RecoveryService
from ctdb.testing import FakeClient, FakeCluster, connectedNodes


class _ServiceMixin:
    """A started cluster with recovery; C{settle} lets it converge."""

    nodes = 3
    tunables: ClassVar[dict[str, int]] = {}

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster: FakeCluster = connectedNodes(
            self.nodes, self.clock, tunables=dict(self.tunables), recovery=True
        )
        self.addCleanup(self.cluster.stop)  # type: ignore[attr-defined]
        self.settle()

    def settle(self, seconds: float = 4.0) -> None:
        self.cluster.advance(seconds, step=0.05)

    def live(self) -> list[Daemon]:
        return [d for d in self.cluster if d.running]

    def service(self, pnn: int) -> RecoveryService:
        return self.cluster.recovery(pnn)

    def db(self, pnn: int) -> DatabaseManager:
        return self.cluster.databases(pnn)

    def generation(self) -> int:
        return self.live()[0].vnnMap.generation

    def assertConverged(
        self, vnnmap: tuple[int, ...], leader: int | None = None
    ) -> None:
        """Every live node agrees on the leader, the generation and the vnn
        map, and is out of recovery (unless it is inactive)."""
        live = self.live()
        leaders = {self.service(d.pnn).leader for d in live}
        self.assertEqual(len(leaders), 1, f"leaders {leaders}")  # type: ignore[attr-defined]
        if leader is not None:
            self.assertEqual(leaders, {leader})  # type: ignore[attr-defined]
        generations = {d.vnnMap.generation for d in live if d.pnn in vnnmap}
        self.assertEqual(len(generations), 1)  # type: ignore[attr-defined]
        self.assertNotIn(P.INVALID_GENERATION, generations)  # type: ignore[attr-defined]
        for d in live:
            if d.pnn in vnnmap:
                self.assertEqual(d.vnnMap.map, vnnmap)  # type: ignore[attr-defined]
                self.assertEqual(d.recmode, C.CTDB_RECOVERY_NORMAL)  # type: ignore[attr-defined]
                self.assertFalse(self.service(d.pnn).electionInProgress)  # type: ignore[attr-defined]

    def control(
        self, pnn: int, opcode: int, data: bytes = b"", destnode: int | None = None
    ) -> P.ReplyControl:
        """A control from a client of node C{pnn}."""
        client = FakeClient(self.cluster[pnn])
        reqid = client.control(
            opcode, data, destnode=pnn if destnode is None else destnode
        )
        self.cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None
        client.disconnect()
        return reply


class ElectionTests(_ServiceMixin, SynchronousTestCase):
    """Electing one leader and recovering to a common state."""

    def test_oneLeader(self) -> None:
        """Every node names the same leader; only it thinks it leads."""
        self.assertConverged((0, 1, 2), leader=2)
        self.assertEqual(
            [self.service(k).isLeader() for k in range(3)], [False, False, True]
        )

    def test_firstRecovery(self) -> None:
        """The first recovery takes every node to runstate RUNNING with one
        generation and the full vnn map."""
        self.assertConverged((0, 1, 2))
        for d in self.cluster:
            self.assertEqual(d.runstate, C.RunState.RUNNING)
            self.assertGreaterEqual(d.stats.num_recoveries, 1)

    def test_stable(self) -> None:
        """A healthy cluster does not recover again."""
        generation = self.generation()
        self.settle(20)
        self.assertEqual(self.generation(), generation)
        self.assertConverged((0, 1, 2), leader=2)

    def test_leaderBroadcast(self) -> None:
        """A client registered for LEADER hears the leader at once and then
        every second."""
        client = FakeClient(self.cluster[0])
        client.control(Control.REGISTER_SRVID, srvid=CTDB_SRVID_LEADER)
        self.cluster.flush()
        self.settle(3)
        heard = [d for s, d in client.messages() if s == CTDB_SRVID_LEADER]
        self.assertGreaterEqual(len(heard), 4)
        self.assertEqual(set(heard), {C.encodeU32(2)})


class LongestRunningTests(SynchronousTestCase):
    """The earliest-started recovery daemon wins, whatever its pnn."""

    def test_earliestWins(self) -> None:
        """Node 1 started a second before the others becomes leader."""
        clock = Clock()
        cluster = connectedNodes(3, clock, recovery=True, start=False)
        self.addCleanup(cluster.stop)
        for i, pnn in enumerate([1, 0, 2]):
            if i == 1:
                clock.advance(0.2)
            cluster.node(pnn).startService()
        cluster.advance(4, step=0.05)
        self.assertEqual({cluster.recovery(d.pnn).leader for d in cluster}, {1})

    def test_noLeaderRole(self) -> None:
        """A node without the leader capability never leads."""
        clock = Clock()
        cluster = connectedNodes(3, clock, recovery=True, start=False)
        self.addCleanup(cluster.stop)
        cluster[2].capabilities &= ~C.CTDB_CAP_RECMASTER
        for d in cluster:
            cluster.node(d.pnn).startService()
        cluster.advance(4, step=0.05)
        self.assertEqual({cluster.recovery(d.pnn).leader for d in cluster}, {1})


class MembershipTests(_ServiceMixin, SynchronousTestCase):
    """Nodes that die, come back, stop or give up roles."""

    def test_leaderDies(self) -> None:
        """Killing the leader elects another and recovers with a new
        generation and a vnn map without it."""
        generation = self.generation()
        self.cluster.crash(2)
        self.settle()
        self.assertConverged((0, 1), leader=1)
        self.assertNotEqual(self.generation(), generation)

    def test_nonLeaderDies(self) -> None:
        """Killing another node keeps the leader; the vnn map loses the node."""
        generation = self.generation()
        self.cluster.crash(0)
        self.settle()
        self.assertConverged((1, 2), leader=2)
        self.assertNotEqual(self.generation(), generation)

    def test_restartRejoins(self) -> None:
        """A restarted node rejoins: the old leader (longer running) keeps
        leading and the vnn map has every node again."""
        self.cluster.crash(0)
        self.settle()
        gone = self.generation()
        self.cluster.restart(0)
        self.settle()
        self.assertConverged((0, 1, 2), leader=2)
        self.assertNotEqual(self.generation(), gone)
        self.assertEqual(self.cluster[0].runstate, C.RunState.RUNNING)

    def test_restartedLeaderDoesNotTakeOver(self) -> None:
        """The old leader restarted is younger than the new one: it follows."""
        self.cluster.crash(2)
        self.settle()
        self.cluster.restart(2)
        self.settle()
        self.assertConverged((0, 1, 2), leader=1)

    def test_partitionHeals(self) -> None:
        """A node cut off from everyone and back is taken in again."""
        self.cluster.network.partition(0, 1)
        self.cluster.network.partition(0, 2)
        self.settle()
        self.assertEqual(self.cluster[2].vnnMap.map, (1, 2))
        self.cluster.network.heal(0, 1)
        self.cluster.network.heal(0, 2)
        self.settle()
        self.assertConverged((0, 1, 2), leader=2)

    def test_stopContinue(self) -> None:
        """A stopped node leaves the vnn map and stays in recovery mode;
        continued, it comes back."""
        self.assertEqual(self.control(0, Control.STOP_NODE).status, 0)
        self.settle()
        self.assertConverged((1, 2), leader=2)
        self.assertEqual(self.cluster[0].recmode, C.CTDB_RECOVERY_ACTIVE)
        self.assertEqual(self.cluster[2].nodes[0].flags, C.NODE_FLAGS_STOPPED)
        self.control(0, Control.CONTINUE_NODE)
        self.settle()
        self.assertConverged((0, 1, 2), leader=2)

    def test_stopLeader(self) -> None:
        """A stopped leader hands over to another node."""
        self.control(2, Control.STOP_NODE)
        self.settle()
        self.assertConverged((0, 1), leader=1)

    def test_disabledStaysInMap(self) -> None:
        """A disabled node is not inactive: it stays in the vnn map."""
        generation = self.generation()
        self.control(1, Control.DISABLE_NODE)
        self.settle()
        self.assertConverged((0, 1, 2), leader=2)
        self.assertEqual(
            self.cluster[0].nodes[1].flags, C.NODE_FLAGS_PERMANENTLY_DISABLED
        )
        self.control(1, Control.ENABLE_NODE)
        self.settle()
        self.assertEqual(self.cluster[0].nodes[1].flags, 0)
        self.assertConverged((0, 1, 2), leader=2)
        del generation

    def test_leaderRoleOff(self) -> None:
        """The leader giving up the leader role: another node leads."""
        self.control(2, Control.SET_RECMASTERROLE, C.encodeU32(0))
        self.settle()
        self.assertConverged((0, 1, 2), leader=1)

    def test_lmasterRoleOff(self) -> None:
        """A node giving up the lmaster role leaves the vnn map (but stays
        active) after the next recovery."""
        self.control(1, Control.SET_LMASTERROLE, C.encodeU32(0))
        self.settle()
        self.assertConverged((0, 2), leader=2)
        self.assertEqual(self.cluster[1].vnnMap.map, (0, 2))
        self.control(1, Control.SET_LMASTERROLE, C.encodeU32(1))
        self.settle()
        self.assertConverged((0, 1, 2), leader=2)

    def test_clientForcesRecovery(self) -> None:
        """SET_RECMODE ACTIVE from a client (ctdb recover) makes the leader
        recover: a new generation, NORMAL again."""
        generation = self.generation()
        self.control(0, Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_ACTIVE))
        self.assertEqual(self.cluster[0].recmode, C.CTDB_RECOVERY_ACTIVE)
        self.settle()
        self.assertConverged((0, 1, 2), leader=2)
        self.assertNotEqual(self.generation(), generation)


class DataTests(_ServiceMixin, SynchronousTestCase):
    """Records through recoveries caused by membership changes."""

    def put(
        self, pnn: int, name: str, key: bytes, rsn: int, dmaster: int, data: bytes
    ) -> None:
        self.db(pnn).byName[name].store.store(
            key, LtdbHeader(rsn, dmaster).encode() + data
        )

    def values(self, pnn: int, name: str) -> dict[bytes, bytes]:
        return {k: v[24:] for k, v in self.db(pnn).byName[name].store.items()}

    def test_volatileSurvivesNodeLoss(self) -> None:
        """Records held by the surviving nodes are all there after the
        recovery that follows a node's death, newest copies winning."""
        for k in range(3):
            self.db(k).attach("vol", 0)
        expected = {}
        for i in range(30):
            key = b"k%d" % i
            self.put(i % 2, "vol", key, 10, i % 2, b"new%d" % i)
            self.put(2, "vol", key, 5, 2, b"old%d" % i)
            expected[key] = b"new%d" % i
        self.cluster.crash(2)
        self.settle()
        self.assertConverged((0, 1), leader=1)
        for k in (0, 1):
            self.assertEqual(self.values(k, "vol"), expected)
            value = self.db(k).byName["vol"].store.fetch(b"k3")
            assert value is not None
            header = LtdbHeader.decode(value[:24])[0]
            self.assertEqual(header.dmaster, 1)

    def test_restartedNodeGetsPersistent(self) -> None:
        """A node restarted with no databases gets the persistent database
        (from the highest sequence number) and the volatile records."""
        for k in range(3):
            self.db(k).attach("p.tdb", R.DB_FLAGS_PERSISTENT)
            self.db(k).attach("vol", 0)
            self.put(
                k, "p.tdb", DB_SEQNUM_KEY, 1, k, struct.pack("<Q", 7 if k == 1 else 2)
            )
            self.put(k, "p.tdb", b"user", 1, k, b"from%d" % k)
        self.put(1, "vol", b"v", 3, 1, b"volatile")
        self.cluster.crash(0)
        self.settle()
        self.cluster.restart(0)
        self.settle()
        self.assertConverged((0, 1, 2), leader=2)
        for k in range(3):
            self.assertEqual(self.values(k, "p.tdb")[b"user"], b"from1")
            self.assertEqual(self.values(k, "vol"), {b"v": b"volatile"})
        self.assertTrue(self.db(0).byName["p.tdb"].persistent)

    def test_callsHeldWhileFrozen(self) -> None:
        """Calls that arrive while a recovery has the databases frozen are
        held, then served after it, with the recovered data."""
        for k in range(3):
            self.db(k).attach("vol", 0)
        db_id = self.db(0).byName["vol"].db_id
        self.put(0, "vol", b"key", 4, 0, b"value")
        clients = {k: FakeClient(self.cluster[k]) for k in range(3)}
        frozen = []
        leader = self.cluster[2]
        original = leader.controls.table[Control.DB_PUSH_START]

        def pushStart(req: P.ReqControl, client: IClientConnection | None) -> Any:
            # Mid-recovery: every database is frozen; clients call now.
            frozen.append(all(self.db(k).byName["vol"].frozen for k in range(3)))
            for k, c in clients.items():
                hdr = P.Header(P.Operation.REQ_CALL, k, k, 500 + k)
                c.send(P.ReqCall(hdr, 0, db_id, P.CTDB_FETCH_FUNC, 0, b"key", b""))
            leader.controls.table[Control.DB_PUSH_START] = original
            return original(req, client)

        leader.controls.table[Control.DB_PUSH_START] = pushStart
        self.control(0, Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_ACTIVE))
        self.cluster.advance(0.3, step=0.01)
        self.assertEqual(frozen, [True])
        self.settle()
        for k, c in clients.items():
            replies = [p for p in c.packets() if isinstance(p, P.ReplyCall)]
            self.assertEqual(
                [(r.header.reqid, r.status, r.data) for r in replies],
                [(500 + k, 0, b"value")],
            )


class BanningTests(_ServiceMixin, SynchronousTestCase):
    """Culprit credits, bans and their expiry."""

    tunables: ClassVar[dict[str, int]] = {
        "RecoveryBanPeriod": 20,
        "RecoveryGracePeriod": 60,
    }

    def banningMessage(self, pnn: int) -> None:
        client = FakeClient(self.cluster[0])
        client.sendMessage(
            P.CTDB_BROADCAST_CONNECTED, CTDB_SRVID_BANNING, C.encodeU32(pnn)
        )
        self.cluster.flush()

    def test_banAtTwiceNodes(self) -> None:
        """A BANNING message gives nodemap->num credits; at 2 x nodes the
        leader bans the node for RecoveryBanPeriod, then it comes back."""
        self.banningMessage(1)
        self.settle(1)
        self.assertEqual(self.cluster[1].nodes[1].flags, 0)
        self.banningMessage(1)
        self.settle()
        self.assertEqual(self.cluster[1].nodes[1].flags, C.NODE_FLAGS_BANNED)
        self.assertConverged((0, 2), leader=2)
        self.settle(20)
        self.assertEqual(self.cluster[0].nodes[1].flags, 0)
        self.assertConverged((0, 1, 2), leader=2)

    def test_creditsForgiven(self) -> None:
        """Credits older than RecoveryGracePeriod do not count."""
        leader = self.service(2)
        leader.addCulprit(0, 5)
        self.settle(61)
        leader.addCulprit(0, 5)
        self.settle(1)
        self.assertEqual(self.cluster[0].nodes[0].flags, 0)
        leader.addCulprit(0, 1)
        self.settle(1)
        self.assertEqual(self.cluster[0].nodes[0].flags, C.NODE_FLAGS_BANNED)

    def test_failingNodeBanned(self) -> None:
        """A node that makes every recovery fail earns a credit each time
        and is banned; the cluster then recovers without it."""
        for k in range(3):
            self.db(k).attach("vol", 0)
        self.cluster[0].controls.register(
            Control.WIPE_DATABASE, lambda req, client: (-1, b"", b"broken")
        )
        self.control(1, Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_ACTIVE))
        for _ in range(15):
            self.settle(1)
            if self.cluster[2].nodes[0].flags & C.NODE_FLAGS_BANNED:
                break
        self.assertEqual(self.cluster[2].nodes[0].flags, C.NODE_FLAGS_BANNED)
        self.settle()
        self.assertConverged((1, 2), leader=2)

    def test_bansDisabled(self) -> None:
        """With EnableBans = 0 credits never ban."""
        for d in self.cluster:
            d.tunables.set("EnableBans", 0)
        self.service(2).addCulprit(1, 10)
        self.settle()
        self.assertEqual(self.cluster[1].nodes[1].flags, 0)

    def test_bannedLeaderHandsOver(self) -> None:
        """The leader banned (ctdb ban on it) loses the leadership."""
        self.control(2, Control.SET_BAN_STATE, C.encodeBanState(2, 10))
        self.settle()
        self.assertConverged((0, 1), leader=1)
        self.settle(10)
        self.assertConverged((0, 1, 2), leader=1)


class DisableRecoveriesTests(_ServiceMixin, SynchronousTestCase):
    """The DISABLE_RECOVERIES message of ctdb reloadnodes."""

    SRVID = 0xF000000000000777

    def disable(self, timeout: int) -> list[int]:
        """Send the message from a client of node 0 to every node, as the
        tool does; the replies (i32) it gets."""
        client = FakeClient(self.cluster[0], pid=1234)
        client.control(Control.REGISTER_SRVID, srvid=self.SRVID)
        for pnn in range(3):
            client.sendMessage(
                pnn,
                CTDB_SRVID_DISABLE_RECOVERIES,
                encodeDisableMessage(0, self.SRVID, timeout),
            )
        self.cluster.flush()
        return sorted(C.decodeI32(d) for s, d in client.messages() if s == self.SRVID)

    def test_repliesWithPnn(self) -> None:
        """Every node answers with its own pnn."""
        self.assertEqual(self.disable(10), [0, 1, 2])
        self.assertTrue(all(self.service(k).recoveriesDisabled() for k in range(3)))
        self.assertEqual(self.disable(0), [0, 1, 2])
        self.assertFalse(any(self.service(k).recoveriesDisabled() for k in range(3)))

    def test_noRecoveryWhileDisabled(self) -> None:
        """While disabled the leader does not recover; enabled again, it does."""
        generation = self.generation()
        self.disable(30)
        self.control(0, Control.STOP_NODE)
        self.settle()
        self.assertEqual(self.generation(), generation)
        self.assertEqual(self.cluster[2].vnnMap.map, (0, 1, 2))
        self.disable(0)
        self.settle()
        self.assertConverged((1, 2), leader=2)

    def test_timeoutEnables(self) -> None:
        """The disable ends by itself after its timeout."""
        self.disable(5)
        self.control(0, Control.STOP_NODE)
        self.settle(3)
        self.assertEqual(self.cluster[2].vnnMap.map, (0, 1, 2))
        self.settle(4)
        self.assertConverged((1, 2), leader=2)

    def test_inProgress(self) -> None:
        """Disabling while a recovery runs fails with -EAGAIN."""
        service = self.service(2)
        service.recovering = True
        self.assertEqual(service.disableRecoveries(10), -11)
        service.recovering = False
        self.assertEqual(service.disableRecoveries(10), 0)

    def test_badSize(self) -> None:
        """A message of the wrong size is ignored (no reply)."""
        client = FakeClient(self.cluster[0])
        client.control(Control.REGISTER_SRVID, srvid=self.SRVID)
        client.sendMessage(
            1,
            CTDB_SRVID_DISABLE_RECOVERIES,
            encodeDisableMessage(0, self.SRVID, 10)[:20],
        )
        self.cluster.flush()
        self.assertEqual([s for s, _ in client.messages() if s == self.SRVID], [])
        self.assertFalse(self.service(1).recoveriesDisabled())


class TakeoverRunTests(_ServiceMixin, SynchronousTestCase):
    """TAKEOVER_RUN requests (the tool's ipreallocate, after ban/stop/...)."""

    SRVID = 0xF000000000000999

    def request(self, pnn: int) -> FakeClient:
        client = FakeClient(self.cluster[pnn], pid=99)
        client.control(Control.REGISTER_SRVID, srvid=self.SRVID)
        client.sendMessage(
            P.CTDB_BROADCAST_CONNECTED,
            CTDB_SRVID_TAKEOVER_RUN,
            encodeSrvidMessage(pnn, self.SRVID),
        )
        return client

    def answers(self, client: FakeClient) -> list[int]:
        return [C.decodeI32(d) for s, d in client.messages() if s == self.SRVID]

    def test_leaderAnswers(self) -> None:
        """Only the leader answers, with its pnn."""
        client = self.request(0)
        self.settle(1)
        self.assertEqual(self.answers(client), [2])

    def test_noReplyWanted(self) -> None:
        """srvid 0 asks for no reply."""
        client = FakeClient(self.cluster[0])
        client.sendMessage(
            P.CTDB_BROADCAST_CONNECTED,
            CTDB_SRVID_TAKEOVER_RUN,
            encodeSrvidMessage(0, 0),
        )
        self.settle(1)
        self.assertEqual(client.messages(), [])

    def test_leaderBanned(self) -> None:
        """A request sent just after the leader was banned is answered by
        the next leader once it has recovered (the tool need not resend)."""
        self.control(2, Control.SET_BAN_STATE, C.encodeBanState(2, 100))
        client = self.request(2)
        self.cluster.flush()
        self.assertEqual(self.answers(client), [])
        self.settle()
        self.assertEqual(self.answers(client), [1])
        self.assertConverged((0, 1), leader=1)
