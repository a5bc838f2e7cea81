# -*- test-case-name: tests.monitor.test_render -*-
"""
What one look at the cluster saw, as plain values (no I/O, no Twisted):
the node map as the connected daemon has it, and for each node what that
node answered about itself (its own node map, recovery mode, VNN map and
generation, the public addresses it knows) or why it did not answer; the
leader the LEADER broadcasts name; who holds each public address.

These are the facts C{monitor_cluster} (Samba 4.17's
C{ctdb/server/ctdb_recoverd.c}) compares each second: every node's flags
and node map against the leader's, every node's recovery mode, VNN map
and generation, and the public address allocation.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctdb.protocols import nodestate as N
from ctdb.protocols.packet import CTDB_UNKNOWN_PNN
from ctdb.tool import formats as F

__all__ = [
    "AddressView",
    "NodeView",
    "Snapshot",
    "nodeStatus",
]


def nodeStatus(flags: int) -> str:
    """A node's flags as C{ctdb status} prints them (C{OK},
    C{DISCONNECTED|UNHEALTHY|INACTIVE}, ...)."""
    return F.prettyFlags(flags)


@dataclass(frozen=True, slots=True)
class NodeView:
    """
    One node: its place in the connected daemon's node map, and what it
    said about itself.

    @ivar flags: its flags in the connected daemon's node map.
    @ivar error: why it did not answer (C{None}: it did); then the fields
        below it are C{None}.
    @ivar nodemap: the flags of every node (by pnn) in its own node map.
    @ivar recmode: its recovery mode (L{N.CTDB_RECOVERY_NORMAL} or
        L{N.CTDB_RECOVERY_ACTIVE}).
    @ivar generation: its generation (L{F.INVALID_GENERATION} in recovery).
    @ivar vnnmap: its VNN map (the lmasters, in order).
    @ivar addresses: the public addresses it can host.
    """

    pnn: int
    address: str
    flags: int
    error: str | None = None
    nodemap: tuple[tuple[int, int], ...] | None = None
    recmode: int | None = None
    generation: int | None = None
    vnnmap: tuple[int, ...] | None = None
    addresses: tuple[str, ...] | None = None

    @property
    def answered(self) -> bool:
        return self.error is None

    @property
    def deleted(self) -> bool:
        return bool(self.flags & N.NODE_FLAGS_DELETED)

    @property
    def status(self) -> str:
        return nodeStatus(self.flags)


@dataclass(frozen=True, slots=True)
class AddressView:
    """A public address and the node that holds it (C{CTDB_UNKNOWN_PNN}:
    none does)."""

    address: str
    pnn: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """
    One look at the cluster through one daemon.

    @ivar time: when it was taken (the reactor's seconds).
    @ivar socket: the client socket of the daemon asked.
    @ivar pnn: that daemon's node (C{CTDB_UNKNOWN_PNN} if never connected).
    @ivar error: why nothing could be seen (the daemon is gone, say);
        then there are no nodes.
    @ivar leader: the leader the last LEADER broadcast named.
    @ivar leaderAge: seconds since that broadcast (C{None}: none heard).
    """

    time: float
    socket: str
    pnn: int = CTDB_UNKNOWN_PNN
    error: str | None = None
    leader: int = CTDB_UNKNOWN_PNN
    leaderAge: float | None = None
    nodes: tuple[NodeView, ...] = ()
    addresses: tuple[AddressView, ...] = ()

    def node(self, pnn: int) -> NodeView | None:
        for node in self.nodes:
            if node.pnn == pnn:
                return node
        return None

    @property
    def reference(self) -> NodeView | None:
        """Whose view counts for the cluster: the leader's if it answered,
        else the connected daemon's."""
        for pnn in (self.leader, self.pnn):
            node = self.node(pnn)
            if node is not None and node.answered:
                return node
        return None

    @property
    def generation(self) -> int | None:
        """The cluster's generation, as L{reference} has it."""
        ref = self.reference
        return None if ref is None else ref.generation

    @property
    def recoveryActive(self) -> bool | None:
        """Whether any node that answered is in recovery."""
        modes = [n.recmode for n in self.nodes if n.recmode is not None]
        if not modes:
            return None
        return any(m == N.CTDB_RECOVERY_ACTIVE for m in modes)

    def owner(self, address: str) -> int | None:
        """Who holds C{address} (C{None}: it is not a public address)."""
        for entry in self.addresses:
            if entry.address == address:
                return entry.pnn
        return None
