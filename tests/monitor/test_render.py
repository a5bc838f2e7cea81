# -*- test-case-name: tests.monitor.test_render -*-
"""
L{ctdb.monitor.render}: fixed snapshots as C{--once} text (golden), as
JSON, and as the live view (rendered to a plain rich console).
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time

from rich.console import Console
from twisted.trial.unittest import SynchronousTestCase

from ctdb.monitor.changes import Event, EventLog
from ctdb.monitor.render import (
    EVENTS_SHOWN,
    addressRows,
    nodeRows,
    renderLive,
    renderText,
    snapshotJson,
)
from ctdb.monitor.snapshot import AddressView, Snapshot
from ctdb.protocols import nodestate as N
from ctdb.protocols.packet import CTDB_UNKNOWN_PNN
from tests.monitor._snapshots import (
    DOWN,
    T0,
    gone,
    healthy,
    nodeTwoDown,
    replaceNode,
)

HEALTHY = """\
3 nodes, seen through node 0 (/run/ctdb/ctdbd.socket) at 06:00:00
Leader:        2
Recovery mode: NORMAL
Generation:    1111
VNN map:       0 1 2

PNN  ADDRESS   STATUS  ROLE    RECMODE  GENERATION  VNNMAP  SEES
0    10.0.0.1  OK      local   NORMAL   1111        0 1 2   same
1    10.0.0.2  OK      -       NORMAL   1111        0 1 2   same
2    10.0.0.3  OK      leader  NORMAL   1111        0 1 2   same

PUBLIC ADDRESS  NODE  HOSTABLE ON
192.0.2.1       0     0,1,2
192.0.2.2       1     0,1,2
192.0.2.3       2     0,1,2
"""

NODE_TWO_DOWN = """\
3 nodes, seen through node 0 (/run/ctdb/ctdbd.socket) at 06:00:05
Leader:        0
Recovery mode: NORMAL
Generation:    2222
VNN map:       0 1

PNN  ADDRESS   STATUS                           ROLE          RECMODE  GENERATION  VNNMAP  SEES
0    10.0.0.1  OK                               leader,local  NORMAL   2222        0 1     same
1    10.0.0.2  OK                               -             NORMAL   2222        0 1     same
2    10.0.0.3  DISCONNECTED|UNHEALTHY|INACTIVE  -             -        -           -       no answer: status -1

PUBLIC ADDRESS  NODE  HOSTABLE ON
192.0.2.1       0     0,1
192.0.2.2       1     0,1
192.0.2.3       1     0,1
"""

DISAGREEING = """\
3 nodes, seen through node 0 (/run/ctdb/ctdbd.socket) at 06:00:00
Leader:        2
Recovery mode: ACTIVE (node 1)
Generation:    1111
VNN map:       0 1 2

PNN  ADDRESS   STATUS  ROLE    RECMODE  GENERATION  VNNMAP  SEES
0    10.0.0.1  OK      local   NORMAL   1111        0 1 2   same
1    10.0.0.2  OK      -       ACTIVE   999 !       0 1 !   2:DISCONNECTED|UNHEALTHY|INACTIVE
2    10.0.0.3  OK      leader  NORMAL   1111        0 1 2   same
"""

EVENTS = """\

Recent events:
06:00:00  watching 3 nodes through node 0
06:00:05  node 2 became DISCONNECTED|UNHEALTHY|INACTIVE (was OK)
06:00:05  leader changed 2 -> 0
06:00:05  generation changed 1111 -> 2222
06:00:05  VNN map changed 0 1 2 -> 0 1
06:00:05  public address 192.0.2.3 moved from node 2 to node 1
"""


def text(snapshot: object, events: list[Event] | None = None) -> str:
    return renderText(snapshot, events or [], localtime=time.gmtime)  # type: ignore[arg-type]


class RenderTextTests(SynchronousTestCase):
    """C{--once}: the snapshot as plain text, golden."""

    def test_healthy(self) -> None:
        """All nodes OK and agreeing: the summary, one row a node (the
        leader's and the connected node's roles), the addresses."""
        self.assertEqual(text(healthy()), HEALTHY)

    def test_nodeDown(self) -> None:
        """A disconnected node that does not answer: its flags, dashes,
        and why; the new leader, generation and VNN map."""
        self.assertEqual(text(nodeTwoDown()), NODE_TWO_DOWN)

    def test_disagreement(self) -> None:
        """A node in recovery with another generation, VNN map and node
        map than the leader's: marked with C{!}, and SEES lists what it
        sees otherwise."""
        snapshot = replaceNode(
            healthy(),
            1,
            generation=999,
            vnnmap=(0, 1),
            nodemap=((0, 0), (1, 0), (2, DOWN)),
            recmode=N.CTDB_RECOVERY_ACTIVE,
        )
        self.assertEqual(text(snapshot).split("\n\nPUBLIC")[0] + "\n", DISAGREEING)

    def test_events(self) -> None:
        """Events, when given, follow the addresses, oldest first."""
        log = EventLog()
        log.observe(healthy())
        log.observe(nodeTwoDown())
        self.assertEqual(text(nodeTwoDown(), log.recent(10)), NODE_TWO_DOWN + EVENTS)

    def test_noAddresses(self) -> None:
        """A cluster without public addresses says so."""
        snapshot = Snapshot(
            T0, "/s", pnn=0, leader=0, leaderAge=0.0, nodes=healthy().nodes
        )
        self.assertIn("\nNo public addresses\n", text(snapshot))

    def test_error(self) -> None:
        """A snapshot that saw nothing is one line: the socket and why."""
        self.assertEqual(
            text(gone(T0)),
            "Cannot see the cluster: ctdbd at /run/ctdb/ctdbd.socket: "
            "cannot connect: Connection refused\n",
        )

    def test_leaderUnknown(self) -> None:
        """No LEADER broadcast heard: UNKNOWN, and nobody has the role."""
        snapshot = Snapshot(
            T0, "/s", pnn=0, nodes=healthy().nodes, addresses=healthy().addresses
        )
        out = text(snapshot)
        self.assertIn("Leader:        UNKNOWN (no LEADER broadcast heard)\n", out)
        self.assertNotIn("leader ", out)

    def test_leaderStale(self) -> None:
        """A leader last heard long ago is shown with its age."""
        snapshot = dataclasses.replace(healthy(), leaderAge=12.3)
        self.assertIn("Leader:        2 (last heard 12s ago)\n", text(snapshot))

    def test_deletedLeftOut(self) -> None:
        """A deleted node has no row."""
        snapshot = replaceNode(healthy(), 1, flags=N.NODE_FLAGS_DELETED)
        self.assertEqual([row[0] for row in nodeRows(snapshot)], ["0", "2"])
        self.assertIn("2 nodes,", text(snapshot))

    def test_unassignedAddress(self) -> None:
        """An address no node holds shows UNKNOWN."""
        snapshot = dataclasses.replace(
            healthy(), addresses=(AddressView("192.0.2.9", CTDB_UNKNOWN_PNN),)
        )
        self.assertEqual(addressRows(snapshot), [("192.0.2.9", "UNKNOWN", "-")])


class SnapshotJsonTests(SynchronousTestCase):
    """C{--once --json}."""

    def test_document(self) -> None:
        """Everything the text says, as values; a silent node's answers
        are null; the document survives a JSON round trip."""
        doc = snapshotJson(nodeTwoDown())
        self.assertEqual(json.loads(json.dumps(doc)), doc)
        self.assertEqual(doc["leader"], 0)
        self.assertEqual(doc["generation"], 2222)
        self.assertEqual(doc["vnn_map"], [0, 1])
        self.assertEqual(doc["recovery_mode"], "NORMAL")
        self.assertEqual(doc["public_addresses"][2], {"address": "192.0.2.3", "pnn": 1})
        two = doc["nodes"][2]
        self.assertEqual(two["flags"], ["DISCONNECTED", "UNHEALTHY", "INACTIVE"])
        self.assertEqual(two["status"], "DISCONNECTED|UNHEALTHY|INACTIVE")
        self.assertFalse(two["answered"])
        self.assertEqual(two["error"], "status -1")
        self.assertIsNone(two["generation"])
        zero = doc["nodes"][0]
        self.assertEqual(zero["nodemap"][2]["flags"], two["flags"])
        self.assertEqual(zero["recovery_mode"], "NORMAL")

    def test_noLeader(self) -> None:
        """No broadcast heard: leader null."""
        doc = snapshotJson(dataclasses.replace(healthy(), leaderAge=None))
        self.assertIsNone(doc["leader"])


def live(snapshot: object, events: list[Event], lastGood: object = None) -> str:
    console = Console(
        file=io.StringIO(), width=160, color_system=None, force_terminal=False
    )
    console.print(
        renderLive(
            snapshot,  # type: ignore[arg-type]
            events,
            lastGood=lastGood,  # type: ignore[arg-type]
            interval=1.0,
            localtime=time.gmtime,
        )
    )
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


class RenderLiveTests(SynchronousTestCase):
    """The live view, rendered without colour."""

    def test_rows(self) -> None:
        """The same summary, rows and addresses as the text, and the events."""
        log = EventLog()
        log.observe(healthy())
        log.observe(nodeTwoDown())
        out = live(nodeTwoDown(), log.recent(EVENTS_SHOWN))
        self.assertIn("seen through node 0 (/run/ctdb/ctdbd.socket) at 06:00:05", out)
        self.assertRegex(out, r"Generation +2222")
        for row in nodeRows(nodeTwoDown()):
            self.assertRegex(out, r" +".join(map(re.escape, row)))
        self.assertIn("06:00:05  node 2 became DISCONNECTED|UNHEALTHY|INACTIVE", out)
        self.assertIn("192.0.2.3", out)
        self.assertIn("Refreshing every 1s. Ctrl-C quits.", out)

    def test_lastTen(self) -> None:
        """Only the newest EVENTS_SHOWN events, newest last."""
        events = [Event(T0 + i, f"event number {i:02d}") for i in range(15)]
        out = live(healthy(), events)
        self.assertNotIn("event number 04", out)
        shown = [line for line in out.splitlines() if "event number" in line]
        self.assertEqual(len(shown), EVENTS_SHOWN)
        self.assertTrue(shown[-1].endswith("event number 14"))

    def test_daemonGone(self) -> None:
        """The daemon gone: why, that it is tried again, and the last
        snapshot that saw the cluster, marked stale."""
        out = live(gone(T0 + 9), [], lastGood=healthy())
        self.assertIn(
            "ctdbd at /run/ctdb/ctdbd.socket: cannot connect: Connection refused; "
            "trying again every 1s (06:00:09)",
            out,
        )
        self.assertIn("at 06:00:00  [last seen, stale]", out)
        self.assertIn("(none yet)", out)
