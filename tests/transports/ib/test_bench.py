# -*- test-case-name: tests.transports.ib.test_bench -*-
"""
bench/bench_ib.py runs: its fake-verbs ping-pong, briefly, gives a round
trip for each size, and its packets are the sizes they claim.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
from pathlib import Path
from types import ModuleType
from typing import Any

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.transports.ib._harness import reactor

ROOT = Path(__file__).resolve().parents[3]


def benchModule() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_ib", ROOT / "bench" / "bench_ib.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BenchTests(TestCase):
    """The benchmark, at a small count."""

    def test_packetSizes(self) -> None:
        """Each packet is exactly the size it is measured as."""
        bench = benchModule()
        for size in bench.SIZES:
            self.assertEqual(len(bench.packet(size)), size)

    @defer.inlineCallbacks
    def test_fakeRuns(self) -> Any:
        """The fake-verbs run measures every size and prints a table."""
        bench = benchModule()
        out = io.StringIO()
        args = argparse.Namespace(count=50, warmup=5)
        with contextlib.redirect_stdout(out):
            results = yield bench.runFake(reactor, args)
        self.assertEqual(sorted(results), [64, 128, 256, 512])
        for median, p90, p99 in results.values():
            self.assertGreater(median, 0)
            self.assertLessEqual(median, p99)
        self.assertIn("one-way", out.getvalue())
