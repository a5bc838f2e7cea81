# -*- test-case-name: tests.protocols.test_fuzz -*-
"""
Fuzz tests of the pure codec and the framing: random, truncated, mutated and
oversized input gives a decode or L{MalformedPacket}, never another
exception, and the framing receiver never raises into its caller.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from ctdb.errors import MalformedPacket
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.framing import CTDBPacketReceiver
from tests.protocols.test_packet import packets

#: every payload decoder in controls.py
DECODERS: list[Callable[[bytes], Any]] = [
    C.decodeU32,
    C.decodeI32,
    C.decodeU64,
    C.decodeString,
    C.decodeSockAddr,
    C.decodeNodeMap,
    C.VnnMap.decode,
    C.Uptime.decode,
    C.Tunables.decodeAll,
    C.decodeVarList,
    C.decodeSetTunable,
    C.decodeGetTunable,
    C.Statistics.decode,
    C.decodePidSrvid,
    C.decodeBanState,
]

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _validHeader(draw: st.DrawFn, body: bytes) -> bytes:
    """A header that passes the checks, claiming a (maybe wrong) length."""
    op = draw(st.sampled_from(list(P.Operation)) | st.integers(0, 20))
    length = draw(
        st.sampled_from([P.HEADER_SIZE + len(body)]) | st.integers(0, 2**32 - 1)
    )
    return struct.pack(
        "<8I",
        length,
        P.CTDB_MAGIC,
        P.CTDB_PROTOCOL,
        draw(st.integers(0, 2**32 - 1)),
        op,
        0,
        0,
        0,
    )


@st.composite
def headerAndJunk(draw: st.DrawFn) -> bytes:
    """A plausible header followed by a random body: reaches every decodeBody."""
    body = draw(st.binary(max_size=200))
    return _validHeader(draw, body) + body


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid packet with a few bytes overwritten, then cut or extended."""
    raw = bytearray(draw(packets).encode())
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(raw) - 1))
        raw[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    else:
        raw += draw(st.binary(max_size=16))
    return bytes(raw)


@st.composite
def bodyLengthLies(draw: st.DrawFn) -> bytes:
    """A valid packet whose first length/count word after the fixed part lies."""
    raw = bytearray(draw(packets).encode())
    pos = draw(st.integers(P.HEADER_SIZE, max(P.HEADER_SIZE, len(raw) - 4)))
    if pos + 4 <= len(raw):
        struct.pack_into("<I", raw, pos, draw(st.integers(0, 2**32 - 1)))
    return bytes(raw)


anyInput = st.one_of(
    st.binary(max_size=300), headerAndJunk(), mutated(), bodyLengthLies()
)


def decodeOrMalformed(
    testcase: SynchronousTestCase, decode: Callable[[bytes], Any], data: bytes
) -> None:
    try:
        decode(data)
    except MalformedPacket:
        pass
    except Exception as e:  # noqa: BLE001 - any other exception is the bug sought
        testcase.fail(f"{decode.__qualname__}({data!r}) raised {e!r}")


class DecodeFuzzTests(SynchronousTestCase):
    """Only MalformedPacket (or a result) comes out of a decoder."""

    @FUZZ
    @given(anyInput)
    def test_decodePacket(self, data: bytes) -> None:
        """decodePacket on random, mutated, truncated and lying input."""
        decodeOrMalformed(self, P.decodePacket, data)
        decodeOrMalformed(self, P.decode, data)

    @FUZZ
    @given(headerAndJunk())
    def test_decodedReencodes(self, data: bytes) -> None:
        """Whatever decodes re-encodes to a packet that decodes to the same value."""
        try:
            pkt = P.decodePacket(data)
        except MalformedPacket:
            return
        self.assertEqual(P.decodePacket(pkt.encode()), pkt)

    @FUZZ
    @given(st.sampled_from(DECODERS), st.binary(max_size=600))
    def test_payloadDecoders(self, decode: Callable[[bytes], Any], data: bytes) -> None:
        """Every payload decoder on random bytes."""
        decodeOrMalformed(self, decode, data)

    @FUZZ
    @given(st.sampled_from(DECODERS), st.integers(0, 2**32 - 1), st.binary(max_size=64))
    def test_payloadCounts(
        self, decode: Callable[[bytes], Any], count: int, rest: bytes
    ) -> None:
        """Payload decoders whose first word is a huge or bogus count/length."""
        decodeOrMalformed(self, decode, struct.pack("<I", count) + rest)

    def test_oversized(self) -> None:
        """Huge buffers and huge claimed sizes are handled without blowing up."""
        big = b"\xff" * (1 << 20)
        for decode in DECODERS:
            decodeOrMalformed(self, decode, big)
        raw = struct.pack(
            "<8I", 0xFFFFFFFF, P.CTDB_MAGIC, 1, 0, P.Operation.REQ_CONTROL, 0, 0, 0
        )
        self.assertRaises(MalformedPacket, P.decodePacket, raw + big)

    def test_payloadDecodersOnEmpty(self) -> None:
        """Empty payloads: a string decodes as '', the rest are MalformedPacket."""
        for decode in DECODERS:
            if decode is C.decodeString:
                self.assertEqual(decode(b""), "")
            else:
                self.assertRaises(MalformedPacket, decode, b"")


class Collector(CTDBPacketReceiver):
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def packetReceived(self, packet: bytes) -> None:
        self.packets.append(packet)
        P.decodePacket(packet)  # may raise: must be contained by the framing


@st.composite
def chunked(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    edges = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in pairwise(edges)]


STREAMS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


class FramingFuzzTests(SynchronousTestCase):
    """The framing receiver never raises into its caller."""

    @STREAMS
    @given(
        st.data(),
        st.lists(st.one_of(packets.map(lambda p: p.encode()), anyInput), max_size=6),
        st.booleans(),
    )
    def test_neverRaises(
        self, data: st.DataObject, parts: list[bytes], strict: bool
    ) -> None:
        """Random chunked streams of good and bad packets: no exception escapes."""
        stream = b"".join(parts)
        r = Collector()
        r.strictAlignment = strict
        transport = StringTransport()
        r.makeConnection(transport)
        with capturedLogs():
            for chunk in data.draw(chunked(stream)):
                r.dataReceived(chunk)
        self.flushLoggedErrors(MalformedPacket)
        # Whatever was delivered was a whole, well-framed packet.
        for packet in r.packets:
            self.assertEqual(struct.unpack_from("<I", packet)[0], len(packet))

    @STREAMS
    @given(st.data(), st.lists(packets, min_size=1, max_size=8))
    def test_chunkingIsInvisible(
        self, data: st.DataObject, pkts: list[P.Packet]
    ) -> None:
        """However a valid stream is cut, the same packets come out, in order."""
        stream = b"".join(p.encode() for p in pkts)
        r = Collector()
        r.strictAlignment = True
        transport = StringTransport()
        r.makeConnection(transport)
        for chunk in data.draw(chunked(stream)):
            r.dataReceived(chunk)
        self.assertEqual([P.decodePacket(p) for p in r.packets], pkts)
        self.assertFalse(transport.disconnecting)
