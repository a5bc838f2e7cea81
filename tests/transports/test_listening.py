# -*- test-case-name: tests.transports.test_listening -*-
"""
Tests for L{ctdb.transports.listening.ListeningService}: listening while
it runs, and a start that fails at once when the endpoint cannot be
listened on.
"""

from __future__ import annotations

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from ctdb.transports.listening import ListeningService


class _Refusing(MemoryReactorClock):
    def listenTCP(self, port, factory, backlog=50, interface=""):  # type: ignore[no-untyped-def]
        raise CannotListenError(interface, port, OSError(98, "Address in use"))


class _Raising(TCP4ServerEndpoint):
    def listen(self, protocolFactory):  # type: ignore[no-untyped-def]
        raise OverflowError("port must be 0-65535")


class ListeningServiceTests(SynchronousTestCase):
    """L{ListeningService}."""

    def factory(self) -> Factory:
        return Factory.forProtocol(Protocol)

    def test_listens(self) -> None:
        """Started, it listens with its factory; stopped, it stops."""
        reactor = MemoryReactorClock()
        factory = self.factory()
        service = ListeningService(
            TCP4ServerEndpoint(reactor, 9100, interface="127.0.0.3"), factory
        )
        service.startService()
        [(port, used, _backlog, interface)] = reactor.tcpServers
        self.assertEqual((port, used, interface), (9100, factory, "127.0.0.3"))
        self.assertIsNotNone(service.port)
        stopping = service.stopService()
        assert stopping is not None
        self.successResultOf(stopping)
        self.assertIsNone(service.port)
        self.assertIsNone(service.stopService())

    def test_failedListen(self) -> None:
        """A listen whose Deferred fails at once fails the start with its
        error."""
        reactor = _Refusing()
        service = ListeningService(TCP4ServerEndpoint(reactor, 9100), self.factory())
        e = self.assertRaises(CannotListenError, service.startService)
        self.assertIn("Address in use", str(e))
        self.assertIsNone(service.port)

    def test_raisingListen(self) -> None:
        """A listen that raises fails the start the same way."""
        service = ListeningService(
            _Raising(MemoryReactorClock(), 99999), self.factory()
        )
        self.assertRaises(OverflowError, service.startService)

    def test_listenFailed(self) -> None:
        """Either way the failure goes through C{listenFailed}, so a
        subclass can say more."""
        seen: list[Failure] = []

        class Saying(ListeningService):
            def listenFailed(self, failure: Failure) -> None:
                seen.append(failure)

        Saying(TCP4ServerEndpoint(_Refusing(), 1), self.factory()).startService()
        Saying(_Raising(MemoryReactorClock(), 2), self.factory()).startService()
        self.assertEqual([f.type for f in seen], [CannotListenError, OverflowError])
