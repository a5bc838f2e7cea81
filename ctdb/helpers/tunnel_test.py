# -*- test-case-name: tests.integration.test_helpers -*-
"""
C{tunnel_test} (Samba's tests/src/tunnel_test.c): run on every node at
once (C{-n} nodes).  Each node registers two tunnels, C{CTDB_TUNNEL_TEST |
pnn} to send on and C{CTDB_TUNNEL_TEST | prev} to receive on; after all
have joined, each sends a token {pnn, count} to the next node.  A node
passes on every token it receives, and bumps the count of its own (which
must come back with the count it sent).  After C{-t} seconds (default 10)
each prints::

    pnn[PNN] RATE msgs/sec

then waits 3 s more and deregisters its tunnels.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Sequence

from twisted.internet import defer

from ctdb.errors import CommandFailed
from ctdb.helpers.common import (
    BasicOptions,
    clusterWait,
    connectClient,
    err,
    errnoOf,
    out,
    parseOptions,
    runMain,
    sleep,
    startLogging,
    waitRecovered,
)
from ctdb.interfaces import ICTDBReactor
from ctdb.protocols.controls import Control
from ctdb.protocols.packet import (
    CTDB_TUNNEL_FLAG_NOREPLY,
    CTDB_TUNNEL_FLAG_REQUEST,
    CTDB_TUNNEL_TEST,
    ReqTunnel,
)

_DATA = struct.Struct("<II")  # struct test_data {pnn, count}


async def run(reactor: ICTDBReactor, argv: Sequence[str]) -> int:
    options = parseOptions(BasicOptions(), argv)
    startLogging("tunnel_test", options["level"])
    numNodes = options["num-nodes"]
    timelimit = options["timelimit"]
    client = await connectClient(reactor, options["socket"])
    if not await waitRecovered(client):
        return 1
    conn = client.connection
    pnn = client.pnn
    nextNode = (pnn + 1) % numNodes
    prevNode = (pnn + numNodes - 1) % numNodes
    sendId = CTDB_TUNNEL_TEST | pnn
    recvId = CTDB_TUNNEL_TEST | prevNode
    count = 0
    done = False
    failed: defer.Deferred[None] = defer.Deferred()

    def fail(code: int, message: str = "") -> None:
        if not failed.called:
            failed.errback(CommandFailed(code, message))

    def send(owner: int, value: int) -> None:
        conn.sendTunnel(
            nextNode,
            sendId,
            CTDB_TUNNEL_FLAG_REQUEST | CTDB_TUNNEL_FLAG_NOREPLY,
            _DATA.pack(owner, value),
        )

    def onTunnel(pkt: ReqTunnel) -> None:
        nonlocal count
        if done or not pkt.flags & CTDB_TUNNEL_FLAG_REQUEST:
            return
        if pkt.tunnel_id == sendId and sendId != recvId:
            err(f"pnn:{pnn} Received data on send tunnel")
            fail(errno.EPROTO)
            return
        if len(pkt.data) < _DATA.size:
            fail(errno.EMSGSIZE)
            return
        owner, value = _DATA.unpack_from(pkt.data)
        if owner == pnn:
            if value != count:
                fail(errno.EPROTO, f"token came back with {value}, sent {count}")
                return
            count = (value + 1) & 0xFFFFFFFF
            value = count
        send(owner, value)

    try:
        await conn.registerTunnel(sendId, onTunnel)
        if recvId != sendId:
            await conn.registerTunnel(recvId, onTunnel)
        await clusterWait(client, numNodes)
        send(pnn, count)
        timer = sleep(reactor, timelimit)
        await defer.DeferredList(
            [timer, failed],
            fireOnOneCallback=True,
            fireOnOneErrback=True,
            consumeErrors=True,
        )
        if failed.called:
            await failed
        timer.cancel()
        out(f"pnn[{pnn}] {count / timelimit if timelimit else 0.0:.1f} msgs/sec")
        done = True
        await sleep(reactor, 3)
        for tunnelId in {sendId, recvId}:
            await conn.controlOk(
                Control.TUNNEL_DEREGISTER, srvid=tunnelId, destnode=pnn
            )
    except defer.FirstError as e:
        err(f"tunnel test failed, ret={errnoOf(e.subFailure.value)}")
        return 1
    except Exception as e:  # noqa: BLE001
        code = e.code if isinstance(e, CommandFailed) else errnoOf(e)
        err(f"tunnel test failed, ret={code}")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """The C{tunnel_test} program (see L{ctdb.helpers.writePrograms})."""
    runMain(run, argv)


if __name__ == "__main__":
    main()
