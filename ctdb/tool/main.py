# -*- test-case-name: tests.tool.test_main -*-
"""
The entry point of our C{ctdb} command (installed as C{txctdb}; it behaves
the same under any name, C{ctdb} included): Samba 4.17's C{ctdb/tools/
ctdb.c} C{main} and C{process_command} on Twisted.

L{run} is the whole program, given its reactor, arguments and streams (the
tests call it); L{main} is the console script, under C{task.react}.
"""

from __future__ import annotations

import io
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from twisted.internet import defer, task

from ctdb.errors import CommandFailed
from ctdb.interfaces import ICTDBReactor
from ctdb.tool.commands import COMMANDS
from ctdb.tool.options import (
    Exit,
    commandSpec,
    finishOptions,
    parseArguments,
)
from ctdb.tool.session import ToolSession, exitStatus


async def _process(session: ToolSession) -> int:
    """C{process_command}: connect unless the command needs no daemon,
    check C{-n}, set up the LEADER handler, run the command."""
    options = session.options
    name = options.args[0]
    spec = commandSpec(name)
    assert spec is not None
    fn = COMMANDS.get(name)
    try:
        if spec.withoutDaemon:
            if options.pnn != -1:
                session.err(f"Cannot specify node for command {name}\n")
                return 1
        else:
            await session.connect()
            if not spec.remote and session.pnn != session.cmdPnn:
                session.err(f"Node cannot be specified for command {name}\n")
                return 1
            await session.registerLeaderHandler()
        if fn is None:
            session.err(f"Command {name} is not implemented by txctdb\n")
            return 1
        return await fn(session, options.args[1:])
    except CommandFailed as e:
        return e.code


def _write(stream: TextIO, text: str) -> None:
    if text:
        stream.write(text)
        stream.flush()


async def run(
    reactor: ICTDBReactor,
    argv: Sequence[str],
    *,
    stdout: TextIO,
    stderr: TextIO,
    environ: Mapping[str, str],
    stdin: TextIO | None = None,
) -> int:
    """
    The tool: parse C{argv} (without the program name), run the command,
    and answer the exit status.  At most C{-T} seconds (C{$CTDB_TIMEOUT},
    120 by default), as the C tool's alarm.
    """
    parsed = parseArguments(argv)
    if isinstance(parsed, Exit):
        _write(stdout, parsed.stdout)
        _write(stderr, parsed.stderr)
        return parsed.status
    done = finishOptions(parsed, environ)
    if done is not None:
        _write(stdout, done.stdout)
        _write(stderr, done.stderr)
        return done.status
    session = ToolSession(
        reactor, parsed, stdout=stdout, stderr=stderr, environ=environ, stdin=stdin
    )
    d = defer.ensureDeferred(_process(session))
    expired: list[bool] = []

    def alarm() -> None:
        expired.append(True)
        d.cancel()

    timer = None
    if parsed.maxruntime > 0:
        timer = reactor.callLater(parsed.maxruntime, alarm)
    try:
        ret = await d
    except defer.CancelledError:
        if not expired:
            raise
        session.err("Maximum runtime exceeded - exiting\n")
        ret = 1
    except Exception as e:  # noqa: BLE001 - a one-line message, not a traceback
        session.err(f"ctdb: {type(e).__name__}: {e}\n")
        ret = 1
    finally:
        if timer is not None and timer.active():
            timer.cancel()
        await session.close()
    status = exitStatus(ret)
    session.printDocument(status)
    return status


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: C{sys.argv}, the process's streams and
    environment, under C{task.react}."""
    args = list(sys.argv[1:] if argv is None else argv)
    # As a C program: a closed stdout (ctdb ... | head) ends it quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # Records are bytes: print them as C does, whatever they hold.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(encoding="utf-8", errors="surrogateescape")
    stdin = sys.stdin
    if isinstance(stdin, io.TextIOWrapper):
        stdin.reconfigure(encoding="utf-8", errors="surrogateescape")

    async def program(reactor: ICTDBReactor) -> None:
        status = await run(
            reactor,
            args,
            stdout=sys.stdout,
            stderr=sys.stderr,
            environ=dict(os.environ),
            stdin=stdin,
        )
        if status:
            raise SystemExit(status)

    task.react(lambda reactor: defer.ensureDeferred(program(reactor)))


if __name__ == "__main__":
    main()
