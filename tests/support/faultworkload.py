# -*- test-case-name: tests.integration.test_nemesis -*-
"""
The workload that runs while the nemesis (L{tests.support.nemesis})
injects faults: one worker process per node, in that node's network
namespace, talking to its node over the node's unix socket (the file
system is shared by the namespaces).

Each worker runs two loops side by side (on L{ctdb.client}):

  - the counter loop of the 127.x failure tests
    (L{tests.integration.test_failures}, reused as it is): in one
    persistent transaction the shared counter C{shared}, its own counter
    C{c/<k>} and its operation number C{op/<k>}; then, under a fetch-lock,
    its own volatile counter C{v/<k>}, whose value must be exactly the one
    it last wrote unless its node died;
  - a side loop: a message to the worker of the next node (C{"<k> <seq>"}
    to its srvid, L{srvidOf}), and a volatile record C{d/<k>/<n>} written
    through its own node and deleted through the next node's socket (so
    that a stale copy stays behind on its own node); deleted records are
    read back later and must stay deleted.

Progress is written to small files as it is made (L{Workload.progress},
L{Workload.sideProgress}); problems are printed to the worker's log as
C{<time> worker <k>: <problem>} (the counter loop's own) and C{<time> side
<k>: <problem>}; each process writes its results as JSON when told to stop.

    workload = Workload(cluster, directory)
    workload.start()
    ...
    results = workload.stop()     # {pnn: {"acked": ..., "side": {...}}}
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, cast

from tests.integration.test_failures import PDB, VDB
from tests.support.netnscluster import ROOT, SERVICE_PORT

#: the volatile database of the records deleted by the side loop
DDB = "fault_deleted.tdb"
#: how many of its latest deletions a side loop reads back each round
READBACK = 8
#: seconds between two rounds of a side loop
SIDE_INTERVAL = 0.2

_PROBLEM = re.compile(r"^[0-9.]+ (worker|side) (\d+): (.*)$")


def srvidOf(pnn: int) -> int:
    """The srvid the worker of node C{pnn} receives messages on."""
    from ctdb.protocols.srvids import CTDB_SRVID_TEST_RANGE

    return CTDB_SRVID_TEST_RANGE | 0x4E454D00 | pnn


def _int(value: bytes | None) -> int:
    return int(value or b"0")


def _write(path: str, data: object) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)


async def _sideRun(
    reactor: Any,
    sockets: Sequence[str],
    me: int,
    stopFile: str,
    progressFile: str,
    deadline: float,
) -> dict[str, object]:
    """The side loop of worker C{me} (see the module's docstring)."""
    from twisted.internet import task

    from ctdb.client import connect

    nodes = len(sockets)
    peer = (me + 1) % nodes
    received: dict[int, set[int]] = {}
    duplicates: list[str] = []
    problems: list[str] = []
    sent = 0
    deleted: list[tuple[str, float]] = []
    created = 0
    own = other = None
    ownDb = otherDb = None
    readAt = 0
    resurrected: set[str] = set()

    def say(text: str) -> None:
        problems.append(text)
        print(f"{time.time():.3f} side {me}: {text}", flush=True)

    def onMessage(srvid: int, data: bytes) -> None:
        try:
            sender, seq = (int(w) for w in data.split())
        except ValueError:
            say(f"a message nobody sent: {data!r}")
            return
        seen = received.setdefault(sender, set())
        if seq in seen:
            duplicates.append(f"{sender}:{seq}")
            say(f"message {sender}:{seq} delivered twice")
        seen.add(seq)

    async def closeAll() -> None:
        nonlocal own, other, ownDb, otherDb
        for c in (own, other):
            if c is not None:
                with contextlib.suppress(Exception):
                    await c.close()
        own = other = None
        ownDb = otherDb = None

    while time.monotonic() < deadline and not os.path.exists(stopFile):
        try:
            if own is None:
                own = await connect(reactor, sockets[me], timeout=20)
                own.lockTimeout = 20
                await own.registerSrvid(srvidOf(me), onMessage)
                ownDb = await own.attach(DDB)
            if other is None:
                other = await connect(reactor, sockets[peer], timeout=20)
                other.lockTimeout = 20
                otherDb = await other.attach(DDB)
            assert ownDb is not None and otherDb is not None
            own.sendMessage(peer, srvidOf(peer), b"%d %d" % (me, sent))
            sent += 1
            key = f"d/{me}/{created}"
            created += 1
            async with ownDb.fetchLock(key.encode()) as record:
                record.store(b"alive %d" % created)
            await otherDb.delete(key.encode())
            deleted.append((key, time.time()))
            # read some of the deleted records back, in turn, through our node
            for _ in range(min(READBACK, len(deleted))):
                readAt = (readAt + 1) % len(deleted)
                back, when = deleted[readAt]
                value = await ownDb.fetch(back.encode())
                if value and back not in resurrected:
                    resurrected.add(back)
                    say(
                        f"deleted record {back} (deleted at {when:.3f}) "
                        f"came back as {value!r}"
                    )
        except Exception as e:  # noqa: BLE001 - a node down: reconnect
            print(f"{time.time():.3f} side {me}: lost: {type(e).__name__}: {e}")
            await closeAll()
            await task.deferLater(reactor, 0.5, lambda: None)
            continue
        _write(
            progressFile,
            {
                "sent": sent,
                "received": sum(len(s) for s in received.values()),
                "deleted": len(deleted),
                "problems": len(problems),
            },
        )
        await task.deferLater(reactor, SIDE_INTERVAL, lambda: None)
    await closeAll()
    return {
        "sent": sent,
        "received": {str(k): sorted(v) for k, v in received.items()},
        "duplicates": duplicates,
        "deleted": len(deleted),
        "problems": problems,
    }


def workerMain(argv: Sequence[str]) -> None:
    """C{workerMain([PNN, STOPFILE, OUTFILE, SECONDS, SOCKET0, SOCKET1, ...])}:
    the counter loop and the side loop of node C{PNN}'s worker."""
    from twisted.internet import defer, task

    from tests.integration.test_failures import _workerRun

    me, stopFile, outFile, seconds, *sockets = argv
    k = int(me)
    deadline = time.monotonic() + float(seconds)

    async def main(reactor: Any) -> None:
        counters, side = await defer.gatherResults(
            [
                defer.ensureDeferred(
                    _workerRun(
                        reactor,
                        sockets[k],
                        k,
                        stopFile,
                        outFile + ".progress",
                        deadline,
                    )
                ),
                defer.ensureDeferred(
                    _sideRun(reactor, sockets, k, stopFile, outFile + ".side", deadline)
                ),
            ]
        )
        result = dict(counters)
        result["side"] = side
        _write(outFile, result)

    task.react(lambda reactor: defer.ensureDeferred(main(reactor)))


#: seconds between two lines on a long-lived connection of the connection
#: client, between a lost connection and the next attempt, and within which
#: a connection attempt must complete
LINE_INTERVAL = 0.5
RECONNECT_DELAY = 0.2
CONNECT_TIMEOUT = 5.0


class _Held:
    """One long-lived connection of the connection client (its state
    across reconnections to one address)."""

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self.sock: socket.socket | None = None
        self.connecting = 0.0
        self.generation = 0
        self.buffer = b""
        self.retryAt = 0.0
        self.nextSend = 0.0
        self.seq = 0
        #: sequence number -> when it was sent, for lines not answered yet
        self.pending: dict[int, float] = {}
        #: when the newest answered line was sent (-1: none yet)
        self.answeredSentAt = -1.0
        self.answered = 0
        self.resets = 0
        self.closes = 0
        self.errors = 0
        self.failedConnects = 0
        self.lastEvent = ""
        self.bogus: list[str] = []

    def state(self, now: float) -> dict[str, object]:
        return {
            "generation": self.generation,
            "connected": self.sock is not None and not self.connecting,
            "answered": self.answered,
            "answeredSentAt": self.answeredSentAt,
            "pendingSince": min(self.pending.values(), default=None),
            "pending": len(self.pending),
            "resets": self.resets,
            "closes": self.closes,
            "errors": self.errors,
            "failedConnects": self.failedConnects,
            "lastEvent": self.lastEvent,
            "bogus": self.bogus[-5:],
        }


def connectionsMain(argv: Sequence[str]) -> None:
    """
    C{connectionsMain([STATEFILE, STOPFILE, SECONDS, PORT, ADDRESS...])}:
    the connection client (in the client namespace).  It holds one TCP
    connection to C{PORT} of every C{ADDRESS} for its whole life, sends a
    line (C{conn <generation> <seq>}) on each every L{LINE_INTERVAL}
    seconds and takes the service's echo of it.  A connection that is
    reset, closed or fails is counted and made again (after
    L{RECONNECT_DELAY}); one that hangs is left hanging (no timeout of
    its own: that is what the check looks for).  Every L{LINE_INTERVAL} it
    writes its state to C{STATEFILE} (JSON: C{now}, C{time.monotonic()},
    and per address L{_Held.state}).  Ends after C{SECONDS}, or when
    C{STOPFILE} exists.
    """
    stateFile, stopFile, seconds, port, *addresses = argv
    started = time.monotonic()
    deadline = started + float(seconds)
    held = [_Held(a, int(port)) for a in addresses]
    sel = selectors.DefaultSelector()
    lastWrite = 0.0

    def lose(h: _Held, event: str, now: float) -> None:
        h.lastEvent = f"{event} at {now:.3f} (generation {h.generation})"
        if h.sock is not None:
            sel.unregister(h.sock)
            h.sock.close()
        h.sock = None
        h.connecting = 0.0
        h.buffer = b""
        h.pending.clear()
        h.retryAt = now + RECONNECT_DELAY

    def failed(h: _Held, code: int, now: float) -> None:
        name = errno.errorcode.get(code, str(code))
        if code == errno.ECONNRESET:
            h.resets += 1
            lose(h, "reset", now)
        elif code == errno.EPIPE:
            h.closes += 1
            lose(h, "EPIPE", now)
        else:
            h.errors += 1
            lose(h, f"error {name}", now)

    while time.monotonic() < deadline and not os.path.exists(stopFile):
        now = time.monotonic()
        for h in held:
            if h.sock is None and now >= h.retryAt:
                family = socket.AF_INET6 if ":" in h.address else socket.AF_INET
                s = socket.socket(family, socket.SOCK_STREAM)
                s.setblocking(False)
                code = s.connect_ex((h.address, h.port))
                h.generation += 1
                if code not in (0, errno.EINPROGRESS):
                    s.close()
                    h.failedConnects += 1
                    h.lastEvent = f"connect failed {errno.errorcode.get(code)}"
                    h.retryAt = now + RECONNECT_DELAY
                    continue
                h.sock, h.connecting = s, now
                sel.register(s, selectors.EVENT_WRITE, h)
            elif h.sock is not None and h.connecting:
                if now - h.connecting > CONNECT_TIMEOUT:
                    h.failedConnects += 1
                    lose(h, "connect timed out", now)
                    h.lastEvent = f"connect timed out at {now:.3f}"
            elif h.sock is not None and now >= h.nextSend:
                h.seq += 1
                try:
                    h.sock.send(b"conn %d %d\n" % (h.generation, h.seq))
                except BlockingIOError:
                    pass  # the send buffer is full: this line is skipped
                except OSError as e:
                    failed(h, e.errno or 0, now)
                    continue
                else:
                    h.pending[h.seq] = now
                h.nextSend = now + LINE_INTERVAL
        for key, _ in sel.select(0.05):
            h = cast(_Held, key.data)
            s = cast(socket.socket, key.fileobj)
            now = time.monotonic()
            if h.connecting:
                code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code != 0:
                    h.failedConnects += 1
                    lose(h, f"connect failed {errno.errorcode.get(code)}", now)
                    continue
                h.connecting = 0.0
                h.nextSend = now
                h.lastEvent = f"connected at {now:.3f} (generation {h.generation})"
                sel.modify(s, selectors.EVENT_READ, h)
                continue
            try:
                data = s.recv(65536)
            except OSError as e:
                failed(h, e.errno or 0, now)
                continue
            if not data:
                h.closes += 1
                lose(h, "closed", now)
                continue
            h.buffer += data
            while b"\n" in h.buffer:
                line, h.buffer = h.buffer.split(b"\n", 1)
                words = line.split()
                try:
                    generation, seq = int(words[2]), int(words[3])
                    if words[:2] != [b"echo", b"conn"]:
                        raise ValueError
                except (IndexError, ValueError):
                    h.bogus.append(line.decode(errors="replace"))
                    continue
                if generation != h.generation or seq not in h.pending:
                    h.bogus.append(line.decode(errors="replace"))
                    continue
                h.answeredSentAt = h.pending[seq]
                h.answered += 1
                for old in [q for q in h.pending if q <= seq]:
                    del h.pending[old]
        if now - lastWrite >= LINE_INTERVAL:
            lastWrite = now
            _write(
                stateFile,
                {"now": now, "addresses": {h.address: h.state(now) for h in held}},
            )
    for h in held:
        if h.sock is not None:
            h.sock.close()


class Workload:
    """
    The workers of one cluster (a L{NetnsCluster} or L{NetnsCtdbdCluster}),
    one per node in the node's namespace, writing their files into
    C{directory}; C{seconds} bounds their life.
    """

    def __init__(self, cluster: Any, directory: str, seconds: float = 3600.0) -> None:
        self.cluster = cluster
        self.directory = directory
        self.seconds = seconds
        self.stopFile = os.path.join(directory, "stop")
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self._logOffsets: dict[int, int] = {}
        #: the connection client (L{connectionsMain}) in the client namespace
        self.connections: subprocess.Popen[bytes] | None = None
        self.connectionsFile = os.path.join(directory, "connections.json")

    def output(self, pnn: int) -> str:
        return os.path.join(self.directory, f"worker{pnn}.json")

    def logPath(self, pnn: int) -> str:
        return os.path.join(self.directory, f"worker{pnn}.log")

    def prepare(self) -> None:
        """Attach the workload's databases (through node 0, with Samba's tool)."""
        for args in (("attach", PDB, "persistent"), ("attach", VDB), ("attach", DDB)):
            done = self.cluster.tool(0, *args)
            if done.returncode != 0:
                raise RuntimeError(f"ctdb {' '.join(args)}: {done.stdout}{done.stderr}")

    def start(self) -> None:
        """Attach the databases and start one worker per node."""
        self.prepare()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.stopFile)
        sockets = [self.cluster.socketPath(k) for k in range(self.cluster.size)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CTDB_")}
        env["PYTHONPATH"] = ROOT
        source = (
            "import sys; from tests.support.faultworkload import workerMain; "
            "workerMain(sys.argv[1:])"
        )
        for k in range(self.cluster.size):
            with open(self.logPath(k), "ab") as log:
                self.processes[k] = self.cluster.lab.spawn(
                    self.cluster.namespace(k),
                    [
                        sys.executable,
                        "-c",
                        source,
                        str(k),
                        self.stopFile,
                        self.output(k),
                        str(self.seconds),
                        *sockets,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=ROOT,
                )
        self.startConnections(source.replace("workerMain", "connectionsMain"), env)

    def startConnections(self, source: str, env: dict[str, str]) -> None:
        """Start the connection client in the client namespace, holding a
        connection to the service on every public address."""
        network = self.cluster.network
        with open(os.path.join(self.directory, "connections.log"), "ab") as log:
            self.connections = self.cluster.lab.spawn(
                network.client,
                [
                    sys.executable,
                    "-c",
                    source,
                    self.connectionsFile,
                    self.stopFile,
                    str(self.seconds),
                    str(SERVICE_PORT),
                    *network.publicAddresses,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )

    def connectionState(self) -> dict[str, Any]:
        """The connection client's last state (L{connectionsMain}): C{now}
        and, per address, its long-lived connection's state; C{{}} before
        the first write.  C{running}: whether the client still runs."""
        try:
            with open(self.connectionsFile) as f:
                state: dict[str, Any] = json.load(f)
        except (FileNotFoundError, ValueError):
            state = {}
        state["running"] = (
            self.connections is not None and self.connections.poll() is None
        )
        return state

    def progress(self) -> dict[int, int]:
        """Each worker's acknowledged persistent increments so far."""
        counts = {}
        for k in self.processes:
            try:
                with open(self.output(k) + ".progress") as f:
                    counts[k] = _int(f.read().strip().encode() or None)
            except FileNotFoundError:
                counts[k] = 0
        return counts

    def sideProgress(self) -> dict[int, dict[str, int]]:
        """Each side loop's counts so far (sent, received, deleted)."""
        out = {}
        for k in self.processes:
            try:
                with open(self.output(k) + ".side") as f:
                    out[k] = json.load(f)
            except (FileNotFoundError, ValueError):
                out[k] = {"sent": 0, "received": 0, "deleted": 0, "problems": 0}
        return out

    def newProblems(self) -> list[tuple[str, int, str]]:
        """The problems the workers printed since the last call: (loop,
        node, text), C{loop} being C{worker} (a persistent counter C{c/<k>}
        that lost an acknowledged increment, a volatile C{v/<k>} that is not
        what was last written) or C{side} (a deleted record back, a message
        twice); connection losses, retries and notes are not problems."""
        found = []
        for k in self.processes:
            try:
                with open(self.logPath(k), "rb") as f:
                    f.seek(self._logOffsets.get(k, 0))
                    data = f.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1
            self._logOffsets[k] = self._logOffsets.get(k, 0) + end
            for line in data[:end].decode(errors="replace").splitlines():
                m = _PROBLEM.match(line)
                if m is None:
                    continue
                text = m.group(3)
                if m.group(1) == "worker" and not text.startswith(("c/", "v/")):
                    continue  # retries, reconnections, g_lock notes
                if m.group(1) == "side" and text.startswith("lost:"):
                    continue
                found.append((m.group(1), int(m.group(2)), text))
        return found

    def running(self) -> list[int]:
        return [k for k, p in self.processes.items() if p.poll() is None]

    def stop(self, timeout: float = 120.0) -> dict[int, dict[str, Any]]:
        """Tell the workers to stop, wait for them (killing those that
        outlive C{timeout}), and return their results."""
        with open(self.stopFile, "w"):
            pass
        deadline = time.monotonic() + timeout
        processes = list(self.processes.values())
        if self.connections is not None:
            processes.append(self.connections)
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
                process.wait(10)
        results: dict[int, dict[str, Any]] = {}
        for k in self.processes:
            try:
                with open(self.output(k)) as f:
                    results[k] = json.load(f)
            except (FileNotFoundError, ValueError):
                results[k] = {}
        return results

    def tail(self, pnn: int, lines: int = 20) -> str:
        try:
            with open(self.logPath(pnn), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except FileNotFoundError:
            return ""


__all__ = [
    "DDB",
    "PDB",
    "VDB",
    "Workload",
    "connectionsMain",
    "srvidOf",
    "workerMain",
]
