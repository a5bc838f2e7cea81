# -*- test-case-name: tests.monitor -*-
"""
C{ctdb-monitor}: a live terminal view of a cluster, as the recovery
daemon's C{monitor_cluster} (Samba 4.17's C{ctdb/server/ctdb_recoverd.c})
looks at it each second: every node's flags and its own view of the node
map, recovery mode, generation and VNN map, the leader, where the public
addresses are, and the changes seen between one look and the next.

It is a client of any ctdbd (ours or Samba's), built on our C{ctdb} tool's
session (L{ctdb.tool.session}) and commands (L{ctdb.tool.commands}):

 - L{ctdb.monitor.snapshot}: what one look saw, as plain values (pure);
 - L{ctdb.monitor.changes}: the events between two snapshots (pure);
 - L{ctdb.monitor.render}: a snapshot as text, JSON, and the live view;
 - L{ctdb.monitor.collect}: one look at the cluster through one daemon;
 - L{ctdb.monitor.main}: the command line, C{--once} and the live loop.
"""
