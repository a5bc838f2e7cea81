# -*- test-case-name: tests.protocols.test_controls -*-
"""
The daemon's tunables (Samba 4.17 ctdb/common/tunable.c): their names,
defaults and orders, the L{Tunables} table, and the payloads of the
tunable controls (GET_TUNABLE, SET_TUNABLE, LIST_TUNABLES,
GET_ALL_TUNABLES).

Pure: no I/O, no Twisted import.
"""

from __future__ import annotations

import struct

from ctdb.protocols.basictypes import (
    decodeString,
    decodeU32,
    encodeString,
    encodeU32,
    need,
)

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
        need(buf, 4 * len(TUNABLES), "tunable_list")
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
    need(buf, 4 + length, "var_list")
    text = decodeString(buf[4 : 4 + length], "var_list")
    return [name for name in text.split(":") if name]


def encodeSetTunable(name: str, value: int) -> bytes:
    raw = encodeString(name)
    return struct.pack("<II", value, len(raw)) + raw


def decodeSetTunable(buf: bytes) -> tuple[str, int]:
    need(buf, 8, "tunable")
    value, namelen = struct.unpack_from("<II", buf)
    need(buf, 8 + namelen, "tunable name")
    return decodeString(buf[8 : 8 + namelen], "tunable name"), value


def encodeGetTunable(name: str) -> bytes:
    raw = encodeString(name)
    return encodeU32(len(raw)) + raw


def decodeGetTunable(buf: bytes) -> str:
    namelen = decodeU32(buf, "tunable name")
    need(buf, 4 + namelen, "tunable name")
    return decodeString(buf[4 : 4 + namelen], "tunable name")
