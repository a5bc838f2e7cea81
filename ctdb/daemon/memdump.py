# -*- test-case-name: tests.daemon.test_statistics_memdump -*-
"""
``ctdb dumpmemory`` and ``ctdb rddumpmemory``: the DUMP_MEMORY control and
the CTDB_SRVID_MEM_DUMP message.

ctdbd answers with talloc_report_full of its memory: a tree of what it
allocated, each line a chunk with the bytes and blocks under it.  We have
no talloc; we answer with figures measured at the call, in the same shape
(which Samba's debug.003.dumpmemory test reads line by line):

 - C{full talloc report on 'ctdb_context'}: the daemon's state, one line per
   part (each node, each client, each database, the tunables, statistics,
   pending controls, ...).  A part's bytes are the C{sys.getsizeof} of every
   object reachable from it (functions, classes, modules, bound methods
   and the daemon and reactor themselves are not followed, and an object
   reachable from two parts counts in the first only); its blocks are the
   number of those objects; the address is the part's C{id()}.
 - C{full talloc report on 'process <pid>'}: the process as the kernel and
   the garbage collector see it: resident, peak and data sizes from
   /proc/self/status (blocks: pages), and for each garbage collector
   generation the objects it tracks and their size, with how many
   collections ran.

docs/STATISTICS.md describes the format.
"""

from __future__ import annotations

import gc
import os
import struct
import sys
import types
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ctdb.daemon.statistics import processMemory
from ctdb.protocols.controls import Control
from ctdb.protocols.srvids import CTDB_SRVID_MEM_DUMP

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon

__all__ = ["installMemoryDump", "measure", "memoryReport"]

#: objects not followed when measuring a part: code and types are shared
#: by the whole program, and a bound method leads to another subsystem
_NOT_FOLLOWED = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    types.FrameType,
)

#: at most this many objects are visited for one report, so that a huge
#: database cache cannot stall the reactor; the figures are then lower
#: bounds, and the report says so in its title
MAX_OBJECTS = 2_000_000


def measure(root: object, seen: set[int], budget: list[int]) -> tuple[int, int]:
    """The bytes and number of the objects reachable from C{root} that are
    not in C{seen} (ids), which it adds to C{seen}; C{budget} is a
    one-element list of how many objects may still be visited."""
    if id(root) in seen:
        return 0, 0
    size = 0
    count = 0
    stack = [root]
    seen.add(id(root))
    while stack and budget[0] > 0:
        obj = stack.pop()
        budget[0] -= 1
        try:
            size += sys.getsizeof(obj)
        except TypeError:  # an extension object without a size
            pass
        count += 1
        for ref in gc.get_referents(obj):
            if id(ref) in seen or isinstance(ref, _NOT_FOLLOWED):
                continue
            seen.add(id(ref))
            stack.append(ref)
    return size, count


def _line(depth: int, name: str, size: int, blocks: int, address: int) -> str:
    # talloc_report_depth_FILE_helper's format
    return (
        f"{'    ' * depth}{name:<30} contains {size:6} bytes in {blocks:3} blocks "
        f"(ref 0) 0x{address:x}"
    )


def _parts(daemon: Daemon) -> list[tuple[str, object]]:
    """The daemon's parts, as talloc names."""
    parts: list[tuple[str, object]] = [
        ("struct ctdb_node", node) for node in daemon.nodes
    ]
    parts += [("struct ctdb_client", client) for client in daemon.clients.values()]
    parts += [
        ("struct ctdb_tunable_list", daemon.tunables),
        ("struct ctdb_statistics", daemon.stats),
        ("struct ctdb_vnn_map", daemon.vnnMap),
        ("srvid registrations", daemon.srvids),
        ("tunnels", daemon.tunnels),
        ("pending controls", daemon._pending),
        ("held packets", daemon._heldPackets),
        ("struct ctdb_node_transport", daemon.transport),
        ("struct ctdb_config", daemon.config),
    ]
    for source in daemon.statisticsSources:
        parts += source.memoryObjects()
    return parts


def _daemonReport(daemon: Daemon, budget: list[int]) -> list[str]:
    parts = _parts(daemon)
    # Measuring one part never wanders into another, nor back up into the
    # daemon or out to the reactor.
    seen = {id(daemon), id(daemon.reactor)} | {id(obj) for _, obj in parts}
    lines = []
    totalSize = sys.getsizeof(daemon)
    totalBlocks = 1
    for name, obj in parts:
        seen.discard(id(obj))
        size, blocks = measure(obj, seen, budget)
        totalSize += size
        totalBlocks += blocks
        lines.append(_line(1, name, size, blocks, id(obj)))
    return [_title("ctdb_context", totalSize, totalBlocks, budget), *lines]


def _title(name: str, size: int, blocks: int, budget: list[int]) -> str:
    cut = " (cut short)" if budget[0] <= 0 else ""
    return f"full talloc report on '{name}'{cut} (total {size:6} bytes in {blocks:3} blocks)"


def _processReport() -> list[str]:
    memory = processMemory()
    page = memory.get("pagesize", 4096)
    lines = [
        (
            f"full talloc report on 'process {os.getpid()}' (total "
            f"{memory.get('rss', 0):6} bytes in {sys.getallocatedblocks():3} blocks)"
        )
    ]
    for key, name in (
        ("rss", "VmRSS resident"),
        ("hwm", "VmHWM peak resident"),
        ("data", "VmData heap and anonymous"),
        ("size", "VmSize address space"),
    ):
        if key in memory:
            lines.append(_line(1, name, memory[key], memory[key] // page, 0))
    stats = gc.get_stats()
    for generation in range(len(stats)):
        objects: Iterable[object] = gc.get_objects(generation)
        size = 0
        count = 0
        for obj in objects:
            try:
                size += sys.getsizeof(obj)
            except TypeError:
                pass
            count += 1
        collected = stats[generation]
        lines.append(
            _line(
                1,
                f"gc generation {generation} ({collected['collections']} "
                f"collections, {collected['collected']} collected)",
                size,
                count,
                0,
            )
        )
    return lines


def memoryReport(daemon: Daemon) -> bytes:
    """What DUMP_MEMORY answers: the daemon's parts and the process's
    figures, measured now, in talloc_report_full's shape."""
    budget = [MAX_OBJECTS]
    lines = _daemonReport(daemon, budget) + _processReport()
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
