# -*- test-case-name: tests.transports.ib.test_bench -*-
"""
Latency of the InfiniBand node transport (issue 15): ping-pong of one CTDB
packet of 64, 128, 256 and 512 bytes between two transports.

Not a test; run by hand from the repository root:

    .venv/bin/python bench/bench_ib.py                    # fake verbs, here
    .venv/bin/python bench/bench_ib.py --tcp              # and TCP, to compare
    .venv/bin/python bench/bench_ib.py --real A,B         # RDMA device

 - fake (default): both transports in this process on the fake fabric of
   tests/support/fakeverbs.py, whose completion channels are eventfds the
   reactor waits on.  The fabric itself costs next to nothing, so a round
   trip is what our Python costs: two wake-ups from epoll, two completion
   handlings (get event, re-arm, poll, ack), two sends (buffer fill, post),
   framing and the listener upcall on each side.  Half the round trip is
   the transport's overhead per message.
 - --tcp: the same over two TCP transports on 127.0.0.1 and 127.0.0.2.
 - --real A,B: two processes (this one, and a child it starts and stops)
   on an RDMA device (soft-RoCE counts), on addresses A and B of it; the
   child echoes.  Compare with perftest's C{ib_send_lat} (docs/IB.md).

Each size: --warmup round trips, then --count timed ones; median, p90
and p99 of the round trip, and half the median as the one-way figure.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, task
from zope.interface import implementer

from ctdb.interfaces import INodeTransport, INodeTransportListener
from ctdb.protocols import packet as P

SIZES = (64, 128, 256, 512)
PORT = 24380


def packet(size: int) -> bytes:
    """A REQ_MESSAGE of C{size} bytes in all (header, srvid, length and
    data; a multiple of 8)."""
    overhead = len(P.ReqMessage(P.Header(P.Operation.REQ_MESSAGE), srvid=1).encode())
    data = b"x" * (size - overhead)
    encoded = P.ReqMessage(
        P.Header(P.Operation.REQ_MESSAGE, destnode=1, srcnode=0), srvid=1, data=data
    ).encode()
    assert len(encoded) == size, (len(encoded), size)
    return encoded


@implementer(INodeTransportListener)
class _Listener:
    def __init__(self) -> None:
        self.connected: defer.Deferred[None] = defer.Deferred()
        self.onPacket: Callable[[int, bytes], object] = lambda pnn, data: None

    def packetReceived(self, pnn: int, data: bytes) -> None:
        self.onPacket(pnn, data)

    def nodeConnected(self, pnn: int) -> None:
        if not self.connected.called:
            self.connected.callback(None)

    def nodeDead(self, pnn: int) -> None:
        print(f"node {pnn} dead", file=sys.stderr)


def pingPong(
    reactor: Any,
    sender: INodeTransport,
    listener: _Listener,
    data: bytes,
    count: int,
) -> defer.Deferred[list[float]]:
    """C{count} round trips of C{data} to node 1, which echoes; the
    seconds each took."""
    done: defer.Deferred[list[float]] = defer.Deferred()
    times: list[float] = []
    clock = time.perf_counter
    started = [clock()]

    def back(pnn: int, reply: bytes) -> None:
        now = clock()
        times.append(now - started[0])
        if len(times) == count:
            done.callback(times)
            return
        started[0] = clock()
        sender.queuePacket(1, data)

    listener.onPacket = back
    sender.queuePacket(1, data)
    return done


@defer.inlineCallbacks
def measure(
    reactor: Any,
    sender: INodeTransport,
    listener: _Listener,
    warmup: int,
    count: int,
) -> Any:
    results = {}
    for size in SIZES:
        data = packet(size)
        yield pingPong(reactor, sender, listener, data, warmup)
        times = yield pingPong(reactor, sender, listener, data, count)
        times.sort()
        results[size] = (
            statistics.median(times),
            times[int(len(times) * 0.9)],
            times[int(len(times) * 0.99)],
        )
    return results


def report(title: str, results: dict[int, tuple[float, float, float]]) -> None:
    print(f"\n{title}")
    print(
        f"{'bytes':>6} {'rtt median':>11} {'rtt p90':>9} {'rtt p99':>9} {'one-way':>9}"
    )
    for size, (med, p90, p99) in results.items():
        print(
            f"{size:>6} {med * 1e6:>9.1f}us {p90 * 1e6:>7.1f}us {p99 * 1e6:>7.1f}us"
            f" {med * 1e6 / 2:>7.1f}us"
        )


def _echo(transport: INodeTransport, listener: _Listener) -> None:
    def echo(pnn: int, data: bytes) -> None:
        transport.queuePacket(pnn, data)

    listener.onPacket = echo


@defer.inlineCallbacks
def _pair(reactor: Any, make: Callable[[str, _Listener], INodeTransport]) -> Any:
    """Two transports, 0 on 127.0.0.1 and 1 on 127.0.0.2, connected; 1
    echoes."""
    addresses = ("127.0.0.1", "127.0.0.2")
    listeners = (_Listener(), _Listener())
    transports = [make(a, lst) for a, lst in zip(addresses, listeners, strict=True)]
    for t in transports:
        t.start()
    transports[0].connectNode(1, addresses[1])
    transports[1].connectNode(0, addresses[0])
    yield defer.gatherResults([lst.connected for lst in listeners])
    _echo(transports[1], listeners[1])
    return transports, listeners


@defer.inlineCallbacks
def runFake(reactor: Any, args: argparse.Namespace) -> Any:
    from ctdb.transports.ib.transport import IBNodeTransport
    from tests.support.fakeverbs import FakeFabric

    fabric = FakeFabric(reactor=reactor)

    def make(address: str, listener: _Listener) -> INodeTransport:
        return IBNodeTransport(
            reactor=reactor,
            address=address,
            verbs=fabric.verbs(address),
            listener=listener,
            port=PORT,
        )

    transports, listeners = yield _pair(reactor, make)
    results = yield measure(
        reactor, transports[0], listeners[0], args.warmup, args.count
    )
    report("InfiniBand transport, fake verbs (the Python overhead)", results)
    for t in transports:
        yield t.shutdown()
    fabric.close()
    return results


@defer.inlineCallbacks
def runTCP(reactor: Any, args: argparse.Namespace) -> Any:
    from ctdb.transports.tcp import TCPNodeTransport

    def make(address: str, listener: _Listener) -> INodeTransport:
        return TCPNodeTransport(
            reactor=reactor,
            address=address,
            port=PORT + 1,
            listener=listener,
            retryDelay=0.1,
        )

    transports, listeners = yield _pair(reactor, make)
    results = yield measure(
        reactor, transports[0], listeners[0], args.warmup, args.count
    )
    report("TCP transport, loopback, same process", results)
    for t in transports:
        yield t.shutdown()
    return results


@defer.inlineCallbacks
def runReal(reactor: Any, args: argparse.Namespace) -> Any:
    from ctdb.transports.ib.binding import loadVerbs
    from ctdb.transports.ib.transport import IBNodeTransport

    mine, theirs = args.real.split(",")
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--echo", f"{theirs},{mine}"]
    )
    try:
        listener = _Listener()
        t = IBNodeTransport(
            reactor=reactor,
            address=mine,
            verbs=loadVerbs(),
            listener=listener,
            port=PORT,
        )
        t.start()
        t.connectNode(1, theirs)
        yield listener.connected
        results = yield measure(reactor, t, listener, args.warmup, args.count)
        report(f"InfiniBand transport, RDMA device, {mine} <-> {theirs}", results)
        yield t.shutdown()
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait()
    return results


def echoMain(reactor: Any, spec: str) -> defer.Deferred[None]:
    """The child of --real: echo every packet from node 0 back."""
    from ctdb.transports.ib.binding import loadVerbs
    from ctdb.transports.ib.transport import IBNodeTransport

    mine, theirs = spec.split(",")
    listener = _Listener()
    t = IBNodeTransport(
        reactor=reactor, address=mine, verbs=loadVerbs(), listener=listener, port=PORT
    )
    t.start()
    t.connectNode(0, theirs)
    _echo(t, listener)
    return defer.Deferred()  # until SIGTERM


def main(reactor: Any) -> defer.Deferred[Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--tcp", action="store_true", help="also measure TCP")
    parser.add_argument("--real", metavar="A,B", help="addresses on an RDMA device")
    parser.add_argument("--echo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo:
        return echoMain(reactor, args.echo)

    @defer.inlineCallbacks
    def run() -> Any:
        if args.real:
            yield runReal(reactor, args)
        else:
            yield runFake(reactor, args)
        if args.tcp:
            yield runTCP(reactor, args)

    return run()


if __name__ == "__main__":
    task.react(main)
