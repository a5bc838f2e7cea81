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
from twisted.internet.interfaces import IReactorProcess
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

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

    @ivar sent: every event notified, in order (whether the script ran).
    """

    log = Logger()

    def __init__(self, script: str | None, *, reactor: IReactorProcess) -> None:
        self.script = script
        self.reactor = reactor
        self.sent: list[str] = []

    def notify(self, event: str) -> defer.Deferred[int | None]:
        """Run the script with C{event}.  Nothing waits for it; the result
        (its exit status, or None when it could not be run) is there for
        tests."""
        self.sent.append(event)
        script = self.script
        if script is None:
            return defer.succeed(None)
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
