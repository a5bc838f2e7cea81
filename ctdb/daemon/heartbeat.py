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
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

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
_PAYLOAD = struct.Struct("<4sIII")
_VERSION = 1


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The payload of a heartbeat message: who sends it and its number."""

    pnn: int
    seq: int
    version: int = _VERSION

    def encode(self) -> bytes:
        return _PAYLOAD.pack(_MAGIC, self.version, self.pnn, self.seq)

    @classmethod
    def decode(cls, data: bytes) -> Heartbeat | None:
        """The heartbeat in C{data}, or None if it is not one."""
        if len(data) < _PAYLOAD.size:
            return None
        magic, version, pnn, seq = _PAYLOAD.unpack_from(data)
        if magic != _MAGIC:
            return None
        return cls(pnn, seq, version)


@dataclass
class _Peer:
    #: the link is up (the daemon's view: not DISCONNECTED)
    linked: bool = False
    #: a heartbeat came from it since its link came up
    recognised: bool = False
    #: silence counted against it, in seconds of this node's punctual time
    silence: float = 0.0


class HeartbeatMonitor:
    """
    The heartbeat failure detector of one node.

    C{send(pnn, payload)} sends a heartbeat message to node C{pnn};
    C{declareDead(pnn, silence)} is called once when a recognised peer has
    been silent for C{timeout} seconds.  The daemon calls L{linkUp},
    L{linkDown}, L{heard} (any packet) and L{heartbeatReceived}.
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
        self._peers: dict[int, _Peer] = {}
        self._seq = 0
        self._loop: task.LoopingCall | None = None
        self._lastTick = 0.0
        self._lastHello = 0.0
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

    def linkUp(self, pnn: int) -> None:
        peer = self._peers.setdefault(pnn, _Peer())
        peer.linked = True
        peer.recognised = False
        peer.silence = 0.0
        self._beat(pnn)

    def linkDown(self, pnn: int) -> None:
        peer = self._peers.get(pnn)
        if peer is not None:
            peer.linked = False
            peer.recognised = False
            peer.silence = 0.0

    def heard(self, pnn: int) -> None:
        """A packet came from node C{pnn}."""
        peer = self._peers.get(pnn)
        if peer is not None:
            peer.silence = 0.0

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
        if not peer.recognised:
            peer.recognised = True
            self.log.info(
                "node {pnn} is a txctdb node: heartbeats every {interval} s,"
                " dead after {timeout} s of silence",
                pnn=pnn,
                interval=self.interval,
                timeout=self.timeout,
            )
            # so that it recognises us at once too
            self._beat(pnn)

    # -- the check -----------------------------------------------------------------

    def _beat(self, pnn: int) -> None:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        self.sent += 1
        self._send(pnn, Heartbeat(self.pnn, self._seq).encode())

    def _tick(self) -> None:
        now = self.reactor.seconds()
        elapsed = now - self._lastTick
        self._lastTick = now
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
                peer.linked = False
                peer.recognised = False
                peer.silence = 0.0
                self.suspicions += 1
                self.log.info(
                    "node {pnn} silent for {silence:.2f} s (heartbeat timeout"
                    " {timeout} s): declaring it dead",
                    pnn=pnn,
                    silence=silence,
                    timeout=self.timeout,
                    step="heartbeat-timeout",
                    node=self.pnn,
                )
                self._declareDead(pnn, silence)
                continue
            self._beat(pnn)
