# -*- test-case-name: tests.test_nodes -*-
"""
The nodes file, read as Samba 4.17's ``ctdb_read_nodes_file``
(common/ctdb_util.c) reads it: one address per line, leading and trailing
blanks and tabs ignored, blank lines skipped, and a line that starts with
``#`` is a *deleted* node: it keeps its PNN (so later nodes keep theirs) and
gets the address 0.0.0.0.  There are no other comments: anything after the
address makes the line invalid, as it does for ctdbd.

One deliberate difference: ctdbd accepts the same address twice and then
misbehaves; we refuse it with a L{ConfigError}.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ctdb.errors import ConfigError


@dataclass(frozen=True, slots=True)
class NodeEntry:
    pnn: int
    address: str  # "0.0.0.0" for a deleted node, as ctdbd
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class NodeMap:
    nodes: tuple[NodeEntry, ...]

    def __len__(self) -> int:
        return len(self.nodes)

    def active(self) -> list[NodeEntry]:
        return [n for n in self.nodes if not n.deleted]

    def byAddress(self, address: str) -> NodeEntry | None:
        for n in self.nodes:
            if not n.deleted and n.address == address:
                return n
        return None


def parseAddress(text: str) -> str | None:
    """
    A node address as ctdb_sock_addr_from_string (without port) parses it:
    dotted-quad IPv4, or IPv6 (optionally in brackets, no scope id); an
    IPv4-mapped IPv6 address is the IPv4 address.  Returns the canonical
    text, or None if C{text} is not an address.
    """
    if ":" not in text:
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            return None
    if len(text) >= 2 and text[0] == "[" and text[-1] == "]":
        text = text[1:-1]
    if "%" in text:
        return None  # inet_pton has no scope ids
    try:
        addr = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def parseNodes(text: str, source: str = "nodes") -> NodeMap:
    """
    Parse nodes-file text; errors name C{source} and the line number.
    """
    entries: list[NodeEntry] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.split("\n"), 1):
        # file_lines_load turns every CR into a NUL: the line ends there.
        line = raw.split("\r", 1)[0].split("\0", 1)[0].strip(" \t")
        if not line:
            continue
        if line.startswith("#"):
            entries.append(NodeEntry(len(entries), "0.0.0.0", True))
            continue
        canonical = parseAddress(line)
        if canonical is None:
            raise ConfigError(f"{source}:{lineno}: invalid node address {line!r}")
        if canonical in seen:
            raise ConfigError(
                f"{source}:{lineno}: duplicate node address {canonical}"
                f" (also on line {seen[canonical]})"
            )
        seen[canonical] = lineno
        entries.append(NodeEntry(len(entries), canonical))
    if not any(not e.deleted for e in entries):
        raise ConfigError(f"{source}: no nodes")
    return NodeMap(tuple(entries))


def readNodesFile(path: str) -> NodeMap:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read nodes file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"nodes file {path} is not text") from None
    return parseNodes(text, path)
