# -*- test-case-name: tests.daemon.test_core -*-
"""
Tests for L{ctdb.daemon.core}: control forwarding, messages, tunnels,
keepalives, client handling and statistics, all on a L{Clock} with the fakes
of L{ctdb.testing}.
"""

from __future__ import annotations

import errno
import os

from twisted.internet.base import DelayedCall
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from ctdb.daemon.core import SAMBA_VERSION, Daemon, DaemonConfig, keepaliveVersion
from ctdb.interfaces import (
    IClientConnection,
    IClientObserver,
    INodeTransport,
    INodeTransportListener,
    IRecordProtocol,
)
from ctdb.nodes import parseNodes
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.testing import FakeClient, FakeNodeTransport, connectedNodes

SRVID = 0xAE00000000000001
DISCONNECTED = C.NODE_FLAGS_DISCONNECTED


class _Standalone:
    """One started daemon (pnn 0 of C{n}) on a bare L{FakeNodeTransport}."""

    def __init__(
        self,
        n: int = 3,
        *,
        pnn: int = 0,
        tunables: dict[str, int] | None = None,
        nodes: str | None = None,
    ) -> None:
        self.clock = Clock()
        text = (
            nodes
            if nodes is not None
            else "".join(f"10.0.0.{i + 1}\n" for i in range(n))
        )
        self.nodeMap = parseNodes(text)
        self.transport = FakeNodeTransport(pnn)
        self.shutdowns: list[float] = []
        self.daemon = Daemon(
            reactor=self.clock,  # type: ignore[arg-type]
            config=DaemonConfig(nodeMap=self.nodeMap, pnn=pnn, tunables=tunables or {}),
            transport=self.transport,
            shutdownCallback=lambda: self.shutdowns.append(self.clock.seconds()),
        )
        self.daemon.startService()

    def keepalive(self, src: int, version: int, uptime: int) -> P.ReqKeepalive:
        header = P.Header(P.Operation.REQ_KEEPALIVE, self.daemon.pnn, src, 0)
        return P.ReqKeepalive(header, version, uptime)


def _reqControl(
    opcode: int,
    *,
    destnode: int = 0,
    srcnode: int = 1,
    reqid: int = 9,
    flags: int = 0,
    data: bytes = b"",
) -> P.ReqControl:
    header = P.Header(P.Operation.REQ_CONTROL, destnode, srcnode, reqid)
    return P.ReqControl(header, opcode, 0, 0, flags, data)


class StartupTests(SynchronousTestCase):
    """Starting and stopping the daemon service."""

    def test_startConnectsPeers(self) -> None:
        """
        startService starts the transport and asks it to connect to every
        other node that is not deleted; peers start out DISCONNECTED and the
        daemon is RUNNING.
        """
        s = _Standalone(nodes="10.0.0.1\n#\n10.0.0.3\n")
        self.assertTrue(s.transport.started)
        self.assertEqual(s.transport.connectRequests, {2: "10.0.0.3"})
        self.assertEqual(s.daemon.runstate, C.RunState.RUNNING)
        flags = [n.flags for n in s.daemon.nodes]
        self.assertEqual(flags[0], 0)
        self.assertTrue(flags[1] & C.NODE_FLAGS_DELETED)
        self.assertTrue(flags[2] & DISCONNECTED)

    def test_stopService(self) -> None:
        """
        stopService shuts the transport down, drops every client and sets
        the runstate to SHUTDOWN.
        """
        s = _Standalone()
        client = FakeClient(s.daemon)
        d = s.daemon.stopService()
        self.successResultOf(d)
        self.assertTrue(s.transport.stopped)
        self.assertFalse(client.connected)
        self.assertEqual(s.daemon.clients, {})
        self.assertEqual(s.daemon.runstate, C.RunState.SHUTDOWN)

    def test_interfaces(self) -> None:
        """The daemon is a transport listener; the fakes provide theirs."""
        s = _Standalone()
        self.assertTrue(verifyObject(INodeTransportListener, s.daemon))
        self.assertTrue(verifyObject(INodeTransport, s.transport))
        self.assertTrue(verifyObject(IClientConnection, FakeClient(s.daemon)))


class ControlForwardingTests(SynchronousTestCase):
    """A client's control to another node goes there and back."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster = connectedNodes(3, self.clock)
        self.client = self.cluster.client(0)

    def test_allConnected(self) -> None:
        """connectedNodes leaves every daemon connected to every other."""
        for d in self.cluster:
            self.assertEqual([n.flags for n in d.nodes], [0, 0, 0])

    def test_forwardAndReply(self) -> None:
        """
        GET_PNN sent by a client of node 0 to node 2 is answered by node 2,
        and node 0 hands the reply back with the client's own reqid.
        """
        reqid = self.client.control(Control.GET_PNN, destnode=2)
        self.assertIsNone(self.client.reply(reqid))
        self.cluster.flush()
        reply = self.client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 2)
        self.assertEqual(reply.header.reqid, reqid)
        self.assertEqual(reply.header.srcnode, 2)
        self.assertEqual(self.cluster[2].stats.counters["node.req_control"], 1)
        self.assertEqual(self.cluster[0].stats.counters["node.reply_control"], 1)

    def test_forwardedRequestCarriesClientId(self) -> None:
        """
        The control node 0 puts on the wire has node 0 as srcnode, a daemon
        reqid and the client's id in client_id (ctdb_daemon_send_control).
        """
        self.client.control(Control.GET_PNN, destnode=2, srvid=5)
        transport = self.cluster.network.transports[0]
        [req] = [p for p in transport.sentPackets(2) if isinstance(p, P.ReqControl)]
        self.assertEqual(req.header.srcnode, 0)
        self.assertEqual(req.header.destnode, 2)
        self.assertEqual(req.client_id, self.client.client_id)
        self.assertEqual(req.srvid, 5)
        self.assertEqual(req.opcode, Control.GET_PNN)

    def test_replyDataAndErrors(self) -> None:
        """
        Data comes back from the remote node; a failing remote control comes
        back with status -1 and no data.
        """
        ok = self.client.control(Control.GET_RUNSTATE, destnode=1)
        bad = self.client.control(Control.GET_RUNSTATE, b"xx", destnode=1)
        self.cluster.flush()
        okReply, badReply = self.client.reply(ok), self.client.reply(bad)
        assert okReply is not None and badReply is not None
        self.assertEqual(okReply.status, 0)
        self.assertEqual(C.decodeU32(okReply.data), C.RunState.RUNNING)
        self.assertEqual(badReply.status, -1)
        self.assertEqual(badReply.data, b"")

    def test_disconnectedNode(self) -> None:
        """
        A control to a disconnected (or nonexistent) node fails at once with
        status -1 and "ctdb_control to disconnected node".
        """
        self.cluster.network.killNode(2)
        self.assertTrue(self.cluster[0].nodes[2].flags & DISCONNECTED)
        for dest in (2, 7):
            reqid = self.client.control(Control.GET_PNN, destnode=dest)
            reply = self.client.reply(reqid)
            assert reply is not None
            self.assertEqual(reply.status, -1)
            self.assertEqual(reply.errmsg, b"ctdb_control to disconnected node")

    def test_peerDiesWithControlPending(self) -> None:
        """
        A forwarded control still waiting for its reply fails with "node is
        disconnected" when the destination dies.
        """
        reqid = self.client.control(Control.GET_PNN, destnode=2)
        self.cluster.network.killNode(2)
        self.cluster.flush()
        reply = self.client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, -1)
        self.assertEqual(reply.errmsg, b"node is disconnected")
        self.assertEqual(self.cluster[0]._pending, {})

    def test_reconnectAfterRestart(self) -> None:
        """
        A node that comes back is connected again and answers controls.
        """
        self.cluster.network.killNode(2)
        self.cluster.network.reviveNode(2)
        self.cluster.flush()
        self.assertEqual(self.cluster[0].nodes[2].flags & DISCONNECTED, 0)
        reqid = self.client.control(Control.GET_PNN, destnode=2)
        self.cluster.flush()
        reply = self.client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 2)

    def test_localControlWithCurrentNode(self) -> None:
        """CURRENT_NODE means the client's own node, answered at once."""
        reqid = self.client.control(Control.GET_PNN)
        reply = self.client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 0)
        self.assertEqual(reply.header.srcnode, 0)


class ControlTimeoutTests(SynchronousTestCase):
    """Controls without an answer time out after ControlTimeout seconds."""

    def test_daemonSendControlTimesOut(self) -> None:
        """
        sendControl fires with status -1 "ctdb_control timed out" after
        ControlTimeout, counts timeouts.control and ignores a late reply.
        """
        s = _Standalone()
        s.transport.connect(1)
        d = s.daemon.sendControl(1, Control.GET_PNN)
        [req] = s.transport.sentPackets(1)
        s.clock.advance(59)
        self.assertNoResult(d)
        s.clock.advance(1)
        reply = self.successResultOf(d)
        self.assertEqual((reply.status, reply.errmsg), (-1, b"ctdb_control timed out"))
        self.assertEqual(s.daemon.stats.counters["timeouts.control"], 1)
        late = P.ReplyControl(
            P.Header(P.Operation.REPLY_CONTROL, 0, 1, req.header.reqid), 1
        )
        s.transport.deliver(1, late)  # no pending entry: logged and dropped
        self.assertEqual(s.daemon._pending, {})

    def test_replyCancelsTimer(self) -> None:
        """A reply in time fires the Deferred and cancels the timeout."""
        s = _Standalone()
        s.transport.connect(1)
        d = s.daemon.sendControl(1, Control.GET_PNN)
        [req] = s.transport.sentPackets(1)
        s.transport.deliver(
            1,
            P.ReplyControl(
                P.Header(P.Operation.REPLY_CONTROL, 0, 1, req.header.reqid), 1
            ),
        )
        self.assertEqual(self.successResultOf(d).status, 1)
        self.assertEqual(
            [
                c
                for c in s.clock.getDelayedCalls()
                if isinstance(c, DelayedCall) and c.func == s.daemon._controlTimedOut
            ],
            [],
        )

    def test_clientControlTimesOutThroughCluster(self) -> None:
        """
        With ControlTimeout=3 and a peer that swallows requests, the client
        gets "ctdb_control timed out" after 3 seconds.
        """
        clock = Clock()
        cluster = connectedNodes(2, clock, tunables={"ControlTimeout": 3})
        cluster.network.blackholes.add((0, 1))
        client = cluster.client(0)
        reqid = client.control(Control.GET_PNN, destnode=1)
        cluster.advance(2)
        self.assertIsNone(client.reply(reqid))
        cluster.advance(1)
        reply = client.reply(reqid)
        assert reply is not None
        self.assertEqual((reply.status, reply.errmsg), (-1, b"ctdb_control timed out"))

    def test_noreplyControlHasNoPending(self) -> None:
        """A NOREPLY control succeeds at once and leaves nothing pending."""
        s = _Standalone()
        s.transport.connect(1)
        d = s.daemon.sendControl(1, Control.PING, flags=P.CTDB_CTRL_FLAG_NOREPLY)
        self.assertEqual(self.successResultOf(d).status, 0)
        self.assertEqual(s.daemon._pending, {})
        [req] = s.transport.sentPackets(1)
        assert isinstance(req, P.ReqControl)
        self.assertEqual(req.flags, P.CTDB_CTRL_FLAG_NOREPLY)


class BroadcastControlTests(SynchronousTestCase):
    """Broadcast controls (ctdb_daemon_send_control)."""

    def test_broadcastNeedsNoreply(self) -> None:
        """A broadcast control without NOREPLY fails and sends nothing."""
        clock = Clock()
        cluster = connectedNodes(3, clock)
        for t in cluster.network.transports.values():
            t.clearSent()
        for dest in P.BROADCASTS:
            d = cluster[0].sendControl(dest, Control.PING)
            self.assertEqual(self.successResultOf(d).status, -1)
        self.assertEqual(cluster.network.transports[0].sent, [])

    def test_broadcastReachesEveryNodeIncludingSelf(self) -> None:
        """
        SET_DEBUG broadcast to ALL with NOREPLY runs on every node, the
        sender included, and nobody replies.
        """
        clock = Clock()
        cluster = connectedNodes(3, clock)
        client = cluster.client(1)
        client.control(
            Control.SET_DEBUG,
            C.encodeI32(7),
            destnode=P.CTDB_BROADCAST_ALL,
            flags=P.CTDB_CTRL_FLAG_NOREPLY,
        )
        cluster.flush()
        self.assertEqual([d.debugLevel for d in cluster], [7, 7, 7])
        self.assertEqual(client.replies(), [])
        self.assertEqual(
            [d.stats.counters["node.reply_control"] for d in cluster], [0, 0, 0]
        )

    def test_broadcastConnectedSkipsDeadNodes(self) -> None:
        """BROADCAST_CONNECTED does not reach a disconnected node."""
        clock = Clock()
        cluster = connectedNodes(3, clock)
        cluster.network.killNode(2)
        d = cluster[0].sendControl(
            P.CTDB_BROADCAST_CONNECTED,
            Control.SET_DEBUG,
            C.encodeI32(9),
            flags=P.CTDB_CTRL_FLAG_NOREPLY,
        )
        self.assertEqual(self.successResultOf(d).status, 0)
        cluster.flush()
        self.assertEqual([d.debugLevel for d in cluster][:2], [9, 9])
        self.assertNotEqual(cluster[2].debugLevel, 9)

    def test_remoteNoreplyControlIsNotAnswered(self) -> None:
        """A control from a node with NOREPLY runs and queues no reply."""
        s = _Standalone()
        s.transport.connect(1)
        s.transport.deliver(
            1,
            _reqControl(
                Control.SET_DEBUG, data=C.encodeI32(4), flags=P.CTDB_CTRL_FLAG_NOREPLY
            ),
        )
        self.assertEqual(s.daemon.debugLevel, 4)
        self.assertEqual(s.transport.sent, [])

    def test_remoteControlAnswered(self) -> None:
        """
        A control from another node is answered to its srcnode with its
        reqid; a failure carries status -1 and no data.
        """
        s = _Standalone()
        s.transport.connect(1)
        s.transport.deliver(1, _reqControl(Control.GET_PNN, reqid=33))
        s.transport.deliver(1, _reqControl(Control.GET_RUNSTATE, reqid=34, data=b"x"))
        first, second = s.transport.sentPackets(1)
        assert isinstance(first, P.ReplyControl) and isinstance(second, P.ReplyControl)
        self.assertEqual(
            (first.header.reqid, first.header.destnode, first.status), (33, 1, 0)
        )
        self.assertEqual(
            (second.header.reqid, second.status, second.data), (34, -1, b"")
        )

    def test_selfAddressedControlIsDeferred(self) -> None:
        """sendControl to our own pnn is handled on the next reactor turn."""
        s = _Standalone()
        d = s.daemon.sendControl(0, Control.GET_PNN)
        self.assertNoResult(d)
        s.clock.advance(0)
        self.assertEqual(self.successResultOf(d).status, 0)


class MessageTests(SynchronousTestCase):
    """REQ_MESSAGE delivery (ctdb_daemon_send_message, srvid dispatch)."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster = connectedNodes(3, self.clock)

    def _registered(self, pnn: int, srvid: int = SRVID) -> FakeClient:
        client = self.cluster.client(pnn)
        reqid = client.control(Control.REGISTER_SRVID, srvid=srvid)
        reply = client.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 0)
        return client

    def test_localDelivery(self) -> None:
        """
        A message to the client's own node (CURRENT_NODE) reaches every
        local client registered for the srvid, and only those.
        """
        listener = self._registered(0)
        other = self._registered(0, SRVID + 1)
        sender = self.cluster.client(0)
        sender.sendMessage(P.CTDB_CURRENT_NODE, SRVID, b"hello")
        self.assertEqual(listener.messages(), [(SRVID, b"hello")])
        self.assertEqual(other.messages(), [])
        self.assertEqual(sender.messages(), [])

    def test_remoteDelivery(self) -> None:
        """A message to another node reaches that node's registered client."""
        listener = self._registered(2)
        local = self._registered(0)
        self.cluster.client(0).sendMessage(2, SRVID, b"there")
        self.assertEqual(listener.messages(), [])
        self.cluster.flush()
        self.assertEqual(listener.messages(), [(SRVID, b"there")])
        self.assertEqual(local.messages(), [])
        self.assertEqual(self.cluster[2].stats.counters["node.req_message"], 1)

    def test_broadcastAll(self) -> None:
        """BROADCAST_ALL reaches registered clients on every node, local too."""
        listeners = [self._registered(pnn) for pnn in range(3)]
        self.cluster.client(1).sendMessage(P.CTDB_BROADCAST_ALL, SRVID, b"all")
        self.cluster.flush()
        for listener in listeners:
            self.assertEqual(listener.messages(), [(SRVID, b"all")])

    def test_broadcastConnected(self) -> None:
        """
        BROADCAST_CONNECTED reaches the connected nodes (sender included) and
        not a dead one.
        """
        listeners = [self._registered(pnn) for pnn in range(3)]
        self.cluster.network.killNode(2)
        self.cluster.client(0).sendMessage(P.CTDB_BROADCAST_CONNECTED, SRVID, b"c")
        self.cluster.flush()
        self.assertEqual([len(x.messages()) for x in listeners], [1, 1, 0])

    def test_srvidAll(self) -> None:
        """A client registered for CTDB_SRVID_ALL gets every message."""
        catchAll = self._registered(1, 0xFFFFFFFFFFFFFFFF)
        self.cluster.client(0).sendMessage(1, 0x1234, b"x")
        self.cluster.flush()
        self.assertEqual(catchAll.messages(), [(0x1234, b"x")])

    def test_internalHandler(self) -> None:
        """Daemon-internal handlers get messages sent to their srvid."""
        got: list[tuple[int, bytes]] = []
        self.cluster[1].addMessageHandler(
            SRVID, lambda srvid, data: got.append((srvid, data))
        )
        self.cluster[0].sendMessage(1, SRVID, b"internal")
        self.cluster.flush()
        self.assertEqual(got, [(SRVID, b"internal")])

    def test_failingInternalHandler(self) -> None:
        """A handler that raises is logged; other handlers still run."""
        got: list[bytes] = []

        def broken(srvid: int, data: bytes) -> None:
            raise RuntimeError("boom")

        self.cluster[0].addMessageHandler(SRVID, broken)
        self.cluster[0].addMessageHandler(SRVID, lambda s, d: got.append(d))
        self.cluster[0].sendMessage(0, SRVID, b"m")
        self.assertEqual(got, [b"m"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_messageToDisconnectedNodeDropped(self) -> None:
        """A message for a dead node is dropped without error."""
        listener = self._registered(2)
        self.cluster.network.killNode(2)
        self.cluster.client(0).sendMessage(2, SRVID, b"lost")
        self.cluster.flush()
        self.assertEqual(listener.messages(), [])

    def test_deregister(self) -> None:
        """
        After DEREGISTER_SRVID the client gets nothing more; deregistering a
        srvid it does not hold answers ENOENT, as srvid_deregister.
        """
        listener = self._registered(0)
        reqid = listener.control(Control.DEREGISTER_SRVID, srvid=SRVID)
        reply = listener.reply(reqid)
        assert reply is not None
        self.assertEqual(reply.status, 0)
        self.cluster.client(0).sendMessage(0, SRVID, b"gone")
        self.assertEqual(listener.messages(), [])
        again = listener.reply(listener.control(Control.DEREGISTER_SRVID, srvid=SRVID))
        assert again is not None
        self.assertEqual(again.status, errno.ENOENT)

    def test_messageStats(self) -> None:
        """client.req_message and client_packets_sent count messages."""
        listener = self._registered(0)
        before = self.cluster[0].stats.counters["client_packets_sent"]
        self.cluster.client(0).sendMessage(0, SRVID, b"x")
        self.assertEqual(len(listener.messages()), 1)
        counters = self.cluster[0].stats.counters
        self.assertEqual(counters["client.req_message"], 1)
        self.assertEqual(counters["client_packets_sent"], before + 1)


class ClientTests(SynchronousTestCase):
    """Client connections: ids, cleanup, broken clients."""

    def test_clientIdsAndCount(self) -> None:
        """Each client gets a new id; num_clients follows the count."""
        s = _Standalone()
        a, b = FakeClient(s.daemon), FakeClient(s.daemon)
        self.assertNotEqual(a.client_id, b.client_id)
        self.assertEqual(s.daemon.stats.counters["num_clients"], 2)
        a.disconnect()
        self.assertEqual(s.daemon.stats.counters["num_clients"], 1)
        self.assertEqual(list(s.daemon.clients), [b.client_id])

    def test_disconnectCleansUp(self) -> None:
        """
        A client that goes away loses its srvid and tunnel registrations,
        and every IClientObserver is told.
        """
        gone: list[object] = []

        @implementer(IClientObserver)
        class Observer:
            def clientGone(self, client: IClientConnection) -> None:
                gone.append(client)

        clock = Clock()
        cluster = connectedNodes(1, clock)
        cluster[0].addClientObserver(Observer())
        client = cluster.client(0)
        client.control(Control.REGISTER_SRVID, srvid=SRVID)
        client.control(Control.TUNNEL_REGISTER, srvid=0x77)
        self.assertIn(SRVID, cluster[0].srvids)
        self.assertIn(0x77, cluster[0].tunnels)
        client.disconnect()
        self.assertNotIn(SRVID, cluster[0].srvids)
        self.assertNotIn(0x77, cluster[0].tunnels)
        self.assertEqual(gone, [client])

    def test_malformedClientPacketDropsClient(self) -> None:
        """A client packet that does not decode gets the client dropped."""
        s = _Standalone()
        client = FakeClient(s.daemon)
        client.send(b"\x08\x00\x00\x00garbage" + b"\0" * 24)
        self.assertTrue(client.transport.disconnecting)
        self.assertNotIn(client.client_id, s.daemon.clients)
        self.assertEqual(s.daemon.stats.counters["client_packets_recv"], 1)

    def test_unexpectedOperationDropsClient(self) -> None:
        """A client may not send REPLY_CONTROL or keepalives: dropped."""
        s = _Standalone()
        client = FakeClient(s.daemon)
        client.send(P.ReplyControl(P.Header(P.Operation.REPLY_CONTROL), 0))
        self.assertFalse(client.connected)

    def test_clientCallWithoutDatabases(self) -> None:
        """
        The base daemon answers REQ_CALL with REPLY_ERROR (no database
        layer), echoing the reqid.
        """
        s = _Standalone()
        client = FakeClient(s.daemon)
        header = P.Header(P.Operation.REQ_CALL, 0, 0, 41)
        client.send(P.ReqCall(header, 0, 0x1234, P.CTDB_FETCH_FUNC, 0, b"key"))
        [pkt] = client.packets()
        assert isinstance(pkt, P.ReplyError)
        self.assertEqual((pkt.header.reqid, pkt.status), (41, -1))
        self.assertEqual(s.daemon.stats.counters["client.req_call"], 1)


class TunnelTests(SynchronousTestCase):
    """REQ_TUNNEL between clients on different nodes."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster = connectedNodes(2, self.clock)
        self.a = self.cluster.client(0)
        self.b = self.cluster.client(1)
        for c in (self.a, self.b):
            reply = c.reply(c.control(Control.TUNNEL_REGISTER, srvid=0xAB))
            assert reply is not None
            self.assertEqual(reply.status, 0)

    def _tunnel(self, dest: int, tunnel_id: int = 0xAB) -> None:
        header = P.Header(P.Operation.REQ_TUNNEL, dest, 0, 3)
        self.a.send(P.ReqTunnel(header, tunnel_id, P.CTDB_TUNNEL_FLAG_REQUEST, b"data"))
        self.cluster.flush()

    def test_tunnelDelivered(self) -> None:
        """A tunnel packet reaches the client holding the id on the far node."""
        self._tunnel(1)
        tunnels = [p for p in self.b.packets() if isinstance(p, P.ReqTunnel)]
        self.assertEqual(len(tunnels), 1)
        self.assertEqual((tunnels[0].tunnel_id, tunnels[0].data), (0xAB, b"data"))
        self.assertEqual(self.cluster[1].stats.counters["node.req_tunnel"], 1)

    def test_invalidDestinationDropped(self) -> None:
        """
        As daemon_request_tunnel_from_client, CURRENT_NODE, broadcasts and
        unregistered tunnel ids are dropped.
        """
        self._tunnel(P.CTDB_CURRENT_NODE)
        self._tunnel(P.CTDB_BROADCAST_ALL)
        self._tunnel(1, tunnel_id=0xCD)
        for c in (self.a, self.b):
            self.assertEqual([p for p in c.packets() if isinstance(p, P.ReqTunnel)], [])


class KeepaliveTests(SynchronousTestCase):
    """Keepalives and dead-node detection (ctdb_keepalive.c)."""

    def test_keepalivesSent(self) -> None:
        """
        Every KeepaliveInterval each connected peer gets a 40-byte keepalive
        with our version and uptime.
        """
        s = _Standalone()
        s.transport.connect(1)
        s.clock.advance(5)
        s.clock.advance(5)
        kas = s.transport.sentPackets(1)
        self.assertEqual(len(kas), 2)
        for ka in kas:
            assert isinstance(ka, P.ReqKeepalive)
            self.assertEqual(ka.version, keepaliveVersion())
        self.assertEqual([k.uptime for k in kas], [5, 10])  # type: ignore[union-attr]
        self.assertEqual([len(d) for _, d in s.transport.sent], [40, 40])
        self.assertEqual(s.daemon.stats.counters["keepalive_packets_sent"], 2)
        self.assertEqual(s.transport.sentPackets(2), [])  # not connected

    def test_silentPeerMarkedDead(self) -> None:
        """
        A peer that sends nothing for KeepaliveLimit intervals is marked
        DISCONNECTED and its links are restarted; nodeConnected clears it.
        """
        s = _Standalone()
        s.transport.connect(1)
        s.clock.pump([5] * 4)
        self.assertEqual(s.daemon.nodes[1].flags & DISCONNECTED, 0)
        s.clock.advance(5)
        self.assertTrue(s.daemon.nodes[1].flags & DISCONNECTED)
        self.assertEqual(s.transport.restarted, [1])
        s.transport.connect(1)
        self.assertEqual(s.daemon.nodes[1].flags & DISCONNECTED, 0)
        self.assertEqual(s.daemon.nodes[1].dead_count, 0)

    def test_trafficKeepsPeerAlive(self) -> None:
        """Any packet from the peer resets its dead count."""
        s = _Standalone()
        s.transport.connect(1)
        for _ in range(12):
            s.transport.deliver(1, s.keepalive(1, keepaliveVersion(), 0))
            s.clock.advance(5)
        self.assertEqual(s.daemon.nodes[1].flags & DISCONNECTED, 0)
        self.assertEqual(s.daemon.stats.counters["keepalive_packets_recv"], 12)

    def test_clusterPartitionDetectedByKeepalive(self) -> None:
        """
        In a cluster, a link that silently drops everything is declared dead
        by keepalives after KeepaliveInterval * KeepaliveLimit seconds, and
        comes back after the restart.
        """
        clock = Clock()
        cluster = connectedNodes(2, clock)
        cluster.network.blackholes.add((1, 0))
        cluster.advance(24)
        self.assertEqual(cluster[0].nodes[1].flags & DISCONNECTED, 0)
        cluster.advance(1)
        self.assertTrue(cluster[0].nodes[1].flags & DISCONNECTED)
        cluster.network.blackholes.clear()
        cluster.advance(1)
        self.assertEqual(cluster[0].nodes[1].flags & DISCONNECTED, 0)
        self.assertEqual(cluster[1].nodes[0].flags & DISCONNECTED, 0)

    def test_versionMismatchLongerUptimeShutsDown(self) -> None:
        """
        A keepalive with another version from a node up longer than us shuts
        this daemon down (ctdb_request_keepalive).
        """
        s = _Standalone()
        s.transport.connect(1)
        s.clock.advance(10)
        s.transport.deliver(1, s.keepalive(1, SAMBA_VERSION + 1, 11))
        s.clock.advance(0)
        self.assertEqual(s.shutdowns, [10])

    def test_versionMismatchEqualUptime(self) -> None:
        """
        At equal uptime the lower version shuts down: a higher peer version
        stops us, a lower one does not.
        """
        s = _Standalone()
        s.transport.connect(1)
        s.transport.deliver(1, s.keepalive(1, SAMBA_VERSION - 1, 0))
        s.clock.advance(0)
        self.assertEqual(s.shutdowns, [])
        s.transport.deliver(1, s.keepalive(1, SAMBA_VERSION + 1, 0))
        s.clock.advance(0)
        self.assertEqual(len(s.shutdowns), 1)

    def test_versionMismatchShorterUptimeIgnored(self) -> None:
        """The younger node is the one to go: an older us stays up."""
        s = _Standalone()
        s.transport.connect(1)
        s.clock.advance(100)
        s.transport.deliver(1, s.keepalive(1, SAMBA_VERSION + 7, 3))
        s.clock.advance(0)
        self.assertEqual(s.shutdowns, [])

    def test_oldKeepaliveShutsDown(self) -> None:
        """A header-only (pre-4.8) keepalive means mixed versions: shut down."""
        s = _Standalone()
        s.transport.connect(1)
        bare = P.Header(P.Operation.REQ_KEEPALIVE, 0, 1).encode(P.HEADER_SIZE)
        s.transport.deliver(1, bare)
        s.clock.advance(0)
        self.assertEqual(len(s.shutdowns), 1)

    def test_shutdownOnlyOnce(self) -> None:
        """Repeated mismatches call the shutdown callback once."""
        s = _Standalone()
        s.transport.connect(1)
        for _ in range(3):
            s.transport.deliver(1, s.keepalive(1, SAMBA_VERSION + 1, 50))
        s.clock.advance(0)
        self.assertEqual(len(s.shutdowns), 1)

    def test_allowMixedVersions(self) -> None:
        """AllowMixedVersions=1 turns the version check off."""
        s = _Standalone(tunables={"AllowMixedVersions": 1})
        s.transport.connect(1)
        s.transport.deliver(1, s.keepalive(1, SAMBA_VERSION + 1, 1000))
        s.transport.deliver(1, P.Header(P.Operation.REQ_KEEPALIVE, 0, 1).encode(32))
        s.clock.advance(0)
        self.assertEqual(s.shutdowns, [])

    def test_clusterVersionMismatch(self) -> None:
        """
        In a cluster whose node 1 runs another version (and started
        earlier), node 0 shuts itself down after the first keepalive.
        """
        clock = Clock()
        cluster = connectedNodes(2, clock, start=False)
        cluster[1].startService()
        clock.advance(3)
        cluster[0].startService()
        cluster.flush()
        old = os.environ.get("CTDB_TEST_SAMBA_VERSION")
        os.environ["CTDB_TEST_SAMBA_VERSION"] = str(SAMBA_VERSION + 1)
        try:
            # node 1's keepalives now carry the other version
            cluster[1].checkForDeadNodes()
        finally:
            if old is None:
                del os.environ["CTDB_TEST_SAMBA_VERSION"]
            else:
                os.environ["CTDB_TEST_SAMBA_VERSION"] = old
        cluster.flush()
        self.assertEqual(cluster.shutdowns, [0])

    def test_keepaliveVersionEnvironment(self) -> None:
        """
        CTDB_TEST_SAMBA_VERSION overrides the keepalive version when it is a
        positive number; otherwise 4.17's (4 << 16 | 17) is used.
        """
        old = os.environ.get("CTDB_TEST_SAMBA_VERSION")
        try:
            os.environ.pop("CTDB_TEST_SAMBA_VERSION", None)
            self.assertEqual(keepaliveVersion(), 0x40011)
            os.environ["CTDB_TEST_SAMBA_VERSION"] = "262162"
            self.assertEqual(keepaliveVersion(), 262162)
            for bad in ("0", "-4", "x"):
                os.environ["CTDB_TEST_SAMBA_VERSION"] = bad
                self.assertEqual(keepaliveVersion(), 0x40011)
        finally:
            if old is None:
                os.environ.pop("CTDB_TEST_SAMBA_VERSION", None)
            else:
                os.environ["CTDB_TEST_SAMBA_VERSION"] = old


class RobustnessTests(SynchronousTestCase):
    """Broken input from nodes never hurts the daemon."""

    def test_malformedNodePacketRestartsLink(self) -> None:
        """
        A node packet that does not decode restarts that node's links; the
        daemon keeps working.
        """
        s = _Standalone()
        s.transport.connect(1)
        bad = P.Header(P.Operation.REQ_CONTROL, 0, 1, 5).encode(40) + b"\0" * 8
        s.transport.deliver(1, bad)
        self.assertEqual(s.transport.restarted, [1])
        s.transport.deliver(1, _reqControl(Control.GET_PNN, reqid=6))
        [reply] = s.transport.sentPackets(1)
        assert isinstance(reply, P.ReplyControl)
        self.assertEqual(reply.header.reqid, 6)

    def test_unknownOperationFromNode(self) -> None:
        """An unknown operation number is malformed: link restarted."""
        s = _Standalone()
        s.transport.connect(1)
        s.transport.deliver(1, P.Header(77, 0, 1, 5).encode(32))
        self.assertEqual(s.transport.restarted, [1])

    def test_recordProtocolGetsCallPackets(self) -> None:
        """Call-path packets from nodes go to the record protocol."""
        seen: list[int] = []

        @implementer(IRecordProtocol)
        class Records:
            def nodeCallPacket(self, pnn: int, pkt: P.Packet) -> None:
                seen.append(pkt.header.operation)

            def clientCall(self, client: IClientConnection, pkt: P.ReqCall) -> None:
                pass

        clock = Clock()
        transport = FakeNodeTransport(0)
        d = Daemon(
            reactor=clock,  # type: ignore[arg-type]
            config=DaemonConfig(nodeMap=parseNodes("10.0.0.1\n10.0.0.2\n"), pnn=0),
            transport=transport,
        )
        d.setRecordProtocol(Records())
        d.startService()
        transport.connect(1)
        stale = P.Header(P.Operation.REPLY_ERROR, 0, 1, 3, d.vnnMap.generation + 1)
        transport.deliver(1, P.ReplyError(stale, -1))
        self.assertEqual(seen, [], "a stale generation is dropped, as ctdb_input_pkt")
        current = P.Header(P.Operation.REPLY_ERROR, 0, 1, 3, d.vnnMap.generation)
        transport.deliver(1, P.ReplyError(current, -1))
        self.assertEqual(seen, [P.Operation.REPLY_ERROR])
        self.assertEqual(d.stats.counters["node.reply_error"], 2)


class StatisticsTests(SynchronousTestCase):
    """The counters of struct ctdb_statistics move."""

    def test_countersMove(self) -> None:
        """
        A forwarded control bumps client and node counters on both ends,
        keepalives are counted, and STATISTICS reports them.
        """
        clock = Clock()
        cluster = connectedNodes(2, clock)
        client = cluster.client(0)
        client.control(Control.GET_PNN, destnode=1)
        cluster.flush()
        c0, c1 = cluster[0].stats.counters, cluster[1].stats.counters
        self.assertEqual(c0["client_packets_recv"], 1)
        self.assertEqual(c0["client.req_control"], 1)
        self.assertEqual(c0["client_packets_sent"], 1)
        self.assertEqual(c0["node_packets_sent"], 1)
        self.assertEqual(c1["node_packets_recv"], 1)
        self.assertEqual(c1["node.req_control"], 1)
        self.assertEqual(c1["node_packets_sent"], 1)
        self.assertEqual(c0["node.reply_control"], 1)
        cluster.advance(5)
        self.assertEqual(c0["keepalive_packets_sent"], 1)
        self.assertEqual(c1["keepalive_packets_recv"], 1)
        stats = C.Statistics.decode(
            client.reply(client.control(Control.STATISTICS)).data  # type: ignore[union-attr]
        )
        self.assertEqual(stats.counters["client.req_control"], 2)
        self.assertEqual(stats.counters["num_clients"], 1)
        self.assertEqual(stats.counters["keepalive_packets_sent"], 1)
