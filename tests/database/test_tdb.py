"""Tests for L{ctdb.database.tdb}: the TDB class over our libtdb binding."""

from __future__ import annotations

import ctypes
import errno
import os
import select
import shutil
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from ctdb.database import _libtdb, ltdb
from ctdb.database.ltdb import LtdbHeader
from ctdb.database.tdb import (
    TDB,
    TDB_CLEAR_IF_FIRST,
    TDB_DISALLOW_NESTING,
    TDB_ERR_EXISTS,
    TDB_ERR_NESTING,
    TDB_ERR_NOEXIST,
    TDB_ERR_RDONLY,
    TDB_INCOMPATIBLE_HASH,
    TDB_INSERT,
    TDB_INTERNAL,
    TDB_MODIFY,
    TDB_MUTEX_LOCKING,
    TDB_NOSYNC,
    TDB_SEQNUM,
    TDBError,
    robustMutexesAvailable,
)
from ctdb.errors import CTDBError

#: The flags ctdbd opens a volatile database with (mutexes off).
VOLATILE = ltdb.dbTdbFlags(0)


class ConstantTests(SynchronousTestCase):
    """The binding's constants match tdb.h of tdb 1.4."""

    def test_openFlags(self) -> None:
        """TDB_* open flags have their tdb.h values."""
        self.assertEqual(
            [
                _libtdb.TDB_DEFAULT,
                _libtdb.TDB_CLEAR_IF_FIRST,
                _libtdb.TDB_INTERNAL,
                _libtdb.TDB_NOLOCK,
                _libtdb.TDB_NOMMAP,
                _libtdb.TDB_CONVERT,
                _libtdb.TDB_BIGENDIAN,
                _libtdb.TDB_NOSYNC,
                _libtdb.TDB_SEQNUM,
                _libtdb.TDB_VOLATILE,
                _libtdb.TDB_ALLOW_NESTING,
                _libtdb.TDB_DISALLOW_NESTING,
                _libtdb.TDB_INCOMPATIBLE_HASH,
                _libtdb.TDB_MUTEX_LOCKING,
            ],
            [0] + [1 << i for i in range(13)],
        )

    def test_storeFlagsAndErrors(self) -> None:
        """Store flags and the enum TDB_ERROR values."""
        self.assertEqual((_libtdb.TDB_REPLACE, TDB_INSERT, TDB_MODIFY), (1, 2, 3))
        self.assertEqual(
            (TDB_ERR_EXISTS, TDB_ERR_NOEXIST, TDB_ERR_RDONLY, TDB_ERR_NESTING),
            (5, 8, 10, 11),
        )

    def test_loaded(self) -> None:
        """libtdb loads, with the optional symbols of 1.4.x present."""
        lib = _libtdb.load()
        self.assertIs(_libtdb.load(), lib)
        for name in ("tdb_storev", "tdb_jenkins_hash", "tdb_transaction_active"):
            self.assertTrue(lib.has(name), name)


class LoadTests(SynchronousTestCase):
    """Loading libtdb fails clearly when it is missing."""

    def test_missingLibrary(self) -> None:
        """A library that does not exist raises TDBUnavailable naming libtdb1."""
        e = self.assertRaises(
            _libtdb.TDBUnavailable,
            _libtdb._openLibrary,
            ("libtxctdb-no-such-library.so.9",),
            False,
        )
        self.assertIn("libtdb1", str(e))
        self.assertIn("libtxctdb-no-such-library.so.9", str(e))
        self.assertIsInstance(e, CTDBError)

    def test_missingSymbol(self) -> None:
        """A library without tdb_open (here libc) is refused."""
        libc = ctypes.CDLL("libc.so.6")
        e = self.assertRaises(_libtdb.TDBUnavailable, _libtdb.LibTDB, libc, libc, "c")
        self.assertIn("tdb_open", str(e))


class TDBTestMixin:
    """
    Opens a fresh file-backed TDB per test.  Files live in a private
    temporary directory removed at cleanup (trial's mktemp would litter the
    checkout when the tests run under pytest).
    """

    addCleanup: Any
    #: the handle class under test: with the compiled binding, or without
    #: (L{CtypesTDB}: the same cases again)
    tdbClass: type[TDB] = TDB

    def tempPath(self) -> str:
        directory = getattr(self, "_tempDirectory", None)
        if directory is None:
            directory = tempfile.mkdtemp(prefix="txctdb-tdb-")
            self._tempDirectory = directory
            self.addCleanup(shutil.rmtree, directory, True)
        fd, path = tempfile.mkstemp(suffix=".tdb", dir=directory)
        os.close(fd)
        os.unlink(path)
        return path

    def openTDB(self, flags: int = VOLATILE, path: str | None = None) -> TDB:
        if path is None:
            path = self.tempPath()
        db = self.tdbClass(path, 0, flags)
        self.addCleanup(db.close)
        return db


class RecordTests(TDBTestMixin, SynchronousTestCase):
    """store, fetch, delete, exists."""

    def test_storeFetch(self) -> None:
        """A stored value is fetched back byte for byte, NULs included."""
        db = self.openTDB()
        db.store(b"k\0ey", b"\0value\xff\0")
        self.assertEqual(db.fetch(b"k\0ey"), b"\0value\xff\0")

    def test_missing(self) -> None:
        """Fetching a missing key returns None; [] raises KeyError."""
        db = self.openTDB()
        self.assertIsNone(db.fetch(b"nope"))
        self.assertRaises(KeyError, db.__getitem__, b"nope")

    def test_empty(self) -> None:
        """An empty key and an empty value are real records, not None."""
        db = self.openTDB()
        db.store(b"", b"")
        self.assertEqual(db.fetch(b""), b"")
        self.assertTrue(db.exists(b""))
        db.store(b"k", b"")
        self.assertEqual(db.fetch(b"k"), b"")

    def test_bigValue(self) -> None:
        """A 1 MiB value round-trips."""
        db = self.openTDB()
        value = os.urandom(1 << 20)
        db.store(b"big", value)
        self.assertEqual(db.fetch(b"big"), value)

    def test_replace(self) -> None:
        """The default store flag replaces an existing value."""
        db = self.openTDB()
        db[b"k"] = b"one"
        db[b"k"] = b"two"
        self.assertEqual(db[b"k"], b"two")

    def test_insertExisting(self) -> None:
        """TDB_INSERT on an existing key raises TDBError(TDB_ERR_EXISTS)."""
        db = self.openTDB()
        db.store(b"k", b"v", TDB_INSERT)
        e = self.assertRaises(TDBError, db.store, b"k", b"w", TDB_INSERT)
        self.assertEqual(e.code, TDB_ERR_EXISTS)
        self.assertIn("Record exists", str(e))
        self.assertIsInstance(e, CTDBError)
        self.assertEqual(db.fetch(b"k"), b"v")

    def test_modifyMissing(self) -> None:
        """TDB_MODIFY on a missing key raises TDBError(TDB_ERR_NOEXIST)."""
        db = self.openTDB()
        e = self.assertRaises(TDBError, db.store, b"k", b"v", TDB_MODIFY)
        self.assertEqual(e.code, TDB_ERR_NOEXIST)
        db.store(b"k", b"v")
        db.store(b"k", b"w", TDB_MODIFY)
        self.assertEqual(db.fetch(b"k"), b"w")

    def test_badFlag(self) -> None:
        """An unknown store flag is refused before reaching C."""
        db = self.openTDB()
        self.assertRaises(ValueError, db.store, b"k", b"v", 99)

    def test_delete(self) -> None:
        """delete reports whether a record existed; del raises KeyError if not."""
        db = self.openTDB()
        db.store(b"k", b"v")
        self.assertTrue(db.delete(b"k"))
        self.assertFalse(db.delete(b"k"))
        self.assertIsNone(db.fetch(b"k"))
        self.assertRaises(KeyError, db.__delitem__, b"k")

    def test_exists(self) -> None:
        """exists and `in` follow store and delete."""
        db = self.openTDB()
        self.assertFalse(db.exists(b"k"))
        db.store(b"k", b"v")
        self.assertTrue(db.exists(b"k"))
        self.assertIn(b"k", db)
        db.delete(b"k")
        self.assertNotIn(b"k", db)

    def test_badTypes(self) -> None:
        """None and str keys or values raise TypeError, never reach C."""
        db = self.openTDB()
        self.assertRaises(TypeError, db.fetch, None)
        self.assertRaises(TypeError, db.fetch, "key")
        self.assertRaises(TypeError, db.store, b"k", None)
        self.assertRaises(TypeError, db.store, None, b"v")
        self.assertRaises(TypeError, db.delete, 3)
        self.assertRaises(TypeError, db.chainLockNonblock, None)

    def test_bytesLike(self) -> None:
        """bytearray and memoryview are accepted as keys and values."""
        db = self.openTDB()
        db.store(bytearray(b"k"), memoryview(b"v"))
        self.assertEqual(db.fetch(memoryview(b"k")), b"v")

    def test_storev(self) -> None:
        """storev stores the concatenation of its parts (header + data)."""
        db = self.openTDB()
        header = LtdbHeader(7, 2)
        db.storev(b"k", [header.encode(), b"data"])
        self.assertEqual(ltdb.splitRecord(db.fetch(b"k") or b""), (header, b"data"))
        db.storev(b"e", [])
        self.assertEqual(db.fetch(b"e"), b"")
        e = self.assertRaises(TDBError, db.storev, b"k", [b"x"], TDB_INSERT)
        self.assertEqual(e.code, TDB_ERR_EXISTS)

    def test_wipeAll(self) -> None:
        """wipeAll deletes every record."""
        db = self.openTDB()
        for i in range(20):
            db.store(b"%d" % i, b"v")
        db.wipeAll()
        self.assertEqual(db.traverse(), [])
        self.assertEqual(len(db), 0)

    def test_repack(self) -> None:
        """repack keeps the records."""
        db = self.openTDB()
        for i in range(50):
            db.store(b"%d" % i, b"v" * 100)
        for i in range(40):
            db.delete(b"%d" % i)
        db.repack()
        self.assertEqual(sorted(db.keys()), sorted(b"%d" % i for i in range(40, 50)))

    def test_persistsAcrossReopen(self) -> None:
        """Records of a TDB_DEFAULT file survive close and reopen."""
        path = self.tempPath()
        with self.tdbClass(path) as db:
            db.store(b"k", b"v")
        self.assertTrue(db.closed)
        with self.tdbClass(path) as db:
            self.assertEqual(db.fetch(b"k"), b"v")

    def test_clearIfFirst(self) -> None:
        """TDB_CLEAR_IF_FIRST wipes the file at the first open, as ctdbd relies on."""
        path = self.tempPath()
        with self.tdbClass(path, 0, VOLATILE) as db:
            db.store(b"k", b"v")
        with self.tdbClass(path, 0, VOLATILE) as db:
            self.assertIsNone(db.fetch(b"k"))

    def test_internal(self) -> None:
        """A TDB_INTERNAL database works in memory with fd -1."""
        with self.tdbClass("mem", 0, TDB_INTERNAL) as db:
            db.store(b"k", b"v")
            self.assertEqual(db.fetch(b"k"), b"v")
            self.assertEqual(db.fd, -1)


class TraverseTests(TDBTestMixin, SynchronousTestCase):
    """tdb_traverse and tdb_traverse_read."""

    def setUp(self) -> None:
        self.db = self.openTDB()
        self.records = {b"k%d" % i: b"v%d" % i for i in range(30)}
        self.records[b""] = b""
        for key, value in self.records.items():
            self.db.store(key, value)

    def test_traverse(self) -> None:
        """traverse returns every (key, value) pair."""
        self.assertEqual(dict(self.db.traverse()), self.records)
        self.assertEqual(len(self.db.traverse()), len(self.records))
        self.assertEqual(len(self.db), len(self.records))
        self.assertEqual(set(self.db), set(self.records))

    def test_callback(self) -> None:
        """traverseEach calls back per record and returns the count."""
        seen: dict[bytes, bytes] = {}
        count = self.db.traverseEach(seen.__setitem__)
        self.assertEqual(count, len(self.records))
        self.assertEqual(seen, self.records)

    def test_stop(self) -> None:
        """A true return from the callback stops the traversal."""
        seen: list[bytes] = []

        def cb(key: bytes, value: bytes) -> bool:
            seen.append(key)
            return len(seen) == 3

        self.db.traverseEach(cb)
        self.assertEqual(len(seen), 3)

    def test_exception(self) -> None:
        """An exception in the callback stops the traversal and propagates."""
        seen: list[bytes] = []

        def cb(key: bytes, value: bytes) -> None:
            seen.append(key)
            raise ZeroDivisionError()

        self.assertRaises(ZeroDivisionError, self.db.traverseEach, cb)
        self.assertEqual(len(seen), 1)
        # The handle is still usable: no lock was leaked.
        self.assertTrue(self.db.chainLockNonblock(b"k1"))
        self.db.chainUnlock(b"k1")
        self.assertEqual(len(self.db.traverse()), len(self.records))

    def test_deleteDuring(self) -> None:
        """A write traversal may delete the records it visits (vacuuming)."""

        def cb(key: bytes, value: bytes) -> None:
            if key.endswith(b"1"):
                self.db.delete(key)

        self.db.traverseEach(cb)
        expected = {k: v for k, v in self.records.items() if not k.endswith(b"1")}
        self.assertEqual(dict(self.db.traverse()), expected)

    def test_readOnly(self) -> None:
        """A write inside a read traversal fails with TDB_ERR_RDONLY."""

        def cb(key: bytes, value: bytes) -> None:
            self.db.delete(key)

        e = self.assertRaises(TDBError, self.db.traverseEach, cb, readOnly=True)
        self.assertEqual(e.code, TDB_ERR_RDONLY)
        self.assertEqual(len(self.db.traverse()), len(self.records))


class ChunkTests(TDBTestMixin, SynchronousTestCase):
    """tdb_traverse_chain and the chunked reading built on it."""

    def fill(self, db: TDB, count: int, size: int) -> dict[bytes, bytes]:
        records = {b"key-%06d" % i: b"%06d" % i + b"x" * size for i in range(count)}
        db.transactionStart()
        for key, value in records.items():
            db.store(key, value)
        db.transactionCommit()
        return records

    def test_chainsCoverEveryRecord(self) -> None:
        """Each record is in exactly one hash chain: the chains' traversals
        together see every record once, and the counts add up."""
        db = self.openTDB()
        records = self.fill(db, 300, 10)
        seen: list[tuple[bytes, bytes]] = []
        counts = [
            db.traverseChain(chain, lambda k, v: seen.append((k, v)))
            for chain in range(db.hashSize)
        ]
        self.assertEqual(sum(counts), 300)
        self.assertEqual(len(seen), 300)
        self.assertEqual(dict(seen), records)

    def test_chainOutOfRange(self) -> None:
        """A chain beyond the hash size is an error, not a crash."""
        db = self.openTDB()
        self.assertRaises(TDBError, db.traverseChain, db.hashSize, lambda k, v: None)

    def test_smallFileOneChunk(self) -> None:
        """A small file is read in one traversal: one list of everything."""
        db = self.openTDB()
        records = self.fill(db, 50, 10)
        chunks = list(db.chunks(10))
        self.assertEqual(len(chunks), 1)
        self.assertEqual(dict(chunks[0]), records)

    def test_largeFileInSteps(self) -> None:
        """A file larger than one traversal's worth is read chain by chain
        in lists of about the size asked, each record once, and lazily:
        nothing is read before a list is asked for."""
        db = self.openTDB()
        records = self.fill(db, 6000, 400)
        self.assertGreater(db.mapSize, 2 * 1024 * 1024)
        chunks = db.chunks(1000)
        first = next(chunks)
        self.assertGreaterEqual(len(first), 1000)
        self.assertLess(len(first), 1500)
        rest = [pair for chunk in chunks for pair in chunk]
        pairs = first + rest
        self.assertEqual(len(pairs), len({k for k, _ in pairs}))
        self.assertEqual(dict(pairs), records)

    def test_chunksInsideTransaction(self) -> None:
        """Inside a transaction (a recovery's pull) the chains read the
        transaction's view."""
        db = self.openTDB()
        records = self.fill(db, 6000, 400)
        db.transactionStart()
        db.store(b"key-000001", b"changed")
        pairs = [pair for chunk in db.chunks(1000) for pair in chunk]
        db.transactionCancel()
        self.assertEqual(dict(pairs), {**records, b"key-000001": b"changed"})


class TransactionTests(TDBTestMixin, SynchronousTestCase):
    """Transactions."""

    def test_commit(self) -> None:
        """Committed changes are visible, also after reopening."""
        path = self.tempPath()
        db = self.openTDB(0, path)
        db.transactionStart()
        self.assertTrue(db.transactionActive)
        db.store(b"k", b"v")
        db.transactionPrepareCommit()
        db.transactionCommit()
        self.assertFalse(db.transactionActive)
        db.close()
        with self.tdbClass(path) as again:
            self.assertEqual(again.fetch(b"k"), b"v")

    def test_cancel(self) -> None:
        """Cancelled changes are discarded."""
        db = self.openTDB()
        db.store(b"old", b"1")
        db.transactionStart()
        db.store(b"k", b"v")
        db.delete(b"old")
        self.assertEqual(db.fetch(b"k"), b"v")
        db.transactionCancel()
        self.assertIsNone(db.fetch(b"k"))
        self.assertEqual(db.fetch(b"old"), b"1")

    def test_contextManager(self) -> None:
        """transaction() commits on success and cancels on an exception."""
        db = self.openTDB()
        with db.transaction():
            db.store(b"a", b"1")
        with self.assertRaises(KeyError), db.transaction():
            db.store(b"b", b"2")
            raise KeyError("boom")
        self.assertEqual(dict(db.traverse()), {b"a": b"1"})
        self.assertFalse(db.transactionActive)

    def test_noNesting(self) -> None:
        """With TDB_DISALLOW_NESTING a nested start raises TDB_ERR_NESTING."""
        db = self.openTDB()
        self.assertTrue(db.flags & TDB_DISALLOW_NESTING)
        db.transactionStart()
        e = self.assertRaises(TDBError, db.transactionStart)
        self.assertEqual(e.code, TDB_ERR_NESTING)
        db.transactionCancel()

    def test_commitWithoutStart(self) -> None:
        """Committing with no transaction raises TDBError."""
        db = self.openTDB()
        self.assertRaises(TDBError, db.transactionCommit)
        self.assertRaises(TDBError, db.transactionCancel)


class PropertyTests(TDBTestMixin, SynchronousTestCase):
    """seqnum, flags, fd, name, closing."""

    def test_seqnum(self) -> None:
        """With TDB_SEQNUM every store and delete increments the seqnum."""
        db = self.openTDB(TDB_SEQNUM)
        start = db.seqnum
        db.store(b"k", b"v")
        db.delete(b"k")
        self.assertEqual(db.seqnum, start + 2)

    def test_enableSeqnum(self) -> None:
        """enableSeqnum turns seqnum maintenance on."""
        db = self.openTDB(0)
        db.store(b"k", b"v")
        before = db.seqnum
        db.enableSeqnum()
        db.store(b"k", b"w")
        self.assertEqual(db.seqnum, before + 1)

    def test_flags(self) -> None:
        """The open flags are reported by flags; add/removeFlags change them."""
        db = self.openTDB()
        for flag in (TDB_NOSYNC, TDB_CLEAR_IF_FIRST, TDB_INCOMPATIBLE_HASH):
            self.assertTrue(db.flags & flag, flag)
        db.removeFlags(TDB_NOSYNC)
        self.assertFalse(db.flags & TDB_NOSYNC)
        db.addFlags(TDB_NOSYNC)
        self.assertTrue(db.flags & TDB_NOSYNC)

    def test_fdAndName(self) -> None:
        """fd is the open file, name its path, hashSize the requested chains."""
        path = self.tempPath()
        db = self.tdbClass(path, 1009, VOLATILE)
        self.addCleanup(db.close)
        self.assertEqual(os.fstat(db.fd).st_ino, os.stat(path).st_ino)
        self.assertEqual(db.name, path)
        self.assertEqual(db.hashSize, 1009)
        self.assertGreater(db.mapSize, 0)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

    def test_closed(self) -> None:
        """A closed handle raises TDBError; closing twice is harmless."""
        db = self.openTDB()
        db.close()
        db.close()
        self.assertIn("closed", repr(db))
        for call in (
            lambda: db.fetch(b"k"),
            lambda: db.store(b"k", b"v"),
            lambda: db.traverse(),
            lambda: db.chainLockNonblock(b"k"),
            lambda: db.seqnum,
            lambda: db.fd,
        ):
            self.assertRaises(TDBError, call)

    def test_openMissingDirectory(self) -> None:
        """An open that fails reports errno and the path."""
        path = os.path.join(self.tempPath(), "missing", "x.tdb")
        e = self.assertRaises(TDBError, TDB, path)
        self.assertEqual(e.errno, errno.ENOENT)
        self.assertIn(path, str(e))

    def test_openReadOnlyMissing(self) -> None:
        """O_RDONLY of a missing file fails with ENOENT rather than creating it."""
        path = self.tempPath()
        e = self.assertRaises(TDBError, TDB, path, 0, 0, os.O_RDONLY)
        self.assertEqual(e.errno, errno.ENOENT)
        self.assertFalse(os.path.exists(path))

    def test_readOnlyStore(self) -> None:
        """Writing through an O_RDONLY handle raises TDBError."""
        path = self.tempPath()
        self.tdbClass(path).close()
        db = self.tdbClass(path, 0, 0, os.O_RDONLY)
        self.addCleanup(db.close)
        self.assertRaises(TDBError, db.store, b"k", b"v")

    def test_nulInPath(self) -> None:
        """A path with a NUL byte is refused."""
        self.assertRaises(ValueError, TDB, "bad\0path")


_CHILD = textwrap.dedent(
    """
    import sys
    from ctdb.database.tdb import TDB
    db = TDB(sys.argv[1], 0, int(sys.argv[2]))
    what = sys.argv[3]
    if what == "chain":
        db.chainLock(b"key")
    elif what == "all":
        db.lockAll()
    else:
        db.transactionStart()
    print("locked", flush=True)
    sys.stdin.readline()
    if what == "chain":
        db.chainUnlock(b"key")
    elif what == "all":
        db.unlockAll()
    else:
        db.transactionCancel()
    print("unlocked", flush=True)
    sys.stdin.readline()
    db.close()
    """
)


class LockingTests(TDBTestMixin, SynchronousTestCase):
    """Locks held by another process: the nonblocking calls never wait."""

    def spawnLocker(self, path: str, flags: int, what: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, path, str(flags), what],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

        def cleanup() -> None:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.close()
            proc.stdout.close()

        self.addCleanup(cleanup)
        return proc

    def expectLine(self, proc: subprocess.Popen[str], line: str) -> None:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        self.assertTrue(ready, f"child did not say {line!r}")
        self.assertEqual(proc.stdout.readline().strip(), line)

    def tell(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()

    def checkChainLock(self, flags: int) -> None:
        path = self.tempPath()
        db = self.openTDB(flags, path)
        db.store(b"key", b"v")
        proc = self.spawnLocker(path, flags, "chain")
        self.expectLine(proc, "locked")
        self.assertFalse(db.chainLockNonblock(b"key"))
        # Another chain is not affected.
        self.assertTrue(db.chainLockNonblock(b"other key"))
        db.chainUnlock(b"other key")
        self.tell(proc)
        self.expectLine(proc, "unlocked")
        self.assertTrue(db.chainLockNonblock(b"key"))
        db.chainUnlock(b"key")
        self.tell(proc)
        self.assertEqual(proc.wait(20), 0)

    def test_chainLockFcntl(self) -> None:
        """A chain lock held by a child makes chainLockNonblock False until released."""
        self.checkChainLock(VOLATILE)

    def test_chainLockMutex(self) -> None:
        """The same with TDB_MUTEX_LOCKING, as ctdbd opens volatile databases."""
        self.assertTrue(robustMutexesAvailable())
        self.checkChainLock(ltdb.dbTdbFlags(0, withMutex=True))

    def test_chainLockReadNonblock(self) -> None:
        """A read lock is refused while a child holds the write chain lock."""
        path = self.tempPath()
        db = self.openTDB(VOLATILE, path)
        proc = self.spawnLocker(path, VOLATILE, "chain")
        self.expectLine(proc, "locked")
        self.assertFalse(db.chainLockReadNonblock(b"key"))
        self.tell(proc)
        self.expectLine(proc, "unlocked")
        self.assertTrue(db.chainLockReadNonblock(b"key"))
        db.chainUnlockRead(b"key")
        self.tell(proc)
        self.assertEqual(proc.wait(20), 0)

    def test_lockAllNonblock(self) -> None:
        """lockAllNonblock fails while a child holds the whole database."""
        path = self.tempPath()
        db = self.openTDB(VOLATILE, path)
        proc = self.spawnLocker(path, VOLATILE, "all")
        self.expectLine(proc, "locked")
        self.assertFalse(db.lockAllNonblock())
        self.assertFalse(db.chainLockNonblock(b"anything"))
        self.tell(proc)
        self.expectLine(proc, "unlocked")
        self.assertTrue(db.lockAllNonblock())
        db.unlockAll()
        self.tell(proc)
        self.assertEqual(proc.wait(20), 0)

    def test_transactionNonblock(self) -> None:
        """transactionStartNonblock fails while a child holds a transaction."""
        path = self.tempPath()
        db = self.openTDB(VOLATILE, path)
        proc = self.spawnLocker(path, VOLATILE, "transaction")
        self.expectLine(proc, "locked")
        self.assertFalse(db.transactionStartNonblock())
        self.tell(proc)
        self.expectLine(proc, "unlocked")
        self.assertTrue(db.transactionStartNonblock())
        db.transactionCancel()
        self.tell(proc)
        self.assertEqual(proc.wait(20), 0)

    def test_chainLockSameProcess(self) -> None:
        """Our own chain locks nest; chainLocked releases on exit."""
        db = self.openTDB()
        with db.chainLocked(b"k"):
            self.assertTrue(db.chainLockNonblock(b"k"))
            db.chainUnlock(b"k")
            db.store(b"k", b"v")
        self.assertEqual(db.fetch(b"k"), b"v")


class SambaToolsTests(TDBTestMixin, SynchronousTestCase):
    """Samba's tdbdump and ltdbtool read our files."""

    def run_(self, *argv: str) -> str:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=30, check=False
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_tdbdump(self) -> None:
        """tdbdump lists the records of an open volatile ctdb TDB."""
        path = self.tempPath()
        db = self.openTDB(VOLATILE, path)
        db.store(b"key1", b"value\x01")
        db.store(b"k\0", b"")
        out = self.run_("tdbdump", path)
        self.assertIn('{\nkey(4) = "key1"\ndata(6) = "value\\01"\n}\n', out)
        self.assertIn('{\nkey(2) = "k\\00"\ndata(0) = ""\n}\n', out)
        self.assertEqual(out.count("{\n"), 2)
        self.assertEqual(self.run_("tdbdump", "-k", "key1", path), "value\\01")

    def test_tdbdumpMutex(self) -> None:
        """tdbdump also reads a TDB_MUTEX_LOCKING file while we hold it open."""
        path = self.tempPath()
        db = self.openTDB(ltdb.dbTdbFlags(0, withMutex=True), path)
        self.assertTrue(db.flags & TDB_MUTEX_LOCKING)
        db.store(b"a", b"b")
        self.assertEqual(
            self.run_("tdbdump", path), '{\nkey(1) = "a"\ndata(1) = "b"\n}\n'
        )

    def test_ltdbtool(self) -> None:
        """ltdbtool dump -p shows our headers; bare headers count as empty."""
        path = self.tempPath()
        db = self.openTDB(VOLATILE, path)
        header = LtdbHeader(
            rsn=12, dmaster=2, flags=ltdb.CTDB_REC_FLAG_MIGRATED_WITH_DATA
        )
        db.storev(b"rec", [header.encode(), b"payload"])
        db.store(b"gone", LtdbHeader(3, 1).encode())
        out = self.run_("ltdbtool", "dump", "-p", path)
        self.assertEqual(
            out,
            '{\nkey(3) = "rec"\ndmaster: 2\nrsn: 12\nflags: 0x10000\n'
            'data(7) = "payload"\n}\n',
        )
        withEmpty = self.run_("ltdbtool", "dump", "-e", path)
        self.assertIn('{\nkey(4) = "gone"\ndata(0) = ""\n}\n', withEmpty)

    def test_ltdbtoolConvert(self) -> None:
        """A TDB written by ltdbtool convert is read back by our class."""
        path = self.tempPath()
        out = self.tempPath()
        with self.tdbClass(path) as db:
            db.store(b"k", LtdbHeader(5, 0).encode() + b"v")
        self.run_("ltdbtool", "convert", path, out)
        with self.tdbClass(out, 0, 0, os.O_RDONLY) as db:
            self.assertEqual(ltdb.splitRecord(db[b"k"]), (LtdbHeader(5, 0), b"v"))


class CtypesTDB(TDB):
    """A handle over ctypes alone, as where the compiled binding was not
    built."""

    compiled = None


# The same cases again over ctypes alone: CtypesRecordTests and so on.
for _case in (
    RecordTests,
    TraverseTests,
    ChunkTests,
    TransactionTests,
    PropertyTests,
    LockingTests,
):
    globals()[f"Ctypes{_case.__name__}"] = type(
        f"Ctypes{_case.__name__}",
        (_case,),
        {"tdbClass": CtypesTDB, "__doc__": f"{_case.__doc__} (ctypes alone)"},
    )
del _case


class CompiledBindingTests(TDBTestMixin, SynchronousTestCase):
    """The compiled half of the binding (ctdb/database/_tdbc_build.py)."""

    def test_built(self) -> None:
        """
        C{make install} built it (the Makefile installs libtdb-dev and a
        compiler), and handles use it; without it they use ctypes alone.
        """
        self.assertIsNotNone(_libtdb.compiled())
        self.assertIs(TDB.compiled, _libtdb.compiled())
        db = self.openTDB()
        self.assertIsNotNone(db._c)
        self.assertIsNone(CtypesTDB(self.tempPath(), 0, VOLATILE)._c)

    def test_bothBindingsOneFile(self) -> None:
        """What one binding writes the other reads (libtdb refuses a second
        handle on a file in one process: one after the other; and a
        volatile one would be wiped at each open)."""
        path = self.tempPath()
        with TDB(path, 0, 0) as fast:
            fast.store(b"a", b"1")
            fast.store(b"gone", b"x")
        with CtypesTDB(path, 0, 0) as slow:
            self.assertEqual(slow.fetch(b"a"), b"1")
            slow.store(b"b", b"")
            slow.delete(b"gone")
            expected = sorted(slow.traverse())
        with TDB(path, 0, 0) as fast:
            self.assertEqual((fast.fetch(b"b"), fast.fetch(b"gone")), (b"", None))
            self.assertEqual(sorted(fast.traverse()), expected)

    def test_closedHandle(self) -> None:
        """A closed handle raises, with the compiled binding too, instead
        of handing libtdb a dangling pointer."""
        db = self.openTDB()
        db.close()
        for call in (
            lambda: db.fetch(b"k"),
            lambda: db.store(b"k", b"v"),
            lambda: db.exists(b"k"),
            lambda: db.delete(b"k"),
            lambda: db.chainLockNonblock(b"k"),
            lambda: db.chainUnlock(b"k"),
            lambda: db.traverse(),
        ):
            self.assertRaises(TDBError, call)

    def test_hash(self) -> None:
        """The key hash through the compiled binding is libtdb's, which the
        pure lookup3 of L{ltdb.jenkinsHash} also computes."""
        compiledHash = _libtdb.hashFunction()
        assert compiledHash is not None
        for key in (b"", b"a", b"key", bytes(range(256)) * 3):
            self.assertEqual(compiledHash(key), ltdb.jenkinsHash(key))
            self.assertEqual(compiledHash(bytearray(key)), ltdb.jenkinsHash(key))  # type: ignore[arg-type]
