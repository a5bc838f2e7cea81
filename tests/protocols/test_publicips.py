# -*- test-case-name: tests.protocols.test_publicips -*-
"""The public-IP control payloads: round trips, golden bytes, short input."""

from __future__ import annotations

import struct
import unittest

from ctdb.errors import MalformedPacket
from ctdb.protocols.basictypes import encodeSockAddr
from ctdb.protocols.publicips import (
    AddrInfo,
    Interface,
    PublicIP,
    PublicIPInfo,
    TickleList,
    canonicalAddress,
    decodeInterfaceList,
    decodePublicIPList,
    encodeInterfaceList,
    encodePublicIPList,
)


class PublicIPTests(unittest.TestCase):
    def test_golden(self) -> None:
        raw = PublicIP(2, "10.0.0.5").encode()
        self.assertEqual(len(raw), 32)
        self.assertEqual(raw[:4], b"\x02\0\0\0")
        # sock_addr: family AF_INET (2) host order, port 0, address
        self.assertEqual(raw[4:12], b"\x02\x00\x00\x00\x0a\x00\x00\x05")
        self.assertEqual(raw[12:], b"\0" * 20)

    def test_unknownPnn(self) -> None:
        raw = PublicIP(-1, "10.0.0.5").encode()
        self.assertEqual(raw[:4], b"\xff\xff\xff\xff")
        self.assertEqual(PublicIP.decode(raw).pnn, 0xFFFFFFFF)

    def test_listRoundTrip(self) -> None:
        ips = [PublicIP(0, "10.0.0.1"), PublicIP(1, "fd00::1")]
        raw = encodePublicIPList(ips)
        self.assertEqual(len(raw), 4 + 64)
        self.assertEqual(decodePublicIPList(raw), ips)
        self.assertEqual(decodePublicIPList(struct.pack("<I", 0)), [])

    def test_listShort(self) -> None:
        raw = encodePublicIPList([PublicIP(0, "10.0.0.1")])
        self.assertRaises(MalformedPacket, decodePublicIPList, raw[:-1])
        self.assertRaises(MalformedPacket, decodePublicIPList, b"\x01\0")


class InterfaceTests(unittest.TestCase):
    def test_golden(self) -> None:
        raw = Interface("eth0", 1, 3).encode()
        self.assertEqual(raw, b"eth0" + b"\0" * 14 + b"\x01\x00" + b"\x03\0\0\0")

    def test_listRoundTrip(self) -> None:
        ifaces = [Interface("eth0", 1, 2), Interface("bond0.100", 0, 0)]
        raw = encodeInterfaceList(ifaces)
        self.assertEqual(decodeInterfaceList(raw), (ifaces, 4 + 48))
        self.assertRaises(MalformedPacket, decodeInterfaceList, raw[:-3])

    def test_badName(self) -> None:
        raw = b"\xff\xfe" + b"\0" * 16 + b"\x01\x00\0\0\0\0"
        self.assertRaises(MalformedPacket, Interface.decode, raw)


class PublicIPInfoTests(unittest.TestCase):
    def test_roundTrip(self) -> None:
        info = PublicIPInfo(PublicIP(1, "10.0.0.9"), 0, [Interface("eth1", 1, 1)])
        raw = info.encode()
        self.assertEqual(len(raw), 32 + 4 + 4 + 24)
        self.assertEqual(PublicIPInfo.decode(raw), info)
        self.assertRaises(MalformedPacket, PublicIPInfo.decode, raw[:35])


class AddrInfoTests(unittest.TestCase):
    def test_golden(self) -> None:
        raw = AddrInfo("10.0.0.9", 24, "eth1").encode()
        self.assertEqual(
            raw,
            encodeSockAddr("10.0.0.9") + struct.pack("<II", 24, 5) + b"eth1\0",
        )
        self.assertEqual(AddrInfo.decode(raw), AddrInfo("10.0.0.9", 24, "eth1"))

    def test_noInterface(self) -> None:
        raw = AddrInfo("10.0.0.9", 0, None).encode()
        self.assertEqual(len(raw), 36)
        self.assertEqual(AddrInfo.decode(raw), AddrInfo("10.0.0.9", 0, None))

    def test_short(self) -> None:
        raw = AddrInfo("10.0.0.9", 24, "eth1").encode()
        self.assertRaises(MalformedPacket, AddrInfo.decode, raw[:-2])
        self.assertRaises(MalformedPacket, AddrInfo.decode, raw[:30])


class TickleListTests(unittest.TestCase):
    def test_roundTrip(self) -> None:
        conns = [(("10.1.0.1", 40000), ("10.0.0.9", 445))]
        tl = TickleList(("10.0.0.9", 0), conns)
        raw = tl.encode()
        self.assertEqual(len(raw), 28 + 4 + 56)
        self.assertEqual(TickleList.decode(raw), tl)
        self.assertRaises(MalformedPacket, TickleList.decode, raw[:-1])

    def test_empty(self) -> None:
        tl = TickleList(("fd00::9", 445), [])
        self.assertEqual(TickleList.decode(tl.encode()), tl)


class CanonicalTests(unittest.TestCase):
    def test_spellings(self) -> None:
        self.assertEqual(canonicalAddress("fd00:0::0:1"), "fd00::1")
        self.assertEqual(canonicalAddress("10.0.0.1"), "10.0.0.1")
        self.assertRaises(ValueError, canonicalAddress, "10.0.0")
