# -*- test-case-name: tests.takeover.test_node -*-
"""
What a node knows of its public addresses (C{struct ctdb_vnn}) and of the
interfaces they live on (C{struct ctdb_interface}), kept in the order
Samba 4.17's ctdbd keeps them (C{server/ctdb_takeover.c}): a new address
and a new interface go to the front of their lists (C{DLIST_ADD}), the
interfaces of one address stay in the order they were named.  Addresses
are kept and looked up as ctdb_same_ip compares them: an IPv4-mapped IPv6
address is the IPv4 address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from twisted.internet.interfaces import IDelayedCall

from ctdb.protocols.packet import CTDB_UNKNOWN_PNN
from ctdb.protocols.publicips import Connection, canonicalAddress

#: the longest interface name ctdbd keeps (CTDB_IFACE_SIZE)
CTDB_IFACE_SIZE = 16


@dataclass(eq=False)
class Iface:
    """One interface: its link state and how many hosted addresses use it."""

    name: str
    linkUp: bool = True
    references: int = 0


@dataclass(eq=False)
class Vnn:
    """One public address of this node."""

    address: str
    mask: int
    #: the interfaces it may use, in the order they were configured
    ifaces: list[Iface]
    #: the node serving it, as far as this node knows
    pnn: int = CTDB_UNKNOWN_PNN
    #: the interface it is up on here (None: not hosted here)
    iface: Iface | None = None
    #: the client connections to tickle when it moves (client end first)
    tickles: list[Connection] = field(default_factory=list)
    #: the other nodes need our tickle list again
    tickleUpdateNeeded: bool = False
    #: a take, release or update is running (one at a time)
    updateInFlight: bool = False
    #: DEL_PUBLIC_IP came while it was hosted: delete once released
    deletePending: bool = False
    #: the next gratuitous ARP of a take (ctdbd's takeover_ctx)
    announcement: IDelayedCall | None = None

    @property
    def ifaceName(self) -> str:
        """ctdb_vnn_iface_string: the interface it is up on, or __none__."""
        return ifaceString(self.iface)

    def hasInterface(self, iface: Iface) -> bool:
        """vnn_has_interface."""
        return any(i is iface for i in self.ifaces)

    def cancelAnnouncement(self) -> None:
        """Stop the announcement of a take (ctdbd frees takeover_ctx)."""
        cancelCall(self.announcement)
        self.announcement = None


def cancelCall(call: IDelayedCall | None) -> None:
    """Cancel C{call} if it is still to come."""
    if call is not None and call.active():
        call.cancel()


def ifaceString(iface: Iface | None) -> str:
    """iface_string: the name, or __none__."""
    return iface.name if iface is not None else "__none__"


def canonicalIp(address: str) -> str:
    """ctdb_canonicalize_ip: an IPv4-mapped IPv6 address as plain IPv4,
    anything else in its canonical spelling."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return canonicalAddress(address)


class VnnTable:
    """The public addresses of a node and their interfaces."""

    def __init__(self) -> None:
        #: ctdb->vnn: newest first
        self.vnns: list[Vnn] = []
        #: ctdb->ifaces: newest first
        self.ifaces: list[Iface] = []

    def __len__(self) -> int:
        return len(self.vnns)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self.vnns))

    def find(self, address: str) -> Vnn | None:
        """find_public_ip_vnn: the address (port ignored), or None.  As
        ctdb_same_ip, an IPv4-mapped IPv6 address names the IPv4 one."""
        try:
            key = canonicalIp(address)
        except ValueError:
            return None
        for vnn in self.vnns:
            if vnn.address == key:
                return vnn
        return None

    def findIface(self, name: str) -> Iface | None:
        """ctdb_find_iface."""
        for iface in self.ifaces:
            if iface.name == name:
                return iface
        return None

    def addIface(self, name: str) -> Iface:
        """ctdb_add_local_iface (the caller checked the name's length)."""
        iface = self.findIface(name)
        if iface is None:
            iface = Iface(name)
            self.ifaces.insert(0, iface)
        return iface

    def add(self, address: str, mask: int, ifaces: list[str]) -> Vnn:
        """The list half of ctdb_add_public_address: a new address, first,
        on its interfaces (the caller checked them and that it is new)."""
        vnn = Vnn(canonicalIp(address), mask, [self.addIface(n) for n in ifaces])
        self.vnns.insert(0, vnn)
        return vnn

    def bestIface(self, vnn: Vnn) -> Iface | None:
        """ctdb_vnn_best_iface: the first up interface with the fewest
        references."""
        best: Iface | None = None
        for cur in vnn.ifaces:
            if not cur.linkUp:
                continue
            if best is None or cur.references < best.references:
                best = cur
        return best

    def unassign(self, vnn: Vnn, mypnn: int) -> None:
        """ctdb_vnn_unassign_iface."""
        if vnn.iface is not None:
            vnn.iface.references -= 1
        vnn.iface = None
        if vnn.pnn == mypnn:
            vnn.pnn = CTDB_UNKNOWN_PNN

    def delete(self, vnn: Vnn, mypnn: int) -> None:
        """do_delete_ip: forget the address, and every interface that only
        it named."""
        vnn.cancelAnnouncement()
        self.vnns = [v for v in self.vnns if v is not vnn]
        self.unassign(vnn, mypnn)
        for iface in list(self.ifaces):
            if not vnn.hasInterface(iface):
                continue
            if not any(v.hasInterface(iface) for v in self.vnns):
                self.ifaces = [i for i in self.ifaces if i is not iface]
