# -*- test-case-name: tests.test_tap -*-
"""
``twistd ctdb``: the command-line face of L{ctdb.service.buildNode}.
The only module that imports the global reactor.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, ClassVar, TextIO

from twisted.application.service import IService
from twisted.python import usage

from ctdb.config.ctdbconf import parseHeartbeat as parseHeartbeatSetting
from ctdb.config.publicaddresses import addressesFromFile
from ctdb.errors import ConfigError, ConfigLoadError
from ctdb.logfilter import LOG_FORMATS
from ctdb.metrics import checkEndpoint
from ctdb.nodes import readNodesFile
from ctdb.protocols.packet import CTDB_PORT
from ctdb.protocols.tunables import Tunables
from ctdb.service import (
    DEFAULT_SOCKET,
    NodeConfig,
    buildNode,
    chooseNode,
    toDebugLevel,
)
from ctdb.transports.ib.binding import loadVerbs
from ctdb.transports.reactor import installUnlessChosen


class Options(usage.Options):
    synopsis = "--nodes NODES [options]"
    longdesc = "Run one node of a CTDB cluster (Samba's clustered TDB daemon)."

    optParameters: ClassVar[list[list[object]]] = [
        ["nodes", None, None, "the nodes file (one address per line, '#' = deleted)"],
        [
            "address",
            None,
            None,
            "this node's address (default: first local one in the nodes file)",
        ],
        [
            "socket",
            None,
            None,
            f"client socket path (default $CTDB_SOCKET or {DEFAULT_SOCKET})",
        ],
        ["port", None, CTDB_PORT, "node TCP port", int],
        [
            "transport",
            None,
            "tcp",
            (
                "the node transport: tcp, or ib (InfiniBand verbs, or RoCE: the "
                "nodes file then holds the nodes' IPoIB / RoCE addresses)"
            ),
        ],
        ["dbdir", None, "/var/lib/ctdb/volatile", "volatile database directory"],
        [
            "dbdir-persistent",
            None,
            "/var/lib/ctdb/persistent",
            "persistent database directory",
        ],
        ["dbdir-state", None, "/var/lib/ctdb/state", "state database directory"],
        ["log-file", None, None, "also log to this file"],
        ["log-level", None, "NOTICE", "ERROR, WARNING, NOTICE, INFO or DEBUG"],
        [
            "log-format",
            None,
            "text",
            "how --log-file is written: text, or json (one object per line)",
        ],
        ["reclock", None, "", "cluster lock file (off by default)"],
        [
            "events-dir",
            None,
            None,
            (
                "run the event scripts of this directory (CTDB_BASE's events/, "
                "components in its subdirectories, e.g. events/legacy; off by "
                "default)"
            ),
        ],
        [
            "event-socket",
            None,
            None,
            (
                "the socket the event daemon serves, for ctdb event and ctdb "
                "scriptstatus (default: eventd.socket beside --socket)"
            ),
        ],
        [
            "debug-script",
            None,
            None,
            "run this on a hung event script, with its pid and the event",
        ],
        [
            "notify-script",
            None,
            None,
            (
                "ctdbd's notification script (notify.sh), run with init, setup, "
                "startup, unhealthy or healthy (none by default)"
            ),
        ],
        [
            "event-daemon",
            None,
            None,
            (
                "deprecated: txctdb runs event scripts itself; means "
                "--events-dir $CTDB_BASE/events (default /etc/ctdb/events)"
            ),
        ],
        [
            "public-addresses",
            None,
            None,
            (
                "this node's public addresses, in Samba's public_addresses "
                "format (none by default; ctdb reloadips reads it again)"
            ),
        ],
        [
            "heartbeat",
            None,
            "0.25:1.5",
            (
                "txctdb's heartbeat between txctdb nodes: INTERVAL:TIMEOUT in "
                "seconds (a silent txctdb peer is dead after TIMEOUT), or off "
                "for 4.17's keepalives alone (docs/FAILURE_DETECTION.md)"
            ),
        ],
        [
            "metrics",
            None,
            None,
            (
                "serve Prometheus metrics at /metrics on this Twisted endpoint, "
                "e.g. tcp:9100:interface=127.0.0.1 (off by default)"
            ),
        ],
    ]

    optFlags: ClassVar[list[list[str | None]]] = [
        [
            "addresses-by-scripts",
            None,
            (
                "only the takeip/releaseip/updateip event scripts add and remove "
                "public addresses (Samba's 10.interface, as ctdbd); by default the "
                "daemon does it itself"
            ),
        ],
        [
            "fast-start",
            None,
            (
                "run the startup event right after the first recovery, as "
                "ctdbd's test mode does (by default RerecoveryTimeout + 3 s after "
                "the last recovery)"
            ),
        ],
    ]

    def __init__(
        self, environ: Mapping[str, str] | None = None, stderr: TextIO | None = None
    ) -> None:
        super().__init__()
        self["tunables"] = {}
        self["event-timeouts"] = {}
        #: where --event-daemon finds CTDB_BASE, and where it warns
        self.environ = os.environ if environ is None else environ
        self.stderr = sys.stderr if stderr is None else stderr

    def opt_tunable(self, value: str) -> None:
        """NAME=VALUE: set a tunable at start (repeatable)"""
        name, sep, number = value.partition("=")
        if not sep:
            raise usage.UsageError(f"--tunable wants NAME=VALUE, not {value!r}")
        try:
            self["tunables"][name.strip()] = int(number, 0)
        except ValueError:
            raise usage.UsageError(f"tunable {name} needs an integer value") from None

    def opt_event_timeout(self, value: str) -> None:
        """EVENT=SECONDS: the timeout of an event of its own, instead of
        EventScriptTimeout (repeatable)"""
        event, sep, number = value.partition("=")
        if not sep or not event.strip():
            raise usage.UsageError(
                f"--event-timeout wants EVENT=SECONDS, not {value!r}"
            )
        try:
            seconds = int(number, 0)
        except ValueError:
            seconds = -1
        if seconds < 0:
            raise usage.UsageError(
                f"event {event} needs a timeout in seconds, not {number!r}"
            )
        self["event-timeouts"][event.strip()] = seconds

    def postOptions(self) -> None:
        self["heartbeat"] = parseHeartbeat(self["heartbeat"])
        if not self["nodes"]:
            raise usage.UsageError("--nodes is required")
        if not os.path.exists(self["nodes"]):
            raise usage.UsageError(f"nodes file {self['nodes']} does not exist")
        if self["socket"] is None:
            self["socket"] = os.environ.get("CTDB_SOCKET", DEFAULT_SOCKET)
        # Check here what buildCTDBService would refuse, so that twistd
        # prints a usage message instead of a traceback from makeService.
        try:
            chooseNode(readNodesFile(self["nodes"]), self["address"])
            toDebugLevel(self["log-level"])
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None
        if self["transport"] not in ("tcp", "ib"):
            raise usage.UsageError(
                f"--transport is tcp or ib, not {self['transport']!r}"
            )
        if self["transport"] == "ib":
            # the libraries and a device, checked before twistd goes on
            try:
                loadVerbs()
            except ConfigError as e:
                raise usage.UsageError(str(e)) from None
        if self["log-format"] not in LOG_FORMATS:
            raise usage.UsageError(
                f"--log-format is one of {', '.join(LOG_FORMATS)}, "
                f"not {self['log-format']!r}"
            )
        known = Tunables()
        for name in self["tunables"]:
            if known.canonical(name) is None:
                raise usage.UsageError(f"unknown tunable {name}")
        if self["event-daemon"] is not None:
            base = self.environ.get("CTDB_BASE", "/etc/ctdb")
            self.stderr.write(
                f"twistd ctdb: --event-daemon is deprecated and its path "
                f"({self['event-daemon']}) is not used: txctdb runs event scripts "
                f"itself; use --events-dir (now {base}/events)\n"
            )
            if self["events-dir"] is None:
                self["events-dir"] = os.path.join(base, "events")
        events = self["events-dir"]
        if events is not None and not os.path.isdir(events):
            raise usage.UsageError(f"events directory {events} does not exist")
        debug = self["debug-script"]
        if debug is not None and not os.access(debug, os.X_OK):
            raise usage.UsageError(f"debug script {debug} is not an executable file")
        if self["metrics"] is not None:
            try:
                checkEndpoint(self["metrics"])
            except ConfigError as e:
                raise usage.UsageError(str(e)) from None
        path = self["public-addresses"]
        if path is not None:
            if not os.path.exists(path):
                raise usage.UsageError(f"public addresses file {path} does not exist")
            try:
                addressesFromFile(path)
            except ConfigLoadError as e:
                raise usage.UsageError(
                    f"public addresses file {path}: "
                    + "; ".join(m.text for m in e.messages)
                ) from None


def parseHeartbeat(text: object) -> tuple[float, float] | None:
    """C{--heartbeat}: C{INTERVAL:TIMEOUT} (seconds) or C{off} (None)."""
    if text is None or isinstance(text, tuple):
        return text  # already parsed
    try:
        return parseHeartbeatSetting(str(text))
    except ValueError as e:
        raise usage.UsageError(f"--{e}") from None


def _eventEnvironment(options: Any) -> dict[str, str]:
    """What event scripts find in their environment beyond the daemon's:
    C{CTDB_BASE}, the directory holding the events directory (what Samba's
    scripts source their functions from), and the client socket."""
    events = options["events-dir"]
    if events is None:
        return {}
    return {
        "CTDB_BASE": os.path.dirname(os.path.abspath(events)),
        "CTDB_SOCKET": os.path.abspath(options["socket"]),
    }


def makeService(options: Any, reactor: Any = None) -> IService:
    if reactor is None:
        # twistd's entry point: our reactor, unless twistd --reactor chose one
        installUnlessChosen()
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    try:
        return buildNode(
            NodeConfig(
                nodesFile=options["nodes"],
                socketPath=options["socket"],
                address=options["address"],
                port=options["port"],
                transport=options["transport"],
                dbDirVolatile=options["dbdir"],
                dbDirPersistent=options["dbdir-persistent"],
                dbDirState=options["dbdir-state"],
                logFile=options["log-file"],
                logLevel=options["log-level"],
                logFormat=options["log-format"],
                tunables=options["tunables"],
                recoveryLock=options["reclock"],
                eventsDir=options["events-dir"],
                eventSocket=options["event-socket"] or "",
                debugScript=options["debug-script"],
                eventTimeouts=options["event-timeouts"],
                eventEnvironment=_eventEnvironment(options),
                publicAddressesFile=options["public-addresses"],
                addressesByScripts=bool(options["addresses-by-scripts"]),
                notifyScript=options["notify-script"],
                fastStart=bool(options["fast-start"]),
                metricsEndpoint=options["metrics"],
                heartbeat=options["heartbeat"],
            ),
            reactor=reactor,
            shutdownCallback=reactor.stop,
        )
    except ConfigError as e:
        raise usage.UsageError(str(e)) from None
