# -*- test-case-name: tests.integration.test_cluster -*-
"""
The C{ctdb-cluster} console script end to end, as a user runs it: a
subprocess per command, Samba's C{ctdb} tool to look at the result, and a
check that C{stop} leaves no process behind.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ctdb.cluster import LocalCluster, syncControl
from ctdb.protocols import controls as C
from tests.integration.conftest import randomBase

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


@pytest.fixture
def clusterDir(tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A cluster directory (with a space in its path); stopped afterwards."""
    directory = str(tmp_path / "my cluster")
    yield directory
    if os.path.exists(os.path.join(directory, "cluster.json")):
        LocalCluster(directory).stop()


def toolEnv(directory: str, pnn: int) -> dict[str, str]:
    """The environment C{eval "$(ctdb-cluster env K)"} gives a shell."""
    result = cli("--dir", directory, "env", str(pnn))
    assert result.returncode == 0, result.stderr
    script = f"{result.stdout}\nenv -0"
    shell = subprocess.run(
        ["sh", "-c", script],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    env = dict(item.split("=", 1) for item in shell.stdout.decode().split("\0") if item)
    return env


def tool(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    ctdb = shutil.which("ctdb")
    assert ctdb is not None, "Samba's ctdb tool is not installed (make install)"
    return subprocess.run(
        [ctdb, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def nodeView(directory: str) -> dict[int, str]:
    """From C{ctdb-cluster status}: node K -> "running"/"paused"/"stopped"."""
    result = cli("--dir", directory, "status")
    assert result.returncode == 0, result.stderr
    states = {}
    for line in result.stdout.splitlines():
        match = re.match(r"node(\d+) \S+ (running|paused|stopped) ", line)
        assert match, line
        states[int(match.group(1))] = match.group(2)
    return states


def disconnectedSeenBy(cluster: LocalCluster, pnn: int) -> set[int]:
    """The nodes node C{pnn} has flagged DISCONNECTED (a quick GET_NODEMAP)."""
    reply = syncControl(cluster.socketPath(pnn), C.Control.GET_NODEMAP, timeout=5)
    return {
        n.pnn
        for n in C.decodeNodeMap(reply.data)
        if n.flags & C.NODE_FLAGS_DISCONNECTED
    }


def test_lifecycle(clusterDir) -> None:  # type: ignore[no-untyped-def]
    """
    setup, start, status, socket, env (Samba's tool works with the printed
    exports), kill K and start K, pause K and resume K (keepalives mark it
    DISCONNECTED after KeepaliveInterval*KeepaliveLimit), stop (no process
    left).
    """
    d = clusterDir
    base = randomBase(3)
    result = cli(
        "--dir", d, "setup", "--nodes", "3", "--base", base,
        "--tunable", "KeepaliveInterval=1", "--tunable", "KeepaliveLimit=2",
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    cluster = LocalCluster(d)
    addresses = [cluster.address(k) for k in range(3)]
    assert addresses[0] == base

    start = time.monotonic()
    result = cli("--dir", d, "start")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert time.monotonic() - start < 30
    status = cli("--dir", d, "status").stdout.splitlines()
    assert len(status) == 3
    pids = {}
    for k, line in enumerate(status):
        match = re.fullmatch(
            rf"node{k} {re.escape(addresses[k])} running \(pid (\d+)\)  sees 0:OK 1:OK 2:OK",
            line,
        )
        assert match, line
        pids[k] = int(match.group(1))

    for k in (0, 2):
        result = cli("--dir", d, "socket", str(k))
        assert result.returncode == 0
        path = result.stdout.strip()
        assert path == os.path.join(
            os.path.abspath(d), f"node{k}", "run", "ctdbd.socket"
        )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(path)
        probe.close()

    envs = {k: toolEnv(d, k) for k in range(3)}
    for k in range(3):
        result = tool(envs[k], "pnn")
        assert (result.returncode, result.stdout) == (0, f"{k}\n"), result.stderr
        result = tool(envs[k], "listnodes")
        assert result.stdout == "".join(f"{a}\n" for a in addresses)
        assert tool(envs[k], "getpid").stdout == f"{pids[k]}\n"
    assert tool(envs[0], "nodestatus", "all").returncode == 0

    # kill K: the others see it DISCONNECTED promptly; start K brings it back
    result = cli("--dir", d, "kill", "1")
    assert (result.returncode, result.stderr) == (0, "")
    assert not os.path.exists(f"/proc/{pids[1]}") or pids[1] not in processesOf(d)
    result = tool(envs[0], "nodestatus", "1")
    assert (result.returncode, "DISCONNECTED" in result.stdout) == (3, True)
    assert nodeView(d)[1] == "stopped"
    waitFor(
        lambda: disconnectedSeenBy(cluster, 0) == {1},
        5,
        "node 0 to see the killed node 1 disconnected",
    )
    result = cli("--dir", d, "start", "1")
    assert (result.returncode, result.stderr) == (0, "")
    waitFor(
        lambda: (
            tool(envs[0], "nodestatus", "all").returncode == 0
            and tool(envs[2], "nodestatus", "all").returncode == 0
        ),
        10,
        "the restarted node 1 to be OK everywhere",
    )
    assert tool(envs[1], "pnn").stdout == "1\n"

    # pause K: dead after KeepaliveInterval * KeepaliveLimit = 2 s of silence
    result = cli("--dir", d, "pause", "2")
    assert (result.returncode, result.stderr) == (0, "")
    paused = time.monotonic()
    assert nodeView(d) == {0: "running", 1: "running", 2: "paused"}
    waitFor(
        lambda: disconnectedSeenBy(cluster, 0) == disconnectedSeenBy(cluster, 1) == {2},
        8,
        "the paused node 2 to be marked disconnected",
    )
    elapsed = time.monotonic() - paused
    # at least one whole silent interval, at most the limit plus slack
    assert 0.8 <= elapsed <= 5, elapsed
    result = tool(envs[0], "nodestatus", "2")
    assert result.returncode == 3
    assert "DISCONNECTED|UNHEALTHY|INACTIVE" in result.stdout
    result = cli("--dir", d, "resume", "2")
    assert (result.returncode, result.stderr) == (0, "")
    waitFor(
        lambda: all(
            tool(envs[k], "nodestatus", "all").returncode == 0 for k in range(3)
        ),
        10,
        "the resumed node 2 to be connected again",
    )
    assert nodeView(d) == {0: "running", 1: "running", 2: "running"}

    # stop: every daemon gone, no stray process mentions the directory
    before = [cluster.pid(k) for k in range(3)]
    assert None not in before
    result = cli("--dir", d, "stop")
    assert (result.returncode, result.stderr) == (0, "")
    assert nodeView(d) == {0: "stopped", 1: "stopped", 2: "stopped"}
    waitFor(
        lambda: processesOf(os.path.abspath(d)) == [], 5, "no process of the cluster"
    )
    for k in range(3):
        assert not os.path.exists(cluster.pidFile(k))
    result = tool(envs[0], "pnn")
    assert result.returncode != 0
    assert "Failed to connect to CTDB daemon" in result.stderr


def test_start_fails_when_address_taken(clusterDir) -> None:  # type: ignore[no-untyped-def]
    """
    C{start} with node 1's address:port already taken fails quickly with a
    message naming the node and the cause, and leaves no node running.
    """
    d = clusterDir
    base = randomBase(2)
    assert cli("--dir", d, "setup", "--nodes", "2", "--base", base).returncode == 0
    cluster = LocalCluster(d)
    squatter = socket.socket()
    try:
        squatter.bind((cluster.address(1), 4379))
        squatter.listen()
        start = time.monotonic()
        result = cli("--dir", d, "start", timeout=60)
        assert time.monotonic() - start < 20
    finally:
        squatter.close()
    assert result.returncode == 1
    assert result.stderr.startswith("ctdb-cluster: node 1 exited during start;")
    assert "Address already in use" in result.stderr
    assert nodeView(d) == {0: "stopped", 1: "stopped"}
    waitFor(
        lambda: processesOf(os.path.abspath(d)) == [], 5, "no process of the cluster"
    )


@pytest.fixture(scope="module")
def setUpDir(tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    """A set-up (never started) 3-node cluster directory."""
    d = str(tmp_path_factory.mktemp("cli") / "c")
    assert (
        cli("--dir", d, "setup", "--nodes", "3", "--base", randomBase(3)).returncode
        == 0
    )
    return d


@pytest.mark.parametrize(
    "args, rc, message",
    [
        ([], 2, "the following arguments are required: --dir"),
        (["--dir", "{d}", "bogus"], 2, "invalid choice: 'bogus'"),
        (["--dir", "{d}", "kill", "x"], 2, "invalid int value: 'x'"),
        (
            ["--dir", "{d}/none", "status"],
            1,
            "is not a cluster directory (run setup first)",
        ),
        (
            ["--dir", "{d}/x", "setup", "--base", "10.0.0.1"],
            1,
            "must be in 127.0.0.0/8",
        ),
        (["--dir", "{d}/x", "setup", "--nodes", "0"], 1, "needs at least one node"),
        (
            ["--dir", "{d}/x", "setup", "--tunable", "Foo"],
            1,
            "wants NAME=VALUE, not 'Foo'",
        ),
        (["--dir", "{d}", "kill", "7"], 1, "no node 7 (cluster has 3 nodes)"),
        (["--dir", "{d}", "socket", "3"], 1, "no node 3 (cluster has 3 nodes)"),
        (["--dir", "{d}", "kill", "1"], 1, "node 1 is not running"),
        (["--dir", "{d}", "resume", "0"], 1, "node 0 is not running"),
    ],
)
def test_bad_arguments(setUpDir, args, rc, message) -> None:  # type: ignore[no-untyped-def]
    """Bad command lines fail with a one-line message and exit code, no traceback."""
    d = setUpDir
    result = cli(*[a.format(d=d) for a in args])
    assert result.returncode == rc, result
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    if rc == 1:
        assert result.stderr.startswith("ctdb-cluster: ")
        assert result.stderr.count("\n") == 1
