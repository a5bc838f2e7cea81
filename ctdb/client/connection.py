# -*- test-case-name: tests.integration.test_client_api -*-
"""
A connection to one ctdbd, ours or Samba's (L{connect}, L{CTDBClient}):
controls, messages, and the databases attached through it.
"""

from __future__ import annotations

import itertools
import os

from twisted.internet import defer

from ctdb.client.database import Database
from ctdb.client.glock import ServerId
from ctdb.errors import ClientError
from ctdb.interfaces import ICTDBReactor
from ctdb.protocols import controls as C
from ctdb.protocols import records as R
from ctdb.protocols.client import ClientConnection, MessageHandler, connectClient
from ctdb.protocols.controls import Control
from ctdb.protocols.packet import CTDB_CURRENT_NODE, ReplyControl
from ctdb.protocols.srvids import CTDB_SRVID_CLIENT_RANGE


class CTDBClient:
    """
    A connection to one ctdbd (ours or Samba's) and the databases attached
    through it.  Get one with L{connect}.

    @ivar connection: the underlying L{ClientConnection}.
    @ivar lockTimeout: bound (seconds) on one fetch-lock or g_lock.
    @ivar commitRetries: TRANS3_COMMIT retries while recovery refuses it.
    """

    def __init__(self, connection: ClientConnection, *, reactor: ICTDBReactor) -> None:
        self.connection = connection
        self.reactor = reactor
        self.lockTimeout = 60.0
        self.commitRetries = 100
        self._dbs: dict[str, Database] = {}
        self._srvids = itertools.count(1)

    @property
    def pnn(self) -> int:
        """This node's PNN (from the GET_PNN handshake)."""
        return self.connection.pnn

    def serverId(self, taskId: int) -> ServerId:
        """C{ctdb_client_get_server_id}: {pid, task_id, vnn, task_id << 32 | pid}."""
        pid = os.getpid()
        return ServerId(pid, taskId, self.pnn, ((taskId << 32) | pid) & (2**64 - 1))

    # -- controls and messages ---------------------------------------------------------

    def control(
        self,
        opcode: int,
        data: bytes = b"",
        *,
        destnode: int = CTDB_CURRENT_NODE,
        srvid: int = 0,
        flags: int = 0,
        timeout: float | None = None,
    ) -> defer.Deferred[ReplyControl]:
        """
        Send any control; fires with the L{ReplyControl} (C{status},
        C{data}, C{errmsg}) whatever its status.
        """
        return self.connection.control(
            opcode, data, destnode=destnode, srvid=srvid, flags=flags, timeout=timeout
        )

    async def controlOk(
        self,
        opcode: int,
        data: bytes = b"",
        *,
        destnode: int = CTDB_CURRENT_NODE,
        srvid: int = 0,
        flags: int = 0,
        timeout: float | None = None,
    ) -> bytes:
        """Send a control; return its data, or raise L{ControlFailed}."""
        return await self.connection.controlOk(
            opcode, data, destnode=destnode, srvid=srvid, flags=flags, timeout=timeout
        )

    async def registerSrvid(self, srvid: int, handler: MessageHandler) -> None:
        """Call C{handler(srvid, data)} for each message sent to C{srvid} here."""
        await self.connection.registerSrvid(srvid, handler)

    async def deregisterSrvid(
        self, srvid: int, handler: MessageHandler | None = None
    ) -> None:
        """Remove C{handler} (or all handlers) of C{srvid}."""
        await self.connection.deregisterSrvid(srvid, handler)

    def sendMessage(self, pnn: int, srvid: int, data: bytes = b"") -> None:
        """Send a message to the clients registered for C{srvid} on node C{pnn}."""
        self.connection.sendMessage(pnn, srvid, data)

    def _newTraverseSrvid(self) -> int:
        seq = next(self._srvids) & 0xFFFFFF
        return CTDB_SRVID_CLIENT_RANGE | (seq << 32) | (os.getpid() & 0xFFFFFFFF)

    # -- databases ----------------------------------------------------------------------

    async def attach(
        self, name: str, persistent: bool = False, replicated: bool = False
    ) -> Database:
        """
        Attach a database (C{ctdb_attach}): DB_ATTACH / _PERSISTENT /
        _REPLICATED, GETDBPATH, DB_GET_HEALTH (an unhealthy database is
        refused), DB_OPEN_FLAGS, then open the local TDB with those flags.
        Attaching a name again returns the same L{Database}.

        @raise ControlFailed: the daemon refused.
        @raise ClientError: the database is unhealthy.
        """
        if persistent and replicated:
            raise ValueError("a database is persistent or replicated, not both")
        db = self._dbs.get(name)
        if db is not None:
            return db
        if persistent:
            opcode, flags = Control.DB_ATTACH_PERSISTENT, R.DB_FLAGS_PERSISTENT
        elif replicated:
            opcode, flags = Control.DB_ATTACH_REPLICATED, R.DB_FLAGS_REPLICATED
        else:
            opcode, flags = Control.DB_ATTACH, 0
        local = self.pnn
        db_id = C.decodeU32(
            await self.controlOk(opcode, C.encodeString(name), destnode=local)
        )
        path = C.decodeString(
            await self.controlOk(Control.GETDBPATH, C.encodeU32(db_id), destnode=local)
        )
        health = await self.controlOk(
            Control.DB_GET_HEALTH, C.encodeU32(db_id), destnode=local
        )
        reason = health.rstrip(b"\0").decode(errors="replace")
        if reason:
            raise ClientError(f"attach: {name} database unhealthy ({reason})")
        tdbFlags = C.decodeI32(
            await self.controlOk(
                Control.DB_OPEN_FLAGS, C.encodeU32(db_id), destnode=local
            )
        )
        db = self._dbs.get(name)  # a concurrent attach may have finished first
        if db is None:
            db = self._dbs[name] = Database(self, name, db_id, flags, path, tdbFlags)
        return db

    def databases(self) -> list[Database]:
        """The databases attached through this client."""
        return list(self._dbs.values())

    async def close(self) -> None:
        """Close every database file and the connection."""
        for db in list(self._dbs.values()):
            db.close()
        conn = self.connection
        if not conn.closed.called:
            conn.close()
            await conn.closed


async def connect(
    reactor: ICTDBReactor, socketPath: str, *, timeout: float = 60.0
) -> CTDBClient:
    """
    Connect to the ctdbd listening on the unix socket C{socketPath}.

    @param timeout: per-request timeout of the connection (seconds).
    """
    conn = await connectClient(reactor, socketPath, timeout=timeout)
    return CTDBClient(conn, reactor=reactor)
