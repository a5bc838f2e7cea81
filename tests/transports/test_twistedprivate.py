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
import socket
from pathlib import Path

from twisted.internet import main, tcp, unix
from twisted.internet.protocol import Protocol
from twisted.trial.unittest import SynchronousTestCase

import ctdb
from ctdb.transports._twistedprivate import PlainRecvPort, PlainRecvServer
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
