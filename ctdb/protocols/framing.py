# -*- test-case-name: tests.protocols.test_framing -*-
"""
Stream framing shared by the node transport and the client socket: every
packet starts with a little-endian u32 length that counts itself and the rest
of the packet (ctdb/common/ctdb_io.c queue_process, tcp/tcp_io.c).
Modeled on twisted.protocols.basic.IntNStringReceiver.
"""

from __future__ import annotations

import struct

from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from ctdb.protocols.packet import (
    CTDB_DS_ALIGNMENT,
    CTDB_MAGIC,
    CTDB_PROTOCOL,
    HEADER_SIZE,
    MAX_LENGTH,
)

_PREFIX = struct.Struct("<III")
_LENGTH = struct.Struct("<I")


class CTDBPacketReceiver(Protocol):
    """
    Cut a byte stream into whole CTDB packets and hand each to
    L{packetReceived}.  A length of 0, below the header size or above
    C{MAX_LENGTH}, bad magic or version, or (when C{strictAlignment} is set, as
    on node links) a length that is not a multiple of 8 is a broken peer: it is
    logged and the connection is dropped.  Nothing raised by
    L{packetReceived} escapes into the reactor.

    A partial packet is kept in a C{bytearray} and only looked at again once
    enough bytes for it have arrived, so a large packet delivered in many
    small reads costs linear time, not quadratic (a 64 MiB packet in 64 KiB
    reads used to stall the reactor for seconds).  The header of a partial
    packet is checked as soon as its first 32 bytes are in, so a bad peer is
    dropped before we buffer what it claims to send.
    """

    log = Logger()
    MAX_LENGTH = MAX_LENGTH
    strictAlignment = False
    _buffer: bytearray | None = None
    #: bytes the buffer must hold before the next packet can be cut from it
    _needed = HEADER_SIZE
    _broken = False

    def dataReceived(self, data: bytes) -> None:
        if self._broken or not data:
            return
        if not self._buffer and type(data) is bytes:
            # The common read: exactly one whole packet and nothing kept
            # from before.  Hand it on without the general loop.
            size = len(data)
            if size >= HEADER_SIZE:
                length, magic, version = _PREFIX.unpack_from(data, 0)
                if (
                    length == size
                    and magic == CTDB_MAGIC
                    and version == CTDB_PROTOCOL
                    and length <= self.MAX_LENGTH
                    and not (self.strictAlignment and length % CTDB_DS_ALIGNMENT)
                ):
                    self._buffer = None
                    try:
                        self.packetReceived(data)
                    except Exception:  # noqa: BLE001 - nothing may escape
                        self.log.failure("error handling a packet; dropping connection")
                        self.malformed("handler error")
                        return
                    transport = self.transport
                    if transport is None or getattr(transport, "disconnecting", False):
                        self._broken = True
                    return
        started = self.severalStarted()
        try:
            self._received(data)
        finally:
            self.severalDone(started)

    def severalStarted(self) -> bool:
        """
        A read that is not exactly one packet is about to be handled: it
        may hold several, and a subclass may hold what they produce until
        L{severalDone}.  Returns what L{severalDone} gets.
        """
        return False

    def severalDone(self, started: bool) -> None:
        """The read that L{severalStarted} announced has been handled."""

    def _received(self, data: bytes) -> None:
        buf: bytes | bytearray
        if self._buffer:
            self._buffer += data
            if len(self._buffer) < self._needed:
                if self._needed == HEADER_SIZE:
                    self._checkLength(self._buffer)
                return
            buf = self._buffer
        else:
            buf = data
        offset = self._deliver(buf)
        if self._broken:
            self._buffer = None
            return
        if buf is self._buffer:
            del self._buffer[:offset]
        elif offset < len(buf):
            self._buffer = bytearray(memoryview(buf)[offset:])
        else:
            self._buffer = None
        rest = self._buffer
        if not rest or len(rest) < HEADER_SIZE:
            self._needed = HEADER_SIZE
            if rest:
                self._checkLength(rest)
        else:
            # _deliver stopped at a packet whose header it already checked.
            (self._needed,) = _LENGTH.unpack_from(rest, 0)

    def _deliver(self, buf: bytes | bytearray) -> int:
        """Hand every whole packet in C{buf} on; return the bytes used."""
        offset = 0
        end = len(buf)
        while end - offset >= HEADER_SIZE:
            length, magic, version = _PREFIX.unpack_from(buf, offset)
            if not (
                magic == CTDB_MAGIC
                and version == CTDB_PROTOCOL
                and HEADER_SIZE <= length <= self.MAX_LENGTH
                and not (self.strictAlignment and length % CTDB_DS_ALIGNMENT)
            ):
                problem = self._checkPrefix(length, magic, version)
                if problem is not None:
                    self.malformed(problem)
                    return offset
            if end - offset < length:
                break
            if type(buf) is bytes:
                # slicing bytes copies once (the whole buffer: not at all)
                packet = buf if length == end else buf[offset : offset + length]
            else:
                with memoryview(buf) as view:
                    packet = bytes(view[offset : offset + length])
            offset += length
            try:
                self.packetReceived(packet)
            except Exception:  # noqa: BLE001 - nothing may escape into the reactor
                self.log.failure("error handling a packet; dropping connection")
                self.malformed("handler error")
                return offset
            if (
                self._broken
                or self.transport is None
                or getattr(self.transport, "disconnecting", False)
            ):
                # The handler dropped the connection: ignore what follows.
                self._broken = True
                return offset
        return offset

    def _checkLength(self, buf: bytes | bytearray) -> None:
        """Drop the peer as soon as a partial packet's length is impossible."""
        if len(buf) >= 4:
            (length,) = _LENGTH.unpack_from(buf, 0)
            if length < HEADER_SIZE or length > self.MAX_LENGTH:
                self._buffer = None
                self.malformed(f"bad packet length {length}")

    def _checkPrefix(self, length: int, magic: int, version: int) -> str | None:
        if length < HEADER_SIZE or length > self.MAX_LENGTH:
            return f"bad packet length {length}"
        if self.strictAlignment and length % CTDB_DS_ALIGNMENT:
            return f"packet length {length} not a multiple of {CTDB_DS_ALIGNMENT}"
        if magic != CTDB_MAGIC:
            return f"bad magic 0x{magic:08x}"
        if version != CTDB_PROTOCOL:
            return f"bad protocol version {version}"
        return None

    def malformed(self, reason: str) -> None:
        """Log C{reason} and drop the connection (the node_dead path)."""
        self._broken = True
        peer = self.transport.getPeer() if self.transport is not None else None
        self.log.warn(
            "dropping connection from {peer}: {reason}", peer=peer, reason=reason
        )
        if self.transport is not None:
            self.transport.loseConnection()

    def packetReceived(self, packet: bytes) -> None:
        raise NotImplementedError
