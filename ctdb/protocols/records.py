# -*- test-case-name: tests.databases.test_manager -*-
"""
Database payloads of the 4.17 controls (protocol_types.c): rec_data,
rec_buffer (marshall buffer), dbid map, traverse requests, key_data,
transdb, pulldb_ext, db_statistics.  Pure; no I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ctdb.errors import MalformedPacket
from ctdb.protocols.buckets import MAX_COUNT_BUCKETS

DB_FLAGS_PERSISTENT = 0x01
DB_FLAGS_READONLY = 0x02
DB_FLAGS_STICKY = 0x04
DB_FLAGS_REPLICATED = 0x08


class DbKind:
    """The kind of a database from its C{flags} (CTDB_DB_FLAGS_*), for the
    daemon's and the client's database objects alike."""

    flags: int

    @property
    def persistent(self) -> bool:
        return bool(self.flags & DB_FLAGS_PERSISTENT)

    @property
    def replicated(self) -> bool:
        return bool(self.flags & DB_FLAGS_REPLICATED)

    @property
    def volatile(self) -> bool:
        return not self.flags & (DB_FLAGS_PERSISTENT | DB_FLAGS_REPLICATED)


_REC_DATA = struct.Struct("<IIII")


def encodeRecData(reqid: int, key: bytes, data: bytes) -> bytes:
    """One ``struct ctdb_rec_data`` (what L{RecData.encode} gives)."""
    return (
        _REC_DATA.pack(
            _REC_DATA.size + len(key) + len(data), reqid, len(key), len(data)
        )
        + key
        + data
    )


def _need(buf: bytes, size: int, what: str) -> None:
    if len(buf) < size:
        raise MalformedPacket(f"{what}: need {size} bytes, have {len(buf)}")


@dataclass(frozen=True, slots=True)
class RecData:
    """``struct ctdb_rec_data``: {length, reqid, keylen, datalen, key, data}.
    C{data} normally starts with the 24-byte ltdb header."""

    reqid: int
    key: bytes
    data: bytes

    def encode(self) -> bytes:
        return encodeRecData(self.reqid, self.key, self.data)

    @classmethod
    def decode(cls, buf: bytes, offset: int = 0) -> tuple[RecData, int]:
        """Decode at C{offset}; returns the record and the offset after it."""
        _need(buf, offset + _REC_DATA.size, "rec_data")
        length, reqid, keylen, datalen = _REC_DATA.unpack_from(buf, offset)
        end = offset + _REC_DATA.size + keylen + datalen
        if length < _REC_DATA.size + keylen + datalen:
            raise MalformedPacket(f"rec_data: length {length} too small")
        _need(buf, end, "rec_data")
        start = offset + _REC_DATA.size
        key = bytes(buf[start : start + keylen])
        data = bytes(buf[start + keylen : end])
        return cls(reqid, key, data), offset + max(length, end - offset)


_REC_BUFFER = struct.Struct("<II")


@dataclass(frozen=True, slots=True)
class RecBuffer:
    """``struct ctdb_rec_buffer``: {db_id, count, rec_data...}."""

    db_id: int
    records: tuple[RecData, ...] = field(default_factory=tuple)

    def encode(self) -> bytes:
        return _REC_BUFFER.pack(self.db_id, len(self.records)) + b"".join(
            r.encode() for r in self.records
        )

    @classmethod
    def decode(cls, buf: bytes) -> RecBuffer:
        db_id, items = decodeRecBufferItems(buf)
        return cls(db_id, tuple(RecData(*item) for item in items))


def decodeRecBufferItems(buf: bytes) -> tuple[int, list[tuple[int, bytes, bytes]]]:
    """
    A rec_buffer as its db_id and plain C{(reqid, key, data)} tuples: what
    L{RecBuffer.decode} gives, without an object per record (a recovery
    moves hundreds of thousands of them).

    @raise MalformedPacket: as L{RecBuffer.decode}.
    """
    if not isinstance(buf, bytes):
        buf = bytes(buf)
    _need(buf, 8, "rec_buffer")
    db_id, count = _REC_BUFFER.unpack_from(buf)
    if count > len(buf):
        raise MalformedPacket(f"rec_buffer: {count} records in {len(buf)} bytes")
    unpack = _REC_DATA.unpack_from
    head = _REC_DATA.size
    total = len(buf)
    items = []
    offset = 8
    for _ in range(count):
        if offset + head > total:
            raise MalformedPacket(f"rec_data: need {offset + head} bytes, have {total}")
        length, reqid, keylen, datalen = unpack(buf, offset)
        start = offset + head
        end = start + keylen + datalen
        if length < head + keylen + datalen:
            raise MalformedPacket(f"rec_data: length {length} too small")
        if end > total:
            raise MalformedPacket(f"rec_data: need {end} bytes, have {total}")
        items.append((reqid, buf[start : start + keylen], buf[start + keylen : end]))
        offset = offset + length if length > end - offset else end
    return db_id, items


class RecBufferPacker:
    """
    Packs C{(key, data)} pairs into rec_buffers of C{limit} bytes of records
    or a little more (the record that reaches the limit goes in), as a
    recovery's pull and push send them: L{add} returns a full buffer's
    bytes when one is ready, L{flush} what is left.
    """

    def __init__(self, db_id: int, limit: int) -> None:
        self.db_id = db_id
        self.limit = max(limit, 1)
        self._pairs: list[tuple[bytes, bytes]] = []
        self._size = 0

    def add(self, key: bytes, data: bytes) -> bytes | None:
        self._pairs.append((key, data))
        self._size += _REC_DATA.size + len(key) + len(data)
        return self.flush() if self._size >= self.limit else None

    def flush(self) -> bytes | None:
        if not self._pairs:
            return None
        payload = encodeRecBufferPairs(self.db_id, self._pairs)
        self._pairs, self._size = [], 0
        return payload


def encodeRecBufferPairs(db_id: int, pairs: list[tuple[bytes, bytes]]) -> bytes:
    """A rec_buffer of C{(key, data)} pairs, each with reqid 0: the bytes
    L{RecBuffer.encode} gives for the same records."""
    pack = _REC_DATA.pack
    head = _REC_DATA.size
    parts = [_REC_BUFFER.pack(db_id, len(pairs))]
    for key, data in pairs:
        parts.append(pack(head + len(key) + len(data), 0, len(key), len(data)))
        parts.append(key)
        parts.append(data)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class DbId:
    db_id: int
    flags: int


def encodeDbMap(dbs: list[DbId]) -> bytes:
    return struct.pack("<I", len(dbs)) + b"".join(
        struct.pack("<IB3x", d.db_id, d.flags) for d in dbs
    )


def decodeDbMap(buf: bytes) -> list[DbId]:
    _need(buf, 4, "dbid_map")
    (num,) = struct.unpack_from("<I", buf)
    _need(buf, 4 + 8 * num, "dbid_map")
    return [DbId(*struct.unpack_from("<IB3x", buf, 4 + 8 * i)) for i in range(num)]


@dataclass(frozen=True, slots=True)
class TraverseStartExt:
    db_id: int
    reqid: int
    srvid: int
    withemptyrecords: bool = False

    def encode(self) -> bytes:
        return struct.pack(
            "<IIQB7x", self.db_id, self.reqid, self.srvid, int(self.withemptyrecords)
        )

    @classmethod
    def decode(cls, buf: bytes) -> TraverseStartExt:
        _need(buf, 17, "traverse_start_ext")
        db_id, reqid, srvid, empty = struct.unpack_from("<IIQB", buf)
        return cls(db_id, reqid, srvid, bool(empty))


@dataclass(frozen=True, slots=True)
class TraverseStart:
    db_id: int
    reqid: int
    srvid: int

    def encode(self) -> bytes:
        return struct.pack("<IIQ", self.db_id, self.reqid, self.srvid)

    @classmethod
    def decode(cls, buf: bytes) -> TraverseStart:
        _need(buf, 16, "traverse_start")
        return cls(*struct.unpack_from("<IIQ", buf))


@dataclass(frozen=True, slots=True)
class TraverseAll:
    """traverse_all (24 bytes) and traverse_all_ext (32 bytes)."""

    db_id: int
    reqid: int
    pnn: int
    client_reqid: int
    srvid: int
    withemptyrecords: bool = False

    def encode(self, ext: bool = True) -> bytes:
        base = struct.pack(
            "<IIIIQ", self.db_id, self.reqid, self.pnn, self.client_reqid, self.srvid
        )
        if ext:
            base += struct.pack("<B7x", int(self.withemptyrecords))
        return base

    @classmethod
    def decode(cls, buf: bytes) -> TraverseAll:
        _need(buf, 24, "traverse_all")
        db_id, reqid, pnn, client_reqid, srvid = struct.unpack_from("<IIIIQ", buf)
        empty = bool(buf[24]) if len(buf) >= 25 else False
        return cls(db_id, reqid, pnn, client_reqid, srvid, withemptyrecords=empty)


def encodeTransDb(db_id: int, tid: int) -> bytes:
    return struct.pack("<II", db_id, tid)


def decodeTransDb(buf: bytes) -> tuple[int, int]:
    _need(buf, 8, "transdb")
    return struct.unpack_from("<II", buf)


def encodePulldbExt(db_id: int, lmaster: int, srvid: int) -> bytes:
    return struct.pack("<IIQ", db_id, lmaster, srvid)


def decodePulldbExt(buf: bytes) -> tuple[int, int, int]:
    _need(buf, 16, "pulldb_ext")
    return struct.unpack_from("<IIQ", buf)


def decodeKeyData(buf: bytes) -> tuple[int, bytes, bytes]:
    """key_data {db_id, pad4, ltdb_header(24), u32 keylen, key} ->
    (db_id, header bytes, key)."""
    _need(buf, 36, "key_data")
    (db_id,) = struct.unpack_from("<I", buf)
    header = bytes(buf[8:32])
    (keylen,) = struct.unpack_from("<I", buf, 32)
    _need(buf, 36 + keylen, "key_data")
    return db_id, header, bytes(buf[36 : 36 + keylen])


def encodeKeyData(db_id: int, header: bytes, key: bytes) -> bytes:
    return struct.pack("<I4x", db_id) + header + struct.pack("<I", len(key)) + key


MAX_HOT_KEYS = 10


@dataclass
class DbStatistics:
    """``struct ctdb_db_statistics`` (464 bytes + hot key bytes)."""

    locks_num_calls: int = 0
    locks_num_current: int = 0
    locks_num_pending: int = 0
    locks_num_failed: int = 0
    locks_latency: tuple[int, float, float, float] = (0, 0.0, 0.0, 0.0)
    locks_buckets: list[int] = field(default_factory=lambda: [0] * MAX_COUNT_BUCKETS)
    vacuum_latency: tuple[int, float, float, float] = (0, 0.0, 0.0, 0.0)
    db_ro_delegations: int = 0
    db_ro_revokes: int = 0
    hop_count_bucket: list[int] = field(default_factory=lambda: [0] * MAX_COUNT_BUCKETS)
    hot_keys: list[tuple[int, bytes]] = field(default_factory=list)

    def encode(self) -> bytes:
        lat = "<i4xddd"
        out = struct.pack(
            "<4I",
            self.locks_num_calls,
            self.locks_num_current,
            self.locks_num_pending,
            self.locks_num_failed,
        )
        out += struct.pack(lat, *self.locks_latency)
        out += struct.pack(f"<{MAX_COUNT_BUCKETS}I", *self.locks_buckets)
        out += struct.pack(lat, *self.vacuum_latency)
        out += struct.pack("<II", self.db_ro_delegations, self.db_ro_revokes)
        out += struct.pack(f"<{MAX_COUNT_BUCKETS}I", *self.hop_count_bucket)
        keys = self.hot_keys[:MAX_HOT_KEYS]
        out += struct.pack("<I4x", MAX_HOT_KEYS)
        for i in range(MAX_HOT_KEYS):
            count, key = keys[i] if i < len(keys) else (0, b"")
            # {u32 count, pad4, TDB_DATA {dptr, dsize}}; the pointer is only
            # tested for NULL by the reader.
            out += struct.pack("<I4xQQ", count, 1 if key else 0, len(key))
        assert len(out) == 464
        return out + b"".join(k for _, k in keys)
