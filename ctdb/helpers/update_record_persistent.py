# -*- test-case-name: tests.integration.test_helpers -*-
"""
C{update_record_persistent} (Samba's tests/src/update_record_persistent.c):
read record C{-k} of persistent database C{-D} from the local TDB, and
send UPDATE_RECORD to this node with its header, rsn + 1, and value
C{-v}.  Exit 0 on success.
"""

from __future__ import annotations

from collections.abc import Sequence

from ctdb.database.ltdb import LtdbHeader, splitValue
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
from ctdb.protocols.packet import CTDB_UNKNOWN_PNN


async def run(reactor: ICTDBReactor, argv: Sequence[str]) -> int:
    options = parseOptions(DatabaseOptions(), argv)
    if options["value"] is None:
        err("Error: please specify key value (-v)")
        return 1
    startLogging("update_record_persistent", options["level"])
    path = options["socket"]
    client = await connectClient(
        reactor, path, "Failed to initialize client ({path}), {error}"
    )
    if not await waitRecovered(client):
        return 1
    try:
        db = await client.attach(options["database"], persistent=True)
    except Exception:  # noqa: BLE001
        err(f"Failed to attach DB {options['database']}")
        return 1
    key = options["key"].encode()
    try:
        header, _ = splitValue(db.tdb.fetch(key))
        if header is None:
            header = LtdbHeader(0, CTDB_UNKNOWN_PNN)
        new = LtdbHeader(header.rsn + 1, header.dmaster, header.reserved1, header.flags)
        payload = R.RecBuffer(
            db.db_id, (R.RecData(0, key, new.encode() + options["value"].encode()),)
        ).encode()
        await client.controlOk(
            Control.UPDATE_RECORD, payload, timeout=float(options["timelimit"])
        )
    except Exception as e:  # noqa: BLE001
        err(f"update record failed: {e}")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """The C{update_record_persistent} program (see L{ctdb.helpers.writePrograms})."""
    runMain(run, argv)


if __name__ == "__main__":
    main()
