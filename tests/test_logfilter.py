# -*- test-case-name: tests.test_logfilter -*-
"""
Tests for L{ctdb.logfilter}: the node's level filter (ctdbd's debug levels
over Twisted's, Twisted's connection chatter at DEBUG), ctdbd's level names,
the JSON format (one parseable object per line, its keys and fields), the
file observer of either format, and the plumbing of C{--log-format}
(C{twistd ctdb}), ctdb.conf's C{[logging] format} and C{ctdb-cluster setup
--log-format}.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import (
    ILogObserver,
    LogEvent,
    Logger,
    LogLevel,
    LogPublisher,
    PredicateResult,
    globalLogPublisher,
)
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from ctdb import tap
from ctdb.cluster import LocalCluster
from ctdb.cluster import main as clusterMain
from ctdb.config import CTDBPaths, parseConfig
from ctdb.errors import ConfigError, ConfigLoadError
from ctdb.logfilter import (
    DebugLevelFilter,
    ctdbLevelName,
    eventFields,
    formatEventAsJSON,
    jsonLogObserver,
    nodeLogObserver,
)
from ctdb.nodes import parseNodes
from ctdb.protocols.debuglevels import (
    DEBUG_DEBUG,
    DEBUG_ERR,
    DEBUG_INFO,
    DEBUG_NOTICE,
    DEBUG_WARNING,
)
from ctdb.service import CTDBNode, NodeConfig, buildNode

#: 2026-12-06T06:11:48.25Z
WHEN = 1796537508.25

#: twisted.logger's levels, the most severe first
LEVELS_DOWN = (
    LogLevel.critical,
    LogLevel.error,
    LogLevel.warn,
    LogLevel.info,
    LogLevel.debug,
)


def event(level: LogLevel = LogLevel.info, **fields: Any) -> LogEvent:
    """A log event as Logger.emit makes one (namespace ctdb.recovery.x)."""
    e: LogEvent = {
        "log_level": level,
        "log_format": "a line",
        "log_namespace": "ctdb.recovery.x",
        "log_time": WHEN,
        "log_source": None,
    }
    e.update(fields)
    return e


def chatter() -> LogEvent:
    """Twisted's "Starting factory" line, as Factory.doStart logs it."""
    return event(
        log_format="Starting factory {factory!r}",
        log_namespace="ctdb.transports.tcp._OutFactory",
        factory=object(),
    )


def tempDirectory(case: SynchronousTestCase) -> Path:
    """A fresh directory outside the checkout, removed after the test."""
    directory = tempfile.mkdtemp(prefix="txctdb-test-")
    case.addCleanup(shutil.rmtree, directory, True)
    return Path(directory)


class LevelTests(SynchronousTestCase):
    """L{DebugLevelFilter} and L{ctdbLevelName}."""

    def shown(self, level: int, e: LogEvent) -> bool:
        return DebugLevelFilter(level)(e) != PredicateResult.no

    def test_notice(self) -> None:
        """At NOTICE (ctdbd's default) info and above show, debug does not."""
        shown = [self.shown(DEBUG_NOTICE, event(level)) for level in LEVELS_DOWN]
        self.assertEqual(shown, [True, True, True, True, False])

    def test_eachLevel(self) -> None:
        """Each of ctdbd's levels shows what twistedLevel says it does."""
        table = {
            DEBUG_ERR: [True, False, False, False],
            DEBUG_WARNING: [True, True, False, False],
            DEBUG_NOTICE: [True, True, True, False],
            DEBUG_INFO: [True, True, True, False],
            DEBUG_DEBUG: [True, True, True, True],
        }
        levels = (LogLevel.error, LogLevel.warn, LogLevel.info, LogLevel.debug)
        for debugLevel, expected in table.items():
            self.assertEqual(
                [self.shown(debugLevel, event(level)) for level in levels],
                expected,
                f"debug level {debugLevel}",
            )

    def test_changed(self) -> None:
        """SET_DEBUG (logLevelChanged) moves the threshold at once."""
        f = DebugLevelFilter(DEBUG_NOTICE)
        self.assertEqual(f(event(LogLevel.debug)), PredicateResult.no)
        f.logLevelChanged(DEBUG_DEBUG)
        self.assertEqual(f.level, DEBUG_DEBUG)
        self.assertEqual(f(event(LogLevel.debug)), PredicateResult.maybe)
        f.logLevelChanged(DEBUG_ERR)
        self.assertEqual(f(event(LogLevel.warn)), PredicateResult.no)
        self.assertEqual(f(event(LogLevel.error)), PredicateResult.maybe)

    def test_chatter(self) -> None:
        """Twisted's factory start/stop and ClientService retry lines show
        at DEBUG only; the same level with another format shows."""
        retry = event(
            log_format=(
                "Scheduling retry {attempt} to connect {endpoint} in {delay} seconds."
            ),
            log_namespace="twisted.application._client_service.ClientService",
            attempt=3,
            endpoint="e",
            delay=1.0,
        )
        stopping = event(log_format="Stopping factory {factory!r}", factory=1)
        for e in (chatter(), retry, stopping):
            self.assertFalse(self.shown(DEBUG_NOTICE, e))
            self.assertTrue(self.shown(DEBUG_DEBUG, e))
            self.assertEqual(ctdbLevelName(e), "DEBUG")
        self.assertTrue(self.shown(DEBUG_NOTICE, event(log_format="Starting")))

    def test_names(self) -> None:
        """ctdbd's names: critical and error are ERROR, warn WARNING, info
        NOTICE, debug DEBUG; an event without a level is NOTICE."""
        names = [ctdbLevelName(event(level)) for level in LEVELS_DOWN]
        self.assertEqual(names, ["ERROR", "ERROR", "WARNING", "NOTICE", "DEBUG"])
        self.assertEqual(ctdbLevelName({"log_format": "x"}), "NOTICE")


class JSONTests(SynchronousTestCase):
    """L{formatEventAsJSON}: one object per line."""

    def record(self, e: LogEvent, pnn: int | None = 1) -> dict[str, Any]:
        line = formatEventAsJSON(e, pnn)
        self.assertTrue(line.endswith("\n"))
        self.assertNotIn("\n", line[:-1])
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    def test_keys(self) -> None:
        """time, level, node, subsystem, namespace, message and fields, in
        that order; the message is the formatted text."""
        r = self.record(
            event(
                log_format="Recovery complete, generation 0x{generation:08x}",
                generation=0x1AE03B0F,
                duration=0.25,
            )
        )
        self.assertEqual(
            list(r),
            ["time", "level", "node", "subsystem", "namespace", "message", "fields"],
        )
        self.assertEqual(r["message"], "Recovery complete, generation 0x1ae03b0f")
        self.assertEqual(r["level"], "NOTICE")
        self.assertEqual(r["node"], 1)
        self.assertEqual(r["subsystem"], "recovery")
        self.assertEqual(r["namespace"], "ctdb.recovery.x")
        self.assertEqual(r["fields"], {"generation": 0x1AE03B0F, "duration": 0.25})

    def test_time(self) -> None:
        """ISO 8601 in UTC with milliseconds and its offset."""
        r = self.record(event())
        self.assertEqual(r["time"], "2026-12-06T06:11:48.250+00:00")
        parsed = datetime.fromisoformat(r["time"])
        self.assertEqual(parsed.utcoffset(), timedelta(0))
        self.assertEqual(parsed.timestamp(), WHEN)
        del_time = event()
        del del_time["log_time"]
        self.assertIsNone(self.record(del_time)["time"])

    def test_node(self) -> None:
        """The event's own node field names the node (a process with
        several nodes); otherwise the node the log belongs to; the field is
        not repeated under fields."""
        r = self.record(event(node=2, pnn=0), pnn=1)
        self.assertEqual((r["node"], r["fields"]), (2, {"pnn": 0}))
        self.assertEqual(self.record(event(), pnn=None)["node"], None)
        self.assertEqual(self.record(event(node="x"), pnn=1)["node"], 1)

    def test_subsystem(self) -> None:
        """The package under ctdb, else the top-level name."""
        for namespace, subsystem in (
            ("ctdb.daemon.core.Daemon", "daemon"),
            ("ctdb.takeover.leader.TakeoverRunner", "takeover"),
            ("ctdbd", "ctdbd"),
            ("twisted.application._client_service.ClientService", "twisted"),
            ("ctdb", "ctdb"),
        ):
            r = self.record(event(log_namespace=namespace))
            self.assertEqual(r["subsystem"], subsystem, namespace)

    def test_values(self) -> None:
        """Fields JSON cannot carry as they are: bytes decoded (bad bytes as
        \\xNN), sets and tuples as lists, nested mappings item by item,
        floats that are not finite and other objects as text; a deep
        nesting ends in text."""

        class Thing:
            def __str__(self) -> str:
                return "a thing"

        deep: Any = [1]
        for _ in range(6):
            deep = [deep]
        r = self.record(
            event(
                raw=b"ab\xff",
                pnns=(1, 2),
                ids=frozenset({3}),
                nested={1: {"x": b"y"}},
                inf=math.inf,
                nan=math.nan,
                thing=Thing(),
                flag=True,
                none=None,
                deep=deep,
            )
        )
        fields = r["fields"]
        self.assertEqual(fields["raw"], "ab\\xff")
        self.assertEqual(fields["pnns"], [1, 2])
        self.assertEqual(fields["ids"], [3])
        self.assertEqual(fields["nested"], {"1": {"x": "y"}})
        self.assertEqual((fields["inf"], fields["nan"]), ("inf", "nan"))
        self.assertEqual(fields["thing"], "a thing")
        self.assertEqual((fields["flag"], fields["none"]), (True, None))
        self.assertEqual(fields["deep"], [[[["[[[1]]]"]]]])

    def test_newlines(self) -> None:
        """A message or field with newlines stays on one line."""
        r = self.record(event(log_format="two\nlines {x}", x="a\nb"))
        self.assertEqual(r["message"], "two\nlines a\nb")

    def test_failure(self) -> None:
        """A logged failure: its traceback under traceback; the failure
        object is not a field."""
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            f = Failure()
        r = self.record(event(LogLevel.critical, log_failure=f, log_format="it broke"))
        self.assertEqual(r["level"], "ERROR")
        self.assertIn("ZeroDivisionError", r["traceback"])
        self.assertEqual(r["fields"], {})

    def test_badFormat(self) -> None:
        """A format its fields cannot fill still makes a line."""
        r = self.record(event(log_format="{missing}"))
        self.assertIn("Unable to format event", r["message"])

    def test_legacy(self) -> None:
        """An event of the legacy log API (log.msg) through the bridge: its
        text is the message; the bridge's keys are not fields."""
        publisher = LogPublisher()
        seen: list[LogEvent] = []
        publisher.addObserver(cast(ILogObserver, seen.append))
        from twisted.python import log as legacy

        legacyPublisher = legacy.LogPublisher(publisher, publisher)
        legacyPublisher.msg("NodeServerFactory starting on", 4379, extra=7)
        r = self.record(seen[0])
        self.assertEqual(r["message"], "NodeServerFactory starting on 4379")
        self.assertEqual(r["fields"], {"extra": 7})

    def test_fields(self) -> None:
        """eventFields: not Twisted's keys, not node."""
        self.assertEqual(
            eventFields(event(node=1, step="node-dead", pnn=2)),
            {"step": "node-dead", "pnn": 2},
        )


class ObserverTests(SynchronousTestCase):
    """L{nodeLogObserver} and L{jsonLogObserver} writing a stream."""

    def test_json(self) -> None:
        """Each shown event is one JSON line; the filter applies."""
        out = io.StringIO()
        f = DebugLevelFilter(DEBUG_NOTICE)
        observer = nodeLogObserver(out, "json", f, pnn=3)
        observer(event(log_format="one {x}", x=1))
        observer(event(LogLevel.debug, log_format="hidden"))
        observer(chatter())
        observer(event(LogLevel.error, log_format="two"))
        records = [json.loads(line) for line in out.getvalue().splitlines()]
        self.assertEqual(
            [(r["message"], r["level"], r["node"]) for r in records],
            [("one 1", "NOTICE", 3), ("two", "ERROR", 3)],
        )

    def test_text(self) -> None:
        """The text format is Twisted's classic line, as before."""
        out = io.StringIO()
        observer = nodeLogObserver(out, "text", DebugLevelFilter(DEBUG_NOTICE))
        observer(event(log_format="one {x}", x=1, log_time=0.0))
        observer(chatter())
        line = out.getvalue()
        self.assertEqual(line.count("\n"), 1)
        self.assertTrue(line.endswith(" [ctdb.recovery.x#info] one 1\n"), line)

    def test_unknown(self) -> None:
        """A format that is neither is refused."""
        self.assertRaises(
            ValueError, nodeLogObserver, io.StringIO(), "xml", DebugLevelFilter(3)
        )

    def test_jsonLogObserver(self) -> None:
        """The unfiltered JSON observer (ctdbd -i with format = json)."""
        out = io.StringIO()
        jsonLogObserver(out)(event(LogLevel.debug, log_format="d"))
        self.assertEqual(json.loads(out.getvalue())["level"], "DEBUG")

    def test_logger(self) -> None:
        """Through a real Logger: the fields given to log.info arrive."""
        out = io.StringIO()
        publisher = LogPublisher()
        publisher.addObserver(
            nodeLogObserver(out, "json", DebugLevelFilter(DEBUG_NOTICE), pnn=0)
        )
        log = Logger(namespace="ctdb.daemon.core.Daemon", observer=publisher)
        log.info(
            "{our}: node {peer} is dead",
            our=0,
            peer="127.0.0.2",
            step="node-dead",
            node=0,
            pnn=1,
            silence=2.5,
        )
        r = json.loads(out.getvalue())
        self.assertEqual(r["message"], "0: node 127.0.0.2 is dead")
        self.assertEqual(r["subsystem"], "daemon")
        self.assertEqual(
            r["fields"],
            {
                "our": 0,
                "peer": "127.0.0.2",
                "step": "node-dead",
                "pnn": 1,
                "silence": 2.5,
            },
        )


class PlumbingTests(SynchronousTestCase):
    """The format from each entry point to the node's log file."""

    def setUp(self) -> None:
        self.tmp = tempDirectory(self)
        (self.tmp / "nodes").write_text("127.0.0.1\n127.0.0.2\n")

    def options(self, *extra: str) -> tap.Options:
        options = tap.Options()
        options.parseOptions(
            [
                "--nodes",
                str(self.tmp / "nodes"),
                "--socket",
                str(self.tmp / "run" / "ctdbd.socket"),
                "--port",
                "4999",
                *extra,
            ]
        )
        return options

    def test_tapDefault(self) -> None:
        """twistd ctdb writes text unless told otherwise."""
        self.assertEqual(self.options()["log-format"], "text")

    def test_tapRefuses(self) -> None:
        """--log-format takes text or json only."""
        e = self.assertRaises(usage.UsageError, self.options, "--log-format", "xml")
        self.assertEqual(str(e), "--log-format is one of text, json, not 'xml'")

    def test_tapJSONFile(self) -> None:
        """twistd ctdb --log-file F --log-format json: the node's lines in F
        are JSON objects naming the node."""
        path = self.tmp / "log.ctdb"
        options = self.options(
            "--address", "127.0.0.2", "--log-file", str(path), "--log-format", "json"
        )
        node = tap.makeService(options, MemoryReactorClock())
        assert isinstance(node, CTDBNode)
        assert node.logObserver is not None
        self.addCleanup(globalLogPublisher.removeObserver, node.logObserver)
        Logger(namespace="ctdb.test").info("hello {who}", who="admin", step="x")
        Logger(namespace="ctdb.test").debug("not at NOTICE")
        records = [json.loads(line) for line in path.read_text().splitlines()]
        self.assertEqual(
            [(r["message"], r["node"], r["fields"]) for r in records],
            [("hello admin", 1, {"who": "admin", "step": "x"})],
        )

    def test_buildNodeRefuses(self) -> None:
        """buildNode refuses a format it does not know."""
        config = NodeConfig(
            nodeMap=parseNodes("127.0.0.1\n"),
            pnn=0,
            memoryStores=True,
            withClientSocket=False,
            logFormat="yaml",
        )
        e = self.assertRaises(
            ConfigError, buildNode, config, reactor=MemoryReactorClock()
        )
        self.assertIn("invalid log format 'yaml'", str(e))

    def test_ctdbConf(self) -> None:
        """ctdb.conf [logging] format: text by default, json when set, and
        anything else refused with ctdbd's message for a bad value."""
        base = self.tmp / "base"
        for sub in ("volatile", "persistent", "state"):
            (base / "db" / sub).mkdir(parents=True)
        paths = CTDBPaths.fromEnvironment(
            {"CTDB_BASE": str(base), "CTDB_TEST_MODE": "yes"}
        )
        self.assertEqual(parseConfig("", paths).logFormat, "text")
        config = parseConfig("[logging]\n\tformat = json\n", paths)
        self.assertEqual(config.logFormat, "json")
        e = self.assertRaises(
            ConfigLoadError, parseConfig, "[logging]\n\tformat = xml\n", paths
        )
        self.assertEqual(
            [m.text for m in e.messages],
            [
                "Invalid value for [logging] -> format = xml",
                'conf: validation for option "format" failed',
            ],
        )

    def test_cluster(self) -> None:
        """ctdb-cluster setup --log-format json: every node is started with
        --log-format json; a cluster set up without it writes text."""
        directory = str(self.tmp / "c")
        code = clusterMain(
            ["--dir", directory, "setup", "--nodes", "2", "--base", "127.100.0.1"]
            + ["--log-format", "json"]
        )
        self.assertEqual(code, 0)
        self.assertEqual(LocalCluster(directory)._config()["logFormat"], "json")
        plain = LocalCluster(str(self.tmp / "p"))
        plain.setup(1, base="127.100.1.1")
        self.assertEqual(plain._config()["logFormat"], "text")
        self.assertTrue(os.path.isdir(LocalCluster(directory).nodeDir(1)))
