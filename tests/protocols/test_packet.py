# -*- test-case-name: tests.protocols.test_packet -*-
"""
Tests for L{ctdb.protocols.packet}: round trips of every packet type
(hypothesis) and golden bytes captured from a real Samba 4.17 ctdbd
(tests/protocols/golden/, see README there).
"""

from __future__ import annotations

import os
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ctdb.errors import MalformedPacket
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")


def loadGolden(name: str) -> bytes:
    """The bytes of golden file C{name}: hex, '#' lines are comments."""
    with open(os.path.join(GOLDEN, name)) as f:
        text = "".join(line.strip() for line in f if not line.lstrip().startswith("#"))
    return bytes.fromhex(text)


def goldenNames() -> list[str]:
    return sorted(n for n in os.listdir(GOLDEN) if n.endswith(".hex"))


# -- strategies ------------------------------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)
i32 = st.integers(-(2**31), 2**31 - 1)
u64 = st.integers(0, 2**64 - 1)
blobs = st.binary(max_size=300)


@st.composite
def headers(draw: st.DrawFn, operation: int) -> P.Header:
    return P.Header(operation, draw(u32), draw(u32), draw(u32), draw(u32))


def _packets() -> st.SearchStrategy[P.Packet]:
    O = P.Operation
    return st.one_of(
        st.builds(P.ReqCall, headers(O.REQ_CALL), u32, u32, u32, u32, blobs, blobs),
        st.builds(P.ReplyCall, headers(O.REPLY_CALL), i32, blobs),
        st.builds(
            P.ReqDmaster, headers(O.REQ_DMASTER), u32, u64, u32, blobs, blobs, u32
        ),
        st.builds(
            P.ReplyDmaster, headers(O.REPLY_DMASTER), u32, u64, blobs, blobs, u32
        ),
        st.builds(P.ReplyError, headers(O.REPLY_ERROR), i32, blobs),
        st.builds(P.ReqMessage, headers(O.REQ_MESSAGE), u64, blobs),
        st.builds(P.ReqControl, headers(O.REQ_CONTROL), u32, u64, u32, u32, blobs),
        st.builds(P.ReplyControl, headers(O.REPLY_CONTROL), i32, blobs, blobs),
        st.builds(P.ReqKeepalive, headers(O.REQ_KEEPALIVE), u32, u32),
        st.builds(P.ReqTunnel, headers(O.REQ_TUNNEL), u64, u32, blobs),
    )


packets = _packets()


class RoundTripTests(SynchronousTestCase):
    """Every packet type survives encode/decode unchanged."""

    @settings(max_examples=300, deadline=None)
    @given(packets)
    def test_roundTrip(self, packet: P.Packet) -> None:
        """decodePacket(encode(p)) == p, for every packet type."""
        self.assertEqual(P.decodePacket(packet.encode()), packet)

    @settings(max_examples=200, deadline=None)
    @given(packets)
    def test_framed(self, packet: P.Packet) -> None:
        """
        The encoding is 8-byte aligned, its length field is its size, the
        header carries magic, version and the operation, and the padding is
        zero.
        """
        raw = packet.encode()
        length, magic, version, generation, operation = struct.unpack_from("<5I", raw)
        self.assertEqual(length, len(raw))
        self.assertEqual(len(raw) % P.CTDB_DS_ALIGNMENT, 0)
        self.assertEqual((magic, version), (P.CTDB_MAGIC, P.CTDB_PROTOCOL))
        self.assertEqual(operation, packet.operation)
        self.assertEqual(generation, packet.header.generation)
        unpadded = P.HEADER_SIZE + len(packet.body())
        self.assertEqual(raw[unpadded:], b"\0" * (len(raw) - unpadded))
        self.assertEqual(len(raw) - unpadded, P.padded(unpadded) - unpadded)

    @settings(max_examples=100, deadline=None)
    @given(packets, st.binary(max_size=40))
    def test_decodeConsumed(self, packet: P.Packet, trailer: bytes) -> None:
        """decode() reports the bytes used and ignores what follows."""
        raw = packet.encode()
        decoded, consumed = P.decode(raw + trailer)
        self.assertEqual(decoded, packet)
        self.assertEqual(consumed, len(raw))

    @settings(max_examples=100, deadline=None)
    @given(packets, st.data())
    def test_truncated(self, packet: P.Packet, data: st.DataObject) -> None:
        """Any proper prefix of a packet is a MalformedPacket."""
        raw = packet.encode()
        cut = data.draw(st.integers(0, len(raw) - 1))
        self.assertRaises(MalformedPacket, P.decodePacket, raw[:cut])

    @settings(max_examples=100, deadline=None)
    @given(packets)
    def test_memoryview(self, packet: P.Packet) -> None:
        """decodePacket accepts a memoryview as well as bytes."""
        self.assertEqual(P.decodePacket(memoryview(packet.encode())), packet)

    def test_withHeader(self) -> None:
        """withHeader() changes header fields and nothing else."""
        pkt = P.ReqControl(
            P.Header(P.Operation.REQ_CONTROL, 1, 2, 3, 4), 35, 9, 8, 7, b"x"
        )
        changed = pkt.withHeader(destnode=5, reqid=6)
        self.assertEqual(changed.header, P.Header(P.Operation.REQ_CONTROL, 5, 2, 6, 4))
        self.assertEqual((changed.opcode, changed.srvid, changed.data), (35, 9, b"x"))

    def test_padded(self) -> None:
        """padded() rounds up to a multiple of 8."""
        self.assertEqual(
            [P.padded(n) for n in (0, 1, 7, 8, 9, 60)], [0, 8, 8, 8, 16, 64]
        )


class LayoutTests(SynchronousTestCase):
    """Field offsets as in Samba's ctdb_protocol.h structs (x86_64)."""

    def test_reqControlOffsets(self) -> None:
        """
        struct ctdb_req_control_old: opcode@32, pad, srvid@40,
        client_id@48, flags@52, datalen@56, data@60.
        """
        pkt = P.ReqControl(
            P.Header(P.Operation.REQ_CONTROL, 1, 2, 3, 4),
            0x11223344,
            0x5566778899AABBCC,
            0xDDEEFF00,
            0x01020304,
            b"abc",
        )
        raw = pkt.encode()
        self.assertEqual(struct.unpack_from("<I", raw, 32)[0], 0x11223344)
        self.assertEqual(raw[36:40], b"\0\0\0\0")
        self.assertEqual(struct.unpack_from("<Q", raw, 40)[0], 0x5566778899AABBCC)
        self.assertEqual(
            struct.unpack_from("<III", raw, 48), (0xDDEEFF00, 0x01020304, 3)
        )
        self.assertEqual(raw[60:63], b"abc")
        self.assertEqual(len(raw), 64)

    def test_reqDmasterOffsets(self) -> None:
        """
        struct ctdb_req_dmaster_old: db_id@32, rsn@40 (8-aligned), dmaster@48,
        keylen@52, datalen@56, key+data@60, then the u32 record flags.
        """
        pkt = P.ReqDmaster(
            P.Header(P.Operation.REQ_DMASTER), 7, 2**40 + 5, 3, b"KEY", b"DATA", 0x9
        )
        raw = pkt.encode()
        self.assertEqual(struct.unpack_from("<I", raw, 32)[0], 7)
        self.assertEqual(struct.unpack_from("<Q", raw, 40)[0], 2**40 + 5)
        self.assertEqual(struct.unpack_from("<III", raw, 48), (3, 3, 4))
        self.assertEqual(raw[60:67], b"KEYDATA")
        self.assertEqual(struct.unpack_from("<I", raw, 67)[0], 0x9)

    def test_replyDmasterOffsets(self) -> None:
        """struct ctdb_reply_dmaster_old: db_id@32, rsn@40, keylen@48, datalen@52, data@56."""
        pkt = P.ReplyDmaster(P.Header(P.Operation.REPLY_DMASTER), 7, 9, b"K", b"DD", 5)
        raw = pkt.encode()
        self.assertEqual(struct.unpack_from("<IxxxxQII", raw, 32), (7, 9, 1, 2))
        self.assertEqual(raw[56:59], b"KDD")
        self.assertEqual(struct.unpack_from("<I", raw, 59)[0], 5)

    def test_reqCallOffsets(self) -> None:
        """struct ctdb_req_call_old: six u32 then key and calldata at 56."""
        pkt = P.ReqCall(P.Header(P.Operation.REQ_CALL), 1, 2, 3, 4, b"kk", b"ccc")
        raw = pkt.encode()
        self.assertEqual(struct.unpack_from("<6I", raw, 32), (1, 2, 3, 4, 2, 3))
        self.assertEqual(raw[56:61], b"kkccc")

    def test_tunnelAndMessageOffsets(self) -> None:
        """REQ_TUNNEL: tunnel_id@32 flags@40 datalen@44; REQ_MESSAGE: srvid@32 datalen@40."""
        tun = P.ReqTunnel(P.Header(P.Operation.REQ_TUNNEL), 2**63 + 1, 2, b"t").encode()
        self.assertEqual(struct.unpack_from("<QII", tun, 32), (2**63 + 1, 2, 1))
        self.assertEqual(tun[48:49], b"t")
        msg = P.ReqMessage(P.Header(P.Operation.REQ_MESSAGE), 2**60, b"mm").encode()
        self.assertEqual(struct.unpack_from("<QI", msg, 32), (2**60, 2))
        self.assertEqual(msg[44:46], b"mm")

    def test_oldKeepalive(self) -> None:
        """A header-only keepalive (pre-4.8 peers) decodes as version 0."""
        raw = P.Header(P.Operation.REQ_KEEPALIVE, 1, 0).encode(P.HEADER_SIZE)
        self.assertEqual(
            P.decodePacket(raw),
            P.ReqKeepalive(P.Header(P.Operation.REQ_KEEPALIVE, 1, 0)),
        )

    def test_dmasterWithoutFlags(self) -> None:
        """A REQ_DMASTER with no trailing record-flags word has flags 0."""
        body = struct.pack("<I4xQIII", 1, 2, 3, 1, 1) + b"kd"
        raw = P.Header(P.Operation.REQ_DMASTER).encode(P.HEADER_SIZE + len(body)) + body
        pkt = P.decodePacket(raw)
        assert isinstance(pkt, P.ReqDmaster)
        self.assertEqual((pkt.key, pkt.data, pkt.record_flags), (b"k", b"d", 0))


class HeaderErrorTests(SynchronousTestCase):
    """Broken headers are MalformedPacket."""

    def _raw(self, **fields: int) -> bytearray:
        raw = bytearray(P.ReqControl(P.Header(P.Operation.REQ_CONTROL), 3).encode())
        offsets = {"length": 0, "magic": 4, "version": 8, "operation": 16}
        for name, value in fields.items():
            struct.pack_into("<I", raw, offsets[name], value)
        return raw

    def test_badMagic(self) -> None:
        """A wrong magic number is refused."""
        self.assertRaises(
            MalformedPacket, P.decodePacket, bytes(self._raw(magic=0x12345678))
        )

    def test_badVersion(self) -> None:
        """A protocol version other than 1 is refused."""
        self.assertRaises(MalformedPacket, P.decodePacket, bytes(self._raw(version=2)))

    def test_shortLength(self) -> None:
        """A length below the header size is refused."""
        for length in (0, 1, 31):
            self.assertRaises(
                MalformedPacket, P.decodePacket, bytes(self._raw(length=length))
            )

    def test_lengthBeyondBuffer(self) -> None:
        """A length larger than the buffer is refused."""
        self.assertRaises(MalformedPacket, P.decodePacket, bytes(self._raw(length=72)))

    def test_unknownOperation(self) -> None:
        """Operation 6 (unused) and 11 and above are refused."""
        for op in (6, 11, 0xFFFFFFFF):
            self.assertRaises(
                MalformedPacket, P.decodePacket, bytes(self._raw(operation=op))
            )

    def test_bodyBeyondLength(self) -> None:
        """A datalen that runs past the packet length is refused."""
        raw = self._raw()
        struct.pack_into("<I", raw, 56, 5)  # datalen 5 but only 4 padding bytes
        self.assertRaises(MalformedPacket, P.decodePacket, bytes(raw))

    def test_datalenIgnoresBytesBeyondLength(self) -> None:
        """Bytes after the packet length never satisfy a body's datalen."""
        raw = self._raw()
        struct.pack_into("<I", raw, 56, 8)
        self.assertRaises(MalformedPacket, P.decodePacket, bytes(raw) + b"x" * 16)

    def test_headerOnly(self) -> None:
        """Fewer than 32 bytes is not a header."""
        self.assertRaises(MalformedPacket, P.Header.decode, b"\0" * 31)


# -- golden bytes ----------------------------------------------------------

GEN = 1337230659  # the generation of the captured cluster
O = P.Operation


def _rc(
    destnode: int,
    srcnode: int,
    reqid: int,
    opcode: int,
    client_id: int,
    data: bytes = b"",
    generation: int = GEN,
) -> P.ReqControl:
    return P.ReqControl(
        P.Header(O.REQ_CONTROL, destnode, srcnode, reqid, generation),
        opcode,
        0,
        client_id,
        0,
        data,
    )


def _rp(
    destnode: int,
    srcnode: int,
    reqid: int,
    status: int,
    data: bytes = b"",
    generation: int = GEN,
) -> P.ReplyControl:
    return P.ReplyControl(
        P.Header(O.REPLY_CONTROL, destnode, srcnode, reqid, generation), status, data
    )


# Payloads (checked field by field against their codecs in test_controls).
_NODEMAP = bytes.fromhex(
    "02000000"
    "00000000"
    "02000000"
    "0200111b7f004d01" + "00" * 20 + "01000000"
    "00000000"
    "0200111b7f004d02" + "00" * 20
)
_GETTUNABLE = b"\x12\x00\x00\x00KeepaliveInterval\x00"
_VNNMAP = struct.pack("<IIII", GEN, 2, 0, 1)
_CLIENT = 0x7FFFFF38  # the first reqid/client id libctdb hands out (2147483448)

#: golden file -> the packet it must decode to (and encode back from).
EXPECTED: dict[str, P.Packet] = {
    "node_keepalive.hex": P.ReqKeepalive(
        P.Header(O.REQ_KEEPALIVE, 0, 1, 0, GEN), 0x00040011, 10
    ),
    "node_req_control_ping.hex": _rc(1, 0, 2147483555, Control.PING, 2147483551),
    "node_reply_control_ping.hex": _rp(0, 1, 2147483555, 1),
    "node_req_control_get_nodemap.hex": _rc(
        1, 0, 2147483525, Control.GET_NODEMAP, _CLIENT
    ),
    "node_reply_control_get_nodemap.hex": _rp(0, 1, 2147483525, 0, _NODEMAP),
    "node_req_control_get_tunable.hex": _rc(
        1, 0, 33, Control.GET_TUNABLE, 28, _GETTUNABLE
    ),
    "node_reply_control_get_tunable.hex": _rp(0, 1, 33, 0, b"\x05\0\0\0"),
    "node_req_control_uptime.hex": _rc(1, 0, 38, Control.UPTIME, 34),
    "node_req_control_list_tunables.hex": _rc(1, 0, 32, Control.LIST_TUNABLES, 28),
    "node_req_control_get_pid.hex": _rc(1, 0, 48, Control.GET_PID, 44),
    "node_reply_control_get_pid.hex": _rp(0, 1, 48, 6928),
    "node_req_control_getvnnmap.hex": _rc(0, 1, 77, Control.GETVNNMAP, _CLIENT),
    "node_reply_control_getvnnmap.hex": _rp(1, 0, 77, 0, _VNNMAP),
    "node_req_control_modify_flags.hex": _rc(
        1, 0, 2147483527, Control.MODIFY_FLAGS, _CLIENT, struct.pack("<III", 0, 0, 2)
    ),
    "node_reply_control_modify_flags.hex": _rp(0, 1, 2147483527, 0),
    "node_req_control_setvnnmap.hex": _rc(
        0, 1, 2147483537, Control.SETVNNMAP, 2147483522, _VNNMAP, generation=1
    ),
    "node_reply_control_setvnnmap.hex": _rp(1, 0, 2147483537, 0),
    "node_req_control_get_capabilities.hex": _rc(
        0, 1, 2147483510, Control.GET_CAPABILITIES, _CLIENT, generation=1
    ),
    "node_reply_control_get_capabilities.hex": _rp(
        1, 0, 2147483510, 0, b"\x03\x00\x03\x00", generation=1
    ),
    "node_req_message_leader.hex": P.ReqMessage(
        P.Header(O.REQ_MESSAGE, 0, 1, 0, 1), 0xF101000000000000, b"\xff\xff\xff\xff"
    ),
    "client_req_control_get_pnn.hex": P.ReqControl(
        P.Header(O.REQ_CONTROL, P.CTDB_CURRENT_NODE, P.CTDB_UNKNOWN_PNN, _CLIENT, 0),
        Control.GET_PNN,
    ),
    "client_reply_control_get_pnn.hex": _rp(0, 0, _CLIENT, 0),
    "client_req_control_statistics.hex": _rc(
        0, 0, 2147483450, Control.STATISTICS, 0, generation=0
    ),
    "client_req_control_set_tunable.hex": _rc(
        0,
        0,
        2147483451,
        Control.SET_TUNABLE,
        0,
        b"\x06\0\0\0\x0f\0\0\0KeepaliveLimit\0",
        generation=0,
    ),
    "client_reply_control_set_tunable.hex": _rp(0, 0, 2147483451, 0),
    "client_req_control_get_tunable.hex": _rc(
        0, 0, 2147483451, Control.GET_TUNABLE, 0, _GETTUNABLE, generation=0
    ),
    "client_reply_control_get_tunable.hex": _rp(0, 0, 2147483451, 0, b"\x05\0\0\0"),
    "client_req_control_unknown_9999.hex": _rc(
        P.CTDB_CURRENT_NODE, 0, 7, 9999, 0, generation=0
    ),
    "client_reply_control_unknown_9999.hex": _rp(0, 0, 7, -1),
    "client_req_control_short_get_tunable.hex": _rc(
        P.CTDB_CURRENT_NODE, 0, 8, Control.GET_TUNABLE, 0, b"\x05\0\0\0ab", generation=0
    ),
    "client_reply_control_short_get_tunable.hex": _rp(0, 0, 8, -1),
    "client_req_control_uptime.hex": _rc(
        0, 0, 2147483450, Control.UPTIME, 0, generation=0
    ),
    "client_req_message_leader.hex": P.ReqMessage(
        P.Header(O.REQ_MESSAGE, 0, 0, 0, GEN), 0xF101000000000000, b"\x01\0\0\0"
    ),
}


class GoldenTests(SynchronousTestCase):
    """
    Packets captured from a real Samba 4.17.12 ctdbd.  Samba's daemon
    zero-fills its packets (all 452 packets of the capture re-encode
    byte-for-byte), so the padding needs no allowance.
    """

    def test_expected(self) -> None:
        """Each listed golden packet decodes to the expected fields and encodes back to the same bytes."""
        for name, expected in EXPECTED.items():
            raw = loadGolden(name)
            self.assertEqual(P.decodePacket(raw), expected, name)
            self.assertEqual(expected.encode(), raw, name)

    def test_everyFileRoundTrips(self) -> None:
        """Every golden file (also those without a hand-written expectation) re-encodes identically."""
        names = goldenNames()
        self.assertGreaterEqual(len(names), 30)
        for name in names:
            raw = loadGolden(name)
            pkt = P.decodePacket(raw)
            self.assertEqual(pkt.encode(), raw, name)
            self.assertEqual(len(raw) % P.CTDB_DS_ALIGNMENT, 0, name)

    def test_padding(self) -> None:
        """ctdbd pads a 60-byte REQ_CONTROL to 64 with zero bytes, as we do."""
        raw = loadGolden("node_req_control_ping.hex")
        self.assertEqual(struct.unpack_from("<I", raw)[0], 64)
        self.assertEqual(raw[60:], b"\0\0\0\0")

    def test_keepaliveVersion(self) -> None:
        """The 4.17 keepalive carries version (4 << 16) | 17."""
        pkt = P.decodePacket(loadGolden("node_keepalive.hex"))
        assert isinstance(pkt, P.ReqKeepalive)
        self.assertEqual(pkt.version, (4 << 16) | 17)


class OneStepEncoderTests(SynchronousTestCase):
    """The one-step encoders of the hot paths give the packets' own bytes."""

    @given(packets)
    def test_encodeIsFramedBody(self, packet: P.Packet) -> None:
        """Every type's encode() (one pack for the record protocol's types)
        is its header and body(), framed and padded."""
        self.assertEqual(packet.encode(), P._frame(packet.header, packet.body()))

    @settings(max_examples=50)
    @given(
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.binary(max_size=40),
    )
    def test_encodeReqControlMatchesEncode(
        self,
        dest: int,
        src: int,
        reqid: int,
        gen: int,
        opcode: int,
        srvid: int,
        clientId: int,
        flags: int,
        data: bytes,
    ) -> None:
        """The one-step REQ_CONTROL encoder gives the same bytes as the packet's encode()."""
        header = P.Header(P.Operation.REQ_CONTROL, dest, src, reqid, gen)
        expected = P.ReqControl(header, opcode, srvid, clientId, flags, data).encode()
        got = P.encodeReqControl(
            dest, src, reqid, gen, opcode, srvid, clientId, flags, data
        )
        self.assertEqual(got, expected)

    @settings(max_examples=50)
    @given(
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(-(2**31), 2**31 - 1),
        st.binary(max_size=40),
        st.binary(max_size=20),
    )
    def test_encodeReplyControlMatchesEncode(
        self,
        dest: int,
        reqid: int,
        gen: int,
        status: int,
        data: bytes,
        errmsg: bytes,
    ) -> None:
        """The one-step REPLY_CONTROL encoder gives the same bytes as the packet's encode()."""
        header = P.Header(P.Operation.REPLY_CONTROL, dest, 3, reqid, gen)
        expected = P.ReplyControl(header, status, data, errmsg).encode()
        self.assertEqual(
            P.encodeReplyControl(dest, 3, reqid, gen, status, data, errmsg), expected
        )


class RelayTests(SynchronousTestCase):
    """Reading only the routing fields, and readdressing packets in place."""

    @given(
        st.builds(
            P.ReqControl, headers(P.Operation.REQ_CONTROL), u32, u64, u32, u32, blobs
        ),
        u32,
        u32,
        u32,
        u32,
        u32,
    )
    def test_readdressReqControl(
        self, req: P.ReqControl, dest: int, src: int, reqid: int, gen: int, cid: int
    ) -> None:
        """
        routeReqControl reads destnode, srcnode, reqid, opcode and flags of
        an encoded REQ_CONTROL, and readdressReqControl gives the bytes of
        the same control with new routing fields and client id.
        """
        data = req.encode()
        hdr = req.header
        self.assertEqual(
            P.routeReqControl(data),
            (hdr.destnode, hdr.srcnode, hdr.reqid, req.opcode, req.flags),
        )
        self.assertEqual(
            P.readdressReqControl(data, dest, src, reqid, gen, cid),
            P.encodeReqControl(
                dest, src, reqid, gen, req.opcode, req.srvid, cid, req.flags, req.data
            ),
        )

    @given(
        st.builds(
            P.ReplyControl, headers(P.Operation.REPLY_CONTROL), i32, blobs, blobs
        ),
        u32,
        u32,
        u32,
        u32,
    )
    def test_readdressReplyControl(
        self, reply: P.ReplyControl, dest: int, src: int, reqid: int, gen: int
    ) -> None:
        """
        routeReplyControl reads the reqid of an encoded REPLY_CONTROL that
        carries no data when it failed, and readdressReplyControl gives the
        bytes of the same reply with new routing fields.  A failed reply
        with data is not relayed as it is (the decoder drops the data).
        """
        data = reply.encode()
        if reply.status != 0 and reply.data:
            self.assertIsNone(P.routeReplyControl(data))
            return
        self.assertEqual(P.routeReplyControl(data), reply.header.reqid)
        self.assertEqual(
            P.readdressReplyControl(data, dest, src, reqid, gen),
            P.encodeReplyControl(
                dest, src, reqid, gen, reply.status, reply.data, reply.errmsg
            ),
        )

    def test_notRelayed(self) -> None:
        """
        Anything but one whole, well-formed, padded packet of the right
        operation with nothing after its payload is left to the decoder.
        """
        header = P.Header(P.Operation.REQ_CONTROL, 1, 2, 3, 4)
        req = P.ReqControl(header, Control.PING, data=b"abc").encode()
        reply = P.encodeReplyControl(1, 2, 3, 4, 0, b"abc", b"")
        self.assertIsNotNone(P.routeReqControl(req))
        self.assertIsNotNone(P.routeReplyControl(reply))
        for bad in (
            req[:-1],  # unpadded or cut short
            req + b"\0" * 8,  # more than its length says
            struct.pack("<I", len(req) + 8) + req[4:] + b"\0" * 8,  # trailing bytes
            req[:4] + b"XXXX" + req[8:],  # magic
            req[:8] + struct.pack("<I", 2) + req[12:],  # version
            reply,  # another operation
            req[:40],  # short
        ):
            self.assertIsNone(P.routeReqControl(bad), bad)
        for bad in (
            reply[:-1],
            struct.pack("<I", len(reply) + 8) + reply[4:] + b"\0" * 8,
            req,
            reply[:20],
        ):
            self.assertIsNone(P.routeReplyControl(bad), bad)
