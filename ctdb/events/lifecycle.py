# -*- test-case-name: tests.events.test_lifecycle -*-
"""
The events ctdbd 4.17 runs over a node's life, and the run states they
move it through (ctdb_daemon.c, ctdb_monitor.c, ctdb_recover.c,
eventscript.c):

 1. runstate INIT: the C{init} event; then C{notify.sh init}.
 2. runstate SETUP: the C{setup} event; then C{notify.sh setup}.  A failed
    C{init} or C{setup} ends the daemon (ctdb_die: no shutdown event).
 3. runstate FIRST_RECOVERY: once a second, until the node has been
    recovered (a valid generation, recovery mode NORMAL) and, unless the
    node starts fast (ctdbd's test mode), C{RerecoveryTimeout} + 3 s have
    passed since the last recovery ended.  The END_RECOVERY of the first
    recovery makes it STARTUP.
 4. The C{startup} event, tried again every 5 s until it succeeds; then
    runstate RUNNING, C{notify.sh startup}, the STARTUP control to every
    connected node (they send back their tickle lists), and health
    monitoring (L{ctdb.events.health}) from 2 s later.
 5. Around every recovery: C{startrecovery} when START_RECOVERY arrives
    and C{recovered} when END_RECOVERY does; each control is answered with
    its event's status (so a failing one fails the recovery).
 6. At the end (L{EventLifecycle.shutdown}, which the node's service runs
    before it stops anything): runstate SHUTDOWN, monitoring stopped, the
    C{shutdown} event.

Rules of eventscript.c's C{ctdb_event_script_run} for every event run
here (L{EventLifecycle.runEvent}): while the node is in recovery only
C{init}, C{setup}, C{startrecovery}, C{shutdown}, C{releaseip} and
C{ipreallocated} may run (another one is refused and counts as status -1,
as ctdbd's "Refusing to run event ... while in recovery"); a
C{startrecovery}, C{recovered}, C{takeip} or C{releaseip} that timed out
counts as a success ("Ignoring hung script"); an event the event runner
cannot run at all (its Deferred fails, or it answers no status) counts as
-1.

Unlike ctdbd, which starts its recovery daemon only once C{setup}
succeeded, the recovery service of a node starts with the node: the run
state shown during the first two events is the lifecycle's, and a leader
may recover the node before its C{setup} event ended.  The first
C{recovered} event runs in STARTUP (ctdbd moves there once it ended), and
ctdbd's check of the persistent databases before C{startup} is not done.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ctdb.events.health import isErrno
from ctdb.interfaces import IRecoveryParticipant
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control
from ctdb.protocols.nodestate import CTDB_RECOVERY_NORMAL, RunState

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon
    from ctdb.events.health import HealthMonitor
    from ctdb.events.notify import Notifier

#: eventscript.c event_allowed_during_recovery (releaseip and
#: ipreallocated too, which the takeover layer runs itself)
ALLOWED_IN_RECOVERY = frozenset(
    {"init", "setup", "startrecovery", "shutdown", "releaseip", "ipreallocated"}
)

#: ctdb_event_script_run_done: a hung script of these is a success
HUNG_IS_SUCCESS = frozenset({"startrecovery", "recovered", "takeip", "releaseip"})

#: how long the shutdown event may take beyond EventScriptTimeout before
#: the node stops without its answer
SHUTDOWN_GRACE = 5.0

#: the events directory of the scripts txctdb ships, in Samba's datadir
#: layout (C{<this>/legacy/10.interface-link.script}, ...; docs/EVENTS.md)
SHIPPED_EVENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts")


@implementer(IRecoveryParticipant)
class EventLifecycle(Service):
    """
    Drives the events of one node (see the module docstring).

    @param waitForRecovery: the node has a recovery service, so C{startup}
        waits for the first recovery; without one it follows C{setup}.
    @param fastStart: ctdbd's C{fast_start} (test mode): no wait of
        C{RerecoveryTimeout} + 3 s after the last recovery before
        C{startup}.
    @ivar events: every event run, in order, with its final status (for
        tests and status).
    """

    log = Logger()
    name = "lifecycle"  # type: ignore[assignment]

    def __init__(
        self,
        daemon: Daemon,
        *,
        reactor: IReactorTime,
        health: HealthMonitor | None = None,
        notifier: Notifier | None = None,
        waitForRecovery: bool = True,
        fastStart: bool = False,
    ) -> None:
        self.daemon = daemon
        self.reactor = reactor
        self.health = health
        self.notifier = notifier
        self.waitForRecovery = waitForRecovery
        self.fastStart = fastStart
        self.events: list[tuple[str, int]] = []
        #: when the last C{recovered} event ended
        self.lastRecovered = 0.0
        #: the start sequence, until it ends
        self.starting: defer.Deferred[None] | None = None
        #: the startup event succeeded
        self.started = False
        self._wait: defer.Deferred[None] | None = None
        self._stopping = False
        self._died = False
        self._shutdown: defer.Deferred[None] | None = None

    # -- running one event ----------------------------------------------------------

    def runEvent(self, event: str, args: str | None = None) -> defer.Deferred[int]:
        """Run C{event} with eventscript.c's rules (module docstring);
        fires with its status, never fails."""
        d = self.daemon
        runner = d.eventRunner
        if runner is None:
            return defer.succeed(0)
        if d.recmode != CTDB_RECOVERY_NORMAL and event not in ALLOWED_IN_RECOVERY:
            self.log.error(
                "Refusing to run event '{event}' while in recovery", event=event
            )
            self.events.append((event, -1))
            return defer.succeed(-1)

        def done(status: object) -> int:
            if not isinstance(status, int):
                return failed(Failure(TypeError(f"no event status: {status!r}")))
            result = status
            if isErrno(result, errno.ETIMEDOUT) and event in HUNG_IS_SUCCESS:
                self.log.error("Ignoring hung script for {event} event", event=event)
                result = 0
            self.events.append((event, result))
            return result

        def failed(f: Failure) -> int:
            self.log.error(
                "Unable to run {event} event: {err}", event=event, err=f.value
            )
            self.events.append((event, -1))
            return -1

        self.log.info('Running the "{event}" event.', event=event)
        return defer.maybeDeferred(runner.runEvent, event, args).addCallbacks(
            done, failed
        )

    # -- the start ------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        self.starting = defer.Deferred.fromCoroutine(self._start())
        self.starting.addErrback(self._startEnded)

    def _startEnded(self, f: Failure) -> None:
        if not f.check(defer.CancelledError):
            self.log.failure("the start of the event scripts failed", f)

    def _notify(self, event: str) -> None:
        if self.notifier is not None:
            self.notifier.notify(event)

    def _sleep(self, seconds: float) -> defer.Deferred[None]:
        if self._stopping:
            # the lifecycle was stopped: the start ends here
            raise defer.CancelledError()
        self._wait = task.deferLater(self.reactor, seconds, lambda: None)
        return self._wait

    def _setRunstate(self, runstate: RunState) -> None:
        """Move to C{runstate} unless the first recovery already moved the
        node past it."""
        if self.daemon.runstate < RunState.STARTUP:
            self.daemon.setRunstate(runstate)

    async def _start(self) -> None:
        d = self.daemon
        # The node started a moment ago (the daemon core calls itself
        # RUNNING at once, for nodes without events): nothing has run yet.
        d.setRunstate(RunState.INIT)
        if await self.runEvent("init") != 0:
            self._die("Failed to run init event")
            return
        self._notify("init")
        self._setRunstate(RunState.SETUP)
        if await self.runEvent("setup") != 0:
            self._die("Failed to run setup event")
            return
        self._notify("setup")
        if self.waitForRecovery:
            self._setRunstate(RunState.FIRST_RECOVERY)
            await self._waitUntilRecovered()
        else:
            self._setRunstate(RunState.STARTUP)
        # ctdb_run_startup
        while True:
            if self._stopping:
                return
            if d.runstate < RunState.STARTUP:
                self.log.info("Not yet in startup runstate. Wait one more second")
                await self._sleep(1)
                continue
            status = await self.runEvent("startup")
            if self._stopping:
                return
            if status == 0:
                break
            self.log.error("startup event failed")
            await self._sleep(5)
        self.log.info("startup event OK - enabling monitoring")
        self.started = True
        d.setRunstate(RunState.RUNNING)
        self._notify("startup")
        # tell every other node we started: they send us their tickle lists
        d.sendControl(
            P.CTDB_BROADCAST_CONNECTED, Control.STARTUP, flags=P.CTDB_CTRL_FLAG_NOREPLY
        )
        if self.health is not None:
            self.health.start()

    async def _waitUntilRecovered(self) -> None:
        """ctdb_wait_until_recovered, once a second."""
        d = self.daemon
        count = 0
        while True:
            await self._sleep(1)
            count += 1
            if count < 60 or count % 600 == 0:
                self.log.info("CTDB_WAIT_UNTIL_RECOVERED")
            if d.vnnMap.generation == P.INVALID_GENERATION:
                continue
            if d.recmode != CTDB_RECOVERY_NORMAL:
                self.log.info("in recovery. Wait one more second")
                continue
            finished = max(self.lastRecovered, d.lastRecoveryFinished)
            wait = float(d.tunables.RerecoveryTimeout) + 3
            if not self.fastStart and self.reactor.seconds() - finished < wait:
                self.log.info(
                    "wait for pending recoveries to end. Wait one more second."
                )
                continue
            return

    def _die(self, why: str) -> None:
        """ctdb_die: the daemon ends at once, without the shutdown event."""
        self.log.critical("ctdb exiting with error: {why}", why=why)
        self._died = True
        self.daemon.shutdown()

    # -- recoveries -------------------------------------------------------------------

    def recoveryStarted(self) -> defer.Deferred[int]:
        """ctdb_control_start_recovery: the C{startrecovery} event."""

        def done(status: int) -> int:
            if status != 0:
                self.log.error(
                    "startrecovery event script failed (status {status})",
                    status=status,
                )
            return status

        return self.runEvent("startrecovery").addCallback(done)

    def recoveryEnded(self, first: bool) -> defer.Deferred[int]:
        """ctdb_control_end_recovery: the C{recovered} event."""

        def done(status: int) -> int:
            self.lastRecovered = self.reactor.seconds()
            if status != 0:
                self.log.error(
                    "recovered event script failed (status {status})", status=status
                )
            return status

        return self.runEvent("recovered").addCallback(done)

    def becameInactive(self) -> None:
        pass

    def whyStayInRecovery(self) -> str | None:
        return None

    def recoveryModeNormal(self) -> None:
        pass

    # -- the end ----------------------------------------------------------------------

    def _halt(self) -> None:
        self._stopping = True
        if self._wait is not None and not self._wait.called:
            self._wait.cancel()
        self._wait = None
        if self.health is not None:
            self.health.stop()

    def shutdown(self) -> defer.Deferred[None]:
        """ctdb_shutdown_sequence's part: runstate SHUTDOWN, monitoring
        stopped, the C{shutdown} event (bounded by EventScriptTimeout plus
        a few seconds).  Fires when it ended; never fails; once only."""
        if self._shutdown is not None:
            return self._shutdown
        self._halt()
        d = self.daemon
        d.setRunstate(RunState.SHUTDOWN)
        if self._died or d.eventRunner is None:
            self._shutdown = defer.succeed(None)
            return self._shutdown
        timeout = float(d.tunables.EventScriptTimeout) + SHUTDOWN_GRACE
        running = self.runEvent("shutdown")
        running.addTimeout(timeout, self.reactor)

        def ended(result: object) -> None:
            if isinstance(result, Failure):
                self.log.error(
                    "shutdown event did not end in {timeout} s", timeout=timeout
                )

        self._shutdown = running.addBoth(ended)
        return self._shutdown

    def stopService(self) -> None:
        super().stopService()
        self._halt()
