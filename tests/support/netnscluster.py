# -*- test-case-name: tests.integration.test_failover_netns -*-
"""
A CTDB cluster whose nodes live in network namespaces, for public-IP
failover with real networking: our daemons (L{NetnsCluster}) or Samba's
ctdbd 4.17 with its stock C{10.interface} event script
(L{NetnsCtdbdCluster}), in the same network (L{NetnsNetwork}).

The network, made with a L{NetworkLab} (so in namespaces only, removed by
the names it recorded)::

    node K's namespace                    bridge namespace     client namespace
      eth0  10.77.0.(K+1)/24  ----------+    br0    +--------  eth0 10.77.1.200/24
      pub0  (public addresses) ---------+           |
                                        ...  (one eth0 and one pub0 per node)

Nodes talk CTDB over C{eth0}; C{pub0} is the public interface of every
node's C{public_addresses} file (C{10.77.1.1/24 pub0}, C{10.77.1.2/24
pub0}, ...: the public subnet rides the same bridge; with C{ipv6=True}
also C{fd77:1::1/64 pub0}, ..., the client being C{fd77:1::200}), and the
client reaches the public addresses from its own namespace.  Each node namespace
answers ARP only on the interface holding the address asked for
(C{arp_ignore=1}, C{arp_announce=2}), as a host with two interfaces on
one segment must.

Client sockets are unix paths in the cluster's directory (the file system
is shared by all namespaces), so Samba's C{ctdb} tool runs on the host:
L{NetnsCluster.tool}, with L{NetnsCluster.env} as its environment.

A node's death (L{NetnsCluster.crash}) is a machine's death: SIGKILL of
its daemon by the recorded PID, then its links go down and its public
interface forgets its addresses (L{NetnsNetwork.powerOff}), so that its
kernel answers nothing any more; L{NetnsCluster.restart} powers it on and
starts its daemon again.

Helper programs run in the namespaces: L{serviceMain} in each node
namespace, a TCP service on port L{SERVICE_PORT} of every address that
registers each connection with its node as smbd does (C{TCP_CLIENT} on the
node's socket, kept open as long as the connection), echoes lines and
stores and fetches persistent records with Samba's tool; L{clientMain} in
the client namespace, driven by L{NetnsClient}: connections, resets and
probes of an address, each reported with a C{CLOCK_MONOTONIC} time stamp
(the same clock in every process, so comparable with the caller's
C{time.monotonic()}).

Every process is killed by the PID recorded when it was started (ctdbd's
forked helpers by the PIDs found carrying this cluster's marker in their
environment), and the namespaces are deleted by the lab, from the test's
cleanups and at exit.

    lab = NetworkLab.forTest(self)
    network = NetnsNetwork(lab, nodes=3)
    cluster = NetnsCluster(network, tempDir)   # or NetnsCtdbdCluster
    self.addCleanup(cluster.stop)
    cluster.start()
    owners = cluster.waitHosted()              # {public address: pnn}
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import os
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from ctdb.cluster import NodeLayout, syncControl
from ctdb.processes import procStat, tailFile
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.basictypes import encodeConnection
from ctdb.protocols.controls import Control
from ctdb.protocols.publicips import decodePublicIPList
from tests.support.netns import COMMAND_TIMEOUT, LineReader, NetworkLab

#: the source tree (so that the helper programs import this module)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

NODE_IFACE = "eth0"
PUBLIC_IFACE = "pub0"
CLIENT_IFACE = "eth0"
PREFIX = 24
CLIENT_ADDRESS = "10.77.1.200"
#: the public subnet's IPv6 side (with C{ipv6=True}) and the client there
PREFIX6 = 64
CLIENT_ADDRESS6 = "fd77:1::200"
#: the port of the service in every node namespace
SERVICE_PORT = 4445
SAMBA_TOOL = "/usr/bin/ctdb"
CTDBD = "/usr/sbin/ctdbd"
CTDB_EVENTD = "/usr/libexec/ctdb/ctdb-eventd"
INTERFACE_SCRIPT = "/usr/share/ctdb/events/legacy/10.interface.script"
#: the environment variable that marks the processes of one ctdbd node
MARKER = "TXCTDB_NETNS_NODE"


class NetnsClusterError(Exception):
    """A cluster in namespaces could not be set up, started or stopped."""


def nodeAddress(pnn: int) -> str:
    """Node C{pnn}'s CTDB address, on C{eth0}."""
    return f"10.77.0.{pnn + 1}"


def publicAddress(index: int) -> str:
    """The C{index}th public address (from 0)."""
    return f"10.77.1.{index + 1}"


def publicAddress6(index: int) -> str:
    """The C{index}th public IPv6 address (from 0)."""
    return f"fd77:1::{index + 1}"


def clientAddressFor(address: str) -> str:
    """The client's address of the family of C{address}."""
    return CLIENT_ADDRESS6 if ":" in address else CLIENT_ADDRESS


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _waitUntil(
    condition: Callable[[], object],
    timeout: float,
    what: Callable[[], str] | str,
    interval: float = 0.02,
) -> Any:
    """Poll C{condition} until it returns something true (returned) or
    C{timeout} seconds pass (L{NetnsClusterError} saying C{what})."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = what() if callable(what) else what
            raise NetnsClusterError(f"not within {timeout:.0f} s: {text}")
        time.sleep(interval)


# -- the network ---------------------------------------------------------------------


class NetnsNetwork:
    """
    The namespaces of a cluster of C{nodes}: a bridge, one namespace per
    node (C{eth0} with its node address, C{pub0} for public addresses),
    and a client namespace on the public subnet.

    With C{ipv6}, the public subnet carries IPv6 too: as many public
    addresses in C{fd77:1::/64} follow the IPv4 ones, and the client has
    L{CLIENT_ADDRESS6} as well.

    @ivar publicAddresses: the public addresses every node may host.
    """

    def __init__(
        self,
        lab: NetworkLab,
        nodes: int = 3,
        publicCount: int | None = None,
        ipv6: bool = False,
    ) -> None:
        if not 1 <= nodes <= 9:
            raise NetnsClusterError("1 to 9 nodes")
        self.lab = lab
        self.size = nodes
        count = nodes if publicCount is None else publicCount
        self.publicAddresses = [publicAddress(i) for i in range(count)]
        if ipv6:
            self.publicAddresses += [publicAddress6(i) for i in range(count)]
        self.bridge = lab.addBridge()
        self.namespaces: list[str] = []
        for k in range(nodes):
            ns = lab.addNamespace()
            self.namespaces.append(ns)
            lab.connect(ns, self.bridge, NODE_IFACE)
            lab.addAddress(ns, NODE_IFACE, f"{nodeAddress(k)}/{PREFIX}")
            lab.connect(ns, self.bridge, PUBLIC_IFACE)
            # two interfaces on one segment: answer ARP only for the
            # addresses of the interface asked, and announce with them
            self.sysctl(ns, "net/ipv4/conf/all/arp_ignore", "1")
            self.sysctl(ns, "net/ipv4/conf/all/arp_announce", "2")
        self.client = lab.addNamespace()
        lab.connect(self.client, self.bridge, CLIENT_IFACE)
        lab.addAddress(self.client, CLIENT_IFACE, f"{CLIENT_ADDRESS}/{PREFIX}")
        if ipv6:
            lab.addAddress(self.client, CLIENT_IFACE, f"{CLIENT_ADDRESS6}/{PREFIX6}")

    def sysctl(self, namespace: str, key: str, value: str) -> None:
        """Write C{value} to /proc/sys/C{key} inside C{namespace}."""
        self.lab.run(
            namespace, ["sh", "-c", f"echo {value} > /proc/sys/{key}"], check=True
        )

    def namespace(self, pnn: int) -> str:
        return self.namespaces[pnn]

    def publicMac(self, pnn: int) -> str:
        """The MAC address of node C{pnn}'s public interface."""
        return self.lab.macAddress(self.namespaces[pnn], PUBLIC_IFACE)

    def addressesOf(self, pnn: int) -> list[str]:
        """The addresses on node C{pnn}'s public interface, as the kernel
        has them (C{ip addr}; IPv6 link-local ones left out)."""
        out = self.lab.ip(
            "-j", "addr", "show", "dev", PUBLIC_IFACE, namespace=self.namespaces[pnn]
        )
        found = []
        for link in json.loads(out or "[]"):
            for info in link.get("addr_info", []):
                if info.get("scope") != "link":
                    found.append(str(info["local"]))
        return found

    def holders(self) -> dict[str, list[int]]:
        """Each public address -> the nodes whose public interface has it."""
        held: dict[str, list[int]] = {a: [] for a in self.publicAddresses}
        for k in range(self.size):
            for address in self.addressesOf(k):
                held.setdefault(address, []).append(k)
        return held

    def overlaps(self) -> dict[str, list[int]]:
        """
        The public addresses that were on two nodes' public interfaces at
        one moment: address -> those nodes.  The namespaces can only be read
        one after another, so a move from node 0 to node 2 between the
        reads of 0 and 2 would look like an overlap; each node that had an
        address is read once more after the later ones were read, and an
        overlap counts only if it still has it (then both had it when the
        later node was read; an address is never taken off and put back on
        one node within a few milliseconds).
        """
        first = [set(self.addressesOf(k)) for k in range(self.size)]
        found: dict[str, list[int]] = {}
        again: dict[int, set[str]] = {}
        for k in range(self.size):
            for address in first[k]:
                later = [j for j in range(k + 1, self.size) if address in first[j]]
                if not later:
                    continue
                if k not in again:
                    again[k] = set(self.addressesOf(k))
                if address in again[k]:
                    found.setdefault(address, [k]).extend(
                        j for j in later if j not in found.get(address, [])
                    )
        return {a: sorted(set(n)) for a, n in found.items()}

    def linkUp(self, pnn: int) -> bool:
        out = self.lab.ip(
            "-j", "link", "show", "dev", PUBLIC_IFACE, namespace=self.namespaces[pnn]
        )
        return "UP" in json.loads(out)[0].get("flags", [])

    def powerOff(self, pnn: int) -> None:
        """Node C{pnn}'s machine is gone: its links down, its public
        interface without addresses (what a rebooted host has)."""
        ns = self.namespaces[pnn]
        self.lab.setLink(ns, PUBLIC_IFACE, False)
        self.lab.setLink(ns, NODE_IFACE, False)
        self.lab.ip("addr", "flush", "dev", PUBLIC_IFACE, namespace=ns)

    def powerOn(self, pnn: int) -> None:
        ns = self.namespaces[pnn]
        self.lab.setLink(ns, NODE_IFACE, True)
        self.lab.setLink(ns, PUBLIC_IFACE, True)

    def publicAddressesText(self) -> str:
        """A node's public_addresses file."""
        return "".join(
            f"{a}/{PREFIX6 if ':' in a else PREFIX} {PUBLIC_IFACE}\n"
            for a in self.publicAddresses
        )

    def nodesText(self) -> str:
        return "".join(f"{nodeAddress(k)}\n" for k in range(self.size))


# -- clusters ------------------------------------------------------------------------


class _Base(NodeLayout):
    """What both kinds of cluster share: layout, Samba's tool, state."""

    kind = ""

    def __init__(
        self,
        network: NetnsNetwork,
        directory: str,
        *,
        tunables: dict[str, int] | None = None,
        logLevel: str = "NOTICE",
    ) -> None:
        self.network = network
        self.lab = network.lab
        self.directory = os.path.abspath(directory)
        self.size = network.size
        self.tunables = dict(tunables or {})
        self.logLevel = logLevel
        #: the service of each node namespace (L{startService})
        self.services: dict[int, LineReader] = {}
        self._atexit = False

    # -- layout and tool --------------------------------------------------------

    def address(self, pnn: int) -> str:
        return nodeAddress(pnn)

    def namespace(self, pnn: int) -> str:
        return self.network.namespace(pnn)

    def env(self, pnn: int) -> dict[str, str]:
        """The environment of Samba's C{ctdb} tool for node C{pnn}."""
        return {"CTDB_BASE": self.nodeDir(pnn), "CTDB_SOCKET": self.socketPath(pnn)}

    def tool(
        self, pnn: int, *args: str, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run Samba's C{ctdb} tool, on the host, against node C{pnn}."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CTDB_") and k != MARKER
        }
        env.update(self.env(pnn))
        return subprocess.run(
            [SAMBA_TOOL, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def ipAll(self, pnn: int) -> dict[str, int]:
        """C{ctdb -X ip all} through node C{pnn}: address -> node (-1 for
        none)."""
        done = self.tool(pnn, "-X", "ip", "all")
        if done.returncode != 0:
            raise NetnsClusterError(
                f"ctdb ip all via node {pnn} failed: {done.stdout}{done.stderr}"
            )
        result = {}
        for line in done.stdout.splitlines()[1:]:
            fields = line.strip("|").split("|")
            if len(fields) >= 2:
                result[fields[0]] = int(fields[1])
        return result

    def publicIPs(self, pnn: int) -> dict[str, int]:
        """GET_PUBLIC_IPS of node C{pnn} (what it believes): address ->
        node, -1 for none."""
        reply = syncControl(self.socketPath(pnn), Control.GET_PUBLIC_IPS, timeout=2)
        if reply.status != 0:
            raise NetnsClusterError(f"GET_PUBLIC_IPS of node {pnn}: {reply.status}")
        out = {}
        for ip in decodePublicIPList(reply.data):
            pnnValue = ip.pnn - (1 << 32) if ip.pnn >= 1 << 31 else ip.pnn
            out[ip.address] = pnnValue
        return out

    # -- processes (per kind) -------------------------------------------------------

    def pid(self, pnn: int) -> int | None:
        raise NotImplementedError

    def startNode(self, pnn: int) -> None:
        raise NotImplementedError

    def kill(self, pnn: int) -> None:
        """SIGKILL node C{pnn}'s daemon (by its recorded PID) and wait until
        it is gone."""
        raise NotImplementedError

    def _stopDaemons(self) -> None:
        raise NotImplementedError

    def running(self) -> list[int]:
        return [k for k in range(self.size) if self.pid(k) is not None]

    # -- life cycle -------------------------------------------------------------------

    def _registerExit(self) -> None:
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True

    def start(self, timeout: float = 40.0, services: bool = True) -> None:
        """Start every node and, with C{services}, the TCP service in every
        node namespace; wait until the cluster is ready and every public
        address is hosted once.  A failed start stops what it started."""
        self._registerExit()
        try:
            for k in range(self.size):
                self.startNode(k)
            if services:
                for k in range(self.size):
                    self.startService(k)
            self.waitReady(timeout)
            self.waitHosted(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the daemons and services (by their recorded PIDs); safe to
        call again.  The namespaces are the lab's to remove."""
        try:
            self._stopDaemons()
        finally:
            services, self.services = self.services, {}
            for reader in services.values():
                _endProcess(reader.process)
            if self._atexit:
                atexit.unregister(self.stop)
                self._atexit = False

    def crash(self, pnn: int) -> float:
        """Node C{pnn}'s machine dies: SIGKILL of its daemon, then its links
        go down (L{NetnsNetwork.powerOff}).  Returns the monotonic time of
        the kill."""
        when = self.killNow(pnn)
        self.network.powerOff(pnn)
        return when

    def killNow(self, pnn: int) -> float:
        """L{kill}, returning the monotonic time just before the signal."""
        when = time.monotonic()
        self.kill(pnn)
        return when

    def restart(self, pnn: int, timeout: float = 40.0) -> None:
        """Power node C{pnn} on again, start its daemon, and wait until the
        cluster is ready and every address hosted once."""
        self.network.powerOn(pnn)
        self.startNode(pnn)
        self.waitReady(timeout)
        self.waitHosted(timeout)

    # -- state --------------------------------------------------------------------------

    def _nodeProblem(self, pnn: int, alive: Sequence[int]) -> str:
        try:
            nodemap = self.nodeMap(pnn)
            mode = self.recMode(pnn)
        except OSError as e:
            return f"node {pnn}: {e}"
        bad = [n.pnn for n in nodemap if n.pnn in alive and n.flags & self._badFlags()]
        if bad:
            flags = {n.pnn: hex(n.flags) for n in nodemap}
            return f"node {pnn} sees node(s) {bad} not OK ({flags})"
        if mode != C.CTDB_RECOVERY_NORMAL:
            return f"node {pnn} is in recovery"
        return ""

    def _badFlags(self) -> int:
        return C.NODE_FLAGS_DISCONNECTED

    def waitReady(self, timeout: float = 40.0) -> None:
        """Until every running node sees every running node connected (and
        healthy, for ctdbd) and is in recovery mode NORMAL."""
        problem = ["no node running"]

        def ready() -> bool:
            alive = self.running()
            self._checkAlive()
            problem[0] = "" if alive else "no node running"
            for k in alive:
                problem[0] = self._nodeProblem(k, alive)
                if problem[0]:
                    return False
            return bool(alive)

        _waitUntil(ready, timeout, lambda: problem[0], interval=0.05)

    def _checkAlive(self) -> None:
        """Raise if a node that should run has exited."""

    def hostingProblem(self) -> str:
        """Why the public addresses are not each hosted by exactly one
        running node that every running node agrees on ("" if they are)."""
        alive = self.running()
        held = self.network.holders()
        for address, nodes in held.items():
            if address not in self.network.publicAddresses:
                return f"unexpected address {address} on nodes {nodes}"
            if len(nodes) != 1:
                return f"{address} is on the public interface of nodes {nodes}"
            if nodes[0] not in alive:
                return f"{address} is on node {nodes[0]}, which is not running"
        for k in alive:
            try:
                view = self.publicIPs(k)
            except (OSError, NetnsClusterError) as e:
                return f"node {k}: {e}"
            for address, nodes in held.items():
                if view.get(address) != nodes[0]:
                    return (
                        f"node {k} says {address} is on node {view.get(address)}, "
                        f"the kernels say {nodes}"
                    )
        return ""

    def owners(self) -> dict[str, int]:
        """Public address -> the node whose public interface has it (only
        addresses held by exactly one node)."""
        return {a: n[0] for a, n in self.network.holders().items() if len(n) == 1}

    def waitHosted(self, timeout: float = 40.0) -> dict[str, int]:
        """Until L{hostingProblem} finds nothing; returns L{owners}."""
        problem = [""]

        def hosted() -> bool:
            problem[0] = self.hostingProblem()
            return not problem[0]

        _waitUntil(hosted, timeout, lambda: problem[0], interval=0.05)
        return self.owners()

    def tail(self, pnn: int, lines: int = 30) -> str:
        return tailFile(self.logFile(pnn), lines)

    # -- services ----------------------------------------------------------------------

    def startService(self, pnn: int) -> LineReader:
        """The TCP service (L{serviceMain}) in node C{pnn}'s namespace,
        talking to its node; ready when this returns."""
        old = self.services.pop(pnn, None)
        if old is not None:
            _endProcess(old.process)
        env = dict(os.environ)
        env.pop(MARKER, None)
        env.update(self.env(pnn))
        env["PYTHONPATH"] = ROOT
        process = self.lab.spawn(
            self.namespace(pnn),
            _programArgv("serviceMain", str(SERVICE_PORT)),
            env=env,
            stderr=subprocess.DEVNULL,
        )
        reader = LineReader(process)
        self.services[pnn] = reader
        line = reader.readLine(COMMAND_TIMEOUT)
        if line != "ready":
            raise NetnsClusterError(f"service in node {pnn}'s namespace: {line!r}")
        return reader

    def accepted(self, pnn: int, client: tuple[str, int], timeout: float = 10.0) -> str:
        """Wait for node C{pnn}'s service to accept C{client}'s connection;
        the status of its TCP_CLIENT registration ("0" when the node took
        it, or C{error:...})."""
        wanted = f"{client[0]}:{client[1]}"
        deadline = time.monotonic() + timeout
        while True:
            line = self.services[pnn].readLine(max(0.0, deadline - time.monotonic()))
            if line is None:
                raise NetnsClusterError(
                    f"node {pnn}'s service did not accept {wanted} in {timeout} s"
                )
            words = line.split()
            if words[:2] == ["accepted", wanted]:
                return words[3]

    def client(self) -> NetnsClient:
        """A client program in the client namespace (ended by the lab)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT
        process = self.lab.spawn(
            self.network.client,
            _programArgv("clientMain"),
            env=env,
            stderr=subprocess.DEVNULL,
        )
        client = NetnsClient(process)
        line = client.readLine(COMMAND_TIMEOUT)
        if line != "ready":
            raise NetnsClusterError(f"client: {line!r}")
        return client


def _programArgv(function: str, *args: str) -> list[str]:
    source = (
        f"import sys; from tests.support.netnscluster import {function}; "
        f"{function}(sys.argv[1:])"
    )
    return [sys.executable, "-c", source, *args]


def _endProcess(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGKILL a process we started (and its group: it leads one), by
    the PID we recorded, and reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)


class NetnsCluster(_Base):
    """
    Our daemons (C{twistd -n ctdb}), one per node namespace, with the
    default settings but for what the caller passes in C{tunables}: the
    daemon itself puts public addresses on C{pub0} (its
    L{ctdb.takeover.system.LinuxAddressSystem}).
    """

    kind = "ours"

    def __init__(
        self,
        network: NetnsNetwork,
        directory: str,
        *,
        tunables: dict[str, int] | None = None,
        logLevel: str = "NOTICE",
    ) -> None:
        super().__init__(network, directory, tunables=tunables, logLevel=logLevel)
        self._daemons: dict[int, subprocess.Popen[bytes]] = {}
        self.setup()

    def setup(self) -> None:
        for k in range(self.size):
            d = self.nodeDir(k)
            for sub in ("run", "db/volatile", "db/persistent", "db/state"):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            if len(self.socketPath(k).encode()) >= 108:
                raise NetnsClusterError(f"socket path too long: {self.socketPath(k)}")
            with open(os.path.join(d, "nodes"), "w") as f:
                f.write(self.network.nodesText())
            with open(os.path.join(d, "public_addresses"), "w") as f:
                f.write(self.network.publicAddressesText())

    def argv(self, pnn: int) -> list[str]:
        """The daemon's command line (run inside node C{pnn}'s namespace)."""
        d = self.nodeDir(pnn)
        args = [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile=",
            "ctdb",
            "--nodes", os.path.join(d, "nodes"),
            "--address", self.address(pnn),
            "--socket", self.socketPath(pnn),
            "--dbdir", os.path.join(d, "db", "volatile"),
            "--dbdir-persistent", os.path.join(d, "db", "persistent"),
            "--dbdir-state", os.path.join(d, "db", "state"),
            "--log-file", self.logFile(pnn),
            "--log-level", self.logLevel,
            "--public-addresses", os.path.join(d, "public_addresses"),
        ]  # fmt: skip
        for name, value in self.tunables.items():
            args += ["--tunable", f"{name}={value}"]
        return args

    def startNode(self, pnn: int) -> None:
        if self.pid(pnn) is not None:
            return
        self._registerExit()
        d = self.nodeDir(pnn)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CTDB_") and k != MARKER
        }
        with open(os.path.join(d, "stdout.log"), "ab") as out:
            # ip netns exec execs the daemon: the PID is twistd's own
            process = self.lab.spawn(
                self.namespace(pnn),
                self.argv(pnn),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=d,
                env=env,
            )
        self._daemons[pnn] = process
        with open(self.pidFile(pnn), "w") as f:
            f.write(f"{process.pid}\n")

    def pid(self, pnn: int) -> int | None:
        process = self._daemons.get(pnn)
        if process is None or process.poll() is not None:
            return None
        return process.pid

    def _checkAlive(self) -> None:
        for k, process in self._daemons.items():
            if process.poll() is not None and process.returncode != -signal.SIGKILL:
                raise NetnsClusterError(
                    f"node {k} exited ({process.returncode}); see "
                    f"{self.logFile(k)}:\n{self.tail(k)}\n"
                    + tailFile(os.path.join(self.nodeDir(k), "stdout.log"), 20)
                )

    def kill(self, pnn: int) -> None:
        process = self._daemons.get(pnn)
        if process is None or process.poll() is not None:
            raise NetnsClusterError(f"node {pnn} is not running")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(COMMAND_TIMEOUT)

    def _stopDaemons(self) -> None:
        daemons, self._daemons = self._daemons, {}
        for process in daemons.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        for process in daemons.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
            _endProcess(process)


class NetnsCtdbdCluster(_Base):
    """
    Samba's ctdbd 4.17, one per node namespace, as on a real host: not in
    test mode (so it checks and announces its public addresses), with the
    stock C{10.interface} event script enabled (it adds and removes the
    addresses with C{ip addr}) and C{ctdb-eventd}.

    ctdbd outside test mode reads C{/etc/ctdb}, writes C{/run/ctdb} and
    C{/var/lib/ctdb}: each node's daemon is started inside a mount
    namespace of its own (C{ip netns exec} makes one) with those three
    bound to its own directories C{etc}, C{run} and C{var}.  The mount
    point C{/run/ctdb} is created on the host when missing (the empty
    runtime directory of Debian's ctdb package; it is left there).  Samba's
    tool on the host reaches the node through C{CTDB_SOCKET}.

    ctdbd forks and starts a session of its own; its processes (the
    daemon, the recovery daemon, ctdb-eventd, scripts, helpers) carry
    C{TXCTDB_NETNS_NODE=<node directory>} in their environment, are found
    by it in /proc and are signalled by the PIDs so found (checked again
    by their start times).

    C{ctdbd} may name another daemon that behaves as ctdbd: our drop-in
    (C{<venv>/bin/ctdbd}, kind C{"drop-in"}), run the same way.
    """

    kind = "ctdbd"

    def __init__(
        self,
        network: NetnsNetwork,
        directory: str,
        *,
        tunables: dict[str, int] | None = None,
        logLevel: str = "NOTICE",
        ctdbd: str = CTDBD,
    ) -> None:
        super().__init__(network, directory, tunables=tunables, logLevel=logLevel)
        self.ctdbd = ctdbd
        if ctdbd != CTDBD:
            self.kind = "drop-in"
        for path in (ctdbd, CTDB_EVENTD, INTERFACE_SCRIPT):
            if not os.path.exists(path):
                raise NetnsClusterError(f"{path} is missing (apt-get install ctdb)")
        #: pnn -> {pid: start time} of every process of that node seen
        self._procs: dict[int, dict[int, int]] = {k: {} for k in range(self.size)}
        self._expected: set[int] = set()
        self.setup()

    def etcDir(self, pnn: int) -> str:
        return os.path.join(self.nodeDir(pnn), "etc")

    def env(self, pnn: int) -> dict[str, str]:
        # the tool in test mode reads CTDB_BASE as its /etc/ctdb
        return {
            "CTDB_TEST_MODE": "yes",
            "CTDB_BASE": self.etcDir(pnn),
            "CTDB_SOCKET": self.socketPath(pnn),
        }

    def setup(self) -> None:
        for k in range(self.size):
            d = self.nodeDir(k)
            etc = self.etcDir(k)
            for sub in (
                "run",
                "var",
                "db/volatile",
                "db/persistent",
                "db/state",
                "etc/events/legacy",
                "etc/events/notification",
            ):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            if len(self.socketPath(k).encode()) >= 108:
                raise NetnsClusterError(f"socket path too long: {self.socketPath(k)}")
            files = {
                "nodes": self.network.nodesText(),
                "public_addresses": self.network.publicAddressesText(),
                "notify.sh": "#!/bin/sh\nexit 0\n",
                "ctdb.conf": (
                    "[logging]\n"
                    f"\tlocation = file:{self.logFile(k)}\n"
                    f"\tlog level = {self.logLevel}\n"
                    "[cluster]\n"
                    f"\tnode address = {self.address(k)}\n"
                    "[database]\n"
                    f"\tvolatile database directory = {d}/db/volatile\n"
                    f"\tpersistent database directory = {d}/db/persistent\n"
                    f"\tstate database directory = {d}/db/state\n"
                    "[legacy]\n"
                    "\trealtime scheduling = false\n"
                ),
                "ctdb.tunables": "".join(
                    f"{name}={value}\n" for name, value in self.tunables.items()
                ),
            }
            for name, text in files.items():
                with open(os.path.join(etc, name), "w") as f:
                    f.write(text)
            os.chmod(os.path.join(etc, "notify.sh"), 0o755)
            # the scripts' shell library and options, as installed
            for name in ("functions", "script.options"):
                source = os.path.join("/etc/ctdb", name)
                if os.path.exists(source):
                    shutil.copy(source, os.path.join(etc, name))
            link = os.path.join(etc, "events", "legacy", "10.interface.script")
            if not os.path.lexists(link):
                os.symlink(INTERFACE_SCRIPT, link)

    def _startScript(self, pnn: int) -> str:
        d = self.nodeDir(pnn)
        binds = [
            (self.etcDir(pnn), "/etc/ctdb"),
            (os.path.join(d, "run"), "/run/ctdb"),
            (os.path.join(d, "var"), "/var/lib/ctdb"),
        ]
        mounts = " && ".join(f"mount --bind '{a}' '{b}'" for a, b in binds)
        return f"{mounts} && exec '{self.ctdbd}'"

    def startNode(self, pnn: int) -> None:
        if self.pid(pnn) is not None:
            return
        self._registerExit()
        # an eventd (or helper) left from a SIGKILLed ctdbd stops a new one
        self._reap(pnn, grace=1.0)
        os.makedirs("/run/ctdb", exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pidFile(pnn))
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CTDB_") and k != MARKER
        }
        env[MARKER] = self.nodeDir(pnn)
        with open(os.path.join(self.nodeDir(pnn), "stdout.log"), "ab") as out:
            process = subprocess.Popen(
                self.lab.command(
                    self.namespace(pnn), ["sh", "-c", self._startScript(pnn)]
                ),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.nodeDir(pnn),
            )
        # ctdbd forks into the background; the parent returns at once
        try:
            rc = process.wait(COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            _endProcess(process)
            raise NetnsClusterError(f"node {pnn}: ctdbd did not fork") from None
        if rc != 0:
            raise NetnsClusterError(
                f"node {pnn}: ctdbd exited with {rc}:\n{self.tail(pnn)}\n"
                + tailFile(os.path.join(self.nodeDir(pnn), "stdout.log"), 20)
            )
        self._expected.add(pnn)
        _waitUntil(
            lambda: self.pid(pnn),
            COMMAND_TIMEOUT,
            lambda: f"node {pnn}: no ctdbd pid file\n{self.tail(pnn)}",
        )
        self._scan(pnn)

    # -- processes ------------------------------------------------------------------

    def _ours(self, pnn: int, pid: int) -> bool:
        marker = f"{MARKER}={self.nodeDir(pnn)}".encode()
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                return marker in f.read().split(b"\0")
        except OSError:
            return False

    def pid(self, pnn: int) -> int | None:
        """The PID in node C{pnn}'s pid file, if that is still its ctdbd."""
        try:
            with open(self.pidFile(pnn)) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        st = procStat(pid)
        if st is None or st.state in ("Z", "X") or not self._ours(pnn, pid):
            return None
        return pid

    def _scan(self, pnn: int) -> dict[int, int]:
        """Record, and return, every live process carrying node C{pnn}'s
        marker: pid -> start time."""
        seen = self._procs[pnn]
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            st = procStat(pid)
            if st is None or st.state in ("Z", "X"):
                continue
            if pid in seen and seen[pid] == st.starttime:
                continue
            if self._ours(pnn, pid):
                seen[pid] = st.starttime
        live = {}
        for pid, start in list(seen.items()):
            st = procStat(pid)
            if st is None or st.state in ("Z", "X") or st.starttime != start:
                del seen[pid]
            else:
                live[pid] = start
        return live

    def _signal(self, procs: dict[int, int], sig: int) -> None:
        for pid, start in procs.items():
            st = procStat(pid)
            if st is not None and st.starttime == start:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def _waitGone(self, procs: dict[int, int], timeout: float) -> dict[int, int]:
        deadline = time.monotonic() + timeout
        while True:
            left = {}
            for pid, start in procs.items():
                st = procStat(pid)
                if st is not None and st.starttime == start and st.state not in "ZX":
                    left[pid] = start
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.02)

    def _reap(self, pnn: int, grace: float) -> None:
        """End every recorded process of node C{pnn}: SIGTERM, C{grace}
        seconds, SIGKILL."""
        live = self._scan(pnn)
        if not live:
            return
        self._signal(live, signal.SIGTERM)
        left = self._waitGone(live, grace)
        if left:
            self._signal(left, signal.SIGKILL)
            left = self._waitGone(left, 5.0)
        if left:
            raise NetnsClusterError(f"node {pnn}: {sorted(left)} survived SIGKILL")
        self._procs[pnn].clear()

    def _checkAlive(self) -> None:
        for k in sorted(self._expected):
            if self.pid(k) is None:
                raise NetnsClusterError(
                    f"ctdbd of node {k} exited; see {self.logFile(k)}:\n{self.tail(k)}"
                )
            self._scan(k)

    def _badFlags(self) -> int:
        # ctdbd's nodes are usable once healthy (a monitor event passed);
        # a node disabled by the administrator is ready as it is
        return 0xFFFFFFFF & ~C.NODE_FLAGS_PERMANENTLY_DISABLED

    def kill(self, pnn: int) -> None:
        """SIGKILL node C{pnn}'s ctdbd; its helpers notice on their own
        (and are reaped at its restart or the cluster's stop)."""
        self._scan(pnn)
        pid = self.pid(pnn)
        if pid is None:
            raise NetnsClusterError(f"node {pnn} is not running")
        start = self._procs[pnn][pid]
        self._expected.discard(pnn)
        os.kill(pid, signal.SIGKILL)
        if self._waitGone({pid: start}, COMMAND_TIMEOUT):
            raise NetnsClusterError(f"node {pnn}: ctdbd {pid} survived SIGKILL")

    def crash(self, pnn: int) -> float:
        """As L{_Base.crash}; then the rest of the dead node's processes
        (ctdb-eventd and its scripts) go too, as on a machine that died."""
        when = super().crash(pnn)
        live = self._scan(pnn)
        self._signal(live, signal.SIGKILL)
        self._waitGone(live, 5.0)
        return when

    def _stopDaemons(self) -> None:
        self._expected.clear()
        for k in range(self.size):
            self._scan(k)
            pid = self.pid(k)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        errors = []
        for k in range(self.size):
            try:
                pid = self.pid(k)
                if pid is not None:
                    self._waitGone({pid: self._procs[k].get(pid, 0)}, 10.0)
                self._reap(k, grace=2.0)
            except NetnsClusterError as e:
                errors.append(str(e))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.pidFile(k))
        if errors:
            raise NetnsClusterError("; ".join(errors))


# -- the client program's driver -------------------------------------------------------


class NetnsClient(LineReader):
    """
    The client program (L{clientMain}) in the client namespace.  Its
    events come as lines (C{connected ID PORT T}, C{reset ID T}, ...);
    those not asked for yet are kept for a later L{expect}.
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        super().__init__(process)
        self.backlog: list[list[str]] = []

    def expect(
        self, predicate: Callable[[list[str]], bool], timeout: float
    ) -> list[str] | None:
        """The first event (split into words) for which C{predicate} holds,
        from the backlog or within C{timeout} seconds; None if none."""
        for i, words in enumerate(self.backlog):
            if predicate(words):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            line = self.readLine(max(0.0, deadline - time.monotonic()))
            if line is None:
                return None
            words = line.split()
            if predicate(words):
                return words
            self.backlog.append(words)

    def connect(self, name: str, address: str, port: int = SERVICE_PORT) -> int:
        """Open connection C{name} to C{address}:C{port}; its local port."""
        self.writeLine(f"connect {name} {address} {port}")
        words = self.expect(
            lambda w: w[0] in ("connected", "failed") and w[1] == name, 10.0
        )
        if words is None or words[0] != "connected":
            raise NetnsClusterError(f"connection {name} to {address}: {words}")
        return int(words[2])

    def send(self, name: str, text: str, timeout: float = 10.0) -> str:
        """Send a line on connection C{name}; the service's answer."""
        self.writeLine(f"send {name} {text}")
        words = self.expect(
            lambda w: w[0] in ("line", "reset", "closed", "error") and w[1] == name,
            timeout,
        )
        if words is None or words[0] != "line":
            raise NetnsClusterError(f"send on {name}: {words}")
        return " ".join(words[2:])

    def probe(self, address: str, port: int = SERVICE_PORT) -> None:
        """Start probing C{address}: a new connection attempt every 10 ms
        until one succeeds (an C{answered ADDRESS T} event)."""
        self.writeLine(f"probe {address} {port}")

    def close(self, name: str) -> None:
        self.writeLine(f"close {name}")


# -- helper programs (run in the namespaces) ---------------------------------------------


def _say(*words: object) -> None:
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def _errName(code: int) -> str:
    return errno.errorcode.get(code, str(code))


def registerTcpClient(
    path: str, client: tuple[str, int], server: tuple[str, int], timeout: float = 5.0
) -> tuple[socket.socket, int]:
    """What smbd does for each TCP connection it accepts on a public
    address (C{ctdbd_register_ips}): a TCP_CLIENT control on a connection
    to its node's socket, which must stay open as long as the TCP
    connection (the node forgets the tickle when it closes).  Returns the
    open socket and the control's status."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        req = P.ReqControl(
            P.Header(
                P.Operation.REQ_CONTROL, P.CTDB_CURRENT_NODE, P.CTDB_UNKNOWN_PNN, 7
            ),
            Control.TCP_CLIENT,
            0,
            0,
            0,
            encodeConnection(client, server),
        )
        s.sendall(req.encode())
        buf = b""
        while True:
            if len(buf) >= 4:
                (length,) = struct.unpack_from("<I", buf)
                if len(buf) >= length:
                    pkt = P.decodePacket(buf[:length])
                    buf = buf[length:]
                    if isinstance(pkt, P.ReplyControl) and pkt.header.reqid == 7:
                        s.settimeout(None)
                        return s, pkt.status
                    continue
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("the node closed its socket")
            buf += chunk
    except BaseException:
        s.close()
        raise


def _toolLine(args: Sequence[str]) -> str:
    env = dict(os.environ)
    done = subprocess.run(
        [SAMBA_TOOL, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if done.returncode != 0:
        return "failed " + " ".join((done.stdout + done.stderr).split())
    return "ok " + " ".join(done.stdout.split())


def serviceMain(argv: Sequence[str]) -> None:
    """
    The service in a node namespace: listen on port C{argv[0]} of every
    address (IPv4 and IPv6); each
    accepted connection is registered with the node (C{TCP_CLIENT} on
    C{$CTDB_SOCKET}, as smbd; reported as C{accepted CLIENT SERVER
    STATUS}), then answers each line: C{put DB KEY VALUE} (C{ctdb pstore}),
    C{get DB KEY} (C{ctdb pfetch}), anything else echoed.  Ends when its
    stdin closes.
    """
    port = int(argv[0])
    path = os.environ["CTDB_SOCKET"]
    sel = selectors.DefaultSelector()
    for family, anywhere in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind((anywhere, port))
        listener.listen(64)
        sel.register(listener, selectors.EVENT_READ, "listen")
    sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
    served: dict[socket.socket, tuple[socket.socket | None, bytes]] = {}
    _say("ready")

    def drop(conn: socket.socket) -> None:
        registration, _ = served.pop(conn)
        sel.unregister(conn)
        conn.close()
        if registration is not None:
            registration.close()

    while True:
        for key, _ in sel.select():
            if key.data == "stdin":
                if not os.read(sys.stdin.fileno(), 4096):
                    return
            elif key.data == "listen":
                conn, peer = cast(socket.socket, key.fileobj).accept()
                local = conn.getsockname()
                registration: socket.socket | None = None
                try:
                    registration, status = registerTcpClient(
                        path, (peer[0], peer[1]), (local[0], local[1])
                    )
                    result = str(status)
                except OSError as e:
                    result = f"error:{e}"
                _say(
                    "accepted", f"{peer[0]}:{peer[1]}", f"{local[0]}:{local[1]}", result
                )
                served[conn] = (registration, b"")
                sel.register(conn, selectors.EVENT_READ, "conn")
            else:
                conn = cast(socket.socket, key.fileobj)
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    drop(conn)
                    continue
                registration, buf = served[conn]
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    words = line.decode(errors="replace").split()
                    if len(words) == 4 and words[0] == "put":
                        answer = _toolLine(["pstore", *words[1:]])
                    elif len(words) == 3 and words[0] == "get":
                        answer = _toolLine(["pfetch", *words[1:]])
                    else:
                        answer = "echo " + " ".join(words)
                    with contextlib.suppress(OSError):
                        conn.sendall(answer.encode() + b"\n")
                served[conn] = (registration, buf)


#: seconds between two connection attempts of a probe, and each one's life
PROBE_INTERVAL = 0.01
PROBE_LIFETIME = 1.0


def clientMain(argv: Sequence[str]) -> None:
    """
    The client program: reads commands on stdin (C{connect NAME ADDRESS
    PORT}, C{send NAME TEXT}, C{close NAME}, C{probe ADDRESS PORT}) and
    prints events, each with C{time.monotonic()} where it matters:
    C{connected NAME LOCALPORT T}, C{failed NAME ERROR T}, C{line NAME
    TEXT}, C{reset NAME T} (ECONNRESET), C{closed NAME T} (end of stream),
    C{error NAME ERROR T}, C{answered ADDRESS T}.
    """
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ, ("stdin", ""))
    conns: dict[str, socket.socket] = {}
    buffers: dict[str, bytes] = {}
    connecting: dict[str, float] = {}
    probes: dict[socket.socket, tuple[str, int, float]] = {}
    probing: list[tuple[str, int]] = []
    lastProbe = 0.0
    stdinBuffer = b""
    _say("ready")

    def endConn(name: str) -> None:
        s = conns.pop(name, None)
        connecting.pop(name, None)
        if s is not None:
            sel.unregister(s)
            s.close()

    def command(words: list[str]) -> None:
        if words[0] == "connect":
            name, address, port = words[1], words[2], int(words[3])
            s = socket.socket(_family(address), socket.SOCK_STREAM)
            s.setblocking(False)
            code = s.connect_ex((address, port))
            if code not in (0, errno.EINPROGRESS):
                _say("failed", name, _errName(code), time.monotonic())
                s.close()
                return
            conns[name] = s
            buffers[name] = b""
            connecting[name] = time.monotonic()
            sel.register(s, selectors.EVENT_WRITE, ("conn", name))
        elif words[0] == "send":
            s = conns[words[1]]
            try:
                s.sendall((" ".join(words[2:]) + "\n").encode())
            except OSError as e:
                _say("error", words[1], _errName(e.errno or 0), time.monotonic())
        elif words[0] == "close":
            endConn(words[1])
        elif words[0] == "probe":
            probing.append((words[1], int(words[2])))

    while True:
        now = time.monotonic()
        if probing and now - lastProbe >= PROBE_INTERVAL:
            lastProbe = now
            for address, port in probing:
                s = socket.socket(_family(address), socket.SOCK_STREAM)
                s.setblocking(False)
                code = s.connect_ex((address, port))
                if code in (0, errno.EINPROGRESS):
                    probes[s] = (address, port, now)
                    sel.register(s, selectors.EVENT_WRITE, ("probe", ""))
                else:
                    s.close()
            for s, (_, _, born) in list(probes.items()):
                if now - born > PROBE_LIFETIME:
                    sel.unregister(s)
                    s.close()
                    del probes[s]
        for name, born in list(connecting.items()):
            if now - born > 5.0:
                _say("failed", name, "timeout", now)
                endConn(name)
        timeout = PROBE_INTERVAL if probing else 0.5
        for key, _ in sel.select(timeout):
            kind, name = key.data
            if kind == "stdin":
                chunk = os.read(sys.stdin.fileno(), 65536)
                if not chunk:
                    return
                stdinBuffer += chunk
                while b"\n" in stdinBuffer:
                    line, stdinBuffer = stdinBuffer.split(b"\n", 1)
                    words = line.decode().split()
                    if words:
                        command(words)
            elif kind == "probe":
                s = cast(socket.socket, key.fileobj)
                address, port, _ = probes.pop(s)
                sel.unregister(s)
                code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                s.close()
                if code == 0 and (address, port) in probing:
                    _say("answered", address, time.monotonic())
                    probing.remove((address, port))
                    for other in [
                        p for p, v in probes.items() if v[:2] == (address, port)
                    ]:
                        sel.unregister(other)
                        other.close()
                        del probes[other]
            elif name in connecting:
                s = conns[name]
                del connecting[name]
                code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code != 0:
                    _say("failed", name, _errName(code), time.monotonic())
                    endConn(name)
                    continue
                sel.modify(s, selectors.EVENT_READ, ("conn", name))
                _say("connected", name, s.getsockname()[1], time.monotonic())
            else:
                s = conns[name]
                try:
                    data = s.recv(65536)
                except OSError as e:
                    code = e.errno or 0
                    event = "reset" if code == errno.ECONNRESET else "error"
                    if event == "reset":
                        _say("reset", name, time.monotonic())
                    else:
                        _say("error", name, _errName(code), time.monotonic())
                    endConn(name)
                    continue
                if not data:
                    _say("closed", name, time.monotonic())
                    endConn(name)
                    continue
                buffers[name] += data
                while b"\n" in buffers[name]:
                    line, buffers[name] = buffers[name].split(b"\n", 1)
                    _say("line", name, line.decode(errors="replace"))


# -- frames ------------------------------------------------------------------------------


def gratuitousArpFor(frame: bytes, address: str) -> str | None:
    """If C{frame} is a gratuitous ARP (request or reply) announcing
    C{address}, the sender MAC address it carries (aa:bb:..); else None."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x06":
        return None
    arp = frame[14:42]
    if arp[0:2] != b"\x00\x01" or arp[2:4] != b"\x08\x00":
        return None
    sender = socket.inet_ntoa(arp[14:18])
    target = socket.inet_ntoa(arp[24:28])
    if sender != address or target != address:
        return None
    return ":".join(f"{b:02x}" for b in arp[8:14])


def neighbourAdvertFor(frame: bytes, address: str) -> str | None:
    """If C{frame} is an unsolicited IPv6 neighbour advertisement (ICMPv6
    type 136) for C{address}, the link-layer address its target option
    carries (aa:bb:..); else None."""
    if len(frame) < 14 + 40 + 24 or frame[12:14] != b"\x86\xdd":
        return None
    ip6 = frame[14:54]
    if ip6[6] != 58:  # next header: ICMPv6
        return None
    icmp = frame[54:]
    if icmp[0] != 136:
        return None
    if socket.inet_ntop(socket.AF_INET6, icmp[8:24]) != socket.inet_ntop(
        socket.AF_INET6, socket.inet_pton(socket.AF_INET6, address)
    ):
        return None
    options = icmp[24:]
    while len(options) >= 8 and options[1]:
        kind, length = options[0], options[1] * 8
        if kind == 2:  # target link-layer address
            return ":".join(f"{b:02x}" for b in options[2:8])
        options = options[length:]
    return None


def announcementFor(frame: bytes, address: str) -> str | None:
    """The MAC address a gratuitous ARP (IPv4) or unsolicited neighbour
    advertisement (IPv6) in C{frame} announces for C{address}, or None."""
    if ":" in address:
        return neighbourAdvertFor(frame, address)
    return gratuitousArpFor(frame, address)


def parseEndpoint(text: str) -> tuple[str, int]:
    address, _, port = text.rpartition(":")
    return address.strip("[]"), int(port)


_TICKLE = re.compile(r"SRC:\s*(\S+)\s+DST:\s*(\S+)")


def parseTickles(text: str) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    """The connections of C{ctdb gettickles} output: (client, server)."""
    found = []
    for match in _TICKLE.finditer(text):
        found.append((parseEndpoint(match.group(1)), parseEndpoint(match.group(2))))
    return found


def monotonicWords(words: Iterable[str]) -> float:
    """The time stamp ending an event of the client program."""
    return float(list(words)[-1])
