# -*- test-case-name: tests.protocols.test_packet -*-
"""
The CTDB wire format: the 32-byte header and every packet type of the
Samba 4.17 protocol (ctdb/protocol/protocol.h, protocol_header.c,
protocol_call.c, protocol_message.c, protocol_control.c,
protocol_keepalive.c, protocol_tunnel.c).

Pure: no I/O and no Twisted import.  Every type has ``encode() -> bytes``
and ``decode(buf) -> (obj, consumed)``; ``decodePacket`` decodes a whole
framed packet into the right type.  ctdbd uses host byte order; every
platform we support is little-endian, so formats are explicit ``"<"``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any, ClassVar, Self

from ctdb.errors import MalformedPacket

CTDB_MAGIC = 0x43544442
CTDB_PROTOCOL = 1
CTDB_PORT = 4379
CTDB_DS_ALIGNMENT = 8
HEADER_SIZE = 32
#: ctdbd refuses nothing below 4 GiB, but a packet of more than this is a
#: broken or hostile peer.  Records and recovery buffers stay well below it.
MAX_LENGTH = 64 * 1024 * 1024

CTDB_CURRENT_NODE = 0xF0000001
CTDB_BROADCAST_ALL = 0xF0000002
CTDB_BROADCAST_ACTIVE = 0xF0000003
CTDB_BROADCAST_CONNECTED = 0xF0000004
CTDB_MULTICAST = 0xF0000005
CTDB_UNKNOWN_PNN = 0xFFFFFFFF
BROADCASTS = frozenset(
    (CTDB_BROADCAST_ALL, CTDB_BROADCAST_ACTIVE, CTDB_BROADCAST_CONNECTED)
)

INVALID_GENERATION = 1

# REQ_CALL flags and call ids
CTDB_IMMEDIATE_MIGRATION = 0x1
CTDB_CALL_FLAG_VACUUM_MIGRATION = 0x2
CTDB_WANT_READONLY = 0x4
CTDB_NULL_FUNC = 0xFF000001
CTDB_FETCH_FUNC = 0xFF000002
CTDB_FETCH_WITH_HEADER_FUNC = 0xFF000003

# REQ_CONTROL flags
CTDB_CTRL_FLAG_NOREPLY = 0x1
CTDB_CTRL_FLAG_OPCODE_SPECIFIC = 0xFFFF0000
CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE = 0x10000
CTDB_CTRL_FLAG_ATTACH_RECOVERY = 0x20000

# REQ_TUNNEL flags
CTDB_TUNNEL_FLAG_REQUEST = 0x1
CTDB_TUNNEL_FLAG_REPLY = 0x2
CTDB_TUNNEL_FLAG_NOREPLY = 0x10
CTDB_TUNNEL_TEST = 0xFFFFFFFF00000000


class Operation(IntEnum):
    """``enum ctdb_operation``."""

    REQ_CALL = 0
    REPLY_CALL = 1
    REQ_DMASTER = 2
    REPLY_DMASTER = 3
    REPLY_ERROR = 4
    REQ_MESSAGE = 5
    REQ_CONTROL = 7
    REPLY_CONTROL = 8
    REQ_KEEPALIVE = 9
    REQ_TUNNEL = 10


_HEADER = struct.Struct("<8I")
#: plain ints, for comparisons on the hot paths
_OP_REQ_CONTROL = int(Operation.REQ_CONTROL)
_OP_REPLY_CONTROL = int(Operation.REPLY_CONTROL)


def padded(length: int) -> int:
    """Round C{length} up to ctdbd's 8-byte packet alignment."""
    return (length + CTDB_DS_ALIGNMENT - 1) & ~(CTDB_DS_ALIGNMENT - 1)


def _need(buf: bytes | memoryview, offset: int, size: int, what: str) -> None:
    if len(buf) < offset + size:
        raise MalformedPacket(f"{what}: need {offset + size} bytes, have {len(buf)}")


@dataclass(frozen=True, slots=True)
class Header:
    """``struct ctdb_req_header`` without length, magic and version."""

    operation: int
    destnode: int = 0
    srcnode: int = 0
    reqid: int = 0
    generation: int = 0

    def encode(self, length: int) -> bytes:
        return _HEADER.pack(
            length,
            CTDB_MAGIC,
            CTDB_PROTOCOL,
            self.generation,
            self.operation,
            self.destnode,
            self.srcnode,
            self.reqid,
        )

    @classmethod
    def decode(cls, buf: bytes | memoryview) -> tuple[Header, int]:
        """Decode and verify a header; returns it and the packet length."""
        _need(buf, 0, HEADER_SIZE, "header")
        (length, magic, version, generation, operation, destnode, srcnode, reqid) = (
            _HEADER.unpack_from(buf, 0)
        )
        if length < HEADER_SIZE:
            raise MalformedPacket(f"packet length {length} below header size")
        if magic != CTDB_MAGIC:
            raise MalformedPacket(f"bad magic 0x{magic:08x}")
        if version != CTDB_PROTOCOL:
            raise MalformedPacket(f"bad protocol version {version}")
        return cls(operation, destnode, srcnode, reqid, generation), length


def _frame(header: Header, body: bytes) -> bytes:
    """Header + body, zero padded to 8 with the padded length in the header."""
    raw = HEADER_SIZE + len(body)
    total = padded(raw)
    return header.encode(total) + body + b"\0" * (total - raw)


_setField = object.__setattr__


def _maker(cls: type) -> Callable[..., Any]:
    """
    A constructor of C{cls} (a frozen slots dataclass) taking every field
    positionally, for the decoders: it fills the slots through their member
    descriptors, which is what the generated C{__init__} does through
    C{object.__setattr__}, at about a third of the cost.  No defaults and no
    validation: the caller passes every field.
    """
    names = [f.name for f in fields(cls)]
    setters = {f"_s{i}": cls.__dict__[name].__set__ for i, name in enumerate(names)}
    args = ", ".join(f"a{i}" for i in range(len(names)))
    body = "".join(f"    _s{i}(o, a{i})\n" for i in range(len(names)))
    source = f"def make({args}):\n    o = _new(_cls)\n{body}    return o\n"
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, **setters}
    exec(source, namespace)  # noqa: S102 - fixed source built from field names
    make: Callable[..., Any] = namespace["make"]
    make.__qualname__ = f"{cls.__name__}._make"
    return make


class _Packet:
    """Shared behaviour of every packet type."""

    operation: ClassVar[Operation]
    header: Header

    def body(self) -> bytes:
        raise NotImplementedError

    def encode(self) -> bytes:
        return _frame(self.header, self.body())

    def withHeader(self, **changes: int) -> Self:
        """A copy with some header fields changed (destnode, reqid, ...)."""
        h = self.header
        header = Header(
            changes.pop("operation", h.operation),
            changes.pop("destnode", h.destnode),
            changes.pop("srcnode", h.srcnode),
            changes.pop("reqid", h.reqid),
            changes.pop("generation", h.generation),
        )
        if changes:
            raise TypeError(f"Header has no field(s) {sorted(changes)}")
        # dataclasses.replace() costs ~6 us a call, and the daemon does this
        # for every control it serves; copying the slots directly is the
        # same thing (what a frozen dataclass's __init__ does) at a tenth.
        cls = type(self)
        copy = object.__new__(cls)
        for name in cls.__slots__:  # type: ignore[attr-defined]
            _setField(copy, name, header if name == "header" else getattr(self, name))
        return copy


def _blob(buf: bytes | memoryview, offset: int, size: int, what: str) -> bytes:
    _need(buf, offset, size, what)
    return bytes(buf[offset : offset + size])


@dataclass(frozen=True, slots=True)
class ReqCall(_Packet):
    operation: ClassVar[Operation] = Operation.REQ_CALL
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<6I")
    header: Header
    flags: int
    db_id: int
    callid: int
    hopcount: int
    key: bytes
    calldata: bytes = b""

    def body(self) -> bytes:
        return (
            self._FIXED.pack(
                self.flags,
                self.db_id,
                self.callid,
                self.hopcount,
                len(self.key),
                len(self.calldata),
            )
            + self.key
            + self.calldata
        )

    def encode(self) -> bytes:
        # _frame(header, body()) in one pack (the record protocol's hot path)
        h = self.header
        key = self.key
        calldata = self.calldata
        raw = _WHOLE_REQ_CALL.size + len(key) + len(calldata)
        total = (raw + 7) & ~7
        return (
            _WHOLE_REQ_CALL.pack(
                total,
                CTDB_MAGIC,
                CTDB_PROTOCOL,
                h.generation,
                h.operation,
                h.destnode,
                h.srcnode,
                h.reqid,
                self.flags,
                self.db_id,
                self.callid,
                self.hopcount,
                len(key),
                len(calldata),
            )
            + key
            + calldata
            + _PADDING[total - raw]
        )

    @classmethod
    def decodeBody(cls, header: Header, buf: bytes | memoryview) -> ReqCall:
        _need(buf, HEADER_SIZE, cls._FIXED.size, "REQ_CALL")
        flags, db_id, callid, hopcount, keylen, datalen = cls._FIXED.unpack_from(
            buf, HEADER_SIZE
        )
        off = HEADER_SIZE + cls._FIXED.size
        mid = off + keylen
        if mid + datalen <= len(buf):
            # the whole packet is there: no per-field checks
            return _makeReqCall(
                header,
                flags,
                db_id,
                callid,
                hopcount,
                bytes(buf[off:mid]),
                bytes(buf[mid : mid + datalen]),
            )
        key = _blob(buf, off, keylen, "REQ_CALL key")
        calldata = _blob(buf, off + keylen, datalen, "REQ_CALL data")
        return _makeReqCall(header, flags, db_id, callid, hopcount, key, calldata)


@dataclass(frozen=True, slots=True)
class ReplyCall(_Packet):
    operation: ClassVar[Operation] = Operation.REPLY_CALL
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<iI")
    header: Header
    status: int
    data: bytes = b""

    def body(self) -> bytes:
        return self._FIXED.pack(self.status, len(self.data)) + self.data

    def encode(self) -> bytes:
        h = self.header
        data = self.data
        raw = _WHOLE_REPLY_CALL.size + len(data)
        total = (raw + 7) & ~7
        return (
            _WHOLE_REPLY_CALL.pack(
                total,
                CTDB_MAGIC,
                CTDB_PROTOCOL,
                h.generation,
                h.operation,
                h.destnode,
                h.srcnode,
                h.reqid,
                self.status,
                len(data),
            )
            + data
            + _PADDING[total - raw]
        )

    @classmethod
    def decodeBody(cls, header: Header, buf: bytes | memoryview) -> ReplyCall:
        _need(buf, HEADER_SIZE, 8, "REPLY_CALL")
        status, datalen = cls._FIXED.unpack_from(buf, HEADER_SIZE)
        return _makeReplyCall(
            header, status, _blob(buf, HEADER_SIZE + 8, datalen, "data")
        )


_RECORD_FLAGS = struct.Struct("<I")


def _recordTail(key: bytes, data: bytes, record_flags: int) -> bytes:
    """Key, data and the record-flags word that end REQ/REPLY_DMASTER."""
    return key + data + _RECORD_FLAGS.pack(record_flags)


def _decodeRecordTail(
    buf: bytes | memoryview, off: int, keylen: int, datalen: int, what: str
) -> tuple[bytes, bytes, int]:
    """(key, data, record_flags) at C{off}; a pre-4.17 peer sends no flags."""
    mid = off + keylen
    end = mid + datalen
    if end + _RECORD_FLAGS.size <= len(buf):
        # the whole tail is there: no per-field checks (what is not used)
        return (
            bytes(buf[off:mid]),
            bytes(buf[mid:end]),
            _RECORD_FLAGS.unpack_from(buf, end)[0],
        )
    key = _blob(buf, off, keylen, f"{what} key")
    data = _blob(buf, off + keylen, datalen, f"{what} data")
    flags = 0
    end = off + keylen + datalen
    if len(buf) >= end + 4:
        (flags,) = _RECORD_FLAGS.unpack_from(buf, end)
    return key, data, flags


@dataclass(frozen=True, slots=True)
class ReqDmaster(_Packet):
    """REQ_DMASTER, with the trailing record-flags word the 4.17 daemon adds."""

    operation: ClassVar[Operation] = Operation.REQ_DMASTER
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<I4xQIII")
    header: Header
    db_id: int
    rsn: int
    dmaster: int
    key: bytes
    data: bytes
    record_flags: int = 0

    def body(self) -> bytes:
        return self._FIXED.pack(
            self.db_id, self.rsn, self.dmaster, len(self.key), len(self.data)
        ) + _recordTail(self.key, self.data, self.record_flags)

    def encode(self) -> bytes:
        h = self.header
        key = self.key
        data = self.data
        raw = _WHOLE_REQ_DMASTER.size + len(key) + len(data) + _RECORD_FLAGS.size
        total = (raw + 7) & ~7
        return (
            _WHOLE_REQ_DMASTER.pack(
                total,
                CTDB_MAGIC,
                CTDB_PROTOCOL,
                h.generation,
                h.operation,
                h.destnode,
                h.srcnode,
                h.reqid,
                self.db_id,
                self.rsn,
                self.dmaster,
                len(key),
                len(data),
            )
            + key
            + data
            + _RECORD_FLAGS.pack(self.record_flags)
            + _PADDING[total - raw]
        )

    @classmethod
    def decodeBody(cls, header: Header, buf: bytes | memoryview) -> ReqDmaster:
        _need(buf, HEADER_SIZE, cls._FIXED.size, "REQ_DMASTER")
        db_id, rsn, dmaster, keylen, datalen = cls._FIXED.unpack_from(buf, HEADER_SIZE)
        key, data, flags = _decodeRecordTail(
            buf, HEADER_SIZE + cls._FIXED.size, keylen, datalen, "REQ_DMASTER"
        )
        return _makeReqDmaster(header, db_id, rsn, dmaster, key, data, flags)


@dataclass(frozen=True, slots=True)
class ReplyDmaster(_Packet):
    operation: ClassVar[Operation] = Operation.REPLY_DMASTER
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<I4xQII")
    header: Header
    db_id: int
    rsn: int
    key: bytes
    data: bytes
    record_flags: int = 0

    def body(self) -> bytes:
        return self._FIXED.pack(
            self.db_id, self.rsn, len(self.key), len(self.data)
        ) + _recordTail(self.key, self.data, self.record_flags)

    def encode(self) -> bytes:
        h = self.header
        key = self.key
        data = self.data
        raw = _WHOLE_REPLY_DMASTER.size + len(key) + len(data) + _RECORD_FLAGS.size
        total = (raw + 7) & ~7
        return (
            _WHOLE_REPLY_DMASTER.pack(
                total,
                CTDB_MAGIC,
                CTDB_PROTOCOL,
                h.generation,
                h.operation,
                h.destnode,
                h.srcnode,
                h.reqid,
                self.db_id,
                self.rsn,
                len(key),
                len(data),
            )
            + key
            + data
            + _RECORD_FLAGS.pack(self.record_flags)
            + _PADDING[total - raw]
        )

    @classmethod
    def decodeBody(cls, header: Header, buf: bytes | memoryview) -> ReplyDmaster:
        _need(buf, HEADER_SIZE, cls._FIXED.size, "REPLY_DMASTER")
        db_id, rsn, keylen, datalen = cls._FIXED.unpack_from(buf, HEADER_SIZE)
        key, data, flags = _decodeRecordTail(
            buf, HEADER_SIZE + cls._FIXED.size, keylen, datalen, "REPLY_DMASTER"
        )
        return _makeReplyDmaster(header, db_id, rsn, key, data, flags)


@dataclass(frozen=True, slots=True)
class ReplyError(_Packet):
    operation: ClassVar[Operation] = Operation.REPLY_ERROR
    header: Header
    status: int
    msg: bytes = b""

    def body(self) -> bytes:
        return struct.pack("<iI", self.status, len(self.msg)) + self.msg

    @classmethod
    def decodeBody(cls, header: Header, buf: bytes | memoryview) -> ReplyError:
        _need(buf, HEADER_SIZE, 8, "REPLY_ERROR")
        status, msglen = struct.unpack_from("<iI", buf, HEADER_SIZE)
        return cls(header, status, _blob(buf, HEADER_SIZE + 8, msglen, "msg"))


@dataclass(frozen=True, slots=True)
class ReqMessage(_Packet):
    operation: ClassVar[Operation] = Operation.REQ_MESSAGE
    header: Header
    srvid: int
    data: bytes = b""

    def body(self) -> bytes:
        return struct.pack("<QI", self.srvid, len(self.data)) + self.data

    @classmethod
    def decodeBody(cls, header: Header, buf: bytes | memoryview) -> ReqMessage:
        _need(buf, HEADER_SIZE, 12, "REQ_MESSAGE")
        srvid, datalen = struct.unpack_from("<QI", buf, HEADER_SIZE)
        return _makeReqMessage(
            header, srvid, _blob(buf, HEADER_SIZE + 12, datalen, "data")
        )


@dataclass(frozen=True, slots=True)
class ReqControl(_Packet):
    operation: ClassVar[Operation] = Operation.REQ_CONTROL
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<I4xQIII")
    header: Header
    opcode: int
    srvid: int = 0
    client_id: int = 0
    flags: int = 0
    data: bytes = b""

    def body(self) -> bytes:
        return (
            self._FIXED.pack(
                self.opcode, self.srvid, self.client_id, self.flags, len(self.data)
            )
            + self.data
        )

    @classmethod
    def decodeBody(cls, header: Header, buf: bytes | memoryview) -> ReqControl:
        _need(buf, HEADER_SIZE, 28, "REQ_CONTROL")
        opcode, srvid, client_id, flags, datalen = cls._FIXED.unpack_from(
            buf, HEADER_SIZE
        )
        end = HEADER_SIZE + 28 + datalen
        if len(buf) < end:
            _need(buf, HEADER_SIZE + 28, datalen, "control data")
        data = bytes(buf[HEADER_SIZE + 28 : end]) if datalen else b""
        return _makeReqControl(header, opcode, srvid, client_id, flags, data)


@dataclass(frozen=True, slots=True)
class ReplyControl(_Packet):
    """REPLY_CONTROL.  As in 4.17, a failed reply carries no data."""

    operation: ClassVar[Operation] = Operation.REPLY_CONTROL
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<iII")
    header: Header
    status: int
    data: bytes = b""
    errmsg: bytes = b""

    def body(self) -> bytes:
        return (
            self._FIXED.pack(self.status, len(self.data), len(self.errmsg))
            + self.data
            + self.errmsg
        )

    @classmethod
    def decodeBody(cls, header: Header, buf: bytes | memoryview) -> ReplyControl:
        _need(buf, HEADER_SIZE, 12, "REPLY_CONTROL")
        status, datalen, errorlen = cls._FIXED.unpack_from(buf, HEADER_SIZE)
        off = HEADER_SIZE + 12
        if len(buf) < off + datalen + errorlen:
            _need(buf, off, datalen, "control reply data")
            _need(buf, off + datalen, errorlen, "control reply errmsg")
        data = bytes(buf[off : off + datalen]) if datalen else b""
        errmsg = (
            bytes(buf[off + datalen : off + datalen + errorlen]) if errorlen else b""
        )
        return _makeReplyControl(header, status, data, errmsg)


@dataclass(frozen=True, slots=True)
class ReqKeepalive(_Packet):
    operation: ClassVar[Operation] = Operation.REQ_KEEPALIVE
    header: Header
    version: int = 0
    uptime: int = 0

    def body(self) -> bytes:
        return struct.pack("<II", self.version, self.uptime)

    @classmethod
    def decodeBody(cls, header: Header, buf: bytes | memoryview) -> ReqKeepalive:
        # Pre-4.8 peers send an empty keepalive; treat it as version 0.
        if len(buf) < HEADER_SIZE + 8:
            return cls(header)
        version, uptime = struct.unpack_from("<II", buf, HEADER_SIZE)
        return cls(header, version, uptime)


@dataclass(frozen=True, slots=True)
class ReqTunnel(_Packet):
    operation: ClassVar[Operation] = Operation.REQ_TUNNEL
    header: Header
    tunnel_id: int
    flags: int = 0
    data: bytes = b""

    def body(self) -> bytes:
        return (
            struct.pack("<QII", self.tunnel_id, self.flags, len(self.data)) + self.data
        )

    @classmethod
    def decodeBody(cls, header: Header, buf: bytes | memoryview) -> ReqTunnel:
        _need(buf, HEADER_SIZE, 16, "REQ_TUNNEL")
        tunnel_id, flags, datalen = struct.unpack_from("<QII", buf, HEADER_SIZE)
        return cls(
            header, tunnel_id, flags, _blob(buf, HEADER_SIZE + 16, datalen, "data")
        )


Packet = (
    ReqCall
    | ReplyCall
    | ReqDmaster
    | ReplyDmaster
    | ReplyError
    | ReqMessage
    | ReqControl
    | ReplyControl
    | ReqKeepalive
    | ReqTunnel
)

# The decoders' constructors (see _maker).
_makeHeader = _maker(Header)
_makeReqCall = _maker(ReqCall)
_makeReplyCall = _maker(ReplyCall)
_makeReqDmaster = _maker(ReqDmaster)
_makeReplyDmaster = _maker(ReplyDmaster)
_makeReqMessage = _maker(ReqMessage)
_makeReqControl = _maker(ReqControl)
_makeReplyControl = _maker(ReplyControl)


#: header and fixed part of a packet type in one struct, for the one-step
#: encoders of the hot paths (derived from the types' own layouts)
def _whole(fixed: struct.Struct) -> struct.Struct:
    return struct.Struct(_HEADER.format + fixed.format.lstrip("<"))


_WHOLE_REQ_CALL = _whole(ReqCall._FIXED)
_WHOLE_REPLY_CALL = _whole(ReplyCall._FIXED)
_WHOLE_REQ_DMASTER = _whole(ReqDmaster._FIXED)
_WHOLE_REPLY_DMASTER = _whole(ReplyDmaster._FIXED)
#: zero padding to the 8-byte alignment, by length
_PADDING = tuple(b"\0" * n for n in range(CTDB_DS_ALIGNMENT))

PACKET_TYPES: dict[int, type[Packet]] = {
    cls.operation: cls
    for cls in (
        ReqCall,
        ReplyCall,
        ReqDmaster,
        ReplyDmaster,
        ReplyError,
        ReqMessage,
        ReqControl,
        ReplyControl,
        ReqKeepalive,
        ReqTunnel,
    )
}


def decodePacket(buf: bytes | memoryview) -> Packet:
    """
    Decode one whole packet (as delivered by the framing layer).

    @raise MalformedPacket: bad header, unknown operation, or a body that
        does not fit in the packet.
    """
    # Header.decode inlined: this runs for every packet the daemon handles.
    size = len(buf)
    if size < HEADER_SIZE:
        raise MalformedPacket(f"header: need {HEADER_SIZE} bytes, have {size}")
    (length, magic, version, generation, operation, destnode, srcnode, reqid) = (
        _HEADER.unpack_from(buf, 0)
    )
    if length < HEADER_SIZE:
        raise MalformedPacket(f"packet length {length} below header size")
    if magic != CTDB_MAGIC:
        raise MalformedPacket(f"bad magic 0x{magic:08x}")
    if version != CTDB_PROTOCOL:
        raise MalformedPacket(f"bad protocol version {version}")
    if length > size:
        raise MalformedPacket(f"packet length {length} exceeds buffer {size}")
    cls = PACKET_TYPES.get(operation)
    if cls is None:
        raise MalformedPacket(f"unknown operation {operation}")
    if length < size:
        buf = buf[:length]
    header = _makeHeader(operation, destnode, srcnode, reqid, generation)
    if operation == _OP_REQ_CONTROL and length >= _REQ_CONTROL.size:
        # ReqControl.decodeBody inlined: the daemon's commonest packet
        opcode, srvid, client_id, flags, datalen = ReqControl._FIXED.unpack_from(
            buf, HEADER_SIZE
        )
        end = _REQ_CONTROL.size + datalen
        if end <= length:
            data = bytes(buf[_REQ_CONTROL.size : end]) if datalen else b""
            return _makeReqControl(header, opcode, srvid, client_id, flags, data)
    return cls.decodeBody(header, buf)


def decode(buf: bytes | memoryview) -> tuple[Packet, int]:
    """The ``decode(buf) -> (obj, consumed)`` form of L{decodePacket}."""
    packet = decodePacket(buf)
    return packet, Header.decode(buf)[1]


_REPLY_CONTROL = _whole(ReplyControl._FIXED)


def encodeReplyControl(
    destnode: int,
    srcnode: int,
    reqid: int,
    generation: int,
    status: int,
    data: bytes = b"",
    errmsg: bytes = b"",
) -> bytes:
    """
    REPLY_CONTROL in one step, for the daemon's hot path; the same bytes as
    C{ReplyControl(Header(...), status, data, errmsg).encode()}.
    """
    raw = _REPLY_CONTROL.size + len(data) + len(errmsg)
    total = (raw + 7) & ~7
    return (
        _REPLY_CONTROL.pack(
            total,
            CTDB_MAGIC,
            CTDB_PROTOCOL,
            generation,
            Operation.REPLY_CONTROL,
            destnode,
            srcnode,
            reqid,
            status,
            len(data),
            len(errmsg),
        )
        + data
        + errmsg
        + b"\0" * (total - raw)
    )


_REQ_CONTROL = _whole(ReqControl._FIXED)


def encodeReqControl(
    destnode: int,
    srcnode: int,
    reqid: int,
    generation: int,
    opcode: int,
    srvid: int = 0,
    client_id: int = 0,
    flags: int = 0,
    data: bytes = b"",
) -> bytes:
    """
    REQ_CONTROL in one step, for the daemon's hot path; the same bytes as
    C{ReqControl(Header(...), opcode, srvid, client_id, flags, data).encode()}.
    """
    raw = _REQ_CONTROL.size + len(data)
    total = (raw + 7) & ~7
    return (
        _REQ_CONTROL.pack(
            total,
            CTDB_MAGIC,
            CTDB_PROTOCOL,
            generation,
            Operation.REQ_CONTROL,
            destnode,
            srcnode,
            reqid,
            opcode,
            srvid,
            client_id,
            flags,
            len(data),
        )
        + data
        + b"\0" * (total - raw)
    )


# -- relaying without decoding -------------------------------------------------
#
# A daemon that forwards a client's control to another node, and that node's
# reply back to the client, changes only the header's routing fields (and the
# control's client id).  These read just what routing needs and rewrite the
# bytes in place of a decode and a new encode; a packet they cannot vouch for
# (odd length, trailing bytes) gets None, and the caller decodes it instead.

#: the header's generation (offset 12), then after the operation
#: destnode, srcnode and reqid (offset 20)
_GENERATION = struct.Struct("<I")
_GENERATION_OFFSET = 12
_ROUTE = struct.Struct("<III")
_ROUTE_OFFSET = 20
#: REQ_CONTROL's client_id, after opcode, padding and srvid
_CLIENT_ID = struct.Struct("<I")
_CLIENT_ID_OFFSET = HEADER_SIZE + 16


def routeReqControl(buf: bytes) -> tuple[int, int, int, int, int] | None:
    """
    (destnode, srcnode, reqid, opcode, flags) of C{buf} if it is a well-formed
    REQ_CONTROL packet that L{readdressReqControl} may forward as it is: one
    whole packet (as the framing delivers it), padded to 8 bytes and
    holding nothing after its data.  None for anything else.
    """
    if len(buf) < _REQ_CONTROL.size:
        return None
    (
        length,
        magic,
        version,
        _generation,
        operation,
        destnode,
        srcnode,
        reqid,
        opcode,
        _srvid,
        _client_id,
        flags,
        datalen,
    ) = _REQ_CONTROL.unpack_from(buf, 0)
    if (
        operation != _OP_REQ_CONTROL
        or magic != CTDB_MAGIC
        or version != CTDB_PROTOCOL
        or length != len(buf)
        or length != (_REQ_CONTROL.size + datalen + 7) & ~7
    ):
        return None
    return destnode, srcnode, reqid, opcode, flags


def readdressReqControl(
    buf: bytes,
    destnode: int,
    srcnode: int,
    reqid: int,
    generation: int,
    client_id: int,
) -> bytes:
    """
    C{buf} (a REQ_CONTROL that L{routeReqControl} accepted) with new routing
    fields and client id: what C{encodeReqControl} makes of its fields with
    these (the padding bytes are copied as they came).
    """
    out = bytearray(buf)
    _GENERATION.pack_into(out, _GENERATION_OFFSET, generation)
    _ROUTE.pack_into(out, _ROUTE_OFFSET, destnode, srcnode, reqid)
    _CLIENT_ID.pack_into(out, _CLIENT_ID_OFFSET, client_id)
    return bytes(out)


def routeReplyControl(buf: bytes) -> int | None:
    """
    The reqid of C{buf} if it is a well-formed REPLY_CONTROL packet that
    L{readdressReplyControl} may relay as it is: one whole packet, padded
    to 8 bytes, nothing after its error message, and no data if it failed
    (4.17 sends none then, and L{ReplyControl} drops it).  None otherwise.
    """
    if len(buf) < _REPLY_CONTROL.size:
        return None
    (
        length,
        magic,
        version,
        _generation,
        operation,
        _destnode,
        _srcnode,
        reqid,
        status,
        datalen,
        errorlen,
    ) = _REPLY_CONTROL.unpack_from(buf, 0)
    if (
        operation != _OP_REPLY_CONTROL
        or magic != CTDB_MAGIC
        or version != CTDB_PROTOCOL
        or length != len(buf)
        or length != (_REPLY_CONTROL.size + datalen + errorlen + 7) & ~7
        or (status != 0 and datalen)
    ):
        return None
    return reqid


def readdressReplyControl(
    buf: bytes, destnode: int, srcnode: int, reqid: int, generation: int
) -> bytes:
    """
    C{buf} (a REPLY_CONTROL that L{routeReplyControl} accepted) with new
    routing fields: what C{encodeReplyControl} makes of its fields with
    these (the padding bytes are copied as they came).
    """
    out = bytearray(buf)
    _GENERATION.pack_into(out, _GENERATION_OFFSET, generation)
    _ROUTE.pack_into(out, _ROUTE_OFFSET, destnode, srcnode, reqid)
    return bytes(out)
