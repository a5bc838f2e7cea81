# -*- test-case-name: tests.integration.test_monitor -*-
"""
C{ctdb-monitor} against a 3-node cluster of our daemons (L{LocalCluster}):
C{--once} (text and JSON), then the live view in a tmux session of its
own, read with C{capture-pane} while a node is killed (by its recorded
PID) and started again, and while the connected daemon itself dies and
comes back; Ctrl-C ends it with status 0 and the terminal restored.

Then public addresses, through Samba's ctdbd 4.17 and through our drop-in
ctdbd (L{RealCtdbdCluster}, test mode): C{--once} puts each where Samba's
C{ctdb ip all} does, and the live view sees one move when its node dies.

Every wait is for something on the screen, bounded; the tmux session is
killed by its name in a cleanup (never the tmux server).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest
import uuid
from collections.abc import Callable

from ctdb.cluster import NodeLayout
from ctdb.monitor.render import NODE_HEADER
from ctdb.tool.session import haveAddress
from tests.integration._cases import IntegrationCase
from tests.integration._clusters import ctdbTool, randomBase
from tests.support.realctdbd import CTDBD as REAL_CTDBD
from tests.support.realctdbd import RealCtdbdCluster

#: the console script, or the module when it is not installed
_SCRIPT = os.path.join(os.path.dirname(sys.executable), "ctdb-monitor")
MONITOR = (
    [_SCRIPT]
    if os.access(_SCRIPT, os.X_OK)
    else [sys.executable, "-m", "ctdb.monitor.main"]
)

#: how long the screen may take to show a change (a failure is seen in a
#: few seconds: the dead node's sockets close at once)
WAIT = 60.0


def monitorOnce(cluster: NodeLayout, pnn: int, *args: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [*MONITOR, "--once", "--socket", cluster.socketPath(pnn), *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def rowOf(text: str, pnn: int, address: str) -> list[str]:
    """The node table's row of node C{pnn}, split on blanks."""
    for line in text.splitlines():
        words = line.split()
        if len(words) > 2 and words[0] == str(pnn) and words[1] == address:
            return words
    return []


class Tmux:
    """A tmux session of our own, by a name nobody else uses."""

    def __init__(self, command: list[str]) -> None:
        self.name = f"txctdb-monitor-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        shell = " ".join(_quote(a) for a in command)
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                "160",
                "-y",
                "50",
                # GNU readline (loaded under pytest) puts COLUMNS=80 and
                # LINES=24 in the process environment, which a tmux server
                # started from here passes on; rich would believe them.
                f"unset COLUMNS LINES; {shell}; echo EXITED rc=$?; sleep 600",
            ],
            check=True,
            timeout=30,
        )

    def screen(self) -> str:
        done = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(
            ["tmux", "send-keys", "-t", self.name, *keys], check=True, timeout=30
        )

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "kill-session", "-t", self.name],
            capture_output=True,
            timeout=30,
            check=False,
        )


def _screenHas(tmux: Tmux, *patterns: str, lacks: str = "") -> Callable[[], str | None]:
    """A check for L{MonitorTests.waitFor}: the screen, once every pattern
    matches a line of it and C{lacks} is not on it."""

    def check() -> str | None:
        screen = tmux.screen()
        check.last = screen  # type: ignore[attr-defined]
        if lacks and lacks in screen:
            return None
        if all(re.search(p, screen, re.MULTILINE) for p in patterns):
            return screen
        return None

    return check


def _quote(arg: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./=:-]+", arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


class _MonitorCase(IntegrationCase):
    def waitFor(
        self, what: str, check: Callable[[], str | None], timeout: float = WAIT
    ) -> str:
        """Poll C{check} (it returns what it found, or None) until it finds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found is not None:
                return found
            time.sleep(0.2)
        last = getattr(check, "last", None)
        self.fail(f"timed out waiting for {what}; last seen:\n{last}")


@unittest.skipIf(shutil.which("tmux") is None, "tmux is not installed")
class MonitorTests(_MonitorCase):
    """The monitor through node 0 of a 3-node cluster of ours."""

    def setUp(self) -> None:
        super().setUp()
        self.cluster = self.makeCluster(3)
        self.addresses = [self.cluster.address(k) for k in range(3)]

    def onceSettled(self) -> str:
        """C{--once} until all three nodes are OK and agree."""

        def check() -> str | None:
            status, out, err = monitorOnce(self.cluster, 0)
            check.last = out + err  # type: ignore[attr-defined]
            if status != 0 or "Recovery mode: NORMAL" not in out:
                return None
            rows = [rowOf(out, k, self.addresses[k]) for k in range(3)]
            if all(r[2:3] == ["OK"] and r[-1] == "same" for r in rows):
                return out
            return None

        return self.waitFor("a settled cluster in --once", check)

    def test_once(self) -> None:
        """--once: the summary, a row for each node (OK, NORMAL, the same
        generation and VNN map), no public addresses; --json the same."""
        out = self.onceSettled()
        lines = out.splitlines()
        self.assertRegex(
            lines[0],
            rf"^3 nodes, seen through node 0 \({re.escape(self.cluster.socketPath(0))}\)"
            r" at \d\d:\d\d:\d\d$",
        )
        self.assertRegex(lines[1], r"^Leader:        [012]$")
        generation = re.search(r"^Generation:    (\d+)$", out, re.MULTILINE)
        assert generation is not None, out
        self.assertEqual(lines[4], "VNN map:       0 1 2")
        self.assertEqual(tuple(lines[6].split()), NODE_HEADER)
        for k in range(3):
            row = rowOf(out, k, self.addresses[k])
            self.assertEqual(
                row[4:], ["NORMAL", generation.group(1), "0", "1", "2", "same"], out
            )
        self.assertIn("\nNo public addresses\n", out)

        status, doc, err = monitorOnce(self.cluster, 1, "--json")
        self.assertEqual((status, err), (0, ""))
        parsed = json.loads(doc)
        self.assertEqual(parsed["pnn"], 1)
        self.assertEqual([n["address"] for n in parsed["nodes"]], self.addresses)
        self.assertTrue(all(n["answered"] for n in parsed["nodes"]))

    def test_noDaemon(self) -> None:
        """A socket with no daemon: one line on stderr, status 1."""
        path = os.path.join(self.mktempDirectory(), "none.socket")
        done = subprocess.run(
            [*MONITOR, "--once", "--socket", path],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        self.assertEqual(
            (done.returncode, done.stdout, done.stderr),
            (
                1,
                "",
                (
                    f"ctdb-monitor: ctdbd at {path}: cannot connect: "
                    "No such file or directory\n"
                ),
            ),
        )

    def test_liveNodeFailure(self) -> None:
        """The live view in tmux: a killed node turns DISCONNECTED, a new
        generation comes, the events say so; started again, it is OK;
        the connected daemon's death is shown and outlived; Ctrl-C quits
        with status 0."""
        self.onceSettled()
        tmux = Tmux(
            [*MONITOR, "--socket", self.cluster.socketPath(0), "--interval", "0.5"]
        )
        self.addCleanup(tmux.kill)

        def screenHas(*patterns: str, lacks: str = "") -> Callable[[], str | None]:
            return _screenHas(tmux, *patterns, lacks=lacks)

        def row(pnn: int, status: str) -> str:
            return rf"^ *{pnn} +{re.escape(self.addresses[pnn])} +{status} "

        screen = self.waitFor(
            "the live view of 3 OK nodes",
            screenHas(
                "watching 3 nodes through node 0",
                *(row(k, "OK") for k in range(3)),
                r"^Generation +\d+$",
            ),
        )
        found = re.search(r"^Generation +(\d+)$", screen, re.MULTILINE)
        assert found is not None
        before = found.group(1)
        self.assertIn("Refreshing every 0.5s. Ctrl-C quits.", screen)

        # Node 2 dies (SIGKILL by its recorded PID).
        self.cluster.kill(2)
        screen = self.waitFor(
            "node 2 DISCONNECTED and a new generation",
            screenHas(
                row(2, r"DISCONNECTED\S*"),
                r"node 2 became DISCONNECTED\S* \(was OK\)$",
                rf"generation changed {before} -> \d+$",
                r"VNN map changed 0 1 2 -> 0 1$",
                r"^Generation +\d+$",
                r"^VNN map +0 1$",
            ),
        )
        found = re.search(r"^Generation +(\d+)$", screen, re.MULTILINE)
        assert found is not None
        self.assertNotEqual(found.group(1), before)
        self.assertRegex(screen, r"no answer")

        # Node 2 comes back.
        self.cluster.start([2])
        self.waitFor(
            "node 2 OK again",
            screenHas(
                *(row(k, "OK") for k in range(3)),
                r"node 2 became \S+ \(was DISCONNECTED\S*\)$",
                r"VNN map changed 0 1 -> 0 1 2$",
                r"^VNN map +0 1 2$",
            ),
        )

        # The connected daemon dies: shown, tried again; back, seen again.
        self.cluster.kill(0)
        self.waitFor(
            "the lost daemon",
            screenHas(
                r"cannot see the cluster: lost the connection to ctdbd$",
                r"trying again every 0.5s",
                r"\[last seen, stale\]",
            ),
        )
        self.cluster.start([0])
        self.waitFor(
            "the daemon back",
            # (the event "connected again" may have scrolled off already)
            screenHas(*(row(k, "OK") for k in range(3)), lacks="stale"),
        )

        tmux.keys("C-c")
        screen = self.waitFor("the monitor's exit", screenHas(r"^EXITED rc=0$"))
        # The alternate screen is left: nothing of the view remains.
        self.assertNotIn("Recent events", screen)


#: node K's public addresses (TEST-NET-2: never on this host): nodes 0 and
#: 1 can host both, node 2 none
ADDRESSES = {0: "198.51.100.1/24 lo\n198.51.100.2/24 lo\n"}
ADDRESSES[1] = ADDRESSES[0]
ADDRESSES[2] = ""
OUR_CTDBD = os.path.join(os.path.dirname(sys.executable), "ctdbd")


def _addressesSkip() -> str | None:
    if shutil.which("tmux") is None:
        return "tmux is not installed"
    if shutil.which("ctdb") is None:
        return "Samba's ctdb tool is not installed"
    for address in ("198.51.100.1", "198.51.100.2"):
        if haveAddress(address):
            return f"{address} is an address of this host"
    return None


@unittest.skipIf(_addressesSkip() is not None, _addressesSkip() or "")
class PublicAddressTests(_MonitorCase):
    """
    Public addresses, through Samba's ctdbd 4.17 and through our drop-in
    ctdbd, both in ctdbd's test mode (L{RealCtdbdCluster}: nothing on the
    host changes): C{--once} shows where each address is, as Samba's
    C{ctdb ip all} says; in the live view, node 1's death moves its address
    to node 0.
    """

    def addressesFollow(self, ctdbd: str) -> None:
        if not os.access(ctdbd, os.X_OK):
            raise unittest.SkipTest(f"{ctdbd} is not installed")
        cluster = RealCtdbdCluster(
            self.mktempDirectory("txctdb-mon-"),
            base=randomBase("real" if ctdbd == REAL_CTDBD else "ours"),
            nodes=3,
            ctdbd=ctdbd,
        )
        cluster.setup()
        for pnn, text in ADDRESSES.items():
            path = os.path.join(cluster.nodeDir(pnn), "public_addresses")
            with open(path, "w") as f:
                f.write(text)
        self.addCleanup(cluster.stop)
        cluster.start(timeout=60)

        def ipAll() -> dict[str, str]:
            lines = ctdbTool(cluster, 0, "ip", "all").stdout.splitlines()[1:]
            return dict(line.split() for line in lines if len(line.split()) == 2)

        def settled() -> str | None:
            owners = ipAll()
            settled.last = owners  # type: ignore[attr-defined]
            if sorted(owners) == ["198.51.100.1", "198.51.100.2"] and sorted(
                owners.values()
            ) == ["0", "1"]:
                return "yes"
            return None

        self.waitFor("both addresses held by nodes 0 and 1", settled)
        owners = ipAll()
        status, out, err = monitorOnce(cluster, 0)
        self.assertEqual((status, err), (0, ""))
        for address, owner in owners.items():
            self.assertRegex(out, rf"\n{re.escape(address)} +{owner} +0,1\n")

        moving = next(a for a, owner in owners.items() if owner == "1")
        tmux = Tmux([*MONITOR, "--socket", cluster.socketPath(0), "--interval", "0.5"])
        self.addCleanup(tmux.kill)
        self.waitFor(
            "the live view",
            _screenHas(tmux, rf"^ *{re.escape(moving)} +1 +0,1$"),
        )
        cluster.kill(1)
        self.waitFor(
            "the address moved",
            _screenHas(
                tmux,
                # Samba's: unassigned while node 0 alone lists it, then
                # assigned; ours moves it at once.
                rf"public address {re.escape(moving)} "
                r"(moved from node 1 to node 0|assigned to node 0)$",
                rf"^ *{re.escape(moving)} +0 +0(,1)?$",
                r"node 1 became DISCONNECTED",
            ),
        )

    def test_samba(self) -> None:
        """Through Samba's own ctdbd 4.17."""
        self.addressesFollow(REAL_CTDBD)

    def test_ours(self) -> None:
        """Through our drop-in ctdbd."""
        self.addressesFollow(OUR_CTDBD)
