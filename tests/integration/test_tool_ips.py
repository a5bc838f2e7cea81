# -*- test-case-name: tests.integration.test_tool_ips -*-
"""
Samba's C{ctdb} tool's public-IP commands against our drop-in C{ctdbd} and
against Samba's real ctdbd 4.17, side by side: two 3-node clusters laid
out the same way (L{RealCtdbdCluster}, one running Samba's ctdbd, the
other ours), both in ctdbd's test mode, where nothing on the host changes
(no event scripts, so no address is ever added; ctdbd and we skip the
address checks).  Node 2 has no public addresses, as in Samba's
local_daemons.sh.

Every command is run on both, and both must print what the real one prints
here (a literal taken from real ctdbd 4.17.12 by hand, in the same set-up):
C{ip}, C{ip all}, C{ip -v}, C{-X ip -v all}, C{ipinfo}, C{ifaces},
C{setifacelink}, C{addip}, C{delip}, C{moveip}, C{ipreallocate},
C{reloadips}, C{gratarp}, C{gettickles}, C{addtickle}, C{deltickle}, and
the addresses' moves on C{disable}/C{enable} and C{stop}/C{continue}.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import unittest
from typing import Any

from tests.integration._cases import IntegrationCase
from tests.integration._clusters import randomBase, sambaTool, trialSuite
from tests.support.realctdbd import CTDBD as REAL_CTDBD
from tests.support.realctdbd import RealCtdbdCluster

OUR_CTDBD = os.path.join(os.path.dirname(sys.executable), "ctdbd")

#: node K's public_addresses (TEST-NET-2 and -3: never on this host)
ADDRESSES = {
    0: "198.51.100.1/24 lo\n203.0.113.1/24 lo\n",
    1: "198.51.100.2/24 lo\n203.0.113.2/24 lo\n",
    2: "",
}

SETTLED = """\
Public IPs on ALL nodes
198.51.100.1 0
198.51.100.2 1
203.0.113.1 0
203.0.113.2 1
"""


def _isLocal(address: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


def _skipReason() -> str | None:
    if not os.access(REAL_CTDBD, os.X_OK):
        return "Samba's ctdbd is not installed"
    if not os.access(OUR_CTDBD, os.X_OK):
        return "our ctdbd is not installed in the venv"
    if shutil.which("ctdb") is None:
        return "Samba's ctdb tool is not installed"
    for text in ADDRESSES.values():
        for line in text.splitlines():
            if _isLocal(line.split("/")[0]):
                return f"{line.split('/')[0]} is an address of this host"
    return None


def _cluster(directory: str, kind: str) -> RealCtdbdCluster:
    cluster = RealCtdbdCluster(
        directory,
        base=randomBase(kind),
        nodes=3,
        ctdbd=REAL_CTDBD if kind == "real" else OUR_CTDBD,
        logLevel="INFO",
    )
    cluster.setup()
    for pnn, text in ADDRESSES.items():
        with open(os.path.join(cluster.nodeDir(pnn), "public_addresses"), "w") as f:
            f.write(text)
    return cluster


def tool(cluster: Any, pnn: int, *args: str) -> str:
    """Samba's tool against node C{pnn}: what it printed, then rc=N."""
    env = dict(os.environ)
    env.update(cluster.env(pnn))
    done = subprocess.run(
        [sambaTool(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return done.stdout + done.stderr + f"rc={done.returncode}\n"


@unittest.skipIf(_skipReason() is not None, _skipReason() or "")
class _IPToolCase(IntegrationCase):
    """Both clusters, started by the first test that needs them."""

    shareClusters = True

    def clusters(self) -> dict[str, RealCtdbdCluster]:
        if self.shareClusters:
            return self.classResource("clusters", self._startBoth)
        return self._startBoth(perTest=True)

    def _startBoth(self, perTest: bool = False) -> dict[str, RealCtdbdCluster]:
        made: dict[str, RealCtdbdCluster] = {}
        for kind in ("real", "ours"):
            if perTest:
                directory = self.mktempDirectory(f"txctdb-ip{kind[0]}-")
            else:
                directory = self.classDirectory(f"txctdb-ip{kind[0]}-")
            cluster = _cluster(directory, kind)
            if perTest:
                self.addCleanup(cluster.stop)
            else:
                type(self).addClassCleanup(cluster.stop)
            cluster.start(timeout=60)
            made[kind] = cluster
        for cluster in made.values():
            self.waitFor(cluster, 0, ["ip", "all"], SETTLED)
        return made

    def waitFor(
        self,
        cluster: Any,
        pnn: int,
        args: list[str],
        expected: str,
        timeout: float = 30.0,
    ) -> None:
        """Until C{ctdb args} on node C{pnn} prints C{expected} (plus rc=0)."""
        deadline = time.monotonic() + timeout
        while True:
            out = tool(cluster, pnn, *args)
            if out == expected + "rc=0\n":
                return
            if time.monotonic() > deadline:
                self.assertEqual(
                    out,
                    expected + "rc=0\n",
                    f"{cluster.ctdbd}: ctdb -n {pnn} {' '.join(args)}",
                )
            time.sleep(0.3)

    def same(self, steps: list[tuple[int, list[str], str]]) -> None:
        """Each (pnn, args, expected output with rc) on real, then ours."""
        for kind, cluster in self.clusters().items():
            for pnn, args, expected in steps:
                self.assertEqual(
                    tool(cluster, pnn, *args),
                    expected,
                    f"{kind}: ctdb -n {pnn} {' '.join(args)}",
                )


class ReadingTests(_IPToolCase):
    """Commands that leave the state as they found it."""

    def test_ip(self) -> None:
        """C{ip} in its forms."""
        self.same(
            [
                (0, ["ip", "all"], SETTLED + "rc=0\n"),
                (
                    0,
                    ["ip", "-v", "all"],
                    (
                        "Public IPs on ALL nodes\n"
                        "198.51.100.1 node[0] active[lo] available[lo] configured[lo]\n"
                        "198.51.100.2 node[1] active[lo] available[lo] configured[lo]\n"
                        "203.0.113.1 node[0] active[lo] available[lo] configured[lo]\n"
                        "203.0.113.2 node[1] active[lo] available[lo] configured[lo]\n"
                        "rc=0\n"
                    ),
                ),
                (
                    1,
                    ["ip"],
                    "Public IPs on node 1\n198.51.100.2 1\n203.0.113.2 1\nrc=0\n",
                ),
                (
                    0,
                    ["-X", "ip", "-v", "all"],
                    (
                        "|Public IP|Node|ActiveInterfaces|AvailableInterfaces|"
                        "ConfiguredInterfaces|\n"
                        "|198.51.100.1|0|lo|lo|lo|\n"
                        "|198.51.100.2|1|lo|lo|lo|\n"
                        "|203.0.113.1|0|lo|lo|lo|\n"
                        "|203.0.113.2|1|lo|lo|lo|\n"
                        "rc=0\n"
                    ),
                ),
                (2, ["ip"], "Public IPs on node 2\nrc=0\n"),
            ]
        )

    def test_ipinfo(self) -> None:
        """C{ipinfo}, of an address the node knows and of others."""
        self.same(
            [
                (
                    0,
                    ["ipinfo", "198.51.100.1"],
                    (
                        "Public IP[198.51.100.1] info on node 0\n"
                        "IP:198.51.100.1\n"
                        "CurrentNode:0\n"
                        "NumInterfaces:1\n"
                        "Interface[1]: Name:lo Link:up References:2 (active)\n"
                        "rc=0\n"
                    ),
                ),
                (
                    0,
                    ["ipinfo", "198.51.100.2"],
                    (
                        "Node 0 does not know about IP 198.51.100.2\n"
                        "Control GET_PUBLIC_IP_INFO failed, ret=-1\n"
                        "rc=1\n"
                    ),
                ),
            ]
        )

    def test_ifaces(self) -> None:
        """C{ifaces} and C{setifacelink}: a link taken down makes the node
        give up its addresses (the next takeover run releases them, so the
        references shown soon after vary), and they come back with it."""
        self.same(
            [
                (
                    0,
                    ["ifaces"],
                    "Interfaces on node 0\nname:lo link:up references:2\nrc=0\n",
                ),
                (2, ["ifaces"], "No interfaces configured on node 2\nrc=0\n"),
                (
                    1,
                    ["setifacelink", "eth9", "up"],
                    "Interface eth9 not configured on node 1\nrc=1\n",
                ),
            ]
        )
        down = "Public IPs on node 1\n198.51.100.2 -1\n203.0.113.2 -1\n"
        for kind, cluster in self.clusters().items():
            self.assertEqual(tool(cluster, 1, "setifacelink", "lo", "down"), "rc=0\n")
            self.assertTrue(
                tool(cluster, 1, "-X", "ifaces").startswith(
                    "|Name|LinkStatus|References|\n|lo|0|"
                ),
                kind,
            )
            self.waitFor(cluster, 1, ["ip"], down)
            self.waitFor(
                cluster, 1, ["-X", "ifaces"], "|Name|LinkStatus|References|\n|lo|0|0|\n"
            )
            self.assertEqual(tool(cluster, 1, "setifacelink", "lo", "up"), "rc=0\n")
            self.waitFor(cluster, 0, ["ip", "all"], SETTLED)
            self.waitFor(
                cluster, 1, ["-X", "ifaces"], "|Name|LinkStatus|References|\n|lo|1|2|\n"
            )

    def test_tickles(self) -> None:
        """C{addtickle}, C{gettickles} (by port too), C{deltickle}."""
        conns = [
            ("10.1.1.1:1234", "198.51.100.1:445"),
            ("10.1.1.2:1235", "198.51.100.1:445"),
            ("10.1.1.2:1235", "198.51.100.1:139"),
        ]
        steps: list[tuple[int, list[str], str]] = [
            (0, ["gettickles", "198.51.100.1"], self.tickles()),
        ]
        steps += [(0, ["addtickle", src, dst], "rc=0\n") for src, dst in conns]
        steps += [
            (0, ["gettickles", "198.51.100.1"], self.tickles(*conns)),
            (0, ["gettickles", "198.51.100.1", "445"], self.tickles(*conns[:2])),
            (
                0,
                ["-X", "gettickles", "198.51.100.1"],
                (
                    "|Source IP|Port|Destiation IP|Port|\n"
                    "|10.1.1.1|1234|198.51.100.1|445|\n"
                    "|10.1.1.2|1235|198.51.100.1|445|\n"
                    "|10.1.1.2|1235|198.51.100.1|139|\n"
                    "rc=0\n"
                ),
            ),
            (0, ["deltickle", *conns[0]], "rc=0\n"),
            # the last entry fills the hole, as in ctdbd's array
            (0, ["gettickles", "198.51.100.1"], self.tickles(conns[2], conns[1])),
            (
                1,
                ["gettickles", "198.51.100.1"],
                (
                    "Control GET_TCP_TICKLE_LIST failed, ret=1\n"
                    "Failed to get list of connections\nrc=1\n"
                ),
            ),
            (
                0,
                ["addtickle", "10.1.1.1:1234", "10.9.9.9:445"],
                (
                    "Control TCP_ADD_DELAYED_UPDATE failed, ret=-1\n"
                    "Failed to register connection\nrc=1\n"
                ),
            ),
        ]
        steps += [(0, ["deltickle", src, dst], "rc=0\n") for src, dst in conns[1:]]
        steps += [(0, ["gettickles", "198.51.100.1"], self.tickles())]
        self.same(steps)

    @staticmethod
    def tickles(*conns: tuple[str, str]) -> str:
        lines = "".join(f"SRC: {src:<15} DST: {dst}\n" for src, dst in conns)
        return (
            "Connections for IP: 198.51.100.1\n"
            f"Num connections: {len(conns)}\n{lines}rc=0\n"
        )

    def test_gratarp(self) -> None:
        """C{gratarp} on the loopback (ctdbd sends nothing there either)."""
        self.same([(0, ["gratarp", "198.51.100.1", "lo"], "rc=0\n")])


class ChangingTests(_IPToolCase):
    """Commands that move, add and delete addresses: fresh clusters."""

    shareClusters = False

    def test_addMoveDelete(self) -> None:
        """C{addip}, C{moveip}, C{delip} of an unhosted and a hosted
        address, C{ipreallocate}."""
        for kind, cluster in self.clusters().items():
            run = lambda pnn, *args, c=cluster: tool(c, pnn, *args)
            self.assertEqual(run(2, "addip", "203.0.113.9/24", "lo"), "rc=0\n", kind)
            self.waitFor(
                cluster, 0, ["ip", "all"], SETTLED + "203.0.113.9 2\n", timeout=15
            )
            self.assertEqual(
                run(2, "addip", "203.0.113.9/24", "lo"),
                "Node already knows about IP 203.0.113.9\nrc=0\n",
                kind,
            )
            self.assertEqual(run(1, "addip", "198.51.100.1/24", "lo"), "rc=0\n", kind)
            # the takeover run that addip asks for, done before the move
            time.sleep(3)
            self.assertEqual(run(0, "moveip", "198.51.100.1", "1"), "rc=0\n", kind)
            moved = SETTLED.replace("198.51.100.1 0", "198.51.100.1 1")
            self.assertEqual(run(0, "ip", "all"), moved + "203.0.113.9 2\nrc=0\n", kind)
            self.assertEqual(
                run(1, "ifaces"),
                "Interfaces on node 1\nname:lo link:up references:3\nrc=0\n",
                kind,
            )
            # hosted: deleted at the next takeover run
            self.assertEqual(run(1, "delip", "198.51.100.1"), "rc=0\n", kind)
            self.assertIn("198.51.100.1 1", run(1, "ip"), kind)
            self.assertEqual(run(0, "ipreallocate"), "rc=0\n", kind)
            # released by node 1, deleted there, back on node 0
            self.waitFor(cluster, 0, ["ip", "all"], SETTLED + "203.0.113.9 2\n")
            self.assertEqual(
                run(1, "ip"),
                "Public IPs on node 1\n198.51.100.2 1\n203.0.113.2 1\nrc=0\n",
                kind,
            )
            self.assertEqual(
                run(1, "delip", "10.7.7.7"),
                "Node does not know about IP address 10.7.7.7\nrc=0\n",
                kind,
            )

    def test_reloadDisableStop(self) -> None:
        """C{reloadips}; the addresses leave a disabled or stopped node and
        come back."""
        for kind, cluster in self.clusters().items():
            run = lambda pnn, *args, c=cluster: tool(c, pnn, *args)
            path = os.path.join(cluster.nodeDir(0), "public_addresses")
            with open(path, "w") as f:
                f.write("198.51.100.1/24 lo\n203.0.113.77/24 lo\n")
            self.assertEqual(run(0, "reloadips", "0"), "rc=0\n", kind)
            reloaded = (
                "Public IPs on ALL nodes\n198.51.100.1 0\n198.51.100.2 1\n"
                "203.0.113.2 1\n203.0.113.77 0\n"
            )
            self.waitFor(cluster, 0, ["ip", "all"], reloaded)
            self.assertEqual(run(0, "disable"), "rc=0\n", kind)
            self.waitFor(
                cluster,
                0,
                ["ip"],
                "Public IPs on node 0\n198.51.100.1 -1\n203.0.113.77 -1\n",
            )
            self.assertEqual(run(0, "enable"), "rc=0\n", kind)
            self.waitFor(cluster, 0, ["ip", "all"], reloaded)
            self.assertEqual(run(1, "stop"), "rc=0\n", kind)
            self.waitFor(
                cluster,
                0,
                ["ip", "all"],
                "Public IPs on ALL nodes\n198.51.100.1 0\n203.0.113.77 0\n",
            )
            self.assertEqual(run(1, "continue"), "rc=0\n", kind)
            self.waitFor(cluster, 0, ["ip", "all"], reloaded)


testSuite = trialSuite(__name__)
