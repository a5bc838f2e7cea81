# -*- test-case-name: tests.tool.test_main -*-
"""
Tests for L{ctdb.tool.main}: the console script as a process.  It answers
the same under any name: as C{txctdb} (how it is installed, so that it does
not hide Samba's C{/usr/bin/ctdb}) and as C{ctdb} (a link users may make).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from twisted.trial.unittest import SynchronousTestCase

from ctdb.tool.options import BRIEF_USAGE, fullUsage

SCRIPT = os.path.join(os.path.dirname(sys.executable), "txctdb")


def runProgram(
    argv: list[str], env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


class ModuleTests(SynchronousTestCase):
    """python -m ctdb.tool.main."""

    def test_version(self) -> None:
        """version needs no daemon."""
        self.assertEqual(
            runProgram([sys.executable, "-m", "ctdb.tool.main", "version"]),
            (0, "4.17.12-Debian\n", ""),
        )

    def test_noCommand(self) -> None:
        """No command: the full usage on stdout, exit 1."""
        self.assertEqual(
            runProgram([sys.executable, "-m", "ctdb.tool.main"]), (1, fullUsage(), "")
        )

    def test_noDaemon(self) -> None:
        """A command with no daemon to talk to: messages, exit 1, and no
        traceback."""
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        env = dict(os.environ)
        env.update(
            CTDB_SOCKET=os.path.join(directory, "none.socket"), CTDB_BASE=directory
        )
        status, out, err = runProgram(
            [sys.executable, "-m", "ctdb.tool.main", "status"], env
        )
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(
            err.splitlines()[:2],
            [
                "connect() failed, errno=2",
                f"Failed to connect to CTDB daemon ({directory}/none.socket)",
            ],
        )


@unittest.skipUnless(os.access(SCRIPT, os.X_OK), "txctdb is not installed")
class ScriptNameTests(SynchronousTestCase):
    """The installed script, under its own name and as ctdb."""

    def setUp(self) -> None:
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        self.asCtdb = os.path.join(directory, "ctdb")
        os.symlink(SCRIPT, self.asCtdb)

    def test_sameUnderBothNames(self) -> None:
        """--usage, a bad option and an unknown command: the same output
        and status whether run as txctdb or ctdb."""
        for args, expected in (
            (["--usage"], (0, BRIEF_USAGE, "")),
            (["-n", "x", "pnn"], (1, "", "Invalid option x: invalid numeric value\n")),
            (["recmaster"], (1, "", "Unknown command 'recmaster'\n")),
        ):
            self.assertEqual(runProgram([SCRIPT, *args]), expected)
            self.assertEqual(runProgram([self.asCtdb, *args]), expected)
