# -*- test-case-name: tests.test_eventd -*-
"""
Tests for L{ctdb.eventd}: the event protocol codec (ctdb/event/
event_protocol.c) and the client's request/reply matching, on Twisted fakes.
"""

from __future__ import annotations

import struct

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport

from ctdb.errors import MalformedPacket
from ctdb.eventd import (
    EventClientProtocol,
    EventDaemon,
    decodeReply,
    encodeRunRequest,
)
from ctdb.protocols.controls import Tunables


def testRunRequestGolden() -> None:
    """A run request: header (length, version 1, reqid), cmd 1, three
    stringn (u32 length with the NUL; 0 for NULL), timeout, flags."""
    packet = encodeRunRequest(7, "legacy", "monitor", None, 30)
    assert packet == (
        struct.pack("<III", len(packet), 1, 7)
        + struct.pack("<I", 1)
        + struct.pack("<I", 7)
        + b"legacy\0"
        + struct.pack("<I", 8)
        + b"monitor\0"
        + struct.pack("<I", 0)
        + struct.pack("<II", 30, 0)
    )


def testDecodeReply() -> None:
    """Replies carry version 0 from ctdb-eventd; a short or inconsistent
    packet is malformed."""
    raw = struct.pack("<IIIIi", 20, 0, 9, 1, 62)
    reply = decodeReply(raw)
    assert (reply.reqid, reply.cmd, reply.result) == (9, 1, 62)
    with pytest.raises(MalformedPacket):
        decodeReply(raw[:16])
    with pytest.raises(MalformedPacket):
        decodeReply(struct.pack("<IIIIi", 24, 0, 9, 1, 0))


class _Daemon:
    def __init__(self) -> None:
        self.tunables = Tunables()
        self.tunables.set("EventScriptTimeout", 17)
        self.recmode = 0


def testRequestsQueuedUntilConnectedAndMatched() -> None:
    """runEvent before the connection is up queues the request and
    connects; once connected the request goes out with the daemon's
    EventScriptTimeout, and the reply with its reqid fires the Deferred."""
    reactor = MemoryReactorClock()
    eventd = EventDaemon(
        reactor=reactor,  # type: ignore[arg-type]  # no IReactorProcess
        daemon=_Daemon(),
        process=None,
        socketPath="/x/eventd.socket",
    )
    eventd.running = True
    d = eventd.runEvent("monitor")
    assert reactor.unixClients[0][0] == "/x/eventd.socket"
    proto = EventClientProtocol()
    proto.owner = eventd
    transport = StringTransport()
    proto.makeConnection(transport)
    sent = transport.value()
    assert sent == encodeRunRequest(1, "legacy", "monitor", None, 17)
    results: list[int] = []
    d.addCallback(results.append)
    proto.dataReceived(struct.pack("<IIIIi", 20, 0, 1, 1, 0)[:10])
    assert results == []
    proto.dataReceived(struct.pack("<IIIIi", 20, 0, 1, 1, 0)[10:])
    assert results == [0]


def testConnectionLossFailsPending() -> None:
    """Requests outstanding when ctdb-eventd goes away fail."""
    reactor = MemoryReactorClock()
    eventd = EventDaemon(
        reactor=reactor,  # type: ignore[arg-type]  # no IReactorProcess
        daemon=_Daemon(),
        process=None,
        socketPath="/x/s",
    )
    eventd.running = True
    proto = EventClientProtocol()
    proto.owner = eventd
    proto.makeConnection(StringTransport())
    d = eventd.runEvent("startup")
    failures: list[object] = []
    d.addErrback(failures.append)
    proto.connectionLost(None)
    assert len(failures) == 1
