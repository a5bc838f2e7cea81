# -*- test-case-name: tests.daemon.test_heartbeat -*-
"""
Fast failure detection between txctdb nodes (docs/FAILURE_DETECTION.md).

ctdbd 4.17 notices a peer that went silent without closing its connections
(a partition, a power loss, a hung host) only after KeepaliveInterval x
KeepaliveLimit (25 s by default).  Between two txctdb nodes this module adds
a light heartbeat: a node message to a private srvid
(L{TXCTDB_SRVID_HEARTBEAT}) every C{interval} seconds, and a peer that has
been silent for C{timeout} seconds is declared dead.

 - Recognition.  A txctdb node greets every peer whose link comes up (and,
   every C{helloInterval}, every connected peer it has not recognised) with
   one heartbeat.  A peer that sends us a heartbeat is a txctdb node: from
   then on it gets a heartbeat every C{interval} and its silence is
   watched.  Samba's ctdbd delivers a message for a srvid nobody registered
   to nobody and says nothing (srvid_dispatch), so a ctdbd peer is never
   recognised and keeps 4.17's keepalive rules alone.
 - Silence.  Any packet from a peer proves it alive, not only heartbeats.
 - Our own lateness.  The check runs on this node's reactor; when that
   reactor was paused (a loaded machine, a long synchronous step), packets
   may be waiting unread in the sockets.  A check that runs late counts at
   most one C{interval} of silence for the time it was late, so a node never
   suspects others because it was itself asleep.  A peer whose own reactor
   stops (SIGSTOP, a hung process) is silent for real and is suspected.

The logic is driven by C{reactor.seconds()} and C{reactor.callLater} only,
so a L{twisted.internet.task.Clock} tests it.

Leases for the public addresses (L{ctdb.takeover.fence}, docs/
FAILURE_DETECTION.md "Giving addresses up"):

 - Confirmations.  Every heartbeat echoes the sequence number of the latest
   heartbeat its sender received from the node it goes to.  A node keeps
   the time (its own clock) at which it sent each of its recent heartbeats,
   so an echo tells it that the peer heard it at a time no earlier than
   that send time (L{HeartbeatMonitor.confirmedAt}).  Send times, not
   receive times: an echo read after this node was paused confirms nothing
   newer than what was sent before the pause.
 - Fences.  A peer declared dead here by silence may still be alive on the
   other side of a partition, hosting its public addresses until its own
   lease runs out.  L{HeartbeatMonitor.fenceDeadline} says until when this
   node must not move its addresses: C{fenceDelay} after the peer was last
   heard.  A peer whose link closed (a killed process) needs no fence.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet import task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

#: the private srvid of the heartbeat messages: in the range of Samba's
#: test srvids (CTDB_SRVID_TEST_RANGE), which no Samba component registers
TXCTDB_SRVID_HEARTBEAT = 0xAE7C7DB000000001

#: default heartbeat period and silence limit (seconds)
DEFAULT_INTERVAL = 0.25
DEFAULT_TIMEOUT = 1.5
#: how often connected peers not (yet) recognised are greeted again
HELLO_INTERVAL = 5.0

_MAGIC = b"TXHB"
_PAYLOAD_V1 = struct.Struct("<4sIII")
#: version 2 adds the echo (u32 ack), then (pnn, milliseconds since the
#: sender last heard that node) for each txctdb peer it hears
_PAYLOAD = struct.Struct("<4sIIII")
_HEARD = struct.Struct("<II")
_VERSION = 2
#: how many recent send times a node keeps per peer for the echoes
_SENT_KEPT = 64


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The payload of a heartbeat message: who sends it, its number, and
    the number of the latest heartbeat its sender received from the node it
    goes to (C{ack}, 0 for none; version 1 heartbeats carry none), and
    how long ago, in milliseconds, the sender last heard each of its other
    txctdb peers (C{heard}: (pnn, ms) pairs)."""

    pnn: int
    seq: int
    version: int = _VERSION
    ack: int = 0
    heard: tuple[tuple[int, int], ...] = ()

    def encode(self) -> bytes:
        if self.version < 2:
            return _PAYLOAD_V1.pack(_MAGIC, self.version, self.pnn, self.seq)
        head = _PAYLOAD.pack(_MAGIC, self.version, self.pnn, self.seq, self.ack)
        return head + b"".join(_HEARD.pack(p, ms) for p, ms in self.heard)

    @classmethod
    def decode(cls, data: bytes) -> Heartbeat | None:
        """The heartbeat in C{data}, or None if it is not one."""
        if len(data) < _PAYLOAD_V1.size:
            return None
        magic, version, pnn, seq = _PAYLOAD_V1.unpack_from(data)
        if magic != _MAGIC:
            return None
        ack = 0
        heard: tuple[tuple[int, int], ...] = ()
        if version >= 2 and len(data) >= _PAYLOAD.size:
            ack = _PAYLOAD.unpack_from(data)[4]
            rest = len(data) - _PAYLOAD.size
            heard = tuple(
                _HEARD.unpack_from(data, _PAYLOAD.size + i * _HEARD.size)
                for i in range(rest // _HEARD.size)
            )
        return cls(pnn, seq, version, ack, heard)


@dataclass
class _Peer:
    #: the link is up (the daemon's view: not DISCONNECTED)
    linked: bool = False
    #: a heartbeat came from it since its link came up
    recognised: bool = False
    #: a heartbeat ever came from it: a txctdb node, not a ctdbd
    everRecognised: bool = False
    #: silence counted against it, in seconds of this node's punctual time
    silence: float = 0.0
    #: when (this node's clock) it was last heard, any packet
    heardAt: float | None = None
    #: the latest heartbeat number it sent us (echoed in ours)
    lastSeq: int = 0
    #: the send time of our latest heartbeat it echoed
    confirmedAt: float | None = None
    #: the same, kept after its link went down (until it comes up again)
    lastConfirmedAt: float | None = None
    #: our recent heartbeats to it: number -> send time
    sent: dict[int, float] = field(default_factory=dict)
    #: what its latest heartbeat said: pnn -> when (our clock) it last
    #: heard that node
    reports: dict[int, float] = field(default_factory=dict)

    def forget(self) -> None:
        self.recognised = False
        self.silence = 0.0
        self.lastSeq = 0
        self.confirmedAt = None
        self.sent.clear()
        self.reports.clear()


class HeartbeatMonitor:
    """
    The heartbeat failure detector of one node.

    C{send(pnn, payload)} sends a heartbeat message to node C{pnn};
    C{declareDead(pnn, silence)} is called once when a recognised peer has
    been silent for C{timeout} seconds.  The daemon calls L{linkUp},
    L{linkDown}, L{heard} (any packet) and L{heartbeatReceived}.

    C{fenceDelay} (default twice C{timeout}) is how long after a peer lost
    by silence was last heard its addresses stay where they are
    (L{fenceDeadline}); C{lease} (default C{timeout - interval}) how long a
    confirmation lets this node keep its own (L{confirmedWithin}).  The
    fence must exceed the lease by more than a check interval: the margin
    is the longest pause of the silent node that is still covered.
    """

    log = Logger()

    def __init__(
        self,
        *,
        reactor: IReactorTime,
        pnn: int,
        send: Callable[[int, bytes], object],
        declareDead: Callable[[int, float], object],
        interval: float = DEFAULT_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        helloInterval: float = HELLO_INTERVAL,
        lease: float | None = None,
        fenceDelay: float | None = None,
    ) -> None:
        if interval <= 0 or timeout <= interval:
            raise ValueError(
                f"heartbeat interval {interval} must be > 0 and below timeout {timeout}"
            )
        self.reactor = reactor
        self.pnn = pnn
        self._send = send
        self._declareDead = declareDead
        self.interval = interval
        self.timeout = timeout
        self.helloInterval = helloInterval
        self.lease = timeout - interval if lease is None else lease
        self.fenceDelay = 2 * timeout if fenceDelay is None else fenceDelay
        if not 0 < self.lease <= timeout - interval:
            raise ValueError(
                f"lease {self.lease} must be > 0 and at most timeout - interval"
            )
        if self.fenceDelay <= self.lease + interval:
            raise ValueError(
                f"fence delay {self.fenceDelay} must exceed lease + interval"
            )
        self._peers: dict[int, _Peer] = {}
        self._seq = 0
        self._loop: task.LoopingCall | None = None
        self._lastTick = 0.0
        self._lastHello = 0.0
        self._startedAt: float | None = None
        #: peers declared dead by silence: pnn -> their fence deadline
        self._fences: dict[int, float] = {}
        #: peers whose link closed while their echoes were fresh (L{departed})
        self._departed: set[int] = set()
        #: called with the time since the previous check at the start of
        #: every check, before any peer is declared dead (the fence of the
        #: public addresses: L{ctdb.takeover.fence})
        self.checkHooks: list[Callable[[float], object]] = []
        #: checks that ran more than one interval late (this node was paused)
        self.lateChecks = 0
        #: the longest lateness seen, in seconds
        self.maxLateness = 0.0
        #: peers declared dead by silence
        self.suspicions = 0
        self.sent = 0
        self.received = 0

    # -- life --------------------------------------------------------------------

    def start(self) -> None:
        self._lastTick = self._lastHello = self.reactor.seconds()
        if self._startedAt is None:
            self._startedAt = self._lastTick
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = self.reactor
        self._loop.start(self.interval, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    # -- what the daemon tells it ---------------------------------------------------

    def isOurs(self, pnn: int) -> bool:
        """Whether node C{pnn} is a txctdb node we exchange heartbeats with."""
        peer = self._peers.get(pnn)
        return peer is not None and peer.linked and peer.recognised

    def wasOurs(self, pnn: int) -> bool:
        """Whether node C{pnn} ever sent us a heartbeat (it is a txctdb node,
        whether its link is up now or not)."""
        peer = self._peers.get(pnn)
        return peer is not None and peer.everRecognised

    def linkUp(self, pnn: int) -> None:
        peer = self._peers.setdefault(pnn, _Peer())
        peer.linked = True
        peer.forget()
        peer.lastConfirmedAt = None
        peer.heardAt = self.reactor.seconds()
        self._fences.pop(pnn, None)
        self._departed.discard(pnn)
        self._beat(pnn)

    def linkDown(self, pnn: int) -> None:
        peer = self._peers.get(pnn)
        if peer is not None:
            if peer.linked and peer.recognised and self.confirmedWithin(pnn):
                # Its link closed while it still echoed us: a killed
                # process, not a node that lost us (that one stopped
                # echoing C{timeout} before it could declare us dead).
                self._departed.add(pnn)
            peer.linked = False
            peer.forget()

    def heard(self, pnn: int) -> None:
        """A packet came from node C{pnn}."""
        peer = self._peers.get(pnn)
        if peer is not None:
            peer.silence = 0.0
            if peer.linked:
                peer.heardAt = self.reactor.seconds()

    def heartbeatReceived(self, pnn: int, data: bytes) -> None:
        """A heartbeat message came over node C{pnn}'s link."""
        beat = Heartbeat.decode(data)
        if beat is None or beat.pnn != pnn:
            return
        self.received += 1
        peer = self._peers.get(pnn)
        if peer is None or not peer.linked:
            return
        peer.silence = 0.0
        peer.heardAt = self.reactor.seconds()
        peer.lastSeq = beat.seq
        now = self.reactor.seconds()
        peer.reports = {q: now - ms / 1000.0 for q, ms in beat.heard}
        sentAt = peer.sent.get(beat.ack) if beat.ack else None
        if sentAt is not None and (
            peer.confirmedAt is None or sentAt > peer.confirmedAt
        ):
            peer.confirmedAt = peer.lastConfirmedAt = sentAt
        if not peer.recognised:
            peer.recognised = peer.everRecognised = True
            self.log.info(
                "node {pnn} is a txctdb node: heartbeats every {interval} s,"
                " dead after {timeout} s of silence",
                pnn=pnn,
                interval=self.interval,
                timeout=self.timeout,
            )
            # so that it recognises us at once too
            self._beat(pnn)

    # -- leases and fences ------------------------------------------------------------

    def confirmedAt(self, pnn: int) -> float | None:
        """The send time of our latest heartbeat that txctdb peer C{pnn}
        echoed: it heard us then or later.  None if nothing is confirmed
        since its link came up."""
        peer = self._peers.get(pnn)
        if peer is None or not peer.linked or not peer.recognised:
            return None
        return peer.confirmedAt

    def lastConfirmedAt(self, pnn: int) -> float | None:
        """L{confirmedAt}, also after txctdb peer C{pnn}'s link went down
        (None again once it comes up, until it echoes)."""
        peer = self._peers.get(pnn)
        return None if peer is None else peer.lastConfirmedAt

    def confirmedWithin(self, pnn: int, window: float | None = None) -> bool:
        """Whether txctdb peer C{pnn} confirmed a heartbeat we sent less
        than C{window} (default L{lease}) seconds ago."""
        at = self.confirmedAt(pnn)
        if at is None:
            return False
        span = self.lease if window is None else window
        return self.reactor.seconds() - at < span

    def reportedHeard(self, pnn: int) -> tuple[int, float] | None:
        """The latest time (our clock) at which another txctdb peer that
        confirms us within the lease said it heard node C{pnn}, and that
        peer; None if none did."""
        best: tuple[int, float] | None = None
        for q, peer in self._peers.items():
            if q == pnn or not self.confirmedWithin(q):
                continue
            at = peer.reports.get(pnn)
            if at is not None and (best is None or at > best[1]):
                best = (q, at)
        return best

    def departed(self, pnn: int) -> bool:
        """Whether txctdb peer C{pnn} left by a closed link while it still
        confirmed us within the lease (a killed process, by construction:
        a peer that declares us dead by silence has heard nothing from us
        for C{timeout} seconds, so its last echo is older than the lease).
        Until its link comes up again."""
        return pnn in self._departed

    def fenceDeadline(self, pnn: int) -> float | None:
        """
        Until when (this node's clock) the public addresses of node C{pnn}
        must stay where they are: C{fenceDelay} after it was last heard if
        this node declared it dead by silence, or after this monitor started
        if this node never linked with it since.  None when no fence holds
        (the peer is linked, or its link closed: a killed process).
        """
        deadline = self._fences.get(pnn)
        if deadline is not None:
            return deadline
        if pnn not in self._peers and self._startedAt is not None:
            return self._startedAt + self.fenceDelay
        return None

    # -- the check -----------------------------------------------------------------

    def _beat(self, pnn: int) -> None:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        self.sent += 1
        peer = self._peers.get(pnn)
        now = self.reactor.seconds()
        ack = 0
        if peer is not None:
            ack = peer.lastSeq
            peer.sent[self._seq] = now
            if len(peer.sent) > _SENT_KEPT:
                del peer.sent[next(iter(peer.sent))]
        heard = tuple(
            (q, min(int((now - other.heardAt) * 1000), 0xFFFFFFFF))
            for q, other in self._peers.items()
            if q != pnn
            and other.linked
            and other.recognised
            and other.heardAt is not None
        )
        beat = Heartbeat(self.pnn, self._seq, ack=ack, heard=heard)
        self._send(pnn, beat.encode())

    def _tick(self) -> None:
        now = self.reactor.seconds()
        elapsed = now - self._lastTick
        self._lastTick = now
        for hook in list(self.checkHooks):
            hook(elapsed)
        late = elapsed - self.interval
        self.maxLateness = max(self.maxLateness, late)
        if elapsed > 2 * self.interval:
            # This node was asleep: whatever arrived meanwhile is still
            # unread.  Count one interval, not the whole gap.
            self.lateChecks += 1
            credit = self.interval
        else:
            credit = elapsed
        hello = now - self._lastHello >= self.helloInterval - self.interval / 2
        if hello:
            self._lastHello = now
        for pnn, peer in list(self._peers.items()):
            if not peer.linked:
                continue
            if not peer.recognised:
                if hello:
                    self._beat(pnn)
                continue
            peer.silence += credit
            if peer.silence >= self.timeout:
                silence = peer.silence
                heardAt = peer.heardAt if peer.heardAt is not None else now
                peer.linked = False
                peer.forget()
                self._fences[pnn] = heardAt + self.fenceDelay
                self.suspicions += 1
                self.log.info(
                    "node {pnn} silent for {silence:.2f} s (heartbeat timeout"
                    " {timeout} s): declaring it dead; its public addresses"
                    " stay until {fence:.2f} s from now",
                    pnn=pnn,
                    silence=silence,
                    timeout=self.timeout,
                    fence=heardAt + self.fenceDelay - now,
                    step="heartbeat-timeout",
                    node=self.pnn,
                )
                self._declareDead(pnn, silence)
                continue
            self._beat(pnn)
