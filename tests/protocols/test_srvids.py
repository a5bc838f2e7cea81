# -*- test-case-name: tests.protocols.test_srvids -*-
"""
Tests for L{ctdb.protocols.srvids}: every srvid of Samba 4.17's
ctdb/protocol/protocol.h and source3/include/ctdb_srvids.h, by name and
value.  (That no other module assigns a C{CTDB_SRVID_*} is
tests/test_layout.py's.)
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ctdb.protocols import srvids

#: The #defines of samba-4.17.12, copied from the headers.
SAMBA = {
    "CTDB_SRVID_ALL": 0xFFFFFFFFFFFFFFFF,
    "CTDB_SRVID_RECOVERY": 0xF001000000000000,
    "CTDB_SRVID_BANNING": 0xF002000000000000,
    "CTDB_SRVID_ELECTION": 0xF100000000000000,
    "CTDB_SRVID_LEADER": 0xF101000000000000,
    "CTDB_SRVID_RECONFIGURE": 0xF200000000000000,
    "CTDB_SRVID_RELEASE_IP": 0xF300000000000000,
    "CTDB_SRVID_TAKE_IP": 0xF301000000000000,
    "CTDB_SRVID_SET_NODE_FLAGS": 0xF400000000000000,
    "CTDB_SRVID_RECD_UPDATE_IP": 0xF500000000000000,
    "CTDB_SRVID_VACUUM_FETCH": 0xF700000000000000,
    "CTDB_SRVID_DETACH_DATABASE": 0xF701000000000000,
    "CTDB_SRVID_MEM_DUMP": 0xF800000000000000,
    "CTDB_SRVID_GETLOG": 0xF801000000000000,
    "CTDB_SRVID_CLEARLOG": 0xF802000000000000,
    "CTDB_SRVID_PUSH_NODE_FLAGS": 0xF900000000000000,
    "CTDB_SRVID_RELOAD_NODES": 0xFA00000000000000,
    "CTDB_SRVID_TAKEOVER_RUN": 0xFB00000000000000,
    "CTDB_SRVID_REBALANCE_NODE": 0xFB01000000000000,
    "CTDB_SRVID_DISABLE_TAKEOVER_RUNS": 0xFB03000000000000,
    "CTDB_SRVID_DISABLE_RECOVERIES": 0xFB04000000000000,
    "CTDB_SRVID_DISABLE_IP_CHECK": 0xFC00000000000000,
    "CTDB_SRVID_PID_RANGE": 0x0000000000000000,
    "CTDB_SRVID_SAMBA_NOTIFY": 0xFE00000000000000,
    "CTDB_SRVID_SAMBA_RANGE": 0xFE00000000000000,
    "CTDB_SRVID_NFSD_RANGE": 0xEE00000000000000,
    "CTDB_SRVID_ISCSID_RANGE": 0xDE00000000000000,
    "CTDB_SRVID_TOOL_RANGE": 0xCE00000000000000,
    "CTDB_SRVID_CLIENT_RANGE": 0xBE00000000000000,
    "CTDB_SRVID_TEST_RANGE": 0xAE00000000000000,
    "CTDB_SRVID_SAMBA_NOTIFY_PROXY": 0xFE00000000000001,
    "CTDB_SRVID_SAMBA_PROCESS": 0xFE00000000000002,
}


class SrvidTests(SynchronousTestCase):
    """The module holds Samba's srvids, no more and no fewer."""

    def test_samba(self) -> None:
        """Every CTDB_SRVID_* of the module is Samba's, with Samba's value."""
        ours = {
            name: value
            for name, value in vars(srvids).items()
            if name.startswith("CTDB_SRVID_")
        }
        self.assertEqual(ours, SAMBA)

    def test_u64(self) -> None:
        """Each fits the u64 of REGISTER_SRVID and REQ_MESSAGE."""
        for name, value in SAMBA.items():
            self.assertTrue(0 <= value < 2**64, name)
