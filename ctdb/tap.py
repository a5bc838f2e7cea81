# -*- test-case-name: tests.test_tap -*-
"""
``twistd ctdb``: the command-line face of L{ctdb.service.buildNode}.
The only module that imports the global reactor.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from twisted.application.service import IService
from twisted.python import usage

from ctdb.config.publicaddresses import addressesFromFile
from ctdb.errors import ConfigError, ConfigLoadError
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
        ["reclock", None, "", "cluster lock file (off by default)"],
        [
            "event-daemon",
            None,
            None,
            (
                "run event scripts with this ctdb-eventd (Samba's, e.g. "
                "/usr/libexec/ctdb/ctdb-eventd; off by default)"
            ),
        ],
        [
            "event-socket",
            None,
            "/run/ctdb/eventd.socket",
            "the socket that ctdb-eventd serves",
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
    ]

    def __init__(self) -> None:
        super().__init__()
        self["tunables"] = {}

    def opt_tunable(self, value: str) -> None:
        """NAME=VALUE: set a tunable at start (repeatable)"""
        name, sep, number = value.partition("=")
        if not sep:
            raise usage.UsageError(f"--tunable wants NAME=VALUE, not {value!r}")
        try:
            self["tunables"][name.strip()] = int(number, 0)
        except ValueError:
            raise usage.UsageError(f"tunable {name} needs an integer value") from None

    def postOptions(self) -> None:
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
        known = Tunables()
        for name in self["tunables"]:
            if known.canonical(name) is None:
                raise usage.UsageError(f"unknown tunable {name}")
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


def makeService(options: Any, reactor: Any = None) -> IService:
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    try:
        return buildNode(
            NodeConfig(
                nodesFile=options["nodes"],
                socketPath=options["socket"],
                address=options["address"],
                port=options["port"],
                dbDirVolatile=options["dbdir"],
                dbDirPersistent=options["dbdir-persistent"],
                dbDirState=options["dbdir-state"],
                logFile=options["log-file"],
                logLevel=options["log-level"],
                tunables=options["tunables"],
                recoveryLock=options["reclock"],
                eventDaemon=options["event-daemon"],
                eventSocket=options["event-socket"],
                publicAddressesFile=options["public-addresses"],
                addressesByScripts=bool(options["addresses-by-scripts"]),
            ),
            reactor=reactor,
            shutdownCallback=reactor.stop,
        )
    except ConfigError as e:
        raise usage.UsageError(str(e)) from None
