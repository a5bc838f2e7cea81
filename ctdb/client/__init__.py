# -*- test-case-name: tests.integration.test_client_api -*-
"""
The high-level Python client API of ctdbd, on Twisted: attach clustered
databases, lock, read and write records, run transactions on persistent
databases, traverse a database cluster-wide, and exchange messages.

It works against our daemon and against Samba's ctdbd 4.17 alike, because
it does what Samba's own client library does (``ctdb/client/client_db.c``):
the record data lives in the node's local TDB file, which the client opens
itself; the daemon only migrates records and commits transactions.

Example (run it with C{python example.py /path/to/ctdbd.socket})::

    import sys
    from twisted.internet import defer, task
    from ctdb.client import connect

    async def main(reactor, socketPath):
        client = await connect(reactor, socketPath)
        print("connected to node", client.pnn)

        # A volatile database: lock a record (migrating it to this node),
        # then read and change it while holding the lock.
        db = await client.attach("example.tdb")
        async with db.fetchLock(b"counter") as record:
            count = int(record.data or b"0")
            record.store(b"%d" % (count + 1))
        print("counter is now", (await db.fetch(b"counter")).decode())

        # A persistent database: an atomic cluster-wide transaction.
        pdb = await client.attach("example_persistent.tdb", persistent=True)
        async with pdb.transaction() as txn:
            await txn.store(b"greeting", b"hello")
        print("greeting:", await pdb.fetch(b"greeting"))

        # Every record of the database, from every node.
        for key, header, data in await db.traverse():
            print(key, "dmaster", header.dmaster, data)
        await client.close()

    task.react(lambda reactor: defer.ensureDeferred(main(reactor, sys.argv[1])))

Locking rules, as in Samba's client:

 - L{Database.fetchLock} holds the record's TDB chain lock until the
   L{RecordLock} is released; nothing else (another client, the daemon) can
   touch records of that hash chain meanwhile, so hold it briefly.  The lock
   is never waited for in the reactor thread: it is tried without blocking
   and retried with a bounded back-off.
 - fcntl locks belong to the process, so this module also serialises
   fetch-locks of the same key (and transactions on the same database)
   between coroutines of one process.
 - L{Database.transaction} takes Samba's C{g_lock} on the key
   C{"transaction_db_0x%08x"} in the volatile C{g_lock.tdb} database, so it
   excludes Samba tools (C{ctdb ptrans}/C{pstore}) and smbd too.

The package: L{ctdb.client.connection} (L{connect}, L{CTDBClient}),
L{ctdb.client.database} (L{Database}), L{ctdb.client.recordlock}
(L{RecordLock}), L{ctdb.client.transaction} (L{Transaction}),
L{ctdb.client.glock} (Samba's g_lock) and L{ctdb.client.concurrency}
(waiting without blocking the reactor).  Import from C{ctdb.client}.
"""

from __future__ import annotations

from ctdb.client.connection import CTDBClient, connect
from ctdb.client.database import Database

# Samba's g_lock: importable from here, but not in __all__ (the redundant
# aliases say so to the linters).
from ctdb.client.glock import G_LOCK_DB as G_LOCK_DB
from ctdb.client.glock import G_LOCK_READ as G_LOCK_READ
from ctdb.client.glock import G_LOCK_WRITE as G_LOCK_WRITE
from ctdb.client.glock import GLock as GLock
from ctdb.client.glock import ServerId
from ctdb.client.glock import gLockLock as gLockLock
from ctdb.client.glock import gLockUnlock as gLockUnlock
from ctdb.client.recordlock import RecordLock
from ctdb.client.transaction import DB_SEQNUM_KEY, Transaction
from ctdb.errors import ClientError, ControlFailed, FetchLockError, TransactionError
from ctdb.protocols.srvids import CTDB_SRVID_CLIENT_RANGE

__all__ = [
    "CTDB_SRVID_CLIENT_RANGE",
    "DB_SEQNUM_KEY",
    "CTDBClient",
    "ClientError",
    "ControlFailed",
    "Database",
    "FetchLockError",
    "RecordLock",
    "ServerId",
    "Transaction",
    "TransactionError",
    "connect",
]
