# -*- test-case-name: tests.database.test_tdb -*-
"""
Private ctypes binding to Samba's libtdb (Debian ``libtdb1``, ``libtdb.so.1``).

Declarations follow ``lib/tdb/include/tdb.h`` of Samba 4.17 (tdb 1.4.x).
Nothing is loaded at import time: L{load} opens the shared library on first
use and raises L{TDBUnavailable} with a clear message when it is missing.
The public face is L{ctdb.database.tdb.TDB}; only that module and tests
should touch this one.

Two layouts of C{TDB_DATA} are declared.  L{TDB_DATA_IN} has a
C{c_char_p} pointer so that a Python C{bytes} object can be passed in
without a copy (ctypes keeps it alive for the duration of the call);
L{TDB_DATA} has a C{c_void_p} pointer, for data that libtdb hands back
(C{tdb_fetch}'s malloc'd buffer, which must be released with libc
C{free}, and traverse/parse callback arguments).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import threading
from collections.abc import Callable, Sequence
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_size_t,
    c_uint,
    c_void_p,
)
from typing import Any

from ctdb.errors import TDBUnavailable

LIBTDB_NAMES = ("libtdb.so.1", "libtdb.so")

# --- tdb_store() flags --------------------------------------------------------
TDB_REPLACE = 1
TDB_INSERT = 2
TDB_MODIFY = 3

# --- tdb_open() flags ---------------------------------------------------------
TDB_DEFAULT = 0
TDB_CLEAR_IF_FIRST = 1
TDB_INTERNAL = 2
TDB_NOLOCK = 4
TDB_NOMMAP = 8
TDB_CONVERT = 16
TDB_BIGENDIAN = 32
TDB_NOSYNC = 64
TDB_SEQNUM = 128
TDB_VOLATILE = 256
TDB_ALLOW_NESTING = 512
TDB_DISALLOW_NESTING = 1024
TDB_INCOMPATIBLE_HASH = 2048
TDB_MUTEX_LOCKING = 4096

# --- enum TDB_ERROR -----------------------------------------------------------
TDB_SUCCESS = 0
TDB_ERR_CORRUPT = 1
TDB_ERR_IO = 2
TDB_ERR_LOCK = 3
TDB_ERR_OOM = 4
TDB_ERR_EXISTS = 5
TDB_ERR_NOLOCK = 6
TDB_ERR_LOCK_TIMEOUT = 7
TDB_ERR_NOEXIST = 8
TDB_ERR_EINVAL = 9
TDB_ERR_RDONLY = 10
TDB_ERR_NESTING = 11

ERROR_NAMES = {
    TDB_SUCCESS: "TDB_SUCCESS",
    TDB_ERR_CORRUPT: "TDB_ERR_CORRUPT",
    TDB_ERR_IO: "TDB_ERR_IO",
    TDB_ERR_LOCK: "TDB_ERR_LOCK",
    TDB_ERR_OOM: "TDB_ERR_OOM",
    TDB_ERR_EXISTS: "TDB_ERR_EXISTS",
    TDB_ERR_NOLOCK: "TDB_ERR_NOLOCK",
    TDB_ERR_LOCK_TIMEOUT: "TDB_ERR_LOCK_TIMEOUT",
    TDB_ERR_NOEXIST: "TDB_ERR_NOEXIST",
    TDB_ERR_EINVAL: "TDB_ERR_EINVAL",
    TDB_ERR_RDONLY: "TDB_ERR_RDONLY",
    TDB_ERR_NESTING: "TDB_ERR_NESTING",
}


class TDB_DATA(Structure):
    """C{TDB_DATA} as returned by libtdb: a pointer we may read (and free)."""

    _fields_ = [("dptr", c_void_p), ("dsize", c_size_t)]


class TDB_DATA_IN(Structure):
    """C{TDB_DATA} as passed to libtdb; C{dptr} accepts C{bytes} directly."""

    _fields_ = [("dptr", c_char_p), ("dsize", c_size_t)]


#: int (*tdb_traverse_func)(struct tdb_context *, TDB_DATA, TDB_DATA, void *)
TRAVERSE_FUNC = CFUNCTYPE(c_int, c_void_p, TDB_DATA, TDB_DATA, c_void_p)
#: int (*parser)(TDB_DATA key, TDB_DATA data, void *private_data)
PARSER_FUNC = CFUNCTYPE(c_int, TDB_DATA, TDB_DATA, c_void_p)
#: unsigned int (*tdb_hash_func)(TDB_DATA *key); tdb_open_ex takes it as a
#: C{c_void_p} so that C{None} (the default hash) can be passed.
HASH_FUNC = CFUNCTYPE(c_uint, POINTER(TDB_DATA_IN))

_CTX = c_void_p  # struct tdb_context *, kept opaque
_IN = TDB_DATA_IN

#: name -> (restype, argtypes, required).  Optional symbols are absent from
#: old libtdb releases; L{LibTDB.has} says whether they were found.
_PROTOTYPES: dict[str, tuple[Any, list[Any], bool]] = {
    "tdb_open": (_CTX, [c_char_p, c_int, c_int, c_int, c_uint], True),
    "tdb_open_ex": (
        _CTX,
        [c_char_p, c_int, c_int, c_int, c_uint, c_void_p, c_void_p],
        True,
    ),
    "tdb_close": (c_int, [_CTX], True),
    "tdb_error": (c_int, [_CTX], True),
    "tdb_errorstr": (c_char_p, [_CTX], True),
    "tdb_fetch": (TDB_DATA, [_CTX, _IN], True),
    "tdb_parse_record": (c_int, [_CTX, _IN, PARSER_FUNC, c_void_p], True),
    "tdb_store": (c_int, [_CTX, _IN, _IN, c_int], True),
    "tdb_storev": (c_int, [_CTX, _IN, POINTER(_IN), c_int, c_int], False),
    "tdb_append": (c_int, [_CTX, _IN, _IN], True),
    "tdb_delete": (c_int, [_CTX, _IN], True),
    "tdb_exists": (c_int, [_CTX, _IN], True),
    "tdb_chainlock": (c_int, [_CTX, _IN], True),
    "tdb_chainlock_nonblock": (c_int, [_CTX, _IN], True),
    "tdb_chainunlock": (c_int, [_CTX, _IN], True),
    "tdb_chainlock_read": (c_int, [_CTX, _IN], True),
    "tdb_chainlock_read_nonblock": (c_int, [_CTX, _IN], False),
    "tdb_chainunlock_read": (c_int, [_CTX, _IN], True),
    "tdb_lockall": (c_int, [_CTX], True),
    "tdb_lockall_nonblock": (c_int, [_CTX], True),
    "tdb_unlockall": (c_int, [_CTX], True),
    "tdb_lockall_read": (c_int, [_CTX], True),
    "tdb_lockall_read_nonblock": (c_int, [_CTX], False),
    "tdb_unlockall_read": (c_int, [_CTX], True),
    "tdb_lockall_mark": (c_int, [_CTX], False),
    "tdb_lockall_unmark": (c_int, [_CTX], False),
    "tdb_transaction_start": (c_int, [_CTX], True),
    "tdb_transaction_start_nonblock": (c_int, [_CTX], True),
    "tdb_transaction_prepare_commit": (c_int, [_CTX], True),
    "tdb_transaction_commit": (c_int, [_CTX], True),
    "tdb_transaction_cancel": (c_int, [_CTX], True),
    "tdb_transaction_active": (ctypes.c_bool, [_CTX], False),
    "tdb_traverse": (c_int, [_CTX, TRAVERSE_FUNC, c_void_p], True),
    "tdb_traverse_read": (c_int, [_CTX, TRAVERSE_FUNC, c_void_p], True),
    "tdb_traverse_chain": (c_int, [_CTX, c_uint, TRAVERSE_FUNC, c_void_p], True),
    "tdb_wipe_all": (c_int, [_CTX], True),
    "tdb_repack": (c_int, [_CTX], True),
    "tdb_get_seqnum": (c_int, [_CTX], True),
    "tdb_enable_seqnum": (None, [_CTX], True),
    "tdb_increment_seqnum_nonblock": (None, [_CTX], True),
    "tdb_get_flags": (c_int, [_CTX], True),
    "tdb_add_flags": (None, [_CTX, c_uint], True),
    "tdb_remove_flags": (None, [_CTX, c_uint], True),
    "tdb_hash_size": (c_int, [_CTX], True),
    "tdb_map_size": (c_size_t, [_CTX], True),
    "tdb_fd": (c_int, [_CTX], True),
    "tdb_name": (c_char_p, [_CTX], True),
    "tdb_jenkins_hash": (c_uint, [POINTER(_IN)], False),
    "tdb_runtime_check_for_robust_mutexes": (ctypes.c_bool, [], False),
}


class LibTDB:
    """
    The loaded library: one attribute per declared function (C{tdb_fetch},
    ...), plus C{free} from libc for buffers returned by C{tdb_fetch}.
    """

    tdb_open: Any
    tdb_open_ex: Any
    tdb_close: Any
    tdb_error: Any
    tdb_errorstr: Any
    tdb_fetch: Any
    tdb_parse_record: Any
    tdb_store: Any
    tdb_storev: Any
    tdb_append: Any
    tdb_delete: Any
    tdb_exists: Any
    tdb_chainlock: Any
    tdb_chainlock_nonblock: Any
    tdb_chainunlock: Any
    tdb_chainlock_read: Any
    tdb_chainlock_read_nonblock: Any
    tdb_chainunlock_read: Any
    tdb_lockall: Any
    tdb_lockall_nonblock: Any
    tdb_unlockall: Any
    tdb_lockall_read: Any
    tdb_lockall_read_nonblock: Any
    tdb_unlockall_read: Any
    tdb_lockall_mark: Any
    tdb_lockall_unmark: Any
    tdb_transaction_start: Any
    tdb_transaction_start_nonblock: Any
    tdb_transaction_prepare_commit: Any
    tdb_transaction_commit: Any
    tdb_transaction_cancel: Any
    tdb_transaction_active: Any
    tdb_traverse: Any
    tdb_traverse_read: Any
    tdb_traverse_chain: Any
    tdb_wipe_all: Any
    tdb_repack: Any
    tdb_get_seqnum: Any
    tdb_enable_seqnum: Any
    tdb_increment_seqnum_nonblock: Any
    tdb_get_flags: Any
    tdb_add_flags: Any
    tdb_remove_flags: Any
    tdb_hash_size: Any
    tdb_map_size: Any
    tdb_fd: Any
    tdb_name: Any
    tdb_jenkins_hash: Any
    tdb_runtime_check_for_robust_mutexes: Any
    free: Any

    def __init__(self, dll: ctypes.CDLL, libc: ctypes.CDLL, path: str) -> None:
        self.path = path
        self._missing: set[str] = set()
        for name, (restype, argtypes, required) in _PROTOTYPES.items():
            try:
                fn = getattr(dll, name)
            except AttributeError:
                if required:
                    raise TDBUnavailable(
                        f"{path} lacks {name}; libtdb >= 1.3 is required"
                    ) from None
                self._missing.add(name)
                setattr(self, name, None)
                continue
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name, fn)
        self.free = libc.free
        self.free.restype = None
        self.free.argtypes = [c_void_p]

    def has(self, name: str) -> bool:
        """
        @return: whether the optional symbol C{name} exists in this libtdb.
        """
        return name in _PROTOTYPES and name not in self._missing


_lock = threading.Lock()
_loaded: LibTDB | None = None
_loadError: TDBUnavailable | None = None


def _openLibrary(names: Sequence[str] = LIBTDB_NAMES, useFinder: bool = True) -> LibTDB:
    """
    Open the first of C{names} that loads, then whatever
    C{ctypes.util.find_library("tdb")} finds (which runs ldconfig, so it
    comes last).
    """
    errors = []
    candidates = iter(names)
    triedFinder = not useFinder
    while True:
        name = next(candidates, None)
        if name is None:
            if triedFinder:
                break
            triedFinder = True
            name = ctypes.util.find_library("tdb")
            if name is None:
                break
        try:
            dll = ctypes.CDLL(name, use_errno=True)
        except OSError as e:
            errors.append(str(e))
            continue
        libcName = ctypes.util.find_library("c") or "libc.so.6"
        return LibTDB(dll, ctypes.CDLL(libcName, use_errno=True), name)
    raise TDBUnavailable(
        "libtdb is not available (install the Debian package libtdb1): "
        + ("; ".join(errors) or "not found")
    )


def load() -> LibTDB:
    """
    Load libtdb once and return it.

    @raise TDBUnavailable: the shared library or a required symbol is
        missing.  The failure is remembered, so later calls fail fast.
    """
    global _loaded, _loadError
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is None:
            if _loadError is not None:
                raise _loadError
            try:
                _loaded = _openLibrary()
            except TDBUnavailable as e:
                _loadError = e
                raise
    return _loaded


def available() -> bool:
    """
    @return: whether libtdb can be loaded on this machine.
    """
    try:
        load()
    except TDBUnavailable:
        return False
    return True


def compiled() -> Any | None:
    """
    @return: the compiled half of the binding, the cffi module
        C{ctdb.database._tdbc} (its C{ffi} and C{lib}), or C{None} where
        it was not built (no libtdb-dev or C compiler at install time) or
        does not load.  See C{ctdb/database/_tdbc_build.py}.
    """
    try:
        return importlib.import_module("ctdb.database._tdbc")
    except ImportError:
        return None


def hashFunction() -> Callable[[bytes], int] | None:
    """
    @return: a fast C{key -> tdb_jenkins_hash(key)} over libtdb (the
        compiled binding's if it is there), or C{None} when libtdb (or the
        symbol) is missing.
    """
    try:
        lib = load()
    except TDBUnavailable:
        return None
    module = compiled()
    if module is not None:
        cLib = module.lib

        def compiledHash(key: bytes, _fn: Any = cLib.txc_hash) -> int:
            if type(key) is not bytes:
                key = bytes(key)
            return _fn(key, len(key))

        return compiledHash
    fn = lib.tdb_jenkins_hash
    if fn is None:
        return None

    def cHash(
        key: bytes,
        _fn: Any = fn,
        _data: type[TDB_DATA_IN] = TDB_DATA_IN,
        _byref: Callable[[Any], Any] = ctypes.byref,
    ) -> int:
        if not isinstance(key, bytes):
            key = bytes(key)
        return int(_fn(_byref(_data(key, len(key)))))

    return cHash


def jenkinsHash(key: bytes) -> int:
    """
    libtdb's own C{tdb_jenkins_hash} (lookup3 C{hashlittle}, initval 0).

    @raise TDBUnavailable: libtdb or the symbol is missing.
    """
    lib = load()
    fn = lib.tdb_jenkins_hash
    if fn is None:
        raise TDBUnavailable(f"{lib.path} lacks tdb_jenkins_hash")
    return int(fn(ctypes.byref(TDB_DATA_IN(key, len(key)))))
