# -*- test-case-name: tests.transports.ib.test_binding -*-
"""
Tests for L{ctdb.transports.ib.binding}: every structure's field offsets
(and the size of every structure we allocate) and every constant agree
with rdma-core's headers, checked by compiling a C program with gcc
against C{<infiniband/verbs.h>} and C{<rdma/rdma_cma.h>} (Debian
libibverbs-dev, librdmacm-dev; the Makefile installs them and gcc); and
L{loadVerbs} either gives verbs or says what is missing.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import subprocess
import tempfile

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from ctdb.errors import ConfigError, VerbsError, VerbsUnavailable
from ctdb.transports.ib import binding
from ctdb.transports.ib.verbs import CMEventType, IVerbs, WCOpcode, WCStatus
from tests.support.fakelibverbs import FakeLibraries
from tests.support.fakeverbs import FakeFabric

CONSTANTS = {
    "IBV_QPT_RC": binding.IBV_QPT_RC,
    "IBV_WR_SEND": binding.IBV_WR_SEND,
    "IBV_SEND_SIGNALED": binding.IBV_SEND_SIGNALED,
    "IBV_ACCESS_LOCAL_WRITE": binding.IBV_ACCESS_LOCAL_WRITE,
    "RDMA_PS_TCP": binding.RDMA_PS_TCP,
    **{f"RDMA_CM_EVENT_{e.name}": e.value for e in CMEventType},
    **{f"IBV_WC_{s.name}": s.value for s in WCStatus},
    **{f"IBV_WC_{o.name}": o.value for o in WCOpcode},
}


def _layoutProgram() -> tuple[str, list[tuple[str, int]]]:
    """A C program printing one number a line, and what each should be."""
    lines = [
        "#include <stddef.h>",
        "#include <stdio.h>",
        "#include <infiniband/verbs.h>",
        "#include <rdma/rdma_cma.h>",
        "int main(void) {",
    ]
    expected: list[tuple[str, int]] = []
    for cname, struct in binding.STRUCTS.items():
        for field in struct._fields_:
            name = field[0]
            cfield = binding.C_NAMES.get((cname, name), name)
            what = f"offsetof(struct {cname}, {cfield})"
            lines.append(f'printf("%zu\\n", {what});')
            expected.append((what, getattr(struct, name).offset))
        if cname in binding.ALLOCATED:
            what = f"sizeof(struct {cname})"
            lines.append(f'printf("%zu\\n", {what});')
            expected.append((what, ctypes.sizeof(struct)))
    for name, value in CONSTANTS.items():
        lines.append(f'printf("%ld\\n", (long){name});')
        expected.append((name, value))
    lines.append("return 0; }")
    return "\n".join(lines) + "\n", expected


class LayoutTests(SynchronousTestCase):
    """The ctypes declarations match the headers."""

    def test_layoutMatchesHeaders(self) -> None:
        """Every offset, size and constant the binding uses is what gcc
        computes from verbs.h and rdma_cma.h."""
        gcc = shutil.which("gcc")
        self.assertIsNotNone(gcc, "gcc is needed (make install installs it)")
        assert gcc is not None
        source, expected = _layoutProgram()
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "layout.c")
        with open(path, "w") as f:
            f.write(source)
        program = os.path.join(directory, "layout")
        subprocess.run([gcc, "-o", program, path], check=True, capture_output=True)
        output = subprocess.run([program], check=True, capture_output=True, text=True)
        got = [int(line) for line in output.stdout.split()]
        self.assertEqual(len(got), len(expected))
        wrong = [
            (what, want, have)
            for (what, want), have in zip(expected, got, strict=True)
            if want != have
        ]
        self.assertEqual(wrong, [])
        self.assertGreater(len(expected), 100)

    def test_opsCovered(self) -> None:
        """The four function pointers the inline verbs call are in the
        context's ops table, which is checked whole (its size)."""
        for name in ("poll_cq", "req_notify_cq", "post_send", "post_recv"):
            self.assertIn(name, [f[0] for f in binding.ibv_context_ops._fields_])
        self.assertIn("ibv_context_ops", binding.ALLOCATED)


class LoadTests(SynchronousTestCase):
    """L{binding.loadVerbs} on this machine."""

    def test_loadOrSayWhy(self) -> None:
        """With a device, the verbs; without one, L{VerbsUnavailable} (a
        L{ConfigError}, so the daemon reports it and does not start)
        naming the missing device and the libibverbs error."""
        try:
            verbs = binding.loadVerbs()
        except VerbsUnavailable as e:
            self.assertIsInstance(e, ConfigError)
            self.assertIn("no RDMA device", str(e))
            self.assertIn("ibv_get_device_list", str(e))
            return
        self.assertTrue(verifyObject(IVerbs, verbs))

    def test_missingLibrary(self) -> None:
        """A library that cannot be loaded is named with its Debian
        package."""
        with self.assertRaises(VerbsUnavailable) as caught:
            binding._loadLibrary("libnot-a-verbs-library.so.1", "libnotverbs1")
        self.assertIn("libnot-a-verbs-library.so.1", str(caught.exception))
        self.assertIn("libnotverbs1", str(caught.exception))

    def test_sockaddr(self) -> None:
        """IPv4 and IPv6 addresses become sockaddr_in / sockaddr_in6."""
        four = binding._sockaddr("192.0.2.7", 4379).raw
        self.assertEqual(four[:8], b"\x02\x00\x11\x1b\xc0\x00\x02\x07")
        six = binding._sockaddr("fd77::1", 4379).raw
        self.assertEqual(six[:4], b"\x0a\x00\x11\x1b")
        self.assertEqual(six[8:24], bytes.fromhex("fd770000000000000000000000000001"))


class HandleTests(SynchronousTestCase):
    """The binding's handles, driven through the C stand-ins of
    L{tests.support.fakelibverbs}."""

    def setUp(self) -> None:
        self.fabric = FakeFabric()
        self.addCleanup(self.fabric.close)
        self.verbs = binding.RealVerbs(FakeLibraries(self.fabric.verbs("10.0.0.1")))

    def test_destroyedIdRefuses(self) -> None:
        """A destroyed id raises EBADF instead of handing librdmacm a NULL."""
        channel = self.verbs.createEventChannel()
        self.addCleanup(channel.close)
        cm = channel.createId(None)
        cm.destroy()
        cm.destroy()
        error = self.assertRaises(VerbsError, cm.disconnect)
        self.assertEqual(error.errno, errno.EBADF)
        self.assertRaises(VerbsError, cm.resolveRoute, 100)

    def test_errnoFromLibrary(self) -> None:
        """A failing call raises L{VerbsError} with the library's errno."""
        channel = self.verbs.createEventChannel()
        self.addCleanup(channel.close)
        cm = channel.createId(None)
        error = self.assertRaises(VerbsError, cm.bindAddr, "10.0.0.2", 4379)
        self.assertEqual(
            (error.call, error.errno), ("rdma_bind_addr", errno.EADDRNOTAVAIL)
        )
        self.assertIsNone(channel.getEvent())

    def test_destroyedQueuePairRefuses(self) -> None:
        """A destroyed queue pair raises EBADF; acknowledging is a no-op."""
        channel = self.verbs.createEventChannel()
        self.addCleanup(channel.close)
        cm = channel.createId(None)
        cm.resolveAddr(None, "10.0.0.1", 1, 100)
        event = channel.getEvent()
        assert event is not None
        self.assertEqual(event.event, CMEventType.ADDR_RESOLVED)
        self.assertIs(event.cmId, cm)
        qp = cm.createQueuePair(256, 2, 2)
        self.assertEqual((qp.bufferSize, qp.recvCount, qp.sendCount), (256, 2, 2))
        self.assertFalse(qp.getCqEvent())
        qp.destroy()
        self.assertRaises(VerbsError, qp.pollCq, 4)
        self.assertRaises(VerbsError, qp.postSend, 2, 1, True)
        qp.ackCqEvents(1)
