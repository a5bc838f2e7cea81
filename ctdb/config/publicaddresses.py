# -*- test-case-name: tests.test_config -*-
"""
C{public_addresses}, read as Samba 4.17's ctdbd reads it
(C{ctdb_set_public_addresses}, C{server/ctdb_takeover.c}).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ctdb.config.messages import ERR, WARNING, Message
from ctdb.config.paths import CTDBPaths


@dataclass(frozen=True)
class PublicAddress:
    """One line of ``public_addresses``: ADDRESS/MASK IFACE[,IFACE...]."""

    address: str
    mask: int
    interfaces: tuple[str, ...]


def parsePublicAddresses(text: str) -> tuple[list[PublicAddress], list[Message]]:
    """
    ctdb_set_public_addresses (server/ctdb_takeover.c): blank lines and
    ``#`` comments are skipped; a line without an interface, or whose
    address/mask does not parse, makes the whole file (and ctdbd) fail.
    """
    out: list[PublicAddress] = []
    lines = text.split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    for number, raw in enumerate(lines, 1):
        line = raw.lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if len(words) < 2:
            return [], [
                Message(
                    ERR,
                    f"No interface specified at line {number} of public addresses file",
                )
            ]
        addrText, _, maskText = words[0].partition("/")
        try:
            addr = ipaddress.ip_address(addrText)
            mask = int(maskText)
            if not maskText or mask < 0 or mask > addr.max_prefixlen:
                raise ValueError(maskText)
        except ValueError:
            return [], [
                Message(ERR, f"Badly formed line {number} in public address list")
            ]
        ifaces = tuple(i for i in words[1].split(",") if i)
        if not ifaces:
            return [], [
                Message(
                    ERR,
                    f"No interface specified at line {number} of public addresses file",
                )
            ]
        out.append(PublicAddress(str(addr), mask, ifaces))
    return out, []


def loadPublicAddresses(paths: CTDBPaths) -> tuple[list[PublicAddress], list[Message]]:
    """The node's public addresses; a missing file is a warning, as ctdbd."""
    path = paths.publicAddressesFile
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except FileNotFoundError:
        return [], [Message(WARNING, f"Not loading public addresses, no file {path}")]
    except OSError:
        return [], [Message(ERR, f"Failed to load public address list '{path}'")]
    addresses, msgs = parsePublicAddresses(text)
    if msgs:
        msgs.append(Message(ERR, "Unable to setup public IP addresses"))
    return addresses, msgs
