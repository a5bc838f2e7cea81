# -*- test-case-name: tests.protocols.test_records -*-
"""
Tests for the rec_buffer codec of L{ctdb.protocols.records}: the object
form (L{RecBuffer}, L{RecData}) and the plain form a recovery uses
(L{decodeRecBufferItems}, L{encodeRecBufferPairs}) give the same bytes and
refuse the same malformed buffers.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ctdb.errors import MalformedPacket
from ctdb.protocols.records import (
    RecBuffer,
    RecBufferPacker,
    RecData,
    decodeRecBufferItems,
    encodeRecBufferPairs,
)

_pairs = st.lists(
    st.tuples(st.binary(max_size=40), st.binary(max_size=80)), max_size=30
)


class RecBufferTests(SynchronousTestCase):
    def test_golden(self) -> None:
        """One record, byte by byte: db_id, count, then length (16 + key +
        data), reqid, key length, data length, key, data."""
        wire = encodeRecBufferPairs(0x11223344, [(b"ab", b"xyz")])
        self.assertEqual(
            wire,
            struct.pack("<II", 0x11223344, 1)
            + struct.pack("<IIII", 21, 0, 2, 3)
            + b"abxyz",
        )
        self.assertEqual(
            RecBuffer(0x11223344, (RecData(0, b"ab", b"xyz"),)).encode(), wire
        )

    @settings(max_examples=200, deadline=None)
    @given(db_id=st.integers(0, 2**32 - 1), pairs=_pairs)
    def test_bothFormsAgree(self, db_id: int, pairs: list[tuple[bytes, bytes]]) -> None:
        """Pairs encode to what the objects encode to, and decode back to
        the same records in both forms."""
        wire = encodeRecBufferPairs(db_id, pairs)
        objects = RecBuffer(db_id, tuple(RecData(0, k, v) for k, v in pairs))
        self.assertEqual(wire, objects.encode())
        self.assertEqual(RecBuffer.decode(wire), objects)
        got_id, items = decodeRecBufferItems(wire)
        self.assertEqual(got_id, db_id)
        self.assertEqual([(k, v) for _, k, v in items], pairs)
        self.assertTrue(all(isinstance(k, bytes) for _, k, _v in items))

    def test_memoryview(self) -> None:
        """A buffer handed over as a memoryview decodes to bytes."""
        wire = encodeRecBufferPairs(7, [(b"k", b"v")])
        _, items = decodeRecBufferItems(memoryview(wire))  # type: ignore[arg-type]
        self.assertEqual(items, [(0, b"k", b"v")])
        self.assertIsInstance(items[0][1], bytes)

    def test_longerLength(self) -> None:
        """A record whose length field says more than its key and data is
        skipped to that length (padding), as ctdbd reads it."""
        body = struct.pack("<IIII", 24, 5, 1, 1) + b"kv" + b"\0" * 6
        wire = (
            struct.pack("<II", 1, 2) + body + struct.pack("<IIII", 18, 0, 1, 1) + b"ab"
        )
        _, items = decodeRecBufferItems(wire)
        self.assertEqual(items, [(5, b"k", b"v"), (0, b"a", b"b")])

    @settings(max_examples=200, deadline=None)
    @given(pairs=_pairs.filter(bool), cut=st.integers(1, 200))
    def test_truncatedRefused(self, pairs: list[tuple[bytes, bytes]], cut: int) -> None:
        """Any truncation of a buffer is refused by both forms alike."""
        wire = encodeRecBufferPairs(3, pairs)
        short = wire[: max(0, len(wire) - cut)]
        self.assertRaises(MalformedPacket, decodeRecBufferItems, short)
        self.assertRaises(MalformedPacket, RecBuffer.decode, short)

    def test_badLengthRefused(self) -> None:
        """A length field smaller than the record, or a count larger than
        the buffer could hold, is refused."""
        small = struct.pack("<II", 1, 1) + struct.pack("<IIII", 17, 0, 1, 1) + b"ab"
        self.assertRaises(MalformedPacket, decodeRecBufferItems, small)
        many = struct.pack("<II", 1, 1000)
        self.assertRaises(MalformedPacket, decodeRecBufferItems, many)


class RecBufferPackerTests(SynchronousTestCase):
    def test_splitsAtTheLimit(self) -> None:
        """A buffer is ready once its records reach the limit (the record
        that reaches it included); flush gives the rest, then nothing."""
        packer = RecBufferPacker(9, limit=40)
        pairs = [(b"k%d" % i, b"v" * 10) for i in range(5)]
        out = [packer.add(k, v) for k, v in pairs]
        # each record is 16 + 2 + 10 = 28 bytes: full at the 2nd and 4th
        self.assertEqual(
            out,
            [
                None,
                encodeRecBufferPairs(9, pairs[0:2]),
                None,
                encodeRecBufferPairs(9, pairs[2:4]),
                None,
            ],
        )
        self.assertEqual(packer.flush(), encodeRecBufferPairs(9, pairs[4:]))
        self.assertIsNone(packer.flush())
