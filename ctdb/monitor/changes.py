# -*- test-case-name: tests.monitor.test_changes -*-
"""
The changes the monitor sees between one snapshot and the next, as
timestamped events (pure: no I/O, no Twisted): the daemon lost or back,
a node's status in the node map, a connected node that stops answering,
the leader, the recovery mode, the generation, the VNN map, and the public
addresses that move.

A snapshot that saw nothing (the daemon is gone) is compared with the one
before it only for that; the cluster's state is compared with the last
snapshot that saw it, so what changed while the daemon was away shows up
when it is back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ctdb.monitor.snapshot import NodeView, Snapshot
from ctdb.protocols import nodestate as N
from ctdb.protocols.packet import CTDB_UNKNOWN_PNN
from ctdb.tool import formats as F

__all__ = ["Event", "EventLog", "changes"]


@dataclass(frozen=True, slots=True)
class Event:
    """Something that changed, seen at C{time} (the snapshot's)."""

    time: float
    text: str


def _pnn(pnn: int) -> str:
    return "UNKNOWN" if pnn == CTDB_UNKNOWN_PNN else str(pnn)


def _generation(value: int | None) -> int | None:
    """A generation worth an event: not unknown, not INVALID (mid-recovery)."""
    if value is None or value == F.INVALID_GENERATION:
        return None
    return value


def _disconnected(node: NodeView) -> bool:
    return bool(node.flags & N.NODE_FLAGS_DISCONNECTED)


def _nodeChanges(old: NodeView, new: NodeView) -> list[str]:
    out = []
    if old.flags != new.flags:
        out.append(f"node {new.pnn} became {new.status} (was {old.status})")
    # A node the map calls disconnected is not expected to answer; only a
    # connected one that stops (or starts again) is news.
    if old.answered and not new.answered and not _disconnected(new):
        out.append(f"node {new.pnn} does not answer ({new.error})")
    elif not old.answered and new.answered and not _disconnected(old):
        out.append(f"node {new.pnn} answers again")
    return out


def _addressChanges(old: Snapshot, new: Snapshot) -> list[str]:
    out = []
    before = {a.address: a.pnn for a in old.addresses}
    after = {a.address: a.pnn for a in new.addresses}
    for address, pnn in after.items():
        if address not in before:
            where = "unassigned" if pnn == CTDB_UNKNOWN_PNN else f"on node {pnn}"
            out.append(f"public address {address} added ({where})")
            continue
        was = before[address]
        if was == pnn:
            continue
        if pnn == CTDB_UNKNOWN_PNN:
            out.append(f"public address {address} unassigned (was on node {was})")
        elif was == CTDB_UNKNOWN_PNN:
            out.append(f"public address {address} assigned to node {pnn}")
        else:
            out.append(f"public address {address} moved from node {was} to node {pnn}")
    for address in before:
        if address not in after:
            out.append(f"public address {address} removed")
    return out


def changes(old: Snapshot, new: Snapshot) -> list[str]:
    """
    What changed in the cluster from C{old} to C{new}, both snapshots
    that saw it (no C{error}): one line each, in a fixed order (nodes by
    pnn, then leader, recovery mode, generation, VNN map, addresses).
    """
    out = []
    before = {n.pnn: n for n in old.nodes}
    after = {n.pnn: n for n in new.nodes}
    for pnn in sorted(set(before) | set(after)):
        if pnn not in before:
            out.append(f"node {pnn} appeared ({after[pnn].status})")
        elif pnn not in after:
            out.append(f"node {pnn} is gone from the node map")
        else:
            out.extend(_nodeChanges(before[pnn], after[pnn]))
    if old.leader != new.leader:
        out.append(f"leader changed {_pnn(old.leader)} -> {_pnn(new.leader)}")
    wasActive, isActive = old.recoveryActive, new.recoveryActive
    if isActive is not None and wasActive is not None and wasActive != isActive:
        out.append(f"recovery mode {'ACTIVE' if isActive else 'NORMAL'}")
    oldGen, newGen = _generation(old.generation), _generation(new.generation)
    if oldGen is not None and newGen is not None and oldGen != newGen:
        out.append(f"generation changed {oldGen} -> {newGen}")
    oldRef, newRef = old.reference, new.reference
    if (
        oldRef is not None
        and newRef is not None
        and oldRef.vnnmap is not None
        and newRef.vnnmap is not None
        and oldRef.vnnmap != newRef.vnnmap
    ):
        out.append(
            "VNN map changed "
            f"{' '.join(map(str, oldRef.vnnmap)) or '(empty)'} -> "
            f"{' '.join(map(str, newRef.vnnmap)) or '(empty)'}"
        )
    out.extend(_addressChanges(old, new))
    return out


class EventLog:
    """
    The events of a run of snapshots: L{observe} each snapshot in turn;
    L{recent} gives the newest, oldest first.

    @ivar last: the last snapshot observed.
    @ivar lastGood: the last snapshot that saw the cluster.
    """

    def __init__(self, keep: int = 100) -> None:
        self.events: deque[Event] = deque(maxlen=keep)
        self.last: Snapshot | None = None
        self.lastGood: Snapshot | None = None

    def observe(self, snapshot: Snapshot) -> list[Event]:
        """Take C{snapshot}; the events it brings (also kept)."""
        texts: list[str] = []
        last, self.last = self.last, snapshot
        if snapshot.error is not None:
            if last is None or last.error is None:
                texts.append(f"cannot see the cluster: {snapshot.error}")
        else:
            if last is None:
                texts.append(
                    f"watching {len(snapshot.nodes)} nodes through node "
                    f"{_pnn(snapshot.pnn)}"
                )
            elif last.error is not None:
                texts.append(f"connected again, through node {_pnn(snapshot.pnn)}")
            if self.lastGood is not None:
                texts.extend(changes(self.lastGood, snapshot))
            self.lastGood = snapshot
        new = [Event(snapshot.time, text) for text in texts]
        self.events.extend(new)
        return new

    def recent(self, count: int) -> list[Event]:
        """The newest C{count} events, oldest first."""
        if count <= 0:
            return []
        return list(self.events)[-count:]
