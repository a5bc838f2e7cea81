# -*- test-case-name: tests.takeover.test_packets -*-
"""
Tests for L{ctdb.takeover.packets}: golden bytes of every frame, the
checksums, the parser of captured frames, and tshark's reading of the
frames (it decodes them and finds every checksum correct).
"""

from __future__ import annotations

import ipaddress
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ctdb.takeover import packets as P

MAC = bytes.fromhex("020000000001")
OTHER_MAC = bytes.fromhex("020000000002")


def hexBytes(text: str) -> bytes:
    """Bytes from hex written field by field: spaces, newlines and
    C{#} comments are ignored."""
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    return bytes.fromhex("".join("".join(lines).split()))


def ether(payload: bytes, ethertype: int, src: bytes = OTHER_MAC) -> bytes:
    """C{payload} in an Ethernet frame to L{MAC}."""
    return struct.pack("!6s6sH", MAC, src, ethertype) + payload


def ipFrame(packet: bytes) -> bytes:
    """An IP packet from L{P.tcpPacket} in an Ethernet frame."""
    version = packet[0] >> 4
    return ether(packet, P.ETHERTYPE_IP if version == 4 else P.ETHERTYPE_IP6)


# --- golden frames, written field by field ----------------------------------------

ARP_REQUEST = hexBytes(
    """
    ffffffffffff 020000000001 0806      # broadcast, from MAC, ARP
    0001 0800 06 04 0001                # Ethernet/IPv4, request
    020000000001 0a000001               # sender: MAC, 10.0.0.1
    000000000000 0a000001               # target: none, 10.0.0.1
    """
) + bytes(22)  # zero to 64 bytes

ARP_REPLY = hexBytes(
    """
    ffffffffffff 020000000001 0806
    0001 0800 06 04 0002                # reply
    020000000001 0a000001
    020000000001 0a000001               # target: MAC, 10.0.0.1
    """
) + bytes(22)

NEIGHBOUR_ADVERTISEMENT = hexBytes(
    """
    333300000001 020000000001 86dd      # all-nodes multicast, IPv6
    60000000 0020 3a ff                 # payload 32, ICMPv6, hop limit 255
    fd000000000000000000000000000001    # from fd00::1
    ff020000000000000000000000000001    # to ff02::1
    88 00 5a9b                          # neighbour advertisement, checksum
    20000000                            # override
    fd000000000000000000000000000001    # target fd00::1
    02 01 020000000001                  # target link-layer address: MAC
    """
)

TICKLE4 = hexBytes(
    """
    45 00 0028 0000 0000 ff 06 a7cd     # IPv4, length 40, TTL 255, TCP
    0a000001 0a000002                   # 10.0.0.1 -> 10.0.0.2
    01bd c738                           # 445 -> 51000
    00000000 00000000                   # seq 0, ack 0
    50 10 04d2 ce0a 0000                # ACK, window 1234, checksum
    """
)

RESET4 = hexBytes(
    """
    45 00 0028 0000 0000 ff 06 a7cd
    0a000001 0a000002
    01bd c738
    0001e240 0009fbf1                   # seq 123456, ack 654321
    50 14 04d2 efc9 0000                # RST|ACK
    """
)

TICKLE6 = hexBytes(
    """
    60000000 0014 06 40                 # payload 20, TCP, hop limit 64
    fd000000000000000000000000000001    # fd00::1
    fd000000000000000000000000000002    # fd00::2
    01bd c738 00000000 00000000
    50 10 04d2 e808 0000
    """
)

SERVER4 = ("10.0.0.1", 445)
CLIENT4 = ("10.0.0.2", 51000)
SERVER6 = ("fd00::1", 445)
CLIENT6 = ("fd00::2", 51000)


class GoldenTests(SynchronousTestCase):
    """The frames are byte for byte what system_socket.c builds."""

    def test_arpRequest(self) -> None:
        """The gratuitous ARP request: 64 bytes, zero-padded."""
        self.assertEqual(P.gratuitousArp("10.0.0.1", MAC), ARP_REQUEST)
        self.assertEqual(len(ARP_REQUEST), 64)

    def test_arpReply(self) -> None:
        """The unsolicited ARP reply names the MAC as target too."""
        self.assertEqual(P.gratuitousArp("10.0.0.1", MAC, reply=True), ARP_REPLY)

    def test_neighbourAdvertisement(self) -> None:
        """The unsolicited neighbour advertisement: 86 bytes."""
        self.assertEqual(
            P.neighbourAdvertisement("fd00::1", MAC), NEIGHBOUR_ADVERTISEMENT
        )
        self.assertEqual(len(NEIGHBOUR_ADVERTISEMENT), 86)

    def test_announcementFrames(self) -> None:
        """IPv4 gets the request then the reply; IPv6 the advertisement."""
        self.assertEqual(
            P.announcementFrames("10.0.0.1", MAC), [ARP_REQUEST, ARP_REPLY]
        )
        self.assertEqual(
            P.announcementFrames("fd00:0::1", MAC), [NEIGHBOUR_ADVERTISEMENT]
        )

    def test_tickle4(self) -> None:
        """The IPv4 tickle ACK: seq 0, ack 0, window 1234."""
        self.assertEqual(P.tcpPacket(SERVER4, CLIENT4), TICKLE4)
        self.assertEqual(P.tickleAck(SERVER4, CLIENT4), TICKLE4)

    def test_reset4(self) -> None:
        """An IPv4 reset with the numbers it is given."""
        self.assertEqual(P.tcpPacket(SERVER4, CLIENT4, 123456, 654321, True), RESET4)

    def test_tickle6(self) -> None:
        """The IPv6 tickle ACK, hop limit 64."""
        self.assertEqual(P.tcpPacket(SERVER6, CLIENT6), TICKLE6)

    def test_resetFor(self) -> None:
        """The reset answering a client's segment goes back to it, its ack
        as sequence number and its sequence number as ack."""
        segment = P.TCPSegment(CLIENT4, SERVER4, 654321, 123456, P.TH_ACK, 500)
        self.assertEqual(P.resetFor(segment), RESET4)

    def test_badArguments(self) -> None:
        """A MAC of the wrong size, addresses of two families, a bad port
        or a bad address is a ValueError."""
        self.assertRaises(ValueError, P.gratuitousArp, "10.0.0.1", b"\x01" * 5)
        self.assertRaises(ValueError, P.neighbourAdvertisement, "fd00::1", b"")
        self.assertRaises(ValueError, P.gratuitousArp, "fd00::1", MAC)
        self.assertRaises(ValueError, P.neighbourAdvertisement, "10.0.0.1", MAC)
        self.assertRaises(ValueError, P.tcpPacket, SERVER4, CLIENT6)
        self.assertRaises(ValueError, P.tcpPacket, ("10.0.0.1", 70000), CLIENT4)
        self.assertRaises(ValueError, P.tcpPacket, ("10.0.0.300", 1), CLIENT4)


class ChecksumTests(SynchronousTestCase):
    """The ones' complement sums and the checksums built on them."""

    def test_rfc1071(self) -> None:
        """The worked example of RFC 1071 section 3."""
        data = bytes.fromhex("0001f203f4f5f6f7")
        self.assertEqual(P.onesComplementSum(data), 0xDDF2)
        self.assertEqual(P.internetChecksum(data), 0x220D)

    def test_oddLength(self) -> None:
        """An odd last byte counts as the high byte of a word."""
        self.assertEqual(P.onesComplementSum(b"\x01\x02\x03"), 0x0402)

    def test_carries(self) -> None:
        """Carries wrap around: ffff + 0001 is 0001."""
        self.assertEqual(P.onesComplementSum(b"\xff\xff\x00\x01"), 0x0001)

    def test_zeroSentAsOnes(self) -> None:
        """A transport checksum that comes out 0 is sent as 0xffff, as
        ctdbd's ip_checksum and ip6_checksum do."""
        src, dst = "fd00::1", "fd00::2"
        pseudo = (
            ipaddress.IPv6Address(src).packed
            + ipaddress.IPv6Address(dst).packed
            + struct.pack("!IxxxB", 4, P.IPPROTO_TCP)
        )
        word = 0xFFFF - P.onesComplementSum(pseudo)
        payload = struct.pack("!HH", word, 0)
        self.assertEqual(P.ip6Checksum(src, dst, P.IPPROTO_TCP, payload), 0xFFFF)

    def test_ipv4Header(self) -> None:
        """An IPv4 header with its checksum sums to 0xffff."""
        self.assertEqual(P.onesComplementSum(TICKLE4[:20]), 0xFFFF)

    @given(
        st.tuples(st.ip_addresses(v=4), st.ip_addresses(v=4)),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 0xFFFFFFFF),
        st.booleans(),
    )
    def test_tcp4Verifies(
        self,
        addresses: tuple[object, object],
        sport: int,
        dport: int,
        seq: int,
        ack: int,
        rst: bool,
    ) -> None:
        """Every IPv4 segment verifies: the pseudo-header, the segment and
        its checksum sum to 0xffff; so does the IP header."""
        src, dst = (str(a) for a in addresses)
        packet = P.tcpPacket((src, sport), (dst, dport), seq, ack, rst)
        self.assertEqual(P.onesComplementSum(packet[:20]), 0xFFFF)
        pseudo = packet[12:20] + struct.pack("!BBH", 0, 6, 20)
        self.assertEqual(P.onesComplementSum(pseudo + packet[20:]), 0xFFFF)

    @given(
        st.tuples(st.ip_addresses(v=6), st.ip_addresses(v=6)),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 0xFFFFFFFF),
    )
    def test_tcp6Verifies(
        self, addresses: tuple[object, object], seq: int, ack: int
    ) -> None:
        """Every IPv6 segment verifies against its pseudo-header."""
        src, dst = (str(a) for a in addresses)
        packet = P.tcpPacket((src, 1), (dst, 2), seq, ack)
        pseudo = packet[8:40] + struct.pack("!IxxxB", 20, 6)
        self.assertEqual(P.onesComplementSum(pseudo + packet[40:]), 0xFFFF)

    @given(st.ip_addresses(v=6), st.binary(min_size=6, max_size=6))
    def test_advertisementVerifies(self, address: object, mac: bytes) -> None:
        """Every neighbour advertisement's ICMPv6 checksum verifies."""
        frame = P.neighbourAdvertisement(str(address), mac)
        ip6 = frame[14:54]
        pseudo = ip6[8:40] + struct.pack("!IxxxB", 32, 58)
        self.assertEqual(P.onesComplementSum(pseudo + frame[54:86]), 0xFFFF)


class ParseFrameTests(SynchronousTestCase):
    """parseFrame reads what ctdb_sys_read_tcp_packet reads, and nothing
    else."""

    @given(
        st.sampled_from([(SERVER4, CLIENT4), (SERVER6, CLIENT6)]),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 0xFFFFFFFF),
        st.booleans(),
    )
    def test_roundTrip(
        self, pair: tuple[P.Endpoint, P.Endpoint], seq: int, ack: int, rst: bool
    ) -> None:
        """A segment built here reads back with its endpoints, numbers,
        flags and window."""
        src, dst = pair
        segment = P.parseFrame(ipFrame(P.tcpPacket(src, dst, seq, ack, rst)))
        flags = P.TH_ACK | (P.TH_RST if rst else 0)
        self.assertEqual(
            segment, P.TCPSegment(src, dst, seq, ack, flags, P.TICKLE_WINDOW)
        )

    def test_clientAck(self) -> None:
        """A client's ACK: canonical addresses, its own window; not
        ctdbd's."""
        packet = bytearray(P.tcpPacket(CLIENT6, SERVER6, 1000, 2000))
        packet[40 + 14 : 40 + 16] = struct.pack("!H", 512)
        segment = P.parseFrame(ipFrame(bytes(packet)))
        assert segment is not None
        self.assertEqual(segment.src, ("fd00::2", 51000))
        self.assertEqual(segment.window, 512)
        self.assertFalse(segment.rst)
        self.assertFalse(segment.sentByCtdb())

    def test_sentByCtdb(self) -> None:
        """ctdb_killtcp's own tickles and resets are recognised; an ACK with
        window 1234 and a real sequence number is not one."""
        tickle = P.parseFrame(ipFrame(TICKLE4))
        reset = P.parseFrame(ipFrame(RESET4))
        other = P.parseFrame(ipFrame(P.tcpPacket(CLIENT4, SERVER4, 5, 6)))
        assert tickle is not None and reset is not None and other is not None
        self.assertTrue(tickle.sentByCtdb())
        self.assertTrue(reset.sentByCtdb())
        self.assertFalse(other.sentByCtdb())

    def test_ipOptions(self) -> None:
        """The TCP header is found after IPv4 options (IHL 6)."""
        packet = bytearray(TICKLE4[:20] + b"\x01\x01\x01\x00" + TICKLE4[20:])
        packet[0] = 0x46
        segment = P.parseFrame(ipFrame(bytes(packet)))
        assert segment is not None
        self.assertEqual((segment.src, segment.dst), (SERVER4, CLIENT4))

    def test_notTcp(self) -> None:
        """ARP, neighbour advertisements, UDP, later fragments, IPv6
        extension headers, wrong versions and unknown ethertypes give
        None."""
        udp = bytearray(TICKLE4)
        udp[9] = 17
        fragment = bytearray(TICKLE4)
        fragment[6:8] = b"\x00\x10"
        hopByHop = bytearray(TICKLE6)
        hopByHop[6] = 0
        version = bytearray(TICKLE4)
        version[0] = 0x65
        for frame in [
            ARP_REQUEST,
            NEIGHBOUR_ADVERTISEMENT,
            ipFrame(bytes(udp)),
            ipFrame(bytes(fragment)),
            ipFrame(bytes(hopByHop)),
            ether(bytes(version), P.ETHERTYPE_IP),
            ether(TICKLE4, 0x8100),
        ]:
            self.assertIsNone(P.parseFrame(frame))

    def test_firstFragment(self) -> None:
        """A first fragment (more-fragments set, offset 0) is read."""
        packet = bytearray(TICKLE4)
        packet[6:8] = b"\x20\x00"
        self.assertIsNotNone(P.parseFrame(ipFrame(bytes(packet))))

    def test_short(self) -> None:
        """Frames too short for the fields read give None, at every
        length; from the checksum on nothing more is needed."""
        for packet in (TICKLE4, TICKLE6):
            frame = ipFrame(packet)
            needed = len(frame) - 4
            for length in range(needed):
                self.assertIsNone(P.parseFrame(frame[:length]), length)
            self.assertIsNotNone(P.parseFrame(frame[:needed]))


def writePcap(path: Path, frames: list[bytes]) -> None:
    """A classic pcap file of Ethernet C{frames}, one a second."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for second, frame in enumerate(frames):
            f.write(struct.pack("<IIII", second, 0, len(frame), len(frame)))
            f.write(frame)


class TsharkTests(SynchronousTestCase):
    """tshark, an independent decoder, reads every frame as what it is
    meant to be, with correct checksums."""

    def test_decodes(self) -> None:
        """ARP request and reply, the neighbour advertisement, an IPv4
        tickle, an IPv4 reset and an IPv6 tickle."""
        tshark = shutil.which("tshark")
        if tshark is None:
            self.fail("tshark is not installed: run 'make install'")
        frames = [
            *P.announcementFrames("10.0.0.1", MAC),
            P.neighbourAdvertisement("fd00::1", MAC),
            ipFrame(P.tickleAck(SERVER4, CLIENT4)),
            ipFrame(P.tcpPacket(SERVER4, CLIENT4, 123456, 654321, rst=True)),
            ipFrame(P.tickleAck(SERVER6, CLIENT6)),
        ]
        directory = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, directory)
        pcap = directory / "takeover.pcap"
        writePcap(pcap, frames)
        done = subprocess.run(
            [
                tshark, "-n", "-r", str(pcap), "-V",
                "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
            ],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        decoded = done.stdout.split("\nFrame ")
        self.assertEqual(len(decoded), len(frames), done.stdout)
        mac = "02:00:00:00:00:01"
        expected = [
            [
                "Address Resolution Protocol (ARP Announcement)",
                "Opcode: request (1)",
                f"Sender MAC address: {mac}",
                "Sender IP address: 10.0.0.1",
                "Target IP address: 10.0.0.1",
            ],
            [
                "Address Resolution Protocol (reply/gratuitous ARP)",
                "Opcode: reply (2)",
                f"Sender MAC address: {mac}",
                f"Target MAC address: {mac}",
            ],
            [
                "Src: fd00::1, Dst: ff02::1",
                "Hop Limit: 255",
                "Type: Neighbor Advertisement (136)",
                "[correct]",
                "Override: Set",
                "Target Address: fd00::1",
                f"Link-layer address: {mac}",
            ],
            [
                "Src: 10.0.0.1, Dst: 10.0.0.2",
                "Time to Live: 255",
                "Header Checksum: 0xa7cd [correct]",
                "Src Port: 445, Dst Port: 51000",
                "Sequence Number (raw): 0",
                "Acknowledgment number (raw): 0",
                "Flags: 0x010 (ACK)",
                "Window: 1234",
                "Checksum: 0xce0a [correct]",
            ],
            [
                "Sequence Number (raw): 123456",
                "Acknowledgment number (raw): 654321",
                "Flags: 0x014 (RST, ACK)",
                "Checksum: 0xefc9 [correct]",
            ],
            [
                "Src: fd00::1, Dst: fd00::2",
                "Hop Limit: 64",
                "Flags: 0x010 (ACK)",
                "Window: 1234",
                "Checksum: 0xe808 [correct]",
            ],
        ]
        for text, wanted in zip(decoded, expected, strict=True):
            for line in wanted:
                self.assertIn(line, text)
            self.assertNotIn("incorrect", text)
            self.assertNotIn("Malformed", text)
