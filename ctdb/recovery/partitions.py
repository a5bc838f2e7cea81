# -*- test-case-name: tests.recovery.test_partitions -*-
"""
Partial partitions (docs/FAILURE_DETECTION.md, "Partial partitions"): two
active nodes that cannot reach each other while both still reach the
leader.

Each of the two marks the other DISCONNECTED in its own node map; the
leader, linked to both, sees everyone connected.  Left alone, the two keep
routing record migrations through each other's stale view of the
dmaster and every call between them waits.  ctdbd 4.17 has no rule for
this (its main loop recovers only when the nodes disagree on which nodes
exist); txctdb's leader reads the node maps it already fetches in its
monitoring, finds the pairs that stayed cut for L{PARTITION_GRACE}
seconds, and leaves one node of each out of the cluster by banning it for
L{PARTITION_BAN_PERIOD} seconds, re-applied while the cut lasts and lifted
as soon as the node maps show the pair linked again.

Which node goes is deterministic: the leader is kept, then every other
node in pnn order is kept if it reaches every node kept so far, so the
remaining nodes are linked pair by pair.

This module is the pure part: which pairs are cut, which nodes go, and
how long a pair has been cut.  No Twisted import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ctdb.protocols import controls as C

#: how long (seconds) a pair must stay cut, in the leader's successive
#: reads of the node maps, before a node of it is left out: longer than
#: the moment two nodes take to link to a (re)started node one after the
#: other (the transport retries every second)
PARTITION_GRACE = 2.0

#: how long (seconds) a ban for a partial partition lasts; the leader
#: re-applies it at half that while the cut lasts, and lifts it once the
#: pair is linked again, so a leader that dies leaves no long ban behind
PARTITION_BAN_PERIOD = 10

Pair = tuple[int, int]


def cutPairs(views: Mapping[int, Mapping[int, int]], nodes: Iterable[int]) -> set[Pair]:
    """
    The pairs (low pnn, high pnn) of C{nodes} that are cut: one of the two
    flags the other DISCONNECTED in its own node map.  C{views} holds each
    node's node map as {pnn: flags}; a node whose view is missing says
    nothing (the other one of the pair may still say it).
    """
    members = sorted(set(nodes))
    cut: set[Pair] = set()
    for index, a in enumerate(members):
        for b in members[index + 1 :]:
            if _sees(views, a, b) or _sees(views, b, a):
                cut.add((a, b))
    return cut


def _sees(views: Mapping[int, Mapping[int, int]], a: int, b: int) -> bool:
    """Whether node C{a}'s node map flags node C{b} DISCONNECTED."""
    return bool(views.get(a, {}).get(b, 0) & C.NODE_FLAGS_DISCONNECTED)


def excludedNodes(nodes: Iterable[int], cut: Iterable[Pair], keep: int) -> list[int]:
    """
    The nodes to leave out so that every pair of the rest is linked: node
    C{keep} (the leader) stays, then each other node in pnn order stays if
    no pair of C{cut} joins it to a node that stays.  Sorted.
    """
    cutSet = {(min(a, b), max(a, b)) for a, b in cut}
    order = [keep] + sorted(set(nodes) - {keep})
    kept: list[int] = []
    out: list[int] = []
    for pnn in order:
        if any((min(pnn, k), max(pnn, k)) in cutSet for k in kept):
            out.append(pnn)
        else:
            kept.append(pnn)
    return sorted(out)


class CutTracker:
    """
    How long each pair has been cut, from successive observations: a pair
    is I{settled} once it was seen cut at every observation for
    L{PARTITION_GRACE} seconds; one observation that sees it linked starts
    it over.
    """

    def __init__(self, grace: float = PARTITION_GRACE) -> None:
        self.grace = grace
        #: pair -> when it was first seen cut (since last seen linked)
        self.since: dict[Pair, float] = {}
        #: when L{observe} was last called
        self.lastObserved: float | None = None

    def observe(self, now: float, cut: Iterable[Pair]) -> set[Pair]:
        """Record the pairs cut now (all others are linked or not
        watched); returns those cut for at least C{grace} seconds.  After
        a gap longer than C{grace} without observations (the node was not
        leading, or a recovery ran long) every pair starts over: nothing
        says it stayed cut meanwhile."""
        if self.lastObserved is not None and now - self.lastObserved > self.grace:
            self.since.clear()
        self.lastObserved = now
        current = set(cut)
        for pair in list(self.since):
            if pair not in current:
                del self.since[pair]
        for pair in current:
            self.since.setdefault(pair, now)
        return {p for p, t in self.since.items() if now - t >= self.grace}

    def clear(self) -> None:
        self.since.clear()
        self.lastObserved = None


def describePairs(pairs: Sequence[Pair]) -> str:
    """C{[(0, 1), (1, 2)]} as C{"0-1, 1-2"}, for the log."""
    return ", ".join(f"{a}-{b}" for a, b in sorted(pairs))


class PartitionState:
    """What a recovery service remembers about partial partitions."""

    def __init__(self) -> None:
        #: the leader's cut pairs and how long they lasted
        self.tracker = CutTracker()
        #: nodes this leader banned for a partial partition -> when it last
        #: (re)applied the ban
        self.banned: dict[int, float] = {}
        #: peers this node has seen recognised as txctdb nodes (heartbeats)
        self.txctdbPeers: set[int] = set()
        #: each peer's link as this node last saw it (True: down)
        self.linkDown: dict[int, bool] = {}
        #: txctdb peers this node declared dead and has not seen back yet
        self.lost: set[int] = set()
