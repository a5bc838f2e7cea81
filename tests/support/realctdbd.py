# -*- test-case-name: tests.integration.test_realctdbd -*-
"""
A local cluster of Samba's real ``ctdbd`` (4.17) on loopback addresses: the
reference peer for interop tests, mixed clusters and benchmarks.

The layout follows /work/shared/reference/REAL_CTDBD.md: node K has its own
directory used as ``CTDB_BASE`` (``ctdb.conf``, ``nodes``, a no-op
``notify.sh``, an empty ``events/legacy/``, ``run/``, ``var/``, ``db/*``)
and listens on port 4379 of ``base + K``.  Every daemon runs with
``CTDB_TEST_MODE=yes``, stdin on /dev/null (a stdin pipe reaching EOF ends a
test-mode ctdbd) and in its own session.

ctdbd forks into the background, so the PID that matters is the one it
writes to ``run/ctdbd.pid``.  Its helpers (``ctdb-eventd``, the recovery
daemon, lock and recovery helpers) are found as its descendants in /proc
and remembered by (pid, start time), so that they can be reaped even after
ctdbd itself died and they were re-parented.  A process is only signalled
after checking that it is still the one recorded and that its environment
names this node's ``CTDB_BASE``.  Nothing is ever killed by name.

    cluster = RealCtdbdCluster("/tmp/x", base="127.42.7.1", nodes=3)
    cluster.setup()
    cluster.start()          # all nodes connected, healthy, recovery NORMAL
    ...  cluster.socketPath(0), cluster.env(0) ...
    cluster.stop()
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import time

from ctdb.cluster import NodeLayout
from ctdb.processes import procStat, tailFile
from ctdb.protocols import controls as C

CTDBD = "/usr/sbin/ctdbd"


class RealCtdbdError(Exception):
    """The real ctdbd cluster cannot be set up, started or stopped as asked."""


def _alive(pid: int, starttime: int | None = None) -> bool:
    st = procStat(pid)
    if st is None or st.state in ("Z", "X"):
        return False
    return starttime is None or st.starttime == starttime


def _environ(pid: int) -> dict[bytes, bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key] = value
    return out


def _allPids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


class RealCtdbdCluster(NodeLayout):
    """
    C{nodes} real ctdbd daemons under C{directory}, node K on C{base} + K.

    @ivar directory: the cluster directory; node K lives in C{directory}/nodeK.
    """

    def __init__(
        self,
        directory: str,
        base: str = "127.0.0.1",
        nodes: int = 3,
        *,
        ctdbd: str = CTDBD,
        logLevel: str = "NOTICE",
        tunables: dict[str, int] | None = None,
    ) -> None:
        first = ipaddress.ip_address(base)
        if (
            first.version != 4
            or not first.is_loopback
            or not (first + nodes - 1).is_loopback
        ):
            raise RealCtdbdError(f"node addresses must be in 127.0.0.0/8, not {base}")
        if nodes < 1:
            raise RealCtdbdError("a cluster needs at least one node")
        self.directory = os.path.abspath(directory)
        self.base = base
        self.size = nodes
        self.ctdbd = ctdbd
        self.logLevel = logLevel
        self.tunables = dict(tunables or {})
        # pnn -> {pid: starttime} of every process of that node's daemon seen
        self._procs: dict[int, dict[int, int]] = {k: {} for k in range(nodes)}
        self._sessions: dict[int, int] = {}

    # -- layout ---------------------------------------------------------------

    def _check(self, pnn: int) -> None:
        if not 0 <= pnn < self.size:
            raise RealCtdbdError(f"no node {pnn} (cluster has {self.size} nodes)")

    def address(self, pnn: int) -> str:
        return str(ipaddress.ip_address(self.base) + pnn)

    def env(self, pnn: int) -> dict[str, str]:
        """Environment for ctdbd or Samba's C{ctdb} tool talking to node C{pnn}."""
        return {
            "CTDB_TEST_MODE": "yes",
            "CTDB_BASE": self.nodeDir(pnn),
            "CTDB_SOCKET": self.socketPath(pnn),
        }

    def setup(self) -> None:
        """Create every node directory (idempotent; keeps existing databases)."""
        if shutil.which(self.ctdbd) is None and not os.access(self.ctdbd, os.X_OK):
            raise RealCtdbdError(
                f"{self.ctdbd} is not installed (apt-get install ctdb)"
            )
        nodesText = "".join(f"{self.address(k)}\n" for k in range(self.size))
        for k in range(self.size):
            d = self.nodeDir(k)
            for sub in (
                "run",
                "var",
                "events/legacy",
                "db/volatile",
                "db/persistent",
                "db/state",
            ):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            sock = self.socketPath(k)
            if len(sock.encode()) >= 108:
                raise RealCtdbdError(f"socket path too long for AF_UNIX: {sock}")
            with open(os.path.join(d, "nodes"), "w") as f:
                f.write(nodesText)
            with open(os.path.join(d, "ctdb.conf"), "w") as f:
                f.write(
                    "[logging]\n"
                    f"\tlocation = file:{self.logFile(k)}\n"
                    f"\tlog level = {self.logLevel}\n"
                    "[cluster]\n"
                    f"\tnode address = {self.address(k)}\n"
                    "[database]\n"
                    f"\tvolatile database directory = {d}/db/volatile\n"
                    f"\tpersistent database directory = {d}/db/persistent\n"
                    f"\tstate database directory = {d}/db/state\n"
                )
            notify = os.path.join(d, "notify.sh")
            with open(notify, "w") as f:
                f.write("#!/bin/sh\nexit 0\n")
            os.chmod(notify, 0o755)
            tunablesPath = os.path.join(d, "ctdb.tunables")
            if self.tunables:
                with open(tunablesPath, "w") as f:
                    f.writelines(
                        f"{name}={value}\n" for name, value in self.tunables.items()
                    )
            elif os.path.exists(tunablesPath):
                os.unlink(tunablesPath)

    # -- processes --------------------------------------------------------------

    def _ours(self, pnn: int, pid: int) -> bool:
        """Is C{pid} a process of node C{pnn} (its environment says so)?"""
        return _environ(pid).get(b"CTDB_BASE") == self.nodeDir(pnn).encode()

    def pid(self, pnn: int) -> int | None:
        """The PID in node C{pnn}'s ``run/ctdbd.pid``, if that is still its ctdbd."""
        self._check(pnn)
        try:
            with open(self.pidFile(pnn)) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        if not _alive(pid) or not self._ours(pnn, pid):
            return None
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return None
        if os.path.basename(exe) != "ctdbd":
            return None
        return pid

    def _scan(self, pnn: int) -> None:
        """Remember node C{pnn}'s ctdbd and every descendant of it (via /proc)."""
        root = self.pid(pnn)
        if root is None:
            return
        st = procStat(root)
        if st is None:
            return
        self._sessions[pnn] = st.session
        children: dict[int, list[tuple[int, int]]] = {}
        for pid in _allPids():
            s = procStat(pid)
            if s is not None:
                children.setdefault(s.ppid, []).append((pid, s.starttime))
        seen = self._procs[pnn]
        seen[root] = st.starttime
        todo = [root]
        while todo:
            for pid, start in children.get(todo.pop(), []):
                if pid not in seen or seen[pid] != start:
                    seen[pid] = start
                    todo.append(pid)

    def _leftovers(self, pnn: int) -> dict[int, int]:
        """Recorded processes of node C{pnn} that still run (and are still ours)."""
        self._scan(pnn)
        live = {}
        for pid, start in list(self._procs[pnn].items()):
            if _alive(pid, start) and self._ours(pnn, pid):
                live[pid] = start
            else:
                del self._procs[pnn][pid]
        # Helpers that were re-parented before we ever saw them: same session
        # as the recorded daemon and this node's CTDB_BASE.
        session = self._sessions.get(pnn)
        if session is not None:
            for pid in _allPids():
                st = procStat(pid)
                if (
                    st is not None
                    and st.session == session
                    and pid not in live
                    and st.state not in ("Z", "X")
                    and self._ours(pnn, pid)
                ):
                    live[pid] = st.starttime
                    self._procs[pnn][pid] = st.starttime
        return live

    def _signalAll(self, procs: dict[int, int], sig: int) -> None:
        for pid, start in procs.items():
            if _alive(pid, start):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    def _waitGone(self, procs: dict[int, int], timeout: float) -> dict[int, int]:
        deadline = time.monotonic() + timeout
        left = dict(procs)
        while left:
            left = {p: s for p, s in left.items() if _alive(p, s)}
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        return left

    def _reapLeftovers(self, pnn: int, grace: float) -> None:
        """End whatever remains of node C{pnn}: SIGTERM, C{grace}, SIGKILL."""
        left = self._leftovers(pnn)
        if not left:
            return
        self._signalAll(left, signal.SIGTERM)
        left = self._waitGone(left, grace)
        if left:
            self._signalAll(left, signal.SIGKILL)
            left = self._waitGone(left, 5.0)
        if left:
            raise RealCtdbdError(
                f"node {pnn}: processes {sorted(left)} survived SIGKILL"
            )
        self._procs[pnn].clear()

    def startNode(self, pnn: int) -> None:
        """Launch node C{pnn}'s ctdbd (not waiting for the cluster to settle)."""
        self._check(pnn)
        if self.pid(pnn) is not None:
            return
        # Gotcha 2: an eventd left over from a SIGKILLed ctdbd makes a new
        # ctdbd fail with "Failed to initialize event daemon (32)".
        self._reapLeftovers(pnn, grace=1.0)
        self._sessions.pop(pnn, None)
        try:
            os.unlink(self.pidFile(pnn))
        except FileNotFoundError:
            pass
        env = dict(os.environ)
        env.update(self.env(pnn))
        with open(os.path.join(self.nodeDir(pnn), "stdout.log"), "ab") as out:
            proc = subprocess.Popen(
                [self.ctdbd],
                env=env,
                cwd=self.nodeDir(pnn),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # ctdbd forks; the parent exits once the daemon is on its way.
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RealCtdbdError(f"node {pnn}: ctdbd did not daemonize") from None
        if rc != 0:
            raise RealCtdbdError(
                f"node {pnn}: ctdbd exited with {rc}; see {self.logFile(pnn)}:\n"
                + self.tail(pnn)
            )

    def start(self, timeout: float = 30.0, pnns: list[int] | None = None) -> None:
        """Start nodes (default all) and wait until the cluster is ready."""
        targets = list(range(self.size)) if pnns is None else list(pnns)
        try:
            for k in targets:
                self.startNode(k)
            self.waitReady(timeout)
        except BaseException:
            for k in targets:
                self.stopNode(k)
            raise

    def running(self) -> list[int]:
        return [k for k in range(self.size) if self.pid(k) is not None]

    def waitReady(self, timeout: float = 30.0) -> None:
        """
        Until every running node sees every running node connected and OK
        (``ctdb nodestatus all`` would say OK) and is in recovery mode NORMAL.
        """
        deadline = time.monotonic() + timeout
        problem = "no node running"
        pidWait = time.monotonic() + 10.0
        while True:
            alive = self.running()
            problem = ""
            expected = [k for k in range(self.size) if os.path.exists(self.pidFile(k))]
            missing = sorted(set(expected) - set(alive))
            if missing:
                problem = f"node(s) {missing} not running"
                if time.monotonic() > pidWait:
                    raise RealCtdbdError(
                        f"ctdbd of node(s) {missing} exited; see "
                        f"{self.logFile(missing[0])}:\n" + self.tail(missing[0])
                    )
            else:
                for k in alive:
                    self._scan(k)
                    try:
                        nodemap = self.nodeMap(k)
                        mode = self.recMode(k)
                    except OSError as e:
                        problem = f"node {k}: {e}"
                        break
                    bad = [n.pnn for n in nodemap if n.pnn in alive and n.flags != 0]
                    if bad:
                        problem = f"node {k} sees node(s) {bad} not OK"
                        break
                    if mode != C.CTDB_RECOVERY_NORMAL:
                        problem = f"node {k} in recovery mode {mode}"
                        break
                if not alive:
                    problem = "no node running"
            if not problem:
                return
            if time.monotonic() >= deadline:
                raise RealCtdbdError(
                    f"real ctdbd cluster not ready after {timeout:.0f} s: {problem}"
                )
            time.sleep(0.05)

    def tail(self, pnn: int, lines: int = 20) -> str:
        return tailFile(self.logFile(pnn), lines)

    def kill(self, pnn: int) -> None:
        """SIGKILL node C{pnn}'s ctdbd (a crash); its helpers are left to notice."""
        self._check(pnn)
        self._scan(pnn)
        pid = self.pid(pnn)
        if pid is None:
            raise RealCtdbdError(f"node {pnn} is not running")
        start = self._procs[pnn][pid]
        os.kill(pid, signal.SIGKILL)
        if self._waitGone({pid: start}, 5.0):
            raise RealCtdbdError(f"node {pnn}: ctdbd {pid} survived SIGKILL")

    def stopNode(self, pnn: int, timeout: float = 10.0) -> None:
        """Stop node C{pnn} cleanly (SIGTERM), then make sure nothing of it remains."""
        self._check(pnn)
        self._scan(pnn)
        pid = self.pid(pnn)
        if pid is not None:
            start = self._procs[pnn][pid]
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self._waitGone({pid: start}, timeout):
                self._signalAll({pid: start}, signal.SIGKILL)
                self._waitGone({pid: start}, 5.0)
        self._reapLeftovers(pnn, grace=2.0)
        try:
            os.unlink(self.pidFile(pnn))
        except FileNotFoundError:
            pass

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every node; returns when no process of this cluster is left."""
        errors = []
        # SIGTERM every ctdbd first so that they shut down in parallel.
        for k in range(self.size):
            self._scan(k)
            pid = self.pid(k)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for k in range(self.size):
            try:
                self.stopNode(k, timeout)
            except RealCtdbdError as e:
                errors.append(str(e))
        if errors:
            raise RealCtdbdError("; ".join(errors))

    def processes(self) -> dict[int, list[int]]:
        """pnn -> PIDs of every live process of that node (ctdbd and helpers)."""
        return {k: sorted(self._leftovers(k)) for k in range(self.size)}
