# -*- test-case-name: tests.daemon.test_processexists -*-
"""
Tests for PROCESS_EXISTS sent to a node that died (L{ctdb.daemon.core}):
the answer waits for the recovery that follows the death, so that a g_lock
waiter breaking a dead holder's lock reads recovered databases (issue 13
item 5).  Whole nodes with their recovery service, on a L{Clock}.
"""

from __future__ import annotations

import struct

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.daemon.core import PROCESS_EXISTS_HOLD
from ctdb.protocols import controls as C
from ctdb.protocols.controls import Control
from ctdb.testing import FakeCluster, connectedNodes


def _settled(cluster: FakeCluster, pnns: list[int]) -> bool:
    generations = {cluster[k].vnnMap.generation for k in pnns}
    return (
        all(cluster[k].recmode == C.CTDB_RECOVERY_NORMAL for k in pnns)
        and len(generations) == 1
    )


class ProcessExistsOfDeadNodeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster = connectedNodes(3, self.clock, recovery=True)
        self.addCleanup(self.cluster.stop)
        for _ in range(200):
            self.cluster.advance(0.05, step=0.05)
            if _settled(self.cluster, [0, 1, 2]):
                break
        self.assertTrue(_settled(self.cluster, [0, 1, 2]))

    def ask(self, pnn: int, dest: int) -> tuple[object, int]:
        client = self.cluster.client(pnn)
        client.connect()
        reqid = client.control(
            Control.PROCESS_EXISTS, struct.pack("<i", 4242), destnode=dest
        )
        return client, reqid

    def test_waitsForTheRecovery(self) -> None:
        """Asked right after node 2 died, the answer (no such process)
        comes only once the survivors recovered without it."""
        before = self.cluster[0].vnnMap.generation
        self.cluster.crash(2)
        client, reqid = self.ask(0, 2)
        self.assertIsNone(client.reply(reqid))  # type: ignore[attr-defined]
        for _ in range(400):
            self.cluster.advance(0.05, step=0.05)
            reply = client.reply(reqid)  # type: ignore[attr-defined]
            if reply is not None:
                break
        self.assertIsNotNone(reply)
        self.assertNotEqual(reply.status, 0)
        self.assertEqual(self.cluster[0].recmode, C.CTDB_RECOVERY_NORMAL)
        self.assertNotEqual(self.cluster[0].vnnMap.generation, before)

    def test_afterTheRecoveryAtOnce(self) -> None:
        """Once the recovery is over, the answer comes at once."""
        self.cluster.crash(2)
        for _ in range(400):
            self.cluster.advance(0.05, step=0.05)
            if _settled(self.cluster, [0, 1]) and self.cluster[0].vnnMap.map == (
                0,
                1,
            ):
                break
        client, reqid = self.ask(0, 2)
        reply = client.reply(reqid)  # type: ignore[attr-defined]
        self.assertIsNotNone(reply)
        self.assertNotEqual(reply.status, 0)

    def test_boundedWait(self) -> None:
        """With recoveries held off, the answer still comes, after
        PROCESS_EXISTS_HOLD at most."""
        for k in (0, 1):
            self.cluster.recovery(k).disableRecoveries(300)
        self.cluster.crash(2)
        client, reqid = self.ask(0, 2)
        self.cluster.advance(PROCESS_EXISTS_HOLD - 1, step=0.05)
        self.assertIsNone(client.reply(reqid))  # type: ignore[attr-defined]
        self.cluster.advance(1.5, step=0.05)
        reply = client.reply(reqid)  # type: ignore[attr-defined]
        self.assertIsNotNone(reply)
        self.assertNotEqual(reply.status, 0)

    def test_inFlightWhenTheNodeDies(self) -> None:
        """Asked while node 2 lived, but node 2 died before answering: the
        answer waits for the recovery too."""
        self.cluster.network.blackholes.add((2, 0))
        client, reqid = self.ask(0, 2)
        self.cluster.advance(0.1, step=0.05)
        self.assertIsNone(client.reply(reqid))  # type: ignore[attr-defined]
        self.cluster.network.blackholes.clear()
        before = self.cluster[0].vnnMap.generation
        self.cluster.crash(2)
        self.cluster.advance(0.05, step=0.05)
        self.assertIsNone(client.reply(reqid))  # type: ignore[attr-defined]
        for _ in range(400):
            self.cluster.advance(0.05, step=0.05)
            reply = client.reply(reqid)  # type: ignore[attr-defined]
            if reply is not None:
                break
        self.assertIsNotNone(reply)
        self.assertNotEqual(reply.status, 0)
        self.assertNotEqual(self.cluster[0].vnnMap.generation, before)

    def test_liveNodeAnswersAtOnce(self) -> None:
        """A living node's answer is passed on as it is."""
        client, reqid = self.ask(0, 2)
        self.cluster.advance(0.1, step=0.05)
        reply = client.reply(reqid)  # type: ignore[attr-defined]
        self.assertIsNotNone(reply)
        self.assertNotEqual(reply.status, 0)  # no process 4242 there
