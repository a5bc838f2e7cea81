# -*- test-case-name: tests.integration.test_readme_client -*-
"""README.md's Python client API example runs against a local cluster."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.integration._cases import IntegrationCase
from tests.test_readme import ROOT, codeBlocks


def clientExample() -> str:
    [block] = [
        b for b in codeBlocks("python") if "from ctdb.client import connect" in b
    ]
    return block


class ReadmeClientTests(IntegrationCase):
    """The README's client example, run as a reader would run it."""

    def test_clientExampleRuns(self) -> None:
        """The example connects, increments a counter, commits a transaction
        and traverses; run twice, the counter reaches 2."""
        cluster = self.makeCluster(3)
        directory = self.mktempDirectory()
        script = os.path.join(directory, "example.py")
        with open(script, "w") as f:
            f.write(clientExample())
        for expected in ("counter is now 1", "counter is now 2"):
            result = subprocess.run(
                [sys.executable, script, cluster.socketPath(1)],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=directory,
                # the checkout, as the reader's working directory would be
                # (trial runs tests in _trial_temp)
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                check=False,
            )
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn("connected to node 1", result.stdout)
            self.assertIn(expected, result.stdout)
            self.assertIn("greeting: b'hello'", result.stdout)
