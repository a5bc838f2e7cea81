# -*- test-case-name: tests.database.test_store -*-
"""
Tests for L{ctdb.database.store}: the sequence-number face of the record
stores that smbd's seqnum-validated caches depend on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from ctdb.database.store import MemoryRecordStore, TdbRecordStore
from ctdb.database.tdb import (
    TDB_CLEAR_IF_FIRST,
    TDB_INCOMPATIBLE_HASH,
    TDB_NOSYNC,
    TDB_SEQNUM,
)
from ctdb.interfaces import IRecordStore

FLAGS = TDB_NOSYNC | TDB_CLEAR_IF_FIRST | TDB_INCOMPATIBLE_HASH


class TdbRecordStoreSeqnumTests(SynchronousTestCase):
    """A real file: the sequence number lives in it, for every handle."""

    def setUp(self) -> None:
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        self.path = os.path.join(d, "brlock.tdb.0")
        self.store = TdbRecordStore(self.path, hashSize=131, tdbFlags=FLAGS)
        self.addCleanup(self.store.close)

    def otherHandle(self, flags: int, store: bytes | None = None) -> int:
        """Open the file in another process (libtdb refuses a second handle
        on one file in a process) as smbd opens it with C{flags}; store a
        record there if asked; return the sequence number it reads."""
        code = (
            "import os, sys\n"
            "from ctdb.database.tdb import TDB\n"
            "t = TDB(sys.argv[1], hashSize=131, tdbFlags=int(sys.argv[2]),"
            " openFlags=os.O_RDWR)\n"
            "if len(sys.argv) > 3: t.store(sys.argv[3].encode(), b'v')\n"
            "print(t.seqnum)\n"
        )
        args = [sys.executable, "-c", code, self.path, str(flags)]
        if store is not None:
            args.append(store.decode())
        return int(subprocess.check_output(args))

    def test_provides(self) -> None:
        verifyObject(IRecordStore, self.store)
        verifyObject(IRecordStore, MemoryRecordStore())

    def test_enableSeqnum(self) -> None:
        """Stores bump the number only once enabled; the flag shows in
        tdbFlags, and another handle reads the same number."""
        self.store.store(b"a", b"1")
        self.assertEqual(self.store.seqnum(), 0)
        self.assertEqual(self.store.tdbFlags() & TDB_SEQNUM, 0)
        self.store.enableSeqnum()
        self.assertEqual(self.store.tdbFlags() & TDB_SEQNUM, TDB_SEQNUM)
        self.store.store(b"a", b"2")
        self.store.delete(b"a")
        self.assertEqual(self.store.seqnum(), 2)
        self.assertEqual(self.otherHandle(self.store.tdbFlags()), 2)

    def test_otherWriterSeen(self) -> None:
        """A writer that opened with our flags (smbd, after DB_OPEN_FLAGS)
        moves the number we read."""
        self.store.enableSeqnum()
        self.assertEqual(self.otherHandle(self.store.tdbFlags(), store=b"k"), 1)
        self.assertEqual(self.store.seqnum(), 1)

    def test_incrementNonblock(self) -> None:
        """incrementSeqnumNonblock bumps the number in the file, once
        enabled (as libtdb: UPDATE_SEQNUM does nothing to a database that
        no local client asked sequence numbers of)."""
        self.store.incrementSeqnumNonblock()
        self.assertEqual(self.store.seqnum(), 0)
        self.store.enableSeqnum()
        self.store.incrementSeqnumNonblock()
        self.store.incrementSeqnumNonblock()
        self.assertEqual(self.otherHandle(FLAGS), 2)


class MemoryRecordStoreSeqnumTests(SynchronousTestCase):
    """The memory store counts the same way."""

    def test_counts(self) -> None:
        store = MemoryRecordStore(tdbFlags=FLAGS)
        store.store(b"a", b"1")
        store.incrementSeqnumNonblock()
        self.assertEqual(store.seqnum(), 0)
        store.enableSeqnum()
        store.store(b"a", b"2")
        store.delete(b"a")
        store.delete(b"missing")
        store.incrementSeqnumNonblock()
        self.assertEqual(store.seqnum(), 3)
        self.assertEqual(store.tdbFlags(), FLAGS | TDB_SEQNUM)
