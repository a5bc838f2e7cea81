# -*- test-case-name: tests.takeover.test_system -*-
"""
Tests for L{ctdb.takeover.system} and L{ctdb.takeover.fake}.

The logic of killing connections (L{ConnectionKiller}) and the capture
reader run on a L{MemoryReactorClock}.  L{LinuxAddressSystem} itself runs
for real, inside network namespaces each test makes (L{NetworkLab}): two
namespaces on a bridge, A (10.77.0.1, fd77::1, the node holding public
addresses) and B (10.77.0.2, fd77::2, a client).  A namespace belongs to
a process, so the class is driven by a small Python program run in A
(L{_DRIVER}), with a TCP echo server in A and a client in B when
connections are needed.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from twisted.internet.defer import CancelledError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from ctdb.errors import AddressError
from ctdb.interfaces import IAddressSystem, ICTDBReactor
from ctdb.takeover import packets as P
from ctdb.takeover.fake import FakeAddressSystem
from ctdb.takeover.system import (
    KILL_BATCH,
    CaptureReader,
    ConnectionKiller,
    LinuxAddressSystem,
)
from tests.support.netns import LineReader, NetworkLab, pythonArgv

SERVER4 = ("10.0.0.1", 445)
CLIENT4 = ("10.0.0.2", 51000)
SERVER6 = ("fd00::1", 445)
CLIENT6 = ("fd00::2", 51001)


def asReactor(clock: MemoryReactorClock) -> ICTDBReactor:
    """C{clock} as the reactor the classes take: it lacks only
    IReactorProcess, which they do not use."""
    return clock  # type: ignore[return-value]


class ProvidesTests(SynchronousTestCase):
    """Both address systems provide IAddressSystem."""

    def test_linux(self) -> None:
        """LinuxAddressSystem provides it."""
        self.assertTrue(
            verifyObject(
                IAddressSystem,
                LinuxAddressSystem(reactor=asReactor(MemoryReactorClock())),
            )
        )

    def test_fake(self) -> None:
        """FakeAddressSystem provides it."""
        self.assertTrue(verifyObject(IAddressSystem, FakeAddressSystem()))


class FakeAddressSystemTests(SynchronousTestCase):
    """The fake keeps interfaces and addresses by the real one's rules and
    records what it was asked to do."""

    def test_addresses(self) -> None:
        """Adding, re-adding, a clash and removing, with the calls kept."""
        fake = FakeAddressSystem(["eth0", "eth1"])
        self.assertFalse(fake.hasAddress("10.0.0.1"))
        fake.addAddress("10.0.0.1", 24, "eth0")
        fake.addAddress("10.0.0.1", 24, "eth0")
        self.assertTrue(fake.hasAddress("10.0.0.1"))
        error = self.assertRaises(AddressError, fake.addAddress, "10.0.0.1", 24, "eth1")
        self.assertEqual(
            str(error), "Failed to add 10.0.0.1/24 on dev eth1: already on dev eth0"
        )
        self.assertRaises(AddressError, fake.addAddress, "10.0.0.1", 16, "eth0")
        self.assertRaises(AddressError, fake.addAddress, "10.0.0.2", 24, "eth9")
        fake.addAddress("fd00:0::1", 64, "eth1")
        self.assertTrue(fake.hasAddress("fd00::1"))
        self.assertEqual(
            fake.addresses, {"10.0.0.1": (24, "eth0"), "fd00::1": (64, "eth1")}
        )
        fake.removeAddress("10.0.0.1", 24, "eth0")
        fake.removeAddress("10.0.0.1", 24, "eth0")
        self.assertFalse(fake.hasAddress("10.0.0.1"))
        self.assertFalse(fake.hasAddress("nonsense"))
        self.assertEqual(fake.calls[0], ("add", "10.0.0.1", 24, "eth0"))
        self.assertEqual(fake.calls[-1], ("remove", "10.0.0.1", 24, "eth0"))

    def test_links(self) -> None:
        """Interfaces come and go, links flip; lo is there and up."""
        fake = FakeAddressSystem()
        self.assertTrue(fake.interfaceExists("eth0"))
        self.assertTrue(fake.linkUp("lo"))
        self.assertFalse(fake.interfaceExists("eth1"))
        self.assertFalse(fake.linkUp("eth1"))
        fake.addInterface("eth1", up=False)
        self.assertFalse(fake.linkUp("eth1"))
        fake.setLink("eth1", True)
        self.assertTrue(fake.linkUp("eth1"))
        fake.addAddress("10.0.0.1", 24, "eth1")
        fake.removeInterface("eth1")
        self.assertFalse(fake.interfaceExists("eth1"))
        self.assertFalse(fake.hasAddress("10.0.0.1"))
        self.assertRaises(KeyError, fake.setLink, "eth1", True)

    def test_announcements(self) -> None:
        """Every announcement is recorded as it is asked for, a failing one
        too; tickles and other segments are recorded apart."""
        fake = FakeAddressSystem()
        fake.sendGratuitousArp("10.0.0.1", "eth0")
        fake.sendGratuitousArp("127.0.0.1", "lo")
        self.assertRaises(AddressError, fake.sendGratuitousArp, "10.0.0.1", "eth7")
        fake.sendTickle(SERVER4, CLIENT4)
        fake.sendTickle(SERVER4, CLIENT4, 5, 6, rst=True)
        fake.fail("sendTickle")
        self.assertRaises(AddressError, fake.sendTickle, SERVER6, CLIENT6)
        self.assertEqual(
            fake.calls,
            [
                ("arp", "10.0.0.1", "eth0"),
                ("arp", "127.0.0.1", "lo"),
                ("arp", "10.0.0.1", "eth7"),
                ("tickle", SERVER4, CLIENT4),
                ("tcp", SERVER4, CLIENT4, 5, 6, True),
                ("tickle", SERVER6, CLIENT6),
            ],
        )

    def test_kills(self) -> None:
        """A kill succeeds with all its connections at once, or waits for
        the test with deferKills."""
        fake = FakeAddressSystem()
        connections = [(CLIENT4, SERVER4)]
        self.assertEqual(
            self.successResultOf(fake.killConnections("eth0", connections, 5.0)), 1
        )
        self.assertEqual(fake.calls, [("kill", "eth0", ((CLIENT4, SERVER4),), 5.0)])
        deferring = FakeAddressSystem(deferKills=True)
        d = deferring.killConnections("eth0", connections, 5.0)
        self.assertNoResult(d)
        deferring.kills[0].callback(0)
        self.assertEqual(self.successResultOf(d), 0)

    def test_failures(self) -> None:
        """fail makes a method raise (a kill fails its Deferred) until
        heal."""
        fake = FakeAddressSystem()
        fake.fail("addAddress")
        self.assertRaises(AddressError, fake.addAddress, "10.0.0.1", 24, "eth0")
        fake.heal("addAddress")
        fake.addAddress("10.0.0.1", 24, "eth0")
        error = AddressError("no capture")
        fake.fail("killConnections", error)
        failure = self.failureResultOf(fake.killConnections("eth0", [], 1.0))
        self.assertIs(failure.value, error)


def ackFrame(src: P.Endpoint, dst: P.Endpoint, seq: int, ack: int) -> bytes:
    """An Ethernet frame with a client's ACK from C{src} to C{dst}: window
    500, unlike ctdbd's own segments."""
    packet = bytearray(P.tcpPacket(src, dst, seq, ack))
    offset = 20 if packet[0] >> 4 == 4 else 40
    packet[offset + 14 : offset + 16] = (500).to_bytes(2, "big")
    ethertype = P.ETHERTYPE_IP if packet[0] >> 4 == 4 else P.ETHERTYPE_IP6
    return bytes(12) + ethertype.to_bytes(2, "big") + bytes(packet)


class ConnectionKillerTests(SynchronousTestCase):
    """ctdb_killtcp's rounds of tickles and its resets, on a clock."""

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.sent: list[tuple[P.Endpoint, P.Endpoint, int, int, bool]] = []

    def send(
        self, src: P.Endpoint, dst: P.Endpoint, seq: int, ack: int, rst: bool
    ) -> None:
        self.sent.append((src, dst, seq, ack, rst))

    def killer(
        self, connections: list[tuple[P.Endpoint, P.Endpoint]], timeout: float = 5.0
    ) -> ConnectionKiller:
        return ConnectionKiller(
            connections,
            self.send,
            reactor=asReactor(self.clock),
            interval=0.1,
            timeout=timeout,
        )

    def test_kills(self) -> None:
        """Every connection is tickled from the server at once; each
        client's ACK is answered with a reset carrying its numbers; the
        run ends with the count when none is left."""
        killer = self.killer([(CLIENT4, SERVER4), (CLIENT6, SERVER6)])
        d = killer.start()
        self.assertEqual(
            self.sent,
            [(SERVER4, CLIENT4, 0, 0, False), (SERVER6, CLIENT6, 0, 0, False)],
        )
        self.sent.clear()
        killer.frameReceived(ackFrame(CLIENT6, SERVER6, 1000, 2000))
        self.assertEqual(self.sent, [(SERVER6, CLIENT6, 2000, 1000, True)])
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertEqual(self.sent[1:], [(SERVER4, CLIENT4, 0, 0, False)])
        killer.frameReceived(ackFrame(CLIENT4, SERVER4, 7, 8))
        self.assertEqual(self.successResultOf(d), 2)
        self.assertEqual(self.sent[-1], (SERVER4, CLIENT4, 8, 7, True))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_ignored(self) -> None:
        """Our own tickles and resets, segments of other connections, the
        server's side of a connection, and frames that are not TCP change
        nothing; a second ACK of a reset connection is not answered."""
        killer = self.killer([(CLIENT4, SERVER4), (CLIENT6, SERVER6)])
        d = killer.start()
        self.sent.clear()
        for frame in [
            ackFrame(SERVER4, CLIENT4, 1, 2),
            bytes(12) + b"\x08\x00" + P.tickleAck(CLIENT4, SERVER4),
            bytes(12) + b"\x08\x00" + P.tcpPacket(CLIENT4, SERVER4, 1, 2, rst=True),
            ackFrame(("10.0.0.3", 51000), SERVER4, 1, 2),
            ackFrame(CLIENT4, ("10.0.0.1", 446), 1, 2),
            P.gratuitousArp("10.0.0.1", b"\x02" * 6),
            b"",
        ]:
            killer.frameReceived(frame)
        self.assertEqual(self.sent, [])
        killer.frameReceived(ackFrame(CLIENT4, SERVER4, 1, 2))
        killer.frameReceived(ackFrame(CLIENT4, SERVER4, 1, 2))
        self.assertEqual(len(self.sent), 1)
        self.assertNoResult(d)

    def test_canonicalAddresses(self) -> None:
        """Connections given with other spellings of an address match
        what is captured."""
        killer = self.killer([(("fd00:0:0::2", 51001), ("FD00::1", 445))])
        d = killer.start()
        killer.frameReceived(ackFrame(CLIENT6, SERVER6, 1, 2))
        self.assertEqual(self.successResultOf(d), 1)
        self.assertEqual(self.sent[0][:2], (("FD00::1", 445), ("fd00:0:0::2", 51001)))

    def test_timeout(self) -> None:
        """Tickles repeat every interval until the timeout, which ends the
        run with the count so far."""
        killer = ConnectionKiller(
            [(CLIENT4, SERVER4)],
            self.send,
            reactor=asReactor(self.clock),
            interval=0.25,
            timeout=1.0,
        )
        d = killer.start()
        self.clock.pump([0.25] * 3)
        self.assertNoResult(d)
        self.assertEqual(len(self.sent), 4)
        self.clock.advance(0.25)
        self.assertEqual(self.successResultOf(d), 0)
        self.assertEqual(len(self.sent), 4)
        self.assertEqual(killer.pending, {(CLIENT4, SERVER4): (CLIENT4, SERVER4)})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_batch(self) -> None:
        """A round tickles at most KILL_BATCH connections."""
        connections = [(("10.0.1.2", port), SERVER4) for port in range(1, 400)]
        killer = self.killer(connections)
        killer.start()
        self.assertEqual(len(self.sent), KILL_BATCH)

    def test_sendErrors(self) -> None:
        """A tickle that cannot be sent is logged and the others still go."""

        def send(src: P.Endpoint, dst: P.Endpoint, *args: Any) -> None:
            if dst == CLIENT4:
                raise AddressError("Failed to send TCP tickle ACK")
            self.sent.append((src, dst, *args))

        killer = ConnectionKiller(
            [(CLIENT4, SERVER4), (CLIENT6, SERVER6)],
            send,
            reactor=asReactor(self.clock),
            timeout=1.0,
        )
        killer.start()
        self.assertEqual(self.sent, [(SERVER6, CLIENT6, 0, 0, False)])

    def test_cancel(self) -> None:
        """Cancelling the run stops the tickles and the timeout."""
        d = self.killer([(CLIENT4, SERVER4)]).start()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_nothing(self) -> None:
        """No connections: done at once, nothing sent."""
        self.assertEqual(self.successResultOf(self.killer([]).start()), 0)
        self.assertEqual(self.sent, [])


class CaptureReaderTests(SynchronousTestCase):
    """The capture socket on the reactor, with a datagram socket pair
    standing in for AF_PACKET."""

    def test_reads(self) -> None:
        """Every waiting frame is handed on; loseConnection stops reading
        and closes the socket."""
        reactor = MemoryReactorClock()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(theirs.close)
        ours.setblocking(False)
        frames: list[bytes] = []
        reader = CaptureReader(ours, frames.append, reactor=asReactor(reactor))
        reader.startReading()
        self.assertIn(reader, reactor.getReaders())
        theirs.send(b"one")
        theirs.send(b"x" * 500)
        reader.doRead()
        self.assertEqual(frames, [b"one", b"x" * 128])
        reader.loseConnection()
        self.assertNotIn(reader, reactor.getReaders())
        self.assertEqual(ours.fileno(), -1)

    def test_handlerFinishes(self) -> None:
        """A handler that ends the capture (the killer's last reset) stops
        the read quietly: no error about the closed socket."""
        reactor = MemoryReactorClock()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(theirs.close)
        ours.setblocking(False)
        frames: list[bytes] = []

        def last(frame: bytes) -> None:
            frames.append(frame)
            reader.loseConnection()

        reader = CaptureReader(ours, last, reactor=asReactor(reactor))
        reader.startReading()
        theirs.send(b"one")
        theirs.send(b"two")
        with capturedLogs() as events:
            self.assertIsNone(reader.doRead())
        self.assertEqual(frames, [b"one"])
        self.assertEqual(
            [e for e in events if e.get("log_level") == LogLevel.error], []
        )
        self.assertNotIn(reader, reactor.getReaders())

    def test_handlerError(self) -> None:
        """A handler's exception is logged, not raised into the reactor."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(theirs.close)
        self.addCleanup(ours.close)
        ours.setblocking(False)

        def broken(frame: bytes) -> None:
            raise RuntimeError("broken")

        reader = CaptureReader(ours, broken, reactor=asReactor(MemoryReactorClock()))
        theirs.send(b"one")
        self.assertIsNone(reader.doRead())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class LocalTests(SynchronousTestCase):
    """What LinuxAddressSystem decides before touching anything."""

    def setUp(self) -> None:
        self.system = LinuxAddressSystem(reactor=asReactor(MemoryReactorClock()))

    def test_badArguments(self) -> None:
        """Bad addresses, masks and endpoints are AddressErrors."""
        s = self.system
        self.assertRaises(AddressError, s.addAddress, "10.0.0.300", 24, "lo")
        self.assertRaises(AddressError, s.addAddress, "10.0.0.1", 33, "lo")
        self.assertRaises(AddressError, s.removeAddress, "nonsense", 24, "lo")
        self.assertRaises(AddressError, s.sendGratuitousArp, "nonsense", "lo")
        self.assertRaises(AddressError, s.sendTickle, SERVER4, CLIENT6)
        self.assertRaises(AddressError, s.sendTickle, ("10.0.0.1", -1), CLIENT4)

    def test_hasAddress(self) -> None:
        """The bind test: loopback is ours, a nonsense address is not."""
        self.assertTrue(self.system.hasAddress("127.0.0.1"))
        self.assertFalse(self.system.hasAddress("nonsense"))

    def test_noConnections(self) -> None:
        """Killing no connections opens nothing and fires with 0."""
        d = self.system.killConnections("nosuchif0", [], 1.0)
        self.assertEqual(self.successResultOf(d), 0)


# -- in network namespaces ---------------------------------------------------------

#: runs LinuxAddressSystem in the namespace it is started in: each line it
#: reads is a JSON list of calls [[method, [args...]], ...] (lists in the
#: arguments become tuples), each answered with a line [["ok", value] or
#: ["AddressError", message], ...]; it ends when its stdin closes
_DRIVER = """
import json
from twisted.internet import defer, stdio, task
from twisted.protocols.basic import LineReceiver
from ctdb.errors import AddressError
from ctdb.takeover.system import LinuxAddressSystem

def tupled(value):
    return tuple(tupled(v) for v in value) if isinstance(value, list) else value

class Driver(LineReceiver):
    delimiter = b"\\n"

    def __init__(self, system, ended):
        self.system = system
        self.ended = ended

    def lineReceived(self, line):
        defer.ensureDeferred(self.run(json.loads(line)))

    async def run(self, calls):
        results = []
        for method, args in calls:
            try:
                value = getattr(self.system, method)(*tupled(args))
                if isinstance(value, defer.Deferred):
                    value = await value
                results.append(["ok", value])
            except AddressError as e:
                results.append(["AddressError", str(e)])
        self.sendLine(json.dumps(results).encode())

    def connectionLost(self, reason):
        self.ended.callback(None)

def main(reactor):
    ended = defer.Deferred()
    stdio.StandardIO(Driver(LinuxAddressSystem(reactor=reactor), ended))
    return ended

task.react(main)
"""

#: a TCP echo server on every address of argv[1:]; prints the ports, ends
#: when its stdin closes
_SERVER = """
import selectors, socket, sys
sel = selectors.DefaultSelector()
ports = []
for address in sys.argv[1:]:
    s = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    s.bind((address, 0))
    s.listen(8)
    sel.register(s, selectors.EVENT_READ, "listen")
    ports.append(s.getsockname()[1])
print(" ".join(map(str, ports)), flush=True)
sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
while True:
    for key, _ in sel.select():
        if key.data == "stdin":
            sys.exit(0)
        if key.data == "listen":
            sel.register(key.fileobj.accept()[0], selectors.EVENT_READ, "conn")
            continue
        try:
            data = key.fileobj.recv(100)
        except OSError:
            data = b""
        if data:
            key.fileobj.sendall(data)
        else:
            sel.unregister(key.fileobj)
            key.fileobj.close()
"""

#: connects to each "address port" of argv[1:] and prints the local
#: (address, port) of each as JSON; then, for each command line read:
#: "watch i j ..." waits (10 s at most) until those connections end and
#: prints how ("reset", "eof" or "timeout"); "echo k" sends a byte on
#: connection k and prints what came back
_CLIENT = """
import json, select, socket, sys, time
conns = []
for spec in sys.argv[1:]:
    address, port = spec.rsplit(" ", 1)
    c = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    c.connect((address, int(port)))
    conns.append(c)
print(json.dumps([c.getsockname()[:2] for c in conns]), flush=True)
for line in sys.stdin:
    command, *numbers = line.split()
    if command == "echo":
        c = conns[int(numbers[0])]
        c.sendall(b"x")
        c.settimeout(10)
        print(json.dumps(c.recv(10).decode()), flush=True)
        continue
    outcome = {}
    waiting = {int(n): conns[int(n)] for n in numbers}
    deadline = time.monotonic() + 10
    while waiting and time.monotonic() < deadline:
        ready, _, _ = select.select(list(waiting.values()), [], [], 0.5)
        for n, c in list(waiting.items()):
            if c in ready:
                try:
                    outcome[n] = "eof" if not c.recv(10) else "data"
                except ConnectionResetError:
                    outcome[n] = "reset"
                del waiting[n]
    for n in waiting:
        outcome[n] = "timeout"
    print(json.dumps({str(n): v for n, v in sorted(outcome.items())}), flush=True)
"""

NODE4, NODE6 = "10.77.0.1", "fd77::1"
PEER4, PEER6 = "10.77.0.2", "fd77::2"


class NamespaceCase(SynchronousTestCase):
    """A lab per test: A (the node) and B (a client) on one bridge."""

    def setUp(self) -> None:
        self.lab = NetworkLab.forTest(self, "txtakeover")
        self.bridge = self.lab.addBridge()
        self.driver: LineReader | None = None
        self.node = self.lab.addNamespace()
        self.peer = self.lab.addNamespace()
        for namespace, v4, v6 in [
            (self.node, NODE4, NODE6),
            (self.peer, PEER4, PEER6),
        ]:
            self.lab.connect(namespace, self.bridge)
            self.lab.addAddress(namespace, "eth0", f"{v4}/24")
            self.lab.addAddress(namespace, "eth0", f"{v6}/64")

    def drive(self, *calls: tuple[str, list[Any]]) -> list[list[Any]]:
        """Run LinuxAddressSystem calls in A (in one driver process for the
        whole test); their outcomes."""
        if self.driver is None:
            self.driver = LineReader(self.lab.spawn(self.node, pythonArgv(_DRIVER)))
        self.driver.writeLine(json.dumps(calls))
        answer = self.driver.readLine()
        self.assertIsNotNone(answer, "the driver in A did not answer")
        results: list[list[Any]] = json.loads(answer or "null")
        return results

    def connect(self, count: int = 1) -> tuple[LineReader, list[tuple[Any, Any]]]:
        """An echo server in A, and a client in B with C{count} connections
        to it over IPv4 and as many over IPv6 (alternating, IPv4 first);
        the client and each connection as (client, server)."""
        server = LineReader(
            self.lab.spawn(self.node, pythonArgv(_SERVER, NODE4, NODE6))
        )
        ports = server.readLine()
        self.assertIsNotNone(ports, "the echo server did not start")
        assert ports is not None
        port4, port6 = (int(p) for p in ports.split())
        targets = [(NODE4, port4), (NODE6, port6)] * count
        client = LineReader(
            self.lab.spawn(
                self.peer, pythonArgv(_CLIENT, *(f"{a} {p}" for a, p in targets))
            )
        )
        line = client.readLine()
        self.assertIsNotNone(line, "the client did not connect")
        assert line is not None
        locals_ = [tuple(endpoint) for endpoint in json.loads(line)]
        return client, list(zip(locals_, targets, strict=True))


class AddressTests(NamespaceCase):
    """Addresses on and off interfaces, as takeip and releaseip."""

    def test_addRemove(self) -> None:
        """An IPv4 and an IPv6 address go on eth0 with their masks (and the
        IPv4 broadcast), are seen by hasAddress and by ip, and come off;
        re-adding is fine, removing what is absent too."""
        self.lab.connect(self.node, self.bridge, "eth1")
        added = self.drive(
            ("hasAddress", ["10.77.0.50"]),
            ("addAddress", ["10.77.0.50", 24, "eth0"]),
            ("addAddress", ["10.77.0.50", 24, "eth0"]),
            ("addAddress", ["fd77::50", 64, "eth0"]),
            ("hasAddress", ["10.77.0.50"]),
            ("hasAddress", ["fd77:0::50"]),
        )
        self.assertEqual(
            added,
            [["ok", False], ["ok", None], ["ok", None], ["ok", None]]
            + [["ok", True], ["ok", True]],
        )
        shown = self.lab.ip("-o", "addr", "show", "dev", "eth0", namespace=self.node)
        self.assertIn("inet 10.77.0.50/24 brd 10.77.0.255", shown)
        self.assertIn("inet6 fd77::50/64", shown)

        removed = self.drive(
            ("removeAddress", ["10.77.0.50", 24, "eth0"]),
            ("removeAddress", ["fd77::50", 64, "eth0"]),
            ("removeAddress", ["10.77.0.50", 24, "eth0"]),
            ("hasAddress", ["10.77.0.50"]),
            ("hasAddress", ["fd77::50"]),
            ("hasAddress", [NODE4]),
        )
        self.assertEqual(
            removed,
            [["ok", None]] * 3 + [["ok", False], ["ok", False], ["ok", True]],
        )
        shown = self.lab.ip("-o", "addr", "show", "dev", "eth0", namespace=self.node)
        self.assertNotIn("10.77.0.50", shown)
        self.assertNotIn("fd77::50", shown)

    def test_refused(self) -> None:
        """An address on another interface, with another mask, or for an
        interface that does not exist is refused with ctdb's words; removal
        takes an address off whichever interface holds it."""
        self.lab.connect(self.node, self.bridge, "eth1")
        results = self.drive(
            ("addAddress", ["10.77.0.50", 24, "eth0"]),
            ("addAddress", ["10.77.0.50", 24, "eth1"]),
            ("addAddress", ["10.77.0.50", 16, "eth0"]),
            ("addAddress", ["10.77.0.51", 24, "eth9"]),
            ("removeAddress", ["10.77.0.50", 24, "eth1"]),
            ("hasAddress", ["10.77.0.50"]),
        )
        self.assertEqual(
            results,
            [
                ["ok", None],
                [
                    "AddressError",
                    "Failed to add 10.77.0.50/24 on dev eth1: already on dev eth0",
                ],
                [
                    "AddressError",
                    (
                        "Failed to add 10.77.0.50/16 on dev eth0: already there as "
                        "10.77.0.50/24"
                    ),
                ],
                [
                    "AddressError",
                    "Failed to add 10.77.0.51/24 on dev eth9: no such interface",
                ],
                ["ok", None],
                ["ok", False],
            ],
        )

    def test_links(self) -> None:
        """interfaceExists and linkUp: eth0 is up until its bridge port goes
        down (no carrier); lo is always up; an interface set down comes up
        again when an address is added to it, as add_ip_to_iface does."""
        first = self.drive(
            ("interfaceExists", ["eth0"]),
            ("interfaceExists", ["eth9"]),
            ("linkUp", ["eth0"]),
            ("linkUp", ["lo"]),
            ("linkUp", ["eth9"]),
        )
        self.assertEqual(first, [["ok", v] for v in (True, False, True, True, False)])
        self.lab.setLink(self.bridge.namespace, "p1", False)
        self.assertEqual(self.drive(("linkUp", ["eth0"])), [["ok", False]])
        self.lab.setLink(self.bridge.namespace, "p1", True)
        self.lab.setLink(self.node, "eth0", False)
        self.assertEqual(
            self.drive(
                ("linkUp", ["eth0"]),
                ("addAddress", ["10.77.0.50", 24, "eth0"]),
                ("linkUp", ["eth0"]),
            ),
            [["ok", False], ["ok", None], ["ok", True]],
        )


class AnnouncementTests(NamespaceCase):
    """Gratuitous ARP and neighbour advertisements reach the peer."""

    def test_gratuitousArp(self) -> None:
        """B captures the ARP request and reply and the neighbour
        advertisement for A's addresses, from A's MAC; loopback sends
        nothing; an unknown interface is an error."""
        mac = bytes.fromhex(self.lab.macAddress(self.node, "eth0").replace(":", ""))
        capture = self.lab.capture(self.peer, "eth0")
        results = self.drive(
            ("sendGratuitousArp", [NODE4, "eth0"]),
            ("sendGratuitousArp", [NODE6, "eth0"]),
            ("sendGratuitousArp", ["127.0.0.1", "lo"]),
            ("sendGratuitousArp", [NODE4, "eth9"]),
        )
        self.assertEqual(
            results,
            [["ok", None]] * 3 + [["AddressError", "Interface 'eth9' not found"]],
        )

        def announcement(frame: bytes) -> bool:
            if frame[6:12] != mac:
                return False
            if frame[12:14] == b"\x08\x06":
                return True
            return frame[12:14] == b"\x86\xdd" and frame[20] == 58 and frame[54] == 136

        request = capture.waitFor(announcement)
        reply = capture.waitFor(announcement)
        advertisement = capture.waitFor(announcement)
        capture.stop()
        self.assertEqual(request, P.gratuitousArp(NODE4, mac))
        self.assertEqual(reply, P.gratuitousArp(NODE4, mac, reply=True))
        self.assertEqual(advertisement, P.neighbourAdvertisement(NODE6, mac))
        assert request is not None and advertisement is not None
        self.assertEqual(request[22:28], mac)  # the ARP sender's MAC
        self.assertEqual(advertisement[80:86], mac)  # the target link-layer option


class ConnectionTests(NamespaceCase):
    """Tickle ACKs and killed connections, against real TCP connections."""

    def test_tickle(self) -> None:
        """A tickle ACK from the server's address makes the client in B
        answer with an ACK revealing its numbers, over IPv4 and IPv6."""
        client, connections = self.connect()
        capture = self.lab.capture(self.peer, "eth0")
        results = self.drive(
            *(("sendTickle", [server, local]) for local, server in connections)
        )
        self.assertEqual(results, [["ok", None]] * 2)
        for local, server in connections:

            def answer(frame: bytes, local: Any = local, server: Any = server) -> bool:
                segment = P.parseFrame(frame)
                return (
                    segment is not None
                    and segment.src == tuple(local)
                    and segment.dst == tuple(server)
                    and not segment.sentByCtdb()
                )

            ack = P.parseFrame(capture.waitFor(answer) or b"")
            self.assertIsNotNone(ack, f"no ACK from {local}")
            assert ack is not None
            self.assertEqual(ack.flags & (P.TH_ACK | P.TH_RST), P.TH_ACK)
            self.assertNotEqual(ack.seq, 0)
        capture.stop()
        client.writeLine("echo 0")
        self.assertEqual(client.readLine(), '"x"')  # the connection lives on

    def test_killConnections(self) -> None:
        """killConnections resets the connections it is given (IPv4 and
        IPv6): the client sees ECONNRESET on each; another connection
        stays up; one nobody answers for is left when the time is up."""
        client, connections = self.connect(count=2)
        doomed = connections[:2]
        nobody = (("10.77.0.99", 40000), (NODE4, 445))
        [[status, killed]] = self.drive(
            ("killConnections", ["eth0", [*doomed, nobody], 0.5])
        )
        self.assertEqual((status, killed), ("ok", 2))
        client.writeLine("watch 0 1")
        self.assertEqual(
            json.loads(client.readLine() or "null"), {"0": "reset", "1": "reset"}
        )
        client.writeLine("echo 2")
        self.assertEqual(client.readLine(), '"x"')

    def test_closeSockets(self) -> None:
        """closeSockets closes the server ends in A of the connections to
        one address (the client in B sees a reset), not those of another
        address, nor the listener: a new connection is served."""
        client, connections = self.connect()
        [[status, closed], [status2, again]] = self.drive(
            ("closeSockets", [NODE4]), ("closeSockets", [NODE4])
        )
        self.assertEqual((status, closed, status2, again), ("ok", 1, "ok", 0))
        client.writeLine("watch 0")
        self.assertEqual(json.loads(client.readLine() or "null"), {"0": "reset"})
        client.writeLine("echo 1")
        self.assertEqual(client.readLine(), '"x"')
        address, port = connections[0][1]
        second = LineReader(
            self.lab.spawn(self.peer, pythonArgv(_CLIENT, f"{address} {port}"))
        )
        self.assertIsNotNone(second.readLine(), "the listener was closed too")
        second.writeLine("echo 0")
        self.assertEqual(second.readLine(), '"x"')

    def test_captureRefused(self) -> None:
        """A capture on an interface that does not exist fails the kill
        with an AddressError."""
        [[status, message]] = self.drive(
            ("killConnections", ["eth9", [((PEER4, 1), (NODE4, 2))], 1.0])
        )
        self.assertEqual(status, "AddressError")
        self.assertIn("Failed to open capture socket on iface 'eth9'", message)
