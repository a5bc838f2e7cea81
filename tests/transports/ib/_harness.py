# -*- test-case-name: tests.transports.ib.test_transport -*-
"""
What the InfiniBand transport tests share: a recording listener, packets,
waiting for a condition on the real reactor, and building transports over
the fake fabric or the real verbs.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet import reactor as _reactor
from zope.interface import implementer

from ctdb.errors import VerbsUnavailable
from ctdb.interfaces import ICTDBReactor, INodeTransportListener
from ctdb.protocols import packet as P
from ctdb.transports.ib.transport import IBNodeTransport
from ctdb.transports.ib.verbs import IVerbs

reactor: ICTDBReactor = _reactor  # type: ignore[assignment]

#: addresses of the fake fabric's hosts
ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


@implementer(INodeTransportListener)
@dataclass
class RecordingListener:
    """Records the upcalls a transport makes; C{onPacket} is called too."""

    events: list[tuple[str, int]] = field(default_factory=list)
    packets: list[tuple[int, bytes]] = field(default_factory=list)
    onPacket: Callable[[int, bytes], object] | None = None

    def packetReceived(self, pnn: int, data: bytes) -> None:
        self.packets.append((pnn, data))
        if self.onPacket is not None:
            self.onPacket(pnn, data)

    def nodeConnected(self, pnn: int) -> None:
        self.events.append(("connected", pnn))

    def nodeDead(self, pnn: int) -> None:
        self.events.append(("dead", pnn))

    def count(self, kind: str, pnn: int) -> int:
        return self.events.count((kind, pnn))


def message(src: int, dst: int, size: int, n: int = 0) -> bytes:
    """A REQ_MESSAGE from C{src} to C{dst} carrying C{size} bytes that
    say C{n}."""
    body = (n.to_bytes(4, "little") * (size // 4 + 1))[:size]
    return P.ReqMessage(
        P.Header(P.Operation.REQ_MESSAGE, destnode=dst, srcnode=src, reqid=n),
        srvid=n,
        data=body,
    ).encode()


def mixedSizes(count: int, seed: int = 15) -> list[int]:
    """Packet payload sizes: mostly 0-512 bytes, some a few KiB, a few
    large (over many buffers)."""
    rng = random.Random(seed)
    sizes = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.8:
            sizes.append(rng.randrange(0, 513))
        elif roll < 0.98:
            sizes.append(rng.randrange(513, 20000))
        else:
            sizes.append(rng.randrange(100_000, 400_000))
        if i == count // 2:
            sizes[-1] = 2_000_000
    return sizes


def until(
    predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition"
) -> defer.Deferred[None]:
    """Fires when C{predicate()} holds, checked on every reactor turn
    (1 ms apart); fails after C{timeout} seconds."""
    d: defer.Deferred[None] = defer.Deferred()
    deadline = reactor.seconds() + timeout

    def check() -> None:
        try:
            done = predicate()
        except Exception:  # noqa: BLE001 - reported through the Deferred
            d.errback()
            return
        if done:
            d.callback(None)
        elif reactor.seconds() > deadline:
            d.errback(AssertionError(f"timed out waiting for {what}"))
        else:
            reactor.callLater(0.001, check)

    check()
    return d


def realVerbs() -> IVerbs:
    """The real verbs, or skip the test with the reason (the only skip
    the InfiniBand tests allow: no RDMA device here)."""
    from twisted.trial.unittest import SkipTest

    from ctdb.transports.ib.binding import loadVerbs

    try:
        return loadVerbs()
    except VerbsUnavailable as e:
        raise SkipTest(str(e)) from e


def realAddresses() -> tuple[str, ...]:
    """Addresses on the RDMA device for the real-verbs runs, from
    C{TXCTDB_IB_ADDRESSES} (comma-separated, two or three: e.g. the
    primary and secondary addresses of the soft-RoCE netdev)."""
    text = os.environ.get("TXCTDB_IB_ADDRESSES", "")
    addresses = tuple(a.strip() for a in text.split(",") if a.strip())
    if len(addresses) < 2:
        raise AssertionError(
            "an RDMA device is present: set TXCTDB_IB_ADDRESSES to two or three"
            " addresses on it (docs/IB.md) to run the transport suite on it"
        )
    return addresses


def makeTransport(
    verbs: IVerbs,
    address: str,
    listener: RecordingListener,
    port: int,
    **kw: Any,
) -> IBNodeTransport:
    kw.setdefault("retryDelay", 0.05)
    kw.setdefault("connectTimeout", 2.0)
    t = IBNodeTransport(
        reactor=reactor,
        address=address,
        verbs=verbs,
        listener=listener,
        port=port,
        **kw,
    )
    return t
