# -*- test-case-name: tests.integration.test_ctdbd_dropin -*-
"""
``ctdb dumpmemory`` and ``ctdb rddumpmemory``: the DUMP_MEMORY control and
the CTDB_SRVID_MEM_DUMP message, answered with a report in the format of
talloc_report_full (which Samba's debug.003.dumpmemory test reads).
"""

from __future__ import annotations

import gc
import struct
import sys
from typing import TYPE_CHECKING

from ctdb.protocols.controls import Control
from ctdb.protocols.srvids import CTDB_SRVID_MEM_DUMP

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon


def memoryReport(daemon: Daemon) -> bytes:
    """
    What ctdbd's DUMP_MEMORY answers: a talloc full report.  Ours lists the
    daemon's main objects with their sizes as Python counts them, in
    talloc_report_full's format (which debug.003.dumpmemory checks).
    """
    entries: list[tuple[int, str, object]] = [(1, "struct ctdb_context", daemon)]
    for node in daemon.nodes:
        entries.append((2, "struct ctdb_node", node))
    for client in daemon.clients.values():
        entries.append((2, "struct ctdb_client", client))
    for name in (
        "tunables",
        "stats",
        "vnnMap",
        "srvids",
        "tunnels",
        "controls",
        "internalHandlers",
        "transport",
        "config",
    ):
        entries.append((2, f"struct {name}", getattr(daemon, name)))
    for source in daemon.statisticsSources:
        for name, obj in source.memoryObjects():
            entries.append((2, name, obj))
    sizes = [
        sys.getsizeof(obj)
        + sum(sys.getsizeof(v) for v in getattr(obj, "__dict__", {}).values())
        for _, _, obj in entries
    ]
    total = sum(sizes)
    lines = [
        (
            f"full talloc report on 'ctdb_context' (total {total} bytes in "
            f"{len(entries) + len(gc.get_objects()) // 1000} blocks)"
        )
    ]
    for (depth, name, obj), size in zip(entries, sizes):
        lines.append(
            f"{'    ' * depth}{name:<30} contains {size:6} bytes in {1:3} blocks "
            f"(ref 0) 0x{id(obj):x}"
        )
    return ("\n".join(lines) + "\n").encode()


def installMemoryDump(daemon: Daemon) -> None:
    """DUMP_MEMORY and the recovery daemon's CTDB_SRVID_MEM_DUMP message
    (``ctdb dumpmemory`` / ``ctdb rddumpmemory``)."""
    daemon.controls.register(
        Control.DUMP_MEMORY, lambda req, client: (0, memoryReport(daemon), b"")
    )

    def memDump(srvid: int, data: bytes) -> None:
        if len(data) != 16:
            return
        pnn, _pad, replySrvid = struct.unpack("<IIQ", data)
        daemon.sendMessage(pnn, replySrvid, memoryReport(daemon))

    daemon.addMessageHandler(CTDB_SRVID_MEM_DUMP, memDump)
