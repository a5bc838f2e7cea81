# -*- test-case-name: tests.integration.test_ctdbd_dropin -*-
"""
``ctdb dumpmemory`` and ``ctdb rddumpmemory``: the DUMP_MEMORY control and
the CTDB_SRVID_MEM_DUMP message, answered with a report in the format of
talloc_report_full (which Samba's debug.003.dumpmemory test reads).
"""

from __future__ import annotations

from typing import Any

CTDB_SRVID_MEM_DUMP = 0xF800000000000000


def memoryReport(daemon: Any) -> bytes:
    """
    What ctdbd's DUMP_MEMORY answers: a talloc full report.  Ours lists the
    daemon's main objects with their sizes as Python counts them, in
    talloc_report_full's format (which debug.003.dumpmemory checks).
    """
    import gc
    import sys as _sys

    entries: list[tuple[int, str, object]] = [(1, "struct ctdb_context", daemon)]
    for node in getattr(daemon, "nodes", []):
        entries.append((2, "struct ctdb_node", node))
    for client in getattr(daemon, "clients", {}).values():
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
        value = getattr(daemon, name, None)
        if value is not None:
            entries.append((2, f"struct {name}", value))
    for db in getattr(getattr(daemon, "databases", None), "values", list)():
        entries.append((2, "struct ctdb_db_context", db))
    sizes = [
        _sys.getsizeof(obj)
        + sum(_sys.getsizeof(v) for v in getattr(obj, "__dict__", {}).values())
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


def installMemoryDump(daemon: Any) -> None:
    """DUMP_MEMORY and the recovery daemon's CTDB_SRVID_MEM_DUMP message
    (``ctdb dumpmemory`` / ``ctdb rddumpmemory``)."""
    import struct

    from ctdb.protocols.controls import Control

    daemon.controls.table[Control.DUMP_MEMORY] = lambda req, client: (
        0,
        memoryReport(daemon),
        b"",
    )

    def memDump(srvid: int, data: bytes) -> None:
        if len(data) != 16:
            return
        pnn, _pad, replySrvid = struct.unpack("<IIQ", data)
        daemon.sendMessage(pnn, replySrvid, memoryReport(daemon))

    daemon.addMessageHandler(CTDB_SRVID_MEM_DUMP, memDump)
