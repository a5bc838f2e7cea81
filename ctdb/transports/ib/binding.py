# -*- test-case-name: tests.transports.ib.test_binding -*-
"""
Our own thin ctypes binding of libibverbs (Debian C{libibverbs1}) and
librdmacm (C{librdmacm1}), rdma-core 44's ABI, providing
L{ctdb.transports.ib.verbs.IVerbs}.  Nothing is loaded until
L{loadVerbs} is called, so a daemon on the TCP transport (and this
module's import) needs neither library.

Why not pyverbs: the transport is driven by the reactor, so it needs the
descriptors of the connection manager's event channel
(C{rdma_event_channel.fd}) and of each completion channel
(C{ibv_comp_channel.fd}), both non-blocking.  Debian 12's python3-pyverbs
(rdma-core 44) exposes neither (its C{CompChannel} has only a blocking
C{get_cq_event}, its C{CMEventChannel} only a blocking C{get_cm_event}),
and it is built for /usr/bin/python3 only; PyPI's pyverbs 59 does not
import against Debian 12's libibverbs.  So pyverbs gives us nothing we can
use, and we call the C libraries ourselves.

The structures are those of C{<infiniband/verbs.h>} and
C{<rdma/rdma_cma.h>}, declared as far as we read or allocate them; their
offsets and sizes are checked against the headers by compiling a C
program (tests/transports/ib/test_binding.py).  C{ibv_poll_cq},
C{ibv_req_notify_cq}, C{ibv_post_send} and C{ibv_post_recv} are inline
functions in verbs.h that call through the device context's
C{ibv_context_ops}; we call the same function pointers.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import fcntl
import ipaddress
import mmap
import os
import socket
import struct
from ctypes import (
    POINTER,
    Structure,
    Union,
    byref,
    c_char,
    c_int,
    c_uint,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any

from zope.interface import implementer

from ctdb.errors import VerbsError, VerbsUnavailable
from ctdb.transports.ib.verbs import (
    CMEvent,
    CMEventType,
    ICMChannel,
    ICMId,
    IQueuePair,
    IVerbs,
    WorkCompletion,
)

# -- constants (verbs.h, rdma_cma.h) ----------------------------------------

IBV_QPT_RC = 2
IBV_WR_SEND = 2
IBV_SEND_SIGNALED = 2
IBV_ACCESS_LOCAL_WRITE = 1
RDMA_PS_TCP = 0x0106

# -- structures ---------------------------------------------------------------


class ibv_sge(Structure):
    _fields_ = [("addr", c_uint64), ("length", c_uint32), ("lkey", c_uint32)]


class _send_wr_rdma(Structure):
    _fields_ = [("remote_addr", c_uint64), ("rkey", c_uint32)]


class _send_wr_atomic(Structure):
    _fields_ = [
        ("remote_addr", c_uint64),
        ("compare_add", c_uint64),
        ("swap", c_uint64),
        ("rkey", c_uint32),
    ]


class _send_wr_ud(Structure):
    _fields_ = [("ah", c_void_p), ("remote_qpn", c_uint32), ("remote_qkey", c_uint32)]


class _send_wr_wr(Union):
    _fields_ = [
        ("rdma", _send_wr_rdma),
        ("atomic", _send_wr_atomic),
        ("ud", _send_wr_ud),
    ]


class _mw_bind_info(Structure):
    _fields_ = [
        ("mr", c_void_p),
        ("addr", c_uint64),
        ("length", c_uint64),
        ("mw_access_flags", c_uint),
    ]


class _send_wr_bind_mw(Structure):
    _fields_ = [("mw", c_void_p), ("rkey", c_uint32), ("bind_info", _mw_bind_info)]


class _send_wr_tso(Structure):
    _fields_ = [("hdr", c_void_p), ("hdr_sz", c_uint16), ("mss", c_uint16)]


class _send_wr_tail(Union):
    _fields_ = [("bind_mw", _send_wr_bind_mw), ("tso", _send_wr_tso)]


class ibv_send_wr(Structure):
    pass


ibv_send_wr._fields_ = [
    ("wr_id", c_uint64),
    ("next", POINTER(ibv_send_wr)),
    ("sg_list", POINTER(ibv_sge)),
    ("num_sge", c_int),
    ("opcode", c_int),
    ("send_flags", c_uint),
    ("imm_data", c_uint32),
    ("wr", _send_wr_wr),
    ("qp_type", c_uint32),
    ("tail", _send_wr_tail),
]


class ibv_recv_wr(Structure):
    pass


ibv_recv_wr._fields_ = [
    ("wr_id", c_uint64),
    ("next", POINTER(ibv_recv_wr)),
    ("sg_list", POINTER(ibv_sge)),
    ("num_sge", c_int),
]


class ibv_wc(Structure):
    _fields_ = [
        ("wr_id", c_uint64),
        ("status", c_int),
        ("opcode", c_int),
        ("vendor_err", c_uint32),
        ("byte_len", c_uint32),
        ("imm_data", c_uint32),
        ("qp_num", c_uint32),
        ("src_qp", c_uint32),
        ("wc_flags", c_uint),
        ("pkey_index", c_uint16),
        ("slid", c_uint16),
        ("sl", c_uint8),
        ("dlid_path_bits", c_uint8),
    ]


class ibv_qp_cap(Structure):
    _fields_ = [
        ("max_send_wr", c_uint32),
        ("max_recv_wr", c_uint32),
        ("max_send_sge", c_uint32),
        ("max_recv_sge", c_uint32),
        ("max_inline_data", c_uint32),
    ]


class ibv_qp_init_attr(Structure):
    _fields_ = [
        ("qp_context", c_void_p),
        ("send_cq", c_void_p),
        ("recv_cq", c_void_p),
        ("srq", c_void_p),
        ("cap", ibv_qp_cap),
        ("qp_type", c_int),
        ("sq_sig_all", c_int),
    ]


class ibv_comp_channel(Structure):
    _fields_ = [("context", c_void_p), ("fd", c_int), ("refcnt", c_int)]


#: struct ibv_context_ops: 36 function pointers, of which we call four
_OPS = [
    "_compat_query_device",
    "_compat_query_port",
    "_compat_alloc_pd",
    "_compat_dealloc_pd",
    "_compat_reg_mr",
    "_compat_rereg_mr",
    "_compat_dereg_mr",
    "alloc_mw",
    "bind_mw",
    "dealloc_mw",
    "_compat_create_cq",
    "poll_cq",
    "req_notify_cq",
    "_compat_cq_event",
    "_compat_resize_cq",
    "_compat_destroy_cq",
    "_compat_create_srq",
    "_compat_modify_srq",
    "_compat_query_srq",
    "_compat_destroy_srq",
    "post_srq_recv",
    "_compat_create_qp",
    "_compat_query_qp",
    "_compat_modify_qp",
    "_compat_destroy_qp",
    "post_send",
    "post_recv",
    "_compat_create_ah",
    "_compat_destroy_ah",
    "_compat_attach_mcast",
    "_compat_detach_mcast",
    "_compat_async_event",
]


class ibv_context_ops(Structure):
    _fields_ = [(name, c_void_p) for name in _OPS]


class ibv_context(Structure):
    """The start of C{struct ibv_context} (we only read C{ops})."""

    _fields_ = [
        ("device", c_void_p),
        ("ops", ibv_context_ops),
        ("cmd_fd", c_int),
        ("async_fd", c_int),
        ("num_comp_vectors", c_int),
    ]


class ibv_cq(Structure):
    """The start of C{struct ibv_cq}."""

    _fields_ = [
        ("context", c_void_p),
        ("channel", c_void_p),
        ("cq_context", c_void_p),
        ("handle", c_uint32),
        ("cqe", c_int),
    ]


class ibv_qp(Structure):
    """The start of C{struct ibv_qp}."""

    _fields_ = [
        ("context", c_void_p),
        ("qp_context", c_void_p),
        ("pd", c_void_p),
        ("send_cq", c_void_p),
        ("recv_cq", c_void_p),
        ("srq", c_void_p),
        ("handle", c_uint32),
        ("qp_num", c_uint32),
    ]


class ibv_mr(Structure):
    _fields_ = [
        ("context", c_void_p),
        ("pd", c_void_p),
        ("addr", c_void_p),
        ("length", ctypes.c_size_t),
        ("handle", c_uint32),
        ("lkey", c_uint32),
        ("rkey", c_uint32),
    ]


class rdma_event_channel(Structure):
    _fields_ = [("fd", c_int)]


class rdma_cm_id(Structure):
    """The start of C{struct rdma_cm_id} (the route and what follows it
    are never read)."""

    _fields_ = [
        ("verbs", c_void_p),
        ("channel", c_void_p),
        ("context", c_void_p),
        ("qp", c_void_p),
    ]


class rdma_conn_param(Structure):
    _fields_ = [
        ("private_data", c_void_p),
        ("private_data_len", c_uint8),
        ("responder_resources", c_uint8),
        ("initiator_depth", c_uint8),
        ("flow_control", c_uint8),
        ("retry_count", c_uint8),
        ("rnr_retry_count", c_uint8),
        ("srq", c_uint8),
        ("qp_num", c_uint32),
    ]


class rdma_cm_event(Structure):
    """C{struct rdma_cm_event} with C{param.conn} (the UD half of the
    union is never read)."""

    _fields_ = [
        ("id", c_void_p),
        ("listen_id", c_void_p),
        ("event", c_int),
        ("status", c_int),
        ("conn", rdma_conn_param),
    ]


#: what the layout test checks: structure -> C name
STRUCTS: dict[str, type[Structure]] = {
    "ibv_sge": ibv_sge,
    "ibv_send_wr": ibv_send_wr,
    "ibv_recv_wr": ibv_recv_wr,
    "ibv_wc": ibv_wc,
    "ibv_qp_cap": ibv_qp_cap,
    "ibv_qp_init_attr": ibv_qp_init_attr,
    "ibv_comp_channel": ibv_comp_channel,
    "ibv_context_ops": ibv_context_ops,
    "ibv_context": ibv_context,
    "ibv_cq": ibv_cq,
    "ibv_qp": ibv_qp,
    "ibv_mr": ibv_mr,
    "rdma_event_channel": rdma_event_channel,
    "rdma_cm_id": rdma_cm_id,
    "rdma_conn_param": rdma_conn_param,
    "rdma_cm_event": rdma_cm_event,
}
#: structures we allocate ourselves: their whole size must match too
ALLOCATED = (
    "ibv_sge",
    "ibv_send_wr",
    "ibv_recv_wr",
    "ibv_wc",
    "ibv_qp_cap",
    "ibv_qp_init_attr",
    "rdma_conn_param",
    "ibv_context_ops",
)
#: C field names that differ from ours (anonymous unions)
C_NAMES = {
    ("ibv_send_wr", "tail"): "bind_mw",
    ("rdma_cm_event", "conn"): "param.conn",
}

# -- the libraries ------------------------------------------------------------

_POLL = ctypes.CFUNCTYPE(c_int, c_void_p, c_int, POINTER(ibv_wc))
_NOTIFY = ctypes.CFUNCTYPE(c_int, c_void_p, c_int)
_POST_SEND = ctypes.CFUNCTYPE(
    c_int, c_void_p, POINTER(ibv_send_wr), POINTER(POINTER(ibv_send_wr))
)
_POST_RECV = ctypes.CFUNCTYPE(
    c_int, c_void_p, POINTER(ibv_recv_wr), POINTER(POINTER(ibv_recv_wr))
)


def _declare(lib: Any, name: str, restype: Any, *argtypes: Any) -> None:
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


class _Libraries:
    """libibverbs.so.1 and librdmacm.so.1 with the prototypes we use."""

    def __init__(self, ibverbs: Any, rdmacm: Any) -> None:
        self.ibv = ibverbs
        self.cm = rdmacm
        v, cm = ibverbs, rdmacm
        _declare(v, "ibv_get_device_list", c_void_p, POINTER(c_int))
        _declare(v, "ibv_free_device_list", None, c_void_p)
        _declare(v, "ibv_alloc_pd", c_void_p, c_void_p)
        _declare(v, "ibv_dealloc_pd", c_int, c_void_p)
        _declare(v, "ibv_create_comp_channel", POINTER(ibv_comp_channel), c_void_p)
        _declare(v, "ibv_destroy_comp_channel", c_int, c_void_p)
        _declare(
            v,
            "ibv_create_cq",
            POINTER(ibv_cq),
            c_void_p,
            c_int,
            c_void_p,
            c_void_p,
            c_int,
        )
        _declare(v, "ibv_destroy_cq", c_int, c_void_p)
        _declare(
            v, "ibv_reg_mr", POINTER(ibv_mr), c_void_p, c_void_p, ctypes.c_size_t, c_int
        )
        _declare(v, "ibv_dereg_mr", c_int, c_void_p)
        _declare(
            v, "ibv_get_cq_event", c_int, c_void_p, POINTER(c_void_p), POINTER(c_void_p)
        )
        _declare(v, "ibv_ack_cq_events", None, c_void_p, c_uint)
        _declare(cm, "rdma_create_event_channel", POINTER(rdma_event_channel))
        _declare(cm, "rdma_destroy_event_channel", None, c_void_p)
        _declare(
            cm, "rdma_create_id", c_int, c_void_p, POINTER(c_void_p), c_void_p, c_int
        )
        _declare(cm, "rdma_destroy_id", c_int, c_void_p)
        _declare(cm, "rdma_bind_addr", c_int, c_void_p, c_void_p)
        _declare(cm, "rdma_listen", c_int, c_void_p, c_int)
        _declare(cm, "rdma_resolve_addr", c_int, c_void_p, c_void_p, c_void_p, c_int)
        _declare(cm, "rdma_resolve_route", c_int, c_void_p, c_int)
        _declare(
            cm, "rdma_create_qp", c_int, c_void_p, c_void_p, POINTER(ibv_qp_init_attr)
        )
        _declare(cm, "rdma_destroy_qp", None, c_void_p)
        _declare(cm, "rdma_connect", c_int, c_void_p, POINTER(rdma_conn_param))
        _declare(cm, "rdma_accept", c_int, c_void_p, POINTER(rdma_conn_param))
        _declare(cm, "rdma_reject", c_int, c_void_p, c_void_p, c_uint8)
        _declare(cm, "rdma_disconnect", c_int, c_void_p)
        _declare(
            cm, "rdma_get_cm_event", c_int, c_void_p, POINTER(POINTER(rdma_cm_event))
        )
        _declare(cm, "rdma_ack_cm_event", c_int, POINTER(rdma_cm_event))

    def check(self, call: str, rc: int) -> None:
        """librdmacm's convention (and ibverbs' for most calls): -1 and
        errno."""
        if rc != 0:
            raise VerbsError(call, self.errno() or _errno.EIO)

    def errno(self) -> int:
        """The errno of the last call (ctypes' copy of it)."""
        return ctypes.get_errno()


def _loadLibrary(name: str, package: str) -> Any:
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError as e:
        raise VerbsUnavailable(
            f"the InfiniBand transport needs {name} (Debian package {package}),"
            f" which cannot be loaded: {e}"
        ) from e


def loadVerbs() -> RealVerbs:
    """
    The real verbs, or L{VerbsUnavailable} saying what is missing: a
    library, or any RDMA device (C{ibv_get_device_list} returns NULL, with
    ENOSYS when the kernel has no RDMA support, or an empty list).
    """
    libs = _Libraries(
        _loadLibrary("libibverbs.so.1", "libibverbs1"),
        _loadLibrary("librdmacm.so.1", "librdmacm1"),
    )
    count = c_int(0)
    ctypes.set_errno(0)
    devices = libs.ibv.ibv_get_device_list(byref(count))
    if not devices:
        code = ctypes.get_errno()
        raise VerbsUnavailable(
            "the InfiniBand transport found no RDMA device: ibv_get_device_list"
            f" failed: {os.strerror(code)} (errno {code}); the kernel has no"
            " RDMA support here (no ib_uverbs device; load the HCA's driver, or"
            " set up soft-RoCE: rdma link add rxe0 type rxe netdev eth0)"
        )
    libs.ibv.ibv_free_device_list(devices)
    if count.value == 0:
        raise VerbsUnavailable(
            "the InfiniBand transport found no RDMA device: ibv_get_device_list"
            " lists none (no HCA; for soft-RoCE: rdma link add rxe0 type rxe"
            " netdev eth0)"
        )
    return RealVerbs(libs)


def _sockaddr(host: str, port: int) -> ctypes.Array[c_char]:
    address = ipaddress.ip_address(host)
    if address.version == 4:
        raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port)
        raw += address.packed + bytes(8)
    else:
        raw = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0)
        raw += address.packed + struct.pack("=I", 0)
    return ctypes.create_string_buffer(raw, 128)


def _nonBlocking(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)


def _ops(context: int) -> ibv_context_ops:
    return ibv_context.from_address(context).ops


@implementer(IVerbs)
class RealVerbs:
    def __init__(self, libs: _Libraries) -> None:
        self.libs = libs

    def createEventChannel(self) -> RealChannel:
        ch = self.libs.cm.rdma_create_event_channel()
        if not ch:
            raise VerbsError("rdma_create_event_channel", self.libs.errno())
        return RealChannel(self.libs, ch)


@implementer(ICMChannel)
class RealChannel:
    def __init__(self, libs: _Libraries, channel: Any) -> None:
        self.libs = libs
        self.channel = channel
        self.fd: int = channel.contents.fd
        _nonBlocking(self.fd)
        #: our ids by their rdma_cm_id address
        self.ids: dict[int, RealCMId] = {}

    def fileno(self) -> int:
        return self.fd

    def createId(self, context: object) -> RealCMId:
        pointer = c_void_p()
        rc = self.libs.cm.rdma_create_id(
            self.channel, byref(pointer), None, RDMA_PS_TCP
        )
        self.libs.check("rdma_create_id", rc)
        assert pointer.value is not None
        cm = RealCMId(self, pointer.value, context)
        self.ids[pointer.value] = cm
        return cm

    def getEvent(self) -> CMEvent | None:
        cm = self.libs.cm
        while True:
            event = POINTER(rdma_cm_event)()
            if cm.rdma_get_cm_event(self.channel, byref(event)) != 0:
                code = self.libs.errno()
                if code in (_errno.EAGAIN, _errno.EWOULDBLOCK):
                    return None
                raise VerbsError("rdma_get_cm_event", code)
            e = event.contents
            kind, status = e.event, e.status
            idAddress, listenAddress = e.id, e.listen_id
            private = b""
            if e.conn.private_data and e.conn.private_data_len:
                private = ctypes.string_at(e.conn.private_data, e.conn.private_data_len)
            cm.rdma_ack_cm_event(event)
            if kind == CMEventType.CONNECT_REQUEST:
                listener = self.ids.get(listenAddress)
                if listener is None:
                    cm.rdma_reject(idAddress, None, 0)
                    cm.rdma_destroy_id(idAddress)
                    continue
                incoming = RealCMId(self, idAddress, listener.context)
                self.ids[idAddress] = incoming
                return CMEvent(kind, incoming, status, private, listener)
            target = self.ids.get(idAddress)
            if target is None:
                continue  # an id we destroyed already
            return CMEvent(kind, target, status, private)

    def close(self) -> None:
        for cm in list(self.ids.values()):
            cm.destroy()
        if self.channel is not None:
            self.libs.cm.rdma_destroy_event_channel(self.channel)
            self.channel = None


@implementer(ICMId)
class RealCMId:
    def __init__(self, channel: RealChannel, address: int, context: object) -> None:
        self.channel = channel
        self.libs = channel.libs
        self.address: int | None = address
        self.context = context
        self.qp: RealQueuePair | None = None
        self._keep: list[object] = []

    def _live(self) -> int:
        """The id's address; L{VerbsError} (EBADF) once destroyed, never a
        NULL handed to librdmacm."""
        if self.address is None:
            raise VerbsError("rdma_cm_id", _errno.EBADF, "id already destroyed")
        return self.address

    def bindAddr(self, host: str, port: int) -> None:
        addr = _sockaddr(host, port)
        self.libs.check(
            "rdma_bind_addr", self.libs.cm.rdma_bind_addr(self._live(), addr)
        )

    def listen(self, backlog: int) -> None:
        self.libs.check("rdma_listen", self.libs.cm.rdma_listen(self._live(), backlog))

    def resolveAddr(
        self, source: str | None, host: str, port: int, timeoutMs: int
    ) -> None:
        src = None if source is None else _sockaddr(source, 0)
        dst = _sockaddr(host, port)
        rc = self.libs.cm.rdma_resolve_addr(self._live(), src, dst, timeoutMs)
        self.libs.check("rdma_resolve_addr", rc)

    def resolveRoute(self, timeoutMs: int) -> None:
        rc = self.libs.cm.rdma_resolve_route(self._live(), timeoutMs)
        self.libs.check("rdma_resolve_route", rc)

    def createQueuePair(
        self, bufferSize: int, recvCount: int, sendCount: int
    ) -> RealQueuePair:
        context = rdma_cm_id.from_address(self._live()).verbs
        if not context:
            raise VerbsError("rdma_create_qp", _errno.ENODEV, "id has no device yet")
        self.qp = RealQueuePair(self, context, bufferSize, recvCount, sendCount)
        return self.qp

    def _param(self, privateData: bytes) -> rdma_conn_param:
        data = ctypes.create_string_buffer(privateData, max(len(privateData), 1))
        self._keep = [data]
        param = rdma_conn_param()
        param.private_data = ctypes.cast(data, c_void_p)
        param.private_data_len = len(privateData)
        # sends only: no RDMA read or atomic in either direction
        param.responder_resources = 0
        param.initiator_depth = 0
        param.flow_control = 1
        param.retry_count = 7
        param.rnr_retry_count = 7
        return param

    def connect(self, privateData: bytes) -> None:
        param = self._param(privateData)
        self.libs.check(
            "rdma_connect", self.libs.cm.rdma_connect(self._live(), byref(param))
        )

    def accept(self, privateData: bytes) -> None:
        param = self._param(privateData)
        self.libs.check(
            "rdma_accept", self.libs.cm.rdma_accept(self._live(), byref(param))
        )

    def reject(self, privateData: bytes) -> None:
        data = ctypes.create_string_buffer(privateData, max(len(privateData), 1))
        rc = self.libs.cm.rdma_reject(self._live(), data, len(privateData))
        self.libs.check("rdma_reject", rc)

    def disconnect(self) -> None:
        self.libs.check("rdma_disconnect", self.libs.cm.rdma_disconnect(self._live()))

    def destroy(self) -> None:
        if self.address is None:
            return
        if self.qp is not None:
            self.qp.destroy()
        self.channel.ids.pop(self.address, None)
        self.libs.cm.rdma_destroy_id(self.address)
        self.address = None


@implementer(IQueuePair)
class RealQueuePair:
    """A protection domain, completion channel and queue, RC queue pair
    and one registered mapping holding every buffer of a connection."""

    def __init__(
        self,
        cmId: RealCMId,
        context: int,
        bufferSize: int,
        recvCount: int,
        sendCount: int,
    ) -> None:
        self.cmId = cmId
        v = cmId.libs.ibv
        self.libs = cmId.libs
        self.bufferSize = bufferSize
        self.recvCount = recvCount
        self.sendCount = sendCount
        self.pd: Any = None
        self.channel: Any = None
        self.cq: Any = None
        self.mr: Any = None
        self.memory: mmap.mmap | None = None
        self.hasQp = False
        try:
            self.pd = v.ibv_alloc_pd(context)
            if not self.pd:
                raise VerbsError("ibv_alloc_pd", self.libs.errno())
            self.channel = v.ibv_create_comp_channel(context)
            if not self.channel:
                raise VerbsError("ibv_create_comp_channel", self.libs.errno())
            self.fd: int = self.channel.contents.fd
            _nonBlocking(self.fd)
            cqe = recvCount + sendCount
            self.cq = v.ibv_create_cq(context, cqe, None, self.channel, 0)
            if not self.cq:
                raise VerbsError("ibv_create_cq", self.libs.errno())
            size = bufferSize * (recvCount + sendCount)
            self.memory = mmap.mmap(-1, size)
            self.base = ctypes.addressof(c_char.from_buffer(self.memory))
            self.mr = v.ibv_reg_mr(self.pd, self.base, size, IBV_ACCESS_LOCAL_WRITE)
            if not self.mr:
                raise VerbsError("ibv_reg_mr", self.libs.errno())
            attr = ibv_qp_init_attr()
            attr.send_cq = attr.recv_cq = ctypes.cast(self.cq, c_void_p)
            attr.cap.max_send_wr = sendCount
            attr.cap.max_recv_wr = recvCount
            attr.cap.max_send_sge = attr.cap.max_recv_sge = 1
            attr.qp_type = IBV_QPT_RC
            attr.sq_sig_all = 0
            rc = self.libs.cm.rdma_create_qp(cmId._live(), self.pd, byref(attr))
            self.libs.check("rdma_create_qp", rc)
            self.hasQp = True
        except BaseException:
            self.destroy()
            raise
        self.qp = rdma_cm_id.from_address(cmId._live()).qp
        ops = _ops(context)
        self._poll = _POLL(ops.poll_cq)
        self._notify = _NOTIFY(ops.req_notify_cq)
        self._postSend = _POST_SEND(ops.post_send)
        self._postRecv = _POST_RECV(ops.post_recv)
        lkey = self.mr.contents.lkey
        self._sendSge = ibv_sge(0, 0, lkey)
        self._sendWr = ibv_send_wr()
        self._sendWr.sg_list = ctypes.pointer(self._sendSge)
        self._sendWr.num_sge = 1
        self._sendWr.opcode = IBV_WR_SEND
        self._sendWr.send_flags = IBV_SEND_SIGNALED
        self._badSend = POINTER(ibv_send_wr)()
        self._recvSge = ibv_sge(0, bufferSize, lkey)
        self._recvWr = ibv_recv_wr()
        self._recvWr.sg_list = ctypes.pointer(self._recvSge)
        self._recvWr.num_sge = 1
        self._badRecv = POINTER(ibv_recv_wr)()
        self._wcs = (ibv_wc * 64)()
        self._evCq = c_void_p()
        self._evContext = c_void_p()

    def fileno(self) -> int:
        return self.fd

    def _cqLive(self, call: str) -> None:
        if self.cq is None:
            raise VerbsError(call, _errno.EBADF, "queue pair already destroyed")

    def getCqEvent(self) -> bool:
        self._cqLive("ibv_get_cq_event")
        rc = self.libs.ibv.ibv_get_cq_event(
            self.channel, byref(self._evCq), byref(self._evContext)
        )
        if rc == 0:
            return True
        code = self.libs.errno()
        if code in (_errno.EAGAIN, _errno.EWOULDBLOCK):
            return False
        raise VerbsError("ibv_get_cq_event", code)

    def reqNotifyCq(self) -> None:
        self._cqLive("ibv_req_notify_cq")
        rc = self._notify(ctypes.cast(self.cq, c_void_p), 0)
        if rc:
            raise VerbsError("ibv_req_notify_cq", rc)

    def pollCq(self, maxEntries: int) -> list[WorkCompletion]:
        self._cqLive("ibv_poll_cq")
        n = self._poll(ctypes.cast(self.cq, c_void_p), min(maxEntries, 64), self._wcs)
        if n < 0:
            raise VerbsError("ibv_poll_cq", _errno.EIO)
        wcs = self._wcs
        return [
            WorkCompletion(wcs[i].wr_id, wcs[i].status, wcs[i].opcode, wcs[i].byte_len)
            for i in range(n)
        ]

    def ackCqEvents(self, count: int) -> None:
        if self.cq is not None:
            self.libs.ibv.ibv_ack_cq_events(self.cq, count)

    def writeBuffer(self, index: int, data: bytes | bytearray | memoryview) -> None:
        assert self.memory is not None
        start = index * self.bufferSize
        self.memory[start : start + len(data)] = data

    def readBuffer(self, index: int, length: int) -> bytes:
        assert self.memory is not None
        start = index * self.bufferSize
        return self.memory[start : start + length]

    def postRecv(self, index: int) -> None:
        self._cqLive("ibv_post_recv")
        self._recvSge.addr = self.base + index * self.bufferSize
        self._recvWr.wr_id = index
        rc = self._postRecv(self.qp, byref(self._recvWr), byref(self._badRecv))
        if rc:
            raise VerbsError("ibv_post_recv", rc)

    def postSend(self, index: int, length: int, signaled: bool) -> None:
        self._cqLive("ibv_post_send")
        self._sendSge.addr = self.base + index * self.bufferSize
        self._sendSge.length = length
        self._sendWr.wr_id = index
        self._sendWr.send_flags = IBV_SEND_SIGNALED if signaled else 0
        rc = self._postSend(self.qp, byref(self._sendWr), byref(self._badSend))
        if rc:
            raise VerbsError("ibv_post_send", rc)

    def destroy(self) -> None:
        v = self.libs.ibv
        if self.hasQp and self.cmId.address is not None:
            self.libs.cm.rdma_destroy_qp(self.cmId.address)
        self.hasQp = False
        if self.cq:
            v.ibv_destroy_cq(self.cq)
            self.cq = None
        if self.channel:
            v.ibv_destroy_comp_channel(self.channel)
            self.channel = None
        if self.mr:
            v.ibv_dereg_mr(self.mr)
            self.mr = None
        if self.pd:
            v.ibv_dealloc_pd(self.pd)
            self.pd = None
        self.cmId.qp = None
        # the mapping is left to the garbage collector: a view of it
        # (c_char.from_buffer) is still alive, and closing would fail
