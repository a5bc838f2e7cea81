# -*- test-case-name: tests.support.test_netns -*-
"""
Tests for L{tests.support.netns}: a lab's namespaces, bridge, veths and
addresses work and are gone after cleanup, nothing in the host's namespace
changes, and a missing privilege fails a test rather than skipping it.
"""

from __future__ import annotations

import os
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from tests.support import netns
from tests.support.netns import NetworkLab, NetworkLabError


def _hostLinks() -> str:
    """The host namespace's interfaces, names and addresses."""
    links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    addresses = subprocess.run(
        ["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    # counters and states of the host's own interfaces move; names do not
    names = sorted(line.split(":")[1].strip() for line in links.splitlines())
    return "\n".join(names) + "\n" + "\n".join(sorted(addresses.splitlines()))


def _namespaces() -> set[str]:
    out = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


_RECEIVE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 9999))
print("ready", flush=True)
data, peer = s.recvfrom(100)
print(data.decode(), peer[0], flush=True)
"""

_SEND = """
import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"hello", (sys.argv[1], 9999))
"""


def _send(lab: NetworkLab, namespace: str, address: str) -> None:
    """Send a UDP datagram from C{namespace} to C{address} port 9999."""
    lab.run(namespace, netns.pythonArgv(_SEND, address))


class _Recorder:
    """A test case double: what fail and addCleanup were given."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.cleanups: list[object] = []

    def fail(self, msg: object = None) -> None:
        self.failures.append(str(msg))

    def addCleanup(self, function: object, /) -> None:
        self.cleanups.append(function)


class NetworkLabTests(SynchronousTestCase):
    """A lab builds a small network and takes all of it away again."""

    def test_lifecycle(self) -> None:
        """Two namespaces on a bridge reach each other (a datagram from one
        to a process spawned in the other), the names carry the prefix and pid,
        and cleanup leaves no namespace and the host's interfaces and
        addresses as they were."""
        before = _hostLinks()
        lab = NetworkLab.forTest(self, "txnstest")
        bridge = lab.addBridge()
        a, b = lab.addNamespace(), lab.addNamespace()
        for name in (bridge.namespace, a, b):
            self.assertTrue(name.startswith(f"txnstest-{os.getpid()}-"))
        self.assertEqual(len({bridge.namespace, a, b}), 3)
        lab.connect(a, bridge)
        lab.connect(b, bridge)
        lab.addAddress(a, "eth0", "10.77.0.1/24")
        lab.addAddress(b, "eth0", "10.77.0.2/24")
        lab.addAddress(b, "eth0", "fd77::2/64")
        self.assertIn("10.77.0.1/24", lab.run(a, ["ip", "-o", "addr"]).stdout)
        receiver = lab.spawn(b, netns.pythonArgv(_RECEIVE, "10.77.0.2"))
        assert receiver.stdout is not None
        self.assertEqual(receiver.stdout.readline(), b"ready\n")
        _send(lab, a, "10.77.0.2")
        self.assertEqual(receiver.stdout.readline(), b"hello 10.77.0.1\n")
        self.assertRegex(lab.macAddress(a, "eth0"), r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
        sleeper = lab.spawn(b, ["sleep", "600"])
        self.assertTrue(_namespaces() >= {bridge.namespace, a, b})
        self.assertEqual(_hostLinks(), before)

        lab.cleanup()
        self.assertIsNotNone(sleeper.poll())
        self.assertEqual(_namespaces() & {bridge.namespace, a, b}, set())
        self.assertEqual(_hostLinks(), before)
        lab.cleanup()  # again: nothing left to do

    def test_linkState(self) -> None:
        """setLink takes the far end's carrier away: the near end of the
        veth loses LOWER_UP."""
        lab = NetworkLab.forTest(self, "txnstest")
        bridge = lab.addBridge()
        a = lab.addNamespace()
        lab.connect(a, bridge)
        self.assertIn("LOWER_UP", lab.ip("link", "show", "dev", "eth0", namespace=a))
        lab.ip("link", "set", "dev", "p1", "down", namespace=bridge.namespace)
        self.assertNotIn("LOWER_UP", lab.ip("link", "show", "dev", "eth0", namespace=a))

    def test_capture(self) -> None:
        """A capture in one namespace sees a datagram from another."""
        lab = NetworkLab.forTest(self, "txnstest")
        bridge = lab.addBridge()
        a, b = lab.addNamespace(), lab.addNamespace()
        lab.connect(a, bridge)
        lab.connect(b, bridge)
        lab.addAddress(a, "eth0", "10.77.0.1/24")
        lab.addAddress(b, "eth0", "10.77.0.2/24")
        capture = lab.capture(b, "eth0")
        _send(lab, a, "10.77.0.2")
        datagram = capture.waitFor(lambda f: f[12:14] == b"\x08\x00" and f[23] == 17)
        self.assertIsNotNone(datagram)
        assert datagram is not None
        self.assertEqual(datagram[26:30], bytes([10, 77, 0, 1]))
        self.assertEqual(datagram[-5:], b"hello")
        capture.stop()

    def test_failedCommand(self) -> None:
        """A failing ip command is a NetworkLabError with ip's words."""
        lab = NetworkLab.forTest(self, "txnstest")
        a = lab.addNamespace()
        error = self.assertRaises(NetworkLabError, lab.setLink, a, "nosuchdevice", True)
        self.assertIn("nosuchdevice", str(error))

    def test_cleanupOnlyOwn(self) -> None:
        """Cleanup deletes only what its lab recorded: a namespace made by
        another lab stays until that lab cleans up."""
        mine = NetworkLab("txnstest")
        other = NetworkLab.forTest(self, "txnstest")
        kept = other.addNamespace()
        mine.addNamespace()
        mine.cleanup()
        self.assertIn(kept, _namespaces())


class RequireNetnsTests(SynchronousTestCase):
    """requireNetns fails a test that cannot make namespaces."""

    def test_privileged(self) -> None:
        """Here (root), it has nothing to say."""
        self.assertIsNone(netns.netnsProblem())
        recorder = _Recorder()
        netns.requireNetns(recorder)
        self.assertEqual(recorder.failures, [])

    def test_withoutCapabilities(self) -> None:
        """Without the capabilities, the test fails with a message naming
        what is missing."""
        recorder = _Recorder()
        netns.requireNetns(recorder, capabilities=1 << 12)
        self.assertEqual(len(recorder.failures), 1)
        self.assertIn("must run as root", recorder.failures[0])
        self.assertIn("lacks CAP_NET_RAW, CAP_SYS_ADMIN", recorder.failures[0])

    def test_withoutIp(self) -> None:
        """Without iproute2, the message says how to install it."""
        problem = netns.netnsProblem(ip="/nonexistent/ip")
        self.assertIsNotNone(problem)
        self.assertIn("make install", str(problem))
