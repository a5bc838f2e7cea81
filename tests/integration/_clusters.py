# -*- test-case-name: tests.integration.test_realctdbd -*-
"""
What the integration modules share, for trial as well as pytest.

Clusters: every cluster gets its own random 127.X.Y.1 range (real ctdbd in
127.20-99, ours in 127.100-250, so they never overlap, nor touch the
127.0.0.1-3 of Samba's own integration suite) and is stopped by the PIDs it
recorded.  A test's own clusters (L{makeCluster}) stop when the test ends;
a class's shared ones (L{SharedClusters}, or anything else in a L{Shared})
start on first use and stop after the class's last test.

Class fixtures under both runners: pytest calls a TestCase class's
C{setUpClass} and C{tearDownClass}, trial does not (it calls neither those
nor a module's C{setUpModule}/C{tearDownModule}).  So a module whose
classes share something ends with C{testSuite = trialSuite(__name__)}:
trial builds that module's tests from C{testSuite()} (its documented
hook, L{twisted.trial.runner.TestLoader.loadModule}), whose suite calls
each class's C{setUpClass} before its tests and C{tearDownClass} after
them, even when they fail.  Running one class or method by name
(C{trial tests.integration.test_x.SomeTests}) bypasses the hook; then
the C{atexit} net of L{SharedClusters} stops what the class started.
"""

from __future__ import annotations

import atexit
import functools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from twisted.python.failure import Failure
from twisted.trial.runner import ErrorHolder, TestLoader, TestSuite

from ctdb.cluster import LocalCluster
from ctdb.helpers import writePrograms
from tests.support.realctdbd import RealCtdbdCluster

T = TypeVar("T")

#: start timeouts by kind; real ctdbd takes longer to settle its first recovery
START_TIMEOUT = {"real": 40.0, "ours": 30.0}


def randomBase(kind: str) -> str:
    """127.X.Y.1 with X in the range of C{kind} ("real" or "ours")."""
    low, high = (20, 99) if kind == "real" else (100, 250)
    return f"127.{random.randint(low, high)}.{random.randint(0, 255)}.1"


def setupCluster(kind: str, directory: str, nodes: int) -> Any:
    """A set-up, not yet started, cluster of C{kind} in C{directory}."""
    if kind == "real":
        real = RealCtdbdCluster(directory, base=randomBase(kind), nodes=nodes)
        real.setup()
        return real
    ours = LocalCluster(directory)
    ours.setup(nodes, base=randomBase(kind))
    return ours


def startCluster(cluster: Any, kind: str) -> None:
    """Start every node of C{cluster}; waits until it is connected."""
    cluster.start(timeout=START_TIMEOUT[kind])


class SharedClusters:
    """
    A module's or class's clusters, one of each kind, each started on
    first use (and then passed to C{settle}, if given) and stopped by
    L{stopAll}: from C{tearDownClass} (see L{trialSuite}), and at exit in
    any case.  A cluster that failed to start is stopped at once, and every
    later L{get} of its kind fails too, without starting another.
    """

    def __init__(
        self,
        prefix: str,
        nodes: int,
        settle: Callable[[Any], None] | None = None,
    ) -> None:
        self._prefix = prefix
        self._nodes = nodes
        self._settle = settle
        self._clusters: dict[str, Any] = {}
        self._failed: dict[str, str] = {}
        self._dirs: list[str] = []
        self._atexit = False

    def get(self, kind: str) -> Any:
        if kind in self._failed:
            raise RuntimeError(
                f"the shared {kind} cluster failed to start: {self._failed[kind]}"
            )
        if kind not in self._clusters:
            if not self._atexit:
                # For an interrupted run, or a trial run of one class.
                atexit.register(self.stopAll)
                self._atexit = True
            # Short, so that node sockets fit in AF_UNIX's 108 bytes.
            d = tempfile.mkdtemp(prefix=self._prefix, dir="/tmp")
            self._dirs.append(d)
            cluster = setupCluster(kind, d, self._nodes)
            # Registered before it starts, so that stopAll also ends a
            # cluster whose start failed half-way.
            self._clusters[kind] = cluster
            try:
                startCluster(cluster, kind)
                if self._settle is not None:
                    self._settle(cluster)
            except BaseException as e:
                self._failed[kind] = repr(e)
                del self._clusters[kind]
                cluster.stop()
                raise
        return self._clusters[kind]

    def stopAll(self) -> None:
        """Stop every cluster (all of them even if one fails to stop, and
        then raise the first failure) and remove their directories."""
        clusters, self._clusters = self._clusters, {}
        self._failed = {}
        errors: list[Exception] = []
        for cluster in clusters.values():
            try:
                cluster.stop()
            except Exception as e:  # noqa: BLE001 - the others must stop too; raised below
                errors.append(e)
        dirs, self._dirs = self._dirs, []
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        if errors:
            raise errors[0]


class Shared(Generic[T]):
    """
    Something the tests of a class share (a cluster with an smbd on each
    node, say): made by C{make} on first use, ended by C{end} when L{stop}
    is called (from the class's C{tearDownClass}), and at exit in any case.
    C{make} must end whatever it started before it raises; a failed make
    is not tried again: every later L{get} fails at once.
    """

    def __init__(self, make: Callable[[], T], end: Callable[[T], None]) -> None:
        self._make = make
        self._end = end
        self._made: list[T] = []
        self._failed = ""
        self._atexit = False

    def get(self) -> T:
        if self._failed:
            raise RuntimeError(f"failed to start: {self._failed}")
        if not self._made:
            if not self._atexit:
                # For an interrupted run, or a trial run of one class.
                atexit.register(self.stop)
                self._atexit = True
            try:
                self._made.append(self._make())
            except BaseException as e:
                self._failed = repr(e)
                raise
        return self._made[0]

    def stop(self) -> None:
        made, self._made = self._made, []
        self._failed = ""
        for thing in made:
            self._end(thing)


class ClassFixtureSuite(TestSuite):
    """
    trial's suite of one TestCase class's tests: C{setUpClass} before them
    and C{tearDownClass} after them, as unittest and pytest run a class.
    A failing C{setUpClass} is reported and the tests are not run; a
    failing C{tearDownClass} is reported after them.
    """

    def __init__(self, testClass: type[unittest.TestCase], tests: Any) -> None:
        super().__init__(tests)
        self._testClass = testClass

    def _report(self, hook: str, result: Any) -> None:
        name = f"{self._testClass.__module__}.{self._testClass.__qualname__}"
        ErrorHolder(f"{name}.{hook}", Failure()).run(result)

    def run(self, result: Any) -> Any:  # type: ignore[override]
        if getattr(self._testClass, "__unittest_skip__", False):
            # unittest runs no class fixture of a skipped class
            return super().run(result)
        try:
            self._testClass.setUpClass()
        except Exception:  # noqa: BLE001 - reported as the class's error
            self._report("setUpClass", result)
            return result
        try:
            super().run(result)
        finally:
            try:
                self._testClass.tearDownClass()
            except Exception:  # noqa: BLE001 - reported as the class's error
                self._report("tearDownClass", result)
        return result


def trialSuite(moduleName: str) -> Callable[[], TestSuite]:
    """
    A module's C{testSuite} for trial: each of its TestCase classes in a
    L{ClassFixtureSuite}.  pytest, which runs the class fixtures itself,
    does not collect it (C{__test__ = False}).
    """

    def testSuite() -> TestSuite:
        loader = TestLoader()
        suite = TestSuite()
        for testClass in loader.findTestClasses(sys.modules[moduleName]):
            suite.addTest(ClassFixtureSuite(testClass, loader.loadClass(testClass)))
        return suite

    testSuite.__test__ = False  # type: ignore[attr-defined]
    return testSuite


# -- a test's own directories and clusters ------------------------------------------


def tempDir(case: unittest.TestCase, prefix: str = "txctdb-") -> str:
    """
    A fresh directory removed after the test: under /tmp and short, so
    that node sockets fit in AF_UNIX's 108 bytes (and outside the checkout,
    where trial's C{mktemp} would put it).
    """
    directory = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    case.addCleanup(shutil.rmtree, directory, True)
    return directory


def makeCluster(
    case: unittest.TestCase, nodes: int = 3, start: bool = True, **options: Any
) -> LocalCluster:
    """
    A cluster of C{nodes} of our daemons (C{LocalCluster.setup} takes
    C{options}), started unless C{start} is false, stopped by its recorded
    PIDs when the test ends (each cluster's stop a cleanup of its own, so
    one failing does not leave the others running).
    """
    cluster = LocalCluster(tempDir(case, "txctdb-c-"))
    options.setdefault("base", randomBase("ours"))
    cluster.setup(nodes, **options)
    case.addCleanup(cluster.stop)
    if start:
        cluster.start()
    return cluster


def waitFor(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1
) -> None:
    """Poll C{predicate} every C{interval} s until it holds; fail saying
    C{what} was awaited if C{timeout} s pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def sambaTool() -> str:
    """The path of Samba's ctdb tool; fails if it is not installed."""
    path = shutil.which("ctdb")
    assert path is not None, "Samba's ctdb tool is not installed (make install)"
    return path


def ctdbTool(
    cluster: Any, pnn: int, *args: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run Samba's ctdb tool against node C{pnn} of C{cluster}."""
    env = dict(os.environ)
    env.update(cluster.env(pnn))
    return subprocess.run(
        [sambaTool(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@functools.cache
def helperBin() -> str:
    """
    A directory off C{PATH} with Samba's test helper programs as txctdb
    writes them (L{ctdb.helpers.writePrograms}: C{dummy_client},
    C{ctdb-db-test}, ...), each running with this Python; written once per
    process and removed at exit.
    """
    directory = tempfile.mkdtemp(prefix="txctdb-hb-", dir="/tmp")
    atexit.register(shutil.rmtree, directory, True)
    writePrograms(directory)
    return directory
