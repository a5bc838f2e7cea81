# -*- test-case-name: tests.takeover.test_node -*-
"""
What the public-IP controls of a node share: their answers, ctdbd's size
check, and how ctdbd prints a few things in its log lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctdb.errors import MalformedPacket
from ctdb.protocols import packet as P
from ctdb.protocols.controls import Control

if TYPE_CHECKING:
    from ctdb.daemon.core import ControlResult

OK: ControlResult = (0, b"", b"")


def failed(message: str, status: int = -1) -> ControlResult:
    """A failed control with a message for the tool (ctdbd's own failures
    carry none; ours say why)."""
    return (status, b"", message.encode())


def exactSize(req: P.ReqControl, size: int) -> None:
    """CHECK_CONTROL_DATA_SIZE: the payload must be exactly C{size} bytes."""
    if len(req.data) != size:
        raise MalformedPacket(
            f"{Control(req.opcode).name}: data size {len(req.data)} != {size}"
        )


def cstring(text: str) -> bytes:
    """A NUL-terminated string, as the RELEASE_IP and TAKE_IP messages."""
    return text.encode() + b"\0"


def signedPnn(pnn: int) -> int:
    """A pnn as ctdbd prints it with %d (CTDB_UNKNOWN_PNN is -1)."""
    return pnn - (1 << 32) if pnn >= 1 << 31 else pnn
