# -*- test-case-name: tests.daemon.test_core -*-
"""Every seam of txctdb as a zope interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.internet.interfaces import (
    IReactorCore,
    IReactorFDSet,
    IReactorProcess,
    IReactorTCP,
    IReactorTime,
    IReactorUNIX,
)
from zope.interface import Attribute, Interface

from ctdb.protocols.buckets import cumulativeBuckets
from ctdb.protocols.packet import Packet, ReqCall

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from twisted.internet.defer import Deferred


class ICTDBReactor(
    IReactorTime,
    IReactorTCP,
    IReactorUNIX,
    IReactorFDSet,
    IReactorCore,
    IReactorProcess,
):
    """The reactor features the daemon uses."""


class INodeTransport(Interface):
    """
    The downcalls of a node transport (ctdb_methods in ctdb_private.h):
    how the daemon reaches its peers.
    """

    listener = Attribute("the L{INodeTransportListener} that gets the upcalls")

    def start() -> object:
        """Start listening and connecting; may return a Deferred."""

    def connectNode(pnn: int, address: str) -> None:
        """Begin (and keep) connecting to node C{pnn} at C{address}."""

    def queuePacket(pnn: int, data: bytes) -> bool:
        """Send an encoded packet to C{pnn}; False if it is not connected."""

    def restartNode(pnn: int) -> None:
        """Drop both connections to C{pnn} and start reconnecting."""

    def removeNode(pnn: int) -> None:
        """Forget node C{pnn} (deleted from the nodes file)."""

    def shutdown() -> object:
        """Stop everything; returns a Deferred that fires when all is closed."""


class INodeTransportListener(Interface):
    """The upcalls (ctdb_upcalls): what a transport tells the daemon."""

    def packetReceived(pnn: int, data: bytes) -> None:
        """A whole, framed and verified packet arrived from node C{pnn}."""

    def nodeConnected(pnn: int) -> None:
        """Both directions to C{pnn} are up."""

    def nodeDead(pnn: int) -> None:
        """The link to C{pnn} is gone."""


class IClientConnection(Interface):
    """A local client of the daemon, as the daemon sees it."""

    client_id = Attribute("daemon-assigned id")
    pid = Attribute("the client's pid from SO_PEERCRED, or 0")

    def sendPacket(data: bytes) -> None:
        """Queue an encoded packet to the client."""


class IRecordStore(Interface):
    """
    Raw key/value storage of one database on one node (values include the
    24-byte ltdb header).  TdbRecordStore (libtdb, shared with Samba's tools)
    is the default; MemoryRecordStore serves unit tests.
    """

    path = Attribute("file path, or '' for memory")

    def fetch(key: bytes) -> bytes | None:
        """The stored value, or None."""

    def store(key: bytes, value: bytes) -> None:
        """Insert or replace."""

    def delete(key: bytes) -> None:
        """Remove; no error if absent."""

    def items() -> list[tuple[bytes, bytes]]:
        """A snapshot of every record."""

    def itemsNonblock() -> list[tuple[bytes, bytes]] | None:
        """A snapshot, or None when reading now would wait for a lock."""

    def chunks(records: int) -> Iterator[list[tuple[bytes, bytes]]]:
        """Every record, in lists of about C{records}, read as they are
        asked for: the caller may yield to its event loop between lists."""

    def wipe() -> None:
        """Remove every record."""

    def lockNonblock(key: bytes) -> bool:
        """Take the record (chain) lock if free; never blocks."""

    def unlock(key: bytes) -> None:
        """Release a lock taken with lockNonblock."""

    def transactionStart() -> None:
        """Begin a transaction (blocking is acceptable: the daemon holds it)."""

    def transactionStartNonblock() -> bool:
        """Begin a transaction if that needs no wait; False otherwise."""

    def transactionCommit() -> None:
        """Commit the open transaction."""

    def transactionCancel() -> None:
        """Abandon the open transaction."""

    def close() -> None:
        """Close the store."""

    def tdbFlags() -> int:
        """The C{TDB_*} flags this store's handle runs with (C{tdb_get_flags}):
        what DB_OPEN_FLAGS tells a client such as smbd to open its own
        handle on the same file with."""

    def enableSeqnum() -> None:
        """From now on every store and delete bumps the sequence number
        (C{tdb_enable_seqnum})."""

    def seqnum() -> int:
        """The database's sequence number, as every handle on it reads it."""

    def incrementSeqnumNonblock() -> None:
        """Bump the sequence number without waiting for a lock, so that the
        other handles' seqnum-validated caches are thrown away."""


# -- the daemon core's seams: how subsystems plug into a node ----------------------
#
# The core (ctdb.daemon) defines these; databases, recovery, events and the
# later takeover and metrics subsystems provide them and register through the
# Daemon's add*/set* methods when the node is built (ctdb.service.buildNode).


class IControlRegistry(Interface):
    """The daemon's control table (ctdb_control_dispatch)."""

    def register(opcode: int, handler: object) -> None:
        """Answer control C{opcode} with C{handler(req, client)}, which returns
        a C{(status, data, errmsg)} tuple or a Deferred of one; C{client} is
        the local L{IClientConnection}, or None for a control from a node."""


class IRecordProtocol(Interface):
    """The record protocol: who answers REQ_CALL, REQ_DMASTER, REPLY_DMASTER,
    REPLY_CALL and REPLY_ERROR (the databases subsystem)."""

    def nodeCallPacket(pnn: int, pkt: Packet) -> None:
        """A record-protocol packet from node C{pnn} of the current
        generation, for an active node."""

    def clientCall(client: IClientConnection, pkt: ReqCall) -> None:
        """A local client's REQ_CALL."""


class IClientObserver(Interface):
    """Told when a local client goes away."""

    def clientGone(client: IClientConnection) -> None:
        """C{client} disconnected; drop what it held."""


class INodeStateObserver(Interface):
    """Told when a node's flags or link changed."""

    def nodeStateChanged(pnn: int) -> None:
        """Node C{pnn} connected, died, changed flags, or was added/deleted."""


class ISrvidObserver(Interface):
    """Told when a local client registers a message srvid."""

    def srvidRegistered(srvid: int, client: IClientConnection) -> None:
        """C{client} registered C{srvid}."""


class ITunableObserver(Interface):
    """Told when a tunable is set at run time."""

    def tunableChanged(name: str, value: int) -> None:
        """C{name} (canonical spelling) is now C{value}."""


class ILogLevelObserver(Interface):
    """Told when SET_DEBUG changes the debug level."""

    def logLevelChanged(level: int) -> None:
        """Samba's debug level C{level} (ERROR 0 ... DEBUG 10) is now in force."""


class IRecoveryParticipant(Interface):
    """What recovery does to a node's local state (the databases, public
    addresses, event scripts): the daemon-side recovery controls call
    these.  L{recoveryStarted} and L{recoveryEnded} may return a Deferred
    that fires with a status (0 for success, as the C{startrecovery} and
    C{recovered} events of ctdb_recover.c); the control answers when all
    of them fired, with the first non-zero status."""

    def recoveryStarted() -> object:
        """START_RECOVERY: the leader began a recovery that includes this
        node.  None, or a Deferred of a status."""

    def becameInactive() -> None:
        """The node was banned or stopped (ctdb_node_become_inactive) or
        frozen: its volatile records are stale."""

    def whyStayInRecovery() -> str | None:
        """Why this node may not go back to recovery mode NORMAL (a
        database the last recovery did not commit here), or None."""

    def recoveryModeNormal() -> None:
        """The recovery mode went back to NORMAL: thaw, cancel leftover
        recovery transactions, resend held calls and attaches."""

    def recoveryEnded(first: bool) -> object:
        """END_RECOVERY; C{first} when it ended the node's first recovery.
        None, or a Deferred of a status."""


class INodeFlags(Interface):
    """Who changes this node's own flags and tells the cluster (the
    recovery controls: the flags are pushed to every connected node, as
    ctdbd's recovery daemon pushes them on CTDB_SRVID_PUSH_NODE_FLAGS)."""

    def setMyFlags(flags: int) -> None:
        """This node's flags are now C{flags}; push the change."""


class IStatisticsSource(Interface):
    """A subsystem with statistics of its own."""

    def statisticsReset() -> None:
        """STATISTICS_RESET: start counting again."""

    def memoryObjects() -> list[tuple[str, object]]:
        """(talloc-style name, object) of what it holds, for DUMP_MEMORY."""


@dataclass(frozen=True, slots=True)
class MetricSample:
    """
    One figure of a subsystem for the node's metrics endpoint, in plain
    terms (no metrics library's types): C{name} starts with C{ctdb_};
    C{kind} is C{"counter"} (C{name} ends in C{_total}), C{"gauge"} or
    C{"histogram"}; C{labels} are (name, value) pairs.  For a histogram
    C{buckets} holds (upper bound, cumulative count) pairs, the last bound
    C{float("inf")}, and C{value} is the sum of the observations.  Samples
    of one name share one kind, help text and label names.
    """

    name: str
    kind: str
    help: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()
    buckets: tuple[tuple[float, float], ...] = ()


class TimedOutcomes:
    """
    What a metrics source keeps of runs that succeed or fail and take some
    time (the leader's recoveries, takeover runs): the runs by result and a
    histogram of their durations over C{bounds} (upper bounds in seconds,
    the last C{float("inf")}), shown as L{MetricSample}s.
    """

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.results = {"success": 0, "failure": 0}
        self._buckets = [0] * len(bounds)
        self._seconds = 0.0

    def note(self, ok: bool, seconds: float) -> None:
        """A run ended after C{seconds}, successfully if C{ok}."""
        self.results["success" if ok else "failure"] += 1
        for i, bound in enumerate(self.bounds):
            if seconds <= bound:
                self._buckets[i] += 1
                break
        self._seconds += seconds

    def resultSamples(self, name: str, help: str) -> list[MetricSample]:
        """The counter C{name}: the runs, one sample a C{result}."""
        return [
            MetricSample(name, "counter", help, float(count), (("result", result),))
            for result, count in self.results.items()
        ]

    def durationSample(self, name: str, help: str) -> MetricSample:
        """The histogram C{name} of the runs' durations."""
        return MetricSample(
            name,
            "histogram",
            help,
            self._seconds,
            buckets=cumulativeBuckets(self.bounds, self._buckets),
        )


class IMetricsSource(Interface):
    """A subsystem with figures of its own for the metrics endpoint
    (recoveries, takeover runs, public addresses, databases): asked at
    every scrape, so it answers from what it keeps, without I/O that
    waits."""

    def metricSamples() -> Sequence[MetricSample]:
        """The subsystem's figures now."""


class IEventRunner(Interface):
    """Runs the event scripts of the node (ctdb-eventd's job): what the
    takeover layer (takeip, releaseip, updateip, ipreallocated), recovery
    (startrecovery, recovered) and health monitoring ask for."""

    def runEvent(event: str, args: str | None = None) -> object:
        """Run C{event} of the legacy component with the space-separated
        C{args}; returns a Deferred that fires with the result as Samba's
        event daemon gives it (0; ENOEXEC when a script failed; ETIMEDOUT
        when one ran past its timeout; ECANCELED when a newer event cancelled
        a monitor), or fails when the scripts cannot be run at all."""


class ITakeoverRunner(Interface):
    """The leader's takeover run (ctdb_takeover_helper): the recovery
    service decides I{when} one runs (after every recovery, on node-state
    changes, when a tool asks with TAKEOVER_RUN), the takeover subsystem
    does it."""

    def takeoverRun() -> object:
        """Allocate the public addresses over the cluster and move them:
        release on the losing nodes, take on the gaining ones, then
        IPREALLOCATED to all.  Returns a Deferred that fires with True
        when the run succeeded and False when it failed or takeover runs
        are disabled (the caller retries); culprits are already charged."""

    def takeoverRunsDisabled() -> bool:
        """True while DISABLE_TAKEOVER_RUNS (C{ctdb reloadips}) holds runs off."""

    def takeoverRunInProgress() -> bool:
        """True while this node's own takeover run goes on."""


class IAddressSystem(Interface):
    """What public-IP takeover does to the host (ctdb/common/system_socket.c
    and the 10.interface event script): the real one works through netlink
    and raw sockets; a fake records calls.  Addresses are strings, ports
    ints; every failure of the host is an L{ctdb.errors.AddressError}."""

    def interfaceExists(iface: str) -> bool:
        """Whether the network interface C{iface} exists."""

    def linkUp(iface: str) -> bool:
        """Whether C{iface} is up with a carrier (ethtool's "Link
        detected"); False for an interface that does not exist."""

    def hasAddress(address: str) -> bool:
        """Whether C{address} is configured on a local interface
        (C{ctdb_sys_have_ip})."""

    def addAddress(address: str, mask: int, iface: str) -> None:
        """Put C{address}/C{mask} on C{iface}; already there with that mask
        is fine.  Raises AddressError."""

    def removeAddress(address: str, mask: int, iface: str) -> None:
        """Take C{address} off the interface holding it; absent is not an
        error.  Raises AddressError."""

    def closeSockets(address: str) -> int:
        """Close every TCP socket of the host whose local address is
        C{address}, listeners aside (the server ends of the connections of
        an address taken off the host); how many.  Raises AddressError."""

    def sendGratuitousArp(address: str, iface: str) -> None:
        """Announce C{address} on C{iface}: ARP request and reply for IPv4,
        an unsolicited neighbour advertisement for IPv6; nothing on a
        loopback interface.  Raises AddressError."""

    def sendTickle(
        src: tuple[str, int],
        dst: tuple[str, int],
        seq: int = 0,
        ack: int = 0,
        rst: bool = False,
    ) -> None:
        """Send a bare TCP ACK (and RST if C{rst}) from C{src} to C{dst}
        with the given numbers (C{ctdb_sys_send_tcp}); seq and ack 0 make
        a tickle ACK.  Raises AddressError."""

    def killConnections(
        iface: str,
        connections: Sequence[tuple[tuple[str, int], tuple[str, int]]],
        timeout: float,
    ) -> Deferred[int]:
        """Reset the TCP C{connections}, each (client, server), as
        ctdb_killtcp does: capture on C{iface}, tickle each client from the
        server's side, and answer the ACK it sends with a reset carrying
        its numbers; tickle again until all are reset or C{timeout}
        seconds passed.  Fires with the number reset, or fails with
        AddressError when the capture cannot start."""
