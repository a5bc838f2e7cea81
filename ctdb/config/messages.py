# -*- test-case-name: tests.test_config -*-
"""
What reading ctdbd's configuration has to say: L{Message}s, each with the
level and the text ctdbd would log.  Nothing here logs: the readers return
them, so that C{ctdbd} can print them before its logging is set up.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctdb.protocols.debuglevels import (
    DEBUG_DEBUG,
    DEBUG_ERR,
    DEBUG_NOTICE,
    DEBUG_WARNING,
    debugLevelName,
    parseDebugLevel,
)

#: the levels of L{Message}s, by name
ERR = debugLevelName(DEBUG_ERR)
WARNING = debugLevelName(DEBUG_WARNING)
NOTICE = debugLevelName(DEBUG_NOTICE)
DEBUG = debugLevelName(DEBUG_DEBUG)


@dataclass(frozen=True, slots=True)
class Message:
    """One line ctdbd would log while reading its configuration."""

    level: str
    text: str

    @property
    def debugLevel(self) -> int:
        """C{level} as a number (L{ctdb.protocols.debuglevels})."""
        level = parseDebugLevel(self.level)
        return DEBUG_DEBUG if level is None else level
