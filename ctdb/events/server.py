# -*- test-case-name: tests.events.test_server -*-
"""
The event protocol served on a UNIX socket (``run/eventd.socket``), as
Samba 4.17's ctdb-eventd serves it (ctdb/event/event_daemon.c,
event_request.c; the framing of ctdb/common/comm.c): so that Samba's own
``ctdb event run|status`` and ``ctdb scriptstatus`` (which run
``ctdb-event``) work against a txctdb node.

A packet is framed by its header's length (a u32 that counts itself).
Each request is answered when its command is done, in the order they end;
requests of one connection run side by side.  A packet that does not
decode is logged and the connection is closed, as 4.17 closes it; so is a
length below the header's or above L{MAX_PACKET}.  A command that fails
unexpectedly is answered with EIO (event_request.c).
"""

from __future__ import annotations

import errno
import os
import socket

from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ctdb.errors import ConfigError, MalformedPacket
from ctdb.events.runner import EventContext
from ctdb.protocols.event import (
    EventReply,
    EventRequest,
    RequestRun,
    RequestStatus,
    takePacket,
)

#: the largest request accepted (4.17 has no bound; requests are small)
MAX_PACKET = 1 << 20


def handleRequest(
    context: EventContext, request: EventRequest
) -> defer.Deferred[EventReply]:
    """C{event_cmd_dispatch}: the reply to C{request}."""
    data = request.data
    command = request.command
    if isinstance(data, RequestRun):
        return context.run(data).addCallback(
            lambda result: EventReply(request.reqid, command, result)
        )
    if isinstance(data, RequestStatus):
        result, status = context.status(data)
        return defer.succeed(EventReply(request.reqid, command, result, status))
    return defer.succeed(EventReply(request.reqid, command, context.script(data)))


class EventServerProtocol(Protocol):
    """One client of the event socket."""

    log = Logger()

    def __init__(self, context: EventContext) -> None:
        self.context = context
        self._buffer = bytearray()
        self._closed = False

    def dataReceived(self, data: bytes) -> None:
        """C{sock_client_read_handler} and C{event_pkt_send}: cut each
        whole packet off what came (L{takePacket}), decode it and dispatch
        it; a bad length or a packet that does not decode closes the
        connection."""
        self._buffer += data
        while not self._closed:
            try:
                packet = takePacket(self._buffer, MAX_PACKET)
            except MalformedPacket as e:
                self.log.error("Invalid packet on the event socket: {err}", err=str(e))
                self._drop()
                return
            if packet is None:
                return
            try:
                request, _ = EventRequest.decode(packet)
            except MalformedPacket as e:
                self.log.error(
                    "Invalid packet received, buflen={buflen}: {err}",
                    buflen=len(packet),
                    err=str(e),
                )
                self._drop()
                return
            self._dispatch(request)

    def _dispatch(self, request: EventRequest) -> None:
        """C{event_request_send}: run the command; a command that fails
        unexpectedly is answered with EIO, as C{event_request_done}."""
        try:
            d = handleRequest(self.context, request)
        except Exception:  # noqa: BLE001 - answered with EIO, as event_request.c
            d = defer.fail(Failure())

        def failed(f: Failure) -> EventReply:
            self.log.failure(
                "Command {command} failed", f, command=request.command.name
            )
            return EventReply(request.reqid, request.command, errno.EIO)

        d.addErrback(failed).addCallback(self._send)

    def _send(self, reply: EventReply) -> None:
        """C{event_client_request_done}: write the reply, unless the client
        has gone (C{eventd_client_exists})."""
        if self._closed or self.transport is None:
            return  # the client has gone: nobody to answer
        self.transport.write(reply.encode())

    def _drop(self) -> None:
        """C{sock_client_read_done}: a request that could not be read
        frees the client; nothing more is read or answered."""
        self._closed = True
        self._buffer.clear()
        if self.transport is not None:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure | None = None) -> None:
        """C{event_client_disconnect}: forget the client; replies of its
        requests still running are dropped."""
        self._closed = True
        factory = getattr(self, "factory", None)
        if isinstance(factory, EventServerFactory):
            factory.clients.discard(self)


class EventServerFactory(Factory):
    """The event socket's clients, all answered from one L{EventContext}."""

    protocol = EventServerProtocol

    def __init__(self, context: EventContext) -> None:
        self.context = context
        self.clients: set[EventServerProtocol] = set()

    def buildProtocol(self, addr: object) -> EventServerProtocol:
        """C{event_client_connect}: a new client, remembered."""
        p = EventServerProtocol(self.context)
        p.factory = self
        self.clients.add(p)
        return p

    def disconnectAll(self) -> None:
        """Close every client's connection (the daemon is stopping)."""
        for p in list(self.clients):
            if p.transport is not None:
                p.transport.loseConnection()
        self.clients.clear()


def clearStaleSocket(path: str) -> None:
    """Remove a socket nobody serves any more (``sock_clean``), creating
    its directory if need be.

    @raise ConfigError: a running daemon serves it.
    """
    if not os.path.lexists(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except OSError:
            os.unlink(path)
            return
    raise ConfigError(f"socket {path} is in use by a running daemon")
