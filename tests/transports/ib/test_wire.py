# -*- test-case-name: tests.transports.ib.test_wire -*-
"""
Tests for L{ctdb.transports.ib.wire}: the message header and the
connection manager's private data, round trips and golden bytes.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ctdb.errors import MalformedPacket
from ctdb.transports.ib import wire


class HeaderTests(SynchronousTestCase):
    """The 8-byte header of every message."""

    def test_golden(self) -> None:
        """kind, 0, credits (u16 LE), seq (u32 LE)."""
        self.assertEqual(
            wire.encodeHeader(wire.CREDIT, 16, 0x01020304),
            b"\x02\x00\x10\x00\x04\x03\x02\x01",
        )

    def test_roundTrip(self) -> None:
        """What is encoded decodes; seq wraps at 2**32."""
        raw = wire.encodeHeader(wire.DATA, 0, 2**32 + 5) + b"payload"
        self.assertEqual(wire.decodeHeader(raw), (wire.DATA, 0, 5))

    def test_short(self) -> None:
        """A message shorter than the header is malformed."""
        self.assertRaises(MalformedPacket, wire.decodeHeader, b"\x01\x00")

    def test_unknownKind(self) -> None:
        """A kind that is neither DATA nor CREDIT is malformed."""
        self.assertRaises(MalformedPacket, wire.decodeHeader, bytes(8))


class PrivateDataTests(SynchronousTestCase):
    """L{wire.Hello} and L{wire.Welcome}."""

    def test_helloGolden(self) -> None:
        """magic, version, address length, credit buffers, buffer size,
        packed address."""
        self.assertEqual(
            wire.Hello("10.0.0.1", 8192, 8).encode(),
            b"CTIB\x01\x04\x08\x00\x00\x20\x00\x00\x0a\x00\x00\x01",
        )

    def test_helloRoundTrip(self) -> None:
        """An IPv6 address fits in a connect request and comes back in
        its canonical spelling (the one the transport keys its peers by)."""
        hello = wire.Hello("fd77:0:0::0:1", 4096, 12)
        data = hello.encode()
        self.assertLessEqual(len(data), wire.MAX_CONNECT_PRIVATE_DATA)
        self.assertEqual(wire.Hello.decode(data), wire.Hello("fd77::1", 4096, 12))
        self.assertEqual(wire.canonical("fd77:0:0::0:1"), "fd77::1")
        four = wire.Hello("10.0.0.1", 1, 2)
        self.assertEqual(wire.Hello.decode(four.encode()), four)

    def test_welcomeRoundTrip(self) -> None:
        """A welcome carries the buffer size and the initial credits."""
        welcome = wire.Welcome(8192, 64)
        self.assertEqual(wire.Welcome.decode(welcome.encode()), welcome)
        self.assertEqual(len(welcome.encode()), 12)

    def test_strangers(self) -> None:
        """Private data without our magic, or cut short, is refused."""
        for data in (
            b"",
            b"XXXX\x01\x00\x00\x00\x00\x00\x00\x00",
            b"CTIB\x02" + bytes(7),
        ):
            self.assertRaises(MalformedPacket, wire.Hello.decode, data)
            self.assertRaises(MalformedPacket, wire.Welcome.decode, data)
        cut = wire.Hello("10.0.0.1", 1, 1).encode()[:-1]
        self.assertRaises(MalformedPacket, wire.Hello.decode, cut)
