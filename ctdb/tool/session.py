# -*- test-case-name: tests.tool.test_commands -*-
"""
One run of the tool (C{struct ctdb_context} of Samba 4.17's
C{ctdb/tools/ctdb.c}): the connection to the local daemon, the node the
command is for (C{-n}), the leader as the LEADER messages say, the cached
node map, and the helpers the commands share (C{get_nodemap},
C{verify_pnn}, C{parse_nodestring}, C{db_exists}, C{ctdb_attach},
C{ipreallocate}, C{wait_for_flags}, C{get_generation}), each printing
what Samba's tool and client library print on failure.

A failure that ends the command raises L{CommandFailed} with the status
the C tool would return; the messages are already written by then.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from twisted.internet import defer, task

from ctdb.client import CTDBClient, Database, connect
from ctdb.errors import (
    CommandFailed,
    ConnectionClosed,
    ControlTimeout,
    CTDBError,
    MalformedPacket,
)
from ctdb.interfaces import ICTDBReactor
from ctdb.protocols import controls as C
from ctdb.protocols import nodestate as N
from ctdb.protocols import records as R
from ctdb.protocols.packet import (
    CTDB_BROADCAST_CONNECTED,
    CTDB_UNKNOWN_PNN,
    ReplyControl,
)
from ctdb.protocols.publicips import decodeInterfaceList
from ctdb.protocols.srvids import (
    CTDB_SRVID_LEADER,
    CTDB_SRVID_TAKEOVER_RUN,
    CTDB_SRVID_TOOL_RANGE,
    encodeSrvidMessage,
)
from ctdb.tool import formats as F
from ctdb.tool.options import ToolOptions, commandUsage, smbStrtoul

#: SRVID_CTDB_TOOL: the tool's own srvids, one per wait
SRVID_CTDB_TOOL = CTDB_SRVID_TOOL_RANGE | 0x0001000000000000
#: SRVID_CTDB_PUSHDB: where restoredb sends the records
SRVID_CTDB_PUSHDB = CTDB_SRVID_TOOL_RANGE | 0x0002000000000000

#: the longest unix socket path (C{sizeof(sun_path)} less the NUL)
_SUN_PATH_MAX = 107


def exitStatus(ret: int) -> int:
    """What the shell sees of the C tool's C{return ret} (C{-1} is 1)."""
    return 1 if ret == -1 else ret & 0xFF


def parseAddress(text: str) -> str | None:
    """
    C{ctdb_sock_addr_from_string(text, &addr, false)} then
    C{ctdb_sock_addr_to_string}: the address in its canonical spelling,
    or None if C{text} is no IPv4 or IPv6 address.
    """
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_ntop(family, socket.inet_pton(family, text))
        except (OSError, ValueError):
            continue
    return None


@dataclass(frozen=True, slots=True)
class NodesFileEntry:
    pnn: int
    address: str
    deleted: bool


def parseNodesFile(text: str) -> list[NodesFileEntry] | str:
    """
    C{ctdb_read_nodes_file}: one address a line, leading and trailing
    blanks dropped, empty lines skipped, a C{#} line a deleted node.

    @return: the nodes, or the line that is not an address.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # file_lines_load: the text after the last newline
    while lines and lines[-1] == "":
        lines.pop()
    nodes: list[NodesFileEntry] = []
    for line in lines:
        node = line.lstrip(" \t")
        while len(node) > 1 and node[-1] in " \t":
            node = node[:-1]
        if not node:
            continue
        if node.startswith("#"):
            nodes.append(NodesFileEntry(len(nodes), "0.0.0.0", True))
            continue
        address = parseAddress(node)
        if address is None:
            return node
        nodes.append(NodesFileEntry(len(nodes), address, False))
    return nodes


def haveAddress(address: str) -> bool:
    """C{ctdb_sys_have_ip}: can a socket bind to C{address} here?"""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


def _errnoOf(exc: BaseException) -> int:
    """The errno a C client would have got for C{exc}."""
    if isinstance(exc, ControlTimeout | defer.TimeoutError | TimeoutError):
        return errno.ETIMEDOUT
    if isinstance(exc, ConnectionClosed):
        return errno.EPIPE
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    inner = getattr(exc, "osError", None)
    if isinstance(inner, OSError) and inner.errno:
        return inner.errno
    text = str(exc)
    for name in ("ENOENT", "ECONNREFUSED", "EACCES", "ENOTSOCK"):
        code = int(getattr(errno, name))
        if os.strerror(code) in text:
            return code
    if isinstance(exc, MalformedPacket):
        return errno.EPROTO
    return errno.EIO


class ToolSession:
    """
    One run of the tool: where it writes, its options, and (once
    L{connect}ed) the daemon.

    @ivar pnn: the local node (C{ctdb->pnn}).
    @ivar cmdPnn: the node the command is for (C{ctdb->cmd_pnn}).
    @ivar leaderPnn: the leader the last LEADER message named.
    """

    def __init__(
        self,
        reactor: ICTDBReactor,
        options: ToolOptions,
        *,
        stdout: TextIO,
        stderr: TextIO,
        environ: Mapping[str, str],
        stdin: TextIO | None = None,
    ) -> None:
        self.reactor = reactor
        self.options = options
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = stdin
        self.environ = environ
        self.client: CTDBClient | None = None
        self.pnn = CTDB_UNKNOWN_PNN
        self.cmdPnn = CTDB_UNKNOWN_PNN
        self.leaderPnn = CTDB_UNKNOWN_PNN
        self.srvid = 0
        self.nodemap: list[N.NodeAndFlags] | None = None
        self._dbs: dict[str, Database] = {}
        #: --json: the document to print, and the messages said meanwhile
        self.document: Any = None
        self.messages: list[str] = []
        #: a helper program wrote the output itself (event, natgw, lvs)
        self.passthrough = False
        self._leaderWaiters: list[defer.Deferred[None]] = []

    # -- output -----------------------------------------------------------------

    @property
    def json(self) -> bool:
        return self.options.json

    @property
    def machine(self) -> bool:
        return self.options.machinereadable

    @property
    def sep(self) -> str:
        return self.options.sep

    def out(self, text: str) -> None:
        """C{printf}: to stdout (with --json, kept for the error document)."""
        if self.json:
            self.messages.append(text)
            return
        self.stdout.write(text)
        self.stdout.flush()

    def err(self, text: str) -> None:
        """C{fprintf(stderr, ...)} and the client library's C{DEBUG(DEBUG_ERR)}."""
        if self.json:
            self.messages.append(text)
        self.stderr.write(text)
        self.stderr.flush()

    def emit(self, text: str, document: Any) -> None:
        """The command's result: C{text} normally, C{document} with --json."""
        if self.json:
            self.document = document
        else:
            self.stdout.write(text)
            self.stdout.flush()

    def printDocument(self, status: int) -> None:
        """With --json, the one document: the result, or the failure."""
        if not self.json or self.passthrough:
            return
        if self.document is not None and (status == 0 or not self.messages):
            doc = self.document
        elif status != 0:
            lines = "".join(self.messages).splitlines()
            doc = {"error": {"status": status, "messages": lines}}
        else:
            doc = {}
        self.stdout.write(json.dumps(doc, indent=2) + "\n")
        self.stdout.flush()

    def usage(self, command: str | None) -> CommandFailed:
        """C{usage(command)}: print the usage; raise what it returns."""
        self.out(commandUsage(command))
        return CommandFailed(1, "usage")

    def fail(self, text: str | None = None, ret: int = 1) -> CommandFailed:
        """Print C{text} on stderr; the exception to raise for C{ret}."""
        if text is not None:
            self.err(text)
        return CommandFailed(ret, text or "")

    # -- time -----------------------------------------------------------------

    def timeout(self) -> float | None:
        """
        C{TIMEOUT()} for one request: C{-t} seconds; a negative C{-t} is
        C's huge unsigned wait (no timer here); 0 fails at once (C{None}).
        """
        limit = self.options.timelimit
        if limit == 0:
            return None
        return 0.0 if limit < 0 else float(limit)

    def sleep(self, seconds: float) -> defer.Deferred[None]:
        return task.deferLater(self.reactor, seconds, lambda: None)

    async def waitFor(self, d: defer.Deferred[Any]) -> bool:
        """
        C{ctdb_client_wait_timeout}: wait for C{d} at most C{TIMEOUT()}.

        @return: whether C{d} fired in time.
        """
        limit = self.timeout()
        if limit is None:
            return d.called
        if limit:
            timer = self.reactor.callLater(limit, d.cancel)
        try:
            await d
        except defer.CancelledError:
            return False
        finally:
            if limit and timer.active():
                timer.cancel()
        return True

    # -- the connection ------------------------------------------------------

    def socketPath(self) -> str:
        """C{path_socket("ctdbd")} (or --socket)."""
        if self.options.socket is not None:
            return self.options.socket
        base = self.environ.get("CTDB_BASE")
        override = self.environ.get("CTDB_SOCKET")
        if override is not None:
            return override
        if "CTDB_TEST_MODE" in self.environ and base:
            return os.path.join(base, "run", "ctdbd.socket")
        return "/run/ctdb/ctdbd.socket"

    def nodesFilePath(self) -> str:
        base = self.environ.get("CTDB_BASE")
        return os.path.join("/etc/ctdb" if base is None else base, "nodes")

    def readNodesFile(self) -> list[NodesFileEntry] | None:
        """C{read_nodes_file}, with its messages."""
        path = self.nodesFilePath()
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError:
            self.err(f'Failed to read nodes file "{path}"\n')
            return None
        nodes = parseNodesFile(text)
        if isinstance(nodes, str):
            self.err(f"Invalid IP address {nodes}\n")
            self.err(f'Failed to read nodes file "{path}"\n')
            return None
        return nodes

    def findNodeXpnn(self) -> bool:
        """C{find_node_xpnn}: is an address of the nodes file local?"""
        nodes = self.readNodesFile()
        if nodes is None:
            return False
        for node in nodes:
            if not node.deleted and haveAddress(node.address):
                return True
        self.err("Failed to detect PNN of the current node.\n")
        return False

    async def connect(self) -> None:
        """
        C{ctdb_client_init} and the rest of C{process_command}'s set-up:
        the local pnn, the tool's srvids, C{-n} checked, the LEADER
        handler.

        @raise CommandFailed: as the C tool fails (status 1).
        """
        path = self.socketPath()
        try:
            if len(path.encode()) > _SUN_PATH_MAX:
                self.err(f"socket path too long, len={len(path.encode())}\n")
                raise OSError(errno.ENAMETOOLONG, "socket path too long")
            timeout = self.timeout()
            self.client = await connect(
                self.reactor, path, timeout=60.0 if not timeout else timeout
            )
        except CTDBError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure to connect ends the run
            if not isinstance(e, OSError) or e.errno != errno.ENAMETOOLONG:
                self.err(f"connect() failed, errno={_errnoOf(e)}\n")
            self.err(f"Failed to connect to CTDB daemon ({path})\n")
            if not self.findNodeXpnn():
                self.err("Is this node part of CTDB cluster?\n")
            raise CommandFailed(1, "connect") from None
        self.pnn = self.client.pnn
        self.srvid = SRVID_CTDB_TOOL | ((os.getpid() & 0xFFFF) << 16)
        if self.options.pnn != -1:
            if not await self.verifyPnn(self.options.pnn):
                raise CommandFailed(1, "verify_pnn")
            self.cmdPnn = self.options.pnn
        else:
            self.cmdPnn = self.pnn

    async def registerLeaderHandler(self) -> None:
        """The LEADER handler of C{process_command}."""
        assert self.client is not None
        try:
            await self.client.registerSrvid(CTDB_SRVID_LEADER, self._leaderMessage)
        except Exception as e:  # noqa: BLE001 - reported as the tool does
            self._controlFailed("REGISTER_SRVID", self.pnn, e)
            raise self.fail("Failed to setup leader handler\n") from None

    def _leaderMessage(self, srvid: int, data: bytes) -> None:
        if len(data) < 4:
            return
        self.leaderPnn = C.decodeU32(data)
        waiters, self._leaderWaiters = self._leaderWaiters, []
        for d in waiters:
            if not d.called:
                d.callback(None)

    async def getLeader(self) -> int:
        """C{get_leader}: wait (C{TIMEOUT()}) for a LEADER message;
        none means UNKNOWN."""
        if self.leaderPnn == CTDB_UNKNOWN_PNN:
            d: defer.Deferred[None] = defer.Deferred()
            self._leaderWaiters.append(d)
            await self.waitFor(d)
            if d in self._leaderWaiters:
                self._leaderWaiters.remove(d)
        return self.leaderPnn

    async def close(self) -> None:
        for db in self._dbs.values():
            db.close()
        self._dbs.clear()
        if self.client is not None:
            await self.client.close()

    # -- controls ----------------------------------------------------------------

    def _controlFailed(self, name: str, destnode: int, exc: BaseException) -> int:
        ret = _errnoOf(exc)
        self.err(f"Control {name} failed to node {destnode}, ret={ret}\n")
        return ret

    async def rawControl(
        self,
        opcode: int,
        data: bytes = b"",
        destnode: int | None = None,
        *,
        srvid: int = 0,
        flags: int = 0,
    ) -> ReplyControl:
        """Send a control with the tool's time limit; the reply, whatever
        its status.  A transport failure raises (its errno in L{_errnoOf})."""
        assert self.client is not None
        dest = self.cmdPnn if destnode is None else destnode
        limit = self.timeout()
        if limit is None:
            raise ControlTimeout("the time limit is 0")
        return await self.client.control(
            opcode, data, destnode=dest, srvid=srvid, flags=flags, timeout=limit
        )

    async def ctrl(
        self,
        name: str,
        opcode: int,
        data: bytes = b"",
        destnode: int | None = None,
        *,
        srvid: int = 0,
        flags: int = 0,
        okStatus: Callable[[int], bool] = lambda status: status == 0,
    ) -> ReplyControl:
        """
        C{ctdb_ctrl_<name>}: send, and on failure print the client
        library's "Control NAME failed ..." and raise L{CommandFailed}
        with its C{ret} (an errno, or the reply's status).
        """
        dest = self.cmdPnn if destnode is None else destnode
        try:
            reply = await self.rawControl(opcode, data, dest, srvid=srvid, flags=flags)
        except defer.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - every transport failure is an errno
            raise CommandFailed(self._controlFailed(name, dest, e), name) from None
        if not okStatus(reply.status):
            self.err(f"Control {name} failed, ret={reply.status}\n")
            raise CommandFailed(reply.status, name)
        return reply

    async def controlMulti(
        self, opcode: int, data: bytes, pnns: Iterable[int]
    ) -> tuple[int, dict[int, int], dict[int, ReplyControl]]:
        """
        C{ctdb_client_control_multi}: the same control to each node at
        once.

        @return: (the first failure's ret or 0, ret by node, replies by node).
        """
        targets = list(pnns)

        async def one(pnn: int) -> tuple[int, int, ReplyControl | None]:
            try:
                reply = await self.rawControl(opcode, data, pnn)
            except defer.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - each node's failure is counted
                return pnn, _errnoOf(e), None
            return pnn, reply.status, reply

        results = await defer.gatherResults(
            [defer.ensureDeferred(one(pnn)) for pnn in targets], consumeErrors=True
        )
        first = 0
        errors: dict[int, int] = {}
        replies: dict[int, ReplyControl] = {}
        for pnn, ret, reply in results:
            if reply is not None:
                replies[pnn] = reply
            if ret != 0:
                errors[pnn] = ret
                if first == 0:
                    first = ret
        return first, errors, replies

    # -- node map ----------------------------------------------------------------

    async def getNodemap(self, force: bool = False) -> list[N.NodeAndFlags] | None:
        """C{get_nodemap}: the node map (cached), from the next node if
        this one is banned."""
        if force:
            self.nodemap = None
        if self.nodemap is not None:
            return self.nodemap
        current = self.pnn
        while True:
            try:
                reply = await self.ctrl(
                    "GET_NODEMAP", C.Control.GET_NODEMAP, destnode=current
                )
                nodemap = C.decodeNodeMap(reply.data)
            except CommandFailed:
                self.err(f"Failed to get nodemap from node {current}\n")
                return None
            node = _byPnn(nodemap, current)
            if node is None or not node.flags & N.NODE_FLAGS_BANNED:
                break
            while True:
                current = (current + 1) % len(nodemap)
                node = _byPnn(nodemap, current)
                if node is not None and not node.flags & (
                    N.NODE_FLAGS_DELETED | N.NODE_FLAGS_DISCONNECTED
                ):
                    break
                if current == self.pnn:
                    break
            if current == self.pnn:
                self.err("Warning: All nodes are banned.\n")
                return None
        self.nodemap = nodemap
        return nodemap

    async def verifyPnn(self, pnn: int) -> bool:
        """C{verify_pnn}."""
        nodemap = await self.getNodemap()
        if nodemap is None:
            return False
        node = _byPnn(nodemap, pnn & 0xFFFFFFFF)
        if node is None:
            self.err(f"Node {pnn & 0xFFFFFFFF} does not exist\n")
            return False
        if node.flags & (N.NODE_FLAGS_DISCONNECTED | N.NODE_FLAGS_DELETED):
            self.err(f"Node {node.pnn} has status {F.prettyFlags(node.flags)}\n")
            return False
        return True

    async def parseNodestring(self, text: str | None) -> list[N.NodeAndFlags] | None:
        """C{parse_nodestring}: this node (C{None}), C{all}, or a list."""
        nodemap = await self.getNodemap()
        if nodemap is None:
            return None
        if text is None:
            return [n for n in nodemap if n.pnn == self.cmdPnn][:1]
        if text == "all":
            return list(nodemap)
        out = []
        for token in (t for t in text.split(",") if t):
            value, err = smbStrtoul(token)
            if err:
                self.err(f"Invalid node {token}\n")
                return None
            node = _byPnn(nodemap, value & 0xFFFFFFFF)
            if node is None:
                self.err(f"Node {value & 0xFFFFFFFF} does not exist\n")
                return None
            out.append(node)
        return out

    async def nodemapUnknown(
        self, nodemap: list[N.NodeAndFlags]
    ) -> list[N.NodeAndFlags] | None:
        """C{get_nodemap_unknown}: before the first recovery is over, the
        other connected nodes are UNKNOWN."""
        try:
            reply = await self.ctrl(
                "GET_RUNSTATE", C.Control.GET_RUNSTATE, destnode=self.cmdPnn
            )
            runstate = C.decodeU32(reply.data)
        except (CommandFailed, MalformedPacket):
            self.out("Unable to get runstate")
            return None
        out = []
        for node in nodemap:
            if (
                not node.flags & N.NODE_FLAGS_DELETED
                and runstate <= C.RunState.FIRST_RECOVERY
                and not node.flags & N.NODE_FLAGS_DISCONNECTED
                and node.pnn != self.cmdPnn
            ):
                node = N.NodeAndFlags(
                    node.pnn, F.NODE_FLAGS_UNKNOWN, node.address, node.port
                )
            out.append(node)
        return out

    async def partiallyOnline(self, node: N.NodeAndFlags) -> bool:
        """C{partially_online}: a healthy node with a link down."""
        if node.flags != 0:
            return False
        try:
            reply = await self.ctrl(
                "GET_IFACES", C.Control.GET_IFACES, destnode=node.pnn
            )
            ifaces, _ = decodeInterfaceList(reply.data)
        except (CommandFailed, MalformedPacket):
            return False
        return any(i.link_state == 0 for i in ifaces)

    async def nodeLines(self, nodemap: list[N.NodeAndFlags]) -> list[F.NodeLine]:
        return [
            F.NodeLine(
                n.pnn,
                n.address,
                n.flags,
                False
                if n.flags & N.NODE_FLAGS_DELETED
                else await self.partiallyOnline(n),
            )
            for n in nodemap
        ]

    def nextSrvid(self) -> int:
        self.srvid += 1
        return self.srvid

    # -- databases --------------------------------------------------------------

    async def dbExists(self, arg: str) -> tuple[int, str, int] | None:
        """
        C{db_exists}: the database named or numbered (C{0x...}) C{arg} on
        this node.

        @return: (db_id, name, flags), or None (told why, if the tool does).
        """
        try:
            reply = await self.ctrl("GET_DBMAP", C.Control.GET_DBMAP, destnode=self.pnn)
            dbmap = R.decodeDbMap(reply.data)
        except (CommandFailed, MalformedPacket):
            return None
        found: R.DbId | None = None
        name: str | None = None
        if arg.startswith("0x"):
            value, err = smbStrtoul(arg)
            if err:
                return None
            for db in dbmap:
                if db.db_id == value & 0xFFFFFFFF:
                    found = db
                    break
        else:
            for db in dbmap:
                try:
                    reply = await self.ctrl(
                        "GET_DBNAME",
                        C.Control.GET_DBNAME,
                        C.encodeU32(db.db_id),
                        destnode=self.pnn,
                    )
                except CommandFailed:
                    break
                if C.decodeString(reply.data) == arg:
                    found, name = db, arg
                    break
        if found is None:
            self.err(f"No database matching '{arg}' found\n")
            return None
        if name is None:
            try:
                reply = await self.ctrl(
                    "GET_DBNAME",
                    C.Control.GET_DBNAME,
                    C.encodeU32(found.db_id),
                    destnode=self.pnn,
                )
            except CommandFailed:
                return None
            name = C.decodeString(reply.data)
        return found.db_id, name, found.flags

    async def attach(self, name: str, flags: int) -> Database:
        """
        C{ctdb_attach}: DB_ATTACH(_PERSISTENT|_REPLICATED), GETDBPATH,
        DB_GET_HEALTH, the READONLY/STICKY flags on every connected node,
        DB_OPEN_FLAGS, then the local TDB file.

        @raise CommandFailed: with C{ctdb_attach}'s messages.
        """
        assert self.client is not None
        db = self._dbs.get(name)
        if db is not None:
            return db
        if flags & R.DB_FLAGS_PERSISTENT:
            what, opcode = "DB_ATTACH_PERSISTENT", C.Control.DB_ATTACH_PERSISTENT
        elif flags & R.DB_FLAGS_REPLICATED:
            what, opcode = "DB_ATTACH_REPLICATED", C.Control.DB_ATTACH_REPLICATED
        else:
            what, opcode = "DB_ATTACH", C.Control.DB_ATTACH
        local = self.pnn

        async def step(opcode: int, data: bytes, failed: str) -> ReplyControl:
            try:
                reply = await self.rawControl(opcode, data, local)
            except defer.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - an errno, as ctdb_attach says
                ret = _errnoOf(e)
                raise self.fail(failed.format(ret=ret), ret) from None
            return reply

        reply = await step(
            opcode, C.encodeString(name), f"attach: {name} {what} failed, ret={{ret}}\n"
        )
        if reply.status != 0:
            raise self.fail(
                f"attach: {name} failed to get db_id, ret={reply.status}\n",
                reply.status,
            )
        dbId = C.decodeU32(reply.data)
        data = C.encodeU32(dbId)
        reply = await step(
            C.Control.GETDBPATH, data, f"attach: {name} GETDBPATH failed, ret={{ret}}\n"
        )
        if reply.status != 0:
            raise self.fail(
                f"attach: {name} GETDBPATH parse failed, ret={reply.status}\n",
                reply.status,
            )
        path = C.decodeString(reply.data)
        reply = await step(
            C.Control.DB_GET_HEALTH,
            data,
            f"attach: {name} DB_GET_HEALTH failed, ret={{ret}}\n",
        )
        if reply.status != 0:
            raise self.fail(
                f"attach: {name} DB_GET_HEALTH parse failed, ret={reply.status}\n",
                reply.status,
            )
        reason = reply.data.rstrip(b"\0").decode(errors="replace")
        if reason:
            raise self.fail(
                f"attach: {name} database unhealthy ({reason})\n", errno.EIO
            )
        if flags & (R.DB_FLAGS_READONLY | R.DB_FLAGS_STICKY):
            await self._setDbFlags(name, dbId, flags)
        reply = await step(
            C.Control.DB_OPEN_FLAGS,
            data,
            f"attach: {name} DB_OPEN_FLAGS failed, ret={{ret}}\n",
        )
        if reply.status != 0:
            raise self.fail(
                f"attach: {name} DB_OPEN_FLAGS parse failed, ret={reply.status}\n",
                reply.status,
            )
        tdbFlags = C.decodeI32(reply.data)
        try:
            db = Database(self.client, name, dbId, flags, path, tdbFlags)
        except CTDBError:
            raise self.fail(
                f"attach: {name} tdb_wrap_open failed\n", errno.EIO
            ) from None
        self._dbs[name] = db
        return db

    async def _setDbFlags(self, name: str, dbId: int, flags: int) -> None:
        """C{ctdb_set_db_flags}: SET_DB_READONLY/STICKY on connected nodes."""
        try:
            reply = await self.rawControl(C.Control.GET_NODEMAP, b"", self.pnn)
            if reply.status != 0:
                raise CommandFailed(reply.status)
            nodemap = C.decodeNodeMap(reply.data)
        except defer.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - reported as ctdb_attach does
            ret = e.code if isinstance(e, CommandFailed) else _errnoOf(e)
            self.err(f"set_db_flags: 0x{dbId:08x} GET_NODEMAP failed, ret={ret}\n")
            raise self.fail(
                f"attach: {name} set db flags 0x{flags:08x} failed\n", ret
            ) from None
        pnns = [n.pnn for n in nodemap if not n.flags & N.NODE_FLAGS_DISCONNECTED]
        for flag, opcode, label in (
            (R.DB_FLAGS_READONLY, C.Control.SET_DB_READONLY, "SET_DB_READONLY"),
            (R.DB_FLAGS_STICKY, C.Control.SET_DB_STICKY, "SET_DB_STICKY"),
        ):
            if not flags & flag:
                continue
            ret, _, _ = await self.controlMulti(opcode, C.encodeU32(dbId), pnns)
            if ret != 0:
                self.err(f"set_db_flags: 0x{dbId:08x} {label} failed, ret={ret}\n")
                raise self.fail(
                    f"attach: {name} set db flags 0x{flags:08x} failed\n", ret
                )

    # -- waits ---------------------------------------------------------------------

    async def waitForFlags(self, flag: int, setFlag: bool) -> None:
        """C{wait_for_flags}: poll the node map every second until
        C{cmdPnn}'s C{flag} is as wanted."""
        while True:
            nodemap = await self.getNodemap(force=True)
            if nodemap is None:
                self.err("Failed to get nodemap, trying again\n")
                await self.sleep(1)
                continue
            node = _byPnn(nodemap, self.cmdPnn)
            isSet = node is not None and bool(node.flags & flag)
            if isSet == setFlag:
                return
            await self.sleep(1)

    async def ipreallocate(self) -> int:
        """
        C{ipreallocate}: ask the leader for a takeover run (TAKEOVER_RUN to
        every connected node, the reply to our own srvid), again after
        each C{TIMEOUT()} without an answer.

        @return: 0, or the (negative) status the leader answered.
        """
        assert self.client is not None
        srvid = self.nextSrvid()
        result: list[int] = []
        waiting: list[defer.Deferred[None]] = []

        def handler(sid: int, data: bytes) -> None:
            if len(data) != 4 or result:
                return
            result.append(C.decodeI32(data))
            for d in waiting:
                if not d.called:
                    d.callback(None)

        try:
            await self.client.registerSrvid(srvid, handler)
        except Exception as e:  # noqa: BLE001 - reported as the tool does
            return self._controlFailed("REGISTER_SRVID", self.pnn, e)
        try:
            message = encodeSrvidMessage(self.pnn, srvid)
            while not result:
                self.client.sendMessage(
                    CTDB_BROADCAST_CONNECTED, CTDB_SRVID_TAKEOVER_RUN, message
                )
                wait: defer.Deferred[None] = defer.Deferred()
                waiting[:] = [wait]
                if await self.waitFor(wait):
                    break
                if self.timeout() is None:
                    # -t 0: no answer is ever in time; ask again a little later
                    await self.sleep(0.1)
        finally:
            try:
                await self.client.deregisterSrvid(srvid, handler)
            except Exception:  # noqa: BLE001, S110 - the answer is in already
                pass
        return min(0, result[0])

    async def getGeneration(self) -> int:
        """
        C{get_generation}: the leader's generation once it is out of
        recovery and the generation is valid.

        @raise CommandFailed: with C{get_generation}'s messages.
        """
        while True:
            leader = await self.getLeader()
            try:
                reply = await self.ctrl(
                    "GET_RECMODE",
                    C.Control.GET_RECMODE,
                    destnode=leader,
                    okStatus=lambda s: s >= 0,
                )
            except CommandFailed as e:
                raise self.fail(
                    f"Failed to get recovery mode from node {leader}\n", e.code
                ) from None
            if reply.status == N.CTDB_RECOVERY_ACTIVE:
                await self.sleep(1)
                continue
            try:
                reply = await self.ctrl(
                    "GETVNNMAP", C.Control.GETVNNMAP, destnode=leader
                )
            except CommandFailed as e:
                raise self.fail(
                    f"Failed to get generation from node {leader}\n", e.code
                ) from None
            vnnmap = N.VnnMap.decode(reply.data)
            if vnnmap.generation == F.INVALID_GENERATION:
                await self.sleep(1)
                continue
            return vnnmap.generation


def _byPnn(nodemap: list[N.NodeAndFlags], pnn: int) -> N.NodeAndFlags | None:
    for node in nodemap:
        if node.pnn == pnn:
            return node
    return None


def activeNodes(
    nodemap: list[N.NodeAndFlags], exclude: int = CTDB_UNKNOWN_PNN
) -> list[int]:
    """C{list_of_active_nodes}: not INACTIVE, and not C{exclude}."""
    return [
        n.pnn
        for n in nodemap
        if not n.flags & N.NODE_FLAGS_INACTIVE and n.pnn != exclude
    ]


def connectedNodes(
    nodemap: list[N.NodeAndFlags], exclude: int = CTDB_UNKNOWN_PNN
) -> list[int]:
    """C{list_of_connected_nodes}: not DISCONNECTED (nor deleted)."""
    return [
        n.pnn
        for n in nodemap
        if not n.flags & (N.NODE_FLAGS_DISCONNECTED | N.NODE_FLAGS_DELETED)
        and n.pnn != exclude
    ]
