# -*- test-case-name: tests.daemon.test_relay -*-
"""
Tests for the relay of forwarded client controls in L{ctdb.daemon.core}: a
client's control for another node goes out readdressed as it came, and the
node's reply comes back readdressed as it came, or decoded when it cannot be
relayed as it is; either way the client sees what the decoding path gives.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.daemon.core import Daemon, DaemonConfig
from ctdb.nodes import parseNodes
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.testing import FakeClient, FakeNodeTransport

_CLIENT_SRC = 0x1234


class RelayTests(SynchronousTestCase):
    """Node 0 of three, its link to node 1 up, one local client."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = FakeNodeTransport(0)
        self.daemon = Daemon(
            reactor=self.clock,  # type: ignore[arg-type]
            config=DaemonConfig(
                nodeMap=parseNodes("10.0.0.1\n10.0.0.2\n10.0.0.3\n"), pnn=0
            ),
            transport=self.transport,
        )
        self.daemon.startService()
        self.addCleanup(self.daemon.stopService)
        self.transport.connect(1)
        self.client = FakeClient(self.daemon)

    def forward(self, data: bytes = b"", flags: int = 0, reqid: int = 77) -> int:
        """The client sends a control for node 1; the reqid node 0 gave it."""
        header = P.Header(P.Operation.REQ_CONTROL, 1, _CLIENT_SRC, reqid)
        self.client.send(
            P.ReqControl(header, Control.GET_RUNSTATE, 9, 0, flags, data).encode()
        )
        [(dest, sent)] = self.transport.sent
        self.assertEqual(dest, 1)
        req = P.decodePacket(sent)
        assert isinstance(req, P.ReqControl)
        self.assertEqual(
            (req.header.destnode, req.header.srcnode, req.client_id, req.srvid),
            (1, 0, self.client.client_id, 9),
        )
        self.assertEqual(
            (req.opcode, req.flags, req.data), (Control.GET_RUNSTATE, flags, data)
        )
        return req.header.reqid

    def expected(self, status: int, data: bytes, errmsg: bytes) -> bytes:
        """What the decoding path sends the client for a reply."""
        return P.encodeReplyControl(
            _CLIENT_SRC, 1, 77, self.daemon.vnnMap.generation, status, data, errmsg
        )

    def test_relayed(self) -> None:
        """
        A reply with data is readdressed, not decoded, to the client (its
        srcnode and reqid, node 1 as source) and counted as the decoding
        path counts it.
        """
        reqid = self.forward(b"abc")

        def noDecode(data: bytes) -> P.Packet:
            raise AssertionError("relayed replies are not decoded")

        self.patch(P, "decodePacket", noDecode)
        self.transport.deliver(
            1, P.encodeReplyControl(0, 1, reqid, 5, 0, b"\1\0\0\0", b"")
        )
        self.assertEqual(self.client.received, [self.expected(0, b"\1\0\0\0", b"")])
        self.assertEqual(self.daemon._pending, {})
        counters = self.daemon.stats.counters
        self.assertEqual(counters["node.reply_control"], 1)
        self.assertEqual(counters["client.req_control"], 1)
        self.assertEqual(counters["client_packets_sent"], 1)
        self.assertEqual(self.daemon.nodes[1].tx_cnt, 1)

    def test_failedWithData(self) -> None:
        """A failed reply that carries data (4.17 sends none) reaches the
        client without it, as decoded."""
        reqid = self.forward()
        self.transport.deliver(
            1, P.encodeReplyControl(0, 1, reqid, 5, -1, b"junk", b"no")
        )
        self.assertEqual(self.client.received, [self.expected(-1, b"", b"no")])

    def test_trailingBytes(self) -> None:
        """A reply with bytes after its error message is decoded, not
        relayed: the client gets the reply without them."""
        reqid = self.forward()
        reply = P.encodeReplyControl(0, 1, reqid, 5, 2, b"", b"")
        longer = (len(reply) + 8).to_bytes(4, "little") + reply[4:] + b"\xff" * 8
        self.transport.deliver(1, longer)
        self.assertEqual(self.client.received, [self.expected(2, b"", b"")])

    def test_unpaddedRequest(self) -> None:
        """A client control whose length is not padded to 8 bytes is
        forwarded padded (decoded and encoded again)."""
        header = P.Header(P.Operation.REQ_CONTROL, 1, _CLIENT_SRC, 77)
        encoded = P.ReqControl(header, Control.GET_RUNSTATE, data=b"abc").encode()
        unpadded = (60 + 3).to_bytes(4, "little") + encoded[4 : 60 + 3]
        self.client.send(unpadded)
        [(dest, sent)] = self.transport.sent
        self.assertEqual((dest, len(sent)), (1, 64))
        req = P.decodePacket(sent)
        assert isinstance(req, P.ReqControl)
        self.assertEqual(req.data, b"abc")

    def test_noReply(self) -> None:
        """A NOREPLY control is forwarded and nothing waits for a reply."""
        self.forward(flags=P.CTDB_CTRL_FLAG_NOREPLY)
        self.assertEqual(self.daemon._pending, {})

    def test_timeout(self) -> None:
        """A relayed control without an answer times out as any other."""
        self.forward()
        self.clock.advance(self.daemon.tunables.ControlTimeout + 1)
        reply = self.client.reply(77)
        assert reply is not None
        self.assertEqual((reply.status, reply.errmsg), (-1, b"ctdb_control timed out"))

    def test_disconnected(self) -> None:
        """A control for a node whose link is down is answered at once."""
        header = P.Header(P.Operation.REQ_CONTROL, 2, _CLIENT_SRC, 77)
        self.client.send(P.ReqControl(header, Control.GET_PNN).encode())
        self.assertEqual(self.transport.sent, [])
        self.assertEqual(
            self.client.received,
            [
                P.encodeReplyControl(
                    _CLIENT_SRC,
                    2,
                    77,
                    self.daemon.vnnMap.generation,
                    -1,
                    b"",
                    b"ctdb_control to disconnected node",
                )
            ],
        )
