# -*- test-case-name: tests.transports.ib.test_fakeverbs -*-
"""
Tests for C{tests/support/fakeverbs.py}: the fake fabric keeps the verbs
semantics the transport's tests rely on (arming, events on real eventfds,
receive-not-ready, flushes, refusals, misuse recorded).
"""

from __future__ import annotations

import os
import select

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from ctdb.errors import VerbsError
from ctdb.transports.ib.verbs import (
    CMEventType,
    ICMChannel,
    ICMId,
    IQueuePair,
    IVerbs,
    WCStatus,
)
from tests.support.fakeverbs import FakeFabric, FakeQueuePair


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


class FabricTests(SynchronousTestCase):
    """Two hosts connected by hand, step by step."""

    def setUp(self) -> None:
        self.fabric = FakeFabric()
        self.addCleanup(self.fabric.close)
        self.a = self.fabric.verbs("10.0.0.1").createEventChannel()
        self.b = self.fabric.verbs("10.0.0.2").createEventChannel()

    def connect(self) -> tuple[FakeQueuePair, FakeQueuePair]:
        """A connected pair of queue pairs (a's, b's), 2+2 buffers each."""
        listener = self.b.createId("listener")
        listener.bindAddr("10.0.0.2", 4379)
        listener.listen(4)
        cm = self.a.createId("out")
        cm.resolveAddr("10.0.0.1", "10.0.0.2", 4379, 100)
        self.assertEqual(self.a.getEvent().event, CMEventType.ADDR_RESOLVED)  # type: ignore[union-attr]
        qa = cm.createQueuePair(64, 2, 2)
        cm.resolveRoute(100)
        self.assertEqual(self.a.getEvent().event, CMEventType.ROUTE_RESOLVED)  # type: ignore[union-attr]
        cm.connect(b"hello")
        request = self.b.getEvent()
        assert request is not None
        self.assertEqual(request.event, CMEventType.CONNECT_REQUEST)
        self.assertEqual(request.privateData, b"hello".ljust(56, b"\0"))
        self.assertIs(request.listenId, listener)
        qb = request.cmId.createQueuePair(64, 2, 2)
        request.cmId.accept(b"welcome")
        established = self.a.getEvent()
        assert established is not None
        self.assertEqual(
            (established.event, established.privateData),
            (CMEventType.ESTABLISHED, b"welcome".ljust(196, b"\0")),
        )
        self.assertEqual(self.b.getEvent().event, CMEventType.ESTABLISHED)  # type: ignore[union-attr]
        return qa, qb  # type: ignore[return-value]

    def test_provides(self) -> None:
        """The fakes provide the verbs interfaces."""
        self.assertTrue(verifyObject(IVerbs, self.fabric.verbs("10.0.0.3")))
        self.assertTrue(verifyObject(ICMChannel, self.a))
        cm = self.a.createId(None)
        self.assertTrue(verifyObject(ICMId, cm))
        qa, _ = self.connect()
        self.assertTrue(verifyObject(IQueuePair, qa))

    def test_channelFd(self) -> None:
        """The event channel's eventfd is readable while events wait."""
        self.assertFalse(readable(self.a.fileno()))
        cm = self.a.createId(None)
        cm.resolveAddr(None, "10.0.0.9", 1, 100)
        self.assertTrue(readable(self.a.fileno()))
        event = self.a.getEvent()
        assert event is not None
        self.assertEqual(event.event, CMEventType.ADDR_ERROR)
        self.assertFalse(readable(self.a.fileno()))
        self.assertIsNone(self.a.getEvent())

    def test_rejectedWithoutListener(self) -> None:
        """Connecting to a port nobody listens on is REJECTED."""
        cm = self.a.createId(None)
        cm.resolveAddr(None, "10.0.0.2", 4379, 100)
        self.a.getEvent()
        cm.createQueuePair(64, 1, 1)
        cm.resolveRoute(100)
        self.a.getEvent()
        cm.connect(b"")
        self.assertEqual(self.a.getEvent().event, CMEventType.REJECTED)  # type: ignore[union-attr]

    def test_armingIsForTheNextCompletion(self) -> None:
        """A completion raises an event only when the queue is armed, once
        per arming; completions already queued raise none."""
        qa, qb = self.connect()
        qb.postRecv(0)
        qa.writeBuffer(2, b"x" * 10)
        qa.postSend(2, 10, True)
        self.assertFalse(readable(qb.fileno()))
        qb.reqNotifyCq()
        self.assertFalse(readable(qb.fileno()))
        qb.postRecv(1)
        qa.writeBuffer(3, b"y" * 10)
        qa.postSend(3, 10, True)
        self.assertTrue(readable(qb.fileno()))
        self.assertTrue(qb.getCqEvent())
        self.assertFalse(qb.getCqEvent())
        self.assertEqual([wc.wr_id for wc in qb.pollCq(10)], [0, 1])
        qb.ackCqEvents(1)
        self.assertEqual(qb.readBuffer(0, 10), b"x" * 10)
        self.assertEqual(qb.readBuffer(1, 10), b"y" * 10)

    def test_receiverNotReady(self) -> None:
        """A message with no receive posted waits and is counted."""
        qa, qb = self.connect()
        qa.writeBuffer(2, b"abc")
        qa.postSend(2, 3, True)
        self.assertEqual(self.fabric.rnrWaits, 1)
        qb.postRecv(0)
        [wc] = qb.pollCq(4)
        self.assertEqual((wc.status, wc.byte_len), (WCStatus.SUCCESS, 3))

    def test_unsignaledSends(self) -> None:
        """An unsignaled send completes nothing; the next signaled one's
        completion stands for both (their buffers are free again)."""
        qa, qb = self.connect()
        qb.postRecv(0)
        qb.postRecv(1)
        qa.postSend(2, 1, False)
        self.assertEqual(qa.pollCq(4), [])
        self.assertEqual(qa.inFlight, {2})
        qa.postSend(3, 1, True)
        [wc] = qa.pollCq(4)
        self.assertEqual((wc.wr_id, wc.status), (3, WCStatus.SUCCESS))
        self.assertEqual(qa.inFlight, set())
        self.assertEqual(len(qb.pollCq(4)), 2)

    def test_disconnectFlushes(self) -> None:
        """A disconnect flushes the peer's posted receives and tells it."""
        qa, qb = self.connect()
        qb.postRecv(0)
        qa.cmId.disconnect()
        [wc] = qb.pollCq(4)
        self.assertEqual(wc.status, WCStatus.WR_FLUSH_ERR)
        event = self.b.getEvent()
        assert event is not None
        self.assertEqual(event.event, CMEventType.DISCONNECTED)

    def test_misuseRecorded(self) -> None:
        """A send buffer posted twice, a receive buffer posted twice, or a
        queue pair destroyed with unacknowledged events are recorded."""
        qa, qb = self.connect()
        qb.postRecv(0)
        self.assertRaises(VerbsError, qb.postRecv, 0)
        qb.reqNotifyCq()
        qa.fabric.holdDeliveries = True
        qa.postSend(2, 1, True)
        qb.deliver(b"z")
        self.assertTrue(qb.getCqEvent())
        qb.destroy()
        self.assertEqual(len(self.fabric.violations), 2, self.fabric.violations)
        self.fabric.violations.clear()

    def test_closeClosesDescriptors(self) -> None:
        """Closing the fabric closes every eventfd it made."""
        qa, qb = self.connect()
        fds = [self.a.fileno(), self.b.fileno(), qa.fileno(), qb.fileno()]
        self.fabric.close()
        for fd in fds:
            self.assertRaises(OSError, os.fstat, fd)
