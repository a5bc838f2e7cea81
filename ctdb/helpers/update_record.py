# -*- test-case-name: tests.integration.test_helpers -*-
"""
C{update_record} (Samba's tests/src/update_record.c): fetch-lock record
C{-k} of volatile database C{-D} (migrating it here and revoking any
read-only delegations), release it, then send UPDATE_RECORD to this node
with the record's header, rsn + 10, and the new rsn (in decimal) as its
value.  Exit 0 on success.
"""

from __future__ import annotations

from collections.abc import Sequence

from ctdb.database.ltdb import LtdbHeader
from ctdb.helpers.common import (
    DatabaseOptions,
    connectClient,
    err,
    parseOptions,
    runMain,
    startLogging,
    waitRecovered,
)
from ctdb.interfaces import ICTDBReactor
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control


async def run(reactor: ICTDBReactor, argv: Sequence[str]) -> int:
    options = parseOptions(DatabaseOptions(), argv)
    startLogging("update_record", options["level"])
    path = options["socket"]
    client = await connectClient(
        reactor, path, "Failed to initialize client ({path}), {error}"
    )
    if not await waitRecovered(client):
        return 1
    try:
        db = await client.attach(options["database"])
    except Exception:  # noqa: BLE001
        err(f"Failed to attach DB {options['database']}")
        return 1
    key = options["key"].encode()
    try:
        async with db.fetchLock(key) as record:
            header = record.header
        rsn = header.rsn + 10
        new = LtdbHeader(rsn, header.dmaster, header.reserved1, header.flags)
        payload = R.RecBuffer(
            db.db_id, (R.RecData(0, key, new.encode() + str(rsn).encode()),)
        ).encode()
        await client.controlOk(
            Control.UPDATE_RECORD, payload, timeout=float(options["timelimit"])
        )
    except Exception as e:  # noqa: BLE001
        err(f"update record failed: {e}")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """The C{update_record} program (see L{ctdb.helpers.writePrograms})."""
    runMain(run, argv)


if __name__ == "__main__":
    main()
