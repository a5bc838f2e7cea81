# -*- test-case-name: tests.takeover.test_node -*-
"""
The node side of public-IP takeover (Samba 4.17 C{server/ctdb_takeover.c}):
every public-IP control a node answers, its addresses and interfaces, and
what it does to the host when the leader moves an address to or from it.

Two ways to change the host, chosen per node:

  - C{byScripts=False} (``twistd ctdb``, ``ctdb-cluster``): the daemon adds
    and removes addresses itself through an L{IAddressSystem}, kills the
    connections of a released address, and still runs the takeip,
    releaseip and updateip events when an event runner is plugged in;
  - C{byScripts=True} (the drop-in ``ctdbd``, as ctdbd): only the events
    change addresses (Samba's C{10.interface}); the daemon announces a taken
    address with gratuitous ARPs and tickle ACKs, as ctdbd does.

C{checkAddresses=False} is ctdbd's test mode (C{CTDB_TEST_MODE}: no
C{do_checkpublicip}): the host is never asked whether it holds an address,
the daemon's own records decide, and no announcement is sent.

The tickle lists (L{ctdb.takeover.tickles}) and the node's own IP check
(L{ctdb.takeover.ipcheck}) are parts of the same object.
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

from ctdb.config.messages import ERR, Message
from ctdb.config.publicaddresses import PublicAddress, addressesFromFile
from ctdb.errors import ConfigLoadError, MalformedPacket
from ctdb.interfaces import (
    IAddressSystem,
    IClientConnection,
    IClientObserver,
    IRecoveryParticipant,
)
from ctdb.protocols import packet as P
from ctdb.protocols.basictypes import (
    SOCK_ADDR_SIZE,
    decodeSockAddr,
    encodeU32,
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
    AddrInfo,
    Interface,
    PublicIP,
    PublicIPInfo,
    encodeInterfaceList,
    encodePublicIPList,
)
from ctdb.protocols.srvids import (
    CTDB_SRVID_REBALANCE_NODE,
    CTDB_SRVID_RELEASE_IP,
    CTDB_SRVID_TAKE_IP,
)
from ctdb.takeover.ipcheck import LocalIPCheck
from ctdb.takeover.state import CTDB_IFACE_SIZE, Iface, Vnn, VnnTable, ifaceString
from ctdb.takeover.tickles import TickleLists

if TYPE_CHECKING:
    from ctdb.daemon.controls import Handler
    from ctdb.daemon.core import ControlResult, Daemon

OK: ControlResult = (0, b"", b"")
FAIL: ControlResult = (-1, b"", b"")

#: how long a release waits for ctdb_killtcp's resets (50 tries, 100 ms apart)
KILLTCP_TIMEOUT = 5.0

#: the events ctdbd runs while in recovery (event_allowed_during_recovery)
_EVENTS_IN_RECOVERY = frozenset(
    {"init", "setup", "startrecovery", "shutdown", "releaseip", "ipreallocated"}
)
#: a hung script of these counts as success (ctdb_event_script_run_done)
_HUNG_IS_SUCCESS = frozenset({"startrecovery", "recovered", "takeip", "releaseip"})


def _exactSize(req: P.ReqControl, size: int) -> None:
    """CHECK_CONTROL_DATA_SIZE."""
    if len(req.data) != size:
        raise MalformedPacket(
            f"{Control(req.opcode).name}: data size {len(req.data)} != {size}"
        )


def _failed(message: str, status: int = -1) -> ControlResult:
    return (status, b"", message.encode())


@implementer(IClientObserver, IRecoveryParticipant)
class PublicAddresses(Service, TickleLists, LocalIPCheck):
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
        self.table = VnnTable()
        self.initTickles()
        self.initIPCheck()
        self.table = self._load(addresses)

    # -- building -----------------------------------------------------------------

    def _load(self, addresses: Sequence[PublicAddress]) -> VnnTable:
        """ctdb_set_public_addresses: every line in order, all or nothing."""
        table = VnnTable()
        for number, entry in enumerate(addresses, 1):
            problem = self._addAddress(
                table, entry.address, entry.mask, entry.interfaces
            )
            if problem is not None:
                raise ConfigLoadError(
                    [
                        Message(ERR, problem),
                        Message(
                            ERR,
                            f"Failed to add line {number} to the public address list",
                        ),
                        Message(ERR, "Unable to setup public IP addresses"),
                    ]
                )
        return table

    def _addAddress(
        self, table: VnnTable, address: str, mask: int, ifaces: Sequence[str]
    ) -> str | None:
        """ctdb_add_public_address: None, or why the address was refused."""
        if table.find(address) is not None:
            return f"Duplicate public IP address '{address}'"
        names = [n for n in ifaces if n]
        for name in names:
            if not self._interfaceExists(name):
                return f"Unknown interface {name} for public address {address}"
            if len(name.encode()) > CTDB_IFACE_SIZE:
                self.log.error('Interface name too long "{name}"', name=name)
                return f"Failed to add interface '{name}' for public address {address}"
        table.add(address, mask, names)
        return None

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

    def startService(self) -> None:
        super().startService()
        self.dropStaleAddresses()
        self.startTickleUpdates()
        self.startIPCheck()

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
        super().stopService()
        self.stopTickleUpdates()
        self.stopIPCheck()
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
        try:
            return bool(self.system.interfaceExists(name))
        except Exception as e:  # noqa: BLE001 - the host must not crash the daemon
            self.log.error("Cannot check interface {name}: {err}", name=name, err=e)
            return False

    def haveIp(self, address: str) -> bool:
        """ctdb_sys_have_ip."""
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
        """Put the address up (daemon mode); None, or the error."""
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
        if self.byScripts:
            return None
        try:
            self.system.removeAddress(vnn.address, vnn.mask, iface)
        except Exception as e:  # noqa: BLE001
            msg = f"Failed to remove {vnn.address}/{vnn.mask} from {iface}: {e}"
            self.log.error("{msg}", msg=msg)
            return msg
        return None

    def _killConnections(self, vnn: Vnn, iface: str) -> defer.Deferred[object]:
        """Reset the clients of a released address (10.interface's
        kill_tcp_connections; daemon mode only)."""
        conns = list(vnn.tickles)
        if self.byScripts or not conns:
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
        if vnn.iface is not None and vnn.iface.linkUp:
            return True
        return any(i.linkUp for i in vnn.ifaces)

    def publicIPs(self, onlyAvailable: bool = False) -> list[PublicIP]:
        return [
            PublicIP(vnn.pnn, vnn.address)
            for vnn in self.table
            if not onlyAvailable or self.available(vnn)
        ]

    def control_GET_PUBLIC_IPS(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        _exactSize(req, 0)
        only = bool(req.flags & CTDB_PUBLIC_IP_FLAGS_ONLY_AVAILABLE)
        return (0, encodePublicIPList(self.publicIPs(only)), b"")

    def control_GET_PUBLIC_IP_INFO(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        _exactSize(req, SOCK_ADDR_SIZE)
        address, _port = decodeSockAddr(req.data)
        vnn = self.table.find(address)
        if vnn is None:
            self.log.error(
                "Could not get public ip info, '{addr}'not a public address",
                addr=address,
            )
            return _failed(f"{address} is not a public address")
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
        _exactSize(req, 0)
        return (0, encodeInterfaceList([_wire(i) for i in self.table.ifaces]), b"")

    def control_SET_IFACE_LINK_STATE(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        _exactSize(req, Interface.SIZE)
        if req.data[CTDB_IFACE_SIZE] != 0:
            raw = req.data[:CTDB_IFACE_SIZE].split(b"\0", 1)[0]
            self.log.error(
                "name[{name}] not terminated", name=raw.decode(errors="replace")
            )
            return _failed("interface name not terminated")
        info = Interface.decode(req.data)
        if info.link_state not in (0, 1):
            self.log.error("link_state[{state}] invalid", state=info.link_state)
            return _failed(f"invalid link state {info.link_state}")
        if info.references != 0:
            self.log.error("references[{n}] should be 0", n=info.references)
            return _failed("references should be 0")
        iface = self.table.findIface(info.name)
        if iface is None:
            return _failed(f"no interface {info.name}")
        self.setLink(iface, bool(info.link_state))
        return OK

    def setLink(self, iface: Iface, up: bool) -> None:
        if iface.linkUp == up:
            return
        self.log.error(
            "iface[{name}] has changed it's link status {old} => {new}",
            name=iface.name,
            old="up" if iface.linkUp else "down",
            new="up" if up else "down",
        )
        iface.linkUp = up

    # -- take ----------------------------------------------------------------------------

    def control_TAKEOVER_IP(
        self, req: P.ReqControl, client: object
    ) -> ControlResult | defer.Deferred[ControlResult]:
        """ctdb_control_takeover_ip."""
        _exactSize(req, PublicIP.SIZE)
        pip = PublicIP.decode(req.data)
        if pip.pnn != self.pnn:
            self.log.error(
                "takeoverip called for an ip '{addr}' with pnn {pnn}, "
                "but we're node {me}",
                addr=pip.address,
                pnn=_signed(pip.pnn),
                me=self.pnn,
            )
            return _failed("takeover for another node")
        vnn = self.table.find(pip.address)
        if vnn is None:
            self.log.info(
                "takeoverip called for an ip '{addr}' that is not a public address",
                addr=pip.address,
            )
            return OK
        have = self.checking and self.haveIp(vnn.address)
        best = self.table.bestIface(vnn)
        if best is None:
            self.log.error(
                "takeoverip of IP {addr}/{mask} failed to finda usable interface "
                "(old {old}, have_ip {have})",
                addr=vnn.address,
                mask=vnn.mask,
                old=vnn.ifaceName,
                have=int(have),
            )
            return _failed(f"no usable interface for {vnn.address}")
        if vnn.pnn not in (self.pnn, P.CTDB_UNKNOWN_PNN) and have:
            self.log.critical(
                "takeoverip of IP {addr} is known to the kernel, and we have it "
                "on iface[{iface}], but it was assigned to node {pnn}and we are "
                "node {me}, banning ourself",
                addr=vnn.address,
                iface=vnn.ifaceName,
                pnn=vnn.pnn,
                me=self.pnn,
            )
            self.banSelf()
            return _failed(f"{vnn.address} is held here but assigned elsewhere")
        update = False
        if vnn.pnn == P.CTDB_UNKNOWN_PNN and have:
            self.log.warn(
                "Doing updateip for IP {addr} already on an interface",
                addr=vnn.address,
            )
            update = True
        if (
            vnn.iface is not None
            and vnn.iface is not best
            and (not vnn.iface.linkUp or vnn.iface.references > best.references + 1)
        ):
            # only move when the link is down or the rebalance gains something
            update = True
        if not have:
            if update:
                self.table.unassign(vnn, self.pnn)
            return self._takeIp(vnn)
        if update:
            return self._updateIp(vnn)
        self.log.info(
            "Redundant takeover of IP {addr}/{mask} on interface {iface} "
            "(ip already held)",
            addr=vnn.address,
            mask=vnn.mask,
            iface=vnn.ifaceName,
        )
        return OK

    def _assign(self, vnn: Vnn) -> bool:
        """ctdb_vnn_assign_iface."""
        if vnn.iface is not None:
            self.log.info(
                "public address '{addr}' still assigned to iface '{iface}'",
                addr=vnn.address,
                iface=vnn.ifaceName,
            )
            return True
        best = self.table.bestIface(vnn)
        if best is None:
            self.log.error(
                "public address '{addr}' cannot assign to iface any iface",
                addr=vnn.address,
            )
            return False
        vnn.iface = best
        best.references += 1
        vnn.pnn = self.pnn
        self.log.info(
            "public address '{addr}' now assigned to iface '{iface}' refs[{n}]",
            addr=vnn.address,
            iface=best.name,
            n=best.references,
        )
        return True

    def _takeIp(self, vnn: Vnn) -> ControlResult | defer.Deferred[ControlResult]:
        """ctdb_do_takeip."""
        if vnn.updateInFlight:
            self.log.info(
                "Takeover of IP {addr}/{mask} rejected update for this IP "
                "already in flight",
                addr=vnn.address,
                mask=vnn.mask,
            )
            return _failed(f"an update of {vnn.address} is in flight")
        if not self._assign(vnn):
            self.log.error(
                "Takeover of IP {addr}/{mask} failed to assign a usable interface",
                addr=vnn.address,
                mask=vnn.mask,
            )
            return _failed(f"no usable interface for {vnn.address}")
        vnn.updateInFlight = True
        iface = vnn.ifaceName
        self.log.info(
            "Takeover of IP {addr}/{mask} on interface {iface}",
            addr=vnn.address,
            mask=vnn.mask,
            iface=iface,
        )
        return self._finishTake(vnn, iface).addBoth(self._done, vnn)

    @defer.inlineCallbacks
    def _finishTake(self, vnn: Vnn, iface: str):  # type: ignore[no-untyped-def]
        problem = self._addToHost(vnn, iface)
        if problem is not None:
            return _failed(problem)
        status = yield self.runEvent("takeip", f"{iface} {vnn.address} {vnn.mask}")
        if status != 0:
            self.log.error(
                "Failed to takeover IP {addr} on interface {iface}",
                addr=vnn.address,
                iface=vnn.ifaceName,
            )
            return _failed(f"takeip event failed ({status})", status)
        if self.checkAddresses:
            self.announce(vnn)
        self.log.info("sending TAKE_IP for '{addr}'", addr=vnn.address)
        self.daemon.sendMessage(self.pnn, CTDB_SRVID_TAKE_IP, _cstring(vnn.address))
        return OK

    def _done(self, result: object, vnn: Vnn) -> object:
        vnn.updateInFlight = False
        if isinstance(result, Failure):
            self.log.failure("public IP update of {addr}", result, addr=vnn.address)
            return _failed("internal error")
        return result

    def _updateIp(self, vnn: Vnn) -> ControlResult | defer.Deferred[ControlResult]:
        """ctdb_do_updateip: move the address to a better interface."""
        if vnn.updateInFlight:
            self.log.info(
                "Update of IP {addr}/{mask} rejected update for this IP "
                "already in flight",
                addr=vnn.address,
                mask=vnn.mask,
            )
            return _failed(f"an update of {vnn.address} is in flight")
        old = vnn.iface
        oldName = ifaceString(old)
        self.table.unassign(vnn, self.pnn)
        if not self._assign(vnn):
            self.log.error(
                "Update of IP {addr}/{mask} failed to assign a usable interface "
                "(old iface '{old}')",
                addr=vnn.address,
                mask=vnn.mask,
                old=oldName,
            )
            return _failed(f"no usable interface for {vnn.address}")
        if old is vnn.iface:
            return OK
        vnn.updateInFlight = True
        newName = vnn.ifaceName
        self.log.info(
            "Update of IP {addr}/{mask} from interface {old} to {new}",
            addr=vnn.address,
            mask=vnn.mask,
            old=oldName,
            new=newName,
        )
        return self._finishUpdate(vnn, old, oldName, newName).addBoth(self._done, vnn)

    @defer.inlineCallbacks
    def _finishUpdate(  # type: ignore[no-untyped-def]
        self, vnn: Vnn, old: Iface | None, oldName: str, newName: str
    ):
        problem = None
        if old is not None:
            self._removeFromHost(vnn, oldName)
        problem = self._addToHost(vnn, newName)
        status = -1
        if problem is None:
            status = yield self.runEvent(
                "updateip", f"{oldName} {newName} {vnn.address} {vnn.mask}"
            )
        if status != 0:
            self.log.error(
                "Failed update of IP {addr} from interface {old} to {new}",
                addr=vnn.address,
                old=oldName,
                new=newName,
            )
            # as ctdbd: put the old interface back and let the next run fix it
            self.table.unassign(vnn, self.pnn)
            if old is not None:
                vnn.iface = old
                old.references += 1
            return _failed(problem or f"updateip event failed ({status})", status)
        if not self.byScripts and self.checkAddresses:
            # what 10.interface's updateip does: gratarp, tickle the clients
            self.announce(vnn, keepTickles=True)
        return OK

    # -- release ------------------------------------------------------------------------

    def control_RELEASE_IP(
        self, req: P.ReqControl, client: object
    ) -> ControlResult | defer.Deferred[ControlResult]:
        """ctdb_control_release_ip."""
        _exactSize(req, PublicIP.SIZE)
        pip = PublicIP.decode(req.data)
        vnn = self.table.find(pip.address)
        if vnn is None:
            self.log.info(
                "releaseip called for an ip '{addr}' that is not a public address",
                addr=pip.address,
            )
            return OK
        vnn.cancelAnnouncement()
        # A release sent to a node not hosting the address tells it where
        # the address goes ("ctdb ip" asks one node only).
        if self.checking:
            if not self.haveIp(vnn.address):
                self.log.debug(
                    "Redundant release of IP {addr}/{mask} on interface {iface} "
                    "(ip not held)",
                    addr=vnn.address,
                    mask=vnn.mask,
                    iface=vnn.ifaceName,
                )
                vnn.pnn = pip.pnn
                self.table.unassign(vnn, self.pnn)
                return OK
        elif vnn.iface is None:
            self.log.debug(
                "Redundant release of IP {addr}/{mask} (ip not held)",
                addr=vnn.address,
                mask=vnn.mask,
            )
            vnn.pnn = pip.pnn
            return OK
        if vnn.updateInFlight:
            self.log.info(
                "Release of IP {addr}/{mask} rejected update for this IP "
                "already in flight",
                addr=vnn.address,
                mask=vnn.mask,
            )
            return _failed(f"an update of {vnn.address} is in flight")
        iface = vnn.ifaceName
        self.log.info(
            "Release of IP {addr}/{mask} on interface {iface}  node:{pnn}",
            addr=vnn.address,
            mask=vnn.mask,
            iface=iface,
            pnn=_signed(pip.pnn),
        )
        vnn.updateInFlight = True
        return self._finishRelease(vnn, iface, pip.pnn).addBoth(self._done, vnn)

    @defer.inlineCallbacks
    def _finishRelease(  # type: ignore[no-untyped-def]
        self, vnn: Vnn, iface: str, target: int
    ):
        status = yield self.runEvent("releaseip", f"{iface} {vnn.address} {vnn.mask}")
        if status == -errno.ETIMEDOUT:
            self.banSelf()
        yield self._killConnections(vnn, iface)
        self._removeFromHost(vnn, iface)
        if self.checking and self.haveIp(vnn.address):
            self.log.error(
                "IP {addr} still hosted during release IP callback, failing",
                addr=vnn.address,
            )
            return _failed(f"{vnn.address} is still on an interface")
        vnn.pnn = target
        self.releasePost(vnn)
        return OK

    def releasePost(self, vnn: Vnn) -> None:
        """release_ip_post: tell the local clients (smbd drops the address's
        connections), forget the interface, delete it if DEL_PUBLIC_IP
        asked while it was hosted."""
        self.log.info("Sending RELEASE_IP message for {addr}", addr=vnn.address)
        self.daemon.sendMessage(self.pnn, CTDB_SRVID_RELEASE_IP, _cstring(vnn.address))
        self.table.unassign(vnn, self.pnn)
        if vnn.deletePending:
            self.table.delete(vnn, self.pnn)

    @defer.inlineCallbacks
    def releaseAllIps(self):  # type: ignore[no-untyped-def]
        """ctdb_release_all_ips: a banned or stopped node lets go of every
        address it holds."""
        if self.failoverDisabled:
            return 0
        count = 0
        for vnn in self.table:
            if not self.haveIp(vnn.address):
                self.table.unassign(vnn, self.pnn)
                continue
            if vnn.updateInFlight:
                self.log.warn(
                    "Not releasing IP {addr}/{mask} on interface {iface}, an "
                    "update is already in progress",
                    addr=vnn.address,
                    mask=vnn.mask,
                    iface=vnn.ifaceName,
                )
                continue
            vnn.updateInFlight = True
            iface = vnn.ifaceName
            self.log.info(
                "Release of IP {addr}/{mask} on interface {iface} node:-1",
                addr=vnn.address,
                mask=vnn.mask,
                iface=iface,
            )
            vnn.cancelAnnouncement()
            yield self.runEvent("releaseip", f"{iface} {vnn.address} {vnn.mask}")
            yield self._killConnections(vnn, iface)
            self._removeFromHost(vnn, iface)
            if self.haveIp(vnn.address):
                self.log.error("IP address {addr} not released", addr=vnn.address)
                vnn.updateInFlight = False
                continue
            self.releasePost(vnn)
            vnn.updateInFlight = False
            count += 1
        self.log.info("Released {n} public IPs", n=count)
        return count

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

    def recoveryModeNormal(self) -> None:
        pass

    def recoveryEnded(self, first: bool) -> None:
        pass

    # -- ipreallocated --------------------------------------------------------------------

    def control_IPREALLOCATED(
        self, req: P.ReqControl, client: object
    ) -> defer.Deferred[ControlResult]:
        """ctdb_control_ipreallocated: run the ipreallocated event."""
        _exactSize(req, 0)
        self.log.info('Running "ipreallocated" event')

        def done(status: int) -> ControlResult:
            if status != 0:
                self.log.error(
                    ' "ipreallocated" event script failed (status {status})',
                    status=status,
                )
                if status == -errno.ETIMEDOUT:
                    self.banSelf()
                return _failed(f"ipreallocated event failed ({status})", status)
            return OK

        return self.runEvent("ipreallocated", "").addCallback(done)

    # -- add, delete, reload ------------------------------------------------------------

    def _addrInfo(self, req: P.ReqControl) -> AddrInfo:
        """The ctdb_addr_info of ADD/DEL_PUBLIC_IP and SEND_GRATUITOUS_ARP,
        with ctdbd's size checks."""
        head = SOCK_ADDR_SIZE + 8
        if len(req.data) < head:
            self.log.error("Too small indata to hold a ctdb_addr_info structure")
            raise MalformedPacket("addr_info: too small")
        length = int.from_bytes(req.data[SOCK_ADDR_SIZE + 4 : head], "little")
        if len(req.data) != head + length:
            self.log.error(
                "Wrong size of indata. Was {got} bytes but should be {want} bytes",
                got=len(req.data),
                want=head + length,
            )
            raise MalformedPacket("addr_info: wrong size")
        return AddrInfo.decode(req.data)

    def control_ADD_PUBLIC_IP(self, req: P.ReqControl, client: object) -> ControlResult:
        """ctdb_control_add_public_address."""
        info = self._addrInfo(req)
        self.log.info("Add IP {addr}", addr=info.address)
        problem = self._addAddress(
            self.table, info.address, info.mask, (info.iface or "").split(",")
        )
        if problem is not None:
            self.log.error("{problem}", problem=problem)
            self.log.error("Failed to add public address")
            return _failed(problem)
        return OK

    def control_DEL_PUBLIC_IP(self, req: P.ReqControl, client: object) -> ControlResult:
        """ctdb_control_del_public_address: a hosted address is only marked,
        and goes when it is released (the next takeover run)."""
        info = self._addrInfo(req)
        self.log.info("Delete IP {addr}", addr=info.address)
        vnn = self.table.find(info.address)
        if vnn is None:
            self.log.error(
                "Delete IP of unknown public IP address {addr}", addr=info.address
            )
            return _failed(f"{info.address} is not a public address")
        if vnn.pnn == self.pnn:
            vnn.deletePending = True
        else:
            self.table.delete(vnn, self.pnn)
        return OK

    def control_RELOAD_PUBLIC_IPS(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        """ctdb_control_reload_public_ips (its child, ctdb_reloadips_child,
        done in place): delete what left the file, add what is new."""
        _exactSize(req, 0)
        try:
            fresh = self._reread()
        except ConfigLoadError as e:
            for m in e.messages:
                self.log.error("{text}", text=m.text)
            self.log.error("Failed to re-read public addresses file")
            self.log.error("Reloadips child process returned error")
            return _failed("Failed to re-read public addresses file", 1)
        status = 0
        for ip in self.publicIPs():
            if fresh.find(ip.address) is None:
                self.log.info(
                    "IP {addr} no longer configured, deleting it", addr=ip.address
                )
                vnn = self.table.find(ip.address)
                assert vnn is not None
                if vnn.pnn == self.pnn:
                    vnn.deletePending = True
                else:
                    self.table.delete(vnn, self.pnn)
        first = True
        for vnn in fresh:
            if self.table.find(vnn.address) is not None:
                continue
            self.log.info("New IP {addr} configured, adding it", addr=vnn.address)
            if first:
                self.daemon.sendMessage(
                    P.CTDB_BROADCAST_CONNECTED,
                    CTDB_SRVID_REBALANCE_NODE,
                    encodeU32(self.pnn),
                )
                first = False
            problem = self._addAddress(
                self.table, vnn.address, vnn.mask, [i.name for i in vnn.ifaces]
            )
            if problem is not None:
                self.log.error("{problem}", problem=problem)
                status = 1
        if status:
            self.log.error("Add/delete IPs failed")
            self.log.error("Reloadips child process returned error")
            return _failed("Add/delete IPs failed", 1)
        return OK

    def _reread(self) -> VnnTable:
        if self.addressesFile is None:
            entries = self._configured
        else:
            entries = addressesFromFile(self.addressesFile)
        return self._load(entries)

    # -- IClientObserver -------------------------------------------------------------------

    def clientGone(self, client: IClientConnection) -> None:
        self.dropClientTickles(client)


def _wire(iface: Iface) -> Interface:
    return Interface(iface.name, int(iface.linkUp), iface.references)


def _cstring(text: str) -> bytes:
    return text.encode() + b"\0"


def _signed(pnn: int) -> int:
    """A pnn as ctdbd prints it with %d."""
    return pnn - (1 << 32) if pnn >= 1 << 31 else pnn
