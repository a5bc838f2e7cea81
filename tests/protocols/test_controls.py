# -*- test-case-name: tests.protocols.test_controls -*-
"""
Tests for L{ctdb.protocols.controls}: round trips of every payload codec
(hypothesis), struct layouts from Samba 4.17, and the payloads of golden
packets captured from a real ctdbd.
"""

from __future__ import annotations

import socket
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ctdb.errors import MalformedPacket
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from tests.protocols.test_packet import loadGolden

u32 = st.integers(0, 0xFFFFFFFF)
i32 = st.integers(-(2**31), 2**31 - 1)
u64 = st.integers(0, 2**64 - 1)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: socket.inet_ntop(socket.AF_INET6, a.packed))
ports = st.integers(0, 0xFFFF)
#: names as tunables and var lists carry them: no NUL, no ':'
names = st.text(
    st.characters(exclude_characters=":\0", exclude_categories=["Cs"]),
    min_size=1,
    max_size=30,
)
#: seconds and microseconds of a struct timeval, as floats the codec uses
timevals = st.builds(
    lambda sec, usec: sec + usec / 1e6,
    st.integers(0, 2**31),
    st.integers(0, 999999),
)


def _timevalFields(t: float) -> tuple[int, int]:
    sec = int(t)
    return sec, round((t - sec) * 1e6)


def _payload(name: str) -> bytes:
    pkt = P.decodePacket(loadGolden(name))
    assert isinstance(pkt, (P.ReqControl, P.ReplyControl))
    return pkt.data


class ScalarTests(SynchronousTestCase):
    """u32, i32, u64 and strings."""

    @given(u32)
    def test_u32(self, value: int) -> None:
        """encodeU32/decodeU32 round trip, 4 little-endian bytes."""
        raw = C.encodeU32(value)
        self.assertEqual(raw, struct.pack("<I", value))
        self.assertEqual(C.decodeU32(raw), value)

    @given(i32)
    def test_i32(self, value: int) -> None:
        """encodeI32/decodeI32 round trip."""
        self.assertEqual(C.decodeI32(C.encodeI32(value)), value)

    @given(u64)
    def test_u64(self, value: int) -> None:
        """encodeU64/decodeU64 round trip."""
        self.assertEqual(C.decodeU64(C.encodeU64(value)), value)

    def test_u32Masks(self) -> None:
        """encodeU32 takes a negative status as its 32-bit two's complement."""
        self.assertEqual(C.encodeU32(-1), b"\xff\xff\xff\xff")

    @given(names)
    def test_string(self, text: str) -> None:
        """Strings are NUL terminated and decode up to the NUL."""
        raw = C.encodeString(text)
        self.assertEqual(raw[-1:], b"\0")
        self.assertEqual(C.decodeString(raw + b"junk"), text)

    def test_short(self) -> None:
        """Short scalar payloads are MalformedPacket."""
        for decode, size in ((C.decodeU32, 4), (C.decodeI32, 4), (C.decodeU64, 8)):
            self.assertRaises(MalformedPacket, decode, b"\0" * (size - 1))

    def test_stringNotUtf8(self) -> None:
        """A string that is not UTF-8 is MalformedPacket, not UnicodeDecodeError."""
        self.assertRaises(MalformedPacket, C.decodeString, b"\xff\xfe\0")


class SockAddrTests(SynchronousTestCase):
    """ctdb_sock_addr: a 28-byte sockaddr_in / sockaddr_in6 union."""

    @given(ipv4, ports)
    def test_v4(self, address: str, port: int) -> None:
        """IPv4: family (host order), port (network order), address, zeros."""
        raw = C.encodeSockAddr(address, port)
        self.assertEqual(len(raw), C.SOCK_ADDR_SIZE)
        self.assertEqual(struct.unpack_from("<H", raw)[0], socket.AF_INET)
        self.assertEqual(struct.unpack_from(">H", raw, 2)[0], port)
        self.assertEqual(raw[4:8], socket.inet_aton(address))
        self.assertEqual(raw[8:], b"\0" * 20)
        self.assertEqual(C.decodeSockAddr(raw), (address, port))

    @given(ipv6, ports)
    def test_v6(self, address: str, port: int) -> None:
        """IPv6: family, port, flowinfo 0, 16-byte address at 8, scope 0."""
        raw = C.encodeSockAddr(address, port)
        self.assertEqual(len(raw), C.SOCK_ADDR_SIZE)
        self.assertEqual(struct.unpack_from("<H", raw)[0], socket.AF_INET6)
        self.assertEqual(raw[8:24], socket.inet_pton(socket.AF_INET6, address))
        self.assertEqual(C.decodeSockAddr(raw), (address, port))

    def test_golden(self) -> None:
        """The first address of a real GET_NODEMAP reply: 127.0.77.1 port 4379."""
        data = _payload("node_reply_control_get_nodemap.hex")
        raw = data[12:40]
        self.assertEqual(C.decodeSockAddr(raw), ("127.0.77.1", 4379))
        self.assertEqual(C.encodeSockAddr("127.0.77.1", 4379), raw)

    def test_unknownFamily(self) -> None:
        """A family other than 0, AF_INET and AF_INET6 is MalformedPacket."""
        raw = struct.pack("<H", 99) + b"\0" * 26
        self.assertRaises(MalformedPacket, C.decodeSockAddr, raw)

    def test_emptyFamily(self) -> None:
        """An all-zero address (family 0) decodes as 0.0.0.0."""
        self.assertEqual(C.decodeSockAddr(b"\0" * 28), ("0.0.0.0", 0))

    def test_short(self) -> None:
        """Fewer than 28 bytes is MalformedPacket."""
        self.assertRaises(MalformedPacket, C.decodeSockAddr, b"\x02\0" + b"\0" * 25)


nodes = st.builds(C.NodeAndFlags, u32, u32, st.one_of(ipv4, ipv6), ports)


class NodeMapTests(SynchronousTestCase):
    """struct ctdb_node_map: count then 36-byte ctdb_node_and_flags."""

    @given(st.lists(nodes, max_size=20))
    def test_roundTrip(self, nodeList: list[C.NodeAndFlags]) -> None:
        """decodeNodeMap(encodeNodeMap(m)) == m; 4 + 36 bytes per node."""
        raw = C.encodeNodeMap(nodeList)
        self.assertEqual(len(raw), 4 + 36 * len(nodeList))
        self.assertEqual(C.decodeNodeMap(raw), nodeList)

    def test_golden(self) -> None:
        """A real 2-node GET_NODEMAP reply decodes, and encodes back identically."""
        data = _payload("node_reply_control_get_nodemap.hex")
        expected = [
            C.NodeAndFlags(0, C.NODE_FLAGS_UNHEALTHY, "127.0.77.1"),
            C.NodeAndFlags(1, 0, "127.0.77.2"),
        ]
        self.assertEqual(C.decodeNodeMap(data), expected)
        self.assertEqual(C.encodeNodeMap(expected), data)

    def test_defaultPort(self) -> None:
        """A node's address carries port 4379 unless told otherwise, as ctdbd's."""
        self.assertEqual(C.NodeAndFlags(0, 0, "10.0.0.1").port, P.CTDB_PORT)

    def test_truncated(self) -> None:
        """A count larger than the entries present is MalformedPacket."""
        raw = C.encodeNodeMap([C.NodeAndFlags(0, 0, "127.0.0.1")])
        self.assertRaises(MalformedPacket, C.decodeNodeMap, raw[:-1])
        self.assertRaises(MalformedPacket, C.decodeNodeMap, C.encodeU32(2**32 - 1))


class VnnMapTests(SynchronousTestCase):
    """struct ctdb_vnn_map: generation, size, map[size]."""

    @given(u32, st.lists(u32, max_size=40).map(tuple))
    def test_roundTrip(self, generation: int, vnns: tuple[int, ...]) -> None:
        """VnnMap round trips; 8 + 4 bytes per entry."""
        vnn = C.VnnMap(generation, vnns)
        raw = vnn.encode()
        self.assertEqual(len(raw), 8 + 4 * len(vnns))
        self.assertEqual(C.VnnMap.decode(raw), vnn)

    def test_golden(self) -> None:
        """A real GETVNNMAP reply and SETVNNMAP request carry the same map."""
        expected = C.VnnMap(1337230659, (0, 1))
        for name in (
            "node_reply_control_getvnnmap.hex",
            "node_req_control_setvnnmap.hex",
        ):
            data = _payload(name)
            self.assertEqual(C.VnnMap.decode(data), expected, name)
            self.assertEqual(expected.encode(), data, name)

    def test_truncated(self) -> None:
        """A size beyond the payload is MalformedPacket."""
        self.assertRaises(
            MalformedPacket, C.VnnMap.decode, struct.pack("<II", 1, 3) + b"\0" * 8
        )


class UptimeTests(SynchronousTestCase):
    """struct ctdb_uptime: four struct timeval (16 bytes each)."""

    @given(timevals, timevals, timevals, timevals)
    def test_roundTrip(self, a: float, b: float, c: float, d: float) -> None:
        """Uptime round trips to the microsecond; 64 bytes."""
        raw = C.Uptime(a, b, c, d).encode()
        self.assertEqual(len(raw), 64)
        decoded = C.Uptime.decode(raw)
        for got, want in zip(
            (
                decoded.current_time,
                decoded.ctdbd_start_time,
                decoded.last_recovery_started,
                decoded.last_recovery_finished,
            ),
            (a, b, c, d),
        ):
            self.assertEqual(_timevalFields(got), _timevalFields(want))
        self.assertEqual(decoded.encode(), raw)

    def test_golden(self) -> None:
        """Real UPTIME replies decode to sane times and re-encode identically."""
        for name in (
            "node_reply_control_uptime.hex",
            "client_reply_control_uptime.hex",
        ):
            data = _payload(name)
            up = C.Uptime.decode(data)
            self.assertEqual(up.encode(), data, name)
            self.assertLessEqual(up.ctdbd_start_time, up.last_recovery_started)
            self.assertLessEqual(up.last_recovery_started, up.last_recovery_finished)
            self.assertLessEqual(up.last_recovery_finished, up.current_time)
        up = C.Uptime.decode(_payload("node_reply_control_uptime.hex"))
        self.assertEqual(_timevalFields(up.ctdbd_start_time), (1795598119, 586558))

    def test_short(self) -> None:
        """63 bytes is MalformedPacket."""
        self.assertRaises(MalformedPacket, C.Uptime.decode, b"\0" * 63)


class TunableTests(SynchronousTestCase):
    """Tunable names, lists and the GET/SET_TUNABLE payloads."""

    @given(st.lists(names, max_size=30))
    def test_varListRoundTrip(self, varNames: list[str]) -> None:
        """encodeVarList/decodeVarList round trip."""
        self.assertEqual(C.decodeVarList(C.encodeVarList(varNames)), varNames)

    def test_varListGolden(self) -> None:
        """
        A real LIST_TUNABLES reply is exactly our encoding of our
        non-obsolete names (with ctdbd's leading ':').
        """
        data = _payload("node_reply_control_list_tunables.hex")
        expected = C.Tunables().names()
        self.assertEqual(C.decodeVarList(data), expected)
        self.assertEqual(C.encodeVarList(expected), data)
        self.assertEqual(len(expected), 49)

    def test_varListSkipsEmpty(self) -> None:
        """Empty names between colons are skipped, as strtok does."""
        text = b"::a::b:\0"
        self.assertEqual(C.decodeVarList(C.encodeU32(len(text)) + text), ["a", "b"])

    def test_varListTruncated(self) -> None:
        """A length beyond the payload is MalformedPacket."""
        self.assertRaises(MalformedPacket, C.decodeVarList, C.encodeU32(10) + b"abc")

    @given(names, u32)
    def test_setTunable(self, name: str, value: int) -> None:
        """struct ctdb_tunable: value, namelen, name (NUL included)."""
        raw = C.encodeSetTunable(name, value)
        self.assertEqual(
            struct.unpack_from("<II", raw), (value, len(name.encode()) + 1)
        )
        self.assertEqual(C.decodeSetTunable(raw), (name, value))

    def test_setTunableGolden(self) -> None:
        """The `ctdb setvar KeepaliveLimit 6` request payload."""
        data = _payload("client_req_control_set_tunable.hex")
        self.assertEqual(C.decodeSetTunable(data), ("KeepaliveLimit", 6))
        self.assertEqual(C.encodeSetTunable("KeepaliveLimit", 6), data)

    @given(names)
    def test_getTunable(self, name: str) -> None:
        """GET_TUNABLE: namelen, name (NUL included)."""
        self.assertEqual(C.decodeGetTunable(C.encodeGetTunable(name)), name)

    def test_getTunableGolden(self) -> None:
        """The `ctdb getvar KeepaliveInterval` request and its reply (5)."""
        for name in (
            "node_req_control_get_tunable.hex",
            "client_req_control_get_tunable.hex",
        ):
            data = _payload(name)
            self.assertEqual(C.decodeGetTunable(data), "KeepaliveInterval")
            self.assertEqual(C.encodeGetTunable("KeepaliveInterval"), data)
        self.assertEqual(_payload("node_reply_control_get_tunable.hex"), C.encodeU32(5))

    def test_getTunableShort(self) -> None:
        """The short GET_TUNABLE real ctdbd refused is MalformedPacket for us too."""
        data = _payload("client_req_control_short_get_tunable.hex")
        self.assertRaises(MalformedPacket, C.decodeGetTunable, data)

    def test_setTunableShort(self) -> None:
        """A name length beyond the payload is MalformedPacket."""
        self.assertRaises(
            MalformedPacket, C.decodeSetTunable, struct.pack("<II", 1, 9) + b"ab"
        )
        self.assertRaises(MalformedPacket, C.decodeSetTunable, b"\0" * 7)

    @settings(max_examples=30, deadline=None)
    @given(st.lists(u32, min_size=len(C.TUNABLES), max_size=len(C.TUNABLES)))
    def test_allTunables(self, values: list[int]) -> None:
        """GET_ALL_TUNABLES: one u32 per struct ctdb_tunable_list field."""
        tunables = C.Tunables()
        for (name, _, _), value in zip(C.TUNABLES, values):
            tunables.set(name, value)
        raw = tunables.encodeAll()
        self.assertEqual(len(raw), 4 * len(C.TUNABLES))
        self.assertEqual(
            C.Tunables.decodeAll(raw),
            {n: v for (n, _, _), v in zip(C.TUNABLES, values)},
        )

    def test_allTunablesShort(self) -> None:
        """A short tunable list is MalformedPacket."""
        self.assertRaises(
            MalformedPacket, C.Tunables.decodeAll, b"\0" * (4 * len(C.TUNABLES) - 1)
        )

    def test_tunablesTable(self) -> None:
        """62 tunables in struct order; the map order holds the same names."""
        self.assertEqual(len(C.TUNABLES), 62)
        self.assertEqual(
            sorted(n for n, _, _ in C.TUNABLES), sorted(C.TUNABLE_MAP_ORDER)
        )

    def test_caseInsensitive(self) -> None:
        """Tunables are looked up case-insensitively; unknown names are KeyError."""
        t = C.Tunables()
        t.set("keepaliveinterval", 7)
        self.assertEqual(t.get("KEEPALIVEINTERVAL"), 7)
        self.assertEqual(t.KeepaliveInterval, 7)
        self.assertRaises(KeyError, t.get, "NoSuchVar")


def _statistics(draw: st.DrawFn) -> C.Statistics:
    s = C.Statistics()
    for name in s.counters:
        s.counters[name] = draw(u32)
    for name in s.locks:
        s.locks[name] = draw(u32)
    for name in s.calls:
        s.calls[name] = draw(u32)
    s.locks_buckets = draw(st.lists(u32, min_size=16, max_size=16))
    s.hop_count_bucket = draw(st.lists(u32, min_size=16, max_size=16))
    floats = st.floats(0, 1e6, allow_nan=False)
    for attr in (
        "reclock_ctdbd",
        "reclock_recd",
        "locks_latency",
        "call_latency",
        "childwrite_latency",
    ):
        setattr(
            s,
            attr,
            C.LatencyCounter(draw(i32), draw(floats), draw(floats), draw(floats)),
        )
    s.num_recoveries = draw(u32)
    s.statistics_start_time = draw(timevals)
    s.statistics_current_time = draw(timevals)
    s.total_ro_delegations = draw(u32)
    s.total_ro_revokes = draw(u32)
    return s


statistics = st.composite(_statistics)()


class StatisticsTests(SynchronousTestCase):
    """struct ctdb_statistics: 488 bytes."""

    @settings(max_examples=50, deadline=None)
    @given(statistics)
    def test_roundTrip(self, stats: C.Statistics) -> None:
        """Statistics encode to 488 bytes and back (times to the microsecond)."""
        raw = stats.encode()
        self.assertEqual(len(raw), 488)
        decoded = C.Statistics.decode(raw)
        self.assertEqual(decoded.encode(), raw)
        self.assertEqual(decoded.counters, stats.counters)
        self.assertEqual(decoded.call_latency, stats.call_latency)
        self.assertEqual(decoded.hop_count_bucket, stats.hop_count_bucket)

    def test_offsets(self) -> None:
        """A few fields land where Samba's x86_64 struct puts them."""
        s = C.Statistics()
        s.counters["num_clients"] = 0x11
        s.counters["timeouts.traverse"] = 0x22
        s.reclock_ctdbd = C.LatencyCounter(0x33, 1.5, 2.5, 4.0)
        s.num_recoveries = 0x44
        s.total_ro_revokes = 0x55
        raw = s.encode()
        self.assertEqual(struct.unpack_from("<I", raw, 0)[0], 0x11)
        self.assertEqual(struct.unpack_from("<I", raw, 96)[0], 0x22)
        # reclock.ctdbd: 4 bytes of padding after the counters, then i32 num + pad + 3 doubles
        self.assertEqual(struct.unpack_from("<i4xddd", raw, 104), (0x33, 1.5, 2.5, 4.0))
        self.assertEqual(struct.unpack_from("<I", raw, 484)[0], 0x55)
        # call_latency after 4 pad bytes at 372; num_recoveries; pad; timevals
        self.assertEqual(struct.unpack_from("<i", raw, 376)[0], 0)
        self.assertEqual(struct.unpack_from("<I", raw, 440)[0], 0x44)
        s.statistics_start_time = 7.25
        self.assertEqual(struct.unpack_from("<qq", s.encode(), 448), (7, 250000))

    def test_golden(self) -> None:
        """A real STATISTICS reply decodes field by field and re-encodes identically."""
        data = _payload("client_reply_control_statistics.hex")
        self.assertEqual(len(data), 488)
        s = C.Statistics.decode(data)
        self.assertEqual(s.encode(), data)
        self.assertEqual(s.counters["num_clients"], 2)
        self.assertEqual(s.counters["client_packets_sent"], 141)
        self.assertEqual(s.counters["client_packets_recv"], 126)
        self.assertEqual(s.counters["node_packets_sent"], 285)
        self.assertEqual(s.counters["node.req_control"], 154)
        self.assertEqual(s.counters["node.reply_control"], 125)
        self.assertEqual(s.counters["client.req_control"], 125)
        self.assertEqual(s.calls["memory_used"], 79488)
        self.assertEqual(s.num_recoveries, 1)
        self.assertEqual(_timevalFields(s.statistics_start_time), (1795598119, 575972))

    def test_short(self) -> None:
        """487 bytes is MalformedPacket."""
        self.assertRaises(MalformedPacket, C.Statistics.decode, b"\0" * 487)


class SmallPayloadTests(SynchronousTestCase):
    """pid_srvid, ban_state and friends."""

    @given(i32, u64)
    def test_pidSrvid(self, pid: int, srvid: int) -> None:
        """struct ctdb_pid_srvid: pid_t then u64, packed to 12 bytes."""
        raw = C.encodePidSrvid(pid, srvid)
        self.assertEqual(len(raw), 12)
        self.assertEqual(C.decodePidSrvid(raw), (pid, srvid))

    @given(u32, u32)
    def test_banState(self, pnn: int, seconds: int) -> None:
        """struct ctdb_ban_state: pnn, time."""
        raw = C.encodeBanState(pnn, seconds)
        self.assertEqual(raw, struct.pack("<II", pnn, seconds))
        self.assertEqual(C.decodeBanState(raw), (pnn, seconds))

    def test_short(self) -> None:
        """Short small payloads are MalformedPacket."""
        self.assertRaises(MalformedPacket, C.decodePidSrvid, b"\0" * 11)
        self.assertRaises(MalformedPacket, C.decodeBanState, b"\0" * 7)

    def test_capabilitiesGolden(self) -> None:
        """A real GET_CAPABILITIES reply is CTDB_CAP_DEFAULT."""
        data = _payload("node_reply_control_get_capabilities.hex")
        self.assertEqual(C.decodeU32(data), C.CTDB_CAP_DEFAULT)

    def test_leaderGolden(self) -> None:
        """The leader broadcast carries the leader's pnn as a u32."""
        pkt = P.decodePacket(loadGolden("client_req_message_leader.hex"))
        assert isinstance(pkt, P.ReqMessage)
        self.assertEqual(C.decodeU32(pkt.data), 1)


class ControlTableTests(SynchronousTestCase):
    """Opcode numbers from protocol.h."""

    def test_someOpcodes(self) -> None:
        """Spot checks of enum ctdb_controls."""
        self.assertEqual(
            (
                C.Control.GET_PNN,
                C.Control.GET_NODEMAP,
                C.Control.GET_TUNABLE,
                C.Control.ECHO_DATA,
                C.Control.ENABLE_NODE,
            ),
            (35, 91, 49, 156, 158),
        )

    def test_controlName(self) -> None:
        """controlName names known and unknown opcodes."""
        self.assertEqual(C.controlName(3), "PING")
        self.assertEqual(C.controlName(9999), "UNKNOWN(9999)")

    def test_obsoleteAreControls(self) -> None:
        """Every obsolete opcode is a known control."""
        self.assertTrue(all(isinstance(c, C.Control) for c in C.OBSOLETE_CONTROLS))
