# -*- test-case-name: tests.integration.test_client_api -*-
"""
The high-level client API (L{ctdb.client}) against a 3-node cluster of our
daemons and against a 3-node cluster of Samba's real ctdbd 4.17: the same
checks (L{_ClientAPIChecks}) run against both, with the real reactor, and
Samba's C{ctdb} tool is used as the independent witness (C{catdb},
C{pfetch}, C{getdbseqnum}).

Each cluster is started once for this module on its own random 127.X.Y.Z
range and stopped by the PIDs it recorded.  Every test uses databases
with names of its own.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
from collections.abc import Callable, Generator
from typing import Any, cast

import pytest
from twisted.internet import defer, reactor, task, utils
from twisted.trial.unittest import TestCase

from ctdb.client import (
    CTDBClient,
    FetchLockError,
    TransactionError,
    connect,
)
from ctdb.database.ltdb import dbId
from ctdb.protocols import controls as C
from ctdb.protocols import records as R

from ._clusters import SharedClusters
from .test_exactness import parseCatdb, waitSettled

NODES = 3

#: how many commits of a busy writer a pfetch of another node may wait
#: for (with the g_lock's fairness ~0-10 here; without, up to 975)
FAIR_COMMITS = 200


SHARED = SharedClusters("txctdb-api-", NODES, lambda c: waitSettled(c, NODES))
atexit.register(SHARED.stopAll)


@pytest.fixture(scope="module", autouse=True)
def sharedClusters():  # type: ignore[no-untyped-def]
    """Stop this module's clusters after its last test."""
    yield SHARED
    SHARED.stopAll()


async def _await(awaitable: Any) -> Any:
    return await awaitable


def lock(db: Any, key: bytes) -> defer.Deferred[Any]:
    """db.fetchLock(key) as a Deferred, for inlineCallbacks."""
    return defer.Deferred.fromCoroutine(_await(db.fetchLock(key)))


def _name(prefix: str) -> str:
    return f"{prefix}_{random.randint(0, 2**32):08x}.tdb"


class _ClientAPIChecks:
    """Checks of L{ctdb.client} that must pass against any ctdbd."""

    kind: str
    cluster: Any
    addCleanup: Callable[..., None]
    assertEqual: Callable[..., None]
    assertIn: Callable[..., None]
    assertNotIn: Callable[..., None]
    assertTrue: Callable[..., None]
    assertIsNone: Callable[..., None]

    def setUp(self) -> None:
        self.cluster = SHARED.get(self.kind)

    async def connect(self, pnn: int) -> CTDBClient:
        # Twisted types the global reactor as _IReactorCommon (no IReactorUNIX)
        client = await connect(
            reactor,  # type: ignore[arg-type]
            self.cluster.socketPath(pnn),
            timeout=20,
        )
        client.lockTimeout = 30
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(client.close()))
        return client

    async def clients(self) -> list[CTDBClient]:
        return [await self.connect(k) for k in range(NODES)]

    async def tool(self, pnn: int, *args: str) -> str:
        """Samba's ctdb tool against node C{pnn}, without blocking the reactor."""
        env = dict(os.environ)
        env.update(self.cluster.env(pnn))
        env["CTDB_TEST_MODE"] = "yes"
        out, err, code = await utils.getProcessOutputAndValue(
            shutil.which("ctdb") or "ctdb", args, env=env
        )
        self.assertEqual(code, 0, (args, out, err))
        return out.decode()

    # -- attach ------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_attachAllKinds(self):  # type: ignore[no-untyped-def]
        """
        attach() of a volatile, a persistent and a replicated database
        returns its db_id (hash of the name), the local file under the right
        directory with the daemon's open flags, and every node's GET_DBMAP
        lists it with its flags.
        """
        client = yield defer.Deferred.fromCoroutine(self.connect(1))
        names = {
            "volatile": (_name("api_v"), {}, 0),
            "persistent": (_name("api_p"), {"persistent": True}, R.DB_FLAGS_PERSISTENT),
            "replicated": (_name("api_r"), {"replicated": True}, R.DB_FLAGS_REPLICATED),
        }
        for kind, (name, kwargs, flags) in names.items():
            db = yield defer.Deferred.fromCoroutine(client.attach(name, **kwargs))
            self.assertEqual(db.db_id, dbId(name))
            self.assertEqual(db.flags, flags)
            self.assertEqual(os.path.basename(db.path), f"{name}.1")
            where = "persistent" if kind == "persistent" else "volatile"
            if kind == "replicated" and "/db/replicated" in db.path:
                where = "replicated"  # later Samba versions
            self.assertIn(f"/db/{where}/", db.path)
            self.assertTrue(os.path.exists(db.path))
            self.assertEqual(db.tdb.path, db.path)
            again = yield defer.Deferred.fromCoroutine(client.attach(name, **kwargs))
            self.assertTrue(again is db)
            for k in range(NODES):
                data = yield defer.Deferred.fromCoroutine(
                    client.controlOk(C.Control.GET_DBMAP, destnode=k)
                )
                dbmap = {d.db_id: d.flags for d in R.decodeDbMap(data)}
                self.assertIn(db.db_id, dbmap)
                self.assertEqual(dbmap[db.db_id] & ~R.DB_FLAGS_READONLY, flags)

    # -- fetch-lock ---------------------------------------------------------------

    @defer.inlineCallbacks
    def test_fetchLockMigrates(self):  # type: ignore[no-untyped-def]
        """
        A record fetch-locked and stored on node 0 is fetch-locked on node 2:
        it migrates there with its data (dmaster 2), and Samba's catdb (via
        node 1) shows the value with dmaster 2.
        """
        c0, _, c2 = yield defer.Deferred.fromCoroutine(self.clients())
        name = _name("api_mig")
        db0 = yield defer.Deferred.fromCoroutine(c0.attach(name))
        db2 = yield defer.Deferred.fromCoroutine(c2.attach(name))
        record = yield lock(db0, b"migrating")
        self.assertEqual(record.header.dmaster, 0)
        self.assertEqual(record.data, b"")
        record.store(b"value from node 0")
        record.release()
        record = yield lock(db2, b"migrating")
        try:
            self.assertEqual(record.header.dmaster, 2)
            self.assertEqual(record.data, b"value from node 0")
            record.store(b"value from node 2")
        finally:
            record.release()
        dump = yield defer.Deferred.fromCoroutine(self.tool(1, "catdb", name))
        self.assertIn('key(9) = "migrating"\ndmaster: 2\n', dump)
        self.assertIn('data(17) = "value from node 2"', dump)
        # and back: node 0 sees node 2's value
        value = yield defer.Deferred.fromCoroutine(db0.fetch(b"migrating"))
        self.assertEqual(value, b"value from node 2")

    @defer.inlineCallbacks
    def test_fetchLockContextManager(self):  # type: ignore[no-untyped-def]
        """
        'async with db.fetchLock(key)' releases the lock at the end of the
        block, even when the block raises; the lock is taken again at once.
        """
        client = yield defer.Deferred.fromCoroutine(self.connect(1))
        db = yield defer.Deferred.fromCoroutine(client.attach(_name("api_ctx")))
        holder = []

        async def failing() -> None:
            async with db.fetchLock(b"k") as record:
                holder.append(record)
                record.store(b"stored")
                raise ValueError("boom")

        yield self.assertFailure(defer.Deferred.fromCoroutine(failing()), ValueError)
        self.assertTrue(not holder[0].held)
        again = yield lock(db, b"k")
        self.assertEqual(again.data, b"stored")
        again.release()

    @defer.inlineCallbacks
    def test_fetchLockSerialisesInProcess(self):  # type: ignore[no-untyped-def]
        """
        Coroutines of one process incrementing one record under fetchLock
        never lose an update (the chain lock is per process, so the client
        serialises them), while clients on the other nodes do the same.
        """
        clients = yield defer.Deferred.fromCoroutine(self.clients())
        name = _name("api_incr")
        dbs = []
        for c in clients:
            db = yield defer.Deferred.fromCoroutine(c.attach(name))
            dbs.append(db)

        async def increment(db: Any, times: int) -> None:
            for _ in range(times):
                async with db.fetchLock(b"counter") as record:
                    value = int(record.data or b"0")
                    await task.deferLater(reactor, 0, lambda: None)
                    record.store(b"%d" % (value + 1))

        yield defer.gatherResults(
            [
                defer.Deferred.fromCoroutine(increment(db, 15))
                for db in dbs
                for _ in range(3)
            ]
        )
        value = yield defer.Deferred.fromCoroutine(dbs[1].fetch(b"counter"))
        self.assertEqual(value, b"%d" % (15 * 3 * NODES))

    @defer.inlineCallbacks
    def test_delete(self):  # type: ignore[no-untyped-def]
        """
        RecordLock.delete() leaves no data: other nodes fetch nothing and
        catdb and traverse no longer list the key.
        """
        c0, _, c2 = yield defer.Deferred.fromCoroutine(self.clients())
        name = _name("api_del")
        db0 = yield defer.Deferred.fromCoroutine(c0.attach(name))
        db2 = yield defer.Deferred.fromCoroutine(c2.attach(name))
        yield defer.Deferred.fromCoroutine(db0.store(b"doomed", b"x" * 10))
        yield defer.Deferred.fromCoroutine(db0.store(b"kept", b"y"))
        record = yield lock(db2, b"doomed")
        self.assertEqual(record.data, b"x" * 10)
        yield defer.Deferred.fromCoroutine(record.delete())
        self.assertEqual(record.data, b"")
        record.release()
        value = yield defer.Deferred.fromCoroutine(db0.fetch(b"doomed"))
        self.assertIsNone(value)
        dump = yield defer.Deferred.fromCoroutine(self.tool(1, "catdb", name))
        self.assertEqual([k for k, _ in parseCatdb(dump)], ["kept"])
        records = yield defer.Deferred.fromCoroutine(db2.traverse())
        self.assertEqual([(k, d) for k, _, d in records], [(b"kept", b"y")])

    @defer.inlineCallbacks
    def test_fetchLockRefusesPersistent(self):  # type: ignore[no-untyped-def]
        """fetchLock on a persistent database fails, as in Samba (EINVAL)."""
        client = yield defer.Deferred.fromCoroutine(self.connect(0))
        db = yield defer.Deferred.fromCoroutine(
            client.attach(_name("api_pfl"), persistent=True)
        )
        yield self.assertFailure(
            defer.Deferred.fromCoroutine(db.fetchLock(b"k").__aenter__()),
            FetchLockError,
        )

    # -- transactions ----------------------------------------------------------------

    @defer.inlineCallbacks
    def test_transactionPersistent(self):  # type: ignore[no-untyped-def]
        """
        A transaction on node 1 stores three records: every node's copy
        has them (our fetch and Samba's pfetch), with dmaster 1 and rsn 1,
        and the database sequence number went up by one on every node.
        """
        clients = yield defer.Deferred.fromCoroutine(self.clients())
        name = _name("api_txn")
        dbs = []
        for c in clients:
            db = yield defer.Deferred.fromCoroutine(c.attach(name, persistent=True))
            dbs.append(db)
        before = yield defer.Deferred.fromCoroutine(dbs[0].seqnum())
        self.assertEqual(before, 0)

        async def write() -> None:
            async with dbs[1].transaction() as txn:
                self.assertIsNone(await txn.fetch(b"a"))
                await txn.store(b"a", b"1")
                await txn.store(b"b", b"2")
                await txn.store(b"c", b"3")
                self.assertEqual(await txn.fetch(b"a"), b"1")

        yield defer.Deferred.fromCoroutine(write())
        for k, db in enumerate(dbs):
            for key, value in ((b"a", b"1"), (b"b", b"2"), (b"c", b"3")):
                got = yield defer.Deferred.fromCoroutine(db.fetch(key))
                self.assertEqual(got, value, (k, key))
                header, _ = db._readLocal(key)
                self.assertEqual((header.rsn, header.dmaster), (1, 1))
            seqnum = yield defer.Deferred.fromCoroutine(db.seqnum())
            self.assertEqual(seqnum, 1)
            out = yield defer.Deferred.fromCoroutine(self.tool(k, "pfetch", name, "b"))
            self.assertEqual(out.strip(), "2")
            out = yield defer.Deferred.fromCoroutine(self.tool(k, "getdbseqnum", name))
            self.assertEqual(int(out.strip(), 0), 1)

    @defer.inlineCallbacks
    def test_transactionCancelAndSambaWriter(self):  # type: ignore[no-untyped-def]
        """
        A transaction that raises changes nothing (seqnum unchanged); a
        value written by Samba's 'ctdb pstore' is seen by our next
        transaction, which updates it for Samba's pfetch on another node.
        """
        c0, c1, _ = yield defer.Deferred.fromCoroutine(self.clients())
        name = _name("api_txc")
        db0 = yield defer.Deferred.fromCoroutine(c0.attach(name, persistent=True))
        db1 = yield defer.Deferred.fromCoroutine(c1.attach(name, persistent=True))

        async def failing() -> None:
            async with db0.transaction() as txn:
                await txn.store(b"k", b"never")
                raise KeyError("abort")

        yield self.assertFailure(defer.Deferred.fromCoroutine(failing()), KeyError)
        value = yield defer.Deferred.fromCoroutine(db1.fetch(b"k"))
        self.assertIsNone(value)
        self.assertEqual((yield defer.Deferred.fromCoroutine(db1.seqnum())), 0)
        yield defer.Deferred.fromCoroutine(
            self.tool(2, "pstore", name, "k", "from samba")
        )
        self.assertEqual((yield defer.Deferred.fromCoroutine(db0.seqnum())), 1)

        async def update() -> None:
            txn = await db0.transaction()
            old = await txn.fetch(b"k")
            await txn.store(b"k", old + b" and txctdb")
            await txn.commit()

        yield defer.Deferred.fromCoroutine(update())
        out = yield defer.Deferred.fromCoroutine(self.tool(2, "pfetch", name, "k"))
        self.assertEqual(out.strip(), "from samba and txctdb")
        self.assertEqual((yield defer.Deferred.fromCoroutine(db1.seqnum())), 2)

    @defer.inlineCallbacks
    def test_transactionReplicated(self):  # type: ignore[no-untyped-def]
        """A transaction on a replicated database reaches every node's copy."""
        clients = yield defer.Deferred.fromCoroutine(self.clients())
        name = _name("api_rep")
        dbs = []
        for c in clients:
            db = yield defer.Deferred.fromCoroutine(c.attach(name, replicated=True))
            dbs.append(db)

        async def write() -> None:
            async with dbs[2].transaction() as txn:
                await txn.store(b"replica", b"everywhere")

        yield defer.Deferred.fromCoroutine(write())
        for db in dbs:
            got = yield defer.Deferred.fromCoroutine(db.fetch(b"replica"))
            self.assertEqual(got, b"everywhere")

    @defer.inlineCallbacks
    def test_transactionRefusesVolatile(self):  # type: ignore[no-untyped-def]
        """transaction() on a volatile database raises TransactionError."""
        client = yield defer.Deferred.fromCoroutine(self.connect(0))
        db = yield defer.Deferred.fromCoroutine(client.attach(_name("api_tv")))
        self.assertRaises(TransactionError, db.transaction)

    @defer.inlineCallbacks
    def test_concurrentTransactions(self):  # type: ignore[no-untyped-def]
        """
        Transactions from all three nodes (and two coroutines on each)
        incrementing one record are serialised by the g_lock: no update
        is lost and the sequence number counts every commit.
        """
        clients = yield defer.Deferred.fromCoroutine(self.clients())
        name = _name("api_tcc")
        dbs = []
        for c in clients:
            db = yield defer.Deferred.fromCoroutine(c.attach(name, persistent=True))
            dbs.append(db)

        async def increment(db: Any, times: int) -> None:
            for _ in range(times):
                async with db.transaction() as txn:
                    value = int(await txn.fetch(b"n") or b"0")
                    await txn.store(b"n", b"%d" % (value + 1))

        yield defer.gatherResults(
            [
                defer.Deferred.fromCoroutine(increment(db, 4))
                for db in dbs
                for _ in range(2)
            ]
        )
        for db in dbs:
            got = yield defer.Deferred.fromCoroutine(db.fetch(b"n"))
            self.assertEqual(got, b"%d" % (4 * 2 * NODES))
            self.assertEqual((yield defer.Deferred.fromCoroutine(db.seqnum())), 24)

    @defer.inlineCallbacks
    def test_busyWriterLetsSambaIn(self):  # type: ignore[no-untyped-def]
        """
        A loop of transactions on node 1 does not starve Samba's pfetch,
        which polls the same g_lock, on any node (ctdb.client.glock's
        fairness): each pfetch answers while the loop still runs, sees a
        value the loop committed, and waits for at most L{FAIR_COMMITS} of
        the loop's commits.  Without the fairness a pfetch on another node
        waited for up to 975 commits (10 s); one on node 1 itself gets in
        at once either way (no migration between its polls).
        """
        c1 = yield defer.Deferred.fromCoroutine(self.connect(1))
        name = _name("api_fair")
        db = yield defer.Deferred.fromCoroutine(c1.attach(name, persistent=True))
        state = {"running": True, "commits": 0}
        clock = cast(Any, reactor)

        async def loop() -> None:
            deadline = clock.seconds() + 120
            while state["running"] and clock.seconds() < deadline:
                async with db.transaction() as txn:
                    value = int(await txn.fetch(b"n") or b"0")
                    await txn.store(b"n", b"%d" % (value + 1))
                state["commits"] += 1
            state["running"] = False

        writer = defer.Deferred.fromCoroutine(loop())
        waited = []
        try:
            while state["commits"] < 20 and state["running"]:
                yield task.deferLater(clock, 0.05, lambda: None)
            for pnn in (0, 2, 1) * 4:
                before = state["commits"]
                out = yield defer.Deferred.fromCoroutine(
                    self.tool(pnn, "pfetch", name, "n")
                )
                waited.append(state["commits"] - before)
                self.assertTrue(state["running"], "the writer stopped first")
                self.assertTrue(0 < int(out.strip()) <= state["commits"], out)
        finally:
            state["running"] = False
            yield writer
        self.assertLessEqual(max(waited), FAIR_COMMITS, waited)

    # -- traverse ------------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_traverseClusterWide(self) -> Generator[defer.Deferred[Any], Any, None]:
        """
        Records written from all three nodes come back, each exactly once
        with its dmaster, from a traverse started on any node; a callback
        sees the same records.
        """
        clients = yield defer.Deferred.fromCoroutine(self.clients())
        name = _name("api_trav")
        dbs = []
        for c in clients:
            db = yield defer.Deferred.fromCoroutine(c.attach(name))
            dbs.append(db)
        expected = {}
        for i in range(30):
            key, value = b"key-%02d" % i, b"value %d" % i
            yield defer.Deferred.fromCoroutine(dbs[i % NODES].store(key, value))
            expected[key] = (value, i % NODES)
        for db in dbs:
            records = yield defer.Deferred.fromCoroutine(db.traverse())
            self.assertEqual(len(records), len(expected))
            self.assertEqual({k: (d, h.dmaster) for k, h, d in records}, expected)
        seen: list[bytes] = []
        result = yield defer.Deferred.fromCoroutine(
            dbs[0].traverse(lambda k, h, d: seen.append(k))
        )
        self.assertEqual(result, [])
        self.assertEqual(sorted(seen), sorted(expected))

    @defer.inlineCallbacks
    def test_traversePersistent(self):  # type: ignore[no-untyped-def]
        """A persistent database traverses to its records (seqnum record included)."""
        client = yield defer.Deferred.fromCoroutine(self.connect(2))
        db = yield defer.Deferred.fromCoroutine(
            client.attach(_name("api_ptrav"), persistent=True)
        )

        async def write() -> None:
            async with db.transaction() as txn:
                for i in range(5):
                    await txn.store(b"p%d" % i, b"%d" % i)

        yield defer.Deferred.fromCoroutine(write())
        records = yield defer.Deferred.fromCoroutine(db.traverse())
        keys = sorted(k for k, _, _ in records)
        self.assertEqual(
            keys, [b"__db_sequence_number__\0"] + [b"p%d" % i for i in range(5)]
        )

    # -- messages and controls -------------------------------------------------------------

    @defer.inlineCallbacks
    def test_messagesBetweenNodes(self) -> Generator[defer.Deferred[Any], Any, None]:
        """
        A client on node 2 registers a srvid; a client on node 0 sends it
        two messages; they arrive in order; after deregisterSrvid a message
        is no longer delivered.
        """
        c0, _, c2 = yield defer.Deferred.fromCoroutine(self.clients())
        srvid = 0xFE00_0000_0000_0000 | random.randint(1, 0xFFFF_FFFF)
        got: list[bytes] = []
        two: defer.Deferred[None] = defer.Deferred()

        def handler(sid: int, data: bytes) -> None:
            self.assertEqual(sid, srvid)
            got.append(data)
            if len(got) == 2 and not two.called:
                two.callback(None)

        yield defer.Deferred.fromCoroutine(c2.registerSrvid(srvid, handler))
        c0.sendMessage(2, srvid, b"first")
        c0.sendMessage(2, srvid, b"second")
        two.addTimeout(10, reactor)
        yield two
        self.assertEqual(got, [b"first", b"second"])
        yield defer.Deferred.fromCoroutine(c2.deregisterSrvid(srvid, handler))
        c0.sendMessage(2, srvid, b"late")
        # a round trip through both daemons after the message
        yield c0.control(C.Control.PING, destnode=2)
        yield c2.control(C.Control.PING)
        yield task.deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(got, [b"first", b"second"])

    @defer.inlineCallbacks
    def test_controlPassthrough(self):  # type: ignore[no-untyped-def]
        """control() returns the raw reply from any node; controlOk() its data."""
        client = yield defer.Deferred.fromCoroutine(self.connect(0))
        self.assertEqual(client.pnn, 0)
        for k in range(NODES):
            reply = yield client.control(C.Control.GET_PNN, destnode=k)
            self.assertEqual(reply.status, k)
        data = yield defer.Deferred.fromCoroutine(
            client.controlOk(C.Control.GET_NODEMAP)
        )
        nodes = C.decodeNodeMap(data)
        self.assertEqual([n.pnn for n in nodes], list(range(NODES)))
        reply = yield client.control(9999)
        self.assertTrue(reply.status != 0)


class OurDaemonClientAPITests(_ClientAPIChecks, TestCase):
    """The client API against our daemons."""

    kind = "ours"
    timeout = 120


class RealCtdbdClientAPITests(_ClientAPIChecks, TestCase):
    """The client API against Samba's real ctdbd 4.17."""

    kind = "real"
    timeout = 120
