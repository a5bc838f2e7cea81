# -*- test-case-name: tests.databases.test_manager -*-
"""
Cluster-wide traverse (ctdb_traverse.c): TRAVERSE_START(_EXT) from a
client, TRAVERSE_ALL(_EXT) to every active node, their records streamed
back as TRAVERSE_DATA and handed to the client's srvid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from ctdb.database.ltdb import (
    splitValue,
)
from ctdb.databases.base import STEP_RECORDS, RecordStorage
from ctdb.databases.model import (
    Database,
    _Traverse,
)
from ctdb.interfaces import (
    IClientConnection,
)
from ctdb.protocols import packet as P
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control

if TYPE_CHECKING:
    from ctdb.daemon.core import ControlResult


class Traverses(RecordStorage):
    """Traverses of a database across the cluster."""

    # -- traverse -----------------------------------------------------------------------

    def control_TRAVERSE_START_EXT(
        self, req: P.ReqControl, client: IClientConnection | None
    ) -> ControlResult:
        start = R.TraverseStartExt.decode(req.data)
        return self._startTraverse(
            start.db_id, start.reqid, start.srvid, start.withemptyrecords, client
        )

    def control_TRAVERSE_START(
        self, req: P.ReqControl, client: IClientConnection | None
    ) -> ControlResult:
        start = R.TraverseStart.decode(req.data)
        return self._startTraverse(start.db_id, start.reqid, start.srvid, False, client)

    def _startTraverse(
        self,
        db_id: int,
        clientReqid: int,
        srvid: int,
        withEmpty: bool,
        client: IClientConnection | None,
    ) -> ControlResult:
        db = self.byId.get(db_id)
        if db is None:
            return (-1, b"", b"Unknown database")
        self.traverseAll(db, clientReqid, srvid, withEmpty, client=client)
        return (0, b"", b"")

    def traverseAll(
        self,
        db: Database,
        clientReqid: int,
        srvid: int,
        withEmpty: bool,
        *,
        client: IClientConnection | None = None,
        onRecord: Callable[[R.RecData], None] | None = None,
    ) -> defer.Deferred[int]:
        """ctdb_daemon_traverse_all: every active node (volatile) or one node
        (persistent) sends us its records; each goes to the client's srvid."""
        reqid = self.daemon.nextReqid()
        if db.volatile:
            # CTDB_BROADCAST_ACTIVE in ctdbd: every node that is not
            # inactive, in the vnn map (lmaster) or not.
            dests = self.daemon.activeLmasters() or [self.pnn]
            dest = -1
        else:
            dest = (
                self.pnn
                if self.pnn in self.daemon.vnnMap.map or not self.daemon.vnnMap.map
                else self.daemon.vnnMap.map[0]
            )
            dests = [dest]
        expected = len(
            [d for d in dests if d == self.pnn or self.daemon.isConnected(d)]
        )
        done: defer.Deferred[int] = defer.Deferred()
        trav = _Traverse(
            db, client, clientReqid, srvid, expected, onRecord=onRecord, done=done
        )
        self._traverses[reqid] = trav
        trav.timer = self.daemon.reactor.callLater(
            self.daemon.tunables.TraverseTimeout, self._traverseTimeout, reqid
        )
        payload = R.TraverseAll(
            db.db_id, reqid, self.pnn, clientReqid, srvid, withEmpty
        ).encode(ext=True)
        for pnn in dests if dest == -1 else [dest]:
            if pnn == self.pnn or self.daemon.isConnected(pnn):
                self.daemon.sendControl(
                    pnn,
                    Control.TRAVERSE_ALL_EXT,
                    payload,
                    flags=P.CTDB_CTRL_FLAG_NOREPLY,
                )
        return done

    def _traverseTimeout(self, reqid: int) -> None:
        trav = self._traverses.pop(reqid, None)
        if trav is not None:
            self.daemon.stats.bump("timeouts.traverse")
            self.log.error("traverse of {db} timed out", db=trav.db.name)
            self._traverseEnd(trav)

    def _traverseEnd(self, trav: _Traverse) -> None:
        if trav.timer is not None and trav.timer.active():
            trav.timer.cancel()
        if trav.client is not None:
            self._toClient(trav, R.RecData(trav.clientReqid, b"", b""))
        if trav.done is not None and not trav.done.called:
            trav.done.callback(trav.records)

    def _toClient(self, trav: _Traverse, rec: R.RecData) -> None:
        if trav.client is None:
            return
        header = P.Header(
            P.Operation.REQ_MESSAGE,
            trav.client.client_id,
            self.pnn,
            0,
            self.daemon.vnnMap.generation,
        )
        self.daemon.sendToClient(
            trav.client, P.ReqMessage(header, trav.srvid, rec.encode())
        )

    def _traverseAllControl(self, req: P.ReqControl) -> Any:
        t = R.TraverseAll.decode(req.data)
        db = self.byId.get(t.db_id)
        if db is None:
            return (-1, b"", b"Unknown database")
        items = self.readAll(db)
        if isinstance(items, defer.Deferred):
            return items.addCallback(lambda got: self._traversed(db, t, got))
        return self._traversed(db, t, items)

    def _traversed(
        self, db: Database, t: R.TraverseAll, items: list[tuple[bytes, bytes]]
    ) -> Any:
        sending = defer.Deferred.fromCoroutine(self._sendTraversed(db, t, items))
        # A small traverse is sent without waiting: answer at once then.
        done: list[ControlResult] = []
        sending.addCallback(done.append)
        return done[0] if done else sending

    async def _sendTraversed(
        self, db: Database, t: R.TraverseAll, items: list[tuple[bytes, bytes]]
    ) -> ControlResult:
        """One TRAVERSE_DATA per record to the node that asked, then the
        empty record that ends this node's part; the event loop gets a
        turn after every L{STEP_RECORDS} records."""
        for n, (key, value) in enumerate(items):
            if n and not n % STEP_RECORDS:
                await self.turn()
            header, data = splitValue(value)
            if header is None:
                continue
            if db.volatile:
                if not t.withemptyrecords and not data:
                    continue
                if header.dmaster != self.pnn:
                    continue
            self.daemon.sendControl(
                t.pnn,
                Control.TRAVERSE_DATA,
                R.encodeRecData(t.reqid, key, value),
                flags=P.CTDB_CTRL_FLAG_NOREPLY,
            )
        self.daemon.sendControl(
            t.pnn,
            Control.TRAVERSE_DATA,
            R.encodeRecData(t.reqid, b"", b""),
            flags=P.CTDB_CTRL_FLAG_NOREPLY,
        )
        return (0, b"", b"")

    def control_TRAVERSE_ALL_EXT(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        return self._traverseAllControl(req)

    def control_TRAVERSE_ALL(self, req: P.ReqControl, client: object) -> ControlResult:
        return self._traverseAllControl(req)

    def control_TRAVERSE_DATA(self, req: P.ReqControl, client: object) -> ControlResult:
        rec, _ = R.RecData.decode(req.data)
        trav = self._traverses.get(rec.reqid)
        if trav is None:
            return (-1, b"", b"Unknown traverse")
        if not rec.key and not rec.data:
            trav.ends += 1
            if trav.ends >= trav.expected:
                del self._traverses[rec.reqid]
                self._traverseEnd(trav)
            return (0, b"", b"")
        trav.records += 1
        if trav.onRecord is not None:
            trav.onRecord(rec)
        self._toClient(trav, R.RecData(trav.clientReqid, rec.key, rec.data))
        return (0, b"", b"")

    def control_TRAVERSE_KILL(self, req: P.ReqControl, client: object) -> ControlResult:
        start = R.TraverseStart.decode(req.data)
        for reqid, trav in list(self._traverses.items()):
            if trav.clientReqid == start.reqid and trav.srvid == start.srvid:
                del self._traverses[reqid]
                if trav.timer is not None and trav.timer.active():
                    trav.timer.cancel()
        return (0, b"", b"")
