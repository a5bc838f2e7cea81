# -*- test-case-name: tests.databases.test_manager -*-
"""
The clustered-databases subsystem: attaching databases, the record
protocol that migrates volatile records (with read-only delegations and
sticky records), traverses, persistent and replicated transactions, the
recovery side (freeze, pull, push, wipe) and vacuuming.  It plugs into the
daemon core through the seams of L{ctdb.interfaces} (see
L{ctdb.databases.manager.DatabaseManager.plugInto}).
"""
