"""
Shared pieces of the hand-run benchmarks in bench/: a lean blocking client
for the ctdbd unix socket (no Twisted, so that client overhead stays small
and identical for every daemon measured), cluster start-up helpers and
statistics.

The client builds its packets with L{ctdb.protocols.packet} once and then
only patches the reqid in place; replies are cut by their length prefix
and only reqid and status are unpacked (the first reply of each kind is
decoded in full with L{ctdb.protocols.packet.decodePacket} as a check).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

# The harness of Samba's real ctdbd is test support, not part of the
# installed package: import it from this source tree (bench/..).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ctdb.cluster import LocalCluster
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from tests.support.realctdbd import RealCtdbdCluster

_LEN = struct.Struct("<I")
_REQID_OFFSET = 28  # length magic version generation operation destnode srcnode reqid
_REPLY = struct.Struct("<28xIi")  # reqid, then REPLY_CONTROL status


class RawClient:
    """A blocking client of one ctdbd unix socket, for measuring round trips."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self._buf = bytearray()
        self._reqid = 0
        reply = self.control(Control.GET_PNN, check=True)
        self.pnn = reply.status

    def close(self) -> None:
        self.sock.close()

    def template(
        self, opcode: int, destnode: int = P.CTDB_CURRENT_NODE, data: bytes = b""
    ) -> bytearray:
        """An encoded REQ_CONTROL whose reqid can be patched with L{stamp}."""
        req = P.ReqControl(
            P.Header(P.Operation.REQ_CONTROL, destnode, P.CTDB_UNKNOWN_PNN, 0),
            opcode,
            0,
            0,
            0,
            data,
        )
        return bytearray(req.encode())

    def stamp(self, template: bytearray) -> int:
        self._reqid = (self._reqid + 1) & 0xFFFFFFFF
        struct.pack_into("<I", template, _REQID_OFFSET, self._reqid)
        return self._reqid

    def _packets(self) -> Iterator[bytes]:
        """Whole packets now in the buffer (after one recv)."""
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("ctdbd closed the connection")
        buf = self._buf
        buf += chunk
        off = 0
        n = len(buf)
        while n - off >= 4:
            (length,) = _LEN.unpack_from(buf, off)
            if n - off < length:
                break
            yield bytes(buf[off : off + length])
            off += length
        del buf[:off]

    def control(
        self,
        opcode: int,
        destnode: int = P.CTDB_CURRENT_NODE,
        data: bytes = b"",
        check: bool = False,
    ) -> P.ReplyControl:
        """One control, fully decoded (for set-up and checks, not timing)."""
        t = self.template(opcode, destnode, data)
        reqid = self.stamp(t)
        self.sock.sendall(t)
        while True:
            for pkt in self._packets():
                reply = P.decodePacket(pkt)
                if isinstance(reply, P.ReplyControl) and reply.header.reqid == reqid:
                    return reply

    def roundTrips(self, template: bytearray, count: int) -> list[int]:
        """C{count} sequential round trips; each one's duration in ns."""
        out = []
        sock = self.sock
        clock = time.perf_counter_ns
        for _ in range(count):
            reqid = self.stamp(template)
            t0 = clock()
            sock.sendall(template)
            done = False
            while not done:
                for pkt in self._packets():
                    rid, status = _REPLY.unpack_from(pkt)
                    if rid == reqid:
                        if status < 0:
                            raise RuntimeError(f"control failed: status {status}")
                        done = True
            out.append(clock() - t0)
        return out

    def pipelined(self, template: bytearray, inflight: int, seconds: float) -> float:
        """Keep C{inflight} requests outstanding for C{seconds}; replies/s."""
        sock = self.sock

        def burst(n: int) -> bytes:
            parts = []
            for _ in range(n):
                self.stamp(template)
                parts.append(bytes(template))
            return b"".join(parts)

        sock.sendall(burst(inflight))
        outstanding = inflight
        done = 0
        t0 = time.perf_counter()
        deadline = t0 + seconds
        while True:
            got = 0
            for pkt in self._packets():
                _, status = _REPLY.unpack_from(pkt)
                if status < 0:
                    raise RuntimeError(f"control failed: status {status}")
                got += 1
            done += got
            outstanding -= got
            if time.perf_counter() >= deadline:
                break
            sock.sendall(burst(got))
            outstanding += got
        elapsed = time.perf_counter() - t0
        while outstanding > 0:  # drain, so the socket is clean afterwards
            for _ in self._packets():
                outstanding -= 1
        return done / elapsed


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def summary(ns: list[int]) -> tuple[float, float]:
    """(median, p90) in microseconds."""
    return statistics.median(ns) / 1000.0, percentile(ns, 0.9) / 1000.0


def randomBase(low: int, high: int) -> str:
    return f"127.{random.randint(low, high)}.{random.randint(0, 255)}.1"


@contextlib.contextmanager
def ourCluster(nodes: int = 3) -> Iterator[LocalCluster]:
    """Our daemons, started on a random 127.[100-250].Y.1 range; always stopped."""
    d = tempfile.mkdtemp(prefix="txctdb-bench-ours-", dir="/tmp")
    cluster = LocalCluster(d)
    try:
        cluster.setup(nodes, base=randomBase(100, 250))
        cluster.start(timeout=60)
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def realCluster(nodes: int = 3) -> Iterator[RealCtdbdCluster]:
    """Samba's ctdbd, started on a random 127.[20-99].Y.1 range; always stopped."""
    d = tempfile.mkdtemp(prefix="txctdb-bench-real-", dir="/tmp")
    cluster = RealCtdbdCluster(d, base=randomBase(20, 99), nodes=nodes)
    try:
        cluster.setup()
        cluster.start(timeout=60)
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} CPUs"


def commit() -> str:
    """The source tree's commit (with ``+`` when it has local changes)."""
    here = os.path.dirname(os.path.abspath(__file__))

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=False, cwd=here
        )
        return result.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    return head + ("+" if git("status", "--porcelain", "--untracked-files=no") else "")


def runInfo(title: str) -> list[str]:
    """The header lines every benchmark prints: what, when, where, on what."""
    now = datetime.datetime.now().isoformat(timespec="seconds")
    return [
        f"{title}, {now}, commit {commit()}",
        (
            f"machine: {machine()}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, load average "
            + " ".join(f"{x:.2f}" for x in os.getloadavg())
        ),
    ]


def cpuSplit(pids: list[int | None]) -> tuple[float, float]:
    """User and system CPU time of these processes, their reaped children
    and their living children (/proc), in seconds: the daemons' whole cost,
    including ctdbd's helper processes, split into their own code (user)
    and the kernel's work for them (system)."""
    tick = os.sysconf("SC_CLK_TCK")
    wanted = {pid for pid in pids if pid}
    user = system = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state; ppid is fields[1]; utime, stime, cutime,
        # cstime are 11..14
        pid, ppid = int(entry), int(fields[1])
        if pid in wanted:
            user += int(fields[11]) + int(fields[13])
            system += int(fields[12]) + int(fields[14])
        elif ppid in wanted:
            user += int(fields[11])
            system += int(fields[12])
    return user / tick, system / tick
