# -*- test-case-name: tests.integration.test_wire -*-
"""
tshark as the judge of our node-to-node wire format.

A 3-node cluster runs with KeepaliveInterval=1 while tshark captures its
port-4379 traffic on loopback (filtered to the cluster's own addresses, so
nothing else on the machine gets in).  Samba's tool and bare clients drive
controls and messages through it; then tshark's CTDB dissector (the same one
that decodes real ctdbd 4.17 without complaint) must decode every segment,
find the operations and control opcodes we sent with Samba's numbers, and
flag nothing as malformed.

tshark's CTDB dissector is a heuristic that decodes only the first CTDB
packet of a TCP segment.  Real ctdbd writes each packet separately
(TCP_NODELAY), so its segments nearly always hold one packet; Twisted
coalesces the writes of one reactor turn (e.g. a keepalive and a leader
broadcast) into one segment.  So the test also rewrites the capture with one
packet per segment (following the streams' length words, which must frame
them exactly) and has tshark judge every packet in that copy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from typing import Any

from ctdb.cluster import LocalCluster
from ctdb.protocols import controls as C
from ctdb.protocols import packet as P
from tests.integration._cases import IntegrationCase
from tests.integration.test_samba_tool import RawClient

TSHARK = shutil.which("tshark")

REQ_MESSAGE, REQ_CONTROL, REPLY_CONTROL, REQ_KEEPALIVE = 5, 7, 8, 9
PING, STATISTICS, GET_TUNABLE, LIST_TUNABLES = 3, 1, 49, 50
SRVID = 0xAE00000000C0FFEE
#: Malformed packets and expert infos of severity "error".
MALFORMED = "_ws.malformed || _ws.expert.severity >= 0x00800000"


class Capture:
    """tshark capturing to a file, started and stopped by its PID."""

    def __init__(self, path: str, captureFilter: str) -> None:
        assert TSHARK is not None, "tshark is not installed (make install)"
        self.path = path
        self.errPath = path + ".stderr"
        with open(self.errPath, "wb") as err:
            self.proc = subprocess.Popen(
                [TSHARK, "-i", "lo", "-f", captureFilter, "-w", path],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        self._waitCapturing(15.0)
        self._waitLive(10.0)

    def _stderr(self) -> str:
        with open(self.errPath, errors="replace") as f:
            return f.read()

    def _waitCapturing(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Capturing on" in self._stderr():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"tshark did not start capturing:\n{self._stderr()}")

    def _waitLive(self, timeout: float) -> None:
        """
        Until the first packets (keepalives) reach the file: proof that the
        filter is attached, since "Capturing on" may come a moment before.
        """
        initial = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.path) and os.path.getsize(self.path) > initial:
                return
            time.sleep(0.05)
        self.stop()
        raise AssertionError(
            f"tshark captured nothing in {timeout} s:\n{self._stderr()}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # its own session: tshark and the dumpcap it started
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def tshark(*args: str) -> str:
    assert TSHARK is not None
    result = subprocess.run(
        [TSHARK, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def decode(path: str) -> list[dict[str, Any]]:
    """
    One dict per captured frame: time, addresses, ports, TCP payload and the
    CTDB PDUs tshark found in it (field name -> text).
    """
    packets = json.loads(
        tshark(
            "-r", path, "-T", "json", "--no-duplicate-keys", "-J", "frame ip tcp ctdb"
        )
    )
    frames = []
    for packet in packets:
        layers = packet["_source"]["layers"]
        ip, tcp = layers["ip"], layers["tcp"]
        ctdb = layers.get("ctdb", [])
        frames.append(
            {
                "number": int(layers["frame"]["frame.number"]),
                "time": float(layers["frame"]["frame.time_epoch"]),
                "src": ip["ip.src"],
                "dst": ip["ip.dst"],
                "sport": int(tcp["tcp.srcport"]),
                "dport": int(tcp["tcp.dstport"]),
                "payload": bytes.fromhex(tcp.get("tcp.payload", "").replace(":", "")),
                "pdus": ctdb if isinstance(ctdb, list) else [ctdb],
            }
        )
    return frames


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def resegment(frames: list[dict[str, Any]], path: str) -> int:
    """
    Write the captured streams to a new pcap with one CTDB packet per TCP
    segment, as real ctdbd (one write per packet, TCP_NODELAY) normally
    sends them.  Twisted coalesces the writes of one reactor turn into one
    segment, and tshark's heuristic CTDB dissector decodes only the first
    packet of a segment; this lets tshark judge every packet.  The split
    follows each stream's length words, which must frame the stream exactly.
    Returns the number of packets written.
    """
    streams: dict[tuple[str, int, str, int], tuple[int, bytes]] = {}
    records = []
    for frame in frames:
        if not frame["payload"]:
            continue
        key = (frame["src"], frame["sport"], frame["dst"], frame["dport"])
        seq, buf = streams.get(key, (1000, b""))
        buf += frame["payload"]
        while len(buf) >= 4:
            (length,) = struct.unpack_from("<I", buf)
            assert length >= P.HEADER_SIZE and length % 8 == 0, (
                frame["number"],
                length,
            )
            if len(buf) < length:
                break
            pdu, buf = buf[:length], buf[length:]
            magic, version = struct.unpack_from("<II", pdu, 4)
            assert (magic, version) == (P.CTDB_MAGIC, 1), frame["number"]
            tcp = struct.pack(
                "!HHIIBBHHH",
                frame["sport"],
                frame["dport"],
                seq,
                1,
                5 << 4,
                0x18,
                65535,
                0,
                0,
            )
            pseudo = socket.inet_aton(frame["src"]) + socket.inet_aton(frame["dst"])
            pseudo += struct.pack("!BBH", 0, 6, len(tcp) + len(pdu))
            tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp + pdu)) + tcp[18:]
            ip = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(tcp) + len(pdu),
                0,
                0x4000,
                64,
                6,
                0,
                socket.inet_aton(frame["src"]),
                socket.inet_aton(frame["dst"]),
            )
            ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
            records.append((frame["time"], ip + tcp + pdu))
            seq += length
        streams[key] = (seq, buf)
    for key, (_, rest) in streams.items():
        assert rest == b"", f"stream {key} ends inside a packet"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101))  # RAW IP
        for when, data in records:
            sec, usec = int(when), round((when - int(when)) * 1e6)
            f.write(struct.pack("<IIII", sec, min(usec, 999999), len(data), len(data)))
            f.write(data)
    return len(records)


class WireTests(IntegrationCase):
    """Our nodes' traffic, judged by tshark."""

    def capturedCluster(self) -> tuple[LocalCluster, Capture]:
        """
        A started 3-node cluster with KeepaliveInterval=1, and tshark
        capturing its node traffic (stopped after the test, before the
        cluster).
        """
        cluster = self.makeCluster(3, tunables={"KeepaliveInterval": 1})
        hosts = " or ".join(f"host {cluster.address(k)}" for k in range(3))
        directory = self.mktempDirectory()
        capture = Capture(
            os.path.join(directory, "nodes.pcapng"),
            f"tcp port {P.CTDB_PORT} and ({hosts})",
        )
        self.addCleanup(capture.stop)
        return cluster, capture

    def test_nodeTrafficDecodesAsCtdb(self) -> None:
        """
        Controls (PING, LIST/GET_TUNABLE, STATISTICS), messages and keepalives
        between our nodes decode in tshark as CTDB with Samba's numbers, every
        payload byte belongs to a CTDB PDU, replies match their requests, and no
        packet is malformed.
        """
        cluster, capture = self.capturedCluster()
        start = time.monotonic()
        for via, args in (
            (0, ("ping", "-n", "1")),
            (1, ("ping", "-n", "2")),
            (0, ("getvar", "KeepaliveLimit", "-n", "2")),
            (2, ("statistics", "-n", "1")),
        ):
            result = self.ctdbTool(cluster, via, *args)
            self.assertEqual(result.returncode, 0, result.stderr)

        listener = RawClient(cluster.socketPath(1))
        sender = RawClient(cluster.socketPath(0))
        try:
            self.assertEqual(
                listener.control(C.Control.REGISTER_SRVID, srvid=SRVID).status, 0
            )
            for destnode, payload in (
                (1, b"to node 1"),
                (P.CTDB_BROADCAST_CONNECTED, b"to all"),
            ):
                header = P.Header(P.Operation.REQ_MESSAGE, destnode, 0, 0)
                sender.sock.sendall(P.ReqMessage(header, SRVID, payload).encode())
                msg = listener.readPacket()
                assert isinstance(msg, P.ReqMessage)
                self.assertEqual((msg.srvid, msg.data), (SRVID, payload))
        finally:
            listener.close()
            sender.close()
        # at least two keepalive rounds (KeepaliveInterval=1)
        time.sleep(max(0.0, 2.6 - (time.monotonic() - start)))
        capture.stop()

        pnnOf = {cluster.address(k): k for k in range(3)}
        original = decode(capture.path)
        self.assertTrue(original, "nothing captured")
        for frame in original:
            self.assertIn(P.CTDB_PORT, (frame["sport"], frame["dport"]), frame)
            self.assertIn(frame["src"], pnnOf, frame)
            self.assertIn(frame["dst"], pnnOf, frame)
            if frame["payload"]:
                # tshark recognises every segment as CTDB (it decodes only the
                # first packet of a segment; resegment() covers the rest)
                self.assertTrue(
                    frame["pdus"] and "ctdb.opcode" in frame["pdus"][0], frame["number"]
                )
        bad = tshark("-r", capture.path, "-Y", MALFORMED)
        self.assertEqual(bad, "", bad)

        split = capture.path + ".split.pcap"
        count = resegment(original, split)
        # Like ctdbd, the daemon gives each packet its own send(), so in this
        # light traffic tshark sees every packet in the raw capture already.
        withPayload = [f for f in original if f["payload"]]
        self.assertEqual(count, len(withPayload), (count, len(withPayload)))
        frames = decode(split)
        self.assertEqual(len(frames), count)
        pdus = []
        for frame in frames:
            self.assertTrue(
                len(frame["pdus"]) == 1 and "ctdb.opcode" in frame["pdus"][0],
                frame["number"],
            )
            [pdu] = frame["pdus"]
            self.assertEqual(
                (pdu["ctdb.magic"], pdu["ctdb.version"]), ("0x43544442", "1"), pdu
            )
            self.assertEqual(int(pdu["ctdb.len"]), len(frame["payload"]))
            # the packet travels between the nodes its header names
            self.assertEqual(
                int(pdu["ctdb.src"]), pnnOf[frame["src"]], (frame["number"], pdu)
            )
            self.assertEqual(
                int(pdu["ctdb.dst"]), pnnOf[frame["dst"]], (frame["number"], pdu)
            )
            pdu["raw"] = frame["payload"]
            pdus.append((frame["number"], pdu))
        bad = tshark("-r", split, "-Y", MALFORMED)
        self.assertEqual(bad, "", bad)

        def seen(
            opcode: int, ctrl: int | None, src: int, dst: int
        ) -> list[dict[str, Any]]:
            return [
                pdu
                for _, pdu in pdus
                if int(pdu["ctdb.opcode"]) == opcode
                and int(pdu["ctdb.src"]) == src
                and int(pdu["ctdb.dst"]) == dst
                and (ctrl is None or int(pdu.get("ctdb.ctrl_opcode", -1)) == ctrl)
            ]

        for ctrl, a, b in (
            (PING, 0, 1),
            (PING, 1, 2),
            (LIST_TUNABLES, 0, 2),
            (GET_TUNABLE, 0, 2),
            (STATISTICS, 2, 1),
        ):
            requests = seen(REQ_CONTROL, ctrl, a, b)
            replies = seen(REPLY_CONTROL, ctrl, b, a)
            self.assertEqual(
                (len(requests), len(replies)), (1, 1), (ctrl, a, b, requests, replies)
            )
            self.assertEqual(replies[0]["ctdb.id"], requests[0]["ctdb.id"])
            self.assertEqual(int(replies[0]["ctdb.status"]), 0)
            self.assertEqual(int(replies[0]["ctdb.errorlen"]), 0)
        [getTunable] = seen(REQ_CONTROL, GET_TUNABLE, 0, 2)
        self.assertEqual(
            bytes.fromhex(getTunable["ctdb.data"].replace(":", ""))[4:],
            b"KeepaliveLimit\0",
        )
        [tunable] = seen(REPLY_CONTROL, GET_TUNABLE, 2, 0)
        self.assertEqual(int(tunable["ctdb.datalen"]), 4)
        [stats] = seen(REPLY_CONTROL, STATISTICS, 1, 2)
        self.assertEqual(int(stats["ctdb.datalen"]), 488)

        # tshark shows only the header of REQ_MESSAGE: read the body by hand
        # (u64 srvid, u32 datalen, data; protocol_message.c)
        def messages(src: int, dst: int) -> list[bytes]:
            found = []
            for pdu in seen(REQ_MESSAGE, None, src, dst):
                srvid, datalen = struct.unpack_from("<QI", pdu["raw"], P.HEADER_SIZE)
                self.assertEqual(
                    int(pdu["ctdb.len"]), P.padded(P.HEADER_SIZE + 12 + datalen)
                )
                if srvid == SRVID:
                    found.append(
                        pdu["raw"][P.HEADER_SIZE + 12 : P.HEADER_SIZE + 12 + datalen]
                    )
            return found

        self.assertEqual(messages(0, 1), [b"to node 1", b"to all"])
        self.assertEqual(messages(0, 2), [b"to all"])

        for a in range(3):
            for b in range(3):
                if a != b:
                    keepalives = seen(REQ_KEEPALIVE, None, a, b)
                    self.assertGreaterEqual(len(keepalives), 2, (a, b))
                    self.assertEqual({int(k["ctdb.len"]) for k in keepalives}, {40})
