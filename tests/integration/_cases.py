# -*- test-case-name: tests.integration.test_smoke -*-
"""
The integration suite's test case base: real daemons on loopback, under
trial as well as pytest.

L{IntegrationCase} gives a test what tests/integration/conftest.py's
fixtures give a pytest function: clusters of our daemons
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
import os
import random
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from twisted.trial.unittest import SynchronousTestCase

from ctdb.cluster import LocalCluster
from ctdb.helpers import writePrograms

_T = TypeVar("_T")


def randomBase(nodes: int = 3) -> str:
    """A random loopback base address with room for C{nodes} nodes."""
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(1, 200)}"


def sambaTool() -> str | None:
    """The path of Samba's C{ctdb} tool, if it is installed."""
    return shutil.which("ctdb")


def shortTempDirectory(prefix: str = "txctdb-") -> str:
    """
    A new directory directly under /tmp: node sockets below it must fit in
    AF_UNIX's 108 bytes (and trial's or pytest's own temporary directories
    are deep, or inside the checkout).
    """
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


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

#: the directory of Samba's helper programs, made once per process
_helperBin: list[str] = []


def _removeHelperBin() -> None:
    for directory in _helperBin:
        shutil.rmtree(directory, ignore_errors=True)


atexit.register(_removeHelperBin)


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
        directory = shortTempDirectory(prefix)
        self.addCleanup(shutil.rmtree, directory, True)
        return directory

    def makeCluster(
        self, nodes: int = 3, start: bool = True, **setupOptions: Any
    ) -> LocalCluster:
        """
        A cluster of C{nodes} of our daemons (L{LocalCluster.setup} takes
        C{setupOptions}; the base address is random unless given), started
        unless C{start} is false, and stopped after the test.
        """
        directory = self.mktempDirectory("txctdb-cluster-")
        cluster = _setUpCluster(directory, nodes, setupOptions)
        self.addCleanup(cluster.stop)
        if start:
            cluster.start()
        return cluster

    def ctdbTool(
        self, cluster: LocalCluster, pnn: int, *args: str, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run Samba's ctdb tool against node C{pnn}: its exit code and output."""
        path = sambaTool()
        if path is None:
            self.fail("Samba's ctdb tool is not installed (make install)")
        env = dict(os.environ)
        env.update(cluster.env(pnn))
        return subprocess.run(
            [path, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def helperBin(self) -> str:
        """
        A directory off C{PATH} with Samba's test helper programs as txctdb
        writes them (L{ctdb.helpers.writePrograms}: C{dummy_client},
        C{ctdb-db-test}, ...), each running with this Python; one per
        process, removed when it exits.
        """
        if not _helperBin:
            directory = shortTempDirectory("txctdb-helpers-")
            _helperBin.append(directory)
            writePrograms(directory)
        return _helperBin[0]

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
        directory = shortTempDirectory(prefix)
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
    options.setdefault("base", randomBase(nodes))
    cluster.setup(nodes, **options)
    return cluster
