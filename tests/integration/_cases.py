# -*- test-case-name: tests.integration.test_smoke -*-
"""
The integration suite's test case base: real daemons on loopback, under
trial as well as pytest.

L{IntegrationCase} gives a test, as methods, the helpers of
L{tests.integration._clusters}: clusters of our daemons
(L{IntegrationCase.makeCluster}), Samba's C{ctdb} tool pointed at a node
(L{IntegrationCase.ctdbTool}), short temporary directories and the
directory of Samba's test helper programs.  Every cluster gets its own
random 127.X.Y.Z base address, so that tests never collide with each other
or with other work on the machine, and is stopped (by the PIDs it recorded)
when the test ends.

State that the tests of one class share (a module-scoped fixture, before)
lives on the class: L{IntegrationCase.classResource} makes it in the first
test that asks for it, and C{addClassCleanup} undoes it.  pytest (like
unittest's runner) calls the class cleanups after the class's last test;
trial calls neither C{setUpClass}/C{tearDownClass} (nor the class
cleanups) nor C{setUpModule}/C{tearDownModule}: checked with Twisted 26.10,
whose suite runs each test alone.  (It would build a module's suite from a
module-level C{testSuite()}, but not when one class or test is named on its
command line.)  So the class cleanups of one class also run when a test of
another L{IntegrationCase} class starts, and at the latest when the process
exits; under pytest that finds them done already.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from twisted.trial.unittest import SynchronousTestCase

from ctdb.cluster import LocalCluster

from ._clusters import ctdbTool, helperBin, makeCluster, randomBase, tempDir

_T = TypeVar("_T")


#: the class whose class cleanups are still to run (trial never runs them)
_classWithState: type[IntegrationCase] | None = None


def _endClassState() -> None:
    """Run the class cleanups of the class that has state, if any."""
    global _classWithState
    owner, _classWithState = _classWithState, None
    if owner is None:
        return
    owner.doClassCleanups()
    for _, error, tb in getattr(owner, "tearDown_exceptions", []):
        # There is no test to fail any more: say it where a run shows it.
        sys.stderr.write(f"cleanup of {owner.__qualname__} failed:\n")
        traceback.print_exception(type(error), error, tb, file=sys.stderr)


atexit.register(_endClassState)


class _Failed:
    """A class resource whose making failed: every test that asks fails so."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class IntegrationCase(SynchronousTestCase):
    """A test case that starts real daemons, and stops them afterwards."""

    #: what L{classResource} made, on the class whose tests share it
    _classResources: ClassVar[dict[str, object]]

    def setUp(self) -> None:
        super().setUp()
        global _classWithState
        if _classWithState is not type(self):
            # Under trial the previous class's tests are over; under pytest
            # (or with a suite that calls tearDownClass but not the class
            # cleanups) this runs whatever of them is left, if anything.
            _endClassState()
            _classWithState = type(self)

    # -- per test -------------------------------------------------------------

    def mktempDirectory(self, prefix: str = "txctdb-") -> str:
        """A new short directory under /tmp, removed after the test."""
        return tempDir(self, prefix)

    def makeCluster(
        self, nodes: int = 3, start: bool = True, **setupOptions: Any
    ) -> LocalCluster:
        """
        A cluster of C{nodes} of our daemons (L{LocalCluster.setup} takes
        C{setupOptions}; the base address is random unless given), started
        unless C{start} is false, and stopped after the test.
        """
        return makeCluster(self, nodes, start, **setupOptions)

    def ctdbTool(
        self, cluster: LocalCluster, pnn: int, *args: str, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run Samba's ctdb tool against node C{pnn}: its exit code and output."""
        return ctdbTool(cluster, pnn, *args, timeout=timeout)

    def helperBin(self) -> str:
        """The directory of Samba's test helper programs (L{_clusters.helperBin})."""
        return helperBin()

    # -- shared by the tests of a class -------------------------------------------

    def classResource(self, name: str, make: Callable[[], _T]) -> _T:
        """
        What C{make()} returns, made by the first test of this class that
        asks for C{name} and shared by the others.  C{make} registers what
        undoes it with C{addClassCleanup}.  If C{make} fails, every test of
        the class that asks fails with the same error (as with a failing
        module-scoped pytest fixture) rather than trying again.
        """
        cls = type(self)
        if "_classResources" not in cls.__dict__:
            cls._classResources = {}
            cls.addClassCleanup(delattr, cls, "_classResources")
        resources = cls._classResources
        if name not in resources:
            try:
                resources[name] = make()
            except Exception as e:  # noqa: BLE001 - kept, raised again below
                resources[name] = _Failed(e)
        made = resources[name]
        if isinstance(made, _Failed):
            raise made.error
        return made  # type: ignore[return-value]

    def classDirectory(self, prefix: str = "txctdb-") -> str:
        """A new short directory under /tmp, removed after the class's tests."""
        directory = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        type(self).addClassCleanup(shutil.rmtree, directory, True)
        return directory

    def makeClassCluster(
        self, nodes: int = 3, start: bool = True, **setupOptions: Any
    ) -> LocalCluster:
        """
        As L{makeCluster}, but stopped after the last test of the class
        (hold it with L{classResource}).
        """
        directory = self.classDirectory("txctdb-cluster-")
        cluster = _setUpCluster(directory, nodes, setupOptions)
        type(self).addClassCleanup(cluster.stop)
        if start:
            cluster.start()
        return cluster

    def sharedCluster(self, nodes: int = 3, **setupOptions: Any) -> LocalCluster:
        """One started cluster for every test of this class."""
        return self.classResource(
            "cluster", lambda: self.makeClassCluster(nodes, **setupOptions)
        )


def _setUpCluster(directory: str, nodes: int, options: dict[str, Any]) -> LocalCluster:
    """A set-up, not yet started, cluster in C{directory}."""
    cluster = LocalCluster(directory)
    options.setdefault("base", randomBase("ours"))
    cluster.setup(nodes, **options)
    return cluster
