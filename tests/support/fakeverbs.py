# -*- test-case-name: tests.transports.ib.test_fakeverbs -*-
"""
A fake RDMA fabric for the InfiniBand transport's tests: an in-process
L{FakeFabric} whose L{FakeVerbs} (one per host) provide
L{ctdb.transports.ib.verbs.IVerbs}, with every channel descriptor a real
non-blocking eventfd, so that the transport runs on a real reactor and is
woken by epoll exactly as by librdmacm's and libibverbs' channels.

What it keeps of the real thing:

  - connection manager: private data arrives zero-padded to the CM
    message's size (56 bytes of a connect, 196 of an accept), as on IB;
    address resolution fails for a host the fabric
    does not know (ADDR_ERROR), a connect to a port nobody listens on is
    REJECTED, a partitioned pair is UNREACHABLE, accept makes both ends
    ESTABLISHED (the connector's event carries the accept's private
    data), a disconnect or a destroyed id makes the other end
    DISCONNECTED and flushes its posted work (WR_FLUSH_ERR);
  - completion queues: C{ibv_req_notify_cq} arms for the next completion
    only (completions already queued raise no event), an event is
    written to the channel's eventfd once per arming, destroying a queue
    pair with events gotten but not acknowledged is an error (ibverbs
    would hang in C{ibv_destroy_cq});
  - RC sends: a message lands in the peer's oldest posted receive buffer;
    with none posted it waits (receiver-not-ready retry, counted in
    C{fabric.rnrWaits}: a transport whose credits are right never
    causes one); a message longer than the receive buffer is a local
    length error at the receiver.

Knobs: C{reorder} (completions handed out in shuffled bursts: receive
completions of one queue pair out of order), C{burst} (completions held
and handed out together, on the next reactor turn), C{failPostSends} (the
next N C{ibv_post_send} calls fail with ENOMEM), C{failSendCompletions}
(the next N sends complete with RETRY_EXC_ERR, undelivered: the peer
vanished), C{holdDeliveries} (sent messages wait in C{held}; with a queue
pair's C{onEmptyPoll} they can land just after a poll found nothing, the
moment a lost wake-up would happen), L{FakeFabric.disconnect}, L{FakeFabric.partition},
L{FakeFabric.crash} (the host's transport hears nothing more, as a dead
process would; its peers see their connections break).  Misuse of the verbs (a buffer posted twice, a send
longer than its buffer, ...) is recorded in C{fabric.violations}.
"""

from __future__ import annotations

import errno
import os
import random
from collections import deque
from typing import Any

from zope.interface import implementer

from ctdb.errors import VerbsError
from ctdb.transports.ib.verbs import (
    CMEvent,
    CMEventType,
    ICMChannel,
    ICMId,
    IQueuePair,
    IVerbs,
    WCOpcode,
    WCStatus,
    WorkCompletion,
)


def _eventfd() -> int:
    return os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)


def _signal(fd: int) -> None:
    os.eventfd_write(fd, 1)


def _clear(fd: int) -> None:
    try:
        os.eventfd_read(fd)
    except BlockingIOError:
        pass


def _padded(data: bytes, size: int) -> bytes:
    """Private data as the IB CM hands it over: the whole field of the
    message (56 bytes of a request, 196 of a reply), zero-padded; the
    length sent is not kept."""
    return bytes(data).ljust(size, b"\0")


class FakeFabric:
    """The switch and every host's RDMA device."""

    def __init__(self, *, reactor: Any = None, seed: int = 15) -> None:
        self.reactor = reactor
        self.hosts: set[str] = set()
        self.listeners: dict[tuple[str, int], FakeCMId] = {}
        self.partitions: set[frozenset[str]] = set()
        self.random = random.Random(seed)
        self.reorder = False
        self.burst = False
        self.failPostSends = 0
        self.failSendCompletions = 0
        #: sends whose message is kept in C{held} instead of landing
        self.holdDeliveries = False
        self.held: list[tuple[FakeQueuePair, bytes]] = []
        self.rnrWaits = 0
        self.violations: list[str] = []
        self.channels: list[FakeChannel] = []
        self.queuePairs: list[FakeQueuePair] = []
        self._staged: list[tuple[FakeQueuePair, WorkCompletion]] = []
        self._flushing: Any = None

    def verbs(self, host: str) -> FakeVerbs:
        """The verbs of host C{host} (its IPoIB address), now on the fabric."""
        self.hosts.add(host)
        return FakeVerbs(self, host)

    # -- faults ---------------------------------------------------------

    def partition(self, a: str, b: str) -> None:
        """Cut C{a} from C{b}: their connections break, new ones fail."""
        self.partitions.add(frozenset((a, b)))
        for ch in self.channels:
            for cm in list(ch.ids):
                if cm.remote is not None and {cm.host, cm.remote.host} == {a, b}:
                    cm.breakConnection()

    def heal(self, a: str, b: str) -> None:
        self.partitions.discard(frozenset((a, b)))

    def disconnect(self, a: str, b: str) -> None:
        """Break every connection between C{a} and C{b} once (as a cable
        pulled and plugged back)."""
        self.partition(a, b)
        self.heal(a, b)

    def crash(self, host: str) -> None:
        """The process of C{host} dies: its channels and ids vanish; its
        peers see their connections break."""
        for ch in list(self.channels):
            if ch.host == host:
                ch.crashed = True
                for cm in list(ch.ids):
                    cm.breakConnection()
                    if cm.listening:
                        self.listeners.pop((cm.host, cm.port), None)

    def reachable(self, a: str, b: str) -> bool:
        return b in self.hosts and frozenset((a, b)) not in self.partitions

    # -- completions ----------------------------------------------------

    def complete(self, qp: FakeQueuePair, wc: WorkCompletion) -> None:
        if not (self.reorder or self.burst) or self.reactor is None:
            qp.addCompletion(wc)
            return
        self._staged.append((qp, wc))
        if self._flushing is None:
            self._flushing = self.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        self._flushing = None
        staged, self._staged = self._staged, []
        if self.reorder:
            self.random.shuffle(staged)
        for qp, wc in staged:
            qp.addCompletion(wc)

    def close(self) -> None:
        """Close every descriptor still open (a test's cleanup)."""
        if self._flushing is not None and self._flushing.active():
            self._flushing.cancel()
        self._flushing = None
        for ch in list(self.channels):
            ch.close()


@implementer(IVerbs)
class FakeVerbs:
    def __init__(self, fabric: FakeFabric, host: str) -> None:
        self.fabric = fabric
        self.host = host

    def createEventChannel(self) -> FakeChannel:
        ch = FakeChannel(self.fabric, self.host)
        self.fabric.channels.append(ch)
        return ch


@implementer(ICMChannel)
class FakeChannel:
    def __init__(self, fabric: FakeFabric, host: str) -> None:
        self.fabric = fabric
        self.host = host
        self.fd = _eventfd()
        self.events: deque[CMEvent] = deque()
        self.ids: list[FakeCMId] = []
        self.closed = False
        #: the host's process died: nothing reaches it any more (its
        #: descriptors stay open until the test closes them)
        self.crashed = False

    def fileno(self) -> int:
        return self.fd

    def createId(self, context: object) -> FakeCMId:
        if self.closed:
            raise VerbsError("rdma_create_id", errno.EBADF)
        cm = FakeCMId(self, context)
        self.ids.append(cm)
        return cm

    def post(self, event: CMEvent) -> None:
        if self.closed or self.crashed:
            return
        self.events.append(event)
        _signal(self.fd)

    def getEvent(self) -> CMEvent | None:
        if self.closed:
            raise VerbsError("rdma_get_cm_event", errno.EBADF)
        if not self.events:
            _clear(self.fd)
            return None
        event = self.events.popleft()
        if not self.events:
            _clear(self.fd)
        return event

    def close(self) -> None:
        if self.closed:
            return
        for cm in list(self.ids):
            cm.destroy()
        self.closed = True
        os.close(self.fd)
        self.fabric.channels.remove(self)


@implementer(ICMId)
class FakeCMId:
    def __init__(self, channel: FakeChannel, context: object) -> None:
        self.channel = channel
        self.fabric = channel.fabric
        self.host = channel.host
        self.context = context
        self.port = 0
        self.target: tuple[str, int] | None = None
        self.remote: FakeCMId | None = None
        self.qp: FakeQueuePair | None = None
        self.listening = False
        self.destroyed = False

    def _event(self, kind: CMEventType, **kw: Any) -> None:
        if not self.destroyed:
            self.channel.post(CMEvent(int(kind), self, **kw))

    def bindAddr(self, host: str, port: int) -> None:
        if host != self.host:
            raise VerbsError("rdma_bind_addr", errno.EADDRNOTAVAIL)
        if (host, port) in self.fabric.listeners:
            raise VerbsError("rdma_bind_addr", errno.EADDRINUSE)
        self.port = port

    def listen(self, backlog: int) -> None:
        self.listening = True
        self.fabric.listeners[(self.host, self.port)] = self

    def resolveAddr(
        self, source: str | None, host: str, port: int, timeoutMs: int
    ) -> None:
        if source not in (None, self.host):
            raise VerbsError("rdma_resolve_addr", errno.EADDRNOTAVAIL)
        self.target = (host, port)
        if self.fabric.reachable(self.host, host):
            self._event(CMEventType.ADDR_RESOLVED)
        else:
            self._event(CMEventType.ADDR_ERROR, status=-errno.EHOSTUNREACH)

    def resolveRoute(self, timeoutMs: int) -> None:
        if self.target is None:
            raise VerbsError("rdma_resolve_route", errno.EINVAL)
        self._event(CMEventType.ROUTE_RESOLVED)

    def createQueuePair(
        self, bufferSize: int, recvCount: int, sendCount: int, fd: int | None = None
    ) -> FakeQueuePair:
        """The queue pair; with C{fd}, its completion channel is that
        eventfd (the caller's, who closes it)."""
        if self.qp is not None:
            raise VerbsError("rdma_create_qp", errno.EEXIST)
        self.qp = FakeQueuePair(self, bufferSize, recvCount, sendCount, fd)
        self.fabric.queuePairs.append(self.qp)
        return self.qp

    def connect(self, privateData: bytes) -> None:
        if self.target is None or self.qp is None:
            raise VerbsError("rdma_connect", errno.EINVAL)
        if len(privateData) > 56:
            raise VerbsError("rdma_connect", errno.EINVAL)
        host, port = self.target
        if not self.fabric.reachable(self.host, host):
            self._event(CMEventType.UNREACHABLE, status=-errno.ETIMEDOUT)
            return
        listener = self.fabric.listeners.get((host, port))
        if listener is None or listener.destroyed:
            self._event(CMEventType.REJECTED, status=28)
            return
        incoming = listener.channel.createId(listener.context)
        incoming.remote = self
        incoming.port = port
        self.remote = incoming
        listener.channel.post(
            CMEvent(
                int(CMEventType.CONNECT_REQUEST),
                incoming,
                privateData=_padded(privateData, 56),
                listenId=listener,
            )
        )

    def accept(self, privateData: bytes) -> None:
        connector = self.remote
        if connector is None or self.qp is None or connector.qp is None:
            raise VerbsError("rdma_accept", errno.EINVAL)
        self.qp.remote, connector.qp.remote = connector.qp, self.qp
        connector._event(CMEventType.ESTABLISHED, privateData=_padded(privateData, 196))
        self._event(CMEventType.ESTABLISHED)

    def reject(self, privateData: bytes) -> None:
        connector = self.remote
        if connector is not None:
            connector.remote = None
            connector._event(CMEventType.REJECTED, status=28)
        self.remote = None

    def breakConnection(self) -> None:
        """The connection failed under us: both ends see DISCONNECTED and
        their posted work flushed."""
        remote, self.remote = self.remote, None
        self._down()
        if remote is not None:
            remote.remote = None
            remote._down()

    def _down(self) -> None:
        if self.qp is not None:
            self.qp.toError()
        self._event(CMEventType.DISCONNECTED)

    def disconnect(self) -> None:
        if self.remote is None and (self.qp is None or self.qp.remote is None):
            raise VerbsError("rdma_disconnect", errno.ENOTCONN)
        self.breakConnection()

    def destroy(self) -> None:
        if self.destroyed:
            return
        if self.remote is not None:
            self.breakConnection()
        self.destroyed = True
        if self.listening and self.fabric.listeners.get((self.host, self.port)) is self:
            del self.fabric.listeners[(self.host, self.port)]
        if self.qp is not None:
            self.qp.destroy()
        if self in self.channel.ids:
            self.channel.ids.remove(self)


@implementer(IQueuePair)
class FakeQueuePair:
    def __init__(
        self,
        cmId: FakeCMId,
        bufferSize: int,
        recvCount: int,
        sendCount: int,
        fd: int | None = None,
    ) -> None:
        self.cmId = cmId
        self.fabric = cmId.fabric
        self.bufferSize = bufferSize
        self.recvCount = recvCount
        self.sendCount = sendCount
        self.buffers = [bytearray(bufferSize) for _ in range(recvCount + sendCount)]
        self.ownsFd = fd is None
        self.fd = _eventfd() if fd is None else fd
        self.cq: deque[WorkCompletion] = deque()
        self.armed = False
        self.pendingEvents = 0
        self.unacked = 0
        self.posted: deque[int] = deque()
        self.inFlight: set[int] = set()
        self.sendQueue: deque[int] = deque()
        self.waiting: deque[bytes] = deque()
        self.remote: FakeQueuePair | None = None
        self.error = False
        self.destroyed = False
        #: called once each, right after a poll that emptied the queue (it
        #: returned fewer than asked for): a completion landing between the
        #: poll that ends a drain and what follows
        self.onEmptyPoll: list[Any] = []
        #: the verbs calls in order, when C{trace} is set
        self.trace = False
        self.calls: list[str] = []

    def _note(self, call: str) -> None:
        if self.trace:
            self.calls.append(call)

    def _violation(self, text: str) -> None:
        self.fabric.violations.append(f"{self.cmId.host}: {text}")

    def fileno(self) -> int:
        return self.fd

    def addCompletion(self, wc: WorkCompletion) -> None:
        if self.destroyed or self.cmId.channel.crashed:
            return
        self.cq.append(wc)
        if self.armed:
            self.armed = False
            self.pendingEvents += 1
            _signal(self.fd)

    def getCqEvent(self) -> bool:
        self._note("get")
        if self.destroyed:
            raise VerbsError("ibv_get_cq_event", errno.EBADF)
        if not self.pendingEvents:
            _clear(self.fd)
            return False
        self.pendingEvents -= 1
        self.unacked += 1
        if not self.pendingEvents:
            _clear(self.fd)
        return True

    def reqNotifyCq(self) -> None:
        self._note("arm")
        self.armed = True

    def pollCq(self, maxEntries: int) -> list[WorkCompletion]:
        self._note("poll")
        out: list[WorkCompletion] = []
        while self.cq and len(out) < maxEntries:
            out.append(self.cq.popleft())
        if len(out) < maxEntries and self.onEmptyPoll:
            hooks, self.onEmptyPoll = self.onEmptyPoll, []
            for hook in hooks:
                hook()
        return out

    def ackCqEvents(self, count: int) -> None:
        self._note("ack")
        if count > self.unacked:
            self._violation(f"acked {count} events, {self.unacked} unacked")
        self.unacked -= count

    def writeBuffer(self, index: int, data: bytes | bytearray | memoryview) -> None:
        if len(data) > self.bufferSize:
            self._violation(f"write of {len(data)} into a {self.bufferSize} buffer")
            raise VerbsError("write", errno.EMSGSIZE)
        if index in self.inFlight:
            self._violation(f"buffer {index} written while in flight")
        self.buffers[index][: len(data)] = data

    def readBuffer(self, index: int, length: int) -> bytes:
        return bytes(self.buffers[index][:length])

    def postRecv(self, index: int) -> None:
        if not 0 <= index < self.recvCount or index in self.posted:
            self._violation(f"bad receive post of buffer {index}")
            raise VerbsError("ibv_post_recv", errno.EINVAL)
        if self.error:
            self.fabric.complete(
                self, WorkCompletion(index, WCStatus.WR_FLUSH_ERR, WCOpcode.RECV, 0)
            )
            return
        self.posted.append(index)
        while self.waiting and self.posted:
            self._land(self.waiting.popleft())

    def postSend(self, index: int, length: int, signaled: bool) -> None:
        if not self.recvCount <= index < self.recvCount + self.sendCount:
            self._violation(f"send post of non-send buffer {index}")
            raise VerbsError("ibv_post_send", errno.EINVAL)
        if index in self.inFlight:
            self._violation(f"send buffer {index} posted twice")
            raise VerbsError("ibv_post_send", errno.EINVAL)
        if length > self.bufferSize:
            self._violation(f"send of {length} bytes from a {self.bufferSize} buffer")
            raise VerbsError("ibv_post_send", errno.EINVAL)
        fabric = self.fabric
        if fabric.failPostSends:
            fabric.failPostSends -= 1
            raise VerbsError("ibv_post_send", errno.ENOMEM)
        self.inFlight.add(index)
        self.sendQueue.append(index)
        if self.error or self.remote is None:
            self._sent(index, WCStatus.WR_FLUSH_ERR, 0)
            return
        if fabric.failSendCompletions:
            fabric.failSendCompletions -= 1
            self._sent(index, WCStatus.RETRY_EXC_ERR, 0)
            return
        data = bytes(self.buffers[index][:length])
        if fabric.holdDeliveries:
            fabric.held.append((self.remote, data))
        else:
            self.remote.deliver(data)
        if signaled:
            self._sent(index, WCStatus.SUCCESS, length)

    def _sent(self, index: int, status: int, length: int) -> None:
        # the completion of a send frees it and every send posted before it
        while self.sendQueue:
            done = self.sendQueue.popleft()
            self.inFlight.discard(done)
            if done == index:
                break
        self.fabric.complete(self, WorkCompletion(index, status, WCOpcode.SEND, length))

    def deliver(self, data: bytes) -> None:
        if self.error or self.destroyed:
            return
        if not self.posted:
            self.fabric.rnrWaits += 1
            self.waiting.append(data)
            return
        self._land(data)

    def _land(self, data: bytes) -> None:
        index = self.posted.popleft()
        if len(data) > self.bufferSize:
            self._violation(
                f"{len(data)} bytes into a {self.bufferSize} receive buffer"
            )
            self.fabric.complete(
                self, WorkCompletion(index, WCStatus.LOC_LEN_ERR, WCOpcode.RECV, 0)
            )
            return
        self.buffers[index][: len(data)] = data
        self.fabric.complete(
            self, WorkCompletion(index, WCStatus.SUCCESS, WCOpcode.RECV, len(data))
        )

    def toError(self) -> None:
        """The QP went to the error state: posted receives flush."""
        if self.error:
            return
        self.error = True
        self.remote = None
        self.waiting.clear()
        posted, self.posted = self.posted, deque()
        for index in posted:
            self.fabric.complete(
                self, WorkCompletion(index, WCStatus.WR_FLUSH_ERR, WCOpcode.RECV, 0)
            )

    def destroy(self) -> None:
        if self.destroyed:
            return
        if self.unacked:
            self._violation(f"queue pair destroyed with {self.unacked} unacked events")
        self.destroyed = True
        if self.ownsFd:
            os.close(self.fd)
        if self in self.fabric.queuePairs:
            self.fabric.queuePairs.remove(self)
