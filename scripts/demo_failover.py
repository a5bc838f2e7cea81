# -*- test-case-name: tests.integration.test_failover_netns -*-
"""
The end of ``make demo``: public-IP failover with real networking.

    .venv/bin/python scripts/demo_failover.py      (as root)

A 3-node cluster of our daemons, each in a network namespace of its own
with a public interface on a shared bridge, and a client in another
namespace (L{tests.support.netnscluster}).  The client connects to a public
address and writes records through the service behind it (which stores
them with Samba's C{ctdb pstore} on the node it runs on); the node serving
the address is killed; the address moves to a survivor, the client's old
connection is reset at once, the client reconnects to the same address
and reads its records back from the survivor.  Everything made (processes,
namespaces, files) is removed at the end, also when a step fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from types import FrameType
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.netns import NetworkLab, netnsProblem
from tests.support.netnscluster import (
    CLIENT_ADDRESS,
    PUBLIC_IFACE,
    NetnsCluster,
    NetnsNetwork,
    gratuitousArpFor,
    nodeAddress,
)

DB = "demo_failover.tdb"
RECORDS = 5


def heading(text: str) -> None:
    print(f"\n==== {text} ====", flush=True)


def say(text: str) -> None:
    print(text, flush=True)


def tool(cluster: NetnsCluster, pnn: int, *args: str) -> str:
    """Run Samba's ctdb tool against node C{pnn}, showing the command and
    its output; fails the demo if the tool does."""
    say(f"$ ctdb {' '.join(args)}        # via node {pnn}")
    done = cluster.tool(pnn, *args)
    out = (done.stdout + done.stderr).rstrip()
    if out:
        say(out)
    if done.returncode != 0:
        raise SystemExit(f"demo: ctdb {' '.join(args)} failed ({done.returncode})")
    return done.stdout


def ipAddr(network: NetnsNetwork, pnn: int) -> None:
    ns = network.namespace(pnn)
    say(f"$ ip -4 -br addr show {PUBLIC_IFACE}        # in node {pnn}'s namespace")
    out = network.lab.ip("-4", "-br", "addr", "show", "dev", PUBLIC_IFACE, namespace=ns)
    say(out.rstrip() or f"{PUBLIC_IFACE} (no address)")


def demo(lab: NetworkLab, directory: str, made: list[str]) -> None:
    heading("A network of namespaces: 3 nodes and a client on one bridge")
    network = NetnsNetwork(lab, nodes=3)
    made.extend(lab.namespaces)
    for k in range(3):
        say(
            f"node {k}: namespace {network.namespace(k)}, eth0 {nodeAddress(k)} "
            f"(CTDB), {PUBLIC_IFACE} {network.publicMac(k)} (public addresses)"
        )
    say(f"client: namespace {network.client}, eth0 {CLIENT_ADDRESS}")
    say("every node's public_addresses file:")
    say(network.publicAddressesText().rstrip())

    heading("Starting our daemons, one per node namespace (twistd ctdb)")
    cluster = NetnsCluster(network, directory)
    try:
        started = time.monotonic()
        cluster.start(timeout=60)
        say(
            f"ready in {time.monotonic() - started:.1f} s; every public address "
            "is up on exactly one node"
        )
        tool(cluster, 0, "status")
        owners = cluster.owners()
        tool(cluster, 0, "ip", "all")
        address = network.publicAddresses[0]
        owner = owners[address]
        say(f"\n{address} is served by node {owner}:")
        ipAddr(network, owner)

        heading(f"A client connects to {address} and writes records")
        tool(cluster, 0, "attach", DB, "persistent")
        client = cluster.client()
        port = client.connect("first", address)
        status = cluster.accepted(owner, (CLIENT_ADDRESS, port))
        say(
            f"client {CLIENT_ADDRESS}:{port} -> {address}: the service on node "
            f"{owner} registered the connection with its node (TCP_CLIENT, as "
            f"smbd does): status {status}"
        )
        for i in range(1, RECORDS + 1):
            answer = client.send("first", f"put {DB} key{i} value{i}")
            say(f"client: put key{i}=value{i} -> node {owner}: {answer}")
        other = (owner + 1) % 3
        say("\nthe other nodes know the connection, to tickle it after a failover:")
        tool(cluster, other, "gettickles", address)

        heading(f"Node {owner} dies (SIGKILL of its daemon, its links go down)")
        capture = lab.capture(network.client, "eth0")
        killed = cluster.crash(owner)
        client.probe(address)
        reset = client.expect(lambda w: w[1:2] == ["first"], 30)
        answered = client.expect(lambda w: w[:2] == ["answered", address], 30)
        if reset is None or answered is None:
            raise SystemExit("demo: the address did not come back within 30 s")
        say(
            f"client: old connection {reset[0]} {float(reset[-1]) - killed:.3f} s "
            "after the kill (the new owner's tickle ACK; its kernel has no "
            "socket for it and answers the client's ACK with a reset)"
        )
        say(
            f"client: {address} answers again {float(answered[-1]) - killed:.3f} s "
            "after the kill"
        )
        survivors = [k for k in range(3) if k != owner]
        owners = cluster.waitHosted(30)
        newOwner = owners[address]
        frame = capture.waitFor(lambda f: gratuitousArpFor(f, address) is not None, 5)
        capture.stop()
        if frame is not None:
            say(
                f"client namespace saw a gratuitous ARP: {address} is at "
                f"{gratuitousArpFor(frame, address)} (node {newOwner}'s "
                f"{PUBLIC_IFACE}: {network.publicMac(newOwner)})"
            )
        tool(cluster, survivors[0], "ip", "all")
        ipAddr(network, newOwner)

        heading(f"The client reconnects to {address} and reads its records")
        port = client.connect("second", address)
        status = cluster.accepted(newOwner, (CLIENT_ADDRESS, port))
        say(f"client {CLIENT_ADDRESS}:{port} -> {address}: now node {newOwner}")
        lost = 0
        for i in range(1, RECORDS + 1):
            answer = client.send("second", f"get {DB} key{i}")
            say(f"client: get key{i} -> node {newOwner}: {answer}")
            if answer != f"ok value{i}":
                lost += 1
        if lost:
            raise SystemExit(f"demo: {lost} records lost")
        say(f"\nall {RECORDS} records are still there, served by node {newOwner}")
    finally:
        heading("Stopping the cluster, removing the namespaces")
        cluster.stop()


def main() -> int:
    problem = netnsProblem()
    if problem is not None:
        print(f"demo_failover: {problem}", file=sys.stderr)
        return 1

    def terminate(signum: int, frame: FrameType | None) -> Any:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    lab = NetworkLab("txdemo")
    directory = tempfile.mkdtemp(prefix="txdemo-", dir="/tmp")
    made: list[str] = []
    try:
        demo(lab, directory, made)
    finally:
        lab.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
        left = [n for n in made if os.path.exists(f"/run/netns/{n}")]
        say("namespaces left: " + (", ".join(left) if left else "none"))
    say("\ndemo_failover: all steps succeeded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
