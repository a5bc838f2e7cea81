# -*- test-case-name: tests.transports.ib.test_transport -*-
"""
The C side of the fake fabric: stand-ins for libibverbs' and librdmacm's
functions, with their C signatures (ctypes callbacks, so the binding calls
them exactly as it calls the libraries: pointers, structures in memory,
errno, the device context's ops table), doing their work on the fake
fabric of L{tests.support.fakeverbs}.

    libs = FakeLibraries(fabric.verbs("10.0.0.1"))
    verbs = RealVerbs(libs)          # ctdb.transports.ib.binding

The transport suite then runs over our ctypes binding without a device
(tests/transports/ib/test_transport.py L{BindingOverFakeTests}): every
structure it reads or fills, every pointer it follows and every
convention it relies on (-1 and errno for librdmacm, an errno returned by
the inline post functions, EAGAIN from the non-blocking channels) is
exercised.  Registered memory is the binding's own: a send copies the
bytes from the send buffer's address into the fake, a receive completion
copies them to the address its receive was posted with.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
from collections.abc import Callable
from ctypes import CFUNCTYPE, POINTER, c_int, c_size_t, c_uint, c_uint8, c_void_p
from typing import Any

from ctdb.errors import VerbsError
from ctdb.transports.ib import binding as B
from tests.support.fakeverbs import FakeChannel, FakeCMId, FakeQueuePair, FakeVerbs


class _QueuePairRecord:
    """What the shim knows of one connection's verbs objects."""

    def __init__(self) -> None:
        self.channel: Any = None  # ibv_comp_channel struct
        self.cq: Any = None  # ibv_cq struct
        self.qpStruct: Any = None  # ibv_qp struct
        self.fake: FakeQueuePair | None = None
        self.recvAddress: dict[int, int] = {}


class FakeLibraries(B._Libraries):
    """A L{B._Libraries} whose C functions are the shim's."""

    def __init__(self, verbs: FakeVerbs) -> None:
        self.fake = verbs
        self.lastErrno = 0
        self._keep: list[object] = []
        self._ids: dict[int, FakeCMId] = {}
        self._idAddress: dict[int, int] = {}
        self._idStructs: dict[int, Any] = {}
        self._channels: dict[int, FakeChannel] = {}
        self._channelStructs: dict[int, Any] = {}
        self._events: dict[int, tuple[Any, Any]] = {}
        self._compChannels: dict[int, _QueuePairRecord] = {}
        self._cqs: dict[int, _QueuePairRecord] = {}
        self._qps: dict[int, _QueuePairRecord] = {}
        self._mrs: dict[int, Any] = {}
        self._pds: dict[int, Any] = {}
        self._context = B.ibv_context()
        ops = self._context.ops
        ops.poll_cq = self._fn(self._pollCq, c_int, c_void_p, c_int, c_void_p)
        ops.req_notify_cq = self._fn(self._reqNotifyCq, c_int, c_void_p, c_int)
        ops.post_send = self._fn(self._postSend, c_int, c_void_p, c_void_p, c_void_p)
        ops.post_recv = self._fn(self._postRecv, c_int, c_void_p, c_void_p, c_void_p)
        ibv = _Namespace()
        cm = _Namespace()
        for name, restype, argtypes, impl in self._table():
            lib = ibv if name.startswith("ibv_") else cm
            proto = CFUNCTYPE(restype, *argtypes)
            fn = proto(impl)
            self._keep.append(fn)
            setattr(lib, name, fn)
        super().__init__(ibv, cm)

    def errno(self) -> int:
        return self.lastErrno

    # -- plumbing --------------------------------------------------------

    def _fn(self, impl: Callable[..., int], restype: Any, *argtypes: Any) -> int:
        fn = CFUNCTYPE(restype, *argtypes)(impl)
        self._keep.append(fn)
        address: int = ctypes.cast(fn, c_void_p).value  # type: ignore[assignment]
        return address

    def _fail(self, e: VerbsError, result: int = -1) -> int:
        self.lastErrno = e.errno or errno.EIO
        return result

    def _guard(self, impl: Callable[..., int]) -> Callable[..., int]:
        def call(*args: Any) -> int:
            self.lastErrno = 0
            try:
                return impl(*args)
            except VerbsError as e:
                return self._fail(e)

        return call

    def _table(self) -> list[tuple[str, Any, list[Any], Callable[..., Any]]]:
        v, i, g = c_void_p, c_int, self._guard
        return [
            ("ibv_get_device_list", v, [POINTER(c_int)], lambda n: None),
            ("ibv_free_device_list", None, [v], lambda p: None),
            ("ibv_alloc_pd", v, [v], self._allocPd),
            ("ibv_dealloc_pd", i, [v], self._deallocPd),
            ("ibv_create_comp_channel", v, [v], self._createCompChannel),
            ("ibv_destroy_comp_channel", i, [v], self._destroyCompChannel),
            ("ibv_create_cq", v, [v, i, v, v, i], self._createCq),
            ("ibv_destroy_cq", i, [v], self._destroyCq),
            ("ibv_reg_mr", v, [v, v, c_size_t, i], self._regMr),
            ("ibv_dereg_mr", i, [v], self._deregMr),
            ("ibv_get_cq_event", i, [v, POINTER(v), POINTER(v)], g(self._getCqEvent)),
            ("ibv_ack_cq_events", None, [v, c_uint], self._ackCqEvents),
            ("rdma_create_event_channel", v, [], self._createEventChannel),
            ("rdma_destroy_event_channel", None, [v], self._destroyEventChannel),
            ("rdma_create_id", i, [v, POINTER(v), v, i], g(self._createId)),
            ("rdma_destroy_id", i, [v], g(self._destroyId)),
            ("rdma_bind_addr", i, [v, v], g(self._bindAddr)),
            ("rdma_listen", i, [v, i], g(self._listen)),
            ("rdma_resolve_addr", i, [v, v, v, i], g(self._resolveAddr)),
            ("rdma_resolve_route", i, [v, i], g(self._resolveRoute)),
            ("rdma_create_qp", i, [v, v, v], g(self._createQp)),
            ("rdma_destroy_qp", None, [v], self._destroyQp),
            ("rdma_connect", i, [v, v], g(self._connect)),
            ("rdma_accept", i, [v, v], g(self._accept)),
            ("rdma_reject", i, [v, v, c_uint8], g(self._reject)),
            ("rdma_disconnect", i, [v], g(self._disconnect)),
            ("rdma_get_cm_event", i, [v, POINTER(v)], g(self._getCmEvent)),
            ("rdma_ack_cm_event", i, [v], self._ackCmEvent),
        ]

    def _struct(self, kind: Any, table: dict[int, Any]) -> Any:
        obj = kind()
        table[ctypes.addressof(obj)] = obj
        return obj

    # -- ibverbs ---------------------------------------------------------

    def _allocPd(self, context: int) -> int:
        return ctypes.addressof(self._struct(ctypes.c_uint64, self._pds))

    def _deallocPd(self, pd: int) -> int:
        self._pds.pop(pd, None)
        return 0

    def _createCompChannel(self, context: int) -> int:
        channel = B.ibv_comp_channel()
        channel.context = ctypes.addressof(self._context)
        channel.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        record = _QueuePairRecord()
        record.channel = channel
        self._compChannels[ctypes.addressof(channel)] = record
        return ctypes.addressof(channel)

    def _destroyCompChannel(self, channel: int) -> int:
        record = self._compChannels.pop(channel)
        os.close(record.channel.fd)
        return 0

    def _createCq(
        self, context: int, cqe: int, cqContext: int, channel: int, vector: int
    ) -> int:
        record = self._compChannels[channel]
        cq = B.ibv_cq()
        cq.context = ctypes.addressof(self._context)
        cq.channel = channel
        cq.cqe = cqe
        record.cq = cq
        self._cqs[ctypes.addressof(cq)] = record
        return ctypes.addressof(cq)

    def _destroyCq(self, cq: int) -> int:
        self._cqs.pop(cq, None)
        return 0

    def _regMr(self, pd: int, address: int, length: int, access: int) -> int:
        mr = self._struct(B.ibv_mr, self._mrs)
        mr.pd, mr.addr, mr.length, mr.lkey = pd, address, length, 0x1234
        return ctypes.addressof(mr)

    def _deregMr(self, mr: int) -> int:
        self._mrs.pop(mr, None)
        return 0

    def _getCqEvent(self, channel: int, cqOut: Any, contextOut: Any) -> int:
        record = self._compChannels[channel]
        if record.fake is None or not record.fake.getCqEvent():
            raise VerbsError("ibv_get_cq_event", errno.EAGAIN)
        cqOut[0] = ctypes.addressof(record.cq)
        contextOut[0] = None
        return 0

    def _ackCqEvents(self, cq: int, count: int) -> None:
        fake = self._cqs[cq].fake
        if fake is not None:
            fake.ackCqEvents(count)

    # the device context's ops (the inline verbs of verbs.h)

    def _pollCq(self, cq: int, count: int, wcs: int) -> int:
        record = self._cqs[cq]
        assert record.fake is not None
        out = (B.ibv_wc * count).from_address(wcs)
        completions = record.fake.pollCq(count)
        for slot, wc in zip(out, completions, strict=False):
            ctypes.memset(ctypes.addressof(slot), 0, ctypes.sizeof(slot))
            slot.wr_id, slot.status, slot.opcode, slot.byte_len = (
                wc.wr_id,
                wc.status,
                wc.opcode,
                wc.byte_len,
            )
            if wc.wr_id < record.fake.recvCount and wc.byte_len:
                data = record.fake.readBuffer(wc.wr_id, wc.byte_len)
                ctypes.memmove(record.recvAddress[wc.wr_id], data, len(data))
        return len(completions)

    def _reqNotifyCq(self, cq: int, solicitedOnly: int) -> int:
        fake = self._cqs[cq].fake
        assert fake is not None
        fake.reqNotifyCq()
        return 0

    def _postSend(self, qp: int, wr: int, bad: int) -> int:
        record = self._qps[qp]
        assert record.fake is not None
        request = B.ibv_send_wr.from_address(wr)
        assert request.num_sge == 1 and request.opcode == B.IBV_WR_SEND
        sge = request.sg_list[0]
        try:
            record.fake.writeBuffer(
                request.wr_id, ctypes.string_at(sge.addr, sge.length)
            )
            record.fake.postSend(
                request.wr_id,
                sge.length,
                bool(request.send_flags & B.IBV_SEND_SIGNALED),
            )
        except VerbsError as e:
            return e.errno or errno.EIO
        return 0

    def _postRecv(self, qp: int, wr: int, bad: int) -> int:
        record = self._qps[qp]
        assert record.fake is not None
        request = B.ibv_recv_wr.from_address(wr)
        sge = request.sg_list[0]
        record.recvAddress[request.wr_id] = sge.addr
        try:
            record.fake.postRecv(request.wr_id)
        except VerbsError as e:
            return e.errno or errno.EIO
        return 0

    # -- rdma_cm ---------------------------------------------------------

    def _createEventChannel(self) -> int:
        fake = self.fake.createEventChannel()
        channel = B.rdma_event_channel()
        channel.fd = fake.fileno()
        address = ctypes.addressof(channel)
        self._channels[address] = fake
        self._channelStructs[address] = channel
        return address

    def _destroyEventChannel(self, channel: int) -> None:
        self._channels.pop(channel).close()
        self._channelStructs.pop(channel)

    def _structFor(self, fake: FakeCMId) -> int:
        address = self._idAddress.get(id(fake))
        if address is None:
            cm = B.rdma_cm_id()
            cm.verbs = ctypes.addressof(self._context)
            address = ctypes.addressof(cm)
            self._idStructs[address] = cm
            self._ids[address] = fake
            self._idAddress[id(fake)] = address
        return address

    def _createId(self, channel: int, idOut: Any, context: int, ps: int) -> int:
        assert ps == B.RDMA_PS_TCP
        fake = self._channels[channel].createId(None)
        idOut[0] = self._structFor(fake)
        self._idStructs[idOut[0]].channel = channel
        return 0

    def _destroyId(self, cm: int) -> int:
        fake = self._ids.pop(cm)
        self._idAddress.pop(id(fake), None)
        self._idStructs.pop(cm)
        fake.destroy()
        return 0

    def _sockaddr(self, address: int) -> tuple[str, int]:
        family = ctypes.c_uint16.from_address(address).value
        (port,) = struct.unpack("!H", ctypes.string_at(address + 2, 2))
        if family == socket.AF_INET:
            return socket.inet_ntop(
                socket.AF_INET, ctypes.string_at(address + 4, 4)
            ), port
        assert family == socket.AF_INET6, family
        return socket.inet_ntop(
            socket.AF_INET6, ctypes.string_at(address + 8, 16)
        ), port

    def _bindAddr(self, cm: int, address: int) -> int:
        self._ids[cm].bindAddr(*self._sockaddr(address))
        return 0

    def _listen(self, cm: int, backlog: int) -> int:
        self._ids[cm].listen(backlog)
        return 0

    def _resolveAddr(self, cm: int, source: int, target: int, timeout: int) -> int:
        src = self._sockaddr(source)[0] if source else None
        host, port = self._sockaddr(target)
        self._ids[cm].resolveAddr(src, host, port, timeout)
        return 0

    def _resolveRoute(self, cm: int, timeout: int) -> int:
        self._ids[cm].resolveRoute(timeout)
        return 0

    def _createQp(self, cm: int, pd: int, attr: int) -> int:
        init = B.ibv_qp_init_attr.from_address(attr)
        assert init.qp_type == B.IBV_QPT_RC and init.send_cq == init.recv_cq
        record = self._cqs[init.send_cq]
        [mr] = [m for m in self._mrs.values() if m.pd == pd]
        count = init.cap.max_recv_wr + init.cap.max_send_wr
        fake = self._ids[cm].createQueuePair(
            mr.length // count,
            init.cap.max_recv_wr,
            init.cap.max_send_wr,
            fd=record.channel.fd,
        )
        qp = B.ibv_qp()
        qp.context = ctypes.addressof(self._context)
        record.qpStruct, record.fake = qp, fake
        self._qps[ctypes.addressof(qp)] = record
        self._idStructs[cm].qp = ctypes.addressof(qp)
        return 0

    def _destroyQp(self, cm: int) -> None:
        struct_ = self._idStructs.get(cm)
        if struct_ is None or not struct_.qp:
            return
        record = self._qps.pop(struct_.qp)
        struct_.qp = None
        if record.fake is not None:
            record.fake.destroy()

    def _privateData(self, param: int) -> bytes:
        conn = B.rdma_conn_param.from_address(param)
        if not conn.private_data_len:
            return b""
        return ctypes.string_at(conn.private_data, conn.private_data_len)

    def _connect(self, cm: int, param: int) -> int:
        self._ids[cm].connect(self._privateData(param))
        return 0

    def _accept(self, cm: int, param: int) -> int:
        self._ids[cm].accept(self._privateData(param))
        return 0

    def _reject(self, cm: int, data: int, length: int) -> int:
        self._ids[cm].reject(ctypes.string_at(data, length) if length else b"")
        return 0

    def _disconnect(self, cm: int) -> int:
        self._ids[cm].disconnect()
        return 0

    def _getCmEvent(self, channel: int, eventOut: Any) -> int:
        event = self._channels[channel].getEvent()
        if event is None:
            raise VerbsError("rdma_get_cm_event", errno.EAGAIN)
        out = B.rdma_cm_event()
        out.id = self._structFor(event.cmId)  # type: ignore[arg-type]
        if event.listenId is not None:
            out.listen_id = self._structFor(event.listenId)  # type: ignore[arg-type]
        out.event, out.status = event.event, event.status
        data = ctypes.create_string_buffer(
            event.privateData, max(1, len(event.privateData))
        )
        out.conn.private_data = ctypes.addressof(data)
        out.conn.private_data_len = len(event.privateData)
        self._events[ctypes.addressof(out)] = (out, data)
        eventOut[0] = ctypes.addressof(out)
        return 0

    def _ackCmEvent(self, event: int) -> int:
        del self._events[event]
        return 0


class _Namespace:
    """Holds the shim's functions as a CDLL holds a library's."""
