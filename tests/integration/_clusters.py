# -*- test-case-name: tests.integration.test_realctdbd -*-
"""
Clusters shared by the integration modules that run the same checks against
our daemon and Samba's real ctdbd: each kind on its own random 127.X.Y.1
range (real ctdbd in 127.20-99, ours in 127.100-250, so they never
overlap), started once and stopped by the PIDs it recorded.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from ctdb.cluster import LocalCluster
from tests.support.realctdbd import RealCtdbdCluster

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
    A module's clusters, one of each kind, each started on first use (and
    then passed to C{settle}, if given).
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
        self._dirs: list[str] = []

    def get(self, kind: str) -> Any:
        if kind not in self._clusters:
            # Short, so that node sockets fit in AF_UNIX's 108 bytes.
            d = tempfile.mkdtemp(prefix=self._prefix, dir="/tmp")
            self._dirs.append(d)
            cluster = setupCluster(kind, d, self._nodes)
            # Registered before it starts, so that stopAll also ends a
            # cluster whose start failed half-way.
            self._clusters[kind] = cluster
            startCluster(cluster, kind)
            if self._settle is not None:
                self._settle(cluster)
        return self._clusters[kind]

    def stopAll(self) -> None:
        clusters, self._clusters = self._clusters, {}
        for cluster in clusters.values():
            cluster.stop()
        dirs, self._dirs = self._dirs, []
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
