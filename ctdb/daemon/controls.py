# -*- test-case-name: tests.daemon.test_controls -*-
"""
The control handler table (ctdb/server/ctdb_control.c
ctdb_control_dispatch).  Each handler takes the request and the local client
that sent it (None when it came from a node) and returns a
L{ControlResult} or a Deferred of one.  Payload errors become status -1
replies; nothing a peer sends can raise out of L{ControlHandlers.dispatch}.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Union

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from ctdb.daemon.statistics import memoryUsed
from ctdb.errors import MalformedPacket
from ctdb.interfaces import IClientConnection
from ctdb.nodes import readNodesFile
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control

if TYPE_CHECKING:
    from ctdb.daemon.core import ControlResult, Daemon

Result = Union["ControlResult", defer.Deferred["ControlResult"]]
Handler = Callable[[P.ReqControl, "IClientConnection | None"], Result]

OK: ControlResult = (0, b"", b"")
FAIL: ControlResult = (-1, b"", b"")


def _fail(msg: str) -> ControlResult:
    return (-1, b"", msg.encode())


def _ok(data: bytes = b"") -> ControlResult:
    return (0, data, b"")


def _exactSize(req: P.ReqControl, size: int) -> None:
    if len(req.data) != size:
        raise MalformedPacket(
            f"{C.controlName(req.opcode)}: data size {len(req.data)} != {size}"
        )


class ControlHandlers:
    """Every control the daemon answers, by opcode."""

    log = Logger()

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.table: dict[int, Handler] = {}
        for name in dir(self):
            if name.startswith("control_"):
                opcode = Control[name[len("control_") :]]
                self.table[opcode] = getattr(self, name)

    def register(self, opcode: int, handler: Handler) -> None:
        """Let another subsystem (databases, recovery) own a control."""
        self.table[opcode] = handler

    def dispatch(
        self, req: P.ReqControl, client: IClientConnection | None
    ) -> defer.Deferred[ControlResult]:
        """Run a control; always a Deferred (see L{dispatchFast})."""
        result = self.dispatchFast(req, client)
        if isinstance(result, tuple):
            return defer.succeed(result)
        return result

    def dispatchFast(
        self, req: P.ReqControl, client: IClientConnection | None
    ) -> Result:
        """
        Run a control: the result itself for controls answered at once (most
        of them: no Deferred on the hot path), or a Deferred of it.  Never
        raises.
        """
        opcode = req.opcode
        handler = self.table.get(opcode)
        if handler is None:
            if opcode in C.OBSOLETE_CONTROLS:
                self.log.error("Control {name} is obsolete", name=C.controlName(opcode))
            else:
                self.log.error("Unknown control {opcode}", opcode=opcode)
            # ctdbd answers -1 with no error text
            return FAIL
        try:
            result = handler(req, client)
        except (MalformedPacket, ValueError, KeyError) as e:
            self.log.warn(
                "bad {name} control: {err}", name=C.controlName(opcode), err=str(e)
            )
            return _fail(str(e))
        except Exception:  # noqa: BLE001 - any handler bug becomes a failed control
            self.log.failure("control {name} failed", name=C.controlName(opcode))
            return _fail("internal error")
        if isinstance(result, tuple):
            return result

        def trap(f: Failure) -> ControlResult:
            self.log.failure("control {name} failed", f, name=C.controlName(opcode))
            return _fail("internal error")

        return result.addErrback(trap)

    # -- node and daemon information -------------------------------------------

    def control_PROCESS_EXISTS(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        _exactSize(req, 4)
        pid = C.decodeI32(req.data)
        d = self.daemon
        owner = next((c for c in d.clients.values() if c.pid == pid), None)
        if owner is None:
            return FAIL
        if d.nodes[d.pnn].flags & C.NODE_FLAGS_INACTIVE:
            # ctdb_control_process_exists: on a banned/stopped node the
            # client is killed so that its records can be recalled.
            self.log.info(
                "Killing client with pid:{pid} on banned/stopped node", pid=pid
            )
            transport = getattr(owner, "transport", None)
            if transport is not None:
                transport.loseConnection()
            return FAIL
        try:
            os.kill(pid, 0)
        except OSError:
            return FAIL
        return OK

    def control_CHECK_PID_SRVID(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        _exactSize(req, 12)
        pid, srvid = C.decodePidSrvid(req.data)
        for c in self.daemon.srvids.get(srvid, ()):
            if c.pid == pid:
                return OK
        return FAIL

    def control_STATISTICS(self, req: P.ReqControl, client: object) -> ControlResult:
        _exactSize(req, 0)
        d = self.daemon
        d.stats.statistics_current_time = d.reactor.seconds()
        d.stats.counters["num_clients"] = len(d.clients)
        d.stats.counters["recovering"] = int(d.recmode != C.CTDB_RECOVERY_NORMAL)
        d.stats.calls["memory_used"] = memoryUsed()
        return _ok(d.stats.encode())

    def control_GET_STAT_HISTORY(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        """ctdb_control_get_stat_history: the rolling history."""
        _exactSize(req, 0)
        return _ok(self.daemon.statsKeeper.encodeHistory())

    def control_STATISTICS_RESET(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        _exactSize(req, 0)
        d = self.daemon
        d.stats = C.Statistics()
        d.stats.statistics_start_time = d.reactor.seconds()
        d.stats.counters["num_clients"] = len(d.clients)
        for source in d.statisticsSources:
            source.statisticsReset()
        return OK

    def control_PING(self, req: P.ReqControl, client: object) -> ControlResult:
        _exactSize(req, 0)
        return (len(self.daemon.clients), b"", b"")

    def control_GET_PNN(self, req: P.ReqControl, client: object) -> ControlResult:
        return (self.daemon.pnn, b"", b"")

    def control_GET_PID(self, req: P.ReqControl, client: object) -> ControlResult:
        return (os.getpid(), b"", b"")

    def control_GET_RUNSTATE(self, req: P.ReqControl, client: object) -> ControlResult:
        _exactSize(req, 0)
        return _ok(C.encodeU32(self.daemon.runstate))

    def control_UPTIME(self, req: P.ReqControl, client: object) -> ControlResult:
        d = self.daemon
        return _ok(
            C.Uptime(
                d.reactor.seconds(),
                d.startTime,
                d.lastRecoveryStarted,
                d.lastRecoveryFinished,
            ).encode()
        )

    def control_GET_DEBUG(self, req: P.ReqControl, client: object) -> ControlResult:
        _exactSize(req, 0)
        return _ok(C.encodeI32(self.daemon.debugLevel))

    def control_SET_DEBUG(self, req: P.ReqControl, client: object) -> ControlResult:
        _exactSize(req, 4)
        level = C.decodeI32(req.data)
        self.daemon.debugLevel = level
        for observer in self.daemon.logLevelObservers:
            observer.logLevelChanged(level)
        return OK

    def control_GET_CAPABILITIES(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        return _ok(C.encodeU32(self.daemon.capabilities))

    def control_GET_NODEMAP(self, req: P.ReqControl, client: object) -> ControlResult:
        _exactSize(req, 0)
        return _ok(C.encodeNodeMap(self.daemon.nodeMap()))

    def control_GET_NODES_FILE(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        _exactSize(req, 0)

        path = self.daemon.config.nodesFile
        if not path:
            nodemap = self.daemon.config.nodeMap
        else:
            nodemap = readNodesFile(path)
        flags = C.NODE_FLAGS_DELETED
        return _ok(
            C.encodeNodeMap(
                [
                    C.NodeAndFlags(n.pnn, flags if n.deleted else 0, n.address)
                    for n in nodemap.nodes
                ]
            )
        )

    def control_GETVNNMAP(self, req: P.ReqControl, client: object) -> ControlResult:
        _exactSize(req, 0)
        return _ok(self.daemon.vnnMap.encode())

    def control_GET_RECMODE(self, req: P.ReqControl, client: object) -> ControlResult:
        return (self.daemon.recmode, b"", b"")

    def control_GET_RECLOCK_FILE(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        _exactSize(req, 0)
        lock = self.daemon.config.recoveryLock
        return _ok(C.encodeString(lock) if lock else b"")

    def control_SHUTDOWN(self, req: P.ReqControl, client: object) -> Result:
        # ctdbd exits without replying; the client sees its connection close.
        self.daemon.shutdown()
        return defer.Deferred()

    def control_RECD_RECLOCK_LATENCY(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        # A 4.17 recovery daemon reports its cluster lock latency (a double).
        _exactSize(req, 8)
        (latency,) = struct.unpack("<d", req.data)
        self.daemon.statsKeeper.reclockLatency("recd", latency)
        return OK

    # -- tunables --------------------------------------------------------------

    def control_GET_TUNABLE(self, req: P.ReqControl, client: object) -> ControlResult:
        name = C.decodeGetTunable(req.data)
        try:
            return _ok(C.encodeU32(self.daemon.tunables.get(name)))
        except KeyError:
            # ctdb_control_get_tunable answers an unknown name with -EINVAL.
            return (-errno.EINVAL, b"", b"")

    def control_SET_TUNABLE(self, req: P.ReqControl, client: object) -> ControlResult:
        name, value = C.decodeSetTunable(req.data)
        tunables = self.daemon.tunables
        canon = tunables.canonical(name)
        if canon is None:
            return FAIL
        # ctdb_tunable_set_value stores even an obsolete tunable's value;
        # the control then answers 1 so that the tool can warn.
        tunables.set(canon, value)
        if tunables.isObsolete(canon):
            self.log.warn('Setting obsolete tunable "{name}"', name=canon)
            return (1, b"", b"")
        for observer in self.daemon.tunableObservers:
            observer.tunableChanged(canon, value)
        return OK

    def control_LIST_TUNABLES(self, req: P.ReqControl, client: object) -> ControlResult:
        return _ok(C.encodeVarList(self.daemon.tunables.names()))

    def control_GET_ALL_TUNABLES(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        _exactSize(req, 0)
        return _ok(self.daemon.tunables.encodeAll())

    # -- messages and tunnels ----------------------------------------------------

    def control_REGISTER_SRVID(
        self, req: P.ReqControl, client: IClientConnection | None
    ) -> ControlResult:
        if client is None:
            return _fail("srvid registration from a remote node")
        self.daemon.registerSrvid(req.srvid, client)
        return OK

    def control_DEREGISTER_SRVID(
        self, req: P.ReqControl, client: IClientConnection | None
    ) -> ControlResult:
        if client is None:
            return FAIL
        if not self.daemon.deregisterSrvid(req.srvid, client):
            # daemon_deregister_message_handler returns srvid_deregister()'s
            # errno as the status.
            return (errno.ENOENT, b"", b"")
        return OK

    def control_TUNNEL_REGISTER(
        self, req: P.ReqControl, client: IClientConnection | None
    ) -> ControlResult:
        if client is None:
            return FAIL
        if req.srvid in self.daemon.tunnels:
            # "Tunnel id ... already registered", whoever holds it.
            return FAIL
        self.daemon.tunnels[req.srvid] = client
        return OK

    def control_TUNNEL_DEREGISTER(
        self, req: P.ReqControl, client: IClientConnection | None
    ) -> ControlResult:
        if self.daemon.tunnels.get(req.srvid) is not client:
            return FAIL
        del self.daemon.tunnels[req.srvid]
        return OK

    def control_ECHO_DATA(self, req: P.ReqControl, client: object) -> Result:
        if len(req.data) < 8:
            raise MalformedPacket("ECHO_DATA: short payload")
        timeout = C.decodeU32(req.data)
        length = C.decodeU32(req.data[4:])
        if len(req.data) < 8 + length:
            raise MalformedPacket("ECHO_DATA: short buffer")
        # 4.17 parses the timeout but replies from a zero timer whatever it
        # says (ctdb_control_echo_data: delay = 0): on the next loop turn.
        del timeout
        result = _ok(req.data[: 8 + length])
        d: defer.Deferred[ControlResult] = defer.Deferred()
        self.daemon.reactor.callLater(0, d.callback, result)
        return d
