# -*- test-case-name: tests.integration.test_helpers -*-
"""
C{dummy_client} (Samba's tests/src/dummy_client.c): open C{-n} client
connections to ctdbd, register srvid C{-S} on the last one, and wait up to
C{-t} seconds (default 60) for a message to it.  Exit 0 when a message
came (or with no C{-S}, when the time is up), 1 on a timeout with C{-S}
or any failure.  Used by basics.005.process_exists to have a client PID
with a registered srvid.

    dummy_client [-s socket] [-d level] [-n nconn] [-t seconds] [-S srvid]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, ClassVar

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import usage

from ctdb.helpers.common import (
    connectClient,
    err,
    parseOptions,
    runMain,
    socketPath,
    startLogging,
)
from ctdb.interfaces import ICTDBReactor
from ctdb.protocols.debuglevels import parseDebugLevel

_log = Logger()


def strtoull(text: str) -> int:
    """C{strtoull(text, NULL, 0)}: the longest valid prefix, 0 if none."""
    s = text.strip()
    base, digits = 10, "0123456789"
    if s[:2].lower() == "0x":
        base, digits, s = 16, "0123456789abcdef", s[2:]
    elif s[:1] == "0":
        base, digits = 8, "01234567"
    value = 0
    for ch in s.lower():
        if ch not in digits:
            break
        value = value * base + digits.index(ch)
    return min(value, 2**64 - 1)


class Options(usage.Options):
    optParameters: ClassVar[list[list[Any]]] = [
        ["socket", "s", None, "Unix domain socket path"],
        ["debug", "d", "ERR", "debug level"],
        ["nconn", "n", 1, "number of connections", int],
        ["timelimit", "t", 60, "time limit", int],
        ["srvid", "S", None, "srvid to register"],
    ]

    def parseArgs(self, *args: str) -> None:
        pass

    def postOptions(self) -> None:
        if self["nconn"] < 1:
            raise usage.UsageError("number of connections must be at least 1")


async def run(reactor: ICTDBReactor, argv: Sequence[str]) -> int:
    options = parseOptions(Options(), argv)
    level = parseDebugLevel(options["debug"])
    if level is None:
        err("Invalid debug level")
        sys.stdout.write(str(options))
        return 1
    startLogging("dummy_client", level)
    path = options["socket"] or socketPath()

    clients = []
    for i in range(options["nconn"]):
        clients.append(
            await connectClient(
                reactor, path, f"Failed to initialize client {i}, ret={{ret}}"
            )
        )
    last = clients[-1]

    done: defer.Deferred[None] = defer.Deferred()
    if options["srvid"] is not None:
        srvid = strtoull(options["srvid"])

        def onMessage(sid: int, data: bytes) -> None:
            if not done.called:
                done.callback(None)

        try:
            await last.registerSrvid(srvid, onMessage)
        except Exception as e:  # noqa: BLE001 - reported as the C program does
            _log.error("Failed to register srvid, ret={ret}", ret=str(e))
            return 1
        _log.info("Registered SRVID {srvid:#x}", srvid=srvid)

    timedOut = False

    def onTimeout(result: object, timeout: float) -> None:
        nonlocal timedOut
        timedOut = True

    done.addTimeout(options["timelimit"], reactor, onTimeoutCancel=onTimeout)
    try:
        await done
    except defer.CancelledError:
        pass
    if timedOut and options["srvid"] is not None:
        _log.error("client_wait_timeout() failed, ret=110")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """The C{dummy_client} program (see L{ctdb.helpers.writePrograms})."""
    runMain(run, argv)


if __name__ == "__main__":
    main()
