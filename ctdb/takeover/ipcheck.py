# -*- test-case-name: tests.takeover.test_node -*-
"""
Each node's own check of its public addresses (Samba 4.17
C{server/ctdb_recoverd.c} C{verify_local_ip_allocation}, run by every
recovery daemon in its main loop), every RecoverInterval seconds: when the
interfaces or their links changed, or when the host disagrees with what
the node should hold, ask the leader for a takeover run
(L{askForTakeoverRun}: C{CTDB_SRVID_TAKEOVER_RUN} with srvid 0, no reply
wanted).  The other half of that function, an address nobody hosts that
this node could host, is checked at each leader broadcast
(L{ctdb.takeover.leader}).

No check while the node is not RUNNING, in recovery, banned or stopped,
with failover disabled, while takeover runs are held off
(DISABLE_TAKEOVER_RUNS and the older DISABLE_IP_CHECK, which the leader's
part answers) or its own run goes on; an address whose take, update or
release is under way is left alone (ctdbd's single-threaded recovery
daemon never looks in the middle of its own steps either).

In daemon mode (the daemon adds addresses itself) the check also reads the
interfaces' link state from the host, as C{10.interface}'s monitor event
does with C{ctdb setifacelink}.

A part of L{ctdb.takeover.node.PublicAddresses}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.interfaces import IDelayedCall

from ctdb.protocols import packet as P
from ctdb.protocols.nodestate import (
    CTDB_RECOVERY_NORMAL,
    NODE_FLAGS_INACTIVE,
    RunState,
)
from ctdb.protocols.srvids import CTDB_SRVID_TAKEOVER_RUN, encodeSrvidMessage
from ctdb.takeover.state import cancelCall

if TYPE_CHECKING:
    from twisted.logger import Logger

    from ctdb.daemon.core import Daemon
    from ctdb.interfaces import IAddressSystem
    from ctdb.protocols.publicips import PublicIP
    from ctdb.takeover.state import Iface, VnnTable


class LocalIPCheck:
    """The IP-check half of the node's public addresses."""

    if TYPE_CHECKING:
        log: Logger
        daemon: Daemon
        pnn: int
        table: VnnTable
        system: IAddressSystem
        failoverDisabled: bool
        byScripts: bool
        checkAddresses: bool

        def haveIp(self, address: str) -> bool: ...
        def publicIPs(self, onlyAvailable: bool = False) -> list[PublicIP]: ...
        def setLink(self, iface: Iface, up: bool) -> None: ...

    def initIPCheck(self) -> None:
        """No check scheduled, no interfaces seen yet."""
        self._ipCheckTimer: IDelayedCall | None = None
        #: the interfaces (name, link) at the last check (rec->ifaces)
        self._lastIfaces: list[tuple[str, int]] | None = None

    def startIPCheck(self) -> None:
        """The first check in RecoverInterval seconds."""
        self._scheduleIPCheck()

    def stopIPCheck(self) -> None:
        """No more checks."""
        cancelCall(self._ipCheckTimer)
        self._ipCheckTimer = None

    def _scheduleIPCheck(self) -> None:
        interval = max(float(self.daemon.tunables.RecoverInterval), 0.25)
        self._ipCheckTimer = self.daemon.reactor.callLater(interval, self._tick)

    def _tick(self) -> None:
        """One check, and the next one scheduled whatever happened."""
        try:
            self.checkLocalIPs()
        except Exception:  # noqa: BLE001 - the check must go on
            self.log.failure("public IP check failed")
        finally:
            self._scheduleIPCheck()

    def ipCheckDisabled(self) -> bool:
        """Held off with the takeover runs (DISABLE_TAKEOVER_RUNS, and the
        older DISABLE_IP_CHECK, disable both in ctdbd), and while this
        node's own takeover run goes on (ctdbd's recovery daemon does one
        thing at a time)."""
        runner = self.daemon.takeoverRunner
        return runner is not None and bool(
            runner.takeoverRunsDisabled() or runner.takeoverRunInProgress()
        )

    def _refreshLinks(self) -> None:
        """The link state of each interface, from the host (daemon mode)."""
        for iface in list(self.table.ifaces):
            if iface.name.startswith("lo"):
                up = True  # 10.interface: the loopback is always up
            else:
                try:
                    up = bool(self.system.linkUp(iface.name))
                except Exception as e:  # noqa: BLE001
                    self.log.error(
                        "Cannot read the link of {name}: {err}", name=iface.name, err=e
                    )
                    continue
            self.setLink(iface, up)

    def _interfacesChanged(self) -> bool:
        """interfaces_have_changed."""
        now = [(i.name, int(i.linkUp)) for i in self.table.ifaces]
        last, self._lastIfaces = self._lastIfaces, now
        if last is None:
            self.log.info("Initial interface fetched")
            return True
        if len(last) != len(now):
            self.log.info(
                "Interface count changed from {old} to {new}",
                old=len(last),
                new=len(now),
            )
            return True
        for slot, ((oldName, oldLink), (newName, newLink)) in enumerate(
            zip(last, now, strict=True)
        ):
            if oldName != newName:
                self.log.info(
                    "Interface in slot {slot} changed: {old} => {new}",
                    slot=slot,
                    old=oldName,
                    new=newName,
                )
                return True
            if oldLink != newLink:
                self.log.info(
                    "Interface {name} changed state: {old} => {new}",
                    name=newName,
                    old=oldLink,
                    new=newLink,
                )
                return True
        return False

    def checkLocalIPs(self) -> bool:
        """verify_local_ip_allocation: True when it asked for a takeover run."""
        d = self.daemon
        me = d.nodes[self.pnn]
        if (
            d.runstate != RunState.RUNNING
            or d.recmode != CTDB_RECOVERY_NORMAL
            or me.flags & NODE_FLAGS_INACTIVE
        ):
            return False
        if self.failoverDisabled or self.ipCheckDisabled():
            return False
        if not self.byScripts and self.checkAddresses:
            self._refreshLinks()
        need = self._interfacesChanged()
        # (its check of unhosted addresses this node could serve runs at each
        # leader broadcast, in ctdb.takeover.leader)
        if self.checkAddresses:
            for ip in self.publicIPs():
                vnn = self.table.find(ip.address)
                if vnn is not None and vnn.updateInFlight:
                    # a take or release is under way (its event may be slow):
                    # ctdbd's serial recovery daemon never looks at such an
                    # address in the middle of its own takeover run either
                    continue
                if ip.pnn == self.pnn:
                    if not self.haveIp(ip.address):
                        self.log.error(
                            "Assigned IP {addr} not on an interface", addr=ip.address
                        )
                        need = True
                elif self.haveIp(ip.address):
                    self.log.error(
                        "IP {addr} incorrectly on an interface", addr=ip.address
                    )
                    need = True
        if need:
            askForTakeoverRun(d, self.log)
        return need


def askForTakeoverRun(daemon: Daemon, log: Logger) -> None:
    """verify_local_ip_allocation's "Trigger takeoverrun": a TAKEOVER_RUN
    broadcast with srvid 0 (the leader answers nobody)."""
    log.info("Trigger takeoverrun")
    daemon.sendMessage(
        P.CTDB_BROADCAST_CONNECTED,
        CTDB_SRVID_TAKEOVER_RUN,
        encodeSrvidMessage(daemon.pnn, 0),
    )
