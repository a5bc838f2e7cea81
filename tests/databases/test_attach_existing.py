# -*- test-case-name: tests.databases.test_attach_existing -*-
"""
Tests for L{ctdb.databases.manager.DatabaseManager.attachExisting}: at
start a node attaches the persistent databases it has files of, as ctdbd's
ctdb_attach_persistent does, and skips what is not its own.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.database.ltdb import dbTdbFlags
from ctdb.database.store import TdbRecordStore
from ctdb.protocols import records as R
from ctdb.testing import connectedNodes


class AttachExistingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="txctdb-attach-")
        self.addCleanup(_removeTree, self.directory)
        cluster = connectedNodes(2, Clock())
        self.addCleanup(cluster.stop)
        self.daemon = cluster[1]
        self.daemon.config = dataclasses.replace(
            self.daemon.config, dbDirPersistent=self.directory
        )
        self.manager = cluster.databases(1)
        self.manager.memory = False

    def write(self, filename: str, key: bytes = b"k", value: bytes = b"v") -> None:
        store = TdbRecordStore(
            os.path.join(self.directory, filename),
            hashSize=131,
            tdbFlags=dbTdbFlags(R.DB_FLAGS_PERSISTENT),
        )
        store.store(key, value)
        store.close()

    def test_attachesOwnFiles(self) -> None:
        """Each C{<name>.tdb.<pnn>} of this node is attached persistent, with
        the records its file holds."""
        self.write("secrets.tdb.1", b"key", b"x" * 24 + b"value")
        self.write("registry.tdb.1")
        attached = self.manager.attachExisting()
        self.assertEqual(
            sorted(db.name for db in attached), ["registry.tdb", "secrets.tdb"]
        )
        db = self.manager.byName["secrets.tdb"]
        self.assertTrue(db.flags & R.DB_FLAGS_PERSISTENT)
        self.assertEqual(db.store.fetch(b"key"), b"x" * 24 + b"value")

    def test_skipsOthers(self) -> None:
        """Another node's file, a name without C{.tdb}, a non-numeric suffix
        and a file that is not a TDB are not attached (the last left as it is,
        not overwritten by a new database); the others are."""
        self.write("other.tdb.0")
        self.write("plain.1")
        self.write("odd.tdb.1x")
        with open(os.path.join(self.directory, "broken.tdb.1"), "wb") as f:
            f.write(b"not a tdb file at all" * 10)
        self.write("good.tdb.1")
        attached = self.manager.attachExisting()
        self.assertEqual([db.name for db in attached], ["good.tdb"])
        self.assertEqual(sorted(self.manager.byName), ["good.tdb"])
        with open(os.path.join(self.directory, "broken.tdb.1"), "rb") as f:
            self.assertEqual(f.read(), b"not a tdb file at all" * 10)

    def test_missingDirectory(self) -> None:
        """No persistent directory yet: nothing to attach."""
        os.rmdir(self.directory)
        self.assertEqual(self.manager.attachExisting(), [])

    def test_memoryStores(self) -> None:
        """A node on memory stores has no files to attach."""
        self.write("secrets.tdb.1")
        self.manager.memory = True
        self.assertEqual(self.manager.attachExisting(), [])


def _removeTree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
