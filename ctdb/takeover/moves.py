# -*- test-case-name: tests.takeover.test_node -*-
"""
Taking and releasing public addresses (Samba 4.17 C{server/ctdb_takeover.c}
C{ctdb_control_takeover_ip}, C{ctdb_do_takeip}, C{ctdb_do_updateip},
C{ctdb_control_release_ip}, C{release_ip_post}, C{ctdb_release_all_ips}):
the interface an address goes on, the events, and, in daemon mode, the
address itself on the host and the connections of a released one.

One take, update or release of an address runs at a time, as in ctdbd;
here TAKEOVER_IP and RELEASE_IP refuse before they change anything, while
ctdbd looks for a redundant take or release first and so answers a take
during a release "already held" and lets a release during a take take the
running one's interface away.  A redundant release deletes an address
that DEL_PUBLIC_IP marked (ctdbd only deletes after a real release, so an
address marked while its take failed stayed listed for ever).

A part of L{ctdb.takeover.node.PublicAddresses}.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.python.failure import Failure

from ctdb.protocols import packet as P
from ctdb.protocols.publicips import PublicIP
from ctdb.protocols.srvids import CTDB_SRVID_RELEASE_IP, CTDB_SRVID_TAKE_IP
from ctdb.takeover.replies import (
    OK,
    cstring,
    exactSize,
    failed,
    signedPnn,
)
from ctdb.takeover.state import Iface, Vnn, ifaceString

if TYPE_CHECKING:
    from twisted.logger import Logger

    from ctdb.daemon.core import ControlResult, Daemon
    from ctdb.takeover.fence import AddressFence
    from ctdb.takeover.state import VnnTable


class AddressMoves:
    """The take and release half of the node's public addresses."""

    if TYPE_CHECKING:
        # what this part uses of the rest of PublicAddresses
        log: Logger
        daemon: Daemon
        pnn: int
        table: VnnTable
        byScripts: bool
        checkAddresses: bool
        failoverDisabled: bool
        fence: AddressFence | None

        @property
        def checking(self) -> bool: ...
        def haveIp(self, address: str) -> bool: ...
        def banSelf(self) -> None: ...
        def runEvent(self, event: str, args: str) -> defer.Deferred[int]: ...
        def announce(
            self, vnn: Vnn, *, keepTickles: bool = False, tickle: bool = True
        ) -> None: ...
        def _addToHost(self, vnn: Vnn, iface: str) -> str | None: ...
        def _removeFromHost(self, vnn: Vnn, iface: str) -> str | None: ...
        def _killConnections(self, vnn: Vnn, iface: str) -> defer.Deferred[object]: ...
        def _closeSockets(self, vnn: Vnn) -> None: ...

    # -- take ----------------------------------------------------------------------------

    def control_TAKEOVER_IP(
        self, req: P.ReqControl, client: object
    ) -> ControlResult | defer.Deferred[ControlResult]:
        """ctdb_control_takeover_ip."""
        exactSize(req, PublicIP.SIZE)
        pip = PublicIP.decode(req.data)
        if pip.pnn != self.pnn:
            self.log.error(
                "takeoverip called for an ip '{addr}' with pnn {pnn}, "
                "but we're node {me}",
                addr=pip.address,
                pnn=signedPnn(pip.pnn),
                me=self.pnn,
            )
            return failed("takeover for another node")
        vnn = self._publicVnn(pip, "takeoverip")
        if vnn is None:
            return OK
        if self.fence is not None and self.fence.fenced:
            # ctdb.takeover.fence: this node may be cut off from the cluster
            self.log.error(
                "takeoverip of IP {addr} refused: this node gave its public "
                "addresses up ({reason})",
                addr=vnn.address,
                reason=self.fence.reason,
            )
            return failed(f"{vnn.address}: public addresses given up")
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
            return failed(f"no usable interface for {vnn.address}")
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
            return failed(f"{vnn.address} is held here but assigned elsewhere")
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
            # a dead link, or two more addresses than the best one carries
            update = True
        # One change of an address at a time, checked before anything is
        # changed.  ctdbd checks later, in ctdb_do_takeip/ctdb_do_updateip:
        # a take during a release would be "redundant" and succeed though
        # the address is about to go, and a take refused during another
        # would first have taken the running one's interface away.
        refusal = self._refuseInFlight(vnn, "Update" if have and update else "Takeover")
        if refusal is not None:
            return refusal
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
        if self.checkAddresses:
            # Unlike ctdbd, announce it again (ARPs only).  A node cut off
            # for a while may have taken the address meanwhile and told the
            # clients its MAC; it gave the address up when its fence went
            # up, but the clients' neighbour entries still point at it
            # until this node says again where the address lives.
            self.announce(vnn, tickle=False)
        return OK

    def _publicVnn(self, pip: PublicIP, caller: str) -> Vnn | None:
        """The address a take or release names; None, logged, if it is not
        one of ours (both controls then answer success, as ctdbd)."""
        vnn = self.table.find(pip.address)
        if vnn is None:
            self.log.info(
                "{caller} called for an ip '{addr}' that is not a public address",
                caller=caller,
                addr=pip.address,
            )
        return vnn

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

    def _refuseInFlight(self, vnn: Vnn, what: str) -> ControlResult | None:
        """ctdbd lets one take, update or release of an address run at a
        time: the refusal of another (C{what} names it in the log), or None
        when the address is free."""
        if not vnn.updateInFlight:
            return None
        self.log.info(
            "{what} of IP {addr}/{mask} rejected update for this IP already in flight",
            what=what,
            addr=vnn.address,
            mask=vnn.mask,
        )
        return failed(f"an update of {vnn.address} is in flight")

    def _whileBusy(
        self,
        vnn: Vnn,
        step: Callable[..., defer.Deferred[ControlResult]],
        *args: object,
    ) -> defer.Deferred[ControlResult]:
        """Run C{step(vnn, *args)} with the address marked busy, and free it
        again however the step ends (ctdbd's destructors of the take,
        update and release states)."""
        vnn.updateInFlight = True
        return step(vnn, *args).addBoth(self._done, vnn)

    def _done(self, result: object, vnn: Vnn) -> object:
        """The address is free again; a step that broke answers -1."""
        vnn.updateInFlight = False
        if isinstance(result, Failure):
            self.log.failure("public IP update of {addr}", result, addr=vnn.address)
            return failed("internal error")
        return result

    def _takeIp(self, vnn: Vnn) -> ControlResult | defer.Deferred[ControlResult]:
        """ctdb_do_takeip (the caller checked that nothing else runs)."""
        if not self._assign(vnn):
            self.log.error(
                "Takeover of IP {addr}/{mask} failed to assign a usable interface",
                addr=vnn.address,
                mask=vnn.mask,
            )
            return failed(f"no usable interface for {vnn.address}")
        iface = vnn.ifaceName
        self.log.info(
            "Takeover of IP {addr}/{mask} on interface {iface}",
            addr=vnn.address,
            mask=vnn.mask,
            iface=iface,
            step="ip-taken",
            node=self.pnn,
            generation=self.daemon.vnnMap.generation,
        )
        return self._whileBusy(vnn, self._finishTake, iface)

    @defer.inlineCallbacks
    def _finishTake(self, vnn: Vnn, iface: str):  # type: ignore[no-untyped-def]
        """The address up (daemon mode), the takeip event, then
        ctdb_do_takeip_callback: announce it and tell the local clients
        (TAKE_IP)."""
        problem = self._addToHost(vnn, iface)
        if problem is not None:
            return failed(problem)
        status = yield self.runEvent("takeip", f"{iface} {vnn.address} {vnn.mask}")
        if status != 0:
            self.log.error(
                "Failed to takeover IP {addr} on interface {iface}",
                addr=vnn.address,
                iface=vnn.ifaceName,
            )
            return failed(f"takeip event failed ({status})", status)
        if self.checkAddresses:
            self.announce(vnn)
        self.log.info("sending TAKE_IP for '{addr}'", addr=vnn.address)
        self.daemon.sendMessage(self.pnn, CTDB_SRVID_TAKE_IP, cstring(vnn.address))
        return OK

    def _updateIp(self, vnn: Vnn) -> ControlResult | defer.Deferred[ControlResult]:
        """ctdb_do_updateip: move the address to a better interface (the
        caller checked that nothing else runs)."""
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
            return failed(f"no usable interface for {vnn.address}")
        if old is vnn.iface:
            return OK
        newName = vnn.ifaceName
        self.log.info(
            "Update of IP {addr}/{mask} from interface {old} to {new}",
            addr=vnn.address,
            mask=vnn.mask,
            old=oldName,
            new=newName,
        )
        return self._whileBusy(vnn, self._finishUpdate, old, oldName, newName)

    @defer.inlineCallbacks
    def _finishUpdate(  # type: ignore[no-untyped-def]
        self, vnn: Vnn, old: Iface | None, oldName: str, newName: str
    ):
        """The address moved on the host (daemon mode), the updateip event,
        then ctdb_do_updateip_callback."""
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
            # as ctdbd: the address counts as on its old interface again,
            # whatever the host now holds; a later run repairs the host
            self.table.unassign(vnn, self.pnn)
            if old is not None:
                vnn.iface = old
                old.references += 1
            return failed(problem or f"updateip event failed ({status})", status)
        if not self.byScripts and self.checkAddresses:
            # what 10.interface's updateip does: gratarp, tickle the clients
            self.announce(vnn, keepTickles=True)
        return OK

    # -- release ------------------------------------------------------------------------

    def control_RELEASE_IP(
        self, req: P.ReqControl, client: object
    ) -> ControlResult | defer.Deferred[ControlResult]:
        """ctdb_control_release_ip."""
        exactSize(req, PublicIP.SIZE)
        pip = PublicIP.decode(req.data)
        vnn = self._publicVnn(pip, "releaseip")
        if vnn is None:
            return OK
        # Refused first while a take, update or release runs: ctdbd looks
        # for a redundant release before, and one that comes while the
        # takeip event has not yet put the address up would take the
        # address's interface away under the running take.
        refusal = self._refuseInFlight(vnn, "Release")
        if refusal is not None:
            return refusal
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
                self._deleteIfPending(vnn)
                return OK
        elif vnn.iface is None:
            self.log.debug(
                "Redundant release of IP {addr}/{mask} (ip not held)",
                addr=vnn.address,
                mask=vnn.mask,
            )
            vnn.pnn = pip.pnn
            self._deleteIfPending(vnn)
            return OK
        iface = vnn.ifaceName
        self.log.info(
            "Release of IP {addr}/{mask} on interface {iface}  node:{pnn}",
            addr=vnn.address,
            mask=vnn.mask,
            iface=iface,
            pnn=signedPnn(pip.pnn),
            step="ip-released",
            node=self.pnn,
            generation=self.daemon.vnnMap.generation,
        )
        return self._whileBusy(vnn, self._finishRelease, iface, pip.pnn)

    @defer.inlineCallbacks
    def _releaseFromHost(self, vnn: Vnn, iface: str):  # type: ignore[no-untyped-def]
        """The releaseip event, then, in daemon mode, what 10.interface's
        releaseip does after it: reset the clients' connections and take
        the address off the interface.  Fires with the event's status."""
        status = yield self.runEvent("releaseip", f"{iface} {vnn.address} {vnn.mask}")
        yield self._killConnections(vnn, iface)
        self._removeFromHost(vnn, iface)
        return status

    @defer.inlineCallbacks
    def _finishRelease(  # type: ignore[no-untyped-def]
        self, vnn: Vnn, iface: str, target: int
    ):
        """release_ip_callback."""
        status = yield self._releaseFromHost(vnn, iface)
        if status == -errno.ETIMEDOUT:
            self.banSelf()
        if self.checking and self.haveIp(vnn.address):
            self.log.error(
                "IP {addr} still hosted during release IP callback, failing",
                addr=vnn.address,
            )
            return failed(f"{vnn.address} is still on an interface")
        vnn.pnn = target
        self.releasePost(vnn)
        return OK

    def releasePost(self, vnn: Vnn) -> None:
        """release_ip_post: close the server sockets the address left
        (daemon mode, not in ctdbd), tell the local clients (smbd drops the
        address's connections), forget the interface, delete it if
        DEL_PUBLIC_IP asked while it was hosted."""
        self._closeSockets(vnn)
        self.log.info("Sending RELEASE_IP message for {addr}", addr=vnn.address)
        self.daemon.sendMessage(self.pnn, CTDB_SRVID_RELEASE_IP, cstring(vnn.address))
        self.table.unassign(vnn, self.pnn)
        self._deleteIfPending(vnn)

    def _deleteIfPending(self, vnn: Vnn) -> None:
        """do_delete_ip of an address DEL_PUBLIC_IP marked while it was
        ours, now that it is not up here.  ctdbd does it in release_ip_post
        only: an address whose take failed after the mark, or that the host
        lost, is never released for real and would stay marked, listed and
        never available, for ever."""
        if vnn.deletePending:
            self.log.info("Deleting IP {addr}", addr=vnn.address)
            self.table.delete(vnn, self.pnn)

    def heldAddresses(self) -> list[Vnn]:
        """The addresses this node holds: on the host (when it checks the
        host), or by its own records."""
        if self.checking:
            return [vnn for vnn in self.table if self.haveIp(vnn.address)]
        return [vnn for vnn in self.table if vnn.iface is not None]

    def _logReleased(self, vnn: Vnn, iface: str | None) -> None:
        """ctdbd's release line, with the failover story's fields."""
        self.log.info(
            "Release of IP {addr}/{mask} on interface {iface} node:-1",
            addr=vnn.address,
            mask=vnn.mask,
            iface=iface,
            pnn=-1,
            step="ip-released",
            node=self.pnn,
            generation=self.daemon.vnnMap.generation,
        )

    def dropAllNow(self) -> defer.Deferred[int]:
        """
        The fence's release (L{ctdb.takeover.fence}): every address this
        node holds goes off the host now, synchronously (daemon mode), and
        only then does each finish its release: the releaseip event and
        RELEASE_IP to the local clients (no resets of its clients: none can
        be sent from an address that is off the host; its new owner's
        tickle ACKs reset them).  (With
        C{byScripts} the releaseip events take the addresses off.)  Fires
        with the number released.
        """
        held = []
        for vnn in self.heldAddresses():
            iface = vnn.ifaceName
            if vnn.iface is None and vnn.ifaces:
                iface = vnn.ifaces[0].name
            vnn.cancelAnnouncement()
            self._logReleased(vnn, iface)
            if not self.byScripts:
                self._removeFromHost(vnn, iface)
            held.append((vnn, iface))
        return defer.Deferred.fromCoroutine(self._finishDrops(held))

    async def _finishDrops(self, held: list[tuple[Vnn, str]]) -> int:
        count = 0
        for vnn, iface in held:
            if vnn.updateInFlight:
                # a take or release runs: it ends with the address where the
                # host has it, and the IP check and the leader repair that
                continue
            vnn.updateInFlight = True
            try:
                await self.runEvent("releaseip", f"{iface} {vnn.address} {vnn.mask}")
            finally:
                vnn.updateInFlight = False
            if vnn.tickles and not self.byScripts:
                # no kill: the address is already off the host, so no reset
                # can be sent from it (no route), and the kill would only
                # hold the address (refusing the leader's moves of it, which
                # bans this node) for its whole timeout; the new owner's
                # tickle ACKs reset those clients
                self.log.info(
                    "{addr} is already off the host: not killing {total} TCP "
                    "connections to it",
                    addr=vnn.address,
                    total=len(vnn.tickles),
                )
            self.releasePost(vnn)
            count += 1
        self.log.info("Released {n} public IPs", n=count)
        return count

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
            self._logReleased(vnn, iface)
            vnn.cancelAnnouncement()
            yield self._releaseFromHost(vnn, iface)
            if self.haveIp(vnn.address):
                self.log.error("IP address {addr} not released", addr=vnn.address)
                vnn.updateInFlight = False
                continue
            self.releasePost(vnn)
            vnn.updateInFlight = False
            count += 1
        self.log.info("Released {n} public IPs", n=count)
        return count
