# -*- test-case-name: tests.test_readme -*-
"""
README.md's promises, checked: the embedding example runs and serves a node
that answers both L{ctdb.cluster.syncControl} and Samba's own ctdb tool, and
the setup commands it opens with are the Makefile's.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from ctdb.cluster import syncControl
from ctdb.protocols.controls import Control

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def codeBlocks(language: str) -> list[str]:
    """The fenced code blocks of README.md in C{language}."""
    text = README.read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.DOTALL | re.MULTILINE)


def embeddingExample() -> str:
    [block] = [b for b in codeBlocks("python") if "buildCTDBService(" in b]
    return block


class ReadmeTests(SynchronousTestCase):
    """What README.md tells a reader to run works."""

    def test_readmeOpensWithSetupCommands(self) -> None:
        """The first code block is `make demo` and `make test`, and both are
        Makefile targets."""
        first = codeBlocks("sh")[0]
        commands = [line.split("#")[0].strip() for line in first.splitlines()]
        self.assertEqual([c for c in commands if c], ["make demo", "make test"])
        makefile = (ROOT / "Makefile").read_text()
        for target in ("install", "test", "demo", "clean"):
            self.assertRegex(makefile, re.compile(rf"^{target}:", re.MULTILINE))

    def test_embeddingExampleRuns(self) -> None:
        """The README's .tac example, run by twistd next to a nodes file whose first
        line is a deleted node, serves node 1 on run/ctdbd.socket; it answers
        GET_PNN and Samba's `ctdb pnn`, and stops on SIGTERM."""
        # Outside the checkout (trial's mktemp would litter it under pytest);
        # short enough for the unix socket's path.
        tmp_path = Path(tempfile.mkdtemp(prefix="txctdb-test-"))
        self.addCleanup(shutil.rmtree, tmp_path, True)
        octets = (
            random.randint(100, 250),
            random.randint(0, 255),
            random.randint(1, 250),
        )
        address = "127.{}.{}.{}".format(*octets)
        (tmp_path / "nodes").write_text(f"#\n{address}\n")
        (tmp_path / "myapp.tac").write_text(embeddingExample())
        socketPath = tmp_path / "run" / "ctdbd.socket"
        with open(tmp_path / "twistd.out", "wb") as out:
            proc = subprocess.Popen(
                [*TWISTD, "-n", "--pidfile=", "-y", "myapp.tac"],
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 30
            reply = None
            while reply is None and time.monotonic() < deadline:
                self.assertIsNone(proc.poll(), (tmp_path / "twistd.out").read_text())
                try:
                    reply = syncControl(str(socketPath), Control.GET_PNN, timeout=2)
                except OSError:
                    time.sleep(0.1)
            assert reply is not None, (tmp_path / "twistd.out").read_text()
            self.assertEqual(reply.status, 1)

            samba = shutil.which("ctdb")
            assert samba is not None, (
                "Samba's ctdb tool is not installed (make install)"
            )
            env = dict(os.environ, CTDB_SOCKET=str(socketPath))
            env.pop("CTDB_BASE", None)
            result = subprocess.run(
                [samba, "pnn"],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout.strip(), "1")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
                raise
        # twistd re-raises the signal it stopped on once it has shut down cleanly.
        log = (tmp_path / "twistd.out").read_text()
        self.assertIn(code, (0, -signal.SIGTERM), log)
        self.assertIn("Server Shut Down.", log)
        self.assertFalse(socketPath.exists())
