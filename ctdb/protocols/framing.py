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


class CTDBPacketReceiver(Protocol):
    """
    Cut a byte stream into whole CTDB packets and hand each to
    L{packetReceived}.  A length of 0, below the header size or above
    C{MAX_LENGTH}, bad magic or version, or (when C{strictAlignment} is set, as
    on node links) a length that is not a multiple of 8 is a broken peer: it is
    logged and the connection is dropped.  Nothing raised by
    L{packetReceived} escapes into the reactor.
    """

    log = Logger()
    MAX_LENGTH = MAX_LENGTH
    strictAlignment = False
    _buffer = b""
    _broken = False

    def dataReceived(self, data: bytes) -> None:
        if self._broken:
            return
        buf = self._buffer + data if self._buffer else data
        offset = 0
        end = len(buf)
        while end - offset >= HEADER_SIZE and not self._broken:
            length, magic, version = _PREFIX.unpack_from(buf, offset)
            problem = self._checkPrefix(length, magic, version)
            if problem is not None:
                self._buffer = b""
                self.malformed(problem)
                return
            if end - offset < length:
                break
            packet = buf[offset : offset + length]
            offset += length
            try:
                self.packetReceived(packet)
            except Exception:
                self.log.failure("error handling a packet; dropping connection")
                self._buffer = b""
                self.malformed("handler error")
                return
            if self.transport is None or getattr(self.transport, "disconnecting", False):
                self._buffer = b""
                return
        if self._broken:
            self._buffer = b""
            return
        if end - offset >= 4 and not self._broken:
            (length,) = struct.unpack_from("<I", buf, offset)
            if length < HEADER_SIZE or length > self.MAX_LENGTH:
                self._buffer = b""
                self.malformed(f"bad packet length {length}")
                return
        self._buffer = buf[offset:] if offset < end else b""

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
        self.log.warn("dropping connection from {peer}: {reason}", peer=peer, reason=reason)
        if self.transport is not None:
            self.transport.loseConnection()

    def packetReceived(self, packet: bytes) -> None:
        raise NotImplementedError
