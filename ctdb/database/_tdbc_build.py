"""
The compiled half of our libtdb binding: a cffi module in API mode,
C{ctdb.database._tdbc}, built by C{setup.py} (so by C{make install})
against Debian's C{libtdb-dev} headers.

It holds only the calls a daemon makes for every record (chain locks,
fetch, store, exists, delete, the key hash) and the traversals, whose
per-record callback is the costliest thing ctypes does.  Each takes a key
or value as a pointer and a length, which cffi passes from a Python
C{bytes} without a copy, and builds the C{TDB_DATA} in C: a ctypes call of
the same function costs about three times as much (bench/README.md).
Everything else stays in L{ctdb.database._libtdb} (ctypes), which is also
the whole binding wherever this module was not built: L{ctdb.database.tdb}
uses this one when it imports.

Run as a script to build the module in place:

    .venv/bin/python ctdb/database/_tdbc_build.py
"""

from __future__ import annotations

import os

from cffi import FFI

#: the module this builds, and where
MODULE = "ctdb.database._tdbc"

CDEF = """
struct tdb_context;
typedef struct TDB_DATA {
    unsigned char *dptr;
    size_t dsize;
} TDB_DATA;

int txc_chainlock(struct tdb_context *tdb, const char *key, size_t klen);
int txc_chainlock_nonblock(struct tdb_context *tdb, const char *key, size_t klen);
int txc_chainunlock(struct tdb_context *tdb, const char *key, size_t klen);
TDB_DATA txc_fetch(struct tdb_context *tdb, const char *key, size_t klen);
int txc_store(struct tdb_context *tdb, const char *key, size_t klen,
              const char *value, size_t vlen, int flag);
int txc_exists(struct tdb_context *tdb, const char *key, size_t klen);
int txc_delete(struct tdb_context *tdb, const char *key, size_t klen);
unsigned int txc_hash(const char *key, size_t klen);

int txc_traverse(struct tdb_context *tdb, int readonly, void *handle);
int txc_traverse_chain(struct tdb_context *tdb, unsigned chain, void *handle);
extern "Python" int txc_visit(TDB_DATA key, TDB_DATA value, void *handle);

enum TDB_ERROR tdb_error(struct tdb_context *tdb);
void free(void *ptr);
"""

SOURCE = r"""
#include <stdlib.h>
#include <tdb.h>

static TDB_DATA txc_data(const char *p, size_t n)
{
    TDB_DATA d;
    d.dptr = (unsigned char *)p;
    d.dsize = n;
    return d;
}

static int txc_chainlock(struct tdb_context *tdb, const char *key, size_t klen)
{
    return tdb_chainlock(tdb, txc_data(key, klen));
}

static int txc_chainlock_nonblock(struct tdb_context *tdb, const char *key,
                                  size_t klen)
{
    return tdb_chainlock_nonblock(tdb, txc_data(key, klen));
}

static int txc_chainunlock(struct tdb_context *tdb, const char *key, size_t klen)
{
    return tdb_chainunlock(tdb, txc_data(key, klen));
}

static TDB_DATA txc_fetch(struct tdb_context *tdb, const char *key, size_t klen)
{
    return tdb_fetch(tdb, txc_data(key, klen));
}

static int txc_store(struct tdb_context *tdb, const char *key, size_t klen,
                     const char *value, size_t vlen, int flag)
{
    return tdb_store(tdb, txc_data(key, klen), txc_data(value, vlen), flag);
}

static int txc_exists(struct tdb_context *tdb, const char *key, size_t klen)
{
    return tdb_exists(tdb, txc_data(key, klen));
}

static int txc_delete(struct tdb_context *tdb, const char *key, size_t klen)
{
    return tdb_delete(tdb, txc_data(key, klen));
}

static unsigned int txc_hash(const char *key, size_t klen)
{
    TDB_DATA d = txc_data(key, klen);
    return tdb_jenkins_hash(&d);
}

static int txc_visit(TDB_DATA key, TDB_DATA value, void *handle);

static int txc_trampoline(struct tdb_context *tdb, TDB_DATA key, TDB_DATA value,
                          void *handle)
{
    (void)tdb;
    return txc_visit(key, value, handle);
}

static int txc_traverse(struct tdb_context *tdb, int readonly, void *handle)
{
    if (readonly) {
        return tdb_traverse_read(tdb, txc_trampoline, handle);
    }
    return tdb_traverse(tdb, txc_trampoline, handle);
}

static int txc_traverse_chain(struct tdb_context *tdb, unsigned chain,
                              void *handle)
{
    return tdb_traverse_chain(tdb, chain, txc_trampoline, handle);
}
"""


def builder() -> FFI:
    """The cffi builder of L{MODULE}."""
    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source(MODULE, SOURCE, libraries=["tdb"])
    return ffi


ffibuilder = builder()


if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ffibuilder.compile(tmpdir=root, verbose=False)
