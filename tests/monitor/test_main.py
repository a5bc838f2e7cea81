# -*- test-case-name: tests.monitor.test_main -*-
"""
L{ctdb.monitor.main}: the command line, C{--once} (text and JSON) and the
live loop against the tool's in-memory cluster (L{tests.tool._harness}),
and the errors: bad arguments, no daemon, no terminal.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

from rich.console import Console
from twisted.trial.unittest import SynchronousTestCase

from ctdb.monitor.collect import Collector
from ctdb.monitor.main import LiveMonitor, run
from ctdb.monitor.render import NODE_HEADER
from tests.tool._harness import ToolReactor, runProgram, socketOf, startCluster


def runMonitor(
    reactor: ToolReactor,
    args: list[str],
    environ: dict[str, str] | None = None,
    console: Console | None = None,
) -> tuple[int, str, str]:
    """Run the command to its end: (exit status, stdout, stderr)."""
    return runProgram(
        reactor,
        lambda out, err: run(
            reactor,  # type: ignore[arg-type]
            args,
            stdout=out,
            stderr=err,
            environ=environ if environ is not None else {},
            console=console,
        ),
        f"ctdb-monitor {args}",
        seconds=60,
    )


class ArgumentTests(SynchronousTestCase):
    """Bad command lines: a usage message on stderr, status 2."""

    def setUp(self) -> None:
        self.reactor = ToolReactor()

    def assertUsageError(self, args: list[str], message: str) -> None:
        status, out, err = runMonitor(self.reactor, args)
        self.assertEqual((status, out), (2, ""))
        self.assertTrue(err.startswith("usage: ctdb-monitor"), err)
        self.assertIn(f"ctdb-monitor: error: {message}", err)

    def test_jsonWithoutOnce(self) -> None:
        """--json is for --once."""
        self.assertUsageError(["--json"], "--json needs --once")

    def test_badInterval(self) -> None:
        """--interval must be a number above 0."""
        self.assertUsageError(
            ["--interval", "0"], "argument --interval: must be more than 0: '0'"
        )
        self.assertUsageError(
            ["--interval", "soon"], "argument --interval: not a number: 'soon'"
        )
        self.assertUsageError(
            ["--interval", "nan"], "argument --interval: must be more than 0: 'nan'"
        )

    def test_badTimeout(self) -> None:
        """--timeout is whole seconds, at least 1."""
        self.assertUsageError(
            ["--timeout", "0"], "argument --timeout: must be at least 1: '0'"
        )
        self.assertUsageError(
            ["--timeout", "1.5"], "argument --timeout: not a whole number: '1.5'"
        )

    def test_unknown(self) -> None:
        """Unknown options and stray arguments."""
        self.assertUsageError(["--bogus"], "unrecognized arguments: --bogus")
        self.assertUsageError(["node0"], "unrecognized arguments: node0")
        self.assertUsageError(["--socket"], "argument --socket: expected one argument")

    def test_help(self) -> None:
        """--help: every option and what the view shows, on stdout, status 0."""
        status, out, err = runMonitor(self.reactor, ["--help"])
        self.assertEqual((status, err), (0, ""))
        for word in ("--once", "--json", "--interval", "--socket", "--timeout"):
            self.assertIn(word, out)
        self.assertIn("recovery", out)
        self.assertIn("Ctrl-C", out)


class NoDaemonTests(SynchronousTestCase):
    """No daemon at the socket: one clear line, status 1."""

    def setUp(self) -> None:
        self.reactor, self.cluster = startCluster(1)
        self.addCleanup(self.cluster.stop)

    def test_once(self) -> None:
        """--once with no daemon at the socket: status 1, the reason on
        stderr, nothing on stdout."""
        status, out, err = runMonitor(
            self.reactor, ["--once", "--socket", "/fake/none.socket"]
        )
        self.assertEqual(
            (status, out, err),
            (
                1,
                "",
                (
                    "ctdb-monitor: ctdbd at /fake/none.socket: cannot connect: "
                    "No such file or directory\n"
                ),
            ),
        )

    def test_live(self) -> None:
        """The live view with no daemon at the start: status 1 and the
        reason, before anything is drawn."""
        console = Console(file=io.StringIO(), force_terminal=True)
        status, _, err = runMonitor(
            self.reactor, [], {"CTDB_SOCKET": "/fake/none.socket"}, console
        )
        self.assertEqual(status, 1)
        self.assertEqual(
            err,
            "ctdb-monitor: ctdbd at /fake/none.socket: cannot connect: "
            "No such file or directory\n",
        )

    def test_notTerminal(self) -> None:
        """The live view on a pipe: use --once."""
        console = Console(file=io.StringIO(), force_terminal=False)
        status, _, err = runMonitor(self.reactor, [], {}, console)
        self.assertEqual(
            (status, err),
            (1, "ctdb-monitor: the live view needs a terminal (use --once)\n"),
        )


class OnceTests(SynchronousTestCase):
    """--once against a settled 3-node cluster."""

    def setUp(self) -> None:
        self.reactor, self.cluster = startCluster(
            3, publicAddresses="127.1.0.1/24 eth0\n"
        )
        self.addCleanup(self.cluster.stop)

    def test_text(self) -> None:
        """The text: the summary, a row for each node, the address."""
        status, out, err = runMonitor(
            self.reactor, ["--once"], {"CTDB_SOCKET": socketOf(1)}
        )
        self.assertEqual((status, err), (0, ""))
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^3 nodes, seen through node 1 \(/fake/node1")
        leader = self.cluster.recovery(0).leader
        self.assertEqual(lines[1], f"Leader:        {leader}")
        self.assertEqual(lines[2], "Recovery mode: NORMAL")
        generation = self.cluster[0].vnnMap.generation
        self.assertEqual(lines[3], f"Generation:    {generation}")
        self.assertEqual(lines[4], "VNN map:       0 1 2")
        self.assertEqual(tuple(lines[6].split()), NODE_HEADER)
        for pnn in range(3):
            row = lines[7 + pnn].split()
            self.assertEqual(row[0], str(pnn))
            self.assertEqual(row[2], "OK")
            self.assertEqual(
                row[4:], ["NORMAL", str(generation), "0", "1", "2", "same"]
            )
        self.assertRegex(out, r"\n127\.1\.0\.1 +\d +0,1,2\n")

    def test_json(self) -> None:
        """--once --json: the document."""
        status, out, err = runMonitor(
            self.reactor, ["--once", "--json", "--socket", socketOf(0)]
        )
        self.assertEqual((status, err), (0, ""))
        doc = json.loads(out)
        self.assertEqual(doc["pnn"], 0)
        self.assertEqual(doc["vnn_map"], [0, 1, 2])
        self.assertEqual([n["status"] for n in doc["nodes"]], ["OK"] * 3)
        self.assertEqual(len(doc["public_addresses"]), 1)


class LiveMonitorTests(SynchronousTestCase):
    """The live loop on a memory reactor and a terminal console in memory."""

    def setUp(self) -> None:
        self.reactor, self.cluster = startCluster(3)
        self.addCleanup(self.cluster.stop)
        self.screen = io.StringIO()
        self.console = Console(
            file=self.screen, force_terminal=True, width=160, height=50
        )
        collector = Collector(
            reactor=self.reactor,  # type: ignore[arg-type]
            socket=socketOf(0),
            timeout=3,
            environ={},
        )
        self.monitor = LiveMonitor(
            reactor=self.reactor,  # type: ignore[arg-type]
            collector=collector,
            console=self.console,
            interval=1.0,
            localtime=time.gmtime,
        )

    def advance(self, seconds: float) -> None:
        end = self.reactor.seconds() + seconds
        while self.reactor.seconds() < end:
            for pump in list(self.reactor.pumps):
                pump.flush()
            self.cluster.advance(0.05, step=0.05)

    def test_refreshAndStop(self) -> None:
        """Each interval draws the view again; a node's crash shows up in
        it; stop ends the loop and leaves the alternate screen."""
        done: list[Any] = []
        self.monitor.start().addBoth(done.append)
        self.advance(2)
        self.assertIn("watching 3 nodes through node 0", self.screen.getvalue())
        self.cluster.crash(2)
        self.advance(10)
        self.assertIn("node 2 became DISCONNECTED", self.screen.getvalue())
        self.assertIn("generation changed", self.screen.getvalue())
        self.assertEqual(done, [])
        self.monitor.stop()
        self.assertEqual(len(done), 1)
        # rich's Live(screen=True): the cursor shown, the alternate screen left
        self.assertTrue(self.screen.getvalue().endswith("\x1b[?25h\x1b[?1049l"))
        self.monitor.stop()  # twice is harmless
