# -*- test-case-name: tests.takeover.test_ipalloccli -*-
"""
C{ctdb-ipalloc}: run one public-IP allocation (L{ctdb.takeover.ipalloc})
on a cluster described on the command line and on stdin, as Samba's test
program C{ctdb_takeover_tests ipalloc} does (Samba 4.17.12
``ctdb/tests/src/ctdb_takeover_tests.c`` and ``ipalloc_read_known_ips.c``),
so that Samba's ``tests/UNIT/takeover`` vectors run against it::

    ctdb-ipalloc [ipalloc] FLAGS [multi] < addresses

C{FLAGS} holds one C{NODE_FLAGS_*} value per node, in pnn order, separated
by commas (C{0,0x20,2}: node 1 stopped, node 2 unhealthy); an inactive or
disabled node may host nothing.  Each line of stdin is::

    ADDRESS [CURRENT_PNN [ALLOWED_PNN,...]]

(blanks or tabs between the fields, C{-1} for an address no node hosts).
Without an allowed list every node knows the address.  Reading stops at
the first empty line.  With C{multi}, stdin holds one block per node,
separated by empty lines: each node's own view of the addresses, without
allowed lists.

The output is one C{ADDRESS PNN} line per address (C{-1}: unassigned), in
the allocator's order; the trace goes to stderr.  The environment:

 - C{CTDB_IP_ALGORITHM}: C{det}, C{nondet} or C{lcp2} (the default);
 - C{CTDB_TEST_LOGLEVEL}: the trace's debug level, a name or a number
   (default DEBUG);
 - C{CTDB_SET_NoIPTakeover}, C{CTDB_SET_NoIPFailback}: the tunables (a
   number, non-zero for on).  Samba's program reads only the first;
 - C{CTDB_TEST_RUNSTATE}: one run state number per node, or C{1} for all
   (only a node in RUNNING, 5, may host addresses).

Errors are Samba's: a line without an address is skipped with a warning
and a bad address with an error, exit status 0 both; a wrong number of run
states or an unknown algorithm exit 1.  Where Samba's program aborts or
reads out of bounds (an allowed list in C{multi} mode, an allowed node
that does not exist), this one prints an error and exits 1.  Node flags
that are not numbers, unlike Samba's (which reads them as 0), are refused
with the usage message.  Numbers elsewhere are read as C's C{strtol}
reads them: leading digits, 0 if none.
"""

from __future__ import annotations

import io
import os
import string
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TextIO

from ctdb.errors import IPAllocInputError
from ctdb.protocols.debuglevels import (
    DEBUG_DEBUG,
    DEBUG_ERR,
    DEBUG_WARNING,
    parseDebugLevel,
)
from ctdb.protocols.nodestate import (
    NODE_FLAGS_DISABLED,
    NODE_FLAGS_INACTIVE,
    RunState,
)
from ctdb.takeover.ipalloc import (
    DETERMINISTIC,
    LCP2,
    NONDETERMINISTIC,
    allocate,
    formatAddress,
    parseAddress,
)

USAGE = """\
usage: ctdb-ipalloc [ipalloc] FLAGS [multi]
  FLAGS  one node-flags number per node, comma-separated (e.g. 0,0x20,0)
  stdin  lines "ADDRESS CURRENT_PNN [ALLOWED_PNN,...]"; with multi, one
         block per node, separated by empty lines
"""

ALGORITHMS = {"det": DETERMINISTIC, "nondet": NONDETERMINISTIC, "lcp2": LCP2}

_U32 = 0xFFFFFFFF
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_DIGITS = string.digits + string.ascii_lowercase

Trace = Callable[[int, str], None]
KnownIPs = list[list[tuple[str, int]]]


def _strtol(text: str, base: int) -> tuple[int, str]:
    """
    C's C{strtol(text, &end, base)} (base 0, 10 or 16): the value of the
    longest prefix that is a number (0 if none, clamped to a C{long}) and
    the text after it.
    """
    rest = text.lstrip(" \t\n\v\f\r")
    sign = 1
    if rest[:1] in ("+", "-"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    hexPrefix = (
        rest[:2].lower() == "0x"
        and rest[2:3] != ""
        and (rest[2].lower() in _DIGITS[:16])
    )
    if base == 0:
        base = 16 if hexPrefix else 8 if rest[:1] == "0" else 10
    if base == 16 and hexPrefix:
        rest = rest[2:]
    end = 0
    while end < len(rest) and rest[end].lower() in _DIGITS[:base]:
        end += 1
    if end == 0:
        return 0, text
    value = sign * int(rest[:end], base)
    return min(max(value, _LONG_MIN), _LONG_MAX), rest[end:]


def _cInt(value: int) -> int:
    """A C{long} cast to a 32-bit C{int}."""
    value &= _U32
    return value - (1 << 32) if value & 0x80000000 else value


class _Tokens:
    """C{strtok()} over one line: each call may name other delimiters."""

    def __init__(self, line: str) -> None:
        self._line = line
        self._position = 0

    def next(self, delimiters: str) -> str | None:
        line, start = self._line, self._position
        while start < len(line) and line[start] in delimiters:
            start += 1
        if start == len(line):
            self._position = start
            return None
        end = start
        while end < len(line) and line[end] not in delimiters:
            end += 1
        self._position = min(end + 1, len(line))
        return line[start:end]


def parseFlags(text: str) -> list[int] | None:
    """The node flags of C{FLAGS}, or C{None} if an entry is not a number
    (C{strtol} base 0: decimal, C{0x} hex or C{0} octal) or there is none."""
    flags = []
    for token in text.split(","):
        if token == "":
            continue  # strtok() skips empty fields
        value, rest = _strtol(token, 0)
        if rest or token[:1].isspace():
            return None
        flags.append(value & _U32)
    return flags or None


def _readBlock(
    lines: Iterator[str],
    numNodes: int,
    multi: bool,
    known: KnownIPs,
    trace: Trace,
) -> list[tuple[str, int]]:
    """
    C{read_ctdb_public_ip_info_node}: read lines up to an empty one.

    @return: the addresses read, each with its current pnn; without
        C{multi}, each is also added to the lists in C{known} of the nodes
        allowed to host it.
    """
    mine: list[tuple[str, int]] = []
    for raw in lines:
        line = raw.removesuffix("\n")
        if line == "":
            break
        tokens = _Tokens(line)
        first = tokens.next(" \t")
        if first is None:
            trace(DEBUG_WARNING, f"WARNING, bad line ignored :{line}")
            continue
        try:
            address = parseAddress(first)
        except ValueError:
            trace(DEBUG_ERR, f"ERROR, bad address :{first}")
            continue
        pnnText = tokens.next(" \t")
        pnn = -1 if pnnText is None else _cInt(_strtol(pnnText, 10)[0])
        entry = (address.compressed, pnn)
        mine.append(entry)
        allowed = tokens.next(" \t#")
        if allowed is None:
            if not multi:
                for ips in known:
                    ips.append(entry)
            continue
        if multi:
            raise IPAllocInputError("ERROR, bad token")
        for part in allowed.split(","):
            if part == "":
                continue
            node = _cInt(_strtol(part, 10)[0])
            if not 0 <= node < numNodes:
                raise IPAllocInputError(f"ERROR, bad node :{part}")
            known[node].append(entry)
    return mine


def readKnownIPs(
    lines: Iterator[str], numNodes: int, multi: bool, trace: Trace
) -> KnownIPs:
    """
    C{ipalloc_read_known_ips}: each node's known addresses, from one block
    of lines (allowed lists say which nodes know each address) or, with
    C{multi}, from one block per node.

    @raise IPAllocInputError: an allowed list in C{multi} mode, or a node in an
        allowed list that does not exist.
    """
    known: KnownIPs = [[] for _ in range(numNodes)]
    if multi:
        for node in range(numNodes):
            known[node] = _readBlock(lines, numNodes, multi, known, trace)
    else:
        _readBlock(lines, numNodes, multi, known, trace)
    return known


def _tunable(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name)
    return value is not None and _strtol(value, 0)[0] & _U32 != 0


def _runStates(environ: Mapping[str, str], numNodes: int) -> list[int] | None:
    """C{get_runstate}: each node's run state, or C{None} if the list has
    the wrong length."""
    value = environ.get("CTDB_TEST_RUNSTATE")
    if value is None:
        return [RunState.RUNNING] * numNodes
    if value == "1":
        return [1] * numNodes
    states = [_strtol(t, 0)[0] & _U32 for t in value.split(",") if t]
    return states if len(states) == numNodes else None


def run(
    argv: Sequence[str],
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
    environ: Mapping[str, str],
) -> int:
    """The program, on the given streams and environment; the exit status."""
    levelText = environ.get("CTDB_TEST_LOGLEVEL")
    level = parseDebugLevel(levelText) if levelText is not None else None
    if level is None:
        level = DEBUG_DEBUG

    def trace(messageLevel: int, message: str) -> None:
        if messageLevel <= level:
            stderr.write(message + "\n")

    args = list(argv)
    if args[:1] == ["ipalloc"]:
        args = args[1:]
    if args in (["-h"], ["--help"]):
        stdout.write(USAGE)
        return 0
    multi = len(args) == 2 and args[1] == "multi"
    flags = parseFlags(args[0]) if len(args) == 1 or multi else None
    if flags is None:
        stderr.write(USAGE)
        return 1
    numNodes = len(flags)

    name = environ.get("CTDB_IP_ALGORITHM")
    if name is not None and name not in ALGORITHMS:
        trace(DEBUG_ERR, f"ERROR: unknown IP algorithm {name}")
        return 1
    algorithm = LCP2 if name is None else ALGORITHMS[name]

    try:
        known = readKnownIPs(iter(stdin.readline, ""), numNodes, multi, trace)
    except IPAllocInputError as e:
        trace(DEBUG_ERR, str(e))
        return 1
    states = _runStates(environ, numNodes)
    if states is None:
        stderr.write("ERROR: Wrong number of values in CTDB_TEST_RUNSTATE\n")
        return 1
    available = [
        known[node]
        if states[node] == RunState.RUNNING
        and not flags[node] & (NODE_FLAGS_INACTIVE | NODE_FLAGS_DISABLED)
        else []
        for node in range(numNodes)
    ]

    result = allocate(
        numNodes,
        known,
        available,
        algorithm=algorithm,
        noIPTakeover=_tunable(environ, "CTDB_SET_NoIPTakeover"),
        noIPFailback=_tunable(environ, "CTDB_SET_NoIPFailback"),
        log=trace,
        logLevel=level,
    )
    stdout.writelines(
        f"{formatAddress(parseAddress(ip.address))} {ip.pnn}\n" for ip in result
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The console script C{ctdb-ipalloc}."""
    stdin: TextIO = sys.stdin
    if hasattr(stdin, "buffer"):
        # undecodable bytes make a bad address, not a traceback
        stdin = io.TextIOWrapper(stdin.buffer, encoding="utf-8", errors="replace")
    return run(
        sys.argv[1:] if argv is None else argv,
        stdin,
        sys.stdout,
        sys.stderr,
        os.environ,
    )


if __name__ == "__main__":
    sys.exit(main())
