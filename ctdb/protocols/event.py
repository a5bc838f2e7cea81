# -*- test-case-name: tests.protocols.test_event -*-
"""
The event daemon's protocol (Samba 4.17 ctdb/event/event_protocol.h and
event_protocol.c): what ctdbd and the ``ctdb-event`` tool send to the
event daemon on ``run/eventd.socket``, and what it answers.

A packet is a 12-byte header (length, counting the header itself; version;
reqid) and a body.  A request's body is a command (u32) and that
command's data: C{run} (component, event, arguments, timeout, flags),
C{status} (component, event) or C{script} (component, script, enable or
disable).  A reply's body is the command, an int32 result (0 or an
errno) and, for a successful C{status} only, the status: the event's
summary and the list of its scripts (name, begin and end C{timeval},
result, output).

Strings are C{ctdb_stringn}: a u32 length that counts the NUL, then the
bytes and the NUL; length 0 is a NULL string (C{None} here).  Scripts'
names and output are whatever bytes they are, so strings are carried as
C{str} decoded with C{surrogateescape}: any byte string survives a round
trip unchanged.  C{timeval} is x86_64's: two int64 (seconds,
microseconds).  Both Samba's tool and its event daemon leave the header's
version 0, and nobody checks it; so do we.

Pure: no I/O, no Twisted import.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from ctdb.errors import MalformedPacket

CTDB_EVENT_PROTOCOL_VERSION = 1
#: run flag: go on after a script fails (C{CTDB_EVENT_RUN_ALL})
CTDB_EVENT_RUN_ALL = 1

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_HEADER = struct.Struct("<III")
_TIMEVAL = struct.Struct("<qq")

HEADER_SIZE = _HEADER.size
TIMEVAL_SIZE = _TIMEVAL.size


class EventCommand(enum.IntEnum):
    """C{enum ctdb_event_command} (C{CTDB_EVENT_CMD_RUN}, ...)."""

    RUN = 1
    STATUS = 2
    SCRIPT = 3


class ScriptAction(enum.IntEnum):
    """C{enum ctdb_event_script_action} (C{CTDB_EVENT_SCRIPT_DISABLE}, ...)."""

    DISABLE = 0
    ENABLE = 1


CTDB_EVENT_CMD_RUN = EventCommand.RUN
CTDB_EVENT_CMD_STATUS = EventCommand.STATUS
CTDB_EVENT_CMD_SCRIPT = EventCommand.SCRIPT
CTDB_EVENT_SCRIPT_DISABLE = ScriptAction.DISABLE
CTDB_EVENT_SCRIPT_ENABLE = ScriptAction.ENABLE


Timeval = tuple[int, int]


def _need(buf: bytes, offset: int, size: int, what: str) -> None:
    if len(buf) - offset < size:
        raise MalformedPacket(
            f"{what}: need {size} bytes at {offset}, have {max(len(buf) - offset, 0)}"
        )


def _u32(buf: bytes, offset: int, what: str) -> int:
    _need(buf, offset, 4, what)
    return int(_U32.unpack_from(buf, offset)[0])


def _i32(buf: bytes, offset: int, what: str) -> int:
    _need(buf, offset, 4, what)
    return int(_I32.unpack_from(buf, offset)[0])


def encodeStringn(text: str | None) -> bytes:
    """C{ctdb_stringn_push}: u32 length with the NUL (0 for NULL), the
    bytes, the NUL.  A C string cannot hold a NUL: C{ValueError}."""
    if text is None:
        return _U32.pack(0)
    raw = text.encode("utf-8", "surrogateescape")
    if b"\0" in raw:
        raise ValueError(f"a C string cannot hold a NUL: {text!r}")
    return _U32.pack(len(raw) + 1) + raw + b"\0"


def decodeStringn(
    buf: bytes, offset: int = 0, what: str = "stringn"
) -> tuple[str | None, int]:
    """C{ctdb_stringn_pull}: (the string, bytes consumed).  The string
    ends at its first NUL, as C{strndup} reads it."""
    length = _u32(buf, offset, what)
    if length == 0:
        return None, 4
    _need(buf, offset + 4, length, what)
    raw = bytes(buf[offset + 4 : offset + 4 + length]).split(b"\0", 1)[0]
    return raw.decode("utf-8", "surrogateescape"), 4 + length


def encodeTimeval(tv: Timeval) -> bytes:
    return _TIMEVAL.pack(tv[0], tv[1])


def decodeTimeval(buf: bytes, offset: int = 0) -> Timeval:
    _need(buf, offset, TIMEVAL_SIZE, "timeval")
    sec, usec = _TIMEVAL.unpack_from(buf, offset)
    return int(sec), int(usec)


# --- the header ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventHeader:
    """C{struct ctdb_event_header}."""

    length: int
    version: int
    reqid: int

    def encode(self) -> bytes:
        return _HEADER.pack(self.length, self.version, self.reqid)

    @classmethod
    def decode(cls, buf: bytes) -> tuple[EventHeader, int]:
        _need(buf, 0, HEADER_SIZE, "event header")
        length, version, reqid = _HEADER.unpack_from(buf)
        return cls(length, version, reqid), HEADER_SIZE


# --- request data ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestRun:
    """C{struct ctdb_event_request_run}: run C{event} of C{component} with
    the space-separated C{args}; every script must end within C{timeout}
    seconds of the request."""

    component: str | None
    event: str | None
    args: str | None
    timeout: int
    flags: int = 0

    command = EventCommand.RUN

    def encode(self) -> bytes:
        return (
            encodeStringn(self.component)
            + encodeStringn(self.event)
            + encodeStringn(self.args)
            + _U32.pack(self.timeout & 0xFFFFFFFF)
            + _U32.pack(self.flags & 0xFFFFFFFF)
        )

    @classmethod
    def decode(cls, buf: bytes, offset: int = 0) -> tuple[RequestRun, int]:
        start = offset
        component, n = decodeStringn(buf, offset, "run component")
        offset += n
        event, n = decodeStringn(buf, offset, "run event")
        offset += n
        args, n = decodeStringn(buf, offset, "run args")
        offset += n
        timeout = _u32(buf, offset, "run timeout")
        flags = _u32(buf, offset + 4, "run flags")
        return cls(component, event, args, timeout, flags), offset + 8 - start


@dataclass(frozen=True, slots=True)
class RequestStatus:
    """C{struct ctdb_event_request_status}: the last run of C{event}."""

    component: str | None
    event: str | None

    command = EventCommand.STATUS

    def encode(self) -> bytes:
        return encodeStringn(self.component) + encodeStringn(self.event)

    @classmethod
    def decode(cls, buf: bytes, offset: int = 0) -> tuple[RequestStatus, int]:
        component, n1 = decodeStringn(buf, offset, "status component")
        event, n2 = decodeStringn(buf, offset + n1, "status event")
        return cls(component, event), n1 + n2


@dataclass(frozen=True, slots=True)
class RequestScript:
    """C{struct ctdb_event_request_script}: enable or disable a script."""

    component: str | None
    script: str | None
    action: ScriptAction

    command = EventCommand.SCRIPT

    def encode(self) -> bytes:
        return (
            encodeStringn(self.component)
            + encodeStringn(self.script)
            + _U32.pack(int(self.action))
        )

    @classmethod
    def decode(cls, buf: bytes, offset: int = 0) -> tuple[RequestScript, int]:
        component, n1 = decodeStringn(buf, offset, "script component")
        script, n2 = decodeStringn(buf, offset + n1, "script name")
        raw = _u32(buf, offset + n1 + n2, "script action")
        try:
            action = ScriptAction(raw)
        except ValueError:
            raise MalformedPacket(f"script action {raw} is neither 0 nor 1") from None
        return cls(component, script, action), n1 + n2 + 4


RequestData = RequestRun | RequestStatus | RequestScript

_REQUEST_TYPES: dict[int, type[RequestData]] = {
    EventCommand.RUN: RequestRun,
    EventCommand.STATUS: RequestStatus,
    EventCommand.SCRIPT: RequestScript,
}


def _command(buf: bytes, offset: int) -> EventCommand:
    raw = _u32(buf, offset, "event command")
    try:
        return EventCommand(raw)
    except ValueError:
        raise MalformedPacket(f"unknown event command {raw}") from None


def _packet(buf: bytes, what: str) -> tuple[EventHeader, bytes]:
    """The header and the packet it announces, cut from C{buf}."""
    header, _ = EventHeader.decode(buf)
    if header.length < HEADER_SIZE:
        raise MalformedPacket(f"{what}: length {header.length} is below the header")
    _need(buf, 0, header.length, what)
    return header, bytes(buf[: header.length])


# --- requests and replies ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventRequest:
    """A request: its reqid and one command's data."""

    reqid: int
    data: RequestData
    version: int = 0

    @property
    def command(self) -> EventCommand:
        return self.data.command

    def encode(self) -> bytes:
        """C{ctdb_event_request_push}: the header's length is the packet's."""
        body = _U32.pack(int(self.data.command)) + self.data.encode()
        length = HEADER_SIZE + len(body)
        return EventHeader(length, self.version, self.reqid).encode() + body

    @classmethod
    def decode(cls, buf: bytes) -> tuple[EventRequest, int]:
        """C{ctdb_event_request_pull} of the packet at the start of C{buf}
        (its header says how long it is); (request, its length)."""
        header, packet = _packet(buf, "event request")
        command = _command(packet, HEADER_SIZE)
        data, _ = _REQUEST_TYPES[command].decode(packet, HEADER_SIZE + 4)
        return cls(header.reqid, data, header.version), header.length


@dataclass(frozen=True, slots=True)
class EventScript:
    """C{struct ctdb_event_script}: one script's last run.  C{result} is 0,
    its exit status, or a negative errno (-ENOEXEC: disabled, -ETIMEDOUT,
    ...)."""

    name: str | None
    begin: Timeval
    end: Timeval
    result: int
    output: str | None

    def encode(self) -> bytes:
        return (
            encodeStringn(self.name)
            + encodeTimeval(self.begin)
            + encodeTimeval(self.end)
            + _I32.pack(self.result)
            + encodeStringn(self.output)
        )

    @classmethod
    def decode(cls, buf: bytes, offset: int = 0) -> tuple[EventScript, int]:
        start = offset
        name, n = decodeStringn(buf, offset, "script name")
        offset += n
        begin = decodeTimeval(buf, offset)
        end = decodeTimeval(buf, offset + TIMEVAL_SIZE)
        offset += 2 * TIMEVAL_SIZE
        result = _i32(buf, offset, "script result")
        output, n = decodeStringn(buf, offset + 4, "script output")
        return cls(name, begin, end, result, output), offset + 4 + n - start


@dataclass(frozen=True, slots=True)
class ReplyStatus:
    """C{struct ctdb_event_reply_status}: the event's summary (0 or the
    failing script's result) and its scripts."""

    summary: int
    scripts: tuple[EventScript, ...] = ()

    def encode(self) -> bytes:
        return (
            _I32.pack(self.summary)
            + _I32.pack(len(self.scripts))
            + b"".join(s.encode() for s in self.scripts)
        )

    @classmethod
    def decode(cls, buf: bytes, offset: int = 0) -> tuple[ReplyStatus, int]:
        start = offset
        summary = _i32(buf, offset, "status summary")
        count = _i32(buf, offset + 4, "script list")
        if count < 0:
            raise MalformedPacket(f"script list: {count} scripts")
        offset += 8
        scripts = []
        for _ in range(count):
            script, n = EventScript.decode(buf, offset)
            scripts.append(script)
            offset += n
        return cls(summary, tuple(scripts)), offset - start


@dataclass(frozen=True, slots=True)
class EventReply:
    """A reply: the request's reqid and command, the result (0 or an
    errno), and for a successful C{status} the status."""

    reqid: int
    command: EventCommand
    result: int
    status: ReplyStatus | None = None
    version: int = 0

    def encode(self) -> bytes:
        """C{ctdb_event_reply_push}: the status only goes with result 0 of
        a C{status} command (an empty one if none is given)."""
        body = _U32.pack(int(self.command)) + _I32.pack(self.result)
        if self.result == 0 and self.command == EventCommand.STATUS:
            body += (self.status or ReplyStatus(0)).encode()
        length = HEADER_SIZE + len(body)
        return EventHeader(length, self.version, self.reqid).encode() + body

    @classmethod
    def decode(cls, buf: bytes) -> tuple[EventReply, int]:
        """C{ctdb_event_reply_pull}; (reply, its length)."""
        header, packet = _packet(buf, "event reply")
        command = _command(packet, HEADER_SIZE)
        result = _i32(packet, HEADER_SIZE + 4, "event result")
        status = None
        if result == 0 and command == EventCommand.STATUS:
            status, _ = ReplyStatus.decode(packet, HEADER_SIZE + 8)
        return cls(header.reqid, command, result, status, header.version), header.length


def packetLength(buf: bytes | bytearray) -> int | None:
    """The length the packet at the start of C{buf} announces (comm.c's
    framing), or None while fewer than 4 bytes are in."""
    if len(buf) < 4:
        return None
    return int(_U32.unpack_from(buf)[0])


def takePacket(buf: bytearray, maxLength: int) -> bytes | None:
    """The whole packet at the start of C{buf}, cut off it (the framing of
    comm.c's C{comm_read_more}: a packet is as long as its first u32 says),
    or None while it has not all arrived.

    @raise MalformedPacket: the length announced is below the header's or
        above C{maxLength}; C{buf} is left as it was.
    """
    length = packetLength(buf)
    if length is None:
        return None
    if length < HEADER_SIZE or length > maxLength:
        raise MalformedPacket(
            f"packet length {length} is not within {HEADER_SIZE}..{maxLength}"
        )
    if len(buf) < length:
        return None
    packet = bytes(buf[:length])
    del buf[:length]
    return packet
