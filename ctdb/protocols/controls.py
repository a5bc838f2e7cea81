# -*- test-case-name: tests.protocols.test_controls -*-
"""
Control opcodes (Samba 4.17 ctdb/protocol/protocol.h), and the one place
to import every control payload codec from.

The opcodes are here; the codecs live by what they hold and are
re-exported, so that C{from ctdb.protocols import controls as C} gives
C{C.Control}, C{C.encodeU32}, C{C.VnnMap}, C{C.Tunables}, C{C.Statistics}:

 - L{ctdb.protocols.basictypes}: integers, strings, sock_addr, connection,
   pid_srvid;
 - L{ctdb.protocols.nodestate}: node flags, capabilities, recovery modes,
   run states, the node map, the VNN map, the ban state;
 - L{ctdb.protocols.tunables}: the tunables and their controls' payloads;
 - L{ctdb.protocols.statistics}: C{ctdb_statistics} and C{ctdb_uptime}.

The database payloads are L{ctdb.protocols.records}', the public-IP ones
L{ctdb.protocols.publicips}'.  Pure: no I/O, no
Twisted import.
"""

from __future__ import annotations

from enum import IntEnum

from ctdb.protocols.basictypes import (
    CONNECTION_SIZE,
    SOCK_ADDR_SIZE,
    decodeConnection,
    decodeI32,
    decodePidSrvid,
    decodeSockAddr,
    decodeString,
    decodeU32,
    decodeU64,
    encodeConnection,
    encodeI32,
    encodePidSrvid,
    encodeSockAddr,
    encodeString,
    encodeU32,
    encodeU64,
)
from ctdb.protocols.nodestate import (
    CTDB_CAP_DEFAULT,
    CTDB_CAP_FRAGMENTED_CONTROLS,
    CTDB_CAP_LMASTER,
    CTDB_CAP_PARALLEL_RECOVERY,
    CTDB_CAP_RECMASTER,
    CTDB_RECOVERY_ACTIVE,
    CTDB_RECOVERY_NORMAL,
    NODE_FLAGS_BANNED,
    NODE_FLAGS_DELETED,
    NODE_FLAGS_DISABLED,
    NODE_FLAGS_DISCONNECTED,
    NODE_FLAGS_INACTIVE,
    NODE_FLAGS_PERMANENTLY_DISABLED,
    NODE_FLAGS_STOPPED,
    NODE_FLAGS_UNHEALTHY,
    NodeAndFlags,
    RunState,
    VnnMap,
    decodeBanState,
    decodeNodeMap,
    encodeBanState,
    encodeNodeMap,
)
from ctdb.protocols.statistics import (
    MAX_COUNT_BUCKETS,
    STAT_COUNTERS,
    LatencyCounter,
    Statistics,
    Uptime,
)
from ctdb.protocols.tunables import (
    TUNABLE_MAP_ORDER,
    TUNABLES,
    Tunables,
    decodeGetTunable,
    decodeSetTunable,
    decodeVarList,
    encodeGetTunable,
    encodeSetTunable,
    encodeVarList,
)

__all__ = [
    "CONNECTION_SIZE",
    "CTDB_CAP_DEFAULT",
    "CTDB_CAP_FRAGMENTED_CONTROLS",
    "CTDB_CAP_LMASTER",
    "CTDB_CAP_PARALLEL_RECOVERY",
    "CTDB_CAP_RECMASTER",
    "CTDB_RECOVERY_ACTIVE",
    "CTDB_RECOVERY_NORMAL",
    "MAX_COUNT_BUCKETS",
    "NODE_FLAGS_BANNED",
    "NODE_FLAGS_DELETED",
    "NODE_FLAGS_DISABLED",
    "NODE_FLAGS_DISCONNECTED",
    "NODE_FLAGS_INACTIVE",
    "NODE_FLAGS_PERMANENTLY_DISABLED",
    "NODE_FLAGS_STOPPED",
    "NODE_FLAGS_UNHEALTHY",
    "OBSOLETE_CONTROLS",
    "SOCK_ADDR_SIZE",
    "STAT_COUNTERS",
    "TUNABLES",
    "TUNABLE_MAP_ORDER",
    "Control",
    "LatencyCounter",
    "NodeAndFlags",
    "RunState",
    "Statistics",
    "Tunables",
    "Uptime",
    "VnnMap",
    "controlName",
    "decodeBanState",
    "decodeConnection",
    "decodeGetTunable",
    "decodeI32",
    "decodeNodeMap",
    "decodePidSrvid",
    "decodeSetTunable",
    "decodeSockAddr",
    "decodeString",
    "decodeU32",
    "decodeU64",
    "decodeVarList",
    "encodeBanState",
    "encodeConnection",
    "encodeGetTunable",
    "encodeI32",
    "encodeNodeMap",
    "encodePidSrvid",
    "encodeSetTunable",
    "encodeSockAddr",
    "encodeString",
    "encodeU32",
    "encodeU64",
    "encodeVarList",
]


class Control(IntEnum):
    """``enum ctdb_controls`` of Samba 4.17."""

    PROCESS_EXISTS = 0
    STATISTICS = 1
    PING = 3
    GETDBPATH = 4
    GETVNNMAP = 5
    SETVNNMAP = 6
    GET_DEBUG = 7
    SET_DEBUG = 8
    GET_DBMAP = 9
    GET_NODEMAPv4 = 10
    SET_DMASTER = 11
    PULL_DB = 13
    PUSH_DB = 14
    GET_RECMODE = 15
    SET_RECMODE = 16
    STATISTICS_RESET = 17
    DB_ATTACH = 18
    SET_CALL = 19
    TRAVERSE_START = 20
    TRAVERSE_ALL = 21
    TRAVERSE_DATA = 22
    REGISTER_SRVID = 23
    DEREGISTER_SRVID = 24
    GET_DBNAME = 25
    ENABLE_SEQNUM = 26
    UPDATE_SEQNUM = 27
    DUMP_MEMORY = 29
    GET_PID = 30
    GET_RECMASTER = 31
    SET_RECMASTER = 32
    FREEZE = 33
    THAW = 34
    GET_PNN = 35
    SHUTDOWN = 36
    GET_MONMODE = 37
    TAKEOVER_IPv4 = 42
    RELEASE_IPv4 = 43
    TCP_CLIENT = 44
    TCP_ADD = 45
    TCP_REMOVE = 46
    STARTUP = 47
    SET_TUNABLE = 48
    GET_TUNABLE = 49
    LIST_TUNABLES = 50
    GET_PUBLIC_IPSv4 = 51
    MODIFY_FLAGS = 52
    GET_ALL_TUNABLES = 53
    KILL_TCP = 54
    GET_TCP_TICKLE_LIST = 55
    SET_TCP_TICKLE_LIST = 56
    REGISTER_SERVER_ID = 57
    UNREGISTER_SERVER_ID = 58
    CHECK_SERVER_ID = 59
    GET_SERVER_ID_LIST = 60
    DB_ATTACH_PERSISTENT = 61
    PERSISTENT_STORE = 62
    UPDATE_RECORD = 63
    SEND_GRATUITOUS_ARP = 64
    TRANSACTION_START = 65
    TRANSACTION_COMMIT = 66
    WIPE_DATABASE = 67
    UPTIME = 69
    START_RECOVERY = 70
    END_RECOVERY = 71
    RELOAD_NODES_FILE = 72
    TRY_DELETE_RECORDS = 74
    ENABLE_MONITOR = 75
    DISABLE_MONITOR = 76
    ADD_PUBLIC_IP = 77
    DEL_PUBLIC_IP = 78
    RUN_EVENTSCRIPTS = 79
    GET_CAPABILITIES = 80
    START_PERSISTENT_UPDATE = 81
    CANCEL_PERSISTENT_UPDATE = 82
    TRANS2_COMMIT = 83
    TRANS2_FINISHED = 84
    TRANS2_ERROR = 85
    TRANS2_COMMIT_RETRY = 86
    RECD_PING = 87
    RELEASE_IP = 88
    TAKEOVER_IP = 89
    GET_PUBLIC_IPS = 90
    GET_NODEMAP = 91
    GET_EVENT_SCRIPT_STATUS = 96
    TRAVERSE_KILL = 97
    RECD_RECLOCK_LATENCY = 98
    GET_RECLOCK_FILE = 99
    SET_RECLOCK_FILE = 100
    STOP_NODE = 101
    CONTINUE_NODE = 102
    SET_NATGWSTATE = 103
    SET_LMASTERROLE = 104
    SET_RECMASTERROLE = 105
    ENABLE_SCRIPT = 107
    DISABLE_SCRIPT = 108
    SET_BAN_STATE = 109
    GET_BAN_STATE = 110
    SET_DB_PRIORITY = 111
    GET_DB_PRIORITY = 112
    TRANSACTION_CANCEL = 113
    REGISTER_NOTIFY = 114
    DEREGISTER_NOTIFY = 115
    TRANS2_ACTIVE = 116
    GET_LOG = 117
    CLEAR_LOG = 118
    TRANS3_COMMIT = 119
    GET_DB_SEQNUM = 120
    DB_SET_HEALTHY = 121
    DB_GET_HEALTH = 122
    GET_PUBLIC_IP_INFO = 123
    GET_IFACES = 124
    SET_IFACE_LINK_STATE = 125
    TCP_ADD_DELAYED_UPDATE = 126
    GET_STAT_HISTORY = 127
    SCHEDULE_FOR_DELETION = 128
    SET_DB_READONLY = 129
    CHECK_SRVIDS = 130
    TRAVERSE_START_EXT = 131
    GET_DB_STATISTICS = 132
    SET_DB_STICKY = 133
    RELOAD_PUBLIC_IPS = 134
    TRAVERSE_ALL_EXT = 135
    RECEIVE_RECORDS = 136
    IPREALLOCATED = 137
    GET_RUNSTATE = 138
    DB_DETACH = 139
    GET_NODES_FILE = 140
    DB_FREEZE = 141
    DB_THAW = 142
    DB_TRANSACTION_START = 143
    DB_TRANSACTION_COMMIT = 144
    DB_TRANSACTION_CANCEL = 145
    DB_PULL = 146
    DB_PUSH_START = 147
    DB_PUSH_CONFIRM = 148
    DB_OPEN_FLAGS = 149
    DB_ATTACH_REPLICATED = 150
    CHECK_PID_SRVID = 151
    TUNNEL_REGISTER = 152
    TUNNEL_DEREGISTER = 153
    VACUUM_FETCH = 154
    DB_VACUUM = 155
    ECHO_DATA = 156
    DISABLE_NODE = 157
    ENABLE_NODE = 158


#: Controls that 4.17 marks obsolete; ctdbd answers them with status -1.
OBSOLETE_CONTROLS = frozenset(
    (
        Control.GET_NODEMAPv4,
        Control.SET_DMASTER,
        Control.PULL_DB,
        Control.PUSH_DB,
        Control.SET_CALL,
        Control.GET_RECMASTER,
        Control.SET_RECMASTER,
        Control.THAW,
        Control.GET_MONMODE,
        Control.TAKEOVER_IPv4,
        Control.RELEASE_IPv4,
        Control.GET_PUBLIC_IPSv4,
        Control.KILL_TCP,
        Control.REGISTER_SERVER_ID,
        Control.UNREGISTER_SERVER_ID,
        Control.CHECK_SERVER_ID,
        Control.GET_SERVER_ID_LIST,
        Control.PERSISTENT_STORE,
        Control.TRANSACTION_START,
        Control.TRANSACTION_COMMIT,
        Control.ENABLE_MONITOR,
        Control.DISABLE_MONITOR,
        Control.RUN_EVENTSCRIPTS,
        Control.START_PERSISTENT_UPDATE,
        Control.CANCEL_PERSISTENT_UPDATE,
        Control.TRANS2_COMMIT,
        Control.TRANS2_FINISHED,
        Control.TRANS2_ERROR,
        Control.TRANS2_COMMIT_RETRY,
        Control.GET_EVENT_SCRIPT_STATUS,
        Control.SET_RECLOCK_FILE,
        Control.SET_NATGWSTATE,
        Control.ENABLE_SCRIPT,
        Control.DISABLE_SCRIPT,
        Control.SET_DB_PRIORITY,
        Control.GET_DB_PRIORITY,
        Control.TRANSACTION_CANCEL,
        Control.TRANS2_ACTIVE,
        Control.GET_LOG,
        Control.CLEAR_LOG,
        Control.CHECK_SRVIDS,
        Control.RECEIVE_RECORDS,
    )
)


def controlName(opcode: int) -> str:
    try:
        return Control(opcode).name
    except ValueError:
        return f"UNKNOWN({opcode})"
