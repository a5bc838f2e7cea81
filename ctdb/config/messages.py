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

    def __post_init__(self) -> None:
        # Configuration files are read with surrogateescape, so that a line
        # that is not UTF-8 can still be reported; a log file (or trial's)
        # cannot encode the lone surrogates, so they become \xNN here.
        object.__setattr__(self, "text", printable(self.text))

    @property
    def debugLevel(self) -> int:
        """C{level} as a number (L{ctdb.protocols.debuglevels})."""
        level = parseDebugLevel(self.level)
        return DEBUG_DEBUG if level is None else level


def printable(text: str) -> str:
    """C{text} with the bytes that were not UTF-8 (read with
    surrogateescape) shown as C{\\xNN}, so that any log can write it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
        return raw.decode("utf-8", "backslashreplace")
    return text
