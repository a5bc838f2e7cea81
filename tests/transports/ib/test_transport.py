# -*- test-case-name: tests.transports.ib.test_transport -*-
"""
Tests for L{ctdb.transports.ib.transport}: the whole transport on the real
reactor, its channels real descriptors.  L{FakeVerbsTests} run it over
the fake fabric of C{tests/support/fakeverbs.py}; L{RealVerbsTests} run
the same tests over the ctypes binding when an RDMA device (soft-RoCE
counts) is present, and are skipped with the reason otherwise.
L{FabricTests} use the fake's knobs: completions out of order and in
bursts, a slow peer, failed sends, disconnects, partitions, crashes.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from ctdb.errors import VerbsError
from ctdb.interfaces import INodeTransport
from ctdb.transports.ib.binding import RealChannel, RealCMId, RealQueuePair, RealVerbs
from ctdb.transports.ib.transport import IBNodeTransport, _Link
from ctdb.transports.ib.verbs import ICMChannel, IVerbs
from tests.support.fakelibverbs import FakeLibraries
from tests.support.fakeverbs import FakeFabric
from tests.transports.ib._harness import (
    ADDRESSES,
    RecordingListener,
    makeTransport,
    message,
    mixedSizes,
    reactor,
    realAddresses,
    realVerbs,
    until,
)

if TYPE_CHECKING:
    _Mixin = TestCase
else:
    _Mixin = object


class _Base(_Mixin):
    """Builds transports and tears them down; subclasses say over what
    (a mixin: only the subclasses with TestCase are collected)."""

    port = 4379
    addresses: tuple[str, ...] = ADDRESSES

    def verbsFor(self, address: str) -> IVerbs:
        raise NotImplementedError

    def setUp(self) -> None:
        self.transports: list[IBNodeTransport] = []
        self.listeners: list[RecordingListener] = []

    def build(self, n: int = 2, start: bool = True, **kw: Any) -> list[IBNodeTransport]:
        """C{n} transports (pnn = index), started and connecting to each
        other."""
        made = []
        for pnn in range(n):
            made.append(self.add(pnn, **kw))
        if start:
            for pnn, t in enumerate(made):
                for other in range(n):
                    if other != pnn:
                        t.connectNode(other, self.addresses[other])
        return made

    def add(self, pnn: int, **kw: Any) -> IBNodeTransport:
        """Transport C{pnn}, started, connecting to nobody yet."""
        listener = RecordingListener()
        t = makeTransport(
            self.verbsFor(self.addresses[pnn]),
            self.addresses[pnn],
            listener,
            self.port,
            **kw,
        )
        t.start()
        self.addCleanup(t.shutdown)
        while len(self.transports) <= pnn:
            self.transports.append(None)  # type: ignore[arg-type]
            self.listeners.append(None)  # type: ignore[arg-type]
        self.transports[pnn], self.listeners[pnn] = t, listener
        return t

    def allConnected(self, pnns: tuple[int, ...] = (0, 1)) -> defer.Deferred[None]:
        def check() -> bool:
            return all(
                self.listeners[a].count("connected", b)
                > self.listeners[a].count("dead", b)
                for a in pnns
                for b in pnns
                if a != b
            )

        return until(check, what=f"nodes {pnns} connected")


class _TransportTests(_Base):
    """What must hold over any verbs."""

    def test_provides(self) -> None:
        """The transport provides L{INodeTransport}, the verbs L{IVerbs}."""
        [t] = self.build(1)
        self.assertTrue(verifyObject(INodeTransport, t))
        self.assertTrue(verifyObject(IVerbs, t.verbs))
        assert t.channel is not None
        self.assertTrue(verifyObject(ICMChannel, t.channel))

    @defer.inlineCallbacks
    def test_connect(self) -> Any:
        """Two transports connect both ways and each says so once; before
        that C{queuePacket} answers False."""
        a, _b = self.build(2)
        self.assertFalse(a.queuePacket(1, message(0, 1, 10)))
        yield self.allConnected()
        self.assertEqual(self.listeners[0].events, [("connected", 1)])
        self.assertEqual(self.listeners[1].events, [("connected", 0)])
        self.assertTrue(a.queuePacket(1, message(0, 1, 10)))
        yield until(lambda: len(self.listeners[1].packets) == 1)
        self.assertEqual(self.listeners[1].packets, [(0, message(0, 1, 10))])

    @defer.inlineCallbacks
    def test_thousandsBothWays(self) -> Any:
        """3000 packets each way, 0 bytes to 2 MB, queued at once: all
        arrive, in order, intact."""
        a, b = self.build(2)
        yield self.allConnected()
        sizes = mixedSizes(3000)
        there = [message(0, 1, size, i) for i, size in enumerate(sizes)]
        back = [message(1, 0, size, i) for i, size in enumerate(reversed(sizes))]
        for x, y in zip(there, back, strict=True):
            self.assertTrue(a.queuePacket(1, x))
            self.assertTrue(b.queuePacket(0, y))
        yield until(
            lambda: (
                len(self.listeners[1].packets) >= len(there)
                and len(self.listeners[0].packets) >= len(back)
            ),
            timeout=60,
            what="every packet",
        )
        self.assertEqual([p for _, p in self.listeners[1].packets], there)
        self.assertEqual([p for _, p in self.listeners[0].packets], back)

    @defer.inlineCallbacks
    def test_pingPong(self) -> Any:
        """2000 round trips of one small packet, each sent from the
        packet handler of the last: every wake-up happens (nothing else
        moves the links)."""
        a, b = self.build(2)
        yield self.allConnected()
        rounds = 2000

        def echo(pnn: int, data: bytes) -> None:
            b.queuePacket(0, data)

        def again(pnn: int, data: bytes) -> None:
            if len(self.listeners[0].packets) < rounds:
                a.queuePacket(1, message(0, 1, 64, len(self.listeners[0].packets)))

        self.listeners[1].onPacket = echo
        self.listeners[0].onPacket = again
        a.queuePacket(1, message(0, 1, 64, 0))
        yield until(lambda: len(self.listeners[0].packets) == rounds, timeout=60)

    @defer.inlineCallbacks
    def test_restartNode(self) -> Any:
        """restartNode drops both links: both sides see the node dead once,
        then connected again, and packets flow again."""
        a, _b = self.build(2)
        yield self.allConnected()
        a.restartNode(1)
        yield until(
            lambda: (
                self.listeners[0].count("connected", 1) == 2
                and self.listeners[1].count("connected", 0) == 2
            ),
            what="reconnection",
        )
        self.assertEqual(self.listeners[0].count("dead", 1), 1)
        self.assertEqual(self.listeners[1].count("dead", 0), 1)
        a.queuePacket(1, message(0, 1, 100, 7))
        yield until(lambda: len(self.listeners[1].packets) == 1)

    @defer.inlineCallbacks
    def test_removeAndAddNode(self) -> Any:
        """A node removed is forgotten without an upcall where it was
        removed; its peer sees it dead and keeps trying (refused); added
        back, both connect again."""
        a, _b = self.build(2)
        yield self.allConnected()
        a.removeNode(1)
        self.assertEqual(self.listeners[0].events, [("connected", 1)])
        self.assertFalse(a.queuePacket(1, message(0, 1, 8)))
        yield until(lambda: self.listeners[1].count("dead", 0) == 1)
        a.connectNode(1, self.addresses[1])
        yield self.allConnected()
        self.assertEqual(self.listeners[0].count("connected", 1), 2)

    @defer.inlineCallbacks
    def test_peerGoneAndBack(self) -> Any:
        """A peer that shuts down is dead to us; a new transport on its
        address (the daemon restarted) is connected to within the retry
        delay."""
        _a, b = self.build(2)
        yield self.allConnected()
        yield b.shutdown()
        yield until(lambda: self.listeners[0].count("dead", 1) == 1)
        b2 = self.add(1)
        b2.connectNode(0, self.addresses[0])
        yield until(lambda: self.listeners[0].count("connected", 1) == 2)
        yield until(lambda: self.listeners[1].count("connected", 0) == 1)
        b2.queuePacket(0, message(1, 0, 3, 1))
        yield until(lambda: len(self.listeners[0].packets) == 1)

    @defer.inlineCallbacks
    def test_badPacketDropsLink(self) -> Any:
        """Bytes that are not a CTDB packet drop the link (bad magic), as
        on TCP: the node is dead, then connected again."""
        a, _b = self.build(2)
        yield self.allConnected()
        a.queuePacket(1, b"\x20\x00\x00\x00" + b"\x00" * 28)
        yield until(lambda: self.listeners[1].count("dead", 0) == 1)
        self.flushLoggedErrors()
        yield self.allConnected()
        self.assertEqual(self.listeners[1].packets, [])

    @defer.inlineCallbacks
    def test_threeNodes(self) -> Any:
        """Three nodes: a third added while two run connects to both."""
        a, b = self.build(2)
        yield self.allConnected()
        c = self.add(2)
        for pnn, t in ((0, a), (1, b)):
            t.connectNode(2, self.addresses[2])
            c.connectNode(pnn, self.addresses[pnn])
        yield self.allConnected((0, 1, 2))
        for src, t in enumerate((a, b, c)):
            for dst in range(3):
                if dst != src:
                    self.assertTrue(t.queuePacket(dst, message(src, dst, 40, src)))
        yield until(lambda: all(len(lst.packets) == 2 for lst in self.listeners))

    def test_startFails(self) -> None:
        """An address the RDMA stack cannot listen on fails C{start} with
        L{VerbsError}, leaving nothing in the reactor."""
        before = set(reactor.getReaders())
        t = IBNodeTransport(
            reactor=reactor, address="192.0.2.99", verbs=self.verbsFor("192.0.2.98")
        )
        self.assertRaises(VerbsError, t.start)
        self.assertEqual(set(reactor.getReaders()), before)
        self.assertIsNone(t.channel)

    @defer.inlineCallbacks
    def test_shutdownFromPacketHandler(self) -> Any:
        """Shutting down from within a packet handler (the completions of
        the link being handled): the link goes when its handling ends
        (after the events are acknowledged), the channel after it, and
        only then does the Deferred fire."""
        a, b = self.build(2)
        yield self.allConnected()
        stopped: list[defer.Deferred[None]] = []

        def stop(pnn: int, data: bytes) -> None:
            d = b.shutdown()
            self.assertNoResult(d)
            stopped.append(d)

        self.listeners[1].onPacket = stop
        a.queuePacket(1, message(0, 1, 8))
        yield until(lambda: bool(stopped))
        yield stopped[0]
        self.assertIsNone(b.channel)
        self.assertEqual(b._links, {})
        yield b.shutdown()
        yield until(lambda: self.listeners[0].count("dead", 1) == 1)

    @defer.inlineCallbacks
    def test_shutdownReleasesAll(self) -> Any:
        """After shutdown no descriptor of the transport is in the reactor."""
        a, b = self.build(2)
        yield self.allConnected()
        before = set(reactor.getReaders())
        yield a.shutdown()
        yield b.shutdown()
        mine = [r for r in before if type(r).__name__ == "_ChannelReader"]
        self.assertGreater(len(mine), 0)
        after = set(reactor.getReaders())
        self.assertEqual([r for r in mine if r in after], [])


class FakeVerbsTests(_TransportTests, TestCase):
    """The transport over the fake fabric."""

    def setUp(self) -> None:
        super().setUp()
        self.fabric = FakeFabric(reactor=reactor)
        self.addCleanup(self.checkFabric)

    def checkFabric(self) -> None:
        self.fabric.close()
        self.assertEqual(self.fabric.violations, [])
        self.assertEqual(self.fabric.rnrWaits, 0)

    def verbsFor(self, address: str) -> IVerbs:
        return self.fabric.verbs(address)


class BindingOverFakeTests(FakeVerbsTests):
    """The same tests over our ctypes binding, whose C calls go to the
    fake fabric (L{tests.support.fakelibverbs}): the binding's structures,
    pointers, errno conventions and ops table at work without a device."""

    def verbsFor(self, address: str) -> IVerbs:
        return RealVerbs(FakeLibraries(self.fabric.verbs(address)))

    @defer.inlineCallbacks
    def test_throughTheBinding(self) -> Any:
        """The channel, ids and queue pairs are the binding's, and the
        bytes cross its registered memory."""
        a, _b = self.build(2)
        yield self.allConnected()
        self.assertIsInstance(a.channel, RealChannel)
        link = a.peers[1].out
        assert link is not None
        self.assertIsInstance(link.qp, RealQueuePair)
        self.assertIsInstance(link.cmId, RealCMId)
        data = message(0, 1, 3000, 9)
        a.queuePacket(1, data)
        yield until(lambda: self.listeners[1].packets == [(0, data)])


class RealVerbsTests(_TransportTests, TestCase):
    """The same tests over the ctypes binding, on an RDMA device."""

    port = 24379

    def setUp(self) -> None:
        super().setUp()
        self.verbs = realVerbs()
        self.addresses = realAddresses()

    def verbsFor(self, address: str) -> IVerbs:
        return self.verbs


class FabricTests(FakeVerbsTests):
    """The fake fabric's faults and orderings."""

    def _link(self, t: IBNodeTransport, pnn: int, outgoing: bool) -> _Link:
        peer = t.peers[pnn]
        link = peer.out if outgoing else peer.incoming
        assert link is not None
        return link

    @defer.inlineCallbacks
    def _bothWays(self, count: int = 2000) -> Any:
        a, b = self.build(2)
        yield self.allConnected()
        sizes = mixedSizes(count, seed=count)
        there = [message(0, 1, s, i) for i, s in enumerate(sizes)]
        back = [message(1, 0, s, i) for i, s in enumerate(sizes)]
        for x, y in zip(there, back, strict=True):
            a.queuePacket(1, x)
            b.queuePacket(0, y)
        yield until(
            lambda: (
                len(self.listeners[1].packets) >= count
                and len(self.listeners[0].packets) >= count
            ),
            timeout=60,
        )
        self.assertEqual([p for _, p in self.listeners[1].packets], there)
        self.assertEqual([p for _, p in self.listeners[0].packets], back)

    def test_outOfOrderCompletions(self) -> defer.Deferred[Any]:
        """Completions handed back shuffled (receive completions of one
        queue pair out of order): the packets still arrive in order."""
        self.fabric.reorder = True
        return self._bothWays()

    def test_burstyCompletions(self) -> defer.Deferred[Any]:
        """Completions held and handed out together."""
        self.fabric.burst = True
        return self._bothWays()

    @defer.inlineCallbacks
    def test_ibwrapperOrder(self) -> Any:
        """Each time the completion channel is read: get the event, re-arm,
        poll until a poll finds nothing, acknowledge."""
        a, b = self.build(2)
        yield self.allConnected()
        qp = self._link(b, 0, outgoing=False).qp
        qp.trace = True  # type: ignore[union-attr]
        for i in range(50):
            a.queuePacket(1, message(0, 1, 100, i))
        yield until(lambda: len(self.listeners[1].packets) == 50)
        calls = qp.calls  # type: ignore[union-attr]
        self.assertTrue(calls)
        rounds = " ".join(calls).replace("get get", "get").split("ack")
        for text in rounds[:-1]:
            words = text.split()
            if words == ["get"]:
                continue  # a wake-up that found no event (already taken)
            self.assertEqual(words[:2], ["get", "arm"], calls)
            self.assertEqual(set(words[2:]), {"poll"}, calls)

    @defer.inlineCallbacks
    def test_noLostWakeup(self) -> Any:
        """A completion that lands just after a poll found the queue empty
        (before the event is acknowledged) raises a new event, because the
        queue was re-armed before that poll: the packet arrives with
        nothing else happening.  Polling first and arming after would
        leave it in the queue until the next traffic."""
        a, b = self.build(2)
        yield self.allConnected()
        qp = self._link(b, 0, outgoing=False).qp
        assert qp is not None
        self.fabric.holdDeliveries = True
        a.queuePacket(1, message(0, 1, 64, 1))
        self.fabric.holdDeliveries = False
        [(target, data)] = self.fabric.held
        qp.onEmptyPoll.append(lambda: target.deliver(data))  # type: ignore[attr-defined]
        a.queuePacket(1, message(0, 1, 64, 2))
        yield until(lambda: len(self.listeners[1].packets) == 2, timeout=5)
        self.assertEqual(
            [p for _, p in self.listeners[1].packets],
            [message(0, 1, 64, 1), message(0, 1, 64, 2)],
        )

    @defer.inlineCallbacks
    def test_handlerSendsDuringDrain(self) -> Any:
        """A packet sent from within the receiver's packet handler (landing
        while the queue is drained) arrives too."""
        a, _b = self.build(2)
        yield self.allConnected()
        second = message(0, 1, 64, 2)

        def first(pnn: int, data: bytes) -> None:
            if len(self.listeners[1].packets) == 1:
                a.queuePacket(1, second)

        self.listeners[1].onPacket = first
        a.queuePacket(1, message(0, 1, 64, 1))
        yield until(lambda: len(self.listeners[1].packets) == 2, timeout=5)

    @defer.inlineCallbacks
    def test_slowPeer(self) -> Any:
        """A peer that stops taking completions: the sender runs out of
        credits and queues (no RNR, nothing dropped); when the peer reads
        again everything arrives in order."""
        a, b = self.build(2)
        yield self.allConnected()
        incoming = self._link(b, 0, outgoing=False)
        assert incoming.reader is not None
        incoming.reader.stopReading()
        packets = [message(0, 1, 1000, i) for i in range(3000)]
        for p in packets:
            self.assertTrue(a.queuePacket(1, p))
        out = self._link(a, 1, outgoing=True)
        yield until(lambda: out.credits == 0 and out.pendingBytes > 0)
        self.assertEqual(self.fabric.rnrWaits, 0)
        got = len(self.listeners[1].packets)
        self.assertLess(got, len(packets))
        incoming.reader.startReading()
        yield until(lambda: len(self.listeners[1].packets) == len(packets), timeout=60)
        self.assertEqual([p for _, p in self.listeners[1].packets], packets)
        self.assertEqual(out.pendingBytes, 0)

    @defer.inlineCallbacks
    def _fault(self, cause: Any) -> Any:
        a, b = self.build(2)
        yield self.allConnected()
        cause(a, b)
        yield until(
            lambda: (
                self.listeners[0].count("dead", 1) == 1
                and self.listeners[1].count("dead", 0) == 1
            ),
            what="both sides dead",
        )
        yield until(
            lambda: (
                self.listeners[0].count("connected", 1) == 2
                and self.listeners[1].count("connected", 0) == 2
            ),
            what="reconnection",
        )
        a.queuePacket(1, message(0, 1, 10, 5))
        b.queuePacket(0, message(1, 0, 10, 6))
        yield until(
            lambda: (
                (1, message(1, 0, 10, 6)) in self.listeners[0].packets
                and (0, message(0, 1, 10, 5)) in self.listeners[1].packets
            )
        )

    def test_postSendFails(self) -> defer.Deferred[Any]:
        """ibv_post_send failing drops the link: dead both sides, then
        reconnected (a clear failure, never a silent loss)."""

        def cause(a: IBNodeTransport, b: IBNodeTransport) -> None:
            self.fabric.failPostSends = 1
            self.assertTrue(a.queuePacket(1, message(0, 1, 10)))

        return self._fault(cause)

    def test_sendCompletesInError(self) -> defer.Deferred[Any]:
        """A send completing with RETRY_EXC_ERR (the peer vanished) drops
        the link the same way."""

        def cause(a: IBNodeTransport, b: IBNodeTransport) -> None:
            self.fabric.failSendCompletions = 1
            a.queuePacket(1, message(0, 1, 10))

        return self._fault(cause)

    def test_disconnect(self) -> defer.Deferred[Any]:
        """The connections break under both (DISCONNECTED, flushed work):
        dead, then connected again."""
        return self._fault(lambda a, b: self.fabric.disconnect(*self.addresses[:2]))

    @defer.inlineCallbacks
    def test_partitionRetriesEverySecond(self) -> Any:
        """While the peer cannot be reached, connecting is tried again
        every C{retryDelay} (1 s by default, as TCP), not sooner."""
        a, _b = self.build(2, retryDelay=0.2)
        yield self.allConnected()
        self.fabric.partition(*self.addresses[:2])
        yield until(lambda: self.listeners[0].count("dead", 1) == 1)
        attempts: list[float] = []
        original = a._connectOut

        def counting(peer: Any) -> None:
            attempts.append(reactor.seconds())
            original(peer)

        a._connectOut = counting  # type: ignore[method-assign]
        yield until(lambda: len(attempts) >= 3, timeout=5)
        gaps = [y - x for x, y in itertools.pairwise(attempts)]
        self.assertTrue(all(gap >= 0.19 for gap in gaps), gaps)
        self.fabric.heal(*self.addresses[:2])
        yield until(lambda: self.listeners[0].count("connected", 1) == 2)
        self.assertEqual(
            IBNodeTransport(reactor=reactor, address="x", verbs=a.verbs).retryDelay, 1.0
        )

    @defer.inlineCallbacks
    def test_crash(self) -> Any:
        """The peer's process dies: we see it dead exactly once and keep
        trying (rejected: nobody listens)."""
        a, _b = self.build(2)
        yield self.allConnected()
        self.fabric.crash(self.addresses[1])
        yield until(lambda: self.listeners[0].count("dead", 1) == 1)
        self.assertEqual(self.listeners[0].events, [("connected", 1), ("dead", 1)])
        self.assertFalse(a.queuePacket(1, message(0, 1, 1)))

    @defer.inlineCallbacks
    def test_unknownPeerRefused(self) -> Any:
        """A connection from an address not among our nodes is refused;
        once the node is added it connects."""
        a = self.add(0)
        c = self.add(2)
        c.connectNode(0, self.addresses[0])
        out: list[Any] = []
        yield until(lambda: self._refusedOnce(c, out), what="a refusal")
        a.connectNode(2, self.addresses[2])
        yield self.allConnected((0, 2))

    def _refusedOnce(self, c: IBNodeTransport, seen: list[Any]) -> bool:
        link = c.peers[0].out
        if link is not None and link not in seen:
            seen.append(link)
        return len(seen) >= 2

    @defer.inlineCallbacks
    def test_largePacketsWithFewBuffers(self) -> Any:
        """Four small buffers each way still carry 1 MB packets (split over
        hundreds of buffers, credits returned as they go)."""
        a, _b = self.build(2, bufferSize=256, recvBuffers=4, sendBuffers=2)
        yield self.allConnected()
        packets = [message(0, 1, 1_000_000, i) for i in range(3)]
        for p in packets:
            a.queuePacket(1, p)
        yield until(lambda: len(self.listeners[1].packets) == 3, timeout=60)
        self.assertEqual([p for _, p in self.listeners[1].packets], packets)
