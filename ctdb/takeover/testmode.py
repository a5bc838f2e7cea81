# -*- test-case-name: tests.takeover.test_node -*-
"""
The address system of ctdbd's test mode (C{CTDB_TEST_MODE}, Samba's
INTEGRATION suites on one machine): it may look at the host but never
changes it.  ctdbd in test mode still checks that an interface exists and
whether an address is on the host (C{ctdb_sys_have_ip}, a bind); it never
adds an address (no C{10.interface} in the test set-up) and sends no
announcement.  Here nothing that would reach the network or change an
interface is done at all, whatever asks for it.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from ctdb.errors import AddressError
from ctdb.interfaces import IAddressSystem


@implementer(IAddressSystem)
class TestModeAddressSystem:
    """Reads the host; changes nothing and sends nothing."""

    log = Logger()

    def interfaceExists(self, iface: str) -> bool:
        """ctdb_sys_check_iface_exists: in the host's interface list."""
        try:
            return any(name == iface for _index, name in socket.if_nameindex())
        except OSError:
            return False

    def linkUp(self, iface: str) -> bool:
        return self.interfaceExists(iface)

    def hasAddress(self, address: str) -> bool:
        """ctdb_sys_have_ip: can we bind to it?"""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.bind((address, 0))
        except OSError as e:
            if e.errno not in (errno.EADDRNOTAVAIL, errno.EINVAL, errno.EAFNOSUPPORT):
                self.log.debug("bind to {addr}: {err}", addr=address, err=e)
            return False
        return True

    def addAddress(self, address: str, mask: int, iface: str) -> None:
        raise AddressError(f"test mode: not adding {address}/{mask} to {iface}")

    def removeAddress(self, address: str, mask: int, iface: str) -> None:
        raise AddressError(f"test mode: not removing {address}/{mask} from {iface}")

    def closeSockets(self, address: str) -> int:
        return 0

    def sendGratuitousArp(self, address: str, iface: str) -> None:
        self.log.debug(
            "test mode: no ARP for {addr} on {iface}", addr=address, iface=iface
        )

    def sendTickle(
        self,
        src: tuple[str, int],
        dst: tuple[str, int],
        seq: int = 0,
        ack: int = 0,
        rst: bool = False,
    ) -> None:
        self.log.debug("test mode: no tickle to {dst}", dst=dst)

    def killConnections(
        self,
        iface: str,
        connections: Sequence[tuple[tuple[str, int], tuple[str, int]]],
        timeout: float,
    ) -> defer.Deferred[int]:
        return defer.succeed(0)
