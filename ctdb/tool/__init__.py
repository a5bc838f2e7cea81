# -*- test-case-name: tests.tool -*-
"""
Our own C{ctdb} command: Samba 4.17's C{ctdb} tool (C{ctdb/tools/ctdb.c})
on txctdb's client API, with the same command names, options, output
(C{-X}/C{-Y} included), messages and exit status, and a C{--json}
document for every command.  It talks to any ctdbd: ours or Samba's.

Installed as the console script C{txctdb}, so that it does not hide Samba's
C{/usr/bin/ctdb}; it behaves the same under any name (link it as C{ctdb}).

 - L{ctdb.tool.options}: the command line as popt reads it, the usage
   texts, the command table (pure);
 - L{ctdb.tool.formats}: what each command prints, and its JSON (pure);
 - L{ctdb.tool.session}: one run: the connection, C{-n}, the leader, the
   helpers the commands share, the client library's messages;
 - L{ctdb.tool.commands}: the commands;
 - L{ctdb.tool.main}: the entry point (C{task.react}).
"""
