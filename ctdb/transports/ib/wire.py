# -*- test-case-name: tests.transports.ib.test_wire -*-
"""
What the InfiniBand transport puts in its registered buffers and in the
connection manager's private data.  Pure: no Twisted, no I/O.

Every message fills at most one buffer: an 8-byte header then payload.

    u8  kind      DATA (bytes of the CTDB packet stream) or CREDIT
    u8  reserved  0
    u16 credits   receive buffers the sender reposted for its peer (CREDIT)
    u32 seq       message number on this connection, from 0

The DATA payloads of a connection, in C{seq} order, are the same byte
stream the TCP transport carries (CTDB packets, each with its length
first), so small packets queued together share a buffer and a large one
spans as many as it needs; the receiver cuts packets out of the stream
with L{ctdb.protocols.framing}, as a TCP link does.

The connect request carries L{Hello} (who we are, how many credit
messages we can take); the accept carries L{Welcome} (the buffer size
and the receive buffers posted for our data: the initial credits).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ctdb.errors import MalformedPacket

DATA = 1
CREDIT = 2

HEADER = struct.Struct("<BBHI")
HEADER_SIZE = HEADER.size

#: "CTIB", version 1
MAGIC = b"CTIB"
VERSION = 1

_HELLO = struct.Struct("<4sBBHI")
_WELCOME = struct.Struct("<4sBBHI")
#: what an IB connect request can carry (rdma_cm's own header takes the
#: rest of the 92 bytes of CM private data)
MAX_CONNECT_PRIVATE_DATA = 56


def encodeHeader(kind: int, credits: int, seq: int) -> bytes:
    return HEADER.pack(kind, 0, credits, seq & 0xFFFFFFFF)


def decodeHeader(buf: bytes) -> tuple[int, int, int]:
    """(kind, credits, seq); L{MalformedPacket} for a short message or an
    unknown kind."""
    if len(buf) < HEADER_SIZE:
        raise MalformedPacket(f"IB message of {len(buf)} bytes, below its header")
    kind, _, credits, seq = HEADER.unpack_from(buf, 0)
    if kind not in (DATA, CREDIT):
        raise MalformedPacket(f"IB message of unknown kind {kind}")
    return kind, credits, seq


@dataclass(frozen=True, slots=True)
class Hello:
    """The connect request's private data: the connecting node's address
    (as in the nodes file; sent packed, 4 or 16 bytes), its buffer size
    and how many credit messages it has receive buffers posted for."""

    address: str
    bufferSize: int
    creditBuffers: int

    def encode(self) -> bytes:
        raw = ipaddress.ip_address(self.address).packed
        return (
            _HELLO.pack(MAGIC, VERSION, len(raw), self.creditBuffers, self.bufferSize)
            + raw
        )

    @classmethod
    def decode(cls, data: bytes) -> Hello:
        if len(data) < _HELLO.size:
            raise MalformedPacket("short IB connect private data")
        magic, version, size, creditBuffers, bufferSize = _HELLO.unpack_from(data)
        if magic != MAGIC or version != VERSION:
            raise MalformedPacket(f"IB connect from a stranger ({magic!r} {version})")
        raw = data[_HELLO.size : _HELLO.size + size]
        if size not in (4, 16) or len(raw) != size:
            raise MalformedPacket("IB connect private data cut short")
        return cls(str(ipaddress.ip_address(raw)), bufferSize, creditBuffers)


def canonical(address: str) -> str:
    """The one spelling of C{address} (IPv6 has many), as L{Hello} gives."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


@dataclass(frozen=True, slots=True)
class Welcome:
    """The accept's private data: the acceptor's buffer size and the
    receive buffers it posted for the connector's data."""

    bufferSize: int
    credits: int

    def encode(self) -> bytes:
        return _WELCOME.pack(MAGIC, VERSION, 0, self.credits, self.bufferSize)

    @classmethod
    def decode(cls, data: bytes) -> Welcome:
        if len(data) < _WELCOME.size:
            raise MalformedPacket("short IB accept private data")
        magic, version, _, credits, bufferSize = _WELCOME.unpack_from(data)
        if magic != MAGIC or version != VERSION:
            raise MalformedPacket(f"IB accept from a stranger ({magic!r} {version})")
        return cls(bufferSize, credits)
