# -*- test-case-name: tests.events.test_health -*-
"""
The node's health from its C{monitor} event, as ctdbd 4.17 decides it
(ctdb_monitor.c C{ctdb_check_health} and C{ctdb_health_callback}):

 - monitoring begins 2 s after the C{startup} event succeeded; after each
   monitor event the next one comes after the current interval, which
   then doubles, up to C{MonitorInterval} (2, 4, 8, 15, 15, ...); a change
   of health, or a monitor event that could not be started at all, sets
   the interval back to 5 s;
 - no monitor event runs while the node is in recovery, inactive (banned
   or stopped) or not RUNNING; the check comes back after the interval;
 - a monitor event that failed makes a healthy node UNHEALTHY, one that
   succeeded makes an UNHEALTHY node healthy again; a node starts
   UNHEALTHY (ctdbd's own node is, until its first monitor event passes);
 - a monitor event that timed out (ETIMEDOUT) counts as a failure only
   when it is the C{MonitorTimeoutCount}th in a row; before that it
   changes nothing.  Any other result but ECANCELED starts the count
   again;
 - a cancelled one (ECANCELED: the event daemon cancels a running monitor
   event when another event must run, as the startrecovery of a recovery)
   changes nothing, not even the timeout count;
 - a monitor event that fails to run (its Deferred fails, or it answers
   something that is no status) counts as one that could not be started;
   the result of one started before L{HealthMonitor.stop} is dropped;
 - a change of health is pushed to every connected node (through
   L{INodeFlags}, as ctdbd's recovery daemon pushes
   CTDB_SRVID_PUSH_NODE_FLAGS), the notification script is told
   C{unhealthy} or C{healthy}, and every connected node is asked for a
   takeover run (CTDB_SRVID_TAKEOVER_RUN, no answer wanted), so the
   leader moves the node's public addresses.

ctdb-eventd answers ETIMEDOUT and ECANCELED as positive errnos; a negative
one (as some callers pass them) means the same here.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from ctdb.interfaces import INodeFlags
from ctdb.protocols import packet as P
from ctdb.protocols.nodestate import (
    CTDB_RECOVERY_NORMAL,
    NODE_FLAGS_INACTIVE,
    NODE_FLAGS_UNHEALTHY,
    RunState,
)
from ctdb.protocols.srvids import CTDB_SRVID_TAKEOVER_RUN, encodeSrvidMessage

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon
    from ctdb.events.notify import Notifier

#: the interval after the startup event, and after a change of health or a
#: monitor event that could not be started
FIRST_INTERVAL = 2
CHANGE_INTERVAL = 5


def isErrno(status: int, code: int) -> bool:
    """Whether C{status} is the errno C{code}, of either sign."""
    return status in (code, -code)


class HealthMonitor:
    """
    The monitor events of one node and the health they give it.

    @ivar nextInterval: seconds to the check after the coming one.
    @ivar timeouts: monitor events timed out in a row
        (C{event_script_timeouts}).
    @ivar results: the status of every monitor event that ended, in order.
    """

    log = Logger()

    def __init__(
        self,
        daemon: Daemon,
        *,
        reactor: IReactorTime,
        flags: INodeFlags,
        notifier: Notifier | None = None,
    ) -> None:
        self.daemon = daemon
        self.reactor = reactor
        self.flags = flags
        self.notifier = notifier
        self.nextInterval = CHANGE_INTERVAL
        self.timeouts = 0
        self.results: list[int] = []
        self.active = False
        self._timer: IDelayedCall | None = None
        #: a monitor event is under way
        self._running = False
        #: bumped by stop(): the result of an event started before is dropped
        self._epoch = 0

    def markUnhealthy(self) -> None:
        """The state a node starts in, before its first monitor event
        (ctdbd's nodes all start UNHEALTHY; only the node's own monitoring
        clears it).  Call before the node is started."""
        self.daemon.nodes[self.daemon.pnn].flags |= NODE_FLAGS_UNHEALTHY

    # -- starting and stopping --------------------------------------------------------

    def start(self) -> None:
        """ctdb_startup_callback: the startup event succeeded; the first
        monitor event comes in 2 s."""
        if self.active:
            return
        self.active = True
        self.nextInterval = FIRST_INTERVAL
        self._schedule(self.nextInterval)

    def stop(self) -> None:
        """ctdb_stop_monitoring: no more monitor events; the result of one
        under way is ignored."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._epoch += 1
        self._running = False
        self.nextInterval = CHANGE_INTERVAL
        if self.active:
            self.active = False
            self.log.info("Monitoring has been stopped")

    def _schedule(self, delay: float) -> None:
        if not self.active:
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = self.reactor.callLater(delay, self.checkHealth)

    # -- one check ------------------------------------------------------------------

    def checkHealth(self) -> None:
        """ctdb_check_health: run the monitor event unless the node is in
        recovery, inactive or not RUNNING."""
        self._timer = None
        if not self.active or self._running:
            return
        d = self.daemon
        if (
            d.recmode != CTDB_RECOVERY_NORMAL
            or d.nodes[d.pnn].flags & NODE_FLAGS_INACTIVE
            or d.runstate != RunState.RUNNING
        ):
            self._schedule(self.nextInterval)
            return
        runner = d.eventRunner
        if runner is None:
            self._launchFailed("no event runner")
            return
        epoch = self._epoch
        self._running = True
        started = defer.maybeDeferred(runner.runEvent, "monitor", None)

        def ended(status: object) -> None:
            if epoch != self._epoch:
                return
            self._running = False
            if not isinstance(status, int):
                # not a status: as an event that could not be run, so
                # that monitoring goes on
                self._launchFailed(f"the event runner answered {status!r}")
                return
            self.healthCallback(status)

        def failed(f: Failure) -> None:
            if epoch != self._epoch:
                return
            self._running = False
            self._launchFailed(str(f.value))

        started.addCallbacks(ended, failed)
        started.addErrback(lambda f: self.log.failure("health callback failed", f))

    def _launchFailed(self, why: str) -> None:
        self.log.error("Unable to launch monitor event script: {why}", why=why)
        self.nextInterval = CHANGE_INTERVAL
        self._schedule(CHANGE_INTERVAL)

    def healthCallback(self, status: int) -> None:
        """ctdb_health_callback: the monitor event ended with C{status}."""
        self.results.append(status)
        d = self.daemon
        node = d.nodes[d.pnn]
        old = node.flags
        new = old
        if isErrno(status, errno.ECANCELED):
            self.log.error("Monitoring event was cancelled")
        elif isErrno(status, errno.ETIMEDOUT) and (
            self.timeouts + 1 < int(d.tunables.MonitorTimeoutCount)
        ):
            # pretend it passed, health unchanged
            self.timeouts += 1
        else:
            if isErrno(status, errno.ETIMEDOUT):
                self.timeouts += 1
                self.log.error(
                    "Maximum monitor timeout count {count} reached. "
                    "Making node unhealthy",
                    count=int(d.tunables.MonitorTimeoutCount),
                )
            else:
                self.timeouts = 0
            if status != 0 and not old & NODE_FLAGS_UNHEALTHY:
                self.log.info("monitor event failed - disabling node")
                new = old | NODE_FLAGS_UNHEALTHY
                self.nextInterval = CHANGE_INTERVAL
            elif status == 0 and old & NODE_FLAGS_UNHEALTHY:
                self.log.info("monitor event OK - node re-enabled")
                new = old & ~NODE_FLAGS_UNHEALTHY
                self.nextInterval = CHANGE_INTERVAL

        interval = self.nextInterval
        self.nextInterval = min(self.nextInterval * 2, int(d.tunables.MonitorInterval))
        self._schedule(interval)
        if new == old:
            return
        self.flags.setMyFlags(new)
        unhealthy = bool(new & NODE_FLAGS_UNHEALTHY)
        if self.notifier is not None:
            self.notifier.notify("unhealthy" if unhealthy else "healthy")
        # ctdbd logs both at ERR; a node becoming healthy is no error, so
        # that one is a notice here (scans of the log for errors stay quiet
        # on a node that starts normally).
        self.log.emit(
            LogLevel.error if unhealthy else LogLevel.info,
            "Node became {state}. Ask recovery master to reallocate IPs",
            state="UNHEALTHY" if unhealthy else "HEALTHY",
        )
        d.sendMessage(
            P.CTDB_BROADCAST_CONNECTED,
            CTDB_SRVID_TAKEOVER_RUN,
            encodeSrvidMessage(d.pnn, 0),
        )
