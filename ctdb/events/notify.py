# -*- test-case-name: tests.events.test_notify -*-
"""
The notification hook of ctdbd 4.17 (ctdb_monitor.c,
C{ctdb_run_notification_script}): when the node's state changes, ctdbd
runs C{$CTDB_BASE/notify.sh} with one argument, the name of what happened:

 - C{init}, C{setup} and C{startup}, once each, when that event of the
   node's start succeeded (ctdb_daemon.c, ctdb_monitor.c);
 - C{unhealthy} and C{healthy}, when a monitor event changed the node's
   health (L{ctdb.events.health}).

ctdbd forks a child that runs the script and never waits for it; a missing
or non-executable script is logged at each notification, a script that
exits non-zero is logged with its status.  Samba's own C{notify.sh} runs
every executable C{events/notification/*.script} with the same argument.
"""

from __future__ import annotations

import os
import stat

from twisted.internet import defer
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ctdb.interfaces import ICTDBReactor

#: what ctdbd notifies, in the order a healthy start sees the first three
NOTIFY_EVENTS = ("init", "setup", "startup", "unhealthy", "healthy")


class _NotificationProcess(ProcessProtocol):
    """One run of the script: its output goes to the log line by line, its
    end fires C{ended} with the exit status (-1 for a signal)."""

    log = Logger()

    def __init__(self, command: str) -> None:
        self.command = command
        self.ended: defer.Deferred[int | None] = defer.Deferred()
        self._partial = b""

    def connectionMade(self) -> None:
        self.transport.closeStdin()  # type: ignore[union-attr]

    def outReceived(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self._logLine(line)

    errReceived = outReceived

    def _logLine(self, line: bytes) -> None:
        self.log.info(
            "notification: {line}", line=line.decode("utf-8", errors="replace")
        )

    def processEnded(self, reason: Failure) -> None:
        if self._partial:
            self._logLine(self._partial)
            self._partial = b""
        status = 0
        if reason.check(ProcessTerminated):
            value = reason.value
            status = -1 if value.exitCode is None else int(value.exitCode)
        elif not reason.check(ProcessDone):
            status = -1
        if status != 0:
            self.log.error(
                'Notification script "{command}" failed with error {status}',
                command=self.command,
                status=status,
            )
        self.ended.callback(status)


class Notifier:
    """
    Runs the notification script C{script} (None: notifications are off,
    as in a ctdbd without C{notification_script}).

    ctdbd forks a child per notification and never waits, so two that come
    close together (C{init} and C{setup}) may run in either order.  Here
    each one starts once the one before it ended, or C{ORDER_WAIT} seconds
    after it started if it is still running: the script hears them in the
    order they happened, and a hung one holds the others up only briefly.

    @ivar sent: every event notified, in order (whether the script ran).
    """

    log = Logger()

    #: how long a notification waits for the one before it to end
    ORDER_WAIT = 5.0

    def __init__(self, script: str | None, *, reactor: ICTDBReactor) -> None:
        self.script = script
        self.reactor = reactor
        self.sent: list[str] = []
        #: fires when the last notification may let the next one start
        self._turn: defer.Deferred[None] = defer.succeed(None)

    def notify(self, event: str) -> defer.Deferred[int | None]:
        """Run the script with C{event} in its turn.  Nothing waits for
        it; the result (its exit status, or None when it could not be
        run) is there for tests."""
        self.sent.append(event)
        if self.script is None:
            return defer.succeed(None)
        result: defer.Deferred[int | None] = defer.Deferred()
        nextTurn: defer.Deferred[None] = defer.Deferred()

        def letNextGo(_: object = None) -> None:
            if not nextTurn.called:
                nextTurn.callback(None)

        def start(_: object) -> None:
            ended = self._run(event)
            timer = self.reactor.callLater(self.ORDER_WAIT, letNextGo)

            def done(status: int | None) -> None:
                if timer.active():
                    timer.cancel()
                letNextGo()
                result.callback(status)

            ended.addCallback(done)

        self._turn.addCallback(start)
        self._turn = nextTurn
        return result

    def _run(self, event: str) -> defer.Deferred[int | None]:
        """Run the script once; fires when it ended (None: not run)."""
        script = self.script
        assert script is not None
        try:
            mode = os.stat(script).st_mode
        except OSError:
            self.log.error(
                "Could not stat notification script {script}. "
                "Can not send notifications.",
                script=script,
            )
            return defer.succeed(None)
        if not mode & stat.S_IXUSR:
            self.log.error(
                "Notification script {script} is not executable.", script=script
            )
            return defer.succeed(None)
        process = _NotificationProcess(f"{script} {event}")
        try:
            # env=None: the script gets the daemon's environment, as
            # system() gives it in ctdbd's child
            self.reactor.spawnProcess(
                process,
                script,
                [script, event],
                env=None,
                childFDs={0: "w", 1: "r", 2: "r"},
            )
        except OSError as e:
            self.log.error(
                "Failed to run notification script {script}: {err}",
                script=script,
                err=e,
            )
            return defer.succeed(None)
        return process.ended
