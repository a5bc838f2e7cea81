# -*- test-case-name: tests.integration.test_helpers -*-
"""
C{ctdb-db-test} (Samba's tests/src/db_test_tool.c), the vacuuming tests'
tool::

    ctdb-db-test [-d LEVEL] [-n NODE] [-t SECONDS] COMMAND ARGS...

    get-lmaster KEY                   print the lmaster of KEY (this node's VNN map)
    fetch-local-delete DB KEY         fetch-lock KEY, store it header-only locally
    local-lock DB KEY                 a child holds KEY's chain lock ("OK PID")
    local-read DB KEY                 print KEY's local header and data
    vacuum DB [full]                  DB_VACUUM on node -n

C{DB} is a name or a C{0x} db id of a volatile database.  The exit status
is the command's (an errno on failure: 2 no such database, 110 a control
timed out, 22 not volatile).
"""

from __future__ import annotations

import errno
import os
import signal
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from twisted.logger import Logger
from twisted.python import usage

from ctdb.client import CTDBClient, Database
from ctdb.database.ltdb import (
    CTDB_DB_FLAGS_PERSISTENT,
    CTDB_DB_FLAGS_REPLICATED,
    CTDB_REC_FLAG_AUTOMATIC,
    CTDB_REC_FLAG_MIGRATED_WITH_DATA,
    CTDB_REC_FLAG_VACUUM_MIGRATED,
    CTDB_REC_RO_HAVE_DELEGATIONS,
    CTDB_REC_RO_HAVE_READONLY,
    CTDB_REC_RO_REVOKE_COMPLETE,
    CTDB_REC_RO_REVOKING_READONLY,
    LTDB_HEADER_SIZE,
    LtdbHeader,
    ctdbHash,
)
from ctdb.database.tdb import TDB_REPLACE
from ctdb.errors import CommandFailed, ControlTimeout
from ctdb.helpers.common import (
    connectClient,
    err,
    errnoOf,
    out,
    runMain,
    socketPath,
    startLogging,
)
from ctdb.interfaces import ICTDBReactor
from ctdb.protocols import controls as C
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control
from ctdb.protocols.debuglevels import parseDebugLevel
from ctdb.protocols.packet import CTDB_CURRENT_NODE

_log = Logger()

#: How long the local-lock child holds the lock (the caller kills it).
LOCK_HOLD = 120

COMMANDS = (
    ("get-lmaster", "<key>", "Print lmaster for key"),
    (
        "fetch-local-delete",
        "<dbname|dbid> <key>",
        "Fetch record and delete from local database",
    ),
    ("local-lock", "<dbname|dbid> <key>", "Lock a record in a local database"),
    ("local-read", "<dbname|dbid> <key>", "Read a record from local database"),
    ("vacuum", "<dbname|dbid> [full]", "Vacuum a database"),
)

_FLAG_NAMES = (
    (CTDB_REC_FLAG_MIGRATED_WITH_DATA, "MIGRATED_WITH_DATA"),
    (CTDB_REC_FLAG_VACUUM_MIGRATED, "VACUUM_MIGRATED"),
    (CTDB_REC_FLAG_AUTOMATIC, "AUTOMATIC"),
    (CTDB_REC_RO_HAVE_DELEGATIONS, "RO_HAVE_DELEGATIONS"),
    (CTDB_REC_RO_HAVE_READONLY, "RO_HAVE_READONLY"),
    (CTDB_REC_RO_REVOKING_READONLY, "RO_REVOKING_READONLY"),
    (CTDB_REC_RO_REVOKE_COMPLETE, "RO_REVOKE_COMPLETE"),
)


class Options(usage.Options):
    optParameters: ClassVar[list[list[Any]]] = [
        ["debug", "d", "ERROR", "debug level"],
        ["node", "n", CTDB_CURRENT_NODE, "node number", int],
        ["timelimit", "t", 60, "control time limit", int],
    ]

    def parseArgs(self, *args: str) -> None:
        self["args"] = list(args)


def usageText(command: str | None = None) -> str:
    lines = ["Usage: ctdb-db-test [<options>] <command> [<args>]", ""]
    for name, args, help in COMMANDS:
        if command is None or name == command:
            lines.append(f"  {name} {args}\t{help}")
    return "\n".join(lines)


class Tool:
    """The commands, against one connected client."""

    def __init__(self, client: CTDBClient, destnode: int, timelimit: float) -> None:
        self.client = client
        self.destnode = destnode & 0xFFFFFFFF
        self.timelimit = timelimit

    async def _control(
        self,
        opcode: int,
        data: bytes = b"",
        destnode: int | None = None,
        srvid: int = 0,
    ) -> bytes:
        dest = self.destnode if destnode is None else destnode
        try:
            reply = await self.client.control(
                opcode, data, destnode=dest, srvid=srvid, timeout=self.timelimit
            )
        except ControlTimeout:
            raise CommandFailed(errno.ETIMEDOUT) from None
        if reply.status != 0:
            raise CommandFailed(reply.status & 0xFF or 1)
        return reply.data

    async def dbExists(self, arg: str) -> tuple[int, str, int]:
        """C{db_exists}: (db_id, name, flags) of a database on -n, by name or 0x id."""
        dbs = R.decodeDbMap(await self._control(Control.GET_DBMAP))
        found = None
        name = None
        if arg.startswith("0x"):
            try:
                wanted = int(arg, 16)
            except ValueError:
                raise CommandFailed(1) from None
            found = next((d for d in dbs if d.db_id == wanted), None)
        else:
            for d in dbs:
                dbName = C.decodeString(
                    await self._control(Control.GET_DBNAME, C.encodeU32(d.db_id))
                )
                if dbName == arg:
                    found, name = d, dbName
                    break
        if found is None:
            err(f"No database matching '{arg}' found")
            raise CommandFailed(errno.ENOENT)
        if name is None:
            name = C.decodeString(
                await self._control(Control.GET_DBNAME, C.encodeU32(found.db_id))
            )
        return found.db_id, name, found.flags

    async def volatileDb(self, arg: str, code: int = errno.EINVAL) -> Database:
        _, name, flags = await self.dbExists(arg)
        if flags & (CTDB_DB_FLAGS_PERSISTENT | CTDB_DB_FLAGS_REPLICATED):
            _log.error("DB {name} is not a volatile database", name=name)
            raise CommandFailed(code)
        try:
            return await self.client.attach(name)
        except Exception:  # noqa: BLE001
            _log.error("Failed to attach to DB {name}", name=name)
            raise CommandFailed(errno.EIO if code != 1 else 1) from None

    async def getLmaster(self, key: str) -> int:
        data = await self._control(Control.GETVNNMAP, destnode=CTDB_CURRENT_NODE)
        vnnMap = C.VnnMap.decode(data)
        lmaster = vnnMap.map[ctdbHash(key.encode()) % len(vnnMap.map)]
        out(str(struct.unpack("<i", struct.pack("<I", lmaster))[0]))
        return 0

    async def fetchLocalDelete(self, dbArg: str, key: str) -> int:
        db = await self.volatileDb(dbArg)
        k = key.encode()
        try:
            async with db.fetchLock(k) as record:
                db.tdb.store(k, record.header.encode(), TDB_REPLACE)
        except Exception as e:  # noqa: BLE001
            _log.error("Failed to fetch record for key {key}: {e}", key=key, e=str(e))
            return errnoOf(e)
        return 0

    async def localLock(self, dbArg: str, key: str) -> int:
        try:
            db = await self.volatileDb(dbArg, code=1)
        except CommandFailed as e:
            if e.code == errno.ENOENT:
                _log.error("DB {name} not attached", name=dbArg)
                return 1
            raise
        readFd, writeFd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child, exercised by the tests
            _holdLock(db, key.encode(), readFd, writeFd)
        os.close(writeFd)
        # A short blocking read, as the C parent: the child answers at once.
        raw = b""
        while len(raw) < 4:
            chunk = os.read(readFd, 4 - len(raw))
            if not chunk:
                break
            raw += chunk
        os.close(readFd)
        status = struct.unpack("<i", raw)[0] if len(raw) == 4 else errno.EINVAL
        out(f"OK {pid}" if status == 0 else f"FAIL {status}")
        return status

    async def localRead(self, dbArg: str, key: str) -> int:
        db = await self.volatileDb(dbArg)
        value = db.tdb.fetch(key.encode())
        if value is None:
            _log.error("No record for key {key}", key=key)
            return 1
        if len(value) < LTDB_HEADER_SIZE:
            _log.error("Invalid record for key {key}", key=key)
            return 1
        header, used = LtdbHeader.decode(value)
        flags = "".join(f" {name}" for bit, name in _FLAG_NAMES if header.flags & bit)
        out(f"dmaster: {header.dmaster}")
        out(f"rsn: {header.rsn}")
        out(f"flags: 0x{header.flags:08x}{flags}")
        out(dump("data", value[used:]))
        return 0

    async def vacuum(self, dbArg: str, *rest: str) -> int:
        full = False
        if rest:
            if rest != ("full",):
                err(usageText("vacuum"))
                return 1
            full = True
        dbId, name, flags = await self.dbExists(dbArg)
        if flags & (CTDB_DB_FLAGS_PERSISTENT | CTDB_DB_FLAGS_REPLICATED):
            _log.error("DB {name} is not a volatile database", name=name)
            return errno.EINVAL
        try:
            await self._control(Control.DB_VACUUM, struct.pack("<IB", dbId, full))
        except CommandFailed as e:
            _log.error("Control DB_VACUUM failed, ret={ret}", ret=e.code)
            return e.code
        return 0


def dump(name: str, data: bytes) -> str:
    """C{dump()}: printable ASCII as is (but C{"} and C{\\}), the rest as C{\\XX}."""
    chars = []
    for b in data:
        if 0x20 <= b < 0x7F and b not in b'"\\':
            chars.append(chr(b))
        else:
            chars.append(f"\\{b:02X}")
    return f'{name}({len(data)}) = "{"".join(chars)}"'


def _holdLock(db: Database, key: bytes, readFd: int, writeFd: int) -> None:
    """
    The local-lock child: take the chain lock (blocking: this process does
    nothing else), report 0 or the error on the pipe, close stdio, and hold
    the lock until killed or L{LOCK_HOLD} seconds have passed.  It never
    returns to the parent's reactor.
    """
    try:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        os.close(readFd)
        try:
            db.tdb.chainLock(key)
            status = 0
        except Exception:  # noqa: BLE001
            status = errno.EIO
        os.write(writeFd, struct.pack("<i", status))
        os.close(writeFd)
        if status != 0:
            os._exit(status)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        # Blocking on purpose: this child only holds a lock until SIGTERM.
        time.sleep(LOCK_HOLD)
    finally:
        os._exit(1)


async def run(reactor: ICTDBReactor, argv: Sequence[str]) -> int:
    options = Options()
    try:
        options.parseOptions(list(argv))
    except usage.UsageError as e:
        err(str(e))
        err(usageText())
        return 1
    level = parseDebugLevel(options["debug"])
    startLogging("ctdb-db-test", 0 if level is None else level)
    args = options["args"]
    handlers: dict[str, tuple[Callable[..., Awaitable[int]], tuple[int, ...]]] = {
        "get-lmaster": (Tool.getLmaster, (1,)),
        "fetch-local-delete": (Tool.fetchLocalDelete, (2,)),
        "local-lock": (Tool.localLock, (2,)),
        "local-read": (Tool.localRead, (2,)),
        "vacuum": (Tool.vacuum, (1, 2)),
    }
    if not args or args[0] not in handlers:
        if args:
            err(f"Unknown command '{args[0]}'")
        err(usageText())
        return 1
    method, nargs = handlers[args[0]]
    if len(args) - 1 not in nargs:
        err(usageText(args[0]))
        return 1
    path = socketPath()
    client = await connectClient(
        reactor, path, "Failed to connect to CTDB daemon ({path})"
    )
    tool = Tool(client, options["node"], float(options["timelimit"]))
    try:
        return await method(tool, *args[1:])
    except CommandFailed as e:
        return e.code


def main(argv: Sequence[str] | None = None) -> None:
    """The C{ctdb-db-test} program (see L{ctdb.helpers.writePrograms})."""
    runMain(run, argv)


if __name__ == "__main__":
    main()
