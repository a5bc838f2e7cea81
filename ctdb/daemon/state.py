# -*- test-case-name: tests.daemon.test_core -*-
"""
The daemon core's plain data: what it knows of each node, its
configuration, pending controls, and the protocol numbers its dispatch
compares.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall

from ctdb.nodes import NodeMap
from ctdb.protocols import packet as P
from ctdb.protocols.debuglevels import DEBUG_NOTICE
from ctdb.protocols.nodestate import (
    NODE_FLAGS_DELETED,
    NODE_FLAGS_DISCONNECTED,
    NodeAndFlags,
)

SAMBA_VERSION = (4 << 16) | 17

#: statistics counter of each operation received from a node
_NODE_STAT = {
    int(op): "node." + op.name.lower()
    for op in P.Operation
    if op not in (P.Operation.REQ_KEEPALIVE,)
}

#: The record protocol's packets.  One of these for a node whose link is not
#: (yet) up is held and sent when the link comes up, if the generation is
#: still the same: a recovery may include a node that is connected to the
#: leader before every other node's link to it is up, and a REQ_DMASTER or
#: REPLY_DMASTER lost in that window leaves the lmaster and the old dmaster
#: pointing at each other (a REQ_CALL then bounces between them for ever).
_CALL_OPERATIONS = frozenset(
    {
        P.Operation.REQ_CALL,
        P.Operation.REPLY_CALL,
        P.Operation.REQ_DMASTER,
        P.Operation.REPLY_DMASTER,
        P.Operation.REPLY_ERROR,
    }
)

#: operation numbers as plain ints, for the dispatch on every packet
_OP_REQ_CALL = int(P.Operation.REQ_CALL)
_OP_REQ_MESSAGE = int(P.Operation.REQ_MESSAGE)
_OP_REQ_CONTROL = int(P.Operation.REQ_CONTROL)
_OP_REPLY_CONTROL = int(P.Operation.REPLY_CONTROL)
_OP_REQ_KEEPALIVE = int(P.Operation.REQ_KEEPALIVE)
_OP_REQ_TUNNEL = int(P.Operation.REQ_TUNNEL)
_UNREACHABLE = NODE_FLAGS_DELETED | NODE_FLAGS_DISCONNECTED

#: at most this many record-protocol packets are held for one node
MAX_HELD_PACKETS = 10000

#: The daemon's answer to a control: (status, data, errmsg).
ControlResult = tuple[int, bytes, bytes]


def keepaliveVersion() -> int:
    """4.17's keepalive version, overridable by CTDB_TEST_SAMBA_VERSION."""
    text = os.environ.get("CTDB_TEST_SAMBA_VERSION")
    if text:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value > 0:
            return value
    return SAMBA_VERSION


@dataclass
class Node:
    """What this daemon knows about one node of the nodes file."""

    pnn: int
    address: str
    flags: int
    rx_cnt: int = 0
    tx_cnt: int = 0
    dead_count: int = 0

    def asNodeAndFlags(self, port: int = P.CTDB_PORT) -> NodeAndFlags:
        return NodeAndFlags(self.pnn, self.flags, self.address, port)


@dataclass
class _PendingControl:
    destnode: int
    deferred: defer.Deferred[P.ReplyControl] | None
    timer: IDelayedCall | None
    #: forwarded client controls: called with the reply, no Deferred/timer
    onReply: Callable[[P.ReplyControl], None] | None = None
    deadline: float = 0.0
    #: forwarded client controls: called instead of C{onReply} with the
    #: reply's bytes when they can be relayed as they are
    #: (L{ctdb.protocols.packet.routeReplyControl})
    onRawReply: Callable[[bytes], None] | None = None

    def fire(self, reply: P.ReplyControl) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        if self.onReply is not None:
            self.onReply(reply)
        elif self.deferred is not None:
            self.deferred.callback(reply)


@dataclass
class DaemonConfig:
    nodeMap: NodeMap
    pnn: int
    nodesFile: str = ""
    socketPath: str = ""
    dbDirVolatile: str = ""
    dbDirPersistent: str = ""
    dbDirState: str = ""
    port: int = P.CTDB_PORT
    logLevel: int = DEBUG_NOTICE
    recoveryLock: str = ""
    tunables: dict[str, int] = field(default_factory=dict)
