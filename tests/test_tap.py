# -*- test-case-name: tests.test_tap -*-
"""
ctdb.tap.makeService builds, from parsed options, a MultiService of named
children that listens only when started, on the reactor it is given.
"""

from __future__ import annotations

from pathlib import Path

from twisted.application.service import IService, MultiService
from twisted.internet.testing import MemoryReactorClock

from ctdb import tap
from ctdb.daemon.core import Daemon


def makeOptions(tmp_path: Path, *extra: str) -> tap.Options:
    nodes = tmp_path / "nodes"
    nodes.write_text("127.0.0.1\n127.0.0.2\n")
    options = tap.Options()
    options.parseOptions(
        [
            "--nodes",
            str(nodes),
            "--socket",
            str(tmp_path / "run" / "ctdbd.socket"),
            "--port",
            "4999",
            *extra,
        ]
    )
    return options


def test_namedChildren(tmp_path: Path) -> None:
    """The service is a MultiService with children "daemon" and "clients"."""
    service = tap.makeService(makeOptions(tmp_path), MemoryReactorClock())
    assert isinstance(service, MultiService)
    assert IService.providedBy(service)
    assert {child.name for child in service} == {"daemon", "recovery", "clients"}
    daemon = service.getServiceNamed("daemon")
    assert isinstance(daemon, Daemon)
    assert daemon.pnn == 0


def test_buildDoesNotListen(tmp_path: Path) -> None:
    """Building the service opens nothing: no TCP port, no unix socket."""
    reactor = MemoryReactorClock()
    tap.makeService(makeOptions(tmp_path), reactor)
    assert reactor.tcpServers == []
    assert reactor.unixServers == []
    assert reactor.tcpClients == []
    assert not (tmp_path / "run" / "ctdbd.socket").exists()
    # ... but the socket's directory is made ready.
    assert (tmp_path / "run").is_dir()


def test_startListens(tmp_path: Path) -> None:
    """Started, the node listens on its address and port, connects to its
    peer from its own address, and serves the client socket; it stops
    cleanly."""
    reactor = MemoryReactorClock()
    service = tap.makeService(makeOptions(tmp_path, "--address", "127.0.0.1"), reactor)
    service.startService()
    try:
        [(port, _factory, _backlog, interface)] = reactor.tcpServers
        assert (port, interface) == (4999, "127.0.0.1")
        [(host, peerPort, _f, _timeout, bindAddress)] = reactor.tcpClients
        assert (host, peerPort, bindAddress) == ("127.0.0.2", 4999, ("127.0.0.1", 0))
        [unix] = reactor.unixServers
        assert unix[0] == str(tmp_path / "run" / "ctdbd.socket")
    finally:
        stopped = service.stopService()
    assert stopped is not None
    assert not service.running


def test_chosenAddress(tmp_path: Path) -> None:
    """--address picks the node: 127.0.0.2 is pnn 1 of the nodes file."""
    options = makeOptions(tmp_path, "--address", "127.0.0.2")
    service = tap.makeService(options, MemoryReactorClock())
    assert isinstance(service, MultiService)
    daemon = service.getServiceNamed("daemon")
    assert isinstance(daemon, Daemon)
    assert daemon.pnn == 1
