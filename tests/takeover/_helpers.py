# -*- test-case-name: tests.takeover.test_node -*-
"""
What the node-side takeover tests share: a cluster of L{connectedNodes} with
public addresses on L{FakeAddressSystem}s, a recording event runner, and
Samba 4.17's structs packed by hand (the golden answers).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from ctdb.interfaces import IEventRunner
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.takeover.fake import FakeAddressSystem
from ctdb.takeover.node import PublicAddresses
from ctdb.testing import FakeClient, FakeCluster, connectedNodes

UNKNOWN = 0xFFFFFFFF

#: two addresses on every node: A on eth0 only, B on eth0 or eth1
ADDRESSES = "10.0.0.31/24 eth0\n10.0.0.32/24 eth0,eth1\n"
A = "10.0.0.31"
B = "10.0.0.32"


def sockAddr(address: str, port: int = 0) -> bytes:
    """ctdb_sock_addr, 28 bytes, as a C compiler lays it out."""
    if ":" in address:
        return struct.pack("<H", socket.AF_INET6) + struct.pack(
            ">HI16sI", port, 0, socket.inet_pton(socket.AF_INET6, address), 0
        )
    return (
        struct.pack("<H", socket.AF_INET)
        + struct.pack(">H", port)
        + socket.inet_aton(address)
        + bytes(20)
    )


def publicIp(pnn: int, address: str) -> bytes:
    """struct ctdb_public_ip."""
    return struct.pack("<I", pnn) + sockAddr(address)


def iface(name: str, link: int, refs: int) -> bytes:
    """struct ctdb_iface: char name[18], uint16 link_state, uint32 references."""
    return name.encode().ljust(18, b"\0") + struct.pack("<HI", link, refs)


def connection(src: tuple[str, int], dst: tuple[str, int]) -> bytes:
    """struct ctdb_connection."""
    return sockAddr(*src) + sockAddr(*dst)


def addrInfo(address: str, mask: int, ifaces: str | None) -> bytes:
    """struct ctdb_addr_info_old as the tool sends it."""
    raw = b"" if ifaces is None else ifaces.encode() + b"\0"
    return sockAddr(address) + struct.pack("<II", mask, len(raw)) + raw


@implementer(IEventRunner)
class RecordingEvents:
    """An event runner that records (event, args) and answers C{results}
    (0 unless told), or holds an event's Deferred when told to."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.results: dict[str, int] = {}
        self.hold: set[str] = set()
        self.held: list[defer.Deferred[int]] = []

    def runEvent(self, event: str, args: str | None = None) -> defer.Deferred[int]:
        self.calls.append((event, args))
        if event in self.hold:
            d: defer.Deferred[int] = defer.Deferred()
            self.held.append(d)
            return d
        return defer.succeed(self.results.get(event, 0))


class Pending(NamedTuple):
    """A control sent and not answered yet."""

    client: FakeClient
    reqid: int


class TakeoverCase(SynchronousTestCase):
    """Three nodes, each with L{ADDRESSES} (or C{addresses}) and its own
    fake host."""

    addresses: str | dict[int, str] = ADDRESSES
    byScripts = False

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster: FakeCluster = connectedNodes(
            3,
            self.clock,
            publicAddresses=self.addresses,
            addressesByScripts=self.byScripts,
        )
        self.addCleanup(self.cluster.stop)

    def node(self, pnn: int) -> PublicAddresses:
        return self.cluster.takeover(pnn)

    def host(self, pnn: int) -> FakeAddressSystem:
        return self.cluster.addressSystems[pnn]

    def call(
        self,
        pnn: int,
        opcode: int,
        data: bytes = b"",
        *,
        flags: int = 0,
        client: FakeClient | None = None,
        destnode: int = P.CTDB_CURRENT_NODE,
    ) -> P.ReplyControl:
        """A control from a local client of node C{pnn}; its reply."""
        c = client or self.cluster.client(pnn)
        reqid = c.control(opcode, data, flags=flags, destnode=destnode)
        self.cluster.flush()
        reply = c.reply(reqid)
        assert reply is not None, "no reply"
        return reply

    def assertOk(self, reply: P.ReplyControl) -> bytes:
        self.assertEqual(reply.status, 0, reply.errmsg)
        return reply.data

    def assertFails(self, reply: P.ReplyControl, status: int = -1) -> None:
        self.assertEqual(reply.status, status, reply.errmsg)
        self.assertEqual(reply.data, b"")

    def start(self, pnn: int, opcode: int, data: bytes = b"") -> Pending:
        """A control from a local client of node C{pnn} that is not
        answered yet (an event or a kill holds it); see L{finish}."""
        c = self.cluster.client(pnn)
        reqid = c.control(opcode, data)
        self.cluster.flush()
        assert c.reply(reqid) is None, "answered at once"
        return Pending(c, reqid)

    def finish(self, pending: Pending) -> P.ReplyControl:
        """The reply to a control of L{start}, once what held it is done."""
        self.cluster.flush()
        reply = pending.client.reply(pending.reqid)
        assert reply is not None, "no reply yet"
        return reply

    def take(self, pnn: int, address: str) -> P.ReplyControl:
        return self.call(pnn, Control.TAKEOVER_IP, publicIp(pnn, address))

    def release(self, pnn: int, address: str, target: int) -> P.ReplyControl:
        return self.call(pnn, Control.RELEASE_IP, publicIp(target, address))


def loggedErrors(events: Sequence[dict[str, Any]]) -> list[str]:
    """The text of the error and critical events."""
    return [
        formatEvent(e)
        for e in events
        if e.get("log_level") in (LogLevel.error, LogLevel.critical)
    ]


def failures(events: Sequence[dict[str, Any]]) -> list[str]:
    """The failures (tracebacks) logged: a handler raised what it should
    have refused."""
    return [formatEvent(e) for e in events if e.get("log_failure") is not None]


__all__ = [
    "ADDRESSES",
    "UNKNOWN",
    "A",
    "B",
    "Pending",
    "RecordingEvents",
    "TakeoverCase",
    "addrInfo",
    "capturedLogs",
    "connection",
    "failures",
    "iface",
    "loggedErrors",
    "publicIp",
    "sockAddr",
]
