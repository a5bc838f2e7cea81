# -*- test-case-name: tests.protocols.test_controls -*-
"""
Control opcodes and the payload codecs of the controls txctdb speaks
(Samba 4.17 ctdb/protocol/protocol.h, protocol_control.c, protocol_types.c).

Pure: no I/O, no Twisted import.  Layouts are x86_64 host order, i.e.
little-endian with C alignment, written out as explicit ``"<"`` formats.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from ctdb.errors import MalformedPacket


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


# Node flags (protocol.h NODE_FLAGS_*)
NODE_FLAGS_DISCONNECTED = 0x01
NODE_FLAGS_UNHEALTHY = 0x02
NODE_FLAGS_PERMANENTLY_DISABLED = 0x04
NODE_FLAGS_BANNED = 0x08
NODE_FLAGS_DELETED = 0x10
NODE_FLAGS_STOPPED = 0x20
NODE_FLAGS_DISABLED = NODE_FLAGS_UNHEALTHY | NODE_FLAGS_PERMANENTLY_DISABLED
NODE_FLAGS_INACTIVE = (
    NODE_FLAGS_DELETED
    | NODE_FLAGS_DISCONNECTED
    | NODE_FLAGS_BANNED
    | NODE_FLAGS_STOPPED
)

# Capabilities
CTDB_CAP_RECMASTER = 0x1
CTDB_CAP_LMASTER = 0x2
CTDB_CAP_PARALLEL_RECOVERY = 0x10000
CTDB_CAP_FRAGMENTED_CONTROLS = 0x20000
CTDB_CAP_DEFAULT = (
    CTDB_CAP_RECMASTER
    | CTDB_CAP_LMASTER
    | CTDB_CAP_PARALLEL_RECOVERY
    | CTDB_CAP_FRAGMENTED_CONTROLS
)

# Recovery modes
CTDB_RECOVERY_NORMAL = 0
CTDB_RECOVERY_ACTIVE = 1


class RunState(IntEnum):
    UNKNOWN = 0
    INIT = 1
    SETUP = 2
    FIRST_RECOVERY = 3
    STARTUP = 4
    RUNNING = 5
    SHUTDOWN = 6


def _need(buf: bytes, size: int, what: str) -> None:
    if len(buf) < size:
        raise MalformedPacket(f"{what}: need {size} bytes, have {len(buf)}")


def encodeU32(value: int) -> bytes:
    return struct.pack("<I", value & 0xFFFFFFFF)


def decodeU32(buf: bytes, what: str = "uint32") -> int:
    _need(buf, 4, what)
    return struct.unpack_from("<I", buf)[0]


def encodeI32(value: int) -> bytes:
    return struct.pack("<i", value)


def decodeI32(buf: bytes, what: str = "int32") -> int:
    _need(buf, 4, what)
    return struct.unpack_from("<i", buf)[0]


def encodeU64(value: int) -> bytes:
    return struct.pack("<Q", value)


def decodeU64(buf: bytes, what: str = "uint64") -> int:
    _need(buf, 8, what)
    return struct.unpack_from("<Q", buf)[0]


def encodeString(text: str | bytes) -> bytes:
    """A NUL-terminated string, as control payloads carry them."""
    raw = text.encode() if isinstance(text, str) else text
    return raw + b"\0"


def decodeString(buf: bytes, what: str = "string") -> str:
    """A NUL-terminated (or unterminated, datalen-bounded) string."""
    end = buf.find(b"\0")
    raw = buf if end < 0 else buf[:end]
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise MalformedPacket(f"{what} is not UTF-8") from None


# --- sock_addr (28 bytes: a raw ctdb_sock_addr union) ---------------------

SOCK_ADDR_SIZE = 28


def encodeSockAddr(address: str, port: int = 0) -> bytes:
    if ":" in address:
        packed = socket.inet_pton(socket.AF_INET6, address)
        return (
            struct.pack("<H", socket.AF_INET6)
            + struct.pack(">HI", port, 0)
            + packed
            + b"\0" * 4
        )
    packed = socket.inet_pton(socket.AF_INET, address)
    return (
        struct.pack("<H", socket.AF_INET)
        + struct.pack(">H", port)
        + packed
        + b"\0" * 20
    )


def decodeSockAddr(buf: bytes) -> tuple[str, int]:
    _need(buf, SOCK_ADDR_SIZE, "sock_addr")
    (family,) = struct.unpack_from("<H", buf)
    (port,) = struct.unpack_from(">H", buf, 2)
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, buf[4:8]), port
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, buf[8:24]), port
    if family == 0:
        return "0.0.0.0", 0
    raise MalformedPacket(f"sock_addr: unknown family {family}")


# --- ctdb_connection (two sock_addrs: TCP_CLIENT, TCP_ADD, TCP_REMOVE) ------

CONNECTION_SIZE = 2 * SOCK_ADDR_SIZE


def encodeConnection(src: tuple[str, int], dst: tuple[str, int]) -> bytes:
    """struct ctdb_connection: the client's end, then the server's."""
    return encodeSockAddr(*src) + encodeSockAddr(*dst)


def decodeConnection(buf: bytes) -> tuple[tuple[str, int], tuple[str, int]]:
    _need(buf, CONNECTION_SIZE, "connection")
    return decodeSockAddr(buf[:SOCK_ADDR_SIZE]), decodeSockAddr(
        buf[SOCK_ADDR_SIZE:CONNECTION_SIZE]
    )


# --- node map ---------------------------------------------------------------


#: ctdbd's node port; GET_NODEMAP carries it in every node's sock_addr.
_CTDB_PORT = 4379


@dataclass(frozen=True, slots=True)
class NodeAndFlags:
    """
    ``struct ctdb_node_and_flags``.  A real 4.17 ctdbd fills in the node's
    port (4379) in the address, so that is the default here too: our
    GET_NODEMAP reply is then byte-identical to Samba's.
    """

    pnn: int
    flags: int
    address: str
    port: int = _CTDB_PORT


def encodeNodeMap(nodes: list[NodeAndFlags]) -> bytes:
    parts = [encodeU32(len(nodes))]
    for n in nodes:
        parts.append(
            struct.pack("<II", n.pnn, n.flags) + encodeSockAddr(n.address, n.port)
        )
    return b"".join(parts)


def decodeNodeMap(buf: bytes) -> list[NodeAndFlags]:
    num = decodeU32(buf, "node_map")
    _need(buf, 4 + num * 36, "node_map")
    out = []
    for i in range(num):
        off = 4 + i * 36
        pnn, flags = struct.unpack_from("<II", buf, off)
        address, port = decodeSockAddr(buf[off + 8 : off + 36])
        out.append(NodeAndFlags(pnn, flags, address, port))
    return out


# --- vnn map ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VnnMap:
    generation: int
    map: tuple[int, ...]

    def encode(self) -> bytes:
        return struct.pack(
            f"<II{len(self.map)}I", self.generation, len(self.map), *self.map
        )

    @classmethod
    def decode(cls, buf: bytes) -> VnnMap:
        _need(buf, 8, "vnn_map")
        generation, size = struct.unpack_from("<II", buf)
        _need(buf, 8 + 4 * size, "vnn_map")
        return cls(generation, struct.unpack_from(f"<{size}I", buf, 8))


# --- uptime -------------------------------------------------------------------


def _timeval(t: float) -> bytes:
    sec = int(t)
    return struct.pack("<qq", sec, round((t - sec) * 1e6))


def _untimeval(buf: bytes, off: int) -> float:
    sec, usec = struct.unpack_from("<qq", buf, off)
    return sec + usec / 1e6


@dataclass(frozen=True, slots=True)
class Uptime:
    current_time: float
    ctdbd_start_time: float
    last_recovery_started: float
    last_recovery_finished: float

    def encode(self) -> bytes:
        return b"".join(
            _timeval(t)
            for t in (
                self.current_time,
                self.ctdbd_start_time,
                self.last_recovery_started,
                self.last_recovery_finished,
            )
        )

    @classmethod
    def decode(cls, buf: bytes) -> Uptime:
        _need(buf, 64, "uptime")
        return cls(*(_untimeval(buf, i * 16) for i in range(4)))


# --- tunables -------------------------------------------------------------------

#: (name, default, obsolete) in ``struct ctdb_tunable_list`` order, which is
#: the order of GET_ALL_TUNABLES.  Names and defaults: common/tunable.c.
TUNABLES: tuple[tuple[str, int, bool], ...] = (
    ("MaxRedirectCount", 3, True),
    ("SeqnumInterval", 1000, False),
    ("ControlTimeout", 60, False),
    ("TraverseTimeout", 20, False),
    ("KeepaliveInterval", 5, False),
    ("KeepaliveLimit", 5, False),
    ("RecoverTimeout", 30, False),
    ("RecoverInterval", 1, False),
    ("ElectionTimeout", 3, False),
    ("TakeoverTimeout", 9, False),
    ("MonitorInterval", 15, False),
    ("TickleUpdateInterval", 20, False),
    ("EventScriptTimeout", 30, False),
    ("MonitorTimeoutCount", 20, False),
    ("EventScriptUnhealthyOnTimeout", 0, True),
    ("RecoveryGracePeriod", 120, False),
    ("RecoveryBanPeriod", 300, False),
    ("DatabaseHashSize", 100001, False),
    ("DatabaseMaxDead", 5, False),
    ("RerecoveryTimeout", 10, False),
    ("EnableBans", 1, False),
    ("DeterministicIPs", 0, True),
    ("ReclockPingPeriod", 60, True),
    ("NoIPFailback", 0, False),
    ("DisableIPFailover", 0, True),
    ("VerboseMemoryNames", 0, False),
    ("RecdPingTimeout", 60, False),
    ("RecdFailCount", 10, False),
    ("LogLatencyMs", 0, False),
    ("RecLockLatencyMs", 1000, False),
    ("RecoveryDropAllIPs", 120, False),
    ("VerifyRecoveryLock", 1, True),
    ("VacuumInterval", 10, False),
    ("VacuumMaxRunTime", 120, False),
    ("RepackLimit", 10000, False),
    ("VacuumLimit", 5000, True),
    ("MaxQueueDropMsg", 1000000, False),
    ("AllowUnhealthyDBRead", 0, False),
    ("StatHistoryInterval", 1, False),
    ("DeferredAttachTO", 120, False),
    ("VacuumFastPathCount", 60, False),
    ("LCP2PublicIPs", 1, True),
    ("AllowClientDBAttach", 1, False),
    ("RecoverPDBBySeqNum", 1, True),
    ("DeferredRebalanceOnNodeAdd", 300, True),
    ("FetchCollapse", 1, False),
    ("HopcountMakeSticky", 50, False),
    ("StickyDuration", 600, False),
    ("StickyPindown", 200, False),
    ("NoIPTakeover", 0, False),
    ("DBRecordCountWarn", 100000, False),
    ("DBRecordSizeWarn", 10000000, False),
    ("DBSizeWarn", 100000000, False),
    ("PullDBPreallocation", 10 * 1024 * 1024, False),
    ("NoIPHostOnAllDisabled", 1, True),
    ("Samba3AvoidDeadlocks", 0, True),
    ("TDBMutexEnabled", 1, True),
    ("LockProcessesPerDB", 200, False),
    ("RecBufferSizeLimit", 1000000, False),
    ("QueueBufferSize", 1024, False),
    ("IPAllocAlgorithm", 2, False),
    ("AllowMixedVersions", 0, False),
)

#: The order ``listvars`` prints: common/tunable.c's tunable_map order.
TUNABLE_MAP_ORDER: tuple[str, ...] = (
    "MaxRedirectCount",
    "SeqnumInterval",
    "ControlTimeout",
    "TraverseTimeout",
    "KeepaliveInterval",
    "KeepaliveLimit",
    "RecoverTimeout",
    "RecoverInterval",
    "ElectionTimeout",
    "TakeoverTimeout",
    "MonitorInterval",
    "TickleUpdateInterval",
    "EventScriptTimeout",
    "MonitorTimeoutCount",
    "EventScriptUnhealthyOnTimeout",
    "RecoveryGracePeriod",
    "RecoveryBanPeriod",
    "DatabaseHashSize",
    "DatabaseMaxDead",
    "RerecoveryTimeout",
    "EnableBans",
    "DeterministicIPs",
    "LCP2PublicIPs",
    "ReclockPingPeriod",
    "NoIPFailback",
    "DisableIPFailover",
    "VerboseMemoryNames",
    "RecdPingTimeout",
    "RecdFailCount",
    "LogLatencyMs",
    "RecLockLatencyMs",
    "RecoveryDropAllIPs",
    "VerifyRecoveryLock",
    "VacuumInterval",
    "VacuumMaxRunTime",
    "RepackLimit",
    "VacuumLimit",
    "VacuumFastPathCount",
    "MaxQueueDropMsg",
    "AllowUnhealthyDBRead",
    "StatHistoryInterval",
    "DeferredAttachTO",
    "AllowClientDBAttach",
    "RecoverPDBBySeqNum",
    "DeferredRebalanceOnNodeAdd",
    "FetchCollapse",
    "HopcountMakeSticky",
    "StickyDuration",
    "StickyPindown",
    "NoIPTakeover",
    "DBRecordCountWarn",
    "DBRecordSizeWarn",
    "DBSizeWarn",
    "PullDBPreallocation",
    "NoIPHostOnAllDisabled",
    "Samba3AvoidDeadlocks",
    "TDBMutexEnabled",
    "LockProcessesPerDB",
    "RecBufferSizeLimit",
    "QueueBufferSize",
    "IPAllocAlgorithm",
    "AllowMixedVersions",
)


class Tunables:
    """The daemon's tunables, by Samba's names (case-insensitive lookups)."""

    def __init__(self) -> None:
        self._values = {name: default for name, default, _ in TUNABLES}
        self._canon = {name.lower(): name for name, _, _ in TUNABLES}
        self._obsolete = {name for name, _, obs in TUNABLES if obs}

    def canonical(self, name: str) -> str | None:
        return self._canon.get(name.lower())

    def isObsolete(self, name: str) -> bool:
        return name in self._obsolete

    def get(self, name: str) -> int:
        canon = self.canonical(name)
        if canon is None:
            raise KeyError(name)
        return self._values[canon]

    def set(self, name: str, value: int) -> None:
        canon = self.canonical(name)
        if canon is None:
            raise KeyError(name)
        self._values[canon] = value & 0xFFFFFFFF

    def __getattr__(self, name: str) -> int:
        # tunables.KeepaliveInterval etc.
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def names(self) -> list[str]:
        """Non-obsolete names in tunable_map order, as LIST_TUNABLES sends them."""
        return [n for n in TUNABLE_MAP_ORDER if n not in self._obsolete]

    def encodeAll(self) -> bytes:
        """GET_ALL_TUNABLES: 62 x u32 in struct order."""
        return struct.pack(
            f"<{len(TUNABLES)}I", *(self._values[name] for name, _, _ in TUNABLES)
        )

    @classmethod
    def decodeAll(cls, buf: bytes) -> dict[str, int]:
        _need(buf, 4 * len(TUNABLES), "tunable_list")
        values = struct.unpack_from(f"<{len(TUNABLES)}I", buf)
        return {name: v for (name, _, _), v in zip(TUNABLES, values)}


def encodeVarList(names: list[str]) -> bytes:
    """
    LIST_TUNABLES reply.  ctdbd (common/tunable.c
    ctdb_tunable_names_to_string) starts the list with a ':' -- checked
    against a real 4.17 daemon -- so we do too, to send the same bytes.
    """
    text = (":" + ":".join(names)).encode() + b"\0"
    return encodeU32(len(text)) + text


def decodeVarList(buf: bytes) -> list[str]:
    """As ctdb_var_list_pull: split on ':' skipping empty names (strtok)."""
    length = decodeU32(buf, "var_list")
    _need(buf, 4 + length, "var_list")
    text = decodeString(buf[4 : 4 + length], "var_list")
    return [name for name in text.split(":") if name]


def encodeSetTunable(name: str, value: int) -> bytes:
    raw = encodeString(name)
    return struct.pack("<II", value, len(raw)) + raw


def decodeSetTunable(buf: bytes) -> tuple[str, int]:
    _need(buf, 8, "tunable")
    value, namelen = struct.unpack_from("<II", buf)
    _need(buf, 8 + namelen, "tunable name")
    return decodeString(buf[8 : 8 + namelen], "tunable name"), value


def encodeGetTunable(name: str) -> bytes:
    raw = encodeString(name)
    return encodeU32(len(raw)) + raw


def decodeGetTunable(buf: bytes) -> str:
    namelen = decodeU32(buf, "tunable name")
    _need(buf, 4 + namelen, "tunable name")
    return decodeString(buf[4 : 4 + namelen], "tunable name")


# --- statistics (struct ctdb_statistics, 488 bytes) -------------------------

MAX_COUNT_BUCKETS = 16
_LAT = "i4xddd"
_STATISTICS = struct.Struct(
    "<"
    + "9I"
    + "9I"
    + "4I"
    + "3I"
    + "4x"
    + _LAT
    + _LAT
    + "4I"
    + _LAT
    + f"{MAX_COUNT_BUCKETS}I"
    + "7I"
    + f"{MAX_COUNT_BUCKETS}I"
    + "4x"
    + _LAT
    + _LAT
    + "I4x"
    + "qq"
    + "qq"
    + "II"
)
assert _STATISTICS.size == 488

STAT_COUNTERS = (
    "num_clients",
    "frozen",
    "recovering",
    "client_packets_sent",
    "client_packets_recv",
    "node_packets_sent",
    "node_packets_recv",
    "keepalive_packets_sent",
    "keepalive_packets_recv",
    "node.req_call",
    "node.reply_call",
    "node.req_dmaster",
    "node.reply_dmaster",
    "node.reply_error",
    "node.req_message",
    "node.req_control",
    "node.reply_control",
    "node.req_tunnel",
    "client.req_call",
    "client.req_message",
    "client.req_control",
    "client.req_tunnel",
    "timeouts.call",
    "timeouts.control",
    "timeouts.traverse",
)


@dataclass
class LatencyCounter:
    num: int = 0
    min: float = 0.0
    max: float = 0.0
    total: float = 0.0

    def add(self, seconds: float) -> None:
        if self.num == 0 or seconds < self.min:
            self.min = seconds
        self.max = max(self.max, seconds)
        self.num += 1
        self.total += seconds

    def fields(self) -> tuple[int, float, float, float]:
        return (self.num, self.min, self.max, self.total)


@dataclass
class Statistics:
    """``struct ctdb_statistics``: flat counters by Samba's (dotted) names."""

    counters: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(STAT_COUNTERS, 0)
    )
    reclock_ctdbd: LatencyCounter = field(default_factory=LatencyCounter)
    reclock_recd: LatencyCounter = field(default_factory=LatencyCounter)
    locks: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("num_calls", "num_current", "num_pending", "num_failed"), 0
        )
    )
    locks_latency: LatencyCounter = field(default_factory=LatencyCounter)
    locks_buckets: list[int] = field(default_factory=lambda: [0] * MAX_COUNT_BUCKETS)
    calls: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "total_calls",
                "pending_calls",
                "childwrite_calls",
                "pending_childwrite_calls",
                "memory_used",
                "__last_counter",
                "max_hop_count",
            ),
            0,
        )
    )
    hop_count_bucket: list[int] = field(default_factory=lambda: [0] * MAX_COUNT_BUCKETS)
    call_latency: LatencyCounter = field(default_factory=LatencyCounter)
    childwrite_latency: LatencyCounter = field(default_factory=LatencyCounter)
    num_recoveries: int = 0
    statistics_start_time: float = 0.0
    statistics_current_time: float = 0.0
    total_ro_delegations: int = 0
    total_ro_revokes: int = 0

    def bump(self, name: str, by: int = 1) -> None:
        self.counters[name] += by

    def encode(self) -> bytes:
        def tv(t: float) -> tuple[int, int]:
            sec = int(t)
            return sec, round((t - sec) * 1e6)

        values: list[int | float] = [self.counters[n] for n in STAT_COUNTERS]
        values += [*self.reclock_ctdbd.fields(), *self.reclock_recd.fields()]
        values += list(self.locks.values())
        values += [*self.locks_latency.fields(), *self.locks_buckets]
        values += list(self.calls.values())
        values += self.hop_count_bucket
        values += [*self.call_latency.fields(), *self.childwrite_latency.fields()]
        values += [self.num_recoveries]
        values += [*tv(self.statistics_start_time), *tv(self.statistics_current_time)]
        values += [self.total_ro_delegations, self.total_ro_revokes]
        return _STATISTICS.pack(*values)

    @classmethod
    def decode(cls, buf: bytes) -> Statistics:
        _need(buf, _STATISTICS.size, "statistics")
        v = list(_STATISTICS.unpack_from(buf))
        s = cls()

        def take(n: int) -> list[Any]:
            nonlocal v
            out, v = v[:n], v[n:]
            return out

        s.counters = dict(zip(STAT_COUNTERS, take(len(STAT_COUNTERS))))
        s.reclock_ctdbd = LatencyCounter(*take(4))
        s.reclock_recd = LatencyCounter(*take(4))
        s.locks = dict(zip(s.locks, take(4)))
        s.locks_latency = LatencyCounter(*take(4))
        s.locks_buckets = take(MAX_COUNT_BUCKETS)
        s.calls = dict(zip(s.calls, take(7)))
        s.hop_count_bucket = take(MAX_COUNT_BUCKETS)
        s.call_latency = LatencyCounter(*take(4))
        s.childwrite_latency = LatencyCounter(*take(4))
        (s.num_recoveries,) = take(1)
        sec, usec, sec2, usec2 = take(4)
        s.statistics_start_time = sec + usec / 1e6
        s.statistics_current_time = sec2 + usec2 / 1e6
        s.total_ro_delegations, s.total_ro_revokes = take(2)
        return s


# --- small fixed payloads -------------------------------------------------------


def encodePidSrvid(pid: int, srvid: int) -> bytes:
    """struct ctdb_pid_srvid: pid_t then u64, packed (12 bytes)."""
    return struct.pack("<iQ", pid, srvid)


def decodePidSrvid(buf: bytes) -> tuple[int, int]:
    _need(buf, 12, "pid_srvid")
    return struct.unpack_from("<iQ", buf)


def encodeBanState(pnn: int, seconds: int) -> bytes:
    return struct.pack("<II", pnn, seconds)


def decodeBanState(buf: bytes) -> tuple[int, int]:
    _need(buf, 8, "ban_state")
    return struct.unpack_from("<II", buf)
