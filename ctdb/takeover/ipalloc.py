# -*- test-case-name: tests.takeover.test_ipalloc -*-
"""
Public-IP allocation: which node should host each public address, as
Samba 4.17.12's ``ctdb/server/ipalloc*.c`` computes it for a takeover run.

The input is what the takeover helper gathers with GET_PUBLIC_IPS: for each
node, the addresses it knows (with the node it believes hosts each), and
the addresses it may host now (the ONLY_AVAILABLE answer, empty for a node
that is inactive, disabled or not yet running).  L{allocate} merges the
known lists (C{create_merged_ip_list}), marks where each address is known
and available (C{populate_bitmap}) and runs one of the three algorithms of
the C{IPAllocAlgorithm} tunable:

 - L{DETERMINISTIC}: address number I goes to node I modulo the node count,
   then what that node cannot host goes to the least loaded node that can;
 - L{NONDETERMINISTIC}: addresses stay where they are if they can, the
   unassigned go to the least loaded node, then the nodes' address counts
   are evened out (C{basic_failback});
 - L{LCP2} (the default): addresses stay where they are if they can; the
   unassigned, then moves onto nodes newly able to host, are chosen to keep
   the addresses on each node as far apart as possible (the "longest common
   prefix squared" imbalance of C{ipalloc_lcp2.c}).

The tunable NoIPHostOnAllDisabled is obsolete in 4.17 (nothing in
``ipalloc*.c`` reads it), so it is not an input here.

The trace that ctdbd writes at each debug level is handed, line by line, to
an optional C{log(level, message)} callable, word for word as Samba's, so
that the CLI (L{ctdb.takeover.ipalloccli}) reproduces Samba's test vectors.

Pure: no I/O, no clock, no Twisted import.

The C code recomputes every sum of squared distances from scratch; this
port keeps, for each node, the sum for every address (C{_Lcp2.dsum}) and
updates it when an address lands on or leaves the node, which gives the
same numbers with far fewer operations.  All imbalance arithmetic is done
modulo 2**32, as C{uint32_t} is.
"""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ctdb.protocols.debuglevels import (
    DEBUG_DEBUG,
    DEBUG_ERR,
    DEBUG_INFO,
    DEBUG_NOTICE,
    DEBUG_WARNING,
)

__all__ = [
    "DETERMINISTIC",
    "LCP2",
    "NONDETERMINISTIC",
    "UNASSIGNED",
    "AllocatedIP",
    "allocate",
    "canHostIPs",
    "formatAddress",
    "parseAddress",
]

#: the values of the IPAllocAlgorithm tunable (enum ipalloc_algorithm);
#: any other value means LCP2, as in ctdb_takeover_helper.c
DETERMINISTIC, NONDETERMINISTIC, LCP2 = 0, 1, 2

#: the owner of an address no node hosts (CTDB_UNKNOWN_PNN, as a signed int)
UNASSIGNED = -1

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Log = Callable[[int, str], None]

_U32 = 0xFFFFFFFF
#: Added to a node's sum for an address to take it out of the node's choice.
#: A sum of squared distances is below 2**14 * (number of addresses): it
#: cannot reach 2**32 (and so wraps nowhere that ctdb's uint32_t would)
#: before 2**18 addresses, or _NEVER before 2**26.
_NEVER = 1 << 40
_SUMS = _NEVER - 1
#: d * d for every distance d that ip_distance() can return (0-128)
_SQUARES = tuple(d * d for d in range(129))
#: the square of 128 - b for every bit length b of a 128-bit XOR
_BY_BIT_LENGTH = _SQUARES[::-1]
#: the source locations Samba's messages carry (__location__, as the 4.17.12
#: build of Debian's ctdb spells them)
_LOC_COMMON = "../../ctdb/server/ipalloc_common.c:110"
_LOC_NONDET = "../../ctdb/server/ipalloc_nondeterministic.c:96"
_LOC_LCP2 = "../../ctdb/server/ipalloc_lcp2.c:183"
_RULE = " ----------------------------------------"


@dataclass(frozen=True, slots=True)
class AllocatedIP:
    """One public address of the merged list and the node it goes to."""

    #: the address, as C{ipaddress.ip_address(...).compressed} spells it
    address: str
    #: the node that should host it, or L{UNASSIGNED}
    pnn: int
    #: the nodes that know the address (configured in their public_addresses)
    knownOn: frozenset[int]
    #: the nodes that may host it now
    availableOn: frozenset[int]


def parseAddress(text: str) -> Address:
    """
    An address as ctdb reads one (C{ctdb_sock_addr_from_string} without a
    port): dotted IPv4, or IPv6 (possibly in brackets).  An IPv4-mapped
    IPv6 address becomes the IPv4 address written after its last colon.

    @raise ValueError: C{text} is not such an address.
    """
    address: Address
    try:
        if ":" not in text:
            return ipaddress.IPv4Address(text)
        inner = text
        if len(inner) >= 2 and inner[0] == "[" and inner[-1] == "]":
            inner = inner[1:-1]
        if "%" in inner:
            # inet_pton() takes no zone index
            raise ValueError(inner)
        address = ipaddress.IPv6Address(inner)
        if address.ipv4_mapped is not None:
            # ctdb parses the text after the last colon again, as IPv4, so
            # "::ffff:102:304" is refused while "::ffff:1.2.3.4" is not
            return ipaddress.IPv4Address(inner.rsplit(":", 1)[1])
        return address
    except ValueError:
        raise ValueError(f"not an IPv4 or IPv6 address: {text!r}") from None


def formatAddress(address: Address) -> str:
    """
    C{address} as ctdb prints it (glibc's C{inet_ntop}): C{ipaddress}'s
    compressed form, except that an IPv4-compatible IPv6 address (the first
    96 bits zero, the next 16 not) or an IPv4-mapped one ends in dotted
    IPv4.
    """
    if address.version == 6:
        if 0xFFFF < int(address) < (1 << 32):
            return "::" + str(ipaddress.IPv4Address(int(address)))
        if address.ipv4_mapped is not None:
            return f"::ffff:{address.ipv4_mapped}"
    return address.compressed


def _signed(value: int) -> str:
    """A C{uint32_t} printed with C{%d}."""
    value &= _U32
    return str(value - (1 << 32) if value & 0x80000000 else value)


def _distanceRow(keys: Sequence[int], index: int, wide: bool) -> list[int]:
    """
    The squared C{ip_distance()} from address C{index} to every address
    (0 to itself, which ctdb never measures).

    ip_distance() adds up, for each of the four 32-bit words of the two
    keys, 32 if the words are equal, else the leading zeros of their XOR:
    it does not stop at the first word that differs.  That is 128 less
    the bit lengths of the four words of the XOR.  When every key fits in
    32 bits (IPv4) only the last word can differ.
    """
    mine = keys[index]
    if wide:
        row = []
        for key in keys:
            x = mine ^ key
            bits = (
                (x >> 96).bit_length()
                + ((x >> 64) & _U32).bit_length()
                + ((x >> 32) & _U32).bit_length()
                + (x & _U32).bit_length()
            )
            row.append(_SQUARES[128 - bits])
    else:
        # (map() keeps the loop in C: this is most of the cost of LCP2)
        row = list(
            map(
                _BY_BIT_LENGTH.__getitem__,
                map(int.bit_length, map(mine.__xor__, keys)),
            )
        )
    row[index] = 0
    return row


class _Allocation:
    """
    struct ipalloc_state and the merged list: the addresses in list order
    (descending key), their owners, and where each may be hosted.
    """

    def __init__(
        self,
        numNodes: int,
        addresses: list[Address],
        owners: list[int],
        hostable: list[list[bool]],
        *,
        noIPTakeover: bool,
        noIPFailback: bool,
        log: Log | None,
        logLevel: int,
    ) -> None:
        self.numNodes = numNodes
        self.addresses = addresses
        self.keys = [int(a) for a in addresses]
        self.owners = owners
        #: hostable[node][i]: address i is in node's available list
        self.hostable = hostable
        self.noIPTakeover = noIPTakeover
        self.noIPFailback = noIPFailback
        self._logFunction = log
        self._logLevel = logLevel if log is not None else -1
        self.coverage = [0] * numNodes
        for owner in owners:
            if owner != UNASSIGNED:
                self.coverage[owner] += 1

    # -- logging ---------------------------------------------------------

    def wants(self, level: int) -> bool:
        """Whether messages of C{level} are to be built at all."""
        return level <= self._logLevel

    def log(self, level: int, message: str) -> None:
        if self._logFunction is not None and level <= self._logLevel:
            self._logFunction(level, message)

    def text(self, index: int) -> str:
        return formatAddress(self.addresses[index])

    # -- ipalloc_common.c --------------------------------------------------

    def canTakeover(self, node: int, index: int) -> bool:
        """can_node_takeover_ip"""
        return not self.noIPTakeover and self.hostable[node][index]

    def assign(self, index: int, node: int) -> None:
        old = self.owners[index]
        if old != UNASSIGNED:
            self.coverage[old] -= 1
        if node != UNASSIGNED:
            self.coverage[node] += 1
        self.owners[index] = node

    def unassignUnsuitable(self) -> None:
        """unassign_unsuitable_ips: drop owners that may not host."""
        for index, owner in enumerate(self.owners):
            if owner != UNASSIGNED and not self.hostable[owner][index]:
                self.log(DEBUG_DEBUG, f"Unassign IP: {self.text(index)} from {owner}")
                self.assign(index, UNASSIGNED)

    def findTakeoverNode(self, index: int) -> bool:
        """find_takeover_node: the first least loaded node that may take
        address C{index} gets it."""
        best = UNASSIGNED
        least = 0
        for node in range(self.numNodes):
            if not self.canTakeover(node, index):
                continue
            count = self.coverage[node]
            if best == UNASSIGNED or count < least:
                best, least = node, count
        if best == UNASSIGNED:
            self.log(
                DEBUG_WARNING,
                f"{_LOC_COMMON} Could not find node to take over public address"
                f" '{self.text(index)}'",
            )
            return False
        self.assign(index, best)
        return True

    def basicAllocateUnassigned(self) -> None:
        """basic_allocate_unassigned"""
        for index in range(len(self.owners)):
            if self.owners[index] == UNASSIGNED and not self.findTakeoverNode(index):
                self.log(
                    DEBUG_WARNING, f"Failed to find node to cover ip {self.text(index)}"
                )

    # -- ipalloc_deterministic.c -------------------------------------------

    def deterministic(self) -> None:
        self.log(
            DEBUG_NOTICE, "Deterministic IPs enabled. Resetting all ip allocations"
        )
        for index in range(len(self.owners)):
            self.assign(index, index % self.numNodes)
        if self.noIPFailback:
            self.log(
                DEBUG_WARNING,
                "WARNING: 'NoIPFailback' set but ignored - "
                "incompatible with 'Deterministic IPs",
            )
        self.unassignUnsuitable()
        self.basicAllocateUnassigned()

    # -- ipalloc_nondeterministic.c ----------------------------------------

    def nondeterministic(self) -> None:
        numIPs = len(self.owners)
        self.unassignUnsuitable()
        self.basicAllocateUnassigned()
        if not self.noIPFailback:
            self._basicFailback(numIPs)

    def _basicFailback(self, numIPs: int) -> None:
        """
        basic_failback: while some address could go to a node with at least
        two fewer addresses than the busiest node that could host it, hand
        the busiest node's first address to the least loaded node, and
        start over; at most C{numIPs + 5} times.
        """
        retries = 0
        restart = True
        while restart:
            restart = False
            for index, owner in enumerate(self.owners):
                if owner == UNASSIGNED:
                    continue
                maxNode = minNode = UNASSIGNED
                maxNum = minNum = 0
                for node in range(self.numNodes):
                    if not self.canTakeover(node, index):
                        continue
                    count = self.coverage[node]
                    if maxNode == UNASSIGNED or count > maxNum:
                        maxNode, maxNum = node, count
                    if minNode == UNASSIGNED or count < minNum:
                        minNode, minNum = node, count
                if maxNode == UNASSIGNED:
                    self.log(
                        DEBUG_WARNING,
                        f"{_LOC_NONDET} Could not find maxnode. May not be able to"
                        f" serve ip '{self.text(index)}'",
                    )
                    continue
                if maxNum > minNum + 1 and retries < numIPs + 5:
                    victim = self.owners.index(maxNode)
                    self.findTakeoverNode(victim)
                    retries += 1
                    restart = True
                    break


class _Lcp2:
    """
    ipalloc_lcp2.c over an L{_Allocation}.

    C{dsum[node][i]} is ip_distance_2_sum(address i, node): the sum of the
    squared distances from address i to every other address on C{node}.
    C{imbalance[node]} is the C{lcp2_imbalances} array, updated as ctdb
    updates it.
    """

    def __init__(self, state: _Allocation, forceRebalance: Iterable[int]) -> None:
        self.state = state
        numNodes = state.numNodes
        size = len(state.keys)
        self._wide = any(key >> 32 for key in state.keys)
        self.dsum = [[0] * size for _ in range(numNodes)]
        for index, owner in enumerate(state.owners):
            if owner != UNASSIGNED:
                self._add(owner, self._row(index))
        # lcp2_imbalance: each pair of addresses on the node once
        self.imbalance = [
            (
                sum(
                    self.dsum[node][index]
                    for index, owner in enumerate(state.owners)
                    if owner == node
                )
                // 2
            )
            & _U32
            for node in range(numNodes)
        ]
        # Nodes that host nothing are the only ones that gain addresses in
        # the rebalancing, unless forced.
        self.candidates = [True] * numNodes
        for owner in state.owners:
            if owner != UNASSIGNED:
                self.candidates[owner] = False
        for pnn in forceRebalance:
            pnn &= _U32
            if pnn >= numNodes:
                state.log(DEBUG_ERR, f"{_LOC_LCP2}unknown node {pnn}")
                continue
            state.log(DEBUG_NOTICE, f"Forcing rebalancing of IPs to node {pnn}")
            self.candidates[pnn] = True

    def _row(self, index: int) -> list[int]:
        # Not kept: N rows of N would be the only quadratic memory here.
        return _distanceRow(self.state.keys, index, self._wide)

    def _add(self, node: int, row: list[int]) -> None:
        """Count the address whose distance row is C{row} into C{node}'s sums."""
        self.dsum[node] = list(map(operator.add, self.dsum[node], row))

    def run(self) -> None:
        """ipalloc_lcp2 after unassign_unsuitable_ips and lcp2_init."""
        self.allocateUnassigned()
        if self.state.noIPFailback or not any(self.candidates):
            return
        self.failback()

    # -- lcp2_allocate_unassigned --------------------------------------------

    def allocateUnassigned(self) -> None:
        """
        Repeatedly give the unassigned address that costs least on some
        node to that node.  The first (address in list order, then node)
        of the cheapest pairs wins, as in the C loop with its strict '<'.

        Meanwhile each node's C{dsum} has L{_NEVER} added to the entries of
        the addresses it may not take (or that are assigned), so that the
        first smallest entry is the node's best pair (C{best}, -1 if none).
        An assignment changes one node's sums and takes one address out of
        every node's choice.
        """
        state = self.state
        owners = state.owners
        numNodes = state.numNodes
        dsum = self.dsum
        for node in range(numNodes):
            dsum[node] = [
                value
                if owners[i] == UNASSIGNED and state.canTakeover(node, i)
                else value + _NEVER
                for i, value in enumerate(dsum[node])
            ]
        best = [self._first(column) for column in dsum]
        debug = state.wants(DEBUG_DEBUG)
        while True:
            if debug:
                state.log(DEBUG_DEBUG, _RULE)
                state.log(DEBUG_DEBUG, " CONSIDERING MOVES (UNASSIGNED)")
                self._traceUnassigned()
                state.log(DEBUG_DEBUG, _RULE)
            choice = min(
                (
                    (dsum[node][best[node]], best[node], node)
                    for node in range(numNodes)
                    if best[node] >= 0
                ),
                default=None,
            )
            if choice is not None:
                cost, index, node = choice
                state.assign(index, node)
                self.imbalance[node] = (self.imbalance[node] + cost) & _U32
                state.log(
                    DEBUG_INFO, f" {state.text(index)} -> {node} [+{_signed(cost)}]"
                )
                for other in range(numNodes):
                    column = dsum[other]
                    if column[index] < _NEVER:
                        column[index] += _NEVER
                        if best[other] == index:
                            best[other] = self._first(column)
                self._add(node, self._row(index))
                best[node] = self._first(dsum[node])
            if choice is None or UNASSIGNED not in owners:
                break
        self.dsum = [[value & _SUMS for value in column] for column in dsum]
        for index, owner in enumerate(owners):
            if owner == UNASSIGNED:
                state.log(
                    DEBUG_WARNING,
                    f"Failed to find node to cover ip {state.text(index)}",
                )

    @staticmethod
    def _first(column: list[int]) -> int:
        """The position of the first smallest sum, or -1 if none."""
        least = min(column, default=_NEVER)
        return -1 if least >= _NEVER else column.index(least)

    def _traceUnassigned(self) -> None:
        state = self.state
        for index, owner in enumerate(state.owners):
            if owner != UNASSIGNED:
                continue
            for node in range(state.numNodes):
                if state.canTakeover(node, index):
                    state.log(
                        DEBUG_DEBUG,
                        f" {state.text(index)} -> {node}"
                        f" [+{_signed(self.dsum[node][index])}]",
                    )

    # -- lcp2_failback -----------------------------------------------------

    def failback(self) -> None:
        """
        Take the nodes from most to least imbalanced (a stable sort, as
        glibc's qsort is for this array) and make the first improving move
        off the first node that has one; repeat until no node has one.
        """
        state = self.state
        nodes = range(state.numNodes)
        while True:
            if state.wants(DEBUG_DEBUG):
                state.log(DEBUG_DEBUG, "+" * 41)
                state.log(DEBUG_DEBUG, "Selecting most imbalanced node from:")
                for node in nodes:
                    state.log(DEBUG_DEBUG, f" {node} [{_signed(self.imbalance[node])}]")
            order = sorted(nodes, key=lambda node: -self.imbalance[node])
            for node in order:
                if self.imbalance[node] == 0:
                    return
                if self.failbackCandidate(node):
                    break
            else:
                return

    def failbackCandidate(self, src: int) -> bool:
        """
        lcp2_failback_candidate: of the moves of an address on C{src} to a
        rebalance candidate that lower the address's cost and leave the
        destination below C{src}'s imbalance, make the one with the least
        new src + destination imbalance: the first such in (address, node)
        order, as the C loop's strict '<' picks.
        """
        state = self.state
        imbalance = self.imbalance
        srcImbalance = imbalance[src]
        srcSums = self.dsum[src]
        targets = [
            node
            for node in range(state.numNodes)
            if self.candidates[node] and not state.noIPTakeover
        ]
        positions = [i for i, owner in enumerate(state.owners) if owner == src]
        costs = [srcSums[i] & _U32 for i in positions]
        remains = [(srcImbalance - cost) & _U32 for cost in costs]
        if state.wants(DEBUG_DEBUG):
            self._traceMoves(src, targets, positions, costs)
        found: tuple[int, int, int] | None = None  # total, position, dst
        for dst in targets:
            hosts = state.hostable[dst]
            sums = self.dsum[dst]
            base = imbalance[dst]
            totals = [
                (remain + dstImbalance) & _U32
                if hosts[i] and dstImbalance < srcImbalance and sums[i] < cost
                else _NEVER
                for i, cost, remain in zip(positions, costs, remains)
                for dstImbalance in ((base + sums[i]) & _U32,)
            ]
            total = min(totals, default=_NEVER)
            if total != _NEVER:
                candidate = (total, totals.index(total), dst)
                if found is None or candidate < found:
                    found = candidate
        if found is None:
            return False
        _total, position, dst = found
        index = positions[position]
        srcAfter = remains[position]
        dstAfter = (imbalance[dst] + self.dsum[dst][index]) & _U32
        state.log(
            DEBUG_INFO,
            f"{src} [{_signed(srcAfter - srcImbalance)}] -> {state.text(index)}"
            f" -> {dst} [+{_signed(dstAfter - imbalance[dst])}]",
        )
        imbalance[src] = srcAfter
        imbalance[dst] = dstAfter
        state.assign(index, dst)
        row = self._row(index)
        self.dsum[src] = list(map(operator.sub, self.dsum[src], row))
        self._add(dst, row)
        return True

    def _traceMoves(
        self, src: int, targets: list[int], positions: list[int], costs: list[int]
    ) -> None:
        """The DEBUG lines of lcp2_failback_candidate: every move weighed."""
        state = self.state
        state.log(DEBUG_DEBUG, _RULE)
        state.log(
            DEBUG_DEBUG,
            f" CONSIDERING MOVES FROM {src} [{_signed(self.imbalance[src])}]",
        )
        for index, cost in zip(positions, costs):
            for dst in targets:
                if state.hostable[dst][index]:
                    state.log(
                        DEBUG_DEBUG,
                        f" {src} [{_signed(-cost)}] -> {state.text(index)}"
                        f" -> {dst} [+{_signed(self.dsum[dst][index])}]",
                    )
        state.log(DEBUG_DEBUG, _RULE)


def _identity(address: Address) -> int:
    """An integer that tells addresses apart as ctdb_sock_addr_same_ip
    does: the key, with the family above it."""
    return int(address) | (address.version == 6) << 128


def _checkNodes(
    numNodes: int,
    known: Sequence[Sequence[tuple[str, int]]],
    available: Sequence[Sequence[tuple[str, int]]],
) -> None:
    if numNodes < 0:
        raise ValueError(f"negative node count {numNodes}")
    for name, lists in (("known", known), ("available", available)):
        if len(lists) != numNodes:
            raise ValueError(
                f"{name} has {len(lists)} address lists for {numNodes} nodes"
            )


def allocate(
    numNodes: int,
    known: Sequence[Sequence[tuple[str, int]]],
    available: Sequence[Sequence[tuple[str, int]]],
    *,
    algorithm: int = LCP2,
    noIPTakeover: bool = False,
    noIPFailback: bool = False,
    forceRebalance: Iterable[int] = (),
    log: Log | None = None,
    logLevel: int = DEBUG_DEBUG,
) -> list[AllocatedIP]:
    """
    C{ipalloc()}: the public addresses of the cluster and the node each
    should be hosted on.

    @param numNodes: the number of nodes (the node map's size).
    @param known: for each node (by pnn), its GET_PUBLIC_IPS answer: the
        addresses it is configured with, each with the node it says hosts
        it.  An address counts as hosted only on a node that says it hosts
        it itself.
    @param available: for each node, its GET_PUBLIC_IPS ONLY_AVAILABLE
        answer, C{[]} for a node that may not host addresses (inactive,
        disabled, or not yet running).  Only the addresses matter.
    @param algorithm: the IPAllocAlgorithm tunable; a value other than
        L{DETERMINISTIC} and L{NONDETERMINISTIC} means L{LCP2}.
    @param noIPTakeover: the NoIPTakeover tunable: no address moves to
        another node, and unassigned ones stay unassigned.
    @param noIPFailback: the NoIPFailback tunable: no rebalancing after the
        unassigned addresses are placed (ignored by L{DETERMINISTIC}).
    @param forceRebalance: nodes that LCP2 may move addresses onto though
        they host some already (C{ctdb reloadips}); unknown ones are logged.
    @param log: called with (Samba debug level, message) for each line of
        ctdbd's trace, at most C{logLevel}.
    @param logLevel: the highest debug level passed to C{log}; messages
        above it are not even built (the LCP2 DEBUG trace is long).

    @return: the merged list, in ipalloc()'s order (descending address;
        IPv4 address A sorts as the IPv6 address ::A).
    @raise ValueError: an address does not parse, or C{known} or
        C{available} does not have C{numNodes} lists.
    """
    _checkNodes(numNodes, known, available)
    # Each distinct text is parsed once; sets hold _identity(), which tells
    # IPv4 A from IPv6 ::A (ctdb_sock_addr_same_ip compares the family).
    parsed: dict[str, tuple[Address, int]] = {}

    def parse(text: str) -> tuple[Address, int]:
        entry = parsed.get(text)
        if entry is None:
            address = parseAddress(text)
            entry = parsed[text] = (address, _identity(address))
        return entry

    # create_merged_ip_list: one entry per key; a later node's entry
    # replaces the address, and its owner unless that is unknown.
    merged: dict[int, tuple[Address, int]] = {}
    knownSets: list[set[int]] = []
    for node in range(numNodes):
        mine = set()
        for text, pnn in known[node]:
            address, identity = parse(text)
            mine.add(identity)
            key = int(address)
            owner = node if pnn == node else UNASSIGNED
            previous = merged.get(key)
            if previous is not None and owner == UNASSIGNED:
                owner = previous[1]
            merged[key] = (address, owner)
        knownSets.append(mine)
    availableSets = [
        {parse(text)[1] for text, _pnn in available[node]} for node in range(numNodes)
    ]
    if not merged:
        return []
    entries = [merged[key] for key in sorted(merged, reverse=True)]
    addresses = [address for address, _owner in entries]
    identities = [_identity(address) for address in addresses]
    hostable = [
        [identity in availableSets[node] for identity in identities]
        for node in range(numNodes)
    ]
    state = _Allocation(
        numNodes,
        addresses,
        [owner for _address, owner in entries],
        hostable,
        noIPTakeover=noIPTakeover,
        noIPFailback=noIPFailback,
        log=log,
        logLevel=logLevel,
    )
    if algorithm == DETERMINISTIC:
        state.deterministic()
    elif algorithm == NONDETERMINISTIC:
        state.nondeterministic()
    else:
        state.unassignUnsuitable()
        _Lcp2(state, forceRebalance).run()
    result = []
    for index, address in enumerate(addresses):
        availableOn = frozenset(n for n in range(numNodes) if hostable[n][index])
        knownOn = availableOn | {
            n for n in range(numNodes) if identities[index] in knownSets[n]
        }
        result.append(
            AllocatedIP(address.compressed, state.owners[index], knownOn, availableOn)
        )
    return result


def canHostIPs(
    numNodes: int,
    known: Sequence[Sequence[tuple[str, int]]],
    available: Sequence[Sequence[tuple[str, int]]],
    *,
    noIPTakeover: bool = False,
) -> bool:
    """
    C{ipalloc_can_host_ips}: whether a takeover run can place anything.
    False only if no node knows an address, or if no node hosts one and no
    node may host one now.

    C{noIPTakeover} is accepted for symmetry with L{allocate}; Samba 4.17's
    function does not look at the tunable, so neither does this.
    """
    del noIPTakeover
    _checkNodes(numNodes, known, available)
    haveIPs = False
    for node in range(numNodes):
        if known[node]:
            haveIPs = True
            if any(pnn == node for _text, pnn in known[node]):
                return True
    return haveIPs and any(available[node] for node in range(numNodes))
