# -*- test-case-name: tests.integration.test_failover_netns -*-
"""
Public-IP failover with real networking: a 3-node cluster of our daemons,
each in its own network namespace with a public interface on a shared
bridge, and a client in a namespace of its own
(L{tests.support.netnscluster}).

What a client of a public address sees when the node serving it dies,
for IPv4 and IPv6: the address comes up on exactly one survivor,
gratuitous ARPs (unsolicited neighbour advertisements) carry the
survivor's MAC address, the client's old connection is reset at once by
the survivor's tickle (its stack answers the tickle ACK with its own ACK,
which the survivor's kernel, holding no socket for it, answers with a
reset), and a new connection to the same address works.  And a disabled
node gives its addresses away without any address ever being on two
nodes.  Samba's ctdbd 4.17 with its 10.interface script, in the same
namespaces, passes the same checks of a node's death (the reference).

Needs root (network namespaces); fails, does not skip, without it.
Every wait is a bounded poll of a condition.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.integration._clusters import tempDir
from tests.support.netns import NetworkLab
from tests.support.netnscluster import (
    SAMBA_TOOL,
    SERVICE_PORT,
    NetnsClient,
    NetnsCluster,
    NetnsCtdbdCluster,
    NetnsNetwork,
    announcementFor,
    clientAddressFor,
    parseTickles,
)

#: seconds a test may wait for any one condition
WAIT = 20.0


class _FailoverCase(SynchronousTestCase):
    """A cluster in namespaces for each test, and the checks."""

    #: public IPv6 addresses as well as IPv4 ones
    ipv6 = True
    #: seconds the cluster may take to start
    startTimeout = 40.0

    def makeCluster(self, network: NetnsNetwork, directory: str) -> Any:
        return NetnsCluster(network, directory)

    def setUp(self) -> None:
        self.lab = NetworkLab.forTest(self, prefix="txfo")
        self.network = NetnsNetwork(self.lab, nodes=3, ipv6=self.ipv6)
        self.cluster = self.makeCluster(self.network, tempDir(self, "txfo-"))
        self.addCleanup(self.cluster.stop)
        self.cluster.start(timeout=self.startTimeout)

    # -- helpers ---------------------------------------------------------------

    def assertHostedOnce(self, alive: list[int]) -> dict[str, int]:
        """Every public address is up on exactly one of C{alive} (C{ip addr}
        in each namespace) and C{ctdb ip all} through each of them agrees;
        returns address -> node."""
        owners = self.cluster.waitHosted(WAIT)
        held = self.network.holders()
        for address in self.network.publicAddresses:
            self.assertEqual(len(held[address]), 1, held)
            self.assertIn(held[address][0], alive, held)
        for k in alive:
            self.assertEqual(self.cluster.ipAll(k), owners, f"ctdb ip all via {k}")
        return owners

    def waitTickle(
        self, pnn: int, conn: tuple[tuple[str, int], tuple[str, int]]
    ) -> None:
        """Until C{ctdb gettickles} through node C{pnn} lists C{conn}."""
        deadline = time.monotonic() + WAIT
        out = ""
        while time.monotonic() < deadline:
            done = self.cluster.tool(pnn, "gettickles", conn[1][0])
            out = done.stdout + done.stderr
            if conn in parseTickles(done.stdout):
                return
            time.sleep(0.05)
        self.fail(f"node {pnn} does not list {conn} in its tickles:\n{out}")

    def ownerDies(self, ipv6: bool) -> None:
        """SIGKILL of the node serving a client's connection, and what the
        client sees (see L{FailoverNetnsTests.test_ownerDies})."""
        owners = self.assertHostedOnce([0, 1, 2])
        leader = int(self.cluster.tool(0, "leader").stdout.strip())
        address = min(
            a for a, k in owners.items() if k != leader and (":" in a) == ipv6
        )
        owner = owners[address]
        survivors = [k for k in range(3) if k != owner]
        me = clientAddressFor(address)

        client: NetnsClient = self.cluster.client()
        port = client.connect("old", address)
        self.assertEqual(client.send("old", "hello"), "echo hello")
        # the service registered the connection with its node, as smbd
        # does (TCP_CLIENT), and the node told every other node
        self.assertEqual(self.cluster.accepted(owner, (me, port)), "0")
        conn = ((me, port), (address, SERVICE_PORT))
        for k in range(3):
            self.waitTickle(k, conn)

        capture = self.lab.capture(self.network.client, "eth0")
        killed = self.cluster.crash(owner)

        event = client.expect(lambda w: w[1:2] == ["old"], WAIT)
        self.assertIsNotNone(event, "the old connection saw nothing")
        assert event is not None
        self.assertEqual(event[0], "reset", event)
        resetAfter = float(event[-1]) - killed
        self.assertLess(resetAfter, 10.0)

        owners = self.assertHostedOnce(survivors)
        newOwner = owners[address]
        self.assertIn(newOwner, survivors)
        mac = self.network.publicMac(newOwner)
        frame = capture.waitFor(lambda f: announcementFor(f, address) is not None, WAIT)
        self.assertIsNotNone(frame, f"no announcement of {address}")
        assert frame is not None
        self.assertEqual(announcementFor(frame, address), mac)
        capture.stop()

        port = client.connect("new", address)
        self.assertEqual(client.send("new", "again"), "echo again")
        self.assertEqual(self.cluster.accepted(newOwner, (me, port)), "0")


class FailoverNetnsTests(_FailoverCase):
    """A public address's clients, when its node dies or is disabled: our
    daemons."""

    def test_ownerDies(self) -> None:
        """SIGKILL of the node serving a client's connection to an IPv4
        public address: the address comes up on exactly one survivor
        (kernel and C{ctdb ip all} agree), the client namespace sees
        gratuitous ARPs for it carrying the survivor's MAC, the client's
        old connection is reset within seconds (the tickle, not a TCP
        timeout), and a new connection to the same address is served.
        The address is one a node other than the leader holds (a leader's
        death adds an election; the benchmark measures both)."""
        self.ownerDies(ipv6=False)

    def test_ownerDiesIPv6(self) -> None:
        """The same for an IPv6 public address: an unsolicited neighbour
        advertisement carries the survivor's MAC, and the tickle and the
        reset travel over IPv6."""
        self.ownerDies(ipv6=True)

    def test_disableMovesAddresses(self) -> None:
        """C{ctdb disable} of a node moves its addresses to the others and
        C{ctdb enable} lets it take some again; polled all along, no
        address is ever on the public interfaces of two nodes."""
        owners = self.assertHostedOnce([0, 1, 2])
        node = owners[self.network.publicAddresses[0]]
        others = [k for k in range(3) if k != node]

        def watch(args: list[str], done: Callable[[], bool]) -> None:
            """Run the tool with C{args} while polling the kernels' view,
            until C{done()} is true."""
            env = {k: v for k, v in os.environ.items() if not k.startswith("CTDB_")}
            tool = subprocess.Popen(
                [SAMBA_TOOL, *args],
                env={**env, **self.cluster.env(node)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            self.addCleanup(tool.wait)
            deadline = time.monotonic() + WAIT
            polls = 0
            while True:
                polls += 1
                twice = self.network.overlaps()
                self.assertEqual(twice, {}, f"{args}: an address on two nodes")
                if tool.poll() is not None and done():
                    break
                self.assertLess(
                    time.monotonic(), deadline, f"{args}: {self.network.holders()}"
                )
            out = tool.communicate()[0]
            self.assertEqual(tool.returncode, 0, out)
            self.assertGreater(polls, 1)

        def moved() -> bool:
            return not self.network.addressesOf(node) and not (
                self.cluster.hostingProblem()
            )

        watch(["disable"], moved)
        owners = self.assertHostedOnce(others)
        self.assertNotIn(node, owners.values())

        def back() -> bool:
            return bool(self.network.addressesOf(node)) and not (
                self.cluster.hostingProblem()
            )

        watch(["enable"], back)
        self.assertHostedOnce([0, 1, 2])


class RealCtdbdFailoverTests(_FailoverCase):
    """
    The reference: Samba's ctdbd 4.17 as on a real host (not in test mode,
    ctdb-eventd with the stock 10.interface script adding the addresses),
    in the same namespaces, held to the same checks.  Its start takes
    ~25 s (elections, first recovery, first monitor events).
    """

    ipv6 = False
    startTimeout = 60.0

    def makeCluster(self, network: NetnsNetwork, directory: str) -> Any:
        return NetnsCtdbdCluster(network, directory)

    def test_ownerDies(self) -> None:
        """SIGKILL of the ctdbd serving a client's connection: one survivor
        hosts the address, its gratuitous ARPs carry its MAC, the old
        connection is reset by its tickle, a new one is served."""
        self.ownerDies(ipv6=False)
