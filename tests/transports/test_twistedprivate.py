# -*- test-case-name: tests.transports.test_twistedprivate -*-
"""
Tests for L{ctdb.transports._twistedprivate}: each assumption it makes
about Twisted's internals, checked against the installed Twisted, so that a
Twisted release that changes one fails here.  If one of these fails, read
that module's docstring, check the plain-recv() client socket still works
with the new Twisted (or drop it), and update both.
"""

from __future__ import annotations

import ast
import inspect
import os
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path

from twisted.internet import error, main, tcp, unix
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

import ctdb
from ctdb.transports._twistedprivate import (
    LeanEPollReactor,
    PlainRecvPort,
    PlainRecvServer,
)
from tests.transports._helpers import unixConnection

SOURCE = Path(ctdb.__file__).resolve().parent
HERE = SOURCE / "transports" / "_twistedprivate.py"

#: Twisted's modules of concrete transports, whose internals only
#: _twistedprivate may build on
_INTERNALS = {
    "twisted.internet.tcp",
    "twisted.internet.unix",
    "twisted.internet.abstract",
}

#: (module, attribute) uses of Twisted's private attributes outside this
#: module that are known and still to be removed; keep it empty
_PENDING: set[tuple[str, str]] = set()


def _privateUses(skip: Path | None = HERE) -> set[tuple[str, str]]:
    """
    (module, attribute) for every attribute of ctdb/ outside C{skip}
    (L{_twistedprivate}) that starts with an underscore, is read or set on an
    object other than C{self} or C{cls} (directly or with C{getattr} and its
    kin), and is defined nowhere in ctdb/ (so it is someone else's private
    attribute); and (module, name) for every import of a module of
    L{_INTERNALS}.
    """
    trees = {p: ast.parse(p.read_text()) for p in sorted(SOURCE.rglob("*.py"))}
    ours: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                ours.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                ours.add(node.id)
            elif isinstance(node, ast.arg):
                ours.add(node.arg)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
            ):
                ours.add(node.attr)
    found = set()
    for path, tree in trees.items():
        if path == skip:
            continue
        name = str(path.relative_to(SOURCE))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                attr = node.attr
                if (
                    attr.startswith("_")
                    and not attr.startswith("__")
                    and attr not in ours
                    and not (
                        isinstance(node.value, ast.Name)
                        and node.value.id in ("self", "cls")
                    )
                ):
                    found.add((name, attr))
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
                and node.args[1].value.startswith("_")
                and not node.args[1].value.startswith("__")
                and node.args[1].value not in ours
            ):
                found.add((name, node.args[1].value))
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                modules = {node.module} | {
                    f"{node.module}.{alias.name}" for alias in node.names
                }
                found |= {(name, m) for m in modules & _INTERNALS}
            elif isinstance(node, ast.Import):
                found |= {
                    (name, alias.name)
                    for alias in node.names
                    if alias.name in _INTERNALS
                }
    return found


class _Recorder(Protocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)


class NowhereElseTests(SynchronousTestCase):
    """No other module relies on Twisted's internals."""

    def test_onlyHere(self) -> None:
        """
        No module of ctdb/ but L{ctdb.transports._twistedprivate} uses a
        private attribute that ctdb does not define, or imports the modules
        of Twisted's concrete transports; the known exceptions still to be
        removed are listed in C{_PENDING}.
        """
        self.assertEqual(_privateUses() - _PENDING, set())

    def test_found(self) -> None:
        """The scan sees this module's own reliance when not skipped."""
        uses = _privateUses(skip=None)
        self.assertIn(("transports/_twistedprivate.py", "twisted.internet.tcp"), uses)
        self.assertIn(("transports/_twistedprivate.py", "twisted.internet.unix"), uses)


class AssumptionTests(SynchronousTestCase):
    """The class layout that L{PlainRecvPort} builds on."""

    def test_unixServerIsATCPConnection(self) -> None:
        """
        L{unix.Server} is a C{tcp.Connection}, so TCP's C{doRead} and the
        private C{_dataReceived} it calls work on it.
        """
        self.assertTrue(issubclass(unix.Server, tcp.Connection))
        self.assertIn("doRead", vars(tcp.Connection))
        self.assertTrue(callable(vars(tcp.Connection).get("_dataReceived")))

    def test_unixServerOverridesDoRead(self) -> None:
        """
        L{unix.Server} reads in its own way (recvmsg()), which is what
        L{PlainRecvServer} undoes; if Twisted stops doing so, this module
        is not needed any more.
        """
        self.assertIsNot(unix.Server.doRead, tcp.Connection.doRead)
        self.assertIs(PlainRecvServer.doRead, tcp.Connection.doRead)

    def test_portTransportAttribute(self) -> None:
        """
        L{unix.Port} names the class of its accepted connections in the
        C{transport} class attribute.
        """
        self.assertIs(unix.Port.transport, unix.Server)
        self.assertIs(PlainRecvPort.transport, PlainRecvServer)


class LiveTests(SynchronousTestCase):
    """A L{PlainRecvPort} on a real UNIX socket, driven by hand."""

    def setUp(self) -> None:
        self.protocol = _Recorder()
        _, _, self.peer = unixConnection(self, self.protocol, PlainRecvPort)
        assert self.protocol.transport is not None
        self.transport = self.protocol.transport

    def test_accepted(self) -> None:
        """
        The port accepts a connection as a L{PlainRecvServer}, with the
        attributes TCP's C{doRead} uses: its socket, the protocol and a
        buffer size.
        """
        t = self.transport
        self.assertIsInstance(t, PlainRecvServer)
        self.assertIsInstance(t.socket, socket.socket)  # type: ignore[attr-defined]
        self.assertIs(t.protocol, self.protocol)  # type: ignore[attr-defined]
        self.assertIsInstance(t.bufferSize, int)  # type: ignore[attr-defined]

    def test_reads(self) -> None:
        """
        C{doRead} delivers what the peer sent, returns None when nothing is
        there, and reports a closed peer as a clean end.
        """
        t = self.transport
        self.peer.sendall(b"hello")
        self.assertIsNone(t.doRead())  # type: ignore[attr-defined]
        self.assertEqual(self.protocol.received, [b"hello"])
        self.assertIsNone(t.doRead())  # type: ignore[attr-defined]
        self.peer.close()
        self.assertIs(t.doRead(), main.CONNECTION_DONE)  # type: ignore[attr-defined]


class LeanReactorAssumptionTests(SynchronousTestCase):
    """The parts of Twisted's epoll reactor that L{LeanEPollReactor}'s
    loop reads and calls, as it reads and calls them."""

    def test_privateParts(self) -> None:
        reactor = _leanReactor(self)
        self.assertIsInstance(reactor, EPollReactor)
        self.assertEqual(reactor._POLL_IN, select.EPOLLIN)
        self.assertIsInstance(reactor._selectables, dict)
        self.assertTrue(callable(reactor._poller.poll))
        self.assertEqual(reactor._pendingTimedCalls, [])
        self.assertEqual(reactor._newTimedCalls, [])
        self.assertEqual(reactor.threadCallQueue, [])
        self.assertFalse(reactor._justStopped)
        self.assertFalse(reactor._started)
        # _doReadOrWrite(selectable, fd, event) and
        # _disconnectSelectable(selectable, why, isRead)
        for name, args in (
            ("_doReadOrWrite", ["selectable", "fd", "event"]),
            ("_disconnectSelectable", ["selectable", "why", "isRead"]),
        ):
            params = list(inspect.signature(getattr(reactor, name)).parameters)
            self.assertEqual(params[: len(args)], args, name)

    def test_timedCallsHeap(self) -> None:
        """A new timed call waits in C{_newTimedCalls}, moves to the heap
        C{_pendingTimedCalls} (ordered by C{time}) at C{timeout()}."""
        reactor = _leanReactor(self)
        later = reactor.callLater(5, lambda: None)
        sooner = reactor.callLater(1, lambda: None)
        self.assertEqual(reactor._newTimedCalls, [later, sooner])
        reactor.timeout()
        self.assertEqual(reactor._newTimedCalls, [])
        self.assertIs(reactor._pendingTimedCalls[0], sooner)
        self.assertLessEqual(sooner.time, later.time)
        later.cancel()
        sooner.cancel()


class LeanReactorTests(SynchronousTestCase):
    """L{LeanEPollReactor} runs timed calls, reads, other threads' calls,
    disconnections and errors as Twisted's epoll reactor does."""

    def run_(self, reactor: LeanEPollReactor) -> None:
        """Run C{reactor} until it stops, at most 10 s."""
        guard = reactor.callLater(10, reactor.stop)
        reactor.run(installSignalHandlers=False)
        self.assertTrue(guard.active(), "the reactor ran into the 10 s guard")
        guard.cancel()

    def test_timedCallsAndStop(self) -> None:
        """Timed calls run in time order; stop fires the shutdown triggers
        and ends the loop."""
        reactor = _leanReactor(self)
        ran: list[str] = []
        reactor.callLater(0.02, ran.append, "second")
        reactor.callLater(0.01, ran.append, "first")
        reactor.callLater(0.03, reactor.stop)
        reactor.addSystemEventTrigger("before", "shutdown", ran.append, "shutdown")
        self.run_(reactor)
        self.assertEqual(ran, ["first", "second", "shutdown"])

    def test_reads(self) -> None:
        """Data is read and handed to the protocol; a timed call made while
        reading runs; a closed peer ends the connection cleanly."""
        reactor = _leanReactor(self)
        events: list[object] = []
        peer = _adopted(self, reactor, _Events(reactor, events))
        peer.sendall(b"ping")
        self.run_(reactor)
        self.assertEqual(events, [b"ping", error.ConnectionDone])

    def test_readError(self) -> None:
        """An exception from the protocol is logged and drops the
        connection, as _doReadOrWrite does."""
        reactor = _leanReactor(self)
        events: list[object] = []
        peer = _adopted(self, reactor, _Events(reactor, events, fail=True))
        peer.sendall(b"ping")
        self.run_(reactor)
        self.assertEqual(events, [b"ping", ZeroDivisionError])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_callFromThread(self) -> None:
        """A call from another thread wakes the loop and runs in it."""
        reactor = _leanReactor(self)
        ran: list[bool] = []

        def inThread() -> None:
            reactor.callFromThread(ran.append, threading.current_thread() is main_)
            reactor.callFromThread(reactor.stop)

        main_ = threading.current_thread()
        reactor.callLater(0.01, threading.Thread(target=inThread).start)
        self.run_(reactor)
        self.assertEqual(ran, [False])

    def test_loopErrorLogged(self) -> None:
        """An error escaping the loop itself is logged and the loop goes on,
        as ReactorBase.mainLoop's handler does."""
        reactor = _leanReactor(self)
        real = reactor.runUntilCurrent
        calls: list[int] = []

        def failingOnce() -> None:
            calls.append(1)
            if len(calls) == 1:
                raise ZeroDivisionError("in the loop")
            real()

        reactor.runUntilCurrent = failingOnce  # type: ignore[method-assign]
        reactor.callLater(0.01, reactor.stop)
        self.run_(reactor)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_installs(self) -> None:
        """The public module installs it as the global reactor, unless one
        is installed already (in a process of its own: this one has
        trial's or none, and keeps it)."""
        script = (
            "from ctdb.transports.reactor import installUnlessChosen\n"
            "first = installUnlessChosen()\n"
            "from twisted.internet import reactor\n"
            "print(first, type(reactor).__name__, installUnlessChosen())\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=False,
            env=dict(os.environ, PYTHONPATH=str(SOURCE.parent)),
        )
        self.assertEqual(out.stdout.split(), ["True", "LeanEPollReactor", "False"])


def _leanReactor(case: SynchronousTestCase) -> LeanEPollReactor:
    """A reactor of its own (not the global one), closed after the test."""
    reactor = LeanEPollReactor()

    def close() -> None:
        for reader in list(reactor.getReaders()) + list(reactor.getWriters()):
            reactor.removeReader(reader)
            reactor.removeWriter(reader)
        for reader in getattr(reactor, "_internalReaders", ()):
            reader.connectionLost(None)
        reactor._poller.close()

    case.addCleanup(close)
    return reactor


class _Events(Protocol):
    """
    Records what it receives and why its connection ended, then stops the
    reactor.  After the first data it closes the peer shortly (a timed call
    made while reading), or with C{fail} raises instead.
    """

    def __init__(
        self, reactor: LeanEPollReactor, events: list[object], fail: bool = False
    ) -> None:
        self.reactor = reactor
        self.events = events
        self.fail = fail
        self.peer: socket.socket | None = None

    def dataReceived(self, data: bytes) -> None:
        self.events.append(data)
        if self.fail:
            raise ZeroDivisionError("the protocol failed")
        assert self.peer is not None
        self.reactor.callLater(0.01, self.peer.close)

    def connectionLost(self, reason: Failure = main.CONNECTION_DONE) -> None:  # type: ignore[assignment]
        self.events.append(reason.type)
        self.reactor.stop()


def _adopted(
    case: SynchronousTestCase, reactor: LeanEPollReactor, protocol: _Events
) -> socket.socket:
    """C{protocol} on one end of a socket pair adopted by C{reactor}; the
    other end."""
    ours, peer = socket.socketpair()
    case.addCleanup(peer.close)
    protocol.peer = peer
    factory = Factory.forProtocol(lambda: protocol)
    reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX, factory)
    ours.close()
    return peer
