# -*- test-case-name: tests.integration.test_nemesis -*-
"""
A nemesis for a cluster in network namespaces
(L{tests.support.netnscluster}): faults chosen at random from a seed,
injected into one cluster, and healed again.

    nemesis = Nemesis(cluster, seed=7)
    fault = nemesis.choose()          # a Fault: kind, nodes, parameters
    nemesis.inject(fault)
    ...                               # the fault holds for fault.hold seconds
    nemesis.heal(fault)
    nemesis.healAll()                 # in cleanups: whatever is left

The faults (L{KINDS}):

  - C{kill}: SIGKILL of a node's daemon and its machine going dark
    (L{NetnsCluster.crash}); healed by powering it on and starting it again.
  - C{pause}: SIGSTOP of a node's daemon; healed by SIGCONT.
  - C{isolate}: one node cut off from every other node, both directions.
  - C{split}: the nodes split into a minority and a majority (1-2 for three
    nodes, 2-3 for five), both directions.
  - C{oneway}: what one node sends to the others is dropped; it still hears
    them.
  - C{bridge}: two nodes cannot reach each other, both reach the rest.
  - C{loss}, C{duplicate}: a share of the packets of a node's cluster link
    dropped or sent twice.
  - C{delay}: a node's cluster link is slow: tc netem's delay where the
    kernel has netem, else a token bucket (tc tbf) at a low rate, whose
    queue delays what is sent (this machine's kernel has no netem).
  - C{stop}, C{ban}, C{disable}: Samba's C{ctdb stop}, C{ban}, C{disable}
    on the node; healed by C{continue}, C{unban}, C{enable}.

Partitions, loss and duplication are nftables rules (C{nft}, Debian
package C{nftables}) inside the node namespaces, in tables of their own
(L{TABLE}, L{DUP_TABLE}); delay is a qdisc on the node's C{eth0}.  Nothing
outside the namespaces of the cluster is touched.  Partitions cut the
nodes' cluster links (C{eth0}); the public interfaces and the client
namespace stay connected, and the file system stays shared (so a cluster
lock on a file is reachable from both sides of a partition: it models a
lock service that both sides reach and only one side can hold).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.support.netns import NetworkLabError
from tests.support.netnscluster import (
    NODE_IFACE,
    NetnsCluster,
    NetnsCtdbdCluster,
    NetnsNetwork,
    nodeAddress,
)

#: every kind of fault, in the order the seed's choices index
KINDS = (
    "kill",
    "pause",
    "isolate",
    "split",
    "oneway",
    "bridge",
    "loss",
    "duplicate",
    "delay",
    "stop",
    "ban",
    "disable",
)

#: the nftables tables the nemesis owns in a node namespace
TABLE = "nemesis"
DUP_TABLE = "nemesisdup"
#: seconds a ban lasts if nothing unbans the node
BAN_SECONDS = 600

NFT = "nft"


class NemesisError(Exception):
    """A fault could not be injected or healed."""


def nftProblem() -> str | None:
    """Why partitions and lossy links cannot be made here, or None."""
    if shutil.which(NFT) is None:
        return (
            "the nemesis needs nftables' 'nft' command: apt-get install "
            "nftables (the kernel needs nf_tables)"
        )
    return None


@dataclass
class Fault:
    """
    One fault: its C{kind}, the C{nodes} it hits (for a partition, the
    minority or the node cut off; for C{bridge}, the two that cannot talk),
    C{percent} (loss, duplication), C{hold} (seconds it lasts).

    @ivar injected: whether the injection worked (C{problem} says why not).
    @ivar killed: the nodes whose daemon the nemesis killed.
    """

    kind: str
    nodes: tuple[int, ...]
    hold: float
    percent: int = 0
    injected: bool = False
    problem: str = ""
    killed: tuple[int, ...] = ()
    startedAt: float = 0.0
    healedAt: float = 0.0
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        nodes = ",".join(str(n) for n in self.nodes)
        extra = f" {self.percent}%" if self.percent else ""
        return f"{self.kind}({nodes}{extra}, {self.hold:.1f}s)"


class Nemesis:
    """
    Faults for one cluster (a L{NetnsCluster} or L{NetnsCtdbdCluster}),
    chosen by a C{random.Random(seed)} from C{kinds} (default L{KINDS}),
    held between C{holdRange} seconds.

    @ivar history: every fault chosen, in order.
    """

    def __init__(
        self,
        cluster: Any,
        seed: int,
        kinds: Sequence[str] = KINDS,
        holdRange: tuple[float, float] = (2.0, 6.0),
    ) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise NemesisError(f"unknown fault kinds: {sorted(unknown)}")
        if cluster.size < 3 and {"split", "bridge"} & set(kinds):
            raise NemesisError("split and bridge need three nodes or more")
        self.cluster = cluster
        self.network = cluster.network
        self.lab = cluster.lab
        self.size = cluster.size
        self.seed = seed
        self.random = random.Random(seed)
        self.kinds = tuple(kinds)
        self.holdRange = holdRange
        self.history: list[Fault] = []
        self._netem: bool | None = None
        #: nodes paused by the nemesis (SIGCONT for them in healAll)
        self._paused: dict[int, int] = {}
        #: nodes powered off by the nemesis
        self._down: set[int] = set()

    # -- choice ---------------------------------------------------------------------

    def choose(self) -> Fault:
        """The next fault (its kind, nodes and parameters from the seed)."""
        rng = self.random
        kind = rng.choice(self.kinds)
        hold = round(rng.uniform(*self.holdRange), 2)
        nodes = list(range(self.size))
        if kind == "split":
            minority = rng.randint(1, (self.size - 1) // 2)
            chosen = tuple(sorted(rng.sample(nodes, minority)))
        elif kind == "bridge":
            chosen = tuple(sorted(rng.sample(nodes, 2)))
        else:
            chosen = (rng.choice(nodes),)
        percent = 0
        if kind == "loss":
            percent = rng.choice((10, 30, 60))
        elif kind == "duplicate":
            percent = rng.choice((10, 30, 50))
        fault = Fault(kind, chosen, hold, percent)
        self.history.append(fault)
        return fault

    # -- inject and heal ------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        """Inject C{fault}; a fault that could not be injected (the tool
        refused, the node was not running) says why in C{problem}."""
        fault.startedAt = time.monotonic()
        try:
            getattr(self, "_inject_" + fault.kind)(fault)
        except (NemesisError, NetworkLabError, OSError) as e:
            fault.problem = str(e)
        else:
            fault.injected = True
        return fault

    def heal(self, fault: Fault) -> None:
        """Undo C{fault} (whether or not it was injected whole)."""
        try:
            getattr(self, "_heal_" + fault.kind)(fault)
        finally:
            fault.healedAt = time.monotonic()

    def healAll(self) -> None:
        """Undo every fault the nemesis may have left: rules and qdiscs in
        every node namespace, paused daemons continued, dark nodes powered
        on (not restarted).  Safe to call at any time."""
        for pnn, pid in list(self._paused.items()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
            del self._paused[pnn]
        for pnn in range(self.size):
            self._clearNet(pnn)
        for pnn in sorted(self._down):
            with contextlib.suppress(NetworkLabError):
                self.network.powerOn(pnn)
        self._down.clear()

    # -- processes --------------------------------------------------------------------

    def _inject_kill(self, fault: Fault) -> None:
        pnn = fault.nodes[0]
        if self.cluster.pid(pnn) is None:
            raise NemesisError(f"node {pnn} is not running")
        self._down.add(pnn)
        fault.killed = (pnn,)
        self.cluster.crash(pnn)

    def _heal_kill(self, fault: Fault) -> None:
        pnn = fault.nodes[0]
        if pnn in self._down:
            self.network.powerOn(pnn)
            self._down.discard(pnn)
        if self.cluster.pid(pnn) is None:
            self.cluster.startNode(pnn)

    def _inject_pause(self, fault: Fault) -> None:
        pnn = fault.nodes[0]
        pid = self.cluster.pid(pnn)
        if pid is None:
            raise NemesisError(f"node {pnn} is not running")
        os.kill(pid, signal.SIGSTOP)
        self._paused[pnn] = pid

    def _heal_pause(self, fault: Fault) -> None:
        pid = self._paused.pop(fault.nodes[0], None)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    # -- the administrator's commands --------------------------------------------------

    def _tool(self, pnn: int, *args: str) -> None:
        try:
            done = self.cluster.tool(pnn, *args, timeout=30.0)
        except subprocess.TimeoutExpired as e:
            raise NemesisError(f"ctdb {' '.join(args)} on node {pnn}: timeout") from e
        if done.returncode != 0:
            text = " ".join((done.stdout + done.stderr).split())
            raise NemesisError(f"ctdb {' '.join(args)} on node {pnn}: {text}")

    def _inject_stop(self, fault: Fault) -> None:
        self._tool(fault.nodes[0], "stop")

    def _heal_stop(self, fault: Fault) -> None:
        self._healTool(fault, "continue")

    def _inject_ban(self, fault: Fault) -> None:
        self._tool(fault.nodes[0], "ban", str(BAN_SECONDS))

    def _heal_ban(self, fault: Fault) -> None:
        self._healTool(fault, "unban")

    def _inject_disable(self, fault: Fault) -> None:
        self._tool(fault.nodes[0], "disable")

    def _heal_disable(self, fault: Fault) -> None:
        self._healTool(fault, "enable")

    def _healTool(self, fault: Fault, command: str) -> None:
        """Run the healing C{command} on the node, a few times if the
        cluster is busy (a recovery refuses some commands for a while)."""
        deadline = time.monotonic() + 30.0
        while True:
            try:
                self._tool(fault.nodes[0], command)
                return
            except NemesisError as e:
                if time.monotonic() >= deadline:
                    fault.notes.append(f"heal failed: {e}")
                    return
            time.sleep(0.5)

    # -- the network ------------------------------------------------------------------

    def _nft(self, pnn: int, script: str) -> None:
        ns = self.network.namespace(pnn)
        self.lab.run(ns, [NFT, "-f", "-"], input=script)

    def _drop(self, pnn: int, incoming: Sequence[int], outgoing: Sequence[int]) -> None:
        """In node C{pnn}'s namespace, drop what comes from the nodes
        C{incoming} and what goes to the nodes C{outgoing}."""
        rules = ["table inet nemesis {"]
        rules.append("  chain input { type filter hook input priority 0;")
        for k in incoming:
            rules.append(f"    ip saddr {nodeAddress(k)} drop")
        rules.append("  }")
        rules.append("  chain output { type filter hook output priority 0;")
        for k in outgoing:
            rules.append(f"    ip daddr {nodeAddress(k)} drop")
        rules.append("  }")
        rules.append("}")
        self._nft(pnn, "\n".join(rules) + "\n")

    def _partition(self, groupA: Sequence[int], groupB: Sequence[int]) -> None:
        for k in groupA:
            self._drop(k, groupB, groupB)
        for k in groupB:
            self._drop(k, groupA, groupA)

    def _others(self, nodes: Sequence[int]) -> list[int]:
        return [k for k in range(self.size) if k not in nodes]

    def _inject_isolate(self, fault: Fault) -> None:
        self._partition(fault.nodes, self._others(fault.nodes))

    def _inject_split(self, fault: Fault) -> None:
        self._partition(fault.nodes, self._others(fault.nodes))

    def _inject_bridge(self, fault: Fault) -> None:
        a, b = fault.nodes
        self._partition([a], [b])

    def _inject_oneway(self, fault: Fault) -> None:
        pnn = fault.nodes[0]
        self._drop(pnn, [], self._others([pnn]))

    def _inject_loss(self, fault: Fault) -> None:
        pnn = fault.nodes[0]
        p = fault.percent
        others = " ".join(nodeAddress(k) for k in self._others([pnn]))
        self._nft(
            pnn,
            "table inet nemesis {\n"
            "  chain input { type filter hook input priority 0;\n"
            f"    ip saddr {{ {others.replace(' ', ', ')} }} "
            f"numgen random mod 100 < {p} drop\n  }}\n"
            "  chain output { type filter hook output priority 0;\n"
            f"    ip daddr {{ {others.replace(' ', ', ')} }} "
            f"numgen random mod 100 < {p} drop\n  }}\n"
            "}\n",
        )

    def _inject_duplicate(self, fault: Fault) -> None:
        pnn = fault.nodes[0]
        self._nft(
            pnn,
            f"table netdev {DUP_TABLE} {{\n"
            f"  chain egress {{ type filter hook egress device {NODE_IFACE} "
            "priority 0;\n"
            f"    ip protocol tcp numgen random mod 100 < {fault.percent} "
            f"dup to {NODE_IFACE}\n  }}\n"
            "}\n",
        )

    def netemAvailable(self) -> bool:
        """Whether the kernel has tc's netem (tried once, in node 0's
        namespace, on its loopback)."""
        if self._netem is None:
            ns = self.network.namespace(0)
            done = self.lab.run(
                ns,
                ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
                check=False,
            )
            self._netem = done.returncode == 0
            if self._netem:
                self.lab.run(ns, ["tc", "qdisc", "del", "dev", "lo", "root"])
        return self._netem

    def _inject_delay(self, fault: Fault) -> None:
        ns = self.network.namespace(fault.nodes[0])
        if self.netemAvailable():
            qdisc = ["netem", "delay", "200ms", "100ms"]
        else:
            # a slow link: 64 kbit/s, up to 2 s of queue
            qdisc = ["tbf", "rate", "64kbit", "burst", "4kb", "latency", "2s"]
        self.lab.run(ns, ["tc", "qdisc", "replace", "dev", NODE_IFACE, "root", *qdisc])

    def _clearNet(self, pnn: int) -> None:
        """Remove the nemesis's tables and qdisc from node C{pnn}'s namespace
        (those that are there)."""
        ns = self.network.namespace(pnn)
        for family, table in (("inet", TABLE), ("netdev", DUP_TABLE)):
            self.lab.run(ns, [NFT, "delete", "table", family, table], check=False)
        self.lab.run(ns, ["tc", "qdisc", "del", "dev", NODE_IFACE, "root"], check=False)

    def _healNet(self, fault: Fault) -> None:
        for pnn in range(self.size):
            self._clearNet(pnn)

    _heal_isolate = _heal_split = _heal_bridge = _heal_oneway = _healNet
    _heal_loss = _heal_duplicate = _heal_delay = _healNet


# -- clusters with a cluster lock ------------------------------------------------------

#: keepalives fast enough that a partition is noticed within seconds
TUNABLES = {"KeepaliveInterval": 1, "KeepaliveLimit": 3}


class LockedNetnsCluster(NetnsCluster):
    """Our daemons with a cluster lock (C{--reclock}) on C{reclock}, a
    file in the cluster's directory, or none (C{""})."""

    def __init__(self, *args: Any, reclock: str = "", **kwargs: Any) -> None:
        self.reclock = reclock
        super().__init__(*args, **kwargs)

    def argv(self, pnn: int) -> list[str]:
        args = super().argv(pnn)
        if self.reclock:
            args += ["--reclock", self.reclock]
        return args


class LockedNetnsCtdbdCluster(NetnsCtdbdCluster):
    """Samba's ctdbd with C{cluster lock = <reclock>} in its ctdb.conf
    (the stock fcntl helper locks the file), or none (C{""})."""

    def __init__(self, *args: Any, reclock: str = "", **kwargs: Any) -> None:
        self.reclock = reclock
        super().__init__(*args, **kwargs)

    def setup(self) -> None:
        super().setup()
        if not self.reclock:
            return
        for k in range(self.size):
            path = os.path.join(self.etcDir(k), "ctdb.conf")
            with open(path) as f:
                text = f.read()
            if "cluster lock" not in text:
                text = text.replace(
                    "[cluster]\n", f"[cluster]\n\tcluster lock = {self.reclock}\n"
                )
                with open(path, "w") as f:
                    f.write(text)


def makeCluster(
    kind: str,
    network: NetnsNetwork,
    directory: str,
    *,
    reclock: bool = True,
    tunables: dict[str, int] | None = None,
) -> NetnsCluster | NetnsCtdbdCluster:
    """A cluster of C{kind} (C{ours} or C{ctdbd}) in C{network}, not
    started, with the cluster lock on C{<directory>/cluster.lock} (unless
    C{reclock} is false) and L{TUNABLES} (or C{tunables})."""
    lock = os.path.join(directory, "cluster.lock") if reclock else ""
    chosen = dict(TUNABLES if tunables is None else tunables)
    if kind == "ours":
        return LockedNetnsCluster(network, directory, tunables=chosen, reclock=lock)
    if kind == "ctdbd":
        return LockedNetnsCtdbdCluster(
            network, directory, tunables=chosen, reclock=lock
        )
    raise NemesisError(f"unknown daemon {kind!r}: ours or ctdbd")
