# -*- test-case-name: tests.transports -*-
"""
The node transports that carry the CTDB node protocol between daemons, on
Twisted, behind L{ctdb.interfaces.INodeTransport}: L{ctdb.transports.tcp}
now, the RDMA verbs transport next.  They sit on the codec and framing of
L{ctdb.protocols} and never import the daemon: they hand whole packets to a
listener object and send what they are given.
"""
