# -*- test-case-name: tests.takeover.test_node -*-
"""
Tests for L{ctdb.takeover.node} and its parts (addresslist, moves,
ipcheck): the public-IP controls a node answers, checked against what
Samba 4.17's ctdbd (server/ctdb_takeover.c) sends, and what taking and
releasing an address does to the (fake) host; bad input of every kind
(garbage, unknown addresses, address families, interface names, a file
gone bad), controls that race for one address, and a link that dies.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import struct
import tempfile

from twisted.internet.task import Clock
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase

from ctdb.config.publicaddresses import PublicAddress
from ctdb.errors import ConfigLoadError
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.protocols.nodestate import (
    CTDB_RECOVERY_ACTIVE,
    NODE_FLAGS_BANNED,
    NODE_FLAGS_PERMANENTLY_DISABLED,
    RunState,
)
from ctdb.protocols.publicips import (
    CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE,
    decodePublicIPList,
)
from ctdb.protocols.srvids import (
    CTDB_SRVID_REBALANCE_NODE,
    CTDB_SRVID_RELEASE_IP,
    CTDB_SRVID_TAKE_IP,
    CTDB_SRVID_TAKEOVER_RUN,
    encodeSrvidMessage,
)
from ctdb.takeover.fake import FakeAddressSystem
from ctdb.takeover.node import PublicAddresses
from ctdb.takeover.testmode import TestModeAddressSystem
from ctdb.testing import connectedNodes
from tests.takeover._helpers import (
    ADDRESSES,
    UNKNOWN,
    A,
    B,
    RecordingEvents,
    TakeoverCase,
    addrInfo,
    capturedLogs,
    connection,
    failures,
    iface,
    loggedErrors,
    publicIp,
    sockAddr,
)


class ReadingTests(TakeoverCase):
    """GET_PUBLIC_IPS, GET_PUBLIC_IP_INFO and GET_IFACES."""

    def test_publicIpsGolden(self) -> None:
        """The list comes newest first (ctdbd's DLIST_ADD), every address
        still unassigned."""
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(
            data,
            struct.pack("<I", 2) + publicIp(UNKNOWN, B) + publicIp(UNKNOWN, A),
        )

    def test_publicIpsAfterTake(self) -> None:
        """A taken address shows its owner."""
        self.assertOk(self.take(1, A))
        data = self.assertOk(self.call(1, Control.GET_PUBLIC_IPS))
        self.assertEqual(
            decodePublicIPList(data)[1].pnn,
            1,
        )

    def test_onlyAvailable(self) -> None:
        """With ONLY_AVAILABLE (in the control flags): every address of a
        healthy node; none of a disabled or inactive one, or one whose links
        are down, or one that is not RUNNING."""
        only = CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS, flags=only))
        self.assertEqual(len(decodePublicIPList(data)), 2)
        d = self.cluster[0]
        for flag in (NODE_FLAGS_PERMANENTLY_DISABLED, NODE_FLAGS_BANNED):
            d.nodes[0].flags |= flag
            data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS, flags=only))
            self.assertEqual(data, struct.pack("<I", 0))
            d.nodes[0].flags &= ~flag
        d.runstate = RunState.STARTUP
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS, flags=only))
        self.assertEqual(data, struct.pack("<I", 0))
        d.runstate = RunState.RUNNING
        self.assertOk(self.call(0, Control.SET_IFACE_LINK_STATE, iface("eth0", 0, 0)))
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS, flags=only))
        self.assertEqual(decodePublicIPList(data), decodePublicIPList(publicIpList(B)))
        self.assertOk(self.call(0, Control.SET_IFACE_LINK_STATE, iface("eth1", 0, 0)))
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS, flags=only))
        self.assertEqual(data, struct.pack("<I", 0))

    def test_ifacesGolden(self) -> None:
        """Interfaces newest first, link up, references counted by hosted
        addresses."""
        data = self.assertOk(self.call(0, Control.GET_IFACES))
        self.assertEqual(
            data, struct.pack("<I", 2) + iface("eth1", 1, 0) + iface("eth0", 1, 0)
        )
        self.assertOk(self.take(0, A))
        self.assertOk(self.take(0, B))
        data = self.assertOk(self.call(0, Control.GET_IFACES))
        # B goes to eth1, which has fewer references than eth0
        self.assertEqual(
            data, struct.pack("<I", 2) + iface("eth1", 1, 1) + iface("eth0", 1, 1)
        )

    def test_publicIpInfoGolden(self) -> None:
        """ctdb_public_ip_info: the address and owner, the index of the
        interface it is up on (or 0xFFFFFFFF), its interfaces in file
        order."""
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IP_INFO, sockAddr(B)))
        self.assertEqual(
            data,
            publicIp(UNKNOWN, B)
            + struct.pack("<II", UNKNOWN, 2)
            + iface("eth0", 1, 0)
            + iface("eth1", 1, 0),
        )
        self.assertOk(self.take(0, A))
        self.assertOk(self.take(0, B))
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IP_INFO, sockAddr(B)))
        self.assertEqual(
            data,
            publicIp(0, B)
            + struct.pack("<II", 1, 2)
            + iface("eth0", 1, 1)
            + iface("eth1", 1, 1),
        )

    def test_publicIpInfoUnknown(self) -> None:
        """An address that is not public fails, with ctdbd's log line."""
        with capturedLogs() as events:
            self.assertFails(
                self.call(0, Control.GET_PUBLIC_IP_INFO, sockAddr("10.9.9.9"))
            )
        self.assertEqual(
            loggedErrors(events),
            ["Could not get public ip info, '10.9.9.9'not a public address"],
        )

    def test_noAddresses(self) -> None:
        """A node without public addresses has empty lists."""
        cluster = connectedNodes(1, Clock())
        self.addCleanup(cluster.stop)
        client = cluster.client(0)
        for opcode in (Control.GET_PUBLIC_IPS, Control.GET_IFACES):
            reqid = client.control(opcode)
            cluster.flush()
            reply = client.reply(reqid)
            assert reply is not None
            self.assertEqual((reply.status, reply.data), (0, struct.pack("<I", 0)))


def publicIpList(*addresses: str) -> bytes:
    return struct.pack("<I", len(addresses)) + b"".join(
        publicIp(UNKNOWN, a) for a in addresses
    )


class LinkStateTests(TakeoverCase):
    """SET_IFACE_LINK_STATE (ctdb setifacelink)."""

    def test_setLink(self) -> None:
        """The link goes down and up again, logged as ctdbd logs it."""
        with capturedLogs() as events:
            self.assertOk(
                self.call(0, Control.SET_IFACE_LINK_STATE, iface("eth1", 0, 0))
            )
            self.assertOk(
                self.call(0, Control.SET_IFACE_LINK_STATE, iface("eth1", 0, 0))
            )
        self.assertEqual(
            loggedErrors(events),
            ["iface[eth1] has changed it's link status up => down"],
        )
        data = self.assertOk(self.call(0, Control.GET_IFACES))
        self.assertIn(iface("eth1", 0, 0), data)

    def test_badLinkState(self) -> None:
        """A link state other than 0 or 1, references, an unterminated name,
        an unknown interface or a wrong size all fail."""
        bad = [
            iface("eth0", 2, 0),
            iface("eth0", 1, 3),
            b"x" * 17 + b"y" + struct.pack("<HI", 1, 0),
            iface("nosuch", 1, 0),
            iface("eth0", 1, 0)[:-1],
            b"",
        ]
        for data in bad:
            self.assertFails(self.call(0, Control.SET_IFACE_LINK_STATE, data))


class TakeoverTests(TakeoverCase):
    """TAKEOVER_IP in daemon mode: the address goes up on the fake host."""

    def test_take(self) -> None:
        """The address is added on its best interface, announced, and
        TAKE_IP goes to the local clients."""
        listener = self.cluster.client(0)
        listener.control(Control.REGISTER_SRVID, srvid=CTDB_SRVID_TAKE_IP)
        self.assertOk(self.take(0, A))
        self.assertEqual(self.host(0).addresses, {A: (24, "eth0")})
        self.assertIn((CTDB_SRVID_TAKE_IP, b"10.0.0.31\0"), listener.messages())
        self.assertEqual(
            self.host(0).calls[:2], [("add", A, 24, "eth0"), ("arp", A, "eth0")]
        )

    def test_announcementSpacing(self) -> None:
        """Three ARPs, 1.1 s apart, each with a tickle ACK to every known
        client (from the server's end); then the tickle list is emptied."""
        conn = (("10.0.0.99", 40000), (A, 445))
        self.assertOk(self.call(0, Control.TCP_ADD, connection(*conn)))
        self.assertOk(self.take(0, A))
        arp = ("arp", A, "eth0")
        tickle = ("tickle", conn[1], conn[0])
        calls = self.host(0).calls
        self.assertEqual(calls[1:], [arp, tickle])
        self.clock.advance(1.0)
        self.assertEqual(len(calls), 3)
        self.clock.advance(0.1)
        self.assertEqual(calls[3:], [arp, tickle])
        self.clock.advance(1.1)
        self.assertEqual(calls[5:], [arp, tickle])
        self.clock.advance(10)
        self.assertEqual(len(calls), 7)
        data = self.assertOk(self.call(0, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, sockAddr(A) + struct.pack("<I", 0))

    def test_takeForAnotherNode(self) -> None:
        """TAKEOVER_IP naming another pnn fails."""
        reply = self.call(0, Control.TAKEOVER_IP, publicIp(1, A))
        self.assertFails(reply)
        self.assertEqual(self.host(0).addresses, {})

    def test_takeNotPublic(self) -> None:
        """An address that is not public is ignored with success."""
        self.assertOk(self.take(0, "10.1.1.1"))
        self.assertEqual(self.host(0).calls, [])

    def test_redundantTake(self) -> None:
        """Taking an address already held changes nothing on the host but
        announces it again: three ARPs, no tickle ACKs, and the tickle list
        is kept (a node cut off meanwhile may have told the clients its own
        MAC for the address)."""
        conn = (("10.0.0.99", 40000), (A, 445))
        self.assertOk(self.take(0, A))
        self.clock.pump([1] * 5)
        self.assertOk(self.call(0, Control.TCP_ADD, connection(*conn)))
        before = list(self.host(0).calls)
        self.assertOk(self.take(0, A))
        self.clock.pump([1] * 5)
        self.assertEqual(self.host(0).calls[len(before) :], [("arp", A, "eth0")] * 3)
        self.assertEqual(self.host(0).addresses, {A: (24, "eth0")})
        data = self.assertOk(self.call(0, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, sockAddr(A) + struct.pack("<I", 1) + connection(*conn))

    def test_noUsableInterface(self) -> None:
        """With every interface of the address down the take fails."""
        self.assertOk(self.call(0, Control.SET_IFACE_LINK_STATE, iface("eth0", 0, 0)))
        self.assertFails(self.take(0, A))
        self.assertOk(self.take(0, B))
        self.assertEqual(self.host(0).addresses, {B: (24, "eth1")})

    def test_netlinkFailureIsolated(self) -> None:
        """A host that refuses an address fails that take, with the reason;
        the other address still works and nothing crashes."""
        host = self.host(0)
        host.fail("addAddress")
        with capturedLogs() as events:
            reply = self.take(0, A)
        self.assertEqual(reply.status, -1)
        self.assertIn(b"Failed to add 10.0.0.31/24 on interface eth0", reply.errmsg)
        self.assertTrue(loggedErrors(events))
        host.heal("addAddress")
        self.assertOk(self.take(0, B))
        self.assertIn(B, host.addresses)
        # the failed one is retried by the next run and works now
        self.assertOk(self.take(0, A))
        self.assertIn(A, host.addresses)

    def test_heldElsewhereBansSelf(self) -> None:
        """An address the host holds but another node was assigned: ctdbd
        bans itself and fails."""
        self.assertOk(self.release(0, A, 2))  # node 0 learns: node 2 has A
        self.host(0).addAddress(A, 24, "eth0")
        with capturedLogs() as events:
            self.assertFails(self.take(0, A))
        self.cluster.flush()
        self.assertTrue(
            any("banning ourself" in e for e in loggedErrors(events)), events
        )

    def test_updateOnLinkDown(self) -> None:
        """An address held on an interface whose link went down moves to
        another one (updateip)."""
        events = RecordingEvents()
        self.cluster[0].setEventRunner(events)
        self.assertOk(self.take(0, B))
        self.assertEqual(self.host(0).addresses[B], (24, "eth0"))
        self.assertOk(self.call(0, Control.SET_IFACE_LINK_STATE, iface("eth0", 0, 0)))
        self.assertOk(self.take(0, B))
        self.assertEqual(self.host(0).addresses[B], (24, "eth1"))
        self.assertEqual(
            events.calls,
            [
                ("takeip", f"eth0 {B} 24"),
                ("updateip", f"eth0 eth1 {B} 24"),
            ],
        )

    def test_takeEventFails(self) -> None:
        """A failing takeip event fails the control with its status."""
        events = RecordingEvents()
        events.results["takeip"] = 3
        self.cluster[0].setEventRunner(events)
        self.assertFails(self.take(0, A), 3)

    def test_takeRefusedInRecovery(self) -> None:
        """ctdbd runs no takeip event in recovery: the take fails."""
        self.cluster[0].setEventRunner(RecordingEvents())
        self.cluster[0].recmode = CTDB_RECOVERY_ACTIVE
        self.assertFails(self.take(0, A))

    def test_updateInFlight(self) -> None:
        """A second take of the same address while the first runs is
        rejected."""
        events = RecordingEvents()
        events.hold.add("takeip")
        self.cluster[0].setEventRunner(events)
        first = self.start(0, Control.TAKEOVER_IP, publicIp(0, A))
        self.assertFails(self.release(0, A, 1))
        events.held[0].callback(0)
        self.assertEqual(self.finish(first).status, 0)


class ReleaseTests(TakeoverCase):
    """RELEASE_IP."""

    def test_release(self) -> None:
        """The clients' connections are killed, the address removed, the
        server sockets left on it closed, the new owner recorded,
        RELEASE_IP told to the local clients."""
        conn = (("10.0.0.99", 40000), (A, 445))
        self.assertOk(self.take(0, A))
        self.clock.advance(3)
        self.assertOk(self.call(0, Control.TCP_ADD, connection(*conn)))
        listener = self.cluster.client(0)
        listener.control(Control.REGISTER_SRVID, srvid=CTDB_SRVID_RELEASE_IP)
        host = self.host(0)
        del host.calls[:]
        self.assertOk(self.release(0, A, 2))
        self.assertEqual(
            host.calls,
            [
                ("kill", "eth0", (conn,), 5.0),
                ("remove", A, 24, "eth0"),
                ("close", A),
            ],
        )
        self.assertEqual(host.addresses, {})
        self.assertIn((CTDB_SRVID_RELEASE_IP, b"10.0.0.31\0"), listener.messages())
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(decodePublicIPList(data)[1].pnn, 2)
        data = self.assertOk(self.call(0, Control.GET_IFACES))
        self.assertIn(iface("eth0", 1, 0), data)

    def test_closeFailureLogged(self) -> None:
        """A host that cannot close the address's sockets (a kernel without
        sock_diag's destroy) is logged; the release succeeds."""
        self.assertOk(self.take(0, A))
        self.host(0).fail("closeSockets")
        with capturedLogs() as events:
            self.assertOk(self.release(0, A, 2))
        self.assertEqual(self.host(0).addresses, {})
        self.assertTrue(
            any(
                "Cannot close the TCP sockets of released IP 10.0.0.31"
                in formatEvent(e)
                for e in events
            )
        )

    def test_redundantRelease(self) -> None:
        """A node not holding the address only records its new owner."""
        self.assertOk(self.release(1, A, 0))
        self.assertEqual(self.host(1).calls, [])
        data = self.assertOk(self.call(1, Control.GET_PUBLIC_IPS))
        self.assertEqual(decodePublicIPList(data)[1].pnn, 0)

    def test_releaseStopsAnnouncement(self) -> None:
        """No ARP goes out for an address once released."""
        self.assertOk(self.take(0, A))
        self.assertOk(self.release(0, A, 1))
        count = len([c for c in self.host(0).calls if c[0] == "arp"])
        self.clock.advance(5)
        self.assertEqual(len([c for c in self.host(0).calls if c[0] == "arp"]), count)

    def test_removeFailure(self) -> None:
        """An address the host will not remove fails the release ("still
        hosted"), and the node still knows it holds it."""
        self.assertOk(self.take(0, A))
        self.host(0).fail("removeAddress")
        with capturedLogs() as events:
            self.assertFails(self.release(0, A, 1))
        self.assertIn(
            "IP 10.0.0.31 still hosted during release IP callback, failing",
            loggedErrors(events),
        )
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(decodePublicIPList(data)[1].pnn, 0)

    def test_killFailureStillReleases(self) -> None:
        """A capture that cannot start is logged; the address still goes."""
        self.assertOk(self.take(0, A))
        self.assertOk(
            self.call(0, Control.TCP_ADD, connection(("10.0.0.9", 1), (A, 2)))
        )
        self.host(0).fail("killConnections")
        self.assertOk(self.release(0, A, 1))
        self.assertEqual(self.host(0).addresses, {})

    def test_linkDownSkipsKill(self) -> None:
        """Over a dead link no reset can reach a client: the release does
        not wait for a kill, whether the host says the link is down or the
        node recorded it (setifacelink); a host that cannot tell gets the
        kill as before."""
        conn = (("10.0.0.99", 40000), (A, 445))
        host = self.host(0)
        host.deferKills = True  # a kill would hold the release
        for takeDown in (
            lambda: host.setLink("eth0", False),
            lambda: self.assertOk(
                self.call(0, Control.SET_IFACE_LINK_STATE, iface("eth0", 0, 0))
            ),
        ):
            host.setLink("eth0", True)
            self.assertOk(
                self.call(0, Control.SET_IFACE_LINK_STATE, iface("eth0", 1, 0))
            )
            self.assertOk(self.take(0, A))
            self.clock.advance(3)
            self.assertOk(self.call(0, Control.TCP_ADD, connection(*conn)))
            takeDown()
            del host.calls[:]
            with capturedLogs() as events:
                self.assertOk(self.release(0, A, 2))
            self.assertEqual(host.calls, [("remove", A, 24, "eth0"), ("close", A)])
            self.assertIn(
                "Link of eth0 is down: not killing 1 TCP connections to released "
                "IP 10.0.0.31",
                [formatEvent(e) for e in events],
            )
        host.setLink("eth0", True)
        self.assertOk(self.call(0, Control.SET_IFACE_LINK_STATE, iface("eth0", 1, 0)))
        self.assertOk(self.take(0, A))
        self.assertOk(self.call(0, Control.TCP_ADD, connection(*conn)))
        host.fail("linkUp")
        with capturedLogs():
            release = self.start(0, Control.RELEASE_IP, publicIp(2, A))
        self.assertEqual(host.calls[-1], ("kill", "eth0", (conn,), 5.0))
        host.kills[-1].callback(1)
        self.assertEqual(self.finish(release).status, 0)

    def test_becameInactiveReleasesAll(self) -> None:
        """A banned node lets go of every address it holds."""
        self.assertOk(self.take(0, A))
        self.assertOk(self.take(0, B))
        self.cluster[0].nodes[0].flags |= NODE_FLAGS_BANNED
        self.node(0).becameInactive()
        self.cluster.flush()
        self.assertEqual(self.host(0).addresses, {})
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(data, publicIpList(B, A))

    def test_freezeAloneKeepsAddresses(self) -> None:
        """becameInactive on an active node (a plain FREEZE) keeps them."""
        self.assertOk(self.take(0, A))
        self.node(0).becameInactive()
        self.cluster.flush()
        self.assertIn(A, self.host(0).addresses)

    def test_shutdownRemovesAddresses(self) -> None:
        """At shutdown, daemon mode removes the addresses it added."""
        self.assertOk(self.take(0, A))
        self.cluster.node(0).stopService()
        self.assertEqual(self.host(0).addresses, {})


class ScriptModeTests(TakeoverCase):
    """C{byScripts}: the events change the host, the daemon announces."""

    byScripts = True

    def test_takeRunsEventOnly(self) -> None:
        """takeip with ctdbd's arguments; the daemon adds nothing itself."""
        events = RecordingEvents()
        self.cluster[0].setEventRunner(events)
        # the event script would add it: pretend it did
        self.host(0).addAddress(A, 24, "eth0")
        del self.host(0).calls[:]
        self.assertOk(self.take(0, A))
        # held by the host but by no node: ctdbd repairs it with an updateip
        self.assertEqual(events.calls, [("updateip", f"__none__ eth0 {A} 24")])
        self.assertOk(self.take(0, B))
        # eth1 has fewer references than eth0 (which holds A)
        self.assertEqual(events.calls[1:], [("takeip", f"eth1 {B} 24")])
        self.assertEqual(self.host(0).calls, [("arp", B, "eth1")])

    def test_releaseRunsEventOnly(self) -> None:
        """releaseip with ctdbd's arguments; nothing killed or removed by
        the daemon."""
        events = RecordingEvents()
        self.cluster[0].setEventRunner(events)
        self.assertOk(self.take(0, B))
        self.host(0).addAddress(B, 24, "eth0")
        del self.host(0).calls[:]
        events.calls.clear()

        self.host(0).fail("killConnections")
        self.assertFails(self.release(0, B, 1))  # the script did not remove it
        self.assertEqual(events.calls, [("releaseip", f"eth0 {B} 24")])
        self.host(0).removeAddress(B, 24, "eth0")
        self.assertOk(self.release(0, B, 1))

    def test_ipreallocated(self) -> None:
        """IPREALLOCATED runs the event; its failure is the reply's status."""
        events = RecordingEvents()
        self.cluster[0].setEventRunner(events)
        self.assertOk(self.call(0, Control.IPREALLOCATED))
        events.results["ipreallocated"] = 5
        self.assertFails(self.call(0, Control.IPREALLOCATED), 5)
        self.assertEqual(events.calls, [("ipreallocated", "")] * 2)
        self.assertFails(self.call(0, Control.IPREALLOCATED, b"x"))

    def test_hungReleaseIsSuccess(self) -> None:
        """A releaseip that timed out counts as done (ctdbd)."""
        events = RecordingEvents()
        events.results["releaseip"] = errno.ETIMEDOUT
        self.cluster[0].setEventRunner(events)
        self.assertOk(self.take(0, A))
        self.assertOk(self.release(0, A, 1))


class TestModeTests(SynchronousTestCase):
    """ctdbd's test mode: the daemon's records decide, the host is never
    changed."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster = connectedNodes(2, self.clock)
        self.addCleanup(self.cluster.stop)
        self.node = PublicAddresses(
            self.cluster[0],
            [PublicAddress("192.168.100.1", 24, ("lo",))],
            TestModeAddressSystem(),
            byScripts=True,
            checkAddresses=False,
        )

    def test_takeAndRelease(self) -> None:
        """Take and release work from the daemon's records alone."""
        req = P.ReqControl(
            P.Header(P.Operation.REQ_CONTROL, 0, 0, 1),
            Control.TAKEOVER_IP,
            0,
            0,
            0,
            publicIp(0, "192.168.100.1"),
        )
        result = self.successResultOf(self.node.control_TAKEOVER_IP(req, None))  # type: ignore[arg-type]
        self.assertEqual(result[0], 0)
        self.assertEqual(self.node.publicIPs()[0].pnn, 0)
        # no announcement in test mode
        self.assertIsNone(self.node.table.vnns[0].announcement)
        req = P.ReqControl(
            req.header, Control.RELEASE_IP, 0, 0, 0, publicIp(1, "192.168.100.1")
        )
        result = self.successResultOf(self.node.control_RELEASE_IP(req, None))  # type: ignore[arg-type]
        self.assertEqual(result[0], 0)
        self.assertEqual(self.node.publicIPs()[0].pnn, 1)

    def test_systemChangesNothing(self) -> None:
        """The test-mode system refuses to add or remove and sends nothing."""
        system = TestModeAddressSystem()
        self.assertTrue(system.interfaceExists("lo"))
        self.assertFalse(system.interfaceExists("nosuchiface0"))
        self.assertTrue(system.hasAddress("127.0.0.1"))
        self.assertFalse(system.hasAddress("192.0.2.77"))
        from ctdb.errors import AddressError

        self.assertRaises(AddressError, system.addAddress, "192.0.2.77", 24, "lo")
        self.assertRaises(AddressError, system.removeAddress, "192.0.2.77", 24, "lo")
        system.sendGratuitousArp("192.0.2.77", "lo")
        system.sendTickle(("192.0.2.77", 1), ("192.0.2.78", 2))
        self.assertEqual(self.successResultOf(system.killConnections("lo", [], 1)), 0)


class AddDeleteTests(TakeoverCase):
    """ADD_PUBLIC_IP and DEL_PUBLIC_IP (ctdb addip, delip)."""

    def test_add(self) -> None:
        """A new address goes to the front of the list, with a new
        interface if it names one."""
        self.host(0).addInterface("eth2")
        self.assertOk(
            self.call(0, Control.ADD_PUBLIC_IP, addrInfo("10.0.0.40", 16, "eth2"))
        )
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(data, publicIpList("10.0.0.40", B, A))
        data = self.assertOk(self.call(0, Control.GET_IFACES))
        self.assertEqual(data[4:28], iface("eth2", 1, 0))
        self.assertOk(self.take(0, "10.0.0.40"))
        self.assertEqual(self.host(0).addresses["10.0.0.40"], (16, "eth2"))

    def test_addRefused(self) -> None:
        """A duplicate, an unknown interface, a too-long name, bad sizes."""
        cases = [
            (addrInfo(A, 24, "eth0"), "Duplicate public IP address '10.0.0.31'"),
            (
                addrInfo("10.0.0.41", 24, "eth0,nosuch"),
                "Unknown interface nosuch for public address 10.0.0.41",
            ),
        ]
        for data, message in cases:
            with capturedLogs() as events:
                reply = self.call(0, Control.ADD_PUBLIC_IP, data)
            self.assertFails(reply)
            self.assertEqual(
                loggedErrors(events), [message, "Failed to add public address"]
            )
        good = addrInfo("10.0.0.41", 24, "eth0")
        for data in (good[:20], good[:-1], good + b"\0"):
            self.assertFails(self.call(0, Control.ADD_PUBLIC_IP, data))
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(data, publicIpList(B, A))

    def test_deleteUnhosted(self) -> None:
        """An address hosted elsewhere goes at once, and an interface no
        other address names goes with it."""
        self.assertOk(self.call(0, Control.DEL_PUBLIC_IP, addrInfo(B, 0, None)))
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(data, publicIpList(A))
        data = self.assertOk(self.call(0, Control.GET_IFACES))
        self.assertEqual(data, struct.pack("<I", 1) + iface("eth0", 1, 0))

    def test_deleteHostedDeferred(self) -> None:
        """A hosted address is only marked; it is no longer available, and
        goes when it is released."""
        self.assertOk(self.take(0, A))
        self.assertOk(self.call(0, Control.DEL_PUBLIC_IP, addrInfo(A, 24, "eth0")))
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(len(decodePublicIPList(data)), 2)
        only = CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS, flags=only))
        self.assertEqual([ip.address for ip in decodePublicIPList(data)], [B])
        self.assertOk(self.release(0, A, UNKNOWN))
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(data, publicIpList(B))
        self.assertEqual(self.host(0).addresses, {})

    def test_deleteUnknown(self) -> None:
        """Deleting an address that is not public fails."""
        with capturedLogs() as events:
            self.assertFails(
                self.call(0, Control.DEL_PUBLIC_IP, addrInfo("10.7.7.7", 0, None))
            )
        self.assertEqual(
            loggedErrors(events), ["Delete IP of unknown public IP address 10.7.7.7"]
        )


class ReloadTests(TakeoverCase):
    """RELOAD_PUBLIC_IPS (ctdb reloadips)."""

    def setUp(self) -> None:
        super().setUp()
        directory = tempfile.mkdtemp(prefix="txctdb-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.path = os.path.join(directory, "public_addresses")
        self.node(0).addressesFile = self.path

    def write(self, text: str) -> None:
        with open(self.path, "w") as f:
            f.write(text)

    def test_reload(self) -> None:
        """What left the file is deleted (or marked, if hosted), what is new
        is added, and the leader is asked to rebalance onto this node."""
        self.assertOk(self.take(0, A))
        listener = self.cluster.client(1)
        listener.control(Control.REGISTER_SRVID, srvid=CTDB_SRVID_REBALANCE_NODE)
        self.write("10.0.0.50/24 eth1\n10.0.0.51/24 eth0\n")
        self.assertOk(self.call(0, Control.RELOAD_PUBLIC_IPS))
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(
            [(ip.pnn, ip.address) for ip in decodePublicIPList(data)],
            [(UNKNOWN, "10.0.0.50"), (UNKNOWN, "10.0.0.51"), (0, A)],
        )
        self.assertEqual(
            listener.messages(), [(CTDB_SRVID_REBALANCE_NODE, struct.pack("<I", 0))]
        )

    def test_reloadBadFile(self) -> None:
        """A bad file changes nothing and fails with status 1."""
        self.write("10.0.0.50/24\n")
        self.assertFails(self.call(0, Control.RELOAD_PUBLIC_IPS), 1)
        self.write("10.0.0.50/24 nosuch\n")
        self.assertFails(self.call(0, Control.RELOAD_PUBLIC_IPS), 1)
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(data, publicIpList(B, A))

    def test_reloadNowMalformed(self) -> None:
        """Whatever went wrong with the file (a line without an interface, a
        bad address, an interface the host lacks or whose name is too long,
        an address twice, bytes that are not UTF-8, a directory in its
        place): status 1 with ctdbd's lines, nothing changes, and the
        addresses keep working."""
        self.host(0).addInterface("x" * 17)
        self.assertOk(self.take(0, A))
        bad = [
            (b"10.0.0.50/24\n", "No interface specified at line 1"),
            (b"10.0.0.31/24 eth0\n10.0.0.300/24 eth0\n", "Badly formed line 2"),
            (b"10.0.0.50/24 eth0,eth7\n", "Unknown interface eth7"),
            (b"10.0.0.50/24 " + b"x" * 17 + b"\n", "Interface name too long"),
            (b"10.0.0.50/24 eth0\n10.0.0.50/16 eth1\n", "Duplicate public IP"),
            (b"10.0.0.50/24 eth\xff\n", "Unknown interface eth"),
        ]
        for content, words in bad:
            with open(self.path, "wb") as f:
                f.write(content)
            with capturedLogs() as events:
                self.assertFails(self.call(0, Control.RELOAD_PUBLIC_IPS), 1)
            errors = loggedErrors(events)
            self.assertTrue(any(words in e for e in errors), (content, errors))
            self.assertEqual(errors[-1], "Reloadips child process returned error")
        os.remove(self.path)
        os.mkdir(self.path)
        with capturedLogs():
            self.assertFails(self.call(0, Control.RELOAD_PUBLIC_IPS), 1)
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(
            [(ip.pnn, ip.address) for ip in decodePublicIPList(data)],
            [(UNKNOWN, B), (0, A)],
        )
        self.assertOk(self.release(0, A, 1))
        self.assertOk(self.take(0, B))
        self.assertEqual(self.host(0).addresses, {B: (24, "eth0")})

    def test_reloadMissingFile(self) -> None:
        """No file is no addresses, as ctdbd."""
        self.assertOk(self.call(0, Control.RELOAD_PUBLIC_IPS))
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(data, struct.pack("<I", 0))


class BadInputTests(TakeoverCase):
    """No payload makes a public-IP control fail inside: a malformed one is
    refused, any other answered."""

    def test_shortPayloads(self) -> None:
        """Short, long and garbage payloads of every control fail cleanly."""
        opcodes = [
            Control.GET_PUBLIC_IPS,
            Control.GET_PUBLIC_IP_INFO,
            Control.GET_IFACES,
            Control.SET_IFACE_LINK_STATE,
            Control.TAKEOVER_IP,
            Control.RELEASE_IP,
            Control.IPREALLOCATED,
            Control.ADD_PUBLIC_IP,
            Control.DEL_PUBLIC_IP,
            Control.RELOAD_PUBLIC_IPS,
            Control.TCP_CLIENT,
            Control.TCP_ADD,
            Control.TCP_ADD_DELAYED_UPDATE,
            Control.TCP_REMOVE,
            Control.GET_TCP_TICKLE_LIST,
            Control.SET_TCP_TICKLE_LIST,
            Control.SEND_GRATUITOUS_ARP,
            Control.KILL_TCP,
        ]
        payloads = [b"\x01", b"\xff" * 7, b"\x09" * 28, b"\x0a\x00" + b"\xff" * 60]
        with capturedLogs() as events:
            for opcode in opcodes:
                for data in payloads:
                    reply = self.call(0, opcode, data)
                    self.assertNotEqual(reply.status, 0, (opcode, data))
        # refused cleanly: no handler raised anything unexpected
        self.assertEqual(failures(events), [])
        # the node still works
        self.assertOk(self.take(0, A))

    def test_garbage(self) -> None:
        """Random payloads of plausible shapes (addresses of every family
        byte, connections, lists with any count, addr_info with any length
        and name): every control answers, none fails inside, and the node
        keeps working."""
        rnd = random.Random(4417)
        families = [b"\x02\x00", b"\x0a\x00", b"\x00\x00", b"\x01\x00", b"\xff\xff"]

        def sock() -> bytes:
            return rnd.choice(families) + rnd.randbytes(26)

        def payload() -> bytes:
            kind = rnd.randrange(6)
            if kind == 0:
                return rnd.randbytes(rnd.randrange(80))
            if kind == 1:
                return sock()
            if kind == 2:
                return struct.pack("<I", rnd.choice([0, 1, UNKNOWN])) + sock()
            if kind == 3:
                return sock() + sock()
            if kind == 4:
                count = rnd.choice([0, 1, 2, 0xFFFFFFFF, 0x10000000])
                body = b"".join(sock() + sock() for _ in range(min(count, 3)))
                return sock() + struct.pack("<I", count) + body
            name = rnd.randbytes(rnd.randrange(30))
            length = rnd.choice([len(name), rnd.randrange(1 << 32)])
            return sock() + struct.pack("<II", rnd.randrange(1 << 32), length) + name

        opcodes = [
            Control.GET_PUBLIC_IP_INFO,
            Control.SET_IFACE_LINK_STATE,
            Control.TAKEOVER_IP,
            Control.RELEASE_IP,
            Control.ADD_PUBLIC_IP,
            Control.DEL_PUBLIC_IP,
            Control.TCP_CLIENT,
            Control.TCP_ADD,
            Control.TCP_ADD_DELAYED_UPDATE,
            Control.TCP_REMOVE,
            Control.GET_TCP_TICKLE_LIST,
            Control.SET_TCP_TICKLE_LIST,
            Control.SEND_GRATUITOUS_ARP,
        ]
        with capturedLogs() as events:
            for opcode in opcodes:
                for _ in range(150):
                    self.call(0, opcode, payload())
                self.clock.advance(5)
        self.assertEqual(failures(events), [])
        self.clock.advance(30)
        self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertOk(self.call(0, Control.GET_IFACES))

    def test_killTcpObsolete(self) -> None:
        """KILL_TCP is not implemented any more in 4.17: it fails."""
        self.assertFails(
            self.call(0, Control.KILL_TCP, connection(("1.2.3.4", 1), (A, 2)))
        )


class BuildTests(SynchronousTestCase):
    """What the node refuses when it starts (ctdb_set_public_addresses)."""

    def refused(self, *addresses: PublicAddress) -> list[str]:
        """The messages of a node that will not start with C{addresses}."""
        cluster = connectedNodes(1, Clock(), start=False)
        with self.assertRaises(ConfigLoadError) as caught:
            PublicAddresses(cluster[0], addresses, FakeAddressSystem())
        return [m.text for m in caught.exception.messages]

    def test_unknownInterface(self) -> None:
        """An interface the host lacks stops the node, with ctdbd's lines."""
        self.assertEqual(
            self.refused(
                PublicAddress("10.0.0.1", 24, ("eth0",)),
                PublicAddress("10.0.0.2", 24, ("eth9",)),
            ),
            [
                "Unknown interface eth9 for public address 10.0.0.2",
                "Failed to add line 2 to the public address list",
                "Unable to setup public IP addresses",
            ],
        )

    def test_duplicate(self) -> None:
        """The same address twice stops the node."""
        messages = self.refused(
            PublicAddress("10.0.0.1", 24, ("eth0",)),
            PublicAddress("10.0.0.1", 16, ("eth0",)),
        )
        self.assertEqual(messages[0], "Duplicate public IP address '10.0.0.1'")


class IPCheckTests(TakeoverCase):
    """Each node's own check (verify_local_ip_allocation)."""

    def runs(self) -> list[tuple[int, bytes]]:
        return [
            (srvid, data)
            for srvid, data in self.listener.messages()
            if srvid == CTDB_SRVID_TAKEOVER_RUN
        ]

    def setUp(self) -> None:
        super().setUp()
        self.listener = self.cluster.client(1)
        self.listener.control(Control.REGISTER_SRVID, srvid=CTDB_SRVID_TAKEOVER_RUN)
        self.cluster.flush()

    def test_initialInterfaces(self) -> None:
        """The first check always asks for a run ("Initial interface
        fetched"); later ones only when something changed."""
        self.clock.advance(1)
        self.cluster.flush()
        self.assertEqual(len(self.runs()), 3)  # one per node
        self.assertIn((CTDB_SRVID_TAKEOVER_RUN, encodeSrvidMessage(0, 0)), self.runs())
        self.clock.advance(1)
        self.cluster.flush()
        self.assertEqual(len(self.runs()), 3)

    def loseA(self) -> int:
        """Node 0 takes A, the checks settle, then its host loses A; the
        number of runs asked for so far."""
        self.assertOk(self.take(0, A))
        self.cluster.advance(2)
        before = len(self.runs())
        self.host(0).removeAddress(A, 24, "eth0")
        return before

    def test_assignedNotOnInterface(self) -> None:
        """An address the node holds but the host lost asks for a run."""
        before = self.loseA()
        with capturedLogs() as events:
            self.cluster.advance(1)
        self.assertEqual(len(self.runs()), before + 1)
        self.assertIn("Assigned IP 10.0.0.31 not on an interface", loggedErrors(events))

    def test_updateInFlight(self) -> None:
        """An address whose take or release is under way (a slow takeip
        event) is left alone until it is done."""
        before = self.loseA()
        vnn = self.cluster.takeover(0).table.find(A)
        assert vnn is not None
        vnn.updateInFlight = True
        with capturedLogs() as events:
            self.cluster.advance(1)
        self.assertEqual(len(self.runs()), before)
        self.assertEqual(loggedErrors(events), [])
        vnn.updateInFlight = False
        self.cluster.advance(1)
        self.assertEqual(len(self.runs()), before + 1)

    def test_ownRunInProgress(self) -> None:
        """No check while the node's own takeover run goes on."""
        before = self.loseA()
        runner = self.cluster.node(0).takeoverRunner
        runner._inProgress = True
        self.assertTrue(self.cluster.takeover(0).ipCheckDisabled())
        self.cluster.advance(1)
        self.assertEqual(len(self.runs()), before)
        runner._inProgress = False
        self.cluster.advance(1)
        self.assertEqual(len(self.runs()), before + 1)

    def test_incorrectlyOnInterface(self) -> None:
        """An address on the host that the node should not hold too."""
        self.cluster.advance(2)
        before = len(self.runs())
        self.host(2).addAddress(B, 24, "eth0")
        with capturedLogs() as events:
            self.cluster.advance(1)
        self.assertEqual(len(self.runs()), before + 1)
        self.assertIn("IP 10.0.0.32 incorrectly on an interface", loggedErrors(events))

    def test_linkChange(self) -> None:
        """A link that goes down on the host is noticed (daemon mode) and
        asks for a run."""
        self.cluster.advance(2)
        before = len(self.runs())
        self.host(0).setLink("eth1", False)
        self.cluster.advance(1)
        self.assertEqual(len(self.runs()), before + 1)
        data = self.assertOk(self.call(0, Control.GET_IFACES))
        self.assertIn(iface("eth1", 0, 0), data)

    def test_pausedWhileRunsDisabled(self) -> None:
        """DISABLE_IP_CHECK holds the check off (with the takeover runs)."""
        self.cluster.advance(2)
        before = len(self.runs())
        c = self.cluster.client(0)
        c.sendMessage(0, 0xFC00000000000000, struct.pack("<I", 10))
        self.cluster.flush()
        self.host(0).setLink("eth1", False)
        self.cluster.advance(5)
        self.assertEqual(len(self.runs()), before)
        self.cluster.advance(6)
        self.assertEqual(len(self.runs()), before + 1)

    def test_inactiveNodeSkips(self) -> None:
        """A banned node does not check."""
        self.cluster.advance(2)
        before = len(self.runs())
        self.cluster[0].nodes[0].flags |= NODE_FLAGS_BANNED
        self.host(0).setLink("eth1", False)
        self.cluster.advance(3)
        self.assertEqual(len(self.runs()), before)


class FailoverTests(SynchronousTestCase):
    """Whole nodes with recovery and the leader's takeover runs, each on its
    own fake host: addresses really move."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster = connectedNodes(
            3,
            self.clock,
            recovery=True,
            publicAddresses={0: ADDRS3, 1: ADDRS3, 2: ADDRS3},
        )
        self.addCleanup(self.cluster.stop)
        self.cluster.advance(10, step=0.25)

    def holders(self, address: str) -> list[int]:
        return [
            pnn
            for pnn, host in self.cluster.addressSystems.items()
            if address in host.addresses
        ]

    def test_eachAddressOnOneNode(self) -> None:
        """After the first takeover run every address is up on exactly one
        host, and every node agrees who holds it."""
        for address in ("10.0.0.41", "10.0.0.42", "10.0.0.43"):
            holders = self.holders(address)
            self.assertEqual(len(holders), 1, (address, holders))
            for pnn in range(3):
                ips = {
                    ip.address: ip.pnn for ip in self.cluster.takeover(pnn).publicIPs()
                }
                self.assertEqual(ips[address], holders[0], (address, pnn))

    def test_crashMovesAddress(self) -> None:
        """When the node holding an address dies, a survivor takes it,
        announces it and tickles its registered clients."""
        address = "10.0.0.41"
        [owner] = self.holders(address)
        client = self.cluster.client(owner)
        conn = (("10.9.0.1", 50000), (address, 445))
        reqid = client.control(Control.TCP_CLIENT, connection(*conn))
        self.cluster.flush()
        reply = client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 0)
        self.cluster.crash(owner)
        # (only the survivors' hosts count: the dead one's is not looked at)
        survivors = [p for p in range(3) if p != owner]
        self.cluster.advance(10, step=0.25)
        holders = [p for p in self.holders(address) if p in survivors]
        self.assertEqual(len(holders), 1, holders)
        host = self.cluster.addressSystems[holders[0]]
        self.assertIn(("arp", address, "eth0"), host.calls)
        self.assertIn(("tickle", conn[1], conn[0]), host.calls)
        for pnn in survivors:
            ips = {ip.address: ip.pnn for ip in self.cluster.takeover(pnn).publicIPs()}
            self.assertEqual(ips[address], holders[0])

    def test_linkLossMovesAddressAtOnce(self) -> None:
        """When the link of the interface an address is on goes down, the
        address is up on another node within a second of the owner's IP
        check seeing it, and no kill holds the release up (one could never
        reach the clients; FakeAddressSystem's kills here never end)."""
        address = "10.0.0.41"
        [owner] = self.holders(address)
        host = self.cluster.addressSystems[owner]
        host.deferKills = True
        client = self.cluster.client(owner)
        conn = (("10.9.0.1", 50000), (address, 445))
        client.control(Control.TCP_CLIENT, connection(*conn))
        self.cluster.flush()
        ifaceRecord = self.cluster.takeover(owner).table.findIface("eth0")
        assert ifaceRecord is not None
        host.setLink("eth0", False)
        seen = moved = None
        step = 0.05
        for tick in range(int(10 / step)):
            self.cluster.advance(step, step=step)
            now = (tick + 1) * step
            if seen is None and not ifaceRecord.linkUp:
                seen = now
            others = [p for p in self.holders(address) if p != owner]
            self.assertLessEqual(len(self.holders(address)), 1)
            if others:
                moved = now
                break
        assert seen is not None and moved is not None, (seen, moved)
        self.assertLessEqual(seen, 1.0)
        self.assertLess(moved - seen, 1.0)
        self.assertNotIn("kill", [c[0] for c in host.calls])
        self.assertIn(("remove", address, 24, "eth0"), host.calls)
        new = self.cluster.addressSystems[others[0]]
        self.assertIn(("tickle", conn[1], conn[0]), new.calls)

    def test_restartDropsStaleAddresses(self) -> None:
        """A daemon that starts again first takes the addresses its dead
        predecessor left on the host off it."""
        address = "10.0.0.41"
        [owner] = self.holders(address)
        self.cluster.crash(owner)
        # (the fake crash stops the services; a SIGKILL would leave it up)
        self.cluster.addressSystems[owner].addAddress(address, 24, "eth0")
        self.cluster.restart(owner)
        self.assertNotIn(address, self.cluster.addressSystems[owner].addresses)
        self.cluster.advance(10, step=0.25)
        self.assertEqual(len(self.holders(address)), 1)


ADDRS3 = "10.0.0.41/24 eth0\n10.0.0.42/24 eth0\n10.0.0.43/24 eth0\n"


MAPPED_A = "::ffff:" + A


class UnknownAddressTests(TakeoverCase):
    """An address that is not public, IPv4 or IPv6: each control answers
    what ctdbd answers, and nothing changes."""

    def test_answers(self) -> None:
        """GET_PUBLIC_IP_INFO and DEL_PUBLIC_IP fail, TCP_ADD fails, the
        tickle lists answer 1, TAKEOVER_IP, RELEASE_IP, TCP_REMOVE and
        TCP_CLIENT ignore it with success."""
        for other in ("10.9.9.9", "fd00::31", "::10.0.0.31"):
            conn = connection(("10.0.0.99", 40000), (other, 445))
            expected = [
                (Control.GET_PUBLIC_IP_INFO, sockAddr(other), -1),
                (Control.DEL_PUBLIC_IP, addrInfo(other, 24, None), -1),
                (Control.TAKEOVER_IP, publicIp(0, other), 0),
                (Control.RELEASE_IP, publicIp(1, other), 0),
                (Control.TCP_ADD, conn, -1),
                (Control.TCP_ADD_DELAYED_UPDATE, conn, -1),
                (Control.TCP_REMOVE, conn, 0),
                (Control.TCP_CLIENT, conn, 0),
                (Control.GET_TCP_TICKLE_LIST, sockAddr(other), 1),
                (
                    Control.SET_TCP_TICKLE_LIST,
                    sockAddr(other) + struct.pack("<I", 1) + conn,
                    1,
                ),
            ]
            with capturedLogs():
                for opcode, data, status in expected:
                    reply = self.call(0, opcode, data)
                    self.assertEqual(reply.status, status, (other, opcode))
        self.assertEqual(self.host(0).calls, [])
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(data, publicIpList(B, A))


class AddressFamilyTests(TakeoverCase):
    """IPv4, IPv6 and IPv4-mapped IPv6 (ctdb_same_ip: a mapped address
    names the IPv4 one)."""

    addresses = ADDRESSES + "fd00::32/64 eth1\n"

    def test_mappedNamesIPv4(self) -> None:
        """Every control that looks an address up finds the IPv4 public
        address under its IPv4-mapped spelling."""
        data = self.assertOk(
            self.call(0, Control.GET_PUBLIC_IP_INFO, sockAddr(MAPPED_A))
        )
        self.assertEqual(data[:32], publicIp(UNKNOWN, A))
        self.assertOk(self.take(0, MAPPED_A))
        self.assertEqual(self.host(0).addresses, {A: (24, "eth0")})
        conn = (("10.0.0.99", 40000), (A, 445))
        self.assertOk(
            self.call(
                0,
                Control.TCP_ADD,
                connection(("::ffff:10.0.0.99", 40000), (MAPPED_A, 445)),
            )
        )
        data = self.assertOk(self.call(0, Control.GET_TCP_TICKLE_LIST, sockAddr(A)))
        self.assertEqual(data, sockAddr(A) + struct.pack("<I", 1) + connection(*conn))
        self.assertOk(self.call(0, Control.TCP_REMOVE, connection(*conn)))
        data = self.assertOk(
            self.call(0, Control.GET_TCP_TICKLE_LIST, sockAddr(MAPPED_A))
        )
        self.assertEqual(data, sockAddr(MAPPED_A) + struct.pack("<I", 0))
        self.assertOk(self.release(0, MAPPED_A, 1))
        self.assertEqual(self.host(0).addresses, {})
        with capturedLogs() as events:
            self.assertFails(
                self.call(0, Control.ADD_PUBLIC_IP, addrInfo(MAPPED_A, 24, "eth0"))
            )
        self.assertIn(
            "Duplicate public IP address '::ffff:10.0.0.31'", loggedErrors(events)
        )
        self.assertOk(self.call(0, Control.DEL_PUBLIC_IP, addrInfo(MAPPED_A, 24, None)))
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertNotIn(A, [ip.address for ip in decodePublicIPList(data)])

    def test_ipv6Address(self) -> None:
        """An IPv6 public address is taken, announced, tickled and released
        like an IPv4 one; its IPv4-compatible twin ::a.b.c.d is another
        address."""
        v6 = "fd00::32"
        self.assertOk(self.take(0, v6))
        self.assertEqual(self.host(0).addresses[v6], (64, "eth1"))
        self.assertIn(("arp", v6, "eth1"), self.host(0).calls)
        conn = (("fd00::99", 40000), (v6, 445))
        self.assertOk(self.call(0, Control.TCP_CLIENT, connection(*conn)))
        for pnn in range(3):
            data = self.assertOk(
                self.call(pnn, Control.GET_TCP_TICKLE_LIST, sockAddr(v6))
            )
            self.assertEqual(
                data, sockAddr(v6) + struct.pack("<I", 1) + connection(*conn)
            )
        self.assertOk(self.take(0, "::10.0.0.31"))
        self.assertNotIn(A, self.host(0).addresses)
        self.assertOk(self.release(0, v6, 1))
        self.assertNotIn(v6, self.host(0).addresses)


class InterfaceNameTests(TakeoverCase):
    """Interface names of zero length, at the limit and beyond it."""

    def setUp(self) -> None:
        super().setUp()
        # the fake host has names Linux would refuse, to reach ctdbd's own check
        self.host(0).addInterface("a" * 16)
        self.host(0).addInterface("b" * 17)

    def test_addLongNames(self) -> None:
        """ADD_PUBLIC_IP: a 16-byte name is the longest ctdbd keeps; 17 bytes
        fail ("Interface name too long"), and so does a name no host has."""
        self.assertOk(
            self.call(0, Control.ADD_PUBLIC_IP, addrInfo("10.0.0.40", 24, "a" * 16))
        )
        data = self.assertOk(self.call(0, Control.GET_IFACES))
        self.assertIn(iface("a" * 16, 1, 0), data)
        self.assertOk(self.take(0, "10.0.0.40"))
        self.assertEqual(self.host(0).addresses["10.0.0.40"], (24, "a" * 16))
        self.assertOk(self.call(0, Control.SET_IFACE_LINK_STATE, iface("a" * 16, 0, 0)))
        with capturedLogs() as events:
            self.assertFails(
                self.call(0, Control.ADD_PUBLIC_IP, addrInfo("10.0.0.41", 24, "b" * 17))
            )
            self.assertFails(
                self.call(
                    0, Control.ADD_PUBLIC_IP, addrInfo("10.0.0.41", 24, "c" * 300)
                )
            )
        self.assertIn(f'Interface name too long "{"b" * 17}"', loggedErrors(events))
        self.assertIn(
            f"Unknown interface {'c' * 300} for public address 10.0.0.41",
            loggedErrors(events),
        )
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertNotIn("10.0.0.41", [ip.address for ip in decodePublicIPList(data)])

    def test_addNoName(self) -> None:
        """ADD_PUBLIC_IP with an empty interface name (or none): ctdbd keeps
        an address without interfaces; it is never available, a take of it
        fails, and it can be deleted."""
        self.assertOk(
            self.call(0, Control.ADD_PUBLIC_IP, addrInfo("10.0.0.40", 24, ""))
        )
        self.assertOk(
            self.call(0, Control.ADD_PUBLIC_IP, addrInfo("10.0.0.42", 24, None))
        )
        data = self.assertOk(
            self.call(0, Control.GET_PUBLIC_IP_INFO, sockAddr("10.0.0.40"))
        )
        self.assertEqual(
            data, publicIp(UNKNOWN, "10.0.0.40") + struct.pack("<II", UNKNOWN, 0)
        )
        only = CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS, flags=only))
        self.assertEqual(
            decodePublicIPList(data), decodePublicIPList(publicIpList(B, A))
        )
        with capturedLogs():
            self.assertFails(self.take(0, "10.0.0.40"))
        self.assertOk(self.release(0, "10.0.0.40", 1))
        self.assertOk(
            self.call(0, Control.DEL_PUBLIC_IP, addrInfo("10.0.0.40", 24, None))
        )
        self.assertOk(
            self.call(0, Control.DEL_PUBLIC_IP, addrInfo("10.0.0.42", 24, None))
        )
        data = self.assertOk(self.call(0, Control.GET_IFACES))
        self.assertEqual(
            data, struct.pack("<I", 2) + iface("eth1", 1, 0) + iface("eth0", 1, 0)
        )

    def test_linkStateNames(self) -> None:
        """SET_IFACE_LINK_STATE: an empty name names no interface."""
        self.assertFails(self.call(0, Control.SET_IFACE_LINK_STATE, iface("", 0, 0)))
        self.assertFails(
            self.call(0, Control.SET_IFACE_LINK_STATE, iface("a" * 16, 0, 0))
        )

    def test_gratuitousArpNoName(self) -> None:
        """SEND_GRATUITOUS_ARP without an interface: the ARPs fail and are
        logged; the control itself succeeds, as ctdbd's."""
        with capturedLogs() as events:
            self.assertOk(self.call(0, Control.SEND_GRATUITOUS_ARP, addrInfo(A, 0, "")))
            for _ in range(3):
                self.clock.advance(1)
        self.assertEqual(len(loggedErrors(events)), 3)


class RaceTests(TakeoverCase):
    """One take, update or release of an address at a time, whichever
    control arrives while another is under way."""

    byScripts = True

    def setUp(self) -> None:
        super().setUp()
        self.events = RecordingEvents()
        self.cluster[0].setEventRunner(self.events)

    def test_releaseDuringTake(self) -> None:
        """A RELEASE_IP while the takeip event runs (the script has not put
        the address up yet) is refused, and does not undo the take."""
        self.events.hold.add("takeip")
        take = self.start(0, Control.TAKEOVER_IP, publicIp(0, A))
        with capturedLogs():
            self.assertFails(self.release(0, A, 1))
        self.host(0).addAddress(A, 24, "eth0")  # what the script does
        self.events.held[0].callback(0)
        self.assertEqual(self.finish(take).status, 0)
        vnn = self.node(0).table.find(A)
        assert vnn is not None
        self.assertEqual((vnn.pnn, vnn.ifaceName), (0, "eth0"))
        self.assertIn(("arp", A, "eth0"), self.host(0).calls)

    def test_takeDuringRelease(self) -> None:
        """A TAKEOVER_IP while the releaseip event runs (the address still
        up) is refused: answering "already held" would be wrong a moment
        later."""
        self.assertOk(self.take(0, A))
        self.host(0).addAddress(A, 24, "eth0")
        self.events.hold.add("releaseip")
        release = self.start(0, Control.RELEASE_IP, publicIp(1, A))
        with capturedLogs():
            self.assertFails(self.take(0, A))
        self.host(0).removeAddress(A, 24, "eth0")
        self.events.held[0].callback(0)
        self.assertEqual(self.finish(release).status, 0)
        vnn = self.node(0).table.find(A)
        assert vnn is not None
        self.assertEqual((vnn.pnn, vnn.iface), (1, None))
        # free again: the next run's take works
        self.assertOk(self.take(0, A))

    def test_takeDuringTakeLinkDown(self) -> None:
        """A second take refused while the first runs leaves the first's
        interface alone, even when the interface's link went down
        meanwhile (the next take moves it)."""
        self.events.hold.add("takeip")
        take = self.start(0, Control.TAKEOVER_IP, publicIp(0, B))
        self.assertOk(self.call(0, Control.SET_IFACE_LINK_STATE, iface("eth0", 0, 0)))
        with capturedLogs():
            self.assertFails(self.take(0, B))
        vnn = self.node(0).table.find(B)
        assert vnn is not None
        self.assertEqual(vnn.ifaceName, "eth0")
        self.events.held[0].callback(0)
        self.assertEqual(self.finish(take).status, 0)
        self.assertEqual((vnn.pnn, vnn.ifaceName), (0, "eth0"))
        data = self.assertOk(self.call(0, Control.GET_IFACES))
        self.assertIn(iface("eth0", 0, 1), data)

    def test_deleteDuringFailedTake(self) -> None:
        """DEL_PUBLIC_IP of an address whose take then fails: the address
        never came up, so the next release (a redundant one) deletes it
        instead of leaving it marked for ever."""
        self.events.hold.add("takeip")
        take = self.start(0, Control.TAKEOVER_IP, publicIp(0, A))
        self.assertOk(self.call(0, Control.DEL_PUBLIC_IP, addrInfo(A, 24, None)))
        with capturedLogs():
            self.events.held[0].callback(1)
            self.assertEqual(self.finish(take).status, 1)
        self.assertOk(self.release(0, A, UNKNOWN))
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(data, publicIpList(B))
        data = self.assertOk(self.call(0, Control.GET_IFACES))
        self.assertIn(iface("eth0", 1, 0), data)


class DaemonRaceTests(TakeoverCase):
    """The same in daemon mode, where the daemon itself changes the host."""

    def test_takeDuringKill(self) -> None:
        """While a release waits for the connections to be reset, a take of
        the address is refused; the release then completes."""
        host = self.host(0)
        host.deferKills = True
        self.assertOk(self.take(0, A))
        self.assertOk(
            self.call(0, Control.TCP_ADD, connection(("10.0.0.99", 1), (A, 445)))
        )
        release = self.start(0, Control.RELEASE_IP, publicIp(2, A))
        with capturedLogs():
            self.assertFails(self.take(0, A))
            self.assertFails(self.release(0, A, 1))
        host.kills[0].callback(1)
        self.assertEqual(self.finish(release).status, 0)
        self.assertEqual(host.addresses, {})
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(decodePublicIPList(data)[1].pnn, 2)

    def test_deleteDuringTake(self) -> None:
        """DEL_PUBLIC_IP of an address being taken marks it; the take
        finishes, the address is no longer available, and the release of
        the next run takes it down and deletes it."""
        events = RecordingEvents()
        events.hold.add("takeip")
        self.cluster[0].setEventRunner(events)
        take = self.start(0, Control.TAKEOVER_IP, publicIp(0, A))
        self.assertOk(self.call(0, Control.DEL_PUBLIC_IP, addrInfo(A, 24, None)))
        events.held[0].callback(0)
        self.assertEqual(self.finish(take).status, 0)
        self.assertEqual(self.host(0).addresses, {A: (24, "eth0")})
        only = CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS, flags=only))
        self.assertEqual([ip.address for ip in decodePublicIPList(data)], [B])
        self.assertOk(self.release(0, A, 1))
        self.assertEqual(self.host(0).addresses, {})
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(data, publicIpList(B))

    def test_deleteUnownedDuringTake(self) -> None:
        """An address whose owner is unknown (a failed updateip left it so)
        but whose take runs is only marked by DEL_PUBLIC_IP: deleted at
        once, the address the take puts up would be nobody's."""
        events = RecordingEvents()
        self.cluster[0].setEventRunner(events)
        self.assertOk(self.take(0, B))
        events.results["updateip"] = 1
        self.assertOk(self.call(0, Control.SET_IFACE_LINK_STATE, iface("eth0", 0, 0)))
        with capturedLogs():
            self.assertFails(self.take(0, B), 1)
        vnn = self.node(0).table.find(B)
        assert vnn is not None
        self.assertEqual((vnn.pnn, vnn.ifaceName), (UNKNOWN, "eth0"))
        self.host(0).removeAddress(B, 24, "eth1")
        self.assertOk(self.call(0, Control.SET_IFACE_LINK_STATE, iface("eth0", 1, 0)))
        events.hold.add("takeip")
        take = self.start(0, Control.TAKEOVER_IP, publicIp(0, B))
        self.assertOk(self.call(0, Control.DEL_PUBLIC_IP, addrInfo(B, 24, None)))
        self.assertIs(self.node(0).table.find(B), vnn)
        events.held[0].callback(0)
        self.assertEqual(self.finish(take).status, 0)
        self.assertEqual(self.host(0).addresses, {B: (24, "eth0")})
        self.assertOk(self.release(0, B, 1))
        self.assertEqual(self.host(0).addresses, {})
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(data, publicIpList(A))

    def test_deleteDuringKill(self) -> None:
        """DEL_PUBLIC_IP while the address is being released: it goes once
        released, with the interface only it named."""
        host = self.host(0)
        host.deferKills = True
        self.assertOk(
            self.call(0, Control.ADD_PUBLIC_IP, addrInfo("10.0.0.40", 24, "eth1"))
        )
        self.assertOk(self.call(0, Control.DEL_PUBLIC_IP, addrInfo(B, 24, None)))
        self.assertOk(self.take(0, "10.0.0.40"))
        self.assertOk(
            self.call(
                0, Control.TCP_ADD, connection(("10.0.0.99", 1), ("10.0.0.40", 445))
            )
        )
        release = self.start(0, Control.RELEASE_IP, publicIp(1, "10.0.0.40"))
        self.assertOk(
            self.call(0, Control.DEL_PUBLIC_IP, addrInfo("10.0.0.40", 24, None))
        )
        host.kills[0].callback(1)
        self.assertEqual(self.finish(release).status, 0)
        data = self.assertOk(self.call(0, Control.GET_PUBLIC_IPS))
        self.assertEqual(data, publicIpList(A))
        data = self.assertOk(self.call(0, Control.GET_IFACES))
        self.assertEqual(data, struct.pack("<I", 1) + iface("eth0", 1, 0))
