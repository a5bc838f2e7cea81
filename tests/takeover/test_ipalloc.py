# -*- test-case-name: tests.takeover.test_ipalloc -*-
"""
Tests for L{ctdb.takeover.ipalloc}: Samba 4.17.12's takeover test vectors
(tests/takeover/vectors, one test method per file, each step run as
C{ctdb_takeover_tests ipalloc} would be and its output and trace compared
line for line), the API's rules one by one, and random clusters against a
line-by-line transliteration of ``ipalloc*.c`` (L{Reference}).
"""

from __future__ import annotations

import io
import ipaddress
import shlex
import unittest
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ctdb.protocols.debuglevels import (
    DEBUG_DEBUG,
    DEBUG_ERR,
    DEBUG_INFO,
    DEBUG_NOTICE,
    DEBUG_WARNING,
)
from ctdb.takeover import ipalloccli
from ctdb.takeover.ipalloc import (
    DETERMINISTIC,
    LCP2,
    NONDETERMINISTIC,
    UNASSIGNED,
    AllocatedIP,
    allocate,
    canHostIPs,
    formatAddress,
    parseAddress,
)

#: Samba's vectors, copied into the tree (see vectors/README.md)
VECTORS = Path(__file__).parent / "vectors"
#: how many vector files Samba 4.17.12 has
VECTOR_COUNT = 33


# --- the vector files ---------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One C{required_result} / C{simple_test} pair of a vector file."""

    #: the environment the test program sees (the algorithm and the exports)
    environ: dict[str, str]
    #: the program's arguments, after C{ctdb_takeover_tests ipalloc}
    args: list[str]
    #: stdin; C{$_out} stands for the previous step's output
    stdin: str
    expectedStatus: int
    #: stderr then stdout, as the harness's C{2>&1} gets them, without the
    #: final newline (C{$(...)} strips it)
    expectedOutput: str


#: lines of a vector file that only the shell harness uses
_IGNORED = ("#", "define_test ", "echo ", ". ")


def parseVector(path: Path) -> list[Step]:
    """
    The steps of a vector file, in order.  Only what these files use is
    understood (exports, heredoc results and tests); any other line
    raises C{ValueError}, so a new construct cannot be skipped unnoticed.
    """
    lines = path.read_text().split("\n")
    environ = {"CTDB_IP_ALGORITHM": path.name.split(".", 1)[0]}
    steps: list[Step] = []
    expected: tuple[int, str] | None = None
    position = 0

    def heredoc() -> str:
        nonlocal position
        end = lines.index("EOF", position)
        body = "\n".join(lines[position:end])
        position = end + 1
        return body

    while position < len(lines):
        line = lines[position]
        position += 1
        if line.startswith(_IGNORED):
            continue
        words = shlex.split(line)
        if not words or words == ["set", "-e"]:
            continue
        if words[0] == "export":
            name, value = words[1].split("=", 1)
            environ[name] = value
        elif words[0] == "required_result" and words[-1] == "<<EOF":
            status = int(words[1]) if len(words) == 3 else 0
            body = heredoc().replace("${TEST_DATE_STAMP}", "")
            expected = (status, body)
        elif words[0] == "simple_test" and words[-1] == "<<EOF":
            if expected is None:
                raise ValueError(f"{path.name}:{position}: test before result")
            body = heredoc()
            if "$" in body.replace("$_out", ""):
                raise ValueError(f"{path.name}:{position}: unknown expansion")
            steps.append(Step(dict(environ), words[1:-1], body, *expected))
            expected = None
        else:
            raise ValueError(f"{path.name}:{position}: cannot read {line!r}")
    return steps


def runStep(step: Step, previous: str) -> tuple[int, str]:
    """Run C{step} in-process; its exit status and its output (stderr then
    stdout, final newlines stripped)."""
    stdin = step.stdin.replace("$_out", previous) + "\n"
    out, err = io.StringIO(), io.StringIO()
    status = ipalloccli.run(step.args, io.StringIO(stdin), out, err, step.environ)
    return status, (err.getvalue() + out.getvalue()).rstrip("\n")


def vectorPaths() -> list[Path]:
    return sorted(VECTORS.glob("*.sh"))


class VectorTests(unittest.TestCase):
    """
    Samba's takeover vectors: every step's output (the C{<ip> <pnn>} lines
    and the trace) and exit status as required.  The C{test_<file>}
    methods are made from the files below the class.
    """

    maxDiff = None

    def assertVector(self, path: Path) -> None:
        previous = ""
        steps = parseVector(path)
        self.assertTrue(steps, f"{path.name} has no steps")
        for number, step in enumerate(steps, 1):
            status, output = runStep(step, previous)
            where = f"{path.name} step {number} ({' '.join(step.args)})"
            self.assertEqual(output.split("\n"), step.expectedOutput.split("\n"), where)
            self.assertEqual(status, step.expectedStatus, where)
            previous = output

    def test_allVectorsPresent(self) -> None:
        """All of Samba 4.17.12's vector files are here, and each has its
        test method: none can go missing silently."""
        paths = vectorPaths()
        self.assertEqual(len(paths), VECTOR_COUNT)
        for path in paths:
            self.assertTrue(hasattr(self, _methodName(path)), path.name)

    def test_chainedSteps(self) -> None:
        """The chained files are read as several steps, each after the
        first reading the output before it."""
        steps = parseVector(VECTORS / "lcp2.032.sh")
        self.assertGreater(len(steps), 5)
        self.assertEqual(steps[1].stdin, "$_out")
        self.assertEqual(steps[1].args, ["0x20,0,0,0"])

    def test_unknownLineRefused(self) -> None:
        """A line the parser does not know fails the parse."""
        path = Path(self.id() + ".sh")
        self.addCleanup(lambda: path.unlink(missing_ok=True))
        path.write_text("required_result <<EOF\nEOF\nsimple_test 0 <<EOF\nEOF\nfoo\n")
        with self.assertRaises(ValueError):
            parseVector(path)


def _methodName(path: Path) -> str:
    return "test_" + path.stem.replace(".", "_")


def _vectorTest(path: Path) -> Callable[[VectorTests], None]:
    def test(self: VectorTests) -> None:
        self.assertVector(path)

    test.__name__ = _methodName(path)
    test.__doc__ = f"Samba's vector {path.name}: every step as required."
    return test


for _path in vectorPaths():
    setattr(VectorTests, _methodName(_path), _vectorTest(_path))
del _path


# --- the API ------------------------------------------------------------------

_NINE = [
    "192.168.20.249",
    "192.168.20.250",
    "192.168.20.251",
    "192.168.20.252",
    "192.168.20.253",
    "192.168.20.254",
    "192.168.21.252",
    "192.168.21.253",
    "192.168.21.254",
]


def everywhere(
    numNodes: int, owners: Sequence[int], addresses: Sequence[str] = _NINE
) -> list[list[tuple[str, int]]]:
    """Every node knows every address, with the given current owners."""
    return [list(zip(addresses, owners)) for _ in range(numNodes)]


def owners(result: list[AllocatedIP]) -> dict[str, int]:
    return {ip.address: ip.pnn for ip in result}


class Trace:
    """A C{log} callable that keeps what it is given."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []

    def __call__(self, level: int, message: str) -> None:
        self.lines.append((level, message))


class AllocateTests(unittest.TestCase):
    """The rules of L{allocate} and L{canHostIPs}, one by one."""

    def test_order(self) -> None:
        """The list is in descending key order: IPv6 keys above IPv4 ones,
        an IPv4 address sorting as the IPv6 address ::A would; addresses
        come back in compressed form."""
        addresses = ["10.0.0.1", "2001:db8:0::1", "::5", "fd00::1", "10.0.0.2"]
        known = everywhere(2, [-1] * 5, addresses)
        result = allocate(2, known, known)
        self.assertEqual(
            [ip.address for ip in result],
            ["fd00::1", "2001:db8::1", "10.0.0.2", "10.0.0.1", "::5"],
        )

    def test_ipv4AndCompatibleIPv6ShareAKey(self) -> None:
        """ip_key() gives 10.0.0.1 and ::a00:1 the same key: they merge
        into one entry, with the later node's address; each node knows only
        its own family's address."""
        known = [[("10.0.0.1", 0)], [("::a00:1", -1)]]
        result = allocate(2, known, known)
        self.assertEqual(len(result), 1)
        self.assertEqual(result[0].address, "::a00:1")
        self.assertEqual(result[0].knownOn, frozenset({1}))
        self.assertEqual(result[0].availableOn, frozenset({1}))
        self.assertEqual(result[0].pnn, 1)

    def test_ownerOnlyFromItself(self) -> None:
        """An address counts as hosted only by a node that reports it as
        its own; what a node says of others is ignored.  A later node's
        claim wins over an earlier one."""
        for views, owner in (
            ([[("10.0.0.1", -1)], [("10.0.0.1", 0)]], UNASSIGNED),
            ([[("10.0.0.1", 0)], [("10.0.0.1", -1)]], 0),
            ([[("10.0.0.1", 0)], [("10.0.0.1", 1)]], 1),
        ):
            result = allocate(2, views, views, noIPTakeover=True)
            self.assertEqual(result[0].pnn, owner, views)

    def test_knownAndAvailable(self) -> None:
        """knownOn and availableOn say which nodes know and may host each
        address; a node that may host nothing gets nothing, and what it
        hosted moves."""
        known = everywhere(3, [2] * 9)
        available = [known[0], known[1], []]
        for algorithm in (DETERMINISTIC, NONDETERMINISTIC, LCP2):
            result = allocate(3, known, available, algorithm=algorithm)
            for ip in result:
                self.assertEqual(ip.knownOn, frozenset({0, 1, 2}))
                self.assertEqual(ip.availableOn, frozenset({0, 1}))
                self.assertIn(ip.pnn, (0, 1))

    def test_noIPTakeover(self) -> None:
        """With NoIPTakeover nothing moves and nothing unassigned is
        placed; each address left over is reported."""
        known = everywhere(3, [1, -1, 1, -1, 1, -1, 1, -1, 1])
        for algorithm in (NONDETERMINISTIC, LCP2):
            trace = Trace()
            result = allocate(
                3, known, known, algorithm=algorithm, noIPTakeover=True, log=trace
            )
            self.assertEqual([ip.pnn for ip in result], [1, -1, 1, -1, 1, -1, 1, -1, 1])
            self.assertIn(
                (DEBUG_WARNING, "Failed to find node to cover ip 192.168.21.253"),
                trace.lines,
            )

    def test_noIPFailback(self) -> None:
        """With NoIPFailback a node that becomes healthy gains nothing;
        without it, it gets its share."""
        known = everywhere(3, [1] * 9)
        for algorithm in (NONDETERMINISTIC, LCP2):
            moved = allocate(3, known, known, algorithm=algorithm)
            self.assertEqual(
                sorted(owners(moved).values()), [0, 0, 0, 1, 1, 1, 2, 2, 2]
            )
            kept = allocate(3, known, known, algorithm=algorithm, noIPFailback=True)
            self.assertEqual(set(owners(kept).values()), {1})

    def test_noIPFailbackDeterministic(self) -> None:
        """The deterministic algorithm ignores NoIPFailback, and says so."""
        known = everywhere(3, [1] * 9)
        trace = Trace()
        kept = allocate(3, known, known, algorithm=DETERMINISTIC, noIPFailback=True)
        plain = allocate(3, known, known, algorithm=DETERMINISTIC, log=trace)
        self.assertEqual(kept, plain)
        trace = Trace()
        allocate(3, known, known, algorithm=DETERMINISTIC, noIPFailback=True, log=trace)
        self.assertIn(
            (
                DEBUG_WARNING,
                (
                    "WARNING: 'NoIPFailback' set but ignored - "
                    "incompatible with 'Deterministic IPs"
                ),
            ),
            trace.lines,
        )

    def test_forceRebalance(self) -> None:
        """A node that hosts an address is no rebalance target, unless
        forced; a forced node that does not exist is reported."""
        known = everywhere(2, [0, 1, 1, 1, 1, 1, 1, 1, 1])
        kept = allocate(2, known, known)
        self.assertEqual(list(owners(kept).values()).count(0), 1)
        trace = Trace()
        moved = allocate(2, known, known, forceRebalance=[0, 7], log=trace)
        self.assertGreater(list(owners(moved).values()).count(0), 1)
        self.assertEqual(
            trace.lines[:2],
            [
                (DEBUG_NOTICE, "Forcing rebalancing of IPs to node 0"),
                (DEBUG_ERR, "../../ctdb/server/ipalloc_lcp2.c:183unknown node 7"),
            ],
        )

    def test_forcedTargetStaysBelowSource(self) -> None:
        """LCP2 moves an address only if the destination's new imbalance
        stays below the source's: a move that would lower the address's
        cost (11113 on node 1 against 15876 on node 0) is not made onto a
        node already more imbalanced (40078)."""
        hosted = [
            ("192.168.1.1", 0),
            ("192.168.1.2", 0),
            ("2001:db8::1", 1),
            ("2001:db8::2", 1),
            ("2001:db8:1::1", 1),
        ]
        known = [hosted, hosted]
        trace = Trace()
        result = allocate(2, known, known, forceRebalance=[1], log=trace)
        self.assertEqual(owners(result), {a: p for a, p in hosted})
        self.assertIn(
            (DEBUG_DEBUG, " 0 [-15876] -> 192.168.1.2 -> 1 [+11113]"), trace.lines
        )
        self.assertIn((DEBUG_DEBUG, " 1 [40078]"), trace.lines)

    def test_otherAlgorithmIsLcp2(self) -> None:
        """An IPAllocAlgorithm other than 0 and 1 means LCP2."""
        known = everywhere(3, [0] * 9)
        self.assertEqual(
            allocate(3, known, known, algorithm=7),
            allocate(3, known, known, algorithm=LCP2),
        )

    def test_logLevel(self) -> None:
        """Only messages up to logLevel reach log."""
        known = everywhere(3, [1] * 9)
        trace = Trace()
        allocate(3, known, known, log=trace, logLevel=DEBUG_INFO)
        self.assertTrue(trace.lines)
        self.assertEqual({level for level, _ in trace.lines}, {DEBUG_INFO})
        self.assertIn(
            (DEBUG_INFO, "1 [-121363] -> 192.168.20.253 -> 0 [+0]"), trace.lines
        )

    def test_empty(self) -> None:
        """No addresses, no allocation (and no node is needed)."""
        self.assertEqual(allocate(0, [], []), [])
        self.assertEqual(allocate(2, [[], []], [[], []]), [])

    def test_badAddress(self) -> None:
        """An address that does not parse, known or available, is a
        ValueError that names it."""
        for known, available in (
            ([[("10.0.0.300", -1)]], [[]]),
            ([[("10.0.0.1", -1)]], [[("fe80::1%eth0", -1)]]),
        ):
            with self.assertRaises(ValueError) as caught:
                allocate(1, known, available)
            self.assertIn("not an IPv4 or IPv6 address", str(caught.exception))

    def test_wrongNodeCount(self) -> None:
        """known and available need one list per node."""
        with self.assertRaises(ValueError):
            allocate(2, [[]], [[], []])
        with self.assertRaises(ValueError):
            canHostIPs(2, [[], []], [[]])

    def test_canHostIPs(self) -> None:
        """False only with no known address, or with none hosted and none
        available."""
        known = [[("10.0.0.1", -1)], [("10.0.0.1", -1)]]
        self.assertFalse(canHostIPs(2, [[], []], [[], []]))
        self.assertFalse(canHostIPs(2, known, [[], []]))
        self.assertTrue(canHostIPs(2, known, [[], [("10.0.0.1", -1)]]))
        hosted = [[("10.0.0.1", -1)], [("10.0.0.1", 1)]]
        self.assertTrue(canHostIPs(2, hosted, [[], []]))
        self.assertTrue(canHostIPs(2, hosted, [[], []], noIPTakeover=True))

    def test_parseAddress(self) -> None:
        """Addresses are read as ctdb reads them."""
        self.assertEqual(parseAddress("10.0.0.1"), ipaddress.IPv4Address("10.0.0.1"))
        self.assertEqual(parseAddress("[fd00::1]"), ipaddress.IPv6Address("fd00::1"))
        self.assertEqual(
            parseAddress("::ffff:10.0.0.1"), ipaddress.IPv4Address("10.0.0.1")
        )
        for bad in ("010.0.0.1", "10.0.0", "fe80::1%eth0", "::ffff:a00:1", "", "x"):
            with self.assertRaises(ValueError, msg=bad):
                parseAddress(bad)

    def test_formatAddress(self) -> None:
        """Addresses are printed as glibc's inet_ntop prints them."""
        for text, printed in (
            ("10.0.0.1", "10.0.0.1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("::a00:1", "::10.0.0.1"),
            ("::1", "::1"),
            ("::ffff", "::ffff"),
        ):
            self.assertEqual(formatAddress(ipaddress.ip_address(text)), printed)
        mapped = ipaddress.IPv6Address("::ffff:10.0.0.1")
        self.assertEqual(formatAddress(mapped), "::ffff:10.0.0.1")


# --- against a transliteration of the C ----------------------------------------


_M = 0xFFFFFFFF


def _words(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[int]:
    """ip_key(): four 32-bit words, an IPv4 address in the last."""
    value = int(address)
    return [(value >> shift) & _M for shift in (96, 64, 32, 0)]


def _signed(value: int) -> int:
    value &= _M
    return value - (1 << 32) if value & 0x80000000 else value


class Reference:
    """
    ipalloc.c, ipalloc_common.c and the three algorithms, statement by
    statement and with nothing precomputed: every sum is recomputed from
    the list, as in C.  Every message is kept, at its level.
    """

    def __init__(
        self,
        numNodes: int,
        known: Sequence[Sequence[tuple[str, int]]],
        available: Sequence[Sequence[tuple[str, int]]],
        noIPTakeover: bool,
        noIPFailback: bool,
        force: Sequence[int],
    ) -> None:
        self.num = numNodes
        self.noIPTakeover = noIPTakeover
        self.noIPFailback = noIPFailback
        self.force = force
        self.trace: list[tuple[int, str]] = []
        tree: dict[tuple[int, ...], list] = {}
        for i in range(numNodes):
            for text, pnn in known[i]:
                address = ipaddress.ip_address(text)
                new = [address, i if pnn == i else -1]
                key = tuple(_words(address))
                old = tree.get(key)
                if old is not None and new[1] == -1:
                    new[1] = old[1]
                tree[key] = new
        self.ips = [tree[key] for key in sorted(tree, reverse=True)]
        for ip in self.ips:
            ip.append(
                {
                    i
                    for i in range(numNodes)
                    if any(ipaddress.ip_address(t) == ip[0] for t, _ in available[i])
                }
            )

    def log(self, level: int, message: str) -> None:
        self.trace.append((level, message))

    def text(self, ip: list) -> str:
        return formatAddress(ip[0])

    def canTakeover(self, pnn: int, ip: list) -> bool:
        return not self.noIPTakeover and pnn in ip[2]

    def coverage(self, pnn: int) -> int:
        return sum(1 for ip in self.ips if ip[1] == pnn)

    def findTakeoverNode(self, ip: list) -> int:
        pnn, least = -1, 0
        for i in range(self.num):
            if not self.canTakeover(i, ip):
                continue
            num = self.coverage(i)
            if pnn == -1 or num < least:
                pnn, least = i, num
        if pnn == -1:
            self.log(
                DEBUG_WARNING,
                "../../ctdb/server/ipalloc_common.c:110 Could not find node to"
                f" take over public address '{self.text(ip)}'",
            )
            return -1
        ip[1] = pnn
        return 0

    def basicAllocateUnassigned(self) -> None:
        for ip in self.ips:
            if ip[1] == -1 and self.findTakeoverNode(ip):
                self.log(
                    DEBUG_WARNING, f"Failed to find node to cover ip {self.text(ip)}"
                )

    def unassignUnsuitable(self) -> None:
        for ip in self.ips:
            if ip[1] != -1 and ip[1] not in ip[2]:
                self.log(DEBUG_DEBUG, f"Unassign IP: {self.text(ip)} from {ip[1]}")
                ip[1] = -1

    def deterministic(self) -> None:
        self.log(
            DEBUG_NOTICE, "Deterministic IPs enabled. Resetting all ip allocations"
        )
        for i, ip in enumerate(self.ips):
            ip[1] = i % self.num
        if self.noIPFailback:
            self.log(
                DEBUG_WARNING,
                "WARNING: 'NoIPFailback' set but ignored - "
                "incompatible with 'Deterministic IPs",
            )
        self.unassignUnsuitable()
        self.basicAllocateUnassigned()

    def nondeterministic(self) -> None:
        numIPs = len(self.ips)
        self.unassignUnsuitable()
        self.basicAllocateUnassigned()
        if self.noIPFailback:
            return
        retries = 0
        again = True
        while again:
            again = False
            for ip in self.ips:
                if ip[1] == -1:
                    continue
                maxnode = minnode = -1
                maxnum = minnum = 0
                for i in range(self.num):
                    if not self.canTakeover(i, ip):
                        continue
                    num = self.coverage(i)
                    if maxnode == -1 or num > maxnum:
                        maxnode, maxnum = i, num
                    if minnode == -1 or num < minnum:
                        minnode, minnum = i, num
                if maxnode == -1:
                    self.log(
                        DEBUG_WARNING,
                        "../../ctdb/server/ipalloc_nondeterministic.c:96 Could not"
                        f" find maxnode. May not be able to serve ip '{self.text(ip)}'",
                    )
                    continue
                if maxnum > minnum + 1 and retries < numIPs + 5:
                    for tt in self.ips:
                        if tt[1] == maxnode:
                            self.findTakeoverNode(tt)
                            retries += 1
                            again = True
                            break
                    if again:
                        break

    @staticmethod
    def distance(a: list, b: list) -> int:
        distance = 0
        for x, y in zip(_words(a[0]), _words(b[0])):
            x ^= y
            if x == 0:
                distance += 32
            else:
                while x & (1 << 31) == 0:
                    x <<= 1
                    distance += 1
        return distance

    def dsum(self, ip: list, ips: Sequence[list], pnn: int) -> int:
        total = 0
        for t in ips:
            if t[1] != pnn or t is ip:
                continue
            d = self.distance(ip, t)
            total = (total + d * d) & _M
        return total

    def imbalanceOf(self, pnn: int) -> int:
        total = 0
        for i, t in enumerate(self.ips):
            if t[1] == pnn:
                total = (total + self.dsum(t, self.ips[i + 1 :], pnn)) & _M
        return total

    def lcp2(self) -> None:
        self.unassignUnsuitable()
        imbalances = [self.imbalanceOf(i) for i in range(self.num)]
        candidates = [True] * self.num
        for ip in self.ips:
            if ip[1] != -1:
                candidates[ip[1]] = False
        for pnn in self.force:
            pnn &= _M
            if pnn >= self.num:
                self.log(
                    DEBUG_ERR, f"../../ctdb/server/ipalloc_lcp2.c:183unknown node {pnn}"
                )
                continue
            self.log(DEBUG_NOTICE, f"Forcing rebalancing of IPs to node {pnn}")
            candidates[pnn] = True
        self.lcp2AllocateUnassigned(imbalances)
        if self.noIPFailback or not any(candidates):
            return
        while True:
            self.log(DEBUG_DEBUG, "+++++++++++++++++++++++++++++++++++++++++")
            self.log(DEBUG_DEBUG, "Selecting most imbalanced node from:")
            for i in range(self.num):
                self.log(DEBUG_DEBUG, f" {i} [{_signed(imbalances[i])}]")
            order = sorted(range(self.num), key=lambda i: -imbalances[i])
            again = False
            for pnn in order:
                if imbalances[pnn] == 0:
                    break
                if self.lcp2FailbackCandidate(pnn, imbalances, candidates):
                    again = True
                    break
            if not again:
                return

    def lcp2AllocateUnassigned(self, imbalances: list[int]) -> None:
        haveUnassigned = shouldLoop = True
        while haveUnassigned and shouldLoop:
            shouldLoop = False
            self.log(DEBUG_DEBUG, " ----------------------------------------")
            self.log(DEBUG_DEBUG, " CONSIDERING MOVES (UNASSIGNED)")
            minnode, mindsum, minip, minimbl = -1, 0, None, 0
            for t in self.ips:
                if t[1] != -1:
                    continue
                for dst in range(self.num):
                    if not self.canTakeover(dst, t):
                        continue
                    dstdsum = self.dsum(t, self.ips, dst)
                    dstimbl = (imbalances[dst] + dstdsum) & _M
                    self.log(
                        DEBUG_DEBUG,
                        f" {self.text(t)} -> {dst}"
                        f" [+{_signed(dstimbl - imbalances[dst])}]",
                    )
                    if minnode == -1 or dstdsum < mindsum:
                        minnode, minimbl, mindsum, minip = dst, dstimbl, dstdsum, t
                        shouldLoop = True
            self.log(DEBUG_DEBUG, " ----------------------------------------")
            if minnode != -1:
                assert minip is not None
                minip[1] = minnode
                imbalances[minnode] = minimbl
                self.log(
                    DEBUG_INFO,
                    f" {self.text(minip)} -> {minnode} [+{_signed(mindsum)}]",
                )
            haveUnassigned = any(t[1] == -1 for t in self.ips)
        if haveUnassigned:
            for t in self.ips:
                if t[1] == -1:
                    self.log(
                        DEBUG_WARNING, f"Failed to find node to cover ip {self.text(t)}"
                    )

    def lcp2FailbackCandidate(
        self, src: int, imbalances: list[int], candidates: list[bool]
    ) -> bool:
        minip, minsrcimbl, mindstnode, mindstimbl = None, 0, -1, 0
        self.log(DEBUG_DEBUG, " ----------------------------------------")
        self.log(
            DEBUG_DEBUG, f" CONSIDERING MOVES FROM {src} [{_signed(imbalances[src])}]"
        )
        for t in self.ips:
            if t[1] != src:
                continue
            srcdsum = self.dsum(t, self.ips, src)
            srcimbl = (imbalances[src] - srcdsum) & _M
            for dst in range(self.num):
                if not candidates[dst] or not self.canTakeover(dst, t):
                    continue
                dstdsum = self.dsum(t, self.ips, dst)
                dstimbl = (imbalances[dst] + dstdsum) & _M
                self.log(
                    DEBUG_DEBUG,
                    f" {src} [{_signed(-srcdsum)}] -> {self.text(t)} -> {dst}"
                    f" [+{_signed(dstdsum)}]",
                )
                if (
                    dstimbl < imbalances[src]
                    and dstdsum < srcdsum
                    and (
                        mindstnode == -1
                        or (srcimbl + dstimbl) & _M < (minsrcimbl + mindstimbl) & _M
                    )
                ):
                    minip, minsrcimbl, mindstnode, mindstimbl = t, srcimbl, dst, dstimbl
        self.log(DEBUG_DEBUG, " ----------------------------------------")
        if mindstnode == -1:
            return False
        assert minip is not None
        self.log(
            DEBUG_INFO,
            f"{src} [{_signed(minsrcimbl - imbalances[src])}] -> {self.text(minip)}"
            f" -> {mindstnode} [+{_signed(mindstimbl - imbalances[mindstnode])}]",
        )
        imbalances[src] = minsrcimbl
        imbalances[mindstnode] = mindstimbl
        minip[1] = mindstnode
        return True

    def run(self, algorithm: int) -> list[tuple[str, int]]:
        if self.ips:
            if algorithm == DETERMINISTIC:
                self.deterministic()
            elif algorithm == NONDETERMINISTIC:
                self.nondeterministic()
            else:
                self.lcp2()
        return [(ip[0].compressed, ip[1]) for ip in self.ips]


#: addresses the random clusters draw from: close IPv4 ones, two networks,
#: and IPv6 ones
_POOL = [
    *(f"192.168.1.{n}" for n in (1, 2, 3, 4, 7, 8, 64, 65, 200)),
    *(f"10.{n}.0.1" for n in (1, 2, 130)),
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8:1::1",
    "fd00::8",
    "fd00:1::8",
]


@st.composite
def clusters(draw: st.DrawFn) -> dict:
    """
    A random cluster: each node's known and available addresses (with the
    owner it reports), the tunables and the forced nodes.  The nodes mostly
    agree on the owners, which are mostly the first nodes, so that some
    nodes are loaded and others empty: LCP2 then has moves to weigh.
    """
    numNodes = draw(st.integers(1, 5))
    pool = draw(st.lists(st.sampled_from(_POOL), unique=True, max_size=12))
    pnns = st.integers(-1, numNodes - 1)
    # the last few nodes host nothing yet (they have just become healthy)
    hosting = st.integers(-1, numNodes - 1 - draw(st.integers(0, numNodes - 1)))
    current = {address: draw(hosting) for address in pool}
    known, available = [], []
    for _node in range(numNodes):
        mine = [
            (address, draw(pnns) if draw(st.integers(0, 5)) == 0 else owner)
            for address, owner in current.items()
            if draw(st.integers(0, 6))
        ]
        known.append(mine)
        available.append([entry for entry in mine if draw(st.integers(0, 5))])
    return {
        "numNodes": numNodes,
        "known": known,
        "available": available,
        "algorithm": draw(st.sampled_from([LCP2, NONDETERMINISTIC, DETERMINISTIC])),
        "noIPTakeover": draw(st.integers(0, 5)) == 0,
        "noIPFailback": draw(st.integers(0, 4)) == 0,
        "force": draw(st.lists(st.integers(-1, numNodes + 1), max_size=2)),
    }


class AgainstReferenceTests(unittest.TestCase):
    """L{allocate} and its trace against L{Reference} on random clusters."""

    @settings(max_examples=400, deadline=None)
    @given(clusters())
    def test_sameAsReference(self, cluster: dict) -> None:
        """The same owners, and the same trace at every level, as the
        transliterated C."""
        reference = Reference(
            cluster["numNodes"],
            cluster["known"],
            cluster["available"],
            cluster["noIPTakeover"],
            cluster["noIPFailback"],
            cluster["force"] if cluster["algorithm"] == LCP2 else (),
        )
        expected = reference.run(cluster["algorithm"])
        trace = Trace()
        result = allocate(
            cluster["numNodes"],
            cluster["known"],
            cluster["available"],
            algorithm=cluster["algorithm"],
            noIPTakeover=cluster["noIPTakeover"],
            noIPFailback=cluster["noIPFailback"],
            forceRebalance=cluster["force"],
            log=trace,
        )
        self.assertEqual([(ip.address, ip.pnn) for ip in result], expected)
        self.assertEqual(trace.lines, reference.trace)
