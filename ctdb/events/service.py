# -*- test-case-name: tests.events.test_service -*-
"""
The node's event daemon as a service (C{"eventd"}): the events directory
run by an L{EventContext}, the event protocol served on the event socket
(so Samba's ``ctdb event ...`` and ``ctdb scriptstatus`` reach it), and
the node's L{IEventRunner}: L{EventService.runEvent} runs an event of the
C{legacy} component as ctdbd asks its event daemon to (ctdb/server/
eventscript.c: the timeout is the C{EventScriptTimeout} tunable at the
time of the request, unless a timeout of the event's own is configured;
nothing else is added: which events may run in recovery, and which hung
ones count as success, is the callers' business, as in ctdbd).

Started, it listens on the socket; stopped, it stops listening, drops its
clients and kills every script still running (SIGKILL to their process
groups), as ctdb-eventd going away does.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from zope.interface import implementer

from ctdb.events.runner import (
    DEBUG_TIMEOUT,
    KILL_GRACE,
    MAX_OUTPUT,
    EventContext,
    EventResult,
)
from ctdb.events.server import EventServerFactory, clearStaleSocket
from ctdb.interfaces import ICTDBReactor, IEventRunner
from ctdb.protocols.event import RequestRun
from ctdb.protocols.tunables import Tunables

#: the component ctdbd runs its events in
LEGACY = "legacy"


class _NodeTunables(typing.Protocol):
    """What the event service reads of its node (a L{ctdb.daemon.core.Daemon})."""

    tunables: Tunables


@implementer(IEventRunner)
class EventService(Service):
    """
    Our event daemon, part of the node.  C{eventsDir} is the C{events}
    directory of C{CTDB_BASE} (components in its subdirectories);
    C{debugScript} the path of ctdb.conf's C{[event] debug script};
    C{environment} what scripts get (this process's environment if None);
    C{timeouts} per-event timeouts (seconds) that override
    C{EventScriptTimeout}.
    """

    log = Logger()
    name = "eventd"  # type: ignore[assignment]

    def __init__(
        self,
        *,
        reactor: ICTDBReactor,
        daemon: _NodeTunables,
        eventsDir: str,
        socketPath: str,
        debugScript: str | None = None,
        environment: Mapping[str, str] | None = None,
        timeouts: Mapping[str, int] | None = None,
        maxOutput: int = MAX_OUTPUT,
        killGrace: float = KILL_GRACE,
        debugTimeout: float = DEBUG_TIMEOUT,
    ) -> None:
        self.reactor = reactor
        self.daemon = daemon
        self.socketPath = socketPath
        self.timeouts = dict(timeouts or {})
        self.context = EventContext(
            reactor=reactor,
            eventsDir=eventsDir,
            debugScript=debugScript,
            environment=environment,
            maxOutput=maxOutput,
            killGrace=killGrace,
            debugTimeout=debugTimeout,
        )
        self.factory = EventServerFactory(self.context)
        self.port: IListeningPort | None = None

    # -- IEventRunner --------------------------------------------------------------

    def timeoutFor(self, event: str) -> int:
        """The timeout ctdbd gives C{event} (seconds)."""
        if event in self.timeouts:
            return int(self.timeouts[event])
        return int(self.daemon.tunables.EventScriptTimeout)

    def runEvent(self, event: str, args: str | None = None) -> defer.Deferred[int]:
        """Run C{event} of the C{legacy} component with the space-separated
        C{args}; fires with ctdb-eventd's result: 0, ETIMEDOUT, ENOEXEC (a
        script failed), ECANCELED (a monitor cut short by another event, or
        the service stopping), or the errno of what kept it from running
        (ENOENT: no C{legacy} directory)."""
        self.log.info(
            "Running event {event} with arguments {args}", event=event, args=args
        )
        request = RequestRun(LEGACY, event, args, self.timeoutFor(event), 0)
        return self.context.run(request)

    # -- status --------------------------------------------------------------------

    def lastResult(self, event: str, component: str = LEGACY) -> EventResult | None:
        """The last run of C{event} that was not cancelled (what
        ``ctdb scriptstatus EVENT`` shows), or None."""
        return self.context.lastResult(component, event)

    # -- the service ---------------------------------------------------------------

    def startService(self) -> None:
        """Listen on the event socket (at once: a socket that cannot be
        listened on fails the node's start)."""
        clearStaleSocket(self.socketPath)
        self.port = self.reactor.listenUNIX(
            self.socketPath, self.factory, mode=0o700, wantPID=False
        )
        super().startService()

    def stopService(self) -> defer.Deferred[object]:
        """Kill the scripts, drop the clients, stop listening; fires once
        the scripts are reaped and the socket is gone."""
        super().stopService()
        waits: list[defer.Deferred[object]] = [
            self.context.stop().addCallback(lambda _: None)
        ]
        self.factory.disconnectAll()
        if self.port is not None:
            port, self.port = self.port, None
            waits.append(defer.maybeDeferred(port.stopListening))
        return defer.gatherResults(waits).addCallback(lambda _: None)
