# -*- test-case-name: tests.takeover.test_packets -*-
"""
The frames public-IP takeover puts on the wire, built and read as Samba
4.17's C{ctdb/common/system_socket.c} does:

  - the gratuitous ARP request and reply that announce an IPv4 address's
    new MAC (C{arp_build}), and the unsolicited neighbour advertisement
    that does it for IPv6 (C{ip6_na_build});
  - the raw IPv4 or IPv6 TCP segment of a tickle ACK or a reset
    (C{tcp4_build}, C{tcp6_build}; C{ctdb_sys_send_tcp} sends it);
  - what a captured Ethernet frame carries when it is TCP
    (C{ctdb_sys_read_tcp_packet}), which C{ctdb_killtcp} answers with a
    reset.

Pure: no I/O, no Twisted import.  Addresses are strings and ports ints;
MAC addresses are 6 bytes.  Multi-byte fields are in network order.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

#: an (address, port) pair, the address as a string
Endpoint = tuple[str, int]
#: a TCP connection as (client, server)
Connection = tuple[Endpoint, Endpoint]

ETHERTYPE_IP = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IP6 = 0x86DD
IPPROTO_TCP = 6
IPPROTO_ICMPV6 = 58

ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2

ND_NEIGHBOR_ADVERT = 136
#: the override flag of a neighbour advertisement (the first byte's 0x20)
ND_NA_FLAG_OVERRIDE = 0x20000000
ND_OPT_TARGET_LINKADDR = 2

TH_FIN = 0x01
TH_SYN = 0x02
TH_RST = 0x04
TH_PUSH = 0x08
TH_ACK = 0x10

#: the window of every segment ctdbd makes (an odd value that stands out
#: in a capture); ctdb_killtcp also tells its own segments from the
#: client's by it
TICKLE_WINDOW = 1234

BROADCAST_MAC = b"\xff" * 6
#: the Ethernet address of IPv6 all-nodes multicast, ff02::1 (RFC 2464 s7)
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"
ALL_NODES = ipaddress.IPv6Address("ff02::1")

#: ctdbd sends every ARP frame in a buffer of at least 64 bytes, zeroed
MIN_FRAME = 64

_ETHER = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_NA = struct.Struct("!BBHI16s")
_OPT = struct.Struct("!BB6s")


@dataclass(frozen=True, slots=True)
class TCPSegment:
    """
    The fields of a captured TCP segment that ctdb_killtcp uses
    (C{tcp4_extract}, C{tcp6_extract}).

    @ivar src: the sender's (address, port).
    @ivar dst: the receiver's (address, port).
    @ivar seq: the sequence number.
    @ivar ack: the acknowledgement number (C{ack_seq}).
    @ivar flags: the C{TH_*} flags.
    @ivar window: the advertised window.
    """

    src: Endpoint
    dst: Endpoint
    seq: int
    ack: int
    flags: int
    window: int

    @property
    def rst(self) -> bool:
        """Whether the segment is a reset."""
        return bool(self.flags & TH_RST)

    def sentByCtdb(self) -> bool:
        """Whether this looks like a tickle ACK or a reset of ctdbd's own
        (window 1234, and a reset or sequence number 0): ctdb_killtcp's
        capture sees what it sends and ignores those."""
        return self.window == TICKLE_WINDOW and (self.rst or self.seq == 0)


def normalAddress(address: str) -> str:
    """C{address} in its one canonical spelling (C{ValueError} if it is
    not an IPv4 or IPv6 address)."""
    return str(ipaddress.ip_address(address))


# --- checksums (uint16_checksum, ip_checksum, ip6_checksum) ---------------------------


def onesComplementSum(data: bytes) -> int:
    """The 16-bit ones' complement sum of C{data} read as big-endian 16-bit
    words, an odd last byte padded with zero (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internetChecksum(data: bytes) -> int:
    """The checksum field that makes C{data}'s ones' complement sum 0xffff:
    what an IPv4 header carries."""
    return ~onesComplementSum(data) & 0xFFFF


def _pseudoChecksum(pseudo: bytes, data: bytes) -> int:
    """The transport checksum over a pseudo-header and C{data} (whose own
    checksum field is zero); 0 is sent as 0xffff, as ctdbd does."""
    value = ~onesComplementSum(pseudo + data) & 0xFFFF
    return value or 0xFFFF


def tcp4Checksum(src: str, dst: str, segment: bytes) -> int:
    """The TCP checksum of C{segment} between IPv4 C{src} and C{dst}."""
    pseudo = (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address(dst).packed
        + struct.pack("!BBH", 0, IPPROTO_TCP, len(segment))
    )
    return _pseudoChecksum(pseudo, segment)


def ip6Checksum(src: str, dst: str, nextHeader: int, payload: bytes) -> int:
    """The checksum of an upper-layer C{payload} (TCP, ICMPv6) between IPv6
    C{src} and C{dst} (RFC 8200 s8.1)."""
    pseudo = (
        ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + struct.pack("!IxxxB", len(payload), nextHeader)
    )
    return _pseudoChecksum(pseudo, payload)


# --- gratuitous ARP and neighbour advertisement (arp_build, ip6_na_build) -----------


def _checkMac(mac: bytes) -> None:
    if len(mac) != 6:
        raise ValueError(f"a MAC address is 6 bytes, not {len(mac)}")


def _pad(frame: bytes) -> bytes:
    return frame + b"\x00" * max(0, MIN_FRAME - len(frame))


def gratuitousArp(address: str, mac: bytes, reply: bool = False) -> bytes:
    """
    The gratuitous ARP frame ctdbd broadcasts for IPv4 C{address} now at
    C{mac}: a request (sender and target both C{address}, target MAC zero)
    or, with C{reply}, an unsolicited reply (target MAC C{mac} too).  The
    64-byte buffer of C{arp_build}, zero after the 42 bytes that matter.
    """
    _checkMac(mac)
    ip = ipaddress.IPv4Address(address).packed
    ether = _ETHER.pack(BROADCAST_MAC, mac, ETHERTYPE_ARP)
    arp = _ARP.pack(
        ARPHRD_ETHER,
        ETHERTYPE_IP,
        6,
        4,
        ARPOP_REPLY if reply else ARPOP_REQUEST,
        mac,
        ip,
        mac if reply else b"\x00" * 6,
        ip,
    )
    return _pad(ether + arp)


def neighbourAdvertisement(address: str, mac: bytes) -> bytes:
    """
    The unsolicited neighbour advertisement ctdbd multicasts to all nodes
    (ff02::1) for IPv6 C{address} now at C{mac}: hop limit 255, the
    override flag, and C{mac} as the target link-layer address option
    (C{ip6_na_build}; 86 bytes).
    """
    _checkMac(mac)
    target = ipaddress.IPv6Address(address)
    option = _OPT.pack(ND_OPT_TARGET_LINKADDR, 1, mac)
    icmp = _NA.pack(ND_NEIGHBOR_ADVERT, 0, 0, ND_NA_FLAG_OVERRIDE, target.packed)
    checksum = ip6Checksum(str(target), str(ALL_NODES), IPPROTO_ICMPV6, icmp + option)
    icmp = icmp[:2] + struct.pack("!H", checksum) + icmp[4:]
    ip6 = _IP6.pack(
        6 << 28,
        len(icmp) + len(option),
        IPPROTO_ICMPV6,
        255,
        target.packed,
        ALL_NODES.packed,
    )
    return _pad(_ETHER.pack(ALL_NODES_MAC, mac, ETHERTYPE_IP6) + ip6 + icmp + option)


def announcementFrames(address: str, mac: bytes) -> list[bytes]:
    """What C{ctdb_sys_send_arp} sends, in order, for C{address}: the ARP
    request and reply for IPv4, the neighbour advertisement for IPv6."""
    if ipaddress.ip_address(address).version == 4:
        return [gratuitousArp(address, mac), gratuitousArp(address, mac, reply=True)]
    return [neighbourAdvertisement(address, mac)]


# --- tickle ACK and reset (tcp4_build, tcp6_build) ----------------------------------


def _tcpHeader(src: Endpoint, dst: Endpoint, seq: int, ack: int, rst: bool) -> bytes:
    flags = TH_ACK | (TH_RST if rst else 0)
    seq &= 0xFFFFFFFF
    ack &= 0xFFFFFFFF
    return _TCP.pack(src[1], dst[1], seq, ack, 5 << 4, flags, TICKLE_WINDOW, 0, 0)


def tcpPacket(
    src: Endpoint, dst: Endpoint, seq: int = 0, ack: int = 0, rst: bool = False
) -> bytes:
    """
    The raw IP packet ctdbd sends from C{src} to C{dst}: a 20-byte TCP
    header with ACK (and RST if C{rst}), window 1234 and a correct
    checksum, behind an IPv4 header (TTL 255) or an IPv6 one (hop limit
    64).  With C{seq} and C{ack} 0 it is a tickle ACK; a reset of a
    connection carries the numbers captured from it.

    Samba sets the IPv4 total length to 8 (the size of a pointer); Linux
    rewrites it, the identification and the header checksum of whatever
    it is given, so this builds the header that goes on the wire: length
    40 and its checksum.
    """
    source = ipaddress.ip_address(src[0])
    target = ipaddress.ip_address(dst[0])
    for port in (src[1], dst[1]):
        if not 0 <= port <= 0xFFFF:
            raise ValueError(f"bad port {port}")
    if source.version != target.version:
        raise ValueError(f"{src[0]} and {dst[0]} are of different families")
    tcp = _tcpHeader(src, dst, seq, ack, rst)
    if source.version == 4:
        checksum = tcp4Checksum(str(source), str(target), tcp)
        tcp = tcp[:16] + struct.pack("!H", checksum) + tcp[18:]
        length = _IP4.size + len(tcp)
        header = _IP4.pack(
            0x45, 0, length, 0, 0, 255, IPPROTO_TCP, 0, source.packed, target.packed
        )
        header = header[:10] + struct.pack("!H", internetChecksum(header)) + header[12:]
        return header + tcp
    checksum = ip6Checksum(str(source), str(target), IPPROTO_TCP, tcp)
    tcp = tcp[:16] + struct.pack("!H", checksum) + tcp[18:]
    header = _IP6.pack(6 << 28, len(tcp), IPPROTO_TCP, 64, source.packed, target.packed)
    return header + tcp


def tickleAck(server: Endpoint, client: Endpoint) -> bytes:
    """The tickle ACK from C{server} (the public address) to C{client}:
    sequence and acknowledgement 0, which the client answers with an ACK
    carrying its real numbers."""
    return tcpPacket(server, client)


def resetFor(segment: TCPSegment) -> bytes:
    """The reset that kills the connection C{segment} (from the client)
    belongs to: from its receiver to its sender, with the segment's
    acknowledgement as sequence number and its sequence number as
    acknowledgement (C{reset_connections_capture_tcp_handler})."""
    return tcpPacket(segment.dst, segment.src, segment.ack, segment.seq, rst=True)


# --- reading a captured frame (ctdb_sys_read_tcp_packet) -----------------------------

#: the TCP header up to the checksum: what must be there to read a segment
_TCP_NEEDED = 16


def _segment(src: str, dst: str, frame: bytes, offset: int) -> TCPSegment:
    sport, dport, seq, ack, _off, flags, window = struct.unpack_from(
        "!HHIIBBH", frame, offset
    )
    return TCPSegment((src, sport), (dst, dport), seq, ack, flags, window)


def parseFrame(frame: bytes) -> TCPSegment | None:
    """
    The TCP segment in the captured Ethernet C{frame}, or None when it is
    not one that C{ctdb_sys_read_tcp_packet} reads: too short, neither IPv4
    nor IPv6, a later IPv4 fragment, or another protocol (an IPv6 extension
    header counts as one, as in Samba).
    """
    if len(frame) < _ETHER.size:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    ip = _ETHER.size
    if ethertype == ETHERTYPE_IP:
        if len(frame) < ip + _IP4.size:
            return None
        vhl, _tos, _len, _id, off, _ttl, proto, _sum, src, dst = _IP4.unpack_from(
            frame, ip
        )
        if vhl >> 4 != 4 or off & 0x1FFF or proto != IPPROTO_TCP:
            return None
        tcp = ip + (vhl & 0x0F) * 4
        if len(frame) < tcp + _TCP_NEEDED:
            return None
        return _segment(
            str(ipaddress.IPv4Address(src)),
            str(ipaddress.IPv4Address(dst)),
            frame,
            tcp,
        )
    if ethertype == ETHERTYPE_IP6:
        if len(frame) < ip + _IP6.size + _TCP_NEEDED:
            return None
        vtcfl, _plen, nxt, _hlim, src, dst = _IP6.unpack_from(frame, ip)
        if vtcfl >> 28 != 6 or nxt != IPPROTO_TCP:
            return None
        return _segment(
            str(ipaddress.IPv6Address(src)),
            str(ipaddress.IPv6Address(dst)),
            frame,
            ip + _IP6.size,
        )
    return None


def endpointString(endpoint: tuple[str, int]) -> str:
    """ctdb_sock_addr_to_buf with the port: a.b.c.d:port or [v6]:port."""
    address, port = endpoint
    if ":" in address:
        return f"[{address}]:{port}"
    return f"{address}:{port}"
