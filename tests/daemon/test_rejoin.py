# -*- test-case-name: tests.daemon.test_rejoin -*-
"""
Regression tests for the volatile record protocol around recoveries and a
node that rejoins: whole clusters (C{connectedNodes(..., recovery=True)})
on one L{Clock}, with a node crashed and restarted or a link cut.

The invariant checked throughout: a record has at most one dmaster (the
one node whose own copy names itself), and a REQ_CALL reaches it in a few
hops.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.database.ltdb import LtdbHeader, ctdbHash
from ctdb.databases.manager import DatabaseManager
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.testing import FakeClient, FakeCluster, connectedNodes

DB = "vol.tdb"
#: a REQ_CALL forwarded more often than this is bouncing (ctdbd warns at 96)
HOP_LIMIT = 50


def keyWithLmaster(lmaster: int, nodes: int = 3) -> bytes:
    """A key whose lmaster in the vnn map (0, ..., nodes-1) is C{lmaster}."""
    for i in range(1000):
        key = b"key%d" % i
        if ctdbHash(key) % nodes == lmaster:
            return key
    raise AssertionError("no key found")


class RejoinTests(SynchronousTestCase):
    """Three nodes with recovery; node 2 leads (the highest pnn wins ties)."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster: FakeCluster = connectedNodes(3, self.clock, recovery=True)
        self.addCleanup(self.cluster.stop)
        self.settle()
        FakeClient(self.cluster[0]).control(Control.DB_ATTACH, C.encodeString(DB))
        self.settle(1)
        self.reqids = iter(range(100, 10000))
        self.bounced: list[int] = []

    def settle(self, seconds: float = 4.0) -> None:
        self.cluster.advance(seconds, step=0.05)

    def manager(self, pnn: int) -> DatabaseManager:
        return self.cluster.databases(pnn)

    def limitHops(self, pnn: int) -> None:
        """A REQ_CALL that node C{pnn} would forward for the HOP_LIMIT'th
        time is dropped and noted (else a bounce never ends on a Clock)."""
        manager = self.manager(pnn)
        redirect = manager._redirect

        def limited(
            db: Any, c: P.ReqCall, header: LtdbHeader, lmaster: int | None = None
        ) -> None:
            if c.hopcount >= HOP_LIMIT:
                self.bounced.append(c.hopcount)
                return
            redirect(db, c, header, lmaster)

        manager._redirect = limited  # type: ignore[method-assign]

    def copy(self, pnn: int, key: bytes) -> tuple[LtdbHeader, bytes] | None:
        value = self.manager(pnn).byName[DB].store.fetch(key)
        if value is None:
            return None
        return LtdbHeader.decode(value[:24])[0], value[24:]

    def dmasters(self, key: bytes) -> list[int]:
        """The live nodes whose own copy of C{key} names themselves."""
        found = []
        for d in self.cluster:
            if not d.running:
                continue
            copy = self.copy(d.pnn, key)
            if copy is not None and copy[0].dmaster == d.pnn:
                found.append(d.pnn)
        return found

    def call(self, pnn: int, key: bytes) -> tuple[FakeClient, int]:
        """A client of node C{pnn} migrates C{key} there (fetch-lock)."""
        client = FakeClient(self.cluster[pnn])
        reqid = next(self.reqids)
        db_id = self.manager(pnn).byName[DB].db_id
        header = P.Header(P.Operation.REQ_CALL, pnn, pnn, reqid)
        client.send(
            P.ReqCall(
                header, P.CTDB_IMMEDIATE_MIGRATION, db_id, P.CTDB_NULL_FUNC, 0, key, b""
            )
        )
        return client, reqid

    def answered(self, call: tuple[FakeClient, int]) -> bool:
        client, reqid = call
        return any(
            isinstance(p, P.ReplyCall) and p.header.reqid == reqid and p.status == 0
            for p in client.packets()
        )

    def write(self, pnn: int, key: bytes, data: bytes) -> None:
        """The client, now dmaster, rewrites the record in place."""
        store = self.manager(pnn).byName[DB].store
        value = store.fetch(key)
        assert value is not None
        store.store(key, value[:24] + data)

    def test_migrationAcrossLinkNotYetUp(self) -> None:
        """
        A restarted node is connected to the leader, which recovers with it,
        before another node's link to it is up.  The REPLY_DMASTER that
        node sends it meanwhile is held until the link is up, not lost: a
        lost one left the lmaster and the old dmaster pointing at each other
        and every later REQ_CALL bounced between them for ever.
        """
        key = keyWithLmaster(0)
        first = self.call(2, key)
        self.settle(0.1)
        self.assertTrue(self.answered(first))
        self.write(2, key, b"value")
        self.cluster.crash(1)
        self.settle()
        self.cluster.network.partition(0, 1)
        self.cluster.restart(1)
        self.settle()
        gens = {d.vnnMap.generation for d in self.cluster}
        self.assertEqual(len(gens), 1)
        self.assertEqual(self.cluster[0].vnnMap.map, (0, 1, 2))
        self.assertEqual(
            [d.recmode for d in self.cluster], [C.CTDB_RECOVERY_NORMAL] * 3
        )
        for pnn in range(3):
            self.limitHops(pnn)
        # node 1 asks the dmaster (2); the lmaster (0) answers it over the
        # link that is not up yet
        fromOne = self.call(1, key)
        self.settle(0.5)
        self.assertFalse(self.answered(fromOne))
        self.cluster.network.heal(0, 1)
        self.settle(1)
        self.assertTrue(self.answered(fromOne))
        self.assertEqual(self.dmasters(key), [1])
        self.assertEqual(self.copy(1, key)[1], b"value")  # type: ignore[index]
        fromZero = self.call(0, key)
        self.settle(0.5)
        self.assertTrue(self.answered(fromZero))
        self.assertEqual(self.dmasters(key), [0])
        self.assertEqual(self.bounced, [])

    def test_replyDmasterWaitingAcrossRecovery(self) -> None:
        """
        A REPLY_DMASTER that waited for the record's lock (a client held
        it) while a recovery ran is from the previous generation when it
        gets the lock: it is discarded, as ctdbd's lock_fetch_callback does.
        Applied, it made its node dmaster next to the leader the recovery
        had made dmaster (two nodes then handed out the same record).
        """
        key = keyWithLmaster(0)
        first = self.call(0, key)
        self.settle(0.1)
        self.assertTrue(self.answered(first))
        self.write(0, key, b"value")
        # Node 1 asks for the record; then a client of node 1 takes the
        # record's lock, so the REPLY_DMASTER that comes back waits.
        store = self.manager(1).byName[DB].store
        fromOne = self.call(1, key)
        self.assertTrue(store.lockNonblock(key))
        self.cluster.flush()
        self.assertEqual(self.dmasters(key), [])
        # a recovery starts; the client lets go once the db is frozen
        leader = self.cluster[2]
        original = leader.controls.table[Control.DB_TRANSACTION_START]

        def transactionStart(req: P.ReqControl, client: Any) -> Any:
            store.unlock(key)
            leader.controls.table[Control.DB_TRANSACTION_START] = original
            return original(req, client)

        leader.controls.table[Control.DB_TRANSACTION_START] = transactionStart
        FakeClient(self.cluster[0]).control(
            Control.SET_RECMODE, C.encodeU32(C.CTDB_RECOVERY_ACTIVE)
        )
        # the call is resent after the recovery and completes; the client
        # writes, and node 0 takes the record
        for _ in range(10000):
            if self.answered(fromOne):
                break
            self.clock.advance(0.001)
        self.assertTrue(self.answered(fromOne))
        self.assertEqual(self.dmasters(key), [1])
        self.write(1, key, b"newer")
        fromZero = self.call(0, key)
        self.settle()
        self.assertEqual(
            [d.recmode for d in self.cluster], [C.CTDB_RECOVERY_NORMAL] * 3
        )
        self.assertTrue(self.answered(fromZero))
        self.assertEqual(self.dmasters(key), [0])
        self.assertEqual(self.copy(0, key)[1], b"newer")  # type: ignore[index]
