# -*- test-case-name: tests.databases.test_trans3 -*-
"""
Persistent and replicated transactions (ctdb_persistent.c,
ctdb_update_record.c): TRANS3_COMMIT sends each record as UPDATE_RECORD to
every active node and answers once all have applied it, or at the end of
the recovery that a failure starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from ctdb.database.ltdb import (
    splitValue,
)
from ctdb.databases.base import RecordStorage
from ctdb.databases.model import (
    DB_SEQNUM_KEY,
    Database,
    _Trans3Commit,
    seqnumValue,
)
from ctdb.errors import MalformedPacket
from ctdb.interfaces import (
    IClientConnection,
)
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control

if TYPE_CHECKING:
    from ctdb.daemon.core import ControlResult


def _checkNextSeqnum(name: str, olddata: bytes, data: bytes) -> None:
    """
    A commit to a persistent database raises its sequence number by one
    (every client does: Samba's and ours).  An update that raises it by
    more means this node missed a commit in between: one that the other
    nodes applied while a recovery cut this node's UPDATE_RECORD off.
    Applying the later commit's records on top would leave this copy with
    the newest sequence number and the missed commit's other records
    lost, and a recovery, which keeps the copy with the highest sequence
    number, could then keep this one.  Refused, the commit fails here and
    the recovery it starts brings the whole newer copy to this node.

    @raise ValueError: C{data} skips a sequence number after C{olddata}.
    """
    before, after = seqnumValue(olddata), seqnumValue(data)
    if after > before + 1:
        raise ValueError(
            f"missed a commit of {name}: sequence number {after} after {before}"
        )


class PersistentCommits(RecordStorage):
    """TRANS3_COMMIT and UPDATE_RECORD."""

    # -- persistent and replicated commits -------------------------------------------

    def control_TRANS3_COMMIT(
        self, req: P.ReqControl, client: IClientConnection | None
    ) -> ControlResult | defer.Deferred[ControlResult]:
        """ctdb_control_trans3_commit: UPDATE_RECORD to every active node of
        the vnn map; answered 0 once all of them applied it.  If one fails,
        recovery mode becomes active and the answer waits for the end of
        the recovery (L{finishTrans3Commits}, status 2): only then does the
        client's seqnum check see what the recovery kept, and only then does
        it release the transaction's g_lock.  (Answering at once let the
        next holder read its node's copy before the recovery brought the
        commit there, and its commit, resent after the recovery, passed the
        rsn check with equal data: one increment lost, nothing reported.)"""
        if self.daemon.recmode != C.CTDB_RECOVERY_NORMAL:
            return (-1, b"", b"recovery active")
        buf = R.RecBuffer.decode(req.data)
        db = self.byId.get(buf.db_id)
        if db is None:
            return (-1, b"", b"Unknown database")
        if db.volatile:
            return (-1, b"", b"TRANS3_COMMIT on a volatile database")
        if db.commitActive:
            return (-1, b"", b"a transaction commit is already active")
        targets = [
            p
            for p in self.daemon.vnnMap.map
            if not self.daemon.nodes[p].flags & C.NODE_FLAGS_INACTIVE
        ] or [self.pnn]
        state = _Trans3Commit(db, defer.Deferred(), len(targets))
        db.commitActive = True
        self._trans3[db.db_id] = state
        state.timer = self.daemon.reactor.callLater(
            self.daemon.tunables.ControlTimeout, self._trans3Timeout, state
        )
        for p in targets:
            self.daemon.sendControl(p, Control.UPDATE_RECORD, req.data).addCallback(
                self._trans3ReplyFor(state)
            )
        return state.done

    def _trans3ReplyFor(self, state: _Trans3Commit) -> Callable[[P.ReplyControl], None]:
        return lambda reply: self._trans3Reply(state, reply)

    def _trans3Reply(self, state: _Trans3Commit, reply: P.ReplyControl) -> None:
        """ctdb_persistent_callback."""
        if self._trans3.get(state.db.db_id) is not state:
            return
        if self.daemon.recmode != C.CTDB_RECOVERY_NORMAL:
            # the end of the recovery answers
            return
        if reply.status != 0:
            self.log.error(
                "UPDATE_RECORD of {db} failed: {err}; recovery needed",
                db=state.db.name,
                err=reply.errmsg.decode(errors="replace"),
            )
            self.daemon.recmode = C.CTDB_RECOVERY_ACTIVE
            return
        state.pending -= 1
        if state.pending == 0:
            self._trans3Finish(state, 0, b"")

    def _trans3Timeout(self, state: _Trans3Commit) -> None:
        """ctdb_persistent_store_timeout: ignored during a recovery."""
        state.timer = None
        if self.daemon.recmode != C.CTDB_RECOVERY_NORMAL:
            return
        self._trans3Finish(state, 1, b"timeout in ctdb_persistent_state")

    def _trans3Finish(self, state: _Trans3Commit, status: int, errmsg: bytes) -> None:
        if self._trans3.get(state.db.db_id) is state:
            del self._trans3[state.db.db_id]
        state.db.commitActive = False
        if state.timer is not None and state.timer.active():
            state.timer.cancel()
        state.timer = None
        if not state.done.called:
            state.done.callback((status, b"", errmsg))

    def finishTrans3Commits(self) -> None:
        """ctdb_persistent_finish_trans3_commits, at END_RECOVERY: every
        commit still waiting is answered 2; the client then reads the
        sequence number the recovery left."""
        if self.daemon.recmode != C.CTDB_RECOVERY_NORMAL:
            return
        for state in list(self._trans3.values()):
            self._trans3Finish(state, 2, b"trans3 commit ended by recovery")

    def control_UPDATE_RECORD(self, req: P.ReqControl, client: object) -> Any:
        if self.daemon.recmode != C.CTDB_RECOVERY_NORMAL:
            return (-1, b"", b"recovery active")
        buf = R.RecBuffer.decode(req.data)
        db = self.byId.get(buf.db_id)
        if db is None:
            return (-1, b"", b"Unknown database")
        if db.health:
            return (-1, b"", f"db unhealthy: {db.health}".encode())
        store = db.store
        if db.transactionId is not None:
            return (-1, b"", b"database is being recovered")
        generation = self.daemon.vnnMap.generation
        # ctdb_childwrite: ctdbd forks a child that writes the records in a
        # transaction; ours is the same transaction, in the daemon.  Its
        # latency runs from the request to the write's end, written or not.
        keeper = self.daemon.statsKeeper
        started = keeper.childwriteStarted()

        def write() -> ControlResult:
            result = self._updateRecords(db, buf, generation)
            keeper.childwriteEnded(started, True)
            return result

        result = self.whenUnlocked(
            db, store.transactionStartNonblock, write, "update record"
        )
        if isinstance(result, defer.Deferred):

            def notWritten(f: Failure) -> Failure:
                keeper.childwriteEnded(started, False)
                return f

            result.addErrback(notWritten)
        return result

    def _updateRecords(
        self, db: Database, buf: R.RecBuffer, generation: int | None = None
    ) -> ControlResult:
        """Apply a commit's records inside the transaction just started.
        An update that waited for a client's record lock while a recovery
        started (or ran) is refused: applied after the recovery's pull it
        would exist on this node only."""
        store = db.store
        if generation is not None and (
            self.daemon.recmode != C.CTDB_RECOVERY_NORMAL
            or self.daemon.vnnMap.generation != generation
        ):
            store.transactionCancel()
            return (-1, b"", b"recovery started during update record")
        try:
            for rec in buf.records:
                header, data = splitValue(rec.data)
                if header is None:
                    raise MalformedPacket("record without ltdb header")
                old, olddata = splitValue(store.fetch(rec.key))
                # A record that does not raise the rsn is refused unless it
                # is the stored one again (a resent commit; 4.17 compares
                # the data only).  The header's reserved field counts: a
                # txctdb client puts its commit's token there, so the
                # second of two commits that read the same record (they
                # overlapped) is refused even with equal data.
                if (
                    old is not None
                    and old.rsn >= header.rsn
                    and (olddata != data or old.reserved1 != header.reserved1)
                ):
                    raise ValueError(
                        f"rsn regression for a record of {db.name}: {old.rsn} >= {header.rsn}"
                    )
                if rec.key == DB_SEQNUM_KEY and db.persistent:
                    _checkNextSeqnum(db.name, olddata, data)
                self.storeRecord(db, rec.key, header, data)
        except Exception as e:  # noqa: BLE001 - a record operation must never crash the daemon
            store.transactionCancel()
            self.log.error(
                "UPDATE_RECORD on {db} failed: {err}", db=db.name, err=str(e)
            )
            return (-1, b"", str(e).encode())
        store.transactionCommit()
        return (0, b"", b"")
