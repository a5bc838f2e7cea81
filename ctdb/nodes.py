# -*- test-case-name: tests.test_nodes -*-
"""
The nodes file, as Samba's ``conf/node.c`` reads it: one address per line,
``#`` starting a comment; a line that is only ``#`` (or starts with ``#``
followed by nothing but a comment) marks a deleted node and keeps its PNN.
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


def parseNodes(text: str, source: str = "nodes") -> NodeMap:
    """
    Parse nodes-file text.  As ctdbd: blank lines are skipped; a line whose
    first non-blank character is ``#`` is a deleted node (PNN kept); text after
    an address is ignored if it starts with ``#``.
    """
    entries: list[NodeEntry] = []
    seen: set[str] = set()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            entries.append(NodeEntry(len(entries), "0.0.0.0", True))
            continue
        words = line.split("#", 1)[0].split()
        if len(words) != 1:
            raise ConfigError(f"{source}:{lineno}: invalid node line {line!r}")
        addrText = words[0]
        try:
            addr = ipaddress.ip_address(addrText)
        except ValueError:
            raise ConfigError(
                f"{source}:{lineno}: invalid node address {addrText!r}"
            ) from None
        canonical = str(addr)
        if canonical in seen:
            raise ConfigError(f"{source}:{lineno}: duplicate node address {canonical}")
        seen.add(canonical)
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
