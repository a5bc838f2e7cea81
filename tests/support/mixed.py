# -*- test-case-name: tests.integration.test_mixed -*-
"""
A mixed local cluster: some nodes run Samba's real ``ctdbd`` 4.17
(L{tests.support.realctdbd.RealCtdbdCluster}), the others run our daemon
(L{ctdb.cluster.LocalCluster}), all on one random 127.X.Y.Z base and all
with the same nodes file.

Both harnesses use the same layout (node K lives in C{directory}/nodeK with
``nodes``, ``run/ctdbd.socket``, ``run/ctdbd.pid``, ``log.ctdb``), so one
directory serves both: the real harness recognises only a ``ctdbd`` whose
environment names the node's ``CTDB_BASE``, ours only a process whose
command line names the node's socket.  Every process is tracked and ended
by the PID recorded for it (the real node's helpers as its descendants).

    cluster = MixedCluster("/tmp/m", base="127.42.7.1", real=[0])
    cluster.setup()
    cluster.start([[0], [1, 2]])   # node 0 alone first: it leads
    ... cluster.env(k), cluster.tool(k, "status"), cluster.leader(k) ...
    cluster.stop()
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterable

from ctdb.cluster import LocalCluster, NodeLayout, tailFile
from ctdb.errors import ClusterError
from ctdb.protocols import controls as C
from tests.support.realctdbd import RealCtdbdCluster, RealCtdbdError


class MixedClusterError(Exception):
    """The mixed cluster cannot be started or did not settle."""


class MixedCluster(NodeLayout):
    """
    C{nodes} nodes under C{directory}, node K on C{base} + K; the pnns in
    C{real} run Samba's ctdbd, the others our daemon.
    """

    def __init__(
        self,
        directory: str,
        base: str = "127.0.0.1",
        nodes: int = 3,
        *,
        real: Iterable[int] = (0,),
        logLevel: str = "NOTICE",
        tunables: dict[str, int] | None = None,
        leaderTimeout: int | None = None,
    ) -> None:
        self.directory = os.path.abspath(directory)
        self.base = base
        self.size = nodes
        self.realPnns = frozenset(real)
        self.tunables = dict(tunables or {})
        self.real = RealCtdbdCluster(
            self.directory,
            base=base,
            nodes=nodes,
            logLevel=logLevel,
            tunables=self.tunables,
        )
        self.ours = LocalCluster(self.directory)
        self.logLevel = logLevel
        #: ``[cluster] leader timeout`` of the real nodes (ctdbd's default
        #: is 5 s: how long a real recovery daemon waits for a leader
        #: broadcast before it calls an election)
        self.leaderTimeout = leaderTimeout

    # -- layout -------------------------------------------------------------------

    def isReal(self, pnn: int) -> bool:
        return pnn in self.realPnns

    def setup(self) -> None:
        """Node directories for both kinds (same nodes file everywhere)."""
        self.real.setup()
        self.ours.setup(self.size, base=self.base, tunables=self.tunables)
        if self.leaderTimeout is not None:
            for k in self.realPnns:
                path = os.path.join(self.nodeDir(k), "ctdb.conf")
                with open(path) as f:
                    text = f.read()
                text = text.replace(
                    "[cluster]\n",
                    f"[cluster]\n\tleader timeout = {self.leaderTimeout}\n",
                )
                with open(path, "w") as f:
                    f.write(text)

    def address(self, pnn: int) -> str:
        return self.real.address(pnn)

    def env(self, pnn: int) -> dict[str, str]:
        """Environment for Samba's C{ctdb} tool talking to node C{pnn}."""
        # Test mode makes the tool take every path relative to CTDB_BASE;
        # both kinds of node are happy with it.
        return self.real.env(pnn)

    # -- processes ---------------------------------------------------------------------

    def pid(self, pnn: int) -> int | None:
        return self.real.pid(pnn) if self.isReal(pnn) else self.ours.pid(pnn)

    def running(self) -> list[int]:
        return [k for k in range(self.size) if self.pid(k) is not None]

    def startNode(self, pnn: int) -> None:
        """Launch node C{pnn} (not waiting for the cluster to settle)."""
        if self.pid(pnn) is not None:
            return
        if self.isReal(pnn):
            self.real.startNode(pnn)
        else:
            self.ours._spawn(pnn)

    def start(
        self,
        groups: Iterable[Iterable[int]] | None = None,
        *,
        timeout: float = 45.0,
    ) -> None:
        """
        Start the nodes group by group (default: all at once); each group
        is started together and the nodes started so far must be one
        healthy cluster (L{waitHealthy}) before the next group starts.  A
        node that joins a cluster accepts its leader, and when a leader is
        elected the earliest started recovery daemon wins (then, for equal
        start times, the higher pnn): the first group decides who leads.
        """
        plan = [list(range(self.size))] if groups is None else [list(g) for g in groups]
        started: list[int] = []
        try:
            for group in plan:
                for k in group:
                    started.append(k)
                    self.startNode(k)
                self.waitHealthy(timeout, pnns=sorted(started))
        except BaseException:
            self.stop(started)
            raise

    def kill(self, pnn: int) -> None:
        """SIGKILL node C{pnn}'s daemon (a crash)."""
        if self.isReal(pnn):
            self.real.kill(pnn)
        else:
            self.ours.kill(pnn)

    def stopNode(self, pnn: int) -> None:
        """Stop node C{pnn} and everything of it (real ctdbd's helpers too)."""
        if self.isReal(pnn):
            self.real.stopNode(pnn)
        else:
            self.ours.stop([pnn])

    def stop(self, pnns: Iterable[int] | None = None) -> None:
        """Stop nodes (default all); returns when none of their processes is left."""
        targets = list(range(self.size)) if pnns is None else list(pnns)
        errors = []
        ours = [k for k in targets if not self.isReal(k)]
        if ours:
            try:
                self.ours.stop(ours)
            except (ClusterError, OSError) as e:
                errors.append(str(e))
        for k in targets:
            if self.isReal(k):
                try:
                    self.real.stopNode(k)
                except RealCtdbdError as e:
                    errors.append(str(e))
        if errors:
            raise MixedClusterError("; ".join(errors))

    def processes(self) -> dict[int, list[int]]:
        """pnn -> live PIDs of that node (a real node's helpers included)."""
        out: dict[int, list[int]] = {}
        for k in range(self.size):
            if self.isReal(k):
                out[k] = self.real.processes()[k]
            else:
                pid = self.ours.pid(k)
                out[k] = [pid] if pid is not None else []
        return out

    # -- state ------------------------------------------------------------------------

    def problem(self, pnns: list[int] | None = None) -> str:
        """
        Why the running nodes (or C{pnns}) are not one healthy cluster, or
        "": each sees each of them OK, is in recovery mode NORMAL, and all
        hold the same valid generation with exactly them in the vnn map and
        name the same leader, one of them.
        """
        alive = self.running() if pnns is None else list(pnns)
        if not alive:
            return "no node running"
        generations = set()
        for k in alive:
            try:
                nodemap = self.nodeMap(k)
                mode = self.recMode(k)
                vnn = self.vnnMap(k)
            except OSError as e:
                return f"node {k}: {e}"
            bad = [(n.pnn, hex(n.flags)) for n in nodemap if n.pnn in alive and n.flags]
            if bad:
                return f"node {k} sees node(s) {bad} not OK"
            if mode != C.CTDB_RECOVERY_NORMAL:
                return f"node {k} in recovery mode {mode}"
            if vnn.generation == 1:
                return f"node {k} has the invalid generation"
            if sorted(vnn.map) != sorted(alive):
                return f"node {k} has vnn map {list(vnn.map)}"
            generations.add(vnn.generation)
        if len(generations) != 1:
            return f"generations differ: {sorted(hex(g) for g in generations)}"
        # One generation everywhere is not yet settled: two nodes may each
        # believe that the other leads, and the next leader broadcast
        # timeout brings another election and recovery (issue 13 item 6).
        try:
            leaders = {k: self.leader(k) for k in alive}
        except (MixedClusterError, OSError, ValueError) as e:
            return f"leader: {e}"
        if len(set(leaders.values())) != 1 or leaders[alive[0]] not in alive:
            return f"nodes name different leaders: {leaders}"
        return ""

    def waitHealthy(self, timeout: float = 45.0, pnns: list[int] | None = None) -> None:
        """Until L{problem} is "" (checked twice, 0.5 s apart, to see it settled)."""
        deadline = time.monotonic() + timeout
        problem = "not checked"
        settledSince: float | None = None
        # A node just launched has no recognisable process for a moment
        # (our daemon is still exec'ing, ctdbd still forking).
        startGrace = time.monotonic() + 10.0
        while True:
            expected = self.running() if pnns is None else list(pnns)
            missing = [k for k in expected if self.pid(k) is None]
            now = time.monotonic()
            if missing and now >= startGrace:
                k = missing[0]
                raise MixedClusterError(
                    f"node {k} is not running; see {self.logFile(k)}:\n" + self.tail(k)
                )
            problem = (
                f"node(s) {missing} not running" if missing else self.problem(pnns)
            )
            if not problem:
                if settledSince is None:
                    settledSince = now
                elif now - settledSince >= 0.5:
                    return
            else:
                settledSince = None
            if now >= deadline:
                raise MixedClusterError(
                    f"mixed cluster not healthy after {timeout:.0f} s: {problem}"
                )
            time.sleep(0.1)

    def tool(self, pnn: int, *args: str, timeout: float = 30.0) -> tuple[int, str]:
        """Run Samba's C{ctdb} tool against node C{pnn}: (exit code, output)."""
        path = shutil.which("ctdb")
        if path is None:
            raise MixedClusterError("Samba's ctdb tool is not installed")
        env = dict(os.environ)
        env.update(self.env(pnn))
        done = subprocess.run(
            [path, *args],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return done.returncode, done.stdout + done.stderr

    def leader(self, pnn: int) -> int:
        """The leader as node C{pnn} knows it (C{ctdb leader})."""
        rc, out = self.tool(pnn, "leader")
        if rc != 0:
            raise MixedClusterError(f"ctdb leader on node {pnn} failed: {out}")
        return int(out.strip())

    def tail(self, pnn: int, lines: int = 30) -> str:
        return tailFile(self.logFile(pnn), lines)
