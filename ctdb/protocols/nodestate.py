# -*- test-case-name: tests.protocols.test_controls -*-
"""
What a node says about itself and the cluster, as the controls carry it
(Samba 4.17 ctdb/protocol/protocol.h, protocol_types.c): node flags,
capabilities, recovery modes, run states, the node map, the VNN map and
the ban state.

Pure: no I/O, no Twisted import.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from ctdb.protocols.basictypes import (
    decodeSockAddr,
    decodeU32,
    encodeSockAddr,
    encodeU32,
    need,
)

# Node flags (protocol.h NODE_FLAGS_*)
NODE_FLAGS_DISCONNECTED = 0x01
NODE_FLAGS_UNHEALTHY = 0x02
NODE_FLAGS_PERMANENTLY_DISABLED = 0x04
NODE_FLAGS_BANNED = 0x08
NODE_FLAGS_DELETED = 0x10
NODE_FLAGS_STOPPED = 0x20
NODE_FLAGS_DISABLED = NODE_FLAGS_UNHEALTHY | NODE_FLAGS_PERMANENTLY_DISABLED
NODE_FLAGS_INACTIVE = (
    NODE_FLAGS_DELETED
    | NODE_FLAGS_DISCONNECTED
    | NODE_FLAGS_BANNED
    | NODE_FLAGS_STOPPED
)

# Capabilities
CTDB_CAP_RECMASTER = 0x1
CTDB_CAP_LMASTER = 0x2
CTDB_CAP_PARALLEL_RECOVERY = 0x10000
CTDB_CAP_FRAGMENTED_CONTROLS = 0x20000
CTDB_CAP_DEFAULT = (
    CTDB_CAP_RECMASTER
    | CTDB_CAP_LMASTER
    | CTDB_CAP_PARALLEL_RECOVERY
    | CTDB_CAP_FRAGMENTED_CONTROLS
)

# Recovery modes
CTDB_RECOVERY_NORMAL = 0
CTDB_RECOVERY_ACTIVE = 1


class RunState(IntEnum):
    UNKNOWN = 0
    INIT = 1
    SETUP = 2
    FIRST_RECOVERY = 3
    STARTUP = 4
    RUNNING = 5
    SHUTDOWN = 6


# --- node map ---------------------------------------------------------------


#: ctdbd's node port; GET_NODEMAP carries it in every node's sock_addr.
_CTDB_PORT = 4379


@dataclass(frozen=True, slots=True)
class NodeAndFlags:
    """
    ``struct ctdb_node_and_flags``.  A real 4.17 ctdbd fills in the node's
    port (4379) in the address, so that is the default here too: our
    GET_NODEMAP reply is then byte-identical to Samba's.
    """

    pnn: int
    flags: int
    address: str
    port: int = _CTDB_PORT


def encodeNodeMap(nodes: list[NodeAndFlags]) -> bytes:
    parts = [encodeU32(len(nodes))]
    for n in nodes:
        parts.append(
            struct.pack("<II", n.pnn, n.flags) + encodeSockAddr(n.address, n.port)
        )
    return b"".join(parts)


def decodeNodeMap(buf: bytes) -> list[NodeAndFlags]:
    num = decodeU32(buf, "node_map")
    need(buf, 4 + num * 36, "node_map")
    out = []
    for i in range(num):
        off = 4 + i * 36
        pnn, flags = struct.unpack_from("<II", buf, off)
        address, port = decodeSockAddr(buf[off + 8 : off + 36])
        out.append(NodeAndFlags(pnn, flags, address, port))
    return out


# --- vnn map ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VnnMap:
    generation: int
    map: tuple[int, ...]

    def encode(self) -> bytes:
        return struct.pack(
            f"<II{len(self.map)}I", self.generation, len(self.map), *self.map
        )

    @classmethod
    def decode(cls, buf: bytes) -> VnnMap:
        need(buf, 8, "vnn_map")
        generation, size = struct.unpack_from("<II", buf)
        need(buf, 8 + 4 * size, "vnn_map")
        return cls(generation, struct.unpack_from(f"<{size}I", buf, 8))


# --- ban state ----------------------------------------------------------------


def encodeBanState(pnn: int, seconds: int) -> bytes:
    return struct.pack("<II", pnn, seconds)


def decodeBanState(buf: bytes) -> tuple[int, int]:
    need(buf, 8, "ban_state")
    return struct.unpack_from("<II", buf)
