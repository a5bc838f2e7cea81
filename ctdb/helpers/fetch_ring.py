# -*- test-case-name: tests.integration.test_helpers -*-
"""
C{fetch_ring} (Samba's tests/src/fetch_ring.c): run on every node at once
(C{-n} nodes) with the same volatile database C{-D} and key C{-k}.  After
all have joined, the last node fetch-locks the record, appends
C{"msg_count=N on node PNN"} to it and sends a message (srvid 0) to the
next node, which does the same: the record migrates round the ring.
After C{-t} seconds (default 10) each prints::

    Fetch[PNN]: RATE msgs/sec

then fetch-locks the record once more (and prints it with C{-i}).
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet import defer
from twisted.python.failure import Failure

from ctdb.helpers.common import (
    DatabaseOptions,
    clusterWait,
    connectClient,
    err,
    out,
    parseOptions,
    runMain,
    sleep,
    startLogging,
    waitRecovered,
)
from ctdb.interfaces import ICTDBReactor

MSG_ID_FETCH = 0


def updated(data: bytes, count: int, pnn: int) -> bytes:
    """The record's next value: its text (up to a NUL) plus one line, NUL-ended."""
    if len(data) > 1000:
        data = b""
    text = data.split(b"\0", 1)[0] if data else b"Test data\n"
    return text + b"msg_count=%d on node %d\n\0" % (count, pnn)


async def run(reactor: ICTDBReactor, argv: Sequence[str]) -> int:
    options = parseOptions(DatabaseOptions(), argv)
    startLogging("fetch_ring", options["level"])
    numNodes = options["num-nodes"]
    client = await connectClient(reactor, options["socket"])
    if not await waitRecovered(client):
        return 1
    try:
        db = await client.attach(options["database"])
    except Exception:  # noqa: BLE001
        err(f"Failed to attach to DB {options['database']}")
        return 1
    pnn = client.pnn
    key = options["key"].encode()
    count = 0
    failed: defer.Deferred[None] = defer.Deferred()

    def fail(reason: Failure) -> None:
        if not failed.called:
            failed.errback(reason)

    async def update() -> None:
        async with db.fetchLock(key) as record:
            record.store(updated(record.data, count, pnn))
        client.sendMessage((pnn + 1) % numNodes, MSG_ID_FETCH, b"")

    def onMessage(srvid: int, data: bytes) -> None:
        nonlocal count
        count += 1
        defer.ensureDeferred(update()).addErrback(fail)

    try:
        await client.registerSrvid(MSG_ID_FETCH, onMessage)
        await clusterWait(client, numNodes)
        start = reactor.seconds()
        if pnn == numNodes - 1:
            defer.ensureDeferred(update()).addErrback(fail)
        timer = sleep(reactor, options["timelimit"])
        await defer.DeferredList(
            [timer, failed],
            fireOnOneCallback=True,
            fireOnOneErrback=True,
            consumeErrors=True,
        )
        if failed.called:
            raise RuntimeError("fetch-lock failed")
        elapsed = max(reactor.seconds() - start, 1e-9)
        out(f"Fetch[{pnn}]: {count / elapsed:.2f} msgs/sec")
        async with db.fetchLock(key) as record:
            if options["interactive"]:
                out("DATA:\n" + record.data.split(b"\0", 1)[0].decode(errors="replace"))
    except Exception as e:  # noqa: BLE001
        err(f"fetch ring test failed: {e}")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """The C{fetch_ring} program (see L{ctdb.helpers.writePrograms})."""
    runMain(run, argv)


if __name__ == "__main__":
    main()
