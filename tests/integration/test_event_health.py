# -*- test-case-name: tests.integration.test_event_health -*-
"""
A node's health from its monitor event, on real local clusters with our
event daemon, as Samba's C{ctdb} tool sees it: a monitor script in a
node's events directory starts failing, the node shows UNHEALTHY in
C{ctdb status} on every node (and its public addresses move away), the
script passes again and the node is OK again.

Two kinds of cluster: C{twistd ctdb} nodes (L{makeCluster}, each running
C{<node>/events/legacy}), and our drop-in C{ctdbd} in ctdbd's test mode
(C{tests.support.realctdbd}), where public addresses on C{lo} of
TEST-NET-2 and -3 move between nodes without ever being added to the
host, and C{notify.sh} hears every change.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import unittest
from collections.abc import Callable
from typing import Any

from tests.integration._cases import IntegrationCase
from tests.integration._clusters import randomBase, sambaTool
from tests.support.realctdbd import RealCtdbdCluster

OUR_CTDBD = os.path.join(os.path.dirname(sys.executable), "ctdbd")

#: a monitor script that fails while its node directory holds "fail"
FLAKY = """#!/bin/sh
case "$1" in
monitor)
    if [ -e "$CTDB_BASE/fail" ]; then
        echo "service down"
        exit 1
    fi
    ;;
esac
exit 0
"""

#: the drop-in's nodes' public addresses (TEST-NET-2 and -3, on lo; in
#: test mode they are never put on the host)
ADDRESSES = ["198.51.100.1", "198.51.100.2", "203.0.113.1", "203.0.113.2"]

#: what a node with a fast monitor uses (monitor events every second)
TUNABLES = {"MonitorInterval": 1}


def tool(
    cluster: Any, pnn: int, *args: str, testMode: bool = False
) -> subprocess.CompletedProcess[str]:
    """Samba's tool against node C{pnn} of C{cluster}; in C{testMode} it
    finds the node's event socket under its C{CTDB_BASE}."""
    env = dict(os.environ)
    env.update(cluster.env(pnn))
    if testMode:
        env["CTDB_TEST_MODE"] = "yes"
    return subprocess.run(
        [sambaTool(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def statusLine(cluster: Any, seenFrom: int, pnn: int) -> str:
    """The line of C{ctdb status} on node C{seenFrom} about node C{pnn}."""
    out = tool(cluster, seenFrom, "status").stdout
    for line in out.splitlines():
        if line.startswith(f"pnn:{pnn} "):
            return line
    return ""


def addFlaky(directory: str) -> None:
    """The flaky monitor script, enabled, in C{directory}/events/legacy."""
    path = os.path.join(directory, "events", "legacy", "50.flaky.script")
    with open(path, "w") as f:
        f.write(FLAKY)
    os.chmod(path, 0o755)


def _isLocal(address: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


class _HealthCase(IntegrationCase):
    def waitFor(
        self,
        condition: Callable[[], bool],
        what: Callable[[], str],
        timeout: float = 60.0,
    ) -> None:
        """Until C{condition()}; the failure says C{what()} at the end."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                self.fail(f"not within {timeout:.0f} s: {what()}")
            time.sleep(0.2)

    def waitStatus(self, cluster: Any, pnn: int, word: str, nodes: int) -> None:
        """Until every node's C{ctdb status} shows node C{pnn} as C{word}."""
        for seenFrom in range(nodes):

            def shown(seenFrom: int = seenFrom) -> bool:
                return statusLine(cluster, seenFrom, pnn).split()[2:3] == [word]

            def what(seenFrom: int = seenFrom) -> str:
                line = statusLine(cluster, seenFrom, pnn)
                return f"node {seenFrom} shows node {pnn} {word}: {line!r}"

            self.waitFor(shown, what)


class TwistdNodeHealthTests(_HealthCase):
    """Nodes of C{twistd ctdb} (C{ctdb-cluster}) with our event daemon."""

    def test_failingMonitor(self) -> None:
        """A monitor script that fails makes its node UNHEALTHY in every
        node's C{ctdb status} (C{ctdb scriptstatus} shows why); once it
        passes the node is OK again."""
        cluster = self.makeCluster(3, start=False, tunables=TUNABLES)
        addFlaky(cluster.nodeDir(1))
        cluster.start()
        self.waitFor(
            lambda: tool(cluster, 0, "nodestatus", "all").returncode == 0,
            lambda: "all nodes OK",
        )
        with open(os.path.join(cluster.nodeDir(1), "fail"), "w"):
            pass
        self.waitStatus(cluster, 1, "UNHEALTHY", 3)
        self.assertEqual(tool(cluster, 1, "nodestatus").returncode, 2)
        scripts = tool(cluster, 1, "scriptstatus", testMode=True).stdout
        self.assertIn("50.flaky", scripts)
        self.assertIn("service down", scripts)
        os.unlink(os.path.join(cluster.nodeDir(1), "fail"))
        self.waitStatus(cluster, 1, "OK", 3)
        self.assertEqual(tool(cluster, 2, "nodestatus", "all").returncode, 0)


def _dropInProblem() -> str | None:
    if not os.access(OUR_CTDBD, os.X_OK):
        return "our ctdbd is not installed in the venv"
    for address in ADDRESSES:
        if _isLocal(address):
            return f"{address} is an address of this host"
    return None


@unittest.skipIf(_dropInProblem() is not None, _dropInProblem() or "")
class DropInHealthTests(_HealthCase):
    """Our drop-in C{ctdbd} in test mode, with public addresses."""

    def cluster(self) -> RealCtdbdCluster:
        directory = self.mktempDirectory("txctdb-eh-")
        cluster = RealCtdbdCluster(
            directory,
            base=randomBase("ours"),
            nodes=3,
            ctdbd=OUR_CTDBD,
            logLevel="INFO",
            tunables=TUNABLES,
        )
        cluster.setup()
        for pnn in range(3):
            d = cluster.nodeDir(pnn)
            with open(os.path.join(d, "public_addresses"), "w") as f:
                f.writelines(f"{a}/24 lo\n" for a in ADDRESSES)
            notify = os.path.join(d, "notify.sh")
            with open(notify, "w") as f:
                f.write(f'#!/bin/sh\necho "$1" >> {d}/notified\n')
        addFlaky(cluster.nodeDir(1))
        self.addCleanup(cluster.stop)
        return cluster

    def owners(self, cluster: RealCtdbdCluster) -> dict[str, int]:
        """Each public address's node, as C{ctdb ip all} on node 0 says."""
        out = tool(cluster, 0, "-X", "ip", "all").stdout
        owners = {}
        for line in out.splitlines()[1:]:
            fields = line.strip("|").split("|")
            if len(fields) >= 2 and fields[1].lstrip("-").isdigit():
                owners[fields[0]] = int(fields[1])
        return owners

    def hosted(self, cluster: RealCtdbdCluster) -> bool:
        """Every public address is on some node."""
        owners = self.owners(cluster)
        return sorted(owners) == sorted(ADDRESSES) and -1 not in owners.values()

    def notified(self, cluster: RealCtdbdCluster, pnn: int) -> list[str]:
        try:
            with open(os.path.join(cluster.nodeDir(pnn), "notified")) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def test_addressesMoveAway(self) -> None:
        """An UNHEALTHY node's public addresses move to the others, and
        it hosts some again once healthy; notify.sh hears each change."""
        cluster = self.cluster()
        cluster.start(timeout=60)
        self.waitFor(
            lambda: self.hosted(cluster) and 1 in self.owners(cluster).values(),
            lambda: f"every address hosted, some on node 1: {self.owners(cluster)}",
        )
        with open(os.path.join(cluster.nodeDir(1), "fail"), "w"):
            pass
        self.waitStatus(cluster, 1, "UNHEALTHY", 3)
        self.waitFor(
            lambda: self.hosted(cluster) and 1 not in self.owners(cluster).values(),
            lambda: f"node 1's addresses moved: {self.owners(cluster)}",
        )
        os.unlink(os.path.join(cluster.nodeDir(1), "fail"))
        self.waitStatus(cluster, 1, "OK", 3)
        self.waitFor(
            lambda: 1 in self.owners(cluster).values(),
            lambda: f"node 1 hosts again: {self.owners(cluster)}",
        )
        self.waitFor(
            lambda: (
                self.notified(cluster, 1)
                == ["init", "setup", "startup", "healthy", "unhealthy", "healthy"]
            ),
            lambda: f"notify.sh of node 1: {self.notified(cluster, 1)}",
            timeout=10,
        )
        self.assertEqual(
            self.notified(cluster, 0), ["init", "setup", "startup", "healthy"]
        )
