# -*- test-case-name: tests.protocols.test_debuglevels -*-
"""
Samba's debug levels (``lib/util/debug.h`` C{DBGLVL_*}) and ctdb's names
for them (``ctdb/common/logging.c``): the numbers GET_DEBUG and SET_DEBUG
carry, the names C{ctdb getdebug} prints, C{ctdb setdebug}, C{ctdbd
--debug}, the C{[logging] log level} of ctdb.conf and C{CTDB_DEBUGLEVEL}
accept.  Every txctdb user of the table imports it from here.

Pure: no I/O, no Twisted import.  What Twisted level a debug level shows
is L{ctdb.logfilter.twistedLevel}.
"""

from __future__ import annotations

DEBUG_ERR = 0
DEBUG_WARNING = 1
DEBUG_NOTICE = 3
DEBUG_INFO = 5
DEBUG_DEBUG = 10

#: The named levels, lowest first: name -> level.
DEBUG_LEVELS = {
    "ERROR": DEBUG_ERR,
    "WARNING": DEBUG_WARNING,
    "NOTICE": DEBUG_NOTICE,
    "INFO": DEBUG_INFO,
    "DEBUG": DEBUG_DEBUG,
}

#: C{log_string_map}: every level ctdb accepts, 0 to 10, with its name (a
#: level between two named ones has the name of the lower).
LOG_STRING_MAP: tuple[tuple[int, str], ...] = tuple(
    (level, max((v, n) for n, v in DEBUG_LEVELS.items() if v <= level)[1])
    for level in range(DEBUG_ERR, DEBUG_DEBUG + 1)
)

_DIGITS = "0123456789"


def parseDebugLevel(text: str) -> int | None:
    """
    C{debug_level_parse}: a number 0-10 (C{atoi} of a string that starts
    with a digit), or the level of the first name that C{text} is a
    case-insensitive prefix of (so C{""} is ERROR).

    @return: the level, or C{None} if C{text} names none.
    """
    if text[:1] and text[0] in _DIGITS:
        end = 1
        while end < len(text) and text[end] in _DIGITS:
            end += 1
        level = int(text[:end])
        return level if level < len(LOG_STRING_MAP) else None
    wanted = text.lower()
    for level, name in LOG_STRING_MAP:
        if name.lower().startswith(wanted):
            return level
    return None


def debugLevelName(level: int) -> str:
    """C{debug_level_to_string}: the name ctdb prints for C{level}, or
    C{"UNKNOWN"} outside 0-10."""
    if DEBUG_ERR <= level < len(LOG_STRING_MAP):
        return LOG_STRING_MAP[level][1]
    return "UNKNOWN"
