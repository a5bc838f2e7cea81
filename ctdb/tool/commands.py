# -*- test-case-name: tests.tool.test_commands -*-
"""
The commands of Samba 4.17's C{ctdb} tool (C{ctdb/tools/ctdb.c}
C{control_*}), on our client API: the same controls to the same nodes,
the same checks, output and exit status, plus a JSON document for
C{--json}.

Each command is C{async def command(session, args) -> int}: C{args} are
the command's arguments (without its name); it returns the C tool's
C{ret} (L{ctdb.tool.session.exitStatus} makes the exit status of it), or
raises L{CommandFailed} with it once the messages are out.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from ctdb.database.ltdb import LtdbHeader, splitValue
from ctdb.database.tdb import TDB
from ctdb.errors import CommandFailed, CTDBError, MalformedPacket
from ctdb.helpers.common import fetchReadonly
from ctdb.protocols import controls as C
from ctdb.protocols import nodestate as N
from ctdb.protocols import publicips as P
from ctdb.protocols import records as R
from ctdb.protocols.debuglevels import debugLevelName, parseDebugLevel
from ctdb.protocols.packet import (
    CTDB_BROADCAST_CONNECTED,
    CTDB_CTRL_FLAG_NOREPLY,
    CTDB_UNKNOWN_PNN,
    Header,
    Operation,
    ReqControl,
)
from ctdb.protocols.srvids import (
    CTDB_SRVID_DISABLE_IP_CHECK,
    CTDB_SRVID_DISABLE_RECOVERIES,
    CTDB_SRVID_DISABLE_TAKEOVER_RUNS,
    CTDB_SRVID_MEM_DUMP,
    CTDB_SRVID_REBALANCE_NODE,
    encodeDisableMessage,
    encodeSrvidMessage,
)
from ctdb.takeover.packets import tcpPacket
from ctdb.tool import formats as F
from ctdb.tool.options import SAMBA_VERSION, smbStrtoul, strtoInteger
from ctdb.tool.session import (
    SRVID_CTDB_PUSHDB,
    ToolSession,
    activeNodes,
    connectedNodes,
    parseAddress,
)

Command = Callable[[ToolSession, list[str]], Awaitable[int]]

#: every command by name (L{ctdb.tool.options.COMMAND_SPECS} says which
#: need the daemon and which may run for another node)
COMMANDS: dict[str, Command] = {}

#: CTDB_HELPER_BINDIR of Debian's build
HELPER_BINDIR = "/usr/libexec/ctdb"


def command(*names: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        for name in names:
            COMMANDS[name] = fn
        return fn

    return register


def strToData(s: ToolSession, text: str, what: str) -> bytes:
    """
    C{str_to_data}: C{0x...} is hex (an odd count or a bad digit fails),
    anything else the text's own bytes (no NUL).

    @raise CommandFailed: EINVAL, after the tool's messages.
    """
    if not text.startswith("0x"):
        return text.encode("utf-8", "surrogateescape")
    digits = text[2:]
    if len(digits) % 2:
        s.err(f"Key ({digits}) contains odd number of hex digits\n")
    else:
        out = bytearray()
        for i in range(0, len(digits), 2):
            pair = digits[i : i + 2]
            if not all(c in "0123456789abcdefABCDEF" for c in pair):
                s.err(f"Invalid hex: {digits[i:]}\n")
                break
            out.append(int(pair, 16))
        else:
            return bytes(out)
    raise s.fail(f"Failed to parse {what} {text}\n", errno.EINVAL)


def cString(data: bytes) -> str:
    """C{%.*s} of C{data}: up to its first NUL, bytes as they are."""
    return data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


# -- version, pnn, nodes ----------------------------------------------------------------


@command("version")
async def version(s: ToolSession, args: list[str]) -> int:
    s.emit(f"{SAMBA_VERSION}\n", {"version": SAMBA_VERSION})
    return 0


@command("pnn")
async def pnn(s: ToolSession, args: list[str]) -> int:
    s.emit(f"{s.pnn}\n", {"pnn": s.pnn})
    return 0


@command("listnodes")
async def listnodes(s: ToolSession, args: list[str]) -> int:
    if args:
        raise s.usage("listnodes")
    nodes = s.readNodesFile()
    if nodes is None:
        return 1
    entries = [(n.pnn, n.address, n.deleted) for n in nodes]
    s.emit(
        F.listnodesText(entries, s.machine, s.sep),
        {
            "nodes": [
                {"pnn": n.pnn, "address": n.address} for n in nodes if not n.deleted
            ]
        },
    )
    return 0


async def _statusNodes(s: ToolSession, nodestring: str | None, whole: bool) -> Any:
    if whole:
        nodemapIn = await s.getNodemap()
    else:
        nodemapIn = await s.parseNodestring(nodestring)
    if nodemapIn is None:
        return None
    nodemap = await s.nodemapUnknown(nodemapIn)
    if nodemap is None:
        return None
    return await s.nodeLines(nodemap)


@command("status")
async def status(s: ToolSession, args: list[str]) -> int:
    if args:
        raise s.usage("status")
    nodes = await _statusNodes(s, None, True)
    if nodes is None:
        return 1
    if s.machine and not s.json:
        s.out(F.nodemapMachine(nodes, s.cmdPnn, s.sep))
        return 0
    reply = await s.ctrl("GETVNNMAP", C.Control.GETVNNMAP)
    vnnmap = N.VnnMap.decode(reply.data)
    reply = await s.ctrl(
        "GET_RECMODE", C.Control.GET_RECMODE, okStatus=lambda v: v >= 0
    )
    recmode = reply.status
    leader = await s.getLeader()
    s.emit(
        F.statusText(nodes, s.cmdPnn, vnnmap, recmode, leader),
        {
            "pnn": s.cmdPnn,
            "nodes": F.nodesJson(nodes, s.cmdPnn),
            "deleted_nodes": sum(1 for n in nodes if n.flags & N.NODE_FLAGS_DELETED),
            "generation": (
                None if vnnmap.generation == F.INVALID_GENERATION else vnnmap.generation
            ),
            "vnn_map": list(vnnmap.map),
            "recovery_mode": (
                "NORMAL" if recmode == N.CTDB_RECOVERY_NORMAL else "RECOVERY"
            ),
            "recovery_mode_value": recmode,
            "leader": F.pnnJson(leader),
        },
    )
    return 0


@command("nodestatus")
async def nodestatus(s: ToolSession, args: list[str]) -> int:
    if len(args) > 1:
        raise s.usage("nodestatus")
    nodestring = args[0] if args else None
    nodes = await _statusNodes(s, nodestring, False)
    if nodes is None:
        return 1
    if s.machine:
        text = F.nodemapMachine(nodes, s.cmdPnn, s.sep)
    else:
        text = F.nodemapText(nodes, s.cmdPnn, nodestring == "all")
    ret = 0
    for node in nodes:
        if not node.flags & N.NODE_FLAGS_DELETED:
            ret |= node.flags
    s.emit(text, {"nodes": F.nodesJson(nodes, s.cmdPnn), "status": ret})
    return ret


@command("uptime")
async def uptime(s: ToolSession, args: list[str]) -> int:
    reply = await s.ctrl("UPTIME", C.Control.UPTIME)
    u = F.RawUptime.decode(reply.data)
    s.emit(F.uptimeText(s.cmdPnn, u), F.uptimeJson(s.cmdPnn, u))
    return 0


@command("ping")
async def ping(s: ToolSession, args: list[str]) -> int:
    start = s.reactor.seconds()
    reply = await s.ctrl("PING", C.Control.PING, okStatus=lambda v: v >= 0)
    elapsed = s.reactor.seconds() - start
    s.emit(
        f"response from {s.cmdPnn} time={elapsed:.6f} sec  ({reply.status} clients)\n",
        {"pnn": s.cmdPnn, "time": elapsed, "clients": reply.status},
    )
    return 0


_RUNSTATES = {state.name: state for state in C.RunState}


@command("runstate")
async def runstate(s: ToolSession, args: list[str]) -> int:
    reply = await s.ctrl("GET_RUNSTATE", C.Control.GET_RUNSTATE)
    value = C.decodeU32(reply.data)
    try:
        name = C.RunState(value).name
    except ValueError:
        name = "UNKNOWN"
    found = True
    for arg in args:
        found = False
        wanted = _RUNSTATES.get(arg.upper(), C.RunState.UNKNOWN)
        if wanted == C.RunState.UNKNOWN:
            s.out(f"Invalid run state ({arg})\n")
            return 1
        if wanted == value:
            found = True
            break
    if not found:
        s.out(f"CTDB not in required run state (got {name})\n")
        return 1
    s.emit(f"{name}\n", {"pnn": s.cmdPnn, "runstate": name})
    return 0


# -- tunables ----------------------------------------------------------------------------


async def _listTunables(s: ToolSession) -> list[str]:
    try:
        reply = await s.ctrl("LIST_TUNABLES", C.Control.LIST_TUNABLES)
        return C.decodeVarList(reply.data)
    except CommandFailed as e:
        raise s.fail(
            f"Failed to get list of variables from node {s.cmdPnn}\n", e.code
        ) from None


async def _getTunable(s: ToolSession, name: str) -> int:
    reply = await s.ctrl("GET_TUNABLE", C.Control.GET_TUNABLE, C.encodeGetTunable(name))
    return C.decodeU32(reply.data)


@command("getvar")
async def getvar(s: ToolSession, args: list[str]) -> int:
    if len(args) != 1:
        raise s.usage("getvar")
    names = await _listTunables(s)
    if not any(n.lower() == args[0].lower() for n in names):
        s.out(f"No such tunable {args[0]}\n")
        return 1
    value = await _getTunable(s, args[0])
    s.emit(F.getvarText(args[0], value), {"name": args[0], "value": value})
    return 0


@command("setvar")
async def setvar(s: ToolSession, args: list[str]) -> int:
    if len(args) != 2:
        raise s.usage("setvar")
    names = await _listTunables(s)
    if not any(n.lower() == args[0].lower() for n in names):
        s.out(f"No such tunable {args[0]}\n")
        return 1
    value, err = smbStrtoul(args[1])
    if err:
        return err
    value &= 0xFFFFFFFF
    try:
        await s.ctrl(
            "SET_TUNABLE", C.Control.SET_TUNABLE, C.encodeSetTunable(args[0], value)
        )
    except CommandFailed as e:
        if e.code == 1:
            s.err(f"Setting obsolete tunable variable '{args[0]}'\n")
            return 0
        raise
    s.emit("", {"name": args[0], "value": value})
    return 0


@command("listvars")
async def listvars(s: ToolSession, args: list[str]) -> int:
    if args:
        raise s.usage("listvars")
    reply = await s.ctrl("LIST_TUNABLES", C.Control.LIST_TUNABLES)
    names = C.decodeVarList(reply.data)
    lines = []
    values: dict[str, int] = {}
    for name in names:
        # control_getvar() for each name; it lists the tunables again
        # first, which tells nothing new
        try:
            value = await _getTunable(s, name)
        except CommandFailed:
            continue
        values[name] = value
        lines.append(F.getvarText(name, value))
    s.emit("".join(lines), values)
    return 0


# -- statistics --------------------------------------------------------------------------


@command("statistics")
async def statistics(s: ToolSession, args: list[str]) -> int:
    if args:
        raise s.usage("statistics")
    reply = await s.ctrl("STATISTICS", C.Control.STATISTICS)
    stats = F.ToolStatistics.decode(reply.data)
    if s.machine:
        text = F.statisticsMachine(stats, True, s.sep)
    else:
        text = F.statisticsText(stats)
    s.emit(text, F.statisticsJson(stats))
    return 0


@command("statisticsreset")
async def statisticsreset(s: ToolSession, args: list[str]) -> int:
    if args:
        raise s.usage("statisticsreset")
    await s.ctrl("STATISTICS_RESET", C.Control.STATISTICS_RESET)
    s.emit("", {"pnn": s.cmdPnn, "reset": True})
    return 0


@command("stats")
async def stats(s: ToolSession, args: list[str]) -> int:
    if len(args) > 1:
        raise s.usage("stats")
    count = _atoi(args[0]) if args else 0
    reply = await s.ctrl("GET_STAT_HISTORY", C.Control.GET_STAT_HISTORY)
    data = reply.data
    if len(data) < 4:
        raise CommandFailed(errno.EMSGSIZE)
    num = C.decodeU32(data)
    # the list is {u32 num; pad; ctdb_statistics[num]}, 8-byte aligned
    offset = 8
    out = []
    docs = []
    header = True
    for i in range(num):
        try:
            entry = F.ToolStatistics.decode(data[offset : offset + 488])
        except MalformedPacket:
            break
        offset += 488
        if entry.startTime == 0:
            continue
        if s.machine:
            out.append(F.statisticsMachine(entry, header, s.sep))
            header = False
        else:
            out.append(F.statisticsText(entry))
        docs.append(F.statisticsJson(entry))
        if count > 0 and i == count:
            break
    s.emit("".join(out), {"statistics": docs})
    return 0


def _atoi(text: str) -> int:
    """C{atoi}: a leading decimal number, 0 if none."""
    value, used, _ = strtoInteger(text, 10)
    return value if used else 0


@command("dbstatistics")
async def dbstatistics(s: ToolSession, args: list[str]) -> int:
    if len(args) != 1:
        raise s.usage("dbstatistics")
    found = await s.dbExists(args[0])
    if found is None:
        return 1
    dbId, name, _ = found
    try:
        reply = await s.ctrl(
            "GET_DB_STATISTICS", C.Control.GET_DB_STATISTICS, C.encodeU32(dbId)
        )
    except CommandFailed as e:
        raise s.fail(f"Failed to get statistics for DB {name}\n", e.code) from None
    dbstats = F.ToolDbStatistics.decode(reply.data)
    s.emit(F.dbStatisticsText(name, dbstats), F.dbStatisticsJson(name, dbstats))
    return 0


# -- debug levels, capabilities, pid, reclock --------------------------------------------


@command("getdebug")
async def getdebug(s: ToolSession, args: list[str]) -> int:
    if args:
        raise s.usage("getdebug")
    reply = await s.ctrl("GET_DEBUG", C.Control.GET_DEBUG)
    level = C.decodeI32(reply.data)
    name = debugLevelName(level)
    s.emit(f"{name}\n", {"pnn": s.cmdPnn, "level": name, "value": level})
    return 0


@command("setdebug")
async def setdebug(s: ToolSession, args: list[str]) -> int:
    if len(args) != 1:
        raise s.usage("setdebug")
    level = parseDebugLevel(args[0])
    if level is None:
        s.err(f"Invalid debug level '{args[0]}'. Valid levels are:\n")
        s.err("\tERROR | WARNING | NOTICE | INFO | DEBUG\n")
        return 1
    await s.ctrl("SET_DEBUG", C.Control.SET_DEBUG, C.encodeU32(level))
    s.emit("", {"pnn": s.cmdPnn, "level": debugLevelName(level), "value": level})
    return 0


@command("getcapabilities")
async def getcapabilities(s: ToolSession, args: list[str]) -> int:
    if args:
        raise s.usage("getcapabilities")
    reply = await s.ctrl("GET_CAPABILITIES", C.Control.GET_CAPABILITIES)
    caps = C.decodeU32(reply.data)
    s.emit(
        F.capabilitiesText(caps, s.machine, s.sep),
        {
            "pnn": s.cmdPnn,
            "capabilities": caps,
            "leader": bool(caps & N.CTDB_CAP_RECMASTER),
            "lmaster": bool(caps & N.CTDB_CAP_LMASTER),
        },
    )
    return 0


@command("getpid")
async def getpid(s: ToolSession, args: list[str]) -> int:
    reply = await s.ctrl("GET_PID", C.Control.GET_PID, okStatus=lambda v: True)
    pid = reply.status & 0xFFFFFFFF
    s.emit(f"{pid}\n", {"pnn": s.cmdPnn, "pid": pid})
    return 0


@command("getreclock")
async def getreclock(s: ToolSession, args: list[str]) -> int:
    if args:
        raise s.usage("getreclock")
    reply = await s.ctrl("GET_RECLOCK_FILE", C.Control.GET_RECLOCK_FILE)
    reclock = C.decodeString(reply.data) if reply.data else None
    s.emit("" if reclock is None else f"{reclock}\n", {"reclock": reclock})
    return 0


@command("leader")
async def leader(s: ToolSession, args: list[str]) -> int:
    pnn = await s.getLeader()
    s.emit(F.pnnText(pnn), {"leader": F.pnnJson(pnn)})
    return 0


async def _onOff(s: ToolSession, args: list[str], name: str) -> int:
    if len(args) != 1:
        raise s.usage(name)
    if args[0] == "on":
        return 1
    if args[0] == "off":
        return 0
    raise s.usage(name)


@command("setlmasterrole")
async def setlmasterrole(s: ToolSession, args: list[str]) -> int:
    role = await _onOff(s, args, "setlmasterrole")
    await s.ctrl("SET_LMASTERROLE", C.Control.SET_LMASTERROLE, C.encodeU32(role))
    s.emit("", {"pnn": s.cmdPnn, "lmaster": bool(role)})
    return 0


@command("setleaderrole")
async def setleaderrole(s: ToolSession, args: list[str]) -> int:
    role = await _onOff(s, args, "setleaderrole")
    await s.ctrl("SET_RECMASTERROLE", C.Control.SET_RECMASTERROLE, C.encodeU32(role))
    s.emit("", {"pnn": s.cmdPnn, "leader": bool(role)})
    return 0


@command("process-exists")
async def processExists(s: ToolSession, args: list[str]) -> int:
    if len(args) not in (1, 2):
        raise s.usage("process-exists")
    pid = _atoi(args[0])
    srvid = 0
    if len(args) == 2:
        srvid, err = smbStrtoul(args[1])
        if err:
            return err
    if srvid == 0:
        reply = await s.ctrl(
            "PROCESS_EXISTS",
            C.Control.PROCESS_EXISTS,
            C.encodeI32(pid),
            okStatus=lambda v: True,
        )
    else:
        reply = await s.ctrl(
            "CHECK_PID_SRVID",
            C.Control.CHECK_PID_SRVID,
            C.encodePidSrvid(pid, srvid),
            okStatus=lambda v: True,
        )
    exists = reply.status == 0
    word = "exists" if exists else "does not exist"
    if srvid == 0:
        text = f"PID {pid} {word}\n"
    else:
        text = f"PID {pid} with SRVID 0x{srvid:x} {word}\n"
    s.emit(text, {"pid": pid, "srvid": srvid, "exists": exists})
    return reply.status


@command("dumpmemory")
async def dumpmemory(s: ToolSession, args: list[str]) -> int:
    reply = await s.ctrl("DUMP_MEMORY", C.Control.DUMP_MEMORY)
    text = cString(reply.data)
    s.emit(text, {"pnn": s.cmdPnn, "memory": text})
    return 0


@command("rddumpmemory")
async def rddumpmemory(s: ToolSession, args: list[str]) -> int:
    assert s.client is not None
    srvid = s.nextSrvid()
    done: defer.Deferred[bytes] = defer.Deferred()

    def handler(sid: int, data: bytes) -> None:
        if not done.called:
            done.callback(data)

    await s.client.registerSrvid(srvid, handler)
    s.client.sendMessage(
        s.cmdPnn, CTDB_SRVID_MEM_DUMP, encodeSrvidMessage(s.pnn, srvid)
    )
    data = await done
    text = cString(data)
    s.emit(text, {"pnn": s.cmdPnn, "memory": text})
    return 0


# -- databases ---------------------------------------------------------------------------


async def _dbLine(s: ToolSession, dbId: int, flags: int, name: str | None) -> F.DbLine:
    data = C.encodeU32(dbId)
    if name is None:
        reply = await s.ctrl("GET_DBNAME", C.Control.GET_DBNAME, data)
        name = C.decodeString(reply.data)
    reply = await s.ctrl("GETDBPATH", C.Control.GETDBPATH, data)
    path = C.decodeString(reply.data)
    reply = await s.ctrl("DB_GET_HEALTH", C.Control.DB_GET_HEALTH, data)
    health = None if not reply.data else cString(reply.data)
    return F.DbLine(dbId, name, path, flags, health)


@command("getdbmap")
async def getdbmap(s: ToolSession, args: list[str]) -> int:
    if args:
        raise s.usage("getdbmap")
    reply = await s.ctrl("GET_DBMAP", C.Control.GET_DBMAP)
    dbs = [
        await _dbLine(s, db.db_id, db.flags, None) for db in R.decodeDbMap(reply.data)
    ]
    s.emit(
        F.getdbmapText(dbs, s.machine, s.sep),
        {"pnn": s.cmdPnn, "databases": [F.dbJson(db) for db in dbs]},
    )
    return 0


@command("getdbstatus")
async def getdbstatus(s: ToolSession, args: list[str]) -> int:
    if len(args) != 1:
        raise s.usage("getdbstatus")
    found = await s.dbExists(args[0])
    if found is None:
        return 1
    dbId, name, flags = found
    db = await _dbLine(s, dbId, flags, name)
    s.emit(F.getdbstatusText(db), F.dbJson(db))
    return 0


@command("getdbseqnum")
async def getdbseqnum(s: ToolSession, args: list[str]) -> int:
    if len(args) != 1:
        raise s.usage("getdbseqnum")
    found = await s.dbExists(args[0])
    if found is None:
        return 1
    dbId, name, _ = found
    try:
        reply = await s.ctrl(
            "GET_DB_SEQNUM", C.Control.GET_DB_SEQNUM, struct.pack("<I4x", dbId)
        )
    except CommandFailed as e:
        raise s.fail(f"Failed to get sequence number for DB {name}\n", e.code) from None
    seqnum = C.decodeU64(reply.data)
    s.emit(f"0x{seqnum:x}\n", {"name": name, "db_id": dbId, "seqnum": seqnum})
    return 0


_ATTACH_FLAGS = {
    "persistent": R.DB_FLAGS_PERSISTENT,
    "readonly": R.DB_FLAGS_READONLY,
    "sticky": R.DB_FLAGS_STICKY,
    "replicated": R.DB_FLAGS_REPLICATED,
}


@command("attach")
async def attach(s: ToolSession, args: list[str]) -> int:
    if not 1 <= len(args) <= 2:
        raise s.usage("attach")
    flags = 0
    if len(args) == 2:
        if args[1] not in _ATTACH_FLAGS:
            raise s.usage("attach")
        flags = _ATTACH_FLAGS[args[1]]
    db = await s.attach(args[0], flags)
    s.emit("", {"name": db.name, "db_id": db.db_id, "path": db.path, "flags": flags})
    return 0


async def _attachExisting(s: ToolSession, arg: str) -> tuple[Any, int, str, int] | None:
    """db_exists, then ctdb_attach with its flags ("Failed to attach")."""
    found = await s.dbExists(arg)
    if found is None:
        return None
    dbId, name, flags = found
    try:
        db = await s.attach(name, flags)
    except CommandFailed as e:
        raise s.fail(f"Failed to attach to DB {name}\n", e.code) from None
    return db, dbId, name, flags


@command("catdb")
async def catdb(s: ToolSession, args: list[str]) -> int:
    if len(args) != 1:
        raise s.usage("catdb")
    attached = await _attachExisting(s, args[0])
    if attached is None:
        return 1
    db, _, name, _ = attached
    records: list[tuple[bytes, LtdbHeader, bytes]] = []
    ret = 0
    try:
        limit = s.timeout()
        records = await db.traverse(timeout=limit if limit else 1e9)
    except CommandFailed as e:
        ret = e.code
    except defer.TimeoutError:
        ret = errno.ETIMEDOUT
    except CTDBError as e:
        ret = getattr(e, "status", errno.EIO)
        s.err(f"traverse: control reply failed, ret={ret}\n")
    text = "".join(F.recordText(k, h, d) for k, h, d in records)
    text += f"Dumped {len(records)} records\n"
    s.emit(
        text,
        {"name": name, "records": [F.recordJson(k, h, d) for k, h, d in records]},
    )
    return ret


@command("cattdb")
async def cattdb(s: ToolSession, args: list[str]) -> int:
    if len(args) != 1:
        raise s.usage("cattdb")
    attached = await _attachExisting(s, args[0])
    if attached is None:
        return 1
    db, _, name, _ = attached
    records = []
    for key, value in db.tdb.traverse():
        header, data = splitValue(value)
        if header is not None:
            records.append((key, header, data))
    text = "".join(F.recordText(k, h, d) for k, h, d in records)
    text += f"Dumped {len(records)} record(s)\n"
    s.emit(
        text,
        {"name": name, "records": [F.recordJson(k, h, d) for k, h, d in records]},
    )
    return 0


async def _volatile(s: ToolSession, arg: str) -> tuple[Any, str] | None:
    found = await s.dbExists(arg)
    if found is None:
        return None
    _, name, flags = found
    if flags & (R.DB_FLAGS_PERSISTENT | R.DB_FLAGS_REPLICATED):
        s.err(f"DB {name} is not a volatile database\n")
        return None
    try:
        db = await s.attach(name, flags)
    except CommandFailed as e:
        raise s.fail(f"Failed to attach to DB {name}\n", e.code) from None
    return db, name


@command("readkey")
async def readkey(s: ToolSession, args: list[str]) -> int:
    if not 2 <= len(args) <= 3:
        raise s.usage("readkey")
    readonly = False
    if len(args) == 3:
        if args[2] != "readonly":
            raise s.usage("readkey")
        readonly = True
    found = await _volatile(s, args[0])
    if found is None:
        return 1
    db, _ = found
    key = strToData(s, args[1], "key")
    try:
        if readonly:
            _, data = await fetchReadonly(db, key, timeout=db.client.lockTimeout)
        else:
            async with db.fetchLock(key) as record:
                data = record.data
    except CTDBError:
        s.err(f"Failed to read record for key {args[1]}\n")
        return errno.EIO
    s.emit(
        f"Data: size:{len(data)} ptr:[{cString(data)}]\n",
        {"key": args[1], "size": len(data), "data": F.escapeBytes(data)},
    )
    return 0


@command("writekey")
async def writekey(s: ToolSession, args: list[str]) -> int:
    if len(args) != 3:
        raise s.usage("writekey")
    found = await _volatile(s, args[0])
    if found is None:
        return 1
    db, _ = found
    key = strToData(s, args[1], "key")
    value = strToData(s, args[2], "value")
    try:
        record = await db.fetchLock(key)
    except CTDBError:
        # (the tool names the database here, not the key)
        s.err(f"Failed to lock record for key {args[0]}\n")
        return errno.EIO
    try:
        record.store(value)
    except CTDBError:
        s.err(f"Failed to store record for key {args[1]}\n")
        return errno.EIO
    finally:
        record.release()
    s.emit("", {"key": args[1], "size": len(value)})
    return 0


@command("deletekey")
async def deletekey(s: ToolSession, args: list[str]) -> int:
    if len(args) != 2:
        raise s.usage("deletekey")
    found = await _volatile(s, args[0])
    if found is None:
        return 1
    db, _ = found
    key = strToData(s, args[1], "key")
    try:
        record = await db.fetchLock(key)
    except CTDBError:
        s.err(f"Failed to fetch record for key {args[1]}\n")
        return errno.EIO
    try:
        await record.delete()
    except CTDBError:
        s.err(f"Failed to delete record for key {args[1]}\n")
        return errno.EIO
    finally:
        record.release()
    s.emit("", {"key": args[1], "deleted": True})
    return 0


async def _persistent(s: ToolSession, arg: str) -> tuple[str, int] | None:
    found = await s.dbExists(arg)
    if found is None:
        return None
    _, name, flags = found
    if not flags & (R.DB_FLAGS_PERSISTENT | R.DB_FLAGS_REPLICATED):
        s.err(f"Transactions not supported on DB {name}\n")
        return None
    return name, flags


async def _attachNamed(s: ToolSession, name: str, flags: int) -> Any:
    try:
        return await s.attach(name, flags)
    except CommandFailed as e:
        raise s.fail(f"Failed to attach to DB {name}\n", e.code) from None


async def _startTransaction(s: ToolSession, db: Any, name: str, readonly: bool) -> Any:
    try:
        return await db.transaction(readonly=readonly)
    except CTDBError:
        raise s.fail(f"Failed to start transaction on db {name}\n", errno.EIO) from None


async def _commit(s: ToolSession, txn: Any, name: str) -> None:
    try:
        await txn.commit()
    except CTDBError:
        s.err(f"Failed to commit transaction on db {name}\n")
        await _cancel(txn)
        raise CommandFailed(errno.EIO) from None


async def _cancel(txn: Any) -> None:
    try:
        await txn.cancel()
    except CTDBError:
        pass


@command("pfetch")
async def pfetch(s: ToolSession, args: list[str]) -> int:
    if len(args) != 2:
        raise s.usage("pfetch")
    found = await _persistent(s, args[0])
    if found is None:
        return 1
    name, flags = found
    db = await _attachNamed(s, name, flags)
    key = strToData(s, args[1], "key")
    txn = await _startTransaction(s, db, name, True)
    try:
        data = await txn.fetch(key)
    except CTDBError:
        s.err(f"Failed to read record for key {args[1]}\n")
        await _cancel(txn)
        return errno.EIO
    await _cancel(txn)
    data = data or b""
    s.emit(
        f"{cString(data)}\n",
        {"key": args[1], "size": len(data), "data": F.escapeBytes(data)},
    )
    return 0


@command("pstore")
async def pstore(s: ToolSession, args: list[str]) -> int:
    if len(args) != 3:
        raise s.usage("pstore")
    found = await _persistent(s, args[0])
    if found is None:
        return 1
    name, flags = found
    db = await _attachNamed(s, name, flags)
    key = strToData(s, args[1], "key")
    value = strToData(s, args[2], "value")
    txn = await _startTransaction(s, db, name, False)
    try:
        await txn.store(key, value)
    except CTDBError:
        s.err(f"Failed to store record for key {args[1]}\n")
        await _cancel(txn)
        return errno.EIO
    await _commit(s, txn, name)
    s.emit("", {"key": args[1], "size": len(value)})
    return 0


@command("pdelete")
async def pdelete(s: ToolSession, args: list[str]) -> int:
    if len(args) != 2:
        raise s.usage("pdelete")
    found = await _persistent(s, args[0])
    if found is None:
        return 1
    name, flags = found
    db = await _attachNamed(s, name, flags)
    key = strToData(s, args[1], "key")
    txn = await _startTransaction(s, db, name, False)
    try:
        await txn.delete(key)
    except CTDBError:
        s.err(f"Failed to delete record for key {args[1]}\n")
        await _cancel(txn)
        return errno.EIO
    await _commit(s, txn, name)
    s.emit("", {"key": args[1], "deleted": True})
    return 0


def _ptransString(
    s: ToolSession, line: str, pos: int
) -> tuple[bytes | None, int] | None:
    """C{ptrans_parse_string}: a quoted string after blanks.

    @return: (bytes, position after it) (None bytes for C{""}), or None
        if the line is ignored.
    """
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    if line[pos : pos + 1] != '"':
        s.err(f"Unsupported input format in {line[pos:]}\n")
        return None
    end = line.find('"', pos + 1)
    if end < 0:
        s.err(f'Unmatched " in input {line[pos:]}\n')
        return None
    text = line[pos + 1 : end]
    if not text:
        return None, end + 1
    try:
        return strToData(s, text, "key"), end + 1
    except CommandFailed:
        return None


def _readFile(path: str) -> str:
    """A small file, read at once (the tool reads it line by line)."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


def _ptransLines(text: str) -> list[str]:
    """C{fgets(line, 1024, file)} over C{text}: lines of at most 1023
    characters, a longer one in pieces."""
    out = []
    for line in text.splitlines(keepends=True):
        while len(line) > 1023:
            out.append(line[:1023])
            line = line[1023:]
        out.append(line)
    return out


@command("ptrans")
async def ptrans(s: ToolSession, args: list[str]) -> int:
    if not 1 <= len(args) <= 2:
        raise s.usage("ptrans")
    found = await _persistent(s, args[0])
    if found is None:
        return 1
    name, flags = found
    if len(args) == 2:
        try:
            text = _readFile(args[1])
        except OSError:
            s.err(f"Failed to open file {args[1]}\n")
            return 1
    else:
        text = s.stdin.read() if s.stdin is not None else ""
    db = await _attachNamed(s, name, flags)
    txn = await _startTransaction(s, db, name, False)
    stored = 0
    for line in _ptransLines(text):
        key = _ptransString(s, line, 0)
        if key is None or key[0] is None:
            continue
        value = _ptransString(s, line, key[1])
        if value is None:
            continue
        try:
            await txn.store(key[0], value[0] or b"")
        except CTDBError:
            s.err("Failed to store record\n")
            await _cancel(txn)
            return errno.EIO
        stored += 1
    await _commit(s, txn, name)
    s.emit("", {"name": name, "stored": stored})
    return 0


@command("setdbreadonly", "setdbsticky")
async def setdbflag(s: ToolSession, args: list[str]) -> int:
    sticky = s.options.args[0] == "setdbsticky"
    which = "setdbsticky" if sticky else "setdbreadonly"
    if len(args) != 1:
        raise s.usage(which)
    found = await s.dbExists(args[0])
    if found is None:
        return 1
    dbId, name, flags = found
    if flags & (R.DB_FLAGS_PERSISTENT | R.DB_FLAGS_REPLICATED):
        s.err(f"{'STICKY' if sticky else 'READONLY'} can be set only on volatile DB\n")
        return 1
    if sticky:
        await s.ctrl("SET_DB_STICKY", C.Control.SET_DB_STICKY, C.encodeU32(dbId))
    else:
        await s.ctrl("SET_DB_READONY", C.Control.SET_DB_READONLY, C.encodeU32(dbId))
    s.emit("", {"name": name, "db_id": dbId, "sticky" if sticky else "readonly": True})
    return 0


@command("detach")
async def detach(s: ToolSession, args: list[str]) -> int:
    if not args:
        raise s.usage("detach")
    reply = await s.ctrl(
        "GET_RECMODE", C.Control.GET_RECMODE, okStatus=lambda v: v >= 0
    )
    if reply.status == N.CTDB_RECOVERY_ACTIVE:
        s.err("Database cannot be detached when recovery is active\n")
        return 1
    nodemap = await s.getNodemap()
    if nodemap is None:
        return 1
    for node in nodemap:
        if node.flags & (N.NODE_FLAGS_DISCONNECTED | N.NODE_FLAGS_DELETED):
            continue
        if node.flags & N.NODE_FLAGS_INACTIVE:
            s.err(
                "Database cannot be detached on inactive (stopped or banned) "
                f"node {node.pnn}\n"
            )
            return 1
        try:
            value = C.decodeU32(
                (
                    await s.ctrl(
                        "GET_TUNABLE",
                        C.Control.GET_TUNABLE,
                        C.encodeGetTunable("AllowClientDBAttach"),
                        destnode=node.pnn,
                    )
                ).data
            )
        except CommandFailed as e:
            raise s.fail(
                f"Unable to get tunable AllowClientDBAttach from node {node.pnn}\n",
                e.code,
            ) from None
        if value == 1:
            s.err(
                f"Database access is still active on node {node.pnn}. "
                "Set AllowclientDBAttach=0 on all nodes.\n"
            )
            return 1
    ret2 = 0
    detached = []
    for arg in args:
        found = await s.dbExists(arg)
        if found is None:
            continue
        dbId, name, flags = found
        if flags & (R.DB_FLAGS_PERSISTENT | R.DB_FLAGS_REPLICATED):
            s.err("Only volatile databases can be detached\n")
            return 1
        ret = await _detach(s, dbId, name)
        if ret != 0:
            s.err(f"Database {name} detach failed\n")
            ret2 = ret
        else:
            detached.append(name)
    s.emit("", {"detached": detached})
    return ret2


async def _detach(s: ToolSession, dbId: int, name: str) -> int:
    """C{ctdb_detach}: DB_DETACH on every connected node."""
    reply = await s.rawControl(C.Control.GET_NODEMAP, b"", s.pnn)
    nodemap = C.decodeNodeMap(reply.data) if reply.status == 0 else []
    ret, _, _ = await s.controlMulti(
        C.Control.DB_DETACH, C.encodeU32(dbId), connectedNodes(nodemap)
    )
    if ret != 0:
        s.err(f"detach: {name} DB_DETACH failed, ret={ret}\n")
    return ret


@command("wipedb")
async def wipedb(s: ToolSession, args: list[str]) -> int:
    if len(args) != 1:
        raise s.usage("wipedb")
    attached = await _attachExisting(s, args[0])
    if attached is None:
        return 1
    _, dbId, name, _ = attached
    nodemap = await s.getNodemap()
    if nodemap is None:
        s.err("Failed to get nodemap\n")
        return errno.ENOMEM
    try:
        generation = await s.getGeneration()
    except CommandFailed as e:
        raise s.fail("Failed to get current generation\n", e.code) from None
    pnns = activeNodes(nodemap)
    if not pnns:
        return errno.ENOMEM
    dbData = C.encodeU32(dbId)
    transdb = R.encodeTransDb(dbId, generation)
    for opcode, data in (
        (C.Control.DB_FREEZE, dbData),
        (C.Control.DB_TRANSACTION_START, transdb),
        (C.Control.WIPE_DATABASE, transdb),
        (C.Control.DB_SET_HEALTHY, dbData),
        (C.Control.DB_TRANSACTION_COMMIT, transdb),
        (C.Control.DB_THAW, dbData),
    ):
        ret, _, _ = await s.controlMulti(opcode, data, pnns)
        if ret != 0:
            try:
                await s.rawControl(
                    C.Control.SET_RECMODE, C.encodeU32(N.CTDB_RECOVERY_ACTIVE), s.pnn
                )
            except CTDBError:
                pass
            return ret
    s.emit(f"Database {name} wiped\n", {"name": name, "wiped": True})
    return 0


# -- node state --------------------------------------------------------------------------


async def _checkFlags(s: ToolSession, desc: str, flag: int, setFlag: bool) -> int:
    """C{check_flags}: 0 (and a message) if the node is already so."""
    nodemap = await s.getNodemap()
    if nodemap is None:
        return 1
    node = next((n for n in nodemap if n.pnn == s.cmdPnn), None)
    isSet = node is not None and bool(node.flags & flag)
    if isSet == setFlag:
        if setFlag:
            s.err(f"Node {s.cmdPnn} is already {desc}\n")
        else:
            s.err(f"Node {s.cmdPnn} is not {desc}\n")
        return 0
    return 1


async def _flagCommand(
    s: ToolSession,
    args: list[str],
    name: str,
    desc: str,
    flag: int,
    setFlag: bool,
    control: tuple[str, int, bytes],
    failed: str,
) -> int:
    if args:
        raise s.usage(name)
    if await _checkFlags(s, desc, flag, setFlag) == 0:
        s.emit("", {"pnn": s.cmdPnn, "changed": False})
        return 0
    try:
        await s.ctrl(control[0], control[1], control[2])
    except CommandFailed as e:
        raise s.fail(failed, e.code) from None
    await s.waitForFlags(flag, setFlag)
    ret = await s.ipreallocate()
    s.emit("", {"pnn": s.cmdPnn, "changed": True})
    return ret


@command("disable")
async def disable(s: ToolSession, args: list[str]) -> int:
    return await _flagCommand(
        s,
        args,
        "disable",
        "disabled",
        N.NODE_FLAGS_PERMANENTLY_DISABLED,
        True,
        ("DISABLE_NODE", C.Control.DISABLE_NODE, b""),
        f"Failed to disable node {s.cmdPnn}\n",
    )


@command("enable")
async def enable(s: ToolSession, args: list[str]) -> int:
    return await _flagCommand(
        s,
        args,
        "enable",
        "disabled",
        N.NODE_FLAGS_PERMANENTLY_DISABLED,
        False,
        ("ENABLE_NODE", C.Control.ENABLE_NODE, b""),
        f"Failed to enable node {s.cmdPnn}\n",
    )


@command("stop")
async def stop(s: ToolSession, args: list[str]) -> int:
    return await _flagCommand(
        s,
        args,
        "stop",
        "stopped",
        N.NODE_FLAGS_STOPPED,
        True,
        ("STOP_NODE", C.Control.STOP_NODE, b""),
        f"Failed to stop node {s.cmdPnn}\n",
    )


@command("continue")
async def continue_(s: ToolSession, args: list[str]) -> int:
    return await _flagCommand(
        s,
        args,
        "continue",
        "stopped",
        N.NODE_FLAGS_STOPPED,
        False,
        ("CONTINUE_NODE", C.Control.CONTINUE_NODE, b""),
        f"Failed to continue stopped node {s.cmdPnn}\n",
    )


@command("ban")
async def ban(s: ToolSession, args: list[str]) -> int:
    if len(args) != 1:
        raise s.usage("ban")
    if await _checkFlags(s, "banned", N.NODE_FLAGS_BANNED, True) == 0:
        s.emit("", {"pnn": s.cmdPnn, "changed": False})
        return 0
    seconds, err = smbStrtoul(args[0])
    if err:
        return err
    seconds &= 0xFFFFFFFF
    if seconds == 0:
        s.err("Ban time cannot be zero\n")
        return errno.EINVAL
    try:
        await s.ctrl(
            "SET_BAN_STATE",
            C.Control.SET_BAN_STATE,
            C.encodeBanState(s.cmdPnn, seconds),
        )
    except CommandFailed as e:
        raise s.fail(f"Failed to ban node {s.cmdPnn}\n", e.code) from None
    await s.waitForFlags(N.NODE_FLAGS_BANNED, True)
    ret = await s.ipreallocate()
    s.emit("", {"pnn": s.cmdPnn, "changed": True, "seconds": seconds})
    return ret


@command("unban")
async def unban(s: ToolSession, args: list[str]) -> int:
    return await _flagCommand(
        s,
        args,
        "unban",
        "banned",
        N.NODE_FLAGS_BANNED,
        False,
        ("SET_BAN_STATE", C.Control.SET_BAN_STATE, C.encodeBanState(s.cmdPnn, 0)),
        f"Failed to unban node {s.cmdPnn}\n",
    )


@command("ipreallocate", "sync")
async def ipreallocate(s: ToolSession, args: list[str]) -> int:
    if args:
        raise s.usage("ipreallocate")
    ret = await s.ipreallocate()
    s.emit("", {"status": ret})
    return ret


@command("shutdown")
async def shutdown(s: ToolSession, args: list[str]) -> int:
    if args:
        raise s.usage("shutdown")
    assert s.client is not None
    conn = s.client.connection
    header = Header(Operation.REQ_CONTROL, s.cmdPnn, conn.pnn, 0x7FFFFFF0)
    packet = ReqControl(header, C.Control.SHUTDOWN, 0, 0, CTDB_CTRL_FLAG_NOREPLY, b"")
    if conn.transport is None:
        raise s.fail(f"Unable to shutdown node {s.cmdPnn}\n", errno.EPIPE)
    conn.transport.write(packet.encode())
    if s.pnn == s.cmdPnn:
        await conn.closed
    s.emit("", {"pnn": s.cmdPnn, "shutdown": True})
    return 0


@command("recover")
async def recover(s: ToolSession, args: list[str]) -> int:
    if args:
        raise s.usage("recover")
    generation = await s.getGeneration()
    try:
        await s.ctrl(
            "SET_RECMODE",
            C.Control.SET_RECMODE,
            C.encodeU32(N.CTDB_RECOVERY_ACTIVE),
        )
    except CommandFailed as e:
        raise s.fail("Failed to set recovery mode active\n", e.code) from None
    while True:
        try:
            nextGeneration = await s.getGeneration()
        except CommandFailed as e:
            raise s.fail("Failed to confirm end of recovery\n", e.code) from None
        if nextGeneration != generation:
            break
        await s.sleep(1)
    s.emit("", {"generation": nextGeneration, "previous_generation": generation})
    return 0


# -- public addresses ---------------------------------------------------------------------


async def publicIPs(s: ToolSession, pnn: int) -> list[P.PublicIP]:
    """GET_PUBLIC_IPS of node C{pnn}: the addresses it can host, each
    with the owner it believes in."""
    reply = await s.ctrl("GET_PUBLIC_IPS", C.Control.GET_PUBLIC_IPS, destnode=pnn)
    return P.decodePublicIPList(reply.data)


def mergePublicIPs(lists: Iterable[tuple[int, list[P.PublicIP]]]) -> list[P.PublicIP]:
    """
    C{get_all_public_ips}'s rule for the lists of (node, its answer): an
    address is a node's only if that node says so; one that no node
    claims is UNKNOWN's.  In the order first seen.
    """
    found: dict[str, P.PublicIP] = {}
    for pnn, ips in lists:
        for ip in ips:
            if ip.pnn == pnn:
                found[ip.address] = ip
            elif ip.address not in found:
                found[ip.address] = P.PublicIP(CTDB_UNKNOWN_PNN, ip.address)
    return list(found.values())


async def _allPublicIPs(s: ToolSession) -> list[P.PublicIP] | None:
    """C{get_all_public_ips}: every active node's list, merged
    (L{mergePublicIPs})."""
    nodemap = await s.getNodemap()
    if nodemap is None:
        return None
    pnns = activeNodes(nodemap)
    if not pnns:
        return None
    lists = []
    for pnn in pnns:
        try:
            lists.append((pnn, await publicIPs(s, pnn)))
        except CommandFailed:
            return None
    return mergePublicIPs(lists)


def addressKey(ip: P.PublicIP) -> tuple[int, bytes]:
    """C{ctdb_sock_addr_cmp}: IPv4 before IPv6, then the address bytes."""
    if ":" in ip.address:
        return 1, socket.inet_pton(socket.AF_INET6, ip.address)
    return 0, socket.inet_pton(socket.AF_INET, ip.address)


@command("ip")
async def ip(s: ToolSession, args: list[str]) -> int:
    if len(args) > 1 or (args and args[0] != "all"):
        raise s.usage("ip")
    doAll = bool(args)
    if doAll:
        found = await _allPublicIPs(s)
        if found is None:
            return 1
        ips = found
    else:
        ips = await publicIPs(s, s.cmdPnn)
    ips.sort(key=addressKey)
    infos: list[P.PublicIPInfo | None] = []
    for entry in ips:
        owner = entry.pnn if doAll else s.cmdPnn
        if owner == CTDB_UNKNOWN_PNN:
            infos.append(None)
            continue
        reply = await s.ctrl(
            "GET_PUBLIC_IP_INFO",
            C.Control.GET_PUBLIC_IP_INFO,
            C.encodeSockAddr(entry.address),
            destnode=owner,
        )
        infos.append(P.PublicIPInfo.decode(reply.data))
    s.emit(
        F.ipText(ips, infos, doAll, s.cmdPnn, s.machine, s.options.verbose, s.sep),
        {
            "pnn": None if doAll else s.cmdPnn,
            "addresses": [F.ipJson(a, i) for a, i in zip(ips, infos)],
        },
    )
    return 0


@command("ipinfo")
async def ipinfo(s: ToolSession, args: list[str]) -> int:
    if len(args) != 1:
        raise s.usage("ipinfo")
    address = parseAddress(args[0])
    if address is None:
        s.err(f"Invalid IP address {args[0]}\n")
        return 1
    try:
        reply = await s.ctrl(
            "GET_PUBLIC_IP_INFO",
            C.Control.GET_PUBLIC_IP_INFO,
            C.encodeSockAddr(address),
        )
    except CommandFailed as e:
        if e.code == -1:
            s.out(f"Node {s.cmdPnn} does not know about IP {args[0]}\n")
        raise
    info = P.PublicIPInfo.decode(reply.data)
    s.emit(F.ipinfoText(s.cmdPnn, info), F.ipinfoJson(s.cmdPnn, info))
    return 0


@command("ifaces")
async def ifaces(s: ToolSession, args: list[str]) -> int:
    if args:
        raise s.usage("ifaces")
    reply = await s.ctrl("GET_IFACES", C.Control.GET_IFACES)
    found, _ = P.decodeInterfaceList(reply.data)
    s.emit(
        F.ifacesText(s.cmdPnn, found, s.machine, s.sep),
        {"pnn": s.cmdPnn, "interfaces": [F.ifaceJson(i) for i in found]},
    )
    return 0


@command("setifacelink")
async def setifacelink(s: ToolSession, args: list[str]) -> int:
    if len(args) != 2:
        raise s.usage("setifacelink")
    if len(args[0].encode()) > 16:
        s.err(f"Interface name '{args[0]}' too long\n")
        return 1
    try:
        reply = await s.ctrl("GET_IFACES", C.Control.GET_IFACES)
    except CommandFailed as e:
        raise s.fail(
            f"Failed to get interface information from node {s.cmdPnn}\n", e.code
        ) from None
    found, _ = P.decodeInterfaceList(reply.data)
    iface = next((i for i in found if i.name == args[0]), None)
    if iface is None:
        s.out(f"Interface {args[0]} not configured on node {s.cmdPnn}\n")
        return 1
    if args[1] not in ("up", "down"):
        raise s.usage("setifacelink")
    link = 1 if args[1] == "up" else 0
    await s.ctrl(
        "SET_IFACE_LINK_STATE",
        C.Control.SET_IFACE_LINK_STATE,
        P.Interface(iface.name, link, 0).encode(),
    )
    s.emit("", {"pnn": s.cmdPnn, "interface": iface.name, "link": args[1]})
    return 0


async def _moveip(s: ToolSession, address: str, pnn: int) -> int:
    assert s.client is not None
    s.client.sendMessage(
        CTDB_BROADCAST_CONNECTED,
        CTDB_SRVID_DISABLE_IP_CHECK,
        C.encodeU32(2 * s.options.timelimit),
    )
    try:
        ips = await publicIPs(s, pnn)
    except CommandFailed as e:
        raise s.fail(f"Failed to get Public IPs from node {pnn}\n", e.code) from None
    if not any(entry.address == address for entry in ips):
        s.err(f"Node {pnn} CANNOT host IP address {address}\n")
        return 1
    nodemap = await s.getNodemap()
    if nodemap is None:
        return 1
    pnns = activeNodes(nodemap, pnn)
    if not pnns:
        s.err("Memory allocation error\n")
        return 1
    pubip = P.PublicIP(pnn, address).encode()
    ret, _, _ = await s.controlMulti(C.Control.RELEASE_IP, pubip, pnns)
    if ret != 0:
        s.err("Failed to release IP on nodes\n")
        return ret
    try:
        await s.ctrl("TAKEOVER_IP", C.Control.TAKEOVER_IP, pubip, destnode=pnn)
    except CommandFailed as e:
        s.err(f"Failed to takeover IP on node {pnn}\n")
        return e.code
    return 0


@command("moveip")
async def moveip(s: ToolSession, args: list[str]) -> int:
    if len(args) != 2:
        raise s.usage("moveip")
    address = parseAddress(args[0])
    if address is None:
        s.err(f"Invalid IP address {args[0]}\n")
        return 1
    pnn, err = smbStrtoul(args[1], 10)
    pnn &= 0xFFFFFFFF
    if pnn == CTDB_UNKNOWN_PNN or err:
        s.err(f"Invalid PNN {args[1]}\n")
        return 1
    ret = 0
    for retries in range(5):
        try:
            ret = await _moveip(s, address, pnn)
        except CommandFailed as e:
            ret = e.code
        if ret == 0:
            break
        await s.sleep(3)
    if ret != 0:
        s.err(f"Failed to move IP {args[0]} to node {pnn}\n")
        return ret
    s.emit("", {"address": address, "pnn": pnn})
    return 0


def _addressMask(text: str) -> tuple[str, int] | None:
    """C{ctdb_sock_addr_mask_from_string}: C{address/bits}."""
    address, slash, bits = text.partition("/")
    if not slash:
        return None
    canonical = parseAddress(address)
    value, used, negative = (0, 0, False)
    value, used, negative = strtoInteger(bits, 10)
    if canonical is None or used == 0 or used != len(bits) or negative:
        return None
    return canonical, value


@command("addip")
async def addip(s: ToolSession, args: list[str]) -> int:
    if len(args) != 2:
        raise s.usage("addip")
    parsed = _addressMask(args[0])
    if parsed is None:
        s.err(f"Invalid IP/Mask {args[0]}\n")
        return 1
    address, mask = parsed
    try:
        ips = await publicIPs(s, s.cmdPnn)
    except CommandFailed:
        s.err(f"Failed to get Public IPs from node {s.cmdPnn}\n")
        return 1
    if any(entry.address == address for entry in ips):
        s.err(f"Node already knows about IP {address}\n")
        return 0
    info = P.AddrInfo(address, mask, args[1]).encode()
    ret = 0
    for retries in range(5):
        try:
            await s.ctrl("ADD_PUBLIC_IP", C.Control.ADD_PUBLIC_IP, info)
            ret = 0
            break
        except CommandFailed as e:
            ret = e.code
        await s.sleep(3)
    if ret != 0:
        s.err(f"Failed to add public IP to node {s.cmdPnn}. Giving up\n")
        return ret
    assert s.client is not None
    s.client.sendMessage(
        CTDB_BROADCAST_CONNECTED, CTDB_SRVID_REBALANCE_NODE, C.encodeU32(s.cmdPnn)
    )
    s.emit("", {"pnn": s.cmdPnn, "address": address, "mask": mask, "iface": args[1]})
    return 0


@command("delip")
async def delip(s: ToolSession, args: list[str]) -> int:
    if len(args) != 1:
        raise s.usage("delip")
    address = parseAddress(args[0])
    if address is None:
        s.err(f"Invalid IP address {args[0]}\n")
        return 1
    try:
        ips = await publicIPs(s, s.cmdPnn)
    except CommandFailed:
        s.err(f"Failed to get Public IPs from node {s.cmdPnn}\n")
        return 1
    if not any(entry.address == address for entry in ips):
        s.err(f"Node does not know about IP address {address}\n")
        return 0
    try:
        await s.ctrl(
            "DEL_PUBLIC_IP",
            C.Control.DEL_PUBLIC_IP,
            P.AddrInfo(address, 0, None).encode(),
        )
    except CommandFailed as e:
        raise s.fail(
            f"Failed to delete public IP from node {s.cmdPnn}\n", e.code
        ) from None
    s.emit("", {"pnn": s.cmdPnn, "address": address})
    return 0


@command("gratarp")
async def gratarp(s: ToolSession, args: list[str]) -> int:
    if len(args) != 2:
        raise s.usage("gratarp")
    address = parseAddress(args[0])
    if address is None:
        s.err(f"Invalid IP address {args[0]}\n")
        return 1
    try:
        await s.ctrl(
            "SEND_GRATUITOUS_ARP",
            C.Control.SEND_GRATUITOUS_ARP,
            P.AddrInfo(address, 0, args[1]).encode(),
        )
    except CommandFailed as e:
        raise s.fail(
            f"Unable to send gratuitous arp from node {s.cmdPnn}\n", e.code
        ) from None
    s.emit("", {"pnn": s.cmdPnn, "address": address, "iface": args[1]})
    return 0


def _endpoint(text: str) -> tuple[str, int] | None:
    """C{ctdb_sock_addr_from_string(text, &addr, true)}: C{a.b.c.d:port}
    or C{[v6]:port}."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep:
        return None
    address = parseAddress(host)
    value, used, negative = strtoInteger(port, 10)
    if address is None or used != len(port) or not port or negative or value > 65535:
        return None
    return address, value


def _endpointText(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@command("gettickles")
async def gettickles(s: ToolSession, args: list[str]) -> int:
    if not 1 <= len(args) <= 2:
        raise s.usage("gettickles")
    port = 0
    if len(args) == 2:
        port, err = smbStrtoul(args[1], 10)
        if err:
            return err
        port &= 0xFFFF
    address = parseAddress(args[0])
    if address is None:
        s.err(f"Invalid IP address {args[0]}\n")
        return 1
    try:
        reply = await s.ctrl(
            "GET_TCP_TICKLE_LIST",
            C.Control.GET_TCP_TICKLE_LIST,
            C.encodeSockAddr(address, port),
        )
    except CommandFailed as e:
        raise s.fail("Failed to get list of connections\n", e.code) from None
    tickles = P.TickleList.decode(reply.data)
    conns = tickles.connections
    if s.machine:
        sep = s.sep
        lines = [f"{sep}Source IP{sep}Port{sep}Destiation IP{sep}Port{sep}\n"]
        lines += [
            f"{sep}{src[0]}{sep}{src[1]}{sep}{dst[0]}{sep}{dst[1]}{sep}\n"
            for src, dst in conns
        ]
    else:
        lines = [
            f"Connections for IP: {tickles.address[0]}\n",
            f"Num connections: {len(conns)}\n",
        ]
        lines += [
            f"SRC: {_endpointText(*src)}   DST: {_endpointText(*dst)}\n"
            for src, dst in conns
        ]
    s.emit(
        "".join(lines),
        {
            "address": tickles.address[0],
            "connections": [
                {"src": _endpointText(*src), "dst": _endpointText(*dst)}
                for src, dst in conns
            ],
        },
    )
    return 0


def readConnectionList(
    text: str,
) -> list[tuple[tuple[str, int], tuple[str, int]]] | None:
    """
    C{ctdb_connection_list_read(..., false)}: C{server client} a line
    (more words are ignored); empty lines and C{#} lines are skipped.

    @return: the (first, second) endpoints of each line, or None (EINVAL).
    """
    out = []
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        words = line.replace("\t", " ").split()
        if len(line.encode()) >= 128 or len(words) < 2:
            return None
        first, second = _endpoint(words[0]), _endpoint(words[1])
        if first is None or second is None:
            return None
        if (":" in first[0]) != (":" in second[0]):
            return None
        out.append((first, second))
    return out


def _sendTcp(s: ToolSession, dest: tuple[str, int], src: tuple[str, int]) -> int:
    """C{ctdb_sys_send_tcp(dest, src, 0, 0, 0)}: a tickle ACK from C{src}
    to C{dest} on a raw socket; 0 or -1, with its messages."""
    packet = tcpPacket(src, dest, 0, 0, False)
    v6 = ":" in dest[0]
    try:
        sock = socket.socket(
            socket.AF_INET6 if v6 else socket.AF_INET,
            socket.SOCK_RAW,
            socket.IPPROTO_RAW,
        )
    except OSError as e:
        if v6:
            s.err("ctdb_sys_send_tcp: Failed to open sending socket\n")
        else:
            s.err(
                "ctdb_sys_send_tcp: Failed to open raw socket "
                f"({os.strerror(e.errno or errno.EPERM)})\n"
            )
        return -1
    with sock:
        try:
            if not v6:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            sent = sock.sendto(packet, (dest[0], 0))
        except OSError as e:
            s.err(f"Failed sendto ({os.strerror(e.errno or errno.EIO)})\n")
            return -1
    if sent != len(packet):
        s.err("ctdb_sys_send_tcp: Failed sendto - didn't send full packet\n")
        return -1
    return 0


@command("tickle")
async def tickle(s: ToolSession, args: list[str]) -> int:
    if len(args) not in (0, 2):
        raise s.usage("tickle")
    if not args:
        conns = readConnectionList(s.stdin.read() if s.stdin is not None else "")
        if conns is None:
            return errno.EINVAL
        failed = sum(1 for a, b in conns if _sendTcp(s, a, b) != 0)
        if failed:
            s.err(f"Failed to send {failed} tickles\n")
            return 1
        s.emit("", {"tickles": len(conns)})
        return 0
    src = _endpoint(args[0])
    if src is None:
        s.err(f"Invalid IP address {args[0]}\n")
        return 1
    dst = _endpoint(args[1])
    if dst is None:
        s.err(f"Invalid IP address {args[1]}\n")
        return 1
    ret = _sendTcp(s, src, dst)
    if ret != 0:
        s.err("Failed to send tickle ack\n")
        return ret
    s.emit("", {"tickles": 1})
    return 0


async def _tickleCommand(
    s: ToolSession, args: list[str], name: str, opcode: int, label: str
) -> int:
    if len(args) not in (0, 2):
        raise s.usage(name)
    adding = name == "addtickle"
    if not args:
        conns = readConnectionList(s.stdin.read() if s.stdin is not None else "")
        if conns is None:
            return errno.EINVAL
        if not conns:
            s.emit("", {"connections": 0})
            return 0
        results: list[Any] = await defer.gatherResults(
            [
                defer.ensureDeferred(s.rawControl(opcode, C.encodeConnection(src, dst)))
                for src, dst in conns
            ],
            consumeErrors=True,
        ).addErrback(lambda f: [])
        failed = len(conns) - sum(1 for r in results if r.status == 0)
        if failed:
            s.err(f"Failed to {'add' if adding else 'remove'} {failed} tickles\n")
            return 1
        s.emit("", {"connections": len(conns)})
        return 0
    src = _endpoint(args[0])
    if src is None:
        s.err(f"Invalid IP address {args[0]}\n")
        return 1
    dst = _endpoint(args[1])
    if dst is None:
        s.err(f"Invalid IP address {args[1]}\n")
        return 1
    try:
        await s.ctrl(label, opcode, C.encodeConnection(src, dst))
    except CommandFailed as e:
        verb = "register" if adding else "unregister"
        raise s.fail(f"Failed to {verb} connection\n", e.code) from None
    s.emit("", {"src": _endpointText(*src), "dst": _endpointText(*dst)})
    return 0


@command("addtickle")
async def addtickle(s: ToolSession, args: list[str]) -> int:
    return await _tickleCommand(
        s,
        args,
        "addtickle",
        C.Control.TCP_ADD_DELAYED_UPDATE,
        "TCP_ADD_DELAYED_UPDATE",
    )


@command("deltickle")
async def deltickle(s: ToolSession, args: list[str]) -> int:
    return await _tickleCommand(
        s, args, "deltickle", C.Control.TCP_REMOVE, "TCP_REMOVE"
    )


# -- helpers that run programs ------------------------------------------------------------


class _HelperProcess(ProcessProtocol):
    def __init__(self) -> None:
        self.ended: defer.Deferred[BaseException] = defer.Deferred()

    def processEnded(self, reason: Failure) -> None:
        # (the reason, not the Failure: a Failure would errback)
        self.ended.callback(reason.value)


async def runHelper(s: ToolSession, what: str, path: str, args: list[str]) -> int:
    """
    C{run_helper}: run C{path} with C{args} on our stdin, stdout and
    stderr; an exit status of 64+N is error N.
    """
    s.stdout.flush()
    s.stderr.flush()
    s.passthrough = True
    proto = _HelperProcess()
    if not os.access(path, os.X_OK):
        code = errno.ENOENT if not os.path.exists(path) else errno.EACCES
        s.err(f"{what} failed with error {code}\n")
        return code
    process = s.reactor.spawnProcess(
        proto,
        path,
        [path, *args],
        env=dict(s.environ),
        childFDs={0: 0, 1: 1, 2: 2},
    )
    try:
        value = await proto.ended
    except defer.CancelledError:
        # the run-time limit: the C tool's alarm ends its children too
        try:
            process.signalProcess("TERM")
        except OSError:
            pass
        raise
    signal = getattr(value, "signal", None)
    if signal is not None:
        s.err(f"{what} terminated with signal {signal}\n")
        return errno.EINTR
    code = getattr(value, "exitCode", 0) or 0
    if 64 <= code < 255:
        s.err(f"{what} failed with error {code - 64}\n")
        return code - 64
    return int(code)


@command("event")
async def event(s: ToolSession, args: list[str]) -> int:
    helper = s.environ.get("CTDB_EVENT_HELPER") or f"{HELPER_BINDIR}/ctdb-event"
    return await runHelper(s, "event daemon helper", helper, args)


@command("scriptstatus")
async def scriptstatus(s: ToolSession, args: list[str]) -> int:
    if len(args) > 1:
        raise s.usage("scriptstatus")
    await event(s, ["status", "legacy", args[0] if args else "monitor"])
    return 0


@command("natgw", "lvs")
async def helperCommand(s: ToolSession, args: list[str]) -> int:
    name = s.options.args[0]
    if len(args) != 1:
        raise s.usage(name)
    if name == "natgw":
        variable, program, what = (
            "CTDB_NATGW_HELPER",
            "ctdb_natgw",
            "NAT gateway helper",
        )
    else:
        variable, program, what = "CTDB_LVS_HELPER", "ctdb_lvs", "LVS helper"
    helper = s.environ.get(variable) or f"{HELPER_BINDIR}/{program}"
    return await runHelper(s, what, helper, args)


@command("checktcpport")
async def checktcpport(s: ToolSession, args: list[str]) -> int:
    if len(args) != 1:
        raise s.usage("chktcpport")
    port = _atoi(args[0]) & 0xFFFF
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as e:
            s.err(f"Failed to bind to TCP port {port}\n")
            return e.errno or 1
    s.emit("", {"port": port, "free": True})
    return 0


# -- backups and raw TDB files --------------------------------------------------------------

#: struct db_header (x86_64): u64 version, i64 timestamp, u64 flags, nbuf,
#: nrec, char name[64]
DB_HEADER = struct.Struct("<QqQQQ64s")
DB_VERSION = 3
#: records per buffer: a buffer is written once it reaches this size
MAX_REC_BUFFER_SIZE = 100 * 1000


def recBufferFile(dbId: int, records: list[R.RecData]) -> bytes:
    """C{ctdb_rec_buffer_write}: db_id, count, size_t buflen, the records."""
    body = b"".join(r.encode() for r in records)
    return struct.pack("<IIQ", dbId, len(records), len(body)) + body


def _backupTime(timestamp: int) -> str:
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(timestamp))


@command("backupdb")
async def backupdb(s: ToolSession, args: list[str]) -> int:
    if len(args) != 2:
        raise s.usage("backupdb")
    attached = await _attachExisting(s, args[0])
    if attached is None:
        return 1
    db, dbId, name, flags = attached
    try:
        fd = os.open(args[1], os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        s.err(f"Failed to open file {args[1]} for writing\n")
        return e.errno or 1
    try:
        os.write(fd, bytes(DB_HEADER.size))
        pending: list[R.RecData] = []
        size = 8
        nbuf = nrec = 0
        for key, value in db.tdb.traverse():
            record = R.RecData(0, key, value)
            pending.append(record)
            size += len(record.encode())
            if size >= MAX_REC_BUFFER_SIZE:
                os.write(fd, recBufferFile(dbId, pending))
                nbuf, nrec = nbuf + 1, nrec + len(pending)
                pending, size = [], 8
        if pending:
            os.write(fd, recBufferFile(dbId, pending))
            nbuf, nrec = nbuf + 1, nrec + len(pending)
        header = DB_HEADER.pack(
            DB_VERSION,
            int(s.reactor.seconds()),
            flags,
            nbuf,
            nrec,
            name.encode()[:63],
        )
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, header)
    except OSError as e:
        s.err(f"Failed to write header to file {args[1]}\n")
        return e.errno or 1
    finally:
        os.close(fd)
    s.emit(
        f"Database backed up to {args[1]}\n",
        {"name": name, "file": args[1], "records": nrec},
    )
    return 0


def _readBackup(
    s: ToolSession, path: str
) -> tuple[tuple[int, int, int, int, int, str], list[R.RecBuffer]] | int:
    """The header and record buffers of a backup file, or an errno."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        s.err(f"Failed to open file {path} for reading\n")
        return e.errno or 1
    # a short read leaves the rest of the C struct as it was: zero here
    head = raw[: DB_HEADER.size].ljust(DB_HEADER.size, b"\0")
    version, timestamp, flags, nbuf, nrec, rawName = DB_HEADER.unpack_from(head)
    if version != DB_VERSION:
        s.err(f"Wrong version of backup file, expected {DB_VERSION}, got {version}\n")
        return errno.EINVAL
    name = rawName[:63].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    buffers = []
    offset = DB_HEADER.size
    for _ in range(nbuf):
        if len(raw) < offset + 16:
            return errno.EIO
        dbId, count, buflen = struct.unpack_from("<IIQ", raw, offset)
        body = raw[offset + 16 : offset + 16 + buflen]
        if len(body) != buflen:
            return errno.EIO
        try:
            buffers.append(R.RecBuffer.decode(struct.pack("<II", dbId, count) + body))
        except MalformedPacket:
            return errno.EIO
        offset += 16 + buflen
    return (version, timestamp, flags, nbuf, nrec, name), buffers


@command("dumpdbbackup")
async def dumpdbbackup(s: ToolSession, args: list[str]) -> int:
    if len(args) != 1:
        raise s.usage("dumpbackup")
    found = _readBackup(s, args[0])
    if isinstance(found, int):
        if found == errno.EIO:
            s.err("Failed to read records\n")
        return found
    (_, timestamp, _, _, _, name), buffers = found
    text = [f"Dumping database {name} from backup @ {_backupTime(timestamp)}\n"]
    records = []
    for buffer in buffers:
        for rec in buffer.records:
            header, data = splitValue(rec.data)
            if header is None:
                s.err("Failed to dump records\n")
                return errno.EINVAL
            records.append((rec.key, header, data))
            text.append(F.recordText(rec.key, header, data))
    text.append(f"Dumped {len(records)} record(s)\n")
    s.emit(
        "".join(text),
        {
            "name": name,
            "timestamp": timestamp,
            "records": [F.recordJson(k, h, d) for k, h, d in records],
        },
    )
    return 0


@command("restoredb")
async def restoredb(s: ToolSession, args: list[str]) -> int:
    if not 1 <= len(args) <= 2:
        raise s.usage("restoredb")
    found = _readBackup(s, args[0])
    if isinstance(found, int):
        return found
    (_, timestamp, flags, _, nrec, savedName), buffers = found
    name = args[1] if len(args) == 2 else savedName
    s.out(f"Restoring database {name} from backup @ {_backupTime(timestamp)}\n")
    try:
        db = await s.attach(name, flags & 0xFF)
    except CommandFailed as e:
        raise s.fail(f"Failed to attach to DB {name}\n", e.code) from None
    nodemap = await s.getNodemap()
    if nodemap is None:
        s.err("Failed to get nodemap\n")
        return errno.ENOMEM
    try:
        generation = await s.getGeneration()
    except CommandFailed as e:
        raise s.fail("Failed to get current generation\n", e.code) from None
    pnns = activeNodes(nodemap)
    if not pnns:
        return errno.ENOMEM
    dbData = C.encodeU32(db.db_id)
    transdb = R.encodeTransDb(db.db_id, generation)
    ret = await _restoreSteps(s, db.db_id, pnns, dbData, transdb, buffers, nrec)
    if ret != 0:
        try:
            await s.rawControl(
                C.Control.SET_RECMODE, C.encodeU32(N.CTDB_RECOVERY_ACTIVE), s.pnn
            )
        except CTDBError:
            pass
        return ret
    s.out(f"Database {name} restored\n")
    s.emit("", {"name": name, "records": nrec})
    return 0


async def _restoreSteps(
    s: ToolSession,
    dbId: int,
    pnns: list[int],
    dbData: bytes,
    transdb: bytes,
    buffers: list[R.RecBuffer],
    nrec: int,
) -> int:
    assert s.client is not None
    for opcode, data in (
        (C.Control.DB_FREEZE, dbData),
        (C.Control.DB_TRANSACTION_START, transdb),
        (C.Control.WIPE_DATABASE, transdb),
        (C.Control.DB_PUSH_START, R.encodePulldbExt(dbId, 0, SRVID_CTDB_PUSHDB)),
    ):
        ret, _, _ = await s.controlMulti(opcode, data, pnns)
        if ret != 0:
            return ret
    for buffer in buffers:
        payload = R.RecBuffer(dbId, buffer.records).encode()
        for pnn in pnns:
            s.client.sendMessage(pnn, SRVID_CTDB_PUSHDB, payload)
    ret, _, replies = await s.controlMulti(C.Control.DB_PUSH_CONFIRM, dbData, pnns)
    if ret != 0:
        return ret
    for pnn in pnns:
        reply = replies.get(pnn)
        if reply is None or len(reply.data) < 4:
            s.err(f"Invalid response from node {pnn}\n")
            return errno.EPROTO
        count = C.decodeU32(reply.data)
        if count != nrec:
            s.err(f"Node {pnn} received {count} of {nrec} records\n")
            return 1
    for opcode, data in (
        (C.Control.DB_SET_HEALTHY, dbData),
        (C.Control.DB_TRANSACTION_COMMIT, transdb),
        (C.Control.DB_THAW, dbData),
    ):
        ret, _, _ = await s.controlMulti(opcode, data, pnns)
        if ret != 0:
            return ret
    return 0


def _openTdb(s: ToolSession, path: str) -> Any:
    try:
        return TDB(path, 0, 0, os.O_RDWR, 0)
    except CTDBError:
        s.err(f"Failed to open TDB file {path}\n")
        return None


@command("tfetch")
async def tfetch(s: ToolSession, args: list[str]) -> int:
    if not 2 <= len(args) <= 3:
        raise s.usage("tfetch")
    tdb = _openTdb(s, args[0])
    if tdb is None:
        return 1
    try:
        key = strToData(s, args[1], "key")
        value = tdb.fetch(key)
    finally:
        tdb.close()
    if value is None:
        s.err(f"No record for key {args[1]}\n")
        return 1
    if len(value) < 24:
        s.err(f"Invalid record for key {args[1]}\n")
        return 1
    if len(args) == 3:
        try:
            fd = os.open(args[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError:
            s.err(f"Failed to open output file {args[2]}\n")
        else:
            try:
                os.write(fd, value)
            except OSError:
                s.err("Failed to write record to file\n")
            finally:
                os.close(fd)
    header, data = splitValue(value)
    assert header is not None
    s.emit(
        F.ltdbHeaderText(header) + F.tdbDataText("data", data),
        F.recordJson(key, header, data),
    )
    return 0


@command("tstore")
async def tstore(s: ToolSession, args: list[str]) -> int:
    if not 3 <= len(args) <= 5:
        raise s.usage("tstore")
    tdb = _openTdb(s, args[0])
    if tdb is None:
        return 1
    try:
        key = strToData(s, args[1], "key")
        value = strToData(s, args[2], "value")
        rsn = dmaster = 0
        if len(args) > 3:
            rsn, err = smbStrtoul(args[3])
            if err:
                return err
        if len(args) > 4:
            dmaster = _atoi(args[4]) & 0xFFFFFFFF
        # (the tool reads flags from a sixth argument it never accepts)
        header = LtdbHeader(rsn=rsn, dmaster=dmaster)
        try:
            tdb.storev(key, [header.encode(), value])
        except CTDBError:
            s.err(f"Failed to write record {args[1]} to file {args[0]}\n")
            return -1
    finally:
        tdb.close()
    s.emit("", {"key": args[1], "rsn": rsn, "dmaster": dmaster})
    return 0


# -- reloading nodes and addresses ----------------------------------------------------------


async def _disable(s: ToolSession, what: int, timeout: int, pnns: list[int]) -> int:
    """
    C{disable_takeover_runs}/C{disable_recoveries}: ask each node's
    recovery daemon (message C{what}) to hold off for C{timeout} seconds
    (0: resume) and wait, at most C{TIMEOUT()}, for every node's answer.

    @return: 0, or 1 if a node refused.  (The C tool takes the wait
    running out as success, and so does this.)
    """
    assert s.client is not None
    srvid = s.nextSrvid()
    replied: set[int] = set()
    status: list[int] = []
    done: defer.Deferred[None] = defer.Deferred()

    def handler(sid: int, data: bytes) -> None:
        if len(data) != 4 or done.called:
            return
        value = C.decodeI32(data)
        if value < 0:
            status.append(value)
            done.callback(None)
            return
        replied.add(value)
        if all(p in replied for p in pnns):
            done.callback(None)

    try:
        await s.client.registerSrvid(srvid, handler)
    except Exception:  # noqa: BLE001 - the C tool returns the errno silently
        return errno.EIO
    try:
        message = encodeDisableMessage(s.pnn, srvid, timeout)
        for pnn in pnns:
            s.client.sendMessage(pnn, what, message)
        await s.waitFor(done)
    finally:
        try:
            await s.client.deregisterSrvid(srvid, handler)
        except Exception:  # noqa: BLE001, S110 - the answers are in already
            pass
    return 1 if status else 0


@command("reloadips")
async def reloadips(s: ToolSession, args: list[str]) -> int:
    if len(args) > 1:
        raise s.usage("reloadips")
    nodemap = await s.getNodemap()
    if nodemap is None:
        return 1
    targets = await s.parseNodestring(args[0] if args else None)
    if targets is None:
        return 1
    pnns = connectedNodes(nodemap)
    if not pnns:
        s.err("Memory allocation error\n")
        return 1
    pnns2 = activeNodes(targets)
    if not pnns2:
        s.err("Memory allocation error\n")
        return 1
    limit = 2 * s.options.timelimit
    if await _disable(s, CTDB_SRVID_DISABLE_TAKEOVER_RUNS, limit, pnns) != 0:
        s.err("Failed to disable takeover runs\n")
        return 1
    ret, _, _ = await s.controlMulti(C.Control.RELOAD_PUBLIC_IPS, b"", pnns2)
    if ret != 0:
        s.err("Failed to reload IPs on some nodes.\n")
    if await _disable(s, CTDB_SRVID_DISABLE_TAKEOVER_RUNS, 0, pnns) != 0:
        s.err("Failed to enable takeover runs\n")
        return 1
    ret = await s.ipreallocate()
    s.emit("", {"reloaded": pnns2, "status": ret})
    return ret


def _sameNodes(a: list[N.NodeAndFlags], b: list[N.NodeAndFlags]) -> bool:
    """C{nodemap_identical}."""
    return len(a) == len(b) and all(
        x.pnn == y.pnn and x.flags == y.flags and x.address == y.address
        for x, y in zip(a, b)
    )


def _nodeChanges(
    s: ToolSession, current: list[N.NodeAndFlags], wanted: list[N.NodeAndFlags]
) -> bool | None:
    """C{check_node_file_changes}: print what changes; None if it must not.

    @return: whether anything is to be reloaded.
    """
    reload = False
    failed = False
    deleted = N.NODE_FLAGS_DELETED
    for i, node in enumerate(current):
        if i >= len(wanted):
            s.err(f"Node {node.pnn} ({node.address}) missing from nodes file\n")
            failed = True
            continue
        new = wanted[i]
        if node.flags & deleted and new.flags & deleted:
            continue
        if not node.flags & deleted and not new.flags & deleted:
            if node.address != new.address:
                s.err(
                    f"Node {node.pnn} has changed IP address "
                    f"(was {node.address}, now {new.address})\n"
                )
                failed = True
            elif node.flags & N.NODE_FLAGS_DISCONNECTED:
                s.err(
                    f"WARNING: Node {node.pnn} is disconnected. "
                    "You MUST fix this node manually!\n"
                )
            continue
        if new.flags & deleted:
            s.out(f"Node {node.pnn} is DELETED\n")
            reload = True
            if not node.flags & N.NODE_FLAGS_DISCONNECTED:
                s.err(f"ERROR: Node {node.pnn} is still connected\n")
                failed = True
            continue
        if node.flags & deleted:
            s.out(f"Node {node.pnn} is UNDELETED\n")
            reload = True
    if failed:
        s.err("ERROR: Nodes will not be reloaded due to previous error\n")
        return None
    for new in wanted[len(current) :]:
        s.out(f"Node {new.pnn} is NEW\n")
        reload = True
    return reload


@command("reloadnodes")
async def reloadnodes(s: ToolSession, args: list[str]) -> int:
    nodemap = await s.getNodemap()
    if nodemap is None:
        return 1
    entries = s.readNodesFile()
    if entries is None:
        return 1
    fromFile = [
        N.NodeAndFlags(e.pnn, N.NODE_FLAGS_DELETED if e.deleted else 0, e.address)
        for e in entries
    ]
    for node in nodemap:
        if node.flags & N.NODE_FLAGS_DISCONNECTED:
            continue
        try:
            reply = await s.ctrl(
                "GET_NODES_FILE", C.Control.GET_NODES_FILE, destnode=node.pnn
            )
        except CommandFailed as e:
            raise s.fail(
                f"ERROR: Failed to get nodes file from node {node.pnn}\n", e.code
            ) from None
        if not _sameNodes(fromFile, C.decodeNodeMap(reply.data)):
            s.err(
                f"ERROR: Nodes file on node {node.pnn} differs from current node "
                f"({s.pnn})\n"
            )
            return 1
    reload = _nodeChanges(s, nodemap, fromFile)
    if reload is None:
        return 1
    if not reload:
        s.err("No change in nodes file, skipping unnecessary reload\n")
        s.emit("", {"reloaded": False})
        return 0
    pnns = connectedNodes(nodemap)
    if not pnns:
        s.err("Memory allocation error\n")
        return 1
    limit = 2 * s.options.timelimit
    if await _disable(s, CTDB_SRVID_DISABLE_RECOVERIES, limit, pnns) != 0:
        s.err("Failed to disable recoveries\n")
        return 1
    ret, errors, _ = await s.controlMulti(C.Control.RELOAD_NODES_FILE, b"", pnns)
    if ret != 0:
        for pnn in pnns:
            if pnn in errors:
                s.err(f"Node {pnn} failed to reload nodes\n")
        s.err("You MUST fix failed nodes manually!\n")
    if await _disable(s, CTDB_SRVID_DISABLE_RECOVERIES, 0, pnns) != 0:
        s.err("Failed to enable recoveries\n")
        return 1
    s.emit("", {"reloaded": True})
    return 0
