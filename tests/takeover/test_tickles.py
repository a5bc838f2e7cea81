# -*- test-case-name: tests.takeover.test_tickles -*-
"""
Tests for L{ctdb.takeover.tickles}: TCP_CLIENT, TCP_ADD(_DELAYED_UPDATE),
TCP_REMOVE, GET/SET_TCP_TICKLE_LIST, STARTUP and SEND_GRATUITOUS_ARP, and
how tickle lists travel between nodes, as Samba 4.17's ctdbd does it;
and what a client or peer may send about connections (IPv4-mapped ends,
clients that go at once or are gone, huge counts).
"""

from __future__ import annotations

import struct

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.takeover.tickles import connectionString
from ctdb.testing import connectedNodes
from tests.takeover._helpers import (
    A,
    B,
    TakeoverCase,
    addrInfo,
    capturedLogs,
    connection,
    loggedErrors,
    sockAddr,
)

CLIENT1 = ("10.0.0.99", 40001)
CLIENT2 = ("10.0.0.98", 40002)
CLIENT3 = ("10.0.0.97", 40003)


def tickleList(address: str, port: int, *conns: bytes) -> bytes:
    """struct ctdb_tickle_list_old."""
    return sockAddr(address, port) + struct.pack("<I", len(conns)) + b"".join(conns)


class TickleCase(TakeoverCase):
    """L{TakeoverCase} with a look at every node's list."""

    def assertEverywhere(self, expected: bytes) -> None:
        """Every node answers GET_TCP_TICKLE_LIST of A with C{expected}."""
        for pnn in range(3):
            data = self.assertOk(
                self.call(pnn, Control.GET_TCP_TICKLE_LIST, sockAddr(A))
            )
            self.assertEqual(data, expected, pnn)


class RegisterTests(TickleCase):
    """TCP_CLIENT: smbd's registration, propagated with TCP_ADD."""

    def test_clientPropagated(self) -> None:
        """A connection to an address this node hosts reaches every node's
        tickle list."""
        self.assertOk(self.take(0, A))
        self.assertOk(self.call(0, Control.TCP_CLIENT, connection(CLIENT1, (A, 445))))
        self.assertEverywhere(tickleList(A, 0, connection(CLIENT1, (A, 445))))

    def test_clientNotHosted(self) -> None:
        """A connection to an address another node hosts fails (smbd then
        drops it)."""
        self.assertOk(self.release(0, A, 1))
        smbd = self.cluster.client(0, pid=4242)
        with capturedLogs() as events:
            self.assertFails(
                self.call(
                    0, Control.TCP_CLIENT, connection(CLIENT1, (A, 445)), client=smbd
                )
            )
        self.assertEqual(
            loggedErrors(events),
            [
                (
                    "Attempt to register tcp client for IP 10.0.0.31 we don't hold - "
                    f"failing (client_id {smbd.client_id} pid 4242)"
                )
            ],
        )

    def test_clientNotPublic(self) -> None:
        """A connection to a non-public address is logged and accepted; one
        to 127.0.0.1 silently."""
        smbd = self.cluster.client(0, pid=4242)
        with capturedLogs() as events:
            self.assertOk(
                self.call(
                    0,
                    Control.TCP_CLIENT,
                    connection(CLIENT1, ("127.0.0.1", 445)),
                    client=smbd,
                )
            )
            self.assertOk(
                self.call(
                    0,
                    Control.TCP_CLIENT,
                    connection(CLIENT1, ("10.5.5.5", 445)),
                    client=smbd,
                )
            )
        self.assertEqual(
            loggedErrors(events),
            [
                (
                    "Could not register TCP connection from 10.0.0.99 to 10.5.5.5 (not "
                    f"a public address) (port 445) (client_id {smbd.client_id} pid 4242)."
                )
            ],
        )

    def test_noPublicAddresses(self) -> None:
        """A node without public addresses keeps nothing and answers 0, to
        TCP_CLIENT, TCP_ADD and TCP_REMOVE alike (smbd sends them anyway)."""
        cluster = connectedNodes(1, Clock())
        self.addCleanup(cluster.stop)
        client = cluster.client(0)
        data = connection(CLIENT1, ("127.0.0.2", 445))
        for opcode in (Control.TCP_CLIENT, Control.TCP_ADD, Control.TCP_REMOVE):
            reqid = client.control(opcode, data)
            cluster.flush()
            reply = client.reply(reqid)
            assert reply is not None
            self.assertEqual(reply.status, 0)
        noreply = client.control(
            Control.TCP_CLIENT, data, flags=P.CTDB_CTRL_FLAG_NOREPLY
        )
        cluster.flush()
        self.assertIsNone(client.reply(noreply))
        self.assertEqual(cluster.takeover(0).clientTickles, {})

    def test_clientGoneDropsEntries(self) -> None:
        """When the client goes, its connections leave the list of the
        hosting node, which pushes the new list to the others."""
        self.assertOk(self.take(0, A))
        self.clock.advance(3)
        smbd = self.cluster.client(0)
        self.assertOk(
            self.call(0, Control.TCP_CLIENT, connection(CLIENT1, (A, 445)), client=smbd)
        )
        self.assertOk(self.call(0, Control.TCP_CLIENT, connection(CLIENT2, (A, 445))))
        smbd.disconnect()
        data = self.assertOk(self.call(0, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, tickleList(A, 0, connection(CLIENT2, (A, 445))))
        # the others still have both until the periodic update
        data = self.assertOk(self.call(1, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(len(data), 32 + 2 * 56)
        self.cluster.advance(20)
        data = self.assertOk(self.call(1, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, tickleList(A, 0, connection(CLIENT2, (A, 445))))

    def test_clientGoneAfterMove(self) -> None:
        """The connections of an address that moved stay (the new host
        tickles them)."""
        self.assertOk(self.take(0, A))
        smbd = self.cluster.client(0)
        self.assertOk(
            self.call(0, Control.TCP_CLIENT, connection(CLIENT1, (A, 445)), client=smbd)
        )
        self.node(0).table.find(A).pnn = 1  # type: ignore[union-attr]
        smbd.disconnect()
        data = self.assertOk(self.call(0, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, tickleList(A, 0, connection(CLIENT1, (A, 445))))


class ListTests(TakeoverCase):
    """TCP_ADD, TCP_REMOVE and the whole-list controls."""

    def add(self, pnn: int, client: tuple[str, int], port: int = 445) -> None:
        self.assertOk(
            self.call(
                pnn, Control.TCP_ADD_DELAYED_UPDATE, connection(client, (A, port))
            )
        )

    def test_addIsIdempotent(self) -> None:
        """The same connection twice is kept once."""
        self.add(1, CLIENT1)
        self.add(1, CLIENT1)
        data = self.assertOk(self.call(1, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, tickleList(A, 0, connection(CLIENT1, (A, 445))))

    def test_addNotPublic(self) -> None:
        """TCP_ADD for an address that is not public fails."""
        self.assertFails(
            self.call(0, Control.TCP_ADD, connection(CLIENT1, ("10.8.8.8", 1)))
        )

    def test_removeSwapsLast(self) -> None:
        """Removal moves the last connection into the hole (ctdbd's array),
        so the order of what is left is ctdbd's order."""
        for c in (CLIENT1, CLIENT2, CLIENT3):
            self.add(1, c)
        self.assertOk(self.call(1, Control.TCP_REMOVE, connection(CLIENT1, (A, 445))))
        data = self.assertOk(self.call(1, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(
            data,
            tickleList(
                A, 0, connection(CLIENT3, (A, 445)), connection(CLIENT2, (A, 445))
            ),
        )
        # an unknown one, and one of an unknown address, are fine
        self.assertOk(self.call(1, Control.TCP_REMOVE, connection(CLIENT1, (A, 445))))
        self.assertOk(
            self.call(1, Control.TCP_REMOVE, connection(CLIENT1, ("10.8.8.8", 1)))
        )

    def test_getByPort(self) -> None:
        """A port in the request selects the connections to that port; the
        answer echoes the request's address."""
        self.add(1, CLIENT1, 445)
        self.add(1, CLIENT2, 2049)
        data = self.assertOk(
            self.call(1, Control.GET_TCP_TICKLE_LIST, sockAddr(A, 2049))
        )
        self.assertEqual(data, tickleList(A, 2049, connection(CLIENT2, (A, 2049))))

    def test_getNotPublic(self) -> None:
        """An address that is not public answers status 1 and no data."""
        self.assertFails(
            self.call(1, Control.GET_TCP_TICKLE_LIST, sockAddr("10.8.8.8")), 1
        )
        self.assertFails(self.call(1, Control.GET_TCP_TICKLE_LIST, sockAddr(A)[:-1]))

    def test_setReplaces(self) -> None:
        """SET_TCP_TICKLE_LIST replaces a non-hosting node's list."""
        self.add(1, CLIENT1)
        new = tickleList(A, 0, connection(CLIENT2, (A, 445)))
        self.assertOk(self.call(1, Control.SET_TCP_TICKLE_LIST, new))
        data = self.assertOk(self.call(1, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, new)

    def test_setIgnoredByHost(self) -> None:
        """The hosting node keeps its own list."""
        self.assertOk(self.take(1, A))
        self.add(1, CLIENT1)
        self.assertOk(self.call(1, Control.SET_TCP_TICKLE_LIST, tickleList(A, 0)))
        data = self.assertOk(self.call(1, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, tickleList(A, 0, connection(CLIENT1, (A, 445))))

    def test_setInvalid(self) -> None:
        """Too short for its count, or for the count itself: -1; an address
        that is not public: 1."""
        full = tickleList(A, 0, connection(CLIENT2, (A, 445)))
        with capturedLogs() as events:
            self.assertFails(self.call(1, Control.SET_TCP_TICKLE_LIST, full[:-1]))
            self.assertFails(self.call(1, Control.SET_TCP_TICKLE_LIST, full[:30]))
        self.assertEqual(
            loggedErrors(events),
            [
                "Bad indata in ctdb_tickle_list",
                (
                    "Bad indata in ctdb_tickle_list. Not enough data for the "
                    "tickle.num field"
                ),
            ],
        )
        self.assertFails(
            self.call(1, Control.SET_TCP_TICKLE_LIST, tickleList("10.8.8.8", 0)), 1
        )

    def test_periodicPush(self) -> None:
        """Every TickleUpdateInterval the hosting node sends each changed
        list to all nodes; unchanged ones are not sent again."""
        self.assertOk(self.take(0, A))
        self.cluster.advance(3)
        self.add(0, CLIENT1)  # delayed update: only node 0 knows yet
        data = self.assertOk(self.call(2, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, tickleList(A, 0))
        self.cluster.advance(20)
        data = self.assertOk(self.call(2, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, tickleList(A, 0, connection(CLIENT1, (A, 445))))
        self.assertFalse(self.node(0).table.find(A).tickleUpdateNeeded)  # type: ignore[union-attr]

    def test_startupForcesPush(self) -> None:
        """STARTUP from a node makes the host send every list at once."""
        self.assertOk(self.take(0, A))
        self.cluster.advance(3)
        self.add(0, CLIENT1)
        self.node(0).table.find(A).tickleUpdateNeeded = False  # type: ignore[union-attr]
        self.assertOk(self.call(0, Control.STARTUP))
        self.cluster.flush()
        data = self.assertOk(self.call(2, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, tickleList(A, 0, connection(CLIENT1, (A, 445))))

    def test_startedNodeGetsLists(self) -> None:
        """A node that ends its first recovery broadcasts STARTUP; the
        others send it their lists."""
        self.assertOk(self.take(0, A))
        self.cluster.advance(3)
        self.add(0, CLIENT1)
        self.node(0).table.find(A).tickleUpdateNeeded = False  # type: ignore[union-attr]
        self.node(2).recoveryEnded(True)
        self.cluster.flush()
        data = self.assertOk(self.call(2, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, tickleList(A, 0, connection(CLIENT1, (A, 445))))

    def test_newHostTicklesReplicatedClients(self) -> None:
        """After a move the new host tickles the clients the old one
        registered: the list travelled with TCP_ADD."""
        self.assertOk(self.take(0, A))
        self.assertOk(self.call(0, Control.TCP_CLIENT, connection(CLIENT1, (A, 445))))
        self.cluster.crash(0)
        self.assertOk(self.release(2, A, 1))
        self.assertOk(self.take(1, A))
        self.assertIn(("tickle", (A, 445), CLIENT1), self.host(1).calls)


class GratuitousArpTests(TakeoverCase):
    """SEND_GRATUITOUS_ARP (ctdb gratarp)."""

    def test_threeArps(self) -> None:
        """Three ARPs a second apart on the named interface."""
        self.assertOk(self.call(1, Control.SEND_GRATUITOUS_ARP, addrInfo(B, 0, "eth1")))
        arps = lambda: [c for c in self.host(1).calls if c[0] == "arp"]
        self.assertEqual(arps(), [("arp", B, "eth1")])
        self.clock.advance(1)
        self.assertEqual(len(arps()), 2)
        self.clock.advance(1)
        self.assertEqual(len(arps()), 3)
        self.clock.advance(5)
        self.assertEqual(len(arps()), 3)

    def test_badSizes(self) -> None:
        """Too small, or not the size its length says: -1."""
        good = addrInfo(B, 0, "eth1")
        for data in (good[:30], good[:-1], good + b"x"):
            self.assertFails(self.call(1, Control.SEND_GRATUITOUS_ARP, data))

    def test_arpFailureLogged(self) -> None:
        """A failing ARP is logged; nothing else happens."""
        self.host(1).fail("sendGratuitousArp")
        with capturedLogs() as events:
            self.assertOk(
                self.call(1, Control.SEND_GRATUITOUS_ARP, addrInfo(B, 0, "eth1"))
            )
        self.assertTrue(loggedErrors(events))


class FormatTests(SynchronousTestCase):
    """ctdb_connection_to_buf."""

    def test_connectionString(self) -> None:
        """IPv4 as a.b.c.d:port, IPv6 in brackets."""
        self.assertEqual(
            connectionString((("10.0.0.1", 5), ("fd00::1", 445))),
            "10.0.0.1:5 -> [fd00::1]:445",
        )


class TickleInputTests(TickleCase):
    """What peers and clients may send about connections."""

    def test_mappedClientRegistered(self) -> None:
        """smbd listening on an IPv6 socket registers its IPv4 clients with
        IPv4-mapped addresses: the connection is kept in IPv4 form, every
        node learns it, and it goes when smbd goes."""
        self.assertOk(self.take(0, A))
        self.clock.advance(3)
        smbd = self.cluster.client(0)
        mapped = connection(("::ffff:10.0.0.99", 40001), ("::ffff:" + A, 445))
        self.assertOk(self.call(0, Control.TCP_CLIENT, mapped, client=smbd))
        self.assertEverywhere(tickleList(A, 0, connection(CLIENT1, (A, 445))))
        smbd.disconnect()
        self.cluster.advance(20)
        self.assertEverywhere(tickleList(A, 0))

    def test_clientGoneAtOnce(self) -> None:
        """A client that registers (no reply wanted) and goes before the
        other nodes even heard of the connection: in the end no node keeps
        it."""
        self.assertOk(self.take(0, A))
        self.clock.advance(3)
        smbd = self.cluster.client(0)
        smbd.control(
            Control.TCP_CLIENT,
            connection(CLIENT1, (A, 445)),
            flags=P.CTDB_CTRL_FLAG_NOREPLY,
        )
        smbd.disconnect()
        self.cluster.advance(20)
        self.assertEverywhere(tickleList(A, 0))
        self.assertEqual(self.node(0).clientTickles, {})

    def test_clientAlreadyGone(self) -> None:
        """A TCP_CLIENT handled for a client that is gone (nobody would
        ever drop its entry) is refused."""
        self.assertOk(self.take(0, A))
        smbd = self.cluster.client(0)
        smbd.disconnect()
        reqid = smbd.control(Control.TCP_CLIENT, connection(CLIENT1, (A, 445)))
        self.cluster.flush()
        reply = smbd.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, -1)
        self.assertEqual(self.node(0).clientTickles, {})
        data = self.assertOk(self.call(1, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, tickleList(A, 0))

    def test_clientOfAnotherNode(self) -> None:
        """TCP_CLIENT sent on to another node (or to all) has no local
        client there: refused, nothing kept."""
        self.assertOk(self.take(1, A))
        data = connection(CLIENT1, (A, 445))
        self.assertFails(self.call(0, Control.TCP_CLIENT, data, destnode=1))
        self.assertFails(
            self.call(0, Control.TCP_CLIENT, data, destnode=P.CTDB_BROADCAST_ALL)
        )
        self.assertEverywhere(tickleList(A, 0))
        for pnn in range(3):
            self.assertEqual(self.node(pnn).clientTickles, {})

    def test_hugeCount(self) -> None:
        """A count far beyond the data is refused before anything is read;
        one that fits is taken whole, however long; bytes after the last
        connection are ignored, as ctdbd ignores them."""
        with capturedLogs() as events:
            for count in (0xFFFFFFFF, 0x80000000, 2):
                bad = (
                    sockAddr(A)
                    + struct.pack("<I", count)
                    + connection(CLIENT1, (A, 445))
                )
                self.assertFails(self.call(1, Control.SET_TCP_TICKLE_LIST, bad))
        self.assertEqual(loggedErrors(events), ["Bad indata in ctdb_tickle_list"] * 3)
        conns = [
            connection((f"10.1.{i // 250}.{i % 250 + 1}", 1024 + i), (A, 445))
            for i in range(5000)
        ]
        big = tickleList(A, 0, *conns)
        self.assertOk(self.call(1, Control.SET_TCP_TICKLE_LIST, big + b"tail"))
        data = self.assertOk(self.call(1, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, big)

    def test_setUnknownAddress(self) -> None:
        """A list for an address this node does not know answers 1 and is
        dropped; the node's own lists stay as they were."""
        self.add = tickleList("10.8.8.8", 0, connection(CLIENT1, ("10.8.8.8", 445)))
        self.assertOk(self.call(1, Control.TCP_ADD, connection(CLIENT2, (A, 445))))
        self.assertFails(self.call(1, Control.SET_TCP_TICKLE_LIST, self.add), 1)
        self.assertFails(
            self.call(1, Control.GET_TCP_TICKLE_LIST, sockAddr("10.8.8.8")), 1
        )
        data = self.assertOk(self.call(1, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, tickleList(A, 0, connection(CLIENT2, (A, 445))))
