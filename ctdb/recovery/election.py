# -*- test-case-name: tests.recovery.test_election -*-
"""
Leader election rules of Samba 4.17 (ctdb_recoverd.c): the election message
and ctdb_election_win.  Pure; time is passed in.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ctdb.errors import MalformedPacket
from ctdb.protocols.nodestate import NODE_FLAGS_INACTIVE

_ELECTION = struct.Struct("<I4xqqII")


@dataclass(frozen=True, slots=True)
class ElectionMessage:
    """``struct election_message`` (32 bytes)."""

    num_connected: int
    priority_time: float
    pnn: int
    node_flags: int

    def encode(self) -> bytes:
        sec = int(self.priority_time)
        usec = round((self.priority_time - sec) * 1e6)
        return _ELECTION.pack(self.num_connected, sec, usec, self.pnn, self.node_flags)

    @classmethod
    def decode(cls, buf: bytes) -> ElectionMessage:
        if len(buf) < _ELECTION.size:
            raise MalformedPacket(f"election message: {len(buf)} bytes")
        num, sec, usec, pnn, flags = _ELECTION.unpack_from(buf)
        return cls(num, sec + usec / 1e6, pnn, flags)


def electionWin(
    mine: ElectionMessage, theirs: ElectionMessage, canBeLeader: bool
) -> bool:
    """
    ctdb_election_win: would we rather lead than C{theirs}?

    A node that cannot lead never wins; against a banned or stopped sender it
    always does; otherwise the longest-running node (earliest priority time)
    wins and, on equal times, the B{higher} pnn: 4.17 computes
    C{cmp = myem.pnn - em->pnn} and wins when C{cmp > 0}.
    """
    if not canBeLeader:
        return False
    if theirs.node_flags & NODE_FLAGS_INACTIVE:
        return True
    mineT = round(mine.priority_time, 6)
    theirT = round(theirs.priority_time, 6)
    if theirT != mineT:
        return theirT > mineT
    return mine.pnn > theirs.pnn


def encodeFlagChange(pnn: int, newFlags: int, oldFlags: int) -> bytes:
    """``struct ctdb_node_flag_change`` {pnn, new_flags, old_flags}."""
    return struct.pack("<III", pnn, newFlags, oldFlags)


def decodeFlagChange(buf: bytes) -> tuple[int, int, int]:
    if len(buf) < 12:
        raise MalformedPacket("node_flag_change: short")
    return struct.unpack_from("<III", buf)
