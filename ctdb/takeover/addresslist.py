# -*- test-case-name: tests.takeover.test_node -*-
"""
A node's list of public addresses (Samba 4.17 C{server/ctdb_takeover.c}
C{ctdb_set_public_addresses}, C{ctdb_add_public_address},
C{ctdb_control_add_public_address}, C{ctdb_control_del_public_address} and
C{ctdb_reloadips_child}): building it at start, and ADD_PUBLIC_IP,
DEL_PUBLIC_IP and RELOAD_PUBLIC_IPS at run time, with ctdbd's refusals.

ctdbd re-reads the file for RELOAD_PUBLIC_IPS in a child process that sends
the node DEL_PUBLIC_IP and ADD_PUBLIC_IP controls; here the node reads it
and changes its list in place, with the same rules and log lines.  An
address with a take, update or release under way is only marked for
deletion, whoever owns it (ctdbd deletes an address it does not own at
once, even under a running step).

A part of L{ctdb.takeover.node.PublicAddresses}.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ctdb.config.messages import ERR, Message
from ctdb.config.publicaddresses import PublicAddress, addressesFromFile
from ctdb.errors import ConfigLoadError, MalformedPacket
from ctdb.protocols import packet as P
from ctdb.protocols.basictypes import SOCK_ADDR_SIZE, encodeU32
from ctdb.protocols.publicips import AddrInfo, PublicIP
from ctdb.protocols.srvids import CTDB_SRVID_REBALANCE_NODE
from ctdb.takeover.replies import OK, exactSize, failed
from ctdb.takeover.state import CTDB_IFACE_SIZE, Vnn, VnnTable

if TYPE_CHECKING:
    from twisted.logger import Logger

    from ctdb.daemon.core import ControlResult, Daemon


class AddressList:
    """The configuration half of the node's public addresses."""

    if TYPE_CHECKING:
        # what this part uses of the rest of PublicAddresses
        log: Logger
        daemon: Daemon
        pnn: int
        table: VnnTable
        addressesFile: str | None
        _configured: list[PublicAddress]

        def _interfaceExists(self, name: str) -> bool: ...
        def publicIPs(self, onlyAvailable: bool = False) -> list[PublicIP]: ...

    # -- building ---------------------------------------------------------------

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
            # (bytes, as strlen; a file's undecodable bytes count one each)
            if len(name.encode(errors="surrogateescape")) > CTDB_IFACE_SIZE:
                self.log.error('Interface name too long "{name}"', name=name)
                return f"Failed to add interface '{name}' for public address {address}"
        table.add(address, mask, names)
        return None

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
            return failed(problem)
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
            return failed(f"{info.address} is not a public address")
        self._deleteOrMark(vnn)
        return OK

    def _deleteOrMark(self, vnn: Vnn) -> None:
        """Delete an address now, or, while it is ours or a take, update or
        release of it still runs, mark it to go once it is released
        (ctdbd deletes an address under a running step too)."""
        if vnn.pnn == self.pnn or vnn.updateInFlight:
            vnn.deletePending = True
        else:
            self.table.delete(vnn, self.pnn)

    def control_RELOAD_PUBLIC_IPS(
        self, req: P.ReqControl, client: object
    ) -> ControlResult:
        """ctdb_control_reload_public_ips (its child, ctdb_reloadips_child,
        done in place): delete what left the file, add what is new."""
        exactSize(req, 0)
        try:
            fresh = self._reread()
        except ConfigLoadError as e:
            for m in e.messages:
                self.log.error("{text}", text=m.text)
            self.log.error("Failed to re-read public addresses file")
            self.log.error("Reloadips child process returned error")
            return failed("Failed to re-read public addresses file", 1)
        status = 0
        for ip in self.publicIPs():
            if fresh.find(ip.address) is None:
                self.log.info(
                    "IP {addr} no longer configured, deleting it", addr=ip.address
                )
                vnn = self.table.find(ip.address)
                assert vnn is not None
                self._deleteOrMark(vnn)
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
            return failed("Add/delete IPs failed", 1)
        return OK

    def _reread(self) -> VnnTable:
        """The file's addresses as a table of their own (the child's
        ctdb_set_public_addresses), or the ones given at start without a
        file.

        @raise ConfigLoadError: the file cannot be read, or a line is bad.
        """
        if self.addressesFile is None:
            entries = self._configured
        else:
            entries = addressesFromFile(self.addressesFile)
        return self._load(entries)
