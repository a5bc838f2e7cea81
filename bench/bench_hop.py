# -*- test-case-name: tests.test_layout -*-
"""
Per-hop cost of the daemon, in-process and repeatable (issue 14).

Two nodes are built with L{ctdb.service.buildNode} (the real daemon, its
databases and its TCP node transport), but no reactor runs: the node links
and one local client connection are the real protocol objects
(L{ctdb.transports.tcp.NodeInProtocol} / C{NodeOutProtocol},
L{ctdb.transports.clientsocket.ClientProtocol}) on stand-in transports that
own one end of a C{socket.socketpair()}, so each packet goes out through
L{ctdb.transports._write.PacketWriter}'s send() as in a running daemon.
The driver reads the other end and feeds the bytes to the next protocol's
C{dataReceived}, exactly what the reactor would do after a readable event.

Measures (each C{--count} times, after a warm-up):

- C{echo}: the driver's own share of C{ping-local}: the request is built
  and written back to the driver unhandled, by the client socket (subtract
  it from C{ping-local}, and three times from the 3-hop measures, for the
  daemon's own cost);
- C{ping-local}: a client's PING to its own node (1 hop: client in ->
  client out);
- C{ping-remote}: a client's PING for node 1 through node 0 (3 hops: node 0
  forwards, node 1 answers, node 0 hands the reply to the client);
- C{ping-local-x64}, C{ping-remote-x64}: the same with 64 PINGs written
  at once, each daemon reading all that is there at once (as a
  pipelining client and the node links see them), per PING;
- C{call-remote}: a client's fetch (REQ_CALL, immediate migration) of a new
  key whose lmaster is node 1, in a volatile database held in memory
  (3 hops: node 0 sends REQ_CALL, node 1 creates the record and answers
  REPLY_DMASTER, node 0 stores it and sends REPLY_CALL).

Two ways of counting:

    .venv/bin/python bench/bench_hop.py [--count 20000]
        CPU microseconds per operation and per hop (time.process_time,
        best of --repeat runs; noisy on a shared machine)

    .venv/bin/python bench/bench_hop.py --cold 32 [--count 3000]
        the same, with 32 MB of other memory written before each
        operation (not timed): each operation starts with cold caches, as
        in a running cluster, where a daemon wakes for one packet after
        the other daemons and the clients ran on the same cores

    .venv/bin/python bench/bench_hop.py --callgrind [--count 2000]
        instructions per operation and per hop: runs itself under
        valgrind --tool=callgrind with --count and 2 x --count operations of
        each measure and divides the difference, so start-up, imports and
        warm-up cancel out.  Repeatable to a fraction of a percent.

Harness code only: not shipped, not run by the test suite.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import (
    IConsumer,
    IProducer,
    ISystemHandle,
)
from twisted.internet.testing import MemoryReactorClock
from zope.interface import implementer

from ctdb.daemon.core import Daemon
from ctdb.nodes import NodeMap, parseNodes
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.service import CTDBNode, NodeConfig, buildNode
from ctdb.transports.clientsocket import ClientProtocol
from ctdb.transports.tcp import NodeInProtocol, NodeOutProtocol, TCPNodeTransport

MEASURES = (
    "echo",
    "ping-local",
    "ping-remote",
    "call-remote",
    "ping-local-x64",
    "ping-remote-x64",
)
HOPS = {
    "echo": 1,
    "ping-local": 1,
    "ping-remote": 3,
    "call-remote": 3,
    "ping-local-x64": 1,
    "ping-remote-x64": 3,
}
#: operations per call of the measure's function (and per count)
BATCH = 64


@implementer(ISystemHandle, IConsumer)
class SocketEnd:
    """
    The transport of one protocol: one end of a socketpair.  What the
    L{PacketWriter} does not send itself comes through L{write} (never, as
    long as the driver drains the other end after each step).
    """

    disconnecting = False

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.producer: IProducer | None = None

    def getHandle(self) -> socket.socket:
        return self.sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.sock.sendall(b"".join(data))

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def setTcpNoDelay(self, enabled: bool) -> None:
        pass

    def setTcpKeepAlive(self, enabled: bool) -> None:
        pass

    def loseConnection(self) -> None:
        raise RuntimeError("the bench lost a connection")

    abortConnection = loseConnection

    def getPeer(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 0)

    getHost = getPeer


class Pipe:
    """A socketpair: a protocol's transport on one end, the driver's
    reader on the other."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.ours.setblocking(False)
        self.transport = SocketEnd(self.ours)

    def drain(self) -> bytes:
        """Whatever the protocol sent (at least one byte)."""
        return self.theirs.recv(1 << 20)


class Bench:
    """Two nodes, their links and one client of node 0, wired by hand."""

    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="bench_hop.")
        self.reactor = MemoryReactorClock()
        nodeMap: NodeMap = parseNodes("127.0.0.1\n127.0.0.2\n")
        self.nodes: list[CTDBNode] = [
            buildNode(
                NodeConfig(
                    nodeMap=nodeMap,
                    pnn=pnn,
                    memoryStores=True,
                    withRecovery=False,
                    withClientSocket=False,
                    dbDirVolatile=os.path.join(self.tmp, f"v{pnn}"),
                    dbDirPersistent=os.path.join(self.tmp, f"p{pnn}"),
                    dbDirState=os.path.join(self.tmp, f"s{pnn}"),
                ),
                reactor=self.reactor,  # type: ignore[arg-type]
            )
            for pnn in (0, 1)
        ]
        self.daemons: list[Daemon] = [n.daemon for n in self.nodes]
        for node in self.nodes:
            node.startService()
        # links: out[a][b] is a's outgoing link to b, inn[b][a] b's incoming
        # link from a; the driver moves bytes from one to the other
        self.out: dict[tuple[int, int], Pipe] = {}
        self.inn: dict[tuple[int, int], NodeInProtocol] = {}
        for a in (0, 1):
            for b in (0, 1):
                if a == b:
                    continue
                ta = self._transport(a)
                ta.connectNode(b, self.daemons[b].nodes[b].address)
                pipe = Pipe()
                outp = NodeOutProtocol(ta, b)
                ta.peers[b].service.stopService()  # type: ignore[union-attr]
                outp.makeConnection(pipe.transport)
                self.out[(a, b)] = pipe
        for a, b in list(self.out):
            tb = self._transport(b)
            inp = NodeInProtocol(tb, a)
            inp.makeConnection(SocketEnd(socket.socket()))
            self.inn[(b, a)] = inp
        for d in self.daemons:
            assert all(d.isConnected(p) for p in (0, 1)), "links not up"
        self.clientPipe = Pipe()
        self.client = ClientProtocol(self.daemons[0], self._transport(0).clientWrites)
        self.client.makeConnection(self.clientPipe.transport)
        self.reqid = 0
        self.dbId = self._attach("bench_hop.tdb")
        self.keys = 0
        self.settle()

    def settle(self) -> None:
        """Deliver what the nodes sent each other while they were wired up
        (heartbeats as the links came up), until they are quiet."""
        moved = True
        while moved:
            moved = False
            for (a, b), pipe in self.out.items():
                pipe.theirs.setblocking(False)
                try:
                    data = pipe.theirs.recv(1 << 20)
                except BlockingIOError:
                    continue
                finally:
                    pipe.theirs.setblocking(True)
                self.inn[(b, a)].dataReceived(data)
                moved = True

    def _transport(self, pnn: int) -> TCPNodeTransport:
        t = self.daemons[pnn].transport
        assert isinstance(t, TCPNodeTransport)
        return t

    def _attach(self, name: str) -> int:
        ids = {node.databases.attach(name, 0).db_id for node in self.nodes}
        assert len(ids) == 1
        return ids.pop()

    # -- one operation each ---------------------------------------------------

    def _control(self, destnode: int, opcode: int) -> bytes:
        self.reqid += 1
        return P.encodeReqControl(destnode, P.CTDB_UNKNOWN_PNN, self.reqid, 0, opcode)

    def _hop(self, src: int, dst: int) -> None:
        """Move what node src sent to node dst into dst's incoming link."""
        self.inn[(dst, src)].dataReceived(self.out[(src, dst)].drain())

    def echo(self) -> bytes:
        # the driver's own part of ping-local: the request is sent back
        # as it is, by the client's socket, instead of being handled
        self.clientPipe.ours.send(self._control(P.CTDB_CURRENT_NODE, Control.PING))
        return self.clientPipe.drain()

    def pingLocal(self) -> bytes:
        self.client.dataReceived(self._control(P.CTDB_CURRENT_NODE, Control.PING))
        return self.clientPipe.drain()

    def pingLocal64(self) -> bytes:
        self.client.dataReceived(
            b"".join(
                self._control(P.CTDB_CURRENT_NODE, Control.PING) for _ in range(BATCH)
            )
        )
        return self._drainAll(self.clientPipe, BATCH)

    def pingRemote64(self) -> bytes:
        self.client.dataReceived(
            b"".join(self._control(1, Control.PING) for _ in range(BATCH))
        )
        # node 0 sent each control with its own send(): node 1 reads them
        # all at once, as it would after one reactor turn, and so on
        self.inn[(1, 0)].dataReceived(self._drainAll(self.out[(0, 1)], BATCH))
        self.inn[(0, 1)].dataReceived(self._drainAll(self.out[(1, 0)], BATCH))
        return self._drainAll(self.clientPipe, BATCH)

    def _drainAll(self, pipe: Pipe, packets: int) -> bytes:
        """Exactly C{packets} whole packets from C{pipe}."""
        data = b""
        while True:
            data += pipe.drain()
            offset = 0
            for _ in range(packets):
                if len(data) < offset + 4:
                    break
                offset += int.from_bytes(data[offset : offset + 4], "little")
            else:
                if offset == len(data):
                    return data
            if offset > len(data) or len(data) < 4:
                continue

    def pingRemote(self) -> bytes:
        self.client.dataReceived(self._control(1, Control.PING))
        self._hop(0, 1)
        self._hop(1, 0)
        return self.clientPipe.drain()

    def callRemote(self) -> bytes:
        # a new key whose lmaster is node 1 (odd hash with two lmasters)
        while True:
            self.keys += 1
            key = b"k%d" % self.keys
            if self.nodes[0].databases.lmaster(key) == 1:
                break
        self.reqid += 1
        header = P.Header(
            P.Operation.REQ_CALL, P.CTDB_CURRENT_NODE, P.CTDB_UNKNOWN_PNN, self.reqid
        )
        req = P.ReqCall(
            header, P.CTDB_IMMEDIATE_MIGRATION, self.dbId, P.CTDB_FETCH_FUNC, 0, key
        )
        self.client.dataReceived(req.encode())
        self._hop(0, 1)
        self._hop(1, 0)
        return self.clientPipe.drain()

    def operation(self, measure: str) -> Callable[[], bytes]:
        op = {
            "echo": self.echo,
            "ping-local": self.pingLocal,
            "ping-remote": self.pingRemote,
            "ping-local-x64": self.pingLocal64,
            "ping-remote-x64": self.pingRemote64,
            "call-remote": self.callRemote,
        }[measure]
        reactor = self.reactor

        def timed() -> bytes:
            # 1 ms passes per operation (without running timers, whose
            # packets would mix with the operation's): the daemons' clocks
            # move as in a running cluster, e.g. the per-key migration
            # counters of the last second expire
            reactor.rightNow += 0.001
            return op()

        return timed

    def check(self, measure: str) -> None:
        """One operation, its (last) reply decoded and checked."""
        data = self.operation(measure)()
        offset = 0
        replies = []
        while offset < len(data):
            length = int.from_bytes(data[offset : offset + 4], "little")
            replies.append(P.decodePacket(data[offset : offset + length]))
            offset += length
        assert len(replies) == (BATCH if measure.endswith("x64") else 1)
        reply = replies[-1]
        if measure == "echo":
            assert isinstance(reply, P.ReqControl), reply
            return
        if measure == "call-remote":
            assert isinstance(reply, P.ReplyCall), reply
        else:
            assert isinstance(reply, P.ReplyControl), reply
        assert reply.status >= 0, reply
        assert reply.header.reqid == self.reqid, reply


def calls(measure: str, count: int) -> int:
    """How many calls of the measure's function make C{count} operations
    (rounded down to whole batches)."""
    return max(1, count // BATCH) if measure.endswith("x64") else count


def operations(measure: str, count: int) -> int:
    """The operations that C{count} asked for, as really done."""
    return calls(measure, count) * (BATCH if measure.endswith("x64") else 1)


def run(measure: str, count: int, coldBytes: int = 0) -> float:
    """
    C{count} operations after a warm-up; CPU seconds.  With C{coldBytes},
    that much memory is written between two operations (one byte per cache
    line, not timed), so that each operation starts with the caches full of
    other data, as a daemon does that wakes for one packet after the other
    processes of a cluster ran.
    """
    bench = Bench()
    op = bench.operation(measure)
    for _ in range(calls(measure, 200)):
        bench.check(measure)
    # The set-up's objects move to the permanent generation: the collector
    # then only looks at what the operations make, so that a full
    # collection in one run and not in another does not swing the counts
    # by millions of instructions.
    gc.collect()
    gc.freeze()
    if coldBytes:
        return _runCold(bench, op, calls(measure, count), coldBytes)
    start = time.process_time()
    for _ in range(calls(measure, count)):
        op()
    elapsed = time.process_time() - start
    bench.check(measure)
    return elapsed


def _runCold(bench: Bench, op: Callable[[], bytes], n: int, coldBytes: int) -> float:
    """L{run}'s loop with the caches flushed before each operation."""
    junk = bytearray(coldBytes)
    zeros = bytes(len(junk[::64]))
    clock = time.process_time
    elapsed = 0.0
    for _ in range(n):
        junk[::64] = zeros
        start = clock()
        op()
        elapsed += clock() - start
    return elapsed


def callgrind(measure: str, count: int) -> int:
    """Instructions of a whole run of C{count} operations of C{measure}."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                os.path.abspath(__file__),
                "--inner",
                measure,
                "--count",
                str(count),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with open(out) as f:
            text = f.read()
    match = re.search(r"^summary:\s+(\d+)", text, re.MULTILINE)
    if match is None:
        match = re.search(r"^totals:\s+(\d+)", text, re.MULTILINE)
    assert match is not None, "no totals in callgrind output"
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--only", choices=MEASURES, action="append")
    parser.add_argument(
        "--cold",
        type=int,
        default=0,
        metavar="MB",
        help="write MB of other memory before each operation (CPU mode only)",
    )
    parser.add_argument("--inner", choices=MEASURES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    measures = args.only or list(MEASURES)
    if args.inner:
        run(args.inner, args.count)
        return
    if args.callgrind:
        count = args.count or 2000
        print(f"{'measure':<16}{'instr/op':>12}{'instr/hop':>12}")
        for measure in measures:
            one = callgrind(measure, count)
            two = callgrind(measure, 2 * count)
            done = operations(measure, 2 * count) - operations(measure, count)
            perOp = (two - one) / done
            print(f"{measure:<16}{perOp:>12,.0f}{perOp / HOPS[measure]:>12,.0f}")
        return
    count = args.count or 20000
    print(f"{'measure':<16}{'us/op':>10}{'us/hop':>10}")
    for measure in measures:
        best = min(run(measure, count, args.cold << 20) for _ in range(args.repeat))
        perOp = best / operations(measure, count) * 1e6
        print(f"{measure:<16}{perOp:>10.2f}{perOp / HOPS[measure]:>10.2f}")


if __name__ == "__main__":
    main()
