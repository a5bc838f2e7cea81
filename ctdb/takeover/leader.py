# -*- test-case-name: tests.takeover.test_leader -*-
"""
The leader's takeover run (Samba 4.17's ctdb_takeover_helper, with the
takeover-run bookkeeping of ctdb_recoverd.c's do_takeover_run).  Work in
progress: the run itself lands next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from ctdb.interfaces import ITakeoverRunner

if TYPE_CHECKING:
    from ctdb.daemon.core import Daemon


@implementer(ITakeoverRunner)
class TakeoverRunner:
    """Moves the public addresses when the recovery service asks."""

    log = Logger()

    def __init__(self, daemon: Daemon, *, failoverDisabled: bool = False) -> None:
        self.daemon = daemon
        self.failoverDisabled = failoverDisabled

    def plugInto(self, daemon: Daemon) -> None:
        daemon.setTakeoverRunner(self)

    def takeoverRun(self) -> defer.Deferred[bool]:
        return defer.succeed(True)

    def takeoverRunsDisabled(self) -> bool:
        return False
