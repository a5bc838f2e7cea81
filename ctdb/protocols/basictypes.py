# -*- test-case-name: tests.protocols.test_controls -*-
"""
The basic types of control payloads (Samba 4.17 ctdb/protocol/
protocol_basic.c and the small structs of protocol_types.c): integers,
NUL-terminated strings, C{ctdb_sock_addr}, C{ctdb_connection} and
C{ctdb_pid_srvid}, and the length check every decoder starts with.

Pure: no I/O, no Twisted import.  Layouts are x86_64 host order, i.e.
little-endian with C alignment, written out as explicit ``"<"`` formats.
"""

from __future__ import annotations

import socket
import struct

from ctdb.errors import MalformedPacket


def need(buf: bytes, size: int, what: str) -> None:
    """Raise L{MalformedPacket} unless C{buf} holds C{size} bytes."""
    if len(buf) < size:
        raise MalformedPacket(f"{what}: need {size} bytes, have {len(buf)}")


def encodeU32(value: int) -> bytes:
    return struct.pack("<I", value & 0xFFFFFFFF)


def decodeU32(buf: bytes, what: str = "uint32") -> int:
    need(buf, 4, what)
    return struct.unpack_from("<I", buf)[0]


def encodeI32(value: int) -> bytes:
    return struct.pack("<i", value)


def decodeI32(buf: bytes, what: str = "int32") -> int:
    need(buf, 4, what)
    return struct.unpack_from("<i", buf)[0]


def encodeU64(value: int) -> bytes:
    return struct.pack("<Q", value)


def decodeU64(buf: bytes, what: str = "uint64") -> int:
    need(buf, 8, what)
    return struct.unpack_from("<Q", buf)[0]


def encodeString(text: str | bytes) -> bytes:
    """A NUL-terminated string, as control payloads carry them."""
    raw = text.encode() if isinstance(text, str) else text
    return raw + b"\0"


def decodeString(buf: bytes, what: str = "string") -> str:
    """A NUL-terminated (or unterminated, datalen-bounded) string."""
    end = buf.find(b"\0")
    raw = buf if end < 0 else buf[:end]
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise MalformedPacket(f"{what} is not UTF-8") from None


# --- sock_addr (28 bytes: a raw ctdb_sock_addr union) ---------------------

SOCK_ADDR_SIZE = 28


def encodeSockAddr(address: str, port: int = 0) -> bytes:
    if ":" in address:
        packed = socket.inet_pton(socket.AF_INET6, address)
        return (
            struct.pack("<H", socket.AF_INET6)
            + struct.pack(">HI", port, 0)
            + packed
            + b"\0" * 4
        )
    packed = socket.inet_pton(socket.AF_INET, address)
    return (
        struct.pack("<H", socket.AF_INET)
        + struct.pack(">H", port)
        + packed
        + b"\0" * 20
    )


def decodeSockAddr(buf: bytes) -> tuple[str, int]:
    need(buf, SOCK_ADDR_SIZE, "sock_addr")
    (family,) = struct.unpack_from("<H", buf)
    (port,) = struct.unpack_from(">H", buf, 2)
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, buf[4:8]), port
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, buf[8:24]), port
    if family == 0:
        return "0.0.0.0", 0
    raise MalformedPacket(f"sock_addr: unknown family {family}")


# --- ctdb_connection (two sock_addrs: TCP_CLIENT, TCP_ADD, TCP_REMOVE) ------

CONNECTION_SIZE = 2 * SOCK_ADDR_SIZE


def encodeConnection(src: tuple[str, int], dst: tuple[str, int]) -> bytes:
    """struct ctdb_connection: the client's end, then the server's."""
    return encodeSockAddr(*src) + encodeSockAddr(*dst)


def decodeConnection(buf: bytes) -> tuple[tuple[str, int], tuple[str, int]]:
    need(buf, CONNECTION_SIZE, "connection")
    return decodeSockAddr(buf[:SOCK_ADDR_SIZE]), decodeSockAddr(
        buf[SOCK_ADDR_SIZE:CONNECTION_SIZE]
    )


# --- ctdb_pid_srvid ---------------------------------------------------------


def encodePidSrvid(pid: int, srvid: int) -> bytes:
    """struct ctdb_pid_srvid: pid_t then u64, packed (12 bytes)."""
    return struct.pack("<iQ", pid, srvid)


def decodePidSrvid(buf: bytes) -> tuple[int, int]:
    need(buf, 12, "pid_srvid")
    return struct.unpack_from("<iQ", buf)
