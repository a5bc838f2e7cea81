# -*- test-case-name: tests.test_logfilter, tests.protocols.test_debuglevels -*-
"""
The node's log: Samba debug levels (L{ctdb.protocols.debuglevels}) as
Twisted log levels, the level filter that C{SET_DEBUG} changes, and the two
formats of the log file (C{--log-format text|json}; docs/LOGGING.md).

 - L{twistedLevel}: the one mapping the daemon's log filter, ctdbd's
   start-up messages and the Samba test helper programs share;
 - L{DebugLevelFilter}: shows an event at the node's debug level, and
   counts Twisted's own connection chatter as DEBUG;
 - L{ctdbLevelName}: the name of ctdbd's level an event is shown at;
 - L{formatEventAsJSON} and L{jsonLogObserver}: one JSON object per line;
 - L{nodeLogObserver}: the node's file observer in either format.

Kept apart from the level table because the table is pure and this needs
C{twisted.logger}.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import IO, Any, cast

from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    LogEvent,
    LogLevel,
    PredicateResult,
    formatEvent,
    formatEventAsClassicLogText,
)
from zope.interface import implementer

from ctdb.interfaces import ILogLevelObserver
from ctdb.protocols.debuglevels import (
    DEBUG_DEBUG,
    DEBUG_ERR,
    DEBUG_NOTICE,
    DEBUG_WARNING,
    debugLevelName,
)

#: the values of C{--log-format} and ctdb.conf's C{[logging] format}
LOG_FORMATS = ("text", "json")


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


#: Twisted's own info-level lines about connections coming and going: a
#: factory started or stopped for every connection attempt, and
#: ClientService's retry every second while a peer is down.  Shown at
#: DEBUG only, so that a dead node's link does not bury the failover.
_CHATTER = frozenset(
    {
        "Starting factory {factory!r}",
        "Stopping factory {factory!r}",
        "Scheduling retry {attempt} to connect {endpoint} in {delay} seconds.",
    }
)


#: Twisted's levels, lowest first (LogLevel constants have no order of
#: their own)
_PRIORITY = {level: n for n, level in enumerate(LogLevel.iterconstants())}


def eventLevel(event: LogEvent) -> LogLevel:
    """The Twisted level C{event} is shown at: its own, but DEBUG for
    Twisted's connection chatter (L{_CHATTER})."""
    if event.get("log_format") in _CHATTER:
        return LogLevel.debug
    level = event.get("log_level")
    return cast(LogLevel, level) if level in _PRIORITY else LogLevel.info


def _debugLevel(level: LogLevel) -> int:
    """The Samba debug level a Twisted level is shown from."""
    if _PRIORITY[level] >= _PRIORITY[LogLevel.error]:
        return DEBUG_ERR
    if level == LogLevel.warn:
        return DEBUG_WARNING
    if level == LogLevel.info:
        return DEBUG_NOTICE
    return DEBUG_DEBUG


def ctdbLevelName(event: LogEvent) -> str:
    """ctdbd's name for the level C{event} is shown at: ERROR, WARNING,
    NOTICE (Twisted's info: ctdbd's NOTICE and INFO both map to it) or
    DEBUG."""
    return debugLevelName(_debugLevel(eventLevel(event)))


@implementer(ILogFilterPredicate, ILogLevelObserver)
class DebugLevelFilter:
    """
    Shows the events of the node's debug level (C{SET_DEBUG} changes it at
    once, through L{ILogLevelObserver}): an event passes if its level
    (L{eventLevel}) is at least L{twistedLevel} of the debug level.
    """

    def __init__(self, level: int) -> None:
        self.level = level
        self._threshold = _PRIORITY[twistedLevel(level)]

    def logLevelChanged(self, level: int) -> None:
        self.level = level
        self._threshold = _PRIORITY[twistedLevel(level)]

    def __call__(self, event: LogEvent) -> PredicateResult:
        if _PRIORITY[eventLevel(event)] >= self._threshold:
            return PredicateResult.maybe
        return PredicateResult.no


# -- JSON --------------------------------------------------------------------

#: keys of an event that are not its fields: Twisted's own (every key that
#: starts with "log_" is also left out) and those the bridge from the
#: legacy twisted.python.log API adds
_NOT_FIELDS = frozenset(
    {"message", "format", "system", "isError", "why", "failure", "time", "printed"}
)


def _jsonValue(value: object, depth: int = 0) -> Any:
    """C{value} as JSON can carry it: numbers, strings, booleans and None
    as they are (a float that is not finite as its text), bytes decoded
    (bad bytes as \\xNN), sequences and mappings item by item, anything
    else as its C{str}."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if depth < 4:
        if isinstance(value, Mapping):
            return {str(k): _jsonValue(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [_jsonValue(v, depth + 1) for v in value]
    return str(value)


def _subsystem(namespace: str) -> str:
    """The part of txctdb (or the library) a namespace belongs to:
    C{ctdb.recovery.service.RecoveryService} -> C{recovery}."""
    parts = namespace.split(".")
    if parts[0] == "ctdb" and len(parts) > 1:
        return parts[1]
    return parts[0]


def eventFields(event: LogEvent) -> dict[str, Any]:
    """The structured fields of C{event}, as JSON values: every key that
    is not Twisted's (C{log_*}) nor the legacy bridge's, and not C{node}
    (the JSON object's own key)."""
    return {
        key: _jsonValue(value)
        for key, value in event.items()
        if not key.startswith("log_") and key not in _NOT_FIELDS and key != "node"
    }


def formatEventAsJSON(event: LogEvent, pnn: int | None = None) -> str:
    """
    C{event} as one line of JSON (no newline inside; the line ends with
    one): C{time} (ISO 8601, UTC, milliseconds), C{level} (ctdbd's level
    name), C{node} (the event's C{node} field, else C{pnn}: the node whose
    log this is), C{subsystem}, C{namespace}, C{message} (the formatted
    text), C{fields} (L{eventFields}) and, for a logged failure,
    C{traceback}.
    """
    when = event.get("log_time")
    stamp = None
    if isinstance(when, (int, float)):
        stamp = datetime.fromtimestamp(when, tz=UTC).isoformat(timespec="milliseconds")
    node = event.get("node")
    namespace = str(event.get("log_namespace", "-"))
    record: dict[str, Any] = {
        "time": stamp,
        "level": ctdbLevelName(event),
        "node": node if isinstance(node, int) else pnn,
        "subsystem": _subsystem(namespace),
        "namespace": namespace,
        "message": formatEvent(event),
        "fields": eventFields(event),
    }
    failure = event.get("log_failure")
    if failure is not None:
        try:
            record["traceback"] = failure.getTraceback()
        except Exception:  # noqa: BLE001 - a broken failure still logs its line
            record["traceback"] = str(failure)
    return json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"


def jsonLogObserver(stream: IO[str], pnn: int | None = None) -> ILogObserver:
    """An observer that writes L{formatEventAsJSON} lines to C{stream}.

    Twisted's own jsonFileLogObserver is not used: it writes a record
    separator (0x1E) before every object, which line-by-line JSON readers
    refuse, and every key of the event, objects included."""
    return FileLogObserver(stream, lambda event: formatEventAsJSON(event, pnn))


def nodeLogObserver(
    stream: IO[str],
    logFormat: str,
    levelFilter: DebugLevelFilter,
    pnn: int | None = None,
) -> ILogObserver:
    """
    The observer of a node's log file: C{text} (Twisted's classic lines,
    as ever) or C{json} (L{jsonLogObserver}), behind C{levelFilter}.

    @raise ValueError: C{logFormat} is neither.
    """
    formatter: Callable[[LogEvent], str | None]
    if logFormat == "text":
        formatter = formatEventAsClassicLogText
    elif logFormat == "json":

        def formatter(event: LogEvent) -> str:
            return formatEventAsJSON(event, pnn)

    else:
        raise ValueError(f"unknown log format {logFormat!r} (one of text, json)")
    return FilteringLogObserver(FileLogObserver(stream, formatter), [levelFilter])
