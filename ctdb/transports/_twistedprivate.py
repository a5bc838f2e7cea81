# -*- test-case-name: tests.transports.test_twistedprivate -*-
"""
Every reliance of txctdb on Twisted's private internals, in this one
module; no other module may have any.  Each is here for a measured speed-up
that public API cannot give, and L{tests.transports.test_twistedprivate}
checks each assumption against the installed Twisted, so that a Twisted
release that changes one fails the test suite instead of the daemon.

L{PlainRecvPort}: a UNIX stream server port whose connections read with
plain C{recv()}.  Twisted's UNIX connections (L{twisted.internet.unix.Server})
read with C{recvmsg()} and parse the ancillary data of every read, for the
file-descriptor passing that the ctdb client protocol never uses; a plain
C{recv()} costs about 12% less daemon CPU per control (docs/FACTS.md).
Twisted offers no public way to choose how an accepted connection reads,
so this relies on:

 - C{tcp.Port.transport}, inherited by L{twisted.internet.unix.Port}: the
   undocumented class attribute naming the class that C{Port.doRead}
   instantiates for each accepted connection, with the arguments
   C{(socket, protocol, address, port, sessionno, reactor)};
 - C{tcp.Connection.doRead}, TCP's plain C{recv()} read: it uses the
   connection's C{socket} and C{bufferSize} and the private
   C{tcp.Connection._dataReceived}.  L{twisted.internet.unix.Server} is a
   subclass of C{tcp.Connection} whose C{doRead} comes from the private
   C{unix._SendmsgMixin}; we give it back the one of C{tcp.Connection}.
"""

from __future__ import annotations

from twisted.internet import tcp, unix


class PlainRecvServer(unix.Server):
    """A UNIX stream server connection that reads with plain recv()."""

    doRead = tcp.Connection.doRead


class PlainRecvPort(unix.Port):
    """A UNIX stream server port whose connections are L{PlainRecvServer}s."""

    transport = PlainRecvServer
