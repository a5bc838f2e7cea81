# -*- test-case-name: tests.test_config -*-
"""
C{public_addresses}, read as Samba 4.17's ctdbd reads it
(C{ctdb_set_public_addresses}, C{server/ctdb_takeover.c}).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ctdb.config.messages import ERR, NOTICE, WARNING, Message
from ctdb.config.paths import CTDBPaths
from ctdb.errors import ConfigLoadError


@dataclass(frozen=True)
class PublicAddress:
    """One line of ``public_addresses``: ADDRESS/MASK IFACE[,IFACE...]."""

    address: str
    mask: int
    interfaces: tuple[str, ...]


def parseAddressMask(text: str) -> tuple[str, int] | None:
    """
    ctdb_sock_addr_mask_from_string: ADDRESS/BITS (IPv6 possibly in
    brackets; an IPv4-mapped IPv6 address is its IPv4 address) and a
    decimal mask, which 4.17 does not check against the address family.
    None if it does not parse.
    """
    if len(text.encode()) >= 64:
        return None
    addrText, slash, maskText = text.rpartition("/")
    if not slash or not maskText.isdigit() or not maskText.isascii():
        return None
    mask = int(maskText)
    if mask > 0xFFFFFFFF:
        return None
    if ":" in addrText and addrText.startswith("[") and addrText.endswith("]"):
        addrText = addrText[1:-1]
    if "%" in addrText:
        return None
    try:
        addr = ipaddress.ip_address(addrText)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped), mask
    return addr.compressed, mask


def parsePublicAddresses(text: str) -> tuple[list[PublicAddress], list[Message]]:
    """
    ctdb_set_public_addresses (server/ctdb_takeover.c): blank lines and
    ``#`` comments are skipped; the address/mask and the comma-separated
    interfaces are the first two words (split at spaces and tabs only);
    a line without an interface, or whose address/mask does not parse,
    makes the whole file (and ctdbd) fail.  Interfaces that do not exist
    and duplicate addresses are refused later, by the node
    (L{ctdb.takeover.node}).
    """
    out: list[PublicAddress] = []
    lines = text.split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    for number, raw in enumerate(lines, 1):
        line = raw.lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        words = [w for w in re.split("[ \t]+", line) if w]
        if len(words) < 2:
            return [], [
                Message(
                    ERR,
                    f"No interface specified at line {number} of public addresses file",
                )
            ]
        parsed = parseAddressMask(words[0])
        if parsed is None:
            return [], [
                Message(ERR, f"Badly formed line {number} in public address list")
            ]
        address, mask = parsed
        ifaces = tuple(i for i in words[1].split(",") if i)
        out.append(PublicAddress(address, mask, ifaces))
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
    return addresses, [Message(NOTICE, f"Loaded public addresses from {path}")]


def addressesFromFile(path: str) -> list[PublicAddress]:
    """The addresses of C{path} (a missing file is none, as ctdbd), for a
    node that reads the file at start and again for C{ctdb reloadips}.

    @raise ConfigLoadError: with ctdbd's messages, if it cannot be read or
        a line is bad.
    """
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise ConfigLoadError(
            [Message(ERR, f"Failed to load public address list '{path}'")]
        ) from e
    addresses, msgs = parsePublicAddresses(text)
    if msgs:
        raise ConfigLoadError(msgs)
    return addresses
