"""README.md's Python client API example runs against a local cluster."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.test_readme import codeBlocks


def clientExample() -> str:
    [block] = [
        b for b in codeBlocks("python") if "from ctdb.client import connect" in b
    ]
    return block


def test_clientExampleRuns(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The example connects, increments a counter, commits a transaction
    and traverses; run twice, the counter reaches 2."""
    script = tmp_path / "example.py"
    script.write_text(clientExample())
    for expected in ("counter is now 1", "counter is now 2"):
        result = subprocess.run(
            [sys.executable, str(script), cluster.socketPath(1)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "connected to node 1" in result.stdout
        assert expected in result.stdout, result.stdout
        assert "greeting: b'hello'" in result.stdout, result.stdout
