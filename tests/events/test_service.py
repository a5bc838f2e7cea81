# -*- test-case-name: tests.events.test_service -*-
"""
Tests for L{ctdb.events.service}: the node's event daemon as a service
(the socket, the timeouts ctdbd gives, stopping), how L{buildNode} builds
it from a L{NodeConfig}, and the C{twistd ctdb} options that configure it.
"""

from __future__ import annotations

import errno
import io
import os
import socket
import sys
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from ctdb.errors import ConfigError
from ctdb.events.client import connectEventClient
from ctdb.events.service import EventService
from ctdb.interfaces import IEventRunner
from ctdb.protocols.tunables import Tunables
from ctdb.service import NodeConfig, buildNode, eventSocketPath
from ctdb.tap import Options, makeService

from ..test_readme import codeBlocks
from ._helpers import REACTOR, ScriptsDir, gone, readPids, waitUntil


class _Node:
    def __init__(self, timeout: int = 30) -> None:
        self.tunables = Tunables()
        self.tunables.set("EventScriptTimeout", timeout)


class EventServiceTests(TestCase):
    """L{EventService} on the real reactor."""

    timeout = 60

    def setUp(self) -> None:
        self.dir = ScriptsDir(self)
        self.socketPath = self.dir.path("run/eventd.socket")
        self.node = _Node()

    def startService(self, **kw: Any) -> EventService:
        service = EventService(
            reactor=REACTOR,
            daemon=self.node,
            eventsDir=self.dir.events,
            socketPath=self.socketPath,
            killGrace=1.0,
            **kw,
        )
        service.startService()
        self.addCleanup(lambda: service.stopService() if service.running else None)
        return service

    def test_provides(self) -> None:
        """It is the node's event runner."""
        service = EventService(
            reactor=REACTOR,
            daemon=self.node,
            eventsDir=self.dir.events,
            socketPath=self.socketPath,
        )
        self.assertTrue(verifyObject(IEventRunner, service))
        self.assertEqual(service.name, "eventd")

    async def test_runEventAndStatus(self) -> None:
        """runEvent runs an event of legacy with ctdbd's arguments; its
        status is there for the node and on the socket."""
        self.dir.script("01.a", 'echo "$@"\n')
        service = self.startService()
        self.assertEqual(os.stat(self.socketPath).st_mode & 0o777, 0o700)
        self.assertEqual(await service.runEvent("takeip", "eth0 10.0.0.1 24"), 0)
        result = service.lastResult("takeip")
        assert result is not None
        self.assertEqual(result.scripts[0].output, b"takeip eth0 10.0.0.1 24\n")
        self.assertIsNone(service.lastResult("monitor"))
        client = await connectEventClient(REACTOR, self.socketPath)
        self.addCleanup(client.close)
        code, status = await client.status("legacy", "takeip")
        self.assertEqual(code, 0)
        assert status is not None
        self.assertEqual(status.scripts[0].output, "takeip eth0 10.0.0.1 24\n")

    async def test_timeoutFromTunable(self) -> None:
        """The timeout is EventScriptTimeout when the event runs, unless the
        event has one of its own."""
        pids = self.dir.path("pids")
        self.dir.script(
            "01.hang", f'[ "$1" = startup ] && exit 0\necho $$ >> {pids}\nsleep 300\n'
        )
        service = self.startService(timeouts={"startup": 0})
        self.node.tunables.set("EventScriptTimeout", 1)
        self.assertEqual(service.timeoutFor("monitor"), 1)
        self.assertEqual(service.timeoutFor("startup"), 0)
        self.assertEqual(await service.runEvent("monitor"), errno.ETIMEDOUT)
        self.assertEqual(await service.runEvent("startup"), errno.ETIMEDOUT)
        recorded = readPids(pids)
        self.assertEqual(len(recorded), 1)
        await waitUntil(lambda: gone(recorded[0]))

    async def test_stopKillsAndRemovesSocket(self) -> None:
        """Stopping kills running scripts (their event ends ECANCELED),
        drops clients and removes the socket."""
        pids = self.dir.path("pids")
        self.dir.script("01.hang", f"echo $$ >> {pids}\nsleep 300\n")
        service = self.startService()
        running = service.runEvent("startup")
        await waitUntil(lambda: bool(readPids(pids)))
        await service.stopService()
        self.assertEqual(await running, errno.ECANCELED)
        self.assertTrue(gone(readPids(pids)[0]))
        self.assertFalse(os.path.exists(self.socketPath))

    def test_socketInUse(self) -> None:
        """A socket some daemon serves fails the start."""
        os.makedirs(os.path.dirname(self.socketPath))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(self.socketPath)
            s.listen(1)
            service = EventService(
                reactor=REACTOR,
                daemon=self.node,
                eventsDir=self.dir.events,
                socketPath=self.socketPath,
            )
            self.assertRaises(ConfigError, service.startService)


class ReadmeExampleTests(TestCase):
    """README.md's event client example, run as a reader would run it."""

    timeout = 60

    async def test_example(self) -> None:
        """It runs monitor, prints its status as ctdb event status does,
        and disables a script."""
        [block] = [b for b in codeBlocks("python") if "connectEventClient" in b]
        scripts = ScriptsDir(self)
        scripts.script("01.ok", "echo fine\n")
        scripts.script("10.interface", "echo failing; exit 1\n")
        program = scripts.write("example.py", block)
        socketPath = scripts.path("run/eventd.socket")
        service = EventService(
            reactor=REACTOR,
            daemon=_Node(),
            eventsDir=scripts.events,
            socketPath=socketPath,
        )
        service.startService()
        self.addCleanup(service.stopService)
        out, err, code = await getProcessOutputAndValue(
            sys.executable, [program, socketPath], env=dict(os.environ), reactor=REACTOR
        )
        self.assertEqual(code, 0, err)
        lines = out.decode().splitlines()
        self.assertEqual(lines[0], f"monitor: {errno.ENOEXEC}")
        self.assertRegex(lines[1], r"^01\.ok +OK +\d\.\d{3} ")
        self.assertRegex(lines[2], r"^10\.interface +ERROR ")
        self.assertEqual(lines[3:], ["  OUTPUT: failing", "", "disable: 0"])
        self.assertFalse(
            os.stat(scripts.dir() + "/10.interface.script").st_mode & 0o111
        )


class BuildTests(SynchronousTestCase):
    """buildNode builds the event daemon from NodeConfig."""

    def setUp(self) -> None:
        self.dir = ScriptsDir(self)
        with open(self.dir.path("nodes"), "w") as f:
            f.write("127.0.0.1\n")

    def config(self, **kw: Any) -> NodeConfig:
        kw.setdefault("nodesFile", self.dir.path("nodes"))
        kw.setdefault("socketPath", self.dir.path("run/ctdbd.socket"))
        return NodeConfig(**kw)

    def test_built(self) -> None:
        """With an events directory the node has an C{eventd} service, its
        event runner, with the socket beside the client socket and the
        configured debug script, timeouts and environment."""
        config = self.config(
            eventsDir=self.dir.events,
            debugScript="/x/debug.sh",
            eventTimeouts={"monitor": 5},
            eventEnvironment={"CTDB_BASE": self.dir.base},
        )
        node = buildNode(config, reactor=MemoryReactorClock())  # type: ignore[arg-type]
        eventd = node.getServiceNamed("eventd")
        self.assertIsInstance(eventd, EventService)
        self.assertIs(node.daemon.eventRunner, eventd)
        self.assertEqual(eventd.socketPath, self.dir.path("run/eventd.socket"))
        self.assertEqual(eventSocketPath(config), self.dir.path("run/eventd.socket"))
        self.assertEqual(eventd.context.debugScript, "/x/debug.sh")
        self.assertEqual(eventd.timeoutFor("monitor"), 5)
        self.assertEqual(eventd.context.environment["CTDB_BASE"], self.dir.base)
        self.assertEqual(eventd.context.environment.get("PATH"), os.environ.get("PATH"))

    def test_none(self) -> None:
        """Without one there is no event daemon."""
        node = buildNode(self.config(), reactor=MemoryReactorClock())  # type: ignore[arg-type]
        self.assertRaises(KeyError, node.getServiceNamed, "eventd")
        self.assertIsNone(node.daemon.eventRunner)

    def test_socketInUse(self) -> None:
        """An event socket another daemon serves is a ConfigError."""
        path = self.dir.path("e.socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(path)
            s.listen(1)
            self.assertRaises(
                ConfigError,
                buildNode,
                self.config(eventsDir=self.dir.events, eventSocket=path),
                reactor=MemoryReactorClock(),
            )

    def test_badTimeout(self) -> None:
        """A negative event timeout is a ConfigError."""
        self.assertRaises(
            ConfigError,
            buildNode,
            self.config(eventsDir=self.dir.events, eventTimeouts={"monitor": -1}),
            reactor=MemoryReactorClock(),
        )


class OptionTests(SynchronousTestCase):
    """twistd ctdb --events-dir, --event-socket, --debug-script,
    --event-timeout and the deprecated --event-daemon."""

    def setUp(self) -> None:
        self.dir = ScriptsDir(self)
        with open(self.dir.path("nodes"), "w") as f:
            f.write("127.0.0.1\n")
        self.debugPath = self.dir.write("debug.sh", "#!/bin/sh\n", mode=0o755)

    def parse(self, *args: str) -> Options:
        options = Options()
        options.parseOptions(
            [
                "--nodes",
                self.dir.path("nodes"),
                "--socket",
                self.dir.path("run/ctdbd.socket"),
                *args,
            ]
        )
        return options

    def test_eventOptions(self) -> None:
        """The options reach the node: scripts get CTDB_BASE (the events
        directory's parent) and CTDB_SOCKET."""
        options = self.parse(
            "--events-dir",
            self.dir.events,
            "--debug-script",
            self.debugPath,
            "--event-timeout",
            "monitor=10",
            "--event-timeout",
            "startup=0x20",
        )
        node: Any = makeService(options, reactor=MemoryReactorClock())
        eventd = node.getServiceNamed("eventd")
        self.assertEqual(eventd.socketPath, self.dir.path("run/eventd.socket"))
        self.assertEqual(eventd.context.debugScript, self.debugPath)
        self.assertEqual(eventd.timeouts, {"monitor": 10, "startup": 32})
        env = eventd.context.environment
        self.assertEqual(env["CTDB_BASE"], self.dir.base)
        self.assertEqual(env["CTDB_SOCKET"], self.dir.path("run/ctdbd.socket"))
        other = self.parse(
            "--events-dir", self.dir.events, "--event-socket", "/x/e.sock"
        )
        self.assertEqual(other["event-socket"], "/x/e.sock")

    def test_noEvents(self) -> None:
        """Events are off by default."""
        options = self.parse()
        node: Any = makeService(options, reactor=MemoryReactorClock())
        self.assertRaises(KeyError, node.getServiceNamed, "eventd")

    def test_refused(self) -> None:
        """A missing events directory, a debug script that cannot run and
        a malformed --event-timeout are usage errors."""
        bad = [
            ["--events-dir", self.dir.path("nonexistent")],
            ["--events-dir", self.dir.events, "--debug-script", self.dir.path("nodes")],
            ["--event-timeout", "monitor"],
            ["--event-timeout", "monitor=-1"],
            ["--event-timeout", "=5"],
            ["--event-timeout", "monitor=soon"],
        ]
        for args in bad:
            self.assertRaises(usage.UsageError, self.parse, *args)

    def test_eventDaemonDeprecated(self) -> None:
        """--event-daemon still works, meaning $CTDB_BASE/events, and says
        it is deprecated."""
        err = io.StringIO()
        options = Options(environ={"CTDB_BASE": self.dir.base}, stderr=err)
        options.parseOptions(
            [
                "--nodes",
                self.dir.path("nodes"),
                "--event-daemon",
                "/usr/libexec/ctdb/ctdb-eventd",
            ]
        )
        self.assertEqual(options["events-dir"], self.dir.events)
        self.assertIn("--event-daemon is deprecated", err.getvalue())
