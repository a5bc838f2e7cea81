# -*- test-case-name: tests.test_eventd -*-
"""
Tests for L{ctdb.eventd}: the event protocol codec (ctdb/event/
event_protocol.c) and the client's request/reply matching, on Twisted fakes.
"""

from __future__ import annotations

import struct

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from ctdb.errors import MalformedPacket
from ctdb.eventd import (
    EventClientProtocol,
    EventDaemon,
    decodeReply,
    encodeRunRequest,
)
from ctdb.protocols.controls import Tunables


class _Daemon:
    def __init__(self) -> None:
        self.tunables = Tunables()
        self.tunables.set("EventScriptTimeout", 17)
        self.recmode = 0


class CodecTests(SynchronousTestCase):
    """The event protocol's run request and reply (event_protocol.c)."""

    def test_runRequestGolden(self) -> None:
        """A run request: header (length, version 1, reqid), cmd 1, three
        stringn (u32 length with the NUL; 0 for NULL), timeout, flags."""
        packet = encodeRunRequest(7, "legacy", "monitor", None, 30)
        self.assertEqual(
            packet,
            (
                struct.pack("<III", len(packet), 1, 7)
                + struct.pack("<I", 1)
                + struct.pack("<I", 7)
                + b"legacy\0"
                + struct.pack("<I", 8)
                + b"monitor\0"
                + struct.pack("<I", 0)
                + struct.pack("<II", 30, 0)
            ),
        )

    def test_decodeReply(self) -> None:
        """Replies carry version 0 from ctdb-eventd; a short or inconsistent
        packet is malformed."""
        raw = struct.pack("<IIIIi", 20, 0, 9, 1, 62)
        reply = decodeReply(raw)
        self.assertEqual((reply.reqid, reply.cmd, reply.result), (9, 1, 62))
        self.assertRaises(MalformedPacket, decodeReply, raw[:16])
        self.assertRaises(
            MalformedPacket, decodeReply, struct.pack("<IIIIi", 24, 0, 9, 1, 0)
        )


class ClientTests(SynchronousTestCase):
    """L{EventDaemon}'s requests and L{EventClientProtocol}'s replies."""

    def test_requestsQueuedUntilConnectedAndMatched(self) -> None:
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
        self.assertEqual(reactor.unixClients[0][0], "/x/eventd.socket")
        proto = EventClientProtocol()
        proto.owner = eventd
        transport = StringTransport()
        proto.makeConnection(transport)
        sent = transport.value()
        self.assertEqual(sent, encodeRunRequest(1, "legacy", "monitor", None, 17))
        results: list[int] = []
        d.addCallback(results.append)
        proto.dataReceived(struct.pack("<IIIIi", 20, 0, 1, 1, 0)[:10])
        self.assertEqual(results, [])
        proto.dataReceived(struct.pack("<IIIIi", 20, 0, 1, 1, 0)[10:])
        self.assertEqual(results, [0])

    def test_connectionLossFailsPending(self) -> None:
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
        self.assertEqual(len(failures), 1)
