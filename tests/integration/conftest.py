"""
Fixtures for integration tests: real daemons on loopback.

Every cluster gets its own random 127.X.Y.1 base address so that tests never
collide with each other or with other work on the machine, and is stopped
(by the PIDs it recorded) when the test ends.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest

from ctdb.cluster import LocalCluster
from ctdb.helpers import writePrograms


def randomBase(nodes: int = 3) -> str:
    """A random loopback base address with room for C{nodes} nodes."""
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(1, 200)}"


@pytest.fixture
def makeCluster(tmp_path) -> Iterator[Callable[..., LocalCluster]]:  # type: ignore[no-untyped-def]
    """Factory: makeCluster(nodes=3, start=True, **setupOptions) -> LocalCluster."""
    made: list[LocalCluster] = []

    def make(nodes: int = 3, start: bool = True, **options: object) -> LocalCluster:
        cluster = LocalCluster(str(tmp_path / f"cluster{len(made)}"))
        options.setdefault("base", randomBase(nodes))
        cluster.setup(nodes, **options)  # type: ignore[arg-type]
        made.append(cluster)
        if start:
            cluster.start()
        return cluster

    yield make
    for cluster in made:
        try:
            cluster.stop()
        except Exception:  # noqa: BLE001, S110 - one cluster failing to stop must not leave the others running
            pass


@pytest.fixture
def cluster(makeCluster) -> LocalCluster:  # type: ignore[no-untyped-def]
    """A started 3-node cluster."""
    return makeCluster(3)


#: what the ctdbTool fixture gives: ctdbTool(cluster, pnn, *args, timeout=30)
CtdbTool = Callable[..., "subprocess.CompletedProcess[str]"]


def sambaTool() -> str | None:
    return shutil.which("ctdb")


@pytest.fixture
def ctdbTool() -> CtdbTool:
    """Run Samba's ctdb tool against a node: ctdbTool(cluster, pnn, *args)."""
    path = sambaTool()
    assert path is not None, "Samba's ctdb tool is not installed (make install)"

    def run(
        cluster: LocalCluster, pnn: int, *args: str, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
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

    return run


@pytest.fixture(scope="session")
def helperBin(tmp_path_factory: pytest.TempPathFactory) -> str:
    """
    A directory off C{PATH} with Samba's test helper programs as txctdb
    writes them (L{ctdb.helpers.writePrograms}: C{dummy_client},
    C{ctdb-db-test}, ...), each running with this Python.
    """
    directory = str(tmp_path_factory.mktemp("helper-bin"))
    writePrograms(directory)
    return directory
