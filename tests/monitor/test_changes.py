# -*- test-case-name: tests.monitor.test_changes -*-
"""L{ctdb.monitor.changes}: the events between snapshots."""

from __future__ import annotations

import dataclasses

from twisted.trial.unittest import SynchronousTestCase

from ctdb.monitor.changes import Event, EventLog, changes
from ctdb.monitor.snapshot import AddressView, NodeView
from ctdb.protocols import nodestate as N
from ctdb.protocols.packet import CTDB_UNKNOWN_PNN
from ctdb.tool import formats as F
from tests.monitor._snapshots import (
    DOWN,
    IPS,
    T0,
    gone,
    healthy,
    nodeTwoDown,
    replaceNode,
)


class ChangesTests(SynchronousTestCase):
    """L{changes} of two snapshots that saw the cluster."""

    def test_same(self) -> None:
        """Nothing changed: no events."""
        self.assertEqual(changes(healthy(), healthy(T0 + 1)), [])

    def test_nodeFailure(self) -> None:
        """A node's death: its status, the leader, the generation, the VNN
        map and the address it held, in that order."""
        self.assertEqual(
            changes(healthy(), nodeTwoDown()),
            [
                "node 2 became DISCONNECTED|UNHEALTHY|INACTIVE (was OK)",
                "leader changed 2 -> 0",
                "generation changed 1111 -> 2222",
                "VNN map changed 0 1 2 -> 0 1",
                "public address 192.0.2.3 moved from node 2 to node 1",
            ],
        )

    def test_nodeBack(self) -> None:
        """And back: OK again; it answers again is not news for a node
        that was disconnected."""
        back = healthy(T0 + 9, generation=3333)
        self.assertEqual(
            changes(nodeTwoDown(), back),
            [
                "node 2 became OK (was DISCONNECTED|UNHEALTHY|INACTIVE)",
                "leader changed 0 -> 2",
                "generation changed 2222 -> 3333",
                "VNN map changed 0 1 -> 0 1 2",
                "public address 192.0.2.3 moved from node 1 to node 2",
            ],
        )

    def test_banned(self) -> None:
        """A flag change of a connected node: BANNED."""
        banned = N.NODE_FLAGS_BANNED
        new = replaceNode(healthy(T0 + 1), 1, flags=banned)
        self.assertEqual(
            changes(healthy(), new), ["node 1 became BANNED|INACTIVE (was OK)"]
        )

    def test_stopsAnswering(self) -> None:
        """A connected node that stops answering (hung), then answers."""
        hung = replaceNode(
            healthy(T0 + 1),
            1,
            error="ETIMEDOUT",
            nodemap=None,
            recmode=None,
            generation=None,
            vnnmap=None,
            addresses=None,
        )
        self.assertEqual(
            changes(healthy(), hung), ["node 1 does not answer (ETIMEDOUT)"]
        )
        self.assertEqual(changes(hung, healthy(T0 + 2)), ["node 1 answers again"])

    def test_recoveryMode(self) -> None:
        """Recovery mode ACTIVE when any node is in recovery, then NORMAL;
        the INVALID generation of a recovery is no generation change."""
        inRecovery = replaceNode(
            healthy(T0 + 1),
            2,
            recmode=N.CTDB_RECOVERY_ACTIVE,
            generation=F.INVALID_GENERATION,
        )
        self.assertEqual(changes(healthy(), inRecovery), ["recovery mode ACTIVE"])
        self.assertEqual(
            changes(inRecovery, healthy(T0 + 2, generation=4444)),
            ["recovery mode NORMAL"],
        )

    def test_leaderUnknown(self) -> None:
        """An election (the broadcast says UNKNOWN)."""
        new = dataclasses.replace(healthy(T0 + 1), leader=CTDB_UNKNOWN_PNN)
        self.assertEqual(changes(healthy(), new), ["leader changed 2 -> UNKNOWN"])

    def test_addresses(self) -> None:
        """Addresses added, unassigned, assigned and removed."""
        old = dataclasses.replace(
            healthy(),
            addresses=(
                AddressView(IPS[0], 0),
                AddressView(IPS[1], CTDB_UNKNOWN_PNN),
                AddressView(IPS[2], 2),
            ),
        )
        new = dataclasses.replace(
            healthy(T0 + 1),
            addresses=(
                AddressView(IPS[0], CTDB_UNKNOWN_PNN),
                AddressView(IPS[1], 1),
                AddressView("192.0.2.4", 1),
            ),
        )
        self.assertEqual(
            changes(old, new),
            [
                "public address 192.0.2.1 unassigned (was on node 0)",
                "public address 192.0.2.2 assigned to node 1",
                "public address 192.0.2.4 added (on node 1)",
                "public address 192.0.2.3 removed",
            ],
        )

    def test_nodesAddedAndGone(self) -> None:
        """A node new in the map, and one that left it."""
        four = dataclasses.replace(
            healthy(T0 + 1),
            nodes=healthy().nodes[:2] + (NodeView(3, "10.0.0.4", DOWN, error="x"),),
        )
        self.assertEqual(
            changes(healthy(), four),
            [
                "node 2 is gone from the node map",
                "node 3 appeared (DISCONNECTED|UNHEALTHY|INACTIVE)",
            ],
        )


class EventLogTests(SynchronousTestCase):
    """L{EventLog}: a run of snapshots, the daemon lost and back."""

    def test_run(self) -> None:
        """The first snapshot says what is watched; a lost daemon is one
        event however long it stays away; on its return the cluster is
        compared with the last snapshot that saw it; times are the
        snapshots'."""
        log = EventLog()
        self.assertEqual(
            log.observe(healthy()), [Event(T0, "watching 3 nodes through node 0")]
        )
        self.assertEqual(
            log.observe(gone(T0 + 1)),
            [
                Event(
                    T0 + 1, "cannot see the cluster: cannot connect: Connection refused"
                )
            ],
        )
        self.assertEqual(log.observe(gone(T0 + 2)), [])
        self.assertEqual(log.lastGood, healthy())
        new = log.observe(nodeTwoDown(T0 + 3))
        self.assertEqual(
            [e.text for e in new][:2],
            [
                "connected again, through node 0",
                "node 2 became DISCONNECTED|UNHEALTHY|INACTIVE (was OK)",
            ],
        )
        self.assertEqual({e.time for e in new}, {T0 + 3})
        self.assertEqual(len(log.recent(100)), 2 + len(new))
        self.assertEqual(log.recent(1), [new[-1]])
        self.assertEqual(log.recent(0), [])

    def test_startsGone(self) -> None:
        """No daemon at the start: one event."""
        log = EventLog()
        self.assertEqual(
            [e.text for e in log.observe(gone(T0))],
            ["cannot see the cluster: cannot connect: Connection refused"],
        )
        self.assertIsNone(log.lastGood)

    def test_keep(self) -> None:
        """Only the newest C{keep} events are kept."""
        log = EventLog(keep=3)
        for i in range(4):
            log.observe(healthy(T0 + 2 * i))
            log.observe(gone(T0 + 2 * i + 1))
        self.assertEqual(len(log.events), 3)
        self.assertEqual(log.events[-1].time, T0 + 7)
