# -*- test-case-name: tests.support.test_netns -*-
"""
Network namespaces for tests: a L{NetworkLab} makes namespaces, a bridge
in a namespace of its own, veth pairs that join a namespace to the bridge,
addresses and link states inside them, runs and spawns commands in them
(C{ip netns exec}), captures frames on their interfaces, and removes all
of it again.

    lab = NetworkLab.forTest(self)            # fails the test without root
    bridge = lab.addBridge()
    a, b = lab.addNamespace(), lab.addNamespace()
    lab.connect(a, bridge)                    # eth0 in a, up, on the bridge
    lab.addAddress(a, "eth0", "10.77.0.1/24")
    lab.run(a, ["ip", "addr"])

Everything a lab makes is named C{<prefix>-<pid>-<n>} and recorded;
L{NetworkLab.cleanup} kills the processes it spawned (their process
groups, by the ids it recorded) and deletes the namespaces it recorded,
which takes every interface in them along.  It runs from the test's
cleanups and, for an interrupted run, at interpreter exit.  Nothing is
done in the host's own namespace: addresses, bridges and veth ends are
only ever created inside namespaces the lab made, so any address plan
works in them (the tests use 10.77.0.0/24 and fd77::/64).

Everything goes through iproute2's C{ip} (Debian package C{iproute2}, which
C{make install} installs); the namespaces need root (C{CAP_SYS_ADMIN},
C{CAP_NET_ADMIN}).  L{requireNetns} fails a test, rather than skipping it,
when those are missing.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: the command that makes and enters namespaces
IP = "ip"

#: the capabilities a lab needs: CAP_NET_ADMIN (12), CAP_NET_RAW (13),
#: CAP_SYS_ADMIN (21, for the mounts of C{ip netns})
_NEEDED_CAPABILITIES = {12: "CAP_NET_ADMIN", 13: "CAP_NET_RAW", 21: "CAP_SYS_ADMIN"}

#: the seconds any one C{ip} command or run may take
COMMAND_TIMEOUT = 30.0

#: names made by all the labs of this process: <prefix>-<pid>-<n>
_counter = itertools.count(1)


class NetworkLabError(Exception):
    """A namespace, interface or address could not be set up as asked."""


class _TestCase(Protocol):
    def fail(self, msg: Any = None) -> Any: ...

    def addCleanup(self, function: Callable[..., object], /) -> None: ...


def _capabilities() -> int:
    """The effective capability mask of this process (0 if unreadable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def netnsProblem(ip: str | None = None, capabilities: int | None = None) -> str | None:
    """Why this process cannot make network namespaces, or None if it can;
    C{ip} (the command) and C{capabilities} (the effective mask) default to
    this process's."""
    if shutil.which(IP if ip is None else ip) is None:
        return (
            "the network-namespace tests need iproute2's 'ip' command, which is "
            "not installed: run 'make install' (Debian package iproute2)"
        )
    effective = _capabilities() if capabilities is None else capabilities
    missing = [
        name for bit, name in _NEEDED_CAPABILITIES.items() if not effective >> bit & 1
    ]
    if missing:
        return (
            "the network-namespace tests must run as root: they need "
            f"{', '.join(sorted(_NEEDED_CAPABILITIES.values()))}, and this "
            f"process (uid {os.geteuid()}) lacks {', '.join(missing)}"
        )
    return None


def requireNetns(
    testcase: _TestCase, ip: str | None = None, capabilities: int | None = None
) -> None:
    """Fail C{testcase} (not skip it) with the reason when this process
    cannot make network namespaces (the arguments as L{netnsProblem}'s)."""
    problem = netnsProblem(ip, capabilities)
    if problem is not None:
        testcase.fail(problem)


def pythonArgv(source: str, *args: str) -> list[str]:
    """The argv that runs Python C{source} with C{args} (in sys.argv[1:])
    by this interpreter, so with this virtualenv's packages."""
    return [sys.executable, "-c", source, *args]


@dataclass(frozen=True, slots=True)
class Bridge:
    """A bridge device C{name} alone in namespace C{namespace}."""

    namespace: str
    name: str


class NetworkLab:
    """
    The namespaces of one test (or class of tests) and everything in them.

    @ivar namespaces: the namespaces made, in order.
    @ivar processes: the processes spawned, each the leader of its own
        process group.
    """

    def __init__(self, prefix: str = "txlab") -> None:
        self.prefix = prefix
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self._peers = itertools.count(1)
        atexit.register(self.cleanup)

    @classmethod
    def forTest(cls, testcase: _TestCase, prefix: str = "txlab") -> NetworkLab:
        """A lab for C{testcase}, removed by its cleanups; fails the test
        if namespaces cannot be made here."""
        requireNetns(testcase)
        lab = cls(prefix)
        testcase.addCleanup(lab.cleanup)
        return lab

    # -- ip -------------------------------------------------------------------------

    def ip(self, *args: str, namespace: str | None = None) -> str:
        """Run C{ip [-n namespace] args...}; its output, or
        L{NetworkLabError} with what it printed when it fails."""
        argv = [IP] + (["-n", namespace] if namespace else []) + list(args)
        try:
            done = subprocess.run(
                argv,
                check=False,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise NetworkLabError(f"{' '.join(argv)}: {e}") from e
        if done.returncode != 0:
            raise NetworkLabError(
                f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}"
            )
        return done.stdout

    def _name(self) -> str:
        return f"{self.prefix}-{os.getpid()}-{next(_counter)}"

    # -- namespaces, bridge, veths, addresses ---------------------------------------

    def addNamespace(self) -> str:
        """A new namespace with its loopback up; its name."""
        name = self._name()
        self.ip("netns", "add", name)
        self.namespaces.append(name)
        self.ip("link", "set", "dev", "lo", "up", namespace=name)
        return name

    def addBridge(self, name: str = "br0") -> Bridge:
        """A bridge, up, in a new namespace of its own."""
        namespace = self.addNamespace()
        self.ip("link", "add", "name", name, "type", "bridge", namespace=namespace)
        self.ip("link", "set", "dev", name, "up", namespace=namespace)
        return Bridge(namespace, name)

    def connect(self, namespace: str, bridge: Bridge, iface: str = "eth0") -> str:
        """A veth pair from C{iface} in C{namespace} to a port of C{bridge},
        both ends up; returns C{iface}.  The pair is made inside the two
        namespaces, never in the host's."""
        peer = f"p{next(self._peers)}"
        self.ip(
            "link", "add", "name", iface, "type", "veth",
            "peer", "name", peer, "netns", bridge.namespace,
            namespace=namespace,
        )  # fmt: skip
        self.ip(
            "link", "set", "dev", peer, "master", bridge.name, "up",
            namespace=bridge.namespace,
        )  # fmt: skip
        self.setLink(namespace, iface, True)
        return iface

    def addAddress(self, namespace: str, iface: str, cidr: str) -> None:
        """Put C{cidr} (C{10.77.0.1/24}, C{fd77::1/64}) on C{iface}; an IPv6
        address skips duplicate address detection, so it is usable at once."""
        interface = ipaddress.ip_interface(cidr)
        extra = ["nodad"] if interface.version == 6 else []
        self.ip("addr", "add", cidr, "dev", iface, *extra, namespace=namespace)

    def setLink(self, namespace: str, iface: str, up: bool) -> None:
        """Set C{iface} administratively up or down."""
        state = "up" if up else "down"
        self.ip("link", "set", "dev", iface, state, namespace=namespace)

    def macAddress(self, namespace: str, iface: str) -> str:
        """The MAC address of C{iface}, as C{aa:bb:cc:dd:ee:ff}."""
        links = json.loads(
            self.ip("-j", "link", "show", "dev", iface, namespace=namespace)
        )
        return str(links[0]["address"])

    # -- processes --------------------------------------------------------------------

    def command(self, namespace: str, argv: Sequence[str]) -> list[str]:
        """C{argv} as run inside C{namespace}."""
        return [IP, "netns", "exec", namespace, *argv]

    def run(
        self,
        namespace: str,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float = COMMAND_TIMEOUT,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run C{argv} in C{namespace} to its end; with C{check}, a non-zero
        exit is a L{NetworkLabError} carrying its output."""
        argv = self.command(namespace, argv)
        try:
            done = subprocess.run(
                argv,
                check=False,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as e:
            raise NetworkLabError(f"{' '.join(argv)}: no end in {timeout} s") from e
        if check and done.returncode != 0:
            raise NetworkLabError(
                f"{' '.join(argv)} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}"
            )
        return done

    def spawn(
        self, namespace: str, argv: Sequence[str], **options: Any
    ) -> subprocess.Popen[bytes]:
        """Start C{argv} in C{namespace} in a process group of its own,
        stdin and stdout pipes unless C{options} say otherwise; cleanup
        kills the group."""
        options.setdefault("stdin", subprocess.PIPE)
        options.setdefault("stdout", subprocess.PIPE)
        process = subprocess.Popen(
            self.command(namespace, argv), start_new_session=True, **options
        )
        self.processes.append(process)
        return process

    def capture(self, namespace: str, iface: str) -> Capture:
        """A capture of every frame on C{iface} of C{namespace}, ready (its
        socket bound) when this returns."""
        process = self.spawn(namespace, pythonArgv(_CAPTURE, iface))
        capture = Capture(process)
        ready = capture.readLine(COMMAND_TIMEOUT)
        if ready != "ready":
            raise NetworkLabError(f"capture on {iface} in {namespace}: {ready!r}")
        return capture

    # -- cleanup ----------------------------------------------------------------------

    def cleanup(self) -> None:
        """Kill the processes spawned and delete the namespaces made, only
        those, by the ids and names recorded; safe to call again."""
        processes, self.processes = self.processes, []
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(COMMAND_TIMEOUT)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        namespaces, self.namespaces = self.namespaces, []
        problems = []
        for name in reversed(namespaces):
            try:
                self.ip("netns", "delete", name)
            except NetworkLabError as e:
                if os.path.exists(f"/run/netns/{name}"):
                    problems.append(str(e))
        atexit.unregister(self.cleanup)
        if problems:
            raise NetworkLabError("; ".join(problems))


class LineReader:
    """The lines a spawned process prints on its stdout, each waited for
    with a timeout (so a test never hangs on a silent process)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        if process.stdout is None:
            raise ValueError("the process has no stdout pipe")
        self._fd = process.stdout.fileno()
        self._buffer = b""

    def readLine(self, timeout: float = COMMAND_TIMEOUT) -> str | None:
        """The next line the process printed, without its newline, or None
        at its end or after C{timeout} seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            readable, _, _ = select.select([self._fd], [], [], left)
            if not readable:
                return None
            chunk = os.read(self._fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def writeLine(self, line: str) -> None:
        """Send C{line} to the process's stdin."""
        if self.process.stdin is None:
            raise ValueError("the process has no stdin pipe")
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()


class Capture(LineReader):
    """
    Frames seen on one interface by a capture process (an C{AF_PACKET}
    socket, outgoing frames included), read as they come.
    """

    def waitFor(
        self, predicate: Callable[[bytes], bool], timeout: float = 10.0
    ) -> bytes | None:
        """The first frame from now on for which C{predicate} is true, or
        None if none came within C{timeout} seconds."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.readLine(max(0.0, deadline - time.monotonic()))
            if line is None:
                return None
            frame = bytes.fromhex(line)
            if predicate(frame):
                return frame

    def stop(self) -> None:
        """End the capture (closing its stdin ends it)."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(COMMAND_TIMEOUT)


#: the capture process: an AF_PACKET socket on argv[1], each frame printed
#: as a hex line after "ready", until its stdin closes
_CAPTURE = """
import os, select, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 3))
out = sys.stdout
out.write("ready\\n")
out.flush()
while True:
    readable, _, _ = select.select([s, sys.stdin], [], [])
    if sys.stdin in readable and not os.read(sys.stdin.fileno(), 4096):
        break
    if s in readable:
        out.write(s.recv(65536).hex() + "\\n")
        out.flush()
"""
