# -*- test-case-name: tests.events.test_notify -*-
"""
Tests for L{ctdb.events.notify}: the notification script, run for real
(on the global reactor) from a temporary directory; and what a node tells
it (unit tests on a fake event runner).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

from twisted.internet import reactor
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import TestCase

from ctdb.events.notify import NOTIFY_EVENTS, Notifier
from ctdb.interfaces import ICTDBReactor
from tests.events._fakes import EventClusterTestCase

REACTOR: ICTDBReactor = reactor  # type: ignore[assignment]

#: Samba's notify.sh as the Debian package installs it, if it does
SAMBA_NOTIFY = "/etc/ctdb/notify.sh"


class NotifierTests(TestCase):
    """A real script, run with the event as its only argument."""

    def setUp(self) -> None:
        self.base = tempfile.mkdtemp(prefix="txctdb-notify-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.out = os.path.join(self.base, "out")

    def script(self, body: str, mode: int = 0o755, name: str = "notify.sh") -> str:
        path = os.path.join(self.base, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, mode)
        return path

    def pid(self, path: str) -> int:
        with open(path) as f:
            return int(f.read())

    def output(self) -> str:
        with open(self.out) as f:
            return f.read()

    async def test_runsWithEvent(self) -> None:
        """The script gets the event as its one argument and the daemon's
        environment; its status is 0."""
        path = self.script(f'echo "$# $1 ${{PATH:+path}}" >> {self.out}\n')
        notifier = Notifier(path, reactor=REACTOR)
        for event in NOTIFY_EVENTS:
            self.assertEqual(await notifier.notify(event), 0)
        self.assertEqual(
            self.output().splitlines(), [f"1 {e} path" for e in NOTIFY_EVENTS]
        )
        self.assertEqual(notifier.sent, list(NOTIFY_EVENTS))

    async def test_inOrder(self) -> None:
        """Notifications close together reach the script in order: each
        starts once the one before ended."""
        path = self.script(f'[ "$1" = init ] && sleep 0.3\necho "$1" >> {self.out}\n')
        notifier = Notifier(path, reactor=REACTOR)
        first, second = notifier.notify("init"), notifier.notify("setup")
        self.assertEqual(await second, 0)
        self.assertEqual(await first, 0)
        self.assertEqual(self.output(), "init\nsetup\n")

    async def test_hungHoldsBriefly(self) -> None:
        """One that does not end holds the next one up for ORDER_WAIT
        seconds only."""
        pidfile = os.path.join(self.base, "pid")
        path = self.script(
            f'echo "$1" >> {self.out}\n'
            f'[ "$1" = init ] && echo $$ > {pidfile} && exec sleep 30\n'
            "exit 0\n"
        )
        notifier = Notifier(path, reactor=REACTOR)
        notifier.ORDER_WAIT = 0.2
        hung = notifier.notify("init")
        self.assertEqual(await notifier.notify("setup"), 0)
        self.assertEqual(self.output(), "init\nsetup\n")
        self.assertNoResult(hung)
        os.kill(self.pid(pidfile), signal.SIGKILL)
        self.assertEqual(await hung, -1)

    async def test_failure(self) -> None:
        """A script that exits non-zero is logged with its status; its
        output goes to the log."""
        path = self.script("echo something went wrong\nexit 3\n")
        notifier = Notifier(path, reactor=REACTOR)
        with capturedLogs() as events:
            status = await notifier.notify("unhealthy")
        self.assertEqual(status, 3)
        texts = [(e["log_level"], e["log_format"], e) for e in events]
        self.assertTrue(
            any(
                level == LogLevel.error
                and "failed with error" in fmt
                and e["status"] == 3
                and e["command"] == f"{path} unhealthy"
                for level, fmt, e in texts
            ),
            texts,
        )
        self.assertTrue(
            any(e.get("line") == "something went wrong" for _, _, e in texts)
        )
        self.flushLoggedErrors()

    async def test_stdinClosed(self) -> None:
        """A script that reads its standard input sees it closed."""
        path = self.script(f"cat > {self.out}\n")
        self.assertEqual(await Notifier(path, reactor=REACTOR).notify("setup"), 0)
        self.assertEqual(self.output(), "")

    async def test_missing(self) -> None:
        """A missing script is logged and not run."""
        notifier = Notifier(os.path.join(self.base, "nope.sh"), reactor=REACTOR)
        with capturedLogs() as events:
            self.assertIsNone(await notifier.notify("init"))
        self.assertTrue(
            any("Could not stat" in e["log_format"] for e in events), events
        )
        self.assertEqual(notifier.sent, ["init"])

    async def test_notExecutable(self) -> None:
        """A script that is not executable is logged and not run."""
        path = self.script(f"echo ran > {self.out}\n", mode=0o644)
        with capturedLogs() as events:
            self.assertIsNone(await Notifier(path, reactor=REACTOR).notify("init"))
        self.assertTrue(
            any("not executable" in e["log_format"] for e in events), events
        )
        self.assertFalse(os.path.exists(self.out))

    async def test_none(self) -> None:
        """Without a script, notifications are only recorded."""
        notifier = Notifier(None, reactor=REACTOR)
        self.assertIsNone(await notifier.notify("healthy"))
        self.assertEqual(notifier.sent, ["healthy"])

    async def test_sambaNotifySh(self) -> None:
        """Samba's notify.sh (as Debian installs it) runs each executable
        events/notification/*.script beside it with the event."""
        self.assertTrue(
            os.path.exists(SAMBA_NOTIFY),
            f"{SAMBA_NOTIFY} is not installed (Debian package ctdb; make install)",
        )
        path = os.path.join(self.base, "notify.sh")
        shutil.copy(SAMBA_NOTIFY, path)
        os.chmod(path, 0o755)
        for name, mode in (("10.a.script", 0o755), ("20.b.script", 0o644)):
            self.script(
                f"echo {name} $1 >> {self.out}\n",
                mode,
                os.path.join("events", "notification", name),
            )
        self.assertEqual(await Notifier(path, reactor=REACTOR).notify("startup"), 0)
        self.assertEqual(self.output(), "10.a.script startup\n")


class NodeNotificationTests(EventClusterTestCase):
    """What a node tells its notification script, and when."""

    def test_healthChanges(self) -> None:
        """init, setup and startup once each as they succeed, then healthy
        and unhealthy at each change of health, nothing while it stays."""
        self.makeCluster(n=2)
        self.settle()
        runner = self.runners[1]
        notifier = self.health(1).notifier
        assert notifier is not None
        self.assertEqual(notifier.sent, ["init", "setup", "startup", "healthy"])
        runner.results["monitor"] = 1
        self.until(lambda: self.unhealthyEverywhere(1))
        done = len(runner.times("monitor"))
        self.until(lambda: len(runner.times("monitor")) >= done + 2)
        self.assertEqual(notifier.sent[4:], ["unhealthy"])
        runner.results["monitor"] = 0
        self.until(lambda: self.healthyEverywhere(1))
        self.assertEqual(notifier.sent[4:], ["unhealthy", "healthy"])
        self.assertIs(notifier, self.lifecycle(1).notifier)
