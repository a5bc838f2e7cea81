# -*- test-case-name: tests.integration.test_tool_states -*-
"""
Node states and recovery through Samba's own C{ctdb} tool (4.17.12) against
our daemons: C{status} (and C{-X}/C{-Y}), C{nodestatus} exit codes,
C{leader}, C{recover}, C{ban}/C{unban}, C{stop}/C{continue},
C{disable}/C{enable}, C{getreclock}, C{setleaderrole}, C{setlmasterrole},
C{sync} and C{reloadnodes}.

The expected texts are those a real 3-node ctdbd 4.17.12 cluster printed
for the same commands (run with C{tests.support.realctdbd}); only addresses,
generations and which node leads vary.  Real ctdbd suppresses recoveries for
RerecoveryTimeout (10 s) after each one, so its vnn map lags behind node
state changes; ours recovers at once, so the tests wait for the map to
settle rather than expecting the lag.

The checks that restore what they change share one cluster; reloadnodes
gets its own.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from ctdb.cluster import LocalCluster
from tests.integration.conftest import randomBase

HEADER_X = (
    "|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive"
    "|PartiallyOnline|ThisNode|"
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[LocalCluster]:  # type: ignore[no-untyped-def]
    """One started 3-node cluster; every test leaves it as it found it."""
    cluster = LocalCluster(str(tmp_path_factory.mktemp("tool-states") / "cluster"))
    cluster.setup(3, base=randomBase(3))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert result.stderr == "", result.stderr
    return result.stdout


def waitFor(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Status:
    """The parts of C{ctdb status} that vary from run to run."""

    text: str
    generation: int
    vnnmap: list[int]
    recmode: int
    leader: int


def parseStatus(text: str) -> Status:
    gen = re.search(r"^Generation:(\d+)$", text, re.MULTILINE)
    mode = re.search(r"^Recovery mode:\w+ \((\d)\)$", text, re.MULTILINE)
    leader = re.search(r"^Leader:(\d+)$", text, re.MULTILINE)
    assert gen and mode and leader, text
    vnnmap = [
        int(m) for m in re.findall(r"^hash:\d+ lmaster:(\d+)$", text, re.MULTILINE)
    ]
    return Status(
        text, int(gen.group(1)), vnnmap, int(mode.group(1)), int(leader.group(1))
    )


def nodeLine(cluster: LocalCluster, pnn: int, text: str, this: bool = False) -> str:
    return (
        f"pnn:{pnn} {cluster.address(pnn):<16} {text}{' (THIS NODE)' if this else ''}"
    )


def expectedStatus(
    cluster: LocalCluster, me: int, flags: dict[int, str], s: Status, deleted: int = 0
) -> str:
    """The whole text of 4.17's C{status} (print_status) for these flags."""
    lines = [
        f"Number of nodes:{len(flags) + deleted}"
        + (f" (including {deleted} deleted nodes)" if deleted else "")
    ]
    lines += [nodeLine(cluster, k, text, k == me) for k, text in sorted(flags.items())]
    lines.append(f"Generation:{s.generation}")
    lines.append(f"Size:{len(s.vnnmap)}")
    lines += [f"hash:{i} lmaster:{p}" for i, p in enumerate(s.vnnmap)]
    lines.append(
        f"Recovery mode:{'NORMAL' if s.recmode == 0 else 'RECOVERY'} ({s.recmode})"
    )
    lines.append(f"Leader:{s.leader}")
    return "\n".join(lines) + "\n"


class Tool:
    """The ctdb tool against one cluster."""

    def __init__(
        self,
        cluster: LocalCluster,
        run: Callable[..., subprocess.CompletedProcess[str]],
    ):
        self.cluster = cluster
        self.run = run

    def __call__(
        self, pnn: int, *args: str, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return self.run(self.cluster, pnn, *args, timeout=timeout)

    def ok(self, pnn: int, *args: str) -> str:
        return ok(self(pnn, *args))

    def status(self, pnn: int = 0) -> Status:
        return parseStatus(self.ok(pnn, "status"))

    def settled(
        self, vnnmap: list[int], nodes: list[int] | None = None
    ) -> Callable[[], bool]:
        """True once every node in C{nodes} shows this vnn map, one
        generation and recovery mode NORMAL."""
        nodes = nodes if nodes is not None else list(range(self.cluster.size))

        def check() -> bool:
            seen = [self.status(k) for k in nodes]
            return all(
                s.vnnmap == vnnmap
                and s.recmode == 0
                and s.generation == seen[0].generation
                for s in seen
            )

        return check

    def waitSettled(
        self, vnnmap: list[int], nodes: list[int] | None = None, timeout: float = 15
    ) -> Status:
        waitFor(self.settled(vnnmap, nodes), timeout, f"vnn map {vnnmap}")
        return self.status((nodes or [0])[0])


@pytest.fixture
def tool(shared, ctdbTool) -> Tool:  # type: ignore[no-untyped-def]
    t = Tool(shared, ctdbTool)
    # Each test starts from a healthy, recovered cluster.
    t.waitSettled([0, 1, 2])
    return t


ALL_OK = {0: "OK", 1: "OK", 2: "OK"}


# -- status and friends ---------------------------------------------------------


def test_status(tool) -> None:  # type: ignore[no-untyped-def]
    """C{status} on each node: every node OK, one generation, the full vnn
    map, NORMAL, the same leader; exactly 4.17's layout."""
    seen = []
    for k in range(3):
        s = tool.status(k)
        assert s.text == expectedStatus(tool.cluster, k, ALL_OK, s)
        assert s.vnnmap == [0, 1, 2]
        seen.append(s)
    assert len({s.generation for s in seen}) == 1
    assert len({s.leader for s in seen}) == 1


def test_statusMachine(tool) -> None:  # type: ignore[no-untyped-def]
    """C{status -X} and C{-Y} (machine-readable, C{-x} picks the separator):
    a header and one row per node, as 4.17 prints them."""
    c = tool.cluster
    rows = [
        f"|{k}|{c.address(k)}|0|0|0|0|0|0|0|0|{'Y' if k == 1 else 'N'}|"
        for k in range(3)
    ]
    assert tool.ok(1, "status", "-X") == "\n".join([HEADER_X, *rows]) + "\n"
    # 4.17's -Y is the same table (the separator is set with -x).
    assert tool.ok(1, "status", "-Y") == "\n".join([HEADER_X, *rows]) + "\n"
    assert (
        tool.ok(1, "-x", ":", "status", "-Y")
        == "\n".join([HEADER_X, *rows]).replace("|", ":") + "\n"
    )


def test_leader(tool) -> None:  # type: ignore[no-untyped-def]
    """C{leader} prints the same pnn on every node, the one status shows."""
    leaders = {tool.ok(k, "leader") for k in range(3)}
    assert leaders == {f"{tool.status().leader}\n"}


def test_getreclock(tool) -> None:  # type: ignore[no-untyped-def]
    """No cluster lock is configured: C{getreclock} prints nothing."""
    assert tool.ok(0, "getreclock") == ""


def test_sync(tool) -> None:  # type: ignore[no-untyped-def]
    """C{sync} (an IP reallocation run) is answered by the leader."""
    start = time.monotonic()
    assert tool.ok(2, "sync") == ""
    assert time.monotonic() - start < 5


def test_recover(tool) -> None:  # type: ignore[no-untyped-def]
    """C{recover}: the tool returns once the generation changed; every node
    then has the new one and recovery mode NORMAL."""
    before = tool.status(0)
    assert tool.ok(1, "recover") == ""
    after = tool.waitSettled([0, 1, 2])
    assert after.generation != before.generation
    assert after.text == expectedStatus(tool.cluster, 0, ALL_OK, after)


# -- node states -----------------------------------------------------------------


def test_stopContinue(tool) -> None:  # type: ignore[no-untyped-def]
    """C{stop}: the node shows STOPPED|INACTIVE, leaves the vnn map, stays in
    recovery mode itself, and C{nodestatus} exits with 0x20; C{continue}
    brings it back."""
    c = tool.cluster
    assert tool.ok(1, "stop") == ""
    s = tool.waitSettled([0, 2], nodes=[0, 2])
    flags = {0: "OK", 1: "STOPPED|INACTIVE", 2: "OK"}
    assert s.text == expectedStatus(c, 0, flags, s)
    own = tool(1, "nodestatus")
    assert (own.returncode, own.stdout) == (
        32,
        nodeLine(c, 1, "STOPPED|INACTIVE", True) + "\n",
    )
    every = tool(0, "nodestatus", "all")
    assert every.returncode == 32
    assert every.stdout == "Number of nodes:3\n" + "".join(
        nodeLine(c, k, text, k == 0) + "\n" for k, text in flags.items()
    )
    assert f"|1|{c.address(1)}|0|0|0|0|0|1|1|0|N|" in tool.ok(0, "status", "-X")
    assert "Recovery mode:RECOVERY (1)\n" in tool.ok(1, "status")
    assert tool.ok(1, "continue") == ""
    s = tool.waitSettled([0, 1, 2])
    assert s.text == expectedStatus(c, 0, ALL_OK, s)


def test_disableEnable(tool) -> None:  # type: ignore[no-untyped-def]
    """C{disable}: DISABLED (not inactive, still in the vnn map),
    C{nodestatus all} exits with 4; C{enable} clears it."""
    c = tool.cluster
    assert tool.ok(2, "disable") == ""
    s = tool.waitSettled([0, 1, 2])
    flags = {0: "OK", 1: "OK", 2: "DISABLED"}
    assert s.text == expectedStatus(c, 0, flags, s)
    assert tool(0, "nodestatus", "all").returncode == 4
    assert f"|2|{c.address(2)}|0|0|0|1|0|0|0|0|N|" in tool.ok(0, "status", "-X")
    assert tool.ok(2, "enable") == ""
    waitFor(lambda: tool(0, "nodestatus", "all").returncode == 0, 10, "node 2 enabled")


def test_banExpires(tool) -> None:  # type: ignore[no-untyped-def]
    """C{ban 3} on a node that does not lead: BANNED|INACTIVE, C{nodestatus
    all} exits with 8 and the banned node is in recovery mode; after 3 s the
    ban ends by itself and the node rejoins the vnn map.  (The tool's
    closing takeover run waits for a leader, so banning the leader itself
    can outlast a 3 s ban.)"""
    c = tool.cluster
    victim = next(k for k in range(3) if k != tool.status(0).leader)
    start = time.monotonic()
    assert tool.ok(victim, "ban", "3") == ""
    every = tool(0 if victim else 1, "nodestatus", "all")
    assert every.returncode == 8, every
    assert nodeLine(c, victim, "BANNED|INACTIVE") + "\n" in every.stdout
    assert "Recovery mode:RECOVERY (1)\n" in tool.ok(victim, "status")
    waitFor(lambda: tool(0, "nodestatus", "all").returncode == 0, 10, "the ban to end")
    assert time.monotonic() - start >= 2.9
    s = tool.waitSettled([0, 1, 2])
    assert s.text == expectedStatus(c, 0, ALL_OK, s)


def test_banUnban(tool) -> None:  # type: ignore[no-untyped-def]
    """C{ban 100} then C{unban}: the node is back at once."""
    assert tool.ok(1, "ban", "100") == ""
    assert tool(1, "nodestatus").returncode == 8
    assert tool.ok(1, "unban") == ""
    assert tool(1, "nodestatus").returncode == 0
    tool.waitSettled([0, 1, 2])


def test_setleaderrole(tool) -> None:  # type: ignore[no-untyped-def]
    """C{setleaderrole off} on the leader: another node takes over, and
    C{getcapabilities} shows it; C{on} gives the role back (without
    taking the leadership back)."""
    leader = tool.status(0).leader
    assert tool.ok(leader, "setleaderrole", "off") == ""
    assert tool.ok(leader, "getcapabilities") == "LEADER: NO\nLMASTER: YES\n"
    waitFor(lambda: tool.status(0).leader != leader, 10, "a new leader")
    new = tool.status(0).leader
    assert {tool.ok(k, "leader") for k in range(3)} == {f"{new}\n"}
    assert tool.ok(leader, "setleaderrole", "on") == ""
    assert tool.ok(leader, "getcapabilities") == "LEADER: YES\nLMASTER: YES\n"
    tool.waitSettled([0, 1, 2])
    assert tool.status(0).leader == new


def test_setlmasterrole(tool) -> None:  # type: ignore[no-untyped-def]
    """C{setlmasterrole off}: the node leaves the vnn map at the next
    recovery but stays OK; C{on} puts it back."""
    c = tool.cluster
    assert tool.ok(1, "setlmasterrole", "off") == ""
    assert tool.ok(1, "getcapabilities") == "LEADER: YES\nLMASTER: NO\n"
    s = tool.waitSettled([0, 2])
    assert s.text == expectedStatus(c, 0, ALL_OK, s)
    assert tool.ok(1, "setlmasterrole", "on") == ""
    tool.waitSettled([0, 1, 2])


# -- reloadnodes -------------------------------------------------------------------


def test_reloadnodes(makeCluster, ctdbTool) -> None:  # type: ignore[no-untyped-def]
    """C{reloadnodes} after adding a 4th node to every nodes file: the tool
    disables recoveries on every node (DISABLE_RECOVERIES, each answers with
    its pnn), reloads, and the started node joins the vnn map; then the
    stopped node deleted with '#' is dropped."""
    c = makeCluster(3)
    tool = Tool(c, ctdbTool)
    unchanged = tool(0, "reloadnodes")
    assert unchanged.returncode == 0
    assert unchanged.stderr == "No change in nodes file, skipping unnecessary reload\n"

    new = c.addNode()
    assert new == 3
    out = tool(0, "reloadnodes", timeout=30)
    assert (out.returncode, out.stdout) == (0, "Node 3 is NEW\n"), out
    s = tool.status(1)
    assert nodeLine(c, 3, "DISCONNECTED|UNHEALTHY|INACTIVE") in s.text
    assert s.text.startswith("Number of nodes:4\n")
    c.start([3])
    s = tool.waitSettled([0, 1, 2, 3])
    flags = {k: "OK" for k in range(4)}
    assert s.text == expectedStatus(c, 0, flags, s)
    assert tool.status(3).text == expectedStatus(c, 3, flags, tool.status(3))

    c.stop([3])
    waitFor(
        lambda: tool(0, "nodestatus", "3").returncode != 0, 10, "node 3 disconnected"
    )
    c.deleteNode(3)
    out = tool(1, "reloadnodes", timeout=30)
    assert (out.returncode, out.stdout) == (0, "Node 3 is DELETED\n"), out
    s = tool.waitSettled([0, 1, 2], nodes=[0, 1, 2])
    assert s.text == expectedStatus(c, 0, {k: "OK" for k in range(3)}, s, deleted=1)


def test_reloadnodesRefusesConnected(makeCluster, ctdbTool) -> None:  # type: ignore[no-untyped-def]
    """Deleting a node that is still connected is refused by the tool."""
    c = makeCluster(3)
    tool = Tool(c, ctdbTool)
    c.deleteNode(2)
    out = tool(0, "reloadnodes")
    assert out.returncode == 1
    assert "ERROR: Node 2 is still connected\n" in out.stderr
    assert tool(0, "nodestatus", "all").returncode == 0
