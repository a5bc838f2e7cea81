# -*- test-case-name: tests.integration.test_failover_netns -*-
"""
Public-IP failover benchmark (issue 11): our daemon vs Samba's ctdbd 4.17.

Not a test; run by hand, as root, from the repository root:

    .venv/bin/python bench/bench_failover.py [--rounds 3] [--settle 11] [--kinds ours,ctdbd]

In one run, in one set of network namespaces
(L{tests.support.netnscluster}: a bridge, three node namespaces each with
a node interface and a public interface, a client namespace), it starts a
3-node cluster of our daemons (C{twistd ctdb}, default settings), then a
3-node cluster of Samba's ctdbd 4.17 (not in test mode, with its stock
C{10.interface} event script and ctdb-eventd), and on each measures, per
round and for an address held by a node that does not lead and then for
one held by the leader:

 - the client (in the client namespace) opens a connection to the address,
   which the service in the owner's namespace registers with its node
   (TCP_CLIENT, as smbd); the bench waits until every node lists it
   (C{ctdb gettickles});
 - the owner's machine dies (SIGKILL of its daemon, then its links go
   down); time 0 is just before the signal;
 - (a) **answers**: the client probes the address with a new connection
   attempt every 10 ms; the time of the first that succeeds;
 - (b) **reset**: the time the client's old connection sees ECONNRESET
   (the new owner's tickle ACK makes the client send an ACK, which the new
   owner's kernel, having no socket for it, answers with a reset);
 - milestones, polled every 10 ms on the survivors' sockets: **dead**
   (a survivor marks the victim disconnected), **recovered** (all
   survivors in recovery mode NORMAL with a new generation), **moved**
   (the new owner's GET_PUBLIC_IPS gives the address to itself; where
   event scripts add addresses, that is before its takeip event ran).

The victim is powered on and restarted between rounds, and before each
measurement the cluster is left alone for --settle seconds (ctdbd holds
off recoveries for RerecoveryTimeout, 10 s, after each).  Medians over
the rounds are printed, with min and max.

Kind C{drop-in} (not run unless named in --kinds) is our drop-in ctdbd
run exactly as Samba's: ctdb.conf, 10.interface adding the addresses.

Target: (a) and (b) both under 1 s on ours with default settings.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ctdb.cluster import syncControl
from ctdb.protocols import controls as C
from ctdb.protocols.controls import Control
from tests.support.netns import NetworkLab, netnsProblem
from tests.support.netnscluster import (
    CLIENT_ADDRESS,
    SERVICE_PORT,
    NetnsClient,
    NetnsCluster,
    NetnsClusterError,
    NetnsCtdbdCluster,
    NetnsNetwork,
    parseTickles,
)

POLL = 0.01
#: our drop-in ctdbd, run as ctdbd is (kind "drop-in")
DROP_IN = os.path.join(os.path.dirname(sys.executable), "ctdbd")
KINDS = ("ours", "ctdbd", "drop-in")
MEASURES = ("answers", "reset", "dead", "recovered", "moved")


class Milestones(threading.Thread):
    """Poll the survivors every 10 ms until the address has moved: when a
    survivor first marks C{victim} disconnected, when all are NORMAL with
    a new generation, when a survivor's GET_PUBLIC_IPS gives C{address}
    to itself."""

    def __init__(
        self, cluster: Any, survivors: list[int], victim: int, address: str
    ) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.survivors = survivors
        self.victim = victim
        self.address = address
        self.generations = {k: self._generation(k) for k in survivors}
        self.times: dict[str, float] = {}
        self.stop = threading.Event()

    def _generation(self, pnn: int) -> int:
        reply = syncControl(self.cluster.socketPath(pnn), Control.GETVNNMAP, timeout=2)
        return C.VnnMap.decode(reply.data).generation

    def _check(self) -> None:
        # each time stamp is taken once its answer is in: never before the
        # change it reports
        if "dead" not in self.times:
            for k in self.survivors:
                for n in self.cluster.nodeMap(k):
                    if n.pnn == self.victim and n.flags & C.NODE_FLAGS_DISCONNECTED:
                        self.times["dead"] = time.monotonic()
        if "recovered" not in self.times:
            gens = set()
            normal = True
            for k in self.survivors:
                normal = normal and self.cluster.recMode(k) == C.CTDB_RECOVERY_NORMAL
                gens.add(self._generation(k))
            if normal and len(gens) == 1 and not gens & set(self.generations.values()):
                self.times["recovered"] = time.monotonic()
        if "moved" not in self.times:
            for k in self.survivors:
                if self.cluster.publicIPs(k).get(self.address) == k:
                    self.times["moved"] = time.monotonic()

    def run(self) -> None:
        while not self.stop.is_set() and len(self.times) < 3:
            try:
                self._check()
            except (OSError, NetnsClusterError, ValueError):
                pass
            time.sleep(POLL)


def waitTickles(
    cluster: Any, conn: tuple[tuple[str, int], tuple[str, int]], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    pending = set(range(cluster.size))
    while pending:
        for k in sorted(pending):
            if conn in parseTickles(cluster.tool(k, "gettickles", conn[1][0]).stdout):
                pending.discard(k)
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"nodes {sorted(pending)} do not list {conn}")
        time.sleep(0.05)


def leaderOf(cluster: Any) -> int:
    done = cluster.tool(0, "leader")
    if done.returncode != 0:
        raise RuntimeError(f"ctdb leader: {done.stderr}")
    return int(done.stdout.strip())


def measure(
    cluster: Any,
    client: NetnsClient,
    name: str,
    ofLeader: bool,
    settle: float,
    timeout: float,
) -> dict[str, float]:
    """One failover: the seconds from the SIGKILL to each measure."""
    time.sleep(settle)  # hand-run benchmark: let RerecoveryTimeout pass
    owners = cluster.waitHosted(60)
    lead = leaderOf(cluster)
    chosen = [a for a, k in sorted(owners.items()) if (k == lead) == ofLeader]
    if not chosen:
        raise RuntimeError(
            f"no address held by {'the' if ofLeader else 'a non-'}leader"
        )
    address = chosen[0]
    victim = owners[address]
    survivors = [k for k in range(cluster.size) if k != victim]
    port = client.connect(name, address)
    if cluster.accepted(victim, (CLIENT_ADDRESS, port)) != "0":
        raise RuntimeError(f"node {victim} refused the TCP_CLIENT registration")
    waitTickles(cluster, ((CLIENT_ADDRESS, port), (address, SERVICE_PORT)), 30)
    milestones = Milestones(cluster, survivors, victim, address)
    milestones.start()
    killed = cluster.crash(victim)
    client.probe(address)
    times: dict[str, float] = {}
    answered = client.expect(lambda w: w[:2] == ["answered", address], timeout)
    if answered is not None:
        times["answers"] = float(answered[-1]) - killed
    reset = client.expect(lambda w: w[1:2] == [name], timeout)
    if reset is not None and reset[0] == "reset":
        times["reset"] = float(reset[-1]) - killed
    elif reset is not None:
        print(f"  old connection: {' '.join(reset)}", flush=True)
    milestones.join(timeout)
    milestones.stop.set()
    for key, when in milestones.times.items():
        times[key] = when - killed
    print(
        f"  {cluster.kind:5s} {'leader' if ofLeader else 'non-leader':10s} "
        f"node {victim} ({address}): "
        + ", ".join(f"{k} {times[k]:.3f}" for k in MEASURES if k in times),
        flush=True,
    )
    cluster.restart(victim, timeout=90)
    return times


def runKind(
    kind: str, network: NetnsNetwork, rounds: int, settle: float, timeout: float
) -> dict[str, list[float]]:
    directory = tempfile.mkdtemp(prefix=f"txbf-{kind}-", dir="/tmp")
    cluster: Any
    if kind == "ours":
        cluster = NetnsCluster(network, directory)
    elif kind == "ctdbd":
        cluster = NetnsCtdbdCluster(network, directory)
    else:
        cluster = NetnsCtdbdCluster(network, directory, ctdbd=DROP_IN)
    results: dict[str, list[float]] = {}
    started = time.monotonic()
    try:
        cluster.start(timeout=90)
        print(
            f"{kind}: cluster ready in {time.monotonic() - started:.1f} s", flush=True
        )
        client = cluster.client()
        for r in range(rounds):
            for ofLeader in (False, True):
                scenario = "leader" if ofLeader else "non-leader"
                times = measure(
                    cluster, client, f"c{r}{int(ofLeader)}", ofLeader, settle, timeout
                )
                for key in MEASURES:
                    results.setdefault(f"{scenario} {key}", []).append(
                        times.get(key, float("nan"))
                    )
    finally:
        cluster.stop()
        for k in range(network.size):
            network.powerOn(k)
            network.lab.ip(
                "addr", "flush", "dev", "pub0", namespace=network.namespace(k)
            )
        subprocess.run(["rm", "-rf", directory], check=False)
    return results


def summary(values: list[float]) -> str:
    good = [v for v in values if not math.isnan(v)]
    if not good:
        return f"{'-':>8s} {'-':>7s} {'-':>7s}"
    missing = "" if len(good) == len(values) else f" ({len(values) - len(good)} lost)"
    return f"{statistics.median(good):8.3f} {min(good):7.3f} {max(good):7.3f}{missing}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=11.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument(
        "--kinds",
        default="ours,ctdbd",
        help=f"comma-separated, of {', '.join(KINDS)} (default ours,ctdbd)",
    )
    args = parser.parse_args(argv)
    problem = netnsProblem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        parser.error(f"unknown kinds {unknown}")
    print(
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, "
        f"load average {os.getloadavg()[0]:.1f}, {args.rounds} rounds, "
        f"settle {args.settle:.0f} s",
        flush=True,
    )
    lab = NetworkLab("txbf")
    results: dict[str, dict[str, list[float]]] = {}
    try:
        network = NetnsNetwork(lab, nodes=3)
        for kind in kinds:
            results[kind] = runKind(
                kind, network, args.rounds, args.settle, args.timeout
            )
    finally:
        lab.cleanup()
    print()
    print(
        "seconds from SIGKILL       "
        + "".join(f"{k + ' median/min/max':>28s}" for k in kinds)
    )
    for scenario in ("non-leader", "leader"):
        for key in MEASURES:
            row = f"{scenario + ' ' + key:26s}"
            for kind in kinds:
                row += f"{summary(results[kind].get(f'{scenario} {key}', [])):>28s}"
            print(row)
    if "ours" in results:
        print()
        for scenario in ("non-leader", "leader"):
            for key in ("answers", "reset"):
                values = results["ours"][f"{scenario} {key}"]
                good = [v for v in values if not math.isnan(v)]
                ok = bool(good) and len(good) == len(values) and max(good) < 1.0
                print(
                    f"target ours {scenario} {key} < 1 s: "
                    + ("MET" if ok else "MISSED")
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
