# -*- test-case-name: tests.protocols.test_client -*-
"""
Tests for L{ctdb.protocols.client}: the client side (L{ClientConnection}:
reqids, timeouts, connection loss, messages, L{ControlFailed}) over a
L{StringTransport}, and with the daemon's end
(L{ctdb.transports.clientsocket}) against a real L{Daemon} over
L{twisted.test.iosim}.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from ctdb.daemon.core import Daemon, DaemonConfig
from ctdb.errors import ConnectionClosed, ControlFailed, ControlTimeout
from ctdb.interfaces import IClientConnection
from ctdb.nodes import parseNodes
from ctdb.protocols import packet as P
from ctdb.protocols.client import ClientConnection, connectClient
from ctdb.protocols.controls import Control
from ctdb.testing import FakeNodeTransport
from ctdb.transports.clientsocket import ClientProtocol, ClientServerFactory

SRVID = 0xAE00000000000007


def _written(transport: StringTransport) -> list[P.Packet]:
    """Decode (and clear) everything written to C{transport}."""
    data = transport.value()
    transport.clear()
    out = []
    while data:
        pkt, used = P.decode(data)
        out.append(pkt)
        data = data[used:]
    return out


def _reply(
    reqid: int, status: int = 0, data: bytes = b"", errmsg: bytes = b""
) -> bytes:
    header = P.Header(P.Operation.REPLY_CONTROL, 0, 0, reqid)
    return P.ReplyControl(header, status, data, errmsg).encode()


class ClientConnectionTests(SynchronousTestCase):
    """L{ClientConnection} over a StringTransport."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.conn = ClientConnection(reactor=self.clock, timeout=5)  # type: ignore[arg-type]
        self.transport = StringTransport()
        self.conn.makeConnection(self.transport)

    def test_requestOnTheWire(self) -> None:
        """control() writes a REQ_CONTROL with a fresh reqid and our fields."""
        self.conn.control(Control.GET_TUNABLE, b"abc", destnode=2, srvid=9, flags=1)
        self.conn.control(Control.PING)
        first, second = _written(self.transport)
        assert isinstance(first, P.ReqControl) and isinstance(second, P.ReqControl)
        self.assertEqual(first.opcode, Control.GET_TUNABLE)
        self.assertEqual((first.header.destnode, first.srvid, first.flags), (2, 9, 1))
        self.assertEqual(first.data, b"abc")
        self.assertEqual(second.header.destnode, P.CTDB_CURRENT_NODE)
        self.assertNotEqual(first.header.reqid, second.header.reqid)

    def test_repliesMatchedByReqid(self) -> None:
        """Replies in any order reach the request with the same reqid."""
        d1 = self.conn.control(Control.GET_PNN)
        d2 = self.conn.control(Control.GET_PID)
        r1, r2 = (p.header.reqid for p in _written(self.transport))
        self.conn.dataReceived(_reply(r2, 222) + _reply(r1, 111))
        self.assertEqual(self.successResultOf(d1).status, 111)
        self.assertEqual(self.successResultOf(d2).status, 222)

    def test_unknownReqidIgnored(self) -> None:
        """A reply nobody asked for is dropped; pending requests stay."""
        d = self.conn.control(Control.GET_PNN)
        self.conn.dataReceived(_reply(999, 1))
        self.assertNoResult(d)
        self.assertTrue(self.transport.connected)

    def test_timeout(self) -> None:
        """
        With no reply within the timeout the request fails with
        L{ControlTimeout}; a late reply is ignored.
        """
        d = self.conn.control(Control.GET_PNN)
        [req] = _written(self.transport)
        self.clock.advance(4.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.failureResultOf(d, ControlTimeout)
        self.conn.dataReceived(_reply(req.header.reqid, 1))

    def test_perRequestTimeout(self) -> None:
        """
        A request's own timeout overrides the connection's; 0 means none.
        """
        quick = self.conn.control(Control.GET_PNN, timeout=1)
        forever = self.conn.control(Control.GET_PID, timeout=0)
        self.clock.advance(1)
        self.failureResultOf(quick, ControlTimeout)
        self.clock.advance(1000)
        self.assertNoResult(forever)

    def test_replyCancelsTimer(self) -> None:
        """A reply in time cancels the timeout call."""
        d = self.conn.control(Control.GET_PNN)
        [req] = _written(self.transport)
        self.conn.dataReceived(_reply(req.header.reqid, 3))
        self.successResultOf(d)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_connectionLostFailsPending(self) -> None:
        """
        Losing the connection fails every pending request with
        L{ConnectionClosed}, fires C{closed} and fails later requests at once.
        """
        d1 = self.conn.control(Control.GET_PNN)
        d2 = self.conn.call(1, b"key", callid=P.CTDB_FETCH_FUNC)
        self.conn.connectionLost(Failure(ConnectionClosed("gone")))
        self.failureResultOf(d1, ConnectionClosed)
        self.failureResultOf(d2, ConnectionClosed)
        self.successResultOf(self.conn.closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.failureResultOf(self.conn.control(Control.PING), ConnectionClosed)

    def test_controlOk(self) -> None:
        """controlOk returns the reply data when the status is 0."""
        d = defer.ensureDeferred(self.conn.controlOk(Control.GET_RUNSTATE))
        [req] = _written(self.transport)
        self.conn.dataReceived(_reply(req.header.reqid, 0, b"\5\0\0\0"))
        self.assertEqual(self.successResultOf(d), b"\5\0\0\0")

    def test_controlOkRaises(self) -> None:
        """
        controlOk raises L{ControlFailed} with the opcode, status and error
        message of a failed control.
        """
        d = defer.ensureDeferred(self.conn.controlOk(Control.GET_TUNABLE, b"x"))
        [req] = _written(self.transport)
        self.conn.dataReceived(_reply(req.header.reqid, -22, b"", b"bad tunable"))
        err = self.failureResultOf(d, ControlFailed).value
        self.assertEqual(
            (err.opcode, err.status, err.errmsg),
            (Control.GET_TUNABLE, -22, "bad tunable"),
        )

    def test_messageDispatch(self) -> None:
        """
        REQ_MESSAGE goes to the handlers of its srvid and to CTDB_SRVID_ALL
        handlers; a failing handler is logged and the others still run.
        """
        got: list[tuple[str, int, bytes]] = []

        def broken(srvid: int, data: bytes) -> None:
            raise RuntimeError("handler bug")

        self.conn._handlers[SRVID] = [broken, lambda s, d: got.append(("one", s, d))]
        self.conn._handlers[0xFFFFFFFFFFFFFFFF] = [
            lambda s, d: got.append(("all", s, d))
        ]
        msg = P.ReqMessage(P.Header(P.Operation.REQ_MESSAGE, 0, 0), SRVID, b"m")
        other = P.ReqMessage(P.Header(P.Operation.REQ_MESSAGE, 0, 0), 5, b"o")
        self.conn.dataReceived(msg.encode() + other.encode())
        self.assertEqual(
            got, [("one", SRVID, b"m"), ("all", SRVID, b"m"), ("all", 5, b"o")]
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_registerSrvid(self) -> None:
        """
        registerSrvid sends REGISTER_SRVID once per srvid and installs the
        handler; the last deregistration sends DEREGISTER_SRVID.
        """
        got: list[bytes] = []
        h1, h2 = (lambda s, d: got.append(d)), (lambda s, d: got.append(d * 2))
        d = defer.ensureDeferred(self.conn.registerSrvid(SRVID, h1))
        [req] = _written(self.transport)
        assert isinstance(req, P.ReqControl)
        self.assertEqual((req.opcode, req.srvid), (Control.REGISTER_SRVID, SRVID))
        self.conn.dataReceived(_reply(req.header.reqid))
        self.successResultOf(d)
        self.successResultOf(defer.ensureDeferred(self.conn.registerSrvid(SRVID, h2)))
        self.assertEqual(_written(self.transport), [])
        self.conn.dataReceived(
            P.ReqMessage(P.Header(P.Operation.REQ_MESSAGE), SRVID, b"a").encode()
        )
        self.assertEqual(got, [b"a", b"aa"])
        self.successResultOf(defer.ensureDeferred(self.conn.deregisterSrvid(SRVID, h1)))
        self.assertEqual(_written(self.transport), [])
        d = defer.ensureDeferred(self.conn.deregisterSrvid(SRVID, h2))
        [dereg] = _written(self.transport)
        assert isinstance(dereg, P.ReqControl)
        self.assertEqual(dereg.opcode, Control.DEREGISTER_SRVID)
        self.conn.dataReceived(_reply(dereg.header.reqid))
        self.successResultOf(d)

    def test_registerSrvidFailure(self) -> None:
        """A refused registration raises and leaves no handler behind."""
        d = defer.ensureDeferred(self.conn.registerSrvid(SRVID, lambda s, d: None))
        [req] = _written(self.transport)
        self.conn.dataReceived(_reply(req.header.reqid, -1))
        self.failureResultOf(d, ControlFailed)
        self.assertNotIn(SRVID, self.conn._handlers)

    def test_tunnelDispatch(self) -> None:
        """REQ_TUNNEL goes to the handler registered for its tunnel id."""
        got: list[P.ReqTunnel] = []
        d = defer.ensureDeferred(self.conn.registerTunnel(0x42, got.append))
        [req] = _written(self.transport)
        self.conn.dataReceived(_reply(req.header.reqid))
        self.successResultOf(d)
        tunnel = P.ReqTunnel(P.Header(P.Operation.REQ_TUNNEL), 0x42, 1, b"t")
        stray = P.ReqTunnel(P.Header(P.Operation.REQ_TUNNEL), 0x43, 1, b"s")
        self.conn.dataReceived(tunnel.encode() + stray.encode())
        self.assertEqual([t.data for t in got], [b"t"])

    def test_malformedPacketDropsConnection(self) -> None:
        """A packet from the daemon that does not decode closes the link."""
        bad = P.Header(P.Operation.REPLY_CONTROL, 0, 0, 1).encode(40) + b"\xff" * 8
        self.conn.dataReceived(bad)
        self.assertTrue(self.transport.disconnecting)

    def test_sendMessageAndTunnel(self) -> None:
        """sendMessage and sendTunnel write their packets, no reply expected."""
        self.conn.sendMessage(1, SRVID, b"x")
        self.conn.sendTunnel(2, 0x42, P.CTDB_TUNNEL_FLAG_REQUEST, b"y")
        msg, tun = _written(self.transport)
        assert isinstance(msg, P.ReqMessage) and isinstance(tun, P.ReqTunnel)
        self.assertEqual((msg.header.destnode, msg.srvid, msg.data), (1, SRVID, b"x"))
        self.assertEqual(
            (tun.header.destnode, tun.tunnel_id, tun.data), (2, 0x42, b"y")
        )
        self.assertEqual(self.conn._pending, {})

    def test_close(self) -> None:
        """close() loses the connection."""
        self.conn.close()
        self.assertTrue(self.transport.disconnecting)


class EndToEndTests(SynchronousTestCase):
    """ClientConnection talking to a real Daemon through ClientProtocol."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.daemon = Daemon(
            reactor=self.clock,  # type: ignore[arg-type]
            config=DaemonConfig(nodeMap=parseNodes("10.0.0.1\n10.0.0.2\n"), pnn=1),
            transport=FakeNodeTransport(1),
        )
        self.daemon.startService()
        self.conn, self.server, self.pump = iosim.connectedServerAndClient(
            lambda: ClientProtocol(self.daemon),
            lambda: ClientConnection(reactor=self.clock, timeout=5),  # type: ignore[arg-type]
            clock=self.clock,
        )

    def test_serverProvides(self) -> None:
        """ClientProtocol provides IClientConnection and registered itself."""
        self.assertTrue(verifyObject(IClientConnection, self.server))
        self.assertIs(self.daemon.clients[self.server.client_id], self.server)
        self.assertEqual(self.server.pid, 0)  # no SO_PEERCRED on a fake

    def test_control(self) -> None:
        """A control goes to the daemon and its reply comes back."""
        d = self.conn.control(Control.GET_PNN)
        self.pump.flush()
        self.assertEqual(self.successResultOf(d).status, 1)

    def test_controlFailedFromDaemon(self) -> None:
        """A failing control raises L{ControlFailed} with ctdbd's status."""
        d = defer.ensureDeferred(self.conn.controlOk(Control.GET_NODEMAPv4))
        self.pump.flush()
        self.assertEqual(self.failureResultOf(d, ControlFailed).value.status, -1)

    def test_messageToSelf(self) -> None:
        """A message sent to our own node reaches our registered handler."""
        got: list[bytes] = []
        d = defer.ensureDeferred(
            self.conn.registerSrvid(SRVID, lambda s, data: got.append(data))
        )
        self.pump.flush()
        self.successResultOf(d)
        self.conn.sendMessage(P.CTDB_CURRENT_NODE, SRVID, b"ping")
        self.pump.flush()
        self.assertEqual(got, [b"ping"])

    def test_controlToDisconnectedNode(self) -> None:
        """A control to a dead node fails with the daemon's error text."""
        d = self.conn.control(Control.GET_PNN, destnode=0)
        self.pump.flush()
        reply = self.successResultOf(d)
        self.assertEqual(
            (reply.status, reply.errmsg), (-1, b"ctdb_control to disconnected node")
        )

    def test_daemonGoneFailsPending(self) -> None:
        """
        When the daemon closes the socket, pending requests fail with
        L{ConnectionClosed} and the daemon forgets the client.
        """
        self.daemon.transport.connect(0)  # type: ignore[attr-defined]
        d = self.conn.control(Control.GET_PNN, destnode=0)  # never answered
        self.pump.flush()
        assert self.server.transport is not None
        self.server.transport.loseConnection()
        self.pump.flush()
        self.failureResultOf(d, ConnectionClosed)
        self.assertEqual(self.daemon.clients, {})

    def test_malformedClientDropped(self) -> None:
        """A client sending garbage is disconnected by the daemon."""
        assert self.conn.transport is not None
        self.conn.transport.write(
            P.Header(P.Operation.REQ_CONTROL).encode(40) + b"\xff" * 8
        )
        self.pump.flush()
        self.successResultOf(self.conn.closed)
        self.assertEqual(self.daemon.clients, {})


class ConnectClientTests(SynchronousTestCase):
    """L{connectClient} over a fake UNIX endpoint."""

    def test_connectLearnsPnn(self) -> None:
        """
        connectClient connects to the socket path and asks GET_PNN, so the
        connection knows its node.
        """
        reactor = MemoryReactorClock()
        daemon = Daemon(
            reactor=reactor,  # type: ignore[arg-type]
            config=DaemonConfig(
                nodeMap=parseNodes("10.0.0.1\n10.0.0.2\n10.0.0.3\n"), pnn=2
            ),
            transport=FakeNodeTransport(2),
        )
        daemon.startService()
        d = defer.ensureDeferred(
            connectClient(reactor, "/run/ctdb/test.socket", timeout=3)  # type: ignore[arg-type]
        )
        [(path, factory, timeout, _)] = reactor.unixClients
        self.assertEqual((path, timeout), ("/run/ctdb/test.socket", 3))
        clientProto = factory.buildProtocol(None)
        serverProto = ClientServerFactory(daemon).buildProtocol(None)
        pump = iosim.connect(
            serverProto,
            iosim.FakeTransport(serverProto, True),
            clientProto,
            iosim.FakeTransport(clientProto, False),
            clock=reactor,
        )
        pump.flush()
        conn = self.successResultOf(d)
        self.assertIsInstance(conn, ClientConnection)
        self.assertEqual(conn.pnn, 2)
