# -*- test-case-name: tests.test_layout -*-
"""
The floor of a hop in CPython: what a packet costs a Python process that
does nothing with it but pass it on (issue 14).

N processes (3, as our benchmark clusters) are linked in a ring over TCP on
loopback, as the nodes of a cluster are; one packet of 96 bytes (about a
REQ_CALL of a short key) goes round and round, so every hop is one process
waking for one packet and sending it on to the next, as in the fetch ring
of bench_db.py.  Each process:

- C{twisted}: a Twisted reactor (epoll) and a Protocol whose dataReceived
  sends the packet on with one C{send()} (as our daemon's PacketWriter);
- C{bare}: a plain C{select.epoll} loop, C{recv()} and C{send()}: no
  Twisted at all, the least a Python process can do per hop;
- C{txctdb}: as C{twisted}, on the reactor our daemons run on
  (L{ctdb.transports.reactor}).

Printed: hops per second, and the CPU (user and system, from /proc) that
the ring's processes spent per hop.

Then the same question for the client socket: a bare Python server of
REQ_CONTROLs (an epoll loop that cuts each request out of the read with
one C{struct} and answers it with one C{struct}, status 0, no data: no
Twisted, no packet objects, no dispatch) measured with bench_ping.py's
client, C{--count} PINGs one at a time and C{--inflight} in flight.  Our daemon's own cost per hop is the
floor plus its protocol work; compare with bench_db.py's fetch ring, where
a record migration is about 4 hops (bench/README.md).

    .venv/bin/python bench/bench_floor.py [--seconds 3] [--nodes 3]

Harness code only: not shipped, not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from _common import RawClient, cpuSplit, randomBase, runInfo, summary

from ctdb.protocols.controls import Control
from ctdb.protocols.packet import Operation

PACKET = bytes(96)
KINDS = ("bare", "twisted", "txctdb")


def _listen(address: str, port: int) -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, port))
    server.listen(1)
    return server


def _connect(address: str, port: int) -> socket.socket:
    deadline = time.monotonic() + 10
    while True:
        try:
            sock = socket.create_connection((address, port))
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def node(kind: str, me: int, addresses: list[str], port: int) -> None:
    """One process of the ring: count the packets passed on until SIGTERM,
    then print the count."""
    server = _listen(addresses[me], port)
    out = _connect(addresses[(me + 1) % len(addresses)], port)
    inp, _ = server.accept()
    out.setblocking(False)
    print("ready", flush=True)
    count = 0
    stop = False

    def onTerm(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, onTerm)
    if me == 0:
        sys.stdin.readline()  # "go"
        out.send(PACKET)
    if kind == "bare":
        inp.setblocking(False)
        poller = select.epoll()
        poller.register(inp.fileno(), select.EPOLLIN)
        size = len(PACKET)
        while not stop:
            try:
                events = poller.poll(1.0)
            except InterruptedError:
                continue
            if events:
                data = inp.recv(65536)
                if not data:
                    break
                count += len(data) // size
                out.send(data)
    else:
        if kind == "txctdb":
            from ctdb.transports.reactor import install

            install()
        from twisted.internet import reactor
        from twisted.internet.protocol import Protocol

        class Forward(Protocol):
            def dataReceived(self, data: bytes) -> None:
                nonlocal count
                count += len(data) // len(PACKET)
                out.send(data)

        protocol = Forward()
        reactor.adoptStreamConnection(  # type: ignore[attr-defined]
            inp.fileno(), socket.AF_INET, _Factory(protocol)
        )
        inp.close()
        signal.signal(
            signal.SIGTERM,
            lambda *_: reactor.callFromThread(reactor.stop),  # type: ignore[attr-defined]
        )
        reactor.run(installSignalHandlers=False)  # type: ignore[call-arg]
    print(count, flush=True)


#: the header the server reads of each request; a REQ_CONTROL is at least
#: this long (header, opcode, padding, srvid, client id, flags, data
#: length); REPLY_CONTROL with no data and no error message, padded to 8
_HEADER = struct.Struct("<8I")
_REQUEST = struct.Struct("<8IIIQIII")
_REPLY = struct.Struct("<8IiII4x")
_REPLY_CONTROL = int(Operation.REPLY_CONTROL)


def controlServer(path: str) -> None:
    """Answer every REQ_CONTROL of one client on C{path} with status 0."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    print("ready", flush=True)
    conn, _ = server.accept()
    poller = select.epoll()
    poller.register(conn.fileno(), select.EPOLLIN)
    pending = b""
    unpack = _HEADER.unpack_from
    pack = _REPLY.pack
    while True:
        poller.poll()
        data = conn.recv(1 << 20)
        if not data:
            return
        buf = pending + data if pending else data
        replies = []
        offset = 0
        end = len(buf)
        while end - offset >= _REQUEST.size:
            length, magic, version, generation, _, _, src, reqid = unpack(buf, offset)
            if end - offset < length:
                break
            offset += length
            replies.append(
                pack(
                    _REPLY.size,
                    magic,
                    version,
                    generation,
                    _REPLY_CONTROL,
                    src,
                    0,
                    reqid,
                    0,
                    0,
                    0,
                )
            )
        pending = buf[offset:]
        conn.sendall(b"".join(replies))


def controls(count: int, inflight: int, seconds: float) -> tuple[float, float]:
    """The bare control server measured: (round trip median us, PINGs/s
    with C{inflight} in flight)."""
    directory = tempfile.mkdtemp(prefix="txctdb-floor-")
    path = os.path.join(directory, "bare.socket")
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--server", path],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the bare control server did not start")
        client = RawClient(path)
        try:
            template = client.template(Control.PING)
            client.roundTrips(template, 200)
            median, _ = summary(client.roundTrips(template, count))
            rate = client.pipelined(template, inflight, seconds)
        finally:
            client.close()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(directory, ignore_errors=True)
    return median, rate


class _Factory:
    """The least of a factory that adoptStreamConnection needs."""

    def __init__(self, protocol: object) -> None:
        self.protocol = protocol

    def buildProtocol(self, addr: object) -> object:
        return self.protocol

    def doStart(self) -> None:
        pass

    def doStop(self) -> None:
        pass


def ring(kind: str, nodes: int, seconds: float) -> tuple[float, float, float]:
    """One ring of C{nodes} processes for C{seconds}: (hops/s, user and
    system CPU microseconds per hop)."""
    base = randomBase(100, 250)
    addresses = [base.rsplit(".", 1)[0] + f".{i + 1}" for i in range(nodes)]
    port = 4390
    procs = []
    try:
        for me in range(nodes):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        os.path.abspath(__file__),
                        "--node",
                        kind,
                        str(me),
                        ",".join(addresses),
                        str(port),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{kind} ring: a node did not start")
        pids: list[int | None] = [p.pid for p in procs]
        assert procs[0].stdin is not None
        procs[0].stdin.write("go\n")
        procs[0].stdin.flush()
        time.sleep(0.5)  # warm up
        user0, system0 = cpuSplit(pids)
        counts0 = time.perf_counter()
        time.sleep(seconds)
        user1, system1 = cpuSplit(pids)
        elapsed = time.perf_counter() - counts0
        for p in procs:
            p.send_signal(signal.SIGTERM)
        hops = 0
        for p in procs:
            out, _ = p.communicate(timeout=10)
            hops += int(out.split()[-1])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    # the counts cover the warm-up too: scale them to the measured time
    total = elapsed + 0.5
    rate = hops / total
    return (
        rate,
        (user1 - user0) * 1e6 / (rate * elapsed),
        (system1 - system0) * 1e6 / (rate * elapsed),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--node", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.server:
        controlServer(args.server)
        return
    if args.node:
        kind, me, addresses, port = args.node
        node(kind, int(me), addresses.split(","), int(port))
        return
    for line in runInfo("Floor of a hop in CPython"):
        print(line)
    print(f"{'ring':<10}{'hops/s':>10}{'user us/hop':>14}{'system us/hop':>16}")
    for kind in KINDS:
        rate, user, system = ring(kind, args.nodes, args.seconds)
        print(f"{kind:<10}{rate:>10,.0f}{user:>14.1f}{system:>16.1f}")
    median, rate = controls(args.count, args.inflight, args.seconds)
    print(
        f"bare control server: rtt median {median:.1f}us, "
        f"{rate:,.0f}/s with {args.inflight} in flight"
    )


if __name__ == "__main__":
    main()
