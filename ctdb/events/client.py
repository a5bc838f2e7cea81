# -*- test-case-name: tests.events.test_server -*-
"""
A Python client of the event protocol, on the reactor: what Samba's
``ctdb-event`` tool asks an event daemon (ours, or Samba's ctdb-eventd),
plus the C{script} command the tool leaves to the file system::

    client = await connectEventClient(reactor, "/run/ctdb/eventd.socket")
    result = await client.run("legacy", "monitor", timeout=30)
    result, status = await client.status("legacy", "monitor")
    await client.disableScript("legacy", "10.interface")
    client.close()

C{run} fires with the daemon's result: 0, ETIMEDOUT, ENOEXEC (a script
failed), ECANCELED, ENOENT (no such component) or another errno.
C{status} fires with (0, the L{ReplyStatus} of the event's last run), or
(ENOENT / EINVAL: never run, None).  L{formatStatus} prints a status as
``ctdb event status`` does.  A request outstanding when the connection
goes fails with L{ConnectionClosed}.
"""

from __future__ import annotations

import errno
import itertools
import os
import time

from twisted.internet import defer
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ctdb.errors import ConnectionClosed, MalformedPacket
from ctdb.interfaces import ICTDBReactor
from ctdb.protocols.event import (
    EventReply,
    EventRequest,
    EventScript,
    ReplyStatus,
    RequestData,
    RequestRun,
    RequestScript,
    RequestStatus,
    ScriptAction,
    takePacket,
)

#: the largest reply accepted (statuses carry scripts' output)
MAX_REPLY = 64 << 20


class EventClientProtocol(Protocol):
    """The client's end of the event socket: requests out, replies matched
    to them by reqid."""

    log = Logger()

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pending: dict[int, defer.Deferred[EventReply]] = {}
        self._reqids = itertools.count(1)
        self.connected = False

    def connectionMade(self) -> None:
        self.connected = True

    def request(self, data: RequestData) -> defer.Deferred[EventReply]:
        """Send a request; fires with its reply."""
        if not self.connected or self.transport is None:
            return defer.fail(ConnectionClosed("not connected to the event daemon"))
        reqid = next(self._reqids) & 0xFFFFFFFF
        d: defer.Deferred[EventReply] = defer.Deferred()
        self._pending[reqid] = d
        self.transport.write(EventRequest(reqid, data).encode())
        return d

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while True:
            try:
                packet = takePacket(self._buffer, MAX_REPLY)
            except MalformedPacket as e:
                self.log.error("bad reply from the event daemon: {err}", err=str(e))
                self._buffer.clear()
                if self.transport is not None:
                    self.transport.loseConnection()
                return
            if packet is None:
                return
            try:
                reply, _ = EventReply.decode(packet)
            except MalformedPacket as e:
                # ctdbd logs and drops such a reply
                self.log.error("Invalid packet received: {err}", err=str(e))
                continue
            d = self._pending.pop(reply.reqid, None)
            if d is not None:
                d.callback(reply)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.connected = False
        pending, self._pending = self._pending, {}
        for d in pending.values():
            d.errback(ConnectionClosed("event daemon connection lost"))


class EventClient:
    """The operations of the event protocol over one connection."""

    def __init__(self, protocol: EventClientProtocol) -> None:
        self.protocol = protocol

    def run(
        self,
        component: str,
        event: str,
        args: str | None = None,
        timeout: int = 30,
        flags: int = 0,
    ) -> defer.Deferred[int]:
        """Run C{event} of C{component}; fires with the daemon's result."""
        request = RequestRun(component, event, args, max(timeout, 0), flags)
        return self.protocol.request(request).addCallback(lambda r: r.result)

    def status(
        self, component: str, event: str
    ) -> defer.Deferred[tuple[int, ReplyStatus | None]]:
        """The last run of C{event}: (0, status) or (an errno, None)."""
        d = self.protocol.request(RequestStatus(component, event))
        return d.addCallback(lambda r: (r.result, r.status if r.result == 0 else None))

    def enableScript(self, component: str, script: str) -> defer.Deferred[int]:
        """Make C{script} of C{component} executable; 0 or an errno."""
        request = RequestScript(component, script, ScriptAction.ENABLE)
        return self.protocol.request(request).addCallback(lambda r: r.result)

    def disableScript(self, component: str, script: str) -> defer.Deferred[int]:
        """Clear C{script}'s execute bits; 0 or an errno."""
        request = RequestScript(component, script, ScriptAction.DISABLE)
        return self.protocol.request(request).addCallback(lambda r: r.result)

    def close(self) -> None:
        if self.protocol.transport is not None:
            self.protocol.transport.loseConnection()


def connectEventClient(reactor: ICTDBReactor, path: str) -> defer.Deferred[EventClient]:
    """Connect to the event daemon serving C{path}."""
    endpoint = UNIXClientEndpoint(reactor, path)
    d = connectProtocol(endpoint, EventClientProtocol())
    return d.addCallback(EventClient)


def _ctime(seconds: int) -> str:
    return time.ctime(seconds) + "\n"


def formatScriptStatus(script: EventScript) -> str:
    """event_tool.c's C{print_status_one}: one script's line (and its
    output, if it did not succeed)."""
    name = script.name or ""
    took = (script.end[0] - script.begin[0]) + (script.end[1] - script.begin[1]) * 1e-6
    if script.result == -errno.ETIMEDOUT:
        text = f"{name:<20} {'TIMEDOUT':<10} {_ctime(script.begin[0])}"
    elif script.result == -errno.ENOEXEC:
        text = f"{name:<20} {'DISABLED':<10}\n"
    elif script.result < 0:
        text = f"{name:<20} {'CANNOT RUN':<10} ({os.strerror(-script.result)})\n"
    elif script.result == 0:
        text = f"{name:<20} {'OK':<10} {took:.3f} {_ctime(script.begin[0])}"
    else:
        text = f"{name:<20} {'ERROR':<10} {took:.3f} {_ctime(script.begin[0])}"
    if script.result not in (0, -errno.ENOEXEC):
        text += f"  OUTPUT: {script.output or ''}\n"
    return text


def formatStatus(
    component: str, event: str, result: int, status: ReplyStatus | None
) -> str:
    """event_tool.c's C{print_status}: what ``ctdb event status COMPONENT
    EVENT`` prints for a status reply."""
    if result != 0:
        if result == errno.ENOENT:
            return f"Event dir for {component} does not exist\n"
        if result == errno.EINVAL:
            return f"Event {event} has never run in {component}\n"
        return f"Unknown error ({result}) for event {event} in {component}\n"
    if status is None:
        return ""
    return "".join(formatScriptStatus(s) for s in status.scripts)
