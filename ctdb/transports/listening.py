# -*- test-case-name: tests.transports.test_listening -*-
"""
A server endpoint as a service: L{ListeningService} listens while it runs
(the client socket, the metrics endpoint).  Unlike Twisted's
C{StreamServerEndpointService}, an endpoint that cannot be listened on
fails C{startService} at once, so the node's start fails with it (the
drop-in ctdbd reports that to the process waiting for it); Twisted offers
that only through a private switch.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.python.failure import Failure


class ListeningService(Service):
    """
    Listens on C{endpoint} with C{factory} when started, and stops
    listening when stopped.  A listen that fails at once, by raising or
    with a failed Deferred, goes to L{listenFailed}, which raises it.
    """

    def __init__(
        self, endpoint: IStreamServerEndpoint, factory: IProtocolFactory
    ) -> None:
        self.endpoint = endpoint
        self.factory = factory
        self.port: IListeningPort | None = None

    def startService(self) -> None:
        super().startService()
        failures: list[Failure] = []
        try:
            listening = self.endpoint.listen(self.factory)
        except Exception:  # noqa: BLE001 - handed to listenFailed, which raises
            self.listenFailed(Failure())
            return
        listening.addCallbacks(self._listening, failures.append)
        if failures:
            self.listenFailed(failures[0])

    def listenFailed(self, failure: Failure) -> None:
        """The endpoint could not be listened on: raise why (a subclass
        may raise something that says more)."""
        failure.raiseException()

    def _listening(self, port: IListeningPort) -> None:
        self.port = port

    def stopService(self) -> defer.Deferred[object] | None:
        super().stopService()
        if self.port is None:
            return None
        port, self.port = self.port, None
        stopping: defer.Deferred[object] = defer.maybeDeferred(port.stopListening)
        return stopping
