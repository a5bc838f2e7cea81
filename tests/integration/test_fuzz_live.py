# -*- test-case-name: tests.integration.test_fuzz_live -*-
"""
Abuse a live cluster: garbage, truncated, oversized and lying packets, bad
magic, unknown operations and unknown or malformed controls, on the client
unix socket and on the node TCP port.  After each abuse the daemon must still
run and answer, other clients must still work, and peers must stay (or get
back) connected within a bounded time.  Everything is bounded: a few hundred
cases, each with short socket timeouts.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import struct
import time

from twisted.trial.unittest import SynchronousTestCase

from ctdb.cluster import LocalCluster, syncControl
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control

from ._clusters import makeCluster

O = P.Operation

#: Controls that take no input or whose success would change the cluster
#: (shut down, stop, ban, freeze, recover, attach...).  The malformed-data
#: sweep leaves them out so that a *valid* reading of junk cannot take the
#: cluster down; everything else gets junk and must answer.
DESTRUCTIVE = frozenset(
    (
        Control.SHUTDOWN,
        Control.STOP_NODE,
        Control.CONTINUE_NODE,
        Control.DISABLE_NODE,
        Control.ENABLE_NODE,
        Control.FREEZE,
        Control.THAW,
        Control.DB_FREEZE,
        Control.DB_THAW,
        Control.START_RECOVERY,
        Control.END_RECOVERY,
        Control.RELOAD_NODES_FILE,
        Control.STATISTICS_RESET,
        Control.IPREALLOCATED,
        Control.RELOAD_PUBLIC_IPS,
        Control.DB_ATTACH,
        Control.DB_ATTACH_PERSISTENT,
        Control.DB_ATTACH_REPLICATED,
        Control.RECD_PING,
        Control.RECD_RECLOCK_LATENCY,
        Control.SET_RECMODE,
        Control.TRAVERSE_KILL,
        Control.SET_BAN_STATE,
    )
)


def req(
    opcode: int,
    data: bytes = b"",
    reqid: int = 1,
    flags: int = 0,
    destnode: int = P.CTDB_CURRENT_NODE,
    srcnode: int = 0,
) -> P.ReqControl:
    return P.ReqControl(
        P.Header(O.REQ_CONTROL, destnode, srcnode, reqid), opcode, 0, 0, flags, data
    )


def header(
    length: int,
    operation: int = O.REQ_CONTROL,
    magic: int = P.CTDB_MAGIC,
    version: int = P.CTDB_PROTOCOL,
) -> bytes:
    return struct.pack("<8I", length, magic, version, 0, operation, 0, 0, 7)


def abuseCases(
    rng: random.Random, count: int, client: bool = True
) -> list[tuple[str, bytes, bool]]:
    """
    (name, bytes, mustDrop): C{mustDrop} cases are ones the daemon must
    answer by closing the connection.  Operations that only nodes may send
    must be dropped on the C{client} socket; on the node port they are valid.
    """
    good = req(Control.PING).encode()
    cases: list[tuple[str, bytes, bool]] = [
        ("zero length", b"\0\0\0\0", True),
        ("length 31", struct.pack("<I", 31) + b"\0" * 27, True),
        ("oversized", header(P.MAX_LENGTH + 8) + b"\0" * 64, True),
        ("length 2**32-1", header(0xFFFFFFFF), True),
        ("bad magic", header(64, magic=0x0BADF00D) + b"\0" * 32, True),
        ("bad version", header(64, version=2) + b"\0" * 32, True),
        ("unknown op 6", header(64, operation=6) + b"\0" * 32, True),
        ("unknown op 99", header(64, operation=99) + b"\0" * 32, True),
        ("header only control", header(32), True),
        (
            "short body: datalen past end",
            good[:56] + struct.pack("<I", 1000) + good[60:],
            True,
        ),
        ("good then bad magic", good + header(64, magic=0) + b"\0" * 32, True),
        ("truncated control", good[:40], False),
        ("just a length", struct.pack("<I", 64), False),
    ]
    for op in (
        O.REPLY_CALL,
        O.REQ_DMASTER,
        O.REPLY_DMASTER,
        O.REPLY_ERROR,
        O.REPLY_CONTROL,
        O.REQ_KEEPALIVE,
    ):
        cases.append(
            (
                f"node-only operation {op.name}",
                header(64, operation=op) + b"\0" * 32,
                client,
            )
        )
    while len(cases) < count:
        kind = rng.randrange(4)
        if kind == 0:
            blob = rng.randbytes(rng.randrange(1, 200))
            cases.append(("random bytes", blob, False))
        elif kind == 1:
            mutated = bytearray(
                req(rng.randrange(200), rng.randbytes(rng.randrange(12))).encode()
            )
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            cases.append(("mutated control", bytes(mutated), False))
        elif kind == 2:
            raw = req(Control.PING, rng.randbytes(rng.randrange(40))).encode()
            cases.append(("truncated", raw[: rng.randrange(len(raw))], False))
        else:
            body = rng.randbytes(rng.randrange(0, 64))
            raw = header(P.HEADER_SIZE + len(body), operation=O.REQ_CONTROL) + body
            cases.append(("control header, random body", raw, False))
    return cases


def recvAll(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Read until EOF or C{timeout}; (data, closedByPeer)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def readReplies(
    sock: socket.socket, want: set[int], timeout: float
) -> dict[int, P.ReplyControl]:
    """Collect REPLY_CONTROLs for the reqids in C{want} (bounded by C{timeout})."""
    got: dict[int, P.ReplyControl] = {}
    buf = b""
    deadline = time.monotonic() + timeout
    while want - set(got) and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 4:
            (length,) = struct.unpack_from("<I", buf)
            if len(buf) < length:
                break
            pkt = P.decodePacket(buf[:length])
            buf = buf[length:]
            if isinstance(pkt, P.ReplyControl):
                got[pkt.header.reqid] = pkt
    return got


def assertHealthy(cluster: LocalCluster, pnn: int = 0) -> None:
    """The daemon runs and answers PING locally and via itself to a peer."""
    assert cluster.pid(pnn) is not None, f"node {pnn} died:\n{cluster._tail(pnn)}"
    reply = syncControl(cluster.socketPath(pnn), Control.PING, timeout=5)
    assert reply.status >= 1  # the number of clients, counting this one


def assertPeersConnected(cluster: LocalCluster, timeout: float = 15.0) -> None:
    """Every node sees every other connected again within C{timeout}."""
    cluster.waitConnected(list(range(cluster.size)), timeout=timeout)


def unixSocket(cluster: LocalCluster, pnn: int) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(cluster.socketPath(pnn))
    return s


def _nodeSocket(source: str, target: str, port: int = P.CTDB_PORT) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Let connect() pick the source port knowing the destination, so that a
    # quick series of connections never reuses a 4-tuple still in TIME_WAIT
    # at the daemon's end (which answers the SYN with a reset).
    s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24), 1)
    s.settimeout(5)
    s.bind((source, 0))
    try:
        s.connect((target, port))
    except (ConnectionResetError, ConnectionAbortedError):
        # Seen rarely on loopback right after the daemon aborted the previous
        # case's connection; one fresh socket is enough.
        s.close()
        time.sleep(0.2)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(
            socket.IPPROTO_IP, getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24), 1
        )
        s.settimeout(5)
        s.bind((source, 0))
        s.connect((target, port))
    return s


class LiveAbuseTests(SynchronousTestCase):
    """Each test abuses a fresh, started 3-node cluster of our daemons."""

    def setUp(self) -> None:
        # Socket defaults stay bounded even if a test forgets a timeout.
        socket.setdefaulttimeout(10)
        self.addCleanup(socket.setdefaulttimeout, None)
        self.cluster = makeCluster(self, 3)

    def test_clientSocketAbuse(self) -> None:
        """
        ~150 bad streams on the client socket: the broken ones are disconnected,
        the daemon survives each, and a client connected all along still works.
        """
        cluster = self.cluster
        rng = random.Random(4379)
        bystander = unixSocket(cluster, 0)
        reqid = 100
        for i, (name, data, mustDrop) in enumerate(abuseCases(rng, 150)):
            with unixSocket(cluster, 0) as s:
                try:
                    s.sendall(data)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                else:
                    _, closed = recvAll(s, 1.0 if mustDrop else 0.02)
                if mustDrop:
                    self.assertTrue(closed, f"case {i} ({name}) was not disconnected")
            if mustDrop or i % 10 == 0:
                assertHealthy(cluster)
                reqid += 1
                bystander.sendall(req(Control.PING, reqid=reqid).encode())
                replies = readReplies(bystander, {reqid}, 5)
                self.assertIn(
                    reqid, replies, f"bystander got no answer after case {i} ({name})"
                )
        bystander.close()
        assertHealthy(cluster)
        reply = syncControl(cluster.socketPath(0), Control.PING, destnode=1, timeout=5)
        self.assertGreaterEqual(reply.status, 0)
        assertPeersConnected(cluster)

    def test_unknownAndMalformedControls(self) -> None:
        """
        Unknown opcodes, obsolete opcodes and known controls with junk payloads
        all get exactly one reply (unknown ones status -1), locally and when
        forwarded to another node; nothing hangs and the daemon survives.
        """
        cluster = self.cluster
        unknown = [*range(159, 260), 0x7FFFFFFF, 0xFFFFFFFF]
        obsolete = sorted(C.OBSOLETE_CONTROLS)
        junkTargets = [c for c in Control if c not in DESTRUCTIVE]
        with unixSocket(cluster, 0) as s:
            for destnode in (P.CTDB_CURRENT_NODE, 1):
                sent: dict[int, tuple[int, bytes]] = {}
                reqid = 1000 if destnode == 1 else 1
                stream = []
                for opcode in unknown + obsolete:
                    sent[reqid] = (opcode, b"")
                    stream.append(req(opcode, reqid=reqid, destnode=destnode).encode())
                    reqid += 1
                for opcode in junkTargets:
                    for junk in (
                        b"\x01",
                        b"\xff\xff\xff",
                        struct.pack("<I", 0xFFFFFFFF),
                    ):
                        sent[reqid] = (opcode, junk)
                        stream.append(
                            req(opcode, junk, reqid=reqid, destnode=destnode).encode()
                        )
                        reqid += 1
                s.sendall(b"".join(stream))
                replies = readReplies(s, set(sent), 15)
                missing = sorted(
                    (C.controlName(sent[r][0]), sent[r][1])
                    for r in set(sent) - set(replies)
                )
                self.assertEqual(
                    missing, [], f"no reply (destnode {destnode:#x}) to {missing}"
                )
                for r, (opcode, _) in sent.items():
                    if opcode in unknown or opcode in C.OBSOLETE_CONTROLS:
                        self.assertEqual(
                            replies[r].status, -1, (C.controlName(opcode), replies[r])
                        )
                        self.assertEqual(replies[r].data, b"")
            # NOREPLY on an unknown control: no answer, and the connection still works.
            s.sendall(
                req(9999, reqid=5000, flags=P.CTDB_CTRL_FLAG_NOREPLY).encode()
                + req(Control.PING, reqid=5001).encode()
            )
            replies = readReplies(s, {5000, 5001}, 3)
            self.assertEqual(set(replies), {5001})
        assertHealthy(cluster, 0)
        assertHealthy(cluster, 1)
        assertPeersConnected(cluster)

    def test_nodePortAbuse(self) -> None:
        """
        Bad streams on node 0's TCP port from node 2's address: each is dropped,
        node 0 survives, and the real node 2 is connected again afterwards.
        Well-formed packets from the impostor (an unknown control, a message)
        are handled without harm.
        """
        cluster = self.cluster
        rng = random.Random(2)
        source, target = cluster.address(2), cluster.address(0)
        cases = abuseCases(rng, 40, client=False)
        # Node links also insist on 8-byte alignment.
        cases.append(("misaligned", header(36) + b"\0" * 4, True))
        for i, (name, data, mustDrop) in enumerate(cases):
            with _nodeSocket(source, target) as s:
                try:
                    s.sendall(data)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                else:
                    _, closed = recvAll(s, 1.0 if mustDrop else 0.02)
                if mustDrop:
                    self.assertTrue(closed, f"case {i} ({name}) was not disconnected")
            if mustDrop or i % 5 == 0:
                assertHealthy(cluster, 0)
        # Valid packets from the impostor: an unknown control addressed to node 0,
        # a message to an unregistered srvid, a tunnel nobody registered.
        with _nodeSocket(source, target) as s:
            s.sendall(
                req(9999, reqid=77, destnode=0, srcnode=2).encode()
                + P.ReqMessage(P.Header(O.REQ_MESSAGE, 0, 2), 0x1234, b"hi").encode()
                + P.ReqTunnel(P.Header(O.REQ_TUNNEL, 0, 2), 0x55, 1, b"t").encode()
            )
            time.sleep(0.2)
            assertHealthy(cluster, 0)
        assertPeersConnected(cluster, timeout=20)
        assertHealthy(cluster, 2)

    def test_unknownSourceRefused(self) -> None:
        """A connection to the node port from an address not in the nodes file is refused."""
        cluster = self.cluster
        stranger = str(ipaddress.ip_address(cluster.address(0)) + 40)
        with _nodeSocket(stranger, cluster.address(0)) as s:
            try:
                s.sendall(req(Control.PING, destnode=0).encode())
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            else:
                data, closed = recvAll(s, 3)
                self.assertEqual(data, b"")
            self.assertTrue(closed)
        assertHealthy(cluster, 0)
        assertPeersConnected(cluster, timeout=5)

    def test_impostorUnknownControlReply(self) -> None:
        """
        With node 2 stopped, play node 2 on the wire: node 0 answers an unknown
        control from us with status -1 on its link to "node 2", and answers a
        junk GET_TUNABLE with status -1 too; then node 0 is still healthy.
        """
        cluster = self.cluster
        cluster.stop([2])
        me, node0 = cluster.address(2), cluster.address(0)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((me, P.CTDB_PORT))
        listener.listen(4)
        listener.settimeout(10)
        try:
            out = _nodeSocket(me, node0)
            # Node 0's retrying link to "node 2" (node 1 dials us too: skip it).
            others = []
            for _ in range(10):
                incoming, (peer, _port) = listener.accept()
                if peer == node0:
                    break
                others.append(incoming)
            else:
                self.fail("node 0 never connected to the impostor")
            for other in others:
                other.close()
            with out, incoming:
                # Replies go out only once node 0 counts "node 2" as connected.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    nodemap = C.decodeNodeMap(
                        syncControl(cluster.socketPath(0), Control.GET_NODEMAP).data
                    )
                    if not nodemap[2].flags & C.NODE_FLAGS_DISCONNECTED:
                        break
                    time.sleep(0.05)
                else:
                    self.fail("node 0 never saw the impostor connected")
                out.sendall(
                    req(9999, reqid=4242, destnode=0, srcnode=2).encode()
                    + req(
                        Control.GET_TUNABLE,
                        b"\x05\0\0\0ab",
                        reqid=4243,
                        destnode=0,
                        srcnode=2,
                    ).encode()
                )
                replies = readReplies(incoming, {4242, 4243}, 10)
                self.assertEqual(set(replies), {4242, 4243})
                self.assertEqual(replies[4242].status, -1)
                self.assertEqual(replies[4242].data, b"")
                self.assertEqual(replies[4243].status, -1)
                self.assertEqual(replies[4242].header.destnode, 2)
                self.assertEqual(replies[4242].header.srcnode, 0)
                assertHealthy(cluster, 0)
        finally:
            listener.close()
        assertHealthy(cluster, 0)
        assertHealthy(cluster, 1)
