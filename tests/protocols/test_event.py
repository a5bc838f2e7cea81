# -*- test-case-name: tests.protocols.test_event -*-
"""
Tests for L{ctdb.protocols.event}: every request and reply of Samba
4.17's event protocol (ctdb/event/event_protocol.c), as golden bytes and
round trips, and what a decoder refuses.
"""

from __future__ import annotations

import struct

from twisted.trial.unittest import SynchronousTestCase

from ctdb.errors import MalformedPacket
from ctdb.protocols.event import (
    CTDB_EVENT_RUN_ALL,
    HEADER_SIZE,
    EventCommand,
    EventHeader,
    EventReply,
    EventRequest,
    EventScript,
    ReplyStatus,
    RequestRun,
    RequestScript,
    RequestStatus,
    ScriptAction,
    decodeStringn,
    encodeStringn,
    packetLength,
    takePacket,
)


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


def i32(n: int) -> bytes:
    return struct.pack("<i", n)


def tv(sec: int, usec: int) -> bytes:
    return struct.pack("<qq", sec, usec)


def header(length: int, reqid: int, version: int = 0) -> bytes:
    return struct.pack("<III", length, version, reqid)


class StringnTests(SynchronousTestCase):
    """C{ctdb_stringn}: u32 length with the NUL, bytes, NUL; 0 is NULL."""

    def test_golden(self) -> None:
        """A string, the empty string and NULL."""
        self.assertEqual(encodeStringn("legacy"), u32(7) + b"legacy\0")
        self.assertEqual(encodeStringn(""), u32(1) + b"\0")
        self.assertEqual(encodeStringn(None), u32(0))

    def test_roundTrip(self) -> None:
        """Any bytes but NUL survive, carried as surrogate-escaped str."""
        garbage = bytes(range(1, 256)).decode("utf-8", "surrogateescape")
        for text in ("monitor", "", None, "h\u00e9llo", garbage):
            raw = encodeStringn(text)
            self.assertEqual(decodeStringn(raw + b"tail"), (text, len(raw)))

    def test_nulRefused(self) -> None:
        """A C string cannot hold a NUL."""
        self.assertRaises(ValueError, encodeStringn, "a\0b")

    def test_decodeStopsAtNul(self) -> None:
        """As strndup reads it, the string ends at its first NUL; the
        length still says how far the next field is."""
        self.assertEqual(decodeStringn(u32(5) + b"ab\0cd" + b"x"), ("ab", 9))

    def test_short(self) -> None:
        """A length past the buffer's end is malformed."""
        self.assertRaises(MalformedPacket, decodeStringn, u32(8) + b"abc\0")
        self.assertRaises(MalformedPacket, decodeStringn, b"\1\0")


RUN_BODY = (
    u32(1)
    + u32(7)
    + b"legacy\0"
    + u32(7)
    + b"takeip\0"
    + u32(22)
    + b"eth0 10.0.0.1 24 more\0"
    + u32(30)
    + u32(1)
)


class RequestTests(SynchronousTestCase):
    """Requests: header (length, version 0, reqid), command, its data."""

    def test_runGolden(self) -> None:
        """RUN: component, event, args (stringn each), timeout, flags."""
        request = EventRequest(
            7,
            RequestRun(
                "legacy", "takeip", "eth0 10.0.0.1 24 more", 30, CTDB_EVENT_RUN_ALL
            ),
        )
        expected = header(HEADER_SIZE + len(RUN_BODY), 7) + RUN_BODY
        self.assertEqual(request.encode(), expected)
        self.assertEqual(EventRequest.decode(expected), (request, len(expected)))

    def test_runNullArgs(self) -> None:
        """A run without arguments carries a NULL string."""
        request = EventRequest(1, RequestRun("legacy", "monitor", None, 30))
        body = u32(1) + u32(7) + b"legacy\0" + u32(8) + b"monitor\0" + u32(0)
        body += u32(30) + u32(0)
        self.assertEqual(request.encode(), header(12 + len(body), 1) + body)

    def test_statusGolden(self) -> None:
        """STATUS: component, event."""
        request = EventRequest(3, RequestStatus("legacy", "monitor"))
        body = u32(2) + u32(7) + b"legacy\0" + u32(8) + b"monitor\0"
        raw = header(12 + len(body), 3) + body
        self.assertEqual(request.encode(), raw)
        self.assertEqual(EventRequest.decode(raw), (request, len(raw)))
        self.assertEqual(request.command, EventCommand.STATUS)

    def test_scriptGolden(self) -> None:
        """SCRIPT: component, script, action (0 disable, 1 enable)."""
        for action in ScriptAction:
            request = EventRequest(9, RequestScript("legacy", "10.interface", action))
            body = u32(3) + u32(7) + b"legacy\0" + u32(13) + b"10.interface\0"
            body += u32(int(action))
            raw = header(12 + len(body), 9) + body
            self.assertEqual(request.encode(), raw)
            self.assertEqual(EventRequest.decode(raw), (request, len(raw)))

    def test_decodeUsesHeaderLength(self) -> None:
        """The packet is as long as its header says; what follows is the
        next packet's."""
        raw = EventRequest(1, RequestStatus("a", "b")).encode()
        self.assertEqual(EventRequest.decode(raw + b"junk")[1], len(raw))
        self.assertEqual(packetLength(raw), len(raw))
        self.assertIsNone(packetLength(raw[:3]))

    def test_takePacket(self) -> None:
        """Whole packets are cut off the buffer one at a time; a part is
        left for later; a length out of bounds fails and leaves the
        buffer."""
        raw = EventRequest(1, RequestStatus("a", "b")).encode()
        buf = bytearray(raw + raw[:5])
        self.assertEqual(takePacket(buf, 1000), raw)
        self.assertEqual(buf, raw[:5])
        self.assertIsNone(takePacket(buf, 1000))
        buf += raw[5:]
        self.assertEqual(takePacket(buf, 1000), raw)
        self.assertEqual(buf, b"")
        self.assertIsNone(takePacket(buf, 1000))
        for length in (0, HEADER_SIZE - 1, 1001):
            bad = bytearray(u32(length) + b"x" * 8)
            with self.assertRaises(MalformedPacket):
                takePacket(bad, 1000)
            self.assertEqual(len(bad), 12)

    def test_versionKept(self) -> None:
        """The version is carried, whatever it is (nobody checks it)."""
        request = EventRequest(1, RequestStatus("a", "b"), version=1)
        self.assertEqual(EventRequest.decode(request.encode())[0].version, 1)

    def test_malformed(self) -> None:
        """Short packets, a length below the header or past the buffer, an
        unknown command, an action that is neither 0 nor 1, and data
        running past the packet's end are malformed."""
        good = EventRequest(1, RequestScript("c", "s", ScriptAction.ENABLE)).encode()
        bad = [
            good[:11],
            header(8, 1) + good[12:],
            header(len(good) + 4, 1) + good[12:],
            header(16, 1) + u32(4),
            header(16, 1) + u32(0),
            good[:-4] + u32(2),
            header(len(good) - 4, 1) + good[12:-4],
            header(20, 1) + u32(1) + u32(100),
        ]
        for raw in bad:
            self.assertRaises(MalformedPacket, EventRequest.decode, raw)


SCRIPT_OK = EventScript("01.one", (100, 5), (101, 6), 0, None)
SCRIPT_FAIL = EventScript("02.two", (102, 0), (103, 999999), 1, "oops\n")


class ReplyTests(SynchronousTestCase):
    """Replies: header, command, int32 result, and a status if asked for
    and the result is 0."""

    def test_runGolden(self) -> None:
        """A run's reply is its result only."""
        reply = EventReply(5, EventCommand.RUN, 62)
        raw = header(20, 5) + u32(1) + i32(62)
        self.assertEqual(reply.encode(), raw)
        self.assertEqual(EventReply.decode(raw), (reply, 20))

    def test_statusGolden(self) -> None:
        """A status reply: summary, number of scripts, then each script's
        name, begin, end, result and output."""
        status = ReplyStatus(1, (SCRIPT_OK, SCRIPT_FAIL))
        reply = EventReply(6, EventCommand.STATUS, 0, status)
        body = (
            u32(2)
            + i32(0)
            + i32(1)
            + i32(2)
            + u32(7)
            + b"01.one\0"
            + tv(100, 5)
            + tv(101, 6)
            + i32(0)
            + u32(0)
            + u32(7)
            + b"02.two\0"
            + tv(102, 0)
            + tv(103, 999999)
            + i32(1)
            + u32(6)
            + b"oops\n\0"
        )
        raw = header(12 + len(body), 6) + body
        self.assertEqual(reply.encode(), raw)
        self.assertEqual(EventReply.decode(raw), (reply, len(raw)))

    def test_statusEmpty(self) -> None:
        """An event run with no scripts: summary 0, no scripts."""
        reply = EventReply(1, EventCommand.STATUS, 0, ReplyStatus(0))
        raw = header(28, 1) + u32(2) + i32(0) + i32(0) + i32(0)
        self.assertEqual(reply.encode(), raw)
        self.assertEqual(EventReply.decode(raw)[0], reply)

    def test_statusFailed(self) -> None:
        """A failed status (EINVAL: never run) carries no status."""
        reply = EventReply(2, EventCommand.STATUS, 22)
        raw = header(20, 2) + u32(2) + i32(22)
        self.assertEqual(reply.encode(), raw)
        self.assertEqual(EventReply.decode(raw)[0], reply)
        withStatus = EventReply(2, EventCommand.STATUS, 22, ReplyStatus(0))
        self.assertEqual(withStatus.encode(), raw)

    def test_scriptGolden(self) -> None:
        """A script command's reply is its result."""
        reply = EventReply(3, EventCommand.SCRIPT, 2)
        raw = header(20, 3) + u32(3) + i32(2)
        self.assertEqual(reply.encode(), raw)
        self.assertEqual(EventReply.decode(raw)[0], reply)

    def test_roundTripGarbageOutput(self) -> None:
        """Scripts' output of any bytes but NUL survives."""
        output = b"\xff\xfe ok \x80\n".decode("utf-8", "surrogateescape")
        script = EventScript("01.x", (1, 2), (3, 4), -62, output)
        reply = EventReply(1, EventCommand.STATUS, 0, ReplyStatus(-62, (script,)))
        self.assertEqual(EventReply.decode(reply.encode())[0], reply)

    def test_header(self) -> None:
        """The header on its own."""
        self.assertEqual(EventHeader(12, 1, 3).encode(), header(12, 3, 1))
        self.assertEqual(
            EventHeader.decode(header(12, 3, 1)), (EventHeader(12, 1, 3), 12)
        )

    def test_malformed(self) -> None:
        """A negative script count, a truncated script list and an unknown
        command are malformed."""
        bad = [
            header(28, 1) + u32(2) + i32(0) + i32(0) + i32(-1),
            header(28, 1) + u32(2) + i32(0) + i32(0) + i32(1),
            header(20, 1) + u32(9) + i32(0),
            header(16, 1) + u32(1),
        ]
        for raw in bad:
            self.assertRaises(MalformedPacket, EventReply.decode, raw)
