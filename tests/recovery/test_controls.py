# -*- test-case-name: tests.recovery.test_controls -*-
"""
Tests for L{ctdb.recovery.controls}: the daemon side of recovery and node
states (ctdb_recover.c, ctdb_banning.c), driven by a local L{FakeClient} on
daemons connected by L{ctdb.testing} fakes, without a recovery service.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

from twisted.internet.error import ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control
from ctdb.protocols.srvids import CTDB_SRVID_PUSH_NODE_FLAGS
from ctdb.recovery.clusterlock import CHECK_TIMEOUT
from ctdb.recovery.controls import newGeneration
from ctdb.recovery.election import encodeFlagChange
from ctdb.testing import FakeClient, connectedNodes


class _ControlsMixin:
    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster = connectedNodes(3, self.clock)
        self.managers = [self.cluster.databases(d.pnn) for d in self.cluster]
        self.rc = [self.cluster.recoveryControls(d.pnn) for d in self.cluster]
        self.addCleanup(self.cluster.stop)  # type: ignore[attr-defined]
        self.client = FakeClient(self.cluster[0])

    def control(
        self,
        opcode: int,
        data: bytes = b"",
        destnode: int = 0,
        client: FakeClient | None = None,
    ) -> P.ReplyControl:
        c = client or self.client
        reqid = c.control(opcode, data, destnode=destnode)
        self.cluster.flush()
        reply = c.reply(reqid)
        assert reply is not None, f"no reply to {C.controlName(opcode)}"
        return reply

    def flags(self, pnn: int, seenBy: int | None = None) -> int:
        return self.cluster[pnn if seenBy is None else seenBy].nodes[pnn].flags


class RecmodeTests(_ControlsMixin, SynchronousTestCase):
    """SET_RECMODE (ctdb_control_set_recmode)."""

    def test_activeThenNormal(self) -> None:
        """ACTIVE then NORMAL, read back with GET_RECMODE (the status)."""
        self.assertEqual(
            self.control(
                Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_ACTIVE)
            ).status,
            0,
        )
        self.assertEqual(
            self.control(Control.GET_RECMODE).status, C.CTDB_RECOVERY_ACTIVE
        )
        self.assertEqual(
            self.control(
                Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_NORMAL)
            ).status,
            0,
        )
        self.assertEqual(
            self.control(Control.GET_RECMODE).status, C.CTDB_RECOVERY_NORMAL
        )

    def test_sameModeIsNoop(self) -> None:
        """Setting the current mode succeeds and changes nothing."""
        self.assertEqual(
            self.control(
                Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_NORMAL)
            ).status,
            0,
        )
        self.assertEqual(self.cluster[0].recmode, C.CTDB_RECOVERY_NORMAL)

    def test_invalidMode(self) -> None:
        """A mode other than 0 or 1 is refused."""
        reply = self.control(Control.SET_RECMODE, C.encodeU32(7))
        self.assertEqual(reply.status, -1)
        self.assertEqual(self.cluster[0].recmode, C.CTDB_RECOVERY_NORMAL)

    def test_remoteNode(self) -> None:
        """The control reaches another node through this one."""
        self.control(
            Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_ACTIVE), destnode=2
        )
        self.assertEqual(self.cluster[2].recmode, C.CTDB_RECOVERY_ACTIVE)
        self.assertEqual(self.cluster[0].recmode, C.CTDB_RECOVERY_NORMAL)

    def test_normalThaws(self) -> None:
        """Back to NORMAL thaws every database and cancels a leftover
        recovery transaction."""
        db = self.managers[0].attach("vol", 0)
        self.control(Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_ACTIVE))
        self.control(Control.DB_FREEZE, C.encodeU32(db.db_id))
        self.control(Control.DB_TRANSACTION_START, R.encodeTransDb(db.db_id, 5))
        self.assertTrue(db.frozen)
        self.assertEqual(db.transactionId, 5)
        self.control(Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_NORMAL))
        self.assertFalse(db.frozen)
        self.assertIsNone(db.transactionId)

    def test_normalRefusedWhileBanned(self) -> None:
        """A banned node stays in recovery mode."""
        self.control(Control.SET_BAN_STATE, C.encodeBanState(0, 100))
        reply = self.control(Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_NORMAL))
        self.assertEqual(reply.status, -1)
        self.assertEqual(self.cluster[0].recmode, C.CTDB_RECOVERY_ACTIVE)

    def test_normalRefusedUntilRecovered(self) -> None:
        """
        A node that was stopped keeps its databases as they were; once it
        continues it stays in recovery mode ("Inconsistent DB generation")
        until a recovery committed each of its databases in the current
        generation, as ctdbd.  Thawed at once, its clients would use
        records it no longer owns: a fixed-seed nemesis run saw node 2
        after stop(2) hold the transaction g_lock record as its dmaster
        with rsn 1505 while node 1 had rsn 2149, so its waiters polled
        that copy for ever.
        """
        node = self.cluster[1]
        node.vnnMap = C.VnnMap(77, node.vnnMap.map)  # a recovery's generation
        db = self.managers[1].attach("vol", 0)
        self.assertEqual(db.generation, 77)
        self.control(Control.STOP_NODE, destnode=1)
        self.control(Control.CONTINUE_NODE, destnode=1)
        normal = C.encodeU32(C.CTDB_RECOVERY_NORMAL)
        reply = self.control(Control.SET_RECMODE, normal, destnode=1)
        self.assertEqual(reply.status, -1)
        self.assertIn(b"Inconsistent DB generation", reply.errmsg)
        self.assertEqual(self.cluster[1].recmode, C.CTDB_RECOVERY_ACTIVE)
        self.assertTrue(db.frozen)
        # a recovery of the database in the current generation lets it go
        transdb = R.encodeTransDb(db.db_id, 77)
        for control in (
            Control.DB_TRANSACTION_START,
            Control.WIPE_DATABASE,
            Control.DB_TRANSACTION_COMMIT,
        ):
            self.assertEqual(self.control(control, transdb, destnode=1).status, 0)
        self.assertEqual(
            self.control(Control.SET_RECMODE, normal, destnode=1).status, 0
        )
        self.assertFalse(db.frozen)

    def test_newDatabaseNeedsNoRecovery(self) -> None:
        """A database attached while the node is in the cluster belongs to
        the current generation: NORMAL is allowed."""
        self.managers[0].attach("vol", 0)
        self.control(Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_ACTIVE))
        reply = self.control(Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_NORMAL))
        self.assertEqual(reply.status, 0)


class VnnMapTests(_ControlsMixin, SynchronousTestCase):
    """SETVNNMAP, START_RECOVERY, END_RECOVERY."""

    def test_setVnnMap(self) -> None:
        """The map is read back by GETVNNMAP."""
        vnn = C.VnnMap(0xABCDEF01, (0, 2))
        self.assertEqual(
            self.control(Control.SETVNNMAP, vnn.encode(), destnode=1).status, 0
        )
        reply = self.control(Control.GETVNNMAP, destnode=1)
        self.assertEqual(C.VnnMap.decode(reply.data), vnn)

    def test_unknownNode(self) -> None:
        """A map naming a node that does not exist is refused."""
        before = self.cluster[0].vnnMap
        reply = self.control(Control.SETVNNMAP, C.VnnMap(7, (0, 9)).encode())
        self.assertEqual(reply.status, -1)
        self.assertEqual(self.cluster[0].vnnMap, before)

    def test_startEndRecovery(self) -> None:
        """START_RECOVERY stamps a recovery's start; END_RECOVERY stamps the
        end, counts the recovery (ctdb_end_recovery_callback) and takes a
        first-recovery node to RUNNING."""
        d = self.cluster[0]
        d.runstate = C.RunState.FIRST_RECOVERY
        self.clock.advance(10)
        self.control(Control.START_RECOVERY)
        self.assertEqual(d.stats.num_recoveries, 0)
        self.assertEqual(d.lastRecoveryStarted, 10)
        self.assertEqual(d.runstate, C.RunState.FIRST_RECOVERY)
        self.clock.advance(2)
        self.control(Control.END_RECOVERY)
        self.assertEqual(d.stats.num_recoveries, 1)
        self.assertEqual(d.lastRecoveryFinished, 12)
        self.assertEqual(d.runstate, C.RunState.RUNNING)

    def test_newGeneration(self) -> None:
        """Generations are random 32-bit values, never INVALID_GENERATION."""
        values = {newGeneration() for _ in range(200)}
        self.assertGreater(len(values), 190)
        self.assertNotIn(P.INVALID_GENERATION, values)
        self.assertTrue(all(0 <= v < 2**32 for v in values))


class FlagTests(_ControlsMixin, SynchronousTestCase):
    """Node states: stop/continue, disable/enable, MODIFY_FLAGS, pushed flags."""

    def test_stopContinue(self) -> None:
        """STOP_NODE sets STOPPED, enters recovery mode and freezes the
        databases; every connected node learns the flags; CONTINUE_NODE
        clears them."""
        db = self.managers[1].attach("vol", 0)
        self.assertEqual(self.control(Control.STOP_NODE, destnode=1).status, 0)
        for seer in range(3):
            self.assertEqual(self.flags(1, seer), C.NODE_FLAGS_STOPPED)
        self.assertEqual(self.cluster[1].recmode, C.CTDB_RECOVERY_ACTIVE)
        self.assertTrue(db.frozen)
        self.control(Control.CONTINUE_NODE, destnode=1)
        for seer in range(3):
            self.assertEqual(self.flags(1, seer), 0)

    def test_disableEnable(self) -> None:
        """DISABLE_NODE/ENABLE_NODE toggle PERMANENTLY_DISABLED (not
        inactive: the node stays out of recovery mode)."""
        self.control(Control.DISABLE_NODE, destnode=2)
        for seer in range(3):
            self.assertEqual(self.flags(2, seer), C.NODE_FLAGS_PERMANENTLY_DISABLED)
        self.assertEqual(self.cluster[2].recmode, C.CTDB_RECOVERY_NORMAL)
        self.control(Control.ENABLE_NODE, destnode=2)
        self.assertEqual(self.flags(2, 0), 0)

    def test_nodemapShowsFlags(self) -> None:
        """GET_NODEMAP of any node shows another node's new flags."""
        self.control(Control.STOP_NODE, destnode=2)
        reply = self.control(Control.GET_NODEMAP, destnode=1)
        flags = {n.pnn: n.flags for n in C.decodeNodeMap(reply.data)}
        self.assertEqual(flags, {0: 0, 1: 0, 2: C.NODE_FLAGS_STOPPED})

    def test_modifyFlagsOwn(self) -> None:
        """MODIFY_FLAGS for this node is answered and ignored, as 4.17's
        ctdb_control_modflags: only the node changes its own flags."""
        data = encodeFlagChange(
            0, C.NODE_FLAGS_PERMANENTLY_DISABLED | C.NODE_FLAGS_UNHEALTHY, 0
        )
        self.assertEqual(self.control(Control.MODIFY_FLAGS, data).status, 0)
        self.assertEqual(self.flags(0), 0)
        self.assertEqual(self.flags(0, 1), 0)

    def test_modifyFlagsOther(self) -> None:
        """MODIFY_FLAGS for another node changes only the local view, and
        keeps this node's own link state for it."""
        self.cluster.network.partition(0, 2)
        self.cluster.flush()
        data = encodeFlagChange(2, C.NODE_FLAGS_BANNED, 0)
        self.control(Control.MODIFY_FLAGS, data)
        self.assertEqual(
            self.flags(2, 0), C.NODE_FLAGS_BANNED | C.NODE_FLAGS_DISCONNECTED
        )
        self.assertEqual(self.flags(2, 2), 0)

    def test_modifyFlagsUnknownNode(self) -> None:
        """MODIFY_FLAGS for a node that does not exist fails."""
        reply = self.control(Control.MODIFY_FLAGS, encodeFlagChange(5, 0, 0))
        self.assertEqual(reply.status, -1)

    def test_pushedFlagsIgnoreSelf(self) -> None:
        """A PUSH_NODE_FLAGS message about this node does not overwrite the
        node's own flags (it alone decides them)."""
        self.client.sendMessage(
            1, CTDB_SRVID_PUSH_NODE_FLAGS, encodeFlagChange(1, C.NODE_FLAGS_BANNED, 0)
        )
        self.cluster.flush()
        self.assertEqual(self.flags(1), 0)

    def test_pushedFlags(self) -> None:
        """A PUSH_NODE_FLAGS message about another node updates the view."""
        self.client.sendMessage(
            1, CTDB_SRVID_PUSH_NODE_FLAGS, encodeFlagChange(2, C.NODE_FLAGS_STOPPED, 0)
        )
        self.cluster.flush()
        self.assertEqual(self.flags(2, 1), C.NODE_FLAGS_STOPPED)
        self.assertEqual(self.flags(2, 0), 0)


class BanTests(_ControlsMixin, SynchronousTestCase):
    """SET_BAN_STATE and GET_BAN_STATE (ctdb_banning.c)."""

    def test_banAndExpire(self) -> None:
        """A ban sets BANNED everywhere, makes the node inactive (recovery
        mode, frozen databases) and ends by itself after the period."""
        db = self.managers[1].attach("vol", 0)
        reply = self.control(Control.SET_BAN_STATE, C.encodeBanState(1, 30), destnode=1)
        self.assertEqual(reply.status, 0)
        for seer in range(3):
            self.assertEqual(self.flags(1, seer), C.NODE_FLAGS_BANNED)
        self.assertEqual(self.cluster[1].recmode, C.CTDB_RECOVERY_ACTIVE)
        self.assertTrue(db.frozen)
        self.clock.advance(12)
        reply = self.control(Control.GET_BAN_STATE, destnode=1)
        self.assertEqual(C.decodeBanState(reply.data), (1, 18))
        self.clock.advance(18)
        self.cluster.flush()
        for seer in range(3):
            self.assertEqual(self.flags(1, seer), 0)
        reply = self.control(Control.GET_BAN_STATE, destnode=1)
        self.assertEqual(C.decodeBanState(reply.data), (1, 0))

    def test_unban(self) -> None:
        """A ban time of 0 unbans at once and cancels the timer."""
        self.control(Control.SET_BAN_STATE, C.encodeBanState(2, 300), destnode=2)
        self.control(Control.SET_BAN_STATE, C.encodeBanState(2, 0), destnode=2)
        self.assertEqual(self.flags(2, 0), 0)
        self.assertIsNone(self.rc[2]._unban)

    def test_rebanRestartsTimer(self) -> None:
        """A second ban replaces the first one's period."""
        self.control(Control.SET_BAN_STATE, C.encodeBanState(0, 10))
        self.clock.advance(5)
        self.control(Control.SET_BAN_STATE, C.encodeBanState(0, 20))
        self.clock.advance(10)
        self.assertEqual(self.flags(0), C.NODE_FLAGS_BANNED)
        self.clock.advance(10)
        self.assertEqual(self.flags(0), 0)

    def test_otherPnnRefused(self) -> None:
        """SET_BAN_STATE naming another pnn is refused (the tool sends it to
        the node to ban)."""
        reply = self.control(Control.SET_BAN_STATE, C.encodeBanState(2, 30), destnode=1)
        self.assertEqual(reply.status, -1)
        self.assertEqual(self.flags(2, 2), 0)
        self.assertEqual(self.flags(1, 1), 0)

    def test_bannedDropsCalls(self) -> None:
        """A banned node drops REQ_CALL traffic from other nodes."""
        self.control(Control.SET_BAN_STATE, C.encodeBanState(1, 30), destnode=1)
        db = self.managers[1].attach("vol", 0)
        for m in (self.managers[0], self.managers[2]):
            m.attach("vol", 0)
        hdr = P.Header(
            P.Operation.REQ_CALL, 1, 0, 99, self.cluster[1].vnnMap.generation
        )
        self.cluster.network.transports[1].deliver(
            0, P.ReqCall(hdr, 0, db.db_id, P.CTDB_NULL_FUNC, 0, b"k", b"")
        )
        self.cluster.flush()
        self.assertEqual(
            [
                p
                for p in self.cluster.network.transports[1].sentPackets(0)
                if p.header.reqid == 99
            ],
            [],
        )


class RoleTests(_ControlsMixin, SynchronousTestCase):
    """SET_LMASTERROLE and SET_RECMASTERROLE change the capabilities."""

    def caps(self, pnn: int) -> int:
        return C.decodeU32(self.control(Control.GET_CAPABILITIES, destnode=pnn).data)

    def test_lmasterRole(self) -> None:
        """Off clears CTDB_CAP_LMASTER, on sets it again."""
        self.control(Control.SET_LMASTERROLE, C.encodeU32(0), destnode=1)
        self.assertFalse(self.caps(1) & C.CTDB_CAP_LMASTER)
        self.assertTrue(self.caps(1) & C.CTDB_CAP_RECMASTER)
        self.control(Control.SET_LMASTERROLE, C.encodeU32(1), destnode=1)
        self.assertTrue(self.caps(1) & C.CTDB_CAP_LMASTER)

    def test_recmasterRole(self) -> None:
        """Off clears CTDB_CAP_RECMASTER, on sets it again."""
        self.control(Control.SET_RECMASTERROLE, C.encodeU32(0), destnode=2)
        self.assertFalse(self.caps(2) & C.CTDB_CAP_RECMASTER)
        self.assertTrue(self.caps(2) & C.CTDB_CAP_LMASTER)
        self.control(Control.SET_RECMASTERROLE, C.encodeU32(1), destnode=2)
        self.assertTrue(self.caps(2) & C.CTDB_CAP_RECMASTER)


class ReloadNodesTests(_ControlsMixin, SynchronousTestCase):
    """RELOAD_NODES_FILE: nodes are added and deleted, never renumbered."""

    def setUp(self) -> None:
        super().setUp()
        # Outside the checkout (trial's mktemp would litter it under pytest).
        directory = tempfile.mkdtemp(prefix="txctdb-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.path = os.path.join(directory, "nodes")
        for d in self.cluster:
            d.config.nodesFile = self.path

    def write(self, text: str) -> None:
        with open(self.path, "w") as f:
            f.write(text)

    def test_addNode(self) -> None:
        """A new line is a new node, DISCONNECTED|UNHEALTHY until it
        connects (convert_node_map_to_list), that the transport dials."""
        self.write("127.0.0.1\n127.0.0.2\n127.0.0.3\n127.0.0.4\n")
        self.assertEqual(self.control(Control.RELOAD_NODES_FILE).status, 0)
        d = self.cluster[0]
        self.assertEqual(len(d.nodes), 4)
        self.assertEqual(d.nodes[3].address, "127.0.0.4")
        self.assertEqual(
            d.nodes[3].flags, C.NODE_FLAGS_DISCONNECTED | C.NODE_FLAGS_UNHEALTHY
        )
        self.assertEqual(d.transport.connectRequests[3], "127.0.0.4")  # type: ignore[attr-defined]
        nodemap = C.decodeNodeMap(self.control(Control.GET_NODEMAP).data)
        self.assertEqual([n.pnn for n in nodemap], [0, 1, 2, 3])

    def test_deleteNode(self) -> None:
        """A '#' line deletes the node: DELETED|DISCONNECTED, address
        0.0.0.0, link removed."""
        self.cluster.crash(2)
        self.cluster.flush()
        self.write("127.0.0.1\n127.0.0.2\n#127.0.0.3\n")
        self.control(Control.RELOAD_NODES_FILE)
        d = self.cluster[0]
        self.assertEqual(
            d.nodes[2].flags, C.NODE_FLAGS_DELETED | C.NODE_FLAGS_DISCONNECTED
        )
        self.assertEqual(d.nodes[2].address, "0.0.0.0")
        self.assertIn(2, d.transport.removed)  # type: ignore[attr-defined]
        self.assertNotIn(2, d.targets(P.CTDB_BROADCAST_CONNECTED))

    def test_undeleteNode(self) -> None:
        """A deleted node that comes back is dialled again."""
        self.write("127.0.0.1\n127.0.0.2\n#127.0.0.3\n")
        self.cluster.crash(2)
        self.control(Control.RELOAD_NODES_FILE)
        self.write("127.0.0.1\n127.0.0.2\n127.0.0.3\n")
        self.control(Control.RELOAD_NODES_FILE)
        self.assertEqual(
            self.cluster[0].nodes[2].flags,
            C.NODE_FLAGS_DISCONNECTED | C.NODE_FLAGS_UNHEALTHY,
        )
        self.assertEqual(self.cluster[0].nodes[2].address, "127.0.0.3")


class _FakeHelper:
    """A cluster lock helper process that L{_HelperClock} pretends to run."""

    def __init__(self, proto: ProcessProtocol, argv: list[str]) -> None:
        self.proto = proto
        self.argv = argv
        self.signals: list[int] = []
        self.ended = False

    def signalProcess(self, signal: int) -> None:
        self.signals.append(signal)
        self.end()

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self.proto.processEnded(Failure(ProcessTerminated(signal=15)))


class _HelperClock(Clock):
    """A clock that can also "spawn" cluster lock helpers: each answers the
    next byte of L{answers} (nothing for C{b""}) and runs until signalled."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[bytes] = []
        self.helpers: list[_FakeHelper] = []

    def spawnProcess(
        self, proto: ProcessProtocol, executable: str, args: list[str], **kw: object
    ) -> _FakeHelper:
        helper = _FakeHelper(proto, list(args))
        self.helpers.append(helper)
        proto.makeConnection(helper)
        answer = self.answers.pop(0) if self.answers else b""
        if answer:
            proto.childDataReceived(1, answer)
        return helper


class RecmodeLockCheckTests(_ControlsMixin, SynchronousTestCase):
    """SET_RECMODE NORMAL with a cluster lock (set_recmode_handler): the
    daemon checks that it cannot take the lock, which the leader holds."""

    clock: _HelperClock

    def setUp(self) -> None:
        self.clock = _HelperClock()
        self.cluster = connectedNodes(3, self.clock)
        self.managers = [self.cluster.databases(d.pnn) for d in self.cluster]
        self.addCleanup(self.cluster.stop)
        self.client = FakeClient(self.cluster[0])
        self.cluster[0].config.recoveryLock = "!lockhelper /shared/lock"
        self.control(Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_ACTIVE))

    def normal(self) -> P.ReplyControl:
        return self.control(Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_NORMAL))

    def test_contended(self) -> None:
        """The lock is held elsewhere: NORMAL, the helper is stopped, and
        reclock_ctdbd counts one check."""
        self.clock.answers = [b"1"]
        self.assertEqual(self.normal().status, 0)
        self.assertEqual(self.cluster[0].recmode, C.CTDB_RECOVERY_NORMAL)
        [helper] = self.clock.helpers
        self.assertEqual(helper.argv, ["lockhelper", "/shared/lock"])
        self.assertTrue(helper.ended)
        self.assertEqual(self.cluster[0].stats.reclock_ctdbd.num, 1)

    def test_takenMeansIncoherent(self) -> None:
        """The daemon could take the lock: the recovery does not end, the
        lock is given back at once, and the error says why."""
        self.clock.answers = [b"0"]
        reply = self.normal()
        self.assertEqual(reply.status, -1)
        self.assertIn(b"lock coherence problem", reply.errmsg)
        self.assertEqual(self.cluster[0].recmode, C.CTDB_RECOVERY_ACTIVE)
        [helper] = self.clock.helpers
        self.assertEqual(helper.signals, [signal.SIGTERM])
        self.assertEqual(self.cluster[0].stats.reclock_ctdbd.num, 0)

    def test_timeoutAllowsNormal(self) -> None:
        """A helper that does not answer in 5 s lets the recovery end."""
        self.clock.answers = [b""]
        reqid = self.client.control(
            Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_NORMAL)
        )
        self.cluster.flush()
        self.assertIsNone(self.client.reply(reqid))
        self.clock.advance(CHECK_TIMEOUT)
        self.cluster.flush()
        reply = self.client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 0)
        self.assertEqual(self.cluster[0].recmode, C.CTDB_RECOVERY_NORMAL)
        self.assertTrue(self.clock.helpers[0].ended)

    def test_helperError(self) -> None:
        """A helper that reports an error keeps the node in recovery."""
        self.clock.answers = [b"3"]
        reply = self.normal()
        self.assertEqual(reply.status, -1)
        self.assertEqual(self.cluster[0].recmode, C.CTDB_RECOVERY_ACTIVE)

    def test_restartedRecoveryWins(self) -> None:
        """A new recovery (SET_RECMODE ACTIVE) during the check makes the
        old NORMAL request fail instead of ending the new recovery."""
        self.clock.answers = [b""]
        reqid = self.client.control(
            Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_NORMAL)
        )
        self.cluster.flush()
        self.control(Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_ACTIVE))
        self.clock.helpers[0].proto.childDataReceived(1, b"1")
        self.cluster.flush()
        reply = self.client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, -1)
        self.assertEqual(self.cluster[0].recmode, C.CTDB_RECOVERY_ACTIVE)

    def test_noLockNoCheck(self) -> None:
        """Without a cluster lock nothing is spawned."""
        self.cluster[0].config.recoveryLock = ""
        self.assertEqual(self.normal().status, 0)
        self.assertEqual(self.clock.helpers, [])
