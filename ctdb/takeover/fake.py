# -*- test-case-name: tests.takeover.test_system -*-
"""
L{FakeAddressSystem}: an L{IAddressSystem} in memory for unit tests.  It
keeps interfaces (with a link state a test can flip) and the addresses on
them, applies the same rules as L{ctdb.takeover.system.LinuxAddressSystem}
(an address on another interface is an error, removing an absent one is
not), and records every call that would have touched the host, as it is
made and whatever came of it, in L{FakeAddressSystem.calls}:

    ("add", address, mask, iface)          ("remove", address, mask, iface)
    ("arp", address, iface)                ("tickle", src, dst)
    ("tcp", src, dst, seq, ack, rst)       ("kill", iface, connections, timeout)

(a segment with seq and ack 0 and no RST is a "tickle"; any other is a
"tcp").  L{FakeAddressSystem.fail} makes a method raise L{AddressError}.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from ctdb.errors import AddressError
from ctdb.interfaces import IAddressSystem
from ctdb.takeover.packets import Connection, Endpoint


def _canonical(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise AddressError(f"Invalid IP address {address!r}") from None


@implementer(IAddressSystem)
class FakeAddressSystem:
    """
    @ivar links: interface name -> whether its link is up.
    @ivar loopbacks: the interface names that are loopback devices.
    @ivar addresses: canonical address -> (mask, interface).
    @ivar calls: what was done, in order (see the module docstring).
    @ivar failures: method name -> the L{AddressError} it raises.
    @ivar kills: with C{deferKills}, the Deferred of each killConnections
        call, for the test to fire; otherwise every kill succeeds at once
        with all its connections.
    """

    def __init__(
        self,
        interfaces: Iterable[str] = ("eth0",),
        *,
        loopbacks: Iterable[str] = ("lo",),
        deferKills: bool = False,
    ) -> None:
        self.loopbacks = set(loopbacks)
        self.links: dict[str, bool] = {name: True for name in self.loopbacks}
        for name in interfaces:
            self.links[name] = True
        self.addresses: dict[str, tuple[int, str]] = {}
        self.calls: list[tuple[object, ...]] = []
        self.failures: dict[str, AddressError] = {}
        self.deferKills = deferKills
        self.kills: list[Deferred[int]] = []

    # -- what tests do -----------------------------------------------------------

    def addInterface(self, iface: str, up: bool = True) -> None:
        """A new interface C{iface} with its link C{up} or down."""
        self.links[iface] = up

    def removeInterface(self, iface: str) -> None:
        """C{iface} goes away, and its addresses with it."""
        self.links.pop(iface, None)
        for address, (_, holder) in list(self.addresses.items()):
            if holder == iface:
                del self.addresses[address]

    def setLink(self, iface: str, up: bool) -> None:
        """Flip the link of an existing interface."""
        if iface not in self.links:
            raise KeyError(iface)
        self.links[iface] = up

    def fail(self, method: str, error: AddressError | None = None) -> None:
        """Make C{method} raise C{error} (an AddressError by default) from
        now on; L{heal} undoes it."""
        self.failures[method] = error or AddressError(f"{method} failed (fake)")

    def heal(self, method: str) -> None:
        """C{method} works again."""
        self.failures.pop(method, None)

    def _check(self, method: str) -> None:
        error = self.failures.get(method)
        if error is not None:
            raise error

    # -- IAddressSystem --------------------------------------------------------------

    def interfaceExists(self, iface: str) -> bool:
        self._check("interfaceExists")
        return iface in self.links

    def linkUp(self, iface: str) -> bool:
        self._check("linkUp")
        return self.links.get(iface, False)

    def hasAddress(self, address: str) -> bool:
        self._check("hasAddress")
        try:
            return _canonical(address) in self.addresses
        except AddressError:
            return False

    def addAddress(self, address: str, mask: int, iface: str) -> None:
        self.calls.append(("add", address, mask, iface))
        self._check("addAddress")
        what = f"Failed to add {address}/{mask} on dev {iface}"
        key = _canonical(address)
        if iface not in self.links:
            raise AddressError(f"{what}: no such interface")
        held = self.addresses.get(key)
        if held is not None:
            heldMask, holder = held
            if holder != iface:
                raise AddressError(f"{what}: already on dev {holder}")
            if heldMask != mask:
                raise AddressError(f"{what}: already there as {address}/{heldMask}")
            return
        self.addresses[key] = (mask, iface)

    def removeAddress(self, address: str, mask: int, iface: str) -> None:
        self.calls.append(("remove", address, mask, iface))
        self._check("removeAddress")
        self.addresses.pop(_canonical(address), None)

    def closeSockets(self, address: str) -> int:
        self.calls.append(("close", address))
        self._check("closeSockets")
        return 0

    def sendGratuitousArp(self, address: str, iface: str) -> None:
        self.calls.append(("arp", address, iface))
        self._check("sendGratuitousArp")
        _canonical(address)
        if iface not in self.links:
            raise AddressError(f"Interface '{iface}' not found")
        # (on a loopback interface the real one sends nothing, silently)

    def sendTickle(
        self,
        src: Endpoint,
        dst: Endpoint,
        seq: int = 0,
        ack: int = 0,
        rst: bool = False,
    ) -> None:
        if seq == 0 and ack == 0 and not rst:
            self.calls.append(("tickle", src, dst))
        else:
            self.calls.append(("tcp", src, dst, seq, ack, rst))
        self._check("sendTickle")

    def killConnections(
        self, iface: str, connections: Sequence[Connection], timeout: float
    ) -> Deferred[int]:
        self.calls.append(("kill", iface, tuple(connections), timeout))
        error = self.failures.get("killConnections")
        if error is not None:
            return fail(error)
        if not self.deferKills:
            return succeed(len(connections))
        d: Deferred[int] = Deferred()
        self.kills.append(d)
        return d
