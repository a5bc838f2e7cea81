# -*- test-case-name: tests.protocols.test_debuglevels -*-
"""
Samba debug levels (L{ctdb.protocols.debuglevels}) as Twisted log levels:
the one mapping the daemon's log filter, ctdbd's start-up messages and the
Samba test helper programs share.  Kept apart from the table because the
table is pure and this needs C{twisted.logger}.
"""

from __future__ import annotations

from twisted.logger import LogLevel

from ctdb.protocols.debuglevels import DEBUG_DEBUG, DEBUG_ERR, DEBUG_NOTICE


def twistedLevel(level: int) -> LogLevel:
    """
    The Twisted level of Samba debug level C{level}: ERROR -> error,
    WARNING -> warn, NOTICE and INFO -> info, DEBUG -> debug.  As a filter's
    threshold, it is the lowest Twisted level shown at C{level}.
    """
    if level <= DEBUG_ERR:
        return LogLevel.error
    if level < DEBUG_NOTICE:
        return LogLevel.warn
    if level < DEBUG_DEBUG:
        return LogLevel.info
    return LogLevel.debug
