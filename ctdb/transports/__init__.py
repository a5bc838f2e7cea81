# -*- test-case-name: tests.transports -*-
"""
The daemon's sockets, on Twisted: the node transports that carry the CTDB
node protocol between daemons (L{ctdb.transports.tcp}, the default, and
L{ctdb.transports.ib}, InfiniBand verbs, both behind
L{ctdb.interfaces.INodeTransport}) and the daemon's end of the unix client
socket (L{ctdb.transports.clientsocket}).

They sit on the codec and framing of L{ctdb.protocols} and never import
the daemon: they hand whole packets to a listener object and write what
they are given.  Every use of Twisted's private internals in txctdb is in
L{ctdb.transports._twistedprivate}, with a test that fails when Twisted
changes underneath it.
"""
