# -*- test-case-name: tests.integration.test_helpers -*-
"""
C{message_ring} (Samba's tests/src/message_ring.c): run on every node
at once (C{-n} nodes).  After all have joined (L{clusterWait}), node 0
injects two messages on srvid 0, carrying +1 and -1; every node counts
each message it receives and passes it on to its neighbour in that
direction.  After C{-t} seconds (default 10) each prints::

    Ring[PNN]: RATE msgs/sec (+ve=N -ve=M)

(also every second on node 0 with C{-i}).  Node 0 re-injects a direction
each second until one of its messages came back.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from twisted.internet import task

from ctdb.helpers.common import (
    BasicOptions,
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

MSG_ID_BENCH = 0


async def run(reactor: ICTDBReactor, argv: Sequence[str]) -> int:
    options = parseOptions(BasicOptions(), argv)
    startLogging("message_ring", options["level"])
    numNodes = options["num-nodes"]
    client = await connectClient(reactor, options["socket"])
    if not await waitRecovered(client):
        return 1
    pnn = client.pnn
    count = plus = minus = 0
    start = reactor.seconds()

    def nextNode(incr: int) -> int:
        return (pnn + numNodes + incr) % numNodes

    def report() -> None:
        elapsed = max(reactor.seconds() - start, 1e-9)
        out(f"Ring[{pnn}]: {count / elapsed:.2f} msgs/sec (+ve={plus} -ve={minus})")

    def onMessage(srvid: int, data: bytes) -> None:
        nonlocal count, plus, minus
        if srvid != MSG_ID_BENCH or len(data) != 4:
            return
        (incr,) = struct.unpack("<i", data)
        count += 1
        if incr == 1:
            plus += 1
        else:
            minus += 1
        client.sendMessage(nextNode(incr), srvid, data)

    def eachSecond() -> None:
        if options["interactive"]:
            report()
        for incr, seen in ((1, plus), (-1, minus)):
            if seen == 0:
                client.sendMessage(
                    nextNode(incr), MSG_ID_BENCH, struct.pack("<i", incr)
                )

    try:
        await client.registerSrvid(MSG_ID_BENCH, onMessage)
        await clusterWait(client, numNodes)
    except Exception as e:  # noqa: BLE001
        err(f"message ring test failed: {e}")
        return 1
    start = reactor.seconds()
    ticker = task.LoopingCall(eachSecond)
    ticker.clock = reactor
    if pnn == 0:
        ticker.start(1.0, now=False)
    await sleep(reactor, options["timelimit"])
    if ticker.running:
        ticker.stop()
    report()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """The C{message_ring} program (see L{ctdb.helpers.writePrograms})."""
    runMain(run, argv)


if __name__ == "__main__":
    main()
