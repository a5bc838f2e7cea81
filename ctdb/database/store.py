# -*- test-case-name: tests.database.test_store -*-
"""
Record stores: L{TdbRecordStore} keeps a database in a real TDB file through
libtdb, so that Samba's tools (and clients that open the file themselves)
see the same records and locks; L{MemoryRecordStore} is a dict for tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from zope.interface import implementer

from ctdb.database.tdb import TDB, TDB_SEQNUM
from ctdb.interfaces import IRecordStore


@implementer(IRecordStore)
class MemoryRecordStore:
    """A dict with the IRecordStore face, and locks that tests can hold."""

    path = ""

    def __init__(self, *, tdbFlags: int = 0) -> None:
        self.records: dict[bytes, bytes] = {}
        self.locked: set[bytes] = set()
        self._saved: dict[bytes, bytes] | None = None
        self._flags = tdbFlags
        self._seqnum = 0

    def fetch(self, key: bytes) -> bytes | None:
        return self.records.get(key)

    def store(self, key: bytes, value: bytes) -> None:
        self.records[key] = value
        self._changed()

    def delete(self, key: bytes) -> None:
        if self.records.pop(key, None) is not None:
            self._changed()

    def _changed(self) -> None:
        if self._flags & TDB_SEQNUM:
            self._seqnum += 1

    def tdbFlags(self) -> int:
        return self._flags

    def enableSeqnum(self) -> None:
        self._flags |= TDB_SEQNUM

    def seqnum(self) -> int:
        return self._seqnum

    def incrementSeqnumNonblock(self) -> None:
        self._changed()

    def items(self) -> list[tuple[bytes, bytes]]:
        return list(self.records.items())

    def chunks(self, records: int) -> Iterator[list[tuple[bytes, bytes]]]:
        pairs = list(self.records.items())
        for start in range(0, len(pairs), max(records, 1)):
            yield pairs[start : start + max(records, 1)]

    def wipe(self) -> None:
        self.records.clear()

    def itemsNonblock(self) -> list[tuple[bytes, bytes]] | None:
        if self.locked:
            return None
        return list(self.records.items())

    def lockNonblock(self, key: bytes) -> bool:
        if key in self.locked:
            return False
        self.locked.add(key)
        return True

    def unlock(self, key: bytes) -> None:
        self.locked.discard(key)

    def transactionStart(self) -> None:
        self._saved = dict(self.records)

    def transactionStartNonblock(self) -> bool:
        if self.locked:
            return False
        self.transactionStart()
        return True

    def transactionCommit(self) -> None:
        self._saved = None

    def transactionCancel(self) -> None:
        if self._saved is not None:
            self.records = self._saved
        self._saved = None

    def close(self) -> None:
        pass


@implementer(IRecordStore)
class TdbRecordStore:
    """A database file opened with libtdb, as ctdbd opens it."""

    def __init__(
        self, path: str, *, hashSize: int, tdbFlags: int, create: bool = True
    ) -> None:
        self.path = path
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        self.tdb = TDB(
            path, hashSize=hashSize, tdbFlags=tdbFlags, openFlags=flags, mode=0o600
        )

    def fetch(self, key: bytes) -> bytes | None:
        return self.tdb.fetch(key)

    def store(self, key: bytes, value: bytes) -> None:
        self.tdb.store(key, value)

    def delete(self, key: bytes) -> None:
        self.tdb.delete(key)

    def items(self) -> list[tuple[bytes, bytes]]:
        return self.tdb.traverse()

    def chunks(self, records: int) -> Iterator[list[tuple[bytes, bytes]]]:
        return self.tdb.chunks(records)

    def itemsNonblock(self) -> list[tuple[bytes, bytes]] | None:
        """A snapshot, or None if a client holds a record lock right now
        (reading would block on it)."""
        if not self.tdb.lockAllReadNonblock():
            return None
        try:
            return self.tdb.traverse()
        finally:
            self.tdb.unlockAllRead()

    def wipe(self) -> None:
        self.tdb.wipeAll()

    def lockNonblock(self, key: bytes) -> bool:
        return self.tdb.chainLockNonblock(key)

    def unlock(self, key: bytes) -> None:
        self.tdb.chainUnlock(key)

    def transactionStart(self) -> None:
        self.tdb.transactionStart()

    def transactionStartNonblock(self) -> bool:
        """Start a transaction unless a client holds a record lock now."""
        return self.tdb.transactionStartHoldingNoLocks()

    def transactionCommit(self) -> None:
        self.tdb.transactionCommit()

    def transactionCancel(self) -> None:
        self.tdb.transactionCancel()

    def close(self) -> None:
        self.tdb.close()

    def tdbFlags(self) -> int:
        return self.tdb.flags

    def enableSeqnum(self) -> None:
        self.tdb.enableSeqnum()

    def seqnum(self) -> int:
        return self.tdb.seqnum

    def incrementSeqnumNonblock(self) -> None:
        self.tdb.incrementSeqnumNonblock()
