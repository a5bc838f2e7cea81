# -*- test-case-name: tests.test_eventd -*-
"""
The ctdbd side of Samba's event daemon, as ctdb/server/eventscript.c has it
in 4.17: ctdbd starts C{$CTDB_EVENTD} (Samba's ``ctdb-eventd``) as
``ctdb-eventd -P <ctdbd pid> -S <fd>``, waits for it to write a 0 int on
that pipe, connects to ``run/eventd.socket`` and asks it to run events of
the C{legacy} component (ctdb/event/event_protocol.c).  ``ctdb event ...``
and ``ctdb scriptstatus`` talk to ctdb-eventd directly, through
``ctdb-event``.

Which events run when is L{ctdb.events.lifecycle}'s and
L{ctdb.events.health}'s business; this module only runs them.
"""

from __future__ import annotations

import itertools
import os
import select
import signal
import struct
import subprocess
import time
import typing
from dataclasses import dataclass

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.logger import Logger
from zope.interface import implementer

from ctdb.errors import EventDaemonError, MalformedPacket
from ctdb.interfaces import ICTDBReactor, IEventRunner
from ctdb.protocols.tunables import Tunables

CTDB_EVENT_PROTOCOL_VERSION = 1
CTDB_EVENT_CMD_RUN = 1
CTDB_EVENT_CMD_STATUS = 2
CTDB_EVENT_CMD_SCRIPT = 3
CTDB_EVENT_RUN_ALL = 1

_HEADER = struct.Struct("<III")  # length, version, reqid
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")


def _stringn(value: str | None) -> bytes:
    """ctdb_stringn_push: u32 length (with the NUL; 0 for NULL), bytes, NUL."""
    if value is None:
        return _U32.pack(0)
    raw = value.encode() + b"\0"
    return _U32.pack(len(raw)) + raw


def encodeRunRequest(
    reqid: int,
    component: str,
    event: str,
    args: str | None,
    timeout: int,
    flags: int = 0,
) -> bytes:
    """A CTDB_EVENT_CMD_RUN request with its header."""
    body = (
        _U32.pack(CTDB_EVENT_CMD_RUN)
        + _stringn(component)
        + _stringn(event)
        + _stringn(args)
        + _U32.pack(timeout)
        + _U32.pack(flags)
    )
    return (
        _HEADER.pack(_HEADER.size + len(body), CTDB_EVENT_PROTOCOL_VERSION, reqid)
        + body
    )


@dataclass(frozen=True, slots=True)
class EventReply:
    reqid: int
    cmd: int
    result: int
    data: bytes  # the command's reply data (status replies), undecoded


def decodeReply(buf: bytes) -> EventReply:
    """A reply packet: header, cmd, int32 result, then data if result is 0."""
    if len(buf) < _HEADER.size + 8:
        raise MalformedPacket(
            f"event reply: need {_HEADER.size + 8} bytes, have {len(buf)}"
        )
    length, _version, reqid = _HEADER.unpack_from(buf)
    if length != len(buf):
        raise MalformedPacket(f"event reply: length {length} != {len(buf)}")
    # ctdb-eventd leaves the version of its replies 0; nobody checks it.
    (cmd,) = _U32.unpack_from(buf, _HEADER.size)
    (result,) = _I32.unpack_from(buf, _HEADER.size + 4)
    return EventReply(reqid, cmd, result, bytes(buf[_HEADER.size + 8 :]))


class EventClientProtocol(Protocol):
    """comm.c framing: a u32 length that counts itself, then the packet."""

    log = Logger()
    owner: EventDaemon | None = None

    def __init__(self) -> None:
        self._buffer = b""

    def connectionMade(self) -> None:
        if self.owner is not None:
            self.owner.connected(self)

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 4:
            (length,) = _U32.unpack_from(self._buffer)
            if length < _HEADER.size or length > 1 << 24:
                self.log.error("bad packet length {length} from eventd", length=length)
                self.transport.loseConnection()  # type: ignore[union-attr]
                return
            if len(self._buffer) < length:
                return
            packet, self._buffer = self._buffer[:length], self._buffer[length:]
            try:
                reply = decodeReply(packet)
            except MalformedPacket as e:
                self.log.error("malformed reply from eventd: {err}", err=str(e))
                continue
            if self.owner is not None:
                self.owner.replyReceived(reply)

    def connectionLost(self, reason: object = None) -> None:
        if self.owner is not None:
            self.owner.disconnected(self)


class _Factory(ClientFactory):
    def __init__(self, owner: EventDaemon) -> None:
        self.owner = owner

    def buildProtocol(self, addr: object) -> EventClientProtocol:
        p = EventClientProtocol()
        p.owner = self.owner
        return p

    def clientConnectionFailed(self, connector: object, reason: object) -> None:
        self.owner.connectFailed(reason)


def spawnEventDaemon(
    path: str, ctdbdPid: int, timeout: float = 10.0
) -> subprocess.Popen[bytes]:
    """
    ctdb_start_eventd(): run C{path -P pid -S fd} and wait until it writes
    its startup status (a native int, 0 = ready) on the pipe.  Blocking, as
    in ctdbd, and done before the reactor runs.
    """
    rfd, wfd = os.pipe()
    try:
        proc = subprocess.Popen(
            [path, "-P", str(ctdbdPid), "-S", str(wfd)],
            pass_fds=(wfd,),
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
    except OSError as e:
        os.close(rfd)
        os.close(wfd)
        raise EventDaemonError(
            f"Failed to start event daemon {path}: {e.strerror}"
        ) from None
    os.close(wfd)
    try:
        deadline = time.monotonic() + timeout
        data = b""
        while len(data) < 4:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([rfd], [], [], left)
            if not ready:
                break
            chunk = os.read(rfd, 4 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(rfd)
    if len(data) == 4 and struct.unpack("=i", data)[0] == 0:
        return proc
    stopProcess(proc)
    raise EventDaemonError("Failed to initialize event daemon")


def stopProcess(proc: subprocess.Popen[bytes], wait: float = 2.0) -> None:
    """SIGTERM (then SIGKILL) the process we started, and reap it."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(wait)
    except ProcessLookupError:
        pass


class NodeState(typing.Protocol):
    """What the event daemon reads of its node (a L{ctdb.daemon.core.Daemon})."""

    tunables: Tunables
    recmode: int


@implementer(IEventRunner)
class EventDaemon(Service):
    """
    A running ctdb-eventd and our connection to it.  C{daemon} is the
    L{ctdb.daemon.core.Daemon} whose EventScriptTimeout bounds each event.
    """

    log = Logger()
    name = "eventd"  # type: ignore[assignment]

    def __init__(
        self,
        *,
        reactor: ICTDBReactor,
        daemon: NodeState,
        process: subprocess.Popen[bytes] | None = None,
        socketPath: str,
        eventdPath: str | None = None,
    ) -> None:
        self.reactor = reactor
        self.daemon = daemon
        #: the running ctdb-eventd; started from C{eventdPath} at
        #: startService when not given
        self.process = process
        self.eventdPath = eventdPath
        self.socketPath = socketPath
        self._reqids = itertools.count(1)
        self._pending: dict[int, defer.Deferred[int]] = {}
        self._queue: list[bytes] = []
        self._protocol: EventClientProtocol | None = None
        self._connecting = False

    # -- connection ----------------------------------------------------------

    def _connect(self) -> None:
        if self._connecting or self._protocol is not None or not self.running:
            return
        self._connecting = True
        self.reactor.connectUNIX(self.socketPath, _Factory(self), timeout=5)

    def connected(self, protocol: EventClientProtocol) -> None:
        self._connecting = False
        self._protocol = protocol
        queued, self._queue = self._queue, []
        for packet in queued:
            protocol.transport.write(packet)  # type: ignore[union-attr]

    def connectFailed(self, reason: object) -> None:
        self._connecting = False
        self.log.error("Failed to connect to event daemon: {reason}", reason=reason)
        self._failAll(EventDaemonError("event daemon connection failed"))

    def disconnected(self, protocol: EventClientProtocol) -> None:
        if self._protocol is protocol:
            self._protocol = None
        self._failAll(EventDaemonError("event daemon connection lost"))

    def _failAll(self, err: Exception) -> None:
        pending, self._pending = self._pending, {}
        self._queue = []
        for d in pending.values():
            d.errback(err)

    def replyReceived(self, reply: EventReply) -> None:
        d = self._pending.pop(reply.reqid, None)
        if d is not None:
            d.callback(reply.result)

    # -- events --------------------------------------------------------------

    def runEvent(self, event: str, args: str | None = None) -> defer.Deferred[int]:
        """Run C{event} of the legacy component; fires with the result
        (0, or an errno such as ETIMEDOUT)."""
        timeout = int(self.daemon.tunables.EventScriptTimeout)
        reqid = next(self._reqids)
        packet = encodeRunRequest(reqid, "legacy", event, args, timeout)
        d: defer.Deferred[int] = defer.Deferred()
        self._pending[reqid] = d
        if self._protocol is not None:
            self._protocol.transport.write(packet)  # type: ignore[union-attr]
        else:
            self._queue.append(packet)
            self._connect()
        self.log.info(
            "Running event {event} with arguments {args}", event=event, args=args
        )
        return d

    # -- service -------------------------------------------------------------

    def startService(self) -> None:
        if self.process is None and self.eventdPath is not None:
            # ctdb_start_eventd: blocking, before the node serves anything;
            # a failure fails the node's start (EventDaemonError)
            self.process = spawnEventDaemon(self.eventdPath, os.getpid())
        super().startService()
        self._connect()

    def stopService(self) -> None:
        super().stopService()
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.owner = None
            self._protocol.transport.loseConnection()
            self._protocol = None
        self._failAll(EventDaemonError("stopping"))
        if self.process is not None:
            stopProcess(self.process)
