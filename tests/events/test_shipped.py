# -*- test-case-name: tests.events.test_shipped -*-
"""
Tests for the event scripts txctdb ships (C{ctdb/events/scripts/legacy/}),
run directly as an event daemon runs them: from a temporary C{CTDB_BASE}
whose C{events/legacy/} links to them, with options in C{script.options}
files.  The interface script runs inside network namespaces
(L{tests.support.netns.NetworkLab}), against a node of ours for the link
states it reports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from twisted.internet import reactor, utils
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ctdb.config.publicaddresses import PublicAddress
from ctdb.events.lifecycle import SHIPPED_EVENTS
from ctdb.interfaces import ICTDBReactor
from ctdb.nodes import parseNodes
from ctdb.service import CTDBNode, NodeConfig, buildNode
from ctdb.takeover.fake import FakeAddressSystem
from ctdb.testing import FakeNodeTransport
from tests.support.netns import LineReader, NetworkLab, pythonArgv

REACTOR: ICTDBReactor = reactor  # type: ignore[assignment]

LINK = "10.interface-link"
SERVICE = "50.service-check"


#: a TCP server on the public address: says ready, then accepted, then
#: holds the connection
SERVER = """
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.0.51", 7777))
s.listen(5)
print("ready", flush=True)
c, _ = s.accept()
print("accepted", flush=True)
time.sleep(60)
"""

#: its client: says connected, then how the connection ended
CLIENT = """
import socket
c = socket.create_connection(("10.77.0.51", 7777), timeout=10)
print("connected", flush=True)
c.settimeout(30)
try:
    print("data" if c.recv(1) else "eof", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
except OSError as e:
    print(f"error {e}", flush=True)
"""


class ScriptBase:
    """A temporary C{CTDB_BASE} with the shipped scripts linked into
    C{events/legacy/}, as C{ctdb event script enable} links them."""

    def __init__(self, case: SynchronousTestCase) -> None:
        self.base = tempfile.mkdtemp(prefix="txctdb-shipped-")
        case.addCleanup(shutil.rmtree, self.base, True)
        self.legacy = os.path.join(self.base, "events", "legacy")
        os.makedirs(self.legacy)
        for name in (LINK, SERVICE):
            os.symlink(
                os.path.join(SHIPPED_EVENTS, "legacy", f"{name}.script"),
                self.script(name),
            )
        self.socket = os.path.join(self.base, "ctdbd.socket")

    def script(self, name: str) -> str:
        return os.path.join(self.legacy, f"{name}.script")

    def write(self, relative: str, text: str) -> str:
        path = os.path.join(self.base, relative)
        with open(path, "w") as f:
            f.write(text)
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CTDB_BASE": self.base,
            "CTDB_PYTHON": sys.executable,
            "CTDB_SOCKET": self.socket,
        }
        env.update(extra)
        return env

    def argv(self, name: str, *args: str, **extra: str) -> list[str]:
        """C{env ... script args}: the script with this base's environment."""
        pairs = [f"{k}={v}" for k, v in self.env(**extra).items()]
        return ["env", "-i", *pairs, self.script(name), *args]


class ShippedTests(SynchronousTestCase):
    """The scripts are package data, executable, in Samba's layout."""

    def test_layout(self) -> None:
        """Each script is an executable NN.name.script of the legacy
        component, and passes an event it does not handle."""
        for name in (LINK, SERVICE):
            path = os.path.join(SHIPPED_EVENTS, "legacy", f"{name}.script")
            self.assertTrue(os.access(path, os.X_OK), path)
            base = ScriptBase(self)
            done = subprocess.run(
                base.argv(name, "ipreallocated"),
                check=False,
                capture_output=True,
                text=True,
                timeout=60,
            )
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)


class ServiceCheckTests(SynchronousTestCase):
    """50.service-check: TCP ports, connections and a command."""

    def setUp(self) -> None:
        self.base = ScriptBase(self)

    def runScript(self, event: str = "monitor") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.base.argv(SERVICE, event),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def listener(self, family: int = socket.AF_INET) -> int:
        """A listening TCP socket on loopback for this test; its port."""
        s = socket.socket(family, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
        s.listen(5)
        return int(s.getsockname()[1])

    def freePort(self) -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def test_nothingConfigured(self) -> None:
        """Without options every event passes."""
        for event in ("monitor", "startup", "takeip"):
            self.assertEqual(self.runScript(event).returncode, 0)

    def test_listeningPort(self) -> None:
        """A bare port passes when something listens on it."""
        port = self.listener()
        self.base.write("script.options", f"CTDB_SERVICE_CHECK_TCP={port}\n")
        done = self.runScript()
        self.assertEqual(done.returncode, 0, done.stdout)

    def test_portNotListening(self) -> None:
        """A bare port nobody listens on fails the monitor event, and only
        it: other events pass."""
        port = self.freePort()
        self.base.write("script.options", f"CTDB_SERVICE_CHECK_TCP={port}\n")
        done = self.runScript()
        self.assertEqual(done.returncode, 1)
        self.assertIn(f"ERROR: nothing listens on TCP port {port}", done.stdout)
        self.assertEqual(self.runScript("startup").returncode, 0)

    def test_connections(self) -> None:
        """HOST:PORT and [ADDR6]:PORT must accept a connection; every
        failure is reported."""
        good4 = self.listener()
        good6 = self.listener(socket.AF_INET6)
        bad = self.freePort()
        self.base.write(
            "script.options",
            f'CTDB_SERVICE_CHECK_TCP="127.0.0.1:{good4} [::1]:{good6}"\n',
        )
        self.assertEqual(self.runScript().returncode, 0)
        self.base.write(
            "script.options",
            f'CTDB_SERVICE_CHECK_TCP="127.0.0.1:{bad} 127.0.0.1:{good4} x:y ::1"\n',
        )
        done = self.runScript()
        self.assertEqual(done.returncode, 1)
        self.assertIn(f"ERROR: no TCP connection to 127.0.0.1:{bad}", done.stdout)
        self.assertIn("ERROR: bad CTDB_SERVICE_CHECK_TCP target 'x:y'", done.stdout)
        self.assertIn("ERROR: bad CTDB_SERVICE_CHECK_TCP target '::1'", done.stdout)
        self.assertNotIn(f":{good4}", done.stdout)

    def test_command(self) -> None:
        """The command's status decides, and its output is kept."""
        self.base.write(
            "script.options", 'CTDB_SERVICE_CHECK_COMMAND="echo fine; true"\n'
        )
        done = self.runScript()
        self.assertEqual((done.returncode, done.stdout), (0, "fine\n"))
        self.base.write(
            "script.options", "CTDB_SERVICE_CHECK_COMMAND='echo broken; exit 4'\n"
        )
        done = self.runScript()
        self.assertEqual(done.returncode, 1)
        self.assertEqual(
            done.stdout,
            "broken\nERROR: check command failed (status 4): echo broken; exit 4\n",
        )

    def test_commandTimeout(self) -> None:
        """A command past the timeout fails, and its whole process group
        is killed."""
        pidfile = os.path.join(self.base.base, "child.pid")
        self.base.write(
            "script.options",
            "CTDB_SERVICE_CHECK_TIMEOUT=0.5\n"
            f"CTDB_SERVICE_CHECK_COMMAND='sleep 600 & echo $! > {pidfile}; wait'\n",
        )
        done = self.runScript()
        self.assertEqual(done.returncode, 1)
        self.assertIn("ERROR: check command timed out after 0.5 s", done.stdout)
        with open(pidfile) as f:
            pid = int(f.read())
        self.assertFalse(_alive(pid))

    def test_commandTimeoutEscapedChild(self) -> None:
        """A command past the timeout whose child left the process group
        (setsid) and holds the output pipe: the check still fails at once
        instead of waiting for the child."""
        pidfile = os.path.join(self.base.base, "child.pid")
        self.base.write(
            "script.options",
            "CTDB_SERVICE_CHECK_TIMEOUT=0.5\n"
            "CTDB_SERVICE_CHECK_COMMAND="
            f"'echo started; setsid sleep 600 & echo $! > {pidfile}; wait'\n",
        )
        self.addCleanup(_killPidFile, pidfile)
        started = time.monotonic()
        done = self.runScript()
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(done.returncode, 1)
        self.assertTrue(done.stdout.startswith("started\n"), done.stdout)
        self.assertIn("ERROR: check command timed out after 0.5 s", done.stdout)

    def test_scriptOptionsOverride(self) -> None:
        """The options file beside the script (NAME.options) overrides the
        global script.options."""
        port = self.listener()
        self.base.write("script.options", f"CTDB_SERVICE_CHECK_TCP={self.freePort()}\n")
        self.base.write(
            os.path.join("events", "legacy", f"{SERVICE}.options"),
            f"# the service of this node\nCTDB_SERVICE_CHECK_TCP={port}\n",
        )
        done = self.runScript()
        self.assertEqual(done.returncode, 0, done.stdout)


def _killPidFile(path: str) -> None:
    """SIGKILL the process whose pid a test's command wrote (cleanup)."""
    try:
        with open(path) as f:
            os.kill(int(f.read()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _alive(pid: int) -> bool:
    """Whether C{pid} runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class InterfaceLinkTests(TestCase):
    """10.interface-link inside a network namespace with two veth
    interfaces on a bridge, talking to a node of ours."""

    def setUp(self) -> None:
        self.lab = NetworkLab.forTest(self, prefix="txevl")
        self.bridge = self.lab.addBridge()
        self.ns = self.lab.addNamespace()
        self.lab.connect(self.ns, self.bridge, "eth0")
        self.lab.connect(self.ns, self.bridge, "eth1")
        self.base = ScriptBase(self)
        self.addresses(("10.77.0.50/24", "eth0"), ("10.77.0.51/24", "eth0,eth1"))

    def addresses(self, *entries: tuple[str, str]) -> None:
        self.base.write("public_addresses", "".join(f"{a} {i}\n" for a, i in entries))

    def runScript(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.lab.run(self.ns, self.base.argv(LINK, *args, **extra), check=False)

    def peer(self, iface: str) -> str:
        """The bridge-side end of C{iface}'s veth pair."""
        mine = json.loads(
            self.lab.ip("-j", "link", "show", "dev", iface, namespace=self.ns)
        )
        index = mine[0]["link_index"]
        for link in json.loads(
            self.lab.ip("-j", "link", "show", namespace=self.bridge.namespace)
        ):
            if link["ifindex"] == index:
                return str(link["ifname"])
        raise AssertionError(f"no peer of {iface}")

    def hostAddresses(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for link in json.loads(self.lab.ip("-j", "addr", "show", namespace=self.ns)):
            out[link["ifname"]] = [
                f"{a['local']}/{a['prefixlen']}"
                for a in link.get("addr_info", [])
                if a["family"] == "inet"
            ]
        return out

    def test_linksUp(self) -> None:
        """With every interface up with a carrier, monitor and startup pass."""
        for event in ("monitor", "startup"):
            done = self.runScript(event)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)

    def test_noCarrier(self) -> None:
        """An interface whose other end is down has no link: the monitor
        event fails (startup does not), and passes again once the link is
        back."""
        peer = self.peer("eth1")
        self.lab.setLink(self.bridge.namespace, peer, False)
        done = self.runScript("monitor")
        self.assertEqual(done.returncode, 1)
        self.assertIn(
            "ERROR: No link on the public network interface eth1", done.stdout
        )
        self.assertEqual(self.runScript("startup").returncode, 0)
        self.lab.setLink(self.bridge.namespace, peer, True)
        self.assertEqual(self.runScript("monitor").returncode, 0)

    def test_partiallyOnline(self) -> None:
        """With one interface up and one down the event fails, unless
        CTDB_PARTIALLY_ONLINE_INTERFACES=yes; with all down it fails
        anyway."""
        self.lab.setLink(self.bridge.namespace, self.peer("eth1"), False)
        self.assertEqual(self.runScript("monitor").returncode, 1)
        self.base.write("script.options", "CTDB_PARTIALLY_ONLINE_INTERFACES=yes\n")
        done = self.runScript("monitor")
        self.assertEqual(done.returncode, 0, done.stdout)
        self.assertIn("eth1", done.stdout)
        self.lab.setLink(self.bridge.namespace, self.peer("eth0"), False)
        self.assertEqual(self.runScript("monitor").returncode, 1)

    def test_broughtUp(self) -> None:
        """An interface that is administratively down is brought up, as
        10.interface does, and then has its link."""
        self.lab.setLink(self.ns, "eth0", False)
        done = self.runScript("monitor")
        self.assertEqual(done.returncode, 0, done.stdout)
        link = json.loads(
            self.lab.ip("-j", "link", "show", "dev", "eth0", namespace=self.ns)
        )
        self.assertIn("UP", link[0]["flags"])

    def test_missingInterface(self) -> None:
        """A public interface that does not exist fails the event."""
        self.addresses(("10.77.0.50/24", "eth7"), ("10.77.0.51/24", "lo"))
        done = self.runScript("monitor")
        self.assertEqual(done.returncode, 1)
        self.assertIn("ERROR: Monitored interface eth7 does not exist", done.stdout)

    def test_noAddressesFile(self) -> None:
        """Without a public addresses file there is nothing to check."""
        os.unlink(os.path.join(self.base.base, "public_addresses"))
        self.assertEqual(self.runScript("monitor").returncode, 0)
        done = self.runScript("init")
        self.assertEqual(
            (done.returncode, done.stdout), (0, "No public addresses file found\n")
        )

    def test_argumentsChecked(self) -> None:
        """takeip and releaseip want 3 arguments, updateip 4."""
        done = self.runScript("takeip", "eth0", "10.77.0.50")
        self.assertEqual(done.returncode, 1)
        self.assertIn("must supply interface, IP and maskbits", done.stdout)
        done = self.runScript("updateip", "eth0", "10.77.0.50", "24")
        self.assertEqual(done.returncode, 1)

    def test_addressesLeftAlone(self) -> None:
        """By default (and always in test mode) the script never changes
        the host's addresses."""
        manage = {"CTDB_INTERFACE_MANAGE_ADDRESSES": "yes", "CTDB_TEST_MODE": "yes"}
        for extra in ({}, manage):
            done = self.runScript("takeip", "eth0", "10.77.0.50", "24", **extra)
            self.assertEqual(done.returncode, 0, done.stdout)
            self.assertEqual(self.hostAddresses()["eth0"], [])

    def test_takeReleaseUpdate(self) -> None:
        """With CTDB_INTERFACE_MANAGE_ADDRESSES=yes: takeip puts the address
        on, updateip moves it to the other interface, releaseip takes it
        off; init and shutdown drop every public address of the file."""
        self.base.write("script.options", "CTDB_INTERFACE_MANAGE_ADDRESSES=yes\n")
        done = self.runScript("takeip", "eth0", "10.77.0.51", "24")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(self.hostAddresses()["eth0"], ["10.77.0.51/24"])
        done = self.runScript("updateip", "eth0", "eth1", "10.77.0.51", "24")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        hosts = self.hostAddresses()
        self.assertEqual((hosts["eth0"], hosts["eth1"]), ([], ["10.77.0.51/24"]))
        done = self.runScript("updateip", "eth0", "eth1", "10.77.0.51", "24")
        self.assertIn('Redundant "updateip"', done.stdout)
        done = self.runScript("releaseip", "eth1", "10.77.0.51", "24")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(self.hostAddresses()["eth1"], [])
        done = self.runScript("releaseip", "eth1", "10.77.0.51", "24")
        self.assertEqual(done.returncode, 0)
        self.assertIn("nothing to release", done.stdout)
        for event in ("init", "shutdown"):
            self.lab.addAddress(self.ns, "eth0", "10.77.0.50/24")
            self.lab.addAddress(self.ns, "eth1", "10.77.0.51/24")
            self.lab.addAddress(self.ns, "eth1", "10.77.0.99/24")
            done = self.runScript(event)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            hosts = self.hostAddresses()
            self.assertEqual((hosts["eth0"], hosts["eth1"]), ([], ["10.77.0.99/24"]))
            self.lab.ip("addr", "flush", "dev", "eth1", namespace=self.ns)

    def test_releaseResetsConnections(self) -> None:
        """releaseip resets the established TCP connections to the address
        before taking it off: a client elsewhere sees its connection reset
        at once."""
        self.base.write("script.options", "CTDB_INTERFACE_MANAGE_ADDRESSES=yes\n")
        # init sets arp_filter: eth1, on the same network, does not answer
        # ARP for the address on eth0, so the client's segments come in on
        # eth0, where the reset listens
        for args in (("init",), ("takeip", "eth0", "10.77.0.51", "24")):
            done = self.runScript(*args)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        arp = self.lab.run(
            self.ns, ["cat", "/proc/sys/net/ipv4/conf/all/arp_filter"]
        ).stdout
        self.assertEqual(arp.strip(), "1")
        client = self.lab.addNamespace()
        self.lab.connect(client, self.bridge, "eth0")
        self.lab.addAddress(client, "eth0", "10.77.0.10/24")
        server = LineReader(self.lab.spawn(self.ns, pythonArgv(SERVER)))
        self.assertEqual(server.readLine(), "ready")
        peer = LineReader(self.lab.spawn(client, pythonArgv(CLIENT)))
        self.assertEqual(peer.readLine(), "connected")
        self.assertEqual(server.readLine(), "accepted")
        done = self.runScript("releaseip", "eth0", "10.77.0.51", "24")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn(
            "Killed 1/1 TCP connections to released IP 10.77.0.51", done.stdout
        )
        self.assertEqual(peer.readLine(10), "reset")
        self.assertEqual(self.hostAddresses()["eth0"], [])

    def test_takeipFails(self) -> None:
        """takeip on an interface that does not exist fails."""
        self.base.write("script.options", "CTDB_INTERFACE_MANAGE_ADDRESSES=yes\n")
        done = self.runScript("takeip", "eth9", "10.77.0.51", "24")
        self.assertEqual(done.returncode, 1)
        self.assertIn("Failed to add 10.77.0.51/24 on dev eth9", done.stdout)

    def node(self) -> CTDBNode:
        """A node of ours (on the real reactor) serving the client socket
        of this base, with the public addresses of the file."""
        node = buildNode(
            NodeConfig(
                nodeMap=parseNodes("127.0.0.1\n"),
                pnn=0,
                socketPath=self.base.socket,
                memoryStores=True,
                withRecovery=False,
                publicAddresses=[
                    PublicAddress("10.77.0.50", 24, ("eth0",)),
                    PublicAddress("10.77.0.60", 24, ("eth2",)),
                ],
                addressSystem=FakeAddressSystem(("eth0", "eth2")),
                # the links are the scripts' to report, as in ctdbd: a node
                # that reads them itself (its fake system says eth2 is up)
                # would undo the script's report at its next address check
                addressesByScripts=True,
            ),
            reactor=REACTOR,
            transport=FakeNodeTransport(0),
        )
        node.startService()
        self.addCleanup(node.stopService)
        return node

    async def test_linkStatesToNode(self) -> None:
        """The monitor event tells the node the link state of each
        interface it checked, those of the file and those the node
        reports (eth2, which does not exist here: down)."""
        node = self.node()
        self.lab.setLink(self.bridge.namespace, self.peer("eth1"), False)
        argv = self.lab.command(self.ns, self.base.argv(LINK, "monitor"))
        out, err, code = await utils.getProcessOutputAndValue(
            argv[0], argv[1:], env=os.environ, reactor=REACTOR
        )
        self.assertEqual(code, 1, out + err)
        self.assertIn(b"ERROR: Monitored interface eth2 does not exist", out)
        # the node's own address check, as it runs every RecoverInterval:
        # it must not undo what the script reported
        node.takeover.checkLocalIPs()
        table = node.takeover.table
        states = {
            name: iface.linkUp
            for name in ("eth0", "eth1", "eth2")
            if (iface := table.findIface(name)) is not None
        }
        self.assertEqual(states, {"eth0": True, "eth2": False})
