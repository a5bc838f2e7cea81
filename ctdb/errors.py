# -*- test-case-name: tests.protocols.test_client -*-
"""Typed errors of txctdb."""

from __future__ import annotations


class CTDBError(Exception):
    """Base of every txctdb error."""


class MalformedPacket(CTDBError, ValueError):
    """A packet or payload that does not decode."""


class ConfigError(CTDBError, ValueError):
    """A bad nodes file, option or configuration value."""


class ControlFailed(CTDBError):
    """A control answered with a non-zero status."""

    def __init__(self, opcode: int, status: int, errmsg: str = "") -> None:
        self.opcode = opcode
        self.status = status
        self.errmsg = errmsg
        super().__init__(f"control {opcode} failed: status {status} {errmsg}".strip())


class ControlTimeout(CTDBError, TimeoutError):
    """A control got no reply in time."""


class NodeUnreachable(CTDBError):
    """The destination node is disconnected or unknown."""


class ConnectionClosed(CTDBError, ConnectionError):
    """The connection to the daemon went away with requests outstanding."""
