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

L{LeanEPollReactor}: the epoll reactor with a main loop that costs less
per event (its docstring lists what it relies on).
"""

from __future__ import annotations

import sys

from twisted.internet import tcp, unix
from twisted.internet.epollreactor import EPollReactor
from twisted.logger import Logger
from twisted.python import log

_log = Logger()


class PlainRecvServer(unix.Server):
    """A UNIX stream server connection that reads with plain recv()."""

    doRead = tcp.Connection.doRead


class PlainRecvPort(unix.Port):
    """A UNIX stream server port whose connections are L{PlainRecvServer}s."""

    transport = PlainRecvServer


class LeanEPollReactor(EPollReactor):
    """
    Twisted's epoll reactor with a main loop that costs less per event.

    A daemon wakes for one packet at a time, and Twisted's loop costs each
    wake-up about as much again as a bare Python epoll loop that reads and
    sends the packet (bench/bench_floor.py).  This loop does what
    L{ReactorBase.mainLoop} and L{EPollReactor.doPoll} do, in this order,
    with three shortcuts:

     - C{runUntilCurrent} is called only when it has something to do: a
       call from another thread, a new timed call, a timed call that is
       due, or a stop;
     - the poll timeout is worked out inline from the heap of timed calls
       when no new one waits to be put in it (else by C{timeout()});
     - a selectable that is only readable is read directly, without
       C{log.callWithLogger} (a logging context per event: its only use is
       the legacy C{system} prefix of what is logged during the read, and
       an error in C{doRead} is still logged with it).  Other events go
       through C{_doReadOrWrite} as before.

    It relies on these private parts of L{ReactorBase} and L{EPollReactor}
    (each checked by L{tests.transports.test_twistedprivate}): C{_started},
    C{_justStopped}, C{_newTimedCalls}, C{_pendingTimedCalls} (a heap of
    L{DelayedCall}s ordered by C{time}), C{_poller}, C{_selectables} (fd ->
    selectable), C{_doReadOrWrite(selectable, fd, event)},
    C{_disconnectSelectable(selectable, why, isRead)} and C{_POLL_IN}.
    """

    def mainLoop(self) -> None:
        while self._started:
            try:
                self._leanLoop()
            except BaseException:  # noqa: BLE001 - as ReactorBase.mainLoop's _topHandler
                _log.failure("Unexpected error in main loop.")
        _log.info("Main loop terminated.")

    def _leanLoop(self) -> None:
        poll = self._poller.poll
        selectables = self._selectables
        readOrWrite = self._doReadOrWrite
        disconnect = self._disconnectSelectable
        seconds = self.seconds
        pollIn = self._POLL_IN
        while self._started:
            pending = self._pendingTimedCalls
            if (
                self.threadCallQueue
                or self._newTimedCalls
                or self._justStopped
                or (pending and pending[0].time <= seconds())
            ):
                self.runUntilCurrent()
                if not self._started:
                    return
                pending = self._pendingTimedCalls
            timeout: float
            if not self.running:
                timeout = 0
            elif self._newTimedCalls:
                wait = self.timeout()
                timeout = -1 if wait is None else wait
            elif pending:
                # ReactorBase.timeout, inline: epoll takes whole ms in an int
                timeout = max(0, min(2147483, pending[0].time - seconds()))
            else:
                timeout = -1
            try:
                events = poll(timeout, len(selectables))
            except InterruptedError:
                continue
            for fd, event in events:
                selectable = selectables.get(fd)
                if selectable is None:
                    continue
                if event != pollIn or selectable.fileno() == -1:
                    log.callWithLogger(selectable, readOrWrite, selectable, fd, event)
                    continue
                try:
                    why = selectable.doRead()
                except BaseException:  # noqa: BLE001 - as _doReadOrWrite
                    why = sys.exc_info()[1]
                    log.callWithLogger(selectable, log.err)
                if why:
                    disconnect(selectable, why, True)
