# -*- test-case-name: tests.events.test_server -*-
"""
Tests for L{ctdb.events.server} and L{ctdb.events.client}: the event
protocol served from an L{EventContext}, byte by byte on a fake transport
and over a real UNIX socket with our client; malformed requests close the
connection and nothing else.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time

from twisted.internet import defer
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from ctdb.errors import ConfigError, ConnectionClosed
from ctdb.events.client import (
    EventClient,
    EventClientProtocol,
    connectEventClient,
    formatStatus,
)
from ctdb.events.runner import EventContext
from ctdb.events.server import (
    MAX_PACKET,
    EventServerFactory,
    EventServerProtocol,
    clearStaleSocket,
)
from ctdb.protocols.event import (
    HEADER_SIZE,
    EventCommand,
    EventReply,
    EventRequest,
    EventScript,
    ReplyStatus,
    RequestData,
    RequestRun,
    RequestScript,
    RequestStatus,
    ScriptAction,
)

from ._helpers import REACTOR, ScriptsDir, waitUntil


class ProtocolTests(TestCase):
    """The server protocol on a StringTransport."""

    def setUp(self) -> None:
        self.dir = ScriptsDir(self)
        self.context = EventContext(reactor=REACTOR, eventsDir=self.dir.events)
        self.addCleanup(self.context.stop)
        self.transport = StringTransport()
        self.protocol = EventServerProtocol(self.context)
        self.protocol.makeConnection(self.transport)

    def replies(self) -> list[EventReply]:
        data = self.transport.value()
        out = []
        while data:
            reply, n = EventReply.decode(data)
            out.append(reply)
            data = data[n:]
        return out

    def test_statusByteAtATime(self) -> None:
        """A request arriving a byte at a time is answered once whole."""
        raw = EventRequest(7, RequestStatus("legacy", "monitor")).encode()
        for i in range(len(raw)):
            self.assertEqual(self.transport.value(), b"")
            self.protocol.dataReceived(raw[i : i + 1])
        self.assertEqual(
            self.replies(), [EventReply(7, EventCommand.STATUS, errno.EINVAL)]
        )

    def test_twoRequestsInOneWrite(self) -> None:
        """Two requests in one read get two replies, with their reqids."""
        raw = EventRequest(1, RequestStatus("nosuch", "monitor")).encode()
        raw += EventRequest(
            2, RequestScript("legacy", "01.x", ScriptAction.ENABLE)
        ).encode()
        self.protocol.dataReceived(raw)
        self.assertEqual(
            self.replies(),
            [
                EventReply(1, EventCommand.STATUS, errno.ENOENT),
                EventReply(2, EventCommand.SCRIPT, errno.ENOENT),
            ],
        )

    def test_malformedCloses(self) -> None:
        """A request that does not decode closes the connection, unanswered
        (as ctdb-eventd): an unknown command, a bad action, a short body,
        a length below the header or too big."""
        bad = [
            struct.pack("<IIII", 16, 0, 1, 9),
            EventRequest(1, RequestScript("a", "b", ScriptAction.ENABLE)).encode()[:-4]
            + struct.pack("<I", 7),
            struct.pack("<IIII", 20, 0, 1, 1) + struct.pack("<I", 100),
            struct.pack("<III", 4, 0, 1),
            struct.pack("<III", MAX_PACKET + 1, 0, 1),
        ]
        for raw in bad:
            transport = StringTransport()
            protocol = EventServerProtocol(self.context)
            protocol.makeConnection(transport)
            protocol.dataReceived(
                raw + EventRequest(2, RequestStatus("a", "b")).encode()
            )
            self.assertTrue(transport.disconnecting, raw)
            self.assertEqual(transport.value(), b"", raw)

    async def test_runAnswered(self) -> None:
        """A run is answered when its scripts are done."""
        self.dir.script("01.a", "exit 1\n")
        self.protocol.dataReceived(
            EventRequest(3, RequestRun("legacy", "monitor", None, 10)).encode()
        )
        await waitUntil(lambda: bool(self.transport.value()))
        self.assertEqual(
            self.replies(), [EventReply(3, EventCommand.RUN, errno.ENOEXEC)]
        )

    async def test_replyDroppedWhenGone(self) -> None:
        """A client that went before its run ended gets nothing written."""
        self.dir.script("01.a", "sleep 0.2\n")
        self.protocol.dataReceived(
            EventRequest(3, RequestRun("legacy", "monitor", None, 10)).encode()
        )
        self.protocol.connectionLost(None)
        await waitUntil(
            lambda: self.context.lastResult("legacy", "monitor") is not None
        )
        self.assertEqual(self.transport.value(), b"")

    def test_cutOffRequests(self) -> None:
        """A client that sends part of a length, or part of a request, and
        goes is neither answered nor a failure; nor is one that sends
        nothing at all."""
        raw = EventRequest(4, RequestStatus("legacy", "monitor")).encode()
        for part in (b"", raw[:3], raw[:4], raw[:HEADER_SIZE], raw[:-1]):
            transport = StringTransport()
            protocol = EventServerProtocol(self.context)
            protocol.makeConnection(transport)
            protocol.dataReceived(part)
            protocol.connectionLost(None)
            protocol.dataReceived(raw[len(part) :])
            self.assertEqual(transport.value(), b"", part)

    def test_garbageLengths(self) -> None:
        """Every announced length below the header, and a huge one, closes
        the connection at once, before the rest arrives."""
        for length in (0, 1, 3, 4, HEADER_SIZE - 1, MAX_PACKET + 1, 0xFFFFFFFF):
            transport = StringTransport()
            protocol = EventServerProtocol(self.context)
            protocol.makeConnection(transport)
            protocol.dataReceived(struct.pack("<I", length))
            self.assertTrue(transport.disconnecting, length)
            protocol.dataReceived(b"more")
            self.assertEqual(transport.value(), b"", length)

    def test_missingComponentOrEvent(self) -> None:
        """A request naming no component or no event, a component that is
        not there or leaves the events directory, or a script that is not
        there, is answered with an errno; so is a status of an event that
        never ran."""
        requests: list[tuple[RequestData, int]] = [
            (RequestRun(None, "monitor", None, 10), errno.EINVAL),
            (RequestRun("legacy", None, None, 10), errno.EINVAL),
            (RequestRun("nosuch", "monitor", None, 10), errno.ENOENT),
            (RequestRun("..", "monitor", None, 10), errno.ENOENT),
            (RequestRun("legacy/..", "monitor", None, 10), errno.ENOENT),
            (RequestRun("", "monitor", None, 10), errno.ENOENT),
            (RequestStatus(None, "monitor"), errno.EINVAL),
            (RequestStatus("legacy", None), errno.EINVAL),
            (RequestStatus("legacy", "nosuchevent"), errno.EINVAL),
            (RequestStatus("nosuch", "monitor"), errno.ENOENT),
            (RequestScript("legacy", None, ScriptAction.ENABLE), errno.EINVAL),
            (RequestScript(None, "01.a", ScriptAction.ENABLE), errno.EINVAL),
            (RequestScript("legacy", "../01.a", ScriptAction.ENABLE), errno.ENOENT),
        ]
        raw = b"".join(
            EventRequest(i, data).encode() for i, (data, _) in enumerate(requests)
        )
        self.protocol.dataReceived(raw)
        self.assertEqual(
            [(r.reqid, r.result) for r in self.replies()],
            [(i, result) for i, (_, result) in enumerate(requests)],
        )
        self.assertFalse(self.transport.disconnecting)

    async def test_unknownEventRuns(self) -> None:
        """An event nobody knows runs the scripts like any other (4.17
        does not check event names)."""
        log = self.dir.path("log")
        self.dir.script("01.a", f'echo "$1" >> {log}\n')
        self.protocol.dataReceived(
            EventRequest(5, RequestRun("legacy", "nosuchevent", None, 10)).encode()
        )
        await waitUntil(lambda: bool(self.transport.value()))
        self.assertEqual(self.replies(), [EventReply(5, EventCommand.RUN, 0)])
        self.assertEqual(self.dir.read("log"), "nosuchevent\n")

    def test_commandFailureIsEIO(self) -> None:
        """A command that raises is answered with EIO, and the connection
        goes on."""

        def broken(request: object) -> int:
            raise RuntimeError("broken")

        self.context.script = broken  # type: ignore[method-assign]
        self.protocol.dataReceived(
            EventRequest(
                6, RequestScript("legacy", "01.a", ScriptAction.ENABLE)
            ).encode()
            + EventRequest(7, RequestStatus("legacy", "monitor")).encode()
        )
        self.assertEqual(
            self.replies(),
            [
                EventReply(6, EventCommand.SCRIPT, errno.EIO),
                EventReply(7, EventCommand.STATUS, errno.EINVAL),
            ],
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class SocketTests(TestCase):
    """The server on a real socket, with our client."""

    timeout = 60

    def setUp(self) -> None:
        self.dir = ScriptsDir(self)
        os.makedirs(self.dir.path("run"))
        self.path = self.dir.path("run/eventd.socket")
        self.context = EventContext(reactor=REACTOR, eventsDir=self.dir.events)
        self.factory = EventServerFactory(self.context)
        self.port = REACTOR.listenUNIX(self.path, self.factory, mode=0o700)
        self.addCleanup(self.port.stopListening)
        self.addCleanup(self.factory.disconnectAll)
        self.addCleanup(self.context.stop)

    async def connect(self) -> EventClient:
        client = await connectEventClient(REACTOR, self.path)
        self.addCleanup(client.close)
        return client

    async def test_runStatusScript(self) -> None:
        """run, status and the script command through our client."""
        self.dir.script("01.ok", "echo fine\n")
        self.dir.script("02.bad", "printf 'broken\\377'; exit 7\n")
        client = await self.connect()
        self.assertEqual(await client.status("legacy", "monitor"), (errno.EINVAL, None))
        self.assertEqual(
            await client.run("legacy", "monitor", timeout=10), errno.ENOEXEC
        )
        result, status = await client.status("legacy", "monitor")
        self.assertEqual(result, 0)
        assert status is not None
        self.assertEqual(status.summary, 7)
        self.assertEqual([s.name for s in status.scripts], ["01.ok", "02.bad"])
        out = status.scripts[1].output
        assert out is not None
        self.assertEqual(out.encode("utf-8", "surrogateescape"), b"broken\xff")
        self.assertEqual(await client.disableScript("legacy", "02.bad"), 0)
        self.assertEqual(await client.run("legacy", "monitor"), 0)
        self.assertEqual(await client.enableScript("legacy", "02.bad"), 0)
        self.assertEqual(await client.run("nosuch", "monitor"), errno.ENOENT)
        self.assertEqual(await client.disableScript("legacy", "03.none"), errno.ENOENT)

    async def test_garbageThenGoodClient(self) -> None:
        """A client sending garbage is disconnected; the server goes on
        answering others."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.setblocking(False)
            s.connect(self.path)
            s.send(struct.pack("<III", 16, 0, 1) + b"\xff" * 4 + b"more junk")

            def closed() -> bool:
                try:
                    return s.recv(100) == b""
                except BlockingIOError:
                    return False

            await waitUntil(closed)
        client = await self.connect()
        self.assertEqual(await client.run("legacy", "startup"), 0)

    async def test_pendingFailOnDisconnect(self) -> None:
        """Requests outstanding when the connection goes fail with
        ConnectionClosed."""
        self.dir.script("01.slow", "sleep 300\n")
        client = await self.connect()
        running = client.run("legacy", "monitor", timeout=100)
        await waitUntil(lambda: bool(self.context.processes()))
        self.factory.disconnectAll()
        with self.assertRaises(ConnectionClosed):
            await running
        with self.assertRaises(ConnectionClosed):
            await client.run("legacy", "monitor")

    async def test_goneMidReply(self) -> None:
        """A client that sends a run and closes at once (before and while
        its reply is written) leaves the server serving others."""
        self.dir.script("01.a", "echo output\n")
        for _ in range(5):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(self.path)
                s.sendall(
                    EventRequest(1, RequestRun("legacy", "monitor", None, 10)).encode()
                    + EventRequest(2, RequestStatus("legacy", "monitor")).encode()
                    + EventRequest(3, RequestRun("legacy", "mon", None, 1)).encode()[
                        :10
                    ]
                )
        await waitUntil(lambda: not self.factory.clients)
        client = await self.connect()
        self.assertEqual(await client.run("legacy", "monitor"), 0)

    async def test_manyClients(self) -> None:
        """Many clients at once, each running and asking the status, all
        get their answers."""
        self.dir.script("01.a", "echo ok\n")
        clients = [await self.connect() for _ in range(40)]
        runs = [c.run("legacy", "monitor") for c in clients]
        statuses = [c.status("legacy", "startup") for c in clients]
        results = await defer.gatherResults(runs)
        # monitor events cancel each other: each is answered, 0 or ECANCELED
        self.assertTrue(set(results) <= {0, errno.ECANCELED}, results)
        self.assertIn(0, results)
        self.assertEqual(
            await defer.gatherResults(statuses), [(errno.EINVAL, None)] * 40
        )
        self.assertEqual(len(self.factory.clients), 40)

    def test_staleSocket(self) -> None:
        """A socket nobody serves is removed; a served one is refused."""
        self.assertRaises(ConfigError, clearStaleSocket, self.path)
        stale = self.dir.path("run/stale.socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(stale)
        clearStaleSocket(stale)
        self.assertFalse(os.path.exists(stale))
        clearStaleSocket(self.dir.path("run/new/dir.socket"))
        self.assertTrue(os.path.isdir(self.dir.path("run/new")))


class ClientProtocolTests(TestCase):
    """Our client's end, on a StringTransport."""

    def test_repliesMatchedByReqid(self) -> None:
        """Replies are matched to requests by reqid, in any order; one for
        nobody is dropped, a malformed one is skipped."""
        transport = StringTransport()
        protocol = EventClientProtocol()
        protocol.makeConnection(transport)
        client = EventClient(protocol)
        first = client.run("legacy", "monitor")
        second = client.status("legacy", "monitor")
        sent = transport.value()
        req1, n = EventRequest.decode(sent)
        req2, _ = EventRequest.decode(sent[n:])
        self.assertEqual(req1.data, RequestRun("legacy", "monitor", None, 30, 0))
        status = ReplyStatus(0, (EventScript("01.a", (1, 0), (2, 0), 0, None),))
        protocol.dataReceived(
            EventReply(99, EventCommand.RUN, 0).encode()
            + struct.pack("<IIII", 16, 0, req1.reqid, 9)
            + EventReply(req2.reqid, EventCommand.STATUS, 0, status).encode()
            + EventReply(req1.reqid, EventCommand.RUN, errno.ETIMEDOUT).encode()
        )
        self.assertEqual(self.successResultOf(first), errno.ETIMEDOUT)
        self.assertEqual(self.successResultOf(second), (0, status))

    def test_formatStatus(self) -> None:
        """What ctdb event status prints, line by line."""
        scripts = (
            EventScript("01.ok", (0, 0), (1, 250000), 0, "x"),
            EventScript("02.off", (0, 0), (0, 0), -errno.ENOEXEC, None),
            EventScript("03.err", (0, 0), (0, 5000), 2, "bad\n"),
            EventScript("04.hung", (0, 0), (0, 0), -errno.ETIMEDOUT, None),
            EventScript("05.gone", (0, 0), (0, 0), -errno.ENOENT, None),
        )
        text = formatStatus("legacy", "monitor", 0, ReplyStatus(2, scripts))
        epoch = time.ctime(0)
        self.assertEqual(
            text,
            f"01.ok                OK         1.250 {epoch}\n"
            "02.off               DISABLED  \n"
            f"03.err               ERROR      0.005 {epoch}\n"
            "  OUTPUT: bad\n\n"
            f"04.hung              TIMEDOUT   {epoch}\n"
            "  OUTPUT: \n"
            "05.gone              CANNOT RUN (No such file or directory)\n"
            "  OUTPUT: \n",
        )
        self.assertEqual(
            formatStatus("legacy", "monitor", errno.EINVAL, None),
            "Event monitor has never run in legacy\n",
        )
        self.assertEqual(
            formatStatus("x", "monitor", errno.ENOENT, None),
            "Event dir for x does not exist\n",
        )
