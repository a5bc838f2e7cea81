# -*- test-case-name: tests.monitor.test_render -*-
"""Fixed snapshots of a 3-node cluster that the monitor's tests share."""

from __future__ import annotations

import dataclasses

from ctdb.monitor.snapshot import AddressView, NodeView, Snapshot
from ctdb.protocols import nodestate as N

#: 2026-12-06 06:00:00 UTC
T0 = 1796536800.0

DOWN = N.NODE_FLAGS_DISCONNECTED | N.NODE_FLAGS_UNHEALTHY
IPS = ("192.0.2.1", "192.0.2.2", "192.0.2.3")


def _answering(
    pnn: int,
    view: tuple[tuple[int, int], ...],
    generation: int,
    vnnmap: tuple[int, ...],
) -> NodeView:
    """Node C{pnn}, OK and answering, in normal mode, serving IPS."""
    return NodeView(
        pnn,
        f"10.0.0.{pnn + 1}",
        0,
        nodemap=view,
        recmode=N.CTDB_RECOVERY_NORMAL,
        generation=generation,
        vnnmap=vnnmap,
        addresses=IPS,
    )


def healthy(time: float = T0, generation: int = 1111) -> Snapshot:
    """Three nodes, all OK and agreeing; node 2 leads; one address each."""
    view = ((0, 0), (1, 0), (2, 0))
    return Snapshot(
        time,
        "/run/ctdb/ctdbd.socket",
        pnn=0,
        leader=2,
        leaderAge=0.4,
        nodes=tuple(_answering(pnn, view, generation, (0, 1, 2)) for pnn in range(3)),
        addresses=tuple(AddressView(ip, pnn) for pnn, ip in enumerate(IPS)),
    )


def nodeTwoDown(time: float = T0 + 5, generation: int = 2222) -> Snapshot:
    """Node 2 killed: disconnected, no answer; node 0 leads; its address
    moved to node 1."""
    view = ((0, 0), (1, 0), (2, DOWN))
    nodes = tuple(_answering(pnn, view, generation, (0, 1)) for pnn in range(2)) + (
        NodeView(2, "10.0.0.3", DOWN, error="status -1"),
    )
    return Snapshot(
        time,
        "/run/ctdb/ctdbd.socket",
        pnn=0,
        leader=0,
        leaderAge=0.2,
        nodes=nodes,
        addresses=(
            AddressView(IPS[0], 0),
            AddressView(IPS[1], 1),
            AddressView(IPS[2], 1),
        ),
    )


def replaceNode(snapshot: Snapshot, pnn: int, **changes: object) -> Snapshot:
    """C{snapshot} with node C{pnn}'s view changed."""
    nodes = tuple(
        dataclasses.replace(n, **changes) if n.pnn == pnn else n  # type: ignore[arg-type]
        for n in snapshot.nodes
    )
    return dataclasses.replace(snapshot, nodes=nodes)


def gone(time: float) -> Snapshot:
    """The daemon is not there."""
    return Snapshot(
        time, "/run/ctdb/ctdbd.socket", error="cannot connect: Connection refused"
    )
