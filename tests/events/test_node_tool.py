# -*- test-case-name: tests.events.test_node_tool -*-
"""
Samba's ``ctdb`` tool against a running txctdb node's event daemon: a
one-node ``ctdb-cluster`` with scripts in its C{events/legacy}, and
``ctdb scriptstatus``, ``ctdb event script list|enable|disable``, ``ctdb
event run`` and ``ctdb event status`` as an administrator runs them.
(tests/events/test_samba_tool.py holds the same commands to what Samba's
own ctdb-eventd prints.)  Skipped where Samba's tool is not installed.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import time
import unittest

from twisted.trial.unittest import SynchronousTestCase

from ctdb.cluster import LocalCluster

from ..integration._clusters import makeCluster
from .test_samba_tool import HAVE_SAMBA

_TIMES = re.compile(r"\d+\.\d{3} |\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}")


@unittest.skipIf(not HAVE_SAMBA, "Samba's ctdb and ctdb-event are not installed")
class NodeToolTests(SynchronousTestCase):
    """ctdb event ... and ctdb scriptstatus against a txctdb node."""

    def setUp(self) -> None:
        self.cluster: LocalCluster = makeCluster(self, nodes=1, start=False)
        self.base = self.cluster.nodeDir(0)
        legacy = os.path.join(self.base, "events", "legacy")
        shipped = os.path.join(self.base, "share", "events", "legacy")
        os.makedirs(shipped)
        self.write(os.path.join(shipped, "10.shipped.script"), "echo shipped\n", 0o755)
        self.write(os.path.join(legacy, "01.ok.script"), 'echo "ok $1"\n', 0o755)
        self.write(
            os.path.join(legacy, "02.check.script"),
            f'[ -e {self.base}/fail ] && {{ echo "check failed"; exit 3; }}\nexit 0\n',
            0o755,
        )
        self.cluster.start()

    def write(self, path: str, body: str, mode: int) -> None:
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, mode)

    def tool(self, *args: str) -> tuple[int, str]:
        """Samba's tool as an administrator of node 0 runs it; (exit
        status, stdout with times masked)."""
        env = dict(os.environ)
        env.update(self.cluster.env(0), CTDB_TEST_MODE="yes")
        done = subprocess.run(
            [shutil.which("ctdb") or "ctdb", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        return done.returncode, _TIMES.sub("<T> ", done.stdout)

    def runMonitor(self) -> tuple[int, str]:
        """ctdb event run 10 legacy monitor; the node's own monitor event
        may cancel it (or it the node's), as with ctdbd: then again."""
        deadline = time.monotonic() + 30
        while True:
            code, out = self.tool("event", "run", "10", "legacy", "monitor")
            if "got cancelled" not in out or time.monotonic() > deadline:
                return code, out

    def test_tool(self) -> None:
        """The node's own monitor event shows in scriptstatus; scripts are
        listed, disabled and enabled; runs and statuses follow."""
        self.assertEqual(
            self.tool("scriptstatus"),
            (
                0,
                "01.ok                OK         <T> <T> \n02.check             OK         <T> <T> \n",
            ),
        )
        self.assertEqual(
            self.tool("event", "script", "list", "legacy"),
            (0, "  10.shipped\n\n* 01.ok\n* 02.check\n"),
        )
        self.assertEqual(
            self.tool("event", "script", "disable", "legacy", "02.check"), (0, "")
        )
        self.assertEqual(self.runMonitor(), (0, ""))
        self.assertEqual(
            self.tool("event", "status", "legacy", "monitor"),
            (
                0,
                "01.ok                OK         <T> <T> \n02.check             DISABLED  \n",
            ),
        )
        self.assertEqual(
            self.tool("event", "script", "enable", "legacy", "02.check"), (0, "")
        )
        self.assertEqual(
            self.tool("event", "script", "enable", "legacy", "10.shipped"), (0, "")
        )
        self.assertEqual(
            self.tool("event", "script", "list", "legacy"),
            (0, "* 10.shipped\n\n* 01.ok\n* 02.check\n"),
        )
        with open(os.path.join(self.base, "fail"), "w"):
            pass
        self.assertEqual(
            self.runMonitor(), (errno.ENOEXEC, "Event monitor in legacy failed\n")
        )
        code, out = self.tool("event", "status", "legacy", "monitor")
        self.assertEqual(code, 3)
        self.assertEqual(
            out,
            "01.ok                OK         <T> <T> \n"
            "02.check             ERROR      <T> <T> \n"
            "  OUTPUT: check failed\n\n",
        )
        self.assertEqual(
            self.tool(
                "event", "run", "10", "legacy", "takeip", "eth0", "10.9.9.9", "24"
            ),
            (errno.ENOEXEC, "Event takeip in legacy failed\n"),
        )
        self.assertEqual(
            self.tool("event", "status", "nosuch", "monitor"),
            (errno.ENOENT, "Event dir for nosuch does not exist\n"),
        )
