# -*- test-case-name: tests.integration.test_cluster -*-
"""
The C{ctdb-cluster} console script end to end, as a user runs it: a
subprocess per command, Samba's C{ctdb} tool to look at the result, and a
check that C{stop} leaves no process behind.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ctdb.cluster import LocalCluster, syncControl
from ctdb.protocols import controls as C
from tests.integration._cases import IntegrationCase
from tests.integration._clusters import randomBase, sambaTool

SCRIPT = str(Path(sys.executable).parent / "ctdb-cluster")


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run C{ctdb-cluster ARGS}."""
    return subprocess.run(
        [SCRIPT, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def waitFor(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll C{predicate}; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def processesOf(directory: str) -> list[int]:
    """Every live process whose command line mentions C{directory}."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if directory.encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found


def disconnectedSeenBy(cluster: LocalCluster, pnn: int) -> set[int]:
    """The nodes node C{pnn} has flagged DISCONNECTED (a quick GET_NODEMAP)."""
    reply = syncControl(cluster.socketPath(pnn), C.Control.GET_NODEMAP, timeout=5)
    return {
        n.pnn
        for n in C.decodeNodeMap(reply.data)
        if n.flags & C.NODE_FLAGS_DISCONNECTED
    }


class LifecycleTests(IntegrationCase):
    """What a user does with a cluster directory, start to stop."""

    def clusterDir(self) -> str:
        """A cluster directory (with a space in its path); stopped afterwards."""
        directory = os.path.join(self.mktempDirectory(), "my cluster")
        self.addCleanup(self._stopIfSetUp, directory)
        return directory

    def _stopIfSetUp(self, directory: str) -> None:
        if os.path.exists(os.path.join(directory, "cluster.json")):
            LocalCluster(directory).stop()

    def toolEnv(self, directory: str, pnn: int) -> dict[str, str]:
        """The environment C{eval "$(ctdb-cluster env K)"} gives a shell."""
        result = cli("--dir", directory, "env", str(pnn))
        self.assertEqual(result.returncode, 0, result.stderr)
        script = f"{result.stdout}\nenv -0"
        shell = subprocess.run(
            ["sh", "-c", script],
            check=True,
            capture_output=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        env = dict(
            item.split("=", 1) for item in shell.stdout.decode().split("\0") if item
        )
        return env

    def tool(self, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        """Samba's tool, run with C{env}."""
        ctdb = sambaTool()
        if ctdb is None:
            self.fail("Samba's ctdb tool is not installed (make install)")
        return subprocess.run(
            [ctdb, *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            stdin=subprocess.DEVNULL,
        )

    def nodeView(self, directory: str) -> dict[int, str]:
        """From C{ctdb-cluster status}: node K -> "running"/"paused"/"stopped"."""
        result = cli("--dir", directory, "status")
        self.assertEqual(result.returncode, 0, result.stderr)
        states = {}
        for line in result.stdout.splitlines():
            match = re.match(r"node(\d+) \S+ (running|paused|stopped) ", line)
            if match is None:
                self.fail(f"unexpected status line {line!r}")
            states[int(match.group(1))] = match.group(2)
        return states

    def test_lifecycle(self) -> None:
        """
        setup, start, status, socket, env (Samba's tool works with the printed
        exports), kill K and start K, pause K and resume K (keepalives mark it
        DISCONNECTED after KeepaliveInterval*KeepaliveLimit), stop (no process
        left).
        """
        d = self.clusterDir()
        base = randomBase("ours")
        result = cli(
            "--dir", d, "setup", "--nodes", "3", "--base", base,
            "--tunable", "KeepaliveInterval=1", "--tunable", "KeepaliveLimit=2",
        )  # fmt: skip
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        cluster = LocalCluster(d)
        addresses = [cluster.address(k) for k in range(3)]
        self.assertEqual(addresses[0], base)

        start = time.monotonic()
        result = cli("--dir", d, "start")
        self.assertEqual((result.returncode, result.stderr), (0, ""), result.stderr)
        self.assertLess(time.monotonic() - start, 30)
        status = cli("--dir", d, "status").stdout.splitlines()
        self.assertEqual(len(status), 3)
        pids = {}
        for k, line in enumerate(status):
            match = re.fullmatch(
                rf"node{k} {re.escape(addresses[k])} running \(pid (\d+)\)  sees 0:OK 1:OK 2:OK",
                line,
            )
            if match is None:
                self.fail(f"unexpected status line {line!r}")
            pids[k] = int(match.group(1))

        for k in (0, 2):
            result = cli("--dir", d, "socket", str(k))
            self.assertEqual(result.returncode, 0)
            path = result.stdout.strip()
            self.assertEqual(
                path,
                os.path.join(os.path.abspath(d), f"node{k}", "run", "ctdbd.socket"),
            )
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            probe.connect(path)
            probe.close()

        envs = {k: self.toolEnv(d, k) for k in range(3)}
        for k in range(3):
            result = self.tool(envs[k], "pnn")
            self.assertEqual(
                (result.returncode, result.stdout), (0, f"{k}\n"), result.stderr
            )
            result = self.tool(envs[k], "listnodes")
            self.assertEqual(result.stdout, "".join(f"{a}\n" for a in addresses))
            self.assertEqual(self.tool(envs[k], "getpid").stdout, f"{pids[k]}\n")
        self.assertEqual(self.tool(envs[0], "nodestatus", "all").returncode, 0)

        # kill K: the others see it DISCONNECTED promptly; start K brings it back
        result = cli("--dir", d, "kill", "1")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        self.assertTrue(
            not os.path.exists(f"/proc/{pids[1]}") or pids[1] not in processesOf(d)
        )
        result = self.tool(envs[0], "nodestatus", "1")
        self.assertEqual(
            (result.returncode, "DISCONNECTED" in result.stdout), (3, True)
        )
        self.assertEqual(self.nodeView(d)[1], "stopped")
        waitFor(
            lambda: disconnectedSeenBy(cluster, 0) == {1},
            5,
            "node 0 to see the killed node 1 disconnected",
        )
        result = cli("--dir", d, "start", "1")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        waitFor(
            lambda: (
                self.tool(envs[0], "nodestatus", "all").returncode == 0
                and self.tool(envs[2], "nodestatus", "all").returncode == 0
            ),
            10,
            "the restarted node 1 to be OK everywhere",
        )
        self.assertEqual(self.tool(envs[1], "pnn").stdout, "1\n")

        # pause K: dead after KeepaliveInterval * KeepaliveLimit = 2 s of silence
        result = cli("--dir", d, "pause", "2")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        paused = time.monotonic()
        self.assertEqual(self.nodeView(d), {0: "running", 1: "running", 2: "paused"})
        waitFor(
            lambda: (
                disconnectedSeenBy(cluster, 0) == disconnectedSeenBy(cluster, 1) == {2}
            ),
            8,
            "the paused node 2 to be marked disconnected",
        )
        elapsed = time.monotonic() - paused
        # at least one whole silent interval, at most the limit plus slack
        self.assertTrue(0.8 <= elapsed <= 5, elapsed)
        result = self.tool(envs[0], "nodestatus", "2")
        self.assertEqual(result.returncode, 3)
        self.assertIn("DISCONNECTED|UNHEALTHY|INACTIVE", result.stdout)
        result = cli("--dir", d, "resume", "2")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        waitFor(
            lambda: all(
                self.tool(envs[k], "nodestatus", "all").returncode == 0
                for k in range(3)
            ),
            10,
            "the resumed node 2 to be connected again",
        )
        self.assertEqual(self.nodeView(d), {0: "running", 1: "running", 2: "running"})

        # stop: every daemon gone, no stray process mentions the directory
        before = [cluster.pid(k) for k in range(3)]
        self.assertNotIn(None, before)
        result = cli("--dir", d, "stop")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        self.assertEqual(self.nodeView(d), {0: "stopped", 1: "stopped", 2: "stopped"})
        waitFor(
            lambda: processesOf(os.path.abspath(d)) == [],
            5,
            "no process of the cluster",
        )
        for k in range(3):
            self.assertFalse(os.path.exists(cluster.pidFile(k)))
        result = self.tool(envs[0], "pnn")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("Failed to connect to CTDB daemon", result.stderr)

    def test_startFailsWhenAddressTaken(self) -> None:
        """
        C{start} with node 1's address:port already taken fails quickly with a
        message naming the node and the cause, and leaves no node running.
        """
        d = self.clusterDir()
        base = randomBase("ours")
        self.assertEqual(
            cli("--dir", d, "setup", "--nodes", "2", "--base", base).returncode, 0
        )
        cluster = LocalCluster(d)
        squatter = socket.socket()
        try:
            squatter.bind((cluster.address(1), 4379))
            squatter.listen()
            start = time.monotonic()
            result = cli("--dir", d, "start", timeout=60)
            self.assertLess(time.monotonic() - start, 20)
        finally:
            squatter.close()
        self.assertEqual(result.returncode, 1)
        self.assertTrue(
            result.stderr.startswith("ctdb-cluster: node 1 exited during start;"),
            result.stderr,
        )
        self.assertIn("Address already in use", result.stderr)
        self.assertEqual(self.nodeView(d), {0: "stopped", 1: "stopped"})
        waitFor(
            lambda: processesOf(os.path.abspath(d)) == [],
            5,
            "no process of the cluster",
        )


class BadArgumentsTests(IntegrationCase):
    """
    Bad command lines fail with a one-line message and exit code, no
    traceback; "{d}" in the arguments is a set-up (never started) 3-node
    cluster directory that the tests of this class share.
    """

    def setUp(self) -> None:
        super().setUp()
        self.directory = self.classResource("directory", self._setUpDirectory)

    def _setUpDirectory(self) -> str:
        d = os.path.join(self.classDirectory(), "c")
        result = cli("--dir", d, "setup", "--nodes", "3", "--base", randomBase("ours"))
        self.assertEqual(result.returncode, 0, result.stderr)
        return d

    def assertBadArguments(self, args: list[str], rc: int, message: str) -> None:
        """
        C{ctdb-cluster ARGS} exits with C{rc} and says C{message}, without a
        traceback; an error of its own (C{rc} 1, not argparse's 2) is one
        line starting with "ctdb-cluster: ".
        """
        result = cli(*[a.format(d=self.directory) for a in args])
        self.assertEqual(result.returncode, rc, result)
        self.assertIn(message, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(result.stdout, "")
        if rc == 1:
            self.assertTrue(result.stderr.startswith("ctdb-cluster: "), result.stderr)
            self.assertEqual(result.stderr.count("\n"), 1, result.stderr)

    def test_dirRequired(self) -> None:
        """No --dir: a usage error."""
        self.assertBadArguments([], 2, "the following arguments are required: --dir")

    def test_unknownCommand(self) -> None:
        """An unknown command: a usage error."""
        self.assertBadArguments(["--dir", "{d}", "bogus"], 2, "invalid choice: 'bogus'")

    def test_nodeNotANumber(self) -> None:
        """A node that is not a number: a usage error."""
        self.assertBadArguments(
            ["--dir", "{d}", "kill", "x"], 2, "invalid int value: 'x'"
        )

    def test_notAClusterDirectory(self) -> None:
        """A directory that was never set up."""
        self.assertBadArguments(
            ["--dir", "{d}/none", "status"],
            1,
            "is not a cluster directory (run setup first)",
        )

    def test_baseNotLoopback(self) -> None:
        """A base address outside 127.0.0.0/8."""
        self.assertBadArguments(
            ["--dir", "{d}/x", "setup", "--base", "10.0.0.1"],
            1,
            "must be in 127.0.0.0/8",
        )

    def test_noNodes(self) -> None:
        """A cluster of no nodes."""
        self.assertBadArguments(
            ["--dir", "{d}/x", "setup", "--nodes", "0"], 1, "needs at least one node"
        )

    def test_tunableWithoutValue(self) -> None:
        """A tunable that is not NAME=VALUE."""
        self.assertBadArguments(
            ["--dir", "{d}/x", "setup", "--tunable", "Foo"],
            1,
            "wants NAME=VALUE, not 'Foo'",
        )

    def test_killNoSuchNode(self) -> None:
        """kill of a node the cluster does not have."""
        self.assertBadArguments(
            ["--dir", "{d}", "kill", "7"], 1, "no node 7 (cluster has 3 nodes)"
        )

    def test_socketNoSuchNode(self) -> None:
        """socket of a node the cluster does not have."""
        self.assertBadArguments(
            ["--dir", "{d}", "socket", "3"], 1, "no node 3 (cluster has 3 nodes)"
        )

    def test_killNotRunning(self) -> None:
        """kill of a node that is not running."""
        self.assertBadArguments(
            ["--dir", "{d}", "kill", "1"], 1, "node 1 is not running"
        )

    def test_resumeNotRunning(self) -> None:
        """resume of a node that is not running."""
        self.assertBadArguments(
            ["--dir", "{d}", "resume", "0"], 1, "node 0 is not running"
        )
