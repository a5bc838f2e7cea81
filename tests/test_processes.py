# -*- test-case-name: tests.test_processes -*-
"""Tests for L{ctdb.processes}: what the local-cluster commands read of
their processes in /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from ctdb.processes import commandLine, isAlive, liveProcesses, procStat, tailFile


class ProcessesTests(SynchronousTestCase):
    """Read against processes this test starts."""

    def startChild(self) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            start_new_session=True,
        )
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        return child

    def test_procStat(self) -> None:
        """Our own stat: running, our parent, group and session."""
        st = procStat(os.getpid())
        assert st is not None
        self.assertEqual(
            (st.ppid, st.pgrp, st.session), (os.getppid(), os.getpgrp(), os.getsid(0))
        )
        self.assertIsNone(procStat(2**22 + 1))

    def test_childAndGroup(self) -> None:
        """A child in a session of its own is found as our child and as the
        only member of its group; once reaped it is gone."""
        child = self.startChild()
        self.assertIn(child.pid, liveProcesses(ppid=os.getpid()))
        self.assertEqual(liveProcesses(pgrp=child.pid), [child.pid])
        self.assertTrue(isAlive(child.pid))
        self.assertIn(b"time.sleep(60)", commandLine(child.pid))
        child.kill()
        child.wait()
        self.assertFalse(isAlive(child.pid))
        self.assertEqual(liveProcesses(pgrp=child.pid), [])
        self.assertEqual(commandLine(child.pid), b"")

    def test_tailFile(self) -> None:
        """The last lines of a file; "" for one that cannot be read."""
        fd, path = tempfile.mkstemp()
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as f:
            f.write("".join(f"line {i}\n" for i in range(20)))
        self.assertEqual(tailFile(path, 2), "line 18\nline 19\n")
        self.assertEqual(tailFile(path + ".missing", 2), "")
