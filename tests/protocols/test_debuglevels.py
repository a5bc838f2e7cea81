# -*- test-case-name: tests.protocols.test_debuglevels -*-
"""
Tests for L{ctdb.protocols.debuglevels} (Samba's debug levels and
ctdb/common/logging.c's names for them) and L{ctdb.logfilter} (the Twisted
level each one shows).
"""

from __future__ import annotations

from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from ctdb.logfilter import twistedLevel
from ctdb.protocols.debuglevels import (
    DEBUG_DEBUG,
    DEBUG_ERR,
    DEBUG_INFO,
    DEBUG_LEVELS,
    DEBUG_NOTICE,
    DEBUG_WARNING,
    LOG_STRING_MAP,
    debugLevelName,
    parseDebugLevel,
)


class TableTests(SynchronousTestCase):
    """The numbers and names, as Samba 4.17 has them."""

    def test_levels(self) -> None:
        """DBGLVL_*: ERROR 0, WARNING 1, NOTICE 3, INFO 5, DEBUG 10
        (docs/FACTS.md), named in that order."""
        self.assertEqual(
            (DEBUG_ERR, DEBUG_WARNING, DEBUG_NOTICE, DEBUG_INFO, DEBUG_DEBUG),
            (0, 1, 3, 5, 10),
        )
        self.assertEqual(
            list(DEBUG_LEVELS.items()),
            [("ERROR", 0), ("WARNING", 1), ("NOTICE", 3), ("INFO", 5), ("DEBUG", 10)],
        )

    def test_logStringMap(self) -> None:
        """log_string_map of common/logging.c, row for row."""
        self.assertEqual(
            LOG_STRING_MAP,
            (
                (0, "ERROR"),
                (1, "WARNING"),
                (2, "WARNING"),
                (3, "NOTICE"),
                (4, "NOTICE"),
                (5, "INFO"),
                (6, "INFO"),
                (7, "INFO"),
                (8, "INFO"),
                (9, "INFO"),
                (10, "DEBUG"),
            ),
        )


class ParseTests(SynchronousTestCase):
    """L{parseDebugLevel} is debug_level_parse."""

    def test_names(self) -> None:
        """A name, or any case-insensitive prefix of one, is its lowest
        level; the first name wins, so the empty string is ERROR."""
        cases = {
            "ERROR": 0,
            "ERR": 0,
            "": 0,
            "warning": 1,
            "W": 1,
            "NOTICE": 3,
            "info": 5,
            "deb": 10,
            "DEBUG": 10,
        }
        for text, level in cases.items():
            self.assertEqual((text, parseDebugLevel(text)), (text, level))

    def test_numbers(self) -> None:
        """A string that starts with a digit is atoi()'s number, if it is
        0-10."""
        self.assertEqual(parseDebugLevel("4"), 4)
        self.assertEqual(parseDebugLevel("7"), 7)
        self.assertEqual(parseDebugLevel("10"), 10)
        self.assertEqual(parseDebugLevel("5x"), 5)
        self.assertEqual(parseDebugLevel("010"), 10)
        self.assertIsNone(parseDebugLevel("11"))

    def test_bad(self) -> None:
        """Anything else names no level."""
        for text in ("LOUD", "-1", " 3", "ERRORS", "\u0663"):
            self.assertIsNone(parseDebugLevel(text), text)


class NameTests(SynchronousTestCase):
    """L{debugLevelName} is debug_level_to_string."""

    def test_names(self) -> None:
        """Every level 0-10 prints as its row of log_string_map; the name
        parses back to the lowest level with it."""
        for level, name in LOG_STRING_MAP:
            self.assertEqual(debugLevelName(level), name)
            self.assertEqual(parseDebugLevel(name), DEBUG_LEVELS[name])

    def test_unknown(self) -> None:
        """Outside 0-10 the name is UNKNOWN."""
        self.assertEqual(debugLevelName(-1), "UNKNOWN")
        self.assertEqual(debugLevelName(11), "UNKNOWN")


class TwistedLevelTests(SynchronousTestCase):
    """L{twistedLevel}: what a debug level shows of Twisted's log."""

    def test_levels(self) -> None:
        """ERROR -> error, WARNING (1-2) -> warn, NOTICE and INFO (3-9) ->
        info, DEBUG -> debug."""
        self.assertEqual(
            [twistedLevel(level) for level in range(11)],
            [LogLevel.error]
            + [LogLevel.warn] * 2
            + [LogLevel.info] * 7
            + [LogLevel.debug],
        )
