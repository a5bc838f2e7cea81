# -*- test-case-name: tests.daemon.test_controls -*-
"""
Tests for L{ctdb.daemon.controls}: every control the base daemon answers,
checked against Samba 4.17's ctdb_control_dispatch (server/ctdb_control.c,
ctdb_daemon.c, ctdb_tunables.c, ctdb_tunnel.c), and the promise that no
payload can make a handler raise.
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
import tempfile

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from ctdb.daemon.core import Daemon, DaemonConfig
from ctdb.interfaces import ILogLevelObserver, ITunableObserver
from ctdb.nodes import parseNodes
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.testing import FakeClient, FakeNodeTransport

#: A pid no process has (above any pid_max).
NO_SUCH_PID = 0x7FFFFFF0


def _tempPath(case: SynchronousTestCase) -> str:
    """A path in a fresh temporary directory removed after the test."""
    directory = tempfile.mkdtemp(prefix="txctdb-test-")
    case.addCleanup(shutil.rmtree, directory, True)
    return os.path.join(directory, "nodes")


class ControlTestCase(SynchronousTestCase):
    """A started daemon (pnn 1 of 3, node 2 deleted) and a local client."""

    nodes = "10.0.0.1\n10.0.0.2\n#\n10.0.0.4\n"

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.transport = FakeNodeTransport(1)
        self.shutdowns: list[int] = []
        self.daemon = Daemon(
            reactor=self.clock,  # type: ignore[arg-type]
            config=DaemonConfig(
                nodeMap=parseNodes(self.nodes), pnn=1, recoveryLock="/cluster/lock"
            ),
            transport=self.transport,
            shutdownCallback=lambda: self.shutdowns.append(1),
        )
        self.daemon.startService()
        self.client = FakeClient(self.daemon, pid=os.getpid())

    def call(
        self,
        opcode: int,
        data: bytes = b"",
        *,
        srvid: int = 0,
        client: FakeClient | None = None,
    ) -> P.ReplyControl:
        """Send a control from a local client; return its (prompt) reply."""
        c = client or self.client
        reqid = c.control(opcode, data, srvid=srvid)
        self.clock.advance(0)
        reply = c.reply(reqid)
        assert reply is not None, f"no reply to {C.controlName(opcode)}"
        return reply

    def assertFails(self, reply: P.ReplyControl, status: int = -1) -> None:
        self.assertEqual(reply.status, status)
        self.assertEqual(reply.data, b"")

    def assertOk(self, reply: P.ReplyControl) -> bytes:
        self.assertEqual(reply.status, 0, reply.errmsg)
        return reply.data


class InformationControlTests(ControlTestCase):
    """Controls that report the daemon's state."""

    def test_ping(self) -> None:
        """PING answers the number of connected clients in the status."""
        self.assertEqual(self.call(Control.PING).status, 1)
        FakeClient(self.daemon)
        self.assertEqual(self.call(Control.PING).status, 2)

    def test_getPnn(self) -> None:
        """GET_PNN answers our pnn in the status."""
        reply = self.call(Control.GET_PNN)
        self.assertEqual((reply.status, reply.data), (1, b""))

    def test_getPid(self) -> None:
        """GET_PID answers the daemon's pid in the status."""
        self.assertEqual(self.call(Control.GET_PID).status, os.getpid())

    def test_getRunstate(self) -> None:
        """GET_RUNSTATE answers a u32 runstate."""
        data = self.assertOk(self.call(Control.GET_RUNSTATE))
        self.assertEqual(data, struct.pack("<I", C.RunState.RUNNING))

    def test_uptime(self) -> None:
        """UPTIME answers four timevals: now, start, last recovery times."""
        self.clock.advance(12.5)
        data = self.assertOk(self.call(Control.UPTIME))
        self.assertEqual(len(data), 64)
        up = C.Uptime.decode(data)
        self.assertEqual(up.current_time, 1012.5)
        self.assertEqual(up.ctdbd_start_time, 1000)
        self.assertEqual((up.last_recovery_started, up.last_recovery_finished), (0, 0))

    def test_debugLevel(self) -> None:
        """SET_DEBUG stores an int32 level that GET_DEBUG returns."""
        self.assertOk(self.call(Control.SET_DEBUG, C.encodeI32(10)))
        data = self.assertOk(self.call(Control.GET_DEBUG))
        self.assertEqual(C.decodeI32(data), 10)
        self.assertOk(self.call(Control.SET_DEBUG, C.encodeI32(-1)))
        self.assertEqual(C.decodeI32(self.call(Control.GET_DEBUG).data), -1)

    def test_setDebugTellsObservers(self) -> None:
        """SET_DEBUG tells every ILogLevelObserver the new level."""
        levels: list[int] = []

        @implementer(ILogLevelObserver)
        class Observer:
            def logLevelChanged(self, level: int) -> None:
                levels.append(level)

        self.daemon.addLogLevelObserver(Observer())
        self.call(Control.SET_DEBUG, C.encodeI32(5))
        self.assertEqual(levels, [5])

    def test_capabilities(self) -> None:
        """GET_CAPABILITIES answers the u32 default capabilities."""
        data = self.assertOk(self.call(Control.GET_CAPABILITIES))
        self.assertEqual(C.decodeU32(data), C.CTDB_CAP_DEFAULT)
        self.assertEqual(C.CTDB_CAP_DEFAULT, 0x30003)

    def test_nodemap(self) -> None:
        """
        GET_NODEMAP lists every node with its flags: us connected, the
        others disconnected, the deleted one DELETED at 0.0.0.0.
        """
        self.transport.connect(0)
        nodes = C.decodeNodeMap(self.assertOk(self.call(Control.GET_NODEMAP)))
        self.assertEqual([n.pnn for n in nodes], [0, 1, 2, 3])
        self.assertEqual(
            [n.address for n in nodes], ["10.0.0.1", "10.0.0.2", "0.0.0.0", "10.0.0.4"]
        )
        self.assertEqual(nodes[0].flags, 0)
        self.assertEqual(nodes[1].flags, 0)
        self.assertTrue(nodes[2].flags & C.NODE_FLAGS_DELETED)
        self.assertTrue(nodes[3].flags & C.NODE_FLAGS_DISCONNECTED)

    def test_nodesFileFromConfig(self) -> None:
        """
        GET_NODES_FILE without a file answers the configured map, flags 0
        except DELETED for commented-out nodes.
        """
        nodes = C.decodeNodeMap(self.assertOk(self.call(Control.GET_NODES_FILE)))
        self.assertEqual([n.flags for n in nodes], [0, 0, C.NODE_FLAGS_DELETED, 0])
        self.assertEqual(nodes[2].address, "0.0.0.0")

    def test_nodesFileReread(self) -> None:
        """
        GET_NODES_FILE rereads the nodes file (as ctdb_read_nodes_file), so
        an edited file shows; an unreadable one fails the control.
        """
        path = _tempPath(self)
        with open(path, "w") as f:
            f.write("10.0.0.1\n10.0.0.2\n#\n10.0.0.4\n10.0.0.5\n")
        self.daemon.config.nodesFile = path
        nodes = C.decodeNodeMap(self.assertOk(self.call(Control.GET_NODES_FILE)))
        self.assertEqual(len(nodes), 5)
        self.assertEqual(nodes[4].address, "10.0.0.5")
        os.unlink(path)
        self.assertFails(self.call(Control.GET_NODES_FILE))

    def test_vnnmap(self) -> None:
        """GETVNNMAP answers generation, size and the lmaster pnns."""
        vnn = C.VnnMap.decode(self.assertOk(self.call(Control.GETVNNMAP)))
        self.assertEqual(vnn.generation, P.INVALID_GENERATION)
        self.assertNotIn(2, vnn.map)

    def test_recmode(self) -> None:
        """GET_RECMODE answers the mode in the status (0 = NORMAL)."""
        reply = self.call(Control.GET_RECMODE)
        self.assertEqual((reply.status, reply.data), (C.CTDB_RECOVERY_NORMAL, b""))
        self.daemon.recmode = C.CTDB_RECOVERY_ACTIVE
        self.assertEqual(self.call(Control.GET_RECMODE).status, 1)

    def test_reclockFile(self) -> None:
        """GET_RECLOCK_FILE answers the NUL-terminated lock string."""
        data = self.assertOk(self.call(Control.GET_RECLOCK_FILE))
        self.assertEqual(data, b"/cluster/lock\0")

    def test_reclockFileNone(self) -> None:
        """Without a recovery lock GET_RECLOCK_FILE succeeds with no data."""
        self.daemon.config.recoveryLock = ""
        self.assertEqual(self.assertOk(self.call(Control.GET_RECLOCK_FILE)), b"")

    def test_shutdown(self) -> None:
        """SHUTDOWN stops the process (no reply, as ctdbd exits)."""
        reqid = self.client.control(Control.SHUTDOWN)
        self.clock.advance(0)
        self.assertEqual(self.shutdowns, [1])
        self.assertIsNone(self.client.reply(reqid))


class TunableControlTests(ControlTestCase):
    """GET/SET/LIST tunables (ctdb_tunables.c, common/tunable.c)."""

    def test_getTunable(self) -> None:
        """GET_TUNABLE answers a u32, whatever the case of the name."""
        for name in ("KeepaliveInterval", "keepaliveinterval", "KEEPALIVEINTERVAL"):
            data = self.assertOk(
                self.call(Control.GET_TUNABLE, C.encodeGetTunable(name))
            )
            self.assertEqual(C.decodeU32(data), 5)

    def test_getUnknownTunable(self) -> None:
        """An unknown name answers -EINVAL (ctdb_control_get_tunable)."""
        reply = self.call(Control.GET_TUNABLE, C.encodeGetTunable("NoSuchThing"))
        self.assertFails(reply, -errno.EINVAL)

    def test_setTunable(self) -> None:
        """SET_TUNABLE stores the value, case-insensitively."""
        self.assertOk(
            self.call(Control.SET_TUNABLE, C.encodeSetTunable("controltimeout", 7))
        )
        self.assertEqual(self.daemon.tunables.ControlTimeout, 7)
        data = self.call(Control.GET_TUNABLE, C.encodeGetTunable("ControlTimeout")).data
        self.assertEqual(C.decodeU32(data), 7)

    def test_setTunableTellsObservers(self) -> None:
        """SET_TUNABLE tells every ITunableObserver the canonical name."""
        changes: list[tuple[str, int]] = []

        @implementer(ITunableObserver)
        class Observer:
            def tunableChanged(self, name: str, value: int) -> None:
                changes.append((name, value))

        self.daemon.addTunableObserver(Observer())
        self.call(Control.SET_TUNABLE, C.encodeSetTunable("KEEPALIVELIMIT", 9))
        self.assertEqual(changes, [("KeepaliveLimit", 9)])

    def test_setUnknownTunable(self) -> None:
        """An unknown name answers -1."""
        self.assertFails(self.call(Control.SET_TUNABLE, C.encodeSetTunable("Bogus", 1)))

    def test_setObsoleteTunable(self) -> None:
        """
        An obsolete tunable answers 1 (the tool warns) and, as in ctdbd,
        the value is stored anyway.
        """
        reply = self.call(Control.SET_TUNABLE, C.encodeSetTunable("VacuumLimit", 77))
        self.assertEqual(reply.status, 1)
        data = self.call(Control.GET_TUNABLE, C.encodeGetTunable("VacuumLimit")).data
        self.assertEqual(C.decodeU32(data), 77)

    def test_listTunables(self) -> None:
        """
        LIST_TUNABLES answers the non-obsolete names in common/tunable.c's
        order, as one ':'-separated string that starts with ':'.
        """
        data = self.assertOk(self.call(Control.LIST_TUNABLES))
        names = C.decodeVarList(data)
        obsolete = {n for n, _, obs in C.TUNABLES if obs}
        self.assertEqual(names, [n for n in C.TUNABLE_MAP_ORDER if n not in obsolete])
        self.assertEqual(names[0], "SeqnumInterval")
        self.assertEqual(names[-1], "AllowMixedVersions")
        self.assertNotIn("MaxRedirectCount", names)
        self.assertEqual(len(names), 49)  # 62 tunables, 13 obsolete
        (length,) = struct.unpack_from("<I", data)
        self.assertEqual(data[4:5], b":")
        self.assertEqual(len(data), 4 + length)
        self.assertEqual(data[-1:], b"\0")

    def test_getAllTunables(self) -> None:
        """GET_ALL_TUNABLES answers struct ctdb_tunable_list: 62 u32s."""
        self.call(Control.SET_TUNABLE, C.encodeSetTunable("AllowMixedVersions", 1))
        data = self.assertOk(self.call(Control.GET_ALL_TUNABLES))
        self.assertEqual(len(data), 248)
        values = C.Tunables.decodeAll(data)
        self.assertEqual(values["MaxRedirectCount"], 3)
        self.assertEqual(values["DatabaseHashSize"], 100001)
        self.assertEqual(values["AllowMixedVersions"], 1)
        self.assertEqual(struct.unpack_from("<I", data, 2 * 4)[0], 60)  # ControlTimeout


class StatisticsControlTests(ControlTestCase):
    """STATISTICS and STATISTICS_RESET."""

    def test_statistics(self) -> None:
        """STATISTICS answers the 488-byte struct with live counters."""
        self.clock.advance(3)
        data = self.assertOk(self.call(Control.STATISTICS))
        self.assertEqual(len(data), 488)
        stats = C.Statistics.decode(data)
        self.assertEqual(stats.counters["num_clients"], 1)
        self.assertEqual(stats.counters["client.req_control"], 1)
        self.assertEqual(stats.statistics_start_time, 1000)
        self.assertEqual(stats.statistics_current_time, 1003)

    def test_statisticsRecovering(self) -> None:
        """The recovering field follows the recovery mode."""
        self.daemon.recmode = C.CTDB_RECOVERY_ACTIVE
        stats = C.Statistics.decode(self.call(Control.STATISTICS).data)
        self.assertEqual(stats.counters["recovering"], 1)

    def test_reset(self) -> None:
        """STATISTICS_RESET zeroes the counters and restarts the clock."""
        self.call(Control.PING)
        self.clock.advance(20)
        self.assertOk(self.call(Control.STATISTICS_RESET))
        stats = C.Statistics.decode(self.call(Control.STATISTICS).data)
        self.assertEqual(stats.counters["client.req_control"], 1)  # this one
        self.assertEqual(stats.statistics_start_time, 1020)
        self.assertEqual(stats.counters["num_clients"], 1)


class ProcessControlTests(ControlTestCase):
    """PROCESS_EXISTS and CHECK_PID_SRVID (ctdb_daemon.c)."""

    def test_processExists(self) -> None:
        """Only the pid of a connected client that is alive exists."""
        self.assertOk(self.call(Control.PROCESS_EXISTS, C.encodeI32(os.getpid())))
        self.assertFails(self.call(Control.PROCESS_EXISTS, C.encodeI32(os.getppid())))

    def test_processExistsDeadClient(self) -> None:
        """A client whose process is gone does not exist."""
        FakeClient(self.daemon, pid=NO_SUCH_PID)
        self.assertFails(self.call(Control.PROCESS_EXISTS, C.encodeI32(NO_SUCH_PID)))

    def test_processExistsOnInactiveNode(self) -> None:
        """
        On a banned or stopped node the answer is -1 and the client is
        killed (so its records can be recalled).
        """
        victim = FakeClient(self.daemon, pid=os.getpid())
        self.daemon.nodes[1].flags |= C.NODE_FLAGS_BANNED
        other = FakeClient(self.daemon, pid=12345)
        reply = self.call(
            Control.PROCESS_EXISTS, C.encodeI32(os.getpid()), client=other
        )
        self.assertFails(reply)
        self.assertFalse(self.client.connected)
        self.assertTrue(victim.connected)

    def test_checkPidSrvid(self) -> None:
        """
        CHECK_PID_SRVID succeeds only when a client of that pid registered
        that srvid.
        """
        srvid = 0xAE00000000000042
        self.assertOk(self.call(Control.REGISTER_SRVID, srvid=srvid))
        pid = os.getpid()
        self.assertOk(self.call(Control.CHECK_PID_SRVID, C.encodePidSrvid(pid, srvid)))
        self.assertFails(
            self.call(Control.CHECK_PID_SRVID, C.encodePidSrvid(pid, srvid + 1))
        )
        self.assertFails(
            self.call(Control.CHECK_PID_SRVID, C.encodePidSrvid(pid + 1, srvid))
        )


class RegistrationControlTests(ControlTestCase):
    """REGISTER/DEREGISTER_SRVID and TUNNEL_(DE)REGISTER."""

    def test_registerSrvid(self) -> None:
        """REGISTER_SRVID (srvid in the header) registers the client."""
        self.assertOk(self.call(Control.REGISTER_SRVID, srvid=77))
        self.assertEqual(self.daemon.srvids[77], [self.client])

    def test_deregisterSrvid(self) -> None:
        """
        DEREGISTER_SRVID removes the registration; one the client does not
        hold answers ENOENT (srvid_deregister's errno).
        """
        self.call(Control.REGISTER_SRVID, srvid=77)
        self.assertOk(self.call(Control.DEREGISTER_SRVID, srvid=77))
        self.assertNotIn(77, self.daemon.srvids)
        self.assertFails(self.call(Control.DEREGISTER_SRVID, srvid=77), errno.ENOENT)

    def test_registerFromNodeFails(self) -> None:
        """Registrations need a local client; from a node they fail."""
        for opcode in (
            Control.REGISTER_SRVID,
            Control.DEREGISTER_SRVID,
            Control.TUNNEL_REGISTER,
            Control.TUNNEL_DEREGISTER,
        ):
            header = P.Header(P.Operation.REQ_CONTROL, 1, 0, 5)
            req = P.ReqControl(header, opcode, 99)
            result = self.successResultOf(self.daemon.controls.dispatch(req, None))
            self.assertEqual(result[0], -1)

    def test_tunnelRegister(self) -> None:
        """
        TUNNEL_REGISTER takes a free tunnel id; a taken one (even by the
        same client) fails.
        """
        self.assertOk(self.call(Control.TUNNEL_REGISTER, srvid=0x55))
        self.assertIs(self.daemon.tunnels[0x55], self.client)
        self.assertFails(self.call(Control.TUNNEL_REGISTER, srvid=0x55))
        other = FakeClient(self.daemon)
        self.assertFails(self.call(Control.TUNNEL_REGISTER, srvid=0x55, client=other))

    def test_tunnelDeregister(self) -> None:
        """Only the owner can deregister its tunnel id."""
        self.call(Control.TUNNEL_REGISTER, srvid=0x55)
        other = FakeClient(self.daemon)
        self.assertFails(self.call(Control.TUNNEL_DEREGISTER, srvid=0x55, client=other))
        self.assertOk(self.call(Control.TUNNEL_DEREGISTER, srvid=0x55))
        self.assertNotIn(0x55, self.daemon.tunnels)
        self.assertFails(self.call(Control.TUNNEL_DEREGISTER, srvid=0x55))


class EchoDataTests(ControlTestCase):
    """ECHO_DATA (ctdb_control_echo_data)."""

    def _echo(self, timeout: int, payload: bytes) -> bytes:
        return struct.pack("<II", timeout, len(payload)) + payload

    def test_echo(self) -> None:
        """The payload comes back unchanged, on the next reactor turn."""
        reqid = self.client.control(Control.ECHO_DATA, self._echo(0, b"hello"))
        self.assertIsNone(self.client.reply(reqid))
        self.clock.advance(0)
        reply = self.client.reply(reqid)
        assert reply is not None
        self.assertEqual(self.assertOk(reply), self._echo(0, b"hello"))

    def test_timeoutIgnored(self) -> None:
        """
        As in 4.17 (the reply timer's delay is always 0), the timeout field
        does not delay the reply.
        """
        reply = self.call(Control.ECHO_DATA, self._echo(5000, b"x"))
        self.assertEqual(self.assertOk(reply), self._echo(5000, b"x"))

    def test_trailingBytesDropped(self) -> None:
        """Bytes after the declared buffer are not echoed."""
        reply = self.call(Control.ECHO_DATA, self._echo(0, b"ab") + b"junk")
        self.assertEqual(reply.data, self._echo(0, b"ab"))

    def test_short(self) -> None:
        """A buffer shorter than its length field fails."""
        self.assertFails(
            self.call(Control.ECHO_DATA, struct.pack("<II", 0, 10) + b"abc")
        )
        self.assertFails(self.call(Control.ECHO_DATA, b"\0\0\0"))


class BadControlTests(ControlTestCase):
    """Unknown, obsolete and malformed controls get status -1, never raise."""

    def test_unknownOpcode(self) -> None:
        """An opcode nobody knows answers -1."""
        for opcode in (2, 12, 159, 0xFFFFFFFF):
            self.assertFails(self.call(opcode))

    def test_obsoleteOpcodes(self) -> None:
        """Every obsolete control answers -1 (control_not_implemented)."""
        for opcode in sorted(C.OBSOLETE_CONTROLS):
            self.assertFails(self.call(opcode))

    def test_wrongSizes(self) -> None:
        """
        Controls with a fixed payload size (CHECK_CONTROL_DATA_SIZE) answer
        -1 to any other size.
        """
        cases = {
            Control.PROCESS_EXISTS: (b"", b"\0" * 3, b"\0" * 5),
            Control.SET_DEBUG: (b"", b"\0" * 8),
            Control.CHECK_PID_SRVID: (b"\0" * 11, b"\0" * 13),
            Control.PING: (b"x",),
            Control.STATISTICS: (b"x",),
            Control.STATISTICS_RESET: (b"x",),
            Control.GET_RUNSTATE: (b"x",),
            Control.GET_DEBUG: (b"x",),
            Control.GET_NODEMAP: (b"x",),
            Control.GET_NODES_FILE: (b"x",),
            Control.GETVNNMAP: (b"x",),
            Control.GET_RECLOCK_FILE: (b"x",),
            Control.GET_ALL_TUNABLES: (b"x",),
        }
        for opcode, payloads in cases.items():
            for payload in payloads:
                reply = self.call(opcode, payload)
                self.assertEqual(reply.status, -1, f"{opcode.name} {payload!r}")
        self.assertEqual(self.daemon.debugLevel, 3)

    def test_badTunablePayloads(self) -> None:
        """Tunable names longer than the payload, or missing, answer -1."""
        bad = [
            b"",
            struct.pack("<I", 100) + b"ControlTimeout\0",
            b"\1\0",
        ]
        for payload in bad:
            self.assertFails(self.call(Control.GET_TUNABLE, payload))
        badSet = [b"", struct.pack("<II", 1, 100) + b"ControlTimeout\0", b"\0" * 7]
        for payload in badSet:
            self.assertFails(self.call(Control.SET_TUNABLE, payload))
        nonUtf8 = struct.pack("<I", 3) + b"\xff\xfe\0"
        self.assertEqual(self.call(Control.GET_TUNABLE, nonUtf8).status, -1)

    def test_garbageNeverRaises(self) -> None:
        """
        Any control with random-looking payloads answers something, and
        nothing is logged as an unhandled failure.
        """
        payloads = [b"", b"\0", b"\xff" * 7, b"\x01\x00\x00\x00", bytes(range(64))]
        skip = {Control.SHUTDOWN}
        for opcode in Control:
            if opcode in skip:
                continue
            for payload in payloads:
                reply = self.call(opcode, payload)
                self.assertIsInstance(reply.status, int)
                if reply.status != 0:
                    self.assertEqual(reply.data, b"")
        self.assertEqual(self.shutdowns, [])

    def test_handlerBugIsContained(self) -> None:
        """A handler that raises gives status -1 "internal error", logged."""

        def broken(req: P.ReqControl, client: object) -> object:
            raise RuntimeError("bug")

        self.daemon.controls.register(Control.GET_PNN, broken)  # type: ignore[arg-type]
        reply = self.call(Control.GET_PNN)
        self.assertFails(reply)
        self.assertEqual(reply.errmsg, b"internal error")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_failingDeferredIsContained(self) -> None:
        """A handler whose Deferred fails also gives "internal error"."""
        from twisted.internet import defer

        self.daemon.controls.register(
            Control.GET_PNN,
            lambda req, client: defer.fail(RuntimeError("later")),
        )
        reply = self.call(Control.GET_PNN)
        self.assertEqual((reply.status, reply.errmsg), (-1, b"internal error"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
