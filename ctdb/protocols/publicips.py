# -*- test-case-name: tests.protocols.test_publicips -*-
"""
The payloads of the public-IP controls (Samba 4.17 ctdb/protocol/
protocol.h and protocol_types.c): C{ctdb_public_ip} and its list,
C{ctdb_iface} and its list, C{ctdb_public_ip_info}, C{ctdb_addr_info} and
C{ctdb_tickle_list}.

An address travels as a C{ctdb_sock_addr} (L{encodeSockAddr}); a
connection as two, the client's end first.  Pure: no I/O, no Twisted.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ctdb.errors import MalformedPacket
from ctdb.protocols.basictypes import (
    CONNECTION_SIZE,
    SOCK_ADDR_SIZE,
    decodeConnection,
    decodeSockAddr,
    encodeConnection,
    encodeSockAddr,
    need,
)

#: GET_PUBLIC_IPS srvid flag: only the addresses this node may host now
CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE = 0x00010000
#: the wire size of an interface name, NUL included (CTDB_IFACE_SIZE + 2)
IFACE_NAME_SIZE = 18
#: the largest interface name a node accepts (IFNAMSIZ less the NUL)
IFACE_NAME_MAX = 15

Connection = tuple[tuple[str, int], tuple[str, int]]

_U32 = struct.Struct("<I")
_IFACE = struct.Struct(f"<{IFACE_NAME_SIZE}sHI")


def canonicalAddress(text: str) -> str:
    """C{text} as the one spelling every table keys addresses by.

    @raise ValueError: C{text} is not an IPv4 or IPv6 address.
    """
    return ipaddress.ip_address(text).compressed


def _count(buf: bytes, offset: int, size: int, what: str) -> int:
    need(buf[offset:], 4, what)
    (num,) = _U32.unpack_from(buf, offset)
    need(buf[offset + 4 :], num * size, what)
    return int(num)


# --- ctdb_public_ip (32) and ctdb_public_ip_list --------------------------------


@dataclass(frozen=True)
class PublicIP:
    """An address and the node that hosts it (C{CTDB_UNKNOWN_PNN} if none)."""

    pnn: int
    address: str

    SIZE = 4 + SOCK_ADDR_SIZE

    def encode(self) -> bytes:
        return _U32.pack(self.pnn & 0xFFFFFFFF) + encodeSockAddr(self.address)

    @classmethod
    def decode(cls, buf: bytes) -> PublicIP:
        need(buf, cls.SIZE, "public_ip")
        (pnn,) = _U32.unpack_from(buf)
        address, _port = decodeSockAddr(buf[4 : cls.SIZE])
        return cls(pnn, address)


def encodePublicIPList(ips: list[PublicIP]) -> bytes:
    return _U32.pack(len(ips)) + b"".join(ip.encode() for ip in ips)


def decodePublicIPList(buf: bytes) -> list[PublicIP]:
    num = _count(buf, 0, PublicIP.SIZE, "public_ip_list")
    return [
        PublicIP.decode(buf[4 + i * PublicIP.SIZE : 4 + (i + 1) * PublicIP.SIZE])
        for i in range(num)
    ]


# --- ctdb_iface (24) and ctdb_iface_list ----------------------------------------


@dataclass(frozen=True)
class Interface:
    """An interface public addresses live on: its link state (1 up, 0
    down) and how many addresses use it."""

    name: str
    link_state: int
    references: int

    SIZE = _IFACE.size

    def encode(self) -> bytes:
        raw = self.name.encode()[: IFACE_NAME_SIZE - 1]
        return _IFACE.pack(raw, self.link_state, self.references)

    @classmethod
    def decode(cls, buf: bytes) -> Interface:
        need(buf, cls.SIZE, "iface")
        raw, link, refs = _IFACE.unpack_from(buf)
        name = raw.split(b"\0", 1)[0]
        try:
            return cls(name.decode(), link, refs)
        except UnicodeDecodeError:
            raise MalformedPacket("iface: name is not UTF-8") from None


def encodeInterfaceList(ifaces: list[Interface]) -> bytes:
    return _U32.pack(len(ifaces)) + b"".join(i.encode() for i in ifaces)


def decodeInterfaceList(buf: bytes) -> tuple[list[Interface], int]:
    """The list and the bytes it took."""
    num = _count(buf, 0, Interface.SIZE, "iface_list")
    out = [Interface.decode(buf[4 + i * Interface.SIZE :]) for i in range(num)]
    return out, 4 + num * Interface.SIZE


# --- ctdb_public_ip_info ------------------------------------------------------------


@dataclass(frozen=True)
class PublicIPInfo:
    """GET_PUBLIC_IP_INFO's answer: the address and its owner, the index
    of the interface it is up on (in C{ifaces}), and the interfaces it
    may use."""

    ip: PublicIP
    active_idx: int
    ifaces: list[Interface]

    def encode(self) -> bytes:
        return (
            self.ip.encode()
            + _U32.pack(self.active_idx & 0xFFFFFFFF)
            + encodeInterfaceList(self.ifaces)
        )

    @classmethod
    def decode(cls, buf: bytes) -> PublicIPInfo:
        ip = PublicIP.decode(buf)
        need(buf, PublicIP.SIZE + 4, "public_ip_info")
        (idx,) = _U32.unpack_from(buf, PublicIP.SIZE)
        ifaces, _ = decodeInterfaceList(buf[PublicIP.SIZE + 4 :])
        return cls(ip, idx, ifaces)


# --- ctdb_addr_info -------------------------------------------------------------


@dataclass(frozen=True)
class AddrInfo:
    """ADD_PUBLIC_IP, DEL_PUBLIC_IP and SEND_GRATUITOUS_ARP: an address,
    its mask bits and an interface (or interfaces, comma-separated; C{None}
    is a string of length 0 on the wire)."""

    address: str
    mask: int
    iface: str | None

    def encode(self) -> bytes:
        if self.iface is None:
            tail = _U32.pack(0)
        else:
            raw = self.iface.encode() + b"\0"
            tail = _U32.pack(len(raw)) + raw
        return encodeSockAddr(self.address) + _U32.pack(self.mask & 0xFFFFFFFF) + tail

    @classmethod
    def decode(cls, buf: bytes) -> AddrInfo:
        need(buf, SOCK_ADDR_SIZE + 8, "addr_info")
        address, _port = decodeSockAddr(buf)
        mask, length = struct.unpack_from("<II", buf, SOCK_ADDR_SIZE)
        raw = buf[SOCK_ADDR_SIZE + 8 : SOCK_ADDR_SIZE + 8 + length]
        if len(raw) < length:
            raise MalformedPacket(f"addr_info: iface needs {length} bytes")
        if length == 0:
            return cls(address, mask, None)
        try:
            iface = raw.split(b"\0", 1)[0].decode()
        except UnicodeDecodeError:
            raise MalformedPacket("addr_info: iface is not UTF-8") from None
        return cls(address, mask, iface)


# --- ctdb_tickle_list -----------------------------------------------------------------


@dataclass(frozen=True)
class TickleList:
    """The client connections of one public address (with its port when
    asked for one port), each as (client end, server end)."""

    address: tuple[str, int]
    connections: list[Connection]

    def encode(self) -> bytes:
        return (
            encodeSockAddr(*self.address)
            + _U32.pack(len(self.connections))
            + b"".join(encodeConnection(src, dst) for src, dst in self.connections)
        )

    @classmethod
    def decode(cls, buf: bytes) -> TickleList:
        address = decodeSockAddr(buf)
        num = _count(buf, SOCK_ADDR_SIZE, CONNECTION_SIZE, "tickle_list")
        start = SOCK_ADDR_SIZE + 4
        conns = [
            decodeConnection(buf[start + i * CONNECTION_SIZE :]) for i in range(num)
        ]
        return cls(address, conns)
