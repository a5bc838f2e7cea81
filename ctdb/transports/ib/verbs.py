# -*- test-case-name: tests.transports.ib.test_transport -*-
"""
What the InfiniBand transport needs of RDMA, as Python: the seam between
L{ctdb.transports.ib.transport} and a verbs library.

L{IVerbs} is a thin, one-to-one rendering of the librdmacm / libibverbs
calls the transport makes (C{rdma_create_event_channel}, C{rdma_create_id},
C{rdma_resolve_addr}, ..., C{ibv_get_cq_event}, C{ibv_req_notify_cq},
C{ibv_poll_cq}, C{ibv_ack_cq_events}, C{ibv_post_send}, C{ibv_post_recv}),
with each library handle an object.  Two things provide it: the ctypes
binding of L{ctdb.transports.ib.binding} (the real libraries, loaded only
when asked for) and the test suite's fake fabric (C{tests/support/
fakeverbs.py}), whose channel descriptors are real eventfds.

Both channels are file descriptors the reactor watches: the connection
manager's event channel (L{ICMChannel.fileno}) and each queue pair's
completion channel (L{IQueuePair.fileno}).  Both are non-blocking; reading
when nothing is pending answers None / False instead of waiting.

Each connection's buffers are registered once, when its queue pair is
made: C{recvCount} receive buffers (indexes C{0 .. recvCount - 1}) then
C{sendCount} send buffers, all of C{bufferSize} bytes.  A work request's
C{wr_id} is the index of its buffer, so a completion names the buffer it
is about.

Nothing here imports Twisted or loads a library.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from zope.interface import Attribute, Interface

from ctdb.errors import VerbsError, VerbsUnavailable

__all__ = [
    "CMEvent",
    "CMEventType",
    "ICMChannel",
    "ICMId",
    "IQueuePair",
    "IVerbs",
    "VerbsError",
    "VerbsUnavailable",
    "WCOpcode",
    "WCStatus",
    "WorkCompletion",
]


class CMEventType(enum.IntEnum):
    """C{enum rdma_cm_event_type} (rdma/rdma_cma.h)."""

    ADDR_RESOLVED = 0
    ADDR_ERROR = 1
    ROUTE_RESOLVED = 2
    ROUTE_ERROR = 3
    CONNECT_REQUEST = 4
    CONNECT_RESPONSE = 5
    CONNECT_ERROR = 6
    UNREACHABLE = 7
    REJECTED = 8
    ESTABLISHED = 9
    DISCONNECTED = 10
    DEVICE_REMOVAL = 11
    MULTICAST_JOIN = 12
    MULTICAST_ERROR = 13
    ADDR_CHANGE = 14
    TIMEWAIT_EXIT = 15


class WCStatus(enum.IntEnum):
    """The C{enum ibv_wc_status} values the transport names
    (infiniband/verbs.h); any other non-zero status is an error too."""

    SUCCESS = 0
    LOC_LEN_ERR = 1
    LOC_QP_OP_ERR = 2
    LOC_PROT_ERR = 4
    WR_FLUSH_ERR = 5
    REM_ACCESS_ERR = 10
    RETRY_EXC_ERR = 12
    RNR_RETRY_EXC_ERR = 13
    GENERAL_ERR = 21


class WCOpcode(enum.IntEnum):
    """C{enum ibv_wc_opcode}: only sends and receives are used."""

    SEND = 0
    RECV = 128


@dataclass(frozen=True, slots=True)
class WorkCompletion:
    """One C{struct ibv_wc}, the fields the transport reads.  For a
    completion in error only C{wr_id} and C{status} mean anything (as
    verbs.h says), so the transport tells sends from receives by the
    buffer index, never by C{opcode}."""

    wr_id: int
    status: int
    opcode: int
    byte_len: int


@dataclass(frozen=True, slots=True)
class CMEvent:
    """One C{struct rdma_cm_event}, already acknowledged
    (C{rdma_ack_cm_event}) by L{ICMChannel.getEvent}: C{cmId} is the id the
    event is about (for C{CONNECT_REQUEST}, the new id of the incoming
    connection, whose C{listenId} is the listening id), C{privateData}
    the bytes the peer sent with its connect, accept or reject."""

    event: int
    cmId: ICMId
    status: int = 0
    privateData: bytes = b""
    listenId: ICMId | None = None


class IQueuePair(Interface):
    """
    The verbs resources of one connection, made on its cm id after address
    resolution: a protection domain, a completion channel, one completion
    queue for sends and receives, an RC queue pair and the registered
    buffers.
    """

    bufferSize = Attribute("bytes in each registered buffer")
    recvCount = Attribute("receive buffers: indexes 0 .. recvCount - 1")
    sendCount = Attribute("send buffers: indexes recvCount .. + sendCount - 1")

    def fileno() -> int:
        """The completion channel's descriptor (non-blocking)."""

    def getCqEvent() -> bool:
        """C{ibv_get_cq_event}: True when an event was read, False when
        none was pending (EAGAIN).  Raises L{VerbsError}."""

    def reqNotifyCq() -> None:
        """C{ibv_req_notify_cq(cq, 0)}: arm for the next completion (one
        already in the queue raises no event)."""

    def pollCq(maxEntries: int) -> list[WorkCompletion]:
        """C{ibv_poll_cq}: up to C{maxEntries} completions, [] if none."""

    def ackCqEvents(count: int) -> None:
        """C{ibv_ack_cq_events}."""

    def writeBuffer(index: int, data: bytes | bytearray | memoryview) -> None:
        """Copy C{data} into buffer C{index} from its start."""

    def readBuffer(index: int, length: int) -> bytes:
        """The first C{length} bytes of buffer C{index}."""

    def postRecv(index: int) -> None:
        """C{ibv_post_recv} of buffer C{index} (whole).  Raises
        L{VerbsError}."""

    def postSend(index: int, length: int, signaled: bool) -> None:
        """C{ibv_post_send} of the first C{length} bytes of buffer
        C{index}; C{signaled} (C{IBV_SEND_SIGNALED}) asks for a completion
        (one in error comes anyway).  A signaled send's completion means
        every send posted before it is done too.  Raises L{VerbsError}."""

    def destroy() -> None:
        """Free the queue pair, completion queue and channel, buffers and
        domain.  The caller has stopped watching L{fileno}."""


class ICMId(Interface):
    """An C{rdma_cm_id} (RDMA_PS_TCP, reliable connected)."""

    context = Attribute("whatever the owner keeps with the id")

    def bindAddr(host: str, port: int) -> None:
        """C{rdma_bind_addr}."""

    def listen(backlog: int) -> None:
        """C{rdma_listen}."""

    def resolveAddr(source: str | None, host: str, port: int, timeoutMs: int) -> None:
        """C{rdma_resolve_addr}: from C{source} (our address) to the peer;
        ADDR_RESOLVED or ADDR_ERROR follows on the channel."""

    def resolveRoute(timeoutMs: int) -> None:
        """C{rdma_resolve_route}: ROUTE_RESOLVED or ROUTE_ERROR follows."""

    def createQueuePair(bufferSize: int, recvCount: int, sendCount: int) -> IQueuePair:
        """The connection's verbs resources (see L{IQueuePair}), on the
        device the id was resolved to.  Raises L{VerbsError}."""

    def connect(privateData: bytes) -> None:
        """C{rdma_connect}: ESTABLISHED, REJECTED, UNREACHABLE or
        CONNECT_ERROR follows."""

    def accept(privateData: bytes) -> None:
        """C{rdma_accept} of an incoming connection."""

    def reject(privateData: bytes) -> None:
        """C{rdma_reject} of an incoming connection."""

    def disconnect() -> None:
        """C{rdma_disconnect}: both sides get DISCONNECTED; outstanding
        work completes with WR_FLUSH_ERR."""

    def destroy() -> None:
        """C{rdma_destroy_qp} (if any) and C{rdma_destroy_id}."""


class ICMChannel(Interface):
    """An C{rdma_event_channel}."""

    def fileno() -> int:
        """The channel's descriptor (non-blocking)."""

    def createId(context: object) -> ICMId:
        """C{rdma_create_id(channel, &id, context, RDMA_PS_TCP)}."""

    def getEvent() -> CMEvent | None:
        """C{rdma_get_cm_event} then C{rdma_ack_cm_event}; None when no
        event is pending (EAGAIN)."""

    def close() -> None:
        """C{rdma_destroy_event_channel}; every id on it is destroyed."""


class IVerbs(Interface):
    """An RDMA stack: where the transport gets its event channel."""

    def createEventChannel() -> ICMChannel:
        """C{rdma_create_event_channel}, made non-blocking."""
