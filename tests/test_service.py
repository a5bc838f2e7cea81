# -*- test-case-name: tests.test_service -*-
"""
ctdb.service.buildCTDBService refuses bad configuration with ConfigError
before anything is started.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from twisted.application.service import MultiService
from twisted.internet.testing import MemoryReactorClock

from ctdb.errors import ConfigError, CTDBError
from ctdb.service import buildCTDBService


def build(tmp_path: Path, nodes: str = "127.0.0.1\n", **kwargs: object) -> MultiService:
    (tmp_path / "nodes").write_text(nodes)
    kwargs.setdefault("socketPath", str(tmp_path / "ctdbd.socket"))
    return buildCTDBService(
        reactor=MemoryReactorClock(),  # type: ignore[arg-type]  # no IReactorProcess
        nodesFile=str(tmp_path / "nodes"),
        **kwargs,  # type: ignore[arg-type]
    )


def test_builds(tmp_path: Path) -> None:
    """A good configuration builds a MultiService with tunables applied."""
    service = build(tmp_path, tunables={"KeepaliveInterval": 7})
    daemon = service.getServiceNamed("daemon")
    assert daemon.tunables.KeepaliveInterval == 7
    assert service.getServiceNamed("clients") is not None


def test_unknownTunable(tmp_path: Path) -> None:
    """An unknown tunable is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="unknown tunable NoSuchTunable"):
        build(tmp_path, tunables={"NoSuchTunable": 1})


def test_nonLocalAddress(tmp_path: Path) -> None:
    """A nodes file whose only address is not local is a ConfigError."""
    with pytest.raises(ConfigError, match="no address of the nodes file is local"):
        build(tmp_path, "10.254.254.254\n")


def test_explicitNonLocalAddress(tmp_path: Path) -> None:
    """An explicit address that is listed but not local is a ConfigError."""
    with pytest.raises(ConfigError, match="10.254.254.254 is not a local address"):
        build(tmp_path, "127.0.0.1\n10.254.254.254\n", address="10.254.254.254")


def test_addressNotInNodes(tmp_path: Path) -> None:
    """An explicit address missing from the nodes file is a ConfigError."""
    with pytest.raises(ConfigError, match="127.0.0.9 is not in the nodes file"):
        build(tmp_path, address="127.0.0.9")


def test_missingNodesFile(tmp_path: Path) -> None:
    """A missing nodes file is a ConfigError (also a CTDBError and ValueError)."""
    with pytest.raises(ConfigError, match="cannot read nodes file") as caught:
        buildCTDBService(
            reactor=MemoryReactorClock(),  # type: ignore[arg-type]  # no IReactorProcess
            nodesFile=str(tmp_path / "absent"),
            socketPath=str(tmp_path / "s"),
        )
    assert isinstance(caught.value, CTDBError)
    assert isinstance(caught.value, ValueError)


def test_badLogLevel(tmp_path: Path) -> None:
    """An unknown log level name is a ConfigError."""
    with pytest.raises(ConfigError, match="invalid log level"):
        build(tmp_path, logLevel="LOUD")


def test_socketInUse(tmp_path: Path) -> None:
    """A socket another process is serving is a ConfigError, and is left alone."""
    path = str(tmp_path / "ctdbd.socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        with pytest.raises(ConfigError, match="is in use by a running daemon"):
            build(tmp_path, socketPath=path)
        assert os.path.exists(path)


def test_staleSocketRemoved(tmp_path: Path) -> None:
    """A socket file nobody serves (left by a crash) is removed, not an error."""
    path = str(tmp_path / "ctdbd.socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)
    assert os.path.exists(path)
    build(tmp_path, socketPath=path)
    assert not os.path.exists(path)
