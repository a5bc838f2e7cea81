# -*- test-case-name: tests.integration.test_helpers -*-
"""
C{fetch_readonly} (Samba's tests/src/fetch_readonly.c): fetch-lock record
C{-k} of volatile database C{-D} read-only (asking for a read-only copy
with C{CTDB_WANT_READONLY} if this node has neither the record nor a
copy), then release it.  Exit 0 on success.
"""

from __future__ import annotations

from collections.abc import Sequence

from ctdb.helpers.common import (
    DatabaseOptions,
    connectClient,
    err,
    fetchReadonly,
    parseOptions,
    runMain,
    startLogging,
    waitRecovered,
)
from ctdb.interfaces import ICTDBReactor


async def run(reactor: ICTDBReactor, argv: Sequence[str]) -> int:
    options = parseOptions(DatabaseOptions(), argv)
    startLogging("fetch_readonly", options["level"])
    client = await connectClient(
        reactor, options["socket"], "Failed to initialize client, {error}"
    )
    if not await waitRecovered(client):
        return 1
    try:
        db = await client.attach(options["database"])
    except Exception:  # noqa: BLE001
        err(f"Failed to attach to DB {options['database']}")
        return 1
    try:
        await fetchReadonly(db, options["key"].encode(), float(options["timelimit"]))
    except Exception as e:  # noqa: BLE001
        err(f"fetch readonly loop test failed: {e}")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """The C{fetch_readonly} program (see L{ctdb.helpers.writePrograms})."""
    runMain(run, argv)


if __name__ == "__main__":
    main()
