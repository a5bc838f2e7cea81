# -*- test-case-name: tests.test_errors -*-
"""
Every exception of txctdb, each under one base, L{CTDBError}, and all
defined here: a caller can catch whatever txctdb raises with one class, and
find every error in one module (C{twisted.names.error} is the model).  An
error that callers also catch as a builtin keeps that base too: a
L{MalformedPacket} is a C{ValueError}, a L{ControlTimeout} a
C{TimeoutError}, a L{TDBUnavailable} an C{ImportError}.

tests/test_errors.py checks that no module of ctdb/ defines an exception
elsewhere and that each one here is a L{CTDBError}.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ctdb.config import Message


class CTDBError(Exception):
    """Base of every txctdb error."""


# --- the wire ----------------------------------------------------------------------


class MalformedPacket(CTDBError, ValueError):
    """A packet or payload that does not decode."""


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


# --- configuration -----------------------------------------------------------------


class ConfigError(CTDBError, ValueError):
    """A bad nodes file, option or configuration value."""


class ConfigLoadError(ConfigError):
    """ctdbd refuses to start; C{messages} are what it printed on the way
    (L{ctdb.config.Message}s)."""

    def __init__(self, messages: Iterable[Message]) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(m.text for m in self.messages))


class IniSyntaxError(ConfigError):
    """A line of ctdb.conf that tini_parse() gives up on."""


# --- TDB files ---------------------------------------------------------------------


class TDBError(CTDBError):
    """
    A libtdb call failed.

    @ivar code: the C{enum TDB_ERROR} value (C{TDB_ERR_*}), or C{None} when
        the failure came from the operating system (see C{errno}).
    @ivar errno: the C{errno} of a failed open, else C{None}.
    @ivar operation: the libtdb function that failed.
    """

    def __init__(
        self,
        operation: str,
        message: str,
        code: int | None = None,
        errno: int | None = None,
        path: str | None = None,
        codeName: str | None = None,
    ) -> None:
        self.operation = operation
        self.code = code
        self.errno = errno
        self.path = path
        self.message = message
        where = f" ({path})" if path else ""
        name = ""
        if code is not None:
            name = f" [{code if codeName is None else codeName}]"
        super().__init__(f"{operation}{where}: {message}{name}")


class TDBUnavailable(CTDBError, ImportError):
    """libtdb (Debian package C{libtdb1}) could not be loaded."""


# --- RDMA (the InfiniBand node transport, ctdb.transports.ib) --------------------


class VerbsError(CTDBError, OSError):
    """A libibverbs or librdmacm call failed: C{call} names the function,
    C{errno}/C{strerror} say why."""

    def __init__(self, call: str, errno: int, strerror: str | None = None) -> None:
        super().__init__(errno, strerror or os.strerror(errno))
        self.call = call

    def __str__(self) -> str:
        return f"{self.call}: {self.strerror} (errno {self.errno})"


class VerbsUnavailable(ConfigError):
    """The InfiniBand transport cannot run here: a library (libibverbs1,
    librdmacm1) or an RDMA device is missing; the message names which."""


# --- the client API ----------------------------------------------------------------


class ClientError(CTDBError):
    """A client API operation failed."""


class FetchLockError(ClientError):
    """A record could not be locked (migration failed or timed out)."""


class TransactionError(ClientError):
    """A transaction could not be started or committed."""


# --- the daemon's subsystems -------------------------------------------------------


class EventDaemonError(CTDBError):
    """The node's event scripts could not be run at all (an
    L{ctdb.interfaces.IEventRunner} whose event daemon is gone)."""


class AddressError(CTDBError):
    """Public-IP takeover could not do something to the host: add or remove
    an address, send an announcement or a TCP segment, capture."""


class TakeoverRunFailed(CTDBError):
    """A step of a takeover run failed; the failing nodes' banning credits
    are already counted."""


class IPAllocInputError(CTDBError, ValueError):
    """C{ctdb-ipalloc} was given input it cannot use (an allowed list in
    C{multi} mode, a node that does not exist): the message is printed as
    an error and the run ends."""


class RecoveryFailed(CTDBError):
    """A recovery run failed; C{culprit} is the node to blame (it gets
    banning credits), if any."""

    def __init__(self, message: str, culprit: int | None = None) -> None:
        super().__init__(message)
        self.culprit = culprit


class VacuumRefused(CTDBError):
    """A vacuuming run could not start: C{busy} when another run is active
    (EBUSY), else recovery or a frozen database (EAGAIN)."""

    def __init__(self, reason: str, busy: bool = False) -> None:
        super().__init__(reason)
        self.busy = busy


# --- running clusters --------------------------------------------------------------


class ClusterError(CTDBError):
    """A cluster command (C{ctdb-cluster}) that cannot be carried out."""


class SambaError(CTDBError):
    """An smbd that cannot be started, or that died."""


class CommandLineExit(CTDBError):
    """A command's argument parser is done: it printed its help or said
    what is wrong with the command line, and the program ends with
    C{status} (C{ctdb-monitor})."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


# --- Samba's test helper programs (ctdb.helpers) -----------------------------------


class CommandFailed(CTDBError):
    """A step of a helper program failed; C{code} is the status the program
    reports (an errno, or the C program's C{ret})."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message or f"error {code}")
        self.code = code
