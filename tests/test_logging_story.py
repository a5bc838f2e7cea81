# -*- test-case-name: tests.test_logging_story -*-
"""
The failover story of the log (docs/LOGGING.md): in a whole in-memory
cluster (L{connectedNodes} with recovery and public addresses, on one
L{Clock}), a node dies and each survivor logs one line per step, with the
node, the generation and the durations as fields: the node found dead, the
election (when the leader died), the recovery begun and finished, the
takeover run, the addresses taken; and the node's return.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from twisted.internet.task import Clock
from twisted.logger import LogEvent, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from ctdb.logfilter import formatEventAsJSON
from ctdb.testing import FakeCluster, connectedNodes

#: one public address per node (127.0.0.0/8 only, even in memory)
ADDRESSES = "127.1.0.1/24 eth0\n127.1.0.2/24 eth0\n127.1.0.3/24 eth0\n"


def steps(events: Sequence[LogEvent], node: int) -> list[LogEvent]:
    """The story's events that node C{node} logged, in order."""
    return [e for e in events if "step" in e and e.get("node") == node]


def names(events: Sequence[LogEvent]) -> list[str]:
    return [e["step"] for e in events]


class StoryTests(SynchronousTestCase):
    """A 3-node cluster loses a node; what each survivor logs."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster: FakeCluster = connectedNodes(
            3, self.clock, recovery=True, publicAddresses=ADDRESSES
        )
        self.addCleanup(self.cluster.stop)
        self.settle()
        self.leader = self.cluster.recovery(0).leader

    def settle(self, seconds: float = 6.0) -> None:
        self.cluster.advance(seconds, step=0.05)

    @contextmanager
    def story(self) -> Iterator[Sequence[LogEvent]]:
        """The events logged inside the block."""
        with capturedLogs() as events:
            yield events

    def assertInOrder(self, events: Sequence[LogEvent], wanted: list[str]) -> None:
        """C{wanted} steps appear in C{events} in this order (other steps
        may come between)."""
        got = names(events)
        position = 0
        for step in wanted:
            try:
                position = got.index(step, position) + 1
            except ValueError:
                self.fail(f"{step} missing after {wanted[: wanted.index(step)]}: {got}")

    def one(self, events: Sequence[LogEvent], step: str) -> LogEvent:
        """The only event of C{step} in C{events}."""
        found = [e for e in events if e.get("step") == step]
        self.assertEqual(len(found), 1, [formatEvent(e) for e in found])
        return found[0]

    def test_nodeDies(self) -> None:
        """A node that is not the leader dies: the leader logs it dead (how
        long since it was heard from), starts a recovery from the old
        generation saying why, finishes it with the new generation, the
        databases and records and its duration, and runs a takeover that
        moves the dead node's address; the survivor that takes the address
        says so.  One line for each step."""
        victim = (self.leader + 1) % 3
        old = self.cluster[self.leader].vnnMap.generation
        with self.story() as events:
            self.cluster.crash(victim)
            self.settle()
        new = self.cluster[self.leader].vnnMap.generation
        self.assertNotEqual(new, old)
        mine = steps(events, self.leader)
        self.assertInOrder(
            mine,
            [
                "node-dead",
                "recovery-started",
                "recovery-phase",
                "recovery-finished",
                "takeover-started",
                "takeover-finished",
            ],
        )
        dead = self.one(mine, "node-dead")
        self.assertEqual((dead["pnn"], dead["generation"]), (victim, old))
        self.assertGreaterEqual(dead["silence"], 0)
        started = self.one(mine, "recovery-started")
        self.assertEqual(started["generation"], old)
        self.assertEqual(started["newGeneration"], new)
        self.assertEqual(started["reason"], f"node {victim} is disconnected")
        finished = self.one(mine, "recovery-finished")
        self.assertEqual(finished["generation"], new)
        self.assertEqual(finished["oldGeneration"], old)
        self.assertIsInstance(finished["duration"], float)
        self.assertGreaterEqual(finished["duration"], 0)
        self.assertEqual(finished["records"], 0)
        self.assertEqual(sorted(finished["nodes"]), sorted({0, 1, 2} - {victim}))
        self.assertIn(f"generation 0x{new:08x}", formatEvent(finished))
        run = self.one(mine, "takeover-finished")
        self.assertEqual((run["ok"], run["moved"], run["addresses"]), (True, 1, 3))
        self.assertGreaterEqual(run["duration"], 0)
        taken = [e for e in events if e.get("step") == "ip-taken"]
        self.assertEqual(len(taken), 1)
        self.assertNotEqual(taken[0]["node"], victim)
        # no election: the leader lives
        self.assertNotIn("election-started", names(steps(events, self.leader)))

    def test_leaderDies(self) -> None:
        """The leader dies: each survivor logs it dead and starts an
        election saying why; the winner says it leads and how long the
        election took, then recovers and runs the takeover; the other
        names the winner."""
        survivors = sorted({0, 1, 2} - {self.leader})
        with self.story() as events:
            self.cluster.crash(self.leader)
            self.settle()
        winner = self.cluster.recovery(survivors[0]).leader
        self.assertIn(winner, survivors)
        other = survivors[0] if winner == survivors[1] else survivors[1]
        mine = steps(events, winner)
        self.assertInOrder(
            mine,
            [
                "node-dead",
                "election-started",
                "election-finished",
                "recovery-started",
                "recovery-finished",
                "takeover-finished",
            ],
        )
        election = self.one(mine, "election-started")
        self.assertEqual(election["reason"], f"leader node {self.leader} is gone")
        self.assertEqual(election["leader"], self.leader)
        won = self.one(mine, "election-finished")
        self.assertEqual(won["leader"], winner)
        self.assertGreater(won["duration"], 0)
        self.assertEqual(
            self.one(mine, "recovery-started")["reason"],
            "this node was elected leader",
        )
        theirs = steps(events, other)
        self.assertInOrder(
            theirs, ["node-dead", "election-started", "election-finished"]
        )
        self.assertEqual(self.one(theirs, "election-finished")["leader"], winner)
        self.assertNotIn("recovery-started", names(theirs))

    def test_nodeReturns(self) -> None:
        """A dead node restarted: the leader logs it connected again, how
        long it was down, and recovers with it."""
        victim = (self.leader + 1) % 3
        self.cluster.crash(victim)
        self.settle()
        with self.story() as events:
            self.clock.advance(10)
            self.cluster.restart(victim)
            self.settle()
        mine = steps(events, self.leader)
        self.assertInOrder(
            mine, ["node-connected", "recovery-started", "recovery-finished"]
        )
        back = self.one(mine, "node-connected")
        self.assertEqual(back["pnn"], victim)
        self.assertGreaterEqual(back["down"], 10)
        self.assertIn(f"(node {victim} was down ", formatEvent(back))
        finished = [e for e in mine if e["step"] == "recovery-finished"]
        self.assertIn(victim, finished[-1]["nodes"])

    def test_json(self) -> None:
        """Every event of a failover makes one JSON line; the story's lines
        carry their step, node and generation as fields and the node as
        the object's node."""
        with self.story() as events:
            self.cluster.crash(self.leader)
            self.settle()
        story = 0
        for e in events:
            line = formatEventAsJSON(e, pnn=9)
            self.assertEqual(line.count("\n"), 1)
            record: dict[str, Any] = json.loads(line)
            self.assertNotIn("Unable to format", record["message"])
            if "step" in e:
                story += 1
                self.assertEqual(record["node"], e["node"])
                self.assertEqual(record["fields"]["step"], e["step"])
                self.assertIn("generation", record["fields"])
                self.assertEqual(record["level"], "NOTICE")
        self.assertGreater(story, 8)
