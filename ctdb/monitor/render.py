# -*- test-case-name: tests.monitor.test_render -*-
"""
A snapshot as plain text (C{--once}), as JSON (C{--once --json}), and as
the live view's rich renderable; all three from the same rows
(L{nodeRows}, L{addressRows}), so what the live view shows is what the
text says.

In the node table, a node's RECMODE, GENERATION and VNNMAP are its own
answers; a C{!} after one marks a value that differs from the leader's
(from the connected node's, if the leader did not answer), as
C{monitor_cluster} would find it.  SEES is the node's own node map: C{same}
when it agrees with the connected node's, else the entries that differ.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ctdb.monitor.changes import Event
from ctdb.monitor.snapshot import NodeView, Snapshot, nodeStatus
from ctdb.protocols import nodestate as N
from ctdb.protocols.packet import CTDB_UNKNOWN_PNN
from ctdb.tool import formats as F

__all__ = [
    "EVENTS_SHOWN",
    "addressRows",
    "formatTime",
    "nodeRows",
    "renderLive",
    "renderText",
    "snapshotJson",
]

#: how many of the newest events the live view shows
EVENTS_SHOWN = 10

#: a leader broadcast older than this (ctdbd's LeaderTimeout default) is stale
LEADER_STALE = 5.0

NODE_HEADER = (
    "PNN",
    "ADDRESS",
    "STATUS",
    "ROLE",
    "RECMODE",
    "GENERATION",
    "VNNMAP",
    "SEES",
)
ADDRESS_HEADER = ("PUBLIC ADDRESS", "NODE", "HOSTABLE ON")

LocalTime = Callable[[float], time.struct_time]


def formatTime(seconds: float, localtime: LocalTime = time.localtime) -> str:
    return time.strftime("%H:%M:%S", localtime(seconds))


def _pnn(pnn: int) -> str:
    return "UNKNOWN" if pnn == CTDB_UNKNOWN_PNN else str(pnn)


def _recmode(value: int) -> str:
    return "NORMAL" if value == N.CTDB_RECOVERY_NORMAL else "ACTIVE"


def _generation(value: int) -> str:
    return "INVALID" if value == F.INVALID_GENERATION else str(value)


def _vnnmap(value: Sequence[int]) -> str:
    return " ".join(map(str, value)) or "(empty)"


def _sees(snapshot: Snapshot, node: NodeView) -> str:
    """Where C{node}'s own node map differs from the connected node's."""
    assert node.nodemap is not None
    mine = {n.pnn: n.flags for n in snapshot.nodes}
    diffs = [
        f"{pnn}:{nodeStatus(flags)}"
        for pnn, flags in node.nodemap
        if mine.get(pnn) != flags and not flags & N.NODE_FLAGS_DELETED
    ]
    missing = [str(p) for p in mine if p not in dict(node.nodemap)]
    if missing:
        diffs.append(f"lacks {','.join(missing)}")
    return " ".join(diffs) or "same"


def _role(snapshot: Snapshot, node: NodeView) -> str:
    roles = []
    if node.pnn == snapshot.leader:
        roles.append("leader")
    if node.pnn == snapshot.pnn:
        roles.append("local")
    return ",".join(roles) or "-"


def nodeRows(snapshot: Snapshot) -> list[tuple[str, ...]]:
    """The node table's rows (deleted nodes left out), as text."""
    ref = snapshot.reference
    rows: list[tuple[str, ...]] = []
    for node in snapshot.nodes:
        if node.deleted:
            continue
        head = (str(node.pnn), node.address, node.status, _role(snapshot, node))
        if not node.answered:
            rows.append((*head, "-", "-", "-", f"no answer: {node.error}"))
            continue
        assert node.recmode is not None and node.generation is not None
        assert node.vnnmap is not None

        def mark(value: str, differs: bool) -> str:
            return f"{value} !" if differs else value

        rows.append(
            (
                *head,
                _recmode(node.recmode),
                mark(
                    _generation(node.generation),
                    ref is not None and node.generation != ref.generation,
                ),
                mark(
                    _vnnmap(node.vnnmap), ref is not None and node.vnnmap != ref.vnnmap
                ),
                _sees(snapshot, node),
            )
        )
    return rows


def addressRows(snapshot: Snapshot) -> list[tuple[str, str, str]]:
    """The public addresses' rows: address, holder, the nodes that list it."""
    rows = []
    for entry in snapshot.addresses:
        hosts = [
            str(n.pnn)
            for n in snapshot.nodes
            if n.addresses is not None and entry.address in n.addresses
        ]
        rows.append((entry.address, _pnn(entry.pnn), ",".join(hosts) or "-"))
    return rows


def _summary(snapshot: Snapshot) -> list[tuple[str, str]]:
    """The lines above the table: (label, value)."""
    leader = _pnn(snapshot.leader)
    if snapshot.leaderAge is None:
        leader = "UNKNOWN (no LEADER broadcast heard)"
    elif snapshot.leaderAge > LEADER_STALE:
        leader += f" (last heard {snapshot.leaderAge:.0f}s ago)"
    active = [n.pnn for n in snapshot.nodes if n.recmode == N.CTDB_RECOVERY_ACTIVE]
    if snapshot.recoveryActive is None:
        recmode = "UNKNOWN"
    elif active:
        recmode = f"ACTIVE (node {', '.join(map(str, active))})"
    else:
        recmode = "NORMAL"
    ref = snapshot.reference
    generation = (
        "UNKNOWN"
        if ref is None or ref.generation is None
        else _generation(ref.generation)
    )
    vnnmap = "UNKNOWN" if ref is None or ref.vnnmap is None else _vnnmap(ref.vnnmap)
    return [
        ("Leader", leader),
        ("Recovery mode", recmode),
        ("Generation", generation),
        ("VNN map", vnnmap),
    ]


def _title(snapshot: Snapshot, localtime: LocalTime) -> str:
    count = sum(1 for n in snapshot.nodes if not n.deleted)
    return (
        f"{count} nodes, seen through node {_pnn(snapshot.pnn)} "
        f"({snapshot.socket}) at {formatTime(snapshot.time, localtime)}"
    )


def _columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(v)) for w, v in zip(widths, row)]
    lines = []
    for row in [header, *rows]:
        cells = [v.ljust(w) for v, w in zip(row, widths)]
        lines.append("  ".join(cells).rstrip())
    return lines


def renderText(
    snapshot: Snapshot,
    events: Sequence[Event] = (),
    *,
    localtime: LocalTime = time.localtime,
) -> str:
    """The snapshot (and C{events}, if any) as plain text."""
    if snapshot.error is not None:
        return f"Cannot see the cluster: ctdbd at {snapshot.socket}: {snapshot.error}\n"
    lines = [_title(snapshot, localtime)]
    lines += [f"{label + ':':<15}{value}" for label, value in _summary(snapshot)]
    lines.append("")
    lines += _columns(NODE_HEADER, nodeRows(snapshot))
    lines.append("")
    if snapshot.addresses:
        lines += _columns(ADDRESS_HEADER, addressRows(snapshot))
    else:
        lines.append("No public addresses")
    if events:
        lines.append("")
        lines.append("Recent events:")
        lines += [f"{formatTime(e.time, localtime)}  {e.text}" for e in events]
    return "\n".join(lines) + "\n"


def snapshotJson(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as a JSON document (C{None} where unknown)."""
    ref = snapshot.reference
    active = snapshot.recoveryActive
    return {
        "time": snapshot.time,
        "socket": snapshot.socket,
        "pnn": F.pnnJson(snapshot.pnn),
        "error": snapshot.error,
        "leader": None if snapshot.leaderAge is None else F.pnnJson(snapshot.leader),
        "leader_age": snapshot.leaderAge,
        "recovery_mode": None if active is None else ("ACTIVE" if active else "NORMAL"),
        "generation": None if ref is None else ref.generation,
        "vnn_map": None if ref is None or ref.vnnmap is None else list(ref.vnnmap),
        "nodes": [
            {
                "pnn": n.pnn,
                "address": n.address,
                "status": n.status,
                "flags": F.flagNames(n.flags),
                "answered": n.answered,
                "error": n.error,
                "recovery_mode": None if n.recmode is None else _recmode(n.recmode),
                "generation": n.generation,
                "vnn_map": None if n.vnnmap is None else list(n.vnnmap),
                "nodemap": (
                    None
                    if n.nodemap is None
                    else [
                        {"pnn": p, "flags": F.flagNames(f), "status": nodeStatus(f)}
                        for p, f in n.nodemap
                    ]
                ),
                "public_addresses": (
                    None if n.addresses is None else list(n.addresses)
                ),
            }
            for n in snapshot.nodes
        ],
        "public_addresses": [
            {"address": a.address, "pnn": F.pnnJson(a.pnn)} for a in snapshot.addresses
        ],
    }


# -- the live view -------------------------------------------------------------


def _statusStyle(text: str) -> str:
    if text == "OK":
        return "bold green"
    if "DISCONNECTED" in text or "BANNED" in text or text.startswith("no answer"):
        return "bold red"
    return "yellow"


def _cell(value: str, column: str) -> Text:
    if column == "STATUS" or (column == "SEES" and value.startswith("no answer")):
        return Text(value, style=_statusStyle(value))
    if value.endswith(" !") or (column == "SEES" and value != "same"):
        return Text(value, style="yellow")
    if column == "RECMODE" and value == "ACTIVE":
        return Text(value, style="bold yellow")
    if column == "ROLE" and "leader" in value:
        return Text(value, style="bold cyan")
    return Text(value)


def _nodeTable(snapshot: Snapshot) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
    for name in NODE_HEADER:
        table.add_column(name, no_wrap=name != "SEES")
    for row in nodeRows(snapshot):
        table.add_row(*(_cell(v, c) for v, c in zip(row, NODE_HEADER)))
    return table


def _addressTable(snapshot: Snapshot) -> RenderableType:
    if not snapshot.addresses:
        return Text("No public addresses", style="dim")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ADDRESS_HEADER:
        table.add_column(name, no_wrap=True)
    for address, pnn, hosts in addressRows(snapshot):
        style = "bold red" if pnn == "UNKNOWN" else ""
        table.add_row(address, Text(pnn, style=style), hosts)
    return table


def renderLive(
    snapshot: Snapshot,
    events: Sequence[Event],
    *,
    lastGood: Snapshot | None,
    interval: float,
    localtime: LocalTime = time.localtime,
) -> RenderableType:
    """
    The live view: the cluster as C{snapshot} saw it (as C{lastGood} did,
    marked stale, when C{snapshot} could not see it), then C{events}.
    """
    parts: list[RenderableType] = []
    seen = snapshot if snapshot.error is None else lastGood
    if snapshot.error is not None:
        parts.append(
            Text(
                f"ctdbd at {snapshot.socket}: {snapshot.error}; trying again "
                f"every {interval:g}s ({formatTime(snapshot.time, localtime)})",
                style="bold white on red",
            )
        )
    if seen is not None:
        title = _title(seen, localtime)
        if seen is not snapshot:
            title += "  [last seen, stale]"
        parts.append(Text(title, style="bold" if seen is snapshot else "dim"))
        summary = Table.grid(padding=(0, 2))
        summary.add_column(style="bold")
        summary.add_column()
        for label, value in _summary(seen):
            summary.add_row(label, value)
        parts.append(summary)
        parts.append(_nodeTable(seen))
        parts.append(_addressTable(seen))
    parts.append(Text(f"Recent events (last {EVENTS_SHOWN}):", style="bold"))
    if events:
        log = Table.grid(padding=(0, 2))
        log.add_column(style="dim")
        log.add_column()
        for event in events[-EVENTS_SHOWN:]:
            log.add_row(formatTime(event.time, localtime), event.text)
        parts.append(log)
    else:
        parts.append(Text("(none yet)", style="dim"))
    parts.append(Text(f"\nRefreshing every {interval:g}s. Ctrl-C quits.", style="dim"))
    return Group(*parts)
