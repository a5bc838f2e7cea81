# -*- test-case-name: tests.database.test_ltdb -*-
"""
The ctdb "local TDB" conventions (Samba 4.17 ``ctdb/protocol/protocol.h``,
``common/ctdb_ltdb.c``, ``common/ctdb_util.c``, ``server/ctdb_ltdb_server.c``;
CTDB_PROTOCOL.md §2).

* every record value in every ctdb TDB starts with a 24-byte
  C{struct ctdb_ltdb_header} (L{LtdbHeader});
* C{ctdb_hash} is libtdb's C{tdb_jenkins_hash}, Bob Jenkins' lookup3
  C{hashlittle} with initval 0 (L{jenkinsHash});
* the db_id of a database is the hash of its name with the trailing NUL
  (L{dbId}); the lmaster of a key is C{vnn_map[hash % size]} (L{lmaster});
* the TDB open flags and file path of a database (L{dbTdbFlags},
  L{dbPath}).

Pure: no I/O and no Twisted import.  The one exception is L{ctdbHash}: on
first use it loads libtdb's C C{tdb_jenkins_hash} if it can (it is several
times faster), with the pure L{jenkinsHash} as the reference and fallback.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ctdb.database import _libtdb
from ctdb.errors import MalformedPacket

# --- struct ctdb_ltdb_header ----------------------------------------------------

LTDB_HEADER_SIZE = 24

CTDB_REC_FLAG_DEFAULT = 0x00000000
CTDB_REC_FLAG_MIGRATED_WITH_DATA = 0x00010000
CTDB_REC_FLAG_VACUUM_MIGRATED = 0x00020000
CTDB_REC_FLAG_AUTOMATIC = 0x00040000
CTDB_REC_RO_HAVE_DELEGATIONS = 0x01000000
CTDB_REC_RO_HAVE_READONLY = 0x02000000
CTDB_REC_RO_REVOKING_READONLY = 0x04000000
CTDB_REC_RO_REVOKE_COMPLETE = 0x08000000
CTDB_REC_RO_FLAGS = (
    CTDB_REC_RO_HAVE_DELEGATIONS
    | CTDB_REC_RO_HAVE_READONLY
    | CTDB_REC_RO_REVOKING_READONLY
    | CTDB_REC_RO_REVOKE_COMPLETE
)

# --- database flags (struct ctdb_dbid.flags, protocol.h) --------------------------

CTDB_DB_FLAGS_PERSISTENT = 0x01
CTDB_DB_FLAGS_READONLY = 0x02
CTDB_DB_FLAGS_STICKY = 0x04
CTDB_DB_FLAGS_REPLICATED = 0x08

#: Default of the DatabaseHashSize tunable: hash chains of a ctdb TDB.
DATABASE_HASH_SIZE = 100001

_HEADER = struct.Struct("<QIIIxxxx")
assert _HEADER.size == LTDB_HEADER_SIZE

#: the header's struct (rsn, dmaster, reserved1, flags), for the daemon's
#: record path, which packs and unpacks headers without the checks of
#: L{LtdbHeader.encode}/L{LtdbHeader.decode}
LTDB_HEADER_STRUCT = _HEADER


@dataclass(frozen=True, slots=True)
class LtdbHeader:
    """
    C{struct ctdb_ltdb_header}: u64 rsn, u32 dmaster, u32 reserved1,
    u32 flags, 4 bytes of padding (zero).
    """

    rsn: int
    dmaster: int
    reserved1: int = 0
    flags: int = CTDB_REC_FLAG_DEFAULT

    def encode(self) -> bytes:
        """@return: the 24 header bytes."""
        try:
            return _HEADER.pack(self.rsn, self.dmaster, self.reserved1, self.flags)
        except struct.error as e:
            raise ValueError(f"bad ltdb header field: {e}") from None

    @classmethod
    def decode(cls, buf: bytes | bytearray | memoryview) -> tuple[LtdbHeader, int]:
        """
        @return: the header at the start of C{buf} and the bytes consumed.
        @raise MalformedPacket: C{buf} is shorter than 24 bytes.
        """
        if len(buf) < LTDB_HEADER_SIZE:
            raise MalformedPacket(
                f"ltdb header needs {LTDB_HEADER_SIZE} bytes, got {len(buf)}"
            )
        rsn, dmaster, reserved1, flags = _HEADER.unpack_from(buf, 0)
        return cls(rsn, dmaster, reserved1, flags), LTDB_HEADER_SIZE

    def withFlags(self, set: int = 0, clear: int = 0) -> LtdbHeader:
        """@return: a copy with the C{set} bits set and the C{clear} bits clear."""
        return LtdbHeader(
            self.rsn, self.dmaster, self.reserved1, (self.flags & ~clear) | set
        )


def splitRecord(value: bytes | bytearray | memoryview) -> tuple[LtdbHeader, bytes]:
    """
    Split a stored ctdb record value into its header and its data.

    @raise MalformedPacket: C{value} is shorter than a header.
    """
    header, consumed = LtdbHeader.decode(value)
    return header, bytes(value[consumed:])


_FLAGS = struct.Struct("<I")
_FLAGS_OFFSET = 16


def withoutFlags(value: bytes, clear: int) -> bytes:
    """A stored record value (at least a header long) with the C{clear}
    bits of its header's flags cleared: C{value} itself when none is set,
    so that the common case costs no header object."""
    (flags,) = _FLAGS.unpack_from(value, _FLAGS_OFFSET)
    if not flags & clear:
        return value
    return (
        value[:_FLAGS_OFFSET]
        + _FLAGS.pack(flags & ~clear)
        + value[_FLAGS_OFFSET + _FLAGS.size :]
    )


def splitValue(value: bytes | None) -> tuple[LtdbHeader | None, bytes]:
    """Like L{splitRecord}, but an absent or too short value (no record)
    gives C{(None, b"")} instead of an error."""
    if value is None or len(value) < LTDB_HEADER_SIZE:
        return None, b""
    return LtdbHeader.decode(value[:LTDB_HEADER_SIZE])[0], value[LTDB_HEADER_SIZE:]


def joinRecord(header: LtdbHeader, data: bytes = b"") -> bytes:
    """@return: the stored value for C{header} followed by C{data}."""
    return header.encode() + data


def isEmptyRecord(value: bytes | None) -> bool:
    """
    @return: whether C{value} is absent or a bare header with no data (a
        deleted record: the tool and recovery treat it as missing).
    """
    return value is None or len(value) <= LTDB_HEADER_SIZE


# --- hashing ------------------------------------------------------------------

_M = 0xFFFFFFFF
_WORDS: dict[int, struct.Struct] = {}


def _words(n: int) -> struct.Struct:
    s = _WORDS.get(n)
    if s is None:
        s = _WORDS[n] = struct.Struct(f"<{n}I")
    return s


def jenkinsHash(key: bytes | bytearray | memoryview) -> int:
    """
    Bob Jenkins' lookup3 C{hashlittle(key, len, 0)}: libtdb's
    C{tdb_jenkins_hash} and ctdb's C{ctdb_hash}, in pure Python.

    Whole 12-byte blocks except the last are C{mix()}ed; the last 1-12
    bytes, zero-padded, go to C{final()}.  An empty key hashes to the
    initial value, 0xdeadbeef.
    """
    n = len(key)
    a = b = c = (0xDEADBEEF + n) & _M
    if n == 0:
        return c
    rem = n % 12
    if rem:
        key = bytes(key) + b"\0" * (12 - rem)
    w = _words(len(key) // 4).unpack(key)
    last = len(w) - 3
    i = 0
    while i < last:
        a = (a + w[i]) & _M
        b = (b + w[i + 1]) & _M
        c = (c + w[i + 2]) & _M
        # mix(a, b, c)
        a = (a - c) & _M
        a ^= ((c << 4) | (c >> 28)) & _M
        c = (c + b) & _M
        b = (b - a) & _M
        b ^= ((a << 6) | (a >> 26)) & _M
        a = (a + c) & _M
        c = (c - b) & _M
        c ^= ((b << 8) | (b >> 24)) & _M
        b = (b + a) & _M
        a = (a - c) & _M
        a ^= ((c << 16) | (c >> 16)) & _M
        c = (c + b) & _M
        b = (b - a) & _M
        b ^= ((a << 19) | (a >> 13)) & _M
        a = (a + c) & _M
        c = (c - b) & _M
        c ^= ((b << 4) | (b >> 28)) & _M
        b = (b + a) & _M
        i += 3
    a = (a + w[i]) & _M
    b = (b + w[i + 1]) & _M
    c = (c + w[i + 2]) & _M
    # final(a, b, c)
    c ^= b
    c = (c - (((b << 14) | (b >> 18)) & _M)) & _M
    a ^= c
    a = (a - (((c << 11) | (c >> 21)) & _M)) & _M
    b ^= a
    b = (b - (((a << 25) | (a >> 7)) & _M)) & _M
    c ^= b
    c = (c - (((b << 16) | (b >> 16)) & _M)) & _M
    a ^= c
    a = (a - (((c << 4) | (c >> 28)) & _M)) & _M
    b ^= a
    b = (b - (((a << 14) | (a >> 18)) & _M)) & _M
    c ^= b
    c = (c - (((b << 24) | (b >> 8)) & _M)) & _M
    return c


_hashFunction: Callable[[bytes], int] | None = None


def useHashFunction(fn: Callable[[bytes], int] | None) -> None:
    """
    Make L{ctdbHash} use C{fn}, which must agree with L{jenkinsHash};
    C{None} forces the pure L{jenkinsHash}.
    """
    global _hashFunction
    _hashFunction = jenkinsHash if fn is None else fn


def _selectHash() -> Callable[[bytes], int]:
    # libtdb's C hash costs a flat ~2.5 us a call through ctypes; the pure
    # one 4 us for a short key and 20 us for 64 bytes.  The library is
    # loaded on the first hash, never by importing this module.
    global _hashFunction
    _hashFunction = _libtdb.hashFunction() or jenkinsHash
    return _hashFunction


def ctdbHash(key: bytes) -> int:
    """
    C{ctdb_hash(key)}: the 32-bit lookup3 hash of C{key}.  Uses libtdb's
    C{tdb_jenkins_hash} when libtdb is installed, else L{jenkinsHash}.
    """
    fn = _hashFunction
    if fn is None:
        fn = _selectHash()
    return fn(key)


def dbId(name: str) -> int:
    """
    C{ctdb_local_attach}: the db_id of database C{name} is the hash of its
    UTF-8 name including the trailing NUL.
    """
    return ctdbHash(name.encode("utf-8") + b"\0")


def lmaster(key: bytes, vnnMap: Sequence[int]) -> int:
    """
    C{ctdb_lmaster}: the location master of C{key} is
    C{vnnMap[ctdb_hash(key) % len(vnnMap)]}.

    @param vnnMap: the pnns of the VNN map, in map order.
    @raise ValueError: the map is empty.
    """
    size = len(vnnMap)
    if size == 0:
        raise ValueError("lmaster of a key with an empty vnn map")
    return vnnMap[ctdbHash(key) % size]


def initialHeader(key: bytes, vnnMap: Sequence[int]) -> LtdbHeader:
    """
    C{ltdb_initial_header}: the header of a record that does not exist
    yet: rsn 0, dmaster = lmaster, flag AUTOMATIC.
    """
    return LtdbHeader(0, lmaster(key, vnnMap), 0, CTDB_REC_FLAG_AUTOMATIC)


# --- database files ---------------------------------------------------------------


def dbTdbFlags(
    dbFlags: int, withValgrind: bool = False, withMutex: bool = False
) -> int:
    """
    C{ctdb_db_tdb_flags}: the TDB open flags of a database.

    Persistent databases use C{TDB_DEFAULT}; volatile and replicated ones
    C{TDB_NOSYNC|TDB_CLEAR_IF_FIRST|TDB_INCOMPATIBLE_HASH}, and volatile
    ones add C{TDB_MUTEX_LOCKING} when C{withMutex} is set (the caller
    checks C{tdb_runtime_check_for_robust_mutexes} first, as ctdbd does).
    All get C{TDB_DISALLOW_NESTING}; C{withValgrind} adds C{TDB_NOMMAP}.
    """
    if dbFlags & CTDB_DB_FLAGS_PERSISTENT:
        flags = _libtdb.TDB_DEFAULT
    elif dbFlags & CTDB_DB_FLAGS_REPLICATED:
        flags = (
            _libtdb.TDB_NOSYNC
            | _libtdb.TDB_CLEAR_IF_FIRST
            | _libtdb.TDB_INCOMPATIBLE_HASH
        )
    else:
        flags = (
            _libtdb.TDB_NOSYNC
            | _libtdb.TDB_CLEAR_IF_FIRST
            | _libtdb.TDB_INCOMPATIBLE_HASH
        )
        if withMutex:
            flags |= _libtdb.TDB_MUTEX_LOCKING
    flags |= _libtdb.TDB_DISALLOW_NESTING
    if withValgrind:
        flags |= _libtdb.TDB_NOMMAP
    return flags


def dbPath(
    name: str, pnn: int, dbFlags: int, volatileDir: str, persistentDir: str
) -> str:
    """
    C{ctdb_local_attach}: C{<dir>/<name>.<pnn>}, where dir is the
    persistent directory for persistent databases and the volatile one
    otherwise (replicated databases included, in 4.17).

    @raise ValueError: C{name} could escape the directory.
    """
    if not name or "/" in name or "\0" in name:
        raise ValueError(f"bad database name {name!r}")
    directory = persistentDir if dbFlags & CTDB_DB_FLAGS_PERSISTENT else volatileDir
    return os.path.join(directory, f"{name}.{pnn}")
