# -*- test-case-name: tests.takeover.test_system -*-
"""
L{LinuxAddressSystem}: what public-IP takeover does to a Linux host, as
Samba 4.17 does it.

  - Addresses go on and off interfaces through netlink (pyroute2's
    C{IPRoute}), as the C{takeip} and C{releaseip} events of
    C{10.interface} do with C{ip addr add} and C{ip addr del}.
  - Link state is the carrier of an interface that is up (C{ethtool}'s
    "Link detected" in C{interface_monitor}); loopback always works.
  - Whether an address is ours is a bind test, as C{ctdb_sys_have_ip}.
  - Gratuitous ARP and IPv6 neighbour advertisements go out of an
    C{AF_PACKET} socket (C{ctdb_sys_send_arp}), tickle ACKs and resets out
    of a raw IP socket whose header we build (C{ctdb_sys_send_tcp}).
  - Killing connections is C{ctdb_killtcp}: an C{AF_PACKET} capture read
    on the reactor, a tickle ACK to every client, a reset answering the
    ACK each sends back, tickles again every 0.1 s until all are reset or
    the time is up.  The capture is bound to the interface it is given
    (Samba's C{AF_PACKET} capture ignores it and hears every interface).

The frames themselves come from the pure L{ctdb.takeover.packets}.  Every
failure of a system call becomes an L{AddressError}; none escapes into the
reactor.  All calls but L{LinuxAddressSystem.killConnections} are
synchronous: each is a netlink exchange or a send on a raw socket.

The socket and netlink calls act on the network namespace of the process,
which is how the tests run this class: inside namespaces they create.
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import socket
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pyroute2 import IPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IDelayedCall, IReadDescriptor
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ctdb.errors import AddressError
from ctdb.interfaces import IAddressSystem, ICTDBReactor
from ctdb.takeover import packets
from ctdb.takeover.packets import Connection, Endpoint

_log = Logger()

ETH_P_ALL = 0x0003
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
IFA_F_NODAD = 0x02

#: how often ctdb_killtcp tickles the connections not yet reset, and how
#: many of them at a time (C{retry_interval}, C{batch_size})
KILL_INTERVAL = 0.1
KILL_BATCH = 300

#: enough of a frame for the headers of a bare ACK (ctdbd reads 100 bytes)
_SNAP_LENGTH = 128

# sock_diag (linux/sock_diag.h, linux/inet_diag.h): what `ss -K` uses
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
SOCK_DESTROY = 21
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
#: the TCP states (bits 1 << state) of a connection that still holds a
#: peer: established, syn-recv, fin-wait-1/2, close-wait, last-ack, closing
#: (not listeners, time-wait or closed ones)
_CONNECTED_STATES = sum(1 << state for state in (1, 3, 4, 5, 8, 9, 11))
_NLMSGHDR = struct.Struct("=IHHII")
#: inet_diag_req_v2 without its inet_diag_sockid (48 bytes, kept as is)
_DIAG_REQ = struct.Struct("=BBBBI")
_SOCKID_SIZE = 48


def _reason(error: BaseException) -> str:
    """The words of a system call's or netlink's failure."""
    if isinstance(error, NetlinkError):
        return str(error.args[1]) if len(error.args) > 1 else str(error)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def _address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        raise AddressError(f"Invalid IP address {address!r}") from None


@implementer(IAddressSystem)
class LinuxAddressSystem:
    """
    L{IAddressSystem} on Linux, in the network namespace of the process
    (needs C{CAP_NET_ADMIN} and C{CAP_NET_RAW}).

    @ivar killInterval: seconds between two rounds of tickles of
        L{killConnections}.
    """

    killInterval = KILL_INTERVAL

    def __init__(self, *, reactor: ICTDBReactor) -> None:
        self.reactor = reactor

    # -- netlink ------------------------------------------------------------------

    def _netlink(self, what: str) -> IPRoute:
        try:
            return IPRoute()
        except (NetlinkError, OSError) as e:
            raise AddressError(f"{what}: cannot open netlink ({_reason(e)})") from e

    def _link(self, ipr: IPRoute, iface: str) -> Any | None:
        """The link message of C{iface}, or None if there is none."""
        indices = ipr.link_lookup(ifname=iface)
        if not indices:
            return None
        links = ipr.get_links(indices[0])
        return links[0] if links else None

    def _holders(self, ipr: IPRoute, address: str) -> list[tuple[int, str, int]]:
        """(interface index, interface name, prefix length) of each local
        configuration of C{address}."""
        wanted = ipaddress.ip_address(address)
        family = socket.AF_INET if wanted.version == 4 else socket.AF_INET6
        found = []
        for message in ipr.get_addr(family=family):
            # IFA_LOCAL is the local end of a point-to-point link (whose
            # IFA_ADDRESS is the peer); elsewhere only IFA_ADDRESS is set
            value = message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS")
            if value is None or ipaddress.ip_address(value) != wanted:
                continue
            index = message["index"]
            links = ipr.get_links(index)
            name = links[0].get_attr("IFLA_IFNAME") if links else str(index)
            found.append((index, name, message["prefixlen"]))
        return found

    def interfaceExists(self, iface: str) -> bool:
        what = f"Failed to look up interface {iface}"
        with self._netlink(what) as ipr:
            try:
                return self._link(ipr, iface) is not None
            except (NetlinkError, OSError) as e:
                raise AddressError(f"{what}: {_reason(e)}") from e

    def linkUp(self, iface: str) -> bool:
        what = f"Failed to read the link state of {iface}"
        with self._netlink(what) as ipr:
            try:
                link = self._link(ipr, iface)
            except (NetlinkError, OSError) as e:
                raise AddressError(f"{what}: {_reason(e)}") from e
        if link is None:
            return False
        if link["ifi_type"] == ARPHRD_LOOPBACK:
            # 10.interface counts a loopback device as always up
            return True
        wanted = IFF_UP | IFF_LOWER_UP
        return bool(link["flags"] & wanted == wanted)

    def hasAddress(self, address: str) -> bool:
        # ctdb_sys_have_ip: an address is ours if a TCP socket can bind it
        try:
            family = (
                socket.AF_INET if _address(address).version == 4 else socket.AF_INET6
            )
        except AddressError:
            return False
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.bind((address, 0))
        except OSError:
            return False
        return True

    def addAddress(self, address: str, mask: int, iface: str) -> None:
        ip = _address(address)
        what = f"Failed to add {address}/{mask} on dev {iface}"
        if not 0 <= mask <= ip.max_prefixlen:
            raise AddressError(f"{what}: bad mask")
        with self._netlink(what) as ipr:
            try:
                link = self._link(ipr, iface)
                if link is None:
                    raise AddressError(f"{what}: no such interface")
                index = link["index"]
                for holder, name, prefixlen in self._holders(ipr, address):
                    if holder != index:
                        raise AddressError(f"{what}: already on dev {name}")
                    if prefixlen != mask:
                        raise AddressError(
                            f"{what}: already there as {address}/{prefixlen}"
                        )
                    return
            except (NetlinkError, OSError) as e:
                raise AddressError(f"{what}: {_reason(e)}") from e
            # add_ip_to_iface brings the interface up first
            try:
                ipr.link("set", index=index, state="up")
            except (NetlinkError, OSError) as e:
                raise AddressError(f"Failed to bringup interface {iface}") from e
            options: dict[str, Any] = {}
            if ip.version == 4:
                if mask <= 30:
                    network = ipaddress.ip_network(f"{ip}/{mask}", strict=False)
                    options["broadcast"] = str(network.broadcast_address)
            else:
                # 10.interface waits up to 5 s for duplicate address
                # detection; a synchronous call cannot, so (as for any
                # address a cluster hands out to one node only) skip it.
                options["IFA_FLAGS"] = IFA_F_NODAD
            try:
                ipr.addr("add", index=index, address=str(ip), prefixlen=mask, **options)
            except (NetlinkError, OSError) as e:
                raise AddressError(f"{what}: {_reason(e)}") from e

    def removeAddress(self, address: str, mask: int, iface: str) -> None:
        ip = _address(address)
        what = f"Failed to del {address} on dev {iface}"
        with self._netlink(what) as ipr:
            try:
                holders = self._holders(ipr, address)
            except (NetlinkError, OSError) as e:
                raise AddressError(f"{what}: {_reason(e)}") from e
            # as releaseip: take it off wherever it is, warning of surprises
            for index, name, prefixlen in holders:
                if name != iface:
                    _log.warn(
                        "Public IP {address} hosted on interface {name} but VNN "
                        "says {iface}",
                        address=address,
                        name=name,
                        iface=iface,
                    )
                if prefixlen != mask:
                    _log.warn(
                        "Public IP {address} has {prefixlen} bit netmask but VNN "
                        "says {mask}",
                        address=address,
                        prefixlen=prefixlen,
                        mask=mask,
                    )
                if ip.version == 4:
                    self._promoteSecondaries(name)
                try:
                    ipr.addr("del", index=index, address=str(ip), prefixlen=prefixlen)
                except NetlinkError as e:
                    if e.code == _errno.EADDRNOTAVAIL:
                        continue  # gone meanwhile
                    raise AddressError(
                        f"Failed to del {address} on dev {name}: {_reason(e)}"
                    ) from e
                except OSError as e:
                    raise AddressError(
                        f"Failed to del {address} on dev {name}: {_reason(e)}"
                    ) from e

    def closeSockets(self, address: str) -> int:
        """
        Destroy (C{SOCK_DESTROY}, as C{ss -K src ADDRESS}) every TCP socket
        of this network namespace still connected from C{address} (not
        listeners, nor time-wait), IPv4-mapped IPv6 ones included.  An
        address that left the host leaves its server sockets behind: the
        clients are reset by the new owner's tickles, but if the address
        comes back, a new connection from the same client port meets the
        stale socket, which answers with ACKs of its own numbers, never a
        reset: a connection hung for good (the fault soak found one).
        """
        ip = _address(address)
        wanted = [(socket.AF_INET6, ip.packed)]
        if ip.version == 4:
            mapped = ipaddress.IPv6Address(f"::ffff:{ip}").packed
            wanted = [
                (socket.AF_INET, ip.packed + bytes(12)),
                (socket.AF_INET6, mapped),
            ]
        what = f"Failed to close the TCP sockets of {address}"
        try:
            with socket.socket(
                socket.AF_NETLINK,
                socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                NETLINK_SOCK_DIAG,
            ) as nl:
                nl.settimeout(5)
                closed = 0
                for family, src in wanted:
                    for sockid in _diagDump(nl, family, src):
                        if _diagDestroy(nl, family, sockid):
                            closed += 1
                return closed
        except OSError as e:
            raise AddressError(f"{what}: {_reason(e)}") from e

    def _promoteSecondaries(self, iface: str) -> None:
        """Let a secondary address of C{iface} become primary when its
        primary goes, rather than going with it (delete_ip_from_iface)."""
        path = f"/proc/sys/net/ipv4/conf/{iface}/promote_secondaries"
        try:
            with open(path, "w") as f:
                f.write("1\n")
        except OSError as e:
            _log.warn(
                "cannot set promote_secondaries on {iface}: {reason}",
                iface=iface,
                reason=_reason(e),
            )

    # -- raw sockets ---------------------------------------------------------------

    def sendGratuitousArp(self, address: str, iface: str) -> None:
        ip = _address(address)
        with self._netlink(f"Failed to send gratuitous ARP on {iface}") as ipr:
            try:
                link = self._link(ipr, iface)
            except (NetlinkError, OSError) as e:
                raise AddressError(f"Interface '{iface}' not found") from e
        if link is None:
            raise AddressError(f"Interface '{iface}' not found")
        kind = link["ifi_type"]
        if kind == ARPHRD_LOOPBACK:
            _log.debug("Ignoring loopback arp request")
            return
        hwaddr = link.get_attr("IFLA_ADDRESS")
        if kind != ARPHRD_ETHER or hwaddr is None:
            raise AddressError(f"Not an ethernet address family (0x{kind:x})")
        mac = bytes.fromhex(hwaddr.replace(":", ""))
        frames = packets.announcementFrames(str(ip), mac)
        try:
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
                for frame in frames:
                    s.sendto(frame, (iface, ETH_P_ALL))
        except OSError as e:
            raise AddressError(
                f"Failed to send gratuitous ARP for {address} on {iface}: {_reason(e)}"
            ) from e

    def sendTickle(
        self,
        src: Endpoint,
        dst: Endpoint,
        seq: int = 0,
        ack: int = 0,
        rst: bool = False,
    ) -> None:
        kind = "RST" if rst else "tickle ACK"
        what = f"Failed to send TCP {kind} from {src[0]}:{src[1]} to {dst[0]}:{dst[1]}"
        try:
            packet = packets.tcpPacket(src, dst, seq, ack, rst)
            target = ipaddress.ip_address(dst[0])
        except ValueError as e:
            raise AddressError(f"{what}: {e}") from e
        try:
            if target.version == 4:
                with socket.socket(
                    socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW
                ) as s:
                    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
                    sent = s.sendto(packet, (str(target), 0))
            else:
                # an IPv6 IPPROTO_RAW socket takes the header from us, and
                # the port of the destination must be 0
                with socket.socket(
                    socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW
                ) as s:
                    sent = s.sendto(packet, (str(target), 0))
        except OSError as e:
            raise AddressError(f"{what}: {_reason(e)}") from e
        if sent != len(packet):
            raise AddressError(f"{what}: sent {sent} of {len(packet)} bytes")

    def killConnections(
        self, iface: str, connections: Sequence[Connection], timeout: float
    ) -> Deferred[int]:
        if not connections:
            return succeed(0)
        try:
            capture = socket.socket(
                socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)
            )
        except OSError as e:
            return fail(
                AddressError(
                    f"Failed to open capture socket on iface '{iface}' ({_reason(e)})"
                )
            )
        try:
            capture.setblocking(False)
            capture.bind((iface, ETH_P_ALL))
        except OSError as e:
            capture.close()
            return fail(
                AddressError(
                    f"Failed to open capture socket on iface '{iface}' ({_reason(e)})"
                )
            )
        killer = ConnectionKiller(
            connections,
            self.sendTickle,
            reactor=self.reactor,
            interval=self.killInterval,
            timeout=timeout,
        )
        reader = CaptureReader(capture, killer.frameReceived, reactor=self.reactor)
        reader.startReading()
        done = killer.start()

        def stopCapture(result: object) -> object:
            reader.loseConnection()
            return result

        done.addBoth(stopCapture)
        return done


# -- ctdb_killtcp --------------------------------------------------------------------


class ConnectionKiller:
    """
    The logic of C{ctdb_killtcp} (C{reset_connections_send}) with the
    sockets left outside: tickle every connection not yet reset now and
    every C{interval} seconds (at most L{KILL_BATCH} a round), answer each
    client segment captured on one of them with a reset from the server,
    and fire with the number reset once none is left or C{timeout} seconds
    passed.

    @param send: C{sendTickle(src, dst, seq, ack, rst)} of an
        L{IAddressSystem}; an L{AddressError} it raises is logged and the
        run goes on, as in ctdbd.
    """

    def __init__(
        self,
        connections: Sequence[Connection],
        send: Callable[[Endpoint, Endpoint, int, int, bool], None],
        *,
        reactor: ICTDBReactor,
        interval: float = KILL_INTERVAL,
        timeout: float,
    ) -> None:
        self._send = send
        self.reactor = reactor
        self.interval = interval
        self.timeout = timeout
        #: (client, server) with canonical addresses -> as given
        self.pending: dict[Connection, Connection] = {}
        for client, server in connections:
            self.pending[(_endpoint(client), _endpoint(server))] = (client, server)
        self.killed = 0
        self.rounds = 0
        self._loop = LoopingCall(self._tickleRound)
        self._loop.clock = reactor
        self._timer: IDelayedCall | None = None
        self._done: Deferred[int] | None = None

    def start(self) -> Deferred[int]:
        """Begin; the Deferred fires with the number of connections reset
        (cancelling it stops the run)."""
        done: Deferred[int] = Deferred(lambda d: self._stop())
        self._done = done
        if not self.pending:
            self._finish()
            return done
        self._timer = self.reactor.callLater(self.timeout, self._finish)
        self._loop.start(self.interval, now=True)
        return done

    def _tickleRound(self) -> None:
        self.rounds += 1
        for client, server in list(self.pending.values())[:KILL_BATCH]:
            self._sendSafely(server, client, 0, 0, False)

    def _sendSafely(
        self, src: Endpoint, dst: Endpoint, seq: int, ack: int, rst: bool
    ) -> None:
        try:
            self._send(src, dst, seq, ack, rst)
        except AddressError as e:
            _log.error("{error}", error=str(e))

    def frameReceived(self, frame: bytes) -> None:
        """A frame came off the capture socket."""
        segment = packets.parseFrame(frame)
        if segment is None or segment.sentByCtdb():
            return
        try:
            key = (_endpoint(segment.src), _endpoint(segment.dst))
        except ValueError:
            return
        if self.pending.pop(key, None) is None:
            return  # another connection
        _log.info(
            "Sending a TCP RST for connection {client} -> {server}",
            client=packets.endpointString(segment.src),
            server=packets.endpointString(segment.dst),
        )
        self._sendSafely(segment.dst, segment.src, segment.ack, segment.seq, True)
        self.killed += 1
        if not self.pending:
            self._finish()

    def _stop(self) -> None:
        if self._loop.running:
            self._loop.stop()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _finish(self) -> None:
        self._stop()
        done, self._done = self._done, None
        if done is not None:
            if self.pending:
                _log.info("{count} connections not reset", count=len(self.pending))
            done.callback(self.killed)


def _diagRequest(kind: int, flags: int, family: int, sockid: bytes) -> bytes:
    body = _DIAG_REQ.pack(family, socket.IPPROTO_TCP, 0, 0, _CONNECTED_STATES) + sockid
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, 1, 0) + body


def _diagMessages(nl: socket.socket) -> Iterator[tuple[int, bytes]]:
    """The netlink messages (type, body) of one answer, up to its end;
    an error message raises OSError (its errno), except 0 (an ACK)."""
    while True:
        data = nl.recv(65536)
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size:
                return
            body = data[offset + _NLMSGHDR.size : offset + length]
            offset += (length + 3) & ~3
            if kind == NLMSG_DONE:
                return
            if kind == NLMSG_ERROR:
                code = -int.from_bytes(body[:4], "little", signed=True)
                if code:
                    raise OSError(code, _errno.errorcode.get(code, str(code)))
                return
            yield kind, body


def _diagDump(nl: socket.socket, family: int, src: bytes) -> list[bytes]:
    """The inet_diag_sockid of each connected TCP socket of C{family}
    whose local address (16 bytes, zero-padded) is C{src}."""
    nl.send(
        _diagRequest(
            SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, family, bytes(_SOCKID_SIZE)
        )
    )
    found = []
    for kind, body in _diagMessages(nl):
        # inet_diag_msg: family, state, timer, retrans, then the sockid
        if kind != SOCK_DIAG_BY_FAMILY or len(body) < 4 + _SOCKID_SIZE:
            continue
        sockid = body[4 : 4 + _SOCKID_SIZE]
        if sockid[4:20] == src:
            found.append(sockid)
    return found


def _diagDestroy(nl: socket.socket, family: int, sockid: bytes) -> bool:
    """SOCK_DESTROY of one socket; False if it was gone already."""
    nl.send(_diagRequest(SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, family, sockid))
    try:
        for _ in _diagMessages(nl):
            pass
    except FileNotFoundError:
        return False
    return True


def _endpoint(endpoint: Endpoint) -> Endpoint:
    return (packets.normalAddress(endpoint[0]), endpoint[1])


@implementer(IReadDescriptor)
class CaptureReader:
    """
    An C{AF_PACKET} capture socket read on the reactor: each frame (its
    first 128 bytes) goes to C{onFrame}.  The reactor reads it from
    C{startReading} to C{loseConnection}, which closes the socket.  A
    plain L{IReadDescriptor}: nothing is ever written to it, so none of
    Twisted's transport machinery is needed.
    """

    #: frames read in one go before the reactor gets its turn again
    maxFrames = 256

    def __init__(
        self,
        capture: socket.socket,
        onFrame: Callable[[bytes], None],
        *,
        reactor: ICTDBReactor,
    ) -> None:
        self.reactor = reactor
        self._capture = capture
        self._onFrame = onFrame

    def logPrefix(self) -> str:
        return "CaptureReader"

    def fileno(self) -> int:
        return self._capture.fileno()

    def startReading(self) -> None:
        self.reactor.addReader(self)

    def loseConnection(self) -> None:
        """Stop reading and close the socket."""
        if self._capture.fileno() == -1:
            return
        self.reactor.removeReader(self)
        self._capture.close()

    def doRead(self) -> Failure | None:
        for _ in range(self.maxFrames):
            if self._capture.fileno() == -1:
                return None  # a handler finished the capture (loseConnection)
            try:
                frame = self._capture.recv(_SNAP_LENGTH)
            except BlockingIOError:
                return None
            except OSError as e:
                _log.error("capture socket failed: {reason}", reason=_reason(e))
                return Failure(ConnectionLost(_reason(e)))
            try:
                self._onFrame(frame)
            except Exception:  # noqa: BLE001 - nothing escapes into the reactor
                _log.failure("handling a captured frame")
        return None

    def connectionLost(self, reason: Failure) -> None:
        """The reactor dropped us (a read error, or the reactor stopping)."""
        self.loseConnection()
