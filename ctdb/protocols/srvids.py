# -*- test-case-name: tests.protocols.test_srvids -*-
"""
The message srvids of Samba 4.17: ``ctdb/protocol/protocol.h`` and the
Samba assignments of ``source3/include/ctdb_srvids.h``, with Samba's names
and values.  Every C{CTDB_SRVID_*} of txctdb is defined here and only here
(tests/test_layout.py checks it).

A srvid is the u64 a client registers (REGISTER_SRVID) and a REQ_MESSAGE
is addressed to; a "range" reserves every srvid with the same top 8 bits.

Pure: no I/O, no Twisted import.
"""

from __future__ import annotations

import struct

from ctdb.errors import MalformedPacket

# --- protocol.h -----------------------------------------------------------------

#: catches every message (C{~(uint64_t)0})
CTDB_SRVID_ALL = 0xFFFFFFFFFFFFFFFF
#: prefix of the srvids recovery pulls and pushes databases on
CTDB_SRVID_RECOVERY = 0xF001000000000000
#: banning credits are assigned to the node
CTDB_SRVID_BANNING = 0xF002000000000000
#: election data
CTDB_SRVID_ELECTION = 0xF100000000000000
#: the leader broadcasts itself
CTDB_SRVID_LEADER = 0xF101000000000000
#: clients learn that the cluster has been reconfigured
CTDB_SRVID_RECONFIGURE = 0xF200000000000000
#: clients learn that an IP address has been released ...
CTDB_SRVID_RELEASE_IP = 0xF300000000000000
#: ... or taken over
CTDB_SRVID_TAKE_IP = 0xF301000000000000
#: the node flags, to the recovery daemon (obsolete)
CTDB_SRVID_SET_NODE_FLAGS = 0xF400000000000000
#: the recovery daemon updates the public IP assignment
CTDB_SRVID_RECD_UPDATE_IP = 0xF500000000000000
#: the recovery daemon migrates a set of records
CTDB_SRVID_VACUUM_FETCH = 0xF700000000000000
#: the recovery daemon detaches a database
CTDB_SRVID_DETACH_DATABASE = 0xF701000000000000
#: the recovery daemon dumps its memory use to the log
CTDB_SRVID_MEM_DUMP = 0xF800000000000000
#: the recovery daemon sends its logs
CTDB_SRVID_GETLOG = 0xF801000000000000
#: the recovery daemon clears its logs
CTDB_SRVID_CLEARLOG = 0xF802000000000000
#: the recovery daemon pushes the node flags to the other nodes
CTDB_SRVID_PUSH_NODE_FLAGS = 0xF900000000000000
#: the recovery daemon reloads the nodes file
CTDB_SRVID_RELOAD_NODES = 0xFA00000000000000
#: the recovery daemon performs a takeover run
CTDB_SRVID_TAKEOVER_RUN = 0xFB00000000000000
#: the recovery daemon rebalances the IPs of a node
CTDB_SRVID_REBALANCE_NODE = 0xFB01000000000000
#: the recovery daemon stops takeover runs for a while
CTDB_SRVID_DISABLE_TAKEOVER_RUNS = 0xFB03000000000000
#: the recovery daemon stops recoveries for a while
CTDB_SRVID_DISABLE_RECOVERIES = 0xFB04000000000000
#: the recovery daemon disables the public IP checks
CTDB_SRVID_DISABLE_IP_CHECK = 0xFC00000000000000

#: reserved for a srvid that is the registering process's pid
CTDB_SRVID_PID_RANGE = 0x0000000000000000
#: reserved for Samba (smbd and friends)
CTDB_SRVID_SAMBA_RANGE = 0xFE00000000000000
#: g_lock waiters register it to hear when a holder dies
CTDB_SRVID_SAMBA_NOTIFY = 0xFE00000000000000
#: reserved for an NFS server
CTDB_SRVID_NFSD_RANGE = 0xEE00000000000000
#: reserved for an iSCSI server
CTDB_SRVID_ISCSID_RANGE = 0xDE00000000000000
#: reserved for the ctdb tool
CTDB_SRVID_TOOL_RANGE = 0xCE00000000000000
#: reserved for the client library (traverses use it)
CTDB_SRVID_CLIENT_RANGE = 0xBE00000000000000
#: reserved for test programs
CTDB_SRVID_TEST_RANGE = 0xAE00000000000000

# --- source3/include/ctdb_srvids.h (Samba's own assignments) -----------------------

#: notify_internal.c: one process per node multicasts file change notifications
CTDB_SRVID_SAMBA_NOTIFY_PROXY = 0xFE00000000000001
#: every Samba process (message_send_all)
CTDB_SRVID_SAMBA_PROCESS = 0xFE00000000000002


# --- message payloads (protocol.h) ------------------------------------------------


def encodeSrvidMessage(pnn: int, srvid: int) -> bytes:
    """``struct ctdb_srvid_message`` {pnn, pad4, srvid}: who waits for a reply, on
    which srvid (TAKEOVER_RUN, memory dumps, ...)."""
    return struct.pack("<I4xQ", pnn, srvid)


def decodeSrvidMessage(buf: bytes) -> tuple[int, int]:
    if len(buf) < 16:
        raise MalformedPacket("srvid_message: short")
    return struct.unpack_from("<I4xQ", buf)


def encodeDisableMessage(pnn: int, srvid: int, timeout: int) -> bytes:
    """``struct ctdb_disable_message`` {pnn, pad4, srvid, timeout, pad4}."""
    return struct.pack("<I4xQI4x", pnn, srvid, timeout)


def decodeDisableMessage(buf: bytes) -> tuple[int, int, int]:
    if len(buf) < 24:
        raise MalformedPacket("disable_message: short")
    return struct.unpack_from("<I4xQI4x", buf)
