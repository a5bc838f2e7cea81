# -*- test-case-name: tests.integration.test_client_api -*-
"""
A locked record of a volatile database (C{ctdb_record_handle}): what
L{Database.fetchLock} gives, held until released.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from ctdb.database.ltdb import LtdbHeader
from ctdb.database.tdb import TDB_REPLACE
from ctdb.errors import ClientError
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control

if TYPE_CHECKING:
    from ctdb.client.database import Database


class RecordLock:
    """
    A locked record of a volatile database, of which this node is the
    data master (C{ctdb_record_handle}).  Release it with L{release}, or use
    C{async with db.fetchLock(key) as record:}.

    @ivar key: the record's key.
    @ivar header: its L{LtdbHeader} (dmaster is this node).
    @ivar data: its value (C{b""} for a new or deleted record).
    """

    def __init__(
        self, db: Database, key: bytes, header: LtdbHeader, data: bytes
    ) -> None:
        self.db = db
        self.key = key
        self.header = header
        self.data = data
        self._held = True

    def __repr__(self) -> str:
        state = "held" if self._held else "released"
        return f"<RecordLock {self.db.name} {self.key!r} {state}>"

    @property
    def held(self) -> bool:
        """Whether the lock is still held."""
        return self._held

    def _check(self) -> None:
        if not self._held:
            raise ClientError(f"record {self.key!r} of {self.db.name} is not locked")

    def store(self, value: bytes) -> None:
        """
        Replace the record's value in the local TDB, header unchanged
        (C{ctdb_store_record}); a value equal to the current one is not
        written.
        """
        self._check()
        value = bytes(value)
        if value == self.data:
            return
        self.db.tdb.storev(self.key, [self.header.encode(), value], TDB_REPLACE)
        self.data = value

    async def delete(self) -> None:
        """
        Delete the record (C{ctdb_delete_record}): store a header-only
        record, then ask the daemon to SCHEDULE_FOR_DELETION (vacuuming).
        """
        self._check()
        self.db.tdb.store(self.key, self.header.encode(), TDB_REPLACE)
        self.data = b""
        payload = R.encodeKeyData(self.db.db_id, self.header.encode(), self.key)
        client = self.db.client
        await client.controlOk(
            Control.SCHEDULE_FOR_DELETION, payload, destnode=client.pnn
        )

    def release(self) -> None:
        """Unlock the record.  Releasing twice is harmless."""
        if not self._held:
            return
        self._held = False
        try:
            if not self.db.tdb.closed:
                self.db.tdb.chainUnlock(self.key)
        finally:
            self.db._keyLocks.release(self.key)

    async def __aenter__(self) -> RecordLock:  # noqa: PYI034
        return self

    async def __aexit__(
        self,
        excType: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
