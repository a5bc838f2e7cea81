# -*- test-case-name: tests.integration.test_cluster -*-
"""
``ctdb-cluster``: a local CTDB cluster of real daemons on 127.0.0.X.

    ctdb-cluster --dir D setup --nodes 3     # node K: 127.0.0.(K+1), directory D/nodeK
    ctdb-cluster --dir D start [K ...]       # returns when the started nodes are connected
    ctdb-cluster --dir D stop [K ...]
    ctdb-cluster --dir D kill K | pause K | resume K
    ctdb-cluster --dir D socket K
    ctdb-cluster --dir D env K
    ctdb-cluster --dir D status
    ctdb-cluster --dir D samba start|stop|status [K ...]   # clustered smbd per node

D/nodeK works as CTDB_BASE for Samba's ctdb tool: it holds ``nodes`` and
``run/ctdbd.socket``.  Each node runs the event scripts of
D/nodeK/events/legacy/ (empty at setup) and serves ``run/eventd.socket``
(Samba's ``ctdb event`` and ``ctdb scriptstatus`` find it with
``CTDB_TEST_MODE=yes``).  Processes are tracked by the PID recorded in
D/nodeK/ctdbd.pid and signalled only after checking that the PID is still
the daemon this cluster started.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from ctdb.errors import ClusterError, SambaError
from ctdb.processes import procStat, tailFile
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.event import EventReply, EventRequest, RequestStatus, packetLength
from ctdb.samba import ClusteredSamba

CONFIG = "cluster.json"
#: the event scripts of a node, under its directory (its CTDB_BASE)
EVENTS = "events/legacy"


def syncEventStatus(
    path: str, event: str, component: str = "legacy", *, timeout: float = 5.0
) -> EventReply:
    """The status of C{event}, asked of the event daemon serving C{path}
    with one blocking request (no reactor needed)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(EventRequest(1, RequestStatus(component, event)).encode())
        buf = b""
        while True:
            length = packetLength(buf)
            if length is not None and len(buf) >= length:
                return EventReply.decode(buf)[0]
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("event daemon closed the connection")
            buf += chunk


def syncControl(
    path: str,
    opcode: int,
    data: bytes = b"",
    *,
    destnode: int = P.CTDB_CURRENT_NODE,
    timeout: float = 5.0,
) -> P.ReplyControl:
    """One blocking control over a daemon's unix socket (no reactor needed)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        req = P.ReqControl(
            P.Header(P.Operation.REQ_CONTROL, destnode, P.CTDB_UNKNOWN_PNN, 1),
            opcode,
            0,
            0,
            0,
            data,
        )
        s.sendall(req.encode())
        buf = b""
        while True:
            if len(buf) >= 4:
                (length,) = struct.unpack_from("<I", buf)
                if len(buf) >= length:
                    pkt = P.decodePacket(buf[:length])
                    if isinstance(pkt, P.ReplyControl) and pkt.header.reqid == 1:
                        return pkt
                    buf = buf[length:]
                    continue
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("daemon closed the connection")
            buf += chunk


class NodeLayout:
    """
    The node directory layout every local cluster harness shares (ours,
    and the test-only harnesses of Samba's real ctdbd and of mixed clusters
    in the source tree's C{tests/support/}): node K lives in
    C{directory}/nodeK with ``nodes``, ``run/ctdbd.socket``,
    ``run/ctdbd.pid`` and ``log.ctdb``, so one directory serves both kinds
    of daemon; plus the state queries over a node's socket.
    """

    directory: str

    def nodeDir(self, pnn: int) -> str:
        return os.path.join(os.path.abspath(self.directory), f"node{pnn}")

    def socketPath(self, pnn: int) -> str:
        return os.path.join(self.nodeDir(pnn), "run", "ctdbd.socket")

    def eventSocketPath(self, pnn: int) -> str:
        """Node C{pnn}'s event socket (Samba's tool finds it there with
        C{CTDB_TEST_MODE} set and C{CTDB_BASE} the node's directory)."""
        return os.path.join(self.nodeDir(pnn), "run", "eventd.socket")

    def pidFile(self, pnn: int) -> str:
        return os.path.join(self.nodeDir(pnn), "run", "ctdbd.pid")

    def logFile(self, pnn: int) -> str:
        return os.path.join(self.nodeDir(pnn), "log.ctdb")

    def nodeMap(self, pnn: int) -> list[C.NodeAndFlags]:
        reply = syncControl(self.socketPath(pnn), C.Control.GET_NODEMAP, timeout=2)
        return C.decodeNodeMap(reply.data)

    def recMode(self, pnn: int) -> int:
        return syncControl(
            self.socketPath(pnn), C.Control.GET_RECMODE, timeout=2
        ).status

    def vnnMap(self, pnn: int) -> C.VnnMap:
        reply = syncControl(self.socketPath(pnn), C.Control.GETVNNMAP, timeout=2)
        return C.VnnMap.decode(reply.data)


@dataclass
class LocalCluster(NodeLayout):
    """A directory holding a local cluster's nodes."""

    directory: str

    # -- layout -----------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        path = os.path.join(self.directory, CONFIG)
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            raise ClusterError(
                f"{self.directory} is not a cluster directory (run setup first)"
            ) from None

    @property
    def size(self) -> int:
        return int(self._config()["nodes"])

    def address(self, pnn: int) -> str:
        cfg = self._config()
        return str(ipaddress.ip_address(cfg["base"]) + pnn)

    def metricsEndpoint(self, pnn: int) -> str | None:
        """The Twisted endpoint node C{pnn} serves its metrics on (None
        unless the cluster was set up with a metrics port)."""
        port = int(self._config().get("metricsPort", 0))
        if not port:
            return None
        return f"tcp:{port}:interface={self.address(pnn)}"

    def metricsURL(self, pnn: int) -> str | None:
        """The URL of node C{pnn}'s metrics, if it serves them."""
        port = int(self._config().get("metricsPort", 0))
        if not port:
            return None
        return f"http://{self.address(pnn)}:{port}/metrics"

    def env(self, pnn: int) -> dict[str, str]:
        return {"CTDB_BASE": self.nodeDir(pnn), "CTDB_SOCKET": self.socketPath(pnn)}

    def _check(self, pnn: int) -> None:
        if not 0 <= pnn < self.size:
            raise ClusterError(f"no node {pnn} (cluster has {self.size} nodes)")

    def setup(
        self,
        nodes: int,
        base: str = "127.0.0.1",
        port: int = P.CTDB_PORT,
        tunables: dict[str, int] | None = None,
        reclock: str = "",
        logFormat: str = "text",
        metricsPort: int = 0,
    ) -> None:
        """Make the node directories.  With C{metricsPort}, node K serves
        its Prometheus metrics at C{http://<its address>:<metricsPort>/metrics}."""
        if nodes < 1:
            raise ClusterError("a cluster needs at least one node")
        first = ipaddress.ip_address(base)
        if not first.is_loopback or not (first + nodes - 1).is_loopback:
            raise ClusterError(f"node addresses must be in 127.0.0.0/8, not {base}")
        os.makedirs(self.directory, exist_ok=True)
        with open(os.path.join(self.directory, CONFIG), "w") as f:
            json.dump(
                {
                    "nodes": nodes,
                    "base": base,
                    "port": port,
                    "tunables": tunables or {},
                    "reclock": reclock,
                    "logFormat": logFormat,
                    "metricsPort": metricsPort,
                },
                f,
            )
        text = "".join(f"{first + k}\n" for k in range(nodes))
        for k in range(nodes):
            d = self.nodeDir(k)
            for sub in ("run", "db/volatile", "db/persistent", "db/state", EVENTS):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            with open(os.path.join(d, "nodes"), "w") as f:
                f.write(text)

    def _nodeLines(self) -> list[str]:
        with open(os.path.join(self.nodeDir(0), "nodes")) as f:
            return f.read().splitlines()

    def _writeNodes(self, lines: list[str]) -> None:
        text = "".join(f"{line}\n" for line in lines)
        for k in range(self.size):
            with open(os.path.join(self.nodeDir(k), "nodes"), "w") as f:
                f.write(text)

    def addNode(self) -> int:
        """Append a node (the next address) to every node's nodes file and
        make its directory; returns its pnn.  Running daemons learn of it
        with ``ctdb reloadnodes``; then start it."""
        cfg = self._config()
        pnn = int(cfg["nodes"])
        cfg["nodes"] = pnn + 1
        with open(os.path.join(self.directory, CONFIG), "w") as f:
            json.dump(cfg, f)
        d = self.nodeDir(pnn)
        for sub in ("run", "db/volatile", "db/persistent", "db/state"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        self._writeNodes(self._nodeLines() + [self.address(pnn)])
        return pnn

    def deleteNode(self, pnn: int) -> None:
        """Comment node C{pnn} out ('#') in every nodes file; the pnns of the
        others do not change.  Stop it first, then ``ctdb reloadnodes``."""
        self._check(pnn)
        lines = self._nodeLines()
        lines[pnn] = "#" + lines[pnn].lstrip("#")
        self._writeNodes(lines)

    # -- processes ------------------------------------------------------------

    def pid(self, pnn: int) -> int | None:
        """The recorded PID of node C{pnn}, if that process is still ours."""
        try:
            with open(self.pidFile(pnn)) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            return None
        if self.socketPath(pnn).encode() not in cmdline:
            return None
        st = procStat(pid)
        if st is None or st.state == "Z":
            return None
        return pid

    def processState(self, pnn: int) -> str:
        pid = self.pid(pnn)
        st = None if pid is None else procStat(pid)
        if st is None:
            return "stopped"
        return "paused" if st.state in ("T", "t") else "running"

    def _spawn(self, pnn: int) -> None:
        cfg = self._config()
        d = self.nodeDir(pnn)
        os.makedirs(os.path.join(d, EVENTS), exist_ok=True)
        args = [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile=",
            "ctdb",
            "--nodes",
            os.path.join(d, "nodes"),
            "--address",
            self.address(pnn),
            "--port",
            str(cfg.get("port", P.CTDB_PORT)),
            "--socket",
            self.socketPath(pnn),
            "--dbdir",
            os.path.join(d, "db", "volatile"),
            "--dbdir-persistent",
            os.path.join(d, "db", "persistent"),
            "--dbdir-state",
            os.path.join(d, "db", "state"),
            "--log-file",
            self.logFile(pnn),
            "--log-level",
            "NOTICE",
            "--log-format",
            str(cfg.get("logFormat", "text")),
            "--events-dir",
            os.path.join(d, "events"),
            "--event-socket",
            self.eventSocketPath(pnn),
            # as Samba's local test daemons (CTDB_TEST_MODE): no wait of
            # RerecoveryTimeout + 3 s before the startup event
            "--fast-start",
        ]
        if cfg.get("reclock"):
            args += ["--reclock", cfg["reclock"]]
        endpoint = self.metricsEndpoint(pnn)
        if endpoint is not None:
            args += ["--metrics", endpoint]
        for name, value in cfg.get("tunables", {}).items():
            args += ["--tunable", f"{name}={value}"]
        with open(os.path.join(d, "stdout.log"), "ab") as out:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=d,
            )
        with open(self.pidFile(pnn), "w") as f:
            f.write(f"{proc.pid}\n")
        self._children = getattr(self, "_children", {})
        self._children[pnn] = proc

    def _exited(self, pnn: int) -> bool:
        """Whether node C{pnn}'s daemon is gone.  A child this object started
        is asked directly: just after a (v)fork and exec its command line
        may still read empty, which L{pid} would take for another process."""
        proc = getattr(self, "_children", {}).get(pnn)
        if proc is not None:
            return proc.poll() is not None
        return self.pid(pnn) is None

    def _reap(self, pnn: int) -> None:
        proc = getattr(self, "_children", {}).get(pnn)
        if proc is not None:
            try:
                proc.wait(timeout=0.01)
            except subprocess.TimeoutExpired:
                pass

    def start(self, pnns: list[int] | None = None, timeout: float = 30.0) -> None:
        targets = list(range(self.size)) if not pnns else pnns
        for k in targets:
            self._check(k)
        spawned = []
        for k in targets:
            if self.pid(k) is None:
                self._spawn(k)
                spawned.append(k)
        try:
            deadline = time.monotonic() + timeout
            self.waitConnected(targets, timeout)
            self.waitMonitored(targets, max(deadline - time.monotonic(), 1.0))
        except ClusterError:
            # leave no half-started cluster behind: stop what this call started
            if spawned:
                self.stop(spawned)
            raise

    def running(self) -> list[int]:
        return [k for k in range(self.size) if self.processState(k) == "running"]

    def waitConnected(self, pnns: list[int], timeout: float = 30.0) -> None:
        """Until every started node sees every running node connected and
        the cluster has recovered (recovery mode NORMAL)."""
        deadline = time.monotonic() + timeout
        problem = ""
        while time.monotonic() < deadline:
            alive = set(self.running())
            problem = ""
            for k in pnns:
                if k not in alive:
                    if self._exited(k):
                        raise ClusterError(
                            f"node {k} exited during start; see {self.logFile(k)} "
                            f"and {os.path.join(self.nodeDir(k), 'stdout.log')}:\n"
                            + self._tail(k)
                        )
                    problem = f"node {k} is not running"
                    break
                try:
                    nodemap = self.nodeMap(k)
                except OSError as e:
                    problem = f"node {k}: {e}"
                    break
                missing = [
                    n.pnn
                    for n in nodemap
                    if n.pnn in alive and n.flags & C.NODE_FLAGS_DISCONNECTED
                ]
                if missing:
                    problem = f"node {k} does not see node(s) {missing} connected"
                    break
                if self.recMode(k) != C.CTDB_RECOVERY_NORMAL:
                    problem = f"node {k} is in recovery"
                    break
            if not problem:
                return
            time.sleep(0.1)
        raise ClusterError(f"cluster not connected after {timeout:.0f} s: {problem}")

    def waitMonitored(self, pnns: list[int], timeout: float = 30.0) -> None:
        """Until each of C{pnns} has its health from a monitor event: every
        running node sees it healthy, or its monitor event failed (it
        stays UNHEALTHY then, which is no reason to wait longer), or it is
        banned or stopped (no monitor event runs).  A node starts
        UNHEALTHY, as ctdbd's, until its first monitor event."""
        deadline = time.monotonic() + timeout
        problem = ""
        while time.monotonic() < deadline:
            alive = self.running()
            problem = ""
            for k in pnns:
                try:
                    own = [n.flags for n in self.nodeMap(k) if n.pnn == k]
                    if own and own[0] & C.NODE_FLAGS_INACTIVE:
                        continue  # banned or stopped: no monitor event runs
                    unhealthy = any(
                        n.pnn == k and n.flags & C.NODE_FLAGS_UNHEALTHY
                        for j in alive
                        for n in self.nodeMap(j)
                    )
                    if unhealthy and not self._monitorFailed(k):
                        problem = f"node {k} has not passed a monitor event"
                        break
                except OSError as e:
                    problem = f"node {k}: {e}"
                    break
            if not problem:
                return
            time.sleep(0.1)
        raise ClusterError(f"cluster not monitored after {timeout:.0f} s: {problem}")

    def _monitorFailed(self, pnn: int) -> bool:
        """Whether node C{pnn}'s last monitor event failed."""
        reply = syncEventStatus(self.eventSocketPath(pnn), "monitor", timeout=2)
        return (
            reply.result == 0 and reply.status is not None and reply.status.summary != 0
        )

    def _tail(self, pnn: int, lines: int = 15) -> str:
        return tailFile(os.path.join(self.nodeDir(pnn), "stdout.log"), lines)

    def _signal(self, pnn: int, sig: int) -> int:
        self._check(pnn)
        pid = self.pid(pnn)
        if pid is None:
            raise ClusterError(f"node {pnn} is not running")
        os.kill(pid, sig)
        return pid

    def stop(self, pnns: list[int] | None = None, timeout: float = 15.0) -> None:
        targets = list(range(self.size)) if not pnns else pnns
        pids = {}
        for k in targets:
            self._check(k)
            pid = self.pid(k)
            if pid is not None:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)
                pids[k] = pid
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            for k in list(pids):
                self._reap(k)
                if self.pid(k) is None:
                    del pids[k]
            time.sleep(0.05)
        for k, pid in pids.items():
            os.kill(pid, signal.SIGKILL)
            self._waitGone(k)
        for k in targets:
            try:
                os.unlink(self.pidFile(k))
            except FileNotFoundError:
                pass

    def _waitGone(self, pnn: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._reap(pnn)
            if self.pid(pnn) is None:
                return
            time.sleep(0.02)

    def kill(self, pnn: int) -> None:
        self._signal(pnn, signal.SIGKILL)
        self._waitGone(pnn)

    def pause(self, pnn: int) -> None:
        self._signal(pnn, signal.SIGSTOP)

    def resume(self, pnn: int) -> None:
        self._signal(pnn, signal.SIGCONT)

    def status(self) -> str:
        lines = []
        for k in range(self.size):
            state = self.processState(k)
            pid = self.pid(k)
            view = ""
            if state == "running":
                try:
                    flags = " ".join(
                        f"{n.pnn}:{'DISCONNECTED' if n.flags & C.NODE_FLAGS_DISCONNECTED else 'OK'}"
                        for n in self.nodeMap(k)
                    )
                    view = f"  sees {flags}"
                except OSError as e:
                    view = f"  (no answer: {e})"
            pidText = f"pid {pid}" if pid else "no pid"
            lines.append(f"node{k} {self.address(k)} {state} ({pidText}){view}")
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ctdb-cluster", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--dir", required=True, help="cluster directory")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup", help="create the node directories")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument(
        "--base", default="127.0.0.1", help="address of node 0 (127.0.0.0/8)"
    )
    p.add_argument("--port", type=int, default=P.CTDB_PORT)
    p.add_argument("--tunable", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument(
        "--reclock",
        default="",
        help="cluster lock: a file path, or '!helper args' (off by default)",
    )
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="how each node writes log.ctdb (default text; docs/LOGGING.md)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="node K serves Prometheus metrics on its own address at this port"
        " (off by default; docs/METRICS.md)",
    )
    for name in ("start", "stop"):
        p = sub.add_parser(name)
        p.add_argument("pnns", nargs="*", type=int)
        p.add_argument("--timeout", type=float, default=30.0)
    for name in ("kill", "pause", "resume", "socket", "env"):
        p = sub.add_parser(name)
        p.add_argument("pnn", type=int)
    sub.add_parser("status")
    p = sub.add_parser("samba", help="a clustered smbd on every node")
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("pnns", nargs="*", type=int)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument(
        "--no-clustering",
        action="store_true",
        help="clustering = no: each smbd on its own (for comparison)",
    )
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.dir)
    try:
        if args.command == "setup":
            tunables = {}
            for item in args.tunable:
                name, sep, value = item.partition("=")
                if not sep:
                    raise ClusterError(f"--tunable wants NAME=VALUE, not {item!r}")
                tunables[name] = int(value, 0)
            cluster.setup(
                args.nodes,
                args.base,
                args.port,
                tunables,
                args.reclock,
                logFormat=args.log_format,
                metricsPort=args.metrics_port,
            )
        elif args.command == "start":
            cluster.start(args.pnns, timeout=args.timeout)
        elif args.command == "stop":
            cluster.stop(args.pnns, timeout=args.timeout)
        elif args.command == "kill":
            cluster.kill(args.pnn)
        elif args.command == "pause":
            cluster.pause(args.pnn)
        elif args.command == "resume":
            cluster.resume(args.pnn)
        elif args.command == "socket":
            cluster._check(args.pnn)
            print(cluster.socketPath(args.pnn))
        elif args.command == "env":
            cluster._check(args.pnn)
            for key, value in cluster.env(args.pnn).items():
                print(f"export {key}={shlex.quote(value)}")
        elif args.command == "status":
            print(cluster.status())
        elif args.command == "samba":
            for k in args.pnns:
                cluster._check(k)
            samba = ClusteredSamba(cluster, clustering=not args.no_clustering)
            if args.action == "start":
                samba.start(args.pnns, timeout=args.timeout)
            elif args.action == "stop":
                samba.stop(args.pnns, timeout=args.timeout)
            print(samba.status())
    except (ClusterError, SambaError, ValueError) as e:
        print(f"ctdb-cluster: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
