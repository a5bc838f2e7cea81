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
from collections.abc import Callable
from dataclasses import dataclass

from ctdb.cluster import LocalCluster
from tests.integration._cases import IntegrationCase
from tests.integration._clusters import waitFor

HEADER_X = (
    "|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive"
    "|PartiallyOnline|ThisNode|"
)


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

    def __init__(self, case: IntegrationCase, cluster: LocalCluster):
        self.case = case
        self.cluster = cluster

    def __call__(
        self, pnn: int, *args: str, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return self.case.ctdbTool(self.cluster, pnn, *args, timeout=timeout)

    def ok(self, pnn: int, *args: str) -> str:
        """The stdout of a run that must succeed with nothing on stderr."""
        result = self(pnn, *args)
        self.case.assertEqual(
            result.returncode, 0, (result.returncode, result.stdout, result.stderr)
        )
        self.case.assertEqual(result.stderr, "", result.stderr)
        return result.stdout

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


ALL_OK = {0: "OK", 1: "OK", 2: "OK"}


class SharedClusterTests(IntegrationCase):
    """
    The checks that restore what they change, on one cluster that the tests
    of this class share; each starts from a healthy, recovered cluster.
    """

    def setUp(self) -> None:
        super().setUp()
        self.tool = Tool(self, self.sharedCluster(3))
        self.tool.waitSettled([0, 1, 2])

    # -- status and friends ----------------------------------------------------

    def test_status(self) -> None:
        """C{status} on each node: every node OK, one generation, the full vnn
        map, NORMAL, the same leader; exactly 4.17's layout."""
        seen = []
        for k in range(3):
            s = self.tool.status(k)
            self.assertEqual(s.text, expectedStatus(self.tool.cluster, k, ALL_OK, s))
            self.assertEqual(s.vnnmap, [0, 1, 2])
            seen.append(s)
        self.assertEqual(len({s.generation for s in seen}), 1)
        self.assertEqual(len({s.leader for s in seen}), 1)

    def test_statusMachine(self) -> None:
        """C{status -X} and C{-Y} (machine-readable, C{-x} picks the separator):
        a header and one row per node, as 4.17 prints them."""
        c = self.tool.cluster
        rows = [
            f"|{k}|{c.address(k)}|0|0|0|0|0|0|0|0|{'Y' if k == 1 else 'N'}|"
            for k in range(3)
        ]
        self.assertEqual(
            self.tool.ok(1, "status", "-X"), "\n".join([HEADER_X, *rows]) + "\n"
        )
        # 4.17's -Y is the same table (the separator is set with -x).
        self.assertEqual(
            self.tool.ok(1, "status", "-Y"), "\n".join([HEADER_X, *rows]) + "\n"
        )
        self.assertEqual(
            self.tool.ok(1, "-x", ":", "status", "-Y"),
            "\n".join([HEADER_X, *rows]).replace("|", ":") + "\n",
        )

    def test_leader(self) -> None:
        """C{leader} prints the same pnn on every node, the one status shows."""
        leaders = {self.tool.ok(k, "leader") for k in range(3)}
        self.assertEqual(leaders, {f"{self.tool.status().leader}\n"})

    def test_getreclock(self) -> None:
        """No cluster lock is configured: C{getreclock} prints nothing."""
        self.assertEqual(self.tool.ok(0, "getreclock"), "")

    def test_sync(self) -> None:
        """C{sync} (an IP reallocation run) is answered by the leader."""
        start = time.monotonic()
        self.assertEqual(self.tool.ok(2, "sync"), "")
        self.assertLess(time.monotonic() - start, 5)

    def test_recover(self) -> None:
        """C{recover}: the tool returns once the generation changed; every node
        then has the new one and recovery mode NORMAL."""
        before = self.tool.status(0)
        self.assertEqual(self.tool.ok(1, "recover"), "")
        after = self.tool.waitSettled([0, 1, 2])
        self.assertNotEqual(after.generation, before.generation)
        self.assertEqual(
            after.text, expectedStatus(self.tool.cluster, 0, ALL_OK, after)
        )

    # -- node states -----------------------------------------------------------

    def test_stopContinue(self) -> None:
        """C{stop}: the node shows STOPPED|INACTIVE, leaves the vnn map, stays in
        recovery mode itself, and C{nodestatus} exits with 0x20; C{continue}
        brings it back."""
        c = self.tool.cluster
        self.assertEqual(self.tool.ok(1, "stop"), "")
        s = self.tool.waitSettled([0, 2], nodes=[0, 2])
        flags = {0: "OK", 1: "STOPPED|INACTIVE", 2: "OK"}
        self.assertEqual(s.text, expectedStatus(c, 0, flags, s))
        own = self.tool(1, "nodestatus")
        self.assertEqual(
            (own.returncode, own.stdout),
            (
                32,
                nodeLine(c, 1, "STOPPED|INACTIVE", True) + "\n",
            ),
        )
        every = self.tool(0, "nodestatus", "all")
        self.assertEqual(every.returncode, 32)
        self.assertEqual(
            every.stdout,
            "Number of nodes:3\n"
            + "".join(nodeLine(c, k, text, k == 0) + "\n" for k, text in flags.items()),
        )
        self.assertIn(
            f"|1|{c.address(1)}|0|0|0|0|0|1|1|0|N|", self.tool.ok(0, "status", "-X")
        )
        self.assertIn("Recovery mode:RECOVERY (1)\n", self.tool.ok(1, "status"))
        self.assertEqual(self.tool.ok(1, "continue"), "")
        s = self.tool.waitSettled([0, 1, 2])
        self.assertEqual(s.text, expectedStatus(c, 0, ALL_OK, s))

    def test_disableEnable(self) -> None:
        """C{disable}: DISABLED (not inactive, still in the vnn map),
        C{nodestatus all} exits with 4; C{enable} clears it."""
        c = self.tool.cluster
        self.assertEqual(self.tool.ok(2, "disable"), "")
        s = self.tool.waitSettled([0, 1, 2])
        flags = {0: "OK", 1: "OK", 2: "DISABLED"}
        self.assertEqual(s.text, expectedStatus(c, 0, flags, s))
        self.assertEqual(self.tool(0, "nodestatus", "all").returncode, 4)
        self.assertIn(
            f"|2|{c.address(2)}|0|0|0|1|0|0|0|0|N|", self.tool.ok(0, "status", "-X")
        )
        self.assertEqual(self.tool.ok(2, "enable"), "")
        waitFor(
            lambda: self.tool(0, "nodestatus", "all").returncode == 0,
            10,
            "node 2 enabled",
        )

    def test_banExpires(self) -> None:
        """C{ban 3} on a node that does not lead: BANNED|INACTIVE, C{nodestatus
        all} exits with 8 and the banned node is in recovery mode; after 3 s the
        ban ends by itself and the node rejoins the vnn map.  (The tool's
        closing takeover run waits for a leader, so banning the leader itself
        can outlast a 3 s ban.)"""
        c = self.tool.cluster
        victim = next(k for k in range(3) if k != self.tool.status(0).leader)
        start = time.monotonic()
        self.assertEqual(self.tool.ok(victim, "ban", "3"), "")
        every = self.tool(0 if victim else 1, "nodestatus", "all")
        self.assertEqual(every.returncode, 8, every)
        self.assertIn(nodeLine(c, victim, "BANNED|INACTIVE") + "\n", every.stdout)
        self.assertIn("Recovery mode:RECOVERY (1)\n", self.tool.ok(victim, "status"))
        waitFor(
            lambda: self.tool(0, "nodestatus", "all").returncode == 0,
            10,
            "the ban to end",
        )
        self.assertGreaterEqual(time.monotonic() - start, 2.9)
        s = self.tool.waitSettled([0, 1, 2])
        self.assertEqual(s.text, expectedStatus(c, 0, ALL_OK, s))

    def test_banUnban(self) -> None:
        """C{ban 100} then C{unban}: the node is back at once."""
        self.assertEqual(self.tool.ok(1, "ban", "100"), "")
        self.assertEqual(self.tool(1, "nodestatus").returncode, 8)
        self.assertEqual(self.tool.ok(1, "unban"), "")
        self.assertEqual(self.tool(1, "nodestatus").returncode, 0)
        self.tool.waitSettled([0, 1, 2])

    def test_setleaderrole(self) -> None:
        """C{setleaderrole off} on the leader: another node takes over, and
        C{getcapabilities} shows it; C{on} gives the role back (without
        taking the leadership back)."""
        leader = self.tool.status(0).leader
        self.assertEqual(self.tool.ok(leader, "setleaderrole", "off"), "")
        self.assertEqual(
            self.tool.ok(leader, "getcapabilities"), "LEADER: NO\nLMASTER: YES\n"
        )
        waitFor(lambda: self.tool.status(0).leader != leader, 10, "a new leader")
        new = self.tool.status(0).leader
        self.assertEqual({self.tool.ok(k, "leader") for k in range(3)}, {f"{new}\n"})
        self.assertEqual(self.tool.ok(leader, "setleaderrole", "on"), "")
        self.assertEqual(
            self.tool.ok(leader, "getcapabilities"), "LEADER: YES\nLMASTER: YES\n"
        )
        self.tool.waitSettled([0, 1, 2])
        self.assertEqual(self.tool.status(0).leader, new)

    def test_setlmasterrole(self) -> None:
        """C{setlmasterrole off}: the node leaves the vnn map at the next
        recovery but stays OK; C{on} puts it back."""
        c = self.tool.cluster
        self.assertEqual(self.tool.ok(1, "setlmasterrole", "off"), "")
        self.assertEqual(
            self.tool.ok(1, "getcapabilities"), "LEADER: YES\nLMASTER: NO\n"
        )
        s = self.tool.waitSettled([0, 2])
        self.assertEqual(s.text, expectedStatus(c, 0, ALL_OK, s))
        self.assertEqual(self.tool.ok(1, "setlmasterrole", "on"), "")
        self.tool.waitSettled([0, 1, 2])


class ReloadNodesTests(IntegrationCase):
    """C{reloadnodes}, each test on a cluster of its own."""

    def test_reloadnodes(self) -> None:
        """C{reloadnodes} after adding a 4th node to every nodes file: the tool
        disables recoveries on every node (DISABLE_RECOVERIES, each answers with
        its pnn), reloads, and the started node joins the vnn map; then the
        stopped node deleted with '#' is dropped."""
        c = self.makeCluster(3)
        tool = Tool(self, c)
        unchanged = tool(0, "reloadnodes")
        self.assertEqual(unchanged.returncode, 0)
        self.assertEqual(
            unchanged.stderr, "No change in nodes file, skipping unnecessary reload\n"
        )

        new = c.addNode()
        self.assertEqual(new, 3)
        out = tool(0, "reloadnodes", timeout=30)
        self.assertEqual((out.returncode, out.stdout), (0, "Node 3 is NEW\n"), out)
        s = tool.status(1)
        self.assertIn(nodeLine(c, 3, "DISCONNECTED|UNHEALTHY|INACTIVE"), s.text)
        self.assertTrue(s.text.startswith("Number of nodes:4\n"), s.text)
        c.start([3])
        s = tool.waitSettled([0, 1, 2, 3])
        flags = {k: "OK" for k in range(4)}
        self.assertEqual(s.text, expectedStatus(c, 0, flags, s))
        self.assertEqual(
            tool.status(3).text, expectedStatus(c, 3, flags, tool.status(3))
        )

        c.stop([3])
        waitFor(
            lambda: tool(0, "nodestatus", "3").returncode != 0,
            10,
            "node 3 disconnected",
        )
        c.deleteNode(3)
        out = tool(1, "reloadnodes", timeout=30)
        self.assertEqual((out.returncode, out.stdout), (0, "Node 3 is DELETED\n"), out)
        s = tool.waitSettled([0, 1, 2], nodes=[0, 1, 2])
        self.assertEqual(
            s.text, expectedStatus(c, 0, {k: "OK" for k in range(3)}, s, deleted=1)
        )

    def test_reloadnodesRefusesConnected(self) -> None:
        """Deleting a node that is still connected is refused by the tool."""
        c = self.makeCluster(3)
        tool = Tool(self, c)
        c.deleteNode(2)
        out = tool(0, "reloadnodes")
        self.assertEqual(out.returncode, 1)
        self.assertIn("ERROR: Node 2 is still connected\n", out.stderr)
        self.assertEqual(tool(0, "nodestatus", "all").returncode, 0)
