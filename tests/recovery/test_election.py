# -*- test-case-name: tests.recovery.test_election -*-
"""
Tests for L{ctdb.recovery.election}: the election message and flag-change
codecs, and the 4.17 ctdb_election_win rules.
"""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ctdb.errors import MalformedPacket
from ctdb.protocols import controls as C
from ctdb.protocols.srvids import (
    decodeDisableMessage,
    decodeSrvidMessage,
    encodeDisableMessage,
    encodeSrvidMessage,
)
from ctdb.recovery.election import (
    ElectionMessage,
    decodeFlagChange,
    electionWin,
    encodeFlagChange,
)


def em(
    pnn: int, t: float = 100.0, flags: int = 0, connected: int = 3
) -> ElectionMessage:
    return ElectionMessage(connected, t, pnn, flags)


class ElectionMessageTests(SynchronousTestCase):
    """C{struct election_message} as ctdbd sends it (raw, 32 bytes)."""

    def test_golden(self) -> None:
        """num_connected, 4 pad bytes, timeval (i64 sec, i64 usec), pnn, flags."""
        msg = ElectionMessage(3, 1700000000.25, 2, C.NODE_FLAGS_STOPPED)
        expected = (
            struct.pack("<I", 3)
            + b"\0" * 4
            + struct.pack("<qq", 1700000000, 250000)
            + struct.pack("<II", 2, 0x20)
        )
        self.assertEqual(msg.encode(), expected)
        self.assertEqual(len(expected), 32)

    def test_roundTrip(self) -> None:
        """decode(encode(m)) == m to the microsecond."""
        msg = ElectionMessage(5, 1234.5, 7, 0x8)
        self.assertEqual(ElectionMessage.decode(msg.encode()), msg)

    @given(
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),  # until 2106: float keeps microseconds
        st.integers(0, 999999),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
    )
    def test_roundTripAny(
        self, num: int, sec: int, usec: int, pnn: int, flags: int
    ) -> None:
        """Any message survives encode/decode with the same timeval."""
        raw = struct.pack("<I4xqqII", num, sec, usec, pnn, flags)
        msg = ElectionMessage.decode(raw)
        self.assertEqual(
            (msg.num_connected, msg.pnn, msg.node_flags), (num, pnn, flags)
        )
        self.assertEqual(msg.encode(), raw)

    def test_short(self) -> None:
        """Fewer than 32 bytes is a MalformedPacket."""
        self.assertRaises(MalformedPacket, ElectionMessage.decode, b"\0" * 31)


class ElectionWinTests(SynchronousTestCase):
    """ctdb_election_win of 4.17."""

    def test_earliestPriorityTimeWins(self) -> None:
        """The longest-running node wins whatever the pnns."""
        self.assertTrue(electionWin(em(2, t=10.0), em(0, t=20.0), True))
        self.assertFalse(electionWin(em(0, t=20.0), em(2, t=10.0), True))

    def test_microseconds(self) -> None:
        """Times are compared to the microsecond, as timeval_compare does."""
        self.assertTrue(electionWin(em(1, t=10.000001), em(0, t=10.000002), True))
        self.assertFalse(electionWin(em(0, t=10.000002), em(1, t=10.000001), True))

    def test_tieHigherPnnWins(self) -> None:
        """On equal priority times, cmp = mine.pnn - theirs.pnn > 0: the
        higher pnn wins (ctdb_recoverd.c), so exactly one node wins."""
        self.assertTrue(electionWin(em(2), em(1), True))
        self.assertFalse(electionWin(em(1), em(2), True))
        self.assertFalse(electionWin(em(1), em(1), True))

    def test_cannotLead(self) -> None:
        """A node without the leader role (or inactive) never wins."""
        self.assertFalse(electionWin(em(0, t=1.0), em(1, t=99.0), False))
        self.assertFalse(
            electionWin(em(0, t=1.0), em(1, t=99.0, flags=C.NODE_FLAGS_BANNED), False)
        )

    def test_inactiveSenderLoses(self) -> None:
        """A banned or stopped sender loses to any node that can lead."""
        for flags in (C.NODE_FLAGS_BANNED, C.NODE_FLAGS_STOPPED):
            self.assertTrue(electionWin(em(2, t=99.0), em(0, t=1.0, flags=flags), True))

    def test_disabledSenderCompetes(self) -> None:
        """DISABLED is not INACTIVE: a disabled node is compared normally."""
        disabled = em(0, t=1.0, flags=C.NODE_FLAGS_PERMANENTLY_DISABLED)
        self.assertFalse(electionWin(em(2, t=99.0), disabled, True))

    def test_numConnectedIgnored(self) -> None:
        """num_connected is sent but not compared."""
        self.assertFalse(electionWin(em(1, connected=9), em(2, connected=1), True))

    @given(
        st.lists(
            st.tuples(st.integers(0, 3), st.booleans()),
            min_size=2,
            max_size=6,
            unique_by=lambda x: x,
        ).map(lambda xs: [(i, t, banned) for i, (t, banned) in enumerate(xs)])
    )
    def test_oneWinner(self, nodes: list[tuple[int, int, bool]]) -> None:
        """Among nodes that can lead, exactly one wins against all others:
        the earliest active one, the highest pnn among equal times."""
        msgs = [
            em(pnn, t=float(t), flags=C.NODE_FLAGS_BANNED if banned else 0)
            for pnn, t, banned in nodes
        ]
        active = [m for m in msgs if not m.node_flags]
        winners = [
            m
            for m in active
            if all(electionWin(m, o, True) for o in msgs if o.pnn != m.pnn)
        ]
        if not active:
            self.assertEqual(winners, [])
            return
        best = min(active, key=lambda m: (m.priority_time, -m.pnn))
        self.assertEqual(winners, [best])


class CodecTests(SynchronousTestCase):
    """The small message payloads the recovery daemon exchanges."""

    def test_flagChange(self) -> None:
        """ctdb_node_flag_change {pnn, new_flags, old_flags}."""
        raw = encodeFlagChange(1, 0x20, 0)
        self.assertEqual(raw, struct.pack("<III", 1, 0x20, 0))
        self.assertEqual(decodeFlagChange(raw), (1, 0x20, 0))
        self.assertRaises(MalformedPacket, decodeFlagChange, raw[:11])

    def test_srvidMessage(self) -> None:
        """ctdb_srvid_message {pnn, pad4, srvid}."""
        raw = encodeSrvidMessage(2, 0xBE00000000001234)
        self.assertEqual(raw, struct.pack("<I4xQ", 2, 0xBE00000000001234))
        self.assertEqual(decodeSrvidMessage(raw), (2, 0xBE00000000001234))
        self.assertRaises(MalformedPacket, decodeSrvidMessage, raw[:15])

    def test_disableMessage(self) -> None:
        """ctdb_disable_message {pnn, pad4, srvid, timeout, pad4}: 24 bytes."""
        raw = encodeDisableMessage(1, 0xF000000000000042, 60)
        self.assertEqual(raw, struct.pack("<I4xQI4x", 1, 0xF000000000000042, 60))
        self.assertEqual(decodeDisableMessage(raw), (1, 0xF000000000000042, 60))
        self.assertRaises(MalformedPacket, decodeDisableMessage, raw[:23])
