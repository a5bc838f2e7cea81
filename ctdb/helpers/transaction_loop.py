# -*- test-case-name: tests.integration.test_helpers -*-
"""
C{transaction_loop} (Samba's tests/src/transaction_loop.c): run on every
node at once (C{-n} nodes) on the same persistent or replicated database
(C{-D}, C{-T persistent|replicated}) and key C{-k}.  After all have
joined, each node runs transactions back to back for C{-t} seconds: read
the record (an array of C{-n} uint32 counters), add one to its own
counter, commit.  Node 0 checks after each commit that no counter ever
went down.  At the end each prints::

    Transaction[PNN]:      C0      C1 ...

(also every second on node 0 with C{-i}).  Exit 0, or 1 with
"transaction loop test failed" on any failure.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from twisted.internet import task

from ctdb.helpers.common import (
    DatabaseOptions,
    clusterWait,
    connectClient,
    err,
    errnoOf,
    out,
    parseOptions,
    runMain,
    startLogging,
    waitRecovered,
)
from ctdb.interfaces import ICTDBReactor

#: Bound on waiting for the transaction lock (and each fetch-lock under it).
LOCK_TIMEOUT = 120.0


async def run(reactor: ICTDBReactor, argv: Sequence[str]) -> int:
    options = parseOptions(DatabaseOptions(), argv)
    startLogging("transaction_loop", options["level"])
    numNodes = options["num-nodes"]
    timelimit = options["timelimit"]
    client = await connectClient(reactor, options["socket"])
    if not await waitRecovered(client):
        return 1
    dbtype = options["dbtype"]
    if dbtype not in ("persistent", "replicated"):
        err("Database must be persistent or replicated")
        return 1
    try:
        db = await client.attach(
            options["database"],
            persistent=dbtype == "persistent",
            replicated=dbtype == "replicated",
        )
    except Exception:  # noqa: BLE001
        err(f"Failed to attach to persistent DB {options['database']}")
        return 1
    # Samba's client waits for the g_lock without a bound; ours is generous
    client.lockTimeout = LOCK_TIMEOUT

    pnn = client.pnn
    key = options["key"].encode()
    size = numNodes * 4
    counters = [0] * numNodes
    oldCounters = [0] * numNodes
    done = False

    def line() -> str:
        return f"Transaction[{pnn}]: " + "".join(f"{c:6d} " for c in counters)

    def finish() -> None:
        nonlocal done
        done = True

    def eachSecond() -> None:
        if options["interactive"]:
            out(line())

    try:
        await clusterWait(client, numNodes)
    except Exception as e:  # noqa: BLE001
        err(f"transaction loop test failed, ret={errnoOf(e)}")
        return 1
    ticker = task.LoopingCall(eachSecond)
    ticker.clock = reactor
    if pnn == 0:
        ticker.start(1.0, now=False)
    timer = reactor.callLater(timelimit, finish)
    step = "start"
    try:
        while True:
            step = "start"
            txn = await db.transaction()
            step = "fetch record"
            data = await txn.fetch(key) or b""
            if len(data) < size:
                data = bytes(size)
            values = list(struct.unpack_from(f"<{numNodes}I", data))
            values[pnn] = (values[pnn] + 1) & 0xFFFFFFFF
            data = struct.pack(f"<{numNodes}I", *values) + data[size:]
            counters[:] = values
            step = "store"
            await txn.store(key, data)
            step = "commit"
            await txn.commit()
            if pnn == 0:
                for i in range(numNodes):
                    if counters[i] < oldCounters[i]:
                        err(
                            f"Counter reduced for node {i}: "
                            f"{oldCounters[i]} -> {counters[i]}"
                        )
                        # a committed transaction was lost
                        err("transaction loop test failed, ret=5")
                        return 1
                oldCounters[:] = counters
            if done:
                out(line())
                break
    except Exception as e:  # noqa: BLE001
        if step == "commit":
            err(f"transaction commit failed - {e}")
        else:
            err(f"transaction {step} failed: {e}")
        err(f"transaction loop test failed, ret={errnoOf(e)}")
        return 1
    finally:
        if ticker.running:
            ticker.stop()
        if timer.active():
            timer.cancel()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """The C{transaction_loop} program (see L{ctdb.helpers.writePrograms})."""
    runMain(run, argv)


if __name__ == "__main__":
    main()
