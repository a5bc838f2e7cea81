# -*- test-case-name: tests.takeover.test_ipalloccli -*-
"""
Tests for L{ctdb.takeover.ipalloccli}: the installed C{ctdb-ipalloc}
console script run as a subprocess on Samba's vectors, bad arguments and
bad input; the finer points of arguments, stdin and environment through
L{ipalloccli.run} in-process.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import unittest
from collections.abc import Mapping, Sequence
from pathlib import Path

from ctdb.takeover.ipalloccli import parseFlags, run
from tests.takeover.test_ipalloc import VECTORS, parseVector

#: the console script, installed beside the interpreter running the tests
SCRIPT = Path(sys.executable).parent / "ctdb-ipalloc"


def runScript(
    args: Sequence[str], stdin: bytes, environ: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the console script with C{environ} added to ours (less any
    C{CTDB_*} variable of ours), its output in UTF-8."""
    if not SCRIPT.exists():
        raise AssertionError(f"{SCRIPT} is missing: run make install")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTDB_")}
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(environ or {})
    return subprocess.run(
        [str(SCRIPT), *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def runHere(
    args: Sequence[str], stdin: str, environ: Mapping[str, str] | None = None
) -> tuple[int, str, str]:
    """L{run} in-process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    status = run(args, io.StringIO(stdin), out, err, environ or {})
    return status, out.getvalue(), err.getvalue()


class ScriptTests(unittest.TestCase):
    """The console script, as Samba's harness would run it."""

    maxDiff = None

    def assertVectorStep(self, name: str, leading: Sequence[str] = ()) -> None:
        """The first step of vector C{name}: exit status and output (stderr
        then stdout, as C{2>&1} gets them)."""
        step = parseVector(VECTORS / name)[0]
        result = runScript(
            [*leading, *step.args], step.stdin.encode() + b"\n", step.environ
        )
        output = (result.stderr + result.stdout).decode().rstrip("\n")
        self.assertEqual(output, step.expectedOutput)
        self.assertEqual(result.returncode, step.expectedStatus)

    def test_infoTrace(self) -> None:
        """lcp2.004: the LCP2 moves at INFO on stderr, the allocation on
        stdout."""
        self.assertVectorStep("lcp2.004.sh")

    def test_multi(self) -> None:
        """lcp2.029: one block of stdin per node (C{multi})."""
        self.assertVectorStep("lcp2.029.sh")

    def test_ipallocWord(self) -> None:
        """det.001 with Samba's leading C{ipalloc} word: the same."""
        self.assertVectorStep("det.001.sh", ["ipalloc"])

    def test_runstate(self) -> None:
        """lcp2.024: CTDB_TEST_RUNSTATE keeps nodes from hosting."""
        self.assertVectorStep("lcp2.024.sh")

    def test_badArguments(self) -> None:
        """Wrong arguments: the usage message on stderr, exit status 1,
        nothing on stdout, no traceback."""
        for args in (
            [],
            ["ipalloc"],
            ["0,0", "single"],
            ["0,0", "multi", "extra"],
            ["ipalloc", "0,0", "multi", "extra"],
            ["x,y"],
            ["0,junk"],
        ):
            result = runScript(args, b"10.0.0.1 0\n")
            self.assertEqual(result.returncode, 1, args)
            self.assertEqual(result.stdout, b"", args)
            self.assertTrue(
                result.stderr.startswith(
                    b"usage: ctdb-ipalloc [ipalloc] FLAGS [multi]"
                ),
                (args, result.stderr),
            )

    def test_help(self) -> None:
        """--help: the usage message on stdout, exit status 0."""
        result = runScript(["--help"], b"")
        self.assertEqual(result.returncode, 0)
        self.assertTrue(result.stdout.startswith(b"usage: ctdb-ipalloc"))

    def test_badLines(self) -> None:
        """A bad address is an error and a line without one a warning; both
        are skipped, and the run goes on (exit status 0), as Samba's."""
        result = runScript(
            ["0"],
            b"300.1.1.1 0\n   \n\xff\xfe 0\n10.0.0.1 0\n",
            {"CTDB_TEST_LOGLEVEL": "NOTICE"},
        )
        self.assertEqual(result.returncode, 0)
        self.assertEqual(result.stdout, b"10.0.0.1 0\n")
        self.assertEqual(
            result.stderr.decode().split("\n"),
            [
                "ERROR, bad address :300.1.1.1",
                "WARNING, bad line ignored :   ",
                "ERROR, bad address :\ufffd\ufffd",
                "",
            ],
        )

    def test_allowedListInMulti(self) -> None:
        """An allowed list in C{multi} mode is an error (exit status 1;
        Samba's program aborts there)."""
        result = runScript(["0,0", "multi"], b"10.0.0.1 0 0,1\n")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout, b"")
        self.assertEqual(result.stderr, b"ERROR, bad token\n")


class RunTests(unittest.TestCase):
    """Arguments, stdin and environment, in-process."""

    def test_flags(self) -> None:
        """Node flags are C integers (decimal, 0x hex, 0 octal), empty
        fields skipped as strtok() skips them; anything else is refused."""
        self.assertEqual(parseFlags("0,0x20,010,2"), [0, 0x20, 8, 2])
        self.assertEqual(parseFlags("0,,1,"), [0, 1])
        self.assertEqual(parseFlags("-1"), [0xFFFFFFFF])
        for bad in ("", ",", "a", "1a", " 1", "0x", "08"):
            self.assertIsNone(parseFlags(bad), bad)

    def test_inactiveAndDisabled(self) -> None:
        """A node with an INACTIVE or DISABLED flag may host nothing."""
        for flags in ("0x20,0", "1,0", "2,0", "4,0", "8,0", "0x10,0"):
            status, out, _ = runHere([flags], "10.0.0.1 0\n10.0.0.2 0\n")
            self.assertEqual((status, out), (0, "10.0.0.2 1\n10.0.0.1 1\n"), flags)

    def test_unknownAlgorithm(self) -> None:
        """An unknown CTDB_IP_ALGORITHM: an error, exit status 1."""
        status, out, err = runHere(["0"], "10.0.0.1 0\n", {"CTDB_IP_ALGORITHM": "best"})
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(err, "ERROR: unknown IP algorithm best\n")

    def test_runstates(self) -> None:
        """CTDB_TEST_RUNSTATE: one value per node, or 1 for all (then no
        node is RUNNING); another count is an error, exit status 1."""
        status, out, err = runHere(
            ["0,0"], "10.0.0.1 -1\n", {"CTDB_TEST_RUNSTATE": "5,5,5"}
        )
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(err, "ERROR: Wrong number of values in CTDB_TEST_RUNSTATE\n")
        environ = {"CTDB_TEST_RUNSTATE": "1", "CTDB_TEST_LOGLEVEL": "ERR"}
        self.assertEqual(
            runHere(["0,0"], "10.0.0.1 -1\n", environ), (0, "10.0.0.1 -1\n", "")
        )
        environ["CTDB_TEST_RUNSTATE"] = "4,0x5"
        self.assertEqual(
            runHere(["0,0"], "10.0.0.1 -1\n", environ), (0, "10.0.0.1 1\n", "")
        )

    def test_tunables(self) -> None:
        """CTDB_SET_NoIPTakeover and CTDB_SET_NoIPFailback, read as C's
        strtol() and cast to uint32_t: non-zero is on."""
        stdin = "10.0.0.1 1\n10.0.0.2 1\n10.0.0.3 1\n10.0.0.4 -1\n"
        quiet = {"CTDB_TEST_LOGLEVEL": "ERR"}
        moved = runHere(["0,0"], stdin, quiet)[1]
        self.assertEqual(moved.count(" 0\n"), 2)
        for name, value, effect in (
            ("CTDB_SET_NoIPFailback", "1", "10.0.0.4 0\n"),
            ("CTDB_SET_NoIPTakeover", "0x1", "10.0.0.4 -1\n"),
        ):
            _, out, _ = runHere(["0,0"], stdin, {**quiet, name: value})
            self.assertEqual(out.count(" 1\n"), 3, name)
            self.assertTrue(out.startswith(effect), (name, out))
            off = runHere(["0,0"], stdin, {**quiet, name: "0x100000000"})[1]
            self.assertEqual(off, moved, name)

    def test_logLevels(self) -> None:
        """CTDB_TEST_LOGLEVEL: a name (any prefix), a number, or anything
        else for DEBUG; the empty string is ERROR."""
        stdin = "10.0.0.1 0\n"
        debug = runHere(["0"], stdin)[2]
        self.assertIn(" CONSIDERING MOVES (UNASSIGNED)\n", debug)
        for level, shown in (("bogus", True), ("10", True), ("9", False), ("", False)):
            err = runHere(["0"], stdin, {"CTDB_TEST_LOGLEVEL": level})[2]
            self.assertEqual(err == debug, shown, level)
        self.assertEqual(runHere(["0"], stdin, {"CTDB_TEST_LOGLEVEL": "i"})[2], "")

    def test_readingStops(self) -> None:
        """Without C{multi}, an empty line ends the input."""
        _, out, _ = runHere(
            ["0"], "10.0.0.1 0\n\n10.0.0.2 0\n", {"CTDB_TEST_LOGLEVEL": "ERR"}
        )
        self.assertEqual(out, "10.0.0.1 0\n")

    def test_multiBlocks(self) -> None:
        """With C{multi}, node N knows the addresses of block N; missing
        blocks leave nodes knowing nothing."""
        _, out, _ = runHere(
            ["0,0,0", "multi"],
            "10.0.0.1 0\n10.0.0.2 0\n\n10.0.0.3 1\n",
            {"CTDB_TEST_LOGLEVEL": "ERR"},
        )
        self.assertEqual(out, "10.0.0.3 1\n10.0.0.2 0\n10.0.0.1 0\n")

    def test_allowedLists(self) -> None:
        """Only the listed nodes know an address.  As in Samba, a C{#} also
        separates fields, and numbers are read as strtol() reads them
        (C{1abc} is 1); a listed node that does not exist is an error."""
        quiet = {"CTDB_TEST_LOGLEVEL": "ERR"}
        stdin = "10.0.0.1 -1 1\n10.0.0.2 -1 #1\n10.0.0.3 1abc 0,1\n"
        stay = {**quiet, "CTDB_SET_NoIPFailback": "1"}
        self.assertEqual(
            runHere(["0,0"], stdin, stay)[1],
            "10.0.0.3 1\n10.0.0.2 1\n10.0.0.1 1\n",
        )
        status, out, err = runHere(["0,0"], "10.0.0.1 -1 0,5\n", quiet)
        self.assertEqual((status, out, err), (1, "", "ERROR, bad node :5\n"))

    def test_addressesPrintedAsCtdb(self) -> None:
        """Addresses are printed as inet_ntop() prints them, in ipalloc()'s
        order; an IPv4-mapped address is read as IPv4."""
        _, out, _ = runHere(
            ["0"],
            "::a00:1 0\n2001:DB8:0:0::1 0\n[fd00::1] 0\n::ffff:10.0.0.2 0\n",
            {"CTDB_TEST_LOGLEVEL": "ERR"},
        )
        self.assertEqual(out, "fd00::1 0\n2001:db8::1 0\n10.0.0.2 0\n::10.0.0.1 0\n")
