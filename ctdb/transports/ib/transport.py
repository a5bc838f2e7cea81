# -*- test-case-name: tests.transports.ib.test_transport -*-
"""
The InfiniBand node transport: CTDB's node links over RDMA reliable
connections (RC queue pairs), set up with the RDMA connection manager and
driven by the reactor through two kinds of file descriptor, as
C{twisted.internet.inotify} drives its kernel descriptor.

Shape, as the TCP transport (L{ctdb.transports.tcp}): every node listens
on its own address (IPoIB or RoCE, port 4379) and keeps one connection to
each peer that only carries its packets to the peer; the peer's
connection to us carries the peer's packets.  A peer is connected when
both are up (C{nodeConnected}) and dead when either goes (C{nodeDead},
once); a lost or failed outgoing connection is tried again every second,
and a lost incoming one restarts the outgoing one too.  C{queuePacket}
answers False while the outgoing connection is not up.

Descriptors in the reactor (L{_ChannelReader}, an C{IReadDescriptor}):

  - the connection manager's event channel, one per transport: address
    and route resolution, connect requests, established, disconnected,
    errors (L{IBNodeTransport._cmReadable});
  - one completion channel per connection (L{_Link.completionsReadable}),
    handled in ibwrapper.c's order (C{ibw_event_handler_verbs}): take the
    channel's event, re-arm the completion queue, poll it until empty, then
    acknowledge the event.  Re-arming before the poll that finds the queue
    empty is what makes a completion that lands between the two raise a
    new event instead of waiting for the next one: no lost wake-up, and no
    spinning, since the reactor sleeps in epoll between events.

Buffers: each connection registers its buffers once (L{IQueuePair}); the
receiver posts C{recvBuffers} of them for the peer's data and says so in
its accept (L{wire.Welcome}): those are the sender's credits.  A message
(L{wire}) fills one buffer and costs one credit; a sender out of credits
or free send buffers keeps the bytes queued (nothing is dropped, however
slow the peer) until a CREDIT message or a send completion lets it go on.
The receiver reposts each buffer as soon as it has copied it out and
returns the credits in a CREDIT message once a quarter of them are
waiting.  The sender has receive buffers for those: at most
C{recvBuffers / threshold} can be in flight, since each carries at least
C{threshold} credits and the credits of one connection never exceed
C{recvBuffers}.

The CTDB packets are the byte stream of the DATA messages in sequence
order (a message's C{seq} puts completions handed back out of order in
order again), cut into packets by L{ctdb.protocols.framing} exactly as a
TCP node link's bytes are, with the same checks: a bad packet drops the
link.  A completion in error, a failed post or a disconnect drops the
link; the peer's failure shows as C{nodeDead}, as on TCP.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ctdb.errors import MalformedPacket, VerbsError
from ctdb.interfaces import ICTDBReactor, INodeTransport, INodeTransportListener
from ctdb.protocols.framing import CTDBPacketReceiver
from ctdb.protocols.packet import CTDB_PORT
from ctdb.transports.ib import wire
from ctdb.transports.ib.verbs import (
    CMEvent,
    CMEventType,
    ICMChannel,
    ICMId,
    IQueuePair,
    IVerbs,
    WCStatus,
    WorkCompletion,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from twisted.internet.interfaces import IDelayedCall

    from ctdb.transports.clientsocket import ClientWriteBatch

#: completions taken from the queue by one ibv_poll_cq call
POLL_BATCH = 32


@implementer(IReadDescriptor)
class _ChannelReader:
    """A verbs channel's descriptor in the reactor (the INotify shape,
    on the public L{IReadDescriptor}): C{doRead} calls C{onReadable},
    which never raises."""

    def __init__(
        self, fd: int, onReadable: Callable[[], None], *, reactor: ICTDBReactor
    ) -> None:
        self.reactor = reactor
        self._fd = fd
        self._onReadable = onReadable

    def fileno(self) -> int:
        return self._fd

    def doRead(self) -> None:
        self._onReadable()

    def logPrefix(self) -> str:
        return "ib"

    def startReading(self) -> None:
        self.reactor.addReader(self)

    def stopReading(self) -> None:
        self.reactor.removeReader(self)

    def connectionLost(self, reason: Failure) -> None:
        """Removed from the reactor (by us, or at its shutdown)."""
        self._fd = -1


class _StreamTransport:
    """What L{CTDBPacketReceiver} needs of a transport, for a link."""

    def __init__(self, link: _Link) -> None:
        self.link = link

    @property
    def disconnecting(self) -> bool:
        return self.link.state != _Link.UP

    def getPeer(self) -> str:
        return f"node {self.link.peer.pnn} ({self.link.peer.address}, ib)"

    def loseConnection(self) -> None:
        self.link.fail("bad packet")


class _StreamReceiver(CTDBPacketReceiver):
    """Cuts the DATA stream of an incoming link into packets."""

    strictAlignment = True

    def __init__(self, link: _Link) -> None:
        self.link = link

    def packetReceived(self, packet: bytes) -> None:
        link = self.link
        link.owner.listener.packetReceived(link.peer.pnn, packet)


@dataclass
class _Peer:
    pnn: int
    address: str
    out: _Link | None = None
    incoming: _Link | None = None
    connected: bool = False
    retry: IDelayedCall | None = None


class _Link:
    """
    One RDMA connection to or from a peer, from address resolution to
    teardown, with its queue pair, buffers, credits and send queue.
    C{outgoing} links carry our DATA and take CREDIT messages; incoming
    links take the peer's DATA and send CREDIT messages.
    """

    RESOLVING, CONNECTING, UP, CLOSED = "resolving", "connecting", "up", "closed"

    log = Logger()

    def __init__(
        self, owner: IBNodeTransport, peer: _Peer, outgoing: bool, cmId: ICMId
    ) -> None:
        self.owner = owner
        self.peer = peer
        self.outgoing = outgoing
        self.cmId = cmId
        self.state = _Link.RESOLVING if outgoing else _Link.CONNECTING
        self.qp: IQueuePair | None = None
        self.reader: _ChannelReader | None = None
        self.timeout: IDelayedCall | None = None
        self.inRead = False
        self.released = False
        # sending
        self.credits = 0
        self.freeSend: list[int] = []
        #: posted send buffers, oldest first, until a signaled completion
        self.inFlight: deque[int] = deque()
        self.sinceSignal = 0
        self.signalEvery = 1
        self.pending: deque[bytes] = deque()
        self.pendingOffset = 0
        self.pendingBytes = 0
        self.maxPayload = 0
        self.nextSeq = 0
        # receiving
        self.expectSeq = 0
        self.early: dict[int, tuple[int, int, bytes]] = {}
        self.toReturn = 0
        self.peerBufferSize = 0
        self.receiver: _StreamReceiver | None = None
        #: counters, for tests and the benchmark
        self.sent = 0
        self.received = 0

    # -- setup ----------------------------------------------------------

    def makeQueuePair(self, recvCount: int, sendCount: int) -> None:
        """Create the verbs resources, watch the completion channel, arm
        the completion queue and post every receive buffer."""
        owner = self.owner
        qp = self.cmId.createQueuePair(owner.bufferSize, recvCount, sendCount)
        self.qp = qp
        self.freeSend = list(range(recvCount + sendCount - 1, recvCount - 1, -1))
        self.signalEvery = max(1, sendCount // 4)
        qp.reqNotifyCq()
        for index in range(recvCount):
            qp.postRecv(index)
        self.reader = _ChannelReader(
            qp.fileno(), self.completionsReadable, reactor=owner.reactor
        )
        self.reader.startReading()

    def established(self, credits: int, peerBufferSize: int) -> None:
        self.state = _Link.UP
        self.credits = credits
        self.maxPayload = min(self.owner.bufferSize, peerBufferSize) - wire.HEADER_SIZE
        if self.timeout is not None and self.timeout.active():
            self.timeout.cancel()
        self.timeout = None
        if not self.outgoing:
            self.receiver = _StreamReceiver(self)
            self.receiver.makeConnection(_StreamTransport(self))

    # -- sending --------------------------------------------------------

    def queue(self, data: bytes) -> None:
        """Send C{data} (bytes of the packet stream) as credits allow."""
        self.pending.append(data)
        self.pendingBytes += len(data)
        self.pump()

    def pump(self) -> None:
        """Fill free send buffers with queued bytes while we have credits."""
        qp = self.qp
        while (
            self.pendingBytes
            and self.credits
            and self.freeSend
            and self.state == _Link.UP
        ):
            assert qp is not None
            chunk = self._take(self.maxPayload)
            index = self.freeSend.pop()
            self.credits -= 1
            if not self._post(index, wire.DATA, 0, chunk):
                return

    def sendCredits(self) -> None:
        """Return the reposted receive buffers once enough are waiting."""
        if (
            self.toReturn >= self.owner.creditThreshold
            and self.freeSend
            and self.state == _Link.UP
        ):
            count = min(self.toReturn, 0xFFFF)
            self.toReturn -= count
            self._post(self.freeSend.pop(), wire.CREDIT, count, b"")

    def _post(self, index: int, kind: int, credits: int, payload: bytes) -> bool:
        qp = self.qp
        assert qp is not None
        header = wire.encodeHeader(kind, credits, self.nextSeq)
        self.nextSeq += 1
        qp.writeBuffer(index, header + payload)
        # Selective signaling: one send in C{signalEvery} (and the one that
        # takes the last free buffer) asks for a completion; its completion
        # frees the buffers of the unsignaled ones before it too.
        signaled = self.sinceSignal + 1 >= self.signalEvery or not self.freeSend
        try:
            qp.postSend(index, wire.HEADER_SIZE + len(payload), signaled)
        except VerbsError as e:
            self.fail(f"send failed: {e}")
            return False
        self.inFlight.append(index)
        self.sinceSignal = 0 if signaled else self.sinceSignal + 1
        self.sent += 1
        return True

    def _take(self, size: int) -> bytes:
        parts: list[bytes | memoryview] = []
        need = min(size, self.pendingBytes)
        self.pendingBytes -= need
        pending = self.pending
        while need:
            head = pending[0]
            available = len(head) - self.pendingOffset
            if available <= need:
                parts.append(
                    head
                    if not self.pendingOffset
                    else memoryview(head)[self.pendingOffset :]
                )
                pending.popleft()
                self.pendingOffset = 0
                need -= available
            else:
                start = self.pendingOffset
                parts.append(memoryview(head)[start : start + need])
                self.pendingOffset += need
                need = 0
        if len(parts) == 1 and type(parts[0]) is bytes:
            return parts[0]
        return b"".join(parts)

    # -- completions ----------------------------------------------------

    def completionsReadable(self) -> None:
        """The completion channel is readable: ibw_event_handler_verbs'
        order (get event, re-arm, drain, ack); never raises."""
        qp = self.qp
        if qp is None or self.released:
            return
        self.inRead = True
        writes = self.owner.clientWrites
        started = writes.hold() if writes is not None else False
        try:
            self._handleChannel(qp)
        except Exception:  # noqa: BLE001 - nothing may escape into the reactor
            self.log.failure("error on IB link to node {pnn}", pnn=self.peer.pnn)
            self.fail("internal error")
        finally:
            self.inRead = False
            if writes is not None:
                writes.release(started)
            if self.state == _Link.CLOSED:
                self.release()

    def _handleChannel(self, qp: IQueuePair) -> None:
        # One event at most is pending: the queue raises one per arming,
        # and it is armed again only below, after the event was taken.
        try:
            if not qp.getCqEvent():
                return
        except VerbsError as e:
            self.fail(f"completion channel: {e}")
            return
        try:
            qp.reqNotifyCq()
            # Armed before the first poll, so a completion that lands after
            # any poll raises a new event: a poll that comes back short has
            # drained the queue as far as this wake-up needs.
            while self.state != _Link.CLOSED:
                completions = qp.pollCq(POLL_BATCH)
                for wc in completions:
                    self._completion(qp, wc)
                    if self.state == _Link.CLOSED:
                        break
                if len(completions) < POLL_BATCH:
                    break
        except VerbsError as e:
            self.fail(f"completion queue: {e}")
        finally:
            qp.ackCqEvents(1)
        if self.state == _Link.UP:
            self.sendCredits()
            self.pump()

    def _completion(self, qp: IQueuePair, wc: WorkCompletion) -> None:
        isSend = wc.wr_id >= qp.recvCount
        if wc.status != WCStatus.SUCCESS:
            try:
                name = WCStatus(wc.status).name
            except ValueError:
                name = str(wc.status)
            what = "send" if isSend else "receive"
            self.fail(f"{what} completion {name}")
            return
        if isSend:
            # a signaled send completes every unsignaled one posted before it
            inFlight = self.inFlight
            while inFlight:
                done = inFlight.popleft()
                self.freeSend.append(done)
                if done == wc.wr_id:
                    break
            return
        raw = qp.readBuffer(wc.wr_id, wc.byte_len)
        qp.postRecv(wc.wr_id)
        self.received += 1
        try:
            kind, credits, seq = wire.decodeHeader(raw)
        except MalformedPacket as e:
            self.fail(str(e))
            return
        if seq != self.expectSeq & 0xFFFFFFFF:
            self.early[seq] = (kind, credits, raw)
            if len(self.early) > qp.recvCount:
                self.fail("messages lost")
            return
        self._message(kind, credits, raw)
        while self.early and self.state == _Link.UP:
            item = self.early.pop(self.expectSeq & 0xFFFFFFFF, None)
            if item is None:
                break
            self._message(*item)

    def _message(self, kind: int, credits: int, raw: bytes) -> None:
        self.expectSeq += 1
        if kind == wire.CREDIT and self.outgoing:
            self.credits += credits
            return
        if kind == wire.DATA and not self.outgoing:
            self.toReturn += 1
            assert self.receiver is not None
            self.receiver.dataReceived(raw[wire.HEADER_SIZE :])
            return
        self.fail(f"unexpected message kind {kind}")

    # -- teardown -------------------------------------------------------

    def fail(self, reason: str) -> None:
        """The link is broken: tell the owner; the resources go now, or at
        the end of the completion handling under way."""
        if self.state == _Link.CLOSED:
            return
        wasUp = self.state == _Link.UP
        self.state = _Link.CLOSED
        level = self.log.warn if wasUp else self.log.debug
        level(
            "IB link {direction} node {pnn} down: {reason}",
            direction="to" if self.outgoing else "from",
            pnn=self.peer.pnn,
            reason=reason,
        )
        if not self.inRead:
            self.release()
        self.owner._linkClosed(self)

    def close(self) -> None:
        """Close on purpose (restart, remove, shutdown): no upcall."""
        self.state = _Link.CLOSED
        if not self.inRead:
            self.release()

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        self.state = _Link.CLOSED
        if self.timeout is not None and self.timeout.active():
            self.timeout.cancel()
        self.timeout = None
        if self.reader is not None:
            self.reader.stopReading()
            self.reader.connectionLost(Failure(ConnectionError("IB link closed")))
            self.reader = None
        for step in (self.cmId.disconnect, self._destroyQueuePair, self.cmId.destroy):
            try:
                step()
            except VerbsError as e:
                self.log.debug("IB teardown: {error}", error=e)
        self.pending.clear()
        self.pendingBytes = 0
        self.owner._forgetId(self.cmId)

    def _destroyQueuePair(self) -> None:
        qp, self.qp = self.qp, None
        if qp is not None:
            qp.destroy()


@implementer(INodeTransport)
class IBNodeTransport:
    """
    The InfiniBand transport over C{verbs} (an L{IVerbs}: the ctypes
    binding, L{ctdb.transports.ib.binding.loadVerbs}, or a fake).
    C{listener} gets the upcalls; assign it before L{start}.
    C{clientWrites} is held while a completion channel is handled, as the
    TCP transport holds it for a read.  Each connection registers
    C{recvBuffers} receive and C{sendBuffers} send buffers of
    C{bufferSize} bytes (the outgoing one fewer receive buffers, the
    incoming one fewer send buffers: only credit messages go that way).
    """

    log = Logger()

    def __init__(
        self,
        *,
        reactor: ICTDBReactor,
        address: str,
        verbs: IVerbs,
        port: int = CTDB_PORT,
        listener: INodeTransportListener | None = None,
        retryDelay: float = 1.0,
        connectTimeout: float = 5.0,
        clientWrites: ClientWriteBatch | None = None,
        bufferSize: int = 8192,
        recvBuffers: int = 64,
        sendBuffers: int = 64,
    ) -> None:
        if bufferSize <= wire.HEADER_SIZE or recvBuffers < 4 or sendBuffers < 1:
            raise ValueError("IB buffers too small or too few")
        self.reactor = reactor
        self.address = address
        self.verbs = verbs
        self.port = port
        self.listener: INodeTransportListener = listener  # type: ignore[assignment]
        self.retryDelay = retryDelay
        self.connectTimeout = connectTimeout
        self.clientWrites = clientWrites
        self.bufferSize = bufferSize
        self.recvBuffers = recvBuffers
        self.sendBuffers = sendBuffers
        self.creditThreshold = max(1, recvBuffers // 4)
        #: receive buffers for CREDIT messages (see the module docstring)
        self.creditBuffers = recvBuffers // self.creditThreshold + 4
        self.peers: dict[int, _Peer] = {}
        self.pnnByAddress: dict[str, int] = {}
        self.channel: ICMChannel | None = None
        self._channelReader: _ChannelReader | None = None
        self._listenId: ICMId | None = None
        self._links: dict[int, _Link] = {}
        self._stopping = False
        #: fires when L{shutdown} has closed everything
        self._closed: defer.Deferred[None] | None = None

    # -- downcalls ------------------------------------------------------

    def start(self) -> defer.Deferred[None]:
        """Listen on our address (as C{listenTCP} does, a failure raises:
        L{VerbsError}, e.g. an address on no RDMA device)."""
        channel = self.verbs.createEventChannel()
        try:
            listenId = channel.createId(self)
            listenId.bindAddr(self.address, self.port)
            listenId.listen(16)
        except VerbsError:
            channel.close()
            raise
        self.channel = channel
        self._listenId = listenId
        self._channelReader = _ChannelReader(
            channel.fileno(), self._cmReadable, reactor=self.reactor
        )
        self._channelReader.startReading()
        return defer.succeed(None)

    def connectNode(self, pnn: int, address: str) -> None:
        if pnn in self.peers:
            return
        peer = _Peer(pnn, address)
        self.peers[pnn] = peer
        self.pnnByAddress[wire.canonical(address)] = pnn
        self._connectOut(peer)

    def queuePacket(self, pnn: int, data: bytes) -> bool:
        peer = self.peers.get(pnn)
        if peer is None or peer.out is None or peer.out.state != _Link.UP:
            return False
        peer.out.queue(data)
        return True

    def restartNode(self, pnn: int) -> None:
        peer = self.peers.get(pnn)
        if peer is None:
            return
        self.log.info("restarting IB links to node {pnn}", pnn=pnn)
        for link in (peer.out, peer.incoming):
            if link is not None:
                link.fail("restart")

    def removeNode(self, pnn: int) -> None:
        peer = self.peers.pop(pnn, None)
        if peer is None:
            return
        self.pnnByAddress.pop(wire.canonical(peer.address), None)
        self._cancelRetry(peer)
        for link in (peer.out, peer.incoming):
            if link is not None:
                link.close()
        peer.out = peer.incoming = None

    def shutdown(self) -> defer.Deferred[None]:
        """Close every link, the listening id and the event channel.  A
        link whose completions are being handled (shutdown called from a
        packet handler) is released when that handling ends, and the
        channel (which destroys whatever is left on it) only after it: the
        Deferred fires then."""
        if self._closed is not None:
            again: defer.Deferred[None] = defer.Deferred()

            def follow(result: object) -> object:
                again.callback(None)
                return result

            self._closed.addBoth(follow)
            return again
        self._stopping = True
        for peer in self.peers.values():
            self._cancelRetry(peer)
        if self._channelReader is not None:
            self._channelReader.stopReading()
            self._channelReader.connectionLost(Failure(ConnectionError("shutdown")))
            self._channelReader = None
        if self._listenId is not None:
            self._listenId.destroy()
            self._listenId = None
        closed = self._closed = defer.Deferred()
        for link in list(self._links.values()):
            link.close()
        self._closeChannelWhenIdle()
        return closed

    def _closeChannelWhenIdle(self) -> None:
        if self._closed is None or self._links or self._closed.called:
            return
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        self._closed.callback(None)

    # -- connecting -----------------------------------------------------

    def _connectOut(self, peer: _Peer) -> None:
        peer.retry = None
        if self._stopping or self.channel is None or peer.out is not None:
            return
        if self.peers.get(peer.pnn) is not peer:
            return
        cmId = self.channel.createId(None)
        link = _Link(self, peer, True, cmId)
        cmId.context = link
        self._links[id(cmId)] = link
        peer.out = link
        link.timeout = self.reactor.callLater(
            self.connectTimeout, link.fail, "connect timed out"
        )
        try:
            cmId.resolveAddr(self.address, peer.address, self.port, 2000)
        except VerbsError as e:
            link.fail(f"resolving {peer.address}: {e}")

    def _scheduleConnect(self, peer: _Peer) -> None:
        if (
            self._stopping
            or peer.retry is not None
            or self.peers.get(peer.pnn) is not peer
        ):
            return
        peer.retry = self.reactor.callLater(self.retryDelay, self._connectOut, peer)

    def _cancelRetry(self, peer: _Peer) -> None:
        if peer.retry is not None and peer.retry.active():
            peer.retry.cancel()
        peer.retry = None

    # -- the connection manager's events --------------------------------

    def _cmReadable(self) -> None:
        channel = self.channel
        while channel is not None and channel is self.channel:
            try:
                event = channel.getEvent()
            except VerbsError as e:
                self.log.error("rdma_cm event channel: {error}", error=e)
                return
            if event is None:
                return
            try:
                self._cmEvent(event)
            except Exception:  # noqa: BLE001 - nothing may escape into the reactor
                self.log.failure("error handling rdma_cm event {event}", event=event)

    def _cmEvent(self, event: CMEvent) -> None:
        kind = event.event
        if kind == CMEventType.CONNECT_REQUEST:
            self._connectRequest(event)
            return
        link = self._links.get(id(event.cmId))
        if link is None or link.state == _Link.CLOSED:
            return  # an id already torn down, or the listening id
        try:
            if kind == CMEventType.ADDR_RESOLVED:
                link.makeQueuePair(self.creditBuffers, self.sendBuffers)
                link.cmId.resolveRoute(2000)
            elif kind == CMEventType.ROUTE_RESOLVED:
                link.state = _Link.CONNECTING
                hello = wire.Hello(self.address, self.bufferSize, self.creditBuffers)
                link.cmId.connect(hello.encode())
            elif kind == CMEventType.ESTABLISHED:
                self._established(link, event)
            elif kind == CMEventType.TIMEWAIT_EXIT:
                pass
            else:
                try:
                    name = CMEventType(kind).name
                except ValueError:
                    name = str(kind)
                link.fail(f"{name} (status {event.status})")
        except (VerbsError, MalformedPacket) as e:
            link.fail(str(e))

    def _established(self, link: _Link, event: CMEvent) -> None:
        peer = link.peer
        if link.outgoing:
            welcome = wire.Welcome.decode(event.privateData)
            link.established(welcome.credits, welcome.bufferSize)
            self.log.debug("outgoing IB link to node {pnn} up", pnn=peer.pnn)
        else:
            link.established(0, link.peerBufferSize)
            self.log.debug("incoming IB link from node {pnn} up", pnn=peer.pnn)
        self._checkConnected(peer)

    def _connectRequest(self, event: CMEvent) -> None:
        cmId = event.cmId
        try:
            hello = wire.Hello.decode(event.privateData)
        except MalformedPacket as e:
            self.log.warn("refused IB connection: {reason}", reason=e)
            self._refuse(cmId)
            return
        pnn = self.pnnByAddress.get(hello.address)
        peer = None if pnn is None else self.peers.get(pnn)
        if peer is None or self._stopping:
            self.log.warn(
                "refused IB connection from unknown address {host}", host=hello.address
            )
            self._refuse(cmId)
            return
        link = _Link(self, peer, False, cmId)
        link.peerBufferSize = hello.bufferSize
        cmId.context = link
        self._links[id(cmId)] = link
        old, peer.incoming = peer.incoming, link
        if old is not None:
            # The peer reconnected (it restarted): the old link is stale.
            old.close()
        try:
            link.makeQueuePair(self.recvBuffers, self.creditBuffers)
            link.cmId.accept(wire.Welcome(self.bufferSize, self.recvBuffers).encode())
        except VerbsError as e:
            link.fail(f"accepting: {e}")
        else:
            link.timeout = self.reactor.callLater(
                self.connectTimeout, link.fail, "accept timed out"
            )

    def _refuse(self, cmId: ICMId) -> None:
        for step in (lambda: cmId.reject(b""), cmId.destroy):
            try:
                step()
            except VerbsError as e:
                self.log.debug("refusing: {error}", error=e)

    def _forgetId(self, cmId: ICMId) -> None:
        self._links.pop(id(cmId), None)
        self._closeChannelWhenIdle()

    # -- link bookkeeping ------------------------------------------------

    def _linkClosed(self, link: _Link) -> None:
        peer = link.peer
        if self.peers.get(peer.pnn) is not peer:
            return
        if link.outgoing:
            if peer.out is link:
                peer.out = None
                self._checkDead(peer)
                self._scheduleConnect(peer)
            return
        if peer.incoming is not link:
            return
        peer.incoming = None
        if self._stopping:
            return
        # As the TCP transport (and ctdbd): a dead incoming link also
        # restarts the outgoing one.
        if peer.out is not None:
            peer.out.fail("incoming link lost")
        self._checkDead(peer)

    def _checkConnected(self, peer: _Peer) -> None:
        out, incoming = peer.out, peer.incoming
        if (
            not peer.connected
            and out is not None
            and out.state == _Link.UP
            and incoming is not None
            and incoming.state == _Link.UP
        ):
            peer.connected = True
            self.listener.nodeConnected(peer.pnn)

    def _checkDead(self, peer: _Peer) -> None:
        if peer.connected:
            peer.connected = False
            if not self._stopping:
                self.listener.nodeDead(peer.pnn)

    # -- for tests and the benchmark -------------------------------------

    def linkStats(self, pnn: int) -> dict[str, Any]:
        """Counters of the links to and from C{pnn}."""
        peer = self.peers.get(pnn)
        stats: dict[str, Any] = {}
        if peer is None:
            return stats
        for name, link in (("out", peer.out), ("in", peer.incoming)):
            if link is not None:
                stats[name] = {
                    "state": link.state,
                    "credits": link.credits,
                    "queued": link.pendingBytes,
                    "sent": link.sent,
                    "received": link.received,
                }
        return stats
