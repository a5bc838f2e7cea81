# -*- test-case-name: tests.events.test_runner -*-
"""
What the event daemon's tests share: a temporary C{CTDB_BASE} with an
events directory of real scripts, waiting (on the real reactor) for a
condition, and telling whether a process is gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase

from ctdb.interfaces import ICTDBReactor

REACTOR: ICTDBReactor = reactor  # type: ignore[assignment]


class ScriptsDir:
    """A temporary C{CTDB_BASE} with C{events/<component>/} directories."""

    def __init__(self, case: SynchronousTestCase, component: str = "legacy") -> None:
        self.base = tempfile.mkdtemp(prefix="txctdb-events-")
        case.addCleanup(shutil.rmtree, self.base, True)
        self.events = os.path.join(self.base, "events")
        self.component = component
        os.makedirs(self.dir(component))

    def dir(self, component: str | None = None) -> str:
        return os.path.join(self.events, component or self.component)

    def path(self, name: str) -> str:
        return os.path.join(self.base, name)

    def script(
        self,
        name: str,
        body: str,
        mode: int = 0o755,
        component: str | None = None,
        shebang: str = "#!/bin/sh\n",
    ) -> str:
        """Write C{events/<component>/<name>.script}."""
        path = os.path.join(self.dir(component), f"{name}.script")
        with open(path, "w") as f:
            f.write(shebang + body)
        os.chmod(path, mode)
        return path

    def write(self, name: str, text: str = "", mode: int = 0o644) -> str:
        """Write the file C{name} under the base directory."""
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def read(self, name: str) -> str:
        with open(self.path(name)) as f:
            return f.read()


def gone(pid: int) -> bool:
    """Whether process C{pid} no longer runs (absent, or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def killRecorded(pids: list[int]) -> None:
    """SIGKILL the processes a test recorded (cleanup only)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def killGroup(pgid: int) -> None:
    """SIGKILL the process group a test recorded (cleanup only)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def readPids(path: str) -> list[int]:
    try:
        with open(path) as f:
            return [int(w) for w in f.read().split()]
    except (OSError, ValueError):
        return []


async def waitUntil(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait (without blocking the reactor) until C{predicate()} holds;
    fail after C{timeout} seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate!r}")
        await deferLater(REACTOR, 0.02, lambda: None)
