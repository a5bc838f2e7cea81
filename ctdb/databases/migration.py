# -*- test-case-name: tests.databases.test_manager -*-
"""
The volatile record protocol (ctdb_call.c): a client's REQ_CALL, REQ_CALL
between nodes, REQ_DMASTER / REPLY_DMASTER moving a record to the node that
asked for it (with the rsn rules of ctdb_ltdb_store_server), REPLY_CALL and
REPLY_ERROR, and the calls resent after a recovery.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import defer

from ctdb.database.ltdb import (
    CTDB_REC_FLAG_MIGRATED_WITH_DATA,
    CTDB_REC_FLAG_VACUUM_MIGRATED,
    CTDB_REC_RO_FLAGS,
    CTDB_REC_RO_HAVE_DELEGATIONS,
    CTDB_REC_RO_HAVE_READONLY,
    CTDB_REC_RO_REVOKE_COMPLETE,
    CTDB_REC_RO_REVOKING_READONLY,
    LTDB_HEADER_SIZE,
    LtdbHeader,
    splitValue,
)
from ctdb.databases.model import (
    _OP_REPLY_CALL,
    _OP_REPLY_DMASTER,
    _OP_REPLY_ERROR,
    _OP_REQ_CALL,
    _OP_REQ_DMASTER,
    Database,
    _PendingCall,
    trackingAdd,
    updateHotKeys,
)
from ctdb.databases.readonly import ReadonlyRecords
from ctdb.interfaces import (
    IClientConnection,
)
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P

#: the calls that callLocal runs (and stores the record after)
_STORING_FUNCS = frozenset(
    (P.CTDB_NULL_FUNC, P.CTDB_FETCH_FUNC, P.CTDB_FETCH_WITH_HEADER_FUNC)
)


class RecordMigration(ReadonlyRecords):
    """Record migration between nodes (the record protocol)."""

    def clientCall(self, client: IClientConnection, pkt: P.ReqCall) -> None:
        """daemon_request_call_from_client."""
        keeper = self.daemon.statsKeeper
        keeper.callStarted()
        db = self.byId.get(pkt.db_id)
        if db is None:
            keeper.callEnded(None)
            header = P.Header(
                P.Operation.REPLY_CALL, pkt.header.srcnode, self.pnn, pkt.header.reqid
            )
            self.log.error(
                "Unknown database in request. db_id==0x{db_id:08x}", db_id=pkt.db_id
            )
            self.daemon.sendToClient(client, P.ReplyCall(header, -1, b""))
            return
        if not pkt.key:
            keeper.callEnded(None)
            header = P.Header(
                P.Operation.REPLY_CALL, pkt.header.srcnode, self.pnn, pkt.header.reqid
            )
            self.daemon.sendToClient(client, P.ReplyCall(header, -1, b""))
            return
        waited: list[bool] = []

        def locked() -> None:
            if waited:
                # ctdbd runs a call that waited for its record lock again
                # from the start, and counts it again
                keeper.callStarted()
            self._clientCallLocked(db, client, pkt)

        def onWait() -> None:
            # daemon_request_call_from_client: "will retry later"; a call
            # waiting for its record lock is not pending
            waited.append(True)
            keeper.callEnded(None)

        self.withLock(db, pkt.key, locked, onWait=onWait)

    def _clientCallLocked(
        self, db: Database, client: IClientConnection, pkt: P.ReqCall
    ) -> None:
        key = pkt.key
        daemon = self.daemon
        pnn = daemon.pnn
        keeper = daemon.statsKeeper
        header, data = self.fetch(db, key)
        flags = pkt.flags
        # Don't do READONLY if we don't have a tracking database.
        if flags & P.CTDB_WANT_READONLY and not db.readonly:
            flags &= ~P.CTDB_WANT_READONLY
        if header.flags & CTDB_REC_RO_REVOKE_COMPLETE:
            header = self._revokeComplete(db, key, header, data)
        if header.flags & CTDB_REC_RO_REVOKING_READONLY:
            # A revoke is under way: wait for it.
            keeper.callEnded(None)
            self._deferForRevoke(
                db,
                key,
                bool(flags & P.CTDB_WANT_READONLY),
                self._clientCallAgain(client, pkt),
            )
            return
        if (
            header.dmaster == pnn
            and not flags & P.CTDB_WANT_READONLY
            and header.flags
            & (CTDB_REC_RO_HAVE_DELEGATIONS | CTDB_REC_RO_HAVE_READONLY)
        ):
            # A write to a record with read-only copies out: revoke them first.
            keeper.callEnded(None)
            self._revoke(db, key, header, data)
            self._deferForRevoke(db, key, False, self._clientCallAgain(client, pkt))
            return
        callid = pkt.callid
        if flags & P.CTDB_WANT_READONLY:
            # Ask for the record with its header, to store the read-only
            # copy; the reply is cut back to what the client asked for.
            callid = P.CTDB_FETCH_WITH_HEADER_FUNC
        pending = _PendingCall(
            db,
            key,
            pkt.callid,
            flags,
            pkt.calldata,
            client,
            pkt.header.reqid,
            pkt.header.srcnode,
            sentCallid=callid,
            started=daemon.reactor.seconds(),
        )
        if header.dmaster == pnn:
            status, reply = self.callLocal(db, key, callid, header, data)
            self._finish(pending, status, reply)
            return
        self._sendCall(pending, header.dmaster)

    def _clientCallAgain(
        self, client: IClientConnection, pkt: P.ReqCall
    ) -> Callable[[], None]:
        """The client's call, made again from the start later (after a
        revoke), if the client is still connected."""

        def again() -> None:
            if self.daemon.clients.get(client.client_id) is client:
                self.clientCall(client, pkt)

        return again

    def _sendCall(self, pending: _PendingCall, dmaster: int) -> None:
        """Send C{pending} as a REQ_CALL to the record's dmaster (as far as
        we know it) under the current generation; its reply finds it by
        the new reqid."""
        daemon = self.daemon
        reqid = daemon.nextReqid()
        self._calls[reqid] = pending
        hdr = P.Header(
            _OP_REQ_CALL,
            dmaster,
            daemon.pnn,
            reqid,
            daemon.vnnMap.generation,
        )
        daemon.queuePacket(
            P.ReqCall(
                hdr,
                pending.flags,
                pending.db.db_id,
                pending.wireCallid,
                0,
                pending.key,
                pending.calldata,
            )
        )

    def migrateRecord(
        self, db: Database, key: bytes, flags: int
    ) -> defer.Deferred[int]:
        """Migrate a record here with a NULL_FUNC call, as a client's
        ctdb_call_send would (the vacuum fetch: fetch_queue_traverse);
        fires with the call's status."""
        done: defer.Deferred[int] = defer.Deferred()

        def run() -> None:
            header, data = self.fetch(db, key)
            pending = _PendingCall(
                db,
                key,
                P.CTDB_NULL_FUNC,
                flags,
                b"",
                None,
                0,
                self.pnn,
                onDone=done.callback,
            )
            if header.dmaster == self.pnn:
                status, _ = self.callLocal(db, key, P.CTDB_NULL_FUNC, header, data)
                self._finish(pending, status, b"")
                return
            self._sendCall(pending, header.dmaster)

        self.withLock(db, key, run)
        return done

    def callLocal(
        self,
        db: Database,
        key: bytes,
        callid: int,
        header: LtdbHeader,
        data: bytes,
        lmaster: int | None = None,
    ) -> tuple[int, bytes]:
        """ctdb_call_local with updatetdb: run a built-in function, then
        write the record back (the caller holds the lock), which as
        ctdb_ltdb_store_server bumps the rsn of a record we are dmaster of."""
        if callid == P.CTDB_NULL_FUNC:
            reply = b""
        elif callid == P.CTDB_FETCH_FUNC:
            reply = data
        elif callid == P.CTDB_FETCH_WITH_HEADER_FUNC:
            reply = header.encode() + data
        else:
            return -1, b""
        self.storeRecord(db, key, header, data, lmaster)
        return 0, reply

    def _finish(self, pending: _PendingCall, status: int, data: bytes) -> None:
        if pending.started is not None:
            self.daemon.statsKeeper.callEnded(pending.started)
        if pending.onDone is not None:
            # after the record's lock is released
            self.daemon.reactor.callLater(0, pending.onDone, status)
        if pending.client is None:
            return
        if (
            pending.wireCallid == P.CTDB_FETCH_WITH_HEADER_FUNC
            and pending.callid == P.CTDB_FETCH_FUNC
        ):
            # daemon_call_from_client_callback: the client asked for a
            # plain FETCH that we turned into FETCH_WITH_HEADER.
            data = data[LTDB_HEADER_SIZE:]
        daemon = self.daemon
        header = P.Header(
            _OP_REPLY_CALL,
            pending.clientSrcnode,
            daemon.pnn,
            pending.clientReqid,
            daemon.vnnMap.generation,
        )
        reply = P.ReplyCall(header, status, data)
        if self._afterUnlock is not None:
            self._afterUnlock.append((pending.client, reply))
        else:
            daemon.sendToClient(pending.client, reply)

    def _replyCall(self, pkt: P.ReplyCall) -> None:
        """ctdb_reply_call: a read-only copy that comes back with its header
        is stored locally (if newer than ours) before the client hears."""
        pending = self._calls.pop(pkt.header.reqid, None)
        if pending is None:
            return
        if pending.wireCallid != P.CTDB_FETCH_WITH_HEADER_FUNC:
            self._finish(pending, pkt.status, pkt.data)
            return
        roHeader, roData = splitValue(pkt.data)
        if (
            roHeader is None
            or not roHeader.flags & CTDB_REC_RO_HAVE_READONLY
            or pending.db.db_id not in self.byId
        ):
            self._finish(pending, pkt.status, pkt.data)
            return
        db = pending.db

        def run() -> None:
            old, _ = self.fetch(db, pending.key)
            if roHeader.rsn > old.rsn:
                self.storeRecord(db, pending.key, roHeader, roData)
            self._finish(pending, pkt.status, pkt.data)

        self.withLock(db, pending.key, run)

    def nodeCallPacket(self, pnn: int, pkt: P.Packet) -> None:
        op = pkt.header.operation
        if op == _OP_REQ_CALL:
            assert isinstance(pkt, P.ReqCall)
            self.requestCall(pkt)
        elif op == _OP_REQ_DMASTER:
            assert isinstance(pkt, P.ReqDmaster)
            self.requestDmaster(pkt)
        elif op == _OP_REPLY_DMASTER:
            assert isinstance(pkt, P.ReplyDmaster)
            self.replyDmaster(pkt)
        elif op == _OP_REPLY_CALL:
            assert isinstance(pkt, P.ReplyCall)
            self._replyCall(pkt)
        elif op == _OP_REPLY_ERROR:
            assert isinstance(pkt, P.ReplyError)
            pending = self._calls.pop(pkt.header.reqid, None)
            self.log.error(
                "REPLY_ERROR from node {pnn}: {msg}",
                pnn=pnn,
                msg=pkt.msg.decode(errors="replace"),
            )
            if pending is not None:
                self._finish(pending, -1, b"")

    def _unknownDatabase(self, hdr: P.Header, db_id: int) -> None:
        """A call packet for a database this node has not attached."""
        if self.daemon.recmode == C.CTDB_RECOVERY_ACTIVE:
            # A node that (re)joins attaches the database during the
            # recovery, after the new vnn map: the sender is in the same
            # recovery and resends its calls when it ends.
            self.log.debug(
                "dropping a call for db 0x{db_id:08x} during recovery", db_id=db_id
            )
            return
        self._error(hdr, f"Unknown database in request. db_id==0x{db_id:08x}")

    def requestCall(self, c: P.ReqCall) -> None:
        """ctdb_request_call."""
        db = self.byId.get(c.db_id)
        if db is None:
            self._unknownDatabase(c.header, c.db_id)
            return
        if not c.key:
            self._error(c.header, "empty key in request")
            return
        # A pinned-down sticky record waits until the pindown is over.
        if db.isSticky and self._deferPinnedDown(
            db, c.key, lambda: self.requestCall(c)
        ):
            self.log.warn("Defer request for pinned down record in {db}", db=db.name)
            return

        def run() -> None:
            if self._current(c, "REQ_CALL"):
                self._requestCallLocked(db, c)

        self.withLock(db, c.key, run)

    def _current(self, pkt: P.Packet, what: str) -> bool:
        """lock_fetch_callback: a node's packet that waited for a record
        lock (a client held it, or a recovery froze the database) while the
        generation changed is discarded.  The recovery rebuilt the record
        from every node's copy meanwhile, and a stale REPLY_DMASTER applied
        now would make this node dmaster next to the one the recovery chose
        (or bring back old data); a stale REQ_CALL's sender resends it."""
        if pkt.header.generation == self.daemon.vnnMap.generation:
            return True
        self.log.info(
            "Discarding previous generation lockwait packet ({what} from node {src})",
            what=what,
            src=pkt.header.srcnode,
        )
        return False

    def _requestCallLocked(self, db: Database, c: P.ReqCall) -> None:
        key = c.key
        daemon = self.daemon
        pnn = daemon.pnn
        # one lmaster per packet, passed down to every store
        lmaster = self.lmaster(key)
        flags = c.flags
        # Don't do READONLY if we don't have a tracking database.
        if flags & P.CTDB_WANT_READONLY and not db.readonly:
            flags &= ~P.CTDB_WANT_READONLY
        # A new record of ours (we are its lmaster) that goes on to another
        # node at once is stored once, by sendDmaster, not first as the
        # initial record as well (its deletion-queue entry would go too).
        handedOn = (
            c.header.srcnode != pnn
            and not db.commitActive
            and not flags & P.CTDB_WANT_READONLY
        )
        header, data = self.fetch(db, key, lmaster, not handedOn)
        if header.flags & CTDB_REC_RO_REVOKE_COMPLETE:
            header = self._revokeComplete(db, key, header, data)
        if header.flags & CTDB_REC_RO_REVOKING_READONLY:
            self._deferForRevoke(
                db, key, bool(flags & P.CTDB_WANT_READONLY), lambda: self.requestCall(c)
            )
            return
        if header.dmaster != pnn and not header.flags & CTDB_REC_RO_HAVE_DELEGATIONS:
            self._redirect(db, c, header, lmaster)
            return
        if not flags & P.CTDB_WANT_READONLY and header.flags & (
            CTDB_REC_RO_HAVE_DELEGATIONS | CTDB_REC_RO_HAVE_READONLY
        ):
            self._revoke(db, key, header, data)
            self._deferForRevoke(db, key, False, lambda: self.requestCall(c))
            return
        if flags & P.CTDB_WANT_READONLY and c.callid == P.CTDB_FETCH_WITH_HEADER_FUNC:
            self._delegate(db, c, header, data)
            return
        daemon.statsKeeper.hopCount(db.stats, c.hopcount)
        # A record that needed many hops is hot: make it sticky.
        if db.isSticky and c.hopcount >= daemon.tunables.HopcountMakeSticky:
            self._makeSticky(db, key)
        if c.header.srcnode != pnn:
            if db.commitActive:
                self.log.info(
                    "refusing migration of a record of {db} during commit", db=db.name
                )
                return
            self.sendDmaster(db, c, header, data, lmaster)
            return
        status, reply = self.callLocal(db, key, c.callid, header, data, lmaster)
        hdr = P.Header(
            _OP_REPLY_CALL,
            c.header.srcnode,
            pnn,
            c.header.reqid,
            daemon.vnnMap.generation,
        )
        daemon.queuePacket(P.ReplyCall(hdr, status, reply))

    def _redirect(
        self,
        db: Database,
        c: P.ReqCall,
        header: LtdbHeader,
        lmaster: int | None = None,
    ) -> None:
        """ctdb_call_send_redirect: to the lmaster, or from the lmaster to
        the dmaster it knows."""
        if lmaster is None:
            lmaster = self.lmaster(c.key)
        dest = header.dmaster if lmaster == self.pnn else lmaster
        if dest == self.pnn:
            # We are lmaster and think we are not dmaster but the record
            # says so: protocol confusion; answer an error rather than loop.
            self._error(c.header, "record has no reachable dmaster")
            return
        hop = c.hopcount + 1
        if hop % 100 > 95:
            self.log.warn("High hopcount {hop} dbid:{db}", hop=hop, db=db.name)
        self.daemon.queuePacket(
            P.ReqCall(
                c.header.__class__(
                    c.header.operation,
                    dest,
                    c.header.srcnode,
                    c.header.reqid,
                    c.header.generation,
                ),
                c.flags,
                c.db_id,
                c.callid,
                hop,
                c.key,
                c.calldata,
            )
        )

    def _delegate(
        self, db: Database, c: P.ReqCall, header: LtdbHeader, data: bytes
    ) -> None:
        """Grant a read-only delegation: the first one bumps our rsn by 3 and
        sets HAVE_DELEGATIONS; the requester is remembered in the tracking
        db and gets a copy with rsn-2 flagged HAVE_READONLY."""
        key = c.key
        if not header.flags & CTDB_REC_RO_HAVE_DELEGATIONS:
            header = LtdbHeader(
                header.rsn + 3,
                header.dmaster,
                0,
                header.flags | CTDB_REC_RO_HAVE_DELEGATIONS,
            )
            header = self.storeRecord(db, key, header, data)
        if db.rotdb is not None:
            db.rotdb.store(
                key, trackingAdd(db.rotdb.fetch(key) or b"", c.header.srcnode)
            )
        roHeader = LtdbHeader(
            header.rsn - 2,
            header.dmaster,
            0,
            (header.flags | CTDB_REC_RO_HAVE_READONLY) & ~CTDB_REC_RO_HAVE_DELEGATIONS,
        )
        hdr = P.Header(
            P.Operation.REPLY_CALL,
            c.header.srcnode,
            self.pnn,
            c.header.reqid,
            self.daemon.vnnMap.generation,
        )
        self.daemon.queuePacket(P.ReplyCall(hdr, 0, roHeader.encode() + data))
        self.daemon.stats.total_ro_delegations += 1
        db.stats.db_ro_delegations += 1

    def sendDmaster(
        self,
        db: Database,
        c: P.ReqCall,
        header: LtdbHeader,
        data: bytes,
        lmaster: int | None = None,
    ) -> None:
        """ctdb_call_send_dmaster: hand the record to the requester."""
        flags = header.flags
        if data:
            flags |= CTDB_REC_FLAG_MIGRATED_WITH_DATA
        if lmaster is None:
            lmaster = self.lmaster(c.key)
        newDmaster = c.header.srcnode
        daemon = self.daemon
        if lmaster == daemon.pnn:
            self._sendDmasterReply(
                db,
                header.rsn,
                flags,
                c.key,
                data,
                newDmaster,
                c.header.reqid,
                lmaster,
            )
            return
        hdr = P.Header(
            _OP_REQ_DMASTER,
            lmaster,
            daemon.pnn,
            c.header.reqid,
            daemon.vnnMap.generation,
        )
        daemon.queuePacket(
            P.ReqDmaster(hdr, db.db_id, header.rsn, newDmaster, c.key, data, flags)
        )
        self.storeFields(db, c.key, header.rsn, newDmaster, 0, flags, data, lmaster)

    def sendDmasterReply(
        self,
        db: Database,
        header: LtdbHeader,
        key: bytes,
        data: bytes,
        newDmaster: int,
        reqid: int,
    ) -> None:
        """ctdb_send_dmaster_reply (we are the lmaster)."""
        self._sendDmasterReply(
            db, header.rsn, header.flags, key, data, newDmaster, reqid
        )

    def _sendDmasterReply(
        self,
        db: Database,
        rsn: int,
        flags: int,
        key: bytes,
        data: bytes,
        newDmaster: int,
        reqid: int,
        lmaster: int | None = None,
    ) -> None:
        stored = self.storeFields(db, key, rsn, newDmaster, 0, flags, data, lmaster)
        daemon = self.daemon
        hdr = P.Header(
            _OP_REPLY_DMASTER,
            newDmaster,
            daemon.pnn,
            reqid,
            daemon.vnnMap.generation,
        )
        daemon.queuePacket(
            P.ReplyDmaster(hdr, db.db_id, stored.rsn, key, data, stored.flags)
        )

    def requestDmaster(self, c: P.ReqDmaster) -> None:
        """ctdb_request_dmaster (we are the lmaster)."""
        db = self.byId.get(c.db_id)
        if db is None:
            self._unknownDatabase(c.header, c.db_id)
            return

        def run() -> None:
            if not self._current(c, "REQ_DMASTER"):
                return
            pnn = self.daemon.pnn
            lmaster = self.lmaster(c.key)
            header, _ = self.fetch(db, c.key, lmaster)
            if lmaster != pnn:
                self.log.error("REQ_DMASTER to non-lmaster for db {db}", db=db.name)
                return
            if header.dmaster != c.header.srcnode:
                self.log.warn(
                    "dmaster request from non-master: node {src}, dmaster {dm}, db {db}",
                    src=c.header.srcnode,
                    dm=header.dmaster,
                    db=db.name,
                )
                if header.rsn != 0 or header.dmaster != pnn:
                    self.daemon.recmode = C.CTDB_RECOVERY_ACTIVE
                    return
            if c.dmaster == pnn:
                self.becomeDmaster(
                    db, c.header.reqid, c.key, c.data, c.rsn, c.record_flags, lmaster
                )
            else:
                self._sendDmasterReply(
                    db,
                    c.rsn,
                    c.record_flags,
                    c.key,
                    c.data,
                    c.dmaster,
                    c.header.reqid,
                    lmaster,
                )

        self.withLock(db, c.key, run)

    def replyDmaster(self, c: P.ReplyDmaster) -> None:
        db = self.byId.get(c.db_id)
        if db is None:
            self.log.error("REPLY_DMASTER for unknown db 0x{db_id:08x}", db_id=c.db_id)
            return

        def run() -> None:
            if self._current(c, "REPLY_DMASTER"):
                self.becomeDmaster(
                    db, c.header.reqid, c.key, c.data, c.rsn, c.record_flags
                )

        self.withLock(db, c.key, run)

    def becomeDmaster(
        self,
        db: Database,
        reqid: int,
        key: bytes,
        data: bytes,
        rsn: int,
        flags: int,
        lmaster: int | None = None,
    ) -> None:
        """ctdb_become_dmaster: store the record as ours, finish the call."""
        calls = self._calls
        pending = calls.get(reqid)
        if pending is not None and pending.flags & P.CTDB_CALL_FLAG_VACUUM_MIGRATION:
            # Only for the store rules: an empty record never migrated
            # with data that a vacuum fetch brings to its lmaster is deleted.
            flags |= CTDB_REC_FLAG_VACUUM_MIGRATED
        if lmaster is None:
            lmaster = self.lmaster(key)
        # The call run on the record stores it again at once (callLocal):
        # then this store is only worked out, and that one writes (a record
        # of which we are dmaster is always kept, so it replaces this one's
        # record and deletion-queue entry)
        again = (
            pending is not None
            and pending.key == key
            and pending.db is db
            and pending.wireCallid in _STORING_FUNCS
            and not db.isSticky
        )
        header = self.storeFields(
            db, key, rsn, self.daemon.pnn, 0, flags, data, lmaster, not again
        )
        # A sticky record that just arrived stays here for a while.
        if db.isSticky:
            self._setPindown(db, key)
            pending = calls.get(reqid)
        if pending is None or pending.key != key or pending.db is not db:
            return
        del calls[reqid]
        self._noteMigration(db, key)
        status, reply = self.callLocal(
            db, key, pending.wireCallid, header, data, lmaster
        )
        self._finish(pending, status, reply)

    def _noteMigration(self, db: Database, key: bytes) -> None:
        """hash_count_increment(migratedb): count the migrations of a key to
        us within one second; the counts feed the db's hot keys."""
        now = self.daemon.reactor.seconds()
        migrations = db.migrations
        previous = migrations.get(key)
        if previous is not None and now < previous[1] + 1.0:
            count = previous[0] + 1
            # the window goes on: the key keeps its place
            migrations[key] = (count, previous[1])
        else:
            count = 1
            # a new window: the key moves to the young end, so the counters
            # stay in the order their windows began
            migrations[key] = (1, now)
            if previous is not None:
                migrations.move_to_end(key)
        # ctdb_migration_cleandb_event: forget the expired counters, from
        # the old end; each is dropped once, so this is O(1) amortised
        # (the clock only goes forward: the first live counter ends it)
        while True:
            oldest = next(iter(migrations))
            if now < migrations[oldest][1] + 1.0:
                break
            migrations.popitem(last=False)
        updateHotKeys(db.stats.hot_keys, key, count)

    def resendCalls(self) -> None:
        """ctdb_call_resend_all: calls in flight when the cluster changed are
        sent again under the new generation, so none is lost."""
        pending, self._calls = self._calls, {}
        for pending_call in pending.values():
            self._resend(pending_call)

    def _resend(self, pending: _PendingCall) -> None:
        db = pending.db
        if db.db_id not in self.byId:
            self._finish(pending, -1, b"")
            return

        def run() -> None:
            header, data = self.fetch(db, pending.key)
            if header.dmaster == self.pnn and not header.flags & CTDB_REC_RO_FLAGS:
                status, reply = self.callLocal(
                    db, pending.key, pending.wireCallid, header, data
                )
                self._finish(pending, status, reply)
                return
            self._sendCall(pending, header.dmaster)

        self.withLock(db, pending.key, run)
