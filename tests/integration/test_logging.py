# -*- test-case-name: tests.integration.test_logging -*-
"""
The log of a real cluster of ours written as JSON (C{ctdb-cluster setup
--log-format json}, so C{twistd ctdb --log-format json}): every line of
every node's C{log.ctdb} is one JSON object with ctdbd's level names, and
when the leader is killed the new leader's log tells the failover story,
in order (docs/LOGGING.md).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ctdb.cluster import LocalCluster
from tests.integration._cases import IntegrationCase
from tests.integration._clusters import waitFor

#: the keys of every line
KEYS = {"time", "level", "node", "subsystem", "namespace", "message", "fields"}
LEVELS = {"ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"}

#: what the new leader logs after the old one died, in this order
STORY = [
    "node-dead",
    "election-started",
    "election-finished",
    "recovery-started",
    "recovery-finished",
    "takeover-started",
    "takeover-finished",
]


def readLog(cluster: LocalCluster, pnn: int) -> list[str]:
    """The complete lines of node C{pnn}'s log so far."""
    with open(cluster.logFile(pnn), encoding="utf-8") as f:
        text = f.read()
    return text.splitlines()[: text.count("\n")]


class JSONLogTests(IntegrationCase):
    """A cluster whose nodes log JSON loses its leader."""

    def records(self, cluster: LocalCluster, pnn: int) -> list[dict[str, Any]]:
        """Every line of node C{pnn}'s log, each checked to be one JSON
        object with the keys and level names of docs/LOGGING.md."""
        records = []
        for number, line in enumerate(readLog(cluster, pnn), 1):
            try:
                record = json.loads(line)
            except ValueError:
                self.fail(f"node {pnn} line {number} is not JSON: {line!r}")
            self.assertIsInstance(record, dict)
            self.assertLessEqual(KEYS, set(record), line)
            self.assertIn(record["level"], LEVELS, line)
            self.assertIsNotNone(datetime.fromisoformat(record["time"]).tzinfo)
            self.assertIsInstance(record["fields"], dict)
            records.append(record)
        return records

    def test_failoverStory(self) -> None:
        """Kill the leader: each survivor's log stays JSON, line by line,
        and the new leader's lines since then hold, in order, the node
        found dead, the election started and won, the recovery started and
        finished (with the generation the node now has and a duration) and
        the takeover run started and finished."""
        cluster = self.makeCluster(3, logFormat="json")
        status = self.ctdbTool(cluster, 0, "status")
        self.assertEqual(status.returncode, 0, status.stderr)
        leader = int(status.stdout.split("Leader:")[1].split()[0])
        self.assertIn(leader, (0, 1, 2))
        survivors = [k for k in range(3) if k != leader]
        marks = {k: len(readLog(cluster, k)) for k in survivors}
        for k in range(3):
            self.assertEqual({r["node"] for r in self.records(cluster, k)}, {k})
        cluster.kill(leader)

        def since(pnn: int) -> list[dict[str, Any]]:
            return [
                r
                for r in self.records(cluster, pnn)[marks[pnn] :]
                if "step" in r["fields"]
            ]

        def finished() -> bool:
            return any(
                r["fields"]["step"] == "takeover-finished"
                for k in survivors
                for r in since(k)
            )

        waitFor(finished, 30, "a survivor's takeover run")
        winners = [
            k
            for k in survivors
            if any(
                r["fields"]["step"] == "election-finished"
                and r["fields"]["leader"] == k
                for r in since(k)
            )
        ]
        self.assertEqual(len(winners), 1, winners)
        newLeader = winners[0]
        story = since(newLeader)
        steps = [r["fields"]["step"] for r in story]
        position = 0
        for step in STORY:
            self.assertIn(step, steps[position:], f"{step} after {STORY}: {steps}")
            position = steps.index(step, position) + 1
        byStep = {r["fields"]["step"]: r for r in story}
        self.assertEqual(byStep["node-dead"]["fields"]["pnn"], leader)
        self.assertEqual(
            byStep["election-started"]["fields"]["reason"],
            f"leader node {leader} is gone",
        )
        recovered = byStep["recovery-finished"]
        generation = cluster.vnnMap(newLeader).generation
        self.assertEqual(recovered["fields"]["generation"], generation)
        self.assertIn(f"generation 0x{generation:08x}", recovered["message"])
        self.assertGreaterEqual(recovered["fields"]["duration"], 0)
        self.assertEqual(sorted(recovered["fields"]["nodes"]), survivors)
        self.assertTrue(byStep["takeover-finished"]["fields"]["ok"])
        for record in story:
            self.assertEqual(record["node"], newLeader)
            self.assertEqual(record["level"], "NOTICE")
            self.assertIn("generation", record["fields"])
        # the other survivor names the winner
        other = next(k for k in survivors if k != newLeader)

        def named() -> bool:
            return any(
                r["fields"]["step"] == "election-finished"
                and r["fields"]["leader"] == newLeader
                for r in since(other)
            )

        waitFor(named, 10, f"node {other} to name the new leader")
