# -*- test-case-name: tests.transports -*-
"""
Test doubles and set-ups shared by the tests of L{ctdb.transports}.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

from twisted.internet import unix
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from ctdb.transports.clientsocket import ClientProtocol, ClientWriteBatch


class RecordingTransport:
    """A transport that records each write (it has no socket, so a
    L{ctdb.transports._write.PacketWriter} on it calls write())."""

    disconnecting = False

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)


class FakeDaemon:
    """The daemon as a client connection sees it: told of its clients, it
    answers every packet from one with the packet itself."""

    def __init__(self) -> None:
        self.clients: list[ClientProtocol] = []

    def clientConnected(self, client: ClientProtocol) -> None:
        self.clients.append(client)

    def clientPacketReceived(self, client: ClientProtocol, packet: bytes) -> None:
        client.sendPacket(packet)

    def clientDisconnected(self, client: ClientProtocol) -> None:
        self.clients.remove(client)


def recordingClient(
    writes: ClientWriteBatch, daemon: FakeDaemon | None = None
) -> ClientProtocol:
    """A client of C{daemon} (or a new L{FakeDaemon}), connected to a
    L{RecordingTransport}, whose node's batch is C{writes}."""
    client = ClientProtocol(FakeDaemon() if daemon is None else daemon, writes)
    client.makeConnection(RecordingTransport())
    return client


def written(client: ClientProtocol) -> list[bytes]:
    """Everything written to C{client}'s L{RecordingTransport}, by write."""
    assert isinstance(client.transport, RecordingTransport)
    return client.transport.writes


class _OneProtocol(Factory):
    def __init__(self, protocol: Protocol) -> None:
        self.protocol_ = protocol

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        return self.protocol_


def unixConnection(
    case: SynchronousTestCase,
    protocol: Protocol,
    portClass: type[unix.Port] = unix.Port,
) -> tuple[unix.Port, MemoryReactorClock, socket.socket]:
    """
    A real UNIX stream port of C{portClass} in a temporary directory, on a
    L{MemoryReactorClock} (nothing runs it: the test calls C{doRead} and
    C{doWrite} by hand), with one accepted connection, whose protocol is
    C{protocol}, and the peer's socket (non-blocking).  All is closed at the
    end of C{case}.
    """
    reactor = MemoryReactorClock()
    directory = tempfile.mkdtemp()
    case.addCleanup(shutil.rmtree, directory, True)
    path = os.path.join(directory, "s")
    port = portClass(
        path,  # type: ignore[arg-type]  # str at run time
        _OneProtocol(protocol),
        reactor=reactor,
    )
    port.startListening()
    case.addCleanup(port.connectionLost, Failure(ConnectionDone()))
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    case.addCleanup(peer.close)
    peer.connect(path)
    peer.setblocking(False)
    port.doRead()
    assert protocol.transport is not None, "not accepted"
    transport = protocol.transport

    def close() -> None:
        if transport.connected:  # type: ignore[attr-defined]
            transport.connectionLost(Failure(ConnectionDone()))  # type: ignore[attr-defined]

    case.addCleanup(close)
    return port, reactor, peer


def drain(peer: socket.socket) -> bytes:
    """Everything C{peer} can read now."""
    got = []
    while True:
        try:
            data = peer.recv(1 << 20)
        except BlockingIOError:
            break
        if not data:
            break
        got.append(data)
    return b"".join(got)
