# -*- test-case-name: tests.recovery.test_service -*-
"""
Banning (ctdb_recoverd.c's culprit counts): a node that causes
recoveries earns credits, and enough of them within RecoveryGracePeriod
get it banned.  A part of L{ctdb.recovery.service.RecoveryService}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctdb.protocols import controls as C
from ctdb.protocols.controls import Control

if TYPE_CHECKING:
    from twisted.logger import Logger

    from ctdb.daemon.core import Daemon
    from ctdb.interfaces import ICTDBReactor


class Banning:
    """The culprit credits and bans of a recovery service."""

    if TYPE_CHECKING:
        # what this part uses of the rest of the RecoveryService
        log: Logger
        daemon: Daemon
        reactor: ICTDBReactor
        culprits: dict[int, list[float]]

        def isLeader(self) -> bool: ...

    # -- banning -------------------------------------------------------------------------

    def addCulprit(self, pnn: int, credits: int) -> None:
        """ctdb_set_culprit_count: a node that causes recoveries earns credits;
        2 x nodes credits within RecoveryGracePeriod get it banned."""
        now = self.reactor.seconds()
        grace = self.daemon.tunables.RecoveryGracePeriod
        entries = [t for t in self.culprits.get(pnn, []) if now - t < grace]
        entries += [now] * credits
        self.culprits[pnn] = entries
        limit = 2 * len(self.daemon.nodes)
        if len(entries) >= limit and self.daemon.tunables.EnableBans:
            self.culprits[pnn] = []
            period = self.daemon.tunables.RecoveryBanPeriod
            self.log.error(
                "Banning node {pnn} for {secs} seconds", pnn=pnn, secs=period
            )
            self.daemon.sendControl(
                pnn, Control.SET_BAN_STATE, C.encodeBanState(pnn, period)
            )

    def _banningMessage(self, srvid: int, data: bytes) -> None:
        if not self.isLeader():
            return
        try:
            pnn = C.decodeU32(data)
        except ValueError:
            return
        if self.daemon.validPnn(pnn):
            self.addCulprit(pnn, len(self.daemon.nodes))
