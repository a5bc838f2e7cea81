# -*- test-case-name: tests.integration.test_clustered_samba -*-
"""
A small SMB2 client for the clustered-Samba tests, on smbprotocol (PyPI):
guest sessions to the C{data} share of one node's smbd, opens with share
modes, oplocks, leases and durable handles, byte-range locks, and the two
things smbprotocol does not do by itself: it keeps the server's oplock and
lease break notifications (which smbprotocol's receiver would otherwise
fail on, having no request of that message id) and answers them.
"""

from __future__ import annotations

import struct
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from smbprotocol.change_notify import CompletionFilter, FileSystemWatcher
from smbprotocol.connection import Connection, Request
from smbprotocol.create_contexts import (
    CreateContextName,
    SMB2CreateContextRequest,
    SMB2CreateDurableHandleReconnectV2,
    SMB2CreateDurableHandleRequestV2,
    SMB2CreateRequestLease,
)
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.header import Commands, SMB2HeaderRequest
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    FileAttributes,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    LockFlags,
    Open,
    RequestedOplockLevel,
    ShareAccess,
    SMB2LockElement,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from ctdb.samba import SHARE, SMB_PORT

#: NTSTATUS values the tests expect
STATUS_SHARING_VIOLATION = 0xC0000043
STATUS_FILE_LOCK_CONFLICT = 0xC0000054
STATUS_LOCK_NOT_GRANTED = 0xC0000055

#: the message id of every unsolicited server message (MS-SMB2 3.3.4.6)
_UNSOLICITED = 0xFFFFFFFFFFFFFFFF

SHARE_ALL = (
    ShareAccess.FILE_SHARE_READ
    | ShareAccess.FILE_SHARE_WRITE
    | ShareAccess.FILE_SHARE_DELETE
)
READ_WRITE = (
    FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE
)


def ntStatus(call: Callable[[], object]) -> int:
    """The NTSTATUS of an SMB call: 0 if it succeeded."""
    try:
        call()
    except SMBResponseException as e:
        return int(e.status)
    return 0


class Break:
    """An oplock or lease break notification the server sent us."""

    def __init__(self, data: bytes) -> None:
        (self.size,) = struct.unpack_from("<H", data)
        self.isLease = self.size == 44
        if self.isLease:
            # StructureSize, NewEpoch, Flags, LeaseKey, Current, New state
            self.leaseKey = data[8:24]
            self.current, self.new = struct.unpack_from("<II", data, 24)
        else:
            self.oplockLevel = data[2]
            self.fileId = data[8:24]

    def __repr__(self) -> str:
        if self.isLease:
            return f"<lease break {self.current:#x} -> {self.new:#x}>"
        return f"<oplock break to {self.oplockLevel:#x}>"


class SmbClient:
    """A guest SMB2 connection to one node's C{data} share."""

    def __init__(
        self,
        address: str,
        *,
        clientGuid: uuid.UUID | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.address = address
        self.clientGuid = clientGuid or uuid.uuid4()
        self.connection = Connection(
            self.clientGuid, address, SMB_PORT, require_signing=False
        )
        self.connection.connect(timeout=timeout)
        self.session = Session(
            self.connection, username="guest", password="", require_encryption=False
        )
        self.session.connect()
        self.tree = TreeConnect(self.session, rf"\\{address}\{SHARE}")
        self.tree.connect(require_secure_negotiate=False)
        self.breaks: list[Break] = []
        self._breakLock = threading.Lock()
        self._armBreakCatcher()

    # -- break notifications ----------------------------------------------------

    def _armBreakCatcher(self) -> None:
        """Give smbprotocol's receiver a request to file unsolicited
        messages under; a watcher thread collects what arrives."""
        request = Request(
            SMB2HeaderRequest(), type(None), self.connection, self.session.session_id
        )
        self.connection.outstanding_requests[_UNSOLICITED] = request
        self._breakRequest = request
        threading.Thread(
            target=self._collectBreaks, args=(request,), daemon=True
        ).start()

    def _collectBreaks(self, request: Request) -> None:
        while self.connection.transport.connected:
            if not request.response_event.wait(0.2):
                continue
            with request.response_event_lock:
                header = request.response
                request.response_event.clear()
            if header is None:
                continue
            if header["command"].get_value() == Commands.SMB2_OPLOCK_BREAK:
                with self._breakLock:
                    self.breaks.append(Break(header["data"].get_value()))

    def waitBreak(self, timeout: float = 30.0) -> Break:
        """The first break notification, waiting at most C{timeout} s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._breakLock:
                if self.breaks:
                    return self.breaks[0]
            time.sleep(0.02)
        raise AssertionError(f"no oplock/lease break reached {self.address}")

    # -- files --------------------------------------------------------------------

    def open(
        self,
        name: str,
        *,
        access: int = READ_WRITE,
        share: int = SHARE_ALL,
        disposition: int = CreateDisposition.FILE_OPEN_IF,
        oplock: int = RequestedOplockLevel.SMB2_OPLOCK_LEVEL_NONE,
        leaseKey: bytes | None = None,
        leaseState: int = 0,
        durable: uuid.UUID | None = None,
        reconnect: Open | None = None,
    ) -> Open:
        """CREATE a file (not a directory), with the asked-for extras."""
        contexts: list[Any] = []
        if leaseKey is not None:
            lease = SMB2CreateRequestLease()
            lease["lease_key"] = leaseKey
            lease["lease_state"] = leaseState
            oplock = RequestedOplockLevel.SMB2_OPLOCK_LEVEL_LEASE
            contexts.append(
                _context(CreateContextName.SMB2_CREATE_REQUEST_LEASE, lease)
            )
        if durable is not None:
            dh = SMB2CreateDurableHandleRequestV2()
            dh["timeout"] = 60000
            dh["create_guid"] = durable
            contexts.append(
                _context(CreateContextName.SMB2_CREATE_DURABLE_HANDLE_REQUEST_V2, dh)
            )
        if reconnect is not None:
            dc = SMB2CreateDurableHandleReconnectV2()
            dc["file_id"] = reconnect.file_id
            dc["create_guid"] = reconnect.createGuid  # type: ignore[attr-defined]
            contexts.append(
                _context(CreateContextName.SMB2_CREATE_DURABLE_HANDLE_RECONNECT_V2, dc)
            )
        handle = Open(self.tree, name)
        handle.create(
            ImpersonationLevel.Impersonation,
            access,
            FileAttributes.FILE_ATTRIBUTE_NORMAL,
            share,
            disposition,
            CreateOptions.FILE_NON_DIRECTORY_FILE,
            create_contexts=contexts or None,
            oplock_level=oplock,
        )
        handle.createGuid = durable or getattr(reconnect, "createGuid", None)  # type: ignore[attr-defined]
        return handle

    def openDirectory(self, name: str = "") -> Open:
        handle = Open(self.tree, name)
        handle.create(
            ImpersonationLevel.Impersonation,
            DirectoryAccessMask.FILE_LIST_DIRECTORY | DirectoryAccessMask.SYNCHRONIZE,
            FileAttributes.FILE_ATTRIBUTE_DIRECTORY,
            SHARE_ALL,
            CreateDisposition.FILE_OPEN,
            CreateOptions.FILE_DIRECTORY_FILE,
        )
        return handle

    def watch(self, directory: Open) -> FileSystemWatcher:
        """A CHANGE_NOTIFY on C{directory} for names added or removed."""
        watcher = FileSystemWatcher(directory)
        watcher.start(CompletionFilter.FILE_NOTIFY_CHANGE_FILE_NAME)
        return watcher

    def disconnect(self) -> None:
        """Log off cleanly and close the connection."""
        try:
            self.connection.disconnect(True, timeout=10)
        except Exception:  # noqa: BLE001 - smbprotocol re-raises whatever killed its receiver thread
            self.drop()

    def drop(self) -> None:
        """Close the TCP connection without logging off (a client that
        vanished), leaving durable handles to be reconnected."""
        try:
            self.connection.disconnect(False)
        except Exception:  # noqa: BLE001, S110 - best-effort close of a connection that may be dead
            pass


def lockElement(
    offset: int, length: int, *, exclusive: bool = True, wait: bool = False
) -> SMB2LockElement:
    element = SMB2LockElement()
    element["offset"] = offset
    element["length"] = length
    flags = (
        LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK
        if exclusive
        else LockFlags.SMB2_LOCKFLAG_SHARED_LOCK
    )
    if not wait:
        flags |= LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY
    element["flags"] = flags
    return element


def unlockElement(offset: int, length: int) -> SMB2LockElement:
    element = SMB2LockElement()
    element["offset"] = offset
    element["length"] = length
    element["flags"] = LockFlags.SMB2_LOCKFLAG_UNLOCK
    return element


def _context(name: bytes, data: Any) -> SMB2CreateContextRequest:
    context = SMB2CreateContextRequest()
    context["buffer_name"] = name
    context["buffer_data"] = data
    return context
