# -*- test-case-name: tests.metrics.test_collector -*-
"""
Scraping a node's metrics in tests: the registry's text output parsed back
with prometheus_client's own parser, into a L{Scrape}.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase

from ctdb.daemon.core import Daemon
from ctdb.metrics import nodeRegistry


class Scrape:
    """One scrape: the families by name and every sample's value."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in self.families.values():
            for s in family.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The value of sample C{name} with exactly C{labels}."""
        return self.samples[(name, frozenset((labels or {}).items()))]

    def get(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        return self.samples.get((name, frozenset((labels or {}).items())))

    def since(
        self, before: Scrape, name: str, labels: Mapping[str, str] | None = None
    ) -> float:
        """How much sample C{name} with C{labels} grew since C{before}."""
        return self.value(name, labels) - before.value(name, labels)

    def sampleNames(self) -> set[str]:
        """Every sample name (with _total, _bucket, _sum, _count)."""
        return {name for name, _ in self.samples}

    def withName(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every sample called C{name}, by its labels."""
        return {labels: v for (n, labels), v in self.samples.items() if n == name}


def assertRecoveredSince(
    case: SynchronousTestCase, now: Scrape, before: Scrape
) -> None:
    """The node of scrapes C{before} and C{now} took part in a recovery
    between them: one more at least, another generation, and a later start
    and end of its last recovery."""
    case.assertGreaterEqual(now.since(before, "ctdb_num_recoveries_total"), 1)
    case.assertNotEqual(now.value("ctdb_generation"), before.value("ctdb_generation"))
    for mark in ("started", "finished"):
        case.assertGreater(now.since(before, f"ctdb_last_recovery_{mark}_seconds"), 0)


def scrape(daemon: Daemon) -> Scrape:
    """Scrape C{daemon}'s metrics as the endpoint would serve them."""
    return Scrape(generate_latest(nodeRegistry(daemon)).decode("utf-8"))
