# -*- test-case-name: tests.integration.test_locks -*-
"""
The daemon never blocks on a record lock that a client holds on the shared
TDB file: traverses, pulls and commits wait for it without stopping the
reactor.
"""

from __future__ import annotations

import os
import subprocess
import time

from ctdb.cluster import syncControl
from ctdb.database.tdb import TDB
from ctdb.protocols.controls import Control
from tests.integration._cases import IntegrationCase


class LockTests(IntegrationCase):
    """A client's chain lock on a node's TDB file."""

    def test_traverseWaitsForClientLockWithoutBlocking(self) -> None:
        """While a client holds a record's chain lock, PING is answered at once
        and `ctdb catdb` completes with every record once the lock goes."""
        cluster = self.makeCluster(3)
        result = self.ctdbTool(cluster, 0, "attach", "locks.tdb")
        self.assertEqual(result.returncode, 0, result.stderr)
        for key in ("a", "b", "c"):
            result = self.ctdbTool(cluster, 0, "writekey", "locks.tdb", key, "v" + key)
            self.assertEqual(result.returncode, 0, result.stderr)
        path = os.path.join(cluster.nodeDir(0), "db", "volatile", "locks.tdb.0")
        holder = TDB(path, tdbFlags=1024 | 64 | 2048, openFlags=os.O_RDWR)
        holder.chainLock(b"a")
        try:
            catdb = subprocess.Popen(
                ["ctdb", "catdb", "locks.tdb"],
                env={**os.environ, **cluster.env(1)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(0.5)
            start = time.monotonic()
            reply = syncControl(cluster.socketPath(0), Control.PING, timeout=3)
            self.assertGreaterEqual(reply.status, 0)
            self.assertLess(time.monotonic() - start, 1.0, "node 0 stopped answering")
            self.assertIsNone(catdb.poll(), "catdb finished while a record was locked")
        finally:
            holder.chainUnlock(b"a")
            holder.close()
        out, err = catdb.communicate(timeout=20)
        self.assertEqual(catdb.returncode, 0, err)
        self.assertIn("Dumped 3 records", out)
