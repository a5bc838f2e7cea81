# -*- test-case-name: tests.metrics.test_docs -*-
"""
docs/METRICS.md and contrib/grafana/txctdb-dashboard.json against what a
node really serves: the document lists every metric, with its type, and
nothing else; the dashboard is a well-formed Grafana dashboard whose every
expression names metrics that exist.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.protocols import records as R
from tests.events._fakes import eventCluster
from tests.metrics._scrape import Scrape, scrape

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = ROOT / "docs" / "METRICS.md"
DASHBOARD = ROOT / "contrib" / "grafana" / "txctdb-dashboard.json"

ROW = re.compile(r"^\| `(ctdb_[a-z0-9_]+)` \| (\w+) \|", re.MULTILINE)
NAME = re.compile(r"\bctdb_[a-z0-9_]+")


def _fullScrape(case: SynchronousTestCase) -> Scrape:
    """A scrape of a settled node with event scripts, public addresses and
    a database of each kind, so that every metric has samples."""
    clock = Clock()
    cluster, _ = eventCluster(
        3, clock, publicAddresses="10.0.0.41/24 eth0\n10.0.0.42/24 eth0\n"
    )
    case.addCleanup(cluster.stop)
    cluster.advance(10, step=0.05)
    manager = cluster.databases(0)
    manager.attach("v.tdb", 0)
    manager.attach("p.tdb", R.DB_FLAGS_PERSISTENT)
    manager.attach("r.tdb", R.DB_FLAGS_REPLICATED)
    return scrape(cluster[0])


def _exposed(scrape: Scrape) -> dict[str, str]:
    """Each family's name as written in the document (counters with
    _total) and its type."""
    names = {}
    for name, family in scrape.families.items():
        if family.type == "counter":
            name += "_total"
        names[name] = family.type
    return names


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every panel, those inside rows included."""
    out = []
    for panel in panels:
        out.append(panel)
        out += _panels(panel.get("panels", []))
    return out


class DocumentTests(SynchronousTestCase):
    """docs/METRICS.md lists exactly the metrics a node serves."""

    def test_everyMetricListed(self) -> None:
        """Every metric of a node, and only those, is in the document's
        tables, with its type."""
        documented = {m.group(1): m.group(2) for m in ROW.finditer(DOC.read_text())}
        exposed = _exposed(_fullScrape(self))
        self.assertEqual(sorted(set(exposed) - set(documented)), [])
        self.assertEqual(sorted(set(documented) - set(exposed)), [])
        self.assertEqual(documented, exposed)

    def test_listedOnce(self) -> None:
        """No metric has two rows."""
        names = [m.group(1) for m in ROW.finditer(DOC.read_text())]
        self.assertEqual(len(names), len(set(names)))


class DashboardTests(SynchronousTestCase):
    """The Grafana dashboard."""

    def setUp(self) -> None:
        self.dashboard = json.loads(DASHBOARD.read_text())
        self.panels = _panels(self.dashboard["panels"])

    def test_wellFormed(self) -> None:
        """A dashboard: title, uid, schema version, a data source input;
        panels with unique ids inside the 24-column grid; every panel but a
        row has queries against the data source."""
        d = self.dashboard
        self.assertEqual(d["uid"], "txctdb-cluster")
        self.assertTrue(d["title"])
        self.assertIsInstance(d["schemaVersion"], int)
        self.assertEqual(d["__inputs"][0]["pluginId"], "prometheus")
        ids = [p["id"] for p in self.panels]
        self.assertEqual(len(ids), len(set(ids)))
        for p in self.panels:
            grid = p["gridPos"]
            self.assertLessEqual(grid["x"] + grid["w"], 24, p["title"])
            self.assertGreater(grid["h"], 0)
            if p["type"] == "row":
                continue
            self.assertIn(p["type"], ("timeseries", "stat", "table"))
            self.assertEqual(p["datasource"]["uid"], "${DS_PROMETHEUS}")
            self.assertTrue(p["targets"], p["title"])
            refIds = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refIds), len(set(refIds)))
            for t in p["targets"]:
                self.assertTrue(t["expr"].strip(), p["title"])

    def test_expressionsNameMetrics(self) -> None:
        """Every ctdb_ name in an expression (and in the node variable's
        query) is a sample a node serves, each metric the dashboard uses
        is one of ours, and the panels use the node variable."""
        served = _fullScrape(self).sampleNames()
        exprs = [t["expr"] for p in self.panels for t in p.get("targets", [])]
        exprs += [v["definition"] for v in self.dashboard["templating"]["list"]]
        used = set()
        for expr in exprs:
            names = NAME.findall(expr)
            self.assertTrue(names, expr)
            used.update(names)
            for name in names:
                self.assertIn(name, served, expr)
        for p in self.panels:
            for t in p.get("targets", []):
                self.assertIn('instance=~"$instance"', t["expr"], p["title"])
        self.assertGreater(len(used), 30)
