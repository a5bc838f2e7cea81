"""Tests for L{ctdb.database.ltdb}: record header, hashing, db flags and paths."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ctdb.database import _libtdb, ltdb
from ctdb.database.ltdb import (
    CTDB_DB_FLAGS_PERSISTENT,
    CTDB_DB_FLAGS_READONLY,
    CTDB_DB_FLAGS_REPLICATED,
    CTDB_DB_FLAGS_STICKY,
    CTDB_REC_FLAG_AUTOMATIC,
    CTDB_REC_FLAG_MIGRATED_WITH_DATA,
    CTDB_REC_RO_FLAGS,
    CTDB_REC_RO_HAVE_DELEGATIONS,
    CTDB_REC_RO_HAVE_READONLY,
    LTDB_HEADER_SIZE,
    LtdbHeader,
)
from ctdb.database.tdb import (
    TDB_CLEAR_IF_FIRST,
    TDB_DEFAULT,
    TDB_DISALLOW_NESTING,
    TDB_INCOMPATIBLE_HASH,
    TDB_MUTEX_LOCKING,
    TDB_NOMMAP,
    TDB_NOSYNC,
)
from ctdb.errors import MalformedPacket

#: CTDB_PROTOCOL.md §2.2, checked against the C code.
HASH_VECTORS = [
    (b"", 0xDEADBEEF),
    (b"a", 0x58D68708),
    (b"test", 0xBE0C1952),
    (b"key1", 0x1DE0DF49),
    (b"hello world", 0x4AA94E65),
    (b"__db_sequence_number__\0", 0xD64D294D),
]


class LtdbHeaderTests(SynchronousTestCase):
    """C{struct ctdb_ltdb_header} encoding."""

    def test_golden(self) -> None:
        """The 24 bytes are u64 rsn, u32 dmaster, u32 reserved1, u32 flags, pad."""
        header = LtdbHeader(
            rsn=0x0102030405060708,
            dmaster=3,
            reserved1=0,
            flags=CTDB_REC_FLAG_MIGRATED_WITH_DATA | CTDB_REC_RO_HAVE_READONLY,
        )
        self.assertEqual(
            header.encode(),
            bytes.fromhex("080706050403020103000000000000000000010200000000"),
        )
        self.assertEqual(len(header.encode()), LTDB_HEADER_SIZE)

    def test_roundTrip(self) -> None:
        """decode(encode(h)) is h and consumes 24 bytes, ignoring trailing data."""
        header = LtdbHeader(2**64 - 1, 0xFFFFFFFF, 7, CTDB_REC_RO_FLAGS)
        decoded, consumed = LtdbHeader.decode(header.encode() + b"data")
        self.assertEqual(decoded, header)
        self.assertEqual(consumed, 24)

    @given(
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
    )
    @settings(max_examples=100, deadline=None)
    def test_roundTripProperty(
        self, rsn: int, dmaster: int, reserved1: int, flags: int
    ) -> None:
        """Every field value survives a round trip."""
        header = LtdbHeader(rsn, dmaster, reserved1, flags)
        self.assertEqual(LtdbHeader.decode(header.encode()), (header, 24))

    def test_paddingIgnored(self) -> None:
        """Non-zero padding bytes do not change the decoded header."""
        raw = LtdbHeader(1, 2, 0, 3).encode()[:20] + b"\xff" * 4
        self.assertEqual(LtdbHeader.decode(raw)[0], LtdbHeader(1, 2, 0, 3))

    def test_short(self) -> None:
        """Fewer than 24 bytes raise MalformedPacket."""
        for n in (0, 1, 20, 23):
            self.assertRaises(MalformedPacket, LtdbHeader.decode, b"\0" * n)

    def test_outOfRange(self) -> None:
        """A field that does not fit its C type raises ValueError on encode."""
        self.assertRaises(ValueError, LtdbHeader(2**64, 0).encode)
        self.assertRaises(ValueError, LtdbHeader(0, -1).encode)

    def test_withFlags(self) -> None:
        """withFlags sets and clears bits in a copy."""
        header = LtdbHeader(5, 1, 0, CTDB_REC_FLAG_AUTOMATIC)
        changed = header.withFlags(
            set=CTDB_REC_RO_HAVE_DELEGATIONS, clear=CTDB_REC_FLAG_AUTOMATIC
        )
        self.assertEqual(changed, LtdbHeader(5, 1, 0, CTDB_REC_RO_HAVE_DELEGATIONS))
        self.assertEqual(header.flags, CTDB_REC_FLAG_AUTOMATIC)

    def test_flagValues(self) -> None:
        """Flag constants match protocol.h."""
        self.assertEqual(CTDB_REC_FLAG_MIGRATED_WITH_DATA, 0x00010000)
        self.assertEqual(ltdb.CTDB_REC_FLAG_VACUUM_MIGRATED, 0x00020000)
        self.assertEqual(CTDB_REC_FLAG_AUTOMATIC, 0x00040000)
        self.assertEqual(CTDB_REC_RO_FLAGS, 0x0F000000)
        self.assertEqual(
            (
                CTDB_DB_FLAGS_PERSISTENT,
                CTDB_DB_FLAGS_READONLY,
                CTDB_DB_FLAGS_STICKY,
                CTDB_DB_FLAGS_REPLICATED,
            ),
            (1, 2, 4, 8),
        )


class RecordTests(SynchronousTestCase):
    """Splitting and joining stored record values."""

    def test_split(self) -> None:
        """splitRecord returns the header and the bytes after it."""
        header = LtdbHeader(9, 1)
        self.assertEqual(
            ltdb.splitRecord(ltdb.joinRecord(header, b"payload")), (header, b"payload")
        )

    def test_splitEmpty(self) -> None:
        """A bare header splits into the header and empty data."""
        header = LtdbHeader(1, 0)
        self.assertEqual(ltdb.splitRecord(header.encode()), (header, b""))

    def test_splitShort(self) -> None:
        """A value shorter than a header raises MalformedPacket."""
        self.assertRaises(MalformedPacket, ltdb.splitRecord, b"short")

    def test_isEmpty(self) -> None:
        """None and a bare header are empty records; header + data is not."""
        header = LtdbHeader(1, 0).encode()
        self.assertTrue(ltdb.isEmptyRecord(None))
        self.assertTrue(ltdb.isEmptyRecord(header))
        self.assertFalse(ltdb.isEmptyRecord(header + b"x"))


class WithoutFlagsTests(SynchronousTestCase):
    """L{ltdb.withoutFlags}: clear header flag bits in a stored value."""

    def test_clears(self) -> None:
        """Only the flags change; the rest of the header and the data stay."""
        header = LtdbHeader(7, 2, 99, CTDB_REC_RO_HAVE_READONLY | 0x10000)
        value = header.encode() + b"data"
        got = ltdb.withoutFlags(value, CTDB_REC_RO_FLAGS)
        self.assertEqual(LtdbHeader.decode(got)[0], LtdbHeader(7, 2, 99, 0x10000))
        self.assertEqual(got[24:], b"data")

    def test_unchangedIsSame(self) -> None:
        """With none of the bits set the very value comes back."""
        value = LtdbHeader(1, 0, 0, 0x10000).encode() + b"x"
        self.assertIs(ltdb.withoutFlags(value, CTDB_REC_RO_FLAGS), value)


class HashTests(SynchronousTestCase):
    """lookup3 hashlittle as ctdb_hash."""

    def tearDown(self) -> None:
        ltdb._hashFunction = None

    def test_vectorsPure(self) -> None:
        """The pure hash matches the documented vectors."""
        for key, expected in HASH_VECTORS:
            self.assertEqual(ltdb.jenkinsHash(key), expected, key)

    def test_vectorsC(self) -> None:
        """libtdb's tdb_jenkins_hash matches the documented vectors."""
        for key, expected in HASH_VECTORS:
            self.assertEqual(_libtdb.jenkinsHash(key), expected, key)

    def test_vectorsCtdbHash(self) -> None:
        """ctdbHash matches the vectors with either implementation."""
        for impl in (None, _libtdb.hashFunction()):
            ltdb.useHashFunction(impl)
            for key, expected in HASH_VECTORS:
                self.assertEqual(ltdb.ctdbHash(key), expected, key)

    def test_defaultUsesLibtdb(self) -> None:
        """With libtdb installed, ctdbHash picks the C implementation."""
        ltdb._hashFunction = None
        self.assertEqual(ltdb.ctdbHash(b"test"), 0xBE0C1952)
        self.assertIsNot(ltdb._hashFunction, ltdb.jenkinsHash)

    def test_blockBoundaries(self) -> None:
        """Pure and C agree on every length around the 12-byte block edges."""
        for n in range(50):
            key = os.urandom(n)
            self.assertEqual(ltdb.jenkinsHash(key), _libtdb.jenkinsHash(key), n)

    @given(st.binary(max_size=300))
    @settings(max_examples=300, deadline=None)
    def test_agreesWithLibtdb(self, key: bytes) -> None:
        """Pure and libtdb's tdb_jenkins_hash agree on random keys."""
        self.assertEqual(ltdb.jenkinsHash(key), _libtdb.jenkinsHash(key))

    def test_acceptsBytesLike(self) -> None:
        """bytearray and memoryview keys hash like bytes."""
        self.assertEqual(ltdb.jenkinsHash(bytearray(b"key1")), 0x1DE0DF49)
        self.assertEqual(ltdb.jenkinsHash(memoryview(b"test")), 0xBE0C1952)

    def test_dbId(self) -> None:
        """dbId hashes the name with its trailing NUL."""
        self.assertEqual(ltdb.dbId("__db_sequence_number__"), 0xD64D294D)
        self.assertEqual(ltdb.dbId("a"), ltdb.jenkinsHash(b"a\0"))

    def test_lmaster(self) -> None:
        """lmaster indexes the vnn map by hash modulo its size."""
        vnnMap = [4, 7, 9]
        for key, expected in HASH_VECTORS:
            self.assertEqual(ltdb.lmaster(key, vnnMap), vnnMap[expected % 3])
        self.assertEqual(ltdb.lmaster(b"anything", (2,)), 2)

    def test_lmasterEmptyMap(self) -> None:
        """An empty vnn map is a ValueError, not a ZeroDivisionError."""
        self.assertRaises(ValueError, ltdb.lmaster, b"k", [])

    def test_initialHeader(self) -> None:
        """A missing record's header: rsn 0, dmaster = lmaster, AUTOMATIC."""
        vnnMap = [0, 1]
        key = b"test"
        self.assertEqual(
            ltdb.initialHeader(key, vnnMap),
            LtdbHeader(0, vnnMap[0xBE0C1952 % 2], 0, CTDB_REC_FLAG_AUTOMATIC),
        )


class DbFilesTests(SynchronousTestCase):
    """ctdb_db_tdb_flags and the database path rule."""

    def test_persistentFlags(self) -> None:
        """Persistent databases: TDB_DEFAULT plus DISALLOW_NESTING."""
        self.assertEqual(
            ltdb.dbTdbFlags(CTDB_DB_FLAGS_PERSISTENT),
            TDB_DEFAULT | TDB_DISALLOW_NESTING,
        )
        self.assertEqual(
            ltdb.dbTdbFlags(CTDB_DB_FLAGS_PERSISTENT, withMutex=True),
            TDB_DISALLOW_NESTING,
        )

    def test_volatileFlags(self) -> None:
        """Volatile: NOSYNC|CLEAR_IF_FIRST|INCOMPATIBLE_HASH (+MUTEX)."""
        base = (
            TDB_NOSYNC
            | TDB_CLEAR_IF_FIRST
            | TDB_INCOMPATIBLE_HASH
            | TDB_DISALLOW_NESTING
        )
        self.assertEqual(ltdb.dbTdbFlags(0), base)
        self.assertEqual(ltdb.dbTdbFlags(0), 0x0C41)
        self.assertEqual(ltdb.dbTdbFlags(0, withMutex=True), base | TDB_MUTEX_LOCKING)
        self.assertEqual(
            ltdb.dbTdbFlags(CTDB_DB_FLAGS_STICKY | CTDB_DB_FLAGS_READONLY), base
        )
        self.assertEqual(ltdb.dbTdbFlags(0, withValgrind=True), base | TDB_NOMMAP)

    def test_replicatedFlags(self) -> None:
        """Replicated: as volatile but never mutexes."""
        self.assertEqual(
            ltdb.dbTdbFlags(CTDB_DB_FLAGS_REPLICATED, withMutex=True),
            TDB_NOSYNC
            | TDB_CLEAR_IF_FIRST
            | TDB_INCOMPATIBLE_HASH
            | TDB_DISALLOW_NESTING,
        )

    def test_path(self) -> None:
        """<dir>/<name>.<pnn>, persistent dir only for persistent databases."""
        args = ("/var/vol", "/var/per")
        self.assertEqual(ltdb.dbPath("a.tdb", 2, 0, *args), "/var/vol/a.tdb.2")
        self.assertEqual(
            ltdb.dbPath("p.tdb", 0, CTDB_DB_FLAGS_PERSISTENT, *args), "/var/per/p.tdb.0"
        )
        self.assertEqual(
            ltdb.dbPath("r.tdb", 1, CTDB_DB_FLAGS_REPLICATED, *args), "/var/vol/r.tdb.1"
        )

    def test_badName(self) -> None:
        """Names that could leave the directory are refused."""
        for name in ("", "../x", "a/b", "nul\0"):
            self.assertRaises(ValueError, ltdb.dbPath, name, 0, 0, "/d", "/p")
