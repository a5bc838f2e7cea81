# -*- test-case-name: tests.integration.test_nemesis -*-
"""
The invariants a cluster must keep under the nemesis
(L{tests.support.nemesis}) while the workload
(L{tests.support.faultworkload}) runs, each a named check whose every run
is counted in an L{InvariantTable}, and the run that ties them together
(L{FaultRun}).

The checks (L{CHECKS}), after every fault heals and at the end:

  - C{persistent-acked}: every worker's persistent counter C{c/<k>}, read
    on every node, is at least the increments acknowledged to the worker
    before the read (and at the end exactly those, on every node);
  - C{shared-counter}: the shared counter is at least the acknowledged
    increments of all workers (at the end: exactly them);
  - C{volatile-monotonic}: a worker's volatile counter held by its node
    was exactly what it last wrote, unless its node died (the worker reads
    and checks it under the fetch-lock; after its node's death it may be
    older, never newer);
  - C{deleted-stay-deleted}: records deleted by the workload stay deleted;
  - C{messages}: a message is delivered at most once, and only messages
    that were sent; messages flow again after the fault heals;
  - C{converged}: within L{CONVERGE_BOUND} seconds of the heal every node
    is running and NORMAL, with one generation, one vnn map, one leader,
    the same node map (every node OK) in every node's view;
  - C{public-ip-once}: within the same bound, every public address is on
    the public interface of exactly one node, the one every node names;
  - C{public-ip-reachable}: within the same bound, a new TCP connection
    from the client namespace to every public address reaches the service
    of the node hosting it (a line sent is echoed);
  - C{public-ip-never-two}: no public address is on two nodes at once,
    sampled throughout each fault (L{NetnsNetwork.overlaps}), also during
    partitions (the cluster lock makes the minority give its addresses up);
  - C{public-ip-connections}: within the same bound, the connection
    client's long-lived connection to every public address
    (L{tests.support.faultworkload.connectionsMain}) answers a line sent
    after the check began: the connection kept working, or it was reset
    (a tickle, or the new host's RST) and the one made again answers; a
    connection that hangs without a reset is a violation;
  - C{no-traceback}: no daemon logged a Python traceback (ours) or a panic
    (ctdbd), and none died unless the nemesis killed it.

A violation records what was seen and the fault it followed; the table
prints, per check, its runs and violations.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ctdb.cluster import syncControl
from ctdb.protocols import controls as C
from tests.support.faultworkload import PDB, Workload
from tests.support.nemesis import Fault, Nemesis
from tests.support.netnscluster import NetnsClient, NetnsClusterError

#: seconds within which the cluster must be whole again after a heal
#: (a killed node restarted and rejoined, a banned one unbanned, ...)
CONVERGE_BOUND = 45.0
#: seconds between two samples of the public addresses during a fault
SAMPLE_INTERVAL = 0.5

PERSISTENT_ACKED = "persistent-acked"
SHARED_COUNTER = "shared-counter"
VOLATILE_MONOTONIC = "volatile-monotonic"
DELETED_STAY_DELETED = "deleted-stay-deleted"
MESSAGES = "messages"
CONVERGED = "converged"
PUBLIC_IP_ONCE = "public-ip-once"
PUBLIC_IP_REACHABLE = "public-ip-reachable"
PUBLIC_IP_NEVER_TWO = "public-ip-never-two"
PUBLIC_IP_CONNECTIONS = "public-ip-connections"
NO_TRACEBACK = "no-traceback"
NO_FALSE_SUSPICION = "no-false-suspicion"

#: the faults that can silence a node for its peers (they then rightly
#: declare it dead): a dead machine, a stopped process, a cut or lossy
#: link, and this machine's "delay" (a token bucket whose queue holds up
#: to 2 s); the others (duplicate, stop, ban, disable) never should
SILENCING = frozenset(
    {"kill", "pause", "isolate", "split", "oneway", "bridge", "loss", "delay"}
)

CHECKS = (
    PERSISTENT_ACKED,
    SHARED_COUNTER,
    VOLATILE_MONOTONIC,
    DELETED_STAY_DELETED,
    MESSAGES,
    CONVERGED,
    PUBLIC_IP_ONCE,
    PUBLIC_IP_REACHABLE,
    PUBLIC_IP_NEVER_TWO,
    PUBLIC_IP_CONNECTIONS,
    NO_TRACEBACK,
    NO_FALSE_SUSPICION,
)

_DELETED_AT = re.compile(r"deleted at ([0-9.]+)")
_WRITTEN_AT = re.compile(r"written at ([0-9.]+)")
#: the counter loop's report of a persistent counter short of its acks
#: one record of Samba's C{ctdb catdb}: its key and data lines
_CATDB_RECORD = re.compile(
    r'^key\(\d+\) = "(.*)"\n(?:.*\n)*?data\(\d+\) = "(.*)"$', re.MULTILINE
)
_CATDB_ESCAPE = re.compile(r"\\([0-9A-F]{2})")


def catdbBytes(text: str) -> bytes:
    """A key or value as Samba's C{ctdb catdb} prints it (a byte that is
    not printable as C{\\XX}, hex) back to bytes."""
    out = bytearray()
    pos = 0
    for m in _CATDB_ESCAPE.finditer(text):
        out += text[pos : m.start()].encode("latin-1")
        out.append(int(m.group(1), 16))
        pos = m.end()
    out += text[pos:].encode("latin-1")
    return bytes(out)


def holderNames(data: bytes, shown: str | None = None) -> list[str]:
    """The holders in one g_lock record's data, each as C{"<W|R> pid <pid>
    node <vnn>"}; C{["undecodable <shown>"]} if it does not decode
    (C{shown} defaults to C{repr(data)})."""
    from ctdb.client.glock import G_LOCK_WRITE, GLock

    try:
        locks = GLock.decodeList(data)
    except Exception:  # noqa: BLE001 - a diagnostic, never a failure
        return [f"undecodable {repr(data) if shown is None else shown}"]
    return [
        f"{'W' if lock.type == G_LOCK_WRITE else 'R'} pid {lock.sid.pid} "
        f"node {lock.sid.vnn}"
        for lock in locks
    ]


def gLockHolders(catdb: str) -> dict[str, list[str]]:
    """The holders of every g_lock in C{ctdb catdb g_lock.tdb}'s output:
    lock name -> C{"<W|R> pid <pid> node <vnn>"}."""
    holders = {}
    for m in _CATDB_RECORD.finditer(catdb):
        name = catdbBytes(m.group(1)).rstrip(b"\0").decode(errors="replace")
        holders[name] = holderNames(catdbBytes(m.group(2)), repr(m.group(2)))
    return holders


_SHORT = re.compile(r"c/\d+ is (\d+), (\d+) increments acknowledged")
#: a daemon's log line saying that it lost a node (ours and ctdbd's alike)
_DEAD = re.compile(rb"node (\d+\.\d+\.\d+\.\d+) is dead")
#: a node declared dead for its silence: txctdb's heartbeat, and ctdbd's
#: keepalive (ctdb_check_for_dead_nodes)
_SILENT = re.compile(
    rb"node (\d+) silent for ([0-9.]+) s \(heartbeat|dead count reached for node (\d+)"
)

#: what a daemon's log shows when it crashed on its own
_CRASH = re.compile(
    rb"Traceback \(most recent call last\)|Unhandled error|PANIC|smb_panic|"
    rb"INTERNAL ERROR|Aborting"
)


_PROC_LOCK = re.compile(
    r"^\d+: (-> )?(\S+)\s+\S+\s+(READ|WRITE)\s+(\d+)\s+"
    r"([0-9a-f]+):([0-9a-f]+):(\d+)\s+(\d+)\s+(\S+)$"
)


def _newLines(path: str, offsets: dict[Any, int], key: object) -> bytes:
    """The whole lines written to C{path} since C{offsets[key]} (moved
    past them); nothing if the file is not there."""
    offset = offsets.get(key, 0)
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return b""
    end = data.rfind(b"\n") + 1
    offsets[key] = offset + end
    return data[:end]


def _processName(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().split(b"\0")
    except OSError:
        return "?"
    names = [os.path.basename(w.decode(errors="replace")) for w in words if w]
    # "python -u worker.py ..." says less than its script's name
    return " ".join(names[:3])


def fileLocks(paths: Sequence[str], procLocks: str | None = None) -> list[str]:
    """
    The fcntl locks that processes hold on, or wait for, the files
    C{paths} (from C{/proc/locks}, which every network namespace shares):
    C{"<file> WRITE 4-4 held by pid 12 (twistd ...)"}, C{"... waited for
    by ..."}.  What says who blocks a TDB reader.
    """
    inodes: dict[int, str] = {}
    for path in paths:
        try:
            inodes[os.stat(path).st_ino] = os.path.basename(path)
        except OSError:
            continue
    if procLocks is None:
        try:
            with open("/proc/locks") as f:
                procLocks = f.read()
        except OSError as e:
            return [f"/proc/locks: {e}"]
    found = []
    for line in procLocks.splitlines():
        m = _PROC_LOCK.match(line.strip())
        if m is None or int(m.group(7)) not in inodes:
            continue
        waiting, _kind, mode, pid = m.group(1), m.group(2), m.group(3), int(m.group(4))
        how = "waited for by" if waiting else "held by"
        found.append(
            f"{inodes[int(m.group(7))]} {mode} {m.group(8)}-{m.group(9)} "
            f"{how} pid {pid} ({_processName(pid)})"
        )
    return found


def localGLocks(paths: dict[int, str]) -> list[str]:
    """
    Each node's own copy of every g_lock record, read straight from the
    node's C{g_lock.tdb} (C{paths}: pnn -> file) without taking any lock:
    C{"node 2: transaction_db_0x... rsn 17 dmaster 2 [W pid 12 node 0]"}.
    What says whether a node that cannot get a lock polls a copy of its
    own that the others no longer use (two nodes that both think they are
    the record's dmaster), which a traverse (L{gLockHolders}) hides.
    """
    from ctdb.database.ltdb import splitValue
    from ctdb.database.tdb import TDB, TDB_NOLOCK

    found = []
    for pnn, path in sorted(paths.items()):
        try:
            with TDB(path, tdbFlags=TDB_NOLOCK, openFlags=os.O_RDONLY) as tdb:
                records = tdb.traverse()
        except Exception as e:  # noqa: BLE001 - a diagnostic, never a failure
            found.append(f"node {pnn}: {type(e).__name__}: {e}")
            continue
        for key, value in sorted(records):
            header, data = splitValue(value)
            name = key.rstrip(b"\0").decode(errors="replace")
            if header is None:
                found.append(f"node {pnn}: {name} (no header)")
                continue
            holders = holderNames(data)
            found.append(
                f"node {pnn}: {name} rsn {header.rsn} dmaster {header.dmaster} "
                f"[{', '.join(holders)}]"
            )
    return found


def connectionProblems(
    state: dict[str, Any],
    addresses: Sequence[str],
    since: float,
    now: float,
    bound: float,
) -> list[str]:
    """
    What keeps C{public-ip-connections} from holding, from the connection
    client's C{state} (L{Workload.connectionState}) at C{now}: every
    address in C{addresses} must have had a line sent at or after C{since}
    (C{time.monotonic()}) answered.  Each problem says how its connection
    stands: hung (a line unanswered for C{bound} seconds or more, no
    reset), or what its last event was.
    """
    if not state.get("running"):
        return ["the connection client is not running"]
    known = state.get("addresses", {})
    written = state.get("now", 0.0)
    problems = []
    for address in addresses:
        c = known.get(address)
        if c is None:
            problems.append(
                f"{address}: no connection state (client written at {written:.3f})"
            )
            continue
        if c["answeredSentAt"] >= since:
            continue
        pending = c.get("pendingSince")
        if c["connected"] and pending is not None and now - pending >= bound:
            how = f"hung: a line sent {now - pending:.1f} s ago unanswered and no reset"
        elif c["connected"]:
            how = "connected, no line answered since the check began"
        else:
            how = "not connected"
        problems.append(
            f"{address}: {how} (generation {c['generation']}, {c['answered']} "
            f"answered, {c['resets']} resets, {c['closes']} closed, "
            f"{c['errors']} errors, {c['failedConnects']} failed connects; last "
            f"event: {c['lastEvent'] or 'none'})"
        )
    return problems


@dataclass
class Violation:
    check: str
    when: str
    detail: str
    #: the kind of the fault it followed ("" at the start and the end)
    kind: str = ""


@dataclass
class InvariantTable:
    """Runs and violations of every named check (L{CHECKS})."""

    daemon: str = ""
    faults: int = 0
    faultsInjected: int = 0
    runs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    violations: list[Violation] = field(default_factory=list)
    #: check -> what it saw that CTDB's design allows (see L{Invariants.left})
    excused: dict[str, int] = field(default_factory=dict)

    def record(
        self, check: str, when: str, problems: Sequence[str], kind: str = ""
    ) -> bool:
        """One run of C{check} (after a fault of C{kind}); each of
        C{problems} a violation.  True if there were none."""
        self.runs[check] = self.runs.get(check, 0) + 1
        for p in problems:
            self.violations.append(Violation(check, when, p, kind))
        return not problems

    def byKind(self) -> dict[str, dict[str, int]]:
        """check -> fault kind -> violations after faults of that kind."""
        out: dict[str, dict[str, int]] = {}
        for v in self.violations:
            kinds = out.setdefault(v.check, {})
            kinds[v.kind or "-"] = kinds.get(v.kind or "-", 0) + 1
        return out

    def violationCount(self, check: str) -> int:
        return sum(1 for v in self.violations if v.check == check)

    def excuse(self, check: str, count: int = 1) -> None:
        self.excused[check] = self.excused.get(check, 0) + count

    def rows(self) -> list[tuple[str, int, int]]:
        return [(c, self.runs.get(c, 0), self.violationCount(c)) for c in self.runs]

    def render(self) -> str:
        lines = [
            (
                f"daemon: {self.daemon}  faults: {self.faults} "
                f"(injected {self.faultsInjected})"
            ),
            f"{'check':<22} {'runs':>6} {'violations':>10} {'excused':>8}",
        ]
        byKind = self.byKind()
        for name, runs, bad in self.rows():
            kinds = ", ".join(
                f"{k} {n}" for k, n in sorted(byKind.get(name, {}).items())
            )
            lines.append(
                f"{name:<22} {runs:>6} {bad:>10} {self.excused.get(name, 0):>8}"
                + (f"   ({kinds})" if kinds else "")
            )
        return "\n".join(lines)

    def asDict(self) -> dict[str, Any]:
        return {
            "daemon": self.daemon,
            "faults": self.faults,
            "faultsInjected": self.faultsInjected,
            "checks": {
                n: {"runs": r, "violations": v, "excused": self.excused.get(n, 0)}
                for n, r, v in self.rows()
            },
            "violations": [v.__dict__ for v in self.violations],
        }


def _int(text: str) -> int:
    text = text.strip()
    return int(text) if text else 0


class Invariants:
    """The checks of one cluster and its workload, recorded in C{table}."""

    def __init__(
        self,
        cluster: Any,
        workload: Workload,
        table: InvariantTable,
        bound: float = CONVERGE_BOUND,
        log: Callable[[str], None] = print,
    ) -> None:
        self.cluster = cluster
        self.network = cluster.network
        self.workload = workload
        self.table = table
        self.bound = bound
        self.log = log
        self._logOffsets: dict[tuple[int, str], int] = {}
        self._sidePrev: dict[int, dict[str, int]] = {}
        #: the kind of the fault being checked ("" outside faults)
        self.kind = ""
        #: the nodes that left the cluster during the fault being checked
        #: (killed, or seen outside the vnn map or flagged inactive by a
        #: node): a volatile record whose node left may fall back to an
        #: older copy, and a deleted record may come back from a stale copy
        #: on a node that left (vacuuming only reaches the active nodes).
        #: CTDB's design (Samba's ctdbd does the same) allows both, so they
        #: are counted as excused, not as violations.
        self.left: set[int] = set()
        #: the client program in the client namespace (made when first used)
        self.client: NetnsClient | None = None
        self._connections = itertools.count(1)
        self._deadOffsets: dict[int, int] = {}
        self._silentOffsets: dict[int, int] = {}
        #: false suspicions found while a fault began, for the next check
        self._suspicions: list[str] = []
        #: the fault that judges the suspicions logged now: the last one
        #: begun, until the next begins ("" before the first)
        self._suspicionKind = ""
        #: worker -> the increments its counter last came up short by
        self._shortfall: dict[int, int] = {}
        #: the wall-clock times at which faults that some node left healed
        self.leftEnds: list[float] = []
        #: node -> the wall-clock time at which its last departure ended
        self.nodeLeftEnds: dict[int, float] = {}
        #: address -> the unexpected answers its connection reported so far
        self._bogus: dict[str, list[str]] = {}
        #: address -> its connection's resets, closes and errors so far
        self._lost: dict[str, int] = {}
        #: which connections were lost since the previous check ("" if none)
        self.connectionNote = ""

    def _record(self, check: str, when: str, problems: Sequence[str]) -> None:
        if not self.table.record(check, when, problems, self.kind):
            for p in problems:
                self.log(f"VIOLATION {check} after {when}: {p}")

    # -- the cluster ------------------------------------------------------------------

    def clusterProblem(self) -> str:
        """Why the cluster is not whole ("" when it is): every node running
        and NORMAL, one generation, vnn map, leader and node map."""
        alive = self.cluster.running()
        if len(alive) != self.cluster.size:
            return f"running: {alive}"
        views = []
        for k in alive:
            path = self.cluster.socketPath(k)
            try:
                mode = syncControl(path, C.Control.GET_RECMODE, timeout=3).status
                vnn = C.VnnMap.decode(
                    syncControl(path, C.Control.GETVNNMAP, timeout=3).data
                )
                nodemap = C.decodeNodeMap(
                    syncControl(path, C.Control.GET_NODEMAP, timeout=3).data
                )
            except (OSError, ValueError) as e:
                return f"node {k}: {e}"
            if mode != C.CTDB_RECOVERY_NORMAL:
                return f"node {k} is in recovery"
            flags = {n.pnn: n.flags for n in nodemap}
            if any(flags.values()):
                return f"node {k} sees flags {flags}"
            views.append((vnn.generation, tuple(sorted(vnn.map)), self.leaderOf(k)))
        if len(set(views)) != 1:
            return f"views differ (generation, vnn map, leader): {views}"
        if views[0][2] not in alive:
            return f"leader {views[0][2]} is not running"
        if views[0][1] != tuple(range(self.cluster.size)):
            return f"vnn map {views[0][1]}"
        return ""

    def leaderOf(self, pnn: int) -> int:
        """The leader node C{pnn} names (Samba's C{ctdb leader}), -1 if none."""
        try:
            done = self.tool(pnn, "leader")
            return int(done.stdout.strip()) if done.returncode == 0 else -1
        except (ValueError, NetnsClusterError):
            return -1

    def waitConverged(self, when: str) -> float | None:
        """Check C{converged}: seconds it took, or None (a violation)."""
        started = time.monotonic()
        problem = "not checked"
        while True:
            try:
                problem = self.clusterProblem()
            except NetnsClusterError as e:
                problem = str(e)
            if not problem:
                self._record(CONVERGED, when, [])
                return time.monotonic() - started
            if time.monotonic() - started > self.bound:
                self._record(
                    CONVERGED, when, [f"not whole within {self.bound:.0f} s: {problem}"]
                )
                return None
            time.sleep(0.1)

    def checkHosted(self, when: str) -> None:
        """C{public-ip-once}, waited for within the bound."""
        started = time.monotonic()
        while True:
            try:
                problem = self.cluster.hostingProblem()
            except NetnsClusterError as e:
                problem = str(e)
            if not problem:
                self._record(PUBLIC_IP_ONCE, when, [])
                return
            if time.monotonic() - started > self.bound:
                self._record(PUBLIC_IP_ONCE, when, [problem])
                return
            time.sleep(0.1)

    def checkReachable(self, when: str) -> None:
        """C{public-ip-reachable}: a connection to every public address from
        the client namespace is echoed, within the bound."""
        if self.client is None:
            self.client = self.cluster.client()
        problems = []
        for address in self.network.publicAddresses:
            deadline = time.monotonic() + self.bound
            while True:
                name = f"r{next(self._connections)}"
                try:
                    self.client.connect(name, address)
                    answer = self.client.send(name, "ping", timeout=5.0)
                    self.client.close(name)
                    problem = "" if answer == "echo ping" else f"answered {answer!r}"
                except NetnsClusterError as e:
                    problem = str(e)
                if not problem:
                    break
                if time.monotonic() > deadline:
                    problems.append(f"{address}: {problem}; {self.whereIs(address)}")
                    break
                time.sleep(0.2)
        self._record(PUBLIC_IP_REACHABLE, when, problems)

    def checkConnections(self, when: str) -> None:
        """C{public-ip-connections}: within the bound, every long-lived
        connection of the connection client answers a line sent after now
        (on the connection it had, or on one made again after a reset)."""
        started = time.monotonic()
        while True:
            problems = connectionProblems(
                self.workload.connectionState(),
                self.network.publicAddresses,
                started,
                time.monotonic(),
                self.bound,
            )
            if not problems or time.monotonic() - started > self.bound:
                break
            time.sleep(0.1)
        states = self.workload.connectionState().get("addresses", {})
        lost = {a: c["resets"] + c["closes"] + c["errors"] for a, c in states.items()}
        changed = {
            a: n - self._lost.get(a, 0)
            for a, n in lost.items()
            if n != self._lost.get(a, 0)
        }
        self._lost = lost
        self.connectionNote = (
            "connections lost and made again: "
            + ", ".join(f"{a} {n}" for a, n in sorted(changed.items()))
            if changed
            else ""
        )
        for address, state in sorted(states.items()):
            new = state.get("bogus", [])[len(self._bogus.get(address, [])) :]
            if state.get("bogus"):
                self._bogus[address] = list(state["bogus"])
            problems += [f"{address}: answered {b!r}, never sent" for b in new]
        self._record(PUBLIC_IP_CONNECTIONS, when, problems)

    def whereIs(self, address: str) -> str:
        """A diagnostic of an address the client cannot reach: the nodes
        whose kernel has it, with their public MACs, and the client's
        neighbour entry for it."""
        try:
            held = self.network.holders().get(address, [])
            nodes = ", ".join(f"{k} ({self.network.publicMac(k)})" for k in held)
            neighbour = self.network.lab.ip(
                "neigh", "show", address, namespace=self.network.client
            ).strip()
        except Exception as e:  # noqa: BLE001 - a diagnostic, never a failure
            return f"not located: {type(e).__name__}: {e}"
        return f"on nodes [{nodes}]; client's neighbour entry: {neighbour or 'none'}"

    def sampleLeft(self) -> None:
        """Add to L{left} the nodes that some node leaves out of its vnn
        map, or flags disconnected, banned or stopped, now."""
        inactive = (
            C.NODE_FLAGS_DISCONNECTED | C.NODE_FLAGS_BANNED | C.NODE_FLAGS_STOPPED
        )
        every = set(range(self.cluster.size))
        for k in self.cluster.running():
            path = self.cluster.socketPath(k)
            try:
                vnn = C.VnnMap.decode(
                    syncControl(path, C.Control.GETVNNMAP, timeout=0.5).data
                )
                nodemap = C.decodeNodeMap(
                    syncControl(path, C.Control.GET_NODEMAP, timeout=0.5).data
                )
            except (OSError, ValueError):
                continue
            self.left |= every - set(vnn.map)
            self.left |= {n.pnn for n in nodemap if n.flags & inactive}

    def scanDeparted(self) -> None:
        """Add to L{left} every node that some daemon logged dead since the
        last scan (a departure too short for L{sampleLeft} to see)."""
        addresses = {self.cluster.address(k): k for k in range(self.cluster.size)}
        for k in range(self.cluster.size):
            data = _newLines(self.cluster.logFile(k), self._deadOffsets, k)
            for m in _DEAD.finditer(data):
                pnn = addresses.get(m.group(1).decode())
                if pnn is not None:
                    self.left.add(pnn)

    def checkSuspicions(self, when: str) -> None:
        """
        C{no-false-suspicion}: the nodes declared dead for their silence
        since the last check (each daemon's log).  During and after a fault
        that can silence a node (L{SILENCING}) that is right, and excused;
        anywhere else (another fault, or the start) it is a false
        suspicion: a live, reachable node missed its heartbeats.
        """
        problems, self._suspicions = self._suspicions + self._newSuspicions(), []
        self._record(NO_FALSE_SUSPICION, when, problems)

    def _newSuspicions(self) -> list[str]:
        """The false suspicions logged since the last scan, judged by the
        fault begun last (also after its checks, until the next begins);
        the right ones are excused."""
        problems = []
        for k in range(self.cluster.size):
            data = _newLines(self.cluster.logFile(k), self._silentOffsets, k)
            for m in _SILENT.finditer(data):
                if self._suspicionKind in SILENCING:
                    self.table.excuse(NO_FALSE_SUSPICION)
                    continue
                peer = (m.group(1) or m.group(3)).decode()
                after = f" after {m.group(2).decode()} s" if m.group(2) else ""
                problems.append(f"node {k} declared node {peer} dead{after} of silence")
        return problems

    def overlaps(self) -> set[tuple[str, tuple[int, ...]]]:
        """The public addresses on two nodes at once now (one sample):
        (address, nodes)."""
        try:
            found = self.network.overlaps()
        except Exception as e:  # noqa: BLE001 - a namespace read failed
            return {(f"unreadable: {e}", ())}
        return {(a, tuple(n)) for a, n in found.items()}

    def sampleOverlaps(
        self,
        when: str,
        seen: set[tuple[str, tuple[int, ...]]] | None = None,
        frozen: Sequence[int] = (),
    ) -> None:
        """C{public-ip-never-two}: one run, of one sample now and those
        C{seen} before (each distinct overlap is one violation).  An
        overlap on a node whose daemon is C{frozen} (SIGSTOP) is excused:
        a stopped process cannot give its addresses up (neither can
        ctdbd's)."""
        problems = []
        for address, nodes in sorted((seen or set()) | self.overlaps()):
            if set(nodes) & set(frozen):
                self.table.excuse(PUBLIC_IP_NEVER_TWO)
            else:
                problems.append(f"{address} on nodes {list(nodes)}")
        self._record(PUBLIC_IP_NEVER_TWO, when, problems)

    # -- the daemons' logs and lives ----------------------------------------------------

    def checkDaemons(self, when: str, killedNow: Sequence[int] = ()) -> None:
        """C{no-traceback}: new crash lines in the logs, nodes not running
        that the nemesis did not take down (those are started again)."""
        problems = []
        for k in range(self.cluster.size):
            for path in (self.cluster.logFile(k), self._stdoutLog(k)):
                problems += [
                    f"node {k}: {line}" for line in self._newCrashLines(k, path)
                ]
            if self.cluster.pid(k) is None and k not in killedNow:
                problems.append(f"node {k} is not running and was not killed")
        self._record(NO_TRACEBACK, when, problems)

    def _stdoutLog(self, pnn: int) -> str:
        return os.path.join(self.cluster.nodeDir(pnn), "stdout.log")

    def _newCrashLines(self, pnn: int, path: str) -> list[str]:
        data = _newLines(path, self._logOffsets, (pnn, path))
        found = []
        lines = data.splitlines()
        for i, line in enumerate(lines):
            if _CRASH.search(line):
                after = b" | ".join(lines[i + 1 : i + 12])
                found.append((line + b" | " + after).decode(errors="replace")[:2000])
        return found

    # -- the data -----------------------------------------------------------------------

    def tool(
        self, pnn: int, *args: str, timeout: float = 10.0
    ) -> subprocess.CompletedProcess[str]:
        """Samba's tool against node C{pnn}; L{NetnsClusterError} if it
        does not end within C{timeout} seconds."""
        try:
            done: subprocess.CompletedProcess[str] = self.cluster.tool(
                pnn, *args, timeout=timeout
            )
        except subprocess.TimeoutExpired as e:
            raise NetnsClusterError(
                f"ctdb {' '.join(args)} on node {pnn}: no answer in {timeout:.0f} s"
            ) from e
        return done

    def pfetch(self, pnn: int, key: str) -> int:
        before = self.workload.progress()
        try:
            done = self.tool(pnn, "pfetch", PDB, key)
        except NetnsClusterError as e:
            # pfetch takes the transaction g_lock: say who holds it, and
            # whether the workers' transactions went on meanwhile
            raise NetnsClusterError(
                f"{e}; g_locks: {self.gLocks(pnn)}; each node's copy: "
                f"{localGLocks(self.gLockFiles())}; workers' acknowledged "
                f"increments meanwhile: {before} -> {self.workload.progress()}; "
                f"fcntl locks on node {pnn}'s databases: {self.tdbLocks(pnn)}"
            ) from e
        if done.returncode != 0:
            raise NetnsClusterError(
                f"pfetch {key} on node {pnn}: {(done.stdout + done.stderr).strip()}"
            )
        return _int(done.stdout)

    def tdbLocks(self, pnn: int) -> list[str]:
        """Who holds or waits for fcntl locks on node C{pnn}'s TDB files
        (a process blocked in a TDB call shows here)."""
        root = os.path.join(self.cluster.nodeDir(pnn), "db")
        paths = [
            os.path.join(d, name)
            for d, _dirs, names in os.walk(root)
            for name in names
            if ".tdb" in name
        ]
        return fileLocks(paths)

    def gLockFiles(self) -> dict[int, str]:
        """Every node's C{g_lock.tdb} file, by pnn (ours and ctdbd alike
        keep volatile databases as C{<name>.<pnn>})."""
        files = {}
        for pnn in range(self.cluster.size):
            root = os.path.join(self.cluster.nodeDir(pnn), "db")
            for d, _dirs, names in os.walk(root):
                if f"g_lock.tdb.{pnn}" in names:
                    files[pnn] = os.path.join(d, f"g_lock.tdb.{pnn}")
        return files

    def gLocks(self, pnn: int) -> str:
        """The g_lock holders that C{ctdb catdb g_lock.tdb} through node
        C{pnn} names (a traverse: each record's dmaster copy)."""
        try:
            done = self.tool(pnn, "catdb", "g_lock.tdb", timeout=5.0)
        except NetnsClusterError as e:
            return str(e)
        return repr(gLockHolders(done.stdout))

    def checkPersistent(self, when: str, final: dict[int, int] | None = None) -> None:
        """C{persistent-acked} and C{shared-counter} on every node; with
        C{final} (each worker's acknowledged increments once all stopped),
        the exact values."""
        before = final if final is not None else self.workload.progress()
        workers = sorted(before)
        acked: list[str] = []
        shared: list[str] = []
        try:
            for node in range(self.cluster.size):
                for k in workers:
                    value = self.pfetch(node, f"c/{k}")
                    if value < before[k] or (final is not None and value != before[k]):
                        acked.append(
                            f"c/{k} on node {node} is {value}, "
                            f"{before[k]} increments acknowledged"
                        )
                value = self.pfetch(node, "shared")
                total = sum(before.values())
                if value < total or (final is not None and value != total):
                    shared.append(
                        f"shared on node {node} is {value}, {total} increments "
                        f"acknowledged ({before})"
                    )
        except (NetnsClusterError, OSError) as e:
            acked.append(f"unreadable: {e}")
        self._record(PERSISTENT_ACKED, when, acked)
        self._record(SHARED_COUNTER, when, shared)

    def checkWorkers(self, when: str, flowing: bool = True) -> None:
        """C{volatile-monotonic}, C{deleted-stay-deleted} and C{messages}
        from what the workers printed since the last check; the C{messages}
        check also wants new messages received after a heal (waited for
        within the bound)."""
        volatile, deleted, messages, persistent = [], [], [], []
        self.scanDeparted()
        for loop, k, text in self.workload.newProblems():
            where = f"worker {k}: {text}"
            if loop == "worker" and text.startswith("v/"):
                if k in self.left or self._nodeLeftSince(k, text):
                    self.table.excuse(VOLATILE_MONOTONIC)
                else:
                    volatile.append(where)
            elif loop == "worker":
                # the counter loop reports a lost increment again at each
                # later transaction: one violation per new shortfall
                m = _SHORT.match(text)
                short = int(m.group(2)) - int(m.group(1)) if m else None
                if short is None or short != self._shortfall.get(k):
                    persistent.append(where)
                if short is not None:
                    self._shortfall[k] = short
            elif "deleted" in text:
                if self.left or self._leftSince(text):
                    self.table.excuse(DELETED_STAY_DELETED)
                else:
                    deleted.append(where)
            else:
                messages.append(where)
        started = time.monotonic()
        previous = self._sidePrev
        while previous and flowing:
            now = self.workload.sideProgress()
            stuck = [k for k in now if now[k]["received"] <= previous[k]["received"]]
            if not stuck:
                break
            if time.monotonic() - started > self.bound:
                messages.append(f"no new message received by workers {stuck}")
                break
            time.sleep(0.1)
        self._sidePrev = self.workload.sideProgress()
        self._record(VOLATILE_MONOTONIC, when, volatile)
        self._record(DELETED_STAY_DELETED, when, deleted)
        self._record(MESSAGES, when, messages)
        if persistent:
            self._record(PERSISTENT_ACKED, when, persistent)

    def startFault(self, kind: str) -> None:
        """Before a fault of C{kind}: L{left} starts empty.  A node logged
        dead since the last scan (after the previous fault's checks had
        read the logs: a departure late in its heal) is a departure that
        ended now, as one during a fault is at its end (L{leftEnds}): a
        deletion made before it may come back, and the worker may report
        that only during the next faults."""
        # a node declared dead after the previous fault's checks read the
        # logs: judged by that fault
        self._suspicions += self._newSuspicions()
        self._suspicionKind = kind
        self.kind = kind
        self.left = set()
        self.scanDeparted()
        self.departuresEnded()
        self.left = set()

    def departuresEnded(self) -> None:
        """The departures of L{left} end now (L{leftEnds},
        L{nodeLeftEnds})."""
        if self.left:
            now = time.time()
            self.leftEnds.append(now)
            for k in self.left:
                self.nodeLeftEnds[k] = now

    def _leftSince(self, text: str) -> bool:
        """Whether a node left the cluster after the deletion that C{text}
        reports (C{deleted at <time>}) and before the current fault."""
        m = _DELETED_AT.search(text)
        return m is not None and any(t >= float(m.group(1)) for t in self.leftEnds)

    def _nodeLeftSince(self, pnn: int, text: str) -> bool:
        """Whether node C{pnn} left the cluster after the worker's write
        that C{text} reports (C{written at <time>}): a worker may read its
        volatile record only after that departure's checks, once its node
        serves it again."""
        m = _WRITTEN_AT.search(text)
        return m is not None and self.nodeLeftEnds.get(pnn, 0.0) >= float(m.group(1))

    def _guarded(self, check: str, when: str, run: Callable[[], object]) -> object:
        """Run a check; one that raises is a violation of C{check}."""
        try:
            return run()
        except Exception as e:  # noqa: BLE001 - the run goes on
            self._record(check, when, [f"the check failed: {type(e).__name__}: {e}"])
            return None

    def afterHeal(self, when: str) -> None:
        """Every check that follows a heal."""
        took = self._guarded(CONVERGED, when, lambda: self.waitConverged(when))
        self._guarded(PUBLIC_IP_ONCE, when, lambda: self.checkHosted(when))
        self._guarded(PUBLIC_IP_REACHABLE, when, lambda: self.checkReachable(when))
        self._guarded(PUBLIC_IP_NEVER_TWO, when, lambda: self.sampleOverlaps(when))
        self._guarded(PUBLIC_IP_CONNECTIONS, when, lambda: self.checkConnections(when))
        self._guarded(NO_TRACEBACK, when, lambda: self.checkDaemons(when))
        self._guarded(NO_FALSE_SUSPICION, when, lambda: self.checkSuspicions(when))
        if took is not None:
            self._guarded(PERSISTENT_ACKED, when, lambda: self.checkPersistent(when))
        self._guarded(VOLATILE_MONOTONIC, when, lambda: self.checkWorkers(when))

    def atEnd(self, results: dict[int, dict[str, Any]]) -> None:
        """The final checks, once the workers stopped with C{results}."""
        when = "the end"
        self.checkDaemons(when)
        final = {k: int(r.get("acked", 0)) for k, r in results.items()}
        missing = [k for k, r in results.items() if not r]
        if missing:
            self._record(PERSISTENT_ACKED, when, [f"no results from {missing}"])
        self.checkPersistent(when, final)
        self.checkWorkers(when, flowing=False)
        problems = []
        for k, r in results.items():
            side = r.get("side") or {}
            for sender, seqs in (side.get("received") or {}).items():
                sent = int(
                    (results.get(int(sender)) or {}).get("side", {}).get("sent", 0)
                )
                bogus = [s for s in seqs if s >= sent]
                if bogus:
                    problems.append(
                        f"worker {k} got {bogus[:5]} never sent by {sender}"
                    )
        self._record(MESSAGES, when, problems)


class FaultRun:
    """
    Faults one after another on a running cluster with its workload: for
    each, choose, inject, hold (sampling the public addresses), heal, then
    every check of L{Invariants.afterHeal}.  C{log} gets a line per fault.
    """

    def __init__(
        self,
        nemesis: Nemesis,
        invariants: Invariants,
        log: Callable[[str], None] = print,
    ) -> None:
        self.nemesis = nemesis
        self.invariants = invariants
        self.table = invariants.table
        self.log = log

    def one(self, index: int) -> Fault:
        fault = self.nemesis.choose()
        when = f"fault {index} {fault.describe()}"
        seen: set[tuple[str, tuple[int, ...]]] = set()
        self.invariants.startFault(fault.kind)
        self.nemesis.inject(fault)
        self.invariants.left |= set(fault.killed)
        if fault.kind in ("ban", "stop"):
            self.invariants.left |= set(fault.nodes)
        self.table.faults += 1
        if fault.injected:
            self.table.faultsInjected += 1
        try:
            deadline = fault.startedAt + fault.hold
            while time.monotonic() < deadline:
                seen |= self.invariants.overlaps()
                self.invariants.sampleLeft()
                time.sleep(min(SAMPLE_INTERVAL, max(0.0, deadline - time.monotonic())))
        finally:
            try:
                self.nemesis.heal(fault)
            except Exception as e:  # noqa: BLE001 - the checks will tell
                fault.notes.append(f"heal failed: {type(e).__name__}: {e}")
        frozen = fault.nodes if fault.kind == "pause" else ()
        self.invariants.sampleOverlaps(when + " (during)", seen, frozen)
        self.invariants.afterHeal(when)
        self.invariants.departuresEnded()
        self.invariants.kind = ""
        self.invariants.left = set()
        notes = "; ".join(
            n for n in (*fault.notes, self.invariants.connectionNote) if n
        )
        self.log(
            f"{when}: {'injected' if fault.injected else 'not injected: ' + fault.problem}"
            f"{'; ' + notes if notes else ''}; violations so far "
            f"{len(self.table.violations)}"
        )
        return fault

    def run(self, faults: int) -> None:
        for i in range(1, faults + 1):
            self.one(i)
