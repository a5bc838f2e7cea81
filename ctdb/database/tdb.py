# -*- test-case-name: tests.database.test_tdb -*-
"""
A small Pythonic handle on one TDB file, over our private binding to
libtdb: ctypes (L{ctdb.database._libtdb}) for everything, and where it was
built, the compiled cffi module C{ctdb.database._tdbc} for the calls made
for every record (chain locks, fetch, store, exists, delete) and for
traversals, which cost a third as much through it (its build script,
C{ctdb/database/_tdbc_build.py}, says which).  Both give the same results
and errors; L{TDB.compiled} is the one a handle uses.

ctdbd keeps every database in a real TDB that the ctdb tool and Samba also
open directly (CTDB_PROTOCOL.md §2.2), so the file format and the fcntl
chain locks must be libtdb's own.  Keys and values are C{bytes}; every
libtdb failure becomes a L{TDBError} carrying the C{enum TDB_ERROR} code
and C{tdb_errorstr} text, and a closed handle raises instead of handing a
dangling pointer to C.

Locking note: L{TDB.chainLock} and L{TDB.transactionStart} block while
another process holds the lock.  Code running in the reactor thread must
use L{TDB.chainLockNonblock} / L{TDB.transactionStartNonblock} and retry
later (ctdbd does the same: C{tdb_chainlock_nonblock} in
C{ctdb_ltdb_lock_requeue}, the lock helper otherwise).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Any, Self

from ctdb.database import _libtdb
from ctdb.database._libtdb import (
    TDB_ALLOW_NESTING,
    TDB_BIGENDIAN,
    TDB_CLEAR_IF_FIRST,
    TDB_CONVERT,
    TDB_DEFAULT,
    TDB_DISALLOW_NESTING,
    TDB_ERR_CORRUPT,
    TDB_ERR_EINVAL,
    TDB_ERR_EXISTS,
    TDB_ERR_IO,
    TDB_ERR_LOCK,
    TDB_ERR_LOCK_TIMEOUT,
    TDB_ERR_NESTING,
    TDB_ERR_NOEXIST,
    TDB_ERR_NOLOCK,
    TDB_ERR_OOM,
    TDB_ERR_RDONLY,
    TDB_INCOMPATIBLE_HASH,
    TDB_INSERT,
    TDB_INTERNAL,
    TDB_MODIFY,
    TDB_MUTEX_LOCKING,
    TDB_NOLOCK,
    TDB_NOMMAP,
    TDB_NOSYNC,
    TDB_REPLACE,
    TDB_SEQNUM,
    TDB_SUCCESS,
    TDB_VOLATILE,
)
from ctdb.errors import TDBError, TDBUnavailable

__all__ = [
    "TDB",
    "TDB_ALLOW_NESTING",
    "TDB_BIGENDIAN",
    "TDB_CLEAR_IF_FIRST",
    "TDB_CONVERT",
    "TDB_DEFAULT",
    "TDB_DISALLOW_NESTING",
    "TDB_ERR_CORRUPT",
    "TDB_ERR_EINVAL",
    "TDB_ERR_EXISTS",
    "TDB_ERR_IO",
    "TDB_ERR_LOCK",
    "TDB_ERR_LOCK_TIMEOUT",
    "TDB_ERR_NESTING",
    "TDB_ERR_NOEXIST",
    "TDB_ERR_NOLOCK",
    "TDB_ERR_OOM",
    "TDB_ERR_RDONLY",
    "TDB_INCOMPATIBLE_HASH",
    "TDB_INSERT",
    "TDB_INTERNAL",
    "TDB_MODIFY",
    "TDB_MUTEX_LOCKING",
    "TDB_NOLOCK",
    "TDB_NOMMAP",
    "TDB_NOSYNC",
    "TDB_REPLACE",
    "TDB_SEQNUM",
    "TDB_SUCCESS",
    "TDB_VOLATILE",
    "TDBError",
    "TDBUnavailable",
    "available",
    "robustMutexesAvailable",
]

#: the compiled binding (None where it was not built)
_COMPILED = _libtdb.compiled()

#: Flags valid for L{TDB.store}.
_STORE_FLAGS = frozenset((TDB_REPLACE, TDB_INSERT, TDB_MODIFY))

#: L{TDB.chunks} reads a file mapping of up to this many bytes in one
#: traversal (some 20,000 small records: a few tens of milliseconds); a
#: larger one chain by chain
_ONE_TRAVERSE_BYTES = 2 * 1024 * 1024


def available() -> bool:
    """
    @return: whether libtdb can be loaded here.
    """
    return _libtdb.available()


def robustMutexesAvailable() -> bool:
    """
    @return: whether libtdb supports C{TDB_MUTEX_LOCKING} on this system
        (C{tdb_runtime_check_for_robust_mutexes}).
    """
    lib = _libtdb.load()
    fn = lib.tdb_runtime_check_for_robust_mutexes
    return bool(fn()) if fn is not None else False


def _asBytes(value: object, what: str) -> bytes:
    # Checked here, before any pointer is built: None or str must become a
    # TypeError, never a NULL or garbage TDB_DATA.
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"TDB {what} must be bytes, not {type(value).__name__}")


_TraverseCallback = Callable[[bytes, bytes], Any]
#: What keys and values may be given as; they are stored as C{bytes}.
BytesLike = bytes | bytearray | memoryview


def _visit(key: Any, value: Any, handle: Any) -> int:
    """
    The compiled binding's traversal callback (C{txc_visit}): one record to
    the Python callback behind C{handle}.  Returns 1 to stop.
    """
    assert _COMPILED is not None  # registered only when it is there
    ffi = _COMPILED.ffi
    callback, raised = ffi.from_handle(handle)
    try:
        k = ffi.buffer(key.dptr, key.dsize)[:] if key.dsize else b""
        v = ffi.buffer(value.dptr, value.dsize)[:] if value.dsize else b""
        return 1 if callback(k, v) else 0
    except BaseException as e:  # noqa: BLE001
        # as in the ctypes trampoline: stop, and re-raise after the call
        raised.append(e)
        return 1


if _COMPILED is not None:
    _COMPILED.ffi.def_extern(name="txc_visit")(_visit)


class TDB:
    """
    One open TDB file.

    @param path: file name; with C{TDB_INTERNAL} it is only a label.
    @param hashSize: number of hash chains for a new file (0 = libtdb's
        default, 131).
    @param tdbFlags: C{TDB_*} open flags.
    @param openFlags: C{os.O_*} flags.
    @param mode: file mode for a new file.
    @raise TDBError: the open failed (C{errno} is set).
    @raise TDBUnavailable: libtdb is missing.
    """

    #: the compiled binding's module (C{ffi}, C{lib}) this class uses for
    #: its record calls and traversals, or None for ctypes alone (the tests
    #: run the same cases both ways)
    compiled: Any = _COMPILED
    #: the compiled binding's functions and this handle's context pointer
    #: for them; None when closed or without the compiled binding
    _c: Any = None
    _cctx: Any = None

    def __init__(
        self,
        path: str | os.PathLike[str],
        hashSize: int = 0,
        tdbFlags: int = TDB_DEFAULT,
        openFlags: int = os.O_RDWR | os.O_CREAT,
        mode: int = 0o600,
    ) -> None:
        self._lib = _libtdb.load()
        self._ctx: int | None = None
        self.path = os.fspath(path)
        encoded = os.fsencode(self.path)
        if b"\0" in encoded:
            raise ValueError("TDB path contains a NUL byte")
        ctypes.set_errno(0)
        ctx = self._lib.tdb_open_ex(
            encoded,
            int(hashSize),
            int(tdbFlags),
            int(openFlags),
            int(mode),
            None,
            None,
        )
        if not ctx:
            err = ctypes.get_errno()
            raise TDBError(
                "tdb_open_ex",
                os.strerror(err) if err else "open failed",
                errno=err or None,
                path=self.path,
            )
        self._ctx = ctx
        if self.compiled is not None:
            self._c = self.compiled.lib
            self._cctx = self.compiled.ffi.cast("struct tdb_context *", ctx)

    # --- lifecycle -----------------------------------------------------------

    def __repr__(self) -> str:
        state = "open" if self._ctx is not None else "closed"
        return f"<TDB {self.path!r} {state}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        excType: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # A handle dropped without close() would keep its fcntl locks and fd
        # until the process exits; release them.
        if getattr(self, "_ctx", None) is not None:
            with suppress(TDBError):
                self.close()

    @property
    def closed(self) -> bool:
        """Whether L{close} has been called."""
        return self._ctx is None

    def close(self) -> None:
        """
        Close the file, releasing every lock this handle holds (an open
        transaction is cancelled).  Closing twice is harmless.
        """
        ctx, self._ctx = self._ctx, None
        self._c = self._cctx = None
        if ctx is not None and self._lib.tdb_close(ctx) != 0:
            raise TDBError("tdb_close", "close failed", path=self.path)

    def _handle(self) -> int:
        ctx = self._ctx
        if ctx is None:
            raise TDBError("tdb", "the TDB is closed", path=self.path)
        return ctx

    def _error(self, operation: str) -> TDBError:
        ctx = self._handle()
        code = int(self._lib.tdb_error(ctx))
        text = self._lib.tdb_errorstr(ctx) or b""
        return TDBError(
            operation,
            text.decode("utf-8", "replace"),
            code=code,
            path=self.path,
            codeName=_libtdb.ERROR_NAMES.get(code),
        )

    def _check(self, operation: str, rc: int) -> None:
        if rc != 0:
            raise self._error(operation)

    # --- records -------------------------------------------------------------

    def fetch(self, key: BytesLike) -> bytes | None:
        """
        @return: the value stored under C{key}, or C{None} if there is none.
        @raise TDBError: on any failure other than a missing record.
        """
        k = key if type(key) is bytes else _asBytes(key, "key")
        c = self._c
        if c is not None:
            got = c.txc_fetch(self._cctx, k, len(k))
            cptr = got.dptr
            if not cptr:
                self._raiseUnlessMissing("tdb_fetch")
                return None
            try:
                return self.compiled.ffi.buffer(cptr, got.dsize)[:]
            finally:
                c.free(cptr)
        ctx = self._handle()
        lib = self._lib
        data = lib.tdb_fetch(ctx, _libtdb.TDB_DATA_IN(k, len(k)))
        ptr = data.dptr
        if ptr is None:
            self._raiseUnlessMissing("tdb_fetch")
            return None
        try:
            return ctypes.string_at(ptr, data.dsize)
        finally:
            lib.free(ptr)

    def _raiseUnlessMissing(self, operation: str) -> None:
        """C{operation} gave no data: its error, unless the record is only
        missing."""
        if self._lib.tdb_error(self._handle()) not in (TDB_ERR_NOEXIST, TDB_SUCCESS):
            raise self._error(operation)

    def __getitem__(self, key: BytesLike) -> bytes:
        value = self.fetch(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self.exists(_asBytes(key, "key"))

    def exists(self, key: BytesLike) -> bool:
        """
        @return: whether a record is stored under C{key}.
        """
        k = _asBytes(key, "key")
        if self._c is not None:
            return bool(self._c.txc_exists(self._cctx, k, len(k)))
        return bool(
            self._lib.tdb_exists(self._handle(), _libtdb.TDB_DATA_IN(k, len(k)))
        )

    def store(self, key: BytesLike, value: BytesLike, flag: int = TDB_REPLACE) -> None:
        """
        Store C{value} under C{key}.

        @param flag: C{TDB_REPLACE} (default), C{TDB_INSERT} (fail with
            C{TDB_ERR_EXISTS} if present) or C{TDB_MODIFY} (fail with
            C{TDB_ERR_NOEXIST} if absent).
        """
        k = key if type(key) is bytes else _asBytes(key, "key")
        v = value if type(value) is bytes else _asBytes(value, "value")
        if flag not in _STORE_FLAGS:
            raise ValueError(f"bad TDB store flag {flag!r}")
        c = self._c
        if c is not None:
            if c.txc_store(self._cctx, k, len(k), v, len(v), flag):
                raise self._error("tdb_store")
            return
        rc = self._lib.tdb_store(
            self._handle(),
            _libtdb.TDB_DATA_IN(k, len(k)),
            _libtdb.TDB_DATA_IN(v, len(v)),
            flag,
        )
        if rc:
            raise self._error("tdb_store")

    def storev(
        self, key: BytesLike, parts: Sequence[BytesLike], flag: int = TDB_REPLACE
    ) -> None:
        """
        Store the concatenation of C{parts} under C{key} (C{tdb_storev};
        ctdb stores an ltdb header and the record data this way).
        """
        k = _asBytes(key, "key")
        bufs = [_asBytes(p, "value part") for p in parts]
        if flag not in _STORE_FLAGS:
            raise ValueError(f"bad TDB store flag {flag!r}")
        lib = self._lib
        ctx = self._handle()
        if lib.tdb_storev is None or not bufs or self._c is not None:
            # (through the compiled binding one join and one call cost
            # less than building the array)
            self.store(k, b"".join(bufs), flag)
            return
        array = (_libtdb.TDB_DATA_IN * len(bufs))(
            *[_libtdb.TDB_DATA_IN(b, len(b)) for b in bufs]
        )
        rc = lib.tdb_storev(ctx, _libtdb.TDB_DATA_IN(k, len(k)), array, len(bufs), flag)
        self._check("tdb_storev", rc)

    def __setitem__(self, key: BytesLike, value: BytesLike) -> None:
        self.store(key, value)

    def delete(self, key: BytesLike) -> bool:
        """
        Delete the record under C{key}.

        @return: C{True} if a record was deleted, C{False} if none existed.
        """
        k = _asBytes(key, "key")
        ctx = self._handle()
        c = self._c
        if c is not None:
            failed = c.txc_delete(self._cctx, k, len(k))
        else:
            failed = self._lib.tdb_delete(ctx, _libtdb.TDB_DATA_IN(k, len(k)))
        if not failed:
            return True
        if self._lib.tdb_error(ctx) == TDB_ERR_NOEXIST:
            return False
        raise self._error("tdb_delete")

    def __delitem__(self, key: BytesLike) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def wipeAll(self) -> None:
        """Delete every record (C{tdb_wipe_all})."""
        self._check("tdb_wipe_all", self._lib.tdb_wipe_all(self._handle()))

    def repack(self) -> None:
        """Rewrite the file compactly (C{tdb_repack}, inside a transaction)."""
        self._check("tdb_repack", self._lib.tdb_repack(self._handle()))

    # --- traversal -----------------------------------------------------------

    def traverseEach(self, callback: _TraverseCallback, readOnly: bool = False) -> int:
        """
        Call C{callback(key, value)} for each record.  A true return value
        stops the traversal.  With C{readOnly=False} (C{tdb_traverse}) the
        callback may delete or store records; with C{readOnly=True}
        (C{tdb_traverse_read}) only read locks are taken and writes fail.
        An exception from C{callback} stops the traversal and is re-raised.

        @return: the number of records visited.
        """
        name = "tdb_traverse_read" if readOnly else "tdb_traverse"
        c = self._c
        if c is not None:
            cctx = self._cctx
            return self._traverseCompiled(
                name, callback, lambda h: c.txc_traverse(cctx, int(readOnly), h)
            )
        fn = self._lib.tdb_traverse_read if readOnly else self._lib.tdb_traverse
        return self._traverseWith(name, callback, lambda f: fn(self._handle(), f, None))

    def traverseChain(self, chain: int, callback: _TraverseCallback) -> int:
        """
        C{tdb_traverse_chain}: C{callback(key, value)} for each record of
        hash chain C{chain} (0 to L{hashSize} - 1), under that chain's read
        lock only, so a long reading can be split into short steps.  A true
        return value stops it; an exception is re-raised after the call.

        @return: the number of records visited.
        """
        c = self._c
        if c is not None:
            cctx = self._cctx
            return self._traverseCompiled(
                "tdb_traverse_chain",
                callback,
                lambda h: c.txc_traverse_chain(cctx, chain, h),
            )
        return self._traverseWith(
            "tdb_traverse_chain",
            callback,
            lambda f: self._lib.tdb_traverse_chain(self._handle(), chain, f, None),
        )

    def _traverseCompiled(
        self, name: str, callback: _TraverseCallback, call: Callable[[Any], int]
    ) -> int:
        """A traversal through the compiled binding: L{_visit} gets each
        record, with C{callback} behind the handle."""
        raised: list[BaseException] = []
        count = int(call(self.compiled.ffi.new_handle((callback, raised))))
        return self._traversed(name, count, raised)

    def _traverseWith(
        self,
        name: str,
        callback: _TraverseCallback,
        call: Callable[[Any], int],
    ) -> int:
        raised: list[BaseException] = []

        def trampoline(
            _tdb: int, key: _libtdb.TDB_DATA, value: _libtdb.TDB_DATA, _priv: int
        ) -> int:
            try:
                k = ctypes.string_at(key.dptr, key.dsize) if key.dsize else b""
                v = ctypes.string_at(value.dptr, value.dsize) if value.dsize else b""
                return 1 if callback(k, v) else 0
            except BaseException as e:  # noqa: BLE001
                # An exception cannot unwind through libtdb's C frames:
                # stop the traversal here and re-raise it after the call.
                raised.append(e)
                return 1

        count = int(call(_libtdb.TRAVERSE_FUNC(trampoline)))
        return self._traversed(name, count, raised)

    def _traversed(self, name: str, count: int, raised: list[BaseException]) -> int:
        """The end of a traversal through either binding: the callback's
        exception re-raised, a failure raised, or the records visited."""
        if raised:
            raise raised[0]
        if count < 0:
            raise self._error(name)
        return count

    def chunks(self, records: int) -> Iterator[list[tuple[bytes, bytes]]]:
        """
        Every C{(key, value)} pair, in lists of about C{records} pairs (a
        list ends at a hash chain's end, so it may hold more): a caller can
        give its event loop a turn between two lists.  A small file is read
        in one C{tdb_traverse_read}; a large one chain by chain, each under
        its own read lock, so nothing else waits long.  A record written
        meanwhile may or may not be seen, as with C{tdb_traverse_read}.
        """
        if self.mapSize <= _ONE_TRAVERSE_BYTES:
            yield self.traverse()
            return
        batch: list[tuple[bytes, bytes]] = []

        def collect(key: bytes, value: bytes) -> None:
            batch.append((key, value))

        for chain in range(self.hashSize):
            self.traverseChain(chain, collect)
            if len(batch) >= records:
                yield batch
                batch = []
        if batch:
            yield batch

    def traverse(self) -> list[tuple[bytes, bytes]]:
        """
        @return: every C{(key, value)} pair, read under C{tdb_traverse_read}.
        """
        records: list[tuple[bytes, bytes]] = []

        def collect(key: bytes, value: bytes) -> None:
            records.append((key, value))

        self.traverseEach(collect, readOnly=True)
        return records

    def keys(self) -> list[bytes]:
        """@return: every key (one read traversal)."""
        return [k for k, _ in self.traverse()]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.keys())

    def __len__(self) -> int:
        return self.traverseEach(lambda k, v: None, readOnly=True)

    # --- locks ---------------------------------------------------------------

    def _keyCall(self, name: str, key: BytesLike) -> int:
        k = _asBytes(key, "key")
        fn = getattr(self._lib, name)
        return int(fn(self._handle(), _libtdb.TDB_DATA_IN(k, len(k))))

    def _nonblock(self, name: str, rc: int) -> bool:
        if rc == 0:
            return True
        code = self._lib.tdb_error(self._handle())
        if code in (TDB_ERR_LOCK, TDB_ERR_LOCK_TIMEOUT, TDB_ERR_NOLOCK):
            return False
        raise self._error(name)

    def chainLock(self, key: BytesLike) -> None:
        """
        Write-lock the hash chain of C{key}, waiting for other processes.
        Never call this from the reactor thread: use L{chainLockNonblock}.
        """
        if self._c is not None:
            k = _asBytes(key, "key")
            self._check("tdb_chainlock", self._c.txc_chainlock(self._cctx, k, len(k)))
            return
        self._check("tdb_chainlock", self._keyCall("tdb_chainlock", key))

    def chainLockNonblock(self, key: BytesLike) -> bool:
        """
        Try to write-lock the hash chain of C{key} without waiting.

        @return: C{True} if the lock is now held, C{False} if another
            process holds it.
        """
        # the daemon's every record operation: called directly, without
        # _keyCall's look-up by name
        k = key if type(key) is bytes else _asBytes(key, "key")
        c = self._c
        if c is not None:
            rc = c.txc_chainlock_nonblock(self._cctx, k, len(k))
        else:
            rc = self._lib.tdb_chainlock_nonblock(
                self._handle(), _libtdb.TDB_DATA_IN(k, len(k))
            )
        if rc == 0:
            return True
        return self._nonblock("tdb_chainlock_nonblock", rc)

    def chainUnlock(self, key: BytesLike) -> None:
        """Release a lock taken by L{chainLock} or L{chainLockNonblock}."""
        k = key if type(key) is bytes else _asBytes(key, "key")
        c = self._c
        if c is not None:
            if c.txc_chainunlock(self._cctx, k, len(k)):
                raise self._error("tdb_chainunlock")
        elif self._lib.tdb_chainunlock(self._handle(), _libtdb.TDB_DATA_IN(k, len(k))):
            raise self._error("tdb_chainunlock")

    def chainLockRead(self, key: BytesLike) -> None:
        """Read-lock the hash chain of C{key}, waiting if needed."""
        self._check("tdb_chainlock_read", self._keyCall("tdb_chainlock_read", key))

    def chainLockReadNonblock(self, key: BytesLike) -> bool:
        """
        Try to read-lock the hash chain of C{key} without waiting.

        @return: C{True} if held, C{False} if a writer holds it.
        """
        if self._lib.tdb_chainlock_read_nonblock is None:
            raise TDBError(
                "tdb_chainlock_read_nonblock", "not in this libtdb", path=self.path
            )
        return self._nonblock(
            "tdb_chainlock_read_nonblock",
            self._keyCall("tdb_chainlock_read_nonblock", key),
        )

    def chainUnlockRead(self, key: BytesLike) -> None:
        """Release a lock taken by L{chainLockRead}."""
        self._check("tdb_chainunlock_read", self._keyCall("tdb_chainunlock_read", key))

    @contextmanager
    def chainLocked(self, key: BytesLike) -> Iterator[None]:
        """Hold the (blocking) chain lock of C{key} for a C{with} block."""
        self.chainLock(key)
        try:
            yield
        finally:
            self.chainUnlock(key)

    def lockAll(self) -> None:
        """Write-lock the whole database, waiting if needed."""
        self._check("tdb_lockall", self._lib.tdb_lockall(self._handle()))

    def lockAllNonblock(self) -> bool:
        """
        @return: C{True} if the whole database is now write-locked,
            C{False} if another process holds a lock.
        """
        return self._nonblock(
            "tdb_lockall_nonblock", self._lib.tdb_lockall_nonblock(self._handle())
        )

    def unlockAll(self) -> None:
        """Release L{lockAll}."""
        self._check("tdb_unlockall", self._lib.tdb_unlockall(self._handle()))

    def lockAllReadNonblock(self) -> bool:
        """
        @return: C{True} if the whole database is now read-locked (no other
            process can write until L{unlockAllRead}), C{False} if another
            process holds a write lock somewhere.
        """
        fn = self._lib.tdb_lockall_read_nonblock
        if fn is None:
            raise TDBError(
                "tdb_lockall_read_nonblock", "not in this libtdb", path=self.path
            )
        return self._nonblock("tdb_lockall_read_nonblock", fn(self._handle()))

    def unlockAllRead(self) -> None:
        """Release L{lockAllReadNonblock}."""
        self._check("tdb_unlockall_read", self._lib.tdb_unlockall_read(self._handle()))

    # --- transactions ----------------------------------------------------------

    def transactionStart(self) -> None:
        """Begin a transaction, waiting for the transaction lock."""
        self._check(
            "tdb_transaction_start", self._lib.tdb_transaction_start(self._handle())
        )

    def transactionStartHoldingNoLocks(self) -> bool:
        """
        Start a transaction only if no other process holds a record lock or
        the transaction lock, never waiting (C{tdb_transaction_start_nonblock}
        alone still waits for record locks: it takes its all-record read lock
        with TDB_LOCK_WAIT).  Take every record lock without waiting, forget
        it in tdb's bookkeeping (C{tdb_lockall_unmark}) while keeping the
        fcntl lock, and let the transaction take its read lock over it: the
        kernel converts our write lock in place, so no other process can
        slip in between.

        @return: C{True} if a transaction started, C{False} if not (no lock
            is left held then).
        """
        lib = self._lib
        if lib.tdb_lockall_unmark is None or lib.tdb_lockall_mark is None:
            if not self.lockAllReadNonblock():
                return False
            self.unlockAllRead()
            return self.transactionStartNonblock()
        if not self.lockAllNonblock():
            return False
        self._check("tdb_lockall_unmark", lib.tdb_lockall_unmark(self._handle()))
        try:
            started = self.transactionStartNonblock()
        except BaseException:
            started = False
            raise
        finally:
            if not started:
                lib.tdb_lockall_mark(self._handle())
                self.unlockAll()
        return started

    def transactionStartNonblock(self) -> bool:
        """
        @return: C{True} if a transaction started, C{False} if another
            process holds the transaction lock.
        """
        return self._nonblock(
            "tdb_transaction_start_nonblock",
            self._lib.tdb_transaction_start_nonblock(self._handle()),
        )

    def transactionPrepareCommit(self) -> None:
        """First phase of a two-phase commit."""
        self._check(
            "tdb_transaction_prepare_commit",
            self._lib.tdb_transaction_prepare_commit(self._handle()),
        )

    def transactionCommit(self) -> None:
        """Commit the open transaction."""
        self._check(
            "tdb_transaction_commit", self._lib.tdb_transaction_commit(self._handle())
        )

    def transactionCancel(self) -> None:
        """Discard the open transaction."""
        self._check(
            "tdb_transaction_cancel", self._lib.tdb_transaction_cancel(self._handle())
        )

    @property
    def transactionActive(self) -> bool:
        """Whether a transaction is open on this handle."""
        fn = self._lib.tdb_transaction_active
        if fn is None:
            raise TDBError("tdb_transaction_active", "not in this libtdb")
        return bool(fn(self._handle()))

    @contextmanager
    def transaction(self) -> Iterator[TDB]:
        """
        A C{with} block inside a transaction: committed if the block
        finishes, cancelled if it raises.
        """
        self.transactionStart()
        try:
            yield self
        except BaseException:
            self.transactionCancel()
            raise
        self.transactionCommit()

    # --- properties ------------------------------------------------------------

    @property
    def seqnum(self) -> int:
        """The database sequence number (maintained with C{TDB_SEQNUM})."""
        return int(self._lib.tdb_get_seqnum(self._handle()))

    def enableSeqnum(self) -> None:
        """Start maintaining the sequence number (C{tdb_enable_seqnum})."""
        self._lib.tdb_enable_seqnum(self._handle())

    def incrementSeqnumNonblock(self) -> None:
        """Bump the sequence number without taking the header lock
        (C{tdb_increment_seqnum_nonblock}), as ctdbd does for UPDATE_SEQNUM."""
        self._lib.tdb_increment_seqnum_nonblock(self._handle())

    @property
    def flags(self) -> int:
        """The C{TDB_*} flags in effect (C{tdb_get_flags})."""
        return int(self._lib.tdb_get_flags(self._handle()))

    def addFlags(self, flags: int) -> None:
        """C{tdb_add_flags}."""
        self._lib.tdb_add_flags(self._handle(), flags)

    def removeFlags(self, flags: int) -> None:
        """C{tdb_remove_flags}."""
        self._lib.tdb_remove_flags(self._handle(), flags)

    @property
    def hashSize(self) -> int:
        """Number of hash chains."""
        return int(self._lib.tdb_hash_size(self._handle()))

    @property
    def mapSize(self) -> int:
        """Current size of the file mapping in bytes."""
        return int(self._lib.tdb_map_size(self._handle()))

    @property
    def fd(self) -> int:
        """The file descriptor (-1 for C{TDB_INTERNAL})."""
        return int(self._lib.tdb_fd(self._handle()))

    @property
    def name(self) -> str:
        """The name libtdb knows the file by."""
        raw = self._lib.tdb_name(self._handle()) or b""
        return os.fsdecode(raw)
