# -*- test-case-name: tests.monitor.test_main -*-
"""
The C{ctdb-monitor} command: a live terminal view of a cluster (rich's
L{Live}, refreshed in place every C{--interval} seconds), or with
C{--once} one snapshot as plain text (or JSON) for scripts.

L{run} is the whole program, given its reactor, arguments and streams (the
tests call it); L{LiveMonitor} is the live loop; L{main} is the console
script, under C{task.react}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text
from twisted.internet import defer, task

from ctdb.errors import CommandLineExit
from ctdb.interfaces import ICTDBReactor
from ctdb.monitor.changes import EventLog
from ctdb.monitor.collect import Collector
from ctdb.monitor.render import (
    EVENTS_SHOWN,
    LocalTime,
    renderLive,
    renderText,
    snapshotJson,
)
from ctdb.monitor.snapshot import Snapshot

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

__all__ = ["LiveMonitor", "main", "run"]

DESCRIPTION = """\
Watch a CTDB cluster (txctdb or Samba's ctdbd) through one daemon's client
socket, as the recovery daemon checks it each second: every node's status
in the node map and its own view of the node map (SEES), its recovery
mode, generation and VNN map (a "!" marks a value that differs from the
leader's), the leader named by the LEADER broadcasts, which node holds
each public address, and the changes seen between refreshes (node status,
nodes that stop answering, leader, recovery mode, generation, VNN map,
addresses that move), newest last.  A node that does not answer within
--timeout is shown with the reason.  Ctrl-C quits.
"""

EPILOG = """\
exit status: 0 on success (or Ctrl-C); 1 if the daemon cannot be reached
at the start; 2 for a bad command line.  While the live view runs, a lost
daemon is shown and tried again every interval.
"""


class _Parser(argparse.ArgumentParser):
    """argparse writing to the given streams and raising instead of exiting."""

    def __init__(self, stdout: TextIO, stderr: TextIO, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stdout = stdout
        self._stderr = stderr

    def _print_message(
        self, message: str, file: SupportsWrite[str] | None = None
    ) -> None:
        if message:
            (
                self._stdout if file is None or file is sys.stdout else self._stderr
            ).write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._stderr.write(message)
        raise CommandLineExit(status)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def parser(stdout: TextIO, stderr: TextIO) -> _Parser:
    p = _Parser(
        stdout,
        stderr,
        prog="ctdb-monitor",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="print one snapshot as plain text and exit",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="with --once: print the snapshot as one JSON document",
    )
    p.add_argument(
        "--interval",
        type=_positive,
        default=1.0,
        metavar="SECONDS",
        help="seconds between refreshes of the live view (default: 1)",
    )
    p.add_argument(
        "--socket",
        metavar="PATH",
        default=None,
        help="the daemon's client socket (default: $CTDB_SOCKET, else "
        "/run/ctdb/ctdbd.socket, as our ctdb tool)",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=3,
        metavar="SECONDS",
        help="how long a node may take to answer (default: 3)",
    )
    return p


class LiveMonitor:
    """
    The live view: a snapshot every C{interval} seconds, its events, and
    the view redrawn in place on C{console} (the alternate screen, which
    L{stop} leaves, restoring the terminal).
    """

    def __init__(
        self,
        *,
        reactor: ICTDBReactor,
        collector: Collector,
        console: Console,
        interval: float,
        localtime: LocalTime = time.localtime,
        screen: bool = True,
    ) -> None:
        self.reactor = reactor
        self.collector = collector
        self.console = console
        self.interval = interval
        self.localtime = localtime
        self.log = EventLog()
        self._live = Live(
            console=console,
            auto_refresh=False,
            screen=screen,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._loop = task.LoopingCall(lambda: defer.ensureDeferred(self.tick()))
        self._loop.clock = reactor
        self._started = False

    def start(self) -> defer.Deferred[Any]:
        """Show the view and refresh it; fires once L{stop}ped."""
        self._live.start()
        self._started = True
        self._live.update(
            Text(f"Connecting to {self.collector.socketPath} ..."), refresh=True
        )
        return self._loop.start(self.interval, now=True)

    async def tick(self) -> None:
        """One refresh: a snapshot, its events, the view drawn again."""
        try:
            snapshot = await self.collector.snapshot(waitForLeader=True)
        except Exception as e:  # noqa: BLE001 - shown, and tried again next time
            await self.collector.close()
            snapshot = Snapshot(
                self.reactor.seconds(),
                self.collector.socketPath,
                error=f"{type(e).__name__}: {e}",
            )
        self.log.observe(snapshot)
        if not self._started:
            return
        self._live.update(
            renderLive(
                snapshot,
                self.log.recent(EVENTS_SHOWN),
                lastGood=self.log.lastGood,
                interval=self.interval,
                localtime=self.localtime,
            ),
            refresh=True,
        )

    def stop(self) -> None:
        """Stop refreshing and give the terminal back as it was."""
        if self._loop.running:
            self._loop.stop()
        if self._started:
            self._started = False
            self._live.stop()


async def run(
    reactor: ICTDBReactor,
    argv: Sequence[str],
    *,
    stdout: TextIO,
    stderr: TextIO,
    environ: Mapping[str, str],
    console: Console | None = None,
) -> int:
    """The command: parse C{argv} (without the program name), run, and
    answer the exit status."""
    try:
        options = parser(stdout, stderr).parse_args(list(argv))
        if options.json and not options.once:
            parser(stdout, stderr).error("--json needs --once")
    except CommandLineExit as e:
        return e.status
    collector = Collector(
        reactor=reactor,
        socket=options.socket,
        timeout=options.timeout,
        environ=environ,
    )
    try:
        if options.once:
            snapshot = await collector.snapshot(waitForLeader=True)
            if snapshot.error is not None:
                stderr.write(
                    f"ctdb-monitor: ctdbd at {collector.socketPath}: {snapshot.error}\n"
                )
                return 1
            if options.json:
                stdout.write(json.dumps(snapshotJson(snapshot), indent=2) + "\n")
            else:
                stdout.write(renderText(snapshot))
            stdout.flush()
            return 0
        if console is None:
            console = Console(file=stdout)
        if not console.is_terminal:
            stderr.write("ctdb-monitor: the live view needs a terminal (use --once)\n")
            return 1
        why = await collector.connect()
        if why is not None:
            stderr.write(f"ctdb-monitor: ctdbd at {collector.socketPath}: {why}\n")
            return 1
        monitor = LiveMonitor(
            reactor=reactor,
            collector=collector,
            console=console,
            interval=options.interval,
        )
        trigger = reactor.addSystemEventTrigger("before", "shutdown", monitor.stop)
        try:
            await monitor.start()
        finally:
            monitor.stop()
            reactor.removeSystemEventTrigger(trigger)
        return 0
    finally:
        await collector.close()


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: C{sys.argv}, the process's streams and
    environment, under C{task.react}.  Ctrl-C stops the reactor, which
    stops the live view first (a shutdown trigger): exit status 0."""
    args = list(sys.argv[1:] if argv is None else argv)
    status: list[int] = []

    async def program(reactor: ICTDBReactor) -> None:
        status.append(
            await run(
                reactor, args, stdout=sys.stdout, stderr=sys.stderr, environ=os.environ
            )
        )

    try:
        task.react(lambda reactor: defer.ensureDeferred(program(reactor)))
    except SystemExit as e:
        if not status:
            return e.code if isinstance(e.code, int) else 1
    return status[0] if status else 0


if __name__ == "__main__":
    sys.exit(main())
