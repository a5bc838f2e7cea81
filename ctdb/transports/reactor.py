# -*- test-case-name: tests.transports.test_twistedprivate -*-
"""
The reactor a txctdb daemon runs on: Twisted's epoll reactor with a leaner
main loop (L{ctdb.transports._twistedprivate.LeanEPollReactor}): in a
ring of processes that only pass a packet on, Twisted's loop adds about
11 us of user CPU to each hop over a bare epoll loop, this one about 3
(bench/bench_floor.py; bench/README.md, session 9).

Only entry points install it: the drop-in C{ctdbd}, and C{twistd ctdb}
when twistd was not told which reactor to use.  C{twistd --reactor
txctdb ...} asks for it by name (the plugin in
C{twisted/plugins/ctdb_plugin.py}), and C{twistd --reactor epoll ctdb
...} keeps Twisted's own loop.
"""

from __future__ import annotations

import sys

from twisted.internet.main import installReactor

from ctdb.transports._twistedprivate import LeanEPollReactor

__all__ = ["LeanEPollReactor", "install", "installUnlessChosen"]


def install() -> None:
    """Install the txctdb reactor as the global reactor (what twistd's
    C{--reactor txctdb} calls)."""
    installReactor(LeanEPollReactor())


def installUnlessChosen() -> bool:
    """
    Install the txctdb reactor unless a global reactor is installed
    already (twistd's C{--reactor}, or an embedding application's own).

    @return: whether it was installed.
    """
    if "twisted.internet.reactor" in sys.modules:
        return False
    install()
    return True
