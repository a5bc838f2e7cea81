# -*- test-case-name: tests.takeover.test_node -*-
"""
The node side of public-IP takeover (Samba 4.17 C{server/ctdb_takeover.c}):
every public-IP control a node answers, its addresses and interfaces, and
what it does to the host when the leader moves an address to or from it.

Two ways to change the host, chosen per node:

  - C{byScripts=False} (``twistd ctdb``, ``ctdb-cluster``): the daemon does
    through an L{IAddressSystem} what Samba's C{10.interface} script does
    for ctdbd: it adds and removes addresses, resets the connections of a
    released address (not when the interface's link is down: no reset
    could reach a client), announces a taken or moved address, takes the
    addresses a dead predecessor left off the host at start and its own
    off at stop, and reads the links' state in its IP check.  It still runs
    the takeip, releaseip and updateip events when an event runner is
    plugged in;
  - C{byScripts=True} (the drop-in ``ctdbd``, as ctdbd): only the events
    change addresses; the daemon announces a taken address with
    gratuitous ARPs and tickle ACKs, as ctdbd does.

C{checkAddresses=False} is ctdbd's test mode (C{CTDB_TEST_MODE}: no
C{do_checkpublicip}): a take or release does not ask the host whether it
holds the address (only a banned or stopped node letting go of all does,
as ctdbd), the daemon's own records decide, and no announcement is sent.

Its parts: the address list (L{ctdb.takeover.addresslist}), take and
release (L{ctdb.takeover.moves}), the tickle lists and announcements
(L{ctdb.takeover.tickles}) and the node's own IP check
(L{ctdb.takeover.ipcheck}), on the records of L{ctdb.takeover.state}; the
answers they share are in L{ctdb.takeover.replies}.  L{ctdb.takeover.fence}
makes a node that may be cut off give every address up at once.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import TYPE_CHECKING

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ctdb.config.publicaddresses import PublicAddress
from ctdb.interfaces import (
    IAddressSystem,
    IClientConnection,
    IClientObserver,
    IMetricsSource,
    IRecoveryParticipant,
)
from ctdb.protocols import packet as P
from ctdb.protocols.basictypes import (
    SOCK_ADDR_SIZE,
    decodeSockAddr,
)
from ctdb.protocols.controls import Control
from ctdb.protocols.nodestate import (
    CTDB_RECOVERY_NORMAL,
    NODE_FLAGS_DISABLED,
    NODE_FLAGS_INACTIVE,
    RunState,
    encodeBanState,
)
from ctdb.protocols.publicips import (
    CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE,
    Interface,
    PublicIP,
    PublicIPInfo,
    encodeInterfaceList,
    encodePublicIPList,
)
from ctdb.takeover.addresslist import AddressList
from ctdb.takeover.fence import AddressFence
from ctdb.takeover.ipcheck import LocalIPCheck
from ctdb.takeover.metrics import PublicAddressMetrics
from ctdb.takeover.moves import AddressMoves
from ctdb.takeover.replies import OK, exactSize, failed
from ctdb.takeover.state import CTDB_IFACE_SIZE, Iface, Vnn, VnnTable
from ctdb.takeover.tickles import TickleLists

if TYPE_CHECKING:
    from ctdb.daemon.controls import Handler
    from ctdb.daemon.core import ControlResult, Daemon

#: how long a release waits for ctdb_killtcp's resets (50 tries, 100 ms apart)
KILLTCP_TIMEOUT = 5.0

#: the events ctdbd runs while in recovery (event_allowed_during_recovery)
_EVENTS_IN_RECOVERY = frozenset(
    {"init", "setup", "startrecovery", "shutdown", "releaseip", "ipreallocated"}
)
#: a hung script of these counts as success (ctdb_event_script_run_done)
_HUNG_IS_SUCCESS = frozenset({"startrecovery", "recovered", "takeip", "releaseip"})


@implementer(IClientObserver, IRecoveryParticipant, IMetricsSource)
class PublicAddresses(
    Service,
    AddressList,
    AddressMoves,
    TickleLists,
    LocalIPCheck,
    PublicAddressMetrics,
):
    """
    The public addresses of one node (service C{"takeover"}); see
    L{plugInto}.

    @param addresses: the node's public_addresses entries, in file order.
    @param system: what changes the host (and answers for it).
    @param failoverDisabled: ctdb.conf C{[failover] disabled}.
    @param byScripts: only the event scripts add and remove addresses.
    @param checkAddresses: ask the host whether it holds an address
        (False in ctdbd's test mode).
    @param addressesFile: the file RELOAD_PUBLIC_IPS reads again (without
        one, the addresses given here stand for its contents).
    @raise ConfigLoadError: an entry names an interface the host lacks, or
        an address twice (ctdbd refuses to start).
    """

    log = Logger()
    name = "takeover"  # type: ignore[assignment]

    def __init__(
        self,
        daemon: Daemon,
        addresses: Sequence[PublicAddress],
        system: IAddressSystem,
        *,
        failoverDisabled: bool = False,
        byScripts: bool = False,
        checkAddresses: bool = True,
        addressesFile: str | None = None,
    ) -> None:
        self.daemon = daemon
        self.pnn = daemon.pnn
        self.system = system
        self.failoverDisabled = failoverDisabled
        self.byScripts = byScripts
        self.checkAddresses = checkAddresses
        self.addressesFile = addressesFile
        self._configured = list(addresses)
        #: the rules that make this node give its addresses up (plugInto)
        self.fence: AddressFence | None = None
        self.table = VnnTable()
        self.initTickles()
        self.initIPCheck()
        self.table = self._load(addresses)

    def plugInto(self, daemon: Daemon) -> None:
        """Register every public-IP control, the client and recovery seams,
        and the messages this part answers."""
        handlers: dict[int, Handler] = {
            Control.GET_PUBLIC_IPS: self.control_GET_PUBLIC_IPS,
            Control.GET_PUBLIC_IP_INFO: self.control_GET_PUBLIC_IP_INFO,
            Control.GET_IFACES: self.control_GET_IFACES,
            Control.SET_IFACE_LINK_STATE: self.control_SET_IFACE_LINK_STATE,
            Control.TAKEOVER_IP: self.control_TAKEOVER_IP,
            Control.RELEASE_IP: self.control_RELEASE_IP,
            Control.IPREALLOCATED: self.control_IPREALLOCATED,
            Control.ADD_PUBLIC_IP: self.control_ADD_PUBLIC_IP,
            Control.DEL_PUBLIC_IP: self.control_DEL_PUBLIC_IP,
            Control.RELOAD_PUBLIC_IPS: self.control_RELOAD_PUBLIC_IPS,
        }
        handlers.update(self.tickleControls())
        for opcode, handler in handlers.items():
            daemon.controls.register(opcode, handler)
        daemon.addClientObserver(self)
        daemon.addRecoveryParticipant(self)
        daemon.addMetricsSource(self)
        if not self.failoverDisabled:
            self.fence = AddressFence(self, heartbeats=daemon.heartbeats)
            self.fence.plugInto(daemon)

    def startService(self) -> None:
        """Clean the host, then start the periodic tickle push
        (ctdb_start_tcp_tickle_update) and the IP check."""
        super().startService()
        self.dropStaleAddresses()
        self.startTickleUpdates()
        self.startIPCheck()
        if self.fence is not None:
            self.fence.start()

    def dropStaleAddresses(self) -> None:
        """Daemon mode: take our public addresses off the host if a daemon
        that died left them there (what 10.interface's init event does for
        ctdbd), so that no address is up here before a takeover run says
        so."""
        if self.byScripts or not self.checking:
            return
        for vnn in self.table:
            if vnn.iface is None and vnn.ifaces and self.haveIp(vnn.address):
                self.log.info("Removing stale public address {addr}", addr=vnn.address)
                self._removeFromHost(vnn, vnn.ifaces[0].name)

    def stopService(self) -> defer.Deferred[None] | None:
        """Stop the timers; in daemon mode, take our addresses off the host
        (10.interface's shutdown event does it for ctdbd)."""
        super().stopService()
        self.stopTickleUpdates()
        self.stopIPCheck()
        if self.fence is not None:
            self.fence.stop()
        for vnn in self.table:
            vnn.cancelAnnouncement()
        if self.byScripts or self.failoverDisabled:
            # ctdbd leaves this to the shutdown event (10.interface)
            return None
        for vnn in self.table:
            if vnn.iface is not None:
                self._removeFromHost(vnn, vnn.iface.name)
        return None

    # -- the host ---------------------------------------------------------------------

    def _interfaceExists(self, name: str) -> bool:
        """ctdb_sys_check_iface_exists; a host that cannot tell says no."""
        try:
            return bool(self.system.interfaceExists(name))
        except Exception as e:  # noqa: BLE001 - the host must not crash the daemon
            self.log.error("Cannot check interface {name}: {err}", name=name, err=e)
            return False

    def haveIp(self, address: str) -> bool:
        """ctdb_sys_have_ip; a host that cannot tell says no."""
        try:
            return bool(self.system.hasAddress(address))
        except Exception as e:  # noqa: BLE001
            self.log.error("Cannot check address {addr}: {err}", addr=address, err=e)
            return False

    @property
    def checking(self) -> bool:
        """ctdbd's C{failover_disabled == 0 && do_checkpublicip}."""
        return self.checkAddresses and not self.failoverDisabled

    def _addToHost(self, vnn: Vnn, iface: str) -> str | None:
        """Put the address up (daemon mode: 10.interface's takeip and
        updateip, add_ip_to_iface); None, or the error."""
        if self.byScripts:
            return None
        try:
            self.system.addAddress(vnn.address, vnn.mask, iface)
        except Exception as e:  # noqa: BLE001 - AddressError, or any host failure
            msg = f"Failed to add {vnn.address}/{vnn.mask} on interface {iface}: {e}"
            self.log.error("{msg}", msg=msg)
            return msg
        return None

    def _removeFromHost(self, vnn: Vnn, iface: str) -> str | None:
        """Take the address down (daemon mode: 10.interface's releaseip and
        updateip, delete_ip_from_iface); None, or the error."""
        if self.byScripts:
            return None
        try:
            self.system.removeAddress(vnn.address, vnn.mask, iface)
        except Exception as e:  # noqa: BLE001
            msg = f"Failed to remove {vnn.address}/{vnn.mask} from {iface}: {e}"
            self.log.error("{msg}", msg=msg)
            return msg
        return None

    def _closeSockets(self, vnn: Vnn) -> None:
        """Daemon mode, once an address is off the host: close the server
        ends of its connections that are left (a fence's release skips the
        kill; a kill misses unregistered connections), so that none meets
        a new connection from the same client port if the address comes
        back (L{IAddressSystem.closeSockets})."""
        if self.byScripts or not self.checking:
            return
        try:
            closed = self.system.closeSockets(vnn.address)
        except Exception as e:  # noqa: BLE001 - AddressError, or any host failure
            self.log.warn(
                "Cannot close the TCP sockets of released IP {addr}: {err}",
                addr=vnn.address,
                err=e,
            )
            return
        if closed:
            self.log.info(
                "Closed {n} TCP sockets still bound to released IP {addr}",
                n=closed,
                addr=vnn.address,
            )

    def _killConnections(self, vnn: Vnn, iface: str) -> defer.Deferred[object]:
        """Reset the clients of a released address (10.interface's
        kill_tcp_connections; daemon mode only).

        Not over a dead link: no reset can reach a client then, and the
        kill would only hold the release (and so the address's move) for
        its whole KILLTCP_TIMEOUT.  The new owner's tickle ACKs reset those
        clients once it has the address."""
        conns = list(vnn.tickles)
        if self.byScripts or not conns:
            return defer.succeed(None)
        if self._linkDown(iface):
            self.log.info(
                "Link of {iface} is down: not killing {total} TCP connections "
                "to released IP {addr}",
                iface=iface,
                total=len(conns),
                addr=vnn.address,
            )
            return defer.succeed(None)

        def killed(count: object) -> None:
            self.log.info(
                "Killed {n}/{total} TCP connections to released IP {addr}",
                n=count,
                total=len(conns),
                addr=vnn.address,
            )

        def failed(f: Failure) -> None:
            self.log.error(
                "Failed to kill TCP connections to {addr}: {err}",
                addr=vnn.address,
                err=f.value,
            )

        d = defer.maybeDeferred(
            self.system.killConnections, iface, conns, KILLTCP_TIMEOUT
        )
        return d.addCallbacks(killed, failed)

    def _linkDown(self, iface: str) -> bool:
        """Whether C{iface}'s link is down, as this node last recorded it
        (its IP check, or setifacelink) or as the host says now; a host
        that cannot tell counts as up."""
        record = self.table.findIface(iface)
        if record is not None and not record.linkUp:
            return True
        try:
            return not self.system.linkUp(iface)
        except Exception as e:  # noqa: BLE001 - then try the kill anyway
            self.log.error("Cannot read the link of {name}: {err}", name=iface, err=e)
            return False

    def runEvent(self, event: str, args: str) -> defer.Deferred[int]:
        """ctdb_event_script_callback: the event's status; 0 with no event
        runner, -1 when it cannot be run."""
        runner = self.daemon.eventRunner
        if runner is None:
            return defer.succeed(0)
        if (
            self.daemon.recmode != CTDB_RECOVERY_NORMAL
            and event not in _EVENTS_IN_RECOVERY
        ):
            self.log.error(
                "Refusing to run event '{event}' while in recovery", event=event
            )
            return defer.succeed(-1)

        def done(status: object) -> int:
            result = int(status)  # type: ignore[call-overload]
            if result in (errno.ETIMEDOUT, -errno.ETIMEDOUT) and (
                event in _HUNG_IS_SUCCESS
            ):
                self.log.error("Ignoring hung script for {event} event", event=event)
                return 0
            return result

        def failed(f: Failure) -> int:
            self.log.error(
                "{event} event could not run: {err}", event=event, err=f.value
            )
            return -1

        d = defer.maybeDeferred(runner.runEvent, event, args)
        return d.addCallback(done).addErrback(failed)

    def banSelf(self) -> None:
        """ctdb_ban_self: ban this node for RecoveryBanPeriod."""
        period = int(self.daemon.tunables.RecoveryBanPeriod)
        self.daemon.sendControl(
            self.pnn,
            Control.SET_BAN_STATE,
            encodeBanState(self.pnn, period),
            flags=P.CTDB_CTRL_FLAG_NOREPLY,
        )

    # -- reading the state -------------------------------------------------------------

    def available(self, vnn: Vnn) -> bool:
        """ctdb_vnn_available: may this node host the address now?"""
        d = self.daemon
        if d.runstate != RunState.RUNNING:
            return False
        if d.nodes[self.pnn].flags & (NODE_FLAGS_INACTIVE | NODE_FLAGS_DISABLED):
            return False
        if vnn.deletePending:
            return False
        if self.fence is not None and self.fence.fenced:
            # it gave its addresses up (ctdb.takeover.fence)
            return False
        if vnn.iface is not None and vnn.iface.linkUp:
            return True
        return any(i.linkUp for i in vnn.ifaces)

    def publicIPs(self, onlyAvailable: bool = False) -> list[PublicIP]:
        """Every address with the node this node thinks hosts it, newest
        first; only those it may host now, with C{onlyAvailable}."""
        return [
            PublicIP(vnn.pnn, vnn.address)
            for vnn in self.table
            if not onlyAvailable or self.available(vnn)
        ]

    def control_GET_PUBLIC_IPS(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        """ctdb_control_get_public_ips (ONLY_AVAILABLE in the control's
        flags)."""
        exactSize(req, 0)
        only = bool(req.flags & CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE)
        return (0, encodePublicIPList(self.publicIPs(only)), b"")

    def control_GET_PUBLIC_IP_INFO(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        """ctdb_control_get_public_ip_info: one address, its owner, its
        interfaces and the one it is up on here."""
        exactSize(req, SOCK_ADDR_SIZE)
        address, _port = decodeSockAddr(req.data)
        vnn = self.table.find(address)
        if vnn is None:
            self.log.error(
                "Could not get public ip info, '{addr}'not a public address",
                addr=address,
            )
            return failed(f"{address} is not a public address")
        active = 0xFFFFFFFF
        for i, iface in enumerate(vnn.ifaces):
            if iface is vnn.iface:
                active = i
        info = PublicIPInfo(
            PublicIP(vnn.pnn, vnn.address),
            active,
            [_wire(i) for i in vnn.ifaces],
        )
        return (0, info.encode(), b"")

    def control_GET_IFACES(self, req: P.ReqControl, client: object) -> ControlResult:
        """ctdb_control_get_ifaces."""
        exactSize(req, 0)
        return (0, encodeInterfaceList([_wire(i) for i in self.table.ifaces]), b"")

    def control_SET_IFACE_LINK_STATE(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        """ctdb_control_set_iface_link (ctdb setifacelink, and
        10.interface's monitor event)."""
        exactSize(req, Interface.SIZE)
        if req.data[CTDB_IFACE_SIZE] != 0:
            raw = req.data[:CTDB_IFACE_SIZE].split(b"\0", 1)[0]
            self.log.error(
                "name[{name}] not terminated", name=raw.decode(errors="replace")
            )
            return failed("interface name not terminated")
        info = Interface.decode(req.data)
        if info.link_state not in (0, 1):
            self.log.error("link_state[{state}] invalid", state=info.link_state)
            return failed(f"invalid link state {info.link_state}")
        if info.references != 0:
            self.log.error("references[{n}] should be 0", n=info.references)
            return failed("references should be 0")
        iface = self.table.findIface(info.name)
        if iface is None:
            return failed(f"no interface {info.name}")
        self.setLink(iface, bool(info.link_state))
        return OK

    def setLink(self, iface: Iface, up: bool) -> None:
        """Record a link's new state, logged (at error level) as ctdbd
        logs it."""
        if iface.linkUp == up:
            return
        self.log.error(
            "iface[{name}] has changed it's link status {old} => {new}",
            name=iface.name,
            old="up" if iface.linkUp else "down",
            new="up" if up else "down",
        )
        iface.linkUp = up

    # -- IRecoveryParticipant -------------------------------------------------------------

    def becameInactive(self) -> None:
        """ctdb_node_become_inactive: drop every public address (only if the
        node really is banned or stopped: FREEZE alone does not)."""
        if not self.daemon.nodes[self.pnn].flags & NODE_FLAGS_INACTIVE:
            return
        self.log.info("Dropping all public IP addresses")
        self.releaseAllIps().addErrback(
            lambda f: self.log.failure("releasing all public IPs", f)
        )

    def recoveryStarted(self) -> None:
        pass

    def whyStayInRecovery(self) -> str | None:
        return None

    def recoveryModeNormal(self) -> None:
        pass

    def recoveryEnded(self, first: bool) -> None:
        """After its first recovery a node that runs no event scripts tells
        the others it started, and they send it their tickle lists at once
        (ctdbd does it once its startup event ran: with event scripts, the
        event lifecycle of ctdb.events does it)."""
        if first and self.daemon.eventRunner is None:
            self.daemon.sendControl(
                P.CTDB_BROADCAST_CONNECTED,
                Control.STARTUP,
                flags=P.CTDB_CTRL_FLAG_NOREPLY,
            )

    # -- ipreallocated --------------------------------------------------------------------

    def control_IPREALLOCATED(
        self, req: P.ReqControl, client: object
    ) -> defer.Deferred[ControlResult]:
        """ctdb_control_ipreallocated: run the ipreallocated event."""
        exactSize(req, 0)
        self.log.info('Running "ipreallocated" event')

        def done(status: int) -> ControlResult:
            if status != 0:
                self.log.error(
                    ' "ipreallocated" event script failed (status {status})',
                    status=status,
                )
                if status == -errno.ETIMEDOUT:
                    self.banSelf()
                return failed(f"ipreallocated event failed ({status})", status)
            return OK

        return self.runEvent("ipreallocated", "").addCallback(done)

    # -- IClientObserver -------------------------------------------------------------------

    def clientGone(self, client: IClientConnection) -> None:
        """ctdb_takeover_client_destructor_hook."""
        self.dropClientTickles(client)


def _wire(iface: Iface) -> Interface:
    """A struct ctdb_iface of an interface's record."""
    return Interface(iface.name, int(iface.linkUp), iface.references)
