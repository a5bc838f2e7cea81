# -*- test-case-name: tests.protocols.test_framing -*-
"""
Tests for L{ctdb.protocols.framing.CTDBPacketReceiver} over
L{StringTransport}.
"""

from __future__ import annotations

import struct

from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from ctdb.protocols import packet as P
from ctdb.protocols.framing import CTDBPacketReceiver


class Recorder(CTDBPacketReceiver):
    """Records every packet; optionally misbehaves in packetReceived."""

    def __init__(self, fail: bool = False, closeAfter: int | None = None) -> None:
        self.packets: list[bytes] = []
        self.fail = fail
        self.closeAfter = closeAfter

    def packetReceived(self, packet: bytes) -> None:
        self.packets.append(packet)
        if self.fail:
            raise RuntimeError("handler exploded")
        if self.closeAfter is not None and len(self.packets) >= self.closeAfter:
            assert self.transport is not None
            self.transport.loseConnection()


def connected(receiver: CTDBPacketReceiver) -> StringTransport:
    transport = StringTransport()
    receiver.makeConnection(transport)
    return transport


def control(reqid: int, data: bytes = b"") -> bytes:
    return P.ReqControl(
        P.Header(P.Operation.REQ_CONTROL, reqid=reqid), 3, data=data
    ).encode()


def withPrefix(
    length: int,
    magic: int = P.CTDB_MAGIC,
    version: int = P.CTDB_PROTOCOL,
    total: int = P.HEADER_SIZE,
) -> bytes:
    """A header with the given length/magic/version, padded with zeros to C{total}."""
    return struct.pack("<III", length, magic, version) + b"\0" * (total - 12)


class DeliveryTests(SynchronousTestCase):
    """Whole packets come out however the stream is cut."""

    def test_byteAtATime(self) -> None:
        """Packets delivered one byte at a time come out whole and in order."""
        r = Recorder()
        transport = connected(r)
        stream = control(1) + control(2, b"x" * 100) + control(3)
        for i in range(len(stream)):
            r.dataReceived(stream[i : i + 1])
        self.assertEqual(r.packets, [control(1), control(2, b"x" * 100), control(3)])
        self.assertFalse(transport.disconnecting)

    def test_severalInOneChunk(self) -> None:
        """Several packets in one chunk are all delivered."""
        r = Recorder()
        connected(r)
        packets = [control(i, b"d" * i) for i in range(20)]
        r.dataReceived(b"".join(packets))
        self.assertEqual(r.packets, packets)

    def test_splitAcrossChunks(self) -> None:
        """A chunk ending mid-packet keeps the rest for the next chunk."""
        r = Recorder()
        connected(r)
        a, b = control(1, b"a" * 40), control(2, b"b" * 40)
        stream = a + b
        for cut in (3, 31, 32, 33, len(a) - 1, len(a), len(a) + 5):
            r.packets.clear()
            r.dataReceived(stream[:cut])
            r.dataReceived(stream[cut:])
            self.assertEqual(r.packets, [a, b], cut)

    def test_largePacket(self) -> None:
        """A 4 MiB packet in 64 KiB reads arrives whole."""
        r = Recorder()
        connected(r)
        big = P.ReqMessage(
            P.Header(P.Operation.REQ_MESSAGE), 1, b"z" * (4 << 20)
        ).encode()
        for i in range(0, len(big), 65536):
            r.dataReceived(big[i : i + 65536])
        self.assertEqual(r.packets, [big])

    def test_unalignedAllowedByDefault(self) -> None:
        """Client sockets accept a length that is not a multiple of 8."""
        r = Recorder()
        transport = connected(r)
        raw = P.Header(P.Operation.REQ_KEEPALIVE).encode(36) + b"\0" * 4
        r.dataReceived(raw)
        self.assertEqual(r.packets, [raw])
        self.assertFalse(transport.disconnecting)

    def test_emptyData(self) -> None:
        """An empty read changes nothing."""
        r = Recorder()
        connected(r)
        r.dataReceived(b"")
        r.dataReceived(control(1))
        self.assertEqual(r.packets, [control(1)])

    def test_handlerClosesConnection(self) -> None:
        """Once the handler drops the connection, later packets are ignored."""
        r = Recorder(closeAfter=1)
        transport = connected(r)
        r.dataReceived(control(1) + control(2))
        r.dataReceived(control(3))
        self.assertEqual(r.packets, [control(1)])
        self.assertTrue(transport.disconnecting)


class BrokenStreamTests(SynchronousTestCase):
    """A broken peer is logged and disconnected, never raised into the reactor."""

    def assertDropped(
        self, data: bytes, reason: str, strict: bool = False, chunk: int | None = None
    ) -> Recorder:
        r = Recorder()
        r.strictAlignment = strict
        transport = connected(r)
        with capturedLogs() as events:
            if chunk is None:
                r.dataReceived(data)
            else:
                for i in range(0, len(data), chunk):
                    r.dataReceived(data[i : i + chunk])
            r.dataReceived(control(9))  # ignored after the drop
        self.assertTrue(transport.disconnecting)
        self.assertEqual(r.packets, [])
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1, events)
        self.assertIn(reason, warnings[0]["reason"])
        return r

    def test_zeroLength(self) -> None:
        """Length 0 is dropped as soon as its 4 bytes arrive."""
        self.assertDropped(b"\0\0\0\0", "bad packet length 0")

    def test_lengthBelowHeader(self) -> None:
        """A length of 1..31 is dropped."""
        for length in (1, 8, 31):
            self.assertDropped(struct.pack("<I", length), f"bad packet length {length}")

    def test_lengthAboveMax(self) -> None:
        """A length above MAX_LENGTH is dropped before anything is buffered."""
        self.assertDropped(struct.pack("<I", P.MAX_LENGTH + 1), "bad packet length")
        self.assertDropped(struct.pack("<I", 0xFFFFFFFF), "bad packet length")

    def test_badLengthByteAtATime(self) -> None:
        """A bad length is noticed when its 4th byte arrives one byte at a time."""
        self.assertDropped(
            struct.pack("<I", 5) + b"\0" * 40, "bad packet length 5", chunk=1
        )

    def test_badMagic(self) -> None:
        """Bad magic is dropped once the 32-byte header is in, not the whole packet."""
        self.assertDropped(withPrefix(4096, magic=0xDEADBEEF), "bad magic 0xdeadbeef")

    def test_badMagicByteAtATime(self) -> None:
        """Bad magic delivered a byte at a time is dropped too."""
        self.assertDropped(withPrefix(64, magic=0, total=64), "bad magic", chunk=1)

    def test_badVersion(self) -> None:
        """A protocol version other than 1 is dropped."""
        self.assertDropped(withPrefix(32, version=2), "bad protocol version 2")

    def test_misaligned(self) -> None:
        """With strictAlignment (node links) a length not a multiple of 8 is dropped."""
        raw = P.Header(P.Operation.REQ_KEEPALIVE).encode(36) + b"\0" * 4
        self.assertDropped(raw, "not a multiple of 8", strict=True)

    def test_badSecondPacket(self) -> None:
        """A good packet then garbage: the good one is delivered, then the drop."""
        r = Recorder()
        transport = connected(r)
        with capturedLogs() as events:
            r.dataReceived(control(1) + b"\xff" * 40)
        self.assertEqual(r.packets, [control(1)])
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len([e for e in events if e["log_level"] == LogLevel.warn]), 1)

    def test_handlerException(self) -> None:
        """An exception in packetReceived is logged and drops the connection; it does not escape."""
        r = Recorder(fail=True)
        transport = connected(r)
        r.dataReceived(control(1) + control(2))
        self.assertEqual(r.packets, [control(1)])
        self.assertTrue(transport.disconnecting)
        errors = self.flushLoggedErrors(RuntimeError)
        self.assertEqual(len(errors), 1)

    def test_noTransport(self) -> None:
        """malformed() without a transport only logs."""
        r = Recorder()
        with capturedLogs() as events:
            r.malformed("testing")
        self.assertEqual([e["reason"] for e in events], ["testing"])
